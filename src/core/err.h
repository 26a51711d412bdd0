/* Errors: every fallible function returns an int (0 ok, negative SL_E*) and fills a struct sl_err whose message a user
 * can act on. The message names the input that caused it: file:line, topic/partition/offset, field, statement. */
#ifndef SL_ERR_H
#define SL_ERR_H

#include <stddef.h>

enum {
	SL_OK = 0,
	SL_EINVAL = -1,     /* bad argument or input */
	SL_ENOMEM = -2,
	SL_EIO = -3,        /* OS-level I/O failure */
	SL_ETIMEDOUT = -4,
	SL_ENOTFOUND = -5,
	SL_EPROTO = -6,     /* peer spoke something we do not understand */
	SL_EAGAIN = -7,     /* retryable: try again later */
	SL_ECLOSED = -8,    /* queue or connection closed */
	SL_EFULL = -9,
	SL_ECONFIG = -10,
	SL_EAUTH = -11,
	SL_ESERVER = -12,   /* the remote end reported an error */
	SL_ETYPE = -13,     /* a value does not fit its declared type */
	SL_ETOOBIG = -14,
	SL_ECANCELED = -15,
};

#define SL_ERR_MSG_MAX 512

struct sl_err {
	int code;
	char msg[SL_ERR_MSG_MAX];
};

/* Sets code and a printf-formatted message; returns code so callers can `return sl_err_set(...)`. e may be NULL. */
int sl_err_set(struct sl_err *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Prefixes the existing message with more context ("loading x.yaml: " + old message). Returns e->code. */
int sl_err_prefix(struct sl_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sl_err_clear(struct sl_err *e);
/* A short constant description of an SL_E* code. */
const char *sl_strerror(int code);

#endif
