/* Avro schemas parsed and validated on the JSON tree (codec/avro_schema.h): named types, namespaces, aliases,
 * references to other schemas' named types, and Avro Java's rules on what a valid schema is, with messages that say
 * what is wrong and where. Works on the JSON tree rather than avro-c, whose parser drops defaults, aliases and docs
 * (DESIGN.md §5) -- exactly what the registry's compatibility and canonical strings need. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/avro_schema.h"

const char *const sl_avro_type_names[SL_AVRO_FIXED + 1] = {
	"null", "boolean", "int", "long", "float", "double", "bytes", "string",
	"record", "enum", "array", "map", "union", "fixed",
};

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
		if (!strcmp(s, sl_avro_type_names[i]))
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
	const char *name = sl_jtree_getstr(j, "name");
	const struct sl_rj *ns = sl_jtree_get(j, "namespace");
	const char *sp = *space;
	const char *dot;
	if (!name)
		return sl_err_set(c->err, SL_EINVAL, "No name in schema: a %s needs a \"name\" string",
				  sl_avro_type_names[a->t]);
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
	const struct sl_rj *al = sl_jtree_get(j, "aliases");
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
	return sl_jtree_getstr(j, "doc");
}

static int parse_record(struct pctx *c, struct sl_avro *a, const struct sl_rj *j, const char *space, int depth)
{
	const struct sl_rj *fs = sl_jtree_get(j, "fields");
	int rc;
	if (!fs || fs->t != SL_RJ_ARR)
		return sl_err_set(c->err, SL_EINVAL, "Record has no fields: '%s' needs a \"fields\" array", a->fullname);
	if (fs->n && !(a->fields = calloc(fs->n, sizeof *a->fields)))
		return oom(c);
	for (size_t i = 0; i < fs->n; i++) {
		const struct sl_rj *f = fs->v[i];
		struct sl_avro_field *fd = &a->fields[i];
		const struct sl_rj *ft = sl_jtree_get(f, "type");
		const char *order;
		if (f->t != SL_RJ_OBJ)
			return sl_err_set(c->err, SL_EINVAL, "field %zu of '%s' is not an object", i, a->fullname);
		if (!(fd->name = (char *)sl_jtree_getstr(f, "name")))
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
		fd->def = sl_jtree_get(f, "default");
		order = sl_jtree_getstr(f, "order");
		if (sl_jtree_get(f, "order") && (!order || (strcmp(order, "ascending") && strcmp(order, "descending") &&
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
	const struct sl_rj *sy = sl_jtree_get(j, "symbols");
	const struct sl_rj *def = sl_jtree_get(j, "default");
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
	if (depth > SL_AVRO_MAX_DEPTH)
		return sl_err_set(c->err, SL_ETOOBIG, "schema nests deeper than %d levels", SL_AVRO_MAX_DEPTH);
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
							  b->fullname ? b->fullname : sl_avro_type_names[b->t]);
			a->branches[a->nbranches++] = b;
		}
		*out = a;
		return 0;
	}
	if (j->t != SL_RJ_OBJ) {
		struct sl_buf b;
		sl_buf_init(&b);
		sl_jtree_render(j, &b);
		rc = sl_err_set(c->err, SL_EINVAL, "Schema is not a type name, an object or a union: %.200s",
				sl_buf_cstr(&b));
		sl_buf_free(&b);
		return rc;
	}
	const char *type = sl_jtree_getstr(j, "type");
	if (!type) {
		if (sl_jtree_get(j, "type"))
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
		const struct sl_rj *sz = sl_jtree_get(j, "size");
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
		const struct sl_rj *it = sl_jtree_get(j, arr ? "items" : "values");
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

void sl_avro_schema_free(struct sl_avro_schema *s)
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
		sl_jtree_free(s->jsons[i]);
	free(s->jsons);
	free(s->strs);
	free(s->all);
	free(s);
}

static int parse_text(struct pctx *c, const char *text, size_t len, struct sl_avro **out)
{
	struct sl_rj *j;
	int rc = sl_jtree_parse(text, len, &j, c->err);
	if (rc)
		return rc;
	c->s->jsons[c->s->njsons++] = j;
	return parse(c, j, NULL, 0, out);
}

int sl_avro_schema_parse(const char *text, size_t len, const struct sl_avro_refs *refs, struct sl_avro_schema **out,
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
		sl_avro_schema_free(s);
		return rc;
	}
	*out = s;
	return 0;
}

