/* PasswordAuthenticator (SASL PLAIN) against the cassandra-auth node of tests/services (127.0.0.1:9142, superuser
 * cassandra/cassandra): the right password connects and queries, with lz4 too; a wrong one and a missing one fail
 * with clear messages. When the node is not running the test starts it (`tests/services/run up cassandra-auth`)
 * and leaves it running for the next test; if it still does not answer, the test fails. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/log.h"
#include "cql/cql.h"

static const char *env_or(const char *k, const char *d)
{
	const char *v = getenv(k);
	return v && *v ? v : d;
}

static int try_connect(const char *user, const char *pw, bool lz4, struct sl_cql_session **s, struct sl_err *e)
{
	struct sl_cql_options o;
	sl_cql_options_init(&o);
	o.contact_points = env_or("SL_CASSANDRA_HOST", "127.0.0.1");
	o.port = atoi(env_or("SL_CASSANDRA_AUTH_PORT", "9142"));
	o.username = user;
	o.password = pw;
	o.compression = lz4;
	o.connect_timeout_ms = 10000;
	return sl_cql_session_connect(s, &o, e);
}

static int setup(void **state)
{
	(void)state;
	sl_log_set_level(SL_LOG_WARN);
	struct sl_cql_session *s = NULL;
	struct sl_err e = {0};
	if (try_connect("cassandra", "cassandra", false, &s, &e) == 0) {
		sl_cql_session_close(s);
		return 0;
	}
	const char *src = getenv("SL_SOURCE_DIR");
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "bash '%s/tests/services/run' up cassandra-auth >&2", src ? src : ".");
	fprintf(stderr, "cassandra-auth not answering (%s); starting it: %s\n", e.msg, cmd);
	if (system(cmd) != 0)
		fprintf(stderr, "starting cassandra-auth failed\n");
	return 0;
}

static void test_auth_success(void **state)
{
	(void)state;
	for (int lz4 = 0; lz4 <= 1; lz4++) {
		struct sl_cql_session *s = NULL;
		struct sl_err e = {0};
		if (try_connect("cassandra", "cassandra", lz4, &s, &e) != 0)
			fail_msg("login as cassandra on port %s failed: %s", env_or("SL_CASSANDRA_AUTH_PORT", "9142"), e.msg);
		struct sl_cql_result *r = NULL;
		assert_int_equal(sl_cql_session_query(s, "SELECT role, is_superuser FROM system_auth.roles WHERE role = 'cassandra'",
						      &r, &e),
				 0);
		assert_int_equal(sl_cql_result_row_count(r), 1);
		struct sl_cql_iter it;
		sl_cql_iter_init(&it, r);
		assert_true(sl_cql_iter_next(&it));
		bool su = false;
		assert_int_equal(sl_cql_value_bool(sl_cql_iter_value(&it, 1), &su), 0);
		assert_true(su);
		sl_cql_iter_free(&it);
		sl_cql_result_free(r);
		sl_cql_session_close(s);
	}
}

static void test_auth_failure(void **state)
{
	(void)state;
	struct sl_cql_session *s = NULL;
	struct sl_err e = {0};
	assert_int_equal(try_connect("cassandra", "wrong-password", false, &s, &e), SL_EAUTH);
	assert_null(s);
	assert_non_null(strstr(e.msg, "authentication failed"));
	assert_non_null(strstr(e.msg, "Bad credentials"));
	assert_non_null(strstr(e.msg, "127.0.0.1:9142"));
	/* The password never appears in the message. */
	assert_null(strstr(e.msg, "wrong-password"));
	e = (struct sl_err){0};
	assert_int_equal(try_connect(NULL, NULL, false, &s, &e), SL_EAUTH);
	assert_non_null(strstr(e.msg, "requires authentication"));
	assert_non_null(strstr(e.msg, "PasswordAuthenticator"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_auth_success),
		cmocka_unit_test(test_auth_failure),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
