/* Authentication for sluice's HTTP listeners (the console, the registry, the scheduler's API): a bearer token and/or
 * basic credentials, read from the environment or a file (never from the config file itself), compared in constant
 * time. Auth is optional on loopback and required beyond it. The client side builds the Authorization header that
 * sluice sends to another sluice's listener from the same variables. */
#ifndef SL_HTTPAUTH_H
#define SL_HTTPAUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "core/config.h"
#include "core/err.h"

/* Where a listener's secrets come from: five config keys (see SL_HTTP_AUTH_OPTS). */
struct sl_http_auth_conf {
	char *token_env, *token_file;
	char *user;
	char *password_env, *password_file;
	/* The read-only set: GET/HEAD only (a write with these gets 403). */
	char *read_token_env, *read_token_file;
	char *read_user;
	char *read_password_env, *read_password_file;
};

/* The option-table rows of a struct sl_http_auth_conf member named field of type, with the default environment
 * variables ENV_TOKEN and ENV_PASSWORD (e.g. "SLUICE_REGISTRY_TOKEN"). */
#define SL_HTTP_AUTH_OPTS(type, field, env_token, env_password)                                                    \
	{"token_env", SL_OPT_STRING, env_token, offsetof(type, field.token_env),                                    \
	 "environment variable holding a bearer token (`Authorization: Bearer ...`); auth is on when it is set"},     \
	{"token_file", SL_OPT_STRING, NULL, offsetof(type, field.token_file),                                       \
	 "file holding the bearer token (first line), instead of token_env"},                                        \
	{"user", SL_OPT_STRING, "admin", offsetof(type, field.user), "basic auth user name"},                       \
	{"password_env", SL_OPT_STRING, env_password, offsetof(type, field.password_env),                           \
	 "environment variable holding the basic auth password; basic auth is on when it is set"},                  \
	{"password_file", SL_OPT_STRING, NULL, offsetof(type, field.password_file),                                 \
	 "file holding the basic auth password (first line), instead of password_env"}

/* The option-table rows of the read-only set (servers only: a client sends the read-write set's credentials). */
#define SL_HTTP_AUTH_READ_OPTS(type, field)                                                                        \
	{"read_token_env", SL_OPT_STRING, NULL, offsetof(type, field.read_token_env),                               \
	 "environment variable holding a read-only bearer token: GET and HEAD only, writes answer 403"},             \
	{"read_token_file", SL_OPT_STRING, NULL, offsetof(type, field.read_token_file),                             \
	 "file holding the read-only bearer token (first line), instead of read_token_env"},                         \
	{"read_user", SL_OPT_STRING, "reader", offsetof(type, field.read_user), "read-only basic auth user name"},  \
	{"read_password_env", SL_OPT_STRING, NULL, offsetof(type, field.read_password_env),                         \
	 "environment variable holding the read-only user's basic auth password"},                                    \
	{"read_password_file", SL_OPT_STRING, NULL, offsetof(type, field.read_password_file),                       \
	 "file holding the read-only user's password (first line), instead of read_password_env"}

/* Deep copy and release of a struct sl_http_auth_conf (for components that keep their conf). */
int sl_http_auth_conf_copy(struct sl_http_auth_conf *dst, const struct sl_http_auth_conf *src);
void sl_http_auth_conf_free(struct sl_http_auth_conf *c);

/* The secrets themselves. */
struct sl_http_auth {
	char *token;           /* bearer token; NULL when none */
	char *user, *password; /* basic; NULL when none */
	char *read_token;                /* the read-only set; NULL when none */
	char *read_user, *read_password;
};

/* What an Authorization header grants. */
enum sl_http_role { SL_HTTP_ROLE_NONE = 0, SL_HTTP_ROLE_READ = 1, SL_HTTP_ROLE_WRITE = 2 };

/* Reads the secrets that c points at; what names the listener in messages ("registry"). */
int sl_http_auth_load(struct sl_http_auth *a, const struct sl_http_auth_conf *c, const char *what,
		      struct sl_err *err);
void sl_http_auth_free(struct sl_http_auth *a);
static inline bool sl_http_auth_on(const struct sl_http_auth *a)
{
	return a->token || (a->user && a->password) || a->read_token || (a->read_user && a->read_password);
}
/* Fails (SL_ECONFIG) when host is not a loopback address and no secret is configured. */
int sl_http_auth_require(const struct sl_http_auth *a, const struct sl_http_auth_conf *c, const char *host,
			 const char *what, struct sl_err *err);
/* Whether an Authorization header value grants access. Compares in constant time (over SHA-256 digests, so the
 * secret's length does not leak either). Always true when no secret is configured. */
bool sl_http_auth_ok(const struct sl_http_auth *a, const char *authorization);
/* The role an Authorization header grants: WRITE for the read-write set (or when no secret is configured), READ for
 * the read-only set, NONE otherwise. sl_http_auth_ok is role != NONE. */
enum sl_http_role sl_http_auth_role(const struct sl_http_auth *a, const char *authorization);
/* The Authorization header line ("Authorization: Bearer ...") for a request to a listener configured by c, from the
 * same environment variables or files; returns 0 and an empty line when no secret is set, -1 (err set) when a file
 * cannot be read. The caller cleanses and frees *line. */
int sl_http_auth_header(const struct sl_http_auth_conf *c, char **line, const char *what, struct sl_err *err);

bool sl_http_auth_is_loopback(const char *host);
/* Constant-time equality of two byte strings of any lengths. */
bool sl_http_auth_ct_equal(const void *a, size_t alen, const void *b, size_t blen);
/* Base64 (standard alphabet, padding optional) into out; returns the length or -1. */
int sl_http_auth_b64_decode(const char *s, size_t n, unsigned char *out, size_t outsz);

#endif
