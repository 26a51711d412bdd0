/* `sluice check -c FILE`: load and validate a config without running anything. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "pipeline/pipeline.h"

int sl_cli_check(int argc, char **argv)
{
	const char *file = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			printf("Usage: sluice check -c FILE\n\n"
			       "Reads FILE and reports every problem: YAML syntax, unknown keys (with a suggestion), wrong\n"
			       "types, mappings that do not fit their columns. Exit status 0 when the config is valid.\n");
			return 0;
		} else if ((!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) && i + 1 < argc)
			file = argv[++i];
		else
			return sl_cli_fail("check", "unexpected argument '%s' (see --help)", argv[i]);
	}
	if (!file)
		return sl_cli_fail("check", "no config given: sluice check -c FILE");
	struct sl_conf c;
	struct sl_err err = {0};
	if (sl_conf_load(file, &c, &err))
		return sl_cli_fail("check", "%s", err.msg);
	printf("%s: ok: %zu pipeline%s", file, c.np, c.np == 1 ? "" : "s");
	for (size_t i = 0; i < c.np; i++)
		printf("%s%s (%zu columns -> topic %s -> %s.%s)", i ? ", " : ": ", c.p[i].name,
		       sl_mapping_schema(c.p[i].map)->n, c.p[i].topic, c.p[i].sink.keyspace, c.p[i].sink.table);
	printf("; log: %s; sink: %s\n", c.kafka ? "kafka" : "embedded", c.cassandra ? "cassandra" : "sqlite");
	sl_conf_free(&c);
	return 0;
}
