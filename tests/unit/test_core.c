/* Core pieces: errors, secret redaction, arena, buffer, metrics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/metrics.h"

static void test_err(void **state)
{
	(void)state;
	struct sl_err e = {0};
	assert_int_equal(sl_err_set(&e, SL_ETIMEDOUT, "GET %s after %d ms", "http://x/", 500), SL_ETIMEDOUT);
	assert_string_equal(e.msg, "GET http://x/ after 500 ms");
	sl_err_prefix(&e, "source %s: ", "users");
	assert_string_equal(e.msg, "source users: GET http://x/ after 500 ms");
	assert_string_equal(sl_strerror(SL_ETIMEDOUT), "timed out");
	assert_int_equal(sl_err_set(NULL, SL_EIO, "x"), SL_EIO);
}

static void test_redact(void **state)
{
	(void)state;
	char out[256];
	sl_log_redact("https://bob:hunter2@api.example/v1?page=2&api_key=SECRET&q=x", out, sizeof out);
	assert_string_equal(out, "https://bob:***@api.example/v1?page=2&api_key=***&q=x");
	sl_log_redact("http://h/p?access_token=abc#frag", out, sizeof out);
	assert_string_equal(out, "http://h/p?access_token=***#frag");
	sl_log_redact("http://h/p?results=10", out, sizeof out);
	assert_string_equal(out, "http://h/p?results=10");
	sl_log_redact("http://h/p?Password=x&Signature=y", out, 12);
	assert_int_equal(strlen(out), 11);
}

static void test_arena(void **state)
{
	(void)state;
	struct sl_arena a;
	sl_arena_init(&a, 128);
	char *s = sl_arena_strndup(&a, "hello world", 5);
	assert_string_equal(s, "hello");
	void *big = sl_arena_alloc(&a, 1000); /* larger than a chunk */
	assert_non_null(big);
	memset(big, 1, 1000);
	assert_true(((uintptr_t)big & 15) == 0);
	for (int i = 0; i < 100; i++)
		assert_non_null(sl_arena_alloc(&a, 24));
	assert_true(a.used_bytes >= 1000 + 100 * 32);
	sl_arena_reset(&a);
	assert_int_equal(a.used_bytes, 0);
	assert_non_null(sl_arena_memdup(&a, "abc", 3));
	sl_arena_free(&a);
}

static void test_buf(void **state)
{
	(void)state;
	struct sl_buf b;
	sl_buf_init(&b);
	sl_buf_puts(&b, "x=");
	sl_buf_printf(&b, "%d", 42);
	sl_buf_putc(&b, ' ');
	sl_buf_json_str(&b, "a\"b\\c\n\x01", 7);
	assert_string_equal(sl_buf_cstr(&b), "x=42 \"a\\\"b\\\\c\\n\\u0001\"");
	sl_buf_reset(&b);
	for (int i = 0; i < 10000; i++)
		sl_buf_putc(&b, 'z');
	assert_int_equal(b.len, 10000);
	assert_true(sl_buf_ok(&b));
	sl_buf_free(&b);
}

static void test_metrics(void **state)
{
	(void)state;
	struct sl_metrics *m = sl_metrics_new();
	struct sl_metric *c = sl_counter(m, "sluice_records_total", "pipeline=\"users\"", "Records seen");
	assert_ptr_equal(c, sl_counter(m, "sluice_records_total", "pipeline=\"users\"", "Records seen"));
	assert_null(sl_gauge(m, "sluice_records_total", "pipeline=\"users\"", "clash"));
	sl_counter_add(c, 5);
	sl_counter_add(c, 2);
	struct sl_metric *g = sl_gauge(m, "sluice_queue_bytes", "", "Queue fill");
	sl_gauge_set(g, 100);
	sl_gauge_add(g, -30);
	const double b[] = {0.01, 0.1, 1};
	struct sl_metric *h = sl_histogram(m, "sluice_write_seconds", "", "Write latency", b, 3);
	sl_histogram_observe(h, 0.005);
	sl_histogram_observe(h, 0.05);
	sl_histogram_observe(h, 0.05);
	sl_histogram_observe(h, 5);
	struct sl_buf out;
	sl_buf_init(&out);
	sl_metrics_export(m, &out);
	const char *t = sl_buf_cstr(&out);
	assert_non_null(strstr(t, "# TYPE sluice_records_total counter\nsluice_records_total{pipeline=\"users\"} 7\n"));
	assert_non_null(strstr(t, "sluice_queue_bytes 70\n"));
	assert_non_null(strstr(t, "sluice_write_seconds_bucket{le=\"0.01\"} 1\n"));
	assert_non_null(strstr(t, "sluice_write_seconds_bucket{le=\"0.10000000000000001\"} 3\n"));
	assert_non_null(strstr(t, "sluice_write_seconds_bucket{le=\"+Inf\"} 4\n"));
	assert_non_null(strstr(t, "sluice_write_seconds_count 4\n"));
	assert_non_null(strstr(t, "sluice_write_seconds_sum 5.105"));
	double p50 = sl_histogram_quantile(h, 0.5);
	assert_true(p50 > 0.01 && p50 <= 0.1);
	sl_buf_free(&out);
	sl_metrics_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_err),          cmocka_unit_test(test_redact),
		cmocka_unit_test(test_arena),        cmocka_unit_test(test_buf),
		cmocka_unit_test(test_metrics),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
