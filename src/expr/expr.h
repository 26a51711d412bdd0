/* Expressions over a typed record, evaluated by the processor: a pipeline's or an output's filter (`where:`) and its
 * computed columns (`compute:`). An expression is parsed and type-checked once when the config loads (errors name
 * file:line and the column in the expression), into a flat tree whose every node has a static type; evaluating it
 * walks that tree with no parsing and no malloc (strings a function builds live in the batch's arena; regular
 * expressions are compiled at load).
 *
 *   where:  "gender = 'female' and lower(country) in ('france', 'spain')"
 *   compute:
 *     country: "split(address, ', ', -1)"
 *     minute:  "date_trunc('minute', registered)"
 *
 * Grammar (lowest precedence first): `or`; `and`; `not`; comparison (= == != <> < <= > >=, `is [not] null`,
 * `[not] in (a, b, ...)`); `+ - ||`; `* / %`; unary `-`; literals ('text' or "text", 12, 1.5, true, false, null),
 * column names (or `quoted`), function calls, parentheses. Keywords are case-insensitive.
 *
 * Types are the record's (text, int, bigint, double, boolean, uuid, timestamp, date). Integer arithmetic is bigint
 * (overflow is an error for the record, not a wrap); any double operand makes it double; / on integers truncates and
 * by zero is null. A text literal compared with a timestamp or date is read as one at load. Nulls propagate as in SQL:
 * an operator or function with a null operand is null, except `is null`, `and`/`or` (three-valued), coalesce, if and
 * concat (which skips nulls). A filter keeps a record only when it is true (null drops it).
 *
 * Functions (argument types checked at load; unit and pattern arguments must be literals):
 *   lower(t) upper(t) trim(t) length(t)->bigint substring(t, start[, len]) (1-based, in characters)
 *   concat(x, ...)->text  split(t, sep, i)->text (i-th part, 1-based, negative counts from the end)
 *   regex_match(t, 'pattern')->boolean  regex_extract(t, 'pattern'[, group])->text (POSIX extended)
 *   date_trunc('second'|'minute'|'hour'|'day'|'month'|'year', ts)->timestamp
 *   date_part('year'|'month'|'day'|'hour'|'minute'|'second'|'dow'|'doy'|'epoch', ts or date)->bigint
 *   date_diff('ms'|'second'|'minute'|'hour'|'day', a, b)->bigint (b - a, truncated)  now()->timestamp
 *   coalesce(a, b, ...)  if(cond, a, b)  abs(n)
 *   hash(x, ...)->bigint (64-bit FNV-1a of the values' text forms; stable across runs and machines)
 *   sha256(t)->text (hex)
 *   text(x) int(x) bigint(x) double(x) boolean(x) timestamp(x) date(x) (casts; a value that does not convert is an
 *   error for the record, which then goes to the dead-letter topic naming the expression) */
#ifndef SL_EXPR_H
#define SL_EXPR_H

#include <stdbool.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/record.h"

struct sl_expr;

/* Per-worker evaluation state: the value of now() and a scratch buffer (text forms), reused across records. */
struct sl_expr_env {
	int64_t now_ms; /* 0: the clock, read when now() is evaluated */
	struct sl_buf scratch;
};
void sl_expr_env_init(struct sl_expr_env *env);
void sl_expr_env_free(struct sl_expr_env *env);

/* Parses and type-checks src against the columns of in (which must outlive the expression: column references are
 * indexes into it). where ("file:line") prefixes every message. */
int sl_expr_compile(const char *src, const struct sl_schema *in, const char *where, struct sl_expr **out,
		    struct sl_err *err);
void sl_expr_free(struct sl_expr *e);
/* The result type. */
enum sl_type sl_expr_type(const struct sl_expr *e);
/* The source text, for messages. */
const char *sl_expr_text(const struct sl_expr *e);

/* Evaluates e over r into out (out->null for SQL null). Strings in out live in a, in r or in e. On failure (a cast that
 * does not convert, an integer overflow) returns SL_ETYPE and err names the expression and the value. */
int sl_expr_eval(const struct sl_expr *e, const struct sl_record *r, struct sl_expr_env *env, struct sl_arena *a,
		 struct sl_value *out, struct sl_err *err);
/* A filter: 1 when e (boolean) is true, 0 when false or null, negative SL_E* on an evaluation error. */
int sl_expr_test(const struct sl_expr *e, const struct sl_record *r, struct sl_expr_env *env, struct sl_arena *a,
		 struct sl_err *err);

#endif
