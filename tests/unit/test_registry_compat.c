/* Schema compatibility rules of the registry: a table of Avro schema changes, each checked at NONE, BACKWARD,
 * FORWARD and FULL against the verdict Avro's resolution rules give; all 104 of Confluent's JSON Schema diff cases
 * (../shared/specs/json-schema-diff-examples.json, read at test time) against Confluent's verdict; canonical strings
 * and the schema parser's refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "registry/internal.h"

#define REC(fields) "{\"type\":\"record\",\"name\":\"R\",\"fields\":[" fields "]}"
#define F(name, type) "{\"name\":\"" name "\",\"type\":" type "}"
#define FD(name, type, def) "{\"name\":\"" name "\",\"type\":" type ",\"default\":" def "}"
#define ENUM(syms) "{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[" syms "]}"
#define ENUMD(syms, def) "{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[" syms "],\"default\":\"" def "\"}"

/* old -> new, and whether new can read old (back) and old can read new (fwd). */
struct pair {
	const char *rule, *old, *new;
	bool back, fwd;
};

static const struct pair pairs[] = {
	{"promote int->long", "\"int\"", "\"long\"", true, false},
	{"promote int->float", "\"int\"", "\"float\"", true, false},
	{"promote int->double", "\"int\"", "\"double\"", true, false},
	{"promote long->float", "\"long\"", "\"float\"", true, false},
	{"promote long->double", "\"long\"", "\"double\"", true, false},
	{"promote float->double", "\"float\"", "\"double\"", true, false},
	{"narrow long->int", "\"long\"", "\"int\"", false, true},
	{"string->bytes", "\"string\"", "\"bytes\"", true, true},
	{"bytes->string", "\"bytes\"", "\"string\"", true, true},
	{"string->int", "\"string\"", "\"int\"", false, false},
	{"double->float", "\"double\"", "\"float\"", false, true},
	{"float->long", "\"float\"", "\"long\"", false, true},
	{"boolean->int", "\"boolean\"", "\"int\"", false, false},
	{"same primitive", "\"string\"", "{\"type\":\"string\"}", true, true},
	{"null->null", "\"null\"", "\"null\"", true, true},
	{"bytes->fixed", "\"bytes\"", "{\"type\":\"fixed\",\"name\":\"X\",\"size\":4}", false, false},
	{"field added with default", REC(F("a", "\"int\"")), REC(F("a", "\"int\"") "," FD("b", "\"string\"", "\"x\"")), true, true},
	{"field added without default", REC(F("a", "\"int\"")), REC(F("a", "\"int\"") "," F("b", "\"string\"")), false, true},
	{"field with default removed", REC(F("a", "\"int\"") "," FD("b", "\"int\"", "0")), REC(F("a", "\"int\"")), true, true},
	{"field without default removed", REC(F("a", "\"int\"") "," F("b", "\"int\"")), REC(F("a", "\"int\"")), true, false},
	{"field promoted int->long", REC(F("a", "\"int\"")), REC(F("a", "\"long\"")), true, false},
	{"optional field added (union null default)", REC(F("a", "\"int\"")), REC(F("a", "\"int\"") "," FD("b", "[\"null\",\"string\"]", "null")), true, true},
	{"record renamed", REC(F("a", "\"int\"")), "{\"type\":\"record\",\"name\":\"S\",\"fields\":[" F("a", "\"int\"") "]}", false, false},
	{"record namespace changed", REC(F("a", "\"int\"")), "{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"n.s\",\"fields\":[" F("a", "\"int\"") "]}", true, true},
	{"record renamed with alias", REC(F("a", "\"int\"")), "{\"type\":\"record\",\"name\":\"S\",\"aliases\":[\"R\"],\"fields\":[" F("a", "\"int\"") "]}", true, false},
	{"field renamed with alias", REC(F("a", "\"int\"")), REC("{\"name\":\"b\",\"type\":\"int\",\"aliases\":[\"a\"]}"), true, false},
	{"enum symbol added", ENUM("\"A\",\"B\""), ENUM("\"A\",\"B\",\"C\""), true, false},
	{"enum symbol removed", ENUM("\"A\",\"B\""), ENUM("\"A\""), false, true},
	{"enum symbol added, both with default", ENUMD("\"A\",\"B\"", "A"), ENUMD("\"A\",\"B\",\"C\"", "A"), true, true},
	{"enum symbol removed, new has default", ENUM("\"A\",\"B\""), ENUMD("\"A\"", "A"), true, true},
	{"enum renamed", ENUM("\"A\""), "{\"type\":\"enum\",\"name\":\"F\",\"symbols\":[\"A\"]}", false, false},
	{"enum symbols reordered", ENUM("\"A\",\"B\""), ENUM("\"B\",\"A\""), true, true},
	{"fixed size changed", "{\"type\":\"fixed\",\"name\":\"X\",\"size\":16}", "{\"type\":\"fixed\",\"name\":\"X\",\"size\":32}", false, false},
	{"fixed namespace changed", "{\"type\":\"fixed\",\"name\":\"X\",\"size\":16}", "{\"type\":\"fixed\",\"name\":\"a.X\",\"size\":16}", true, true},
	{"array items promoted", "{\"type\":\"array\",\"items\":\"int\"}", "{\"type\":\"array\",\"items\":\"long\"}", true, false},
	{"map values promoted", "{\"type\":\"map\",\"values\":\"int\"}", "{\"type\":\"map\",\"values\":\"long\"}", true, false},
	{"array to map", "{\"type\":\"array\",\"items\":\"int\"}", "{\"type\":\"map\",\"values\":\"int\"}", false, false},
	{"int to union with null", "\"int\"", "[\"null\",\"int\"]", true, false},
	{"union branch added", "[\"null\",\"int\"]", "[\"null\",\"int\",\"string\"]", true, false},
	{"union to its branch", "[\"null\",\"string\"]", "\"string\"", false, true},
	{"union reordered", "[\"int\",\"string\"]", "[\"string\",\"int\"]", true, true},
	{"union branch promoted", "[\"null\",\"int\"]", "[\"null\",\"long\"]", true, false},
	{"string to union with bytes", "\"string\"", "[\"string\",\"bytes\"]", true, true},
	{"int to union without int", "\"int\"", "[\"null\",\"string\"]", false, false},
	{"nested record field promoted", REC(F("a", "{\"type\":\"record\",\"name\":\"S\",\"fields\":[" F("x", "\"int\"") "]}")),
	 REC(F("a", "{\"type\":\"record\",\"name\":\"S\",\"fields\":[" F("x", "\"long\"") "]}")), true, false},
	{"nested record field added without default", REC(F("a", "{\"type\":\"record\",\"name\":\"S\",\"fields\":[" F("x", "\"int\"") "]}")),
	 REC(F("a", "{\"type\":\"record\",\"name\":\"S\",\"fields\":[" F("x", "\"int\"") "," F("y", "\"int\"") "]}")), false, true},
	{"map of records, field added without default", "{\"type\":\"map\",\"values\":" REC(F("a", "\"int\"")) "}",
	 "{\"type\":\"map\",\"values\":" REC(F("a", "\"int\"") "," F("b", "\"int\"")) "}", false, true},
	{"recursive list unchanged", REC(F("v", "\"int\"") "," FD("next", "[\"null\",\"R\"]", "null")), REC(F("v", "\"int\"") "," FD("next", "[\"null\",\"R\"]", "null")), true, true},
	{"recursive list value promoted", REC(F("v", "\"int\"") "," FD("next", "[\"null\",\"R\"]", "null")), REC(F("v", "\"long\"") "," FD("next", "[\"null\",\"R\"]", "null")), true, false},
	{"named reference to an enum that grew", REC(F("a", ENUM("\"A\"")) "," F("b", "\"E\"")), REC(F("a", ENUM("\"A\",\"B\"")) "," F("b", "\"E\"")), true, false},
};

static const char *const levels[] = {"NONE", "BACKWARD", "FORWARD", "FULL"};

static bool reads(const char *reader, const char *writer)
{
	struct sl_avro_schema *r, *w;
	struct sl_err err;
	struct sl_buf msgs;
	int rc;
	if (sl_avro_schema_parse(reader, strlen(reader), NULL, &r, &err))
		fail_msg("reader %s: %s", reader, err.msg);
	if (sl_avro_schema_parse(writer, strlen(writer), NULL, &w, &err))
		fail_msg("writer %s: %s", writer, err.msg);
	sl_buf_init(&msgs);
	rc = sl_reg_avro_compatible(r->root, w->root, &msgs);
	/* An incompatible verdict always says which rule broke. */
	assert_true(rc == 0 || msgs.len > 0);
	if (rc && msgs.len)
		assert_non_null(strstr(msgs.data, "Incompatibility{type:"));
	sl_buf_free(&msgs);
	sl_avro_schema_free(r);
	sl_avro_schema_free(w);
	return rc == 0;
}

static void test_avro_table(void **state)
{
	size_t cases = 0, failed = 0;
	(void)state;
	for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++) {
		const struct pair *p = &pairs[i];
		bool back = reads(p->new, p->old), fwd = reads(p->old, p->new);
		for (size_t l = 0; l < 4; l++) {
			bool want = l == 0 ? true : l == 1 ? p->back : l == 2 ? p->fwd : p->back && p->fwd;
			bool got = l == 0 ? true : l == 1 ? back : l == 2 ? fwd : back && fwd;
			cases++;
			if (want != got) {
				failed++;
				print_error("avro case '%s' at %s: want %s, got %s\n", p->rule, levels[l],
					    want ? "compatible" : "incompatible", got ? "compatible" : "incompatible");
			}
		}
	}
	printf("avro compatibility: %zu cases, %zu passed\n", cases, cases - failed);
	assert_true(cases >= 100);
	assert_int_equal(failed, 0);
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	if (buf)
		buf[n] = 0;
	fclose(f);
	return buf;
}

static void test_json_schema_cases(void **state)
{
	char dir[4096], path[4200];
	const char *shared = getenv("SL_SHARED_DIR"), *src = getenv("SL_SOURCE_DIR");
	struct sl_rj *doc;
	struct sl_err err;
	struct stat st;
	size_t passed = 0;
	char *text;
	(void)state;
	if (shared)
		snprintf(dir, sizeof dir, "%s", shared);
	else
		snprintf(dir, sizeof dir, "%s/../shared", src ? src : ".");
	/* ../shared is the project's CI checkout of specs next to the repository; a user's clone has none. Its absence
	 * skips the test; a present ../shared without the file is a failure. */
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		print_message("%s absent: skipped (CI runs it)\n", dir);
		skip();
	}
	snprintf(path, sizeof path, "%s/specs/json-schema-diff-examples.json", dir);
	text = read_file(path);
	if (!text)
		fail_msg("cannot read %s (set SL_SHARED_DIR)", path);
	if (sl_jtree_parse(text, strlen(text), &doc, &err))
		fail_msg("%s: %s", path, err.msg);
	assert_int_equal(doc->t, SL_RJ_ARR);
	assert_int_equal(doc->n, 104);
	for (size_t i = 0; i < doc->n; i++) {
		const struct sl_rj *c = doc->v[i];
		const struct sl_rj *orig = sl_jtree_get(c, "original_schema"), *upd = sl_jtree_get(c, "update_schema");
		const struct sl_rj *want = sl_jtree_get(c, "compatible");
		struct sl_buf msgs;
		assert_non_null(orig);
		assert_non_null(upd);
		assert_true(want && want->t == SL_RJ_BOOL);
		sl_buf_init(&msgs);
		bool got = sl_reg_jsonschema_compatible(upd, orig, &msgs) == 0;
		if (got == want->b)
			passed++;
		else
			print_error("json-schema case %zu '%s': want %s, got %s (%s)\n", i, sl_jtree_getstr(c, "description"),
				    want->b ? "compatible" : "incompatible", got ? "compatible" : "incompatible",
				    msgs.len ? msgs.data : "no breaking change");
		sl_buf_free(&msgs);
	}
	printf("json-schema compatibility: %zu of %zu Confluent cases pass\n", passed, doc->n);
	assert_int_equal(passed, doc->n);
	sl_jtree_free(doc);
	free(text);
}

static void canon_is(const char *in, const char *want)
{
	struct sl_avro_schema *s;
	struct sl_err err;
	struct sl_buf b;
	if (sl_avro_schema_parse(in, strlen(in), NULL, &s, &err))
		fail_msg("%s: %s", in, err.msg);
	sl_buf_init(&b);
	sl_reg_avro_canonical(s, &b);
	assert_string_equal(sl_buf_cstr(&b), want);
	sl_buf_free(&b);
	sl_avro_schema_free(s);
}

static void test_canonical(void **state)
{
	(void)state;
	canon_is("{\"type\": \"string\"}", "\"string\"");
	canon_is(" [ \"null\" , \"int\" ] ", "[\"null\",\"int\"]");
	canon_is("{\"fields\":[{\"type\":\"int\",\"name\":\"a\",\"default\":1.50,\"doc\":\"d\"}],\"name\":\"R\",\"type\":\"record\","
		 "\"namespace\":\"x.y\",\"x-prop\":[1]}",
		 "{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"x.y\",\"fields\":[{\"name\":\"a\",\"type\":\"int\","
		 "\"doc\":\"d\",\"default\":1.5}],\"x-prop\":[1]}"); /* numbers as Jackson writes them */
	/* A nested type in the enclosing namespace drops it; a second use is a name. */
	canon_is("{\"type\":\"record\",\"name\":\"a.R\",\"fields\":[{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\","
		 "\"symbols\":[\"X\"]}},{\"name\":\"f\",\"type\":\"a.E\"}]}",
		 "{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"a\",\"fields\":[{\"name\":\"e\",\"type\":{\"type\":\"enum\","
		 "\"name\":\"E\",\"symbols\":[\"X\"]}},{\"name\":\"f\",\"type\":\"E\"}]}");
	canon_is("{\"type\":\"int\",\"logicalType\":\"date\"}", "{\"type\":\"int\",\"logicalType\":\"date\"}");
}

static void refused(const char *in, const char *why)
{
	struct sl_avro_schema *s = NULL;
	struct sl_err err;
	int rc = sl_avro_schema_parse(in, strlen(in), NULL, &s, &err);
	if (rc == 0)
		fail_msg("accepted %s", in);
	if (!strstr(err.msg, why))
		fail_msg("%s: message '%s' lacks '%s'", in, err.msg, why);
}

static void test_invalid_avro(void **state)
{
	(void)state;
	refused("{\"type\":\"record\",\"name\":\"R\"}", "Record has no fields");
	refused("\"strin\"", "Undefined name");
	refused("{\"type\":\"record\",\"name\":\"1R\",\"fields\":[]}", "Illegal character");
	refused("{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":\"int\"},{\"name\":\"a\",\"type\":\"int\"}]}",
		"Duplicate field a");
	refused("[\"int\",\"int\"]", "Duplicate in union");
	refused("[\"int\",[\"null\"]]", "Nested union");
	refused("{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"A\"]}", "Duplicate enum symbol");
	refused("{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\"],\"default\":\"B\"}", "not in the enum symbol set");
	refused("{\"type\":\"fixed\",\"name\":\"F\"}", "Invalid or no size");
	refused("{\"type\":\"array\"}", "Array has no items");
	refused("{\"type\":\"map\"}", "Map has no values");
	refused("{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":{\"type\":\"record\",\"name\":\"R\",\"fields\":[]}}]}",
		"Can't redefine");
	refused("{\"type\":\"recrd\",\"name\":\"R\"}", "Type not supported");
	refused("{\"type\":", "truncated");
	refused("42", "not a type name");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_avro_table),
		cmocka_unit_test(test_json_schema_cases),
		cmocka_unit_test(test_canonical),
		cmocka_unit_test(test_invalid_avro),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
