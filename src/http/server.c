/* The server of src/http: one I/O thread on epoll (accept, read, parse, write, deadlines) and a pool of workers that
 * run handlers on complete requests. A connection is in one of four states: reading its head, reading its body,
 * with a worker, or writing its answer. The I/O thread alone touches a connection except while a worker has it.
 *
 * Limits, and why: the head must arrive within header_timeout of its first byte (a client trickling a byte every few
 * seconds gains nothing); the whole request within request_timeout; an idle keep-alive connection lives
 * idle_timeout; an answer must be taken within write_timeout. At max_connections a new connection closes the oldest
 * one that is idle or still sending its head (a flood of such sockets cannot lock a normal client out: it would have
 * to out-race the client's own request); when none is, the newcomer gets 503. Bodies are bounded per request
 * (max_body, 413 as soon as Content-Length says so) and in total (max_buffered, counted from Content-Length before a
 * byte is buffered, 503 with Retry-After), and their memory goes back to the system when the request ends. */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/clock.h"
#include "http/http.h"

#define COMP "http"

enum cstate { C_HEAD, C_BODY, C_WORK, C_WRITE };

struct conn {
	struct conn *prev, *next; /* every open connection */
	struct conn *qnext;       /* work queue / done list */
	int fd;
	enum cstate st;
	bool dead;                /* the peer went away while a worker had it: close when it comes back */
	bool closed;              /* closed in this turn of the loop: freed at its end (events may still name it) */
	bool close_after;
	bool detached;            /* its answer is streamed by a handler's own socket (a dup): close ours, no shutdown */
	bool in_epoll;
	int64_t t_idle;           /* when it last became idle (eviction order, idle timeout) */
	int64_t t_start;          /* first byte of the request in progress; 0 when idle */
	int64_t t_write;
	char *in;                 /* head bytes, then what followed them */
	size_t inlen, incap, scanned, headlen;
	struct sl_http_head head;
	char *path;
	const char *query;
	struct sl_http_verdict v;
	struct sl_buf body;
	int64_t want;             /* Content-Length bytes still to read; -1 chunked */
	uint64_t reserved;        /* bytes counted against max_buffered */
	struct sl_http_chunked ch;
	char *out;
	size_t outlen, outoff;
};

struct sl_http_server {
	struct sl_http_server_opts o;
	struct sl_http_conf conf;
	char **hosts;
	size_t nhosts;
	struct sl_http_policy policy;
	int lfd, efd, wfd;        /* listener, epoll, eventfd (workers -> I/O thread) */
	int port;
	pthread_t io;
	pthread_t *workers;
	size_t nworkers;
	atomic_int stop;

	pthread_mutex_t mu;       /* guards the queues */
	pthread_cond_t cv;
	struct conn *qhead, *qtail, *done;

	struct conn *conns;       /* I/O thread only */
	struct conn *grave;       /* closed this turn, freed at its end */
	size_t nconns;
	atomic_uint_fast64_t buffered, accepted, requests, refused_limit, evicted, timeouts;
};

static int64_t now_ms(void)
{
	return sl_mono_ms();
}

void sl_http_conf_defaults(struct sl_http_conf *c)
{
	memset(c, 0, sizeof *c);
	c->max_connections = 1024;
	c->workers = 4;
	c->header_timeout_ms = 10000;
	c->idle_timeout_ms = 30000;
	c->request_timeout_ms = 60000;
	c->write_timeout_ms = 30000;
	c->max_header = 16 << 10;
	c->max_buffered = 64 << 20;
}

int sl_http_conf_copy(struct sl_http_conf *dst, const struct sl_http_conf *src)
{
	*dst = *src;
	dst->allowed_hosts.n = 0;
	dst->allowed_hosts.v = NULL;
	if (!src->allowed_hosts.n)
		return 0;
	dst->allowed_hosts.v = calloc(src->allowed_hosts.n, sizeof *dst->allowed_hosts.v);
	if (!dst->allowed_hosts.v)
		return -1;
	for (size_t i = 0; i < src->allowed_hosts.n; i++) {
		if (!(dst->allowed_hosts.v[i] = strdup(src->allowed_hosts.v[i]))) {
			sl_http_conf_free(dst);
			return -1;
		}
		dst->allowed_hosts.n++;
	}
	return 0;
}

void sl_http_conf_free(struct sl_http_conf *c)
{
	for (size_t i = 0; i < c->allowed_hosts.n; i++)
		free(c->allowed_hosts.v[i]);
	free(c->allowed_hosts.v);
	c->allowed_hosts.v = NULL;
	c->allowed_hosts.n = 0;
}

const char *sl_http_req_header(const struct sl_http_req *rq, const char *name)
{
	return rq->head ? sl_http_head_get(rq->head, name) : NULL;
}

void sl_http_resp_header(struct sl_http_resp *rs, const char *name, const char *fmt, ...)
{
	if (rs->nhdr >= SL_HTTP_RESP_MAX_HEADERS)
		return;
	va_list ap;
	va_start(ap, fmt);
	rs->hdr[rs->nhdr].name = name;
	vsnprintf(rs->hdr[rs->nhdr].value, sizeof rs->hdr[rs->nhdr].value, fmt, ap);
	va_end(ap);
	/* A value is ours or a handler's, never a client's raw bytes; still, no header injection. */
	rs->hdr[rs->nhdr].value[strcspn(rs->hdr[rs->nhdr].value, "\r\n")] = 0;
	rs->nhdr++;
}

void sl_http_error(struct sl_http_resp *rs, int status, const char *message)
{
	rs->status = status;
	rs->data = NULL;
	sl_buf_reset(&rs->body);
	sl_buf_printf(&rs->body, "{\"error_code\":%d,\"message\":", status);
	sl_buf_json_str(&rs->body, message, strlen(message));
	sl_buf_putc(&rs->body, '}');
}

const char *sl_http_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 417: return "Expectation Failed";
	case 422: return "Unprocessable Content";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	}
	return "Status";
}

/* Status line, headers (the security headers on every answer) and body into c->out. */
static void serialize(struct sl_http_server *s, struct conn *c, struct sl_http_resp *rs, bool head_only)
{
	struct sl_buf b;
	sl_buf_init(&b);
	const void *data = rs->data ? rs->data : rs->body.data;
	size_t len = rs->data ? rs->data_len : rs->body.len;
	bool nobody = rs->status == 204 || rs->status == 304;
	bool streamed = rs->stream && !head_only;
	if (streamed) {
		c->close_after = true; /* the body ends with the connection */
		len = 0;
	}
	sl_buf_printf(&b, "HTTP/1.1 %d %s\r\n", rs->status, sl_http_reason(rs->status));
	if (rs->ctype && !nobody)
		sl_buf_printf(&b, "Content-Type: %s\r\n", rs->ctype);
	if (!nobody && !streamed)
		sl_buf_printf(&b, "Content-Length: %zu\r\n", len);
	sl_buf_printf(&b, "Connection: %s\r\n", c->close_after ? "close" : "keep-alive");
	sl_buf_puts(&b, "X-Content-Type-Options: nosniff\r\nX-Frame-Options: DENY\r\nReferrer-Policy: no-referrer\r\n");
	if (rs->ctype && !strncasecmp(rs->ctype, "text/html", 9))
		sl_buf_puts(&b, "Content-Security-Policy: default-src 'self'; img-src 'self' data:; style-src 'self'; "
				"connect-src 'self'; frame-ancestors 'none'\r\n");
	for (size_t i = 0; i < rs->nhdr; i++)
		sl_buf_printf(&b, "%s: %s\r\n", rs->hdr[i].name, rs->hdr[i].value);
	sl_buf_puts(&b, "\r\n");
	if (!head_only && !nobody && len)
		sl_buf_append(&b, data, len);
	if (!sl_buf_ok(&b)) {
		sl_buf_free(&b);
		static const char oom[] = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
		c->close_after = true;
		sl_buf_append(&b, oom, sizeof oom - 1);
	}
	(void)s;
	free(c->out);
	c->out = b.data;
	c->outlen = b.len;
	c->outoff = 0;
}

static void ep_set(struct sl_http_server *s, struct conn *c, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = c};
	if (c->in_epoll)
		epoll_ctl(s->efd, EPOLL_CTL_MOD, c->fd, &ev);
	else if (epoll_ctl(s->efd, EPOLL_CTL_ADD, c->fd, &ev) == 0)
		c->in_epoll = true;
}

static void release_body(struct sl_http_server *s, struct conn *c)
{
	if (c->reserved) {
		atomic_fetch_sub(&s->buffered, c->reserved);
		c->reserved = 0;
	}
	sl_buf_free(&c->body);
	sl_buf_init(&c->body);
}

static void conn_close(struct sl_http_server *s, struct conn *c)
{
	if (c->in_epoll)
		epoll_ctl(s->efd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	release_body(s, c);
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->nconns--;
	free(c->in);
	free(c->path);
	free(c->out);
	c->in = c->path = c->out = NULL;
	c->closed = true;
	/* Not freed yet: an event for it may still wait in this turn's epoll batch (an eviction closes a connection
	 * that a later event of the same batch names). */
	c->qnext = s->grave;
	s->grave = c;
}

static void bury(struct sl_http_server *s)
{
	while (s->grave) {
		struct conn *c = s->grave;
		s->grave = c->qnext;
		free(c);
	}
}

/* Starts writing c->out; the answer goes out from the I/O thread. */
static void start_write(struct sl_http_server *s, struct conn *c)
{
	c->st = C_WRITE;
	c->t_write = now_ms();
	ep_set(s, c, EPOLLOUT);
}

/* Answers a request the layer refused itself (the handler never sees it). */
static void refuse(struct sl_http_server *s, struct conn *c, int status, const char *msg, bool close_after)
{
	struct sl_http_resp rs = {.status = status, .ctype = s->o.error_ctype ? s->o.error_ctype : "application/json"};
	sl_buf_init(&rs.body);
	const char *accept = sl_http_head_get(&c->head, "Accept");
	if (status == 401 && s->o.login_path && c->head.method && !strcmp(c->head.method, "GET") && accept &&
	    strstr(accept, "text/html")) {
		/* A browser opening a page without credentials: a page that leads to the login form, not JSON. */
		rs.ctype = "text/html; charset=utf-8";
		sl_buf_printf(&rs.body,
			      "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
			      "<meta http-equiv=\"refresh\" content=\"0; url=%s\"><title>Log in</title></head><body>"
			      "<p>This console needs credentials. <a href=\"%s\">Log in</a>.</p></body></html>\n",
			      s->o.login_path, s->o.login_path);
	} else if (s->o.error_body) {
		s->o.error_body(&rs, status, msg);
	} else {
		sl_http_error(&rs, status, msg);
	}
	sl_http_resp_header(&rs, "Cache-Control", "no-store");
	if (status == 401 && s->o.auth) {
		bool basic = s->o.auth->password || s->o.auth->read_password;
		bool bearer = s->o.auth->token || s->o.auth->read_token;
		sl_http_resp_header(&rs, "WWW-Authenticate", basic && !bearer ? "Basic realm=\"%s\", charset=\"UTF-8\""
										: "Bearer realm=\"%s\"",
				    s->o.realm ? s->o.realm : "sluice");
	}
	if (status == 503)
		sl_http_resp_header(&rs, "Retry-After", "1");
	if (status == 405)
		sl_http_resp_header(&rs, "Allow", "GET, HEAD, POST, PUT, PATCH, DELETE");
	if (close_after)
		c->close_after = true;
	serialize(s, c, &rs, c->head.method && !strcmp(c->head.method, "HEAD"));
	sl_buf_free(&rs.body);
	start_write(s, c);
}

/* The request is complete: hand it to a worker. */
static void dispatch(struct sl_http_server *s, struct conn *c)
{
	c->st = C_WORK;
	ep_set(s, c, 0);
	pthread_mutex_lock(&s->mu);
	c->qnext = NULL;
	if (s->qtail)
		s->qtail->qnext = c;
	else
		s->qhead = c;
	s->qtail = c;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

static bool reserve(struct sl_http_server *s, struct conn *c, uint64_t n)
{
	uint64_t cur = atomic_load(&s->buffered);
	do {
		if (cur + n > (uint64_t)s->conf.max_buffered)
			return false;
	} while (!atomic_compare_exchange_weak(&s->buffered, &cur, cur + n));
	c->reserved += n;
	return true;
}

static void send_continue(struct conn *c)
{
	static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
	ssize_t w = send(c->fd, cont, sizeof cont - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)w; /* best effort: a client that cannot take 25 bytes now sends its body anyway after its wait */
}

static void body_input(struct sl_http_server *s, struct conn *c);

/* A complete head is in c->in[0..headlen): parse, check, then read the body or dispatch. */
static void head_done(struct sl_http_server *s, struct conn *c)
{
	atomic_fetch_add(&s->requests, 1);
	int st = sl_http_parse_head(c->in, c->headlen, (size_t)s->o.max_target, &c->head);
	if (st) {
		refuse(s, c, st,
		       st == 414   ? "request target too long"
		       : st == 431 ? "request header too large"
		       : st == 505 ? "HTTP version not supported"
		       : st == 501 ? "transfer coding not supported"
				   : "malformed request",
		       true);
		return;
	}
	c->close_after = !c->head.keep_alive;
	free(c->path);
	size_t tl = strlen(c->head.target);
	c->path = malloc(tl + 2);
	if (!c->path) {
		refuse(s, c, 503, "out of memory", true);
		return;
	}
	if (!strcmp(c->head.target, "*") || sl_http_split_target(c->head.target, c->path, tl + 2, &c->query)) {
		refuse(s, c, 400, "malformed request target", true);
		return;
	}
	sl_http_policy_check(&s->policy, &c->head, c->path, &c->v);
	/* Credentials, Host and Origin come first; a body too large is said before a wrong content type. */
	if (c->v.status == 415 && c->head.content_length > s->o.max_body) {
		c->v.status = 413;
		c->v.message = "request body too large";
	}
	if (c->v.status) {
		if (s->o.on_refused)
			s->o.on_refused(s->o.ctx, c->v.status, &c->head, c->path, c->v.message);
		/* Refused before the body is read: the connection cannot be reused (its body is still coming). */
		refuse(s, c, c->v.status, c->v.message, c->head.chunked || c->head.content_length > 0);
		return;
	}
	c->want = c->head.chunked ? -1 : c->head.content_length > 0 ? c->head.content_length : 0;
	if (c->want > s->o.max_body) {
		char m[96];
		snprintf(m, sizeof m, "request body is larger than %lld bytes", (long long)s->o.max_body);
		refuse(s, c, 413, m, true);
		return;
	}
	if (c->want > 0 && !reserve(s, c, (uint64_t)c->want)) {
		refuse(s, c, 503, "too many request bodies in flight; retry shortly", true);
		return;
	}
	memset(&c->ch, 0, sizeof c->ch);
	sl_buf_init(&c->body);
	if (!c->want) {
		dispatch(s, c);
		return;
	}
	if (c->head.expect_continue && c->inlen == c->headlen)
		send_continue(c);
	c->st = C_BODY;
	body_input(s, c);
}

/* Takes body bytes from what followed the head in c->in; then from the socket as it becomes readable. */
static bool body_add(struct sl_http_server *s, struct conn *c, const char *p, size_t n, size_t *used)
{
	if (c->want >= 0) {
		size_t take = (uint64_t)n > (uint64_t)c->want ? (size_t)c->want : n;
		if (!c->body.cap) {
			/* One allocation of the announced size (already counted against max_buffered). */
			sl_buf_reserve(&c->body, (size_t)c->want);
		}
		sl_buf_append(&c->body, p, take);
		c->want -= (int64_t)take;
		*used = take;
		return sl_buf_ok(&c->body);
	}
	bool done;
	size_t before = c->body.cap;
	ssize_t k = sl_http_chunked_feed(&c->ch, p, n, &c->body, &done);
	if (k < 0) {
		refuse(s, c, 400, "malformed chunked body", true);
		return false;
	}
	*used = (size_t)k;
	if ((int64_t)c->body.len > s->o.max_body) {
		char m[96];
		snprintf(m, sizeof m, "request body is larger than %lld bytes", (long long)s->o.max_body);
		refuse(s, c, 413, m, true);
		return false;
	}
	if (c->body.cap > before && !reserve(s, c, c->body.cap - before)) {
		refuse(s, c, 503, "too many request bodies in flight; retry shortly", true);
		return false;
	}
	if (done)
		c->want = 0;
	return sl_buf_ok(&c->body);
}

static void body_input(struct sl_http_server *s, struct conn *c)
{
	/* First what the head's read already brought. */
	if (c->inlen > c->headlen) {
		size_t used = 0;
		if (!body_add(s, c, c->in + c->headlen, c->inlen - c->headlen, &used)) {
			if (c->st == C_BODY)
				refuse(s, c, 503, "out of memory", true);
			return;
		}
		/* Keep what follows the body (a pipelined request) just after the head. */
		memmove(c->in + c->headlen, c->in + c->headlen + used, c->inlen - c->headlen - used);
		c->inlen -= used;
	}
	if (!c->want) {
		dispatch(s, c);
		return;
	}
	ep_set(s, c, EPOLLIN | EPOLLRDHUP);
}

static void read_body(struct sl_http_server *s, struct conn *c)
{
	char tmp[65536];
	for (int rounds = 0; rounds < 16 && c->want; rounds++) {
		size_t cap = sizeof tmp;
		if (c->want > 0 && (uint64_t)c->want < cap)
			cap = (size_t)c->want;
		ssize_t r = recv(c->fd, tmp, cap, 0);
		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
			conn_close(s, c);
			return;
		}
		if (r < 0)
			return;
		size_t used = 0;
		if (!body_add(s, c, tmp, (size_t)r, &used)) {
			if (c->st == C_BODY)
				refuse(s, c, 503, "out of memory", true);
			return;
		}
		if (used < (size_t)r) { /* chunked body ended: the rest is the next request's */
			size_t rest = (size_t)r - used;
			if (c->inlen + rest > c->incap) {
				char *n = realloc(c->in, c->inlen + rest);
				if (!n) {
					conn_close(s, c);
					return;
				}
				c->in = n;
				c->incap = c->inlen + rest;
			}
			memcpy(c->in + c->inlen, tmp + used, rest);
			c->inlen += rest;
		}
	}
	if (!c->want)
		dispatch(s, c);
}

/* Looks for a complete head in what has been read; acts on it. */
static void scan_head(struct sl_http_server *s, struct conn *c)
{
	if (!c->inlen)
		return;
	if (!c->t_start)
		c->t_start = now_ms();
	ssize_t e = sl_http_head_end(c->in, c->inlen, c->scanned);
	if (e < 0) {
		refuse(s, c, 400, "malformed request", true);
		return;
	}
	if (e == 0) {
		c->scanned = c->inlen;
		if (c->inlen >= (size_t)s->conf.max_header) {
			/* No line end at all yet: the request line itself is what is too long. */
			bool line = memchr(c->in, '\n', c->inlen) != NULL;
			refuse(s, c, line ? 431 : 414, line ? "request header too large" : "request target too long", true);
		}
		return;
	}
	c->headlen = (size_t)e;
	head_done(s, c);
}

static void read_head(struct sl_http_server *s, struct conn *c)
{
	size_t max = (size_t)s->conf.max_header;
	if (c->incap < max) {
		size_t want = c->incap ? c->incap * 2 : 2048;
		if (want > max)
			want = max;
		if (c->inlen == c->incap) {
			char *n = realloc(c->in, want);
			if (!n) {
				conn_close(s, c);
				return;
			}
			c->in = n;
			c->incap = want;
		}
	}
	if (c->inlen >= c->incap) { /* full: scan_head has answered already */
		ep_set(s, c, 0);
		return;
	}
	ssize_t r = recv(c->fd, c->in + c->inlen, c->incap - c->inlen, 0);
	if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
		conn_close(s, c);
		return;
	}
	if (r < 0)
		return;
	c->inlen += (size_t)r;
	scan_head(s, c);
}

/* The answer is out: the next request on this connection, or close. */
static void request_done(struct sl_http_server *s, struct conn *c)
{
	if (c->close_after) {
		shutdown(c->fd, SHUT_WR);
		conn_close(s, c);
		return;
	}
	release_body(s, c);
	size_t rest = c->inlen - c->headlen;
	memmove(c->in, c->in + c->headlen, rest);
	c->inlen = rest;
	c->headlen = c->scanned = 0;
	free(c->out);
	c->out = NULL;
	c->outlen = c->outoff = 0;
	c->st = C_HEAD;
	c->t_start = 0;
	c->t_idle = now_ms();
	if (!c->inlen && c->incap > 4096) { /* an idle connection keeps a small buffer only */
		free(c->in);
		c->in = NULL;
		c->incap = 0;
	}
	ep_set(s, c, EPOLLIN | EPOLLRDHUP);
	if (c->inlen)
		scan_head(s, c);
}

static void write_out(struct sl_http_server *s, struct conn *c)
{
	while (c->outoff < c->outlen) {
		ssize_t w = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			conn_close(s, c);
			return;
		}
		c->outoff += (size_t)w;
	}
	request_done(s, c);
}

/* Makes room at the connection limit: the oldest connection that is idle or still sending its head. */
static bool evict_one(struct sl_http_server *s)
{
	struct conn *victim = NULL;
	int64_t oldest = INT64_MAX;
	for (struct conn *c = s->conns; c; c = c->next) {
		if (c->st != C_HEAD)
			continue;
		int64_t t = c->t_start ? c->t_start : c->t_idle;
		if (t < oldest) {
			oldest = t;
			victim = c;
		}
	}
	if (!victim)
		return false;
	atomic_fetch_add(&s->evicted, 1);
	conn_close(s, victim);
	return true;
}

static void accept_all(struct sl_http_server *s)
{
	for (int i = 0; i < 256; i++) {
		int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				evict_one(s); /* the next round accepts it */
			return;
		}
		atomic_fetch_add(&s->accepted, 1);
		if (s->nconns >= (size_t)s->conf.max_connections && !evict_one(s)) {
			static const char busy[] =
				"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: 67\r\n"
				"Retry-After: 1\r\nConnection: close\r\nX-Content-Type-Options: nosniff\r\n\r\n"
				"{\"error_code\":503,\"message\":\"too many connections; retry shortly\"}";
			ssize_t w = send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
			(void)w;
			close(fd);
			atomic_fetch_add(&s->refused_limit, 1);
			continue;
		}
		struct conn *c = calloc(1, sizeof *c);
		if (!c) {
			close(fd);
			continue;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		c->fd = fd;
		c->st = C_HEAD;
		c->t_idle = now_ms();
		sl_buf_init(&c->body);
		c->next = s->conns;
		if (s->conns)
			s->conns->prev = c;
		s->conns = c;
		s->nconns++;
		ep_set(s, c, EPOLLIN | EPOLLRDHUP);
	}
}

static void check_deadlines(struct sl_http_server *s)
{
	int64_t now = now_ms();
	for (struct conn *c = s->conns, *next; c; c = next) {
		next = c->next;
		bool late = false;
		switch (c->st) {
		case C_HEAD:
			late = c->t_start ? now - c->t_start > s->conf.header_timeout_ms
					  : now - c->t_idle > s->conf.idle_timeout_ms;
			break;
		case C_BODY:
			late = now - c->t_start > s->conf.request_timeout_ms;
			break;
		case C_WRITE:
			late = now - c->t_write > s->conf.write_timeout_ms;
			break;
		case C_WORK:
			break;
		}
		if (late) {
			if (c->st != C_HEAD || c->t_start)
				atomic_fetch_add(&s->timeouts, 1);
			conn_close(s, c);
		}
	}
}

static void take_done(struct sl_http_server *s)
{
	uint64_t v;
	ssize_t r = read(s->wfd, &v, sizeof v);
	(void)r;
	pthread_mutex_lock(&s->mu);
	struct conn *d = s->done;
	s->done = NULL;
	pthread_mutex_unlock(&s->mu);
	while (d) {
		struct conn *c = d;
		d = d->qnext;
		if (c->dead || c->detached)
			conn_close(s, c); /* detached: the handler's stream has its own descriptor of the socket */
		else {
			start_write(s, c);
			write_out(s, c);
		}
	}
}

static void *io_main(void *arg)
{
	struct sl_http_server *s = arg;
	struct epoll_event evs[256];
	int64_t last_check = now_ms();
	while (!atomic_load(&s->stop)) {
		int n = epoll_wait(s->efd, evs, 256, 100);
		for (int i = 0; i < n; i++) {
			void *p = evs[i].data.ptr;
			if (p == &s->lfd) {
				accept_all(s);
				continue;
			}
			if (p == &s->wfd) {
				take_done(s);
				continue;
			}
			struct conn *c = p;
			uint32_t e = evs[i].events;
			if (c->closed)
				continue;
			if (c->st == C_WORK) {
				/* The peer is gone while a worker has it (only HUP and ERR are reported now): close when it
				 * comes back. */
				if (e & (EPOLLHUP | EPOLLERR)) {
					epoll_ctl(s->efd, EPOLL_CTL_DEL, c->fd, NULL);
					c->in_epoll = false;
					c->dead = true;
				}
				continue;
			}
			if (e & EPOLLERR) {
				conn_close(s, c);
				continue;
			}
			if (c->st == C_WRITE)
				write_out(s, c);
			else if (c->st == C_BODY)
				read_body(s, c);
			else if (c->st == C_HEAD)
				read_head(s, c);
		}
		int64_t now = now_ms();
		if (now - last_check >= 100) {
			last_check = now;
			check_deadlines(s);
		}
		bury(s);
	}
	return NULL;
}

/* A streamed answer: the head goes out from here (a few hundred bytes into an empty socket buffer; waited for up to
 * write_timeout), then the handler's stream gets a descriptor of its own for the socket and the I/O thread closes
 * the connection's (without a shutdown, which would end the stream too). */
static void hand_over(struct sl_http_server *s, struct conn *c, struct sl_http_resp *rs, bool head_only)
{
	if (head_only || c->st != C_WORK) {
		rs->stream(rs->stream_arg, -1);
		return; /* a HEAD gets the head through the normal path */
	}
	int64_t deadline = now_ms() + s->conf.write_timeout_ms;
	while (c->outoff < c->outlen) {
		ssize_t w = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
		if (w > 0) {
			c->outoff += (size_t)w;
			continue;
		}
		if (w < 0 && (errno == EAGAIN || errno == EINTR) && now_ms() < deadline) {
			struct pollfd pf = {.fd = c->fd, .events = POLLOUT};
			poll(&pf, 1, 100);
			continue;
		}
		break;
	}
	int fd = c->outoff == c->outlen ? fcntl(c->fd, F_DUPFD_CLOEXEC, 0) : -1;
	c->detached = true; /* either way this connection is done: its answer went out, or the client is not taking it */
	rs->stream(rs->stream_arg, fd);
}

static void *worker_main(void *arg)
{
	struct sl_http_server *s = arg;
	for (;;) {
		pthread_mutex_lock(&s->mu);
		while (!s->qhead && !atomic_load(&s->stop))
			pthread_cond_wait(&s->cv, &s->mu);
		struct conn *c = s->qhead;
		if (!c) {
			pthread_mutex_unlock(&s->mu);
			return NULL;
		}
		s->qhead = c->qnext;
		if (!s->qhead)
			s->qtail = NULL;
		pthread_mutex_unlock(&s->mu);

		struct sl_http_req rq = {
			.method = c->head.method,
			.target = c->head.target,
			.path = c->path,
			.query = c->query,
			.body = c->body.data,
			.len = c->body.len,
			.role = c->v.role,
			.head = &c->head,
		};
		struct sl_http_resp rs = {.status = 200, .ctype = "application/json"};
		sl_buf_init(&rs.body);
		s->o.handler(s->o.ctx, &rq, &rs);
		if (!sl_buf_ok(&rs.body))
			sl_http_error(&rs, 500, "out of memory");
		bool head_only = !strcmp(c->head.method, "HEAD");
		serialize(s, c, &rs, head_only);
		sl_buf_free(&rs.body);
		release_body(s, c); /* the body's memory goes back now, not when the client reads the answer */
		if (rs.stream)
			hand_over(s, c, &rs, head_only);

		pthread_mutex_lock(&s->mu);
		c->qnext = s->done;
		s->done = c;
		pthread_mutex_unlock(&s->mu);
		uint64_t one = 1;
		ssize_t w = write(s->wfd, &one, sizeof one);
		(void)w;
	}
}

static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int add_host(struct sl_http_server *s, const char *h)
{
	if (!h || !*h)
		return 0;
	char **n = realloc(s->hosts, (s->nhosts + 1) * sizeof *n);
	if (!n)
		return -1;
	s->hosts = n;
	if (!(s->hosts[s->nhosts] = strdup(h)))
		return -1;
	for (char *p = s->hosts[s->nhosts]; *p; p++)
		*p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
	s->nhosts++;
	return 0;
}

static void free_server(struct sl_http_server *s)
{
	for (size_t i = 0; i < s->nhosts; i++)
		free(s->hosts[i]);
	free(s->hosts);
	if (s->lfd >= 0)
		close(s->lfd);
	if (s->efd >= 0)
		close(s->efd);
	if (s->wfd >= 0)
		close(s->wfd);
	free(s->workers);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	free(s);
}

int sl_http_start(const struct sl_http_server_opts *o, struct sl_http_server **out, struct sl_err *err)
{
	struct sl_http_server *s = calloc(1, sizeof *s);
	if (!s)
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	s->o = *o;
	s->lfd = s->efd = s->wfd = -1;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	if (o->conf)
		s->conf = *o->conf;
	else
		sl_http_conf_defaults(&s->conf);
	if (s->o.max_body <= 0)
		s->o.max_body = 1 << 20;
	if (s->o.max_target <= 0)
		s->o.max_target = 8192;
	if (s->conf.max_header < s->o.max_target + 64)
		s->conf.max_header = s->o.max_target + 1024; /* a target that max_target allows must fit the head */
	raise_nofile();
	/* Large bodies in their own mappings, so their memory goes back to the system when they are freed (glibc's
	 * sliding threshold would otherwise keep them in the heap after the first). */
	mallopt(M_MMAP_THRESHOLD, 256 * 1024);

	const char *host = o->host && *o->host ? o->host : NULL;
	bool wildcard = !host || !strcmp(host, "0.0.0.0") || !strcmp(host, "::") || !strcmp(host, "*");
	for (size_t i = 0; i < s->conf.allowed_hosts.n; i++)
		if (add_host(s, s->conf.allowed_hosts.v[i])) {
			free_server(s);
			return sl_err_set(err, SL_ENOMEM, "out of memory");
		}
	if (!wildcard && add_host(s, host)) {
		free_server(s);
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	}
	if (wildcard) { /* the names other hosts reach a wildcard listener by: this host's own */
		char hn[256] = "";
		if (gethostname(hn, sizeof hn - 1) == 0 && hn[0])
			add_host(s, hn);
	}
	s->policy = (struct sl_http_policy){
		.auth = o->auth,
		.hosts = (const char *const *)s->hosts,
		.nhosts = s->nhosts,
		.octet_stream = o->octet_stream,
		.open_paths = o->open_paths,
		.auth_cookie = o->auth_cookie,
	};

	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai = NULL;
	char port[16];
	snprintf(port, sizeof port, "%d", o->port);
	if (getaddrinfo(wildcard ? "0.0.0.0" : host, port, &hints, &ai) || !ai) {
		free_server(s);
		return sl_err_set(err, SL_ECONFIG, "%s: cannot resolve listen address '%s'", o->name, host ? host : "");
	}
	s->lfd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	if (s->lfd >= 0)
		setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (s->lfd < 0 || bind(s->lfd, ai->ai_addr, ai->ai_addrlen) || listen(s->lfd, 4096)) {
		int e = errno;
		freeaddrinfo(ai);
		free_server(s);
		return sl_err_set(err, SL_EIO, "%s: cannot listen on %s:%d: %s", o->name, host ? host : "*", o->port,
				  strerror(e));
	}
	freeaddrinfo(ai);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	getsockname(s->lfd, (struct sockaddr *)&ss, &sl);
	s->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
						 : ((struct sockaddr_in *)&ss)->sin_port);
	s->efd = epoll_create1(EPOLL_CLOEXEC);
	s->wfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	struct epoll_event le = {.events = EPOLLIN, .data.ptr = &s->lfd}, we = {.events = EPOLLIN, .data.ptr = &s->wfd};
	if (s->efd < 0 || s->wfd < 0 || epoll_ctl(s->efd, EPOLL_CTL_ADD, s->lfd, &le) ||
	    epoll_ctl(s->efd, EPOLL_CTL_ADD, s->wfd, &we)) {
		free_server(s);
		return sl_err_set(err, SL_EIO, "%s: epoll: %s", o->name, strerror(errno));
	}
	s->nworkers = (size_t)(s->conf.workers > 0 ? s->conf.workers : 4);
	s->workers = calloc(s->nworkers, sizeof *s->workers);
	if (!s->workers) {
		free_server(s);
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < s->nworkers; i++)
		if (pthread_create(&s->workers[i], NULL, worker_main, s)) {
			atomic_store(&s->stop, 1);
			pthread_mutex_lock(&s->mu);
			pthread_cond_broadcast(&s->cv);
			pthread_mutex_unlock(&s->mu);
			for (size_t j = 0; j < i; j++)
				pthread_join(s->workers[j], NULL);
			free_server(s);
			return sl_err_set(err, SL_EIO, "%s: cannot start a worker thread", o->name);
		}
	if (pthread_create(&s->io, NULL, io_main, s)) {
		atomic_store(&s->stop, 1);
		pthread_mutex_lock(&s->mu);
		pthread_cond_broadcast(&s->cv);
		pthread_mutex_unlock(&s->mu);
		for (size_t j = 0; j < s->nworkers; j++)
			pthread_join(s->workers[j], NULL);
		free_server(s);
		return sl_err_set(err, SL_EIO, "%s: cannot start the I/O thread", o->name);
	}
	*out = s;
	return 0;
}

int sl_http_port(const struct sl_http_server *s)
{
	return s->port;
}

void sl_http_stats(struct sl_http_server *s, struct sl_http_stats *st)
{
	st->accepted = atomic_load(&s->accepted);
	st->requests = atomic_load(&s->requests);
	st->refused_limit = atomic_load(&s->refused_limit);
	st->evicted = atomic_load(&s->evicted);
	st->timeouts = atomic_load(&s->timeouts);
	st->buffered_bytes = atomic_load(&s->buffered);
	st->open = s->nconns;
}

void sl_http_stop(struct sl_http_server *s)
{
	if (!s)
		return;
	atomic_store(&s->stop, 1);
	pthread_join(s->io, NULL);
	/* Workers finish the requests they hold, then find the stop flag; queued ones are dropped. */
	pthread_mutex_lock(&s->mu);
	s->qhead = s->qtail = NULL;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	for (size_t i = 0; i < s->nworkers; i++)
		pthread_join(s->workers[i], NULL);
	while (s->conns)
		conn_close(s, s->conns);
	bury(s);
	free_server(s);
}
