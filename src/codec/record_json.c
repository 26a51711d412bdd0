/* Record <-> JSON payload (see record_json.h). Decoding is strict about types (a text column takes only a JSON
 * string, an int column only an integer that fits 32 bits): a payload on our own topic that does not match its schema
 * is a producer bug or a schema change, and the dead-letter reason should say so rather than coerce silently. The
 * only leniency is for the types JSON has no literal for: timestamp also accepts integer milliseconds and date
 * integer days, the forms other Kafka producers commonly write. */
#include "codec/record_json.h"

#include <string.h>

static int bad(struct sl_err *err, const struct sl_field *f, const char *want, struct sl_json_val v)
{
	struct sl_buf b;
	sl_buf_init(&b);
	sl_json_render_short(v, 60, &b);
	sl_err_set(err, SL_ETYPE, "column '%s': expected %s, got %s %s", f->name, want,
		   sl_json_type_name(sl_json_type(v)), sl_buf_ok(&b) ? sl_buf_cstr(&b) : "");
	sl_buf_free(&b);
	return SL_ETYPE;
}

/* sl_buf_json_str escapes byte by byte; payload text is mostly plain, so copy runs of safe bytes with memcpy and
 * hand only the rare byte that needs escaping to the general routine. This halves encode time for the seed record. */
static void put_json_str(struct sl_buf *out, const char *s, size_t n)
{
	sl_buf_putc(out, '"');
	size_t i = 0;
	while (i < n) {
		size_t j = i;
		while (j < n && (unsigned char)s[j] >= 0x20 && s[j] != '"' && s[j] != '\\')
			j++;
		sl_buf_append(out, s + i, j - i);
		if (j < n) {
			/* The general routine adds quotes around the one byte; write it and drop them. */
			size_t at = out->len;
			sl_buf_json_str(out, s + j, 1);
			if (sl_buf_ok(out)) {
				memmove(out->data + at, out->data + at + 1, out->len - at - 2);
				out->len -= 2;
			}
			j++;
		}
		i = j;
	}
	sl_buf_putc(out, '"');
}

int sl_record_to_json(const struct sl_record *r, struct sl_buf *out, struct sl_err *err)
{
	const struct sl_schema *s = r->schema;
	char tmp[48];
	sl_buf_putc(out, '{');
	for (size_t i = 0; i < s->n; i++) {
		const struct sl_field *f = &s->fields[i];
		const struct sl_value *v = &r->v[i];
		if (i)
			sl_buf_putc(out, ',');
		sl_buf_json_str(out, f->name, strlen(f->name));
		sl_buf_putc(out, ':');
		if (v->null) {
			sl_buf_puts(out, "null");
			continue;
		}
		switch (f->type) {
		case SL_T_TEXT: put_json_str(out, v->u.s.p, v->u.s.n); break;
		case SL_T_INT: sl_buf_printf(out, "%d", v->u.i32); break;
		case SL_T_BIGINT: sl_buf_printf(out, "%lld", (long long)v->u.i64); break;
		case SL_T_DOUBLE:
			if (sl_double_format(v->u.d, tmp))
				return sl_err_set(err, SL_EINVAL, "column '%s': %g cannot be written as JSON", f->name,
						  v->u.d);
			sl_buf_puts(out, tmp);
			/* Keep it a JSON double so a reader that types by literal sees a double. */
			if (!strpbrk(tmp, ".eE"))
				sl_buf_puts(out, ".0");
			break;
		case SL_T_BOOLEAN: sl_buf_puts(out, v->u.b ? "true" : "false"); break;
		case SL_T_UUID:
			sl_uuid_format(v->u.uuid, tmp);
			sl_buf_putc(out, '"');
			sl_buf_append(out, tmp, SL_UUID_STR_LEN);
			sl_buf_putc(out, '"');
			break;
		case SL_T_TIMESTAMP:
			if (sl_timestamp_format(v->u.i64, tmp))
				return sl_err_set(err, SL_EINVAL, "column '%s': timestamp %lld ms is outside years 0000-9999",
						  f->name, (long long)v->u.i64);
			sl_buf_putc(out, '"');
			sl_buf_puts(out, tmp);
			sl_buf_putc(out, '"');
			break;
		case SL_T_DATE:
			if (sl_date_format(v->u.days, tmp))
				return sl_err_set(err, SL_EINVAL, "column '%s': date %d days is outside years 0000-9999",
						  f->name, v->u.days);
			sl_buf_putc(out, '"');
			sl_buf_puts(out, tmp);
			sl_buf_putc(out, '"');
			break;
		default: return sl_err_set(err, SL_EINVAL, "column '%s': unknown type", f->name);
		}
	}
	sl_buf_putc(out, '}');
	if (!sl_buf_ok(out))
		return sl_err_set(err, SL_ENOMEM, "record: out of memory encoding JSON");
	return 0;
}

static int decode_value(const struct sl_field *f, struct sl_json_val j, struct sl_value *v, struct sl_arena *a,
			struct sl_err *err)
{
	const char *s;
	size_t n;
	int64_t i;
	enum sl_json_type t = sl_json_type(j);
	if (t == SL_JSON_NULL) {
		v->null = true;
		return 0;
	}
	switch (f->type) {
	case SL_T_TEXT:
		if (sl_json_str(j, &s, &n))
			return bad(err, f, "a string", j);
		v->u.s.p = n ? sl_arena_memdup(a, s, n) : "";
		if (!v->u.s.p)
			return sl_err_set(err, SL_ENOMEM, "column '%s': out of memory", f->name);
		v->u.s.n = n;
		break;
	case SL_T_INT:
		if (sl_json_int64(j, &i) || i < INT32_MIN || i > INT32_MAX)
			return bad(err, f, "an integer in the int range", j);
		v->u.i32 = (int32_t)i;
		break;
	case SL_T_BIGINT:
		if (sl_json_int64(j, &v->u.i64))
			return bad(err, f, "an integer in the bigint range", j);
		break;
	case SL_T_DOUBLE:
		if (sl_json_double(j, &v->u.d))
			return bad(err, f, "a number", j);
		break;
	case SL_T_BOOLEAN:
		if (sl_json_bool(j, &v->u.b))
			return bad(err, f, "true or false", j);
		break;
	case SL_T_UUID:
		if (sl_json_str(j, &s, &n) || sl_uuid_parse(s, n, v->u.uuid))
			return bad(err, f, "a uuid string", j);
		break;
	case SL_T_TIMESTAMP:
		if (t == SL_JSON_INT) {
			sl_json_int64(j, &v->u.i64);
			break;
		}
		if (sl_json_str(j, &s, &n) || sl_timestamp_parse(s, n, &v->u.i64))
			return bad(err, f, "an ISO-8601 timestamp string or integer milliseconds", j);
		break;
	case SL_T_DATE:
		if (t == SL_JSON_INT) {
			if (sl_json_int64(j, &i) || i < INT32_MIN || i > INT32_MAX)
				return bad(err, f, "a date", j);
			v->u.days = (int32_t)i;
			break;
		}
		if (sl_json_str(j, &s, &n) || sl_date_parse(s, n, &v->u.days))
			return bad(err, f, "a YYYY-MM-DD date string or integer days", j);
		break;
	default: return sl_err_set(err, SL_EINVAL, "column '%s': unknown type", f->name);
	}
	v->null = false;
	return 0;
}

int sl_record_from_json(struct sl_record *r, const struct sl_schema *s, struct sl_json_val obj, struct sl_arena *a,
			struct sl_err *err)
{
	if (sl_json_type(obj) != SL_JSON_OBJECT)
		return sl_err_set(err, SL_ETYPE, "record: expected a JSON object, got %s",
				  sl_json_type_name(sl_json_type(obj)));
	int rc = sl_record_init(r, s, a, err);
	if (rc)
		return rc;
	struct sl_json_iter it;
	struct sl_json_val v;
	const char *key;
	size_t kl;
	sl_json_iter_init(&it, obj);
	size_t next = 0; /* sluice writes the fields in schema order: try the one after the last match first */
	while (sl_json_object_next(&it, &key, &kl, &v)) {
		int i = sl_schema_find_from(s, key, kl, next);
		if (i < 0)
			continue;
		next = (size_t)i + 1;
		if ((rc = decode_value(&s->fields[i], v, &r->v[i], a, err)))
			return rc;
	}
	return sl_record_check(r, err);
}

int sl_record_decode_json(struct sl_record *r, const struct sl_schema *s, struct sl_json_parser *p, const char *buf,
			  size_t len, struct sl_arena *a, struct sl_err *err)
{
	struct sl_json_val root;
	int rc = sl_json_parse(p, buf, len, &root, err);
	if (rc)
		return rc;
	return sl_record_from_json(r, s, root, a, err);
}
