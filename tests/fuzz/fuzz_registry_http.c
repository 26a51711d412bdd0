/* libFuzzer target for the registry's REST request handling: the input is split on '\n' into method, request target
 * (raw, still percent-encoded), Authorization and body, and goes through the auth check (a token and basic
 * credentials configured) and, as an authorized request, through the whole dispatcher (sl_registry_handle: target
 * splitting and decoding, query parsing, routing, JSON bodies, schema parsing, compatibility, registration, deletes,
 * config and mode) over a SQLite store that is emptied every few hundred inputs so state stays small. Every answer
 * must be a status between 200 and 599 with a JSON body; nothing may crash, leak or read out of bounds. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fields.h"
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "registry/internal.h"

static struct sl_registry *g_reg;
static char g_dir[64];
static unsigned g_runs;

static void reopen(void)
{
	struct sl_err err = {0};
	char db[128];
	sl_registry_close(g_reg);
	g_reg = NULL;
	snprintf(db, sizeof db, "%s/registry.db", g_dir);
	unlink(db);
	struct sl_registry_conf conf = {.listen = "127.0.0.1:0", .data_dir = g_dir, .store = "sqlite",
					.max_body = 1 << 20};
	if (sl_registry_open(&g_reg, &conf, &err))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!g_dir[0]) {
		sl_log_set_level(SL_LOG_WARN); /* every registration logs at info */
		snprintf(g_dir, sizeof g_dir, "/tmp/sluice-fuzz-registry-%d", (int)getpid());
		mkdir(g_dir, 0700);
	}
	if (!g_reg || ++g_runs % 500 == 0)
		reopen();
	char *f[4];
	char *buf = sl_fuzz_fields(data, size, f, 4);
	if (!buf)
		return 0;
	struct sl_http_auth a = {.token = "fuzz-token", .user = "admin", .password = "fuzz-pass"};
	if (f[2])
		sl_http_auth_ok(&a, f[2]);
	const char *body = f[3] ? f[3] : "";
	size_t blen = f[3] ? (size_t)(buf + size - f[3]) : 0; /* the body may hold NULs */
	struct sl_buf out;
	int status = 0;
	sl_buf_init(&out);
	sl_registry_handle(g_reg, f[0] ? f[0] : "GET", f[1] ? f[1] : "/", body, blen, &status, &out);
	if (status < 200 || status > 599)
		abort();
	if (out.len && out.data[0] != '{' && out.data[0] != '[' && out.data[0] != '"' &&
	    !(out.data[0] >= '0' && out.data[0] <= '9') && out.data[0] != '-' && strncmp(out.data, "true", 4) &&
	    strncmp(out.data, "false", 5) && strncmp(out.data, "null", 4))
		abort();
	sl_buf_free(&out);
	free(buf);
	return 0;
}
