/* Aggregate outputs (aggregate.h): the aggregate: section, the in-memory state (a chained hash table of group x
 * window entries, each with one accumulator per measure), window assignment and the watermark, and the byte forms of
 * keys and accumulators that the SQLite sink stores with the offsets. State is touched once per record; a batch's
 * changed entries are serialized once, at its end. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/ident.h"
#include "pipeline/aggregate.h"

enum mfn { M_COUNT, M_SUM, M_MIN, M_MAX, M_AVG, M_COUNT_DISTINCT, M_FIRST, M_LAST };
static const char *mfn_names[] = {"count", "sum", "min", "max", "avg", "count_distinct", "first", "last"};

struct measure {
	char *name;
	enum mfn fn;
	struct sl_expr *arg; /* NULL: count() */
	enum sl_type in, out;
};

struct sl_aggregate_conf {
	size_t ngroup;
	char **gname;
	struct sl_expr **gexpr;
	bool windowed, arrival, final, late_dlq;
	int64_t size_ms, slide_ms, lateness_ms;
	struct sl_expr *time;
	size_t nm;
	struct measure *m;
	struct sl_schema group_schema; /* only for compiling; expressions see the pipeline's full schema */
};

static const struct sl_opt window_opts[] = {{NULL}};

void sl_aggregate_conf_free(struct sl_aggregate_conf *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->ngroup; i++) {
		free(c->gname[i]);
		sl_expr_free(c->gexpr[i]);
	}
	free(c->gname);
	free(c->gexpr);
	for (size_t i = 0; i < c->nm; i++) {
		free(c->m[i].name);
		sl_expr_free(c->m[i].arg);
	}
	free(c->m);
	sl_expr_free(c->time);
	free(c);
}

bool sl_aggregate_conf_emit_final(const struct sl_aggregate_conf *c)
{
	return c->final;
}

bool sl_aggregate_conf_late_dlq(const struct sl_aggregate_conf *c)
{
	return c->late_dlq;
}

bool sl_aggregate_conf_windowed(const struct sl_aggregate_conf *c)
{
	return c->windowed;
}

void sl_aggregate_conf_default_key(const struct sl_aggregate_conf *c, struct sl_strlist *pk)
{
	size_t n = c->ngroup + (c->windowed ? 1 : 0);
	pk->v = calloc(n ? n : 1, sizeof *pk->v);
	pk->n = 0;
	if (!pk->v)
		return;
	for (size_t i = 0; i < c->ngroup; i++)
		if ((pk->v[pk->n] = strdup(c->gname[i])))
			pk->n++;
	if (c->windowed && (pk->v[pk->n] = strdup("window_start")))
		pk->n++;
}

static int compile_at(const struct sl_cfg_node *at, const char *section, const char *what, const char *src,
		      const struct sl_schema *full, struct sl_expr **out, struct sl_err *err)
{
	char w[300], where[400];
	snprintf(where, sizeof where, "%s: %s.%s", sl_cfg_where(at, w, sizeof w), section, what);
	return sl_expr_compile(src, full, where, out, err);
}

int sl_aggregate_conf_load(const struct sl_cfg_node *n, const struct sl_schema *full, const char *section,
		     struct sl_schema *schema, struct sl_aggregate_conf **out, struct sl_err *err)
{
	char w[300];
	(void)window_opts;
	*out = NULL;
	if (n->kind != SL_CFG_MAP)
		return sl_err_set(err, SL_ECONFIG, "%s: %s.aggregate must be a map (group_by, window, measures, emit, "
				  "late)", sl_cfg_where(n, w, sizeof w), section);
	static const char *known[] = {"group_by", "window", "measures", "emit", "late"};
	for (size_t i = 0; i < n->n; i++) {
		size_t k;
		for (k = 0; k < sizeof known / sizeof *known; k++)
			if (!strcmp(n->keys[i], known[k]))
				break;
		if (k == sizeof known / sizeof *known)
			return sl_err_set(err, SL_ECONFIG, "%s: %s.aggregate: unknown key '%s' (group_by, window, "
					  "measures, emit, late)", sl_cfg_where(n->items[i], w, sizeof w), section,
					  n->keys[i]);
	}
	struct sl_aggregate_conf *c = calloc(1, sizeof *c);
	if (!c)
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	c->late_dlq = true;
	int rc = 0;
	const struct sl_cfg_node *g = sl_cfg_get(n, "group_by"), *win = sl_cfg_get(n, "window"),
				 *ms = sl_cfg_get(n, "measures"), *emit = sl_cfg_get(n, "emit"),
				 *late = sl_cfg_get(n, "late");
	sl_schema_init(schema);
	/* group_by: [col, ...] or { name: expression } */
	if (g) {
		if (g->kind == SL_CFG_SCALAR) {
			rc = sl_err_set(err, SL_ECONFIG, "%s: %s.aggregate.group_by must be a list of columns or a map of "
					"name: expression", sl_cfg_where(g, w, sizeof w), section);
			goto fail;
		}
		c->gname = calloc(g->n ? g->n : 1, sizeof *c->gname);
		c->gexpr = calloc(g->n ? g->n : 1, sizeof *c->gexpr);
		if (!c->gname || !c->gexpr) {
			rc = sl_err_set(err, SL_ENOMEM, "out of memory");
			goto fail;
		}
		for (size_t i = 0; i < g->n; i++) {
			const struct sl_cfg_node *it = g->items[i];
			const char *name = g->kind == SL_CFG_MAP ? g->keys[i] : it->value;
			if (it->kind != SL_CFG_SCALAR || !name) {
				rc = sl_err_set(err, SL_ECONFIG, "%s: %s.aggregate.group_by: expected a column or name: "
						"expression", sl_cfg_where(it, w, sizeof w), section);
				goto fail;
			}
			char q[300];
			snprintf(q, sizeof q, "`%s`", name);
			const char *src = g->kind == SL_CFG_MAP ? it->value : q;
			if (!(c->gname[i] = strdup(name))) {
				rc = sl_err_set(err, SL_ENOMEM, "out of memory");
				goto fail;
			}
			c->ngroup++;
			if ((rc = compile_at(it, section, "aggregate.group_by", src, full, &c->gexpr[i], err)))
				goto fail;
			if ((rc = sl_schema_add(schema, name, sl_expr_type(c->gexpr[i]), false, err))) {
				sl_err_prefix(err, "%s: %s.aggregate.group_by: ", sl_cfg_where(it, w, sizeof w), section);
				goto fail;
			}
		}
	}
	if (win) {
		static const char *wk[] = {"size", "slide", "time", "lateness"};
		if (win->kind != SL_CFG_MAP) {
			rc = sl_err_set(err, SL_ECONFIG, "%s: %s.aggregate.window must be a map (size, slide, time, "
					"lateness)", sl_cfg_where(win, w, sizeof w), section);
			goto fail;
		}
		for (size_t i = 0; i < win->n; i++) {
			size_t k;
			for (k = 0; k < 4 && strcmp(win->keys[i], wk[k]); k++)
				;
			if (k == 4) {
				rc = sl_err_set(err, SL_ECONFIG, "%s: %s.aggregate.window: unknown key '%s' (size, slide, "
						"time, lateness)", sl_cfg_where(win->items[i], w, sizeof w), section,
						win->keys[i]);
				goto fail;
			}
		}
		c->windowed = true;
		const struct sl_cfg_node *sz = sl_cfg_get(win, "size"), *sl = sl_cfg_get(win, "slide"),
					 *tm = sl_cfg_get(win, "time"), *lt = sl_cfg_get(win, "lateness");
		if (!sz) {
			rc = sl_err_set(err, SL_ECONFIG, "%s: %s.aggregate.window: size is required (e.g. 1m)",
					sl_cfg_where(win, w, sizeof w), section);
			goto fail;
		}
		if ((rc = sl_cfg_as_duration_ms(sz, "size", &c->size_ms, err)))
			goto fail;
		c->slide_ms = c->size_ms;
		if (sl && (rc = sl_cfg_as_duration_ms(sl, "slide", &c->slide_ms, err)))
			goto fail;
		if (lt && (rc = sl_cfg_as_duration_ms(lt, "lateness", &c->lateness_ms, err)))
			goto fail;
		if (c->size_ms <= 0 || c->slide_ms <= 0 || c->slide_ms > c->size_ms || c->size_ms % c->slide_ms) {
			rc = sl_err_set(err, SL_ECONFIG, "%s: %s.aggregate.window: size must be positive and a multiple of "
					"slide (size %" PRId64 " ms, slide %" PRId64 " ms)",
					sl_cfg_where(win, w, sizeof w), section, c->size_ms, c->slide_ms);
			goto fail;
		}
		if (c->size_ms / c->slide_ms > 1000) {
			rc = sl_err_set(err, SL_ECONFIG, "%s: %s.aggregate.window: more than 1000 windows per record",
					sl_cfg_where(win, w, sizeof w), section);
			goto fail;
		}
		if (!tm || (tm->value && !strcmp(tm->value, "arrival")))
			c->arrival = true;
		else {
			if (tm->kind != SL_CFG_SCALAR) {
				rc = sl_err_set(err, SL_ECONFIG, "%s: %s.aggregate.window.time: 'arrival' or an expression",
						sl_cfg_where(tm, w, sizeof w), section);
				goto fail;
			}
			if ((rc = compile_at(tm, section, "aggregate.window.time", tm->value, full, &c->time, err)))
				goto fail;
			if (sl_expr_type(c->time) != SL_T_TIMESTAMP) {
				rc = sl_err_set(err, SL_ECONFIG, "%s: %s.aggregate.window.time: the event time must be a "
						"timestamp, not %s (use timestamp(...))", sl_cfg_where(tm, w, sizeof w),
						section, sl_type_name(sl_expr_type(c->time)));
				goto fail;
			}
		}
		if ((rc = sl_schema_add(schema, "window_start", SL_T_TIMESTAMP, false, err)) ||
		    (rc = sl_schema_add(schema, "window_end", SL_T_TIMESTAMP, false, err))) {
			sl_err_prefix(err, "%s: %s.aggregate: ", sl_cfg_where(win, w, sizeof w), section);
			goto fail;
		}
	}
	if (!ms || ms->kind != SL_CFG_MAP || ms->n == 0) {
		rc = sl_err_set(err, SL_ECONFIG, "%s: %s.aggregate.measures: a map of column: \"fn(expression)\" with at "
				"least one entry (count, sum, min, max, avg, count_distinct, first, last)",
				sl_cfg_where(ms ? ms : n, w, sizeof w), section);
		goto fail;
	}
	if (!(c->m = calloc(ms->n, sizeof *c->m))) {
		rc = sl_err_set(err, SL_ENOMEM, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < ms->n; i++) {
		const struct sl_cfg_node *it = ms->items[i];
		struct measure *m = &c->m[i];
		const char *src = it->value;
		char at[300];
		snprintf(at, sizeof at, "%s: %s.aggregate.measures.%s", sl_cfg_where(it, w, sizeof w), section, ms->keys[i]);
		if (!(m->name = strdup(ms->keys[i]))) {
			rc = sl_err_set(err, SL_ENOMEM, "out of memory");
			goto fail;
		}
		c->nm++;
		const char *lp = src ? strchr(src, '(') : NULL, *rp = src ? strrchr(src, ')') : NULL;
		if (it->kind != SL_CFG_SCALAR || !lp || !rp || rp < lp) {
			rc = sl_err_set(err, SL_ECONFIG, "%s: expected \"fn(expression)\", e.g. \"count()\" or \"avg(age)\"",
					at);
			goto fail;
		}
		const char *f0 = src;
		while (*f0 == ' ')
			f0++;
		size_t fl = (size_t)(lp - f0);
		while (fl && f0[fl - 1] == ' ')
			fl--;
		size_t k;
		for (k = 0; k < sizeof mfn_names / sizeof *mfn_names; k++)
			if (strlen(mfn_names[k]) == fl && !strncmp(f0, mfn_names[k], fl))
				break;
		if (k == sizeof mfn_names / sizeof *mfn_names) {
			rc = sl_err_set(err, SL_ECONFIG, "%s: unknown measure '%.*s' (count, sum, min, max, avg, "
					"count_distinct, first, last)", at, (int)fl, f0);
			goto fail;
		}
		m->fn = (enum mfn)k;
		for (const char *p = rp + 1; *p; p++)
			if (*p != ' ') {
				rc = sl_err_set(err, SL_ECONFIG, "%s: text after the measure's ')'", at);
				goto fail;
			}
		char inner[1024];
		size_t il = (size_t)(rp - lp - 1);
		if (il >= sizeof inner) {
			rc = sl_err_set(err, SL_ECONFIG, "%s: expression too long", at);
			goto fail;
		}
		memcpy(inner, lp + 1, il);
		inner[il] = 0;
		bool empty = strspn(inner, " ") == il;
		if (empty && m->fn != M_COUNT) {
			rc = sl_err_set(err, SL_ECONFIG, "%s: %s() needs an argument", at, mfn_names[m->fn]);
			goto fail;
		}
		if (!empty && (rc = sl_expr_compile(inner, full, at, &m->arg, err)))
			goto fail;
		m->in = m->arg ? sl_expr_type(m->arg) : SL_T_BIGINT;
		bool num = m->in == SL_T_INT || m->in == SL_T_BIGINT || m->in == SL_T_DOUBLE;
		switch (m->fn) {
		case M_COUNT: case M_COUNT_DISTINCT:
			m->out = SL_T_BIGINT;
			break;
		case M_SUM:
			if (!num) {
				rc = sl_err_set(err, SL_ECONFIG, "%s: sum() needs a number, not %s", at, sl_type_name(m->in));
				goto fail;
			}
			m->out = m->in == SL_T_DOUBLE ? SL_T_DOUBLE : SL_T_BIGINT;
			break;
		case M_AVG:
			if (!num) {
				rc = sl_err_set(err, SL_ECONFIG, "%s: avg() needs a number, not %s", at, sl_type_name(m->in));
				goto fail;
			}
			m->out = SL_T_DOUBLE;
			break;
		case M_MIN: case M_MAX:
			if (m->in == SL_T_UUID || m->in == SL_T_BOOLEAN) {
				rc = sl_err_set(err, SL_ECONFIG, "%s: %s() of %s values has no order", at, mfn_names[m->fn],
						sl_type_name(m->in));
				goto fail;
			}
			m->out = m->in;
			break;
		default:
			m->out = m->in;
		}
		if ((rc = sl_schema_add(schema, m->name, m->out, false, err))) {
			sl_err_prefix(err, "%s: ", at);
			goto fail;
		}
	}
	if (emit && (!emit->value || (strcmp(emit->value, "update") && strcmp(emit->value, "final")))) {
		rc = sl_err_set(err, SL_ECONFIG, "%s: %s.aggregate.emit: 'update' or 'final'",
				sl_cfg_where(emit, w, sizeof w), section);
		goto fail;
	}
	c->final = emit && !strcmp(emit->value, "final");
	if (c->final && !c->windowed) {
		rc = sl_err_set(err, SL_ECONFIG, "%s: %s.aggregate.emit: final needs a window (without one, a group "
				"never closes)", sl_cfg_where(emit, w, sizeof w), section);
		goto fail;
	}
	if (late && (!late->value || (strcmp(late->value, "dlq") && strcmp(late->value, "drop")))) {
		rc = sl_err_set(err, SL_ECONFIG, "%s: %s.aggregate.late: 'dlq' or 'drop'", sl_cfg_where(late, w, sizeof w),
				section);
		goto fail;
	}
	c->late_dlq = !late || !strcmp(late->value, "dlq");
	*out = c;
	return 0;
fail:
	sl_aggregate_conf_free(c);
	return rc ? rc : SL_ECONFIG;
}

/* ---- state ---- */

struct acc {
	int64_t n, i;
	double d;
	bool has;
	struct sl_value v; /* min/max/first/last; text owned (malloc) */
	int64_t vts;       /* first/last: the event time of v */
	uint64_t *set;     /* count_distinct: open addressing of value hashes (0 = empty) */
	size_t sn, scap;
};

struct entry {
	struct entry *next;
	uint64_t h;
	unsigned char *key;
	size_t klen;
	int64_t wstart;
	bool dirty;
	struct acc acc[];
};

struct sl_aggregate {
	const struct sl_aggregate_conf *c;
	const struct sl_schema *os;
	struct entry **b;
	size_t nb, n;
	struct entry **dirty;
	size_t ndirty, dcap;
	int64_t max_event, watermark;
	/* The newest event time read from each input partition: while records are read, the watermark follows the
	 * slowest partition (a backlog read one partition after another must not make the next partition's records
	 * late); once the processor has caught up, it follows the newest of all (flush with the clock). */
	int64_t *pmax;
	int nparts;
	/* Scale-out (sl_aggregate_track_sources): the input partitions are the source topic's, their newest times come
	 * from the first stage's progress markers too, and a partition the first stage has read to its end is idle:
	 * left out of the minimum (Flink's idle sources). NULL otherwise. */
	bool *idle;
	uint64_t late, counted;
	bool meta_dirty;
	struct sl_buf kb, vb;
	struct sl_value *gv;
};

static uint64_t fnv(const void *p, size_t n, uint64_t h)
{
	const unsigned char *s = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ s[i]) * 1099511628211ull;
	return h;
}

static void ser_value(struct sl_buf *b, enum sl_type t, const struct sl_value *v)
{
	sl_buf_putc(b, v->null ? 0 : 1);
	if (v->null)
		return;
	switch (t) {
	case SL_T_TEXT: {
		uint32_t l = (uint32_t)v->u.s.n;
		sl_buf_append(b, &l, 4);
		sl_buf_append(b, v->u.s.p, v->u.s.n);
		break;
	}
	case SL_T_INT: sl_buf_append(b, &v->u.i32, 4); break;
	case SL_T_DATE: sl_buf_append(b, &v->u.days, 4); break;
	case SL_T_DOUBLE: sl_buf_append(b, &v->u.d, 8); break;
	case SL_T_BOOLEAN: sl_buf_putc(b, v->u.b ? 1 : 0); break;
	case SL_T_UUID: sl_buf_append(b, v->u.uuid, 16); break;
	default: sl_buf_append(b, &v->u.i64, 8); break;
	}
}

/* Reads a value written by ser_value; text points into the input. */
static int deser_value(const unsigned char **p, const unsigned char *end, enum sl_type t, struct sl_value *v)
{
	memset(v, 0, sizeof *v);
	if (*p >= end)
		return SL_EINVAL;
	if (*(*p)++ == 0) {
		v->null = true;
		return 0;
	}
	size_t need = t == SL_T_TEXT ? 4 : t == SL_T_INT || t == SL_T_DATE ? 4 : t == SL_T_BOOLEAN ? 1
		      : t == SL_T_UUID ? 16 : 8;
	if ((size_t)(end - *p) < need)
		return SL_EINVAL;
	switch (t) {
	case SL_T_TEXT: {
		uint32_t l;
		memcpy(&l, *p, 4);
		*p += 4;
		if ((size_t)(end - *p) < l)
			return SL_EINVAL;
		v->u.s.p = (const char *)*p;
		v->u.s.n = l;
		*p += l;
		return 0;
	}
	case SL_T_INT: memcpy(&v->u.i32, *p, 4); break;
	case SL_T_DATE: memcpy(&v->u.days, *p, 4); break;
	case SL_T_DOUBLE: memcpy(&v->u.d, *p, 8); break;
	case SL_T_BOOLEAN: v->u.b = **p != 0; break;
	case SL_T_UUID: memcpy(v->u.uuid, *p, 16); break;
	default: memcpy(&v->u.i64, *p, 8); break;
	}
	*p += need;
	return 0;
}

int sl_aggregate_new(const struct sl_aggregate_conf *c, const struct sl_schema *out_schema, int nparts,
		     struct sl_aggregate **out, struct sl_err *err)
{
	struct sl_aggregate *g = calloc(1, sizeof *g);
	nparts = nparts > 0 ? nparts : 1;
	if (!g || !(g->b = calloc(1024, sizeof *g->b)) || !(g->gv = calloc(c->ngroup + 1, sizeof *g->gv)) ||
	    !(g->pmax = malloc((size_t)nparts * sizeof *g->pmax))) {
		if (g) {
			free(g->b);
			free(g->gv);
		}
		free(g);
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	}
	g->nparts = nparts;
	for (int i = 0; i < nparts; i++)
		g->pmax[i] = INT64_MIN;
	g->nb = 1024;
	g->c = c;
	g->os = out_schema;
	g->max_event = INT64_MIN;
	g->watermark = INT64_MIN;
	sl_buf_init(&g->kb);
	sl_buf_init(&g->vb);
	*out = g;
	return 0;
}

static void entry_free(const struct sl_aggregate_conf *c, struct entry *e)
{
	for (size_t i = 0; i < c->nm; i++) {
		if (!e->acc[i].v.null && c->m[i].in == SL_T_TEXT && e->acc[i].has)
			free((void *)e->acc[i].v.u.s.p);
		free(e->acc[i].set);
	}
	free(e->key);
	free(e);
}

void sl_aggregate_free(struct sl_aggregate *g)
{
	if (!g)
		return;
	for (size_t i = 0; i < g->nb; i++)
		for (struct entry *e = g->b[i], *nx; e; e = nx) {
			nx = e->next;
			entry_free(g->c, e);
		}
	free(g->b);
	free(g->dirty);
	free(g->gv);
	free(g->pmax);
	free(g->idle);
	sl_buf_free(&g->kb);
	sl_buf_free(&g->vb);
	free(g);
}

static int grow(struct sl_aggregate *g)
{
	size_t nb = g->nb * 2;
	struct entry **b = calloc(nb, sizeof *b);
	if (!b)
		return SL_ENOMEM;
	for (size_t i = 0; i < g->nb; i++)
		for (struct entry *e = g->b[i], *nx; e; e = nx) {
			nx = e->next;
			e->next = b[e->h & (nb - 1)];
			b[e->h & (nb - 1)] = e;
		}
	free(g->b);
	g->b = b;
	g->nb = nb;
	return 0;
}

static struct entry *find_or_add(struct sl_aggregate *g, const unsigned char *k, size_t kl, int64_t wstart, bool *fresh)
{
	uint64_t h = fnv(k, kl, 1469598103934665603ull);
	*fresh = false;
	for (struct entry *e = g->b[h & (g->nb - 1)]; e; e = e->next)
		if (e->h == h && e->klen == kl && !memcmp(e->key, k, kl))
			return e;
	if (g->n + 1 > g->nb && grow(g))
		return NULL;
	struct entry *e = calloc(1, sizeof *e + g->c->nm * sizeof(struct acc));
	if (!e || !(e->key = malloc(kl ? kl : 1))) {
		free(e);
		return NULL;
	}
	memcpy(e->key, k, kl);
	e->klen = kl;
	e->h = h;
	e->wstart = wstart;
	for (size_t i = 0; i < g->c->nm; i++)
		e->acc[i].v.null = true;
	e->next = g->b[h & (g->nb - 1)];
	g->b[h & (g->nb - 1)] = e;
	g->n++;
	*fresh = true;
	return e;
}

static void remove_entry(struct sl_aggregate *g, struct entry *e)
{
	struct entry **pp = &g->b[e->h & (g->nb - 1)];
	while (*pp && *pp != e)
		pp = &(*pp)->next;
	if (*pp)
		*pp = e->next;
	g->n--;
	entry_free(g->c, e);
}

static int mark_dirty(struct sl_aggregate *g, struct entry *e)
{
	if (e->dirty)
		return 0;
	if (g->ndirty == g->dcap) {
		size_t cap = g->dcap ? g->dcap * 2 : 256;
		struct entry **d = realloc(g->dirty, cap * sizeof *d);
		if (!d)
			return SL_ENOMEM;
		g->dirty = d;
		g->dcap = cap;
	}
	g->dirty[g->ndirty++] = e;
	e->dirty = true;
	return 0;
}

static int cmpv(enum sl_type t, const struct sl_value *a, const struct sl_value *b)
{
	switch (t) {
	case SL_T_TEXT: {
		size_t n = a->u.s.n < b->u.s.n ? a->u.s.n : b->u.s.n;
		int c = n ? memcmp(a->u.s.p, b->u.s.p, n) : 0;
		return c ? c : a->u.s.n < b->u.s.n ? -1 : a->u.s.n > b->u.s.n;
	}
	case SL_T_INT: return (a->u.i32 > b->u.i32) - (a->u.i32 < b->u.i32);
	case SL_T_DATE: return (a->u.days > b->u.days) - (a->u.days < b->u.days);
	case SL_T_DOUBLE: return (a->u.d > b->u.d) - (a->u.d < b->u.d);
	default: return (a->u.i64 > b->u.i64) - (a->u.i64 < b->u.i64);
	}
}

static int set_value(struct acc *ac, enum sl_type t, const struct sl_value *v)
{
	if (t == SL_T_TEXT) {
		char *p = malloc(v->u.s.n ? v->u.s.n : 1);
		if (!p)
			return SL_ENOMEM;
		memcpy(p, v->u.s.p, v->u.s.n);
		if (ac->has && !ac->v.null)
			free((void *)ac->v.u.s.p);
		ac->v = (struct sl_value){.u.s = {p, v->u.s.n}};
	} else
		ac->v = *v;
	ac->v.null = false;
	ac->has = true;
	return 0;
}

static int set_insert(struct acc *ac, uint64_t h)
{
	h |= 1; /* 0 marks an empty slot */
	if ((ac->sn + 1) * 2 > ac->scap) {
		size_t cap = ac->scap ? ac->scap * 2 : 16;
		uint64_t *ns = calloc(cap, sizeof *ns);
		if (!ns)
			return SL_ENOMEM;
		for (size_t i = 0; i < ac->scap; i++)
			if (ac->set[i])
				for (size_t j = ac->set[i] & (cap - 1);; j = (j + 1) & (cap - 1))
					if (!ns[j]) {
						ns[j] = ac->set[i];
						break;
					}
		free(ac->set);
		ac->set = ns;
		ac->scap = cap;
	}
	for (size_t j = h & (ac->scap - 1);; j = (j + 1) & (ac->scap - 1)) {
		if (ac->set[j] == h)
			return 0;
		if (!ac->set[j]) {
			ac->set[j] = h;
			ac->sn++;
			return 0;
		}
	}
}

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	return x ^ (x >> 33);
}

static int update(struct sl_aggregate *g, struct entry *e, const struct sl_value *mv, int64_t t, struct sl_err *err)
{
	const struct sl_aggregate_conf *c = g->c;
	for (size_t i = 0; i < c->nm; i++) {
		const struct measure *m = &c->m[i];
		struct acc *ac = &e->acc[i];
		const struct sl_value *v = &mv[i];
		if (m->arg && v->null)
			continue; /* SQL and Spark: measures skip nulls */
		int rc = 0;
		switch (m->fn) {
		case M_COUNT:
			ac->n++;
			break;
		case M_SUM:
			ac->has = true;
			if (m->in == SL_T_DOUBLE)
				ac->d += v->u.d;
			else if (__builtin_add_overflow(ac->i, m->in == SL_T_INT ? v->u.i32 : v->u.i64, &ac->i))
				return sl_err_set(err, SL_ETYPE, "measure %s: sum overflows bigint", m->name);
			break;
		case M_AVG:
			ac->has = true;
			ac->n++;
			ac->d += m->in == SL_T_DOUBLE ? v->u.d : m->in == SL_T_INT ? (double)v->u.i32 : (double)v->u.i64;
			break;
		case M_MIN: case M_MAX: {
			int cv = ac->has ? cmpv(m->in, v, &ac->v) : 0;
			if (!ac->has || (m->fn == M_MIN ? cv < 0 : cv > 0))
				rc = set_value(ac, m->in, v);
			break;
		}
		case M_FIRST: case M_LAST:
			if (!ac->has || (m->fn == M_FIRST ? t < ac->vts : t >= ac->vts)) {
				rc = set_value(ac, m->in, v);
				ac->vts = t;
			}
			break;
		case M_COUNT_DISTINCT: {
			struct sl_buf *b = &g->vb;
			sl_buf_reset(b);
			ser_value(b, m->in, v);
			rc = sl_buf_ok(b) ? set_insert(ac, mix(fnv(b->data, b->len, 1469598103934665603ull))) : SL_ENOMEM;
			break;
		}
		}
		if (rc)
			return sl_err_set(err, rc, "out of memory");
	}
	return 0;
}

int sl_aggregate_add(struct sl_aggregate *g, const struct sl_record *r, int32_t partition, int64_t arrival_ms,
		     struct sl_expr_env *env, struct sl_arena *a, bool *late, struct sl_err *err)
{
	const struct sl_aggregate_conf *c = g->c;
	*late = false;
	int rc;
	int64_t t = arrival_ms;
	if (c->windowed && !c->arrival) {
		struct sl_value tv;
		if ((rc = sl_expr_eval(c->time, r, env, a, &tv, err)))
			return rc;
		if (tv.null)
			return sl_err_set(err, SL_ETYPE, "window.time \"%s\" is null for this record", sl_expr_text(c->time));
		t = tv.u.i64;
	}
	struct sl_value mv[64];
	if (c->nm > 64)
		return sl_err_set(err, SL_EINVAL, "more than 64 measures");
	for (size_t i = 0; i < c->nm; i++) {
		mv[i].null = false;
		if (c->m[i].arg && (rc = sl_expr_eval(c->m[i].arg, r, env, a, &mv[i], err)))
			return sl_err_prefix(err, "measure %s: ", c->m[i].name);
	}
	/* The key: a tag byte, the window start, the group values. */
	struct sl_buf *kb = &g->kb;
	sl_buf_reset(kb);
	sl_buf_putc(kb, 1);
	size_t wpos = kb->len;
	int64_t zero = 0;
	sl_buf_append(kb, &zero, 8);
	for (size_t i = 0; i < c->ngroup; i++) {
		if ((rc = sl_expr_eval(c->gexpr[i], r, env, a, &g->gv[i], err)))
			return sl_err_prefix(err, "group_by %s: ", c->gname[i]);
		ser_value(kb, sl_expr_type(c->gexpr[i]), &g->gv[i]);
	}
	if (!sl_buf_ok(kb))
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	if (t > g->max_event || g->max_event == INT64_MIN)
		g->max_event = t > g->max_event ? t : g->max_event;
	/* Sources tracked: a partition out of range (added to the topic since the start) is not another's. */
	int64_t *pm = partition >= 0 && partition < g->nparts ? &g->pmax[partition] : g->idle ? NULL : &g->pmax[0];
	if (pm && t > *pm)
		*pm = t;
	if (g->idle && partition >= 0 && partition < g->nparts)
		g->idle[partition] = false; /* a record of an idle source: it is read again (holds the watermark back) */
	g->meta_dirty = true;
	if (!c->windowed) {
		bool fresh;
		struct entry *e = find_or_add(g, (unsigned char *)kb->data, kb->len, 0, &fresh);
		if (!e || mark_dirty(g, e))
			return sl_err_set(err, SL_ENOMEM, "out of memory");
		g->counted++;
		return update(g, e, mv, t, err);
	}
	/* Every window [start, start + size) holding t, newest first; windows the watermark closed are skipped. */
	int64_t first = t / c->slide_ms * c->slide_ms;
	if (t % c->slide_ms < 0)
		first -= c->slide_ms;
	bool counted = false;
	for (int64_t start = first; start > t - c->size_ms; start -= c->slide_ms) {
		if (g->watermark != INT64_MIN && start + c->size_ms <= g->watermark)
			continue;
		memcpy(kb->data + wpos, &start, 8);
		bool fresh;
		struct entry *e = find_or_add(g, (unsigned char *)kb->data, kb->len, start, &fresh);
		if (!e || mark_dirty(g, e))
			return sl_err_set(err, SL_ENOMEM, "out of memory");
		if ((rc = update(g, e, mv, t, err)))
			return rc;
		counted = true;
	}
	if (counted)
		g->counted++;
	else {
		g->late++;
		*late = true;
	}
	return 0;
}

int sl_aggregate_group_key(const struct sl_aggregate_conf *c, const struct sl_record *r, struct sl_expr_env *env,
			   struct sl_arena *a, const void **key, size_t *klen, struct sl_err *err)
{
	struct sl_buf b;
	sl_buf_init(&b);
	int rc = 0;
	for (size_t i = 0; i < c->ngroup && !rc; i++) {
		struct sl_value v;
		if ((rc = sl_expr_eval(c->gexpr[i], r, env, a, &v, err)))
			rc = sl_err_prefix(err, "group_by %s: ", c->gname[i]);
		else
			ser_value(&b, sl_expr_type(c->gexpr[i]), &v);
	}
	if (!rc && !sl_buf_ok(&b))
		rc = sl_err_set(err, SL_ENOMEM, "out of memory");
	/* No group_by: one group, one (empty) key; a byte so the key is not null. */
	if (!rc && !(*key = sl_arena_memdup(a, b.len ? b.data : "", b.len ? b.len : 1)))
		rc = sl_err_set(err, SL_ENOMEM, "out of memory");
	*klen = b.len ? b.len : 1;
	sl_buf_free(&b);
	return rc;
}

int sl_aggregate_event_time(const struct sl_aggregate_conf *c, const struct sl_record *r, int64_t arrival_ms,
			    struct sl_expr_env *env, struct sl_arena *a, int64_t *t, struct sl_err *err)
{
	if (!c->windowed)
		return sl_err_set(err, SL_ENOTFOUND, "the aggregate has no window");
	if (c->arrival) {
		*t = arrival_ms;
		return 0;
	}
	struct sl_value tv;
	int rc = sl_expr_eval(c->time, r, env, a, &tv, err);
	if (rc)
		return rc;
	if (tv.null)
		return sl_err_set(err, SL_ETYPE, "window.time \"%s\" is null for this record", sl_expr_text(c->time));
	*t = tv.u.i64;
	return 0;
}

static int ser_acc(struct sl_aggregate *g, const struct entry *e, struct sl_buf *b)
{
	sl_buf_reset(b);
	for (size_t i = 0; i < g->c->nm; i++) {
		const struct acc *ac = &e->acc[i];
		sl_buf_append(b, &ac->n, 8);
		sl_buf_append(b, &ac->i, 8);
		sl_buf_append(b, &ac->d, 8);
		sl_buf_putc(b, ac->has);
		sl_buf_append(b, &ac->vts, 8);
		struct sl_value v = ac->v;
		v.null = !ac->has || ac->v.null;
		ser_value(b, g->c->m[i].in, &v);
		uint64_t sn = ac->sn;
		sl_buf_append(b, &sn, 8);
		for (size_t j = 0; j < ac->scap; j++)
			if (ac->set[j])
				sl_buf_append(b, &ac->set[j], 8);
	}
	return sl_buf_ok(b) ? 0 : SL_ENOMEM;
}

int sl_aggregate_restore(void *ctx, const void *k, size_t klen, const void *v, size_t vlen)
{
	struct sl_aggregate *g = ctx;
	const unsigned char *p = v, *end = p + vlen;
	if (klen == 1 && ((const unsigned char *)k)[0] == 0) {
		/* meta: watermark, max event time, late, counted, then the newest event time of each partition, then
		 * (sources tracked) a byte per partition, 1 when idle */
		if (g->idle && vlen == 32 + 9 * (size_t)g->nparts) {
			for (int i = 0; i < g->nparts; i++)
				g->idle[i] = p[32 + 8 * (size_t)g->nparts + (size_t)i] != 0;
			vlen -= (size_t)g->nparts;
		}
		if (vlen < 32 || (vlen - 32) % 8)
			return SL_EINVAL;
		memcpy(&g->watermark, p, 8);
		memcpy(&g->max_event, p + 8, 8);
		memcpy(&g->late, p + 16, 8);
		memcpy(&g->counted, p + 24, 8);
		for (size_t i = 0; i < (vlen - 32) / 8 && i < (size_t)g->nparts; i++)
			memcpy(&g->pmax[i], p + 32 + 8 * i, 8);
		return 0;
	}
	if (klen < 9 || ((const unsigned char *)k)[0] != 1)
		return SL_EINVAL;
	int64_t ws;
	memcpy(&ws, (const unsigned char *)k + 1, 8);
	bool fresh;
	struct entry *e = find_or_add(g, k, klen, ws, &fresh);
	if (!e)
		return SL_ENOMEM;
	for (size_t i = 0; i < g->c->nm; i++) {
		struct acc *ac = &e->acc[i];
		if (end - p < 33)
			return SL_EINVAL;
		memcpy(&ac->n, p, 8);
		memcpy(&ac->i, p + 8, 8);
		memcpy(&ac->d, p + 16, 8);
		bool has = p[24];
		memcpy(&ac->vts, p + 25, 8);
		p += 33;
		struct sl_value val;
		if (deser_value(&p, end, g->c->m[i].in, &val))
			return SL_EINVAL;
		if (!val.null) {
			if (set_value(ac, g->c->m[i].in, &val))
				return SL_ENOMEM;
		}
		ac->has = has;
		uint64_t sn;
		if (end - p < 8)
			return SL_EINVAL;
		memcpy(&sn, p, 8);
		p += 8;
		if ((uint64_t)(end - p) / 8 < sn)
			return SL_EINVAL;
		for (uint64_t j = 0; j < sn; j++) {
			uint64_t h;
			memcpy(&h, p, 8);
			p += 8;
			if (set_insert(ac, h))
				return SL_ENOMEM;
		}
	}
	return p == end ? 0 : SL_EINVAL;
}

/* The result row of an entry, in a (text copied: the entry may go before the row is written). */
static int entry_row(struct sl_aggregate *g, const struct entry *e, struct sl_arena *a, struct sl_record *row)
{
	const struct sl_aggregate_conf *c = g->c;
	struct sl_err err;
	if (sl_record_init(row, g->os, a, &err))
		return SL_ENOMEM;
	const unsigned char *p = e->key + 9, *end = e->key + e->klen;
	size_t col = 0;
	for (size_t i = 0; i < c->ngroup; i++, col++) {
		enum sl_type t = sl_expr_type(c->gexpr[i]);
		if (deser_value(&p, end, t, &row->v[col]))
			return SL_EINVAL;
		if (t == SL_T_TEXT && !row->v[col].null) {
			char *s = row->v[col].u.s.n ? sl_arena_memdup(a, row->v[col].u.s.p, row->v[col].u.s.n) : (char *)"";
			if (!s)
				return SL_ENOMEM;
			row->v[col].u.s.p = s;
		}
	}
	if (c->windowed) {
		row->v[col++] = (struct sl_value){.u.i64 = e->wstart};
		row->v[col++] = (struct sl_value){.u.i64 = e->wstart + c->size_ms};
	}
	for (size_t i = 0; i < c->nm; i++, col++) {
		const struct measure *m = &c->m[i];
		const struct acc *ac = &e->acc[i];
		struct sl_value *v = &row->v[col];
		*v = (struct sl_value){0};
		switch (m->fn) {
		case M_COUNT: v->u.i64 = ac->n; break;
		case M_COUNT_DISTINCT: v->u.i64 = (int64_t)ac->sn; break;
		case M_SUM:
			v->null = !ac->has;
			if (m->out == SL_T_DOUBLE)
				v->u.d = ac->d;
			else
				v->u.i64 = ac->i;
			break;
		case M_AVG:
			v->null = ac->n == 0;
			v->u.d = ac->n ? ac->d / (double)ac->n : 0;
			break;
		default:
			if (!ac->has || ac->v.null) {
				v->null = true;
				break;
			}
			*v = ac->v;
			if (m->in == SL_T_TEXT) {
				char *s = ac->v.u.s.n ? sl_arena_memdup(a, ac->v.u.s.p, ac->v.u.s.n) : (char *)"";
				if (!s)
					return SL_ENOMEM;
				v->u.s.p = s;
			}
		}
	}
	return 0;
}

struct out {
	struct sl_record *rows;
	size_t nrows, rcap;
	struct sl_state_put *puts;
	size_t nputs, pcap;
};

static int push_row(struct sl_aggregate *g, struct out *o, const struct entry *e, struct sl_arena *a)
{
	if (o->nrows == o->rcap) {
		size_t cap = o->rcap ? o->rcap * 2 : 64;
		struct sl_record *r = sl_arena_alloc(a, cap * sizeof *r);
		if (!r)
			return SL_ENOMEM;
		if (o->nrows)
			memcpy(r, o->rows, o->nrows * sizeof *r);
		o->rows = r;
		o->rcap = cap;
	}
	return entry_row(g, e, a, &o->rows[o->nrows++]);
}

static int push_put(struct out *o, struct sl_arena *a, const void *k, size_t kl, const void *v, size_t vl)
{
	if (o->nputs == o->pcap) {
		size_t cap = o->pcap ? o->pcap * 2 : 64;
		struct sl_state_put *p = sl_arena_alloc(a, cap * sizeof *p);
		if (!p)
			return SL_ENOMEM;
		if (o->nputs)
			memcpy(p, o->puts, o->nputs * sizeof *p);
		o->puts = p;
		o->pcap = cap;
	}
	void *kc = sl_arena_memdup(a, k, kl), *vc = v ? sl_arena_memdup(a, v, vl ? vl : 1) : NULL;
	if (!kc || (v && !vc))
		return SL_ENOMEM;
	o->puts[o->nputs++] = (struct sl_state_put){kc, vc, kl, vl};
	return 0;
}

/* The watermark of a flush: while records are read, the slowest partition's newest event time minus lateness (a
 * partition not read from yet holds it); when the processor has caught up (now_ms given), the newest of all, and for
 * arrival time the clock too. */
static int64_t watermark_candidate(const struct sl_aggregate *g, int64_t now_ms)
{
	const struct sl_aggregate_conf *c = g->c;
	int64_t newest = INT64_MIN;
	if (g->idle) {
		/* Sources tracked: the slowest source partition that is not idle (one that has not reported holds it at
		 * INT64_MIN); once every one is idle, the newest of all, and for arrival time the clock too. */
		int64_t slow = INT64_MAX;
		bool active = false;
		for (int i = 0; i < g->nparts; i++) {
			if (!g->idle[i]) {
				active = true;
				if (g->pmax[i] < slow)
					slow = g->pmax[i];
			}
			if (g->pmax[i] > newest)
				newest = g->pmax[i];
		}
		int64_t base = active ? slow : newest;
		int64_t cand = base == INT64_MIN ? INT64_MIN : base - c->lateness_ms;
		if (c->arrival && !active && now_ms != INT64_MIN && now_ms - c->lateness_ms > cand)
			cand = now_ms - c->lateness_ms;
		return cand;
	}
	if (now_ms != INT64_MIN)
		newest = g->max_event;
	else {
		newest = INT64_MAX;
		for (int i = 0; i < g->nparts; i++)
			if (g->pmax[i] < newest)
				newest = g->pmax[i];
	}
	int64_t cand = newest == INT64_MIN ? INT64_MIN : newest - c->lateness_ms;
	if (c->arrival && now_ms != INT64_MIN && now_ms - c->lateness_ms > cand)
		cand = now_ms - c->lateness_ms;
	return cand;
}

int sl_aggregate_track_sources(struct sl_aggregate *g)
{
	if (!g->idle && !(g->idle = calloc((size_t)g->nparts, sizeof *g->idle)))
		return SL_ENOMEM;
	return 0;
}

void sl_aggregate_source_progress(struct sl_aggregate *g, int32_t partition, int64_t newest_ms, bool idle)
{
	if (!g->idle || partition < 0 || partition >= g->nparts)
		return;
	if (newest_ms > g->pmax[partition])
		g->pmax[partition] = newest_ms;
	g->idle[partition] = idle;
	g->meta_dirty = true;
}

bool sl_aggregate_due(const struct sl_aggregate *g, int64_t now_ms)
{
	if (!g->c->windowed || g->n == 0)
		return false;
	int64_t wm = watermark_candidate(g, now_ms);
	if (wm == INT64_MIN || wm <= g->watermark)
		return false;
	for (size_t i = 0; i < g->nb; i++)
		for (const struct entry *e = g->b[i]; e; e = e->next)
			if (e->wstart + g->c->size_ms <= wm)
				return true;
	return false;
}

int sl_aggregate_flush(struct sl_aggregate *g, int64_t now_ms, struct sl_arena *a, struct sl_record **rows, size_t *nrows,
		 struct sl_state_put **puts, size_t *nputs, struct sl_err *err)
{
	const struct sl_aggregate_conf *c = g->c;
	struct out o = {0};
	int rc = 0;
	/* The watermark moves at the end of a batch, as Spark's does: records of this batch were judged by the old
	 * one. It never goes back. */
	int64_t wm = g->watermark;
	if (c->windowed) {
		/* Arrival time is the log's timestamp of the record: the watermark follows the newest one read (a
		 * backlog read late is not late), and the clock too when the processor is idle (clock_ms given). */
		int64_t cand = watermark_candidate(g, now_ms);
		if (cand > wm)
			wm = cand;
	}
	bool moved = wm != g->watermark;
	g->watermark = wm;
	/* Update mode: every entry this batch changed, as whole values. */
	for (size_t i = 0; i < g->ndirty && rc == 0; i++) {
		struct entry *e = g->dirty[i];
		e->dirty = false;
		if (c->final && !(c->windowed && e->wstart + c->size_ms <= wm)) {
			/* final: the row waits for the watermark; the state is stored now */
		} else if (!c->final && (rc = push_row(g, &o, e, a)))
			break;
		if ((rc = ser_acc(g, e, &g->vb)) || (rc = push_put(&o, a, e->key, e->klen, g->vb.data, g->vb.len)))
			break;
	}
	g->ndirty = 0;
	/* Windows the watermark closed: final rows, then their state goes. */
	if (rc == 0 && c->windowed && moved && wm != INT64_MIN)
		for (size_t i = 0; i < g->nb && rc == 0; i++)
			for (struct entry *e = g->b[i], *nx; e && rc == 0; e = nx) {
				nx = e->next;
				if (e->wstart + c->size_ms > wm)
					continue;
				if (c->final && (rc = push_row(g, &o, e, a)))
					break;
				if ((rc = push_put(&o, a, e->key, e->klen, NULL, 0)))
					break;
				remove_entry(g, e);
			}
	if (rc == 0 && (g->meta_dirty || moved)) {
		unsigned char k0 = 0;
		struct sl_buf *b = &g->vb;
		sl_buf_reset(b);
		sl_buf_append(b, &g->watermark, 8);
		sl_buf_append(b, &g->max_event, 8);
		sl_buf_append(b, &g->late, 8);
		sl_buf_append(b, &g->counted, 8);
		sl_buf_append(b, g->pmax, (size_t)g->nparts * 8);
		for (int i = 0; g->idle && i < g->nparts; i++)
			sl_buf_putc(b, g->idle[i] ? 1 : 0);
		rc = sl_buf_ok(b) ? push_put(&o, a, &k0, 1, b->data, b->len) : SL_ENOMEM;
		g->meta_dirty = false;
	}
	if (rc)
		return sl_err_set(err, rc, "aggregate: out of memory");
	/* A put of a key, then its delete in the same batch: SQLite applies them in order, so the delete wins. */
	*rows = o.rows;
	*nrows = o.nrows;
	*puts = o.puts;
	*nputs = o.nputs;
	return 0;
}

void sl_aggregate_stats(const struct sl_aggregate *g, struct sl_aggregate_stats *st)
{
	st->watermark_ms = g->watermark;
	st->open_windows = (int64_t)g->n;
	st->late = g->late;
	st->counted = g->counted;
}
