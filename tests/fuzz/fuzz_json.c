/* libFuzzer target for the JSON shim: parse arbitrary bytes, then walk everything reachable (types, readers, paths,
 * iteration, rendering). Two differential checks: the error-offset scanner must agree that accepted input is valid
 * JSON, and rendering a parsed document must parse again and render to the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/json.h"

static struct sl_json_parser *P;

static void walk(struct sl_json_val v, int depth)
{
	const char *s, *key;
	size_t n, kl;
	int64_t i;
	double d;
	bool b;
	struct sl_json_iter it;
	struct sl_json_val x, y;
	sl_json_str(v, &s, &n);
	sl_json_int64(v, &i);
	sl_json_double(v, &d);
	sl_json_bool(v, &b);
	sl_json_len(v);
	if (!sl_json_iter_init(&it, v))
		return;
	if (sl_json_type(v) == SL_JSON_ARRAY) {
		size_t k = 0;
		while (sl_json_array_next(&it, &x)) {
			if (!sl_json_at(v, k++, &y) || memcmp(&x, &y, sizeof x))
				abort();
			walk(x, depth + 1);
		}
		if (k != sl_json_len(v))
			abort();
	} else {
		while (sl_json_object_next(&it, &key, &kl, &x)) {
			if (!sl_json_get(v, key, kl, &y))
				abort();
			sl_json_path(v, key, kl, &y);
			walk(x, depth + 1);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sl_err err;
	if (!P && sl_json_parser_new(&P, 1 << 20, 64, &err))
		abort();
	struct sl_json_val root, v;
	long off = sl_json_error_offset((const char *)data, size);
	if (sl_json_parse(P, (const char *)data, size, &root, &err)) {
		if (!err.msg[0])
			abort();
		return 0;
	}
	if (off != -1)
		abort(); /* simdjson accepted what the scanner calls malformed */
	walk(root, 0);
	/* Paths made from the input's own prefix: exercises the path syntax on hostile text. */
	sl_json_path(root, (const char *)data, size < 64 ? size : 64, &v);

	struct sl_buf a, b;
	sl_buf_init(&a);
	sl_buf_init(&b);
	sl_json_render(root, &a);
	sl_buf_json_str(&b, "", 0);
	sl_buf_reset(&b);
	char *copy = malloc(a.len + 1);
	memcpy(copy, a.data, a.len);
	size_t clen = a.len;
	if (sl_json_parse(P, copy, clen, &root, &err))
		abort(); /* our own rendering must be valid JSON */
	sl_json_render(root, &b);
	if (b.len != clen || memcmp(b.data, copy, clen))
		abort();
	free(copy);
	sl_buf_free(&a);
	sl_buf_free(&b);
	return 0;
}
