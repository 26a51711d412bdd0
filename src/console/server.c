/* The console's server: the `console:` option table, secrets, the collector thread, and the libmicrohttpd glue (a
 * small thread pool; request targets, headers and bodies are bounded; responses gzip'd when the client takes it).
 * Request handling itself is in api.c. */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
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
#include "core/log.h"

#define COMP "console"

const struct sl_opt sl_console_opts[] = {
	{"listen", SL_OPT_STRING, "127.0.0.1:8080", offsetof(struct sl_console_conf, listen),
	 "host:port of the web console, JSON API and /metrics. Beyond loopback, auth is required"},
	SL_HTTP_AUTH_OPTS(struct sl_console_conf, auth, "SLUICE_CONSOLE_TOKEN", "SLUICE_CONSOLE_PASSWORD"),
	{"max_body", SL_OPT_SIZE, "1MiB", offsetof(struct sl_console_conf, max_body),
	 "largest request body; larger ones get 413", .min = 1024, .max = 1 << 30},
	{"max_uri", SL_OPT_SIZE, "8KiB", offsetof(struct sl_console_conf, max_uri),
	 "longest request target (path and query); longer ones get 414", .min = 256, .max = 1 << 20},
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
	 "samples kept per pipeline for the charts", .min = 10, .max = 100000},
	{"webhook", SL_OPT_STRING, NULL, offsetof(struct sl_console_conf, webhook),
	 "URL that alert changes are POSTed to (Alertmanager-style JSON)"},
	{"registry", SL_OPT_SECTION, NULL, offsetof(struct sl_console_conf, registry),
	 "a schema registry in another process (sluice registry, or Confluent's) for the Schemas page and for "
	 "decoding Avro in the message browser; inside sluice up the in-process registry is used",
	 .sub = sl_con_registry_opts},
	{"scheduler", SL_OPT_SECTION, NULL, offsetof(struct sl_console_conf, scheduler),
	 "a scheduler's Airflow-shaped API in another process (sluice scheduler --api) for the DAGs page",
	 .sub = sl_con_scheduler_opts},
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
	return sl_con_rules_bind(c, err);
}

void sl_con_destroy(struct sl_console *c)
{
	sl_con_collect_close(c);
	sl_con_avro_close(c);
	sl_con_remotes_free(c);
	for (size_t i = 0; c->pipes && i < c->npipes; i++) {
		free(c->pipes[i].parts);
		free(c->pipes[i].ring);
	}
	free(c->pipes);
	sl_con_rules_free(c);
	sl_opt_free(sl_console_opts, &c->cc);
	sl_http_auth_free(&c->sec);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->cql_lock);
	pthread_mutex_destroy(&c->avro_lock);
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

/* ---- libmicrohttpd ---- */

struct conn {
	char *target;
	struct sl_buf body;
	bool started, too_big;
};

static void *uri_log(void *cls, const char *uri, struct MHD_Connection *con)
{
	(void)cls;
	(void)con;
	struct conn *k = calloc(1, sizeof *k);
	if (k) {
		k->target = strdup(uri ? uri : "");
		sl_buf_init(&k->body);
	}
	return k;
}

static void completed(void *cls, struct MHD_Connection *con, void **con_cls, enum MHD_RequestTerminationCode t)
{
	(void)cls;
	(void)con;
	(void)t;
	struct conn *k = *con_cls;
	if (k) {
		free(k->target);
		sl_buf_free(&k->body);
		free(k);
	}
	*con_cls = NULL;
}

static enum MHD_Result respond(struct sl_console *c, struct MHD_Connection *con, struct sl_con_resp *rs,
			       bool gzip_ok)
{
	struct MHD_Response *r;
	bool gz = false;
	if (rs->static_data && !rs->static_gz)
		r = MHD_create_response_from_buffer(rs->static_len, (void *)(uintptr_t)rs->static_data,
						    MHD_RESPMEM_PERSISTENT);
	else if (rs->static_gz) {
		r = MHD_create_response_from_buffer(rs->static_gz_len, (void *)(uintptr_t)rs->static_gz,
						    MHD_RESPMEM_PERSISTENT);
		gz = true;
	} else {
		struct sl_buf z;
		sl_buf_init(&z);
		if (gzip_ok && rs->body.len > 1024 && sl_con_gzip(rs->body.data, rs->body.len, &z) == 0) {
			r = MHD_create_response_from_buffer(z.len, z.data, MHD_RESPMEM_MUST_COPY);
			gz = true;
		} else
			r = MHD_create_response_from_buffer(rs->body.len, rs->body.data ? rs->body.data : (char *)"",
							    MHD_RESPMEM_MUST_COPY);
		sl_buf_free(&z);
	}
	if (!r)
		return MHD_NO;
	if (rs->status != 304)
		MHD_add_response_header(r, "Content-Type", rs->ctype);
	if (gz)
		MHD_add_response_header(r, "Content-Encoding", "gzip");
	MHD_add_response_header(r, "Vary", "Accept-Encoding");
	if (rs->cache_control)
		MHD_add_response_header(r, "Cache-Control", rs->cache_control);
	if (rs->etag[0])
		MHD_add_response_header(r, "ETag", rs->etag);
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "X-Frame-Options", "DENY");
	MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	if (rs->ctype && !strncmp(rs->ctype, "text/html", 9))
		MHD_add_response_header(r, "Content-Security-Policy",
					"default-src 'self'; img-src 'self' data:; style-src 'self'; "
					"connect-src 'self'; frame-ancestors 'none'");
	if (rs->www_authenticate)
		MHD_add_response_header(r, "WWW-Authenticate",
					c->sec.user && c->sec.password ? "Basic realm=\"sluice\", charset=\"UTF-8\""
								      : "Bearer realm=\"sluice\"");
	enum MHD_Result ret = MHD_queue_response(con, (unsigned)rs->status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *con, const char *url, const char *method,
			      const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	(void)url;
	(void)version;
	struct sl_console *c = cls;
	struct conn *k = *con_cls;
	if (!k)
		return MHD_NO;
	struct sl_con_req rq = {
		.method = method,
		.target = k->target,
		.authorization = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Authorization"),
		.accept_encoding = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Accept-Encoding"),
		.if_none_match = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "If-None-Match"),
		.origin = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Origin"),
		.host = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Host"),
	};
	if (!k->started) {
		k->started = true;
		const char *cl = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Content-Length");
		if (cl && strtoull(cl, NULL, 10) > (unsigned long long)c->cc.max_body)
			k->too_big = true;
		if (!k->too_big)
			return MHD_YES; /* the body (if any) comes in the next calls */
	}
	if (*upload_data_size && !k->too_big) {
		if (k->body.len + *upload_data_size > (size_t)c->cc.max_body)
			k->too_big = true;
		else
			sl_buf_append(&k->body, upload_data, *upload_data_size);
		*upload_data_size = 0;
		if (!k->too_big)
			return MHD_YES;
	}
	*upload_data_size = 0;
	rq.body = k->body.data;
	rq.len = k->body.len;
	rq.body_too_big = k->too_big;
	struct sl_con_resp rs = {0};
	sl_buf_init(&rs.body);
	sl_con_dispatch(c, &rq, &rs);
	enum MHD_Result ret = respond(c, con, &rs, sl_con_accepts_gzip(rq.accept_encoding));
	sl_buf_free(&rs.body);
	return ret;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	char buf[512];
	vsnprintf(buf, sizeof buf, fmt, ap);
	buf[strcspn(buf, "\n")] = 0;
	sl_debug(COMP, "http: %s", buf);
}

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
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai = NULL;
	char port[16];
	snprintf(port, sizeof port, "%d", c->port);
	if (getaddrinfo(c->host, port, &hints, &ai) || !ai) {
		sl_err_set(err, SL_ECONFIG, "console.listen: cannot resolve '%s'", c->host);
		sl_con_destroy(c);
		free(c);
		return SL_ECONFIG;
	}
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;
	if (ai->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	struct MHD_Daemon *d = MHD_start_daemon(
		flags, (uint16_t)c->port, NULL, NULL, handle, c, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
		MHD_OPTION_URI_LOG_CALLBACK, uri_log, c, MHD_OPTION_NOTIFY_COMPLETED, completed, c,
		MHD_OPTION_THREAD_POOL_SIZE, (unsigned)4, MHD_OPTION_CONNECTION_LIMIT, (unsigned)256,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)65536,
		MHD_OPTION_EXTERNAL_LOGGER, mhd_log, c, MHD_OPTION_END);
	freeaddrinfo(ai);
	if (!d) {
		sl_err_set(err, SL_EIO, "console: cannot listen on %s (port taken, or no such address?)", c->cc.listen);
		sl_con_destroy(c);
		free(c);
		return SL_EIO;
	}
	c->mhd = d;
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	if (info && info->port)
		c->port = info->port;
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
	if (c->mhd)
		MHD_stop_daemon(c->mhd);
	c->stop = 1;
	if (c->thread_started)
		pthread_join(c->thread, NULL);
	sl_con_destroy(c);
	free(c);
}
