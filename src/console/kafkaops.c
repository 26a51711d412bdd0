/* The operator's actions on the log, beside the Kafka page: create a topic, add partitions to one, view and change
 * its configuration, produce a test message, and reset a consumer group's offsets (with a dry run). They go through topic/ like everything else that touches the log (the
 * same code on Kafka and on the embedded default), on a store opened for the action and closed after it (the
 * collector's is a read-only inspector). Each is behind the operator role and audited (audit.c) with what it did or
 * why it did not. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/json.h"
#include "console/internal.h"
#include "core/httpauth.h"
#include "core/ident.h"
#include "topic/topic.h"

static void kerror(struct sl_con_resp *rs, int status, const char *msg)
{
	rs->status = status;
	rs->ctype = "application/json";
	sl_buf_reset(&rs->body);
	sl_buf_puts(&rs->body, "{\"error\":");
	sl_buf_json_str(&rs->body, msg, strlen(msg));
	sl_buf_puts(&rs->body, "}");
}

static int status_of(int code)
{
	return code == SL_EINVAL ? 400 : code == SL_ENOTFOUND ? 404 : 503;
}

/* An action the log refused: the error (paths scrubbed) as the answer, with status, and as the audit's detail
 * (detail may be NULL). */
static void log_refused(struct sl_console *c, struct sl_con_resp *rs, int status, struct sl_err *err, char *detail,
		    size_t dsz)
{
	sl_con_scrub_paths(c, err->msg, sizeof err->msg);
	kerror(rs, status, err->msg);
	if (detail)
		snprintf(detail, dsz, "%s", err->msg);
}

/* A string member into dst (absent or null: ""); false when it is another type or too long. */
static bool get_str(struct sl_json_val root, const char *key, char *dst, size_t cap, bool *present)
{
	struct sl_json_val v;
	const char *s;
	size_t n;
	dst[0] = 0;
	if (present)
		*present = false;
	if (!sl_json_get(root, key, strlen(key), &v) || sl_json_is_null(v))
		return true;
	if (sl_json_str(v, &s, &n) || n >= cap)
		return false;
	memcpy(dst, s, n);
	dst[n] = 0;
	if (present)
		*present = true;
	return true;
}

static bool get_int(struct sl_json_val root, const char *key, int64_t def, int64_t lo, int64_t hi, int64_t *out)
{
	struct sl_json_val v;
	*out = def;
	if (!sl_json_get(root, key, strlen(key), &v) || sl_json_is_null(v))
		return true;
	return !sl_json_int64(v, out) && *out >= lo && *out <= hi;
}

static int open_store(struct sl_console *c, struct sl_topic_store **out, struct sl_err *err)
{
	return sl_topic_store_open(c->conf->kafka, c->conf->data_dir, 0, out, err);
}

/* POST /api/kafka/topics {"topic":NAME, "partitions":N, "replication":R}: creates a topic; 409 when it exists. */
static void create_topic(struct sl_console *c, struct sl_json_val root, struct sl_con_resp *rs, char *detail,
			 size_t dsz, char *target, size_t tsz)
{
	char topic[256];
	int64_t parts, repl;
	struct sl_err err = {0};
	if (!get_str(root, "topic", topic, sizeof topic, NULL) || !get_int(root, "partitions", 1, 1, 10000, &parts) ||
	    !get_int(root, "replication", -1, -1, 32, &repl)) {
		kerror(rs, 400, "give topic (a string), partitions (1..10000) and replication (1..32, or none for the "
				"broker's default)");
		snprintf(detail, dsz, "bad request");
		return;
	}
	snprintf(target, tsz, "%s", topic);
	if (sl_ident_check(SL_IDENT_TOPIC, topic, strlen(topic), &err)) {
		kerror(rs, 400, err.msg);
		snprintf(detail, dsz, "%s", err.msg);
		return;
	}
	struct sl_topic_store *ts = NULL;
	int rc = open_store(c, &ts, &err), np = 0;
	bool exists = false;
	if (!rc) {
		int prc = ts->ops->partitions(ts, topic, &np, &err);
		if ((exists = prc == 0 && np > 0))
			rc = sl_err_set(&err, SL_EINVAL, "topic %s exists already (%d partitions)", topic, np);
		else if (prc && prc != SL_ENOTFOUND)
			rc = prc;
		else
			rc = ts->ops->ensure_topic(ts, topic, (int)parts, (int)repl, &err);
	}
	if (!rc)
		rc = ts->ops->partitions(ts, topic, &np, &err);
	sl_topic_store_close(ts);
	if (rc) {
		log_refused(c, rs, exists ? 409 : status_of(rc), &err, detail, dsz);
		return;
	}
	rs->status = 201;
	sl_buf_puts(&rs->body, "{\"topic\":");
	sl_buf_json_str(&rs->body, topic, strlen(topic));
	sl_buf_printf(&rs->body, ",\"partitions\":%d}", np);
	snprintf(detail, dsz, "created with %d partitions%s", np, repl > 0 ? "" : " (replication: the broker's default)");
}

struct delivery {
	int err;
	char msg[256];
	int32_t partition;
	int64_t offset;
	bool done;
};

static void delivered(void *ctx, void *opaque, int err, const char *errmsg, int32_t partition, int64_t offset)
{
	(void)opaque;
	struct delivery *d = ctx;
	d->err = err;
	snprintf(d->msg, sizeof d->msg, "%s", errmsg ? errmsg : "");
	d->partition = partition;
	d->offset = offset;
	d->done = true;
}

#define PRODUCE_HEADERS_MAX 32

/* POST /api/kafka/produce {"topic":NAME, "partition":N, "key":TEXT, "value":TEXT, "headers":{NAME:TEXT}}: one
 * message into an existing topic (never creates one), answered with where it landed. */
static void produce(struct sl_console *c, struct sl_json_val root, struct sl_con_resp *rs, char *detail, size_t dsz,
		    char *target, size_t tsz)
{
	char topic[256];
	const char *key = NULL, *value = NULL;
	size_t klen = 0, vlen = 0;
	int64_t part;
	struct sl_header hs[PRODUCE_HEADERS_MAX];
	char hkeys[PRODUCE_HEADERS_MAX][128];
	size_t nh = 0;
	const char *bad = NULL;
	struct sl_json_val v;
	if (!get_str(root, "topic", topic, sizeof topic, NULL) || !topic[0])
		bad = "topic is required (a string)";
	else if (!get_int(root, "partition", -1, -1, 100000, &part))
		bad = "partition is a partition number (or none: by key)";
	else if (sl_json_get(root, "key", 3, &v) && !sl_json_is_null(v) && sl_json_str(v, &key, &klen))
		bad = "key is a string or null";
	else if (!sl_json_get(root, "value", 5, &v) || sl_json_str(v, &value, &vlen))
		bad = "value is required (a string)";
	if (!bad && sl_json_get(root, "headers", 7, &v) && !sl_json_is_null(v)) {
		struct sl_json_iter it;
		const char *k;
		size_t kl;
		struct sl_json_val hv;
		if (!sl_json_iter_init(&it, v) || sl_json_type(v) != SL_JSON_OBJECT)
			bad = "headers is an object of strings";
		while (!bad && sl_json_object_next(&it, &k, &kl, &hv)) {
			const char *s;
			size_t n;
			if (nh == PRODUCE_HEADERS_MAX || kl >= sizeof hkeys[0] || sl_json_str(hv, &s, &n))
				bad = "headers is an object of strings (at most 32, names under 128 bytes)";
			else {
				memcpy(hkeys[nh], k, kl);
				hkeys[nh][kl] = 0;
				hs[nh] = (struct sl_header){.key = hkeys[nh], .value = s, .value_len = n};
				nh++;
			}
		}
	}
	snprintf(target, tsz, "%s", topic);
	if (bad) {
		kerror(rs, 400, bad);
		snprintf(detail, dsz, "%s", bad);
		return;
	}
	struct sl_err err = {0};
	struct sl_topic_store *ts = NULL;
	struct sl_producer *p = NULL;
	struct delivery d = {0};
	int np = 0;
	int rc = open_store(c, &ts, &err);
	if (!rc)
		rc = ts->ops->partitions(ts, topic, &np, &err);
	if (!rc && np <= 0)
		rc = sl_err_set(&err, SL_ENOTFOUND, "no topic %s", topic);
	if (!rc && part >= np)
		rc = sl_err_set(&err, SL_ENOTFOUND, "topic %s has no partition %" PRId64 " (it has %d)", topic, part, np);
	if (!rc)
		rc = ts->ops->producer(ts, delivered, &d, &p, &err);
	if (!rc) {
		struct sl_msg m = {.topic = topic, .partition = (int32_t)part, .offset = -1,
				   .timestamp_ms = sl_con_now_ms(), .key = key, .key_len = klen, .value = value,
				   .value_len = vlen, .headers = hs, .n_headers = nh};
		rc = p->ops->produce(p, &m, NULL, 10000, &err);
	}
	if (!rc)
		rc = p->ops->flush(p, 15000, &err);
	if (!rc && !d.done)
		rc = sl_err_set(&err, SL_ETIMEDOUT, "no delivery report for the message within 15 s");
	if (!rc && d.err)
		rc = sl_err_set(&err, d.err, "not delivered: %s", d.msg);
	if (p)
		p->ops->destroy(p);
	sl_topic_store_close(ts);
	if (rc) {
		log_refused(c, rs, status_of(rc), &err, detail, dsz);
		return;
	}
	sl_buf_puts(&rs->body, "{\"topic\":");
	sl_buf_json_str(&rs->body, topic, strlen(topic));
	sl_buf_printf(&rs->body, ",\"partition\":%" PRId32 ",\"offset\":%" PRId64 "}", d.partition, d.offset);
	snprintf(detail, dsz, "produced %zu-byte value%s to partition %" PRId32 " at offset %" PRId64, vlen,
		 key ? " with a key" : "", d.partition, d.offset);
}

static bool first_offset(void *ctx, const struct sl_msg *m)
{
	*(int64_t *)ctx = m->offset;
	return false;
}

/* POST /api/kafka/groups/reset {"group":G, "topic":T, "to":"earliest"|"latest"|"time"|"offset", "timestamp":MS,
 * "offset":N, "dry_run":bool}: moves a consumer group's committed offsets on a topic, each partition to its
 * earliest or latest offset, the first at or after a time, or a given offset (held within the partition). The dry
 * run answers the effect per partition and changes nothing; the reset itself is refused while the group has
 * members (they would commit over it). */
static void reset_group(struct sl_console *c, struct sl_json_val root, struct sl_con_resp *rs, char *detail,
			size_t dsz, char *target, size_t tsz, bool *dry_out)
{
	char group[256], topic[256], to[16];
	int64_t ts, off;
	bool dry = false;
	struct sl_json_val v;
	const char *bad = NULL;
	if (!get_str(root, "group", group, sizeof group, NULL) || !group[0] ||
	    !get_str(root, "topic", topic, sizeof topic, NULL) || !topic[0])
		bad = "group and topic are required (strings)";
	else if (!get_str(root, "to", to, sizeof to, NULL) ||
		 (strcmp(to, "earliest") && strcmp(to, "latest") && strcmp(to, "time") && strcmp(to, "offset")))
		bad = "to is earliest, latest, time (with timestamp) or offset (with offset)";
	else if (!get_int(root, "timestamp", -1, 0, INT64_MAX, &ts) || (!strcmp(to, "time") && ts < 0))
		bad = "timestamp is milliseconds since the epoch";
	else if (!get_int(root, "offset", -1, 0, INT64_MAX, &off) || (!strcmp(to, "offset") && off < 0))
		bad = "offset is an offset (0 or more)";
	else if (sl_json_get(root, "dry_run", 7, &v) && sl_json_bool(v, &dry))
		bad = "dry_run is true or false";
	*dry_out = dry;
	snprintf(target, tsz, "%s on %s", group, topic);
	if (bad) {
		kerror(rs, 400, bad);
		snprintf(detail, dsz, "%s", bad);
		return;
	}
	struct sl_err err = {0};
	struct sl_topic_store *ts_ = NULL;
	struct sl_topic_part *parts = NULL, *cur = NULL;
	int np = 0, members = -1;
	int rc = open_store(c, &ts_, &err);
	if (!rc)
		rc = ts_->ops->partitions(ts_, topic, &np, &err);
	if (!rc && np <= 0)
		rc = sl_err_set(&err, SL_ENOTFOUND, "no topic %s", topic);
	if (!rc && (!ts_->ops->group_members || !ts_->ops->commit_group))
		rc = sl_err_set(&err, SL_EINVAL, "the %s log cannot reset group offsets", ts_->backend);
	if (!rc && !(parts = calloc((size_t)np, sizeof *parts)))
		rc = sl_err_set(&err, SL_ENOMEM, "out of memory");
	if (!rc && !(cur = calloc((size_t)np, sizeof *cur)))
		rc = sl_err_set(&err, SL_ENOMEM, "out of memory");
	for (int i = 0; !rc && i < np; i++) {
		cur[i].partition = parts[i].partition = i;
		rc = ts_->ops->watermarks(ts_, topic, i, &parts[i].low, &parts[i].high, &err);
	}
	if (!rc)
		rc = ts_->ops->committed(ts_, group, topic, cur, np, &err);
	for (int i = 0; !rc && i < np; i++) {
		struct sl_topic_part *p = &parts[i];
		if (!strcmp(to, "earliest"))
			p->committed = p->low;
		else if (!strcmp(to, "latest"))
			p->committed = p->high;
		else if (!strcmp(to, "offset"))
			p->committed = off < p->low ? p->low : off > p->high ? p->high : off;
		else {
			int64_t first = -1, next = 0;
			rc = ts_->ops->browse(ts_, topic, i, 0, ts, 1, 5000, first_offset, &first, &next, &err);
			p->committed = first >= 0 ? first : p->high; /* nothing at or after the time: the end */
		}
	}
	if (!rc)
		rc = ts_->ops->group_members(ts_, group, &members, &err);
	bool refused = !rc && !dry && members > 0;
	if (!rc && !dry && !refused)
		rc = ts_->ops->commit_group(ts_, group, topic, parts, np, &err);
	if (rc) {
		log_refused(c, rs, status_of(rc), &err, detail, dsz);
	} else if (refused) {
		snprintf(detail, dsz, "refused: the group has %d member%s (stop its consumers first)", members,
			 members == 1 ? "" : "s");
		kerror(rs, 409, detail);
	} else {
		int64_t moved = 0;
		struct sl_buf *b = &rs->body;
		sl_buf_puts(b, "{\"group\":");
		sl_buf_json_str(b, group, strlen(group));
		sl_buf_puts(b, ",\"topic\":");
		sl_buf_json_str(b, topic, strlen(topic));
		sl_buf_printf(b, ",\"to\":\"%s\",\"dry_run\":%s,\"members\":", to, dry ? "true" : "false");
		if (members >= 0)
			sl_buf_printf(b, "%d", members);
		else
			sl_buf_puts(b, "null,\"note\":\"the embedded log does not know which consumers are running: stop the "
				       "pipeline's processor first, or it commits over the reset\"");
		sl_buf_puts(b, ",\"partitions\":[");
		for (int i = 0; i < np; i++) {
			int64_t from = cur[i].committed;
			/* no commit yet: a consumer would start from the earliest offset (auto.offset.reset) */
			int64_t eff = from >= 0 ? from : parts[i].low;
			moved += parts[i].committed - eff;
			sl_buf_printf(b, "%s{\"partition\":%d,\"low\":%" PRId64 ",\"high\":%" PRId64 ",\"current\":", i ? "," : "",
				      i, parts[i].low, parts[i].high);
			if (from >= 0)
				sl_buf_printf(b, "%" PRId64, from);
			else
				sl_buf_puts(b, "null");
			sl_buf_printf(b, ",\"new\":%" PRId64 ",\"change\":%" PRId64 ",\"lag_after\":%" PRId64 "}",
				      parts[i].committed, parts[i].committed - eff, parts[i].high - parts[i].committed);
		}
		sl_buf_puts(b, "]}");
		snprintf(detail, dsz, "%sto %s: %d partition%s, offsets moved by %" PRId64 " in all", dry ? "dry run, " : "",
			 to, np, np == 1 ? "" : "s", moved);
	}
	free(parts);
	free(cur);
	sl_topic_store_close(ts_);
}

/* POST /api/kafka/topics/partitions {"topic", "partitions": the new total}: never fewer (Kafka cannot take them away). */
static void add_partitions(struct sl_console *c, struct sl_json_val root, struct sl_con_resp *rs, char *detail,
			   size_t dsz, char *target, size_t tsz)
{
	char topic[256];
	int64_t total;
	struct sl_err err = {0};
	if (!get_str(root, "topic", topic, sizeof topic, NULL) || !topic[0] ||
	    !get_int(root, "partitions", 0, 1, 10000, &total) || total < 1) {
		kerror(rs, 400, "give topic (a string) and partitions (the new total, 1..10000)");
		snprintf(detail, dsz, "bad request");
		return;
	}
	snprintf(target, tsz, "%s", topic);
	struct sl_topic_store *ts = NULL;
	int before = 0, after = 0;
	int rc = open_store(c, &ts, &err);
	if (!rc)
		rc = ts->ops->partitions(ts, topic, &before, &err);
	if (!rc)
		rc = ts->ops->add_partitions(ts, topic, (int)total, &err);
	if (!rc)
		rc = ts->ops->partitions(ts, topic, &after, &err);
	sl_topic_store_close(ts);
	if (rc) {
		log_refused(c, rs, status_of(rc), &err, detail, dsz);
		return;
	}
	sl_buf_puts(&rs->body, "{\"topic\":");
	sl_buf_json_str(&rs->body, topic, strlen(topic));
	sl_buf_printf(&rs->body, ",\"partitions_before\":%d,\"partitions\":%d}", before, after);
	snprintf(detail, dsz, "partitions %d -> %d", before, after);
}

/* POST /api/kafka/topics/config {"topic", "name", "value"} (value null: back to the default). */
static void set_config(struct sl_console *c, struct sl_json_val root, struct sl_con_resp *rs, char *detail,
		       size_t dsz, char *target, size_t tsz)
{
	char topic[256], name[128], value[256];
	bool has_value = false;
	struct sl_err err = {0};
	if (!get_str(root, "topic", topic, sizeof topic, NULL) || !topic[0] ||
	    !get_str(root, "name", name, sizeof name, NULL) || !name[0] ||
	    !get_str(root, "value", value, sizeof value, &has_value)) {
		kerror(rs, 400, "give topic, name (a configuration entry) and value (a string, or null for the default)");
		snprintf(detail, dsz, "bad request");
		return;
	}
	snprintf(target, tsz, "%s", topic);
	struct sl_topic_store *ts = NULL;
	int rc = open_store(c, &ts, &err);
	if (!rc)
		rc = ts->ops->set_config(ts, topic, name, has_value ? value : NULL, &err);
	sl_topic_store_close(ts);
	if (rc) {
		sl_con_scrub_paths(c, err.msg, sizeof err.msg);
		kerror(rs, status_of(rc), err.msg);
		snprintf(detail, dsz, "%s=%s: %s", name, has_value ? value : "(default)", err.msg);
		return;
	}
	sl_buf_puts(&rs->body, "{\"topic\":");
	sl_buf_json_str(&rs->body, topic, strlen(topic));
	sl_buf_puts(&rs->body, ",\"name\":");
	sl_buf_json_str(&rs->body, name, strlen(name));
	sl_buf_puts(&rs->body, ",\"value\":");
	if (has_value)
		sl_buf_json_str(&rs->body, value, strlen(value));
	else
		sl_buf_puts(&rs->body, "null");
	sl_buf_puts(&rs->body, "}");
	snprintf(detail, dsz, "%s=%s", name, has_value ? value : "(default)");
}

/* GET /api/kafka/topics/config?topic=NAME: every entry with its value, whether it is the default, read-only or
 * sensitive (a sensitive value is never shown). Any role may read. */
static void get_configs(struct sl_console *c, const struct sl_con_req *rq, struct sl_con_resp *rs)
{
	const char *q = rq->target ? strchr(rq->target, '?') : NULL;
	char topic[256];
	if (!q || sl_con_query_get(q + 1, "topic", topic, sizeof topic) != 1 || !topic[0]) {
		kerror(rs, 400, "bad query: topic=NAME");
		return;
	}
	struct sl_topic_store *ts = NULL;
	struct sl_topic_config *cf = NULL;
	size_t n = 0;
	struct sl_err err = {0};
	int rc = sl_topic_store_open(c->conf->kafka, c->conf->data_dir, SL_TOPIC_INSPECT, &ts, &err);
	if (!rc)
		rc = ts->ops->configs(ts, topic, &cf, &n, &err);
	sl_topic_store_close(ts);
	if (rc) {
		log_refused(c, rs, status_of(rc), &err, NULL, 0);
		free(cf);
		return;
	}
	sl_buf_puts(&rs->body, "{\"topic\":");
	sl_buf_json_str(&rs->body, topic, strlen(topic));
	sl_buf_printf(&rs->body, ",\"backend\":\"%s\",\"configs\":[", c->conf->kafka ? "kafka" : "embedded");
	for (size_t i = 0; i < n; i++) {
		sl_buf_puts(&rs->body, i ? ",{\"name\":" : "{\"name\":");
		sl_buf_json_str(&rs->body, cf[i].name, strlen(cf[i].name));
		sl_buf_puts(&rs->body, ",\"value\":");
		if (cf[i].is_null || cf[i].sensitive)
			sl_buf_puts(&rs->body, "null");
		else
			sl_buf_json_str(&rs->body, cf[i].value, strlen(cf[i].value));
		sl_buf_printf(&rs->body, ",\"default\":%s,\"read_only\":%s,\"sensitive\":%s}",
			      cf[i].is_default ? "true" : "false", cf[i].read_only ? "true" : "false",
			      cf[i].sensitive ? "true" : "false");
	}
	sl_buf_puts(&rs->body, "]}");
	free(cf);
}

int sl_con_kafka_actions(struct sl_console *c, const struct sl_con_req *rq, const char *path, struct sl_con_resp *rs)
{
	const char *action = !strcmp(path, "/api/kafka/topics")	       ? "topic.create"
			     : !strcmp(path, "/api/kafka/produce")      ? "topic.produce"
			     : !strcmp(path, "/api/kafka/groups/reset") ? "group.reset"
			     : !strcmp(path, "/api/kafka/topics/partitions") ? "topic.partitions"
			     : !strcmp(path, "/api/kafka/topics/config")     ? "topic.config"
									: NULL;
	if (!action)
		return 0;
	const char *m = rq->method ? rq->method : "";
	if (!strcmp(action, "topic.config") && (!strcmp(m, "GET") || !strcmp(m, "HEAD"))) {
		get_configs(c, rq, rs);
		return 1;
	}
	if (strcmp(rq->method ? rq->method : "", "POST")) {
		kerror(rs, 405, "method not allowed: POST a JSON body");
		return 1;
	}
	char detail[512] = "", target[256] = "";
	if (sl_http_auth_role(&c->sec, rq->authorization) != SL_HTTP_ROLE_WRITE) {
		kerror(rs, 403, "the operator role is needed (the console's read-write credentials)");
		sl_con_audit(c, rq->authorization, action, "", "refused: not an operator", 403);
		return 1;
	}
	struct sl_json_parser *jp = NULL;
	struct sl_json_val root;
	struct sl_err err = {0};
	if (sl_json_parser_new(&jp, 1 << 20, 8, &err) ||
	    sl_json_parse(jp, rq->body ? rq->body : "", rq->len, &root, &err) ||
	    sl_json_type(root) != SL_JSON_OBJECT) {
		kerror(rs, 400, "the body is not a JSON object");
		snprintf(detail, sizeof detail, "the body is not a JSON object");
	} else if (!strcmp(action, "topic.create"))
		create_topic(c, root, rs, detail, sizeof detail, target, sizeof target);
	else if (!strcmp(action, "topic.partitions"))
		add_partitions(c, root, rs, detail, sizeof detail, target, sizeof target);
	else if (!strcmp(action, "topic.config"))
		set_config(c, root, rs, detail, sizeof detail, target, sizeof target);
	else if (!strcmp(action, "group.reset")) {
		bool dry = false;
		reset_group(c, root, rs, detail, sizeof detail, target, sizeof target, &dry);
		if (dry)
			action = "group.reset.dry_run";
	} else
		produce(c, root, rs, detail, sizeof detail, target, sizeof target);
	sl_json_parser_free(jp);
	sl_con_audit(c, rq->authorization, action, target, detail, rs->status ? rs->status : 200);
	return 1;
}
