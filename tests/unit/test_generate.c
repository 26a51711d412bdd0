/* The generate source: determinism (same (seed, index) -> same bytes, independent of order and page), the full
 * randomuser shape with its quirks, and a golden digest so that any change to the output is a deliberate one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "codec/json.h"
#include "core/record.h"
#include "source/generate.h"

#define GOLDEN 0xd935fd7b3ce099d9ULL /* digest of seed 1, records 0..199 */

static uint64_t fnv1a(const char *p, size_t n, uint64_t h)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)p[i]) * 0x100000001b3ULL;
	return h;
}

static void test_deterministic(void **state)
{
	struct sl_buf a, b, page;
	sl_buf_init(&a);
	sl_buf_init(&b);
	sl_buf_init(&page);
	assert_int_equal(sl_generate_record(3, 17, &a), 0);
	assert_int_equal(sl_generate_record(3, 17, &b), 0);
	assert_int_equal(a.len, b.len);
	assert_memory_equal(a.data, b.data, a.len);
	sl_buf_reset(&b);
	sl_generate_record(3, 18, &b);
	assert_false(a.len == b.len && !memcmp(a.data, b.data, a.len));
	sl_buf_reset(&b);
	sl_generate_record(4, 17, &b);
	assert_false(a.len == b.len && !memcmp(a.data, b.data, a.len));

	/* A record inside a page is byte-identical to the same record made alone. */
	assert_int_equal(sl_generate_page(3, 10, 10, &page), 0);
	assert_non_null(memmem(page.data, page.len, a.data, a.len));
	assert_non_null(strstr(sl_buf_cstr(&page), "],\"info\":{\"seed\":\"0000000000000003\",\"results\":10,\"page\":2,"
							 "\"version\":\"1.4\"}}"));

	/* Golden digest of the first 200 records of seed 1: changes here change every downstream expectation. */
	uint64_t h = 0xcbf29ce484222325ULL;
	for (uint64_t i = 0; i < 200; i++) {
		sl_buf_reset(&a);
		sl_generate_record(1, i, &a);
		h = fnv1a(a.data, a.len, h);
	}
	printf("generate golden digest: %016llx\n", (unsigned long long)h);
	assert_true(h == GOLDEN);
	sl_buf_free(&a);
	sl_buf_free(&b);
	sl_buf_free(&page);
}

static struct sl_json_val get(struct sl_json_val rec, const char *path, enum sl_json_type want)
{
	struct sl_json_val v;
	if (!sl_json_path(rec, path, strlen(path), &v) && want != SL_JSON_INVALID)
		fail_msg("missing %s", path);
	if (want != SL_JSON_INVALID && sl_json_type(v) != want)
		fail_msg("%s: type %s", path, sl_json_type_name(sl_json_type(v)));
	return v;
}

static void test_shape(void **state)
{
	struct sl_json_parser *p;
	struct sl_err err;
	struct sl_buf page;
	sl_buf_init(&page);
	assert_int_equal(sl_json_parser_new(&p, 0, 0, &err), 0);
	assert_int_equal(sl_generate_page(2024, 0, 1000, &page), 0);
	struct sl_json_val root, results, rec;
	assert_int_equal(sl_json_parse(p, page.data, page.len, &root, &err), 0);
	results = get(root, "results", SL_JSON_ARRAY);
	assert_int_equal(sl_json_len(results), 1000);
	assert_int_equal(sl_json_len(get(root, "info", SL_JSON_OBJECT)), 4);

	static const char *strings[] = {
		"gender", "name.title", "name.first", "name.last", "location.street.name", "location.city",
		"location.state", "location.country", "location.coordinates.latitude", "location.coordinates.longitude",
		"location.timezone.offset", "location.timezone.description", "email", "login.uuid", "login.username",
		"login.password", "login.salt", "login.md5", "login.sha1", "login.sha256", "dob.date", "registered.date",
		"phone", "cell", "id.name", "picture.large", "picture.medium", "picture.thumbnail", "nat"};
	int pc_num = 0, pc_str = 0, id_null = 0, male = 0, utf8 = 0;
	struct sl_json_iter it;
	sl_json_iter_init(&it, results);
	while (sl_json_array_next(&it, &rec)) {
		assert_int_equal(sl_json_len(rec), 12);
		for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++)
			get(rec, strings[i], SL_JSON_STRING);
		get(rec, "location.street.number", SL_JSON_INT);
		get(rec, "dob.age", SL_JSON_INT);
		get(rec, "registered.age", SL_JSON_INT);
		enum sl_json_type pt = sl_json_type(get(rec, "location.postcode", SL_JSON_INVALID));
		assert_true(pt == SL_JSON_INT || pt == SL_JSON_STRING);
		pc_num += pt == SL_JSON_INT;
		pc_str += pt == SL_JSON_STRING;
		enum sl_json_type it2 = sl_json_type(get(rec, "id.value", SL_JSON_INVALID));
		assert_true(it2 == SL_JSON_NULL || it2 == SL_JSON_STRING);
		id_null += it2 == SL_JSON_NULL;

		const char *s;
		size_t n;
		uint8_t u[16];
		sl_json_str(get(rec, "login.uuid", SL_JSON_STRING), &s, &n);
		assert_int_equal(sl_uuid_parse(s, n, u), 0);
		assert_int_equal(u[6] >> 4, 4);
		sl_json_str(get(rec, "login.sha256", SL_JSON_STRING), &s, &n);
		assert_int_equal(n, 64);
		sl_json_str(get(rec, "gender", SL_JSON_STRING), &s, &n);
		male += n == 4;
		sl_json_str(get(rec, "name.last", SL_JSON_STRING), &s, &n);
		for (size_t i = 0; i < n; i++)
			utf8 += (unsigned char)s[i] >= 0x80;

		/* dob.age is the whole years from dob.date to the reference day. */
		int64_t ms, age;
		sl_json_str(get(rec, "dob.date", SL_JSON_STRING), &s, &n);
		assert_int_equal(sl_timestamp_parse(s, n, &ms), 0);
		assert_true(ms >= -820454400000LL && ms < 1072915200000LL);
		sl_json_int64(get(rec, "dob.age", SL_JSON_INT), &age);
		int64_t y, ry;
		unsigned m, d, rm, rd;
		sl_date_civil_from_days(sl_days_from_ms(ms), &y, &m, &d);
		sl_date_civil_from_days(sl_days_from_ms(SL_GENERATE_REF_MS), &ry, &rm, &rd);
		assert_true(age == ry - y || age == ry - y - 1);
		assert_true(age >= 20 && age <= 81);
	}
	/* randomuser's quirks appear in realistic proportions. */
	assert_true(pc_num > 300 && pc_str > 100);
	assert_true(id_null > 50 && id_null < 400);
	assert_true(male > 400 && male < 600);
	assert_true(utf8 > 0);
	sl_json_parser_free(p);
	sl_buf_free(&page);
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(test_deterministic), cmocka_unit_test(test_shape)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
