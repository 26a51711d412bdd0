/* The scheduler with a controllable clock: catchup and backfill create exactly the expected runs, retries follow
 * Airflow's backoff, timeouts kill the task, upstream_failed propagates, trigger rules, and a restart mid-run neither
 * repeats nor loses a run. Task tries are real child processes (/bin/sh), so the tests take a few seconds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/log.h"
#include "pipeline/pipeline.h"
#include "scheduler/sched.h"

static int64_t fake_now;
static int64_t clock_fn(void *ctx) { (void)ctx; return fake_now; }

static int64_t at(int y, int mo, int d, int h, int mi)
{
	return sl_tz_days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60;
}

struct env {
	char dir[256], cfg[300];
	struct sl_conf c;
	struct sl_sched *s;
};

static void open_env(struct env *e, const char *dags_yaml, bool fresh)
{
	if (fresh) {
		snprintf(e->dir, sizeof e->dir, "/tmp/sl_sched_test_XXXXXX");
		assert_non_null(mkdtemp(e->dir));
		snprintf(e->cfg, sizeof e->cfg, "%s/sluice.yaml", e->dir);
		FILE *fp = fopen(e->cfg, "w");
		fprintf(fp, "data_dir: %s/data\npipelines:\n  p:\n    source: {type: generate, count: 10}\n"
			    "    topic: t\n    key: id\n    mapping: {id: id}\n    sink: {keyspace: k, table: t, primary_key: [id]}\n"
			    "dags:\n%s", e->dir, dags_yaml);
		fclose(fp);
	}
	struct sl_err err = {0};
	int rc = sl_conf_load(e->cfg, &e->c, &err);
	if (rc)
		fail_msg("%s", err.msg);
	struct sl_sched_opts o = {.config_path = e->cfg, .now = clock_fn, .quiet = true, .owner = true,
				  .kill_grace_ms = 500};
	rc = sl_sched_open(&e->s, &e->c, &o, &err);
	if (rc)
		fail_msg("%s", err.msg);
}

static void close_env(struct env *e, bool remove)
{
	sl_sched_close(e->s);
	sl_conf_free(&e->c);
	if (remove) {
		char cmd[400];
		snprintf(cmd, sizeof cmd, "rm -rf %s", e->dir);
		assert_int_equal(system(cmd), 0);
	}
}

static void tick(struct env *e)
{
	struct sl_err err = {0};
	assert_true(sl_sched_tick(e->s, &err) >= 0);
}

/* Ticks (real time passes, the fake clock does not) until the task reaches a state other than queued/running. */
static int settle(struct env *e, const char *dag, const char *run, const char *task)
{
	int st = 0;
	for (int i = 0; i < 400; i++) {
		tick(e);
		assert_int_equal(sl_sched_ti(e->s, dag, run, task, &st, NULL, NULL), 0);
		if (st != SL_TI_RUNNING && st != SL_TI_QUEUED && st != SL_TI_NONE)
			return st;
		usleep(25000);
	}
	return st;
}

static void run_state(struct env *e, const char *dag, const char *run, const char *want)
{
	char st[32] = "";
	assert_int_equal(sl_sched_run_state(e->s, dag, run, st, sizeof st), 0);
	assert_string_equal(st, want);
}

static void test_catchup(void **state)
{
	(void)state;
	struct env e;
	fake_now = at(2024, 1, 5, 12, 0);
	open_env(&e, "  d:\n    schedule: '@daily'\n    start_date: 2024-01-01\n    catchup: true\n"
		     "    max_active_runs: 100\n    tasks:\n      a: {kind: shell, command: 'true'}\n", true);
	tick(&e);
	/* Intervals [1st,2nd) .. [4th,5th) are complete; the 5th's is not. */
	assert_int_equal(sl_sched_count_runs(e.s, "d", "scheduled"), 4);
	for (int d = 1; d <= 4; d++) {
		char rid[64], st[32];
		snprintf(rid, sizeof rid, "scheduled__2024-01-%02dT00:00:00+00:00", d);
		assert_int_equal(sl_sched_run_state(e.s, "d", rid, st, sizeof st), 0);
	}
	tick(&e);
	assert_int_equal(sl_sched_count_runs(e.s, "d", "scheduled"), 4);
	fake_now = at(2024, 1, 6, 0, 0);
	tick(&e);
	assert_int_equal(sl_sched_count_runs(e.s, "d", "scheduled"), 5);
	close_env(&e, true);

	/* Without catchup only the latest complete interval runs. */
	fake_now = at(2024, 1, 5, 12, 0);
	open_env(&e, "  d:\n    schedule: '@daily'\n    start_date: 2024-01-01\n    tasks:\n"
		     "      a: {kind: shell, command: 'true'}\n", true);
	tick(&e);
	assert_int_equal(sl_sched_count_runs(e.s, "d", NULL), 1);
	char st[32];
	assert_int_equal(sl_sched_run_state(e.s, "d", "scheduled__2024-01-04T00:00:00+00:00", st, sizeof st), 0);
	close_env(&e, true);

	/* max_active_runs holds back run creation until runs finish; the time zone moves the logical dates. */
	fake_now = at(2024, 1, 3, 12, 0);
	open_env(&e, "  d:\n    schedule: '0 6 * * *'\n    timezone: Europe/Paris\n    start_date: 2024-01-01\n"
		     "    catchup: true\n    tasks:\n      a: {kind: shell, command: 'true'}\n", true);
	tick(&e);
	assert_int_equal(sl_sched_count_runs(e.s, "d", NULL), 1);
	assert_int_equal(settle(&e, "d", "scheduled__2024-01-01T05:00:00+00:00", "a"), SL_TI_SUCCESS);
	tick(&e);
	tick(&e);
	assert_int_equal(sl_sched_count_runs(e.s, "d", NULL), 2);
	close_env(&e, true);
}

static void test_backfill(void **state)
{
	(void)state;
	struct env e;
	fake_now = at(2024, 2, 1, 0, 0);
	open_env(&e, "  d:\n    schedule: '0 */6 * * *'\n    start_date: 2024-01-01\n    paused: true\n    tasks:\n"
		     "      a: {kind: shell, command: 'true'}\n", true);
	struct sl_err err = {0};
	assert_int_equal(sl_sched_backfill(e.s, "d", at(2024, 1, 10, 0, 0), at(2024, 1, 11, 0, 0), &err), 5);
	assert_int_equal(sl_sched_backfill(e.s, "d", at(2024, 1, 10, 0, 0), at(2024, 1, 11, 0, 0), &err), 0);
	assert_int_equal(sl_sched_backfill(e.s, "d", at(2024, 1, 10, 12, 0), at(2024, 1, 11, 6, 0), &err), 1);
	assert_int_equal(sl_sched_count_runs(e.s, "d", "backfill"), 6);
	/* Paused: the scheduler creates nothing itself. */
	tick(&e);
	assert_int_equal(sl_sched_count_runs(e.s, "d", "scheduled"), 0);
	sl_sched_ignore_pause(e.s, true);
	sl_sched_only(e.s, "d", "backfill__");
	assert_int_equal(sl_sched_run_until_done(e.s, "d", NULL, 20, NULL, &err), 0);
	run_state(&e, "d", "backfill__2024-01-10T06:00:00+00:00", "success");
	close_env(&e, true);
}

static void test_retries_backoff(void **state)
{
	(void)state;
	struct env e;
	fake_now = at(2024, 3, 1, 0, 0);
	open_env(&e, "  d:\n    tasks:\n      a: {kind: shell, command: 'exit 3', retries: 3, retry_delay: 10s,\n"
		     "          retry_exponential_backoff: true, max_retry_delay: 35s}\n", true);
	struct sl_err err = {0};
	char rid[128];
	int64_t ld = at(2024, 3, 1, 0, 0);
	assert_int_equal(sl_sched_trigger(e.s, "d", "{\"x\":1}", &ld, NULL, rid, sizeof rid, &err), 0);
	assert_string_equal(rid, "manual__2024-03-01T00:00:00+00:00");
	const struct sl_dag *d = sl_sched_dag(e.s, "d", &err);
	int64_t prev_wait = 0;
	for (int try = 1; try <= 3; try++) {
		assert_int_equal(settle(&e, "d", rid, "a"), SL_TI_UP_FOR_RETRY);
		int st, tn;
		int64_t next;
		sl_sched_ti(e.s, "d", rid, "a", &st, &tn, &next);
		assert_int_equal(tn, try);
		int64_t wait = next - fake_now;
		int64_t want = sl_sched_retry_wait_ms(&d->tasks[0], "d", ld, try + 1) / 1000;
		assert_int_equal(wait, want);
		/* Airflow 2.x: between delay*2^(try-1) and twice that, capped at max_retry_delay. */
		int64_t lo = 10LL << (try - 1);
		assert_true(wait >= (lo < 35 ? lo : 35) && wait <= 35 && wait < 2 * lo);
		assert_true(wait >= prev_wait);
		prev_wait = wait;
		/* Not yet due: stays up_for_retry. */
		fake_now += wait - 1;
		tick(&e);
		sl_sched_ti(e.s, "d", rid, "a", &st, NULL, NULL);
		assert_int_equal(st, SL_TI_UP_FOR_RETRY);
		fake_now += 1;
	}
	assert_int_equal(settle(&e, "d", rid, "a"), SL_TI_FAILED);
	int tn;
	sl_sched_ti(e.s, "d", rid, "a", NULL, &tn, NULL);
	assert_int_equal(tn, 4);
	tick(&e);
	run_state(&e, "d", rid, "failed");
	/* Without exponential backoff every wait is retry_delay. */
	struct sl_task t = d->tasks[0];
	t.retry_exponential_backoff = false;
	assert_int_equal(sl_sched_retry_wait_ms(&t, "d", ld, 3), 10000);
	close_env(&e, true);
}

static void test_timeout_kills(void **state)
{
	(void)state;
	struct env e;
	fake_now = at(2024, 3, 1, 0, 0);
	open_env(&e, "  d:\n    tasks:\n      slow: {kind: shell, command: 'sleep 30', execution_timeout: 5s}\n"
		     "      after: {kind: shell, command: 'true', depends_on: [slow]}\n", true);
	struct sl_err err = {0};
	char rid[128];
	assert_int_equal(sl_sched_trigger(e.s, "d", NULL, NULL, NULL, rid, sizeof rid, &err), 0);
	tick(&e);
	tick(&e);
	int st;
	sl_sched_ti(e.s, "d", rid, "slow", &st, NULL, NULL);
	assert_int_equal(st, SL_TI_RUNNING);
	fake_now += 4;
	tick(&e);
	sl_sched_ti(e.s, "d", rid, "slow", &st, NULL, NULL);
	assert_int_equal(st, SL_TI_RUNNING);
	fake_now += 2;
	time_t t0 = time(NULL);
	assert_int_equal(settle(&e, "d", rid, "slow"), SL_TI_FAILED);
	assert_true(time(NULL) - t0 < 5); /* killed, not waited for */
	tick(&e);
	sl_sched_ti(e.s, "d", rid, "after", &st, NULL, NULL);
	assert_int_equal(st, SL_TI_UPSTREAM_FAILED);
	run_state(&e, "d", rid, "failed");
	char lp[1200], line[512] = "";
	sl_sched_log_path(e.s, "d", rid, "slow", 1, lp, sizeof lp);
	FILE *fp = fopen(lp, "r");
	assert_non_null(fp);
	char last[512] = "";
	while (fgets(line, sizeof line, fp))
		snprintf(last, sizeof last, "%s", line);
	fclose(fp);
	assert_non_null(strstr(last, "after execution_timeout"));
	close_env(&e, true);
}

static void test_trigger_rules(void **state)
{
	(void)state;
	struct env e;
	fake_now = at(2024, 3, 1, 0, 0);
	open_env(&e, "  d:\n    tasks:\n"
		     "      bad: {kind: shell, command: 'echo oops; exit 1'}\n"
		     "      good: {kind: shell, command: 'echo fine'}\n"
		     "      skip: {kind: shell, command: 'exit 99'}\n"
		     "      b: {kind: shell, command: 'true', depends_on: [bad]}\n"
		     "      c: {kind: shell, command: 'true', depends_on: [b]}\n"
		     "      cleanup: {kind: shell, command: 'true', depends_on: [c], trigger_rule: all_done}\n"
		     "      alert: {kind: shell, command: 'true', depends_on: [bad, good], trigger_rule: one_failed}\n"
		     "      either: {kind: shell, command: 'true', depends_on: [bad, good], trigger_rule: one_success}\n"
		     "      nf: {kind: shell, command: 'true', depends_on: [skip, good], trigger_rule: none_failed}\n"
		     "      as: {kind: shell, command: 'true', depends_on: [skip, good]}\n"
		     "      af: {kind: shell, command: 'true', depends_on: [bad], trigger_rule: all_failed}\n",
		 true);
	struct sl_err err = {0};
	char rid[128];
	assert_int_equal(sl_sched_trigger(e.s, "d", NULL, NULL, NULL, rid, sizeof rid, &err), 0);
	assert_int_equal(sl_sched_run_until_done(e.s, "d", rid, 20, NULL, &err), 0);
	struct {
		const char *task;
		int state;
	} want[] = {{"bad", SL_TI_FAILED},      {"good", SL_TI_SUCCESS},          {"skip", SL_TI_SKIPPED},
		    {"b", SL_TI_UPSTREAM_FAILED}, {"c", SL_TI_UPSTREAM_FAILED},     {"cleanup", SL_TI_SUCCESS},
		    {"alert", SL_TI_SUCCESS},     {"either", SL_TI_SUCCESS},        {"nf", SL_TI_SUCCESS},
		    {"as", SL_TI_SKIPPED},        {"af", SL_TI_SUCCESS}};
	for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
		int st;
		sl_sched_ti(e.s, "d", rid, want[i].task, &st, NULL, NULL);
		if (st != want[i].state)
			fail_msg("task %s: %s, want %s", want[i].task, sl_sched_state_name(st),
				 sl_sched_state_name(want[i].state));
	}
	/* Every leaf succeeded or was skipped: the run succeeds even though 'bad' failed (Airflow's leaf rule). */
	run_state(&e, "d", rid, "success");
	struct sl_buf b;
	sl_buf_init(&b);
	int status;
	char path[300];
	snprintf(path, sizeof path, "/api/v1/dags/d/dagRuns/%s/taskInstances/bad/logs/1", rid);
	sl_sched_api_handle(e.s, "GET", path, NULL, NULL, 0, &b, &status);
	assert_int_equal(status, 200);
	assert_non_null(strstr(sl_buf_cstr(&b), "oops"));
	sl_buf_free(&b);
	close_env(&e, true);
}

static void test_restart(void **state)
{
	(void)state;
	struct env e;
	fake_now = at(2024, 1, 2, 0, 30);
	open_env(&e, "  d:\n    schedule: '@daily'\n    start_date: 2024-01-01\n    catchup: true\n    tasks:\n"
		     "      long: {kind: shell, command: 'sleep 30', retries: 0}\n"
		     "      next: {kind: shell, command: 'true', depends_on: [long]}\n", true);
	const char *rid = "scheduled__2024-01-01T00:00:00+00:00";
	tick(&e);
	tick(&e);
	int st, tn;
	sl_sched_ti(e.s, "d", rid, "long", &st, &tn, NULL);
	assert_int_equal(st, SL_TI_RUNNING);
	assert_int_equal(tn, 1);
	/* The scheduler dies (its child keeps running, as after kill -9), and another starts. */
	sl_sched_abandon(e.s);
	sl_conf_free(&e.c);
	FILE *fp = fopen(e.cfg, "a"); /* the same DAG, with a task that now finishes quickly */
	fclose(fp);
	char sed[700];
	snprintf(sed, sizeof sed, "sed -i 's/sleep 30/sleep 0/' %s", e.cfg);
	assert_int_equal(system(sed), 0);
	open_env(&e, NULL, false);
	sl_sched_ti(e.s, "d", rid, "long", &st, &tn, NULL);
	assert_int_equal(st, SL_TI_QUEUED); /* re-queued, the try not spent */
	assert_int_equal(tn, 0);
	tick(&e);
	assert_int_equal(sl_sched_count_runs(e.s, "d", NULL), 1);
	assert_int_equal(settle(&e, "d", rid, "long"), SL_TI_SUCCESS);
	sl_sched_ti(e.s, "d", rid, "long", NULL, &tn, NULL);
	assert_int_equal(tn, 1);
	struct sl_err err = {0};
	sl_sched_only(e.s, "d", rid);
	assert_int_equal(sl_sched_run_until_done(e.s, "d", rid, 20, NULL, &err), 0);
	sl_sched_only(e.s, NULL, NULL);
	run_state(&e, "d", rid, "success");
	/* Restart again, a day later: exactly the one missing run appears. */
	close_env(&e, false);
	fake_now = at(2024, 1, 3, 0, 30);
	open_env(&e, NULL, false);
	tick(&e);
	tick(&e);
	assert_int_equal(sl_sched_count_runs(e.s, "d", NULL), 2);
	close_env(&e, false);
	open_env(&e, NULL, false);
	tick(&e);
	assert_int_equal(sl_sched_count_runs(e.s, "d", NULL), 2);
	/* A second scheduler on the same data_dir is refused. */
	struct sl_sched *s2;
	struct sl_sched_opts o = {.config_path = e.cfg, .now = clock_fn, .quiet = true, .owner = true};
	assert_int_equal(sl_sched_open(&s2, &e.c, &o, &err), SL_EAGAIN);
	assert_non_null(strstr(err.msg, "another sluice scheduler"));
	close_env(&e, true);
}

static void test_config_errors(void **state)
{
	(void)state;
	const char *cases[][2] = {
		{"  d:\n    tasks:\n      a: {kind: shell, command: x, depends_on: [bb]}\n      b: {kind: shell, command: y}\n",
		 "no task 'bb'"},
		{"  d:\n    tasks:\n      a: {kind: shell, command: x, depends_on: [b]}\n"
		 "      b: {kind: shell, command: y, depends_on: [a]}\n",
		 "cycle"},
		{"  d:\n    schedule: '@daily'\n    tasks:\n      a: {kind: shell, command: x}\n", "needs start_date"},
		{"  d:\n    schedule: '0 25 * * *'\n    start_date: 2024-01-01\n    tasks:\n      a: {kind: shell, command: x}\n",
		 "hour field '25'"},
		{"  d:\n    tasks:\n      a: {kind: ingest, pipeline: p}\n", "for: (60s) or count:"},
		{"  d:\n    tasks:\n      a: {kind: shell, comand: x}\n", "comand"},
		{"  d:\n    timezone: Europe/Pariss\n    tasks:\n      a: {kind: shell, command: x}\n", "Europe/Pariss"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		char dir[] = "/tmp/sl_sched_cfg_XXXXXX", path[300];
		assert_non_null(mkdtemp(dir));
		snprintf(path, sizeof path, "%s/s.yaml", dir);
		FILE *fp = fopen(path, "w");
		fprintf(fp, "data_dir: %s\npipelines:\n  p:\n    source: {type: generate, count: 10}\n    topic: t\n"
			    "    key: id\n    mapping: {id: id}\n    sink: {keyspace: k, table: t, primary_key: [id]}\ndags:\n%s",
			dir, cases[i][0]);
		fclose(fp);
		struct sl_conf c;
		struct sl_err err = {0};
		assert_int_equal(sl_conf_load(path, &c, &err), 0);
		struct sl_sched *s;
		struct sl_sched_opts o = {.config_path = path, .quiet = true};
		int rc = sl_sched_open(&s, &c, &o, &err);
		if (rc == 0) {
			sl_sched_close(s);
			fail_msg("case %zu loaded", i);
		}
		if (!strstr(err.msg, cases[i][1]))
			fail_msg("case %zu: '%s' lacks '%s'", i, err.msg, cases[i][1]);
		sl_conf_free(&c);
		char cmd[300];
		snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
		assert_int_equal(system(cmd), 0);
	}
}

static void test_api(void **state)
{
	(void)state;
	struct env e;
	fake_now = at(2024, 3, 1, 0, 0);
	open_env(&e, "  d:\n    schedule: '@hourly'\n    start_date: 2024-01-01\n    tasks:\n"
		     "      a: {kind: shell, command: 'echo $SLUICE_CONF'}\n", true);
	struct sl_buf b;
	sl_buf_init(&b);
	int status;
	sl_sched_api_handle(e.s, "GET", "/api/v1/dags", NULL, NULL, 0, &b, &status);
	assert_int_equal(status, 200);
	assert_non_null(strstr(sl_buf_cstr(&b), "\"dag_id\":\"d\",\"is_paused\":false"));
	const char *patch = "{\"is_paused\": true}";
	sl_sched_api_handle(e.s, "PATCH", "/api/v1/dags/d", NULL, patch, strlen(patch), &b, &status);
	assert_int_equal(status, 200);
	assert_true(sl_sched_is_paused(e.s, "d"));
	const char *post = "{\"dag_run_id\": \"api_run\", \"conf\": {\"n\": 5}}";
	sl_sched_api_handle(e.s, "POST", "/api/v1/dags/d/dagRuns", NULL, post, strlen(post), &b, &status);
	assert_int_equal(status, 200);
	assert_non_null(strstr(sl_buf_cstr(&b), "\"dag_run_id\":\"api_run\""));
	assert_non_null(strstr(sl_buf_cstr(&b), "\"conf\":{\"n\":5}"));
	sl_sched_api_handle(e.s, "POST", "/api/v1/dags/d/dagRuns", NULL, post, strlen(post), &b, &status);
	assert_int_equal(status, 409);
	sl_sched_api_handle(e.s, "GET", "/api/v1/dags/nope", NULL, NULL, 0, &b, &status);
	assert_int_equal(status, 404);
	sl_sched_api_handle(e.s, "GET", "/api/v1/dags/d/dagRuns/api_run/taskInstances", NULL, NULL, 0, &b, &status);
	assert_int_equal(status, 200);
	assert_non_null(strstr(sl_buf_cstr(&b), "\"task_id\":\"a\""));
	sl_sched_api_handle(e.s, "GET", "/api/v1/dags/d/dagRuns", "limit=5", NULL, 0, &b, &status);
	assert_non_null(strstr(sl_buf_cstr(&b), "\"total_entries\":1"));
	sl_buf_free(&b);
	close_env(&e, true);
}

/* A manual run's data interval is Airflow's: the last complete interval before it, not the one it starts. */
static void test_manual_data_interval(void **state)
{
	(void)state;
	struct env e;
	fake_now = at(2024, 1, 25, 1, 0);
	open_env(&e, "  d:\n    schedule: '@daily'\n    start_date: 2024-01-01\n    paused: true\n    tasks:\n"
		     "      a: {kind: shell, command: 'true'}\n  n:\n    tasks:\n      a: {kind: shell, command: 'true'}\n",
		     true);
	struct sl_err err = {0};
	char rid[128];
	struct sl_buf b;
	sl_buf_init(&b);
	assert_int_equal(sl_sched_trigger(e.s, "d", NULL, NULL, NULL, rid, sizeof rid, &err), 0);
	assert_string_equal(rid, "manual__2024-01-25T01:00:00+00:00");
	assert_int_equal(sl_sched_run_json(e.s, "d", rid, &b, &err), 0);
	sl_buf_putc(&b, 0);
	assert_non_null(strstr(b.data, "\"data_interval_start\":\"2024-01-24T00:00:00+00:00\""));
	assert_non_null(strstr(b.data, "\"data_interval_end\":\"2024-01-25T00:00:00+00:00\""));
	/* On a fire time exactly: the interval that ends there. */
	int64_t ld = at(2024, 1, 26, 0, 0);
	assert_int_equal(sl_sched_trigger(e.s, "d", NULL, &ld, NULL, rid, sizeof rid, &err), 0);
	sl_buf_reset(&b);
	assert_int_equal(sl_sched_run_json(e.s, "d", rid, &b, &err), 0);
	sl_buf_putc(&b, 0);
	assert_non_null(strstr(b.data, "\"data_interval_start\":\"2024-01-25T00:00:00+00:00\""));
	assert_non_null(strstr(b.data, "\"data_interval_end\":\"2024-01-26T00:00:00+00:00\""));
	/* No schedule: the logical date itself. */
	assert_int_equal(sl_sched_trigger(e.s, "n", NULL, NULL, NULL, rid, sizeof rid, &err), 0);
	sl_buf_reset(&b);
	assert_int_equal(sl_sched_run_json(e.s, "n", rid, &b, &err), 0);
	sl_buf_putc(&b, 0);
	assert_non_null(strstr(b.data, "\"data_interval_start\":\"2024-01-25T01:00:00+00:00\""));
	assert_non_null(strstr(b.data, "\"data_interval_end\":\"2024-01-25T01:00:00+00:00\""));
	sl_buf_free(&b);
	close_env(&e, true);
}

int main(void)
{
	sl_log_set_level(SL_LOG_ERROR);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_catchup),       cmocka_unit_test(test_backfill),
		cmocka_unit_test(test_retries_backoff), cmocka_unit_test(test_timeout_kills),
		cmocka_unit_test(test_trigger_rules), cmocka_unit_test(test_restart),
		cmocka_unit_test(test_config_errors), cmocka_unit_test(test_api),
		cmocka_unit_test(test_manual_data_interval),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
