/* Arena: a bump allocator for everything that lives as long as one batch (records, their strings, decode scratch).
 * Allocation is a pointer bump; sl_arena_reset() frees the batch in O(chunks) and keeps the first chunk for reuse,
 * so a steady stream allocates nothing from malloc on the hot path. */
#ifndef SL_ARENA_H
#define SL_ARENA_H

#include <stddef.h>

struct sl_arena_chunk;

struct sl_arena {
	struct sl_arena_chunk *head;  /* current chunk; older chunks linked behind it */
	size_t chunk_size;            /* default size of a new chunk */
	size_t used_bytes;            /* bytes handed out since the last reset (for metrics and limits) */
};

void sl_arena_init(struct sl_arena *a, size_t chunk_size);
/* Returns 16-byte-aligned memory, or NULL when malloc fails. */
void *sl_arena_alloc(struct sl_arena *a, size_t n);
void *sl_arena_memdup(struct sl_arena *a, const void *p, size_t n);
/* NUL-terminated copy of n bytes. */
char *sl_arena_strndup(struct sl_arena *a, const char *s, size_t n);
void sl_arena_reset(struct sl_arena *a);
void sl_arena_free(struct sl_arena *a);

#endif
