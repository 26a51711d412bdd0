/* Protobuf in the registry: the .proto parser shim (text, base64 descriptors, imports, well-known types, refusals),
 * the canonical form, and Confluent's Protobuf compatibility rules. The rule table restates, in our own schemas, the
 * kinds of change Confluent's protobuf-provider diff tests cover (package, messages, enums, fields, scalar groups,
 * labels, oneofs, maps, references), each with Confluent's verdict for the update reading data of the original. */
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
#include "registry/internal.h"
#include "registry_fixture.h"

#define P3 "syntax = \"proto3\";\n"
#define P2 "syntax = \"proto2\";\n"

struct pcase {
	const char *what, *orig, *upd;
	bool compatible;
};

static const struct pcase cases[] = {
	{"field added", P3 "package a; message M { string s = 1; }", P3 "package a; message M { string s = 1; float f = 2; }", true},
	{"package changed", P3 "package a; message M { string s = 1; }", P3 "package b; message M { string s = 1; }", false},
	{"qualified vs relative type name", P3 "message M { N n = 1; message N { int32 x = 1; } }",
	 P3 "message M { .M.N n = 1; message N { int32 x = 1; } }", true},
	{"qualified name with package", P3 "package p.q; message M { N n = 1; message N { int32 x = 1; } }",
	 P3 "package p.q; message M { .p.q.M.N n = 1; message N { int32 x = 1; } }", true},
	{"proto2 required field added", P2 "message M { optional string s = 1; }",
	 P2 "message M { optional string s = 1; required int32 r = 2; }", false},
	{"field added in nested message", P3 "message M { message N { int32 x = 1; } N n = 1; }",
	 P3 "message M { message N { int32 x = 1; string y = 2; } N n = 1; }", true},
	{"field removed", P3 "message M { string s = 1; int64 g = 2; }", P3 "message M { string s = 1; }", true},
	{"proto2 required field removed", P2 "message M { optional string s = 1; required int32 r = 2; }",
	 P2 "message M { optional string s = 1; }", false},
	{"field renumbered (removed + added)", P3 "message M { string s = 1; }", P3 "message M { string s = 7; }", true},
	{"int32 -> int64 (same group)", P3 "message M { int32 v = 1; }", P3 "message M { int64 v = 1; }", true},
	{"uint64 -> bool (same group)", P3 "message M { uint64 v = 1; }", P3 "message M { bool v = 1; }", true},
	{"string -> bytes", P3 "message M { string v = 1; }", P3 "message M { bytes v = 1; }", true},
	{"int32 -> enum", P3 "message M { int32 v = 1; } enum E { Z = 0; }", P3 "message M { E v = 1; } enum E { Z = 0; }", true},
	{"enum -> int64", P3 "message M { E v = 1; } enum E { Z = 0; }", P3 "message M { int64 v = 1; } enum E { Z = 0; }", true},
	{"enum -> message of that name", P3 "message M { E v = 1; } enum E { Z = 0; }",
	 P3 "message M { E v = 1; } message E { int32 z = 1; }", false},
	{"message -> int32", P3 "message M { N v = 1; } message N { int32 z = 1; }", P3 "message M { int32 v = 1; } message N { int32 z = 1; }", false},
	{"enum constant renamed and added", P3 "message M { E e = 1; } enum E { A = 0; B = 1; }",
	 P3 "message M { E e = 1; } enum E { A = 0; C = 1; D = 2; }", true},
	{"enum constant removed, enum removed", P3 "enum E { A = 0; B = 1; } enum G { X = 0; } message M { int32 i = 1; }",
	 P3 "enum E { A = 0; } message M { int32 i = 1; }", true},
	{"sint32 -> int32", P3 "message M { sint32 v = 1; }", P3 "message M { int32 v = 1; }", false},
	{"sint32 -> sint64", P3 "message M { sint32 v = 1; }", P3 "message M { sint64 v = 1; }", true},
	{"fixed32 -> sfixed32", P3 "message M { fixed32 v = 1; }", P3 "message M { sfixed32 v = 1; }", true},
	{"fixed32 -> fixed64", P3 "message M { fixed32 v = 1; }", P3 "message M { fixed64 v = 1; }", false},
	{"float -> double", P3 "message M { float v = 1; }", P3 "message M { double v = 1; }", false},
	{"string -> int32", P3 "message M { string v = 1; }", P3 "message M { int32 v = 1; }", false},
	{"field renamed", P3 "message M { string v = 1; }", P3 "message M { string w = 1; }", true},
	{"one field into a new oneof", P3 "message M { string a = 1; int32 b = 2; }",
	 P3 "message M { oneof o { string a = 1; } int32 b = 2; }", true},
	{"two fields into one oneof", P3 "message M { string a = 1; int32 b = 2; }",
	 P3 "message M { oneof o { string a = 1; int32 b = 2; } }", false},
	{"field added to a oneof", P3 "message M { oneof o { string a = 1; } }", P3 "message M { oneof o { string a = 1; int32 b = 2; } }", true},
	{"field removed from a oneof", P3 "message M { oneof o { string a = 1; int32 b = 2; } }", P3 "message M { oneof o { string a = 1; } }", false},
	{"top-level field into an existing oneof", P3 "message M { oneof o { string a = 1; } int32 b = 2; }",
	 P3 "message M { oneof o { string a = 1; int32 b = 2; } }", false},
	{"oneof renamed, same members", P3 "message M { oneof o { string a = 1; int32 b = 2; } }",
	 P3 "message M { oneof p { string a = 1; int32 b = 2; } }", true},
	{"oneof renamed and a member dropped", P3 "message M { oneof o { string a = 1; int32 b = 2; } }",
	 P3 "message M { oneof p { string a = 1; } }", false},
	{"whole oneof deleted", P3 "message M { oneof o { string a = 1; int32 b = 2; } int32 c = 3; }",
	 P3 "message M { int32 c = 3; }", true},
	{"two oneofs merged", P3 "message M { oneof o { string a = 1; } oneof p { int32 b = 2; } }",
	 P3 "message M { oneof q { string a = 1; int32 b = 2; } }", false},
	{"member moved out of a oneof to top level", P3 "message M { oneof o { string a = 1; int32 b = 2; } }",
	 P3 "message M { oneof o { string a = 1; } int32 b = 2; }", true},
	{"member moved out of a oneof and retyped", P3 "message M { oneof o { string a = 1; int32 b = 2; } }",
	 P3 "message M { oneof o { string a = 1; } double b = 2; }", false},
	{"type changed while the oneof is renamed", P3 "message M { oneof o { string a = 1; } }", P3 "message M { oneof p { int32 a = 1; } }", false},
	{"map value type name qualified", P3 "package k; message M { map<string, N> m = 1; } message N { int32 x = 1; }",
	 P3 "package k; message M { map<string, .k.N> m = 1; } message N { int32 x = 1; }", true},
	{"map value scalar changed", P3 "message M { map<string, string> m = 1; }", P3 "message M { map<string, double> m = 1; }", false},
	{"map -> message", P3 "message M { map<string, string> m = 1; }", P3 "message M { N m = 1; } message N { string k = 1; }", false},
	{"message field made repeated", P3 "message M { N n = 1; } message N { int32 x = 1; }",
	 P3 "message M { repeated N n = 1; } message N { int32 x = 1; }", true},
	{"proto2 string optional -> repeated", P2 "message M { optional string s = 1; }", P2 "message M { repeated string s = 1; }", true},
	{"proto2 bytes optional -> repeated", P2 "message M { optional bytes s = 1; }", P2 "message M { repeated bytes s = 1; }", true},
	{"proto2 int32 optional -> repeated", P2 "message M { optional int32 s = 1; }", P2 "message M { repeated int32 s = 1; }", false},
	{"message added", P3 "message M { int32 a = 1; }", P3 "message M { int32 a = 1; } message N { int32 b = 1; }", true},
	{"messages reordered", P3 "message M { int32 a = 1; } message N { int32 b = 1; }",
	 P3 "message N { int32 b = 1; } message M { int32 a = 1; }", true},
	{"message removed", P3 "message M { int32 a = 1; } message N { int32 b = 1; }", P3 "message M { int32 a = 1; }", false},
	{"nested message field retyped", P3 "message M { N n = 1; } message N { string x = 1; }",
	 P3 "message M { N n = 1; } message N { double x = 1; }", false},
	{"recursive message unchanged", P3 "message T { T left = 1; T right = 2; int32 v = 3; }",
	 P3 "message T { T left = 1; T right = 2; int32 v = 3; }", true},
	{"well-known type field kept", P3 "import \"google/protobuf/timestamp.proto\"; message M { google.protobuf.Timestamp t = 1; }",
	 P3 "import \"google/protobuf/timestamp.proto\"; message M { google.protobuf.Timestamp t = 1; string s = 2; }", true},
	{"well-known type swapped", P3 "import \"google/protobuf/timestamp.proto\"; message M { google.protobuf.Timestamp t = 1; }",
	 P3 "import \"google/protobuf/duration.proto\"; message M { google.protobuf.Duration t = 1; }", false},
};

static struct sl_pb_schema *parse_ok(const char *text, const struct sl_pb_dep *deps, size_t n)
{
	struct sl_pb_schema *s;
	struct sl_err err;
	if (sl_protobuf_parse(text, strlen(text), deps, n, &s, &err))
		fail_msg("parse failed: %s\n%s", err.msg, text);
	return s;
}

static void test_rules(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		struct sl_pb_schema *o = parse_ok(cases[i].orig, NULL, 0), *u = parse_ok(cases[i].upd, NULL, 0);
		struct sl_buf msgs;
		sl_buf_init(&msgs);
		int rc = sl_reg_protobuf_compatible(u, o, &msgs);
		if (rc != (cases[i].compatible ? 0 : 1))
			fail_msg("%s: got %s (%s), want %s", cases[i].what, rc ? "incompatible" : "compatible",
				 msgs.len ? msgs.data : "", cases[i].compatible ? "compatible" : "incompatible");
		if (!cases[i].compatible && !msgs.len)
			fail_msg("%s: incompatible without a message", cases[i].what);
		sl_buf_free(&msgs);
		sl_protobuf_free(o);
		sl_protobuf_free(u);
	}
}

/* Types that come from references: compared unless both sides use the same subject-version. */
static void test_reference_rules(void **state)
{
	const char *main_ = P3 "package app; import \"dep.proto\"; message M { lib.D d = 1; }";
	const char *local = P3 "package app; message M { D d = 1; } message D { int32 x = 1; }";
	struct sl_pb_dep v1 = {"dep.proto", P3 "package lib; message D { int32 x = 1; }", "dep\x01" "1"};
	struct sl_pb_dep v2 = {"dep.proto", P3 "package lib; message D { string x = 1; }", "dep\x01" "2"};
	struct sl_pb_dep v2ok = {"dep.proto", P3 "package lib; message D { int32 x = 1; int64 y = 2; }", "dep\x01" "2"};
	struct sl_pb_dep other = {"dep.proto", P3 "package other; message D { int32 x = 1; }", "other\x01" "1"};
	struct sl_pb_schema *a = parse_ok(main_, &v1, 1), *b = parse_ok(main_, &v2, 1), *c = parse_ok(main_, &v2ok, 1);
	struct sl_pb_schema *l = parse_ok(local, NULL, 0);
	(void)state;
	assert_int_equal(sl_reg_protobuf_compatible(b, a, NULL), 1); /* same subject, another version: incompatible */
	assert_int_equal(sl_reg_protobuf_compatible(c, a, NULL), 0); /* ... compatible */
	assert_int_equal(sl_reg_protobuf_compatible(a, a, NULL), 0);
	/* Moving a type out to an import removes a message from the file (incompatible in Confluent's rules);
	 * moving it back in from the import adds one, and the field's type keeps its local name D: compatible. */
	assert_int_equal(sl_reg_protobuf_compatible(a, l, NULL), 1);
	assert_int_equal(sl_reg_protobuf_compatible(l, a, NULL), 0);
	struct sl_pb_schema *d = parse_ok(P3 "package app; import \"dep.proto\"; message M { other.D d = 1; }", &other, 1);
	assert_int_equal(sl_reg_protobuf_compatible(d, a, NULL), 0); /* another package, same local name and fields */
	sl_protobuf_free(a);
	sl_protobuf_free(b);
	sl_protobuf_free(c);
	sl_protobuf_free(d);
	sl_protobuf_free(l);
}

static void test_parse(void **state)
{
	struct sl_pb_schema *s, *t;
	struct sl_err err;
	(void)state;
	/* proto2 and proto3, the canonical form parses back to itself, the serialized form is the same file. */
	s = parse_ok(P2 "package x.y;\nmessage A { optional int32 a = 1 [default = 5]; repeated string r = 2; "
			"message B { required bool b = 1; } optional B bb = 3; extensions 100 to 200; }",
		     NULL, 0);
	assert_string_equal(s->syntax, "proto2");
	assert_string_equal(s->package, "x.y");
	assert_int_equal(s->nmsgs, 1);
	assert_string_equal(s->msgs[0]->full, "x.y.A");
	assert_int_equal(s->msgs[0]->fields[1].label, SL_PB_LABEL_REPEATED);
	assert_non_null(strstr(s->canonical, ".x.y.A.B bb = 3"));
	t = parse_ok(s->canonical, NULL, 0);
	assert_string_equal(t->canonical, s->canonical);
	sl_protobuf_free(t);
	t = parse_ok(s->serialized, NULL, 0);
	assert_string_equal(t->canonical, s->canonical);
	sl_protobuf_free(t);
	sl_protobuf_free(s);
	/* proto3 optional is a label, not a oneof; maps resolve to entries. */
	s = parse_ok(P3 "message M { optional int32 o = 1; map<string, int64> m = 2; oneof k { string a = 3; } }", NULL, 0);
	assert_int_equal(s->msgs[0]->noneofs, 1);
	assert_int_equal(s->msgs[0]->fields[0].label, SL_PB_LABEL_OPTIONAL);
	assert_int_equal(s->msgs[0]->fields[0].oneof, -1);
	assert_true(s->msgs[0]->fields[1].msg && s->msgs[0]->fields[1].msg->map_entry);
	assert_int_equal(s->msgs[0]->fields[2].oneof, 0);
	sl_protobuf_free(s);
	/* Well-known types without references. */
	s = parse_ok(P3 "import \"google/protobuf/any.proto\"; import \"google/protobuf/struct.proto\";"
			"import \"google/protobuf/wrappers.proto\"; message M { google.protobuf.Any a = 1; "
			"google.protobuf.Struct s = 2; google.protobuf.StringValue w = 3; }",
		     NULL, 0);
	assert_non_null(sl_protobuf_find(s, ".google.protobuf.Struct"));
	sl_protobuf_free(s);
	/* Refusals name the problem. */
	assert_int_equal(sl_protobuf_parse("message M { int32 a = 1 }", 25, NULL, 0, &s, &err), SL_EINVAL);
	assert_non_null(strstr(err.msg, "line 1"));
	assert_int_equal(sl_protobuf_parse(P3 "import \"missing.proto\"; message M { int32 a = 1; }",
					   strlen(P3 "import \"missing.proto\"; message M { int32 a = 1; }"), NULL, 0, &s,
					   &err),
			 SL_EINVAL);
	assert_non_null(strstr(err.msg, "missing.proto"));
	assert_int_equal(sl_protobuf_parse(P3 "message M { Nope a = 1; }", strlen(P3 "message M { Nope a = 1; }"), NULL,
					   0, &s, &err),
			 SL_EINVAL);
	assert_non_null(strstr(err.msg, "Nope"));
	const char *dup = P3 "message M { int32 a = 1; int32 b = 1; }";
	assert_int_equal(sl_protobuf_parse(dup, strlen(dup), NULL, 0, &s, &err), SL_EINVAL);
	if (!strstr(err.msg, "already"))
		fail_msg("duplicate field number: %s", err.msg);
	assert_int_equal(sl_protobuf_parse("", 0, NULL, 0, &s, &err), SL_EINVAL);
	/* Message indexes name nested messages. */
	s = parse_ok(P3 "message A { message B { message C { int32 x = 1; } } } message D { int32 y = 1; }", NULL, 0);
	int idx[] = {0, 0, 0}, bad[] = {2};
	assert_string_equal(sl_protobuf_by_index(s, idx, 3)->full, "A.B.C");
	assert_string_equal(sl_protobuf_by_index(s, (int[]){1}, 1)->full, "D");
	assert_null(sl_protobuf_by_index(s, bad, 1));
	sl_protobuf_free(s);
}

/* Through the REST mapping: PROTOBUF registration, references to other subjects, lookup, compatibility, types. */
static char dir[] = "/tmp/sl-registry-pb-XXXXXX";

static void test_rest(void **state)
{
	struct sl_registry_conf conf = {0};
	struct sl_registry *r;
	struct sl_err err;
	(void)state;
	conf.data_dir = dir;
	if (sl_registry_open(&r, &conf, &err))
		fail_msg("open: %s", err.msg);
	reg_expect(r, "GET", "/schemas/types", NULL, 200, "\"PROTOBUF\"");
	reg_expect(r, "POST", "/subjects/dep/versions",
	       "{\"schemaType\":\"PROTOBUF\",\"schema\":\"syntax = \\\"proto3\\\"; package lib; message D { int32 x = 1; }\"}",
	       200, "{\"id\":1,");
	reg_expect(r, "POST", "/subjects/app-value/versions",
	       "{\"schemaType\":\"PROTOBUF\",\"schema\":\"syntax = \\\"proto3\\\"; import \\\"dep.proto\\\"; message M { lib.D d = 1; }\","
	       "\"references\":[{\"name\":\"dep.proto\",\"subject\":\"dep\",\"version\":1}]}",
	       200, "{\"id\":2,");
	/* The same schema differently laid out is the same id. */
	reg_expect(r, "POST", "/subjects/app-value/versions",
	       "{\"schemaType\":\"PROTOBUF\",\"schema\":\"syntax = \\\"proto3\\\";\\nimport \\\"dep.proto\\\";\\n\\nmessage M {\\n  .lib.D d = 1;\\n}\\n\","
	       "\"references\":[{\"name\":\"dep.proto\",\"subject\":\"dep\",\"version\":1}]}",
	       200, "{\"id\":2,");
	reg_expect(r, "GET", "/schemas/ids/2", NULL, 200, "\"schemaType\":\"PROTOBUF\"");
	reg_expect(r, "GET", "/subjects/app-value/versions/1", NULL, 200, "\"references\":[{\"name\":\"dep.proto\"");
	/* Missing reference, missing import, wrong type of reference: 42201. */
	reg_expect(r, "POST", "/subjects/x/versions",
	       "{\"schemaType\":\"PROTOBUF\",\"schema\":\"syntax = \\\"proto3\\\"; import \\\"dep.proto\\\"; message M { lib.D d = 1; }\","
	       "\"references\":[{\"name\":\"dep.proto\",\"subject\":\"nosuch\",\"version\":1}]}",
	       422, "42201");
	reg_expect(r, "POST", "/subjects/x/versions",
	       "{\"schemaType\":\"PROTOBUF\",\"schema\":\"syntax = \\\"proto3\\\"; import \\\"dep.proto\\\"; message M { lib.D d = 1; }\"}",
	       422, "42201");
	/* BACKWARD: a field retyped is refused with Confluent's difference name; a field added is fine. */
	reg_expect(r, "POST", "/compatibility/subjects/dep/versions/latest?verbose=true",
	       "{\"schemaType\":\"PROTOBUF\",\"schema\":\"syntax = \\\"proto3\\\"; package lib; message D { string x = 1; }\"}",
	       200, "FIELD_SCALAR_KIND_CHANGED");
	reg_expect(r, "POST", "/subjects/dep/versions",
	       "{\"schemaType\":\"PROTOBUF\",\"schema\":\"syntax = \\\"proto3\\\"; package lib; message D { string x = 1; }\"}",
	       409, "FIELD_SCALAR_KIND_CHANGED");
	reg_expect(r, "POST", "/subjects/dep/versions",
	       "{\"schemaType\":\"PROTOBUF\",\"schema\":\"syntax = \\\"proto3\\\"; package lib; message D { int32 x = 1; bool y = 2; }\"}",
	       200, "{\"id\":3,");
	reg_expect(r, "POST", "/subjects/dep",
	       "{\"schemaType\":\"PROTOBUF\",\"schema\":\"syntax = \\\"proto3\\\";\\npackage lib;\\nmessage D { int32 x = 1; }\"}",
	       200, "\"version\":1");
	reg_expect(r, "GET", "/subjects/app-value/versions/1/referencedby", NULL, 200, "[]");
	reg_expect(r, "GET", "/subjects/dep/versions/1/referencedby", NULL, 200, "[2]");
	sl_registry_close(r);
}

static int setup(void **state)
{
	(void)state;
	return reg_setup(dir, NULL);
}

static int teardown(void **state)
{
	(void)state;
	return reg_teardown(dir, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_rules),
		cmocka_unit_test(test_reference_rules),
		cmocka_unit_test(test_rest),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
