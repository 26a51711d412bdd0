/* libFuzzer target: the cron parser, then next/prev fire times of whatever parses, in a zone with DST. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scheduler/cron.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sl_tz *tz;
	static int loaded;
	if (!loaded) {
		struct sl_err e;
		loaded = 1;
		if (sl_tz_load("Europe/Paris", &tz, &e))
			tz = NULL;
	}
	if (size < 8 || size > 200)
		return 0;
	int64_t after;
	memcpy(&after, data, 8);
	after %= 4000000000LL; /* keep instants within the calendar the scheduler serves */
	char *s = malloc(size - 8 + 1);
	memcpy(s, data + 8, size - 8);
	s[size - 8] = 0;
	struct sl_cron c;
	struct sl_err err;
	if (sl_cron_parse(&c, s, &err) == 0) {
		int64_t n, p;
		if (sl_cron_next(&c, tz, 0, after, &n) == 0 && n <= after)
			abort();
		if (sl_cron_prev(&c, tz, 0, after, &p) == 0 && p >= after)
			abort();
	}
	free(s);
	return 0;
}
