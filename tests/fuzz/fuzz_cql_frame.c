/* libFuzzer target for the CQL v4 response decoders: a 9-byte header then a body. Depending on the opcode the body
 * goes through the RESULT decoder (then every row and every value is formatted as text and JSON, which walks
 * collections, tuples and UDTs), the ERROR decoder, the EVENT decoder, AUTHENTICATE or SUPPORTED; bodies flagged
 * compressed go through lz4 first. Nothing may crash, leak or read out of bounds whatever the lengths say. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "cql/proto.h"

static void walk_result(const struct sl_cql_result *r)
{
	struct sl_cql_iter it;
	struct sl_buf b;
	sl_buf_init(&b);
	sl_cql_iter_init(&it, r);
	while (sl_cql_iter_next(&it)) {
		for (int c = 0; c < sl_cql_result_column_count(r); c++) {
			sl_buf_reset(&b);
			sl_cql_value_format(&b, sl_cql_iter_value(&it, c), false);
			sl_buf_reset(&b);
			sl_cql_value_format(&b, sl_cql_iter_value(&it, c), true);
		}
	}
	sl_cql_iter_free(&it);
	for (int c = 0; c < sl_cql_result_column_count(r); c++) {
		const struct sl_cql_column *col = sl_cql_result_column(r, c);
		char name[256];
		if (col)
			sl_cql_type_name(col->type, name, sizeof name);
	}
	sl_cql_result_has_more_pages(r);
	sl_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < SL_CQL_HEADER_LEN)
		return 0;
	struct sl_cql_header h;
	struct sl_err e = {0};
	if (sl_cql_header_decode(data, &h, &e) < 0)
		return 0;
	const uint8_t *body = data + SL_CQL_HEADER_LEN;
	size_t len = size - SL_CQL_HEADER_LEN;
	if (h.length < len)
		len = h.length; /* trailing bytes would be the next frame */
	uint8_t *owned = NULL;
	size_t olen = 0;
	if (h.flags & SL_CQL_FLAG_COMPRESSION) {
		if (sl_cql_lz4_decompress(body, len, &owned, &olen, &e) < 0)
			return 0;
	} else {
		owned = malloc(len ? len : 1);
		if (!owned)
			return 0;
		memcpy(owned, body, len);
		olen = len;
	}
	struct sl_cql_rd r;
	sl_cql_rd_init(&r, owned, olen);
	switch (h.opcode) {
	case SL_CQL_OP_RESULT: {
		struct sl_cql_result *res;
		if (sl_cql_result_decode(&res, owned, olen, h.flags, &e) == 0) {
			walk_result(res);
			sl_cql_result_free(res);
		}
		return 0; /* the decoder owns the body */
	}
	case SL_CQL_OP_ERROR: {
		struct sl_cql_error er;
		char desc[512];
		if (sl_cql_decode_prefix(&r, h.flags, NULL, NULL, NULL, NULL, &e) == 0 &&
		    sl_cql_decode_error(&r, &er, &e) == 0)
			sl_cql_error_describe(&er, desc, sizeof desc);
		break;
	}
	case SL_CQL_OP_EVENT: {
		struct sl_cql_event ev;
		if (sl_cql_decode_prefix(&r, h.flags, NULL, NULL, NULL, NULL, &e) == 0)
			sl_cql_decode_event(&r, &ev, &e);
		break;
	}
	case SL_CQL_OP_AUTHENTICATE: {
		char cls[128];
		sl_cql_decode_authenticate(&r, cls, sizeof cls, &e);
		break;
	}
	case SL_CQL_OP_SUPPORTED: {
		bool lz4;
		sl_cql_decode_supported(&r, &lz4, &e);
		break;
	}
	default:
		break;
	}
	free(owned);
	return 0;
}
