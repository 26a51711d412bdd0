/* One honest status per pipeline. The consumer group's Burrow status alone says nothing about records that fail: a
 * pipeline dead-lettering 41 % of its records with two alerts firing would show OK. Here every signal the console
 * has counts: the group (STALL, STOP, REWIND are errors, WARN a warning), the error rate over the health window
 * against console.health_max_error_rate, dead letters added in that window, the alerts firing for the pipeline (a
 * critical one is an error) and whether the log and the sink answer. The worst wins, and each reason is said in
 * words with its unit. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "console/internal.h"

const char *sl_con_health_name(enum sl_con_health h)
{
	return h == SL_CON_ERROR ? "ERROR" : h == SL_CON_WARN ? "WARN" : "OK";
}

static void reason(struct sl_buf *b, enum sl_con_health *worst, enum sl_con_health level, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void reason(struct sl_buf *b, enum sl_con_health *worst, enum sl_con_health level, const char *fmt, ...)
{
	char text[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	if (level > *worst)
		*worst = level;
	if (!b)
		return;
	if (b->len)
		sl_buf_putc(b, ',');
	sl_buf_printf(b, "{\"level\":\"%s\",\"text\":", sl_con_health_name(level));
	sl_buf_json_str(b, text, strlen(text));
	sl_buf_putc(b, '}');
}

static void window_words(int64_t ms, char *out, size_t n)
{
	if (ms % 60000 == 0)
		snprintf(out, n, "%" PRId64 " min", ms / 60000);
	else
		snprintf(out, n, "%" PRId64 " s", ms / 1000);
}

enum sl_con_health sl_con_pipe_health(struct sl_console *c, const struct sl_con_pipe *cp, int64_t now,
				      struct sl_buf *reasons)
{
	enum sl_con_health h = SL_CON_OK;
	char win[32];
	window_words(c->cc.health_window_ms, win, sizeof win);
	if (!cp->log_ok)
		reason(reasons, &h, SL_CON_ERROR, "the log does not answer: %s", cp->log_error);
	if (!cp->sink_ok && cp->sink_error[0])
		reason(reasons, &h, SL_CON_ERROR, "the sink does not answer: %s", cp->sink_error);
	if (cp->status >= SL_BURROW_STALL)
		reason(reasons, &h, SL_CON_ERROR, "consumer group %s is %s (lag %" PRId64 " records)", cp->p->group,
		       sl_burrow_name(cp->status), cp->lag);
	else if (cp->status == SL_BURROW_WARN)
		reason(reasons, &h, SL_CON_WARN, "consumer group %s is falling behind (lag %" PRId64 " records)",
		       cp->p->group, cp->lag);
	double rate = sl_con_error_rate(c, cp, now, c->cc.health_window_ms);
	if (rate > c->cc.health_max_error_rate)
		reason(reasons, &h, SL_CON_ERROR, "error rate %.1f %% over the last %s (above %.1f %%)", rate * 100, win,
		       c->cc.health_max_error_rate * 100);
	int64_t grew = sl_con_dlq_growth(c, cp, now, c->cc.health_window_ms);
	if (grew > 0)
		reason(reasons, &h, SL_CON_WARN, "%" PRId64 " new dead letter%s in the last %s", grew, grew == 1 ? "" : "s",
		       win);
	for (size_t i = 0; i < c->nalerts; i++) {
		const struct sl_con_alert *a = &c->alerts[i];
		if (!a->firing || strcmp(a->pipeline, cp->p->name))
			continue;
		if (a->silenced_until > now)
			reason(reasons, &h, SL_CON_WARN, "alert %s is firing (%s; silenced by %s)", a->rule->name,
			       a->rule->severity, a->silenced_by);
		else
			reason(reasons, &h, !strcmp(a->rule->severity, "critical") ? SL_CON_ERROR : SL_CON_WARN,
			       "alert %s is firing (%s)", a->rule->name, a->rule->severity);
	}
	return h;
}
