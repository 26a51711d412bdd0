/* Error values and messages (see err.h). */
#include "core/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int sl_err_set(struct sl_err *e, int code, const char *fmt, ...)
{
	if (!e)
		return code;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof e->msg, fmt, ap);
	va_end(ap);
	e->code = code;
	return code;
}

int sl_err_prefix(struct sl_err *e, const char *fmt, ...)
{
	if (!e)
		return SL_EINVAL;
	char head[SL_ERR_MSG_MAX], old[SL_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(head, sizeof head, fmt, ap);
	va_end(ap);
	memcpy(old, e->msg, sizeof old);
	snprintf(e->msg, sizeof e->msg, "%s%s", head, old);
	return e->code;
}

void sl_err_clear(struct sl_err *e)
{
	if (e) {
		e->code = 0;
		e->msg[0] = '\0';
	}
}

const char *sl_strerror(int code)
{
	switch (code) {
	case SL_OK: return "ok";
	case SL_EINVAL: return "invalid input";
	case SL_ENOMEM: return "out of memory";
	case SL_EIO: return "I/O error";
	case SL_ETIMEDOUT: return "timed out";
	case SL_ENOTFOUND: return "not found";
	case SL_EPROTO: return "protocol error";
	case SL_EAGAIN: return "temporarily unavailable";
	case SL_ECLOSED: return "closed";
	case SL_EFULL: return "full";
	case SL_ECONFIG: return "configuration error";
	case SL_EAUTH: return "authentication failed";
	case SL_ESERVER: return "server error";
	case SL_ETYPE: return "type mismatch";
	case SL_ETOOBIG: return "too big";
	case SL_ECANCELED: return "canceled";
	}
	return "unknown error";
}
