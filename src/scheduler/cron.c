/* Cron parsing and next-fire computation (see cron.h for the DST semantics). Fields are bitmasks; the search jumps
 * field by field in wall time, one UTC-offset segment at a time, so it costs a few dozen steps, not a minute scan. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/config.h"
#include "scheduler/cron.h"

static const char *const months[] = {"jan", "feb", "mar", "apr", "may", "jun",
				     "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const day_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

struct field {
	const char *name;
	int lo, hi;
	const char *const *names;
	int nnames, name_base;
};

static const struct field fields[5] = {
	{"minute", 0, 59, NULL, 0, 0},
	{"hour", 0, 23, NULL, 0, 0},
	{"day-of-month", 1, 31, NULL, 0, 0},
	{"month", 1, 12, months, 12, 1},
	{"day-of-week", 0, 7, day_names, 7, 0},
};

static int parse_value(const struct field *f, const char *s, size_t n, int *out)
{
	if (n == 0)
		return -1;
	if (isdigit((unsigned char)s[0])) {
		int v = 0;
		for (size_t i = 0; i < n; i++) {
			if (!isdigit((unsigned char)s[i]) || v > 1000)
				return -1;
			v = v * 10 + (s[i] - '0');
		}
		*out = v;
		return v < f->lo || v > f->hi ? -1 : 0;
	}
	for (int i = 0; i < f->nnames; i++)
		if (n == 3 && !strncasecmp(s, f->names[i], 3)) {
			*out = i + f->name_base;
			return 0;
		}
	return -1;
}

/* One comma-separated part: *, *\/s, a, a-b, a-b/s, a/s. */
static int parse_part(const struct field *f, const char *s, size_t n, uint64_t *mask)
{
	const char *slash = memchr(s, '/', n);
	size_t rn = slash ? (size_t)(slash - s) : n;
	int lo, hi, step = 1;
	if (slash) {
		size_t sn = n - rn - 1;
		if (sn == 0 || sn > 3)
			return -1;
		step = 0;
		for (size_t i = 0; i < sn; i++) {
			if (!isdigit((unsigned char)slash[1 + i]))
				return -1;
			step = step * 10 + (slash[1 + i] - '0');
		}
		if (step < 1 || step > f->hi - f->lo + 1)
			return -1;
	}
	if (rn == 1 && (s[0] == '*' || s[0] == '?')) {
		lo = f->lo;
		hi = f->hi == 7 ? 6 : f->hi;
	} else {
		const char *dash = memchr(s, '-', rn);
		if (dash) {
			if (parse_value(f, s, (size_t)(dash - s), &lo) ||
			    parse_value(f, dash + 1, rn - (size_t)(dash - s) - 1, &hi) || hi < lo)
				return -1;
		} else {
			if (parse_value(f, s, rn, &lo))
				return -1;
			hi = slash ? (f->hi == 7 ? 6 : f->hi) : lo;
		}
	}
	for (int v = lo; v <= hi; v += step)
		*mask |= 1ull << (f->hi == 7 && v == 7 ? 0 : v);
	return 0;
}

static const struct {
	const char *name, *expr;
} presets[] = {
	{"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"}, {"@weekly", "0 0 * * 0"},
	{"@daily", "0 0 * * *"},  {"@midnight", "0 0 * * *"}, {"@hourly", "0 * * * *"},
};

int sl_cron_parse(struct sl_cron *c, const char *expr, struct sl_err *err)
{
	memset(c, 0, sizeof *c);
	if (!expr)
		return sl_err_set(err, SL_EINVAL, "schedule: missing expression");
	while (isspace((unsigned char)*expr))
		expr++;
	snprintf(c->text, sizeof c->text, "%s", expr);
	const char *dur = NULL;
	if (!strncasecmp(expr, "every ", 6))
		dur = expr + 6;
	else if (!strncasecmp(expr, "@every ", 7))
		dur = expr + 7;
	if (dur) {
		while (isspace((unsigned char)*dur))
			dur++;
		int64_t ms;
		if (sl_parse_duration_ms(dur, &ms) || ms < 1000 || ms % 1000)
			return sl_err_set(err, SL_EINVAL,
					  "schedule '%s': '%s' is not an interval of whole seconds like 30s, 15m, 1h, 1d",
					  c->text, dur);
		c->interval = true;
		c->interval_s = ms / 1000;
		return 0;
	}
	if (expr[0] == '@') {
		for (size_t i = 0; i < sizeof presets / sizeof *presets; i++)
			if (!strcasecmp(expr, presets[i].name)) {
				int rc = sl_cron_parse(c, presets[i].expr, err);
				snprintf(c->text, sizeof c->text, "%s", presets[i].name);
				return rc;
			}
		return sl_err_set(err, SL_EINVAL,
				  "schedule '%s': unknown preset; use @yearly, @annually, @monthly, @weekly, @daily, "
				  "@midnight, @hourly or @every <duration>",
				  c->text);
	}
	const char *p = expr;
	bool has_star[5] = {0};
	for (int fi = 0; fi < 5; fi++) {
		while (isspace((unsigned char)*p))
			p++;
		const char *s = p;
		while (*p && !isspace((unsigned char)*p))
			p++;
		size_t n = (size_t)(p - s);
		if (n == 0)
			return sl_err_set(err, SL_EINVAL,
					  "schedule '%s': %d fields, expected 5 (minute hour day-of-month month "
					  "day-of-week) or a preset like @daily",
					  c->text, fi);
		uint64_t mask = 0;
		const char *q = s;
		while (q < p) {
			const char *comma = memchr(q, ',', (size_t)(p - q));
			const char *e = comma ? comma : p;
			if (parse_part(&fields[fi], q, (size_t)(e - q), &mask))
				return sl_err_set(err, SL_EINVAL, "schedule '%s': %s field '%.*s' is invalid (allowed: %d-%d%s)",
						  c->text, fields[fi].name, (int)n, s, fields[fi].lo, fields[fi].hi,
						  fi == 3 ? " or jan-dec" : fi == 4 ? " or sun-sat" : "");
			q = comma ? comma + 1 : p;
			if (comma && q == p)
				return sl_err_set(err, SL_EINVAL, "schedule '%s': %s field '%.*s' ends with a comma",
						  c->text, fields[fi].name, (int)n, s);
		}
		bool star = n == 1 && (s[0] == '*' || s[0] == '?');
		has_star[fi] = memchr(s, '*', n) != NULL;
		switch (fi) {
		case 0: c->minute = mask; break;
		case 1: c->hour = (uint32_t)mask; break;
		case 2: c->dom = (uint32_t)mask; c->dom_star = star; break;
		case 3: c->month = (uint16_t)mask; break;
		case 4: c->dow = (uint8_t)mask; c->dow_star = star; break;
		}
	}
	/* croniter (hence Airflow) also counts a day field that lists every day as unrestricted when the other day
	 * field contains a '*' (so "* * 1-31 * *\/2" means every other weekday, not every day): follow it. */
	if (c->dom == 0xfffffffeu && has_star[4])
		c->dom_star = true;
	if (c->dow == 0x7f && has_star[2])
		c->dow_star = true;
	while (isspace((unsigned char)*p))
		p++;
	if (*p)
		return sl_err_set(err, SL_EINVAL,
				  "schedule '%s': more than 5 fields (seconds and years are not supported)", c->text);
	return 0;
}

static int dim(int64_t y, unsigned m)
{
	static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return m == 2 && leap ? 29 : dm[m - 1];
}

static bool day_matches(const struct sl_cron *c, int64_t y, unsigned m, unsigned d)
{
	int64_t days = sl_tz_days_from_civil(y, m, d);
	int wd = (int)(((days % 7) + 11) % 7);
	bool dm = c->dom >> d & 1, wm = c->dow >> wd & 1;
	if (!c->dom_star && !c->dow_star)
		return dm || wm;
	return dm && wm;
}

static int lowest_from(uint64_t mask, int from, int max)
{
	for (int i = from; i <= max; i++)
		if (mask >> i & 1)
			return i;
	return -1;
}

/* First matching wall second >= w (itself on a minute boundary), or INT64_MAX within ~ 30 years. */
static int64_t next_wall(const struct sl_cron *c, int64_t w)
{
	int64_t days = w >= 0 ? w / 86400 : -((-w + 86399) / 86400);
	int64_t sod = w - days * 86400;
	int64_t y;
	unsigned m, d;
	sl_tz_civil_from_days(days, &y, &m, &d);
	int h = (int)(sod / 3600), mi = (int)(sod % 3600 / 60);
	int64_t ylimit = y + 30;
	while (y <= ylimit) {
		if (!(c->month >> m & 1)) {
			int nm = lowest_from(c->month, (int)m + 1, 12);
			if (nm < 0) {
				y++;
				nm = lowest_from(c->month, 1, 12);
			}
			m = (unsigned)nm, d = 1, h = 0, mi = 0;
			continue;
		}
		if ((int)d > dim(y, m) || !day_matches(c, y, m, d)) {
			if ((int)d >= dim(y, m)) {
				d = 1, h = 0, mi = 0;
				if (++m > 12)
					m = 1, y++;
			} else {
				d++, h = 0, mi = 0;
			}
			continue;
		}
		int nh = lowest_from(c->hour, h, 23);
		if (nh < 0) {
			h = 24;
			goto next_day;
		}
		if (nh != h)
			h = nh, mi = 0;
		int nmi = lowest_from(c->minute, mi, 59);
		if (nmi < 0) {
			mi = 0;
			if (++h > 23)
				goto next_day;
			continue;
		}
		return sl_tz_days_from_civil(y, m, d) * 86400 + h * 3600 + nmi * 60;
	next_day:
		h = 0, mi = 0;
		if ((int)++d > dim(y, m)) {
			d = 1;
			if (++m > 12)
				m = 1, y++;
		}
	}
	return INT64_MAX;
}

static int64_t ceil_minute(int64_t w)
{
	int64_t r = ((w % 60) + 60) % 60;
	return r ? w + (60 - r) : w;
}

int sl_cron_next(const struct sl_cron *c, const struct sl_tz *tz, int64_t anchor, int64_t after, int64_t *next)
{
	if (c->interval) {
		if (after < anchor) {
			*next = anchor;
			return 0;
		}
		*next = anchor + ((after - anchor) / c->interval_s + 1) * c->interval_s;
		return 0;
	}
	int64_t t = after + 1;
	for (int seg = 0; seg < 100000; seg++) {
		int32_t off = sl_tz_offset(tz, t);
		int64_t end = sl_tz_next_transition(tz, t);
		int64_t w = next_wall(c, ceil_minute(t + off));
		if (w == INT64_MAX)
			return SL_ENOTFOUND;
		int64_t u = w - off;
		if (end == INT64_MAX || u < end) {
			*next = u;
			return 0;
		}
		/* The match lies past this segment. If the offset grows there, the wall times between the old and the new
		 * offset never happen: a match among them fires when the gap ends, as croniter does. */
		int32_t noff = sl_tz_offset(tz, end);
		if (noff > off && w < end + noff) {
			*next = end;
			return 0;
		}
		t = end;
	}
	return SL_ENOTFOUND;
}

int sl_cron_prev(const struct sl_cron *c, const struct sl_tz *tz, int64_t anchor, int64_t before, int64_t *prev)
{
	if (c->interval) {
		if (before <= anchor)
			return SL_ENOTFOUND;
		*prev = anchor + ((before - anchor - 1) / c->interval_s) * c->interval_s;
		return 0;
	}
	/* Doubling windows before `before`: a dense schedule ends in one short window, a yearly one in ~18 doublings. */
	for (int64_t w = 120; w < 40LL * 366 * 86400; w *= 2) {
		int64_t cur = before - w - 1, last = INT64_MIN, t;
		while (!sl_cron_next(c, tz, anchor, cur, &t) && t < before) {
			last = t;
			cur = t;
		}
		if (last != INT64_MIN) {
			*prev = last;
			return 0;
		}
	}
	return SL_ENOTFOUND;
}
