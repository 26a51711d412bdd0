/* Typed records: schemas, the canonical text forms (uuid, timestamp, date, double) and the JSON payload codec, with
 * exact round trips over edge values and random ones. */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec/record_json.h"
#include "core/record.h"

static uint64_t rs = 12345;
static uint64_t rnd(void)
{
	uint64_t z = (rs += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void test_uuid(void **state)
{
	uint8_t u[16], v[16];
	char s[SL_UUID_STR_LEN + 1];
	assert_int_equal(sl_uuid_parse("123e4567-E89B-12d3-a456-426614174000", 36, u), 0);
	sl_uuid_format(u, s);
	assert_string_equal(s, "123e4567-e89b-12d3-a456-426614174000");
	assert_int_equal(sl_uuid_parse("123e4567e89b12d3a456426614174000", 32, v), 0);
	assert_memory_equal(u, v, 16);
	assert_int_equal(sl_uuid_parse("123e4567-e89b-12d3-a456-42661417400g", 36, v), SL_EINVAL);
	assert_int_equal(sl_uuid_parse("123e4567-e89b-12d3-a456_426614174000", 36, v), SL_EINVAL);
	assert_int_equal(sl_uuid_parse("123e4567-e89b-12d3-a456-42661417400", 35, v), SL_EINVAL);
	assert_int_equal(sl_uuid_parse("", 0, v), SL_EINVAL);
	for (int i = 0; i < 1000; i++) {
		sl_uuid_v4_from_random(rnd(), rnd(), u);
		sl_uuid_format(u, s);
		assert_int_equal(s[14], '4');
		assert_non_null(strchr("89ab", s[19]));
		assert_int_equal(sl_uuid_parse(s, 36, v), 0);
		assert_memory_equal(u, v, 16);
	}
}

static void test_time(void **state)
{
	char s[SL_TIMESTAMP_STR_MAX];
	int64_t ms;
	int32_t d;
	assert_int_equal(sl_timestamp_format(0, s), 0);
	assert_string_equal(s, "1970-01-01T00:00:00.000Z");
	assert_int_equal(sl_timestamp_format(1704164645678LL, s), 0);
	assert_string_equal(s, "2024-01-02T03:04:05.678Z");
	assert_int_equal(sl_timestamp_format(-1, s), 0);
	assert_string_equal(s, "1969-12-31T23:59:59.999Z");
	assert_int_equal(sl_timestamp_format(253402300799999LL, s), 0);
	assert_string_equal(s, "9999-12-31T23:59:59.999Z");
	assert_int_equal(sl_timestamp_format(253402300800000LL, s), SL_EINVAL);
	assert_int_equal(sl_timestamp_format(-62167219200000LL, s), 0);
	assert_string_equal(s, "0000-01-01T00:00:00.000Z");
	assert_int_equal(sl_timestamp_format(-62167219200001LL, s), SL_EINVAL);
	assert_int_equal(sl_timestamp_format(INT64_MIN, s), SL_EINVAL);
	assert_int_equal(sl_timestamp_format(INT64_MAX, s), SL_EINVAL);

	/* Every representable millisecond round-trips, sampled at random over the whole range. */
	for (int i = 0; i < 200000; i++) {
		int64_t want = (int64_t)(rnd() % 315569519999999ULL) - 62167219200000LL;
		assert_int_equal(sl_timestamp_format(want, s), 0);
		assert_int_equal(sl_timestamp_parse(s, strlen(s), &ms), 0);
		assert_true(ms == want);
		int32_t days = sl_days_from_ms(want);
		char ds[SL_DATE_STR_MAX];
		assert_int_equal(sl_date_format(days, ds), 0);
		assert_memory_equal(ds, s, 10);
		assert_int_equal(sl_date_parse(ds, 10, &d), 0);
		assert_int_equal(d, days);
	}
	assert_int_equal(sl_timestamp_parse("2024-01-02T03:04:05+05:30", 25, &ms), 0);
	assert_true(ms == 1704164645000LL - 19800000LL);
	assert_int_equal(sl_timestamp_parse("2024-01-02T03:04", 16, &ms), 0);
	assert_true(ms == 1704164640000LL);
	const char *bad[] = {"2024-1-02", "2024-01-02T", "2024-01-02T03", "2024-01-02T03:04:05.", "2024-13-01",
			     "2024-01-32", "2023-02-29", "2024-01-02T03:04:05+5", "2024-01-02T03:04:05Zx",
			     "2024-01-02T03:60:00", "x", ""};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (sl_timestamp_parse(bad[i], strlen(bad[i]), &ms) == 0)
			fail_msg("'%s' parsed as a timestamp", bad[i]);
	assert_int_equal(sl_date_parse("2024-02-29", 10, &d), 0);
	assert_int_equal(sl_date_parse("2024-02-29T00:00:00Z", 20, &d), SL_EINVAL);
	assert_int_equal(sl_date_parse("1900-02-29", 10, &d), SL_EINVAL);
	assert_int_equal(sl_date_parse("2000-02-29", 10, &d), 0);
}

static void test_double(void **state)
{
	char s[32];
	struct { double d; const char *want; } cases[] = {
		{123.0, "123"}, {0.1, "0.1"}, {-2.5, "-2.5"}, {1e21, "1e+21"}, {-0.0, "-0.0"},
		{DBL_MAX, "1.7976931348623157e+308"}, {5e-324, "4.94065645841247e-324"}, {1.0 / 3, "0.3333333333333333"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		assert_int_equal(sl_double_format(cases[i].d, s), 0);
		assert_string_equal(s, cases[i].want);
	}
	assert_int_equal(sl_double_format(NAN, s), SL_EINVAL);
	assert_int_equal(sl_double_format(INFINITY, s), SL_EINVAL);
	for (int i = 0; i < 100000; i++) {
		uint64_t bits = rnd();
		double d;
		memcpy(&d, &bits, 8);
		if (!isfinite(d))
			continue;
		assert_int_equal(sl_double_format(d, s), 0);
		double back = strtod(s, NULL);
		assert_memory_equal(&back, &d, 8);
	}
}

static void test_schema(void **state)
{
	struct sl_schema s;
	struct sl_err err;
	enum sl_type t;
	sl_schema_init(&s);
	assert_int_equal(sl_schema_add(&s, "a", SL_T_TEXT, false, &err), 0);
	assert_int_equal(sl_schema_add(&s, "a", SL_T_INT, false, &err), SL_EINVAL);
	assert_non_null(strstr(err.msg, "column 'a' appears twice"));
	assert_int_equal(sl_schema_add(&s, "", SL_T_INT, false, &err), SL_EINVAL);
	assert_int_equal(sl_schema_set_key(&s, "b", &err), SL_ENOTFOUND);
	assert_int_equal(sl_schema_set_key(&s, "a", &err), 0);
	assert_int_equal(s.key, 0);
	sl_schema_free(&s);
	assert_int_equal(sl_type_parse("TimeStamp", &t), 0);
	assert_int_equal(t, SL_T_TIMESTAMP);
	assert_int_equal(sl_type_parse("string", &t), SL_ENOTFOUND);
	assert_string_equal(sl_type_suggest("string"), "text");
	assert_string_equal(sl_type_suggest("bool"), "boolean");
	assert_string_equal(sl_type_suggest("bigitn"), "bigint");
	assert_null(sl_type_suggest("zzzzzzzz"));
	for (int i = 0; i < SL_T__COUNT; i++) {
		assert_int_equal(sl_type_parse(sl_type_name((enum sl_type)i), &t), 0);
		assert_int_equal(t, i);
	}
}

static struct sl_schema all_types(void)
{
	struct sl_schema s;
	struct sl_err err;
	sl_schema_init(&s);
	const char *names[] = {"t", "i", "b", "d", "bo", "u", "ts", "dt"};
	for (int i = 0; i < SL_T__COUNT; i++)
		assert_int_equal(sl_schema_add(&s, names[i], (enum sl_type)i, i == 0, &err), 0);
	assert_int_equal(sl_schema_set_key(&s, "u", &err), 0);
	return s;
}

static void roundtrip(const struct sl_schema *s, const struct sl_record *r, struct sl_json_parser *p, struct sl_arena *a,
		      const char *want_json)
{
	struct sl_buf b, b2;
	struct sl_err err;
	struct sl_record back;
	sl_buf_init(&b);
	sl_buf_init(&b2);
	assert_int_equal(sl_record_to_json(r, &b, &err), 0);
	if (want_json)
		assert_string_equal(sl_buf_cstr(&b), want_json);
	if (sl_record_decode_json(&back, s, p, b.data, b.len, a, &err))
		fail_msg("decode %s: %s", sl_buf_cstr(&b), err.msg);
	for (size_t i = 0; i < s->n; i++)
		if (!sl_value_eq(s->fields[i].type, &r->v[i], &back.v[i]))
			fail_msg("column %s differs after round trip of %s", s->fields[i].name, sl_buf_cstr(&b));
	/* Bytes are stable too: encoding the decoded record gives the same payload. */
	assert_int_equal(sl_record_to_json(&back, &b2, &err), 0);
	assert_int_equal(b.len, b2.len);
	assert_memory_equal(b.data, b2.data, b.len);
	sl_buf_free(&b);
	sl_buf_free(&b2);
}

static void test_codec_roundtrip(void **state)
{
	struct sl_schema s = all_types();
	struct sl_json_parser *p;
	struct sl_arena a;
	struct sl_err err;
	struct sl_record r;
	sl_arena_init(&a, 0);
	assert_int_equal(sl_json_parser_new(&p, 0, 0, &err), 0);
	assert_int_equal(sl_record_init(&r, &s, &a, &err), 0);

	static const char text[] = "Ömer \"q\" \\ \n\t\x01 \xe2\x82\xac end";
	r.v[0] = (struct sl_value){.u.s = {text, sizeof text - 1}};
	r.v[1] = (struct sl_value){.u.i32 = INT32_MIN};
	r.v[2] = (struct sl_value){.u.i64 = INT64_MAX};
	r.v[3] = (struct sl_value){.u.d = 0.1};
	r.v[4] = (struct sl_value){.u.b = true};
	sl_uuid_parse("123e4567-e89b-12d3-a456-426614174000", 36, r.v[5].u.uuid);
	r.v[5].null = false;
	r.v[6] = (struct sl_value){.u.i64 = 1704164645678LL};
	r.v[7] = (struct sl_value){.u.days = -1};
	roundtrip(&s, &r, p, &a,
		  "{\"t\":\"Ömer \\\"q\\\" \\\\ \\n\\t\\u0001 \xe2\x82\xac end\",\"i\":-2147483648,"
		  "\"b\":9223372036854775807,\"d\":0.1,\"bo\":true,\"u\":\"123e4567-e89b-12d3-a456-426614174000\","
		  "\"ts\":\"2024-01-02T03:04:05.678Z\",\"dt\":\"1969-12-31\"}");

	/* Nulls in the optional columns; -0.0 and an empty string. */
	for (size_t i = 1; i < s.n; i++)
		if (i != 5)
			r.v[i].null = true;
	r.v[0].u.s.n = 0;
	roundtrip(&s, &r, p, &a,
		  "{\"t\":\"\",\"i\":null,\"b\":null,\"d\":null,\"bo\":null,\"u\":\"123e4567-e89b-12d3-a456-426614174000\","
		  "\"ts\":null,\"dt\":null}");
	r.v[3] = (struct sl_value){.u.d = -0.0};
	roundtrip(&s, &r, p, &a, NULL);

	/* Random values of every type. */
	for (int k = 0; k < 20000; k++) {
		r.v[1] = (struct sl_value){.u.i32 = (int32_t)rnd()};
		r.v[2] = (struct sl_value){.u.i64 = (int64_t)rnd()};
		uint64_t bits = rnd();
		memcpy(&r.v[3].u.d, &bits, 8);
		r.v[3].null = !isfinite(r.v[3].u.d);
		r.v[4] = (struct sl_value){.u.b = rnd() & 1};
		sl_uuid_v4_from_random(rnd(), rnd(), r.v[5].u.uuid);
		r.v[6] = (struct sl_value){.u.i64 = (int64_t)(rnd() % 315569519999999ULL) - 62167219200000LL};
		r.v[7] = (struct sl_value){.u.days = (int32_t)(rnd() % 3652424) - 719528};
		roundtrip(&s, &r, p, &a, NULL);
		if (k % 1000 == 0)
			sl_arena_reset(&a);
	}

	/* Values JSON cannot carry fail with the column's name. */
	r.v[3] = (struct sl_value){.u.d = NAN};
	struct sl_buf b;
	sl_buf_init(&b);
	assert_int_equal(sl_record_to_json(&r, &b, &err), SL_EINVAL);
	assert_non_null(strstr(err.msg, "column 'd'"));
	r.v[3].null = true;
	r.v[6] = (struct sl_value){.u.i64 = INT64_MAX};
	assert_int_equal(sl_record_to_json(&r, &b, &err), SL_EINVAL);
	assert_non_null(strstr(err.msg, "column 'ts': timestamp"));
	sl_buf_free(&b);

	sl_json_parser_free(p);
	sl_arena_free(&a);
	sl_schema_free(&s);
}

static void decode_fails(const struct sl_schema *s, struct sl_json_parser *p, struct sl_arena *a, const char *json,
			 int code, const char *needle)
{
	struct sl_record r;
	struct sl_err err = {0};
	int rc = sl_record_decode_json(&r, s, p, json, strlen(json), a, &err);
	if (rc != code || !strstr(err.msg, needle))
		fail_msg("decode %s: got %d '%s', want %d containing '%s'", json, rc, err.msg, code, needle);
}

static void test_codec_validation(void **state)
{
	struct sl_schema s = all_types();
	struct sl_json_parser *p;
	struct sl_arena a;
	struct sl_err err;
	struct sl_record r;
	sl_arena_init(&a, 0);
	assert_int_equal(sl_json_parser_new(&p, 0, 0, &err), 0);
	const char *u = "\"u\":\"123e4567-e89b-12d3-a456-426614174000\"";
	char buf[512];

	/* Extra fields are ignored; timestamp and date also take integer ms and days. */
	snprintf(buf, sizeof buf, "{\"extra\":{\"x\":[1]},\"t\":\"x\",%s,\"ts\":86400000,\"dt\":1}", u);
	assert_int_equal(sl_record_decode_json(&r, &s, p, buf, strlen(buf), &a, &err), 0);
	assert_true(r.v[6].u.i64 == 86400000 && r.v[7].u.days == 1 && r.v[1].null);

	snprintf(buf, sizeof buf, "{%s}", u);
	decode_fails(&s, p, &a, buf, SL_ETYPE, "column 't': required but has no value");
	snprintf(buf, sizeof buf, "{\"t\":null,%s}", u);
	decode_fails(&s, p, &a, buf, SL_ETYPE, "column 't': required");
	decode_fails(&s, p, &a, "{\"t\":\"x\"}", SL_ETYPE, "column 'u': required");
	decode_fails(&s, p, &a, "{\"t\":\"x\",\"u\":\"not-a-uuid\"}", SL_ETYPE,
		     "column 'u': expected a uuid string, got string \"not-a-uuid\"");
	const struct { const char *field, *needle; } bad[] = {
		{"\"t\":5", "column 't': expected a string, got number 5"},
		{"\"i\":2147483648", "column 'i': expected an integer in the int range"},
		{"\"i\":1.5", "column 'i'"},
		{"\"i\":\"1\"", "column 'i': expected an integer in the int range, got string \"1\""},
		{"\"b\":18446744073709551615", "column 'b'"},
		{"\"d\":\"1.0\"", "column 'd': expected a number"},
		{"\"bo\":1", "column 'bo': expected true or false"},
		{"\"ts\":\"2024-13-01T00:00:00Z\"", "column 'ts'"},
		{"\"ts\":1.5", "column 'ts'"},
		{"\"dt\":\"2024-01-01T00:00:00Z\"", "column 'dt': expected a YYYY-MM-DD date"},
		{"\"dt\":{}", "column 'dt'"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		snprintf(buf, sizeof buf, "{\"t\":\"x\",%s,%s}", u, bad[i].field);
		decode_fails(&s, p, &a, buf, SL_ETYPE, bad[i].needle);
	}
	decode_fails(&s, p, &a, "[1]", SL_ETYPE, "expected a JSON object, got array");
	decode_fails(&s, p, &a, "{\"t\":\"x\"", SL_EINVAL, "truncated");

	/* The key as text, and its absence. */
	snprintf(buf, sizeof buf, "{\"t\":\"x\",%s}", u);
	assert_int_equal(sl_record_decode_json(&r, &s, p, buf, strlen(buf), &a, &err), 0);
	struct sl_buf k;
	sl_buf_init(&k);
	assert_int_equal(sl_record_key(&r, &k, &err), 0);
	assert_string_equal(sl_buf_cstr(&k), "123e4567-e89b-12d3-a456-426614174000");
	r.v[5].null = true;
	sl_buf_reset(&k);
	assert_int_equal(sl_record_key(&r, &k, &err), SL_ENOTFOUND);
	assert_non_null(strstr(err.msg, "key column 'u' is null"));
	sl_buf_free(&k);

	sl_json_parser_free(p);
	sl_arena_free(&a);
	sl_schema_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uuid),   cmocka_unit_test(test_time),
		cmocka_unit_test(test_double), cmocka_unit_test(test_schema),
		cmocka_unit_test(test_codec_roundtrip), cmocka_unit_test(test_codec_validation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
