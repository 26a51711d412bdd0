/* The console's pure parts: Burrow's evaluator, request-target and query parsing, Accept-Encoding, If-None-Match,
 * listen addresses; and the dispatcher's answers to unauthorized, oversize and malformed requests (the Authorization
 * check itself is core/httpauth's: tests/unit/test_httpauth.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "console/internal.h"

static struct sl_burrow_window win(const int64_t (*c)[3], size_t n)
{
	struct sl_burrow_window w;
	sl_burrow_init(&w, 10);
	for (size_t i = 0; i < n; i++)
		sl_burrow_push(&w, c[i][0], c[i][1], c[i][2]);
	return w;
}

static void test_burrow(void **state)
{
	(void)state;
	/* Burrow's documented examples, times in ms 60 s apart. */
	const int64_t ok[][3] = {{10, 5, 0}, {20, 3, 60000}, {30, 0, 120000}, {40, 2, 180000}};
	struct sl_burrow_window w = win(ok, 4);
	assert_int_equal(sl_burrow_eval(&w, 5, 200000), SL_BURROW_OK);  /* lag hit zero in the window */
	assert_int_equal(sl_burrow_eval(&w, 0, 900000), SL_BURROW_OK);  /* current lag 0: never an error */
	assert_int_equal(sl_burrow_eval(&w, 5, 900000), SL_BURROW_STOP); /* no commit for longer than the window */

	const int64_t warn[][3] = {{10, 5, 0}, {20, 6, 60000}, {30, 7, 120000}, {40, 9, 180000}};
	w = win(warn, 4);
	assert_int_equal(sl_burrow_eval(&w, 10, 200000), SL_BURROW_WARN);

	const int64_t stall[][3] = {{10, 5, 0}, {10, 6, 60000}, {10, 7, 120000}, {10, 9, 180000}};
	w = win(stall, 4);
	assert_int_equal(sl_burrow_eval(&w, 10, 200000), SL_BURROW_STALL);

	const int64_t rewind[][3] = {{10, 5, 0}, {20, 6, 60000}, {5, 7, 120000}, {15, 9, 180000}};
	w = win(rewind, 4);
	assert_int_equal(sl_burrow_eval(&w, 10, 200000), SL_BURROW_REWIND);

	const int64_t catching[][3] = {{10, 50, 0}, {20, 40, 60000}, {30, 45, 120000}, {40, 30, 180000}};
	w = win(catching, 4);
	assert_int_equal(sl_burrow_eval(&w, 30, 200000), SL_BURROW_OK); /* lag fell somewhere: OK */

	struct sl_burrow_window empty;
	sl_burrow_init(&empty, 10);
	assert_int_equal(sl_burrow_eval(&empty, 3, 1), SL_BURROW_STOP);
	assert_int_equal(sl_burrow_eval(&empty, 0, 1), SL_BURROW_OK);

	/* The window slides: the oldest commit drops out. */
	sl_burrow_init(&w, 3);
	for (int i = 0; i < 5; i++)
		sl_burrow_push(&w, i, 1, i * 1000);
	assert_int_equal(w.n, 3);
	assert_int_equal(w.c[0].offset, 2);
	assert_int_equal(sl_burrow_worst(SL_BURROW_WARN, SL_BURROW_STOP), SL_BURROW_STOP);
	assert_string_equal(sl_burrow_name(SL_BURROW_STALL), "STALL");
}

static void test_target(void **state)
{
	(void)state;
	char p[256], q[256];
	assert_int_equal(sl_con_split_target("/api/kafka?x=1", p, sizeof p, q, sizeof q), 0);
	assert_string_equal(p, "/api/kafka");
	assert_string_equal(q, "x=1");
	assert_int_equal(sl_con_split_target("//api//./overview", p, sizeof p, q, sizeof q), 0);
	assert_string_equal(p, "/api/overview");
	assert_string_equal(q, "");
	assert_int_equal(sl_con_split_target("/a%2Fb", p, sizeof p, q, sizeof q), 0);
	assert_string_equal(p, "/a/b");
	assert_int_equal(sl_con_split_target("/", p, sizeof p, q, sizeof q), 0);
	assert_string_equal(p, "/");
	const char *bad[] = {"", "api", "/../etc/passwd", "/a/%2e%2e/b", "/a%00b", "/a%zz", "/a%2", "/a\x01", "/a#frag",
			     "http://x/", "/a\\b", "/x?a\x7f"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		assert_int_equal(sl_con_split_target(bad[i], p, sizeof p, q, sizeof q), -1);
	char tiny[4];
	assert_int_equal(sl_con_split_target("/abcdef", tiny, sizeof tiny, q, sizeof q), -1);
}

static void test_query(void **state)
{
	(void)state;
	char v[64];
	int64_t n;
	const char *qs = "topic=users%5Fcreated&q=a+b%21&partition=2&empty=&flag";
	assert_int_equal(sl_con_query_get(qs, "topic", v, sizeof v), 1);
	assert_string_equal(v, "users_created");
	assert_int_equal(sl_con_query_get(qs, "q", v, sizeof v), 1);
	assert_string_equal(v, "a b!");
	assert_int_equal(sl_con_query_get(qs, "flag", v, sizeof v), 1);
	assert_string_equal(v, "");
	assert_int_equal(sl_con_query_get(qs, "nope", v, sizeof v), 0);
	assert_int_equal(sl_con_query_get("a=%G1", "a", v, sizeof v), -1);
	assert_int_equal(sl_con_query_int(qs, "partition", 0, 0, 10, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(sl_con_query_int(qs, "missing", 7, 0, 10, &n), 0);
	assert_int_equal(n, 7);
	assert_int_equal(sl_con_query_int(qs, "partition", 0, 3, 10, &n), -1);
	assert_int_equal(sl_con_query_int("x=12abc", "x", 0, 0, 100, &n), -1);
	assert_int_equal(sl_con_query_int("x=99999999999999999999", "x", 0, 0, INT64_MAX, &n), -1);
}

static void test_headers(void **state)
{
	(void)state;
	assert_true(sl_con_accepts_gzip("gzip, deflate, br"));
	assert_true(sl_con_accepts_gzip("deflate;q=0.5, GZIP;q=0.8"));
	assert_true(sl_con_accepts_gzip("*"));
	assert_false(sl_con_accepts_gzip("gzip;q=0"));
	assert_false(sl_con_accepts_gzip("identity"));
	assert_false(sl_con_accepts_gzip("gzipx"));
	assert_false(sl_con_accepts_gzip(NULL));
	assert_true(sl_con_etag_matches("\"abc\"", "\"abc\""));
	assert_true(sl_con_etag_matches("\"x\", W/\"abc\"", "\"abc\""));
	assert_true(sl_con_etag_matches("*", "\"abc\""));
	assert_false(sl_con_etag_matches("\"abcd\"", "\"abc\""));
	char host[64];
	int port;
	assert_int_equal(sl_con_parse_listen("127.0.0.1:8080", host, sizeof host, &port), 0);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 8080);
	assert_int_equal(sl_con_parse_listen(":0", host, sizeof host, &port), 0);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(sl_con_parse_listen("[::1]:9", host, sizeof host, &port), 0);
	assert_string_equal(host, "::1");
	assert_true(sl_http_auth_is_loopback(host));
	assert_false(sl_http_auth_is_loopback("0.0.0.0"));
	assert_int_equal(sl_con_parse_listen("8080", host, sizeof host, &port), -1);
	assert_int_equal(sl_con_parse_listen("h:70000", host, sizeof host, &port), -1);
	assert_int_equal(sl_con_parse_listen("::1:80", host, sizeof host, &port), -1);
}

/* A console without threads or sockets, over a config with one pipeline, for the dispatcher. */
static const char *CONF =
	"data_dir: /nonexistent/sluice-test\n"
	"pipelines:\n"
	"  users:\n"
	"    source: { type: generate, count: 10 }\n"
	"    topic: t\n"
	"    key: id\n"
	"    mapping: { id: { path: login.uuid, type: uuid } }\n"
	"    sink: { keyspace: ks, table: users }\n"
	"console:\n"
	"  token_env: SL_TEST_CONSOLE_TOKEN\n"
	"  max_uri: 256\n";

static int with_console(struct sl_console *c, struct sl_conf *conf)
{
	char path[] = "/tmp/sl_test_console_XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0 || write(fd, CONF, strlen(CONF)) != (ssize_t)strlen(CONF))
		return -1;
	close(fd);
	struct sl_err err = {0};
	int rc = sl_conf_load(path, conf, &err);
	unlink(path);
	if (rc) {
		print_error("%s\n", err.msg);
		return rc;
	}
	setenv("SL_TEST_CONSOLE_TOKEN", "tok", 1);
	rc = sl_con_init(c, conf, NULL, &err);
	if (rc)
		print_error("%s\n", err.msg);
	return rc;
}

static int ask(struct sl_console *c, const char *method, const char *target, const char *auth, struct sl_buf *body)
{
	struct sl_con_req rq = {.method = method, .target = target, .authorization = auth};
	struct sl_con_resp rs = {0};
	sl_buf_init(&rs.body);
	sl_con_dispatch(c, &rq, &rs);
	if (body) {
		sl_buf_reset(body);
		sl_buf_append(body, rs.body.data, rs.body.len);
		if (rs.static_data)
			sl_buf_append(body, rs.static_data, rs.static_len);
		sl_buf_cstr(body);
	}
	sl_buf_free(&rs.body);
	return rs.status;
}

static void test_dispatch(void **state)
{
	(void)state;
	struct sl_console c;
	struct sl_conf conf;
	assert_int_equal(with_console(&c, &conf), 0);
	sl_con_collect(&c); /* the log is not there: every part reports it */
	struct sl_buf b;
	sl_buf_init(&b);
	const char *paths[] = {"/", "/metrics", "/api/overview", "/api/kafka", "/nope", "/app.js"};
	for (size_t i = 0; i < sizeof paths / sizeof *paths; i++)
		assert_int_equal(ask(&c, "GET", paths[i], NULL, NULL), 401);
	/* /health and /ready answer probes without credentials, with the verdict alone (no names, no errors). */
	assert_int_equal(ask(&c, "GET", "/health", NULL, &b), 200);
	assert_string_equal(sl_buf_cstr(&b), "{\"status\":\"ok\"}");
	assert_int_equal(ask(&c, "GET", "/ready", NULL, &b), 503);
	assert_string_equal(sl_buf_cstr(&b), "{\"ready\":false}");
	assert_int_equal(ask(&c, "POST", "/health", NULL, NULL), 401);
	assert_int_equal(ask(&c, "GET", "/api/overview", "Bearer wrong", NULL), 401);
	assert_int_equal(ask(&c, "GET", "/api/overview", "Bearer tok", &b), 200);
	assert_non_null(strstr(b.data, "\"name\":\"users\""));
	assert_int_equal(ask(&c, "GET", "/ready", "Bearer tok", &b), 503);
	assert_non_null(strstr(b.data, "not there yet"));
	assert_int_equal(ask(&c, "GET", "/health", "Bearer tok", NULL), 200);
	assert_int_equal(ask(&c, "GET", "/metrics", "Bearer tok", &b), 200);
	assert_non_null(strstr(b.data, "# TYPE kafka_consumergroup_lag gauge"));
	assert_int_equal(ask(&c, "GET", "/", "Bearer tok", &b), 200);
	assert_non_null(strstr(b.data, "<html"));
	assert_int_equal(ask(&c, "GET", "/nope", "Bearer tok", NULL), 404);
	assert_int_equal(ask(&c, "DELETE", "/api/overview", "Bearer tok", NULL), 405);
	assert_int_equal(ask(&c, "GET", "/../x", "Bearer tok", NULL), 400);
	assert_int_equal(ask(&c, "GET", "/api/kafka/messages?topic=t&limit=0", "Bearer tok", NULL), 400);
	assert_int_equal(ask(&c, "GET", "/api/data/rows?page=-1", "Bearer tok", NULL), 400);
	assert_int_equal(ask(&c, "GET", "/api/data/rows?token=abc", "Bearer tok", NULL), 400);  /* odd hex */
	assert_int_equal(ask(&c, "GET", "/api/data/rows?token=zz", "Bearer tok", NULL), 400);
	assert_int_equal(ask(&c, "GET", "/api/data/rows?size=0", "Bearer tok", NULL), 400);
	unsigned char tok[4];
	assert_int_equal(sl_con_page_token_decode("00ff7a", tok, sizeof tok), 3);
	assert_int_equal(tok[1], 0xff);
	assert_int_equal(sl_con_page_token_decode("00ff7a0102", tok, sizeof tok), -1); /* longer than the buffer */
	assert_int_equal(sl_con_page_token_decode("0F", tok, sizeof tok), -1);         /* uppercase: not ours */
	assert_int_equal(ask(&c, "GET", "/api/schemas/subjects", "Bearer tok", &b), 503);
	assert_non_null(strstr(b.data, "not running"));
	char longt[400];
	memset(longt, 'a', sizeof longt);
	longt[0] = '/';
	longt[sizeof longt - 1] = 0;
	assert_int_equal(ask(&c, "GET", longt, "Bearer tok", NULL), 414);
	struct sl_con_req big = {.method = "POST", .target = "/api/x", .authorization = "Bearer tok", .body_too_big = true};
	struct sl_con_resp rs = {0};
	sl_buf_init(&rs.body);
	sl_con_dispatch(&c, &big, &rs);
	assert_int_equal(rs.status, 413);
	sl_buf_free(&rs.body);
	sl_buf_free(&b);
	sl_con_destroy(&c);
	sl_conf_free(&conf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_burrow), cmocka_unit_test(test_target),  cmocka_unit_test(test_query),
		cmocka_unit_test(test_headers), cmocka_unit_test(test_dispatch),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
