/* The access policy of src/http, one for all three servers, decided on the head alone (before any body is read):
 * credentials and their role, the Host header against the names the server answers to (a DNS-rebinding page sends
 * its own name), and for writes a same-origin Origin and a JSON content type (what a cross-site form or a no-cors
 * fetch cannot send without a CORS preflight, which these servers never grant). */
#include <arpa/inet.h>
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "http/http.h"

bool sl_http_is_write(const char *method)
{
	return strcmp(method, "GET") && strcmp(method, "HEAD") && strcmp(method, "OPTIONS");
}

bool sl_http_ctype_json(const char *ctype)
{
	if (!ctype)
		return false;
	size_t n = strcspn(ctype, ";");
	while (n && (ctype[n - 1] == ' ' || ctype[n - 1] == '\t'))
		n--;
	if (n == 16 && !strncasecmp(ctype, "application/json", 16))
		return true;
	const char *slash = memchr(ctype, '/', n);
	if (!slash || slash == ctype || (size_t)(slash - ctype) + 1 >= n)
		return false;
	for (const char *c = ctype; c < ctype + n; c++)
		if (c != slash && !(isalnum((unsigned char)*c) || strchr("!#$&-^_.+", *c)))
			return false;
	return n > 5 && !strncasecmp(ctype + n - 5, "+json", 5) && (size_t)(slash - ctype) + 1 < n - 5;
}

static bool ctype_is(const char *ctype, const char *want)
{
	size_t n = strcspn(ctype, ";");
	while (n && (ctype[n - 1] == ' ' || ctype[n - 1] == '\t'))
		n--;
	return n == strlen(want) && !strncasecmp(ctype, want, n);
}

/* Splits "host[:port]" / "[v6][:port]" into the host part (brackets kept for v6). -1 when malformed. */
static int host_part(const char *hp, char *out, size_t outsz)
{
	size_t n;
	if (hp[0] == '[') {
		const char *rb = strchr(hp, ']');
		if (!rb || (rb[1] && rb[1] != ':'))
			return -1;
		n = (size_t)(rb - hp) + 1;
	} else {
		n = strcspn(hp, ":");
	}
	const char *port = hp + n;
	if (*port == ':') {
		if (!port[1] || strlen(port + 1) > 5)
			return -1;
		for (const char *c = port + 1; *c; c++)
			if (!isdigit((unsigned char)*c))
				return -1;
	} else if (*port)
		return -1;
	if (!n || n >= outsz)
		return -1;
	for (size_t i = 0; i < n; i++)
		out[i] = (char)tolower((unsigned char)hp[i]);
	out[n] = 0;
	return 0;
}

bool sl_http_host_allowed(const char *host, const char *const *hosts, size_t nhosts)
{
	char h[300];
	if (!host || host_part(host, h, sizeof h))
		return false;
	/* An IP literal is not a name anyone can rebind. */
	unsigned char a[16];
	if (inet_pton(AF_INET, h, a) == 1)
		return true;
	if (h[0] == '[') {
		char v6[300];
		size_t n = strlen(h);
		memcpy(v6, h + 1, n - 2);
		v6[n - 2] = 0;
		return inet_pton(AF_INET6, v6, a) == 1;
	}
	size_t hl = strlen(h);
	if (hl && h[hl - 1] == '.')
		h[--hl] = 0; /* "localhost." is localhost */
	if (!strcmp(h, "localhost") || (hl > 10 && !strcmp(h + hl - 10, ".localhost")))
		return true; /* RFC 6761: always loopback in browsers */
	for (size_t i = 0; i < nhosts; i++)
		if (hosts[i] && !strcasecmp(hosts[i], h))
			return true;
	return false;
}

/* Whether a browser's Origin names the very host:port the request went to, over http. */
static bool same_origin(const char *origin, const char *host)
{
	if (strncasecmp(origin, "http://", 7) || !host)
		return false;
	return !strcasecmp(origin + 7, host);
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

bool sl_http_cookie_auth(const char *cookie_header, const char *name, char *out, size_t outsz)
{
	size_t nl = strlen(name);
	for (const char *p = cookie_header; p && *p;) {
		while (*p == ' ' || *p == ';')
			p++;
		const char *end = p + strcspn(p, ";");
		if ((size_t)(end - p) > nl && !strncmp(p, name, nl) && p[nl] == '=') {
			const char *hx = p + nl + 1;
			size_t n = (size_t)(end - hx), k = 0;
			if (n % 2 || n / 2 >= outsz || n == 0)
				return false;
			for (size_t i = 0; i < n; i += 2) {
				int hi = hexval(hx[i]), lo = hexval(hx[i + 1]);
				if (hi < 0 || lo < 0)
					return false;
				unsigned char ch = (unsigned char)(hi << 4 | lo);
				if (ch < 0x20 || ch == 0x7f) /* a header value: no control bytes */
					return false;
				out[k++] = (char)ch;
			}
			out[k] = 0;
			return true;
		}
		p = end;
	}
	return false;
}

void sl_http_policy_check(const struct sl_http_policy *p, const struct sl_http_head *h, const char *path,
			  struct sl_http_verdict *v)
{
	memset(v, 0, sizeof *v);
	const char *host = sl_http_head_get(h, "Host");
	if (!sl_http_host_allowed(host, p->hosts, p->nhosts)) {
		v->status = 403;
		v->message = "this server does not answer to that Host (add it to allowed_hosts)";
		return;
	}
	bool write = sl_http_is_write(h->method);
	size_t norigin = sl_http_head_count(h, "Origin");
	if (norigin > 1) {
		v->status = 403;
		v->message = "more than one Origin header";
		return;
	}
	const char *origin = sl_http_head_get(h, "Origin");
	if (write && origin && !same_origin(origin, host)) {
		v->status = 403;
		v->message = "cross-origin request refused";
		return;
	}
	bool open = false;
	for (size_t i = 0; p->open_paths && p->open_paths[i]; i++)
		if (!strcmp(path, p->open_paths[i]))
			open = true;
	const char *authz = sl_http_head_get(h, "Authorization");
	char fromcookie[1024];
	if (!authz && p->auth_cookie &&
	    sl_http_cookie_auth(sl_http_head_get(h, "Cookie"), p->auth_cookie, fromcookie, sizeof fromcookie))
		authz = fromcookie;
	v->role = p->auth ? sl_http_auth_role(p->auth, authz) : SL_HTTP_ROLE_WRITE;
	if (v->role == SL_HTTP_ROLE_NONE && !(open && !write)) {
		v->status = 401;
		v->message = "Unauthorized";
		v->www_authenticate = true;
		return;
	}
	if (write && v->role != SL_HTTP_ROLE_WRITE) {
		v->status = 403;
		v->message = "read-only credentials: writes need the read-write ones";
		return;
	}
	if (write) {
		/* A body must be JSON whatever the method. Without a body only POST needs a JSON type: it is the one write
		 * method a page elsewhere can send with no CORS preflight (an empty no-cors POST would trigger a DAG run);
		 * PUT, PATCH and DELETE cross-site need a preflight these servers never grant, and clients send bodyless
		 * DELETEs and PUTs (Confluent's among them) without a Content-Type. */
		const char *ct = sl_http_head_get(h, "Content-Type");
		bool body = h->chunked || h->content_length > 0;
		bool need = !strcmp(h->method, "POST") || body;
		if (need && !(sl_http_ctype_json(ct) || (p->octet_stream && ct && ctype_is(ct, "application/octet-stream")))) {
			v->status = 415;
			v->message = "writes need Content-Type: application/json";
			return;
		}
	}
}
