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
		sl_sink_ident(cols, pk->n ? pk->v[i] : key);
	}
	if (partition)
		*partition = pk->n ? pk->v[0] : key;
	return 0;
}
