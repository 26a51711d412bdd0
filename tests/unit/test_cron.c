/* Cron parsing and next-fire times: fields, names, steps, presets, intervals, the day-of-month/day-of-week OR rule,
 * time zones and DST (croniter semantics; tests/integration/test_cron_oracle.py checks thousands more against it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "scheduler/cron.h"

static int64_t at(int y, int mo, int d, int h, int mi) /* UTC */
{
	return sl_tz_days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60;
}

static int64_t next_in(const char *expr, const char *zone, int64_t after)
{
	struct sl_cron c;
	struct sl_err err = {0};
	struct sl_tz *tz = NULL;
	assert_int_equal(sl_cron_parse(&c, expr, &err), 0);
	assert_int_equal(sl_tz_load(zone, &tz, &err), 0);
	int64_t n = -1;
	int rc = sl_cron_next(&c, tz, 0, after, &n);
	sl_tz_free(tz);
	return rc ? -1 : n;
}

static void test_fields(void **state)
{
	(void)state;
	struct sl_cron c;
	struct sl_err err = {0};
	assert_int_equal(sl_cron_parse(&c, "5,10-20/5 */6 1,15 jan-mar MON-fri", &err), 0);
	assert_true(c.minute == (1ull << 5 | 1ull << 10 | 1ull << 15 | 1ull << 20));
	assert_int_equal(c.hour, 1u << 0 | 1u << 6 | 1u << 12 | 1u << 18);
	assert_int_equal(c.dom, 1u << 1 | 1u << 15);
	assert_int_equal(c.month, 1u << 1 | 1u << 2 | 1u << 3);
	assert_int_equal(c.dow, 0x3e);
	assert_int_equal(sl_cron_parse(&c, "0 0 * * 7", &err), 0);
	assert_int_equal(c.dow, 1); /* 7 is Sunday */
	assert_int_equal(sl_cron_parse(&c, "0 0 * * 5/2", &err), 0);
	assert_int_equal(c.dow, 1u << 5); /* a/s runs to the field's end: 5, then 7 = Sunday is past sat */
	assert_int_equal(sl_cron_parse(&c, "@daily", &err), 0);
	assert_int_equal(c.minute, 1);
	assert_int_equal(c.hour, 1);
	assert_true(c.dom_star && c.dow_star);
	assert_string_equal(c.text, "@daily");
}

static void test_errors(void **state)
{
	(void)state;
	struct sl_cron c;
	struct sl_err err = {0};
	const char *bad[] = {"60 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *", "* * * * 8", "* * *",
			     "* * * * * *", "5-1 * * * *", "*/0 * * * *", "@fortnightly", "every 0s", "every 10ms",
			     "a * * * *", "1, * * * *", "* * * foo *", "-1 * * * *", "1-2-3 * * * *", ""};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		assert_int_not_equal(sl_cron_parse(&c, bad[i], &err), 0);
		assert_non_null(strstr(err.msg, "schedule"));
	}
	assert_int_not_equal(sl_cron_parse(&c, "61 * * * *", &err), 0);
	assert_non_null(strstr(err.msg, "minute field '61'"));
	struct sl_tz *tz;
	assert_int_equal(sl_tz_load("No/Such_Zone", &tz, &err), SL_ENOTFOUND);
	assert_non_null(strstr(err.msg, "No/Such_Zone"));
	assert_int_equal(sl_tz_load("../etc/passwd", &tz, &err), SL_EINVAL);
}

static void test_next_utc(void **state)
{
	(void)state;
	int64_t t = at(2024, 1, 1, 12, 0); /* a Monday */
	assert_int_equal(next_in("* * * * *", "UTC", t), t + 60);
	assert_int_equal(next_in("* * * * *", "UTC", t + 30), t + 60);
	assert_int_equal(next_in("@hourly", "UTC", t), at(2024, 1, 1, 13, 0));
	assert_int_equal(next_in("@daily", "UTC", t), at(2024, 1, 2, 0, 0));
	assert_int_equal(next_in("@weekly", "UTC", t), at(2024, 1, 7, 0, 0));
	assert_int_equal(next_in("@monthly", "UTC", t), at(2024, 2, 1, 0, 0));
	assert_int_equal(next_in("@yearly", "UTC", t), at(2025, 1, 1, 0, 0));
	assert_int_equal(next_in("0 0 29 2 *", "UTC", at(2024, 3, 1, 0, 0)), at(2028, 2, 29, 0, 0));
	assert_int_equal(next_in("0 0 31 2 *", "UTC", t), -1);
	/* Both day fields restricted: either matches (the 13th or any Friday). */
	assert_int_equal(next_in("0 0 13 * fri", "UTC", t), at(2024, 1, 5, 0, 0));
	assert_int_equal(next_in("0 0 13 * fri", "UTC", at(2024, 1, 12, 0, 0)), at(2024, 1, 13, 0, 0));
	/* One restricted: both must match. */
	assert_int_equal(next_in("0 0 * * fri", "UTC", t), at(2024, 1, 5, 0, 0));
	assert_int_equal(next_in("0 0 13 * *", "UTC", t), at(2024, 1, 13, 0, 0));
	/* croniter: a full day field counts as '*' when the other contains '*'. */
	assert_int_equal(next_in("0 0 1-31 * */3", "UTC", t), at(2024, 1, 3, 0, 0));
	assert_int_equal(next_in("0 0 1-31 * 1", "UTC", t), at(2024, 1, 2, 0, 0));
}

static void test_intervals(void **state)
{
	(void)state;
	struct sl_cron c;
	struct sl_err err = {0};
	assert_int_equal(sl_cron_parse(&c, "every 15m", &err), 0);
	assert_true(c.interval);
	assert_int_equal(c.interval_s, 900);
	int64_t n;
	assert_int_equal(sl_cron_next(&c, NULL, 1000, 0, &n), 0);
	assert_int_equal(n, 1000);
	assert_int_equal(sl_cron_next(&c, NULL, 1000, 1000, &n), 0);
	assert_int_equal(n, 1900);
	assert_int_equal(sl_cron_next(&c, NULL, 1000, 1899, &n), 0);
	assert_int_equal(n, 1900);
	assert_int_equal(sl_cron_prev(&c, NULL, 1000, 1900, &n), 0);
	assert_int_equal(n, 1000);
	assert_int_equal(sl_cron_prev(&c, NULL, 1000, 1000, &n), SL_ENOTFOUND);
	assert_int_equal(sl_cron_parse(&c, "@every 1h", &err), 0);
	assert_int_equal(c.interval_s, 3600);
}

static void test_prev(void **state)
{
	(void)state;
	struct sl_cron c;
	struct sl_err err = {0};
	int64_t p;
	assert_int_equal(sl_cron_parse(&c, "@daily", &err), 0);
	assert_int_equal(sl_cron_prev(&c, NULL, 0, at(2024, 1, 2, 0, 0), &p), 0);
	assert_int_equal(p, at(2024, 1, 1, 0, 0));
	assert_int_equal(sl_cron_parse(&c, "@yearly", &err), 0);
	assert_int_equal(sl_cron_prev(&c, NULL, 0, at(2024, 6, 2, 0, 0), &p), 0);
	assert_int_equal(p, at(2024, 1, 1, 0, 0));
}

static void test_dst(void **state)
{
	(void)state;
	/* Paris, spring forward 2024-03-31 02:00 CET -> 03:00 CEST: 02:30 never happens, so it fires at 03:00 CEST. */
	assert_int_equal(next_in("30 2 * * *", "Europe/Paris", at(2024, 3, 30, 11, 0)), at(2024, 3, 31, 1, 0));
	assert_int_equal(next_in("30 2 * * *", "Europe/Paris", at(2024, 3, 31, 1, 0)), at(2024, 4, 1, 0, 30));
	/* Autumn: 02:30 happens twice (CEST then CET), and fires twice. */
	assert_int_equal(next_in("30 2 * * *", "Europe/Paris", at(2024, 10, 26, 12, 0)), at(2024, 10, 27, 0, 30));
	assert_int_equal(next_in("30 2 * * *", "Europe/Paris", at(2024, 10, 27, 0, 30)), at(2024, 10, 27, 1, 30));
	/* New York daily at midnight stays at local midnight across the change. */
	assert_int_equal(next_in("@daily", "America/New_York", at(2024, 3, 10, 4, 59)), at(2024, 3, 10, 5, 0));
	assert_int_equal(next_in("@daily", "America/New_York", at(2024, 3, 10, 5, 0)), at(2024, 3, 11, 4, 0));
	/* Past the table's end (2037) the POSIX footer rule applies. */
	assert_int_equal(next_in("@daily", "Europe/Paris", at(2050, 7, 1, 12, 0)), at(2050, 7, 1, 22, 0));
	assert_int_equal(next_in("@daily", "Europe/Paris", at(2050, 12, 1, 12, 0)), at(2050, 12, 1, 23, 0));
	struct sl_tz *tz;
	struct sl_err err = {0};
	assert_int_equal(sl_tz_load("Asia/Kolkata", &tz, &err), 0);
	assert_int_equal(sl_tz_offset(tz, at(2024, 1, 1, 0, 0)), 19800);
	assert_int_equal(sl_tz_next_transition(tz, at(2024, 1, 1, 0, 0)), INT64_MAX);
	sl_tz_free(tz);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fields), cmocka_unit_test(test_errors), cmocka_unit_test(test_next_utc),
		cmocka_unit_test(test_intervals), cmocka_unit_test(test_prev), cmocka_unit_test(test_dst),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
