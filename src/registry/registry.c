/* The registry's state and its operations: the fold of `_schemas` records into subjects, versions, schemas by id,
 * compatibility levels and modes; schema parsing per type (validation, canonical text, references); compatibility
 * levels; registration; and the public C API. Confluent's semantics are the contract (notes/schema-registry.md):
 * one id per distinct (type, canonical text, references) across the subjects of a context, next version = highest
 * version still stored + 1, soft-deleted versions hidden but still served by id. The REST mapping is in service.c. */
#include <stdarg.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/log.h"
#include "registry/internal.h"

const char *const sl_reg_levels[] = {"NONE", "BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE",
				     "FULL", "FULL_TRANSITIVE", NULL};
const char *const sl_reg_modes[] = {"READWRITE", "READONLY", "READONLY_OVERRIDE", "IMPORT", NULL};

static char *xstrdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

static bool streq_null(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return !strcmp(a, b);
}

/* ---- state ---- */

/* Contexts have their own id spaces, as in Confluent: a schema belongs to the context of the subject whose record
 * brought it (":.ctx:subject" -> ".ctx"; an unqualified subject, or ":.:subject", -> the default "."), and ids are
 * counted, matched and looked up within one context. The `_schemas` records name the qualified subject, so the fold
 * (and so a restart, a follower, or a store written before contexts had their own ids) rebuilds the same ids. */
const char *sl_reg_ctx_name(const char *where, size_t *len)
{
	const char *end;
	if (where && where[0] == ':' && where[1] == '.' && (end = strchr(where + 1, ':'))) {
		*len = (size_t)(end - where) - 1;
		return where + 1;
	}
	*len = 1;
	return ".";
}

static bool in_ctx(const char *ctx, const char *where)
{
	size_t len;
	const char *c = sl_reg_ctx_name(where, &len);
	return strlen(ctx) == len && !memcmp(ctx, c, len);
}

bool sl_reg_same_ctx(const char *a, const char *b)
{
	size_t la, lb;
	const char *ca = sl_reg_ctx_name(a, &la), *cb = sl_reg_ctx_name(b, &lb);
	return la == lb && !memcmp(ca, cb, la);
}

struct sl_reg_schema *sl_reg_schema_by_id(struct sl_registry *r, const char *where, int id)
{
	for (size_t i = 0; i < r->nschemas; i++)
		if (r->schemas[i].id == id && in_ctx(r->schemas[i].ctx, where))
			return &r->schemas[i];
	return NULL;
}

int sl_reg_max_id(struct sl_registry *r, const char *where)
{
	int m = 0;
	for (size_t i = 0; i < r->nschemas; i++)
		if (r->schemas[i].id > m && in_ctx(r->schemas[i].ctx, where))
			m = r->schemas[i].id;
	return m;
}

struct sl_reg_version *sl_reg_find_version(struct sl_registry *r, const char *subject, int version)
{
	for (size_t i = 0; i < r->nvers; i++)
		if (r->vers[i].version == version && !strcmp(r->vers[i].subject, subject))
			return &r->vers[i];
	return NULL;
}

/* Versions of subject sorted ascending; live only unless with_deleted. Caller frees. */
size_t sl_reg_subject_versions(struct sl_registry *r, const char *subject, bool with_deleted,
			       struct sl_reg_version ***out)
{
	size_t n = 0;
	struct sl_reg_version **v = NULL;
	*out = NULL;
	for (size_t i = 0; i < r->nvers; i++)
		if (!strcmp(r->vers[i].subject, subject) && (with_deleted || !r->vers[i].deleted))
			n++;
	if (!n || !(v = malloc(n * sizeof *v)))
		return 0;
	n = 0;
	for (size_t i = 0; i < r->nvers; i++)
		if (!strcmp(r->vers[i].subject, subject) && (with_deleted || !r->vers[i].deleted)) {
			size_t k = n++;
			while (k > 0 && v[k - 1]->version > r->vers[i].version) {
				v[k] = v[k - 1];
				k--;
			}
			v[k] = &r->vers[i];
		}
	*out = v;
	return n;
}

/* Whether any live (or any, with_deleted) version of where's context uses id. */
bool sl_reg_id_in_use(struct sl_registry *r, const char *where, int id, bool with_deleted)
{
	for (size_t i = 0; i < r->nvers; i++)
		if (r->vers[i].id == id && (with_deleted || !r->vers[i].deleted) &&
		    sl_reg_same_ctx(r->vers[i].subject, where))
			return true;
	return false;
}

bool sl_reg_schema_in_use(struct sl_registry *r, const struct sl_reg_schema *s, bool with_deleted)
{
	for (size_t i = 0; i < r->nvers; i++)
		if (r->vers[i].id == s->id && (with_deleted || !r->vers[i].deleted) && in_ctx(s->ctx, r->vers[i].subject))
			return true;
	return false;
}

static void kv_set(struct sl_reg_kv **arr, size_t *n, size_t *cap, const char *subject, const char *value)
{
	for (size_t i = 0; i < *n; i++)
		if (streq_null((*arr)[i].subject, subject)) {
			if (!value) {
				free((*arr)[i].subject);
				free((*arr)[i].value);
				(*arr)[i] = (*arr)[--*n];
			} else {
				free((*arr)[i].value);
				(*arr)[i].value = xstrdup(value);
			}
			return;
		}
	if (!value)
		return;
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 8;
		struct sl_reg_kv *a = realloc(*arr, nc * sizeof *a);
		if (!a)
			return;
		*arr = a;
		*cap = nc;
	}
	(*arr)[*n].subject = xstrdup(subject);
	(*arr)[*n].value = xstrdup(value);
	++*n;
}

const char *sl_reg_kv_get(const struct sl_reg_kv *arr, size_t n, const char *subject)
{
	for (size_t i = 0; i < n; i++)
		if (streq_null(arr[i].subject, subject))
			return arr[i].value;
	return NULL;
}

/* Where a subject's settings come from, most specific first, as Confluent's lookup cache falls back: the subject's
 * own; then its context's (":.ctx:") for a named context, else the top-level (NULL) one for the default context;
 * then the ":.__GLOBAL:" context's. A subject in a named context does not fall back to the top-level setting (Confluent
 * does not either). ctx holds the context key. Returns the number of keys; keys[i] may be NULL (top level). */
size_t sl_reg_scope(const char *subject, const char *keys[3], char *ctx, size_t ctxlen)
{
	static const char global_ctx[] = ":.__GLOBAL:";
	const char *end;
	size_t n = 0;
	if (subject && !strncmp(subject, ":.:", 3) && !subject[3])
		subject = NULL; /* ":.:" names the default context: the top level */
	if (!subject) {
		keys[n++] = NULL;
		keys[n++] = global_ctx;
		return n;
	}
	keys[n++] = subject;
	if (!strncmp(subject, ":.", 2) && (end = strchr(subject + 2, ':')) && end > subject + 2 &&
	    (size_t)(end - subject) + 1 < ctxlen) {
		size_t cl = (size_t)(end - subject) + 1;
		memcpy(ctx, subject, cl);
		ctx[cl] = 0;
		if (strcmp(ctx, subject) && strcmp(ctx, global_ctx))
			keys[n++] = ctx;
	} else
		keys[n++] = NULL;
	if (strcmp(subject, global_ctx))
		keys[n++] = global_ctx;
	return n;
}

static const char *scoped(const struct sl_reg_kv *arr, size_t narr, const char *subject)
{
	const char *keys[3], *v;
	char ctx[256];
	size_t n = sl_reg_scope(subject, keys, ctx, sizeof ctx);
	for (size_t i = 0; i < n; i++)
		if ((v = sl_reg_kv_get(arr, narr, keys[i])))
			return v;
	return NULL;
}

const char *sl_reg_level(struct sl_registry *r, const char *subject)
{
	const char *v = scoped(r->compat, r->ncompat, subject);
	return v ? v : "BACKWARD";
}

const char *sl_reg_mode(struct sl_registry *r, const char *subject)
{
	const char *v = scoped(r->mode, r->nmode, subject);
	return v ? v : "READWRITE";
}

static void put_schema(struct sl_registry *r, const char *subject, int id, const char *type, const char *text, const char *refs,
		       const char *metadata, const char *ruleset)
{
	struct sl_reg_schema *s = sl_reg_schema_by_id(r, subject, id);
	size_t cl;
	const char *cn = sl_reg_ctx_name(subject, &cl);
	if (s) {
		/* An id whose every version was permanently deleted is free again (Confluent's IMPORT reuses it). */
		if (sl_reg_id_in_use(r, subject, id, true) || (!strcmp(s->type, type) && !strcmp(s->text, text) &&
						     streq_null(s->refs, refs) && streq_null(s->metadata, metadata) &&
						     streq_null(s->ruleset, ruleset)))
			return;
		char *t = xstrdup(type), *x = xstrdup(text), *f = xstrdup(refs), *m = xstrdup(metadata),
		     *u = xstrdup(ruleset);
		if (!t || !x || (refs && !f) || (metadata && !m) || (ruleset && !u)) {
			free(t);
			free(x);
			free(f);
			free(m);
			free(u);
			return;
		}
		free(s->type);
		free(s->text);
		free(s->refs);
		free(s->metadata);
		free(s->ruleset);
		s->type = t;
		s->text = x;
		s->refs = f;
		s->metadata = m;
		s->ruleset = u;
		return;
	}
	if (r->nschemas == r->capschemas) {
		size_t nc = r->capschemas ? r->capschemas * 2 : 16;
		struct sl_reg_schema *a = realloc(r->schemas, nc * sizeof *a);
		if (!a)
			return;
		r->schemas = a;
		r->capschemas = nc;
	}
	s = &r->schemas[r->nschemas];
	if (!(s->ctx = strndup(cn, cl)))
		return;
	r->nschemas++;
	s->id = id;
	s->type = xstrdup(type);
	s->text = xstrdup(text);
	s->refs = xstrdup(refs);
	s->metadata = xstrdup(metadata);
	s->ruleset = xstrdup(ruleset);
}

static void put_version(struct sl_registry *r, const char *subject, int version, int id, bool deleted)
{
	struct sl_reg_version *v = sl_reg_find_version(r, subject, version);
	if (!v) {
		if (r->nvers == r->capvers) {
			size_t nc = r->capvers ? r->capvers * 2 : 16;
			struct sl_reg_version *a = realloc(r->vers, nc * sizeof *a);
			if (!a)
				return;
			r->vers = a;
			r->capvers = nc;
		}
		v = &r->vers[r->nvers++];
		v->subject = xstrdup(subject);
		v->version = version;
	}
	v->id = id;
	v->deleted = deleted;
}

static void drop_version(struct sl_registry *r, const char *subject, int version)
{
	struct sl_reg_version *v = sl_reg_find_version(r, subject, version);
	if (!v)
		return;
	free(v->subject);
	*v = r->vers[--r->nvers];
}

/* A JSON object member rendered as text, or NULL when absent or not an object. */
static char *render_obj(const struct sl_rj *j)
{
	struct sl_buf b;
	char *s = NULL;
	if (!j || j->t != SL_RJ_OBJ)
		return NULL;
	sl_buf_init(&b);
	sl_jtree_render(j, &b);
	if (sl_buf_ok(&b))
		s = strdup(sl_buf_cstr(&b));
	sl_buf_free(&b);
	return s;
}

/* The contract keys of a CONFIG value (defaultMetadata...) as one JSON object, or NULL when it has none. */
static char *contract_keys(const struct sl_rj *v)
{
	struct sl_buf b;
	char *s = NULL;
	size_t n = 0;
	sl_buf_init(&b);
	sl_buf_putc(&b, '{');
	for (size_t i = 0; sl_reg_contract_keys[i]; i++) {
		const struct sl_rj *m = sl_jtree_get(v, sl_reg_contract_keys[i]);
		if (!sl_reg_config_key_ok(sl_reg_contract_keys[i], m))
			continue;
		sl_buf_printf(&b, "%s\"%s\":", n++ ? "," : "", sl_reg_contract_keys[i]);
		sl_jtree_render(m, &b);
	}
	sl_buf_putc(&b, '}');
	if (n && sl_buf_ok(&b))
		s = strdup(sl_buf_cstr(&b));
	sl_buf_free(&b);
	return s;
}

const struct sl_rj *sl_reg_config_key(struct sl_registry *r, const char *subject, const char *key, struct sl_rj **hold)
{
	struct sl_err err;
	const char *keys[3];
	char ctx[256];
	size_t n = sl_reg_scope(subject, keys, ctx, sizeof ctx);
	*hold = NULL;
	for (size_t pass = 0; pass < n; pass++) {
		const char *x = sl_reg_kv_get(r->cfgx, r->ncfgx, keys[pass]);
		const struct sl_rj *m;
		if (!x || sl_jtree_parse(x, strlen(x), hold, &err))
			continue;
		if ((m = sl_jtree_get(*hold, key)))
			return m;
		sl_jtree_free(*hold);
		*hold = NULL;
	}
	return NULL;
}

void sl_reg_apply(struct sl_registry *r, const char *key, size_t keylen, const char *value, size_t valuelen)
{
	struct sl_rj *k = NULL, *v = NULL;
	struct sl_err err;
	const char *kt, *subject;
	if (sl_jtree_parse(key, keylen, &k, &err) || (value && sl_jtree_parse(value, valuelen, &v, &err))) {
		sl_warn("registry", "skipping a malformed _schemas record: %s key=%.*s", err.msg, (int)(keylen > 200 ? 200 : keylen), key);
		goto out;
	}
	kt = sl_jtree_getstr(k, "keytype");
	subject = sl_jtree_getstr(k, "subject");
	if (!kt)
		goto out;
	if (!strcmp(kt, "SCHEMA")) {
		int version, sid;
		if (!subject || !sl_jtree_int(sl_jtree_get(k, "version"), &version))
			goto out;
		if (!v || v->t == SL_RJ_NULL) {
			drop_version(r, subject, version);
			goto out;
		}
		struct sl_rj *id = sl_jtree_get(v, "id"), *del = sl_jtree_get(v, "deleted"), *refs = sl_jtree_get(v, "references");
		const char *text = sl_jtree_getstr(v, "schema"), *type = sl_jtree_getstr(v, "schemaType");
		char *refstr = NULL;
		if (!sl_jtree_int(id, &sid) || !text)
			goto out;
		if (refs && refs->t == SL_RJ_ARR && refs->n) {
			struct sl_buf b;
			sl_buf_init(&b);
			sl_jtree_render(refs, &b);
			refstr = strdup(sl_buf_cstr(&b));
			sl_buf_free(&b);
		}
		char *md = render_obj(sl_jtree_get(v, "metadata")), *rs = render_obj(sl_jtree_get(v, "ruleSet"));
		put_schema(r, subject, sid, type ? type : "AVRO", text, refstr, md, rs);
		free(md);
		free(rs);
		free(refstr);
		put_version(r, subject, version, sid, del && del->t == SL_RJ_BOOL && del->b);
	} else if (!strcmp(kt, "CONFIG")) {
		kv_set(&r->compat, &r->ncompat, &r->capcompat, subject,
		       v ? sl_jtree_getstr(v, "compatibilityLevel") : NULL);
		char *x = v ? contract_keys(v) : NULL;
		kv_set(&r->cfgx, &r->ncfgx, &r->capcfgx, subject, x);
		free(x);
	} else if (!strcmp(kt, "MODE")) {
		kv_set(&r->mode, &r->nmode, &r->capmode, subject, v ? sl_jtree_getstr(v, "mode") : NULL);
	} else if (!strcmp(kt, "DELETE_SUBJECT") && subject && v) {
		/* Confluent's soft delete of a subject: every version up to "version" is deleted. */
		struct sl_rj *ver = sl_jtree_get(v, "version");
		int upto = INT_MAX;
		if (ver && !sl_jtree_int(ver, &upto))
			goto out;
		for (size_t i = 0; i < r->nvers; i++)
			if (!strcmp(r->vers[i].subject, subject) && r->vers[i].version <= upto)
				r->vers[i].deleted = true;
	}
out:
	sl_jtree_free(k);
	sl_jtree_free(v);
}

/* ---- writing records ---- */

int sl_reg_write_schema(struct sl_registry *r, const char *subject, int version, int id, bool deleted,
			struct sl_err *err)
{
	struct sl_reg_schema *s = sl_reg_schema_by_id(r, subject, id);
	struct sl_buf k, v;
	int rc;
	sl_buf_init(&k);
	sl_buf_init(&v);
	sl_buf_puts(&k, "{\"keytype\":\"SCHEMA\",\"subject\":");
	sl_buf_json_str(&k, subject, strlen(subject));
	sl_buf_printf(&k, ",\"version\":%d,\"magic\":1}", version);
	sl_buf_puts(&v, "{\"subject\":");
	sl_buf_json_str(&v, subject, strlen(subject));
	sl_buf_printf(&v, ",\"version\":%d,\"id\":%d", version, id);
	if (strcmp(s->type, "AVRO"))
		sl_buf_printf(&v, ",\"schemaType\":\"%s\"", s->type);
	if (s->refs)
		sl_buf_printf(&v, ",\"references\":%s", s->refs);
	if (s->metadata)
		sl_buf_printf(&v, ",\"metadata\":%s", s->metadata);
	if (s->ruleset)
		sl_buf_printf(&v, ",\"ruleSet\":%s", s->ruleset);
	sl_buf_puts(&v, ",\"schema\":");
	sl_buf_json_str(&v, s->text, strlen(s->text));
	sl_buf_printf(&v, ",\"deleted\":%s}", deleted ? "true" : "false");
	if (!sl_buf_ok(&k) || !sl_buf_ok(&v))
		rc = sl_err_set(err, SL_ENOMEM, "out of memory writing subject '%s' version %d", subject, version);
	else
		rc = r->store->write(r->store, r, sl_buf_cstr(&k), sl_buf_cstr(&v), err);
	sl_buf_free(&k);
	sl_buf_free(&v);
	return rc;
}

int sl_reg_write_tombstone(struct sl_registry *r, const char *subject, int version, struct sl_err *err)
{
	struct sl_buf k;
	int rc;
	sl_buf_init(&k);
	sl_buf_puts(&k, "{\"keytype\":\"SCHEMA\",\"subject\":");
	sl_buf_json_str(&k, subject, strlen(subject));
	sl_buf_printf(&k, ",\"version\":%d,\"magic\":1}", version);
	rc = r->store->write(r->store, r, sl_buf_cstr(&k), NULL, err);
	sl_buf_free(&k);
	return rc;
}

int sl_reg_write_config(struct sl_registry *r, const char *subject, const char *level, const char *extras,
			struct sl_err *err)
{
	struct sl_buf k, v;
	int rc;
	sl_buf_init(&k);
	sl_buf_init(&v);
	sl_buf_puts(&k, "{\"keytype\":\"CONFIG\",\"subject\":");
	if (subject)
		sl_buf_json_str(&k, subject, strlen(subject));
	else
		sl_buf_puts(&k, "null");
	sl_buf_puts(&k, ",\"magic\":0}");
	if (extras && strlen(extras) <= 2)
		extras = NULL;
	if (level || extras) {
		sl_buf_putc(&v, '{');
		if (level) {
			sl_buf_puts(&v, "\"compatibilityLevel\":");
			sl_buf_json_str(&v, level, strlen(level));
		}
		/* extras is a rendered JSON object: its members are spliced in */
		if (extras) {
			if (level)
				sl_buf_putc(&v, ',');
			sl_buf_append(&v, extras + 1, strlen(extras) - 2);
		}
		sl_buf_putc(&v, '}');
	}
	rc = r->store->write(r->store, r, sl_buf_cstr(&k), level || extras ? sl_buf_cstr(&v) : NULL, err);
	sl_buf_free(&k);
	sl_buf_free(&v);
	return rc;
}

/* kind "CONFIG" or "MODE"; value NULL deletes. */
int sl_reg_write_setting(struct sl_registry *r, const char *kind, const char *subject, const char *value,
			 struct sl_err *err)
{
	struct sl_buf k, v;
	int rc;
	sl_buf_init(&k);
	sl_buf_init(&v);
	sl_buf_printf(&k, "{\"keytype\":\"%s\",\"subject\":", kind);
	if (subject)
		sl_buf_json_str(&k, subject, strlen(subject));
	else
		sl_buf_puts(&k, "null");
	sl_buf_puts(&k, ",\"magic\":0}");
	if (value) {
		sl_buf_printf(&v, "{\"%s\":", strcmp(kind, "CONFIG") ? "mode" : "compatibilityLevel");
		sl_buf_json_str(&v, value, strlen(value));
		sl_buf_putc(&v, '}');
	}
	rc = r->store->write(r->store, r, sl_buf_cstr(&k), value ? sl_buf_cstr(&v) : NULL, err);
	sl_buf_free(&k);
	sl_buf_free(&v);
	return rc;
}

/* ---- parsing schemas by type ---- */

void sl_reg_parsed_free(struct sl_reg_parsed *p)
{
	if (!p)
		return;
	sl_avro_schema_free(p->avro);
	sl_jtree_free(p->json);
	sl_protobuf_free(p->pb);
	free(p->canon);
	free(p->refs);
	free(p);
}

/* A reference's array (null: none) and its nesting, checked the same way for every schema type. */
static int refs_shape(const struct sl_rj *refs, int depth, struct sl_err *err)
{
	if (refs->t != SL_RJ_ARR)
		return sl_err_set(err, SL_EINVAL, "references must be an array of {name, subject, version}");
	if (depth > 32)
		return sl_err_set(err, SL_EINVAL, "references nest deeper than 32 levels");
	return 0;
}

/* The stored version and schema reference i names ({name, subject, version}; version -1: the latest). With live_only
 * (JSON, Protobuf: Confluent's 42201) a soft-deleted version is not found, and the message says the schema is
 * invalid. */
static int ref_target(struct sl_registry *r, const struct sl_rj *ref, size_t i, bool live_only, const char **name,
		      const char **subject, struct sl_reg_version **vout, struct sl_reg_schema **sout, struct sl_err *err)
{
	const struct sl_rj *ver = sl_jtree_get(ref, "version");
	struct sl_reg_version *v = NULL;
	int want;
	*name = sl_jtree_getstr(ref, "name");
	*subject = sl_jtree_getstr(ref, "subject");
	if (!*name || !*subject || !ver || !ver->is_int || !sl_jtree_int(ver, &want))
		return sl_err_set(err, SL_EINVAL, "reference %zu needs a string name, a string subject and an integer version",
				  i);
	if (want == -1) {
		struct sl_reg_version **vs;
		size_t nv = sl_reg_subject_versions(r, *subject, false, &vs);
		if (nv)
			v = vs[nv - 1];
		free(vs);
	} else {
		v = sl_reg_find_version(r, *subject, want);
		if (live_only && v && v->deleted)
			v = NULL;
	}
	if (!v || !(*sout = sl_reg_schema_by_id(r, v->subject, v->id)))
		return sl_err_set(err, SL_EINVAL, "%sreference '%s': subject '%s' version %s not found",
				  live_only ? "Invalid schema: " : "", *name, *subject, ver->s);
	*vout = v;
	return 0;
}

/* Collects the texts of references depth-first (a reference's own references first), as Confluent resolves them. */
static int collect_refs(struct sl_registry *r, const struct sl_rj *refs, int depth, const char ***texts, size_t *n,
			struct sl_err *err)
{
	int rc;
	if (!refs || refs->t == SL_RJ_NULL)
		return 0;
	if ((rc = refs_shape(refs, depth, err)))
		return rc;
	for (size_t i = 0; i < refs->n; i++) {
		const char *name, *subject;
		struct sl_reg_version *v;
		struct sl_reg_schema *s;
		if ((rc = ref_target(r, refs->v[i], i, false, &name, &subject, &v, &s, err)))
			return rc;
		if (s->refs) {
			struct sl_rj *sub;
			if ((rc = sl_jtree_parse(s->refs, strlen(s->refs), &sub, err)))
				return rc;
			rc = collect_refs(r, sub, depth + 1, texts, n, err);
			sl_jtree_free(sub);
			if (rc)
				return rc;
		}
		bool dup = false;
		for (size_t k = 0; k < *n && !dup; k++)
			dup = (*texts)[k] == s->text;
		if (dup)
			continue;
		const char **t = realloc((void *)*texts, (*n + 1) * sizeof *t);
		if (!t)
			return sl_err_set(err, SL_ENOMEM, "out of memory resolving references");
		t[(*n)++] = s->text;
		*texts = t;
	}
	return 0;
}

/* The references of a JSON or Protobuf schema, each resolved to a stored schema of the same type, depth-first (a
 * reference's own references first): import path (the reference's name), text, and where it came from
 * ("subject\x01version", the version resolved). Confluent answers 42201 when a reference names a subject or version
 * that does not exist, or a schema of another type. */
struct typed_refs {
	struct sl_pb_dep *deps;
	size_t n;
	char **own;
	size_t nown;
};

static void typed_refs_free(struct typed_refs *t)
{
	for (size_t i = 0; i < t->nown; i++)
		free(t->own[i]);
	free(t->own);
	free(t->deps);
}

static int collect_typed(struct sl_registry *r, const char *type, const struct sl_rj *refs, int depth,
			 struct typed_refs *t, struct sl_err *err)
{
	int rc;
	if (!refs || refs->t == SL_RJ_NULL)
		return 0;
	if ((rc = refs_shape(refs, depth, err)))
		return rc;
	for (size_t i = 0; i < refs->n; i++) {
		const char *name, *subject;
		struct sl_reg_version *v;
		struct sl_reg_schema *s;
		if ((rc = ref_target(r, refs->v[i], i, true, &name, &subject, &v, &s, err)))
			return rc;
		if (strcmp(s->type, type))
			return sl_err_set(err, SL_EINVAL, "Invalid schema: reference '%s': subject '%s' version %d is %s, not %s",
					  name, subject, v->version, s->type, type);
		if (s->refs) {
			struct sl_rj *sub;
			if ((rc = sl_jtree_parse(s->refs, strlen(s->refs), &sub, err)))
				return rc;
			rc = collect_typed(r, type, sub, depth + 1, t, err);
			sl_jtree_free(sub);
			if (rc)
				return rc;
		}
		bool dup = false;
		for (size_t k = 0; k < t->n && !dup; k++)
			dup = !strcmp(t->deps[k].name, name);
		if (dup)
			continue;
		struct sl_pb_dep *d = realloc(t->deps, (t->n + 1) * sizeof *d);
		char **o = realloc(t->own, (t->nown + 2) * sizeof *o);
		if (d)
			t->deps = d;
		if (o)
			t->own = o;
		char origin[64 + 1024];
		snprintf(origin, sizeof origin, "%s\x01%d", subject, v->version);
		if (!d || !o || !(t->own[t->nown] = strdup(name)) || !(t->own[t->nown + 1] = strdup(origin))) {
			if (o && t->own[t->nown])
				t->nown++;
			return sl_err_set(err, SL_ENOMEM, "out of memory resolving references");
		}
		t->deps[t->n].name = t->own[t->nown];
		t->deps[t->n].origin = t->own[t->nown + 1];
		t->deps[t->n].text = s->text;
		t->n++;
		t->nown += 2;
	}
	return 0;
}

int sl_reg_parse(struct sl_registry *r, const char *type, const char *text, size_t len, const struct sl_rj *refs,
		 struct sl_reg_parsed **out, struct sl_err *err)
{
	struct sl_reg_parsed *p = calloc(1, sizeof *p);
	struct sl_buf b;
	int rc = 0;
	*out = NULL;
	if (!p)
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	sl_buf_init(&b);
	if (!type || !strcmp(type, "AVRO")) {
		struct sl_avro_refs ar = {0};
		p->type = "AVRO";
		if (!(rc = collect_refs(r, refs, 0, &ar.texts, &ar.n, err)))
			rc = sl_avro_schema_parse(text, len, &ar, &p->avro, err);
		free((void *)ar.texts);
		if (!rc)
			sl_reg_avro_canonical(p->avro, &b);
	} else if (!strcmp(type, "JSON")) {
		struct typed_refs tr = {0};
		p->type = "JSON";
		if (!(rc = collect_typed(r, "JSON", refs, 0, &tr, err)) && !(rc = sl_reg_jsonschema_validate(text, len, err)) &&
		    !(rc = sl_jtree_parse(text, len, &p->json, err)))
			sl_jtree_render(p->json, &b);
		typed_refs_free(&tr);
	} else if (!strcmp(type, "PROTOBUF")) {
		struct typed_refs tr = {0};
		p->type = "PROTOBUF";
		if (!(rc = collect_typed(r, "PROTOBUF", refs, 0, &tr, err)) &&
		    !(rc = sl_protobuf_parse(text, len, tr.deps, tr.n, &p->pb, err)))
			sl_buf_puts(&b, p->pb->canonical);
		typed_refs_free(&tr);
	} else {
		rc = sl_err_set(err, SL_EINVAL, "unknown schema type '%s' (AVRO, JSON, PROTOBUF are supported)", type);
	}
	if (!rc && refs && refs->t == SL_RJ_ARR && refs->n) {
		struct sl_buf rb;
		sl_buf_init(&rb);
		/* References in a fixed member order so equal references compare equal as text. */
		sl_buf_putc(&rb, '[');
		for (size_t i = 0; i < refs->n; i++) {
			const char *name = sl_jtree_getstr(refs->v[i], "name"), *subj = sl_jtree_getstr(refs->v[i], "subject");
			if (i)
				sl_buf_putc(&rb, ',');
			sl_buf_puts(&rb, "{\"name\":");
			sl_buf_json_str(&rb, name, strlen(name));
			sl_buf_puts(&rb, ",\"subject\":");
			sl_buf_json_str(&rb, subj, strlen(subj));
			sl_buf_printf(&rb, ",\"version\":%s}", sl_jtree_get(refs->v[i], "version")->s);
		}
		sl_buf_putc(&rb, ']');
		p->refs = strdup(sl_buf_cstr(&rb));
		sl_buf_free(&rb);
	}
	if (!rc && (!sl_buf_ok(&b) || !(p->canon = strdup(sl_buf_cstr(&b)))))
		rc = sl_err_set(err, SL_ENOMEM, "out of memory");
	sl_buf_free(&b);
	if (rc) {
		sl_reg_parsed_free(p);
		return rc;
	}
	*out = p;
	return 0;
}

int sl_reg_parse_stored(struct sl_registry *r, const struct sl_reg_schema *s, struct sl_reg_parsed **out,
			struct sl_err *err)
{
	struct sl_rj *refs = NULL;
	int rc;
	if (s->refs && (rc = sl_jtree_parse(s->refs, strlen(s->refs), &refs, err)))
		return rc;
	rc = sl_reg_parse(r, s->type, s->text, strlen(s->text), refs, out, err);
	sl_jtree_free(refs);
	return rc;
}

/* ---- compatibility ---- */

bool sl_reg_valid_level(const char *s)
{
	for (size_t i = 0; sl_reg_levels[i]; i++)
		if (!strcmp(s, sl_reg_levels[i]))
			return true;
	return false;
}

/* reader reads data written with writer? 0 yes, 1 no (+msgs). */
static int pair_compatible(const struct sl_reg_parsed *reader, const struct sl_reg_parsed *writer, struct sl_buf *msgs)
{
	if (strcmp(reader->type, writer->type)) {
		sl_reg_msg(msgs, "Incompatibility{type:TYPE_MISMATCH, location:/, message:schema type %s cannot read %s}",
			   reader->type, writer->type);
		return 1;
	}
	if (!strcmp(reader->type, "AVRO"))
		return sl_reg_avro_compatible(reader->avro->root, writer->avro->root, msgs);
	if (!strcmp(reader->type, "PROTOBUF"))
		return sl_reg_protobuf_compatible(reader->pb, writer->pb, msgs);
	return sl_reg_jsonschema_compatible(reader->json, writer->json, msgs);
}

int sl_reg_check(struct sl_registry *r, const char *level, const struct sl_reg_parsed *p,
		 struct sl_reg_version **prev, size_t nprev, struct sl_buf *msgs, struct sl_err *err)
{
	bool transitive = strstr(level, "TRANSITIVE") != NULL;
	bool back = !strncmp(level, "BACKWARD", 8) || !strncmp(level, "FULL", 4);
	bool fwd = !strncmp(level, "FORWARD", 7) || !strncmp(level, "FULL", 4);
	int bad = 0;
	if (!strcmp(level, "NONE") || !nprev)
		return 0;
	/* Newest first, as Confluent reports. */
	for (size_t i = nprev; i-- > 0;) {
		struct sl_reg_schema *s = sl_reg_schema_by_id(r, prev[i]->subject, prev[i]->id);
		struct sl_reg_parsed *old;
		int rc;
		if (!s)
			continue;
		if ((rc = sl_reg_parse_stored(r, s, &old, err)))
			return rc < 0 ? rc : SL_EINVAL;
		size_t before = msgs ? msgs->len : 0;
		int b = 0;
		if (back)
			b |= pair_compatible(p, old, msgs);
		if (fwd)
			b |= pair_compatible(old, p, msgs);
		if (b && msgs) {
			(void)before;
			sl_reg_msg(msgs, "{oldSchemaVersion: %d, oldSchema: '%s', compatibility: '%s'}", prev[i]->version,
				   s->text, level);
		}
		bad |= b;
		sl_reg_parsed_free(old);
		if (!transitive)
			break;
	}
	return bad;
}

/* The value of metadata property `group` in md (a metadata JSON text, may be NULL), malloc'd, or NULL when absent. */
static char *group_value(const char *group, const char *md)
{
	struct sl_rj *j = NULL;
	struct sl_err err;
	const struct sl_rj *p, *v;
	char *out = NULL;
	if (!md || sl_jtree_parse(md, strlen(md), &j, &err))
		return NULL;
	if ((p = sl_jtree_get(j, "properties")) && p->t == SL_RJ_OBJ && (v = sl_jtree_get(p, group)) &&
	    v->t == SL_RJ_STR)
		out = strdup(v->s);
	sl_jtree_free(j);
	return out;
}

size_t sl_reg_group_filter(struct sl_registry *r, const char *subject, const char *md, struct sl_reg_version **v,
			   size_t n)
{
	struct sl_rj *hold;
	const struct sl_rj *g = sl_reg_config_key(r, subject, "compatibilityGroup", &hold);
	size_t k = 0;
	if (!g || g->t != SL_RJ_STR) {
		sl_jtree_free(hold);
		return n;
	}
	char *want = group_value(g->s, md);
	for (size_t i = 0; i < n; i++) {
		struct sl_reg_schema *s = sl_reg_schema_by_id(r, v[i]->subject, v[i]->id);
		char *have = s ? group_value(g->s, s->metadata) : NULL;
		if (s && streq_null(want, have))
			v[k++] = v[i];
		free(have);
	}
	free(want);
	sl_jtree_free(hold);
	return k;
}

/* ---- registration ---- */

/* The schema's contract as Confluent sets it at registration: config default, then the request's own (else the
 * previous live version's), then config override; confluent:version tracks the version when one was asked for or is
 * already there. */
void sl_reg_merge_contract(struct sl_registry *r, const char *subject, const struct sl_rj *metadata,
			   const struct sl_rj *ruleset, const struct sl_reg_schema *prev, int version, bool asked_version,
			   char **md_out, char **rs_out)
{
	struct sl_rj *h[4] = {NULL, NULL, NULL, NULL}, *pm = NULL, *pr = NULL;
	struct sl_err err;
	if (metadata && metadata->t != SL_RJ_OBJ)
		metadata = NULL;
	if (ruleset && ruleset->t != SL_RJ_OBJ)
		ruleset = NULL;
	if (!metadata && prev && prev->metadata && !sl_jtree_parse(prev->metadata, strlen(prev->metadata), &pm, &err))
		metadata = pm;
	if (!ruleset && prev && prev->ruleset && !sl_jtree_parse(prev->ruleset, strlen(prev->ruleset), &pr, &err))
		ruleset = pr;
	const struct sl_rj *ml[3] = {sl_reg_config_key(r, subject, "defaultMetadata", &h[0]), metadata,
				     sl_reg_config_key(r, subject, "overrideMetadata", &h[1])};
	const struct sl_rj *rl[3] = {sl_reg_config_key(r, subject, "defaultRuleSet", &h[2]), ruleset,
				     sl_reg_config_key(r, subject, "overrideRuleSet", &h[3])};
	*md_out = sl_reg_metadata_merge(ml, 3, version, asked_version);
	*rs_out = sl_reg_ruleset_merge(rl, 3);
	for (int i = 0; i < 4; i++)
		sl_jtree_free(h[i]);
	sl_jtree_free(pm);
	sl_jtree_free(pr);
}

int sl_reg_register(struct sl_registry *r, const char *subject, const char *type, const char *text, size_t len,
		    const struct sl_rj *refs, const struct sl_rj *metadata, const struct sl_rj *ruleset, int want_id,
		    int want_version, bool normalize, int *id_out, int *version_out, int *code, struct sl_buf *msg)
{
	struct sl_err err;
	char *md = NULL, *rs = NULL, *cmd = NULL, *crs = NULL;
	struct sl_reg_schema *prev = NULL;
	struct sl_reg_parsed *p = NULL;
	struct sl_reg_version **vs = NULL;
	size_t nv, nall;
	const char *mode = sl_reg_mode(r, subject);
	int status = 200, id = -1, version = 0, rc;
	(void)normalize; /* the canonical text is already Confluent's normalized form for AVRO and JSON */
	sl_err_clear(&err);
	if (!strcmp(mode, "READONLY") || !strcmp(mode, "READONLY_OVERRIDE")) {
		*code = 42205;
		sl_buf_printf(msg, "Subject %s is in read-only mode", subject);
		return 422;
	}
	if (want_id > 0 && strcmp(mode, "IMPORT")) {
		*code = 42205;
		sl_buf_printf(msg, "Subject %s is not in import mode: registering with an id needs IMPORT mode", subject);
		return 422;
	}
	if (want_id <= 0 && !strcmp(mode, "IMPORT")) {
		*code = 42205;
		sl_buf_printf(msg, "Subject %s is in import mode: a schema id is required to register", subject);
		return 422;
	}
	if (r->store->barrier)
		rc = r->store->barrier(r->store, r, &err);
	else
		rc = r->store->sync ? r->store->sync(r->store, r, &err) : 0;
	if (rc) {
		*code = 50001;
		sl_buf_printf(msg, "Error while reading the store: %s", err.msg);
		return 500;
	}
	if ((rc = sl_reg_parse(r, type, text, len, refs, &p, &err))) {
		*code = 42201;
		sl_buf_printf(msg, "Invalid schema of type %s, details: %s", type ? type : "AVRO", err.msg);
		return 422;
	}
	/* The same schema already under the subject (live) answers with its id; a soft-deleted one re-registers.
	 * With a contract in the request (or from the config), the contract is part of what must match; the
	 * confluent:version property is compared as merged for the version being matched. */
	nall = sl_reg_subject_versions(r, subject, true, &vs);
	for (size_t i = nall; i-- > 0;)
		if (!vs[i]->deleted) {
			prev = sl_reg_schema_by_id(r, vs[i]->subject, vs[i]->id);
			break;
		}
	for (size_t i = nall; i-- > 0;) {
		struct sl_reg_schema *s = sl_reg_schema_by_id(r, vs[i]->subject, vs[i]->id);
		bool same_contract = true;
		if (s && !vs[i]->deleted && (metadata || ruleset)) {
			free(cmd);
			free(crs);
			sl_reg_merge_contract(r, subject, metadata, ruleset, prev, vs[i]->version, want_version > 0, &cmd, &crs);
			same_contract = streq_null(s->metadata, cmd) && streq_null(s->ruleset, crs);
		}
		if (s && !vs[i]->deleted && !strcmp(s->type, p->type) && !strcmp(s->text, p->canon) &&
		    streq_null(s->refs, p->refs) && same_contract && (want_id <= 0 || want_id == s->id)) {
			*id_out = s->id;
			*version_out = vs[i]->version;
			goto done;
		}
		if (nall && vs[i]->version > version)
			version = vs[i]->version;
	}
	for (size_t i = 0; i < nall; i++)
		if (vs[i]->version > version)
			version = vs[i]->version;
	free(vs);
	vs = NULL;
	version = want_version > 0 ? want_version : version + 1;
	/* merged before the check: the compatibility group is read off the new schema's contract as registered */
	sl_reg_merge_contract(r, subject, metadata, ruleset, prev, version, want_version > 0, &md, &rs);
	if (strcmp(mode, "IMPORT")) {
		struct sl_buf msgs;
		sl_buf_init(&msgs);
		nv = sl_reg_subject_versions(r, subject, false, &vs);
		nv = sl_reg_group_filter(r, subject, md, vs, nv);
		rc = sl_reg_check(r, sl_reg_level(r, subject), p, vs, nv, &msgs, &err);
		if (rc < 0) {
			*code = 50001;
			sl_buf_printf(msg, "Error checking compatibility: %s", err.msg);
			status = 500;
		} else if (rc) {
			*code = 409;
			sl_buf_printf(msg,
				      "Schema being registered is incompatible with an earlier schema for subject \"%s\", "
				      "details: [",
				      subject);
			for (size_t off = 0, k = 0; off < msgs.len; off += strlen(msgs.data + off) + 1, k++)
				sl_buf_printf(msg, "%s%s", k ? ", " : "", msgs.data + off);
			sl_buf_putc(msg, ']');
			status = 409;
		}
		sl_buf_free(&msgs);
		if (status != 200)
			goto done;
	}
	/* One id per distinct schema (text, references and contract) across the subjects of one context. */
	for (size_t i = 0; i < r->nschemas && id < 0; i++) {
		struct sl_reg_schema *s = &r->schemas[i];
		if (in_ctx(s->ctx, subject) && !strcmp(s->type, p->type) && !strcmp(s->text, p->canon) && streq_null(s->refs, p->refs) &&
		    streq_null(s->metadata, md) && streq_null(s->ruleset, rs))
			id = s->id;
	}
	if (want_id > 0) {
		struct sl_reg_schema *s = sl_reg_schema_by_id(r, subject, want_id);
		if (s && sl_reg_id_in_use(r, subject, want_id, true) &&
		    (strcmp(s->text, p->canon) || strcmp(s->type, p->type) || !streq_null(s->refs, p->refs) ||
		     !streq_null(s->metadata, md) || !streq_null(s->ruleset, rs))) {
			*code = 42205;
			sl_buf_printf(msg, "Schema id %d is already used by a different schema", want_id);
			status = 422;
			goto done;
		}
		id = want_id;
	}
	if (id < 0)
		id = sl_reg_max_id(r, subject) + 1;
	put_schema(r, subject, id, p->type, p->canon, p->refs, md, rs);
	if ((rc = sl_reg_write_schema(r, subject, version, id, false, &err))) {
		*code = 50001;
		sl_buf_printf(msg, "Error while registering in the store: %s", err.msg);
		status = 500;
		goto done;
	}
	sl_info("registry", "registered subject=%s version=%d id=%d type=%s", subject, version, id, p->type);
	*id_out = id;
	*version_out = version;
done:
	free(vs);
	free(md);
	free(rs);
	free(cmd);
	free(crs);
	sl_reg_parsed_free(p);
	return status;
}

/* ---- public C API ---- */

const struct sl_opt sl_registry_opts[] = {
	{"listen", SL_OPT_STRING, "127.0.0.1:8081", offsetof(struct sl_registry_conf, listen),
	 "host:port of the REST API (Confluent Schema Registry compatible)."},
	{"data_dir", SL_OPT_STRING, "var/registry", offsetof(struct sl_registry_conf, data_dir),
	 "Directory of the SQLite store (registry.db), used when store is sqlite."},
	{"store", SL_OPT_ENUM, "sqlite", offsetof(struct sl_registry_conf, store),
	 "Where schemas live: sqlite (one process) or kafka (the _schemas topic, shared by several registries).", "sqlite|kafka"},
	{"brokers", SL_OPT_STRING, NULL, offsetof(struct sl_registry_conf, brokers),
	 "Kafka bootstrap servers for the kafka store (default: the kafka: section's brokers, else 127.0.0.1:9092; "
	 "security settings always come from the kafka: section)."},
	{"topic", SL_OPT_STRING, "_schemas", offsetof(struct sl_registry_conf, topic),
	 "The compacted topic of the kafka store (Confluent's key/value format)."},
	{"group", SL_OPT_STRING, "schema-registry", offsetof(struct sl_registry_conf, group),
	 "Kafka consumer group whose members elect the one leader that writes."},
	{"max_body", SL_OPT_SIZE, "16MiB", offsetof(struct sl_registry_conf, max_body),
	 "Largest request body accepted; larger requests get 413.", NULL, NULL, false, 1024, (int64_t)1 << 32},
	SL_HTTP_AUTH_OPTS(struct sl_registry_conf, auth, "SLUICE_REGISTRY_TOKEN", "SLUICE_REGISTRY_PASSWORD"),
	SL_HTTP_AUTH_READ_OPTS(struct sl_registry_conf, auth),
	SL_HTTP_SERVER_OPTS(struct sl_registry_conf, http),
	{NULL},
};

int sl_registry_conf_dir(struct sl_registry_conf *conf, const struct sl_cfg_node *section, const char *data_dir,
			 struct sl_err *err)
{
	char *d = NULL;
	if ((section && sl_cfg_get(section, "data_dir")) || !data_dir || !*data_dir)
		return 0;
	if (asprintf(&d, "%s/registry", data_dir) < 0)
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	free(conf->data_dir);
	conf->data_dir = d;
	return 0;
}

int sl_registry_open(struct sl_registry **out, const struct sl_registry_conf *conf, struct sl_err *err)
{
	struct sl_registry *r = calloc(1, sizeof *r);
	int rc;
	*out = NULL;
	if (!r)
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	pthread_mutex_init(&r->mu, NULL);
	r->conf.listen = xstrdup(conf->listen ? conf->listen : "127.0.0.1:8081");
	r->conf.data_dir = xstrdup(conf->data_dir ? conf->data_dir : "var/registry");
	r->conf.store = xstrdup(conf->store ? conf->store : "sqlite");
	r->conf.brokers = xstrdup(conf->brokers); /* NULL: the kafka: section's */
	r->conf.kafka = conf->kafka;
	r->conf.topic = xstrdup(conf->topic ? conf->topic : "_schemas");
	r->conf.group = xstrdup(conf->group ? conf->group : "schema-registry");
	r->conf.max_body = conf->max_body > 0 ? conf->max_body : 16 << 20;
	r->leader = true;
	struct sl_http_conf hdef;
	sl_http_conf_defaults(&hdef);
	/* A conf built by hand (tests, sluice up's defaults) may leave the HTTP settings zero: the defaults then. */
	if (sl_http_conf_copy(&r->conf.http, conf->http.max_connections ? &conf->http : &hdef) ||
	    sl_http_auth_conf_copy(&r->conf.auth, &conf->auth)) {
		sl_registry_close(r);
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	}
	if ((rc = sl_http_auth_load(&r->auth, &r->conf.auth, "registry", err))) {
		sl_registry_close(r);
		return rc;
	}
	pthread_mutex_lock(&r->mu);
	if (!strcmp(r->conf.store, "kafka"))
		rc = sl_reg_store_kafka_open(&r->store, r, &r->conf, err);
	else if (!strcmp(r->conf.store, "sqlite"))
		rc = sl_reg_store_sqlite_open(&r->store, r, r->conf.data_dir, err);
	else
		rc = sl_err_set(err, SL_ECONFIG, "registry store '%s' is not one of sqlite, kafka", r->conf.store);
	pthread_mutex_unlock(&r->mu);
	if (rc) {
		sl_registry_close(r);
		return rc;
	}
	*out = r;
	return 0;
}

void sl_registry_close(struct sl_registry *r)
{
	if (!r)
		return;
	sl_registry_stop(r);
	if (r->store)
		r->store->close(r->store);
	for (size_t i = 0; i < r->nschemas; i++) {
		free(r->schemas[i].ctx);
		free(r->schemas[i].type);
		free(r->schemas[i].text);
		free(r->schemas[i].refs);
		free(r->schemas[i].metadata);
		free(r->schemas[i].ruleset);
	}
	for (size_t i = 0; i < r->ncfgx; i++) {
		free(r->cfgx[i].subject);
		free(r->cfgx[i].value);
	}
	free(r->cfgx);
	for (size_t i = 0; i < r->nvers; i++)
		free(r->vers[i].subject);
	for (size_t i = 0; i < r->ncompat; i++) {
		free(r->compat[i].subject);
		free(r->compat[i].value);
	}
	for (size_t i = 0; i < r->nmode; i++) {
		free(r->mode[i].subject);
		free(r->mode[i].value);
	}
	free(r->schemas);
	free(r->vers);
	free(r->compat);
	free(r->mode);
	free(r->conf.listen);
	free(r->conf.data_dir);
	free(r->conf.store);
	free(r->conf.brokers);
	free(r->conf.topic);
	free(r->conf.group);
	sl_http_auth_free(&r->auth);
	sl_http_auth_conf_free(&r->conf.auth);
	sl_http_conf_free(&r->conf.http);
	free(r->forward_url);
	free(r->self_url);
	pthread_mutex_destroy(&r->mu);
	free(r);
}

int sl_registry_register(struct sl_registry *r, const char *subject, const char *schema, const char *type, int *id,
			 struct sl_err *err)
{
	struct sl_buf msg;
	int code = 0, version = 0, status;
	char *leader = NULL;
	sl_buf_init(&msg);
	/* A Kafka store that has not seen an elected leader yet (a registry starting beside this pipeline, an election
	 * after a leader died): wait for one a little, as a client retrying 50004 would. */
	for (int waited = 0;; waited += 200) {
		bool known;
		pthread_mutex_lock(&r->mu);
		if (!r->leader && r->forward_url)
			leader = strdup(r->forward_url);
		known = r->leader || leader;
		pthread_mutex_unlock(&r->mu);
		if (known || waited >= 20000)
			break;
		usleep(200000);
	}
	if (leader) {
		/* A follower of the Kafka store: the leader allocates the id; read it back so this node serves it. */
		int rc = sl_registry_http_register(leader, &r->conf.auth, subject, schema, type, id, err);
		free(leader);
		if (!rc) {
			pthread_mutex_lock(&r->mu);
			if (r->store->sync)
				r->store->sync(r->store, r, NULL);
			pthread_mutex_unlock(&r->mu);
		}
		return rc;
	}
	pthread_mutex_lock(&r->mu);
	if (!r->leader)
		status = 0;
	else
		status = sl_reg_register(r, subject, type, schema, strlen(schema), NULL, NULL, NULL, -1, -1, false, id, &version,
					 &code, &msg);
	pthread_mutex_unlock(&r->mu);
	if (status == 0) {
		int rc = sl_err_set(err, SL_EAGAIN,
				    "registering subject '%s': this registry is a follower; register through the leader",
				    subject);
		sl_buf_free(&msg);
		return rc;
	}
	if (status != 200) {
		int rc = sl_err_set(err, status == 409 ? SL_ETYPE : status == 422 ? SL_EINVAL : SL_EIO,
				    "registering subject '%s': %s (error_code %d)", subject, sl_buf_cstr(&msg), code);
		sl_buf_free(&msg);
		return rc;
	}
	sl_buf_free(&msg);
	return 0;
}

int sl_registry_schema_by_id(struct sl_registry *r, int id, char **schema, char **type, struct sl_err *err)
{
	struct sl_reg_schema *s;
	int rc = 0;
	pthread_mutex_lock(&r->mu);
	if (r->store->sync)
		r->store->sync(r->store, r, err);
	/* the wire format's ids are the default context's (a pipeline's subjects are unqualified) */
	s = sl_reg_schema_by_id(r, NULL, id);
	if (!s || !sl_reg_id_in_use(r, NULL, id, true))
		rc = sl_err_set(err, SL_ENOTFOUND, "schema id %d is not in the registry", id);
	else {
		*schema = strdup(s->text);
		*type = strdup(s->type);
		if (!*schema || !*type) {
			free(*schema);
			free(*type);
			rc = sl_err_set(err, SL_ENOMEM, "out of memory copying schema %d", id);
		}
	}
	pthread_mutex_unlock(&r->mu);
	return rc;
}
