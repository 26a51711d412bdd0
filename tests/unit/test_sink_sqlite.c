/* The SQLite sink and its reader (sink/): table from the schema, write, upsert by primary key (a row written twice
 * is one row), the exact count, a page of rows newest first with a continuation token, describe, and a reader that
 * never creates a file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/arena.h"
#include "sink/sink.h"

struct env {
	char dir[128];
	struct sl_schema schema;
	struct sl_sink_conf conf;
	struct sl_arena arena;
	int done, failed, rejected;
};

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof *e);
	snprintf(e->dir, sizeof e->dir, "/tmp/sl_sink_sqlite_XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	struct sl_err err = {0};
	sl_schema_init(&e->schema);
	assert_int_equal(sl_schema_add(&e->schema, "id", SL_T_TEXT, true, &err), 0);
	assert_int_equal(sl_schema_add(&e->schema, "n", SL_T_BIGINT, false, &err), 0);
	e->schema.key = 0;
	assert_int_equal(sl_opt_defaults(sl_sink_opts, &e->conf, &err), 0);
	e->conf.keyspace = strdup("ks");
	e->conf.table = strdup("users");
	sl_arena_init(&e->arena, 4096);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	sl_opt_free(sl_sink_opts, &e->conf);
	sl_schema_free(&e->schema);
	sl_arena_free(&e->arena);
	char cmd[200];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", e->dir);
	assert_int_equal(system(cmd), 0);
	free(e);
	return 0;
}

static void on_done(void *ctx, struct sl_sink_batch *b, int err, const char *msg)
{
	struct env *e = ctx;
	(void)b;
	(void)msg;
	if (err)
		e->failed++;
	else
		e->done++;
}

static void on_reject(void *ctx, struct sl_sink_batch *b, size_t i, const char *reason)
{
	struct env *e = ctx;
	(void)b, (void)i, (void)reason;
	e->rejected++;
}

static void write_rows(struct env *e, struct sl_sink *s, const char *const *ids, const int64_t *ns, size_t n)
{
	struct sl_record recs[8];
	struct sl_err err = {0};
	assert_true(n <= 8);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(sl_record_init(&recs[i], &e->schema, &e->arena, &err), 0);
		recs[i].v[0].null = false;
		recs[i].v[0].u.s.p = ids[i];
		recs[i].v[0].u.s.n = strlen(ids[i]);
		recs[i].v[1].null = false;
		recs[i].v[1].u.i64 = ns[i];
	}
	struct sl_offset_mark mark = {.topic = "t", .partition = 0, .next_offset = (int64_t)n};
	struct sl_sink_batch b = {.recs = recs, .n = n, .marks = &mark, .nmarks = 1, .group = "g"};
	int before = e->done;
	assert_int_equal(s->ops->write(s, &b, &err), 0);
	s->ops->poll(s, 0);
	assert_int_equal(e->done, before + 1);
}

static void test_write_upsert_count_browse_describe(void **state)
{
	struct env *e = *state;
	struct sl_err err = {0};
	struct sl_sink *s = NULL;
	assert_int_equal(sl_sink_open(NULL, e->dir, "p", &e->conf, &s, &err), 0);
	assert_true(sl_sink_counts_exactly(NULL, &e->conf));
	assert_string_equal(sl_sink_kind(NULL, &e->conf), "sqlite");
	s->done = on_done;
	s->reject = on_reject;
	s->ctx = e;
	assert_int_equal(s->ops->prepare(s, &e->schema, &err), 0);

	const char *ids[] = {"a", "b", "c"};
	const int64_t ns[] = {1, 2, 3};
	write_rows(e, s, ids, ns, 3);
	/* The same key again: an upsert, not a new row. */
	const char *again[] = {"a"};
	const int64_t n99[] = {99};
	write_rows(e, s, again, n99, 1);
	assert_int_equal(e->failed, 0);
	assert_int_equal(e->rejected, 0);

	int64_t rows = -1;
	bool exact = false;
	assert_int_equal(s->ops->rows(s, &rows, &exact, &err), 0);
	assert_int_equal(rows, 3);
	assert_true(exact);
	int64_t off = -1;
	assert_int_equal(s->ops->stored_offset(s, "g", "t", 0, &off), 0);
	assert_int_equal(off, 1); /* the last batch's mark, stored with its rows */

	/* Pages of 2, newest first (by insertion), continuing from the token. */
	struct sl_sink_page pg;
	sl_sink_page_init(&pg);
	assert_int_equal(s->ops->browse(s, NULL, 0, 0, 2, &pg, &err), 0);
	assert_string_equal(pg.order, "newest");
	assert_int_equal(pg.nrows, 2);
	assert_true(pg.more);
	assert_true(pg.next_token_len > 0);
	assert_non_null(strstr(sl_buf_cstr(&pg.columns), "\"id\""));
	assert_non_null(strstr(sl_buf_cstr(&pg.columns), "\"n\""));
	const char *r1 = sl_buf_cstr(&pg.rows);
	assert_non_null(strstr(r1, "[\"c\",3]"));
	assert_non_null(strstr(r1, "[\"b\",2]"));
	unsigned char tok[512];
	size_t ntok = pg.next_token_len;
	memcpy(tok, pg.next_token, ntok);
	sl_sink_page_free(&pg);
	sl_sink_page_init(&pg);
	assert_int_equal(s->ops->browse(s, tok, ntok, 0, 2, &pg, &err), 0);
	assert_int_equal(pg.nrows, 1);
	assert_false(pg.more);
	assert_int_equal(pg.next_token_len, 0);
	assert_string_equal(sl_buf_cstr(&pg.rows), "[\"a\",99]");
	sl_sink_page_free(&pg);
	sl_sink_page_init(&pg);
	assert_int_equal(s->ops->browse(s, (const unsigned char *)"x1", 2, 0, 2, &pg, &err), SL_EINVAL);
	sl_sink_page_free(&pg);

	struct sl_sink_column *cols = NULL;
	size_t nc = 0;
	assert_int_equal(s->ops->describe(s, &cols, &nc, &err), 0);
	assert_int_equal(nc, 2);
	assert_string_equal(cols[0].name, "id");
	assert_true(cols[0].key);
	assert_string_equal(cols[1].name, "n");
	assert_false(cols[1].key);
	assert_true(cols[1].type[0] != 0);
	free(cols);
	s->ops->destroy(s);

	/* A reader sees the same table without writing. */
	assert_int_equal(sl_sink_open_reader(NULL, e->dir, "p", &e->conf, &s, &err), 0);
	assert_int_equal(s->ops->rows(s, &rows, &exact, &err), 0);
	assert_int_equal(rows, 3);
	s->ops->destroy(s);
}

static void test_reader_never_creates(void **state)
{
	struct env *e = *state;
	struct sl_err err = {0};
	struct sl_sink *s = NULL;
	free(e->conf.keyspace);
	e->conf.keyspace = strdup("nothere");
	assert_int_equal(sl_sink_open_reader(NULL, e->dir, "p", &e->conf, &s, &err), SL_ENOTFOUND);
	assert_non_null(strstr(err.msg, "not there yet"));
	char path[200];
	snprintf(path, sizeof path, "%s/nothere.db", e->dir);
	assert_int_not_equal(access(path, F_OK), 0);
	/* discard has nothing to read. */
	free(e->conf.type);
	e->conf.type = strdup("discard");
	assert_int_equal(sl_sink_open_reader(NULL, e->dir, "p", &e->conf, &s, &err), SL_ENOTFOUND);
	assert_string_equal(sl_sink_kind(NULL, &e->conf), "discard");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_write_upsert_count_browse_describe, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reader_never_creates, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
