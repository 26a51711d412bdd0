/* JSON shim: parse, navigate, read, render, error offsets and limits; and the parse+8-field benchmark quoted in
 * codec/json.h (printed, never asserted). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "core/clock.h"
#include "codec/json.h"
#include "source/generate.h"

static struct sl_json_parser *P;

static int setup(void **state)
{
	struct sl_err err;
	return sl_json_parser_new(&P, 1 << 20, 32, &err);
}

static int teardown(void **state)
{
	sl_json_parser_free(P);
	return 0;
}

static struct sl_json_val parse_ok(const char *s)
{
	struct sl_json_val root;
	struct sl_err err = {0};
	int rc = sl_json_parse(P, s, strlen(s), &root, &err);
	if (rc)
		fail_msg("parse failed: %s", err.msg);
	return root;
}

static void expect_str(struct sl_json_val root, const char *path, const char *want)
{
	struct sl_json_val v;
	const char *s;
	size_t n;
	assert_true(sl_json_path(root, path, strlen(path), &v));
	assert_int_equal(sl_json_str(v, &s, &n), 0);
	assert_int_equal(n, strlen(want));
	assert_memory_equal(s, want, n);
}

static void test_navigate(void **state)
{
	struct sl_json_val root = parse_ok(
		"{\"name\":{\"first\":\"Ann\",\"last\":\"O\\\"Neil\\u00e9\"},\"location\":{\"street\":{\"number\":42,"
		"\"name\":\"Main\"},\"postcode\":\"K3X 5T9\"},\"n\":[1,2.5,-3,true,null,\"x\"],\"big\":18446744073709551615,"
		"\"f\":3.0,\"neg\":-9223372036854775808}");
	assert_int_equal(sl_json_type(root), SL_JSON_OBJECT);
	assert_int_equal(sl_json_len(root), 6);
	expect_str(root, "name.first", "Ann");
	expect_str(root, "name.last", "O\"Neil\xc3\xa9");
	expect_str(root, "$.location.postcode", "K3X 5T9");

	struct sl_json_val v, w;
	int64_t i;
	double d;
	bool b;
	assert_true(sl_json_path(root, "location.street.number", 22, &v));
	assert_int_equal(sl_json_type(v), SL_JSON_INT);
	assert_int_equal(sl_json_int64(v, &i), 0);
	assert_int_equal(i, 42);
	assert_int_equal(sl_json_str(v, &(const char *){0}, &(size_t){0}), SL_ETYPE);

	/* Missing steps, wrong container types and malformed paths are all "not found", never a crash. */
	assert_false(sl_json_path(root, "location.street.zip", 19, &v));
	assert_false(sl_json_valid(v));
	assert_false(sl_json_path(root, "name.first.x", 12, &v));
	assert_false(sl_json_path(root, "name.", 5, &v));
	assert_false(sl_json_path(root, "n[9]", 4, &v));
	assert_false(sl_json_path(root, "n[x]", 4, &v));
	assert_false(sl_json_path(root, "n[1", 3, &v));
	assert_true(sl_json_path(root, "$", 1, &v));
	assert_int_equal(sl_json_type(v), SL_JSON_OBJECT);

	assert_true(sl_json_path(root, "n[1]", 4, &v));
	assert_int_equal(sl_json_double(v, &d), 0);
	assert_true(d == 2.5);
	assert_int_equal(sl_json_int64(v, &i), SL_ETYPE);
	assert_true(sl_json_path(root, "n[3]", 4, &v));
	assert_int_equal(sl_json_bool(v, &b), 0);
	assert_true(b);
	assert_true(sl_json_path(root, "n[4]", 4, &v));
	assert_true(sl_json_is_null(v));

	assert_true(sl_json_get(root, "big", 3, &v));
	assert_int_equal(sl_json_type(v), SL_JSON_UINT);
	assert_int_equal(sl_json_int64(v, &i), SL_ETYPE);
	assert_int_equal(sl_json_double(v, &d), 0);
	assert_true(sl_json_get(root, "f", 1, &v));
	assert_int_equal(sl_json_type(v), SL_JSON_DOUBLE);
	assert_int_equal(sl_json_int64(v, &i), 0);
	assert_int_equal(i, 3);
	assert_true(sl_json_get(root, "neg", 3, &v));
	assert_int_equal(sl_json_int64(v, &i), 0);
	assert_true(i == INT64_MIN);

	/* Iteration sees every element in order, then stops and stays stopped. */
	struct sl_json_iter it;
	assert_true(sl_json_get(root, "n", 1, &v));
	assert_int_equal(sl_json_len(v), 6);
	assert_true(sl_json_iter_init(&it, v));
	enum sl_json_type want[] = {SL_JSON_INT, SL_JSON_DOUBLE, SL_JSON_INT, SL_JSON_BOOL, SL_JSON_NULL, SL_JSON_STRING};
	size_t k = 0;
	while (sl_json_array_next(&it, &w))
		assert_int_equal(sl_json_type(w), want[k++]);
	assert_int_equal(k, 6);
	assert_false(sl_json_array_next(&it, &w));

	const char *keys[] = {"name", "location", "n", "big", "f", "neg"};
	const char *key;
	size_t kl;
	assert_true(sl_json_iter_init(&it, root));
	k = 0;
	while (sl_json_object_next(&it, &key, &kl, &w)) {
		assert_int_equal(kl, strlen(keys[k]));
		assert_memory_equal(key, keys[k], kl);
		k++;
	}
	assert_int_equal(k, 6);
	assert_false(sl_json_iter_init(&it, w));  /* w is invalid now */
	struct sl_json_val zero = {{0, 0}};
	assert_int_equal(sl_json_type(zero), SL_JSON_INVALID);
}

static void test_render(void **state)
{
	const char *in = "{\"a\":[1,2.5,-3,true,null,\"x\\ny\"],\"b\":{},\"c\":[],\"d\":1.0,\"e\":1e300,"
			 "\"u\":18446744073709551615}";
	struct sl_json_val root = parse_ok(in);
	struct sl_buf b;
	sl_buf_init(&b);
	sl_json_render(root, &b);
	assert_string_equal(sl_buf_cstr(&b), "{\"a\":[1,2.5,-3,true,null,\"x\\ny\"],\"b\":{},\"c\":[],\"d\":1.0,"
					     "\"e\":1e+300,\"u\":18446744073709551615}");
	sl_buf_reset(&b);
	sl_json_render_short(root, 10, &b);
	assert_string_equal(sl_buf_cstr(&b), "{\"a\":[1,2.\xe2\x80\xa6");
	sl_buf_free(&b);
}

static void expect_error(const char *in, int code, const char *needle)
{
	struct sl_json_val root;
	struct sl_err err = {0};
	int rc = sl_json_parse(P, in, strlen(in), &root, &err);
	if (rc != code || !strstr(err.msg, needle))
		fail_msg("input %s: got %d '%s', want %d containing '%s'", in, rc, err.msg, code, needle);
	assert_false(sl_json_valid(root));
}

static void test_errors(void **state)
{
	expect_error("{\"a\":1,}", SL_EINVAL, "at byte 7");
	expect_error("{\"a\" 1}", SL_EINVAL, "at byte 5");
	expect_error("[1,2,tru]", SL_EINVAL, "at byte 8");
	expect_error("{\"results\":[{\"a\":\"bc", SL_EINVAL, "truncated: input ends at byte 20");
	expect_error("[1] [2]", SL_EINVAL, "at byte 4");
	expect_error("", SL_EINVAL, "empty");
	expect_error("   ", SL_EINVAL, "empty");
	expect_error("\"\xff\"", SL_EINVAL, "UTF-8");
	/* Depth 33 with a parser limited to 32. */
	char deep[80];
	memset(deep, '[', 33);
	memset(deep + 33, ']', 33);
	deep[66] = 0;
	expect_error(deep, SL_ETOOBIG, "nesting deeper than 32");
	deep[2] = 0;
	deep[1] = ']';
	parse_ok(deep);  /* still usable after errors */

	struct sl_json_parser *small;
	struct sl_err err;
	assert_int_equal(sl_json_parser_new(&small, 64, 0, &err), 0);
	struct sl_json_val root;
	char big[100];
	memset(big, ' ', sizeof big);
	big[0] = '1';
	assert_int_equal(sl_json_parse(small, big, sizeof big, &root, &err), SL_ETOOBIG);
	assert_non_null(strstr(err.msg, "exceeds the limit of 64 bytes"));
	assert_int_equal(sl_json_parse(small, big, 10, &root, &err), 0);
	sl_json_parser_free(small);

	/* The offset scanner on its own. */
	assert_int_equal(sl_json_error_offset("{\"a\":[1,{\"b\":null}]}", 20), -1);
	assert_int_equal(sl_json_error_offset("{\"a\":01}", 8), 6);
	assert_int_equal(sl_json_error_offset("{\"a\":\"\\q\"}", 10), 7);
	assert_int_equal(sl_json_error_offset("[1,", 3), 3);
	assert_int_equal(sl_json_error_offset("{,}", 3), 1);
}

/* Every record of a generated page is reachable from $.results and has the randomuser shape. */
static void test_page_walk(void **state)
{
	struct sl_buf b;
	sl_buf_init(&b);
	assert_int_equal(sl_generate_page(7, 0, 50, &b), 0);
	struct sl_json_val root = parse_ok(sl_buf_cstr(&b)), arr, rec, v;
	assert_true(sl_json_path(root, "$.results", 9, &arr));
	assert_int_equal(sl_json_len(arr), 50);
	struct sl_json_iter it;
	assert_true(sl_json_iter_init(&it, arr));
	size_t n = 0;
	while (sl_json_array_next(&it, &rec)) {
		n++;
		assert_true(sl_json_path(rec, "login.uuid", 10, &v));
		assert_int_equal(sl_json_type(v), SL_JSON_STRING);
		assert_true(sl_json_path(rec, "location.street.number", 22, &v));
		assert_int_equal(sl_json_type(v), SL_JSON_INT);
	}
	assert_int_equal(n, 50);
	assert_true(sl_json_path(root, "info.results", 12, &v));
	sl_buf_free(&b);
}

/* DESIGN.md §5's measurement: parse one randomuser record and read 8 fields. */
static void test_bench(void **state)
{
	struct sl_buf b;
	sl_buf_init(&b);
	sl_generate_record(1, 1, &b);
	static const char *paths[] = {"login.uuid", "name.first", "name.last", "gender", "location.postcode", "email",
				      "login.username", "dob.date"};
	size_t plen[8];
	for (int i = 0; i < 8; i++)
		plen[i] = strlen(paths[i]);
	int iters = 200000;
	size_t sink = 0;
	double t0 = sl_mono_s();
	for (int k = 0; k < iters; k++) {
		struct sl_json_val root, v;
		struct sl_err err;
		assert_int_equal(sl_json_parse(P, b.data, b.len, &root, &err), 0);
		for (int i = 0; i < 8; i++) {
			sl_json_path(root, paths[i], plen[i], &v);
			const char *s;
			size_t n;
			if (!sl_json_str(v, &s, &n))
				sink += n;
		}
	}
	double dt = sl_mono_s() - t0;
	assert_true(sink > 0);
	printf("json bench: %zu-byte randomuser record, parse + 8 field reads: %.3f us/record (%.0f records/s)\n", b.len,
	       dt / iters * 1e6, iters / dt);
	sl_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_navigate), cmocka_unit_test(test_render), cmocka_unit_test(test_errors),
		cmocka_unit_test(test_page_walk), cmocka_unit_test(test_bench),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
