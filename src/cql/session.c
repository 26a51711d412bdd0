/* The session's public API: options, connect (contact points, the I/O thread, waiting for the bootstrap) and
 * close, the execute/prepare entry points that user threads call (a max_inflight slot, then the submission queue
 * the I/O thread drains), their blocking forms, and stats. What happens after submission is in io.c (the loop),
 * plan.c (plans, retries, responses), topology.c (ring, events, schema agreement) and conn.c (connections, TLS). */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "cql/internal.h"
#include "cql/types.h"

void sl_cql_options_init(struct sl_cql_options *o)
{
	memset(o, 0, sizeof *o);
	o->contact_points = "127.0.0.1";
	o->port = 9042;
	o->token_aware = true;
	o->connections_per_host = 1;
	o->connect_timeout_ms = 5000;
	o->request_timeout_ms = 12000;
	o->heartbeat_interval_ms = 30000;
	o->idle_timeout_ms = 60000;
	o->reconnect_base_ms = 1000;
	o->reconnect_max_ms = 60000;
	o->schema_agreement_ms = 10000;
	o->max_inflight = 4096;
	o->consistency = SL_CQL_LOCAL_ONE;
	o->max_retries = 1;
}

/* ---- submission (any thread) ---- */

static bool on_io_thread(struct sl_cql_session *s)
{
	return s->thread_started && pthread_equal(pthread_self(), s->io_tid);
}

static void wake(struct sl_cql_session *s)
{
	uint64_t one = 1;
	ssize_t n = write(s->evfd, &one, sizeof one);
	(void)n;
}

/* Any thread: hands r to the I/O thread. */
static void enqueue(struct sl_cql_session *s, struct sl_cql_req *r)
{
	pthread_mutex_lock(&s->q_mu);
	r->qnext = NULL;
	if (s->q_tail)
		s->q_tail->qnext = r;
	else
		s->q_head = r;
	s->q_tail = r;
	bool need_wake = !s->wake_pending && !on_io_thread(s);
	if (need_wake)
		s->wake_pending = true;
	pthread_mutex_unlock(&s->q_mu);
	if (need_wake)
		wake(s);
}

/* ---- public API ---- */

static char *dup_opt(const char *v, char **pool, size_t *used, size_t cap)
{
	if (!v)
		return NULL;
	size_t n = strlen(v) + 1;
	if (*used + n > cap)
		return NULL;
	char *d = *pool + *used;
	memcpy(d, v, n);
	*used += n;
	return d;
}

static int parse_contacts(struct sl_cql_session *s, struct sl_err *e)
{
	char *list = strdup(s->o.contact_points ? s->o.contact_points : "127.0.0.1");
	if (!list)
		return sl_err_set(e, SL_ENOMEM, "out of memory");
	int rc = 0;
	char *save = NULL;
	for (char *tok = strtok_r(list, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
		char host[256], port[16];
		snprintf(port, sizeof port, "%d", s->o.port);
		if (tok[0] == '[') {
			char *end = strchr(tok, ']');
			if (!end) {
				rc = sl_err_set(e, SL_ECONFIG, "contact point '%s': missing ']'", tok);
				break;
			}
			snprintf(host, sizeof host, "%.*s", (int)(end - tok - 1), tok + 1);
			if (end[1] == ':')
				snprintf(port, sizeof port, "%s", end + 2);
		} else {
			char *colon = strchr(tok, ':');
			if (colon && !strchr(colon + 1, ':')) {
				snprintf(host, sizeof host, "%.*s", (int)(colon - tok), tok);
				snprintf(port, sizeof port, "%s", colon + 1);
			} else {
				snprintf(host, sizeof host, "%s", tok);
			}
		}
		struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
		int g = getaddrinfo(host, port, &hints, &ai);
		if (g != 0) {
			rc = sl_err_set(e, SL_ENOTFOUND, "contact point '%s': %s", tok, gai_strerror(g));
			break;
		}
		for (struct addrinfo *p = ai; p; p = p->ai_next) {
			int h = sl_cql_add_host(s, (struct sockaddr_storage *)p->ai_addr, p->ai_addrlen);
			if (h >= 0) {
				s->hosts[h]->contact = true;
				s->hosts[h]->enabled = true;
			}
		}
		freeaddrinfo(ai);
	}
	free(list);
	if (rc == 0 && s->nhosts == 0)
		rc = sl_err_set(e, SL_ECONFIG, "no contact points given");
	return rc;
}

static void session_free(struct sl_cql_session *s)
{
	for (int i = 0; i < s->nhosts; i++) {
		free(s->hosts[i]->conns);
		free(s->hosts[i]);
	}
	while (s->prepared) {
		struct sl_cql_prepared *p = s->prepared;
		s->prepared = p->next;
		sl_cql_prepared_free(p);
	}
	free(s->ring);
	free(s->kss);
	sl_cql_tls_free(s);
	if (s->epfd >= 0)
		close(s->epfd);
	if (s->evfd >= 0)
		close(s->evfd);
	pthread_mutex_destroy(&s->q_mu);
	pthread_mutex_destroy(&s->p_mu);
	pthread_cond_destroy(&s->q_cv);
	free(s->strs);
	free(s);
}

int sl_cql_session_connect(struct sl_cql_session **out, const struct sl_cql_options *o, struct sl_err *e)
{
	*out = NULL;
	struct sl_cql_session *s = calloc(1, sizeof *s);
	if (!s)
		return sl_err_set(e, SL_ENOMEM, "out of memory");
	s->o = *o;
	s->epfd = s->evfd = -1;
	s->control = -1;
	s->peers_table = "system.peers_v2";
	pthread_mutex_init(&s->q_mu, NULL);
	pthread_mutex_init(&s->p_mu, NULL);
	pthread_cond_init(&s->q_cv, NULL);
	/* Own copies of the option strings: the caller's may not outlive the session. */
	size_t cap = 64;
	const char *strs[] = {o->contact_points, o->keyspace, o->username, o->password, o->tls_ca_file,
			      o->tls_cert_file, o->tls_key_file, o->local_dc};
	for (size_t i = 0; i < sizeof strs / sizeof *strs; i++)
		cap += strs[i] ? strlen(strs[i]) + 1 : 0;
	s->strs = malloc(cap);
	size_t used = 0;
	if (!s->strs) {
		session_free(s);
		return sl_err_set(e, SL_ENOMEM, "out of memory");
	}
	s->o.contact_points = dup_opt(o->contact_points, &s->strs, &used, cap);
	s->o.keyspace = dup_opt(o->keyspace, &s->strs, &used, cap);
	s->o.username = dup_opt(o->username, &s->strs, &used, cap);
	s->o.password = dup_opt(o->password, &s->strs, &used, cap);
	s->o.tls_ca_file = dup_opt(o->tls_ca_file, &s->strs, &used, cap);
	s->o.tls_cert_file = dup_opt(o->tls_cert_file, &s->strs, &used, cap);
	s->o.tls_key_file = dup_opt(o->tls_key_file, &s->strs, &used, cap);
	s->o.local_dc = dup_opt(o->local_dc, &s->strs, &used, cap);
	if (s->o.port <= 0)
		s->o.port = 9042;
	if (s->o.connections_per_host <= 0)
		s->o.connections_per_host = 1;
	if (s->o.max_inflight <= 0)
		s->o.max_inflight = 4096;
	if (s->o.request_timeout_ms <= 0)
		s->o.request_timeout_ms = 12000;
	if (s->o.connect_timeout_ms <= 0)
		s->o.connect_timeout_ms = 5000;
	if (s->o.idle_timeout_ms <= 0)
		s->o.idle_timeout_ms = 60000;
	if (s->o.reconnect_max_ms <= 0)
		s->o.reconnect_max_ms = 60000;
	if (s->o.keyspace)
		snprintf(s->keyspace, sizeof s->keyspace, "%s", s->o.keyspace);
	if (s->o.local_dc)
		snprintf(s->local_dc, sizeof s->local_dc, "%s", s->o.local_dc);
	int rc = parse_contacts(s, e);
	if (rc == 0 && s->o.tls)
		rc = sl_cql_tls_init(s, e);
	if (rc == 0) {
		s->epfd = epoll_create1(EPOLL_CLOEXEC);
		s->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
		if (s->epfd < 0 || s->evfd < 0 || epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->evfd, &ev) < 0)
			rc = sl_err_set(e, SL_EIO, "epoll/eventfd: %s", strerror(errno));
	}
	if (rc == 0) {
		if (pthread_create(&s->thread, NULL, sl_cql_io_main, s) != 0)
			rc = sl_err_set(e, SL_EIO, "cannot start the CQL I/O thread");
		else
			s->thread_started = true;
		s->io_tid = s->thread;
	}
	if (rc < 0) {
		session_free(s);
		return rc;
	}
	/* Wait for the first connection, the handshake and the ring; each contact point gets its connect timeout. */
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (s->o.connect_timeout_ms * (s->nhosts + 1) + s->o.request_timeout_ms) / 1000 + 1;
	pthread_mutex_lock(&s->q_mu);
	while (s->boot_state == 0)
		if (pthread_cond_timedwait(&s->q_cv, &s->q_mu, &ts) != 0)
			break;
	int st = s->boot_state;
	struct sl_err be = s->boot_err;
	pthread_mutex_unlock(&s->q_mu);
	if (st != 1) {
		if (st == 0)
			sl_err_set(e, SL_ETIMEDOUT, "connecting to %s: no ready connection in time", s->o.contact_points);
		else
			sl_err_set(e, be.code, "connecting to %s: %s", s->o.contact_points, be.msg);
		sl_cql_session_close(s);
		return e ? e->code : SL_ECLOSED;
	}
	sl_info("cql", "session connected contact_points=%s local_dc=%s compression=%s tls=%s", s->o.contact_points,
		s->local_dc, s->o.compression ? "lz4" : "none", s->o.tls ? "on" : "off");
	*out = s;
	return 0;
}

void sl_cql_session_close(struct sl_cql_session *s)
{
	if (!s)
		return;
	if (s->thread_started) {
		atomic_store(&s->stop, true);
		wake(s);
		pthread_join(s->thread, NULL);
	}
	session_free(s);
}

/* Takes a max_inflight slot: blocks a user thread, refuses on the I/O thread (a callback must not wait on itself). */
static int acquire_slot(struct sl_cql_session *s, int timeout_ms)
{
	pthread_mutex_lock(&s->q_mu);
	if (s->inflight >= s->o.max_inflight) {
		if (on_io_thread(s)) {
			pthread_mutex_unlock(&s->q_mu);
			return SL_EFULL;
		}
		struct timespec ts;
		sl_deadline(&ts, CLOCK_REALTIME, timeout_ms);
		while (s->inflight >= s->o.max_inflight)
			if (pthread_cond_timedwait(&s->q_cv, &s->q_mu, &ts) != 0)
				break;
		if (s->inflight >= s->o.max_inflight) {
			pthread_mutex_unlock(&s->q_mu);
			return SL_ETIMEDOUT;
		}
	}
	s->inflight++;
	pthread_mutex_unlock(&s->q_mu);
	return 0;
}

static struct sl_cql_future *failed_future(int rc, const struct sl_err *e, bool retryable)
{
	struct sl_cql_future *f = sl_cql_future_new();
	if (!f)
		return NULL;
	sl_cql_future_complete(f, rc, e, -1, retryable, NULL, NULL);
	return f;
}

static struct sl_cql_future *submit(struct sl_cql_session *s, struct sl_cql_req *r)
{
	struct sl_cql_future *f = sl_cql_future_new();
	if (!f) {
		sl_cql_req_free(r);
		return NULL;
	}
	int timeout = r->timeout_ms > 0 ? r->timeout_ms : s->o.request_timeout_ms;
	int rc = acquire_slot(s, timeout);
	if (rc < 0) {
		struct sl_err e;
		sl_err_set(&e, rc, "\"%s\": %s", sl_cql_req_desc(r),
			   rc == SL_EFULL ? "too many requests in flight (max_inflight)"
					  : "no request slot freed within the request timeout");
		sl_cql_req_free(r);
		sl_cql_future_complete(f, rc, &e, -1, true, NULL, NULL);
		return f;
	}
	r->fut = f;
	r->counted = true;
	atomic_fetch_add(&s->st_requests, 1);
	enqueue(s, r);
	return f;
}

struct sl_cql_future *sl_cql_session_execute(struct sl_cql_session *s, const struct sl_cql_statement *st)
{
	struct sl_err e = {0};
	struct sl_cql_req *r = sl_cql_req_new();
	if (!r) {
		sl_err_set(&e, SL_ENOMEM, "out of memory");
		return failed_future(SL_ENOMEM, &e, false);
	}
	if (sl_cql_statement_encode(st, s->o.consistency, r, &e) < 0) {
		sl_cql_req_free(r);
		return failed_future(e.code, &e, false);
	}
	return submit(s, r);
}

struct sl_cql_future *sl_cql_session_execute_batch(struct sl_cql_session *s, const struct sl_cql_batch *b)
{
	struct sl_err e = {0};
	struct sl_cql_req *r = sl_cql_req_new();
	if (!r) {
		sl_err_set(&e, SL_ENOMEM, "out of memory");
		return failed_future(SL_ENOMEM, &e, false);
	}
	if (sl_cql_batch_encode(b, s->o.consistency, r, &e) < 0) {
		sl_cql_req_free(r);
		return failed_future(e.code, &e, false);
	}
	return submit(s, r);
}

struct sl_cql_future *sl_cql_session_prepare(struct sl_cql_session *s, const char *query)
{
	pthread_mutex_lock(&s->p_mu);
	struct sl_cql_prepared *p;
	for (p = s->prepared; p; p = p->next)
		if (!strcmp(p->query, query))
			break;
	pthread_mutex_unlock(&s->p_mu);
	if (p) {
		struct sl_cql_future *f = sl_cql_future_new();
		if (f)
			sl_cql_future_complete(f, 0, NULL, -1, false, NULL, p);
		return f;
	}
	struct sl_cql_req *r = sl_cql_req_new();
	if (!r)
		return NULL;
	r->opcode = SL_CQL_OP_PREPARE;
	sl_cql_enc_prepare(&r->body, query, strlen(query));
	sl_cql_describe(r->desc, query, strlen(query));
	r->idempotent = true; /* preparing twice is harmless */
	return submit(s, r);
}

static int take(struct sl_cql_future *f, struct sl_err *e)
{
	if (!f)
		return sl_err_set(e, SL_ENOMEM, "out of memory");
	int rc = sl_cql_future_wait(f);
	if (rc < 0 && e)
		*e = *sl_cql_future_error(f);
	return rc;
}

int sl_cql_session_query(struct sl_cql_session *s, const char *query, struct sl_cql_result **result, struct sl_err *e)
{
	if (result)
		*result = NULL;
	struct sl_cql_statement *st = sl_cql_statement_new(query, 0);
	if (!st)
		return sl_err_set(e, SL_ENOMEM, "out of memory");
	struct sl_cql_future *f = sl_cql_session_execute(s, st);
	sl_cql_statement_free(st);
	int rc = take(f, e);
	if (rc == 0 && result)
		*result = sl_cql_future_take_result(f);
	sl_cql_future_release(f);
	return rc;
}

int sl_cql_session_prepare_wait(struct sl_cql_session *s, const char *query, struct sl_cql_prepared **out,
				struct sl_err *e)
{
	*out = NULL;
	struct sl_cql_future *f = sl_cql_session_prepare(s, query);
	int rc = take(f, e);
	if (rc == 0)
		*out = sl_cql_future_prepared(f);
	sl_cql_future_release(f);
	return rc;
}

int sl_cql_session_wait_schema_agreement(struct sl_cql_session *s, int timeout_ms, struct sl_err *e)
{
	uint64_t deadline = sl_cql_now_ms() + (uint64_t)timeout_ms;
	for (;;) {
		struct sl_cql_result *local = NULL, *peers = NULL;
		int rc = sl_cql_session_query(s, "SELECT schema_version FROM system.local WHERE key='local'", &local, e);
		if (rc == 0)
			rc = sl_cql_session_query(s, "SELECT schema_version FROM system.peers", &peers, e);
		if (rc < 0) {
			sl_cql_result_free(local);
			return rc;
		}
		bool agreed = true, have = false;
		uint8_t first[16];
		const struct sl_cql_result *rs[2] = {local, peers};
		for (int k = 0; k < 2; k++) {
			struct sl_cql_iter it;
			sl_cql_iter_init(&it, rs[k]);
			while (sl_cql_iter_next(&it)) {
				const struct sl_cql_value *v = sl_cql_iter_value(&it, 0);
				if (v->len != 16)
					continue;
				if (!have) {
					memcpy(first, v->data, 16);
					have = true;
				} else if (memcmp(first, v->data, 16) != 0) {
					agreed = false;
				}
			}
			sl_cql_iter_free(&it);
		}
		sl_cql_result_free(local);
		sl_cql_result_free(peers);
		if (agreed)
			return 0;
		if (sl_cql_now_ms() >= deadline)
			return sl_err_set(e, SL_ETIMEDOUT, "schema versions still differ after %d ms", timeout_ms);
		struct timespec ts = {0, 200 * 1000000L};
		nanosleep(&ts, NULL);
	}
}

void sl_cql_session_stats(struct sl_cql_session *s, struct sl_cql_session_stats *out)
{
	memset(out, 0, sizeof *out);
	out->requests = atomic_load(&s->st_requests);
	out->errors = atomic_load(&s->st_errors);
	out->timeouts = atomic_load(&s->st_timeouts);
	out->retries = atomic_load(&s->st_retries);
	out->reprepares = atomic_load(&s->st_reprepares);
	out->reconnects = atomic_load(&s->st_reconnects);
	out->spec_sent = atomic_load(&s->st_spec_sent);
	out->spec_wins = atomic_load(&s->st_spec_wins);
	out->hosts_up = atomic_load(&s->st_hosts_up);
	out->connections = atomic_load(&s->st_connections);
	pthread_mutex_lock(&s->q_mu);
	out->inflight = s->inflight;
	pthread_mutex_unlock(&s->q_mu);
	out->hosts_total = s->nhosts;
}
