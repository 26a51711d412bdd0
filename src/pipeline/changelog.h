/* A changelog partition read back into a state: the entries of a compacted topic arrive in the order they were
 * written, with keys repeated (compaction has not run yet, or runs behind) and tombstones (a value of NULL) for keys
 * that were dropped. The state is the newest value of each key that is not a tombstone; this module collects a
 * partition's entries and hands exactly those to a restore callback (sl_aggregate_restore). */
#ifndef SL_PIPELINE_CHANGELOG_H
#define SL_PIPELINE_CHANGELOG_H

#include <stddef.h>

struct sl_changelog_entry {
	void *k, *v; /* v NULL: a tombstone */
	size_t klen, vlen;
	size_t seq;
};

struct sl_changelog {
	struct sl_changelog_entry *e;
	size_t n, cap;
};

/* Adds one entry (copied), in read order. Returns 0 or SL_ENOMEM; the signature is a read_partition callback's. */
int sl_changelog_add(void *changelog, const void *k, size_t klen, const void *v, size_t vlen);
/* Hands fn the newest value of each key that is not a tombstone (in key order); stops at fn's first non-zero
 * return and returns it. */
int sl_changelog_apply(struct sl_changelog *l, int (*fn)(void *ctx, const void *k, size_t klen, const void *v,
							 size_t vlen),
		       void *ctx);
void sl_changelog_free(struct sl_changelog *l);

#endif
