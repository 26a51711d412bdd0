/* sluice.yaml: the top-level option table, the per-pipeline table, and the checks that cross them (the key is a
 * mapped column, the primary key columns exist). Every error carries file:line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ident.h"
#include "core/log.h"
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
	 "encoding of records in the topic: json, or avro (Confluent wire format; the schema is registered in the "
	 "schema registry, see docs/registry.md)",
	 .choices = "json|avro"},
	{"registry_url", SL_OPT_STRING, NULL, offsetof(struct sl_pipeline, registry_url),
	 "format avro: URL of a schema registry elsewhere (e.g. http://127.0.0.1:8081); when absent, the store of the "
	 "registry: section (or the sqlite store in data_dir/registry) is used in-process"},
	{"subject_strategy", SL_OPT_ENUM, "topic", offsetof(struct sl_pipeline, subject_strategy),
	 "format avro: the subject the schema is registered under: topic (<topic>-value), record (the record name), "
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
	{NULL},
};

static void pipeline_free(struct sl_pipeline *p)
{
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
