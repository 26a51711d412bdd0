/* The seed pipeline end to end on the embedded default, in-process: generate -> mapping -> embedded log -> processor
 * -> SQLite table. N records generated give N rows, and every column of a sample equals what the seed's format_data
 * computes from the raw record — computed here independently of the mapping code, straight from the raw JSON. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sqlite3.h>
#include <cmocka.h>

#include "codec/json.h"
#include "core/buf.h"
#include "pipeline/pipeline.h"
#include "source/generate.h"

#define N 1000
#define SEED 42

static char dir[256];

static void write_config(const char *path)
{
	const char *src = getenv("SL_SOURCE_DIR");
	char seedpath[512];
	snprintf(seedpath, sizeof seedpath, "%s/examples/seed/sluice.yaml", src ? src : ".");
	FILE *in = fopen(seedpath, "r");
	assert_non_null(in);
	FILE *out = fopen(path, "w");
	assert_non_null(out);
	char line[1024];
	while (fgets(line, sizeof line, in)) {
		if (!strncmp(line, "data_dir:", 9))
			fprintf(out, "data_dir: %s/data\n", dir);
		else if (strstr(line, "      count: "))
			fprintf(out, "      count: %d\n", N);
		else
			fputs(line, out);
	}
	fclose(in);
	fclose(out);
}

static void str_at(struct sl_json_val root, const char *path, struct sl_buf *out)
{
	struct sl_json_val v;
	assert_true(sl_json_path(root, path, strlen(path), &v));
	const char *s;
	size_t n;
	int64_t i;
	if (sl_json_str(v, &s, &n) == 0)
		sl_buf_append(out, s, n);
	else if (sl_json_int64(v, &i) == 0)
		sl_buf_printf(out, "%lld", (long long)i);
	else
		fail_msg("%s is neither a string nor an integer", path);
}

static void check_row(sqlite3 *db, struct sl_json_parser *jp, uint64_t idx)
{
	struct sl_buf raw, want, got;
	sl_buf_init(&raw);
	sl_buf_init(&want);
	sl_buf_init(&got);
	assert_int_equal(sl_generate_record(SEED, idx, &raw), 0);
	struct sl_json_val root;
	struct sl_err err = {0};
	assert_int_equal(sl_json_parse(jp, raw.data, raw.len, &root, &err), 0);
	sl_buf_reset(&want);
	str_at(root, "login.uuid", &want);
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(db,
					    "SELECT id, first_name, last_name, gender, address, post_code, email, username,"
					    " dob, registered_date, phone, picture FROM created_users WHERE id = ?",
					    -1, &st, NULL),
			 SQLITE_OK);
	sqlite3_bind_text(st, 1, sl_buf_cstr(&want), (int)want.len, SQLITE_TRANSIENT);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	/* The seed's format_data, field by field. */
	static const char *paths[] = {"login.uuid", "name.first", "name.last", "gender", NULL, "location.postcode",
				      "email", "login.username", "dob.date", "registered.date", "phone",
				      "picture.medium"};
	for (int c = 0; c < 12; c++) {
		sl_buf_reset(&want);
		if (paths[c])
			str_at(root, paths[c], &want);
		else {
			str_at(root, "location.street.number", &want);
			sl_buf_putc(&want, ' ');
			str_at(root, "location.street.name", &want);
			sl_buf_puts(&want, ", ");
			str_at(root, "location.city", &want);
			sl_buf_puts(&want, ", ");
			str_at(root, "location.state", &want);
			sl_buf_puts(&want, ", ");
			str_at(root, "location.country", &want);
		}
		const char *col = (const char *)sqlite3_column_text(st, c);
		assert_non_null(col);
		if (strcmp(col, sl_buf_cstr(&want)) != 0)
			fail_msg("record %llu column %d: table has '%s', format_data gives '%s'", (unsigned long long)idx, c,
				 col, sl_buf_cstr(&want));
	}
	sqlite3_finalize(st);
	sl_buf_free(&raw);
	sl_buf_free(&want);
	sl_buf_free(&got);
}

static void test_seed_pipeline(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "/tmp/sl_e2e_seed_XXXXXX");
	assert_non_null(mkdtemp(dir));
	char cfgpath[300];
	snprintf(cfgpath, sizeof cfgpath, "%s/seed.yaml", dir);
	write_config(cfgpath);

	struct sl_conf c;
	struct sl_err err = {0};
	assert_int_equal(sl_conf_load(cfgpath, &c, &err), 0);
	struct sl_pipeline *p = sl_conf_pipeline(&c, "users", &err);
	assert_non_null(p);
	struct sl_run_opts o = {0};
	struct sl_ingest_stats ist;
	assert_int_equal(sl_ingest_run(&c, p, &o, &ist, &err), 0);
	assert_int_equal(ist.records, N);
	assert_int_equal(ist.delivered, N);
	assert_int_equal(ist.dlq, 0);
	o.until_drained = true;
	struct sl_process_stats pst;
	assert_int_equal(sl_process_run(&c, p, &o, &pst, &err), 0);
	assert_int_equal(pst.consumed, N);
	assert_int_equal(pst.written, N);
	assert_int_equal(pst.table_rows, N);
	assert_int_equal(pst.lag, 0);

	char dbpath[300];
	snprintf(dbpath, sizeof dbpath, "%s/data/spark_streams.db", dir);
	sqlite3 *db;
	assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT COUNT(*), COUNT(DISTINCT id) FROM created_users", -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), N);
	assert_int_equal(sqlite3_column_int(st, 1), N);
	sqlite3_finalize(st);
	struct sl_json_parser *jp;
	assert_int_equal(sl_json_parser_new(&jp, 1 << 20, 64, &err), 0);
	for (uint64_t idx = 0; idx < N; idx += 37)
		check_row(db, jp, idx);
	check_row(db, jp, N - 1);
	sl_json_parser_free(jp);
	sqlite3_close(db);

	/* Processing again changes nothing: the sink's stored offsets say everything is written. */
	assert_int_equal(sl_process_run(&c, p, &o, &pst, &err), 0);
	assert_int_equal(pst.consumed, 0);
	assert_int_equal(pst.table_rows, N);
	sl_conf_free(&c);
	char cmd[400];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(test_seed_pipeline)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
