/* The registry's HTTP server: libmicrohttpd in front of sl_registry_handle (service.c). It owns what only HTTP
 * knows: the raw request target (taken before libmicrohttpd unescapes it, so "%2F" in a subject survives), the body
 * size limit (413), request content types (415) and Confluent's response content type. Followers of the Kafka store
 * forward writes to the leader (store_kafka.c sets the leader's URL). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>
#include <microhttpd.h>
#include <openssl/crypto.h>

#include "core/log.h"
#include "registry/internal.h"

#define CONTENT_TYPE "application/vnd.schemaregistry.v1+json"

struct conn {
	char *target;      /* raw request target, from the URI log callback */
	struct sl_buf body;
	bool too_big;
	bool started;      /* the first callback only announces the request; the body follows */
};

static void *uri_log(void *cls, const char *uri, struct MHD_Connection *c)
{
	struct conn *cn = calloc(1, sizeof *cn);
	(void)cls;
	(void)c;
	if (cn) {
		cn->target = strdup(uri);
		sl_buf_init(&cn->body);
	}
	return cn;
}

static void completed(void *cls, struct MHD_Connection *c, void **ctx, enum MHD_RequestTerminationCode toe)
{
	struct conn *cn = *ctx;
	(void)cls;
	(void)c;
	(void)toe;
	if (cn) {
		free(cn->target);
		sl_buf_free(&cn->body);
		free(cn);
		*ctx = NULL;
	}
}

static enum MHD_Result send_json(struct MHD_Connection *c, int status, const char *body, size_t len)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret;
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, CONTENT_TYPE);
	ret = MHD_queue_response(c, (unsigned)status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static bool content_type_ok(const char *ct)
{
	static const char *const ok[] = {"application/vnd.schemaregistry.v1+json", "application/vnd.schemaregistry+json",
					 "application/json", "application/octet-stream", NULL};
	size_t n;
	if (!ct || !*ct)
		return true;
	n = strcspn(ct, ";");
	while (n && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
		n--;
	for (size_t i = 0; ok[i]; i++)
		if (strlen(ok[i]) == n && !strncasecmp(ct, ok[i], n))
			return true;
	return false;
}

struct fwd_buf {
	struct sl_buf *b;
};

static size_t fwd_write(char *p, size_t sz, size_t n, void *ud)
{
	sl_buf_append(((struct fwd_buf *)ud)->b, p, sz * n);
	return sz * n;
}

/* Forwards a write to the leader; returns the HTTP status or 0 on transport failure. */
static int forward(const char *leader, const char *method, const char *target, const char *authorization,
		   const char *body, size_t len, struct sl_buf *out)
{
	CURL *h = curl_easy_init();
	struct curl_slist *hd = NULL;
	struct fwd_buf fb = {out};
	char *url;
	long code = 0;
	if (!h || asprintf(&url, "%s%s", leader, target) < 0) {
		if (h)
			curl_easy_cleanup(h);
		return 0;
	}
	hd = curl_slist_append(hd, "Content-Type: " CONTENT_TYPE);
	/* The leader has the same secrets: the client's own credentials go along. */
	char *authz = NULL;
	if (authorization && asprintf(&authz, "Authorization: %s", authorization) > 0)
		hd = curl_slist_append(hd, authz);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	if (len || strcmp(method, "GET")) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)len);
	}
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, fwd_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &fb);
	sl_buf_reset(out);
	if (curl_easy_perform(h) == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	curl_slist_free_all(hd);
	curl_easy_cleanup(h);
	free(url);
	if (authz) {
		OPENSSL_cleanse(authz, strlen(authz));
		free(authz);
	}
	return (int)code;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
				  const char *version, const char *data, size_t *size, void **ctx)
{
	struct sl_registry *r = cls;
	struct conn *cn = *ctx;
	struct sl_buf out;
	int status;
	enum MHD_Result ret;
	(void)url;
	(void)version;
	if (!cn)
		return MHD_NO;
	const char *authorization = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	if (!cn->started) {
		cn->started = true;
		if (sl_http_auth_ok(&r->auth, authorization))
			return MHD_YES;
		/* Refused before the body is read. */
		static const char body[] = "{\"error_code\":401,\"message\":\"Unauthorized\"}";
		struct MHD_Response *resp =
			MHD_create_response_from_buffer(sizeof body - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
		if (!resp)
			return MHD_NO;
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, CONTENT_TYPE);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
					r->auth.token ? "Bearer realm=\"sluice registry\"" : "Basic realm=\"sluice registry\"");
		sl_debug("registry", "%s %s -> 401", method, cn->target);
		enum MHD_Result ret401 = MHD_queue_response(c, 401, resp);
		MHD_destroy_response(resp);
		return ret401;
	}
	if (*size) {
		if (cn->body.len + *size > (size_t)r->conf.max_body)
			cn->too_big = true;
		else
			sl_buf_append(&cn->body, data, *size);
		*size = 0;
		return MHD_YES;
	}
	sl_buf_init(&out);
	if (cn->too_big || !sl_buf_ok(&cn->body)) {
		sl_buf_printf(&out, "{\"error_code\":413,\"message\":\"Request body is larger than %lld bytes\"}",
			      (long long)r->conf.max_body);
		status = 413;
	} else if ((!strcmp(method, "POST") || !strcmp(method, "PUT")) &&
		   !content_type_ok(MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE))) {
		sl_buf_puts(&out, "{\"error_code\":415,\"message\":\"HTTP 415 Unsupported Media Type\"}");
		status = 415;
	} else {
		char *leader = NULL;
		bool write = strcmp(method, "GET") && strcmp(method, "HEAD");
		/* Lookups and compatibility checks are POSTs that write nothing: any node answers them. */
		if (write && !strncmp(cn->target, "/compatibility/", 15))
			write = false;
		if (write && !strcmp(method, "POST") && !strncmp(cn->target, "/subjects/", 10)) {
			const char *rest = strchr(cn->target + 10, '/');
			write = rest && !strncmp(rest, "/versions", 9);
		}
		if (write) {
			pthread_mutex_lock(&r->mu);
			if (!r->leader && r->forward_url)
				leader = strdup(r->forward_url);
			status = r->leader ? 0 : -1;
			pthread_mutex_unlock(&r->mu);
			if (status == -1 && !leader) {
				sl_buf_puts(&out, "{\"error_code\":50004,\"message\":\"Unknown leader: no registry leads "
						  "the _schemas group yet; retry shortly\"}");
				status = 500;
				goto send;
			}
		}
		if (leader) {
			status = forward(leader, method, cn->target, authorization, cn->body.data, cn->body.len, &out);
			if (!status) {
				sl_buf_reset(&out);
				sl_buf_printf(&out, "{\"error_code\":50003,\"message\":\"Error while forwarding the request "
						    "to the leader %s\"}", leader);
				status = 500;
			}
			free(leader);
		} else
			sl_registry_handle(r, method, cn->target, cn->body.data, cn->body.len, &status, &out);
	}
send:
	sl_debug("registry", "%s %s -> %d", method, cn->target, status);
	ret = send_json(c, status, out.data ? out.data : "", out.len);
	sl_buf_free(&out);
	return ret;
}

int sl_registry_serve(struct sl_registry *r, int *port, struct sl_err *err)
{
	struct sockaddr_in sa = {0};
	char host[256];
	const char *colon = strrchr(r->conf.listen, ':');
	long p;
	char *end;
	struct MHD_Daemon *d;
	if (!colon || (size_t)(colon - r->conf.listen) >= sizeof host)
		return sl_err_set(err, SL_ECONFIG, "registry listen '%s' is not host:port", r->conf.listen);
	memcpy(host, r->conf.listen, (size_t)(colon - r->conf.listen));
	host[colon - r->conf.listen] = 0;
	p = strtol(colon + 1, &end, 10);
	if (*end || p < 0 || p > 65535)
		return sl_err_set(err, SL_ECONFIG, "registry listen '%s': bad port", r->conf.listen);
	int rc = sl_http_auth_require(&r->auth, &r->conf.auth, host, "registry", err);
	if (rc)
		return rc;
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)p);
	if (!*host || !strcmp(host, "localhost"))
		snprintf(host, sizeof host, "127.0.0.1");
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return sl_err_set(err, SL_ECONFIG, "registry listen '%s': '%s' is not an IPv4 address", r->conf.listen,
				  host);
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG, 0, NULL, NULL,
			     on_request, r, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_THREAD_POOL_SIZE,
			     (unsigned)2, MHD_OPTION_URI_LOG_CALLBACK, uri_log, NULL, MHD_OPTION_NOTIFY_COMPLETED,
			     completed, NULL, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60, MHD_OPTION_END);
	if (!d)
		return sl_err_set(err, SL_EIO, "registry: cannot listen on %s (in use or not permitted)", r->conf.listen);
	r->httpd = d;
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	int bound = info ? info->port : (int)p;
	if (port)
		*port = bound;
	/* The URL other registries forward writes to: a wildcard address is no address, so name this host. */
	char self[512];
	if (sa.sin_addr.s_addr == htonl(INADDR_ANY)) {
		char hn[256] = "localhost";
		gethostname(hn, sizeof hn - 1);
		snprintf(self, sizeof self, "http://%s:%d", hn, bound);
	} else
		snprintf(self, sizeof self, "http://%s:%d", host, bound);
	pthread_mutex_lock(&r->mu);
	free(r->self_url);
	r->self_url = strdup(self);
	pthread_mutex_unlock(&r->mu);
	return 0;
}

void sl_registry_stop(struct sl_registry *r)
{
	if (r && r->httpd) {
		MHD_stop_daemon(r->httpd);
		r->httpd = NULL;
	}
}
