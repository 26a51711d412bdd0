/* The console's server: the `console:` option table, secrets, the collector thread, and the glue to src/http (which
 * owns connections, limits, timeouts and the access policy; responses gzip'd here when the client takes them).
 * Request handling itself is in api.c. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "console/internal.h"
#include "core/clock.h"
#include "core/log.h"
#include "http/http.h"

#define COMP "console"

const struct sl_opt sl_console_opts[] = {
	{"listen", SL_OPT_STRING, "127.0.0.1:8080", offsetof(struct sl_console_conf, listen),
	 "host:port of the web console, JSON API and /metrics. Beyond loopback, auth is required"},
	SL_HTTP_AUTH_OPTS(struct sl_console_conf, auth, "SLUICE_CONSOLE_TOKEN", "SLUICE_CONSOLE_PASSWORD"),
	SL_HTTP_AUTH_READ_OPTS(struct sl_console_conf, auth),
	{"max_body", SL_OPT_SIZE, "1MiB", offsetof(struct sl_console_conf, max_body),
	 "largest request body; larger ones get 413", .min = 1024, .max = 1 << 30},
	{"max_uri", SL_OPT_SIZE, "8KiB", offsetof(struct sl_console_conf, max_uri),
	 "longest request target (path and query); longer ones get 414", .min = 256, .max = 1 << 20},
	SL_HTTP_SERVER_OPTS(struct sl_console_conf, http),
	{"poll_interval", SL_OPT_DURATION, "1s", offsetof(struct sl_console_conf, poll_ms),
	 "how often the console samples the log, the groups and the tables", .min = 100, .max = 3600000},
	{"burrow_window", SL_OPT_INT, "10", offsetof(struct sl_console_conf, burrow_window),
	 "commits per partition that consumer-group status is evaluated over (Burrow's intervals)", .min = 2,
	 .max = SL_BURROW_MAX},
	{"health_window", SL_OPT_DURATION, "5m", offsetof(struct sl_console_conf, health_window_ms),
	 "/health looks at the error rate over this window"},
	{"health_max_error_rate", SL_OPT_DOUBLE, "0.05", offsetof(struct sl_console_conf, health_max_error_rate),
	 "/health answers 503 when errors per record in the window exceed this"},
	{"history", SL_OPT_INT, "900", offsetof(struct sl_console_conf, history),
	 "samples kept in memory per pipeline for the charts and the rules' windows", .min = 10, .max = 100000},
	{"retention", SL_OPT_DURATION, "24h", offsetof(struct sl_console_conf, retention_ms),
	 "how long samples are kept in data_dir/console.db (the charts' longer ranges; taken up again on restart)",
	 .min = 60000},
	{"webhook", SL_OPT_STRING, NULL, offsetof(struct sl_console_conf, webhook),
	 "URL that alert changes are POSTed to (Alertmanager-style JSON)"},
	{"registry", SL_OPT_SECTION, NULL, offsetof(struct sl_console_conf, registry),
	 "a schema registry in another process (sluice registry, or Confluent's) for the Schemas page and for "
	 "decoding Avro in the message browser; inside sluice up the in-process registry is used",
	 .sub = sl_con_registry_opts},
	{"scheduler", SL_OPT_SECTION, NULL, offsetof(struct sl_console_conf, scheduler),
	 "a scheduler's Airflow-shaped API in another process (sluice scheduler --api) for the DAGs page",
	 .sub = sl_con_scheduler_opts},
	{"max_tails", SL_OPT_INT, "4", offsetof(struct sl_console_conf, max_tails),
	 "live tails of the message browser (GET /api/kafka/tail, server-sent events) open at once; one more gets 503",
	 .min = 0, .max = 64},
	{"tail_max_time", SL_OPT_DURATION, "10m", offsetof(struct sl_console_conf, tail_max_ms),
	 "a live tail ends after this (the page offers to resume); it also ends when the client goes away",
	 .min = 1000, .max = 86400000},
	{"tail_heartbeat", SL_OPT_DURATION, "5s", offsetof(struct sl_console_conf, tail_heartbeat_ms),
	 "a live tail sends a comment line this often while no message comes (proxies keep the stream open, and a "
	 "client that left is noticed)", .min = 100, .max = 60000},
	{"rules", SL_OPT_NODE, NULL, offsetof(struct sl_console_conf, rules),
	 "alert rules: a list of {name, metric: lag|error_rate|dlq_growth|group_status, pipeline, above, for, "
	 "window, severity}; default: lag above 10000 for 2m, group stalled or stopped for 1m, error rate above 5% "
	 "for 1m, any dead letters in 5m"},
	{NULL},
};

int sl_con_init(struct sl_console *c, struct sl_conf *conf, const struct sl_console_start_opts *o,
		struct sl_err *err)
{
	memset(c, 0, sizeof *c);
	c->conf = conf;
	c->embedded = o && o->embedded;
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->cql_lock, NULL);
	pthread_mutex_init(&c->avro_lock, NULL);
	pthread_mutex_init(&c->tail_lock, NULL);
	int rc = conf->console ? sl_opt_bind(sl_console_opts, conf->console, "console", &c->cc, err)
			       : sl_opt_defaults(sl_console_opts, &c->cc, err);
	if (rc)
		return SL_ECONFIG;
	if (o && o->listen) {
		free(c->cc.listen);
		c->cc.listen = strdup(o->listen);
	}
	if (sl_con_parse_listen(c->cc.listen, c->host, sizeof c->host, &c->port))
		return sl_err_set(err, SL_ECONFIG, "console.listen: '%s' is not host:port (e.g. 127.0.0.1:8080)",
				  c->cc.listen);
	if ((rc = sl_http_auth_load(&c->sec, &c->cc.auth, "console", err)) || (rc = sl_con_remotes_init(c, err)))
		return rc;
	if ((rc = sl_http_auth_require(&c->sec, &c->cc.auth, c->host, "console", err)))
		return rc;
	c->npipes = conf->np;
	c->pipes = calloc(c->npipes ? c->npipes : 1, sizeof *c->pipes);
	if (!c->pipes)
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	for (size_t i = 0; i < c->npipes; i++) {
		c->pipes[i].p = &conf->p[i];
		c->pipes[i].table_rows = -1;
		c->pipes[i].lag_seconds = c->pipes[i].e2e_p50 = c->pipes[i].e2e_p95 = -1;
		c->pipes[i].ring = calloc((size_t)c->cc.history, sizeof *c->pipes[i].ring);
		if (!c->pipes[i].ring)
			return sl_err_set(err, SL_ENOMEM, "out of memory");
	}
	snprintf(c->address, sizeof c->address, "%s", c->cc.listen);
	if (sl_con_plug_remotes(c))
		return sl_err_set(err, SL_EINVAL, "console: cannot add the remote registry or scheduler routes");
	if ((rc = sl_con_rules_bind(c, err)))
		return rc;
	sl_con_store_load(c);
	return 0;
}

void sl_con_destroy(struct sl_console *c)
{
	sl_con_collect_close(c);
	sl_con_audit_close(c);
	sl_con_store_close(c);
	sl_con_avro_close(c);
	sl_con_remotes_free(c);
	for (size_t i = 0; c->pipes && i < c->npipes; i++) {
		free(c->pipes[i].parts);
		free(c->pipes[i].ring);
		free(c->pipes[i].out_rows);
	}
	free(c->pipes);
	sl_con_rules_free(c);
	sl_opt_free(sl_console_opts, &c->cc);
	sl_http_auth_free(&c->sec);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->cql_lock);
	pthread_mutex_destroy(&c->avro_lock);
	pthread_mutex_destroy(&c->tail_lock);
}

/* ---- the collector thread ---- */

static void *collector(void *arg)
{
	struct sl_console *c = arg;
	while (!c->stop) {
		sl_con_collect(c);
		for (int64_t slept = 0; !c->stop && slept < c->cc.poll_ms; slept += 50) {
			struct timespec ts = {0, 50 * 1000000};
			nanosleep(&ts, NULL);
		}
	}
	return NULL;
}

/* ---- HTTP (src/http) ---- */

static void refused(void *ctx, int status, const struct sl_http_head *h, const char *path, const char *message)
{
	struct sl_console *c = ctx;
	pthread_mutex_lock(&c->lock);
	c->requests++;
	if (status == 401)
		c->unauthorized++;
	pthread_mutex_unlock(&c->lock);
	/* A write the layer refused with 403 (a viewer's, or one from another origin) never reaches the console's
	 * handler, yet it is an attempted action: the Audit page shows who tried what. Refusals without credentials
	 * (401) are only counted: anyone can send those, and nothing names who. One SQLite insert on the I/O thread;
	 * such refusals need credentials or a browser, so they are rare. */
	if (status != 403 || !h->method || !sl_http_is_write(h->method))
		return;
	char fromcookie[1024];
	const char *authz = sl_http_head_get(h, "Authorization");
	if (!authz && sl_http_cookie_auth(sl_http_head_get(h, "Cookie"), SL_CON_AUTH_COOKIE, fromcookie,
					  sizeof fromcookie))
		authz = fromcookie;
	char detail[300];
	snprintf(detail, sizeof detail, "refused: %s", message ? message : "forbidden");
	sl_con_audit(c, authz, h->method, path, detail, status);
}

static void handle(void *ctx, const struct sl_http_req *hr, struct sl_http_resp *out)
{
	struct sl_console *c = ctx;
	/* A browser logged in through /login carries its credential in a cookie (the HTTP layer checked it). */
	char fromcookie[1024];
	const char *authz = sl_http_req_header(hr, "Authorization");
	if (!authz && sl_http_cookie_auth(sl_http_req_header(hr, "Cookie"), SL_CON_AUTH_COOKIE, fromcookie,
					  sizeof fromcookie))
		authz = fromcookie;
	struct sl_con_req rq = {
		.method = hr->method,
		.target = hr->target,
		.authorization = authz,
		.accept = sl_http_req_header(hr, "Accept"),
		.accept_encoding = sl_http_req_header(hr, "Accept-Encoding"),
		.if_none_match = sl_http_req_header(hr, "If-None-Match"),
		.origin = sl_http_req_header(hr, "Origin"),
		.host = sl_http_req_header(hr, "Host"),
		.body = hr->body,
		.len = hr->len,
	};
	struct sl_con_resp rs = {0};
	sl_buf_init(&rs.body);
	double t0 = sl_mono_s();
	sl_con_dispatch(c, &rq, &rs);
	out->status = rs.status;
	out->ctype = rs.status == 304 ? NULL : rs.ctype;
	if (rs.static_gz) {
		out->data = rs.static_gz;
		out->data_len = rs.static_gz_len;
		sl_http_resp_header(out, "Content-Encoding", "gzip");
	} else if (rs.static_data) {
		out->data = rs.static_data;
		out->data_len = rs.static_len;
	} else if (sl_con_accepts_gzip(rq.accept_encoding) && rs.body.len > 1024 &&
		   sl_con_gzip(rs.body.data, rs.body.len, &out->body) == 0) {
		sl_http_resp_header(out, "Content-Encoding", "gzip");
	} else {
		sl_buf_reset(&out->body);
		sl_buf_append(&out->body, rs.body.data ? rs.body.data : "", rs.body.len);
	}
	sl_buf_free(&rs.body);
	sl_http_resp_header(out, "Vary", "Accept-Encoding");
	/* The console's own time for the answer (gzip included), so a browser's Resource Timing tells the server's part
	 * of a page load from the network's and its own (docs/console.md, page loads). */
	sl_http_resp_header(out, "Server-Timing", "console;dur=%.3f", (sl_mono_s() - t0) * 1000.0);
	if (rs.cache_control)
		sl_http_resp_header(out, "Cache-Control", "%s", rs.cache_control);
	if (rs.etag[0])
		sl_http_resp_header(out, "ETag", "%s", rs.etag);
	if (rs.set_cookie[0])
		sl_http_resp_header(out, "Set-Cookie", "%s", rs.set_cookie);
	if (rs.stream) {
		out->stream = rs.stream;
		out->stream_arg = rs.stream_arg;
		sl_buf_reset(&out->body);
	}
	if (rs.www_authenticate)
		sl_http_resp_header(out, "WWW-Authenticate", "%s",
				    c->sec.user && c->sec.password ? "Basic realm=\"sluice\", charset=\"UTF-8\""
								  : "Bearer realm=\"sluice\"");
}

/* /health and /ready for probes; the login page and what it needs, so a browser can get to it. */
static const char *const open_paths[] = {"/health", "/ready", "/login", "/login.js", "/login.css", NULL};

int sl_console_start(struct sl_conf *conf, const struct sl_console_start_opts *o, struct sl_console **out,
		     struct sl_err *err)
{
	struct sl_console *c = calloc(1, sizeof *c);
	if (!c)
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	int rc = sl_con_init(c, conf, o, err);
	if (rc) {
		sl_con_destroy(c);
		free(c);
		return rc;
	}
	struct sl_http_server_opts ho = {
		.name = "console",
		.host = c->host,
		.port = c->port,
		.conf = &c->cc.http,
		.max_body = c->cc.max_body,
		.max_target = c->cc.max_uri,
		.auth = &c->sec,
		.realm = "sluice",
		.open_paths = open_paths,
		.auth_cookie = SL_CON_AUTH_COOKIE,
		.login_path = "/login",
		.handler = handle,
		.ctx = c,
		.on_refused = refused,
	};
	struct sl_http_server *d;
	if ((rc = sl_http_start(&ho, &d, err))) {
		sl_con_destroy(c);
		free(c);
		return rc;
	}
	c->httpd = d;
	c->port = sl_http_port(d);
	snprintf(c->address, sizeof c->address, strchr(c->host, ':') ? "[%s]:%d" : "%s:%d", c->host, c->port);
	sl_con_collect(c); /* the first sample before the first page asks */
	if (pthread_create(&c->thread, NULL, collector, c) == 0)
		c->thread_started = true;
	sl_info(COMP, "listening url=http://%s/ auth=%s pipelines=%zu", c->address,
		c->sec.token ? (c->sec.user ? "token+basic" : "token") : (c->sec.user ? "basic" : "off"), c->npipes);
	*out = c;
	return 0;
}

int sl_console_add_route(struct sl_console *c, const struct sl_console_route *r)
{
	pthread_mutex_lock(&c->lock);
	int rc = 0;
	if (c->nroutes >= sizeof c->routes / sizeof *c->routes || !r->prefix || r->prefix[0] != '/' || !r->handler)
		rc = SL_EINVAL;
	else
		c->routes[c->nroutes++] = *r;
	pthread_mutex_unlock(&c->lock);
	return rc;
}

const char *sl_console_address(const struct sl_console *c)
{
	return c->address;
}

void sl_console_stop(struct sl_console *c)
{
	if (!c)
		return;
	if (c->httpd)
		sl_http_stop(c->httpd);
	c->stop = 1;
	if (c->thread_started)
		pthread_join(c->thread, NULL);
	sl_con_tails_stop(c); /* they read the collector's log, which sl_con_destroy closes */
	sl_con_destroy(c);
	free(c);
}
