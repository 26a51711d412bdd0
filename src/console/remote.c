/* The console's view of roles in other processes: a schema registry (`sluice registry`, or Confluent's) and a
 * scheduler's Airflow-shaped API (`sluice scheduler --api`, or Airflow's), named by console.registry.url and
 * console.scheduler.url. Their APIs are served under /api/schemas/ and /api/dags/ as when the roles run in the same
 * process: each request is passed on over HTTP (libcurl) with the credentials the other side wants, which come from
 * the environment or a file and never reach a log. The same registry decodes Avro records for the message browser.
 */
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/avro.h"
#include "codec/json.h"
#include "console/internal.h"
#include "core/httpauth.h"
#include "registry/registry.h"

/* Answers from the other side larger than this are refused (a schema list or a task log, not a dump). */
#define REMOTE_MAX_RESPONSE (16 << 20)

/* The credentials sent are read from the same variables the registry's and the scheduler's listeners read theirs
 * from (core/httpauth), so one setting serves both sides; they are sent when set. */
#define REMOTE_OPTS(what, url_doc, env_token, env_password)                                                        \
	{"url", SL_OPT_STRING, NULL, offsetof(struct sl_con_remote_conf, url), url_doc},                            \
	SL_HTTP_AUTH_OPTS(struct sl_con_remote_conf, auth, env_token, env_password),                                \
	{"timeout", SL_OPT_DURATION, "10s", offsetof(struct sl_con_remote_conf, timeout_ms),                        \
	 "how long one request to the " what " may take", .min = 100, .max = 600000},                               \
	{NULL}

const struct sl_opt sl_con_registry_opts[] = {
	REMOTE_OPTS("registry", "the registry's base URL (http://127.0.0.1:8081); credentials as its registry: section",
		    "SLUICE_REGISTRY_TOKEN", "SLUICE_REGISTRY_PASSWORD"),
};
const struct sl_opt sl_con_scheduler_opts[] = {
	REMOTE_OPTS("scheduler", "the scheduler's API root (http://127.0.0.1:8793/api/v1 for sluice scheduler --api "
		    "127.0.0.1:8793)", "SLUICE_SCHEDULER_TOKEN", "SLUICE_SCHEDULER_PASSWORD"),
};

int sl_con_remotes_init(struct sl_console *c, struct sl_err *err)
{
	const char *names[] = {"registry", "scheduler"};
	struct sl_con_remote_conf *confs[] = {&c->cc.registry, &c->cc.scheduler};
	for (int i = 0; i < 2; i++) {
		struct sl_con_remote *r = &c->remote[i];
		r->name = names[i];
		r->conf = confs[i];
		if (!confs[i]->url)
			continue;
		if (strncmp(confs[i]->url, "http://", 7) && strncmp(confs[i]->url, "https://", 8))
			return sl_err_set(err, SL_ECONFIG, "console.%s.url: '%s' is not an http:// or https:// URL", names[i],
					  confs[i]->url);
		char what[32];
		snprintf(what, sizeof what, "console.%s", names[i]);
		int rc = sl_http_auth_header(&confs[i]->auth, &r->authorization, what, err);
		if (rc)
			return rc;
		if (r->authorization && !*r->authorization) {
			free(r->authorization);
			r->authorization = NULL;
		}
		r->on = true;
	}
	return 0;
}

void sl_con_remotes_free(struct sl_console *c)
{
	for (int i = 0; i < 2; i++) {
		sl_con_schema_cache_free(c->reg_source[i].cache);
		c->reg_source[i].cache = NULL;
	}
	for (int i = 0; i < 2; i++) {
		char *a = c->remote[i].authorization;
		if (a)
			OPENSSL_cleanse(a, strlen(a));
		free(a);
		c->remote[i].authorization = NULL;
	}
}

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
	struct sl_buf *b = ud;
	if (b->len + sz * n > REMOTE_MAX_RESPONSE)
		return 0;
	sl_buf_append(b, p, sz * n);
	return sz * n;
}

struct hdrs {
	char ctype[128];
};

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
	struct hdrs *h = ud;
	size_t len = sz * n;
	if (len > 13 && !strncasecmp(p, "Content-Type:", 13)) {
		const char *v = p + 13;
		while (*v == ' ' || *v == '\t')
			v++;
		size_t vl = (size_t)(p + len - v);
		while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
			vl--;
		snprintf(h->ctype, sizeof h->ctype, "%.*s", (int)vl, v);
	}
	return len;
}

int sl_con_remote_call(const struct sl_con_remote *r, const char *method, const char *target, const char *body,
		       size_t len, int *status, struct sl_buf *out, char *ctype, size_t ctsz, struct sl_err *err)
{
	CURL *h = curl_easy_init();
	if (!h)
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	struct sl_buf url;
	sl_buf_init(&url);
	const char *base = r->conf->url;
	size_t bl = strlen(base);
	while (bl && base[bl - 1] == '/')
		bl--;
	sl_buf_printf(&url, "%.*s%s", (int)bl, base, target);
	struct curl_slist *hd = curl_slist_append(NULL, "Accept: application/json, application/vnd.schemaregistry.v1+json");
	if (body)
		hd = curl_slist_append(hd, strcmp(r->name, "registry")
						   ? "Content-Type: application/json"
						   : "Content-Type: application/vnd.schemaregistry.v1+json");
	if (r->authorization)
		hd = curl_slist_append(hd, r->authorization);
	struct hdrs hs = {""};
	char eb[CURL_ERROR_SIZE] = "";
	curl_easy_setopt(h, CURLOPT_URL, sl_buf_cstr(&url));
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)r->conf->timeout_ms);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(r->conf->timeout_ms < 5000 ? r->conf->timeout_ms : 5000));
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, eb);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	if (!strcmp(method, "HEAD"))
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	if (body) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)len);
	}
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &hs);
	sl_buf_reset(out);
	CURLcode cc = curl_easy_perform(h);
	long st = 0;
	if (cc == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st);
	curl_slist_free_all(hd);
	curl_easy_cleanup(h);
	int rc = 0;
	/* The URL goes into the message, never the credentials (they are in a header, not in the URL). */
	if (cc != CURLE_OK)
		rc = sl_err_set(err, SL_EIO, "%s at %s: %s", r->name, sl_buf_cstr(&url), eb[0] ? eb : curl_easy_strerror(cc));
	else if (!sl_buf_ok(out))
		rc = sl_err_set(err, SL_ENOMEM, "out of memory reading %s", sl_buf_cstr(&url));
	sl_buf_free(&url);
	*status = (int)st;
	if (ctype)
		snprintf(ctype, ctsz, "%s", hs.ctype[0] ? hs.ctype : "application/json");
	return rc;
}

/* ---- schemas for the message browser ---- */

static int parse_schema_answer(const struct sl_buf *b, int id, char **schema, char **type, struct sl_err *err)
{
	struct sl_json_parser *jp = NULL;
	struct sl_json_val root, v;
	const char *s, *t = "AVRO";
	size_t sn, tn = 4;
	int rc = 0;
	if (sl_json_parser_new(&jp, 0, 64, err) || sl_json_parse(jp, b->data ? b->data : "", b->len, &root, err) ||
	    !sl_json_get(root, "schema", 6, &v) || sl_json_str(v, &s, &sn))
		rc = sl_err_set(err, SL_EPROTO, "schema id %d: the registry's answer has no schema", id);
	else {
		if (sl_json_get(root, "schemaType", 10, &v))
			sl_json_str(v, &t, &tn);
		*schema = strndup(s, sn);
		*type = strndup(t, tn);
		if (!*schema || !*type) {
			free(*schema);
			free(*type);
			rc = sl_err_set(err, SL_ENOMEM, "out of memory");
		}
	}
	sl_json_parser_free(jp);
	return rc;
}

/* Where the browser's writer schemas come from: console.registry.url; else the registry in this process (sluice
 * up); else the one the pipelines use (a pipeline's registry_url, or the registry: section's store, as `format:
 * avro` resolves it). */
static int fetch_schema(void *ctx, int id, char **schema, char **type, struct sl_err *err)
{
	struct sl_console *c = ctx;
	if (c->remote[SL_CON_REMOTE_REGISTRY].on) {
		struct sl_buf b;
		sl_buf_init(&b);
		char target[64];
		int st = 0;
		snprintf(target, sizeof target, "/schemas/ids/%d", id);
		int rc = sl_con_remote_call(&c->remote[SL_CON_REMOTE_REGISTRY], "GET", target, NULL, 0, &st, &b, NULL, 0,
					    err);
		if (!rc && st == 404)
			rc = sl_err_set(err, SL_ENOTFOUND, "Schema %d not found in the registry", id);
		else if (!rc && st != 200)
			rc = sl_err_set(err, SL_ESERVER, "schema id %d: the registry answered HTTP %d", id, st);
		if (!rc)
			rc = parse_schema_answer(&b, id, schema, type, err);
		sl_buf_free(&b);
		return rc;
	}
	if (c->registry)
		return sl_registry_schema_by_id(c->registry, id, schema, type, err);
	if (!c->pipes_registry) {
		const char *url = NULL;
		for (size_t i = 0; i < c->conf->np && !url; i++)
			url = c->conf->p[i].registry_url;
		int rc = sl_registry_client_open((struct sl_registry_client **)&c->pipes_registry, url, c->conf->registry,
						 c->conf->data_dir, err);
		if (rc)
			return rc;
	}
	return sl_registry_client_fetch(c->pipes_registry, id, schema, type, err);
}

int sl_con_schema_text(struct sl_console *c, int id, char **schema, char **type, struct sl_err *err)
{
	return fetch_schema(c, id, schema, type, err);
}

int sl_con_avro_json(struct sl_console *c, const void *p, size_t n, int32_t *schema_id, struct sl_buf *out,
		     struct sl_err *err)
{
	pthread_mutex_lock(&c->avro_lock);
	int rc = 0;
	if (!c->avro_cache)
		rc = sl_avro_cache_new(fetch_schema, c, NULL, (struct sl_avro_cache **)&c->avro_cache, err);
	if (!rc)
		rc = sl_avro_cache_json(c->avro_cache, p, n, schema_id, out, err);
	pthread_mutex_unlock(&c->avro_lock);
	return rc;
}

void sl_con_avro_close(struct sl_console *c)
{
	sl_avro_cache_free(c->avro_cache);
	sl_con_framed_close(c);
	sl_registry_client_close(c->pipes_registry);
	c->avro_cache = c->pipes_registry = NULL;
}
