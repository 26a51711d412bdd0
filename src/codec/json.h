/* JSON reading for the whole engine: a C API over simdjson's DOM parser (json_simdjson.cc), chosen by measurement
 * (DESIGN.md §5). A parser is reused across documents; parsing builds simdjson's tape, and a value is a 16-byte handle
 * into it, so lookups, iteration and reads allocate nothing. Every value, string and key obtained from a parse stays
 * valid until the next parse on the same parser (or its free); copy what must outlive that into an arena.
 *
 * Why DOM and not on-demand: a mapping visits fields in its own order, revisits shared prefixes and renders values in
 * error messages; on-demand is forward-only. For a 360-byte randomuser record DOM parse plus 8 field reads costs
 * about 0.5 µs on our 2-vCPU machines (bench in tests/unit/test_json.c, printed as "json bench"), within the ~1 µs the
 * processor's hot path can afford.
 *
 * Errors carry the byte offset of the first malformed byte: simdjson reports only an error code, so on failure (never
 * on the success path) a small validating scanner (json_errpos.c) finds where the text goes wrong. */
#ifndef SL_JSON_H
#define SL_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

enum sl_json_type {
	SL_JSON_INVALID = 0, /* a handle that points at nothing (missing field, end of iteration) */
	SL_JSON_NULL,
	SL_JSON_BOOL,
	SL_JSON_INT,    /* fits int64 */
	SL_JSON_UINT,   /* above INT64_MAX, fits uint64 */
	SL_JSON_DOUBLE, /* written with '.', 'e' or too large for 64 bits */
	SL_JSON_STRING,
	SL_JSON_ARRAY,
	SL_JSON_OBJECT,
};

/* A handle to one value of the current document. Zero-initialised, it is SL_JSON_INVALID. */
struct sl_json_val {
	uint64_t opaque[2];
};

/* Iteration state over an array or object; see sl_json_iter_init. */
struct sl_json_iter {
	uint64_t opaque[4];
};

struct sl_json_parser;

#define SL_JSON_DEFAULT_MAX_BYTES (64u << 20)
#define SL_JSON_DEFAULT_MAX_DEPTH 64

/* max_bytes bounds the document size (larger inputs fail with SL_ETOOBIG before parsing); max_depth bounds nesting
 * (deeper documents fail with SL_ETOOBIG). 0 picks the defaults above. */
int sl_json_parser_new(struct sl_json_parser **out, size_t max_bytes, size_t max_depth, struct sl_err *err);
void sl_json_parser_free(struct sl_json_parser *p);

/* Parses buf[0..len) (copied into the parser's padded buffer, so buf needs no padding and may be freed at once).
 * On error: SL_EINVAL for malformed or truncated JSON and invalid UTF-8, with "at byte N" in the message;
 * SL_ETOOBIG for size or depth limits; SL_ENOMEM. */
int sl_json_parse(struct sl_json_parser *p, const char *buf, size_t len, struct sl_json_val *root, struct sl_err *err);

enum sl_json_type sl_json_type(struct sl_json_val v);
const char *sl_json_type_name(enum sl_json_type t);
static inline bool sl_json_valid(struct sl_json_val v) { return sl_json_type(v) != SL_JSON_INVALID; }

/* Object member by exact key. Returns false (and *out invalid) when v is not an object or has no such key. */
bool sl_json_get(struct sl_json_val obj, const char *key, size_t keylen, struct sl_json_val *out);
/* Array element by index; false when out of range or not an array. */
bool sl_json_at(struct sl_json_val arr, size_t i, struct sl_json_val *out);
/* Path lookup: "location.street.number", "results[0].name.first", "$.results", "$" (the value itself).
 * Keys are separated by '.'; "[n]" indexes arrays. Returns false when any step is missing or the path is malformed. */
bool sl_json_path(struct sl_json_val root, const char *path, size_t len, struct sl_json_val *out);
/* Elements of an array or members of an object; 0 for other types. */
size_t sl_json_len(struct sl_json_val v);

/* Starts iterating an array or object; returns false for any other type. */
bool sl_json_iter_init(struct sl_json_iter *it, struct sl_json_val v);
bool sl_json_array_next(struct sl_json_iter *it, struct sl_json_val *out);
bool sl_json_object_next(struct sl_json_iter *it, const char **key, size_t *keylen, struct sl_json_val *out);

/* Readers: 0, or SL_ETYPE when the value has another type (or the number does not fit). Strings are UTF-8 (simdjson
 * validates), not NUL-terminated in general, and valid until the next parse. */
int sl_json_str(struct sl_json_val v, const char **s, size_t *n);
/* SL_JSON_INT, or a UINT/DOUBLE that holds an exact integer in range. */
int sl_json_int64(struct sl_json_val v, int64_t *out);
/* Any number. */
int sl_json_double(struct sl_json_val v, double *out);
int sl_json_bool(struct sl_json_val v, bool *out);
static inline bool sl_json_is_null(struct sl_json_val v) { return sl_json_type(v) == SL_JSON_NULL; }

/* Appends v as compact JSON (for error messages and for storing a sub-document as text). */
void sl_json_render(struct sl_json_val v, struct sl_buf *out);
/* Like sl_json_render but stops near max bytes and appends "…" (for messages about large values). */
void sl_json_render_short(struct sl_json_val v, size_t max, struct sl_buf *out);

/* Byte offset of the first malformed byte of buf (len when the text ends too early, e.g. truncated), or -1 when the
 * text is well-formed JSON as far as this scanner checks (syntax and nesting, not UTF-8). Used on error paths only. */
long sl_json_error_offset(const char *buf, size_t len);

/* For json.c only: json_simdjson.cc's reader of an unsigned 64-bit number (0, or -1 when v is none). */
int sl_json_uint64_internal(struct sl_json_val v, uint64_t *out);

#endif
