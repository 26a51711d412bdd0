/* `sluice console`: the web console, JSON API and Prometheus /metrics on their own, beside pipelines that run in other
 * processes (sluice ingest/process) or on other machines. It reads what it can compute itself: topics, watermarks,
 * consumer-group lag and status, dead letters and table rows. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "console/console.h"
#include "core/log.h"
#include "pipeline/pipeline.h"

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
}

static const char *USAGE =
	"Usage: sluice console [-c FILE] [--listen HOST:PORT]\n\n"
	"Serves the web console (Overview, Kafka, Data, Alerts, Schemas, DAGs), its JSON API under /api/, Prometheus\n"
	"/metrics (sluice_* and kafka_exporter's kafka_consumergroup_lag ...), /health and /ready, for the pipelines\n"
	"of the config file. Runs until SIGINT/SIGTERM.\n\n"
	"  -c, --config FILE   config file (default $SLUICE_CONFIG or ./sluice.yaml)\n"
	"  --listen HOST:PORT  overrides console.listen (default 127.0.0.1:8080; :0 picks a free port)\n\n"
	"Auth: set $SLUICE_CONSOLE_TOKEN (bearer token) or $SLUICE_CONSOLE_PASSWORD (basic, user console.user);\n"
	"required when listening beyond loopback. See docs/console.md.\n";

int sl_cli_console(int argc, char **argv)
{
	const char *config = getenv("SLUICE_CONFIG"), *listen = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			fputs(USAGE, stdout);
			return 0;
		} else if ((!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) && i + 1 < argc)
			config = argv[++i];
		else if (!strcmp(argv[i], "--listen") && i + 1 < argc)
			listen = argv[++i];
		else {
			sl_cli_fail("console", "unexpected argument '%s' (see sluice console --help)", argv[i]);
			return 2;
		}
	}
	if (!config)
		config = "sluice.yaml";
	struct sl_conf c;
	struct sl_err err = {0};
	if (sl_conf_load(config, &c, &err))
		return sl_cli_fail("console", "%s", err.msg);
	int lvl = sl_log_parse_level(c.log_level);
	if (lvl >= 0 && sl_log_get_level() == SL_LOG_INFO)
		sl_log_set_level((enum sl_log_level)lvl);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	struct sl_console *con = NULL;
	struct sl_console_start_opts o = {.listen = listen};
	if (sl_console_start(&c, &o, &con, &err)) {
		sl_conf_free(&c);
		return sl_cli_fail("console", "%s", err.msg);
	}
	sl_cli_warn_auth_parity(c.console, c.registry, c.scheduler, "console");
	printf("sluice console: http://%s/ (%zu pipeline%s from %s)\n", sl_console_address(con), c.np,
	       c.np == 1 ? "" : "s", config);
	fflush(stdout);
	while (!g_stop)
		pause();
	sl_console_stop(con);
	sl_conf_free(&c);
	return 0;
}
