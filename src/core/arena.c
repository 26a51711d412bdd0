/* Bump allocator (see arena.h). */
#include "core/arena.h"
#include "core/assert.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct sl_arena_chunk {
	struct sl_arena_chunk *prev;
	size_t size, used;
	_Alignas(16) unsigned char data[];
};

void sl_arena_init(struct sl_arena *a, size_t chunk_size)
{
	a->head = NULL;
	a->chunk_size = chunk_size ? chunk_size : 64 * 1024;
	a->used_bytes = 0;
}

void *sl_arena_alloc(struct sl_arena *a, size_t n)
{
	size_t need = (n + 15) & ~(size_t)15;
	if (need < n)
		return NULL;
	struct sl_arena_chunk *c = a->head;
	SL_ASSERT(a->chunk_size > 0);             /* sl_arena_init ran */
	SL_ASSERT(!c || c->used <= c->size);
	if (!c || c->size - c->used < need) {
		size_t size = need > a->chunk_size ? need : a->chunk_size;
		if (size > SIZE_MAX - sizeof *c)
			return NULL;
		c = malloc(sizeof *c + size);
		if (!c)
			return NULL;
		c->size = size;
		c->used = 0;
		c->prev = a->head;
		a->head = c;
	}
	void *p = c->data + c->used;
	c->used += need;
	a->used_bytes += need;
	SL_ASSERT(c->used <= c->size && ((uintptr_t)p & 15) == 0);
	return p;
}

void *sl_arena_memdup(struct sl_arena *a, const void *p, size_t n)
{
	SL_ASSERT(p || n == 0);
	void *d = sl_arena_alloc(a, n ? n : 1);
	if (d && n)
		memcpy(d, p, n);
	return d;
}

char *sl_arena_strndup(struct sl_arena *a, const char *s, size_t n)
{
	char *d = sl_arena_alloc(a, n + 1);
	if (d) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

void sl_arena_reset(struct sl_arena *a)
{
	/* Keep the oldest chunk of the default size; free the rest. */
	struct sl_arena_chunk *keep = NULL;
	for (struct sl_arena_chunk *c = a->head; c;) {
		struct sl_arena_chunk *prev = c->prev;
		if (!prev && c->size == a->chunk_size)
			keep = c;
		else
			free(c);
		c = prev;
	}
	if (keep) {
		SL_ASSERT(keep->size == a->chunk_size);
		keep->used = 0;
		keep->prev = NULL;
	}
	a->head = keep;
	a->used_bytes = 0;
}

void sl_arena_free(struct sl_arena *a)
{
	for (struct sl_arena_chunk *c = a->head; c;) {
		struct sl_arena_chunk *prev = c->prev;
		free(c);
		c = prev;
	}
	a->head = NULL;
	a->used_bytes = 0;
}
