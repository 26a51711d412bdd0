/* Schemas, records and the canonical text forms of uuid, timestamp, date and double (see record.h). The calendar
 * arithmetic is Howard Hinnant's days_from_civil/civil_from_days, which is exact for the proleptic Gregorian calendar
 * and needs no libc time zone state (timegm and gmtime_r are slow and locale-free only by convention). */
#include "core/record.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/config.h"

static const char *const type_names[SL_T__COUNT] = {
	"text", "int", "bigint", "double", "boolean", "uuid", "timestamp", "date",
};

const char *sl_type_name(enum sl_type t)
{
	return (unsigned)t < SL_T__COUNT ? type_names[t] : "?";
}

int sl_type_parse(const char *name, enum sl_type *out)
{
	for (int i = 0; i < SL_T__COUNT; i++)
		if (!strcasecmp(name, type_names[i])) {
			*out = (enum sl_type)i;
			return 0;
		}
	return SL_ENOTFOUND;
}

const char *sl_type_suggest(const char *name)
{
	/* Names other systems use for the same thing; edit distance to "text" would never find "strng". */
	static const char *const aliases[][2] = {
		{"string", "text"}, {"varchar", "text"}, {"str", "text"}, {"ascii", "text"},
		{"integer", "int"}, {"int32", "int"}, {"smallint", "int"}, {"long", "bigint"},
		{"int64", "bigint"}, {"float", "double"}, {"number", "double"}, {"float64", "double"},
		{"bool", "boolean"}, {"datetime", "timestamp"}, {"time", "timestamp"}, {"guid", "uuid"},
	};
	enum { NA = sizeof aliases / sizeof aliases[0] };
	const char *cands[SL_T__COUNT + NA];
	for (int i = 0; i < SL_T__COUNT; i++)
		cands[i] = type_names[i];
	for (int i = 0; i < NA; i++)
		cands[SL_T__COUNT + i] = aliases[i][0];
	const char *best = sl_cfg_suggest(name, cands, SL_T__COUNT + NA);
	for (int i = 0; best && i < NA; i++)
		if (best == aliases[i][0])
			return aliases[i][1];
	return best;
}

void sl_schema_init(struct sl_schema *s)
{
	memset(s, 0, sizeof *s);
	s->key = -1;
}

void sl_schema_free(struct sl_schema *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->fields[i].name);
	free(s->fields);
	sl_schema_init(s);
}

int sl_schema_find_from(const struct sl_schema *s, const char *name, size_t len, size_t start)
{
	/* strncmp stops at the end of the shorter name; the NUL check makes it an exact match (no strlen per field) */
	for (size_t k = 0; k < s->n; k++) {
		size_t i = (start + k) % s->n;
		if (!strncmp(s->fields[i].name, name, len) && s->fields[i].name[len] == '\0')
			return (int)i;
	}
	return -1;
}

int sl_schema_find(const struct sl_schema *s, const char *name, size_t len)
{
	return sl_schema_find_from(s, name, len, 0);
}

int sl_schema_add(struct sl_schema *s, const char *name, enum sl_type type, bool required, struct sl_err *err)
{
	if (!name || !*name)
		return sl_err_set(err, SL_EINVAL, "schema: empty column name");
	if (sl_schema_find(s, name, strlen(name)) >= 0)
		return sl_err_set(err, SL_EINVAL, "schema: column '%s' appears twice", name);
	if ((unsigned)type >= SL_T__COUNT)
		return sl_err_set(err, SL_EINVAL, "schema: column '%s' has no valid type", name);
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		struct sl_field *f = realloc(s->fields, cap * sizeof *f);
		if (!f)
			return sl_err_set(err, SL_ENOMEM, "schema: out of memory");
		s->fields = f;
		s->cap = cap;
	}
	char *copy = strdup(name);
	if (!copy)
		return sl_err_set(err, SL_ENOMEM, "schema: out of memory");
	s->fields[s->n++] = (struct sl_field){.name = copy, .type = type, .required = required};
	return 0;
}

int sl_schema_set_key(struct sl_schema *s, const char *name, struct sl_err *err)
{
	int i = sl_schema_find(s, name, strlen(name));
	if (i < 0)
		return sl_err_set(err, SL_ENOTFOUND, "schema: key column '%s' is not a column", name);
	s->key = i;
	return 0;
}

int sl_record_init(struct sl_record *r, const struct sl_schema *s, struct sl_arena *a, struct sl_err *err)
{
	r->schema = s;
	r->v = sl_arena_alloc(a, (s->n ? s->n : 1) * sizeof *r->v);
	if (!r->v)
		return sl_err_set(err, SL_ENOMEM, "record: out of memory");
	for (size_t i = 0; i < s->n; i++)
		r->v[i].null = true;
	return 0;
}

int sl_record_check(const struct sl_record *r, struct sl_err *err)
{
	for (size_t i = 0; i < r->schema->n; i++)
		if (r->v[i].null && (r->schema->fields[i].required || (int)i == r->schema->key))
			return sl_err_set(err, SL_ETYPE, "column '%s': required but has no value", r->schema->fields[i].name);
	return 0;
}

int sl_value_to_text(enum sl_type t, const struct sl_value *v, struct sl_buf *out)
{
	char tmp[40];
	if (v->null)
		return SL_ENOTFOUND;
	switch (t) {
	case SL_T_TEXT: sl_buf_append(out, v->u.s.p, v->u.s.n); return 0;
	case SL_T_INT: sl_buf_printf(out, "%d", v->u.i32); return 0;
	case SL_T_BIGINT: sl_buf_printf(out, "%lld", (long long)v->u.i64); return 0;
	case SL_T_DOUBLE:
		if (sl_double_format(v->u.d, tmp))
			return SL_EINVAL;
		sl_buf_puts(out, tmp);
		return 0;
	case SL_T_BOOLEAN: sl_buf_puts(out, v->u.b ? "true" : "false"); return 0;
	case SL_T_UUID: sl_uuid_format(v->u.uuid, tmp); sl_buf_append(out, tmp, SL_UUID_STR_LEN); return 0;
	case SL_T_TIMESTAMP:
		if (sl_timestamp_format(v->u.i64, tmp))
			return SL_EINVAL;
		sl_buf_puts(out, tmp);
		return 0;
	case SL_T_DATE:
		if (sl_date_format(v->u.days, tmp))
			return SL_EINVAL;
		sl_buf_puts(out, tmp);
		return 0;
	default: return SL_EINVAL;
	}
}

int sl_record_key(const struct sl_record *r, struct sl_buf *out, struct sl_err *err)
{
	int k = r->schema->key;
	if (k < 0)
		return sl_err_set(err, SL_ENOTFOUND, "record: the schema has no key column");
	int rc = sl_value_to_text(r->schema->fields[k].type, &r->v[k], out);
	if (rc == SL_ENOTFOUND)
		return sl_err_set(err, SL_ENOTFOUND, "record: key column '%s' is null", r->schema->fields[k].name);
	if (rc)
		return sl_err_set(err, rc, "record: key column '%s' has no text form", r->schema->fields[k].name);
	return 0;
}

bool sl_value_eq(enum sl_type t, const struct sl_value *a, const struct sl_value *b)
{
	if (a->null || b->null)
		return a->null == b->null;
	switch (t) {
	case SL_T_TEXT: return a->u.s.n == b->u.s.n && !memcmp(a->u.s.p, b->u.s.p, a->u.s.n);
	case SL_T_INT: return a->u.i32 == b->u.i32;
	case SL_T_BIGINT:
	case SL_T_TIMESTAMP: return a->u.i64 == b->u.i64;
	case SL_T_DATE: return a->u.days == b->u.days;
	case SL_T_DOUBLE: return a->u.d == b->u.d || (isnan(a->u.d) && isnan(b->u.d));
	case SL_T_BOOLEAN: return a->u.b == b->u.b;
	case SL_T_UUID: return !memcmp(a->u.uuid, b->u.uuid, 16);
	default: return false;
	}
}

/* ---- uuid ---- */

static const char hexdig[] = "0123456789abcdef";

void sl_uuid_format(const uint8_t u[16], char out[SL_UUID_STR_LEN + 1])
{
	char *o = out;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*o++ = '-';
		*o++ = hexdig[u[i] >> 4];
		*o++ = hexdig[u[i] & 15];
	}
	*o = '\0';
}

/* Hex digit values, -1 for anything else: a table, as every uuid column of every record is parsed here. */
static const int8_t hexval_tab[256] = {
	['0'] = 1, ['1'] = 2, ['2'] = 3, ['3'] = 4, ['4'] = 5, ['5'] = 6, ['6'] = 7, ['7'] = 8, ['8'] = 9, ['9'] = 10,
	['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
	['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16,
};

static inline int hexval(unsigned char c)
{
	return hexval_tab[c] - 1; /* stored +1 so that the zero-filled rest reads as -1 */
}

int sl_uuid_parse(const char *s, size_t n, uint8_t out[16])
{
	if (n >= 2 && s[0] == '{' && s[n - 1] == '}') {
		s++;
		n -= 2;
	}
	bool dashed = n == 36;
	if (!dashed && n != 32)
		return SL_EINVAL;
	size_t j = 0;
	for (int i = 0; i < 16; i++) {
		if (dashed && (i == 4 || i == 6 || i == 8 || i == 10)) {
			if (s[j] != '-')
				return SL_EINVAL;
			j++;
		}
		int h = hexval((unsigned char)s[j]), l = hexval((unsigned char)s[j + 1]);
		if (h < 0 || l < 0)
			return SL_EINVAL;
		out[i] = (uint8_t)(h << 4 | l);
		j += 2;
	}
	return 0;
}

void sl_uuid_v4_from_random(uint64_t hi, uint64_t lo, uint8_t out[16])
{
	for (int i = 0; i < 8; i++) {
		out[i] = (uint8_t)(hi >> (56 - 8 * i));
		out[8 + i] = (uint8_t)(lo >> (56 - 8 * i));
	}
	out[6] = (uint8_t)((out[6] & 0x0f) | 0x40);
	out[8] = (uint8_t)((out[8] & 0x3f) | 0x80);
}

/* ---- calendar ---- */

int64_t sl_date_days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

void sl_date_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t yy = (int64_t)yoe + era * 400;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = yy + (*m <= 2);
}

/* Years 0000..9999 only: the 4-digit form is what ISO-8601 and CQL literals agree on. */
#define MIN_DAYS (-719528)         /* 0000-01-01 */
#define MAX_DAYS (2932896)         /* 9999-12-31 */

int sl_date_format(int32_t days, char out[SL_DATE_STR_MAX])
{
	if (days < MIN_DAYS || days > MAX_DAYS)
		return SL_EINVAL;
	int64_t y;
	unsigned m, d;
	sl_date_civil_from_days(days, &y, &m, &d);
	snprintf(out, SL_DATE_STR_MAX, "%04d-%02u-%02u", (int)y, m, d);
	return 0;
}

int sl_timestamp_format(int64_t ms, char out[SL_TIMESTAMP_STR_MAX])
{
	int64_t days = ms / 86400000, rem = ms % 86400000;
	if (rem < 0) {
		rem += 86400000;
		days--;
	}
	if (days < MIN_DAYS || days > MAX_DAYS)
		return SL_EINVAL;
	int64_t y;
	unsigned m, d;
	sl_date_civil_from_days(days, &y, &m, &d);
	unsigned msec = (unsigned)(rem % 1000), sec = (unsigned)(rem / 1000);
	snprintf(out, SL_TIMESTAMP_STR_MAX, "%04d-%02u-%02uT%02u:%02u:%02u.%03uZ", (int)y, m, d, sec / 3600,
		 sec / 60 % 60, sec % 60, msec);
	return 0;
}

/* Reads exactly k digits at s[*i]. */
static int digits(const char *s, size_t n, size_t *i, int k, int *out)
{
	int v = 0;
	for (int j = 0; j < k; j++) {
		if (*i >= n || s[*i] < '0' || s[*i] > '9')
			return -1;
		v = v * 10 + (s[(*i)++] - '0');
	}
	*out = v;
	return 0;
}

static bool valid_ymd(int y, int m, int d)
{
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
		return false;
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return !(m == 2 && d == 29 && !leap);
}

static int parse_ymd(const char *s, size_t n, size_t *i, int64_t *days)
{
	int y, m, d;
	if (digits(s, n, i, 4, &y) || *i >= n || s[(*i)++] != '-' || digits(s, n, i, 2, &m) || *i >= n ||
	    s[(*i)++] != '-' || digits(s, n, i, 2, &d) || !valid_ymd(y, m, d))
		return SL_EINVAL;
	*days = sl_date_days_from_civil(y, (unsigned)m, (unsigned)d);
	return 0;
}

int sl_date_parse(const char *s, size_t n, int32_t *days)
{
	size_t i = 0;
	int64_t d;
	if (parse_ymd(s, n, &i, &d) || i != n)
		return SL_EINVAL;
	*days = (int32_t)d;
	return 0;
}

int sl_timestamp_parse(const char *s, size_t n, int64_t *ms)
{
	size_t i = 0;
	int64_t days;
	if (parse_ymd(s, n, &i, &days))
		return SL_EINVAL;
	int64_t t = days * 86400000;
	if (i == n) {
		*ms = t;
		return 0;
	}
	if (s[i] != 'T' && s[i] != 't' && s[i] != ' ')
		return SL_EINVAL;
	i++;
	int hh, mm, ss = 0, frac = 0;
	if (digits(s, n, &i, 2, &hh) || i >= n || s[i++] != ':' || digits(s, n, &i, 2, &mm) || hh > 23 || mm > 59)
		return SL_EINVAL;
	if (i < n && s[i] == ':') {
		i++;
		/* 60 is a leap second; it folds into the next minute, as Java and Python do when they accept it. */
		if (digits(s, n, &i, 2, &ss) || ss > 60)
			return SL_EINVAL;
		if (i < n && (s[i] == '.' || s[i] == ',')) {
			i++;
			int nd = 0;
			while (i < n && s[i] >= '0' && s[i] <= '9') {
				if (nd < 3)
					frac = frac * 10 + (s[i] - '0');
				nd++;
				i++;
			}
			if (nd == 0)
				return SL_EINVAL;
			for (int k = nd; k < 3; k++)
				frac *= 10;
		}
	}
	t += ((int64_t)hh * 3600 + mm * 60 + ss) * 1000 + frac;
	if (i < n) {
		if ((s[i] == 'Z' || s[i] == 'z') && i + 1 == n) {
			i++;
		} else if (s[i] == '+' || s[i] == '-') {
			int sign = s[i++] == '-' ? -1 : 1, oh, om = 0;
			if (digits(s, n, &i, 2, &oh) || oh > 23)
				return SL_EINVAL;
			if (i < n && s[i] == ':')
				i++;
			if (i < n && digits(s, n, &i, 2, &om))
				return SL_EINVAL;
			if (om > 59)
				return SL_EINVAL;
			t -= sign * ((int64_t)oh * 3600 + om * 60) * 1000;
		} else
			return SL_EINVAL;
	}
	if (i != n)
		return SL_EINVAL;
	*ms = t;
	return 0;
}

int sl_double_format(double d, char out[32])
{
	if (!isfinite(d))
		return SL_EINVAL;
	/* The shortest of %.15g..%.17g that reads back exactly: 0.1 stays "0.1", 123.0 becomes "123". */
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(out, 32, "%.*g", prec, d);
		if (strtod(out, NULL) == d)
			break;
	}
	/* Negative zero reads back equal to 0.0 from "0" but its sign is data; keep it. */
	if (d == 0 && signbit(d))
		strcpy(out, "-0.0");
	return 0;
}
