/* sluice's HTTP/1.1 server, shared by the console, the schema registry and the scheduler's API. One I/O thread on
 * epoll accepts, reads, parses and writes every connection; a small pool of workers runs the handlers on complete
 * requests (handlers may block on Cassandra or a store), so neither a slow client nor a slow handler holds up the
 * others. Every connection has a deadline for its header (from its first byte, not reset by a trickle), for the whole
 * request, for idling between keep-alive requests and for writing its answer; bodies are bounded per request and
 * across connections; when the connection limit is reached the oldest idle or header-sending connection makes room.
 *
 * The access policy lives here too, the same for every server: credentials with a read-write and a read-only set
 * (core/httpauth), the Host header against the names the server answers to (DNS rebinding), the Origin of writes
 * (cross-site requests) and a JSON content type for writes (no "simple" cross-site form or text/plain POST).
 *
 * The parsing pieces are pure functions over bytes, so the unit tests and tests/fuzz/fuzz_httpd.c drive them
 * directly. */
#ifndef SL_HTTP_HTTP_H
#define SL_HTTP_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/httpauth.h"

/* ---- parsing (parse.c) ---- */

struct sl_http_hdr {
	const char *name, *value; /* NUL-terminated, inside the parsed head; value trimmed */
};

#define SL_HTTP_MAX_HEADERS 100

struct sl_http_head {
	const char *method, *target;
	int minor;                      /* HTTP/1.minor */
	struct sl_http_hdr h[SL_HTTP_MAX_HEADERS];
	size_t nh;
	int64_t content_length;         /* -1: none */
	bool chunked, keep_alive, expect_continue;
};

/* Where the head of a request ends in buf: the offset just past the blank line, 0 when not there yet, -1 when the
 * bytes cannot be a request head (a NUL or a bare control byte). from: where the previous search stopped. */
ssize_t sl_http_head_end(const char *buf, size_t len, size_t from);
/* Parses a complete head in place (buf[len-1] is the last '\n'; the bytes are cut into NUL-terminated strings).
 * Returns 0, or the status to refuse it with: 400 (malformed), 414 (target longer than max_target), 431 (too many
 * headers), 501 (a transfer coding other than chunked), 505 (not HTTP/1.x). */
int sl_http_parse_head(char *buf, size_t len, size_t max_target, struct sl_http_head *h);
/* The value of a header (case-insensitive name), the first of several; NULL when absent. */
const char *sl_http_head_get(const struct sl_http_head *h, const char *name);
size_t sl_http_head_count(const struct sl_http_head *h, const char *name);

/* A chunked body, decoded as bytes arrive. */
struct sl_http_chunked {
	int state;
	uint64_t left;   /* bytes left in the current chunk */
	size_t linelen;  /* length of the size line or trailer line read so far */
};
/* Consumes in[0..n): chunk data appended to out. Returns the bytes consumed (less than n only when the body ended:
 * *done is then true and the rest belongs to the next request), or -1 on a malformed body. */
ssize_t sl_http_chunked_feed(struct sl_http_chunked *c, const char *in, size_t n, struct sl_buf *out, bool *done);

/* Splits a request target (origin-form) into its path, percent-decoded exactly once, and its raw query (after '?',
 * "" when none; a pointer into target). Refuses (-1) what is not "/...", a '#', a bad escape, NUL or control bytes
 * (raw or decoded), and "." or ".." segments (refused, never resolved). A backslash is only a character (a registry
 * subject may hold one). */
int sl_http_split_target(const char *target, char *path, size_t pathsz, const char **query);

/* ---- the access policy (policy.c) ---- */

struct sl_http_policy {
	const struct sl_http_auth *auth;   /* NULL: no credentials */
	const char *const *hosts;          /* the names the server answers to, beside IP literals (lowercase) */
	size_t nhosts;
	bool octet_stream;                 /* writes may also be application/octet-stream (registry clients) */
	const char *const *open_paths;     /* paths answered without credentials (/health), NULL-terminated */
	/* A cookie whose value (hex) is an Authorization header value, taken when the request has none (the
	 * console's login page sets it for a browser); NULL: no cookie counts. */
	const char *auth_cookie;
};

struct sl_http_verdict {
	int status;                        /* 0: go on; else the refusal */
	const char *message;
	enum sl_http_role role;
	bool www_authenticate;             /* a 401 */
};

/* Whether method writes (anything but GET, HEAD and OPTIONS). */
bool sl_http_is_write(const char *method);
/* Whether a Content-Type is JSON: application/json or any type/x+json, parameters ignored. */
bool sl_http_ctype_json(const char *ctype);
/* Whether a Host header value (host[:port]) names an IP literal or one of hosts. */
bool sl_http_host_allowed(const char *host, const char *const *hosts, size_t nhosts);
/* The Authorization value a request carries in cookie `name` (hex of the header value, as the console's login page
 * sets it) into out; false when the Cookie header has no such cookie or it does not decode. */
bool sl_http_cookie_auth(const char *cookie_header, const char *name, char *out, size_t outsz);
/* Checks one request head against the policy (path is the decoded path). */
void sl_http_policy_check(const struct sl_http_policy *p, const struct sl_http_head *h, const char *path,
			  struct sl_http_verdict *v);

/* ---- the server (server.c) ---- */

/* Settings every server takes (the option rows below). */
struct sl_http_conf {
	struct sl_strlist allowed_hosts;
	int64_t max_connections, workers;
	int64_t header_timeout_ms, idle_timeout_ms, request_timeout_ms, write_timeout_ms;
	int64_t max_header, max_buffered;
};

#define SL_HTTP_SERVER_OPTS(type, field)                                                                            \
	{"allowed_hosts", SL_OPT_STRLIST, NULL, offsetof(type, field.allowed_hosts),                                 \
	 "host names the server answers to (the Host header; DNS rebinding defence) beside loopback names, IP "     \
	 "literals and the listen address; a request naming another host gets 403"},                               \
	{"max_connections", SL_OPT_INT, "1024", offsetof(type, field.max_connections),                               \
	 "open connections at most; beyond it the oldest idle or header-sending one is closed to make room",       \
	 .min = 8, .max = 1000000},                                                                                  \
	{"workers", SL_OPT_INT, "4", offsetof(type, field.workers), "threads that run request handlers", .min = 1, \
	 .max = 256},                                                                                                \
	{"header_timeout", SL_OPT_DURATION, "10s", offsetof(type, field.header_timeout_ms),                         \
	 "a request's whole header must arrive within this from its first byte (a trickle does not extend it)",    \
	 .min = 100, .max = 3600000},                                                                                \
	{"idle_timeout", SL_OPT_DURATION, "30s", offsetof(type, field.idle_timeout_ms),                             \
	 "a keep-alive connection with no request in progress is closed after this", .min = 100, .max = 3600000},  \
	{"request_timeout", SL_OPT_DURATION, "60s", offsetof(type, field.request_timeout_ms),                       \
	 "a whole request (header and body) must arrive within this from its first byte", .min = 100,              \
	 .max = 3600000},                                                                                            \
	{"write_timeout", SL_OPT_DURATION, "30s", offsetof(type, field.write_timeout_ms),                           \
	 "an answer not taken by the client within this closes the connection", .min = 100, .max = 3600000},       \
	{"max_header", SL_OPT_SIZE, "16KiB", offsetof(type, field.max_header),                                      \
	 "largest request header (request line included); larger ones get 431", .min = 1024, .max = 1 << 20},     \
	{"max_buffered", SL_OPT_SIZE, "64MiB", offsetof(type, field.max_buffered),                                  \
	 "request body bytes buffered across all connections at most; a body that would pass it gets 503 with "    \
	 "Retry-After", .min = 65536, .max = (int64_t)1 << 40}

/* Defaults of struct sl_http_conf (what the rows above give), for servers without a config section. */
void sl_http_conf_defaults(struct sl_http_conf *c);
/* Deep copy (allowed_hosts) and release, for components that keep their conf. */
int sl_http_conf_copy(struct sl_http_conf *dst, const struct sl_http_conf *src);
void sl_http_conf_free(struct sl_http_conf *c);

struct sl_http_req {
	const char *method;
	const char *target;                /* raw, as sent (the registry routes on it: "%2F" stays) */
	const char *path;                  /* decoded once */
	const char *query;                 /* raw, after '?' ("" when none) */
	const char *body;
	size_t len;
	enum sl_http_role role;
	const struct sl_http_head *head;
};
const char *sl_http_req_header(const struct sl_http_req *rq, const char *name);

#define SL_HTTP_RESP_MAX_HEADERS 8
struct sl_http_resp {
	int status;
	const char *ctype;
	struct sl_buf body;
	const void *data;                  /* instead of body: bytes that outlive the request (an embedded asset) */
	size_t data_len;
	struct {
		const char *name;
		char value[256];
	} hdr[SL_HTTP_RESP_MAX_HEADERS];
	size_t nhdr;
	/* A streamed answer (server-sent events): when a handler sets stream, the layer sends the status line and the
	 * headers with no Content-Length and "Connection: close" (the body ends when the connection does), then calls
	 * stream(stream_arg, fd) with a socket of its own (non-blocking) that the callee owns from then: it writes the
	 * body, notices the client leaving, and closes fd. It is called exactly once, with fd -1 when the head could not
	 * be sent or the request was a HEAD, so the handler's resources are always released. It must return soon (start
	 * a thread): it runs on a worker. body is ignored. */
	void (*stream)(void *arg, int fd);
	void *stream_arg;
};
/* Adds a response header (name must be a string literal or outlive the response). */
void sl_http_resp_header(struct sl_http_resp *rs, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The JSON error body every refusal has: {"error_code":N,"message":"..."} (Confluent's shape). */
void sl_http_error(struct sl_http_resp *rs, int status, const char *message);
/* The standard reason phrase of a status ("Not Found"; "Status" for one the layer never sends). */
const char *sl_http_reason(int status);

typedef void (*sl_http_handler)(void *ctx, const struct sl_http_req *rq, struct sl_http_resp *rs);

struct sl_http_server_opts {
	const char *name;                  /* "console", "registry", "scheduler API": in logs */
	const char *host;                  /* listen address ("" or "0.0.0.0": every address) */
	int port;                          /* 0: any free port */
	const struct sl_http_conf *conf;
	int64_t max_body, max_target;
	const struct sl_http_auth *auth;   /* NULL or no secret: open */
	const char *realm;                 /* WWW-Authenticate realm */
	const char *error_ctype;           /* Content-Type of the layer's refusals (default application/json) */
	/* Writes a refusal's body in the server's own error shape (the scheduler's RFC 7807 documents); NULL:
	 * sl_http_error. Must set rs->status and fill rs->body. */
	void (*error_body)(struct sl_http_resp *rs, int status, const char *message);
	bool octet_stream;                 /* see struct sl_http_policy */
	const char *const *open_paths;
	const char *auth_cookie;           /* see struct sl_http_policy */
	/* Where a browser without credentials is sent: a refused GET that accepts text/html gets a page pointing
	 * there (the console's /login) instead of JSON. NULL: none. */
	const char *login_path;
	sl_http_handler handler;
	void *ctx;
	/* Called (from the I/O thread) for every request the policy refused, before its answer, with the parsed head,
	 * the decoded path and the refusal's message (the console audits refused writes). Optional. */
	void (*on_refused)(void *ctx, int status, const struct sl_http_head *h, const char *path, const char *message);
};

struct sl_http_server;
/* Raises RLIMIT_NOFILE to its hard limit, binds, and starts the I/O thread and the workers. */
int sl_http_start(const struct sl_http_server_opts *o, struct sl_http_server **out, struct sl_err *err);
int sl_http_port(const struct sl_http_server *s);
/* Stops accepting, closes every connection, waits for the handlers in progress, frees everything. */
void sl_http_stop(struct sl_http_server *s);

/* The server's counters (for /metrics and the tests). */
struct sl_http_stats {
	uint64_t accepted, requests, refused_limit, evicted, timeouts, buffered_bytes, open;
};
void sl_http_stats(struct sl_http_server *s, struct sl_http_stats *st);

#endif
