/* src/http: the request parser (heads, chunked bodies, the target split and decoded once), the access policy (roles,
 * Host, Origin, content types), and a live server on loopback (keep-alive, pipelining, chunked bodies, the body limits,
 * the header deadline that a trickle does not extend, eviction at the connection limit). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "core/clock.h"
#include "http/http.h"

static int parse(const char *text, struct sl_http_head *h, char *buf, size_t bufsz)
{
	size_t n = strlen(text);
	assert_true(n < bufsz);
	memcpy(buf, text, n + 1);
	ssize_t e = sl_http_head_end(buf, n, 0);
	if (e <= 0)
		return -1;
	return sl_http_parse_head(buf, (size_t)e, 8192, h);
}

static void test_head(void **state)
{
	(void)state;
	struct sl_http_head h;
	static char buf[65536];
	assert_int_equal(parse("GET /a?b=1 HTTP/1.1\r\nHost: x:1\r\nX-A:  v v \r\n\r\n", &h, buf, sizeof buf), 0);
	assert_string_equal(h.method, "GET");
	assert_string_equal(h.target, "/a?b=1");
	assert_string_equal(sl_http_head_get(&h, "x-a"), "v v");
	assert_true(h.keep_alive);
	assert_int_equal(h.content_length, -1);
	assert_int_equal(parse("POST / HTTP/1.0\r\nContent-Length: 12\r\n\r\n", &h, buf, sizeof buf), 0);
	assert_false(h.keep_alive);
	assert_int_equal(h.content_length, 12);
	assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", &h, buf, sizeof buf), 0);
	assert_false(h.keep_alive);
	assert_int_equal(parse("GET / HTTP/1.1\n\n", &h, buf, sizeof buf), 400);             /* no Host */
	assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", &h, buf, sizeof buf), 400);
	assert_int_equal(parse("GET / HTTP/2.0\r\nHost: a\r\n\r\n", &h, buf, sizeof buf), 505);
	assert_int_equal(parse("G(T / HTTP/1.1\r\nHost: a\r\n\r\n", &h, buf, sizeof buf), 400);
	assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", &h, buf, sizeof buf), 400);
	assert_int_equal(parse("GET / HTTP/1.1\r\nHost : a\r\n\r\n", &h, buf, sizeof buf), 400);
	assert_int_equal(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", &h, buf,
			       sizeof buf), 400);
	assert_int_equal(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", &h, buf, sizeof buf), 400);
	assert_int_equal(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
			       &h, buf, sizeof buf), 400);
	assert_int_equal(parse("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", &h, buf, sizeof buf),
			 501);
	assert_int_equal(parse("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", &h, buf, sizeof buf),
			 0);
	assert_true(h.chunked);
	/* 414 for a target over the limit; 431 past SL_HTTP_MAX_HEADERS headers. */
	char *big = malloc(20000);
	snprintf(big, 20000, "GET /%09000d HTTP/1.1\r\nHost: a\r\n\r\n", 0);
	assert_int_equal(parse(big, &h, buf, sizeof buf), 414);
	size_t o = (size_t)snprintf(big, 20000, "GET / HTTP/1.1\r\nHost: a\r\n");
	for (int i = 0; i < SL_HTTP_MAX_HEADERS + 1; i++)
		o += (size_t)snprintf(big + o, 20000 - o, "X-%d: v\r\n", i);
	snprintf(big + o, 20000 - o, "\r\n");
	assert_int_equal(parse(big, &h, buf, sizeof buf), 431);
	free(big);
	/* A NUL is never part of a head. */
	char nul[] = "GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n";
	assert_int_equal(sl_http_head_end(nul, sizeof nul - 1, 0), -1);
	assert_int_equal(sl_http_head_end("GET / HTTP/1.1\r\nHost: a\r\n", 25, 0), 0);
}

static void test_chunked(void **state)
{
	(void)state;
	const char *body = "4;ext=1\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nTrailer: x\r\n\r\nNEXT";
	/* Fed whole, then byte by byte: the same bytes come out, and the rest is left for the next request. */
	for (int mode = 0; mode < 2; mode++) {
		struct sl_http_chunked c = {0};
		struct sl_buf out;
		sl_buf_init(&out);
		bool done = false;
		size_t i = 0, n = strlen(body);
		while (i < n && !done) {
			size_t step = mode ? 1 : n - i;
			ssize_t k = sl_http_chunked_feed(&c, body + i, step, &out, &done);
			assert_true(k >= 0);
			i += (size_t)k;
		}
		assert_true(done);
		assert_string_equal(body + i, "NEXT");
		assert_int_equal(out.len, 23);
		assert_memory_equal(out.data, "Wikipedia in\r\n\r\nchunks.", 23);
		sl_buf_free(&out);
	}
	const char *bad[] = {"x\r\n", "4\r\nWikiX\r\n", "\r\n", "fffffffffffffffffff\r\n", "4\nWiki\r\n"};
	for (size_t b = 0; b < sizeof bad / sizeof *bad; b++) {
		struct sl_http_chunked c = {0};
		struct sl_buf out;
		sl_buf_init(&out);
		bool done;
		assert_int_equal(sl_http_chunked_feed(&c, bad[b], strlen(bad[b]), &out, &done), -1);
		sl_buf_free(&out);
	}
}

static void test_target(void **state)
{
	(void)state;
	char p[256];
	const char *q;
	assert_int_equal(sl_http_split_target("/subjects/a%2Fb/versions?x=%2F", p, sizeof p, &q), 0);
	assert_string_equal(p, "/subjects/a/b/versions");
	assert_string_equal(q, "x=%2F"); /* the query stays raw */
	/* Decoded exactly once: %252e%252e is the text "%2e%2e", never "..". */
	assert_int_equal(sl_http_split_target("/api/v1/dags/%252e%252e/x", p, sizeof p, &q), 0);
	assert_string_equal(p, "/api/v1/dags/%2e%2e/x");
	assert_string_equal(q, "");
	const char *bad[] = {"/a/../b", "/a/%2e%2e/b", "/a/%2E./b", "/..", "/a/./b", "/a%00b", "/a%0ab", "/a%7fb",
			     "a/b", "", "/a#frag", "/a?b#c", "/a%zz", "/a%2", "/a?b c", "/a?\x01"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		assert_int_equal(sl_http_split_target(bad[i], p, sizeof p, &q), -1);
	assert_int_equal(sl_http_split_target("/abcdef", p, 4, &q), -1); /* does not fit */
	assert_int_equal(sl_http_split_target("/a%5Cb", p, sizeof p, &q), 0);  /* a backslash is a character */
	assert_string_equal(p, "/a\\b");
}

static void test_ctype_and_host(void **state)
{
	(void)state;
	assert_true(sl_http_ctype_json("application/json"));
	assert_true(sl_http_ctype_json("Application/JSON; charset=utf-8"));
	assert_true(sl_http_ctype_json("application/vnd.schemaregistry.v1+json"));
	assert_true(sl_http_ctype_json("application/problem+json"));
	assert_false(sl_http_ctype_json(NULL));
	assert_false(sl_http_ctype_json(""));
	assert_false(sl_http_ctype_json("text/plain"));
	assert_false(sl_http_ctype_json("application/x-www-form-urlencoded"));
	assert_false(sl_http_ctype_json("multipart/form-data; boundary=x"));
	assert_false(sl_http_ctype_json("application/jsonp"));
	assert_false(sl_http_ctype_json("+json"));
	assert_false(sl_http_ctype_json("application/+json"));
	assert_false(sl_http_ctype_json("text/plain; x=application/json"));
	const char *hosts[] = {"registry.internal"};
	assert_true(sl_http_host_allowed("localhost:8080", hosts, 1));
	assert_true(sl_http_host_allowed("LOCALHOST", hosts, 1));
	assert_true(sl_http_host_allowed("127.0.0.1:1", hosts, 1));
	assert_true(sl_http_host_allowed("10.1.2.3", hosts, 1)); /* an IP literal is not rebindable */
	assert_true(sl_http_host_allowed("[::1]:8081", hosts, 1));
	assert_true(sl_http_host_allowed("registry.internal:8081", hosts, 1));
	assert_true(sl_http_host_allowed("Registry.Internal", hosts, 1));
	assert_false(sl_http_host_allowed("rebind.evil.example:8081", hosts, 1));
	assert_false(sl_http_host_allowed("localhost.evil.example", hosts, 1));
	assert_false(sl_http_host_allowed("registry.internal.evil", hosts, 1));
	assert_false(sl_http_host_allowed(NULL, hosts, 1));
	assert_false(sl_http_host_allowed("", hosts, 1));
	assert_false(sl_http_host_allowed("127.0.0.1:", hosts, 1));
	assert_false(sl_http_host_allowed("127.0.0.1:80x", hosts, 1));
	assert_false(sl_http_host_allowed("[::1", hosts, 1));
	assert_false(sl_http_host_allowed("[evil]", hosts, 1));
}

/* Runs the policy on a request made of method, path and extra header lines. */
static int verdict(const struct sl_http_policy *p, const char *method, const char *path, const char *hdrs,
		   enum sl_http_role *role)
{
	static char buf[8192];
	struct sl_http_head h;
	snprintf(buf, sizeof buf, "%s %s HTTP/1.1\r\n%s\r\n", method, path, hdrs);
	size_t n = strlen(buf);
	assert_int_equal(sl_http_parse_head(buf, n, 8192, &h), 0);
	struct sl_http_verdict v;
	sl_http_policy_check(p, &h, path, &v);
	if (role)
		*role = v.role;
	return v.status;
}

static void test_policy(void **state)
{
	(void)state;
	struct sl_http_auth a = {.token = "rw", .read_token = "ro", .user = "admin", .password = "pw"};
	const char *open[] = {"/health", NULL};
	struct sl_http_policy p = {.auth = &a, .open_paths = open};
	enum sl_http_role r;
	const char *H = "Host: 127.0.0.1:8081\r\n";
	char h[1024];
	assert_int_equal(verdict(&p, "GET", "/subjects", H, NULL), 401);
	assert_int_equal(verdict(&p, "GET", "/health", H, NULL), 0);
	assert_int_equal(verdict(&p, "POST", "/health", "Host: 127.0.0.1:8081\r\nContent-Type: application/json\r\n", NULL),
			 401);
	snprintf(h, sizeof h, "%sAuthorization: Bearer ro\r\n", H);
	assert_int_equal(verdict(&p, "GET", "/subjects", h, &r), 0);
	assert_int_equal(r, SL_HTTP_ROLE_READ);
	snprintf(h, sizeof h, "%sAuthorization: Bearer ro\r\nContent-Type: application/json\r\n", H);
	assert_int_equal(verdict(&p, "POST", "/subjects/x/versions", h, NULL), 403);
	snprintf(h, sizeof h, "%sAuthorization: Bearer rw\r\nContent-Type: application/json\r\n", H);
	assert_int_equal(verdict(&p, "POST", "/subjects/x/versions", h, &r), 0);
	assert_int_equal(r, SL_HTTP_ROLE_WRITE);
	snprintf(h, sizeof h, "%sAuthorization: Basic YWRtaW46cHc=\r\nContent-Type: application/json\r\n", H);
	assert_int_equal(verdict(&p, "PUT", "/mode", h, NULL), 0);
	/* Without credentials configured: content type, Origin and Host still hold. */
	struct sl_http_policy o = {0};
	assert_int_equal(verdict(&o, "GET", "/x", H, &r), 0);
	assert_int_equal(r, SL_HTTP_ROLE_WRITE);
	assert_int_equal(verdict(&o, "POST", "/x", H, NULL), 415);
	assert_int_equal(verdict(&o, "POST", "/x", "Host: 127.0.0.1:8081\r\nContent-Type: text/plain\r\n", NULL), 415);
	assert_int_equal(verdict(&o, "PATCH", "/x", "Host: 127.0.0.1:8081\r\nContent-Type: application/json\r\n", NULL), 0);
	assert_int_equal(verdict(&o, "DELETE", "/x", H, NULL), 0);
	assert_int_equal(verdict(&o, "PUT", "/x", H, NULL), 0); /* bodyless, and no browser sends it cross-site */
	assert_int_equal(verdict(&o, "PUT", "/x", "Host: 127.0.0.1:8081\r\nContent-Length: 2\r\n", NULL), 415);
	assert_int_equal(verdict(&o, "POST", "/x", "Host: 127.0.0.1:8081\r\nContent-Length: 0\r\n", NULL), 415);
	assert_int_equal(verdict(&o, "DELETE", "/x", "Host: 127.0.0.1:8081\r\nContent-Length: 2\r\n", NULL), 415);
	assert_int_equal(verdict(&o, "POST", "/x", "Host: 127.0.0.1:8081\r\nContent-Type: application/octet-stream\r\n",
				 NULL), 415);
	o.octet_stream = true;
	assert_int_equal(verdict(&o, "POST", "/x", "Host: 127.0.0.1:8081\r\nContent-Type: application/octet-stream\r\n",
				 NULL), 0);
	const char *J = "Content-Type: application/json\r\n";
	snprintf(h, sizeof h, "Host: 127.0.0.1:8081\r\n%sOrigin: http://127.0.0.1:8081\r\n", J);
	assert_int_equal(verdict(&o, "POST", "/x", h, NULL), 0);
	snprintf(h, sizeof h, "Host: 127.0.0.1:8081\r\n%sOrigin: http://evil.example\r\n", J);
	assert_int_equal(verdict(&o, "POST", "/x", h, NULL), 403);
	snprintf(h, sizeof h, "Host: 127.0.0.1:8081\r\n%sOrigin: null\r\n", J);
	assert_int_equal(verdict(&o, "POST", "/x", h, NULL), 403);
	snprintf(h, sizeof h, "Host: 127.0.0.1:8081\r\n%sOrigin: https://127.0.0.1:8081\r\n", J);
	assert_int_equal(verdict(&o, "POST", "/x", h, NULL), 403); /* the scheme counts */
	snprintf(h, sizeof h, "Host: 127.0.0.1:8081\r\n%sOrigin: http://127.0.0.1:8081\r\nOrigin: http://evil\r\n", J);
	assert_int_equal(verdict(&o, "POST", "/x", h, NULL), 403);
	assert_int_equal(verdict(&o, "GET", "/x", "Host: 127.0.0.1:1\r\nOrigin: a\r\nOrigin: b\r\n", NULL), 403);
	assert_int_equal(verdict(&o, "GET", "/x", "Host: 127.0.0.1:1\r\nOrigin: http://evil.example\r\n", NULL), 0);
	/* DNS rebinding: the attacker's name with the matching Origin. */
	snprintf(h, sizeof h, "Host: rebind.evil.example:8081\r\n%sOrigin: http://rebind.evil.example:8081\r\n", J);
	assert_int_equal(verdict(&o, "POST", "/x", h, NULL), 403);
	assert_int_equal(verdict(&o, "GET", "/x", "Host: rebind.evil.example:8081\r\n", NULL), 403);
	const char *names[] = {"sluice.example.org"};
	o.hosts = names;
	o.nhosts = 1;
	assert_int_equal(verdict(&o, "GET", "/x", "Host: sluice.example.org:8081\r\n", NULL), 0);
	/* Roles straight from core/httpauth. */
	assert_int_equal(sl_http_auth_role(&a, "Bearer rw"), SL_HTTP_ROLE_WRITE);
	assert_int_equal(sl_http_auth_role(&a, "Bearer ro"), SL_HTTP_ROLE_READ);
	assert_int_equal(sl_http_auth_role(&a, "Bearer r"), SL_HTTP_ROLE_NONE);
	assert_int_equal(sl_http_auth_role(&a, NULL), SL_HTTP_ROLE_NONE);
	struct sl_http_auth rb = {.read_user = "reader", .read_password = "rp"};
	assert_int_equal(sl_http_auth_role(&rb, "Basic cmVhZGVyOnJw"), SL_HTTP_ROLE_READ); /* reader:rp */
	assert_int_equal(sl_http_auth_role(&rb, "Basic cmVhZGVyOnJx"), SL_HTTP_ROLE_NONE);
}

/* ---- a live server ---- */

static void echo(void *ctx, const struct sl_http_req *rq, struct sl_http_resp *rs)
{
	(void)ctx;
	sl_buf_printf(&rs->body, "%s %s|%s|%zu|", rq->method, rq->path, rq->query, rq->len);
	sl_buf_append(&rs->body, rq->body ? rq->body : "", rq->len);
	rs->ctype = "text/plain";
}

static int dial(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	return fd;
}

/* Reads until the peer closes, want bytes have come, or ms pass. */
static size_t slurp(int fd, char *buf, size_t cap, const char *until, int ms)
{
	size_t n = 0;
	buf[0] = 0;
	while (n + 1 < cap) {
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		if (poll(&pf, 1, ms) <= 0)
			break;
		ssize_t r = recv(fd, buf + n, cap - 1 - n, 0);
		if (r <= 0)
			break;
		n += (size_t)r;
		buf[n] = 0;
		if (until && strstr(buf, until))
			break;
	}
	return n;
}

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

/* The console's login cookie: hex of an Authorization value stands for the header when the request has none; a
 * cookie of another name, odd or non-hex digits, or control bytes is none; a header present wins. */
static void test_auth_cookie(void **state)
{
	(void)state;
	char out[128];
	assert_true(sl_http_cookie_auth("a=1; sluice_auth=4265617265722072770a; b=2", "sluice_auth", out, sizeof out) ==
		    false); /* "Bearer rw\n": a control byte */
	assert_true(sl_http_cookie_auth("a=1; sluice_auth=42656172657220727; b=2", "sluice_auth", out, sizeof out) == false);
	assert_true(sl_http_cookie_auth("a=1; sluice_auth=4265617265722072zz", "sluice_auth", out, sizeof out) == false);
	assert_true(sl_http_cookie_auth("xsluice_auth=42", "sluice_auth", out, sizeof out) == false);
	assert_true(sl_http_cookie_auth(NULL, "sluice_auth", out, sizeof out) == false);
	assert_true(sl_http_cookie_auth("a=1;sluice_auth=426561726572207277", "sluice_auth", out, sizeof out));
	assert_string_equal(out, "Bearer rw");
	assert_true(sl_http_cookie_auth("sluice_auth=426561726572207277", "sluice_auth", out, 9) == false); /* too long */

	struct sl_http_auth a = {.token = "rw", .read_token = "ro"};
	struct sl_http_policy p = {.auth = &a, .auth_cookie = "sluice_auth"};
	struct sl_http_policy nocookie = {.auth = &a};
	enum sl_http_role r;
	const char *rw = "Host: 127.0.0.1\r\nCookie: sluice_auth=426561726572207277\r\n";
	assert_int_equal(verdict(&p, "GET", "/api/x", rw, &r), 0);
	assert_int_equal(r, SL_HTTP_ROLE_WRITE);
	assert_int_equal(verdict(&nocookie, "GET", "/api/x", rw, NULL), 401);
	assert_int_equal(verdict(&p, "GET", "/api/x", "Host: 127.0.0.1\r\nCookie: sluice_auth=426561726572207278\r\n", NULL),
			 401);
	assert_int_equal(verdict(&p, "GET", "/api/x", "Host: 127.0.0.1\r\nCookie: sluice_auth=426561726572207277\r\n"
							"Authorization: Bearer wrong\r\n", NULL),
			 401);
	assert_int_equal(verdict(&p, "GET", "/api/x", "Host: 127.0.0.1\r\nCookie: sluice_auth=426561726572207266f\r\n", NULL),
			 401);
}

static void test_server(void **state)
{
	(void)state;
	struct sl_http_conf conf;
	sl_http_conf_defaults(&conf);
	conf.header_timeout_ms = 600;
	conf.max_connections = 16;
	conf.max_buffered = 90000;
	struct sl_http_server_opts o = {.name = "test", .host = "127.0.0.1", .conf = &conf, .max_body = 60000,
					.handler = echo};
	struct sl_http_server *s;
	struct sl_err err = {0};
	assert_int_equal(sl_http_start(&o, &s, &err), 0);
	int port = sl_http_port(s);
	static char buf[1 << 17];

	/* Keep-alive and pipelining: three requests in one write, three answers in order. */
	int fd = dial(port);
	const char *three = "GET /a%20b?q=%2F HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
			    "POST /p HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\nhello"
			    "POST /c HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
			    "\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
	assert_int_equal(send(fd, three, strlen(three), 0), (ssize_t)strlen(three));
	slurp(fd, buf, sizeof buf, "POST /c||5|abcde", 3000);
	assert_non_null(strstr(buf, "GET /a b|q=%2F|0|"));
	assert_non_null(strstr(buf, "POST /p||5|hello"));
	assert_non_null(strstr(buf, "POST /c||5|abcde"));
	assert_true(strstr(buf, "GET /a b") < strstr(buf, "POST /p"));
	assert_int_equal(count(buf, "X-Content-Type-Options: nosniff"), 3);
	assert_int_equal(count(buf, "X-Frame-Options: DENY"), 3);
	close(fd);

	/* Body limits: Content-Length over max_body is 413 at once; over max_buffered 503 with Retry-After. */
	fd = dial(port);
	const char *big = "POST /p HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 70000\r\n\r\n";
	send(fd, big, strlen(big), 0);
	slurp(fd, buf, sizeof buf, NULL, 3000);
	assert_non_null(strstr(buf, "HTTP/1.1 413 "));
	assert_non_null(strstr(buf, "\"error_code\":413"));
	close(fd);
	int hold[2];
	const char *half = "POST /p HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 50000\r\n\r\nxx";
	for (int i = 0; i < 2; i++) {
		hold[i] = dial(port);
		send(hold[i], half, strlen(half), 0);
	}
	slurp(hold[1], buf, sizeof buf, NULL, 2000);
	assert_non_null(strstr(buf, "HTTP/1.1 503 "));
	assert_non_null(strstr(buf, "Retry-After: 1"));
	struct sl_http_stats st;
	sl_http_stats(s, &st);
	assert_int_equal(st.buffered_bytes, 50000);
	close(hold[0]);
	close(hold[1]);

	/* The header deadline runs from the first byte: a byte every 100 ms does not keep the connection. */
	fd = dial(port);
	const char *trickle = "GET / HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
	double t0 = sl_mono_s();
	bool closed = false;
	for (size_t i = 0; trickle[i] && !closed; i++) {
		if (send(fd, trickle + i, 1, MSG_NOSIGNAL) != 1)
			closed = true;
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		if (poll(&pf, 1, 100) > 0 && recv(fd, buf, sizeof buf, 0) <= 0)
			closed = true;
	}
	double el = sl_mono_s() - t0;
	assert_true(closed);
	assert_true(el > 0.5 && el < 2.0);
	close(fd);
	sl_http_stats(s, &st);
	assert_int_equal(st.buffered_bytes, 0); /* the held bodies were given back */

	/* At the connection limit the oldest idle connections make room: a normal request still gets through. */
	int idle[20];
	for (int i = 0; i < 20; i++)
		idle[i] = dial(port);
	usleep(200000);
	fd = dial(port);
	const char *get = "GET /ok HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
	send(fd, get, strlen(get), 0);
	slurp(fd, buf, sizeof buf, NULL, 3000);
	assert_non_null(strstr(buf, "GET /ok||0|"));
	close(fd);
	sl_http_stats(s, &st);
	assert_true(st.evicted >= 5);
	assert_true(st.open <= 16);
	for (int i = 0; i < 20; i++)
		close(idle[i]);
	sl_http_stop(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_head),   cmocka_unit_test(test_chunked), cmocka_unit_test(test_target),
		cmocka_unit_test(test_ctype_and_host), cmocka_unit_test(test_policy),
		cmocka_unit_test(test_auth_cookie), cmocka_unit_test(test_server),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
