/* The mapping language: the seed's format_data as a mapping, checked column by column against generated records;
 * every cast; compile-time errors with file:line; data errors naming column, path and value; speed (printed). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "core/clock.h"
#include "codec/json.h"
#include "codec/record_json.h"
#include "mapping/mapping.h"
#include "source/generate.h"

/* The seed's format_data (SEED.md), one column per line. dob and registered_date stay text as in the seed's table. */
static const char SEED_MAPPING[] =
	"columns:\n"
	"  id: { path: login.uuid, type: uuid, default: \"uuid()\" }\n"
	"  first_name: name.first\n"
	"  last_name: name.last\n"
	"  gender: gender\n"
	"  address: { template: \"{location.street.number} {location.street.name}, {location.city}, "
	"{location.state}, {location.country}\" }\n"
	"  post_code: { path: location.postcode, type: text }\n"
	"  email: email\n"
	"  username: login.username\n"
	"  dob: dob.date\n"
	"  registered_date: registered.date\n"
	"  phone: phone\n"
	"  picture: picture.medium\n";

static struct sl_json_parser *P;
static struct sl_mapping_env ENV;
static struct sl_arena A;

static int setup(void **state)
{
	struct sl_err err;
	sl_mapping_env_init(&ENV);
	ENV.now_ms = 1704164645678LL; /* 2024-01-02T03:04:05.678Z */
	ENV.rng = 42;
	sl_arena_init(&A, 0);
	return sl_json_parser_new(&P, 0, 0, &err);
}

static int teardown(void **state)
{
	sl_json_parser_free(P);
	sl_mapping_env_free(&ENV);
	sl_arena_free(&A);
	return 0;
}

/* Compiles the `columns:` map of a YAML text; returns the error code and leaves the message in err. */
static int compile(const char *yaml, const char *key, struct sl_mapping **m, struct sl_err *err)
{
	struct sl_cfg_doc doc;
	if (sl_cfg_load_string(&doc, "m.yaml", yaml, strlen(yaml), err))
		fail_msg("yaml: %s", err->msg);
	int rc = sl_mapping_compile(sl_cfg_get(doc.root, "columns"), key, m, err);
	sl_cfg_free(&doc);
	return rc;
}

static struct sl_mapping *compile_ok(const char *yaml, const char *key)
{
	struct sl_mapping *m;
	struct sl_err err = {0};
	if (compile(yaml, key, &m, &err))
		fail_msg("compile: %s", err.msg);
	return m;
}

static void compile_fails(const char *yaml, const char *needle)
{
	struct sl_mapping *m = NULL;
	struct sl_err err = {0};
	int rc = compile(yaml, NULL, &m, &err);
	if (rc != SL_ECONFIG || !strstr(err.msg, needle))
		fail_msg("yaml:\n%s\ngot %d '%s', want SL_ECONFIG containing '%s'", yaml, rc, err.msg, needle);
	assert_null(m);
}

static struct sl_json_val parse(const char *json)
{
	struct sl_json_val root;
	struct sl_err err;
	if (sl_json_parse(P, json, strlen(json), &root, &err))
		fail_msg("json: %s", err.msg);
	return root;
}

/* Applies m to json and returns the record's JSON payload (static buffer). */
static const char *apply(struct sl_mapping *m, const char *json, int want_rc, const char *want_err)
{
	static char outbuf[4096];
	struct sl_record r;
	struct sl_err err = {0};
	int rc = sl_mapping_apply(m, parse(json), &ENV, &A, &r, &err);
	if (rc != want_rc || (want_err && !strstr(err.msg, want_err)))
		fail_msg("apply %s: got %d '%s', want %d containing '%s'", json, rc, err.msg, want_rc,
			 want_err ? want_err : "");
	if (rc) {
		snprintf(outbuf, sizeof outbuf, "%s", err.msg);
		return outbuf;
	}
	struct sl_buf b;
	sl_buf_init(&b);
	assert_int_equal(sl_record_to_json(&r, &b, &err), 0);
	snprintf(outbuf, sizeof outbuf, "%s", sl_buf_cstr(&b));
	sl_buf_free(&b);
	return outbuf;
}

static void str_at(struct sl_json_val v, const char *path, char *out, size_t sz)
{
	struct sl_json_val x;
	const char *s;
	size_t n;
	assert_true(sl_json_path(v, path, strlen(path), &x));
	if (sl_json_str(x, &s, &n) == 0) {
		snprintf(out, sz, "%.*s", (int)n, s);
	} else {
		int64_t i;
		assert_int_equal(sl_json_int64(x, &i), 0);
		snprintf(out, sz, "%lld", (long long)i);
	}
}

static void expect_text(const struct sl_record *r, int col, const char *want)
{
	const struct sl_value *v = &r->v[col];
	assert_false(v->null);
	if (v->u.s.n != strlen(want) || memcmp(v->u.s.p, want, v->u.s.n))
		fail_msg("column %s: got '%.*s', want '%s'", r->schema->fields[col].name, (int)v->u.s.n, v->u.s.p, want);
}

/* The seed mapping over 2000 generated records: every column equals what format_data computes from the raw record. */
static void test_seed_mapping(void **state)
{
	struct sl_mapping *m = compile_ok(SEED_MAPPING, "id");
	const struct sl_schema *s = sl_mapping_schema(m);
	assert_int_equal(s->n, 12);
	assert_int_equal(s->key, 0);
	assert_int_equal(s->fields[0].type, SL_T_UUID);
	assert_true(s->fields[0].required); /* the key is implicitly required */
	assert_int_equal(s->fields[5].type, SL_T_TEXT);
	assert_string_equal(s->fields[11].name, "picture");

	struct sl_buf raw, key, payload;
	sl_buf_init(&raw);
	sl_buf_init(&key);
	sl_buf_init(&payload);
	int numeric_postcodes = 0, string_postcodes = 0;
	for (uint64_t idx = 0; idx < 2000; idx++) {
		sl_buf_reset(&raw);
		assert_int_equal(sl_generate_record(99, idx, &raw), 0);
		struct sl_json_val rec = parse(sl_buf_cstr(&raw)), pc;
		struct sl_record r;
		struct sl_err err;
		sl_arena_reset(&A);
		if (sl_mapping_apply(m, rec, &ENV, &A, &r, &err))
			fail_msg("record %llu: %s", (unsigned long long)idx, err.msg);

		char want[512], a[5][128];
		str_at(rec, "login.uuid", want, sizeof want);
		sl_buf_reset(&key);
		assert_int_equal(sl_record_key(&r, &key, &err), 0);
		assert_string_equal(sl_buf_cstr(&key), want);
		str_at(rec, "name.first", want, sizeof want);
		expect_text(&r, 1, want);
		str_at(rec, "name.last", want, sizeof want);
		expect_text(&r, 2, want);
		str_at(rec, "gender", want, sizeof want);
		expect_text(&r, 3, want);
		str_at(rec, "location.street.number", a[0], 128);
		str_at(rec, "location.street.name", a[1], 128);
		str_at(rec, "location.city", a[2], 128);
		str_at(rec, "location.state", a[3], 128);
		str_at(rec, "location.country", a[4], 128);
		snprintf(want, sizeof want, "%s %s, %s, %s, %s", a[0], a[1], a[2], a[3], a[4]);
		expect_text(&r, 4, want);
		assert_true(sl_json_path(rec, "location.postcode", 17, &pc));
		if (sl_json_type(pc) == SL_JSON_INT)
			numeric_postcodes++;
		else
			string_postcodes++;
		str_at(rec, "location.postcode", want, sizeof want);
		expect_text(&r, 5, want);
		str_at(rec, "email", want, sizeof want);
		expect_text(&r, 6, want);
		str_at(rec, "login.username", want, sizeof want);
		expect_text(&r, 7, want);
		str_at(rec, "dob.date", want, sizeof want);
		expect_text(&r, 8, want);
		str_at(rec, "registered.date", want, sizeof want);
		expect_text(&r, 9, want);
		str_at(rec, "phone", want, sizeof want);
		expect_text(&r, 10, want);
		str_at(rec, "picture.medium", want, sizeof want);
		expect_text(&r, 11, want);

		/* The payload decodes back to an equal record. */
		sl_buf_reset(&payload);
		assert_int_equal(sl_record_to_json(&r, &payload, &err), 0);
		struct sl_record back;
		if (sl_record_decode_json(&back, s, P, payload.data, payload.len, &A, &err))
			fail_msg("decode %s: %s", sl_buf_cstr(&payload), err.msg);
		for (size_t c = 0; c < s->n; c++)
			assert_true(sl_value_eq(s->fields[c].type, &r.v[c], &back.v[c]));
	}
	/* The generator must exercise both of randomuser's postcode shapes. */
	assert_true(numeric_postcodes > 100 && string_postcodes > 100);

	/* Without login.uuid the id is a fresh v4 uuid, and two such records differ. */
	const char *p1 = apply(m, "{\"name\":{\"first\":\"A\",\"last\":\"B\"},\"location\":{\"street\":{\"number\":1,"
				  "\"name\":\"S\"},\"city\":\"C\",\"state\":\"T\",\"country\":\"U\"}}", 0, NULL);
	char first[512];
	snprintf(first, sizeof first, "%s", p1);
	assert_int_equal(first[7 + 14], '4'); /* {"id":"xxxxxxxx-xxxx-4 */
	assert_non_null(strstr(first, "\"address\":\"1 S, C, T, U\""));
	assert_non_null(strstr(first, "\"email\":null"));
	const char *p2 = apply(m, "{\"location\":{\"street\":{\"number\":1,\"name\":\"S\"},\"city\":\"C\",\"state\":\"T\","
				  "\"country\":\"U\"}}", 0, NULL);
	assert_memory_not_equal(first, p2, 44);
	/* A template placeholder that is missing fails the column, naming it. */
	apply(m, "{\"location\":{\"street\":{\"number\":1,\"name\":\"S\"},\"city\":\"C\",\"state\":\"T\"}}", SL_ETYPE,
	      "column 'address' (template \"{location.street.number} {location.street.name}, {location.city}, "
	      "{location.state}, {location.country}\"): placeholder {location.country} is missing");
	/* A login.uuid that is not a uuid is a data error naming column, path and value. */
	apply(m, "{\"login\":{\"uuid\":\"nope\"}}", SL_ETYPE, "column 'id' (path login.uuid): \"nope\" is not a valid uuid");

	sl_buf_free(&raw);
	sl_buf_free(&key);
	sl_buf_free(&payload);
	sl_mapping_free(m);
}

static void test_casts(void **state)
{
	struct sl_mapping *m = compile_ok("columns:\n"
					  "  t: { path: v, type: text }\n"
					  "  i: { path: v, type: int }\n"
					  "  b: { path: v, type: bigint }\n"
					  "  d: { path: v, type: double }\n",
					  NULL);
	/* Numbers render as JSON writes them. */
	assert_string_equal(apply(m, "{\"v\":123}", 0, NULL), "{\"t\":\"123\",\"i\":123,\"b\":123,\"d\":123.0}");
	assert_string_equal(apply(m, "{\"v\":123.0}", 0, NULL), "{\"t\":\"123\",\"i\":123,\"b\":123,\"d\":123.0}");
	assert_string_equal(apply(m, "{\"v\":\"-42\"}", 0, NULL), "{\"t\":\"-42\",\"i\":-42,\"b\":-42,\"d\":-42.0}");
	assert_string_equal(apply(m, "{\"v\":null}", 0, NULL), "{\"t\":null,\"i\":null,\"b\":null,\"d\":null}");
	assert_string_equal(apply(m, "{}", 0, NULL), "{\"t\":null,\"i\":null,\"b\":null,\"d\":null}");
	apply(m, "{\"v\":2.5}", SL_ETYPE, "column 'i' (path v): 2.5 is not a valid int");
	apply(m, "{\"v\":3000000000}", SL_ETYPE, "column 'i' (path v): 3000000000 is not a valid int");
	apply(m, "{\"v\":\"12a\"}", SL_ETYPE, "column 'i' (path v): \"12a\" is not a valid int");
	apply(m, "{\"v\":true}", SL_ETYPE, "column 'i' (path v): true is not a valid int");
	sl_mapping_free(m);

	m = compile_ok("columns:\n"
		       "  t: { path: v, type: text }\n"
		       "  b: { path: v, type: bigint }\n",
		       NULL);
	assert_string_equal(apply(m, "{\"v\":3000000000}", 0, NULL), "{\"t\":\"3000000000\",\"b\":3000000000}");
	assert_string_equal(apply(m, "{\"v\":[1,{\"a\":true}]}", SL_ETYPE, "column 'b'"),
			    "column 'b' (path v): [1,{\"a\":true}] is not a valid bigint (64-bit integer)");
	sl_mapping_free(m);

	m = compile_ok("columns:\n  o: { path: v }\n", NULL);
	assert_string_equal(apply(m, "{\"v\":{\"a\":[1,\"x\"]}}", 0, NULL), "{\"o\":\"{\\\"a\\\":[1,\\\"x\\\"]}\"}");
	assert_string_equal(apply(m, "{\"v\":0.1}", 0, NULL), "{\"o\":\"0.1\"}");
	assert_string_equal(apply(m, "{\"v\":false}", 0, NULL), "{\"o\":\"false\"}");
	sl_mapping_free(m);

	m = compile_ok("columns:\n  x: { path: v, type: boolean }\n", NULL);
	assert_string_equal(apply(m, "{\"v\":true}", 0, NULL), "{\"x\":true}");
	assert_string_equal(apply(m, "{\"v\":\"FALSE\"}", 0, NULL), "{\"x\":false}");
	assert_string_equal(apply(m, "{\"v\":1}", 0, NULL), "{\"x\":true}");
	assert_string_equal(apply(m, "{\"v\":\"0\"}", 0, NULL), "{\"x\":false}");
	apply(m, "{\"v\":\"yes\"}", SL_ETYPE, "\"yes\" is not a valid boolean");
	apply(m, "{\"v\":2}", SL_ETYPE, "2 is not a valid boolean");
	sl_mapping_free(m);

	m = compile_ok("columns:\n  x: { path: v, type: double }\n", NULL);
	assert_string_equal(apply(m, "{\"v\":\"1.5e3\"}", 0, NULL), "{\"x\":1500.0}");
	apply(m, "{\"v\":\"nan\"}", SL_ETYPE, "is not a valid double");
	apply(m, "{\"v\":\"0x10\"}", SL_ETYPE, "is not a valid double");
	apply(m, "{\"v\":\"1e999\"}", SL_ETYPE, "is not a valid double");
	sl_mapping_free(m);

	m = compile_ok("columns:\n  x: { path: v, type: uuid }\n", NULL);
	assert_string_equal(apply(m, "{\"v\":\"{6BA7B810-9DAD-11D1-80B4-00C04FD430C8}\"}", 0, NULL),
			    "{\"x\":\"6ba7b810-9dad-11d1-80b4-00c04fd430c8\"}");
	assert_string_equal(apply(m, "{\"v\":\"6ba7b8109dad11d180b400c04fd430c8\"}", 0, NULL),
			    "{\"x\":\"6ba7b810-9dad-11d1-80b4-00c04fd430c8\"}");
	apply(m, "{\"v\":\"6ba7b810-9dad-11d1-80b4-00c04fd430c\"}", SL_ETYPE, "is not a valid uuid");
	apply(m, "{\"v\":12}", SL_ETYPE, "column 'x' (path v): 12 is not a valid uuid");
	sl_mapping_free(m);
}

static void test_time_casts(void **state)
{
	struct sl_mapping *m = compile_ok("columns:\n"
					  "  ts: { path: v, type: timestamp }\n"
					  "  d: { path: v, type: date }\n",
					  NULL);
	/* ISO-8601 with Z, offsets and fractions; the date is the UTC day. */
	assert_string_equal(apply(m, "{\"v\":\"1993-07-20T09:44:18.674Z\"}", 0, NULL),
			    "{\"ts\":\"1993-07-20T09:44:18.674Z\",\"d\":\"1993-07-20\"}");
	assert_string_equal(apply(m, "{\"v\":\"2024-01-02T01:30:00.5+02:00\"}", 0, NULL),
			    "{\"ts\":\"2024-01-01T23:30:00.500Z\",\"d\":\"2024-01-01\"}");
	assert_string_equal(apply(m, "{\"v\":\"2024-01-02 03:04:05.678912-0130\"}", 0, NULL),
			    "{\"ts\":\"2024-01-02T04:34:05.678Z\",\"d\":\"2024-01-02\"}");
	assert_string_equal(apply(m, "{\"v\":\"2024-02-29\"}", 0, NULL),
			    "{\"ts\":\"2024-02-29T00:00:00.000Z\",\"d\":\"2024-02-29\"}");
	assert_string_equal(apply(m, "{\"v\":\"1969-12-31T23:59:59.999Z\"}", 0, NULL),
			    "{\"ts\":\"1969-12-31T23:59:59.999Z\",\"d\":\"1969-12-31\"}");
	/* Epoch numbers: seconds below 1e11, milliseconds above; fractions of seconds kept. */
	assert_string_equal(apply(m, "{\"v\":1704164645}", 0, NULL),
			    "{\"ts\":\"2024-01-02T03:04:05.000Z\",\"d\":\"2024-01-02\"}");
	assert_string_equal(apply(m, "{\"v\":1704164645678}", 0, NULL),
			    "{\"ts\":\"2024-01-02T03:04:05.678Z\",\"d\":\"2024-01-02\"}");
	assert_string_equal(apply(m, "{\"v\":1704164645.5}", 0, NULL),
			    "{\"ts\":\"2024-01-02T03:04:05.500Z\",\"d\":\"2024-01-02\"}");
	assert_string_equal(apply(m, "{\"v\":\"1704164645678\"}", 0, NULL),
			    "{\"ts\":\"2024-01-02T03:04:05.678Z\",\"d\":\"2024-01-02\"}");
	apply(m, "{\"v\":\"2023-02-29\"}", SL_ETYPE, "column 'ts' (path v): \"2023-02-29\" is not a valid timestamp");
	apply(m, "{\"v\":\"2024-01-02T25:00:00Z\"}", SL_ETYPE, "is not a valid timestamp");
	apply(m, "{\"v\":\"2024-01-02T03:04:05Q\"}", SL_ETYPE, "is not a valid timestamp");
	apply(m, "{\"v\":\"yesterday\"}", SL_ETYPE, "is not a valid timestamp");
	apply(m, "{\"v\":true}", SL_ETYPE, "is not a valid timestamp");
	sl_mapping_free(m);

	/* unit: ms reads small numbers as milliseconds; unit: s reads big ones as seconds (and overflows are errors). */
	m = compile_ok("columns:\n  ts: { path: v, type: timestamp, unit: ms }\n", NULL);
	assert_string_equal(apply(m, "{\"v\":86400000}", 0, NULL), "{\"ts\":\"1970-01-02T00:00:00.000Z\"}");
	sl_mapping_free(m);
	m = compile_ok("columns:\n  ts: { path: v, type: timestamp, unit: s }\n", NULL);
	assert_string_equal(apply(m, "{\"v\":86400000}", 0, NULL), "{\"ts\":\"1972-09-27T00:00:00.000Z\"}");
	apply(m, "{\"v\":1e300}", SL_ETYPE, "is not a valid timestamp");
	sl_mapping_free(m);
}

static void test_functions_defaults(void **state)
{
	struct sl_mapping *m = compile_ok("columns:\n"
					  "  a: { expr: \"now()\" }\n"
					  "  b: { expr: \"now()\", type: text }\n"
					  "  c: { expr: \"now()\", type: date }\n"
					  "  d: { expr: \"uuid()\", type: text }\n"
					  "  e: { path: missing, type: int, default: 7 }\n"
					  "  f: { path: missing, default: \"n/a\" }\n"
					  "  g: { path: missing, type: timestamp, default: now() }\n"
					  "  h: { default: 2.5, type: double }\n"
					  "  i: { path: nothere, type: boolean, default: null }\n",
					  "e");
	const char *out = apply(m, "{}", 0, NULL);
	assert_non_null(strstr(out, "{\"a\":\"2024-01-02T03:04:05.678Z\",\"b\":\"2024-01-02T03:04:05.678Z\","
				    "\"c\":\"2024-01-02\",\"d\":\""));
	assert_non_null(strstr(out, "\",\"e\":7,\"f\":\"n/a\",\"g\":\"2024-01-02T03:04:05.678Z\",\"h\":2.5,\"i\":null}"));
	/* A value present wins over the default. */
	assert_non_null(strstr(apply(m, "{\"missing\":\"9\"}", 0, NULL), "\"e\":9,\"f\":\"9\","));
	sl_mapping_free(m);

	/* uuid() is fresh per record; with a fixed rng seed, reproducible. */
	m = compile_ok("columns:\n  u: { expr: \"uuid()\" }\n", "u");
	ENV.rng = 7;
	char u1[64], u2[64];
	snprintf(u1, sizeof u1, "%s", apply(m, "{}", 0, NULL));
	snprintf(u2, sizeof u2, "%s", apply(m, "{}", 0, NULL));
	assert_string_not_equal(u1, u2);
	ENV.rng = 7;
	assert_string_equal(apply(m, "{}", 0, NULL), u1);
	sl_mapping_free(m);

	/* required without default: a missing or null value rejects the record. */
	m = compile_ok("columns:\n  n: { path: a.b, type: int, required: true }\n  k: x\n", "k");
	apply(m, "{\"x\":\"1\",\"a\":{}}", SL_ETYPE, "column 'n' (path a.b): required, but the record has no value there");
	apply(m, "{\"x\":\"1\",\"a\":{\"b\":null}}", SL_ETYPE, "column 'n' (path a.b): required");
	apply(m, "{\"a\":{\"b\":1}}", SL_ETYPE, "column 'k' (path x): required");
	assert_string_equal(apply(m, "{\"x\":\"1\",\"a\":{\"b\":1}}", 0, NULL), "{\"n\":1,\"k\":\"1\"}");
	sl_mapping_free(m);
}

static void test_templates(void **state)
{
	struct sl_mapping *m = compile_ok("columns:\n"
					  "  t: { template: \"{{id}} {a.b}-{c[1]}/{d} {{x}}\" }\n"
					  "  n: { template: \"{a.b}{d}\", type: bigint }\n"
					  "  dd: { template: \"{a.b}\", default: \"none\" }\n",
					  NULL);
	assert_string_equal(apply(m, "{\"a\":{\"b\":12},\"c\":[0,2.50],\"d\":\"7\"}", 0, NULL),
			    "{\"t\":\"{id} 12-2.5/7 {x}\",\"n\":127,\"dd\":\"12\"}");
	apply(m, "{\"a\":{\"b\":12},\"c\":[0,1],\"d\":\"x\"}", SL_ETYPE,
	      "column 'n' (template \"{a.b}{d}\"): \"12x\" does not cast to the column's type");
	/* dd has a default, so its missing placeholder is not an error; t's is. */
	apply(m, "{\"c\":[0,1],\"d\":\"x\"}", SL_ETYPE, "placeholder {a.b} is missing");
	sl_mapping_free(m);
	m = compile_ok("columns:\n  dd: { template: \"{a.b}!\", default: \"none\" }\n", NULL);
	assert_string_equal(apply(m, "{}", 0, NULL), "{\"dd\":\"none\"}");
	sl_mapping_free(m);
}

static void test_compile_errors(void **state)
{
	compile_fails("columns:\n  a: { path: x, type: strng }\n", "m.yaml:2: column 'a': unknown type 'strng'; did you mean 'text'?");
	compile_fails("columns:\n  a: { path: x, type: timestmp }\n", "did you mean 'timestamp'?");
	compile_fails("columns:\n  a: { path: x, type: integer }\n", "did you mean 'int'?");
	compile_fails("columns:\n  a: x\n  b:\n    template: \"{x.y\"\n", "m.yaml:4: column 'b': template \"{x.y\": '{' at offset 0 is not closed");
	compile_fails("columns:\n  b: { template: \"a } b {c}\" }\n", "'}' at offset 2 has no '{'");
	compile_fails("columns:\n  b: { template: \"a {} b\" }\n", "placeholder at offset 2: the path is empty");
	compile_fails("columns:\n  b: { template: \"plain\" }\n", "has no {placeholder}");
	compile_fails("columns:\n  b: { expr: \"uuidd()\" }\n", "m.yaml:2: column 'b': expr 'uuidd()' is not a known function; did you mean uuid()?");
	compile_fails("columns:\n  b: { expr: \"now(1)\" }\n", "takes no arguments");
	compile_fails("columns:\n  b: { expr: \"uuid()\", type: int }\n", "uuid() cannot fill a int column");
	compile_fails("columns:\n  b: { path: a, template: \"{a}\" }\n", "give only one of path, template and expr");
	compile_fails("columns:\n  b: { type: int }\n", "needs a path, a template, an expr or a default");
	compile_fails("columns:\n  b:\n    path: a\n    typ: int\n", "m.yaml:4: column 'b': unknown key 'typ' (did you mean 'type'?)");
	compile_fails("columns:\n  b: { path: a, type: int, default: abc }\n", "default 'abc' is not a valid int");
	compile_fails("columns:\n  b: { path: a, type: uuid, default: \"uid()\" }\n", "did you mean uuid()?");
	compile_fails("columns:\n  b: { path: a, required: maybe }\n", "'required' must be true or false");
	compile_fails("columns:\n  b: { path: a, unit: ms }\n", "'unit' applies to timestamp and date columns");
	compile_fails("columns:\n  b: { path: a, type: timestamp, unit: us }\n", "unit must be 's' or 'ms'");
	compile_fails("columns:\n  b: a..b\n", "m.yaml:2: column 'b': path 'a..b': empty key in path");
	compile_fails("columns:\n  b: a.\n", "the path ends with '.'");
	compile_fails("columns:\n  b: a[x]\n", "'[' must be followed by an array index");
	compile_fails("columns:\n  b: a[1\n", "unclosed '['");
	compile_fails("columns:\n  b: \"{a.b} c\"\n", "write { template: \"{a.b} c\" } for a template");
	compile_fails("columns:\n  b: [a, b]\n", "expected a path");
	compile_fails("columns: []\n", "a mapping must be a non-empty map");
	compile_fails("other: 1\n", "a mapping must be a non-empty map");

	struct sl_mapping *m;
	struct sl_err err;
	assert_int_equal(compile("columns:\n  ident: a\n  name: b\n", "idnt", &m, &err), SL_ECONFIG);
	assert_non_null(strstr(err.msg, "key 'idnt' is not one of the mapping's columns (did you mean 'ident'?)"));
}

/* The ingest hot path for the seed pipeline: parse a raw record, map it, encode the payload. Printed, not asserted. */
static void test_bench(void **state)
{
	struct sl_mapping *m = compile_ok(SEED_MAPPING, "id");
	struct sl_buf raw, payload;
	sl_buf_init(&raw);
	sl_buf_init(&payload);
	enum { N = 64, ITERS = 100000 };
	size_t off[N + 1];
	for (int i = 0; i < N; i++) {
		off[i] = raw.len;
		sl_generate_record(5, (uint64_t)i, &raw);
	}
	off[N] = raw.len;
	double t_parse = 0, t_map = 0, t_enc = 0, t_dec = 0;
	struct sl_err err;
	for (int k = 0; k < ITERS; k++) {
		if (k % 256 == 0)
			sl_arena_reset(&A);
		int i = k % N;
		struct sl_json_val root;
		struct sl_record r, back;
		double t0 = sl_mono_s();
		assert_int_equal(sl_json_parse(P, raw.data + off[i], off[i + 1] - off[i], &root, &err), 0);
		double t1 = sl_mono_s();
		assert_int_equal(sl_mapping_apply(m, root, &ENV, &A, &r, &err), 0);
		double t2 = sl_mono_s();
		sl_buf_reset(&payload);
		assert_int_equal(sl_record_to_json(&r, &payload, &err), 0);
		double t3 = sl_mono_s();
		assert_int_equal(sl_record_decode_json(&back, sl_mapping_schema(m), P, payload.data, payload.len, &A, &err), 0);
		double t4 = sl_mono_s();
		t_parse += t1 - t0;
		t_map += t2 - t1;
		t_enc += t3 - t2;
		t_dec += t4 - t3;
	}
	printf("mapping bench (seed mapping, %zu-byte raw records, %zu-byte payloads): parse %.3f us, map %.3f us, "
	       "encode %.3f us, decode payload %.3f us per record\n",
	       raw.len / N, payload.len, t_parse / ITERS * 1e6, t_map / ITERS * 1e6, t_enc / ITERS * 1e6,
	       t_dec / ITERS * 1e6);

	/* Generator speed. */
	double t0 = sl_mono_s();
	for (int k = 0; k < ITERS; k++) {
		sl_buf_reset(&raw);
		sl_generate_record(5, (uint64_t)k, &raw);
	}
	printf("generate bench: %.0f records/s\n", ITERS / (sl_mono_s() - t0));
	sl_buf_free(&raw);
	sl_buf_free(&payload);
	sl_mapping_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seed_mapping),   cmocka_unit_test(test_casts),
		cmocka_unit_test(test_time_casts),     cmocka_unit_test(test_functions_defaults),
		cmocka_unit_test(test_templates),      cmocka_unit_test(test_compile_errors),
		cmocka_unit_test(test_bench),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
