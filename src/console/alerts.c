/* Alerts: rules over what the collector sees (a pipeline's lag, its error rate and dead-letter growth over a window,
 * its consumer group's Burrow status), each with a threshold and a duration it must hold for, as Prometheus alerting
 * rules have. A rule is pending, then firing, then resolved; changes are logged, shown on the Alerts page and POSTed
 * to console.webhook as Alertmanager-style JSON (so an Alertmanager receiver or a chat hook can take them). */
#include <curl/curl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "console/internal.h"
#include "core/log.h"

#define COMP "console"

static const struct sl_opt rule_opts[] = {
	{"name", SL_OPT_STRING, NULL, offsetof(struct sl_console_rule, name), "the alert's name", .required = true},
	{"metric", SL_OPT_ENUM, NULL, offsetof(struct sl_console_rule, metric),
	 "what the rule watches: lag (records), error_rate (errors per record in the window), dlq_growth (records "
	 "dead-lettered in the window), group_status (Burrow: 0 OK, 1 WARN, 2 STALL, 3 STOP or REWIND)",
	 .choices = "lag|error_rate|dlq_growth|group_status", .required = true},
	{"pipeline", SL_OPT_STRING, NULL, offsetof(struct sl_console_rule, pipeline),
	 "the pipeline it watches (default: each pipeline)"},
	{"above", SL_OPT_DOUBLE, "0", offsetof(struct sl_console_rule, above), "fires while the value is above this"},
	{"for", SL_OPT_DURATION, "0", offsetof(struct sl_console_rule, for_ms),
	 "how long the value must stay above before the alert fires"},
	{"window", SL_OPT_DURATION, "5m", offsetof(struct sl_console_rule, window_ms),
	 "error_rate and dlq_growth: the window they are computed over"},
	{"severity", SL_OPT_ENUM, "warning", offsetof(struct sl_console_rule, severity), "a label for receivers",
	 .choices = "info|warning|critical"},
	{NULL},
};

static const struct {
	const char *name, *metric;
	double above;
	int64_t for_ms, window_ms;
	const char *severity;
} default_rules[] = {
	{"ConsumerLagHigh", "lag", 10000, 120000, 300000, "warning"},
	{"ConsumerGroupStalled", "group_status", 1, 60000, 300000, "critical"},
	{"ErrorRateHigh", "error_rate", 0.05, 60000, 300000, "warning"},
	{"DeadLettersGrowing", "dlq_growth", 0, 0, 300000, "warning"},
};

int sl_con_rules_bind(struct sl_console *c, struct sl_err *err)
{
	const struct sl_cfg_node *n = c->cc.rules;
	char w[300];
	if (n && n->kind != SL_CFG_SEQ)
		return sl_err_set(err, SL_ECONFIG, "%s: console.rules must be a list of rules",
				  sl_cfg_where(n, w, sizeof w));
	size_t cnt = n ? n->n : sizeof default_rules / sizeof *default_rules;
	c->rules = calloc(cnt ? cnt : 1, sizeof *c->rules);
	if (!c->rules)
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	c->rules_bound = n != NULL;
	for (size_t i = 0; i < cnt; i++) {
		struct sl_console_rule *r = &c->rules[i];
		if (n) {
			char sec[64];
			snprintf(sec, sizeof sec, "console.rules[%zu]", i);
			c->nrules = i + 1;
			if (sl_opt_bind(rule_opts, n->items[i], sec, r, err))
				return SL_ECONFIG;
			if (r->pipeline && !sl_conf_pipeline(c->conf, r->pipeline, err))
				return sl_err_prefix(err, "%s: ", sl_cfg_where(n->items[i], w, sizeof w));
		} else {
			sl_opt_defaults(rule_opts, r, err);
			free(r->severity);
			r->name = strdup(default_rules[i].name);
			r->metric = strdup(default_rules[i].metric);
			r->severity = strdup(default_rules[i].severity);
			r->above = default_rules[i].above;
			r->for_ms = default_rules[i].for_ms;
			r->window_ms = default_rules[i].window_ms;
			c->nrules = i + 1;
		}
	}
	/* One alert instance per (rule, pipeline). */
	size_t na = 0;
	for (size_t i = 0; i < c->nrules; i++)
		na += c->rules[i].pipeline ? 1 : c->npipes;
	c->alerts = calloc(na ? na : 1, sizeof *c->alerts);
	if (!c->alerts)
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	for (size_t i = 0; i < c->nrules; i++)
		for (size_t j = 0; j < c->npipes; j++)
			if (!c->rules[i].pipeline || !strcmp(c->rules[i].pipeline, c->pipes[j].p->name)) {
				struct sl_con_alert *a = &c->alerts[c->nalerts++];
				a->rule = &c->rules[i];
				snprintf(a->pipeline, sizeof a->pipeline, "%s", c->pipes[j].p->name);
			}
	return 0;
}

void sl_con_rules_free(struct sl_console *c)
{
	for (size_t i = 0; i < c->nrules; i++)
		sl_opt_free(rule_opts, &c->rules[i]);
	free(c->rules);
	free(c->alerts);
	c->rules = NULL;
	c->alerts = NULL;
	c->nrules = c->nalerts = 0;
}


/* The sample closest to (at or after) now - window, and the latest. */
static void window_ends(const struct sl_console *c, const struct sl_con_pipe *cp, int64_t now, int64_t window,
			const struct sl_con_sample **a, const struct sl_con_sample **b)
{
	*a = *b = NULL;
	if (!cp->nring)
		return;
	*b = sl_con_ring_at(c, cp, cp->nring - 1);
	for (size_t i = 0; i < cp->nring; i++) {
		const struct sl_con_sample *s = sl_con_ring_at(c, cp, i);
		if (s->t_ms >= now - window) {
			*a = s;
			return;
		}
	}
	*a = *b;
}

double sl_con_error_rate(const struct sl_console *c, const struct sl_con_pipe *cp, int64_t now, int64_t window)
{
	const struct sl_con_sample *a, *b;
	window_ends(c, cp, now, window, &a, &b);
	if (!a || !b || b->errors_total <= a->errors_total)
		return 0;
	double errs = (double)(b->errors_total - a->errors_total);
	double recs = b->in_total > a->in_total ? (double)(b->in_total - a->in_total) : 0;
	/* Errors are dead letters (the log's count, which survives restarts). A record that failed its mapping never
	 * reached the topic, so the records tried are those in the topic plus those dead-lettered (one failing later,
	 * at decode or sink, is counted twice in the denominator: the rate errs low rather than above 100 %). */
	return errs / (recs + errs);
}

int64_t sl_con_dlq_growth(const struct sl_console *c, const struct sl_con_pipe *cp, int64_t now, int64_t window)
{
	const struct sl_con_sample *a, *b;
	window_ends(c, cp, now, window, &a, &b);
	return a && b && b->dlq > a->dlq ? b->dlq - a->dlq : 0;
}

static double value_of(const struct sl_console *c, const struct sl_console_rule *r, const struct sl_con_pipe *cp,
		       int64_t now)
{
	if (!strcmp(r->metric, "lag"))
		return (double)cp->lag;
	if (!strcmp(r->metric, "group_status"))
		return cp->status >= SL_BURROW_STOP ? 3 : (double)cp->status;
	if (!strcmp(r->metric, "error_rate"))
		return sl_con_error_rate(c, cp, now, r->window_ms);
	const struct sl_con_sample *a, *b; /* dlq_growth */
	window_ends(c, cp, now, r->window_ms, &a, &b);
	return a && b && b->dlq > a->dlq ? (double)(b->dlq - a->dlq) : 0;
}

static void iso8601(int64_t ms, char *out, size_t n)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* A value in its metric's unit, for people: 41.0 % and not 0.41, STOP and not 3. */
static void value_words(const char *metric, double v, char *out, size_t n)
{
	static const char *const status[] = {"OK", "WARN", "STALL", "STOP"};
	if (!strcmp(metric, "error_rate"))
		snprintf(out, n, "%.1f %%", v * 100);
	else if (!strcmp(metric, "group_status") && v >= 0 && v < 4 && v == (double)(int)v)
		snprintf(out, n, "%s", status[(int)v]);
	else if (!strcmp(metric, "lag"))
		snprintf(out, n, "%g records", v);
	else if (!strcmp(metric, "dlq_growth"))
		snprintf(out, n, "%g dead letters", v);
	else
		snprintf(out, n, "%g", v);
}

static void alert_json(struct sl_buf *b, const struct sl_con_alert *a, int64_t now)
{
	char t1[32], t2[32];
	iso8601(a->firing ? a->firing_since : (a->pending_since ? a->pending_since : a->firing_since), t1, sizeof t1);
	iso8601(a->resolved_at ? a->resolved_at : now, t2, sizeof t2);
	const char *state = a->firing ? "firing" : a->pending_since ? "pending" : a->resolved_at ? "resolved" : "inactive";
	sl_buf_puts(b, "{\"status\":");
	sl_buf_json_str(b, a->firing ? "firing" : "resolved", a->firing ? 6 : 8);
	sl_buf_puts(b, ",\"state\":");
	sl_buf_json_str(b, state, strlen(state));
	sl_buf_puts(b, ",\"labels\":{\"alertname\":");
	sl_buf_json_str(b, a->rule->name, strlen(a->rule->name));
	sl_buf_puts(b, ",\"pipeline\":");
	sl_buf_json_str(b, a->pipeline, strlen(a->pipeline));
	sl_buf_puts(b, ",\"severity\":");
	sl_buf_json_str(b, a->rule->severity, strlen(a->rule->severity));
	char summary[512], v[64], th[64], win[48] = "";
	value_words(a->rule->metric, a->value, v, sizeof v);
	value_words(a->rule->metric, a->rule->above, th, sizeof th);
	if (!strcmp(a->rule->metric, "error_rate") || !strcmp(a->rule->metric, "dlq_growth"))
		snprintf(win, sizeof win, " over the last %g min", (double)a->rule->window_ms / 60000.0);
	snprintf(summary, sizeof summary, "%s of pipeline %s is %s%s (above %s%s)", a->rule->metric, a->pipeline, v, win,
		 th, a->rule->for_ms ? " for long enough" : "");
	sl_buf_puts(b, "},\"annotations\":{\"summary\":");
	sl_buf_json_str(b, summary, strlen(summary));
	sl_buf_printf(b, "},\"metric\":\"%s\",\"value\":%g,\"threshold\":%g,\"for_ms\":%" PRId64
			 ",\"window_ms\":%" PRId64 ",\"startsAt\":\"%s\"",
		      a->rule->metric, a->value, a->rule->above, a->rule->for_ms, a->rule->window_ms, t1);
	if (!a->firing && a->resolved_at)
		sl_buf_printf(b, ",\"endsAt\":\"%s\"", t2);
	if (a->silenced_until > now) {
		char t3[32];
		iso8601(a->silenced_until, t3, sizeof t3);
		sl_buf_printf(b, ",\"silenced_until\":\"%s\",\"silenced_by\":", t3);
		sl_buf_json_str(b, a->silenced_by, strlen(a->silenced_by));
		sl_buf_puts(b, ",\"silence_comment\":");
		sl_buf_json_str(b, a->silence_comment, strlen(a->silence_comment));
	}
	sl_buf_puts(b, "}");
}

static size_t discard(char *p, size_t sz, size_t n, void *ud)
{
	(void)p;
	(void)ud;
	return sz * n;
}

static void send_webhook(const char *url, const char *body, size_t len)
{
	CURL *h = curl_easy_init();
	if (!h)
		return;
	struct curl_slist *hd = curl_slist_append(NULL, "Content-Type: application/json");
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)len);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
	CURLcode rc = curl_easy_perform(h);
	long code = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	char red[1024];
	sl_log_redact(url, red, sizeof red);
	if (rc != CURLE_OK || code >= 300)
		sl_warn(COMP, "alert webhook failed url=%s error=\"%s\" status=%ld", red,
			rc != CURLE_OK ? curl_easy_strerror(rc) : "HTTP error", code);
	curl_slist_free_all(hd);
	curl_easy_cleanup(h);
}

void sl_con_alerts_eval(struct sl_console *c, int64_t now)
{
	struct sl_buf hook;
	sl_buf_init(&hook);
	size_t changed = 0;
	pthread_mutex_lock(&c->lock);
	sl_buf_puts(&hook, "{\"version\":\"4\",\"receiver\":\"sluice\",\"alerts\":[");
	for (size_t i = 0; i < c->nalerts; i++) {
		struct sl_con_alert *a = &c->alerts[i];
		struct sl_con_pipe *cp = NULL;
		for (size_t j = 0; j < c->npipes; j++)
			if (!strcmp(c->pipes[j].p->name, a->pipeline))
				cp = &c->pipes[j];
		if (!cp || !cp->nring)
			continue;
		a->value = value_of(c, a->rule, cp, now);
		bool above = a->value > a->rule->above;
		bool was = a->firing;
		if (above) {
			if (!a->pending_since && !a->firing)
				a->pending_since = now;
			if (!a->firing && now - a->pending_since >= a->rule->for_ms) {
				a->firing = true;
				a->firing_since = now;
				a->pending_since = 0;
				a->resolved_at = 0;
			}
		} else {
			a->pending_since = 0;
			if (a->firing) {
				a->firing = false;
				a->resolved_at = now;
			}
		}
		if (was != a->firing) {
			if (a->firing)
				sl_warn(COMP, "alert firing alert=%s pipeline=%s value=%g threshold=%g", a->rule->name,
					a->pipeline, a->value, a->rule->above);
			else
				sl_info(COMP, "alert resolved alert=%s pipeline=%s value=%g", a->rule->name, a->pipeline,
					a->value);
			/* A silenced alert changes state on the page but sends nothing. */
			if (a->silenced_until > now)
				continue;
			if (changed++)
				sl_buf_putc(&hook, ',');
			alert_json(&hook, a, now);
		}
	}
	sl_buf_puts(&hook, "]}");
	char *url = c->cc.webhook ? strdup(c->cc.webhook) : NULL;
	pthread_mutex_unlock(&c->lock);
	if (changed && url && sl_buf_ok(&hook))
		send_webhook(url, hook.data, hook.len);
	free(url);
	sl_buf_free(&hook);
}

void sl_con_alerts_json(struct sl_console *c, struct sl_buf *out)
{
	int64_t now = sl_con_now_ms();
	size_t firing = 0;
	sl_buf_puts(out, "{\"alerts\":[");
	for (size_t i = 0; i < c->nalerts; i++) {
		if (i)
			sl_buf_putc(out, ',');
		alert_json(out, &c->alerts[i], now);
		firing += c->alerts[i].firing;
	}
	sl_buf_printf(out, "],\"firing\":%zu,\"webhook\":%s,\"default_rules\":%s}", firing,
		      c->cc.webhook ? "true" : "false", c->rules_bound ? "false" : "true");
}
