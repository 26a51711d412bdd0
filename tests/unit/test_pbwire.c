/* format: protobuf on the stream (codec/pbwire.c): the mapping as a proto3 message (parsed back by the libprotobuf
 * shim), Confluent's wire header (short and long message-index forms), encode/decode round trips of every column
 * type, proto3 implicit presence, writers that are not sluice (other field numbers, extra fields, enums, nested
 * messages chosen by index), and hostile payloads: truncated and over-long varints, lengths past the end, groups,
 * wire types that do not match the field, numbers that do not fit the column. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "codec/pbwire.h"
#include "core/log.h"
#include "registry/registry.h"

#include "codec_fixture.h"

static struct sl_schema mk_schema(void)
{
	return codec_test_schema("first-name");
}

static void test_schema_for(void **state)
{
	(void)state;
	struct sl_schema s = mk_schema();
	struct sl_buf b;
	struct sl_err err = {0};
	struct sl_pbwire_reader *rd = NULL;
	sl_buf_init(&b);
	assert_int_equal(sl_pbwire_schema_for(&s, "seed-users", &b, &err), 0);
	const char *t = sl_buf_cstr(&b);
	assert_non_null(strstr(t, "syntax = \"proto3\";"));
	assert_non_null(strstr(t, "import \"google/protobuf/timestamp.proto\";"));
	assert_non_null(strstr(t, "message seed_users {"));
	assert_non_null(strstr(t, "  string id = 1;"));
	assert_non_null(strstr(t, "  optional string first_name = 2;"));
	assert_non_null(strstr(t, "  optional google.protobuf.Timestamp at = 7;"));
	assert_non_null(strstr(t, "  int32 day = 8;"));
	/* libprotobuf accepts it, the well-known import included */
	assert_int_equal(sl_pbwire_reader_new(t, &s, &rd, &err), 0);
	sl_pbwire_reader_free(rd);
	sl_buf_free(&b);
	sl_schema_free(&s);
}

static void test_round_trip(void **state)
{
	(void)state;
	struct sl_schema s = mk_schema();
	struct sl_buf text, out;
	struct sl_err err = {0};
	struct sl_arena a;
	struct sl_record r, back;
	struct sl_pbwire_reader *rd = NULL;
	sl_buf_init(&text);
	sl_buf_init(&out);
	sl_arena_init(&a, 4096);
	assert_int_equal(sl_pbwire_schema_for(&s, "u", &text, &err), 0);
	assert_int_equal(sl_pbwire_reader_new(sl_buf_cstr(&text), &s, &rd, &err), 0);
	const int64_t stamps[] = {0, 1, 999, 1000, -1, -1001, 1700000000123LL, -62135596800000LL};
	for (size_t k = 0; k < sizeof stamps / sizeof *stamps; k++) {
		assert_int_equal(sl_record_init(&r, &s, &a, &err), 0);
		assert_int_equal(sl_uuid_parse("0c3ac3d6-3c11-4cbb-9f4a-ff2d4c2a9b10", 36, r.v[0].u.uuid), 0);
		r.v[0].null = false;
		r.v[1] = (struct sl_value){.u.s = {"Zoë", 4}};
		r.v[2] = (struct sl_value){.u.i32 = k & 1 ? INT32_MIN : -7};
		r.v[3] = (struct sl_value){.u.i64 = k & 1 ? INT64_MAX : INT64_MIN};
		r.v[4] = (struct sl_value){.u.d = -0.5};
		r.v[5] = (struct sl_value){.u.b = k & 1};
		r.v[6] = (struct sl_value){.u.i64 = stamps[k]};
		r.v[7] = (struct sl_value){.u.days = -3};
		sl_buf_reset(&out);
		assert_int_equal(sl_pbwire_encode(&r, 258, &out, &err), 0);
		int32_t id;
		int idx[SL_PBWIRE_MAX_INDEXES];
		size_t nidx, hl;
		assert_int_equal(sl_pbwire_header(out.data, out.len, &id, idx, &nidx, &hl, &err), 0);
		assert_int_equal(id, 258);
		assert_int_equal(nidx, 1);
		assert_int_equal(idx[0], 0);
		assert_int_equal(hl, 6);
		assert_int_equal(sl_pbwire_decode(rd, idx, nidx, out.data + hl, out.len - hl, &back, &a, &err), 0);
		for (size_t i = 0; i < s.n; i++)
			if (!sl_value_eq(s.fields[i].type, &r.v[i], &back.v[i]))
				fail_msg("stamp %zu: column %s differs", k, s.fields[i].name);
	}
	/* optional columns left null stay null; required ones come back as their zero value when zero */
	assert_int_equal(sl_record_init(&r, &s, &a, &err), 0);
	assert_int_equal(sl_uuid_parse("0c3ac3d6-3c11-4cbb-9f4a-ff2d4c2a9b10", 36, r.v[0].u.uuid), 0);
	r.v[0].null = false;
	r.v[7] = (struct sl_value){.u.days = 0};
	sl_buf_reset(&out);
	assert_int_equal(sl_pbwire_encode(&r, 1, &out, &err), 0);
	int idx0[1] = {0};
	assert_int_equal(sl_pbwire_decode(rd, idx0, 1, out.data + 6, out.len - 6, &back, &a, &err), 0);
	for (size_t i = 1; i < 7; i++)
		assert_true(back.v[i].null);
	assert_false(back.v[7].null);
	assert_int_equal(back.v[7].u.days, 0);
	/* a required column without a value is refused at encode */
	r.v[7].null = true;
	assert_int_equal(sl_pbwire_encode(&r, 1, &out, &err), SL_EINVAL);
	assert_non_null(strstr(err.msg, "day"));
	sl_pbwire_reader_free(rd);
	sl_buf_free(&text);
	sl_buf_free(&out);
	sl_arena_free(&a);
	sl_schema_free(&s);
}

/* A writer that is not sluice: other numbers, a package, an enum, an extra repeated field, a nested message picked
 * by message indexes. */
static const char *OTHER = "syntax = \"proto3\";\n"
			   "package acme.v1;\n"
			   "enum Color { RED = 0; GREEN = 1; }\n"
			   "message Other { string z = 1; }\n"
			   "message User {\n"
			   "  repeated int64 extra = 1;\n"
			   "  sint32 n = 9;\n"
			   "  Color colour = 4;\n"
			   "  uint64 big = 5;\n"
			   "  float x = 6;\n"
			   "  string name = 7;\n"
			   "  message Inner { fixed32 n = 3; string name = 2; }\n"
			   "}\n";

static void test_other_writer(void **state)
{
	(void)state;
	struct sl_schema s;
	struct sl_err err = {0};
	struct sl_arena a;
	struct sl_record r;
	struct sl_pbwire_reader *rd = NULL;
	sl_schema_init(&s);
	assert_int_equal(sl_schema_add(&s, "n", SL_T_INT, false, NULL), 0);
	assert_int_equal(sl_schema_add(&s, "colour", SL_T_TEXT, false, NULL), 0);
	assert_int_equal(sl_schema_add(&s, "big", SL_T_BIGINT, false, NULL), 0);
	assert_int_equal(sl_schema_add(&s, "x", SL_T_DOUBLE, false, NULL), 0);
	assert_int_equal(sl_schema_add(&s, "name", SL_T_TEXT, false, NULL), 0);
	sl_arena_init(&a, 4096);
	assert_int_equal(sl_pbwire_reader_new(OTHER, &s, &rd, &err), 0);
	/* User (index [1]): extra packed [1,2], n=-3 (zigzag 5), colour=GREEN, big=300, x=1.5f, name="hi", an unknown
	 * field 20 (varint) skipped */
	const unsigned char user[] = {0x0a, 0x02, 0x01, 0x02, 0x48, 0x05, 0x20, 0x01, 0x28, 0xac, 0x02, 0x35, 0x00,
				      0x00, 0xc0, 0x3f, 0x3a, 0x02, 'h', 'i', 0xa0, 0x01, 0x07};
	int idx[2] = {1, 0};
	assert_int_equal(sl_pbwire_decode(rd, idx, 1, user, sizeof user, &r, &a, &err), 0);
	assert_int_equal(r.v[0].u.i32, -3);
	assert_int_equal(r.v[1].u.s.n, 5);
	assert_memory_equal(r.v[1].u.s.p, "GREEN", 5);
	assert_int_equal(r.v[2].u.i64, 300);
	assert_true(r.v[3].u.d == 1.5);
	assert_memory_equal(r.v[4].u.s.p, "hi", 2);
	/* proto3 implicit presence: an empty User has n=0, colour=RED, name="" (not null) */
	assert_int_equal(sl_pbwire_decode(rd, idx, 1, user, 0, &r, &a, &err), 0);
	assert_false(r.v[0].null);
	assert_int_equal(r.v[0].u.i32, 0);
	assert_memory_equal(r.v[1].u.s.p, "RED", 3);
	assert_false(r.v[4].null);
	assert_int_equal(r.v[4].u.s.n, 0);
	/* User.Inner (indexes [1, 0]): fixed32 n=7, name="q" */
	const unsigned char inner[] = {0x1d, 0x07, 0x00, 0x00, 0x00, 0x12, 0x01, 'q'};
	assert_int_equal(sl_pbwire_decode(rd, idx, 2, inner, sizeof inner, &r, &a, &err), 0);
	assert_int_equal(r.v[0].u.i32, 7);
	assert_memory_equal(r.v[4].u.s.p, "q", 1);
	/* a uint64 past INT64_MAX does not fit a bigint column */
	const unsigned char huge[] = {0x28, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
	assert_int_equal(sl_pbwire_decode(rd, idx, 1, huge, sizeof huge, &r, &a, &err), SL_ETYPE);
	/* indexes naming no message */
	int bad[1] = {9};
	assert_int_equal(sl_pbwire_decode(rd, bad, 1, user, 0, &r, &a, &err), SL_EINVAL);
	sl_pbwire_reader_free(rd);
	/* a column fed by a repeated field cannot be read */
	struct sl_schema s2;
	sl_schema_init(&s2);
	assert_int_equal(sl_schema_add(&s2, "extra", SL_T_BIGINT, false, NULL), 0);
	assert_int_equal(sl_pbwire_reader_new(OTHER, &s2, &rd, &err), 0);
	assert_int_equal(sl_pbwire_decode(rd, idx, 1, user, sizeof user, &r, &a, &err), SL_ETYPE);
	assert_non_null(strstr(err.msg, "repeated"));
	sl_pbwire_reader_free(rd);
	sl_schema_free(&s2);
	sl_schema_free(&s);
	sl_arena_free(&a);
}

static void test_header(void **state)
{
	(void)state;
	struct sl_err err = {0};
	int32_t id;
	int idx[SL_PBWIRE_MAX_INDEXES];
	size_t nidx, hl;
	/* long form: count 2 (zigzag 4), indexes 1, 0 (zigzag 2, 0) */
	const unsigned char l[] = {0, 0, 0, 1, 2, 0x04, 0x02, 0x00, 0xff};
	assert_int_equal(sl_pbwire_header(l, sizeof l, &id, idx, &nidx, &hl, &err), 0);
	assert_int_equal(id, 258);
	assert_int_equal(nidx, 2);
	assert_int_equal(idx[0], 1);
	assert_int_equal(idx[1], 0);
	assert_int_equal(hl, 8);
	const unsigned char magic[] = {1, 0, 0, 0, 1, 0};
	assert_int_equal(sl_pbwire_header(magic, sizeof magic, &id, idx, &nidx, &hl, &err), SL_EINVAL);
	assert_non_null(strstr(err.msg, "Unknown magic byte"));
	assert_int_equal(sl_pbwire_header(magic, 0, &id, idx, &nidx, &hl, &err), SL_EINVAL);
	const unsigned char shortv[] = {0, 0, 0, 0, 1};
	assert_int_equal(sl_pbwire_header(shortv, sizeof shortv, &id, idx, &nidx, &hl, &err), SL_EINVAL);
	/* a negative count, a count past the bound, a count with fewer indexes than it says */
	const unsigned char neg[] = {0, 0, 0, 0, 1, 0x01};
	assert_int_equal(sl_pbwire_header(neg, sizeof neg, &id, idx, &nidx, &hl, &err), SL_EINVAL);
	const unsigned char many[] = {0, 0, 0, 0, 1, 0xfe, 0x01};
	assert_int_equal(sl_pbwire_header(many, sizeof many, &id, idx, &nidx, &hl, &err), SL_EINVAL);
	const unsigned char trunc[] = {0, 0, 0, 0, 1, 0x06, 0x00};
	assert_int_equal(sl_pbwire_header(trunc, sizeof trunc, &id, idx, &nidx, &hl, &err), SL_EINVAL);
}

static void test_hostile(void **state)
{
	(void)state;
	struct sl_schema s;
	struct sl_err err = {0};
	struct sl_arena a;
	struct sl_record r;
	struct sl_pbwire_reader *rd = NULL;
	sl_schema_init(&s);
	assert_int_equal(sl_schema_add(&s, "name", SL_T_TEXT, false, NULL), 0);
	assert_int_equal(sl_schema_add(&s, "n", SL_T_INT, false, NULL), 0);
	sl_arena_init(&a, 4096);
	assert_int_equal(sl_pbwire_reader_new(OTHER, &s, &rd, &err), 0);
	int idx[1] = {1};
	static const struct {
		const char *what;
		unsigned char b[16];
		size_t n;
	} cases[] = {
	    {"truncated varint", {0x48, 0x80}, 2},
	    {"11-byte varint", {0x48, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, 12},
	    {"10th byte over 1", {0x48, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, 11},
	    {"length past the end", {0x3a, 0x05, 'a'}, 3},
	    {"huge length", {0x3a, 0xff, 0xff, 0xff, 0xff, 0x0f, 'a'}, 7},
	    {"unknown field, length past the end", {0x92, 0x01, 0x09, 0x00}, 4},
	    {"group start", {0x5b, 0x5c}, 2},
	    {"wire type 7", {0x5f}, 1},
	    {"field number 0", {0x00, 0x01}, 2},
	    {"wrong wire type for the field", {0x3d, 0, 0, 0, 0}, 5},
	    {"truncated fixed32 of an unknown field", {0x95, 0x01, 0x00}, 3},
	    {"truncated tag", {0xff}, 1},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		memset(&err, 0, sizeof err);
		if (sl_pbwire_decode(rd, idx, 1, cases[i].b, cases[i].n, &r, &a, &err) != SL_EINVAL)
			fail_msg("%s: accepted (%s)", cases[i].what, err.msg);
	}
	sl_pbwire_reader_free(rd);
	/* a schema that is no .proto */
	assert_int_equal(sl_pbwire_reader_new("message {", &s, &rd, &err), SL_EINVAL);
	sl_schema_free(&s);
	sl_arena_free(&a);
}

static int fetch_deps(void *ctx, int id, char **schema, char **type, struct sl_pbwire_dep **deps, size_t *ndeps,
		      struct sl_err *err)
{
	return sl_registry_client_fetch_deps(ctx, id, schema, type, deps, ndeps, err);
}

/* The cache over the in-process registry: a writer schema importing another registered file (a reference, itself
 * importing a third) is resolved transitively and decodes; so does the id of the middle file. */
static void test_local_references(void **state)
{
	(void)state;
	char dir[] = "/tmp/sl-pbwire-XXXXXX", sub[64], cmd[96];
	struct sl_registry_conf conf = {0};
	struct sl_registry *r;
	struct sl_registry_client *g;
	struct sl_pbwire_cache *c;
	struct sl_err err = {0};
	struct sl_buf out;
	struct sl_arena a;
	struct sl_record rec;
	struct sl_schema s;
	int st;
	sl_log_set_level(SL_LOG_ERROR);
	assert_non_null(mkdtemp(dir));
	snprintf(sub, sizeof sub, "%s/registry", dir);
	conf.data_dir = sub;
	assert_int_equal(sl_registry_open(&r, &conf, &err), 0);
	sl_buf_init(&out);
	const char *reqs[] = {
	    "{\"schemaType\":\"PROTOBUF\",\"schema\":\"syntax = \\\"proto3\\\"; package z; message Zip { int32 code = 1; }\"}",
	    "{\"schemaType\":\"PROTOBUF\",\"schema\":\"syntax = \\\"proto3\\\"; package d; import \\\"z/zip.proto\\\"; "
	    "message Addr { string city = 1; z.Zip zip = 2; }\",\"references\":[{\"name\":\"z/zip.proto\",\"subject\":"
	    "\"z/zip.proto\",\"version\":1}]}",
	    "{\"schemaType\":\"PROTOBUF\",\"schema\":\"syntax = \\\"proto3\\\"; import \\\"d/addr.proto\\\"; "
	    "message U { d.Addr addr = 1; string name = 2; }\",\"references\":[{\"name\":\"d/addr.proto\",\"subject\":"
	    "\"d/addr.proto\",\"version\":1}]}",
	};
	const char *paths[] = {"/subjects/z%2Fzip.proto/versions", "/subjects/d%2Faddr.proto/versions",
			       "/subjects/u-value/versions"};
	for (int i = 0; i < 3; i++) {
		sl_registry_handle(r, "POST", paths[i], reqs[i], strlen(reqs[i]), &st, &out);
		if (st != 200)
			fail_msg("%s: %d %s", paths[i], st, sl_buf_cstr(&out));
	}
	int id = atoi(strstr(sl_buf_cstr(&out), "\"id\":") + 5);
	sl_registry_close(r);
	assert_int_equal(sl_registry_client_open(&g, NULL, NULL, dir, &err), 0);
	sl_schema_init(&s);
	assert_int_equal(sl_schema_add(&s, "name", SL_T_TEXT, false, NULL), 0);
	assert_int_equal(sl_pbwire_cache_new(fetch_deps, g, &s, &c, &err), 0);
	sl_arena_init(&a, 4096);
	/* U { addr { city "x" zip { code 5 } } name "bo" } */
	unsigned char v[] = {0, 0, 0, 0, (unsigned char)id, 0, 0x0a, 0x07, 0x0a, 0x01, 'x', 0x12, 0x02, 0x08, 0x05,
			     0x12, 0x02, 'b', 'o'};
	if (sl_pbwire_cache_decode(c, v, sizeof v, &rec, &a, &err))
		fail_msg("decode: %s", err.msg);
	assert_memory_equal(rec.v[0].u.s.p, "bo", 2);
	/* the id of a file that is itself a reference decodes too (message indexes [0] of d/addr.proto: Addr) */
	unsigned char addr[] = {0, 0, 0, 0, (unsigned char)(id - 1), 0, 0x0a, 0x01, 'x', 0x12, 0x02, 0x08, 0x05};
	if (sl_pbwire_cache_decode(c, addr, sizeof addr, &rec, &a, &err))
		fail_msg("decode Addr: %s", err.msg);
	assert_true(rec.v[0].null); /* Addr has no field "name" */
	sl_pbwire_cache_free(c);
	sl_registry_client_close(g);
	sl_arena_free(&a);
	sl_schema_free(&s);
	sl_buf_free(&out);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_schema_for),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_other_writer),
		cmocka_unit_test(test_header),
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_local_references),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
