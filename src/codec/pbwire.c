/* Protobuf on the stream (pbwire.h): the mapping schema as a proto3 message, the encoder ingest uses, the bounded
 * decoder process uses on every record, and the per-id reader cache. The decoder never trusts the payload: lengths
 * are checked against the bytes left before anything is read, varints stop at 10 bytes, and a message's fields are
 * matched to columns through a plan built once per (schema, message). */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec/pbwire.h"
#include "codec/idcache.h"
#include "codec/protobuf.h"

/* FieldDescriptorProto.Type numbers. */
enum {
	PB_DOUBLE = 1, PB_FLOAT = 2, PB_INT64 = 3, PB_UINT64 = 4, PB_INT32 = 5, PB_FIXED64 = 6, PB_FIXED32 = 7,
	PB_BOOL = 8, PB_STRING = 9, PB_GROUP = 10, PB_MESSAGE = 11, PB_BYTES = 12, PB_UINT32 = 13, PB_ENUM = 14,
	PB_SFIXED32 = 15, PB_SFIXED64 = 16, PB_SINT32 = 17, PB_SINT64 = 18
};

static bool column_required(const struct sl_schema *s, size_t i)
{
	return s->fields[i].required || (int)i == s->key;
}

/* A valid Protobuf identifier ([A-Za-z_][A-Za-z0-9_]*) for name, into out. */
static void pb_ident(const char *name, char *out, size_t cap)
{
	size_t k = 0;
	for (const char *p = name; *p && k < cap - 2; p++) {
		char ch = *p;
		bool alpha = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_';
		bool digit = ch >= '0' && ch <= '9';
		if (!k && digit)
			out[k++] = '_';
		out[k++] = alpha || digit ? ch : '_';
	}
	out[k] = 0;
	if (!k)
		snprintf(out, cap, "record");
}

static const char *pb_type(enum sl_type t)
{
	switch (t) {
	case SL_T_TEXT:
	case SL_T_UUID: return "string";
	case SL_T_INT:
	case SL_T_DATE: return "int32";
	case SL_T_BIGINT: return "int64";
	case SL_T_DOUBLE: return "double";
	case SL_T_BOOLEAN: return "bool";
	case SL_T_TIMESTAMP: return "google.protobuf.Timestamp";
	default: return NULL;
	}
}

int sl_pbwire_schema_for(const struct sl_schema *s, const char *name, struct sl_buf *out, struct sl_err *err)
{
	char nm[256], fn[256];
	bool ts = false;
	for (size_t i = 0; i < s->n; i++)
		ts |= s->fields[i].type == SL_T_TIMESTAMP;
	pb_ident(name, nm, sizeof nm);
	sl_buf_puts(out, "syntax = \"proto3\";\n");
	if (ts)
		sl_buf_puts(out, "import \"google/protobuf/timestamp.proto\";\n");
	sl_buf_printf(out, "message %s {\n", nm);
	for (size_t i = 0; i < s->n; i++) {
		const char *t = pb_type(s->fields[i].type);
		if (!t)
			return sl_err_set(err, SL_EINVAL, "column '%s': type %s has no Protobuf form", s->fields[i].name,
					  sl_type_name(s->fields[i].type));
		pb_ident(s->fields[i].name, fn, sizeof fn);
		sl_buf_printf(out, "  %s%s %s = %zu;\n", column_required(s, i) ? "" : "optional ", t, fn, i + 1);
	}
	sl_buf_puts(out, "}\n");
	return sl_buf_ok(out) ? 0 : sl_err_set(err, SL_ENOMEM, "out of memory");
}

/* ---- encoding ---- */

static void put_varint(struct sl_buf *out, uint64_t v)
{
	unsigned char b[10];
	size_t n = 0;
	do {
		b[n] = (unsigned char)(v & 0x7f);
		v >>= 7;
		if (v)
			b[n] |= 0x80;
		n++;
	} while (v);
	sl_buf_append(out, b, n);
}

static void put_tag(struct sl_buf *out, size_t field, int wt)
{
	put_varint(out, (uint64_t)field << 3 | (uint64_t)wt);
}

static void put_bytes(struct sl_buf *out, size_t field, const void *p, size_t n)
{
	put_tag(out, field, 2);
	put_varint(out, n);
	sl_buf_append(out, p, n);
}

int sl_pbwire_encode(const struct sl_record *rec, int32_t schema_id, struct sl_buf *out, struct sl_err *err)
{
	const struct sl_schema *s = rec->schema;
	/* magic, id, then the message indexes [0] written as the single byte 0 (Confluent's short form) */
	unsigned char hdr[6] = {0, (unsigned char)((uint32_t)schema_id >> 24), (unsigned char)((uint32_t)schema_id >> 16),
				(unsigned char)((uint32_t)schema_id >> 8), (unsigned char)schema_id, 0};
	sl_buf_append(out, hdr, sizeof hdr);
	for (size_t i = 0; i < s->n; i++) {
		const struct sl_value *v = &rec->v[i];
		size_t f = i + 1;
		if (v->null) {
			if (column_required(s, i))
				return sl_err_set(err, SL_EINVAL, "column '%s': required but has no value", s->fields[i].name);
			continue;
		}
		switch (s->fields[i].type) {
		case SL_T_TEXT: put_bytes(out, f, v->u.s.p, v->u.s.n); break;
		case SL_T_INT: put_tag(out, f, 0), put_varint(out, (uint64_t)(int64_t)v->u.i32); break;
		case SL_T_DATE: put_tag(out, f, 0), put_varint(out, (uint64_t)(int64_t)v->u.days); break;
		case SL_T_BIGINT: put_tag(out, f, 0), put_varint(out, (uint64_t)v->u.i64); break;
		case SL_T_BOOLEAN: put_tag(out, f, 0), put_varint(out, v->u.b ? 1 : 0); break;
		case SL_T_DOUBLE: {
			uint64_t bits;
			unsigned char le[8];
			memcpy(&bits, &v->u.d, 8);
			for (int k = 0; k < 8; k++)
				le[k] = (unsigned char)(bits >> (8 * k));
			put_tag(out, f, 1);
			sl_buf_append(out, le, 8);
			break;
		}
		case SL_T_UUID: {
			char u[SL_UUID_STR_LEN + 1];
			sl_uuid_format(v->u.uuid, u);
			put_bytes(out, f, u, SL_UUID_STR_LEN);
			break;
		}
		case SL_T_TIMESTAMP: {
			/* google.protobuf.Timestamp: seconds floored, nanos in [0, 1e9) */
			int64_t ms = v->u.i64, sec = ms / 1000, rem = ms % 1000;
			if (rem < 0)
				rem += 1000, sec--;
			struct sl_buf m;
			sl_buf_init(&m);
			if (sec)
				put_tag(&m, 1, 0), put_varint(&m, (uint64_t)sec);
			if (rem)
				put_tag(&m, 2, 0), put_varint(&m, (uint64_t)(rem * 1000000));
			put_bytes(out, f, m.data ? m.data : "", m.len);
			sl_buf_free(&m);
			break;
		}
		default: return sl_err_set(err, SL_EINVAL, "column '%s': no Protobuf form", s->fields[i].name);
		}
	}
	return sl_buf_ok(out) ? 0 : sl_err_set(err, SL_ENOMEM, "out of memory encoding a record");
}

/* ---- decoding primitives ---- */

struct rd {
	const unsigned char *p, *end;
	struct sl_err *err;
};

static int get_varint(struct rd *r, uint64_t *v)
{
	uint64_t x = 0;
	for (int i = 0; i < 10; i++) {
		if (r->p >= r->end)
			return sl_err_set(r->err, SL_EINVAL, "truncated varint");
		unsigned char b = *r->p++;
		if (i == 9 && b > 1)
			return sl_err_set(r->err, SL_EINVAL, "varint over 64 bits");
		x |= (uint64_t)(b & 0x7f) << (7 * i);
		if (!(b & 0x80)) {
			*v = x;
			return 0;
		}
	}
	return sl_err_set(r->err, SL_EINVAL, "varint longer than 10 bytes");
}

static int64_t unzigzag(uint64_t v)
{
	return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

int sl_pbwire_header(const void *p, size_t n, int32_t *schema_id, int *idx, size_t *nidx, size_t *hdrlen,
		     struct sl_err *err)
{
	const unsigned char *b = p;
	struct rd r = {.p = b + 5, .end = b + n, .err = err};
	uint64_t cnt, v;
	if (n < 1 || b[0] != 0)
		return sl_err_set(err, SL_EINVAL, "Unknown magic byte! (first byte %s%02x, expected 00: not the Confluent "
				  "wire format)", n ? "0x" : "none", n ? b[0] : 0);
	if (n < 6)
		return sl_err_set(err, SL_EINVAL, "value of %zu bytes is shorter than the Protobuf wire-format header", n);
	*schema_id = (int32_t)((uint32_t)b[1] << 24 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 8 | b[4]);
	if (get_varint(&r, &cnt))
		return sl_err_prefix(err, "message indexes: "), SL_EINVAL;
	int64_t c = unzigzag(cnt);
	if (c == 0) {
		idx[0] = 0;
		*nidx = 1;
	} else {
		if (c < 0 || c > SL_PBWIRE_MAX_INDEXES)
			return sl_err_set(err, SL_EINVAL, "message indexes: count %" PRId64 " out of range 0..%d", c,
					  SL_PBWIRE_MAX_INDEXES);
		for (int64_t i = 0; i < c; i++) {
			if (get_varint(&r, &v))
				return sl_err_prefix(err, "message indexes: "), SL_EINVAL;
			int64_t x = unzigzag(v);
			if (x < 0 || x > 1000000)
				return sl_err_set(err, SL_EINVAL, "message index %" PRId64 " out of range", x);
			idx[i] = (int)x;
		}
		*nidx = (size_t)c;
	}
	*hdrlen = (size_t)(r.p - b);
	return 0;
}

/* ---- the reader ---- */

/* How one writer message maps onto the columns: for each of its fields, the column or -1. */
struct plan {
	const struct sl_pb_msg *msg;
	int *col;
	char why[SL_ERR_MSG_MAX]; /* non-empty: the message cannot be read (a field/column type clash) */
};

struct sl_pbwire_reader {
	struct sl_pb_schema *ws;
	const struct sl_schema *rs;
	bool proto3;
	struct plan *plans;
	size_t nplans;
};

void sl_pbwire_deps_free(struct sl_pbwire_dep *deps, size_t n)
{
	for (size_t i = 0; deps && i < n; i++) {
		free(deps[i].name);
		free(deps[i].text);
	}
	free(deps);
}

int sl_pbwire_reader_new(const char *writer_schema, const struct sl_schema *reader, struct sl_pbwire_reader **out,
			 struct sl_err *err)
{
	return sl_pbwire_reader_new_deps(writer_schema, NULL, 0, reader, out, err);
}

int sl_pbwire_reader_new_deps(const char *writer_schema, const struct sl_pbwire_dep *deps, size_t ndeps,
			      const struct sl_schema *reader, struct sl_pbwire_reader **out, struct sl_err *err)
{
	struct sl_pbwire_reader *rd = calloc(1, sizeof *rd);
	struct sl_pb_dep *pd = ndeps ? calloc(ndeps, sizeof *pd) : NULL;
	int rc;
	if (!rd || (ndeps && !pd)) {
		free(rd);
		free(pd);
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < ndeps; i++)
		pd[i] = (struct sl_pb_dep){.name = deps[i].name, .text = deps[i].text, .origin = deps[i].name};
	rc = sl_protobuf_parse(writer_schema, strlen(writer_schema), pd, ndeps, &rd->ws, err);
	free(pd);
	if (rc) {
		free(rd);
		return rc;
	}
	rd->rs = reader;
	rd->proto3 = rd->ws->syntax && !strcmp(rd->ws->syntax, "proto3");
	*out = rd;
	return 0;
}

void sl_pbwire_reader_free(struct sl_pbwire_reader *rd)
{
	if (!rd)
		return;
	for (size_t i = 0; i < rd->nplans; i++)
		free(rd->plans[i].col);
	free(rd->plans);
	sl_protobuf_free(rd->ws);
	free(rd);
}

static bool is_timestamp(const struct sl_pb_field *f)
{
	return f->type == PB_MESSAGE && f->type_name && !strcmp(f->type_name, "google.protobuf.Timestamp");
}

/* Whether a field of this Protobuf type can fill a column of type t. */
static bool readable(const struct sl_pb_field *f, enum sl_type t)
{
	switch (f->type) {
	case PB_STRING: return t == SL_T_TEXT || t == SL_T_UUID;
	case PB_BYTES: return t == SL_T_TEXT || t == SL_T_UUID;
	case PB_ENUM: return t == SL_T_TEXT || t == SL_T_INT || t == SL_T_BIGINT;
	case PB_BOOL: return t == SL_T_BOOLEAN;
	case PB_DOUBLE:
	case PB_FLOAT: return t == SL_T_DOUBLE;
	case PB_INT32: case PB_SINT32: case PB_SFIXED32: case PB_UINT32: case PB_FIXED32:
	case PB_INT64: case PB_SINT64: case PB_SFIXED64: case PB_UINT64: case PB_FIXED64:
		return t == SL_T_INT || t == SL_T_BIGINT || t == SL_T_DOUBLE || t == SL_T_TIMESTAMP || t == SL_T_DATE;
	case PB_MESSAGE: return is_timestamp(f) && t == SL_T_TIMESTAMP;
	default: return false;
	}
}

static struct plan *plan_for(struct sl_pbwire_reader *rd, const struct sl_pb_msg *m, struct sl_err *err)
{
	for (size_t i = 0; i < rd->nplans; i++)
		if (rd->plans[i].msg == m)
			return &rd->plans[i];
	struct plan *np = realloc(rd->plans, (rd->nplans + 1) * sizeof *np);
	if (!np) {
		sl_err_set(err, SL_ENOMEM, "out of memory");
		return NULL;
	}
	rd->plans = np;
	struct plan *pl = &rd->plans[rd->nplans];
	memset(pl, 0, sizeof *pl);
	pl->msg = m;
	pl->col = calloc(m->nfields + 1, sizeof *pl->col);
	if (!pl->col) {
		sl_err_set(err, SL_ENOMEM, "out of memory");
		return NULL;
	}
	rd->nplans++;
	for (size_t i = 0; i < m->nfields; i++) {
		const struct sl_pb_field *f = &m->fields[i];
		int c = sl_schema_find(rd->rs, f->name, strlen(f->name));
		/* the writer may carry the identifier sl_pbwire_schema_for made of a column name */
		for (size_t k = 0; c < 0 && k < rd->rs->n; k++) {
			char id[256];
			pb_ident(rd->rs->fields[k].name, id, sizeof id);
			if (!strcmp(id, f->name))
				c = (int)k;
		}
		pl->col[i] = c;
		if (c < 0 || pl->why[0])
			continue;
		enum sl_type t = rd->rs->fields[c].type;
		if (f->label == SL_PB_LABEL_REPEATED || (f->msg && f->msg->map_entry))
			snprintf(pl->why, sizeof pl->why, "field '%s' of %s is repeated; column '%s' takes one %s", f->name,
				 m->full, rd->rs->fields[c].name, sl_type_name(t));
		else if (!readable(f, t))
			snprintf(pl->why, sizeof pl->why, "field '%s' of %s (%s) cannot be read as column '%s' (%s)", f->name,
				 m->full, f->type_name ? f->type_name : "scalar", rd->rs->fields[c].name, sl_type_name(t));
	}
	return pl;
}

/* The field of m with number num, or NULL. */
static const struct sl_pb_field *field_by_number(const struct sl_pb_msg *m, uint64_t num, size_t *at)
{
	for (size_t i = 0; i < m->nfields; i++)
		if ((uint64_t)m->fields[i].number == num) {
			*at = i;
			return &m->fields[i];
		}
	return NULL;
}

/* Skips one value of wire type wt. Groups (3, 4) are refused: no schema sluice writes has them, and skipping them
 * needs a depth bound of its own. */
static int skip(struct rd *r, int wt)
{
	uint64_t v;
	switch (wt) {
	case 0: return get_varint(r, &v);
	case 1:
		if (r->end - r->p < 8)
			return sl_err_set(r->err, SL_EINVAL, "truncated fixed64");
		r->p += 8;
		return 0;
	case 5:
		if (r->end - r->p < 4)
			return sl_err_set(r->err, SL_EINVAL, "truncated fixed32");
		r->p += 4;
		return 0;
	case 2:
		if (get_varint(r, &v))
			return SL_EINVAL;
		if (v > (uint64_t)(r->end - r->p))
			return sl_err_set(r->err, SL_EINVAL, "length %" PRIu64 " past the end of the message", v);
		r->p += v;
		return 0;
	case 3:
	case 4: return sl_err_set(r->err, SL_EINVAL, "groups (wire type %d) are not supported", wt);
	default: return sl_err_set(r->err, SL_EINVAL, "invalid wire type %d", wt);
	}
}

static int wire_type_of(int type)
{
	switch (type) {
	case PB_DOUBLE: case PB_FIXED64: case PB_SFIXED64: return 1;
	case PB_FLOAT: case PB_FIXED32: case PB_SFIXED32: return 5;
	case PB_STRING: case PB_BYTES: case PB_MESSAGE: return 2;
	default: return 0;
	}
}

/* An integer value of field f as int64 (uint64 past INT64_MAX is SL_ETYPE). */
static int int_value(const struct sl_pb_field *f, uint64_t raw, int64_t *out, struct sl_err *err)
{
	switch (f->type) {
	case PB_INT32: case PB_SFIXED32: case PB_ENUM: *out = (int32_t)(uint32_t)raw; return 0;
	case PB_UINT32: case PB_FIXED32: *out = (uint32_t)raw; return 0;
	case PB_SINT32: *out = (int32_t)unzigzag(raw & 0xffffffffu); return 0;
	case PB_SINT64: *out = unzigzag(raw); return 0;
	case PB_UINT64: case PB_FIXED64:
		if (raw > INT64_MAX)
			return sl_err_set(err, SL_ETYPE, "field '%s': %" PRIu64 " does not fit a signed 64-bit column", f->name,
					  raw);
		*out = (int64_t)raw;
		return 0;
	default: *out = (int64_t)raw; return 0;
	}
}

/* google.protobuf.Timestamp bytes -> milliseconds. */
static int timestamp_ms(const unsigned char *p, size_t n, const char *field, int64_t *ms, struct sl_err *err)
{
	struct rd r = {.p = p, .end = p + n, .err = err};
	int64_t sec = 0, nanos = 0;
	while (r.p < r.end) {
		uint64_t key, v;
		if (get_varint(&r, &key))
			return SL_EINVAL;
		int wt = (int)(key & 7);
		if ((key >> 3) == 1 && wt == 0) {
			if (get_varint(&r, &v))
				return SL_EINVAL;
			sec = (int64_t)v;
		} else if ((key >> 3) == 2 && wt == 0) {
			if (get_varint(&r, &v))
				return SL_EINVAL;
			nanos = (int32_t)(uint32_t)v;
		} else if (skip(&r, wt))
			return SL_EINVAL;
	}
	/* Timestamp's documented range: years 1..9999 */
	if (sec < -62135596800LL || sec > 253402300799LL || nanos < 0 || nanos > 999999999)
		return sl_err_set(err, SL_ETYPE, "field '%s': timestamp %" PRId64 "s %" PRId64 "ns out of range", field, sec,
				  nanos);
	*ms = sec * 1000 + nanos / 1000000;
	return 0;
}

static int set_int(struct sl_value *v, enum sl_type t, int64_t x, const char *field, struct sl_err *err)
{
	switch (t) {
	case SL_T_INT:
	case SL_T_DATE:
		if (x < INT32_MIN || x > INT32_MAX)
			return sl_err_set(err, SL_ETYPE, "field '%s': %" PRId64 " does not fit a 32-bit column", field, x);
		if (t == SL_T_INT)
			v->u.i32 = (int32_t)x;
		else
			v->u.days = (int32_t)x;
		break;
	case SL_T_DOUBLE: v->u.d = (double)x; break;
	default: v->u.i64 = x; break;
	}
	v->null = false;
	return 0;
}

/* The zero value proto3 gives an absent field with implicit presence. */
static void zero_value(struct sl_value *v, const struct sl_pb_field *f, enum sl_type t)
{
	memset(&v->u, 0, sizeof v->u);
	if (t == SL_T_UUID)
		return; /* "" is no uuid: stays null */
	if (t == SL_T_TEXT) {
		if (f->type == PB_ENUM && f->en && f->en->nvals) {
			for (size_t i = 0; i < f->en->nvals; i++)
				if (f->en->vnums[i] == 0) {
					v->u.s.p = f->en->vnames[i];
					v->u.s.n = strlen(f->en->vnames[i]);
					break;
				}
		} else
			v->u.s.p = "";
		if (!v->u.s.p)
			return;
	}
	v->null = false;
}

int sl_pbwire_decode(struct sl_pbwire_reader *rd, const int *idx, size_t nidx, const void *p, size_t n,
		     struct sl_record *rec, struct sl_arena *a, struct sl_err *err)
{
	struct rd r = {.p = p, .end = (const unsigned char *)p + n, .err = err};
	const struct sl_pb_msg *m = sl_protobuf_by_index(rd->ws, idx, nidx);
	int rc;
	if (!m)
		return sl_err_set(err, SL_EINVAL, "message indexes name no message of the schema");
	struct plan *pl = plan_for(rd, m, err);
	if (!pl)
		return SL_ENOMEM;
	if (pl->why[0])
		return sl_err_set(err, SL_ETYPE, "%s", pl->why);
	if ((rc = sl_record_init(rec, rd->rs, a, err)))
		return rc;
	while (r.p < r.end) {
		uint64_t key, raw = 0;
		size_t fi;
		if (get_varint(&r, &key))
			return SL_EINVAL;
		int wt = (int)(key & 7);
		uint64_t num = key >> 3;
		if (num == 0 || num > 536870911)
			return sl_err_set(err, SL_EINVAL, "field number %" PRIu64 " out of range", num);
		const struct sl_pb_field *f = field_by_number(m, num, &fi);
		if (!f || pl->col[fi] < 0) {
			if (skip(&r, wt))
				return SL_EINVAL;
			continue;
		}
		int c = pl->col[fi];
		enum sl_type t = rd->rs->fields[c].type;
		struct sl_value *v = &rec->v[c];
		if (wt != wire_type_of(f->type))
			return sl_err_set(err, SL_EINVAL, "field '%s': wire type %d, its type %d needs %d", f->name, wt, f->type,
					  wire_type_of(f->type));
		if (wt == 0 && get_varint(&r, &raw))
			return sl_err_prefix(err, "field '%s': ", f->name), SL_EINVAL;
		if (wt == 1 || wt == 5) {
			size_t w = wt == 1 ? 8 : 4;
			if ((size_t)(r.end - r.p) < w)
				return sl_err_set(err, SL_EINVAL, "field '%s': truncated fixed%zu", f->name, w * 8);
			for (size_t k = 0; k < w; k++)
				raw |= (uint64_t)r.p[k] << (8 * k);
			r.p += w;
		}
		const unsigned char *bp = NULL;
		size_t bn = 0;
		if (wt == 2) {
			if (get_varint(&r, &raw))
				return sl_err_prefix(err, "field '%s': ", f->name), SL_EINVAL;
			if (raw > (uint64_t)(r.end - r.p))
				return sl_err_set(err, SL_EINVAL, "field '%s': length %" PRIu64 " past the end of the message",
						  f->name, raw);
			bp = r.p;
			bn = (size_t)raw;
			r.p += bn;
		}
		/* the last occurrence of a field wins, as Protobuf merges scalars */
		switch (f->type) {
		case PB_STRING:
		case PB_BYTES:
			if (t == SL_T_UUID) {
				if (bn == 16 && f->type == PB_BYTES)
					memcpy(v->u.uuid, bp, 16);
				else if (sl_uuid_parse((const char *)bp, bn, v->u.uuid))
					return sl_err_set(err, SL_ETYPE, "field '%s': not a uuid", f->name);
			} else {
				v->u.s.p = bn ? (const char *)bp : "";
				v->u.s.n = bn;
			}
			v->null = false;
			break;
		case PB_BOOL: v->u.b = raw != 0, v->null = false; break;
		case PB_DOUBLE: memcpy(&v->u.d, &raw, 8), v->null = false; break;
		case PB_FLOAT: {
			uint32_t b32 = (uint32_t)raw;
			float fl;
			memcpy(&fl, &b32, 4);
			v->u.d = fl;
			v->null = false;
			break;
		}
		case PB_MESSAGE: {
			int64_t ms = 0;
			if ((rc = timestamp_ms(bp, bn, f->name, &ms, err)))
				return rc;
			v->u.i64 = ms;
			v->null = false;
			break;
		}
		case PB_ENUM:
			if (t == SL_T_TEXT) {
				const char *sym = NULL;
				for (size_t k = 0; f->en && k < f->en->nvals && !sym; k++)
					if (f->en->vnums[k] == (int32_t)(uint32_t)raw)
						sym = f->en->vnames[k];
				if (!sym)
					return sl_err_set(err, SL_ETYPE, "field '%s': %" PRId32 " is no symbol of %s", f->name,
							  (int32_t)(uint32_t)raw, f->type_name ? f->type_name : "the enum");
				v->u.s.p = sym;
				v->u.s.n = strlen(sym);
				v->null = false;
				break;
			}
			/* a number column takes the enum's number */
			/* fall through */
		default: {
			int64_t x = 0;
			if ((rc = int_value(f, raw, &x, err)) || (rc = set_int(v, t, x, f->name, err)))
				return rc;
			break;
		}
		}
	}
	/* proto3 fields without a label have implicit presence: absent means the zero value, not null */
	for (size_t i = 0; rd->proto3 && i < m->nfields; i++) {
		const struct sl_pb_field *f = &m->fields[i];
		int c = pl->col[i];
		if (c >= 0 && rec->v[c].null && f->label == SL_PB_LABEL_NONE && f->oneof < 0 && f->type != PB_MESSAGE)
			zero_value(&rec->v[c], f, rd->rs->fields[c].type);
	}
	return 0;
}

/* ---- readers by id ---- */

struct sl_pbwire_cache {
	sl_pbwire_fetch_fn fetch;
	void *fetch_ctx;
	const struct sl_schema *reader;
	struct sl_idcache ids;
};

static void reader_free(void *rd)
{
	sl_pbwire_reader_free(rd);
}

/* sl_idcache_build_fn: the writer schema of id, with the files it imports, as a reader into c->reader. */
static int build(void *ctx, int32_t id, void **out, bool *transient, struct sl_err *err)
{
	struct sl_pbwire_cache *c = ctx;
	char *text = NULL, *type = NULL;
	struct sl_pbwire_dep *deps = NULL;
	size_t ndeps = 0;
	struct sl_err ferr = {0};
	struct sl_pbwire_reader *rd = NULL;
	int rc = c->fetch(c->fetch_ctx, id, &text, &type, &deps, &ndeps, &ferr);
	if (rc && rc != SL_ENOTFOUND) {
		*transient = true; /* the registry is away: not this record's fault */
		rc = sl_err_set(err, rc, "schema id %" PRId32 ": %s", id, ferr.msg);
	} else if (rc)
		rc = sl_err_set(err, SL_ENOTFOUND, "Schema %" PRId32 " not found in the registry", id);
	else if (strcmp(type, "PROTOBUF"))
		rc = sl_err_set(err, SL_ETYPE, "schema id %" PRId32 " is a %s schema, not Protobuf", id, type);
	else if ((rc = sl_pbwire_reader_new_deps(text, deps, ndeps, c->reader, &rd, err)))
		sl_err_prefix(err, "schema id %" PRId32 ": ", id);
	free(text);
	free(type);
	sl_pbwire_deps_free(deps, ndeps);
	*out = rd;
	return rc;
}

int sl_pbwire_cache_new(sl_pbwire_fetch_fn fetch, void *ctx, const struct sl_schema *reader,
			struct sl_pbwire_cache **out, struct sl_err *err)
{
	struct sl_pbwire_cache *c = calloc(1, sizeof *c);
	if (!c)
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	c->fetch = fetch;
	c->fetch_ctx = ctx;
	c->reader = reader;
	sl_idcache_init(&c->ids, build, reader_free, c);
	*out = c;
	return 0;
}

void sl_pbwire_cache_free(struct sl_pbwire_cache *c)
{
	if (!c)
		return;
	sl_idcache_clear(&c->ids);
	free(c);
}

int sl_pbwire_cache_decode(struct sl_pbwire_cache *c, const void *p, size_t n, struct sl_record *rec,
			   struct sl_arena *a, struct sl_err *err)
{
	int32_t id = 0;
	int idx[SL_PBWIRE_MAX_INDEXES];
	size_t nidx = 0, hl = 0;
	int rc;
	if ((rc = sl_pbwire_header(p, n, &id, idx, &nidx, &hl, err)))
		return rc;
	void *rd;
	if ((rc = sl_idcache_get(&c->ids, id, &rd, err)))
		return rc;
	if ((rc = sl_pbwire_decode(rd, idx, nidx, (const unsigned char *)p + hl, n - hl, rec, a, err)))
		sl_err_prefix(err, "schema id %" PRId32 ": ", id);
	return rc;
}

/* ---- any message as JSON (the console's message browser) ---- */

#define JSON_MAX_DEPTH 32

static void b64(struct sl_buf *out, const unsigned char *p, size_t n)
{
	static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	sl_buf_putc(out, '"');
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
		char q[4] = {t[v >> 18 & 63], t[v >> 12 & 63], i + 1 < n ? t[v >> 6 & 63] : '=', i + 2 < n ? t[v & 63] : '='};
		sl_buf_append(out, q, 4);
	}
	sl_buf_putc(out, '"');
}

static void json_double(struct sl_buf *out, double d)
{
	if (d != d)
		sl_buf_puts(out, "\"NaN\"");
	else if (d > 1.7976931348623157e308)
		sl_buf_puts(out, "\"Infinity\"");
	else if (d < -1.7976931348623157e308)
		sl_buf_puts(out, "\"-Infinity\"");
	else
		sl_buf_printf(out, "%.17g", d);
}

static int msg_json(const struct sl_pb_msg *m, const unsigned char *p, size_t n, int depth, struct sl_buf *out,
		    struct sl_err *err);

/* One scalar of field f (raw: the varint or fixed bits) as proto3's JSON mapping writes it: 64-bit integers as
 * strings, enums by name (the number when the schema has no such value), bool, float and double as JSON. */
static void scalar_json(const struct sl_pb_field *f, uint64_t raw, struct sl_buf *out)
{
	switch (f->type) {
	case PB_DOUBLE: {
		double d;
		memcpy(&d, &raw, 8);
		json_double(out, d);
		return;
	}
	case PB_FLOAT: {
		float x;
		uint32_t r32 = (uint32_t)raw;
		memcpy(&x, &r32, 4);
		json_double(out, (double)x);
		return;
	}
	case PB_BOOL: sl_buf_puts(out, raw ? "true" : "false"); return;
	case PB_INT64: case PB_SFIXED64: sl_buf_printf(out, "\"%" PRId64 "\"", (int64_t)raw); return;
	case PB_UINT64: case PB_FIXED64: sl_buf_printf(out, "\"%" PRIu64 "\"", raw); return;
	case PB_SINT64: sl_buf_printf(out, "\"%" PRId64 "\"", unzigzag(raw)); return;
	case PB_SINT32: sl_buf_printf(out, "%" PRId32, (int32_t)unzigzag(raw & 0xffffffffu)); return;
	case PB_UINT32: case PB_FIXED32: sl_buf_printf(out, "%" PRIu32, (uint32_t)raw); return;
	case PB_ENUM: {
		int32_t v = (int32_t)(uint32_t)raw;
		for (size_t i = 0; f->en && i < f->en->nvals; i++)
			if (f->en->vnums[i] == v) {
				sl_buf_json_str(out, f->en->vnames[i], strlen(f->en->vnames[i]));
				return;
			}
		sl_buf_printf(out, "%" PRId32, v);
		return;
	}
	default: sl_buf_printf(out, "%" PRId32, (int32_t)(uint32_t)raw); return;
	}
}

/* Reads one scalar of wire type wt into *raw. */
static int read_raw(struct rd *r, int wt, uint64_t *raw)
{
	if (wt == 0)
		return get_varint(r, raw);
	size_t w = wt == 1 ? 8 : 4;
	if ((size_t)(r->end - r->p) < w)
		return sl_err_set(r->err, SL_EINVAL, "truncated fixed%zu", w * 8);
	uint64_t x = 0;
	for (size_t i = 0; i < w; i++)
		x |= (uint64_t)r->p[i] << (8 * i);
	r->p += w;
	*raw = x;
	return 0;
}

/* A map entry's key as a JSON object key (proto3: always a string). */
static int map_key_json(const struct sl_pb_field *kf, const unsigned char *p, size_t n, struct sl_buf *out,
			struct sl_err *err)
{
	if (kf->type == PB_STRING) {
		sl_buf_json_str(out, (const char *)p, n);
		return 0;
	}
	struct sl_buf tmp;
	sl_buf_init(&tmp);
	struct rd r = {.p = p, .end = p + n, .err = err};
	uint64_t raw = 0;
	int rc = read_raw(&r, wire_type_of(kf->type), &raw);
	if (!rc) {
		scalar_json(kf, raw, &tmp);
		const char *s = sl_buf_cstr(&tmp);
		size_t l = strlen(s);
		if (l >= 2 && s[0] == '"')
			sl_buf_append(out, s, l);
		else
			sl_buf_json_str(out, s, l);
	}
	sl_buf_free(&tmp);
	return rc;
}

/* One value of field f, of wire type wt, from r into out. */
static int value_json(const struct sl_pb_field *f, int wt, struct rd *r, int depth, struct sl_buf *out)
{
	if (wt == 2) {
		uint64_t len;
		if (get_varint(r, &len))
			return SL_EINVAL;
		if (len > (uint64_t)(r->end - r->p))
			return sl_err_set(r->err, SL_EINVAL, "field '%s': length %" PRIu64 " past the end of the message",
					  f->name, len);
		const unsigned char *v = r->p;
		r->p += len;
		if (f->type == PB_STRING) {
			sl_buf_json_str(out, (const char *)v, (size_t)len);
			return 0;
		}
		if (f->type == PB_BYTES) {
			b64(out, v, (size_t)len);
			return 0;
		}
		if (f->type == PB_MESSAGE && f->msg) {
			if (is_timestamp(f)) {
				int64_t ms;
				if (timestamp_ms(v, (size_t)len, f->name, &ms, r->err))
					return SL_EINVAL;
				time_t sec = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
				struct tm tm;
				gmtime_r(&sec, &tm);
				sl_buf_printf(out, "\"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\"", tm.tm_year + 1900, tm.tm_mon + 1,
					      tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms - (int64_t)sec * 1000));
				return 0;
			}
			return msg_json(f->msg, v, (size_t)len, depth + 1, out, r->err);
		}
		return sl_err_set(r->err, SL_EINVAL, "field '%s': a length-delimited value for a scalar field", f->name);
	}
	if (wt != wire_type_of(f->type) || f->type == PB_STRING || f->type == PB_BYTES || f->type == PB_MESSAGE)
		return sl_err_set(r->err, SL_EINVAL, "field '%s': wire type %d does not fit its type", f->name, wt);
	uint64_t raw;
	if (read_raw(r, wt, &raw))
		return SL_EINVAL;
	scalar_json(f, raw, out);
	return 0;
}

/* Every occurrence of field f in the message, as JSON: the last one for a singular field, an array for a repeated
 * one (packed runs unpacked), an object for a map. *seen: whether the field occurs at all. */
static int field_json(const struct sl_pb_field *f, const unsigned char *p, size_t n, int depth, struct sl_buf *out,
		      bool *seen, struct sl_err *err)
{
	bool repeated = f->label == SL_PB_LABEL_REPEATED;
	bool map = repeated && f->msg && f->msg->map_entry && f->msg->nfields == 2;
	struct rd r = {.p = p, .end = p + n, .err = err};
	const unsigned char *last = NULL;
	int lastwt = 0;
	size_t count = 0;
	*seen = false;
	while (r.p < r.end) {
		uint64_t key;
		if (get_varint(&r, &key))
			return SL_EINVAL;
		int wt = (int)(key & 7);
		const unsigned char *at = r.p;
		if ((key >> 3) != (uint64_t)f->number) {
			if (skip(&r, wt))
				return SL_EINVAL;
			continue;
		}
		if (!repeated) {
			last = at;
			lastwt = wt;
			if (skip(&r, wt))
				return SL_EINVAL;
			*seen = true;
			continue;
		}
		if (!*seen)
			sl_buf_putc(out, map ? '{' : '[');
		*seen = true;
		if (map) {
			uint64_t len;
			if (wt != 2 || get_varint(&r, &len) || len > (uint64_t)(r.end - r.p))
				return sl_err_set(err, SL_EINVAL, "field '%s': a map entry that is not a message", f->name);
			const unsigned char *e = r.p;
			r.p += len;
			const struct sl_pb_field *kf = &f->msg->fields[0], *vf = &f->msg->fields[1];
			if (kf->number != 1)
				kf = &f->msg->fields[1], vf = &f->msg->fields[0];
			/* the entry's key and value, each the last occurrence; absent is the type's default */
			struct rd er = {.p = e, .end = e + len, .err = err};
			const unsigned char *kp = NULL, *vp = NULL;
			size_t kn = 0;
			int vwt = 0;
			while (er.p < er.end) {
				uint64_t k2;
				if (get_varint(&er, &k2))
					return SL_EINVAL;
				int w2 = (int)(k2 & 7);
				const unsigned char *a2 = er.p;
				if (skip(&er, w2))
					return SL_EINVAL;
				if ((k2 >> 3) == (uint64_t)kf->number) {
					kp = a2;
					kn = (size_t)(er.p - a2);
					if (w2 == 2) { /* past the length prefix */
						struct rd lr = {.p = a2, .end = er.p, .err = err};
						uint64_t l2;
						get_varint(&lr, &l2);
						kp = lr.p;
						kn = (size_t)l2;
					}
				} else if ((k2 >> 3) == (uint64_t)vf->number) {
					vp = a2;
					vwt = w2;
				}
			}
			if (count++)
				sl_buf_putc(out, ',');
			if (kp) {
				if (map_key_json(kf, kp, kn, out, err))
					return SL_EINVAL;
			} else
				sl_buf_puts(out, kf->type == PB_STRING ? "\"\"" : kf->type == PB_BOOL ? "\"false\"" : "\"0\"");
			sl_buf_putc(out, ':');
			if (vp) {
				struct rd vr = {.p = vp, .end = er.end, .err = err};
				if (value_json(vf, vwt, &vr, depth, out))
					return SL_EINVAL;
			} else
				sl_buf_puts(out, vf->type == PB_STRING || vf->type == PB_BYTES ? "\"\""
						 : vf->type == PB_MESSAGE ? "{}" : vf->type == PB_BOOL ? "false" : "0");
			continue;
		}
		if (wt == 2 && wire_type_of(f->type) != 2) { /* a packed run of scalars */
			uint64_t len;
			if (get_varint(&r, &len) || len > (uint64_t)(r.end - r.p))
				return sl_err_set(err, SL_EINVAL, "field '%s': packed length past the end", f->name);
			struct rd pr = {.p = r.p, .end = r.p + len, .err = err};
			r.p += len;
			while (pr.p < pr.end) {
				uint64_t raw;
				if (read_raw(&pr, wire_type_of(f->type), &raw))
					return SL_EINVAL;
				if (count++)
					sl_buf_putc(out, ',');
				scalar_json(f, raw, out);
			}
			continue;
		}
		if (count++)
			sl_buf_putc(out, ',');
		if (value_json(f, wt, &r, depth, out))
			return SL_EINVAL;
	}
	if (repeated && *seen)
		sl_buf_putc(out, map ? '}' : ']');
	if (!repeated && last) {
		struct rd lr = {.p = last, .end = p + n, .err = err};
		return value_json(f, lastwt, &lr, depth, out);
	}
	return 0;
}

static int msg_json(const struct sl_pb_msg *m, const unsigned char *p, size_t n, int depth, struct sl_buf *out,
		    struct sl_err *err)
{
	if (depth > JSON_MAX_DEPTH)
		return sl_err_set(err, SL_EINVAL, "messages nested deeper than %d", JSON_MAX_DEPTH);
	/* The whole message must be well formed before anything is written (skip checks every length). */
	struct rd r = {.p = p, .end = p + n, .err = err};
	while (r.p < r.end) {
		uint64_t key;
		if (get_varint(&r, &key))
			return SL_EINVAL;
		if ((key >> 3) == 0)
			return sl_err_set(err, SL_EINVAL, "field number 0");
		if (skip(&r, (int)(key & 7)))
			return SL_EINVAL;
	}
	sl_buf_putc(out, '{');
	size_t k = 0;
	for (size_t i = 0; i < m->nfields; i++) {
		size_t mark = out->len;
		if (k)
			sl_buf_putc(out, ',');
		sl_buf_json_str(out, m->fields[i].name, strlen(m->fields[i].name));
		sl_buf_putc(out, ':');
		bool seen;
		if (field_json(&m->fields[i], p, n, depth, out, &seen, err))
			return SL_EINVAL;
		if (seen)
			k++;
		else
			out->len = mark; /* absent: left out, as proto3's JSON leaves out default values */
	}
	sl_buf_putc(out, '}');
	return sl_buf_ok(out) ? 0 : sl_err_set(err, SL_ENOMEM, "out of memory");
}

int sl_pbwire_json(const struct sl_pb_schema *s, const void *p, size_t n, struct sl_buf *out, struct sl_err *err)
{
	int32_t id;
	int idx[SL_PBWIRE_MAX_INDEXES];
	size_t nidx = 0, hl = 0;
	int rc = sl_pbwire_header(p, n, &id, idx, &nidx, &hl, err);
	if (rc)
		return rc;
	const struct sl_pb_msg *m = sl_protobuf_by_index(s, idx, nidx);
	if (!m)
		return sl_err_set(err, SL_EINVAL, "schema id %" PRId32 ": the message indexes name no message of its schema",
				  id);
	size_t mark = out->len;
	if ((rc = msg_json(m, (const unsigned char *)p + hl, n - hl, 0, out, err))) {
		out->len = mark;
		sl_err_prefix(err, "schema id %" PRId32 ", message %s: ", id, m->full);
	}
	return rc;
}
