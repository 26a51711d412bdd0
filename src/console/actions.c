/* The console's operator side, kept apart from the read-only pages' API (api.c): the dead-letter view (reason,
 * stage and original coordinates of every dead letter, filtered by reason) and its replay (one, a selection, or all
 * that match a filter, with a dry run that says how many first), who is asking (/api/whoami), and the audit log
 * page's API. Every write here is behind the operator role (the listener's read-write credential; the read-only one
 * is the viewer) and recorded in the audit log (audit.c) with who, when, what and how it ended. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/json.h"
#include "console/internal.h"
#include "core/httpauth.h"

static void aerror(struct sl_con_resp *rs, int status, const char *msg)
{
	rs->status = status;
	rs->ctype = "application/json";
	sl_buf_reset(&rs->body);
	sl_buf_puts(&rs->body, "{\"error\":");
	sl_buf_json_str(&rs->body, msg, strlen(msg));
	sl_buf_puts(&rs->body, "}");
}

static struct sl_con_pipe *find_pipe(struct sl_console *c, const char *name)
{
	for (size_t i = 0; i < c->npipes; i++)
		if (!strcmp(c->pipes[i].p->name, name))
			return &c->pipes[i];
	return NULL;
}

/* GET /api/dlq?pipeline=NAME[&reason=TEXT][&stage=S][&limit=N][&order=oldest&offset=N]: the pipeline's dead letters,
 * newest first by default, each with its stage, reason and where it came from. */
static void api_dlq(struct sl_console *c, const char *query, struct sl_con_resp *rs)
{
	char name[256], reason[512], stage[32], order[16];
	int64_t limit, off;
	if (sl_con_query_get(query, "pipeline", name, sizeof name) != 1 ||
	    sl_con_query_get(query, "reason", reason, sizeof reason) < 0 ||
	    sl_con_query_get(query, "stage", stage, sizeof stage) < 0 ||
	    sl_con_query_get(query, "order", order, sizeof order) < 0 ||
	    sl_con_query_int(query, "offset", 0, 0, INT64_MAX, &off) < 0 ||
	    sl_con_query_int(query, "limit", 100, 1, 500, &limit) < 0) {
		aerror(rs, 400, "bad query: pipeline=NAME&reason=TEXT&stage=map|decode|sink|parse&limit=1..500"
				"&order=newest|oldest&offset=N");
		return;
	}
	struct sl_con_pipe *cp = find_pipe(c, name);
	if (!cp) {
		aerror(rs, 404, "no such pipeline");
		return;
	}
	struct sl_con_browse_opts o = {.topic = cp->p->dlq_topic, .partition = -1, .offset = off, .from_ms = -1,
				       .limit = limit, .newest = strcmp(order, "oldest") != 0, .reason = reason,
				       .stage = stage, .scan = 10000};
	struct sl_err err = {0};
	if (sl_con_browse(c, &o, &rs->body, &err)) {
		if (err.code == SL_ENOTFOUND) {
			/* No dead-letter topic yet: nothing ever failed. */
			sl_buf_reset(&rs->body);
			sl_buf_puts(&rs->body, "{\"messages\":[],\"scanned\":0,\"order\":\"newest\",\"next_offset\":null,"
					       "\"reasons\":[],\"topic_exists\":false}");
			return;
		}
		sl_con_scrub_paths(c, err.msg, sizeof err.msg);
		aerror(rs, 503, err.msg);
	}
}

/* POST /api/dlq/replay {"pipeline":NAME, "offsets":[N,...] | "all":true, "reason":TEXT, "stage":S, "dry_run":bool}:
 * republishes the chosen dead letters into the pipeline's topic (map-stage ones mapped again with the current
 * mapping), or with dry_run only counts them. */
static void api_dlq_replay(struct sl_console *c, const struct sl_con_req *rq, struct sl_con_resp *rs)
{
	struct sl_json_parser *jp = NULL;
	struct sl_json_val root, v;
	struct sl_err err = {0};
	char name[256] = "", reason[512] = "", stage[32] = "";
	int64_t offsets[1000];
	size_t noff = 0;
	bool all = false, dry = false;
	const char *bad = NULL;
	if (sl_json_parser_new(&jp, 1 << 20, 8, &err) || sl_json_parse(jp, rq->body ? rq->body : "", rq->len, &root, &err) ||
	    sl_json_type(root) != SL_JSON_OBJECT)
		bad = "the body is not a JSON object";
	const char *s;
	size_t n;
	struct {
		const char *key;
		char *dst;
		size_t cap;
	} strs[] = {{"pipeline", name, sizeof name}, {"reason", reason, sizeof reason}, {"stage", stage, sizeof stage}};
	for (size_t i = 0; !bad && i < 3; i++)
		if (sl_json_get(root, strs[i].key, strlen(strs[i].key), &v) && !sl_json_is_null(v)) {
			if (sl_json_str(v, &s, &n) || n >= strs[i].cap)
				bad = "pipeline, reason and stage are strings";
			else {
				memcpy(strs[i].dst, s, n);
				strs[i].dst[n] = 0;
			}
		}
	if (!bad && sl_json_get(root, "all", 3, &v) && sl_json_bool(v, &all))
		bad = "all is true or false";
	if (!bad && sl_json_get(root, "dry_run", 7, &v) && sl_json_bool(v, &dry))
		bad = "dry_run is true or false";
	if (!bad && sl_json_get(root, "offsets", 7, &v)) {
		struct sl_json_iter it;
		struct sl_json_val e;
		if (!sl_json_iter_init(&it, v))
			bad = "offsets is a list of dead-letter offsets";
		while (!bad && sl_json_array_next(&it, &e)) {
			if (noff == sizeof offsets / sizeof *offsets)
				bad = "at most 1000 offsets at once (use all with a reason filter)";
			else if (sl_json_int64(e, &offsets[noff]) || offsets[noff] < 0)
				bad = "offsets is a list of dead-letter offsets";
			else
				noff++;
		}
	}
	sl_json_parser_free(jp);
	if (!bad && !name[0])
		bad = "pipeline is required";
	if (!bad && !noff && !all)
		bad = "say which dead letters: offsets [...], or all: true (with reason or stage to narrow it)";
	if (bad) {
		aerror(rs, 400, bad);
		sl_con_audit(c, rq->authorization, dry ? "dlq.replay.dry_run" : "dlq.replay", name, bad, 400);
		return;
	}
	struct sl_con_pipe *cp = find_pipe(c, name);
	if (!cp) {
		aerror(rs, 404, "no such pipeline");
		sl_con_audit(c, rq->authorization, dry ? "dlq.replay.dry_run" : "dlq.replay", name, "no such pipeline", 404);
		return;
	}
	struct sl_dlq_select sel = {.offsets = offsets, .noffsets = noff, .reason = reason, .stage = stage,
				    .dry_run = dry};
	struct sl_dlq_stats st;
	int rc = sl_dlq_run_select(c->conf, cp->p, true, &sel, 0, 0, &st, NULL, &err);
	char detail[1024];
	snprintf(detail, sizeof detail, "%s%s%zu offsets, reason \"%s\", stage \"%s\": matched %" PRIu64
		 ", replayed %" PRIu64 ", still failing %" PRIu64 "%s%s",
		 dry ? "dry run, " : "", all ? "all, " : "", noff, reason, stage, st.listed, st.replayed,
		 st.still_failing, rc ? ": " : "", rc ? err.msg : "");
	sl_con_scrub_paths(c, detail, sizeof detail);
	if (rc) {
		sl_con_scrub_paths(c, err.msg, sizeof err.msg);
		aerror(rs, 503, err.msg);
	} else {
		sl_buf_puts(&rs->body, "{\"pipeline\":");
		sl_buf_json_str(&rs->body, name, strlen(name));
		sl_buf_printf(&rs->body, ",\"dry_run\":%s,\"matched\":%" PRIu64 ",\"replayed\":%" PRIu64
					 ",\"still_failing\":%" PRIu64 "}",
			      dry ? "true" : "false", st.listed, st.replayed, st.still_failing);
	}
	sl_con_audit(c, rq->authorization, dry ? "dlq.replay.dry_run" : "dlq.replay", name, detail, rc ? 503 : 200);
}

/* POST /api/alerts/silence {"alert":NAME, "pipeline":P, "duration_ms":N, "comment":TEXT}: no notifications of that
 * alert until now + N (0 lifts the silence); the page still shows its state. Kept in console.db with the state. */
static void api_silence(struct sl_console *c, const struct sl_con_req *rq, struct sl_con_resp *rs)
{
	struct sl_json_parser *jp = NULL;
	struct sl_json_val root, v;
	struct sl_err err = {0};
	char alert[128] = "", pipe[128] = "", comment[256] = "", target[300] = "", detail[512];
	int64_t dur = -1;
	const char *bad = NULL;
	if (sl_json_parser_new(&jp, 1 << 16, 4, &err) || sl_json_parse(jp, rq->body ? rq->body : "", rq->len, &root, &err) ||
	    sl_json_type(root) != SL_JSON_OBJECT)
		bad = "the body is not a JSON object";
	struct {
		const char *key;
		char *dst;
		size_t cap;
	} strs[] = {{"alert", alert, sizeof alert}, {"pipeline", pipe, sizeof pipe}, {"comment", comment, sizeof comment}};
	for (size_t i = 0; !bad && i < 3; i++)
		if (sl_json_get(root, strs[i].key, strlen(strs[i].key), &v) && !sl_json_is_null(v)) {
			const char *s;
			size_t n;
			if (sl_json_str(v, &s, &n) || n >= strs[i].cap)
				bad = "alert, pipeline and comment are strings";
			else {
				memcpy(strs[i].dst, s, n);
				strs[i].dst[n] = 0;
			}
		}
	if (!bad && (!sl_json_get(root, "duration_ms", 11, &v) || sl_json_int64(v, &dur) || dur < 0 ||
		     dur > 30LL * 24 * 3600 * 1000))
		bad = "duration_ms is how long to silence, 0 (lift it) to 30 days";
	sl_json_parser_free(jp);
	snprintf(target, sizeof target, "%s/%s", alert, pipe);
	struct sl_con_alert *a = NULL;
	if (!bad) {
		pthread_mutex_lock(&c->lock);
		for (size_t i = 0; i < c->nalerts; i++)
			if (!strcmp(c->alerts[i].rule->name, alert) && !strcmp(c->alerts[i].pipeline, pipe))
				a = &c->alerts[i];
		if (a) {
			int64_t now = sl_con_now_ms();
			char who[128];
			const char *role;
			sl_con_who(c, rq->authorization, who, sizeof who, &role);
			a->silenced_until = dur ? now + dur : 0;
			snprintf(a->silenced_by, sizeof a->silenced_by, "%s", dur ? who : "");
			snprintf(a->silence_comment, sizeof a->silence_comment, "%s", dur ? comment : "");
			sl_buf_puts(&rs->body, "{\"alert\":");
			sl_buf_json_str(&rs->body, alert, strlen(alert));
			sl_buf_puts(&rs->body, ",\"pipeline\":");
			sl_buf_json_str(&rs->body, pipe, strlen(pipe));
			sl_buf_printf(&rs->body, ",\"silenced_until_ms\":%" PRId64 "}", a->silenced_until);
		}
		pthread_mutex_unlock(&c->lock);
	}
	if (bad || !a) {
		aerror(rs, bad ? 400 : 404, bad ? bad : "no such alert for that pipeline");
		sl_con_audit(c, rq->authorization, "alert.silence", target, bad ? bad : "no such alert", bad ? 400 : 404);
		return;
	}
	if (dur)
		snprintf(detail, sizeof detail, "silenced for %" PRId64 " min%s%s", dur / 60000, comment[0] ? ": " : "",
			 comment);
	else
		snprintf(detail, sizeof detail, "silence lifted");
	sl_con_audit(c, rq->authorization, "alert.silence", target, detail, 200);
}

static void api_whoami(struct sl_console *c, const struct sl_con_req *rq, struct sl_con_resp *rs)
{
	char who[256];
	const char *role;
	sl_con_who(c, rq->authorization, who, sizeof who, &role);
	sl_buf_puts(&rs->body, "{\"user\":");
	sl_buf_json_str(&rs->body, who, strlen(who));
	sl_buf_printf(&rs->body, ",\"role\":\"%s\",\"auth\":%s}", role, sl_http_auth_on(&c->sec) ? "true" : "false");
}

int sl_con_actions(struct sl_console *c, const struct sl_con_req *rq, const char *path, const char *query,
		   struct sl_con_resp *rs)
{
	const char *m = rq->method ? rq->method : "";
	bool get = !strcmp(m, "GET") || !strcmp(m, "HEAD");
	if (sl_con_kafka_actions(c, rq, path, rs))
		return 1;
	if (!strcmp(path, "/api/whoami") && get) {
		api_whoami(c, rq, rs);
		return 1;
	}
	if (!strcmp(path, "/api/dlq") && get) {
		api_dlq(c, query, rs);
		return 1;
	}
	if (!strcmp(path, "/api/audit") && get) {
		int64_t limit;
		if (sl_con_query_int(query, "limit", 200, 1, 10000, &limit) < 0)
			aerror(rs, 400, "bad query: limit=1..10000");
		else
			sl_con_audit_json(c, limit, &rs->body);
		return 1;
	}
	if (!strcmp(path, "/api/alerts/silence")) {
		if (strcmp(m, "POST")) {
			aerror(rs, 405, "method not allowed: POST a JSON body");
			return 1;
		}
		if (sl_http_auth_role(&c->sec, rq->authorization) != SL_HTTP_ROLE_WRITE) {
			aerror(rs, 403, "the operator role is needed (the console's read-write credentials)");
			sl_con_audit(c, rq->authorization, "alert.silence", "", "refused: not an operator", 403);
			return 1;
		}
		api_silence(c, rq, rs);
		return 1;
	}
	if (!strcmp(path, "/api/dlq/replay")) {
		if (strcmp(m, "POST")) {
			aerror(rs, 405, "method not allowed: POST a JSON body");
			return 1;
		}
		/* The HTTP layer refuses a viewer's write already; this holds for any caller of dispatch too. */
		if (sl_http_auth_role(&c->sec, rq->authorization) != SL_HTTP_ROLE_WRITE) {
			aerror(rs, 403, "the operator role is needed (the console's read-write credentials)");
			sl_con_audit(c, rq->authorization, "dlq.replay", "", "refused: not an operator", 403);
			return 1;
		}
		api_dlq_replay(c, rq, rs);
		return 1;
	}
	return 0;
}
