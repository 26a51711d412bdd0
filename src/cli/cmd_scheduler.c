/* `sluice scheduler` (run due DAG runs until SIGTERM) and the hidden `sluice cron-next` that prints next fire times,
 * for scripts and for the croniter oracle test. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "scheduler/cron.h"

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
