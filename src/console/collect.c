/* The collector: every poll interval it samples what the console shows — per pipeline, the topic's partitions (low and
 * high watermarks), the group's committed offsets and lag, the dead-letter topic's size, the sink table's row count,
 * and (inside `sluice up`) the pipelines' own counters — then evaluates Burrow's rules and the alert rules, and keeps
 * a short history for the charts. The log is read through topic/'s store (whatever the backend; its Kafka clients are
 * long-lived) and the tables through sink/'s readers, so neither layout is known here. */
#include <inttypes.h>
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
#include "sink/sink.h"
#include "topic/topic.h"

#define COMP "console"
/* Topics described per poll beyond the pipelines' own (which always are): the Kafka page and /metrics list this
 * many of a cluster's other topics. */
#define MAX_OTHER_TOPICS 1000

int64_t sl_con_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Messages reach the API's answers, which name data files relative to data_dir, never where it is: every
 * occurrence of the data_dir path in s becomes "data_dir". */
void sl_con_scrub_paths(const struct sl_console *c, char *s, size_t cap)
{
	const char *dir = c->conf ? c->conf->data_dir : NULL;
	size_t dl = dir ? strlen(dir) : 0;
	while (dl > 1 && dir[dl - 1] == '/')
		dl--;
	if (!dl || !s)
		return;
	for (char *p = strstr(s, dir); p; p = strstr(p, dir)) {
		if (p[dl] && p[dl] != '/') { /* "/data2" is not inside "/data" */
			p += dl;
			continue;
		}
		static const char rep[] = "data_dir";
		size_t rl = sizeof rep - 1, tail = strlen(p + dl) + 1;
		if (rl > dl && (size_t)(p - s) + rl + tail > cap)
			break;
		memmove(p + rl, p + dl, tail);
		memcpy(p, rep, rl);
		p += rl;
	}
}

/* ---- the log and the tables: through topic/ and sink/ ---- */

/* The topic store, opened on the first round that finds the log (the embedded log appears with the first pipeline
 * run) and kept: its Kafka clients are long-lived. Only the collector thread opens it. */
static struct sl_topic_store *log_store(struct sl_console *c, char *errbuf, size_t errsz)
{
	if (c->log)
		return c->log;
	struct sl_topic_store *ts = NULL;
	struct sl_err err = {0};
	if (sl_topic_store_open(c->conf->kafka, c->conf->data_dir, SL_TOPIC_INSPECT, &ts, &err)) {
		snprintf(errbuf, errsz, "%s", err.msg);
		sl_con_scrub_paths(c, errbuf, errsz);
		return NULL;
	}
	pthread_mutex_lock(&c->lock);
	c->log = ts;
	pthread_mutex_unlock(&c->lock);
	return ts;
}

/* The pipeline's sink, opened for reading on first use and kept; NULL with err when it cannot be (yet). Called
 * with c->cql_lock held (a reader's connection is used by one thread at a time). */
static struct sl_sink *sink_reader(struct sl_console *c, size_t i, struct sl_err *err)
{
	struct sl_sink **sinks = c->sinks;
	if (!sinks && !(sinks = c->sinks = calloc(c->npipes ? c->npipes : 1, sizeof *sinks))) {
		sl_err_set(err, SL_ENOMEM, "out of memory");
		return NULL;
	}
	if (!sinks[i] && sl_sink_open_reader(c->conf->cassandra, c->conf->data_dir, c->pipes[i].p->name,
					     &c->pipes[i].p->sink, &sinks[i], err))
		return NULL;
	return sinks[i];
}

static void copy_part(struct sl_con_part *d, const struct sl_topic_part *s)
{
	d->partition = s->partition;
	d->low = s->low;
	d->high = s->high;
	d->leader = s->leader;
	snprintf(d->isr, sizeof d->isr, "%s", s->isr);
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
	int64_t *out_rows; /* per output, as table_rows (NULL: out of memory) */
	bool log_ok, sink_ok;
	char log_error[256], sink_error[256];
};

static void sample_pipe(struct sl_console *c, struct sl_topic_store *ts, struct sl_pipeline *p,
			const struct sl_topic_desc *td, size_t ntd, struct pipe_sample *s)
{
	s->nparts = 0;
	s->lag_seconds = ts->ops->timestamp_at ? 0 : -1;
	s->dlq_high = 0;
	struct sl_topic_part parts[256];
	for (size_t i = 0; i < ntd; i++) {
		if (!strcmp(td[i].name, p->topic)) {
			s->nparts = td[i].nparts > 256 ? 256 : td[i].nparts;
			for (int j = 0; j < s->nparts; j++) {
				parts[j] = td[i].parts[j];
				copy_part(&s->parts[j], &td[i].parts[j]);
				s->parts[j].committed = -1;
			}
		} else if (!strcmp(td[i].name, p->dlq_topic))
			for (int j = 0; j < td[i].nparts; j++)
				s->dlq_high += td[i].parts[j].high > 0 ? td[i].parts[j].high : 0;
	}
	s->log_ok = true;
	struct sl_err err = {0};
	if (s->nparts && ts->ops->committed(ts, p->group, p->topic, parts, s->nparts, &err)) {
		s->log_ok = false;
		snprintf(s->log_error, sizeof s->log_error, "committed offsets of group %s unavailable: %s", p->group,
			 err.msg);
		return;
	}
	int64_t now = sl_con_now_ms(), oldest = -1;
	for (int i = 0; i < s->nparts; i++) {
		s->parts[i].committed = parts[i].committed;
		s->parts[i].seen_commit_ms = parts[i].commit_ms;
		/* How old the oldest record the group has not processed is, where the log can say cheaply. */
		int64_t from = parts[i].committed >= 0 ? parts[i].committed : parts[i].low, ts_ms = 0;
		if (ts->ops->timestamp_at && from >= 0 && from < parts[i].high &&
		    ts->ops->timestamp_at(ts, p->topic, parts[i].partition, from, &ts_ms, NULL) == 0 && ts_ms > 0 &&
		    (oldest < 0 || ts_ms < oldest))
			oldest = ts_ms;
	}
	if (ts->ops->timestamp_at)
		s->lag_seconds = oldest > 0 ? now - oldest : 0;
	(void)c;
}

void sl_con_ring_push(struct sl_console *c, struct sl_con_pipe *cp, const struct sl_con_sample *s)
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


const struct sl_con_sample *sl_con_ring_at(const struct sl_console *c, const struct sl_con_pipe *cp, size_t i)
{
	size_t cap = (size_t)c->cc.history;
	SL_ASSERT(cp->nring <= cap && cp->ring_head < cap);
	if (i >= cp->nring)
		return NULL;
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
	free(cp->out_rows);
	cp->out_rows = s->out_rows;
	s->out_rows = NULL;
	cp->lag_seconds = s->lag_seconds >= 0 ? (double)s->lag_seconds / 1000.0 : -1;
	cp->log_ok = s->log_ok;
	cp->sink_ok = s->sink_ok;
	memcpy(cp->log_error, s->log_error, sizeof cp->log_error);
	memcpy(cp->sink_error, s->sink_error, sizeof cp->sink_error);
	sample_metrics(c, cp);

	struct sl_con_sample smp = {.t_ms = now, .lag = cp->lag, .dlq = cp->dlq_high, .table_rows = cp->table_rows,
				    .in_total = (uint64_t)cp->high_sum, .out_total = (uint64_t)cp->committed_sum,
				    .e2e_p95 = cp->e2e_p95, .lag_seconds = cp->lag_seconds};
	/* Errors are what the log holds as dead letters: the same number in every process and after a restart (the
	 * in-process counters start again from zero). */
	smp.errors_total = cp->dlq_high > 0 ? (uint64_t)cp->dlq_high : 0;
	const struct sl_con_sample *prev = cp->nring ? sl_con_ring_at(c, cp, cp->nring - 1) : NULL;
	if (prev && now > prev->t_ms) {
		double dt = (double)(now - prev->t_ms) / 1000.0;
		smp.in_rate = smp.in_total >= prev->in_total ? (double)(smp.in_total - prev->in_total) / dt : 0;
		smp.out_rate = smp.out_total >= prev->out_total ? (double)(smp.out_total - prev->out_total) / dt : 0;
	}
	sl_con_ring_push(c, cp, &smp);
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
	struct sl_topic_desc *td = NULL;
	size_t nts = 0;
	struct sl_con_broker brokers[32];
	size_t nbrokers = 0;
	char err[256] = "";
	bool log_ok = false;
	struct pipe_sample *s = calloc(c->npipes ? c->npipes : 1, sizeof *s);
	if (!s)
		return;
	struct sl_topic_store *log = log_store(c, err, sizeof err);
	if (log) {
		/* The pipelines' own topics first, so a busy cluster's other topics cannot crowd them out of the list
		 * (and their groups' lag out of /metrics). */
		const char **first = calloc(2 * c->npipes + 1, sizeof *first);
		for (size_t i = 0; first && i < c->npipes; i++) {
			first[2 * i] = c->pipes[i].p->topic;
			first[2 * i + 1] = c->pipes[i].p->dlq_topic;
		}
		struct sl_topic_broker tb[32];
		struct sl_err e = {0};
		if (first && log->ops->describe(log, first, 2 * c->npipes, 2 * c->npipes + MAX_OTHER_TOPICS, &td, &nts, tb, 32, &nbrokers,
						&e) == 0) {
			log_ok = true;
			for (size_t i = 0; i < nbrokers; i++) {
				brokers[i].id = tb[i].id;
				snprintf(brokers[i].host, sizeof brokers[i].host, "%s", tb[i].host);
				brokers[i].port = tb[i].port;
			}
			for (size_t i = 0; i < c->npipes; i++)
				sample_pipe(c, log, c->pipes[i].p, td, nts, &s[i]);
		} else
			snprintf(err, sizeof err, "%s", first ? e.msg : "out of memory");
		free(first);
	}
	ts = calloc(nts ? nts : 1, sizeof *ts);
	for (size_t i = 0; ts && i < nts; i++) {
		snprintf(ts[i].name, sizeof ts[i].name, "%s", td[i].name);
		ts[i].messages = td[i].messages;
		ts[i].parts = calloc(td[i].nparts ? (size_t)td[i].nparts : 1, sizeof *ts[i].parts);
		ts[i].nparts = ts[i].parts ? td[i].nparts : 0;
		for (int j = 0; j < ts[i].nparts; j++)
			copy_part(&ts[i].parts[j], &td[i].parts[j]);
	}
	if (!ts)
		nts = 0;
	sl_topic_descs_free(td, nts ? nts : 0);
	for (size_t i = 0; i < c->npipes; i++) {
		if (!log_ok) {
			s[i].log_ok = false;
			snprintf(s[i].log_error, sizeof s[i].log_error, "%s", err);
		}
		/* Rows only where the sink counts them exactly and cheaply (SQLite); a Cassandra table's row count
		 * would be a full scan, and an estimate is not what a "rows" column promises: unknown there. */
		s[i].table_rows = -1;
		s[i].sink_ok = true;
		if (!sl_sink_counts_exactly(c->conf->cassandra, &c->pipes[i].p->sink))
			continue;
		struct sl_err e = {0};
		pthread_mutex_lock(&c->cql_lock);
		struct sl_sink *sk = sink_reader(c, i, &e);
		bool exact = false;
		if (sk && sk->ops->rows && sk->ops->rows(sk, &s[i].table_rows, &exact, &e) == 0 && exact)
			s[i].sink_ok = true;
		else {
			s[i].table_rows = -1;
			s[i].sink_ok = false;
			snprintf(s[i].sink_error, sizeof s[i].sink_error, "%s", e.msg);
			sl_con_scrub_paths(c, s[i].sink_error, sizeof s[i].sink_error);
		}
		pthread_mutex_unlock(&c->cql_lock);
	}
	/* The other outputs' tables (outputs:), counted the same way: only where that is exact and cheap. Their
	 * readers are opened for the count, as the data page opens them for a page. */
	for (size_t i = 0; i < c->npipes; i++) {
		const struct sl_pipeline *p = c->pipes[i].p;
		if (p->nout < 2 || !(s[i].out_rows = calloc(p->nout, sizeof *s[i].out_rows)))
			continue;
		s[i].out_rows[0] = s[i].table_rows;
		for (size_t o = 1; o < p->nout; o++) {
			struct sl_err e = {0};
			struct sl_sink *sk = NULL;
			bool exact = false;
			s[i].out_rows[o] = -1;
			if (!sl_sink_counts_exactly(c->conf->cassandra, p->out[o].conf) ||
			    sl_sink_open_reader(c->conf->cassandra, c->conf->data_dir, p->name, p->out[o].conf, &sk, &e))
				continue;
			if (!sk->ops->rows || sk->ops->rows(sk, &s[i].out_rows[o], &exact, &e) ||
			    !exact)
				s[i].out_rows[o] = -1;
			sk->ops->destroy(sk);
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
	for (size_t i = 0; i < c->npipes; i++)
		free(s[i].out_rows);
	free(s);
	sl_con_alerts_eval(c, now);
	sl_con_store_save(c, now);
}

void sl_con_collect_close(struct sl_console *c)
{
	struct sl_sink **sinks = c->sinks;
	for (size_t i = 0; sinks && i < c->npipes; i++)
		if (sinks[i])
			sinks[i]->ops->destroy(sinks[i]);
	free(sinks);
	c->sinks = NULL;
	sl_topic_store_close(c->log);
	c->log = NULL;
	free_topics(c->topics, c->ntopics);
	c->topics = NULL;
	c->ntopics = 0;
}

/* ---- the message browser and the data page ---- */

static bool utf8_ok(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned char c = s[i];
		size_t k;
		if (c < 0x80)
			k = 0;
		else if (c >= 0xc2 && c <= 0xdf)
			k = 1;
		else if ((c & 0xf0) == 0xe0)
			k = 2;
		else if (c >= 0xf0 && c <= 0xf4)
			k = 3;
		else
			return false;
		if (k > n - i - 1)
			return false; /* cut short (a value truncated to 4096 bytes is escaped, not cut mid-character) */
		for (size_t j = 1; j <= k; j++)
			if ((s[i + j] & 0xc0) != 0x80)
				return false;
		i += k + 1;
	}
	return true;
}

/* Bytes as a JSON string: as they are when they are UTF-8 (text, decoded values), else each byte past ASCII as
 * \u00XX, so binary (an undecodable framed value, raw Protobuf) still makes valid JSON and every byte shows. */
static void json_bytes(struct sl_buf *out, const void *p, size_t n)
{
	if (!p) {
		sl_buf_puts(out, "null");
		return;
	}
	if (n > 4096)
		n = 4096;
	if (utf8_ok(p, n)) {
		sl_buf_json_str(out, p, n);
		return;
	}
	const unsigned char *b = p;
	sl_buf_putc(out, '"');
	for (size_t i = 0; i < n; i++) {
		if (b[i] >= 0x80 || b[i] < 0x20 || b[i] == '"' || b[i] == '\\')
			sl_buf_printf(out, "\\u%04x", b[i]);
		else
			sl_buf_putc(out, (char)b[i]);
	}
	sl_buf_putc(out, '"');
}

static bool contains(const void *hay, size_t n, const char *needle)
{
	return !needle || !*needle || (hay && memmem(hay, n, needle, strlen(needle)));
}

/* A key or value as the browser shows it: Confluent-framed (magic 0, a schema id) Avro, Protobuf or JSON Schema
 * decoded to JSON through the registry (decode.c), anything else as it is. */
struct shown {
	const void *p;
	size_t n;
	int32_t schema_id;      /* -1: not decoded */
	const char *format;     /* "avro", "protobuf", "json" when decoded */
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
	s->format = NULL;
	if (!p || n < SL_AVRO_HEADER || ((const unsigned char *)p)[0] != SL_AVRO_MAGIC)
		return;
	struct sl_err err = {0};
	int32_t id = -1;
	if (sl_con_framed_json(c, p, n, &id, &s->format, &s->json, &err) == 0) {
		s->p = s->json.data;
		s->n = s->json.len;
		s->schema_id = id;
	} else
		snprintf(s->error, sizeof s->error, "%s", err.msg);
}

static const struct sl_header *find_header(const struct sl_msg *m, const char *key)
{
	for (size_t i = 0; i < m->n_headers; i++)
		if (m->headers[i].key && !strcmp(m->headers[i].key, key))
			return &m->headers[i];
	return NULL;
}

static bool header_has(const struct sl_msg *m, const char *key, const char *needle, bool exact)
{
	if (!needle || !*needle)
		return true;
	const struct sl_header *h = find_header(m, key);
	if (!h)
		return false;
	if (exact)
		return h->value_len == strlen(needle) && !memcmp(h->value, needle, h->value_len);
	return h->value && memmem(h->value, h->value_len, needle, strlen(needle));
}

/* A dead letter's story, from the headers the pipeline wrote (pipeline/runtime.c sl_dlq_headers): which stage failed,
 * why, and where the record came from. */
static void dlq_json(struct sl_buf *out, const struct sl_msg *m)
{
	const struct sl_header *st = find_header(m, "sluice.stage");
	if (!st)
		return;
	static const char *const keys[][2] = {{"stage", "sluice.stage"},       {"reason", "sluice.error"},
					      {"pipeline", "sluice.pipeline"}, {"topic", "sluice.topic"},
					      {"partition", "sluice.partition"}, {"offset", "sluice.offset"}};
	sl_buf_puts(out, ",\"dlq\":{");
	for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
		const struct sl_header *h = find_header(m, keys[i][1]);
		sl_buf_printf(out, "%s\"%s\":", i ? "," : "", keys[i][0]);
		bool num = i >= 4 && h && h->value_len && h->value_len < 24;
		char tmp[24];
		if (num) {
			memcpy(tmp, h->value, h->value_len);
			tmp[h->value_len] = 0;
			char *e;
			long long v = strtoll(tmp, &e, 10);
			if (*e == 0) {
				/* -1: the record never was in a topic (it failed before, at ingest) */
				if (v >= 0)
					sl_buf_printf(out, "%lld", v);
				else
					sl_buf_puts(out, "null");
				continue;
			}
		}
		if (h && h->value_len)
			sl_buf_json_str(out, h->value, h->value_len > 4096 ? 4096 : h->value_len);
		else
			sl_buf_puts(out, "null");
	}
	sl_buf_puts(out, "}");
}

/* One message into the browser's list when the filters match: the text filter over the key and value as shown, the
 * reason and stage filters over a dead letter's headers. */
static bool emit(struct sl_console *c, struct sl_buf *out, int64_t n, const struct sl_msg *m,
		 const struct sl_con_browse_opts *o, struct shown sh[2])
{
	if (!header_has(m, "sluice.error", o->reason, false) || !header_has(m, "sluice.stage", o->stage, true))
		return false;
	show(c, m->key, m->key_len, &sh[0]);
	show(c, m->value, m->value_len, &sh[1]);
	if (!contains(sh[0].p, sh[0].n, o->filter) && !contains(sh[1].p, sh[1].n, o->filter))
		return false;
	sl_buf_printf(out, "%s{\"partition\":%" PRId32 ",\"offset\":%" PRId64 ",\"timestamp\":%" PRId64, n ? "," : "",
		      m->partition, m->offset, m->timestamp_ms);
	const char *names[] = {"key", "value"};
	for (int i = 0; i < 2; i++) {
		sl_buf_printf(out, ",\"%s\":", names[i]);
		json_bytes(out, sh[i].p, sh[i].n);
		if (sh[i].schema_id >= 0)
			sl_buf_printf(out, ",\"%s_schema_id\":%" PRId32 ",\"%s_format\":\"%s\"", names[i], sh[i].schema_id,
				      names[i], sh[i].format ? sh[i].format : "avro");
		if (sh[i].error[0]) {
			sl_buf_printf(out, ",\"%s_error\":", names[i]);
			sl_buf_json_str(out, sh[i].error, strlen(sh[i].error));
		}
	}
	sl_buf_puts(out, ",\"headers\":[");
	for (size_t i = 0; i < m->n_headers; i++) {
		sl_buf_puts(out, i ? ",[" : "[");
		sl_buf_json_str(out, m->headers[i].key ? m->headers[i].key : "", m->headers[i].key ? strlen(m->headers[i].key) : 0);
		sl_buf_putc(out, ',');
		json_bytes(out, m->headers[i].value ? m->headers[i].value : "", m->headers[i].value_len);
		sl_buf_putc(out, ']');
	}
	sl_buf_putc(out, ']');
	dlq_json(out, m);
	sl_buf_puts(out, "}");
	return true;
}

void sl_con_msg_json(struct sl_console *c, const struct sl_msg *m, struct sl_buf *out)
{
	struct sl_con_browse_opts o = {0};
	struct shown sh[2];
	sl_buf_init(&sh[0].json);
	sl_buf_init(&sh[1].json);
	emit(c, out, 0, m, &o, sh);
	sl_buf_free(&sh[0].json);
	sl_buf_free(&sh[1].json);
}

/* The reasons seen among the scanned dead letters, counted (for the DLQ page's reason filter). */
#define REASONS_MAX 32
struct reason_count {
	char text[256];
	int64_t n;
};

struct browse_ctx {
	struct sl_console *c;
	struct sl_buf *out;
	const struct sl_con_browse_opts *o;
	int64_t n, limit, scanned;
	struct shown sh[2];
	/* newest first: the last `limit` matches of the partition being read, as JSON, in a ring */
	struct sl_buf *ring;
	int64_t *ring_ts, *ring_off;
	int32_t *ring_part;
	size_t ring_n, ring_head;
	struct reason_count reasons[REASONS_MAX];
	size_t nreasons;
};

/* A reason without what differs from record to record, so dead letters group by cause: what comes before the
 * column or path it names ("generate records 0-99 record 7: ") is dropped and quoted values become "…". */
static void reason_kind(const void *v, size_t n, char *t, size_t tsz)
{
	char raw[1024];
	size_t rn = n < sizeof raw - 1 ? n : sizeof raw - 1;
	memcpy(raw, v, rn);
	raw[rn] = 0;
	const char *p = raw;
	const char *col = strstr(raw, "column '");
	if (col)
		p = col;
	size_t o = 0;
	for (; *p && o + 4 < tsz; p++) {
		if (*p == '"') {
			const char *e = strchr(p + 1, '"');
			if (e) {
				memcpy(t + o, "\xe2\x80\xa6", 3); /* … */
				o += 3;
				p = e;
				continue;
			}
		}
		t[o++] = *p;
	}
	t[o] = 0;
}

static void count_reason(struct browse_ctx *b, const struct sl_msg *m)
{
	const struct sl_header *h = find_header(m, "sluice.error");
	if (!h)
		return;
	char t[256];
	reason_kind(h->value, h->value_len, t, sizeof t);
	for (size_t i = 0; i < b->nreasons; i++)
		if (!strcmp(b->reasons[i].text, t)) {
			b->reasons[i].n++;
			return;
		}
	if (b->nreasons < REASONS_MAX) {
		snprintf(b->reasons[b->nreasons].text, sizeof b->reasons[0].text, "%s", t);
		b->reasons[b->nreasons++].n = 1;
	}
}

static bool browse_one(void *ctx, const struct sl_msg *m)
{
	struct browse_ctx *b = ctx;
	b->scanned++;
	count_reason(b, m);
	if (b->ring) {
		/* Newest first: keep the latest matches; the oldest kept one makes room. */
		size_t slot = b->ring_n < (size_t)b->limit ? b->ring_n : b->ring_head;
		struct sl_buf *s = &b->ring[slot];
		sl_buf_reset(s);
		if (!emit(b->c, s, 0, m, b->o, b->sh))
			return true;
		b->ring_ts[slot] = m->timestamp_ms;
		b->ring_off[slot] = m->offset;
		b->ring_part[slot] = m->partition;
		if (b->ring_n < (size_t)b->limit)
			b->ring_n++;
		else
			b->ring_head = (b->ring_head + 1) % (size_t)b->limit;
		return true;
	}
	if (emit(b->c, b->out, b->n, m, b->o, b->sh))
		b->n++;
	return b->n < b->limit;
}

struct newest_item {
	int64_t ts, off;
	int32_t part;
	char *json;
	size_t len;
};

static int newest_cmp(const void *a, const void *b)
{
	const struct newest_item *x = a, *y = b;
	if (x->ts != y->ts)
		return x->ts < y->ts ? 1 : -1;
	if (x->off != y->off)
		return x->off < y->off ? 1 : -1;
	return x->part < y->part ? 1 : x->part > y->part ? -1 : 0;
}

int sl_con_browse(struct sl_console *c, const struct sl_con_browse_opts *o, struct sl_buf *out, struct sl_err *err)
{
	pthread_mutex_lock(&c->lock);
	struct sl_topic_store *log = c->log;
	pthread_mutex_unlock(&c->lock);
	if (!log)
		return sl_err_set(err, SL_EAGAIN, "the log is not reachable yet: %s", c->log_error);
	/* An unknown topic or partition is a 404, not an empty page. */
	int np = 0;
	int rc = log->ops->partitions(log, o->topic, &np, err);
	if (rc)
		return rc;
	if (np <= 0)
		return sl_err_set(err, SL_ENOTFOUND, "no topic %s", o->topic);
	if (o->partition >= np)
		return sl_err_set(err, SL_ENOTFOUND, "topic %s has no partition %" PRId32 " (it has %d)", o->topic,
				  o->partition, np);
	bool filtered = (o->filter && *o->filter) || (o->reason && *o->reason) || (o->stage && *o->stage);
	struct browse_ctx b = {.c = c, .out = out, .o = o, .limit = o->limit};
	sl_buf_init(&b.sh[0].json);
	sl_buf_init(&b.sh[1].json);
	size_t mark = out->len;
	sl_buf_puts(out, "{\"messages\":[");
	int64_t next = o->offset;
	/* A filter scans at most 10000 records (per partition when newest first), so one request stays cheap. */
	int64_t scan = filtered ? 10000 : o->limit;
	if (o->scan > scan)
		scan = o->scan < 10000 ? o->scan : 10000;
	if (!o->newest) {
		rc = log->ops->browse(log, o->topic, o->partition, o->offset, o->from_ms, scan, 3000, browse_one, &b,
				      &next, err);
	} else {
		size_t cap = (size_t)o->limit;
		b.ring = calloc(cap, sizeof *b.ring);
		b.ring_ts = calloc(cap, sizeof *b.ring_ts);
		b.ring_off = calloc(cap, sizeof *b.ring_off);
		b.ring_part = calloc(cap, sizeof *b.ring_part);
		size_t nitems = 0, capitems = 0;
		struct newest_item *items = NULL;
		if (!b.ring || !b.ring_ts || !b.ring_off || !b.ring_part)
			rc = sl_err_set(err, SL_ENOMEM, "out of memory");
		for (size_t i = 0; i < cap && b.ring; i++)
			sl_buf_init(&b.ring[i]);
		for (int32_t p = 0; !rc && p < np; p++) {
			if (o->partition >= 0 && p != o->partition)
				continue;
			int64_t lo = 0, hi = 0;
			if ((rc = log->ops->watermarks(log, o->topic, p, &lo, &hi, err)))
				break;
			int64_t from = hi - scan > lo ? hi - scan : lo;
			if (from >= hi)
				continue;
			b.ring_n = b.ring_head = 0;
			if ((rc = log->ops->browse(log, o->topic, p, from, -1, hi - from, 3000, browse_one, &b, NULL, err)))
				break;
			if (nitems + b.ring_n > capitems) {
				size_t nc = (nitems + b.ring_n) * 2;
				struct newest_item *ni = realloc(items, nc * sizeof *ni);
				if (!ni) {
					rc = sl_err_set(err, SL_ENOMEM, "out of memory");
					break;
				}
				items = ni;
				capitems = nc;
			}
			for (size_t k = 0; k < b.ring_n; k++) {
				struct newest_item *it = &items[nitems];
				it->ts = b.ring_ts[k];
				it->off = b.ring_off[k];
				it->part = b.ring_part[k];
				it->len = b.ring[k].len;
				it->json = malloc(it->len ? it->len : 1);
				if (!it->json) {
					rc = sl_err_set(err, SL_ENOMEM, "out of memory");
					break;
				}
				memcpy(it->json, b.ring[k].data, it->len);
				nitems++;
			}
		}
		if (!rc) {
			if (nitems) /* qsort(NULL, 0) is undefined */
				qsort(items, nitems, sizeof *items, newest_cmp);
			for (size_t k = 0; k < nitems && (int64_t)k < o->limit; k++) {
				if (k)
					sl_buf_putc(out, ',');
				sl_buf_append(out, items[k].json, items[k].len);
			}
			b.n = nitems < (size_t)o->limit ? (int64_t)nitems : o->limit;
		}
		for (size_t k = 0; k < nitems; k++)
			free(items[k].json);
		free(items);
		for (size_t i = 0; b.ring && i < cap; i++)
			sl_buf_free(&b.ring[i]);
		free(b.ring);
		free(b.ring_ts);
		free(b.ring_off);
		free(b.ring_part);
		next = -1;
	}
	if (rc)
		out->len = mark;
	else {
		sl_buf_printf(out, "],\"scanned\":%" PRId64 ",\"order\":\"%s\",\"next_offset\":", b.scanned,
			      o->newest ? "newest" : "oldest");
		if (next >= 0)
			sl_buf_printf(out, "%" PRId64, next);
		else
			sl_buf_puts(out, "null");
		sl_buf_puts(out, ",\"reasons\":[");
		for (size_t i = 0; i < b.nreasons; i++) {
			sl_buf_puts(out, i ? ",{\"reason\":" : "{\"reason\":");
			sl_buf_json_str(out, b.reasons[i].text, strlen(b.reasons[i].text));
			/* what to pass as reason= to get this group: the text up to the first varying part */
			const char *cut = strstr(b.reasons[i].text, "\xe2\x80\xa6");
			size_t ml = cut ? (size_t)(cut - b.reasons[i].text) : strlen(b.reasons[i].text);
			sl_buf_puts(out, ",\"match\":");
			sl_buf_json_str(out, b.reasons[i].text, ml);
			sl_buf_printf(out, ",\"count\":%" PRId64 "}", b.reasons[i].n);
		}
		sl_buf_puts(out, "]}");
	}
	sl_buf_free(&b.sh[0].json);
	sl_buf_free(&b.sh[1].json);
	return rc;
}

/* ---- the data page: the newest rows of a sink table, a page at a time ---- */

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

static void rows_head(struct sl_buf *out, const struct sl_pipeline *p, size_t output)
{
	char tn[600];
	const struct sl_sink_conf *sc = output ? p->out[output].conf : &p->sink;
	snprintf(tn, sizeof tn, "%s.%s", sc->keyspace, sc->table);
	sl_buf_puts(out, "{\"pipeline\":");
	sl_buf_json_str(out, p->name, strlen(p->name));
	sl_buf_puts(out, ",\"output\":");
	const char *on = output ? p->out[output].name : "main";
	sl_buf_json_str(out, on, strlen(on));
	sl_buf_puts(out, ",\"table\":");
	sl_buf_json_str(out, tn, strlen(tn));
	sl_buf_puts(out, ",\"columns\":[");
}

int sl_con_rows(struct sl_console *c, struct sl_pipeline *p, size_t output, const unsigned char *token, size_t ntoken,
		int64_t page, int64_t size, const char *key, struct sl_buf *out, struct sl_err *err)
{
	size_t i = 0;
	while (i < c->npipes && c->pipes[i].p != p)
		i++;
	if (i == c->npipes)
		return sl_err_set(err, SL_ENOTFOUND, "no pipeline %s", p->name);
	struct sl_sink_page pg;
	sl_sink_page_init(&pg);
	if (output >= p->nout)
		return sl_err_set(err, SL_ENOTFOUND, "pipeline %s has no output %zu", p->name, output);
	pthread_mutex_lock(&c->cql_lock);
	/* The pipeline's own table has a reader kept open; another output's (outputs:) is opened for the request. */
	struct sl_sink *own = NULL;
	if (output && sl_sink_open_reader(c->conf->cassandra, c->conf->data_dir, p->name, p->out[output].conf, &own,
					  err))
		own = NULL;
	struct sl_sink *sk = output ? own : sink_reader(c, i, err);
	int rc = !sk ? (err->code ? err->code : SL_EIO)
	     : !sk->ops->browse ? sl_err_set(err, SL_ENOTFOUND, "pipeline %s: its sink has no rows to show", p->name)
	     : !key		? sk->ops->browse(sk, token, ntoken, page, size, &pg, err)
	     : !sk->ops->find	? sl_err_set(err, SL_EINVAL, "pipeline %s: its sink cannot filter by key", p->name)
				: sk->ops->find(sk, key, size, &pg, err);
	/* The columns' types for the page's headings; a table that cannot say gives none (the rows still show). */
	struct sl_sink_column *cols = NULL;
	size_t ncols = 0;
	struct sl_err derr = {0};
	if (!rc && (!sk->ops->describe || sk->ops->describe(sk, &cols, &ncols, &derr))) {
		cols = NULL;
		ncols = 0;
	}
	if (own) {
		own->ops->destroy(own);
		sk = NULL;
	}
	if (rc && sk && rc != SL_EINVAL) {
		/* A reader that failed (a node restarted, a file replaced) is opened afresh next time. */
		sk->ops->destroy(sk);
		((struct sl_sink **)c->sinks)[i] = NULL;
	}
	pthread_mutex_unlock(&c->cql_lock);
	if (!rc) {
		rows_head(out, p, output);
		sl_buf_append(out, pg.columns.data, pg.columns.len);
		sl_buf_puts(out, "],\"rows\":[");
		sl_buf_append(out, pg.rows.data, pg.rows.len);
		sl_buf_puts(out, "]");
		if (!strcmp(pg.order, "newest"))
			sl_buf_printf(out, ",\"page\":%lld,\"size\":%lld,\"has_more\":%s", (long long)page,
				      (long long)size, pg.more ? "true" : "false");
		else
			sl_buf_printf(out, ",\"size\":%lld", (long long)size);
		sl_buf_puts(out, ",\"schema\":[");
		const char *pk = NULL;
		for (size_t k = 0; k < ncols; k++) {
			sl_buf_puts(out, k ? ",{\"name\":" : "{\"name\":");
			sl_buf_json_str(out, cols[k].name, strlen(cols[k].name));
			sl_buf_puts(out, ",\"type\":");
			sl_buf_json_str(out, cols[k].type, strlen(cols[k].type));
			sl_buf_printf(out, ",\"key\":%s,\"partition\":%s}", cols[k].key ? "true" : "false",
				      cols[k].partition ? "true" : "false");
			if (cols[k].partition && !pk)
				pk = cols[k].name;
		}
		sl_buf_puts(out, "],\"partition_key\":");
		if (pk)
			sl_buf_json_str(out, pk, strlen(pk));
		else
			sl_buf_puts(out, "null");
		sl_buf_puts(out, ",\"key\":");
		if (key)
			sl_buf_json_str(out, key, strlen(key));
		else
			sl_buf_puts(out, "null");
		sl_buf_printf(out, ",\"snapshot_ms\":%lld", (long long)sl_con_now_ms());
		sl_buf_printf(out, ",\"order\":\"%s\",\"next_token\":", pg.order);
		if (pg.next_token_len)
			page_token(out, pg.next_token, pg.next_token_len);
		else
			sl_buf_puts(out, "null");
		sl_buf_puts(out, "}");
	}
	free(cols);
	sl_sink_page_free(&pg);
	return rc;
}
