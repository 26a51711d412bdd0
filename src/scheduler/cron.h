/* Schedules: 5-field cron expressions (Vixie semantics: lists, ranges, steps, month and weekday names, day-of-month
 * OR day-of-week when both are restricted), the presets @yearly @annually @monthly @weekly @daily @midnight @hourly,
 * and fixed intervals ("every 15m", "@every 1h", or interval: in a DAG) anchored at a start instant.
 *
 * Next fire times are computed in a time zone the way croniter does, so a croniter-based oracle (and Airflow users'
 * intuition) agree: a cron fires at every instant whose local wall time matches, so a wall time repeated by a DST
 * overlap fires twice; a matching wall time skipped by a DST gap fires once, at the instant the gap ends. */
#ifndef SL_SCHED_CRON_H
#define SL_SCHED_CRON_H

#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"
#include "scheduler/tz.h"

struct sl_cron {
	bool interval;        /* fixed interval rather than cron fields */
	int64_t interval_s;   /* > 0 when interval */
	uint64_t minute;      /* bit i: minute i */
	uint32_t hour;        /* bit i: hour i */
	uint32_t dom;         /* bit i: day i (1..31) */
	uint16_t month;       /* bit i: month i (1..12) */
	uint8_t dow;          /* bit i: weekday i (0 = Sunday) */
	bool dom_star, dow_star; /* the field was '*' or '?': unrestricted for the OR rule */
	char text[128];       /* the expression as given, for messages */
};

/* Parses expr: a cron expression, a preset, "every <duration>" or "@every <duration>" (durations as in the config:
 * 30s, 15m, 1h, 1d). Fails with a message naming the expression and the offending field. */
int sl_cron_parse(struct sl_cron *c, const char *expr, struct sl_err *err);
/* The first fire time strictly after `after` (seconds since the epoch), computed in tz (NULL = UTC). Intervals fire at
 * anchor + k*interval. Returns 0 and sets *next, or SL_ENOTFOUND when the expression never fires (e.g. 31 2 *). */
int sl_cron_next(const struct sl_cron *c, const struct sl_tz *tz, int64_t anchor, int64_t after, int64_t *next);
/* The last fire time strictly before `before`, or SL_ENOTFOUND. */
int sl_cron_prev(const struct sl_cron *c, const struct sl_tz *tz, int64_t anchor, int64_t before, int64_t *prev);

#endif
