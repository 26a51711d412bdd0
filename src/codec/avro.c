/* Avro records in Confluent's wire format (see avro.h): the schema a mapping implies, the encoder, a bounded
 * generic decoder that resolves any writer schema into the mapping schema, and a per-id cache of resolved readers
 * that asks its owner's fetch function for unknown ids (the pipeline wires it to the registry client). Writer schemas
 * are parsed by the schema model the registry also uses (codec/avro_schema.c), so what the registry accepted is
 * exactly what the decoder understands. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec/avro.h"
#include "codec/avro_schema.h"
#include "codec/idcache.h"

/* Nesting a datum may have (records in records, arrays of arrays): recursive schemas would otherwise let a payload
 * pick the stack depth. */
#define MAX_DEPTH 64
/* Items a datum may hold in all its arrays and maps. Zero-byte items (null, empty records) cost no input bytes, so
 * the input length alone does not bound the work: a 10-byte datum can declare a million nulls. The bound is a
 * million, and no more than 1024 plus 8 per byte of the datum, so the work stays proportional to the input. */
#define MAX_ITEMS (1 << 20)
#define ITEMS_PER_BYTE 8

static size_t items_bound(size_t n)
{
	return n > (MAX_ITEMS - 1024) / ITEMS_PER_BYTE ? MAX_ITEMS : 1024 + ITEMS_PER_BYTE * n;
}

/* ---- the schema of a mapping ---- */

static const char *avro_type(enum sl_type t)
{
	switch (t) {
	case SL_T_TEXT: return "\"string\"";
	case SL_T_INT: return "\"int\"";
	case SL_T_BIGINT: return "\"long\"";
	case SL_T_DOUBLE: return "\"double\"";
	case SL_T_BOOLEAN: return "\"boolean\"";
	case SL_T_UUID: return "{\"type\":\"string\",\"logicalType\":\"uuid\"}";
	case SL_T_TIMESTAMP: return "{\"type\":\"long\",\"logicalType\":\"timestamp-millis\"}";
	case SL_T_DATE: return "{\"type\":\"int\",\"logicalType\":\"date\"}";
	default: return NULL;
	}
}

static bool column_required(const struct sl_schema *s, size_t i)
{
	return s->fields[i].required || (int)i == s->key;
}

int sl_avro_schema_for(const struct sl_schema *s, const char *name, struct sl_buf *out, struct sl_err *err)
{
	char nm[256];
	size_t k = 0;
	/* Avro names are [A-Za-z_][A-Za-z0-9_]*: a pipeline called "seed-users" becomes record "seed_users". */
	for (const char *p = name; *p && k < sizeof nm - 2; p++) {
		char ch = *p;
		bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' || (k && ch >= '0' && ch <= '9');
		if (!k && ch >= '0' && ch <= '9')
			nm[k++] = '_';
		nm[k++] = ok || (ch >= '0' && ch <= '9') ? ch : '_';
	}
	nm[k] = 0;
	if (!k)
		snprintf(nm, sizeof nm, "record");
	sl_buf_printf(out, "{\"type\":\"record\",\"name\":\"%s\",\"fields\":[", nm);
	for (size_t i = 0; i < s->n; i++) {
		const char *t = avro_type(s->fields[i].type);
		if (!t)
			return sl_err_set(err, SL_EINVAL, "column '%s': type %s has no Avro form", s->fields[i].name,
					  sl_type_name(s->fields[i].type));
		sl_buf_puts(out, i ? ",{\"name\":" : "{\"name\":");
		sl_buf_json_str(out, s->fields[i].name, strlen(s->fields[i].name));
		if (column_required(s, i))
			sl_buf_printf(out, ",\"type\":%s}", t);
		else
			sl_buf_printf(out, ",\"type\":[\"null\",%s],\"default\":null}", t);
	}
	sl_buf_puts(out, "]}");
	return sl_buf_ok(out) ? 0 : sl_err_set(err, SL_ENOMEM, "out of memory");
}

/* ---- encoding ---- */

static void put_long(struct sl_buf *b, int64_t v)
{
	uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
	char tmp[10];
	size_t n = 0;
	while (z >= 0x80) {
		tmp[n++] = (char)(z | 0x80);
		z >>= 7;
	}
	tmp[n++] = (char)z;
	sl_buf_append(b, tmp, n);
}

static void put_str(struct sl_buf *b, const char *p, size_t n)
{
	put_long(b, (int64_t)n);
	sl_buf_append(b, p, n);
}

int sl_avro_encode(const struct sl_record *rec, int32_t schema_id, struct sl_buf *out, struct sl_err *err)
{
	const struct sl_schema *s = rec->schema;
	unsigned char hdr[SL_AVRO_HEADER] = {SL_AVRO_MAGIC, (unsigned char)((uint32_t)schema_id >> 24),
					     (unsigned char)((uint32_t)schema_id >> 16),
					     (unsigned char)((uint32_t)schema_id >> 8), (unsigned char)schema_id};
	sl_buf_append(out, hdr, sizeof hdr);
	for (size_t i = 0; i < s->n; i++) {
		const struct sl_value *v = &rec->v[i];
		if (column_required(s, i)) {
			if (v->null)
				return sl_err_set(err, SL_EINVAL, "column '%s': required but has no value", s->fields[i].name);
		} else {
			/* ["null", T]: branch 0 is null, branch 1 the value. */
			put_long(out, v->null ? 0 : 1);
			if (v->null)
				continue;
		}
		switch (s->fields[i].type) {
		case SL_T_TEXT: put_str(out, v->u.s.p, v->u.s.n); break;
		case SL_T_INT: put_long(out, v->u.i32); break;
		case SL_T_BIGINT:
		case SL_T_TIMESTAMP: put_long(out, v->u.i64); break;
		case SL_T_DATE: put_long(out, v->u.days); break;
		case SL_T_DOUBLE: {
			uint64_t bits;
			char le[8];
			memcpy(&bits, &v->u.d, 8);
			for (int k = 0; k < 8; k++)
				le[k] = (char)(bits >> (8 * k));
			sl_buf_append(out, le, 8);
			break;
		}
		case SL_T_BOOLEAN: sl_buf_putc(out, v->u.b ? 1 : 0); break;
		case SL_T_UUID: {
			char u[SL_UUID_STR_LEN + 1];
			sl_uuid_format(v->u.uuid, u);
			put_str(out, u, SL_UUID_STR_LEN);
			break;
		}
		default: return sl_err_set(err, SL_EINVAL, "column '%s': no Avro form", s->fields[i].name);
		}
	}
	return sl_buf_ok(out) ? 0 : sl_err_set(err, SL_ENOMEM, "out of memory encoding a record");
}

int sl_avro_wire_header(const void *p, size_t n, int32_t *schema_id, struct sl_err *err)
{
	const unsigned char *b = p;
	if (n < 1 || b[0] != SL_AVRO_MAGIC)
		return sl_err_set(err, SL_EINVAL, "Unknown magic byte! (first byte %s%02x, expected 00: not the Confluent "
				  "wire format)", n ? "0x" : "none", n ? b[0] : 0);
	if (n < SL_AVRO_HEADER)
		return sl_err_set(err, SL_EINVAL, "value of %zu bytes is shorter than the 5-byte wire-format header", n);
	*schema_id = (int32_t)((uint32_t)b[1] << 24 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 8 | b[4]);
	return 0;
}

/* ---- resolution plan ---- */

struct sl_avro_reader {
	struct sl_avro_schema *ws;   /* the writer schema */
	const struct sl_schema *rs;  /* the reader (mapping) schema */
	int *col;                    /* writer field index -> reader column, -1 = skip */
};

static const char *logical(const struct sl_avro *a)
{
	return a->src && a->src->t == SL_RJ_OBJ ? sl_jtree_getstr(a->src, "logicalType") : NULL;
}

static const char *wname(const struct sl_avro *a)
{
	return a->t <= SL_AVRO_FIXED ? sl_avro_type_names[a->t] : "?";
}

/* Whether a writer value of (non-union) type w can be read as column type t. */
static bool convertible(const struct sl_avro *w, enum sl_type t)
{
	switch (t) {
	case SL_T_TEXT: return w->t == SL_AVRO_STRING || w->t == SL_AVRO_BYTES;
	case SL_T_INT: return w->t == SL_AVRO_INT;
	case SL_T_BIGINT: return w->t == SL_AVRO_INT || w->t == SL_AVRO_LONG;
	case SL_T_DOUBLE:
		return w->t == SL_AVRO_INT || w->t == SL_AVRO_LONG || w->t == SL_AVRO_FLOAT || w->t == SL_AVRO_DOUBLE;
	case SL_T_BOOLEAN: return w->t == SL_AVRO_BOOLEAN;
	case SL_T_UUID: return w->t == SL_AVRO_STRING || (w->t == SL_AVRO_FIXED && w->size == 16);
	case SL_T_TIMESTAMP: return w->t == SL_AVRO_LONG || w->t == SL_AVRO_INT;
	case SL_T_DATE: return w->t == SL_AVRO_INT;
	default: return false;
	}
}

int sl_avro_reader_new(const char *writer_schema, const struct sl_schema *reader, struct sl_avro_reader **out,
		       struct sl_err *err)
{
	struct sl_avro_reader *rd = calloc(1, sizeof *rd);
	int rc;
	*out = NULL;
	if (!rd)
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	rd->rs = reader;
	if ((rc = sl_avro_schema_parse(writer_schema, strlen(writer_schema), NULL, &rd->ws, err))) {
		sl_err_prefix(err, "writer schema: ");
		goto fail;
	}
	const struct sl_avro *root = rd->ws->root;
	if (!reader) {
		*out = rd; /* rendering as JSON (sl_avro_to_json): any writer schema, nothing to resolve */
		return 0;
	}
	if (root->t != SL_AVRO_RECORD) {
		rc = sl_err_set(err, SL_EINVAL, "writer schema is a %s, not a record", wname(root));
		goto fail;
	}
	if (!(rd->col = calloc(root->nfields ? root->nfields : 1, sizeof *rd->col))) {
		rc = sl_err_set(err, SL_ENOMEM, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < root->nfields; i++) {
		const struct sl_avro_field *f = &root->fields[i];
		int c = sl_schema_find(reader, f->name, strlen(f->name));
		rd->col[i] = c;
		if (c < 0)
			continue;
		enum sl_type t = reader->fields[c].type;
		const struct sl_avro *w = f->type;
		bool ok = false;
		/* A union resolves per datum; it is readable when some branch is (the others fail on the datum). */
		if (w->t == SL_AVRO_UNION) {
			for (size_t b = 0; b < w->nbranches && !ok; b++)
				ok = w->branches[b]->t != SL_AVRO_NULL && convertible(w->branches[b], t);
		} else
			ok = convertible(w, t);
		if (!ok) {
			rc = sl_err_set(err, SL_ETYPE, "writer field '%s' of type %s cannot be read as column type %s",
					f->name, wname(w), sl_type_name(t));
			goto fail;
		}
	}
	*out = rd;
	return 0;
fail:
	sl_avro_reader_free(rd);
	return rc;
}

void sl_avro_reader_free(struct sl_avro_reader *rd)
{
	if (!rd)
		return;
	sl_avro_schema_free(rd->ws);
	free(rd->col);
	free(rd);
}

/* ---- the bounded binary reader ---- */

struct rd {
	const unsigned char *p, *end, *start;
	size_t items, max_items;
	struct sl_err *err;
	const char *field; /* the top-level field being read, for messages */
};

static int fail(struct rd *r, int code, const char *what)
{
	return sl_err_set(r->err, code, "field '%s' at byte %td: %s", r->field ? r->field : "?", r->p - r->start, what);
}

static int get_long(struct rd *r, int64_t *out)
{
	uint64_t z = 0;
	for (int shift = 0; shift < 64; shift += 7) {
		if (r->p >= r->end)
			return fail(r, SL_EINVAL, "truncated varint");
		unsigned char b = *r->p++;
		/* The tenth byte may only carry the top bit of a 64-bit value. */
		if (shift == 63 && b > 1)
			return fail(r, SL_EINVAL, "varint longer than 64 bits");
		z |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*out = (int64_t)(z >> 1) ^ -(int64_t)(z & 1);
			return 0;
		}
	}
	return fail(r, SL_EINVAL, "varint longer than 10 bytes");
}

static int get_int(struct rd *r, int32_t *out)
{
	int64_t v;
	int rc = get_long(r, &v);
	if (rc)
		return rc;
	if (v < INT32_MIN || v > INT32_MAX)
		return fail(r, SL_EINVAL, "int out of 32-bit range");
	*out = (int32_t)v;
	return 0;
}

/* A length-prefixed byte string: the length is checked against what is left before anything uses it. */
static int get_bytes(struct rd *r, const unsigned char **p, size_t *n)
{
	int64_t len;
	int rc = get_long(r, &len);
	if (rc)
		return rc;
	if (len < 0)
		return fail(r, SL_EINVAL, "negative length");
	if ((uint64_t)len > (uint64_t)(r->end - r->p))
		return fail(r, SL_EINVAL, "length past the end of the value");
	*p = r->p;
	*n = (size_t)len;
	r->p += len;
	return 0;
}

static int need(struct rd *r, size_t n)
{
	return (size_t)(r->end - r->p) < n ? fail(r, SL_EINVAL, "truncated value") : 0;
}

static int get_double_le(struct rd *r, size_t width, double *out)
{
	int rc = need(r, width);
	if (rc)
		return rc;
	uint64_t bits = 0;
	for (size_t k = 0; k < width; k++)
		bits |= (uint64_t)r->p[k] << (8 * k);
	r->p += width;
	if (width == 4) {
		uint32_t b32 = (uint32_t)bits;
		float f;
		memcpy(&f, &b32, 4);
		*out = f;
	} else
		memcpy(out, &bits, 8);
	return 0;
}

static int skip(struct rd *r, const struct sl_avro *w, int depth);

/* Array and map blocks: a count, negative when followed by the block's byte size (which we do not trust). */
/* The next block's item count (0: the end), checked against what the datum may hold in all. */
static int next_block(struct rd *r, int64_t *count)
{
	int64_t size;
	int rc = get_long(r, count);
	if (rc || *count == 0)
		return rc;
	if (*count < 0) {
		if (*count == INT64_MIN)
			return fail(r, SL_EINVAL, "block count out of range");
		*count = -*count;
		if ((rc = get_long(r, &size)))
			return rc;
	}
	if ((uint64_t)*count > (uint64_t)(r->max_items - r->items)) {
		char what[96];
		snprintf(what, sizeof what, "more than %zu array/map items in a %td-byte datum", r->max_items,
			 r->end - r->start);
		return fail(r, SL_ETOOBIG, what);
	}
	r->items += (size_t)*count;
	return 0;
}

static int skip_blocks(struct rd *r, const struct sl_avro *w, bool map, int depth)
{
	for (;;) {
		int64_t count;
		int rc = next_block(r, &count);
		if (rc || count == 0)
			return rc;
		for (int64_t i = 0; i < count; i++) {
			if (map) {
				const unsigned char *kp = NULL;
				size_t kn = 0;
				if ((rc = get_bytes(r, &kp, &kn)))
					return rc;
			}
			if ((rc = skip(r, w->items, depth + 1)))
				return rc;
		}
	}
}

static int skip(struct rd *r, const struct sl_avro *w, int depth)
{
	int64_t v;
	const unsigned char *p;
	size_t n;
	int rc;
	if (depth > MAX_DEPTH)
		return fail(r, SL_ETOOBIG, "nested deeper than 64 levels");
	switch (w->t) {
	case SL_AVRO_NULL: return 0;
	case SL_AVRO_BOOLEAN: return need(r, 1) ? SL_EINVAL : (r->p++, 0);
	case SL_AVRO_INT:
	case SL_AVRO_LONG:
	case SL_AVRO_ENUM: return get_long(r, &v);
	case SL_AVRO_FLOAT: return need(r, 4) ? SL_EINVAL : (r->p += 4, 0);
	case SL_AVRO_DOUBLE: return need(r, 8) ? SL_EINVAL : (r->p += 8, 0);
	case SL_AVRO_BYTES:
	case SL_AVRO_STRING: return get_bytes(r, &p, &n);
	case SL_AVRO_FIXED:
		if (w->size < 0 || (rc = need(r, (size_t)w->size)))
			return SL_EINVAL;
		r->p += w->size;
		return 0;
	case SL_AVRO_RECORD:
		for (size_t i = 0; i < w->nfields; i++)
			if ((rc = skip(r, w->fields[i].type, depth + 1)))
				return rc;
		return 0;
	case SL_AVRO_ARRAY: return skip_blocks(r, w, false, depth);
	case SL_AVRO_MAP: return skip_blocks(r, w, true, depth);
	case SL_AVRO_UNION:
		if ((rc = get_long(r, &v)))
			return rc;
		if (v < 0 || (uint64_t)v >= w->nbranches)
			return fail(r, SL_EINVAL, "union branch out of range");
		return skip(r, w->branches[v], depth + 1);
	}
	return fail(r, SL_EINVAL, "unknown writer type");
}

/* Reads one value of writer type w into a column of type t. */
static int read_value(struct rd *r, const struct sl_avro *w, enum sl_type t, struct sl_value *out)
{
	int rc;
	int64_t l;
	double d;
	const unsigned char *p;
	size_t n;
	if (w->t == SL_AVRO_UNION) {
		if ((rc = get_long(r, &l)))
			return rc;
		if (l < 0 || (uint64_t)l >= w->nbranches)
			return fail(r, SL_EINVAL, "union branch out of range");
		w = w->branches[l];
		if (w->t == SL_AVRO_NULL) {
			out->null = true;
			return 0;
		}
	}
	if (!convertible(w, t)) {
		char m[160];
		snprintf(m, sizeof m, "a %s cannot be read as column type %s", wname(w), sl_type_name(t));
		return fail(r, SL_ETYPE, m);
	}
	out->null = false;
	switch (t) {
	case SL_T_TEXT:
		if ((rc = get_bytes(r, &p, &n)))
			return rc;
		out->u.s.p = (const char *)p;
		out->u.s.n = n;
		return 0;
	case SL_T_INT: return get_int(r, &out->u.i32);
	case SL_T_DATE: return get_int(r, &out->u.days);
	case SL_T_BIGINT:
		return get_long(r, &out->u.i64);
	case SL_T_TIMESTAMP: {
		const char *lt = logical(w);
		if ((rc = get_long(r, &out->u.i64)))
			return rc;
		/* Confluent's serializers write whichever precision the schema says; the column is milliseconds. */
		if (lt && (!strcmp(lt, "timestamp-micros") || !strcmp(lt, "local-timestamp-micros")))
			out->u.i64 = out->u.i64 / 1000 - (out->u.i64 % 1000 < 0);
		else if (lt && (!strcmp(lt, "timestamp-nanos") || !strcmp(lt, "local-timestamp-nanos")))
			out->u.i64 = out->u.i64 / 1000000 - (out->u.i64 % 1000000 < 0);
		return 0;
	}
	case SL_T_DOUBLE:
		if (w->t == SL_AVRO_INT || w->t == SL_AVRO_LONG) {
			if ((rc = get_long(r, &l)))
				return rc;
			out->u.d = (double)l;
			return 0;
		}
		if ((rc = get_double_le(r, w->t == SL_AVRO_FLOAT ? 4 : 8, &d)))
			return rc;
		out->u.d = d;
		return 0;
	case SL_T_BOOLEAN:
		if ((rc = need(r, 1)))
			return rc;
		if (*r->p > 1)
			return fail(r, SL_EINVAL, "boolean byte is neither 0 nor 1");
		out->u.b = *r->p++ == 1;
		return 0;
	case SL_T_UUID:
		if (w->t == SL_AVRO_FIXED) {
			if ((rc = need(r, 16)))
				return rc;
			memcpy(out->u.uuid, r->p, 16);
			r->p += 16;
			return 0;
		}
		if ((rc = get_bytes(r, &p, &n)))
			return rc;
		if (sl_uuid_parse((const char *)p, n, out->u.uuid))
			return fail(r, SL_ETYPE, "not a uuid");
		return 0;
	default: return fail(r, SL_ETYPE, "column type has no Avro reading");
	}
}

int sl_avro_decode(const struct sl_avro_reader *rd, const void *p, size_t n, struct sl_record *rec,
		   struct sl_arena *a, struct sl_err *err)
{
	struct rd r = {.p = p, .end = (const unsigned char *)p + n, .start = p, .max_items = items_bound(n), .err = err};
	const struct sl_avro *root = rd->ws->root;
	int rc;
	if ((rc = sl_record_init(rec, rd->rs, a, err)))
		return rc;
	for (size_t i = 0; i < root->nfields; i++) {
		r.field = root->fields[i].name;
		if (rd->col[i] < 0)
			rc = skip(&r, root->fields[i].type, 1);
		else
			rc = read_value(&r, root->fields[i].type, rd->rs->fields[rd->col[i]].type, &rec->v[rd->col[i]]);
		if (rc)
			return rc;
	}
	if (r.p != r.end)
		return sl_err_set(err, SL_EINVAL, "%td bytes left over after the record (not written with this schema?)",
				  r.end - r.p);
	return 0;
}

/* ---- any datum as JSON (the console's message browser) ---- */

static int to_json(struct rd *r, const struct sl_avro *w, struct sl_buf *out, int depth);

static void json_bytes_cp(struct sl_buf *out, const unsigned char *p, size_t n)
{
	/* Avro's JSON encoding of bytes and fixed: a string whose code points 0-255 are the bytes. */
	sl_buf_putc(out, '"');
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = p[i];
		if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\')
			sl_buf_putc(out, (char)ch);
		else
			sl_buf_printf(out, "\\u%04x", ch);
	}
	sl_buf_putc(out, '"');
}

static void json_double(struct sl_buf *out, double d)
{
	if (isnan(d))
		sl_buf_puts(out, "\"NaN\"");
	else if (isinf(d))
		sl_buf_puts(out, d > 0 ? "\"Infinity\"" : "\"-Infinity\"");
	else
		sl_buf_printf(out, "%.17g", d);
}

static int blocks_json(struct rd *r, const struct sl_avro *w, bool map, struct sl_buf *out, int depth)
{
	bool first = true;
	sl_buf_putc(out, map ? '{' : '[');
	for (;;) {
		int64_t count;
		int rc = next_block(r, &count);
		if (rc)
			return rc;
		if (count == 0)
			break;
		for (int64_t i = 0; i < count; i++) {
			if (!first)
				sl_buf_putc(out, ',');
			first = false;
			if (map) {
				const unsigned char *kp = NULL;
				size_t kn = 0;
				if ((rc = get_bytes(r, &kp, &kn)))
					return rc;
				sl_buf_json_str(out, (const char *)kp, kn);
				sl_buf_putc(out, ':');
			}
			if ((rc = to_json(r, w->items, out, depth + 1)))
				return rc;
		}
	}
	sl_buf_putc(out, map ? '}' : ']');
	return 0;
}

static int to_json(struct rd *r, const struct sl_avro *w, struct sl_buf *out, int depth)
{
	int64_t v;
	double d;
	const unsigned char *p;
	size_t n;
	int rc;
	if (depth > MAX_DEPTH)
		return fail(r, SL_ETOOBIG, "nested deeper than 64 levels");
	if (!sl_buf_ok(out))
		return sl_err_set(r->err, SL_ENOMEM, "out of memory");
	switch (w->t) {
	case SL_AVRO_NULL: sl_buf_puts(out, "null"); return 0;
	case SL_AVRO_BOOLEAN:
		if ((rc = need(r, 1)))
			return rc;
		sl_buf_puts(out, *r->p++ ? "true" : "false");
		return 0;
	case SL_AVRO_INT:
	case SL_AVRO_LONG:
		if ((rc = get_long(r, &v)))
			return rc;
		sl_buf_printf(out, "%" PRId64, v);
		return 0;
	case SL_AVRO_ENUM:
		if ((rc = get_long(r, &v)))
			return rc;
		if (v < 0 || (uint64_t)v >= w->nsymbols)
			return fail(r, SL_EINVAL, "enum symbol out of range");
		sl_buf_json_str(out, w->symbols[v], strlen(w->symbols[v]));
		return 0;
	case SL_AVRO_FLOAT:
	case SL_AVRO_DOUBLE:
		if ((rc = get_double_le(r, w->t == SL_AVRO_FLOAT ? 4 : 8, &d)))
			return rc;
		json_double(out, d);
		return 0;
	case SL_AVRO_STRING:
		if ((rc = get_bytes(r, &p, &n)))
			return rc;
		sl_buf_json_str(out, (const char *)p, n);
		return 0;
	case SL_AVRO_BYTES:
		if ((rc = get_bytes(r, &p, &n)))
			return rc;
		json_bytes_cp(out, p, n);
		return 0;
	case SL_AVRO_FIXED:
		if (w->size < 0 || (rc = need(r, (size_t)w->size)))
			return fail(r, SL_EINVAL, "truncated fixed");
		json_bytes_cp(out, r->p, (size_t)w->size);
		r->p += w->size;
		return 0;
	case SL_AVRO_RECORD:
		sl_buf_putc(out, '{');
		for (size_t i = 0; i < w->nfields; i++) {
			if (i)
				sl_buf_putc(out, ',');
			sl_buf_json_str(out, w->fields[i].name, strlen(w->fields[i].name));
			sl_buf_putc(out, ':');
			if (depth == 0)
				r->field = w->fields[i].name;
			if ((rc = to_json(r, w->fields[i].type, out, depth + 1)))
				return rc;
		}
		sl_buf_putc(out, '}');
		return 0;
	case SL_AVRO_ARRAY: return blocks_json(r, w, false, out, depth);
	case SL_AVRO_MAP: return blocks_json(r, w, true, out, depth);
	case SL_AVRO_UNION:
		if ((rc = get_long(r, &v)))
			return rc;
		if (v < 0 || (uint64_t)v >= w->nbranches)
			return fail(r, SL_EINVAL, "union branch out of range");
		return to_json(r, w->branches[v], out, depth + 1);
	}
	return fail(r, SL_EINVAL, "unknown writer type");
}

int sl_avro_to_json(const struct sl_avro_reader *rd, const void *p, size_t n, struct sl_buf *out, struct sl_err *err)
{
	struct rd r = {.p = p, .end = (const unsigned char *)p + n, .start = p, .max_items = items_bound(n), .err = err};
	size_t mark = out->len;
	int rc = to_json(&r, rd->ws->root, out, 0);
	if (!rc && r.p != r.end)
		rc = sl_err_set(err, SL_EINVAL, "%td bytes left over after the datum (not written with this schema?)",
				r.end - r.p);
	if (!rc && !sl_buf_ok(out))
		rc = sl_err_set(err, SL_ENOMEM, "out of memory");
	if (rc)
		out->len = mark;
	return rc;
}

/* ---- readers by id ---- */

struct sl_avro_cache {
	sl_avro_fetch_fn fetch;
	void *fetch_ctx;
	const struct sl_schema *reader;
	struct sl_idcache ids;
};

static void reader_free(void *rd)
{
	sl_avro_reader_free(rd);
}

/* sl_idcache_build_fn: the writer schema of id, as a reader into c->reader. */
static int build(void *ctx, int32_t id, void **out, bool *transient, struct sl_err *err)
{
	struct sl_avro_cache *c = ctx;
	char *text = NULL, *type = NULL;
	struct sl_err ferr = {0};
	struct sl_avro_reader *rd = NULL;
	int rc = c->fetch(c->fetch_ctx, id, &text, &type, &ferr);
	if (rc && rc != SL_ENOTFOUND) {
		*transient = true; /* the registry is away: not this record's fault */
		rc = sl_err_set(err, rc, "schema id %" PRId32 ": %s", id, ferr.msg);
	} else if (rc)
		rc = sl_err_set(err, SL_ENOTFOUND, "Schema %" PRId32 " not found in the registry", id);
	else if (strcmp(type, "AVRO"))
		rc = sl_err_set(err, SL_ETYPE, "schema id %" PRId32 " is a %s schema, not Avro", id, type);
	else if ((rc = sl_avro_reader_new(text, c->reader, &rd, err)))
		sl_err_prefix(err, "schema id %" PRId32 ": ", id);
	free(text);
	free(type);
	*out = rd;
	return rc;
}

int sl_avro_cache_new(sl_avro_fetch_fn fetch, void *ctx, const struct sl_schema *reader, struct sl_avro_cache **out,
		      struct sl_err *err)
{
	struct sl_avro_cache *c = calloc(1, sizeof *c);
	if (!c)
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	c->fetch = fetch;
	c->fetch_ctx = ctx;
	c->reader = reader;
	sl_idcache_init(&c->ids, build, reader_free, c);
	*out = c;
	return 0;
}

void sl_avro_cache_free(struct sl_avro_cache *c)
{
	if (!c)
		return;
	sl_idcache_clear(&c->ids);
	free(c);
}

int sl_avro_cache_json(struct sl_avro_cache *c, const void *p, size_t n, int32_t *schema_id, struct sl_buf *out,
		       struct sl_err *err)
{
	int rc;
	*schema_id = -1;
	if ((rc = sl_avro_wire_header(p, n, schema_id, err)))
		return rc;
	void *rd;
	if ((rc = sl_idcache_get(&c->ids, *schema_id, &rd, err)))
		return rc;
	if ((rc = sl_avro_to_json(rd, (const unsigned char *)p + SL_AVRO_HEADER, n - SL_AVRO_HEADER, out, err)))
		sl_err_prefix(err, "schema id %" PRId32 ": ", *schema_id);
	return rc;
}

int sl_avro_cache_decode(struct sl_avro_cache *c, const void *p, size_t n, struct sl_record *rec, struct sl_arena *a,
			 struct sl_err *err)
{
	int32_t id = 0;
	int rc;
	if ((rc = sl_avro_wire_header(p, n, &id, err)))
		return rc;
	void *rd;
	if ((rc = sl_idcache_get(&c->ids, id, &rd, err)))
		return rc;
	if ((rc = sl_avro_decode(rd, (const unsigned char *)p + SL_AVRO_HEADER, n - SL_AVRO_HEADER, rec, a, err)))
		sl_err_prefix(err, "schema id %" PRId32 ": ", id);
	return rc;
}
