/* core/httpauth: the Authorization check (bearer and basic, constant-time), secrets from the environment or a file,
 * the loopback rule, and the header a client sends, checked by the server side it is meant for. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/httpauth.h"

static void test_check(void **state)
{
	(void)state;
	struct sl_http_auth none = {0}, tok = {.token = "s3cret"}, both = {.token = "t", .user = "admin", .password = "s3cret"};
	struct sl_http_auth bas = {.user = "admin", .password = "s3cret"};
	assert_true(sl_http_auth_ok(&none, NULL));
	assert_true(sl_http_auth_ok(&none, "Bearer anything"));
	assert_false(sl_http_auth_ok(&tok, NULL));
	assert_false(sl_http_auth_ok(&tok, ""));
	assert_true(sl_http_auth_ok(&tok, "Bearer s3cret"));
	assert_true(sl_http_auth_ok(&tok, "bearer \t s3cret  "));
	assert_false(sl_http_auth_ok(&tok, "Bearer s3cre"));
	assert_false(sl_http_auth_ok(&tok, "Bearer s3cret2"));
	assert_false(sl_http_auth_ok(&tok, "Bearers3cret"));
	assert_false(sl_http_auth_ok(&tok, "Basic YWRtaW46czNjcmV0"));
	assert_true(sl_http_auth_ok(&bas, "Basic YWRtaW46czNjcmV0"));  /* admin:s3cret */
	assert_false(sl_http_auth_ok(&bas, "Basic YWRtaW46czNjcmV1")); /* admin:s3creu */
	assert_false(sl_http_auth_ok(&bas, "Basic cm9vdDpzM2NyZXQ=")); /* root:s3cret */
	assert_false(sl_http_auth_ok(&bas, "Basic YWRtaW4="));         /* no colon */
	assert_false(sl_http_auth_ok(&bas, "Basic !!!!"));
	assert_false(sl_http_auth_ok(&bas, "Basic YWRtaW46czNjcmV0=x"));
	assert_false(sl_http_auth_ok(&bas, "Bearer s3cret"));
	assert_true(sl_http_auth_ok(&both, "Bearer t"));
	assert_true(sl_http_auth_ok(&both, "Basic YWRtaW46czNjcmV0"));
	/* A header longer than the decode buffer is refused, not overrun. */
	char big[4096] = "Basic ";
	memset(big + 6, 'A', sizeof big - 7);
	assert_false(sl_http_auth_ok(&bas, big));
	unsigned char out[4];
	assert_int_equal(sl_http_auth_b64_decode("aGk", 3, out, sizeof out), 2);
	assert_int_equal(sl_http_auth_b64_decode("aGVsbG8=", 8, out, sizeof out), -1); /* 5 bytes do not fit in 4 */
	assert_true(sl_http_auth_ct_equal("abc", 3, "abc", 3));
	assert_false(sl_http_auth_ct_equal("abc", 3, "abcd", 4));
	assert_true(sl_http_auth_ct_equal("", 0, "", 0));
}

static void test_load_and_header(void **state)
{
	(void)state;
	struct sl_http_auth_conf c = {.token_env = "SL_TEST_AUTH_TOKEN", .user = "admin",
				      .password_env = "SL_TEST_AUTH_PW"};
	struct sl_http_auth a;
	struct sl_err err = {0};
	char *line;
	unsetenv("SL_TEST_AUTH_TOKEN");
	unsetenv("SL_TEST_AUTH_PW");
	assert_int_equal(sl_http_auth_load(&a, &c, "test", &err), 0);
	assert_false(sl_http_auth_on(&a));
	assert_int_equal(sl_http_auth_require(&a, &c, "127.0.0.1", "test", &err), 0);
	assert_int_equal(sl_http_auth_require(&a, &c, "::1", "test", &err), 0);
	assert_int_equal(sl_http_auth_require(&a, &c, "0.0.0.0", "test", &err), SL_ECONFIG);
	assert_non_null(strstr(err.msg, "SL_TEST_AUTH_TOKEN"));
	assert_int_equal(sl_http_auth_header(&c, &line, "test", &err), 0);
	assert_string_equal(line, "");
	free(line);

	/* Basic from the environment: the client's header passes the server's check. */
	setenv("SL_TEST_AUTH_PW", "pa:ss word", 1);
	assert_int_equal(sl_http_auth_load(&a, &c, "test", &err), 0);
	assert_true(sl_http_auth_on(&a));
	assert_int_equal(sl_http_auth_require(&a, &c, "0.0.0.0", "test", &err), 0);
	assert_int_equal(sl_http_auth_header(&c, &line, "test", &err), 0);
	assert_true(!strncmp(line, "Authorization: Basic ", 21));
	assert_true(sl_http_auth_ok(&a, line + 15));
	free(line);
	sl_http_auth_free(&a);

	/* A token from a file wins over the environment's password in the client's header. */
	char path[] = "/tmp/sl-auth-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "tok-123\r\nignored\n", 17), 17);
	close(fd);
	c.token_file = path;
	assert_int_equal(sl_http_auth_load(&a, &c, "test", &err), 0);
	assert_string_equal(a.token, "tok-123");
	assert_int_equal(sl_http_auth_header(&c, &line, "test", &err), 0);
	assert_string_equal(line, "Authorization: Bearer tok-123");
	assert_true(sl_http_auth_ok(&a, line + 15));
	free(line);
	sl_http_auth_free(&a);

	/* Copies are deep. */
	struct sl_http_auth_conf copy;
	assert_int_equal(sl_http_auth_conf_copy(&copy, &c), 0);
	assert_ptr_not_equal(copy.token_file, c.token_file);
	assert_string_equal(copy.token_file, path);
	sl_http_auth_conf_free(&copy);

	/* An empty or missing file is an error naming it; a password without a user too. */
	fd = open(path, O_WRONLY | O_TRUNC);
	close(fd);
	assert_int_equal(sl_http_auth_load(&a, &c, "test", &err), SL_ECONFIG);
	assert_non_null(strstr(err.msg, path));
	unlink(path);
	assert_int_equal(sl_http_auth_load(&a, &c, "test", &err), SL_ECONFIG);
	assert_non_null(strstr(err.msg, path));
	c.token_file = NULL;
	c.user = NULL;
	assert_int_equal(sl_http_auth_load(&a, &c, "test", &err), SL_ECONFIG);
	assert_non_null(strstr(err.msg, "user"));
	unsetenv("SL_TEST_AUTH_PW");
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(test_check), cmocka_unit_test(test_load_and_header)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
