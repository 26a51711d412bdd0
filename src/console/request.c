/* Request parsing for the console: the request target (path and query), query parameters, Authorization (bearer or
 * basic, compared in constant time), Accept-Encoding and If-None-Match, and the listen address. Pure functions over
 * strings, so the fuzz target (tests/fuzz/fuzz_console.c) and the unit tests can drive them directly. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "console/internal.h"

static int hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

int sl_con_pct_decode(const char *s, size_t n, bool plus_space, char *out, size_t outsz)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		int ch = (unsigned char)s[i];
		if (ch == '%') {
			if (i + 2 >= n)
				return -1;
			int h = hexval((unsigned char)s[i + 1]), l = hexval((unsigned char)s[i + 2]);
			if (h < 0 || l < 0)
				return -1;
			ch = h * 16 + l;
			i += 2;
		} else if (ch == '+' && plus_space)
			ch = ' ';
		if (ch == 0)
			return -1;
		if (o + 1 >= outsz)
			return -1;
		out[o++] = (char)ch;
	}
	if (outsz == 0)
		return -1;
	out[o] = 0;
	return (int)o;
}

int sl_con_route_path(const char *target, char *out, size_t outsz)
{
	size_t n = strcspn(target, "?#"), o = 0;
	for (size_t i = 0; i < n; i++) {
		int ch = (unsigned char)target[i];
		char keep[4] = {0};
		if (ch == '%' && i + 2 < n && hexval((unsigned char)target[i + 1]) >= 0 &&
		    hexval((unsigned char)target[i + 2]) >= 0) {
			ch = hexval((unsigned char)target[i + 1]) * 16 + hexval((unsigned char)target[i + 2]);
			if (ch == '/' || ch == '?' || ch == '#' || ch == '%')
				snprintf(keep, sizeof keep, "%%%02X", ch);
			i += 2;
		}
		size_t k = keep[0] ? 3 : 1;
		if (o + k >= outsz)
			return -1;
		if (keep[0])
			memcpy(out + o, keep, 3);
		else
			out[o] = (char)ch;
		o += k;
	}
	if (!outsz)
		return -1;
	out[o] = 0;
	return (int)o;
}

int sl_con_split_target(const char *target, char *path, size_t pathsz, char *query, size_t querysz)
{
	if (!target || target[0] != '/' || pathsz < 2 || querysz < 1)
		return -1;
	const char *q = strchr(target, '?');
	const char *hash = strchr(target, '#');
	size_t plen = q ? (size_t)(q - target) : strlen(target);
	if (hash && (size_t)(hash - target) < plen)
		return -1; /* a fragment never reaches a server */
	char dec[4096];
	if (plen >= sizeof dec)
		return -1;
	int n = sl_con_pct_decode(target, plen, false, dec, sizeof dec);
	if (n < 0)
		return -1;
	/* Normalize: collapse "//", drop "/./"; refuse ".." and control bytes rather than resolve them. */
	size_t o = 0;
	for (int i = 0; i < n;) {
		unsigned char ch = (unsigned char)dec[i];
		if (ch < 0x20 || ch == 0x7f || ch == '\\')
			return -1;
		if (ch == '/') {
			int j = i + 1;
			while (j < n && dec[j] == '/')
				j++;
			/* segment starts at j */
			int k = j;
			while (k < n && dec[k] != '/')
				k++;
			int seglen = k - j;
			if (seglen == 2 && dec[j] == '.' && dec[j + 1] == '.')
				return -1;
			if (seglen == 1 && dec[j] == '.') {
				i = k;
				if (k == n) { /* trailing "/." */
					if (o + 1 >= pathsz)
						return -1;
					path[o++] = '/';
				}
				continue;
			}
			if (o + 1 >= pathsz)
				return -1;
			path[o++] = '/';
			i = j;
			continue;
		}
		if (o + 1 >= pathsz)
			return -1;
		path[o++] = (char)ch;
		i++;
	}
	if (o == 0)
		path[o++] = '/';
	path[o] = 0;
	const char *qs = q ? q + 1 : "";
	size_t qlen = strlen(qs);
	if (hash && hash > q && q)
		qlen = (size_t)(hash - qs);
	if (qlen >= querysz)
		return -1;
	for (size_t i = 0; i < qlen; i++)
		if ((unsigned char)qs[i] < 0x20 || qs[i] == 0x7f)
			return -1;
	memcpy(query, qs, qlen);
	query[qlen] = 0;
	return 0;
}

int sl_con_query_get(const char *query, const char *key, char *out, size_t outsz)
{
	size_t klen = strlen(key);
	const char *p = query;
	while (p && *p) {
		const char *amp = strchr(p, '&');
		size_t len = amp ? (size_t)(amp - p) : strlen(p);
		const char *eq = memchr(p, '=', len);
		size_t nlen = eq ? (size_t)(eq - p) : len;
		char name[128];
		if (nlen < sizeof name) {
			int dn = sl_con_pct_decode(p, nlen, true, name, sizeof name);
			if (dn < 0)
				return -1;
			if ((size_t)dn == klen && !memcmp(name, key, klen)) {
				const char *v = eq ? eq + 1 : p + len;
				size_t vlen = eq ? len - nlen - 1 : 0;
				return sl_con_pct_decode(v, vlen, true, out, outsz) < 0 ? -1 : 1;
			}
		}
		p = amp ? amp + 1 : NULL;
	}
	if (outsz)
		out[0] = 0;
	return 0;
}

int sl_con_query_int(const char *query, const char *key, int64_t def, int64_t min, int64_t max, int64_t *out)
{
	char v[32];
	int r = sl_con_query_get(query, key, v, sizeof v);
	if (r < 0)
		return -1;
	if (r == 0 || !v[0]) {
		*out = def;
		return 0;
	}
	char *end;
	errno = 0;
	long long x = strtoll(v, &end, 10);
	if (*end || errno || x < min || x > max)
		return -1;
	*out = x;
	return 0;
}

static const char *skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* Iterates comma-separated tokens of a header; calls fn(token, len, q) until it returns true. */
static bool each_token(const char *h, bool (*fn)(const char *t, size_t n, double q, const void *arg),
		       const void *arg)
{
	const char *p = h;
	while (p && *p) {
		p = skip_ws(p);
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		const char *semi = memchr(p, ';', len);
		size_t tlen = semi ? (size_t)(semi - p) : len;
		while (tlen && (p[tlen - 1] == ' ' || p[tlen - 1] == '\t'))
			tlen--;
		double q = 1.0;
		if (semi) {
			const char *qp = skip_ws(semi + 1);
			if ((qp[0] == 'q' || qp[0] == 'Q') && qp[1] == '=')
				q = strtod(qp + 2, NULL);
		}
		if (fn(p, tlen, q, arg))
			return true;
		p = end ? end + 1 : NULL;
	}
	return false;
}

static bool gzip_token(const char *t, size_t n, double q, const void *arg)
{
	(void)arg;
	return q > 0 && ((n == 4 && !strncasecmp(t, "gzip", 4)) || (n == 1 && t[0] == '*'));
}

bool sl_con_accepts_gzip(const char *accept_encoding)
{
	return accept_encoding && each_token(accept_encoding, gzip_token, NULL);
}

static bool etag_token(const char *t, size_t n, double q, const void *arg)
{
	(void)q;
	const char *etag = arg;
	if (n == 1 && t[0] == '*')
		return true;
	if (n >= 2 && t[0] == 'W' && t[1] == '/') {
		t += 2;
		n -= 2;
	}
	return n == strlen(etag) && !memcmp(t, etag, n);
}

bool sl_con_etag_matches(const char *if_none_match, const char *etag)
{
	return if_none_match && etag && each_token(if_none_match, etag_token, etag);
}

int sl_con_parse_listen(const char *listen, char *host, size_t hostsz, int *port)
{
	if (!listen || !*listen)
		return -1;
	const char *colon;
	size_t hlen;
	const char *h = listen;
	if (listen[0] == '[') {
		const char *rb = strchr(listen, ']');
		if (!rb || rb[1] != ':')
			return -1;
		h = listen + 1;
		hlen = (size_t)(rb - h);
		colon = rb + 1;
	} else {
		colon = strrchr(listen, ':');
		if (!colon)
			return -1;
		hlen = (size_t)(colon - listen);
		if (memchr(listen, ':', hlen))
			return -1; /* bare IPv6 needs brackets */
	}
	if (hlen + 1 > hostsz)
		return -1;
	if (hlen == 0) {
		snprintf(host, hostsz, "127.0.0.1");
	} else {
		memcpy(host, h, hlen);
		host[hlen] = 0;
	}
	char *end;
	long p = strtol(colon + 1, &end, 10);
	if (!colon[1] || *end || p < 0 || p > 65535)
		return -1;
	*port = (int)p;
	return 0;
}

