/* Avro schemas for the registry: parsing and validation on the JSON tree, the canonical string Confluent stores
 * (Avro Java's Schema.toString()), and reader/writer compatibility with Avro's resolution rules (Avro Java's
 * SchemaCompatibility). All of it works on the JSON tree rather than avro-c, whose parser drops defaults, aliases and
 * docs (DESIGN.md §5) -- exactly what compatibility and canonical strings need. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry/internal.h"

/* Nesting bound for schema graphs: deeper schemas are refused rather than risking the C stack. */
#define AVRO_MAX_DEPTH 200

static const char *const type_names[] = {
	"null", "boolean", "int", "long", "float", "double", "bytes", "string",
	"record", "enum", "array", "map", "union", "fixed",
};

void sl_reg_msg(struct sl_buf *msgs, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (msgs)
		sl_buf_append(msgs, line, strlen(line) + 1);
}

/* ---- parsing ---- */

struct pctx {
	struct sl_avro_schema *s;
	struct sl_err *err;
	bool in_ref; /* parsing a referenced schema */
};

static char *keep(struct pctx *c, char *str)
{
	struct sl_avro_schema *s = c->s;
	if (!str)
		return NULL;
	if (s->nstrs == s->capstrs) {
		size_t cap = s->capstrs ? s->capstrs * 2 : 16;
		char **n = realloc(s->strs, cap * sizeof *n);
		if (!n) {
			free(str);
			return NULL;
		}
		s->strs = n;
		s->capstrs = cap;
	}
	return s->strs[s->nstrs++] = str;
}

static char *join(struct pctx *c, const char *space, const char *name)
{
	size_t a = space ? strlen(space) : 0, b = strlen(name);
	char *r = malloc(a + b + 2);
	if (!r)
		return NULL;
	if (a) {
		memcpy(r, space, a);
		r[a++] = '.';
	}
	memcpy(r + a, name, b + 1);
	return keep(c, r);
}

static struct sl_avro *node(struct pctx *c, enum sl_avro_type t, const struct sl_rj *src)
{
	struct sl_avro_schema *s = c->s;
	struct sl_avro *a;
	if (s->nall == s->capall) {
		size_t cap = s->capall ? s->capall * 2 : 16;
		struct sl_avro **n = realloc(s->all, cap * sizeof *n);
		if (!n)
			return NULL;
		s->all = n;
		s->capall = cap;
	}
	if (!(a = calloc(1, sizeof *a)))
		return NULL;
	a->t = t;
	a->src = src;
	a->from_ref = c->in_ref;
	s->all[s->nall++] = a;
	return a;
}

static int oom(struct pctx *c)
{
	return sl_err_set(c->err, SL_ENOMEM, "out of memory parsing an Avro schema");
}

static int primitive(const char *s)
{
	for (int i = SL_AVRO_NULL; i <= SL_AVRO_STRING; i++)
		if (!strcmp(s, type_names[i]))
			return i;
	return -1;
}

/* Avro names: [A-Za-z_][A-Za-z0-9_]* per dot-separated part. */
static bool valid_name_part(const char *s, size_t n)
{
	if (!n || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '_'))
			return false;
	return true;
}

static bool valid_fullname(const char *s)
{
	const char *p = s;
	for (;;) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);
		if (!valid_name_part(p, n))
			return false;
		if (!dot)
			return true;
		p = dot + 1;
	}
}

static struct sl_avro *lookup(struct pctx *c, const char *ref, const char *space)
{
	char buf[1024];
	const char *full = ref;
	if (!strchr(ref, '.') && space && *space) {
		snprintf(buf, sizeof buf, "%s.%s", space, ref);
		full = buf;
	}
	for (size_t i = 0; i < c->s->nall; i++) {
		struct sl_avro *a = c->s->all[i];
		if (a->fullname && !strcmp(a->fullname, full))
			return a;
	}
	if (full != ref) /* a name in the null namespace is visible from any namespace */
		for (size_t i = 0; i < c->s->nall; i++) {
			struct sl_avro *a = c->s->all[i];
			if (a->fullname && !strcmp(a->fullname, ref))
				return a;
		}
	return NULL;
}

static int parse(struct pctx *c, const struct sl_rj *j, const char *space, int depth, struct sl_avro **out);

static int set_name(struct pctx *c, struct sl_avro *a, const struct sl_rj *j, const char **space)
{
	const char *name = sl_rj_getstr(j, "name");
	const struct sl_rj *ns = sl_rj_get(j, "namespace");
	const char *sp = *space;
	const char *dot;
	if (!name)
		return sl_err_set(c->err, SL_EINVAL, "No name in schema: a %s needs a \"name\" string",
				  type_names[a->t]);
	if (ns && ns->t == SL_RJ_STR)
		sp = ns->s;
	else if (ns && ns->t != SL_RJ_NULL)
		return sl_err_set(c->err, SL_EINVAL, "namespace of '%s' must be a string", name);
	if ((dot = strrchr(name, '.'))) {
		/* A dotted name carries its own namespace; the "namespace" attribute is then ignored. */
		char *s = strndup(name, (size_t)(dot - name));
		if (!(sp = keep(c, s)))
			return oom(c);
		name = dot + 1;
	}
	if (sp && !*sp)
		sp = NULL;
	if (!valid_name_part(name, strlen(name)))
		return sl_err_set(c->err, SL_EINVAL, "Illegal character in name '%s': names match [A-Za-z_][A-Za-z0-9_]*",
				  name);
	if (sp && !valid_fullname(sp))
		return sl_err_set(c->err, SL_EINVAL, "Illegal namespace '%s' for '%s'", sp, name);
	if (primitive(name) >= 0 && !sp)
		return sl_err_set(c->err, SL_EINVAL, "Schemas may not be named after primitives: %s", name);
	a->name = (char *)name;
	a->space = (char *)sp;
	if (!(a->fullname = join(c, sp, name)))
		return oom(c);
	for (size_t i = 0; i + 1 < c->s->nall; i++)
		if (c->s->all[i]->fullname && !strcmp(c->s->all[i]->fullname, a->fullname))
			return sl_err_set(c->err, SL_EINVAL, "Can't redefine: %s", a->fullname);
	*space = sp;
	return 0;
}

static int parse_aliases(struct pctx *c, const struct sl_rj *j, const char *space, const char *what, char ***out,
			 size_t *n, bool qualify)
{
	const struct sl_rj *al = sl_rj_get(j, "aliases");
	if (!al || al->t == SL_RJ_NULL)
		return 0;
	if (al->t != SL_RJ_ARR)
		return sl_err_set(c->err, SL_EINVAL, "aliases of %s must be an array of strings", what);
	if (!al->n)
		return 0;
	if (!(*out = calloc(al->n, sizeof **out)))
		return oom(c);
	for (size_t i = 0; i < al->n; i++) {
		if (al->v[i]->t != SL_RJ_STR)
			return sl_err_set(c->err, SL_EINVAL, "aliases of %s must be strings", what);
		if (qualify && !strchr(al->v[i]->s, '.')) {
			if (!((*out)[i] = join(c, space, al->v[i]->s)))
				return oom(c);
		} else
			(*out)[i] = al->v[i]->s;
		*n = i + 1;
	}
	return 0;
}

static const char *doc_of(const struct sl_rj *j)
{
	return sl_rj_getstr(j, "doc");
}

static int parse_record(struct pctx *c, struct sl_avro *a, const struct sl_rj *j, const char *space, int depth)
{
	const struct sl_rj *fs = sl_rj_get(j, "fields");
	int rc;
	if (!fs || fs->t != SL_RJ_ARR)
		return sl_err_set(c->err, SL_EINVAL, "Record has no fields: '%s' needs a \"fields\" array", a->fullname);
	if (fs->n && !(a->fields = calloc(fs->n, sizeof *a->fields)))
		return oom(c);
	for (size_t i = 0; i < fs->n; i++) {
		const struct sl_rj *f = fs->v[i];
		struct sl_avro_field *fd = &a->fields[i];
		const struct sl_rj *ft = sl_rj_get(f, "type");
		const char *order;
		if (f->t != SL_RJ_OBJ)
			return sl_err_set(c->err, SL_EINVAL, "field %zu of '%s' is not an object", i, a->fullname);
		if (!(fd->name = (char *)sl_rj_getstr(f, "name")))
			return sl_err_set(c->err, SL_EINVAL, "No field name: field %zu of '%s'", i, a->fullname);
		if (!valid_name_part(fd->name, strlen(fd->name)))
			return sl_err_set(c->err, SL_EINVAL, "Illegal character in field name '%s' of '%s'", fd->name,
					  a->fullname);
		for (size_t k = 0; k < i; k++)
			if (!strcmp(a->fields[k].name, fd->name))
				return sl_err_set(c->err, SL_EINVAL, "Duplicate field %s in record %s", fd->name,
						  a->fullname);
		if (!ft)
			return sl_err_set(c->err, SL_EINVAL, "No field type: field '%s' of '%s'", fd->name, a->fullname);
		a->nfields = i + 1;
		fd->src = f;
		fd->def = sl_rj_get(f, "default");
		order = sl_rj_getstr(f, "order");
		if (sl_rj_get(f, "order") && (!order || (strcmp(order, "ascending") && strcmp(order, "descending") &&
							  strcmp(order, "ignore"))))
			return sl_err_set(c->err, SL_EINVAL,
					  "field '%s' of '%s': order must be ascending, descending or ignore", fd->name,
					  a->fullname);
		fd->order = order;
		if ((rc = parse_aliases(c, f, NULL, "a field", &fd->aliases, &fd->naliases, false)))
			return rc;
		if ((rc = parse(c, ft, space, depth + 1, &fd->type)))
			return sl_err_prefix(c->err, "field '%s' of '%s': ", fd->name, a->fullname);
	}
	return 0;
}

static int parse_enum(struct pctx *c, struct sl_avro *a, const struct sl_rj *j)
{
	const struct sl_rj *sy = sl_rj_get(j, "symbols");
	const struct sl_rj *def = sl_rj_get(j, "default");
	if (!sy || sy->t != SL_RJ_ARR)
		return sl_err_set(c->err, SL_EINVAL, "Enum symbols must be an array of strings: enum '%s'", a->fullname);
	if (sy->n && !(a->symbols = calloc(sy->n, sizeof *a->symbols)))
		return oom(c);
	for (size_t i = 0; i < sy->n; i++) {
		if (sy->v[i]->t != SL_RJ_STR)
			return sl_err_set(c->err, SL_EINVAL, "Enum symbols must be strings: enum '%s'", a->fullname);
		if (!valid_name_part(sy->v[i]->s, strlen(sy->v[i]->s)))
			return sl_err_set(c->err, SL_EINVAL, "Illegal character in enum symbol '%s' of '%s'", sy->v[i]->s,
					  a->fullname);
		for (size_t k = 0; k < i; k++)
			if (!strcmp(a->symbols[k], sy->v[i]->s))
				return sl_err_set(c->err, SL_EINVAL, "Duplicate enum symbol: %s in '%s'", sy->v[i]->s,
						  a->fullname);
		a->symbols[i] = sy->v[i]->s;
		a->nsymbols = i + 1;
	}
	if (def && def->t != SL_RJ_NULL) {
		bool found = false;
		if (def->t != SL_RJ_STR)
			return sl_err_set(c->err, SL_EINVAL, "Enum default of '%s' must be a string", a->fullname);
		for (size_t i = 0; i < a->nsymbols; i++)
			found |= !strcmp(a->symbols[i], def->s);
		if (!found)
			return sl_err_set(c->err, SL_EINVAL, "The Enum Default: %s is not in the enum symbol set: %s",
					  def->s, a->fullname);
		a->enum_default = def->s;
	}
	return 0;
}

static bool same_union_kind(const struct sl_avro *x, const struct sl_avro *y)
{
	if (x->t != y->t)
		return false;
	if (x->t == SL_AVRO_RECORD || x->t == SL_AVRO_ENUM || x->t == SL_AVRO_FIXED)
		return !strcmp(x->fullname, y->fullname);
	return true;
}

static int parse(struct pctx *c, const struct sl_rj *j, const char *space, int depth, struct sl_avro **out)
{
	struct sl_avro *a;
	int rc, t;
	if (depth > AVRO_MAX_DEPTH)
		return sl_err_set(c->err, SL_ETOOBIG, "schema nests deeper than %d levels", AVRO_MAX_DEPTH);
	if (j->t == SL_RJ_STR) {
		if ((t = primitive(j->s)) >= 0) {
			if (!(*out = node(c, (enum sl_avro_type)t, j)))
				return oom(c);
			return 0;
		}
		if (!(*out = lookup(c, j->s, space)))
			return sl_err_set(c->err, SL_EINVAL, "Undefined name: \"%s\"", j->s);
		return 0;
	}
	if (j->t == SL_RJ_ARR) {
		if (!(a = node(c, SL_AVRO_UNION, j)))
			return oom(c);
		if (j->n && !(a->branches = calloc(j->n, sizeof *a->branches)))
			return oom(c);
		for (size_t i = 0; i < j->n; i++) {
			struct sl_avro *b;
			if ((rc = parse(c, j->v[i], space, depth + 1, &b)))
				return rc;
			if (b->t == SL_AVRO_UNION)
				return sl_err_set(c->err, SL_EINVAL, "Nested union: a union may not hold a union");
			for (size_t k = 0; k < a->nbranches; k++)
				if (same_union_kind(a->branches[k], b))
					return sl_err_set(c->err, SL_EINVAL, "Duplicate in union: %s",
							  b->fullname ? b->fullname : type_names[b->t]);
			a->branches[a->nbranches++] = b;
		}
		*out = a;
		return 0;
	}
	if (j->t != SL_RJ_OBJ) {
		struct sl_buf b;
		sl_buf_init(&b);
		sl_rj_render(j, &b);
		rc = sl_err_set(c->err, SL_EINVAL, "Schema is not a type name, an object or a union: %.200s",
				sl_buf_cstr(&b));
		sl_buf_free(&b);
		return rc;
	}
	const char *type = sl_rj_getstr(j, "type");
	if (!type) {
		if (sl_rj_get(j, "type"))
			return sl_err_set(c->err, SL_EINVAL,
					  "No type: \"type\" must be a string (nest a complex type as a field's type)");
		return sl_err_set(c->err, SL_EINVAL, "No type: the object has no \"type\"");
	}
	if ((t = primitive(type)) >= 0) {
		if (!(*out = node(c, (enum sl_avro_type)t, j)))
			return oom(c);
		return 0;
	}
	if (!strcmp(type, "record") || !strcmp(type, "error")) {
		if (!(a = node(c, SL_AVRO_RECORD, j)))
			return oom(c);
		a->is_error = type[0] == 'e';
		if ((rc = set_name(c, a, j, &space)))
			return rc;
		a->doc = (char *)doc_of(j);
		if ((rc = parse_aliases(c, j, a->space, "a record", &a->aliases, &a->naliases, true)))
			return rc;
		*out = a;
		return parse_record(c, a, j, space, depth);
	}
	if (!strcmp(type, "enum")) {
		if (!(a = node(c, SL_AVRO_ENUM, j)))
			return oom(c);
		if ((rc = set_name(c, a, j, &space)))
			return rc;
		a->doc = (char *)doc_of(j);
		if ((rc = parse_aliases(c, j, a->space, "an enum", &a->aliases, &a->naliases, true)))
			return rc;
		*out = a;
		return parse_enum(c, a, j);
	}
	if (!strcmp(type, "fixed")) {
		const struct sl_rj *sz = sl_rj_get(j, "size");
		if (!(a = node(c, SL_AVRO_FIXED, j)))
			return oom(c);
		if ((rc = set_name(c, a, j, &space)))
			return rc;
		a->doc = (char *)doc_of(j);
		if ((rc = parse_aliases(c, j, a->space, "a fixed", &a->aliases, &a->naliases, true)))
			return rc;
		if (!sz || sz->t != SL_RJ_NUM || !sz->is_int || sz->d < 0 || sz->d > 2147483647.0)
			return sl_err_set(c->err, SL_EINVAL, "Invalid or no size: fixed '%s' needs a non-negative \"size\"",
					  a->fullname);
		a->size = (int64_t)sz->d;
		*out = a;
		return 0;
	}
	if (!strcmp(type, "array") || !strcmp(type, "map")) {
		bool arr = type[0] == 'a';
		const struct sl_rj *it = sl_rj_get(j, arr ? "items" : "values");
		if (!(a = node(c, arr ? SL_AVRO_ARRAY : SL_AVRO_MAP, j)))
			return oom(c);
		if (!it)
			return sl_err_set(c->err, SL_EINVAL, arr ? "Array has no items type" : "Map has no values type");
		*out = a;
		return parse(c, it, space, depth + 1, &a->items);
	}
	/* Avro Java accepts {"type": "SomeDefinedName"} as a reference. */
	if ((*out = lookup(c, type, space)))
		return 0;
	return sl_err_set(c->err, SL_EINVAL, "Type not supported: %s", type);
}

void sl_avro_free(struct sl_avro_schema *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nall; i++) {
		struct sl_avro *a = s->all[i];
		for (size_t f = 0; f < a->nfields; f++)
			free(a->fields[f].aliases);
		free(a->fields);
		free(a->aliases);
		free(a->symbols);
		free(a->branches);
		free(a);
	}
	for (size_t i = 0; i < s->nstrs; i++)
		free(s->strs[i]);
	for (size_t i = 0; i < s->njsons; i++)
		sl_rj_free(s->jsons[i]);
	free(s->jsons);
	free(s->strs);
	free(s->all);
	free(s);
}

static int parse_text(struct pctx *c, const char *text, size_t len, struct sl_avro **out)
{
	struct sl_rj *j;
	int rc = sl_rj_parse(text, len, &j, c->err);
	if (rc)
		return rc;
	c->s->jsons[c->s->njsons++] = j;
	return parse(c, j, NULL, 0, out);
}

int sl_avro_parse(const char *text, size_t len, const struct sl_avro_refs *refs, struct sl_avro_schema **out,
		  struct sl_err *err)
{
	struct sl_avro_schema *s = calloc(1, sizeof *s);
	struct pctx c = {s, err, false};
	size_t nrefs = refs ? refs->n : 0;
	int rc = 0;
	*out = NULL;
	if (!s || !(s->jsons = calloc(nrefs + 1, sizeof *s->jsons))) {
		free(s);
		return sl_err_set(err, SL_ENOMEM, "out of memory parsing an Avro schema");
	}
	c.in_ref = true;
	for (size_t i = 0; i < nrefs && !rc; i++) {
		struct sl_avro *ignored;
		if ((rc = parse_text(&c, refs->texts[i], strlen(refs->texts[i]), &ignored)))
			sl_err_prefix(err, "reference %zu: ", i + 1);
	}
	c.in_ref = false;
	if (!rc)
		rc = parse_text(&c, text, len, &s->root);
	if (rc) {
		sl_avro_free(s);
		return rc;
	}
	*out = s;
	return 0;
}

/* ---- canonical string (Avro Java's Schema.toString()) ---- */

static const char *const schema_reserved[] = {"doc", "fields", "items", "name", "namespace", "size", "symbols",
					      "values", "type", "aliases", NULL};
static const char *const field_reserved[] = {"default", "doc", "name", "order", "type", "aliases", NULL};

static bool reserved(const char *k, const char *const *set, bool is_enum)
{
	for (size_t i = 0; set[i]; i++)
		if (!strcmp(k, set[i]))
			return true;
	return is_enum && !strcmp(k, "default");
}

static void props(const struct sl_rj *j, const char *const *set, bool is_enum, struct sl_buf *out)
{
	if (!j || j->t != SL_RJ_OBJ)
		return;
	for (size_t i = 0; i < j->n; i++) {
		if (reserved(j->keys[i], set, is_enum))
			continue;
		sl_buf_putc(out, ',');
		sl_buf_json_str(out, j->keys[i], strlen(j->keys[i]));
		sl_buf_putc(out, ':');
		sl_rj_render(j->v[i], out);
	}
}

struct cctx {
	const struct sl_avro **written;
	size_t n, cap;
	const char *space;
};

static void key_str(struct sl_buf *out, const char *k, const char *v)
{
	sl_buf_printf(out, ",\"%s\":", k);
	sl_buf_json_str(out, v, strlen(v));
}

static bool space_eq(const char *a, const char *b)
{
	return (a ? a : "")[0] == (b ? b : "")[0] && !strcmp(a ? a : "", b ? b : "");
}

static void canon(struct cctx *c, const struct sl_avro *a, struct sl_buf *out)
{
	bool named = a->t == SL_AVRO_RECORD || a->t == SL_AVRO_ENUM || a->t == SL_AVRO_FIXED;
	if (named) {
		bool seen = a->from_ref;
		for (size_t i = 0; i < c->n && !seen; i++)
			seen = c->written[i] == a;
		if (seen) {
			const char *q = space_eq(a->space, c->space) ? a->name : a->fullname;
			sl_buf_json_str(out, q, strlen(q));
			return;
		}
		if (c->n == c->cap) {
			size_t cap = c->cap ? c->cap * 2 : 16;
			const struct sl_avro **w = realloc(c->written, cap * sizeof *w);
			if (!w) {
				out->oom = true;
				return;
			}
			c->written = w;
			c->cap = cap;
		}
		c->written[c->n++] = a;
	}
	switch (a->t) {
	case SL_AVRO_RECORD:
	case SL_AVRO_ENUM:
	case SL_AVRO_FIXED: {
		const char *saved = c->space;
		sl_buf_printf(out, "{\"type\":\"%s\"",
			      a->t == SL_AVRO_RECORD ? (a->is_error ? "error" : "record") : type_names[a->t]);
		key_str(out, "name", a->name);
		if (a->space) {
			if (!space_eq(a->space, c->space))
				key_str(out, "namespace", a->space);
		} else if (c->space && *c->space)
			key_str(out, "namespace", "");
		if (a->doc)
			key_str(out, "doc", a->doc);
		if (a->t == SL_AVRO_RECORD) {
			c->space = a->space;
			sl_buf_puts(out, ",\"fields\":[");
			for (size_t i = 0; i < a->nfields; i++) {
				const struct sl_avro_field *f = &a->fields[i];
				const char *fdoc = sl_rj_getstr(f->src, "doc");
				if (i)
					sl_buf_putc(out, ',');
				sl_buf_puts(out, "{\"name\":");
				sl_buf_json_str(out, f->name, strlen(f->name));
				sl_buf_puts(out, ",\"type\":");
				canon(c, f->type, out);
				if (fdoc)
					key_str(out, "doc", fdoc);
				if (f->def) {
					sl_buf_puts(out, ",\"default\":");
					sl_rj_render(f->def, out);
				}
				if (f->order && strcmp(f->order, "ascending"))
					key_str(out, "order", f->order);
				if (f->naliases) {
					sl_buf_puts(out, ",\"aliases\":[");
					for (size_t k = 0; k < f->naliases; k++) {
						if (k)
							sl_buf_putc(out, ',');
						sl_buf_json_str(out, f->aliases[k], strlen(f->aliases[k]));
					}
					sl_buf_putc(out, ']');
				}
				props(f->src, field_reserved, false, out);
				sl_buf_putc(out, '}');
			}
			sl_buf_putc(out, ']');
		} else if (a->t == SL_AVRO_ENUM) {
			sl_buf_puts(out, ",\"symbols\":[");
			for (size_t i = 0; i < a->nsymbols; i++) {
				if (i)
					sl_buf_putc(out, ',');
				sl_buf_json_str(out, a->symbols[i], strlen(a->symbols[i]));
			}
			sl_buf_putc(out, ']');
			if (a->enum_default)
				key_str(out, "default", a->enum_default);
		} else
			sl_buf_printf(out, ",\"size\":%lld", (long long)a->size);
		props(a->src, schema_reserved, a->t == SL_AVRO_ENUM, out);
		if (a->naliases) {
			sl_buf_puts(out, ",\"aliases\":[");
			for (size_t k = 0; k < a->naliases; k++) {
				const char *al = a->aliases[k];
				size_t sl = a->space ? strlen(a->space) : 0;
				/* Written relative to the type's own namespace, as Avro Java does. */
				if (sl && !strncmp(al, a->space, sl) && al[sl] == '.' && !strchr(al + sl + 1, '.'))
					al += sl + 1;
				if (k)
					sl_buf_putc(out, ',');
				sl_buf_json_str(out, al, strlen(al));
			}
			sl_buf_putc(out, ']');
		}
		sl_buf_putc(out, '}');
		c->space = saved;
		return;
	}
	case SL_AVRO_ARRAY:
	case SL_AVRO_MAP:
		sl_buf_printf(out, "{\"type\":\"%s\",\"%s\":", type_names[a->t], a->t == SL_AVRO_ARRAY ? "items" : "values");
		canon(c, a->items, out);
		props(a->src, schema_reserved, false, out);
		sl_buf_putc(out, '}');
		return;
	case SL_AVRO_UNION:
		sl_buf_putc(out, '[');
		for (size_t i = 0; i < a->nbranches; i++) {
			if (i)
				sl_buf_putc(out, ',');
			canon(c, a->branches[i], out);
		}
		sl_buf_putc(out, ']');
		return;
	default: {
		/* A primitive is its bare name unless it carries properties (logicalType, ...). */
		bool has_props = false;
		if (a->src->t == SL_RJ_OBJ)
			for (size_t i = 0; i < a->src->n; i++)
				has_props |= !reserved(a->src->keys[i], schema_reserved, false);
		if (!has_props) {
			sl_buf_printf(out, "\"%s\"", type_names[a->t]);
			return;
		}
		sl_buf_printf(out, "{\"type\":\"%s\"", type_names[a->t]);
		props(a->src, schema_reserved, false, out);
		sl_buf_putc(out, '}');
		return;
	}
	}
}

void sl_avro_canonical(const struct sl_avro_schema *s, struct sl_buf *out)
{
	struct cctx c = {0};
	canon(&c, s->root, out);
	free(c.written);
}

/* ---- compatibility (Avro's reader/writer resolution) ---- */

struct pair {
	const struct sl_avro *r, *w;
};

struct kctx {
	struct pair *stack; /* pairs being checked: a recursive type assumes itself compatible */
	size_t n, cap;
	struct sl_buf *msgs;
	int incompatible;
	long budget; /* checks left: union probes on nested unions can multiply */
	char loc[1024];
};

static void fail(struct kctx *k, const char *type, const char *msg, const struct sl_avro *r, const struct sl_avro *w)
{
	k->incompatible = 1;
	sl_reg_msg(k->msgs, "Incompatibility{type:%s, location:%s, message:%s, reader:%s, writer:%s}", type,
		   k->loc[0] ? k->loc : "/", msg, r->fullname ? r->fullname : type_names[r->t],
		   w->fullname ? w->fullname : type_names[w->t]);
}

static bool names_match(const struct sl_avro *r, const struct sl_avro *w)
{
	if (!strcmp(r->name, w->name))
		return true;
	for (size_t i = 0; i < r->naliases; i++)
		if (!strcmp(r->aliases[i], w->fullname))
			return true;
	return false;
}

static int check(struct kctx *k, const struct sl_avro *r, const struct sl_avro *w);

/* Runs check() with suffix appended to the location; restores it after. Returns check's verdict (0 ok). */
static int check_at(struct kctx *k, const struct sl_avro *r, const struct sl_avro *w, const char *fmt, ...)
{
	size_t len = strlen(k->loc);
	va_list ap;
	int rc;
	va_start(ap, fmt);
	vsnprintf(k->loc + len, sizeof k->loc - len, fmt, ap);
	va_end(ap);
	rc = check(k, r, w);
	k->loc[len] = 0;
	return rc;
}

/* Whether r can read w, without recording messages (a union branch probe). */
static bool readable(struct kctx *k, const struct sl_avro *r, const struct sl_avro *w)
{
	struct sl_buf *saved = k->msgs;
	int saved_inc = k->incompatible;
	int rc;
	k->msgs = NULL;
	k->incompatible = 0;
	rc = check(k, r, w);
	k->msgs = saved;
	k->incompatible = saved_inc;
	return rc == 0;
}

static int check_named(struct kctx *k, const struct sl_avro *r, const struct sl_avro *w)
{
	int bad = 0;
	char msg[600];
	if (!names_match(r, w)) {
		snprintf(msg, sizeof msg, "expected: %s", w->fullname);
		fail(k, "NAME_MISMATCH", msg, r, w);
		return 1;
	}
	switch (r->t) {
	case SL_AVRO_FIXED:
		if (r->size != w->size) {
			snprintf(msg, sizeof msg, "expected: %lld, found: %lld", (long long)w->size, (long long)r->size);
			fail(k, "FIXED_SIZE_MISMATCH", msg, r, w);
			return 1;
		}
		return 0;
	case SL_AVRO_ENUM:
		if (r->enum_default)
			return 0;
		for (size_t i = 0; i < w->nsymbols; i++) {
			bool found = false;
			for (size_t j = 0; j < r->nsymbols && !found; j++)
				found = !strcmp(r->symbols[j], w->symbols[i]);
			if (!found) {
				snprintf(msg, sizeof msg, "[%s]", w->symbols[i]);
				fail(k, "MISSING_ENUM_SYMBOLS", msg, r, w);
				bad = 1;
			}
		}
		return bad;
	default: /* record */
		for (size_t i = 0; i < r->nfields; i++) {
			const struct sl_avro_field *rf = &r->fields[i];
			const struct sl_avro_field *wf = NULL;
			for (size_t j = 0; j < w->nfields && !wf; j++)
				if (!strcmp(w->fields[j].name, rf->name))
					wf = &w->fields[j];
			for (size_t a = 0; a < rf->naliases && !wf; a++)
				for (size_t j = 0; j < w->nfields && !wf; j++)
					if (!strcmp(w->fields[j].name, rf->aliases[a]))
						wf = &w->fields[j];
			if (!wf) {
				if (!rf->def) {
					size_t len = strlen(k->loc);
					snprintf(k->loc + len, sizeof k->loc - len, "/fields/%zu", i);
					snprintf(msg, sizeof msg, "%s (field added without a default)", rf->name);
					fail(k, "READER_FIELD_MISSING_DEFAULT_VALUE", msg, r, w);
					k->loc[len] = 0;
					bad = 1;
				}
				continue;
			}
			bad |= check_at(k, rf->type, wf->type, "/fields/%zu/type", i);
		}
		return bad;
	}
}

static int check(struct kctx *k, const struct sl_avro *r, const struct sl_avro *w)
{
	int bad = 0;
	if (--k->budget < 0) {
		if (k->budget == -1)
			fail(k, "TOO_COMPLEX", "schemas too complex to compare (more than 200000 checks)", r, w);
		k->incompatible = 1;
		return 1;
	}
	for (size_t i = 0; i < k->n; i++)
		if (k->stack[i].r == r && k->stack[i].w == w)
			return 0;
	if (k->n == k->cap) {
		size_t cap = k->cap ? k->cap * 2 : 32;
		struct pair *p = realloc(k->stack, cap * sizeof *p);
		if (!p) {
			fail(k, "OUT_OF_MEMORY", "out of memory", r, w);
			return 1;
		}
		k->stack = p;
		k->cap = cap;
	}
	if (k->n >= 4 * AVRO_MAX_DEPTH) {
		fail(k, "TOO_DEEP", "schemas nest too deeply to compare", r, w);
		return 1;
	}
	k->stack[k->n++] = (struct pair){r, w};
	if (r->t == w->t) {
		switch (r->t) {
		case SL_AVRO_RECORD:
		case SL_AVRO_ENUM:
		case SL_AVRO_FIXED:
			bad = check_named(k, r, w);
			break;
		case SL_AVRO_ARRAY:
			bad = check_at(k, r->items, w->items, "/items");
			break;
		case SL_AVRO_MAP:
			bad = check_at(k, r->items, w->items, "/values");
			break;
		case SL_AVRO_UNION:
			for (size_t i = 0; i < w->nbranches; i++)
				bad |= check_at(k, r, w->branches[i], "/%zu", i);
			break;
		default:
			break;
		}
		k->n--;
		return bad;
	}
	if (w->t == SL_AVRO_UNION) {
		for (size_t i = 0; i < w->nbranches; i++)
			bad |= check_at(k, r, w->branches[i], "/%zu", i);
		k->n--;
		return bad;
	}
	switch (r->t) {
	case SL_AVRO_LONG:
		bad = w->t != SL_AVRO_INT;
		break;
	case SL_AVRO_FLOAT:
		bad = w->t != SL_AVRO_INT && w->t != SL_AVRO_LONG;
		break;
	case SL_AVRO_DOUBLE:
		bad = w->t != SL_AVRO_INT && w->t != SL_AVRO_LONG && w->t != SL_AVRO_FLOAT;
		break;
	case SL_AVRO_BYTES:
		bad = w->t != SL_AVRO_STRING;
		break;
	case SL_AVRO_STRING:
		bad = w->t != SL_AVRO_BYTES;
		break;
	case SL_AVRO_UNION: {
		bool any = false;
		for (size_t i = 0; i < r->nbranches && !any; i++)
			any = readable(k, r->branches[i], w);
		if (!any) {
			char msg[600];
			snprintf(msg, sizeof msg, "reader union lacking writer type: %s",
				 w->fullname ? w->fullname : type_names[w->t]);
			fail(k, "MISSING_UNION_BRANCH", msg, r, w);
			bad = 1;
		}
		k->n--;
		return bad;
	}
	default:
		bad = 1;
		break;
	}
	if (bad) {
		char msg[600];
		snprintf(msg, sizeof msg, "reader type: %s not compatible with writer type: %s",
			 r->t == SL_AVRO_RECORD || r->t == SL_AVRO_ENUM || r->t == SL_AVRO_FIXED ? type_names[r->t]
												     : type_names[r->t],
			 type_names[w->t]);
		fail(k, "TYPE_MISMATCH", msg, r, w);
	}
	k->n--;
	return bad;
}

int sl_avro_compatible(const struct sl_avro *reader, const struct sl_avro *writer, struct sl_buf *msgs)
{
	struct kctx k = {0};
	int rc;
	k.msgs = msgs;
	k.budget = 200000;
	rc = check(&k, reader, writer);
	free(k.stack);
	return rc || k.incompatible ? 1 : 0;
}
