/* Plugs the other roles' JSON APIs into the console as routes, so one port serves everything inside `sluice up`:
 * /api/schemas/... is the schema registry's Confluent-compatible REST API (/subjects, /schemas/ids/N, /config, ...),
 * /api/dags/... the scheduler's Airflow-shaped API (/api/v1/dags, tasks, dagRuns, taskInstances, logs), plus what
 * the Schemas page needs that the registry's API lacks: /api/console/schemas (every subject with its versions and
 * subject-level compatibility in one answer, so the page polls once instead of twice per subject and never provokes
 * the registry's 404s). */
#include <stdio.h>
#include <string.h>

#include "codec/json.h"
#include "console/internal.h"
#include "registry/registry.h"
#include "scheduler/sched.h"

static void local_get(void *ctx, const char *target, int *status, struct sl_buf *out)
{
	sl_registry_handle(ctx, "GET", target, NULL, 0, status, out);
}

static void remote_get(void *ctx, const char *target, int *status, struct sl_buf *out)
{
	struct sl_err err = {0};
	if (sl_con_remote_call(ctx, "GET", target, NULL, 0, status, out, NULL, 0, &err))
		*status = 502;
}

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

/* Percent-encodes a subject for a registry request target (subjects may hold '/', '?', '%', spaces), keeping
 * unreserved characters and those in keep. */
static void pct_encode(const char *s, size_t n, const char *keep, char *out, size_t outsz)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	for (size_t i = 0; i < n && o + 4 < outsz; i++) {
		unsigned char ch = (unsigned char)s[i];
		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		    (ch && (strchr("-._~", ch) || strchr(keep, ch)))) {
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
	const struct sl_con_reg_source *r = ctx;
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
	r->get(r->ctx, "/config", &st, &b);
	if (st == 200 && !sl_json_parser_new(&jp, 1 << 20, 16, &err) && !sl_json_parse(jp, b.data, b.len, &root, &err) &&
	    sl_json_get(root, "compatibilityLevel", 18, &v))
		sl_json_render(v, out);
	else
		sl_buf_puts(out, "null");
	sl_json_parser_free(jp);
	jp = NULL;
	sl_buf_puts(out, ",\"subjects\":[");
	r->get(r->ctx, "/subjects", &st, &b);
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
		pct_encode(s, sl, "", enc, sizeof enc);
		if (!first)
			sl_buf_putc(out, ',');
		first = false;
		sl_buf_puts(out, "{\"subject\":");
		sl_buf_json_str(out, s, sl);
		sl_buf_puts(out, ",\"versions\":");
		snprintf(target, sizeof target, "/subjects/%s/versions", enc);
		r->get(r->ctx, target, &st, &one);
		if (st == 200 && one.len)
			sl_buf_append(out, one.data, one.len); /* a JSON array of ints, as the registry wrote it */
		else
			sl_buf_puts(out, "[]");
		sl_buf_puts(out, ",\"compatibility\":");
		snprintf(target, sizeof target, "/config/%s", enc);
		r->get(r->ctx, target, &st, &one);
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
	struct sl_con_reg_source *rs = &c->reg_source[0];
	pthread_mutex_lock(&c->lock);
	*rs = (struct sl_con_reg_source){local_get, r};
	c->registry = r;
	pthread_mutex_unlock(&c->lock);
	struct sl_console_route rt = {.prefix = "/api/schemas", .handler = registry_route, .ctx = r};
	struct sl_console_route sum = {.prefix = "/api/console/schemas", .handler = schemas_summary, .ctx = rs};
	return sl_console_add_route(c, &rt) || sl_console_add_route(c, &sum) ? -1 : 0;
}

static int sched_route(void *ctx, const char *method, const char *path, const char *query, const char *body,
		       size_t len, struct sl_buf *out, int *status, const char **ctype)
{
	char p[4096];
	snprintf(p, sizeof p, "/api/v1%s", path + strlen("/api"));
	*ctype = "application/json";
	sl_sched_api_handle(ctx, method, p, query, body, len, out, status);
	return sl_buf_ok(out) ? 0 : SL_ENOMEM;
}

int sl_console_plug_scheduler(struct sl_console *c, struct sl_sched *s)
{
	struct sl_console_route rt = {.prefix = "/api/dags", .handler = sched_route, .ctx = s};
	return sl_console_add_route(c, &rt);
}

/* ---- roles in other processes (console.registry.url, console.scheduler.url) ---- */

/* Passes a request on to a remote role: path is the console's (/api/schemas/..., /api/dags/...), strip what the
 * console put before the remote's own path, then prefix is what the remote's url lacks. The answer comes back as
 * it is; no answer at all is a 502. */
static int forward(const struct sl_con_remote *r, const char *method, const char *rest, const char *query,
		   const char *body, size_t len, struct sl_buf *out, int *status, const char **ctype)
{
	char target[8400], enc[6200];
	char ct[128];
	struct sl_err err = {0};
	/* The console's path arrives decoded but for "%2F", "%3F", "%23" and "%25" (sl_con_route_path): encode the rest
	 * again, '/' kept as the separator and those escapes as they are (the query is still raw). */
	pct_encode(rest, strlen(rest), "/:@%", enc, sizeof enc);
	snprintf(target, sizeof target, "%s%s%s", enc, *query ? "?" : "", query);
	bool has_body = strcmp(method, "GET") && strcmp(method, "HEAD") && strcmp(method, "DELETE");
	if (sl_con_remote_call(r, method, target, has_body ? (body ? body : "") : NULL, has_body ? len : 0, status, out,
			       ct, sizeof ct, &err)) {
		sl_buf_reset(out);
		sl_buf_puts(out, "{\"error\":");
		sl_buf_json_str(out, err.msg, strlen(err.msg));
		sl_buf_puts(out, "}");
		*status = 502;
		*ctype = "application/json";
		return 0;
	}
	/* Only JSON (or plain text: task logs) is relayed as such; anything else is not rendered as a page. */
	*ctype = strstr(ct, "schemaregistry") && strstr(ct, "json") ? "application/vnd.schemaregistry.v1+json"
		 : !strncmp(ct, "application/", 12) && strstr(ct, "json") ? "application/json"
		 : !strncmp(ct, "text/plain", 10)                         ? "text/plain; charset=utf-8"
									    : "application/octet-stream";
	return 0;
}

static int remote_registry_route(void *ctx, const char *method, const char *path, const char *query,
				 const char *body, size_t len, struct sl_buf *out, int *status, const char **ctype)
{
	const char *rest = path + strlen("/api/schemas");
	return forward(ctx, method, *rest ? rest : "/subjects", query, body, len, out, status, ctype);
}

static int remote_sched_route(void *ctx, const char *method, const char *path, const char *query, const char *body,
			      size_t len, struct sl_buf *out, int *status, const char **ctype)
{
	return forward(ctx, method, path + strlen("/api"), query, body, len, out, status, ctype); /* /dags/... */
}

int sl_con_plug_remotes(struct sl_console *c)
{
	int rc = 0;
	struct sl_con_remote *reg = &c->remote[SL_CON_REMOTE_REGISTRY], *sch = &c->remote[SL_CON_REMOTE_SCHEDULER];
	if (reg->on) {
		c->reg_source[1] = (struct sl_con_reg_source){remote_get, reg};
		struct sl_console_route rt = {.prefix = "/api/schemas", .handler = remote_registry_route, .ctx = reg};
		struct sl_console_route sum = {.prefix = "/api/console/schemas", .handler = schemas_summary,
					       .ctx = &c->reg_source[1]};
		rc = sl_console_add_route(c, &rt) || sl_console_add_route(c, &sum);
	}
	if (sch->on) {
		struct sl_console_route rt = {.prefix = "/api/dags", .handler = remote_sched_route, .ctx = sch};
		rc = rc || sl_console_add_route(c, &rt);
	}
	return rc ? SL_EINVAL : 0;
}
