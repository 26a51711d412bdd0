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
#include "codec/json.h"
#include "codec/record_json.h"
#include "core/arena.h"
#include "core/assert.h"
#include "core/log.h"
#include "pipeline/runtime.h"
#include "registry/registry.h"

/* One micro-batch: its own copies of the messages (a consumer's messages live only until its next poll), the
 * decoded records, and the offsets it covers. */
struct slot {
	struct sl_arena arena;
	struct sl_msg *msgs;
	size_t nmsgs;
	struct sl_record *recs;
	size_t *msg_of_rec;           /* record index -> message index, to dead-letter the original bytes */
	struct sl_offset_mark *marks;
	size_t nmarks, marks_cap;
	struct sl_sink_batch b;
	bool busy, done;
	int err;
	char errmsg[SL_ERR_MSG_MAX];
	int64_t backoff_ms;
	double retry_at, started;
	bool retry_when_up; /* failed while the sink could not reach its store: retried as soon as it can */
	uint64_t rejected;
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
	(void)ctx;
	struct slot *s = b->opaque;
	s->done = true;
	s->err = err;
	snprintf(s->errmsg, sizeof s->errmsg, "%s", errmsg ? errmsg : "");
}

static void on_reject(void *ctx, struct sl_sink_batch *b, size_t index, const char *reason)
{
	struct proc *pr = ctx;
	struct slot *s = b->opaque;
	struct sl_err err = {0};
	pr->st->rejected++;
	s->rejected++;
	sl_counter_add(pr->m.rejected, 1);
	if (index < b->n && to_dlq(pr, &s->msgs[s->msg_of_rec[index]], "sink", reason, &err))
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

static void slot_free(struct slot *s)
{
	sl_arena_free(&s->arena);
	free(s->msgs);
	free(s->recs);
	free(s->msg_of_rec);
	free(s->marks);
}

static int slot_init(struct slot *s, size_t max)
{
	memset(s, 0, sizeof *s);
	sl_arena_init(&s->arena, 1 << 20);
	s->msgs = calloc(max, sizeof *s->msgs);
	s->recs = calloc(max, sizeof *s->recs);
	s->msg_of_rec = calloc(max, sizeof *s->msg_of_rec);
	return s->msgs && s->recs && s->msg_of_rec ? 0 : SL_ENOMEM;
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
	s->rejected = 0;
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
		else if (pr->avro) {
			drc = sl_avro_cache_decode(pr->avro, m->value, m->value_len, &s->recs[nrec], &s->arena, &derr);
			/* A registry that cannot be asked is not the record's fault: stop uncommitted, read it again later. */
			if (drc && drc != SL_EINVAL && drc != SL_ENOTFOUND && drc != SL_ETYPE && drc != SL_ETOOBIG)
				return sl_err_set(err, drc, "%s[%" PRId32 "]@%" PRId64 ": %s", m->topic, m->partition,
						  m->offset, derr.msg);
		} else
			drc = sl_record_decode_json(&s->recs[nrec], schema, jp, m->value, m->value_len, &s->arena, &derr);
		if (drc == 0)
			drc = sl_record_check(&s->recs[nrec], &derr);
		if (drc != 0) {
			sl_err_prefix(&derr, "%s[%" PRId32 "]@%" PRId64 ": ", m->topic, m->partition, m->offset);
			sl_debug("process", "pipeline %s: %s", p->name, derr.msg);
			int rc = to_dlq(pr, m, "decode", derr.msg, err);
			if (rc)
				return rc;
			continue;
		}
		s->msg_of_rec[nrec++] = s->nmsgs - 1;
	}
	s->b = (struct sl_sink_batch){.recs = s->recs, .n = nrec, .marks = s->marks, .nmarks = s->nmarks,
				      .group = p->group, .opaque = s};
	s->busy = true;
	s->done = false;
	s->err = 0;
	s->backoff_ms = 100;
	s->retry_at = 0;
	s->started = sl_mono_s();
	return 0;
}

static void submit_slot(struct proc *pr, struct sl_sink *sink, struct slot *s)
{
	struct sl_err werr = {0};
	s->done = false;
	if (sink->ops->write(sink, &s->b, &werr)) {
		s->done = true;
		s->err = werr.code ? werr.code : SL_EIO;
		snprintf(s->errmsg, sizeof s->errmsg, "%s", werr.msg);
	}
	(void)pr;
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

int sl_process_run(struct sl_conf *c, struct sl_pipeline *p, const struct sl_run_opts *o,
		   struct sl_process_stats *st, struct sl_err *err)
{
	memset(st, 0, sizeof *st);
	st->table_rows = -1;
	struct sl_topic_store *log = NULL;
	struct proc pr = {.p = p, .c = c, .st = st};
	sl_pipeline_metrics(p->name, &pr.m);
	struct sl_consumer *cons = NULL;
	struct sl_sink *sink = NULL;
	struct sl_json_parser *jp = NULL;
	struct sl_registry_client *reg = NULL;
	size_t max = (size_t)p->batch.max_records;
	size_t nslots = (size_t)p->batch.in_flight;
	struct slot *slots = calloc(nslots, sizeof *slots);
	struct sl_msg *in = calloc(max, sizeof *in);
	size_t in_off = 0, in_n = 0;
	size_t head = 0, used = 0; /* the ring: slots[head .. head+used) are in flight, oldest first */
	double t0 = sl_mono_s(), last_progress = t0, last_lag = 0, first_record = 0, last_commit = 0;
	int rc = 0;
	bool be_open = false, paused = false, input_since_lag = false;
	double full_since = 0;
	if (!slots || !in) {
		rc = sl_err_set(err, SL_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < nslots; i++)
		if (slot_init(&slots[i], max)) {
			rc = sl_err_set(err, SL_ENOMEM, "out of memory");
			goto out;
		}
	if ((rc = sl_pipeline_topics(c, &log, err)))
		goto out;
	pr.ts = log;
	be_open = true;
	const struct sl_schema *schema = sl_mapping_schema(p->map);
	if (!strcmp(p->format, "avro") &&
	    ((rc = sl_registry_client_open(&reg, p->registry_url, c->registry, c->data_dir, err)) ||
	     (rc = sl_avro_cache_new(fetch_schema, reg, schema, &pr.avro, err))))
		goto out;
	if ((rc = log->ops->ensure_topic(log, p->topic, (int)p->partitions, (int)p->replication, err)) ||
	    (rc = log->ops->ensure_topic(log, p->dlq_topic, 1, (int)p->replication, err)) ||
	    (rc = log->ops->consumer(log, p->group, p->topic, &cons, err)) ||
	    (rc = sl_json_parser_new(&jp, (size_t)p->max_record_bytes * 2, SL_JSON_DEFAULT_MAX_DEPTH, err)))
		goto out;
	cons->skip_headers = true; /* records are decoded from their value; a dead letter gets headers of its own */
	/* A database that is not up yet (a restart, a deploy in the wrong order) is waited for, with backoff; a
	 * configuration or authentication error is not going to pass and ends the run. */
	for (int64_t backoff_ms = 1000;;) {
		rc = sl_sink_open(c->cassandra, c->data_dir, p->name, &p->sink, &sink, err);
		if (rc == 0 && (rc = sink->ops->prepare(sink, schema, err)) != 0) {
			sink->ops->destroy(sink);
			sink = NULL;
		}
		if (rc == 0 || rc == SL_ECONFIG || rc == SL_EINVAL || rc == SL_EAUTH || rc == SL_ENOMEM ||
		    (o->stop && *o->stop))
			break;
		sl_warn("process", "pipeline %s: sink not ready, trying again in %" PRId64 " ms: %s", p->name, backoff_ms,
			err->msg);
		for (int64_t waited = 0; waited < backoff_ms && !(o->stop && *o->stop); waited += 100)
			usleep(100000);
		backoff_ms = backoff_ms * 2 > 30000 ? 30000 : backoff_ms * 2;
	}
	if (rc)
		goto out;
	snprintf(st->where, sizeof st->where, "%s", sink->where);
	sink->done = on_done;
	sink->reject = on_reject;
	sink->ctx = &pr;
	/* A sink that keeps offsets with its rows is the truth about what is written: start there. */
	if (log->consumer_owns_all) {
		int parts = 0;
		log->ops->partitions(log, p->topic, &parts, NULL);
		for (int i = 0; i < parts; i++) {
			int64_t off;
			if (sink->ops->stored_offset(sink, p->group, p->topic, i, &off) == 0)
				cons->ops->seek(cons, p->topic, i, off, NULL);
		}
	}
	bool stopping = false;
	for (;;) {
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

		/* 1. Read the next batch while there is room in the ring. */
		bool got_input = false;
		if (!stopping && used < nslots) {
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
				submit_slot(&pr, sink, s);
			} else if (used == 0) {
				if (sl_mono_s() - last_lag >= (input_since_lag ? 0.1 : 1.0)) {
					/* The group-wide lag costs a round trip to the broker: at most once a second while idle,
					 * but soon after the input stops (a drain ends there, not up to a second later). */
					input_since_lag = false;
					last_lag = sl_mono_s();
					st->lag = sl_pipeline_lag(log, p->group, p->topic);
					sl_gauge_set(pr.m.lag, st->lag);
					if (o->until_drained && (!o->upstream_done || *o->upstream_done) && st->lag == 0)
						break;
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

		/* 2. Let the sink finish writes. Wait for one when there is nothing else to do (ring full, stopping, or
		 * the topic had nothing new); otherwise only collect what is already done and go read more. */
		sink->ops->poll(sink, used == nslots || stopping ? 100 : got_input ? 0 : 20);

		/* 3. A failed batch is written again after a backoff; nothing after it commits meanwhile. */
		for (size_t i = 0; i < used; i++) {
			struct slot *s = &slots[(head + i) % nslots];
			if (!s->done || !s->err)
				continue;
			if (s->retry_at == 0) {
				st->retries++;
				sl_counter_add(pr.m.retries, 1);
				sl_warn("process", "pipeline %s: sink write failed, retrying in %" PRId64 " ms: %s", p->name,
					s->backoff_ms, s->errmsg);
				s->retry_at = sl_mono_s() + (double)s->backoff_ms / 1000.0;
				s->backoff_ms = s->backoff_ms * 2 > 30000 ? 30000 : s->backoff_ms * 2;
				s->retry_when_up = sink->ops->available && !sink->ops->available(sink);
			} else if (sl_mono_s() >= s->retry_at ||
				   (s->retry_when_up && sink->ops->available(sink))) {
				if (sl_mono_s() < s->retry_at)
					sl_info("process", "pipeline %s: the sink's store is reachable again; retrying now",
						p->name);
				s->retry_at = 0;
				s->err = 0;
				submit_slot(&pr, sink, s);
			}
		}
		/* When every batch in the ring waits out a backoff, nothing can move: sleep instead of spinning. */
		bool all_waiting = used > 0;
		for (size_t i = 0; i < used && all_waiting; i++) {
			const struct slot *s = &slots[(head + i) % nslots];
			all_waiting = s->done && s->err && s->retry_at > 0;
		}
		if (all_waiting && (used == nslots || stopping))
			usleep(50000);
		if (stopping && used > 0 && slots[head].done && slots[head].err) {
			/* Stop without committing the failed batch: it is read again on restart. */
			break;
		}

		/* 4. Commit the oldest batches that are done, in order. */
		while (used > 0 && slots[head].done && !slots[head].err) {
			struct slot *s = &slots[head];
			size_t nrec = s->b.n;
			/* Offsets are committed from the oldest batch only, once the sink has it: every batch before it
			 * is committed and freed, every batch after it is still held, so no commit passes a record the
			 * sink does not have. */
			SL_ASSERT(used <= nslots && head < nslots && s->busy);
			SL_ASSERT(used == nslots || !slots[(head + used) % nslots].busy);
			st->batches++;
			st->written += nrec - s->rejected;
			sl_live.written += nrec - s->rejected;
			sl_counter_add(pr.m.batches, 1);
			sl_counter_add(pr.m.written, nrec - s->rejected);
			sl_histogram_observe(pr.m.batch_records, (double)nrec);
			sl_histogram_observe(pr.m.write_seconds, sl_mono_s() - s->started);
			int64_t now = sl_now_ms();
			for (size_t i = 0; i < nrec; i++) {
				int64_t ts = s->msgs[s->msg_of_rec[i]].timestamp_ms;
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
			for (size_t i = 0; i < s->nmarks; i++) {
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
		if (o->progress && sl_mono_s() - last_progress >= 1) {
			last_progress = last_lag = sl_mono_s();
			st->lag = sl_pipeline_lag(log, p->group, p->topic);
			progress(p, st, t0, false);
		}
	}
out:
	/* Writes still in flight finish before the sink goes (its destroy waits for them). */
	if (cons && be_open)
		st->lag = sl_pipeline_lag(log, p->group, p->topic);
	if (sink) {
		st->table_rows = sink->ops->count ? sink->ops->count(sink, NULL) : -1;
		sink->ops->destroy(sink);
	}
	if (pr.dlq) {
		pr.dlq->ops->flush(pr.dlq, 30000, NULL);
		pr.dlq->ops->poll(pr.dlq, 0);
		pr.dlq->ops->destroy(pr.dlq);
	}
	if (cons)
		cons->ops->destroy(cons);
	if (be_open)
		sl_topic_store_close(log);
	st->seconds = sl_mono_s() - t0;
	st->active_seconds = first_record > 0 && last_commit > first_record ? last_commit - first_record : 0;
	if (o->progress)
		progress(p, st, t0, true);
	sl_json_parser_free(jp);
	sl_avro_cache_free(pr.avro);
	sl_registry_client_close(reg);
	for (size_t i = 0; slots && i < nslots; i++)
		slot_free(&slots[i]);
	free(slots);
	free(in);
	return rc;
}
