/* Time: wall-clock milliseconds (for timestamps), monotonic seconds (for durations), and absolute deadlines for
 * pthread_cond_timedwait, which every blocking wait with a timeout needs in the same shape. */
#ifndef SL_CLOCK_H
#define SL_CLOCK_H

#include <stdint.h>
#include <time.h>

int64_t sl_now_ms(void);
double sl_mono_s(void);
/* ts = now on clock clk + timeout_ms (the clock the condition variable waits on: CLOCK_REALTIME by default). */
void sl_deadline(struct timespec *ts, clockid_t clk, int timeout_ms);

#endif
