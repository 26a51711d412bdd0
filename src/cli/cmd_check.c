/* `sluice check -c FILE`: load and validate a config without running anything. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/config.h"

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
	struct sl_cfg_doc doc;
	struct sl_err err = {0};
	if (sl_cfg_load_file(&doc, file, &err))
		return sl_cli_fail("check", "%s", err.msg);
	sl_cfg_free(&doc);
	printf("%s: ok\n", file);
	return 0;
}
