/* The http source: pages of records from a web API over libcurl's multi interface. It owns the `source:` options of
 * a pipeline with `type: http` (http_opts below), the URL template, authentication from environment variables,
 * pagination (page number, offset/limit, cursor field in the body, Link header, next URL in the body), the poll
 * interval, a token-bucket rate limit, retries with capped exponential backoff and full jitter, the per-request
 * timeout, the response size cap, and up to `concurrency` requests in flight when the pagination lets us know the
 * next URL before the current page arrives (none, page, offset). Pages are handed out strictly in order.
 *
 * Cursor: the text in sl_page.cursor names the request to make next ("next_page=7", "next_offset=300",
 * "next_cursor=abc", "next_url=https://..."); a run given it as `resume` starts with that request, so it continues
 * after the page that carried it. At the end of a cursor/link/next_url API the cursor repeats the last page's own
 * request: a resume reads that last page again (its records are upserts downstream), which is also where such APIs
 * show new data.
 *
 * next_page() never blocks for long: it drives the transfers for at most ~100 ms and returns SL_EAGAIN when the next
 * page is not there yet, so the ingest loop keeps serving the log's delivery reports meanwhile.
 *
 * Secrets (password, token, API key) are read from the environment once, go only into curl options and headers,
 * and never into messages: URLs are logged without the API-key parameter we add and through sl_log_redact(). */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "codec/json.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "core/metrics.h"
#include "source/http.h"
#include "source/source.h"

#define COMP "http"
#define QUANTUM_MS 100
#define MAX_CONCURRENCY 64
#define URL_LOG_MAX 512

/* ---- pure helpers (source/http.h: exported for unit tests and fuzzers) ---- */

static void put_urlenc(struct sl_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
			sl_buf_putc(b, (char)c);
		} else {
			sl_buf_putc(b, '%');
			sl_buf_putc(b, hex[c >> 4]);
			sl_buf_putc(b, hex[c & 15]);
		}
	}
}

/* {page} {offset} {limit} {cursor} ({cursor} URL-encoded); "{{" and "}}" are literal braces. Anything else in
 * braces is an error naming it, so a typo in a URL fails at load time rather than hitting the API. */
int sl_source_http_expand(const char *tmpl, int64_t page, int64_t offset, int64_t limit, const char *cursor,
		   struct sl_buf *out, struct sl_err *err)
{
	for (const char *p = tmpl; *p;) {
		if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
			sl_buf_putc(out, p[0]);
			p += 2;
			continue;
		}
		if (*p != '{') {
			sl_buf_putc(out, *p++);
			continue;
		}
		const char *end = strchr(p, '}');
		if (!end)
			return sl_err_set(err, SL_ECONFIG, "url template: '{' at column %zu has no closing '}'",
					  (size_t)(p - tmpl) + 1);
		size_t n = (size_t)(end - p - 1);
		const char *name = p + 1;
		if (n == 4 && !memcmp(name, "page", 4))
			sl_buf_printf(out, "%" PRId64, page);
		else if (n == 6 && !memcmp(name, "offset", 6))
			sl_buf_printf(out, "%" PRId64, offset);
		else if (n == 5 && !memcmp(name, "limit", 5))
			sl_buf_printf(out, "%" PRId64, limit);
		else if (n == 6 && !memcmp(name, "cursor", 6))
			put_urlenc(out, cursor ? cursor : "");
		else
			return sl_err_set(err, SL_ECONFIG,
					  "url template: unknown parameter {%.*s} (known: {page} {offset} {limit} {cursor})",
					  (int)(n > 40 ? 40 : n), name);
		p = end + 1;
	}
	return sl_buf_ok(out) ? 0 : sl_err_set(err, SL_ENOMEM, "out of memory");
}

static const char *const wdays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
				     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

static int month_of(const char *s)
{
	for (int i = 0; i < 12; i++)
		if (!strncmp(s, months[i], 3))
			return i;
	return -1;
}

/* Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm): no timegm(), no locale, no time zone. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* Retry-After: delay-seconds or an HTTP-date (IMF-fixdate, RFC 850, asctime). Returns the wait in ms from
 * now_epoch_s (0 for a date in the past), or -1 when the value is neither. */
int64_t sl_source_http_retry_after_ms(const char *v, size_t len, int64_t now_epoch_s)
{
	char s[80];
	while (len && (*v == ' ' || *v == '\t'))
		v++, len--;
	while (len && (v[len - 1] == ' ' || v[len - 1] == '\t' || v[len - 1] == '\r' || v[len - 1] == '\n'))
		len--;
	if (!len || len >= sizeof s)
		return -1;
	memcpy(s, v, len);
	s[len] = 0;
	bool digits = true;
	for (size_t i = 0; i < len; i++)
		digits &= isdigit((unsigned char)s[i]) != 0;
	if (digits) {
		if (len > 9) /* beyond ~30 years: nonsense, but a wait nonetheless; cap it */
			return (int64_t)999999999 * 1000;
		return (int64_t)strtoll(s, NULL, 10) * 1000;
	}
	int d = 0, y = 0, hh = 0, mm = 0, ss = 0, consumed = 0;
	char wd[16] = "", mon[8] = "";
	int mo = -1;
	/* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
	if (sscanf(s, "%3s, %2d %3s %4d %2d:%2d:%2d GMT%n", wd, &d, mon, &y, &hh, &mm, &ss, &consumed) == 7 &&
	    consumed == (int)len) {
		mo = month_of(mon);
	} else if (consumed = 0, sscanf(s, "%15[A-Za-z], %2d-%3s-%2d %2d:%2d:%2d GMT%n", wd, &d, mon, &y, &hh, &mm, &ss,
					&consumed) == 7 && consumed == (int)len) {
		/* RFC 850: Sunday, 06-Nov-94 08:49:37 GMT; two-digit years in the past 50 years (RFC 7231 7.1.1.1) */
		mo = month_of(mon);
		y += y < 70 ? 2000 : 1900;
	} else if (consumed = 0, sscanf(s, "%3s %3s %2d %2d:%2d:%2d %4d%n", wd, mon, &d, &hh, &mm, &ss, &y, &consumed) ==
				       7 && consumed == (int)len) {
		/* asctime: Sun Nov  6 08:49:37 1994 */
		mo = month_of(mon);
	} else {
		return -1;
	}
	bool known_wd = false;
	for (int i = 0; i < 7; i++)
		known_wd |= !strncmp(wd, wdays[i], 3);
	if (mo < 0 || !known_wd || d < 1 || d > 31 || hh > 23 || mm > 59 || ss > 60 || y < 1970 || y > 9999)
		return -1;
	int64_t t = days_from_civil(y, mo + 1, d) * 86400 + hh * 3600 + mm * 60 + ss;
	return t <= now_epoch_s ? 0 : (t - now_epoch_s) * 1000;
}

/* Full jitter (AWS architecture blog, "Exponential Backoff and Jitter"): uniform in [0, min(cap, base * 2^attempt)].
 * Spreads the retries of many clients instead of having them return in step. */
int64_t sl_source_http_backoff_ms(int attempt, int64_t base_ms, int64_t cap_ms, uint64_t rnd)
{
	if (attempt < 0)
		attempt = 0;
	if (base_ms < 1)
		base_ms = 1;
	int64_t ceil = base_ms;
	for (int i = 0; i < attempt && ceil < cap_ms; i++)
		ceil *= 2;
	if (ceil > cap_ms)
		ceil = cap_ms;
	if (ceil <= 0)
		return 0;
	return (int64_t)(rnd % (uint64_t)(ceil + 1));
}

/* The URI of the first link-value with rel "next" (RFC 8288): `<uri>; rel="next"`, `<uri>; rel=next`,
 * `<uri>; rel="next last"`. Returns 0 and the URI in out, SL_ENOTFOUND, or SL_ETOOBIG when it does not fit. */
int sl_source_http_link_next(const char *h, size_t len, char *out, size_t outsz)
{
	size_t i = 0;
	while (i < len) {
		while (i < len && (h[i] == ' ' || h[i] == '\t' || h[i] == ','))
			i++;
		if (i >= len || h[i] != '<')
			return SL_ENOTFOUND; /* malformed: do not guess */
		size_t us = ++i;
		while (i < len && h[i] != '>')
			i++;
		if (i >= len)
			return SL_ENOTFOUND;
		size_t ue = i++;
		bool next = false;
		/* parameters up to the next top-level comma */
		while (i < len && h[i] != ',') {
			while (i < len && (h[i] == ' ' || h[i] == '\t' || h[i] == ';'))
				i++;
			size_t ns = i;
			while (i < len && h[i] != '=' && h[i] != ';' && h[i] != ',')
				i++;
			size_t ne = i;
			while (ne > ns && (h[ne - 1] == ' ' || h[ne - 1] == '\t'))
				ne--;
			const char *val = NULL;
			size_t vl = 0;
			if (i < len && h[i] == '=') {
				i++;
				while (i < len && (h[i] == ' ' || h[i] == '\t'))
					i++;
				if (i < len && h[i] == '"') {
					val = h + ++i;
					while (i < len && h[i] != '"')
						i++;
					vl = (size_t)(h + i - val);
					if (i < len)
						i++;
				} else {
					val = h + i;
					while (i < len && h[i] != ';' && h[i] != ',' && h[i] != ' ' && h[i] != '\t')
						i++;
					vl = (size_t)(h + i - val);
				}
			}
			if (ne - ns == 3 && !strncasecmp(h + ns, "rel", 3) && val) {
				/* rel may list several relation types separated by spaces */
				for (size_t k = 0; k < vl;) {
					while (k < vl && val[k] == ' ')
						k++;
					size_t ks = k;
					while (k < vl && val[k] != ' ')
						k++;
					if (k - ks == 4 && !strncasecmp(val + ks, "next", 4))
						next = true;
				}
			}
			while (i < len && h[i] != ';' && h[i] != ',')
				i++; /* skip junk to the next parameter */
		}
		if (next) {
			size_t n = ue - us;
			for (size_t k = us; k < ue; k++) /* a URI has no controls or spaces (and a C string no NULs) */
				if ((unsigned char)h[k] <= 0x20 || h[k] == 0x7f)
					return SL_ENOTFOUND;
			if (n + 1 > outsz)
				return SL_ETOOBIG;
			memcpy(out, h + us, n);
			out[n] = 0;
			return n ? 0 : SL_ENOTFOUND;
		}
	}
	return SL_ENOTFOUND;
}

struct sl_source_http_bucket {
	double rate, burst, tokens;
	int64_t last_ms;
};

struct sl_source_http_bucket *sl_source_http_bucket_new(double per_second, double burst, int64_t now_ms)
{
	struct sl_source_http_bucket *b = calloc(1, sizeof *b);
	if (!b)
		return NULL;
	b->rate = per_second;
	b->burst = burst < 1 ? 1 : burst;
	b->tokens = b->burst;
	b->last_ms = now_ms;
	return b;
}

/* 0 when a request may start now (a token is taken), else the ms until one will be there. A rate of 0 means no
 * limit. */
int64_t sl_source_http_bucket_take(struct sl_source_http_bucket *b, int64_t now_ms)
{
	if (!b || b->rate <= 0)
		return 0;
	if (now_ms > b->last_ms) {
		b->tokens += (double)(now_ms - b->last_ms) * b->rate / 1000.0;
		if (b->tokens > b->burst)
			b->tokens = b->burst;
		b->last_ms = now_ms;
	}
	if (b->tokens >= 1.0) {
		b->tokens -= 1.0;
		return 0;
	}
	int64_t w = (int64_t)((1.0 - b->tokens) * 1000.0 / b->rate) + 1;
	return w < 1 ? 1 : w;
}

void sl_source_http_bucket_free(struct sl_source_http_bucket *b)
{
	free(b);
}

/* ---- configuration ---- */

struct http_auth {
	char *type, *user, *password_env, *token_env, *name, *value_env, *in;
};
struct http_pagination {
	char *type;
	int64_t start, limit;
	char *cursor_path, *next_url_path;
	bool stop_on_empty;
};
struct http_rate {
	double per_second;
	int64_t burst;
};
struct http_conf {
	char *type, *url, *method, *body, *records_path, *user_agent, *record_type;
	bool single_record;
	int64_t count, max_bad_pages, dlq_max_bytes;
	struct sl_strmap headers;
	struct http_auth auth;
	struct http_pagination pagination;
	struct http_rate rate_limit;
	int64_t poll_interval_ms, timeout_ms, connect_timeout_ms, max_response, concurrency, max_retries;
	int64_t backoff_ms, backoff_max_ms, retry_after_max_ms;
};

static const struct sl_opt auth_opts[] = {
	{"type", SL_OPT_ENUM, "none", offsetof(struct http_auth, type), "Authentication scheme.",
	 .choices = "none|basic|bearer|api_key"},
	{"user", SL_OPT_STRING, NULL, offsetof(struct http_auth, user), "basic: the user name."},
	{"password_env", SL_OPT_STRING, NULL, offsetof(struct http_auth, password_env),
	 "basic: the environment variable that holds the password."},
	{"token_env", SL_OPT_STRING, NULL, offsetof(struct http_auth, token_env),
	 "bearer: the environment variable that holds the token."},
	{"name", SL_OPT_STRING, NULL, offsetof(struct http_auth, name), "api_key: the header or query parameter name."},
	{"value_env", SL_OPT_STRING, NULL, offsetof(struct http_auth, value_env),
	 "api_key: the environment variable that holds the key."},
	{"in", SL_OPT_ENUM, "header", offsetof(struct http_auth, in), "api_key: where the key goes.",
	 .choices = "header|query"},
	{NULL},
};

static const struct sl_opt pagination_opts[] = {
	{"type", SL_OPT_ENUM, "none", offsetof(struct http_pagination, type),
	 "none: the same URL each time (url has no placeholder); page: {page} counts up from start; offset: "
	 "{offset} counts up by limit; cursor: {cursor} is the value at cursor_path in the previous body (a token, "
	 "an id or a timestamp); link: the Link header's rel=next; next_url: the URL at next_url_path in the body. "
	 "page, offset and cursor need their placeholder in url (`sluice check` says so).",
	 .choices = "none|page|offset|cursor|link|next_url"},
	{"start", SL_OPT_INT, NULL, offsetof(struct http_pagination, start),
	 "First page number (default 1) or offset (default 0)."},
	{"limit", SL_OPT_INT, "100", offsetof(struct http_pagination, limit),
	 "Page size: the value of {limit}, and the step of {offset}; it should match the page size the API uses.",
	 .min = 1, .max = 1000000},
	{"cursor_path", SL_OPT_STRING, "$.next_cursor", offsetof(struct http_pagination, cursor_path),
	 "cursor: where the next cursor is in the body; null or absent ends the pages."},
	{"next_url_path", SL_OPT_STRING, "$.next", offsetof(struct http_pagination, next_url_path),
	 "next_url: where the next page's URL is in the body; null or absent ends the pages."},
	{"stop_on_empty", SL_OPT_BOOL, "true", offsetof(struct http_pagination, stop_on_empty),
	 "A page with 0 records ends the pages (until the next poll_interval); false: only the pagination's own end "
	 "(no next cursor, link or URL) does."},
	{NULL},
};

static const struct sl_opt rate_opts[] = {
	{"per_second", SL_OPT_DOUBLE, "0", offsetof(struct http_rate, per_second),
	 "Requests per second, retries included; 0 = no limit."},
	{"burst", SL_OPT_INT, "1", offsetof(struct http_rate, burst), "Requests that may start at once after a pause.",
	 .min = 1, .max = 10000},
	{NULL},
};

static const struct sl_opt http_opts[] = {
	{"type", SL_OPT_STRING, "http", offsetof(struct http_conf, type), "Source kind: http."},
	{"url", SL_OPT_STRING, NULL, offsetof(struct http_conf, url),
	 "URL template (http:// or https://); {page} {offset} {limit} {cursor} are filled in per request, "
	 "{{ and }} are literal braces; any other {name} is an error.", .required = true},
	{"method", SL_OPT_ENUM, "GET", offsetof(struct http_conf, method), "HTTP method.", .choices = "GET|POST"},
	{"body", SL_OPT_STRING, NULL, offsetof(struct http_conf, body),
	 "POST: the request body, sent as written (no placeholders)."},
	{"count", SL_OPT_INT, "0", offsetof(struct http_conf, count),
	 "Records to take in all, across restarts (kept with the cursor); 0 = no end. `--count` on the command "
	 "line sets the same total.", .min = 0, .max = INT64_MAX},
	{"headers", SL_OPT_STRMAP, NULL, offsetof(struct http_conf, headers),
	 "Extra request headers. Put secrets in auth, not here."},
	{"auth", SL_OPT_SECTION, NULL, offsetof(struct http_conf, auth), "Authentication; secrets come from "
	 "environment variables only.", .sub = auth_opts},
	{"records_path", SL_OPT_STRING, "$.results", offsetof(struct http_conf, records_path),
	 "Where the array of records is in a response (`$` = the body itself). Anything else there (an object, "
	 "null, a string) makes the page a bad page: one dead-letter entry, no rows."},
	{"single_record", SL_OPT_BOOL, "false", offsetof(struct http_conf, single_record),
	 "Each response is one record: records_path points to an object, not an array."},
	{"record_type", SL_OPT_ENUM, "object", offsetof(struct http_conf, record_type),
	 "object: each record must be a JSON object, anything else (1, \"x\", null, []) goes to the dead-letter "
	 "topic, never into a row; any: take whatever the array holds (for mappings of scalars).",
	 .choices = "object|any"},
	{"pagination", SL_OPT_SECTION, NULL, offsetof(struct http_conf, pagination), "How to get the next page.",
	 .sub = pagination_opts},
	{"poll_interval", SL_OPT_DURATION, "0", offsetof(struct http_conf, poll_interval_ms),
	 "Once the pages end (or between requests with pagination none): how long to wait before asking again; "
	 "0 = as fast as allowed (pagination none) or stop at the end.", .min = 0, .max = 86400000},
	{"rate_limit", SL_OPT_SECTION, NULL, offsetof(struct http_conf, rate_limit), "Token-bucket rate limit.",
	 .sub = rate_opts},
	{"timeout", SL_OPT_DURATION, "30s", offsetof(struct http_conf, timeout_ms),
	 "Per request, all included: a server that sends its headers and then stalls times out too (and is "
	 "retried like a 5xx).",
	 .min = 1, .max = 3600000},
	{"connect_timeout", SL_OPT_DURATION, "10s", offsetof(struct http_conf, connect_timeout_ms),
	 "Per connection attempt.", .min = 1, .max = 3600000},
	{"max_response", SL_OPT_SIZE, "16MiB", offsetof(struct http_conf, max_response),
	 "Largest response body, checked from Content-Length and while receiving; a larger one is a bad page "
	 "(pagination none, page, offset: noted in the dead-letter topic and skipped; otherwise the run fails).",
	 .min = 1, .max = (int64_t)1 << 32},
	{"max_bad_pages", SL_OPT_INT, "10", offsetof(struct http_conf, max_bad_pages),
	 "Circuit breaker: bad pages in a row (not JSON, no array at records_path, no usable record, oversize) "
	 "before the run fails naming the URL and the fault. Each bad page delays the next request like a retry "
	 "(backoff, doubling up to backoff_max); a good page resets the count.", .min = 1, .max = 1000000},
	{"dlq_max_bytes", SL_OPT_SIZE, "64MiB", offsetof(struct http_conf, dlq_max_bytes),
	 "Per run: dead-letter bytes this source may cause; beyond it entries are dropped and counted "
	 "(sluice_ingest_dlq_dropped_total); 0 = no bound. A page in the dead-letter topic is cut to its first 256 KiB.",
	 .min = 0, .max = INT64_MAX},
	{"concurrency", SL_OPT_INT, "1", offsetof(struct http_conf, concurrency),
	 "Requests in flight; above 1 only with pagination none, page or offset.", .min = 1, .max = MAX_CONCURRENCY},
	{"max_retries", SL_OPT_INT, "5", offsetof(struct http_conf, max_retries),
	 "Retries of one page on timeouts, connection errors, 5xx, 408 and 429; then the run fails. Other 4xx "
	 "(401, 403, 404, ...) fail the run at once.", .min = 0,
	 .max = 1000},
	{"backoff", SL_OPT_DURATION, "500ms", offsetof(struct http_conf, backoff_ms),
	 "Base of the exponential backoff between retries (full jitter) and after bad pages.", .min = 1,
	 .max = 3600000},
	{"backoff_max", SL_OPT_DURATION, "30s", offsetof(struct http_conf, backoff_max_ms), "Cap of the backoff.",
	 .min = 1, .max = 86400000},
	{"retry_after_max", SL_OPT_DURATION, "5m", offsetof(struct http_conf, retry_after_max_ms),
	 "Cap on a server's Retry-After (seconds or an HTTP-date), which is honoured when longer than the backoff.",
	 .min = 0, .max = 86400000},
	{"user_agent", SL_OPT_STRING, "sluice/" SL_VERSION, offsetof(struct http_conf, user_agent), "User-Agent."},
	{NULL},
};

const struct sl_opt *sl_source_http_opts = http_opts;

/* One worked example per pagination kind, for docs/configuration.md (printed by `sluice config-doc` after the
 * table, so the examples live next to the options they use). */
const char *sl_source_http_examples_md =
	"\n### The http source by example\n\n"
	"Each example is the `source:` of a pipeline; the rest of the pipeline (topic, key, mapping, sink) is as in "
	"examples/seed/sluice.yaml. `sluice check -c FILE` loads the file and names any mistake.\n\n"
	"**Page numbers** (`?page=1`, `?page=2`, ... until a page has no records):\n\n"
	"```yaml\nsource:\n  type: http\n  url: \"https://api.example.com/users?page={page}&results=100\"\n"
	"  records_path: $.results\n  pagination: { type: page, start: 1 }\n```\n\n"
	"**Offset and limit** (`?offset=0&limit=100`, `?offset=100&limit=100`, ...):\n\n"
	"```yaml\nsource:\n  type: http\n  url: \"https://api.example.com/users?offset={offset}&limit={limit}\"\n"
	"  records_path: $.data\n  pagination: { type: offset, start: 0, limit: 100 }\n```\n\n"
	"**A cursor from the body** (the response carries `\"next_cursor\": \"abc\"`; null or absent ends the pages):\n\n"
	"```yaml\nsource:\n  type: http\n  url: \"https://api.example.com/events?cursor={cursor}&limit=100\"\n"
	"  records_path: $.items\n  pagination: { type: cursor, cursor_path: $.next_cursor }\n```\n\n"
	"**The Link header** (`Link: <https://api.example.com/repos?page=2>; rel=\"next\"`, as GitHub sends):\n\n"
	"```yaml\nsource:\n  type: http\n  url: \"https://api.example.com/repos?per_page=100\"\n"
	"  records_path: $\n  pagination: { type: link }\n  auth: { type: bearer, token_env: API_TOKEN }\n```\n\n"
	"**A next URL in the body** (`\"next\": \"https://api.example.com/people?page=2\"`, relative URLs too):\n\n"
	"```yaml\nsource:\n  type: http\n  url: \"https://api.example.com/people\"\n"
	"  records_path: $.results\n  pagination: { type: next_url, next_url_path: $.next }\n```\n\n"
	"**A timestamp** (ask for what changed since the newest record seen; the API returns `\"until\"` with each "
	"page): the cursor kind with the timestamp as the cursor, and a poll interval to keep asking:\n\n"
	"```yaml\nsource:\n  type: http\n  url: \"https://api.example.com/orders?updated_since={cursor}\"\n"
	"  records_path: $.orders\n  pagination: { type: cursor, cursor_path: $.until }\n"
	"  poll_interval: 30s\n```\n\n"
	"**A total**: `count: 50000` in `source:` (or `--count 50000`) stops at 50,000 records overall; the number "
	"taken is saved with the cursor, so restarts (even after kill -9) stop at the same total. "
	"`sluice ingest --count-per-run N` counts only this run instead.\n\n"
	"**A broken API**: a page that is not JSON, has no array at records_path, holds no JSON object, or is over "
	"max_response is a *bad page*: it goes to the dead-letter topic (at most dlq_max_bytes per run), the next "
	"request waits like a retry, and after max_bad_pages in a row the run fails naming the URL and the fault. "
	"401, 403 and 404 fail at once; 429, 5xx and timeouts are retried max_retries times, honouring "
	"Retry-After.\n";

/* ---- the source ---- */

enum pmode { P_NONE, P_PAGE, P_OFFSET, P_CURSOR, P_LINK, P_NEXT_URL };
enum rstate { R_WAIT, R_RUN, R_DONE, R_FAIL };

struct req {
	struct http_src *s;
	CURL *eh;
	enum rstate st;
	int64_t pos;        /* page number or offset */
	char *url;          /* what is requested (may hold the API key) */
	char *url_plain;    /* the same without our API key: for cursors and logs (before redaction) */
	char url_log[URL_LOG_MAX];
	struct sl_buf body;
	int attempt;        /* retries done */
	int64_t not_before; /* monotonic ms */
	int64_t started;
	long status;
	bool oversize;
	int64_t retry_after_ms;
	char *link_next;
	char errbuf[CURL_ERROR_SIZE];
	int err_code;
	char err_msg[SL_ERR_MSG_MAX];
};

struct http_src {
	struct sl_source base;
	struct http_conf c;
	char name[128];
	enum pmode mode;
	CURLM *multi;
	struct curl_slist *hdrs;
	char *password, *query_key; /* secrets from the environment */
	struct sl_source_http_bucket *bucket;
	uint64_t rnd;
	struct req *win[MAX_CONCURRENCY];
	size_t nwin;
	size_t window;
	struct req *cur;            /* the page last handed out */
	uint64_t seq;
	int64_t next_pos;           /* page/offset of the next request to create */
	char *next_token;           /* cursor mode */
	char *next_url;             /* link/next_url modes; NULL: the template */
	bool ended;
	int64_t resume_at;          /* monotonic ms when an ended source asks again */
	int64_t next_poll;          /* pagination none: earliest start of the next request */
	struct sl_json_parser *jp;
	struct sl_metric *m_req, *m_retry, *m_fail, *m_bytes, *m_lat, *m_bad;
	/* The circuit breaker: bad pages in a row, no request starts before hold_until, and once tripped the next
	 * next_page() fails the run with trip_msg. */
	int64_t bad_streak;
	int64_t hold_until;
	bool tripped;
	char trip_msg[SL_ERR_MSG_MAX];
};

static uint64_t rnd_next(struct http_src *s)
{
	uint64_t x = s->rnd;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return s->rnd = x;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
	struct req *r = ud;
	size_t len = sz * n;
	/* The cap is enforced as bytes arrive, so a huge or endless body never grows memory past max_response. */
	if ((int64_t)(r->body.len + len) > r->s->c.max_response) {
		r->oversize = true;
		return 0;
	}
	sl_buf_append(&r->body, p, len);
	return sl_buf_ok(&r->body) ? len : 0;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
	struct req *r = ud;
	size_t len = sz * n;
	if (len >= 5 && !strncmp(p, "HTTP/", 5)) { /* a new response (redirect, 100-continue): forget the last */
		r->retry_after_ms = -1;
		free(r->link_next);
		r->link_next = NULL;
	} else if (len > 12 && !strncasecmp(p, "Retry-After:", 12)) {
		r->retry_after_ms = sl_source_http_retry_after_ms(p + 12, len - 12, (int64_t)time(NULL));
	} else if (len > 5 && !strncasecmp(p, "Link:", 5) && r->s->mode == P_LINK) {
		char u[4096];
		if (sl_source_http_link_next(p + 5, len - 5, u, sizeof u) == 0) {
			free(r->link_next);
			r->link_next = strdup(u);
		}
	}
	return len;
}

static void req_free(struct req *r)
{
	if (!r)
		return;
	if (r->eh) {
		if (r->st == R_RUN)
			curl_multi_remove_handle(r->s->multi, r->eh);
		curl_easy_cleanup(r->eh);
	}
	sl_buf_free(&r->body);
	free(r->url);
	free(r->url_plain);
	free(r->link_next);
	free(r);
}

/* The URL of the next request, without secrets; NULL with err set on failure. */
static char *next_plain_url(struct http_src *s, int64_t pos, struct sl_err *err)
{
	if ((s->mode == P_LINK || s->mode == P_NEXT_URL) && s->next_url)
		return strdup(s->next_url);
	struct sl_buf b;
	sl_buf_init(&b);
	int64_t limit = s->c.pagination.limit, start = s->c.pagination.start;
	int64_t page = start, offset = start;
	if (s->mode == P_PAGE) {
		page = pos;
		offset = (pos - start) * limit;
	} else if (s->mode == P_OFFSET) {
		offset = pos;
		page = pos / limit + 1;
	}
	if (sl_source_http_expand(s->c.url, page, offset, limit, s->next_token, &b, err)) {
		sl_buf_free(&b);
		return NULL;
	}
	sl_buf_cstr(&b);
	return b.data; /* ownership passes */
}

static int req_new(struct http_src *s, int64_t pos, struct req **out, struct sl_err *err)
{
	struct req *r = calloc(1, sizeof *r);
	if (!r)
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	r->s = s;
	r->pos = pos;
	r->retry_after_ms = -1;
	sl_buf_init(&r->body);
	r->url_plain = next_plain_url(s, pos, err);
	if (!r->url_plain) {
		free(r);
		return err && err->code ? err->code : SL_ENOMEM;
	}
	if (s->query_key) {
		struct sl_buf b;
		sl_buf_init(&b);
		sl_buf_puts(&b, r->url_plain);
		sl_buf_putc(&b, strchr(r->url_plain, '?') ? '&' : '?');
		put_urlenc(&b, s->c.auth.name);
		sl_buf_putc(&b, '=');
		put_urlenc(&b, s->query_key);
		r->url = (char *)sl_buf_cstr(&b);
	} else {
		r->url = strdup(r->url_plain);
	}
	sl_log_redact(r->url_plain, r->url_log, sizeof r->url_log);
	r->eh = curl_easy_init();
	if (!r->url || !r->eh) {
		req_free(r);
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	}
	CURL *e = r->eh;
	curl_easy_setopt(e, CURLOPT_URL, r->url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, r);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)s->c.timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
			 (long)(s->c.connect_timeout_ms < s->c.timeout_ms ? s->c.connect_timeout_ms : s->c.timeout_ms));
	curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)s->c.max_response);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(e, CURLOPT_MAXREDIRS, 5L);
	curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(e, CURLOPT_USERAGENT, s->c.user_agent);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, s->hdrs);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	if (s->c.auth.type && !strcmp(s->c.auth.type, "basic")) {
		curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(e, CURLOPT_USERNAME, s->c.auth.user);
		curl_easy_setopt(e, CURLOPT_PASSWORD, s->password);
	}
	if (!strcmp(s->c.method, "POST")) {
		curl_easy_setopt(e, CURLOPT_POST, 1L);
		curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, s->c.body ? s->c.body : "");
	}
	*out = r;
	return 0;
}

static void req_reset_attempt(struct req *r)
{
	sl_buf_reset(&r->body);
	r->status = 0;
	r->oversize = false;
	r->retry_after_ms = -1;
	r->errbuf[0] = 0;
	free(r->link_next);
	r->link_next = NULL;
}

static bool retryable_curl(CURLcode cc)
{
	switch (cc) {
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_PARTIAL_FILE: /* Content-Length promised more than came: a truncated body */
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_BAD_CONTENT_ENCODING:
		return true;
	default:
		return false;
	}
}

/* Classifies a finished attempt: done, retry later, or a failure of the run. */
static void req_finished(struct http_src *s, struct req *r, CURLcode cc)
{
	int64_t now = sl_mono_ms();
	curl_multi_remove_handle(s->multi, r->eh);
	curl_easy_getinfo(r->eh, CURLINFO_RESPONSE_CODE, &r->status);
	sl_histogram_observe(s->m_lat, (double)(now - r->started) / 1000.0);
	s->base.stats.bytes += r->body.len;
	sl_counter_add(s->m_bytes, r->body.len);
	char why[300];
	bool retry = false;
	if (cc == CURLE_OK && r->status >= 200 && r->status < 300) {
		r->st = R_DONE;
		return;
	}
	s->base.stats.failures++;
	sl_counter_add(s->m_fail, 1);
	if (r->oversize || cc == CURLE_FILESIZE_EXCEEDED) {
		r->st = R_FAIL;
		r->err_code = SL_ETOOBIG;
		snprintf(r->err_msg, sizeof r->err_msg,
			 "pipeline %s: GET %s: response larger than max_response (%" PRId64 " bytes)", s->name, r->url_log,
			 s->c.max_response);
		return;
	}
	if (cc != CURLE_OK) {
		retry = retryable_curl(cc);
		snprintf(why, sizeof why, "%s", r->errbuf[0] ? r->errbuf : curl_easy_strerror(cc));
	} else {
		retry = r->status == 429 || r->status == 408 || r->status >= 500;
		snprintf(why, sizeof why, "HTTP %ld", r->status);
	}
	if (!retry) {
		r->st = R_FAIL;
		r->err_code = cc != CURLE_OK ? SL_EIO
			      : (r->status == 401 || r->status == 403) ? SL_EAUTH : SL_ESERVER;
		snprintf(r->err_msg, sizeof r->err_msg, "pipeline %s: %s %s: %s (not retried)", s->name, s->c.method,
			 r->url_log, why);
		return;
	}
	if (r->attempt >= s->c.max_retries) {
		r->st = R_FAIL;
		r->err_code = cc == CURLE_OPERATION_TIMEDOUT ? SL_ETIMEDOUT : cc != CURLE_OK ? SL_EIO : SL_ESERVER;
		snprintf(r->err_msg, sizeof r->err_msg, "pipeline %s: %s %s: %s, still failing after %d retries",
			 s->name, s->c.method, r->url_log, why, r->attempt);
		return;
	}
	int64_t wait = sl_source_http_backoff_ms(r->attempt, s->c.backoff_ms, s->c.backoff_max_ms, rnd_next(s));
	if (r->retry_after_ms >= 0) {
		int64_t ra = r->retry_after_ms > s->c.retry_after_max_ms ? s->c.retry_after_max_ms : r->retry_after_ms;
		if (ra > wait)
			wait = ra;
	}
	r->attempt++;
	s->base.stats.retries++;
	sl_counter_add(s->m_retry, 1);
	sl_warn(COMP, "pipeline %s: %s %s: %s; retry %d/%" PRId64 " in %" PRId64 " ms", s->name, s->c.method,
		r->url_log, why, r->attempt, s->c.max_retries, wait);
	r->st = R_WAIT;
	r->not_before = now + wait;
}

static bool prefetchable(enum pmode m)
{
	return m == P_NONE || m == P_PAGE || m == P_OFFSET;
}

/* Creates requests up to the window: several ahead when the next URL is known in advance, else one at a time. */
static int fill_window(struct http_src *s, int64_t now, struct sl_err *err)
{
	if (s->ended) {
		if (s->c.poll_interval_ms <= 0 || now < s->resume_at)
			return 0;
		s->ended = false;
	}
	size_t want = prefetchable(s->mode) ? s->window : 1;
	while (s->nwin < want) {
		struct req *r = NULL;
		int rc = req_new(s, s->next_pos, &r, err);
		if (rc)
			return rc;
		r->not_before = now;
		if (s->mode == P_NONE && s->c.poll_interval_ms > 0) {
			if (s->next_poll > now)
				r->not_before = s->next_poll;
			s->next_poll = r->not_before + s->c.poll_interval_ms;
		}
		if (s->mode == P_PAGE)
			s->next_pos++;
		else if (s->mode == P_OFFSET)
			s->next_pos += s->c.pagination.limit;
		s->win[s->nwin++] = r;
	}
	return 0;
}

/* Starts waiting requests whose time has come, in order, as the rate limit allows. Returns the ms until the next
 * one could start (or INT64_MAX). */
static int64_t start_due(struct http_src *s, int64_t now)
{
	int64_t wake = INT64_MAX;
	for (size_t i = 0; i < s->nwin; i++) {
		struct req *r = s->win[i];
		if (r->st != R_WAIT)
			continue;
		if (s->hold_until > now) { /* the breaker holds every request back, in order */
			if (s->hold_until - now < wake)
				wake = s->hold_until - now;
			break;
		}
		if (r->not_before > now) {
			if (r->not_before - now < wake)
				wake = r->not_before - now;
			continue;
		}
		int64_t w = sl_source_http_bucket_take(s->bucket, now);
		if (w > 0) {
			if (w < wake)
				wake = w;
			break; /* in order: a later page never overtakes an earlier one at the limiter */
		}
		req_reset_attempt(r);
		r->started = now;
		r->st = R_RUN;
		s->base.stats.requests++;
		sl_counter_add(s->m_req, 1);
		sl_debug(COMP, "pipeline %s: %s %s attempt=%d", s->name, s->c.method, r->url_log, r->attempt + 1);
		curl_multi_add_handle(s->multi, r->eh);
	}
	return wake;
}

static void drop_window(struct http_src *s)
{
	for (size_t i = 0; i < s->nwin; i++)
		req_free(s->win[i]);
	s->nwin = 0;
}

/* Records in a page and, for cursor/next_url, the next cursor or URL. -1 records: the body is not JSON we can
 * read (the ingest loop sends it to the DLQ; pagination goes on where it can). */
static long inspect_page(struct http_src *s, struct req *r, char **next)
{
	*next = NULL;
	struct sl_json_val root, v;
	struct sl_err e = {0};
	if (sl_json_parse(s->jp, r->body.data ? r->body.data : "", r->body.len, &root, &e) != 0)
		return -1;
	long n = -1;
	const char *rp = s->c.records_path;
	if (rp && sl_json_path(root, rp, strlen(rp), &v))
		n = sl_json_type(v) == SL_JSON_ARRAY ? (long)sl_json_len(v) : 1;
	else if (!rp)
		n = 1;
	const char *np = s->mode == P_CURSOR ? s->c.pagination.cursor_path
			 : s->mode == P_NEXT_URL ? s->c.pagination.next_url_path : NULL;
	if (np && sl_json_path(root, np, strlen(np), &v)) {
		const char *str;
		size_t len;
		int64_t iv;
		if (sl_json_str(v, &str, &len) == 0 && len > 0)
			*next = strndup(str, len);
		else if (sl_json_int64(v, &iv) == 0) {
			char b[32];
			snprintf(b, sizeof b, "%" PRId64, iv);
			*next = strdup(b);
		}
	}
	return n;
}

/* Whether the template has the placeholder {name} (not inside a "{{" escape). */
static bool has_placeholder(const char *tmpl, const char *name)
{
	size_t nl = strlen(name);
	for (const char *p = tmpl; *p; p++) {
		if (p[0] == '{' && p[1] == '{') {
			p++;
			continue;
		}
		if (*p == '{' && !strncmp(p + 1, name, nl) && p[1 + nl] == '}')
			return true;
	}
	return false;
}

/* The mistakes a URL template and a pagination kind can make together, each of which was seen to fetch the same page
 * forever or to send page=0: caught at load time, so `sluice check` names them. */
static int check_placeholders(const struct http_src *s, const char *where, const char *section, struct sl_err *err)
{
	const char *u = s->c.url, *t = s->c.pagination.type;
	bool page = has_placeholder(u, "page"), off = has_placeholder(u, "offset"), cur = has_placeholder(u, "cursor");
	switch (s->mode) {
	case P_NONE:
		if (page || off || cur)
			return sl_err_set(err, SL_ECONFIG,
					  "%s: %s.url has {%s} but pagination is none, so every request would send the same "
					  "value; set pagination: { type: %s } (or write the value into the url)",
					  where, section, page ? "page" : off ? "offset" : "cursor",
					  page ? "page" : off ? "offset" : "cursor");
		break;
	case P_PAGE:
	case P_OFFSET:
		if (!page && !off)
			return sl_err_set(err, SL_ECONFIG,
					  "%s: %s.pagination is %s but the url has no {page} or {offset}, so every request "
					  "would fetch the same page; put {%s} where the API takes it (e.g. ?%s={%s})",
					  where, section, t, s->mode == P_PAGE ? "page" : "offset",
					  s->mode == P_PAGE ? "page" : "offset", s->mode == P_PAGE ? "page" : "offset");
		if (cur)
			return sl_err_set(err, SL_ECONFIG, "%s: %s.url has {cursor}, which only pagination cursor fills in",
					  where, section);
		break;
	case P_CURSOR:
		if (!cur)
			return sl_err_set(err, SL_ECONFIG,
					  "%s: %s.pagination is cursor but the url has no {cursor}, so the cursor from "
					  "%s would never be sent; put it where the API takes it (e.g. ?cursor={cursor})",
					  where, section, s->c.pagination.cursor_path);
		break;
	case P_LINK:
	case P_NEXT_URL:
		if (cur)
			return sl_err_set(err, SL_ECONFIG,
					  "%s: %s.url has {cursor}, but with pagination %s the next URL comes from the %s",
					  where, section, t, s->mode == P_LINK ? "Link header" : "body");
		break;
	}
	return 0;
}

/* Resolves a possibly relative next URL against the URL it came from. */
static char *resolve_url(const char *base, const char *ref)
{
	CURLU *u = curl_url();
	char *res = NULL, *out = NULL;
	if (u && !curl_url_set(u, CURLUPART_URL, base, 0) && !curl_url_set(u, CURLUPART_URL, ref, 0) &&
	    !curl_url_get(u, CURLUPART_URL, &res, 0)) {
		out = strdup(res);
		curl_free(res);
	}
	curl_url_cleanup(u);
	return out;
}

static int set_cursor(struct http_src *s, struct sl_page *out, const char *key, const char *val, struct sl_err *err)
{
	int n = snprintf(out->cursor, sizeof out->cursor, "%s=%s", key, val);
	if (n < 0 || (size_t)n >= sizeof out->cursor)
		return sl_err_set(err, SL_ETOOBIG, "pipeline %s: the next %s is longer than a cursor can hold (%d bytes)",
				  s->name, key, SL_CURSOR_MAX - 1);
	return 0;
}

/* A bad page (not JSON, wrong shape, oversize): hold the next request back like a retry of a failing server, with
 * equal jitter (at least half the step, so a broken API cannot be hammered by lucky draws), and trip the breaker
 * after max_bad_pages in a row. Without this an endpoint answering HTML with 200 is asked for page after page as
 * fast as it answers, each page into the DLQ. */
static void bad_page(struct http_src *s, const char *url_log, const char *why)
{
	s->bad_streak++;
	sl_counter_add(s->m_bad, 1);
	if (s->bad_streak >= s->c.max_bad_pages) {
		s->tripped = true;
		snprintf(s->trip_msg, sizeof s->trip_msg,
			 "pipeline %s: %" PRId64 " bad pages in a row, the last from %s: %s; stopping (circuit breaker: "
			 "max_bad_pages %" PRId64 "). Check the url and records_path against what the API returns",
			 s->name, s->bad_streak, url_log, why, s->c.max_bad_pages);
		return;
	}
	int64_t step = s->c.backoff_ms;
	for (int64_t i = 1; i < s->bad_streak && step < s->c.backoff_max_ms; i++)
		step *= 2;
	if (step > s->c.backoff_max_ms)
		step = s->c.backoff_max_ms;
	int64_t wait = step / 2 + (step > 1 ? (int64_t)(rnd_next(s) % (uint64_t)(step - step / 2)) : 0);
	s->hold_until = sl_mono_ms() + wait;
	sl_warn(COMP, "pipeline %s: bad page %" PRId64 "/%" PRId64 " in a row from %s: %s; next request in %" PRId64
		" ms", s->name, s->bad_streak, s->c.max_bad_pages, url_log, why, wait);
}

static void http_page_verdict(struct sl_source *bs, bool bad, const char *why)
{
	struct http_src *s = (struct http_src *)bs;
	if (!bad) {
		s->bad_streak = 0;
		return;
	}
	bad_page(s, s->cur ? s->cur->url_log : "?", why ? why : "bad page");
}

/* The head request is done: decide whether it is a page to hand out or the end of the pages. Returns 0 with out
 * filled, SL_ENOTFOUND when it ended the pages, or an error. */
static int take_head(struct http_src *s, struct sl_page *out, struct sl_err *err)
{
	struct req *r = s->win[0];
	char *next = NULL;
	long n = inspect_page(s, r, &next);
	bool empty = n == 0 && s->c.pagination.stop_on_empty;
	int rc = 0;
	if (empty) {
		/* Not handed out: its cursor would skip the position where new records will appear. */
		sl_info(COMP, "pipeline %s: %s has no records: end of pages", s->name, r->url_log);
		s->base.stats.ends++;
		if (s->mode == P_PAGE || s->mode == P_OFFSET)
			s->next_pos = r->pos;
		if (s->mode == P_LINK || s->mode == P_NEXT_URL) {
			free(s->next_url);
			s->next_url = strdup(r->url_plain);
		}
		s->ended = true;
		s->resume_at = sl_mono_ms() + s->c.poll_interval_ms;
		drop_window(s);
		free(next);
		return SL_ENOTFOUND;
	}
	memmove(s->win, s->win + 1, (s->nwin - 1) * sizeof *s->win);
	s->nwin--;
	memset(out, 0, sizeof *out);
	char num[32];
	switch (s->mode) {
	case P_NONE:
		break;
	case P_PAGE:
		snprintf(num, sizeof num, "%" PRId64, r->pos + 1);
		rc = set_cursor(s, out, "next_page", num, err);
		break;
	case P_OFFSET:
		snprintf(num, sizeof num, "%" PRId64, r->pos + s->c.pagination.limit);
		rc = set_cursor(s, out, "next_offset", num, err);
		break;
	case P_CURSOR:
		if (next) {
			free(s->next_token);
			s->next_token = next;
			next = NULL;
		} else {
			s->ended = true;
			s->base.stats.ends++;
			s->resume_at = sl_mono_ms() + s->c.poll_interval_ms;
		}
		rc = set_cursor(s, out, "next_cursor", s->next_token ? s->next_token : "", err);
		break;
	case P_LINK:
	case P_NEXT_URL: {
		const char *ref = s->mode == P_LINK ? r->link_next : next;
		char *abs = ref ? resolve_url(r->url_plain, ref) : NULL;
		if (abs) {
			free(s->next_url);
			s->next_url = abs;
		} else {
			if (ref)
				sl_warn(COMP, "pipeline %s: %s: next URL is not a URL; end of pages", s->name, r->url_log);
			free(s->next_url);
			s->next_url = strdup(r->url_plain);
			s->ended = true;
			s->base.stats.ends++;
			s->resume_at = sl_mono_ms() + s->c.poll_interval_ms;
		}
		rc = set_cursor(s, out, "next_url", s->next_url ? s->next_url : "", err);
		break;
	}
	}
	free(next);
	if (rc) {
		req_free(r);
		return rc;
	}
	if (n < 0 && (s->mode == P_CURSOR || s->mode == P_NEXT_URL))
		sl_warn(COMP, "pipeline %s: %s: body is not readable JSON; no next page", s->name, r->url_log);
	s->cur = r;
	out->body = r->body.data ? r->body.data : "";
	out->len = r->body.len;
	out->seq = s->seq++;
	out->url = r->url_log;
	return 0;
}

static int http_next_page(struct sl_source *bs, struct sl_page *out, struct sl_err *err)
{
	struct http_src *s = (struct http_src *)bs;
	req_free(s->cur);
	s->cur = NULL;
	if (s->tripped) {
		sl_error(COMP, "%s", s->trip_msg);
		return sl_err_set(err, SL_ESERVER, "%s", s->trip_msg);
	}
	int64_t deadline = sl_mono_ms() + QUANTUM_MS;
	for (;;) {
		int64_t now = sl_mono_ms();
		if (s->ended && s->nwin == 0 && s->c.poll_interval_ms <= 0)
			return SL_ENOTFOUND;
		int rc = fill_window(s, now, err);
		if (rc)
			return rc;
		int64_t wake = start_due(s, now);
		int running = 0;
		curl_multi_perform(s->multi, &running);
		CURLMsg *m;
		int left;
		while ((m = curl_multi_info_read(s->multi, &left))) {
			if (m->msg != CURLMSG_DONE)
				continue;
			struct req *r = NULL;
			curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
			req_finished(s, r, m->data.result);
		}
		if (s->nwin && s->win[0]->st == R_FAIL && s->win[0]->err_code == SL_ETOOBIG &&
		    (s->mode == P_NONE || s->mode == P_PAGE || s->mode == P_OFFSET)) {
			/* An oversize response where the next request does not depend on its body: hand it out as a
			 * failed page (SL_ETOOBIG with out filled, an empty body) so the ingest loop dead-letters a note
			 * of it and the stream goes on past it, instead of every run stopping at the same page. */
			struct req *r = s->win[0];
			memmove(s->win, s->win + 1, (s->nwin - 1) * sizeof *s->win);
			s->nwin--;
			memset(out, 0, sizeof *out);
			char num[32];
			rc = 0;
			if (s->mode == P_PAGE) {
				snprintf(num, sizeof num, "%" PRId64, r->pos + 1);
				rc = set_cursor(s, out, "next_page", num, err);
			} else if (s->mode == P_OFFSET) {
				snprintf(num, sizeof num, "%" PRId64, r->pos + s->c.pagination.limit);
				rc = set_cursor(s, out, "next_offset", num, err);
			}
			if (rc) {
				req_free(r);
				return rc;
			}
			sl_warn(COMP, "%s; the page goes to the dead-letter topic", r->err_msg);
			bad_page(s, r->url_log, "response larger than max_response");
			s->cur = r;
			out->body = "";
			out->len = 0;
			out->seq = s->seq++;
			out->url = r->url_log;
			return sl_err_set(err, SL_ETOOBIG, "%s", r->err_msg);
		}
		if (s->nwin && s->win[0]->st == R_FAIL) {
			struct req *r = s->win[0];
			rc = sl_err_set(err, r->err_code, "%s", r->err_msg);
			sl_error(COMP, "%s", r->err_msg);
			drop_window(s);
			s->ended = true;
			s->c.poll_interval_ms = 0; /* a failed run does not go on polling */
			return rc;
		}
		if (s->nwin && s->win[0]->st == R_DONE) {
			rc = take_head(s, out, err);
			if (rc == SL_ENOTFOUND && s->c.poll_interval_ms > 0)
				return SL_EAGAIN;
			return rc;
		}
		now = sl_mono_ms();
		if (now >= deadline)
			return SL_EAGAIN;
		int64_t wait = deadline - now;
		if (wake < wait)
			wait = wake;
		if (s->ended && s->nwin == 0 && s->c.poll_interval_ms > 0 && s->resume_at - now < wait)
			wait = s->resume_at - now;
		if (wait < 1)
			wait = 1;
		curl_multi_poll(s->multi, NULL, 0, (int)wait, NULL);
	}
}

static void http_destroy(struct sl_source *bs)
{
	struct http_src *s = (struct http_src *)bs;
	if (!s)
		return;
	req_free(s->cur);
	drop_window(s);
	if (s->multi)
		curl_multi_cleanup(s->multi);
	curl_slist_free_all(s->hdrs);
	if (s->password)
		explicit_bzero(s->password, strlen(s->password));
	if (s->query_key)
		explicit_bzero(s->query_key, strlen(s->query_key));
	free(s->password);
	free(s->query_key);
	free(s->next_token);
	free(s->next_url);
	sl_source_http_bucket_free(s->bucket);
	sl_json_parser_free(s->jp);
	sl_opt_free(http_opts, &s->c);
	free(s);
}

static const struct sl_source_ops http_ops = {.next_page = http_next_page, .destroy = http_destroy,
					      .page_verdict = http_page_verdict};

/* A secret from the environment; the error names the variable, never a value. */
static int env_secret(const char *name, const char *var, const char *what, char **out, struct sl_err *err)
{
	if (!var || !*var)
		return sl_err_set(err, SL_ECONFIG, "pipeline %s: auth %s needs the name of an environment variable",
				  name, what);
	const char *v = getenv(var);
	if (!v || !*v)
		return sl_err_set(err, SL_ECONFIG, "pipeline %s: auth: environment variable %s (%s) is not set", name,
				  var, what);
	*out = strdup(v);
	return *out ? 0 : sl_err_set(err, SL_ENOMEM, "out of memory");
}

static int add_header(struct http_src *s, const char *k, const char *v)
{
	struct sl_buf b;
	sl_buf_init(&b);
	sl_buf_printf(&b, "%s: %s", k, v);
	struct curl_slist *n = sl_buf_ok(&b) ? curl_slist_append(s->hdrs, sl_buf_cstr(&b)) : NULL;
	explicit_bzero(b.data, b.cap);
	sl_buf_free(&b);
	if (!n)
		return SL_ENOMEM;
	s->hdrs = n;
	return 0;
}

/* Applies a resume cursor ("next_page=N", ...) written by an earlier run with the same pagination. */
static int apply_resume(struct http_src *s, const char *resume, struct sl_err *err)
{
	if (!resume || !*resume)
		return 0;
	const char *eq = strchr(resume, '=');
	const char *want = s->mode == P_PAGE ? "next_page" : s->mode == P_OFFSET ? "next_offset"
			   : s->mode == P_CURSOR ? "next_cursor" : s->mode == P_NONE ? NULL : "next_url";
	if (!want) {
		sl_info(COMP, "pipeline %s: pagination none has no position; ignoring the saved cursor", s->name);
		return 0;
	}
	if (!eq || (size_t)(eq - resume) != strlen(want) || strncmp(resume, want, strlen(want)))
		return sl_err_set(err, SL_ECONFIG,
				  "pipeline %s: saved cursor does not fit pagination %s (expected %s=...); "
				  "was the pagination changed? Reset the pipeline's cursor to start over",
				  s->name, s->c.pagination.type, want);
	const char *v = eq + 1;
	if (s->mode == P_PAGE || s->mode == P_OFFSET) {
		char *end;
		errno = 0;
		long long n = strtoll(v, &end, 10);
		if (errno || *end || end == v || n < 0)
			return sl_err_set(err, SL_ECONFIG, "pipeline %s: saved cursor %s=%s is not a number", s->name, want,
					  v);
		s->next_pos = n;
	} else if (s->mode == P_CURSOR) {
		free(s->next_token);
		s->next_token = *v ? strdup(v) : NULL;
	} else {
		free(s->next_url);
		s->next_url = *v ? strdup(v) : NULL;
	}
	char red[URL_LOG_MAX];
	sl_log_redact(resume, red, sizeof red);
	sl_info(COMP, "pipeline %s: resuming at %s", s->name, red);
	return 0;
}

int sl_source_http_new(const char *name, const struct sl_cfg_node *conf, const char *resume, struct sl_source **out,
		       struct sl_err *err)
{
	pthread_once(&curl_once, curl_init_once);
	struct http_src *s = calloc(1, sizeof *s);
	if (!s)
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	snprintf(s->name, sizeof s->name, "%s", name ? name : "?");
	char section[200], w[300];
	snprintf(section, sizeof section, "pipelines.%s.source", s->name);
	int rc = sl_opt_bind(http_opts, conf, section, &s->c, err);
	if (rc) {
		sl_opt_free(http_opts, &s->c);
		free(s);
		return rc;
	}
	s->base.ops = &http_ops;
	s->base.records_path = s->c.records_path && *s->c.records_path && strcmp(s->c.records_path, "$")
				       ? s->c.records_path : NULL;
	s->base.single_record = s->c.single_record;
	s->base.any_records = !strcmp(s->c.record_type, "any");
	s->base.count = s->c.count;
	s->base.dlq_max_bytes = s->c.dlq_max_bytes;
	const char *where = sl_cfg_where(conf, w, sizeof w);
	if (strcmp(s->c.type, "http")) {
		rc = sl_err_set(err, SL_ECONFIG, "%s: %s.type must be http here", where, section);
		goto fail;
	}
	static const char *const modes[] = {"none", "page", "offset", "cursor", "link", "next_url"};
	for (int i = 0; i < 6; i++)
		if (!strcmp(s->c.pagination.type, modes[i]))
			s->mode = (enum pmode)i;
	if (!sl_cfg_get(sl_cfg_get(conf, "pagination"), "start"))
		s->c.pagination.start = s->mode == P_PAGE ? 1 : 0;
	s->next_pos = s->c.pagination.start;
	if (s->c.concurrency > 1 && !prefetchable(s->mode)) {
		rc = sl_err_set(err, SL_ECONFIG,
				"%s: %s.concurrency %" PRId64 " needs pagination none, page or offset (with %s the next "
				"request is known only from the previous response)",
				where, section, s->c.concurrency, s->c.pagination.type);
		goto fail;
	}
	s->window = (size_t)s->c.concurrency;
	/* Expand once now so a bad template fails at load time. */
	struct sl_buf tb;
	sl_buf_init(&tb);
	rc = sl_source_http_expand(s->c.url, 1, 0, 1, "x", &tb, err);
	sl_buf_free(&tb);
	if (rc) {
		sl_err_prefix(err, "%s: %s.url: ", where, section);
		goto fail;
	}
	if ((rc = check_placeholders(s, where, section, err)))
		goto fail;
	if (strncmp(s->c.url, "http://", 7) && strncmp(s->c.url, "https://", 8)) {
		rc = sl_err_set(err, SL_ECONFIG, "%s: %s.url must start with http:// or https://", where, section);
		goto fail;
	}
	bool has_accept = false;
	for (size_t i = 0; i < s->c.headers.n; i++) {
		has_accept |= !strcasecmp(s->c.headers.k[i], "Accept");
		if ((rc = add_header(s, s->c.headers.k[i], s->c.headers.v[i])))
			goto oom;
	}
	if (!has_accept && (rc = add_header(s, "Accept", "application/json")))
		goto oom;
	const struct http_auth *a = &s->c.auth;
	if (!strcmp(a->type, "basic")) {
		if (!a->user || !*a->user) {
			rc = sl_err_set(err, SL_ECONFIG, "%s: %s.auth basic needs user", where, section);
			goto fail;
		}
		if ((rc = env_secret(s->name, a->password_env, "basic password_env", &s->password, err)))
			goto fail;
	} else if (!strcmp(a->type, "bearer")) {
		char *tok = NULL;
		if ((rc = env_secret(s->name, a->token_env, "bearer token_env", &tok, err)))
			goto fail;
		struct sl_buf b;
		sl_buf_init(&b);
		sl_buf_printf(&b, "Bearer %s", tok);
		rc = sl_buf_ok(&b) ? add_header(s, "Authorization", sl_buf_cstr(&b)) : SL_ENOMEM;
		explicit_bzero(tok, strlen(tok));
		free(tok);
		explicit_bzero(b.data, b.cap);
		sl_buf_free(&b);
		if (rc)
			goto oom;
	} else if (!strcmp(a->type, "api_key")) {
		if (!a->name || !*a->name) {
			rc = sl_err_set(err, SL_ECONFIG, "%s: %s.auth api_key needs name", where, section);
			goto fail;
		}
		char *key = NULL;
		if ((rc = env_secret(s->name, a->value_env, "api_key value_env", &key, err)))
			goto fail;
		if (!strcmp(a->in, "query")) {
			s->query_key = key;
		} else {
			rc = add_header(s, a->name, key);
			explicit_bzero(key, strlen(key));
			free(key);
			if (rc)
				goto oom;
		}
	}
	if ((rc = apply_resume(s, resume, err)))
		goto fail;
	s->multi = curl_multi_init();
	s->bucket = sl_source_http_bucket_new(s->c.rate_limit.per_second, (double)s->c.rate_limit.burst, sl_mono_ms());
	if (!s->multi || !s->bucket)
		goto oom;
	curl_multi_setopt(s->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)s->window);
	if ((rc = sl_json_parser_new(&s->jp, (size_t)s->c.max_response + 64, 0, err)))
		goto fail;
	s->rnd = ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid() ^ (uint64_t)(uintptr_t)s ^ 0x9e3779b97f4a7c15ULL;
	if (!s->rnd)
		s->rnd = 1;
	char labels[200];
	snprintf(labels, sizeof labels, "pipeline=\"%s\"", s->name);
	struct sl_metrics *mr = sl_metrics_global();
	s->m_req = sl_counter(mr, "sluice_http_requests_total", labels, "HTTP requests made by http sources");
	s->m_retry = sl_counter(mr, "sluice_http_retries_total", labels, "HTTP requests retried");
	s->m_fail = sl_counter(mr, "sluice_http_failures_total", labels, "HTTP requests that failed");
	s->m_bytes = sl_counter(mr, "sluice_http_response_bytes_total", labels, "HTTP response body bytes received");
	s->m_bad = sl_counter(mr, "sluice_http_bad_pages_total", labels,
			      "Pages that were not JSON, had no records array, no object record, or were oversize");
	s->m_lat = sl_histogram(mr, "sluice_http_request_duration_seconds", labels, "HTTP request latency",
				sl_latency_buckets, sl_latency_nbuckets);
	char red[URL_LOG_MAX];
	sl_log_redact(s->c.url, red, sizeof red);
	sl_info(COMP, "pipeline %s: http source url=%s pagination=%s concurrency=%zu auth=%s", s->name, red,
		s->c.pagination.type, s->window, a->type);
	*out = &s->base;
	return 0;
oom:
	rc = sl_err_set(err, SL_ENOMEM, "out of memory");
fail:
	http_destroy(&s->base);
	return rc;
}
