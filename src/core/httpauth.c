#include "core/httpauth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

static char *read_secret_file(const char *path, const char *what, struct sl_err *err)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		sl_err_set(err, SL_ECONFIG, "%s: cannot read secret file %s: %s", what, path, strerror(errno));
		return NULL;
	}
	char buf[1024];
	char *r = NULL;
	if (fgets(buf, sizeof buf, f)) {
		buf[strcspn(buf, "\r\n")] = 0;
		if (buf[0])
			r = strdup(buf);
	}
	OPENSSL_cleanse(buf, sizeof buf);
	fclose(f);
	if (!r)
		sl_err_set(err, SL_ECONFIG, "%s: secret file %s is empty", what, path);
	return r;
}

/* One secret: from file when a file is named, else from the environment variable (unset or empty: none). */
static int secret(const char *file, const char *env, char **out, const char *what, struct sl_err *err)
{
	*out = NULL;
	if (file)
		return (*out = read_secret_file(file, what, err)) ? 0 : SL_ECONFIG;
	const char *v = env ? getenv(env) : NULL;
	if (v && *v && !(*out = strdup(v)))
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	return 0;
}

static void cleanse_free(char *s)
{
	if (s) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

static int dup_field(char **dst, const char *src)
{
	*dst = src ? strdup(src) : NULL;
	return src && !*dst ? -1 : 0;
}

int sl_http_auth_conf_copy(struct sl_http_auth_conf *dst, const struct sl_http_auth_conf *src)
{
	memset(dst, 0, sizeof *dst);
	if (dup_field(&dst->token_env, src->token_env) || dup_field(&dst->token_file, src->token_file) ||
	    dup_field(&dst->user, src->user) || dup_field(&dst->password_env, src->password_env) ||
	    dup_field(&dst->password_file, src->password_file) ||
	    dup_field(&dst->read_token_env, src->read_token_env) ||
	    dup_field(&dst->read_token_file, src->read_token_file) || dup_field(&dst->read_user, src->read_user) ||
	    dup_field(&dst->read_password_env, src->read_password_env) ||
	    dup_field(&dst->read_password_file, src->read_password_file)) {
		sl_http_auth_conf_free(dst);
		return -1;
	}
	return 0;
}

void sl_http_auth_conf_free(struct sl_http_auth_conf *c)
{
	free(c->token_env);
	free(c->token_file);
	free(c->user);
	free(c->password_env);
	free(c->password_file);
	free(c->read_token_env);
	free(c->read_token_file);
	free(c->read_user);
	free(c->read_password_env);
	free(c->read_password_file);
	memset(c, 0, sizeof *c);
}

void sl_http_auth_free(struct sl_http_auth *a)
{
	cleanse_free(a->token);
	cleanse_free(a->password);
	free(a->user);
	cleanse_free(a->read_token);
	cleanse_free(a->read_password);
	free(a->read_user);
	memset(a, 0, sizeof *a);
}

int sl_http_auth_load(struct sl_http_auth *a, const struct sl_http_auth_conf *c, const char *what,
		      struct sl_err *err)
{
	char *pw = NULL;
	int rc;
	memset(a, 0, sizeof *a);
	if ((rc = secret(c->token_file, c->token_env, &a->token, what, err)) ||
	    (rc = secret(c->password_file, c->password_env, &pw, what, err))) {
		sl_http_auth_free(a);
		return rc;
	}
	if (pw) {
		if (!c->user || !*c->user) {
			cleanse_free(pw);
			sl_http_auth_free(a);
			return sl_err_set(err, SL_ECONFIG, "%s: a password is set but %s.user is empty", what, what);
		}
		a->password = pw;
		if (!(a->user = strdup(c->user))) {
			sl_http_auth_free(a);
			return sl_err_set(err, SL_ENOMEM, "out of memory");
		}
	}
	pw = NULL;
	if ((rc = secret(c->read_token_file, c->read_token_env, &a->read_token, what, err)) ||
	    (rc = secret(c->read_password_file, c->read_password_env, &pw, what, err))) {
		sl_http_auth_free(a);
		return rc;
	}
	if (pw) {
		if (!c->read_user || !*c->read_user) {
			cleanse_free(pw);
			sl_http_auth_free(a);
			return sl_err_set(err, SL_ECONFIG, "%s: a read password is set but %s.read_user is empty", what,
					  what);
		}
		a->read_password = pw;
		if (!(a->read_user = strdup(c->read_user))) {
			sl_http_auth_free(a);
			return sl_err_set(err, SL_ENOMEM, "out of memory");
		}
	}
	if (a->token && a->read_token && !strcmp(a->token, a->read_token)) {
		sl_http_auth_free(a);
		return sl_err_set(err, SL_ECONFIG, "%s: the read-only token equals the read-write one", what);
	}
	return 0;
}

bool sl_http_auth_is_loopback(const char *host)
{
	return !strcmp(host, "localhost") || !strncmp(host, "127.", 4) || !strcmp(host, "::1") ||
	       !strcmp(host, "[::1]");
}

int sl_http_auth_require(const struct sl_http_auth *a, const struct sl_http_auth_conf *c, const char *host,
			 const char *what, struct sl_err *err)
{
	if (sl_http_auth_is_loopback(host) || sl_http_auth_on(a))
		return 0;
	return sl_err_set(err, SL_ECONFIG,
			  "%s: listening on %s (beyond loopback) needs auth: set $%s (a bearer token) or $%s (basic "
			  "auth for user '%s'), or %s.token_file/password_file",
			  what, *host ? host : "every address", c->token_env ? c->token_env : "(token_env)",
			  c->password_env ? c->password_env : "(password_env)", c->user ? c->user : "admin", what);
}

bool sl_http_auth_ct_equal(const void *a, size_t alen, const void *b, size_t blen)
{
	unsigned char da[SHA256_DIGEST_LENGTH], db[SHA256_DIGEST_LENGTH];
	SHA256(a, alen, da);
	SHA256(b, blen, db);
	return CRYPTO_memcmp(da, db, sizeof da) == 0;
}

int sl_http_auth_b64_decode(const char *s, size_t n, unsigned char *out, size_t outsz)
{
	uint32_t acc = 0;
	int bits = 0;
	size_t o = 0, pad = 0;
	for (size_t i = 0; i < n; i++) {
		int ch = (unsigned char)s[i], v;
		if (ch == '=') {
			pad++;
			continue;
		}
		if (pad)
			return -1; /* data after padding */
		if (ch >= 'A' && ch <= 'Z')
			v = ch - 'A';
		else if (ch >= 'a' && ch <= 'z')
			v = ch - 'a' + 26;
		else if (ch >= '0' && ch <= '9')
			v = ch - '0' + 52;
		else if (ch == '+')
			v = 62;
		else if (ch == '/')
			v = 63;
		else
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o >= outsz)
				return -1;
			out[o++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (pad > 2 || bits >= 6)
		return -1;
	return (int)o;
}

static const char *skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* The credentials after a scheme word ("Bearer x"), trailing blanks trimmed; NULL when the scheme differs. */
static const char *credentials(const char *h, const char *scheme, size_t *n)
{
	size_t sl = strlen(scheme);
	const char *p = skip_ws(h);
	if (strncasecmp(p, scheme, sl) || (p[sl] != ' ' && p[sl] != '\t'))
		return NULL;
	p = skip_ws(p + sl);
	*n = strlen(p);
	while (*n && (p[*n - 1] == ' ' || p[*n - 1] == '\t'))
		(*n)--;
	return p;
}

/* Whether basic credentials t (base64, n bytes) name user:password; both halves compared every time, so a wrong
 * user costs what a wrong password does. */
static bool basic_matches(const char *t, size_t n, const char *user, const char *password)
{
	unsigned char dec[1024];
	int dn = sl_http_auth_b64_decode(t, n, dec, sizeof dec);
	if (dn < 0)
		return false;
	unsigned char *colon = memchr(dec, ':', (size_t)dn);
	bool ok = false;
	if (colon) {
		size_t ulen = (size_t)(colon - dec), plen = (size_t)dn - ulen - 1;
		bool u = sl_http_auth_ct_equal(dec, ulen, user, strlen(user));
		bool pw = sl_http_auth_ct_equal(colon + 1, plen, password, strlen(password));
		ok = u & pw;
	}
	OPENSSL_cleanse(dec, sizeof dec);
	return ok;
}

enum sl_http_role sl_http_auth_role(const struct sl_http_auth *a, const char *authorization)
{
	const char *t;
	size_t n;
	if (!sl_http_auth_on(a))
		return SL_HTTP_ROLE_WRITE;
	if (!authorization)
		return SL_HTTP_ROLE_NONE;
	if ((t = credentials(authorization, "Bearer", &n))) {
		/* Both compared, so the answer's timing does not say which set a token is near. */
		bool w = a->token && sl_http_auth_ct_equal(t, n, a->token, strlen(a->token));
		bool r = a->read_token && sl_http_auth_ct_equal(t, n, a->read_token, strlen(a->read_token));
		return w ? SL_HTTP_ROLE_WRITE : r ? SL_HTTP_ROLE_READ : SL_HTTP_ROLE_NONE;
	}
	if ((t = credentials(authorization, "Basic", &n))) {
		bool w = a->user && a->password && basic_matches(t, n, a->user, a->password);
		bool r = a->read_user && a->read_password && basic_matches(t, n, a->read_user, a->read_password);
		return w ? SL_HTTP_ROLE_WRITE : r ? SL_HTTP_ROLE_READ : SL_HTTP_ROLE_NONE;
	}
	return SL_HTTP_ROLE_NONE;
}

bool sl_http_auth_ok(const struct sl_http_auth *a, const char *authorization)
{
	return sl_http_auth_role(a, authorization) != SL_HTTP_ROLE_NONE;
}

int sl_http_auth_header(const struct sl_http_auth_conf *c, char **line, const char *what, struct sl_err *err)
{
	struct sl_http_auth a;
	int rc;
	*line = NULL;
	if ((rc = sl_http_auth_load(&a, c, what, err)))
		return rc;
	size_t cap = 64 + (a.token ? strlen(a.token) : 0) +
		     (a.password ? 4 * (strlen(a.user) + strlen(a.password) + 3) / 3 + 4 : 0);
	char *s = calloc(1, cap);
	if (!s) {
		sl_http_auth_free(&a);
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	}
	if (a.token)
		snprintf(s, cap, "Authorization: Bearer %s", a.token);
	else if (a.password) {
		size_t ul = strlen(a.user), pl = strlen(a.password);
		unsigned char *plain = malloc(ul + 1 + pl);
		if (!plain) {
			free(s);
			sl_http_auth_free(&a);
			return sl_err_set(err, SL_ENOMEM, "out of memory");
		}
		memcpy(plain, a.user, ul);
		plain[ul] = ':';
		memcpy(plain + ul + 1, a.password, pl);
		int off = snprintf(s, cap, "Authorization: Basic ");
		EVP_EncodeBlock((unsigned char *)s + off, plain, (int)(ul + 1 + pl));
		OPENSSL_cleanse(plain, ul + 1 + pl);
		free(plain);
	}
	sl_http_auth_free(&a);
	*line = s;
	return 0;
}
