/* The CLI: main.c dispatches to one function per sub-command, each in its own cmd_<name>.c, each a thin layer over
 * libsluice. A command returns the process exit status (0 ok, 1 failure, 2 usage error). */
#ifndef SL_CLI_H
#define SL_CLI_H

#include <stdbool.h>

struct sl_conf;
struct sl_sched;

struct sl_cli_cmd {
	const char *name;
	int (*run)(int argc, char **argv); /* argv[0] is the command name */
	const char *summary;               /* one line for `sluice --help`; NULL hides the command */
};

int sl_cli_check(int argc, char **argv);
int sl_cli_ingest(int argc, char **argv);
int sl_cli_process(int argc, char **argv);
int sl_cli_up(int argc, char **argv);
int sl_cli_config_doc(int argc, char **argv);
int sl_cli_dlq(int argc, char **argv);
int sl_cli_console(int argc, char **argv);
int sl_cli_cql(int argc, char **argv);
int sl_cli_registry(int argc, char **argv);
int sl_cli_cron_next(int argc, char **argv);
int sl_cli_scheduler(int argc, char **argv);
int sl_cli_dag(int argc, char **argv);

/* Credentials parity of the console, the registry and the scheduler API (auth_parity.c): 1 and a message in msg
 * when self (or, self NULL, any of them) has no credentials while another has some; 0 otherwise. The sections may be
 * NULL (that server's defaults and environment variables). */
struct sl_cfg_node;
int sl_cli_auth_parity(const struct sl_cfg_node *console, const struct sl_cfg_node *registry,
		       const struct sl_cfg_node *scheduler, const char *self, char *msg, size_t msgsz);
/* The same, logged as a warning by self. */
void sl_cli_warn_auth_parity(const struct sl_cfg_node *console, const struct sl_cfg_node *registry,
			     const struct sl_cfg_node *scheduler, const char *self);

/* Prints "sluice <cmd>: <msg>" to stderr; returns 1. */
int sl_cli_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Loads the config cfg into c and opens its scheduler (cmd_dag.c); owner: the scheduler proper (`sluice scheduler`,
 * sl_sched_opts.owner), else a handle for `sluice dag`. Returns 0, or 1 after printing why. */
int sl_cli_open_sched(const char *cmd, const char *cfg, bool owner, struct sl_conf *c, struct sl_sched **s);

#endif
