/* A cache of schema readers by registry id, shared by the Avro and the Protobuf wire decoders. A topic mostly carries
 * one id, so the entry used last is tried first; an id the registry does not know, or whose schema cannot serve as a
 * writer schema, is remembered as bad for a few seconds (its records go to the dead-letter topic with the reason, and
 * the registry is not asked again for each of them); a registry that does not answer is not remembered (the record is
 * retried, not dead-lettered). What a reader is, how it is fetched and built, is the format's business. */
#ifndef SL_CODEC_IDCACHE_H
#define SL_CODEC_IDCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* Fetches id's schema from the registry and builds a reader for it into *reader. Returns 0, or an error with err set:
 * *transient = true when the registry could not be asked (not this id's fault; nothing is remembered), else the id is
 * bad (unknown, another schema type, unreadable) and the error is remembered. */
typedef int (*sl_idcache_build_fn)(void *ctx, int32_t id, void **reader, bool *transient, struct sl_err *err);
typedef void (*sl_idcache_free_fn)(void *reader);

struct sl_idcache_entry;
struct sl_idcache {
	sl_idcache_build_fn build;
	sl_idcache_free_fn free_reader;
	void *ctx;
	struct sl_idcache_entry *e;
	size_t n, cap, last;
};

void sl_idcache_init(struct sl_idcache *c, sl_idcache_build_fn build, sl_idcache_free_fn free_reader, void *ctx);
/* Frees every reader and the entries (the struct itself is the caller's). */
void sl_idcache_clear(struct sl_idcache *c);
/* The reader for id, built on first use: 0 with *reader set, or an error naming the id (a remembered bad id gives
 * its reason again). */
int sl_idcache_get(struct sl_idcache *c, int32_t id, void **reader, struct sl_err *err);

#endif
