/* The scheduler's REST API, shaped like Airflow's stable API (/api/v1) so scripts written for Airflow's need little
 * change: list/get/patch DAGs, list/create/get runs, task instances, a try's log. sl_sched_api_handle is independent
 * of any HTTP server (the console embeds it); sl_sched_api_start serves it alone on src/http. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/json.h"
#include "core/ident.h"
#include "core/log.h"
#include "http/http.h"
#include "scheduler/sched.h"

static int problem(struct sl_buf *out, int status, const char *title, const char *detail)
{
	/* Airflow answers errors as RFC 7807 problem documents. */
	sl_buf_reset(out);
	sl_buf_printf(out, "{\"status\":%d,\"title\":", status);
	sl_buf_json_str(out, title, strlen(title));
	sl_buf_puts(out, ",\"detail\":");
	sl_buf_json_str(out, detail, strlen(detail));
	sl_buf_puts(out, ",\"type\":\"about:blank\"}");
	return status;
}

static void time_or_null(struct sl_buf *out, int64_t t, char *ts, size_t tsz)
{
	if (t < 0) {
		sl_buf_puts(out, "null");
		return;
	}
	sl_sched_format_time(t, ts, tsz);
	sl_buf_json_str(out, ts, strlen(ts));
}

static void dag_json(struct sl_sched *s, const struct sl_dag *d, struct sl_buf *out)
{
	sl_buf_puts(out, "{\"dag_id\":");
	sl_buf_json_str(out, d->id, strlen(d->id));
	sl_buf_printf(out, ",\"is_paused\":%s,\"is_active\":true,\"description\":",
		      sl_sched_is_paused(s, d->id) ? "true" : "false");
	if (d->description)
		sl_buf_json_str(out, d->description, strlen(d->description));
	else
		sl_buf_puts(out, "null");
	sl_buf_puts(out, ",\"schedule_interval\":");
	if (d->has_schedule) {
		sl_buf_printf(out, "{\"__type\":\"%s\",\"value\":", d->cron.interval ? "TimeDelta" : "CronExpression");
		sl_buf_json_str(out, d->cron.text, strlen(d->cron.text));
		sl_buf_putc(out, '}');
	} else {
		sl_buf_puts(out, "null");
	}
	sl_buf_puts(out, ",\"timezone\":");
	sl_buf_json_str(out, d->timezone, strlen(d->timezone));
	sl_buf_printf(out, ",\"catchup\":%s,\"max_active_runs\":%lld,\"max_active_tasks\":%lld,\"tasks\":[",
		      d->catchup ? "true" : "false", (long long)d->max_active_runs, (long long)d->max_active_tasks);
	for (size_t i = 0; i < d->ntasks; i++) {
		if (i)
			sl_buf_putc(out, ',');
		sl_buf_json_str(out, d->tasks[i].id, strlen(d->tasks[i].id));
	}
	sl_buf_puts(out, "],\"tags\":[]");
	/* Airflow's next_dagrun fields, and the latest run (Airflow's UI shows it beside each DAG; its API has no field
	 * for it, so a list of DAGs would otherwise cost a request per DAG). */
	struct sl_sched_dag_summary sm;
	char ts[40];
	if (sl_sched_dag_summary(s, d->id, &sm) == 0) {
		sl_buf_puts(out, ",\"next_dagrun\":");
		time_or_null(out, sm.next_logical, ts, sizeof ts);
		sl_buf_puts(out, ",\"next_dagrun_create_after\":");
		time_or_null(out, sm.next_create_after, ts, sizeof ts);
		sl_buf_puts(out, ",\"last_dagrun\":");
		if (sm.last_run_id[0]) {
			sl_buf_puts(out, "{\"dag_run_id\":");
			sl_buf_json_str(out, sm.last_run_id, strlen(sm.last_run_id));
			sl_buf_puts(out, ",\"state\":");
			sl_buf_json_str(out, sm.last_state, strlen(sm.last_state));
			sl_buf_puts(out, ",\"logical_date\":");
			time_or_null(out, sm.last_logical, ts, sizeof ts);
			sl_buf_puts(out, ",\"start_date\":");
			time_or_null(out, sm.last_start, ts, sizeof ts);
			sl_buf_puts(out, ",\"end_date\":");
			time_or_null(out, sm.last_end, ts, sizeof ts);
			sl_buf_putc(out, '}');
		} else {
			sl_buf_puts(out, "null");
		}
	}
	sl_buf_putc(out, '}');
}

static const char *kind_name(enum sl_task_kind k)
{
	switch (k) {
	case SL_TASK_INGEST: return "ingest";
	case SL_TASK_PROCESS: return "process";
	case SL_TASK_CQL: return "cql";
	case SL_TASK_SHELL: return "shell";
	case SL_TASK_SENSOR: return "sensor";
	}
	return "task";
}

/* GET /api/v1/dags/{id}/tasks, Airflow's shape: {"tasks":[{"task_id","downstream_task_ids",...}]} (a run's graph). */
static void tasks_json(const struct sl_dag *d, struct sl_buf *out)
{
	sl_buf_puts(out, "{\"tasks\":[");
	for (size_t i = 0; i < d->ntasks; i++) {
		const struct sl_task *t = &d->tasks[i];
		if (i)
			sl_buf_putc(out, ',');
		sl_buf_puts(out, "{\"task_id\":");
		sl_buf_json_str(out, t->id, strlen(t->id));
		sl_buf_printf(out, ",\"operator_name\":\"%s\",\"trigger_rule\":", kind_name(t->kind));
		const char *tr = t->trigger_rule_s ? t->trigger_rule_s : "all_success";
		sl_buf_json_str(out, tr, strlen(tr));
		sl_buf_printf(out, ",\"retries\":%lld,\"pipeline\":", (long long)t->retries);
		if (t->pipeline)
			sl_buf_json_str(out, t->pipeline, strlen(t->pipeline));
		else
			sl_buf_puts(out, "null");
		sl_buf_puts(out, ",\"upstream_task_ids\":[");
		for (size_t u = 0; u < t->nup; u++) {
			if (u)
				sl_buf_putc(out, ',');
			const char *id = d->tasks[t->up[u]].id;
			sl_buf_json_str(out, id, strlen(id));
		}
		sl_buf_puts(out, "],\"downstream_task_ids\":[");
		bool first = true;
		for (size_t j = 0; j < d->ntasks; j++)
			for (size_t u = 0; u < d->tasks[j].nup; u++)
				if (d->tasks[j].up[u] == i) {
					if (!first)
						sl_buf_putc(out, ',');
					first = false;
					sl_buf_json_str(out, d->tasks[j].id, strlen(d->tasks[j].id));
					break;
				}
		sl_buf_puts(out, "]}");
	}
	sl_buf_printf(out, "],\"total_entries\":%zu}", d->ntasks);
}

/* Splits path into at most 8 segments after /api/v1/, in place in buf. */
static int split(const char *path, char *buf, size_t bufsz, char **seg)
{
	if (strncmp(path, "/api/v1/", 8) && strcmp(path, "/api/v1"))
		return -1;
	snprintf(buf, bufsz, "%s", path + (strlen(path) > 8 ? 8 : strlen(path)));
	int n = 0;
	char *save = NULL;
	for (char *t = strtok_r(buf, "/", &save); t && n < 8; t = strtok_r(NULL, "/", &save)) {
		/* path arrives decoded once (src/http, the console's router): decoding again would turn "%252e" into
		 * "." */
		seg[n++] = t;
	}
	return n;
}

static int query_int(const char *query, const char *key, int def)
{
	if (!query)
		return def;
	size_t kl = strlen(key);
	for (const char *p = query; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL)
		if (!strncmp(p, key, kl) && p[kl] == '=')
			return atoi(p + kl + 1);
	return def;
}

/* A boolean member of the body, def when absent; -1 when it is there but not a boolean. */
static int body_bool(const struct sl_json_val *root, const char *key, bool def)
{
	struct sl_json_val v;
	bool b = def;
	if (!root || !sl_json_get(*root, key, strlen(key), &v))
		return def;
	return sl_json_bool(v, &b) ? -1 : b;
}

#define CLEAR_MAX_RUNS 100

/* The task instances of one sl_sched_clear answer ({"task_instances":[...],"total_entries":N,...}) appended to out
 * (comma-separated after the first); returns N. */
static int clear_part(const struct sl_buf *one, struct sl_buf *out, int before)
{
	const char *b = one->data ? one->data : "", *open = strchr(b, '['), *close = strstr(b, "],\"total_entries\":");
	if (!open || !close || close <= open + 1)
		return 0;
	if (before)
		sl_buf_putc(out, ',');
	sl_buf_append(out, open + 1, (size_t)(close - open - 1));
	return atoi(close + strlen("],\"total_entries\":"));
}

/* Several runs at once ("dag_run_ids": [...], sluice's addition to Airflow's body): every run is checked first (a
 * dry run of each: an unknown run is 404, a running task 409, and nothing is cleared), then each is cleared; the
 * answer lists every task instance with "dag_runs", how many runs. */
static void clear_many(struct sl_sched *s, struct sl_dag *d, struct sl_json_val runs, bool only, bool dry,
		       struct sl_buf *out, int *status)
{
	char ids[CLEAR_MAX_RUNS][200];
	size_t n = 0;
	struct sl_json_val v;
	const char *p;
	size_t pl;
	struct sl_err err = {0};
	for (size_t i = 0; sl_json_at(runs, i, &v); i++) {
		if (n == CLEAR_MAX_RUNS || sl_json_str(v, &p, &pl) || pl >= sizeof ids[0] ||
		    sl_ident_check(SL_IDENT_RUN, p, pl, &err)) {
			*status = problem(out, 400, "Bad Request",
					  err.msg[0] ? err.msg : "dag_run_ids wants 1 to 100 run ids (strings)");
			return;
		}
		snprintf(ids[n++], sizeof ids[0], "%.*s", (int)pl, p);
	}
	if (!n) {
		*status = problem(out, 400, "Bad Request", "dag_run_ids wants 1 to 100 run ids (strings)");
		return;
	}
	struct sl_buf one, list;
	sl_buf_init(&one);
	sl_buf_init(&list);
	int total = 0, rc = 0;
	for (int pass = dry ? 1 : 0; pass < 2 && !rc; pass++) /* pass 0 checks every run, pass 1 answers (and clears) */
		for (size_t i = 0; i < n && !rc; i++) {
			sl_buf_reset(&one);
			if (!(rc = sl_sched_clear(s, d->id, ids[i], only, pass == 0 || dry, &one, &err)) && pass == 1)
				total += clear_part(&one, &list, list.len > 0);
		}
	if (rc)
		*status = problem(out, rc == SL_EAGAIN ? 409 : rc == SL_ENOTFOUND ? 404 : 500,
				  rc == SL_EAGAIN ? "Conflict" : rc == SL_ENOTFOUND ? "DAGRun not found" : "Error", err.msg);
	else
		sl_buf_printf(out, "{\"task_instances\":[%.*s],\"total_entries\":%d,\"dag_runs\":%zu,\"dry_run\":%s}",
			      (int)list.len, list.data ? list.data : "", total, n, dry ? "true" : "false");
	sl_buf_free(&one);
	sl_buf_free(&list);
}

/* POST /dags/{id}/clearTaskInstances, Airflow's body: {"dag_run_id", "dry_run" (default true, as Airflow's),
 * "only_failed" (default true)}, or "dag_run_ids": [...] for several runs at once (Airflow's start_date/end_date
 * ranges are not taken). */
static void clear_route(struct sl_sched *s, struct sl_dag *d, const char *method, const struct sl_json_val *root,
			struct sl_buf *out, int *status)
{
	struct sl_err err = {0};
	struct sl_json_val v;
	const char *p;
	size_t pl;
	char run[200];
	int dry = body_bool(root, "dry_run", true), only = body_bool(root, "only_failed", true);
	if (strcmp(method, "POST")) {
		*status = problem(out, 405, "Method Not Allowed", method);
		return;
	}
	if (root && dry >= 0 && only >= 0 && sl_json_get(*root, "dag_run_ids", 11, &v)) {
		clear_many(s, d, v, only, dry, out, status);
		return;
	}
	if (!root || !sl_json_get(*root, "dag_run_id", 10, &v) || sl_json_str(v, &p, &pl) || pl >= sizeof run ||
	    dry < 0 || only < 0 || sl_ident_check(SL_IDENT_RUN, p, pl, &err)) {
		*status = problem(out, 400, "Bad Request",
				  err.msg[0] ? err.msg
					     : "clearTaskInstances wants {\"dag_run_id\": RUN (or \"dag_run_ids\": [RUN, ...]), "
					       "\"dry_run\": bool, \"only_failed\": bool}");
		return;
	}
	snprintf(run, sizeof run, "%.*s", (int)pl, p);
	int rc = sl_sched_clear(s, d->id, run, only, dry, out, &err);
	if (rc)
		*status = problem(out, rc == SL_EAGAIN ? 409 : rc == SL_ENOTFOUND ? 404 : 500,
				  rc == SL_EAGAIN ? "Conflict" : rc == SL_ENOTFOUND ? "DAGRun not found" : "Error", err.msg);
}

/* POST /dags/{id}/backfills {"from_date", "to_date", "dry_run"}: a run for each scheduled interval in the range that
 * has none yet (the shape of Airflow 3's POST /backfills, under the DAG). Answers how many. */
static void backfill_route(struct sl_sched *s, struct sl_dag *d, const char *method, const struct sl_json_val *root,
			   struct sl_buf *out, int *status)
{
	struct sl_err err = {0};
	int64_t t[2];
	static const char *const keys[2] = {"from_date", "to_date"};
	int dry = body_bool(root, "dry_run", false);
	if (strcmp(method, "POST")) {
		*status = problem(out, 405, "Method Not Allowed", method);
		return;
	}
	for (int i = 0; i < 2; i++) {
		struct sl_json_val v;
		const char *p;
		size_t pl;
		char tmp[64];
		if (!root || !sl_json_get(*root, keys[i], strlen(keys[i]), &v) || sl_json_str(v, &p, &pl) ||
		    pl >= sizeof tmp || (snprintf(tmp, sizeof tmp, "%.*s", (int)pl, p), sl_sched_parse_time(tmp, d->tz, &t[i]))) {
			*status = problem(out, 400, "Bad Request",
					  "backfills wants {\"from_date\": ISO 8601, \"to_date\": ISO 8601, \"dry_run\": bool}");
			return;
		}
	}
	if (dry < 0 || t[1] < t[0]) {
		*status = problem(out, 400, "Bad Request", dry < 0 ? "dry_run must be a boolean" : "to_date is before from_date");
		return;
	}
	int n = sl_sched_backfill_count(s, d->id, t[0], t[1], &err);
	if (n >= 0 && n > 1000) {
		*status = problem(out, 400, "Bad Request", "more than 1000 runs in that range: backfill it in parts");
		return;
	}
	if (n >= 0 && !dry)
		n = sl_sched_backfill(s, d->id, t[0], t[1], &err);
	if (n < 0) {
		*status = problem(out, n == SL_EINVAL ? 400 : 500, "Bad Request", err.msg);
		return;
	}
	char a[40], b[40];
	sl_sched_format_time(t[0], a, sizeof a);
	sl_sched_format_time(t[1], b, sizeof b);
	sl_buf_puts(out, "{\"dag_id\":");
	sl_buf_json_str(out, d->id, strlen(d->id));
	sl_buf_printf(out, ",\"from_date\":\"%s\",\"to_date\":\"%s\",\"dry_run\":%s,\"total_entries\":%d}", a, b,
		      dry ? "true" : "false", n);
}

int sl_sched_api_handle(struct sl_sched *s, const char *method, const char *path, const char *query, const char *body,
			size_t len, struct sl_buf *out, int *status)
{
	char buf[1024], *seg[8];
	struct sl_err err = {0};
	int n = split(path, buf, sizeof buf, seg);
	sl_buf_reset(out);
	*status = 200;
	if (n < 0)
		return *status = problem(out, 404, "Not Found", "the scheduler API lives under /api/v1"), 0;
	if (n == 1 && !strcmp(seg[0], "health")) {
		sl_buf_puts(out, "{\"scheduler\":{\"status\":\"healthy\"}}");
		return 0;
	}
	if (n == 0 || strcmp(seg[0], "dags"))
		return *status = problem(out, 404, "Not Found", path), 0;
	size_t nd;
	const struct sl_dag *dags = sl_sched_dags(s, &nd);
	if (n == 1) {
		if (strcmp(method, "GET"))
			return *status = problem(out, 405, "Method Not Allowed", method), 0;
		sl_buf_puts(out, "{\"dags\":[");
		for (size_t i = 0; i < nd; i++) {
			if (i)
				sl_buf_putc(out, ',');
			dag_json(s, &dags[i], out);
		}
		sl_buf_printf(out, "],\"total_entries\":%zu}", nd);
		return 0;
	}
	/* Identifiers are checked where they enter (core/ident.h): a DAG, run or task id that could not exist is a
	 * 400, whatever the route would have done with it. */
	static const enum sl_ident_kind seg_kind[8] = {[1] = SL_IDENT_DAG, [3] = SL_IDENT_RUN, [5] = SL_IDENT_TASK};
	for (int i = 1; i < n && i < 6; i += 2)
		if (!(i == 5 && n == 7 && !strcmp(seg[5], "~") && !strcmp(seg[6], "tries")) && /* Airflow's "every task" */
		    sl_ident_check(seg_kind[i], seg[i], strlen(seg[i]), &err))
			return *status = problem(out, 400, "Bad Request", err.msg), 0;
	struct sl_dag *d = sl_sched_dag(s, seg[1], &err);
	if (!d)
		return *status = problem(out, 404, "DAG not found", err.msg), 0;
	struct sl_json_parser *jp = NULL;
	struct sl_json_val root = {{0}};
	if (len) {
		if (sl_json_parser_new(&jp, 1 << 20, 64, &err) || sl_json_parse(jp, body, len, &root, &err) ||
		    sl_json_type(root) != SL_JSON_OBJECT) {
			sl_json_parser_free(jp);
			return *status = problem(out, 400, "Bad Request",
						 err.msg[0] ? err.msg : "the body must be a JSON object"), 0;
		}
	}
	int rc = 0;
	if (n == 2) {
		if (!strcmp(method, "PATCH")) {
			struct sl_json_val v;
			bool paused;
			if (!jp || !sl_json_get(root, "is_paused", 9, &v) || sl_json_bool(v, &paused)) {
				*status = problem(out, 400, "Bad Request", "PATCH wants {\"is_paused\": true|false}");
				goto done;
			}
			sl_sched_set_paused(s, d->id, paused, &err);
		} else if (strcmp(method, "GET")) {
			*status = problem(out, 405, "Method Not Allowed", method);
			goto done;
		}
		dag_json(s, d, out);
		goto done;
	}
	if (n == 3 && !strcmp(seg[2], "tasks")) {
		if (strcmp(method, "GET") && strcmp(method, "HEAD"))
			*status = problem(out, 405, "Method Not Allowed", method);
		else
			tasks_json(d, out);
		goto done;
	}
	if (n == 3 && !strcmp(seg[2], "clearTaskInstances")) {
		clear_route(s, d, method, jp ? &root : NULL, out, status);
		goto done;
	}
	if (n == 3 && !strcmp(seg[2], "backfills")) {
		backfill_route(s, d, method, jp ? &root : NULL, out, status);
		goto done;
	}
	if (strcmp(seg[2], "dagRuns")) {
		*status = problem(out, 404, "Not Found", path);
		goto done;
	}
	if (n == 3) {
		if (!strcmp(method, "POST")) {
			struct sl_buf conf, rid;
			sl_buf_init(&conf);
			sl_buf_init(&rid);
			struct sl_json_val v;
			int64_t ld = 0;
			bool have_ld = false;
			if (jp && sl_json_get(root, "conf", 4, &v) && sl_json_type(v) == SL_JSON_OBJECT)
				sl_json_render(v, &conf);
			if (jp && sl_json_get(root, "dag_run_id", 10, &v) && !sl_json_is_null(v)) {
				const char *p;
				size_t pl;
				if (sl_json_str(v, &p, &pl) || sl_ident_check(SL_IDENT_RUN, p, pl, &err)) {
					*status = problem(out, 400, "Bad Request",
							  err.msg[0] ? err.msg : "dag_run_id must be a string");
					sl_buf_free(&conf);
					sl_buf_free(&rid);
					goto done;
				}
				sl_buf_append(&rid, p, pl);
			}
			if (jp && (sl_json_get(root, "logical_date", 12, &v) || sl_json_get(root, "execution_date", 14, &v)) &&
			    sl_json_type(v) == SL_JSON_STRING) {
				const char *p;
				size_t pl;
				char tmp[64];
				sl_json_str(v, &p, &pl);
				snprintf(tmp, sizeof tmp, "%.*s", (int)pl, p);
				if (sl_sched_parse_time(tmp, d->tz, &ld)) {
					*status = problem(out, 400, "Bad Request", "logical_date is not an ISO 8601 date");
					sl_buf_free(&conf);
					sl_buf_free(&rid);
					goto done;
				}
				have_ld = true;
			}
			char made[200];
			if (sl_sched_trigger(s, d->id, conf.len ? sl_buf_cstr(&conf) : NULL, have_ld ? &ld : NULL,
					     rid.len ? sl_buf_cstr(&rid) : NULL, made, sizeof made, &err)) {
				*status = problem(out, err.code == SL_EINVAL ? 409 : 400, "Conflict", err.msg);
			} else if (sl_sched_run_json(s, d->id, made, out, &err)) {
				/* Answers the one run created (Airflow's shape), read back by its key: never the whole list. */
				*status = problem(out, 500, "Internal Server Error", err.msg);
			}
			sl_buf_free(&conf);
			sl_buf_free(&rid);
			goto done;
		}
		if (strcmp(method, "GET")) {
			*status = problem(out, 405, "Method Not Allowed", method);
			goto done;
		}
		sl_sched_runs_json(s, d->id, query_int(query, "limit", 100), out, &err);
		goto done;
	}
	const char *run_id = seg[3];
	char state[32];
	if (sl_sched_run_state(s, d->id, run_id, state, sizeof state)) {
		*status = problem(out, 404, "DAGRun not found", run_id);
		goto done;
	}
	if (n == 4 && !strcmp(method, "PATCH")) {
		/* Airflow's "mark success" / "mark failed": {"state": "success" | "failed"}; answers the run. */
		struct sl_json_val v;
		const char *p;
		size_t pl;
		char want[16];
		if (!jp || !sl_json_get(root, "state", 5, &v) || sl_json_str(v, &p, &pl) || pl >= sizeof want) {
			*status = problem(out, 400, "Bad Request", "PATCH wants {\"state\": \"success\" | \"failed\"}");
			goto done;
		}
		snprintf(want, sizeof want, "%.*s", (int)pl, p);
		int src = sl_sched_set_run_state(s, d->id, run_id, want, &err);
		if (src)
			*status = problem(out, src == SL_EAGAIN ? 409 : src == SL_EINVAL ? 400 : src == SL_ENOTFOUND ? 404 : 500,
					  src == SL_EAGAIN ? "Conflict" : "Bad Request", err.msg);
		else if (sl_sched_run_json(s, d->id, run_id, out, &err))
			*status = problem(out, 500, "Internal Server Error", err.msg);
		goto done;
	}
	if (n == 4) {
		if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
			*status = problem(out, 405, "Method Not Allowed", method);
			goto done;
		}
		if (sl_sched_run_json(s, d->id, run_id, out, &err))
			*status = problem(out, 404, "DAGRun not found", run_id);
		goto done;
	}
	if (strcmp(seg[4], "taskInstances")) {
		*status = problem(out, 404, "Not Found", path);
		goto done;
	}
	if (n == 5) {
		sl_sched_task_instances_json(s, d->id, run_id, out, &err);
		goto done;
	}
	if (n == 7 && !strcmp(seg[6], "tries")) {
		if (sl_sched_task_tries_json(s, d->id, run_id, seg[5], out, &err)) {
			sl_buf_reset(out);
			*status = problem(out, 404, "Not Found", err.msg);
		}
		goto done;
	}
	if (n == 8 && !strcmp(seg[6], "logs")) {
		char *end;
		long tn = strtol(seg[7], &end, 10);
		if (*end || tn < 1 || tn > 100000) {
			*status = problem(out, 400, "Bad Request", "the try number must be an integer from 1");
			goto done;
		}
		struct sl_buf content;
		sl_buf_init(&content);
		int lrc = sl_sched_log_read(s, d->id, run_id, seg[5], (int)tn, 8u << 20, &content, &err);
		if (lrc) {
			/* err names the log relative to data_dir: answers never show where data_dir is. */
			*status = problem(out, lrc == SL_ENOTFOUND ? 404 : lrc == SL_EINVAL ? 400 : 500,
					  lrc == SL_ENOTFOUND ? "Log not found" : "Bad Request", err.msg);
		} else {
			sl_buf_puts(out, "{\"continuation_token\":null,\"content\":");
			sl_buf_json_str(out, content.data ? content.data : "", content.len);
			sl_buf_putc(out, '}');
		}
		sl_buf_free(&content);
		goto done;
	}
	*status = problem(out, 404, "Not Found", path);
done:
	sl_json_parser_free(jp);
	return rc;
}

struct sl_sched_http {
	struct sl_http_server *d;
	struct sl_sched *s;
	struct sl_http_auth auth;
	struct sl_sched_api_conf conf;
};

/* The API's secrets without a scheduler: section (docs/security.md). */
const struct sl_http_auth_conf sl_sched_api_auth = {
	.token_env = "SLUICE_SCHEDULER_TOKEN",
	.user = "admin",
	.password_env = "SLUICE_SCHEDULER_PASSWORD",
};

const struct sl_opt sl_sched_api_opts[] = {
	SL_HTTP_AUTH_OPTS(struct sl_sched_api_conf, auth, "SLUICE_SCHEDULER_TOKEN", "SLUICE_SCHEDULER_PASSWORD"),
	SL_HTTP_AUTH_READ_OPTS(struct sl_sched_api_conf, auth),
	{"max_body", SL_OPT_SIZE, "1MiB", offsetof(struct sl_sched_api_conf, max_body),
	 "largest request body; larger ones get 413", .min = 1024, .max = 1 << 30},
	SL_HTTP_SERVER_OPTS(struct sl_sched_api_conf, http),
	{NULL},
};

static void on_request(void *ctx, const struct sl_http_req *rq, struct sl_http_resp *rs)
{
	struct sl_sched_http *h = ctx;
	int status = 500;
	sl_sched_api_handle(h->s, rq->method, rq->path, rq->query, rq->body, rq->len, &rs->body, &status);
	rs->status = status;
}

/* What the HTTP layer refuses itself (a malformed target, a missing credential, an oversize body) is answered in
 * the API's own shape, so that a client parses every error the same way. */
static void error_body(struct sl_http_resp *rs, int status, const char *message)
{
	rs->status = problem(&rs->body, status, sl_http_reason(status), message);
	rs->data = NULL;
}

static const char *const open_paths[] = {"/api/v1/health", "/health", NULL};

static void api_free(struct sl_sched_http *h)
{
	sl_http_auth_free(&h->auth);
	sl_opt_free(sl_sched_api_opts, &h->conf);
	free(h);
}

int sl_sched_api_start(struct sl_sched *s, const char *addr, int port, const struct sl_cfg_node *section,
		       struct sl_sched_http **out, struct sl_err *err)
{
	struct sl_sched_http *h = calloc(1, sizeof *h);
	if (!h)
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	h->s = s;
	const char *host = addr && *addr ? addr : "127.0.0.1";
	int rc = section ? sl_opt_bind(sl_sched_api_opts, section, "scheduler", &h->conf, err)
			 : sl_opt_defaults(sl_sched_api_opts, &h->conf, err);
	if (rc) {
		api_free(h);
		return SL_ECONFIG;
	}
	if ((rc = sl_http_auth_load(&h->auth, &h->conf.auth, "scheduler API", err)) ||
	    (rc = sl_http_auth_require(&h->auth, &h->conf.auth, host, "scheduler API", err))) {
		api_free(h);
		return rc;
	}
	struct sl_http_server_opts ho = {
		.name = "scheduler API",
		.host = host,
		.port = port,
		.conf = &h->conf.http,
		.max_body = h->conf.max_body,
		.max_target = 8192,
		.auth = &h->auth,
		.realm = "sluice scheduler",
		.error_body = error_body,
		.open_paths = open_paths,
		.handler = on_request,
		.ctx = h,
	};
	if ((rc = sl_http_start(&ho, &h->d, err))) {
		api_free(h);
		return rc;
	}
	*out = h;
	return 0;
}

int sl_sched_api_port(const struct sl_sched_http *h)
{
	return sl_http_port(h->d);
}

void sl_sched_api_stop(struct sl_sched_http *h)
{
	if (!h)
		return;
	sl_http_stop(h->d);
	api_free(h);
}
