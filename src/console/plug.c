/* Plugs the other roles' JSON APIs into the console as routes, so one port serves everything inside `sluice up`:
 * /api/schemas/... is the schema registry's Confluent-compatible REST API (/subjects, /schemas/ids/N, /config, ...),
 * /api/dags/... the scheduler's Airflow-shaped API (/api/v1/dags, tasks, dagRuns, taskInstances, logs), plus what
 * the Schemas page needs that the registry's API lacks: /api/console/schemas (a page of subjects with their versions
 * and subject-level compatibility in one answer, cached, so the page polls once instead of twice per subject and
 * never provokes the registry's 404s). */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/json.h"
#include "console/internal.h"
#include "core/ident.h"
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

static void cache_invalidate(struct sl_con_schema_cache *sc);

static bool is_write(const char *method)
{
	return strcmp(method, "GET") && strcmp(method, "HEAD");
}

static int registry_route(void *ctx, const char *method, const char *path, const char *query, const char *body,
			  size_t len, struct sl_buf *out, int *status, const char **ctype)
{
	const struct sl_con_reg_source *rs = ctx;
	char target[4096];
	const char *rest = path + strlen("/api/schemas");
	snprintf(target, sizeof target, "%s%s%s", *rest ? rest : "/subjects", *query ? "?" : "", query);
	sl_registry_handle(rs->ctx, method, target, body, len, status, out);
	if (is_write(method))
		cache_invalidate(rs->cache);
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

/* ---- the Schemas summary: GET /api/console/schemas?offset=N&limit=N ----
 *
 * {"compatibility":"BACKWARD","total":2000,"offset":0,"limit":100,"subjects":[{"subject","versions":[..],
 * "compatibility":"FULL"|null}]} — the subject-level compatibility is null when the subject follows the global level.
 *
 * The registry has no call that answers this in one go, so each subject costs two calls (versions, config). The
 * first version of this page made them for every subject on every poll: 2,000 subjects meant 4,000 registry calls a
 * second per open page. Now the answer is one page of subjects, and the summary keeps what it learnt: the subject
 * list and the global level are asked again at most every SUMMARY_TTL_MS, a subject's entry when it is shown and
 * older than that; a write made through the console's registry routes drops it all at once. One summary costs at
 * most 2 + 2 x limit registry calls, and none while the cache is fresh; concurrent pollers wait for one refresh
 * (the cache's lock) instead of each asking the registry. */
#define SUMMARY_TTL_MS 3000
#define SUMMARY_LIMIT_DEFAULT 100
#define SUMMARY_LIMIT_MAX 500

struct summary_entry {
	char *subject;
	char *json; /* the entry as answered; NULL until fetched */
	int64_t at_ms;
};

struct sl_con_schema_cache {
	pthread_mutex_t mu;
	int64_t list_at_ms; /* 0: stale */
	char *compat;       /* the global level as a JSON value */
	struct summary_entry *e;
	size_t n;
};

static struct sl_con_schema_cache *cache_new(void)
{
	struct sl_con_schema_cache *sc = calloc(1, sizeof *sc);
	if (sc)
		pthread_mutex_init(&sc->mu, NULL);
	return sc;
}

static void entries_free(struct summary_entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(e[i].subject);
		free(e[i].json);
	}
	free(e);
}

void sl_con_schema_cache_free(struct sl_con_schema_cache *sc)
{
	if (!sc)
		return;
	entries_free(sc->e, sc->n);
	free(sc->compat);
	pthread_mutex_destroy(&sc->mu);
	free(sc);
}

/* After a write through the console: the next summary asks the registry again. */
static void cache_invalidate(struct sl_con_schema_cache *sc)
{
	if (!sc)
		return;
	pthread_mutex_lock(&sc->mu);
	sc->list_at_ms = 0;
	for (size_t i = 0; i < sc->n; i++)
		sc->e[i].at_ms = 0;
	pthread_mutex_unlock(&sc->mu);
}

static int entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct summary_entry *)a)->subject, ((const struct summary_entry *)b)->subject);
}

/* Lists the subjects and the global level again; keeps the entries of subjects still there. Lock held. */
static int cache_refresh_list(const struct sl_con_reg_source *r, struct sl_con_schema_cache *sc, int64_t now,
			      int *status)
{
	struct sl_buf b;
	sl_buf_init(&b);
	struct sl_err err = {0};
	struct sl_json_parser *jp = NULL;
	struct sl_json_val root = {{0}}, v;
	int st = 0;
	r->get(r->ctx, "/config", &st, &b);
	struct sl_buf compat;
	sl_buf_init(&compat);
	if (st == 200 && !sl_json_parser_new(&jp, 1 << 20, 16, &err) && !sl_json_parse(jp, b.data, b.len, &root, &err) &&
	    sl_json_get(root, "compatibilityLevel", 18, &v))
		sl_json_render(v, &compat);
	else
		sl_buf_puts(&compat, "null");
	sl_json_parser_free(jp);
	jp = NULL;
	r->get(r->ctx, "/subjects", &st, &b);
	if (st != 200 || sl_json_parser_new(&jp, 0, 16, &err) || sl_json_parse(jp, b.data, b.len, &root, &err) ||
	    sl_json_type(root) != SL_JSON_ARRAY) {
		sl_json_parser_free(jp);
		sl_buf_free(&b);
		sl_buf_free(&compat);
		*status = st >= 400 ? st : 500;
		return -1;
	}
	size_t n = sl_json_len(root), k = 0;
	struct summary_entry *e = calloc(n ? n : 1, sizeof *e);
	struct sl_json_iter it;
	struct sl_json_val sv;
	sl_json_iter_init(&it, root);
	while (e && sl_json_array_next(&it, &sv) && k < n) {
		const char *s;
		size_t sl;
		if (sl_json_str(sv, &s, &sl) || !(e[k].subject = strndup(s, sl)))
			continue;
		struct summary_entry key = {.subject = e[k].subject}, *old =
			sc->e ? bsearch(&key, sc->e, sc->n, sizeof *sc->e, entry_cmp) : NULL;
		if (old) {
			e[k].json = old->json, e[k].at_ms = old->at_ms;
			old->json = NULL;
		}
		k++;
	}
	sl_json_parser_free(jp);
	sl_buf_free(&b);
	if (!e || !sl_buf_ok(&compat)) {
		free(e);
		sl_buf_free(&compat);
		*status = 500;
		return -1;
	}
	qsort(e, k, sizeof *e, entry_cmp); /* the registry lists them sorted already; the lookup above relies on it */
	entries_free(sc->e, sc->n);
	free(sc->compat);
	sc->e = e;
	sc->n = k;
	sc->compat = strdup(sl_buf_cstr(&compat));
	sl_buf_free(&compat);
	sc->list_at_ms = now;
	return 0;
}

/* Asks the registry for one subject's versions and level. Lock held. */
static void cache_refresh_entry(const struct sl_con_reg_source *r, struct summary_entry *e, int64_t now)
{
	struct sl_buf one, out;
	sl_buf_init(&one);
	sl_buf_init(&out);
	struct sl_err err = {0};
	char enc[3 * 512 + 4], target[3 * 512 + 40];
	int st = 0;
	pct_encode(e->subject, strlen(e->subject), "", enc, sizeof enc);
	sl_buf_puts(&out, "{\"subject\":");
	sl_buf_json_str(&out, e->subject, strlen(e->subject));
	sl_buf_puts(&out, ",\"versions\":");
	snprintf(target, sizeof target, "/subjects/%s/versions", enc);
	r->get(r->ctx, target, &st, &one);
	struct sl_json_parser *cp = NULL;
	struct sl_json_val croot, cv;
	/* Re-rendered through the parser: only a JSON array goes into the answer, whatever the registry sent. */
	if (st == 200 && !sl_json_parser_new(&cp, 1 << 20, 16, &err) && !sl_json_parse(cp, one.data, one.len, &croot, &err) &&
	    sl_json_type(croot) == SL_JSON_ARRAY)
		sl_json_render(croot, &out);
	else
		sl_buf_puts(&out, "[]");
	sl_buf_puts(&out, ",\"compatibility\":");
	snprintf(target, sizeof target, "/config/%s", enc);
	r->get(r->ctx, target, &st, &one);
	if (st == 200 && cp && !sl_json_parse(cp, one.data, one.len, &croot, &err) &&
	    sl_json_get(croot, "compatibilityLevel", 18, &cv) && sl_json_type(cv) == SL_JSON_STRING)
		sl_json_render(cv, &out);
	else
		sl_buf_puts(&out, "null");
	sl_json_parser_free(cp);
	sl_buf_putc(&out, '}');
	if (sl_buf_ok(&out)) {
		free(e->json);
		e->json = strdup(sl_buf_cstr(&out));
		e->at_ms = now;
	}
	sl_buf_free(&one);
	sl_buf_free(&out);
}

static int schemas_summary(void *ctx, const char *method, const char *path, const char *query, const char *body,
			   size_t len, struct sl_buf *out, int *status, const char **ctype)
{
	(void)body, (void)len;
	const struct sl_con_reg_source *r = ctx;
	struct sl_con_schema_cache *sc = r->cache;
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
	int64_t offset, limit;
	if (sl_con_query_int(query, "offset", 0, 0, INT32_MAX, &offset) < 0 ||
	    sl_con_query_int(query, "limit", SUMMARY_LIMIT_DEFAULT, 1, SUMMARY_LIMIT_MAX, &limit) < 0) {
		*status = 400;
		sl_buf_puts(out, "{\"error\":\"bad query: offset=N&limit=1..500\"}");
		return 0;
	}
	if (!sc) {
		*status = 500;
		sl_buf_puts(out, "{\"error\":\"out of memory\"}");
		return 0;
	}
	pthread_mutex_lock(&sc->mu);
	int64_t now = sl_con_now_ms();
	if (!sc->list_at_ms || now - sc->list_at_ms >= SUMMARY_TTL_MS || now < sc->list_at_ms) {
		if (cache_refresh_list(r, sc, now, status)) {
			pthread_mutex_unlock(&sc->mu);
			sl_buf_puts(out, "{\"error\":\"the registry did not list its subjects\"}");
			return 0;
		}
	}
	*status = 200;
	size_t from = (size_t)offset < sc->n ? (size_t)offset : sc->n;
	size_t to = from + (size_t)limit < sc->n ? from + (size_t)limit : sc->n;
	sl_buf_printf(out, "{\"compatibility\":%s,\"total\":%zu,\"offset\":%zu,\"limit\":%lld,\"subjects\":[",
		      sc->compat ? sc->compat : "null", sc->n, from, (long long)limit);
	for (size_t i = from; i < to; i++) {
		struct summary_entry *e = &sc->e[i];
		if (!e->json || !e->at_ms || now - e->at_ms >= SUMMARY_TTL_MS || now < e->at_ms)
			cache_refresh_entry(r, e, now);
		if (i > from)
			sl_buf_putc(out, ',');
		sl_buf_puts(out, e->json ? e->json : "null");
	}
	pthread_mutex_unlock(&sc->mu);
	sl_buf_puts(out, "]}");
	return sl_buf_ok(out) ? 0 : SL_ENOMEM;
}

int sl_console_plug_registry(struct sl_console *c, struct sl_registry *r)
{
	struct sl_con_reg_source *rs = &c->reg_source[0];
	pthread_mutex_lock(&c->lock);
	*rs = (struct sl_con_reg_source){local_get, r, rs->cache ? rs->cache : cache_new()};
	c->registry = r;
	pthread_mutex_unlock(&c->lock);
	struct sl_console_route rt = {.prefix = "/api/schemas", .handler = registry_route, .ctx = rs};
	struct sl_console_route sum = {.prefix = "/api/console/schemas", .handler = schemas_summary, .ctx = rs};
	return sl_console_add_route(c, &rt) || sl_console_add_route(c, &sum) ? -1 : 0;
}

/* The DAG, run and task ids of a console DAG path (/api/dags/D/dagRuns/R/taskInstances/T/...), checked where they
 * enter the console, before the request goes to a scheduler here or elsewhere; answered as the scheduler's API
 * answers errors. */
static bool dag_path_ok(const char *path, struct sl_buf *out, int *status)
{
	static const enum sl_ident_kind kinds[] = {SL_IDENT_DAG, SL_IDENT_DAG, SL_IDENT_RUN, SL_IDENT_RUN, SL_IDENT_TASK};
	struct sl_err err = {0};
	const char *p = path + strlen("/api/dags");
	for (int i = 0; *p == '/' && i < 5; i++) {
		size_t n = strcspn(++p, "/");
		bool every = i == 4 && n == 1 && *p == '~' && !strcmp(p + 1, "/tries"); /* Airflow's "every task" */
		if (i % 2 == 0 && n && !every && sl_ident_check(kinds[i], p, n, &err)) {
			sl_buf_reset(out);
			sl_buf_puts(out, "{\"status\":400,\"title\":\"Bad Request\",\"detail\":");
			sl_buf_json_str(out, err.msg, strlen(err.msg));
			sl_buf_puts(out, ",\"type\":\"about:blank\"}");
			*status = 400;
			return false;
		}
		p += n;
	}
	return true;
}

static int sched_route(void *ctx, const char *method, const char *path, const char *query, const char *body,
		       size_t len, struct sl_buf *out, int *status, const char **ctype)
{
	char p[4096];
	snprintf(p, sizeof p, "/api/v1%s", path + strlen("/api"));
	*ctype = "application/json";
	if (!dag_path_ok(path, out, status))
		return 0;
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
	const struct sl_con_reg_source *rs = ctx;
	const char *rest = path + strlen("/api/schemas");
	int rc = forward(rs->ctx, method, *rest ? rest : "/subjects", query, body, len, out, status, ctype);
	if (is_write(method))
		cache_invalidate(rs->cache);
	return rc;
}

static int remote_sched_route(void *ctx, const char *method, const char *path, const char *query, const char *body,
			      size_t len, struct sl_buf *out, int *status, const char **ctype)
{
	if (!dag_path_ok(path, out, status)) {
		*ctype = "application/json";
		return 0;
	}
	return forward(ctx, method, path + strlen("/api"), query, body, len, out, status, ctype); /* /dags/... */
}

int sl_con_plug_remotes(struct sl_console *c)
{
	int rc = 0;
	struct sl_con_remote *reg = &c->remote[SL_CON_REMOTE_REGISTRY], *sch = &c->remote[SL_CON_REMOTE_SCHEDULER];
	if (reg->on) {
		c->reg_source[1] = (struct sl_con_reg_source){remote_get, reg,
							      c->reg_source[1].cache ? c->reg_source[1].cache : cache_new()};
		struct sl_console_route rt = {.prefix = "/api/schemas", .handler = remote_registry_route,
					      .ctx = &c->reg_source[1]};
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
