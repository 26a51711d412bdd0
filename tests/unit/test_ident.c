/* The identifier validator (core/ident.h): each kind's character set, the path rules and the length bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/ident.h"

static int check(enum sl_ident_kind k, const char *s)
{
	struct sl_err e = {0};
	return sl_ident_check(k, s, strlen(s), &e);
}

static void test_run_ids(void **state)
{
	(void)state;
	assert_int_equal(check(SL_IDENT_RUN, "manual__2024-01-01T00:00:00+00:00"), 0);
	assert_int_equal(check(SL_IDENT_RUN, "scheduled__2024-01-01T06:00:00+00:00"), 0);
	assert_int_equal(check(SL_IDENT_RUN, "backfill__2024-01-01T00:00:00+00:00"), 0);
	assert_int_equal(check(SL_IDENT_RUN, "my-run.v1~x@host"), 0);
	assert_int_equal(check(SL_IDENT_RUN, "../../../../../../tmp/x"), SL_EINVAL);
	assert_int_equal(check(SL_IDENT_RUN, "a/b"), SL_EINVAL);
	assert_int_equal(check(SL_IDENT_RUN, "a..b"), SL_EINVAL);
	assert_int_equal(check(SL_IDENT_RUN, ".."), SL_EINVAL);
	assert_int_equal(check(SL_IDENT_RUN, "."), SL_EINVAL);
	assert_int_equal(check(SL_IDENT_RUN, "x\",\"evil\":\"1"), SL_EINVAL);
	assert_int_equal(check(SL_IDENT_RUN, "x\r\nSet-Cookie: a"), SL_EINVAL);
	assert_int_equal(check(SL_IDENT_RUN, "a\\b"), SL_EINVAL);
	assert_int_equal(check(SL_IDENT_RUN, ""), SL_EINVAL);
	struct sl_err e = {0};
	assert_int_equal(sl_ident_check(SL_IDENT_RUN, "ab\0cd", 5, &e), SL_EINVAL); /* NUL inside the length */
	assert_non_null(strstr(e.msg, "\\x00"));
	assert_non_null(strstr(e.msg, "run id"));
	char long_id[300];
	memset(long_id, 'a', sizeof long_id - 1);
	long_id[250] = 0;
	assert_int_equal(check(SL_IDENT_RUN, long_id), 0);
	long_id[250] = 'a';
	long_id[251] = 0;
	assert_int_equal(check(SL_IDENT_RUN, long_id), SL_EINVAL);
}

static void test_dag_task_pipeline(void **state)
{
	(void)state;
	for (enum sl_ident_kind k = SL_IDENT_DAG; k <= SL_IDENT_PIPELINE; k++) {
		if (k == SL_IDENT_RUN)
			continue;
		assert_int_equal(check(k, "users_etl-v2.daily"), 0);
		assert_int_equal(check(k, "a:b"), SL_EINVAL);
		assert_int_equal(check(k, "a b"), SL_EINVAL);
		assert_int_equal(check(k, "a/b"), SL_EINVAL);
		assert_int_equal(check(k, "a..b"), SL_EINVAL);
		assert_int_equal(check(k, "\xc3\xa9"), SL_EINVAL);
	}
	struct sl_err e = {0};
	assert_int_equal(sl_ident_check(SL_IDENT_DAG, "bad id", 6, &e), SL_EINVAL);
	assert_non_null(strstr(e.msg, "DAG id 'bad id' holds ' ' at 3"));
}

static void test_topics_tables(void **state)
{
	(void)state;
	assert_int_equal(check(SL_IDENT_TOPIC, "users.raw-v1_x"), 0);
	assert_int_equal(check(SL_IDENT_TOPIC, "a..b"), 0); /* Kafka allows it; topics are never paths */
	assert_int_equal(check(SL_IDENT_TOPIC, ".."), SL_EINVAL);
	assert_int_equal(check(SL_IDENT_TOPIC, "a:b"), SL_EINVAL);
	char t[260];
	memset(t, 'x', sizeof t);
	assert_int_equal(sl_ident_check(SL_IDENT_TOPIC, t, 249, NULL), 0);
	assert_int_equal(sl_ident_check(SL_IDENT_TOPIC, t, 250, NULL), SL_EINVAL);
	assert_int_equal(check(SL_IDENT_TABLE, "users_2024"), 0);
	assert_int_equal(check(SL_IDENT_TABLE, "users.x"), SL_EINVAL);
	assert_int_equal(check(SL_IDENT_TABLE, "../etc"), SL_EINVAL);
	assert_int_equal(sl_ident_check(SL_IDENT_TABLE, t, 48, NULL), 0);
	assert_int_equal(sl_ident_check(SL_IDENT_TABLE, t, 49, NULL), SL_EINVAL);
}

static void test_subjects(void **state)
{
	(void)state;
	assert_int_equal(check(SL_IDENT_SUBJECT, "users-value"), 0);
	assert_int_equal(check(SL_IDENT_SUBJECT, ":.ctx:users-value"), 0);
	assert_int_equal(check(SL_IDENT_SUBJECT, "com.example/User value?x=%y"), 0);
	assert_int_equal(check(SL_IDENT_SUBJECT, "caf\xc3\xa9"), 0);
	assert_int_equal(sl_ident_check(SL_IDENT_SUBJECT, "a\0b", 3, NULL), SL_EINVAL);
	assert_int_equal(check(SL_IDENT_SUBJECT, "a\nb"), SL_EINVAL);
	assert_int_equal(check(SL_IDENT_SUBJECT, "a\x7f"), SL_EINVAL);
	char s[600];
	memset(s, 's', sizeof s);
	assert_int_equal(sl_ident_check(SL_IDENT_SUBJECT, s, 512, NULL), 0);
	assert_int_equal(sl_ident_check(SL_IDENT_SUBJECT, s, 513, NULL), SL_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_run_ids),
		cmocka_unit_test(test_dag_task_pipeline),
		cmocka_unit_test(test_topics_tables),
		cmocka_unit_test(test_subjects),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
