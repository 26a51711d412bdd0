/* What the session knows of the cluster, kept on the I/O thread: hosts (contact points, then every peer the ring
 * refresh finds in system.peers_v2, or system.peers on older servers), the token ring and keyspace replication that
 * token-aware plans read, which hosts get pools (the local data centre, remote ones when allowed), the bootstrap that
 * connect waits for, cluster events (topology and status changes, keyspace changes), and schema agreement after
 * DDL. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "cql/internal.h"
#include "cql/types.h"

/* ---- schema agreement (after DDL) ---- */

static void agree_finish(struct sl_cql_session *s, struct sl_cql_req *r, bool agreed)
{
	struct sl_cql_result *res = r->held;
	r->held = NULL;
	res->schema_agreed = agreed;
	if (!agreed)
		sl_warn("cql", "schema agreement not reached within %d ms statement=\"%s\"", s->o.schema_agreement_ms,
			sl_cql_req_desc(r));
	sl_cql_complete(s, r, 0, NULL, -1, false, res, NULL);
}

static int control_host(struct sl_cql_session *s)
{
	if (s->control >= 0 && sl_cql_host_up(s, s->control))
		return s->control;
	for (int i = 0; i < s->nhosts; i++)
		if (s->hosts[i]->enabled && sl_cql_host_up(s, i))
			return i;
	return -1;
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
					up = sl_cql_host_up(s, i);
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
		sl_cql_add_timer(s, sl_cql_now_ms() + 200, sl_cql_agree_step, r);
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
	struct sl_cql_req *p = rc == 0 ? sl_cql_internal_query(s, qtext, q->target, agree_peers, r) : NULL;
	if (p)
		sl_cql_dispatch(s, p);
	else if (sl_cql_now_ms() >= r->agree_deadline_ms)
		agree_finish(s, r, false);
	else
		sl_cql_add_timer(s, sl_cql_now_ms() + 200, sl_cql_agree_step, r);
}

void sl_cql_agree_step(struct sl_cql_session *s, void *arg)
{
	struct sl_cql_req *r = arg;
	int h = control_host(s);
	struct sl_cql_req *q = h >= 0 && !atomic_load(&s->stop)
				       ? sl_cql_internal_query(s, "SELECT schema_version FROM system.local WHERE key='local'", h,
							agree_local, r)
				       : NULL;
	if (!q) {
		agree_finish(s, r, false);
		return;
	}
	sl_cql_dispatch(s, q);
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

int sl_cql_add_host(struct sl_cql_session *s, const struct sockaddr_storage *ss, socklen_t len)
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

void sl_cql_boot_done(struct sl_cql_session *s, int rc, const char *msg)
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
		sl_cql_boot_done(s, err && err->code ? err->code : SL_EPROTO, msg);
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
		bool keep = rf->seen[i] && (sl_cql_host_local(s, i) || s->o.use_remote_dcs);
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
		sl_cql_boot_done(s, 0, NULL);
	free(rf);
	s->refreshing = false;
}

static void refresh_peers(struct sl_cql_session *s, struct sl_cql_req *q, int rc, const struct sl_err *err,
			  int32_t code, struct sl_cql_result *res);

static void refresh_after_peers(struct sl_cql_session *s, struct refresh *rf)
{
	struct sl_cql_req *q = sl_cql_internal_query(s, "SELECT keyspace_name, replication FROM system_schema.keyspaces",
					      rf->control, refresh_keyspaces, NULL);
	if (!q) {
		refresh_fail(s, rf, "keyspaces", NULL);
		return;
	}
	q->iarg = rf;
	sl_cql_dispatch(s, q);
}

static void refresh_peers(struct sl_cql_session *s, struct sl_cql_req *q, int rc, const struct sl_err *err,
			  int32_t code, struct sl_cql_result *res)
{
	struct refresh *rf = q->iarg;
	if (rc < 0 && code == SL_CQL_ERR_INVALID && !strcmp(s->peers_table, "system.peers_v2")) {
		/* Servers before 4.0 have no peers_v2. */
		s->peers_table = "system.peers";
		struct sl_cql_req *q2 = sl_cql_internal_query(
			s, "SELECT peer, rpc_address, data_center, rack, tokens FROM system.peers", rf->control,
			refresh_peers, NULL);
		if (!q2) {
			refresh_fail(s, rf, "peers", NULL);
			return;
		}
		q2->iarg = rf;
		sl_cql_dispatch(s, q2);
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
		int h = sl_cql_add_host(s, &ss, len);
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
	struct sl_cql_req *q2 = sl_cql_internal_query(s, qtext, rf->control, refresh_peers, NULL);
	if (!q2) {
		refresh_fail(s, rf, "peers", NULL);
		return;
	}
	q2->iarg = rf;
	sl_cql_dispatch(s, q2);
}

void sl_cql_start_refresh(struct sl_cql_session *s, bool boot)
{
	if (s->refreshing)
		return;
	int h = control_host(s);
	if (h < 0)
		return;
	struct refresh *rf = calloc(1, sizeof *rf);
	struct sl_cql_req *q = rf ? sl_cql_internal_query(s,
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
	sl_cql_dispatch(s, q);
}

static void refresh_timer(struct sl_cql_session *s, void *arg)
{
	(void)arg;
	sl_cql_start_refresh(s, false);
}

void sl_cql_on_event(struct sl_cql_session *s, const struct sl_cql_event *ev)
{
	if (ev->kind == SL_CQL_EVENT_SCHEMA) {
		if (!strcmp(ev->target, "KEYSPACE"))
			sl_cql_add_timer(s, sl_cql_now_ms() + 500, refresh_timer, NULL);
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
		sl_cql_add_timer(s, sl_cql_now_ms() + 1000, refresh_timer, NULL);
}
