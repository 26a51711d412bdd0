/* The registry's in-process C API (sl_registry_register / sl_registry_schema_by_id) and its REST mapping driven
 * through sl_registry_handle, on a SQLite store in a temporary directory: ids shared across subjects, the 409 that
 * names the broken rule, and replay of the store after reopening. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/log.h"
#include "registry/registry.h"
#include "registry_fixture.h"

#define R1 "{\"type\":\"record\",\"name\":\"U\",\"fields\":[{\"name\":\"a\",\"type\":\"int\"}]}"
#define R2 "{\"type\":\"record\",\"name\":\"U\",\"fields\":[{\"name\":\"a\",\"type\":\"int\"},{\"name\":\"b\",\"type\":\"int\"}]}"

static char dir[] = "/tmp/sl-registry-test-XXXXXX";

static struct sl_registry *open_reg(void)
{
	struct sl_registry_conf conf = {0};
	struct sl_registry *r;
	struct sl_err err;
	conf.data_dir = dir;
	if (sl_registry_open(&r, &conf, &err))
		fail_msg("open: %s", err.msg);
	return r;
}

static void test_c_api(void **state)
{
	struct sl_registry *r = open_reg();
	struct sl_err err;
	char *text, *type;
	int id1, id2, id3;
	(void)state;
	assert_int_equal(sl_registry_register(r, "t-value", R1, NULL, &id1, &err), 0);
	assert_int_equal(sl_registry_register(r, "t-value", " " R1, "AVRO", &id2, &err), 0);
	assert_int_equal(id1, id2);
	assert_int_equal(sl_registry_register(r, "other", R1, NULL, &id3, &err), 0);
	assert_int_equal(id1, id3);
	/* BACKWARD by default: a field added without a default is refused with the rule's name. */
	assert_int_equal(sl_registry_register(r, "t-value", R2, NULL, &id2, &err), SL_ETYPE);
	assert_non_null(strstr(err.msg, "READER_FIELD_MISSING_DEFAULT_VALUE"));
	assert_int_equal(sl_registry_register(r, "t-value", "{\"type\":\"nope\"}", NULL, &id2, &err), SL_EINVAL);
	assert_non_null(strstr(err.msg, "Type not supported: nope"));
	assert_int_equal(sl_registry_schema_by_id(r, id1, &text, &type, &err), 0);
	assert_string_equal(text, R1);
	assert_string_equal(type, "AVRO");
	free(text);
	free(type);
	assert_int_equal(sl_registry_schema_by_id(r, 999, &text, &type, &err), SL_ENOTFOUND);
	sl_registry_close(r);

	r = open_reg(); /* replayed from registry.db */
	assert_int_equal(sl_registry_schema_by_id(r, id1, &text, &type, &err), 0);
	free(text);
	free(type);
	assert_int_equal(sl_registry_register(r, "new", R2, NULL, &id2, &err), 0);
	assert_int_equal(id2, id1 + 1);
	sl_registry_close(r);
}

static void test_rest_in_process(void **state)
{
	struct sl_registry *r = open_reg();
	(void)state;
	reg_expect(r, "POST", "/subjects/a%2Fb/versions", "{\"schema\":\"\\\"string\\\"\"}", 200, "{\"id\":");
	reg_expect(r, "GET", "/subjects", NULL, 200, "\"a/b\"");
	reg_expect(r, "GET", "/subjects/a%2Fb/versions/latest", NULL, 200, "\"schema\":\"\\\"string\\\"\"");
	reg_expect(r, "GET", "/subjects/a%2Fb/versions/x", NULL, 422, "42202");
	reg_expect(r, "GET", "/subjects/%FF%FE/versions", NULL, 404, "\xEF\xBF\xBD"); /* invalid UTF-8 -> U+FFFD */
	reg_expect(r, "DELETE", "/subjects/a%2Fb", NULL, 200, "[1]");
	reg_expect(r, "DELETE", "/subjects/a%2Fb", NULL, 404, "40404");
	reg_expect(r, "DELETE", "/subjects/a%2Fb?permanent=true", NULL, 200, "[1]");
	reg_expect(r, "PUT", "/config", "{\"compatibility\":\"full_transitive\"}", 200, "FULL_TRANSITIVE");
	reg_expect(r, "PUT", "/config", "[1,2]", 422, "42203");
	reg_expect(r, "PUT", "/mode/x", "{\"mode\":\"READONLY\"}", 200, "READONLY");
	reg_expect(r, "POST", "/subjects/x/versions", "{\"schema\":\"\\\"int\\\"\"}", 422, "42205");
	reg_expect(r, "PATCH", "/config", NULL, 405, "405");
	sl_registry_close(r);
}

static int teardown(void **state)
{
	(void)state;
	return reg_teardown(dir, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_c_api),
		cmocka_unit_test(test_rest_in_process),
	};
	sl_log_set_level(SL_LOG_WARN);
	if (!mkdtemp(dir))
		return 1;
	return cmocka_run_group_tests(tests, NULL, teardown);
}
