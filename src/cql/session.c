/* The session: its epoll I/O thread, the submission queue user threads feed, host pools with reconnection backoff,
 * ring discovery (system.local + system.peers_v2, or system.peers on older servers) and keyspace replication,
 * token-aware and DC-aware query plans, the retry policy, transparent re-prepare on UNPREPARED, and schema
 * agreement after DDL. Everything below the public API runs on the I/O thread unless it says otherwise. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
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

/* How soon hosts are tried again when a request finds none up (see dispatch). */
#define DEMAND_RECONNECT_MS 2000

uint64_t sl_cql_now_ms(void)
{
	return (uint64_t)sl_mono_ms();
}

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

static struct sl_cql_req *req_new(void)
{
	struct sl_cql_req *r = calloc(1, sizeof *r);
	if (!r)
		return NULL;
	sl_buf_init(&r->body);
	r->target = -1;
	return r;
}

void sl_cql_req_free(struct sl_cql_req *r)
{
	if (!r)
		return;
	sl_buf_free(&r->body);
	sl_cql_result_free(r->held);
	free(r);
}

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

static void add_timer(struct sl_cql_session *s, uint64_t at, void (*fn)(struct sl_cql_session *, void *), void *arg)
{
	if (s->ntimers < (int)(sizeof s->timers / sizeof *s->timers))
		s->timers[s->ntimers++] = (struct sl_cql_timer){at, fn, arg};
	else
		fn(s, arg); /* never lose a continuation: run it now */
}

void sl_cql_mark_dirty(struct sl_cql_session *s, struct sl_cql_conn *c)
{
	if (c->dirty)
		return;
	c->dirty = true;
	c->dirty_next = s->dirty_head;
	s->dirty_head = c;
}

/* ---- completion ---- */

static void complete(struct sl_cql_session *s, struct sl_cql_req *r, int rc, const struct sl_err *err,
		     int32_t server_code, bool retryable, struct sl_cql_result *res, struct sl_cql_prepared *prep)
{
	if (rc < 0)
		atomic_fetch_add(&s->st_errors, 1);
	if (r->icb) {
		r->icb(s, r, rc, err, server_code, res);
	} else if (r->fut) {
		if (r->counted) {
			pthread_mutex_lock(&s->q_mu);
			s->inflight--;
			pthread_cond_signal(&s->q_cv);
			pthread_mutex_unlock(&s->q_mu);
		}
		sl_cql_future_complete(r->fut, rc, err, server_code, retryable, res, prep);
		r->fut = NULL;
	} else {
		sl_cql_result_free(res);
	}
	sl_cql_req_free(r);
}

static void fail(struct sl_cql_session *s, struct sl_cql_req *r, int code, int32_t server_code, bool retryable,
		 const char *msg)
{
	struct sl_err e;
	sl_err_set(&e, code, "\"%s\": %s", sl_cql_req_desc(r), msg);
	complete(s, r, code, &e, server_code, retryable, NULL, NULL);
}

/* ---- hosts, ring, plans ---- */

static bool host_up(struct sl_cql_session *s, int i)
{
	struct sl_cql_host *h = s->hosts[i];
	for (int k = 0; k < h->nconns; k++)
		if (h->conns[k]->state == SL_CQL_CONN_READY)
			return true;
	return false;
}

static bool host_local(struct sl_cql_session *s, int i)
{
	return !s->local_dc[0] || !s->hosts[i]->dc[0] || !strcmp(s->hosts[i]->dc, s->local_dc);
}

static struct sl_cql_conn *pick_conn(struct sl_cql_session *s, int i)
{
	struct sl_cql_host *h = s->hosts[i];
	struct sl_cql_conn *best = NULL;
	for (int k = 0; k < h->nconns; k++) {
		struct sl_cql_conn *c = h->conns[k];
		if (c->state == SL_CQL_CONN_READY && c->nfree > 0 && (!best || c->inflight < best->inflight))
			best = c;
	}
	return best;
}

static const struct sl_cql_ks *find_ks(struct sl_cql_session *s, const char *name)
{
	for (int i = 0; i < s->nks; i++)
		if (!strcmp(s->kss[i].name, name))
			return &s->kss[i];
	return NULL;
}

static bool plan_has(const struct sl_cql_req *r, int h)
{
	for (int i = 0; i < r->nplan; i++)
		if (r->plan[i] == h)
			return true;
	return false;
}

static void plan_add(struct sl_cql_req *r, int h)
{
	if (r->nplan < SL_CQL_MAX_PLAN && !plan_has(r, h))
		r->plan[r->nplan++] = h;
}

/* Replicas of token in ks, walking the ring clockwise from the first token >= t. */
static int replicas(struct sl_cql_session *s, const struct sl_cql_ks *ks, int64_t t, int *out, int max)
{
	if (s->nring == 0)
		return 0;
	int lo = 0, hi = s->nring;
	while (lo < hi) {
		int mid = (lo + hi) / 2;
		if (s->ring[mid].token < t)
			lo = mid + 1;
		else
			hi = mid;
	}
	int n = 0;
	int want = ks ? (ks->nts ? 0 : ks->rf) : 1;
	int dc_got[8] = {0};
	if (ks && ks->nts)
		for (int d = 0; d < ks->ndc; d++)
			want += ks->dc_rf[d];
	for (int k = 0; k < s->nring && n < want && n < max; k++) {
		int h = s->ring[(lo + k) % s->nring].host;
		bool dup = false;
		for (int j = 0; j < n; j++)
			dup |= out[j] == h;
		if (dup)
			continue;
		if (ks && ks->nts) {
			int d;
			for (d = 0; d < ks->ndc; d++)
				if (!strcmp(ks->dcs[d], s->hosts[h]->dc))
					break;
			if (d == ks->ndc || dc_got[d] >= ks->dc_rf[d])
				continue;
			dc_got[d]++;
		}
		out[n++] = h;
	}
	return n;
}

static void make_plan(struct sl_cql_session *s, struct sl_cql_req *r)
{
	r->nplan = 0;
	r->plan_pos = 0;
	if (r->target >= 0) {
		plan_add(r, r->target);
		return;
	}
	if (s->o.token_aware && r->has_token && s->nring > 0) {
		const char *ksname = r->keyspace[0] ? r->keyspace : s->keyspace;
		int reps[SL_CQL_MAX_PLAN];
		int n = replicas(s, find_ks(s, ksname), r->token, reps, SL_CQL_MAX_PLAN);
		/* Start at a rotating replica so one hot partition spreads over its replicas. */
		unsigned off = n ? s->rr++ % (unsigned)n : 0;
		for (int k = 0; k < n; k++) {
			int h = reps[(off + (unsigned)k) % (unsigned)n];
			if (s->hosts[h]->enabled && host_local(s, h) && host_up(s, h))
				plan_add(r, h);
		}
	}
	unsigned start = s->rr++;
	for (int pass = 0; pass < 2; pass++)
		for (int k = 0; k < s->nhosts; k++) {
			int h = (int)((start + (unsigned)k) % (unsigned)s->nhosts);
			if (!s->hosts[h]->enabled || !host_up(s, h))
				continue;
			bool local = host_local(s, h);
			if ((pass == 0 && local) || (pass == 1 && !local && s->o.use_remote_dcs))
				plan_add(r, h);
		}
}

static bool any_connecting(struct sl_cql_session *s)
{
	for (int i = 0; i < s->nhosts; i++) {
		struct sl_cql_host *h = s->hosts[i];
		if (h->enabled && (h->nconns > 0 || h->failures < 3))
			return true;
	}
	return false;
}

static void pend(struct sl_cql_session *s, struct sl_cql_req *r)
{
	r->qnext = NULL;
	if (s->pending_tail)
		s->pending_tail->qnext = r;
	else
		s->pending_head = r;
	s->pending_tail = r;
}

static void dispatch(struct sl_cql_session *s, struct sl_cql_req *r)
{
	if (atomic_load(&s->stop)) {
		fail(s, r, SL_ECANCELED, -1, false, "session is closing");
		return;
	}
	if (!r->deadline_ms) {
		if (!r->timeout_ms)
			r->timeout_ms = s->o.request_timeout_ms;
		r->deadline_ms = sl_cql_now_ms() + (uint64_t)r->timeout_ms;
	}
	if (r->nplan == 0)
		make_plan(s, r);
	for (; r->plan_pos < r->nplan; r->plan_pos++) {
		struct sl_cql_conn *c = pick_conn(s, r->plan[r->plan_pos]);
		if (c && sl_cql_conn_send(c, r) == 0)
			return;
	}
	/* Nothing usable now: wait for a connection if one may come up, else fail. */
	if (r->target < 0 && any_connecting(s)) {
		r->nplan = 0;
		pend(s, r);
		return;
	}
	/* No host at all, and requests want one: whatever their backoff, the hosts are tried again within
	 * DEMAND_RECONNECT_MS, so a node back from a long outage is found in seconds, not after a doubled backoff. */
	uint64_t soon = sl_cql_now_ms() + DEMAND_RECONNECT_MS;
	for (int i = 0; i < s->nhosts; i++)
		if (s->hosts[i]->enabled && s->hosts[i]->nconns == 0 && s->hosts[i]->next_attempt_ms > soon)
			s->hosts[i]->next_attempt_ms = soon;
	char msg[400];
	int n = snprintf(msg, sizeof msg, "no host available");
	for (int i = 0; i < s->nhosts && n > 0 && (size_t)n < sizeof msg; i++)
		if (s->hosts[i]->enabled && s->hosts[i]->last_error[0])
			n += snprintf(msg + n, sizeof msg - (size_t)n, "; %s: %s", s->hosts[i]->name,
				      s->hosts[i]->last_error);
	fail(s, r, SL_ECLOSED, -1, true, msg);
}

/* Retry on the same host (next == false) or the next in the plan. Returns false when the plan is exhausted. */
static bool retry(struct sl_cql_session *s, struct sl_cql_req *r, bool next)
{
	if (r->retries >= s->o.max_retries)
		return false;
	if (next && r->plan_pos + 1 >= r->nplan) {
		/* Re-plan: hosts may have come up since; skip the one that failed. */
		int failed = r->plan_pos < r->nplan ? r->plan[r->plan_pos] : -1;
		make_plan(s, r);
		if (r->nplan > 1 && r->plan[0] == failed)
			r->plan_pos = 1;
		else if (r->nplan == 0 || (r->nplan == 1 && r->plan[0] == failed))
			return false;
	} else if (next) {
		r->plan_pos++;
	}
	r->retries++;
	atomic_fetch_add(&s->st_retries, 1);
	dispatch(s, r);
	return true;
}

void sl_cql_on_req_failed(struct sl_cql_session *s, struct sl_cql_req *r, int code, const char *msg)
{
	/* Only idempotent statements may run twice; anything else might have been applied already. */
	if (!atomic_load(&s->stop) && r->idempotent && !r->icb && code != SL_EAUTH && retry(s, r, true))
		return;
	fail(s, r, code, -1, code == SL_ETIMEDOUT || code == SL_ECLOSED, msg);
}

/* ---- re-prepare ---- */

static struct sl_cql_prepared *find_prepared_by_id(struct sl_cql_session *s, const uint8_t *id, uint16_t n)
{
	pthread_mutex_lock(&s->p_mu);
	struct sl_cql_prepared *p;
	for (p = s->prepared; p; p = p->next) {
		pthread_mutex_lock(&p->mu);
		bool same = p->idlen == n && !memcmp(p->id, id, n);
		pthread_mutex_unlock(&p->mu);
		if (same)
			break;
	}
	pthread_mutex_unlock(&s->p_mu);
	return p;
}

static void reprepare_done(struct sl_cql_session *s, struct sl_cql_req *rp, int rc, const struct sl_err *err,
			   int32_t server_code, struct sl_cql_result *res)
{
	struct sl_cql_req *r = rp->parent;
	struct sl_cql_prepared *p = rp->prepared;
	if (rc < 0 || !res || res->kind != SL_CQL_RESULT_PREPARED) {
		char msg[SL_ERR_MSG_MAX];
		snprintf(msg, sizeof msg, "re-prepare after UNPREPARED failed: %s", err ? err->msg : "unexpected result");
		sl_cql_result_free(res);
		fail(s, r, rc < 0 ? rc : SL_EPROTO, server_code, false, msg);
		return;
	}
	pthread_mutex_lock(&p->mu);
	bool changed = res->prepared_id_len != p->idlen || memcmp(res->prepared_id, p->id, p->idlen) != 0;
	if (changed && res->prepared_id_len <= sizeof p->id) {
		uint8_t old[64];
		uint16_t oldlen = p->idlen;
		memcpy(old, p->id, oldlen);
		memcpy(p->id, res->prepared_id, res->prepared_id_len);
		p->idlen = res->prepared_id_len;
		if (r->opcode == SL_CQL_OP_EXECUTE) {
			/* EXECUTE starts with the id: swap it in front of the unchanged parameters. */
			struct sl_buf nb;
			sl_buf_init(&nb);
			sl_cql_wr_short_bytes(&nb, p->id, p->idlen);
			sl_buf_append(&nb, r->body.data + 2 + oldlen, r->body.len - 2 - oldlen);
			sl_buf_free(&r->body);
			r->body = nb;
		}
	}
	pthread_mutex_unlock(&p->mu);
	sl_cql_result_free(res);
	atomic_fetch_add(&s->st_reprepares, 1);
	sl_info("cql", "re-prepared statement after UNPREPARED host=%s statement=\"%s\"", s->hosts[rp->target]->name,
		sl_cql_req_desc(r));
	dispatch(s, r);
}

static void reprepare(struct sl_cql_session *s, struct sl_cql_conn *c, struct sl_cql_req *r,
		      const struct sl_cql_error *er, const char *msg)
{
	struct sl_cql_prepared *p = NULL;
	if (r->prepared) {
		pthread_mutex_lock(&r->prepared->mu);
		bool same = r->prepared->idlen == er->unprepared_id_len &&
			    !memcmp(r->prepared->id, er->unprepared_id, er->unprepared_id_len);
		pthread_mutex_unlock(&r->prepared->mu);
		if (same)
			p = r->prepared;
	}
	if (!p)
		p = find_prepared_by_id(s, er->unprepared_id, er->unprepared_id_len);
	struct sl_cql_req *rp = p && r->reprepares < 2 ? req_new() : NULL;
	if (!rp) {
		fail(s, r, SL_ESERVER, SL_CQL_ERR_UNPREPARED, false, msg);
		return;
	}
	r->reprepares++;
	rp->opcode = SL_CQL_OP_PREPARE;
	sl_cql_enc_prepare(&rp->body, p->query, p->query_len);
	rp->icb = reprepare_done;
	rp->parent = r;
	rp->prepared = p;
	rp->target = c->host;
	snprintf(rp->desc, sizeof rp->desc, "PREPARE %s", sl_cql_req_desc(r));
	/* The retried request goes back to the host that did not know the statement. */
	r->nplan = 0;
	r->target = r->target >= 0 ? r->target : -1;
	make_plan(s, r);
	for (int i = 0; i < r->nplan; i++)
		if (r->plan[i] == c->host)
			r->plan_pos = i;
	dispatch(s, rp);
}

/* ---- schema agreement (after DDL) ---- */

static void agree_step(struct sl_cql_session *s, void *arg);

static void agree_finish(struct sl_cql_session *s, struct sl_cql_req *r, bool agreed)
{
	struct sl_cql_result *res = r->held;
	r->held = NULL;
	res->schema_agreed = agreed;
	if (!agreed)
		sl_warn("cql", "schema agreement not reached within %d ms statement=\"%s\"", s->o.schema_agreement_ms,
			sl_cql_req_desc(r));
	complete(s, r, 0, NULL, -1, false, res, NULL);
}

static int control_host(struct sl_cql_session *s)
{
	if (s->control >= 0 && host_up(s, s->control))
		return s->control;
	for (int i = 0; i < s->nhosts; i++)
		if (s->hosts[i]->enabled && host_up(s, i))
			return i;
	return -1;
}

static struct sl_cql_req *internal_query(struct sl_cql_session *s, const char *q, int target, sl_cql_icb cb,
					 struct sl_cql_req *parent)
{
	struct sl_cql_req *r = req_new();
	if (!r)
		return NULL;
	struct sl_cql_qparams qp = {.consistency = SL_CQL_ONE, .serial_consistency = -1, .paging_state_len = -1,
				    .timestamp = INT64_MIN};
	sl_cql_enc_query(&r->body, q, strlen(q), &qp);
	r->opcode = SL_CQL_OP_QUERY;
	r->icb = cb;
	r->parent = parent;
	r->target = target;
	sl_cql_describe(r->desc, q, strlen(q));
	return r;
}

static void agree_peers(struct sl_cql_session *s, struct sl_cql_req *q, int rc, const struct sl_err *err,
			int32_t code, struct sl_cql_result *res)
{
	struct sl_cql_req *r = q->parent;
	bool agreed = rc == 0 && r->sv[0];
	if (rc == 0 && res) {
		struct sl_cql_iter it;
		sl_cql_iter_init(&it, res);
		int cpeer = sl_cql_result_column_index(res, "peer"), cver = sl_cql_result_column_index(res, "schema_version");
		while (agreed && cpeer >= 0 && cver >= 0 && sl_cql_iter_next(&it)) {
			const struct sl_cql_value *pv = sl_cql_iter_value(&it, cpeer), *vv = sl_cql_iter_value(&it, cver);
			if (vv->len != 16 || (pv->len != 4 && pv->len != 16))
				continue;
			/* Only peers this session can reach count: a down node cannot agree and would stall DDL. */
			bool up = false;
			for (int i = 0; i < s->nhosts && !up; i++) {
				struct sl_cql_host *h = s->hosts[i];
				const void *a = h->addr.ss_family == AF_INET
							? (const void *)&((struct sockaddr_in *)&h->addr)->sin_addr
							: (const void *)&((struct sockaddr_in6 *)&h->addr)->sin6_addr;
				if ((h->addr.ss_family == AF_INET ? 4 : 16) == pv->len && !memcmp(a, pv->data, (size_t)pv->len))
					up = host_up(s, i);
			}
			char ver[40];
			struct sl_buf b;
			sl_buf_init(&b);
			sl_cql_value_format(&b, vv, false);
			snprintf(ver, sizeof ver, "%s", b.data ? sl_buf_cstr(&b) : "");
			sl_buf_free(&b);
			if (up && strcmp(ver, r->sv) != 0)
				agreed = false;
		}
		sl_cql_iter_free(&it);
	}
	sl_cql_result_free(res);
	(void)err; (void)code;
	if (agreed || sl_cql_now_ms() >= r->agree_deadline_ms || atomic_load(&s->stop))
		agree_finish(s, r, agreed);
	else
		add_timer(s, sl_cql_now_ms() + 200, agree_step, r);
}

static void agree_local(struct sl_cql_session *s, struct sl_cql_req *q, int rc, const struct sl_err *err,
			int32_t code, struct sl_cql_result *res)
{
	struct sl_cql_req *r = q->parent;
	r->sv[0] = '\0';
	if (rc == 0 && res) {
		struct sl_cql_iter it;
		sl_cql_iter_init(&it, res);
		if (sl_cql_iter_next(&it)) {
			struct sl_buf b;
			sl_buf_init(&b);
			sl_cql_value_format(&b, sl_cql_iter_value(&it, 0), false);
			snprintf(r->sv, sizeof r->sv, "%s", b.data ? sl_buf_cstr(&b) : "");
			sl_buf_free(&b);
		}
		sl_cql_iter_free(&it);
	}
	sl_cql_result_free(res);
	(void)err; (void)code;
	char qtext[120];
	snprintf(qtext, sizeof qtext, "SELECT peer, schema_version FROM %s", s->peers_table);
	struct sl_cql_req *p = rc == 0 ? internal_query(s, qtext, q->target, agree_peers, r) : NULL;
	if (p)
		dispatch(s, p);
	else if (sl_cql_now_ms() >= r->agree_deadline_ms)
		agree_finish(s, r, false);
	else
		add_timer(s, sl_cql_now_ms() + 200, agree_step, r);
}

static void agree_step(struct sl_cql_session *s, void *arg)
{
	struct sl_cql_req *r = arg;
	int h = control_host(s);
	struct sl_cql_req *q = h >= 0 && !atomic_load(&s->stop)
				       ? internal_query(s, "SELECT schema_version FROM system.local WHERE key='local'", h,
							agree_local, r)
				       : NULL;
	if (!q) {
		agree_finish(s, r, false);
		return;
	}
	dispatch(s, q);
}

/* ---- ring discovery ---- */

static int find_host(struct sl_cql_session *s, const struct sockaddr_storage *ss)
{
	for (int i = 0; i < s->nhosts; i++) {
		const struct sockaddr_storage *a = &s->hosts[i]->addr;
		if (a->ss_family != ss->ss_family)
			continue;
		if (a->ss_family == AF_INET) {
			const struct sockaddr_in *x = (const void *)a, *y = (const void *)ss;
			if (x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr)
				return i;
		} else {
			const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)ss;
			if (x->sin6_port == y->sin6_port && !memcmp(&x->sin6_addr, &y->sin6_addr, 16))
				return i;
		}
	}
	return -1;
}

static int add_host(struct sl_cql_session *s, const struct sockaddr_storage *ss, socklen_t len)
{
	int i = find_host(s, ss);
	if (i >= 0)
		return i;
	if (s->nhosts >= SL_CQL_MAX_HOSTS)
		return -1;
	struct sl_cql_host *h = calloc(1, sizeof *h);
	if (!h)
		return -1;
	memcpy(&h->addr, ss, len);
	h->addrlen = len;
	char ip[INET6_ADDRSTRLEN] = "?";
	int port;
	if (ss->ss_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, ip, sizeof ip);
		port = ntohs(((const struct sockaddr_in *)ss)->sin_port);
		snprintf(h->name, sizeof h->name, "%s:%d", ip, port);
	} else {
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, ip, sizeof ip);
		port = ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
		snprintf(h->name, sizeof h->name, "[%s]:%d", ip, port);
	}
	s->hosts[s->nhosts] = h;
	return s->nhosts++;
}

static void text_of(const struct sl_cql_value *v, char *out, size_t outsz)
{
	out[0] = '\0';
	if (v->len > 0)
		snprintf(out, outsz, "%.*s", (int)v->len, (const char *)v->data);
}

static int ring_cmp(const void *a, const void *b)
{
	const struct sl_cql_ring_entry *x = a, *y = b;
	return x->token < y->token ? -1 : x->token > y->token;
}

static void ring_add_tokens(struct sl_cql_session *s, int host, const struct sl_cql_value *tokens,
			    struct sl_cql_ring_entry **ring, int *n, int *cap)
{
	struct sl_cql_elems el;
	if (sl_cql_elems_init(&el, tokens) < 0)
		return;
	while (sl_cql_elems_next(&el) == 1) {
		char t[32];
		text_of(&el.value, t, sizeof t);
		if (*n == *cap) {
			int nc = *cap ? *cap * 2 : 64;
			struct sl_cql_ring_entry *nr = realloc(*ring, sizeof *nr * (size_t)nc);
			if (!nr)
				return;
			*ring = nr;
			*cap = nc;
		}
		(*ring)[(*n)++] = (struct sl_cql_ring_entry){strtoll(t, NULL, 10), host};
	}
	(void)s;
}

static void boot_done(struct sl_cql_session *s, int rc, const char *msg)
{
	pthread_mutex_lock(&s->q_mu);
	if (s->boot_state == 0) {
		s->boot_state = rc < 0 ? rc : 1;
		if (rc < 0)
			sl_err_set(&s->boot_err, rc, "%s", msg);
		pthread_cond_broadcast(&s->q_cv);
	}
	pthread_mutex_unlock(&s->q_mu);
}

/* The refresh chain keeps its partial ring in a heap object passed along the internal requests. */
struct refresh {
	struct sl_cql_ring_entry *ring;
	int n, cap;
	int control;
	bool boot;
	bool seen[SL_CQL_MAX_HOSTS];
};

static void refresh_fail(struct sl_cql_session *s, struct refresh *rf, const char *what, const struct sl_err *err)
{
	char msg[SL_ERR_MSG_MAX];
	snprintf(msg, sizeof msg, "ring discovery (%s) failed: %s", what, err ? err->msg : "?");
	sl_warn("cql", "%s", msg);
	if (rf->boot)
		boot_done(s, err && err->code ? err->code : SL_EPROTO, msg);
	free(rf->ring);
	free(rf);
	s->refreshing = false;
}

static void refresh_keyspaces(struct sl_cql_session *s, struct sl_cql_req *q, int rc, const struct sl_err *err,
			      int32_t code, struct sl_cql_result *res)
{
	struct refresh *rf = q->iarg;
	(void)code;
	if (rc < 0) {
		refresh_fail(s, rf, "system_schema.keyspaces", err);
		return;
	}
	int n = sl_cql_result_row_count(res);
	struct sl_cql_ks *kss = calloc((size_t)(n ? n : 1), sizeof *kss);
	int nks = 0;
	struct sl_cql_iter it;
	sl_cql_iter_init(&it, res);
	while (kss && sl_cql_iter_next(&it)) {
		struct sl_cql_ks *k = &kss[nks++];
		text_of(sl_cql_iter_value(&it, 0), k->name, sizeof k->name);
		k->rf = 1;
		struct sl_cql_elems el;
		if (sl_cql_elems_init(&el, sl_cql_iter_value(&it, 1)) < 0)
			continue;
		char key[96], val[96];
		while (sl_cql_elems_next(&el) == 1) {
			text_of(&el.value, key, sizeof key);
			if (sl_cql_elems_next(&el) != 1)
				break;
			text_of(&el.value, val, sizeof val);
			if (!strcmp(key, "class")) {
				k->nts = strstr(val, "NetworkTopologyStrategy") != NULL;
			} else if (!strcmp(key, "replication_factor")) {
				k->rf = atoi(val);
			} else if (k->ndc < 8) {
				snprintf(k->dcs[k->ndc], sizeof k->dcs[0], "%s", key);
				k->dc_rf[k->ndc++] = atoi(val);
			}
		}
		if (!k->nts)
			k->ndc = 0;
		if (k->rf < 1)
			k->rf = 1;
	}
	sl_cql_iter_free(&it);
	sl_cql_result_free(res);
	if (kss) {
		free(s->kss);
		s->kss = kss;
		s->nks = nks;
	}
	/* Install the ring and decide which hosts get pools. */
	qsort(rf->ring, (size_t)rf->n, sizeof *rf->ring, ring_cmp);
	free(s->ring);
	s->ring = rf->ring;
	s->nring = rf->n;
	rf->ring = NULL;
	for (int i = 0; i < s->nhosts; i++) {
		struct sl_cql_host *h = s->hosts[i];
		bool keep = rf->seen[i] && (host_local(s, i) || s->o.use_remote_dcs);
		if (h->enabled && !keep) {
			sl_info("cql", "host leaves the pool host=%s dc=%s", h->name, h->dc);
			for (int k = h->nconns - 1; k >= 0; k--)
				sl_cql_conn_close(h->conns[k], SL_ECLOSED, "host not in the local data centre or removed");
		} else if (!h->enabled && keep) {
			sl_info("cql", "host joins the pool host=%s dc=%s rack=%s", h->name, h->dc, h->rack);
			h->failures = 0;
			h->next_attempt_ms = 0;
		}
		h->enabled = keep;
	}
	sl_debug("cql", "ring refreshed hosts=%d tokens=%d keyspaces=%d local_dc=%s", s->nhosts, s->nring, s->nks,
		 s->local_dc);
	if (rf->boot)
		boot_done(s, 0, NULL);
	free(rf);
	s->refreshing = false;
}

static void refresh_peers(struct sl_cql_session *s, struct sl_cql_req *q, int rc, const struct sl_err *err,
			  int32_t code, struct sl_cql_result *res);

static void refresh_after_peers(struct sl_cql_session *s, struct refresh *rf)
{
	struct sl_cql_req *q = internal_query(s, "SELECT keyspace_name, replication FROM system_schema.keyspaces",
					      rf->control, refresh_keyspaces, NULL);
	if (!q) {
		refresh_fail(s, rf, "keyspaces", NULL);
		return;
	}
	q->iarg = rf;
	dispatch(s, q);
}

static void refresh_peers(struct sl_cql_session *s, struct sl_cql_req *q, int rc, const struct sl_err *err,
			  int32_t code, struct sl_cql_result *res)
{
	struct refresh *rf = q->iarg;
	if (rc < 0 && code == SL_CQL_ERR_INVALID && !strcmp(s->peers_table, "system.peers_v2")) {
		/* Servers before 4.0 have no peers_v2. */
		s->peers_table = "system.peers";
		struct sl_cql_req *q2 = internal_query(
			s, "SELECT peer, rpc_address, data_center, rack, tokens FROM system.peers", rf->control,
			refresh_peers, NULL);
		if (!q2) {
			refresh_fail(s, rf, "peers", NULL);
			return;
		}
		q2->iarg = rf;
		dispatch(s, q2);
		return;
	}
	if (rc < 0) {
		refresh_fail(s, rf, s->peers_table, err);
		return;
	}
	int cpeer = sl_cql_result_column_index(res, "peer");
	int caddr = sl_cql_result_column_index(res, "native_address");
	if (caddr < 0)
		caddr = sl_cql_result_column_index(res, "rpc_address");
	int cport = sl_cql_result_column_index(res, "native_port");
	int cdc = sl_cql_result_column_index(res, "data_center"), crack = sl_cql_result_column_index(res, "rack");
	int ctok = sl_cql_result_column_index(res, "tokens");
	struct sl_cql_iter it;
	sl_cql_iter_init(&it, res);
	while (cpeer >= 0 && sl_cql_iter_next(&it)) {
		const struct sl_cql_value *a = caddr >= 0 ? sl_cql_iter_value(&it, caddr) : NULL;
		if (!a || (a->len != 4 && a->len != 16))
			a = sl_cql_iter_value(&it, cpeer);
		/* A node listening on 0.0.0.0 reports that; its peer (gossip) address is the reachable one. */
		if (a->len == 4 && !memcmp(a->data, "\0\0\0\0", 4))
			a = sl_cql_iter_value(&it, cpeer);
		int port = s->o.port;
		int32_t p32;
		if (cport >= 0 && sl_cql_value_int32(sl_cql_iter_value(&it, cport), &p32) == 0)
			port = p32;
		struct sockaddr_storage ss;
		memset(&ss, 0, sizeof ss);
		socklen_t len;
		if (a->len == 4) {
			struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
			sin->sin_family = AF_INET;
			memcpy(&sin->sin_addr, a->data, 4);
			sin->sin_port = htons((uint16_t)port);
			len = sizeof *sin;
		} else if (a->len == 16) {
			struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
			sin6->sin6_family = AF_INET6;
			memcpy(&sin6->sin6_addr, a->data, 16);
			sin6->sin6_port = htons((uint16_t)port);
			len = sizeof *sin6;
		} else {
			continue;
		}
		int h = add_host(s, &ss, len);
		if (h < 0)
			continue;
		rf->seen[h] = true;
		if (cdc >= 0)
			text_of(sl_cql_iter_value(&it, cdc), s->hosts[h]->dc, sizeof s->hosts[h]->dc);
		if (crack >= 0)
			text_of(sl_cql_iter_value(&it, crack), s->hosts[h]->rack, sizeof s->hosts[h]->rack);
		if (ctok >= 0)
			ring_add_tokens(s, h, sl_cql_iter_value(&it, ctok), &rf->ring, &rf->n, &rf->cap);
	}
	sl_cql_iter_free(&it);
	sl_cql_result_free(res);
	refresh_after_peers(s, rf);
}

static void refresh_local(struct sl_cql_session *s, struct sl_cql_req *q, int rc, const struct sl_err *err,
			  int32_t code, struct sl_cql_result *res)
{
	struct refresh *rf = q->iarg;
	(void)code;
	if (rc < 0) {
		refresh_fail(s, rf, "system.local", err);
		return;
	}
	struct sl_cql_host *h = s->hosts[rf->control];
	rf->seen[rf->control] = true;
	struct sl_cql_iter it;
	sl_cql_iter_init(&it, res);
	if (sl_cql_iter_next(&it)) {
		text_of(sl_cql_iter_value(&it, 0), h->dc, sizeof h->dc);
		text_of(sl_cql_iter_value(&it, 1), h->rack, sizeof h->rack);
		ring_add_tokens(s, rf->control, sl_cql_iter_value(&it, 2), &rf->ring, &rf->n, &rf->cap);
		char part[128];
		text_of(sl_cql_iter_value(&it, 3), part, sizeof part);
		if (part[0] && !strstr(part, "Murmur3Partitioner"))
			sl_warn("cql", "partitioner %s is not Murmur3; token-aware routing is off", part);
		if (part[0] && !strstr(part, "Murmur3Partitioner"))
			s->o.token_aware = false;
	}
	sl_cql_iter_free(&it);
	sl_cql_result_free(res);
	if (!s->local_dc[0] && h->dc[0]) {
		snprintf(s->local_dc, sizeof s->local_dc, "%s", h->dc);
		sl_info("cql", "local data centre is %s (from %s)", s->local_dc, h->name);
	}
	char qtext[160];
	if (!strcmp(s->peers_table, "system.peers_v2"))
		snprintf(qtext, sizeof qtext,
			 "SELECT peer, native_address, native_port, data_center, rack, tokens FROM system.peers_v2");
	else
		snprintf(qtext, sizeof qtext, "SELECT peer, rpc_address, data_center, rack, tokens FROM system.peers");
	struct sl_cql_req *q2 = internal_query(s, qtext, rf->control, refresh_peers, NULL);
	if (!q2) {
		refresh_fail(s, rf, "peers", NULL);
		return;
	}
	q2->iarg = rf;
	dispatch(s, q2);
}

static void start_refresh(struct sl_cql_session *s, bool boot)
{
	if (s->refreshing)
		return;
	int h = control_host(s);
	if (h < 0)
		return;
	struct refresh *rf = calloc(1, sizeof *rf);
	struct sl_cql_req *q = rf ? internal_query(s,
						   "SELECT data_center, rack, tokens, partitioner FROM system.local "
						   "WHERE key='local'",
						   h, refresh_local, NULL)
				  : NULL;
	if (!q) {
		free(rf);
		return;
	}
	rf->control = h;
	rf->boot = boot;
	q->iarg = rf;
	s->refreshing = true;
	dispatch(s, q);
}

static void refresh_timer(struct sl_cql_session *s, void *arg)
{
	(void)arg;
	start_refresh(s, false);
}

void sl_cql_on_event(struct sl_cql_session *s, const struct sl_cql_event *ev)
{
	if (ev->kind == SL_CQL_EVENT_SCHEMA) {
		if (!strcmp(ev->target, "KEYSPACE"))
			add_timer(s, sl_cql_now_ms() + 500, refresh_timer, NULL);
		return;
	}
	char ip[INET6_ADDRSTRLEN] = "?";
	if (ev->addr.ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)&ev->addr)->sin_addr, ip, sizeof ip);
	sl_info("cql", "cluster event %s %s address=%s", ev->kind == SL_CQL_EVENT_TOPOLOGY ? "topology" : "status",
		ev->change, ip);
	if (ev->kind == SL_CQL_EVENT_STATUS && !strcmp(ev->change, "UP")) {
		/* Reconnect to that node now rather than when its backoff expires. */
		for (int i = 0; i < s->nhosts; i++) {
			struct sl_cql_host *h = s->hosts[i];
			if (h->addr.ss_family == AF_INET && ev->addr.ss_family == AF_INET &&
			    ((struct sockaddr_in *)&h->addr)->sin_addr.s_addr ==
				    ((const struct sockaddr_in *)&ev->addr)->sin_addr.s_addr)
				h->next_attempt_ms = 0;
		}
	}
	if (ev->kind == SL_CQL_EVENT_TOPOLOGY)
		add_timer(s, sl_cql_now_ms() + 1000, refresh_timer, NULL);
}

/* ---- connection hooks ---- */

void sl_cql_on_conn_ready(struct sl_cql_session *s, struct sl_cql_conn *c)
{
	struct sl_cql_host *h = s->hosts[c->host];
	if (h->failures > 0 || h->backoff_ms > 0)
		sl_info("cql", "connected host=%s after %d failed attempts", h->name, h->failures);
	h->failures = 0;
	h->backoff_ms = 0;
	h->last_error[0] = '\0';
	if (s->boot_state == 0 && !s->refreshing)
		start_refresh(s, true);
	/* Requests that waited for a connection go now. */
	struct sl_cql_req *r = s->pending_head;
	s->pending_head = s->pending_tail = NULL;
	while (r) {
		struct sl_cql_req *next = r->qnext;
		dispatch(s, r);
		r = next;
	}
}

static void register_done(struct sl_cql_session *s, struct sl_cql_req *r, int rc, const struct sl_err *err,
			  int32_t code, struct sl_cql_result *res)
{
	(void)r; (void)err; (void)code;
	sl_cql_result_free(res);
	if (rc < 0)
		s->control = -1;
}

void sl_cql_on_conn_closed(struct sl_cql_session *s, struct sl_cql_conn *c, const char *why)
{
	struct sl_cql_host *h = s->hosts[c->host];
	for (int k = 0; k < h->nconns; k++)
		if (h->conns[k] == c) {
			h->conns[k] = h->conns[--h->nconns];
			break;
		}
	h->failures++;
	atomic_fetch_add(&s->st_reconnects, 1);
	int base = s->o.reconnect_base_ms > 0 ? s->o.reconnect_base_ms : 1;
	long backoff = base;
	for (int i = 1; i < h->failures && backoff < s->o.reconnect_max_ms; i++)
		backoff *= 2;
	if (backoff > s->o.reconnect_max_ms)
		backoff = s->o.reconnect_max_ms;
	/* Jitter (+-15%) keeps many clients from reconnecting in lockstep after a node restarts. */
	backoff = backoff * (85 + rand() % 31) / 100;
	h->backoff_ms = (int)backoff;
	h->next_attempt_ms = sl_cql_now_ms() + (uint64_t)backoff;
	if (c->control && s->control == c->host) {
		s->control = -1;
		for (int i = 0; i < s->nhosts && s->control < 0; i++) {
			struct sl_cql_conn *o = s->hosts[i]->enabled ? pick_conn(s, i) : NULL;
			struct sl_cql_req *r = o ? req_new() : NULL;
			if (!r)
				continue;
			r->opcode = SL_CQL_OP_REGISTER;
			sl_cql_enc_register(&r->body);
			r->icb = register_done;
			r->target = i;
			snprintf(r->desc, sizeof r->desc, "REGISTER");
			o->control = true;
			s->control = i;
			dispatch(s, r);
		}
	}
	if (s->boot_state == 0) {
		/* Bootstrap fails once every contact point has failed and none is left trying. */
		bool all_failed = true;
		for (int i = 0; i < s->nhosts; i++)
			if (s->hosts[i]->contact && (s->hosts[i]->failures == 0 || s->hosts[i]->nconns > 0))
				all_failed = false;
		if (all_failed) {
			char msg[SL_ERR_MSG_MAX];
			int n = snprintf(msg, sizeof msg, "cannot connect to any contact point");
			for (int i = 0; i < s->nhosts && n > 0 && (size_t)n < sizeof msg; i++)
				n += snprintf(msg + n, sizeof msg - (size_t)n, "; %s: %s", s->hosts[i]->name,
					      s->hosts[i]->last_error);
			int code = SL_ECLOSED;
			if (strstr(why, "uthentication") || strstr(why, "credentials") || strstr(why, "requires auth") ||
			    strstr(why, "TLS handshake failed") || strstr(why, "TLS error"))
				code = SL_EAUTH;
			boot_done(s, code, msg);
		}
	}
}

/* ---- responses ---- */

static void on_prepared(struct sl_cql_session *s, struct sl_cql_req *r, struct sl_cql_result *res)
{
	struct sl_cql_rd rd;
	sl_cql_rd_init(&rd, r->body.data, r->body.len);
	size_t qlen;
	const char *qtext = sl_cql_rd_long_string(&rd, &qlen);
	char *query = strndup(qtext, qlen);
	struct sl_cql_prepared *p = NULL;
	pthread_mutex_lock(&s->p_mu);
	for (p = s->prepared; p && query; p = p->next)
		if (!strcmp(p->query, query))
			break;
	if (p) {
		sl_cql_result_free(res);
	} else if (query) {
		p = sl_cql_prepared_from_result(query, res, s->keyspace);
		if (p) {
			p->next = s->prepared;
			s->prepared = p;
		}
	}
	pthread_mutex_unlock(&s->p_mu);
	free(query);
	if (!p) {
		if (!query)
			sl_cql_result_free(res);
		fail(s, r, SL_ENOMEM, -1, false, "out of memory caching the prepared statement");
		return;
	}
	complete(s, r, 0, NULL, -1, false, NULL, p);
}

static void use_done(struct sl_cql_session *s, struct sl_cql_req *r, int rc, const struct sl_err *err, int32_t code,
		     struct sl_cql_result *res)
{
	(void)s; (void)r; (void)code;
	sl_cql_result_free(res);
	if (rc < 0)
		sl_warn("cql", "USE on another connection failed: %s", err ? err->msg : "?");
}

static void on_set_keyspace(struct sl_cql_session *s, struct sl_cql_conn *from, const char *ks)
{
	if (!ks || !strcmp(ks, s->keyspace))
		return;
	snprintf(s->keyspace, sizeof s->keyspace, "%s", ks);
	/* Keep every connection on the same keyspace: new ones USE it at startup, open ones get a USE now. */
	char q[160];
	snprintf(q, sizeof q, "USE \"%s\"", ks);
	for (int i = 0; i < s->nhosts; i++)
		for (int k = 0; k < s->hosts[i]->nconns; k++) {
			struct sl_cql_conn *c = s->hosts[i]->conns[k];
			if (c == from || c->state != SL_CQL_CONN_READY)
				continue;
			struct sl_cql_req *r = internal_query(s, q, i, use_done, NULL);
			if (r)
				r->deadline_ms = sl_cql_now_ms() + (uint64_t)s->o.request_timeout_ms;
			if (r && sl_cql_conn_send(c, r) != 0)
				sl_cql_req_free(r);
		}
}

static int code_to_rc(int32_t code)
{
	switch (code) {
	case SL_CQL_ERR_BAD_CREDENTIALS:
	case SL_CQL_ERR_UNAUTHORIZED:
		return SL_EAUTH;
	case SL_CQL_ERR_WRITE_TIMEOUT:
	case SL_CQL_ERR_READ_TIMEOUT:
		return SL_ETIMEDOUT;
	case SL_CQL_ERR_UNAVAILABLE:
	case SL_CQL_ERR_OVERLOADED:
	case SL_CQL_ERR_IS_BOOTSTRAPPING:
		return SL_EAGAIN;
	case SL_CQL_ERR_PROTOCOL:
		return SL_EPROTO;
	}
	return SL_ESERVER;
}

static void on_error(struct sl_cql_session *s, struct sl_cql_conn *c, struct sl_cql_req *r, struct sl_cql_rd *rd)
{
	struct sl_cql_error er;
	struct sl_err e = {0};
	if (sl_cql_decode_error(rd, &er, &e) < 0) {
		fail(s, r, SL_EPROTO, -1, false, e.msg);
		return;
	}
	char desc[480], msg[SL_ERR_MSG_MAX];
	sl_cql_error_describe(&er, desc, sizeof desc);
	snprintf(msg, sizeof msg, "%s: %s", s->hosts[c->host]->name, desc);
	if (!r->icb) {
		switch (er.code) {
		case SL_CQL_ERR_UNPREPARED:
			reprepare(s, c, r, &er, msg);
			return;
		case SL_CQL_ERR_READ_TIMEOUT:
			/* Enough replicas answered but the data replica did not: asking again usually works. */
			if (er.received >= er.blockfor && !er.data_present && retry(s, r, false))
				return;
			break;
		case SL_CQL_ERR_WRITE_TIMEOUT:
			if (r->idempotent && !strcmp(er.write_type, "BATCH_LOG") && retry(s, r, false))
				return;
			break;
		case SL_CQL_ERR_UNAVAILABLE:
			if (retry(s, r, true))
				return;
			break;
		case SL_CQL_ERR_OVERLOADED:
		case SL_CQL_ERR_SERVER:
		case SL_CQL_ERR_IS_BOOTSTRAPPING:
		case SL_CQL_ERR_TRUNCATE:
			if (r->idempotent && retry(s, r, true))
				return;
			break;
		}
	}
	fail(s, r, code_to_rc(er.code), er.code, sl_cql_error_code_retryable(er.code), msg);
}

void sl_cql_on_response(struct sl_cql_session *s, struct sl_cql_conn *c, struct sl_cql_req *r,
			const struct sl_cql_header *h, uint8_t *body, size_t len)
{
	struct sl_err e = {0};
	if (h->opcode == SL_CQL_OP_RESULT) {
		struct sl_cql_result *res;
		if (sl_cql_result_decode(&res, body, len, h->flags, &e) < 0) {
			char msg[SL_ERR_MSG_MAX];
			snprintf(msg, sizeof msg, "%s: %s", s->hosts[c->host]->name, e.msg);
			fail(s, r, e.code, -1, false, msg);
			return;
		}
		if (r->icb) {
			complete(s, r, 0, NULL, -1, false, res, NULL);
			return;
		}
		switch (res->kind) {
		case SL_CQL_RESULT_PREPARED:
			if (r->opcode == SL_CQL_OP_PREPARE) {
				on_prepared(s, r, res);
				return;
			}
			break;
		case SL_CQL_RESULT_SET_KEYSPACE:
			on_set_keyspace(s, c, res->keyspace);
			break;
		case SL_CQL_RESULT_SCHEMA_CHANGE:
			if (s->o.schema_agreement_ms > 0) {
				r->held = res;
				r->agree_deadline_ms = sl_cql_now_ms() + (uint64_t)s->o.schema_agreement_ms;
				agree_step(s, r);
				return;
			}
			break;
		}
		complete(s, r, 0, NULL, -1, false, res, NULL);
		return;
	}
	struct sl_cql_rd rd;
	sl_cql_rd_init(&rd, body, len);
	if (sl_cql_decode_prefix(&rd, h->flags, NULL, NULL, NULL, NULL, &e) < 0) {
		free(body);
		fail(s, r, SL_EPROTO, -1, false, e.msg);
		return;
	}
	if (h->opcode == SL_CQL_OP_ERROR) {
		on_error(s, c, r, &rd);
		free(body);
		return;
	}
	free(body);
	/* SUPPORTED (heartbeat), READY (REGISTER): success without a result. */
	if (h->opcode == SL_CQL_OP_SUPPORTED || h->opcode == SL_CQL_OP_READY)
		complete(s, r, 0, NULL, -1, false, NULL, NULL);
	else {
		char msg[120];
		snprintf(msg, sizeof msg, "unexpected %s in answer to %s", sl_cql_opcode_name(h->opcode),
			 sl_cql_opcode_name(r->opcode));
		fail(s, r, SL_EPROTO, -1, false, msg);
	}
}

/* ---- the I/O thread ---- */

static void maintain(struct sl_cql_session *s, uint64_t now)
{
	int up = 0;
	for (int i = 0; i < s->nhosts; i++) {
		struct sl_cql_host *h = s->hosts[i];
		for (int k = h->nconns - 1; k >= 0; k--)
			if (k < h->nconns)
				sl_cql_conn_tick(h->conns[k], now);
		if (h->enabled && h->nconns < s->o.connections_per_host && now >= h->next_attempt_ms) {
			struct sl_cql_conn *c = sl_cql_conn_open(s, i);
			struct sl_cql_conn **nc = c ? realloc(h->conns, sizeof *nc * (size_t)(h->nconns + 1)) : NULL;
			if (nc) {
				h->conns = nc;
				h->conns[h->nconns++] = c;
				h->next_attempt_ms = now + (uint64_t)s->o.connect_timeout_ms;
			} else {
				if (c) {
					epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
					sl_cql_conn_free(c);
					atomic_fetch_sub(&s->st_connections, 1);
				}
				struct sl_cql_conn dummy = {.s = s, .host = i};
				sl_cql_on_conn_closed(s, &dummy, h->last_error[0] ? h->last_error : "socket failed");
			}
		}
		if (h->enabled && host_up(s, i))
			up++;
	}
	atomic_store(&s->st_hosts_up, up);
	/* Requests waiting for a connection give up at their deadline. */
	struct sl_cql_req *r = s->pending_head, *keep_head = NULL, *keep_tail = NULL;
	s->pending_head = s->pending_tail = NULL;
	while (r) {
		struct sl_cql_req *next = r->qnext;
		r->qnext = NULL;
		if (now >= r->deadline_ms || !any_connecting(s)) {
			char msg[400];
			snprintf(msg, sizeof msg, "no connection to any host within %d ms", r->timeout_ms);
			for (int i = 0; i < s->nhosts; i++)
				if (s->hosts[i]->enabled && s->hosts[i]->last_error[0]) {
					snprintf(msg, sizeof msg, "no connection to any host within %d ms; %s: %s",
						 r->timeout_ms, s->hosts[i]->name, s->hosts[i]->last_error);
					break;
				}
			atomic_fetch_add(&s->st_timeouts, 1);
			fail(s, r, SL_ETIMEDOUT, -1, true, msg);
		} else {
			if (keep_tail)
				keep_tail->qnext = r;
			else
				keep_head = r;
			keep_tail = r;
		}
		r = next;
	}
	if (keep_head) {
		/* Anything pended meanwhile (by fail callbacks) goes after the survivors. */
		if (s->pending_head) {
			keep_tail->qnext = s->pending_head;
			keep_tail = s->pending_tail;
		}
		s->pending_head = keep_head;
		s->pending_tail = keep_tail;
	}
	for (int i = 0; i < s->ntimers;) {
		if (now >= s->timers[i].at_ms) {
			struct sl_cql_timer t = s->timers[i];
			s->timers[i] = s->timers[--s->ntimers];
			t.fn(s, t.arg);
		} else {
			i++;
		}
	}
}

static void drain_queue(struct sl_cql_session *s)
{
	pthread_mutex_lock(&s->q_mu);
	struct sl_cql_req *r = s->q_head;
	s->q_head = s->q_tail = NULL;
	s->wake_pending = false;
	pthread_mutex_unlock(&s->q_mu);
	while (r) {
		struct sl_cql_req *next = r->qnext;
		r->qnext = NULL;
		dispatch(s, r);
		r = next;
	}
}

static void flush_and_reap(struct sl_cql_session *s)
{
	while (s->dirty_head) {
		struct sl_cql_conn *c = s->dirty_head;
		s->dirty_head = c->dirty_next;
		sl_cql_conn_flush(c);
	}
	while (s->grave) {
		struct sl_cql_conn *c = s->grave;
		s->grave = c->grave_next;
		sl_cql_conn_free(c);
	}
}

static void *io_main(void *arg)
{
	struct sl_cql_session *s = arg;
	struct epoll_event evs[128];
	while (!atomic_load(&s->stop)) {
		int n = epoll_wait(s->epfd, evs, 128, 20);
		for (int i = 0; i < n; i++) {
			if (!evs[i].data.ptr) {
				uint64_t v;
				ssize_t got = read(s->evfd, &v, sizeof v);
				(void)got;
				continue;
			}
			sl_cql_conn_event(evs[i].data.ptr, evs[i].events);
		}
		drain_queue(s);
		uint64_t now = sl_cql_now_ms();
		if (now - s->last_tick_ms >= 20) {
			s->last_tick_ms = now;
			maintain(s, now);
		}
		flush_and_reap(s);
	}
	/* Shutting down: fail everything still queued, pending or in flight. */
	for (int i = 0; i < s->nhosts; i++)
		while (s->hosts[i]->nconns > 0)
			sl_cql_conn_close(s->hosts[i]->conns[0], SL_ECANCELED, "session closed");
	drain_queue(s);
	while (s->pending_head) {
		struct sl_cql_req *r = s->pending_head;
		s->pending_head = r->qnext;
		fail(s, r, SL_ECANCELED, -1, false, "session closed");
	}
	while (s->ntimers > 0) {
		struct sl_cql_timer t = s->timers[--s->ntimers];
		t.fn(s, t.arg); /* continuations see stop and finish */
	}
	drain_queue(s);
	flush_and_reap(s);
	return NULL;
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
			int h = add_host(s, (struct sockaddr_storage *)p->ai_addr, p->ai_addrlen);
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

static int tls_init(struct sl_cql_session *s, struct sl_err *e)
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
	if (s->ssl_ctx)
		SSL_CTX_free(s->ssl_ctx);
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
		rc = tls_init(s, e);
	if (rc == 0) {
		s->epfd = epoll_create1(EPOLL_CLOEXEC);
		s->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
		if (s->epfd < 0 || s->evfd < 0 || epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->evfd, &ev) < 0)
			rc = sl_err_set(e, SL_EIO, "epoll/eventfd: %s", strerror(errno));
	}
	if (rc == 0) {
		if (pthread_create(&s->thread, NULL, io_main, s) != 0)
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
	struct sl_cql_req *r = req_new();
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
	struct sl_cql_req *r = req_new();
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
	struct sl_cql_req *r = req_new();
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
	out->hosts_up = atomic_load(&s->st_hosts_up);
	out->connections = atomic_load(&s->st_connections);
	pthread_mutex_lock(&s->q_mu);
	out->inflight = s->inflight;
	pthread_mutex_unlock(&s->q_mu);
	out->hosts_total = s->nhosts;
}
