/* The registry's HTTP server: src/http in front of sl_registry_handle (service.c). It routes on the raw request
 * target (so "%2F" in a subject survives); src/http owns the body size limit (413), request content types (415:
 * writes need a JSON type, or application/octet-stream which some clients send and no browser can send cross-site
 * without a preflight), credentials and Host/Origin checks; here is Confluent's response content type. Followers of the Kafka store
 * forward writes to the leader (store_kafka.c sets the leader's URL). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "core/log.h"
#include "http/http.h"
#include "registry/internal.h"

#define CONTENT_TYPE "application/vnd.schemaregistry.v1+json"

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

static void on_request(void *ctx, const struct sl_http_req *rq, struct sl_http_resp *rs)
{
	struct sl_registry *r = ctx;
	const char *method = rq->method, *target = rq->target;
	const char *authorization = sl_http_req_header(rq, "Authorization");
	struct sl_buf *out = &rs->body;
	int status;
	rs->ctype = CONTENT_TYPE;
	if (!strcmp(rq->path, "/health") && !sl_http_is_write(method)) {
		/* For probes, answered without credentials (src/http's open paths): the verdict and nothing else. */
		rs->ctype = "application/json";
		sl_buf_puts(out, "{\"status\":\"ok\"}");
		rs->status = 200;
		return;
	}
	char *leader = NULL;
	bool write = strcmp(method, "GET") && strcmp(method, "HEAD");
	/* Lookups and compatibility checks are POSTs that write nothing: any node answers them. */
	if (write && !strncmp(target, "/compatibility/", 15))
		write = false;
	if (write && !strcmp(method, "POST") && !strncmp(target, "/subjects/", 10)) {
		const char *rest = strchr(target + 10, '/');
		write = rest && !strncmp(rest, "/versions", 9);
	}
	if (write) {
		pthread_mutex_lock(&r->mu);
		if (!r->leader && r->forward_url)
			leader = strdup(r->forward_url);
		status = r->leader ? 0 : -1;
		pthread_mutex_unlock(&r->mu);
		if (status == -1 && !leader) {
			sl_buf_puts(out, "{\"error_code\":50004,\"message\":\"Unknown leader: no registry leads "
					 "the _schemas group yet; retry shortly\"}");
			status = 500;
			goto send;
		}
	}
	if (leader) {
		status = forward(leader, method, target, authorization, rq->body, rq->len, out);
		if (!status) {
			sl_buf_reset(out);
			sl_buf_printf(out, "{\"error_code\":50003,\"message\":\"Error while forwarding the request "
					   "to the leader %s\"}", leader);
			status = 500;
		}
		free(leader);
	} else
		sl_registry_handle(r, method, target, rq->body, rq->len, &status, out);
send:
	sl_debug("registry", "%s %s -> %d", method, target, status);
	rs->status = status;
}

static const char *const open_paths[] = {"/health", NULL};

int sl_registry_serve(struct sl_registry *r, int *port, struct sl_err *err)
{
	struct sockaddr_in sa = {0};
	char host[256];
	const char *colon = strrchr(r->conf.listen, ':');
	long p;
	char *end;
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
	struct sl_http_server_opts ho = {
		.name = "registry",
		.host = host,
		.port = (int)p,
		.conf = &r->conf.http,
		.max_body = r->conf.max_body,
		.max_target = 8192,
		.auth = &r->auth,
		.realm = "sluice registry",
		.error_ctype = CONTENT_TYPE,
		.octet_stream = true,
		.open_paths = open_paths,
		.handler = on_request,
		.ctx = r,
	};
	struct sl_http_server *d;
	if ((rc = sl_http_start(&ho, &d, err)))
		return rc;
	r->httpd = d;
	int bound = sl_http_port(d);
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
		sl_http_stop(r->httpd);
		r->httpd = NULL;
	}
}
