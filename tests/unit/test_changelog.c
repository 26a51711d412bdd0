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

#include "core/arena.h"
#include "core/config.h"
#include "core/err.h"
#include "core/record.h"
#include "expr/expr.h"
#include "pipeline/agg_stage.h"
#include "pipeline/aggregate.h"
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

/* ---- a state written as changelog entries and read back ---- */

struct agg_fixture {
	struct sl_cfg_doc doc;
	struct sl_schema in, out;
	struct sl_aggregate_conf *conf;
	struct sl_expr_env env;
	struct sl_arena arena;
};

static void fixture(struct agg_fixture *f)
{
	memset(f, 0, sizeof *f);
	struct sl_err err = {0};
	static const char yaml[] = "group_by: [country]\n"
				   "window: { size: 10s, time: arrival, lateness: 0s }\n"
				   "measures: { c: \"count()\", s: \"sum(n)\", d: \"count_distinct(n)\" }\n"
				   "emit: final\n";
	assert_int_equal(sl_cfg_load_string(&f->doc, "agg.yaml", yaml, strlen(yaml), &err), 0);
	assert_int_equal(sl_schema_add(&f->in, "country", SL_T_TEXT, false, &err), 0);
	assert_int_equal(sl_schema_add(&f->in, "n", SL_T_BIGINT, false, &err), 0);
	assert_int_equal(sl_aggregate_conf_load(f->doc.root, &f->in, "outputs.x", &f->out, &f->conf, &err), 0);
	sl_expr_env_init(&f->env);
	sl_arena_init(&f->arena, 1 << 16);
}

static void fixture_free(struct agg_fixture *f)
{
	sl_aggregate_conf_free(f->conf);
	sl_schema_free(&f->in);
	sl_schema_free(&f->out);
	sl_cfg_free(&f->doc);
	sl_expr_env_free(&f->env);
	sl_arena_free(&f->arena);
}

static void rec_add(struct agg_fixture *f, struct sl_aggregate *g, const char *country, int64_t n, int64_t t)
{
	struct sl_value v[2] = {{.u.s = {country, strlen(country)}}, {.u.i64 = n}};
	struct sl_record r = {.schema = &f->in, .v = v};
	bool late;
	struct sl_err err = {0};
	assert_int_equal(sl_aggregate_add(g, &r, 0, t, &f->env, &f->arena, &late, &err), 0);
	assert_false(late);
}

/* Flushes g; its state entries go to the changelog (as the aggregate stage produces them), its rows are returned. */
static size_t flush(struct agg_fixture *f, struct sl_aggregate *g, struct sl_changelog *cl, struct sl_record **rows)
{
	struct sl_state_put *puts;
	size_t nrows, nputs;
	struct sl_err err = {0};
	assert_int_equal(sl_aggregate_flush(g, INT64_MIN, &f->arena, rows, &nrows, &puts, &nputs, &err), 0);
	for (size_t i = 0; cl && i < nputs; i++)
		assert_int_equal(sl_changelog_add(cl, puts[i].k, puts[i].klen, puts[i].v, puts[i].vlen), 0);
	return nrows;
}

static int64_t col(const struct agg_fixture *f, const struct sl_record *r, const char *name)
{
	int i = sl_schema_find(&f->out, name, strlen(name));
	assert_true(i >= 0);
	return r->v[i].u.i64;
}

/* A state rebuilt from its changelog (keys repeated over batches, windows that closed tombstoned) carries on as the
 * original: same watermark, windows and counts, and the same final rows once the next windows close. */
static void test_aggregate_restored_from_its_changelog(void **state)
{
	(void)state;
	struct agg_fixture f;
	fixture(&f);
	struct sl_err err = {0};
	struct sl_aggregate *a, *b;
	assert_int_equal(sl_aggregate_new(f.conf, &f.out, 1, &a, &err), 0);
	assert_int_equal(sl_aggregate_new(f.conf, &f.out, 1, &b, &err), 0);
	struct sl_changelog cl = {0};
	struct sl_record *rows;
	rec_add(&f, a, "fr", 1, 1000);
	rec_add(&f, a, "de", 2, 2000);
	assert_int_equal(flush(&f, a, &cl, &rows), 0); /* final: no row before the window closes */
	rec_add(&f, a, "fr", 3, 3000);
	rec_add(&f, a, "fr", 3, 12000); /* the watermark passes [0, 10s): its rows, and tombstones */
	assert_int_equal(flush(&f, a, &cl, &rows), 2);
	rec_add(&f, a, "de", 5, 15000);
	assert_int_equal(flush(&f, a, &cl, &rows), 0);
	assert_int_equal(sl_changelog_apply(&cl, sl_aggregate_restore, b), 0);
	struct sl_aggregate_stats sa, sb;
	sl_aggregate_stats(a, &sa);
	sl_aggregate_stats(b, &sb);
	assert_int_equal(sa.watermark_ms, 15000);
	assert_int_equal(sb.watermark_ms, sa.watermark_ms);
	assert_int_equal(sb.open_windows, 2); /* fr and de in [10s, 20s); the closed ones were tombstoned */
	assert_int_equal(sb.open_windows, sa.open_windows);
	assert_int_equal(sb.counted, sa.counted);
	/* Both go on with the same records: the same rows. */
	struct sl_record *ra, *rb;
	rec_add(&f, a, "fr", 4, 25000);
	rec_add(&f, b, "fr", 4, 25000);
	size_t na = flush(&f, a, NULL, &ra), nb = flush(&f, b, NULL, &rb);
	assert_int_equal(na, 2);
	assert_int_equal(nb, na);
	int64_t fr_c = 0, fr_s = 0, fr_d = 0;
	for (size_t i = 0; i < na; i++) {
		bool fr = !memcmp(ra[i].v[0].u.s.p, "fr", 2);
		size_t j = 0;
		while (j < nb && !(rb[j].v[0].u.s.n == ra[i].v[0].u.s.n &&
				   !memcmp(rb[j].v[0].u.s.p, ra[i].v[0].u.s.p, ra[i].v[0].u.s.n)))
			j++;
		assert_true(j < nb);
		assert_int_equal(col(&f, &rb[j], "c"), col(&f, &ra[i], "c"));
		assert_int_equal(col(&f, &rb[j], "s"), col(&f, &ra[i], "s"));
		assert_int_equal(col(&f, &rb[j], "d"), col(&f, &ra[i], "d"));
		if (fr) {
			fr_c = col(&f, &rb[j], "c");
			fr_s = col(&f, &rb[j], "s");
			fr_d = col(&f, &rb[j], "d");
		}
	}
	assert_int_equal(fr_c, 1); /* [10s, 20s) of fr: the record at 12 s */
	assert_int_equal(fr_s, 3);
	assert_int_equal(fr_d, 1);
	sl_changelog_free(&cl);
	sl_aggregate_free(a);
	sl_aggregate_free(b);
	fixture_free(&f);
}

static void part_add(struct agg_fixture *f, struct sl_aggregate *g, int32_t part, int64_t t, bool want_late)
{
	struct sl_value v[2] = {{.u.s = {"fr", 2}}, {.u.i64 = 1}};
	struct sl_record r = {.schema = &f->in, .v = v};
	bool late;
	struct sl_err err = {0};
	assert_int_equal(sl_aggregate_add(g, &r, part, t, &f->env, &f->arena, &late, &err), 0);
	assert_int_equal(late, want_late);
}

static int64_t wm(const struct sl_aggregate *g)
{
	struct sl_aggregate_stats st;
	sl_aggregate_stats(g, &st);
	return st.watermark_ms;
}

/* Sources tracked (the scale-out mode): the watermark is the slowest active source partition's; it does not move
 * before every one has reported; a backlog read one partition after another makes nothing late; idle partitions
 * are left out, and once all are, the newest of all closes the windows; the idle flags are state, restored from the
 * changelog; a record of an idle partition makes it active again. */
static void test_watermark_follows_the_slowest_source(void **state)
{
	(void)state;
	struct agg_fixture f;
	fixture(&f);
	struct sl_err err = {0};
	struct sl_aggregate *a, *b;
	assert_int_equal(sl_aggregate_new(f.conf, &f.out, 3, &a, &err), 0);
	assert_int_equal(sl_aggregate_track_sources(a), 0);
	struct sl_changelog cl = {0};
	struct sl_record *rows;
	/* Source partition 0 read to 100 s first (a backlog): nothing moves, 1 and 2 have not reported. */
	for (int64_t t = 1000; t <= 100000; t += 1000)
		part_add(&f, a, 0, t, false);
	sl_aggregate_source_progress(a, 0, 100000, false);
	assert_int_equal(flush(&f, a, &cl, &rows), 0);
	assert_int_equal(wm(a), INT64_MIN);
	/* Partition 1 reports 30 s, partition 2 nothing yet: still not moved. */
	sl_aggregate_source_progress(a, 1, 30000, false);
	assert_int_equal(flush(&f, a, &cl, &rows), 0);
	assert_int_equal(wm(a), INT64_MIN);
	/* Partition 2's records from the start: none is late; the watermark is the slowest's (2 at 5 s). */
	for (int64_t t = 500; t <= 5500; t += 1000)
		part_add(&f, a, 2, t, false);
	assert_int_equal(flush(&f, a, &cl, &rows), 0);
	assert_int_equal(wm(a), 5500);
	part_add(&f, a, 1, 6000, false); /* behind partition 0 by far, not late */
	/* Partition 2 read to its end (idle), partition 1 at 30 s: [0, 10s) to [20s, 30s) close. */
	sl_aggregate_source_progress(a, 2, 5500, true);
	assert_int_equal(flush(&f, a, &cl, &rows), 3);
	assert_int_equal(wm(a), 30000);
	/* Restored from the changelog: same watermark, and partition 2 still idle (left out of the minimum). */
	assert_int_equal(sl_aggregate_new(f.conf, &f.out, 3, &b, &err), 0);
	assert_int_equal(sl_aggregate_track_sources(b), 0);
	assert_int_equal(sl_changelog_apply(&cl, sl_aggregate_restore, b), 0);
	assert_int_equal(wm(b), 30000);
	sl_aggregate_source_progress(b, 1, 60000, false);
	assert_int_equal(flush(&f, b, NULL, &rows), 3); /* [30s, 40s) .. [50s, 60s): the minimum of 0 and 1 is 60 s */
	assert_int_equal(wm(b), 60000);
	/* Every partition idle: the newest of all (100 s). */
	sl_aggregate_source_progress(b, 0, 100000, true);
	sl_aggregate_source_progress(b, 1, 60000, true);
	assert_int_equal(flush(&f, b, NULL, &rows), 4); /* [60s, 70s) .. [90s, 100s) */
	assert_int_equal(wm(b), 100000);
	part_add(&f, b, 2, 99000, true); /* [90s, 100s) closed: late */
	part_add(&f, b, 2, 105000, false); /* partition 2 active again: it holds the watermark at 105 s */
	sl_aggregate_source_progress(b, 0, 200000, false); /* partition 1 (idle, 60 s) is left out */
	assert_int_equal(flush(&f, b, NULL, &rows), 0);
	assert_int_equal(wm(b), 105000);
	/* The marker's header value, both ways. */
	char buf[64];
	int32_t p;
	int64_t t;
	bool idle;
	sl_agg_stage_progress_format(buf, sizeof buf, 2, 1765000000123, true);
	assert_string_equal(buf, "2 1765000000123 idle");
	assert_int_equal(sl_agg_stage_progress_parse(buf, &p, &t, &idle), 0);
	assert_true(p == 2 && t == 1765000000123 && idle);
	sl_agg_stage_progress_format(buf, sizeof buf, 0, INT64_MIN, false);
	assert_int_equal(sl_agg_stage_progress_parse(buf, &p, &t, &idle), 0);
	assert_true(p == 0 && t == INT64_MIN && !idle);
	assert_int_equal(sl_agg_stage_progress_parse("1 12 busy", &p, &t, &idle), SL_EINVAL);
	assert_int_equal(sl_agg_stage_progress_parse("x 12 idle", &p, &t, &idle), SL_EINVAL);
	assert_int_equal(sl_agg_stage_progress_parse("1 idle", &p, &t, &idle), SL_EINVAL);
	sl_changelog_free(&cl);
	sl_aggregate_free(a);
	sl_aggregate_free(b);
	fixture_free(&f);
}

/* The repartition key: equal group values, equal bytes; other values, other bytes. */
static void test_group_key(void **state)
{
	(void)state;
	struct agg_fixture f;
	fixture(&f);
	struct sl_err err = {0};
	const void *k1, *k2, *k3;
	size_t l1, l2, l3;
	struct sl_value v1[2] = {{.u.s = {"fr", 2}}, {.u.i64 = 1}}, v2[2] = {{.u.s = {"fr", 2}}, {.u.i64 = 9}},
			v3[2] = {{.u.s = {"de", 2}}, {.u.i64 = 1}};
	struct sl_record r1 = {.schema = &f.in, .v = v1}, r2 = {.schema = &f.in, .v = v2}, r3 = {.schema = &f.in, .v = v3};
	assert_int_equal(sl_aggregate_group_key(f.conf, &r1, &f.env, &f.arena, &k1, &l1, &err), 0);
	assert_int_equal(sl_aggregate_group_key(f.conf, &r2, &f.env, &f.arena, &k2, &l2, &err), 0);
	assert_int_equal(sl_aggregate_group_key(f.conf, &r3, &f.env, &f.arena, &k3, &l3, &err), 0);
	assert_true(l1 > 0 && l1 == l2 && !memcmp(k1, k2, l1));
	assert_false(l1 == l3 && !memcmp(k1, k3, l1));
	fixture_free(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_newest_wins_and_tombstones_drop),
		cmocka_unit_test(test_empty_value_is_not_a_tombstone),
		cmocka_unit_test(test_keyless_entry_and_callback_error),
		cmocka_unit_test(test_aggregate_restored_from_its_changelog),
		cmocka_unit_test(test_group_key),
		cmocka_unit_test(test_watermark_follows_the_slowest_source),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
