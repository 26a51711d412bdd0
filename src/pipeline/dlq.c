/* The dead-letter topic from the operator's side: list what is in it (with the reason each record carries in its
 * headers) and replay it. A record that failed its mapping or parse (stage map/parse: the raw source record) is mapped
 * again and, if it fits now, published to the pipeline's topic; a record that failed later (stage decode/sink: already
 * a topic payload) is published back to the topic as it is, for the processor to try again. Reading never commits, so
 * listing is free of side effects and a replay can be repeated (`from` skips what was replayed before). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec/json.h"
#include "codec/record_json.h"
#include "core/log.h"
#include "pipeline/runtime.h"

struct replay_ctx {
	uint64_t delivered, failed;
	char last_error[SL_ERR_MSG_MAX];
};

static void on_replay_delivery(void *ctx, void *opaque, int err, const char *errmsg, int32_t partition, int64_t offset)
{
	struct replay_ctx *r = ctx;
	(void)opaque, (void)partition, (void)offset;
	if (err) {
		r->failed++;
		snprintf(r->last_error, sizeof r->last_error, "%s", errmsg ? errmsg : sl_strerror(err));
	} else
		r->delivered++;
}

static const char *header(const struct sl_msg *m, const char *key, char *buf, size_t bufsz)
{
	for (size_t i = 0; i < m->n_headers; i++)
		if (!strcmp(m->headers[i].key, key)) {
			size_t n = m->headers[i].value_len < bufsz - 1 ? m->headers[i].value_len : bufsz - 1;
			memcpy(buf, m->headers[i].value, n);
			buf[n] = '\0';
			return buf;
		}
	snprintf(buf, bufsz, "?");
	return buf;
}

static int high_watermark(struct sl_topic_store *ts, const char *topic, int64_t *hw, struct sl_err *err)
{
	int64_t lo;
	return ts->ops->watermarks(ts, topic, 0, &lo, hw, err);
}

int sl_dlq_run(struct sl_conf *c, struct sl_pipeline *p, bool replay, int64_t from, int64_t limit,
	       struct sl_dlq_stats *st, FILE *out, struct sl_err *err)
{
	return sl_dlq_run_select(c, p, replay, NULL, from, limit, st, out, err);
}

static bool selected(const struct sl_dlq_select *sel, int64_t offset, const char *stage, const char *reason)
{
	if (!sel)
		return true;
	if (sel->noffsets) {
		size_t i = 0;
		while (i < sel->noffsets && sel->offsets[i] != offset)
			i++;
		if (i == sel->noffsets)
			return false;
	}
	if (sel->reason && *sel->reason && !strstr(reason, sel->reason))
		return false;
	return !(sel->stage && *sel->stage && strcmp(stage, sel->stage));
}

int sl_dlq_run_select(struct sl_conf *c, struct sl_pipeline *p, bool replay, const struct sl_dlq_select *sel,
		      int64_t from, int64_t limit, struct sl_dlq_stats *st, FILE *out, struct sl_err *err)
{
	if (sel && sel->dry_run)
		replay = false;
	/* A selection by offsets starts at its smallest one (the rest of the topic is not read). */
	if (sel && sel->noffsets) {
		int64_t lo = sel->offsets[0];
		for (size_t i = 1; i < sel->noffsets; i++)
			if (sel->offsets[i] < lo)
				lo = sel->offsets[i];
		if (lo > from)
			from = lo;
	}
	memset(st, 0, sizeof *st);
	struct sl_topic_store *ts = NULL;
	struct sl_consumer *cons = NULL;
	struct sl_producer *prod = NULL;
	struct sl_json_parser *jp = NULL;
	struct replay_ctx rctx = {0};
	struct sl_mapping_env env;
	struct sl_arena arena;
	struct sl_buf payload, key;
	sl_mapping_env_init(&env);
	sl_arena_init(&arena, 64 * 1024);
	sl_buf_init(&payload);
	sl_buf_init(&key);
	struct sl_msg msgs[256];
	int rc = sl_pipeline_topics(c, &ts, err);
	if (rc)
		goto done;
	int64_t hw = 0;
	if ((rc = ts->ops->ensure_topic(ts, p->dlq_topic, 1, (int)p->replication, err)) ||
	    (rc = high_watermark(ts, p->dlq_topic, &hw, err)))
		goto out;
	/* A reader of its own that never commits: a fresh group name each time. */
	char group[300];
	snprintf(group, sizeof group, "sluice-dlq-reader-%s-%lld-%d", p->name, (long long)sl_now_ms(), (int)getpid());
	if ((rc = ts->ops->consumer(ts, group, p->dlq_topic, &cons, err)))
		goto out;
	if (replay && ((rc = ts->ops->ensure_topic(ts, p->topic, (int)p->partitions, (int)p->replication, err)) ||
		       (rc = ts->ops->producer(ts, on_replay_delivery, &rctx, &prod, err)) ||
		       (rc = sl_json_parser_new(&jp, SL_JSON_DEFAULT_MAX_BYTES, SL_JSON_DEFAULT_MAX_DEPTH, err))))
		goto out;
	st->high_watermark = hw;
	int64_t next = 0;
	double idle_since = sl_mono_s();
	while (next < hw && (!limit || st->listed < (uint64_t)limit)) {
		int n = cons->ops->poll(cons, msgs, 256, 500, err);
		if (n < 0) {
			rc = n;
			goto out;
		}
		if (n == 0) {
			if (sl_mono_s() - idle_since > 30) {
				rc = sl_err_set(err, SL_ETIMEDOUT, "dead-letter topic %s: no record after offset %lld of %lld "
						"within 30 s", p->dlq_topic, (long long)next, (long long)hw);
				goto out;
			}
			continue;
		}
		idle_since = sl_mono_s();
		for (int i = 0; i < n; i++) {
			struct sl_msg *m = &msgs[i];
			next = m->offset + 1;
			if (m->offset < from || (limit && st->listed >= (uint64_t)limit))
				continue;
			char stage[32], reason[1024], src[128], soff[32], spart[16];
			header(m, "sluice.stage", stage, sizeof stage);
			header(m, "sluice.error", reason, sizeof reason);
			if (!selected(sel, m->offset, stage, reason))
				continue;
			st->listed++;
			header(m, "sluice.topic", src, sizeof src);
			header(m, "sluice.partition", spart, sizeof spart);
			header(m, "sluice.offset", soff, sizeof soff);
			if (!replay && !out)
				continue; /* a dry run: counted only */
			if (!replay) {
				fprintf(out, "%" PRId64 "\t%s\t%s%s%s%s%s\t%s\t", m->offset, stage, src[0] && strcmp(src, "?") ? src : "",
					src[0] && strcmp(src, "?") ? "[" : "", src[0] && strcmp(src, "?") ? spart : "",
					src[0] && strcmp(src, "?") ? "]@" : "", src[0] && strcmp(src, "?") ? soff : "-", reason);
				size_t show = m->value_len > 160 ? 160 : m->value_len;
				for (size_t k = 0; k < show; k++) {
					char ch = ((const char *)m->value)[k];
					fputc(ch == '\n' || ch == '\t' ? ' ' : ch, out);
				}
				fputs(m->value_len > show ? "...\n" : "\n", out);
				continue;
			}
			struct sl_msg o = {.topic = p->topic, .partition = -1};
			if (!strcmp(stage, "map")) {
				struct sl_json_val root;
				struct sl_record rec;
				struct sl_err merr = {0};
				sl_arena_reset(&arena);
				sl_buf_reset(&payload);
				sl_buf_reset(&key);
				if (sl_json_parse(jp, m->value, m->value_len, &root, &merr) ||
				    sl_mapping_apply(p->map, root, &env, &arena, &rec, &merr) ||
				    sl_record_to_json(&rec, &payload, &merr) ||
				    (sl_mapping_schema(p->map)->key >= 0 && sl_record_key(&rec, &key, &merr))) {
					st->still_failing++;
					if (out)
						fprintf(out, "%" PRId64 "\tstill fails: %s\n", m->offset, merr.msg);
					continue;
				}
				o.key = key.data;
				o.key_len = key.len;
				o.value = payload.data;
				o.value_len = payload.len;
			} else if (!strcmp(stage, "decode") || !strcmp(stage, "sink")) {
				o.key = m->key;
				o.key_len = m->key_len;
				o.value = m->value;
				o.value_len = m->value_len;
			} else {
				/* A whole page that did not parse: nothing to replay record by record. */
				st->still_failing++;
				if (out)
					fprintf(out, "%" PRId64 "\tnot replayable (stage %s): %s\n", m->offset, stage, reason);
				continue;
			}
			while ((rc = prod->ops->produce(prod, &o, NULL, 1000, err)) == SL_EFULL)
				prod->ops->poll(prod, 100);
			if (rc)
				goto out;
			st->replayed++;
		}
	}
	if (prod && (rc = prod->ops->flush(prod, 60000, err)) == 0) {
		prod->ops->poll(prod, 0);
		if (rctx.failed)
			rc = sl_err_set(err, SL_EIO, "%" PRIu64 " replayed records were not delivered: %s", rctx.failed,
					rctx.last_error);
	}
	st->next_offset = next;
out:
	if (prod) {
		prod->ops->flush(prod, 1000, NULL);
		prod->ops->destroy(prod);
	}
	if (cons)
		cons->ops->destroy(cons);
	sl_topic_store_close(ts);
done:
	sl_json_parser_free(jp);
	sl_mapping_env_free(&env);
	sl_arena_free(&arena);
	sl_buf_free(&payload);
	sl_buf_free(&key);
	return rc;
}
