/* sluice's CQL client against the real Cassandra (tests/services): DDL with schema agreement, every type through
 * prepared statements (nulls, unset, empty strings) with lz4 off and on, 10,000 rows inserted asynchronously under
 * an in-flight bound and read back through paging, unlogged batches, transparent re-prepare after the server
 * forgets a statement, client tokens against `SELECT token(...)`, and the errors a user sees. The node must be up:
 * an unreachable node fails the test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>
#include <cmocka.h>

#include "core/buf.h"
#include "core/log.h"
#include "cql/cql.h"
#include "cql/types.h"

#define KS "sl_test_cql_session"

static const char *env_or(const char *k, const char *d)
{
	const char *v = getenv(k);
	return v && *v ? v : d;
}

static struct sl_cql_session *connect_opts(bool lz4, const char *ks)
{
	struct sl_cql_options o;
	sl_cql_options_init(&o);
	o.contact_points = env_or("SL_CASSANDRA_HOST", "127.0.0.1");
	o.port = atoi(env_or("SL_CASSANDRA_PORT", "9042"));
	o.compression = lz4;
	o.keyspace = ks;
	o.max_inflight = 256;
	struct sl_cql_session *s = NULL;
	struct sl_err e = {0};
	int rc = sl_cql_session_connect(&s, &o, &e);
	if (rc != 0)
		fail_msg("cannot connect to Cassandra at %s:%d: %s", o.contact_points, o.port, e.msg);
	return s;
}

static void q(struct sl_cql_session *s, const char *stmt)
{
	struct sl_err e = {0};
	if (sl_cql_session_query(s, stmt, NULL, &e) != 0)
		fail_msg("%s", e.msg);
}

static struct sl_cql_result *rows(struct sl_cql_session *s, const char *stmt)
{
	struct sl_cql_result *r = NULL;
	struct sl_err e = {0};
	if (sl_cql_session_query(s, stmt, &r, &e) != 0)
		fail_msg("%s", e.msg);
	assert_int_equal(sl_cql_result_kind(r), SL_CQL_RESULT_ROWS);
	return r;
}

static int setup(void **state)
{
	(void)state;
	sl_log_set_level(SL_LOG_WARN);
	struct sl_cql_session *s = connect_opts(false, NULL);
	q(s, "DROP KEYSPACE IF EXISTS " KS);
	struct sl_cql_result *r = NULL;
	struct sl_err e = {0};
	assert_int_equal(sl_cql_session_query(s,
					      "CREATE KEYSPACE " KS " WITH replication = "
					      "{'class': 'SimpleStrategy', 'replication_factor': 1}",
					      &r, &e),
			 0);
	/* DDL completes only after the schema agreement check. */
	assert_int_equal(sl_cql_result_kind(r), SL_CQL_RESULT_SCHEMA_CHANGE);
	assert_true(sl_cql_result_schema_agreed(r));
	sl_cql_result_free(r);
	assert_int_equal(sl_cql_session_wait_schema_agreement(s, 10000, &e), 0);
	q(s, "CREATE TYPE " KS ".addr (street text, zip int)");
	q(s, "CREATE TABLE " KS ".all_types (k int PRIMARY KEY, a ascii, t text, vc varchar, i int, bi bigint, si smallint,"
	     " ti tinyint, b boolean, f float, d double, dec decimal, vi varint, u uuid, tu timeuuid, ts timestamp,"
	     " dt date, tm time, bl blob, ip inet, l list<int>, st set<text>, m map<text, bigint>,"
	     " tp tuple<int, text>, ad frozen<addr>, du duration)");
	q(s, "CREATE TABLE " KS ".counters (k int PRIMARY KEY, c counter)");
	q(s, "CREATE TABLE " KS ".many (p int, c int, v text, PRIMARY KEY (p, c))");
	q(s, "CREATE TABLE " KS ".tok1 (k text PRIMARY KEY)");
	q(s, "CREATE TABLE " KS ".tok2 (a int, b text, c uuid, v int, PRIMARY KEY ((a, b, c)))");
	sl_cql_session_close(s);
	return 0;
}

static const uint8_t UUID1[16] = {0x12, 0x3e, 0x45, 0x67, 0xe8, 0x9b, 0x42, 0xd3, 0xa4, 0x56, 0x42, 0x66, 0x14, 0x17, 0x40, 0x00};
static const uint8_t TUUID[16] = {0x5b, 0x6e, 0x2d, 0x30, 0x8f, 0x9e, 0x11, 0xee, 0x8c, 0x90, 0x02, 0x42, 0xac, 0x12, 0x00, 0x02};

static void insert_all(struct sl_cql_session *s, struct sl_cql_prepared *p, int k)
{
	struct sl_cql_statement *st = sl_cql_prepared_bind(p);
	assert_int_equal(sl_cql_prepared_param_count(p), 26);
	assert_int_equal(sl_cql_bind_int32(st, 0, k), 0);
	assert_int_equal(sl_cql_bind_str(st, 1, "ascii!"), 0);
	assert_int_equal(sl_cql_bind_text(st, 2, "h\xc3\xa9llo \xe2\x9c\x93", 10), 0);
	assert_int_equal(sl_cql_bind_text(st, 3, "", 0), 0); /* empty string, not null */
	assert_int_equal(sl_cql_bind_int32(st, 4, INT32_MIN), 0);
	assert_int_equal(sl_cql_bind_int64(st, 5, INT64_MAX), 0);
	assert_int_equal(sl_cql_bind_int16(st, 6, -12345), 0);
	assert_int_equal(sl_cql_bind_int8(st, 7, -128), 0);
	assert_int_equal(sl_cql_bind_bool(st, 8, true), 0);
	assert_int_equal(sl_cql_bind_float(st, 9, 1.25f), 0);
	assert_int_equal(sl_cql_bind_double(st, 10, -2.5e-300), 0);
	const uint8_t unscaled[] = {0x30, 0x39}; /* 12345 */
	assert_int_equal(sl_cql_bind_decimal(st, 11, unscaled, 2, 3), 0);
	assert_int_equal(sl_cql_bind_varint(st, 12, -129), 0);
	assert_int_equal(sl_cql_bind_uuid(st, 13, UUID1), 0);
	assert_int_equal(sl_cql_bind_uuid(st, 14, TUUID), 0);
	assert_int_equal(sl_cql_bind_int64(st, 15, 1700000000123LL), 0);
	assert_int_equal(sl_cql_bind_uint32(st, 16, (1u << 31) + 19290), 0);
	assert_int_equal(sl_cql_bind_int64(st, 17, 45296123456789LL), 0);
	assert_int_equal(sl_cql_bind_bytes(st, 18, "\x00\xff\x10", 3), 0);
	assert_int_equal(sl_cql_bind_inet(st, 19, (const uint8_t *)"\x0a\x01\x02\x03", 4), 0);
	struct sl_cql_coll l, set, m, tp, ad;
	sl_cql_coll_init(&l, SL_CQL_TYPE_LIST);
	sl_cql_coll_append_int32(&l, 3);
	sl_cql_coll_append_int32(&l, 1);
	sl_cql_coll_append_int32(&l, 3);
	sl_cql_coll_init(&set, SL_CQL_TYPE_SET);
	sl_cql_coll_append_text(&set, "a", 1);
	sl_cql_coll_append_text(&set, "b", 1);
	sl_cql_coll_init(&m, SL_CQL_TYPE_MAP);
	sl_cql_coll_append_text(&m, "x", 1);
	sl_cql_coll_append_int64(&m, -1);
	sl_cql_coll_init(&tp, SL_CQL_TYPE_TUPLE);
	sl_cql_coll_append_int32(&tp, 9);
	sl_cql_coll_append_null(&tp);
	sl_cql_coll_init(&ad, SL_CQL_TYPE_UDT);
	sl_cql_coll_append_text(&ad, "Main St", 7);
	sl_cql_coll_append_int32(&ad, 12345);
	assert_int_equal(sl_cql_bind_coll(st, 20, &l), 0);
	assert_int_equal(sl_cql_bind_coll(st, 21, &set), 0);
	assert_int_equal(sl_cql_bind_coll(st, 22, &m), 0);
	assert_int_equal(sl_cql_bind_coll(st, 23, &tp), 0);
	assert_int_equal(sl_cql_bind_coll(st, 24, &ad), 0);
	assert_int_equal(sl_cql_bind_duration(st, 25, 1, 2, 3000000000LL), 0);
	/* A wrong type is refused before anything is sent. */
	assert_int_equal(sl_cql_bind_int32(st, 5, 1), SL_ETYPE);
	struct sl_cql_future *f = sl_cql_session_execute(s, st);
	if (sl_cql_future_wait(f) != 0)
		fail_msg("%s", sl_cql_future_error(f)->msg);
	sl_cql_future_release(f);
	sl_cql_coll_free(&l);
	sl_cql_coll_free(&set);
	sl_cql_coll_free(&m);
	sl_cql_coll_free(&tp);
	sl_cql_coll_free(&ad);
	sl_cql_statement_free(st);
}

static const char *cell(const struct sl_cql_iter *it, int c)
{
	static char out[512];
	struct sl_buf b;
	sl_buf_init(&b);
	assert_int_equal(sl_cql_value_format(&b, sl_cql_iter_value(it, c), false), 0);
	snprintf(out, sizeof out, "%s", sl_buf_cstr(&b));
	sl_buf_free(&b);
	return out;
}

static void check_types(bool lz4)
{
	struct sl_cql_session *s = connect_opts(lz4, KS);
	struct sl_cql_prepared *ins;
	struct sl_err e = {0};
	assert_int_equal(sl_cql_session_prepare_wait(s,
						     "INSERT INTO all_types (k, a, t, vc, i, bi, si, ti, b, f, d, dec, vi, u, tu,"
						     " ts, dt, tm, bl, ip, l, st, m, tp, ad, du) VALUES (?, ?, ?, ?, ?, ?, ?, ?,"
						     " ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
						     &ins, &e),
			 0);
	int k = lz4 ? 2 : 1;
	insert_all(s, ins, k);
	/* Nulls and unset: k+10 gets t = null, everything else unset (so absent = null on read). */
	struct sl_cql_statement *st = sl_cql_prepared_bind(ins);
	sl_cql_bind_int32(st, 0, k + 10);
	sl_cql_bind_null(st, 2);
	sl_cql_bind_text(st, 3, "", 0);
	struct sl_cql_future *f = sl_cql_session_execute(s, st);
	assert_int_equal(sl_cql_future_wait(f), 0);
	sl_cql_future_release(f);
	/* Unset must not overwrite: set text on k+10 then write again with t unset. */
	sl_cql_statement_reset(st);
	sl_cql_bind_int32(st, 0, k + 10);
	sl_cql_bind_str(st, 1, "kept?");
	f = sl_cql_session_execute(s, st);
	assert_int_equal(sl_cql_future_wait(f), 0);
	sl_cql_future_release(f);
	sl_cql_statement_free(st);

	struct sl_cql_prepared *sel;
	assert_int_equal(sl_cql_session_prepare_wait(s, "SELECT * FROM all_types WHERE k = ?", &sel, &e), 0);
	st = sl_cql_prepared_bind(sel);
	sl_cql_bind_int32(st, 0, k);
	f = sl_cql_session_execute(s, st);
	assert_int_equal(sl_cql_future_wait(f), 0);
	const struct sl_cql_result *r = sl_cql_future_result(f);
	assert_int_equal(sl_cql_result_row_count(r), 1);
	struct sl_cql_iter it;
	sl_cql_iter_init(&it, r);
	assert_true(sl_cql_iter_next(&it));
#define COL(name) sl_cql_result_column_index(r, name)
	const char *sv;
	size_t sn;
	assert_int_equal(sl_cql_value_text(sl_cql_iter_value(&it, COL("t")), &sv, &sn), 0);
	assert_int_equal(sn, 10);
	assert_memory_equal(sv, "h\xc3\xa9llo \xe2\x9c\x93", 10);
	assert_int_equal(sl_cql_value_text(sl_cql_iter_value(&it, COL("vc")), &sv, &sn), 0);
	assert_int_equal(sn, 0);
	assert_false(sl_cql_value_is_null(sl_cql_iter_value(&it, COL("vc"))));
	assert_string_equal(cell(&it, COL("a")), "ascii!");
	int32_t i32;
	assert_int_equal(sl_cql_value_int32(sl_cql_iter_value(&it, COL("i")), &i32), 0);
	assert_int_equal(i32, INT32_MIN);
	int64_t i64;
	assert_int_equal(sl_cql_value_int64(sl_cql_iter_value(&it, COL("bi")), &i64), 0);
	assert_true(i64 == INT64_MAX);
	int16_t i16;
	assert_int_equal(sl_cql_value_int16(sl_cql_iter_value(&it, COL("si")), &i16), 0);
	assert_int_equal(i16, -12345);
	int8_t i8;
	assert_int_equal(sl_cql_value_int8(sl_cql_iter_value(&it, COL("ti")), &i8), 0);
	assert_int_equal(i8, -128);
	bool bv;
	assert_int_equal(sl_cql_value_bool(sl_cql_iter_value(&it, COL("b")), &bv), 0);
	assert_true(bv);
	float fv;
	assert_int_equal(sl_cql_value_float(sl_cql_iter_value(&it, COL("f")), &fv), 0);
	assert_true(fv == 1.25f);
	double dv;
	assert_int_equal(sl_cql_value_double(sl_cql_iter_value(&it, COL("d")), &dv), 0);
	assert_true(dv == -2.5e-300);
	assert_string_equal(cell(&it, COL("dec")), "12.345");
	assert_int_equal(sl_cql_value_int64(sl_cql_iter_value(&it, COL("vi")), &i64), 0);
	assert_true(i64 == -129);
	uint8_t u[16];
	assert_int_equal(sl_cql_value_uuid(sl_cql_iter_value(&it, COL("u")), u), 0);
	assert_memory_equal(u, UUID1, 16);
	assert_int_equal(sl_cql_value_uuid(sl_cql_iter_value(&it, COL("tu")), u), 0);
	assert_memory_equal(u, TUUID, 16);
	assert_string_equal(cell(&it, COL("ts")), "2023-11-14 22:13:20.123+0000");
	uint32_t day;
	assert_int_equal(sl_cql_value_uint32(sl_cql_iter_value(&it, COL("dt")), &day), 0);
	assert_int_equal(day, (1u << 31) + 19290);
	assert_string_equal(cell(&it, COL("dt")), "2022-10-25");
	assert_string_equal(cell(&it, COL("tm")), "12:34:56.123456789");
	assert_string_equal(cell(&it, COL("bl")), "0x00ff10");
	assert_string_equal(cell(&it, COL("ip")), "10.1.2.3");
	assert_string_equal(cell(&it, COL("l")), "[3, 1, 3]");
	assert_string_equal(cell(&it, COL("st")), "{'a', 'b'}");
	assert_string_equal(cell(&it, COL("m")), "{'x': -1}");
	assert_string_equal(cell(&it, COL("tp")), "(9, null)");
	assert_string_equal(cell(&it, COL("ad")), "{street: 'Main St', zip: 12345}");
	int32_t mo, dd;
	int64_t ns;
	assert_int_equal(sl_cql_value_duration(sl_cql_iter_value(&it, COL("du")), &mo, &dd, &ns), 0);
	assert_int_equal(mo, 1);
	assert_int_equal(dd, 2);
	assert_true(ns == 3000000000LL);
	char tn[64];
	sl_cql_type_name(sl_cql_result_column(r, COL("m"))->type, tn, sizeof tn);
	assert_string_equal(tn, "map<text, bigint>");
	sl_cql_iter_free(&it);
	sl_cql_future_release(f);

	/* The null/unset row: t null, vc empty, a written by the second insert, the rest never set. */
	sl_cql_statement_reset(st);
	sl_cql_bind_int32(st, 0, k + 10);
	f = sl_cql_session_execute(s, st);
	assert_int_equal(sl_cql_future_wait(f), 0);
	r = sl_cql_future_result(f);
	sl_cql_iter_init(&it, r);
	assert_true(sl_cql_iter_next(&it));
	assert_true(sl_cql_value_is_null(sl_cql_iter_value(&it, COL("t"))));
	assert_false(sl_cql_value_is_null(sl_cql_iter_value(&it, COL("vc"))));
	assert_int_equal(sl_cql_iter_value(&it, COL("vc"))->len, 0);
	assert_string_equal(cell(&it, COL("a")), "kept?");
	assert_true(sl_cql_value_is_null(sl_cql_iter_value(&it, COL("bi"))));
	assert_int_equal(sl_cql_value_int64(sl_cql_iter_value(&it, COL("bi")), &i64), SL_ENOTFOUND);
	sl_cql_iter_free(&it);
	sl_cql_future_release(f);
	sl_cql_statement_free(st);
#undef COL
	sl_cql_session_close(s);
}

static void test_types_roundtrip(void **state)
{
	(void)state;
	check_types(false);
}

static void test_types_roundtrip_lz4(void **state)
{
	(void)state;
	check_types(true);
}

struct async_ctx {
	pthread_mutex_t mu;
	int done, failed;
	char first_error[512];
};

static void on_insert(struct sl_cql_future *f, void *data)
{
	struct async_ctx *c = data;
	pthread_mutex_lock(&c->mu);
	c->done++;
	if (sl_cql_future_rc(f) != 0) {
		if (!c->failed++)
			snprintf(c->first_error, sizeof c->first_error, "%s", sl_cql_future_error(f)->msg);
	}
	pthread_mutex_unlock(&c->mu);
	sl_cql_future_release(f);
}

static void test_async_insert_and_paging(void **state)
{
	(void)state;
	struct sl_cql_session *s = connect_opts(true, KS);
	struct sl_cql_prepared *ins;
	struct sl_err e = {0};
	assert_int_equal(sl_cql_session_prepare_wait(s, "INSERT INTO many (p, c, v) VALUES (?, ?, ?)", &ins, &e), 0);
	struct async_ctx ctx = {.mu = PTHREAD_MUTEX_INITIALIZER};
	struct sl_cql_statement *st = sl_cql_prepared_bind(ins);
	sl_cql_statement_set_idempotent(st, true);
	const int N = 10000;
	for (int i = 0; i < N; i++) {
		sl_cql_statement_reset(st);
		char v[32];
		snprintf(v, sizeof v, "value-%d", i);
		sl_cql_bind_int32(st, 0, i % 7);
		sl_cql_bind_int32(st, 1, i);
		sl_cql_bind_str(st, 2, v);
		/* execute blocks while 256 are in flight: the bound from the options */
		struct sl_cql_future *f = sl_cql_session_execute(s, st);
		sl_cql_future_set_callback(f, on_insert, &ctx);
	}
	sl_cql_statement_free(st);
	for (int waited = 0; waited < 600; waited++) {
		pthread_mutex_lock(&ctx.mu);
		int d = ctx.done;
		pthread_mutex_unlock(&ctx.mu);
		if (d == N)
			break;
		struct timespec ts = {0, 100000000};
		nanosleep(&ts, NULL);
	}
	assert_int_equal(ctx.done, N);
	if (ctx.failed)
		fail_msg("%d inserts failed, first: %s", ctx.failed, ctx.first_error);
	struct sl_cql_session_stats stats;
	sl_cql_session_stats(s, &stats);
	assert_true(stats.requests >= (uint64_t)N);
	assert_int_equal(stats.inflight, 0);

	/* Read back through paging, 1000 rows a page. */
	struct sl_cql_statement *sel = sl_cql_statement_new("SELECT p, c, v FROM many", 0);
	sl_cql_statement_set_page_size(sel, 1000);
	char *seen = calloc(N, 1);
	int total = 0, pages = 0;
	for (;;) {
		struct sl_cql_future *f = sl_cql_session_execute(s, sel);
		if (sl_cql_future_wait(f) != 0)
			fail_msg("%s", sl_cql_future_error(f)->msg);
		const struct sl_cql_result *r = sl_cql_future_result(f);
		pages++;
		assert_true(sl_cql_result_row_count(r) <= 1000);
		struct sl_cql_iter it;
		sl_cql_iter_init(&it, r);
		while (sl_cql_iter_next(&it)) {
			int32_t p, c;
			assert_int_equal(sl_cql_value_int32(sl_cql_iter_value(&it, 0), &p), 0);
			assert_int_equal(sl_cql_value_int32(sl_cql_iter_value(&it, 1), &c), 0);
			assert_true(c >= 0 && c < N);
			assert_int_equal(p, c % 7);
			const char *v;
			size_t n;
			char want[32];
			snprintf(want, sizeof want, "value-%d", c);
			assert_int_equal(sl_cql_value_text(sl_cql_iter_value(&it, 2), &v, &n), 0);
			assert_int_equal(n, strlen(want));
			assert_memory_equal(v, want, n);
			assert_int_equal(seen[c], 0);
			seen[c] = 1;
			total++;
		}
		sl_cql_iter_free(&it);
		bool more = sl_cql_result_has_more_pages(r);
		if (more)
			assert_int_equal(sl_cql_statement_set_paging_state(sel, r), 0);
		sl_cql_future_release(f);
		if (!more)
			break;
	}
	assert_int_equal(total, N);
	assert_true(pages >= 10);
	free(seen);
	sl_cql_statement_free(sel);
	sl_cql_session_close(s);
}

static void test_unlogged_batch(void **state)
{
	(void)state;
	struct sl_cql_session *s = connect_opts(false, KS);
	struct sl_cql_prepared *ins;
	struct sl_err e = {0};
	assert_int_equal(sl_cql_session_prepare_wait(s, "INSERT INTO many (p, c, v) VALUES (?, ?, ?)", &ins, &e), 0);
	struct sl_cql_batch *b = sl_cql_batch_new(SL_CQL_BATCH_UNLOGGED);
	struct sl_cql_statement *st = sl_cql_prepared_bind(ins);
	for (int i = 0; i < 50; i++) {
		sl_cql_statement_reset(st);
		sl_cql_bind_int32(st, 0, 100);
		sl_cql_bind_int32(st, 1, i);
		sl_cql_bind_str(st, 2, "batched");
		assert_int_equal(sl_cql_batch_add(b, st), 0);
	}
	/* a simple statement in the same batch */
	struct sl_cql_statement *simple = sl_cql_statement_new("INSERT INTO many (p, c, v) VALUES (100, 999, 'simple')", 0);
	assert_int_equal(sl_cql_batch_add(b, simple), 0);
	assert_int_equal(sl_cql_batch_count(b), 51);
	struct sl_cql_future *f = sl_cql_session_execute_batch(s, b);
	if (sl_cql_future_wait(f) != 0)
		fail_msg("%s", sl_cql_future_error(f)->msg);
	sl_cql_future_release(f);
	struct sl_cql_result *r = rows(s, "SELECT count(*), min(c), max(c) FROM many WHERE p = 100");
	struct sl_cql_iter it;
	sl_cql_iter_init(&it, r);
	assert_true(sl_cql_iter_next(&it));
	int64_t cnt;
	assert_int_equal(sl_cql_value_int64(sl_cql_iter_value(&it, 0), &cnt), 0);
	assert_int_equal(cnt, 51);
	sl_cql_iter_free(&it);
	sl_cql_result_free(r);
	/* counter batch */
	struct sl_cql_batch *cb = sl_cql_batch_new(SL_CQL_BATCH_COUNTER);
	struct sl_cql_statement *inc = sl_cql_statement_new("UPDATE counters SET c = c + 5 WHERE k = 1", 0);
	sl_cql_batch_add(cb, inc);
	sl_cql_batch_add(cb, inc);
	f = sl_cql_session_execute_batch(s, cb);
	if (sl_cql_future_wait(f) != 0)
		fail_msg("%s", sl_cql_future_error(f)->msg);
	sl_cql_future_release(f);
	r = rows(s, "SELECT c FROM counters WHERE k = 1");
	sl_cql_iter_init(&it, r);
	assert_true(sl_cql_iter_next(&it));
	assert_int_equal(sl_cql_value_int64(sl_cql_iter_value(&it, 0), &cnt), 0);
	assert_true(cnt % 10 == 0 && cnt >= 10);
	sl_cql_iter_free(&it);
	sl_cql_result_free(r);
	sl_cql_statement_free(inc);
	sl_cql_batch_free(cb);
	sl_cql_statement_free(simple);
	sl_cql_statement_free(st);
	sl_cql_batch_free(b);
	sl_cql_session_close(s);
}

static void test_reprepare(void **state)
{
	(void)state;
	struct sl_cql_session *s = connect_opts(false, KS);
	q(s, "DROP TABLE IF EXISTS reprep");
	q(s, "CREATE TABLE reprep (k int PRIMARY KEY, v text)");
	struct sl_cql_prepared *ins;
	struct sl_err e = {0};
	assert_int_equal(sl_cql_session_prepare_wait(s, "INSERT INTO reprep (k, v) VALUES (?, ?)", &ins, &e), 0);
	struct sl_cql_statement *st = sl_cql_prepared_bind(ins);
	sl_cql_bind_int32(st, 0, 1);
	sl_cql_bind_str(st, 1, "before");
	struct sl_cql_future *f = sl_cql_session_execute(s, st);
	assert_int_equal(sl_cql_future_wait(f), 0);
	sl_cql_future_release(f);
	/* Dropping the table makes the server evict statements on it: the next EXECUTE gets UNPREPARED. */
	q(s, "DROP TABLE reprep");
	q(s, "CREATE TABLE reprep (k int PRIMARY KEY, v text)");
	struct sl_cql_session_stats before, after;
	sl_cql_session_stats(s, &before);
	sl_cql_statement_reset(st);
	sl_cql_bind_int32(st, 0, 2);
	sl_cql_bind_str(st, 1, "after");
	f = sl_cql_session_execute(s, st);
	if (sl_cql_future_wait(f) != 0)
		fail_msg("%s", sl_cql_future_error(f)->msg);
	sl_cql_future_release(f);
	sl_cql_session_stats(s, &after);
	assert_int_equal(after.reprepares, before.reprepares + 1);
	struct sl_cql_result *r = rows(s, "SELECT v FROM reprep WHERE k = 2");
	assert_int_equal(sl_cql_result_row_count(r), 1);
	sl_cql_result_free(r);
	/* Batches re-prepare too. */
	q(s, "DROP TABLE reprep");
	q(s, "CREATE TABLE reprep (k int PRIMARY KEY, v text)");
	struct sl_cql_batch *b = sl_cql_batch_new(SL_CQL_BATCH_UNLOGGED);
	sl_cql_statement_reset(st);
	sl_cql_bind_int32(st, 0, 3);
	sl_cql_bind_str(st, 1, "batch");
	sl_cql_batch_add(b, st);
	f = sl_cql_session_execute_batch(s, b);
	if (sl_cql_future_wait(f) != 0)
		fail_msg("%s", sl_cql_future_error(f)->msg);
	sl_cql_future_release(f);
	r = rows(s, "SELECT v FROM reprep WHERE k = 3");
	assert_int_equal(sl_cql_result_row_count(r), 1);
	sl_cql_result_free(r);
	sl_cql_batch_free(b);
	sl_cql_statement_free(st);
	sl_cql_session_close(s);
}

static int64_t server_token_check(struct sl_cql_session *s, const char *select, int n,
				  void (*bind)(struct sl_cql_statement *, int))
{
	/* For each key: the client's token (computed from the bound partition key) must equal the server's. */
	int64_t checked = 0;
	struct sl_cql_prepared *sel;
	struct sl_err e = {0};
	assert_int_equal(sl_cql_session_prepare_wait(s, select, &sel, &e), 0);
	for (int i = 0; i < n; i++) {
		struct sl_cql_statement *st = sl_cql_prepared_bind(sel);
		bind(st, i);
		struct sl_cql_future *f = sl_cql_session_execute(s, st);
		if (sl_cql_future_wait(f) != 0)
			fail_msg("%s", sl_cql_future_error(f)->msg);
		const struct sl_cql_result *r = sl_cql_future_result(f);
		struct sl_cql_iter it;
		sl_cql_iter_init(&it, r);
		assert_true(sl_cql_iter_next(&it));
		int64_t server;
		assert_int_equal(sl_cql_value_int64(sl_cql_iter_value(&it, 0), &server), 0);
		int64_t client;
		assert_int_equal(sl_cql_statement_token(st, &client), 0);
		if (client != server)
			fail_msg("key %d: client token %lld != server token %lld", i, (long long)client, (long long)server);
		checked++;
		sl_cql_iter_free(&it);
		sl_cql_future_release(f);
		sl_cql_statement_free(st);
	}
	return checked;
}

static void bind_tok1(struct sl_cql_statement *st, int i)
{
	char k[48];
	/* Mix lengths (0..40 bytes tails) and bytes >= 0x80 (UTF-8) to hit the signed-tail quirk. */
	int len = snprintf(k, sizeof k, "key-%d-\xc3\xa9%.*s", i, i % 23, "abcdefghijklmnopqrstuvwxyz");
	sl_cql_bind_text(st, 0, k, (size_t)len);
}

static void bind_tok2(struct sl_cql_statement *st, int i)
{
	char b[32];
	snprintf(b, sizeof b, "b\xc3\xbf-%d", i * 7919);
	uint8_t u[16];
	for (int k = 0; k < 16; k++)
		u[k] = (uint8_t)(i * 31 + k * 17);
	sl_cql_bind_int32(st, 0, i - 1000);
	sl_cql_bind_str(st, 1, b);
	sl_cql_bind_uuid(st, 2, u);
}

static void test_tokens(void **state)
{
	(void)state;
	struct sl_cql_session *s = connect_opts(true, KS);
	struct sl_err e = {0};
	/* Insert 2000 keys of each table, then compare per row. */
	struct sl_cql_prepared *i1, *i2;
	assert_int_equal(sl_cql_session_prepare_wait(s, "INSERT INTO tok1 (k) VALUES (?)", &i1, &e), 0);
	assert_int_equal(sl_cql_session_prepare_wait(s, "INSERT INTO tok2 (a, b, c, v) VALUES (?, ?, ?, 1)", &i2, &e), 0);
	const int N = 2000;
	for (int i = 0; i < N; i++) {
		struct sl_cql_statement *a = sl_cql_prepared_bind(i1), *b = sl_cql_prepared_bind(i2);
		bind_tok1(a, i);
		bind_tok2(b, i);
		struct sl_cql_future *fa = sl_cql_session_execute(s, a), *fb = sl_cql_session_execute(s, b);
		assert_int_equal(sl_cql_future_wait(fa), 0);
		assert_int_equal(sl_cql_future_wait(fb), 0);
		sl_cql_future_release(fa);
		sl_cql_future_release(fb);
		sl_cql_statement_free(a);
		sl_cql_statement_free(b);
	}
	assert_int_equal(server_token_check(s, "SELECT token(k) FROM tok1 WHERE k = ?", N, bind_tok1), N);
	assert_int_equal(server_token_check(s, "SELECT token(a, b, c) FROM tok2 WHERE a = ? AND b = ? AND c = ?", N,
					    bind_tok2),
			 N);
	sl_cql_session_close(s);
}

static const char *err_of(struct sl_cql_session *s, const char *stmt, int *rc, int32_t *code, bool *retryable)
{
	static char msg[600];
	struct sl_cql_statement *st = sl_cql_statement_new(stmt, 0);
	struct sl_cql_future *f = sl_cql_session_execute(s, st);
	*rc = sl_cql_future_wait(f);
	snprintf(msg, sizeof msg, "%s", *rc ? sl_cql_future_error(f)->msg : "");
	*code = sl_cql_future_server_code(f);
	*retryable = sl_cql_future_retryable(f);
	sl_cql_future_release(f);
	sl_cql_statement_free(st);
	return msg;
}

static void test_errors(void **state)
{
	(void)state;
	struct sl_cql_session *s = connect_opts(false, KS);
	int rc;
	int32_t code;
	bool retry;
	const char *m = err_of(s, "SELEC * FROM many", &rc, &code, &retry);
	assert_int_equal(rc, SL_ESERVER);
	assert_int_equal(code, SL_CQL_ERR_SYNTAX);
	assert_false(retry);
	assert_non_null(strstr(m, "\"SELEC * FROM many\""));
	assert_non_null(strstr(m, "Syntax error"));
	m = err_of(s, "SELECT * FROM no_such_table", &rc, &code, &retry);
	assert_int_equal(code, SL_CQL_ERR_INVALID);
	assert_non_null(strstr(m, "no_such_table"));
	assert_non_null(strstr(m, "Invalid query"));
	m = err_of(s, "CREATE TABLE many (p int PRIMARY KEY)", &rc, &code, &retry);
	assert_int_equal(code, SL_CQL_ERR_ALREADY_EXISTS);
	/* Unavailable: RF 3 on a one-node cluster, written at QUORUM. */
	q(s, "CREATE KEYSPACE IF NOT EXISTS sl_test_cql_rf3 WITH replication = {'class': 'SimpleStrategy', "
	     "'replication_factor': 3}");
	q(s, "CREATE TABLE IF NOT EXISTS sl_test_cql_rf3.t (k int PRIMARY KEY)");
	struct sl_cql_statement *st = sl_cql_statement_new("INSERT INTO sl_test_cql_rf3.t (k) VALUES (1)", 0);
	sl_cql_statement_set_consistency(st, SL_CQL_QUORUM);
	sl_cql_statement_set_idempotent(st, true);
	struct sl_cql_future *f = sl_cql_session_execute(s, st);
	assert_int_equal(sl_cql_future_wait(f), SL_EAGAIN);
	assert_int_equal(sl_cql_future_server_code(f), SL_CQL_ERR_UNAVAILABLE);
	assert_true(sl_cql_future_retryable(f));
	m = sl_cql_future_error(f)->msg;
	assert_non_null(strstr(m, "Unavailable"));
	assert_non_null(strstr(m, "needs 2 replicas, 1 alive"));
	assert_non_null(strstr(m, "INSERT INTO sl_test_cql_rf3.t"));
	sl_cql_future_release(f);
	sl_cql_statement_free(st);
	/* Client-side timeout: 1 ms each for 64 concurrent full scans of 10,000 rows in one page. Deadlines are
	 * checked on the I/O thread's 20 ms tick, so one scan alone can come back first; 64 at once cannot all. Every
	 * answer is either the rows or a timeout naming the statement, and at least one is a timeout. */
	enum { NSCAN = 64 };
	struct sl_cql_future *fs[NSCAN];
	for (int i = 0; i < NSCAN; i++) {
		st = sl_cql_statement_new("SELECT * FROM many", 0);
		sl_cql_statement_set_page_size(st, 0);
		sl_cql_statement_set_timeout(st, 1);
		fs[i] = sl_cql_session_execute(s, st);
		sl_cql_statement_free(st);
	}
	int timeouts = 0;
	for (int i = 0; i < NSCAN; i++) {
		int frc = sl_cql_future_wait(fs[i]);
		if (frc == SL_ETIMEDOUT) {
			timeouts++;
			assert_true(sl_cql_future_retryable(fs[i]));
			assert_non_null(strstr(sl_cql_future_error(fs[i])->msg, "request timeout"));
			assert_non_null(strstr(sl_cql_future_error(fs[i])->msg, "SELECT * FROM many"));
		} else
			assert_int_equal(frc, 0);
		sl_cql_future_release(fs[i]);
	}
	assert_true(timeouts > 0);
	/* The connection still works after a timed-out request's late answer. */
	struct sl_cql_result *r = rows(s, "SELECT count(*) FROM many WHERE p = 1");
	sl_cql_result_free(r);
	q(s, "DROP KEYSPACE sl_test_cql_rf3");
	sl_cql_session_close(s);

	/* Connection refused names the host. */
	struct sl_cql_options o;
	sl_cql_options_init(&o);
	o.contact_points = "127.0.0.1:1";
	o.connect_timeout_ms = 2000;
	struct sl_err e = {0};
	struct sl_cql_session *bad = NULL;
	assert_int_equal(sl_cql_session_connect(&bad, &o, &e), SL_ECLOSED);
	assert_null(bad);
	assert_non_null(strstr(e.msg, "127.0.0.1:1"));
	assert_non_null(strstr(e.msg, "Connection refused"));
	/* Unknown keyspace at connect is a clear error, not a hang. */
	s = NULL;
	sl_cql_options_init(&o);
	o.contact_points = env_or("SL_CASSANDRA_HOST", "127.0.0.1");
	o.port = atoi(env_or("SL_CASSANDRA_PORT", "9042"));
	o.keyspace = "sl_test_cql_no_such_ks";
	assert_true(sl_cql_session_connect(&s, &o, &e) < 0);
	assert_non_null(strstr(e.msg, "sl_test_cql_no_such_ks"));
}

/* The example at the top of cql.h, step by step as written there (the elided DDL filled in), so the example keeps
 * naming functions that exist and doing what it says: the callback sees the insert succeed, and the row is there. */
struct example_done {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
	int rc;
	char msg[SL_ERR_MSG_MAX];
};

static void on_example_done(struct sl_cql_future *f, void *ctx)
{
	struct example_done *x = ctx;
	pthread_mutex_lock(&x->mu);
	x->rc = sl_cql_future_rc(f);
	if (x->rc < 0)
		snprintf(x->msg, sizeof x->msg, "%s (retryable: %d)", sl_cql_future_error(f)->msg,
			 sl_cql_future_retryable(f));
	x->done = true;
	pthread_cond_signal(&x->cv);
	pthread_mutex_unlock(&x->mu);
}

static void test_header_example(void **state)
{
	(void)state;
	struct sl_cql_options o;
	struct sl_cql_session *s = NULL;
	struct sl_cql_prepared *p = NULL;
	struct sl_cql_statement *st;
	struct sl_cql_future *f;
	struct sl_err err = {0};
	struct example_done x = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
	struct example_done *ctx = &x;

	sl_cql_options_init(&o); o.contact_points = env_or("SL_CASSANDRA_HOST", "127.0.0.1"); o.keyspace = KS;
	o.port = atoi(env_or("SL_CASSANDRA_PORT", "9042"));
	assert_int_equal(sl_cql_session_connect(&s, &o, &err), 0);
	if (sl_cql_session_query(s, "CREATE TABLE IF NOT EXISTS example (a text PRIMARY KEY, b int)", NULL, &err))
		fail_msg("%s", err.msg);
	if (sl_cql_session_prepare_wait(s, "INSERT INTO example (a, b) VALUES (?, ?)", &p, &err))
		fail_msg("%s", err.msg);
	st = sl_cql_prepared_bind(p); sl_cql_bind_str(st, 0, "x"); sl_cql_bind_int32(st, 1, 42);
	f = sl_cql_session_execute(s, st); sl_cql_future_set_callback(f, on_example_done, ctx); sl_cql_future_release(f);
	sl_cql_statement_free(st);

	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 30;
	pthread_mutex_lock(&x.mu);
	while (!x.done && pthread_cond_timedwait(&x.cv, &x.mu, &ts) == 0)
		;
	bool done = x.done;
	pthread_mutex_unlock(&x.mu);
	assert_true(done);
	if (x.rc != 0)
		fail_msg("the example's insert failed: %s", x.msg);
	struct sl_cql_result *r = rows(s, "SELECT b FROM example WHERE a = 'x'");
	struct sl_cql_iter it;
	sl_cql_iter_init(&it, r);
	assert_true(sl_cql_iter_next(&it));
	int32_t b = 0;
	assert_int_equal(sl_cql_value_int32(sl_cql_iter_value(&it, 0), &b), 0);
	assert_int_equal(b, 42);
	sl_cql_iter_free(&it);
	sl_cql_result_free(r);
	sl_cql_session_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_types_roundtrip),
		cmocka_unit_test(test_types_roundtrip_lz4),
		cmocka_unit_test(test_async_insert_and_paging),
		cmocka_unit_test(test_unlogged_batch),
		cmocka_unit_test(test_reprepare),
		cmocka_unit_test(test_tokens),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_header_example),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
