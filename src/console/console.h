/* The console: sluice's Control Center. An HTTP server (src/http) that serves the web UI embedded in the binary
 * (web/), a JSON API behind every page, Prometheus /metrics (sluice_* plus consumer lag under kafka_exporter's names),
 * /health (error rate over a window) and /ready (every part reachable). It runs alone (`sluice console`), reading
 * what it can compute from the log and the tables, or inside `sluice up`, where the pipelines' own metrics are in the
 * same process.
 *
 * Other roles (the registry, the scheduler) plug their JSON APIs in as routes: a handler per path prefix. */
#ifndef SL_CONSOLE_H
#define SL_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/httpauth.h"
#include "http/http.h"

struct sl_conf;

/* One alert rule (console.alerts.rules[]). */
struct sl_console_rule {
	char *name;
	char *metric;     /* lag | error_rate | dlq_growth | group_status */
	char *pipeline;   /* NULL: every pipeline */
	double above;     /* fires while the value is above this (group_status: 0 OK, 1 WARN, 2 STALL, 3 STOP/REWIND) */
	int64_t for_ms;   /* ... for at least this long */
	int64_t window_ms;/* error_rate, dlq_growth: the window the value is computed over */
	char *severity;
};

/* console.registry and console.scheduler: a role running in another process, reached over HTTP. */
struct sl_con_remote_conf {
	char *url;
	struct sl_http_auth_conf auth;       /* what is sent to it, read as its own listener reads it */
	int64_t timeout_ms;
};

/* The top-level `console:` section, bound through sl_console_opts. */
struct sl_console_conf {
	char *listen;            /* host:port */
	struct sl_http_auth_conf auth;      /* where the bearer token and basic credentials come from */
	int64_t max_body;        /* bytes of a request body */
	int64_t max_uri;         /* bytes of the request line's target */
	struct sl_http_conf http;           /* allowed_hosts, connection limits and timeouts (src/http) */
	int64_t poll_ms;         /* how often the collector samples the log and the tables */
	int64_t burrow_window;   /* commits per partition in Burrow's sliding window */
	int64_t health_window_ms;
	double health_max_error_rate;
	int64_t history;         /* samples kept for charts */
	int64_t retention_ms;    /* samples kept in console.db this long */
	char *webhook;           /* alerts go here (POST, Alertmanager-like JSON) */
	const struct sl_cfg_node *rules; /* sequence of rules; NULL: the defaults */
	struct sl_con_remote_conf registry;  /* a registry elsewhere: Schemas page, Avro in the message browser */
	struct sl_con_remote_conf scheduler; /* a scheduler's API elsewhere: DAGs page */
	int64_t max_tails;       /* live tails (server-sent events) open at once; more get 503 */
	int64_t tail_max_ms;     /* a live tail ends after this */
	int64_t tail_heartbeat_ms; /* a comment line this often while no message comes */
};
extern const struct sl_opt sl_console_opts[];

/* A route handler: fills out (and *status, *ctype) for method+path. query is the raw query string (may be ""),
 * body/len the request body (POST/PUT). Return 0, or a negative SL_E* to answer 500 with the error's message. */
struct sl_console;
typedef int (*sl_console_handler)(void *ctx, const char *method, const char *path, const char *query,
				  const char *body, size_t len, struct sl_buf *out, int *status, const char **ctype);

struct sl_console_route {
	const char *prefix;     /* "/api/schemas" matches "/api/schemas" and "/api/schemas/..." */
	sl_console_handler handler;
	void *ctx;
};

struct sl_console_start_opts {
	const char *listen;     /* overrides console.listen when set */
	bool embedded;          /* inside `sluice up`: the pipelines run in this process */
};

/* Binds the console section (conf->console, may be NULL), reads the secrets, starts the collector thread and the
 * HTTP server. Fails when bound beyond loopback without auth, or when the port is taken. */
int sl_console_start(struct sl_conf *conf, const struct sl_console_start_opts *o, struct sl_console **out,
		     struct sl_err *err);
/* Adds a route (before or after start); later routes with the same prefix win. At most 32. */
int sl_console_add_route(struct sl_console *c, const struct sl_console_route *r);
/* The address actually bound (port resolved when listen asked for :0). */
const char *sl_console_address(const struct sl_console *c);
/* Serve the registry's REST API under /api/schemas/ and the scheduler's under /api/dags/ (plug.c). Without them,
 * console.registry.url and console.scheduler.url serve the same from roles in other processes. */
struct sl_registry;
struct sl_sched;
int sl_console_plug_registry(struct sl_console *c, struct sl_registry *r);
int sl_console_plug_scheduler(struct sl_console *c, struct sl_sched *s);
void sl_console_stop(struct sl_console *c);

#endif
