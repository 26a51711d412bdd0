/* Credentials parity across the three HTTP servers of one config (console, registry, scheduler API): when one has
 * credentials and another has none, the open one is the way around the closed one's (the console's token guards
 * nothing if the registry behind it answers anyone). The servers warn at start and `sluice check` warns too. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "console/console.h"
#include "core/log.h"
#include "registry/registry.h"
#include "scheduler/sched.h"

static int has_auth(const struct sl_opt *table, const struct sl_cfg_node *sec, const char *name, size_t size,
		    size_t auth_off)
{
	char conf[4096];
	struct sl_err err = {0};
	if (size > sizeof conf)
		return -1;
	memset(conf, 0, sizeof conf);
	if (sec ? sl_opt_bind(table, sec, name, conf, &err) : sl_opt_defaults(table, conf, &err)) {
		sl_opt_free(table, conf);
		return -1;
	}
	struct sl_http_auth a;
	int on = -1;
	if (sl_http_auth_load(&a, (const struct sl_http_auth_conf *)(conf + auth_off), name, &err) == 0) {
		on = sl_http_auth_on(&a);
		sl_http_auth_free(&a);
	}
	sl_opt_free(table, conf);
	return on;
}

int sl_cli_auth_parity(const struct sl_cfg_node *console, const struct sl_cfg_node *registry,
		       const struct sl_cfg_node *scheduler, const char *self, char *msg, size_t msgsz)
{
	const char *names[3] = {"console", "registry", "scheduler"};
	int on[3] = {
		has_auth(sl_console_opts, console, "console", sizeof(struct sl_console_conf),
			 offsetof(struct sl_console_conf, auth)),
		has_auth(sl_registry_opts, registry, "registry", sizeof(struct sl_registry_conf),
			 offsetof(struct sl_registry_conf, auth)),
		has_auth(sl_sched_api_opts, scheduler, "scheduler", sizeof(struct sl_sched_api_conf),
			 offsetof(struct sl_sched_api_conf, auth)),
	};
	char with[64] = "", without[64] = "";
	int nwith = 0, nwithout = 0;
	for (int i = 0; i < 3; i++) {
		if (on[i] == 1)
			snprintf(with + strlen(with), sizeof with - strlen(with), "%s%s", nwith++ ? ", " : "", names[i]);
		else if (on[i] == 0 && (!self || !strcmp(self, names[i])))
			snprintf(without + strlen(without), sizeof without - strlen(without), "%s%s", nwithout++ ? ", " : "",
				 names[i]);
	}
	if (!nwith || !nwithout) {
		if (msgsz)
			msg[0] = 0;
		return 0;
	}
	snprintf(msg, msgsz,
		 "WITHOUT CREDENTIALS: %s %s anyone on %s port while %s %s credentials; set token_env / "
		 "password_env there too (docs/security.md, \"HTTP servers: threat model\")",
		 without, nwithout > 1 ? "answer" : "answers", nwithout > 1 ? "their" : "its", with,
		 nwith > 1 ? "require" : "requires");
	return 1;
}

void sl_cli_warn_auth_parity(const struct sl_cfg_node *console, const struct sl_cfg_node *registry,
			     const struct sl_cfg_node *scheduler, const char *self)
{
	char msg[512];
	if (sl_cli_auth_parity(console, registry, scheduler, self, msg, sizeof msg) > 0)
		sl_warn(self, "%s", msg);
}
