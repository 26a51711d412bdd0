/* The console's request handling: authentication, limits, the built-in JSON API behind every page, /metrics,
 * /health and /ready, the embedded static assets (with ETags and gzip), and the routes other roles plug in. It works on
 * a parsed request and fills a response; server.c does the sockets. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "console/internal.h"
#include "pipeline/aggregate.h"
#include "sink/sink.h"
#include "topic/topic.h"
#include "core/metrics.h"


/* ---- assets ---- */

struct asset_extra {
	char etag[24];
	unsigned char *gz;
	size_t gzlen;
};
static struct asset_extra *g_extra;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

int sl_con_gzip(const void *data, size_t len, struct sl_buf *out)
{
	z_stream z;
	memset(&z, 0, sizeof z);
	if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -1;
	size_t bound = deflateBound(&z, len) + 32;
	char *dst = sl_buf_reserve(out, bound);
	if (!dst) {
		deflateEnd(&z);
		return -1;
	}
	z.next_in = (Bytef *)(uintptr_t)data;
	z.avail_in = (uInt)len;
	z.next_out = (Bytef *)dst;
	z.avail_out = (uInt)bound;
	int rc = deflate(&z, Z_FINISH);
	size_t n = bound - z.avail_out;
	deflateEnd(&z);
	if (rc != Z_STREAM_END)
		return -1;
	out->len += n;
	return 0;
}

static void assets_init(void)
{
	g_extra = calloc(sl_con_nassets ? sl_con_nassets : 1, sizeof *g_extra);
	for (size_t i = 0; g_extra && i < sl_con_nassets; i++) {
		uint64_t h = 1469598103934665603ULL; /* FNV-1a */
		for (size_t j = 0; j < sl_con_assets[i].len; j++)
			h = (h ^ sl_con_assets[i].data[j]) * 1099511628211ULL;
		snprintf(g_extra[i].etag, sizeof g_extra[i].etag, "\"%016" PRIx64 "\"", h);
		struct sl_buf b;
		sl_buf_init(&b);
		if (sl_con_gzip(sl_con_assets[i].data, sl_con_assets[i].len, &b) == 0 && b.len < sl_con_assets[i].len) {
			g_extra[i].gz = (unsigned char *)b.data;
			g_extra[i].gzlen = b.len;
		} else
			sl_buf_free(&b);
	}
}

const struct sl_con_asset *sl_con_asset_find(const char *path, const char **etag, const unsigned char **gz,
					     size_t *gzlen)
{
	pthread_once(&g_once, assets_init);
	if (!strcmp(path, "/"))
		path = "/index.html";
	for (size_t i = 0; i < sl_con_nassets; i++)
		if (!strcmp(sl_con_assets[i].path, path)) {
			*etag = g_extra ? g_extra[i].etag : "\"0\"";
			*gz = g_extra ? g_extra[i].gz : NULL;
			*gzlen = g_extra ? g_extra[i].gzlen : 0;
			return &sl_con_assets[i];
		}
	return NULL;
}

const char *sl_con_mime(const char *path)
{
	const char *dot = strrchr(path, '.');
	if (!dot)
		return "application/octet-stream";
	if (!strcmp(dot, ".html"))
		return "text/html; charset=utf-8";
	if (!strcmp(dot, ".js"))
		return "text/javascript; charset=utf-8";
	if (!strcmp(dot, ".css"))
		return "text/css; charset=utf-8";
	if (!strcmp(dot, ".svg"))
		return "image/svg+xml";
	if (!strcmp(dot, ".json"))
		return "application/json";
	if (!strcmp(dot, ".png"))
		return "image/png";
	return "application/octet-stream";
}

/* ---- JSON helpers ---- */

static void jstr(struct sl_buf *b, const char *s)
{
	if (!s)
		sl_buf_puts(b, "null");
	else
		sl_buf_json_str(b, s, strlen(s));
}

static void jnum(struct sl_buf *b, double v)
{
	if (v < 0)
		sl_buf_puts(b, "null");
	else
		sl_buf_printf(b, "%.6g", v);
}

static void jerror(struct sl_con_resp *rs, int status, const char *msg)
{
	rs->status = status;
	rs->ctype = "application/json";
	sl_buf_reset(&rs->body);
	sl_buf_puts(&rs->body, "{\"error\":");
	jstr(&rs->body, msg);
	sl_buf_puts(&rs->body, "}");
}

/* ---- pages' APIs (lock held) ---- */

static void pipe_json(struct sl_console *c, struct sl_con_pipe *cp, struct sl_buf *b, int64_t now)
{
	const struct sl_con_sample *last = cp->nring ? sl_con_ring_at(c, cp, cp->nring - 1) : NULL;
	sl_buf_puts(b, "{\"name\":");
	jstr(b, cp->p->name);
	sl_buf_puts(b, ",\"topic\":");
	jstr(b, cp->p->topic);
	sl_buf_puts(b, ",\"dlq_topic\":");
	jstr(b, cp->p->dlq_topic);
	sl_buf_puts(b, ",\"group\":");
	jstr(b, cp->p->group);
	char tn[600];
	snprintf(tn, sizeof tn, "%s.%s", cp->p->sink.keyspace, cp->p->sink.table);
	sl_buf_puts(b, ",\"table\":");
	jstr(b, tn);
	sl_buf_printf(b, ",\"partitions\":%d,\"in_rate\":%.3f,\"out_rate\":%.3f,\"lag\":%" PRId64
			 ",\"in_total\":%" PRId64 ",\"out_total\":%" PRId64 ",\"dlq\":%" PRId64 ",\"status\":\"%s\"",
		      cp->nparts, last ? last->in_rate : 0, last ? last->out_rate : 0, cp->lag, cp->high_sum,
		      cp->committed_sum, cp->dlq_high, sl_burrow_name(cp->status));
	sl_buf_puts(b, ",\"table_rows\":");
	if (cp->table_rows >= 0)
		sl_buf_printf(b, "%" PRId64, cp->table_rows);
	else
		sl_buf_puts(b, "null");
	sl_buf_puts(b, ",\"lag_seconds\":");
	jnum(b, cp->lag_seconds);
	sl_buf_puts(b, ",\"e2e_p50\":");
	jnum(b, cp->e2e_p50);
	sl_buf_puts(b, ",\"e2e_p95\":");
	jnum(b, cp->e2e_p95);
	sl_buf_printf(b, ",\"error_rate\":%.6g", sl_con_error_rate(c, cp, now, c->cc.health_window_ms));
	sl_buf_printf(b, ",\"errors\":%" PRIu64, last ? last->errors_total : 0);
	const char *names[] = {"ingested", "written", "retries"};
	int64_t vals[] = {cp->m_ingested, cp->m_written, cp->m_retries};
	for (int i = 0; i < 3; i++) {
		sl_buf_printf(b, ",\"%s\":", names[i]);
		if (vals[i] >= 0)
			sl_buf_printf(b, "%" PRId64, vals[i]);
		else
			sl_buf_puts(b, "null");
	}
	sl_buf_printf(b, ",\"log_ok\":%s,\"sink_ok\":%s,\"log_error\":", cp->log_ok ? "true" : "false",
		      cp->sink_ok ? "true" : "false");
	jstr(b, cp->log_error[0] ? cp->log_error : NULL);
	sl_buf_puts(b, ",\"sink_error\":");
	jstr(b, cp->sink_error[0] ? cp->sink_error : NULL);
	/* The one status the page shows, with its reasons (status.c); "status" above is the group's alone. */
	struct sl_buf why;
	sl_buf_init(&why);
	enum sl_con_health hl = sl_con_pipe_health(c, cp, now, &why);
	sl_buf_printf(b, ",\"health\":\"%s\",\"health_reasons\":[", sl_con_health_name(hl));
	sl_buf_append(b, why.data ? why.data : "", why.len);
	sl_buf_puts(b, "]}");
	sl_buf_free(&why);
}

static void api_overview(struct sl_console *c, struct sl_buf *b)
{
	int64_t now = sl_con_now_ms();
	size_t firing = 0;
	for (size_t i = 0; i < c->nalerts; i++)
		firing += c->alerts[i].firing;
	sl_buf_printf(b, "{\"time\":%" PRId64 ",\"last_poll\":%" PRId64 ",\"poll_ms\":%" PRId64
			 ",\"in_process\":%s,\"log\":",
		      now, c->last_poll_ms, c->cc.poll_ms, c->embedded ? "true" : "false");
	{
		/* "kafka host:port,..." (the brokers metadata named, else the configured ones) or "embedded log PATH". */
		const struct sl_topic_store *ls = c->log;
		char k[4400];
		snprintf(k, sizeof k, "%s", ls ? ls->backend : sl_topic_backend_name(c->conf->kafka));
		for (size_t i = 0; i < c->nbrokers && strlen(k) < 300; i++)
			snprintf(k + strlen(k), sizeof k - strlen(k), "%s%s:%d", i ? "," : " ", c->brokers[i].host,
				 c->brokers[i].port);
		if (!c->nbrokers && ls)
			snprintf(k + strlen(k), sizeof k - strlen(k), " %s", ls->where);
		sl_con_scrub_paths(c, k, sizeof k);
		jstr(b, k);
	}
	sl_buf_puts(b, ",\"sink\":");
	jstr(b, c->npipes ? sl_sink_kind(c->conf->cassandra, &c->pipes[0].p->sink) : "sqlite");
	sl_buf_printf(b, ",\"log_ok\":%s,\"log_error\":", c->log_ok ? "true" : "false");
	jstr(b, c->log_error[0] ? c->log_error : NULL);
	sl_buf_printf(b, ",\"alerts_firing\":%zu,\"pipelines\":[", firing);
	for (size_t i = 0; i < c->npipes; i++) {
		if (i)
			sl_buf_putc(b, ',');
		pipe_json(c, &c->pipes[i], b, now);
	}
	sl_buf_puts(b, "]}");
}

static int api_history(struct sl_console *c, const char *query, struct sl_con_resp *rs)
{
	char name[256];
	int64_t since;
	if (sl_con_query_get(query, "pipeline", name, sizeof name) < 0 ||
	    sl_con_query_int(query, "since", 0, 0, INT64_MAX, &since) < 0) {
		jerror(rs, 400, "bad query: pipeline=NAME&since=MILLISECONDS");
		return 0;
	}
	struct sl_buf *b = &rs->body;
	sl_buf_puts(b, "{\"columns\":[\"t\",\"in_rate\",\"out_rate\",\"lag\",\"errors\",\"dlq\",\"table_rows\","
		       "\"e2e_p95\",\"lag_seconds\"],\"pipelines\":{");
	bool first = true;
	for (size_t i = 0; i < c->npipes; i++) {
		struct sl_con_pipe *cp = &c->pipes[i];
		if (name[0] && strcmp(name, cp->p->name))
			continue;
		if (!first)
			sl_buf_putc(b, ',');
		first = false;
		jstr(b, cp->p->name);
		sl_buf_puts(b, ":[");
		bool f2 = true;
		for (size_t j = 0; j < cp->nring; j++) {
			const struct sl_con_sample *s = sl_con_ring_at(c, cp, j);
			if (s->t_ms <= since)
				continue;
			sl_buf_printf(b, "%s[%" PRId64 ",%.3f,%.3f,%" PRId64 ",%" PRIu64 ",%" PRId64 ",%" PRId64 ",",
				      f2 ? "" : ",", s->t_ms, s->in_rate, s->out_rate, s->lag, s->errors_total, s->dlq,
				      s->table_rows);
			jnum(b, s->e2e_p95);
			sl_buf_putc(b, ',');
			jnum(b, s->lag_seconds);
			sl_buf_putc(b, ']');
			f2 = false;
		}
		sl_buf_putc(b, ']');
	}
	sl_buf_puts(b, "}}");
	return 0;
}

/* GET /api/history?from=MS[&to=MS][&points=N][&pipeline=NAME]: a longer range than the in-memory ring, from
 * console.db (store.c), averaged into at most N points (600 by default). Without the lock: it reads the disk, and
 * the pipelines' names never change. */
static void api_history_range(struct sl_console *c, const char *query, struct sl_con_resp *rs)
{
	char name[256];
	int64_t from, to, points, now = sl_con_now_ms();
	if (sl_con_query_get(query, "pipeline", name, sizeof name) < 0 ||
	    sl_con_query_int(query, "from", 0, 0, INT64_MAX, &from) < 0 ||
	    sl_con_query_int(query, "to", now, 0, INT64_MAX, &to) < 0 ||
	    sl_con_query_int(query, "points", 600, 2, 5000, &points) < 0 || to < from) {
		jerror(rs, 400, "bad query: from=MILLISECONDS&to=MILLISECONDS&points=2..5000&pipeline=NAME");
		return;
	}
	struct sl_buf *b = &rs->body;
	sl_buf_printf(b, "{\"columns\":[\"t\",\"in_rate\",\"out_rate\",\"lag\",\"errors\",\"dlq\",\"table_rows\","
		       "\"e2e_p95\",\"lag_seconds\"],\"from\":%" PRId64 ",\"to\":%" PRId64 ",\"retention_ms\":%" PRId64
		       ",\"pipelines\":{", from, to, c->cc.retention_ms);
	bool first = true;
	for (size_t i = 0; i < c->npipes; i++) {
		const char *pn = c->pipes[i].p->name;
		if (name[0] && strcmp(name, pn))
			continue;
		sl_buf_puts(b, first ? "" : ",");
		first = false;
		jstr(b, pn);
		sl_buf_puts(b, ":[");
		sl_con_store_range(c, pn, from, to, points, b); /* nothing kept yet: an empty list */
		sl_buf_putc(b, ']');
	}
	sl_buf_puts(b, "}}");
	if (!sl_buf_ok(b))
		jerror(rs, 500, "out of memory");
}

static void part_basic(struct sl_buf *b, const struct sl_con_part *pt)
{
	sl_buf_printf(b, "{\"partition\":%" PRId32 ",\"low\":%" PRId64 ",\"high\":%" PRId64, pt->partition, pt->low,
		      pt->high);
	if (pt->leader >= 0) {
		sl_buf_printf(b, ",\"leader\":%" PRId32 ",\"isr\":", pt->leader);
		jstr(b, pt->isr);
	}
}

static void api_kafka(struct sl_console *c, struct sl_buf *b)
{
	int64_t now = sl_con_now_ms();
	sl_buf_printf(b, "{\"backend\":\"%s\",\"ok\":%s,\"error\":", sl_topic_backend_name(c->conf->kafka),
		      c->log_ok ? "true" : "false");
	jstr(b, c->log_error[0] ? c->log_error : NULL);
	sl_buf_puts(b, ",\"brokers\":[");
	for (size_t i = 0; i < c->nbrokers; i++) {
		sl_buf_printf(b, "%s{\"id\":%" PRId32 ",\"host\":", i ? "," : "", c->brokers[i].id);
		jstr(b, c->brokers[i].host);
		sl_buf_printf(b, ",\"port\":%d}", c->brokers[i].port);
	}
	sl_buf_puts(b, "],\"topics\":[");
	for (size_t i = 0; i < c->ntopics; i++) {
		struct sl_con_topic *t = &c->topics[i];
		sl_buf_puts(b, i ? ",{\"name\":" : "{\"name\":");
		jstr(b, t->name);
		sl_buf_printf(b, ",\"messages\":%" PRId64 ",\"partitions\":[", t->messages);
		for (int j = 0; t->parts && j < t->nparts; j++) {
			if (j)
				sl_buf_putc(b, ',');
			part_basic(b, &t->parts[j]);
			sl_buf_putc(b, '}');
		}
		sl_buf_puts(b, "]}");
	}
	sl_buf_puts(b, "],\"groups\":[");
	for (size_t i = 0; i < c->npipes; i++) {
		struct sl_con_pipe *cp = &c->pipes[i];
		sl_buf_puts(b, i ? ",{\"group\":" : "{\"group\":");
		jstr(b, cp->p->group);
		sl_buf_puts(b, ",\"topic\":");
		jstr(b, cp->p->topic);
		sl_buf_puts(b, ",\"pipeline\":");
		jstr(b, cp->p->name);
		sl_buf_printf(b, ",\"status\":\"%s\",\"lag\":%" PRId64 ",\"window\":%" PRId64 ",\"partitions\":[",
			      sl_burrow_name(cp->status), cp->lag, c->cc.burrow_window);
		for (int j = 0; j < cp->nparts; j++) {
			struct sl_con_part *pt = &cp->parts[j];
			if (j)
				sl_buf_putc(b, ',');
			part_basic(b, pt);
			sl_buf_printf(b, ",\"committed\":%" PRId64 ",\"lag\":%" PRId64 ",\"status\":\"%s\"", pt->committed,
				      pt->lag, sl_burrow_name(pt->status));
			sl_buf_printf(b, ",\"last_commit_ago_ms\":%" PRId64 ",\"commits\":[",
				      pt->last_commit_ms ? now - pt->last_commit_ms : -1);
			for (size_t k = 0; k < pt->win.n; k++)
				sl_buf_printf(b, "%s[%" PRId64 ",%" PRId64 ",%" PRId64 "]", k ? "," : "",
					      pt->win.c[k].offset, pt->win.c[k].lag, pt->win.c[k].ts_ms);
			sl_buf_puts(b, "]}");
		}
		sl_buf_puts(b, "]}");
	}
	sl_buf_puts(b, "]}");
}

/* An output of outputs: as a table of the data page; an aggregate's watermark, open windows and late records when
 * its processor runs in this process (sluice up), from the gauges it keeps (null otherwise). */
static void api_output(struct sl_buf *b, const struct sl_pipeline *p, const struct sl_output *o,
		       const struct sl_cfg_node *cassandra, int64_t rows)
{
	sl_buf_puts(b, ",{\"pipeline\":");
	jstr(b, p->name);
	sl_buf_puts(b, ",\"output\":");
	jstr(b, o->name);
	sl_buf_puts(b, ",\"keyspace\":");
	jstr(b, o->conf->keyspace);
	sl_buf_puts(b, ",\"table\":");
	jstr(b, o->conf->table);
	sl_buf_puts(b, ",\"sink\":");
	jstr(b, sl_sink_kind(cassandra, o->conf));
	sl_buf_puts(b, ",\"rows\":");
	if (rows >= 0)
		sl_buf_printf(b, "%" PRId64, rows);
	else
		sl_buf_puts(b, "null");
	sl_buf_puts(b, ",\"error\":null,\"aggregate\":");
	if (!o->agg) {
		sl_buf_puts(b, "null}");
		return;
	}
	char l[600];
	snprintf(l, sizeof l, "pipeline=\"%s\",output=\"%s\"", p->name, o->name);
	static const char *const names[][2] = {{"watermark_seconds", "sluice_aggregate_watermark_seconds"},
					       {"open_windows", "sluice_aggregate_open_windows"},
					       {"late_records", "sluice_aggregate_late_records"}};
	sl_buf_puts(b, "{\"final\":");
	sl_buf_puts(b, sl_aggregate_conf_emit_final(o->agg) ? "true" : "false");
	for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
		const struct sl_metric *m = sl_metric_find(sl_metrics_global(), names[i][1], l);
		sl_buf_printf(b, ",\"%s\":", names[i][0]);
		if (m)
			sl_buf_printf(b, "%" PRId64, sl_gauge_get(m));
		else
			sl_buf_puts(b, "null");
	}
	sl_buf_puts(b, "}}");
}

static void api_data(struct sl_console *c, struct sl_buf *b)
{
	sl_buf_printf(b, "{\"sink\":\"%s\",\"tables\":[", c->conf->cassandra ? "cassandra" : "sqlite");
	for (size_t i = 0; i < c->npipes; i++) {
		struct sl_con_pipe *cp = &c->pipes[i];
		sl_buf_puts(b, i ? ",{\"pipeline\":" : "{\"pipeline\":");
		jstr(b, cp->p->name);
		sl_buf_puts(b, ",\"keyspace\":");
		jstr(b, cp->p->sink.keyspace);
		sl_buf_puts(b, ",\"table\":");
		jstr(b, cp->p->sink.table);
		sl_buf_puts(b, ",\"sink\":");
		jstr(b, sl_sink_kind(c->conf->cassandra, &cp->p->sink));
		sl_buf_puts(b, ",\"rows\":");
		if (cp->table_rows >= 0)
			sl_buf_printf(b, "%" PRId64, cp->table_rows);
		else
			sl_buf_puts(b, "null");
		sl_buf_puts(b, ",\"error\":");
		jstr(b, cp->sink_error[0] ? cp->sink_error : NULL);
		sl_buf_puts(b, ",\"output\":\"main\"}");
		for (size_t o = 1; o < cp->p->nout; o++)
			api_output(b, cp->p, &cp->p->out[o], c->conf->cassandra, cp->out_rows ? cp->out_rows[o] : -1);
	}
	sl_buf_puts(b, "]}");
}

/* ---- /metrics ---- */

static void label_value(struct sl_buf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			sl_buf_putc(b, '\\');
		if (*s == '\n') {
			sl_buf_puts(b, "\\n");
			continue;
		}
		sl_buf_putc(b, *s);
	}
}

static void family(struct sl_buf *b, const char *name, const char *type, const char *help)
{
	sl_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void sl_con_metrics_text(struct sl_console *c, struct sl_buf *out)
{
	sl_metrics_export(sl_metrics_global(), out);
	sl_con_process_metrics(out);
	pthread_mutex_lock(&c->lock);
	family(out, "kafka_topic_partitions", "gauge", "Number of partitions for this Topic");
	for (size_t i = 0; i < c->ntopics; i++) {
		sl_buf_puts(out, "kafka_topic_partitions{topic=\"");
		label_value(out, c->topics[i].name);
		sl_buf_printf(out, "\"} %d\n", c->topics[i].nparts);
	}
	family(out, "kafka_topic_partition_current_offset", "gauge", "Current Offset of a Broker at Topic/Partition");
	for (size_t i = 0; i < c->ntopics; i++)
		for (int j = 0; c->topics[i].parts && j < c->topics[i].nparts; j++) {
			sl_buf_printf(out, "kafka_topic_partition_current_offset{partition=\"%" PRId32 "\",topic=\"",
				      c->topics[i].parts[j].partition);
			label_value(out, c->topics[i].name);
			sl_buf_printf(out, "\"} %" PRId64 "\n", c->topics[i].parts[j].high);
		}
	family(out, "kafka_topic_partition_oldest_offset", "gauge", "Oldest Offset of a Broker at Topic/Partition");
	for (size_t i = 0; i < c->ntopics; i++)
		for (int j = 0; c->topics[i].parts && j < c->topics[i].nparts; j++) {
			sl_buf_printf(out, "kafka_topic_partition_oldest_offset{partition=\"%" PRId32 "\",topic=\"",
				      c->topics[i].parts[j].partition);
			label_value(out, c->topics[i].name);
			sl_buf_printf(out, "\"} %" PRId64 "\n", c->topics[i].parts[j].low);
		}
	const char *fams[][3] = {
		{"kafka_consumergroup_current_offset", "gauge", "Current Offset of a ConsumerGroup at Topic/Partition"},
		{"kafka_consumergroup_lag", "gauge", "Current Approximate Lag of a ConsumerGroup at Topic/Partition"},
	};
	for (int f = 0; f < 2; f++) {
		family(out, fams[f][0], fams[f][1], fams[f][2]);
		for (size_t i = 0; i < c->npipes; i++) {
			struct sl_con_pipe *cp = &c->pipes[i];
			for (int j = 0; j < cp->nparts; j++) {
				if (f == 0 && cp->parts[j].committed < 0)
					continue;
				sl_buf_printf(out, "%s{consumergroup=\"", fams[f][0]);
				label_value(out, cp->p->group);
				sl_buf_printf(out, "\",partition=\"%" PRId32 "\",topic=\"", cp->parts[j].partition);
				label_value(out, cp->p->topic);
				sl_buf_printf(out, "\"} %" PRId64 "\n", f == 0 ? cp->parts[j].committed : cp->parts[j].lag);
			}
		}
	}
	family(out, "kafka_consumergroup_lag_sum", "gauge", "Current Approximate Lag of a ConsumerGroup at Topic for all partitions");
	for (size_t i = 0; i < c->npipes; i++) {
		sl_buf_puts(out, "kafka_consumergroup_lag_sum{consumergroup=\"");
		label_value(out, c->pipes[i].p->group);
		sl_buf_puts(out, "\",topic=\"");
		label_value(out, c->pipes[i].p->topic);
		sl_buf_printf(out, "\"} %" PRId64 "\n", c->pipes[i].lag);
	}
	family(out, "sluice_consumergroup_status", "gauge",
	       "Burrow-style status of a consumer group: 0 OK, 1 WARN, 2 STALL, 3 STOP, 4 REWIND");
	for (size_t i = 0; i < c->npipes; i++) {
		sl_buf_puts(out, "sluice_consumergroup_status{consumergroup=\"");
		label_value(out, c->pipes[i].p->group);
		sl_buf_puts(out, "\",pipeline=\"");
		label_value(out, c->pipes[i].p->name);
		sl_buf_printf(out, "\",status=\"%s\"} %d\n", sl_burrow_name(c->pipes[i].status), (int)c->pipes[i].status);
	}
	family(out, "sluice_pipeline_dlq_records", "gauge", "Records in the pipeline's dead-letter topic");
	for (size_t i = 0; i < c->npipes; i++) {
		sl_buf_puts(out, "sluice_pipeline_dlq_records{pipeline=\"");
		label_value(out, c->pipes[i].p->name);
		sl_buf_printf(out, "\"} %" PRId64 "\n", c->pipes[i].dlq_high);
	}
	family(out, "sluice_sink_table_rows", "gauge", "Rows in the pipeline's sink table (SQLite sinks)");
	for (size_t i = 0; i < c->npipes; i++) {
		if (c->pipes[i].table_rows < 0)
			continue;
		sl_buf_puts(out, "sluice_sink_table_rows{pipeline=\"");
		label_value(out, c->pipes[i].p->name);
		sl_buf_printf(out, "\"} %" PRId64 "\n", c->pipes[i].table_rows);
	}
	family(out, "sluice_alert_firing", "gauge", "1 while the console's alert is firing");
	for (size_t i = 0; i < c->nalerts; i++) {
		sl_buf_puts(out, "sluice_alert_firing{alertname=\"");
		label_value(out, c->alerts[i].rule->name);
		sl_buf_puts(out, "\",pipeline=\"");
		label_value(out, c->alerts[i].pipeline);
		sl_buf_printf(out, "\"} %d\n", c->alerts[i].firing ? 1 : 0);
	}
	family(out, "sluice_console_requests_total", "counter", "HTTP requests the console answered");
	sl_buf_printf(out, "sluice_console_requests_total %" PRIu64 "\n", c->requests);
	family(out, "sluice_console_unauthorized_total", "counter", "HTTP requests refused for lack of credentials");
	sl_buf_printf(out, "sluice_console_unauthorized_total %" PRIu64 "\n", c->unauthorized);
	pthread_mutex_unlock(&c->lock);
	family(out, "sluice_console_live_tails", "gauge", "live tails of the message browser open now");
	sl_buf_printf(out, "sluice_console_live_tails %" PRId64 "\n", sl_con_tails_open(c));
}

/* ---- health and readiness ---- */

static void api_health(struct sl_console *c, struct sl_con_resp *rs)
{
	int64_t now = sl_con_now_ms();
	bool ok = true;
	struct sl_buf *b = &rs->body;
	sl_buf_printf(b, "{\"window_s\":%" PRId64 ",\"max_error_rate\":%g,\"pipelines\":[",
		      c->cc.health_window_ms / 1000, c->cc.health_max_error_rate);
	for (size_t i = 0; i < c->npipes; i++) {
		double r = sl_con_error_rate(c, &c->pipes[i], now, c->cc.health_window_ms);
		bool pok = r <= c->cc.health_max_error_rate;
		ok = ok && pok;
		sl_buf_puts(b, i ? ",{\"name\":" : "{\"name\":");
		jstr(b, c->pipes[i].p->name);
		sl_buf_printf(b, ",\"error_rate\":%.6g,\"ok\":%s}", r, pok ? "true" : "false");
	}
	sl_buf_printf(b, "],\"status\":\"%s\"}", ok ? "ok" : "failing");
	rs->status = ok ? 200 : 503;
}

static void api_ready(struct sl_console *c, struct sl_con_resp *rs)
{
	struct sl_buf *b = &rs->body;
	bool ok = c->last_poll_ms > 0 && c->log_ok;
	sl_buf_puts(b, "{\"parts\":[{\"name\":\"log\",\"ok\":");
	sl_buf_puts(b, c->log_ok ? "true" : "false");
	sl_buf_puts(b, ",\"error\":");
	jstr(b, c->log_error[0] ? c->log_error : (c->last_poll_ms ? NULL : "not sampled yet"));
	sl_buf_puts(b, "}");
	for (size_t i = 0; i < c->npipes; i++) {
		struct sl_con_pipe *cp = &c->pipes[i];
		ok = ok && cp->sink_ok && cp->log_ok;
		sl_buf_puts(b, ",{\"name\":");
		char n[300];
		snprintf(n, sizeof n, "sink %s", cp->p->name);
		jstr(b, n);
		sl_buf_printf(b, ",\"ok\":%s,\"error\":", cp->sink_ok ? "true" : "false");
		jstr(b, cp->sink_error[0] ? cp->sink_error : NULL);
		sl_buf_puts(b, "}");
	}
	sl_buf_printf(b, "],\"ready\":%s}", ok ? "true" : "false");
	rs->status = ok ? 200 : 503;
}

/* ---- dispatch ---- */

bool sl_con_same_origin(const char *origin, const char *host)
{
	/* Origin is scheme://host[:port] (or "null"); Host is host[:port] as the browser connected. */
	const char *p = strstr(origin, "://");
	if (!p || !host || !*host)
		return false;
	return !strcmp(p + 3, host);
}

static bool has_prefix(const char *path, const char *prefix)
{
	size_t n = strlen(prefix);
	return !strncmp(path, prefix, n) && (path[n] == 0 || path[n] == '/' || prefix[n - 1] == '/');
}

/* GET /api/kafka/messages: from an offset (oldest first), from a time (timestamp=MS), or the newest (offset=latest
 * or -1, or order=newest: newest first); q, reason and stage filter. An unknown topic or partition is a 404. */
static void api_messages(struct sl_console *c, const char *query, struct sl_con_resp *rs)
{
	char topic[256], filter[256], reason[512], stage[32], offs[32], order[16];
	int64_t part, off = 0, limit, ts;
	bool newest = false;
	int go = sl_con_query_get(query, "offset", offs, sizeof offs);
	if (go == 1 && (!strcmp(offs, "latest") || !strcmp(offs, "newest") || !strcmp(offs, "-1")))
		newest = true;
	else if (go == 1 && offs[0]) {
		char *e;
		off = strtoll(offs, &e, 10);
		if (*e || off < 0)
			go = -1;
	}
	if (sl_con_query_get(query, "topic", topic, sizeof topic) != 1 || !topic[0] || go < 0 ||
	    sl_con_query_get(query, "q", filter, sizeof filter) < 0 ||
	    sl_con_query_get(query, "reason", reason, sizeof reason) < 0 ||
	    sl_con_query_get(query, "stage", stage, sizeof stage) < 0 ||
	    sl_con_query_get(query, "order", order, sizeof order) < 0 ||
	    (order[0] && strcmp(order, "newest") && strcmp(order, "oldest")) ||
	    sl_con_query_int(query, "partition", -1, -1, 100000, &part) < 0 ||
	    sl_con_query_int(query, "timestamp", -1, 0, INT64_MAX, &ts) < 0 ||
	    sl_con_query_int(query, "limit", 50, 1, 500, &limit) < 0) {
		jerror(rs, 400, "bad query: topic=NAME&partition=N&offset=N|latest&timestamp=MS&order=newest|oldest"
				"&limit=1..500&q=TEXT&reason=TEXT&stage=S");
		return;
	}
	if (!strcmp(order, "newest"))
		newest = true;
	if (newest && ts >= 0) {
		jerror(rs, 400, "bad query: timestamp seeks forward from a time; it does not go with the newest first");
		return;
	}
	struct sl_con_browse_opts o = {.topic = topic, .partition = (int32_t)part, .offset = off, .from_ms = ts,
				       .limit = limit, .newest = newest, .filter = filter, .reason = reason,
				       .stage = stage};
	struct sl_err err = {0};
	if (sl_con_browse(c, &o, &rs->body, &err)) {
		sl_con_scrub_paths(c, err.msg, sizeof err.msg);
		jerror(rs, err.code == SL_ENOTFOUND ? 404 : 503, err.msg);
	}
}

static void api_rows(struct sl_console *c, const char *query, struct sl_con_resp *rs)
{
	char name[256], hex[2 * SL_CON_TOKEN_MAX + 1];
	unsigned char token[SL_CON_TOKEN_MAX];
	int64_t page, size;
	int tg = sl_con_query_get(query, "token", hex, sizeof hex), ntoken = 0;
	if (sl_con_query_get(query, "pipeline", name, sizeof name) < 0 ||
	    sl_con_query_int(query, "page", 0, 0, 1000000, &page) < 0 ||
	    sl_con_query_int(query, "size", 20, 1, 500, &size) < 0 || tg < 0 ||
	    (tg == 1 && hex[0] && (ntoken = sl_con_page_token_decode(hex, token, sizeof token)) <= 0)) {
		jerror(rs, 400, "bad query: pipeline=NAME&size=1..500&token=NEXT_TOKEN (or page=N)");
		return;
	}
	struct sl_pipeline *p = NULL;
	for (size_t i = 0; i < c->npipes; i++)
		if (!name[0] || !strcmp(name, c->pipes[i].p->name)) {
			p = c->pipes[i].p;
			break;
		}
	if (!p) {
		jerror(rs, 404, "no such pipeline");
		return;
	}
	/* output=NAME: one of the pipeline's outputs: (docs/processing.md); main, the pipeline's own sink, by default */
	char oname[256];
	size_t output = 0;
	int og = sl_con_query_get(query, "output", oname, sizeof oname);
	if (og < 0) {
		jerror(rs, 400, "bad query: output=NAME");
		return;
	}
	if (og == 1 && oname[0]) {
		while (output < p->nout && strcmp(p->out[output].name, oname))
			output++;
		if (output == p->nout) {
			jerror(rs, 404, "no such output");
			return;
		}
	}
	/* key=VALUE: the rows of one partition (the table's partition key equal to VALUE, read as its type). */
	char key[1024];
	int kg = sl_con_query_get(query, "key", key, sizeof key);
	if (kg < 0) {
		jerror(rs, 400, "bad query: key=PARTITION_KEY_VALUE (up to 1023 bytes)");
		return;
	}
	struct sl_err err = {0};
	if (sl_con_rows(c, p, output, ntoken ? token : NULL, (size_t)ntoken, page, size, kg == 1 && key[0] ? key : NULL,
			&rs->body, &err)) {
		sl_con_scrub_paths(c, err.msg, sizeof err.msg);
		jerror(rs, err.code == SL_ENOTFOUND ? 404 : err.code == SL_EINVAL ? 400 : 503, err.msg);
	}
}

static void serve_asset(const struct sl_con_req *rq, struct sl_con_resp *rs, const char *path);

void sl_con_dispatch(struct sl_console *c, const struct sl_con_req *rq, struct sl_con_resp *rs)
{
	rs->status = 200;
	rs->ctype = "application/json";
	rs->cache_control = "no-store";
	char path[2048], query[8200]; /* a query up to the default max_uri (8 KiB) */
	pthread_mutex_lock(&c->lock);
	c->requests++;
	pthread_mutex_unlock(&c->lock);
	if (!rq->target || strlen(rq->target) > (size_t)c->cc.max_uri) {
		jerror(rs, 414, "request target too long");
		return;
	}
	size_t plen = strcspn(rq->target, "?");
	if (plen >= sizeof path || (rq->target[plen] && strlen(rq->target + plen + 1) >= sizeof query)) {
		jerror(rs, 414, "request target too long"); /* too long for this console, not malformed */
		return;
	}
	if (sl_con_split_target(rq->target, path, sizeof path, query, sizeof query)) {
		jerror(rs, 400, "malformed request target");
		return;
	}
	/* Credentials before anything else, so nothing (not even a 404) tells a stranger what is there. /health and
	 * /ready answer anyone (load balancers, probes), with nothing but the verdict. */
	bool anon = !sl_http_auth_ok(&c->sec, rq->authorization);
	const char *m0 = rq->method ? rq->method : "";
	bool get0 = !strcmp(m0, "GET") || !strcmp(m0, "HEAD");
	/* The login page and its assets answer anyone: a browser without credentials gets there to give them. */
	static const char *const login_assets[] = {"/login", "/login.js", "/login.css"};
	for (size_t i = 0; anon && get0 && i < sizeof login_assets / sizeof *login_assets; i++)
		if (!strcmp(path, login_assets[i])) {
			serve_asset(rq, rs, !strcmp(path, "/login") ? "/login.html" : path);
			return;
		}
	if (anon && (!strcmp(m0, "GET") || !strcmp(m0, "HEAD")) && (!strcmp(path, "/health") || !strcmp(path, "/ready"))) {
		rs->head = !strcmp(m0, "HEAD");
		struct sl_con_resp full = {0};
		sl_buf_init(&full.body);
		pthread_mutex_lock(&c->lock);
		if (!strcmp(path, "/health"))
			api_health(c, &full);
		else
			api_ready(c, &full);
		pthread_mutex_unlock(&c->lock);
		rs->status = full.status ? full.status : 200;
		sl_buf_free(&full.body);
		if (!strcmp(path, "/health"))
			sl_buf_printf(&rs->body, "{\"status\":\"%s\"}", rs->status == 200 ? "ok" : "failing");
		else
			sl_buf_printf(&rs->body, "{\"ready\":%s}", rs->status == 200 ? "true" : "false");
		return;
	}
	if (anon) {
		pthread_mutex_lock(&c->lock);
		c->unauthorized++;
		pthread_mutex_unlock(&c->lock);
		jerror(rs, 401, "credentials required");
		rs->www_authenticate = true;
		return;
	}
	if (rq->body_too_big) {
		jerror(rs, 413, "request body too large");
		return;
	}
	const char *m = rq->method ? rq->method : "";
	bool get = !strcmp(m, "GET") || !strcmp(m, "HEAD");
	rs->head = !strcmp(m, "HEAD");
	/* The pages trigger DAG runs, pause DAGs and change compatibility levels: a write a browser sends from another
	 * origin (a page elsewhere posting to 127.0.0.1) is refused. Clients without an Origin (curl, SDKs) are not
	 * browsers and pass. */
	if (!get && rq->origin && !sl_con_same_origin(rq->origin, rq->host)) {
		jerror(rs, 403, "cross-origin request refused");
		return;
	}

	/* The login page's check: the credential it sends in the Authorization header becomes an HttpOnly cookie
	 * (hex of that header value), so the browser's later requests carry it. A GET, so that a viewer (read-only
	 * credentials, refused any write) can log in too; a page elsewhere cannot send an Authorization header. */
	if (get && !strcmp(path, "/api/login")) {
		struct sl_buf hx;
		sl_buf_init(&hx);
		for (const unsigned char *p = (const unsigned char *)(rq->authorization ? rq->authorization : ""); *p; p++)
			sl_buf_printf(&hx, "%02x", *p);
		if (!rq->authorization || hx.len + 100 >= sizeof rs->set_cookie) {
			jerror(rs, 400, rq->authorization ? "credential too long for a cookie"
							  : "send the credential in the Authorization header");
		} else {
			snprintf(rs->set_cookie, sizeof rs->set_cookie,
				 SL_CON_AUTH_COOKIE "=%s; Path=/; HttpOnly; SameSite=Strict", sl_buf_cstr(&hx));
			enum sl_http_role r = sl_http_auth_role(&c->sec, rq->authorization);
			sl_buf_printf(&rs->body, "{\"logged_in\":true,\"role\":\"%s\"}",
				      r == SL_HTTP_ROLE_READ ? "viewer" : "operator");
		}
		sl_buf_free(&hx);
		return;
	}
	if (get && !strcmp(path, "/api/logout")) {
		snprintf(rs->set_cookie, sizeof rs->set_cookie,
			 SL_CON_AUTH_COOKIE "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
		sl_buf_puts(&rs->body, "{\"logged_in\":false}");
		return;
	}

	/* The operator's actions and the dead-letter view (actions.c). */
	if (sl_con_actions(c, rq, path, query, rs))
		return;

	/* Plugged-in roles first (the latest added wins). They get the path with "%2F", "%3F", "%23" and "%25" still
	 * encoded: decoded, a subject "a/b" would become two segments and change the registry's route. */
	char rpath[sizeof path * 3];
	if (sl_con_route_path(rq->target, rpath, sizeof rpath) < 0) {
		jerror(rs, 414, "request target too long");
		return;
	}
	for (size_t i = c->nroutes; i-- > 0;) {
		if (has_prefix(rpath, c->routes[i].prefix)) {
			const char *ct = "application/json";
			int st = 200;
			int rc = c->routes[i].handler(c->routes[i].ctx, m, rpath, query, rq->body, rq->len, &rs->body, &st,
						      &ct);
			if (rc) {
				jerror(rs, 500, sl_strerror(rc));
				return;
			}
			rs->status = st;
			rs->ctype = ct;
			/* A write through the console (a DAG trigger, a schema change) is an operator's action. */
			if (!get)
				sl_con_audit(c, rq->authorization, m, rpath, NULL, st);
			return;
		}
	}
	if (!get) {
		jerror(rs, 405, "method not allowed");
		return;
	}
	struct sl_buf *b = &rs->body;
	if (!strcmp(path, "/metrics")) {
		rs->ctype = "text/plain; version=0.0.4; charset=utf-8";
		sl_con_metrics_text(c, b);
		return;
	}
	if (!strncmp(path, "/api/", 5) || !strcmp(path, "/health") || !strcmp(path, "/ready")) {
		if (!strcmp(path, "/api/kafka/tail")) {
			sl_con_api_tail(c, query, rs);
			return;
		}
		if (!strcmp(path, "/api/kafka/messages")) {
			api_messages(c, query, rs);
			return;
		}
		char fromq[32];
		if (!strcmp(path, "/api/history") && sl_con_query_get(query, "from", fromq, sizeof fromq) == 1) {
			api_history_range(c, query, rs);
			return;
		}
		if (!strcmp(path, "/api/data/rows")) {
			api_rows(c, query, rs);
			return;
		}
		pthread_mutex_lock(&c->lock);
		if (!strcmp(path, "/health"))
			api_health(c, rs);
		else if (!strcmp(path, "/ready"))
			api_ready(c, rs);
		else if (!strcmp(path, "/api/overview"))
			api_overview(c, b);
		else if (!strcmp(path, "/api/history"))
			api_history(c, query, rs);
		else if (!strcmp(path, "/api/kafka"))
			api_kafka(c, b);
		else if (!strcmp(path, "/api/data"))
			api_data(c, b);
		else if (!strcmp(path, "/api/alerts"))
			sl_con_alerts_json(c, b);
		else if (has_prefix(path, "/api/schemas") || has_prefix(path, "/api/console/schemas") ||
			 has_prefix(path, "/api/dags"))
			jerror(rs, 503, !has_prefix(path, "/api/dags")
						? "not running: the schema registry is not part of this process "
						  "(console.registry.url names one elsewhere)"
						: "not running: the scheduler is not part of this process "
						  "(console.scheduler.url names one elsewhere)");
		else
			jerror(rs, 404, "no such API");
		pthread_mutex_unlock(&c->lock);
		if (!sl_buf_ok(b))
			jerror(rs, 500, "out of memory");
		return;
	}
	serve_asset(rq, rs, !strcmp(path, "/login") ? "/login.html" : path);
}

/* An embedded asset with its ETag (304 when the client has it) and gzip form; a path that is none is a 404, as a
 * page for a browser (it asked for text/html), else as JSON. */
static void serve_asset(const struct sl_con_req *rq, struct sl_con_resp *rs, const char *path)
{
	const char *etag;
	const unsigned char *gz;
	size_t gzlen;
	const struct sl_con_asset *a = sl_con_asset_find(path, &etag, &gz, &gzlen);
	if (!a) {
		if (rq->accept && strstr(rq->accept, "text/html")) {
			rs->status = 404;
			rs->ctype = "text/html; charset=utf-8";
			sl_buf_reset(&rs->body);
			sl_buf_puts(&rs->body, "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
					       "<title>Not found · sluice console</title><link rel=\"stylesheet\" href=\"/style.css\">"
					       "</head><body><main><h1>No such page</h1><div class=\"notice\" id=\"not-found\">"
					       "There is no page <code>");
			for (const char *p = path; *p; p++) {
				if (*p == '<')
					sl_buf_puts(&rs->body, "&lt;");
				else if (*p == '>')
					sl_buf_puts(&rs->body, "&gt;");
				else if (*p == '&')
					sl_buf_puts(&rs->body, "&amp;");
				else if (*p == '"')
					sl_buf_puts(&rs->body, "&quot;");
				else
					sl_buf_putc(&rs->body, *p);
			}
			sl_buf_puts(&rs->body, "</code> here. <a href=\"/#/overview\">Go to the console.</a></div></main>"
					       "</body></html>\n");
			return;
		}
		jerror(rs, 404, "not found");
		return;
	}
	snprintf(rs->etag, sizeof rs->etag, "%s", etag);
	rs->ctype = sl_con_mime(a->path);
	rs->cache_control = "no-cache"; /* revalidate with the ETag: cheap, and a new build shows at once */
	if (sl_con_etag_matches(rq->if_none_match, etag)) {
		rs->status = 304;
		return;
	}
	rs->static_data = a->data;
	rs->static_len = a->len;
	if (gz && sl_con_accepts_gzip(rq->accept_encoding)) {
		rs->static_gz = gz;
		rs->static_gz_len = gzlen;
	}
}
