/* The registry as its clients see it. A small client of the registry's REST API (ours or Confluent's), over
 * libcurl: what a pipeline needs when the registry runs elsewhere (`registry_url`) and what a follower of the Kafka
 * store uses to register through its leader. Only two calls: register a schema under a subject, fetch a schema by
 * id. And the handle a pipeline (or the console) holds, which makes the same two calls on a registry in this process
 * or on one over HTTP, whichever the config names. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "core/config.h"
#include "registry/internal.h"

#define CLIENT_MAX_RESPONSE (64 << 20)

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
	struct sl_buf *b = ud;
	if (b->len + sz * n > CLIENT_MAX_RESPONSE)
		return 0; /* a registry answer this big is not a schema: abort the transfer */
	sl_buf_append(b, p, sz * n);
	return sz * n;
}

/* Performs one request; *status gets the HTTP status, out the body. */
static int request(const char *url, const char *method, const char *body, const struct sl_http_auth_conf *auth,
		   long *status, struct sl_buf *out, struct sl_err *err)
{
	CURL *h;
	struct curl_slist *hd = NULL;
	CURLcode cc;
	char eb[CURL_ERROR_SIZE] = "";
	char *authz = NULL;
	int rc;
	if (auth && (rc = sl_http_auth_header(auth, &authz, "registry", err)))
		return rc;
	if (!(h = curl_easy_init())) {
		free(authz);
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	}
	if (authz && *authz)
		hd = curl_slist_append(hd, authz);
	hd = curl_slist_append(hd, "Content-Type: application/vnd.schemaregistry.v1+json");
	hd = curl_slist_append(hd, "Accept: application/vnd.schemaregistry.v1+json, application/json");
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, eb);
	if (body) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
	sl_buf_reset(out);
	cc = curl_easy_perform(h);
	if (cc == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
	curl_slist_free_all(hd);
	curl_easy_cleanup(h);
	if (authz) {
		OPENSSL_cleanse(authz, strlen(authz));
		free(authz);
	}
	if (cc != CURLE_OK)
		return sl_err_set(err, SL_EIO, "schema registry %s: %s", url, eb[0] ? eb : curl_easy_strerror(cc));
	if (!sl_buf_ok(out))
		return sl_err_set(err, SL_ENOMEM, "out of memory reading %s", url);
	return 0;
}

/* Turns a non-200 answer into an error with the registry's own message (a 409 says which rule broke). */
static int answer_error(const char *what, long status, struct sl_buf *body, struct sl_err *err)
{
	struct sl_rj *j = NULL;
	struct sl_err perr;
	const char *msg = NULL;
	int code = 0;
	if (!sl_jtree_parse(body->data ? body->data : "", body->len, &j, &perr)) {
		struct sl_rj *c = sl_jtree_get(j, "error_code");
		msg = sl_jtree_getstr(j, "message");
		sl_jtree_int(c, &code);
	}
	int rc = sl_err_set(err, status == 409 ? SL_ETYPE : status == 422 ? SL_EINVAL : status == 404 ? SL_ENOTFOUND
						: SL_ESERVER,
			    "%s: HTTP %ld: %s (error_code %d)", what, status, msg ? msg : "no message", code);
	sl_jtree_free(j);
	return rc;
}

int sl_registry_http_register(const char *base, const struct sl_http_auth_conf *auth, const char *subject,
			      const char *schema, const char *type, int *id, struct sl_err *err)
{
	struct sl_buf url, body, out;
	char what[600];
	long status = 0;
	int rc;
	char *enc;
	CURL *h = curl_easy_init();
	if (!h)
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	/* Subjects may hold any character ('/' included): always percent-encoded in the path. */
	enc = curl_easy_escape(h, subject, (int)strlen(subject));
	curl_easy_cleanup(h);
	if (!enc)
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	sl_buf_init(&url);
	sl_buf_init(&body);
	sl_buf_init(&out);
	size_t bl = strlen(base);
	while (bl && base[bl - 1] == '/')
		bl--;
	sl_buf_printf(&url, "%.*s/subjects/%s/versions", (int)bl, base, enc);
	curl_free(enc);
	sl_buf_puts(&body, "{\"schema\":");
	sl_buf_json_str(&body, schema, strlen(schema));
	if (type && strcmp(type, "AVRO"))
		sl_buf_printf(&body, ",\"schemaType\":\"%s\"", type);
	sl_buf_putc(&body, '}');
	snprintf(what, sizeof what, "registering subject '%s' at %s", subject, base);
	rc = request(sl_buf_cstr(&url), "POST", sl_buf_cstr(&body), auth, &status, &out, err);
	if (!rc && status == 401)
		rc = sl_err_set(err, SL_ECONFIG, "%s: HTTP 401: the registry wants credentials (set $%s or $%s, "
				"registry.token_env/password_env, as the registry has them)", what,
				auth && auth->token_env ? auth->token_env : "SLUICE_REGISTRY_TOKEN",
				auth && auth->password_env ? auth->password_env : "SLUICE_REGISTRY_PASSWORD");
	if (!rc && status != 200)
		rc = answer_error(what, status, &out, err);
	if (!rc) {
		struct sl_rj *j = NULL;
		struct sl_rj *v;
		if ((rc = sl_jtree_parse(out.data ? out.data : "", out.len, &j, err)) ||
		    !sl_jtree_int((v = sl_jtree_get(j, "id")), id))
			rc = sl_err_set(err, SL_EPROTO, "%s: the answer has no id", what);
		sl_jtree_free(j);
	}
	sl_buf_free(&url);
	sl_buf_free(&body);
	sl_buf_free(&out);
	return rc;
}

int sl_registry_http_schema(const char *base, const struct sl_http_auth_conf *auth, int id, char **schema, char **type,
			    struct sl_err *err)
{
	struct sl_buf out;
	char url[2048], what[600];
	long status = 0;
	int rc;
	sl_buf_init(&out);
	size_t bl = strlen(base);
	while (bl && base[bl - 1] == '/')
		bl--;
	snprintf(url, sizeof url, "%.*s/schemas/ids/%d", (int)bl, base, id);
	snprintf(what, sizeof what, "schema id %d at %s", id, base);
	rc = request(url, "GET", NULL, auth, &status, &out, err);
	if (!rc && status == 401)
		rc = sl_err_set(err, SL_ECONFIG, "%s: HTTP 401: the registry wants credentials (set $%s or $%s, "
				"registry.token_env/password_env, as the registry has them)", what,
				auth && auth->token_env ? auth->token_env : "SLUICE_REGISTRY_TOKEN",
				auth && auth->password_env ? auth->password_env : "SLUICE_REGISTRY_PASSWORD");
	if (!rc && status != 200)
		rc = answer_error(what, status, &out, err);
	if (!rc) {
		struct sl_rj *j = NULL;
		const char *s, *t;
		if ((rc = sl_jtree_parse(out.data ? out.data : "", out.len, &j, err)) || !(s = sl_jtree_getstr(j, "schema")))
			rc = sl_err_set(err, SL_EPROTO, "%s: the answer has no schema", what);
		else {
			t = sl_jtree_getstr(j, "schemaType");
			*schema = strdup(s);
			*type = strdup(t ? t : "AVRO");
			if (!*schema || !*type) {
				free(*schema);
				free(*type);
				rc = sl_err_set(err, SL_ENOMEM, "out of memory");
			}
		}
		sl_jtree_free(j);
	}
	sl_buf_free(&out);
	return rc;
}

/* ---- the handle a pipeline holds ---- */

struct sl_registry_client {
	struct sl_registry *local;
	struct sl_registry_conf conf;
	char *url;
};

int sl_registry_client_open(struct sl_registry_client **out, const char *url, const struct sl_cfg_node *section,
			    const char *data_dir, struct sl_err *err)
{
	struct sl_registry_client *g = calloc(1, sizeof *g);
	int rc;
	*out = NULL;
	if (!g)
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	if (section) {
		if (!(rc = sl_opt_bind(sl_registry_opts, section, "registry", &g->conf, err)))
			rc = sl_registry_conf_dir(&g->conf, section, data_dir ? data_dir : "var/sluice", err);
	} else if (!(rc = sl_opt_defaults(sl_registry_opts, &g->conf, err)) && !url) {
		/* The embedded default: schemas beside the embedded log. */
		char *d = NULL;
		if (asprintf(&d, "%s/registry", data_dir ? data_dir : "var/sluice") < 0)
			rc = sl_err_set(err, SL_ENOMEM, "out of memory");
		else {
			free(g->conf.data_dir);
			g->conf.data_dir = d;
		}
	}
	/* A registry elsewhere (registry_url): the registry: section (or its defaults) says which credentials to send. */
	if (!rc && url && !(g->url = strdup(url)))
		rc = sl_err_set(err, SL_ENOMEM, "out of memory");
	else if (!rc && !url)
		rc = sl_registry_open(&g->local, &g->conf, err);
	if (rc) {
		sl_registry_client_close(g);
		return rc;
	}
	*out = g;
	return 0;
}

void sl_registry_client_close(struct sl_registry_client *g)
{
	if (!g)
		return;
	sl_registry_close(g->local);
	sl_opt_free(sl_registry_opts, &g->conf);
	free(g->url);
	free(g);
}

int sl_registry_client_register(struct sl_registry_client *g, const char *subject, const char *schema,
				const char *type, int *id, struct sl_err *err)
{
	if (g->url)
		return sl_registry_http_register(g->url, &g->conf.auth, subject, schema, type, id, err);
	return sl_registry_register(g->local, subject, schema, type, id, err);
}

int sl_registry_client_fetch(struct sl_registry_client *g, int id, char **schema, char **type, struct sl_err *err)
{
	if (g->url)
		return sl_registry_http_schema(g->url, &g->conf.auth, id, schema, type, err);
	return sl_registry_schema_by_id(g->local, id, schema, type, err);
}
