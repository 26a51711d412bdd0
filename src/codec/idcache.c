/* Schema readers by registry id (see idcache.h): the lookup, the bad-id memory and the growth of the entries. */
#include "codec/idcache.h"

#include <stdio.h>
#include <stdlib.h>

#include "core/assert.h"
#include "core/clock.h"

/* How long an unknown or unreadable id is believed bad before the registry is asked again. */
#define BAD_ID_SECONDS 5.0

struct sl_idcache_entry {
	int32_t id;
	void *reader;                /* NULL: a bad id, see why */
	char why[SL_ERR_MSG_MAX];
	int why_code;
	double at;                   /* sl_mono_s() when built or found bad */
};

void sl_idcache_init(struct sl_idcache *c, sl_idcache_build_fn build, sl_idcache_free_fn free_reader, void *ctx)
{
	*c = (struct sl_idcache){.build = build, .free_reader = free_reader, .ctx = ctx};
}

void sl_idcache_clear(struct sl_idcache *c)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->e[i].reader)
			c->free_reader(c->e[i].reader);
	free(c->e);
	c->e = NULL;
	c->n = c->cap = c->last = 0;
}

static struct sl_idcache_entry *find(struct sl_idcache *c, int32_t id)
{
	if (c->n && c->e[c->last].id == id)
		return &c->e[c->last];
	for (size_t i = 0; i < c->n; i++)
		if (c->e[i].id == id) {
			c->last = i;
			return &c->e[i];
		}
	return NULL;
}

int sl_idcache_get(struct sl_idcache *c, int32_t id, void **reader, struct sl_err *err)
{
	struct sl_idcache_entry *e = find(c, id);
	if (e && (e->reader || sl_mono_s() - e->at < BAD_ID_SECONDS)) {
		*reader = e->reader;
		return e->reader ? 0 : sl_err_set(err, e->why_code, "%s", e->why);
	}
	void *rd = NULL;
	bool transient = false;
	struct sl_err berr = {0};
	int rc = c->build(c->ctx, id, &rd, &transient, &berr);
	if (rc && transient)
		return sl_err_set(err, rc, "%s", berr.msg);
	if (!e) {
		if (c->n == c->cap) {
			size_t nc = c->cap ? c->cap * 2 : 8;
			struct sl_idcache_entry *ne = realloc(c->e, nc * sizeof *ne);
			if (!ne) {
				if (rd)
					c->free_reader(rd);
				return sl_err_set(err, SL_ENOMEM, "out of memory");
			}
			c->e = ne;
			c->cap = nc;
		}
		e = &c->e[c->n];
		c->last = c->n++;
	} else {
		SL_ASSERT(!e->reader); /* only a bad id is asked again */
	}
	e->id = id;
	e->reader = rc ? NULL : rd;
	e->at = sl_mono_s();
	e->why_code = rc;
	e->why[0] = 0;
	if (rc) {
		if (rd)
			c->free_reader(rd);
		snprintf(e->why, sizeof e->why, "%s", berr.msg);
		return sl_err_set(err, rc, "%s", e->why);
	}
	*reader = rd;
	return 0;
}
