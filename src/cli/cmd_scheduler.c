/* `sluice scheduler` (run due DAG runs until SIGTERM) and the hidden `sluice cron-next` that prints next fire times,
 * for scripts and for the croniter oracle test. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/log.h"
#include "pipeline/pipeline.h"
#include "scheduler/cron.h"
#include "scheduler/sched.h"

int sl_cli_cron_next(int argc, char **argv)
{
	const char *expr = NULL, *tzname = NULL;
	int64_t after = 0, anchor = 0;
	long n = 1;
	int prev = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--tz") && i + 1 < argc)
			tzname = argv[++i];
		else if (!strcmp(argv[i], "--after") && i + 1 < argc)
			after = strtoll(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--anchor") && i + 1 < argc)
			anchor = strtoll(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "-n") && i + 1 < argc)
			n = strtol(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--prev"))
			prev = 1;
		else if (!strcmp(argv[i], "--stdin"))
			expr = "-";
		else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			printf("Usage: sluice cron-next EXPR [--tz ZONE] [--after EPOCH] [--anchor EPOCH] [-n N] [--prev]\n"
			       "       sluice cron-next --stdin   (lines: EXPR<TAB>ZONE<TAB>AFTER<TAB>N; prints one line each)\n"
			       "Prints the next N fire times (epoch seconds) of a cron expression, preset or interval.\n");
			return 0;
		} else if (!expr)
			expr = argv[i];
		else
			return sl_cli_fail("cron-next", "unexpected argument '%s'", argv[i]);
	}
	if (!expr)
		return sl_cli_fail("cron-next", "missing expression; see --help");
	struct sl_err err = {0};
	if (!strcmp(expr, "-")) {
		/* Batch mode: one process for thousands of cases keeps the oracle test fast. */
		char line[1024];
		while (fgets(line, sizeof line, stdin)) {
			line[strcspn(line, "\n")] = 0;
			char *f[4] = {0};
			char *save = NULL, *tok = strtok_r(line, "\t", &save);
			for (int k = 0; k < 4 && tok; k++, tok = strtok_r(NULL, "\t", &save))
				f[k] = tok;
			struct sl_cron c;
			struct sl_tz *tz = NULL;
			if (!f[3] || sl_cron_parse(&c, f[0], &err) || sl_tz_load(f[1], &tz, &err)) {
				printf("error %s\n", f[3] ? err.msg : "bad line");
				fflush(stdout);
				continue;
			}
			int64_t t = strtoll(f[2], NULL, 10), nx;
			long cnt = strtol(f[3], NULL, 10);
			for (long k = 0; k < cnt; k++) {
				if (sl_cron_next(&c, tz, anchor, t, &nx)) {
					printf("%snone", k ? " " : "");
					break;
				}
				printf("%s%lld", k ? " " : "", (long long)nx);
				t = nx;
			}
			printf("\n");
			fflush(stdout);
			sl_tz_free(tz);
		}
		return 0;
	}
	struct sl_cron c;
	struct sl_tz *tz = NULL;
	if (sl_cron_parse(&c, expr, &err) || sl_tz_load(tzname, &tz, &err))
		return sl_cli_fail("cron-next", "%s", err.msg);
	int64_t t = after, nx;
	for (long k = 0; k < n; k++) {
		int rc = prev ? sl_cron_prev(&c, tz, anchor, t, &nx) : sl_cron_next(&c, tz, anchor, t, &nx);
		if (rc) {
			sl_tz_free(tz);
			return sl_cli_fail("cron-next", "schedule '%s' never fires %s %lld", expr, prev ? "before" : "after",
					   (long long)t);
		}
		printf("%lld\n", (long long)nx);
		t = nx;
	}
	sl_tz_free(tz);
	return 0;
}

static volatile sig_atomic_t sched_stop;
static void sched_on_signal(int sig) { (void)sig; sched_stop = 1; }

int sl_cli_scheduler(int argc, char **argv)
{
	const char *cfg = "sluice.yaml", *api = NULL;
	for (int i = 1; i < argc; i++) {
		if ((!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) && i + 1 < argc)
			cfg = argv[++i];
		else if (!strcmp(argv[i], "--api") && i + 1 < argc)
			api = argv[++i];
		else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			printf("Usage: sluice scheduler [-c FILE] [--api [ADDR:]PORT]\n\n"
			       "Runs the DAGs of the config's dags: section on their schedules until SIGTERM/SIGINT, keeping\n"
			       "run history and task states in data_dir/scheduler.db and each try's log under\n"
			       "data_dir/logs. --api serves the Airflow-shaped REST API (/api/v1/dags...) on ADDR:PORT\n"
			       "(127.0.0.1 unless ADDR is given). See docs/scheduler.md.\n");
			return 0;
		} else
			return sl_cli_fail("scheduler", "unexpected argument '%s' (see --help)", argv[i]) + 1;
	}
	struct sl_conf c;
	struct sl_sched *s;
	if (sl_cli_open_sched("scheduler", cfg, true, &c, &s))
		return 1;
	size_t n;
	sl_sched_dags(s, &n);
	if (!n)
		sl_warn("scheduler", "the config %s has no dags: section; nothing to schedule", cfg);
	struct sl_sched_http *h = NULL;
	struct sl_err err = {0};
	if (api) {
		char addr[128] = "127.0.0.1";
		const char *colon = strrchr(api, ':');
		int port = atoi(colon ? colon + 1 : api);
		if (colon)
			snprintf(addr, sizeof addr, "%.*s", (int)(colon - api), api);
		if (sl_sched_api_start(s, addr, port, c.scheduler, &h, &err)) {
			sl_sched_close(s);
			sl_conf_free(&c);
			return sl_cli_fail("scheduler", "%s", err.msg);
		}
		sl_cli_warn_auth_parity(c.console, c.registry, c.scheduler, "scheduler");
		sl_info("scheduler", "REST API on http://%s:%d/api/v1/dags", addr, sl_sched_api_port(h));
	}
	signal(SIGINT, sched_on_signal);
	signal(SIGTERM, sched_on_signal);
	sl_info("scheduler", "scheduling %zu DAGs from %s", n, cfg);
	int rc = 0;
	while (!sched_stop) {
		int ch = sl_sched_tick(s, &err);
		if (ch < 0) {
			sl_error("scheduler", "%s", err.msg);
			rc = 1;
			break;
		}
		if (ch == 0)
			usleep(500000);
	}
	sl_info("scheduler", "stopping: running task tries are stopped and re-queued on the next start");
	sl_sched_api_stop(h);
	sl_sched_close(s);
	sl_conf_free(&c);
	return rc;
}
