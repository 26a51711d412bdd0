/* Typed records: the unit that flows from a source's mapping through the topic to a sink. A schema is an ordered list
 * of typed columns with one optional key column; a record is an array of values bound to a schema. Strings in a record
 * point into the batch's arena (or into a parsed document that outlives the record), so building one never calls
 * malloc per field. This file also owns the text forms of the non-JSON types (uuid, ISO-8601 timestamp, date), because
 * the JSON codec, the mapping language, the sinks and the generator all have to agree on them byte for byte. */
#ifndef SL_RECORD_H
#define SL_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/err.h"

/* Column types; the names are Cassandra's so a schema reads the same in sluice.yaml and in CQL. */
enum sl_type {
	SL_T_TEXT,
	SL_T_INT,       /* 32-bit signed */
	SL_T_BIGINT,    /* 64-bit signed */
	SL_T_DOUBLE,
	SL_T_BOOLEAN,
	SL_T_UUID,      /* 16 bytes, canonical text 8-4-4-4-12 lowercase */
	SL_T_TIMESTAMP, /* milliseconds since 1970-01-01T00:00:00Z */
	SL_T_DATE,      /* days since 1970-01-01 */
	SL_T__COUNT
};

/* "text", "int", ...; "?" for an out-of-range value. */
const char *sl_type_name(enum sl_type t);
/* Exact (case-insensitive) name to type; SL_ENOTFOUND otherwise. */
int sl_type_parse(const char *name, enum sl_type *out);
/* For an unknown type name, the type a user most likely meant ("string" -> "text", "tmestamp" -> "timestamp"), or NULL. */
const char *sl_type_suggest(const char *name);

struct sl_field {
	char *name;        /* malloc'd; schemas live as long as the pipeline */
	enum sl_type type;
	bool required;     /* a record without a value for it is invalid */
};

struct sl_schema {
	size_t n, cap;
	struct sl_field *fields;
	int key;           /* index of the key column, -1 when the record has no key */
};

void sl_schema_init(struct sl_schema *s);
void sl_schema_free(struct sl_schema *s);
/* Appends a column; duplicate names are SL_EINVAL. */
int sl_schema_add(struct sl_schema *s, const char *name, enum sl_type type, bool required, struct sl_err *err);
/* Index of the column, or -1. */
int sl_schema_find(const struct sl_schema *s, const char *name, size_t len);
/* The same, trying the fields from start on first (then wrapping): a decoder that reads fields in schema order
 * passes the index after its last match and finds each field at the first try. */
int sl_schema_find_from(const struct sl_schema *s, const char *name, size_t len, size_t start);
int sl_schema_set_key(struct sl_schema *s, const char *name, struct sl_err *err);

struct sl_value {
	bool null;
	union {
		struct {
			const char *p;  /* not NUL-terminated in general */
			size_t n;
		} s;                    /* SL_T_TEXT */
		int32_t i32;            /* SL_T_INT */
		int64_t i64;            /* SL_T_BIGINT, SL_T_TIMESTAMP (ms) */
		int32_t days;           /* SL_T_DATE */
		double d;               /* SL_T_DOUBLE */
		bool b;                 /* SL_T_BOOLEAN */
		uint8_t uuid[16];       /* SL_T_UUID */
	} u;
};

struct sl_record {
	const struct sl_schema *schema;
	struct sl_value *v;     /* schema->n values, in the arena */
};

/* Binds r to s with every value null; the value array comes from a. */
int sl_record_init(struct sl_record *r, const struct sl_schema *s, struct sl_arena *a, struct sl_err *err);
/* Checks that every required column has a value; the message names the first column that has none. */
int sl_record_check(const struct sl_record *r, struct sl_err *err);
/* Appends the text form of one value (text as is, numbers as JSON writes them, uuid/timestamp/date canonical). A null
 * value appends nothing and returns SL_ENOTFOUND. */
int sl_value_to_text(enum sl_type t, const struct sl_value *v, struct sl_buf *out);
/* The record key as text (for Kafka message keys and partitioning): the key column's text form. SL_ENOTFOUND when the
 * schema has no key or the key is null. */
int sl_record_key(const struct sl_record *r, struct sl_buf *out, struct sl_err *err);
/* Value equality under the column type (doubles bitwise-equal or both NaN-free and ==). */
bool sl_value_eq(enum sl_type t, const struct sl_value *a, const struct sl_value *b);

/* ---- text forms ---- */

#define SL_UUID_STR_LEN 36
#define SL_TIMESTAMP_STR_MAX 32 /* "-292275055-05-17T..." never happens in practice; years are clamped to 4 digits */
#define SL_DATE_STR_MAX 16

/* Writes 36 chars + NUL, lowercase. */
void sl_uuid_format(const uint8_t u[16], char out[SL_UUID_STR_LEN + 1]);
/* Accepts 8-4-4-4-12 or 32 hex digits, either case, optionally in braces. SL_EINVAL otherwise. */
int sl_uuid_parse(const char *s, size_t n, uint8_t out[16]);
/* Sets the version-4 and RFC 4122 variant bits on 16 random bytes. */
void sl_uuid_v4_from_random(uint64_t hi, uint64_t lo, uint8_t out[16]);

/* "2024-01-02T03:04:05.678Z"; years outside 0000..9999 are SL_EINVAL (JSON and CQL both disagree on them). */
int sl_timestamp_format(int64_t ms, char out[SL_TIMESTAMP_STR_MAX]);
/* ISO-8601 / RFC 3339: YYYY-MM-DD[(T| )HH:MM[:SS[.fraction]]][Z|+HH:MM|+HHMM|+HH]. Without an offset the time is
 * taken as UTC. A date alone is midnight UTC. Fractions beyond milliseconds are truncated toward the past. */
int sl_timestamp_parse(const char *s, size_t n, int64_t *ms);
/* "YYYY-MM-DD". */
int sl_date_format(int32_t days, char out[SL_DATE_STR_MAX]);
/* Exactly YYYY-MM-DD. */
int sl_date_parse(const char *s, size_t n, int32_t *days);
/* Days since the epoch for a proleptic Gregorian civil date (no validation). */
int64_t sl_date_days_from_civil(int64_t y, unsigned m, unsigned d);
void sl_date_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d);
/* Floor division of a millisecond timestamp into days. */
static inline int32_t sl_days_from_ms(int64_t ms)
{
	int64_t d = ms / 86400000;
	if (ms % 86400000 < 0)
		d--;
	return (int32_t)d;
}

/* Shortest text that reads back as the same double ("123" for 123.0, "0.1" for 0.1), like JSON writers do.
 * SL_EINVAL for NaN and infinities, which JSON cannot carry. out needs 32 bytes. */
int sl_double_format(double d, char out[32]);

#endif
