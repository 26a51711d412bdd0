/* What the registry's unit tests share: a registry on a fresh temp data_dir, and one request through its REST mapping
 * checked against the status and the body wanted. Included by each test file (static functions: one copy each). */
#ifndef SL_TEST_REGISTRY_FIXTURE_H
#define SL_TEST_REGISTRY_FIXTURE_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/log.h"
#include "registry/registry.h"

/* Answers the request; the body must equal want exactly when want starts with '=', else contain it. Returns the
 * body (static, valid until the next call). */
static inline const char *reg_expect(struct sl_registry *r, const char *method, const char *target, const char *body,
				     int status, const char *want)
{
	static char last[8192];
	struct sl_buf out;
	int st;
	sl_buf_init(&out);
	sl_registry_handle(r, method, target, body, body ? strlen(body) : 0, &st, &out);
	bool match = *want == '=' ? !strcmp(sl_buf_cstr(&out), want + 1) : strstr(sl_buf_cstr(&out), want) != NULL;
	if (st != status || !match)
		fail_msg("%s %s: got %d %s, want %d with %s", method, target, st, sl_buf_cstr(&out), status, want);
	snprintf(last, sizeof last, "%s", sl_buf_cstr(&out));
	sl_buf_free(&out);
	return last;
}

/* Makes dir (a mkdtemp template) and, when reg is not NULL, opens a registry on it. 0 or -1 (cmocka's setup). */
static inline int reg_setup(char *dir, struct sl_registry **reg)
{
	struct sl_registry_conf conf = {0};
	struct sl_err err;
	sl_log_set_level(SL_LOG_ERROR);
	if (!mkdtemp(dir))
		return -1;
	conf.data_dir = dir;
	return reg && sl_registry_open(reg, &conf, &err) ? -1 : 0;
}

/* Closes reg (when given) and removes dir. 0 or -1 (cmocka's teardown). */
static inline int reg_teardown(const char *dir, struct sl_registry *reg)
{
	char cmd[256];
	if (reg)
		sl_registry_close(reg);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

#endif
