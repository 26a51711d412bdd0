/* Time zones for the scheduler: IANA zones read from the system's TZif files (/usr/share/zoneinfo, or $TZDIR) into
 * a private table, so converting an instant never touches the process-wide TZ variable that localtime() shares with
 * every other thread. Past the file's last transition the POSIX rule in its footer takes over (slim tzdata files end
 * early and rely on it). */
#ifndef SL_SCHED_TZ_H
#define SL_SCHED_TZ_H

#include <stdint.h>

#include "core/err.h"

struct sl_tz;

/* Loads zone name ("Europe/Paris", "UTC"); NULL or "" means UTC. Fails naming the zone when no such file exists. */
int sl_tz_load(const char *name, struct sl_tz **out, struct sl_err *err);
void sl_tz_free(struct sl_tz *tz);
const char *sl_tz_name(const struct sl_tz *tz);
/* UTC offset in seconds in force at the instant t (seconds since the epoch). tz may be NULL (UTC). */
int32_t sl_tz_offset(const struct sl_tz *tz, int64_t t);
/* The first instant > t at which the offset changes, or INT64_MAX when it never does again. */
int64_t sl_tz_next_transition(const struct sl_tz *tz, int64_t t);

/* Proleptic Gregorian calendar helpers on "wall seconds" (a local time written as if it were UTC). */
int64_t sl_tz_days_from_civil(int64_t y, unsigned m, unsigned d);
void sl_tz_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d);

#endif
