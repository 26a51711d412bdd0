/* The pure parts of the http source (src/source/http.c): URL templates, Retry-After in both forms, backoff bounds,
 * Link header parsing and the token-bucket rate limiter (source/http.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/buf.h"
#include "core/err.h"
#include "source/http.h"

static void test_expand(void **state)
{
	(void)state;
	struct sl_buf b;
	struct sl_err e = {0};
	sl_buf_init(&b);
	assert_int_equal(sl_source_http_expand("http://h/api?page={page}&o={offset}&n={limit}&c={cursor}", 3, 200, 100,
					"a b/c=&", &b, &e), 0);
	assert_string_equal(sl_buf_cstr(&b), "http://h/api?page=3&o=200&n=100&c=a%20b%2Fc%3D%26");
	sl_buf_reset(&b);
	assert_int_equal(sl_source_http_expand("x{{y}}{cursor}", 0, 0, 0, NULL, &b, &e), 0);
	assert_string_equal(sl_buf_cstr(&b), "x{y}");
	sl_buf_reset(&b);
	assert_int_equal(sl_source_http_expand("http://h/?p={pgae}", 0, 0, 0, NULL, &b, &e), SL_ECONFIG);
	assert_non_null(strstr(e.msg, "{pgae}"));
	sl_buf_reset(&b);
	assert_int_equal(sl_source_http_expand("http://h/?p={page", 0, 0, 0, NULL, &b, &e), SL_ECONFIG);
	sl_buf_free(&b);
}

static void test_retry_after(void **state)
{
	(void)state;
#define RA(s, now) sl_source_http_retry_after_ms(s, strlen(s), now)
	assert_int_equal(RA("120", 0), 120000);
	assert_int_equal(RA("  0 \r\n", 0), 0);
	assert_int_equal(RA("", 0), -1);
	assert_int_equal(RA("-5", 0), -1);
	assert_int_equal(RA("1.5", 0), -1);
	assert_int_equal(RA("soon", 0), -1);
	/* 784111777 = Sun, 06 Nov 1994 08:49:37 GMT (RFC 7231's example) in all three formats */
	assert_int_equal(RA("Sun, 06 Nov 1994 08:49:37 GMT", 784111777 - 10), 10000);
	assert_int_equal(RA("Sunday, 06-Nov-94 08:49:37 GMT", 784111777 - 10), 10000);
	assert_int_equal(RA("Sun Nov  6 08:49:37 1994", 784111777 - 10), 10000);
	assert_int_equal(RA("Sun, 06 Nov 1994 08:49:37 GMT", 784111777 + 100), 0); /* past: now */
	assert_int_equal(RA("Sun, 06 Foo 1994 08:49:37 GMT", 0), -1);
	assert_int_equal(RA("Sun, 06 Nov 1994 08:49:37 PST", 0), -1);
	assert_int_equal(RA("Sun, 06 Nov 1994 25:49:37 GMT", 0), -1);
	assert_int_equal(RA("Wed, 29 Feb 2040 00:00:00 GMT", 2214086399), 1000); /* 2040-02-29 = 2214086400 */
	assert_true(RA("99999999999999999999", 0) > 0);
#undef RA
}

static void test_backoff(void **state)
{
	(void)state;
	for (int attempt = 0; attempt < 40; attempt++) {
		int64_t ceil = 100;
		for (int i = 0; i < attempt && ceil < 5000; i++)
			ceil *= 2;
		if (ceil > 5000)
			ceil = 5000;
		int64_t lo = INT64_MAX, hi = -1;
		for (uint64_t r = 0; r < 20000; r += 7) {
			int64_t w = sl_source_http_backoff_ms(attempt, 100, 5000, r * 0x9e3779b97f4a7c15ULL);
			assert_true(w >= 0 && w <= ceil);
			if (w < lo)
				lo = w;
			if (w > hi)
				hi = w;
		}
		/* full jitter spreads over the whole range */
		assert_true(lo < ceil / 10 + 1);
		assert_true(hi > ceil - ceil / 10 - 1);
	}
	assert_int_equal(sl_source_http_backoff_ms(3, 100, 5000, 800), 800);
	assert_int_equal(sl_source_http_backoff_ms(1000, 100, 5000, UINT64_MAX) <= 5000, 1);
}

static void test_link(void **state)
{
	(void)state;
	char out[256];
#define LN(s) sl_source_http_link_next(s, strlen(s), out, sizeof out)
	assert_int_equal(LN("<https://api.github.com/x?page=2>; rel=\"next\", <https://api.github.com/x?page=9>; rel=\"last\""), 0);
	assert_string_equal(out, "https://api.github.com/x?page=2");
	assert_int_equal(LN("<a?page=1>; rel=\"prev\", </p?page=3&x=1,2>; rel=next"), 0);
	assert_string_equal(out, "/p?page=3&x=1,2");
	assert_int_equal(LN(" <u>; title=\"a, b; c\"; rel=\"last next\""), 0);
	assert_string_equal(out, "u");
	assert_int_equal(LN("<u>; REL=NEXT"), 0);
	assert_int_equal(LN("<u>; rel=\"nextish\""), SL_ENOTFOUND);
	assert_int_equal(LN("<u>; rel=\"prev\""), SL_ENOTFOUND);
	assert_int_equal(LN("u; rel=next"), SL_ENOTFOUND);
	assert_int_equal(LN("<u; rel=next"), SL_ENOTFOUND);
	assert_int_equal(LN(""), SL_ENOTFOUND);
	assert_int_equal(LN("<>; rel=next"), SL_ENOTFOUND);
	char small[4];
	assert_int_equal(sl_source_http_link_next("<abcdef>; rel=next", 18, small, sizeof small), SL_ETOOBIG);
#undef LN
}

static void test_bucket(void **state)
{
	(void)state;
	struct sl_source_http_bucket *b = sl_source_http_bucket_new(10, 3, 1000);
	/* a burst of 3 at once, then one per 100 ms */
	assert_int_equal(sl_source_http_bucket_take(b, 1000), 0);
	assert_int_equal(sl_source_http_bucket_take(b, 1000), 0);
	assert_int_equal(sl_source_http_bucket_take(b, 1000), 0);
	int64_t w = sl_source_http_bucket_take(b, 1000);
	assert_true(w > 0 && w <= 101);
	assert_true(sl_source_http_bucket_take(b, 1050) > 0);
	assert_int_equal(sl_source_http_bucket_take(b, 1101), 0);
	assert_true(sl_source_http_bucket_take(b, 1101) > 0);
	/* a long pause refills only up to the burst */
	for (int i = 0; i < 3; i++)
		assert_int_equal(sl_source_http_bucket_take(b, 100000), 0);
	assert_true(sl_source_http_bucket_take(b, 100000) > 0);
	/* over 10 s of continuous demand, about 10/s pass */
	int passed = 0;
	for (int64_t t = 200000; t < 210000; t++)
		passed += sl_source_http_bucket_take(b, t) == 0;
	assert_true(passed >= 99 && passed <= 104);
	sl_source_http_bucket_free(b);
	/* rate 0: no limit */
	b = sl_source_http_bucket_new(0, 1, 0);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(sl_source_http_bucket_take(b, 0), 0);
	sl_source_http_bucket_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_expand),
		cmocka_unit_test(test_retry_after),
		cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_link),
		cmocka_unit_test(test_bucket),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
