/* Protobuf on the stream: typed records in Confluent's Protobuf wire format (byte 0x00, the schema id as a big-endian
 * int32, the message indexes as zigzag varints — a count then the path, or a single 0 for the first top-level
 * message — then the Protobuf binary message), so confluent-kafka's ProtobufSerializer/ProtobufDeserializer and
 * sluice read each other's topics.
 *
 * Writing uses the proto3 schema derived from the pipeline's mapping schema (sl_pbwire_schema_for). Reading takes any
 * writer schema (fetched by id, parsed by the libprotobuf shim into codec/protobuf.h's model, cached) and maps the
 * message the indexes name onto the mapping schema by field name. The decoder on the hot path is sluice's own and
 * works on the model only: every varint (<= 10 bytes), length (<= the bytes left), message index count (<= 64) and
 * nesting level is checked, groups are refused, and every byte must be consumed, because the payload comes from
 * anyone who can write to the topic. */
#ifndef SL_CODEC_PBWIRE_H
#define SL_CODEC_PBWIRE_H

#include <stddef.h>
#include <stdint.h>

#include "codec/avro.h"
#include "core/arena.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/record.h"

#define SL_PBWIRE_MAX_INDEXES 64

/* The .proto text (proto3) of a mapping schema: one message named name (made a valid identifier), field i+1 for
 * column i (its name made a valid identifier): text->string, int->int32, bigint->int64, double->double,
 * boolean->bool, uuid->string (canonical text), timestamp->google.protobuf.Timestamp, date->int32 (days since
 * 1970-01-01); a column that is neither required nor the key is `optional` (explicit presence: absent is null). */
int sl_pbwire_schema_for(const struct sl_schema *s, const char *name, struct sl_buf *out, struct sl_err *err);

/* Appends rec in the wire format with schema_id (of sl_pbwire_schema_for(rec->schema)), message indexes [0]. A
 * required column without a value is SL_EINVAL naming it. */
int sl_pbwire_encode(const struct sl_record *rec, int32_t schema_id, struct sl_buf *out, struct sl_err *err);

/* Reads the header: schema id, message indexes (idx gets up to SL_PBWIRE_MAX_INDEXES, *nidx their count) and the
 * header's length. SL_EINVAL "Unknown magic byte!" when the first byte is not 0, or a malformed or truncated header. */
int sl_pbwire_header(const void *p, size_t n, int32_t *schema_id, int *idx, size_t *nidx, size_t *hdrlen,
		     struct sl_err *err);

/* A writer schema (.proto text or base64 descriptor; imports among libprotobuf's well-known types) read into a
 * mapping schema. SL_EINVAL when the text is no valid schema. */
struct sl_pbwire_reader;
int sl_pbwire_reader_new(const char *writer_schema, const struct sl_schema *reader, struct sl_pbwire_reader **out,
			 struct sl_err *err);
void sl_pbwire_reader_free(struct sl_pbwire_reader *rd);
/* Decodes one Protobuf message (no header) of the message idx names into rec (bound to the reader schema; values
 * from a; text values point into p, which must outlive rec). A column matches the writer field of the same name;
 * writer fields no column has are skipped whatever their type; a column the writer lacks is null; an absent field
 * with implicit presence (proto3, no label) is its type's zero value. SL_ETYPE when a matched field cannot be read
 * as its column's type (a repeated field, a message other than google.protobuf.Timestamp, a number out of range),
 * SL_EINVAL for bytes that are not a valid message of that type. */
int sl_pbwire_decode(struct sl_pbwire_reader *rd, const int *idx, size_t nidx, const void *p, size_t n,
		     struct sl_record *rec, struct sl_arena *a, struct sl_err *err);

/* One file a writer schema imports, as its references resolve it: the import path and the file's text. */
struct sl_pbwire_dep {
	char *name;
	char *text;
};
void sl_pbwire_deps_free(struct sl_pbwire_dep *deps, size_t n);

/* How a cache gets the writer schema of an id it has not seen: as sl_avro_fetch_fn, plus the files its references
 * name, their own references included (malloc'd array and strings; *ndeps 0 when none). */
typedef int (*sl_pbwire_fetch_fn)(void *ctx, int id, char **schema, char **type, struct sl_pbwire_dep **deps,
				  size_t *ndeps, struct sl_err *err);

/* sl_pbwire_reader_new with the writer's imports among deps. */
int sl_pbwire_reader_new_deps(const char *writer_schema, const struct sl_pbwire_dep *deps, size_t ndeps,
			      const struct sl_schema *reader, struct sl_pbwire_reader **out, struct sl_err *err);

/* Readers by schema id (the type must be PROTOBUF), unknown ids remembered for a few seconds. Errors as
 * sl_avro_cache_decode: SL_EINVAL/SL_ENOTFOUND/SL_ETYPE mean this record is bad, others that the registry could not
 * be asked. */
struct sl_pbwire_cache;
int sl_pbwire_cache_new(sl_pbwire_fetch_fn fetch, void *ctx, const struct sl_schema *reader,
			struct sl_pbwire_cache **out, struct sl_err *err);
void sl_pbwire_cache_free(struct sl_pbwire_cache *c);
int sl_pbwire_cache_decode(struct sl_pbwire_cache *c, const void *p, size_t n, struct sl_record *rec,
			   struct sl_arena *a, struct sl_err *err);

/* A framed Protobuf value (header included) as JSON, with the writer schema s parsed from its id (codec/protobuf.h):
 * proto3's JSON mapping with the fields' declared names — 64-bit integers as strings, enums by name, bytes in
 * base64, google.protobuf.Timestamp as RFC 3339, maps as objects, absent fields left out; unknown fields skipped.
 * SL_EINVAL (naming the id, the message and the field) when the bytes are not a message of that type; out is left as
 * it was then. For showing records (the console), not for the hot path. */
struct sl_pb_schema;
int sl_pbwire_json(const struct sl_pb_schema *s, const void *p, size_t n, struct sl_buf *out, struct sl_err *err);

#endif
