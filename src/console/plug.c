/* Plugs the other roles' JSON APIs into the console as routes, so one port serves everything inside `sluice up`:
 * /api/schemas/... is the schema registry's Confluent-compatible REST API (/subjects, /schemas/ids/N, /config, ...),
 * /api/dags/... the scheduler's Airflow-shaped API (/api/v1/dags, dagRuns, taskInstances, logs), plus what the
 * pages need that those APIs lack: /api/dags/{id}/tasks (Airflow's task list with downstream_task_ids, for a run's
 * graph) and /api/console/schemas (every subject with its versions and subject-level compatibility in one answer,
 * so the Schemas page polls once instead of twice per subject and never provokes the registry's 404s). */
#include <stdio.h>
#include <string.h>

#include "codec/json.h"
#include "console/internal.h"
#include "registry/registry.h"
#include "scheduler/sched.h"

static int registry_route(void *ctx, const char *method, const char *path, const char *query, const char *body,
			  size_t len, struct sl_buf *out, int *status, const char **ctype)
{
	char target[4096];
	const char *rest = path + strlen("/api/schemas");
	snprintf(target, sizeof target, "%s%s%s", *rest ? rest : "/subjects", *query ? "?" : "", query);
	sl_registry_handle(ctx, method, target, body, len, status, out);
	*ctype = "application/vnd.schemaregistry.v1+json";
	return 0;
}

/* Percent-encodes a subject for a registry request target (subjects may hold '/', '?', '%', spaces). */
static void pct_encode(const char *s, size_t n, char *out, size_t outsz)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	for (size_t i = 0; i < n && o + 4 < outsz; i++) {
		unsigned char ch = (unsigned char)s[i];
		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || strchr("-._~", ch)) {
			out[o++] = (char)ch;
		} else {
			out[o++] = '%';
			out[o++] = hex[ch >> 4];
			out[o++] = hex[ch & 15];
		}
	}
	out[o] = 0;
}

/* GET /api/console/schemas: {"compatibility":"BACKWARD","subjects":[{"subject","versions":[..],"compatibility":
 * "FULL"|null}]} — the subject-level compatibility is null when the subject follows the global level. */
static int schemas_summary(void *ctx, const char *method, const char *path, const char *query, const char *body,
			   size_t len, struct sl_buf *out, int *status, const char **ctype)
{
	(void)query, (void)body, (void)len;
	struct sl_registry *r = ctx;
	*ctype = "application/json";
	sl_buf_reset(out);
	if (strcmp(path, "/api/console/schemas")) {
		*status = 404;
		sl_buf_puts(out, "{\"error\":\"no such API\"}");
		return 0;
	}
	if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
		*status = 405;
		sl_buf_puts(out, "{\"error\":\"method not allowed\"}");
		return 0;
	}
	struct sl_buf b;
	sl_buf_init(&b);
	struct sl_err err = {0};
	struct sl_json_parser *jp = NULL;
	struct sl_json_val root = {{0}}, v;
	int st = 0;
	*status = 200;
	sl_buf_puts(out, "{\"compatibility\":");
	sl_registry_handle(r, "GET", "/config", NULL, 0, &st, &b);
	if (st == 200 && !sl_json_parser_new(&jp, 1 << 20, 16, &err) && !sl_json_parse(jp, b.data, b.len, &root, &err) &&
	    sl_json_get(root, "compatibilityLevel", 18, &v))
		sl_json_render(v, out);
	else
		sl_buf_puts(out, "null");
	sl_json_parser_free(jp);
	jp = NULL;
	sl_buf_puts(out, ",\"subjects\":[");
	sl_registry_handle(r, "GET", "/subjects", NULL, 0, &st, &b);
	if (st != 200 || sl_json_parser_new(&jp, 0, 16, &err) || sl_json_parse(jp, b.data, b.len, &root, &err) ||
	    sl_json_type(root) != SL_JSON_ARRAY) {
		sl_json_parser_free(jp);
		sl_buf_reset(out);
		*status = st >= 400 ? st : 500;
		sl_buf_puts(out, "{\"error\":\"the registry did not list its subjects\"}");
		sl_buf_free(&b);
		return 0;
	}
	/* Each answer is rendered before the next registry call reuses b (the tree points into the parser's copy). */
	struct sl_json_iter it;
	struct sl_json_val sv;
	struct sl_buf one;
	sl_buf_init(&one);
	bool first = true;
	sl_json_iter_init(&it, root);
	while (sl_json_array_next(&it, &sv)) {
		const char *s;
		size_t sl;
		if (sl_json_str(sv, &s, &sl))
			continue;
		char enc[1024], target[1200];
		pct_encode(s, sl, enc, sizeof enc);
		if (!first)
			sl_buf_putc(out, ',');
		first = false;
		sl_buf_puts(out, "{\"subject\":");
		sl_buf_json_str(out, s, sl);
		sl_buf_puts(out, ",\"versions\":");
		snprintf(target, sizeof target, "/subjects/%s/versions", enc);
		sl_registry_handle(r, "GET", target, NULL, 0, &st, &one);
		if (st == 200 && one.len)
			sl_buf_append(out, one.data, one.len); /* a JSON array of ints, as the registry wrote it */
		else
			sl_buf_puts(out, "[]");
		sl_buf_puts(out, ",\"compatibility\":");
		snprintf(target, sizeof target, "/config/%s", enc);
		sl_registry_handle(r, "GET", target, NULL, 0, &st, &one);
		struct sl_json_parser *cp = NULL;
		struct sl_json_val croot, cv;
		if (st == 200 && !sl_json_parser_new(&cp, 1 << 20, 16, &err) &&
		    !sl_json_parse(cp, one.data, one.len, &croot, &err) && sl_json_get(croot, "compatibilityLevel", 18, &cv))
			sl_json_render(cv, out);
		else
			sl_buf_puts(out, "null");
		sl_json_parser_free(cp);
		sl_buf_putc(out, '}');
	}
	sl_buf_puts(out, "]}");
	sl_json_parser_free(jp);
	sl_buf_free(&one);
	sl_buf_free(&b);
	return sl_buf_ok(out) ? 0 : SL_ENOMEM;
}

int sl_console_plug_registry(struct sl_console *c, struct sl_registry *r)
{
	struct sl_console_route rt = {.prefix = "/api/schemas", .handler = registry_route, .ctx = r};
	struct sl_console_route sum = {.prefix = "/api/console/schemas", .handler = schemas_summary, .ctx = r};
	return sl_console_add_route(c, &rt) || sl_console_add_route(c, &sum) ? -1 : 0;
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

/* GET /api/dags/{id}/tasks, shaped like Airflow's: {"tasks":[{"task_id","downstream_task_ids",...}]}. */
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

static int sched_route(void *ctx, const char *method, const char *path, const char *query, const char *body,
		       size_t len, struct sl_buf *out, int *status, const char **ctype)
{
	char p[4096];
	snprintf(p, sizeof p, "/api/v1%s", path + strlen("/api"));
	*ctype = "application/json";
	/* /api/dags/{id}/tasks is not in the scheduler's API: answer it here from the DAG's definition. */
	const char *id = path + strlen("/api/dags/");
	const char *slash = strlen(path) > strlen("/api/dags/") ? strchr(id, '/') : NULL;
	if (slash && !strcmp(slash, "/tasks") && (size_t)(slash - id) < 512) {
		char dag[512];
		snprintf(dag, sizeof dag, "%.*s", (int)(slash - id), id);
		struct sl_err err = {0};
		struct sl_dag *d = sl_sched_dag(ctx, dag, &err);
		sl_buf_reset(out);
		if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
			*status = 405;
			sl_buf_puts(out, "{\"status\":405,\"title\":\"Method Not Allowed\",\"type\":\"about:blank\"}");
		} else if (!d) {
			*status = 404;
			sl_buf_puts(out, "{\"status\":404,\"title\":\"DAG not found\",\"detail\":");
			sl_buf_json_str(out, err.msg, strlen(err.msg));
			sl_buf_puts(out, ",\"type\":\"about:blank\"}");
		} else {
			*status = 200;
			tasks_json(d, out);
		}
		return sl_buf_ok(out) ? 0 : SL_ENOMEM;
	}
	return sl_sched_api_handle(ctx, method, p, query, body, len, out, status) < 0 ? 0 : 0;
}

int sl_console_plug_scheduler(struct sl_console *c, struct sl_sched *s)
{
	struct sl_console_route rt = {.prefix = "/api/dags", .handler = sched_route, .ctx = s};
	return sl_console_add_route(c, &rt);
}
