/* YAML documents as node trees with positions, and option tables that bind them into structs (see config.h). */
#include "core/config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#define SL_CFG_MAX_DEPTH 64
#define SL_CFG_MAX_BYTES (16 << 20)

static struct sl_cfg_node *node_new(enum sl_cfg_kind kind, const char *file, const yaml_mark_t *m)
{
	struct sl_cfg_node *n = calloc(1, sizeof *n);
	if (!n)
		return NULL;
	n->kind = kind;
	n->file = file;
	n->line = (int)m->line + 1;
	n->col = (int)m->column + 1;
	return n;
}

static void node_free(struct sl_cfg_node *n)
{
	if (!n)
		return;
	free(n->value);
	for (size_t i = 0; i < n->n; i++) {
		if (n->keys)
			free(n->keys[i]);
		node_free(n->items[i]);
	}
	free(n->keys);
	free(n->key_lines);
	free(n->items);
	free(n);
}

static int node_push(struct sl_cfg_node *parent, char *key, int key_line, struct sl_cfg_node *child)
{
	size_t cap = parent->n + 1;
	struct sl_cfg_node **items = realloc(parent->items, cap * sizeof *items);
	if (!items)
		return -1;
	parent->items = items;
	if (parent->kind == SL_CFG_MAP) {
		char **keys = realloc(parent->keys, cap * sizeof *keys);
		if (!keys)
			return -1;
		parent->keys = keys;
		int *kl = realloc(parent->key_lines, cap * sizeof *kl);
		if (!kl)
			return -1;
		parent->key_lines = kl;
		keys[parent->n] = key;
		kl[parent->n] = key_line;
	}
	items[parent->n++] = child;
	return 0;
}

/* Expands ${NAME} and ${NAME:-default}; an unset variable without default is an error naming it. */
static char *expand_env(const char *s, size_t len, char *missing, size_t missingsz)
{
	size_t cap = len + 1, o = 0;
	char *out = malloc(cap);
	if (!out)
		return NULL;
	for (size_t i = 0; i < len;) {
		if (s[i] == '$' && i + 1 < len && s[i + 1] == '{') {
			const char *end = memchr(s + i + 2, '}', len - i - 2);
			if (end) {
				char name[256];
				size_t nl = (size_t)(end - (s + i + 2));
				if (nl < sizeof name) {
					memcpy(name, s + i + 2, nl);
					name[nl] = '\0';
					char *dflt = strstr(name, ":-");
					if (dflt) {
						*dflt = '\0';
						dflt += 2;
					}
					const char *v = getenv(name);
					if (!v || (!*v && dflt))
						v = dflt;
					if (!v) {
						snprintf(missing, missingsz, "%s", name);
						free(out);
						return NULL;
					}
					size_t vl = strlen(v);
					if (o + vl + (len - i) + 1 > cap) {
						cap = o + vl + (len - i) + 1;
						char *grown = realloc(out, cap);
						if (!grown) {
							free(out);
							return NULL;
						}
						out = grown;
					}
					memcpy(out + o, v, vl);
					o += vl;
					i = (size_t)(end - s) + 1;
					continue;
				}
			}
		}
		if (o + 2 > cap) {
			cap = cap * 2 + 2;
			char *grown = realloc(out, cap);
			if (!grown) {
				free(out);
				return NULL;
			}
			out = grown;
		}
		out[o++] = s[i++];
	}
	out[o] = '\0';
	return out;
}

struct builder {
	yaml_parser_t p;
	const char *file;
	struct sl_err *err;
};

static int parse_node(struct builder *b, yaml_event_t *ev, struct sl_cfg_node **out, int depth);

static int parse_children(struct builder *b, struct sl_cfg_node *n, int depth)
{
	for (;;) {
		yaml_event_t ev;
		if (!yaml_parser_parse(&b->p, &ev))
			return sl_err_set(b->err, SL_ECONFIG, "%s:%zu:%zu: %s", b->file, b->p.problem_mark.line + 1,
					  b->p.problem_mark.column + 1, b->p.problem ? b->p.problem : "YAML syntax error");
		if (ev.type == YAML_MAPPING_END_EVENT || ev.type == YAML_SEQUENCE_END_EVENT) {
			yaml_event_delete(&ev);
			return 0;
		}
		char *key = NULL;
		int key_line = 0;
		if (n->kind == SL_CFG_MAP) {
			if (ev.type != YAML_SCALAR_EVENT) {
				int line = (int)ev.start_mark.line + 1;
				yaml_event_delete(&ev);
				return sl_err_set(b->err, SL_ECONFIG, "%s:%d: a map key must be a plain scalar", b->file, line);
			}
			key_line = (int)ev.start_mark.line + 1;
			key = strndup((const char *)ev.data.scalar.value, ev.data.scalar.length);
			yaml_event_delete(&ev);
			if (!key)
				return sl_err_set(b->err, SL_ENOMEM, "out of memory");
			for (size_t i = 0; i < n->n; i++)
				if (!strcmp(n->keys[i], key)) {
					sl_err_set(b->err, SL_ECONFIG, "%s:%d: duplicate key '%s' (first at line %d)", b->file,
						   key_line, key, n->key_lines[i]);
					free(key);
					return SL_ECONFIG;
				}
			if (!yaml_parser_parse(&b->p, &ev)) {
				free(key);
				return sl_err_set(b->err, SL_ECONFIG, "%s:%zu:%zu: %s", b->file, b->p.problem_mark.line + 1,
						  b->p.problem_mark.column + 1, b->p.problem ? b->p.problem : "YAML syntax error");
			}
		}
		struct sl_cfg_node *child = NULL;
		int rc = parse_node(b, &ev, &child, depth + 1);
		yaml_event_delete(&ev);
		if (rc == 0 && node_push(n, key, key_line, child) != 0) {
			node_free(child);
			rc = sl_err_set(b->err, SL_ENOMEM, "out of memory");
		}
		if (rc) {
			if (!child || rc)
				free(key);
			return rc;
		}
	}
}

static int parse_node(struct builder *b, yaml_event_t *ev, struct sl_cfg_node **out, int depth)
{
	if (depth > SL_CFG_MAX_DEPTH)
		return sl_err_set(b->err, SL_ECONFIG, "%s:%zu: nesting deeper than %d levels", b->file,
				  ev->start_mark.line + 1, SL_CFG_MAX_DEPTH);
	struct sl_cfg_node *n;
	switch (ev->type) {
	case YAML_SCALAR_EVENT: {
		const char *v = (const char *)ev->data.scalar.value;
		size_t len = ev->data.scalar.length;
		bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
		bool isnull = plain && (len == 0 || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") ||
					!strcmp(v, "NULL"));
		n = node_new(isnull ? SL_CFG_NULL : SL_CFG_SCALAR, b->file, &ev->start_mark);
		if (!n)
			return sl_err_set(b->err, SL_ENOMEM, "out of memory");
		if (!isnull) {
			char missing[256] = "";
			n->value = expand_env(v, len, missing, sizeof missing);
			n->quoted = !plain;
			if (!n->value) {
				int line = n->line;
				node_free(n);
				if (missing[0])
					return sl_err_set(b->err, SL_ECONFIG,
							  "%s:%d: environment variable '%s' is not set (write ${%s:-default} "
							  "to give a default)",
							  b->file, line, missing, missing);
				return sl_err_set(b->err, SL_ENOMEM, "out of memory");
			}
		}
		*out = n;
		return 0;
	}
	case YAML_MAPPING_START_EVENT:
	case YAML_SEQUENCE_START_EVENT:
		n = node_new(ev->type == YAML_MAPPING_START_EVENT ? SL_CFG_MAP : SL_CFG_SEQ, b->file, &ev->start_mark);
		if (!n)
			return sl_err_set(b->err, SL_ENOMEM, "out of memory");
		if (parse_children(b, n, depth) != 0) {
			node_free(n);
			return b->err ? b->err->code : SL_ECONFIG;
		}
		*out = n;
		return 0;
	case YAML_ALIAS_EVENT:
		return sl_err_set(b->err, SL_ECONFIG, "%s:%zu: YAML aliases (*name) are not supported", b->file,
				  ev->start_mark.line + 1);
	default:
		return sl_err_set(b->err, SL_ECONFIG, "%s:%zu: unexpected YAML event", b->file, ev->start_mark.line + 1);
	}
}

int sl_cfg_load_string(struct sl_cfg_doc *doc, const char *name, const char *text, size_t len, struct sl_err *err)
{
	memset(doc, 0, sizeof *doc);
	doc->file = strdup(name ? name : "<config>");
	if (!doc->file)
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	struct builder b = {.file = doc->file, .err = err};
	if (!yaml_parser_initialize(&b.p)) {
		sl_cfg_free(doc);
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	}
	yaml_parser_set_input_string(&b.p, (const unsigned char *)text, len);
	int rc = 0;
	for (;;) {
		yaml_event_t ev;
		if (!yaml_parser_parse(&b.p, &ev)) {
			rc = sl_err_set(err, SL_ECONFIG, "%s:%zu:%zu: %s", doc->file, b.p.problem_mark.line + 1,
					b.p.problem_mark.column + 1, b.p.problem ? b.p.problem : "YAML syntax error");
			break;
		}
		yaml_event_type_t t = ev.type;
		if (t == YAML_STREAM_END_EVENT) {
			yaml_event_delete(&ev);
			break;
		}
		if (t == YAML_MAPPING_START_EVENT || t == YAML_SEQUENCE_START_EVENT || t == YAML_SCALAR_EVENT ||
		    t == YAML_ALIAS_EVENT) {
			if (doc->root) {
				rc = sl_err_set(err, SL_ECONFIG, "%s:%zu: only one YAML document is allowed", doc->file,
						ev.start_mark.line + 1);
				yaml_event_delete(&ev);
				break;
			}
			rc = parse_node(&b, &ev, &doc->root, 0);
		}
		yaml_event_delete(&ev);
		if (rc)
			break;
	}
	yaml_parser_delete(&b.p);
	if (rc == 0 && !doc->root) {
		yaml_mark_t m = {0};
		doc->root = node_new(SL_CFG_MAP, doc->file, &m);
		if (!doc->root)
			rc = sl_err_set(err, SL_ENOMEM, "out of memory");
	}
	if (rc == 0 && doc->root->kind != SL_CFG_MAP)
		rc = sl_err_set(err, SL_ECONFIG, "%s:%d: the top level of a config must be a map of keys", doc->file,
				doc->root->line);
	if (rc)
		sl_cfg_free(doc);
	return rc;
}

int sl_cfg_load_file(struct sl_cfg_doc *doc, const char *path, struct sl_err *err)
{
	memset(doc, 0, sizeof *doc);
	FILE *fp = fopen(path, "rb");
	if (!fp)
		return sl_err_set(err, SL_ECONFIG, "%s: cannot open config: %s", path, strerror(errno));
	char *buf = malloc(SL_CFG_MAX_BYTES + 1);
	if (!buf) {
		fclose(fp);
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	}
	size_t len = fread(buf, 1, SL_CFG_MAX_BYTES + 1, fp);
	int rd_err = ferror(fp);
	fclose(fp);
	if (rd_err) {
		free(buf);
		return sl_err_set(err, SL_ECONFIG, "%s: cannot read config", path);
	}
	if (len > SL_CFG_MAX_BYTES) {
		free(buf);
		return sl_err_set(err, SL_ECONFIG, "%s: config is larger than %d MiB", path, SL_CFG_MAX_BYTES >> 20);
	}
	int rc = sl_cfg_load_string(doc, path, buf, len, err);
	free(buf);
	return rc;
}

void sl_cfg_free(struct sl_cfg_doc *doc)
{
	if (!doc)
		return;
	node_free(doc->root);
	free(doc->file);
	memset(doc, 0, sizeof *doc);
}

struct sl_cfg_node *sl_cfg_get(const struct sl_cfg_node *map, const char *key)
{
	if (!map || map->kind != SL_CFG_MAP)
		return NULL;
	for (size_t i = 0; i < map->n; i++)
		if (!strcmp(map->keys[i], key))
			return map->items[i];
	return NULL;
}

const char *sl_cfg_where(const struct sl_cfg_node *n, char *buf, size_t bufsz)
{
	if (!n)
		snprintf(buf, bufsz, "<config>");
	else
		snprintf(buf, bufsz, "%s:%d", n->file ? n->file : "<config>", n->line);
	return buf;
}

static int want_scalar(const struct sl_cfg_node *n, const char *key, const char *what, struct sl_err *err)
{
	if (n && n->kind == SL_CFG_SCALAR)
		return 0;
	char w[300];
	return sl_err_set(err, SL_ECONFIG, "%s: '%s' must be %s, not %s", sl_cfg_where(n, w, sizeof w), key, what,
			  !n ? "missing" : n->kind == SL_CFG_MAP ? "a map" : n->kind == SL_CFG_SEQ ? "a list" : "empty");
}

static int bad_value(const struct sl_cfg_node *n, const char *key, const char *what, struct sl_err *err)
{
	char w[300];
	return sl_err_set(err, SL_ECONFIG, "%s: '%s' must be %s, got '%s'", sl_cfg_where(n, w, sizeof w), key, what,
			  n->value);
}

int sl_cfg_as_bool(const struct sl_cfg_node *n, const char *key, bool *out, struct sl_err *err)
{
	if (want_scalar(n, key, "true or false", err))
		return SL_ECONFIG;
	const char *v = n->value;
	if (!strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on"))
		*out = true;
	else if (!strcasecmp(v, "false") || !strcasecmp(v, "no") || !strcasecmp(v, "off"))
		*out = false;
	else
		return bad_value(n, key, "true or false", err);
	return 0;
}

int sl_cfg_as_int(const struct sl_cfg_node *n, const char *key, int64_t *out, struct sl_err *err)
{
	if (want_scalar(n, key, "an integer", err))
		return SL_ECONFIG;
	char *end;
	errno = 0;
	long long v = strtoll(n->value, &end, 10);
	if (errno || end == n->value || *end)
		return bad_value(n, key, "an integer", err);
	*out = v;
	return 0;
}

int sl_cfg_as_double(const struct sl_cfg_node *n, const char *key, double *out, struct sl_err *err)
{
	if (want_scalar(n, key, "a number", err))
		return SL_ECONFIG;
	char *end;
	errno = 0;
	double v = strtod(n->value, &end);
	if (errno || end == n->value || *end || !isfinite(v))
		return bad_value(n, key, "a number", err);
	*out = v;
	return 0;
}

struct unit {
	const char *u;
	double m;
};

/* A non-negative number followed (after optional spaces) by one of units, scaled; round: to the nearest integer,
 * else truncated. -1 for anything else, or a value too large to hold. */
static int parse_scaled(const char *s, const struct unit *units, size_t n, bool round, int64_t *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || v < 0 || !isfinite(v))
		return -1;
	while (*end == ' ')
		end++;
	for (size_t i = 0; i < n; i++)
		if (!strcmp(end, units[i].u)) {
			double x = v * units[i].m;
			if (x > (double)INT64_MAX / 2)
				return -1;
			*out = (int64_t)(round ? x + 0.5 : x);
			return 0;
		}
	return -1;
}

int sl_parse_duration_ms(const char *s, int64_t *out)
{
	static const struct unit units[] = {
		{"", 1000}, {"s", 1000}, {"sec", 1000}, {"ms", 1}, {"us", 0.001}, {"m", 60000}, {"min", 60000},
		{"h", 3600000}, {"d", 86400000},
	};
	return parse_scaled(s, units, sizeof units / sizeof *units, true, out);
}

int sl_parse_size(const char *s, int64_t *out)
{
	static const struct unit units[] = {
		{"", 1}, {"B", 1}, {"k", 1e3}, {"kB", 1e3}, {"KB", 1e3}, {"KiB", 1024.0}, {"M", 1e6}, {"MB", 1e6},
		{"MiB", 1048576.0}, {"G", 1e9}, {"GB", 1e9}, {"GiB", 1073741824.0}, {"Ki", 1024.0}, {"Mi", 1048576.0},
		{"Gi", 1073741824.0},
	};
	return parse_scaled(s, units, sizeof units / sizeof *units, false, out);
}

int sl_cfg_as_duration_ms(const struct sl_cfg_node *n, const char *key, int64_t *out, struct sl_err *err)
{
	if (want_scalar(n, key, "a duration", err))
		return SL_ECONFIG;
	if (sl_parse_duration_ms(n->value, out))
		return bad_value(n, key, "a duration like 250ms, 5s, 2m, 1h", err);
	return 0;
}

int sl_cfg_as_size(const struct sl_cfg_node *n, const char *key, int64_t *out, struct sl_err *err)
{
	if (want_scalar(n, key, "a size", err))
		return SL_ECONFIG;
	if (sl_parse_size(n->value, out))
		return bad_value(n, key, "a size like 512KiB, 64MiB, 1GiB", err);
	return 0;
}

/* ---- option tables ---- */

static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 63 || lb > 63)
		return 64;
	size_t d[64][64];
	for (size_t i = 0; i <= la; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++)
		for (size_t j = 1; j <= lb; j++) {
			size_t cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
			size_t best = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			if (d[i - 1][j - 1] + cost < best)
				best = d[i - 1][j - 1] + cost;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < best)
				best = d[i - 2][j - 2] + 1;
			d[i][j] = best;
		}
	return d[la][lb];
}

const char *sl_cfg_suggest(const char *word, const char *const *candidates, size_t n)
{
	const char *best = NULL;
	size_t best_d = (size_t)-1;
	for (size_t i = 0; i < n; i++) {
		size_t d = edit_distance(word, candidates[i]);
		if (d < best_d) {
			best_d = d;
			best = candidates[i];
		}
	}
	size_t limit = strlen(word) / 3 + 1;
	if (limit > 3)
		limit = 3;
	return best && best_d <= limit ? best : NULL;
}

#define FIELD(dst, off, T) ((T *)((char *)(dst) + (off)))

static void free_one(const struct sl_opt *o, void *dst)
{
	switch (o->type) {
	case SL_OPT_STRING:
	case SL_OPT_ENUM:
		free(*FIELD(dst, o->offset, char *));
		*FIELD(dst, o->offset, char *) = NULL;
		break;
	case SL_OPT_STRLIST: {
		struct sl_strlist *l = FIELD(dst, o->offset, struct sl_strlist);
		for (size_t i = 0; i < l->n; i++)
			free(l->v[i]);
		free(l->v);
		memset(l, 0, sizeof *l);
		break;
	}
	case SL_OPT_STRMAP: {
		struct sl_strmap *m = FIELD(dst, o->offset, struct sl_strmap);
		for (size_t i = 0; i < m->n; i++) {
			free(m->k[i]);
			free(m->v[i]);
		}
		free(m->k);
		free(m->v);
		memset(m, 0, sizeof *m);
		break;
	}
	case SL_OPT_SECTION:
		sl_opt_free(o->sub, FIELD(dst, o->offset, char));
		break;
	default:
		break;
	}
}

void sl_opt_free(const struct sl_opt *table, void *dst)
{
	for (const struct sl_opt *o = table; o->name; o++)
		free_one(o, dst);
}

static int enum_ok(const char *choices, const char *v)
{
	size_t vl = strlen(v);
	for (const char *p = choices; *p;) {
		size_t l = strcspn(p, "|");
		if (l == vl && !strncmp(p, v, l))
			return 1;
		p += l;
		if (*p == '|')
			p++;
	}
	return 0;
}

static int check_range(const struct sl_opt *o, const struct sl_cfg_node *n, const char *section, int64_t v,
		       struct sl_err *err)
{
	if (o->min < o->max && (v < o->min || v > o->max)) {
		char w[300];
		return sl_err_set(err, SL_ECONFIG, "%s: '%s%s%s' is %lld, outside %lld..%lld", sl_cfg_where(n, w, sizeof w),
				  section ? section : "", section ? "." : "", o->name, (long long)v, (long long)o->min,
				  (long long)o->max);
	}
	return 0;
}

/* Binds one value (n may be a temporary scalar node built from the default). */
static int bind_one(const struct sl_opt *o, const struct sl_cfg_node *n, const char *section, void *dst,
		    struct sl_err *err)
{
	char key[256];
	snprintf(key, sizeof key, "%s%s%s", section ? section : "", section && *section ? "." : "", o->name);
	int64_t iv;
	switch (o->type) {
	case SL_OPT_STRING:
	case SL_OPT_ENUM:
		if (want_scalar(n, key, "a string", err))
			return SL_ECONFIG;
		if (o->type == SL_OPT_ENUM && !enum_ok(o->choices, n->value)) {
			char w[300];
			return sl_err_set(err, SL_ECONFIG, "%s: '%s' must be one of %s, got '%s'",
					  sl_cfg_where(n, w, sizeof w), key, o->choices, n->value);
		}
		free(*FIELD(dst, o->offset, char *));
		if (!(*FIELD(dst, o->offset, char *) = strdup(n->value)))
			return sl_err_set(err, SL_ENOMEM, "out of memory");
		return 0;
	case SL_OPT_INT:
		if (sl_cfg_as_int(n, key, &iv, err) || check_range(o, n, section, iv, err))
			return SL_ECONFIG;
		*FIELD(dst, o->offset, int64_t) = iv;
		return 0;
	case SL_OPT_DURATION:
		if (sl_cfg_as_duration_ms(n, key, &iv, err) || check_range(o, n, section, iv, err))
			return SL_ECONFIG;
		*FIELD(dst, o->offset, int64_t) = iv;
		return 0;
	case SL_OPT_SIZE:
		if (sl_cfg_as_size(n, key, &iv, err) || check_range(o, n, section, iv, err))
			return SL_ECONFIG;
		*FIELD(dst, o->offset, int64_t) = iv;
		return 0;
	case SL_OPT_DOUBLE:
		return sl_cfg_as_double(n, key, FIELD(dst, o->offset, double), err);
	case SL_OPT_BOOL:
		return sl_cfg_as_bool(n, key, FIELD(dst, o->offset, bool), err);
	case SL_OPT_STRLIST: {
		struct sl_strlist *l = FIELD(dst, o->offset, struct sl_strlist);
		free_one(o, dst);
		size_t cnt = n->kind == SL_CFG_SEQ ? n->n : 1;
		if (n->kind != SL_CFG_SEQ && want_scalar(n, key, "a list of strings", err))
			return SL_ECONFIG;
		l->v = calloc(cnt ? cnt : 1, sizeof *l->v);
		if (!l->v)
			return sl_err_set(err, SL_ENOMEM, "out of memory");
		for (size_t i = 0; i < cnt; i++) {
			const struct sl_cfg_node *it = n->kind == SL_CFG_SEQ ? n->items[i] : n;
			if (want_scalar(it, key, "a string", err))
				return SL_ECONFIG;
			if (!(l->v[l->n++] = strdup(it->value)))
				return sl_err_set(err, SL_ENOMEM, "out of memory");
		}
		return 0;
	}
	case SL_OPT_STRMAP: {
		struct sl_strmap *m = FIELD(dst, o->offset, struct sl_strmap);
		if (n->kind != SL_CFG_MAP) {
			char w[300];
			return sl_err_set(err, SL_ECONFIG, "%s: '%s' must be a map of key: value",
					  sl_cfg_where(n, w, sizeof w), key);
		}
		free_one(o, dst);
		m->k = calloc(n->n + 1, sizeof *m->k);
		m->v = calloc(n->n + 1, sizeof *m->v);
		if (!m->k || !m->v)
			return sl_err_set(err, SL_ENOMEM, "out of memory");
		for (size_t i = 0; i < n->n; i++) {
			if (want_scalar(n->items[i], n->keys[i], "a scalar value", err))
				return SL_ECONFIG;
			m->k[i] = strdup(n->keys[i]);
			m->v[i] = strdup(n->items[i]->value);
			m->n++;
			if (!m->k[i] || !m->v[i])
				return sl_err_set(err, SL_ENOMEM, "out of memory");
		}
		return 0;
	}
	case SL_OPT_NODE:
		*FIELD(dst, o->offset, const struct sl_cfg_node *) = n;
		return 0;
	case SL_OPT_SECTION:
		if (n->kind != SL_CFG_MAP) {
			char w[300];
			return sl_err_set(err, SL_ECONFIG, "%s: '%s' must be a map", sl_cfg_where(n, w, sizeof w), key);
		}
		return sl_opt_bind(o->sub, n, key, FIELD(dst, o->offset, char), err);
	}
	return SL_EINVAL;
}

int sl_opt_defaults(const struct sl_opt *table, void *dst, struct sl_err *err)
{
	for (const struct sl_opt *o = table; o->name; o++) {
		if (o->type == SL_OPT_SECTION) {
			if (sl_opt_defaults(o->sub, FIELD(dst, o->offset, char), err))
				return SL_ECONFIG;
			continue;
		}
		if (!o->def)
			continue;
		struct sl_cfg_node tmp = {.kind = SL_CFG_SCALAR, .file = "<default>", .value = (char *)o->def};
		if (bind_one(o, &tmp, NULL, dst, err))
			return sl_err_prefix(err, "built-in default of '%s': ", o->name);
	}
	return 0;
}

int sl_opt_bind(const struct sl_opt *table, const struct sl_cfg_node *map, const char *section, void *dst,
		struct sl_err *err)
{
	if (sl_opt_defaults(table, dst, err))
		return SL_ECONFIG;
	if (!map || map->kind == SL_CFG_NULL)
		map = NULL;
	else if (map->kind != SL_CFG_MAP) {
		char w[300];
		return sl_err_set(err, SL_ECONFIG, "%s: '%s' must be a map of options", sl_cfg_where(map, w, sizeof w),
				  section && *section ? section : "<top level>");
	}
	for (size_t i = 0; map && i < map->n; i++) {
		const struct sl_opt *o = table;
		for (; o->name; o++)
			if (!strcmp(o->name, map->keys[i]))
				break;
		if (!o->name) {
			const char *names[256] = {0};
			size_t cnt = 0;
			for (const struct sl_opt *q = table; q->name && cnt < 256; q++)
				names[cnt++] = q->name;
			const char *s = sl_cfg_suggest(map->keys[i], names, cnt);
			char list[1024] = "";
			size_t used = 0;
			for (size_t k = 0; k < cnt && used + 2 < sizeof list; k++) {
				int w = snprintf(list + used, sizeof list - used, "%s%s", k ? ", " : "", names[k]);
				if (w < 0 || (size_t)w >= sizeof list - used)
					break;
				used += (size_t)w;
			}
			if (s)
				return sl_err_set(err, SL_ECONFIG, "%s:%d: unknown key '%s' in %s; did you mean '%s'?",
						  map->file, map->key_lines[i], map->keys[i],
						  section && *section ? section : "the top level", s);
			return sl_err_set(err, SL_ECONFIG, "%s:%d: unknown key '%s' in %s (known keys: %s)", map->file,
					  map->key_lines[i], map->keys[i], section && *section ? section : "the top level",
					  list);
		}
		if (map->items[i]->kind == SL_CFG_NULL && o->type != SL_OPT_NODE) {
			/* `type: null` reads as YAML's null, not the word: for a choice, say so instead of silently
			 * keeping the default. */
			if (o->type == SL_OPT_ENUM)
				return sl_err_set(err, SL_ECONFIG, "%s:%d: '%s' is empty (YAML reads null, ~ and nothing as "
						  "empty); write one of %s", map->file, map->key_lines[i], map->keys[i],
						  o->choices);
			if (o->required)
				return sl_err_set(err, SL_ECONFIG, "%s:%d: '%s' is required and cannot be empty", map->file,
						  map->key_lines[i], map->keys[i]);
			continue; /* an empty value keeps the default */
		}
		if (bind_one(o, map->items[i], section, dst, err))
			return SL_ECONFIG;
	}
	for (const struct sl_opt *o = table; o->name; o++)
		if (o->required && !sl_cfg_get(map, o->name)) {
			char w[300];
			return sl_err_set(err, SL_ECONFIG, "%s: '%s' is required in %s", sl_cfg_where(map, w, sizeof w),
					  o->name, section && *section ? section : "the top level");
		}
	return 0;
}

static const char *type_name(const struct sl_opt *o)
{
	switch (o->type) {
	case SL_OPT_STRING: return "string";
	case SL_OPT_INT: return "integer";
	case SL_OPT_DOUBLE: return "number";
	case SL_OPT_BOOL: return "boolean";
	case SL_OPT_DURATION: return "duration";
	case SL_OPT_SIZE: return "size";
	case SL_OPT_ENUM: return o->choices;
	case SL_OPT_STRLIST: return "list of strings";
	case SL_OPT_STRMAP: return "map of strings";
	case SL_OPT_NODE: return "structure";
	case SL_OPT_SECTION: return "section";
	}
	return "?";
}

void sl_opt_doc_markdown(const struct sl_opt *table, const char *section, FILE *fp)
{
	fprintf(fp, "\n### `%s`\n\n| key | type | default | description |\n|---|---|---|---|\n",
		section && *section ? section : "top level");
	for (const struct sl_opt *o = table; o->name; o++) {
		fprintf(fp, "| `%s` | ", o->name);
		for (const char *t = type_name(o); *t; t++) /* a '|' would end the Markdown cell */
			fputs(*t == '|' ? " \\| " : (char[]){*t, 0}, fp);
		fprintf(fp, " | %s%s%s | %s |\n", o->def ? "`" : "", o->def ? o->def : (o->required ? "required" : "—"),
			o->def ? "`" : "", o->doc ? o->doc : "");
	}
	for (const struct sl_opt *o = table; o->name; o++)
		if (o->type == SL_OPT_SECTION) {
			char sub[256];
			snprintf(sub, sizeof sub, "%s%s%s", section && *section ? section : "",
				 section && *section ? "." : "", o->name);
			sl_opt_doc_markdown(o->sub, sub, fp);
		}
}
