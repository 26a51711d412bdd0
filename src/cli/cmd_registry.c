/* `sluice registry`: the Confluent-compatible schema registry as its own process (src/registry/). Options come from
 * the `registry:` section of a config file, then the command line; the process serves until SIGINT/SIGTERM. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/config.h"
#include "core/log.h"
#include "registry/registry.h"

static void usage(void)
{
	printf("Usage: sluice registry [-c FILE] [--listen HOST:PORT] [--data-dir DIR] [--store sqlite|kafka]\n"
	       "                       [--brokers HOST:PORT,...] [--topic _schemas] [--group NAME]\n\n"
	       "Serves the Confluent Schema Registry REST API (default 127.0.0.1:8081). The sqlite store keeps\n"
	       "DIR/registry.db; the kafka store shares the _schemas topic between registries. See docs/registry.md.\n");
}

int sl_cli_registry(int argc, char **argv)
{
	struct sl_registry_conf conf = {0};
	struct sl_err err = {0};
	struct sl_cfg_doc doc = {0};
	const char *file = NULL;
	struct {
		const char *flag;
		char **dst;
	} flags[] = {{"--listen", &conf.listen},   {"--data-dir", &conf.data_dir}, {"--store", &conf.store},
		     {"--brokers", &conf.brokers}, {"--topic", &conf.topic},       {"--group", &conf.group}};
	struct sl_registry *r;
	int port = 0, sig, rc = 0;
	sigset_t set;

	if (sl_opt_defaults(sl_registry_opts, &conf, &err))
		return sl_cli_fail("registry", "%s", err.msg);
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) {
			if (i + 1 >= argc)
				return sl_cli_fail("registry", "%s needs a file", argv[i]);
			file = argv[++i];
		}
	if (file) {
		struct sl_cfg_node *sec;
		if (sl_cfg_load_file(&doc, file, &err))
			return sl_cli_fail("registry", "%s", err.msg);
		sl_cli_warn_auth_parity(sl_cfg_get(doc.root, "console"), sl_cfg_get(doc.root, "registry"),
					sl_cfg_get(doc.root, "scheduler"), "registry");
		if ((sec = sl_cfg_get(doc.root, "registry"))) {
			sl_opt_free(sl_registry_opts, &conf);
			if (sl_opt_bind(sl_registry_opts, sec, "registry", &conf, &err)) {
				sl_cfg_free(&doc);
				return sl_cli_fail("registry", "%s", err.msg);
			}
		}
		/* Without registry.data_dir, the store goes under the config's top-level data_dir. */
		struct sl_cfg_node *top = sl_cfg_get(doc.root, "data_dir");
		if (top && top->kind == SL_CFG_SCALAR &&
		    sl_registry_conf_dir(&conf, sec, top->value, &err)) {
			sl_opt_free(sl_registry_opts, &conf);
			sl_cfg_free(&doc);
			return sl_cli_fail("registry", "%s", err.msg);
		}
		/* The kafka store's security settings (kept with the document until the registry closes). */
		conf.kafka = sl_cfg_get(doc.root, "kafka");
	}
	for (int i = 1; i < argc; i++) {
		bool done = false;
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage();
			sl_opt_free(sl_registry_opts, &conf);
			sl_cfg_free(&doc);
			return 0;
		}
		if (!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) {
			i++;
			continue;
		}
		for (size_t f = 0; f < sizeof flags / sizeof *flags && !done; f++)
			if (!strcmp(argv[i], flags[f].flag)) {
				if (i + 1 >= argc) {
					sl_opt_free(sl_registry_opts, &conf);
					sl_cfg_free(&doc);
					return sl_cli_fail("registry", "%s needs a value", argv[i]);
				}
				free(*flags[f].dst);
				*flags[f].dst = strdup(argv[++i]);
				done = true;
			}
		if (!done) {
			sl_opt_free(sl_registry_opts, &conf);
			sl_cfg_free(&doc);
			return sl_cli_fail("registry", "unexpected argument '%s' (see --help)", argv[i]);
		}
	}
	if (!file)
		sl_cli_warn_auth_parity(NULL, NULL, NULL, "registry");
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	/* Blocked before any thread starts, so every thread inherits the mask and sigwait below gets the signal. */
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (sl_registry_open(&r, &conf, &err)) {
		sl_opt_free(sl_registry_opts, &conf);
		sl_cfg_free(&doc);
		return sl_cli_fail("registry", "%s", err.msg);
	}
	if (sl_registry_serve(r, &port, &err)) {
		rc = sl_cli_fail("registry", "%s", err.msg);
	} else {
		sl_info("registry", "listening addr=%s port=%d store=%s", conf.listen, port, conf.store);
		sigwait(&set, &sig);
		sl_info("registry", "stopping signal=%d", sig);
	}
	sl_registry_close(r);
	sl_opt_free(sl_registry_opts, &conf);
	sl_cfg_free(&doc);
	return rc;
}
