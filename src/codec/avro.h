/* Avro on the stream: typed records in Confluent's wire format (byte 0x00, the schema id as a big-endian int32, the
 * Avro binary datum), so Confluent's serializers and sluice read each other's topics.
 *
 * Writing uses the Avro schema derived from the pipeline's mapping schema (sl_avro_schema_for). Reading takes any
 * writer schema (fetched by id through the caller's function, cached) and resolves it into the mapping schema with
 * Avro's rules, by field name: promotions int->long->float->double, string<->bytes, a column the writer lacks is null,
 * writer-only fields are skipped whatever their type, unions pick their branch per datum. The decoder is sluice's
 * own: every varint, length, block count and nesting level is bounded by the bytes at hand, because the payload
 * comes from anyone who can write to the topic (avro-c 1.11.1 would hand a negative or huge length to malloc). */
#ifndef SL_CODEC_AVRO_H
#define SL_CODEC_AVRO_H

#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/record.h"

#define SL_AVRO_MAGIC 0x00
#define SL_AVRO_HEADER 5

/* The Avro schema (JSON text) of a mapping schema: a record named name (made a valid Avro name), its columns in
 * order: text->string, int->int, bigint->long, double->double, boolean->boolean, uuid->string/uuid,
 * timestamp->long/timestamp-millis, date->int/date; a column that is not required is ["null", T] with default null. */
int sl_avro_schema_for(const struct sl_schema *s, const char *name, struct sl_buf *out, struct sl_err *err);

/* Appends rec in the wire format with schema_id (the id of sl_avro_schema_for(rec->schema)). A required column
 * without a value is SL_EINVAL naming it. */
int sl_avro_encode(const struct sl_record *rec, int32_t schema_id, struct sl_buf *out, struct sl_err *err);

/* Reads the 5-byte header: SL_EINVAL "Unknown magic byte!" when the first byte is not 0, or the value too short. */
int sl_avro_wire_header(const void *p, size_t n, int32_t *schema_id, struct sl_err *err);

/* A writer schema resolved into a reader (mapping) schema. */
struct sl_avro_reader;
/* SL_EINVAL when the text is no Avro schema, its root is not a record, or a field the reader has cannot be read as
 * the column's type (the message names the field and both types). reader NULL: the writer schema alone (any root
 * type), for sl_avro_to_json. */
int sl_avro_reader_new(const char *writer_schema, const struct sl_schema *reader, struct sl_avro_reader **out,
		       struct sl_err *err);
void sl_avro_reader_free(struct sl_avro_reader *rd);
/* Decodes one Avro binary datum (no header) into rec (bound to the reader schema; values from a). Text values
 * point into p, which must outlive rec. Every byte must be consumed. */
int sl_avro_decode(const struct sl_avro_reader *rd, const void *p, size_t n, struct sl_record *rec,
		   struct sl_arena *a, struct sl_err *err);

/* Renders one datum (no header) as JSON with the reader's writer schema: records as objects in field order, a
 * union as its branch's value (unwrapped, unlike Avro's JSON encoding, so the text reads like the record), enums as
 * their symbol, bytes and fixed as strings of code points 0-255, NaN and infinities as strings. Bounded like
 * sl_avro_decode; every byte must be consumed. On error out is left as it was. */
int sl_avro_to_json(const struct sl_avro_reader *rd, const void *p, size_t n, struct sl_buf *out, struct sl_err *err);

/* How a cache gets the writer schema of an id it has not seen: the canonical text and type ("AVRO", "JSON"), both
 * malloc'd; SL_ENOTFOUND for an unknown id, other errors when the registry could not be asked. The pipeline passes
 * the registry client's fetch (registry.h), the console its own. */
typedef int (*sl_avro_fetch_fn)(void *ctx, int id, char **schema, char **type, struct sl_err *err);

/* Readers by schema id, built on first use (reader NULL: for sl_avro_cache_json). Unknown ids are remembered for a few seconds so a stream of poison
 * records does not become a stream of registry lookups. */
struct sl_avro_cache;
int sl_avro_cache_new(sl_avro_fetch_fn fetch, void *ctx, const struct sl_schema *reader, struct sl_avro_cache **out,
		      struct sl_err *err);
void sl_avro_cache_free(struct sl_avro_cache *c);
/* Decodes a whole wire-format value. SL_EINVAL/SL_ENOTFOUND/SL_ETYPE: this record is bad (dead-letter it, the
 * message says why); other errors: the registry could not be asked (retry later). */
int sl_avro_cache_decode(struct sl_avro_cache *c, const void *p, size_t n, struct sl_record *rec, struct sl_arena *a,
			 struct sl_err *err);
/* A whole wire-format value as JSON (sl_avro_to_json), appended to out; *schema_id gets the header's id. Errors as
 * sl_avro_cache_decode. */
int sl_avro_cache_json(struct sl_avro_cache *c, const void *p, size_t n, int32_t *schema_id, struct sl_buf *out,
		       struct sl_err *err);

#endif
