/* The expression language (expr.h): a recursive-descent parser that type-checks as it builds a flat array of typed
 * nodes, and an evaluator that walks it. Everything that can be decided once is decided at load: operand types,
 * numeric promotion, text literals read as timestamps, date units, regular expressions. The evaluator only switches on
 * the node's operation; strings it builds come from the caller's arena, so a record costs no malloc. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "core/clock.h"
#include "expr/expr.h"

#define T_NULL SL_T__COUNT /* the type of the literal null: fits any other */
#define MAX_ARGS 16

enum op {
	OP_CONST, OP_COL, OP_NEG, OP_NOT, OP_AND, OP_OR,
	OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_MOD, OP_CONCAT2,
	OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_ISNULL, OP_NOTNULL, OP_IN, OP_NOTIN,
	OP_CALL,
};

enum fn {
	F_LOWER, F_UPPER, F_TRIM, F_LENGTH, F_SUBSTRING, F_CONCAT, F_SPLIT, F_REGEX_MATCH, F_REGEX_EXTRACT,
	F_DATE_TRUNC, F_DATE_PART, F_DATE_DIFF, F_NOW, F_COALESCE, F_IF, F_ABS, F_HASH, F_SHA256,
	F_TEXT, F_INT, F_BIGINT, F_DOUBLE, F_BOOLEAN, F_TIMESTAMP, F_DATE,
};

struct node {
	enum op op;
	int t;             /* enum sl_type, or T_NULL */
	int fn;            /* OP_CALL */
	int col;           /* OP_COL */
	int unit;          /* date functions: the unit literal, decoded */
	int re;            /* regex functions: index into e->re */
	int64_t group;     /* regex_extract: the group */
	int a, b;          /* operands (node indexes) */
	int arg0, nargs;   /* OP_CALL, OP_IN: e->args[arg0 .. arg0+nargs) */
	struct sl_value k; /* OP_CONST */
};

struct sl_expr {
	char *src;
	struct node *n;
	int nn, cap, root;
	int *args;
	int nargs, args_cap;
	regex_t *re;
	int nre;
	char *strs; /* constant text, one block */
	size_t strs_len, strs_cap;
};

/* ---- parsing ---- */

enum tok { T_EOF, T_IDENT, T_QIDENT, T_INT, T_DBL, T_STR, T_OP, T_LP, T_RP, T_COMMA };

struct parser {
	struct sl_expr *e;
	const struct sl_schema *s;
	const char *src, *p, *where;
	enum tok tk;
	const char *ts; /* token start */
	size_t tl;
	int64_t iv;
	double dv;
	char *sv; /* T_STR: decoded text (malloc'd, owned by the parser) */
	size_t svl;
	struct sl_err *err;
	int depth;
};

static int perr(struct parser *ps, const char *at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int perr(struct parser *ps, const char *at, const char *fmt, ...)
{
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	/* A long expression is cut in the message so the reason still fits. */
	int len = (int)strlen(ps->src);
	return sl_err_set(ps->err, SL_ECONFIG, "%s: expression \"%.*s%s\", at column %d: %s", ps->where,
			  len > 100 ? 100 : len, ps->src, len > 100 ? "..." : "", (int)((at ? at : ps->ts) - ps->src) + 1,
			  msg);
}

static const char *tname(int t)
{
	return t == T_NULL ? "null" : sl_type_name((enum sl_type)t);
}

static int next(struct parser *ps)
{
	const char *p = ps->p;
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	ps->ts = p;
	if (!*p) {
		ps->tk = T_EOF;
		ps->tl = 0;
		ps->p = p;
		return 0;
	}
	if (isalpha((unsigned char)*p) || *p == '_') {
		while (isalnum((unsigned char)*p) || *p == '_' || *p == '.')
			p++;
		ps->tk = T_IDENT;
	} else if (*p == '`') {
		const char *q = strchr(p + 1, '`');
		if (!q)
			return perr(ps, p, "unterminated `name`");
		ps->tk = T_QIDENT;
		p = q + 1;
	} else if (isdigit((unsigned char)*p)) {
		const char *q = p;
		while (isdigit((unsigned char)*q))
			q++;
		bool dbl = *q == '.' || *q == 'e' || *q == 'E';
		char *end;
		errno = 0;
		if (dbl) {
			ps->dv = strtod(p, &end);
			ps->tk = T_DBL;
		} else {
			ps->iv = strtoll(p, &end, 10);
			ps->tk = T_INT;
		}
		if (errno == ERANGE)
			return perr(ps, p, "number out of range");
		p = end;
	} else if (*p == '\'' || *p == '"') {
		char qc = *p++;
		free(ps->sv);
		size_t cap = strlen(p) + 1, l = 0;
		if (!(ps->sv = malloc(cap)))
			return sl_err_set(ps->err, SL_ENOMEM, "out of memory");
		for (;;) {
			if (!*p)
				return perr(ps, ps->ts, "unterminated string");
			if (*p == qc) {
				if (p[1] == qc) { /* 'it''s' */
					ps->sv[l++] = qc;
					p += 2;
					continue;
				}
				p++;
				break;
			}
			ps->sv[l++] = *p++;
		}
		ps->sv[l] = 0;
		ps->svl = l;
		ps->tk = T_STR;
	} else if (*p == '(') {
		ps->tk = T_LP;
		p++;
	} else if (*p == ')') {
		ps->tk = T_RP;
		p++;
	} else if (*p == ',') {
		ps->tk = T_COMMA;
		p++;
	} else {
		static const char *ops[] = {"==", "!=", "<>", "<=", ">=", "||", "=", "<", ">", "+", "-", "*", "/", "%"};
		size_t i;
		for (i = 0; i < sizeof ops / sizeof *ops; i++)
			if (!strncmp(p, ops[i], strlen(ops[i])))
				break;
		if (i == sizeof ops / sizeof *ops)
			return perr(ps, p, "unexpected character '%c'", *p);
		ps->tk = T_OP;
		p += strlen(ops[i]);
	}
	ps->tl = (size_t)(p - ps->ts);
	ps->p = p;
	return 0;
}

static bool is_op(const struct parser *ps, const char *op)
{
	return ps->tk == T_OP && ps->tl == strlen(op) && !strncmp(ps->ts, op, ps->tl);
}

static bool is_kw(const struct parser *ps, const char *kw)
{
	return ps->tk == T_IDENT && ps->tl == strlen(kw) && !strncasecmp(ps->ts, kw, ps->tl);
}

static int add_node(struct parser *ps, struct node nd)
{
	struct sl_expr *e = ps->e;
	if (e->nn >= 4096) /* evaluation recurses along the tree: its size bounds the stack */
		return perr(ps, NULL, "expression too long (more than 4096 nodes)");
	if (e->nn == e->cap) {
		int cap = e->cap ? e->cap * 2 : 16;
		struct node *n = realloc(e->n, (size_t)cap * sizeof *n);
		if (!n)
			return sl_err_set(ps->err, SL_ENOMEM, "out of memory");
		e->n = n;
		e->cap = cap;
	}
	e->n[e->nn] = nd;
	return e->nn++;
}

static int add_args(struct parser *ps, const int *a, int n)
{
	struct sl_expr *e = ps->e;
	if (n == 0)
		return e->nargs;
	if (e->nargs + n > e->args_cap) {
		int cap = (e->args_cap + n) * 2;
		int *na = realloc(e->args, (size_t)cap * sizeof *na);
		if (!na)
			return sl_err_set(ps->err, SL_ENOMEM, "out of memory");
		e->args = na;
		e->args_cap = cap;
	}
	memcpy(e->args + e->nargs, a, (size_t)n * sizeof *a);
	e->nargs += n;
	return e->nargs - n;
}

/* Constant text is kept as offsets until the parse ends (the block may move), then fixed up in finish(). */
static int add_str(struct parser *ps, const char *s, size_t n, struct sl_value *v)
{
	struct sl_expr *e = ps->e;
	if (e->strs_len + n + 1 > e->strs_cap) {
		size_t cap = (e->strs_len + n + 1) * 2;
		char *ns = realloc(e->strs, cap);
		if (!ns)
			return sl_err_set(ps->err, SL_ENOMEM, "out of memory");
		e->strs = ns;
		e->strs_cap = cap;
	}
	memcpy(e->strs + e->strs_len, s, n);
	e->strs[e->strs_len + n] = 0;
	v->u.s.p = (const char *)(uintptr_t)e->strs_len;
	v->u.s.n = n;
	e->strs_len += n + 1;
	return 0;
}

static bool numeric(int t)
{
	return t == SL_T_INT || t == SL_T_BIGINT || t == SL_T_DOUBLE;
}

/* The type two operands share (numeric promotion, null fits all), or -1. */
static int common(int a, int b)
{
	if (a == T_NULL)
		return b;
	if (b == T_NULL || a == b)
		return a;
	if (numeric(a) && numeric(b))
		return a == SL_T_DOUBLE || b == SL_T_DOUBLE ? SL_T_DOUBLE : SL_T_BIGINT;
	return -1;
}

/* A text constant where a timestamp or date is expected is read as one, now, so the comparison is typed. */
static int coerce_const(struct parser *ps, int ni, int want, const char *at)
{
	struct node *n = &ps->e->n[ni];
	if (n->op != OP_CONST || n->t != SL_T_TEXT || (want != SL_T_TIMESTAMP && want != SL_T_DATE))
		return 0;
	const char *s = ps->e->strs + (uintptr_t)n->k.u.s.p;
	size_t l = n->k.u.s.n;
	if (want == SL_T_TIMESTAMP) {
		int64_t ms;
		if (sl_timestamp_parse(s, l, &ms))
			return perr(ps, at, "'%s' is not a timestamp", s);
		n->k.u.i64 = ms;
	} else {
		int64_t ms;
		int32_t d;
		if (sl_date_parse(s, l, &d) == 0)
			n->k.u.days = d;
		else if (sl_timestamp_parse(s, l, &ms) == 0)
			n->k.u.days = sl_days_from_ms(ms);
		else
			return perr(ps, at, "'%s' is not a date", s);
	}
	n->t = want;
	return 0;
}

static int parse_or(struct parser *ps);

static const struct {
	const char *name;
	enum fn fn;
	int min, max;
} fns[] = {
	{"lower", F_LOWER, 1, 1}, {"upper", F_UPPER, 1, 1}, {"trim", F_TRIM, 1, 1}, {"length", F_LENGTH, 1, 1},
	{"substring", F_SUBSTRING, 2, 3}, {"substr", F_SUBSTRING, 2, 3}, {"concat", F_CONCAT, 1, MAX_ARGS},
	{"split", F_SPLIT, 3, 3}, {"regex_match", F_REGEX_MATCH, 2, 2}, {"regex_extract", F_REGEX_EXTRACT, 2, 3},
	{"date_trunc", F_DATE_TRUNC, 2, 2}, {"date_part", F_DATE_PART, 2, 2}, {"date_diff", F_DATE_DIFF, 3, 3},
	{"now", F_NOW, 0, 0}, {"coalesce", F_COALESCE, 1, MAX_ARGS}, {"if", F_IF, 3, 3}, {"abs", F_ABS, 1, 1},
	{"hash", F_HASH, 1, MAX_ARGS}, {"sha256", F_SHA256, 1, 1}, {"text", F_TEXT, 1, 1}, {"int", F_INT, 1, 1},
	{"bigint", F_BIGINT, 1, 1}, {"double", F_DOUBLE, 1, 1}, {"boolean", F_BOOLEAN, 1, 1},
	{"timestamp", F_TIMESTAMP, 1, 1}, {"date", F_DATE, 1, 1},
};

enum unit { U_MS, U_SECOND, U_MINUTE, U_HOUR, U_DAY, U_MONTH, U_YEAR, U_DOW, U_DOY, U_EPOCH };
static const char *unit_names[] = {"ms", "second", "minute", "hour", "day", "month", "year", "dow", "doy", "epoch"};

static int want_type(struct parser *ps, int ai, const char *at, const char *fname, int pos, bool ok, const char *what)
{
	if (ok)
		return 0;
	return perr(ps, at, "%s(): argument %d is %s, expected %s", fname, pos, tname(ps->e->n[ai].t), what);
}

static int literal_text(struct parser *ps, int ai, const char *at, const char *fname, int pos, const char **s)
{
	struct node *n = &ps->e->n[ai];
	if (n->op != OP_CONST || n->t != SL_T_TEXT)
		return perr(ps, at, "%s(): argument %d must be a text literal", fname, pos);
	*s = ps->e->strs + (uintptr_t)n->k.u.s.p;
	return 0;
}

static int check_call(struct parser *ps, struct node *nd, const char *fname, const int *a, int na, const char **at)
{
	struct sl_expr *e = ps->e;
	int t0 = na > 0 ? e->n[a[0]].t : T_NULL;
#define ARGT(i) (e->n[a[i]].t)
#define TEXTY(i) (ARGT(i) == SL_T_TEXT || ARGT(i) == T_NULL)
#define INTY(i) (ARGT(i) == SL_T_INT || ARGT(i) == SL_T_BIGINT || ARGT(i) == T_NULL)
	int rc;
	switch ((enum fn)nd->fn) {
	case F_LOWER: case F_UPPER: case F_TRIM: case F_SHA256:
		if ((rc = want_type(ps, a[0], at[0], fname, 1, TEXTY(0), "text")))
			return rc;
		nd->t = SL_T_TEXT;
		break;
	case F_LENGTH:
		if ((rc = want_type(ps, a[0], at[0], fname, 1, TEXTY(0), "text")))
			return rc;
		nd->t = SL_T_BIGINT;
		break;
	case F_SUBSTRING:
		if ((rc = want_type(ps, a[0], at[0], fname, 1, TEXTY(0), "text")) ||
		    (rc = want_type(ps, a[1], at[1], fname, 2, INTY(1), "an integer")) ||
		    (na > 2 && (rc = want_type(ps, a[2], at[2], fname, 3, INTY(2), "an integer"))))
			return rc;
		nd->t = SL_T_TEXT;
		break;
	case F_CONCAT:
		nd->t = SL_T_TEXT;
		break;
	case F_SPLIT:
		if ((rc = want_type(ps, a[0], at[0], fname, 1, TEXTY(0), "text")) ||
		    (rc = want_type(ps, a[1], at[1], fname, 2, TEXTY(1), "text")) ||
		    (rc = want_type(ps, a[2], at[2], fname, 3, INTY(2), "an integer")))
			return rc;
		if (e->n[a[1]].op == OP_CONST && e->n[a[1]].t == SL_T_TEXT && e->n[a[1]].k.u.s.n == 0)
			return perr(ps, at[1], "split(): the separator is empty");
		nd->t = SL_T_TEXT;
		break;
	case F_REGEX_MATCH: case F_REGEX_EXTRACT: {
		const char *pat = NULL;
		if ((rc = want_type(ps, a[0], at[0], fname, 1, TEXTY(0), "text")) ||
		    (rc = literal_text(ps, a[1], at[1], fname, 2, &pat)))
			return rc;
		regex_t re;
		int rrc = regcomp(&re, pat, REG_EXTENDED | (nd->fn == F_REGEX_MATCH ? REG_NOSUB : 0));
		if (rrc) {
			char m[200];
			regerror(rrc, &re, m, sizeof m);
			return perr(ps, at[1], "%s(): bad regular expression '%s': %s", fname, pat, m);
		}
		regex_t *nr = realloc(e->re, (size_t)(e->nre + 1) * sizeof *nr);
		if (!nr) {
			regfree(&re);
			return sl_err_set(ps->err, SL_ENOMEM, "out of memory");
		}
		e->re = nr;
		e->re[e->nre] = re;
		nd->re = e->nre++;
		nd->group = 0;
		if (na > 2) {
			const struct node *g = &e->n[a[2]];
			if (g->op != OP_CONST || g->t != SL_T_BIGINT)
				return perr(ps, at[2], "%s(): argument 3 must be an integer literal", fname);
			if (g->k.u.i64 < 0 || (size_t)g->k.u.i64 > re.re_nsub)
				return perr(ps, at[2], "%s(): the pattern has %zu groups, not %" PRId64, fname, re.re_nsub,
					    g->k.u.i64);
			nd->group = g->k.u.i64;
		}
		nd->t = nd->fn == F_REGEX_MATCH ? SL_T_BOOLEAN : SL_T_TEXT;
		break;
	}
	case F_DATE_TRUNC: case F_DATE_PART: case F_DATE_DIFF: {
		const char *u = NULL;
		if ((rc = literal_text(ps, a[0], at[0], fname, 1, &u)))
			return rc;
		int lo = nd->fn == F_DATE_TRUNC ? U_SECOND : nd->fn == F_DATE_PART ? U_SECOND : U_MS;
		int hi = nd->fn == F_DATE_TRUNC ? U_YEAR : nd->fn == F_DATE_PART ? U_EPOCH : U_DAY;
		nd->unit = -1;
		for (int i = lo; i <= hi; i++)
			if (!strcasecmp(u, unit_names[i]))
				nd->unit = i;
		if (nd->unit < 0) {
			char list[200] = "";
			for (int i = lo; i <= hi; i++)
				snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i > lo ? ", " : "",
					 unit_names[i]);
			return perr(ps, at[0], "%s(): unit '%s' is not one of %s", fname, u, list);
		}
		for (int i = 1; i < na; i++)
			if ((rc = want_type(ps, a[i], at[i], fname, i + 1,
					    ARGT(i) == SL_T_TIMESTAMP || ARGT(i) == T_NULL ||
						    (nd->fn != F_DATE_TRUNC && ARGT(i) == SL_T_DATE),
					    nd->fn == F_DATE_TRUNC ? "a timestamp" : "a timestamp or a date")))
				return rc;
		nd->t = nd->fn == F_DATE_TRUNC ? SL_T_TIMESTAMP : SL_T_BIGINT;
		break;
	}
	case F_NOW:
		nd->t = SL_T_TIMESTAMP;
		break;
	case F_COALESCE: case F_IF: {
		int first = nd->fn == F_IF ? 1 : 0;
		if (nd->fn == F_IF &&
		    (rc = want_type(ps, a[0], at[0], fname, 1, ARGT(0) == SL_T_BOOLEAN || ARGT(0) == T_NULL, "boolean")))
			return rc;
		int t = T_NULL;
		for (int i = first; i < na; i++) {
			int c = common(t, ARGT(i));
			if (c < 0)
				return perr(ps, at[i], "%s(): argument %d is %s, the others %s", fname, i + 1,
					    tname(ARGT(i)), tname(t));
			t = c;
		}
		for (int i = first; i < na; i++)
			if ((rc = coerce_const(ps, a[i], t, at[i])))
				return rc;
		nd->t = t;
		break;
	}
	case F_ABS:
		if ((rc = want_type(ps, a[0], at[0], fname, 1, numeric(t0) || t0 == T_NULL, "a number")))
			return rc;
		nd->t = t0 == SL_T_DOUBLE ? SL_T_DOUBLE : SL_T_BIGINT;
		break;
	case F_HASH:
		nd->t = SL_T_BIGINT;
		break;
	case F_TEXT: nd->t = SL_T_TEXT; break;
	case F_INT: nd->t = SL_T_INT; break;
	case F_BIGINT: nd->t = SL_T_BIGINT; break;
	case F_DOUBLE: nd->t = SL_T_DOUBLE; break;
	case F_BOOLEAN: nd->t = SL_T_BOOLEAN; break;
	case F_TIMESTAMP: nd->t = SL_T_TIMESTAMP; break;
	case F_DATE: nd->t = SL_T_DATE; break;
	}
#undef ARGT
#undef TEXTY
#undef INTY
	return 0;
}

static int parse_primary(struct parser *ps)
{
	if (++ps->depth > 200)
		return perr(ps, NULL, "expression nested too deeply");
	int rc, ni;
	struct node nd = {0};
	const char *at = ps->ts;
	switch (ps->tk) {
	case T_INT:
		nd = (struct node){.op = OP_CONST, .t = SL_T_BIGINT, .k.u.i64 = ps->iv};
		break;
	case T_DBL:
		nd = (struct node){.op = OP_CONST, .t = SL_T_DOUBLE, .k.u.d = ps->dv};
		break;
	case T_STR:
		nd = (struct node){.op = OP_CONST, .t = SL_T_TEXT};
		if ((rc = add_str(ps, ps->sv, ps->svl, &nd.k)))
			return rc;
		break;
	case T_LP:
		if ((rc = next(ps)) || (ni = parse_or(ps)) < 0)
			return rc ? rc : ni;
		if (ps->tk != T_RP)
			return perr(ps, NULL, "expected ')'");
		if ((rc = next(ps)))
			return rc;
		ps->depth--;
		return ni;
	case T_QIDENT:
	case T_IDENT: {
		const char *name = ps->tk == T_QIDENT ? ps->ts + 1 : ps->ts;
		size_t nl = ps->tk == T_QIDENT ? ps->tl - 2 : ps->tl;
		bool quoted = ps->tk == T_QIDENT;
		if (!quoted && (is_kw(ps, "true") || is_kw(ps, "false"))) {
			nd = (struct node){.op = OP_CONST, .t = SL_T_BOOLEAN, .k.u.b = is_kw(ps, "true")};
			break;
		}
		if (!quoted && is_kw(ps, "null")) {
			nd = (struct node){.op = OP_CONST, .t = T_NULL, .k.null = true};
			break;
		}
		if ((rc = next(ps)))
			return rc;
		if (!quoted && ps->tk == T_LP) {
			size_t f;
			for (f = 0; f < sizeof fns / sizeof *fns; f++)
				if (strlen(fns[f].name) == nl && !strncasecmp(fns[f].name, name, nl))
					break;
			if (f == sizeof fns / sizeof *fns)
				return perr(ps, at, "unknown function '%.*s'", (int)nl, name);
			int a[MAX_ARGS];
			const char *aat[MAX_ARGS];
			int na = 0;
			if ((rc = next(ps)))
				return rc;
			if (ps->tk != T_RP)
				for (;;) {
					if (na == MAX_ARGS)
						return perr(ps, NULL, "%s(): more than %d arguments", fns[f].name, MAX_ARGS);
					aat[na] = ps->ts;
					if ((a[na] = parse_or(ps)) < 0)
						return a[na];
					na++;
					if (ps->tk == T_RP)
						break;
					if (ps->tk != T_COMMA)
						return perr(ps, NULL, "expected ',' or ')' in the arguments of %s()",
							    fns[f].name);
					if ((rc = next(ps)))
						return rc;
				}
			if (na < fns[f].min || na > fns[f].max)
				return perr(ps, at, "%s() takes %d%s%d arguments, not %d", fns[f].name, fns[f].min,
					    fns[f].max == MAX_ARGS ? " or more (up to " : " to ", fns[f].max, na);
			if ((rc = next(ps)))
				return rc;
			nd = (struct node){.op = OP_CALL, .fn = fns[f].fn};
			if ((rc = check_call(ps, &nd, fns[f].name, a, na, aat)))
				return rc;
			if ((nd.arg0 = add_args(ps, a, na)) < 0)
				return nd.arg0;
			nd.nargs = na;
			ps->depth--;
			return add_node(ps, nd);
		}
		int col = sl_schema_find(ps->s, name, nl);
		if (col < 0) {
			char list[300] = "";
			for (size_t i = 0; i < ps->s->n && strlen(list) < sizeof list - 40; i++)
				snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "",
					 ps->s->fields[i].name);
			return perr(ps, at, "no column '%.*s' (columns: %s)", (int)nl, name, list);
		}
		ps->depth--;
		return add_node(ps, (struct node){.op = OP_COL, .t = (int)ps->s->fields[col].type, .col = col});
	}
	case T_EOF:
		return perr(ps, NULL, "unexpected end of expression");
	default:
		return perr(ps, NULL, "unexpected '%.*s'", (int)ps->tl, ps->ts);
	}
	if ((rc = next(ps)))
		return rc;
	ps->depth--;
	return add_node(ps, nd);
}

static int parse_unary(struct parser *ps)
{
	if (is_op(ps, "-")) {
		if (++ps->depth > 200)
			return perr(ps, NULL, "expression nested too deeply");
		const char *at = ps->ts;
		int rc, a;
		if ((rc = next(ps)) || (a = parse_unary(ps)) < 0)
			return rc ? rc : a;
		ps->depth--;
		int t = ps->e->n[a].t;
		if (!numeric(t) && t != T_NULL)
			return perr(ps, at, "'-' needs a number, not %s", tname(t));
		struct node *n = &ps->e->n[a];
		if (n->op == OP_CONST && t == SL_T_BIGINT && n->k.u.i64 != INT64_MIN) {
			n->k.u.i64 = -n->k.u.i64;
			return a;
		}
		if (n->op == OP_CONST && t == SL_T_DOUBLE) {
			n->k.u.d = -n->k.u.d;
			return a;
		}
		return add_node(ps, (struct node){.op = OP_NEG, .t = t == SL_T_INT ? SL_T_BIGINT : t, .a = a});
	}
	return parse_primary(ps);
}

static int binary(struct parser *ps, enum op op, int a, int b, const char *at)
{
	int ta = ps->e->n[a].t, tb = ps->e->n[b].t, t;
	switch (op) {
	case OP_CONCAT2:
		t = SL_T_TEXT;
		break;
	case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV: case OP_MOD:
		if ((!numeric(ta) && ta != T_NULL) || (!numeric(tb) && tb != T_NULL))
			return perr(ps, at, "arithmetic on %s and %s (use date_diff for times, || or concat for text)",
				    tname(ta), tname(tb));
		t = common(ta, tb);
		if (t == SL_T_INT || t == T_NULL)
			t = SL_T_BIGINT;
		if (op == OP_MOD && t == SL_T_DOUBLE)
			return perr(ps, at, "'%%' needs integers");
		break;
	default: /* comparisons */
		if (ta == T_NULL || tb == T_NULL)
			return perr(ps, at, "comparison with null is always null: use 'is null' or 'is not null'");
		if (ta == SL_T_TEXT && (tb == SL_T_TIMESTAMP || tb == SL_T_DATE)) {
			int rc = coerce_const(ps, a, tb, at);
			if (rc)
				return rc;
			ta = tb;
		} else if (tb == SL_T_TEXT && (ta == SL_T_TIMESTAMP || ta == SL_T_DATE)) {
			int rc = coerce_const(ps, b, ta, at);
			if (rc)
				return rc;
			tb = ta;
		}
		if (common(ta, tb) < 0)
			return perr(ps, at, "cannot compare %s with %s", tname(ta), tname(tb));
		if ((ta == SL_T_UUID || ta == SL_T_BOOLEAN) && op != OP_EQ && op != OP_NE)
			return perr(ps, at, "%s values can only be compared with = and !=", tname(ta));
		t = SL_T_BOOLEAN;
	}
	return add_node(ps, (struct node){.op = op, .t = t, .a = a, .b = b});
}

struct binop {
	const char *s;
	enum op op;
};

/* One left-associative level of binary operators: operands parsed by sub, joined by any of ops (n of them). */
static int parse_level(struct parser *ps, int (*sub)(struct parser *), const struct binop *ops, size_t n)
{
	int a = sub(ps), rc;
	while (a >= 0) {
		size_t k = 0;
		while (k < n && !is_op(ps, ops[k].s))
			k++;
		if (k == n)
			break;
		const char *at = ps->ts;
		int b;
		if ((rc = next(ps)) || (b = sub(ps)) < 0)
			return rc ? rc : b;
		a = binary(ps, ops[k].op, a, b, at);
	}
	return a;
}

static int parse_mul(struct parser *ps)
{
	static const struct binop ops[] = {{"*", OP_MUL}, {"/", OP_DIV}, {"%", OP_MOD}};
	return parse_level(ps, parse_unary, ops, 3);
}

static int parse_add(struct parser *ps)
{
	static const struct binop ops[] = {{"+", OP_ADD}, {"-", OP_SUB}, {"||", OP_CONCAT2}};
	return parse_level(ps, parse_mul, ops, 3);
}

static int parse_cmp(struct parser *ps)
{
	int a = parse_add(ps), rc;
	if (a < 0)
		return a;
	static const struct { const char *s; enum op op; } cmps[] = {
		{"=", OP_EQ}, {"==", OP_EQ}, {"!=", OP_NE}, {"<>", OP_NE}, {"<", OP_LT}, {"<=", OP_LE}, {">", OP_GT},
		{">=", OP_GE}};
	for (size_t i = 0; i < sizeof cmps / sizeof *cmps; i++)
		if (is_op(ps, cmps[i].s)) {
			const char *at = ps->ts;
			int b;
			if ((rc = next(ps)) || (b = parse_add(ps)) < 0)
				return rc ? rc : b;
			return binary(ps, cmps[i].op, a, b, at);
		}
	if (is_kw(ps, "is")) {
		bool neg = false;
		if ((rc = next(ps)))
			return rc;
		if (is_kw(ps, "not")) {
			neg = true;
			if ((rc = next(ps)))
				return rc;
		}
		if (!is_kw(ps, "null"))
			return perr(ps, NULL, "expected 'null' after 'is%s'", neg ? " not" : "");
		if ((rc = next(ps)))
			return rc;
		return add_node(ps, (struct node){.op = neg ? OP_NOTNULL : OP_ISNULL, .t = SL_T_BOOLEAN, .a = a});
	}
	bool neg = false;
	const char *at = ps->ts;
	if (is_kw(ps, "not")) {
		/* `x not in (...)`: look ahead without consuming a `not` that belongs elsewhere (it cannot here). */
		neg = true;
		if ((rc = next(ps)))
			return rc;
		if (!is_kw(ps, "in"))
			return perr(ps, NULL, "expected 'in' after 'not'");
	}
	if (is_kw(ps, "in")) {
		if ((rc = next(ps)))
			return rc;
		if (ps->tk != T_LP)
			return perr(ps, NULL, "expected '(' after 'in'");
		if ((rc = next(ps)))
			return rc;
		int items[64], n = 0;
		for (;;) {
			if (n == 64)
				return perr(ps, NULL, "more than 64 values after 'in'");
			const char *iat = ps->ts;
			if ((items[n] = parse_add(ps)) < 0)
				return items[n];
			int ta = ps->e->n[a].t;
			if (ta == SL_T_TIMESTAMP || ta == SL_T_DATE)
				if ((rc = coerce_const(ps, items[n], ta, iat)))
					return rc;
			int ti = ps->e->n[items[n]].t;
			if (ti == T_NULL || common(ta, ti) < 0)
				return perr(ps, iat, "'in' compares %s with %s", tname(ta), tname(ti));
			n++;
			if (ps->tk == T_RP)
				break;
			if (ps->tk != T_COMMA)
				return perr(ps, NULL, "expected ',' or ')' after a value of 'in'");
			if ((rc = next(ps)))
				return rc;
		}
		if ((rc = next(ps)))
			return rc;
		int arg0 = add_args(ps, items, n);
		if (arg0 < 0)
			return arg0;
		return add_node(ps, (struct node){.op = neg ? OP_NOTIN : OP_IN, .t = SL_T_BOOLEAN, .a = a, .arg0 = arg0,
						  .nargs = n});
	}
	(void)at;
	return a;
}

static int want_bool(struct parser *ps, int a, const char *at, const char *what)
{
	int t = ps->e->n[a].t;
	if (t != SL_T_BOOLEAN && t != T_NULL)
		return perr(ps, at, "'%s' needs boolean operands, not %s", what, tname(t));
	return 0;
}

static int parse_not(struct parser *ps)
{
	if (is_kw(ps, "not")) {
		const char *at = ps->ts;
		int rc, a;
		if (++ps->depth > 200)
			return perr(ps, NULL, "expression nested too deeply");
		if ((rc = next(ps)) || (a = parse_not(ps)) < 0)
			return rc ? rc : a;
		ps->depth--;
		if ((rc = want_bool(ps, a, at, "not")))
			return rc;
		return add_node(ps, (struct node){.op = OP_NOT, .t = SL_T_BOOLEAN, .a = a});
	}
	return parse_cmp(ps);
}

static int parse_and(struct parser *ps)
{
	const char *at0 = ps->ts;
	int a = parse_not(ps), rc;
	while (a >= 0 && is_kw(ps, "and")) {
		const char *at = ps->ts, *bat;
		int b;
		if ((rc = next(ps)))
			return rc;
		bat = ps->ts;
		if ((b = parse_not(ps)) < 0)
			return b;
		if ((rc = want_bool(ps, a, at0, "and")) || (rc = want_bool(ps, b, bat, "and")))
			return rc;
		a = add_node(ps, (struct node){.op = OP_AND, .t = SL_T_BOOLEAN, .a = a, .b = b});
		(void)at;
	}
	return a;
}

static int parse_or(struct parser *ps)
{
	const char *at0 = ps->ts;
	int a = parse_and(ps), rc;
	while (a >= 0 && is_kw(ps, "or")) {
		int b;
		if ((rc = next(ps)))
			return rc;
		const char *bat = ps->ts;
		if ((b = parse_and(ps)) < 0)
			return b;
		if ((rc = want_bool(ps, a, at0, "or")) || (rc = want_bool(ps, b, bat, "or")))
			return rc;
		a = add_node(ps, (struct node){.op = OP_OR, .t = SL_T_BOOLEAN, .a = a, .b = b});
	}
	return a;
}

void sl_expr_free(struct sl_expr *e)
{
	if (!e)
		return;
	for (int i = 0; i < e->nre; i++)
		regfree(&e->re[i]);
	free(e->re);
	free(e->n);
	free(e->args);
	free(e->strs);
	free(e->src);
	free(e);
}

int sl_expr_compile(const char *src, const struct sl_schema *in, const char *where, struct sl_expr **out,
		    struct sl_err *err)
{
	*out = NULL;
	struct sl_expr *e = calloc(1, sizeof *e);
	if (!e || !(e->src = strdup(src))) {
		free(e);
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	}
	struct parser ps = {.e = e, .s = in, .src = e->src, .p = e->src, .where = where ? where : "expression",
			    .err = err};
	int rc = next(&ps);
	if (rc == 0 && ps.tk == T_EOF)
		rc = perr(&ps, NULL, "empty expression");
	if (rc == 0) {
		int root = parse_or(&ps);
		if (root < 0)
			rc = root;
		else if (ps.tk != T_EOF)
			rc = perr(&ps, NULL, "unexpected '%.*s' after the end of the expression", (int)ps.tl, ps.ts);
		else if (e->n[root].t == T_NULL)
			rc = perr(&ps, e->src, "the expression is always null");
		e->root = root;
	}
	free(ps.sv);
	if (rc) {
		sl_expr_free(e);
		return rc;
	}
	/* Constant text now points into the final block. */
	for (int i = 0; i < e->nn; i++)
		if (e->n[i].op == OP_CONST && e->n[i].t == SL_T_TEXT)
			e->n[i].k.u.s.p = e->strs + (uintptr_t)e->n[i].k.u.s.p;
	*out = e;
	return 0;
}

enum sl_type sl_expr_type(const struct sl_expr *e)
{
	return (enum sl_type)e->n[e->root].t;
}

const char *sl_expr_text(const struct sl_expr *e)
{
	return e->src;
}

void sl_expr_env_init(struct sl_expr_env *env)
{
	memset(env, 0, sizeof *env);
	sl_buf_init(&env->scratch);
}

void sl_expr_env_free(struct sl_expr_env *env)
{
	sl_buf_free(&env->scratch);
}

/* ---- evaluation ---- */

struct ctx {
	const struct sl_expr *e;
	const struct sl_record *r;
	struct sl_expr_env *env;
	struct sl_arena *a;
	struct sl_err *err;
};

static int ev(struct ctx *cx, int ni, struct sl_value *out);

static int fail(struct ctx *cx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct ctx *cx, const char *fmt, ...)
{
	char msg[300];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return sl_err_set(cx->err, SL_ETYPE, "expression \"%s\": %s", cx->e->src, msg);
}

static int64_t as_i64(int t, const struct sl_value *v)
{
	return t == SL_T_INT ? v->u.i32 : t == SL_T_DATE ? v->u.days : v->u.i64;
}

static double as_d(int t, const struct sl_value *v)
{
	return t == SL_T_DOUBLE ? v->u.d : (double)as_i64(t, v);
}

/* -1, 0, 1 under the common type of the two nodes (checked comparable at load). */
static int cmp(int ta, const struct sl_value *a, int tb, const struct sl_value *b)
{
	if (numeric(ta) && numeric(tb)) {
		if (ta == SL_T_DOUBLE || tb == SL_T_DOUBLE) {
			double x = as_d(ta, a), y = as_d(tb, b);
			return x < y ? -1 : x > y ? 1 : 0;
		}
		int64_t x = as_i64(ta, a), y = as_i64(tb, b);
		return x < y ? -1 : x > y ? 1 : 0;
	}
	switch (ta) {
	case SL_T_TEXT: {
		size_t n = a->u.s.n < b->u.s.n ? a->u.s.n : b->u.s.n;
		int c = n ? memcmp(a->u.s.p, b->u.s.p, n) : 0;
		if (c)
			return c < 0 ? -1 : 1;
		return a->u.s.n < b->u.s.n ? -1 : a->u.s.n > b->u.s.n ? 1 : 0;
	}
	case SL_T_BOOLEAN:
		return a->u.b == b->u.b ? 0 : a->u.b ? 1 : -1;
	case SL_T_UUID:
		return memcmp(a->u.uuid, b->u.uuid, 16) ? 1 : 0;
	case SL_T_DATE:
		return a->u.days < b->u.days ? -1 : a->u.days > b->u.days ? 1 : 0;
	default: /* timestamp */
		return a->u.i64 < b->u.i64 ? -1 : a->u.i64 > b->u.i64 ? 1 : 0;
	}
}

/* The text form of a value of type t into env->scratch (appended). */
static int text_of(struct ctx *cx, int t, const struct sl_value *v, struct sl_buf *b)
{
	if (t == SL_T_TEXT) {
		sl_buf_append(b, v->u.s.p, v->u.s.n);
		return 0;
	}
	if (t == T_NULL)
		return 0;
	int rc = sl_value_to_text((enum sl_type)t, v, b);
	if (rc && rc != SL_ENOTFOUND)
		return fail(cx, "a %s value has no text form", tname(t));
	return 0;
}

static int set_text(struct ctx *cx, const char *p, size_t n, struct sl_value *out)
{
	char *d = n ? sl_arena_memdup(cx->a, p, n) : (char *)"";
	if (!d)
		return sl_err_set(cx->err, SL_ENOMEM, "out of memory");
	out->null = false;
	out->u.s.p = d;
	out->u.s.n = n;
	return 0;
}

static size_t utf8_next(const char *s, size_t n, size_t i)
{
	i++;
	while (i < n && ((unsigned char)s[i] & 0xC0) == 0x80)
		i++;
	return i;
}

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

static int cast(struct ctx *cx, int to, int from, const struct sl_value *v, struct sl_value *out)
{
	out->null = false;
	if (from == to) {
		*out = *v;
		return 0;
	}
	struct sl_buf *b = &cx->env->scratch;
	sl_buf_reset(b);
	int rc = text_of(cx, from, v, b);
	if (rc)
		return rc;
	const char *s = b->data;
	size_t n = b->len;
	char tmp[64];
	switch (to) {
	case SL_T_TEXT:
		return set_text(cx, s, n, out);
	case SL_T_INT: case SL_T_BIGINT: {
		int64_t x;
		if (from == SL_T_DOUBLE) {
			if (!(v->u.d >= -9.2e18 && v->u.d <= 9.2e18))
				return fail(cx, "%g does not fit %s", v->u.d, tname(to));
			x = (int64_t)v->u.d;
		} else if (numeric(from) || from == SL_T_TIMESTAMP || from == SL_T_DATE) {
			x = as_i64(from, v);
		} else if (from == SL_T_BOOLEAN) {
			x = v->u.b;
		} else {
			if (n == 0 || n >= sizeof tmp)
				return fail(cx, "\"%.*s\" is not a valid %s", (int)(n > 60 ? 60 : n), s, tname(to));
			memcpy(tmp, s, n);
			tmp[n] = 0;
			char *end;
			errno = 0;
			x = strtoll(tmp, &end, 10);
			if (*end || errno)
				return fail(cx, "\"%s\" is not a valid %s", tmp, tname(to));
		}
		if (to == SL_T_INT) {
			if (x < INT32_MIN || x > INT32_MAX)
				return fail(cx, "%" PRId64 " does not fit int", x);
			out->u.i32 = (int32_t)x;
		} else
			out->u.i64 = x;
		return 0;
	}
	case SL_T_DOUBLE:
		if (numeric(from)) {
			out->u.d = as_d(from, v);
			return 0;
		}
		if (n == 0 || n >= sizeof tmp)
			return fail(cx, "\"%.*s\" is not a valid double", (int)(n > 60 ? 60 : n), s);
		memcpy(tmp, s, n);
		tmp[n] = 0;
		char *end;
		out->u.d = strtod(tmp, &end);
		if (*end || !isfinite(out->u.d))
			return fail(cx, "\"%s\" is not a valid double", tmp);
		return 0;
	case SL_T_BOOLEAN:
		if (numeric(from)) {
			out->u.b = as_d(from, v) != 0;
			return 0;
		}
		if ((n == 4 && !strncasecmp(s, "true", 4)) || (n == 1 && *s == '1'))
			out->u.b = true;
		else if ((n == 5 && !strncasecmp(s, "false", 5)) || (n == 1 && *s == '0'))
			out->u.b = false;
		else
			return fail(cx, "\"%.*s\" is not a valid boolean", (int)(n > 60 ? 60 : n), s);
		return 0;
	case SL_T_TIMESTAMP:
		if (from == SL_T_INT || from == SL_T_BIGINT) {
			out->u.i64 = as_i64(from, v);
			return 0;
		}
		if (from == SL_T_DATE) {
			out->u.i64 = (int64_t)v->u.days * 86400000;
			return 0;
		}
		if (sl_timestamp_parse(s, n, &out->u.i64))
			return fail(cx, "\"%.*s\" is not a valid timestamp", (int)(n > 60 ? 60 : n), s);
		return 0;
	case SL_T_DATE: {
		if (from == SL_T_TIMESTAMP) {
			out->u.days = sl_days_from_ms(v->u.i64);
			return 0;
		}
		int64_t ms;
		if (sl_date_parse(s, n, &out->u.days) == 0)
			return 0;
		if (sl_timestamp_parse(s, n, &ms) == 0) {
			out->u.days = sl_days_from_ms(ms);
			return 0;
		}
		return fail(cx, "\"%.*s\" is not a valid date", (int)(n > 60 ? 60 : n), s);
	}
	default:
		return fail(cx, "no cast to %s", tname(to));
	}
}

static int call(struct ctx *cx, const struct node *nd, struct sl_value *out)
{
	const struct sl_expr *e = cx->e;
	const int *a = e->args + nd->arg0;
	struct sl_value v[MAX_ARGS];
	int rc;
	out->null = false;
	/* Functions that do not propagate null evaluate their own arguments. */
	switch ((enum fn)nd->fn) {
	case F_COALESCE:
		for (int i = 0; i < nd->nargs; i++) {
			if ((rc = ev(cx, a[i], out)))
				return rc;
			if (!out->null)
				return cast(cx, nd->t, e->n[a[i]].t, &(struct sl_value){.u = out->u}, out);
		}
		out->null = true;
		return 0;
	case F_IF: {
		if ((rc = ev(cx, a[0], &v[0])))
			return rc;
		int pick = !v[0].null && v[0].u.b ? 1 : 2;
		if ((rc = ev(cx, a[pick], out)))
			return rc;
		if (out->null)
			return 0;
		return cast(cx, nd->t, e->n[a[pick]].t, &(struct sl_value){.u = out->u}, out);
	}
	case F_CONCAT: case F_HASH: {
		struct sl_buf *b = &cx->env->scratch;
		sl_buf_reset(b);
		uint64_t h = 1469598103934665603ull;
		for (int i = 0; i < nd->nargs; i++) {
			if ((rc = ev(cx, a[i], &v[0])))
				return rc;
			if (nd->fn == F_HASH) {
				size_t from = b->len;
				if (!v[0].null && (rc = text_of(cx, e->n[a[i]].t, &v[0], b)))
					return rc;
				for (size_t j = from; j < b->len; j++)
					h = (h ^ (unsigned char)b->data[j]) * 1099511628211ull;
				h = (h ^ (v[0].null ? 0xFFu : 0x1Fu)) * 1099511628211ull; /* separator: ("a","b") != ("ab") */
				b->len = 0;
			} else if (!v[0].null && (rc = text_of(cx, e->n[a[i]].t, &v[0], b)))
				return rc;
		}
		if (!sl_buf_ok(b))
			return sl_err_set(cx->err, SL_ENOMEM, "out of memory");
		if (nd->fn == F_HASH) {
			out->u.i64 = (int64_t)h;
			return 0;
		}
		return set_text(cx, b->data, b->len, out);
	}
	default:
		break;
	}
	for (int i = 0; i < nd->nargs; i++) {
		if ((rc = ev(cx, a[i], &v[i])))
			return rc;
		if (v[i].null) {
			out->null = true;
			return 0;
		}
	}
	int t0 = nd->nargs ? e->n[a[0]].t : T_NULL;
	switch ((enum fn)nd->fn) {
	case F_LOWER: case F_UPPER: {
		char *d = v[0].u.s.n ? sl_arena_alloc(cx->a, v[0].u.s.n) : (char *)"";
		if (!d)
			return sl_err_set(cx->err, SL_ENOMEM, "out of memory");
		for (size_t i = 0; i < v[0].u.s.n; i++) /* ASCII letters only: UTF-8 sequences pass unchanged */
			d[i] = (char)(nd->fn == F_LOWER ? tolower((unsigned char)v[0].u.s.p[i])
							 : toupper((unsigned char)v[0].u.s.p[i]));
		out->u.s.p = d;
		out->u.s.n = v[0].u.s.n;
		return 0;
	}
	case F_TRIM: {
		const char *p = v[0].u.s.p;
		size_t n = v[0].u.s.n;
		while (n && isspace((unsigned char)*p))
			p++, n--;
		while (n && isspace((unsigned char)p[n - 1]))
			n--;
		out->u.s.p = p; /* a slice of the operand: nothing copied */
		out->u.s.n = n;
		return 0;
	}
	case F_LENGTH: {
		int64_t c = 0;
		for (size_t i = 0; i < v[0].u.s.n; i = utf8_next(v[0].u.s.p, v[0].u.s.n, i))
			c++;
		out->u.i64 = c;
		return 0;
	}
	case F_SUBSTRING: {
		const char *p = v[0].u.s.p;
		size_t n = v[0].u.s.n, i = 0;
		int64_t start = as_i64(e->n[a[1]].t, &v[1]);
		int64_t len = nd->nargs > 2 ? as_i64(e->n[a[2]].t, &v[2]) : INT64_MAX;
		if (start < 1) { /* SQL: characters before the first still count against len */
			if (len != INT64_MAX)
				len = len + start - 1;
			start = 1;
		}
		if (len < 0)
			len = 0;
		for (int64_t k = 1; k < start && i < n; k++)
			i = utf8_next(p, n, i);
		size_t j = i;
		for (int64_t k = 0; k < len && j < n; k++)
			j = utf8_next(p, n, j);
		out->u.s.p = p + i;
		out->u.s.n = j - i;
		return 0;
	}
	case F_SPLIT: {
		const char *p = v[0].u.s.p, *sep = v[1].u.s.p;
		size_t n = v[0].u.s.n, sl = v[1].u.s.n;
		int64_t idx = as_i64(e->n[a[2]].t, &v[2]);
		if (sl == 0 || idx == 0) {
			out->null = true;
			return 0;
		}
		/* Count the parts first when counting from the end. */
		int64_t parts = 1;
		for (size_t i = 0; i + sl <= n;)
			if (!memcmp(p + i, sep, sl))
				parts++, i += sl;
			else
				i++;
		if (idx < 0)
			idx = parts + idx + 1;
		if (idx < 1 || idx > parts) {
			out->null = true;
			return 0;
		}
		size_t start = 0, i = 0;
		int64_t k = 1;
		while (k < idx) {
			if (!memcmp(p + i, sep, sl)) {
				i += sl;
				start = i;
				k++;
			} else
				i++;
		}
		size_t end = start;
		while (end + sl <= n && memcmp(p + end, sep, sl))
			end++;
		if (end + sl > n)
			end = n;
		out->u.s.p = p + start;
		out->u.s.n = end - start;
		return 0;
	}
	case F_REGEX_MATCH: case F_REGEX_EXTRACT: {
		regmatch_t m[10];
		m[0].rm_so = 0;
		m[0].rm_eo = (regoff_t)v[0].u.s.n;
		/* REG_STARTEND: the text is not NUL-terminated, and need not be copied to be. */
		int r = regexec(&e->re[nd->re], v[0].u.s.p ? v[0].u.s.p : "", 10, m, REG_STARTEND);
		if (nd->fn == F_REGEX_MATCH) {
			out->u.b = r == 0;
			return 0;
		}
		if (r != 0 || nd->group >= 10 || m[nd->group].rm_so < 0) {
			out->null = true;
			return 0;
		}
		out->u.s.p = v[0].u.s.p + m[nd->group].rm_so;
		out->u.s.n = (size_t)(m[nd->group].rm_eo - m[nd->group].rm_so);
		return 0;
	}
	case F_DATE_TRUNC: {
		int64_t ms = v[1].u.i64;
		static const int64_t step[] = {[U_SECOND] = 1000, [U_MINUTE] = 60000, [U_HOUR] = 3600000,
					       [U_DAY] = 86400000};
		if (nd->unit <= U_DAY) {
			out->u.i64 = floor_div(ms, step[nd->unit]) * step[nd->unit];
			return 0;
		}
		int64_t y;
		unsigned mo, d;
		sl_date_civil_from_days(sl_days_from_ms(ms), &y, &mo, &d);
		out->u.i64 = sl_date_days_from_civil(y, nd->unit == U_YEAR ? 1 : mo, 1) * 86400000;
		return 0;
	}
	case F_DATE_PART: {
		int64_t ms = e->n[a[1]].t == SL_T_DATE ? (int64_t)v[1].u.days * 86400000 : v[1].u.i64;
		int64_t days = floor_div(ms, 86400000), in_day = ms - days * 86400000, y;
		unsigned mo, d;
		sl_date_civil_from_days(days, &y, &mo, &d);
		switch (nd->unit) {
		case U_YEAR: out->u.i64 = y; break;
		case U_MONTH: out->u.i64 = mo; break;
		case U_DAY: out->u.i64 = d; break;
		case U_HOUR: out->u.i64 = in_day / 3600000; break;
		case U_MINUTE: out->u.i64 = in_day / 60000 % 60; break;
		case U_SECOND: out->u.i64 = in_day / 1000 % 60; break;
		case U_DOW: out->u.i64 = ((days % 7) + 11) % 7; break; /* 1970-01-01 was a Thursday (4); Sunday = 0 */
		case U_DOY: out->u.i64 = days - sl_date_days_from_civil(y, 1, 1) + 1; break;
		default: out->u.i64 = floor_div(ms, 1000); break; /* epoch seconds */
		}
		return 0;
	}
	case F_DATE_DIFF: {
		int64_t x = e->n[a[1]].t == SL_T_DATE ? (int64_t)v[1].u.days * 86400000 : v[1].u.i64;
		int64_t y = e->n[a[2]].t == SL_T_DATE ? (int64_t)v[2].u.days * 86400000 : v[2].u.i64;
		static const int64_t step[] = {[U_MS] = 1, [U_SECOND] = 1000, [U_MINUTE] = 60000, [U_HOUR] = 3600000,
					       [U_DAY] = 86400000};
		int64_t dlt;
		if (__builtin_sub_overflow(y, x, &dlt))
			return fail(cx, "date_diff overflows");
		out->u.i64 = dlt / step[nd->unit];
		return 0;
	}
	case F_NOW:
		out->u.i64 = cx->env->now_ms ? cx->env->now_ms : sl_now_ms();
		return 0;
	case F_ABS:
		if (nd->t == SL_T_DOUBLE)
			out->u.d = fabs(as_d(t0, &v[0]));
		else {
			int64_t x = as_i64(t0, &v[0]);
			if (x == INT64_MIN)
				return fail(cx, "abs(%" PRId64 ") overflows", x);
			out->u.i64 = x < 0 ? -x : x;
		}
		return 0;
	case F_SHA256: {
		unsigned char md[SHA256_DIGEST_LENGTH];
		SHA256((const unsigned char *)v[0].u.s.p, v[0].u.s.n, md);
		char *d = sl_arena_alloc(cx->a, 2 * sizeof md);
		if (!d)
			return sl_err_set(cx->err, SL_ENOMEM, "out of memory");
		for (size_t i = 0; i < sizeof md; i++) {
			d[2 * i] = "0123456789abcdef"[md[i] >> 4];
			d[2 * i + 1] = "0123456789abcdef"[md[i] & 15];
		}
		out->u.s.p = d;
		out->u.s.n = 2 * sizeof md;
		return 0;
	}
	case F_TEXT: case F_INT: case F_BIGINT: case F_DOUBLE: case F_BOOLEAN: case F_TIMESTAMP: case F_DATE:
		return cast(cx, nd->t, t0, &v[0], out);
	default:
		return fail(cx, "internal: function %d", nd->fn);
	}
}

static int ev(struct ctx *cx, int ni, struct sl_value *out)
{
	const struct node *nd = &cx->e->n[ni];
	struct sl_value x, y;
	int rc;
	out->null = false;
	switch (nd->op) {
	case OP_CONST:
		*out = nd->k;
		return 0;
	case OP_COL:
		*out = cx->r->v[nd->col];
		return 0;
	case OP_CALL:
		return call(cx, nd, out);
	case OP_ISNULL: case OP_NOTNULL:
		if ((rc = ev(cx, nd->a, &x)))
			return rc;
		out->u.b = x.null == (nd->op == OP_ISNULL);
		return 0;
	case OP_AND: case OP_OR: {
		/* Three-valued, short-circuit: false and _ = false; true or _ = true. */
		bool stop = nd->op == OP_OR;
		if ((rc = ev(cx, nd->a, &x)))
			return rc;
		if (!x.null && x.u.b == stop) {
			out->u.b = stop;
			return 0;
		}
		if ((rc = ev(cx, nd->b, &y)))
			return rc;
		if (!y.null && y.u.b == stop) {
			out->u.b = stop;
			return 0;
		}
		out->null = x.null || y.null;
		out->u.b = !stop;
		return 0;
	}
	case OP_NOT:
		if ((rc = ev(cx, nd->a, &x)))
			return rc;
		out->null = x.null;
		out->u.b = !x.null && !x.u.b; /* a null's payload is not read */
		return 0;
	case OP_NEG: {
		if ((rc = ev(cx, nd->a, &x)))
			return rc;
		if (x.null) {
			out->null = true;
			return 0;
		}
		int ta = cx->e->n[nd->a].t;
		if (nd->t == SL_T_DOUBLE)
			out->u.d = -x.u.d;
		else if (as_i64(ta, &x) == INT64_MIN)
			return fail(cx, "-(%" PRId64 ") overflows", as_i64(ta, &x));
		else
			out->u.i64 = -as_i64(ta, &x);
		return 0;
	}
	case OP_IN: case OP_NOTIN: {
		if ((rc = ev(cx, nd->a, &x)))
			return rc;
		if (x.null) {
			out->null = true;
			return 0;
		}
		int ta = cx->e->n[nd->a].t;
		bool found = false;
		for (int i = 0; i < nd->nargs && !found; i++) {
			int ai = cx->e->args[nd->arg0 + i];
			if ((rc = ev(cx, ai, &y)))
				return rc;
			if (!y.null && cmp(ta, &x, cx->e->n[ai].t, &y) == 0)
				found = true;
		}
		out->u.b = found == (nd->op == OP_IN);
		return 0;
	}
	default:
		break;
	}
	/* Binary operators, null-propagating. */
	if ((rc = ev(cx, nd->a, &x)) || (rc = ev(cx, nd->b, &y)))
		return rc;
	if (x.null || y.null) {
		out->null = true;
		return 0;
	}
	int ta = cx->e->n[nd->a].t, tb = cx->e->n[nd->b].t;
	switch (nd->op) {
	case OP_EQ: out->u.b = cmp(ta, &x, tb, &y) == 0; return 0;
	case OP_NE: out->u.b = cmp(ta, &x, tb, &y) != 0; return 0;
	case OP_LT: out->u.b = cmp(ta, &x, tb, &y) < 0; return 0;
	case OP_LE: out->u.b = cmp(ta, &x, tb, &y) <= 0; return 0;
	case OP_GT: out->u.b = cmp(ta, &x, tb, &y) > 0; return 0;
	case OP_GE: out->u.b = cmp(ta, &x, tb, &y) >= 0; return 0;
	case OP_CONCAT2: {
		struct sl_buf *b = &cx->env->scratch;
		sl_buf_reset(b);
		if ((rc = text_of(cx, ta, &x, b)) || (rc = text_of(cx, tb, &y, b)))
			return rc;
		if (!sl_buf_ok(b))
			return sl_err_set(cx->err, SL_ENOMEM, "out of memory");
		return set_text(cx, b->data, b->len, out);
	}
	default:
		break;
	}
	if (nd->t == SL_T_DOUBLE) {
		double p = as_d(ta, &x), q = as_d(tb, &y);
		switch (nd->op) {
		case OP_ADD: out->u.d = p + q; break;
		case OP_SUB: out->u.d = p - q; break;
		case OP_MUL: out->u.d = p * q; break;
		default:
			if (q == 0) {
				out->null = true;
				return 0;
			}
			out->u.d = p / q;
		}
		if (!isfinite(out->u.d))
			out->null = true; /* Cassandra and JSON have no infinities: null, like a division by zero */
		return 0;
	}
	int64_t p = as_i64(ta, &x), q = as_i64(tb, &y), r = 0;
	bool ovf = false;
	switch (nd->op) {
	case OP_ADD: ovf = __builtin_add_overflow(p, q, &r); break;
	case OP_SUB: ovf = __builtin_sub_overflow(p, q, &r); break;
	case OP_MUL: ovf = __builtin_mul_overflow(p, q, &r); break;
	case OP_DIV: case OP_MOD:
		if (q == 0) {
			out->null = true;
			return 0;
		}
		if (p == INT64_MIN && q == -1)
			ovf = true;
		else
			r = nd->op == OP_DIV ? p / q : p % q;
		break;
	default:
		return fail(cx, "internal: op %d", nd->op);
	}
	if (ovf)
		return fail(cx, "integer overflow (%" PRId64 " and %" PRId64 ")", p, q);
	out->u.i64 = r;
	return 0;
}

int sl_expr_eval(const struct sl_expr *e, const struct sl_record *r, struct sl_expr_env *env, struct sl_arena *a,
		 struct sl_value *out, struct sl_err *err)
{
	struct ctx cx = {e, r, env, a, err};
	return ev(&cx, e->root, out);
}

int sl_expr_test(const struct sl_expr *e, const struct sl_record *r, struct sl_expr_env *env, struct sl_arena *a,
		 struct sl_err *err)
{
	struct sl_value v;
	struct ctx cx = {e, r, env, a, err};
	int rc = ev(&cx, e->root, &v);
	if (rc)
		return rc;
	return !v.null && v.u.b ? 1 : 0;
}
