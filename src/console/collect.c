/* The collector: every poll interval it samples what the console shows — per pipeline, the topic's partitions (low and
 * high watermarks), the group's committed offsets and lag, the dead-letter topic's size, the sink table's row count,
 * and (inside `sluice up`) the pipelines' own counters — then evaluates Burrow's rules and the alert rules, and keeps
 * a short history for the charts. It reads the embedded log through its own read-only SQLite connection, and Kafka
 * through long-lived librdkafka handles (one for metadata and watermarks, one per consumer group for its commits). */
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "codec/avro.h"
#include "console/internal.h"
#include "core/assert.h"
#include "core/log.h"
#include "core/metrics.h"
#include "cql/cql.h"
#include "sink/sink.h"
#include "topic/topic.h"

#define COMP "console"
#define MAX_TOPICS 64

int64_t sl_con_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- Kafka ---- */

struct con_kafka {
	struct sl_kafka_conf kc;
	rd_kafka_t *meta;    /* metadata and watermarks */
	rd_kafka_t **groups; /* per pipeline: a consumer handle with the group's id, never subscribed */
	size_t ngroups;
};

static void k_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	(void)fac;
	if (level <= 3)
		sl_debug(COMP, "kafka: %s client=%s", buf, rd_kafka_name(rk));
}

static rd_kafka_t *k_client(const struct sl_kafka_conf *kc, const char *group, char *errbuf, size_t errsz)
{
	rd_kafka_conf_t *c = rd_kafka_conf_new();
	char es[256];
	bool ok = rd_kafka_conf_set(c, "bootstrap.servers", kc->brokers, es, sizeof es) == RD_KAFKA_CONF_OK &&
		  rd_kafka_conf_set(c, "client.id", "sluice-console", es, sizeof es) == RD_KAFKA_CONF_OK &&
		  rd_kafka_conf_set(c, "enable.auto.commit", "false", es, sizeof es) == RD_KAFKA_CONF_OK &&
		  rd_kafka_conf_set(c, "group.id", group ? group : "sluice-console", es, sizeof es) ==
			  RD_KAFKA_CONF_OK;
	for (size_t i = 0; ok && i < kc->properties.n; i++)
		ok = rd_kafka_conf_set(c, kc->properties.k[i], kc->properties.v[i], es, sizeof es) == RD_KAFKA_CONF_OK;
	if (!ok) {
		snprintf(errbuf, errsz, "kafka: %s", es);
		rd_kafka_conf_destroy(c);
		return NULL;
	}
	rd_kafka_conf_set_log_cb(c, k_log_cb);
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, es, sizeof es);
	if (!rk) {
		snprintf(errbuf, errsz, "kafka: %s", es);
		rd_kafka_conf_destroy(c);
	}
	return rk;
}

static struct con_kafka *k_open(struct sl_console *c)
{
	struct con_kafka *k = calloc(1, sizeof *k);
	struct sl_err err = {0};
	if (!k)
		return NULL;
	if (sl_opt_bind(sl_kafka_opts, c->conf->kafka, "kafka", &k->kc, &err)) {
		snprintf(c->log_error, sizeof c->log_error, "%s", err.msg);
		sl_opt_free(sl_kafka_opts, &k->kc);
		free(k);
		return NULL;
	}
	k->meta = k_client(&k->kc, NULL, c->log_error, sizeof c->log_error);
	k->ngroups = c->npipes;
	k->groups = calloc(k->ngroups ? k->ngroups : 1, sizeof *k->groups);
	for (size_t i = 0; k->meta && k->groups && i < k->ngroups; i++)
		k->groups[i] = k_client(&k->kc, c->pipes[i].p->group, c->log_error, sizeof c->log_error);
	return k;
}

static void k_close(struct con_kafka *k)
{
	if (!k)
		return;
	for (size_t i = 0; i < k->ngroups && k->groups; i++)
		if (k->groups[i])
			rd_kafka_destroy(k->groups[i]);
	free(k->groups);
	if (k->meta)
		rd_kafka_destroy(k->meta);
	sl_opt_free(sl_kafka_opts, &k->kc);
	free(k);
}

static void set_isr(struct sl_con_part *pt, const rd_kafka_metadata_partition_t *mp)
{
	size_t o = 0;
	pt->isr[0] = 0;
	for (int i = 0; i < mp->isr_cnt && o + 12 < sizeof pt->isr; i++)
		o += (size_t)snprintf(pt->isr + o, sizeof pt->isr - o, "%s%" PRId32, i ? "," : "", mp->isrs[i]);
	pt->leader = mp->leader;
}

/* Fills topics and brokers from metadata; watermarks of each partition. Lock not held. */
static int k_topics(struct sl_console *c, struct con_kafka *k, struct sl_con_topic **out, size_t *nout,
		    struct sl_con_broker *brokers, size_t *nbrokers, char *errbuf, size_t errsz)
{
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_resp_err_t e = rd_kafka_metadata(k->meta, 1, NULL, &md, 5000);
	if (e) {
		snprintf(errbuf, errsz, "kafka %s: metadata: %s", k->kc.brokers, rd_kafka_err2str(e));
		return -1;
	}
	*nbrokers = 0;
	for (int i = 0; i < md->broker_cnt && *nbrokers < 32; i++) {
		struct sl_con_broker *b = &brokers[(*nbrokers)++];
		b->id = md->brokers[i].id;
		snprintf(b->host, sizeof b->host, "%s", md->brokers[i].host);
		b->port = md->brokers[i].port;
	}
	struct sl_con_topic *ts = calloc(MAX_TOPICS, sizeof *ts);
	size_t n = 0;
	/* The pipelines' own topics first, so a busy cluster's other topics cannot crowd them out of the list (and
	 * their groups' lag out of /metrics); then the others, up to MAX_TOPICS. */
	for (int pass = 0; pass < 2; pass++)
	for (int i = 0; ts && i < md->topic_cnt && n < MAX_TOPICS; i++) {
		const rd_kafka_metadata_topic_t *mt = &md->topics[i];
		if (mt->topic[0] == '_' && mt->topic[1] == '_')
			continue; /* __consumer_offsets and friends */
		bool ours = false;
		for (size_t q = 0; c && c->conf && q < c->conf->np; q++)
			if (!strcmp(mt->topic, c->conf->p[q].topic) || !strcmp(mt->topic, c->conf->p[q].dlq_topic))
				ours = true;
		if (ours != (pass == 0))
			continue;
		struct sl_con_topic *t = &ts[n++];
		snprintf(t->name, sizeof t->name, "%s", mt->topic);
		t->nparts = mt->partition_cnt;
		t->parts = calloc(t->nparts ? (size_t)t->nparts : 1, sizeof *t->parts);
		for (int p = 0; t->parts && p < mt->partition_cnt; p++) {
			struct sl_con_part *pt = &t->parts[p];
			pt->partition = mt->partitions[p].id;
			set_isr(pt, &mt->partitions[p]);
			if (rd_kafka_query_watermark_offsets(k->meta, t->name, pt->partition, &pt->low, &pt->high, 3000))
				pt->low = pt->high = -1;
			else
				t->messages += pt->high - pt->low;
		}
	}
	rd_kafka_metadata_destroy(md);
	*out = ts;
	*nout = n;
	return 0;
}

static int k_committed(struct con_kafka *k, size_t gi, const char *topic, struct sl_con_part *parts, int n)
{
	if (gi >= k->ngroups || !k->groups[gi] || n <= 0)
		return -1;
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
	for (int i = 0; i < n; i++)
		rd_kafka_topic_partition_list_add(l, topic, parts[i].partition);
	rd_kafka_resp_err_t e = rd_kafka_committed(k->groups[gi], l, 5000);
	for (int i = 0; !e && i < l->cnt; i++)
		parts[i].committed = l->elems[i].offset >= 0 ? l->elems[i].offset : -1;
	rd_kafka_topic_partition_list_destroy(l);
	return e ? -1 : 0;
}

/* ---- the embedded log (read-only) ---- */

static sqlite3 *emb_db(struct sl_console *c)
{
	if (c->emb_db)
		return c->emb_db;
	char path[4200];
	snprintf(path, sizeof path, "%s/log.db", c->conf->data_dir);
	if (access(path, R_OK) != 0) {
		/* Messages reach the API's answers: data files are named relative to data_dir. */
		snprintf(c->log_error, sizeof c->log_error, "embedded log data_dir/log.db: not there yet (no pipeline has run)");
		return NULL;
	}
	sqlite3 *db = NULL;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		snprintf(c->log_error, sizeof c->log_error, "embedded log data_dir/log.db: %s", db ? sqlite3_errmsg(db) : "oom");
		sqlite3_close(db);
		return NULL;
	}
	sqlite3_busy_timeout(db, 2000);
	c->emb_db = db;
	return db;
}

static int64_t q_int(sqlite3 *db, const char *sql, const char *topic, int64_t a, int64_t b, int nargs, bool *ok)
{
	sqlite3_stmt *st = NULL;
	int64_t v = -1;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		*ok = false;
		return -1;
	}
	if (topic)
		sqlite3_bind_text(st, 1, topic, -1, SQLITE_STATIC);
	if (nargs > 1)
		sqlite3_bind_int64(st, 2, a);
	if (nargs > 2)
		sqlite3_bind_int64(st, 3, b);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		v = sqlite3_column_int64(st, 0);
	else if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		*ok = false;
	sqlite3_finalize(st);
	return v;
}

static void emb_watermarks(sqlite3 *db, const char *topic, struct sl_con_part *pt, bool *ok)
{
	int64_t hi = q_int(db, "SELECT MAX(offset) FROM messages WHERE topic=? AND partition=?", topic, pt->partition,
			   0, 2, ok);
	int64_t lo = q_int(db, "SELECT MIN(offset) FROM messages WHERE topic=? AND partition=?", topic, pt->partition,
			   0, 2, ok);
	pt->high = hi < 0 ? 0 : hi + 1;
	pt->low = lo < 0 ? pt->high : lo;
}

static int emb_topics(sqlite3 *db, struct sl_con_topic **out, size_t *nout, char *errbuf, size_t errsz)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db, "SELECT name, partitions FROM topics ORDER BY name", -1, &st, NULL) != SQLITE_OK) {
		snprintf(errbuf, errsz, "embedded log: reading topics: %s", sqlite3_errmsg(db));
		return -1;
	}
	struct sl_con_topic *ts = calloc(MAX_TOPICS, sizeof *ts);
	size_t n = 0;
	bool ok = true;
	while (ts && n < MAX_TOPICS && sqlite3_step(st) == SQLITE_ROW) {
		struct sl_con_topic *t = &ts[n++];
		snprintf(t->name, sizeof t->name, "%s", (const char *)sqlite3_column_text(st, 0));
		t->nparts = sqlite3_column_int(st, 1);
		if (t->nparts < 0 || t->nparts > 10000)
			t->nparts = 0;
		t->parts = calloc(t->nparts ? (size_t)t->nparts : 1, sizeof *t->parts);
		for (int p = 0; t->parts && p < t->nparts; p++) {
			t->parts[p].partition = p;
			t->parts[p].leader = -1;
			emb_watermarks(db, t->name, &t->parts[p], &ok);
			t->messages += t->parts[p].high - t->parts[p].low;
		}
	}
	sqlite3_finalize(st);
	*out = ts;
	*nout = n;
	return 0;
}

/* ---- sinks ---- */

static int64_t sqlite_rows(struct sl_console *c, struct sl_pipeline *p, char *errbuf, size_t errsz)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/%s.db", c->conf->data_dir, p->sink.keyspace);
	if (access(path, R_OK) != 0) {
		snprintf(errbuf, errsz, "sqlite sink data_dir/%s.db: not there yet", p->sink.keyspace);
		return -1;
	}
	sqlite3 *db = NULL;
	int64_t n = -1;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) == SQLITE_OK) {
		sqlite3_busy_timeout(db, 2000);
		char sql[600];
		char *q = sqlite3_mprintf("SELECT COUNT(*) FROM \"%w\"", p->sink.table);
		snprintf(sql, sizeof sql, "%s", q ? q : "");
		sqlite3_free(q);
		bool ok = true;
		n = q_int(db, sql, NULL, 0, 0, 0, &ok);
		if (!ok) {
			snprintf(errbuf, errsz, "sqlite sink data_dir/%s.db: %s", p->sink.keyspace, sqlite3_errmsg(db));
			n = -1;
		}
	} else
		snprintf(errbuf, errsz, "sqlite sink data_dir/%s.db: %s", p->sink.keyspace, db ? sqlite3_errmsg(db) : "oom");
	sqlite3_close(db);
	return n;
}

/* ---- one round ---- */

static int64_t metric_count(const char *name, const char *labels)
{
	struct sl_metric *m = sl_metric_find(sl_metrics_global(), name, labels);
	return m ? (int64_t)sl_counter_get(m) : 0;
}

static void sample_metrics(struct sl_console *c, struct sl_con_pipe *cp)
{
	if (!c->embedded) {
		cp->m_ingested = cp->m_written = cp->m_errors = cp->m_retries = cp->m_dlq = -1;
		cp->e2e_p50 = cp->e2e_p95 = -1;
		return;
	}
	char l[300];
	snprintf(l, sizeof l, "pipeline=\"%s\"", cp->p->name);
	cp->m_ingested = metric_count("sluice_ingest_records_total", l);
	cp->m_written = metric_count("sluice_process_written_total", l);
	cp->m_dlq = metric_count("sluice_ingest_dlq_total", l) + metric_count("sluice_process_dlq_total", l);
	cp->m_errors = metric_count("sluice_ingest_delivery_failures_total", l) +
		       metric_count("sluice_sink_rejected_total", l) + cp->m_dlq;
	cp->m_retries = metric_count("sluice_sink_retries_total", l) + metric_count("sluice_http_retries_total", l);
	struct sl_metric *h = sl_metric_find(sl_metrics_global(), "sluice_end_to_end_seconds", l);
	cp->e2e_p50 = h && sl_counter_get(h) ? sl_histogram_quantile(h, 0.5) : -1;
	cp->e2e_p95 = h && sl_counter_get(h) ? sl_histogram_quantile(h, 0.95) : -1;
}

/* Everything a round learns about one pipeline, gathered without the lock. */
struct pipe_sample {
	int nparts;
	struct sl_con_part parts[256];
	int64_t dlq_high, table_rows, lag_seconds;
	bool log_ok, sink_ok;
	char log_error[256], sink_error[256];
};

static void sample_pipe_emb(struct sl_console *c, sqlite3 *db, struct sl_pipeline *p, struct pipe_sample *s)
{
	bool ok = true;
	int64_t np = q_int(db, "SELECT partitions FROM topics WHERE name=?", p->topic, 0, 0, 1, &ok);
	s->nparts = np < 0 ? 0 : (np > 256 ? 256 : (int)np);
	int64_t now = sl_con_now_ms(), oldest = -1;
	for (int i = 0; i < s->nparts; i++) {
		struct sl_con_part *pt = &s->parts[i];
		pt->partition = i;
		pt->leader = -1;
		emb_watermarks(db, p->topic, pt, &ok);
		sqlite3_stmt *st = NULL;
		pt->committed = -1;
		if (sqlite3_prepare_v2(db, "SELECT next_offset, updated_ms FROM group_offsets WHERE grp=? AND topic=? AND "
					   "partition=?", -1, &st, NULL) == SQLITE_OK) {
			sqlite3_bind_text(st, 1, p->group, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 2, p->topic, -1, SQLITE_STATIC);
			sqlite3_bind_int(st, 3, i);
			if (sqlite3_step(st) == SQLITE_ROW) {
				pt->committed = sqlite3_column_int64(st, 0);
				pt->seen_commit_ms = sqlite3_column_int64(st, 1);
			}
		} else
			ok = false;
		sqlite3_finalize(st);
		int64_t from = pt->committed >= 0 ? pt->committed : pt->low;
		if (from < pt->high) {
			int64_t ts = q_int(db, "SELECT ts_ms FROM messages WHERE topic=? AND partition=? AND offset=?",
					   p->topic, i, from, 3, &ok);
			if (ts > 0 && (oldest < 0 || ts < oldest))
				oldest = ts;
		}
	}
	s->lag_seconds = oldest > 0 ? now - oldest : 0;
	bool dok = true;
	int64_t dn = q_int(db, "SELECT partitions FROM topics WHERE name=?", p->dlq_topic, 0, 0, 1, &dok);
	s->dlq_high = 0;
	for (int i = 0; i < dn && i < 256; i++) {
		struct sl_con_part d = {.partition = i};
		emb_watermarks(db, p->dlq_topic, &d, &dok);
		s->dlq_high += d.high;
	}
	s->log_ok = ok;
	if (!ok)
		snprintf(s->log_error, sizeof s->log_error, "embedded log: %s", sqlite3_errmsg(db));
	(void)c;
}

static void sample_pipe_kafka(struct sl_console *c, struct con_kafka *k, size_t gi, struct sl_pipeline *p,
			      struct sl_con_topic *ts, size_t nts, struct pipe_sample *s)
{
	s->nparts = 0;
	s->lag_seconds = -1;
	s->dlq_high = 0;
	for (size_t i = 0; i < nts; i++) {
		if (!strcmp(ts[i].name, p->topic)) {
			s->nparts = ts[i].nparts > 256 ? 256 : ts[i].nparts;
			for (int j = 0; j < s->nparts; j++) {
				s->parts[j] = ts[i].parts[j];
				s->parts[j].committed = -1;
			}
		} else if (!strcmp(ts[i].name, p->dlq_topic))
			for (int j = 0; j < ts[i].nparts; j++)
				s->dlq_high += ts[i].parts[j].high > 0 ? ts[i].parts[j].high : 0;
	}
	s->log_ok = true;
	if (s->nparts && k_committed(k, gi, p->topic, s->parts, s->nparts)) {
		s->log_ok = false;
		snprintf(s->log_error, sizeof s->log_error, "kafka: committed offsets of group %s unavailable", p->group);
	}
	(void)c;
}

static void ring_push(struct sl_console *c, struct sl_con_pipe *cp, const struct sl_con_sample *s)
{
	size_t cap = (size_t)c->cc.history;
	SL_ASSERT(cap > 0 && cp->nring <= cap && cp->ring_head < cap);
	if (cp->nring < cap) {
		cp->ring[cp->nring++] = *s;
	} else {
		cp->ring[cp->ring_head] = *s;
		cp->ring_head = (cp->ring_head + 1) % cap;
	}
}

const struct sl_con_sample *sl_con_ring_at(const struct sl_console *c, const struct sl_con_pipe *cp, size_t i);
const struct sl_con_sample *sl_con_ring_at(const struct sl_console *c, const struct sl_con_pipe *cp, size_t i)
{
	size_t cap = (size_t)c->cc.history;
	if (i >= cp->nring)
		return NULL;
	SL_ASSERT(cp->nring <= cap && cp->ring_head < cap);
	return &cp->ring[cp->nring < cap ? i : (cp->ring_head + i) % cap];
}

static void apply(struct sl_console *c, struct sl_con_pipe *cp, struct pipe_sample *s, int64_t now)
{
	if (cp->nparts != s->nparts) {
		free(cp->parts);
		cp->parts = calloc(s->nparts ? (size_t)s->nparts : 1, sizeof *cp->parts);
		cp->nparts = cp->parts ? s->nparts : 0;
		for (int i = 0; i < cp->nparts; i++)
			sl_burrow_init(&cp->parts[i].win, (size_t)c->cc.burrow_window);
	}
	cp->high_sum = cp->committed_sum = cp->lag = 0;
	cp->status = SL_BURROW_OK;
	for (int i = 0; i < cp->nparts; i++) {
		struct sl_con_part *pt = &cp->parts[i], *n = &s->parts[i];
		int64_t prev_committed = pt->committed, prev_seen = pt->seen_commit_ms;
		bool first = pt->last_commit_ms == 0 && pt->win.n == 0;
		pt->partition = n->partition;
		pt->low = n->low;
		pt->high = n->high;
		pt->leader = n->leader;
		memcpy(pt->isr, n->isr, sizeof pt->isr);
		pt->committed = n->committed;
		/* The watermarks were read before the commits: a group cannot have committed past the end of the log. */
		if (pt->committed > pt->high)
			pt->high = pt->committed;
		int64_t base = pt->committed >= 0 ? pt->committed : (pt->low > 0 ? pt->low : 0);
		pt->lag = pt->high > base ? pt->high - base : 0;
		/* A commit enters the window when the offset moved, or (embedded log) when the log says the group
		 * committed again; Kafka does not tell us commit times, so there an unchanged offset is no news. */
		bool commit = pt->committed >= 0 &&
			      (first || pt->committed != prev_committed ||
			       (n->seen_commit_ms && n->seen_commit_ms != prev_seen));
		if (commit) {
			int64_t ts = n->seen_commit_ms && n->seen_commit_ms <= now ? n->seen_commit_ms : now;
			if (first && !n->seen_commit_ms)
				ts = now;
			sl_burrow_push(&pt->win, pt->committed, pt->lag, ts);
			pt->last_commit_ms = ts;
		}
		pt->seen_commit_ms = n->seen_commit_ms;
		pt->status = sl_burrow_eval(&pt->win, pt->lag, now);
		cp->status = sl_burrow_worst(cp->status, pt->status);
		cp->high_sum += pt->high;
		cp->committed_sum += base;
		cp->lag += pt->lag;
	}
	cp->dlq_high = s->dlq_high;
	cp->table_rows = s->table_rows;
	cp->lag_seconds = s->lag_seconds >= 0 ? (double)s->lag_seconds / 1000.0 : -1;
	cp->log_ok = s->log_ok;
	cp->sink_ok = s->sink_ok;
	memcpy(cp->log_error, s->log_error, sizeof cp->log_error);
	memcpy(cp->sink_error, s->sink_error, sizeof cp->sink_error);
	sample_metrics(c, cp);

	struct sl_con_sample smp = {.t_ms = now, .lag = cp->lag, .dlq = cp->dlq_high, .table_rows = cp->table_rows,
				    .in_total = (uint64_t)cp->high_sum, .out_total = (uint64_t)cp->committed_sum,
				    .e2e_p95 = cp->e2e_p95, .lag_seconds = cp->lag_seconds};
	smp.errors_total = cp->m_errors >= 0 ? (uint64_t)cp->m_errors : (uint64_t)cp->dlq_high;
	const struct sl_con_sample *prev = cp->nring ? sl_con_ring_at(c, cp, cp->nring - 1) : NULL;
	if (prev && now > prev->t_ms) {
		double dt = (double)(now - prev->t_ms) / 1000.0;
		smp.in_rate = smp.in_total >= prev->in_total ? (double)(smp.in_total - prev->in_total) / dt : 0;
		smp.out_rate = smp.out_total >= prev->out_total ? (double)(smp.out_total - prev->out_total) / dt : 0;
	}
	ring_push(c, cp, &smp);
}

static void free_topics(struct sl_con_topic *ts, size_t n)
{
	for (size_t i = 0; ts && i < n; i++)
		free(ts[i].parts);
	free(ts);
}

void sl_con_collect(struct sl_console *c)
{
	int64_t now = sl_con_now_ms();
	struct sl_con_topic *ts = NULL;
	size_t nts = 0;
	struct sl_con_broker brokers[32];
	size_t nbrokers = 0;
	char err[256] = "";
	bool log_ok = false;
	struct pipe_sample *s = calloc(c->npipes ? c->npipes : 1, sizeof *s);
	if (!s)
		return;
	if (c->conf->kafka) {
		if (!c->kafka)
			c->kafka = k_open(c);
		struct con_kafka *k = c->kafka;
		if (k && k->meta && k_topics(c, k, &ts, &nts, brokers, &nbrokers, err, sizeof err) == 0) {
			log_ok = true;
			for (size_t i = 0; i < c->npipes; i++)
				sample_pipe_kafka(c, k, i, c->pipes[i].p, ts, nts, &s[i]);
		} else if (!err[0])
			snprintf(err, sizeof err, "%s", c->log_error[0] ? c->log_error : "kafka: cannot create a client");
	} else {
		sqlite3 *db = emb_db(c);
		if (db && emb_topics(db, &ts, &nts, err, sizeof err) == 0) {
			log_ok = true;
			for (size_t i = 0; i < c->npipes; i++)
				sample_pipe_emb(c, db, c->pipes[i].p, &s[i]);
		} else if (!err[0])
			snprintf(err, sizeof err, "%s", c->log_error);
	}
	for (size_t i = 0; i < c->npipes; i++) {
		if (!log_ok) {
			s[i].log_ok = false;
			snprintf(s[i].log_error, sizeof s[i].log_error, "%s", err);
		}
		s[i].table_rows = -1;
		if (c->conf->cassandra) {
			s[i].sink_ok = true; /* row counts over CQL are a full scan: not sampled */
		} else {
			s[i].table_rows = sqlite_rows(c, c->pipes[i].p, s[i].sink_error, sizeof s[i].sink_error);
			s[i].sink_ok = s[i].table_rows >= 0;
		}
	}

	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->npipes; i++)
		apply(c, &c->pipes[i], &s[i], now);
	free_topics(c->topics, c->ntopics);
	c->topics = ts;
	c->ntopics = nts;
	memcpy(c->brokers, brokers, sizeof brokers);
	c->nbrokers = nbrokers;
	c->log_ok = log_ok;
	if (!log_ok)
		snprintf(c->log_error, sizeof c->log_error, "%s", err);
	else
		c->log_error[0] = 0;
	c->last_poll_ms = now;
	pthread_mutex_unlock(&c->lock);
	free(s);
	sl_con_alerts_eval(c, now);
}

void sl_con_collect_close(struct sl_console *c)
{
	if (c->cql)
		sl_cql_session_close(c->cql);
	c->cql = NULL;
	k_close(c->kafka);
	c->kafka = NULL;
	if (c->emb_db)
		sqlite3_close(c->emb_db);
	c->emb_db = NULL;
	free_topics(c->topics, c->ntopics);
	c->topics = NULL;
	c->ntopics = 0;
}

/* ---- the message browser and the data page ---- */

static void json_bytes(struct sl_buf *out, const void *p, size_t n)
{
	if (!p) {
		sl_buf_puts(out, "null");
		return;
	}
	sl_buf_json_str(out, p, n > 4096 ? 4096 : n);
}

static bool contains(const void *hay, size_t n, const char *needle)
{
	return !needle || !*needle || (hay && memmem(hay, n, needle, strlen(needle)));
}

/* A key or value as the browser shows it: Confluent-framed Avro (magic 0, a schema id) decoded to JSON through the
 * registry, anything else as it is. */
struct shown {
	const void *p;
	size_t n;
	int32_t schema_id;      /* -1: not Avro */
	char error[256];        /* why a framed value could not be decoded */
	struct sl_buf json;
};

static void show(struct sl_console *c, const void *p, size_t n, struct shown *s)
{
	s->p = p;
	s->n = n;
	s->schema_id = -1;
	s->error[0] = 0;
	sl_buf_reset(&s->json);
	if (!p || n < SL_AVRO_HEADER || ((const unsigned char *)p)[0] != SL_AVRO_MAGIC)
		return;
	struct sl_err err = {0};
	int32_t id = -1;
	if (sl_con_avro_json(c, p, n, &id, &s->json, &err) == 0) {
		s->p = s->json.data;
		s->n = s->json.len;
		s->schema_id = id;
	} else
		snprintf(s->error, sizeof s->error, "%s", err.msg);
}

/* One message into the browser's list when the filter (over the key and value as shown) matches. */
static bool emit(struct sl_console *c, struct sl_buf *out, int64_t n, int32_t partition, int64_t offset, int64_t ts,
		 const void *k, size_t kn, const void *v, size_t vn, const char *filter, struct shown sh[2])
{
	show(c, k, kn, &sh[0]);
	show(c, v, vn, &sh[1]);
	if (!contains(sh[0].p, sh[0].n, filter) && !contains(sh[1].p, sh[1].n, filter))
		return false;
	sl_buf_printf(out, "%s{\"partition\":%" PRId32 ",\"offset\":%" PRId64 ",\"timestamp\":%" PRId64, n ? "," : "",
		      partition, offset, ts);
	const char *names[] = {"key", "value"};
	for (int i = 0; i < 2; i++) {
		sl_buf_printf(out, ",\"%s\":", names[i]);
		json_bytes(out, sh[i].p, sh[i].n);
		if (sh[i].schema_id >= 0)
			sl_buf_printf(out, ",\"%s_schema_id\":%" PRId32, names[i], sh[i].schema_id);
		if (sh[i].error[0]) {
			sl_buf_printf(out, ",\"%s_error\":", names[i]);
			sl_buf_json_str(out, sh[i].error, strlen(sh[i].error));
		}
	}
	sl_buf_puts(out, "}");
	return true;
}

static int browse_emb(struct sl_console *c, const char *topic, int32_t partition, int64_t offset, int64_t limit,
		      const char *filter, struct sl_buf *out, struct sl_err *err)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/log.db", c->conf->data_dir);
	sqlite3 *db = NULL;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		sqlite3_close(db);
		return sl_err_set(err, SL_ENOTFOUND, "embedded log data_dir/log.db: cannot open");
	}
	sqlite3_busy_timeout(db, 2000);
	sqlite3_stmt *st = NULL;
	int rc = 0;
	/* A filter scans at most 10000 records past the offset, so one request stays cheap. */
	if (sqlite3_prepare_v2(db, "SELECT partition, offset, ts_ms, key, value FROM messages WHERE topic=?1 AND "
				   "(?2 < 0 OR partition=?2) AND offset>=?3 ORDER BY offset, partition LIMIT ?4",
			       -1, &st, NULL) != SQLITE_OK) {
		rc = sl_err_set(err, SL_EIO, "embedded log: %s", sqlite3_errmsg(db));
	} else {
		sqlite3_bind_text(st, 1, topic, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 2, partition);
		sqlite3_bind_int64(st, 3, offset);
		sqlite3_bind_int64(st, 4, filter && *filter ? 10000 : limit);
		int64_t n = 0, scanned = 0, next = offset;
		struct shown sh[2];
		sl_buf_init(&sh[0].json);
		sl_buf_init(&sh[1].json);
		sl_buf_puts(out, "{\"messages\":[");
		while (n < limit && sqlite3_step(st) == SQLITE_ROW) {
			scanned++;
			const void *k = sqlite3_column_blob(st, 3), *v = sqlite3_column_blob(st, 4);
			size_t kn = (size_t)sqlite3_column_bytes(st, 3), vn = (size_t)sqlite3_column_bytes(st, 4);
			next = sqlite3_column_int64(st, 1) + 1;
			if (emit(c, out, n, sqlite3_column_int(st, 0), sqlite3_column_int64(st, 1),
				 sqlite3_column_int64(st, 2), k, kn, v, vn, filter, sh))
				n++;
		}
		sl_buf_printf(out, "],\"scanned\":%" PRId64 ",\"next_offset\":%" PRId64 "}", scanned, next);
		sl_buf_free(&sh[0].json);
		sl_buf_free(&sh[1].json);
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}

static int browse_kafka(struct sl_console *c, const char *topic, int32_t partition, int64_t offset, int64_t limit,
			const char *filter, struct sl_buf *out, struct sl_err *err)
{
	struct con_kafka *k = c->kafka;
	if (!k)
		return sl_err_set(err, SL_EAGAIN, "kafka: not connected yet");
	char eb[256];
	rd_kafka_t *rk = k_client(&k->kc, "sluice-console-browser", eb, sizeof eb);
	if (!rk)
		return sl_err_set(err, SL_ECONFIG, "%s", eb);
	int np = 0;
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->ntopics; i++)
		if (!strcmp(c->topics[i].name, topic))
			np = c->topics[i].nparts;
	pthread_mutex_unlock(&c->lock);
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(np ? np : 1);
	for (int i = 0; i < np; i++)
		if (partition < 0 || partition == i)
			rd_kafka_topic_partition_list_add(l, topic, i)->offset = offset;
	int rc = 0;
	if (l->cnt == 0)
		rc = sl_err_set(err, SL_ENOTFOUND, "kafka: topic %s partition %d not found", topic, partition);
	else if (rd_kafka_assign(rk, l))
		rc = sl_err_set(err, SL_EIO, "kafka: cannot assign %s", topic);
	rd_kafka_topic_partition_list_destroy(l);
	int64_t n = 0, scanned = 0, next = offset;
	struct shown sh[2];
	sl_buf_init(&sh[0].json);
	sl_buf_init(&sh[1].json);
	sl_buf_puts(out, "{\"messages\":[");
	int64_t deadline = sl_con_now_ms() + 3000;
	int eof = 0;
	while (!rc && n < limit && scanned < 10000 && sl_con_now_ms() < deadline && eof < np) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
		if (!m)
			continue;
		if (m->err) {
			if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
				eof++;
			rd_kafka_message_destroy(m);
			continue;
		}
		scanned++;
		if (m->offset + 1 > next)
			next = m->offset + 1;
		rd_kafka_timestamp_type_t tt;
		if (emit(c, out, n, m->partition, m->offset, rd_kafka_message_timestamp(m, &tt), m->key, m->key_len,
			 m->payload, m->len, filter, sh))
			n++;
		rd_kafka_message_destroy(m);
	}
	sl_buf_printf(out, "],\"scanned\":%" PRId64 ",\"next_offset\":%" PRId64 "}", scanned, next);
	sl_buf_free(&sh[0].json);
	sl_buf_free(&sh[1].json);
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	return rc;
}

int sl_con_browse(struct sl_console *c, const char *topic, int32_t partition, int64_t offset, int64_t limit,
		  const char *filter, struct sl_buf *out, struct sl_err *err)
{
	if (c->conf->kafka)
		return browse_kafka(c, topic, partition, offset, limit, filter, out, err);
	return browse_emb(c, topic, partition, offset, limit, filter, out, err);
}

/* ---- the data page: the newest rows of a sink table, a page at a time ---- */

bool sl_con_sink_is_cassandra(const struct sl_console *c, const struct sl_pipeline *p)
{
	const char *t = p->sink.type ? p->sink.type : "auto";
	return !strcmp(t, "cassandra") || (!strcmp(t, "auto") && c->conf->cassandra);
}

int sl_con_page_token_decode(const char *hex, unsigned char *out, size_t outsz)
{
	size_t n = strlen(hex), o = 0;
	if (n % 2)
		return -1;
	for (size_t i = 0; i < n; i += 2) {
		int v = 0;
		for (int k = 0; k < 2; k++) {
			char ch = hex[i + (size_t)k];
			int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
			if (d < 0)
				return -1;
			v = v * 16 + d;
		}
		if (o >= outsz)
			return -1;
		out[o++] = (unsigned char)v;
	}
	return (int)o;
}

static void page_token(struct sl_buf *out, const unsigned char *p, size_t n)
{
	static const char hx[] = "0123456789abcdef";
	sl_buf_putc(out, '"');
	for (size_t i = 0; i < n; i++) {
		sl_buf_putc(out, hx[p[i] >> 4]);
		sl_buf_putc(out, hx[p[i] & 15]);
	}
	sl_buf_putc(out, '"');
}

static void rows_head(struct sl_buf *out, const struct sl_pipeline *p)
{
	char tn[600];
	snprintf(tn, sizeof tn, "%s.%s", p->sink.keyspace, p->sink.table);
	sl_buf_puts(out, "{\"pipeline\":");
	sl_buf_json_str(out, p->name, strlen(p->name));
	sl_buf_puts(out, ",\"table\":");
	sl_buf_json_str(out, tn, strlen(tn));
	sl_buf_puts(out, ",\"columns\":[");
}

/* The console's own CQL session (connected on the first Cassandra page, kept for the next ones). */
static struct sl_cql_session *cql_session(struct sl_console *c, struct sl_err *err)
{
	pthread_mutex_lock(&c->cql_lock);
	struct sl_cql_session *s = c->cql;
	if (!s) {
		struct sl_cassandra_conf cc;
		memset(&cc, 0, sizeof cc);
		if (!sl_opt_bind(sl_cassandra_opts, c->conf->cassandra, "cassandra", &cc, err) &&
		    !sl_cassandra_connect(&cc, SL_CQL_LOCAL_ONE, &s, err))
			c->cql = s;
		sl_opt_free(sl_cassandra_opts, &cc);
	}
	pthread_mutex_unlock(&c->cql_lock);
	return s;
}

/* A full page comes with a paging state even when nothing follows: one row past it says whether a next page has
 * any (so the last page's "next" is off instead of leading to an empty page). */
static bool more_rows(struct sl_cql_session *s, struct sl_cql_statement *st, const uint8_t *ps, size_t pn)
{
	bool more = true;
	sl_cql_statement_set_page_size(st, 1);
	if (sl_cql_statement_set_paging_state_raw(st, ps, pn) == 0) {
		struct sl_cql_future *f = sl_cql_session_execute(s, st);
		if (f && sl_cql_future_wait(f) == 0)
			more = sl_cql_result_row_count(sl_cql_future_result(f)) > 0;
		sl_cql_future_release(f);
	}
	return more;
}

/* Cassandra has no "newest first" over a whole table: pages come in the table's token order, each continuing from
 * the previous page's paging state, which the browser holds as an opaque token. */
static int rows_cassandra(struct sl_console *c, struct sl_pipeline *p, const unsigned char *token, size_t ntoken,
			  int64_t size, struct sl_buf *out, struct sl_err *err)
{
	struct sl_cql_session *s = cql_session(c, err);
	if (!s)
		return err->code ? err->code : SL_EIO;
	struct sl_buf q;
	sl_buf_init(&q);
	sl_buf_puts(&q, "SELECT * FROM ");
	sl_sink_ident(&q, p->sink.keyspace);
	sl_buf_putc(&q, '.');
	sl_sink_ident(&q, p->sink.table);
	struct sl_cql_statement *st = sl_buf_ok(&q) ? sl_cql_statement_new(sl_buf_cstr(&q), 0) : NULL;
	sl_buf_free(&q);
	if (!st)
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	sl_cql_statement_set_page_size(st, (int32_t)size);
	sl_cql_statement_set_timeout(st, 10000);
	int rc = token ? sl_cql_statement_set_paging_state_raw(st, token, ntoken) : 0;
	struct sl_cql_future *f = rc ? NULL : sl_cql_session_execute(s, st);
	if (!f) {
		sl_cql_statement_free(st);
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	}
	if (sl_cql_future_wait(f) < 0) {
		/* A token the server cannot read (forged, or from before the table changed) is the client's mistake. */
		int32_t code = sl_cql_future_server_code(f);
		rc = sl_err_set(err, code == SL_CQL_ERR_INVALID || code == SL_CQL_ERR_PROTOCOL ? SL_EINVAL : SL_EIO,
				"cassandra %s.%s: %s", p->sink.keyspace, p->sink.table, sl_cql_future_error(f)->msg);
	} else {
		const struct sl_cql_result *r = sl_cql_future_result(f);
		int nc = sl_cql_result_column_count(r);
		rows_head(out, p);
		for (int i = 0; i < nc; i++) {
			const char *cn = sl_cql_result_column(r, i)->name;
			if (i)
				sl_buf_putc(out, ',');
			sl_buf_json_str(out, cn, strlen(cn));
		}
		sl_buf_puts(out, "],\"rows\":[");
		struct sl_cql_iter it;
		sl_cql_iter_init(&it, r);
		for (int n = 0; sl_cql_iter_next(&it); n++) {
			sl_buf_puts(out, n ? ",[" : "[");
			for (int i = 0; i < nc; i++) {
				if (i)
					sl_buf_putc(out, ',');
				const struct sl_cql_value *v = sl_cql_iter_value(&it, i);
				size_t mark = out->len;
				if (sl_cql_value_is_null(v) || sl_cql_value_format(out, v, true) < 0) {
					out->len = mark;
					sl_buf_puts(out, "null");
				}
			}
			sl_buf_putc(out, ']');
		}
		sl_cql_iter_free(&it);
		const uint8_t *ps;
		size_t pn;
		sl_buf_printf(out, "],\"size\":%lld,\"order\":\"token\",\"next_token\":", (long long)size);
		if (sl_cql_result_paging_state(r, &ps, &pn) == 0 && sl_cql_result_row_count(r) > 0 &&
		    more_rows(s, st, ps, pn))
			page_token(out, ps, pn);
		else
			sl_buf_puts(out, "null");
		sl_buf_puts(out, "}");
	}
	sl_cql_future_release(f);
	sl_cql_statement_free(st);
	return rc;
}

static void sqlite_cell(struct sl_buf *out, sqlite3_stmt *st, int i)
{
	switch (sqlite3_column_type(st, i)) {
	case SQLITE_NULL: sl_buf_puts(out, "null"); break;
	case SQLITE_INTEGER: sl_buf_printf(out, "%lld", (long long)sqlite3_column_int64(st, i)); break;
	case SQLITE_FLOAT: sl_buf_printf(out, "%.17g", sqlite3_column_double(st, i)); break;
	default: {
		const unsigned char *t = sqlite3_column_text(st, i);
		json_bytes(out, t, (size_t)sqlite3_column_bytes(st, i));
	}
	}
}

/* SQLite: newest first by rowid. The token is the last rowid shown, so a page continues below it however many
 * rows arrived meanwhile (page=N, an offset, is kept for scripts). */
static int rows_sqlite(struct sl_console *c, struct sl_pipeline *p, const unsigned char *token, size_t ntoken,
		       int64_t page, int64_t size, struct sl_buf *out, struct sl_err *err)
{
	int64_t below = INT64_MAX;
	if (token) {
		char num[24];
		char *end;
		if (ntoken == 0 || ntoken >= sizeof num)
			return sl_err_set(err, SL_EINVAL, "bad page token");
		memcpy(num, token, ntoken);
		num[ntoken] = 0;
		long long v = strtoll(num, &end, 10);
		if (*end || v <= 0)
			return sl_err_set(err, SL_EINVAL, "bad page token");
		below = v;
	}
	char path[4200];
	snprintf(path, sizeof path, "%s/%s.db", c->conf->data_dir, p->sink.keyspace);
	sqlite3 *db = NULL;
	if (access(path, R_OK) != 0 ||
	    sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		sqlite3_close(db);
		return sl_err_set(err, SL_ENOTFOUND, "sqlite sink data_dir/%s.db: not there yet", p->sink.keyspace);
	}
	sqlite3_busy_timeout(db, 2000);
	char *sql = sqlite3_mprintf("SELECT rowid, * FROM \"%w\" WHERE rowid < ?1 ORDER BY rowid DESC LIMIT ?2 OFFSET ?3",
				    p->sink.table);
	sqlite3_stmt *st = NULL;
	int rc = 0;
	if (!sql || sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		rc = sl_err_set(err, SL_EIO, "sqlite sink data_dir/%s.db: %s", p->sink.keyspace, sqlite3_errmsg(db));
	} else {
		sqlite3_bind_int64(st, 1, below);
		sqlite3_bind_int64(st, 2, size + 1);
		sqlite3_bind_int64(st, 3, token ? 0 : page * size);
		int nc = sqlite3_column_count(st);
		rows_head(out, p);
		for (int i = 1; i < nc; i++) {
			const char *cn = sqlite3_column_name(st, i);
			if (i > 1)
				sl_buf_putc(out, ',');
			sl_buf_json_str(out, cn, strlen(cn));
		}
		sl_buf_puts(out, "],\"rows\":[");
		int64_t n = 0, last = 0;
		bool more = false;
		while (sqlite3_step(st) == SQLITE_ROW) {
			if (n == size) {
				more = true;
				break;
			}
			last = sqlite3_column_int64(st, 0);
			sl_buf_puts(out, n++ ? ",[" : "[");
			for (int i = 1; i < nc; i++) {
				if (i > 1)
					sl_buf_putc(out, ',');
				sqlite_cell(out, st, i);
			}
			sl_buf_putc(out, ']');
		}
		sl_buf_printf(out, "],\"page\":%lld,\"size\":%lld,\"has_more\":%s,\"order\":\"newest\",\"next_token\":",
			      (long long)page, (long long)size, more ? "true" : "false");
		if (more) {
			char t[24];
			int tn = snprintf(t, sizeof t, "%lld", (long long)last);
			page_token(out, (const unsigned char *)t, (size_t)tn);
		} else
			sl_buf_puts(out, "null");
		sl_buf_puts(out, "}");
	}
	sqlite3_free(sql);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}

int sl_con_rows(struct sl_console *c, struct sl_pipeline *p, const unsigned char *token, size_t ntoken, int64_t page,
		int64_t size, struct sl_buf *out, struct sl_err *err)
{
	if (p->sink.type && !strcmp(p->sink.type, "discard"))
		return sl_err_set(err, SL_ENOTFOUND, "pipeline %s discards its rows (sink type discard)", p->name);
	if (sl_con_sink_is_cassandra(c, p))
		return rows_cassandra(c, p, token, ntoken, size, out, err);
	return rows_sqlite(c, p, token, ntoken, page, size, out, err);
}
