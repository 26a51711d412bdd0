/* Plugs the other roles' JSON APIs into the console as routes, so one port serves everything inside `sluice up`:
 * /api/schemas/... is the schema registry's Confluent-compatible REST API (/subjects, /schemas/ids/N, /config, ...),
 * /api/dags/... the scheduler's Airflow-shaped API (/api/v1/dags, dagRuns, taskInstances, logs). */
#include <stdio.h>
#include <string.h>

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

int sl_console_plug_registry(struct sl_console *c, struct sl_registry *r)
{
	struct sl_console_route rt = {.prefix = "/api/schemas", .handler = registry_route, .ctx = r};
	return sl_console_add_route(c, &rt);
}

static int sched_route(void *ctx, const char *method, const char *path, const char *query, const char *body,
		       size_t len, struct sl_buf *out, int *status, const char **ctype)
{
	char p[4096];
	snprintf(p, sizeof p, "/api/v1%s", path + strlen("/api"));
	*ctype = "application/json";
	return sl_sched_api_handle(ctx, method, p, query, body, len, out, status) < 0 ? 0 : 0;
}

int sl_console_plug_scheduler(struct sl_console *c, struct sl_sched *s)
{
	struct sl_console_route rt = {.prefix = "/api/dags", .handler = sched_route, .ctx = s};
	return sl_console_add_route(c, &rt);
}
