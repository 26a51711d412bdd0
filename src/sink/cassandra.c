/* The Cassandra sink, on sluice's own CQL client (src/cql/). The keyspace and table are created from the pipeline's
 * schema when absent; rows are written with one prepared INSERT (an upsert), as concurrent single statements, or as
 * an unlogged batch when several rows of one batch share a partition key (batching across partitions only moves work
 * to the coordinator). Nulls are bound as unset unless configured otherwise, so no tombstones are written.
 *
 * A batch completes when every row is written or rejected. Rows that fail for a reason that may pass (timeouts,
 * unavailable, overloaded, a node down) are retried from the processor's thread with capped exponential backoff and
 * full jitter; after max_attempts the batch fails as a whole (retryable), and the processor holds it and tries again,
 * committing nothing, so nothing is lost while Cassandra is away. Rows that can never be written (an invalid value)
 * are rejected one by one to the dead-letter topic. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/buf.h"
#include "core/log.h"
#include "cql/cql.h"
#include "sink/sink.h"

const struct sl_opt sl_cassandra_opts[] = {
	{"contact_points", SL_OPT_STRLIST, "127.0.0.1", offsetof(struct sl_cassandra_conf, contact_points),
	 "hosts to discover the cluster from (host or host:port)"},
	{"port", SL_OPT_INT, "9042", offsetof(struct sl_cassandra_conf, port), "native protocol port", .min = 1,
	 .max = 65535},
	{"local_dc", SL_OPT_STRING, NULL, offsetof(struct sl_cassandra_conf, local_dc),
	 "data centre to write to (default: the first contact point's)"},
	{"username", SL_OPT_STRING, NULL, offsetof(struct sl_cassandra_conf, username),
	 "user for PasswordAuthenticator"},
	{"password_env", SL_OPT_STRING, NULL, offsetof(struct sl_cassandra_conf, password_env),
	 "environment variable holding the password (never put the password in the file)"},
	{"compression", SL_OPT_BOOL, "false", offsetof(struct sl_cassandra_conf, compression),
	 "lz4 on the wire: fewer bytes over a slow link, but every node spends CPU on each request (about a quarter more "
	 "per row on a CPU-bound node, docs/benchmarks.md)"},
	{"tls", SL_OPT_BOOL, "false", offsetof(struct sl_cassandra_conf, tls), "TLS to the nodes"},
	{"tls_ca_file", SL_OPT_STRING, NULL, offsetof(struct sl_cassandra_conf, tls_ca_file),
	 "CA bundle (PEM) that verifies the nodes' certificates (default: the system's CA store; always verified)"},
	{"tls_cert_file", SL_OPT_STRING, NULL, offsetof(struct sl_cassandra_conf, tls_cert_file),
	 "client certificate (PEM) for nodes with require_client_auth"},
	{"tls_key_file", SL_OPT_STRING, NULL, offsetof(struct sl_cassandra_conf, tls_key_file),
	 "private key (PEM, unencrypted) of tls_cert_file"},
	{"tls_verify_hostname", SL_OPT_BOOL, "true", offsetof(struct sl_cassandra_conf, tls_verify_hostname),
	 "the node's certificate must name the address or host it is reached by (IP or DNS subject alternative name)"},
	{"connect_timeout", SL_OPT_DURATION, "5s", offsetof(struct sl_cassandra_conf, connect_timeout_ms),
	 "connect timeout per host"},
	{"request_timeout", SL_OPT_DURATION, "12s", offsetof(struct sl_cassandra_conf, request_timeout_ms),
	 "timeout of one write"},
	{"speculative_delay", SL_OPT_DURATION, "0", offsetof(struct sl_cassandra_conf, speculative_delay_ms),
	 "0 (off), or how long a write waits for its replica before it is sent to the next replica as well (the "
	 "first answer wins; writes are idempotent upserts)"},
	{"max_inflight", SL_OPT_INT, "2048", offsetof(struct sl_cassandra_conf, max_inflight),
	 "writes in flight at once (bounds memory and load on the cluster)", .min = 1, .max = 32768},
	{"max_attempts", SL_OPT_INT, "6", offsetof(struct sl_cassandra_conf, max_attempts),
	 "tries of a row that fails retryably before the batch is failed and retried whole", .min = 1, .max = 100},
	{"retry_backoff_max", SL_OPT_DURATION, "10s", offsetof(struct sl_cassandra_conf, retry_backoff_max_ms),
	 "cap of the backoff between tries"},
	{NULL},
};

#define MAX_BATCH_BYTES (40 * 1024) /* the server fails batches over 50 KiB by default */

/* One submitted batch: its rows grouped by partition, and what came back. Several are in flight at once, so the
 * processor can read and decode the next batch while Cassandra writes this one. */
struct cbatch;

struct group {            /* rows written by one request */
	struct cbatch *cb;
	size_t first, n;  /* into cb->order */
};

struct reject {
	size_t idx;
	char msg[400];
};

struct cbatch {
	struct sl_sink_batch *b;
	struct cbatch *next;      /* the sink's active list, in submission order */
	int pending;              /* requests in flight (guarded by the sink's mutex) */
	size_t *order;            /* record indexes grouped by partition */
	size_t norder;
	struct group *groups;
	size_t ngroups;
	size_t *retry;
	size_t nretry, retry_cap;
	struct reject *rejects;
	size_t nrejects, rejects_cap;
	char last_error[SL_ERR_MSG_MAX];
	int attempt;
	double retry_at;
	bool retry_when_up;       /* scheduled while no host was up: retried as soon as one is */
};

struct cass_sink {
	struct sl_sink base;
	struct sl_cassandra_conf cc;
	const struct sl_sink_conf *conf;
	struct sl_cql_session *session;
	struct sl_cql_prepared *insert;
	struct sl_cql_statement *row;   /* bound again for every row (execute copies what it needs) */
	struct sl_cql_batch *batch;     /* likewise for the rows of one partition */
	const struct sl_schema *schema;
	int part_field;          /* field index of the partition key */
	int *cols;               /* field indexes written as columns, in bind order */
	size_t ncols;
	int ttl_field, wt_field; /* field indexes bound to USING TTL ? / TIMESTAMP ?, or -1 */
	int consistency;
	char *fq;                /* "ks"."table" */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int pending;             /* requests in flight over all batches */
	struct cbatch *active, *active_tail;
	uint64_t rng;
};

static int hosts_up(struct cass_sink *s)
{
	struct sl_cql_session_stats st;
	sl_cql_session_stats(s->session, &st);
	return st.hosts_up;
}

static const char *cql_type(enum sl_type t)
{
	switch (t) {
	case SL_T_TEXT: return "text";
	case SL_T_INT: return "int";
	case SL_T_BIGINT: return "bigint";
	case SL_T_DOUBLE: return "double";
	case SL_T_BOOLEAN: return "boolean";
	case SL_T_UUID: return "uuid";
	case SL_T_TIMESTAMP: return "timestamp";
	case SL_T_DATE: return "date";
	default: return "blob";
	}
}

static int grow(void **arr, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	size_t c = *cap ? *cap : 64;
	while (c < need)
		c *= 2;
	void *n = realloc(*arr, c * elem);
	if (!n)
		return SL_ENOMEM;
	*arr = n;
	*cap = c;
	return 0;
}

static int cs_prepare(struct sl_sink *bs, const struct sl_schema *schema, struct sl_err *err)
{
	struct cass_sink *s = (struct cass_sink *)bs;
	s->schema = schema;
	struct sl_buf pkcols;
	sl_buf_init(&pkcols);
	const char *part = NULL;
	int prc = sl_sink_primary_key(s->conf, schema, s->fq, &pkcols, &part, err);
	if (prc) {
		sl_buf_free(&pkcols);
		return prc;
	}
	s->part_field = sl_schema_find(schema, part, strlen(part));
	if (s->part_field < 0) {
		sl_buf_free(&pkcols);
		return sl_err_set(err, SL_ECONFIG, "sink %s: partition key '%s' is not a mapped column", s->fq, part);
	}
	if ((prc = sl_sink_check_fields(s->conf, schema, s->fq, err))) {
		sl_buf_free(&pkcols);
		return prc;
	}
	free(s->cols);
	s->cols = calloc(schema->n ? schema->n : 1, sizeof *s->cols);
	if (!s->cols) {
		sl_buf_free(&pkcols);
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	}
	s->ncols = 0;
	for (size_t i = 0; i < schema->n; i++)
		if (sl_sink_is_column(s->conf, schema->fields[i].name))
			s->cols[s->ncols++] = (int)i;
	s->ttl_field = s->conf->ttl_field ? sl_schema_find(schema, s->conf->ttl_field, strlen(s->conf->ttl_field)) : -1;
	s->wt_field = s->conf->writetime_field
			      ? sl_schema_find(schema, s->conf->writetime_field, strlen(s->conf->writetime_field))
			      : -1;
	struct sl_buf q;
	sl_buf_init(&q);
	sl_buf_puts(&q, "CREATE KEYSPACE IF NOT EXISTS ");
	sl_sink_ident(&q, s->conf->keyspace);
	sl_buf_printf(&q, " WITH replication = %s", s->conf->replication);
	int rc = sl_cql_session_query(s->session, sl_buf_cstr(&q), NULL, err);
	if (rc == 0) {
		sl_buf_reset(&q);
		sl_buf_printf(&q, "CREATE TABLE IF NOT EXISTS %s (", s->fq);
		for (size_t i = 0; i < s->ncols; i++) {
			const struct sl_field *f = &schema->fields[s->cols[i]];
			sl_sink_ident(&q, sl_sink_column(s->conf, f->name));
			sl_buf_printf(&q, " %s, ", cql_type(f->type));
		}
		sl_buf_puts(&q, "PRIMARY KEY (");
		sl_buf_append(&q, pkcols.data, pkcols.len);
		sl_buf_puts(&q, "))");
		rc = sl_cql_session_query(s->session, sl_buf_cstr(&q), NULL, err);
	}
	if (rc == 0) {
		sl_buf_reset(&q);
		sl_buf_printf(&q, "INSERT INTO %s (", s->fq);
		for (size_t i = 0; i < s->ncols; i++) {
			if (i)
				sl_buf_puts(&q, ", ");
			sl_sink_ident(&q, sl_sink_column(s->conf, schema->fields[s->cols[i]].name));
		}
		sl_buf_puts(&q, ") VALUES (");
		for (size_t i = 0; i < s->ncols; i++)
			sl_buf_puts(&q, i ? ", ?" : "?");
		sl_buf_puts(&q, ")");
		/* A row's TTL and write time: from a field when configured (bound per row), else the table-wide TTL. */
		const char *sep = " USING ";
		if (s->ttl_field >= 0) {
			sl_buf_printf(&q, "%sTTL ?", sep);
			sep = " AND ";
		} else if (s->conf->ttl_s > 0) {
			sl_buf_printf(&q, "%sTTL %" PRId64, sep, s->conf->ttl_s / 1000 > 0 ? s->conf->ttl_s / 1000 : 1);
			sep = " AND ";
		}
		if (s->wt_field >= 0)
			sl_buf_printf(&q, "%sTIMESTAMP ?", sep);
		rc = sl_cql_session_prepare_wait(s->session, sl_buf_cstr(&q), &s->insert, err);
		if (rc == 0) {
			sl_cql_statement_free(s->row);
			s->row = sl_cql_prepared_bind(s->insert);
			if (!s->batch && (s->batch = sl_cql_batch_new(SL_CQL_BATCH_UNLOGGED))) {
				sl_cql_batch_set_consistency(s->batch, s->consistency);
				sl_cql_batch_set_idempotent(s->batch, true); /* upserts of fixed values, as each row */
			}
			if (!s->row || !s->batch)
				rc = sl_err_set(err, SL_ENOMEM, "out of memory");
		} else
			sl_err_prefix(err, "sink %s: preparing the insert (does the existing table have every mapped "
					   "column?): ", s->fq);
	}
	sl_buf_free(&q);
	sl_buf_free(&pkcols);
	return rc;
}

static void bind_row(struct cass_sink *s, struct sl_cql_statement *st, const struct sl_record *r)
{
	for (size_t k = 0; k < s->ncols; k++) {
		size_t c = (size_t)s->cols[k];
		const struct sl_value *v = &r->v[c];
		int i = (int)k;
		if (v->null) {
			if (s->conf->null_as_unset)
				sl_cql_bind_unset(st, i);
			else
				sl_cql_bind_null(st, i);
			continue;
		}
		switch (s->schema->fields[c].type) {
		case SL_T_TEXT: sl_cql_bind_text(st, i, v->u.s.p, v->u.s.n); break;
		case SL_T_INT: sl_cql_bind_int32(st, i, v->u.i32); break;
		case SL_T_BIGINT:
		case SL_T_TIMESTAMP: sl_cql_bind_int64(st, i, v->u.i64); break;
		case SL_T_DOUBLE: sl_cql_bind_double(st, i, v->u.d); break;
		case SL_T_BOOLEAN: sl_cql_bind_bool(st, i, v->u.b); break;
		case SL_T_UUID: sl_cql_bind_uuid(st, i, v->u.uuid); break;
		case SL_T_DATE: sl_cql_bind_uint32(st, i, (uint32_t)((int64_t)v->u.days + 2147483648LL)); break;
		default: sl_cql_bind_null(st, i); break;
		}
	}
	int next = (int)s->ncols;
	if (s->ttl_field >= 0) {
		/* A missing TTL means none (0); a negative one is refused by the server and dead-letters the row. */
		const struct sl_value *v = &r->v[s->ttl_field];
		int64_t ttl = v->null ? 0 : s->schema->fields[s->ttl_field].type == SL_T_INT ? v->u.i32 : v->u.i64;
		sl_cql_bind_int32(st, next++, ttl > INT32_MAX ? INT32_MAX : (int32_t)ttl);
	}
	if (s->wt_field >= 0) {
		/* Write time in microseconds; a missing one is left to the coordinator's clock. */
		const struct sl_value *v = &r->v[s->wt_field];
		if (v->null)
			sl_cql_bind_unset(st, next++);
		else
			sl_cql_bind_int64(st, next++, v->u.i64 * 1000);
	}
	sl_cql_statement_set_consistency(st, s->consistency);
	sl_cql_statement_set_idempotent(st, true); /* an INSERT of fixed values is an upsert */
}

static void on_write(struct sl_cql_future *f, void *data)
{
	struct group *g = data;
	struct cbatch *cb = g->cb;
	struct cass_sink *s = cb->b->opaque_sink;
	int rc = sl_cql_future_rc(f);
	pthread_mutex_lock(&s->mu);
	if (rc) {
		const struct sl_err *e = sl_cql_future_error(f);
		snprintf(cb->last_error, sizeof cb->last_error, "%s", e ? e->msg : sl_strerror(rc));
		int32_t code = sl_cql_future_server_code(f);
		/* The driver retries only what is safe for any statement; our INSERTs are idempotent upserts, so every
		 * error that may pass is worth another try: server error, unavailable, overloaded, bootstrapping,
		 * write timeout, and anything on the client side (timeouts, connections). */
		bool transient = code == 0x0000 || code == 0x1000 || code == 0x1001 || code == 0x1002 ||
				 code == 0x1100 || code == 0x1500;
		if (sl_cql_future_retryable(f) || transient || rc == SL_ETIMEDOUT || rc == SL_EIO ||
		    rc == SL_ECLOSED || rc == SL_EAGAIN || rc == SL_EFULL || rc == SL_ENOTFOUND) {
			if (grow((void **)&cb->retry, &cb->retry_cap, cb->nretry + g->n, sizeof *cb->retry) == 0)
				for (size_t i = 0; i < g->n; i++)
					cb->retry[cb->nretry++] = cb->order[g->first + i];
		} else if (grow((void **)&cb->rejects, &cb->rejects_cap, cb->nrejects + g->n, sizeof *cb->rejects) == 0) {
			for (size_t i = 0; i < g->n; i++) {
				struct reject *rj = &cb->rejects[cb->nrejects++];
				rj->idx = cb->order[g->first + i];
				snprintf(rj->msg, sizeof rj->msg, "cassandra rejected the row: %s", cb->last_error);
			}
		}
	}
	cb->pending--;
	if (--s->pending == 0 || cb->pending == 0)
		pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

static int key_cmp_ctx_field;
static const struct sl_record *key_cmp_recs;

static int cmp_by_partition(const void *a, const void *b)
{
	const struct sl_value *x = &key_cmp_recs[*(const size_t *)a].v[key_cmp_ctx_field];
	const struct sl_value *y = &key_cmp_recs[*(const size_t *)b].v[key_cmp_ctx_field];
	/* Any total order that puts equal keys side by side will do: compare the raw value bytes. */
	int c = memcmp(&x->u, &y->u, sizeof x->u);
	if (!c && x->null != y->null)
		c = x->null ? -1 : 1;
	return c ? c : (*(const size_t *)a < *(const size_t *)b ? -1 : 1);
}

static bool same_partition(const struct cass_sink *s, const struct sl_record *a, const struct sl_record *b)
{
	return sl_value_eq(s->schema->fields[s->part_field].type, &a->v[s->part_field], &b->v[s->part_field]);
}

/* Writes the records of cb whose indexes are in idx (copied), grouped by partition. */
static int submit(struct cass_sink *s, struct cbatch *cb, const size_t *idx, size_t n, struct sl_err *err)
{
	struct sl_sink_batch *b = cb->b;
	free(cb->order);
	free(cb->groups);
	cb->order = malloc((n ? n : 1) * sizeof *cb->order);
	cb->groups = malloc((n ? n : 1) * sizeof *cb->groups);
	if (!cb->order || !cb->groups)
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	memcpy(cb->order, idx, n * sizeof *idx);
	cb->norder = n;
	enum sl_type pt = s->schema->fields[s->part_field].type;
	if (n > 1 && pt != SL_T_TEXT) {
		/* text compares by pointer bytes below, so only fixed-size keys are sorted; text keys are grouped only
		 * when adjacent, which is what a keyed topic partition usually gives anyway */
		pthread_mutex_lock(&s->mu); /* qsort's comparator reads these globals */
		key_cmp_ctx_field = s->part_field;
		key_cmp_recs = b->recs;
		qsort(cb->order, n, sizeof *cb->order, cmp_by_partition);
		pthread_mutex_unlock(&s->mu);
	}
	cb->ngroups = 0;
	for (size_t i = 0; i < n;) {
		size_t j = i + 1;
		while (j < n && same_partition(s, &b->recs[cb->order[i]], &b->recs[cb->order[j]]))
			j++;
		cb->groups[cb->ngroups++] = (struct group){cb, i, j - i};
		i = j;
	}
	pthread_mutex_lock(&s->mu);
	cb->pending += (int)cb->ngroups;
	s->pending += (int)cb->ngroups;
	pthread_mutex_unlock(&s->mu);
	for (size_t g = 0; g < cb->ngroups; g++) {
		struct group *gr = &cb->groups[g];
		struct sl_cql_future *f;
		if (gr->n == 1) {
			sl_cql_statement_reset(s->row);
			bind_row(s, s->row, &b->recs[cb->order[gr->first]]);
			f = sl_cql_session_execute(s->session, s->row);
		} else {
			sl_cql_batch_clear(s->batch);
			for (size_t k = 0; k < gr->n; k++) {
				sl_cql_statement_reset(s->row);
				bind_row(s, s->row, &b->recs[cb->order[gr->first + k]]);
				sl_cql_batch_add(s->batch, s->row);
			}
			f = sl_cql_session_execute_batch(s->session, s->batch);
		}
		sl_cql_future_set_callback(f, on_write, gr);
		sl_cql_future_release(f);
	}
	return 0;
}

static void cbatch_free(struct cbatch *cb)
{
	free(cb->order);
	free(cb->groups);
	free(cb->retry);
	free(cb->rejects);
	free(cb);
}

static int cs_write(struct sl_sink *bs, struct sl_sink_batch *b, struct sl_err *err)
{
	struct cass_sink *s = (struct cass_sink *)bs;
	if (b->n == 0) {
		if (s->base.done)
			s->base.done(s->base.ctx, b, 0, NULL);
		return 0;
	}
	struct cbatch *cb = calloc(1, sizeof *cb);
	size_t *all = malloc(b->n * sizeof *all);
	if (!cb || !all) {
		free(cb);
		free(all);
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	}
	cb->b = b;
	cb->attempt = 1;
	b->opaque_sink = s;
	for (size_t i = 0; i < b->n; i++)
		all[i] = i;
	int rc = submit(s, cb, all, b->n, err);
	free(all);
	if (rc) {
		/* Some requests may be out already: keep the batch so their callbacks find it, and let poll fail it. */
		snprintf(cb->last_error, sizeof cb->last_error, "%s", err->msg);
		cb->attempt = (int)s->cc.max_attempts;
	}
	pthread_mutex_lock(&s->mu);
	if (s->active_tail)
		s->active_tail->next = cb;
	else
		s->active = cb;
	s->active_tail = cb;
	pthread_mutex_unlock(&s->mu);
	return 0;
}

/* Settles a batch whose requests have all come back: rejects reported, retries scheduled or given up, done called.
 * Returns 1 when the batch is finished (and unlinked by the caller). */
static int settle(struct cass_sink *s, struct cbatch *cb)
{
	struct sl_sink_batch *b = cb->b;
	/* Rejected rows go to the dead-letter topic (the processor's reject hook), then are forgotten. */
	for (size_t i = 0; i < cb->nrejects; i++)
		if (s->base.reject)
			s->base.reject(s->base.ctx, b, cb->rejects[i].idx, cb->rejects[i].msg);
	cb->nrejects = 0;
	if (!cb->nretry) {
		if (s->base.done)
			s->base.done(s->base.ctx, b, 0, NULL);
		return 1;
	}
	if (cb->attempt >= s->cc.max_attempts) {
		char msg[SL_ERR_MSG_MAX];
		snprintf(msg, sizeof msg, "%zu rows not written after %d tries: %s", cb->nretry, cb->attempt,
			 cb->last_error);
		if (s->base.done)
			s->base.done(s->base.ctx, b, SL_EAGAIN, msg);
		return 1;
	}
	if (cb->retry_at == 0) {
		/* Full jitter over a capped exponential: spreads retries of many writers over the window. */
		double cap = (double)s->cc.retry_backoff_max_ms / 1000.0;
		double base = 0.1 * (double)(1u << (cb->attempt < 16 ? cb->attempt : 16));
		s->rng = s->rng * 6364136223846793005ULL + 1442695040888963407ULL;
		double u = (double)(s->rng >> 11) / 9007199254740992.0;
		cb->retry_at = sl_mono_s() + u * (base < cap ? base : cap);
		cb->retry_when_up = hosts_up(s) == 0;
		sl_warn("cassandra", "sink %s: %zu rows failed (try %d of %" PRId64 "), retrying: %s", s->fq, cb->nretry,
			cb->attempt, s->cc.max_attempts, cb->last_error);
	}
	if (sl_mono_s() < cb->retry_at && !(cb->retry_when_up && hosts_up(s) > 0))
		return 0;
	cb->retry_at = 0;
	cb->attempt++;
	size_t n = cb->nretry;
	size_t *idx = malloc(n * sizeof *idx);
	if (!idx)
		return 0; /* try again at the next poll */
	memcpy(idx, cb->retry, n * sizeof *idx);
	cb->nretry = 0;
	struct sl_err err = {0};
	if (submit(s, cb, idx, n, &err)) {
		memcpy(cb->retry, idx, n * sizeof *idx); /* keep them for the next poll */
		cb->nretry = n;
	}
	free(idx);
	return 0;
}

static int cs_poll(struct sl_sink *bs, int timeout_ms)
{
	struct cass_sink *s = (struct cass_sink *)bs;
	struct timespec ts;
	sl_deadline(&ts, CLOCK_REALTIME, timeout_ms);
	int completed = 0;
	pthread_mutex_lock(&s->mu);
	for (;;) {
		/* Any batch with nothing in flight can be settled (in any order: the processor commits in order). */
		struct cbatch *ready = NULL, *prev = NULL;
		for (struct cbatch *cb = s->active, *pv = NULL; cb; pv = cb, cb = cb->next)
			if (cb->pending == 0) {
				ready = cb;
				prev = pv;
				break;
			}
		if (!ready) {
			if (completed || !s->active || pthread_cond_timedwait(&s->cv, &s->mu, &ts) != 0)
				break;
			continue;
		}
		/* Unlink while settling: callbacks of other batches keep running meanwhile. */
		if (prev)
			prev->next = ready->next;
		else
			s->active = ready->next;
		if (s->active_tail == ready)
			s->active_tail = prev;
		ready->next = NULL;
		pthread_mutex_unlock(&s->mu);
		int finished = settle(s, ready);
		pthread_mutex_lock(&s->mu);
		if (finished) {
			cbatch_free(ready);
			completed++;
		} else {
			/* Waiting out a backoff, or resubmitted: back at the end of the list. */
			if (s->active_tail)
				s->active_tail->next = ready;
			else
				s->active = ready;
			s->active_tail = ready;
			if (ready->pending == 0 && ready->retry_at > 0) {
				/* Only batches in backoff are left ready: do not spin on them. */
				bool others = false;
				for (struct cbatch *cb = s->active; cb; cb = cb->next)
					if (cb != ready && cb->pending == 0 && cb->retry_at == 0)
						others = true;
				if (!others) {
					pthread_mutex_unlock(&s->mu);
					usleep(timeout_ms > 20 ? 20000 : (useconds_t)timeout_ms * 1000);
					pthread_mutex_lock(&s->mu);
					break;
				}
			}
		}
	}
	pthread_mutex_unlock(&s->mu);
	return completed;
}

static int cs_stored_offset(struct sl_sink *bs, const char *group, const char *topic, int32_t partition, int64_t *out)
{
	(void)bs, (void)group, (void)topic, (void)partition, (void)out;
	return SL_ENOTFOUND; /* offsets live in the Kafka group */
}

static int cs_available(struct sl_sink *bs)
{
	return hosts_up((struct cass_sink *)bs) > 0;
}

/* A CQL text literal: quoted, quotes doubled. */
static void cql_literal(struct sl_buf *b, const char *v)
{
	sl_buf_putc(b, '\'');
	for (const char *p = v; *p; p++) {
		if (*p == '\'')
			sl_buf_putc(b, '\'');
		sl_buf_putc(b, *p);
	}
	sl_buf_putc(b, '\'');
}

static int query_about_table(struct cass_sink *s, const char *select_from, struct sl_cql_result **r,
			     struct sl_err *err)
{
	struct sl_buf q;
	sl_buf_init(&q);
	sl_buf_puts(&q, select_from);
	sl_buf_puts(&q, " WHERE keyspace_name = ");
	cql_literal(&q, s->conf->keyspace);
	sl_buf_puts(&q, " AND table_name = ");
	cql_literal(&q, s->conf->table);
	int rc = sl_buf_ok(&q) ? sl_cql_session_query(s->session, sl_buf_cstr(&q), r, err)
			       : sl_err_set(err, SL_ENOMEM, "out of memory");
	sl_buf_free(&q);
	return rc;
}

/* Never count(*): it reads every row on every node. The node's own estimate (partitions per token range, refreshed
 * every few minutes; a partition is a row when the primary key is the partition key, as in the seed's table) costs
 * one local read. */
static int cs_rows(struct sl_sink *bs, int64_t *out, bool *exact, struct sl_err *err)
{
	struct cass_sink *s = (struct cass_sink *)bs;
	struct sl_cql_result *r = NULL;
	int rc = query_about_table(s, "SELECT partitions_count FROM system.size_estimates", &r, err);
	if (rc)
		return rc;
	int64_t n = 0;
	struct sl_cql_iter it;
	sl_cql_iter_init(&it, r);
	while (sl_cql_iter_next(&it)) {
		int64_t v = 0;
		if (sl_cql_value_int64(sl_cql_iter_value(&it, 0), &v) == 0 && v > 0)
			n += v;
	}
	sl_cql_iter_free(&it);
	sl_cql_result_free(r);
	*out = n;
	*exact = false;
	return 0;
}

static int cs_describe(struct sl_sink *bs, struct sl_sink_column **cols, size_t *n, struct sl_err *err)
{
	struct cass_sink *s = (struct cass_sink *)bs;
	struct sl_cql_result *r = NULL;
	*cols = NULL;
	*n = 0;
	int rc = query_about_table(s, "SELECT column_name, type, kind, position FROM system_schema.columns", &r, err);
	if (rc)
		return rc;
	int rows = sl_cql_result_row_count(r);
	*cols = calloc(rows > 0 ? (size_t)rows : 1, sizeof **cols);
	if (!*cols) {
		sl_cql_result_free(r);
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	}
	struct sl_cql_iter it;
	sl_cql_iter_init(&it, r);
	while (sl_cql_iter_next(&it) && *n < (size_t)rows) {
		struct sl_sink_column *c = &(*cols)[(*n)++];
		const char *t;
		size_t tl;
		if (!sl_cql_value_text(sl_cql_iter_value(&it, 0), &t, &tl))
			snprintf(c->name, sizeof c->name, "%.*s", (int)tl, t);
		if (!sl_cql_value_text(sl_cql_iter_value(&it, 1), &t, &tl))
			snprintf(c->type, sizeof c->type, "%.*s", (int)tl, t);
		if (!sl_cql_value_text(sl_cql_iter_value(&it, 2), &t, &tl)) {
			c->key = tl != 7 || memcmp(t, "regular", 7);
			c->partition = tl == 13 && !memcmp(t, "partition_key", 13);
		}
	}
	sl_cql_iter_free(&it);
	sl_cql_result_free(r);
	if (*n == 0) {
		free(*cols);
		*cols = NULL;
		return sl_err_set(err, SL_ENOTFOUND, "cassandra: no table %s.%s", s->conf->keyspace, s->conf->table);
	}
	return 0;
}

/* A full page comes with a paging state even when nothing follows: one row past it says whether a next page has
 * any (so the last page's "next" is off instead of leading to an empty page). */
static bool more_rows(struct sl_cql_session *session, struct sl_cql_statement *st, const uint8_t *ps, size_t pn)
{
	bool more = true;
	sl_cql_statement_set_page_size(st, 1);
	if (sl_cql_statement_set_paging_state_raw(st, ps, pn) == 0) {
		struct sl_cql_future *f = sl_cql_session_execute(session, st);
		if (f && sl_cql_future_wait(f) == 0)
			more = sl_cql_result_row_count(sl_cql_future_result(f)) > 0;
		sl_cql_future_release(f);
	}
	return more;
}

/* The columns and rows of a result as a page shows them (cells as JSON values, null for what does not render). */
static void page_rows(const struct sl_cql_result *r, struct sl_sink_page *out)
{
	int nc = sl_cql_result_column_count(r);
	out->order = "token";
	for (int i = 0; i < nc; i++) {
		const char *cn = sl_cql_result_column(r, i)->name;
		if (i)
			sl_buf_putc(&out->columns, ',');
		sl_buf_json_str(&out->columns, cn, strlen(cn));
	}
	struct sl_cql_iter it;
	sl_cql_iter_init(&it, r);
	while (sl_cql_iter_next(&it)) {
		sl_buf_puts(&out->rows, out->nrows++ ? ",[" : "[");
		for (int i = 0; i < nc; i++) {
			if (i)
				sl_buf_putc(&out->rows, ',');
			const struct sl_cql_value *v = sl_cql_iter_value(&it, i);
			size_t mark = out->rows.len;
			if (sl_cql_value_is_null(v) || sl_cql_value_format(&out->rows, v, true) < 0) {
				out->rows.len = mark;
				sl_buf_puts(&out->rows, "null");
			}
		}
		sl_buf_putc(&out->rows, ']');
	}
	sl_cql_iter_free(&it);
}

/* Cassandra has no "newest first" over a whole table: pages come in the table's token order, each continuing from
 * the previous page's paging state, which the reader holds as an opaque token. */
static int cs_browse(struct sl_sink *bs, const unsigned char *token, size_t ntoken, int64_t page, int64_t size,
		     struct sl_sink_page *out, struct sl_err *err)
{
	struct cass_sink *s = (struct cass_sink *)bs;
	(void)page;
	struct sl_buf q;
	sl_buf_init(&q);
	sl_buf_puts(&q, "SELECT * FROM ");
	sl_buf_puts(&q, s->fq);
	struct sl_cql_statement *st = sl_buf_ok(&q) ? sl_cql_statement_new(sl_buf_cstr(&q), 0) : NULL;
	sl_buf_free(&q);
	if (!st)
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	sl_cql_statement_set_page_size(st, (int32_t)size);
	sl_cql_statement_set_timeout(st, 10000);
	int rc = token ? sl_cql_statement_set_paging_state_raw(st, token, ntoken) : 0;
	struct sl_cql_future *f = rc ? NULL : sl_cql_session_execute(s->session, st);
	if (!f) {
		sl_cql_statement_free(st);
		return rc ? sl_err_set(err, SL_EINVAL, "bad page token") : sl_err_set(err, SL_ENOMEM, "out of memory");
	}
	if (sl_cql_future_wait(f) < 0) {
		/* A token the server cannot read (forged, or from before the table changed) is the client's mistake. */
		int32_t code = sl_cql_future_server_code(f);
		rc = sl_err_set(err, code == SL_CQL_ERR_INVALID || code == SL_CQL_ERR_PROTOCOL ? SL_EINVAL : SL_EIO,
				"cassandra %s.%s: %s", s->conf->keyspace, s->conf->table, sl_cql_future_error(f)->msg);
	} else {
		const struct sl_cql_result *r = sl_cql_future_result(f);
		page_rows(r, out);
		const uint8_t *ps;
		size_t pn;
		if (sl_cql_result_paging_state(r, &ps, &pn) == 0 && pn <= sizeof out->next_token &&
		    sl_cql_result_row_count(r) > 0 && more_rows(s->session, st, ps, pn)) {
			memcpy(out->next_token, ps, pn);
			out->next_token_len = pn;
			out->more = true;
		}
	}
	sl_cql_future_release(f);
	sl_cql_statement_free(st);
	return rc;
}

/* A value typed in a filter box as a CQL literal of the column's type: numbers, booleans and uuids as they are once
 * they are checked to be only that (nothing else can reach the statement), everything else quoted with '' doubled. */
static int typed_literal(struct sl_buf *q, const char *type, const char *value, struct sl_err *err)
{
	static const char *const bare[] = {"int", "bigint", "smallint", "tinyint", "varint", "counter", "float",
					   "double", "decimal", "boolean", "uuid", "timeuuid"};
	for (size_t i = 0; i < sizeof bare / sizeof *bare; i++) {
		if (strcmp(type, bare[i]))
			continue;
		const char *ok = !strcmp(type, "boolean") ? "truefalsTRUEFALS"
			       : strstr(type, "uuid")     ? "0123456789abcdefABCDEF-"
			       : !strcmp(type, "float") || !strcmp(type, "double") || !strcmp(type, "decimal")
				   ? "0123456789+-.eE"
				   : "0123456789+-";
		if (!*value || value[strspn(value, ok)])
			return sl_err_set(err, SL_EINVAL, "'%.64s' is not a %s", value, type);
		sl_buf_puts(q, value);
		return 0;
	}
	if (strchr(type, '<') || !strcmp(type, "blob"))
		return sl_err_set(err, SL_EINVAL, "a partition key of type %s cannot be filtered here", type);
	cql_literal(q, value);
	return 0;
}

/* One partition: SELECT * WHERE key = literal, a single read on the replicas that own it (never a scan). */
static int cs_find(struct sl_sink *bs, const char *value, int64_t size, struct sl_sink_page *out, struct sl_err *err)
{
	struct cass_sink *s = (struct cass_sink *)bs;
	struct sl_sink_column *cols = NULL;
	size_t n = 0, nkey = 0, k = 0;
	int rc = cs_describe(bs, &cols, &n, err);
	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++)
		if (cols[i].partition) {
			nkey++;
			k = i;
		}
	struct sl_buf q;
	sl_buf_init(&q);
	if (nkey != 1) {
		rc = sl_err_set(err, SL_EINVAL, "cassandra %s.%s: the partition key has %zu columns; the filter takes one",
				s->conf->keyspace, s->conf->table, nkey);
	} else {
		sl_buf_puts(&q, "SELECT * FROM ");
		sl_buf_puts(&q, s->fq);
		sl_buf_puts(&q, " WHERE ");
		sl_sink_ident(&q, cols[k].name);
		sl_buf_puts(&q, " = ");
		rc = typed_literal(&q, cols[k].type, value, err);
		if (!rc)
			sl_buf_printf(&q, " LIMIT %lld", (long long)size);
	}
	free(cols);
	if (rc) {
		sl_buf_free(&q);
		return rc;
	}
	struct sl_cql_statement *st = sl_buf_ok(&q) ? sl_cql_statement_new(sl_buf_cstr(&q), 0) : NULL;
	sl_buf_free(&q);
	if (!st)
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	sl_cql_statement_set_page_size(st, (int32_t)size);
	sl_cql_statement_set_timeout(st, 10000);
	struct sl_cql_future *f = sl_cql_session_execute(s->session, st);
	if (!f) {
		rc = sl_err_set(err, SL_ENOMEM, "out of memory");
	} else if (sl_cql_future_wait(f) < 0) {
		/* A literal the server refuses (a timestamp it cannot read) is the client's mistake. */
		int32_t code = sl_cql_future_server_code(f);
		rc = sl_err_set(err, code == SL_CQL_ERR_INVALID || code == SL_CQL_ERR_SYNTAX ? SL_EINVAL : SL_EIO,
				"cassandra %s.%s: %s", s->conf->keyspace, s->conf->table, sl_cql_future_error(f)->msg);
	} else {
		page_rows(sl_cql_future_result(f), out);
	}
	sl_cql_future_release(f);
	sl_cql_statement_free(st);
	return rc;
}

static void cs_destroy(struct sl_sink *bs)
{
	struct cass_sink *s = (struct cass_sink *)bs;
	/* Let writes in flight finish before the session (and the groups their callbacks use) go away. */
	pthread_mutex_lock(&s->mu);
	while (s->pending > 0)
		pthread_cond_wait(&s->cv, &s->mu);
	pthread_mutex_unlock(&s->mu);
	if (s->session && s->cc.speculative_delay_ms > 0) {
		/* What speculation did, once per run (per request it would flood the log while a node hangs). */
		struct sl_cql_session_stats st;
		sl_cql_session_stats(s->session, &st);
		sl_info("cassandra", "sink %s: %llu speculative copies sent after %lld ms, %llu answered first", s->fq,
			(unsigned long long)st.spec_sent, (long long)s->cc.speculative_delay_ms,
			(unsigned long long)st.spec_wins);
	}
	if (s->session)
		sl_cql_session_close(s->session);
	for (struct cbatch *cb = s->active; cb;) {
		struct cbatch *next = cb->next;
		cbatch_free(cb);
		cb = next;
	}
	sl_cql_statement_free(s->row);
	sl_cql_batch_free(s->batch);
	sl_opt_free(sl_cassandra_opts, &s->cc);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	free(s->fq);
	free(s->cols);
	free(s);
}

static const struct sl_sink_ops cassandra_ops = {
	.prepare = cs_prepare,
	.write = cs_write,
	.poll = cs_poll,
	.stored_offset = cs_stored_offset,
	.available = cs_available,
	.rows = cs_rows,
	.browse = cs_browse,
	.describe = cs_describe,
	.find = cs_find,
	.destroy = cs_destroy,
};

int sl_cassandra_connect(const struct sl_cassandra_conf *cc, int consistency, struct sl_cql_session **out,
			 struct sl_err *err)
{
	struct sl_buf cps;
	sl_buf_init(&cps);
	for (size_t i = 0; i < cc->contact_points.n; i++) {
		if (i)
			sl_buf_putc(&cps, ',');
		sl_buf_puts(&cps, cc->contact_points.v[i]);
	}
	struct sl_cql_options o;
	sl_cql_options_init(&o);
	o.contact_points = sl_buf_cstr(&cps);
	o.port = (int)cc->port;
	o.local_dc = cc->local_dc;
	o.compression = cc->compression;
	o.tls = cc->tls;
	o.tls_ca_file = cc->tls_ca_file;
	o.tls_cert_file = cc->tls_cert_file;
	o.tls_key_file = cc->tls_key_file;
	o.tls_verify_hostname = cc->tls_verify_hostname;
	if (!cc->tls && (cc->tls_ca_file || cc->tls_cert_file || cc->tls_key_file)) {
		sl_buf_free(&cps);
		return sl_err_set(err, SL_ECONFIG, "cassandra: tls_* files are set but tls is false, so they would not be "
				  "used; set cassandra.tls: true");
	}
	if (!!cc->tls_cert_file != !!cc->tls_key_file) {
		sl_buf_free(&cps);
		return sl_err_set(err, SL_ECONFIG, "cassandra: tls_cert_file and tls_key_file go together (a client "
				  "certificate and its key)");
	}
	o.connect_timeout_ms = (int)cc->connect_timeout_ms;
	o.request_timeout_ms = (int)cc->request_timeout_ms;
	o.speculative_delay_ms = (int)cc->speculative_delay_ms;
	o.max_inflight = (int)cc->max_inflight;
	o.consistency = consistency;
	o.username = cc->username;
	if (cc->password_env) {
		o.password = getenv(cc->password_env);
		if (!o.password) {
			sl_buf_free(&cps);
			return sl_err_set(err, SL_ECONFIG, "cassandra.password_env: environment variable %s is not set",
					  cc->password_env);
		}
	} else if (cc->username) {
		sl_buf_free(&cps);
		return sl_err_set(err, SL_ECONFIG, "cassandra: username is set without password_env (the environment "
				  "variable that holds the password)");
	}
	int rc = sl_cql_session_connect(out, &o, err);
	sl_buf_free(&cps);
	return rc;
}

int sl_sink_cassandra_new(const struct sl_cfg_node *cassandra, const struct sl_sink_conf *conf, struct sl_sink **out,
			  struct sl_err *err)
{
	struct cass_sink *s = calloc(1, sizeof *s);
	if (!s)
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	s->base.ops = &cassandra_ops;
	s->conf = conf;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	s->rng = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)s;
	s->ttl_field = s->wt_field = -1;
	if (sl_opt_bind(sl_cassandra_opts, cassandra, "cassandra", &s->cc, err)) {
		cs_destroy(&s->base);
		return SL_ECONFIG;
	}
	s->consistency = sl_cql_consistency_parse(conf->consistency);
	struct sl_buf fq;
	sl_buf_init(&fq);
	sl_sink_ident(&fq, conf->keyspace);
	sl_buf_putc(&fq, '.');
	sl_sink_ident(&fq, conf->table);
	s->fq = strdup(sl_buf_cstr(&fq));
	sl_buf_free(&fq);
	int rc = sl_cassandra_connect(&s->cc, s->consistency, &s->session, err);
	if (rc) {
		cs_destroy(&s->base);
		return rc;
	}
	snprintf(s->base.where, sizeof s->base.where, "sluice cql -h %s -e 'SELECT * FROM %s.%s LIMIT 5'",
		 s->cc.contact_points.n ? s->cc.contact_points.v[0] : "127.0.0.1", conf->keyspace, conf->table);
	*out = &s->base;
	return 0;
}
