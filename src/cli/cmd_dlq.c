/* `sluice dlq PIPELINE [list|replay]`: look into a pipeline's dead-letter topic and send its records around again. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "pipeline/pipeline.h"

static const char *USAGE =
	"Usage: sluice dlq [PIPELINE] [list|replay] [-c FILE] [--from OFFSET] [--limit N]\n\n"
	"list (the default) prints one line per dead-lettered record: its offset in the dead-letter topic, the stage\n"
	"that failed (parse, map, decode, sink), where it came from, the reason, and the start of the record.\n"
	"replay maps again the records that failed their mapping and publishes the ones that fit now to the pipeline's\n"
	"topic; records that failed later (decode, sink) go back to the topic as they are, for the processor to try\n"
	"again. Nothing is removed from the dead-letter topic; --from skips what an earlier replay handled (it prints\n"
	"the offset to continue from).\n\n"
	"  -c, --config FILE  config file (default $SLUICE_CONFIG or ./sluice.yaml)\n"
	"  --from OFFSET      start at this offset of the dead-letter topic\n"
	"  --limit N          at most N records\n";

int sl_cli_dlq(int argc, char **argv)
{
	const char *config = getenv("SLUICE_CONFIG"), *name = NULL;
	bool replay = false;
	int64_t from = 0, limit = 0;
	for (int i = 1; i < argc; i++) {
		const char *s = argv[i];
		char *end;
		if (!strcmp(s, "-h") || !strcmp(s, "--help")) {
			fputs(USAGE, stdout);
			return 0;
		} else if ((!strcmp(s, "-c") || !strcmp(s, "--config")) && i + 1 < argc)
			config = argv[++i];
		else if (!strcmp(s, "--from") && i + 1 < argc) {
			from = strtoll(argv[++i], &end, 10);
			if (*end || from < 0)
				return sl_cli_fail("dlq", "--from wants an offset, got '%s'", argv[i]) + 1;
		} else if (!strcmp(s, "--limit") && i + 1 < argc) {
			limit = strtoll(argv[++i], &end, 10);
			if (*end || limit <= 0)
				return sl_cli_fail("dlq", "--limit wants a positive count, got '%s'", argv[i]) + 1;
		} else if (!strcmp(s, "list"))
			replay = false;
		else if (!strcmp(s, "replay"))
			replay = true;
		else if (s[0] != '-' && !name)
			name = s;
		else
			return sl_cli_fail("dlq", "unexpected argument '%s' (see sluice dlq --help)", s) + 1;
	}
	struct sl_conf c;
	struct sl_err err = {0};
	if (sl_conf_load(config ? config : "sluice.yaml", &c, &err))
		return sl_cli_fail("dlq", "%s", err.msg);
	struct sl_pipeline *p = NULL;
	if (name)
		p = sl_conf_pipeline(&c, name, &err);
	else if (c.np == 1)
		p = &c.p[0];
	else
		sl_err_set(&err, SL_EINVAL, "%s has %zu pipelines: name one", c.doc.file, c.np);
	if (!p) {
		sl_conf_free(&c);
		return sl_cli_fail("dlq", "%s", err.msg) + 1;
	}
	struct sl_dlq_stats st;
	int rc = sl_dlq_run(&c, p, replay, from, limit, &st, stdout, &err);
	if (replay)
		printf("replayed %" PRIu64 " records to %s, %" PRIu64 " still fail; continue with --from %" PRId64 "\n",
		       st.replayed, p->topic, st.still_failing, st.next_offset);
	else
		fprintf(stderr, "%" PRIu64 " records listed from %s (%" PRId64 " in all)\n", st.listed, p->dlq_topic,
			st.high_watermark);
	if (rc)
		sl_cli_fail("dlq", "%s", err.msg);
	sl_conf_free(&c);
	return rc ? 1 : 0;
}
