/* Consumer-group status the way Burrow evaluates it: over a sliding window of the last N commits of a partition
 * (offset, lag at that moment, time), a partition is OK while it keeps up, WARN when its lag never falls, STALL when it
 * commits the same offset while lagging, STOP when it stopped committing for longer than the window spans, REWIND
 * when a commit went back. A group is as bad as its worst partition. */
#include <string.h>

#include "console/internal.h"

void sl_burrow_init(struct sl_burrow_window *w, size_t cap)
{
	memset(w, 0, sizeof *w);
	w->cap = cap < 2 ? 2 : (cap > SL_BURROW_MAX ? SL_BURROW_MAX : cap);
}

void sl_burrow_push(struct sl_burrow_window *w, int64_t offset, int64_t lag, int64_t ts_ms)
{
	if (w->cap == 0)
		sl_burrow_init(w, 10);
	if (w->n == w->cap) {
		memmove(&w->c[0], &w->c[1], (w->n - 1) * sizeof w->c[0]);
		w->n--;
	}
	w->c[w->n++] = (struct sl_burrow_commit){offset, lag < 0 ? 0 : lag, ts_ms};
}

enum sl_burrow_status sl_burrow_eval(const struct sl_burrow_window *w, int64_t current_lag, int64_t now_ms)
{
	if (current_lag <= 0)
		return SL_BURROW_OK;
	if (w->n == 0)
		return SL_BURROW_STOP;
	/* Stopped comes first, as in Burrow's evaluator: a consumer that caught up and then died keeps zero-lag
	 * commits in its window forever, and must not look OK for it. */
	const struct sl_burrow_commit *first = &w->c[0], *last = &w->c[w->n - 1];
	if (now_ms - last->ts_ms > last->ts_ms - first->ts_ms)
		return SL_BURROW_STOP;
	for (size_t i = 0; i < w->n; i++)
		if (w->c[i].lag == 0)
			return SL_BURROW_OK; /* it caught up within the window */
	for (size_t i = 1; i < w->n; i++)
		if (w->c[i].offset < w->c[i - 1].offset)
			return SL_BURROW_REWIND;
	bool moved = false;
	for (size_t i = 1; i < w->n; i++)
		if (w->c[i].offset != w->c[i - 1].offset)
			moved = true;
	if (!moved)
		return SL_BURROW_STALL;
	for (size_t i = 1; i < w->n; i++)
		if (w->c[i].lag < w->c[i - 1].lag)
			return SL_BURROW_OK;
	return SL_BURROW_WARN;
}

const char *sl_burrow_name(enum sl_burrow_status s)
{
	switch (s) {
	case SL_BURROW_OK: return "OK";
	case SL_BURROW_WARN: return "WARN";
	case SL_BURROW_STALL: return "STALL";
	case SL_BURROW_STOP: return "STOP";
	case SL_BURROW_REWIND: return "REWIND";
	}
	return "?";
}
