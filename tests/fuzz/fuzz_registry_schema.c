/* libFuzzer target for the registry's schema handling: the Avro schema parser, its canonical form and the
 * compatibility checker, and the JSON Schema loader and diff. The input is one schema, or two separated by a line
 * "---" (writer, then reader). Invariants checked beyond "no crash": a canonical string parses again to itself, and
 * every schema can read its own data. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "registry/internal.h"

static void one_avro(const char *text, size_t len, struct sl_avro_schema **out)
{
	struct sl_err err;
	struct sl_buf c1, c2;
	struct sl_avro_schema *again;
	*out = NULL;
	if (sl_avro_schema_parse(text, len, NULL, out, &err))
		return;
	sl_buf_init(&c1);
	sl_buf_init(&c2);
	sl_reg_avro_canonical(*out, &c1);
	if (sl_avro_schema_parse(c1.data, c1.len, NULL, &again, &err))
		abort(); /* a canonical string must parse */
	sl_reg_avro_canonical(again, &c2);
	if (c1.len != c2.len || memcmp(c1.data, c2.data, c1.len))
		abort(); /* canonical form is a fixed point */
	sl_buf_putc(&c2, 0);
	if (sl_reg_avro_compatible((*out)->root, again->root, &c2) != 0 && !memmem(c2.data, c2.len, "TOO_COMPLEX", 11))
		abort(); /* a schema reads its own data (unless it is too large to compare within the budget) */
	sl_avro_schema_free(again);
	sl_buf_free(&c1);
	sl_buf_free(&c2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data, *sep = NULL;
	struct sl_avro_schema *a = NULL, *b = NULL;
	struct sl_rj *ja = NULL, *jb = NULL;
	struct sl_err err;
	struct sl_buf msgs;
	size_t la = size;
	if (size > 1 << 16)
		return 0;
	for (size_t i = 0; i + 5 <= size; i++)
		if (!memcmp(s + i, "\n---\n", 5)) {
			sep = s + i;
			la = i;
			break;
		}
	sl_buf_init(&msgs);
	one_avro(s, la, &a);
	if (sep)
		one_avro(sep + 5, size - la - 5, &b);
	if (a && b) {
		sl_reg_avro_compatible(b->root, a->root, &msgs);
		sl_reg_avro_compatible(a->root, b->root, &msgs);
	}
	if (!sl_jtree_parse(s, la, &ja, &err)) {
		sl_reg_jsonschema_compatible(ja, ja, &msgs);
		if (sep && !sl_jtree_parse(sep + 5, size - la - 5, &jb, &err)) {
			sl_reg_jsonschema_compatible(jb, ja, &msgs);
			sl_reg_jsonschema_compatible(ja, jb, &msgs);
		}
	}
	sl_jtree_free(ja);
	sl_jtree_free(jb);
	sl_avro_schema_free(a);
	sl_avro_schema_free(b);
	sl_buf_free(&msgs);
	return 0;
}
