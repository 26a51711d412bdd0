/* The http source against tests/apiserver/apiserver.py (started here on a free 127.0.0.1 port): every pagination
 * to the end with exact records, prefetch concurrency, resume from a cursor, retries on 500 and 429 (Retry-After
 * honoured, in seconds and as an HTTP-date), a timeout then success, a truncated body retried, malformed JSON handed
 * out as a page, oversize and 404 failing at once without retries, retries running out, bearer/basic/api-key auth
 * with the secrets absent from the log, the rate limit and the poll interval. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <spawn.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>
#include <cmocka.h>
#include <curl/curl.h>

#include "codec/json.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "source/source.h"

extern char **environ;

static pid_t server_pid;
static int port;
static struct sl_json_parser *jp;

#define BEARER "tok-SECRET-b3arer"
#define BASIC_PW "pw-SECRET-basic"
#define API_KEY "key-SECRET-query"

static int setup(void **state)
{
	(void)state;
	const char *srcdir = getenv("SL_SOURCE_DIR");
	char script[1024];
	snprintf(script, sizeof script, "%s/tests/apiserver/apiserver.py", srcdir ? srcdir : ".");
	int fds[2];
	if (pipe(fds))
		return -1;
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
	posix_spawn_file_actions_addclose(&fa, fds[0]);
	char *argv[] = {"python3", script, "--port", "0", "--total", "250", "--bearer", BEARER, "--basic",
			"alice:" BASIC_PW, "--api-key", "apikey:" API_KEY, NULL};
	if (posix_spawnp(&server_pid, "python3", &fa, NULL, argv, environ)) {
		fprintf(stderr, "cannot start %s\n", script);
		return -1;
	}
	posix_spawn_file_actions_destroy(&fa);
	close(fds[1]);
	FILE *f = fdopen(fds[0], "r");
	char line[128] = "";
	if (!fgets(line, sizeof line, f) || sscanf(line, "PORT %d", &port) != 1) {
		fprintf(stderr, "apiserver did not print its port\n");
		return -1;
	}
	fclose(f);
	sl_log_set_level(SL_LOG_WARN);
	setenv("SL_TEST_BEARER", BEARER, 1);
	setenv("SL_TEST_PW", BASIC_PW, 1);
	setenv("SL_TEST_KEY", API_KEY, 1);
	struct sl_err e = {0};
	return sl_json_parser_new(&jp, 0, 0, &e);
}

static int teardown(void **state)
{
	(void)state;
	if (server_pid > 0) {
		kill(server_pid, SIGTERM);
		waitpid(server_pid, NULL, 0);
	}
	sl_json_parser_free(jp);
	return 0;
}

static size_t grow(char *p, size_t sz, size_t n, void *ud)
{
	sl_buf_append(ud, p, sz * n);
	return sz * n;
}

static void http_get(const char *path, struct sl_buf *out)
{
	char url[512];
	snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
	CURL *c = curl_easy_init();
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, grow);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
	assert_int_equal(curl_easy_perform(c), CURLE_OK);
	curl_easy_cleanup(c);
}

/* login.uuid of records [from, to) of seed, as the server generates them. */
static char **expected_uuids(const char *seed, int from, int to)
{
	struct sl_buf b;
	sl_buf_init(&b);
	char path[128];
	snprintf(path, sizeof path, "/_records?seed=%s&from=%d&to=%d", seed, from, to);
	http_get(path, &b);
	struct sl_json_val root, it, u;
	struct sl_err e = {0};
	assert_int_equal(sl_json_parse(jp, b.data, b.len, &root, &e), 0);
	char **out = calloc((size_t)(to - from) + 1, sizeof *out);
	for (int i = 0; i < to - from; i++) {
		assert_true(sl_json_at(root, (size_t)i, &it));
		assert_true(sl_json_path(it, "login.uuid", 10, &u));
		const char *s;
		size_t n;
		assert_int_equal(sl_json_str(u, &s, &n), 0);
		out[i] = strndup(s, n);
	}
	sl_buf_free(&b);
	return out;
}

static void free_list(char **l)
{
	for (size_t i = 0; l && l[i]; i++)
		free(l[i]);
	free(l);
}

static struct sl_source *make(const char *yaml_fmt, const char *resume, int *rc_out, struct sl_err *e)
{
	char yaml[2048];
	/* every template gets the port; %% stays literal */
	snprintf(yaml, sizeof yaml, yaml_fmt, port);
	struct sl_cfg_doc doc;
	struct sl_err le = {0};
	if (sl_cfg_load_string(&doc, "t.yaml", yaml, strlen(yaml), &le))
		fail_msg("yaml: %s\n%s", le.msg, yaml);
	struct sl_source *s = NULL;
	int rc = sl_source_http_new("t", doc.root, resume, &s, e);
	sl_cfg_free(&doc);
	if (rc_out)
		*rc_out = rc;
	else if (rc)
		fail_msg("sl_source_http_new: %s", e->msg);
	return s;
}

struct drained {
	int pages, records, malformed;
	char **uuids;
	size_t nu, cap;
	char first_cursor[SL_CURSOR_MAX], last_cursor[SL_CURSOR_MAX];
	int rc;
	struct sl_err err;
};

/* Pulls pages until the end, an error, max_pages, or a deadline; collects login.uuid of each record. */
static void drain(struct sl_source *s, int max_pages, int64_t budget_ms, struct drained *d)
{
	memset(d, 0, sizeof *d);
	int64_t deadline = sl_mono_ms() + budget_ms;
	while (d->pages < max_pages) {
		struct sl_page pg;
		int rc = s->ops->next_page(s, &pg, &d->err);
		if (rc == SL_EAGAIN) {
			if (sl_mono_ms() > deadline)
				fail_msg("drain: no page within %ld ms", (long)budget_ms);
			continue;
		}
		if (rc) {
			d->rc = rc;
			break;
		}
		assert_int_equal(pg.seq, (uint64_t)d->pages);
		if (!d->pages)
			snprintf(d->first_cursor, sizeof d->first_cursor, "%s", pg.cursor);
		snprintf(d->last_cursor, sizeof d->last_cursor, "%s", pg.cursor);
		d->pages++;
		struct sl_json_val root, arr, it, u;
		struct sl_err e = {0};
		if (sl_json_parse(jp, pg.body, pg.len, &root, &e)) {
			d->malformed++;
			continue;
		}
		assert_true(sl_json_path(root, "$.results", 9, &arr));
		struct sl_json_iter iter;
		sl_json_iter_init(&iter, arr);
		while (sl_json_array_next(&iter, &it)) {
			assert_true(sl_json_path(it, "login.uuid", 10, &u));
			const char *str;
			size_t n;
			assert_int_equal(sl_json_str(u, &str, &n), 0);
			if (d->nu == d->cap) {
				d->cap = d->cap ? d->cap * 2 : 256;
				d->uuids = realloc(d->uuids, d->cap * sizeof *d->uuids);
			}
			d->uuids[d->nu++] = strndup(str, n);
			d->records++;
		}
	}
}

static void drained_free(struct drained *d)
{
	for (size_t i = 0; i < d->nu; i++)
		free(d->uuids[i]);
	free(d->uuids);
}

static void check_exact(struct drained *d, const char *seed, int from, int to)
{
	char **want = expected_uuids(seed, from, to);
	assert_int_equal(d->nu, (size_t)(to - from));
	for (int i = 0; i < to - from; i++)
		assert_string_equal(d->uuids[i], want[i]);
	free_list(want);
}

static void run_mode(const char *yaml, const char *seed, int want_pages)
{
	struct sl_err e = {0};
	struct sl_source *s = make(yaml, NULL, NULL, &e);
	assert_string_equal(s->records_path, "$.results");
	struct drained d;
	drain(s, 1000, 20000, &d);
	if (d.rc != SL_ENOTFOUND)
		fail_msg("expected the end of pages, got %d: %s", d.rc, d.err.msg);
	assert_int_equal(d.pages, want_pages);
	check_exact(&d, seed, 0, 250);
	assert_int_equal(s->stats.retries, 0);
	assert_int_equal(s->stats.failures, 0);
	assert_true(s->stats.bytes > 0);
	drained_free(&d);
	s->ops->destroy(s);
}

static void test_paginations(void **state)
{
	(void)state;
	/* page: 3 pages of 100/100/50, then an empty page ends it (not handed out). */
	run_mode("type: http\nurl: \"http://127.0.0.1:%d/api/?seed=p1&results={limit}&page={page}\"\n"
		 "pagination: {type: page, limit: 100}\n", "p1", 3);
	/* the same with three requests in flight */
	run_mode("type: http\nurl: \"http://127.0.0.1:%d/api/?seed=p2&results={limit}&page={page}\"\n"
		 "pagination: {type: page, limit: 30}\nconcurrency: 3\n", "p2", 9);
	run_mode("type: http\nurl: \"http://127.0.0.1:%d/api/?seed=o1&offset={offset}&limit={limit}\"\n"
		 "pagination: {type: offset, limit: 40}\nconcurrency: 4\n", "o1", 7);
	/* cursor, link and next_url end on the last page itself (no next). */
	run_mode("type: http\nurl: \"http://127.0.0.1:%d/api/?seed=c1&cursor={cursor}&limit={limit}\"\n"
		 "pagination: {type: cursor, limit: 100, cursor_path: $.next_cursor}\n", "c1", 3);
	run_mode("type: http\nurl: \"http://127.0.0.1:%d/api/?seed=l1&results=60&page=1\"\n"
		 "pagination: {type: link}\n", "l1", 5);
	run_mode("type: http\nurl: \"http://127.0.0.1:%d/api/?seed=n1&results=125&page=1\"\n"
		 "pagination: {type: next_url, next_url_path: $.next}\n", "n1", 2);
}

static void test_resume(void **state)
{
	(void)state;
	const char *yaml = "type: http\nurl: \"http://127.0.0.1:%d/api/?seed=r1&results={limit}&page={page}\"\n"
			   "pagination: {type: page, limit: 50}\n";
	struct sl_err e = {0};
	struct sl_source *s = make(yaml, NULL, NULL, &e);
	struct drained d;
	drain(s, 2, 10000, &d);
	assert_int_equal(d.pages, 2);
	assert_string_equal(d.last_cursor, "next_page=3");
	s->ops->destroy(s);
	char cur[SL_CURSOR_MAX];
	snprintf(cur, sizeof cur, "%s", d.last_cursor);
	drained_free(&d);
	/* restart after page 2: records 100.. */
	s = make(yaml, cur, NULL, &e);
	drain(s, 1000, 10000, &d);
	assert_int_equal(d.rc, SL_ENOTFOUND);
	check_exact(&d, "r1", 100, 250);
	drained_free(&d);
	s->ops->destroy(s);
	/* cursor pagination resumes with its token */
	const char *cy = "type: http\nurl: \"http://127.0.0.1:%d/api/?seed=r2&cursor={cursor}&limit=100\"\n"
			 "pagination: {type: cursor}\n";
	s = make(cy, NULL, NULL, &e);
	drain(s, 1, 10000, &d);
	snprintf(cur, sizeof cur, "%s", d.first_cursor);
	assert_int_equal(strncmp(cur, "next_cursor=", 12), 0);
	drained_free(&d);
	s->ops->destroy(s);
	s = make(cy, cur, NULL, &e);
	drain(s, 1000, 10000, &d);
	check_exact(&d, "r2", 100, 250);
	drained_free(&d);
	s->ops->destroy(s);
	/* a cursor from another pagination is refused, naming what it expected */
	int rc;
	s = make(yaml, "next_cursor=abc", &rc, &e);
	assert_int_equal(rc, SL_ECONFIG);
	assert_non_null(strstr(e.msg, "next_page"));
}

static void one_page(const char *yaml, struct sl_source **sp, struct drained *d)
{
	struct sl_err e = {0};
	*sp = make(yaml, NULL, NULL, &e);
	drain(*sp, 1, 30000, d);
}

static void test_retry_500_and_truncated(void **state)
{
	(void)state;
	struct sl_source *s;
	struct drained d;
	one_page("type: http\nurl: \"http://127.0.0.1:%d/api/?seed=f5&results=10&fail500=2\"\nbackoff: 20ms\n", &s, &d);
	assert_int_equal(d.rc, 0);
	assert_int_equal(d.pages, 1);
	check_exact(&d, "f5", 0, 10);
	assert_int_equal(s->stats.requests, 3);
	assert_int_equal(s->stats.retries, 2);
	assert_int_equal(s->stats.failures, 2);
	drained_free(&d);
	s->ops->destroy(s);
	/* Content-Length larger than the body: retried, then complete. */
	one_page("type: http\nurl: \"http://127.0.0.1:%d/api/?seed=tr&results=20&truncate=1\"\nbackoff: 20ms\n", &s, &d);
	assert_int_equal(d.rc, 0);
	check_exact(&d, "tr", 0, 20);
	assert_int_equal(s->stats.retries, 1);
	drained_free(&d);
	s->ops->destroy(s);
}

static void test_retry_429_retry_after(void **state)
{
	(void)state;
	struct sl_source *s;
	struct drained d;
	int64_t t0 = sl_mono_ms();
	one_page("type: http\nurl: \"http://127.0.0.1:%d/api/?seed=ra&results=5&fail429=1&retry_after=1\"\n"
		 "backoff: 10ms\n", &s, &d);
	int64_t el = sl_mono_ms() - t0;
	assert_int_equal(d.rc, 0);
	assert_int_equal(s->stats.retries, 1);
	assert_true(el >= 1000);
	assert_true(el < 5000);
	drained_free(&d);
	s->ops->destroy(s);
	/* as an HTTP-date (1 s resolution, so the wait is between 0 and 2 s) */
	t0 = sl_mono_ms();
	one_page("type: http\nurl: \"http://127.0.0.1:%d/api/?seed=rd&results=5&fail429=1&retry_after=2&retry_date=1\"\n"
		 "backoff: 10ms\n", &s, &d);
	el = sl_mono_ms() - t0;
	assert_int_equal(d.rc, 0);
	assert_int_equal(s->stats.retries, 1);
	assert_true(el >= 900);
	drained_free(&d);
	s->ops->destroy(s);
}

static void test_timeout_then_success(void **state)
{
	(void)state;
	struct sl_source *s;
	struct drained d;
	int64_t t0 = sl_mono_ms();
	one_page("type: http\nurl: \"http://127.0.0.1:%d/api/?seed=sl&results=5&slow=1&delay=3\"\n"
		 "timeout: 400ms\nbackoff: 10ms\n", &s, &d);
	int64_t el = sl_mono_ms() - t0;
	assert_int_equal(d.rc, 0);
	check_exact(&d, "sl", 0, 5);
	assert_int_equal(s->stats.retries, 1);
	assert_true(el >= 400 && el < 2500);
	drained_free(&d);
	s->ops->destroy(s);
}

static void test_fatal_errors(void **state)
{
	(void)state;
	struct sl_source *s;
	struct drained d;
	/* 404: no retry, the message names the URL */
	one_page("type: http\nurl: \"http://127.0.0.1:%d/api/?seed=nf&status=404\"\nbackoff: 10ms\n", &s, &d);
	assert_int_equal(d.rc, SL_ESERVER);
	assert_non_null(strstr(d.err.msg, "HTTP 404"));
	assert_non_null(strstr(d.err.msg, "/api/?seed=nf&status=404"));
	assert_int_equal(s->stats.requests, 1);
	assert_int_equal(s->stats.retries, 0);
	drained_free(&d);
	s->ops->destroy(s);
	/* oversize: fails at once, memory bounded by max_response */
	one_page("type: http\nurl: \"http://127.0.0.1:%d/api/?seed=ov&results=5&oversize=300000\"\n"
		 "max_response: 100KiB\n", &s, &d);
	assert_int_equal(d.rc, SL_ETOOBIG);
	assert_non_null(strstr(d.err.msg, "max_response"));
	assert_int_equal(s->stats.retries, 0);
	drained_free(&d);
	s->ops->destroy(s);
	/* retries run out */
	one_page("type: http\nurl: \"http://127.0.0.1:%d/api/?seed=ex&fail500=100\"\nmax_retries: 2\nbackoff: 10ms\n",
		 &s, &d);
	assert_int_equal(d.rc, SL_ESERVER);
	assert_non_null(strstr(d.err.msg, "after 2 retries"));
	assert_int_equal(s->stats.requests, 3);
	drained_free(&d);
	s->ops->destroy(s);
	/* connection refused counts as retryable, then fails */
	struct sl_err e = {0};
	s = make("type: http\nurl: \"http://127.0.0.1:1/api/?x=%d\"\nmax_retries: 1\nbackoff: 10ms\n", NULL, NULL, &e);
	drain(s, 1, 10000, &d);
	assert_int_equal(d.rc, SL_EIO);
	assert_int_equal(s->stats.retries, 1);
	drained_free(&d);
	s->ops->destroy(s);
	/* unknown template parameter and unknown key fail at load time */
	int rc;
	s = make("type: http\nurl: \"http://127.0.0.1:%d/api/?p={pgae}\"\n", NULL, &rc, &e);
	assert_int_equal(rc, SL_ECONFIG);
	assert_non_null(strstr(e.msg, "{pgae}"));
	s = make("type: http\nurl: \"http://127.0.0.1:%d/api/\"\ntimeuot: 1s\n", NULL, &rc, &e);
	assert_int_equal(rc, SL_ECONFIG);
	s = make("type: http\nurl: \"http://127.0.0.1:%d/api/\"\npagination: {type: cursor}\nconcurrency: 2\n", NULL,
		 &rc, &e);
	assert_int_equal(rc, SL_ECONFIG);
}

/* Feeds bad-page verdicts (what the ingest loop says of an HTML page) until the source stops; returns its rc. */
static int feed_verdicts(struct sl_source *s, const char *pattern, int *pages, struct sl_err *e)
{
	*pages = 0;
	int64_t deadline = sl_mono_ms() + 20000;
	while (sl_mono_ms() < deadline) {
		struct sl_page pg;
		int rc = s->ops->next_page(s, &pg, e);
		if (rc == SL_EAGAIN)
			continue;
		if (rc)
			return rc;
		char v = pattern[*pages % strlen(pattern)];
		(*pages)++;
		s->ops->page_verdict(s, v == 'b', v == 'b' ? "the response is not JSON" : NULL);
		if (strlen(pattern) > 1 && *pages >= (int)strlen(pattern))
			return 0;
	}
	return SL_ETIMEDOUT;
}

static void test_circuit_breaker(void **state)
{
	(void)state;
	struct sl_err e = {0};
	/* every page bad: max_bad_pages pages, each later request held back (>= half of 100 ms, then of 200 ms),
	 * then the run fails naming the URL and the fault */
	struct sl_source *s = make("type: http\nurl: \"http://127.0.0.1:%d/api/?seed=cb&page={page}&results=5&html=1\"\n"
				   "pagination: {type: page}\nmax_bad_pages: 3\nbackoff: 100ms\nbackoff_max: 400ms\n",
				   NULL, NULL, &e);
	assert_non_null(s->ops->page_verdict);
	int pages;
	int64_t t0 = sl_mono_ms();
	int rc = feed_verdicts(s, "b", &pages, &e);
	int64_t dt = sl_mono_ms() - t0;
	assert_int_equal(rc, SL_ESERVER);
	assert_int_equal(pages, 3);
	assert_int_equal(s->stats.requests, 3);
	assert_true(dt >= 150);
	assert_non_null(strstr(e.msg, "circuit breaker"));
	assert_non_null(strstr(e.msg, "3 bad pages in a row"));
	assert_non_null(strstr(e.msg, "page=3"));
	assert_non_null(strstr(e.msg, "not JSON"));
	/* the next call fails the same way, without a request */
	struct sl_page pg;
	assert_int_equal(s->ops->next_page(s, &pg, &e), SL_ESERVER);
	assert_int_equal(s->stats.requests, 3);
	s->ops->destroy(s);
	/* a good page resets the count: bad, bad, good, bad, bad runs on with max_bad_pages 3 */
	memset(&e, 0, sizeof e);
	s = make("type: http\nurl: \"http://127.0.0.1:%d/api/?seed=cb2&page={page}&results=5\"\n"
		 "pagination: {type: page}\nmax_bad_pages: 3\nbackoff: 10ms\n", NULL, NULL, &e);
	rc = feed_verdicts(s, "bbgbb", &pages, &e);
	assert_int_equal(rc, 0);
	assert_int_equal(pages, 5);
	s->ops->destroy(s);
	/* oversize is a bad page by itself (the source sees it): three in a row trip the breaker */
	memset(&e, 0, sizeof e);
	s = make("type: http\nurl: \"http://127.0.0.1:%d/api/?seed=cb3&page={page}&results=5&oversize=300000\"\n"
		 "pagination: {type: page}\nmax_bad_pages: 3\nbackoff: 10ms\nmax_response: 100KiB\n", NULL, NULL, &e);
	int over = 0;
	for (int64_t deadline = sl_mono_ms() + 20000; sl_mono_ms() < deadline;) {
		rc = s->ops->next_page(s, &pg, &e);
		if (rc == SL_EAGAIN)
			continue;
		if (rc != SL_ETOOBIG)
			break;
		over++;
	}
	assert_int_equal(over, 3);
	assert_int_equal(rc, SL_ESERVER);
	assert_non_null(strstr(e.msg, "larger than max_response"));
	s->ops->destroy(s);
}

static void test_placeholders_fit_the_pagination(void **state)
{
	(void)state;
	struct sl_err e = {0};
	int rc;
	struct sl_source *s = make("type: http\nurl: \"http://127.0.0.1:%d/api/?results=5\"\npagination: {type: page}\n",
				   NULL, &rc, &e);
	assert_int_equal(rc, SL_ECONFIG);
	assert_null(s);
	assert_non_null(strstr(e.msg, "no {page} or {offset}"));
	s = make("type: http\nurl: \"http://127.0.0.1:%d/api/?page={page}\"\n", NULL, &rc, &e);
	assert_int_equal(rc, SL_ECONFIG);
	assert_non_null(strstr(e.msg, "pagination is none"));
	s = make("type: http\nurl: \"http://127.0.0.1:%d/api/?x=1\"\npagination: {type: cursor}\n", NULL, &rc, &e);
	assert_int_equal(rc, SL_ECONFIG);
	assert_non_null(strstr(e.msg, "no {cursor}"));
	s = make("type: http\nurl: \"http://127.0.0.1:%d/api/?c={cursor}\"\npagination: {type: link}\n", NULL, &rc, &e);
	assert_int_equal(rc, SL_ECONFIG);
	/* literal braces are not placeholders; {limit} goes with anything */
	s = make("type: http\nurl: \"http://127.0.0.1:%d/api/?q={{page}}&n={limit}\"\n", NULL, &rc, &e);
	assert_int_equal(rc, 0);
	s->ops->destroy(s);
	s = make("type: http\nurl: \"http://127.0.0.1:%d/api/?offset={offset}&limit={limit}\"\npagination: {type: offset}\n"
		 "count: 500\n", NULL, &rc, &e);
	assert_int_equal(rc, 0);
	assert_int_equal(s->count, 500);
	s->ops->destroy(s);
}

static void test_malformed_is_a_page(void **state)
{
	(void)state;
	struct sl_source *s;
	struct drained d;
	one_page("type: http\nurl: \"http://127.0.0.1:%d/api/?seed=mf&results=5&malformed=1\"\n", &s, &d);
	assert_int_equal(d.rc, 0);
	assert_int_equal(d.pages, 1);
	assert_int_equal(d.malformed, 1);
	drained_free(&d);
	s->ops->destroy(s);
}

static void test_auth_and_no_secrets_in_log(void **state)
{
	(void)state;
	/* Everything the source logs at debug goes to a file we then search for the secrets. */
	char path[] = "/tmp/sl_http_log_XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	fflush(stderr);
	int saved = dup(2);
	dup2(fd, 2);
	sl_log_set_level(SL_LOG_DEBUG);
	const char *yamls[] = {
		"type: http\nurl: \"http://127.0.0.1:%d/secure/api/?seed=a1&results=5&fail500=1\"\nbackoff: 10ms\n"
		"auth: {type: bearer, token_env: SL_TEST_BEARER}\n",
		"type: http\nurl: \"http://127.0.0.1:%d/secure/api/?seed=a2&results=5&fail500=1\"\nbackoff: 10ms\n"
		"auth: {type: basic, user: alice, password_env: SL_TEST_PW}\n",
		"type: http\nurl: \"http://127.0.0.1:%d/secure/api/?seed=a3&results=5&fail500=1\"\nbackoff: 10ms\n"
		"auth: {type: api_key, name: apikey, value_env: SL_TEST_KEY, in: query}\n",
		"type: http\nurl: \"http://127.0.0.1:%d/secure/api/?seed=a4&results=5&fail500=1\"\nbackoff: 10ms\n"
		"auth: {type: api_key, name: apikey, value_env: SL_TEST_KEY, in: header}\n",
	};
	int rcs[4];
	for (int i = 0; i < 4; i++) {
		struct sl_source *s;
		struct drained d;
		one_page(yamls[i], &s, &d);
		rcs[i] = d.rc;
		drained_free(&d);
		s->ops->destroy(s);
	}
	/* without credentials: 401, fatal */
	struct sl_source *s;
	struct drained d;
	one_page("type: http\nurl: \"http://127.0.0.1:%d/secure/api/?seed=a5\"\n", &s, &d);
	int rc401 = d.rc;
	drained_free(&d);
	s->ops->destroy(s);
	/* a missing variable is a config error naming the variable */
	struct sl_err e = {0};
	int rc;
	make("type: http\nurl: \"http://127.0.0.1:%d/api/\"\nauth: {type: bearer, token_env: SL_TEST_UNSET_VAR}\n", NULL,
	     &rc, &e);
	sl_log_set_level(SL_LOG_WARN);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	for (int i = 0; i < 4; i++)
		if (rcs[i])
			fail_msg("auth case %d failed with %d", i, rcs[i]);
	assert_int_equal(rc401, SL_EAUTH);
	assert_int_equal(rc, SL_ECONFIG);
	assert_non_null(strstr(e.msg, "SL_TEST_UNSET_VAR"));
	struct sl_buf log;
	sl_buf_init(&log);
	char buf[4096];
	ssize_t n;
	lseek(fd, 0, SEEK_SET);
	while ((n = read(fd, buf, sizeof buf)) > 0)
		sl_buf_append(&log, buf, (size_t)n);
	close(fd);
	unlink(path);
	sl_buf_cstr(&log);
	assert_non_null(strstr(log.data, "retry 1/")); /* the retries were logged, with their URLs */
	assert_non_null(strstr(log.data, "seed=a3"));
	assert_null(strstr(log.data, "SECRET"));
	sl_buf_free(&log);
}

static void test_rate_limit_and_poll_interval(void **state)
{
	(void)state;
	struct sl_err e = {0};
	/* 10/s with a burst of 1: 6 requests need >= 500 ms */
	struct sl_source *s = make("type: http\nurl: \"http://127.0.0.1:%d/api/?seed=rl&results=1\"\n"
				   "rate_limit: {per_second: 10, burst: 1}\n", NULL, NULL, &e);
	struct drained d;
	int64_t t0 = sl_mono_ms();
	drain(s, 6, 10000, &d);
	int64_t el = sl_mono_ms() - t0;
	assert_int_equal(d.pages, 6);
	assert_true(el >= 490);
	drained_free(&d);
	s->ops->destroy(s);
	/* poll_interval between requests of an unpaginated API */
	s = make("type: http\nurl: \"http://127.0.0.1:%d/api/?seed=pi&results=1\"\npoll_interval: 300ms\n", NULL, NULL,
		 &e);
	t0 = sl_mono_ms();
	drain(s, 3, 10000, &d);
	el = sl_mono_ms() - t0;
	assert_int_equal(d.pages, 3);
	assert_true(el >= 590);
	drained_free(&d);
	s->ops->destroy(s);
	/* at the end of the pages with a poll interval: EAGAIN, not the end, and the same position is asked again */
	s = make("type: http\nurl: \"http://127.0.0.1:%d/api/?seed=pe&results={limit}&page={page}\"\n"
		 "pagination: {type: page, limit: 200}\npoll_interval: 200ms\n", NULL, NULL, &e);
	struct sl_page pg;
	int pages = 0, again = 0;
	t0 = sl_mono_ms();
	while (sl_mono_ms() - t0 < 1000) {
		int rc = s->ops->next_page(s, &pg, &e);
		if (rc == 0)
			pages++;
		else if (rc == SL_EAGAIN)
			again++;
		else
			fail_msg("rc %d: %s", rc, e.msg);
	}
	assert_int_equal(pages, 2);
	assert_true(again > 0);
	assert_true(s->stats.requests >= 4); /* page 3 (empty) asked again at least once */
	s->ops->destroy(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_paginations),
		cmocka_unit_test(test_resume),
		cmocka_unit_test(test_retry_500_and_truncated),
		cmocka_unit_test(test_retry_429_retry_after),
		cmocka_unit_test(test_timeout_then_success),
		cmocka_unit_test(test_fatal_errors),
		cmocka_unit_test(test_malformed_is_a_page),
		cmocka_unit_test(test_circuit_breaker),
		cmocka_unit_test(test_placeholders_fit_the_pagination),
		cmocka_unit_test(test_auth_and_no_secrets_in_log),
		cmocka_unit_test(test_rate_limit_and_poll_interval),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
