/* Restoring a state from its changelog partition: collect the entries, keep the newest of each key, drop the keys
 * whose newest entry is a tombstone (changelog.h). Pure: the Kafka reading is the topic store's. */
#include "pipeline/changelog.h"

#include <stdlib.h>
#include <string.h>

#include "core/err.h"

int sl_changelog_add(void *changelog, const void *k, size_t klen, const void *v, size_t vlen)
{
	struct sl_changelog *l = changelog;
	if (!k || klen == 0)
		return SL_EINVAL; /* an entry without a key names no state entry */
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;
		struct sl_changelog_entry *ne = realloc(l->e, cap * sizeof *ne);
		if (!ne)
			return SL_ENOMEM;
		l->e = ne;
		l->cap = cap;
	}
	struct sl_changelog_entry *e = &l->e[l->n];
	e->k = malloc(klen);
	e->v = v ? malloc(vlen ? vlen : 1) : NULL;
	if (!e->k || (v && !e->v)) {
		free(e->k);
		free(e->v);
		return SL_ENOMEM;
	}
	memcpy(e->k, k, klen);
	if (v && vlen)
		memcpy(e->v, v, vlen);
	e->klen = klen;
	e->vlen = v ? vlen : 0;
	e->seq = l->n++;
	return 0;
}

/* By key, then by read order: the last entry of each run of equal keys is the newest. */
static int cmp_entry(const void *a, const void *b)
{
	const struct sl_changelog_entry *x = a, *y = b;
	size_t m = x->klen < y->klen ? x->klen : y->klen;
	int c = memcmp(x->k, y->k, m);
	if (c)
		return c;
	if (x->klen != y->klen)
		return x->klen < y->klen ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

int sl_changelog_apply(struct sl_changelog *l, int (*fn)(void *ctx, const void *k, size_t klen, const void *v,
							 size_t vlen),
		       void *ctx)
{
	if (l->n > 1)
		qsort(l->e, l->n, sizeof *l->e, cmp_entry);
	for (size_t i = 0; i < l->n; i++) {
		const struct sl_changelog_entry *e = &l->e[i];
		if (i + 1 < l->n && e->klen == l->e[i + 1].klen && !memcmp(e->k, l->e[i + 1].k, e->klen))
			continue; /* a newer entry of the key follows */
		if (!e->v)
			continue; /* the key was dropped */
		int rc = fn(ctx, e->k, e->klen, e->v, e->vlen);
		if (rc)
			return rc;
	}
	return 0;
}

void sl_changelog_free(struct sl_changelog *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->e[i].k);
		free(l->e[i].v);
	}
	free(l->e);
	memset(l, 0, sizeof *l);
}
