/* The session's I/O thread: one epoll loop over every connection and the eventfd that user threads ring when they
 * queue a request; each iteration handles socket events, dispatches the submission queue, every 20 ms runs the
 * maintenance tick (connection deadlines and heartbeats, opening pools with reconnection backoff, pending requests'
 * deadlines, timers), then flushes every connection written to and frees the closed ones. The connection hooks
 * (ready, closed) keep the host pools, the control connection and the bootstrap's outcome. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "core/log.h"
#include "cql/internal.h"

/* ---- timers and dirty connections ---- */

void sl_cql_add_timer(struct sl_cql_session *s, uint64_t at, void (*fn)(struct sl_cql_session *, void *), void *arg)
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
		sl_cql_start_refresh(s, true);
	/* Requests that waited for a connection go now. */
	struct sl_cql_req *r = s->pending_head;
	s->pending_head = s->pending_tail = NULL;
	while (r) {
		struct sl_cql_req *next = r->qnext;
		sl_cql_dispatch(s, r);
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
			struct sl_cql_conn *o = s->hosts[i]->enabled ? sl_cql_pick_conn(s, i) : NULL;
			struct sl_cql_req *r = o ? sl_cql_req_new() : NULL;
			if (!r)
				continue;
			r->opcode = SL_CQL_OP_REGISTER;
			sl_cql_enc_register(&r->body);
			r->icb = register_done;
			r->target = i;
			snprintf(r->desc, sizeof r->desc, "REGISTER");
			o->control = true;
			s->control = i;
			sl_cql_dispatch(s, r);
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
			sl_cql_boot_done(s, code, msg);
		}
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
		if (h->enabled && sl_cql_host_up(s, i))
			up++;
	}
	atomic_store(&s->st_hosts_up, up);
	/* Requests waiting for a connection give up at their deadline. */
	struct sl_cql_req *r = s->pending_head, *keep_head = NULL, *keep_tail = NULL;
	s->pending_head = s->pending_tail = NULL;
	while (r) {
		struct sl_cql_req *next = r->qnext;
		r->qnext = NULL;
		if (now >= r->deadline_ms || !sl_cql_any_connecting(s)) {
			char msg[400];
			snprintf(msg, sizeof msg, "no connection to any host within %d ms", r->timeout_ms);
			for (int i = 0; i < s->nhosts; i++)
				if (s->hosts[i]->enabled && s->hosts[i]->last_error[0]) {
					snprintf(msg, sizeof msg, "no connection to any host within %d ms; %s: %s",
						 r->timeout_ms, s->hosts[i]->name, s->hosts[i]->last_error);
					break;
				}
			atomic_fetch_add(&s->st_timeouts, 1);
			sl_cql_fail(s, r, SL_ETIMEDOUT, -1, true, msg);
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
		sl_cql_dispatch(s, r);
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

void *sl_cql_io_main(void *arg)
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
		sl_cql_fail(s, r, SL_ECANCELED, -1, false, "session closed");
	}
	while (s->ntimers > 0) {
		struct sl_cql_timer t = s->timers[--s->ntimers];
		t.fn(s, t.arg); /* continuations see stop and finish */
	}
	drain_queue(s);
	flush_and_reap(s);
	return NULL;
}
