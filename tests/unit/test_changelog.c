/* Restoring a state from its changelog partition (pipeline/changelog.h): the newest value of each key wins, a
 * tombstone drops its key (and a later value brings it back), entries are copied, keys that differ only in length
 * stay apart, and a callback's error stops the restore. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/err.h"
#include "pipeline/changelog.h"

struct seen {
	char keys[16][16];
	char vals[16][16];
	int n;
	int fail_at;
};

static int collect(void *ctx, const void *k, size_t klen, const void *v, size_t vlen)
{
	struct seen *s = ctx;
	if (s->n == s->fail_at)
		return SL_EINVAL;
	snprintf(s->keys[s->n], sizeof s->keys[0], "%.*s", (int)klen, (const char *)k);
	snprintf(s->vals[s->n], sizeof s->vals[0], "%.*s", (int)vlen, (const char *)v);
	s->n++;
	return 0;
}

static void add(struct sl_changelog *l, const char *k, const char *v)
{
	assert_int_equal(sl_changelog_add(l, k, strlen(k), v, v ? strlen(v) : 0), 0);
}

static void test_newest_wins_and_tombstones_drop(void **state)
{
	(void)state;
	struct sl_changelog l = {0};
	char buf[8];
	strcpy(buf, "a");
	assert_int_equal(sl_changelog_add(&l, buf, 1, "1", 1), 0);
	buf[0] = 'z'; /* copied: the caller's buffer may change */
	add(&l, "b", "1");
	add(&l, "c", "1");
	add(&l, "a", "2");
	add(&l, "b", NULL);   /* b dropped */
	add(&l, "c", NULL);
	add(&l, "c", "3");    /* c dropped, then back */
	add(&l, "ab", "9");   /* a prefix of another key is another key */
	add(&l, "a", "3");
	struct seen s = {.fail_at = -1};
	assert_int_equal(sl_changelog_apply(&l, collect, &s), 0);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.keys[0], "a");
	assert_string_equal(s.vals[0], "3");
	assert_string_equal(s.keys[1], "ab");
	assert_string_equal(s.vals[1], "9");
	assert_string_equal(s.keys[2], "c");
	assert_string_equal(s.vals[2], "3");
	sl_changelog_free(&l);
	assert_int_equal(l.n, 0);
}

static void test_empty_value_is_not_a_tombstone(void **state)
{
	(void)state;
	struct sl_changelog l = {0};
	assert_int_equal(sl_changelog_add(&l, "k", 1, "", 0), 0); /* a value of no bytes is a value */
	struct seen s = {.fail_at = -1};
	assert_int_equal(sl_changelog_apply(&l, collect, &s), 0);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.vals[0], "");
	sl_changelog_free(&l);
}

static void test_keyless_entry_and_callback_error(void **state)
{
	(void)state;
	struct sl_changelog l = {0};
	assert_int_equal(sl_changelog_add(&l, NULL, 0, "v", 1), SL_EINVAL);
	assert_int_equal(sl_changelog_add(&l, "", 0, "v", 1), SL_EINVAL);
	for (int i = 0; i < 300; i++) { /* past the first growth */
		char k[8];
		snprintf(k, sizeof k, "k%03d", i);
		add(&l, k, "v");
	}
	struct seen s = {.fail_at = 2};
	assert_int_equal(sl_changelog_apply(&l, collect, &s), SL_EINVAL);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.keys[0], "k000");
	assert_string_equal(s.keys[1], "k001");
	sl_changelog_free(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_newest_wins_and_tombstones_drop),
		cmocka_unit_test(test_empty_value_is_not_a_tombstone),
		cmocka_unit_test(test_keyless_entry_and_callback_error),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
