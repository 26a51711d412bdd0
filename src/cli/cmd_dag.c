/* `sluice dag list|show|trigger|pause|unpause|runs|backfill|test` over the scheduler library, and the hidden
 * `sluice dag run-task` that a cql or sensor task try runs as (a child process, so timeouts can kill it). */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "pipeline/pipeline.h"
#include "scheduler/sched.h"

static volatile sig_atomic_t stop_flag;
static void on_signal(int sig) { (void)sig; stop_flag = 1; }

static const char dag_usage[] =
	"Usage: sluice dag COMMAND [-c FILE] ...\n\n"
	"  list                              DAGs with schedule, next run and paused flag\n"
	"  show DAG                          tasks, dependencies and options\n"
	"  trigger DAG [--conf JSON] [--run-id ID] [--wait]   create a manual run (run by `sluice scheduler`)\n"
	"  pause DAG | unpause DAG\n"
	"  runs DAG [--limit N]              run history (JSON, like Airflow's API)\n"
	"  tasks DAG RUN_ID                  task instances of a run (JSON)\n"
	"  backfill DAG --start DATE --end DATE   create and run the runs of [start, end] now, in this process\n"
	"  test DAG [DATE]                   run the DAG once in this process and print each task's state\n"
	"-c FILE defaults to sluice.yaml. Dates: 2024-01-01 or 2024-01-01T06:00:00Z.\n";

int sl_cli_open_sched(const char *cmd, const char *cfg, bool owner, struct sl_conf *c, struct sl_sched **s)
{
	struct sl_err err = {0};
	if (sl_conf_load(cfg, c, &err))
		return sl_cli_fail(cmd, "%s", err.msg);
	/* The scheduler keeps both pointers for the tasks it starts later: not on this stack frame. */
	static char self[PATH_MAX], cfgabs[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	self[n > 0 ? n : 0] = 0;
	if (!realpath(cfg, cfgabs))
		snprintf(cfgabs, sizeof cfgabs, "%s", cfg);
	struct sl_sched_opts o = {.config_path = cfgabs, .sluice_bin = n > 0 ? self : "sluice", .owner = owner};
	if (sl_sched_open(s, c, &o, &err)) {
		sl_conf_free(c);
		return sl_cli_fail(cmd, "%s", err.msg);
	}
	return 0;
}

static int parse_date(const char *cmd, const char *s, const struct sl_dag *d, int64_t *out)
{
	if (sl_sched_parse_time(s, d->tz, out))
		return sl_cli_fail(cmd, "'%s' is not a date like 2024-01-01 or 2024-01-01T06:00:00Z", s);
	return 0;
}

static void print_tis(struct sl_sched *s, const struct sl_dag *d, const char *run_id)
{
	for (size_t i = 0; i < d->ntasks; i++) {
		int st = 0, tn = 0;
		sl_sched_ti(s, d->id, run_id, d->tasks[i].id, &st, &tn, NULL);
		char log[1200] = "";
		if (tn)
			sl_sched_log_path(s, d->id, run_id, d->tasks[i].id, tn, log, sizeof log);
		printf("  %-28s %-16s tries=%d %s\n", d->tasks[i].id, sl_sched_state_name(st), tn, log);
	}
}

/* `dag run-task DAG TASK`: the body of a cql or sensor try (src/scheduler/tasks.c). */
static int run_task(struct sl_conf *c, struct sl_dag *d, struct sl_task *t)
{
	struct sl_err err = {0};
	int rc = sl_sched_task_run(c, d, t, &stop_flag, stdout, &err);
	if (rc < 0)
		return sl_cli_fail("dag run-task", "%s", err.msg);
	return rc;
}

int sl_cli_dag(int argc, char **argv)
{
	const char *cfg = "sluice.yaml", *conf_json = NULL, *run_id = NULL, *start_s = NULL, *end_s = NULL;
	const char *pos[4] = {0};
	int npos = 0, limit = 25;
	bool wait = false;
	for (int i = 1; i < argc; i++) {
		if ((!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) && i + 1 < argc)
			cfg = argv[++i];
		else if (!strcmp(argv[i], "--conf") && i + 1 < argc)
			conf_json = argv[++i];
		else if (!strcmp(argv[i], "--run-id") && i + 1 < argc)
			run_id = argv[++i];
		else if ((!strcmp(argv[i], "--start") || !strcmp(argv[i], "-s")) && i + 1 < argc)
			start_s = argv[++i];
		else if ((!strcmp(argv[i], "--end") || !strcmp(argv[i], "-e")) && i + 1 < argc)
			end_s = argv[++i];
		else if (!strcmp(argv[i], "--limit") && i + 1 < argc)
			limit = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--wait"))
			wait = true;
		else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			fputs(dag_usage, stdout);
			return 0;
		} else if (argv[i][0] == '-' && argv[i][1])
			return sl_cli_fail("dag", "unknown option '%s'\n%s", argv[i], dag_usage) + 1;
		else if (npos < 4)
			pos[npos++] = argv[i];
		else
			return sl_cli_fail("dag", "unexpected argument '%s'", argv[i]) + 1;
	}
	if (!npos) {
		fputs(dag_usage, stderr);
		return 2;
	}
	const char *sub = pos[0];
	static const char *const subs[] = {"list", "show", "trigger", "pause", "unpause", "runs", "tasks", "backfill",
					   "test", "run-task"};
	bool known = false;
	for (size_t i = 0; i < sizeof subs / sizeof *subs; i++)
		known |= !strcmp(sub, subs[i]);
	if (!known)
		return sl_cli_fail("dag", "unknown command '%s'\n%s", sub, dag_usage) + 1;
	if (strcmp(sub, "list") && npos < 2)
		return sl_cli_fail("dag", "%s needs a DAG id", sub) + 1;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	struct sl_conf c;
	struct sl_sched *s;
	struct sl_err err = {0};
	if (!strcmp(sub, "run-task")) {
		/* A task try: the config and its DAGs only, never the scheduler's database. */
		struct sl_dag *ds;
		size_t nd;
		if (sl_conf_load(cfg, &c, &err) || sl_sched_dags_load(c.dags, &ds, &nd, &err))
			return sl_cli_fail("dag", "%s", err.msg);
		int r = -1;
		for (size_t i = 0; i < nd; i++)
			for (size_t k = 0; npos >= 3 && !strcmp(ds[i].id, pos[1]) && k < ds[i].ntasks; k++)
				if (!strcmp(ds[i].tasks[k].id, pos[2]))
					r = run_task(&c, &ds[i], &ds[i].tasks[k]);
		if (r < 0)
			r = sl_cli_fail("dag", "run-task: no task '%s' in DAG '%s'", npos >= 3 ? pos[2] : "", pos[1]);
		sl_sched_dags_free(ds, nd);
		sl_conf_free(&c);
		return r;
	}
	if (sl_cli_open_sched("dag", cfg, false, &c, &s))
		return 1;
	int rc = 0;
	struct sl_dag *d = npos >= 2 ? sl_sched_dag(s, pos[1], &err) : NULL;
	if (npos >= 2 && !d) {
		rc = sl_cli_fail("dag", "%s", err.msg);
		goto out;
	}
	if (!strcmp(sub, "list")) {
		size_t n;
		const struct sl_dag *ds = sl_sched_dags(s, &n);
		printf("%-24s %-18s %-16s %-7s %s\n", "dag_id", "schedule", "timezone", "paused", "tasks");
		for (size_t i = 0; i < n; i++)
			printf("%-24s %-18s %-16s %-7s %zu\n", ds[i].id, ds[i].has_schedule ? ds[i].cron.text : "None",
			       ds[i].timezone, sl_sched_is_paused(s, ds[i].id) ? "True" : "False", ds[i].ntasks);
	} else if (!strcmp(sub, "show")) {
		printf("dag %s: schedule %s, timezone %s, start_date %s, catchup %s, max_active_runs %lld, "
		       "concurrency %lld, paused %s\n",
		       d->id, d->has_schedule ? d->cron.text : "None", d->timezone, d->start_date_s ? d->start_date_s : "-",
		       d->catchup ? "true" : "false", (long long)d->max_active_runs, (long long)d->max_active_tasks,
		       sl_sched_is_paused(s, d->id) ? "true" : "false");
		for (size_t i = 0; i < d->ntasks; i++) {
			struct sl_task *t = &d->tasks[i];
			printf("  %s (%s) trigger_rule=%s retries=%lld", t->id, t->kind_s, t->trigger_rule_s,
			       (long long)t->retries);
			if (t->nup) {
				printf(" depends_on=");
				for (size_t k = 0; k < t->nup; k++)
					printf("%s%s", k ? "," : "", d->tasks[t->up[k]].id);
			}
			printf("\n");
		}
	} else if (!strcmp(sub, "trigger")) {
		char rid[200];
		if (sl_sched_trigger(s, d->id, conf_json, NULL, run_id, rid, sizeof rid, &err)) {
			rc = sl_cli_fail("dag", "%s", err.msg);
			goto out;
		}
		printf("created run %s of %s\n", rid, d->id);
		if (wait) {
			sl_sched_ignore_pause(s, true);
			sl_sched_only(s, d->id, rid);
			sl_sched_run_until_done(s, d->id, rid, 200, &stop_flag, &err);
			char state[32] = "?";
			sl_sched_run_state(s, d->id, rid, state, sizeof state);
			printf("run %s: %s\n", rid, state);
			print_tis(s, d, rid);
			rc = strcmp(state, "success") != 0;
		}
	} else if (!strcmp(sub, "pause") || !strcmp(sub, "unpause")) {
		if (sl_sched_set_paused(s, d->id, !strcmp(sub, "pause"), &err))
			rc = sl_cli_fail("dag", "%s", err.msg);
		else
			printf("dag %s: paused %s\n", d->id, !strcmp(sub, "pause") ? "true" : "false");
	} else if (!strcmp(sub, "runs") || !strcmp(sub, "tasks")) {
		struct sl_buf b;
		sl_buf_init(&b);
		int r = !strcmp(sub, "runs") ? sl_sched_runs_json(s, d->id, limit, &b, &err)
					     : npos >= 3 ? sl_sched_task_instances_json(s, d->id, pos[2], &b, &err)
							 : sl_err_set(&err, SL_EINVAL, "tasks needs DAG and RUN_ID");
		if (r)
			rc = sl_cli_fail("dag", "%s", err.msg);
		else
			printf("%s\n", sl_buf_cstr(&b));
		sl_buf_free(&b);
	} else if (!strcmp(sub, "backfill")) {
		int64_t a, z;
		if (!start_s || !end_s) {
			rc = sl_cli_fail("dag", "backfill needs --start DATE and --end DATE") + 1;
			goto out;
		}
		if (parse_date("dag", start_s, d, &a) || parse_date("dag", end_s, d, &z)) {
			rc = 2;
			goto out;
		}
		int n = sl_sched_backfill(s, d->id, a, z, &err);
		if (n < 0) {
			rc = sl_cli_fail("dag", "%s", err.msg);
			goto out;
		}
		printf("backfill %s: %d new runs between %s and %s\n", d->id, n, start_s, end_s);
		sl_sched_ignore_pause(s, true);
		sl_sched_only(s, d->id, "backfill__");
		if (sl_sched_run_until_done(s, d->id, NULL, 200, &stop_flag, &err))
			rc = sl_cli_fail("dag", "%s", err.msg[0] ? err.msg : "interrupted");
		struct sl_buf b;
		sl_buf_init(&b);
		sl_sched_runs_json(s, d->id, 1000, &b, &err);
		rc |= strstr(sl_buf_cstr(&b), "\"state\":\"failed\"") != NULL;
		printf("%s\n", sl_buf_cstr(&b));
		sl_buf_free(&b);
	} else if (!strcmp(sub, "test")) {
		/* Like `airflow dags test`: one run now, in this process, whatever the schedule or pause says. */
		int64_t ld = time(NULL);
		if (npos >= 3 && parse_date("dag", pos[2], d, &ld)) {
			rc = 2;
			goto out;
		}
		char rid[200], ts[40];
		sl_sched_format_time(ld, ts, sizeof ts);
		char want[200];
		snprintf(want, sizeof want, "test__%s__%ld", ts, (long)getpid());
		if (sl_sched_trigger(s, d->id, conf_json, &ld, want, rid, sizeof rid, &err)) {
			rc = sl_cli_fail("dag", "%s", err.msg);
			goto out;
		}
		sl_sched_ignore_pause(s, true);
		sl_sched_only(s, d->id, rid);
		printf("dag test %s: run %s\n", d->id, rid);
		fflush(stdout);
		sl_sched_run_until_done(s, d->id, rid, 100, &stop_flag, &err);
		char state[32] = "?";
		sl_sched_run_state(s, d->id, rid, state, sizeof state);
		print_tis(s, d, rid);
		printf("dag test %s: %s\n", d->id, state);
		rc = strcmp(state, "success") != 0;
	}
out:
	sl_sched_close(s);
	sl_conf_free(&c);
	return rc;
}
