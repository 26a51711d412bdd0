/* What happens to a request on the I/O thread: its query plan (token-aware replicas first, from a rotating start,
 * then the local data centre's hosts, then remote ones when allowed), dispatch to the least busy ready connection of
 * the first host that can take it, the retry policy (per server error, idempotent statements only where running twice
 * could matter), transparent re-prepare on UNPREPARED, the handling of every response, and completion (a future for
 * user requests, a function for internal ones). Everything here runs on the I/O thread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "cql/internal.h"

/* How soon hosts are tried again when a request finds none up (see sl_cql_dispatch). */
#define DEMAND_RECONNECT_MS 2000

/* ---- requests ---- */

void sl_cql_req_free(struct sl_cql_req *r)
{
	if (!r)
		return;
	sl_buf_free(&r->body);
	sl_cql_result_free(r->held);
	free(r);
}

/* ---- completion ---- */

void sl_cql_complete(struct sl_cql_session *s, struct sl_cql_req *r, int rc, const struct sl_err *err,
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

void sl_cql_fail(struct sl_cql_session *s, struct sl_cql_req *r, int code, int32_t server_code, bool retryable,
		 const char *msg)
{
	struct sl_err e;
	sl_err_set(&e, code, "\"%s\": %s", sl_cql_req_desc(r), msg);
	sl_cql_complete(s, r, code, &e, server_code, retryable, NULL, NULL);
}

/* ---- hosts and plans ---- */

struct sl_cql_conn *sl_cql_pick_conn(struct sl_cql_session *s, int i)
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
			if (s->hosts[h]->enabled && sl_cql_host_local(s, h) && sl_cql_host_up(s, h))
				plan_add(r, h);
		}
	}
	unsigned start = s->rr++;
	for (int pass = 0; pass < 2; pass++)
		for (int k = 0; k < s->nhosts; k++) {
			int h = (int)((start + (unsigned)k) % (unsigned)s->nhosts);
			if (!s->hosts[h]->enabled || !sl_cql_host_up(s, h))
				continue;
			bool local = sl_cql_host_local(s, h);
			if ((pass == 0 && local) || (pass == 1 && !local && s->o.use_remote_dcs))
				plan_add(r, h);
		}
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

void sl_cql_dispatch(struct sl_cql_session *s, struct sl_cql_req *r)
{
	if (atomic_load(&s->stop)) {
		sl_cql_fail(s, r, SL_ECANCELED, -1, false, "session is closing");
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
		struct sl_cql_conn *c = sl_cql_pick_conn(s, r->plan[r->plan_pos]);
		if (c && sl_cql_conn_send(c, r) == 0)
			return;
	}
	/* Nothing usable now: wait for a connection if one may come up, else fail. */
	if (r->target < 0 && sl_cql_any_connecting(s)) {
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
	sl_cql_fail(s, r, SL_ECLOSED, -1, true, msg);
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
	sl_cql_dispatch(s, r);
	return true;
}

void sl_cql_on_req_failed(struct sl_cql_session *s, struct sl_cql_req *r, int code, const char *msg)
{
	/* Only idempotent statements may run twice; anything else might have been applied already. */
	if (!atomic_load(&s->stop) && r->idempotent && !r->icb && code != SL_EAUTH && retry(s, r, true))
		return;
	sl_cql_fail(s, r, code, -1, code == SL_ETIMEDOUT || code == SL_ECLOSED, msg);
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
		/* The statement was prepared before: a node that forgot it has just restarted, and what fails now (not
		 * ready, closed, schema not loaded yet) passes. Another replica may take an idempotent statement at once;
		 * otherwise the failure is retryable, so the caller tries again rather than dead-lettering a good record. */
		if (!atomic_load(&s->stop) && r->idempotent && retry(s, r, true))
			return;
		sl_cql_fail(s, r, rc < 0 ? rc : SL_EPROTO, server_code, true, msg);
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
	sl_cql_dispatch(s, r);
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
	struct sl_cql_req *rp = p && r->reprepares < 2 ? sl_cql_req_new() : NULL;
	if (!rp) {
		sl_cql_fail(s, r, SL_ESERVER, SL_CQL_ERR_UNPREPARED, false, msg);
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
	sl_cql_dispatch(s, rp);
}

/* ---- internal requests (discovery, schema agreement, USE) ---- */

struct sl_cql_req *sl_cql_internal_query(struct sl_cql_session *s, const char *q, int target, sl_cql_icb cb,
					 struct sl_cql_req *parent)
{
	struct sl_cql_req *r = sl_cql_req_new();
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
		sl_cql_fail(s, r, SL_ENOMEM, -1, false, "out of memory caching the prepared statement");
		return;
	}
	sl_cql_complete(s, r, 0, NULL, -1, false, NULL, p);
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
			struct sl_cql_req *r = sl_cql_internal_query(s, q, i, use_done, NULL);
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
		sl_cql_fail(s, r, SL_EPROTO, -1, false, e.msg);
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
	sl_cql_fail(s, r, code_to_rc(er.code), er.code, sl_cql_error_code_retryable(er.code), msg);
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
			sl_cql_fail(s, r, e.code, -1, false, msg);
			return;
		}
		if (r->icb) {
			sl_cql_complete(s, r, 0, NULL, -1, false, res, NULL);
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
				sl_cql_agree_step(s, r);
				return;
			}
			break;
		}
		sl_cql_complete(s, r, 0, NULL, -1, false, res, NULL);
		return;
	}
	struct sl_cql_rd rd;
	sl_cql_rd_init(&rd, body, len);
	if (sl_cql_decode_prefix(&rd, h->flags, NULL, NULL, NULL, NULL, &e) < 0) {
		free(body);
		sl_cql_fail(s, r, SL_EPROTO, -1, false, e.msg);
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
		sl_cql_complete(s, r, 0, NULL, -1, false, NULL, NULL);
	else {
		char msg[120];
		snprintf(msg, sizeof msg, "unexpected %s in answer to %s", sl_cql_opcode_name(h->opcode),
			 sl_cql_opcode_name(r->opcode));
		sl_cql_fail(s, r, SL_EPROTO, -1, false, msg);
	}
}
