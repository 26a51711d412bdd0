/* The ingest loop: pages from a source, records out of each page, the mapping, and the topic. A page's cursor is
 * saved only once the log confirmed every record of that page and of every page before it, so a restart resumes
 * after the last fully delivered page: duplicates are possible (pages in flight at a crash), losses are not. Records
 * that do not parse or map go to the dead-letter topic with the reason; they count as delivered once the DLQ has them. */
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
#include "core/buf.h"
#include "core/log.h"
#include "pipeline/runtime.h"
#include "registry/registry.h"
#include "source/source.h"

struct page_slot {
	uint64_t seq;
	int64_t outstanding; /* produced, not yet reported */
	int64_t failed;
	bool closed;         /* every record of the page has been produced */
	char cursor[SL_CURSOR_MAX];
};

struct ingest {
	struct sl_pipeline *p;
	struct sl_topic_store *state;
	char cursor_name[300];
	struct page_slot *slots; /* a FIFO of pages in flight */
	size_t head, count, cap;
	struct sl_ingest_stats *st;
	char last_error[SL_ERR_MSG_MAX];
	bool fatal;
	struct sl_pipeline_metrics m;
};

static struct page_slot *slot_push(struct ingest *in, uint64_t seq, const char *cursor)
{
	if (in->count == in->cap) {
		size_t cap = in->cap ? in->cap * 2 : 64;
		struct page_slot *n = calloc(cap, sizeof *n);
		if (!n)
			return NULL;
		for (size_t i = 0; i < in->count; i++)
			n[i] = in->slots[(in->head + i) % in->cap];
		free(in->slots);
		in->slots = n;
		in->head = 0;
		in->cap = cap;
	}
	SL_ASSERT(in->count < in->cap && in->head < in->cap);
	struct page_slot *s = &in->slots[(in->head + in->count++) % in->cap];
	memset(s, 0, sizeof *s);
	s->seq = seq;
	snprintf(s->cursor, sizeof s->cursor, "%s", cursor);
	return s;
}

static struct page_slot *slot_find(struct ingest *in, uint64_t seq)
{
	for (size_t i = 0; i < in->count; i++) {
		struct page_slot *s = &in->slots[(in->head + i) % in->cap];
		if (s->seq == seq)
			return s;
	}
	return NULL;
}

/* Saves the cursor of every leading page that is fully delivered. */
static void advance_cursor(struct ingest *in)
{
	const char *last = NULL;
	while (in->count) {
		struct page_slot *s = &in->slots[in->head];
		SL_ASSERT(in->count <= in->cap && in->head < in->cap && s->outstanding >= 0);
		if (!s->closed || s->outstanding > 0)
			break;
		if (s->failed) {
			/* Never move past a page with undelivered records: the next run fetches it again. */
			in->fatal = true;
			break;
		}
		last = s->cursor;
		snprintf(in->st->cursor, sizeof in->st->cursor, "%s", s->cursor);
		in->head = (in->head + 1) % in->cap;
		in->count--;
	}
	if (last) {
		struct sl_err err = {0};
		if (sl_topic_cursor_put(in->state, in->cursor_name, in->st->cursor, &err))
			sl_warn("ingest", "pipeline %s: cannot save cursor: %s", in->p->name, err.msg);
	}
}

static void on_delivery(void *ctx, void *opaque, int err, const char *errmsg, int32_t partition, int64_t offset)
{
	struct ingest *in = ctx;
	uint64_t seq = (uint64_t)(uintptr_t)opaque;
	struct page_slot *s = slot_find(in, seq);
	(void)partition;
	(void)offset;
	if (!s)
		return;
	SL_ASSERT(s->outstanding > 0); /* one report per produced record: the cursor waits for each */
	s->outstanding--;
	if (err) {
		s->failed++;
		in->st->delivery_failures++;
		sl_counter_add(in->m.delivery_failures, 1);
		snprintf(in->last_error, sizeof in->last_error, "%s", errmsg ? errmsg : sl_strerror(err));
	} else {
		in->st->delivered++;
		sl_live.delivered++;
		sl_counter_add(in->m.delivered, 1);
	}
}

static int produce(struct ingest *in, struct sl_producer *prod, struct page_slot *s, const struct sl_msg *m,
		   const volatile sig_atomic_t *stop, struct sl_err *err)
{
	for (;;) {
		int rc = prod->ops->produce(prod, m, (void *)(uintptr_t)s->seq, 1000, err);
		if (rc == 0) {
			s->outstanding++;
			return 0;
		}
		if (rc != SL_EFULL || (stop && *stop))
			return rc;
		prod->ops->poll(prod, 100); /* backpressure: wait for the log to take what it has */
		advance_cursor(in);
	}
}

/* Delivers what is queued before leaving. A run that ends by itself waits as long as a message may wait for its ack
 * (kafka.message_timeout, 5 min by default; the embedded log holds its messages through a full disk for as long), so
 * an outage shorter than that costs time, not records; a run told to stop waits at most 30 s. What is still
 * undelivered then counts as failed: its page's cursor stays unsaved, the next run fetches it again, and the run
 * ends non-zero saying so. */
static void final_flush(struct ingest *in, struct sl_producer *prod, const struct sl_topic_store *ts,
			const volatile sig_atomic_t *stop)
{
	const double t0 = sl_mono_s(), patience = (double)ts->message_timeout_ms / 1000.0 + 5;
	double last_note = t0;
	struct sl_err ferr = {0};
	for (;;) {
		double left = (stop && *stop ? 30 : patience) - (sl_mono_s() - t0);
		if (left <= 0)
			break;
		memset(&ferr, 0, sizeof ferr);
		if (prod->ops->flush(prod, left > 1 ? 1000 : (int)(left * 1000) + 1, &ferr) == 0)
			break;
		advance_cursor(in);
		if (sl_mono_s() - last_note >= 10) {
			last_note = sl_mono_s();
			sl_info("ingest", "pipeline %s: waiting for %" PRId64 " records to be delivered (%.0f s so far): %s",
				in->p->name, prod->ops->in_flight(prod), last_note - t0, ferr.msg);
		}
	}
	prod->ops->poll(prod, 0);
	advance_cursor(in);
	int64_t undelivered = prod->ops->in_flight(prod);
	if (undelivered > 0) {
		in->st->delivery_failures += (uint64_t)undelivered;
		sl_counter_add(in->m.delivery_failures, undelivered);
		snprintf(in->last_error, sizeof in->last_error, "%s", ferr.msg);
		sl_warn("ingest", "pipeline %s: giving up on %" PRId64 " undelivered records after %.0f s: %s",
			in->p->name, undelivered, sl_mono_s() - t0, ferr.msg);
	}
}

static void progress(const struct sl_pipeline *p, const struct sl_ingest_stats *st, double t0, bool final)
{
	double dt = sl_mono_s() - t0;
	sl_progress(final, "ingest %s: %" PRIu64 " pages, %" PRIu64 " records, %" PRIu64 " delivered, %" PRIu64
		    " dlq, %.0f rec/s", p->name, st->pages, st->records, st->delivered, st->dlq,
		    dt > 0 ? (double)st->delivered / dt : 0);
}

/* format avro: registers the mapping's Avro schema under the pipeline's subject before anything is written, so an
 * incompatible change stops the pipeline here, with the registry's message naming the rule that broke. */
static int avro_register(struct sl_conf *c, struct sl_pipeline *p, struct sl_registry_client **reg, int *id,
			 struct sl_err *err)
{
	struct sl_buf text, subject;
	int rc;
	sl_buf_init(&text);
	sl_buf_init(&subject);
	if ((rc = sl_avro_schema_for(sl_mapping_schema(p->map), p->name, &text, err)) ||
	    (rc = sl_registry_client_open(reg, p->registry_url, c->registry, c->data_dir, err)))
		goto out;
	/* The record name as written in the schema (sl_avro_schema_for made it a valid Avro name). */
	const char *nm = strstr(sl_buf_cstr(&text), "\"name\":\"") + 8;
	int nl = (int)strcspn(nm, "\"");
	if (!strcmp(p->subject_strategy, "record"))
		sl_buf_printf(&subject, "%.*s", nl, nm);
	else if (!strcmp(p->subject_strategy, "topic_record"))
		sl_buf_printf(&subject, "%s-%.*s", p->topic, nl, nm);
	else
		sl_buf_printf(&subject, "%s-value", p->topic);
	if ((rc = sl_registry_client_register(*reg, sl_buf_cstr(&subject), sl_buf_cstr(&text), "AVRO", id, err))) {
		sl_err_prefix(err, "pipeline %s: schema of the mapping: ", p->name);
		goto out;
	}
	sl_info("ingest", "pipeline %s: format=avro subject=%s schema_id=%d", p->name, sl_buf_cstr(&subject), *id);
out:
	sl_buf_free(&text);
	sl_buf_free(&subject);
	return rc;
}

int sl_ingest_run(struct sl_conf *c, struct sl_pipeline *p, const struct sl_run_opts *o, struct sl_ingest_stats *st,
		  struct sl_err *err)
{
	struct sl_registry_client *reg = NULL;
	int avro_id = -1;
	memset(st, 0, sizeof *st);
	struct ingest in = {.p = p, .st = st};
	sl_pipeline_metrics(p->name, &in.m);
	struct sl_topic_store *ts = NULL;
	struct sl_source *src = NULL;
	struct sl_producer *prod = NULL;
	struct sl_json_parser *jp = NULL;
	struct sl_mapping_env env;
	struct sl_arena arena;
	struct sl_buf payload, key, raw;
	sl_mapping_env_init(&env);
	sl_arena_init(&arena, 256 * 1024);
	sl_buf_init(&payload);
	sl_buf_init(&key);
	sl_buf_init(&raw);
	double t0 = sl_mono_s(), last_progress = t0;
	int rc = sl_pipeline_topics(c, &ts, err);
	if (rc)
		goto out_noclose;
	in.state = ts;
	snprintf(in.cursor_name, sizeof in.cursor_name, "ingest:%s", p->name);
	char resume[SL_CURSOR_MAX] = "";
	bool have_resume = sl_topic_cursor_get(ts, in.cursor_name, resume, sizeof resume, NULL) == 0;
	if (have_resume)
		sl_info("ingest", "pipeline %s resumes after cursor %s", p->name, resume);
	bool avro = !strcmp(p->format, "avro");
	if ((avro && (rc = avro_register(c, p, &reg, &avro_id, err))) ||
	    (rc = sl_source_new(p->name, p->source, have_resume ? resume : NULL, &src, err)) ||
	    (rc = ts->ops->ensure_topic(ts, p->topic, (int)p->partitions, (int)p->replication, err)) ||
	    (rc = ts->ops->ensure_topic(ts, p->dlq_topic, 1, (int)p->replication, err)) ||
	    (rc = ts->ops->producer(ts, on_delivery, &in, &prod, err)) ||
	    (rc = sl_json_parser_new(&jp, SL_JSON_DEFAULT_MAX_BYTES, SL_JSON_DEFAULT_MAX_DEPTH, err)))
		goto out;
	const struct sl_schema *schema = sl_mapping_schema(p->map);
	for (;;) {
		if (o->stop && *o->stop)
			break;
		if (o->for_ms && (sl_mono_s() - t0) * 1000 >= (double)o->for_ms)
			break;
		if (o->count && st->records >= (uint64_t)o->count)
			break;
		if (in.fatal)
			break;
		struct sl_page page;
		memset(&page, 0, sizeof page);
		rc = src->ops->next_page(src, &page, err);
		/* SL_ETOOBIG with the page filled in: the source stepped past a response over its size cap (http.c);
		 * a note of it goes to the DLQ and the stream goes on. */
		char fetch_err[SL_ERR_MSG_MAX] = "";
		if (rc == SL_ETOOBIG && page.url) {
			snprintf(fetch_err, sizeof fetch_err, "%s", err->msg);
			memset(err, 0, sizeof *err);
			rc = 0;
		}
		if (rc == SL_ENOTFOUND) {
			rc = 0;
			break;
		}
		if (rc == SL_EAGAIN) {
			rc = 0;
			prod->ops->poll(prod, 50);
			advance_cursor(&in);
			continue;
		}
		if (rc)
			goto out;
		st->pages++;
		st->bytes += page.len;
		sl_counter_add(in.m.pages, 1);
		sl_counter_add(in.m.bytes, page.len);
		struct page_slot *slot = slot_push(&in, page.seq, page.cursor);
		if (!slot) {
			rc = sl_err_set(err, SL_ENOMEM, "out of memory");
			goto out;
		}
		struct sl_json_val root, arr, item;
		struct sl_err perr = {0};
		char pb[16], ob[24];
		struct sl_header h[6];
		if (fetch_err[0]) {
			sl_dlq_headers(h, "fetch", fetch_err, p->name, NULL, pb, -1, ob, (int64_t)page.seq);
			struct sl_msg m = {.topic = p->dlq_topic, .partition = -1, .value = page.url,
					   .value_len = strlen(page.url), .headers = h, .n_headers = 6};
			if ((rc = produce(&in, prod, slot, &m, o->stop, err)))
				goto out;
			st->dlq++;
			sl_live.dlq++;
			sl_counter_add(in.m.ingest_dlq, 1);
		} else if (sl_json_parse(jp, page.body, page.len, &root, &perr) != 0 ||
		    (src->records_path && !sl_json_path(root, src->records_path, strlen(src->records_path), &arr))) {
			/* The whole page is unusable: keep it, whole, in the DLQ with the reason. */
			if (!perr.msg[0])
				sl_err_set(&perr, SL_EINVAL, "no array at %s in the response", src->records_path);
			sl_warn("ingest", "pipeline %s page %" PRIu64 ": %s", p->name, page.seq, perr.msg);
			sl_dlq_headers(h, "parse", perr.msg, p->name, NULL, pb, -1, ob, (int64_t)page.seq);
			struct sl_msg m = {.topic = p->dlq_topic, .partition = -1, .value = page.body,
					   .value_len = page.len, .headers = h, .n_headers = 6};
			if ((rc = produce(&in, prod, slot, &m, o->stop, err)))
				goto out;
			st->dlq++;
			sl_live.dlq++;
			sl_counter_add(in.m.ingest_dlq, 1);
		} else {
			if (!src->records_path)
				arr = root;
			struct sl_json_iter it;
			bool is_array = sl_json_type(arr) == SL_JSON_ARRAY;
			uint64_t idx = 0;
			if (is_array)
				sl_json_iter_init(&it, arr);
			while (is_array ? sl_json_array_next(&it, &item) : (idx == 0 && (item = arr, true))) {
				struct sl_record rec;
				struct sl_err merr = {0};
				st->records++;
				sl_live.ingested++;
				sl_counter_add(in.m.records, 1);
				sl_arena_reset(&arena);
				int mrc = sl_mapping_apply(p->map, item, &env, &arena, &rec, &merr);
				sl_buf_reset(&payload);
				sl_buf_reset(&key);
				if (mrc == 0)
					mrc = avro ? sl_avro_encode(&rec, avro_id, &payload, &merr)
						   : sl_record_to_json(&rec, &payload, &merr);
				if (mrc == 0 && schema->key >= 0)
					mrc = sl_record_key(&rec, &key, &merr);
				if (mrc == 0 && payload.len > (size_t)p->max_record_bytes)
					mrc = sl_err_set(&merr, SL_ETOOBIG, "record of %zu bytes is over max_record_bytes %lld",
							 payload.len, (long long)p->max_record_bytes);
				struct sl_msg m = {.partition = -1};
				if (mrc == 0) {
					m.topic = p->topic;
					m.key = key.data;
					m.key_len = key.len;
					m.value = payload.data;
					m.value_len = payload.len;
				} else {
					sl_buf_reset(&raw);
					sl_json_render(item, &raw);
					sl_err_prefix(&merr, "page %" PRIu64 " record %" PRIu64 ": ", page.seq, idx);
					sl_debug("ingest", "pipeline %s: %s", p->name, merr.msg);
					sl_dlq_headers(h, "map", merr.msg, p->name, NULL, pb, -1, ob, (int64_t)idx);
					m.topic = p->dlq_topic;
					m.value = raw.data;
					m.value_len = raw.len;
					m.headers = h;
					m.n_headers = 6;
					st->dlq++;
					sl_live.dlq++;
					sl_counter_add(in.m.ingest_dlq, 1);
				}
				if ((rc = produce(&in, prod, slot, &m, o->stop, err)))
					goto out;
				idx++;
			}
		}
		slot->closed = true;
		prod->ops->poll(prod, 0);
		advance_cursor(&in);
		if (o->progress && sl_mono_s() - last_progress >= 1) {
			last_progress = sl_mono_s();
			progress(p, st, t0, false);
		}
	}
out:
	if (prod) {
		final_flush(&in, prod, ts, o->stop);
		prod->ops->destroy(prod);
	}
	if (src) {
		st->requests = src->stats.requests;
		st->retries = src->stats.retries;
		src->ops->destroy(src);
	}
	sl_topic_store_close(ts);
out_noclose:
	st->seconds = sl_mono_s() - t0;
	if (o->progress)
		progress(p, st, t0, true);
	if (rc == 0 && (in.fatal || st->delivery_failures))
		rc = sl_err_set(err, SL_EIO, "pipeline %s: %" PRIu64 " records were not delivered (%s); their pages will be "
				"fetched again on the next run", p->name, st->delivery_failures, in.last_error);
	if (rc == 0 && st->records > 0 && st->delivered == 0)
		rc = sl_err_set(err, SL_EIO, "pipeline %s: nothing could be delivered", p->name);
	free(in.slots);
	sl_registry_client_close(reg);
	sl_json_parser_free(jp);
	sl_mapping_env_free(&env);
	sl_arena_free(&arena);
	sl_buf_free(&payload);
	sl_buf_free(&key);
	sl_buf_free(&raw);
	return rc;
}
