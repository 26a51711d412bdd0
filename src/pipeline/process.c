/* The processor loop: consume a topic in a group, decode and validate each record against the pipeline's schema,
 * write micro-batches to the sink, and commit a partition's offset only after the sink has every batch up to it (and
 * the dead-letter topic has their rejects). Several batches are in flight at once (batch.in_flight), so the next one
 * is read and decoded while the database writes the last; they complete in any order and commits follow the oldest
 * batch not yet done, so a crash replays at most what was in flight. A record that cannot be decoded or that the
 * sink rejects for good goes to the dead-letter topic with the reason; the stream goes on. A sink error that may pass
 * (a database away) is retried with capped exponential backoff, holding the batch and everything after it, so
 * nothing is skipped, and memory stays bounded by in_flight x (max_records, max_bytes): a full ring stops the
 * consumer, which is the backpressure. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec/avro.h"
#include "codec/pbwire.h"
#include "codec/json.h"
#include "codec/record_json.h"
#include "core/arena.h"
#include "core/assert.h"
#include "core/log.h"
#include "pipeline/agg_stage.h"
#include "pipeline/aggregate.h"
#include "pipeline/runtime.h"
#include "registry/registry.h"

struct slot;

/* A record an aggregate output takes, bound for its repartition topic (aggregate_state: changelog): the message it
 * came from and its group key's bytes (in the slot's arena). */
struct rp_rec {
	size_t msg;
	const void *key;
	size_t klen;
	int64_t t; /* its event time (INT64_MIN: none: no window, or the expression failed; the stage dead-letters it) */
};

/* What the first stage has told (and will tell) the second of one source partition's progress, per aggregate output
 * (agg_stage.h, SL_PROGRESS_HEADER). */
struct src_prog {
	int64_t newest;      /* the newest event time of the records produced from it (INT64_MIN: none yet) */
	bool idle;           /* read to its end */
	int64_t sent_newest; /* what the last committed marker said */
	bool sent_idle, sent, pending;
	bool announced; /* an "active" marker is in the open transaction */
};

/* One output's part of a micro-batch: the records it takes (the slot's own arrays when it neither filters nor
 * projects, so a pipeline with one plain output copies nothing), and where its write stands. */
struct obatch {
	struct slot *s;
	size_t oi;
	struct sl_sink_batch b;
	struct sl_record *recs;       /* own arrays, for an output that filters or projects */
	size_t *msg_of_rec;
	const size_t *mor;            /* the one in use: record index -> message index */
	bool done;
	int err;
	char errmsg[SL_ERR_MSG_MAX];
	int64_t backoff_ms;
	double retry_at;
	bool retry_when_up; /* failed while the sink could not reach its store: retried as soon as it can */
	bool pending;       /* an ordered output's part, waiting for the slot before it (submit_ordered) */
	uint64_t rejected;
	struct rp_rec *rp;  /* an aggregate output on Kafka: its records for the repartition topic */
	size_t nrp;
};

/* One micro-batch: its own copies of the messages (a consumer's messages live only until its next poll), the
 * decoded records, and the offsets it covers. It is committable once every output has its part (each output's sink
 * stores the same marks, under its own group, with its rows). */
struct slot {
	struct sl_arena arena;
	struct sl_msg *msgs;
	size_t nmsgs;
	struct sl_record *recs;
	size_t *msg_of_rec;           /* record index -> message index, to dead-letter the original bytes */
	struct sl_offset_mark *marks;
	size_t nmarks, marks_cap;
	struct obatch *ob;            /* one per output */
	size_t nob;
	bool busy;
	double started;
};

struct proc {
	struct sl_pipeline *p;
	struct sl_conf *c;
	struct sl_topic_store *ts;
	/* Opened at the first record to dead-letter: a clean stream has none, and an idle Kafka producer still costs
	 * three threads and their heaps (~1 MiB of the processor's peak RSS, docs/benchmarks.md). */
	struct sl_producer *dlq;
	struct sl_process_stats *st;
	int64_t dlq_outstanding, dlq_failed;
	struct sl_pipeline_metrics m;
	struct sl_avro_cache *avro; /* format avro: readers by schema id */
	struct sl_pbwire_cache *pb; /* format protobuf: readers by schema id */
	struct sl_expr_env env;     /* computed columns and filters */
	uint64_t filtered;
	struct agg_out *aggs;       /* per output: its aggregate state (NULL for a plain output) */
	/* On Kafka, an aggregate output's state is local to this processor (its data_dir): it is right only while
	 * this processor holds every partition of the topic. The output's name, or NULL when there is none. */
	const char *single_owner;
	int assigned; /* partitions of the topic the group gave this processor now (Kafka's rebalance hooks) */
	/* aggregate_state: changelog on Kafka: aggregate outputs repartition their records through a transactional
	 * producer (the source offsets go in the same transaction), and a stage per output aggregates them. */
	bool shared;
	struct sl_producer *txp;
	struct sl_consumer *cons;
	struct sl_agg_stage **stages;  /* per output; NULL for the others */
	struct sl_agg_stage_names *names;    /* per output */
	bool in_txn;                   /* a transaction is open (repartition_add) */
	bool rewind;                   /* one was aborted: finish the ring, then back to the committed offsets */
	double txn_started;
	struct sl_topic_part *offs;    /* its source offsets */
	int noffs, offs_cap;
	/* Watermark propagation: per windowed aggregate output and source partition (prog[o * nsrc + sp]; NULL when
	 * no output is windowed), and the source partitions this processor owns now (the rebalance hooks). */
	struct src_prog *prog;
	bool *owned;
	int nsrc;
	int *nrep; /* per output: its repartition topic's partitions */
};

/* An aggregate output at run time: its state, the offsets its state was committed with (records before them are
 * in the state already and are not added again when the ring replays from a lower output's offset), its gauges. */
struct agg_out {
	struct sl_aggregate *g;
	/* When the output's sink cannot keep state (Cassandra): a local SQLite checkpoint in data_dir holding the
	 * state, the offsets and a copy of the rows, written after the sink has the rows. A crash between the two
	 * replays the batch from the last checkpoint, which recomputes the same whole values: rewriting them is
	 * harmless. (Spark's checkpoint location, in effect; the state is local to this processor.) */
	struct sl_sink *ckpt;
	struct sl_sink_conf ckpt_conf;
	char ckpt_table[300];
	int64_t *from; /* per partition */
	int nparts;
	struct sl_metric *watermark, *open, *late;
};

static void on_dlq_delivery(void *ctx, void *opaque, int err, const char *errmsg, int32_t partition, int64_t offset)
{
	struct proc *pr = ctx;
	(void)opaque, (void)partition, (void)offset;
	pr->dlq_outstanding--;
	if (err) {
		pr->dlq_failed++;
		sl_warn("process", "pipeline %s: dead-letter write failed: %s", pr->p->name, errmsg ? errmsg : "");
	}
}

static int to_dlq(struct proc *pr, const struct sl_msg *m, const char *stage, const char *reason, struct sl_err *err)
{
	struct sl_header h[6];
	char pb[16], ob[24];
	sl_pipeline_dlq_headers(h, stage, reason, pr->p->name, m->topic, pb, m->partition, ob, m->offset);
	struct sl_msg d = {.topic = pr->p->dlq_topic, .partition = -1, .key = m->key, .key_len = m->key_len,
			   .value = m->value, .value_len = m->value_len, .headers = h, .n_headers = 6};
	int rc;
	if (!pr->dlq && (rc = pr->ts->ops->producer(pr->ts, on_dlq_delivery, pr, &pr->dlq, err)))
		return rc;
	while ((rc = pr->dlq->ops->produce(pr->dlq, &d, NULL, 1000, err)) == SL_EFULL)
		pr->dlq->ops->poll(pr->dlq, 100);
	if (rc == 0) {
		pr->dlq_outstanding++;
		pr->st->dlq++;
		sl_live.dlq++;
		sl_counter_add(pr->m.process_dlq, 1);
	}
	return rc;
}

static void on_done(void *ctx, struct sl_sink_batch *b, int err, const char *errmsg)
{
	struct proc *pr = ctx;
	struct obatch *ob = b->opaque;
	struct sl_sink *ck = pr->aggs ? pr->aggs[ob->oi].ckpt : NULL;
	if (ck && err == 0) {
		/* The rows are in the table: now the state and the offsets, in one local transaction. */
		struct sl_err cerr = {0};
		if (ck->ops->write(ck, b, &cerr)) {
			err = cerr.code ? cerr.code : SL_EIO;
			errmsg = cerr.msg;
		}
		ob->done = true;
		ob->err = err;
		snprintf(ob->errmsg, sizeof ob->errmsg, "%s", errmsg ? errmsg : "");
		return;
	}
	ob->done = true;
	ob->err = err;
	snprintf(ob->errmsg, sizeof ob->errmsg, "%s", errmsg ? errmsg : "");
}

static void on_reject(void *ctx, struct sl_sink_batch *b, size_t index, const char *reason)
{
	if (!((struct obatch *)b->opaque)->mor) { /* an aggregate's row: no one record to dead-letter */
		struct proc *pr = ctx;
		const struct sl_output *o = &pr->p->out[((struct obatch *)b->opaque)->oi];
		pr->st->rejected++;
		sl_counter_add(pr->m.rejected, 1);
		sl_error("process", "pipeline %s: output %s (%s.%s) rejected an aggregate row: %s", pr->p->name, o->name,
			 o->conf->keyspace, o->conf->table, reason);
		return;
	}
	struct proc *pr = ctx;
	struct obatch *ob = b->opaque;
	struct slot *s = ob->s;
	struct sl_err err = {0};
	pr->st->rejected++;
	ob->rejected++;
	sl_counter_add(pr->m.rejected, 1);
	/* The reason names the output, so a record one table refused (and the others took) is told apart. */
	const struct sl_output *o = &pr->p->out[ob->oi];
	char why[SL_ERR_MSG_MAX];
	snprintf(why, sizeof why, "output %s (%s.%s): %s", o->name, o->conf->keyspace, o->conf->table, reason);
	if (index < b->n && to_dlq(pr, &s->msgs[ob->mor[index]], "sink", why, &err))
		sl_error("process", "pipeline %s: cannot dead-letter a rejected record: %s", pr->p->name, err.msg);
}

static void progress(const struct sl_pipeline *p, const struct sl_process_stats *st, double t0, bool final)
{
	double dt = sl_mono_s() - t0;
	sl_pipeline_progress(final, "process %s: %" PRIu64 " consumed, %" PRIu64 " written, %" PRIu64 " dlq, lag %" PRId64
		    ", %.0f rec/s", p->name, st->consumed, st->written, st->dlq, st->lag,
		    dt > 0 ? (double)st->written / dt : 0);
}

/* format avro: the decoder's cache asks the registry client for writer schemas it has not seen (once per id). */
static int fetch_schema(void *ctx, int id, char **schema, char **type, struct sl_err *err)
{
	return sl_registry_client_fetch(ctx, id, schema, type, err);
}

/* format protobuf: the same, with the files the writer schema's references name. */
static int fetch_schema_deps(void *ctx, int id, char **schema, char **type, struct sl_pbwire_dep **deps, size_t *ndeps,
			     struct sl_err *err)
{
	return sl_registry_client_fetch_deps(ctx, id, schema, type, deps, ndeps, err);
}

static void slot_free(struct slot *s)
{
	sl_arena_free(&s->arena);
	free(s->msgs);
	free(s->recs);
	free(s->msg_of_rec);
	free(s->marks);
	for (size_t i = 0; s->ob && i < s->nob; i++) {
		free(s->ob[i].recs);
		free(s->ob[i].msg_of_rec);
	}
	free(s->ob);
}

static int slot_init(struct slot *s, size_t max, const struct sl_pipeline *p)
{
	memset(s, 0, sizeof *s);
	sl_arena_init(&s->arena, 1 << 20);
	s->msgs = calloc(max, sizeof *s->msgs);
	s->recs = calloc(max, sizeof *s->recs);
	s->msg_of_rec = calloc(max, sizeof *s->msg_of_rec);
	s->ob = calloc(p->nout, sizeof *s->ob);
	if (!s->msgs || !s->recs || !s->msg_of_rec || !s->ob)
		return SL_ENOMEM;
	s->nob = p->nout;
	for (size_t i = 0; i < p->nout; i++) {
		s->ob[i].s = s;
		s->ob[i].oi = i;
		if (!p->out[i].agg && (p->out[i].where || p->out[i].project)) {
			s->ob[i].recs = calloc(max, sizeof *s->ob[i].recs);
			s->ob[i].msg_of_rec = calloc(max, sizeof *s->ob[i].msg_of_rec);
			if (!s->ob[i].recs || !s->ob[i].msg_of_rec)
				return SL_ENOMEM;
		}
	}
	return 0;
}

static bool slot_done(const struct slot *s)
{
	for (size_t i = 0; i < s->nob; i++)
		if (!s->ob[i].done || s->ob[i].err)
			return false;
	return true;
}

/* Computed columns and the pipeline's filter on one decoded record: 1 keep, 0 filtered out, or the DLQ stage
 * ("compute" or "where") with derr saying why. */
static int process_record(struct proc *pr, struct slot *s, struct sl_record *r, const char **stage,
			  struct sl_err *derr)
{
	const struct sl_pipeline *p = pr->p;
	size_t base = p->full.n - p->ncomputed;
	for (size_t i = 0; i < p->ncomputed; i++)
		if (sl_expr_eval(p->computed[i], r, &pr->env, &s->arena, &r->v[base + i], derr)) {
			*stage = "compute";
			return sl_err_prefix(derr, "compute.%s: ", p->full.fields[base + i].name);
		}
	if (p->where) {
		int t = sl_expr_test(p->where, r, &pr->env, &s->arena, derr);
		if (t < 0) {
			*stage = "where";
			return sl_err_prefix(derr, "where: ");
		}
		return t;
	}
	return 1;
}

/* An aggregate output's part of the slot: its records go into the state, and the batch carries the rows that
 * changed (or closed) and the state entries to store with them. */
static int aggregate_slot(struct proc *pr, struct slot *s, size_t o, size_t nrec, struct obatch *ob, struct sl_err *err)
{
	const struct sl_output *out = &pr->p->out[o];
	struct agg_out *ag = &pr->aggs[o];
	for (size_t i = 0; i < nrec; i++) {
		const struct sl_msg *m = &s->msgs[s->msg_of_rec[i]];
		if (m->partition >= 0 && m->partition < ag->nparts && m->offset < ag->from[m->partition])
			continue; /* already in the state this output committed */
		struct sl_err derr = {0};
		const char *stage = "aggregate";
		int t = 1;
		if (out->where && (t = sl_expr_test(out->where, &s->recs[i], &pr->env, &s->arena, &derr)) < 0)
			stage = "where";
		bool late = false;
		if (t == 1 && sl_aggregate_add(ag->g, &s->recs[i], m->partition, m->timestamp_ms, &pr->env, &s->arena, &late, &derr))
			t = -1;
		if (t < 0 || (late && sl_aggregate_conf_late_dlq(out->agg))) {
			char why[SL_ERR_MSG_MAX];
			if (t < 0)
				snprintf(why, sizeof why, "output %s: %s", out->name, derr.msg);
			else
				snprintf(why, sizeof why, "output %s: late: every window of the record is closed (watermark "
					 "passed it)", out->name);
			int rc = to_dlq(pr, m, t < 0 ? stage : "late", why, err);
			if (rc)
				return rc;
		}
	}
	struct sl_record *rows;
	struct sl_state_put *puts;
	size_t nrows, nputs;
	int rc = sl_aggregate_flush(ag->g, nrec == 0 && s->nmsgs == 0 ? sl_now_ms() : INT64_MIN, &s->arena, &rows, &nrows,
				    &puts, &nputs, err);
	if (rc)
		return rc;
	struct sl_aggregate_stats as;
	sl_aggregate_stats(ag->g, &as);
	sl_gauge_set(ag->watermark, as.watermark_ms == INT64_MIN ? 0 : as.watermark_ms / 1000);
	sl_gauge_set(ag->open, as.open_windows);
	sl_gauge_set(ag->late, (int64_t)as.late);
	/* The offsets stored with the state never go below what the state already holds: a batch replayed under
	 * them (a group reset, another output's lower offset) added nothing, and storing its lower marks would make
	 * the next restart add those records a second time. */
	struct sl_offset_mark *marks = s->nmarks ? sl_arena_alloc(&s->arena, s->nmarks * sizeof *marks) : NULL;
	if (s->nmarks && !marks)
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	for (size_t k = 0; k < s->nmarks; k++) {
		marks[k] = s->marks[k];
		int32_t pt = marks[k].partition;
		if (pt >= 0 && pt < ag->nparts && marks[k].next_offset < ag->from[pt])
			marks[k].next_offset = ag->from[pt];
	}
	ob->mor = NULL;
	ob->b = (struct sl_sink_batch){.recs = rows, .n = nrows, .marks = marks, .nmarks = s->nmarks,
				       .group = out->offsets_group, .opaque = ob, .state = puts, .nstate = nputs,
				       .state_ns = out->offsets_group};
	ob->done = false;
	ob->err = 0;
	ob->rejected = 0;
	ob->backoff_ms = 100;
	ob->retry_at = 0;
	ob->retry_when_up = false;
	return 0;
}

/* An aggregate output on Kafka (aggregate_state: changelog): the records its filter keeps, with their group keys,
 * are produced to its repartition topic when the slot commits (repartition_commit); nothing is written to its
 * table here. A record whose filter or group key fails goes to the dead-letter topic. */
static int repartition_slot(struct proc *pr, struct slot *s, size_t o, size_t nrec, struct obatch *ob,
			    struct sl_err *err)
{
	const struct sl_output *out = &pr->p->out[o];
	ob->rp = nrec ? sl_arena_alloc(&s->arena, nrec * sizeof *ob->rp) : NULL;
	ob->nrp = 0;
	if (nrec && !ob->rp)
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	for (size_t i = 0; i < nrec; i++) {
		struct sl_err derr = {0};
		const char *stage = "where";
		int t = 1;
		if (out->where && (t = sl_expr_test(out->where, &s->recs[i], &pr->env, &s->arena, &derr)) == 0)
			continue;
		struct rp_rec *rr = &ob->rp[ob->nrp];
		if (t == 1) {
			stage = "aggregate";
			if (sl_aggregate_group_key(out->agg, &s->recs[i], &pr->env, &s->arena, &rr->key, &rr->klen, &derr))
				t = -1;
		}
		if (t < 0) {
			char why[SL_ERR_MSG_MAX];
			snprintf(why, sizeof why, "output %s: %s", out->name, derr.msg);
			int rc = to_dlq(pr, &s->msgs[s->msg_of_rec[i]], stage, why, err);
			if (rc)
				return rc;
			continue;
		}
		rr->msg = s->msg_of_rec[i];
		rr->t = INT64_MIN;
		if (pr->prog && sl_aggregate_conf_windowed(out->agg)) {
			struct sl_err terr = {0};
			int64_t et;
			if (sl_aggregate_event_time(out->agg, &s->recs[i], s->msgs[rr->msg].timestamp_ms, &pr->env,
						    &s->arena, &et, &terr) == 0)
				rr->t = et;
		}
		ob->nrp++;
	}
	ob->mor = NULL;
	ob->b = (struct sl_sink_batch){.marks = s->marks, .nmarks = s->nmarks, .group = out->offsets_group,
				       .opaque = ob};
	ob->done = true; /* nothing to write here: the commit produces the records */
	ob->err = 0;
	ob->rejected = 0;
	ob->pending = false;
	return 0;
}

/* Commits slots on Kafka with aggregate_state: changelog: in one transaction, the records of each aggregate output
 * for its repartition topic (keyed by group key, the source's value and timestamp, the source coordinates in the
 * headers) and the source offsets, with the consumer's group metadata. Every slot done at the head of the ring goes
 * into one transaction (repartition_add each, then repartition_commit). A crash before the commit leaves an
 * aborted transaction: the records are read again and produced again, never twice visible. SL_EAGAIN: aborted (a
 * rebalance fenced the generation); the run restarts from the committed offsets. */
#define TXN_ABORTED "repartition transaction aborted: "

static int repartition_abort(struct proc *pr, int rc, struct sl_err *err)
{
	struct sl_err aerr = {0};
	sl_warn("process", "pipeline %s: transaction failed, aborting it: %s", pr->p->name, err->msg);
	if (pr->in_txn && pr->txp->ops->abort(pr->txp, &aerr))
		sl_warn("process", "pipeline %s: abort: %s", pr->p->name, aerr.msg);
	pr->in_txn = false;
	pr->noffs = 0;
	/* The records read since the last commit are read again: what the markers say starts over from what is
	 * produced again (never ahead of it). */
	for (int i = 0; pr->prog && i < (int)pr->p->nout * pr->nsrc; i++)
		pr->prog[i] = (struct src_prog){.newest = INT64_MIN};
	sl_err_prefix(err, "%s", TXN_ABORTED);
	err->code = rc == SL_EIO ? rc : SL_EAGAIN;
	return err->code;
}

static int marker(struct proc *pr, size_t o, int32_t sp, int64_t newest, bool idle, struct sl_err *err)
{
	struct sl_producer *t = pr->txp;
	char v[64];
	size_t vl = sl_agg_stage_progress_format(v, sizeof v, sp, newest, idle);
	struct sl_header h = {SL_PROGRESS_HEADER, v, vl};
	int rc = 0;
	for (int r = 0; !rc && r < pr->nrep[o]; r++) {
		struct sl_msg m = {.topic = pr->names[o].repartition, .partition = r, .headers = &h, .n_headers = 1};
		while ((rc = t->ops->produce(t, &m, NULL, 1000, err)) == SL_EFULL)
			t->ops->poll(t, 100);
	}
	return rc;
}

/* Before a slot's records, in the same transaction: an "active" marker for each owned source partition the second
 * stage may think idle: every one not announced since this processor got it (a backlog may wait in it, behind the
 * idle marker of a previous run or owner, while the records of another partition are read first), and one read to
 * its end before whose records this slot holds. Otherwise the other partitions' records would move the watermark
 * past records still to come. */
static int progress_announce(struct proc *pr, const struct slot *s, struct sl_err *err)
{
	const struct sl_pipeline *p = pr->p;
	int rc = 0;
	for (size_t o = 0; pr->prog && !rc && o < p->nout; o++) {
		if (!p->out[o].agg || !sl_aggregate_conf_windowed(p->out[o].agg))
			continue;
		for (int sp = 0; !rc && sp < pr->nsrc; sp++) {
			struct src_prog *q = &pr->prog[o * (size_t)pr->nsrc + (size_t)sp];
			bool in_slot = false;
			for (size_t i = 0; i < s->nmarks && !in_slot; i++)
				in_slot = s->marks[i].partition == sp;
			if (!pr->owned[sp] || q->announced || (q->sent && !(q->sent_idle && in_slot)))
				continue;
			rc = marker(pr, o, sp, INT64_MIN, false, err);
			q->announced = q->pending = true;
			q->idle = false;
		}
	}
	return rc;
}

static int repartition_add(struct proc *pr, const struct slot *s, struct sl_err *err)
{
	const struct sl_pipeline *p = pr->p;
	struct sl_producer *t = pr->txp;
	int rc = 0;
	if (!pr->in_txn) {
		if ((rc = t->ops->begin(t, err)))
			return repartition_abort(pr, rc, err);
		pr->in_txn = true;
		pr->txn_started = sl_mono_s();
	}
	rc = progress_announce(pr, s, err);
	for (size_t o = 0; !rc && o < p->nout; o++) {
		const struct obatch *ob = &s->ob[o];
		if (!p->out[o].agg)
			continue;
		for (size_t i = 0; !rc && i < ob->nrp; i++) {
			const struct sl_msg *src = &s->msgs[ob->rp[i].msg];
			char pb[16], obuf[24];
			snprintf(pb, sizeof pb, "%" PRId32, src->partition);
			snprintf(obuf, sizeof obuf, "%" PRId64, src->offset);
			struct sl_header h[3] = {{"sluice.source.topic", src->topic, strlen(src->topic)},
						 {"sluice.source.partition", pb, strlen(pb)},
						 {"sluice.source.offset", obuf, strlen(obuf)}};
			struct sl_msg m = {.topic = pr->names[o].repartition, .partition = -1, .key = ob->rp[i].key,
					   .key_len = ob->rp[i].klen, .value = src->value, .value_len = src->value_len,
					   .timestamp_ms = src->timestamp_ms, .headers = h, .n_headers = 3};
			while ((rc = t->ops->produce(t, &m, NULL, 1000, err)) == SL_EFULL)
				t->ops->poll(t, 100);
			struct src_prog *q = pr->prog && src->partition >= 0 && src->partition < pr->nsrc
						     ? &pr->prog[o * (size_t)pr->nsrc + (size_t)src->partition] : NULL;
			if (q && ob->rp[i].t != INT64_MIN && ob->rp[i].t > q->newest)
				q->newest = ob->rp[i].t;
			if (q)
				q->idle = false;
		}
	}
	if (rc)
		return repartition_abort(pr, rc, err);
	/* The offsets: the highest mark of each partition over the slots of this transaction. */
	for (size_t i = 0; i < s->nmarks; i++) {
		int k = 0;
		while (k < pr->noffs && pr->offs[k].partition != s->marks[i].partition)
			k++;
		if (k == pr->noffs) {
			if (pr->noffs == pr->offs_cap) {
				int cap = pr->offs_cap ? pr->offs_cap * 2 : 16;
				struct sl_topic_part *no = realloc(pr->offs, (size_t)cap * sizeof *no);
				if (!no)
					return repartition_abort(pr, sl_err_set(err, SL_ENOMEM, "out of memory"), err);
				pr->offs = no;
				pr->offs_cap = cap;
			}
			pr->offs[pr->noffs++] = (struct sl_topic_part){.partition = s->marks[i].partition, .committed = -1};
		}
		if (s->marks[i].next_offset > pr->offs[k].committed)
			pr->offs[k].committed = s->marks[i].next_offset;
	}
	return 0;
}

/* Into the open transaction: a progress marker for each owned source partition whose progress changed since the
 * last commit, to every partition of the output's repartition topic (after the records it covers: a partition's
 * records and markers reach the second stage in the order produced). */
static int progress_markers(struct proc *pr, struct sl_err *err)
{
	const struct sl_pipeline *p = pr->p;
	int rc = 0;
	for (size_t o = 0; pr->prog && !rc && o < p->nout; o++) {
		if (!p->out[o].agg || !sl_aggregate_conf_windowed(p->out[o].agg))
			continue;
		for (int sp = 0; !rc && sp < pr->nsrc; sp++) {
			struct src_prog *q = &pr->prog[o * (size_t)pr->nsrc + (size_t)sp];
			/* Nothing new to say (a partition with no record read yet and not idle: its announcement, if it
			 * needs one, went first), or what was said last. */
			if (!pr->owned[sp] || (q->newest == INT64_MIN && !q->idle) ||
			    (q->sent && q->sent_newest == q->newest && q->sent_idle == q->idle))
				continue;
			rc = marker(pr, o, sp, q->newest, q->idle, err);
			q->pending = true;
		}
	}
	return rc;
}

/* After a commit: the markers it carried are what the second stage knows. */
static void progress_sent(struct proc *pr)
{
	for (int i = 0; pr->prog && i < (int)pr->p->nout * pr->nsrc; i++) {
		struct src_prog *q = &pr->prog[i];
		if (q->pending)
			*q = (struct src_prog){.newest = q->newest, .idle = q->idle, .sent_newest = q->newest,
					       .sent_idle = q->idle, .sent = true};
	}
}

static int repartition_commit(struct proc *pr, struct sl_err *err)
{
	if (!pr->in_txn)
		return 0;
	struct sl_producer *t = pr->txp;
	int rc = progress_markers(pr, err);
	if (!rc)
		rc = t->ops->send_offsets(t, pr->cons, pr->p->topic, pr->offs, pr->noffs, err);
	if (!rc)
		rc = t->ops->commit(t, err);
	if (rc)
		return repartition_abort(pr, rc, err);
	pr->in_txn = false;
	pr->noffs = 0;
	progress_sent(pr);
	return 0;
}

/* While the input is idle (no transaction open): the owned source partitions read to their end (the group's
 * committed offset at the high watermark; all of them when the group's lag is 0) become idle, and a transaction of
 * markers says so, with their offsets (so a member that lost them in a rebalance cannot: KIP-447 fencing). */
static int progress_idle(struct proc *pr, struct sl_topic_store *log, bool all_caught_up, struct sl_err *err)
{
	const struct sl_pipeline *p = pr->p;
	if (!pr->prog || pr->in_txn)
		return 0;
	bool need = false;
	for (size_t o = 0; o < p->nout; o++)
		for (int sp = 0; p->out[o].agg && sp < pr->nsrc; sp++)
			need = need || (pr->owned[sp] && !pr->prog[o * (size_t)pr->nsrc + (size_t)sp].idle &&
					sl_aggregate_conf_windowed(p->out[o].agg));
	if (!need)
		return 0;
	struct sl_topic_part *gp = calloc((size_t)pr->nsrc, sizeof *gp);
	if (!gp)
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	for (int i = 0; i < pr->nsrc; i++)
		gp[i] = (struct sl_topic_part){.partition = i, .committed = -1};
	int rc = log->ops->committed(log, p->group, p->topic, gp, pr->nsrc, err), noffs = 0;
	for (int sp = 0; !rc && sp < pr->nsrc; sp++) {
		if (!pr->owned[sp])
			continue;
		int64_t low = 0, high = 0, at = gp[sp].committed;
		if (!all_caught_up || at < 0) {
			if ((rc = log->ops->watermarks(log, p->topic, sp, &low, &high, err)))
				break;
			if (at < 0)
				at = low;
			if (at < high)
				continue; /* records still to read */
		}
		for (size_t o = 0; o < p->nout; o++)
			if (p->out[o].agg)
				pr->prog[o * (size_t)pr->nsrc + (size_t)sp].idle = true;
		gp[noffs++] = (struct sl_topic_part){.partition = sp, .committed = at};
	}
	if (rc || noffs == 0) {
		free(gp);
		return rc;
	}
	struct sl_producer *t = pr->txp;
	if ((rc = t->ops->begin(t, err))) {
		free(gp);
		return repartition_abort(pr, rc, err);
	}
	pr->in_txn = true;
	rc = progress_markers(pr, err);
	if (!rc)
		rc = t->ops->send_offsets(t, pr->cons, p->topic, gp, noffs, err);
	if (!rc)
		rc = t->ops->commit(t, err);
	free(gp);
	if (rc)
		return repartition_abort(pr, rc, err);
	pr->in_txn = false;
	progress_sent(pr);
	return 0;
}

/* Each output's part of the slot: all of it, or what its filter keeps, projected onto its columns. */
static int split_outputs(struct proc *pr, struct slot *s, size_t nrec, struct sl_err *err)
{
	const struct sl_pipeline *p = pr->p;
	for (size_t o = 0; o < p->nout; o++) {
		const struct sl_output *out = &p->out[o];
		struct obatch *ob = &s->ob[o];
		struct sl_record *recs = s->recs;
		const size_t *mor = s->msg_of_rec;
		size_t n = nrec;
		if (out->agg && pr->shared) {
			int rc = repartition_slot(pr, s, o, nrec, ob, err);
			if (rc)
				return rc;
			continue;
		}
		if (out->agg) {
			int rc = aggregate_slot(pr, s, o, nrec, ob, err);
			if (rc)
				return rc;
			continue;
		}
		if (out->where || out->project) {
			n = 0;
			for (size_t i = 0; i < nrec; i++) {
				if (out->where) {
					struct sl_err derr = {0};
					int t = sl_expr_test(out->where, &s->recs[i], &pr->env, &s->arena, &derr);
					if (t < 0) {
						sl_err_prefix(&derr, "output %s: where: ", out->name);
						int rc = to_dlq(pr, &s->msgs[s->msg_of_rec[i]], "where", derr.msg, err);
						if (rc)
							return rc;
						continue;
					}
					if (!t)
						continue;
				}
				struct sl_record r = {.schema = &out->schema, .v = s->recs[i].v};
				if (out->project) {
					if (!(r.v = sl_arena_alloc(&s->arena, out->schema.n * sizeof *r.v)))
						return sl_err_set(err, SL_ENOMEM, "out of memory");
					for (size_t c = 0; c < out->schema.n; c++)
						r.v[c] = s->recs[i].v[out->cols[c]];
				}
				ob->recs[n] = r;
				ob->msg_of_rec[n++] = s->msg_of_rec[i];
			}
			recs = ob->recs;
			mor = ob->msg_of_rec;
		}
		ob->mor = mor;
		ob->b = (struct sl_sink_batch){.recs = recs, .n = n, .marks = s->marks, .nmarks = s->nmarks,
					       .group = out->offsets_group, .opaque = ob};
		ob->done = false;
		ob->err = 0;
		ob->rejected = 0;
		ob->backoff_ms = 100;
		ob->retry_at = 0;
		ob->retry_when_up = false;
	}
	return 0;
}

/* Copies what the consumer handed over into the slot, up to batch.max_bytes of payload (at least one message), and
 * decodes it; bad records go to the DLQ at once. *taken says how many of in[] went in. */
static int fill_slot(struct proc *pr, struct slot *s, const struct sl_msg *in, int n, size_t *taken,
		     struct sl_json_parser *jp, const struct sl_schema *schema, struct sl_err *err)
{
	size_t bytes = 0;
	const struct sl_pipeline *p = pr->p;
	sl_arena_reset(&s->arena);
	s->nmsgs = 0;
	s->nmarks = 0;
	size_t nrec = 0;
	*taken = 0;
	for (int i = 0; i < n; i++) {
		const struct sl_msg *src = &in[i];
		if (i > 0 && bytes + src->key_len + src->value_len > (size_t)p->batch.max_bytes)
			break;
		bytes += src->key_len + src->value_len;
		(*taken)++;
		struct sl_msg *m = &s->msgs[s->nmsgs++];
		*m = *src;
		m->key = src->key ? sl_arena_memdup(&s->arena, src->key, src->key_len) : NULL;
		m->value = src->value ? sl_arena_memdup(&s->arena, src->value, src->value_len) : NULL;
		m->headers = NULL;
		m->n_headers = 0;
		if ((src->key && !m->key) || (src->value && !m->value))
			return sl_err_set(err, SL_ENOMEM, "out of memory");
		pr->st->consumed++;
		sl_live.consumed++;
		sl_counter_add(pr->m.consumed, 1);
		size_t k = 0;
		while (k < s->nmarks && !(s->marks[k].partition == m->partition && !strcmp(s->marks[k].topic, m->topic)))
			k++;
		if (k == s->nmarks) {
			if (s->nmarks == s->marks_cap) {
				size_t cap = s->marks_cap ? s->marks_cap * 2 : 16;
				struct sl_offset_mark *nm = realloc(s->marks, cap * sizeof *nm);
				if (!nm)
					return sl_err_set(err, SL_ENOMEM, "out of memory");
				s->marks = nm;
				s->marks_cap = cap;
			}
			s->marks[s->nmarks++] = (struct sl_offset_mark){p->topic, m->partition, m->offset + 1};
		} else if (m->offset + 1 > s->marks[k].next_offset)
			s->marks[k].next_offset = m->offset + 1;
		/* The slot's commit mark covers every record it holds: committing it never skips one of them. */
		SL_ASSERT(m->offset >= 0 && s->marks[k].next_offset > m->offset);
		struct sl_err derr = {0};
		int drc;
		if (!m->value)
			drc = sl_err_set(&derr, SL_EINVAL, "empty message (no value)");
		else if (pr->avro || pr->pb) {
			drc = pr->avro ? sl_avro_cache_decode(pr->avro, m->value, m->value_len, &s->recs[nrec], &s->arena, &derr)
				       : sl_pbwire_cache_decode(pr->pb, m->value, m->value_len, &s->recs[nrec], &s->arena,
								&derr);
			/* A registry that cannot be asked is not the record's fault: stop uncommitted, read it again later. */
			if (drc && drc != SL_EINVAL && drc != SL_ENOTFOUND && drc != SL_ETYPE && drc != SL_ETOOBIG)
				return sl_err_set(err, drc, "%s[%" PRId32 "]@%" PRId64 ": %s", m->topic, m->partition,
						  m->offset, derr.msg);
		} else
			drc = sl_record_decode_json(&s->recs[nrec], schema, jp, m->value, m->value_len, &s->arena, &derr);
		if (drc == 0)
			drc = sl_record_check(&s->recs[nrec], &derr);
		const char *stage = "decode";
		if (drc == 0 && (p->ncomputed || p->where)) {
			drc = process_record(pr, s, &s->recs[nrec], &stage, &derr);
			if (drc == 0) { /* filtered out: nothing to write, the offset still moves */
				pr->filtered++;
				continue;
			}
			drc = drc == 1 ? 0 : drc;
		}
		if (drc != 0) {
			sl_err_prefix(&derr, "%s[%" PRId32 "]@%" PRId64 ": ", m->topic, m->partition, m->offset);
			sl_debug("process", "pipeline %s: %s", p->name, derr.msg);
			int rc = to_dlq(pr, m, stage, derr.msg, err);
			if (rc)
				return rc;
			continue;
		}
		s->msg_of_rec[nrec++] = s->nmsgs - 1;
	}
	int rc = split_outputs(pr, s, nrec, err);
	if (rc)
		return rc;
	s->busy = true;
	s->started = sl_mono_s();
	return 0;
}

static void submit_ob(struct sl_sink *sink, struct obatch *ob)
{
	struct sl_err werr = {0};
	ob->done = false;
	if (sink->ops->write(sink, &ob->b, &werr)) {
		ob->done = true;
		ob->err = werr.code ? werr.code : SL_EIO;
		snprintf(ob->errmsg, sizeof ob->errmsg, "%s", werr.msg);
	}
}

/* An aggregate output with a checkpoint (its sink keeps no state: Cassandra) takes its batches one at a time, in
 * the ring's order: each batch's rows are whole values that include every earlier batch, so a later batch's rows
 * overtaken by an earlier one's would leave stale values in the table (the database orders writes by arrival), and
 * its checkpoint must land after the earlier ones' (the state it stores includes theirs, the offsets only its own
 * partitions'). */
static bool ordered_output(const struct proc *pr, size_t oi)
{
	return pr->aggs && pr->aggs[oi].ckpt;
}

static void submit_slot(struct proc *pr, struct sl_sink **sinks, struct slot *s)
{
	for (size_t i = 0; i < s->nob; i++) {
		if (pr->shared && pr->p->out[i].agg)
			continue; /* done already: its records go out with the commit */
		if (ordered_output(pr, i))
			s->ob[i].pending = true;
		else
			submit_ob(sinks[i], &s->ob[i]);
	}
}

/* Submits each ordered output's oldest pending part once every part before it is written. */
static void submit_ordered(struct proc *pr, struct sl_sink **sinks, struct slot *slots, size_t nslots, size_t head,
			   size_t used)
{
	for (size_t oi = 0; pr->aggs && oi < pr->p->nout; oi++) {
		if (!ordered_output(pr, oi))
			continue;
		for (size_t i = 0; i < used; i++) {
			struct obatch *ob = &slots[(head + i) % nslots].ob[oi];
			if (ob->pending) {
				ob->pending = false;
				submit_ob(sinks[oi], ob);
				break;
			}
			if (!ob->done || ob->err)
				break; /* in flight, or failed and waiting for its retry */
		}
	}
}

/* Pauses or resumes the consumer's partitions (backpressure), keeping *paused and the gauge in step. */
static void set_paused(struct proc *pr, struct sl_consumer *cons, const char *name, bool on, bool *paused)
{
	struct sl_err perr = {0};
	if (cons->ops->pause(cons, on, &perr) == 0) {
		*paused = on;
		sl_gauge_set(pr->m.paused, on ? 1 : 0);
	} else
		sl_warn("process", "pipeline %s: %s", name, perr.msg);
}

static void aggregates_close(struct proc *pr)
{
	for (size_t i = 0; pr->aggs && i < pr->p->nout; i++) {
		sl_aggregate_free(pr->aggs[i].g);
		free(pr->aggs[i].from);
		if (pr->aggs[i].ckpt)
			pr->aggs[i].ckpt->ops->destroy(pr->aggs[i].ckpt);
	}
	free(pr->aggs);
	pr->aggs = NULL;
}

/* State of the aggregate outputs, restored from their sinks, and the offsets it goes with. State committed with
 * the offsets needs a store that holds both: the embedded log with a SQLite sink, for now. */
static int aggregates_open(struct proc *pr, struct sl_topic_store *log, struct sl_sink **sinks, struct sl_err *err)
{
	const struct sl_pipeline *p = pr->p;
	if (!(pr->aggs = calloc(p->nout, sizeof *pr->aggs)))
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	for (size_t oi = 0; oi < p->nout; oi++) {
		const struct sl_output *o = &p->out[oi];
		struct agg_out *ag = &pr->aggs[oi];
		if (!o->agg || pr->shared)
			continue;
		struct sl_sink *store = sinks[oi];
		int rc;
		if (!store->ops->state_load) {
			snprintf(ag->ckpt_table, sizeof ag->ckpt_table, "%s__%s", p->name, o->name);
			ag->ckpt_conf = *o->conf;
			ag->ckpt_conf.type = "sqlite";
			ag->ckpt_conf.keyspace = "sluice_state";
			ag->ckpt_conf.table = ag->ckpt_table;
			ag->ckpt_conf.columns = (struct sl_strmap){0};
			ag->ckpt_conf.ttl_field = ag->ckpt_conf.writetime_field = NULL;
			if ((rc = sl_sink_sqlite_new(pr->c->data_dir, &ag->ckpt_conf, &ag->ckpt, err)) ||
			    (rc = ag->ckpt->ops->prepare(ag->ckpt, &o->schema, err)))
				return sl_err_prefix(err, "output %s: state checkpoint: ", o->name);
			ag->ckpt->done = NULL;
			ag->ckpt->reject = NULL;
			store = ag->ckpt;
		}
		int parts = 0;
		log->ops->partitions(log, p->topic, &parts, NULL);
		if ((rc = sl_aggregate_new(o->agg, &o->schema, parts, &ag->g, err)))
			return rc;
		if ((rc = store->ops->state_load(store, o->offsets_group, sl_aggregate_restore, ag->g, err)))
			return sl_err_prefix(err, "output %s: ", o->name);
		if (!(ag->from = calloc(parts > 0 ? (size_t)parts : 1, sizeof *ag->from)))
			return sl_err_set(err, SL_ENOMEM, "out of memory");
		ag->nparts = parts;
		for (int i = 0; i < parts; i++)
			if (store->ops->stored_offset(store, o->offsets_group, p->topic, i, &ag->from[i]))
				ag->from[i] = 0;
		struct sl_metrics *r = sl_metrics_global();
		char l[300];
		snprintf(l, sizeof l, "pipeline=\"%s\",output=\"%s\"", p->name, o->name);
		ag->watermark = sl_gauge(r, "sluice_aggregate_watermark_seconds", l,
					 "The aggregate's watermark (event time, seconds since the epoch)");
		ag->open = sl_gauge(r, "sluice_aggregate_open_windows", l, "Groups x windows held in the state");
		ag->late = sl_gauge(r, "sluice_aggregate_late_records", l,
				    "Records that arrived after every window they belong to had closed");
		struct sl_aggregate_stats as;
		sl_aggregate_stats(ag->g, &as);
		sl_gauge_set(ag->open, as.open_windows);
		sl_gauge_set(ag->late, (int64_t)as.late);
		if (as.watermark_ms != INT64_MIN)
			sl_gauge_set(ag->watermark, as.watermark_ms / 1000);
	}
	return 0;
}

/* A source partition this processor owns from now on, or no longer: its progress starts over (its markers say only
 * what this owner produced; the second stage keeps the newest it heard). */
static void own(struct proc *pr, int32_t partition, bool owned)
{
	if (!pr->owned || partition < 0 || partition >= pr->nsrc)
		return;
	pr->owned[partition] = owned;
	for (size_t o = 0; o < pr->p->nout; o++)
		pr->prog[o * (size_t)pr->nsrc + (size_t)partition] = (struct src_prog){.newest = INT64_MIN};
}

static void on_assign(void *ctx, const char *topic, int32_t partition)
{
	struct proc *pr = ctx;
	(void)topic;
	pr->assigned++;
	own(pr, partition, true);
}

static void on_revoke(void *ctx, const char *topic, int32_t partition)
{
	struct proc *pr = ctx;
	(void)topic;
	pr->assigned--;
	own(pr, partition, false);
}

/* Several processors for one aggregate on Kafka are refused rather than left to write partial rows: each would
 * count only its partitions' records into its own state and overwrite the others' rows with them. Before this
 * processor joins the group, the group must be empty (a member killed without leaving is waited for: its session
 * ends within session.timeout.ms, 10 s). A processor that joins at the same moment anyway is caught by
 * check_assignment. */
static int single_owner_join(struct proc *pr, struct sl_topic_store *log, const struct sl_run_opts *o,
			     struct sl_err *err)
{
	const struct sl_pipeline *p = pr->p;
	if (log->consumer_owns_all || !log->ops->group_members || pr->shared)
		return 0;
	for (size_t oi = 0; oi < p->nout && !pr->single_owner; oi++)
		if (p->out[oi].agg)
			pr->single_owner = p->out[oi].name;
	if (!pr->single_owner)
		return 0;
	int members = 0, rc = 0;
	for (double t0 = sl_mono_s(); !(o->stop && *o->stop);) {
		if ((rc = log->ops->group_members(log, p->group, &members, err)))
			return sl_err_prefix(err, "pipeline %s: ", p->name);
		if (members == 0) {
			/* Two processors started together (a supervisor restarting both) would both see the group
			 * empty and both join; a random pause and a second look make that rare. */
			usleep((useconds_t)(200000 + (sl_now_ms() * 7919 + getpid()) % 1800000));
			if ((rc = log->ops->group_members(log, p->group, &members, err)))
				return sl_err_prefix(err, "pipeline %s: ", p->name);
			if (members == 0)
				break;
		}
		if (sl_mono_s() - t0 > 15)
			break;
		usleep(500000);
	}
	if (members > 0)
		return sl_err_set(err, SL_ECONFIG,
				  "pipeline %s: output %s aggregates with its state in this processor's data_dir, and "
				  "group %s already has %d member%s: run one processor for this pipeline (several "
				  "processors for an aggregate on Kafka are not supported, docs/processing.md)",
				  p->name, pr->single_owner, p->group, members, members == 1 ? "" : "s");
	return 0;
}

/* Records polled while this processor holds only part of the topic: another processor is in the group (it joined
 * at the same moment, or from a setup that skipped the check above). Stop before they reach the state. */
static int check_assignment(const struct proc *pr, struct sl_err *err)
{
	int parts = pr->aggs && pr->single_owner ? 0 : -1;
	for (size_t oi = 0; parts == 0 && oi < pr->p->nout; oi++)
		if (pr->aggs[oi].g)
			parts = pr->aggs[oi].nparts;
	if (parts <= 0 || pr->assigned >= parts)
		return 0;
	return sl_err_set(err, SL_ECONFIG,
			  "pipeline %s: output %s aggregates with its state in this processor's data_dir, but the group "
			  "%s gave this processor %d of the %d partitions of %s: another processor joined it. Run one "
			  "processor for this pipeline (docs/processing.md)",
			  pr->p->name, pr->single_owner, pr->p->group, pr->assigned, parts, pr->p->topic);
}

/* A state that does not hold what the group committed: the group's records up to its offsets were aggregated
 * elsewhere (another data_dir, a processor on another host) or skipped by a reset forward. Going on would write
 * rows that miss them. */
static int check_state_covers_group(const struct proc *pr, struct sl_topic_store *log, struct sl_err *err)
{
	const struct sl_pipeline *p = pr->p;
	for (size_t oi = 0; pr->single_owner && oi < p->nout; oi++) {
		const struct agg_out *ag = &pr->aggs[oi];
		if (!ag->g || ag->nparts <= 0)
			continue;
		struct sl_topic_part *gp = calloc((size_t)ag->nparts, sizeof *gp);
		if (!gp)
			return sl_err_set(err, SL_ENOMEM, "out of memory");
		for (int i = 0; i < ag->nparts; i++)
			gp[i].partition = i;
		int rc = log->ops->committed(log, p->group, p->topic, gp, ag->nparts, err);
		for (int i = 0; !rc && i < ag->nparts; i++)
			if (gp[i].committed > ag->from[i])
				rc = sl_err_set(err, SL_ECONFIG,
						"pipeline %s: output %s: group %s has committed partition %d of %s up to "
						"offset %" PRId64 ", but the state in this processor's data_dir holds it "
						"only up to %" PRId64 ": those records were aggregated by another processor "
						"(another data_dir) or skipped by a reset. Run the pipeline's processor "
						"where its state is, or reset the group to the earliest offsets and drop "
						"the output's table and state to recompute it (docs/processing.md)",
						p->name, p->out[oi].name, p->group, i, p->topic, gp[i].committed, ag->from[i]);
		free(gp);
		if (rc)
			return rc;
	}
	return 0;
}

/* A caught-up processor (nothing to read, lag 0) with an aggregate whose windows the clock (arrival time) or the
 * newest event of any partition closed: an empty batch emits them. */
static bool aggregates_due(const struct proc *pr, bool caught_up)
{
	if (!caught_up)
		return false;
	for (size_t i = 0; pr->aggs && i < pr->p->nout; i++)
		if (pr->aggs[i].g && sl_aggregate_due(pr->aggs[i].g, sl_now_ms()))
			return true;
	return false;
}

/* aggregate_state: changelog on Kafka: decides whether this run repartitions its aggregate outputs, creates their
 * repartition topics (the source's partition count) and the transactional producer. */
static int shared_open(struct proc *pr, struct sl_topic_store *log, struct sl_err *err)
{
	const struct sl_pipeline *p = pr->p;
	bool any = false;
	for (size_t oi = 0; oi < p->nout; oi++)
		any = any || p->out[oi].agg;
	if (!any || log->consumer_owns_all || !log->ops->txn_producer || strcmp(p->aggregate_state, "changelog"))
		return 0;
	pr->shared = true;
	int parts = 0, rc = log->ops->partitions(log, p->topic, &parts, err);
	if (rc)
		return rc;
	if (!(pr->names = calloc(p->nout, sizeof *pr->names)) || !(pr->stages = calloc(p->nout, sizeof *pr->stages)) ||
	    !(pr->nrep = calloc(p->nout, sizeof *pr->nrep)))
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	for (size_t oi = 0; oi < p->nout; oi++) {
		if (!p->out[oi].agg)
			continue;
		sl_agg_stage_names(pr->c, p, oi, &pr->names[oi]);
		if ((rc = log->ops->ensure_topic(log, pr->names[oi].repartition, parts, (int)p->replication, err)) ||
		    (rc = log->ops->partitions(log, pr->names[oi].repartition, &pr->nrep[oi], err)))
			return sl_err_prefix(err, "output %s: ", p->out[oi].name);
		if (sl_aggregate_conf_windowed(p->out[oi].agg) && !pr->prog && parts > 0) {
			pr->nsrc = parts;
			if (!(pr->prog = calloc(p->nout * (size_t)parts, sizeof *pr->prog)) ||
			    !(pr->owned = calloc((size_t)parts, sizeof *pr->owned)))
				return sl_err_set(err, SL_ENOMEM, "out of memory");
			for (size_t i = 0; i < p->nout * (size_t)parts; i++)
				pr->prog[i].newest = INT64_MIN;
		}
	}
	char id[600];
	sl_agg_stage_source_txn_id(pr->c, p, id, sizeof id);
	return log->ops->txn_producer(log, id, NULL, NULL, &pr->txp, err);
}

static int process_once(struct sl_conf *c, struct sl_pipeline *p, const struct sl_run_opts *o,
			struct sl_process_stats *st, struct sl_err *err);

/* A transaction step's result: an aborted transaction (a rebalance moved the group's generation) starts a rewind
 * instead of ending the run; anything else is returned. */
static int txn_result(struct proc *pr, int rc, struct sl_err *err)
{
	if (rc == SL_EAGAIN && strstr(err->msg, TXN_ABORTED)) {
		sl_warn("process", "pipeline %s: %s; going back to the committed offsets", pr->p->name, err->msg);
		pr->rewind = true;
		return 0;
	}
	return rc;
}

/* After an aborted transaction, once the ring is empty (its batches' per-record rows written, their repartition
 * records dropped): every partition back to the group's committed offset, so the records of the aborted
 * transaction and everything after them are read and produced again, in order. */
static int rewind_source(struct proc *pr, struct sl_topic_store *log, struct sl_consumer *cons, struct sl_err *err)
{
	const struct sl_pipeline *p = pr->p;
	int parts = 0, rc = log->ops->partitions(log, p->topic, &parts, err);
	struct sl_topic_part *gp = rc || parts <= 0 ? NULL : calloc((size_t)parts, sizeof *gp);
	if (!rc && parts > 0 && !gp)
		rc = sl_err_set(err, SL_ENOMEM, "out of memory");
	for (int i = 0; gp && i < parts; i++)
		gp[i] = (struct sl_topic_part){.partition = i, .committed = -1};
	if (!rc && gp)
		rc = log->ops->committed(log, p->group, p->topic, gp, parts, err);
	for (int i = 0; !rc && gp && i < parts; i++) {
		int64_t at = gp[i].committed, low = 0, high = 0;
		if (at < 0 && (rc = log->ops->watermarks(log, p->topic, i, &low, &high, err)))
			break;
		struct sl_err serr = {0};
		if (cons->ops->seek(cons, p->topic, i, at < 0 ? low : at, &serr)) /* not assigned here: nothing to do */
			sl_debug("process", "pipeline %s: %s", p->name, serr.msg);
	}
	free(gp);
	pr->rewind = false;
	return rc;
}

int sl_process_run(struct sl_conf *c, struct sl_pipeline *p, const struct sl_run_opts *o,
		   struct sl_process_stats *st, struct sl_err *err)
{
	/* An aborted transaction (aggregate_state: changelog; a rebalance fenced the group generation) leaves the
	 * consumer past records whose offsets were not committed: run again from the committed offsets. */
	for (int tries = 0;; tries++) {
		int rc = process_once(c, p, o, st, err);
		if (rc != SL_EAGAIN || !strstr(err->msg, TXN_ABORTED) || (o->stop && *o->stop) || tries >= 100)
			return rc;
		sl_warn("process", "pipeline %s: %s; rejoining from the committed offsets", p->name, err->msg);
	}
}

static int process_once(struct sl_conf *c, struct sl_pipeline *p, const struct sl_run_opts *o,
			struct sl_process_stats *st, struct sl_err *err)
{
	memset(st, 0, sizeof *st);
	st->table_rows = -1;
	struct sl_topic_store *log = NULL;
	struct proc pr = {.p = p, .c = c, .st = st};
	sl_pipeline_metrics(p->name, &pr.m);
	struct sl_consumer *cons = NULL;
	struct sl_sink **sinks = calloc(p->nout, sizeof *sinks);
	size_t nout = p->nout;
	struct sl_json_parser *jp = NULL;
	sl_expr_env_init(&pr.env);
	struct sl_registry_client *reg = NULL;
	size_t max = (size_t)p->batch.max_records;
	size_t nslots = (size_t)p->batch.in_flight;
	struct slot *slots = calloc(nslots, sizeof *slots);
	struct sl_msg *in = calloc(max, sizeof *in);
	size_t in_off = 0, in_n = 0;
	size_t head = 0, used = 0; /* the ring: slots[head .. head+used) are in flight, oldest first */
	double t0 = sl_mono_s(), last_progress = t0, last_lag = 0, first_record = 0, last_commit = 0;
	int rc = 0;
	bool be_open = false, paused = false, input_since_lag = false, drained = false;
	double full_since = 0;
	if (!slots || !in || !sinks) {
		rc = sl_err_set(err, SL_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < nslots; i++)
		if (slot_init(&slots[i], max, p)) {
			rc = sl_err_set(err, SL_ENOMEM, "out of memory");
			goto out;
		}
	if ((rc = sl_pipeline_topics(c, &log, err)))
		goto out;
	pr.ts = log;
	be_open = true;
	const struct sl_schema *schema = sl_pipeline_schema(p);
	if (!strcmp(p->format, "avro") &&
	    ((rc = sl_registry_client_open(&reg, p->registry_url, c->registry, c->data_dir, err)) ||
	     (rc = sl_avro_cache_new(fetch_schema, reg, schema, &pr.avro, err))))
		goto out;
	if (!strcmp(p->format, "protobuf") &&
	    ((rc = sl_registry_client_open(&reg, p->registry_url, c->registry, c->data_dir, err)) ||
	     (rc = sl_pbwire_cache_new(fetch_schema_deps, reg, schema, &pr.pb, err))))
		goto out;
	if ((rc = log->ops->ensure_topic(log, p->topic, (int)p->partitions, (int)p->replication, err)) ||
	    (rc = log->ops->ensure_topic(log, p->dlq_topic, 1, (int)p->replication, err)) ||
	    (rc = shared_open(&pr, log, err)) ||
	    (rc = single_owner_join(&pr, log, o, err)) ||
	    (rc = pr.shared ? log->ops->consumer_ex(log, p->group, p->topic, SL_CONSUME_COMMITTED, &cons, err)
			    : log->ops->consumer(log, p->group, p->topic, &cons, err)) ||
	    (rc = sl_json_parser_new(&jp, (size_t)p->max_record_bytes * 2, SL_JSON_DEFAULT_MAX_DEPTH, err)))
		goto out;
	cons->skip_headers = true; /* records are decoded from their value; a dead letter gets headers of its own */
	if (pr.single_owner || pr.prog) {
		cons->on_assign = on_assign;
		cons->on_revoke = on_revoke;
		cons->ctx = &pr;
	}
	/* A database that is not up yet (a restart, a deploy in the wrong order) is waited for, with backoff; a
	 * configuration or authentication error is not going to pass and ends the run. */
	for (size_t oi = 0; oi < nout; oi++) {
		struct sl_sink *sink = NULL;
		for (int64_t backoff_ms = 1000;;) {
			rc = sl_sink_open(c->cassandra, c->data_dir, p->name, p->out[oi].conf, &sink, err);
			if (rc == 0 && (rc = sink->ops->prepare(sink, &p->out[oi].schema, err)) != 0) {
				sink->ops->destroy(sink);
				sink = NULL;
			}
			if (rc == 0 || rc == SL_ECONFIG || rc == SL_EINVAL || rc == SL_EAUTH || rc == SL_ENOMEM ||
			    (o->stop && *o->stop))
				break;
			sl_warn("process", "pipeline %s: output %s: sink not ready, trying again in %" PRId64 " ms: %s",
				p->name, p->out[oi].name, backoff_ms, err->msg);
			for (int64_t waited = 0; waited < backoff_ms && !(o->stop && *o->stop); waited += 100)
				usleep(100000);
			backoff_ms = backoff_ms * 2 > 30000 ? 30000 : backoff_ms * 2;
		}
		if (rc) {
			if (nout > 1)
				sl_err_prefix(err, "output %s: ", p->out[oi].name);
			goto out;
		}
		sink->done = on_done;
		sink->reject = on_reject;
		sink->ctx = &pr;
		sinks[oi] = sink;
	}
	snprintf(st->where, sizeof st->where, "%s", sinks[0]->where);
	pr.cons = cons;
	for (size_t oi = 0; pr.shared && oi < nout; oi++)
		if (p->out[oi].agg && (rc = sl_agg_stage_start(c, p, oi, &pr.stages[oi], err)))
			goto out;
	/* Sinks that keep offsets with their rows are the truth about what is written: start at the lowest of them
	 * (an output that has none yet, added to a running pipeline, starts from the beginning; its upserts make the
	 * others' second look harmless). The group's committed offset wins when it is lower: a reset of the group
	 * (the console's, kafka-consumer-groups) is an operator's instruction to read again, and a crash between a
	 * sink's commit and the group's leaves it one batch lower, which replays that batch harmlessly. The start is
	 * then committed to the group, so that its lag (what a drain waits on) counts what this processor will read. */
	if (log->consumer_owns_all) {
		int parts = 0;
		log->ops->partitions(log, p->topic, &parts, NULL);
		struct sl_topic_part *gp = parts > 0 ? calloc((size_t)parts, sizeof *gp) : NULL;
		if (parts > 0 && !gp) {
			rc = sl_err_set(err, SL_ENOMEM, "out of memory");
			goto out;
		}
		for (int i = 0; i < parts; i++) {
			gp[i].partition = i;
			gp[i].committed = -1;
		}
		if (parts > 0 && (rc = log->ops->committed(log, p->group, p->topic, gp, parts, err))) {
			free(gp);
			goto out;
		}
		for (int i = 0; i < parts; i++) {
			int64_t lowest = INT64_MAX;
			size_t have = 0;
			for (size_t oi = 0; oi < nout; oi++) {
				int64_t off;
				if (sinks[oi]->ops->stored_offset(sinks[oi], p->out[oi].offsets_group, p->topic, i, &off) ==
				    0) {
					have++;
					if (off < lowest)
						lowest = off;
				} else
					lowest = 0;
			}
			if (have == 0)
				continue; /* nothing stored: the group's offset, as any consumer */
			if (gp[i].committed >= 0 && gp[i].committed < lowest)
				lowest = gp[i].committed;
			cons->ops->seek(cons, p->topic, i, lowest, NULL);
			if (lowest != gp[i].committed && (rc = cons->ops->commit(cons, p->topic, i, lowest, err))) {
				free(gp);
				goto out;
			}
		}
		free(gp);
	}
	if ((rc = aggregates_open(&pr, log, sinks, err)) || (rc = check_state_covers_group(&pr, log, err)))
		goto out;
	bool stopping = false;
	for (;;) {
		for (size_t oi = 0; pr.stages && oi < nout; oi++)
			if (pr.stages[oi] && sl_agg_stage_ended(pr.stages[oi])) {
				rc = sl_err_set(err, SL_EIO, "pipeline %s: output %s: the aggregate stage stopped", p->name,
						p->out[oi].name);
				goto out; /* its error is the run's (out:) */
			}
		if (!stopping && ((o->stop && *o->stop) || (o->for_ms && (sl_mono_s() - t0) * 1000 >= (double)o->for_ms)))
			stopping = true; /* read no more; finish and commit what is in flight */
		if (stopping && used == 0)
			break; /* messages read but not yet in a slot are not committed: read again on restart */

		/* 0. A slot is free again: resume the partitions paused in 1b before reading (a ring that drained whole
		 * while paused reads nothing and goes round step 1 alone, so resuming after it would never happen). */
		if (used < nslots) {
			full_since = 0;
			if (paused)
				set_paused(&pr, cons, p->name, false, &paused);
		}

		if (pr.rewind && used == 0) {
			if ((rc = rewind_source(&pr, log, cons, err)))
				goto out;
			in_off = in_n = 0; /* read past the committed offsets: read again */
		}

		/* 1. Read the next batch while there is room in the ring (none while a rewind waits for it). */
		bool got_input = false;
		if (!stopping && used < nslots && !pr.rewind) {
			/* What the last poll returned beyond max_bytes waits here; the consumer is polled again only
			 * once it is all in slots (its messages are valid until the next poll). */
			int n = (int)(in_n - in_off);
			if (n == 0) {
				n = cons->ops->poll(cons, in, max, used ? 0 : (int)p->batch.max_wait_ms, err);
				if (n < 0) {
					rc = n;
					goto out;
				}
				in_off = 0;
				in_n = (size_t)n;
				if (n > 0 && (rc = check_assignment(&pr, err)))
					goto out;
			}
			if (n > 0) {
				struct slot *s = &slots[(head + used) % nslots];
				size_t taken = 0;
				SL_ASSERT(used < nslots && head < nslots && !s->busy); /* the ring's next slot is free */
				if (first_record == 0)
					first_record = sl_mono_s();
				if ((rc = fill_slot(&pr, s, in + in_off, n, &taken, jp, schema, err)))
					goto out;
				in_off += taken;
				used++;
				got_input = input_since_lag = true;
				submit_slot(&pr, sinks, s);
			} else if (used == 0 && aggregates_due(&pr, !input_since_lag && last_lag > 0 && st->lag == 0)) {
				struct slot *s = &slots[head % nslots];
				size_t taken = 0;
				if ((rc = fill_slot(&pr, s, in, 0, &taken, jp, schema, err)))
					goto out;
				used++;
				submit_slot(&pr, sinks, s);
			} else if (used == 0) {
				/* Nothing to read: the open transaction commits now. */
				if (pr.txp && pr.in_txn && (rc = txn_result(&pr, repartition_commit(&pr, err), err)))
					goto out;
				if (sl_mono_s() - last_lag >= (input_since_lag ? 0.1 : 1.0)) {
					/* The group-wide lag costs a round trip to the broker: at most once a second while idle,
					 * but soon after the input stops (a drain ends there, not up to a second later). */
					input_since_lag = false;
					last_lag = sl_mono_s();
					st->lag = sl_pipeline_lag(log, p->group, p->topic);
					sl_gauge_set(pr.m.lag, st->lag);
					/* Source partitions read to their end: their markers say idle (before a drain
					 * ends, so the second stage's last watermark is the newest of all). */
					if (pr.prog && st->lag >= 0 &&
					    (rc = txn_result(&pr, progress_idle(&pr, log, st->lag == 0, err), err)))
						goto out;
					if (pr.rewind)
						continue;
					/* Drained: windows the newest record closed are emitted first (the next turn). */
					if (o->until_drained && (!o->upstream_done || *o->upstream_done) && st->lag == 0 &&
					    !aggregates_due(&pr, true)) {
						drained = true;
						break;
					}
				}
				if (o->progress && sl_mono_s() - last_progress >= 1) {
					last_progress = sl_mono_s();
					progress(p, st, t0, false);
				}
				continue;
			}
		}

		/* 1b. Backpressure: a ring that stays full (a slow or absent database) pauses the partitions, and the
		 * consumer is still polled, so the member stays in its group instead of being dropped after
		 * max.poll.interval.ms; nothing is fetched meanwhile, so memory stays bounded. */
		if (used == nslots && in_off == in_n && cons->ops->pause) {
			if (full_since == 0)
				full_since = sl_mono_s();
			else if (!paused && sl_mono_s() - full_since > 1.0)
				set_paused(&pr, cons, p->name, true, &paused);
			if (paused) {
				int n = cons->ops->poll(cons, in, max, 0, err);
				if (n < 0) {
					rc = n;
					goto out;
				}
				in_off = 0;
				in_n = (size_t)n; /* fetched before the pause took hold: kept for the next free slot */
			}
		}

		submit_ordered(&pr, sinks, slots, nslots, head, used);

		/* 2. Let the sink finish writes. Wait for one when there is nothing else to do (ring full, stopping, or
		 * the topic had nothing new); otherwise only collect what is already done and go read more. */
		for (size_t oi = 0; oi < nout; oi++)
			sinks[oi]->ops->poll(sinks[oi], oi > 0 ? 0 : used == nslots || stopping ? 100 : got_input ? 0 : 20);
		submit_ordered(&pr, sinks, slots, nslots, head, used);

		/* 3. A failed write is done again after a backoff (that output's part only; the others keep what they
		 * wrote); nothing after it commits meanwhile. */
		for (size_t i = 0; i < used; i++) {
			struct slot *s = &slots[(head + i) % nslots];
			for (size_t oi = 0; oi < nout; oi++) {
				struct obatch *ob = &s->ob[oi];
				struct sl_sink *sink = sinks[oi];
				if (!ob->done || !ob->err)
					continue;
				if (ob->retry_at == 0) {
					st->retries++;
					sl_counter_add(pr.m.retries, 1);
					sl_warn("process", "pipeline %s: output %s: sink write failed, retrying in %" PRId64
						" ms: %s", p->name, p->out[oi].name, ob->backoff_ms, ob->errmsg);
					ob->retry_at = sl_mono_s() + (double)ob->backoff_ms / 1000.0;
					ob->backoff_ms = ob->backoff_ms * 2 > 30000 ? 30000 : ob->backoff_ms * 2;
					ob->retry_when_up = sink->ops->available && !sink->ops->available(sink);
				} else if (sl_mono_s() >= ob->retry_at ||
					   (ob->retry_when_up && sink->ops->available(sink))) {
					if (sl_mono_s() < ob->retry_at)
						sl_info("process", "pipeline %s: output %s: the sink's store is reachable "
							"again; retrying now", p->name, p->out[oi].name);
					ob->retry_at = 0;
					ob->err = 0;
					submit_ob(sink, ob);
				}
			}
		}
		/* When every batch in the ring waits out a backoff, nothing can move: sleep instead of spinning. */
		bool all_waiting = used > 0, head_failed = false;
		for (size_t i = 0; i < used && all_waiting; i++) {
			const struct slot *s = &slots[(head + i) % nslots];
			bool waiting = false;
			for (size_t oi = 0; oi < nout; oi++)
				if (s->ob[oi].done && s->ob[oi].err && s->ob[oi].retry_at > 0)
					waiting = true;
			all_waiting = waiting;
		}
		for (size_t oi = 0; used > 0 && oi < nout; oi++)
			if (slots[head].ob[oi].done && slots[head].ob[oi].err)
				head_failed = true;
		if (all_waiting && (used == nslots || stopping))
			usleep(50000);
		if (stopping && head_failed) {
			/* Stop without committing the failed batch: it is read again on restart. */
			break;
		}

		/* 4. Commit the oldest batches that every output has, in order. */
		while (used > 0 && slot_done(&slots[head])) {
			struct slot *s = &slots[head];
			size_t nrec = s->ob[0].b.n;
			uint64_t rejected = s->ob[0].rejected;
			/* Offsets are committed from the oldest batch only, once the sink has it: every batch before it
			 * is committed and freed, every batch after it is still held, so no commit passes a record the
			 * sink does not have. */
			SL_ASSERT(used <= nslots && head < nslots && s->busy);
			SL_ASSERT(used == nslots || !slots[(head + used) % nslots].busy);
			st->batches++;
			st->written += nrec - rejected;
			sl_live.written += nrec - rejected;
			sl_counter_add(pr.m.batches, 1);
			sl_counter_add(pr.m.written, nrec - rejected);
			sl_histogram_observe(pr.m.batch_records, (double)nrec);
			sl_histogram_observe(pr.m.write_seconds, sl_mono_s() - s->started);
			int64_t now = sl_now_ms();
			for (size_t i = 0; i < nrec; i++) {
				int64_t ts = s->msgs[s->ob[0].mor[i]].timestamp_ms;
				if (ts > 0 && now >= ts)
					sl_histogram_observe(pr.m.e2e_seconds, (double)(now - ts) / 1000.0);
			}
			/* Offsets move only once the dead-letter topic also has this batch's rejects. */
			if (pr.dlq_outstanding > 0) {
				struct sl_err ferr = {0};
				if (pr.dlq->ops->flush(pr.dlq, 60000, &ferr)) {
					rc = sl_err_set(err, SL_EIO, "pipeline %s: dead-letter topic not reachable: %s",
							p->name, ferr.msg);
					goto out;
				}
				pr.dlq->ops->poll(pr.dlq, 0);
			}
			if (pr.dlq_failed) {
				rc = sl_err_set(err, SL_EIO, "pipeline %s: %" PRId64 " dead-letter records were not "
						"delivered; offsets not committed", p->name, pr.dlq_failed);
				goto out;
			}
			if (pr.txp && s->nmarks && !pr.rewind && (rc = txn_result(&pr, repartition_add(&pr, s, err), err)))
				goto out;
			for (size_t i = 0; !pr.txp && i < s->nmarks; i++) {
				struct sl_err cerr = {0};
				SL_ASSERT(s->marks[i].next_offset > 0); /* one past a record the batch held */
				/* A commit can fail when a rebalance just gave the partition to another member: the rows
				 * are written, the new owner reads them again from the last commit and rewrites them
				 * (upserts), so this is a duplicate at worst, never a loss. Warn and go on. */
				if (cons->ops->commit(cons, s->marks[i].topic, s->marks[i].partition,
						      s->marks[i].next_offset, &cerr))
					sl_warn("process", "pipeline %s: commit of %s[%" PRId32 "]@%" PRId64 " failed: %s",
						p->name, s->marks[i].topic, s->marks[i].partition, s->marks[i].next_offset,
						cerr.msg);
			}
			s->busy = false;
			head = (head + 1) % nslots;
			used--;
			last_commit = sl_mono_s();
		}
		/* One transaction for up to 100 ms of batches (each costs the broker a few round trips), and at once
		 * when the input pauses or the run stops. */
		if (pr.txp && pr.in_txn && (stopping || !got_input || sl_mono_s() - pr.txn_started >= 0.1) &&
		    (rc = txn_result(&pr, repartition_commit(&pr, err), err)))
			goto out;
		if (o->progress && sl_mono_s() - last_progress >= 1) {
			last_progress = last_lag = sl_mono_s();
			st->lag = sl_pipeline_lag(log, p->group, p->topic);
			progress(p, st, t0, false);
		}
	}
out:
	if (rc == 0 && pr.in_txn)
		rc = repartition_commit(&pr, err);
	/* The aggregate stages: after a drain they read to the end of what was committed to them; otherwise they stop
	 * after the batch in hand. A stage's error is the run's. */
	for (size_t oi = 0; pr.stages && oi < nout; oi++) {
		struct sl_err serr = {0};
		if (pr.stages[oi] && sl_agg_stage_stop(pr.stages[oi], drained && rc == 0, o->stop, &serr) &&
		    (rc == 0 || (rc == SL_EIO && strstr(err->msg, "aggregate stage stopped")))) {
			*err = serr;
			rc = serr.code ? serr.code : SL_EIO;
			sl_err_prefix(err, "output %s: ", p->out[oi].name);
		}
	}
	free(pr.stages);
	free(pr.names);
	free(pr.nrep);
	free(pr.offs);
	if (pr.txp) {
		if (pr.in_txn) { /* an error with a transaction open: nothing of it becomes visible */
			struct sl_err aerr = {0};
			pr.txp->ops->abort(pr.txp, &aerr);
		}
		pr.txp->ops->destroy(pr.txp);
	}
	/* Writes still in flight finish before the sink goes (its destroy waits for them). */
	if (cons && be_open)
		st->lag = sl_pipeline_lag(log, p->group, p->topic);
	for (size_t oi = 0; sinks && oi < nout; oi++) {
		struct sl_sink *sink = sinks[oi];
		if (!sink)
			continue;
		if (oi == 0)
			st->table_rows = sink->ops->count ? sink->ops->count(sink, NULL) : -1;
		sink->ops->destroy(sink);
	}
	free(sinks);
	aggregates_close(&pr);
	sl_expr_env_free(&pr.env);
	if (pr.dlq) {
		pr.dlq->ops->flush(pr.dlq, 30000, NULL);
		pr.dlq->ops->poll(pr.dlq, 0);
		pr.dlq->ops->destroy(pr.dlq);
	}
	if (cons)
		cons->ops->destroy(cons); /* its revoke hooks still see pr.owned */
	free(pr.prog);
	free(pr.owned);
	if (be_open)
		sl_topic_store_close(log);
	st->seconds = sl_mono_s() - t0;
	st->active_seconds = first_record > 0 && last_commit > first_record ? last_commit - first_record : 0;
	if (o->progress)
		progress(p, st, t0, true);
	sl_json_parser_free(jp);
	sl_avro_cache_free(pr.avro);
	sl_pbwire_cache_free(pr.pb);
	sl_registry_client_close(reg);
	for (size_t i = 0; slots && i < nslots; i++)
		slot_free(&slots[i]);
	free(slots);
	free(in);
	return rc;
}
