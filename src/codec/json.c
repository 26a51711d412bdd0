/* The parts of json.h written in C over the shim's primitives: path lookup, rendering values back to JSON text, and
 * the error-offset scanner that turns simdjson's bare error codes into "at byte N" for users (error path only). */
#include "codec/json.h"

#include <string.h>

#include "core/record.h"


const char *sl_json_type_name(enum sl_json_type t)
{
	switch (t) {
	case SL_JSON_NULL: return "null";
	case SL_JSON_BOOL: return "boolean";
	case SL_JSON_INT:
	case SL_JSON_UINT:
	case SL_JSON_DOUBLE: return "number";
	case SL_JSON_STRING: return "string";
	case SL_JSON_ARRAY: return "array";
	case SL_JSON_OBJECT: return "object";
	default: return "missing";
	}
}

bool sl_json_path(struct sl_json_val root, const char *path, size_t len, struct sl_json_val *out)
{
	struct sl_json_val cur = root;
	size_t i = 0;
	if (len && path[0] == '$') {
		i = 1;
		if (i < len && path[i] == '.')
			i++;
	}
	while (i < len) {
		if (path[i] == '[') {
			size_t idx = 0, j = i + 1;
			if (j >= len || path[j] < '0' || path[j] > '9')
				goto missing;
			while (j < len && path[j] >= '0' && path[j] <= '9') {
				if (idx > (SIZE_MAX - 9) / 10)
					goto missing;
				idx = idx * 10 + (size_t)(path[j++] - '0');
			}
			if (j >= len || path[j] != ']' || !sl_json_at(cur, idx, &cur))
				goto missing;
			i = j + 1;
			if (i < len && path[i] == '.')
				i++;
			continue;
		}
		size_t j = i;
		while (j < len && path[j] != '.' && path[j] != '[')
			j++;
		if (j == i || !sl_json_get(cur, path + i, j - i, &cur))
			goto missing;
		i = j;
		if (i < len && path[i] == '.') {
			i++;
			if (i == len)
				goto missing;
		}
	}
	*out = cur;
	return sl_json_valid(cur);
missing:
	memset(out, 0, sizeof *out);
	return false;
}

struct render {
	struct sl_buf *out;
	size_t limit; /* stop once out->len passes this */
};

static void render(struct render *r, struct sl_json_val v)
{
	if (r->out->len > r->limit)
		return;
	struct sl_json_iter it;
	struct sl_json_val x;
	const char *s;
	size_t n;
	char tmp[32];
	switch (sl_json_type(v)) {
	case SL_JSON_NULL: sl_buf_puts(r->out, "null"); break;
	case SL_JSON_BOOL: {
		bool b = false;
		sl_json_bool(v, &b);
		sl_buf_puts(r->out, b ? "true" : "false");
		break;
	}
	case SL_JSON_INT: {
		int64_t i = 0;
		sl_json_int64(v, &i);
		sl_buf_printf(r->out, "%lld", (long long)i);
		break;
	}
	case SL_JSON_UINT: {
		uint64_t u = 0;
		sl_json_uint64_internal(v, &u);
		sl_buf_printf(r->out, "%llu", (unsigned long long)u);
		break;
	}
	case SL_JSON_DOUBLE: {
		double d = 0;
		sl_json_double(v, &d);
		if (sl_double_format(d, tmp))
			strcpy(tmp, "null");
		/* Keep a double a double: "1.0" was written with a point, so "1" would read back as an integer. */
		sl_buf_puts(r->out, tmp);
		if (!strpbrk(tmp, ".eEn"))
			sl_buf_puts(r->out, ".0");
		break;
	}
	case SL_JSON_STRING:
		sl_json_str(v, &s, &n);
		sl_buf_json_str(r->out, s, n);
		break;
	case SL_JSON_ARRAY: {
		sl_buf_putc(r->out, '[');
		sl_json_iter_init(&it, v);
		for (bool first = true; sl_json_array_next(&it, &x); first = false) {
			if (!first)
				sl_buf_putc(r->out, ',');
			render(r, x);
		}
		sl_buf_putc(r->out, ']');
		break;
	}
	case SL_JSON_OBJECT: {
		sl_buf_putc(r->out, '{');
		sl_json_iter_init(&it, v);
		for (bool first = true; sl_json_object_next(&it, &s, &n, &x); first = false) {
			if (!first)
				sl_buf_putc(r->out, ',');
			sl_buf_json_str(r->out, s, n);
			sl_buf_putc(r->out, ':');
			render(r, x);
		}
		sl_buf_putc(r->out, '}');
		break;
	}
	default: sl_buf_puts(r->out, "(missing)"); break;
	}
}

void sl_json_render(struct sl_json_val v, struct sl_buf *out)
{
	struct render r = {out, SIZE_MAX};
	render(&r, v);
}

void sl_json_render_short(struct sl_json_val v, size_t max, struct sl_buf *out)
{
	size_t start = out->len;
	struct render r = {out, start + max};
	render(&r, v);
	if (out->len - start > max) {
		out->len = start + max;
		sl_buf_puts(out, "\xe2\x80\xa6"); /* … */
	}
}

/* ---- error offsets ----
 * A recursive-descent recogniser with an explicit stack. It reports where the text stops being JSON; simdjson has
 * already said that it is not. Depth is capped so that a hostile document cannot exhaust anything here either. */

struct scan {
	const char *s;
	size_t n, i;
};

static void ws(struct scan *c)
{
	while (c->i < c->n && (c->s[c->i] == ' ' || c->s[c->i] == '\t' || c->s[c->i] == '\n' || c->s[c->i] == '\r'))
		c->i++;
}

static bool lit(struct scan *c, const char *w)
{
	size_t k = strlen(w);
	for (size_t j = 0; j < k; j++, c->i++)
		if (c->i >= c->n || c->s[c->i] != w[j])
			return false;
	return true;
}

static bool str(struct scan *c)
{
	c->i++; /* opening quote */
	while (c->i < c->n) {
		unsigned char ch = (unsigned char)c->s[c->i];
		if (ch == '"') {
			c->i++;
			return true;
		}
		if (ch < 0x20)
			return false;
		if (ch == '\\') {
			c->i++;
			if (c->i >= c->n)
				return false;
			char e = c->s[c->i];
			if (e == 'u') {
				for (int k = 0; k < 4; k++) {
					c->i++;
					if (c->i >= c->n)
						return false;
					char h = c->s[c->i];
					if (!((h >= '0' && h <= '9') || (h >= 'a' && h <= 'f') || (h >= 'A' && h <= 'F')))
						return false;
				}
			} else if (!strchr("\"\\/bfnrt", e) || !e)
				return false;
		}
		c->i++;
	}
	return false;
}

static bool digit(struct scan *c) { return c->i < c->n && c->s[c->i] >= '0' && c->s[c->i] <= '9'; }

static bool num(struct scan *c)
{
	if (c->s[c->i] == '-')
		c->i++;
	if (!digit(c))
		return false;
	if (c->s[c->i] == '0')
		c->i++;
	else
		while (digit(c))
			c->i++;
	if (c->i < c->n && c->s[c->i] == '.') {
		c->i++;
		if (!digit(c))
			return false;
		while (digit(c))
			c->i++;
	}
	if (c->i < c->n && (c->s[c->i] == 'e' || c->s[c->i] == 'E')) {
		c->i++;
		if (c->i < c->n && (c->s[c->i] == '+' || c->s[c->i] == '-'))
			c->i++;
		if (!digit(c))
			return false;
		while (digit(c))
			c->i++;
	}
	return true;
}

long sl_json_error_offset(const char *buf, size_t len)
{
	enum { MAXD = 1024 };
	char stack[MAXD]; /* '[' or '{' */
	int depth = 0;
	struct scan c = {buf, len, 0};
	ws(&c);
	for (;;) {
		/* Expect a value. */
		if (c.i >= c.n)
			return (long)c.i;
		char ch = c.s[c.i];
		if (ch == '{' || ch == '[') {
			if (depth == MAXD)
				return (long)c.i;
			stack[depth++] = ch;
			c.i++;
			ws(&c);
			if (c.i >= c.n)
				return (long)c.i;
			if (ch == '[' && c.s[c.i] == ']') {
				depth--;
				c.i++;
				goto after_value;
			}
			if (ch == '{') {
				if (c.s[c.i] == '}') {
					depth--;
					c.i++;
					goto after_value;
				}
				goto member_key;
			}
			continue;
		} else if (ch == '"') {
			if (!str(&c))
				return (long)c.i;
		} else if (ch == 't') {
			if (!lit(&c, "true"))
				return (long)c.i;
		} else if (ch == 'f') {
			if (!lit(&c, "false"))
				return (long)c.i;
		} else if (ch == 'n') {
			if (!lit(&c, "null"))
				return (long)c.i;
		} else if (ch == '-' || (ch >= '0' && ch <= '9')) {
			if (!num(&c))
				return (long)c.i;
		} else
			return (long)c.i;
	after_value:
		ws(&c);
		if (depth == 0)
			return c.i == c.n ? -1 : (long)c.i;
		if (c.i >= c.n)
			return (long)c.i;
		if (c.s[c.i] == ',') {
			c.i++;
			ws(&c);
			if (stack[depth - 1] == '{')
				goto member_key;
			continue;
		}
		if ((stack[depth - 1] == '[' && c.s[c.i] == ']') || (stack[depth - 1] == '{' && c.s[c.i] == '}')) {
			depth--;
			c.i++;
			goto after_value;
		}
		return (long)c.i;
	member_key:
		if (c.i >= c.n || c.s[c.i] != '"' || !str(&c))
			return (long)c.i;
		ws(&c);
		if (c.i >= c.n || c.s[c.i] != ':')
			return (long)c.i;
		c.i++;
		ws(&c);
	}
}
