/* Schema compatibility rules of the registry: a table of Avro schema changes, each checked at NONE, BACKWARD,
 * FORWARD and FULL against the verdict Avro's resolution rules give; all 104 of Confluent's JSON Schema diff cases
 * (../shared/specs/json-schema-diff-examples.json, read at test time) against Confluent's verdict; canonical strings
 * and the schema parser's refusals; the keywords of drafts 2019-09 and 2020-12 (dependentRequired, dependentSchemas,
 * prefixItems, unevaluated*, min/maxContains) and the combined-criteria changes, as Confluent's diff rules give them
 * (cases written here from those rules). */
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

/* One change, Confluent's verdict for it, and (for an incompatible one) a breaking difference it must name. */
struct js_case {
	const char *what, *orig, *upd;
	bool compatible;
	const char *names;
};

#define D2020 "\"$schema\":\"https://json-schema.org/draft/2020-12/schema\","
#define D2019 "\"$schema\":\"https://json-schema.org/draft/2019-09/schema\","
#define PROPS_AB "\"properties\":{\"a\":{\"type\":\"integer\"},\"b\":{\"type\":\"string\"},\"c\":{\"type\":\"string\"}}"
#define PROP1(x) "{\"type\":\"object\",\"properties\":{\"p\":" x "}}"

static const struct js_case new_draft_cases[] = {
	{"dependentRequired moved to another key", "{" D2020 PROPS_AB ",\"dependentRequired\":{\"a\":[\"b\"]}}",
	 "{" D2020 PROPS_AB ",\"dependentRequired\":{\"b\":[\"a\"]}}", false, "DEPENDENCY_ARRAY_ADDED #/dependencies/b"},
	{"dependentRequired narrowed", "{" D2020 PROPS_AB ",\"dependentRequired\":{\"a\":[\"b\",\"c\"]}}",
	 "{" D2020 PROPS_AB ",\"dependentRequired\":{\"a\":[\"c\"]}}", true, NULL},
	{"dependentRequired extended", "{" D2020 PROPS_AB ",\"dependentRequired\":{\"a\":[\"b\"]}}",
	 "{" D2020 PROPS_AB ",\"dependentRequired\":{\"a\":[\"c\",\"b\"]}}", false,
	 "DEPENDENCY_ARRAY_EXTENDED #/dependencies/a"},
	{"dependentRequired removed", "{" D2019 PROPS_AB ",\"dependentRequired\":{\"a\":[\"b\"]}}", "{" D2019 PROPS_AB "}",
	 true, NULL},
	{"dependentRequired added (2019-09)", "{" D2019 PROPS_AB "}",
	 "{" D2019 PROPS_AB ",\"dependentRequired\":{\"c\":[\"a\"]}}", false, "DEPENDENCY_ARRAY_ADDED #/dependencies/c"},
	{"dependentRequired is not a draft-07 keyword", "{" PROPS_AB "}", "{" PROPS_AB ",\"dependentRequired\":{\"c\":[\"a\"]}}",
	 true, NULL},
	{"dependentSchemas: a dependency's type changed", "{" D2020 "\"dependentSchemas\":{\"x\":{\"type\":\"boolean\"}}}",
	 "{" D2020 "\"dependentSchemas\":{\"x\":{\"type\":\"integer\"}}}", false, "TYPE_CHANGED #/dependencies/x"},
	{"dependentSchemas: one removed", "{" D2020 "\"dependentSchemas\":{\"x\":{\"type\":\"string\"},\"y\":{}}}",
	 "{" D2020 "\"dependentSchemas\":{\"x\":{\"type\":\"string\"}}}", true, NULL},
	{"dependentSchemas: one added", "{" D2019 "\"dependentSchemas\":{}}",
	 "{" D2019 "\"dependentSchemas\":{\"z\":{\"required\":[\"a\"]}}}", false, "DEPENDENCY_SCHEMA_ADDED #/dependencies/z"},
	{"prefixItems: an item's type changed", "{" D2020 "\"type\":\"array\",\"prefixItems\":[{\"type\":\"boolean\"}]}",
	 "{" D2020 "\"type\":\"array\",\"prefixItems\":[{\"type\":\"string\"}]}", false, "TYPE_CHANGED #/items/0"},
	{"prefixItems: tuple dropped from an open array",
	 "{" D2020 "\"type\":\"array\",\"prefixItems\":[{\"type\":\"boolean\"},{\"type\":\"integer\"}]}",
	 "{" D2020 "\"type\":\"array\"}", true, NULL},
	{"prefixItems: item added to a closed tuple", "{" D2020 "\"type\":\"array\",\"prefixItems\":[{}],\"items\":false}",
	 "{" D2020 "\"type\":\"array\",\"prefixItems\":[{},{\"type\":\"number\"}],\"items\":false}", true, NULL},
	{"prefixItems: added item covered by items",
	 "{" D2020 "\"type\":\"array\",\"prefixItems\":[{}],\"items\":{\"type\":\"boolean\"}}",
	 "{" D2020 "\"type\":\"array\",\"prefixItems\":[{},{\"type\":\"boolean\"}],\"items\":{\"type\":\"boolean\"}}", true,
	 NULL},
	{"prefixItems: added item not covered by items",
	 "{" D2020 "\"type\":\"array\",\"prefixItems\":[{}],\"items\":{\"type\":\"boolean\"}}",
	 "{" D2020 "\"type\":\"array\",\"prefixItems\":[{},{\"type\":\"integer\"}],\"items\":{\"type\":\"boolean\"}}", false,
	 "ITEM_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL #/items/1"},
	{"prefixItems: removed item covered by unevaluatedItems",
	 "{" D2020 "\"type\":\"array\",\"prefixItems\":[{},{\"type\":\"null\"}],\"unevaluatedItems\":{\"type\":\"null\"}}",
	 "{" D2020 "\"type\":\"array\",\"prefixItems\":[{}],\"unevaluatedItems\":{\"type\":\"null\"}}", true, NULL},
	{"prefixItems: removed item not covered by unevaluatedItems",
	 "{" D2020 "\"type\":\"array\",\"prefixItems\":[{},{\"type\":\"null\"}],\"unevaluatedItems\":{\"type\":\"string\"}}",
	 "{" D2020 "\"type\":\"array\",\"prefixItems\":[{}],\"unevaluatedItems\":{\"type\":\"string\"}}", false,
	 "ITEM_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL #/items/1"},
	{"2020-12 items: true to false", "{" D2020 "\"items\":true}", "{" D2020 "\"items\":false}", false,
	 "ADDITIONAL_ITEMS_REMOVED #/additionalItems"},
	{"2020-12 items schema is every item's", "{" D2020 "\"items\":{\"type\":\"integer\"}}",
	 "{" D2020 "\"items\":{\"type\":\"number\"}}", true, NULL},
	{"maxContains decreased", "{" D2020 "\"type\":\"array\",\"contains\":{},\"maxContains\":4}",
	 "{" D2020 "\"type\":\"array\",\"contains\":{},\"maxContains\":3}", false, "MAX_CONTAINS_DECREASED #/maxContains"},
	{"minContains removed", "{" D2020 "\"type\":\"array\",\"contains\":{},\"minContains\":2}",
	 "{" D2020 "\"type\":\"array\",\"contains\":{}}", true, NULL},
	{"unevaluatedProperties false added", "{" D2020 "\"type\":\"object\"}",
	 "{" D2020 "\"type\":\"object\",\"unevaluatedProperties\":false}", false,
	 "UNEVALUATED_PROPERTIES_REMOVED #/unevaluatedProperties"},
	{"allOf[number,string] -> anyOf[string]", PROP1("{\"allOf\":[{\"type\":\"number\"},{\"type\":\"string\"}]}"),
	 PROP1("{\"anyOf\":[{\"type\":\"string\"}]}"), true, NULL},
	{"allOf[number,string] -> oneOf[string]", PROP1("{\"allOf\":[{\"type\":\"number\"},{\"type\":\"string\"}]}"),
	 PROP1("{\"oneOf\":[{\"type\":\"string\"}]}"), true, NULL},
	{"anyOf[number,string] -> oneOf[string]", PROP1("{\"anyOf\":[{\"type\":\"number\"},{\"type\":\"string\"}]}"),
	 PROP1("{\"oneOf\":[{\"type\":\"string\"}]}"), false, "COMBINED_TYPE_CHANGED #/properties/p"},
	{"oneOf[number,string] -> anyOf[string]", PROP1("{\"oneOf\":[{\"type\":\"number\"},{\"type\":\"string\"}]}"),
	 PROP1("{\"anyOf\":[{\"type\":\"string\"}]}"), false, "SUM_TYPE_NARROWED #/properties/p"},
	{"oneOf[string] -> allOf[number,string]", PROP1("{\"oneOf\":[{\"type\":\"string\"}]}"),
	 PROP1("{\"allOf\":[{\"type\":\"number\"},{\"type\":\"string\"}]}"), false, "COMBINED_TYPE_CHANGED #/properties/p"},
	{"anyOf[string] -> oneOf[number,string]", PROP1("{\"anyOf\":[{\"type\":\"string\"}]}"),
	 PROP1("{\"oneOf\":[{\"type\":\"number\"},{\"type\":\"string\"}]}"), true, NULL},
};

/* msgs is a list of NUL-terminated strings */
static bool msgs_have(const struct sl_buf *msgs, const char *want)
{
	for (size_t off = 0; msgs->data && off < msgs->len; off += strlen(msgs->data + off) + 1)
		if (strstr(msgs->data + off, want))
			return true;
	return false;
}

static void test_json_schema_new_drafts(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof new_draft_cases / sizeof *new_draft_cases; i++) {
		const struct js_case *c = &new_draft_cases[i];
		struct sl_rj *o = NULL, *u = NULL;
		struct sl_err err;
		struct sl_buf msgs;
		if (sl_jtree_parse(c->orig, strlen(c->orig), &o, &err) || sl_jtree_parse(c->upd, strlen(c->upd), &u, &err))
			fail_msg("case '%s' does not parse: %s", c->what, err.msg);
		sl_buf_init(&msgs);
		bool got = sl_reg_jsonschema_compatible(u, o, &msgs) == 0;
		if (got != c->compatible)
			fail_msg("case '%s': want %s, got %s (%s)", c->what, c->compatible ? "compatible" : "incompatible",
				 got ? "compatible" : "incompatible", msgs.len ? msgs.data : "no breaking change");
		if (c->names && !msgs_have(&msgs, c->names))
			fail_msg("case '%s': messages lack '%s': %s", c->what, c->names, msgs.len ? msgs.data : "(none)");
		sl_buf_free(&msgs);
		sl_jtree_free(o);
		sl_jtree_free(u);
	}
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
		cmocka_unit_test(test_json_schema_new_drafts),
		cmocka_unit_test(test_canonical),
		cmocka_unit_test(test_invalid_avro),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
