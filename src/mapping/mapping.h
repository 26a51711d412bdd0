/* The mapping language: how one raw JSON record from an API becomes a typed record. A mapping is a YAML map of
 * column -> spec, compiled once when the config loads (every type, path, template and function checked, errors at
 * file:line) into a program that is then applied to each raw record with no parsing of the spec and no malloc.
 *
 *   columns:
 *     first_name: name.first                          # shorthand: a path, type text
 *     id: { path: login.uuid, type: uuid, default: "uuid()" }
 *     address: { template: "{location.street.number} {location.street.name}, {location.city}" }
 *     ingested_at: { expr: "now()" }                  # functions: uuid(), now()
 *     age: { path: dob.age, type: int, required: true }
 *     seen: { path: ts, type: timestamp, unit: ms }   # unit: s | ms for numeric epochs
 *
 * Spec keys: path | template | expr (at most one), type (text, int, bigint, double, boolean, uuid, timestamp, date;
 * default text, or the function's own type for expr), default (a literal in the column's type, or uuid()/now()),
 * required (a record without a value and without a default is rejected), unit (s or ms; timestamp and date only).
 * Paths are dotted with optional array indexes: `location.street.number`, `results[0].name`, `$.a.b`.
 *
 * Casts, from the raw JSON value to the column type:
 *   text      string as is; numbers as JSON writes them (123, not 123.0); true/false; objects/arrays as compact JSON.
 *   int/bigint integers (and integral doubles) in range; strings holding a decimal integer.
 *   double    numbers; strings holding a finite decimal number.
 *   boolean   true/false; strings "true"/"false" (any case) and "1"/"0"; the numbers 1 and 0.
 *   uuid      strings in 8-4-4-4-12 or 32-hex form.
 *   timestamp strings in ISO-8601 (offset or Z, fractional seconds; no offset = UTC); numbers (or numeric strings) are
 *             epoch time: with `unit:` as told, otherwise by magnitude — |n| < 1e11 is seconds (1e11 s is the year
 *             5138), larger is milliseconds (1e11 ms is 1973-03-03, so only millisecond values from before March
 *             1973 would be misread; say `unit: ms` for those).
 *   date      "YYYY-MM-DD", or anything a timestamp accepts, truncated to its UTC day.
 * A JSON null counts as missing. Template placeholders render like text; a missing one fails the column unless the
 * column has a default. `{{` and `}}` are literal braces.
 *
 * A record that does not fit fails with a message naming the column, the path and the value, e.g.
 *   column 'age' (path dob.age): "abc" is not a valid int
 * which the pipeline sends, prefixed with the record's position, to the dead-letter topic. */
#ifndef SL_MAPPING_H
#define SL_MAPPING_H

#include <stdint.h>

#include "codec/json.h"
#include "core/arena.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/record.h"

struct sl_mapping;

/* Per-worker state for sl_mapping_apply: the clock and random source of now() and uuid(), and scratch space.
 * One per thread; a mapping itself is read-only once compiled and shared by all workers. */
struct sl_mapping_env {
	int64_t now_ms;        /* fixed value for now() (tests, replays); 0 reads the clock once per record */
	uint64_t rng;          /* splitmix64 state for uuid(); seeded from the OS by sl_mapping_env_init */
	struct sl_buf scratch; /* template rendering */
};

void sl_mapping_env_init(struct sl_mapping_env *env);
void sl_mapping_env_free(struct sl_mapping_env *env);

/* Compiles columns (a map node: column -> spec). key names the key column (NULL: no key); the key column is
 * implicitly required. Errors name file:line of the offending node. */
int sl_mapping_compile(const struct sl_cfg_node *columns, const char *key, struct sl_mapping **out,
		       struct sl_err *err);
void sl_mapping_free(struct sl_mapping *m);

/* The output schema: the columns in the order written, with their types, required flags and key. */
const struct sl_schema *sl_mapping_schema(const struct sl_mapping *m);

/* Maps one raw record (usually an element of the page's `$.results`) into out, whose values and strings live in a
 * (nothing points into the parser's document afterwards). On failure (SL_ETYPE, or SL_ENOMEM) err says which column
 * and why; out is then partially filled and must not be used. */
int sl_mapping_apply(const struct sl_mapping *m, struct sl_json_val raw, struct sl_mapping_env *env,
		     struct sl_arena *a, struct sl_record *out, struct sl_err *err);

#endif
