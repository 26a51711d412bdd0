/* libFuzzer target for the Avro payload decoder (src/codec/avro.c): anything that can reach a topic reaches it.
 * Each input is used two ways: (1) as a datum under fixed writer schemas (nested maps/arrays/records, unions,
 * a recursive record, promotions) resolved into a mapping schema, and when it decodes, the record must re-encode
 * with the mapping's own schema and decode back equal; (2) split at the first NUL into a writer schema text and a
 * datum, so the fuzzer also picks the schema. Errors are fine; crashes, leaks, unbounded work are not. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/avro.h"

static const char *const WRITERS[] = {
	"{\"type\":\"record\",\"name\":\"W\",\"fields\":["
	"{\"name\":\"m\",\"type\":{\"type\":\"map\",\"values\":{\"type\":\"array\",\"items\":{\"type\":\"record\","
	"\"name\":\"I\",\"fields\":[{\"name\":\"q\",\"type\":\"string\"},{\"name\":\"e\",\"type\":{\"type\":\"enum\","
	"\"name\":\"E\",\"symbols\":[\"A\",\"B\"]}},{\"name\":\"f\",\"type\":{\"type\":\"fixed\",\"name\":\"F\","
	"\"size\":3}}]}}}},"
	"{\"name\":\"t\",\"type\":[\"null\",\"bytes\",\"string\"]},{\"name\":\"i\",\"type\":\"int\"},"
	"{\"name\":\"b\",\"type\":[\"int\",\"long\",\"null\"]},{\"name\":\"d\",\"type\":\"float\"},"
	"{\"name\":\"u\",\"type\":[\"null\",{\"type\":\"fixed\",\"name\":\"U\",\"size\":16},\"string\"]},"
	"{\"name\":\"ts\",\"type\":{\"type\":\"long\",\"logicalType\":\"timestamp-micros\"}},"
	"{\"name\":\"day\",\"type\":\"int\"},{\"name\":\"ok\",\"type\":[\"boolean\",\"null\"]}]}",
	"{\"type\":\"record\",\"name\":\"L\",\"fields\":[{\"name\":\"next\",\"type\":[\"null\",\"L\"]},"
	"{\"name\":\"t\",\"type\":\"string\"},{\"name\":\"a\",\"type\":{\"type\":\"array\",\"items\":\"null\"}}]}",
};

static struct sl_schema reader;
static char *reader_text;

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
	sl_schema_add(&reader, "day", SL_T_DATE, false, NULL);
	sl_buf_init(&b);
	sl_avro_schema_for(&reader, "R", &b, NULL);
	reader_text = strdup(sl_buf_cstr(&b));
	sl_buf_free(&b);
}

static void decode_and_round_trip(const struct sl_avro_reader *rd, const struct sl_avro_reader *self,
				  const uint8_t *p, size_t n, struct sl_arena *a)
{
	struct sl_record r, back;
	struct sl_buf b;
	if (sl_avro_decode(rd, p, n, &r, a, NULL))
		return;
	sl_buf_init(&b);
	if (sl_avro_encode(&r, 1, &b, NULL) == 0) {
		if (sl_avro_decode(self, (const uint8_t *)b.data + SL_AVRO_HEADER, b.len - SL_AVRO_HEADER, &back, a, NULL))
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
	static struct sl_avro_reader *rds[sizeof WRITERS / sizeof *WRITERS], *self;
	static int ready;
	struct sl_arena a;
	int32_t id;
	if (!ready) {
		init();
		for (size_t i = 0; i < sizeof WRITERS / sizeof *WRITERS; i++)
			if (sl_avro_reader_new(WRITERS[i], &reader, &rds[i], NULL))
				abort();
		if (sl_avro_reader_new(reader_text, &reader, &self, NULL))
			abort();
		ready = 1;
	}
	sl_arena_init(&a, 4096);
	sl_avro_wire_header(data, size, &id, NULL);
	struct sl_buf js;
	sl_buf_init(&js);
	for (size_t i = 0; i < sizeof WRITERS / sizeof *WRITERS; i++) {
		decode_and_round_trip(rds[i], self, data, size, &a);
		sl_arena_reset(&a);
		sl_buf_reset(&js);
		sl_avro_to_json(rds[i], data, size, &js, NULL); /* the console's message browser */
	}
	decode_and_round_trip(self, self, data, size, &a);
	sl_arena_reset(&a);
	const uint8_t *nul = memchr(data, 0, size);
	if (nul && nul - data < 4096) {
		char *text = strndup((const char *)data, (size_t)(nul - data));
		struct sl_avro_reader *rd;
		if (text && sl_avro_reader_new(text, &reader, &rd, NULL) == 0) {
			decode_and_round_trip(rd, self, nul + 1, size - (size_t)(nul - data) - 1, &a);
			sl_avro_reader_free(rd);
		}
		if (text && sl_avro_reader_new(text, NULL, &rd, NULL) == 0) {
			sl_buf_reset(&js);
			sl_avro_to_json(rd, nul + 1, size - (size_t)(nul - data) - 1, &js, NULL);
			sl_avro_reader_free(rd);
		}
		free(text);
	}
	sl_arena_free(&a);
	sl_buf_free(&js);
	return 0;
}
