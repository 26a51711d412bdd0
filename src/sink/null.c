/* The discarding sink (sink.type: discard): acknowledges every batch at once and keeps nothing. It measures the engine alone (consume, decode,
 * validate, batch, commit) without a database, the way Spark's `noop` format and Redpanda Connect's `drop` output
 * do in the benchmarks. */
#include <stdio.h>
#include <stdlib.h>

#include "sink/sink.h"

struct null_sink {
	struct sl_sink base;
	int64_t rows;
};

static int nl_prepare(struct sl_sink *s, const struct sl_schema *schema, struct sl_err *err)
{
	(void)s, (void)schema, (void)err;
	return 0;
}

static int nl_write(struct sl_sink *bs, struct sl_sink_batch *b, struct sl_err *err)
{
	struct null_sink *s = (struct null_sink *)bs;
	(void)err;
	s->rows += (int64_t)b->n;
	if (s->base.done)
		s->base.done(s->base.ctx, b, 0, NULL);
	return 0;
}

static int nl_poll(struct sl_sink *s, int timeout_ms)
{
	(void)s, (void)timeout_ms;
	return 0;
}

static int nl_stored_offset(struct sl_sink *s, const char *group, const char *topic, int32_t partition, int64_t *out)
{
	(void)s, (void)group, (void)topic, (void)partition, (void)out;
	return SL_ENOTFOUND;
}

static int64_t nl_count(struct sl_sink *bs, struct sl_err *err)
{
	(void)err;
	return ((struct null_sink *)bs)->rows; /* rows discarded by this process */
}

static void nl_destroy(struct sl_sink *s) { free(s); }

static const struct sl_sink_ops null_ops = {
	.prepare = nl_prepare,
	.write = nl_write,
	.poll = nl_poll,
	.stored_offset = nl_stored_offset,
	.count = nl_count,
	.destroy = nl_destroy,
};

int sl_sink_null_new(struct sl_sink **out, struct sl_err *err)
{
	struct null_sink *s = calloc(1, sizeof *s);
	if (!s)
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	s->base.ops = &null_ops;
	snprintf(s->base.where, sizeof s->base.where, "(the null sink keeps nothing)");
	*out = &s->base;
	return 0;
}
