/* Avro schemas for the registry: the canonical string Confluent stores (Avro Java's Schema.toString()), and
 * reader/writer compatibility with Avro's resolution rules (Avro Java's SchemaCompatibility). Both work on the codec's
 * schema model (codec/avro_schema.c parses), which keeps the defaults, aliases and docs they need. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry/internal.h"

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
		sl_jtree_render(j->v[i], out);
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
			      a->t == SL_AVRO_RECORD ? (a->is_error ? "error" : "record") : sl_avro_type_names[a->t]);
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
				const char *fdoc = sl_jtree_getstr(f->src, "doc");
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
					sl_jtree_render(f->def, out);
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
		sl_buf_printf(out, "{\"type\":\"%s\",\"%s\":", sl_avro_type_names[a->t], a->t == SL_AVRO_ARRAY ? "items" : "values");
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
			sl_buf_printf(out, "\"%s\"", sl_avro_type_names[a->t]);
			return;
		}
		sl_buf_printf(out, "{\"type\":\"%s\"", sl_avro_type_names[a->t]);
		props(a->src, schema_reserved, false, out);
		sl_buf_putc(out, '}');
		return;
	}
	}
}

void sl_reg_avro_canonical(const struct sl_avro_schema *s, struct sl_buf *out)
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
		   k->loc[0] ? k->loc : "/", msg, r->fullname ? r->fullname : sl_avro_type_names[r->t],
		   w->fullname ? w->fullname : sl_avro_type_names[w->t]);
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
	if (k->n >= 4 * SL_AVRO_MAX_DEPTH) {
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
				 w->fullname ? w->fullname : sl_avro_type_names[w->t]);
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
			 r->t == SL_AVRO_RECORD || r->t == SL_AVRO_ENUM || r->t == SL_AVRO_FIXED ? sl_avro_type_names[r->t]
												     : sl_avro_type_names[r->t],
			 sl_avro_type_names[w->t]);
		fail(k, "TYPE_MISMATCH", msg, r, w);
	}
	k->n--;
	return bad;
}

int sl_reg_avro_compatible(const struct sl_avro *reader, const struct sl_avro *writer, struct sl_buf *msgs)
{
	struct kctx k = {0};
	int rc;
	k.msgs = msgs;
	k.budget = 200000;
	rc = check(&k, reader, writer);
	free(k.stack);
	return rc || k.incompatible ? 1 : 0;
}
