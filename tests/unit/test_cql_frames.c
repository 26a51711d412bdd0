/* CQL v4 wire level: header, notations, request encoders, every RESULT kind, every ERROR body, EVENTs, the
 * response prefix (tracing, warnings, custom payload), lz4 bodies, and rejection of lengths that run past the end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "cql/proto.h"
#include "cql/types.h"

static void put_string(struct sl_buf *b, const char *s) { sl_cql_wr_string(b, s, strlen(s)); }

static void test_header_roundtrip(void **state)
{
	(void)state;
	uint8_t raw[9];
	struct sl_cql_header h = {.version = 0x84, .flags = 0x09, .stream = -1, .opcode = SL_CQL_OP_EVENT, .length = 70000};
	sl_cql_header_encode(raw, &h);
	const uint8_t want[9] = {0x84, 0x09, 0xff, 0xff, 0x0c, 0x00, 0x01, 0x11, 0x70};
	assert_memory_equal(raw, want, 9);
	struct sl_cql_header d;
	struct sl_err e = {0};
	assert_int_equal(sl_cql_header_decode(raw, &d, &e), 0);
	assert_int_equal(d.stream, -1);
	assert_int_equal(d.opcode, SL_CQL_OP_EVENT);
	assert_int_equal(d.length, 70000);
	assert_int_equal(d.flags, 0x09);
	raw[0] = 0x83; /* v3 */
	assert_int_equal(sl_cql_header_decode(raw, &d, &e), SL_EPROTO);
	assert_non_null(strstr(e.msg, "version 3"));
	raw[0] = 0x84;
	raw[5] = 0x20; /* 512 MiB */
	assert_int_equal(sl_cql_header_decode(raw, &d, &e), SL_EPROTO);
	h.stream = 32767;
	sl_cql_header_encode(raw, &h);
	sl_cql_header_decode(raw, &d, &e);
	assert_int_equal(d.stream, 32767);
}

static void test_opcode_names(void **state)
{
	(void)state;
	int ops[] = {0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
	const char *names[] = {"ERROR", "STARTUP", "READY", "AUTHENTICATE", "OPTIONS", "SUPPORTED", "QUERY", "RESULT",
			       "PREPARE", "EXECUTE", "REGISTER", "EVENT", "BATCH", "AUTH_CHALLENGE", "AUTH_RESPONSE",
			       "AUTH_SUCCESS"};
	for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
		assert_string_equal(sl_cql_opcode_name(ops[i]), names[i]);
	assert_string_equal(sl_cql_opcode_name(4), "UNKNOWN");
	assert_int_equal(sl_cql_consistency_parse("local_quorum"), SL_CQL_LOCAL_QUORUM);
	assert_string_equal(sl_cql_consistency_name(SL_CQL_LOCAL_ONE), "LOCAL_ONE");
	assert_int_equal(sl_cql_consistency_parse("most"), -1);
}

static void test_reader_bounds(void **state)
{
	(void)state;
	const uint8_t data[] = {0x00, 0x05, 'a', 'b'};
	struct sl_cql_rd r;
	size_t n;
	sl_cql_rd_init(&r, data, sizeof data);
	sl_cql_rd_string(&r, &n);
	assert_true(r.bad);
	assert_int_equal(n, 0);
	/* [bytes] with negative length is null, -2 unset, and a length past the end is malformed. */
	const uint8_t b1[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0x00, 0x00, 0x00, 0x09, 1};
	int32_t len;
	sl_cql_rd_init(&r, b1, sizeof b1);
	assert_null(sl_cql_rd_bytes(&r, &len));
	assert_int_equal(len, -1);
	assert_false(r.bad);
	assert_null(sl_cql_rd_bytes(&r, &len));
	assert_false(r.bad);
	assert_null(sl_cql_rd_bytes(&r, &len));
	assert_true(r.bad);
	/* A count larger than the remaining bytes could hold. */
	const uint8_t c[] = {0, 0, 0, 0};
	sl_cql_rd_init(&r, c, sizeof c);
	assert_int_equal(sl_cql_rd_count(&r, 3, 2), 0);
	assert_true(r.bad);
	sl_cql_rd_init(&r, c, sizeof c);
	assert_int_equal(sl_cql_rd_count(&r, 2, 2), 2);
	assert_false(r.bad);
	sl_cql_rd_init(&r, c, sizeof c);
	sl_cql_rd_count(&r, -1, 1);
	assert_true(r.bad);
	/* long string with a negative length */
	const uint8_t ls[] = {0x80, 0, 0, 0};
	sl_cql_rd_init(&r, ls, sizeof ls);
	sl_cql_rd_long_string(&r, &n);
	assert_true(r.bad);
}

static void test_inet(void **state)
{
	(void)state;
	const uint8_t v4[] = {4, 10, 0, 0, 7, 0, 0, 0x23, 0x52};
	struct sl_cql_rd r;
	struct sockaddr_storage ss;
	sl_cql_rd_init(&r, v4, sizeof v4);
	assert_int_equal(sl_cql_rd_inet(&r, &ss), 0);
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(ntohs(sin->sin_port), 9042);
	assert_int_equal(ntohl(sin->sin_addr.s_addr), 0x0a000007);
	const uint8_t bad[] = {5, 1, 2, 3, 4, 5, 0, 0, 0, 0};
	sl_cql_rd_init(&r, bad, sizeof bad);
	assert_int_equal(sl_cql_rd_inet(&r, &ss), SL_EPROTO);
	uint8_t v6[1 + 16 + 4] = {16};
	v6[16] = 1;
	v6[20] = 0x50;
	sl_cql_rd_init(&r, v6, sizeof v6);
	assert_int_equal(sl_cql_rd_inet(&r, &ss), 0);
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_int_equal(ntohs(((struct sockaddr_in6 *)&ss)->sin6_port), 0x50);
}

static void test_requests(void **state)
{
	(void)state;
	struct sl_buf b;
	sl_buf_init(&b);
	sl_cql_enc_startup(&b, true);
	/* 3 pairs: CQL_VERSION 3.0.0, DRIVER_NAME sluice, COMPRESSION lz4 */
	assert_int_equal(((uint8_t)b.data[0] << 8) | (uint8_t)b.data[1], 3);
	assert_non_null(memmem(b.data, b.len, "\x00\x0b" "COMPRESSION\x00\x03lz4", 18));
	sl_buf_reset(&b);
	sl_cql_enc_auth_plain(&b, "cassandra", "secret");
	const char want[] = "\x00\x00\x00\x11\x00" "cassandra\x00secret";
	assert_int_equal(b.len, sizeof want - 1);
	assert_memory_equal(b.data, want, b.len);

	/* QUERY with values, page size, paging state, serial consistency and timestamp */
	sl_buf_reset(&b);
	uint8_t vals[] = {0, 0, 0, 1, 7, 0xff, 0xff, 0xff, 0xfe};
	uint8_t ps[] = {0xaa, 0xbb};
	struct sl_cql_qparams q = {.consistency = SL_CQL_QUORUM, .serial_consistency = SL_CQL_LOCAL_SERIAL,
				   .values = vals, .values_len = sizeof vals, .nvalues = 2, .page_size = 100,
				   .paging_state = ps, .paging_state_len = 2, .timestamp = 1234};
	sl_cql_enc_query(&b, "SELECT 1", 8, &q);
	const uint8_t wantq[] = {0, 0, 0, 8, 'S', 'E', 'L', 'E', 'C', 'T', ' ', '1', 0, 4,
				 0x01 | 0x04 | 0x08 | 0x10 | 0x20, 0, 2, 0, 0, 0, 1, 7, 0xff, 0xff, 0xff, 0xfe,
				 0, 0, 0, 100, 0, 0, 0, 2, 0xaa, 0xbb, 0, 9, 0, 0, 0, 0, 0, 0, 0x04, 0xd2};
	assert_int_equal(b.len, sizeof wantq);
	assert_memory_equal(b.data, wantq, sizeof wantq);

	/* EXECUTE without anything optional */
	sl_buf_reset(&b);
	struct sl_cql_qparams q2 = {.consistency = SL_CQL_ONE, .serial_consistency = -1, .paging_state_len = -1,
				    .timestamp = INT64_MIN};
	uint8_t id[3] = {1, 2, 3};
	sl_cql_enc_execute(&b, id, 3, &q2);
	const uint8_t wante[] = {0, 3, 1, 2, 3, 0, 1, 0};
	assert_int_equal(b.len, sizeof wante);
	assert_memory_equal(b.data, wante, sizeof wante);

	sl_buf_reset(&b);
	sl_cql_enc_register(&b);
	assert_int_equal(b.data[1], 3);
	assert_non_null(memmem(b.data, b.len, "SCHEMA_CHANGE", 13));
	sl_buf_free(&b);
}

static struct sl_cql_error decode_err(struct sl_buf *b, int rc_want)
{
	struct sl_cql_rd r;
	struct sl_cql_error er;
	struct sl_err e = {0};
	sl_cql_rd_init(&r, b->data, b->len);
	assert_int_equal(sl_cql_decode_error(&r, &er, &e), rc_want);
	return er;
}

static void test_errors(void **state)
{
	(void)state;
	struct sl_buf b;
	sl_buf_init(&b);
	char desc[512];

	sl_cql_wr_i32(&b, SL_CQL_ERR_UNAVAILABLE);
	put_string(&b, "Cannot achieve consistency level QUORUM");
	sl_cql_wr_u16(&b, SL_CQL_QUORUM);
	sl_cql_wr_i32(&b, 2);
	sl_cql_wr_i32(&b, 1);
	struct sl_cql_error er = decode_err(&b, 0);
	assert_int_equal(er.required, 2);
	assert_int_equal(er.alive, 1);
	sl_cql_error_describe(&er, desc, sizeof desc);
	assert_string_equal(desc, "Unavailable (0x1000): Cannot achieve consistency level QUORUM [consistency QUORUM "
				  "needs 2 replicas, 1 alive]");
	assert_true(sl_cql_error_code_retryable(er.code));

	sl_buf_reset(&b);
	sl_cql_wr_i32(&b, SL_CQL_ERR_WRITE_TIMEOUT);
	put_string(&b, "timeout");
	sl_cql_wr_u16(&b, SL_CQL_ONE);
	sl_cql_wr_i32(&b, 0);
	sl_cql_wr_i32(&b, 1);
	put_string(&b, "BATCH_LOG");
	er = decode_err(&b, 0);
	assert_string_equal(er.write_type, "BATCH_LOG");
	assert_int_equal(er.blockfor, 1);

	sl_buf_reset(&b);
	sl_cql_wr_i32(&b, SL_CQL_ERR_READ_TIMEOUT);
	put_string(&b, "rt");
	sl_cql_wr_u16(&b, SL_CQL_ONE);
	sl_cql_wr_i32(&b, 1);
	sl_cql_wr_i32(&b, 1);
	sl_cql_wr_u8(&b, 0);
	er = decode_err(&b, 0);
	assert_false(er.data_present);
	assert_int_equal(er.received, 1);

	sl_buf_reset(&b);
	sl_cql_wr_i32(&b, SL_CQL_ERR_READ_FAILURE);
	put_string(&b, "rf");
	sl_cql_wr_u16(&b, SL_CQL_ALL);
	sl_cql_wr_i32(&b, 1);
	sl_cql_wr_i32(&b, 3);
	sl_cql_wr_i32(&b, 2);
	sl_cql_wr_u8(&b, 1);
	er = decode_err(&b, 0);
	assert_int_equal(er.numfailures, 2);
	assert_true(er.data_present);

	sl_buf_reset(&b);
	sl_cql_wr_i32(&b, SL_CQL_ERR_WRITE_FAILURE);
	put_string(&b, "wf");
	sl_cql_wr_u16(&b, SL_CQL_ALL);
	sl_cql_wr_i32(&b, 1);
	sl_cql_wr_i32(&b, 3);
	sl_cql_wr_i32(&b, 2);
	put_string(&b, "SIMPLE");
	er = decode_err(&b, 0);
	assert_string_equal(er.write_type, "SIMPLE");

	sl_buf_reset(&b);
	sl_cql_wr_i32(&b, SL_CQL_ERR_FUNCTION_FAILURE);
	put_string(&b, "ff");
	put_string(&b, "ks");
	put_string(&b, "fn");
	const char *args[] = {"int", "text"};
	sl_cql_wr_string_list(&b, args, 2);
	er = decode_err(&b, 0);
	assert_string_equal(er.keyspace, "ks");
	assert_string_equal(er.table, "fn");

	sl_buf_reset(&b);
	sl_cql_wr_i32(&b, SL_CQL_ERR_ALREADY_EXISTS);
	put_string(&b, "exists");
	put_string(&b, "ks");
	put_string(&b, "");
	er = decode_err(&b, 0);
	assert_string_equal(er.keyspace, "ks");
	assert_string_equal(er.table, "");

	sl_buf_reset(&b);
	sl_cql_wr_i32(&b, SL_CQL_ERR_UNPREPARED);
	put_string(&b, "unknown id");
	uint8_t id[16] = {0xde, 0xad};
	sl_cql_wr_short_bytes(&b, id, 16);
	er = decode_err(&b, 0);
	assert_int_equal(er.unprepared_id_len, 16);
	assert_memory_equal(er.unprepared_id, id, 16);
	assert_false(sl_cql_error_code_retryable(er.code));

	int plain[] = {SL_CQL_ERR_SERVER, SL_CQL_ERR_PROTOCOL, SL_CQL_ERR_BAD_CREDENTIALS, SL_CQL_ERR_OVERLOADED,
		       SL_CQL_ERR_IS_BOOTSTRAPPING, SL_CQL_ERR_TRUNCATE, SL_CQL_ERR_SYNTAX, SL_CQL_ERR_UNAUTHORIZED,
		       SL_CQL_ERR_INVALID, SL_CQL_ERR_CONFIG};
	for (size_t i = 0; i < sizeof plain / sizeof *plain; i++) {
		sl_buf_reset(&b);
		sl_cql_wr_i32(&b, plain[i]);
		put_string(&b, "message");
		er = decode_err(&b, 0);
		assert_int_equal(er.code, plain[i]);
		assert_string_equal(er.message, "message");
		assert_string_not_equal(sl_cql_error_name(plain[i]), "Unknown error");
	}
	/* Truncated body of an UNAVAILABLE */
	sl_buf_reset(&b);
	sl_cql_wr_i32(&b, SL_CQL_ERR_UNAVAILABLE);
	put_string(&b, "x");
	sl_cql_wr_u16(&b, 1);
	decode_err(&b, SL_EPROTO);
	sl_buf_free(&b);
}

static void col(struct sl_buf *b, const char *name, uint16_t type)
{
	put_string(b, name);
	sl_cql_wr_u16(b, type);
}

static struct sl_cql_result *decode_result(struct sl_buf *b, uint8_t flags, int rc_want)
{
	uint8_t *body = malloc(b->len ? b->len : 1);
	memcpy(body, b->data, b->len);
	struct sl_cql_result *r = NULL;
	struct sl_err e = {0};
	assert_int_equal(sl_cql_result_decode(&r, body, b->len, flags, &e), rc_want);
	return r;
}

static void test_result_rows(void **state)
{
	(void)state;
	struct sl_buf b;
	sl_buf_init(&b);
	sl_cql_wr_i32(&b, SL_CQL_RESULT_ROWS);
	sl_cql_wr_i32(&b, SL_CQL_MF_GLOBAL_TABLES | SL_CQL_MF_HAS_MORE_PAGES);
	sl_cql_wr_i32(&b, 3);
	sl_cql_wr_bytes(&b, "\x01\x02\x03", 3); /* paging state */
	put_string(&b, "ks");
	put_string(&b, "tbl");
	col(&b, "id", SL_CQL_TYPE_INT);
	col(&b, "name", SL_CQL_TYPE_VARCHAR);
	put_string(&b, "tags");
	sl_cql_wr_u16(&b, SL_CQL_TYPE_MAP);
	sl_cql_wr_u16(&b, SL_CQL_TYPE_VARCHAR);
	sl_cql_wr_u16(&b, SL_CQL_TYPE_LIST);
	sl_cql_wr_u16(&b, SL_CQL_TYPE_BIGINT);
	sl_cql_wr_i32(&b, 2); /* rows */
	sl_cql_wr_bytes(&b, "\x00\x00\x00\x07", 4);
	sl_cql_wr_bytes(&b, "", 0); /* empty string, not null */
	sl_cql_wr_i32(&b, -1);
	sl_cql_wr_bytes(&b, "\x00\x00\x00\x08", 4);
	sl_cql_wr_i32(&b, -1);
	sl_cql_wr_bytes(&b, "\x00\x00\x00\x00", 4); /* empty map */
	struct sl_cql_result *r = decode_result(&b, 0, 0);
	assert_int_equal(sl_cql_result_kind(r), SL_CQL_RESULT_ROWS);
	assert_int_equal(sl_cql_result_row_count(r), 2);
	assert_int_equal(sl_cql_result_column_count(r), 3);
	assert_true(sl_cql_result_has_more_pages(r));
	assert_int_equal(r->meta.paging_state_len, 3);
	assert_string_equal(sl_cql_result_column(r, 1)->name, "name");
	assert_string_equal(sl_cql_result_column(r, 2)->table, "tbl");
	assert_int_equal(sl_cql_result_column_index(r, "tags"), 2);
	char tn[64];
	sl_cql_type_name(sl_cql_result_column(r, 2)->type, tn, sizeof tn);
	assert_string_equal(tn, "map<text, list<bigint>>");
	struct sl_cql_iter it;
	sl_cql_iter_init(&it, r);
	assert_true(sl_cql_iter_next(&it));
	int32_t v;
	assert_int_equal(sl_cql_value_int32(sl_cql_iter_value(&it, 0), &v), 0);
	assert_int_equal(v, 7);
	const char *s;
	size_t n;
	assert_int_equal(sl_cql_value_text(sl_cql_iter_value(&it, 1), &s, &n), 0);
	assert_int_equal(n, 0);
	assert_true(sl_cql_value_is_null(sl_cql_iter_value(&it, 2)));
	assert_true(sl_cql_iter_next(&it));
	assert_int_equal(sl_cql_value_text(sl_cql_iter_value(&it, 1), &s, &n), SL_ENOTFOUND);
	struct sl_cql_elems el;
	assert_int_equal(sl_cql_elems_init(&el, sl_cql_iter_value(&it, 2)), 0);
	assert_int_equal(el.count, 0);
	assert_int_equal(sl_cql_elems_next(&el), 0);
	assert_false(sl_cql_iter_next(&it));
	sl_cql_iter_free(&it);
	sl_cql_result_free(r);

	/* Cut the body short anywhere: every prefix must fail cleanly. */
	for (size_t cut = 0; cut < b.len; cut++) {
		struct sl_buf p;
		sl_buf_init(&p);
		sl_buf_append(&p, b.data, cut);
		r = decode_result(&p, 0, cut == 0 ? SL_EPROTO : SL_EPROTO);
		assert_null(r);
		sl_buf_free(&p);
	}
	sl_buf_free(&b);
}

static void test_result_rows_huge_counts(void **state)
{
	(void)state;
	struct sl_buf b;
	sl_buf_init(&b);
	sl_cql_wr_i32(&b, SL_CQL_RESULT_ROWS);
	sl_cql_wr_i32(&b, SL_CQL_MF_GLOBAL_TABLES);
	sl_cql_wr_i32(&b, 0x7fffffff); /* columns */
	put_string(&b, "ks");
	put_string(&b, "t");
	assert_null(decode_result(&b, 0, SL_EPROTO));
	sl_buf_reset(&b);
	sl_cql_wr_i32(&b, SL_CQL_RESULT_ROWS);
	sl_cql_wr_i32(&b, SL_CQL_MF_NO_METADATA);
	sl_cql_wr_i32(&b, 1);
	sl_cql_wr_i32(&b, 0x7fffffff); /* rows */
	sl_cql_wr_i32(&b, 0);
	assert_null(decode_result(&b, 0, SL_EPROTO));
	/* Type nesting bombs stop at depth 32. */
	sl_buf_reset(&b);
	sl_cql_wr_i32(&b, SL_CQL_RESULT_ROWS);
	sl_cql_wr_i32(&b, SL_CQL_MF_GLOBAL_TABLES);
	sl_cql_wr_i32(&b, 1);
	put_string(&b, "ks");
	put_string(&b, "t");
	put_string(&b, "c");
	for (int i = 0; i < 100; i++)
		sl_cql_wr_u16(&b, SL_CQL_TYPE_LIST);
	sl_cql_wr_u16(&b, SL_CQL_TYPE_INT);
	sl_cql_wr_i32(&b, 0);
	assert_null(decode_result(&b, 0, SL_EPROTO));
	sl_buf_free(&b);
}

static void test_result_other_kinds(void **state)
{
	(void)state;
	struct sl_buf b;
	sl_buf_init(&b);
	sl_cql_wr_i32(&b, SL_CQL_RESULT_VOID);
	struct sl_cql_result *r = decode_result(&b, 0, 0);
	assert_int_equal(sl_cql_result_kind(r), SL_CQL_RESULT_VOID);
	assert_int_equal(sl_cql_result_row_count(r), 0);
	sl_cql_result_free(r);

	sl_buf_reset(&b);
	sl_cql_wr_i32(&b, SL_CQL_RESULT_SET_KEYSPACE);
	put_string(&b, "my_ks");
	r = decode_result(&b, 0, 0);
	assert_string_equal(r->keyspace, "my_ks");
	sl_cql_result_free(r);

	/* PREPARED: id, bind metadata with 2 pk indexes, result metadata */
	sl_buf_reset(&b);
	sl_cql_wr_i32(&b, SL_CQL_RESULT_PREPARED);
	sl_cql_wr_short_bytes(&b, "0123456789abcdef", 16);
	sl_cql_wr_i32(&b, SL_CQL_MF_GLOBAL_TABLES);
	sl_cql_wr_i32(&b, 3);
	sl_cql_wr_i32(&b, 2);
	sl_cql_wr_u16(&b, 2);
	sl_cql_wr_u16(&b, 0);
	put_string(&b, "ks");
	put_string(&b, "t");
	col(&b, "a", SL_CQL_TYPE_UUID);
	col(&b, "v", SL_CQL_TYPE_VARCHAR);
	col(&b, "b", SL_CQL_TYPE_INT);
	sl_cql_wr_i32(&b, SL_CQL_MF_NO_METADATA);
	sl_cql_wr_i32(&b, 0);
	r = decode_result(&b, 0, 0);
	assert_int_equal(r->prepared_id_len, 16);
	assert_memory_equal(r->prepared_id, "0123456789abcdef", 16);
	assert_int_equal(r->meta.npk, 2);
	assert_int_equal(r->meta.pk[0], 2);
	assert_int_equal(r->meta.pk[1], 0);
	assert_int_equal(r->meta.cols[0].type->id, SL_CQL_TYPE_UUID);
	assert_int_equal(r->result_meta.flags, SL_CQL_MF_NO_METADATA);
	sl_cql_result_free(r);
	/* A pk index outside the columns is malformed. */
	size_t off = 4 + 18 + 12;
	b.data[off + 1] = 9;
	assert_null(decode_result(&b, 0, SL_EPROTO));

	/* SCHEMA_CHANGE of each target */
	const char *targets[] = {"KEYSPACE", "TABLE", "TYPE", "FUNCTION", "AGGREGATE"};
	for (int i = 0; i < 5; i++) {
		sl_buf_reset(&b);
		sl_cql_wr_i32(&b, SL_CQL_RESULT_SCHEMA_CHANGE);
		put_string(&b, "CREATED");
		put_string(&b, targets[i]);
		put_string(&b, "ks");
		if (i > 0)
			put_string(&b, "thing");
		if (i >= 3) {
			const char *args[] = {"int", "text"};
			sl_cql_wr_string_list(&b, args, 2);
		}
		r = decode_result(&b, 0, 0);
		assert_string_equal(r->change.change, "CREATED");
		assert_string_equal(r->change.target, targets[i]);
		assert_string_equal(r->change.keyspace, "ks");
		if (i > 0)
			assert_string_equal(r->change.name, "thing");
		else
			assert_null(r->change.name);
		assert_int_equal(r->change.nargs, i >= 3 ? 2 : 0);
		sl_cql_result_free(r);
	}
	sl_buf_reset(&b);
	sl_cql_wr_i32(&b, 77);
	assert_null(decode_result(&b, 0, SL_EPROTO));
	sl_buf_free(&b);
}

static void test_prefix(void **state)
{
	(void)state;
	/* tracing id, then warnings, then custom payload, then the RESULT */
	struct sl_buf b;
	sl_buf_init(&b);
	sl_buf_append(&b, "TRACINGID0123456", 16);
	const char *w[] = {"Batch too large", "second"};
	sl_cql_wr_string_list(&b, w, 2);
	sl_cql_wr_u16(&b, 1);
	put_string(&b, "k");
	sl_cql_wr_bytes(&b, "vv", 2);
	sl_cql_wr_i32(&b, SL_CQL_RESULT_VOID);
	struct sl_cql_result *r =
		decode_result(&b, SL_CQL_FLAG_TRACING | SL_CQL_FLAG_WARNING | SL_CQL_FLAG_CUSTOM_PAYLOAD, 0);
	assert_true(r->has_tracing);
	assert_memory_equal(r->tracing_id, "TRACINGID0123456", 16);
	const char *const *ws = sl_cql_result_warnings(r);
	assert_string_equal(ws[0], "Batch too large");
	assert_string_equal(ws[1], "second");
	assert_null(ws[2]);
	assert_int_equal(sl_cql_result_kind(r), SL_CQL_RESULT_VOID);
	sl_cql_result_free(r);
	/* Same body read without the flags is not a valid RESULT. */
	assert_null(decode_result(&b, 0, SL_EPROTO));
	sl_buf_free(&b);
}

static void test_events(void **state)
{
	(void)state;
	struct sl_buf b;
	sl_buf_init(&b);
	put_string(&b, "STATUS_CHANGE");
	put_string(&b, "DOWN");
	sl_cql_wr_u8(&b, 4);
	sl_buf_append(&b, "\x7f\x00\x00\x02", 4);
	sl_cql_wr_i32(&b, 9042);
	struct sl_cql_rd r;
	struct sl_cql_event ev;
	struct sl_err e = {0};
	sl_cql_rd_init(&r, b.data, b.len);
	assert_int_equal(sl_cql_decode_event(&r, &ev, &e), 0);
	assert_int_equal(ev.kind, SL_CQL_EVENT_STATUS);
	assert_string_equal(ev.change, "DOWN");
	assert_int_equal(ntohl(((struct sockaddr_in *)&ev.addr)->sin_addr.s_addr), 0x7f000002);

	sl_buf_reset(&b);
	put_string(&b, "TOPOLOGY_CHANGE");
	put_string(&b, "NEW_NODE");
	sl_cql_wr_u8(&b, 4);
	sl_buf_append(&b, "\x0a\x00\x00\x01", 4);
	sl_cql_wr_i32(&b, 9042);
	sl_cql_rd_init(&r, b.data, b.len);
	assert_int_equal(sl_cql_decode_event(&r, &ev, &e), 0);
	assert_int_equal(ev.kind, SL_CQL_EVENT_TOPOLOGY);
	assert_string_equal(ev.change, "NEW_NODE");

	sl_buf_reset(&b);
	put_string(&b, "SCHEMA_CHANGE");
	put_string(&b, "DROPPED");
	put_string(&b, "TABLE");
	put_string(&b, "ks");
	put_string(&b, "users");
	sl_cql_rd_init(&r, b.data, b.len);
	assert_int_equal(sl_cql_decode_event(&r, &ev, &e), 0);
	assert_int_equal(ev.kind, SL_CQL_EVENT_SCHEMA);
	assert_string_equal(ev.target, "TABLE");
	assert_string_equal(ev.name, "users");

	sl_buf_reset(&b);
	put_string(&b, "WHATEVER");
	sl_cql_rd_init(&r, b.data, b.len);
	assert_int_equal(sl_cql_decode_event(&r, &ev, &e), SL_EPROTO);
	sl_buf_free(&b);
}

static void test_authenticate_supported(void **state)
{
	(void)state;
	struct sl_buf b;
	sl_buf_init(&b);
	put_string(&b, "org.apache.cassandra.auth.PasswordAuthenticator");
	struct sl_cql_rd r;
	struct sl_err e = {0};
	char cls[100];
	sl_cql_rd_init(&r, b.data, b.len);
	assert_int_equal(sl_cql_decode_authenticate(&r, cls, sizeof cls, &e), 0);
	assert_string_equal(cls, "org.apache.cassandra.auth.PasswordAuthenticator");
	sl_buf_reset(&b);
	sl_cql_wr_u16(&b, 2);
	put_string(&b, "CQL_VERSION");
	sl_cql_wr_u16(&b, 1);
	put_string(&b, "3.4.7");
	put_string(&b, "COMPRESSION");
	sl_cql_wr_u16(&b, 2);
	put_string(&b, "snappy");
	put_string(&b, "lz4");
	bool lz4;
	sl_cql_rd_init(&r, b.data, b.len);
	assert_int_equal(sl_cql_decode_supported(&r, &lz4, &e), 0);
	assert_true(lz4);
	sl_cql_rd_init(&r, b.data, b.len - 2);
	assert_int_equal(sl_cql_decode_supported(&r, &lz4, &e), SL_EPROTO);
	sl_buf_free(&b);
}

static void test_lz4(void **state)
{
	(void)state;
	struct sl_buf in, out;
	sl_buf_init(&in);
	sl_buf_init(&out);
	for (int i = 0; i < 5000; i++)
		sl_buf_printf(&in, "row %d of the sluice test;", i % 50);
	assert_int_equal(sl_cql_lz4_compress(&out, (const uint8_t *)in.data, in.len), 0);
	assert_true(out.len < in.len / 4);
	assert_int_equal(sl_cql_get_u32((const uint8_t *)out.data), in.len);
	uint8_t *d;
	size_t dl;
	struct sl_err e = {0};
	assert_int_equal(sl_cql_lz4_decompress((const uint8_t *)out.data, out.len, &d, &dl, &e), 0);
	assert_int_equal(dl, in.len);
	assert_memory_equal(d, in.data, dl);
	free(d);
	/* Lies about the uncompressed length and truncated blocks are refused. */
	sl_cql_put_u32((uint8_t *)out.data, (uint32_t)in.len + 1);
	assert_int_equal(sl_cql_lz4_decompress((const uint8_t *)out.data, out.len, &d, &dl, &e), SL_EPROTO);
	sl_cql_put_u32((uint8_t *)out.data, 0x7fffffff);
	assert_int_equal(sl_cql_lz4_decompress((const uint8_t *)out.data, out.len, &d, &dl, &e), SL_EPROTO);
	sl_cql_put_u32((uint8_t *)out.data, (uint32_t)in.len);
	assert_int_equal(sl_cql_lz4_decompress((const uint8_t *)out.data, out.len / 2, &d, &dl, &e), SL_EPROTO);
	assert_int_equal(sl_cql_lz4_decompress((const uint8_t *)out.data, 3, &d, &dl, &e), SL_EPROTO);
	/* An empty body compresses to length 0 + an empty block and comes back empty. */
	sl_buf_reset(&out);
	assert_int_equal(sl_cql_lz4_compress(&out, (const uint8_t *)"", 0), 0);
	assert_int_equal(sl_cql_lz4_decompress((const uint8_t *)out.data, out.len, &d, &dl, &e), 0);
	assert_int_equal(dl, 0);
	free(d);
	sl_buf_free(&in);
	sl_buf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_roundtrip),
		cmocka_unit_test(test_opcode_names),
		cmocka_unit_test(test_reader_bounds),
		cmocka_unit_test(test_inet),
		cmocka_unit_test(test_requests),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_result_rows),
		cmocka_unit_test(test_result_rows_huge_counts),
		cmocka_unit_test(test_result_other_kinds),
		cmocka_unit_test(test_prefix),
		cmocka_unit_test(test_events),
		cmocka_unit_test(test_authenticate_supported),
		cmocka_unit_test(test_lz4),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
