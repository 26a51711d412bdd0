/* libFuzzer target for the console's request handling: the input is split on '\n' into method, request target,
 * Authorization, Accept-Encoding, If-None-Match and body, and goes through the whole dispatcher (target and query
 * parsing, auth with a token and basic credentials configured, routing, the JSON API over an empty console) and
 * through each parser on its own. Nothing may crash, leak or read out of bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fields.h"

#include "console/internal.h"

static struct sl_console g_con;
static struct sl_conf g_conf;

static void init_once(void)
{
	static int done;
	if (done)
		return;
	done = 1;
	g_conf.data_dir = "/nonexistent/sluice-fuzz";
	struct sl_err err = {0};
	setenv("SLUICE_CONSOLE_TOKEN", "fuzz-token", 1);
	setenv("SLUICE_CONSOLE_PASSWORD", "fuzz-pass", 1);
	if (sl_con_init(&g_con, &g_conf, NULL, &err))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	init_once();
	char *f[6];
	char *buf = sl_fuzz_fields(data, size, f, 6);
	if (!buf)
		return 0;
	struct sl_con_req rq = {.method = f[0], .target = f[1], .authorization = f[2], .accept_encoding = f[3],
				.if_none_match = f[4], .body = f[5], .len = f[5] ? strlen(f[5]) : 0};
	struct sl_con_resp rs = {0};
	sl_buf_init(&rs.body);
	sl_con_dispatch(&g_con, &rq, &rs);
	if (rs.status < 200 || rs.status > 599)
		abort();
	sl_buf_free(&rs.body);

	char path[512], query[512], v[128];
	if (f[1] && sl_con_split_target(f[1], path, sizeof path, query, sizeof query) == 0) {
		if (path[0] != '/' || strstr(path, "/../") || strstr(path, "//"))
			abort();
		int64_t n;
		sl_con_query_get(query, "topic", v, sizeof v);
		sl_con_query_int(query, "offset", 0, 0, INT64_MAX, &n);
		unsigned char tok[64];
		if (sl_con_query_get(query, "token", v, sizeof v) == 1)
			sl_con_page_token_decode(v, tok, sizeof tok);
	}
	if (f[2]) {
		struct sl_http_auth s = {.token = "t", .user = "u", .password = "p"};
		sl_http_auth_ok(&s, f[2]);
		char host[64];
		int port;
		sl_con_parse_listen(f[2], host, sizeof host, &port);
	}
	sl_con_accepts_gzip(f[3]);
	sl_con_etag_matches(f[4], "\"0123456789abcdef\"");
	free(buf);
	return 0;
}
