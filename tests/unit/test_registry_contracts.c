/* The newer parts of Confluent's registry API (issue 21), driven in-process through sl_registry_handle on a SQLite
 * store in a temporary directory: the full register answer and schemaType answered for AVRO, data contracts (a schema's metadata and ruleSet,
 * stored, returned, inherited from the previous version, merged with the config's defaults and overrides, the
 * confluent:version property), contexts (GET /contexts) and subject aliases (config "alias", resolved on /subjects/,
 * /compatibility/subjects/ and ?subject= of /schemas/ids). Each expectation is Confluent's answer as its server code
 * computes it (AbstractSchemaRegistry.maybeSetMetadataRuleSet, Metadata/RuleSet.merge*, AliasFilter). */
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

static char dir[] = "/tmp/sl-registry-contracts-XXXXXX";
static struct sl_registry *reg;

static const char *expect(const char *method, const char *target, const char *body, int status, const char *want)
{
	return reg_expect(reg, method, target, body, status, want);
}

/* An Avro record with one field per name given (all strings, each with a default so versions stay compatible). */
#define REC1 "\"{\\\"type\\\":\\\"record\\\",\\\"name\\\":\\\"R\\\",\\\"fields\\\":[{\\\"name\\\":\\\"a\\\",\\\"type\\\":\\\"string\\\",\\\"default\\\":\\\"\\\"}]}\""
#define REC2 "\"{\\\"type\\\":\\\"record\\\",\\\"name\\\":\\\"R\\\",\\\"fields\\\":[{\\\"name\\\":\\\"a\\\",\\\"type\\\":\\\"string\\\",\\\"default\\\":\\\"\\\"},{\\\"name\\\":\\\"b\\\",\\\"type\\\":\\\"string\\\",\\\"default\\\":\\\"\\\"}]}\""

static void test_schema_type_avro(void **state)
{
	(void)state;
	/* the register answer is Confluent's full RegisterSchemaResponse, schemaType included */
	expect("POST", "/subjects/st/versions", "{\"schema\":\"\\\"int\\\"\"}", 200,
	       "={\"id\":1,\"version\":1,\"schemaType\":\"AVRO\",\"schema\":\"\\\"int\\\"\"}");
	expect("POST", "/subjects/st/versions", "{\"schema\":\"\\\"int\\\"\"}", 200, "{\"id\":1,\"version\":1,");
	expect("GET", "/subjects/st/versions/1", NULL, 200, "\"schemaType\":\"AVRO\"");
	expect("GET", "/subjects/st/versions/latest", NULL, 200, "\"schemaType\":\"AVRO\"");
}

static void test_metadata_ruleset_stored(void **state)
{
	(void)state;
	expect("POST", "/subjects/dc/versions",
	       "{\"schema\":" REC1 ",\"metadata\":{\"properties\":{\"owner\":\"bob\"},\"tags\":{\"a\":[\"PII\"]},"
	       "\"sensitive\":[\"s2\",\"s1\"]},\"ruleSet\":{\"domainRules\":[{\"name\":\"r1\",\"kind\":\"CONDITION\","
	       "\"mode\":\"WRITE\",\"type\":\"CEL\",\"expr\":\"true\"}]}}",
	       200, "\"metadata\":{\"tags\"");
	const char *got = expect("GET", "/subjects/dc/versions/1", NULL, 200,
				 "\"metadata\":{\"tags\":{\"a\":[\"PII\"]},\"properties\":{\"owner\":\"bob\"},"
				 "\"sensitive\":[\"s1\",\"s2\"]}");
	assert_non_null(strstr(got, "\"ruleSet\":{\"domainRules\":[{\"name\":\"r1\""));
	/* by id too */
	expect("GET", "/schemas/ids/2", NULL, 200, "\"metadata\":{\"tags\"");
	/* the same schema without a contract: populated from the previous version, so it is that version */
	expect("POST", "/subjects/dc/versions", "{\"schema\":" REC1 "}", 200, "\"id\":2");
	expect("GET", "/subjects/dc/versions", NULL, 200, "=[1]");
	/* a new version without a contract inherits the previous one's */
	expect("POST", "/subjects/dc/versions", "{\"schema\":" REC2 "}", 200, "\"id\":3");
	got = expect("GET", "/subjects/dc/versions/2", NULL, 200, "\"properties\":{\"owner\":\"bob\"}");
	assert_non_null(strstr(got, "\"name\":\"r1\""));
	/* the same text with a different contract is a different schema: new version, new id */
	expect("POST", "/subjects/dc/versions", "{\"schema\":" REC2 ",\"metadata\":{\"properties\":{\"owner\":\"eve\"}}}",
	       200, "\"id\":4");
	got = expect("GET", "/subjects/dc/versions/3", NULL, 200, "\"properties\":{\"owner\":\"eve\"}");
	/* the ruleSet, not given, still comes from the previous version */
	assert_non_null(strstr(got, "\"name\":\"r1\""));
}

static void test_config_defaults_overrides(void **state)
{
	(void)state;
	expect("PUT", "/config/cm",
	       "{\"defaultMetadata\":{\"properties\":{\"a\":\"d\",\"b\":\"d\"}},\"overrideMetadata\":{\"properties\":"
	       "{\"b\":\"o\"}},\"defaultRuleSet\":{\"domainRules\":[{\"name\":\"x\",\"kind\":\"CONDITION\",\"mode\":"
	       "\"WRITE\",\"type\":\"CEL\",\"expr\":\"1\"},{\"name\":\"y\",\"kind\":\"CONDITION\",\"mode\":\"WRITE\","
	       "\"type\":\"CEL\",\"expr\":\"1\"}]},\"overrideRuleSet\":{\"domainRules\":[{\"name\":\"x\",\"kind\":"
	       "\"CONDITION\",\"mode\":\"WRITE\",\"type\":\"CEL\",\"expr\":\"2\"}]}}",
	       200, "\"overrideMetadata\":{\"properties\":{\"b\":\"o\"}}");
	/* only contract keys set: GET answers them, the level is the global one */
	expect("GET", "/config/cm", NULL, 200, "\"defaultMetadata\":{\"properties\":{\"a\":\"d\",\"b\":\"d\"}}");
	expect("GET", "/config/cm", NULL, 200, "\"compatibilityLevel\":\"BACKWARD\"");
	/* default < the schema's own < override; properties merge key by key */
	expect("POST", "/subjects/cm/versions",
	       "{\"schema\":\"\\\"int\\\"\",\"metadata\":{\"properties\":{\"a\":\"s\",\"b\":\"s\",\"c\":\"s\"}}}", 200,
	       "\"id\"");
	const char *got = expect("GET", "/subjects/cm/versions/1", NULL, 200,
				 "\"metadata\":{\"properties\":{\"a\":\"s\",\"b\":\"o\",\"c\":\"s\"}}");
	/* rules: the override's x replaces the default's x, which goes after y */
	const char *y = strstr(got, "\"name\":\"y\""), *x = strstr(got, "\"name\":\"x\"");
	assert_non_null(y);
	assert_non_null(x);
	assert_true(y < x);
	assert_non_null(strstr(x, "\"expr\":\"2\""));
	assert_null(strstr(got, "\"expr\":\"1\",\"name\":\"x\""));
	/* a later PUT of the level alone keeps the contract keys */
	expect("PUT", "/config/cm", "{\"compatibility\":\"NONE\"}", 200, "NONE");
	expect("GET", "/config/cm", NULL, 200, "\"overrideRuleSet\"");
	/* a key set to null is cleared */
	expect("PUT", "/config/cm", "{\"overrideRuleSet\":null}", 200, "{");
	got = expect("GET", "/config/cm", NULL, 200, "\"compatibilityLevel\":\"NONE\"");
	assert_null(strstr(got, "overrideRuleSet"));
	/* an ill-typed key */
	expect("PUT", "/config/cm", "{\"defaultMetadata\":[1]}", 422, "42203");
	/* typed as Confluent's entities: a rule that is no object, an unknown kind, a bad enableAt, a property that is no
	 * string are refused; unknown members are dropped and sets deduplicated */
	expect("PUT", "/config/cm", "{\"defaultRuleSet\":{\"encodingRules\":[false]}}", 422, "42203");
	expect("PUT", "/config/cm", "{\"defaultRuleSet\":{\"domainRules\":[{\"name\":\"a\",\"kind\":\"NOPE\"}]}}", 422,
	       "42203");
	expect("PUT", "/config/cm", "{\"overrideRuleSet\":{\"enableAt\":\"AAA\"}}", 422, "42203");
	expect("PUT", "/config/cm", "{\"defaultMetadata\":{\"properties\":{\"a\":1}}}", 422, "42203");
	expect("PUT", "/config/cm",
	       "{\"defaultRuleSet\":{\"junk\":1,\"domainRules\":[{\"name\":\"a\",\"zz\":[1],\"tags\":[\"t\",\"t\"]}]}}", 200,
	       "={\"defaultRuleSet\":{\"domainRules\":[{\"name\":\"a\",\"tags\":[\"t\"]}]}}");
	expect("POST", "/subjects/cm/versions", "{\"schema\":\"\\\"long\\\"\",\"ruleSet\":{\"domainRules\":[7]}}", 422,
	       "42201");
	expect("POST", "/subjects/cm/versions", "{\"schema\":\"\\\"long\\\"\",\"metadata\":{\"sensitive\":[1]}}", 422,
	       "42201");
	/* the rest of Confluent's Config entity is stored and returned, typed */
	expect("PUT", "/config/cm", "{\"normalize\":true,\"validateFields\":false,\"compatibilityGroup\":\"app\"}", 200,
	       "\"normalize\":true");
	expect("GET", "/config/cm", NULL, 200, "\"compatibilityGroup\":\"app\",\"normalize\":true,\"validateFields\":false");
	expect("PUT", "/config/cm", "{\"normalize\":\"yes\"}", 422, "42203");
	expect("PUT", "/config/cm", "{\"compatibilityGroup\":5}", 422, "42203");
	/* DELETE answers and drops them */
	expect("DELETE", "/config/cm", NULL, 200, "\"defaultMetadata\"");
	expect("GET", "/config/cm", NULL, 404, "40408");
}

static void test_confluent_version(void **state)
{
	(void)state;
	/* a version asked for sets confluent:version */
	expect("POST", "/subjects/cv/versions", "{\"schema\":\"\\\"int\\\"\",\"version\":1}", 200, "\"id\"");
	expect("GET", "/subjects/cv/versions/1", NULL, 200, "\"properties\":{\"confluent:version\":\"1\"}");
	/* inherited, it follows the new version */
	expect("POST", "/subjects/cv/versions", "{\"schema\":\"\\\"long\\\"\"}", 200, "\"id\"");
	expect("GET", "/subjects/cv/versions/2", NULL, 200, "\"properties\":{\"confluent:version\":\"2\"}");
}

static void test_contexts(void **state)
{
	(void)state;
	expect("GET", "/contexts", NULL, 200, "=[\".\"]");
	expect("POST", "/subjects/:.prod:orders/versions", "{\"schema\":\"\\\"string\\\"\"}", 200, "\"id\"");
	expect("POST", "/subjects/:.dev:orders/versions", "{\"schema\":\"\\\"string\\\"\"}", 200, "\"id\"");
	expect("POST", "/subjects/:.prod:users/versions", "{\"schema\":\"\\\"string\\\"\"}", 200, "\"id\"");
	expect("GET", "/contexts", NULL, 200, "=[\".\",\".dev\",\".prod\"]");
	expect("GET", "/contexts?contextPrefix=.p", NULL, 200, "=[\".prod\"]");
	expect("GET", "/contexts?offset=1&limit=1", NULL, 200, "=[\".dev\"]");
	/* a soft-deleted subject keeps its context */
	expect("DELETE", "/subjects/:.dev:orders", NULL, 200, "[1]");
	expect("GET", "/contexts", NULL, 200, "=[\".\",\".dev\",\".prod\"]");
	expect("GET", "/subjects/:.prod:orders/versions/1", NULL, 200, "\"subject\":\":.prod:orders\"");
	expect("POST", "/contexts", NULL, 405, "405");
	/* DELETE /contexts/{c}: refused while it has subjects (soft-deleted too), else 204 */
	expect("DELETE", "/contexts/.dev", NULL, 422, "42211");
	expect("DELETE", "/contexts/:.prod:", NULL, 422, "42211");
	expect("DELETE", "/subjects/:.dev:orders?permanent=true", NULL, 200, "[1]");
	expect("DELETE", "/contexts/.dev", NULL, 204, "=");
	expect("GET", "/contexts", NULL, 200, "=[\".\",\".prod\"]");
}

/* Ids per context, context-wide config, compatibilityGroup (Confluent's rules; tests/integration/
 * test_registry_scopes.py covers the rest over HTTP). */
static void test_context_ids_and_scopes(void **state)
{
	(void)state;
	expect("POST", "/subjects/:.u1:a/versions", "{\"schema\":\"\\\"long\\\"\"}", 200, "{\"id\":1,");
	expect("POST", "/subjects/:.u1:b/versions", "{\"schema\":\"\\\"double\\\"\"}", 200, "{\"id\":2,");
	expect("POST", "/subjects/:.u2:a/versions", "{\"schema\":\"\\\"double\\\"\"}", 200, "{\"id\":1,");
	expect("GET", "/schemas/ids/2?subject=:.u1:", NULL, 200, "\"schema\":\"\\\"double\\\"\"");
	expect("GET", "/schemas/ids/1?subject=:.u2:a", NULL, 200, "\"schema\":\"\\\"double\\\"\"");
	expect("GET", "/schemas/ids/1?subject=:.u1:b", NULL, 404, "40403");
	expect("GET", "/schemas/ids/2/subjects?subject=:.u1:", NULL, 200, "=[\":.u1:b\"]");
	/* a context prefix without its closing ':' is an unqualified subject of the default context */
	expect("GET", "/schemas/ids/77?subject=:.u1", NULL, 404, "40403");
	expect("PUT", "/mode/:.u9?force=true", "{\"mode\":\"READWRITE\"}", 200, "READWRITE");
	expect("DELETE", "/mode/:.u9", NULL, 200, "READWRITE");
	/* the context's level reaches its subjects, not the default context's */
	expect("PUT", "/config/:.u1:", "{\"compatibility\":\"NONE\"}", 200, "NONE");
	expect("GET", "/config/:.u1:x?defaultToGlobal=true", NULL, 200, "\"compatibilityLevel\":\"NONE\"");
	expect("GET", "/config/:.u2:x?defaultToGlobal=true", NULL, 200, "\"compatibilityLevel\":\"BACKWARD\"");
	expect("POST", "/subjects/:.u1:a/versions", "{\"schema\":\"\\\"string\\\"\"}", 200, "{\"id\":3,");
	expect("POST", "/subjects/:.u2:a/versions", "{\"schema\":\"\\\"string\\\"\"}", 409, "409");
	/* compatibilityGroup: only versions whose property g matches are compared */
	expect("PUT", "/config/grp", "{\"compatibilityGroup\":\"g\"}", 200, "compatibilityGroup");
	expect("POST", "/subjects/grp/versions",
	       "{\"schema\":\"\\\"string\\\"\",\"metadata\":{\"properties\":{\"g\":\"1\"}}}", 200, "\"id\"");
	expect("POST", "/subjects/grp/versions",
	       "{\"schema\":\"\\\"int\\\"\",\"metadata\":{\"properties\":{\"g\":\"2\"}}}", 200, "\"id\"");
	expect("POST", "/subjects/grp/versions",
	       "{\"schema\":\"\\\"int\\\"\",\"metadata\":{\"properties\":{\"g\":\"1\"}}}", 409, "409");
}

static void test_aliases(void **state)
{
	(void)state;
	expect("POST", "/subjects/real/versions", "{\"schema\":\"\\\"string\\\"\"}", 200, "\"id\"");
	expect("PUT", "/config/nick", "{\"alias\":\"real\"}", 200, "\"alias\":\"real\"");
	expect("GET", "/config/nick", NULL, 200, "\"alias\":\"real\"");
	/* every path naming the alias after "subjects" reaches the real subject */
	expect("GET", "/subjects/nick/versions/1", NULL, 200, "\"subject\":\"real\"");
	expect("GET", "/subjects/nick/versions", NULL, 200, "=[1]");
	expect("POST", "/subjects/nick", "{\"schema\":\"\\\"string\\\"\"}", 200, "\"subject\":\"real\"");
	expect("POST", "/compatibility/subjects/nick/versions/latest", "{\"schema\":\"\\\"int\\\"\"}", 200,
	       "\"is_compatible\":false");
	/* a registration through the alias lands under the real subject */
	expect("POST", "/subjects/nick/versions", "{\"schema\":\"\\\"string\\\"\"}", 200, "\"id\"");
	/* ?subject= on /schemas/ids */
	const char *got = expect("GET", "/subjects/real/versions/1", NULL, 200, "\"id\":");
	int id = atoi(strstr(got, "\"id\":") + 5);
	char path[64];
	snprintf(path, sizeof path, "/schemas/ids/%d?subject=nick", id);
	expect("GET", path, NULL, 200, "\"schema\":\"\\\"string\\\"\"");
	/* the config path itself is not aliased: /config/nick is nick's own config */
	expect("GET", "/config/real", NULL, 404, "40408");
	/* an unqualified alias lives in the aliased subject's context */
	expect("POST", "/subjects/:.prod:target/versions", "{\"schema\":\"\\\"bytes\\\"\"}", 200, "\"id\"");
	expect("PUT", "/config/:.prod:al", "{\"alias\":\"target\"}", 200, "alias");
	expect("GET", "/subjects/:.prod:al/versions/latest", NULL, 200, "\"subject\":\":.prod:target\"");
	/* an alias must be a string; null (or "") removes it */
	expect("PUT", "/config/nick", "{\"alias\":5}", 422, "42203");
	expect("PUT", "/config/nick", "{\"alias\":null}", 200, "{");
	expect("GET", "/subjects/nick/versions", NULL, 404, "40401");
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
		cmocka_unit_test(test_schema_type_avro),
		cmocka_unit_test(test_metadata_ruleset_stored),
		cmocka_unit_test(test_config_defaults_overrides),
		cmocka_unit_test(test_confluent_version),
		cmocka_unit_test(test_contexts),
		cmocka_unit_test(test_aliases),
		cmocka_unit_test(test_context_ids_and_scopes),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
