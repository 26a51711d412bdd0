/* sluice.yaml: the top-level option table, the per-pipeline table, and the checks that cross them (the key is a
 * mapped column, the primary key columns exist). Every error carries file:line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ident.h"
#include "core/log.h"
#include "pipeline/aggregate.h"
#include "pipeline/pipeline.h"

struct top {
	char *data_dir;
	char *log_level;
	const struct sl_cfg_node *dags; /* scheduler DAGs (src/scheduler/) */
	const struct sl_cfg_node *pipelines, *kafka, *cassandra, *console, *registry, *scheduler;
};

static const struct sl_opt top_opts[] = {
	{"data_dir", SL_OPT_STRING, "var/sluice", offsetof(struct top, data_dir),
	 "where the embedded log, the SQLite tables and state live (relative to the working directory)"},
	{"log_level", SL_OPT_ENUM, "info", offsetof(struct top, log_level), "debug, info, warn or error",
	 .choices = "debug|info|warn|error"},
	{"pipelines", SL_OPT_NODE, NULL, offsetof(struct top, pipelines), "map of pipeline name to pipeline",
	 .required = true},
	{"dags", SL_OPT_NODE, NULL, offsetof(struct top, dags), "map of DAG id to DAG (docs/scheduler.md)"},
	{"kafka", SL_OPT_NODE, NULL, offsetof(struct top, kafka),
	 "Kafka connection; when absent, topics live in the embedded log in data_dir"},
	{"cassandra", SL_OPT_NODE, NULL, offsetof(struct top, cassandra),
	 "Cassandra connection; when absent, sinks are SQLite tables in data_dir"},
	{"registry", SL_OPT_NODE, NULL, offsetof(struct top, registry),
	 "the schema registry `sluice up` serves (listen, store); see docs/registry.md"},
	{"console", SL_OPT_NODE, NULL, offsetof(struct top, console),
	 "the web console, JSON API and /metrics (listen, auth, alerts); see docs/console.md"},
	{"scheduler", SL_OPT_NODE, NULL, offsetof(struct top, scheduler),
	 "the scheduler's REST API (`sluice scheduler --api`): auth, allowed_hosts, limits; see docs/security.md"},
	{NULL},
};

static const struct sl_opt batch_opts[] = {
	{"max_records", SL_OPT_INT, "1000", offsetof(struct sl_batch_conf, max_records), "records per sink batch",
	 .min = 1, .max = 1000000},
	{"max_bytes", SL_OPT_SIZE, "4MiB", offsetof(struct sl_batch_conf, max_bytes), "payload bytes per sink batch",
	 .min = 1024, .max = INT64_MAX},
	{"max_wait", SL_OPT_DURATION, "200ms", offsetof(struct sl_batch_conf, max_wait_ms),
	 "longest a record waits for its batch to fill"},
	{"in_flight", SL_OPT_INT, "4", offsetof(struct sl_batch_conf, in_flight),
	 "batches being written at once; memory is bounded by in_flight x max_bytes", .min = 1, .max = 64},
	{NULL},
};

static const struct sl_opt pipeline_opts[] = {
	{"source", SL_OPT_NODE, NULL, offsetof(struct sl_pipeline, source),
	 "where records come from: type generate or http, and its options", .required = true},
	{"topic", SL_OPT_STRING, NULL, offsetof(struct sl_pipeline, topic), "the topic between ingest and process",
	 .required = true},
	{"partitions", SL_OPT_INT, "3", offsetof(struct sl_pipeline, partitions),
	 "partitions of the topic when sluice creates it", .min = 1, .max = 10000},
	{"replication", SL_OPT_INT, "1", offsetof(struct sl_pipeline, replication),
	 "replication factor of the topic when sluice creates it (Kafka)", .min = 1, .max = 16},
	{"format", SL_OPT_ENUM, "json", offsetof(struct sl_pipeline, format),
	 "encoding of records in the topic: json, avro or protobuf (Confluent wire formats; the schema is registered in "
	 "the schema registry, see docs/registry.md)",
	 .choices = "json|avro|protobuf"},
	{"registry_url", SL_OPT_STRING, NULL, offsetof(struct sl_pipeline, registry_url),
	 "format avro or protobuf: URL of a schema registry elsewhere (e.g. http://127.0.0.1:8081); when absent, the store of the "
	 "registry: section (or the sqlite store in data_dir/registry) is used in-process"},
	{"subject_strategy", SL_OPT_ENUM, "topic", offsetof(struct sl_pipeline, subject_strategy),
	 "format avro or protobuf: the subject the schema is registered under: topic (<topic>-value), record (the "
	 "record/message name), "
	 "topic_record (<topic>-<record name>)",
	 .choices = "topic|record|topic_record"},
	{"key", SL_OPT_STRING, NULL, offsetof(struct sl_pipeline, key),
	 "the mapped column used as the message key and default primary key", .required = true},
	{"dlq_topic", SL_OPT_STRING, NULL, offsetof(struct sl_pipeline, dlq_topic),
	 "dead-letter topic (default <topic>.dlq)"},
	{"group", SL_OPT_STRING, NULL, offsetof(struct sl_pipeline, group),
	 "consumer group of the processor (default sluice-<pipeline>)"},
	{"mapping", SL_OPT_NODE, NULL, offsetof(struct sl_pipeline, mapping),
	 "column: spec pairs turning a raw record into a typed record (see src/mapping/mapping.h)", .required = true},
	{"random_keys", SL_OPT_BOOL, "false", offsetof(struct sl_pipeline, random_keys),
	 "allow uuid() (as default or expr) on a primary-key column; without it such a mapping is refused, since "
	 "a refetched or replayed record would get a new key and become a second row"},
	{"max_record_bytes", SL_OPT_SIZE, "1MiB", offsetof(struct sl_pipeline, max_record_bytes),
	 "records larger than this go to the dead-letter topic", .min = 64, .max = 64 << 20},
	{"sink", SL_OPT_SECTION, NULL, offsetof(struct sl_pipeline, sink), "the table records are written to",
	 .sub = sl_sink_opts, .required = true},
	{"batch", SL_OPT_SECTION, NULL, offsetof(struct sl_pipeline, batch), "micro-batching of the processor",
	 .sub = batch_opts},
	{"where", SL_OPT_STRING, NULL, offsetof(struct sl_pipeline, where_src),
	 "a filter (an expression, see docs/processing.md) every output applies: records for which it is not true are "
	 "skipped (and their offsets committed)"},
	{"compute", SL_OPT_NODE, NULL, offsetof(struct sl_pipeline, compute),
	 "computed columns, column: expression, in order (each may use the ones before it); outputs: can write them"},
	{"aggregate_state", SL_OPT_ENUM, "changelog", offsetof(struct sl_pipeline, aggregate_state),
	 "on Kafka, where aggregate outputs keep their state: changelog (records repartitioned by group key, state "
	 "per partition in a compacted changelog topic, committed in Kafka transactions: several processors share "
	 "the work) or checkpoint (a SQLite checkpoint in data_dir: one processor, the others refused); see "
	 "docs/processing.md. The embedded default keeps it with the rows in either case",
	 .choices = "changelog|checkpoint"},
	{"outputs", SL_OPT_NODE, NULL, offsetof(struct sl_pipeline, outputs),
	 "further tables from the same stream: name: { where, columns, sink }; an offset is committed once every "
	 "output has its records"},
	{NULL},
};

static const struct sl_opt output_opts[] = {
	{"where", SL_OPT_STRING, NULL, offsetof(struct sl_output, where_src),
	 "this output's filter (an expression over the mapped and computed columns)"},
	{"columns", SL_OPT_STRLIST, NULL, offsetof(struct sl_output, columns),
	 "the columns this output writes (default: every mapped and computed column)"},
	{"aggregate", SL_OPT_NODE, NULL, offsetof(struct sl_output, aggregate),
	 "group_by, window, measures, emit, late: one row per group (and window) instead of one per record "
	 "(docs/processing.md)"},
	{"sink", SL_OPT_SECTION, NULL, offsetof(struct sl_output, sink), "the table, with its primary key, TTL and "
	 "consistency", .sub = sl_sink_opts, .required = true},
	{NULL},
};

static void output_free(struct sl_output *o, bool own)
{
	if (own)
		sl_opt_free(output_opts, o);
	sl_expr_free(o->where);
	sl_aggregate_conf_free(o->agg);
	sl_schema_free(&o->schema);
	free(o->cols);
	free(o->offsets_group);
	free(o->name);
}

/* The columns an output writes, as a schema, and where each comes from in the full record. */
static int output_schema(struct sl_pipeline *p, struct sl_output *o, const char *section, struct sl_err *err)
{
	char w[300];
	const struct sl_schema *full = &p->full;
	sl_schema_init(&o->schema);
	size_t n = o->columns.n ? o->columns.n : full->n;
	if (!(o->cols = calloc(n ? n : 1, sizeof *o->cols)))
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const char *name = o->columns.n ? o->columns.v[i] : full->fields[i].name;
		int f = sl_schema_find(full, name, strlen(name));
		if (f < 0)
			return sl_err_set(err, SL_ECONFIG, "%s: %s.columns: '%s' is not a mapped or computed column",
					  sl_cfg_where(sl_cfg_get(o->at, "columns"), w, sizeof w), section, name);
		if (sl_schema_add(&o->schema, name, full->fields[f].type, full->fields[f].required, err))
			return sl_err_prefix(err, "%s: %s.columns: ", sl_cfg_where(sl_cfg_get(o->at, "columns"), w,
										  sizeof w), section);
		o->cols[i] = f;
		if (f != (int)i)
			o->project = true;
	}
	/* The key: the first primary key column, else the pipeline's key when the output has it. */
	const char *key = o->conf->primary_key.n ? o->conf->primary_key.v[0] : p->key;
	if (sl_schema_find(&o->schema, key, strlen(key)) < 0)
		return sl_err_set(err, SL_ECONFIG, "%s: %s: the output has no column '%s' for its primary key; give "
				  "sink.primary_key", sl_cfg_where(o->at, w, sizeof w), section, key);
	if (sl_schema_set_key(&o->schema, key, err))
		return sl_err_prefix(err, "%s: %s: ", sl_cfg_where(o->at, w, sizeof w), section);
	for (size_t i = 0; i < o->conf->primary_key.n; i++)
		if (sl_schema_find(&o->schema, o->conf->primary_key.v[i], strlen(o->conf->primary_key.v[i])) < 0)
			return sl_err_set(err, SL_ECONFIG, "%s: %s.sink.primary_key: '%s' is not a column of the output",
					  sl_cfg_where(sl_cfg_get(sl_cfg_get(o->at, "sink"), "primary_key"), w, sizeof w),
					  section, o->conf->primary_key.v[i]);
	return 0;
}

/* where:, compute: and outputs: of a pipeline, after its mapping. */
static int load_processing(struct sl_pipeline *p, const char *section, const struct sl_cfg_node *n,
			   struct sl_err *err)
{
	char w[300], at[320];
	const struct sl_schema *ms = sl_mapping_schema(p->map);
	sl_schema_init(&p->full);
	for (size_t i = 0; i < ms->n; i++)
		if (sl_schema_add(&p->full, ms->fields[i].name, ms->fields[i].type, ms->fields[i].required, err))
			return SL_ECONFIG;
	if (ms->key >= 0 && sl_schema_set_key(&p->full, ms->fields[ms->key].name, err))
		return SL_ECONFIG;
	if (p->compute) {
		if (p->compute->kind != SL_CFG_MAP)
			return sl_err_set(err, SL_ECONFIG, "%s: %s.compute must be a map of column: expression",
					  sl_cfg_where(p->compute, w, sizeof w), section);
		if (!(p->computed = calloc(p->compute->n ? p->compute->n : 1, sizeof *p->computed)))
			return sl_err_set(err, SL_ENOMEM, "out of memory");
		for (size_t i = 0; i < p->compute->n; i++) {
			const struct sl_cfg_node *e = p->compute->items[i];
			const char *col = p->compute->keys[i];
			snprintf(at, sizeof at, "%s: %s.compute.%s", sl_cfg_where(e, w, sizeof w), section, col);
			if (e->kind != SL_CFG_SCALAR)
				return sl_err_set(err, SL_ECONFIG, "%s: must be an expression (text)", at);
			if (sl_schema_find(&p->full, col, strlen(col)) >= 0)
				return sl_err_set(err, SL_ECONFIG, "%s: '%s' is already a column", at, col);
			if (sl_ident_check(SL_IDENT_TABLE, col, strlen(col), err))
				return sl_err_prefix(err, "%s: ", at);
			/* Each expression sees the columns before it (the full schema so far). */
			if (sl_expr_compile(e->value, &p->full, at, &p->computed[i], err))
				return SL_ECONFIG;
			p->ncomputed++;
			if (sl_schema_add(&p->full, col, sl_expr_type(p->computed[i]), false, err))
				return sl_err_prefix(err, "%s: ", at);
		}
	}
	if (p->where_src) {
		snprintf(at, sizeof at, "%s: %s.where", sl_cfg_where(sl_cfg_get(n, "where"), w, sizeof w), section);
		if (sl_expr_compile(p->where_src, &p->full, at, &p->where, err))
			return SL_ECONFIG;
		if (sl_expr_type(p->where) != SL_T_BOOLEAN)
			return sl_err_set(err, SL_ECONFIG, "%s: a filter must be boolean, not %s", at,
					  sl_type_name(sl_expr_type(p->where)));
	}
	size_t nmore = 0;
	if (p->outputs) {
		if (p->outputs->kind != SL_CFG_MAP)
			return sl_err_set(err, SL_ECONFIG, "%s: %s.outputs must be a map of name: output",
					  sl_cfg_where(p->outputs, w, sizeof w), section);
		nmore = p->outputs->n;
	}
	if (!(p->out = calloc(1 + nmore, sizeof *p->out)))
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	/* main: the pipeline's own sink, with the mapped columns (a prefix of the full record: nothing copied). */
	struct sl_output *m = &p->out[0];
	p->nout = 1;
	m->conf = &p->sink;
	m->at = n;
	if (!(m->name = strdup("main")) || !(m->offsets_group = strdup(p->group)))
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	sl_schema_init(&m->schema);
	for (size_t i = 0; i < ms->n; i++)
		if (sl_schema_add(&m->schema, ms->fields[i].name, ms->fields[i].type, ms->fields[i].required, err))
			return SL_ECONFIG;
	if (ms->key >= 0 && sl_schema_set_key(&m->schema, ms->fields[ms->key].name, err))
		return SL_ECONFIG;
	for (size_t i = 0; i < nmore; i++) {
		struct sl_output *o = &p->out[p->nout];
		const char *name = p->outputs->keys[i];
		char osec[400];
		snprintf(osec, sizeof osec, "%s.outputs.%s", section, name);
		o->at = p->outputs->items[i];
		o->conf = &o->sink;
		if (!(o->name = strdup(name)))
			return sl_err_set(err, SL_ENOMEM, "out of memory");
		p->nout++;
		int line = p->outputs->key_lines ? p->outputs->key_lines[i] : p->outputs->line;
		if (!strcmp(name, "main"))
			return sl_err_set(err, SL_ECONFIG, "%s:%d: %s: 'main' is the pipeline's own sink:", p->outputs->file,
					  line, osec);
		if (sl_ident_check(SL_IDENT_PIPELINE, name, strlen(name), err))
			return sl_err_prefix(err, "%s:%d: %s.outputs: ", p->outputs->file, line, section);
		if (sl_opt_bind(output_opts, o->at, osec, o, err))
			return SL_ECONFIG;
		const struct sl_cfg_node *sk = sl_cfg_get(o->at, "sink");
		if (sl_ident_check(SL_IDENT_TABLE, o->sink.keyspace, strlen(o->sink.keyspace), err) ||
		    sl_ident_check(SL_IDENT_TABLE, o->sink.table, strlen(o->sink.table), err))
			return sl_err_prefix(err, "%s: %s.sink: ", sl_cfg_where(sk, w, sizeof w), osec);
		for (size_t j = 0; j < p->nout - 1; j++)
			if (!strcmp(p->out[j].conf->keyspace, o->sink.keyspace) &&
			    !strcmp(p->out[j].conf->table, o->sink.table))
				return sl_err_set(err, SL_ECONFIG, "%s: %s.sink: output '%s' writes %s.%s already",
						  sl_cfg_where(sk, w, sizeof w), osec, p->out[j].name, o->sink.keyspace,
						  o->sink.table);
		if (o->aggregate) {
			char asec[420];
			snprintf(asec, sizeof asec, "%s", osec);
			if (o->columns.n)
				return sl_err_set(err, SL_ECONFIG, "%s: %s: an aggregate output's columns are its group_by, "
						  "window and measures; drop columns:",
						  sl_cfg_where(sl_cfg_get(o->at, "columns"), w, sizeof w), osec);
			if (sl_aggregate_conf_load(o->aggregate, &p->full, asec, &o->schema, &o->agg, err))
				return SL_ECONFIG;
			if (!o->sink.primary_key.n) {
				sl_aggregate_conf_default_key(o->agg, &o->sink.primary_key);
				if (!o->sink.primary_key.n)
					return sl_err_set(err, SL_ECONFIG, "%s: %s.aggregate: give group_by or a window (the "
							  "result table needs a primary key)",
							  sl_cfg_where(o->aggregate, w, sizeof w), osec);
			}
			for (size_t k = 0; k < o->sink.primary_key.n; k++)
				if (sl_schema_find(&o->schema, o->sink.primary_key.v[k], strlen(o->sink.primary_key.v[k])) < 0)
					return sl_err_set(err, SL_ECONFIG, "%s: %s.sink.primary_key: '%s' is not a column of "
							  "the aggregate (group_by, window_start, window_end, measures)",
							  sl_cfg_where(sk, w, sizeof w), osec, o->sink.primary_key.v[k]);
			if (sl_schema_set_key(&o->schema, o->sink.primary_key.v[0], err))
				return sl_err_prefix(err, "%s: %s: ", sl_cfg_where(sk, w, sizeof w), osec);
		} else if (output_schema(p, o, osec, err))
			return SL_ECONFIG;
		if (o->where_src) {
			snprintf(at, sizeof at, "%s: %s.where", sl_cfg_where(sl_cfg_get(o->at, "where"), w, sizeof w), osec);
			if (sl_expr_compile(o->where_src, &p->full, at, &o->where, err))
				return SL_ECONFIG;
			if (sl_expr_type(o->where) != SL_T_BOOLEAN)
				return sl_err_set(err, SL_ECONFIG, "%s: a filter must be boolean, not %s", at,
						  sl_type_name(sl_expr_type(o->where)));
		}
		size_t l = strlen(p->group) + strlen(name) + 2;
		if (!(o->offsets_group = malloc(l)))
			return sl_err_set(err, SL_ENOMEM, "out of memory");
		snprintf(o->offsets_group, l, "%s/%s", p->group, name);
	}
	return 0;
}

static void pipeline_free(struct sl_pipeline *p)
{
	for (size_t i = 0; i < p->nout; i++)
		output_free(&p->out[i], i > 0);
	free(p->out);
	for (size_t i = 0; i < p->ncomputed; i++)
		sl_expr_free(p->computed[i]);
	free(p->computed);
	sl_expr_free(p->where);
	sl_schema_free(&p->full);
	sl_mapping_free(p->map);
	sl_opt_free(pipeline_opts, p);
	free(p->name);
}

void sl_conf_free(struct sl_conf *c)
{
	for (size_t i = 0; i < c->np; i++)
		pipeline_free(&c->p[i]);
	free(c->p);
	free(c->data_dir);
	free(c->log_level);
	sl_cfg_free(&c->doc);
	memset(c, 0, sizeof *c);
}

static int load_pipeline(struct sl_conf *c, struct sl_pipeline *p, const char *name, const struct sl_cfg_node *n,
			 struct sl_err *err)
{
	char section[300];
	snprintf(section, sizeof section, "pipelines.%s", name);
	if (!(p->name = strdup(name)))
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	if (sl_opt_bind(pipeline_opts, n, section, p, err))
		return SL_ECONFIG;
	char w[300];
	if (p->mapping->kind != SL_CFG_MAP)
		return sl_err_set(err, SL_ECONFIG, "%s: %s.mapping must be a map of column: spec",
				  sl_cfg_where(p->mapping, w, sizeof w), section);
	if (sl_mapping_compile(p->mapping, p->key, &p->map, err))
		return sl_err_prefix(err, "%s.mapping: ", section);
	if (!p->dlq_topic) {
		size_t l = strlen(p->topic) + 5;
		if (!(p->dlq_topic = malloc(l)))
			return sl_err_set(err, SL_ENOMEM, "out of memory");
		snprintf(p->dlq_topic, l, "%s.dlq", p->topic);
	}
	/* Names that become Kafka topics, CQL names and (the keyspace, with the SQLite sink) a file under data_dir:
	 * checked here, at file:line, rather than failing later at the broker or the filesystem. */
	const struct sl_cfg_node *sink = sl_cfg_get(n, "sink");
	const struct {
		enum sl_ident_kind kind;
		const char *key, *val;
		const struct sl_cfg_node *at;
	} names[] = {
		{SL_IDENT_TOPIC, "topic", p->topic, sl_cfg_get(n, "topic")},
		{SL_IDENT_TOPIC, "dlq_topic", p->dlq_topic, sl_cfg_get(n, "dlq_topic")},
		{SL_IDENT_TABLE, "sink.keyspace", p->sink.keyspace, sl_cfg_get(sink, "keyspace")},
		{SL_IDENT_TABLE, "sink.table", p->sink.table, sl_cfg_get(sink, "table")},
	};
	for (size_t i = 0; i < sizeof names / sizeof *names; i++)
		if (names[i].val && sl_ident_check(names[i].kind, names[i].val, strlen(names[i].val), err))
			return sl_err_prefix(err, "%s: %s.%s: ", sl_cfg_where(names[i].at ? names[i].at : n, w, sizeof w),
					     section, names[i].key);
	if (!p->group) {
		size_t l = strlen(name) + 8;
		if (!(p->group = malloc(l)))
			return sl_err_set(err, SL_ENOMEM, "out of memory");
		snprintf(p->group, l, "sluice-%s", name);
	}
	const struct sl_schema *s = sl_mapping_schema(p->map);
	for (size_t i = 0; i < p->sink.primary_key.n; i++)
		if (sl_schema_find(s, p->sink.primary_key.v[i], strlen(p->sink.primary_key.v[i])) < 0)
			return sl_err_set(err, SL_ECONFIG, "%s: %s.sink.primary_key: '%s' is not a mapped column",
					  sl_cfg_where(sl_cfg_get(sl_cfg_get(n, "sink"), "primary_key"), w, sizeof w),
					  section, p->sink.primary_key.v[i]);
	if (!p->random_keys) {
		/* A random key makes every delivery a new row: a refetch after a crash, a replay from the DLQ or a
		 * record with the id missing each add one, which at-least-once delivery then turns into duplicates. */
		size_t nk = p->sink.primary_key.n ? p->sink.primary_key.n : 1;
		for (size_t i = 0; i < nk; i++) {
			const char *col = p->sink.primary_key.n ? p->sink.primary_key.v[i] : p->key;
			const struct sl_cfg_node *spec = sl_cfg_get(p->mapping, col);
			const char *fn[] = {"default", "expr"};
			for (int k = 0; spec && k < 2; k++) {
				const struct sl_cfg_node *v = sl_cfg_get(spec, fn[k]);
				if (v && v->kind == SL_CFG_SCALAR && v->value && strstr(v->value, "uuid()"))
					return sl_err_set(err, SL_ECONFIG,
							  "%s: %s.mapping.%s: %s uuid() on a primary-key column gives a "
							  "record a random key, so a refetch or replay of the same record "
							  "writes a second row; map the API's own id (a record without it "
							  "goes to the dead-letter topic), or set random_keys: true in the "
							  "pipeline if random keys are intended",
							  sl_cfg_where(v, w, sizeof w), section, col, fn[k]);
			}
		}
	}
	if (load_processing(p, section, n, err))
		return SL_ECONFIG;
	/* Source options are checked now too, so `sluice check` catches them: build and drop a source. */
	(void)c;
	return 0;
}

int sl_conf_load(const char *path, struct sl_conf *c, struct sl_err *err)
{
	memset(c, 0, sizeof *c);
	if (sl_cfg_load_file(&c->doc, path, err))
		return SL_ECONFIG;
	struct top t = {0};
	if (sl_opt_bind(top_opts, c->doc.root, "", &t, err)) {
		sl_opt_free(top_opts, &t);
		sl_cfg_free(&c->doc);
		return SL_ECONFIG;
	}
	c->data_dir = t.data_dir;
	c->log_level = t.log_level;
	c->pipelines_node = t.pipelines;
	c->kafka = t.kafka;
	c->dags = t.dags;
	c->cassandra = t.cassandra;
	c->console = t.console;
	c->registry = t.registry;
	c->scheduler = t.scheduler;
	char w[300];
	const struct sl_cfg_node *ps = t.pipelines;
	if (ps->kind != SL_CFG_MAP || ps->n == 0) {
		sl_err_set(err, SL_ECONFIG, "%s: 'pipelines' must be a map of name: pipeline with at least one entry",
			   sl_cfg_where(ps, w, sizeof w));
		sl_conf_free(c);
		return SL_ECONFIG;
	}
	c->p = calloc(ps->n, sizeof *c->p);
	if (!c->p) {
		sl_conf_free(c);
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < ps->n; i++) {
		if (sl_ident_check(SL_IDENT_PIPELINE, ps->keys[i], strlen(ps->keys[i]), err)) {
			sl_err_prefix(err, "%s:%d: pipelines: ", ps->file, ps->key_lines ? ps->key_lines[i] : ps->line);
			sl_conf_free(c);
			return SL_ECONFIG;
		}
		c->np++;
		if (load_pipeline(c, &c->p[i], ps->keys[i], ps->items[i], err)) {
			sl_conf_free(c);
			return SL_ECONFIG;
		}
	}
	return 0;
}

struct sl_pipeline *sl_conf_pipeline(struct sl_conf *c, const char *name, struct sl_err *err)
{
	for (size_t i = 0; i < c->np; i++)
		if (!strcmp(c->p[i].name, name))
			return &c->p[i];
	char list[512] = "";
	size_t used = 0;
	for (size_t i = 0; i < c->np && used < sizeof list - 1; i++)
		used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", c->p[i].name);
	sl_err_set(err, SL_ENOTFOUND, "%s: no pipeline '%s' (pipelines: %s)", c->doc.file, name, list);
	return NULL;
}

void sl_conf_doc_markdown(FILE *fp)
{
	sl_opt_doc_markdown(top_opts, "", fp);
	sl_opt_doc_markdown(pipeline_opts, "pipelines.<name>", fp);
}
