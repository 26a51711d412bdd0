/* The JSON form of a typed record, as it travels on JSON topics (the seed's `users_created` carries exactly this):
 * one object with the schema's columns in order, uuid as canonical text, timestamp as ISO-8601 UTC with milliseconds
 * ("2024-01-02T03:04:05.678Z"), date as "YYYY-MM-DD", doubles in their shortest exact form, null for a missing value.
 * Decoding validates a payload against a schema: wrong types and missing required columns are errors naming the
 * column; columns the schema does not know are ignored, so producers can add fields before consumers know them. */
#ifndef SL_RECORD_JSON_H
#define SL_RECORD_JSON_H

#include <stddef.h>

#include "codec/json.h"
#include "core/arena.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/record.h"

/* Appends the record as one JSON object. Fails (SL_EINVAL, naming the column) only for values JSON cannot carry:
 * NaN or infinite doubles, timestamps and dates outside years 0000..9999. */
int sl_record_to_json(const struct sl_record *r, struct sl_buf *out, struct sl_err *err);

/* Fills r (bound to s, values and strings in a) from a parsed JSON object. Strings are copied into the arena, so the
 * record outlives the parser's next document. */
int sl_record_from_json(struct sl_record *r, const struct sl_schema *s, struct sl_json_val obj, struct sl_arena *a,
			struct sl_err *err);

/* Parses buf with p, then sl_record_from_json. */
int sl_record_decode_json(struct sl_record *r, const struct sl_schema *s, struct sl_json_parser *p, const char *buf,
			  size_t len, struct sl_arena *a, struct sl_err *err);

#endif
