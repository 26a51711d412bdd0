/* Time: wall-clock milliseconds (for timestamps), monotonic milliseconds and seconds (for durations), and absolute deadlines for
 * pthread_cond_timedwait, which every blocking wait with a timeout needs in the same shape. */
#ifndef SL_CLOCK_H
#define SL_CLOCK_H

#include <stdint.h>
#include <time.h>

int64_t sl_now_ms(void);
/* Monotonic time (CLOCK_MONOTONIC, unaffected by clock changes) for durations, timeouts and rates: every module's
 * one time base (scripts/checksrc refuses private ones), so fakes and probes need to replace only this. */
int64_t sl_mono_ms(void);
double sl_mono_s(void);
/* ts = now on clock clk + timeout_ms (the clock the condition variable waits on: CLOCK_REALTIME by default). */
void sl_deadline(struct timespec *ts, clockid_t clk, int timeout_ms);

#endif
