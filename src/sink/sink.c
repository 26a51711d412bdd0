/* What both sinks share: quoting identifiers (CQL and SQLite quote alike: double quotes, doubled inside) and the
 * resolution of the primary key (configured columns, else the pipeline's key), so both build the same table. */
#include <string.h>

#include "sink/sink.h"

void sl_sink_ident(struct sl_buf *b, const char *name)
{
	sl_buf_putc(b, '"');
	for (const char *p = name; *p; p++) {
		if (*p == '"')
			sl_buf_putc(b, '"');
		sl_buf_putc(b, *p);
	}
	sl_buf_putc(b, '"');
}

int sl_sink_primary_key(const struct sl_sink_conf *conf, const struct sl_schema *schema, const char *table,
			struct sl_buf *cols, const char **partition, struct sl_err *err)
{
	const struct sl_strlist *pk = &conf->primary_key;
	const char *key = schema->key >= 0 ? schema->fields[schema->key].name : NULL;
	if (!pk->n && !key)
		return sl_err_set(err, SL_ECONFIG, "sink %s: no primary_key configured and the pipeline has no key",
				  table);
	for (size_t i = 0; i < pk->n; i++)
		if (sl_schema_find(schema, pk->v[i], strlen(pk->v[i])) < 0)
			return sl_err_set(err, SL_ECONFIG, "sink %s: primary key column '%s' is not in the mapping", table,
					  pk->v[i]);
	for (size_t i = 0; i < (pk->n ? pk->n : 1); i++) {
		if (i)
			sl_buf_puts(cols, ", ");
		sl_sink_ident(cols, sl_sink_column(conf, pk->n ? pk->v[i] : key));
	}
	if (partition)
		*partition = pk->n ? pk->v[0] : key;
	return 0;
}

const char *sl_sink_column(const struct sl_sink_conf *conf, const char *field)
{
	for (size_t i = 0; i < conf->columns.n; i++)
		if (!strcmp(conf->columns.k[i], field))
			return conf->columns.v[i];
	return field;
}

bool sl_sink_is_column(const struct sl_sink_conf *conf, const char *field)
{
	return !(conf->ttl_field && !strcmp(conf->ttl_field, field)) &&
	       !(conf->writetime_field && !strcmp(conf->writetime_field, field));
}

int sl_sink_check_fields(const struct sl_sink_conf *conf, const struct sl_schema *schema, const char *table,
			 struct sl_err *err)
{
	for (size_t i = 0; i < conf->columns.n; i++)
		if (sl_schema_find(schema, conf->columns.k[i], strlen(conf->columns.k[i])) < 0)
			return sl_err_set(err, SL_ECONFIG, "sink %s: columns: '%s' is not a mapped field", table,
					  conf->columns.k[i]);
	if (conf->ttl_field) {
		int f = sl_schema_find(schema, conf->ttl_field, strlen(conf->ttl_field));
		if (f < 0 || (schema->fields[f].type != SL_T_INT && schema->fields[f].type != SL_T_BIGINT))
			return sl_err_set(err, SL_ECONFIG, "sink %s: ttl_field '%s' must be a mapped int or bigint field "
					  "(seconds)", table, conf->ttl_field);
	}
	if (conf->writetime_field) {
		int f = sl_schema_find(schema, conf->writetime_field, strlen(conf->writetime_field));
		if (f < 0 || schema->fields[f].type != SL_T_TIMESTAMP)
			return sl_err_set(err, SL_ECONFIG, "sink %s: writetime_field '%s' must be a mapped timestamp field",
					  table, conf->writetime_field);
	}
	return 0;
}

int sl_sink_open(const struct sl_cfg_node *cassandra, const char *data_dir, const char *pipeline,
		 const struct sl_sink_conf *conf, struct sl_sink **out, struct sl_err *err)
{
	const char *t = conf->type ? conf->type : "auto";
	if (!strcmp(t, "discard"))
		return sl_sink_null_new(out, err);
	if (!strcmp(t, "cassandra") || (!strcmp(t, "auto") && cassandra)) {
		if (!cassandra)
			return sl_err_set(err, SL_ECONFIG, "pipeline %s: sink type cassandra needs a cassandra: section",
					  pipeline);
		return sl_sink_cassandra_new(cassandra, conf, out, err);
	}
	return sl_sink_sqlite_new(data_dir, conf, out, err);
}

int sl_sink_open_reader(const struct sl_cfg_node *cassandra, const char *data_dir, const char *pipeline,
			const struct sl_sink_conf *conf, struct sl_sink **out, struct sl_err *err)
{
	const char *kind = sl_sink_kind(cassandra, conf);
	if (!strcmp(kind, "discard"))
		return sl_err_set(err, SL_ENOTFOUND, "pipeline %s discards its rows (sink type discard)", pipeline);
	if (!strcmp(kind, "cassandra"))
		return sl_sink_open(cassandra, data_dir, pipeline, conf, out, err);
	return sl_sink_sqlite_reader(data_dir, conf, out, err);
}

void sl_sink_page_init(struct sl_sink_page *p)
{
	memset(p, 0, sizeof *p);
	sl_buf_init(&p->columns);
	sl_buf_init(&p->rows);
}

void sl_sink_page_free(struct sl_sink_page *p)
{
	sl_buf_free(&p->columns);
	sl_buf_free(&p->rows);
}

const char *sl_sink_kind(const struct sl_cfg_node *cassandra, const struct sl_sink_conf *conf)
{
	const char *t = conf->type ? conf->type : "auto";
	if (!strcmp(t, "discard"))
		return "discard";
	return !strcmp(t, "cassandra") || (!strcmp(t, "auto") && cassandra) ? "cassandra" : "sqlite";
}

bool sl_sink_counts_exactly(const struct sl_cfg_node *cassandra, const struct sl_sink_conf *conf)
{
	return !strcmp(sl_sink_kind(cassandra, conf), "sqlite");
}
