/* `sluice config-doc`: prints the configuration reference generated from the option tables, so
 * docs/configuration.md never drifts from the code (a CLI test compares them). */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "console/console.h"
#include "pipeline/pipeline.h"
#include "registry/registry.h"
#include "scheduler/sched.h"
#include "sink/sink.h"
#include "source/source.h"
#include "topic/topic.h"

int sl_cli_config_doc(int argc, char **argv)
{
	if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		printf("Usage: sluice config-doc\n\nPrints the configuration reference (docs/configuration.md) in Markdown.\n");
		return 0;
	}
	printf("# sluice configuration reference\n\n"
	       "Generated from the option tables in the code by `sluice config-doc`; do not edit by hand.\n"
	       "Durations take ms, s, m, h, d (a bare number is seconds); sizes take B, KiB, MiB, GiB, kB, MB, GB.\n"
	       "Values may use `${ENV}` and `${ENV:-default}`.\n");
	sl_conf_doc_markdown(stdout);
	printf("\n## Sources\n");
	sl_opt_doc_markdown(sl_source_generate_opts, "pipelines.<name>.source (type: generate)", stdout);
	sl_opt_doc_markdown(sl_source_http_opts, "pipelines.<name>.source (type: http)", stdout);
	fputs(sl_source_http_examples_md, stdout);
	printf("\n## Connections\n");
	sl_opt_doc_markdown(sl_kafka_opts, "kafka", stdout);
	sl_opt_doc_markdown(sl_cassandra_opts, "cassandra", stdout);
	printf("\n## Console\n");
	sl_opt_doc_markdown(sl_console_opts, "console", stdout);
	printf("\n## Schema registry\n");
	sl_opt_doc_markdown(sl_registry_opts, "registry", stdout);
	printf("\n## Scheduler API\n");
	sl_opt_doc_markdown(sl_sched_api_opts, "scheduler", stdout);
	return 0;
}
