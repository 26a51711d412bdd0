/* The Avro codec (src/codec/avro.c): the schema a mapping implies, the wire-format encoder against hand-built byte
 * vectors, the decoder's resolution rules (promotions, string<->bytes, unions, reader-only and writer-only fields,
 * nested writer types skipped), its bounds on hostile input, round trips over random records, and the per-id
 * cache over an in-process registry (unknown ids, wrong magic byte). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "codec/avro.h"
#include "registry/registry.h"

#include "codec_fixture.h"

static struct sl_schema mk_schema(void)
{
	return codec_test_schema("name");
}

static void test_schema_for(void **state)
{
	(void)state;
	struct sl_schema s = mk_schema();
	struct sl_buf b;
	sl_buf_init(&b);
	assert_int_equal(sl_avro_schema_for(&s, "seed-users", &b, NULL), 0);
	assert_string_equal(sl_buf_cstr(&b),
		"{\"type\":\"record\",\"name\":\"seed_users\",\"fields\":["
		"{\"name\":\"id\",\"type\":{\"type\":\"string\",\"logicalType\":\"uuid\"}},"
		"{\"name\":\"name\",\"type\":[\"null\",\"string\"],\"default\":null},"
		"{\"name\":\"n\",\"type\":[\"null\",\"int\"],\"default\":null},"
		"{\"name\":\"big\",\"type\":[\"null\",\"long\"],\"default\":null},"
		"{\"name\":\"x\",\"type\":[\"null\",\"double\"],\"default\":null},"
		"{\"name\":\"ok\",\"type\":[\"null\",\"boolean\"],\"default\":null},"
		"{\"name\":\"at\",\"type\":[\"null\",{\"type\":\"long\",\"logicalType\":\"timestamp-millis\"}],\"default\":null},"
		"{\"name\":\"day\",\"type\":{\"type\":\"int\",\"logicalType\":\"date\"}}]}");
	/* The registry accepts it, and it reads itself. */
	struct sl_avro_reader *rd;
	assert_int_equal(sl_avro_reader_new(sl_buf_cstr(&b), &s, &rd, NULL), 0);
	sl_avro_reader_free(rd);
	sl_buf_free(&b);
	sl_schema_free(&s);
}

static void test_encode_bytes(void **state)
{
	(void)state;
	struct sl_schema s = mk_schema();
	struct sl_arena a;
	struct sl_record r;
	struct sl_buf b;
	sl_arena_init(&a, 4096);
	sl_buf_init(&b);
	assert_int_equal(sl_record_init(&r, &s, &a, NULL), 0);
	assert_int_equal(sl_uuid_parse("123e4567-e89b-12d3-a456-426614174000", 36, r.v[0].u.uuid), 0);
	r.v[0].null = false;
	r.v[1] = (struct sl_value){.u.s = {"ab", 2}};
	r.v[2] = (struct sl_value){.u.i32 = -1};
	r.v[4] = (struct sl_value){.u.d = 1.0};
	r.v[5] = (struct sl_value){.u.b = true};
	r.v[6] = (struct sl_value){.u.i64 = 64};
	r.v[7] = (struct sl_value){.u.days = 1};
	assert_int_equal(sl_avro_encode(&r, 258, &b, NULL), 0);
	static const unsigned char want[] = {
		0x00, 0x00, 0x00, 0x01, 0x02,                   /* magic, id 258 */
		0x48, '1', '2', '3', 'e', '4', '5', '6', '7', '-', 'e', '8', '9', 'b', '-', '1', '2', 'd', '3', '-',
		'a', '4', '5', '6', '-', '4', '2', '6', '6', '1', '4', '1', '7', '4', '0', '0', '0', /* uuid: len 36 */
		0x02, 0x04, 'a', 'b',                           /* name: branch 1, "ab" */
		0x02, 0x01,                                     /* n: branch 1, -1 */
		0x00,                                           /* big: null */
		0x02, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f,             /* x: 1.0 little-endian */
		0x02, 0x01,                                     /* ok: true */
		0x02, 0x80, 0x01,                               /* at: 64 */
		0x02,                                           /* day: 1 */
	};
	assert_int_equal(b.len, sizeof want);
	assert_memory_equal(b.data, want, sizeof want);
	/* A required column without a value is refused, by name. */
	struct sl_err err = {0};
	r.v[7].null = true;
	sl_buf_reset(&b);
	assert_int_equal(sl_avro_encode(&r, 1, &b, &err), SL_EINVAL);
	assert_non_null(strstr(err.msg, "'day'"));
	sl_buf_free(&b);
	sl_arena_free(&a);
	sl_schema_free(&s);
}

static void test_header(void **state)
{
	(void)state;
	int32_t id;
	struct sl_err err = {0};
	assert_int_equal(sl_avro_wire_header("\x00\x00\x00\x00\x07", 5, &id, NULL), 0);
	assert_int_equal(id, 7);
	assert_int_equal(sl_avro_wire_header("{\"a\":1}", 7, &id, &err), SL_EINVAL);
	assert_non_null(strstr(err.msg, "Unknown magic byte!"));
	assert_int_equal(sl_avro_wire_header("\x00\x00", 2, &id, &err), SL_EINVAL);
	assert_int_equal(sl_avro_wire_header("", 0, &id, &err), SL_EINVAL);
}

/* A writer with promotions, bytes for text, a union with several branches, nested types to skip, a field the
 * reader lacks and a reader column the writer lacks. */
static const char *WRITER =
	"{\"type\":\"record\",\"name\":\"W\",\"fields\":["
	"{\"name\":\"skip1\",\"type\":{\"type\":\"map\",\"values\":{\"type\":\"array\",\"items\":"
	"{\"type\":\"record\",\"name\":\"Inner\",\"fields\":[{\"name\":\"q\",\"type\":\"string\"},"
	"{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"B\"]}},"
	"{\"name\":\"f\",\"type\":{\"type\":\"fixed\",\"name\":\"F\",\"size\":3}}]}}}},"
	"{\"name\":\"name\",\"type\":\"bytes\"},"
	"{\"name\":\"big\",\"type\":\"int\"},"
	"{\"name\":\"x\",\"type\":\"float\"},"
	"{\"name\":\"n\",\"type\":[\"null\",\"string\",\"int\"]},"
	"{\"name\":\"at\",\"type\":{\"type\":\"long\",\"logicalType\":\"timestamp-micros\"}},"
	"{\"name\":\"id\",\"type\":{\"type\":\"fixed\",\"name\":\"U\",\"size\":16}},"
	"{\"name\":\"skip2\",\"type\":[\"null\",\"double\",{\"type\":\"array\",\"items\":\"long\"}]},"
	"{\"name\":\"day\",\"type\":\"int\"}]}";

static void test_resolve(void **state)
{
	(void)state;
	struct sl_schema s = mk_schema();
	struct sl_avro_reader *rd;
	struct sl_err err = {0};
	struct sl_arena a;
	struct sl_record r;
	sl_arena_init(&a, 4096);
	assert_int_equal(sl_avro_reader_new(WRITER, &s, &rd, &err), 0);
	static const unsigned char d[] = {
		/* skip1: map block of 1 { "k": array block -1 (byte size 8) of [Inner{q:"z", e:1, f:"abc"}] , 0 }, 0 */
		0x02, 0x02, 'k', 0x01, 0x0c, 0x02, 'z', 0x02, 'a', 'b', 'c', 0x00, 0x00,
		0x06, 'h', 'e', 'y',                      /* name: bytes "hey" */
		0x7f,                                     /* big: int -64 */
		0x00, 0x00, 0xc0, 0x3f,                   /* x: float 1.5 */
		0x04, 0x0e,                               /* n: branch 2 (int) 7 */
		0x80, 0x89, 0x7a,                         /* at: 1000000 us = 1000 ms */
		1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, /* id: fixed 16 */
		0x04, 0x03, 0x04, 0x02, 0x04, 0x00,       /* skip2: branch 2, block of -2 items (2 bytes): 1, 2; end */
		0x06,                                     /* day: 3 */
	};
	unsigned char v[sizeof d];
	size_t k = sizeof d;
	memcpy(v, d, k);
	assert_int_equal(sl_avro_decode(rd, v, k, &r, &a, &err), 0);
	assert_int_equal(r.v[1].u.s.n, 3);
	assert_memory_equal(r.v[1].u.s.p, "hey", 3);
	assert_false(r.v[3].null);
	assert_int_equal(r.v[3].u.i64, -64);
	assert_true(r.v[4].u.d == 1.5);
	assert_int_equal(r.v[2].u.i32, 7);
	assert_int_equal(r.v[6].u.i64, 1000);
	assert_int_equal(r.v[0].u.uuid[15], 16);
	assert_true(r.v[5].null); /* the reader's "ok" is not in the writer */
	assert_int_equal(r.v[7].u.days, 3);
	/* Union branch string where the reader wants an int: this datum fails, naming the field. */
	v[22] = 0x02;
	assert_int_not_equal(sl_avro_decode(rd, v, k, &r, &a, &err), 0);
	assert_non_null(strstr(err.msg, "'n'"));
	/* Every truncation fails cleanly; trailing bytes too. */
	for (size_t cut = 0; cut < k; cut++)
		assert_int_not_equal(sl_avro_decode(rd, v, cut, &r, &a, &err), 0);
	sl_avro_reader_free(rd);
	/* A writer field of a type the column cannot take is refused when the reader is built. */
	assert_int_equal(sl_avro_reader_new("{\"type\":\"record\",\"name\":\"W\",\"fields\":[{\"name\":\"n\",\"type\":\"long\"}]}",
					    &s, &rd, &err), SL_ETYPE);
	assert_non_null(strstr(err.msg, "'n'"));
	assert_int_equal(sl_avro_reader_new("\"string\"", &s, &rd, &err), SL_EINVAL);
	assert_int_equal(sl_avro_reader_new("{bad", &s, &rd, &err), SL_EINVAL);
	sl_arena_free(&a);
	sl_schema_free(&s);
}

static void test_hostile(void **state)
{
	(void)state;
	struct sl_schema s;
	struct sl_avro_reader *rd;
	struct sl_err err = {0};
	struct sl_arena a;
	struct sl_record r;
	sl_schema_init(&s);
	assert_int_equal(sl_schema_add(&s, "t", SL_T_TEXT, false, NULL), 0);
	sl_arena_init(&a, 4096);
	assert_int_equal(sl_avro_reader_new("{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":"
					    "{\"type\":\"array\",\"items\":\"null\"}},{\"name\":\"t\",\"type\":\"string\"}]}",
					    &s, &rd, &err), 0);
	/* A huge block of zero-byte items: bounded work, not a loop over 2^62 items. */
	static const unsigned char huge[] = {0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x00, 0x00};
	assert_int_equal(sl_avro_decode(rd, huge, sizeof huge, &r, &a, &err), SL_ETOOBIG);
	/* The bound follows the datum's size: 1024 + 8 per byte. A 4-byte datum (a 2-byte count, the end of the array,
	 * an empty string) holds 1056 nulls; 1057 is refused with the datum's size named. */
	unsigned char nulls[] = {0xc0, 0x10, 0x00, 0x00}; /* zigzag(1056) = 2112: varint c0 10 */
	assert_int_equal(sl_avro_decode(rd, nulls, sizeof nulls, &r, &a, &err), 0);
	unsigned char more[] = {0xc2, 0x10, 0x00, 0x00}; /* 1057 */
	assert_int_equal(sl_avro_decode(rd, more, sizeof more, &r, &a, &err), SL_ETOOBIG);
	assert_non_null(strstr(err.msg, "4-byte datum"));
	/* A negative string length and one past the end. */
	static const unsigned char neg[] = {0x00, 0x01};
	assert_int_equal(sl_avro_decode(rd, neg, sizeof neg, &r, &a, &err), SL_EINVAL);
	static const unsigned char past[] = {0x00, 0xfe, 0xff, 0xff, 0xff, 0x0f, 'a'};
	assert_int_equal(sl_avro_decode(rd, past, sizeof past, &r, &a, &err), SL_EINVAL);
	/* An eleven-byte varint. */
	static const unsigned char longv[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
	assert_int_equal(sl_avro_decode(rd, longv, sizeof longv, &r, &a, &err), SL_EINVAL);
	sl_avro_reader_free(rd);
	/* Deep nesting through a recursive record is cut at 64 levels. */
	assert_int_equal(sl_avro_reader_new("{\"type\":\"record\",\"name\":\"L\",\"fields\":[{\"name\":\"next\",\"type\":"
					    "[\"null\",\"L\"]}]}", &s, &rd, &err), 0);
	unsigned char deep[200];
	memset(deep, 0x02, sizeof deep);
	assert_int_equal(sl_avro_decode(rd, deep, sizeof deep, &r, &a, &err), SL_ETOOBIG);
	sl_avro_reader_free(rd);
	sl_arena_free(&a);
	sl_schema_free(&s);
}

static uint64_t rs = 99;
static uint64_t rnd(void)
{
	uint64_t z = (rs += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void test_round_trip(void **state)
{
	(void)state;
	struct sl_schema s = mk_schema();
	struct sl_buf text, b;
	struct sl_avro_reader *rd;
	struct sl_arena a;
	sl_buf_init(&text);
	sl_buf_init(&b);
	sl_arena_init(&a, 1 << 16);
	assert_int_equal(sl_avro_schema_for(&s, "rt", &text, NULL), 0);
	assert_int_equal(sl_avro_reader_new(sl_buf_cstr(&text), &s, &rd, NULL), 0);
	char str[64];
	for (int i = 0; i < 5000; i++) {
		struct sl_record r, back;
		sl_arena_reset(&a);
		assert_int_equal(sl_record_init(&r, &s, &a, NULL), 0);
		for (size_t c = 0; c < s.n; c++) {
			struct sl_value *v = &r.v[c];
			v->null = c != 0 && c != 7 && rnd() % 4 == 0;
			uint64_t x = rnd();
			switch (s.fields[c].type) {
			case SL_T_TEXT: {
				size_t n = x % sizeof str;
				for (size_t k = 0; k < n; k++)
					str[k] = (char)(rnd() & 0xff);
				v->u.s.p = sl_arena_memdup(&a, str, n ? n : 1);
				v->u.s.n = n;
				break;
			}
			case SL_T_INT: v->u.i32 = (int32_t)x; break;
			case SL_T_BIGINT:
			case SL_T_TIMESTAMP: v->u.i64 = (int64_t)x >> (x % 64); break;
			case SL_T_DOUBLE: {
				double d = (double)(int64_t)x / (double)(rnd() | 1);
				v->u.d = d;
				break;
			}
			case SL_T_BOOLEAN: v->u.b = x & 1; break;
			case SL_T_UUID: memcpy(v->u.uuid, &x, 8); x = rnd(); memcpy(v->u.uuid + 8, &x, 8); break;
			case SL_T_DATE: v->u.days = (int32_t)(x % 100000) - 50000; break;
			default: break;
			}
		}
		sl_buf_reset(&b);
		assert_int_equal(sl_avro_encode(&r, 5, &b, NULL), 0);
		int32_t id;
		assert_int_equal(sl_avro_wire_header(b.data, b.len, &id, NULL), 0);
		assert_int_equal(id, 5);
		assert_int_equal(sl_avro_decode(rd, (const unsigned char *)b.data + 5, b.len - 5, &back, &a, NULL), 0);
		for (size_t c = 0; c < s.n; c++) {
			assert_int_equal(r.v[c].null, back.v[c].null);
			if (!r.v[c].null)
				assert_true(sl_value_eq(s.fields[c].type, &r.v[c], &back.v[c]));
		}
	}
	sl_avro_reader_free(rd);
	sl_arena_free(&a);
	sl_buf_free(&text);
	sl_buf_free(&b);
	sl_schema_free(&s);
}

/* What process.c wires: the cache asks the registry client for ids it has not seen. */
static int fetch_from_client(void *ctx, int id, char **schema, char **type, struct sl_err *err)
{
	return sl_registry_client_fetch(ctx, id, schema, type, err);
}

static void test_cache_with_registry(void **state)
{
	(void)state;
	char dir[] = "/tmp/sl-avro-test-XXXXXX";
	assert_non_null(mkdtemp(dir));
	struct sl_registry_client *reg;
	struct sl_avro_cache *cache;
	struct sl_schema s = mk_schema();
	struct sl_buf text, b;
	struct sl_arena a;
	struct sl_record r, back;
	struct sl_err err = {0};
	int id;
	sl_buf_init(&text);
	sl_buf_init(&b);
	sl_arena_init(&a, 4096);
	assert_int_equal(sl_registry_client_open(&reg, NULL, NULL, dir, &err), 0);
	assert_int_equal(sl_avro_schema_for(&s, "c", &text, NULL), 0);
	assert_int_equal(sl_registry_client_register(reg, "t-value", sl_buf_cstr(&text), "AVRO", &id, &err), 0);
	assert_int_equal(sl_avro_cache_new(fetch_from_client, reg, &s, &cache, &err), 0);
	assert_int_equal(sl_record_init(&r, &s, &a, NULL), 0);
	r.v[0].null = false;
	r.v[7] = (struct sl_value){.u.days = 9};
	assert_int_equal(sl_avro_encode(&r, id, &b, NULL), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(sl_avro_cache_decode(cache, b.data, b.len, &back, &a, &err), 0);
		assert_int_equal(back.v[7].u.days, 9);
	}
	/* An unknown id, twice (the second from the negative cache), and a JSON value. */
	((unsigned char *)b.data)[4] = 99;
	assert_int_equal(sl_avro_cache_decode(cache, b.data, b.len, &back, &a, &err), SL_ENOTFOUND);
	assert_non_null(strstr(err.msg, "99"));
	assert_int_equal(sl_avro_cache_decode(cache, b.data, b.len, &back, &a, &err), SL_ENOTFOUND);
	assert_int_equal(sl_avro_cache_decode(cache, "{\"id\":1}", 8, &back, &a, &err), SL_EINVAL);
	assert_non_null(strstr(err.msg, "Unknown magic byte!"));
	/* An incompatible change is refused with the rule that broke. */
	assert_int_equal(sl_registry_client_register(reg, "t-value",
		"{\"type\":\"record\",\"name\":\"c\",\"fields\":[{\"name\":\"zz\",\"type\":\"int\"}]}", "AVRO", &id,
		&err), SL_ETYPE);
	assert_non_null(strstr(err.msg, "READER_FIELD_MISSING_DEFAULT_VALUE"));
	sl_avro_cache_free(cache);
	sl_registry_client_close(reg);
	sl_arena_free(&a);
	sl_buf_free(&text);
	sl_buf_free(&b);
	sl_schema_free(&s);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

static void test_to_json(void **state)
{
	(void)state;
	struct sl_avro_reader *rd;
	struct sl_err err = {0};
	const char *w = "{\"type\":\"record\",\"name\":\"R\",\"fields\":["
			"{\"name\":\"n\",\"type\":[\"null\",\"long\"]},{\"name\":\"e\",\"type\":{\"type\":\"enum\","
			"\"name\":\"E\",\"symbols\":[\"A\",\"B\"]}},{\"name\":\"f\",\"type\":\"float\"},"
			"{\"name\":\"m\",\"type\":{\"type\":\"map\",\"values\":{\"type\":\"array\",\"items\":\"string\"}}},"
			"{\"name\":\"b\",\"type\":\"bytes\"},{\"name\":\"x\",\"type\":{\"type\":\"fixed\",\"name\":\"X\","
			"\"size\":2}}]}";
	assert_int_equal(sl_avro_reader_new(w, NULL, &rd, &err), 0);
	/* n = 150 (branch 1), e = B, f = NaN, m = {"k": ["q\""]}, b = "\x00A", x = "\"\x7f" */
	const unsigned char d[] = {2, 0xac, 0x02, 2, 0, 0, 0xc0, 0x7f, 2, 2, 'k', 2, 4, 'q', '"', 0, 0, 4, 0, 'A', '"', 0x7f};
	struct sl_buf out;
	sl_buf_init(&out);
	assert_int_equal(sl_avro_to_json(rd, d, sizeof d, &out, &err), 0);
	assert_string_equal(sl_buf_cstr(&out), "{\"n\":150,\"e\":\"B\",\"f\":\"NaN\",\"m\":{\"k\":[\"q\\\"\"]},"
					      "\"b\":\"\\u0000A\",\"x\":\"\\u0022\\u007f\"}");
	/* Hostile: an enum past its symbols, a truncated datum, bytes left over; out is left as it was. */
	sl_buf_reset(&out);
	unsigned char bad[sizeof d];
	memcpy(bad, d, sizeof d);
	bad[3] = 4;
	assert_int_equal(sl_avro_to_json(rd, bad, sizeof bad, &out, &err), SL_EINVAL);
	assert_int_equal(sl_avro_to_json(rd, d, sizeof d - 1, &out, &err), SL_EINVAL);
	unsigned char more[sizeof d + 1];
	memcpy(more, d, sizeof d);
	more[sizeof d] = 0;
	assert_int_equal(sl_avro_to_json(rd, more, sizeof more, &out, &err), SL_EINVAL);
	assert_int_equal(out.len, 0);
	sl_avro_reader_free(rd);
	/* A root that is not a record renders too. */
	assert_int_equal(sl_avro_reader_new("\"string\"", NULL, &rd, &err), 0);
	assert_int_equal(sl_avro_to_json(rd, "\x04hi", 3, &out, &err), 0);
	assert_string_equal(sl_buf_cstr(&out), "\"hi\"");
	sl_avro_reader_free(rd);
	sl_buf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_schema_for), cmocka_unit_test(test_encode_bytes), cmocka_unit_test(test_header),
		cmocka_unit_test(test_resolve),	   cmocka_unit_test(test_hostile),	cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_cache_with_registry), cmocka_unit_test(test_to_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
