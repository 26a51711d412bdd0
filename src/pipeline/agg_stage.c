/* The aggregate stage on Kafka (agg_stage.h): one thread per aggregate output, consuming the output's repartition
 * topic. Each assigned partition has its own state (struct sl_aggregate over the source topic's partitions: its
 * watermark follows the slowest source partition, from the records and the first stage's progress markers), restored from the same partition of the changelog topic when it is assigned, dropped
 * when it is revoked (everything it holds was committed with the batch that made it). Per batch: the records go
 * into their partition's state; the rows that changed (or closed) are written to the sink and acknowledged; then
 * one Kafka transaction carries the changed state entries (tombstones for windows that closed) and the repartition
 * offsets. A crash before the commit replays the batch onto the state restored from the last commit, which
 * recomputes the same whole values; a crash after it reads on from the committed offsets. A transaction that fails
 * (a rebalance fenced the generation) is aborted and the stage rejoins from the committed state. */
#include "pipeline/agg_stage.h"

#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec/avro.h"
#include "codec/json.h"
#include "codec/pbwire.h"
#include "codec/record_json.h"
#include "core/arena.h"
#include "core/log.h"
#include "pipeline/aggregate.h"
#include "pipeline/changelog.h"
#include "pipeline/runtime.h"
#include "registry/registry.h"

#define COMP "aggregate"
#define MAX_BATCH 500

struct part_state {
	int32_t partition;
	struct sl_aggregate *g;
	int64_t next;  /* offset after the last record of this batch; -1 when the batch had none */
	bool touched;
	/* Per source partition, the offset after the last source record this state counted. The first stage produces
	 * each source partition's records in offset order (one owner at a time, each starting where the last one
	 * committed), so a record at or below it is a replay of the source (a reset of the group): counting it again
	 * would count it twice. Stored in the changelog beside the state (key 0x02 + partition). */
	int64_t *src_next;
	int nsrc;
	bool src_dirty;
};

#define SRC_TAG 2

struct sl_agg_stage {
	struct sl_conf *c;
	struct sl_pipeline *p;
	const struct sl_output *out;
	struct sl_agg_stage_names n;
	pthread_t th;
	atomic_int stop, upstream_done, ended;
	int rc;
	struct sl_err err;

	struct sl_topic_store *ts;
	struct sl_consumer *cons;
	struct sl_producer *txp, *dlq;
	struct sl_sink *sink;
	struct part_state *parts; /* by partition number; g NULL when not assigned */
	int nparts;
	int nsrc; /* the source topic's partitions: each state's watermark follows their progress */
	int assigned; /* partitions the group gives this stage now */
	int assign_events;
	int restore_rc;
	struct sl_err restore_err;
	struct sl_expr_env env;
	struct sl_arena arena;
	struct sl_json_parser *jp;
	struct sl_registry_client *reg;
	struct sl_avro_cache *avro;
	struct sl_pbwire_cache *pb;
	int64_t dlq_outstanding, dlq_failed;
	bool sink_done;
	int sink_err;
	char sink_msg[SL_ERR_MSG_MAX];
	struct sl_metric *watermark, *open, *late;
};

static uint64_t fnv(const char *s, uint64_t h)
{
	for (; s && *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

/* This processor: its data_dir (resolved) and host. Two processors sharing one data_dir on one host would share
 * transactional ids and fence each other, which is what the local state of the checkpoint mode needs anyway. */
static uint64_t instance(const struct sl_conf *c)
{
	char host[256] = "", dir[4096] = "";
	gethostname(host, sizeof host - 1);
	if (!c->data_dir || !realpath(c->data_dir, dir))
		snprintf(dir, sizeof dir, "%s", c->data_dir ? c->data_dir : "");
	return fnv(dir, fnv(host, 14695981039346656037ULL));
}

void sl_agg_stage_names(const struct sl_conf *c, const struct sl_pipeline *p, size_t oi, struct sl_agg_stage_names *n)
{
	const char *o = p->out[oi].name;
	snprintf(n->repartition, sizeof n->repartition, "%s.%s.%s.repartition", p->topic, p->name, o);
	snprintf(n->changelog, sizeof n->changelog, "%s.%s.%s.changelog", p->topic, p->name, o);
	snprintf(n->group, sizeof n->group, "%s.%s", p->group, o);
	snprintf(n->txn_id, sizeof n->txn_id, "sluice-%s.%s-%016" PRIx64, p->group, o, instance(c));
}

void sl_agg_stage_source_txn_id(const struct sl_conf *c, const struct sl_pipeline *p, char *out, size_t outsz)
{
	snprintf(out, outsz, "sluice-%s-%016" PRIx64, p->group, instance(c));
}

size_t sl_agg_stage_progress_format(char *buf, size_t bufsz, int32_t partition, int64_t newest_ms, bool idle)
{
	int n = newest_ms == INT64_MIN ? snprintf(buf, bufsz, "%" PRId32 " - %s", partition, idle ? "idle" : "active")
				       : snprintf(buf, bufsz, "%" PRId32 " %" PRId64 " %s", partition, newest_ms,
						  idle ? "idle" : "active");
	return n < 0 ? 0 : (size_t)n < bufsz ? (size_t)n : bufsz - 1;
}

int sl_agg_stage_progress_parse(const char *s, int32_t *partition, int64_t *newest_ms, bool *idle)
{
	char *end;
	long p = strtol(s, &end, 10);
	if (end == s || *end != ' ' || p < 0 || p > 1 << 20)
		return SL_EINVAL;
	s = end + 1;
	if (*s == '-' && s[1] == ' ') {
		*newest_ms = INT64_MIN;
		s += 2;
	} else {
		long long t = strtoll(s, &end, 10);
		if (end == s || *end != ' ')
			return SL_EINVAL;
		*newest_ms = (int64_t)t;
		s = end + 1;
	}
	if (!strcmp(s, "idle"))
		*idle = true;
	else if (!strcmp(s, "active"))
		*idle = false;
	else
		return SL_EINVAL;
	*partition = (int32_t)p;
	return 0;
}

static int fetch_schema(void *ctx, int id, char **schema, char **type, struct sl_err *err)
{
	return sl_registry_client_fetch(ctx, id, schema, type, err);
}

static int fetch_schema_deps(void *ctx, int id, char **schema, char **type, struct sl_pbwire_dep **deps, size_t *ndeps,
			     struct sl_err *err)
{
	return sl_registry_client_fetch_deps(ctx, id, schema, type, deps, ndeps, err);
}

static void on_dlq_delivery(void *ctx, void *opaque, int err, const char *errmsg, int32_t partition, int64_t offset)
{
	struct sl_agg_stage *s = ctx;
	(void)opaque, (void)partition, (void)offset;
	s->dlq_outstanding--;
	if (err) {
		s->dlq_failed++;
		sl_warn(COMP, "pipeline %s: output %s: dead-letter write failed: %s", s->p->name, s->out->name,
			errmsg ? errmsg : "");
	}
}

/* The source coordinates the first stage put in the headers, so a dead letter names the original record. */
static const char *header(const struct sl_msg *m, const char *k, char *buf, size_t bufsz)
{
	for (size_t i = 0; i < m->n_headers; i++)
		if (!strcmp(m->headers[i].key, k)) {
			snprintf(buf, bufsz, "%.*s", (int)m->headers[i].value_len, (const char *)m->headers[i].value);
			return buf;
		}
	return NULL;
}

static int to_dlq(struct sl_agg_stage *s, const struct sl_msg *m, const char *stage, const char *reason,
		  struct sl_err *err)
{
	char tb[256], pbuf[32], obuf[32], pb[16], ob[24];
	const char *t = header(m, "sluice.source.topic", tb, sizeof tb);
	const char *ps = header(m, "sluice.source.partition", pbuf, sizeof pbuf);
	const char *os = header(m, "sluice.source.offset", obuf, sizeof obuf);
	struct sl_header h[6];
	sl_pipeline_dlq_headers(h, stage, reason, s->p->name, t ? t : m->topic, pb, ps ? (int32_t)atoi(ps) : m->partition,
				ob, os ? strtoll(os, NULL, 10) : m->offset);
	struct sl_msg d = {.topic = s->p->dlq_topic, .partition = -1, .key = NULL, .value = m->value,
			   .value_len = m->value_len, .headers = h, .n_headers = 6};
	int rc;
	if (!s->dlq && (rc = s->ts->ops->producer(s->ts, on_dlq_delivery, s, &s->dlq, err)))
		return rc;
	while ((rc = s->dlq->ops->produce(s->dlq, &d, NULL, 1000, err)) == SL_EFULL)
		s->dlq->ops->poll(s->dlq, 100);
	if (rc == 0)
		s->dlq_outstanding++;
	return rc;
}

static void on_done(void *ctx, struct sl_sink_batch *b, int err, const char *errmsg)
{
	struct sl_agg_stage *s = ctx;
	(void)b;
	s->sink_done = true;
	s->sink_err = err;
	snprintf(s->sink_msg, sizeof s->sink_msg, "%s", errmsg ? errmsg : "");
}

static void on_reject(void *ctx, struct sl_sink_batch *b, size_t index, const char *reason)
{
	struct sl_agg_stage *s = ctx;
	(void)b, (void)index;
	sl_error(COMP, "pipeline %s: output %s (%s.%s) rejected an aggregate row: %s", s->p->name, s->out->name,
		 s->out->conf->keyspace, s->out->conf->table, reason);
}

static int restore_add(void *ctx, const void *k, size_t klen, const void *v, size_t vlen)
{
	return sl_changelog_add(ctx, k, klen, v, vlen);
}

static int src_grow(struct part_state *ps, int32_t sp)
{
	if (sp < ps->nsrc)
		return 0;
	int n = sp + 1;
	int64_t *a = realloc(ps->src_next, (size_t)n * sizeof *a);
	if (!a)
		return SL_ENOMEM;
	for (int i = ps->nsrc; i < n; i++)
		a[i] = 0;
	ps->src_next = a;
	ps->nsrc = n;
	return 0;
}

/* A changelog entry into a partition's state: the source offsets (SRC_TAG), or the aggregate's own. */
static int restore_entry(void *ctx, const void *k, size_t klen, const void *v, size_t vlen)
{
	struct part_state *ps = ctx;
	const unsigned char *kb = k;
	if (klen >= 1 && kb[0] == SRC_TAG) {
		int32_t sp;
		if (klen != 5 || vlen != 8)
			return SL_EINVAL;
		memcpy(&sp, kb + 1, 4);
		if (sp < 0 || sp > 1 << 20 || src_grow(ps, sp))
			return SL_EINVAL;
		memcpy(&ps->src_next[sp], v, 8);
		return 0;
	}
	return sl_aggregate_restore(ps->g, k, klen, v, vlen);
}

static void part_drop(struct part_state *ps)
{
	sl_aggregate_free(ps->g);
	ps->g = NULL;
	free(ps->src_next);
	ps->src_next = NULL;
	ps->nsrc = 0;
	ps->src_dirty = false;
}

/* A partition given to this processor: its state from the changelog, before any of its records is polled. */
static void on_assign(void *ctx, const char *topic, int32_t partition)
{
	struct sl_agg_stage *s = ctx;
	(void)topic;
	if (s->restore_rc || partition < 0 || partition >= s->nparts)
		return;
	struct part_state *ps = &s->parts[partition];
	part_drop(ps);
	struct sl_changelog cl = {0};
	int rc = sl_aggregate_new(s->out->agg, &s->out->schema, s->nsrc, &ps->g, &s->restore_err);
	if (!rc && sl_aggregate_track_sources(ps->g))
		rc = sl_err_set(&s->restore_err, SL_ENOMEM, "out of memory");
	if (!rc)
		rc = s->ts->ops->read_partition(s->ts, s->n.changelog, partition, 60000, restore_add, &cl, &s->restore_err);
	if (!rc && (rc = sl_changelog_apply(&cl, restore_entry, ps)))
		sl_err_set(&s->restore_err, rc, "%s [%" PRId32 "]: a state entry not understood", s->n.changelog,
			   partition);
	size_t entries = cl.n;
	sl_changelog_free(&cl);
	if (rc) {
		s->restore_rc = rc;
		sl_err_prefix(&s->restore_err, "pipeline %s: output %s: restore: ", s->p->name, s->out->name);
		return;
	}
	s->assigned++;
	s->assign_events++;
	struct sl_aggregate_stats st;
	sl_aggregate_stats(ps->g, &st);
	sl_info(COMP, "pipeline %s: output %s: partition %" PRId32 " assigned; state restored from %zu changelog "
		"entries (%" PRId64 " open, %" PRIu64 " records counted)", s->p->name, s->out->name, partition, entries,
		st.open_windows, st.counted);
}

/* Everything the state of a revoked partition holds was committed with its batch: drop it. */
static void on_revoke(void *ctx, const char *topic, int32_t partition)
{
	struct sl_agg_stage *s = ctx;
	(void)topic;
	if (partition < 0 || partition >= s->nparts)
		return;
	if (s->parts[partition].g)
		s->assigned--;
	part_drop(&s->parts[partition]);
	sl_info(COMP, "pipeline %s: output %s: partition %" PRId32 " revoked", s->p->name, s->out->name, partition);
}

static void gauges(struct sl_agg_stage *s)
{
	int64_t wm = INT64_MIN, open = 0, late = 0;
	for (int i = 0; i < s->nparts; i++) {
		if (!s->parts[i].g)
			continue;
		struct sl_aggregate_stats st;
		sl_aggregate_stats(s->parts[i].g, &st);
		if (st.watermark_ms > wm)
			wm = st.watermark_ms;
		open += st.open_windows;
		late += (int64_t)st.late;
	}
	/* The newest of the partitions' watermarks, the windows and late records of all the partitions this
	 * processor holds. */
	if (wm != INT64_MIN)
		sl_gauge_set(s->watermark, wm / 1000);
	sl_gauge_set(s->open, open);
	sl_gauge_set(s->late, late);
}

/* Decodes a repartitioned record (the source's value unchanged) and computes the pipeline's columns. 1: a record,
 * 0: skip it (it no longer decodes or passes: dead-lettered), negative: a failure that stops the stage. */
static int decode(struct sl_agg_stage *s, const struct sl_msg *m, struct sl_record *r, struct sl_err *err)
{
	const struct sl_pipeline *p = s->p;
	struct sl_err derr = {0};
	const char *stage = "decode";
	int drc;
	if (!m->value)
		drc = sl_err_set(&derr, SL_EINVAL, "empty message (no value)");
	else if (s->avro || s->pb) {
		drc = s->avro ? sl_avro_cache_decode(s->avro, m->value, m->value_len, r, &s->arena, &derr)
			      : sl_pbwire_cache_decode(s->pb, m->value, m->value_len, r, &s->arena, &derr);
		if (drc && drc != SL_EINVAL && drc != SL_ENOTFOUND && drc != SL_ETYPE && drc != SL_ETOOBIG)
			return sl_err_set(err, drc, "%s[%" PRId32 "]@%" PRId64 ": %s", m->topic, m->partition, m->offset,
					  derr.msg);
	} else
		drc = sl_record_decode_json(r, sl_pipeline_schema(p), s->jp, m->value, m->value_len, &s->arena, &derr);
	if (drc == 0)
		drc = sl_record_check(r, &derr);
	size_t base = p->full.n - p->ncomputed;
	for (size_t i = 0; drc == 0 && i < p->ncomputed; i++)
		if ((drc = sl_expr_eval(p->computed[i], r, &s->env, &s->arena, &r->v[base + i], &derr))) {
			stage = "compute";
			sl_err_prefix(&derr, "compute.%s: ", p->full.fields[base + i].name);
		}
	if (drc == 0)
		return 1;
	char why[SL_ERR_MSG_MAX];
	snprintf(why, sizeof why, "output %s: %s", s->out->name, derr.msg);
	int rc = to_dlq(s, m, stage, why, err);
	return rc ? rc : 0;
}

/* Writes rows to the sink and waits for it; a failure that may pass is retried with backoff while not stopped. */
static int write_rows(struct sl_agg_stage *s, struct sl_record *rows, size_t nrows, struct sl_err *err)
{
	if (nrows == 0)
		return 0;
	struct sl_sink_batch b = {.recs = rows, .n = nrows, .group = s->out->offsets_group};
	for (int64_t backoff_ms = 100;;) {
		struct sl_err werr = {0};
		s->sink_done = false;
		s->sink_err = 0;
		if (s->sink->ops->write(s->sink, &b, &werr)) {
			s->sink_done = true;
			s->sink_err = werr.code ? werr.code : SL_EIO;
			snprintf(s->sink_msg, sizeof s->sink_msg, "%s", werr.msg);
		}
		while (!s->sink_done)
			s->sink->ops->poll(s->sink, 100);
		if (!s->sink_err)
			return 0;
		if (atomic_load(&s->stop))
			return sl_err_set(err, s->sink_err, "pipeline %s: output %s: %s", s->p->name, s->out->name,
					  s->sink_msg);
		sl_warn(COMP, "pipeline %s: output %s: sink write failed, retrying in %" PRId64 " ms: %s", s->p->name,
			s->out->name, backoff_ms, s->sink_msg);
		for (int64_t w = 0; w < backoff_ms && !atomic_load(&s->stop); w += 50)
			usleep(50000);
		backoff_ms = backoff_ms * 2 > 30000 ? 30000 : backoff_ms * 2;
	}
}

/* Ends a batch: rows to the sink, then state entries and offsets in one transaction. now_ms: the clock, for an
 * idle flush of every partition (windows the newest record or the clock closed); INT64_MIN otherwise. SL_EAGAIN:
 * the transaction was aborted; the caller rejoins from the committed state. */
static int end_batch(struct sl_agg_stage *s, int64_t now_ms, struct sl_err *err)
{
	struct sl_record *all = NULL;
	size_t nall = 0, cap = 0;
	struct sl_state_put **puts = calloc((size_t)s->nparts, sizeof *puts);
	size_t *nputs = calloc((size_t)s->nparts, sizeof *nputs);
	int rc = puts && nputs ? 0 : sl_err_set(err, SL_ENOMEM, "out of memory");
	for (int i = 0; !rc && i < s->nparts; i++) {
		struct part_state *ps = &s->parts[i];
		if (!ps->g || (!ps->touched && now_ms == INT64_MIN))
			continue;
		struct sl_record *rows;
		size_t nrows;
		if ((rc = sl_aggregate_flush(ps->g, now_ms, &s->arena, &rows, &nrows, &puts[i], &nputs[i], err)))
			break;
		if (nall + nrows > cap) {
			size_t nc = (nall + nrows) * 2;
			struct sl_record *na = realloc(all, nc * sizeof *na);
			if (!na) {
				rc = sl_err_set(err, SL_ENOMEM, "out of memory");
				break;
			}
			all = na;
			cap = nc;
		}
		if (nrows)
			memcpy(all + nall, rows, nrows * sizeof *rows);
		nall += nrows;
	}
	if (!rc)
		rc = write_rows(s, all, nall, err);
	free(all);
	/* Dead letters (late records) are in their topic before the offsets that pass them move. */
	if (!rc && s->dlq_outstanding > 0) {
		struct sl_err ferr = {0};
		if (s->dlq->ops->flush(s->dlq, 60000, &ferr))
			rc = sl_err_set(err, SL_EIO, "pipeline %s: dead-letter topic not reachable: %s", s->p->name,
					ferr.msg);
		s->dlq->ops->poll(s->dlq, 0);
	}
	if (!rc && s->dlq_failed)
		rc = sl_err_set(err, SL_EIO, "pipeline %s: %" PRId64 " dead-letter records were not delivered",
				s->p->name, s->dlq_failed);
	bool any = false;
	for (int i = 0; !rc && i < s->nparts; i++)
		any = any || nputs[i] || s->parts[i].next >= 0 || s->parts[i].src_dirty;
	if (!rc && any) {
		struct sl_producer *t = s->txp;
		struct sl_topic_part *offs = calloc((size_t)s->nparts, sizeof *offs);
		int noffs = 0;
		rc = offs ? t->ops->begin(t, err) : sl_err_set(err, SL_ENOMEM, "out of memory");
		for (int i = 0; !rc && i < s->nparts; i++) {
			for (size_t j = 0; !rc && j < nputs[i]; j++) {
				const struct sl_state_put *sp = &puts[i][j];
				struct sl_msg m = {.topic = s->n.changelog, .partition = i, .key = sp->k, .key_len = sp->klen,
						   .value = sp->v, .value_len = sp->v ? sp->vlen : 0};
				while ((rc = t->ops->produce(t, &m, NULL, 1000, err)) == SL_EFULL)
					t->ops->poll(t, 100);
			}
			const struct part_state *ps = &s->parts[i];
			for (int32_t sp = 0; !rc && ps->src_dirty && sp < ps->nsrc; sp++) {
				unsigned char k[5] = {SRC_TAG};
				memcpy(k + 1, &sp, 4);
				struct sl_msg m = {.topic = s->n.changelog, .partition = i, .key = k, .key_len = 5,
						   .value = &ps->src_next[sp], .value_len = 8};
				while ((rc = t->ops->produce(t, &m, NULL, 1000, err)) == SL_EFULL)
					t->ops->poll(t, 100);
			}
			if (ps->next >= 0)
				offs[noffs++] = (struct sl_topic_part){.partition = i, .committed = ps->next};
		}
		if (!rc)
			rc = t->ops->send_offsets(t, s->cons, s->n.repartition, offs, noffs, err);
		if (!rc)
			rc = t->ops->commit(t, err);
		free(offs);
		if (rc) {
			struct sl_err aerr = {0};
			sl_warn(COMP, "pipeline %s: output %s: transaction failed, aborting it: %s", s->p->name,
				s->out->name, err->msg);
			if (t->ops->abort(t, &aerr))
				sl_warn(COMP, "pipeline %s: output %s: abort: %s", s->p->name, s->out->name, aerr.msg);
			if (rc != SL_EIO)
				rc = SL_EAGAIN;
		}
	}
	for (int i = 0; i < s->nparts; i++) {
		s->parts[i].touched = false;
		s->parts[i].next = -1;
		s->parts[i].src_dirty = false;
	}
	free(puts);
	free(nputs);
	sl_arena_reset(&s->arena);
	gauges(s);
	return rc;
}

static bool any_due(struct sl_agg_stage *s)
{
	for (int i = 0; i < s->nparts; i++)
		if (s->parts[i].g && sl_aggregate_due(s->parts[i].g, sl_now_ms()))
			return true;
	return false;
}

/* After an aborted transaction (a rebalance moved the group's generation under it), without leaving the group: the
 * states of the partitions held come back from the changelog and the consumer goes back to the committed offsets,
 * so the batch is done again onto the committed state. */
static int recover(struct sl_agg_stage *s, struct sl_err *err)
{
	struct sl_topic_part *gp = calloc((size_t)s->nparts, sizeof *gp);
	if (!gp)
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	for (int i = 0; i < s->nparts; i++)
		gp[i] = (struct sl_topic_part){.partition = i, .committed = -1};
	int rc = s->ts->ops->committed(s->ts, s->n.group, s->n.repartition, gp, s->nparts, err);
	for (int i = 0; !rc && i < s->nparts; i++) {
		if (!s->parts[i].g)
			continue;
		s->assigned--;
		on_assign(s, s->n.repartition, i); /* drops the state and restores it */
		if (s->restore_rc) {
			*err = s->restore_err;
			rc = s->restore_rc;
			break;
		}
		int64_t at = gp[i].committed, low = 0, high = 0;
		if (at < 0 && !(rc = s->ts->ops->watermarks(s->ts, s->n.repartition, i, &low, &high, err)))
			at = low;
		struct sl_err serr = {0};
		if (!rc && s->cons->ops->seek(s->cons, s->n.repartition, i, at, &serr))
			sl_warn(COMP, "pipeline %s: output %s: %s", s->p->name, s->out->name, serr.msg);
	}
	free(gp);
	return rc;
}

static void leave(struct sl_agg_stage *s)
{
	if (s->cons)
		s->cons->ops->destroy(s->cons); /* revoke hooks drop the states */
	s->cons = NULL;
	if (s->txp)
		s->txp->ops->destroy(s->txp);
	s->txp = NULL;
	for (int i = 0; s->parts && i < s->nparts; i++)
		part_drop(&s->parts[i]);
	s->assigned = 0;
}

static int join(struct sl_agg_stage *s, struct sl_err *err)
{
	int rc = s->ts->ops->txn_producer(s->ts, s->n.txn_id, NULL, NULL, &s->txp, err);
	if (!rc)
		rc = s->ts->ops->consumer_ex(s->ts, s->n.group, s->n.repartition, SL_CONSUME_COMMITTED, &s->cons, err);
	if (rc)
		return rc;
	s->cons->on_assign = on_assign;
	s->cons->on_revoke = on_revoke;
	s->cons->ctx = s;
	s->restore_rc = 0;
	return 0;
}

static int run(struct sl_agg_stage *s, struct sl_err *err)
{
	const struct sl_pipeline *p = s->p;
	int rc = sl_pipeline_topics(s->c, &s->ts, err);
	if (rc)
		return rc;
	if (!s->ts->ops->txn_producer || !s->ts->ops->read_partition)
		return sl_err_set(err, SL_ECONFIG, "pipeline %s: output %s: the %s log has no transactions",
				  p->name, s->out->name, s->ts->backend);
	if ((rc = s->ts->ops->partitions(s->ts, s->n.repartition, &s->nparts, err)) ||
	    (rc = s->ts->ops->partitions(s->ts, p->topic, &s->nsrc, err)) ||
	    (rc = s->ts->ops->ensure_compacted(s->ts, s->n.changelog, s->nparts, (int)p->replication, err)) ||
	    (rc = s->ts->ops->ensure_topic(s->ts, p->dlq_topic, 1, (int)p->replication, err)))
		return rc;
	if (!(s->parts = calloc((size_t)s->nparts, sizeof *s->parts)))
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	for (int i = 0; i < s->nparts; i++)
		s->parts[i] = (struct part_state){.partition = i, .next = -1};
	if (!strcmp(p->format, "avro") &&
	    ((rc = sl_registry_client_open(&s->reg, p->registry_url, s->c->registry, s->c->data_dir, err)) ||
	     (rc = sl_avro_cache_new(fetch_schema, s->reg, sl_pipeline_schema(p), &s->avro, err))))
		return rc;
	if (!strcmp(p->format, "protobuf") &&
	    ((rc = sl_registry_client_open(&s->reg, p->registry_url, s->c->registry, s->c->data_dir, err)) ||
	     (rc = sl_pbwire_cache_new(fetch_schema_deps, s->reg, sl_pipeline_schema(p), &s->pb, err))))
		return rc;
	if ((rc = sl_json_parser_new(&s->jp, (size_t)p->max_record_bytes * 2, SL_JSON_DEFAULT_MAX_DEPTH, err)))
		return rc;
	for (int64_t backoff_ms = 1000;;) {
		rc = sl_sink_open(s->c->cassandra, s->c->data_dir, p->name, s->out->conf, &s->sink, err);
		if (rc == 0 && (rc = s->sink->ops->prepare(s->sink, &s->out->schema, err)) != 0) {
			s->sink->ops->destroy(s->sink);
			s->sink = NULL;
		}
		if (rc == 0 || rc == SL_ECONFIG || rc == SL_EINVAL || rc == SL_EAUTH || rc == SL_ENOMEM ||
		    atomic_load(&s->stop))
			break;
		sl_warn(COMP, "pipeline %s: output %s: sink not ready, trying again in %" PRId64 " ms: %s", p->name,
			s->out->name, backoff_ms, err->msg);
		for (int64_t w = 0; w < backoff_ms && !atomic_load(&s->stop); w += 100)
			usleep(100000);
		backoff_ms = backoff_ms * 2 > 30000 ? 30000 : backoff_ms * 2;
	}
	if (rc)
		return rc;
	s->sink->done = on_done;
	s->sink->reject = on_reject;
	s->sink->ctx = s;
	if ((rc = join(s, err)))
		return rc;
	struct sl_msg *in = calloc(MAX_BATCH, sizeof *in);
	if (!in)
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	double idle_since = sl_mono_s();
	int seen_events = 0;
	while (!atomic_load(&s->stop)) {
		int n = s->cons->ops->poll(s->cons, in, MAX_BATCH, 200, err);
		if (s->restore_rc) {
			*err = s->restore_err;
			rc = s->restore_rc;
			break;
		}
		if (n < 0) {
			rc = n;
			break;
		}
		if (s->assign_events != seen_events) { /* a partition just came: its records are still to be fetched */
			seen_events = s->assign_events;
			idle_since = sl_mono_s();
		}
		if (n == 0) {
			if (any_due(s)) {
				rc = end_batch(s, sl_now_ms(), err);
			} else if (atomic_load(&s->upstream_done) && s->assigned == s->nparts &&
				   sl_mono_s() - idle_since > 3.0) {
				/* A drain: this stage holds every partition (a member killed without leaving holds its
				 * own until its session ends), and nothing more has come for 3 s since the first stage
				 * stopped, which committed everything it read. */
				break;
			}
		} else {
			idle_since = sl_mono_s();
			for (int i = 0; i < n && !rc; i++) {
				const struct sl_msg *m = &in[i];
				if (m->partition < 0 || m->partition >= s->nparts || !s->parts[m->partition].g)
					continue; /* not ours (any more): its new owner reads it from the committed offset */
				struct part_state *ps = &s->parts[m->partition];
				ps->touched = true;
				if (m->offset + 1 > ps->next)
					ps->next = m->offset + 1;
				char pbuf[32], obuf[32], mbuf[64];
				if (header(m, SL_PROGRESS_HEADER, mbuf, sizeof mbuf)) {
					/* A progress marker of the first stage: not a record (never counted nor
					 * dead-lettered); what it says is state, stored with the next commit. */
					int32_t msp;
					int64_t newest;
					bool idle;
					if (sl_agg_stage_progress_parse(mbuf, &msp, &newest, &idle))
						sl_warn(COMP, "pipeline %s: output %s: %s [%" PRId32 "]@%" PRId64 ": a "
							"progress marker not understood: %s", p->name, s->out->name, m->topic,
							m->partition, m->offset, mbuf);
					else
						sl_aggregate_source_progress(ps->g, msp, newest, idle);
					continue;
				}
				const char *sps = header(m, "sluice.source.partition", pbuf, sizeof pbuf);
				const char *sos = header(m, "sluice.source.offset", obuf, sizeof obuf);
				if (sps && sos) {
					int32_t sp = (int32_t)atoi(sps);
					int64_t so = strtoll(sos, NULL, 10);
					if (sp < 0 || sp > 1 << 20 || src_grow(ps, sp)) {
						rc = sl_err_set(err, SL_ENOMEM, "out of memory");
						break;
					}
					if (so < ps->src_next[sp])
						continue; /* counted already: the source was read again (a reset) */
					ps->src_next[sp] = so + 1;
					ps->src_dirty = true;
				}
				struct sl_record r;
				int d = decode(s, m, &r, err);
				if (d < 0) {
					rc = d;
					break;
				}
				if (d == 0)
					continue;
				struct sl_err derr = {0};
				bool late = false;
				int t = 1;
				if (s->out->where &&
				    (t = sl_expr_test(s->out->where, &r, &s->env, &s->arena, &derr)) < 0)
					t = -1;
				if (t == 1 && sl_aggregate_add(ps->g, &r, sps ? (int32_t)atoi(sps) : -1, m->timestamp_ms,
							       &s->env, &s->arena, &late,
							       &derr))
					t = -1;
				if (t < 0 || (late && sl_aggregate_conf_late_dlq(s->out->agg))) {
					char why[SL_ERR_MSG_MAX];
					if (t < 0)
						snprintf(why, sizeof why, "output %s: %s", s->out->name, derr.msg);
					else
						snprintf(why, sizeof why, "output %s: late: every window of the record is "
							 "closed (watermark passed it)", s->out->name);
					rc = to_dlq(s, m, t < 0 ? "aggregate" : "late", why, err);
				}
			}
			if (!rc)
				rc = end_batch(s, INT64_MIN, err);
		}
		if (rc == SL_EAGAIN) {
			/* Aborted: the states hold what was not committed. */
			sl_warn(COMP, "pipeline %s: output %s: restoring the state and going back to the committed offsets "
				"of group %s after an aborted transaction", p->name, s->out->name, s->n.group);
			rc = recover(s, err);
		}
		if (rc)
			break;
	}
	free(in);
	return rc;
}

static void *thread_main(void *arg)
{
	struct sl_agg_stage *s = arg;
	s->rc = run(s, &s->err);
	if (s->rc)
		sl_error(COMP, "pipeline %s: output %s: aggregate stage stopped: %s", s->p->name, s->out->name,
			 s->err.msg);
	leave(s);
	atomic_store(&s->ended, 1);
	return NULL;
}

int sl_agg_stage_start(struct sl_conf *c, struct sl_pipeline *p, size_t oi, struct sl_agg_stage **out,
		       struct sl_err *err)
{
	struct sl_agg_stage *s = calloc(1, sizeof *s);
	if (!s)
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	s->c = c;
	s->p = p;
	s->out = &p->out[oi];
	sl_agg_stage_names(c, p, oi, &s->n);
	sl_expr_env_init(&s->env);
	sl_arena_init(&s->arena, 1 << 20);
	struct sl_metrics *r = sl_metrics_global();
	char l[300];
	snprintf(l, sizeof l, "pipeline=\"%s\",output=\"%s\"", p->name, s->out->name);
	s->watermark = sl_gauge(r, "sluice_aggregate_watermark_seconds", l,
				"The aggregate's watermark (event time, seconds since the epoch)");
	s->open = sl_gauge(r, "sluice_aggregate_open_windows", l, "Groups x windows held in the state");
	s->late = sl_gauge(r, "sluice_aggregate_late_records", l,
			   "Records that arrived after every window they belong to had closed");
	if (pthread_create(&s->th, NULL, thread_main, s)) {
		sl_expr_env_free(&s->env);
		sl_arena_free(&s->arena);
		free(s);
		return sl_err_set(err, SL_ENOMEM, "cannot start the aggregate stage's thread");
	}
	*out = s;
	return 0;
}

bool sl_agg_stage_ended(struct sl_agg_stage *s)
{
	return atomic_load(&s->ended) != 0;
}

int sl_agg_stage_stop(struct sl_agg_stage *s, bool drain, volatile sig_atomic_t *stop, struct sl_err *err)
{
	if (!s)
		return 0;
	if (drain) {
		atomic_store(&s->upstream_done, 1);
		while (!atomic_load(&s->ended) && !(stop && *stop))
			usleep(50000);
	}
	atomic_store(&s->stop, 1);
	pthread_join(s->th, NULL);
	int rc = s->rc;
	if (rc && err)
		*err = s->err;
	if (s->dlq) {
		s->dlq->ops->flush(s->dlq, 30000, NULL);
		s->dlq->ops->destroy(s->dlq);
	}
	if (s->sink)
		s->sink->ops->destroy(s->sink);
	if (s->ts)
		sl_topic_store_close(s->ts);
	free(s->parts);
	sl_json_parser_free(s->jp);
	sl_avro_cache_free(s->avro);
	sl_pbwire_cache_free(s->pb);
	sl_registry_client_close(s->reg);
	sl_expr_env_free(&s->env);
	sl_arena_free(&s->arena);
	free(s);
	return rc;
}
