/* One CQL connection, driven by the session's I/O thread: a non-blocking socket (optionally TLS), the startup
 * handshake (STARTUP, SASL PLAIN, USE, REGISTER), framing with optional lz4, 32768 stream ids for pipelining,
 * per-request deadlines, and heartbeats. Frames queued during one loop iteration go out in one write. A request that
 * timed out keeps its stream id reserved ("orphan") until its late answer arrives, so ids are never reused while
 * the server may still answer on them. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "core/assert.h"
#include "core/log.h"
#include "cql/internal.h"

/* How often a host marked hung (see struct sl_cql_host) is probed with OPTIONS. */
#define HUNG_PROBE_MS 1000

#define ORPHAN ((struct sl_cql_req *)1)
#define READ_CHUNK (64 * 1024)

static void conn_epoll(struct sl_cql_conn *c, bool want_write)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | (want_write ? EPOLLOUT : 0), .data.ptr = c};
	epoll_ctl(c->s->epfd, EPOLL_CTL_MOD, c->fd, &ev);
	c->want_write = want_write;
}

struct sl_cql_conn *sl_cql_conn_open(struct sl_cql_session *s, int host)
{
	struct sl_cql_host *h = s->hosts[host];
	struct sl_cql_conn *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->s = s;
	c->host = host;
	c->fd = -1;
	c->streams = calloc(SL_CQL_MAX_STREAMS, sizeof *c->streams);
	c->free_ids = malloc(SL_CQL_MAX_STREAMS * sizeof *c->free_ids);
	if (!c->streams || !c->free_ids)
		goto fail;
	/* Pop order 1, 2, ...: low ids first; 0 is used by the handshake. */
	for (int i = 0; i < SL_CQL_MAX_STREAMS - 1; i++)
		c->free_ids[i] = (int16_t)(SL_CQL_MAX_STREAMS - 1 - i);
	c->nfree = SL_CQL_MAX_STREAMS - 1;
	sl_buf_init(&c->rbuf);
	sl_buf_init(&c->wbuf);
	c->fd = socket(h->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		goto fail;
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	setsockopt(c->fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
	if (connect(c->fd, (struct sockaddr *)&h->addr, h->addrlen) < 0 && errno != EINPROGRESS) {
		snprintf(h->last_error, sizeof h->last_error, "connect to %s: %s", h->name, strerror(errno));
		goto fail;
	}
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP, .data.ptr = c};
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0)
		goto fail;
	c->want_write = true;
	c->state = SL_CQL_CONN_CONNECTING;
	c->opened_ms = c->last_read_ms = c->last_write_ms = sl_cql_now_ms();
	atomic_fetch_add(&s->st_connections, 1);
	return c;
fail:
	if (c->fd >= 0)
		close(c->fd);
	free(c->streams);
	free(c->free_ids);
	free(c);
	return NULL;
}

void sl_cql_conn_free(struct sl_cql_conn *c)
{
	if (!c)
		return;
	if (c->ssl)
		SSL_free(c->ssl);
	if (c->fd >= 0)
		close(c->fd);
	sl_buf_free(&c->rbuf);
	sl_buf_free(&c->wbuf);
	free(c->streams);
	free(c->free_ids);
	free(c);
}

/* Queues one frame; the body is compressed when the connection negotiated lz4 (STARTUP never is). */
static int write_frame(struct sl_cql_conn *c, int16_t stream, int opcode, const void *body, size_t len)
{
	size_t start = c->wbuf.len;
	uint8_t hdr[SL_CQL_HEADER_LEN] = {0};
	struct sl_cql_header h = {.version = SL_CQL_PROTO_VERSION, .stream = stream, .opcode = (uint8_t)opcode};
	sl_buf_append(&c->wbuf, hdr, sizeof hdr);
	if (c->compress && opcode != SL_CQL_OP_STARTUP) {
		h.flags |= SL_CQL_FLAG_COMPRESSION;
		if (sl_cql_lz4_compress(&c->wbuf, body, len) < 0)
			c->wbuf.oom = true;
	} else {
		sl_buf_append(&c->wbuf, body, len);
	}
	if (!sl_buf_ok(&c->wbuf)) {
		c->wbuf.len = start;
		c->wbuf.oom = false;
		return SL_ENOMEM;
	}
	h.length = (uint32_t)(c->wbuf.len - start - SL_CQL_HEADER_LEN);
	sl_cql_header_encode((uint8_t *)c->wbuf.data + start, &h);
	c->last_write_ms = sl_cql_now_ms();
	sl_cql_mark_dirty(c->s, c);
	return 0;
}

static void setup_send(struct sl_cql_conn *c, int opcode, struct sl_buf *body)
{
	if (write_frame(c, 0, opcode, body->data, body->len) < 0)
		sl_cql_conn_close(c, SL_ENOMEM, "out of memory during the handshake");
	sl_buf_free(body);
}

static void start_startup(struct sl_cql_conn *c)
{
	struct sl_buf b;
	sl_buf_init(&b);
	sl_cql_enc_startup(&b, c->s->o.compression);
	c->state = SL_CQL_CONN_STARTUP;
	setup_send(c, SL_CQL_OP_STARTUP, &b);
	/* lz4 applies to everything after STARTUP, in both directions (the server marks its frames). */
	c->compress = c->s->o.compression;
}

static void become_ready(struct sl_cql_conn *c)
{
	c->state = SL_CQL_CONN_READY;
	sl_cql_on_conn_ready(c->s, c);
}

static void after_use(struct sl_cql_conn *c)
{
	struct sl_cql_session *s = c->s;
	if (s->control < 0) {
		struct sl_buf b;
		sl_buf_init(&b);
		sl_cql_enc_register(&b);
		c->state = SL_CQL_CONN_REGISTER;
		c->control = true;
		s->control = c->host;
		setup_send(c, SL_CQL_OP_REGISTER, &b);
		return;
	}
	become_ready(c);
}

static void after_auth(struct sl_cql_conn *c)
{
	struct sl_cql_session *s = c->s;
	if (s->keyspace[0]) {
		char q[160];
		snprintf(q, sizeof q, "USE \"%s\"", s->keyspace);
		struct sl_buf b;
		sl_buf_init(&b);
		struct sl_cql_qparams qp = {.consistency = SL_CQL_ONE, .serial_consistency = -1, .paging_state_len = -1,
					    .timestamp = INT64_MIN};
		sl_cql_enc_query(&b, q, strlen(q), &qp);
		c->state = SL_CQL_CONN_USE;
		setup_send(c, SL_CQL_OP_QUERY, &b);
		return;
	}
	after_use(c);
}

static void setup_frame(struct sl_cql_conn *c, const struct sl_cql_header *h, const uint8_t *body, size_t len)
{
	struct sl_cql_session *s = c->s;
	struct sl_cql_host *host = s->hosts[c->host];
	struct sl_cql_rd r;
	sl_cql_rd_init(&r, body, len);
	struct sl_err e = {0};
	if (sl_cql_decode_prefix(&r, h->flags, NULL, NULL, NULL, NULL, &e) < 0) {
		sl_cql_conn_close(c, SL_EPROTO, e.msg);
		return;
	}
	if (h->opcode == SL_CQL_OP_ERROR) {
		struct sl_cql_error er;
		char msg[512], desc[480];
		if (sl_cql_decode_error(&r, &er, &e) < 0) {
			sl_cql_conn_close(c, SL_EPROTO, e.msg);
			return;
		}
		sl_cql_error_describe(&er, desc, sizeof desc);
		const char *phase = c->state == SL_CQL_CONN_AUTH ? "authentication"
				    : c->state == SL_CQL_CONN_USE ? "USE keyspace"
				    : c->state == SL_CQL_CONN_REGISTER ? "REGISTER"
								     : "STARTUP";
		snprintf(msg, sizeof msg, "%s failed: %s", phase, desc);
		sl_cql_conn_close(c, er.code == SL_CQL_ERR_BAD_CREDENTIALS ? SL_EAUTH : SL_ESERVER, msg);
		return;
	}
	switch (c->state) {
	case SL_CQL_CONN_STARTUP:
		if (h->opcode == SL_CQL_OP_READY) {
			after_auth(c);
		} else if (h->opcode == SL_CQL_OP_AUTHENTICATE) {
			char cls[200];
			if (sl_cql_decode_authenticate(&r, cls, sizeof cls, &e) < 0) {
				sl_cql_conn_close(c, SL_EPROTO, e.msg);
				return;
			}
			if (!s->o.username) {
				char msg[400];
				snprintf(msg, sizeof msg, "server requires authentication (%s); set a username and password",
					 cls);
				sl_cql_conn_close(c, SL_EAUTH, msg);
				return;
			}
			struct sl_buf b;
			sl_buf_init(&b);
			sl_cql_enc_auth_plain(&b, s->o.username, s->o.password ? s->o.password : "");
			c->state = SL_CQL_CONN_AUTH;
			setup_send(c, SL_CQL_OP_AUTH_RESPONSE, &b);
		} else {
			sl_cql_conn_close(c, SL_EPROTO, "unexpected answer to STARTUP");
		}
		return;
	case SL_CQL_CONN_AUTH:
		if (h->opcode == SL_CQL_OP_AUTH_SUCCESS)
			after_auth(c);
		else
			sl_cql_conn_close(c, SL_EAUTH, "server sent an AUTH_CHALLENGE; only SASL PLAIN is supported");
		return;
	case SL_CQL_CONN_USE:
		if (h->opcode == SL_CQL_OP_RESULT)
			after_use(c);
		else
			sl_cql_conn_close(c, SL_EPROTO, "unexpected answer to USE");
		return;
	case SL_CQL_CONN_REGISTER:
		if (h->opcode == SL_CQL_OP_READY) {
			sl_debug("cql", "control connection registered for events host=%s", host->name);
			become_ready(c);
		} else {
			sl_cql_conn_close(c, SL_EPROTO, "unexpected answer to REGISTER");
		}
		return;
	default:
		sl_cql_conn_close(c, SL_EPROTO, "frame before the handshake finished");
	}
}

static void unlink_req(struct sl_cql_conn *c, struct sl_cql_req *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		c->head = r->next;
	if (r->next)
		r->next->prev = r->prev;
	else
		c->tail = r->prev;
	r->prev = r->next = NULL;
}

void sl_cql_conn_abandon(struct sl_cql_conn *c, struct sl_cql_req *r)
{
	unlink_req(c, r);
	c->streams[r->stream] = ORPHAN;
	c->orphans++;
	c->inflight--;
	r->conn = NULL;
}

static void free_stream(struct sl_cql_conn *c, int stream)
{
	c->streams[stream] = NULL;
	c->free_ids[c->nfree++] = (int16_t)stream;
}

int sl_cql_conn_send(struct sl_cql_conn *c, struct sl_cql_req *r)
{
	if (c->state != SL_CQL_CONN_READY)
		return SL_ECLOSED;
	if (c->nfree == 0)
		return SL_EFULL;
	int stream = c->free_ids[--c->nfree];
	int rc = write_frame(c, (int16_t)stream, r->opcode, r->body.data, r->body.len);
	if (rc < 0) {
		c->free_ids[c->nfree++] = (int16_t)stream;
		return rc;
	}
	c->streams[stream] = r;
	r->stream = stream;
	r->conn = c;
	r->prev = c->tail;
	r->next = NULL;
	if (c->tail)
		c->tail->next = r;
	else
		c->head = r;
	c->tail = r;
	c->inflight++;
	if (r->deadline_ms && (!c->next_deadline_ms || r->deadline_ms < c->next_deadline_ms))
		c->next_deadline_ms = r->deadline_ms;
	/* A user's idempotent request with another host left in its plan may be sent there too if this one is slow. */
	int sd = c->s->o.speculative_delay_ms;
	if (sd > 0 && r->fut && r->idempotent && !r->spec_copy && !r->spec && r->plan_pos + 1 < r->nplan) {
		r->spec_at_ms = sl_cql_now_ms() + (uint64_t)sd;
		if (!c->next_deadline_ms || r->spec_at_ms < c->next_deadline_ms)
			c->next_deadline_ms = r->spec_at_ms;
	}
	return 0;
}

static void dispatch_frame(struct sl_cql_conn *c, const struct sl_cql_header *h, uint8_t *body, size_t len)
{
	if (c->state != SL_CQL_CONN_READY) {
		setup_frame(c, h, body, len);
		free(body);
		return;
	}
	if (h->stream < 0) {
		if (h->opcode == SL_CQL_OP_EVENT) {
			struct sl_cql_rd r;
			struct sl_cql_event ev;
			struct sl_err e = {0};
			sl_cql_rd_init(&r, body, len);
			if (sl_cql_decode_prefix(&r, h->flags, NULL, NULL, NULL, NULL, &e) == 0 &&
			    sl_cql_decode_event(&r, &ev, &e) == 0)
				sl_cql_on_event(c->s, &ev);
			else
				sl_warn("cql", "ignoring malformed event host=%s error=\"%s\"", c->s->hosts[c->host]->name,
					e.msg);
		}
		free(body);
		return;
	}
	struct sl_cql_req *r = c->streams[h->stream];
	if (r == ORPHAN) {
		c->orphans--;
		free_stream(c, h->stream);
		free(body);
		return;
	}
	if (!r) {
		sl_warn("cql", "answer on unused stream %d host=%s; ignored", h->stream, c->s->hosts[c->host]->name);
		free(body);
		return;
	}
	unlink_req(c, r);
	free_stream(c, h->stream);
	c->inflight--;
	r->conn = NULL;
	sl_cql_on_response(c->s, c, r, h, body, len);
}

/* On a TLS failure, tls_why gets OpenSSL's reason (with TLS 1.3 a server that refuses the client's certificate
 * says so in an alert that arrives at the first read, after the handshake looked complete). */
static ssize_t conn_read(struct sl_cql_conn *c, void *p, size_t n, bool *again, char *tls_why, size_t whysz)
{
	*again = false;
	if (c->ssl) {
		int got = SSL_read(c->ssl, p, (int)n);
		if (got > 0)
			return got;
		int err = SSL_get_error(c->ssl, got);
		if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
			*again = true;
			return -1;
		}
		if (err == SSL_ERROR_ZERO_RETURN)
			return 0;
		unsigned long e = ERR_get_error();
		if (e && err == SSL_ERROR_SSL) {
			char ebuf[200];
			ERR_error_string_n(e, ebuf, sizeof ebuf);
			snprintf(tls_why, whysz, "TLS error: %s", ebuf);
		}
		ERR_clear_error();
		errno = err == SSL_ERROR_SYSCALL && !e ? ECONNRESET : EPROTO;
		return -1;
	}
	ssize_t got = read(c->fd, p, n);
	if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		*again = true;
	return got;
}

static void on_readable(struct sl_cql_conn *c)
{
	for (int iter = 0; iter < 32; iter++) {
		char *d = sl_buf_reserve(&c->rbuf, READ_CHUNK);
		if (!d) {
			sl_cql_conn_close(c, SL_ENOMEM, "out of memory reading a frame");
			return;
		}
		bool again;
		char tls_why[240] = "";
		ssize_t n = conn_read(c, d, READ_CHUNK, &again, tls_why, sizeof tls_why);
		if (n > 0) {
			c->rbuf.len += (size_t)n;
			c->last_read_ms = sl_cql_now_ms();
			struct sl_cql_host *hh = c->s->hosts[c->host];
			if (hh->hung_since_ms) {
				sl_info("cql", "host answers again, back in the query plans host=%s after_ms=%llu",
					hh->name, (unsigned long long)(c->last_read_ms - hh->hung_since_ms));
				hh->hung_since_ms = 0;
			}
			if ((size_t)n < READ_CHUNK && !c->ssl)
				break;
			continue;
		}
		if (again)
			break;
		char msg[260];
		snprintf(msg, sizeof msg, "%s", *tls_why ? tls_why : n == 0 ? "connection closed by the server" : strerror(errno));
		sl_cql_conn_close(c, *tls_why ? SL_EAUTH : SL_ECLOSED, msg);
		return;
	}
	while (c->state != SL_CQL_CONN_CLOSED && c->rbuf.len - c->roff >= SL_CQL_HEADER_LEN) {
		struct sl_cql_header h;
		struct sl_err e = {0};
		const uint8_t *p = (const uint8_t *)c->rbuf.data + c->roff;
		if (sl_cql_header_decode(p, &h, &e) < 0 || !(h.version & SL_CQL_RESPONSE_BIT)) {
			sl_cql_conn_close(c, SL_EPROTO, e.msg[0] ? e.msg : "frame without the response bit");
			return;
		}
		if (c->rbuf.len - c->roff - SL_CQL_HEADER_LEN < h.length)
			break;
		const uint8_t *bp = p + SL_CQL_HEADER_LEN;
		uint8_t *body;
		size_t blen;
		if (h.flags & SL_CQL_FLAG_COMPRESSION) {
			if (sl_cql_lz4_decompress(bp, h.length, &body, &blen, &e) < 0) {
				sl_cql_conn_close(c, SL_EPROTO, e.msg);
				return;
			}
		} else {
			blen = h.length;
			body = malloc(blen ? blen : 1);
			if (!body) {
				sl_cql_conn_close(c, SL_ENOMEM, "out of memory for a response body");
				return;
			}
			memcpy(body, bp, blen);
		}
		c->roff += SL_CQL_HEADER_LEN + h.length;
		SL_ASSERT(c->roff <= c->rbuf.len); /* the whole frame was in the buffer */
		dispatch_frame(c, &h, body, blen);
	}
	if (c->state == SL_CQL_CONN_CLOSED)
		return;
	if (c->roff == c->rbuf.len) {
		c->roff = 0;
		c->rbuf.len = 0;
	} else if (c->roff > (1u << 20) || c->roff > c->rbuf.len / 2) {
		memmove(c->rbuf.data, c->rbuf.data + c->roff, c->rbuf.len - c->roff);
		c->rbuf.len -= c->roff;
		c->roff = 0;
	}
}

void sl_cql_conn_flush(struct sl_cql_conn *c)
{
	c->dirty = false;
	if (c->state == SL_CQL_CONN_CLOSED || c->state == SL_CQL_CONN_CONNECTING || c->state == SL_CQL_CONN_TLS)
		return;
	while (c->woff < c->wbuf.len) {
		size_t n = c->wbuf.len - c->woff;
		ssize_t w;
		if (c->ssl) {
			int got = SSL_write(c->ssl, c->wbuf.data + c->woff, (int)(n > INT32_MAX ? INT32_MAX : n));
			if (got <= 0) {
				int err = SSL_get_error(c->ssl, got);
				if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) {
					conn_epoll(c, true);
					return;
				}
				sl_cql_conn_close(c, SL_EIO, "TLS write failed");
				return;
			}
			w = got;
		} else {
			w = write(c->fd, c->wbuf.data + c->woff, n);
			if (w < 0) {
				if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
					if (!c->want_write)
						conn_epoll(c, true);
					return;
				}
				char msg[200];
				snprintf(msg, sizeof msg, "write: %s", strerror(errno));
				sl_cql_conn_close(c, SL_ECLOSED, msg);
				return;
			}
		}
		c->woff += (size_t)w;
	}
	c->woff = 0;
	c->wbuf.len = 0;
	if (c->want_write)
		conn_epoll(c, false);
}

/* ---- TLS ---- */

int sl_cql_tls_init(struct sl_cql_session *s, struct sl_err *e)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		return sl_err_set(e, SL_ENOMEM, "TLS: SSL_CTX_new failed");
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* The write buffer may move between a short write and its retry. */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* The node's certificate is always verified: against tls_ca_file, else the system's CA store (before, no
	 * tls_ca_file meant no verification at all, which a man in the middle would welcome). */
	if (s->o.tls_ca_file ? SSL_CTX_load_verify_locations(ctx, s->o.tls_ca_file, NULL) != 1
			     : SSL_CTX_set_default_verify_paths(ctx) != 1) {
		char eb[200];
		ERR_error_string_n(ERR_get_error(), eb, sizeof eb);
		SSL_CTX_free(ctx);
		return sl_err_set(e, SL_ECONFIG, "TLS: cannot load %s %s: %s", s->o.tls_ca_file ? "CA file" : "the system's CA store",
				  s->o.tls_ca_file ? s->o.tls_ca_file : "", eb);
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (s->o.tls_cert_file &&
	    (SSL_CTX_use_certificate_chain_file(ctx, s->o.tls_cert_file) != 1 ||
	     SSL_CTX_use_PrivateKey_file(ctx, s->o.tls_key_file ? s->o.tls_key_file : s->o.tls_cert_file,
					 SSL_FILETYPE_PEM) != 1 ||
	     SSL_CTX_check_private_key(ctx) != 1)) {
		char eb[200];
		ERR_error_string_n(ERR_get_error(), eb, sizeof eb);
		SSL_CTX_free(ctx);
		return sl_err_set(e, SL_ECONFIG, "TLS: cannot load client certificate %s with key %s: %s", s->o.tls_cert_file,
				  s->o.tls_key_file ? s->o.tls_key_file : s->o.tls_cert_file, eb);
	}
	ERR_clear_error();
	s->ssl_ctx = ctx;
	return 0;
}

void sl_cql_tls_free(struct sl_cql_session *s)
{
	if (s->ssl_ctx)
		SSL_CTX_free(s->ssl_ctx);
}

static void tls_handshake(struct sl_cql_conn *c)
{
	int rc = SSL_do_handshake(c->ssl);
	if (rc == 1) {
		conn_epoll(c, false);
		start_startup(c);
		sl_cql_conn_flush(c);
		return;
	}
	int err = SSL_get_error(c->ssl, rc);
	if (err == SSL_ERROR_WANT_READ) {
		conn_epoll(c, false);
		return;
	}
	if (err == SSL_ERROR_WANT_WRITE) {
		conn_epoll(c, true);
		return;
	}
	char msg[300], ebuf[200];
	unsigned long e = ERR_get_error();
	ERR_clear_error();
	if (!e) {
		/* No TLS reason: the peer closed or reset the connection (not a TLS port, or a node going down). */
		sl_cql_conn_close(c, SL_ECLOSED, "connection closed during the TLS handshake (is this port TLS?)");
		return;
	}
	ERR_error_string_n(e, ebuf, sizeof ebuf);
	long vr = SSL_get_verify_result(c->ssl);
	snprintf(msg, sizeof msg, "TLS handshake failed: %s%s%s", ebuf, vr != X509_V_OK ? "; certificate: " : "",
		 vr != X509_V_OK ? X509_verify_cert_error_string(vr) : "");
	/* A certificate or protocol refusal does not pass by retrying. */
	sl_cql_conn_close(c, SL_EAUTH, msg);
}

static void on_connected(struct sl_cql_conn *c)
{
	int err = 0;
	socklen_t len = sizeof err;
	getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
	if (err) {
		char msg[200];
		snprintf(msg, sizeof msg, "connect: %s", strerror(err));
		sl_cql_conn_close(c, SL_ECLOSED, msg);
		return;
	}
	if (c->s->ssl_ctx) {
		SSL *ssl = SSL_new(c->s->ssl_ctx);
		if (!ssl) {
			sl_cql_conn_close(c, SL_ENOMEM, "SSL_new failed");
			return;
		}
		c->ssl = ssl;
		SSL_set_fd(ssl, c->fd);
		SSL_set_connect_state(ssl);
		struct sl_cql_host *h = c->s->hosts[c->host];
		char hostonly[256];
		snprintf(hostonly, sizeof hostonly, "%s", h->name);
		char *colon = strrchr(hostonly, ':');
		if (colon && strchr(hostonly, ':') == colon) /* host:port, not a bare IPv6 address */
			*colon = '\0';
		if (hostonly[0] == '[') { /* [v6]:port */
			memmove(hostonly, hostonly + 1, strlen(hostonly));
			char *rb = strchr(hostonly, ']');
			if (rb)
				*rb = '\0';
		}
		unsigned char ipbuf[16];
		bool is_ip = inet_pton(AF_INET, hostonly, ipbuf) == 1 || inet_pton(AF_INET6, hostonly, ipbuf) == 1;
		if (!is_ip)
			SSL_set_tlsext_host_name(ssl, hostonly); /* SNI takes names only */
		if (c->s->o.tls_verify_hostname) {
			/* An address is matched against the certificate's IP SANs, a name against its DNS SANs. */
			X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
			if (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, hostonly) != 1 : SSL_set1_host(ssl, hostonly) != 1) {
				sl_cql_conn_close(c, SL_ECONFIG, "TLS: cannot set the host name to verify");
				return;
			}
		}
		c->state = SL_CQL_CONN_TLS;
		tls_handshake(c);
		return;
	}
	conn_epoll(c, false);
	start_startup(c);
	sl_cql_conn_flush(c);
}

void sl_cql_conn_event(struct sl_cql_conn *c, uint32_t events)
{
	if (c->state == SL_CQL_CONN_CLOSED)
		return;
	if (c->state == SL_CQL_CONN_CONNECTING) {
		if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			on_connected(c);
		return;
	}
	if (c->state == SL_CQL_CONN_TLS) {
		tls_handshake(c);
		return;
	}
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		on_readable(c);
	if (c->state != SL_CQL_CONN_CLOSED && (events & EPOLLOUT))
		sl_cql_conn_flush(c);
}

void sl_cql_conn_close(struct sl_cql_conn *c, int code, const char *why)
{
	if (c->state == SL_CQL_CONN_CLOSED)
		return;
	struct sl_cql_session *s = c->s;
	bool was_ready = c->state == SL_CQL_CONN_READY;
	c->state = SL_CQL_CONN_CLOSED;
	epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	struct sl_cql_host *h = s->hosts[c->host];
	snprintf(h->last_error, sizeof h->last_error, "%s", why);
	if (was_ready && code != SL_ECANCELED)
		sl_warn("cql", "connection closed host=%s reason=\"%s\" inflight=%d", h->name, why, c->inflight);
	else
		sl_debug("cql", "connection failed host=%s reason=\"%s\"", h->name, why);
	/* Hand the in-flight requests back to the session: it retries idempotent ones elsewhere. */
	struct sl_cql_req *r = c->head;
	c->head = c->tail = NULL;
	while (r) {
		struct sl_cql_req *next = r->next;
		r->prev = r->next = NULL;
		c->streams[r->stream] = NULL;
		r->conn = NULL;
		char msg[300];
		snprintf(msg, sizeof msg, "connection to %s lost before the answer: %s", h->name, why);
		sl_cql_on_req_failed(s, r, code == SL_EAUTH ? SL_EAUTH : SL_ECLOSED, msg);
		r = next;
	}
	c->inflight = 0;
	atomic_fetch_sub(&s->st_connections, 1);
	sl_cql_on_conn_closed(s, c, why);
	c->grave_next = s->grave;
	s->grave = c;
	(void)code;
}

static void heartbeat_done(struct sl_cql_session *s, struct sl_cql_req *r, int rc, const struct sl_err *err,
			   int32_t server_code, struct sl_cql_result *res)
{
	struct sl_cql_conn *c = r->iarg;
	/* The connection may have closed meanwhile; it is still allocated (graveyard) only within this iteration, so
	 * touch it only when the request completed normally. */
	if (rc == 0 && c)
		c->heartbeat_out = false;
	sl_cql_result_free(res);
	(void)s; (void)err; (void)server_code;
}

/* Whether a host of the local data centre other than `host` has a ready connection. */
static bool other_local_up(struct sl_cql_session *s, int host)
{
	for (int i = 0; i < s->nhosts; i++)
		if (i != host && s->hosts[i]->enabled && sl_cql_host_local(s, i) && sl_cql_host_up(s, i))
			return true;
	return false;
}

void sl_cql_conn_tick(struct sl_cql_conn *c, uint64_t now)
{
	struct sl_cql_session *s = c->s;
	if (c->state == SL_CQL_CONN_CLOSED)
		return;
	if (c->state != SL_CQL_CONN_READY) {
		if (now - c->opened_ms > (uint64_t)s->o.connect_timeout_ms) {
			char msg[120];
			snprintf(msg, sizeof msg, "no handshake within %d ms (connect timeout)", s->o.connect_timeout_ms);
			sl_cql_conn_close(c, SL_ETIMEDOUT, msg);
		}
		return;
	}
	/* Walking thousands of requests in flight every tick cost the I/O thread more than their responses: walk
	 * only once the earliest deadline may have passed, and note the next earliest on the way. */
	uint64_t next_deadline = 0;
	bool walk = c->next_deadline_ms && now >= c->next_deadline_ms;
	if (walk)
		c->next_deadline_ms = 0; /* what is sent meanwhile (a retry from a callback) notes its own */
	for (struct sl_cql_req *r = walk ? c->head : NULL, *next; r; r = next) {
		next = r->next;
		if (r->spec_at_ms) {
			/* the copy goes to another host's connection: this list and `next` stay as they are */
			if (now >= r->spec_at_ms) {
				r->spec_at_ms = 0;
				sl_cql_speculate(s, r);
			} else if (!next_deadline || r->spec_at_ms < next_deadline) {
				next_deadline = r->spec_at_ms;
			}
		}
		if (r->deadline_ms && now < r->deadline_ms && (!next_deadline || r->deadline_ms < next_deadline))
			next_deadline = r->deadline_ms;
		if (r->deadline_ms && now >= r->deadline_ms) {
			unlink_req(c, r);
			c->streams[r->stream] = ORPHAN;
			c->orphans++;
			c->inflight--;
			r->conn = NULL;
			char msg[200];
			snprintf(msg, sizeof msg, "no answer from %s within %d ms (request timeout)", s->hosts[c->host]->name,
				 r->timeout_ms);
			atomic_fetch_add(&s->st_timeouts, 1);
			struct sl_cql_host *h = s->hosts[c->host];
			/* Silent for a whole (session) request timeout with this request waiting: hung, not just slow (a
			 * slow node still answers something on a busy connection). Out of the plans before the retry picks
			 * a host, but only when another local host is up to take its requests: a lone node is waited for
			 * as before. A statement's own short timeout says nothing about the host. */
			if (!h->hung_since_ms && now - c->last_read_ms >= (uint64_t)s->o.request_timeout_ms &&
			    r->timeout_ms >= s->o.request_timeout_ms && other_local_up(s, c->host)) {
				h->hung_since_ms = now;
				sl_warn("cql", "host marked down: no answer for %llu ms with requests in flight (hung?); "
					"requests go to other replicas until it answers a probe host=%s",
					(unsigned long long)(now - c->last_read_ms), h->name);
			}
			sl_cql_on_req_failed(s, r, SL_ETIMEDOUT, msg);
			if (c->state == SL_CQL_CONN_CLOSED)
				return;
		}
	}
	if (walk && next_deadline && (!c->next_deadline_ms || next_deadline < c->next_deadline_ms))
		c->next_deadline_ms = next_deadline;
	/* With speculative execution the requests of a hung host are answered by their copies and abandoned (orphans)
	 * before they time out, so the timeout above never marks it: orphans waiting and not a byte from the host for
	 * a whole request timeout say the same. */
	struct sl_cql_host *hh = s->hosts[c->host];
	if (c->orphans > 0 && !hh->hung_since_ms && now - c->last_read_ms >= (uint64_t)s->o.request_timeout_ms &&
	    s->o.speculative_delay_ms > 0 && other_local_up(s, c->host)) {
		hh->hung_since_ms = now;
		sl_warn("cql", "host marked down: no answer for %llu ms with %d abandoned requests (hung?); requests go to "
			"other replicas until it answers a probe host=%s", (unsigned long long)(now - c->last_read_ms),
			c->orphans, hh->name);
	}
	if (c->orphans > SL_CQL_MAX_STREAMS / 4) {
		sl_cql_conn_close(c, SL_ETIMEDOUT, "too many requests timed out on this connection");
		return;
	}
	/* A host marked hung gets a probe every HUNG_PROBE_MS (its answer, or any late answer, brings it back). */
	bool probe = s->hosts[c->host]->hung_since_ms && now - c->last_write_ms >= HUNG_PROBE_MS;
	if (s->o.heartbeat_interval_ms > 0 || probe) {
		if (c->heartbeat_out && now - c->last_read_ms > (uint64_t)s->o.idle_timeout_ms) {
			sl_cql_conn_close(c, SL_ETIMEDOUT, "no answer to the heartbeat (idle timeout)");
			return;
		}
		if (!c->heartbeat_out && (probe || (now - c->last_write_ms >= (uint64_t)s->o.heartbeat_interval_ms &&
						    now - c->last_read_ms >= (uint64_t)s->o.heartbeat_interval_ms))) {
			struct sl_cql_req *r = calloc(1, sizeof *r);
			if (!r)
				return;
			sl_buf_init(&r->body);
			r->opcode = SL_CQL_OP_OPTIONS;
			r->icb = heartbeat_done;
			r->iarg = c;
			r->target = -1;
			r->timeout_ms = s->o.idle_timeout_ms;
			r->deadline_ms = now + (uint64_t)s->o.idle_timeout_ms;
			snprintf(r->desc, sizeof r->desc, "OPTIONS (heartbeat)");
			if (sl_cql_conn_send(c, r) == 0)
				c->heartbeat_out = true;
			else
				sl_cql_req_free(r);
		}
	}
}
