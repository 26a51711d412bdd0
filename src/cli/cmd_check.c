/* `sluice check -c FILE`: load and validate a config without running anything: every pipeline (options, source,
 * mapping), and every section a role reads (kafka, cassandra, registry, console, dags), so a mistake surfaces here
 * and not when that role first starts. Nothing connects anywhere; secrets are not printed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "console/console.h"
#include "pipeline/pipeline.h"
#include "registry/registry.h"
#include "scheduler/sched.h"
#include "sink/sink.h"
#include "source/source.h"
#include "topic/topic.h"

/* Binds a section through its table and frees it again: what a role does first when it starts. */
static int check_section(const struct sl_opt *table, const struct sl_cfg_node *node, const char *name, size_t size,
			 struct sl_err *err)
{
	void *dst = calloc(1, size);
	if (!dst)
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	int rc = sl_opt_bind(table, node, name, dst, err);
	sl_opt_free(table, dst);
	free(dst);
	return rc;
}

static int check_roles(struct sl_conf *c, struct sl_err *err)
{
	if (c->kafka) {
		struct sl_kafka_conf kc = {0};
		int rc = sl_opt_bind(sl_kafka_opts, c->kafka, "kafka", &kc, err);
		if (rc == 0)
			rc = sl_kafka_check(&kc, err);
		sl_opt_free(sl_kafka_opts, &kc);
		if (rc)
			return rc;
	}
	if ((c->cassandra && check_section(sl_cassandra_opts, c->cassandra, "cassandra",
					   sizeof(struct sl_cassandra_conf), err)) ||
	    (c->registry &&
	     check_section(sl_registry_opts, c->registry, "registry", sizeof(struct sl_registry_conf), err)) ||
	    (c->console && check_section(sl_console_opts, c->console, "console", sizeof(struct sl_console_conf), err)) ||
	    (c->scheduler &&
	     check_section(sl_sched_api_opts, c->scheduler, "scheduler", sizeof(struct sl_sched_api_conf), err)))
		return SL_ECONFIG;
	if (c->dags) {
		struct sl_dag *d = NULL;
		size_t n = 0;
		if (sl_sched_dags_load(c->dags, &d, &n, err))
			return SL_ECONFIG;
		sl_sched_dags_free(d, n);
	}
	for (size_t i = 0; i < c->np; i++) {
		struct sl_source *src = NULL;
		if (sl_source_new(c->p[i].name, c->p[i].source, NULL, &src, err))
			return SL_ECONFIG;
		src->ops->destroy(src);
	}
	return 0;
}

int sl_cli_check(int argc, char **argv)
{
	const char *file = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			printf("Usage: sluice check -c FILE\n\n"
			       "Reads FILE and reports every problem: YAML syntax, unknown keys (with a suggestion), wrong\n"
			       "types, mappings that do not fit their columns, sources, DAGs, and the kafka, cassandra,\n"
			       "registry and console sections. Nothing connects anywhere. Exit status 0 when the config is\n"
			       "valid.\n");
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
	if (check_roles(&c, &err)) {
		sl_conf_free(&c);
		return sl_cli_fail("check", "%s", err.msg);
	}
	printf("%s: ok: %zu pipeline%s", file, c.np, c.np == 1 ? "" : "s");
	for (size_t i = 0; i < c.np; i++)
		printf("%s%s (%zu columns -> topic %s -> %s.%s)", i ? ", " : ": ", c.p[i].name,
		       sl_mapping_schema(c.p[i].map)->n, c.p[i].topic, c.p[i].sink.keyspace, c.p[i].sink.table);
	printf("; log: %s; sink: %s", c.kafka ? "kafka" : "embedded", c.cassandra ? "cassandra" : "sqlite");
	if (c.dags)
		printf("; dags: %zu", c.dags->n);
	if (c.registry)
		printf("; registry");
	if (c.console)
		printf("; console");
	printf("\n");
	char warn[512];
	if (sl_cli_auth_parity(c.console, c.registry, c.scheduler, NULL, warn, sizeof warn) > 0)
		fprintf(stderr, "sluice check: warning: %s\n", warn);
	sl_conf_free(&c);
	return 0;
}
