/* sluice's entry point: global flags, then dispatch to a sub-command (see cli.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/log.h"
#include "topic/topic.h"

static const struct sl_cli_cmd commands[] = {
	{"up", sl_cli_up, "run every pipeline (ingest + process) in one process"},
	{"ingest", sl_cli_ingest, "pull a pipeline's source into its topic"},
	{"process", sl_cli_process, "stream a pipeline's topic into its table"},
	{"console", sl_cli_console, "serve the web console, JSON API and Prometheus /metrics"},
	{"dlq", sl_cli_dlq, "list or replay a pipeline's dead-letter topic"},
	{"check", sl_cli_check, "lint a config file: unknown keys, wrong types, bad mappings"},
	{"config-doc", sl_cli_config_doc, "print the configuration reference (docs/configuration.md)"},
	{"cql", sl_cli_cql, "run CQL statements against Cassandra (a tiny cqlsh)"},
	{"registry", sl_cli_registry, "serve the Confluent-compatible schema registry REST API"},
	{"scheduler", sl_cli_scheduler, "run DAGs on their schedules (retries, timeouts, history, REST API)"},
	{"dag", sl_cli_dag, "list, show, trigger, pause, backfill and test DAGs"},
	{"cron-next", sl_cli_cron_next, NULL}, /* hidden: next fire times, for scripts and the croniter oracle */
};
#define NCOMMANDS (sizeof commands / sizeof *commands)

int sl_cli_fail(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "sluice %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

static void usage(FILE *fp)
{
	fprintf(fp,
		"sluice %s: stream web APIs through Kafka into Cassandra, in one process.\n\n"
		"Usage: sluice [--log-level debug|info|warn|error] <command> [options]\n\n"
		"Commands:\n",
		SL_VERSION);
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (commands[i].summary)
			fprintf(fp, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(fp, "\n`sluice <command> --help` explains a command. Configuration reference: docs/configuration.md.\n");
}

int main(int argc, char **argv)
{
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--version")) {
			printf("sluice %s (librdkafka %s)\n", SL_VERSION, sl_kafka_version());
			return 0;
		} else if (!strcmp(argv[i], "--log-level") && i + 1 < argc) {
			int lvl = sl_log_parse_level(argv[++i]);
			if (lvl < 0) {
				fprintf(stderr, "sluice: --log-level: '%s' is not one of debug, info, warn, error, off\n", argv[i]);
				return 2;
			}
			sl_log_set_level((enum sl_log_level)lvl);
		} else {
			fprintf(stderr, "sluice: unknown option '%s'\n\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	for (size_t c = 0; c < NCOMMANDS; c++)
		if (!strcmp(argv[i], commands[c].name))
			return commands[c].run(argc - i, argv + i);
	fprintf(stderr, "sluice: unknown command '%s'; `sluice --help` lists the commands\n", argv[i]);
	return 2;
}
