/* The identifier validator (core/ident.h): each kind's character set, the path rules and the length bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/ident.h"
#include "pipeline/pipeline.h"
#include "scheduler/sched.h"

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

/* The config loader checks names where they enter, at file:line. */
static const char base_cfg[] = "data_dir: /tmp/x\n"
			       "pipelines:\n"
			       "  %s:\n"
			       "    source: { type: generate, count: 1 }\n"
			       "    topic: %s\n"
			       "    key: id\n"
			       "    mapping: { id: login.uuid }\n"
			       "    sink: { keyspace: %s, table: t, primary_key: [id] }\n"
			       "dags:\n"
			       "  %s:\n"
			       "    tasks:\n"
			       "      %s: { kind: shell, command: 'true' }\n";

static int load(const char *pipe, const char *topic, const char *ks, const char *dag, const char *task, char *msg)
{
	char path[] = "/tmp/sluice-ident-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	FILE *fp = fdopen(fd, "w");
	fprintf(fp, base_cfg, pipe, topic, ks, dag, task);
	fclose(fp);
	struct sl_conf c;
	struct sl_err e = {0};
	int rc = sl_conf_load(path, &c, &e);
	if (!rc) {
		struct sl_dag *d = NULL;
		size_t n = 0;
		rc = sl_sched_dags_load(c.dags, &d, &n, &e);
		sl_sched_dags_free(d, n);
		sl_conf_free(&c);
	}
	snprintf(msg, SL_ERR_MSG_MAX, "%s", e.msg);
	unlink(path);
	return rc;
}

static void test_config_names(void **state)
{
	(void)state;
	char msg[SL_ERR_MSG_MAX];
	assert_int_equal(load("users", "users.raw", "ks", "etl", "say", msg), 0);
	assert_int_equal(load("us/ers", "users.raw", "ks", "etl", "say", msg), SL_ECONFIG);
	assert_non_null(strstr(msg, ":3: pipelines: pipeline name 'us/ers'"));
	assert_int_equal(load("users", "users:raw", "ks", "etl", "say", msg), SL_ECONFIG);
	assert_non_null(strstr(msg, ":5:")), assert_non_null(strstr(msg, "topic name 'users:raw'"));
	assert_int_equal(load("users", "users", "../ks", "etl", "say", msg), SL_ECONFIG);
	assert_non_null(strstr(msg, "sink.keyspace: table name '../ks'"));
	assert_int_equal(load("users", "users", "ks", "'../../x'", "say", msg), SL_ECONFIG);
	assert_non_null(strstr(msg, ":10: dags: DAG id '../../x'"));
	assert_int_equal(load("users", "users", "ks", "etl", "'a b'", msg), SL_ECONFIG);
	assert_non_null(strstr(msg, ":12: dags.etl.tasks: task id 'a b'"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_run_ids),
		cmocka_unit_test(test_dag_task_pipeline),
		cmocka_unit_test(test_topics_tables),
		cmocka_unit_test(test_subjects),
		cmocka_unit_test(test_config_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
