/* Config: YAML trees with positions, option tables, and the errors a user sees for a bad config. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/config.h"

struct inner {
	char *host;
	int64_t port;
};

struct conf {
	char *name;
	int64_t workers;
	bool verbose;
	double ratio;
	int64_t timeout_ms;
	int64_t max_bytes;
	char *mode;
	struct sl_strlist tags;
	struct sl_strmap props;
	struct inner server;
};

static const struct sl_opt inner_table[] = {
	{"host", SL_OPT_STRING, "127.0.0.1", offsetof(struct inner, host), "host to connect to"},
	{"port", SL_OPT_INT, "9042", offsetof(struct inner, port), "port", .min = 1, .max = 65535},
	{NULL},
};

static const struct sl_opt table[] = {
	{"name", SL_OPT_STRING, NULL, offsetof(struct conf, name), "a name", .required = true},
	{"workers", SL_OPT_INT, "4", offsetof(struct conf, workers), "threads"},
	{"verbose", SL_OPT_BOOL, "false", offsetof(struct conf, verbose), "chatty"},
	{"ratio", SL_OPT_DOUBLE, "0.5", offsetof(struct conf, ratio), "a ratio"},
	{"timeout", SL_OPT_DURATION, "5s", offsetof(struct conf, timeout_ms), "a timeout"},
	{"max_bytes", SL_OPT_SIZE, "64MiB", offsetof(struct conf, max_bytes), "a size"},
	{"mode", SL_OPT_ENUM, "fast", offsetof(struct conf, mode), "a mode", .choices = "fast|safe"},
	{"tags", SL_OPT_STRLIST, NULL, offsetof(struct conf, tags), "tags"},
	{"properties", SL_OPT_STRMAP, NULL, offsetof(struct conf, props), "raw properties"},
	{"server", SL_OPT_SECTION, NULL, offsetof(struct conf, server), "server", .sub = inner_table},
	{NULL},
};

static int bind_text(const char *yaml, struct conf *c, struct sl_err *err)
{
	struct sl_cfg_doc doc;
	memset(c, 0, sizeof *c);
	int rc = sl_cfg_load_string(&doc, "t.yaml", yaml, strlen(yaml), err);
	if (rc)
		return rc;
	rc = sl_opt_bind(table, doc.root, "", c, err);
	sl_cfg_free(&doc);
	return rc;
}

static void test_defaults_and_values(void **state)
{
	(void)state;
	struct conf c;
	struct sl_err err = {0};
	assert_int_equal(bind_text("name: x\nworkers: 8\ntimeout: 250ms\nmax_bytes: 1KiB\ntags: [a, b]\n"
				   "properties: {linger.ms: 5}\nserver: {port: 9142}\n",
				   &c, &err),
			 0);
	assert_string_equal(c.name, "x");
	assert_int_equal(c.workers, 8);
	assert_false(c.verbose);
	assert_true(c.ratio == 0.5);
	assert_int_equal(c.timeout_ms, 250);
	assert_int_equal(c.max_bytes, 1024);
	assert_string_equal(c.mode, "fast");
	assert_int_equal(c.tags.n, 2);
	assert_string_equal(c.tags.v[1], "b");
	assert_int_equal(c.props.n, 1);
	assert_string_equal(c.props.k[0], "linger.ms");
	assert_string_equal(c.props.v[0], "5");
	assert_string_equal(c.server.host, "127.0.0.1");
	assert_int_equal(c.server.port, 9142);
	sl_opt_free(table, &c);
}

static void test_unknown_key_suggests(void **state)
{
	(void)state;
	struct conf c;
	struct sl_err err = {0};
	assert_int_equal(bind_text("name: x\n\nworkrs: 3\n", &c, &err), SL_ECONFIG);
	assert_non_null(strstr(err.msg, "t.yaml:3"));
	assert_non_null(strstr(err.msg, "'workrs'"));
	assert_non_null(strstr(err.msg, "did you mean 'workers'"));
	sl_opt_free(table, &c);
	assert_int_equal(bind_text("name: x\nserver:\n  hots: a\n", &c, &err), SL_ECONFIG);
	assert_non_null(strstr(err.msg, "t.yaml:3"));
	assert_non_null(strstr(err.msg, "in server"));
	assert_non_null(strstr(err.msg, "did you mean 'host'"));
	sl_opt_free(table, &c);
	assert_int_equal(bind_text("name: x\nzzzzzzzz: 1\n", &c, &err), SL_ECONFIG);
	assert_non_null(strstr(err.msg, "known keys: name, workers"));
	sl_opt_free(table, &c);
}

static void test_wrong_types(void **state)
{
	(void)state;
	struct conf c;
	struct sl_err err = {0};
	assert_int_equal(bind_text("name: x\nworkers: many\n", &c, &err), SL_ECONFIG);
	assert_non_null(strstr(err.msg, "t.yaml:2"));
	assert_non_null(strstr(err.msg, "'workers' must be an integer, got 'many'"));
	sl_opt_free(table, &c);
	assert_int_equal(bind_text("name: x\nverbose: maybe\n", &c, &err), SL_ECONFIG);
	assert_non_null(strstr(err.msg, "true or false"));
	sl_opt_free(table, &c);
	assert_int_equal(bind_text("name: x\ntimeout: soon\n", &c, &err), SL_ECONFIG);
	assert_non_null(strstr(err.msg, "duration"));
	sl_opt_free(table, &c);
	assert_int_equal(bind_text("name: x\nmode: turbo\n", &c, &err), SL_ECONFIG);
	assert_non_null(strstr(err.msg, "fast|safe"));
	sl_opt_free(table, &c);
	assert_int_equal(bind_text("name: x\nserver: {port: 70000}\n", &c, &err), SL_ECONFIG);
	assert_non_null(strstr(err.msg, "outside 1..65535"));
	sl_opt_free(table, &c);
	/* `mode: null` is YAML's null, not a word: an error that says so, not a silent default. */
	assert_int_equal(bind_text("name: x\nmode: null\n", &c, &err), SL_ECONFIG);
	assert_non_null(strstr(err.msg, "t.yaml:2: 'mode' is empty"));
	assert_non_null(strstr(err.msg, "fast|safe"));
	sl_opt_free(table, &c);
	assert_int_equal(bind_text("name: [1]\n", &c, &err), SL_ECONFIG);
	assert_non_null(strstr(err.msg, "not a list"));
	sl_opt_free(table, &c);
	assert_int_equal(bind_text("workers: 1\n", &c, &err), SL_ECONFIG);
	assert_non_null(strstr(err.msg, "'name' is required"));
	sl_opt_free(table, &c);
}

static void test_yaml_errors(void **state)
{
	(void)state;
	struct sl_cfg_doc doc;
	struct sl_err err = {0};
	const char *bad = "a: 1\nb: [1, 2\n";
	assert_int_equal(sl_cfg_load_string(&doc, "bad.yaml", bad, strlen(bad), &err), SL_ECONFIG);
	assert_non_null(strstr(err.msg, "bad.yaml:"));
	const char *dup = "a: 1\na: 2\n";
	assert_int_equal(sl_cfg_load_string(&doc, "dup.yaml", dup, strlen(dup), &err), SL_ECONFIG);
	assert_non_null(strstr(err.msg, "dup.yaml:2: duplicate key 'a' (first at line 1)"));
	const char *list = "- a\n- b\n";
	assert_int_equal(sl_cfg_load_string(&doc, "l.yaml", list, strlen(list), &err), SL_ECONFIG);
	assert_int_equal(sl_cfg_load_file(&doc, "/nonexistent/sluice.yaml", &err), SL_ECONFIG);
	assert_non_null(strstr(err.msg, "/nonexistent/sluice.yaml: cannot open config"));
}

static void test_env_expansion(void **state)
{
	(void)state;
	struct sl_cfg_doc doc;
	struct sl_err err = {0};
	setenv("SL_TEST_HOST", "db1", 1);
	unsetenv("SL_TEST_MISSING");
	const char *y = "a: \"${SL_TEST_HOST}:9042\"\nb: ${SL_TEST_MISSING:-fallback}\n";
	assert_int_equal(sl_cfg_load_string(&doc, "e.yaml", y, strlen(y), &err), 0);
	assert_string_equal(sl_cfg_get(doc.root, "a")->value, "db1:9042");
	assert_string_equal(sl_cfg_get(doc.root, "b")->value, "fallback");
	assert_int_equal(sl_cfg_get(doc.root, "b")->line, 2);
	sl_cfg_free(&doc);
	const char *m = "a: ${SL_TEST_MISSING}\n";
	assert_int_equal(sl_cfg_load_string(&doc, "e.yaml", m, strlen(m), &err), SL_ECONFIG);
	assert_non_null(strstr(err.msg, "e.yaml:1: environment variable 'SL_TEST_MISSING' is not set"));
}

static void test_units(void **state)
{
	(void)state;
	int64_t v;
	assert_int_equal(sl_parse_duration_ms("1.5s", &v), 0);
	assert_int_equal(v, 1500);
	assert_int_equal(sl_parse_duration_ms("2m", &v), 0);
	assert_int_equal(v, 120000);
	assert_int_equal(sl_parse_duration_ms("60", &v), 0);
	assert_int_equal(v, 60000);
	assert_int_equal(sl_parse_duration_ms("1h", &v), 0);
	assert_int_equal(v, 3600000);
	assert_int_equal(sl_parse_duration_ms("-1s", &v), -1);
	assert_int_equal(sl_parse_duration_ms("5 parsecs", &v), -1);
	assert_int_equal(sl_parse_size("16MiB", &v), 0);
	assert_int_equal(v, 16 << 20);
	assert_int_equal(sl_parse_size("100kB", &v), 0);
	assert_int_equal(v, 100000);
	assert_int_equal(sl_parse_size("12 bananas", &v), -1);
	const char *c[] = {"topic", "table", "keyspace"};
	assert_string_equal(sl_cfg_suggest("topc", c, 3), "topic");
	assert_string_equal(sl_cfg_suggest("keyspcae", c, 3), "keyspace");
	assert_null(sl_cfg_suggest("zebra", c, 3));
}

static void test_doc_markdown(void **state)
{
	(void)state;
	char *text = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&text, &len);
	sl_opt_doc_markdown(table, "", fp);
	fclose(fp);
	assert_non_null(strstr(text, "| `workers` | integer | `4` | threads |"));
	assert_non_null(strstr(text, "### `server`"));
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_and_values), cmocka_unit_test(test_unknown_key_suggests),
		cmocka_unit_test(test_wrong_types),         cmocka_unit_test(test_yaml_errors),
		cmocka_unit_test(test_env_expansion),       cmocka_unit_test(test_units),
		cmocka_unit_test(test_doc_markdown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
