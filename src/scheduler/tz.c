/* TZif reader (RFC 8536) and POSIX TZ rule evaluation, private to the scheduler: see tz.h for why it is not
 * localtime(). Only what next-fire computation needs: the offset at an instant and the next transition. */
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scheduler/tz.h"

struct tz_rule_date {
	char kind;      /* 'M' month.week.day, 'J' julian 1..365 without Feb 29, 'D' zero-based day of year */
	int m, w, d, n;
	int32_t time;   /* seconds after local midnight, may be negative or > 24h */
};

struct tz_rule {
	int present;
	int32_t std_off, dst_off; /* UTC offsets (east positive) */
	int has_dst;
	struct tz_rule_date start, end;
};

struct sl_tz {
	char name[128];
	size_t ntrans;
	int64_t *trans;
	int32_t *trans_off; /* offset in force from trans[i] on */
	int32_t first_off;  /* before the first transition */
	struct tz_rule rule;
};

int64_t sl_tz_days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	const int64_t era = (y >= 0 ? y : y - 399) / 400;
	const unsigned yoe = (unsigned)(y - era * 400);
	const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

void sl_tz_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	z += 719468;
	const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	const unsigned doe = (unsigned)(z - era * 146097);
	const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	const unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static int is_leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static int days_in_month(int64_t y, unsigned m)
{
	static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	return m == 2 && is_leap(y) ? 29 : dm[m - 1];
}

/* ---- POSIX TZ strings: "CET-1CEST,M3.5.0,M10.5.0/3", "<+03>-3", "EST5EDT,M3.2.0,M11.1.0" ---- */

static const char *parse_name(const char *p)
{
	if (*p == '<') {
		const char *q = strchr(p, '>');
		return q ? q + 1 : NULL;
	}
	const char *s = p;
	while (isalpha((unsigned char)*p))
		p++;
	return p - s >= 3 ? p : NULL;
}

/* [+-]hh[:mm[:ss]] -> seconds */
static const char *parse_hms(const char *p, int32_t *out)
{
	int sign = 1;
	if (*p == '+' || *p == '-')
		sign = *p++ == '-' ? -1 : 1;
	if (!isdigit((unsigned char)*p))
		return NULL;
	long h = strtol(p, (char **)&p, 10), m = 0, s = 0;
	if (*p == ':') {
		m = strtol(p + 1, (char **)&p, 10);
		if (*p == ':')
			s = strtol(p + 1, (char **)&p, 10);
	}
	if (h > 167 || m > 59 || s > 59)
		return NULL;
	*out = (int32_t)(sign * (h * 3600 + m * 60 + s));
	return p;
}

static const char *parse_date(const char *p, struct tz_rule_date *d)
{
	memset(d, 0, sizeof *d);
	d->time = 7200;
	if (*p == 'M') {
		d->kind = 'M';
		d->m = (int)strtol(p + 1, (char **)&p, 10);
		if (*p++ != '.')
			return NULL;
		d->w = (int)strtol(p, (char **)&p, 10);
		if (*p++ != '.')
			return NULL;
		d->d = (int)strtol(p, (char **)&p, 10);
		if (d->m < 1 || d->m > 12 || d->w < 1 || d->w > 5 || d->d < 0 || d->d > 6)
			return NULL;
	} else if (*p == 'J') {
		d->kind = 'J';
		d->n = (int)strtol(p + 1, (char **)&p, 10);
		if (d->n < 1 || d->n > 365)
			return NULL;
	} else if (isdigit((unsigned char)*p)) {
		d->kind = 'D';
		d->n = (int)strtol(p, (char **)&p, 10);
		if (d->n > 365)
			return NULL;
	} else {
		return NULL;
	}
	if (*p == '/')
		p = parse_hms(p + 1, &d->time);
	return p;
}

static int parse_rule(const char *p, struct tz_rule *r)
{
	memset(r, 0, sizeof *r);
	int32_t off;
	if (!(p = parse_name(p)) || !(p = parse_hms(p, &off)))
		return -1;
	r->std_off = -off;
	if (!*p) {
		r->present = 1;
		return 0;
	}
	if (!(p = parse_name(p)))
		return -1;
	r->dst_off = r->std_off + 3600;
	if (*p && *p != ',') {
		if (!(p = parse_hms(p, &off)))
			return -1;
		r->dst_off = -off;
	}
	if (*p++ != ',' || !(p = parse_date(p, &r->start)) || *p++ != ',' || !(p = parse_date(p, &r->end)) || *p)
		return -1;
	r->has_dst = 1;
	r->present = 1;
	return 0;
}

/* The local wall second (as if UTC) at which date d happens in year y. */
static int64_t rule_date_wall(const struct tz_rule_date *d, int64_t y)
{
	int64_t day;
	if (d->kind == 'J') {
		day = sl_tz_days_from_civil(y, 1, 1) + d->n - 1 + (is_leap(y) && d->n >= 60);
	} else if (d->kind == 'D') {
		day = sl_tz_days_from_civil(y, 1, 1) + d->n;
	} else {
		int64_t first = sl_tz_days_from_civil(y, (unsigned)d->m, 1);
		int wd = (int)(((first % 7) + 11) % 7); /* 1970-01-01 was a Thursday (4) */
		int64_t dd = first + ((d->d - wd + 7) % 7) + (int64_t)(d->w - 1) * 7;
		while (dd >= first + days_in_month(y, (unsigned)d->m))
			dd -= 7;
		day = dd;
	}
	return day * 86400 + d->time;
}

/* The rule's two transitions in year y, as UTC instants: on (std->dst) and off (dst->std). */
static void rule_year(const struct tz_rule *r, int64_t y, int64_t *on, int64_t *off)
{
	*on = rule_date_wall(&r->start, y) - r->std_off;
	*off = rule_date_wall(&r->end, y) - r->dst_off;
}

static int64_t year_of(int64_t t)
{
	int64_t y;
	unsigned m, d;
	int64_t days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
	sl_tz_civil_from_days(days, &y, &m, &d);
	return y;
}

static int32_t rule_offset(const struct tz_rule *r, int64_t t)
{
	if (!r->has_dst)
		return r->std_off;
	int64_t y = year_of(t), on, off;
	rule_year(r, y, &on, &off);
	if (on < off) /* northern hemisphere: DST inside the year */
		return t >= on && t < off ? r->dst_off : r->std_off;
	return t >= off && t < on ? r->std_off : r->dst_off;
}

static int64_t rule_next(const struct tz_rule *r, int64_t t)
{
	if (!r->has_dst)
		return INT64_MAX;
	int64_t best = INT64_MAX;
	for (int64_t y = year_of(t) - 1; y <= year_of(t) + 1; y++) {
		int64_t on, off;
		rule_year(r, y, &on, &off);
		if (on > t && on < best)
			best = on;
		if (off > t && off < best)
			best = off;
	}
	return best;
}

/* ---- TZif ---- */

static int64_t be(const unsigned char *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	if (n == 4)
		return (int32_t)(uint32_t)v;
	return (int64_t)v;
}

static int parse_tzif(struct sl_tz *tz, const unsigned char *b, size_t len)
{
	if (len < 44 || memcmp(b, "TZif", 4))
		return -1;
	int ver = b[4];
	size_t pos = 0;
	int tsize = 4;
	for (int pass = 0; pass < 2; pass++) {
		if (pos + 44 > len || memcmp(b + pos, "TZif", 4))
			return -1;
		const unsigned char *h = b + pos + 20;
		size_t isutcnt = (size_t)be(h, 4), isstdcnt = (size_t)be(h + 4, 4), leapcnt = (size_t)be(h + 8, 4);
		size_t timecnt = (size_t)be(h + 12, 4), typecnt = (size_t)be(h + 16, 4), charcnt = (size_t)be(h + 20, 4);
		if (timecnt > 100000 || typecnt == 0 || typecnt > 256 || charcnt > 100000 || leapcnt > 100000)
			return -1;
		size_t body = timecnt * (size_t)tsize + timecnt + typecnt * 6 + charcnt + leapcnt * (size_t)(tsize + 4) +
			      isstdcnt + isutcnt;
		const unsigned char *d = b + pos + 44;
		if (pos + 44 + body > len)
			return -1;
		if (ver >= '2' && pass == 0) { /* skip the 32-bit block: the 64-bit one follows */
			pos += 44 + body;
			tsize = 8;
			continue;
		}
		const unsigned char *idx = d + timecnt * (size_t)tsize, *types = idx + timecnt;
		tz->ntrans = timecnt;
		tz->trans = calloc(timecnt + 1, sizeof *tz->trans);
		tz->trans_off = calloc(timecnt + 1, sizeof *tz->trans_off);
		if (!tz->trans || !tz->trans_off)
			return -1;
		for (size_t i = 0; i < timecnt; i++) {
			tz->trans[i] = be(d + i * (size_t)tsize, tsize);
			if (idx[i] >= typecnt)
				return -1;
			tz->trans_off[i] = (int32_t)be(types + idx[i] * 6, 4);
		}
		/* RFC 8536: before the first transition, type 0 applies. */
		tz->first_off = (int32_t)be(types, 4);
		pos += 44 + body;
		if (ver >= '2' && pos < len && b[pos] == '\n') {
			const unsigned char *e = memchr(b + pos + 1, '\n', len - pos - 1);
			if (e && e > b + pos + 1) {
				char footer[128];
				size_t n = (size_t)(e - (b + pos + 1));
				if (n < sizeof footer) {
					memcpy(footer, b + pos + 1, n);
					footer[n] = 0;
					if (parse_rule(footer, &tz->rule))
						memset(&tz->rule, 0, sizeof tz->rule);
				}
			}
		}
		return 0;
	}
	return -1;
}

int sl_tz_load(const char *name, struct sl_tz **out, struct sl_err *err)
{
	*out = NULL;
	struct sl_tz *tz = calloc(1, sizeof *tz);
	if (!tz)
		return sl_err_set(err, SL_ENOMEM, "out of memory loading time zone");
	if (!name || !*name || !strcmp(name, "UTC") || !strcmp(name, "utc") || !strcmp(name, "Z")) {
		snprintf(tz->name, sizeof tz->name, "UTC");
		*out = tz;
		return 0;
	}
	snprintf(tz->name, sizeof tz->name, "%s", name);
	if (name[0] == '/' || strstr(name, "..") || strlen(name) >= sizeof tz->name) {
		free(tz);
		return sl_err_set(err, SL_EINVAL, "time zone '%s' is not an IANA zone name like Europe/Paris", name);
	}
	const char *dir = getenv("TZDIR");
	char path[512];
	snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", name);
	FILE *fp = fopen(path, "rb");
	unsigned char *b = NULL;
	size_t len = 0;
	if (fp) {
		b = malloc(1 << 20);
		if (b)
			len = fread(b, 1, 1 << 20, fp);
		fclose(fp);
	}
	if (!b || !len || parse_tzif(tz, b, len)) {
		free(b);
		sl_tz_free(tz);
		return sl_err_set(err, SL_ENOTFOUND,
				  "time zone '%s' not found (no valid TZif file at %s; is tzdata installed?)", name, path);
	}
	free(b);
	*out = tz;
	return 0;
}

void sl_tz_free(struct sl_tz *tz)
{
	if (!tz)
		return;
	free(tz->trans);
	free(tz->trans_off);
	free(tz);
}

const char *sl_tz_name(const struct sl_tz *tz) { return tz ? tz->name : "UTC"; }

int32_t sl_tz_offset(const struct sl_tz *tz, int64_t t)
{
	if (!tz || (!tz->ntrans && !tz->rule.present))
		return tz ? tz->first_off : 0;
	if (!tz->ntrans || t < tz->trans[0])
		return tz->ntrans ? tz->first_off : rule_offset(&tz->rule, t);
	if (t >= tz->trans[tz->ntrans - 1] && tz->rule.present)
		return rule_offset(&tz->rule, t);
	size_t lo = 0, hi = tz->ntrans; /* last trans <= t */
	while (hi - lo > 1) {
		size_t mid = (lo + hi) / 2;
		if (tz->trans[mid] <= t)
			lo = mid;
		else
			hi = mid;
	}
	return tz->trans_off[lo];
}

int64_t sl_tz_next_transition(const struct sl_tz *tz, int64_t t)
{
	if (!tz)
		return INT64_MAX;
	if (tz->ntrans && t < tz->trans[tz->ntrans - 1]) {
		size_t lo = 0, hi = tz->ntrans - 1; /* first trans > t */
		if (tz->trans[0] > t)
			hi = 0;
		while (lo < hi) {
			size_t mid = (lo + hi) / 2;
			if (tz->trans[mid] > t)
				hi = mid;
			else
				lo = mid + 1;
		}
		/* Skip table entries that do not change the offset (e.g. only the abbreviation changed). */
		int32_t cur = sl_tz_offset(tz, t);
		for (size_t i = hi; i < tz->ntrans; i++)
			if (tz->trans_off[i] != cur)
				return tz->trans[i];
			else
				cur = tz->trans_off[i];
		t = tz->trans[tz->ntrans - 1];
	}
	if (!tz->rule.present)
		return INT64_MAX;
	/* Rule transitions; skip ones that keep the offset (a rule whose std and dst offsets are equal). */
	for (int i = 0; i < 8; i++) {
		int64_t n = rule_next(&tz->rule, t);
		if (n == INT64_MAX || sl_tz_offset(tz, n) != sl_tz_offset(tz, n - 1))
			return n;
		t = n;
	}
	return INT64_MAX;
}
