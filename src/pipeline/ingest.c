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
	uint64_t total;      /* records taken across runs once this page is in: saved with its cursor */
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
	struct sl_metric *m_dlq_dropped, *m_bad_pages;
	uint64_t dlq_bytes;   /* dead-letter bytes produced this run (bounded by the source's dlq_max_bytes) */
};

/* The saved text is "total=N;<the source's cursor>" in one row, so the records taken and the position move together
 * at the point where the log confirmed them: a kill -9 can lose neither without the other. A cursor saved before
 * totals existed has no prefix and counts from 0. */
static const char *split_saved(const char *saved, uint64_t *total)
{
	*total = 0;
	if (strncmp(saved, "total=", 6))
		return saved;
	char *end;
	unsigned long long v = strtoull(saved + 6, &end, 10);
	if (end == saved + 6 || *end != ';')
		return saved;
	*total = v;
	return end + 1;
}

static struct page_slot *slot_push(struct ingest *in, uint64_t seq, const char *cursor, uint64_t total)
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
	s->total = total;
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
	const struct page_slot *last = NULL;
	struct page_slot done;
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
		done = *s;
		last = &done;
		in->head = (in->head + 1) % in->cap;
		in->count--;
	}
	if (last) {
		struct sl_err err = {0};
		snprintf(in->st->cursor, sizeof in->st->cursor, "total=%" PRIu64 ";%s", last->total, last->cursor);
		in->st->total = last->total;
		if (sl_topic_cursor_put(in->state, in->cursor_name, in->st->cursor, &err))
			sl_warn("ingest", "pipeline %s: cannot save cursor: %s", in->p->name, err.msg);
	}
}

static void on_delivery(void *ctx, void *opaque, int err, const char *errmsg, int32_t partition, int64_t offset)
{
	struct ingest *in = ctx;
	uint64_t seq = (uint64_t)(uintptr_t)opaque >> 1;
	bool to_dlq = (uintptr_t)opaque & 1;
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
	} else if (to_dlq) {
		in->st->dlq++;
		sl_live.dlq++;
		sl_counter_add(in->m.ingest_dlq, 1);
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
		bool to_dlq = m->topic == in->p->dlq_topic;
		int rc = prod->ops->produce(prod, m, (void *)(uintptr_t)(s->seq << 1 | to_dlq), 1000, err);
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

/* The page as it was asked for (the URL, redacted; the generator's position), never an internal index. */
static const char *page_name(const struct sl_page *pg)
{
	return pg->url && *pg->url ? pg->url : "(page)";
}

/* A page or a record for the dead-letter topic, within the source's dlq_max_bytes for this run; beyond it the entry
 * is dropped and counted, so a broken API cannot fill the log. A page is cut to its first DLQ_PAGE_MAX bytes. */
#define DLQ_PAGE_MAX (256 * 1024)
static int dead_letter(struct ingest *in, struct sl_producer *prod, struct page_slot *slot, struct sl_msg *m,
		       int64_t max_bytes, const volatile sig_atomic_t *stop, struct sl_err *err)
{
	if (m->value_len > DLQ_PAGE_MAX)
		m->value_len = DLQ_PAGE_MAX;
	if (max_bytes > 0 && in->dlq_bytes + m->value_len > (uint64_t)max_bytes) {
		if (!in->st->dlq_dropped)
			sl_warn("ingest", "pipeline %s: dead-letter entries of this run reached dlq_max_bytes (%" PRId64
				" bytes); further ones are dropped and counted (sluice_ingest_dlq_dropped_total)",
				in->p->name, max_bytes);
		in->st->dlq_dropped++;
		sl_counter_add(in->m_dlq_dropped, 1);
		return 0;
	}
	in->dlq_bytes += m->value_len;
	m->topic = in->p->dlq_topic;
	return produce(in, prod, slot, m, stop, err);
}

static void progress(const struct sl_pipeline *p, const struct sl_ingest_stats *st, double t0, bool final)
{
	double dt = sl_mono_s() - t0;
	sl_pipeline_progress(final, "ingest %s: %" PRIu64 " pages, %" PRIu64 " records, %" PRIu64 " delivered, %" PRIu64
		    " dlq, %" PRIu64 " dlq dropped, %" PRIu64 " undelivered, %.0f rec/s", p->name, st->pages,
		    st->records, st->delivered, st->dlq, st->dlq_dropped, st->delivery_failures,
		    dt > 0 ? (double)st->delivered / dt : 0);
}

static const char *json_type_name(struct sl_json_val v)
{
	switch (sl_json_type(v)) {
	case SL_JSON_OBJECT: return "an object";
	case SL_JSON_ARRAY: return "an array";
	case SL_JSON_STRING: return "a string";
	case SL_JSON_NULL: return "null";
	case SL_JSON_BOOL: return "a boolean";
	default: return "a number";
	}
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
	char labels[200];
	snprintf(labels, sizeof labels, "pipeline=\"%s\"", p->name);
	in.m_dlq_dropped = sl_counter(sl_metrics_global(), "sluice_ingest_dlq_dropped_total", labels,
				      "Dead-letter entries dropped because the run reached the source's dlq_max_bytes");
	in.m_bad_pages = sl_counter(sl_metrics_global(), "sluice_ingest_bad_pages_total", labels,
				    "Pages that were not JSON, had no records array at records_path, or no usable record");
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
	bool source_ended = false;
	int rc = sl_pipeline_topics(c, &ts, err);
	if (rc)
		goto out_noclose;
	in.state = ts;
	snprintf(in.cursor_name, sizeof in.cursor_name, "ingest:%s", p->name);
	char saved[SL_CURSOR_MAX_TEXT] = "";
	uint64_t total = 0;
	bool have_resume = sl_topic_cursor_get(ts, in.cursor_name, saved, sizeof saved, NULL) == 0;
	const char *resume = split_saved(saved, &total);
	st->total = total;
	if (have_resume)
		sl_info("ingest", "pipeline %s resumes after cursor %s (%" PRIu64 " records taken so far)", p->name, resume,
			total);
	bool avro = !strcmp(p->format, "avro");
	if ((avro && (rc = avro_register(c, p, &reg, &avro_id, err))) ||
	    (rc = sl_source_new(p->name, p->source, have_resume && *resume ? resume : NULL, &src, err)) ||
	    (rc = ts->ops->ensure_topic(ts, p->topic, (int)p->partitions, (int)p->replication, err)) ||
	    (rc = ts->ops->ensure_topic(ts, p->dlq_topic, 1, (int)p->replication, err)) ||
	    (rc = ts->ops->producer(ts, on_delivery, &in, &prod, err)) ||
	    (rc = sl_json_parser_new(&jp, SL_JSON_DEFAULT_MAX_BYTES, SL_JSON_DEFAULT_MAX_DEPTH, err)))
		goto out;
	/* The total: the source's count, or --count (across runs unless --count-per-run), the smaller when both. */
	int64_t limit = src->count;
	int64_t per_run = o->count_per_run ? o->count : 0;
	if (o->count && !o->count_per_run && (!limit || o->count < limit))
		limit = o->count;
	st->total_limit = limit;
	if (limit && total >= (uint64_t)limit) {
		sl_info("ingest", "pipeline %s: %" PRIu64 " of %" PRId64 " records already taken (count); nothing to do",
			p->name, total, limit);
		st->total_reached = true;
	}
	const struct sl_schema *schema = sl_mapping_schema(p->map);
	while (!st->total_reached) {
		if (o->stop && *o->stop)
			break;
		if (o->for_ms && (sl_mono_s() - t0) * 1000 >= (double)o->for_ms)
			break;
		if (per_run && st->records >= (uint64_t)per_run)
			break;
		if (in.fatal)
			break;
		struct sl_page page;
		memset(&page, 0, sizeof page);
		rc = src->ops->next_page(src, &page, err);
		/* SL_ETOOBIG with the page filled in: the source stepped past a response over its size cap (http.c,
		 * which counted it as a bad page); a note of it goes to the DLQ and the stream goes on. */
		char fetch_err[SL_ERR_MSG_MAX] = "";
		if (rc == SL_ETOOBIG && page.url) {
			snprintf(fetch_err, sizeof fetch_err, "%s", err->msg);
			memset(err, 0, sizeof *err);
			rc = 0;
		}
		if (rc == SL_ENOTFOUND) {
			rc = 0;
			source_ended = true;
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
		struct page_slot *slot = slot_push(&in, page.seq, page.cursor, total);
		if (!slot) {
			rc = sl_err_set(err, SL_ENOMEM, "out of memory");
			goto out;
		}
		struct sl_json_val root, arr, item;
		struct sl_err perr = {0};
		char pb[16], ob[24];
		struct sl_header h[6];
		/* Shape first: the records must be an array (or one object with single_record), else the page is
		 * one dead-letter entry and no rows; the source hears the verdict (its circuit breaker). */
		bool page_bad = false;
		if (fetch_err[0]) {
			sl_pipeline_dlq_headers(h, "fetch", fetch_err, p->name, NULL, pb, -1, ob, -1);
			struct sl_msg m = {.partition = -1, .value = page.url, .value_len = strlen(page.url),
					   .headers = h, .n_headers = 6};
			if ((rc = dead_letter(&in, prod, slot, &m, src->dlq_max_bytes, o->stop, err)))
				goto out;
			st->bad_pages++;
			sl_counter_add(in.m_bad_pages, 1);
			slot->closed = true;
			advance_cursor(&in);
			continue;
		}
		if (sl_json_parse(jp, page.body, page.len, &root, &perr) != 0) {
			const char *b = page.body;
			size_t k = 0;
			while (k < page.len && (b[k] == ' ' || b[k] == '\n' || b[k] == '\r' || b[k] == '\t'))
				k++;
			sl_err_set(&perr, SL_EINVAL, "the response is not JSON%s (%s)",
				   k < page.len && b[k] == '<' ? ", it looks like HTML" : "", perr.msg);
			page_bad = true;
		} else if (src->records_path && !sl_json_path(root, src->records_path, strlen(src->records_path), &arr)) {
			sl_err_set(&perr, SL_EINVAL, "no %s in the response (records_path)", src->records_path);
			page_bad = true;
		} else {
			if (!src->records_path)
				arr = root;
			bool is_arr = sl_json_type(arr) == SL_JSON_ARRAY, is_obj = sl_json_type(arr) == SL_JSON_OBJECT;
			if (src->single_record ? !is_obj : !is_arr) {
				sl_err_set(&perr, SL_EINVAL, "%s is %s, not %s%s", src->records_path ? src->records_path : "$",
					   json_type_name(arr), src->single_record ? "an object (single_record)" : "an array",
					   !src->single_record && is_obj ? " (set single_record: true if each response is "
									   "one record)" : "");
				page_bad = true;
			}
		}
		if (page_bad) {
			/* The whole page is unusable: keep it (its head) in the DLQ with the reason. */
			sl_err_prefix(&perr, "%s: ", page_name(&page));
			sl_warn("ingest", "pipeline %s: %s", p->name, perr.msg);
			sl_pipeline_dlq_headers(h, "parse", perr.msg, p->name, NULL, pb, -1, ob, -1); /* the URL is in the error */
			struct sl_msg m = {.partition = -1, .value = page.body, .value_len = page.len, .headers = h,
					   .n_headers = 6};
			if ((rc = dead_letter(&in, prod, slot, &m, src->dlq_max_bytes, o->stop, err)))
				goto out;
			st->bad_pages++;
			sl_counter_add(in.m_bad_pages, 1);
			if (src->ops->page_verdict)
				src->ops->page_verdict(src, true, perr.msg);
		} else {
			struct sl_json_iter it;
			bool is_array = sl_json_type(arr) == SL_JSON_ARRAY;
			uint64_t idx = 0, objects = 0, rows = 0;
			if (is_array)
				sl_json_iter_init(&it, arr);
			while (is_array ? sl_json_array_next(&it, &item) : (idx == 0 && (item = arr, true))) {
				/* Exactly the total, across runs: the rest of the page is left. */
				if ((limit && total >= (uint64_t)limit) || (per_run && st->records >= (uint64_t)per_run))
					break;
				struct sl_record rec;
				struct sl_err merr = {0};
				st->records++;
				total++;
				sl_live.ingested++;
				sl_counter_add(in.m.records, 1);
				sl_arena_reset(&arena);
				int mrc = 0;
				if (!src->any_records && sl_json_type(item) != SL_JSON_OBJECT)
					/* 1, "x", null, [] would map to a row of NULLs (and a random key): never a row */
					mrc = sl_err_set(&merr, SL_ETYPE, "the record is %s, not an object (record_type: "
							 "object)", json_type_name(item));
				else
					objects++;
				if (mrc == 0)
					mrc = sl_mapping_apply(p->map, item, &env, &arena, &rec, &merr);
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
					rows++;
					rc = produce(&in, prod, slot, &m, o->stop, err);
				} else {
					sl_buf_reset(&raw);
					sl_json_render(item, &raw);
					sl_err_prefix(&merr, "%s record %" PRIu64 ": ", page_name(&page), idx);
					sl_debug("ingest", "pipeline %s: %s", p->name, merr.msg);
					sl_pipeline_dlq_headers(h, "map", merr.msg, p->name, NULL, pb, -1, ob, (int64_t)idx);
					m.value = raw.data;
					m.value_len = raw.len;
					m.headers = h;
					m.n_headers = 6;
					rc = dead_letter(&in, prod, slot, &m, src->dlq_max_bytes, o->stop, err);
				}
				if (rc)
					goto out;
				idx++;
			}
			slot->total = total;
			if (src->ops->page_verdict) {
				if (idx > 0 && rows == 0) {
					/* Nothing usable in a page of records (not objects, or none maps) is a bad page
					 * too: a broken API or a mapping that fits nothing, which should not run on. */
					char why[300];
					snprintf(why, sizeof why, "none of its %" PRIu64 " records could be used (%" PRIu64
						 " not JSON objects); see the dead-letter topic", idx, idx - objects);
					st->bad_pages++;
					sl_counter_add(in.m_bad_pages, 1);
					src->ops->page_verdict(src, true, why);
				} else {
					src->ops->page_verdict(src, false, NULL);
				}
			}
			if (limit && total >= (uint64_t)limit)
				st->total_reached = true;
		}
		slot->closed = true;
		prod->ops->poll(prod, 0);
		advance_cursor(&in);
		if (o->progress && sl_mono_s() - last_progress >= 1) {
			last_progress = sl_mono_s();
			progress(p, st, t0, false);
		}
	}
	if (st->total_reached)
		sl_info("ingest", "pipeline %s: reached the total of %" PRId64 " records (count)", p->name, limit);
out:
	if (prod) {
		final_flush(&in, prod, ts, o->stop);
		prod->ops->destroy(prod);
	}
	if (src) {
		st->requests = src->stats.requests;
		st->retries = src->stats.retries;
		source_ended |= src->stats.ends > 0;
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
	/* Nothing delivered is a failure (ingest --help), unless there was nothing to take: the source said its
	 * pages ended, or the total was already reached. */
	if (rc == 0 && st->delivered == 0 && (st->records > 0 || !(source_ended || st->total_reached)))
		rc = sl_err_set(err, SL_EIO, "pipeline %s: nothing was delivered in %.1f s (%" PRIu64 " pages, %" PRIu64
				" records, %" PRIu64 " to the dead-letter topic)", p->name, st->seconds, st->pages,
				st->records, st->dlq);
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
