/* Compiler and interpreter of the mapping language (see mapping.h). Compilation turns each column spec into a small
 * struct: a pre-split path (keys and indexes, so applying never re-reads the spec text), a template as alternating
 * literal and path parts, a function, and a default already converted to the column's type. Applying walks the columns
 * once, resolves each source against the parsed record, casts, and writes the value into the arena. */
#include "mapping/mapping.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

struct seg {
	const char *key; /* into path.text; NULL for an index */
	size_t len;
	size_t index;
};

struct path {
	char *text; /* as written, for messages; segments point into it */
	size_t nseg;
	struct seg *segs;
};

enum fn { FN_NONE, FN_UUID, FN_NOW };
enum src { SRC_NONE, SRC_PATH, SRC_TEMPLATE, SRC_FN };

struct tpl_part {
	const char *lit; /* literal text before the placeholder (into column.tpl_lits) */
	size_t litlen;
	bool has_path;   /* false only for a trailing literal */
	struct path path;
};

struct column {
	const char *name; /* the schema's copy */
	enum sl_type type;
	bool required;
	enum src src;
	struct path path;
	char *tpl_text;   /* the template as written */
	char *tpl_lits;   /* unescaped literals */
	struct tpl_part *parts;
	size_t nparts;
	enum fn fn;
	int unit;         /* epoch unit for numbers: 0 = by magnitude, 1 = seconds, 1000 = milliseconds */
	bool has_default;
	enum fn def_fn;
	struct sl_value def;
	char *def_text;   /* storage of a text default */
};

struct sl_mapping {
	struct sl_schema schema;
	size_t n;
	struct column *cols;
};

static const char *const spec_keys[] = {"path", "template", "expr", "type", "default", "required", "unit"};
static const char *const fn_names[] = {"uuid", "now"};

/* ---- env ---- */

static inline uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void sl_mapping_env_init(struct sl_mapping_env *env)
{
	memset(env, 0, sizeof *env);
	if (getrandom(&env->rng, sizeof env->rng, 0) != sizeof env->rng) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		env->rng = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ (uint64_t)(uintptr_t)env;
	}
	sl_buf_init(&env->scratch);
}

void sl_mapping_env_free(struct sl_mapping_env *env)
{
	sl_buf_free(&env->scratch);
}

/* ---- compile ---- */

static void path_free(struct path *p)
{
	free(p->text);
	free(p->segs);
	memset(p, 0, sizeof *p);
}

/* Why a path is malformed, or NULL when it is fine. Paths are dotted keys with [n] indexes; "$" is the record. */
static const char *path_compile(const char *s, size_t n, struct path *out)
{
	memset(out, 0, sizeof *out);
	while (n && (s[0] == ' ' || s[0] == '\t'))
		s++, n--;
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	if (!n)
		return "the path is empty";
	out->text = strndup(s, n);
	out->segs = calloc(n + 1, sizeof *out->segs);
	if (!out->text || !out->segs)
		return "out of memory";
	const char *t = out->text;
	size_t i = 0;
	if (t[0] == '$') {
		i = 1;
		if (i < n && t[i] != '.' && t[i] != '[')
			return "'$' must be followed by '.' or '['";
		if (i < n && t[i] == '.') {
			i++;
			if (i == n)
				return "nothing after '$.'";
		}
	}
	while (i < n) {
		struct seg *g = &out->segs[out->nseg];
		if (t[i] == '[') {
			size_t j = i + 1, idx = 0;
			if (j >= n || t[j] < '0' || t[j] > '9')
				return "'[' must be followed by an array index";
			while (j < n && t[j] >= '0' && t[j] <= '9') {
				if (idx > 100000000)
					return "array index too large";
				idx = idx * 10 + (size_t)(t[j++] - '0');
			}
			if (j >= n || t[j] != ']')
				return "unclosed '[' in path";
			g->index = idx;
			out->nseg++;
			i = j + 1;
			if (i < n && t[i] == '.') {
				i++;
				if (i == n)
					return "the path ends with '.'";
			} else if (i < n && t[i] != '[')
				return "expected '.' or '[' after ']'";
			continue;
		}
		size_t j = i;
		while (j < n && t[j] != '.' && t[j] != '[') {
			if (t[j] == ']' || t[j] == '{' || t[j] == '}' || t[j] == ' ' || t[j] == '"')
				return "a path key cannot contain ']', '{', '}', '\"' or spaces";
			j++;
		}
		if (j == i)
			return "empty key in path (two dots, or a leading dot)";
		g->key = t + i;
		g->len = j - i;
		out->nseg++;
		i = j;
		if (i < n && t[i] == '.') {
			i++;
			if (i == n)
				return "the path ends with '.'";
		}
	}
	return NULL;
}

static bool path_eval(const struct path *p, struct sl_json_val root, struct sl_json_val *out)
{
	struct sl_json_val cur = root;
	for (size_t i = 0; i < p->nseg; i++) {
		const struct seg *g = &p->segs[i];
		if (g->key ? !sl_json_get(cur, g->key, g->len, &cur) : !sl_json_at(cur, g->index, &cur))
			return false;
	}
	*out = cur;
	return sl_json_type(cur) > SL_JSON_NULL;
}

static int cfg_err(struct sl_err *err, const struct sl_cfg_node *n, int line, const char *col, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/* "file:line: column 'x': message". line overrides the node's own line when > 0 (for map keys). */
static int cfg_err(struct sl_err *err, const struct sl_cfg_node *n, int line, const char *col, const char *fmt, ...)
{
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	const char *file = n && n->file ? n->file : "<mapping>";
	int ln = line > 0 ? line : n ? n->line : 0;
	if (col)
		return sl_err_set(err, SL_ECONFIG, "%s:%d: column '%s': %s", file, ln, col, msg);
	return sl_err_set(err, SL_ECONFIG, "%s:%d: %s", file, ln, msg);
}

/* "uuid()" -> FN_UUID. Returns FN_NONE and sets *why when s is not a call of a known function. */
static enum fn fn_parse(const char *s, const char **why, char *name_out, size_t name_sz)
{
	while (*s == ' ')
		s++;
	size_t i = 0;
	while (s[i] && (s[i] == '_' || (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
			(s[i] >= '0' && s[i] <= '9')))
		i++;
	snprintf(name_out, name_sz, "%.*s", (int)i, s);
	const char *r = s + i;
	while (*r == ' ')
		r++;
	if (i == 0 || r[0] != '(') {
		*why = "is not a function call like uuid() or now()";
		return FN_NONE;
	}
	r++;
	while (*r == ' ')
		r++;
	if (r[0] != ')') {
		*why = "takes no arguments";
		return FN_NONE;
	}
	r++;
	while (*r == ' ')
		r++;
	if (*r) {
		*why = "has text after the closing ')'";
		return FN_NONE;
	}
	if (!strcmp(name_out, "uuid"))
		return FN_UUID;
	if (!strcmp(name_out, "now"))
		return FN_NOW;
	*why = "is not a known function";
	return FN_NONE;
}

static bool fn_fits(enum fn f, enum sl_type t)
{
	if (f == FN_UUID)
		return t == SL_T_UUID || t == SL_T_TEXT;
	return t == SL_T_TIMESTAMP || t == SL_T_TEXT || t == SL_T_DATE || t == SL_T_BIGINT;
}

static int cast_text(const struct column *c, const char *s, size_t n, struct sl_value *v, struct sl_arena *a);

static int template_compile(struct column *c, const char *t, char *why, size_t whysz)
{
	size_t n = strlen(t);
	c->tpl_text = strdup(t);
	c->tpl_lits = malloc(n + 1);
	c->parts = calloc(n / 2 + 2, sizeof *c->parts);
	if (!c->tpl_text || !c->tpl_lits || !c->parts) {
		snprintf(why, whysz, "out of memory");
		return -1;
	}
	char *lit = c->tpl_lits, *o = lit;
	size_t i = 0;
	bool any = false;
	while (i <= n) {
		if (i == n || (t[i] == '{' && t[i + 1] != '{')) {
			struct tpl_part *p = &c->parts[c->nparts++];
			p->lit = lit;
			p->litlen = (size_t)(o - lit);
			lit = o;
			if (i == n)
				break;
			const char *close = strchr(t + i + 1, '}');
			const char *open = strchr(t + i + 1, '{');
			if (!close || (open && open < close)) {
				snprintf(why, whysz, "template \"%s\": '{' at offset %zu is not closed", t, i);
				return -1;
			}
			const char *pwhy = path_compile(t + i + 1, (size_t)(close - (t + i + 1)), &p->path);
			if (pwhy) {
				snprintf(why, whysz, "template \"%s\": placeholder at offset %zu: %s", t, i, pwhy);
				return -1;
			}
			p->has_path = true;
			any = true;
			i = (size_t)(close - t) + 1;
			continue;
		}
		if (t[i] == '{') { /* "{{" */
			*o++ = '{';
			i += 2;
			continue;
		}
		if (t[i] == '}') {
			if (t[i + 1] != '}') {
				snprintf(why, whysz, "template \"%s\": '}' at offset %zu has no '{' (write '}}' for a brace)", t,
					 i);
				return -1;
			}
			*o++ = '}';
			i += 2;
			continue;
		}
		*o++ = t[i++];
	}
	if (!any) {
		snprintf(why, whysz, "template \"%s\" has no {placeholder}; use default: for a constant", t);
		return -1;
	}
	return 0;
}

static int column_compile(struct sl_mapping *m, struct column *c, const struct sl_cfg_node *spec, int key_line,
			  struct sl_err *err)
{
	const char *name = c->name;
	char why[300];
	if (spec->kind == SL_CFG_SCALAR) {
		if (spec->quoted && spec->value[0] == '{')
			return cfg_err(err, spec, 0, name, "a bare string is a path; write { template: \"%s\" } for a template",
				       spec->value);
		const char *pwhy = path_compile(spec->value, strlen(spec->value), &c->path);
		if (pwhy)
			return cfg_err(err, spec, 0, name, "path '%s': %s", spec->value, pwhy);
		c->src = SRC_PATH;
		c->type = SL_T_TEXT;
		return 0;
	}
	if (spec->kind != SL_CFG_MAP)
		return cfg_err(err, spec, key_line, name,
			       "expected a path (a.b.c) or a map with path/template/expr/type/default/required, got %s",
			       spec->kind == SL_CFG_SEQ ? "a list" : "nothing");

	for (size_t i = 0; i < spec->n; i++) {
		bool known = false;
		for (size_t k = 0; k < sizeof spec_keys / sizeof spec_keys[0]; k++)
			known |= !strcmp(spec->keys[i], spec_keys[k]);
		if (!known) {
			const char *sug = sl_cfg_suggest(spec->keys[i], spec_keys, sizeof spec_keys / sizeof spec_keys[0]);
			return cfg_err(err, spec, spec->key_lines ? spec->key_lines[i] : 0, name, "unknown key '%s'%s%s%s",
				       spec->keys[i], sug ? " (did you mean '" : "", sug ? sug : "", sug ? "'?)" : "");
		}
		if (spec->items[i]->kind != SL_CFG_SCALAR && spec->items[i]->kind != SL_CFG_NULL)
			return cfg_err(err, spec->items[i], 0, name, "'%s' must be a single value", spec->keys[i]);
		if (spec->items[i]->kind == SL_CFG_NULL && strcmp(spec->keys[i], "default"))
			return cfg_err(err, spec->items[i], spec->key_lines ? spec->key_lines[i] : 0, name,
				       "'%s' has no value", spec->keys[i]);
	}
	const struct sl_cfg_node *npath = sl_cfg_get(spec, "path"), *ntpl = sl_cfg_get(spec, "template"),
				 *nexpr = sl_cfg_get(spec, "expr"), *ntype = sl_cfg_get(spec, "type"),
				 *ndef = sl_cfg_get(spec, "default"), *nreq = sl_cfg_get(spec, "required"),
				 *nunit = sl_cfg_get(spec, "unit");
	int nsrc = !!npath + !!ntpl + !!nexpr;
	if (nsrc > 1)
		return cfg_err(err, spec, key_line, name, "give only one of path, template and expr (got %s%s%s)",
			       npath ? "path " : "", ntpl ? "template " : "", nexpr ? "expr" : "");
	if (nsrc == 0 && !ndef)
		return cfg_err(err, spec, key_line, name, "needs a path, a template, an expr or a default");

	if (npath) {
		const char *pwhy = path_compile(npath->value, strlen(npath->value), &c->path);
		if (pwhy)
			return cfg_err(err, npath, 0, name, "path '%s': %s", npath->value, pwhy);
		c->src = SRC_PATH;
	} else if (ntpl) {
		if (template_compile(c, ntpl->value, why, sizeof why))
			return cfg_err(err, ntpl, 0, name, "%s", why);
		c->src = SRC_TEMPLATE;
	} else if (nexpr) {
		const char *fwhy = NULL;
		char fname[64];
		c->fn = fn_parse(nexpr->value, &fwhy, fname, sizeof fname);
		if (c->fn == FN_NONE) {
			const char *sug = sl_cfg_suggest(fname, fn_names, 2);
			return cfg_err(err, nexpr, 0, name, "expr '%s' %s%s%s%s (functions: uuid(), now())", nexpr->value,
				       fwhy, sug ? "; did you mean " : "", sug ? sug : "", sug ? "()?" : "");
		}
		c->src = SRC_FN;
	}

	c->type = c->src == SRC_FN ? (c->fn == FN_UUID ? SL_T_UUID : SL_T_TIMESTAMP) : SL_T_TEXT;
	if (ntype) {
		if (sl_type_parse(ntype->value, &c->type)) {
			const char *sug = sl_type_suggest(ntype->value);
			return cfg_err(err, ntype, 0, name,
				       "unknown type '%s'%s%s%s (types: text, int, bigint, double, boolean, uuid, timestamp, "
				       "date)",
				       ntype->value, sug ? "; did you mean '" : "", sug ? sug : "", sug ? "'?" : "");
		}
	}
	if (c->src == SRC_FN && !fn_fits(c->fn, c->type))
		return cfg_err(err, nexpr, 0, name, "%s cannot fill a %s column", nexpr->value, sl_type_name(c->type));
	if (nreq && sl_cfg_as_bool(nreq, "required", &c->required, err))
		return sl_err_prefix(err, "column '%s': ", name);
	if (nunit) {
		if (c->type != SL_T_TIMESTAMP && c->type != SL_T_DATE)
			return cfg_err(err, nunit, 0, name, "'unit' applies to timestamp and date columns, not %s",
				       sl_type_name(c->type));
		if (!strcmp(nunit->value, "s"))
			c->unit = 1;
		else if (!strcmp(nunit->value, "ms"))
			c->unit = 1000;
		else
			return cfg_err(err, nunit, 0, name, "unit must be 's' or 'ms', got '%s'", nunit->value);
	}
	if (ndef) {
		c->has_default = true;
		if (ndef->kind == SL_CFG_NULL) {
			c->def.null = true;
		} else if (!ndef->quoted || strchr(ndef->value, '(')) {
			/* Unquoted text, or anything with '(' : it may be a function call. */
			const char *fwhy = NULL;
			char fname[64];
			enum fn f = fn_parse(ndef->value, &fwhy, fname, sizeof fname);
			if (f != FN_NONE) {
				if (!fn_fits(f, c->type))
					return cfg_err(err, ndef, 0, name, "default %s cannot fill a %s column", ndef->value,
						       sl_type_name(c->type));
				c->def_fn = f;
			} else if (strchr(ndef->value, '(') && strchr(ndef->value, ')') && c->type != SL_T_TEXT) {
				const char *sug = sl_cfg_suggest(fname, fn_names, 2);
				return cfg_err(err, ndef, 0, name, "default '%s' %s%s%s%s", ndef->value, fwhy,
					       sug ? "; did you mean " : "", sug ? sug : "", sug ? "()?" : "");
			}
		}
		if (ndef->kind != SL_CFG_NULL && c->def_fn == FN_NONE) {
			c->def_text = strdup(ndef->value);
			if (!c->def_text)
				return sl_err_set(err, SL_ENOMEM, "mapping: out of memory");
			/* Converting now both checks the literal and saves doing it per record. The arena is not
			 * needed: text points at def_text, other types are plain values. */
			struct sl_arena none;
			sl_arena_init(&none, 64);
			int rc = cast_text(c, c->def_text, strlen(c->def_text), &c->def, &none);
			if (c->type == SL_T_TEXT) {
				c->def.u.s.p = c->def_text;
				c->def.u.s.n = strlen(c->def_text);
			}
			sl_arena_free(&none);
			if (rc)
				return cfg_err(err, ndef, 0, name, "default '%s' is not a valid %s", ndef->value,
					       sl_type_name(c->type));
		}
	}
	(void)m;
	return 0;
}

void sl_mapping_free(struct sl_mapping *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++) {
		struct column *c = &m->cols[i];
		path_free(&c->path);
		for (size_t k = 0; k < c->nparts; k++)
			path_free(&c->parts[k].path);
		free(c->parts);
		free(c->tpl_text);
		free(c->tpl_lits);
		free(c->def_text);
	}
	free(m->cols);
	sl_schema_free(&m->schema);
	free(m);
}

int sl_mapping_compile(const struct sl_cfg_node *columns, const char *key, struct sl_mapping **out, struct sl_err *err)
{
	*out = NULL;
	if (!columns || columns->kind != SL_CFG_MAP || columns->n == 0)
		return cfg_err(err, columns, 0, NULL, "a mapping must be a non-empty map of column: spec");
	struct sl_mapping *m = calloc(1, sizeof *m);
	if (!m || !(m->cols = calloc(columns->n, sizeof *m->cols))) {
		free(m);
		return sl_err_set(err, SL_ENOMEM, "mapping: out of memory");
	}
	sl_schema_init(&m->schema);
	int rc = 0;
	for (size_t i = 0; i < columns->n; i++) {
		int kl = columns->key_lines ? columns->key_lines[i] : 0;
		if (sl_schema_find(&m->schema, columns->keys[i], strlen(columns->keys[i])) >= 0) {
			rc = cfg_err(err, columns, kl, columns->keys[i], "defined twice");
			goto fail;
		}
		/* Add with a placeholder type first so the schema owns the name; fixed up below. */
		if ((rc = sl_schema_add(&m->schema, columns->keys[i], SL_T_TEXT, false, err)))
			goto fail;
		struct column *c = &m->cols[m->n++];
		c->name = m->schema.fields[i].name;
		if ((rc = column_compile(m, c, columns->items[i], kl, err)))
			goto fail;
		m->schema.fields[i].type = c->type;
		m->schema.fields[i].required = c->required;
	}
	if (key) {
		int k = sl_schema_find(&m->schema, key, strlen(key));
		if (k < 0) {
			const char *names[64];
			size_t nn = m->n < 64 ? m->n : 64;
			for (size_t i = 0; i < nn; i++)
				names[i] = m->cols[i].name;
			const char *sug = sl_cfg_suggest(key, names, nn);
			rc = cfg_err(err, columns, 0, NULL, "key '%s' is not one of the mapping's columns%s%s%s", key,
				     sug ? " (did you mean '" : "", sug ? sug : "", sug ? "'?)" : "");
			goto fail;
		}
		m->schema.key = k;
		m->cols[k].required = true;
		m->schema.fields[k].required = true;
	}
	*out = m;
	return 0;
fail:
	sl_mapping_free(m);
	return rc ? rc : SL_ECONFIG;
}

const struct sl_schema *sl_mapping_schema(const struct sl_mapping *m)
{
	return &m->schema;
}

/* ---- apply ---- */

/* Strict decimal integer: optional sign, digits, nothing else. */
static bool parse_i64(const char *s, size_t n, int64_t *out)
{
	char tmp[32];
	if (n == 0 || n >= sizeof tmp)
		return false;
	memcpy(tmp, s, n);
	tmp[n] = 0;
	size_t i = (tmp[0] == '-' || tmp[0] == '+') ? 1 : 0;
	if (i == n)
		return false;
	for (size_t k = i; k < n; k++)
		if (tmp[k] < '0' || tmp[k] > '9')
			return false;
	errno = 0;
	char *end;
	long long v = strtoll(tmp, &end, 10);
	if (errno || *end)
		return false;
	*out = v;
	return true;
}

/* Strict finite decimal number (JSON-like; no hex, inf or nan, which strtod would take). */
static bool parse_f64(const char *s, size_t n, double *out)
{
	char tmp[64];
	if (n == 0 || n >= sizeof tmp)
		return false;
	memcpy(tmp, s, n);
	tmp[n] = 0;
	for (size_t k = 0; k < n; k++)
		if (!strchr("0123456789+-.eE", tmp[k]))
			return false;
	char *end;
	double d = strtod(tmp, &end);
	if (*end || !isfinite(d))
		return false;
	*out = d;
	return true;
}

static bool epoch_to_ms(const struct column *c, double d, int64_t *ms)
{
	int unit = c->unit ? c->unit : (fabs(d) < 1e11 ? 1 : 1000);
	double v = unit == 1 ? d * 1000.0 : d;
	if (!(v > -9.2e18 && v < 9.2e18))
		return false;
	*ms = (int64_t)floor(v);
	return true;
}

static int cast_text(const struct column *c, const char *s, size_t n, struct sl_value *v, struct sl_arena *a)
{
	int64_t i;
	double d;
	switch (c->type) {
	case SL_T_TEXT:
		v->u.s.p = n ? sl_arena_memdup(a, s, n) : "";
		if (!v->u.s.p)
			return SL_ENOMEM;
		v->u.s.n = n;
		break;
	case SL_T_INT:
		if (!parse_i64(s, n, &i) || i < INT32_MIN || i > INT32_MAX)
			return SL_ETYPE;
		v->u.i32 = (int32_t)i;
		break;
	case SL_T_BIGINT:
		if (!parse_i64(s, n, &v->u.i64))
			return SL_ETYPE;
		break;
	case SL_T_DOUBLE:
		if (!parse_f64(s, n, &v->u.d))
			return SL_ETYPE;
		break;
	case SL_T_BOOLEAN:
		if ((n == 4 && !strncasecmp(s, "true", 4)) || (n == 1 && s[0] == '1'))
			v->u.b = true;
		else if ((n == 5 && !strncasecmp(s, "false", 5)) || (n == 1 && s[0] == '0'))
			v->u.b = false;
		else
			return SL_ETYPE;
		break;
	case SL_T_UUID:
		if (sl_uuid_parse(s, n, v->u.uuid))
			return SL_ETYPE;
		break;
	case SL_T_TIMESTAMP:
		if (sl_timestamp_parse(s, n, &v->u.i64) && !(parse_f64(s, n, &d) && epoch_to_ms(c, d, &v->u.i64)))
			return SL_ETYPE;
		break;
	case SL_T_DATE: {
		int64_t ms;
		if (!sl_date_parse(s, n, &v->u.days))
			break;
		if (sl_timestamp_parse(s, n, &ms) && !(parse_f64(s, n, &d) && epoch_to_ms(c, d, &ms)))
			return SL_ETYPE;
		if (ms / 86400000 < INT32_MIN || ms / 86400000 > INT32_MAX)
			return SL_ETYPE;
		v->u.days = sl_days_from_ms(ms);
		break;
	}
	default: return SL_ETYPE;
	}
	v->null = false;
	return 0;
}

/* Text of a scalar JSON value as a template or text column shows it: strings raw, numbers as JSON writes them. */
static void json_text(struct sl_json_val j, struct sl_buf *b)
{
	const char *s;
	size_t n;
	char tmp[32];
	double d;
	switch (sl_json_type(j)) {
	case SL_JSON_STRING:
		sl_json_str(j, &s, &n);
		sl_buf_append(b, s, n);
		break;
	case SL_JSON_DOUBLE:
		sl_json_double(j, &d);
		if (!sl_double_format(d, tmp))
			sl_buf_puts(b, tmp);
		break;
	default: sl_json_render(j, b); break;
	}
}

static int cast_json(const struct column *c, struct sl_json_val j, struct sl_value *v, struct sl_arena *a,
		     struct sl_buf *scratch)
{
	enum sl_json_type t = sl_json_type(j);
	const char *s;
	size_t n;
	int64_t i;
	double d;
	if (t == SL_JSON_STRING) {
		sl_json_str(j, &s, &n);
		return cast_text(c, s, n, v, a);
	}
	switch (c->type) {
	case SL_T_TEXT:
		sl_buf_reset(scratch);
		json_text(j, scratch);
		if (!sl_buf_ok(scratch))
			return SL_ENOMEM;
		return cast_text(c, scratch->data, scratch->len, v, a);
	case SL_T_INT:
		if (sl_json_int64(j, &i) || i < INT32_MIN || i > INT32_MAX)
			return SL_ETYPE;
		v->u.i32 = (int32_t)i;
		break;
	case SL_T_BIGINT:
		if (sl_json_int64(j, &v->u.i64))
			return SL_ETYPE;
		break;
	case SL_T_DOUBLE:
		if (sl_json_double(j, &v->u.d))
			return SL_ETYPE;
		break;
	case SL_T_BOOLEAN:
		if (t == SL_JSON_BOOL)
			sl_json_bool(j, &v->u.b);
		else if (!sl_json_int64(j, &i) && (i == 0 || i == 1))
			v->u.b = i == 1;
		else
			return SL_ETYPE;
		break;
	case SL_T_TIMESTAMP:
		if (sl_json_double(j, &d) || !epoch_to_ms(c, d, &v->u.i64))
			return SL_ETYPE;
		break;
	case SL_T_DATE: {
		int64_t ms;
		if (sl_json_double(j, &d) || !epoch_to_ms(c, d, &ms))
			return SL_ETYPE;
		v->u.days = sl_days_from_ms(ms);
		break;
	}
	default: return SL_ETYPE; /* uuid from a non-string */
	}
	v->null = false;
	return 0;
}

static int64_t env_now(struct sl_mapping_env *env, int64_t *cache)
{
	if (*cache)
		return *cache;
	if (env->now_ms)
		return *cache = env->now_ms;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return *cache = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int eval_fn(const struct column *c, enum fn f, struct sl_mapping_env *env, int64_t *now_cache,
		   struct sl_value *v, struct sl_arena *a)
{
	char tmp[SL_TIMESTAMP_STR_MAX + SL_UUID_STR_LEN];
	if (f == FN_UUID) {
		uint64_t hi = splitmix(&env->rng), lo = splitmix(&env->rng);
		sl_uuid_v4_from_random(hi, lo, v->u.uuid);
		if (c->type == SL_T_TEXT) {
			sl_uuid_format(v->u.uuid, tmp);
			return cast_text(c, tmp, SL_UUID_STR_LEN, v, a);
		}
	} else {
		int64_t ms = env_now(env, now_cache);
		switch (c->type) {
		case SL_T_TEXT:
			sl_timestamp_format(ms, tmp);
			return cast_text(c, tmp, strlen(tmp), v, a);
		case SL_T_DATE: v->u.days = sl_days_from_ms(ms); break;
		default: v->u.i64 = ms; break;
		}
	}
	v->null = false;
	return 0;
}

static int data_err(struct sl_err *err, int code, const struct column *c, const char *what, struct sl_json_val j,
		    const char *text, size_t textlen, const char *why)
{
	char value[120];
	struct sl_buf b;
	sl_buf_init(&b);
	if (text) {
		sl_buf_json_str(&b, text, textlen < 80 ? textlen : 80);
		if (textlen > 80)
			sl_buf_puts(&b, "\xe2\x80\xa6");
	} else
		sl_json_render_short(j, 80, &b);
	snprintf(value, sizeof value, "%s", sl_buf_ok(&b) && b.len ? sl_buf_cstr(&b) : "?");
	sl_buf_free(&b);
	if (code == SL_ENOMEM)
		return sl_err_set(err, SL_ENOMEM, "column '%s': out of memory", c->name);
	return sl_err_set(err, code, "column '%s' (%s): %s %s", c->name, what, value, why);
}

int sl_mapping_apply(const struct sl_mapping *m, struct sl_json_val raw, struct sl_mapping_env *env,
		     struct sl_arena *a, struct sl_record *out, struct sl_err *err)
{
	int rc = sl_record_init(out, &m->schema, a, err);
	if (rc)
		return rc;
	int64_t now_cache = 0;
	char what[300];
	for (size_t i = 0; i < m->n; i++) {
		const struct column *c = &m->cols[i];
		struct sl_value *v = &out->v[i];
		struct sl_json_val j;
		const struct path *missing = NULL; /* the path that had no value */
		switch (c->src) {
		case SRC_PATH:
			if (!path_eval(&c->path, raw, &j)) {
				missing = &c->path;
				break;
			}
			if ((rc = cast_json(c, j, v, a, &env->scratch))) {
				snprintf(what, sizeof what, "path %s", c->path.text);
				return data_err(err, rc, c, what, j, NULL, 0,
						rc == SL_ENOMEM ? "" : c->type == SL_T_TIMESTAMP
						? "is not a valid timestamp (ISO-8601, or epoch seconds/milliseconds)"
						: c->type == SL_T_INT    ? "is not a valid int (32-bit integer)"
						: c->type == SL_T_BIGINT ? "is not a valid bigint (64-bit integer)"
						: c->type == SL_T_UUID   ? "is not a valid uuid"
						: c->type == SL_T_DATE   ? "is not a valid date (YYYY-MM-DD)"
						: c->type == SL_T_DOUBLE ? "is not a valid double"
						: "is not a valid boolean");
			}
			break;
		case SRC_TEMPLATE: {
			struct sl_buf *b = &env->scratch;
			sl_buf_reset(b);
			for (size_t k = 0; k < c->nparts && !missing; k++) {
				const struct tpl_part *p = &c->parts[k];
				sl_buf_append(b, p->lit, p->litlen);
				if (!p->has_path)
					continue;
				if (!path_eval(&p->path, raw, &j))
					missing = &p->path;
				else
					json_text(j, b);
			}
			if (missing)
				break;
			if (!sl_buf_ok(b))
				return sl_err_set(err, SL_ENOMEM, "column '%s': out of memory", c->name);
			if ((rc = cast_text(c, b->data, b->len, v, a))) {
				snprintf(what, sizeof what, "template \"%s\"", c->tpl_text);
				return data_err(err, rc, c, what, j, b->data, b->len, "does not cast to the column's type");
			}
			break;
		}
		case SRC_FN:
			if ((rc = eval_fn(c, c->fn, env, &now_cache, v, a)))
				return sl_err_set(err, rc, "column '%s': out of memory", c->name);
			break;
		case SRC_NONE:
			break;
		}
		if (!v->null)
			continue;
		if (c->has_default) {
			if (c->def_fn != FN_NONE) {
				if ((rc = eval_fn(c, c->def_fn, env, &now_cache, v, a)))
					return sl_err_set(err, rc, "column '%s': out of memory", c->name);
			} else
				*v = c->def; /* text defaults point at the mapping, which outlives its records */
			if (!v->null || !c->required)
				continue;
		}
		if (c->required) {
			if (missing)
				return sl_err_set(err, SL_ETYPE, "column '%s' (path %s): required, but the record has no value there",
						  c->name, missing->text);
			return sl_err_set(err, SL_ETYPE, "column '%s': required, but it has no value", c->name);
		}
		if (missing && c->src == SRC_TEMPLATE)
			return sl_err_set(err, SL_ETYPE,
					  "column '%s' (template \"%s\"): placeholder {%s} is missing from the record, and the "
					  "column has no default",
					  c->name, c->tpl_text, missing->text);
	}
	return 0;
}
