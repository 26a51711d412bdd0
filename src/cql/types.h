/* CQL value encodings shared inside src/cql: big-endian helpers, varint and duration coding, the collection
 * builder's encoder and type names. The public getters and builders are declared in cql.h. */
#ifndef SL_CQL_TYPES_H
#define SL_CQL_TYPES_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "cql/cql.h"

void sl_cql_put_be64(uint8_t *p, uint64_t v);
uint64_t sl_cql_get_be64(const uint8_t *p);
/* Minimal two's complement big-endian bytes of v (1..8); returns the length. */
size_t sl_cql_varint_from_int64(int64_t v, uint8_t out[8]);
/* SL_ETYPE when the varint is empty or wider than 8 bytes. */
int sl_cql_varint_to_int64(const uint8_t *p, size_t n, int64_t *out);
/* duration = three zig-zag vints (months, days, nanoseconds); returns the length. */
size_t sl_cql_duration_encode(uint8_t out[27], int32_t months, int32_t days, int64_t nanos);
/* Appends a builder's value (with the element count for list/set/map) to out. */
int sl_cql_coll_encode(const struct sl_cql_coll *c, struct sl_buf *out);
const char *sl_cql_type_id_name(int id);
void sl_cql_type_name_buf(struct sl_buf *b, const struct sl_cql_type *t);

/* Murmur3 x64-128 as Cassandra's Murmur3Partitioner computes it: the first 64 bits, tail bytes read as signed,
 * and Long.MIN_VALUE mapped to Long.MAX_VALUE. */
int64_t sl_cql_murmur3_token(const void *key, size_t len);
/* Routing key of a composite partition key: for each component, u16 length | bytes | 0x00. One component is
 * its bytes unchanged. */
int sl_cql_routing_key(struct sl_buf *out, const uint8_t *const *parts, const size_t *lens, int n);

#endif
