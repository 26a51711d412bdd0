/* Data contracts in the registry: a schema's `metadata` (tags, properties, sensitive) and `ruleSet` (migration,
 * domain and encoding rules), and how Confluent merges them at registration: the config's default, then the
 * schema's own (the request's, else the previous version's), then the config's override. Maps merge key by key with
 * the later layer winning a key, sets are unioned, rule lists drop an earlier rule whose name a later list uses and
 * append the later rules, and `enableAt` is the last one given. Rules are stored and returned, never executed. The
 * output is canonical (keys and set members sorted, empty members left out) so equal contracts compare as strings. */
#include <stdlib.h>
#include <string.h>

#include "registry/internal.h"

struct kv {
	const char *k;
	const struct sl_rj *v;
};

struct kvs {
	struct kv *a;
	size_t n, cap;
	bool oom;
};

static void kvs_put(struct kvs *m, const char *k, const struct sl_rj *v)
{
	for (size_t i = 0; i < m->n; i++)
		if (!strcmp(m->a[i].k, k)) {
			m->a[i].v = v;
			return;
		}
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 8;
		struct kv *a = realloc(m->a, cap * sizeof *a);
		if (!a) {
			m->oom = true;
			return;
		}
		m->a = a;
		m->cap = cap;
	}
	m->a[m->n].k = k;
	m->a[m->n++].v = v;
}

static int kv_cmp(const void *a, const void *b)
{
	return strcmp(((const struct kv *)a)->k, ((const struct kv *)b)->k);
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A sorted set of the strings of one or more arrays, written as a JSON array. */
static void put_set(struct sl_buf *out, const struct sl_rj *const *arrs, size_t narr)
{
	size_t total = 0, n = 0;
	for (size_t i = 0; i < narr; i++)
		total += arrs[i] && arrs[i]->t == SL_RJ_ARR ? arrs[i]->n : 0;
	const char **v = calloc(total + 1, sizeof *v);
	if (!v) {
		sl_buf_puts(out, "[]");
		return;
	}
	for (size_t i = 0; i < narr; i++)
		for (size_t j = 0; arrs[i] && arrs[i]->t == SL_RJ_ARR && j < arrs[i]->n; j++)
			if (arrs[i]->v[j]->t == SL_RJ_STR)
				v[n++] = arrs[i]->v[j]->s;
	if (n)
		qsort(v, n, sizeof *v, str_cmp);
	sl_buf_putc(out, '[');
	for (size_t i = 0, k = 0; i < n; i++) {
		if (i && !strcmp(v[i], v[i - 1]))
			continue;
		if (k++)
			sl_buf_putc(out, ',');
		sl_buf_json_str(out, v[i], strlen(v[i]));
	}
	sl_buf_putc(out, ']');
	free(v);
}

char *sl_reg_metadata_merge(const struct sl_rj *const *layers, size_t n, int version, bool force_version)
{
	struct kvs tags = {0}, props = {0};
	const struct sl_rj *sens[8];
	size_t nsens = 0;
	bool any = false, had_version = false;
	struct sl_buf out;
	char vbuf[16];
	struct sl_rj vstr = {0};
	char *res = NULL;
	for (size_t i = 0; i < n && i < 8; i++) {
		const struct sl_rj *m = layers[i], *t, *p, *s;
		if (!m || m->t != SL_RJ_OBJ)
			continue;
		any = true;
		if ((t = sl_jtree_get(m, "tags")) && t->t == SL_RJ_OBJ)
			for (size_t k = 0; k < t->n; k++)
				if (t->v[k]->t == SL_RJ_ARR)
					kvs_put(&tags, t->keys[k], t->v[k]);
		if ((p = sl_jtree_get(m, "properties")) && p->t == SL_RJ_OBJ)
			for (size_t k = 0; k < p->n; k++)
				if (p->v[k]->t == SL_RJ_STR) {
					kvs_put(&props, p->keys[k], p->v[k]);
					had_version |= !strcmp(p->keys[k], "confluent:version");
				}
		if ((s = sl_jtree_get(m, "sensitive")) && s->t == SL_RJ_ARR)
			sens[nsens++] = s;
	}
	/* confluent:version follows the version a registration gets when asked for, or when already present */
	if (version > 0 && (force_version || had_version)) {
		snprintf(vbuf, sizeof vbuf, "%d", version);
		vstr.t = SL_RJ_STR;
		vstr.s = vbuf;
		vstr.n = strlen(vbuf);
		kvs_put(&props, "confluent:version", &vstr);
		any = true;
	}
	if (!any || tags.oom || props.oom)
		goto out;
	if (tags.n)
		qsort(tags.a, tags.n, sizeof *tags.a, kv_cmp);
	if (props.n)
		qsort(props.a, props.n, sizeof *props.a, kv_cmp);
	sl_buf_init(&out);
	sl_buf_putc(&out, '{');
	if (tags.n) {
		sl_buf_puts(&out, "\"tags\":{");
		for (size_t i = 0; i < tags.n; i++) {
			if (i)
				sl_buf_putc(&out, ',');
			sl_buf_json_str(&out, tags.a[i].k, strlen(tags.a[i].k));
			sl_buf_putc(&out, ':');
			put_set(&out, &tags.a[i].v, 1);
		}
		sl_buf_putc(&out, '}');
	}
	if (props.n) {
		sl_buf_puts(&out, tags.n ? ",\"properties\":{" : "\"properties\":{");
		for (size_t i = 0; i < props.n; i++) {
			if (i)
				sl_buf_putc(&out, ',');
			sl_buf_json_str(&out, props.a[i].k, strlen(props.a[i].k));
			sl_buf_putc(&out, ':');
			sl_buf_json_str(&out, props.a[i].v->s, props.a[i].v->n);
		}
		sl_buf_putc(&out, '}');
	}
	size_t nsensitive = 0;
	for (size_t i = 0; i < nsens; i++)
		nsensitive += sens[i]->n;
	if (nsensitive) {
		sl_buf_puts(&out, tags.n || props.n ? ",\"sensitive\":" : "\"sensitive\":");
		put_set(&out, sens, nsens);
	}
	sl_buf_putc(&out, '}');
	if (sl_buf_ok(&out))
		res = strdup(sl_buf_cstr(&out));
	sl_buf_free(&out);
out:
	free(tags.a);
	free(props.a);
	return res;
}

static const char *const rule_kinds[] = {"migrationRules", "domainRules", "encodingRules"};

char *sl_reg_ruleset_merge(const struct sl_rj *const *layers, size_t n)
{
	const struct sl_rj **rules[3] = {NULL, NULL, NULL}, *enable_at = NULL;
	size_t nrules[3] = {0, 0, 0};
	bool any = false, oom = false;
	char *res = NULL;
	for (int k = 0; k < 3; k++) {
		size_t cap = 0;
		for (size_t i = 0; i < n; i++) {
			const struct sl_rj *l = layers[i] && layers[i]->t == SL_RJ_OBJ ? sl_jtree_get(layers[i], rule_kinds[k])
										     : NULL;
			if (!l || l->t != SL_RJ_ARR || !l->n)
				continue;
			/* an earlier rule named like one of this layer's is replaced */
			size_t keep = 0;
			for (size_t a = 0; a < nrules[k]; a++) {
				const char *name = sl_jtree_getstr(rules[k][a], "name");
				bool dup = false;
				for (size_t b = 0; name && b < l->n && !dup; b++) {
					const char *nn = l->v[b]->t == SL_RJ_OBJ ? sl_jtree_getstr(l->v[b], "name") : NULL;
					dup = nn && !strcmp(nn, name);
				}
				if (!dup)
					rules[k][keep++] = rules[k][a];
			}
			nrules[k] = keep;
			cap += l->n;
			const struct sl_rj **g = realloc(rules[k], (nrules[k] + l->n + 1) * sizeof *g);
			if (!g) {
				oom = true;
				break;
			}
			rules[k] = g;
			for (size_t b = 0; b < l->n; b++)
				rules[k][nrules[k]++] = l->v[b];
		}
		(void)cap;
	}
	for (size_t i = 0; i < n; i++) {
		const struct sl_rj *e;
		if (!layers[i] || layers[i]->t != SL_RJ_OBJ)
			continue;
		any = true;
		if ((e = sl_jtree_get(layers[i], "enableAt")) && e->t != SL_RJ_NULL)
			enable_at = e;
	}
	if (any && !oom) {
		struct sl_buf out;
		bool first = true;
		sl_buf_init(&out);
		sl_buf_putc(&out, '{');
		for (int k = 0; k < 3; k++) {
			if (!nrules[k])
				continue;
			sl_buf_printf(&out, "%s\"%s\":[", first ? "" : ",", rule_kinds[k]);
			first = false;
			for (size_t a = 0; a < nrules[k]; a++) {
				if (a)
					sl_buf_putc(&out, ',');
				sl_jtree_render(rules[k][a], &out);
			}
			sl_buf_putc(&out, ']');
		}
		if (enable_at) {
			sl_buf_printf(&out, "%s\"enableAt\":", first ? "" : ",");
			sl_jtree_render(enable_at, &out);
		}
		sl_buf_putc(&out, '}');
		if (sl_buf_ok(&out))
			res = strdup(sl_buf_cstr(&out));
		sl_buf_free(&out);
	}
	for (int k = 0; k < 3; k++)
		free(rules[k]);
	return res;
}

/* The keys a CONFIG record may carry beside compatibilityLevel: the contract defaults and overrides, a subject
 * alias (Confluent's AliasFilter resolves it for every path naming a subject after "subjects"), and the settings
 * Confluent's Config entity holds (stored and returned; `normalize` also applies to registrations). */
const char *const sl_reg_contract_keys[] = {"defaultMetadata", "overrideMetadata", "defaultRuleSet", "overrideRuleSet",
					    "alias", "aliasForDeks", "compatibilityPolicy", "compatibilityGroup",
					    "normalize", "validateFields", "validateNewSchemas", "validateRules", NULL};

int sl_reg_config_key_kind(const char *key)
{
	if (strstr(key, "Metadata") || strstr(key, "RuleSet"))
		return 0;
	if (!strcmp(key, "normalize") || !strncmp(key, "validate", 8))
		return 2;
	return 1;
}

bool sl_reg_config_key_ok(const char *key, const struct sl_rj *v)
{
	if (!v)
		return false;
	switch (sl_reg_config_key_kind(key)) {
	case 0: return v->t == SL_RJ_OBJ;
	case 2: return v->t == SL_RJ_BOOL;
	/* an empty alias is no alias, as Confluent treats it */
	default: return v->t == SL_RJ_STR && (v->n > 0 || strcmp(key, "alias"));
	}
}

/* ---- checking what a request sends ---- */

static bool str_array(const struct sl_rj *a)
{
	if (a->t != SL_RJ_ARR)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (a->v[i]->t != SL_RJ_STR)
			return false;
	return true;
}

static bool str_map(const struct sl_rj *o)
{
	if (o->t != SL_RJ_OBJ)
		return false;
	for (size_t i = 0; i < o->n; i++)
		if (o->v[i]->t != SL_RJ_STR)
			return false;
	return true;
}

static bool one_of(const char *s, const char *const *set)
{
	for (size_t i = 0; set[i]; i++)
		if (!strcmp(s, set[i]))
			return true;
	return false;
}

static const char *const rule_keys[] = {"name", "doc", "kind", "mode", "type", "tags", "params", "expr", "onSuccess",
					"onFailure", "disabled", NULL};
static const char *const rule_kinds_enum[] = {"TRANSFORM", "CONDITION", NULL};
static const char *const rule_modes[] = {"UPGRADE", "DOWNGRADE", "UPDOWN", "WRITE", "READ", "WRITEREAD", NULL};
static const char *const enable_ats[] = {"ALL", "CLIENT", "GATEWAY", "SERVER", "NONE", NULL};

/* One rule: its known members with their types checked, rendered in a fixed order, tags as a sorted set. */
static bool put_rule(struct sl_buf *out, const struct sl_rj *r, char *why, size_t wl)
{
	size_t n = 0;
	if (r->t != SL_RJ_OBJ) {
		snprintf(why, wl, "a rule must be an object");
		return false;
	}
	sl_buf_putc(out, '{');
	for (size_t i = 0; rule_keys[i]; i++) {
		const char *k = rule_keys[i];
		const struct sl_rj *v = sl_jtree_get(r, k);
		if (!v || v->t == SL_RJ_NULL)
			continue;
		bool ok = !strcmp(k, "tags")	   ? str_array(v)
			  : !strcmp(k, "params")   ? str_map(v)
			  : !strcmp(k, "disabled") ? v->t == SL_RJ_BOOL
						   : v->t == SL_RJ_STR;
		if (ok && !strcmp(k, "kind"))
			ok = one_of(v->s, rule_kinds_enum);
		if (ok && !strcmp(k, "mode"))
			ok = one_of(v->s, rule_modes);
		if (!ok) {
			snprintf(why, wl, "rule member '%s' has the wrong type or value", k);
			return false;
		}
		sl_buf_printf(out, "%s\"%s\":", n++ ? "," : "", k);
		if (!strcmp(k, "tags"))
			put_set(out, &v, 1);
		else
			sl_jtree_render(v, out);
	}
	sl_buf_putc(out, '}');
	return true;
}

char *sl_reg_contract_norm(bool ruleset, const struct sl_rj *v, char *why, size_t wl)
{
	const char *what = ruleset ? "ruleSet" : "metadata";
	if (!v || v->t != SL_RJ_OBJ) {
		snprintf(why, wl, "%s must be an object", what);
		return NULL;
	}
	if (!ruleset) {
		const struct sl_rj *t = sl_jtree_get(v, "tags"), *p = sl_jtree_get(v, "properties"),
				   *s = sl_jtree_get(v, "sensitive");
		bool ok = true;
		if (t && t->t != SL_RJ_NULL) {
			ok = t->t == SL_RJ_OBJ;
			for (size_t i = 0; ok && i < t->n; i++)
				ok = str_array(t->v[i]);
		}
		if (ok && p && p->t != SL_RJ_NULL)
			ok = str_map(p);
		if (ok && s && s->t != SL_RJ_NULL)
			ok = str_array(s);
		if (!ok) {
			snprintf(why, wl, "metadata: tags must map names to string arrays, properties names to strings, "
					  "sensitive be a string array");
			return NULL;
		}
		return sl_reg_metadata_merge(&v, 1, 0, false);
	}
	struct sl_buf out;
	char *res = NULL;
	size_t n = 0;
	sl_buf_init(&out);
	sl_buf_putc(&out, '{');
	for (int k = 0; k < 3; k++) {
		const struct sl_rj *l = sl_jtree_get(v, rule_kinds[k]);
		if (!l || l->t == SL_RJ_NULL)
			continue;
		if (l->t != SL_RJ_ARR) {
			snprintf(why, wl, "ruleSet: %s must be an array of rules", rule_kinds[k]);
			goto out;
		}
		if (!l->n)
			continue;
		sl_buf_printf(&out, "%s\"%s\":[", n++ ? "," : "", rule_kinds[k]);
		for (size_t i = 0; i < l->n; i++) {
			if (i)
				sl_buf_putc(&out, ',');
			if (!put_rule(&out, l->v[i], why, wl))
				goto out;
		}
		sl_buf_putc(&out, ']');
	}
	const struct sl_rj *e = sl_jtree_get(v, "enableAt");
	if (e && e->t != SL_RJ_NULL) {
		if (e->t != SL_RJ_STR || !one_of(e->s, enable_ats)) {
			snprintf(why, wl, "ruleSet: enableAt must be one of ALL, CLIENT, GATEWAY, SERVER, NONE");
			goto out;
		}
		sl_buf_printf(&out, "%s\"enableAt\":", n++ ? "," : "");
		sl_jtree_render(e, &out);
	}
	sl_buf_putc(&out, '}');
	if (sl_buf_ok(&out))
		res = strdup(sl_buf_cstr(&out));
	else
		snprintf(why, wl, "out of memory");
out:
	sl_buf_free(&out);
	return res;
}
