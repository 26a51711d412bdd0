/* JSON Schema for the registry: validation of a schema document, and Confluent's JSON Schema compatibility check.
 *
 * Confluent decides compatibility by diffing two schemas loaded the way the everit library loads them (a document
 * becomes typed nodes: string, number, object, array, enum, const, combined, not, reference; several keyword groups
 * in one object become a synthetic allOf) and classifying each difference; the change is compatible when every
 * difference is in its compatible set (SchemaDiff.COMPATIBLE_CHANGES). This file reproduces that loader and diff
 * on the owned JSON tree, so verdicts match Confluent's on its own 104 reference cases
 * (../shared/specs/json-schema-diff-examples.json, tests/unit/test_registry_compat.c). */
#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry/internal.h"

#define JS_MAX_DEPTH 64

enum js_kind {
	JS_EMPTY, JS_TRUE, JS_FALSE, JS_STRING, JS_NUMBER, JS_BOOLEAN, JS_NULL, JS_OBJECT, JS_ARRAY, JS_ENUM, JS_CONST,
	JS_COMBINED, JS_NOT, JS_REF,
};

enum { CRIT_ALL, CRIT_ANY, CRIT_ONE };
static const char *const crit_names[] = {"allOf", "anyOf", "oneOf"};

struct js {
	enum js_kind k;
	const struct sl_rj *src; /* carries $id/title/description/default when common is set */
	bool common;
	/* string */
	const struct sl_rj *min_len, *max_len, *pattern;
	/* number */
	bool integer;
	const struct sl_rj *maximum, *minimum, *exmax, *exmin, *multiple;
	/* object */
	size_t nprops;
	const char **pkeys;
	struct js **pvals;
	const struct sl_rj *required;
	bool permits_add;
	struct js *add;
	size_t npat;
	const char **patkeys;
	struct js **patvals;
	/* property dependencies: "dependencies" members that are arrays, and (draft 2019-09 on) "dependentRequired" */
	size_t ndeparr;
	const char **deparr_k;
	const struct sl_rj **deparr_v;
	/* schema dependencies: "dependencies" members that are schemas, and (2019-09 on) "dependentSchemas" */
	size_t ndepsch;
	const char **depsch_k;
	struct js **depsch_v;
	struct js *uneval_props; /* "unevaluatedProperties" (2019-09 on); NULL when absent */
	const struct sl_rj *min_props, *max_props;
	/* array */
	struct js *all_items;
	size_t nitems;
	struct js **items;
	bool permits_add_items;
	struct js *add_items;
	const struct sl_rj *min_items, *max_items;
	bool unique;
	struct js *uneval_items; /* "unevaluatedItems" (2019-09 on); NULL when absent */
	const struct sl_rj *min_contains, *max_contains;
	/* enum / const */
	const struct sl_rj *values;
	/* combined */
	int crit;
	size_t nsubs;
	struct js **subs;
	/* not / ref */
	struct js *inner;
};

struct loader {
	const struct sl_rj *root;
	int draft; /* 2019 or 2020 when the root's "$schema" names draft 2019-09 or 2020-12, else 0 (draft 4 to 7) */
	struct js **pool;
	size_t n, cap;
	const struct sl_rj **memo_src;
	struct js **memo_js;
	size_t nmemo, capmemo;
	bool oom;
};

static struct js *alloc_js(struct loader *L, enum js_kind k, const struct sl_rj *src)
{
	struct js *j;
	if (L->n == L->cap) {
		size_t cap = L->cap ? L->cap * 2 : 32;
		struct js **p = realloc(L->pool, cap * sizeof *p);
		if (!p) {
			L->oom = true;
			return NULL;
		}
		L->pool = p;
		L->cap = cap;
	}
	if (!(j = calloc(1, sizeof *j))) {
		L->oom = true;
		return NULL;
	}
	j->k = k;
	j->src = src;
	j->permits_add = j->permits_add_items = true;
	L->pool[L->n++] = j;
	return j;
}

static void loader_free(struct loader *L)
{
	for (size_t i = 0; i < L->n; i++) {
		struct js *j = L->pool[i];
		free(j->pkeys);
		free(j->pvals);
		free(j->patkeys);
		free(j->patvals);
		free(j->deparr_k);
		free(j->deparr_v);
		free(j->depsch_k);
		free(j->depsch_v);
		free(j->items);
		free(j->subs);
		free(j);
	}
	free(L->pool);
	free(L->memo_src);
	free(L->memo_js);
}

static struct js *load(struct loader *L, const struct sl_rj *j, int depth);

static bool is_empty_kind(const struct js *s)
{
	return s->k == JS_EMPTY || s->k == JS_TRUE;
}

static bool has_any(const struct sl_rj *j, const char *const *keys)
{
	for (size_t i = 0; keys[i]; i++)
		if (sl_jtree_get(j, keys[i]))
			return true;
	return false;
}

static const char *const object_kw[] = {"properties", "required", "additionalProperties", "patternProperties",
					"dependencies", "minProperties", "maxProperties", "propertyNames", NULL};
static const char *const array_kw[] = {"items", "additionalItems", "minItems", "maxItems", "uniqueItems", "contains",
				       NULL};
static const char *const number_kw[] = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
					NULL};
static const char *const string_kw[] = {"minLength", "maxLength", "pattern", "format", NULL};
/* Keywords of draft 2019-09 and 2020-12 that also imply their type; earlier drafts ignore them, as everit does. */
static const char *const object_kw_2019[] = {"dependentRequired", "dependentSchemas", "unevaluatedProperties", NULL};
static const char *const array_kw_2019[] = {"prefixItems", "unevaluatedItems", "minContains", "maxContains", NULL};

/* Adds one dependency of either kind; a key named twice (in "dependencies" and in "dependentRequired") keeps the
 * first, as a map would. */
static int add_dep(struct loader *L, struct js *n, const char *key, const struct sl_rj *v, int depth)
{
	if (v->t == SL_RJ_ARR) {
		for (size_t i = 0; i < n->ndeparr; i++)
			if (!strcmp(n->deparr_k[i], key))
				return 0;
		const char **k = realloc(n->deparr_k, (n->ndeparr + 1) * sizeof *k);
		if (!k)
			return L->oom = true, -1;
		n->deparr_k = k;
		const struct sl_rj **a = realloc(n->deparr_v, (n->ndeparr + 1) * sizeof *a);
		if (!a)
			return L->oom = true, -1;
		n->deparr_v = a;
		n->deparr_k[n->ndeparr] = key;
		n->deparr_v[n->ndeparr++] = v;
		return 0;
	}
	for (size_t i = 0; i < n->ndepsch; i++)
		if (!strcmp(n->depsch_k[i], key))
			return 0;
	const char **k = realloc(n->depsch_k, (n->ndepsch + 1) * sizeof *k);
	if (!k)
		return L->oom = true, -1;
	n->depsch_k = k;
	struct js **a = realloc(n->depsch_v, (n->ndepsch + 1) * sizeof *a);
	if (!a)
		return L->oom = true, -1;
	n->depsch_v = a;
	n->depsch_k[n->ndepsch] = key;
	if (!(n->depsch_v[n->ndepsch] = load(L, v, depth + 1)))
		return -1;
	n->ndepsch++;
	return 0;
}

/* Loads an optional subschema member (boolean or object); NULL when absent or of another JSON type. */
static int load_opt(struct loader *L, const struct sl_rj *j, const char *key, int depth, struct js **out)
{
	const struct sl_rj *v = sl_jtree_get(j, key);
	*out = NULL;
	if (!v || (v->t != SL_RJ_BOOL && v->t != SL_RJ_OBJ))
		return 0;
	return (*out = load(L, v, depth + 1)) ? 0 : -1;
}

static const struct sl_rj *num(const struct sl_rj *j, const char *k)
{
	const struct sl_rj *v = sl_jtree_get(j, k);
	return v && v->t == SL_RJ_NUM ? v : NULL;
}

/* A node of one type built from the keywords of j that belong to it. */
static struct js *typed(struct loader *L, const struct sl_rj *j, const char *type, int depth)
{
	struct js *n;
	if (!strcmp(type, "string")) {
		if (!(n = alloc_js(L, JS_STRING, j)))
			return NULL;
		n->min_len = num(j, "minLength");
		n->max_len = num(j, "maxLength");
		n->pattern = sl_jtree_get(j, "pattern");
		if (n->pattern && n->pattern->t != SL_RJ_STR)
			n->pattern = NULL;
		return n;
	}
	if (!strcmp(type, "number") || !strcmp(type, "integer")) {
		if (!(n = alloc_js(L, JS_NUMBER, j)))
			return NULL;
		n->integer = type[0] == 'i';
		n->maximum = num(j, "maximum");
		n->minimum = num(j, "minimum");
		n->exmax = num(j, "exclusiveMaximum");
		n->exmin = num(j, "exclusiveMinimum");
		n->multiple = num(j, "multipleOf");
		return n;
	}
	if (!strcmp(type, "boolean"))
		return alloc_js(L, JS_BOOLEAN, j);
	if (!strcmp(type, "null"))
		return alloc_js(L, JS_NULL, j);
	if (!strcmp(type, "object")) {
		const struct sl_rj *p = sl_jtree_get(j, "properties"), *ap = sl_jtree_get(j, "additionalProperties");
		const struct sl_rj *pp = sl_jtree_get(j, "patternProperties"), *dp = sl_jtree_get(j, "dependencies");
		if (!(n = alloc_js(L, JS_OBJECT, j)))
			return NULL;
		if (p && p->t == SL_RJ_OBJ && p->n) {
			n->pkeys = calloc(p->n, sizeof *n->pkeys);
			n->pvals = calloc(p->n, sizeof *n->pvals);
			if (!n->pkeys || !n->pvals)
				return L->oom = true, NULL;
			for (size_t i = 0; i < p->n; i++) {
				n->pkeys[i] = p->keys[i];
				if (!(n->pvals[i] = load(L, p->v[i], depth + 1)))
					return NULL;
				n->nprops = i + 1;
			}
		}
		n->required = sl_jtree_get(j, "required");
		if (n->required && n->required->t != SL_RJ_ARR)
			n->required = NULL;
		if (ap && ap->t == SL_RJ_BOOL)
			n->permits_add = ap->b;
		else if (ap && ap->t == SL_RJ_OBJ && !(n->add = load(L, ap, depth + 1)))
			return NULL;
		if (pp && pp->t == SL_RJ_OBJ && pp->n) {
			n->patkeys = calloc(pp->n, sizeof *n->patkeys);
			n->patvals = calloc(pp->n, sizeof *n->patvals);
			if (!n->patkeys || !n->patvals)
				return L->oom = true, NULL;
			for (size_t i = 0; i < pp->n; i++) {
				n->patkeys[i] = pp->keys[i];
				if (!(n->patvals[i] = load(L, pp->v[i], depth + 1)))
					return NULL;
				n->npat = i + 1;
			}
		}
		if (dp && dp->t == SL_RJ_OBJ)
			for (size_t i = 0; i < dp->n; i++)
				if (add_dep(L, n, dp->keys[i], dp->v[i], depth) < 0)
					return NULL;
		if (L->draft) {
			/* 2019-09 split "dependencies" in two; Confluent diffs both halves as dependencies */
			const struct sl_rj *dr = sl_jtree_get(j, "dependentRequired"), *ds = sl_jtree_get(j, "dependentSchemas");
			for (size_t i = 0; dr && dr->t == SL_RJ_OBJ && i < dr->n; i++)
				if (dr->v[i]->t == SL_RJ_ARR && add_dep(L, n, dr->keys[i], dr->v[i], depth) < 0)
					return NULL;
			for (size_t i = 0; ds && ds->t == SL_RJ_OBJ && i < ds->n; i++)
				if ((ds->v[i]->t == SL_RJ_OBJ || ds->v[i]->t == SL_RJ_BOOL) &&
				    add_dep(L, n, ds->keys[i], ds->v[i], depth) < 0)
					return NULL;
			if (load_opt(L, j, "unevaluatedProperties", depth, &n->uneval_props) < 0)
				return NULL;
		}
		n->min_props = num(j, "minProperties");
		n->max_props = num(j, "maxProperties");
		return n;
	}
	if (!strcmp(type, "array")) {
		const struct sl_rj *it = sl_jtree_get(j, "items"), *ai = sl_jtree_get(j, "additionalItems");
		const struct sl_rj *u = sl_jtree_get(j, "uniqueItems");
		if (!(n = alloc_js(L, JS_ARRAY, j)))
			return NULL;
		if (L->draft == 2020) {
			/* 2020-12: "prefixItems" is the tuple, and "items" then (or when it is a boolean) says what may follow
			 * it, the role "additionalItems" had; an "items" array is not 2020-12 and is read the old way. */
			const struct sl_rj *pi = sl_jtree_get(j, "prefixItems");
			if (pi && pi->t == SL_RJ_ARR) {
				if (pi->n && !(n->items = calloc(pi->n, sizeof *n->items)))
					return L->oom = true, NULL;
				for (size_t i = 0; i < pi->n; i++) {
					if (!(n->items[i] = load(L, pi->v[i], depth + 1)))
						return NULL;
					n->nitems = i + 1;
				}
			}
			if (it && (it->t == SL_RJ_BOOL || (it->t == SL_RJ_OBJ && pi && pi->t == SL_RJ_ARR))) {
				ai = it;
				it = NULL;
			}
		}
		if (L->draft) {
			if (load_opt(L, j, "unevaluatedItems", depth, &n->uneval_items) < 0)
				return NULL;
			n->min_contains = num(j, "minContains");
			n->max_contains = num(j, "maxContains");
		}
		if (it && it->t == SL_RJ_ARR) {
			if (it->n && !(n->items = calloc(it->n, sizeof *n->items)))
				return L->oom = true, NULL;
			for (size_t i = 0; i < it->n; i++) {
				if (!(n->items[i] = load(L, it->v[i], depth + 1)))
					return NULL;
				n->nitems = i + 1;
			}
		} else if (it && !(n->all_items = load(L, it, depth + 1)))
			return NULL;
		if (ai && ai->t == SL_RJ_BOOL)
			n->permits_add_items = ai->b;
		else if (ai && ai->t == SL_RJ_OBJ && !(n->add_items = load(L, ai, depth + 1)))
			return NULL;
		n->min_items = num(j, "minItems");
		n->max_items = num(j, "maxItems");
		n->unique = u && u->t == SL_RJ_BOOL && u->b;
		return n;
	}
	return alloc_js(L, JS_EMPTY, j);
}

/* Resolves a local "$ref" ("#", "#/definitions/x", "#/$defs/x", any JSON pointer into the document). */
static const struct sl_rj *resolve_ref(struct loader *L, const char *ref)
{
	const struct sl_rj *cur = L->root;
	char tok[512];
	if (ref[0] != '#')
		return NULL;
	ref++;
	while (*ref == '/') {
		size_t n = 0;
		ref++;
		while (*ref && *ref != '/' && n + 1 < sizeof tok) {
			if (ref[0] == '~' && ref[1] == '1')
				tok[n++] = '/', ref += 2;
			else if (ref[0] == '~' && ref[1] == '0')
				tok[n++] = '~', ref += 2;
			else
				tok[n++] = *ref++;
		}
		tok[n] = 0;
		if (cur->t == SL_RJ_OBJ)
			cur = sl_jtree_get(cur, tok);
		else if (cur->t == SL_RJ_ARR) {
			char *end;
			long i = strtol(tok, &end, 10);
			cur = (*end || i < 0 || (size_t)i >= cur->n) ? NULL : cur->v[i];
		} else
			cur = NULL;
		if (!cur)
			return NULL;
	}
	return *ref ? NULL : cur;
}

/* Follows references; a chain that loops ("$ref": "#" at the root) stands for no constraint. */
static const struct js *deref(const struct js *s)
{
	static const struct js empty = {JS_EMPTY};
	for (int i = 0; s && s->k == JS_REF; i++) {
		if (i == 32 || !s->inner)
			return &empty;
		s = s->inner;
	}
	return s;
}

static struct js *load(struct loader *L, const struct sl_rj *j, int depth)
{
	struct js *n, *ex[12];
	size_t nex = 0;
	const struct sl_rj *v;
	for (size_t i = 0; i < L->nmemo; i++)
		if (L->memo_src[i] == j)
			return L->memo_js[i];
	if (j->t == SL_RJ_BOOL)
		return alloc_js(L, j->b ? JS_TRUE : JS_FALSE, j);
	if (!(n = alloc_js(L, JS_EMPTY, j)))
		return NULL;
	if (j->t != SL_RJ_OBJ || depth > JS_MAX_DEPTH)
		return n;
	if (L->nmemo == L->capmemo) {
		size_t cap = L->capmemo ? L->capmemo * 2 : 32;
		const struct sl_rj **a = realloc(L->memo_src, cap * sizeof *a);
		struct js **b;
		if (!a)
			return L->oom = true, NULL;
		L->memo_src = a;
		if (!(b = realloc(L->memo_js, cap * sizeof *b)))
			return L->oom = true, NULL;
		L->memo_js = b;
		L->capmemo = cap;
	}
	L->memo_src[L->nmemo] = j;
	L->memo_js[L->nmemo++] = n;
	/* Filled in place so references that loop back to j already hold n. */
	if ((v = sl_jtree_get(j, "$ref")) && v->t == SL_RJ_STR) {
		const struct sl_rj *target = resolve_ref(L, v->s);
		n->k = JS_REF;
		if (target && !(n->inner = load(L, target, depth + 1)))
			return NULL;
		if (!n->inner)
			n->k = JS_EMPTY;
		return n;
	}
	if ((v = sl_jtree_get(j, "enum")) && v->t == SL_RJ_ARR) {
		if (!(ex[nex] = alloc_js(L, JS_ENUM, j)))
			return NULL;
		ex[nex++]->values = v;
	}
	for (int c = CRIT_ALL; c <= CRIT_ONE; c++)
		if ((v = sl_jtree_get(j, crit_names[c])) && v->t == SL_RJ_ARR) {
			struct js *cb = alloc_js(L, JS_COMBINED, j);
			if (!cb || (v->n && !(cb->subs = calloc(v->n, sizeof *cb->subs))))
				return L->oom = true, NULL;
			cb->crit = c;
			for (size_t i = 0; i < v->n; i++) {
				if (!(cb->subs[i] = load(L, v->v[i], depth + 1)))
					return NULL;
				cb->nsubs = i + 1;
			}
			ex[nex++] = cb;
		}
	if ((v = sl_jtree_get(j, "not"))) {
		if (!(ex[nex] = alloc_js(L, JS_NOT, j)) || !(ex[nex]->inner = load(L, v, depth + 1)))
			return NULL;
		nex++;
	}
	if ((v = sl_jtree_get(j, "const"))) {
		if (!(ex[nex] = alloc_js(L, JS_CONST, j)))
			return NULL;
		ex[nex++]->values = v;
	}
	if ((v = sl_jtree_get(j, "type")) && (v->t == SL_RJ_STR || v->t == SL_RJ_ARR)) {
		if (v->t == SL_RJ_STR) {
			if (!(ex[nex++] = typed(L, j, v->s, depth)))
				return NULL;
		} else {
			struct js *cb = alloc_js(L, JS_COMBINED, j);
			if (!cb || (v->n && !(cb->subs = calloc(v->n, sizeof *cb->subs))))
				return L->oom = true, NULL;
			cb->crit = CRIT_ANY;
			for (size_t i = 0; i < v->n; i++)
				if (v->v[i]->t == SL_RJ_STR) {
					if (!(cb->subs[cb->nsubs++] = typed(L, j, v->v[i]->s, depth)))
						return NULL;
				}
			ex[nex++] = cb;
		}
	} else {
		/* No "type": everit infers a schema for each keyword group present. */
		if ((has_any(j, object_kw) || (L->draft && has_any(j, object_kw_2019))) &&
		    !(ex[nex++] = typed(L, j, "object", depth)))
			return NULL;
		if ((has_any(j, array_kw) || (L->draft && has_any(j, array_kw_2019))) &&
		    !(ex[nex++] = typed(L, j, "array", depth)))
			return NULL;
		if (has_any(j, number_kw) && !(ex[nex++] = typed(L, j, "number", depth)))
			return NULL;
		if (has_any(j, string_kw) && !(ex[nex++] = typed(L, j, "string", depth)))
			return NULL;
	}
	if (nex == 1)
		*n = *ex[0]; /* ex[0]'s arrays now belong to n too: clear ex[0] so they are freed once */
	if (nex == 1) {
		struct js *e = ex[0];
		e->pkeys = NULL, e->pvals = NULL, e->patkeys = NULL, e->patvals = NULL;
		e->deparr_k = NULL, e->deparr_v = NULL, e->depsch_k = NULL, e->depsch_v = NULL;
		e->items = NULL, e->subs = NULL;
	} else if (nex > 1) {
		n->k = JS_COMBINED;
		n->crit = CRIT_ALL;
		if (!(n->subs = calloc(nex, sizeof *n->subs)))
			return L->oom = true, NULL;
		memcpy(n->subs, ex, nex * sizeof *ex);
		n->nsubs = nex;
	}
	n->src = j;
	n->common = true;
	return n;
}

/* ---- the diff ---- */

static const char *const compatible_changes[] = {
	"ID_CHANGED", "DESCRIPTION_CHANGED", "TITLE_CHANGED", "DEFAULT_CHANGED", "SCHEMA_REMOVED", "TYPE_EXTENDED",
	"MAX_LENGTH_INCREASED", "MAX_LENGTH_REMOVED", "MIN_LENGTH_DECREASED", "MIN_LENGTH_REMOVED", "PATTERN_REMOVED",
	"MAXIMUM_INCREASED", "MAXIMUM_REMOVED", "MINIMUM_DECREASED", "MINIMUM_REMOVED", "EXCLUSIVE_MAXIMUM_INCREASED",
	"EXCLUSIVE_MAXIMUM_REMOVED", "EXCLUSIVE_MINIMUM_DECREASED", "EXCLUSIVE_MINIMUM_REMOVED", "MULTIPLE_OF_REDUCED",
	"MULTIPLE_OF_REMOVED", "REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED", "REQUIRED_ATTRIBUTE_REMOVED",
	"DEPENDENCY_ARRAY_NARROWED", "DEPENDENCY_ARRAY_REMOVED", "DEPENDENCY_SCHEMA_REMOVED", "MAX_PROPERTIES_INCREASED",
	"MAX_PROPERTIES_REMOVED", "MIN_PROPERTIES_DECREASED", "MIN_PROPERTIES_REMOVED", "ADDITIONAL_PROPERTIES_ADDED",
	"ADDITIONAL_PROPERTIES_EXTENDED", "PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL",
	"REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL", "OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL",
	"PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL", "PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL",
	"PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
	"PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL", "MAX_ITEMS_INCREASED", "MAX_ITEMS_REMOVED",
	"MIN_ITEMS_DECREASED", "MIN_ITEMS_REMOVED", "UNIQUE_ITEMS_REMOVED", "ADDITIONAL_ITEMS_ADDED",
	"ADDITIONAL_ITEMS_EXTENDED", "ITEM_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL",
	"ITEM_ADDED_TO_CLOSED_CONTENT_MODEL", "ITEM_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL",
	"ITEM_REMOVED_FROM_OPEN_CONTENT_MODEL", "ITEM_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
	"ITEM_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL", "ENUM_ARRAY_EXTENDED", "COMBINED_TYPE_EXTENDED",
	"UNEVALUATED_PROPERTIES_ADDED", "UNEVALUATED_PROPERTIES_EXTENDED", "UNEVALUATED_ITEMS_ADDED",
	"UNEVALUATED_ITEMS_EXTENDED", "MAX_CONTAINS_INCREASED", "MAX_CONTAINS_REMOVED", "MIN_CONTAINS_DECREASED",
	"MIN_CONTAINS_REMOVED",
	"PRODUCT_TYPE_NARROWED", "SUM_TYPE_EXTENDED", "NOT_TYPE_NARROWED", NULL,
};

struct diff {
	const char *type;
	char *path;
};

struct pairs {
	const struct js **o, **u;
	size_t n, cap;
	long budget; /* comparisons left: combined schemas compare all pairs of subschemas, which can explode */
};

struct ctx {
	struct diff *d;
	size_t n, cap;
	char path[1024];
	struct pairs *inprog; /* shared by subcontexts */
	bool oom;
};

static bool compatible_type(const char *t)
{
	for (size_t i = 0; compatible_changes[i]; i++)
		if (!strcmp(compatible_changes[i], t))
			return true;
	return false;
}

static void add_diff(struct ctx *c, const char *type)
{
	char buf[1100];
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 8;
		struct diff *d = realloc(c->d, cap * sizeof *d);
		if (!d) {
			c->oom = true;
			return;
		}
		c->d = d;
		c->cap = cap;
	}
	snprintf(buf, sizeof buf, "#/%s", c->path);
	c->d[c->n].type = type;
	if (!(c->d[c->n].path = strdup(buf))) {
		c->oom = true;
		return;
	}
	c->n++;
}

static void add_diffs(struct ctx *c, struct ctx *from)
{
	for (size_t i = 0; i < from->n; i++) {
		size_t saved = strlen(c->path);
		(void)saved;
		if (c->n == c->cap) {
			size_t cap = c->cap ? c->cap * 2 : 8;
			struct diff *d = realloc(c->d, cap * sizeof *d);
			if (!d) {
				c->oom = true;
				return;
			}
			c->d = d;
			c->cap = cap;
		}
		c->d[c->n++] = from->d[i];
		from->d[i].path = NULL;
	}
	c->oom |= from->oom;
}

static bool is_compatible(const struct ctx *c)
{
	if (c->oom)
		return false;
	for (size_t i = 0; i < c->n; i++)
		if (!compatible_type(c->d[i].type))
			return false;
	return true;
}

static void ctx_free(struct ctx *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->d[i].path);
	free(c->d);
	c->d = NULL;
	c->n = c->cap = 0;
}

static void sub_init(struct ctx *sub, const struct ctx *parent)
{
	memset(sub, 0, sizeof *sub);
	memcpy(sub->path, parent->path, sizeof sub->path);
	sub->inprog = parent->inprog;
}

static size_t push(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static size_t push(struct ctx *c, const char *fmt, ...)
{
	size_t len = strlen(c->path);
	va_list ap;
	if (len && len + 1 < sizeof c->path)
		c->path[len] = '/', c->path[len + 1] = 0;
	va_start(ap, fmt);
	vsnprintf(c->path + strlen(c->path), sizeof c->path - strlen(c->path), fmt, ap);
	va_end(ap);
	return len;
}

static void pop(struct ctx *c, size_t len)
{
	c->path[len] = 0;
}

static void add_diff_at(struct ctx *c, const char *attr, const char *type)
{
	size_t l = push(c, "%s", attr);
	add_diff(c, type);
	pop(c, l);
}

static void compare(struct ctx *c, const struct js *o, const struct js *u);
static bool values_contain(const struct sl_rj *set, const struct sl_rj *v);


static int numcmp(const struct sl_rj *a, const struct sl_rj *b)
{
	return a->d < b->d ? -1 : a->d > b->d;
}

/* added/removed/increased/decreased for an optional numeric attribute */
static void cmp_limit(struct ctx *c, const char *attr, const struct sl_rj *o, const struct sl_rj *u, const char *added,
		      const char *removed, const char *inc, const char *dec)
{
	if (!o && !u)
		return;
	if (!o)
		add_diff_at(c, attr, added);
	else if (!u)
		add_diff_at(c, attr, removed);
	else if (numcmp(o, u) < 0)
		add_diff_at(c, attr, inc);
	else if (numcmp(o, u) > 0)
		add_diff_at(c, attr, dec);
}

static bool required_has(const struct js *s, const char *key)
{
	if (!s->required)
		return false;
	for (size_t i = 0; i < s->required->n; i++)
		if (s->required->v[i]->t == SL_RJ_STR && !strcmp(s->required->v[i]->s, key))
			return true;
	return false;
}

static struct js *prop(const struct js *s, const char *key)
{
	for (size_t i = 0; i < s->nprops; i++)
		if (!strcmp(s->pkeys[i], key))
			return s->pvals[i];
	return NULL;
}

/* Open: additionalProperties true or absent, no patternProperties, and unevaluatedProperties absent or true. */
static bool obj_open(const struct js *s)
{
	return s->npat == 0 && !s->add && s->permits_add && (!s->uneval_props || is_empty_kind(s->uneval_props));
}

/* unevaluatedProperties/Items as the schema of what is not listed: only when additional* is absent, and it is
 * neither true nor false */
static struct js *uneval_partial(const struct js *s, bool permits, const struct js *add, struct js *uneval)
{
	(void)s;
	if (!permits || add || !uneval || is_empty_kind(uneval) || uneval->k == JS_FALSE)
		return NULL;
	return uneval;
}

/* Whether glibc's regcomp can be trusted with a pattern from a request: it builds a tree whose size multiplies with
 * nested and stacked repetitions ("a++++...", "(a{200}){200}"), so a 500-byte schema could take gigabytes. Refused:
 * long patterns, a repetition of a repetition (stacked, or of a group that repeats inside), bounds over 255, more
 * than 32 repetitions. A refused pattern matches nothing, as an invalid one does. */
static bool regex_safe(const char *p)
{
	enum { MAXLEN = 512, MAXREP = 32, MAXBOUND = 255, MAXDEPTH = 32 };
	bool group_rep[MAXDEPTH + 1] = {false};
	int depth = 0, reps = 0;
	enum { ATOM, REP, GROUP_WITH_REP } prev = ATOM;
	if (strlen(p) > MAXLEN)
		return false;
	for (const char *c = p; *c; c++) {
		if (*c == '\\') {
			if (!*++c)
				return false;
			prev = ATOM;
		} else if (*c == '[') {
			/* a bracket expression: skip to its end ("[]...]" and "[^]...]" keep a leading ']') */
			c++;
			if (*c == '^')
				c++;
			if (*c == ']')
				c++;
			while (*c && *c != ']')
				c++;
			if (!*c)
				return false;
			prev = ATOM;
		} else if (*c == '(') {
			if (++depth > MAXDEPTH)
				return false;
			group_rep[depth] = false;
			prev = ATOM;
		} else if (*c == ')') {
			if (depth == 0)
				return false;
			bool inner = group_rep[depth--];
			prev = inner ? GROUP_WITH_REP : ATOM;
		} else if (*c == '*' || *c == '+' || *c == '?' || *c == '{') {
			if (prev != ATOM || ++reps > MAXREP)
				return false;
			if (*c == '{') {
				for (c++; *c && *c != '}'; c++) {
					if (*c >= '0' && *c <= '9') {
						long n = strtol(c, (char **)&c, 10);
						if (n > MAXBOUND)
							return false;
						c--;
					} else if (*c != ',')
						return false;
				}
				if (!*c)
					return false;
			}
			prev = REP;
			for (int d = 1; d <= depth; d++)
				group_rep[d] = true;
		} else
			prev = ATOM;
	}
	return true;
}

static struct js *obj_partial(const struct js *s, const char *key)
{
	for (size_t i = 0; i < s->npat; i++) {
		regex_t re;
		bool hit = false;
		if (regex_safe(s->patkeys[i]) && regcomp(&re, s->patkeys[i], REG_EXTENDED | REG_NOSUB) == 0) {
			hit = regexec(&re, key, 0, NULL, 0) == 0;
			regfree(&re);
		}
		if (hit)
			return s->patvals[i];
	}
	return s->add ? s->add : uneval_partial(s, s->permits_add, s->add, s->uneval_props);
}

/* unevaluatedProperties/Items: absent, false and true are content models of their own; two schemas are diffed */
/* additionalProperties / additionalItems: allowed or not (ADDED when the update allows what the original did not),
 * else a schema where there was none (NARROWED) or none where there was one (EXTENDED), else the two compared. */
static void compare_additional(struct ctx *c, const char *attr, bool o_permits, bool u_permits, const struct js *o,
			       const struct js *u, const char *added, const char *removed, const char *narrowed,
			       const char *extended)
{
	size_t l = push(c, "%s", attr);
	if (o_permits != u_permits)
		add_diff(c, u_permits ? added : removed);
	else if (!o && u)
		add_diff(c, narrowed);
	else if (!u && o)
		add_diff(c, extended);
	else
		compare(c, o, u);
	pop(c, l);
}

static void compare_uneval(struct ctx *c, const char *attr, const struct js *o, const struct js *u, const char *added,
			   const char *removed, const char *narrowed, const char *extended)
{
	size_t l;
	if (!o && !u)
		return;
	l = push(c, "%s", attr);
	if (!o)
		add_diff(c, u->k == JS_FALSE ? removed : narrowed);
	else if (!u)
		add_diff(c, o->k == JS_FALSE ? added : extended);
	else if (o->k == JS_FALSE && u->k != JS_FALSE)
		add_diff(c, added);
	else if (o->k != JS_FALSE && u->k == JS_FALSE)
		add_diff(c, removed);
	else if (is_empty_kind(o) && !is_empty_kind(u))
		add_diff(c, narrowed);
	else if (!is_empty_kind(o) && is_empty_kind(u))
		add_diff(c, extended);
	else
		compare(c, o, u);
	pop(c, l);
}

static bool has_default(const struct js *s)
{
	return s->src && s->src->t == SL_RJ_OBJ && sl_jtree_get(s->src, "default");
}

static void compare_object(struct ctx *c, const struct js *o, const struct js *u)
{
	size_t l, l2;
	/* required */
	l = push(c, "required");
	for (size_t i = 0; i < o->nprops; i++) {
		const char *k = o->pkeys[i];
		bool orq, urq;
		if (!prop(u, k))
			continue;
		orq = required_has(o, k);
		urq = required_has(u, k);
		l2 = push(c, "%s", k);
		if (orq && !urq)
			add_diff(c, "REQUIRED_ATTRIBUTE_REMOVED");
		else if (!orq && urq)
			add_diff(c, has_default(prop(u, k)) ? "REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED" : "REQUIRED_ATTRIBUTE_ADDED");
		pop(c, l2);
	}
	pop(c, l);
	/* properties: every key of either side */
	l = push(c, "properties");
	for (int side = 0; side < 2; side++) {
		const struct js *s = side ? u : o;
		for (size_t i = 0; i < s->nprops; i++) {
			const char *k = s->pkeys[i];
			struct js *os = prop(o, k), *us = prop(u, k);
			if (side && os)
				continue; /* already compared from the original's side */
			l2 = push(c, "%s", k);
			if (!us) {
				if (obj_open(u))
					add_diff(c, "PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL");
				else {
					struct js *partial = obj_partial(u, k);
					if (partial) {
						struct ctx sub;
						sub_init(&sub, c);
						compare(&sub, os, partial);
						bool okc = is_compatible(&sub);
						add_diffs(c, &sub);
						ctx_free(&sub);
						add_diff(c, okc ? "PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
								: "PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL");
					} else
						add_diff(c, os->k == JS_FALSE ? "PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL"
									      : "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL");
				}
			} else if (!os) {
				if (obj_open(o))
					add_diff(c, is_empty_kind(us) ? "PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL"
								      : "PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL");
				else {
					struct js *partial = obj_partial(o, k);
					if (partial) {
						struct ctx sub;
						sub_init(&sub, c);
						compare(&sub, partial, us);
						bool okc = is_compatible(&sub);
						add_diffs(c, &sub);
						ctx_free(&sub);
						add_diff(c, okc ? "PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
								: "PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL");
					}
					if (required_has(u, k))
						add_diff(c, has_default(us) ? "REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL"
									    : "REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL");
					else
						add_diff(c, "OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL");
				}
			} else
				compare(c, os, us);
			pop(c, l2);
		}
	}
	pop(c, l);
	/* dependencies: property (array) dependencies first, then schema dependencies, each over the keys of both */
	l = push(c, "dependencies");
	for (int side = 0; side < 2; side++) {
		const struct js *s = side ? u : o;
		for (size_t i = 0; i < s->ndeparr; i++) {
			const char *k = s->deparr_k[i];
			const struct sl_rj *ov = NULL, *uv = NULL;
			for (size_t a = 0; a < o->ndeparr; a++)
				if (!strcmp(o->deparr_k[a], k))
					ov = o->deparr_v[a];
			for (size_t a = 0; a < u->ndeparr; a++)
				if (!strcmp(u->deparr_k[a], k))
					uv = u->deparr_v[a];
			if (side && ov)
				continue;
			l2 = push(c, "%s", k);
			if (!uv)
				add_diff(c, "DEPENDENCY_ARRAY_REMOVED");
			else if (!ov)
				add_diff(c, "DEPENDENCY_ARRAY_ADDED");
			else {
				bool u_all = true, o_all = true; /* compared as sets */
				for (size_t a = 0; a < ov->n; a++)
					u_all &= values_contain(uv, ov->v[a]);
				for (size_t b = 0; b < uv->n; b++)
					o_all &= values_contain(ov, uv->v[b]);
				if (!(u_all && o_all))
					add_diff(c, u_all ? "DEPENDENCY_ARRAY_EXTENDED"
							  : o_all ? "DEPENDENCY_ARRAY_NARROWED" : "DEPENDENCY_ARRAY_CHANGED");
			}
			pop(c, l2);
		}
	}
	for (int side = 0; side < 2; side++) {
		const struct js *s = side ? u : o;
		for (size_t i = 0; i < s->ndepsch; i++) {
			const char *k = s->depsch_k[i];
			struct js *os = NULL, *us = NULL;
			for (size_t a = 0; a < o->ndepsch; a++)
				if (!strcmp(o->depsch_k[a], k))
					os = o->depsch_v[a];
			for (size_t a = 0; a < u->ndepsch; a++)
				if (!strcmp(u->depsch_k[a], k))
					us = u->depsch_v[a];
			if (side && os)
				continue;
			l2 = push(c, "%s", k);
			if (!us)
				add_diff(c, "DEPENDENCY_SCHEMA_REMOVED");
			else if (!os)
				add_diff(c, "DEPENDENCY_SCHEMA_ADDED");
			else
				compare(c, os, us);
			pop(c, l2);
		}
	}
	pop(c, l);
	/* additionalProperties */
	compare_additional(c, "additionalProperties", o->permits_add, u->permits_add, o->add, u->add,
			   "ADDITIONAL_PROPERTIES_ADDED", "ADDITIONAL_PROPERTIES_REMOVED", "ADDITIONAL_PROPERTIES_NARROWED",
			   "ADDITIONAL_PROPERTIES_EXTENDED");
	compare_uneval(c, "unevaluatedProperties", o->uneval_props, u->uneval_props, "UNEVALUATED_PROPERTIES_ADDED",
		       "UNEVALUATED_PROPERTIES_REMOVED", "UNEVALUATED_PROPERTIES_NARROWED", "UNEVALUATED_PROPERTIES_EXTENDED");
	cmp_limit(c, "maxProperties", o->max_props, u->max_props, "MAX_PROPERTIES_ADDED", "MAX_PROPERTIES_REMOVED",
		  "MAX_PROPERTIES_INCREASED", "MAX_PROPERTIES_DECREASED");
	cmp_limit(c, "minProperties", o->min_props, u->min_props, "MIN_PROPERTIES_ADDED", "MIN_PROPERTIES_REMOVED",
		  "MIN_PROPERTIES_INCREASED", "MIN_PROPERTIES_DECREASED");
}

static bool arr_open(const struct js *s)
{
	return s->permits_add_items && !s->add_items && (!s->uneval_items || is_empty_kind(s->uneval_items));
}

static struct js *arr_partial(const struct js *s)
{
	return s->add_items ? s->add_items : uneval_partial(s, s->permits_add_items, s->add_items, s->uneval_items);
}

static void compare_array(struct ctx *c, const struct js *o, const struct js *u)
{
	size_t l = push(c, "items"), n = o->nitems < u->nitems ? o->nitems : u->nitems;
	compare(c, o->all_items, u->all_items);
	pop(c, l);
	for (size_t i = 0; i < n; i++) {
		l = push(c, "items/%zu", i);
		compare(c, o->items[i], u->items[i]);
		pop(c, l);
	}
	for (size_t i = n; i < o->nitems; i++) {
		l = push(c, "items/%zu", i);
		if (arr_open(u))
			add_diff(c, "ITEM_REMOVED_FROM_OPEN_CONTENT_MODEL");
		else if (arr_partial(u)) {
			struct ctx sub;
			sub_init(&sub, c);
			compare(&sub, o->items[i], arr_partial(u));
			bool okc = is_compatible(&sub);
			add_diffs(c, &sub);
			ctx_free(&sub);
			add_diff(c, okc ? "ITEM_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
					: "ITEM_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL");
		} else
			add_diff(c, o->items[i]->k == JS_FALSE ? "ITEM_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL"
							       : "ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL");
		pop(c, l);
	}
	for (size_t i = n; i < u->nitems; i++) {
		l = push(c, "items/%zu", i);
		if (arr_open(o))
			add_diff(c, is_empty_kind(u->items[i]) ? "ITEM_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL"
							       : "ITEM_ADDED_TO_OPEN_CONTENT_MODEL");
		else if (arr_partial(o)) {
			struct ctx sub;
			sub_init(&sub, c);
			compare(&sub, arr_partial(o), u->items[i]);
			bool okc = is_compatible(&sub);
			add_diffs(c, &sub);
			ctx_free(&sub);
			add_diff(c, okc ? "ITEM_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
					: "ITEM_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL");
		} else
			add_diff(c, "ITEM_ADDED_TO_CLOSED_CONTENT_MODEL");
		pop(c, l);
	}
	compare_additional(c, "additionalItems", o->permits_add_items, u->permits_add_items, o->add_items, u->add_items,
			   "ADDITIONAL_ITEMS_ADDED", "ADDITIONAL_ITEMS_REMOVED", "ADDITIONAL_ITEMS_NARROWED",
			   "ADDITIONAL_ITEMS_EXTENDED");
	compare_uneval(c, "unevaluatedItems", o->uneval_items, u->uneval_items, "UNEVALUATED_ITEMS_ADDED",
		       "UNEVALUATED_ITEMS_REMOVED", "UNEVALUATED_ITEMS_NARROWED", "UNEVALUATED_ITEMS_EXTENDED");
	cmp_limit(c, "maxItems", o->max_items, u->max_items, "MAX_ITEMS_ADDED", "MAX_ITEMS_REMOVED", "MAX_ITEMS_INCREASED",
		  "MAX_ITEMS_DECREASED");
	cmp_limit(c, "minItems", o->min_items, u->min_items, "MIN_ITEMS_ADDED", "MIN_ITEMS_REMOVED", "MIN_ITEMS_INCREASED",
		  "MIN_ITEMS_DECREASED");
	if (o->unique != u->unique)
		add_diff_at(c, "uniqueItems", o->unique ? "UNIQUE_ITEMS_REMOVED" : "UNIQUE_ITEMS_ADDED");
	cmp_limit(c, "maxContains", o->max_contains, u->max_contains, "MAX_CONTAINS_ADDED", "MAX_CONTAINS_REMOVED",
		  "MAX_CONTAINS_INCREASED", "MAX_CONTAINS_DECREASED");
	cmp_limit(c, "minContains", o->min_contains, u->min_contains, "MIN_CONTAINS_ADDED", "MIN_CONTAINS_REMOVED",
		  "MIN_CONTAINS_INCREASED", "MIN_CONTAINS_DECREASED");
}

/* Maximum bipartite matching (Kuhn's augmenting paths) over the compatible (original, update) subschema pairs. */
static bool augment(size_t a, size_t nb, const bool *edge, bool *seen, long *match_b)
{
	for (size_t b = 0; b < nb; b++) {
		if (!edge[a * nb + b] || seen[b])
			continue;
		seen[b] = true;
		if (match_b[b] < 0 || augment((size_t)match_b[b], nb, edge, seen, match_b)) {
			match_b[b] = (long)a;
			return true;
		}
	}
	return false;
}

static size_t dedupe(const struct js *s, const struct js **out)
{
	size_t n = 0;
	for (size_t i = 0; i < s->nsubs; i++) {
		bool dup = false;
		for (size_t k = 0; k < n && !dup; k++)
			dup = out[k] == s->subs[i] || sl_jtree_equal(out[k]->src, s->subs[i]->src);
		if (!dup)
			out[n++] = s->subs[i];
	}
	return n;
}

static void compare_combined(struct ctx *c, const struct js *o, const struct js *u)
{
	const char *t = NULL;
	if (o->crit != u->crit) {
		/* Confluent's criteria rule: anything may become anyOf; a singleton may become oneOf; allOf may become
		 * a singleton of any kind (allOf:[number,string] -> oneOf:[string] narrows a product, compatibly) */
		bool os1 = o->nsubs == 1, us1 = u->nsubs == 1;
		if (u->crit == CRIT_ANY || (os1 && us1) || (os1 && u->crit == CRIT_ONE) || (us1 && o->crit == CRIT_ALL))
			t = "COMBINED_TYPE_EXTENDED";
		else
			t = "COMBINED_TYPE_CHANGED";
		add_diff(c, t);
		if (!strcmp(t, "COMBINED_TYPE_CHANGED"))
			return;
	}
	const struct js **os = calloc(o->nsubs + 1, sizeof *os), **us = calloc(u->nsubs + 1, sizeof *us);
	size_t no, nu;
	if (!os || !us) {
		free(os);
		free(us);
		c->oom = true;
		return;
	}
	no = dedupe(o, os);
	nu = dedupe(u, us);
	/* extended is named after the update's criterion, narrowed after the original's (as Confluent names them) */
	if (no < nu)
		add_diff(c, u->crit == CRIT_ALL ? "PRODUCT_TYPE_EXTENDED" : "SUM_TYPE_EXTENDED");
	else if (no > nu)
		add_diff(c, o->crit == CRIT_ALL ? "PRODUCT_TYPE_NARROWED" : "SUM_TYPE_NARROWED");
	bool *edge = calloc(no * nu + 1, sizeof *edge), *seen = calloc(nu + 1, sizeof *seen);
	long *match = malloc((nu + 1) * sizeof *match);
	struct ctx *subs = calloc(no * nu + 1, sizeof *subs);
	if (!edge || !seen || !match || !subs) {
		c->oom = true;
		goto out;
	}
	for (size_t a = 0; a < no; a++) {
		size_t l = push(c, "%s/%zu", crit_names[o->crit], a);
		for (size_t b = 0; b < nu; b++) {
			sub_init(&subs[a * nu + b], c);
			compare(&subs[a * nu + b], os[a], us[b]);
			edge[a * nu + b] = is_compatible(&subs[a * nu + b]);
		}
		pop(c, l);
	}
	size_t matched = 0;
	for (size_t b = 0; b < nu; b++)
		match[b] = -1;
	for (size_t a = 0; a < no; a++) {
		memset(seen, 0, (nu + 1) * sizeof *seen);
		matched += augment(a, nu, edge, seen, match);
	}
	for (size_t b = 0; b < nu; b++)
		if (match[b] >= 0)
			add_diffs(c, &subs[(size_t)match[b] * nu + b]);
	if (matched < (no < nu ? no : nu))
		add_diff(c, "COMBINED_TYPE_SUBSCHEMAS_CHANGED");
out:
	for (size_t i = 0; subs && i < no * nu; i++)
		ctx_free(&subs[i]);
	free(subs);
	free(edge);
	free(seen);
	free(match);
	free(os);
	free(us);
}

static bool values_contain(const struct sl_rj *set, const struct sl_rj *v)
{
	for (size_t i = 0; i < set->n; i++)
		if (sl_jtree_equal(set->v[i], v))
			return true;
	return false;
}

static bool same_kind(const struct js *a, const struct js *b)
{
	if (is_empty_kind(a) && is_empty_kind(b))
		return true;
	return a->k == b->k;
}

static bool common_differs(const struct js *o, const struct js *u, const char *k)
{
	const struct sl_rj *a = o->common ? sl_jtree_get(o->src, k) : NULL, *b = u->common ? sl_jtree_get(u->src, k) : NULL;
	return !sl_jtree_equal(a, b);
}

static void compare(struct ctx *c, const struct js *o, const struct js *u)
{
	if (!o && !u)
		return;
	if (!o) {
		add_diff(c, "SCHEMA_ADDED");
		return;
	}
	if (!u) {
		add_diff(c, "SCHEMA_REMOVED");
		return;
	}
	if (--c->inprog->budget < 0) {
		if (c->inprog->budget == -1)
			add_diff(c, "SCHEMA_TOO_COMPLEX_TO_COMPARE");
		else
			c->oom = true; /* keeps every enclosing context incompatible without more messages */
		return;
	}
	o = deref(o);
	u = deref(u);
	if (o->k != JS_COMBINED && u->k == JS_COMBINED) {
		if (u->nsubs == 1) {
			struct ctx sub;
			sub_init(&sub, c);
			compare(&sub, o, u->subs[0]);
			if (is_compatible(&sub)) {
				add_diffs(c, &sub);
				ctx_free(&sub);
				return;
			}
			ctx_free(&sub);
		} else if (u->crit == CRIT_ANY || u->crit == CRIT_ONE) {
			for (size_t i = 0; i < u->nsubs; i++) {
				struct ctx sub;
				sub_init(&sub, c);
				compare(&sub, o, u->subs[i]);
				if (is_compatible(&sub)) {
					add_diffs(c, &sub);
					ctx_free(&sub);
					add_diff(c, "SUM_TYPE_EXTENDED");
					return;
				}
				ctx_free(&sub);
			}
		}
	} else if (o->k == JS_COMBINED && u->k != JS_COMBINED) {
		if (o->nsubs == 1) {
			struct ctx sub;
			sub_init(&sub, c);
			compare(&sub, o->subs[0], u);
			if (is_compatible(&sub)) {
				add_diffs(c, &sub);
				ctx_free(&sub);
				return;
			}
			ctx_free(&sub);
		}
		if (o->crit == CRIT_ALL)
			for (size_t i = 0; i < o->nsubs; i++) {
				struct ctx sub;
				sub_init(&sub, c);
				compare(&sub, o->subs[i], u);
				if (is_compatible(&sub)) {
					add_diffs(c, &sub);
					ctx_free(&sub);
					add_diff(c, "PRODUCT_TYPE_NARROWED");
					return;
				}
				ctx_free(&sub);
			}
	}
	if (!same_kind(o, u)) {
		if (o->k == JS_FALSE || is_empty_kind(u))
			return;
		add_diff(c, "TYPE_CHANGED");
		return;
	}
	/* A pair already being compared further up is a recursive cycle: assume compatible. */
	struct pairs *p = c->inprog;
	for (size_t i = 0; i < p->n; i++)
		if (p->o[i] == o && p->u[i] == u)
			return;
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 32;
		const struct js **a = realloc(p->o, cap * sizeof *a), **b;
		if (!a) {
			c->oom = true;
			return;
		}
		p->o = a;
		if (!(b = realloc(p->u, cap * sizeof *b))) {
			c->oom = true;
			return;
		}
		p->u = b;
		p->cap = cap;
	}
	if (p->n > 4 * JS_MAX_DEPTH) {
		add_diff(c, "TOO_DEEP");
		return;
	}
	p->o[p->n] = o;
	p->u[p->n++] = u;
	if (common_differs(o, u, "$id") || common_differs(o, u, "id"))
		add_diff(c, "ID_CHANGED");
	if (common_differs(o, u, "title"))
		add_diff(c, "TITLE_CHANGED");
	if (common_differs(o, u, "description"))
		add_diff(c, "DESCRIPTION_CHANGED");
	if (common_differs(o, u, "default"))
		add_diff(c, "DEFAULT_CHANGED");
	switch (o->k) {
	case JS_STRING:
		cmp_limit(c, "maxLength", o->max_len, u->max_len, "MAX_LENGTH_ADDED", "MAX_LENGTH_REMOVED",
			  "MAX_LENGTH_INCREASED", "MAX_LENGTH_DECREASED");
		cmp_limit(c, "minLength", o->min_len, u->min_len, "MIN_LENGTH_ADDED", "MIN_LENGTH_REMOVED",
			  "MIN_LENGTH_INCREASED", "MIN_LENGTH_DECREASED");
		if (!o->pattern && u->pattern)
			add_diff_at(c, "pattern", "PATTERN_ADDED");
		else if (o->pattern && !u->pattern)
			add_diff_at(c, "pattern", "PATTERN_REMOVED");
		else if (o->pattern && strcmp(o->pattern->s, u->pattern->s))
			add_diff_at(c, "pattern", "PATTERN_CHANGED");
		break;
	case JS_NUMBER:
		cmp_limit(c, "maximum", o->maximum, u->maximum, "MAXIMUM_ADDED", "MAXIMUM_REMOVED", "MAXIMUM_INCREASED",
			  "MAXIMUM_DECREASED");
		cmp_limit(c, "minimum", o->minimum, u->minimum, "MINIMUM_ADDED", "MINIMUM_REMOVED", "MINIMUM_INCREASED",
			  "MINIMUM_DECREASED");
		cmp_limit(c, "exclusiveMaximum", o->exmax, u->exmax, "EXCLUSIVE_MAXIMUM_ADDED", "EXCLUSIVE_MAXIMUM_REMOVED",
			  "EXCLUSIVE_MAXIMUM_INCREASED", "EXCLUSIVE_MAXIMUM_DECREASED");
		cmp_limit(c, "exclusiveMinimum", o->exmin, u->exmin, "EXCLUSIVE_MINIMUM_ADDED", "EXCLUSIVE_MINIMUM_REMOVED",
			  "EXCLUSIVE_MINIMUM_INCREASED", "EXCLUSIVE_MINIMUM_DECREASED");
		if (o->multiple || u->multiple) {
			if (!o->multiple)
				add_diff_at(c, "multipleOf", "MULTIPLE_OF_ADDED");
			else if (!u->multiple)
				add_diff_at(c, "multipleOf", "MULTIPLE_OF_REMOVED");
			else if (o->multiple->d != u->multiple->d)
				add_diff_at(c, "multipleOf",
					    u->multiple->d != 0 && fmod(o->multiple->d, u->multiple->d) == 0
						    ? "MULTIPLE_OF_REDUCED" : "MULTIPLE_OF_CHANGED");
		}
		if (o->integer != u->integer)
			add_diff(c, o->integer ? "TYPE_EXTENDED" : "TYPE_NARROWED");
		break;
	case JS_ENUM:
	case JS_CONST: {
		size_t l = push(c, o->k == JS_ENUM ? "enum" : "const");
		if (!sl_jtree_equal(o->values, u->values)) {
			if (o->k == JS_CONST)
				add_diff(c, "ENUM_ARRAY_CHANGED");
			else {
				bool u_all = true, o_all = true;
				for (size_t i = 0; i < o->values->n; i++)
					u_all &= values_contain(u->values, o->values->v[i]);
				for (size_t i = 0; i < u->values->n; i++)
					o_all &= values_contain(o->values, u->values->v[i]);
				add_diff(c, u_all ? "ENUM_ARRAY_EXTENDED" : o_all ? "ENUM_ARRAY_NARROWED" : "ENUM_ARRAY_CHANGED");
			}
		}
		pop(c, l);
		break;
	}
	case JS_COMBINED:
		compare_combined(c, o, u);
		break;
	case JS_NOT: {
		struct ctx sub;
		size_t l = push(c, "not");
		sub_init(&sub, c);
		compare(&sub, u->inner, o->inner); /* reversed: not-schemas narrow when their inner schemas widen */
		add_diff(c, is_compatible(&sub) ? "NOT_TYPE_NARROWED" : "NOT_TYPE_EXTENDED");
		ctx_free(&sub);
		pop(c, l);
		break;
	}
	case JS_OBJECT:
		compare_object(c, o, u);
		break;
	case JS_ARRAY:
		compare_array(c, o, u);
		break;
	default:
		break;
	}
	p->n--;
}

/* The draft named by the root's "$schema": 2019-09 and 2020-12 add keywords that earlier drafts ignore. */
static int draft_of(const struct sl_rj *root)
{
	const struct sl_rj *v = root && root->t == SL_RJ_OBJ ? sl_jtree_get(root, "$schema") : NULL;
	if (!v || v->t != SL_RJ_STR)
		return 0;
	if (strstr(v->s, "2020-12"))
		return 2020;
	return strstr(v->s, "2019-09") ? 2019 : 0;
}

int sl_reg_jsonschema_compatible(const struct sl_rj *reader, const struct sl_rj *writer, struct sl_buf *msgs)
{
	struct loader lo = {writer, draft_of(writer)}, lu = {reader, draft_of(reader)};
	struct js *o = load(&lo, writer, 0), *u = load(&lu, reader, 0);
	struct pairs p = {0};
	struct ctx c = {0};
	p.budget = 200000;
	int rc;
	c.inprog = &p;
	if (!o || !u || lo.oom || lu.oom)
		c.oom = true;
	else
		compare(&c, o, u);
	rc = is_compatible(&c) ? 0 : 1;
	if (c.oom)
		sl_reg_msg(msgs, p.budget < 0 ? "SCHEMA_TOO_COMPLEX_TO_COMPARE #/ (more than 200000 comparisons)"
					      : "out of memory comparing JSON schemas");
	for (size_t i = 0; i < c.n; i++)
		if (!compatible_type(c.d[i].type))
			sl_reg_msg(msgs, "%s %s", c.d[i].type, c.d[i].path);
	ctx_free(&c);
	free(p.o);
	free(p.u);
	loader_free(&lo);
	loader_free(&lu);
	return rc;
}

/* Confluent loads the schema with everit, which refuses malformed keywords; these are the checks users hit. */
int sl_reg_jsonschema_validate(const char *text, size_t len, struct sl_err *err)
{
	struct sl_rj *j;
	int rc = sl_jtree_parse(text, len, &j, err);
	if (rc)
		return rc;
	if (j->t != SL_RJ_OBJ && j->t != SL_RJ_BOOL)
		rc = sl_err_set(err, SL_EINVAL, "a JSON Schema is an object or a boolean, not %s",
				j->t == SL_RJ_ARR ? "an array" : "a scalar");
	else if (j->t == SL_RJ_OBJ) {
		static const char *const types[] = {"string", "number", "integer", "boolean", "null", "object", "array", NULL};
		const struct sl_rj *t = sl_jtree_get(j, "type");
		size_t n = t ? (t->t == SL_RJ_ARR ? t->n : 1) : 0;
		for (size_t i = 0; i < n && !rc; i++) {
			const struct sl_rj *x = t->t == SL_RJ_ARR ? t->v[i] : t;
			bool known = false;
			for (size_t k = 0; x->t == SL_RJ_STR && types[k]; k++)
				known |= !strcmp(x->s, types[k]);
			if (!known)
				rc = sl_err_set(err, SL_EINVAL, "#/type: %s is not a JSON Schema type",
						x->t == SL_RJ_STR ? x->s : "a non-string");
		}
	}
	sl_jtree_free(j);
	return rc;
}
