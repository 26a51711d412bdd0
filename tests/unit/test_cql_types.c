/* CQL value encodings: typed getters with type and size checks, varint/decimal/duration, date/time/timestamp text,
 * collections/tuples/UDTs built and walked, binders with prepared-type checks, batches, and Murmur3 tokens checked
 * against values Cassandra 5.0 returned for `SELECT token(k)` on a blob key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cql/internal.h"
#include "cql/proto.h"
#include "cql/types.h"

static struct sl_cql_type T(int id) { return (struct sl_cql_type){.id = (uint16_t)id}; }

static const char *fmt(const struct sl_cql_type *t, const void *p, int32_t len, bool json)
{
	static char out[1024];
	struct sl_buf b;
	sl_buf_init(&b);
	struct sl_cql_value v = {t, p, len};
	int rc = sl_cql_value_format(&b, &v, json);
	snprintf(out, sizeof out, "%s", rc == 0 ? sl_buf_cstr(&b) : "<error>");
	sl_buf_free(&b);
	return out;
}

static void test_scalars(void **state)
{
	(void)state;
	struct sl_cql_type ti = T(SL_CQL_TYPE_INT), tb = T(SL_CQL_TYPE_BIGINT), ts = T(SL_CQL_TYPE_SMALLINT),
			   tt = T(SL_CQL_TYPE_TINYINT), tbool = T(SL_CQL_TYPE_BOOLEAN), tf = T(SL_CQL_TYPE_FLOAT),
			   td = T(SL_CQL_TYPE_DOUBLE), tx = T(SL_CQL_TYPE_VARCHAR);
	struct sl_cql_value v = {&ti, (const uint8_t *)"\xff\xff\xff\xfe", 4};
	int32_t i32;
	assert_int_equal(sl_cql_value_int32(&v, &i32), 0);
	assert_int_equal(i32, -2);
	int64_t i64;
	assert_int_equal(sl_cql_value_int64(&v, &i64), SL_ETYPE); /* int is not bigint */
	v.len = 3;
	assert_int_equal(sl_cql_value_int32(&v, &i32), SL_ETYPE); /* wrong size */
	v.len = 0;
	assert_int_equal(sl_cql_value_int32(&v, &i32), SL_ETYPE); /* empty is not null */
	v.len = -1;
	assert_int_equal(sl_cql_value_int32(&v, &i32), SL_ENOTFOUND);
	v = (struct sl_cql_value){&tb, (const uint8_t *)"\x80\0\0\0\0\0\0\0", 8};
	assert_int_equal(sl_cql_value_int64(&v, &i64), 0);
	assert_true(i64 == INT64_MIN);
	assert_string_equal(fmt(&tb, v.data, 8, false), "-9223372036854775808");
	int16_t i16;
	v = (struct sl_cql_value){&ts, (const uint8_t *)"\x80\x01", 2};
	assert_int_equal(sl_cql_value_int16(&v, &i16), 0);
	assert_int_equal(i16, -32767);
	int8_t i8;
	v = (struct sl_cql_value){&tt, (const uint8_t *)"\x80", 1};
	assert_int_equal(sl_cql_value_int8(&v, &i8), 0);
	assert_int_equal(i8, -128);
	bool b;
	v = (struct sl_cql_value){&tbool, (const uint8_t *)"\x02", 1};
	assert_int_equal(sl_cql_value_bool(&v, &b), 0);
	assert_true(b);
	float f;
	v = (struct sl_cql_value){&tf, (const uint8_t *)"\x3f\xc0\x00\x00", 4};
	assert_int_equal(sl_cql_value_float(&v, &f), 0);
	assert_true(f == 1.5f);
	double d;
	v = (struct sl_cql_value){&td, (const uint8_t *)"\xc0\x09\x21\xfb\x54\x44\x2d\x18", 8};
	assert_int_equal(sl_cql_value_double(&v, &d), 0);
	assert_true(d == -3.141592653589793);
	assert_string_equal(fmt(&td, v.data, 8, false), "-3.1415926535897931");
	assert_string_equal(fmt(&tx, "it's", 4, false), "it's");
	assert_string_equal(fmt(&tx, "a\"b\n", 4, true), "\"a\\\"b\\n\"");
	assert_string_equal(fmt(&tx, NULL, -1, true), "null");
	assert_string_equal(fmt(&tx, "", 0, true), "\"\"");
}

static void test_varint_decimal(void **state)
{
	(void)state;
	/* The spec's table. */
	struct {
		int64_t v;
		const char *enc;
		size_t n;
	} cases[] = {{0, "\x00", 1}, {1, "\x01", 1}, {127, "\x7f", 1}, {128, "\x00\x80", 2}, {129, "\x00\x81", 2},
		     {-1, "\xff", 1}, {-128, "\x80", 1}, {-129, "\xff\x7f", 2},
		     {INT64_MAX, "\x7f\xff\xff\xff\xff\xff\xff\xff", 8}, {INT64_MIN, "\x80\0\0\0\0\0\0\0", 8}};
	struct sl_cql_type tv = T(SL_CQL_TYPE_VARINT);
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		uint8_t out[8];
		size_t n = sl_cql_varint_from_int64(cases[i].v, out);
		assert_int_equal(n, cases[i].n);
		assert_memory_equal(out, cases[i].enc, n);
		int64_t back;
		assert_int_equal(sl_cql_varint_to_int64(out, n, &back), 0);
		assert_true(back == cases[i].v);
	}
	/* Bigger than 64 bits: text still exact. 2^64 = 0x010000000000000000 */
	assert_string_equal(fmt(&tv, "\x01\0\0\0\0\0\0\0\0", 9, false), "18446744073709551616");
	assert_string_equal(fmt(&tv, "\xfe\xff\xff\xff\xff\xff\xff\xff\xff", 9, false), "-18446744073709551617");
	int64_t x;
	assert_int_equal(sl_cql_varint_to_int64((const uint8_t *)"\x01\0\0\0\0\0\0\0\0", 9, &x), SL_ETYPE);
	struct sl_cql_type tdec = T(SL_CQL_TYPE_DECIMAL);
	/* 12345 scale 2 = 123.45; -5 scale 3 = -0.005; 7 scale -2 = 7E+2 */
	assert_string_equal(fmt(&tdec, "\0\0\0\x02\x30\x39", 6, false), "123.45");
	assert_string_equal(fmt(&tdec, "\0\0\0\x03\xfb", 5, false), "-0.005");
	assert_string_equal(fmt(&tdec, "\xff\xff\xff\xfe\x07", 5, false), "7E+2");
	const uint8_t *u;
	size_t n;
	int32_t scale;
	struct sl_cql_value v = {&tdec, (const uint8_t *)"\0\0\0\x02\x30\x39", 6};
	assert_int_equal(sl_cql_value_decimal(&v, &u, &n, &scale), 0);
	assert_int_equal(scale, 2);
	assert_int_equal(n, 2);
}

static void test_dates_times(void **state)
{
	(void)state;
	struct sl_cql_type tdate = T(SL_CQL_TYPE_DATE), ttime = T(SL_CQL_TYPE_TIME), tts = T(SL_CQL_TYPE_TIMESTAMP);
	assert_string_equal(fmt(&tdate, "\x80\0\0\0", 4, false), "1970-01-01");
	assert_string_equal(fmt(&tdate, "\x80\0\x4b\x5a", 4, false), "2022-10-25"); /* 19290 days */
	assert_string_equal(fmt(&tdate, "\x7f\xff\xff\xff", 4, false), "1969-12-31");
	uint8_t b[8];
	sl_cql_put_be64(b, (uint64_t)(13 * 3600LL + 5 * 60 + 7) * 1000000000LL + 123456789);
	assert_string_equal(fmt(&ttime, b, 8, false), "13:05:07.123456789");
	sl_cql_put_be64(b, 1700000000123ULL);
	assert_string_equal(fmt(&tts, b, 8, false), "2023-11-14 22:13:20.123+0000");
	assert_string_equal(fmt(&tts, b, 8, true), "\"2023-11-14 22:13:20.123Z\"");
	sl_cql_put_be64(b, (uint64_t)-1);
	assert_string_equal(fmt(&tts, b, 8, false), "1969-12-31 23:59:59.999+0000");
	sl_cql_put_be64(b, 86400000000000ULL);
	assert_string_equal(fmt(&ttime, b, 8, false), "<error>");
}

static void test_uuid_inet_blob_duration(void **state)
{
	(void)state;
	struct sl_cql_type tu = T(SL_CQL_TYPE_UUID), ti = T(SL_CQL_TYPE_INET), tb = T(SL_CQL_TYPE_BLOB),
			   tdu = T(SL_CQL_TYPE_DURATION);
	const uint8_t u[16] = {0x12, 0x3e, 0x45, 0x67, 0xe8, 0x9b, 0x12, 0xd3, 0xa4, 0x56, 0x42, 0x66, 0x14, 0x17, 0x40, 0x00};
	assert_string_equal(fmt(&tu, u, 16, false), "123e4567-e89b-12d3-a456-426614174000");
	assert_string_equal(fmt(&ti, "\x0a\0\0\x01", 4, false), "10.0.0.1");
	uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8};
	v6[15] = 1;
	assert_string_equal(fmt(&ti, v6, 16, true), "\"2001:db8::1\"");
	assert_string_equal(fmt(&tb, "\x00\xff", 2, false), "0x00ff");
	assert_string_equal(fmt(&tb, "", 0, false), "0x");
	uint8_t d[27];
	size_t n = sl_cql_duration_encode(d, 1, -2, 3000000000LL);
	int32_t mo, dd;
	int64_t ns;
	struct sl_cql_value v = {&tdu, d, (int32_t)n};
	assert_int_equal(sl_cql_value_duration(&v, &mo, &dd, &ns), 0);
	assert_int_equal(mo, 1);
	assert_int_equal(dd, -2);
	assert_true(ns == 3000000000LL);
	/* zig-zag: 1 -> 2 (one byte), -2 -> 3 (one byte) */
	assert_int_equal(d[0], 2);
	assert_int_equal(d[1], 3);
	n = sl_cql_duration_encode(d, INT32_MIN, INT32_MAX, INT64_MIN);
	v.len = (int32_t)n;
	assert_int_equal(sl_cql_value_duration(&v, &mo, &dd, &ns), 0);
	assert_int_equal(mo, INT32_MIN);
	assert_int_equal(dd, INT32_MAX);
	assert_true(ns == INT64_MIN);
	v.len = (int32_t)n - 1;
	assert_int_equal(sl_cql_value_duration(&v, &mo, &dd, &ns), SL_ETYPE);
}

static void test_collections(void **state)
{
	(void)state;
	struct sl_cql_type tint = T(SL_CQL_TYPE_INT), ttext = T(SL_CQL_TYPE_VARCHAR);
	struct sl_cql_type *lsub[] = {&tint};
	struct sl_cql_type tlist = {.id = SL_CQL_TYPE_LIST, .n = 1, .sub = lsub};
	struct sl_cql_type *msub[] = {&ttext, &tlist};
	struct sl_cql_type tmap = {.id = SL_CQL_TYPE_MAP, .n = 2, .sub = msub};
	struct sl_cql_coll inner, m;
	sl_cql_coll_init(&inner, SL_CQL_TYPE_LIST);
	sl_cql_coll_append_int32(&inner, 1);
	sl_cql_coll_append_null(&inner);
	sl_cql_coll_append_int32(&inner, -3);
	sl_cql_coll_init(&m, SL_CQL_TYPE_MAP);
	sl_cql_coll_append_text(&m, "a'b", 3);
	sl_cql_coll_append_coll(&m, &inner);
	sl_cql_coll_append_text(&m, "", 0);
	sl_cql_coll_append_coll(&m, &inner);
	struct sl_buf b;
	sl_buf_init(&b);
	assert_int_equal(sl_cql_coll_encode(&m, &b), 0);
	assert_string_equal(fmt(&tmap, b.data, (int32_t)b.len, false), "{'a''b': [1, null, -3], '': [1, null, -3]}");
	assert_string_equal(fmt(&tmap, b.data, (int32_t)b.len, true), "{\"a'b\": [1, null, -3], \"\": [1, null, -3]}");
	struct sl_cql_value v = {&tmap, (const uint8_t *)b.data, (int32_t)b.len};
	struct sl_cql_elems el;
	assert_int_equal(sl_cql_elems_init(&el, &v), 0);
	assert_int_equal(el.count, 4);
	assert_int_equal(sl_cql_elems_next(&el), 1);
	assert_int_equal(el.value.type->id, SL_CQL_TYPE_VARCHAR);
	assert_int_equal(sl_cql_elems_next(&el), 1);
	assert_int_equal(el.value.type->id, SL_CQL_TYPE_LIST);
	/* A count that cannot fit is malformed. */
	b.data[3] = 0x7f;
	assert_int_equal(sl_cql_elems_init(&el, &v), SL_EPROTO);
	/* An element length past the end. */
	b.data[3] = 2;
	b.data[7] = 0x70;
	assert_int_equal(sl_cql_elems_init(&el, &v), 0);
	assert_int_equal(sl_cql_elems_next(&el), SL_EPROTO);
	/* A key without a value cannot be encoded. */
	struct sl_cql_coll odd;
	sl_cql_coll_init(&odd, SL_CQL_TYPE_MAP);
	sl_cql_coll_append_int32(&odd, 1);
	sl_buf_reset(&b);
	assert_int_equal(sl_cql_coll_encode(&odd, &b), SL_EINVAL);
	sl_cql_coll_free(&odd);

	/* Tuple and UDT: no count, UDT values may stop early. */
	struct sl_cql_type *tsub[] = {&tint, &ttext};
	struct sl_cql_type ttuple = {.id = SL_CQL_TYPE_TUPLE, .n = 2, .sub = tsub};
	const char *names[] = {"n", "s"};
	struct sl_cql_type tudt = {.id = SL_CQL_TYPE_UDT, .n = 2, .sub = tsub, .field_names = names, .name = "pair"};
	struct sl_cql_coll t;
	sl_cql_coll_init(&t, SL_CQL_TYPE_TUPLE);
	sl_cql_coll_append_int32(&t, 5);
	sl_cql_coll_append_null(&t);
	sl_buf_reset(&b);
	assert_int_equal(sl_cql_coll_encode(&t, &b), 0);
	assert_int_equal(b.len, 8 + 4);
	assert_string_equal(fmt(&ttuple, b.data, (int32_t)b.len, false), "(5, null)");
	assert_string_equal(fmt(&tudt, b.data, 8, false), "{n: 5}");
	assert_string_equal(fmt(&tudt, b.data, (int32_t)b.len, true), "{\"n\": 5, \"s\": null}");
	char tn[64];
	sl_cql_type_name(&ttuple, tn, sizeof tn);
	assert_string_equal(tn, "tuple<int, text>");
	sl_cql_coll_free(&t);
	sl_cql_coll_free(&m);
	sl_cql_coll_free(&inner);
	sl_buf_free(&b);
}

static void test_murmur3(void **state)
{
	(void)state;
	/* Tokens Cassandra 5.0 computed for blob keys (SELECT k, token(k)). */
	struct {
		const char *hex;
		int64_t token;
	} cases[] = {
		{"313233", -7468325962851647638LL},
		{"00ff10fa9900ff10fa9900ff10fa9900ff10fa9900ff10fa9900ff10fa9900ff10fa9900ff10fa9900ff10fa9900ff10fa99",
		 5837342703291459765LL},
		{"fefefefefefefefe", -8927430733708461935LL},
		{"1010101010101010", 1446172840243228796LL},
		{"39323233333732303336383534373735383037", 7162290910810015547LL},
		{"ff", -4442228696663692417LL},
		{"80818283848586878889", -7623170703309721106LL},
		{"000102030405060708090a0b0c0d0e", 5125964547706398185LL},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		uint8_t key[64];
		size_t n = strlen(cases[i].hex) / 2;
		for (size_t k = 0; k < n; k++) {
			unsigned x;
			sscanf(cases[i].hex + 2 * k, "%2x", &x);
			key[k] = (uint8_t)x;
		}
		assert_true(sl_cql_murmur3_token(key, n) == cases[i].token);
	}
	/* Composite routing key: u16 len | bytes | 0 per component; a single component is its bytes. */
	const uint8_t *parts[] = {(const uint8_t *)"ab", (const uint8_t *)"\0\0\0\x07"};
	size_t lens[] = {2, 4};
	struct sl_buf b;
	sl_buf_init(&b);
	assert_int_equal(sl_cql_routing_key(&b, parts, lens, 2), 0);
	assert_int_equal(b.len, 2 + 2 + 1 + 2 + 4 + 1);
	assert_memory_equal(b.data, "\0\x02" "ab\0\0\x04\0\0\0\x07\0", b.len);
	sl_buf_reset(&b);
	sl_cql_routing_key(&b, parts, lens, 1);
	assert_int_equal(b.len, 2);
	sl_buf_free(&b);
}

static void test_statement_binds(void **state)
{
	(void)state;
	/* A statement bound to a fake prepared statement: (id int, name text, ts timestamp), pk = id. */
	struct sl_cql_result *res = calloc(1, sizeof *res);
	sl_arena_init(&res->arena, 1024);
	static struct sl_cql_type tint = {.id = SL_CQL_TYPE_INT}, ttext = {.id = SL_CQL_TYPE_VARCHAR},
				  tts = {.id = SL_CQL_TYPE_TIMESTAMP};
	static struct sl_cql_column cols[3] = {{"ks", "t", "id", &tint}, {"ks", "t", "name", &ttext},
					       {"ks", "t", "ts", &tts}};
	static uint16_t pk[1] = {0};
	res->kind = SL_CQL_RESULT_PREPARED;
	res->meta.ncols = 3;
	res->meta.cols = cols;
	res->meta.npk = 1;
	res->meta.pk = pk;
	res->prepared_id = (const uint8_t *)"ID";
	res->prepared_id_len = 2;
	struct sl_cql_prepared *p = sl_cql_prepared_from_result("INSERT INTO t (id, name, ts) VALUES (?, ?, ?)", res, NULL);
	assert_string_equal(p->keyspace, "ks");
	struct sl_cql_statement *st = sl_cql_prepared_bind(p);
	assert_int_equal(sl_cql_bind_int64(st, 0, 1), SL_ETYPE);
	assert_int_equal(sl_cql_bind_int32(st, 3, 1), SL_EINVAL);
	assert_int_equal(sl_cql_bind_int32(st, 0, 7), 0);
	assert_int_equal(sl_cql_bind_text(st, 1, "", 0), 0);
	/* ts left unset */
	struct sl_cql_req r;
	memset(&r, 0, sizeof r);
	sl_buf_init(&r.body);
	struct sl_err e = {0};
	assert_int_equal(sl_cql_statement_encode(st, SL_CQL_LOCAL_QUORUM, &r, &e), 0);
	assert_int_equal(r.opcode, SL_CQL_OP_EXECUTE);
	const uint8_t want[] = {0, 2, 'I', 'D', 0, 6, 0x01, 0, 3, 0, 0, 0, 4, 0, 0, 0, 7, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xfe};
	assert_int_equal(r.body.len, sizeof want);
	assert_memory_equal(r.body.data, want, sizeof want);
	assert_true(r.has_token);
	assert_true(r.token == sl_cql_murmur3_token("\0\0\0\x07", 4));
	assert_string_equal(r.keyspace, "ks");
	assert_non_null(strstr(sl_cql_req_desc(&r), "INSERT INTO t"));
	sl_buf_free(&r.body);
	/* Null partition key: no token. */
	sl_cql_bind_null(st, 0);
	memset(&r, 0, sizeof r);
	sl_buf_init(&r.body);
	assert_int_equal(sl_cql_statement_encode(st, SL_CQL_ONE, &r, &e), 0);
	assert_false(r.has_token);
	sl_buf_free(&r.body);

	/* Batch of two bound statements plus a simple one. */
	struct sl_cql_batch *b = sl_cql_batch_new(SL_CQL_BATCH_UNLOGGED);
	sl_cql_bind_int32(st, 0, 7);
	assert_int_equal(sl_cql_batch_add(b, st), 0);
	sl_cql_statement_reset(st);
	sl_cql_bind_int32(st, 0, 7);
	assert_int_equal(sl_cql_batch_add(b, st), 0);
	struct sl_cql_statement *simple = sl_cql_statement_new("DELETE FROM t WHERE id = 7", 0);
	assert_int_equal(sl_cql_batch_add(b, simple), 0);
	assert_int_equal(sl_cql_batch_count(b), 3);
	memset(&r, 0, sizeof r);
	sl_buf_init(&r.body);
	assert_int_equal(sl_cql_batch_encode(b, SL_CQL_ONE, &r, &e), 0);
	assert_int_equal(r.opcode, SL_CQL_OP_BATCH);
	assert_int_equal((uint8_t)r.body.data[0], 1);
	assert_int_equal((uint8_t)r.body.data[2], 3);
	assert_int_equal((uint8_t)r.body.data[3], 1); /* first entry is prepared */
	/* ends with consistency ONE and flags 0 */
	assert_memory_equal(r.body.data + r.body.len - 3, "\0\x01\0", 3);
	assert_true(r.has_token);
	assert_non_null(strstr(r.desc, "BATCH of 3"));
	sl_buf_free(&r.body);
	sl_cql_batch_free(b);
	sl_cql_statement_free(simple);
	sl_cql_statement_free(st);
	res->meta.cols = NULL; /* static */
	res->meta.pk = NULL;
	sl_cql_prepared_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scalars),
		cmocka_unit_test(test_varint_decimal),
		cmocka_unit_test(test_dates_times),
		cmocka_unit_test(test_uuid_inet_blob_duration),
		cmocka_unit_test(test_collections),
		cmocka_unit_test(test_murmur3),
		cmocka_unit_test(test_statement_binds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
