/* libFuzzer target for the Protobuf payload decoder (src/codec/pbwire.c): anything that can reach a topic reaches
 * it. Each input is used three ways: (1) as a whole wire-format value: the header is parsed and the body decoded
 * with the message indexes it names; (2) as a bare message body under fixed writer schemas (sluice's own for the
 * mapping, and another writer with enums, a sint/uint/fixed/float mix, a packed repeated field and a nested message
 * chosen by index), and when it decodes under sluice's own schema the record must re-encode and decode back equal;
 * (3) split at the first NUL into a writer schema text and a body, so the fuzzer also picks the schema; (4) as a
 * framed value shown as JSON by the console's decoder (sl_pbwire_json) under a schema with a map, a recursive
 * message and the well-known Timestamp. Errors are fine; crashes, leaks, unbounded work are not. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/pbwire.h"
#include "codec/protobuf.h"

static const char *OTHER = "syntax = \"proto3\";\n"
			   "package f.v1;\n"
			   "enum Color { RED = 0; GREEN = 1; }\n"
			   "message A { bytes u = 1; }\n"
			   "message B {\n"
			   "  repeated int64 extra = 1;\n"
			   "  sint32 i = 9; Color t = 4; uint64 b = 5; float d = 6; string u = 7; fixed64 day = 8;\n"
			   "  optional bool ok = 10; sfixed32 ts = 11;\n"
			   "  message C { fixed32 i = 3; bytes t = 2; sint64 b = 1; }\n"
			   "}\n";

static const char *SHOWN = "syntax = \"proto3\";\n"
			   "import \"google/protobuf/timestamp.proto\";\n"
			   "enum E { Z = 0; O = 1; }\n"
			   "message T { map<string, T> kids = 1; repeated sint64 n = 2; E e = 3; bytes b = 4;\n"
			   "  google.protobuf.Timestamp at = 5; map<int32, string> m = 6; double d = 7; T next = 8; }\n";

static struct sl_pb_schema *shown;
static struct sl_schema reader;
static struct sl_pbwire_reader *self, *other;

static void init(void)
{
	struct sl_buf b;
	sl_schema_init(&reader);
	sl_schema_add(&reader, "t", SL_T_TEXT, false, NULL);
	sl_schema_add(&reader, "i", SL_T_INT, false, NULL);
	sl_schema_add(&reader, "b", SL_T_BIGINT, false, NULL);
	sl_schema_add(&reader, "d", SL_T_DOUBLE, false, NULL);
	sl_schema_add(&reader, "ok", SL_T_BOOLEAN, false, NULL);
	sl_schema_add(&reader, "u", SL_T_UUID, false, NULL);
	sl_schema_add(&reader, "ts", SL_T_TIMESTAMP, false, NULL);
	sl_schema_add(&reader, "day", SL_T_DATE, true, NULL);
	sl_buf_init(&b);
	sl_pbwire_schema_for(&reader, "R", &b, NULL);
	if (sl_pbwire_reader_new(sl_buf_cstr(&b), &reader, &self, NULL) ||
	    sl_pbwire_reader_new(OTHER, &reader, &other, NULL) ||
	    sl_protobuf_parse(SHOWN, strlen(SHOWN), NULL, 0, &shown, NULL))
		abort();
	sl_buf_free(&b);
}

static void decode_and_round_trip(struct sl_pbwire_reader *rd, const int *idx, size_t nidx, const uint8_t *p,
				  size_t n, struct sl_arena *a)
{
	struct sl_record r, back;
	struct sl_buf b;
	if (sl_pbwire_decode(rd, idx, nidx, p, n, &r, a, NULL))
		return;
	sl_buf_init(&b);
	if (sl_pbwire_encode(&r, 1, &b, NULL) == 0) {
		int zero[1] = {0};
		if (sl_pbwire_decode(self, zero, 1, (const uint8_t *)b.data + 6, b.len - 6, &back, a, NULL))
			abort();
		for (size_t i = 0; i < reader.n; i++)
			if (r.v[i].null != back.v[i].null ||
			    (!r.v[i].null && !sl_value_eq(reader.fields[i].type, &r.v[i], &back.v[i])))
				abort();
	}
	sl_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	static const int paths[][2] = {{0, 0}, {1, 0}, {1, 0}};
	static const size_t plen[] = {1, 1, 2};
	struct sl_arena a;
	int32_t id;
	int idx[SL_PBWIRE_MAX_INDEXES];
	size_t nidx, hl;
	if (!ready) {
		init();
		ready = 1;
	}
	sl_arena_init(&a, 4096);
	struct sl_buf js;
	sl_buf_init(&js);
	sl_pbwire_json(shown, data, size, &js, NULL);
	sl_buf_free(&js);
	if (sl_pbwire_header(data, size, &id, idx, &nidx, &hl, NULL) == 0) {
		decode_and_round_trip(other, idx, nidx, data + hl, size - hl, &a);
		sl_arena_reset(&a);
		decode_and_round_trip(self, idx, nidx, data + hl, size - hl, &a);
		sl_arena_reset(&a);
	}
	int zero[1] = {0};
	decode_and_round_trip(self, zero, 1, data, size, &a);
	sl_arena_reset(&a);
	for (size_t k = 0; k < 3; k++) {
		decode_and_round_trip(other, paths[k], plen[k], data, size, &a);
		sl_arena_reset(&a);
	}
	const uint8_t *nul = memchr(data, 0, size);
	if (nul && nul - data < 4096) {
		char *text = strndup((const char *)data, (size_t)(nul - data));
		struct sl_pbwire_reader *rd;
		if (text && sl_pbwire_reader_new(text, &reader, &rd, NULL) == 0) {
			for (size_t k = 0; k < 3; k++) {
				decode_and_round_trip(rd, paths[k], plen[k], nul + 1, size - (size_t)(nul - data) - 1, &a);
				sl_arena_reset(&a);
			}
			sl_pbwire_reader_free(rd);
		}
		free(text);
	}
	sl_arena_free(&a);
	return 0;
}
