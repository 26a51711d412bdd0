/* The processor loop: consume a topic in a group, decode and validate each record against the pipeline's schema,
 * write micro-batches to the sink, and commit a partition's offset only after the sink has the batch (and the
 * dead-letter topic has the batch's rejects). A record that cannot be decoded or that the sink rejects for good goes
 * to the dead-letter topic with the reason; the stream goes on. A sink error that may pass (a database away) is
 * retried with capped exponential backoff, holding the batch, so nothing is skipped and memory stays bounded. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec/json.h"
#include "codec/record_json.h"
#include "core/arena.h"
#include "core/log.h"
#include "pipeline/runtime.h"

struct proc {
	struct sl_pipeline *p;
	struct sl_producer *dlq;
	struct sl_process_stats *st;
	struct sl_msg *msgs;          /* this batch's messages, to dead-letter a rejected record with its original bytes */
	size_t *msg_of_rec;           /* record index -> message index */
	int64_t dlq_outstanding, dlq_failed;
	int batch_err;
	char batch_errmsg[SL_ERR_MSG_MAX];
	bool batch_done;
	struct sl_pipeline_metrics m;
};

static void on_dlq_delivery(void *ctx, void *opaque, int err, const char *errmsg, int32_t partition, int64_t offset)
{
	struct proc *pr = ctx;
	(void)opaque;
	(void)partition;
	(void)offset;
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
	sl_dlq_headers(h, stage, reason, pr->p->name, m->topic, pb, m->partition, ob, m->offset);
	struct sl_msg d = {.topic = pr->p->dlq_topic, .partition = -1, .key = m->key, .key_len = m->key_len,
			   .value = m->value, .value_len = m->value_len, .headers = h, .n_headers = 6};
	int rc;
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
	(void)b;
	pr->batch_done = true;
	pr->batch_err = err;
	snprintf(pr->batch_errmsg, sizeof pr->batch_errmsg, "%s", errmsg ? errmsg : "");
}

static void on_reject(void *ctx, struct sl_sink_batch *b, size_t index, const char *reason)
{
	struct proc *pr = ctx;
	struct sl_err err = {0};
	pr->st->rejected++;
	sl_counter_add(pr->m.rejected, 1);
	if (index < b->n && to_dlq(pr, &pr->msgs[pr->msg_of_rec[index]], "sink", reason, &err))
		sl_error("process", "pipeline %s: cannot dead-letter a rejected record: %s", pr->p->name, err.msg);
}

static void progress(const struct sl_pipeline *p, const struct sl_process_stats *st, double t0, bool final)
{
	double dt = sl_mono_s() - t0;
	sl_progress(final, "process %s: %" PRIu64 " consumed, %" PRIu64 " written, %" PRIu64 " dlq, lag %" PRId64
		    ", %.0f rec/s", p->name, st->consumed, st->written, st->dlq, st->lag,
		    dt > 0 ? (double)st->written / dt : 0);
}

static int open_sink(struct sl_conf *c, struct sl_pipeline *p, struct sl_sink **out, struct sl_err *err)
{
	const char *t = p->sink.type;
	if (!strcmp(t, "null"))
		return sl_sink_null_new(out, err);
	if (!strcmp(t, "cassandra") || (!strcmp(t, "auto") && c->cassandra)) {
		if (!c->cassandra)
			return sl_err_set(err, SL_ECONFIG, "pipeline %s: sink type cassandra needs a cassandra: section",
					  p->name);
		return sl_sink_cassandra_new(c->cassandra, &p->sink, out, err);
	}
	return sl_sink_sqlite_new(c->data_dir, &p->sink, out, err);
}

int sl_process_run(struct sl_conf *c, struct sl_pipeline *p, const struct sl_run_opts *o,
		   struct sl_process_stats *st, struct sl_err *err)
{
	memset(st, 0, sizeof *st);
	struct proc pr = {.p = p, .st = st};
	sl_pipeline_metrics(p->name, &pr.m);
	struct sl_backend be;
	struct sl_consumer *cons = NULL;
	struct sl_sink *sink = NULL;
	struct sl_json_parser *jp = NULL;
	struct sl_arena arena;
	sl_arena_init(&arena, 1 << 20);
	size_t max = (size_t)p->batch.max_records;
	struct sl_msg *msgs = calloc(max, sizeof *msgs);
	struct sl_record *recs = calloc(max, sizeof *recs);
	size_t *msg_of_rec = calloc(max, sizeof *msg_of_rec);
	struct sl_offset_mark *marks = NULL;
	size_t marks_cap = 0;
	double t0 = sl_mono_s(), last_progress = t0, last_lag = 0;
	int rc = 0;
	if (!msgs || !recs || !msg_of_rec) {
		rc = sl_err_set(err, SL_ENOMEM, "out of memory");
		goto out_noclose;
	}
	pr.msgs = msgs;
	pr.msg_of_rec = msg_of_rec;
	if ((rc = sl_backend_open(c, &be, err)))
		goto out_noclose;
	const struct sl_schema *schema = sl_mapping_schema(p->map);
	if ((rc = sl_backend_ensure_topic(&be, c, p->topic, (int)p->partitions, (int)p->replication, err)) ||
	    (rc = sl_backend_ensure_topic(&be, c, p->dlq_topic, 1, (int)p->replication, err)) ||
	    (rc = sl_backend_consumer(&be, c, p->group, p->topic, &cons, err)) ||
	    (rc = sl_backend_producer(&be, c, on_dlq_delivery, &pr, &pr.dlq, err)) ||
	    (rc = open_sink(c, p, &sink, err)) || (rc = sink->ops->prepare(sink, schema, err)) ||
	    (rc = sl_json_parser_new(&jp, (size_t)p->max_record_bytes * 2, SL_JSON_DEFAULT_MAX_DEPTH, err)))
		goto out;
	snprintf(st->where, sizeof st->where, "%s", sink->where);
	sink->done = on_done;
	sink->reject = on_reject;
	sink->ctx = &pr;
	/* A sink that keeps offsets with its rows is the truth about what is written: start there. */
	if (!be.kafka) {
		int parts = 0;
		sl_embedded_partitions(be.emb, p->topic, &parts, NULL);
		for (int i = 0; i < parts; i++) {
			int64_t off;
			if (sink->ops->stored_offset(sink, p->group, p->topic, i, &off) == 0)
				cons->ops->seek(cons, p->topic, i, off, NULL);
		}
	}
	for (;;) {
		if (o->stop && *o->stop)
			break;
		if (o->for_ms && (sl_mono_s() - t0) * 1000 >= (double)o->for_ms)
			break;
		sl_arena_reset(&arena);
		int n = cons->ops->poll(cons, msgs, max, (int)p->batch.max_wait_ms, err);
		if (n < 0) {
			rc = n;
			goto out;
		}
		if (n == 0) {
			/* The group-wide lag costs a round trip to the broker: at most once a second. */
			if (sl_mono_s() - last_lag >= 1.0) {
				last_lag = sl_mono_s();
				st->lag = sl_backend_lag(&be, cons, p->group, p->topic);
				sl_gauge_set(pr.m.lag, st->lag);
			} else
				continue;
			if (o->progress && sl_mono_s() - last_progress >= 1) {
				last_progress = sl_mono_s();
				progress(p, st, t0, false);
			}
			if (o->until_drained && (!o->upstream_done || *o->upstream_done) && st->lag == 0)
				break;
			continue;
		}
		size_t nrec = 0, nmarks = 0;
		for (int i = 0; i < n; i++) {
			struct sl_msg *m = &msgs[i];
			struct sl_err derr = {0};
			st->consumed++;
			sl_live.consumed++;
			sl_counter_add(pr.m.consumed, 1);
			size_t k = 0;
			while (k < nmarks && !(marks[k].partition == m->partition && !strcmp(marks[k].topic, m->topic)))
				k++;
			if (k == nmarks) {
				if (nmarks == marks_cap) {
					size_t cap = marks_cap ? marks_cap * 2 : 16;
					struct sl_offset_mark *nm = realloc(marks, cap * sizeof *nm);
					if (!nm) {
						rc = sl_err_set(err, SL_ENOMEM, "out of memory");
						goto out;
					}
					marks = nm;
					marks_cap = cap;
				}
				marks[nmarks++] = (struct sl_offset_mark){m->topic, m->partition, m->offset + 1};
			} else if (m->offset + 1 > marks[k].next_offset)
				marks[k].next_offset = m->offset + 1;
			int drc = m->value ? sl_record_decode_json(&recs[nrec], schema, jp, m->value, m->value_len, &arena,
								   &derr)
					   : sl_err_set(&derr, SL_EINVAL, "empty message (no value)");
			if (drc == 0)
				drc = sl_record_check(&recs[nrec], &derr);
			if (drc != 0) {
				sl_err_prefix(&derr, "%s[%" PRId32 "]@%" PRId64 ": ", m->topic, m->partition, m->offset);
				sl_debug("process", "pipeline %s: %s", p->name, derr.msg);
				if ((rc = to_dlq(&pr, m, "decode", derr.msg, err)))
					goto out;
				continue;
			}
			msg_of_rec[nrec++] = (size_t)i;
		}
		uint64_t rejected_before = st->rejected;
		struct sl_sink_batch b = {.recs = recs, .n = nrec, .marks = marks, .nmarks = nmarks, .group = p->group};
		int64_t backoff_ms = 100;
		double w0 = sl_mono_s();
		for (;;) {
			pr.batch_done = false;
			struct sl_err werr = {0};
			int wrc = sink->ops->write(sink, &b, &werr);
			while (wrc == 0 && !pr.batch_done)
				sink->ops->poll(sink, 100);
			if (wrc == 0 && pr.batch_err == 0)
				break;
			st->retries++;
			sl_counter_add(pr.m.retries, 1);
			sl_warn("process", "pipeline %s: sink write failed, retrying in %" PRId64 " ms: %s", p->name,
				backoff_ms, wrc ? werr.msg : pr.batch_errmsg);
			for (int64_t waited = 0; waited < backoff_ms && !(o->stop && *o->stop); waited += 50)
				usleep(50000);
			if (o->stop && *o->stop) {
				/* Stop without committing: the batch is read again on restart. */
				goto out;
			}
			backoff_ms = backoff_ms * 2 > 30000 ? 30000 : backoff_ms * 2;
		}
		st->batches++;
		st->written += nrec;
		sl_live.written += nrec;
		sl_counter_add(pr.m.batches, 1);
		sl_counter_add(pr.m.written, nrec - (size_t)(st->rejected - rejected_before));
		sl_histogram_observe(pr.m.batch_records, (double)nrec);
		sl_histogram_observe(pr.m.write_seconds, sl_mono_s() - w0);
		{
			int64_t now = sl_now_ms();
			for (size_t i = 0; i < nrec; i++) {
				int64_t ts = msgs[msg_of_rec[i]].timestamp_ms;
				if (ts > 0 && now >= ts)
					sl_histogram_observe(pr.m.e2e_seconds, (double)(now - ts) / 1000.0);
			}
		}
		/* Offsets move only once the dead-letter topic also has this batch's rejects. */
		if (pr.dlq_outstanding > 0) {
			struct sl_err ferr = {0};
			if (pr.dlq->ops->flush(pr.dlq, 60000, &ferr)) {
				rc = sl_err_set(err, SL_EIO, "pipeline %s: dead-letter topic not reachable: %s", p->name,
						ferr.msg);
				goto out;
			}
			pr.dlq->ops->poll(pr.dlq, 0);
		}
		if (pr.dlq_failed) {
			rc = sl_err_set(err, SL_EIO, "pipeline %s: %" PRId64 " dead-letter records were not delivered; "
					"offsets not committed", p->name, pr.dlq_failed);
			goto out;
		}
		for (size_t i = 0; i < nmarks; i++) {
			struct sl_err cerr = {0};
			/* A commit can fail when a rebalance just gave the partition to another member: the rows are
			 * written, the new owner reads them again from the last commit and rewrites them (upserts), so
			 * this is a duplicate at worst, never a loss. Warn and go on. */
			if (cons->ops->commit(cons, marks[i].topic, marks[i].partition, marks[i].next_offset, &cerr))
				sl_warn("process", "pipeline %s: commit of %s[%" PRId32 "]@%" PRId64 " failed: %s", p->name,
					marks[i].topic, marks[i].partition, marks[i].next_offset, cerr.msg);
		}
		if (o->progress && sl_mono_s() - last_progress >= 1) {
			last_progress = last_lag = sl_mono_s();
			st->lag = sl_backend_lag(&be, cons, p->group, p->topic);
			progress(p, st, t0, false);
		}
	}
out:
	st->written -= st->rejected <= st->written ? st->rejected : 0;
	if (cons)
		st->lag = sl_backend_lag(&be, cons, p->group, p->topic);
	if (sink) {
		st->table_rows = sink->ops->count(sink, NULL);
		sink->ops->destroy(sink);
	}
	if (pr.dlq) {
		pr.dlq->ops->flush(pr.dlq, 30000, NULL);
		pr.dlq->ops->poll(pr.dlq, 0);
		pr.dlq->ops->destroy(pr.dlq);
	}
	if (cons)
		cons->ops->destroy(cons);
	sl_backend_close(&be);
out_noclose:
	st->seconds = sl_mono_s() - t0;
	if (o->progress)
		progress(p, st, t0, true);
	sl_json_parser_free(jp);
	sl_arena_free(&arena);
	free(msgs);
	free(recs);
	free(msg_of_rec);
	free(marks);
	return rc;
}
