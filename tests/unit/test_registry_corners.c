/* The registry's answers in the corners where sluice used to differ from Confluent's server (issue 21), one check per
 * observed behaviour, driven in-process through sl_registry_handle on a SQLite store in a temporary directory:
 * paging on the list endpoints, /v1/metadata, references to missing or foreign schemas, IMPORT mode's ids, the
 * compatibility endpoint on a missing subject, PUT /config with {}, DELETE /config under READONLY. */
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

static char dir[] = "/tmp/sl-registry-corners-XXXXXX";
static struct sl_registry *reg;

static void expect(const char *method, const char *target, const char *body, int status, const char *want)
{
	reg_expect(reg, method, target, body, status, want);
}

#define AV(t) "{\"schema\":\"" t "\"}"

static void test_paging(void **state)
{
	(void)state;
	expect("POST", "/subjects/p1/versions", AV("\\\"int\\\""), 200, "\"id\":1");
	expect("POST", "/subjects/p2/versions", AV("\\\"int\\\""), 200, "\"id\":1");
	expect("POST", "/subjects/p3/versions", AV("\\\"int\\\""), 200, "\"id\":1");
	expect("POST", "/subjects/p1/versions", AV("\\\"long\\\""), 200, "\"id\":2");
	expect("POST", "/subjects/p1/versions", AV("\\\"double\\\""), 200, "\"id\":3");
	expect("GET", "/subjects?offset=1&limit=1", NULL, 200, "=[\"p2\"]");
	expect("GET", "/subjects?offset=2", NULL, 200, "=[\"p3\"]");
	expect("GET", "/subjects?limit=2", NULL, 200, "=[\"p1\",\"p2\"]");
	expect("GET", "/subjects/p1/versions?offset=1&limit=1", NULL, 200, "=[2]");
	expect("GET", "/subjects/p1/versions?offset=5", NULL, 200, "=[]");
	expect("GET", "/schemas/ids/1/subjects?offset=1&limit=1", NULL, 200, "=[\"p2\"]");
	expect("GET", "/schemas/ids/1/versions?offset=2", NULL, 200, "=[{\"subject\":\"p3\",\"version\":1}]");
	expect("GET", "/schemas/ids/1/versions?limit=1", NULL, 200, "=[{\"subject\":\"p1\",\"version\":1}]");
}

static void test_metadata(void **state)
{
	(void)state;
	expect("GET", "/v1/metadata/id", NULL, 200, "\"scope\":{");
	expect("GET", "/v1/metadata/version", NULL, 200, "\"version\":\"");
	expect("POST", "/v1/metadata/id", NULL, 405, "405");
}

static void test_json_references(void **state)
{
	(void)state;
	expect("POST", "/subjects/j-ref/versions",
	       "{\"schemaType\":\"JSON\",\"schema\":\"{\\\"type\\\":\\\"string\\\"}\"}", 200, "\"id\"");
	/* A subject that does not exist, a version that does not exist, an Avro subject: 42201, no new id. */
	expect("POST", "/subjects/j/versions",
	       "{\"schemaType\":\"JSON\",\"schema\":\"{\\\"$ref\\\":\\\"s.json\\\"}\",\"references\":[{\"name\":\"s.json\",\"subject\":\"nosuch\",\"version\":1}]}",
	       422, "42201");
	expect("POST", "/subjects/j/versions",
	       "{\"schemaType\":\"JSON\",\"schema\":\"{\\\"$ref\\\":\\\"s.json\\\"}\",\"references\":[{\"name\":\"s.json\",\"subject\":\"j-ref\",\"version\":7}]}",
	       422, "42201");
	expect("POST", "/subjects/j/versions",
	       "{\"schemaType\":\"JSON\",\"schema\":\"{\\\"$ref\\\":\\\"s.json\\\"}\",\"references\":[{\"name\":\"s.json\",\"subject\":\"p1\",\"version\":1}]}",
	       422, "42201");
	expect("GET", "/subjects/j/versions", NULL, 404, "40401");
	expect("POST", "/subjects/j/versions",
	       "{\"schemaType\":\"JSON\",\"schema\":\"{\\\"$ref\\\":\\\"s.json\\\"}\",\"references\":[{\"name\":\"s.json\",\"subject\":\"j-ref\",\"version\":1}]}",
	       200, "\"id\"");
}

static void test_compat_missing_subject(void **state)
{
	(void)state;
	expect("POST", "/compatibility/subjects/missing/versions/1", AV("\\\"int\\\""), 404, "40402");
	expect("POST", "/compatibility/subjects/missing/versions/latest", AV("\\\"int\\\""), 200,
	       "{\"is_compatible\":true");
}

static void test_config_corners(void **state)
{
	(void)state;
	expect("PUT", "/config", "{}", 200, "={\"compatibility\":\"BACKWARD\"}");
	expect("PUT", "/config/p1", "{\"compatibility\":\"FULL\"}", 200, "FULL");
	expect("PUT", "/config/p1", "{}", 200, "={\"compatibility\":\"FULL\"}");
	expect("PUT", "/config", "{\"compatibility\":\"BOGUS\"}", 422, "42203");
	expect("PUT", "/mode", "{\"mode\":\"READONLY\"}", 200, "READONLY");
	expect("DELETE", "/config/p1", NULL, 422, "42205");
	expect("PUT", "/mode", "{\"mode\":\"READWRITE\"}", 200, "READWRITE");
	expect("DELETE", "/config/p1", NULL, 200, "FULL");
}

static void test_import_mode(void **state)
{
	(void)state;
	expect("PUT", "/mode/imp", "{\"mode\":\"IMPORT\"}", 200, "IMPORT");
	/* No id: 42205. */
	expect("POST", "/subjects/imp/versions", AV("\\\"string\\\""), 422, "42205");
	expect("POST", "/subjects/imp/versions", "{\"schema\":\"\\\"string\\\"\",\"id\":100,\"version\":1}", 200,
	       "{\"id\":100,");
	/* An id in use by a different schema: 42205. */
	expect("POST", "/subjects/imp/versions", "{\"schema\":\"\\\"bytes\\\"\",\"id\":100,\"version\":2}", 422, "42205");
	/* Permanently deleted, the id answers 40403 and is free for another schema. */
	expect("PUT", "/mode/imp", "{\"mode\":\"READWRITE\"}", 200, "READWRITE");
	expect("DELETE", "/subjects/imp", NULL, 200, "[1]");
	expect("DELETE", "/subjects/imp?permanent=true", NULL, 200, "[1]");
	expect("GET", "/schemas/ids/100", NULL, 404, "40403");
	expect("PUT", "/mode/imp2", "{\"mode\":\"IMPORT\"}", 200, "IMPORT");
	expect("POST", "/subjects/imp2/versions", "{\"schema\":\"\\\"bytes\\\"\",\"id\":100,\"version\":1}", 200,
	       "{\"id\":100,");
	expect("GET", "/schemas/ids/100", NULL, 200, "bytes");
	/* After a reopen (replay of the store) the id still names the new schema. */
	sl_registry_close(reg);
	struct sl_registry_conf conf = {0};
	struct sl_err err;
	conf.data_dir = dir;
	if (sl_registry_open(&reg, &conf, &err))
		fail_msg("reopen: %s", err.msg);
	expect("GET", "/schemas/ids/100", NULL, 200, "bytes");
}

static int setup(void **state)
{
	(void)state;
	return reg_setup(dir, &reg);
}

static int teardown(void **state)
{
	(void)state;
	return reg_teardown(dir, reg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_paging),
		cmocka_unit_test(test_metadata),
		cmocka_unit_test(test_json_references),
		cmocka_unit_test(test_compat_missing_subject),
		cmocka_unit_test(test_config_corners),
		cmocka_unit_test(test_import_mode),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
