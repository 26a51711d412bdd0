/* CQL value encodings (spec section 6): the typed getters over result values, the collection/tuple/UDT builder
 * and element iterator, varint/decimal/duration arithmetic, and formatting of any value as cqlsh text or JSON.
 * Getters check the value's declared type and exact size, so a schema change shows up as SL_ETYPE, not garbage. */
#include "cql/types.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "cql/proto.h"

void sl_cql_type_name(const struct sl_cql_type *t, char *out, size_t outsz)
{
	struct sl_buf b;
	sl_buf_init(&b);
	sl_cql_type_name_buf(&b, t);
	snprintf(out, outsz, "%s", b.data ? sl_buf_cstr(&b) : "?");
	sl_buf_free(&b);
}

const char *sl_cql_type_id_name(int id)
{
	switch (id) {
	case SL_CQL_TYPE_CUSTOM: return "custom";
	case SL_CQL_TYPE_ASCII: return "ascii";
	case SL_CQL_TYPE_BIGINT: return "bigint";
	case SL_CQL_TYPE_BLOB: return "blob";
	case SL_CQL_TYPE_BOOLEAN: return "boolean";
	case SL_CQL_TYPE_COUNTER: return "counter";
	case SL_CQL_TYPE_DECIMAL: return "decimal";
	case SL_CQL_TYPE_DOUBLE: return "double";
	case SL_CQL_TYPE_FLOAT: return "float";
	case SL_CQL_TYPE_INT: return "int";
	case SL_CQL_TYPE_TIMESTAMP: return "timestamp";
	case SL_CQL_TYPE_UUID: return "uuid";
	case SL_CQL_TYPE_VARCHAR: return "text";
	case SL_CQL_TYPE_VARINT: return "varint";
	case SL_CQL_TYPE_TIMEUUID: return "timeuuid";
	case SL_CQL_TYPE_INET: return "inet";
	case SL_CQL_TYPE_DATE: return "date";
	case SL_CQL_TYPE_TIME: return "time";
	case SL_CQL_TYPE_SMALLINT: return "smallint";
	case SL_CQL_TYPE_TINYINT: return "tinyint";
	case SL_CQL_TYPE_DURATION: return "duration";
	case SL_CQL_TYPE_LIST: return "list";
	case SL_CQL_TYPE_MAP: return "map";
	case SL_CQL_TYPE_SET: return "set";
	case SL_CQL_TYPE_UDT: return "udt";
	case SL_CQL_TYPE_TUPLE: return "tuple";
	}
	return "unknown";
}

void sl_cql_type_name_buf(struct sl_buf *b, const struct sl_cql_type *t)
{
	if (!t) {
		sl_buf_puts(b, "?");
		return;
	}
	switch (t->id) {
	case SL_CQL_TYPE_CUSTOM:
		sl_buf_printf(b, "'%s'", t->custom ? t->custom : "");
		return;
	case SL_CQL_TYPE_UDT:
		sl_buf_puts(b, t->name ? t->name : "udt");
		return;
	case SL_CQL_TYPE_LIST:
	case SL_CQL_TYPE_SET:
	case SL_CQL_TYPE_MAP:
	case SL_CQL_TYPE_TUPLE:
		sl_buf_puts(b, sl_cql_type_id_name(t->id));
		sl_buf_putc(b, '<');
		for (int i = 0; i < t->n; i++) {
			if (i)
				sl_buf_puts(b, ", ");
			sl_cql_type_name_buf(b, t->sub[i]);
		}
		sl_buf_putc(b, '>');
		return;
	default:
		sl_buf_puts(b, sl_cql_type_id_name(t->id));
	}
}

/* ---- raw encoders ---- */

void sl_cql_put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

uint64_t sl_cql_get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

size_t sl_cql_varint_from_int64(int64_t v, uint8_t out[8])
{
	uint8_t full[8];
	sl_cql_put_be64(full, (uint64_t)v);
	/* Drop leading bytes that only repeat the sign: 0x00 before a byte < 0x80, 0xFF before a byte >= 0x80. */
	size_t i = 0;
	while (i < 7 && ((full[i] == 0x00 && !(full[i + 1] & 0x80)) || (full[i] == 0xFF && (full[i + 1] & 0x80))))
		i++;
	memcpy(out, full + i, 8 - i);
	return 8 - i;
}

int sl_cql_varint_to_int64(const uint8_t *p, size_t n, int64_t *out)
{
	if (n == 0 || n > 8)
		return SL_ETYPE;
	uint64_t v = (p[0] & 0x80) ? UINT64_MAX : 0;
	for (size_t i = 0; i < n; i++)
		v = v << 8 | p[i];
	*out = (int64_t)v;
	return 0;
}

/* Variable-length zig-zag integers of the duration type (Cassandra's VIntCoding): the count of leading 1 bits in
 * the first byte is the number of extra bytes. */
static size_t vint_put(uint8_t *p, int64_t sv)
{
	uint64_t v = ((uint64_t)sv << 1) ^ (uint64_t)(sv >> 63);
	int extra;
	for (extra = 0; extra < 8; extra++) {
		int bits = 7 - extra + 8 * extra; /* payload bits with this many extra bytes */
		if (bits >= 64 || v < ((uint64_t)1 << bits))
			break;
	}
	if (extra == 8) {
		p[0] = 0xFF;
		sl_cql_put_be64(p + 1, v);
		return 9;
	}
	uint8_t first = (uint8_t)(0xFF << (8 - extra));
	for (int i = extra; i >= 1; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
	p[0] = (uint8_t)(first | (uint8_t)v);
	return (size_t)extra + 1;
}

static int vint_get(const uint8_t **pp, const uint8_t *end, int64_t *out)
{
	const uint8_t *p = *pp;
	if (p >= end)
		return SL_EPROTO;
	int extra = 0;
	while (extra < 8 && (p[0] & (0x80 >> extra)))
		extra++;
	if ((size_t)(end - p) < (size_t)extra + 1)
		return SL_EPROTO;
	uint64_t v = extra == 8 ? 0 : (uint64_t)(p[0] & (0xFF >> extra));
	for (int i = 1; i <= extra; i++)
		v = v << 8 | p[i];
	*pp = p + extra + 1;
	*out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
	return 0;
}

size_t sl_cql_duration_encode(uint8_t out[27], int32_t months, int32_t days, int64_t nanos)
{
	size_t n = vint_put(out, months);
	n += vint_put(out + n, days);
	n += vint_put(out + n, nanos);
	return n;
}

/* ---- collection builder ---- */

void sl_cql_coll_init(struct sl_cql_coll *c, int kind)
{
	memset(c, 0, sizeof *c);
	c->kind = kind;
}

void sl_cql_coll_free(struct sl_cql_coll *c)
{
	free(c->data);
	memset(c, 0, sizeof *c);
}

static uint8_t *coll_room(struct sl_cql_coll *c, size_t n)
{
	if (c->oom)
		return NULL;
	if (c->cap - c->len < n) {
		size_t cap = c->cap ? c->cap * 2 : 64;
		while (cap - c->len < n)
			cap *= 2;
		unsigned char *d = realloc(c->data, cap);
		if (!d) {
			c->oom = true;
			return NULL;
		}
		c->data = d;
		c->cap = cap;
	}
	return c->data + c->len;
}

void sl_cql_coll_append_raw(struct sl_cql_coll *c, const void *p, size_t len)
{
	if (len > INT32_MAX) {
		c->oom = true;
		return;
	}
	uint8_t *d = coll_room(c, 4 + len);
	if (!d)
		return;
	sl_cql_put_u32(d, (uint32_t)len);
	if (len)
		memcpy(d + 4, p, len);
	c->len += 4 + len;
	c->count++;
}

void sl_cql_coll_append_null(struct sl_cql_coll *c)
{
	uint8_t *d = coll_room(c, 4);
	if (!d)
		return;
	sl_cql_put_u32(d, 0xFFFFFFFFu);
	c->len += 4;
	c->count++;
}

void sl_cql_coll_append_int32(struct sl_cql_coll *c, int32_t v)
{
	uint8_t b[4];
	sl_cql_put_u32(b, (uint32_t)v);
	sl_cql_coll_append_raw(c, b, 4);
}

void sl_cql_coll_append_int64(struct sl_cql_coll *c, int64_t v)
{
	uint8_t b[8];
	sl_cql_put_be64(b, (uint64_t)v);
	sl_cql_coll_append_raw(c, b, 8);
}

void sl_cql_coll_append_double(struct sl_cql_coll *c, double v)
{
	uint64_t u;
	memcpy(&u, &v, 8);
	uint8_t b[8];
	sl_cql_put_be64(b, u);
	sl_cql_coll_append_raw(c, b, 8);
}

void sl_cql_coll_append_bool(struct sl_cql_coll *c, bool v)
{
	uint8_t b = v ? 1 : 0;
	sl_cql_coll_append_raw(c, &b, 1);
}

void sl_cql_coll_append_text(struct sl_cql_coll *c, const char *s, size_t len) { sl_cql_coll_append_raw(c, s, len); }
void sl_cql_coll_append_uuid(struct sl_cql_coll *c, const uint8_t uuid[16]) { sl_cql_coll_append_raw(c, uuid, 16); }

int sl_cql_coll_encode(const struct sl_cql_coll *c, struct sl_buf *out)
{
	if (c->oom)
		return SL_ENOMEM;
	bool counted = c->kind == SL_CQL_TYPE_LIST || c->kind == SL_CQL_TYPE_SET || c->kind == SL_CQL_TYPE_MAP;
	int32_t n = c->kind == SL_CQL_TYPE_MAP ? c->count / 2 : c->count;
	if (c->kind == SL_CQL_TYPE_MAP && (c->count & 1))
		return SL_EINVAL; /* a key without its value */
	if (counted)
		sl_cql_wr_i32(out, n);
	sl_buf_append(out, c->data, c->len);
	return sl_buf_ok(out) ? 0 : SL_ENOMEM;
}

void sl_cql_coll_append_coll(struct sl_cql_coll *c, const struct sl_cql_coll *inner)
{
	struct sl_buf b;
	sl_buf_init(&b);
	if (sl_cql_coll_encode(inner, &b) < 0) {
		c->oom = true;
	} else {
		sl_cql_coll_append_raw(c, b.data, b.len);
	}
	sl_buf_free(&b);
}

/* ---- getters ---- */

static int want(const struct sl_cql_value *v, size_t size)
{
	if (v->len < 0)
		return SL_ENOTFOUND;
	if ((size_t)v->len != size)
		return SL_ETYPE;
	return 0;
}

#define TYPE_IS(v, t) ((v)->type && (v)->type->id == (t))

int sl_cql_value_int8(const struct sl_cql_value *v, int8_t *out)
{
	if (!TYPE_IS(v, SL_CQL_TYPE_TINYINT))
		return SL_ETYPE;
	int rc = want(v, 1);
	if (!rc)
		*out = (int8_t)v->data[0];
	return rc;
}

int sl_cql_value_int16(const struct sl_cql_value *v, int16_t *out)
{
	if (!TYPE_IS(v, SL_CQL_TYPE_SMALLINT))
		return SL_ETYPE;
	int rc = want(v, 2);
	if (!rc)
		*out = (int16_t)(uint16_t)((unsigned)v->data[0] << 8 | v->data[1]);
	return rc;
}

int sl_cql_value_int32(const struct sl_cql_value *v, int32_t *out)
{
	if (!TYPE_IS(v, SL_CQL_TYPE_INT))
		return SL_ETYPE;
	int rc = want(v, 4);
	if (!rc)
		*out = (int32_t)sl_cql_get_u32(v->data);
	return rc;
}

int sl_cql_value_uint32(const struct sl_cql_value *v, uint32_t *out)
{
	if (!TYPE_IS(v, SL_CQL_TYPE_DATE))
		return SL_ETYPE;
	int rc = want(v, 4);
	if (!rc)
		*out = sl_cql_get_u32(v->data);
	return rc;
}

int sl_cql_value_int64(const struct sl_cql_value *v, int64_t *out)
{
	if (!v->type)
		return SL_ETYPE;
	switch (v->type->id) {
	case SL_CQL_TYPE_BIGINT:
	case SL_CQL_TYPE_COUNTER:
	case SL_CQL_TYPE_TIMESTAMP:
	case SL_CQL_TYPE_TIME: {
		int rc = want(v, 8);
		if (!rc)
			*out = (int64_t)sl_cql_get_be64(v->data);
		return rc;
	}
	case SL_CQL_TYPE_VARINT:
		if (v->len < 0)
			return SL_ENOTFOUND;
		return sl_cql_varint_to_int64(v->data, (size_t)v->len, out);
	}
	return SL_ETYPE;
}

int sl_cql_value_bool(const struct sl_cql_value *v, bool *out)
{
	if (!TYPE_IS(v, SL_CQL_TYPE_BOOLEAN))
		return SL_ETYPE;
	int rc = want(v, 1);
	if (!rc)
		*out = v->data[0] != 0;
	return rc;
}

int sl_cql_value_float(const struct sl_cql_value *v, float *out)
{
	if (!TYPE_IS(v, SL_CQL_TYPE_FLOAT))
		return SL_ETYPE;
	int rc = want(v, 4);
	if (!rc) {
		uint32_t u = sl_cql_get_u32(v->data);
		memcpy(out, &u, 4);
	}
	return rc;
}

int sl_cql_value_double(const struct sl_cql_value *v, double *out)
{
	if (!TYPE_IS(v, SL_CQL_TYPE_DOUBLE))
		return SL_ETYPE;
	int rc = want(v, 8);
	if (!rc) {
		uint64_t u = sl_cql_get_be64(v->data);
		memcpy(out, &u, 8);
	}
	return rc;
}

int sl_cql_value_text(const struct sl_cql_value *v, const char **s, size_t *len)
{
	if (!TYPE_IS(v, SL_CQL_TYPE_VARCHAR) && !TYPE_IS(v, SL_CQL_TYPE_ASCII))
		return SL_ETYPE;
	if (v->len < 0)
		return SL_ENOTFOUND;
	*s = (const char *)v->data;
	*len = (size_t)v->len;
	return 0;
}

int sl_cql_value_bytes(const struct sl_cql_value *v, const uint8_t **p, size_t *len)
{
	if (v->len < 0)
		return SL_ENOTFOUND;
	*p = v->data;
	*len = (size_t)v->len;
	return 0;
}

int sl_cql_value_uuid(const struct sl_cql_value *v, uint8_t out[16])
{
	if (!TYPE_IS(v, SL_CQL_TYPE_UUID) && !TYPE_IS(v, SL_CQL_TYPE_TIMEUUID))
		return SL_ETYPE;
	int rc = want(v, 16);
	if (!rc)
		memcpy(out, v->data, 16);
	return rc;
}

int sl_cql_value_inet(const struct sl_cql_value *v, uint8_t out[16], size_t *len)
{
	if (!TYPE_IS(v, SL_CQL_TYPE_INET))
		return SL_ETYPE;
	if (v->len < 0)
		return SL_ENOTFOUND;
	if (v->len != 4 && v->len != 16)
		return SL_ETYPE;
	memcpy(out, v->data, (size_t)v->len);
	*len = (size_t)v->len;
	return 0;
}

int sl_cql_value_decimal(const struct sl_cql_value *v, const uint8_t **unscaled, size_t *len, int32_t *scale)
{
	if (!TYPE_IS(v, SL_CQL_TYPE_DECIMAL))
		return SL_ETYPE;
	if (v->len < 0)
		return SL_ENOTFOUND;
	if (v->len < 5)
		return SL_ETYPE;
	*scale = (int32_t)sl_cql_get_u32(v->data);
	*unscaled = v->data + 4;
	*len = (size_t)v->len - 4;
	return 0;
}

int sl_cql_value_duration(const struct sl_cql_value *v, int32_t *months, int32_t *days, int64_t *nanos)
{
	if (!TYPE_IS(v, SL_CQL_TYPE_DURATION))
		return SL_ETYPE;
	if (v->len < 0)
		return SL_ENOTFOUND;
	const uint8_t *p = v->data, *end = v->data + v->len;
	int64_t m, d, n;
	if (vint_get(&p, end, &m) || vint_get(&p, end, &d) || vint_get(&p, end, &n) || p != end)
		return SL_ETYPE;
	if (m < INT32_MIN || m > INT32_MAX || d < INT32_MIN || d > INT32_MAX)
		return SL_ETYPE;
	*months = (int32_t)m;
	*days = (int32_t)d;
	*nanos = n;
	return 0;
}

/* ---- elements ---- */

int sl_cql_elems_init(struct sl_cql_elems *it, const struct sl_cql_value *v)
{
	memset(it, 0, sizeof *it);
	it->parent = v;
	if (!v->type)
		return SL_ETYPE;
	if (v->len < 0)
		return SL_ENOTFOUND;
	it->p = v->data;
	it->end = v->data + v->len;
	switch (v->type->id) {
	case SL_CQL_TYPE_LIST:
	case SL_CQL_TYPE_SET:
	case SL_CQL_TYPE_MAP: {
		if (v->len < 4)
			return v->len == 0 ? 0 : SL_EPROTO; /* an empty value is an empty collection */
		int32_t n = (int32_t)sl_cql_get_u32(it->p);
		it->p += 4;
		int per = v->type->id == SL_CQL_TYPE_MAP ? 2 : 1;
		/* Each element carries at least a 4-byte length. */
		if (n < 0 || (size_t)n > (size_t)(it->end - it->p) / 4 / (size_t)per)
			return SL_EPROTO;
		it->count = n * per;
		return 0;
	}
	case SL_CQL_TYPE_TUPLE:
	case SL_CQL_TYPE_UDT:
		it->count = v->type->n; /* a UDT value may stop early; next() ends at the data's end */
		return 0;
	}
	return SL_ETYPE;
}

int sl_cql_elems_next(struct sl_cql_elems *it)
{
	if (it->index >= it->count || it->p >= it->end)
		return (it->index < it->count && it->parent->type->id != SL_CQL_TYPE_UDT &&
			it->parent->type->id != SL_CQL_TYPE_TUPLE) ? SL_EPROTO : 0;
	const struct sl_cql_type *pt = it->parent->type;
	const struct sl_cql_type *et;
	switch (pt->id) {
	case SL_CQL_TYPE_MAP:
		et = pt->sub[it->index & 1];
		break;
	case SL_CQL_TYPE_LIST:
	case SL_CQL_TYPE_SET:
		et = pt->sub[0];
		break;
	default:
		et = pt->sub[it->index];
	}
	if (it->end - it->p < 4)
		return SL_EPROTO;
	int32_t n = (int32_t)sl_cql_get_u32(it->p);
	it->p += 4;
	if (n >= 0 && n > it->end - it->p)
		return SL_EPROTO;
	it->value.type = et;
	it->value.len = n < 0 ? -1 : n;
	it->value.data = n < 0 ? NULL : it->p;
	if (n > 0)
		it->p += n;
	it->index++;
	return 1;
}

/* ---- formatting ---- */

/* Two's complement big-endian magnitude to decimal digits, by repeated division by 10 (values are small). */
static void varint_digits(struct sl_buf *out, const uint8_t *p, size_t n)
{
	if (n == 0) {
		sl_buf_putc(out, '0');
		return;
	}
	bool neg = p[0] & 0x80;
	uint8_t *mag = malloc(n);
	if (!mag) {
		out->oom = true;
		return;
	}
	memcpy(mag, p, n);
	if (neg) { /* negate: invert and add one */
		for (size_t i = 0; i < n; i++)
			mag[i] = (uint8_t)~mag[i];
		for (size_t i = n; i-- > 0;)
			if (++mag[i] != 0)
				break;
	}
	char *digits = malloc(n * 3 + 2);
	if (!digits) {
		free(mag);
		out->oom = true;
		return;
	}
	size_t nd = 0;
	for (;;) {
		bool zero = true;
		unsigned rem = 0;
		for (size_t i = 0; i < n; i++) {
			unsigned cur = rem << 8 | mag[i];
			mag[i] = (uint8_t)(cur / 10);
			rem = cur % 10;
			if (mag[i])
				zero = false;
		}
		digits[nd++] = (char)('0' + rem);
		if (zero)
			break;
	}
	if (neg)
		sl_buf_putc(out, '-');
	while (nd)
		sl_buf_putc(out, digits[--nd]);
	free(digits);
	free(mag);
}

static void decimal_text(struct sl_buf *out, const uint8_t *p, size_t n, int32_t scale)
{
	struct sl_buf d;
	sl_buf_init(&d);
	varint_digits(&d, p, n);
	const char *s = sl_buf_cstr(&d);
	if (!s) {
		out->oom = true;
		return;
	}
	bool neg = s[0] == '-';
	if (neg) {
		sl_buf_putc(out, '-');
		s++;
	}
	int64_t len = (int64_t)strlen(s);
	if (scale <= 0) {
		sl_buf_puts(out, s);
		if (scale < 0)
			sl_buf_printf(out, "E+%" PRId64, -(int64_t)scale);
	} else if (len > scale) {
		sl_buf_append(out, s, (size_t)(len - scale));
		sl_buf_putc(out, '.');
		sl_buf_puts(out, s + len - scale);
	} else if (scale - len < 32) {
		sl_buf_puts(out, "0.");
		for (int64_t i = 0; i < scale - len; i++)
			sl_buf_putc(out, '0');
		sl_buf_puts(out, s);
	} else {
		sl_buf_printf(out, "%sE-%d", s, scale);
	}
	sl_buf_free(&d);
}

/* Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm), valid for the whole CQL date range. */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
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

static void uuid_text(struct sl_buf *out, const uint8_t *u)
{
	sl_buf_printf(out, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2],
		      u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}

static int format_value(struct sl_buf *out, const struct sl_cql_value *v, bool json, int depth);

static int format_elems(struct sl_buf *out, const struct sl_cql_value *v, bool json, int depth)
{
	struct sl_cql_elems it;
	int rc = sl_cql_elems_init(&it, v);
	if (rc < 0)
		return rc;
	int id = v->type->id;
	bool as_obj = id == SL_CQL_TYPE_MAP || id == SL_CQL_TYPE_UDT;
	const char *open = as_obj ? "{" : (id == SL_CQL_TYPE_LIST || json) ? "[" : id == SL_CQL_TYPE_SET ? "{" : "(";
	const char *close = as_obj ? "}" : (id == SL_CQL_TYPE_LIST || json) ? "]" : id == SL_CQL_TYPE_SET ? "}" : ")";
	sl_buf_puts(out, open);
	int i = 0;
	while ((rc = sl_cql_elems_next(&it)) == 1) {
		if (id == SL_CQL_TYPE_MAP && (i & 1))
			sl_buf_puts(out, json ? ": " : ": ");
		else if (i)
			sl_buf_puts(out, ", ");
		if (id == SL_CQL_TYPE_UDT) {
			const char *fname = v->type->field_names[i];
			if (json)
				sl_buf_json_str(out, fname, strlen(fname));
			else
				sl_buf_puts(out, fname);
			sl_buf_puts(out, ": ");
		}
		if (json && id == SL_CQL_TYPE_MAP && !(i & 1) && it.value.type &&
		    it.value.type->id != SL_CQL_TYPE_VARCHAR && it.value.type->id != SL_CQL_TYPE_ASCII) {
			/* JSON object keys must be strings: quote the key's text form. */
			struct sl_buf k;
			sl_buf_init(&k);
			format_value(&k, &it.value, false, depth + 1);
			const char *ks = sl_buf_cstr(&k);
			sl_buf_json_str(out, ks ? ks : "", k.len);
			sl_buf_free(&k);
		} else {
			rc = format_value(out, &it.value, json, depth + 1);
			if (rc < 0)
				return rc;
		}
		i++;
	}
	if (rc < 0)
		return rc;
	sl_buf_puts(out, close);
	return 0;
}

static int format_value(struct sl_buf *out, const struct sl_cql_value *v, bool json, int depth)
{
	if (depth > 32)
		return SL_EPROTO;
	if (v->len < 0) {
		sl_buf_puts(out, json ? "null" : "null");
		return 0;
	}
	const struct sl_cql_type *t = v->type;
	int id = t ? t->id : SL_CQL_TYPE_BLOB;
	int rc = 0;
	switch (id) {
	case SL_CQL_TYPE_ASCII:
	case SL_CQL_TYPE_VARCHAR:
		if (json)
			sl_buf_json_str(out, (const char *)v->data, (size_t)v->len);
		else if (depth > 0) { /* inside a collection cqlsh quotes strings */
			sl_buf_putc(out, '\'');
			for (int32_t i = 0; i < v->len; i++) {
				if (v->data[i] == '\'')
					sl_buf_putc(out, '\'');
				sl_buf_putc(out, (char)v->data[i]);
			}
			sl_buf_putc(out, '\'');
		} else
			sl_buf_append(out, v->data, (size_t)v->len);
		return 0;
	case SL_CQL_TYPE_BOOLEAN: {
		bool b;
		if ((rc = sl_cql_value_bool(v, &b)) == 0)
			sl_buf_puts(out, b ? "true" : "false");
		break;
	}
	case SL_CQL_TYPE_TINYINT: {
		int8_t x;
		if ((rc = sl_cql_value_int8(v, &x)) == 0)
			sl_buf_printf(out, "%d", x);
		break;
	}
	case SL_CQL_TYPE_SMALLINT: {
		int16_t x;
		if ((rc = sl_cql_value_int16(v, &x)) == 0)
			sl_buf_printf(out, "%d", x);
		break;
	}
	case SL_CQL_TYPE_INT: {
		int32_t x;
		if ((rc = sl_cql_value_int32(v, &x)) == 0)
			sl_buf_printf(out, "%" PRId32, x);
		break;
	}
	case SL_CQL_TYPE_BIGINT:
	case SL_CQL_TYPE_COUNTER: {
		int64_t x;
		if ((rc = sl_cql_value_int64(v, &x)) == 0)
			sl_buf_printf(out, "%" PRId64, x);
		break;
	}
	case SL_CQL_TYPE_VARINT:
		varint_digits(out, v->data, (size_t)v->len);
		break;
	case SL_CQL_TYPE_DECIMAL: {
		const uint8_t *u;
		size_t n;
		int32_t scale;
		if ((rc = sl_cql_value_decimal(v, &u, &n, &scale)) == 0)
			decimal_text(out, u, n, scale);
		break;
	}
	case SL_CQL_TYPE_FLOAT: {
		float f;
		if ((rc = sl_cql_value_float(v, &f)) == 0) {
			if (json && !isfinite(f))
				sl_buf_printf(out, "\"%g\"", (double)f);
			else
				sl_buf_printf(out, "%.9g", (double)f);
		}
		break;
	}
	case SL_CQL_TYPE_DOUBLE: {
		double d;
		if ((rc = sl_cql_value_double(v, &d)) == 0) {
			if (json && !isfinite(d))
				sl_buf_printf(out, "\"%g\"", d);
			else
				sl_buf_printf(out, "%.17g", d);
		}
		break;
	}
	case SL_CQL_TYPE_UUID:
	case SL_CQL_TYPE_TIMEUUID:
		if (v->len != 16)
			return SL_ETYPE;
		if (json)
			sl_buf_putc(out, '"');
		uuid_text(out, v->data);
		if (json)
			sl_buf_putc(out, '"');
		break;
	case SL_CQL_TYPE_INET: {
		char txt[INET6_ADDRSTRLEN];
		if (v->len != 4 && v->len != 16)
			return SL_ETYPE;
		inet_ntop(v->len == 4 ? AF_INET : AF_INET6, v->data, txt, sizeof txt);
		sl_buf_printf(out, json ? "\"%s\"" : "%s", txt);
		break;
	}
	case SL_CQL_TYPE_TIMESTAMP: {
		int64_t ms;
		if ((rc = sl_cql_value_int64(v, &ms)) != 0)
			break;
		int64_t days = ms >= 0 ? ms / 86400000 : -((-ms + 86399999) / 86400000);
		int64_t rem = ms - days * 86400000;
		int64_t y;
		unsigned m, d;
		civil_from_days(days, &y, &m, &d);
		sl_buf_printf(out, "%s%04" PRId64 "-%02u-%02u %02d:%02d:%02d.%03d%s", json ? "\"" : "", y, m, d,
			      (int)(rem / 3600000), (int)(rem / 60000 % 60), (int)(rem / 1000 % 60), (int)(rem % 1000),
			      json ? "Z\"" : "+0000");
		break;
	}
	case SL_CQL_TYPE_DATE: {
		uint32_t u;
		if ((rc = sl_cql_value_uint32(v, &u)) != 0)
			break;
		int64_t y;
		unsigned m, d;
		civil_from_days((int64_t)u - ((int64_t)1 << 31), &y, &m, &d);
		sl_buf_printf(out, "%s%04" PRId64 "-%02u-%02u%s", json ? "\"" : "", y, m, d, json ? "\"" : "");
		break;
	}
	case SL_CQL_TYPE_TIME: {
		int64_t ns;
		if ((rc = sl_cql_value_int64(v, &ns)) != 0)
			break;
		if (ns < 0 || ns >= 86400000000000LL)
			return SL_ETYPE;
		sl_buf_printf(out, "%s%02d:%02d:%02d.%09d%s", json ? "\"" : "", (int)(ns / 3600000000000LL),
			      (int)(ns / 60000000000LL % 60), (int)(ns / 1000000000 % 60), (int)(ns % 1000000000),
			      json ? "\"" : "");
		break;
	}
	case SL_CQL_TYPE_DURATION: {
		int32_t mo, dd;
		int64_t ns;
		if ((rc = sl_cql_value_duration(v, &mo, &dd, &ns)) == 0)
			sl_buf_printf(out, "%s%" PRId32 "mo%" PRId32 "d%" PRId64 "ns%s", json ? "\"" : "", mo, dd, ns,
				      json ? "\"" : "");
		break;
	}
	case SL_CQL_TYPE_LIST:
	case SL_CQL_TYPE_SET:
	case SL_CQL_TYPE_MAP:
	case SL_CQL_TYPE_TUPLE:
	case SL_CQL_TYPE_UDT:
		return format_elems(out, v, json, depth);
	default: /* blob, custom */
		sl_buf_puts(out, json ? "\"0x" : "0x");
		for (int32_t i = 0; i < v->len; i++)
			sl_buf_printf(out, "%02x", v->data[i]);
		if (json)
			sl_buf_putc(out, '"');
	}
	return rc == SL_ENOTFOUND ? 0 : rc;
}

int sl_cql_value_format(struct sl_buf *out, const struct sl_cql_value *v, bool json)
{
	int rc = format_value(out, v, json, 0);
	if (rc == 0 && !sl_buf_ok(out))
		rc = SL_ENOMEM;
	return rc;
}

/* ---- iterator over rows ---- */

void sl_cql_iter_init(struct sl_cql_iter *it, const struct sl_cql_result *r)
{
	memset(it, 0, sizeof *it);
	it->r = r;
	it->row = -1;
	it->next = r ? r->rows : NULL;
	if (r && r->kind == SL_CQL_RESULT_ROWS && r->meta.ncols > 0)
		it->cells = calloc((size_t)r->meta.ncols, sizeof *it->cells);
}

bool sl_cql_iter_next(struct sl_cql_iter *it)
{
	const struct sl_cql_result *r = it->r;
	if (!r || r->kind != SL_CQL_RESULT_ROWS || it->row + 1 >= r->nrows || (!it->cells && r->meta.ncols > 0))
		return false;
	/* Cell lengths were validated by sl_cql_result_decode. */
	const uint8_t *p = it->next;
	for (int32_t c = 0; c < r->meta.ncols; c++) {
		int32_t n = (int32_t)sl_cql_get_u32(p);
		p += 4;
		it->cells[c].type = r->meta.cols ? r->meta.cols[c].type : NULL;
		it->cells[c].len = n < 0 ? -1 : n;
		it->cells[c].data = n < 0 ? NULL : p;
		if (n > 0)
			p += n;
	}
	it->next = p;
	it->row++;
	return true;
}

void sl_cql_iter_free(struct sl_cql_iter *it)
{
	free(it->cells);
	it->cells = NULL;
}

/* ---- result accessors ---- */

int sl_cql_result_kind(const struct sl_cql_result *r) { return r ? r->kind : 0; }
int sl_cql_result_row_count(const struct sl_cql_result *r) { return r && r->kind == SL_CQL_RESULT_ROWS ? r->nrows : 0; }
int sl_cql_result_column_count(const struct sl_cql_result *r) { return r ? r->meta.ncols : 0; }

const struct sl_cql_column *sl_cql_result_column(const struct sl_cql_result *r, int i)
{
	if (!r || !r->meta.cols || i < 0 || i >= r->meta.ncols)
		return NULL;
	return &r->meta.cols[i];
}

int sl_cql_result_column_index(const struct sl_cql_result *r, const char *name)
{
	for (int i = 0; r && r->meta.cols && i < r->meta.ncols; i++)
		if (!strcmp(r->meta.cols[i].name, name))
			return i;
	return -1;
}

bool sl_cql_result_has_more_pages(const struct sl_cql_result *r)
{
	return r && (r->meta.flags & SL_CQL_MF_HAS_MORE_PAGES) && r->meta.paging_state_len >= 0;
}

int sl_cql_result_paging_state(const struct sl_cql_result *r, const uint8_t **state, size_t *len)
{
	if (!sl_cql_result_has_more_pages(r))
		return SL_ENOTFOUND;
	*state = r->meta.paging_state;
	*len = (size_t)r->meta.paging_state_len;
	return 0;
}

const char *const *sl_cql_result_warnings(const struct sl_cql_result *r)
{
	static const char *const none[] = {NULL};
	return r && r->warnings ? (const char *const *)r->warnings : none;
}

bool sl_cql_result_schema_agreed(const struct sl_cql_result *r) { return r && r->schema_agreed; }
