/* The console's audit log: every action an operator takes through the console (a DLQ replay, a DAG trigger, a schema
 * change, a silence; any write that reaches a route) is recorded with who (the basic user, or which token), the role,
 * when, what and on what, and how it ended, in SQLite under data_dir (console.db), so it survives restarts and the
 * Audit page can show it. Writing the record never fails an action: a database that cannot be opened is reported
 * in the log and on the page. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "console/internal.h"
#include "core/httpauth.h"
#include "core/log.h"

#define COMP "console"

static pthread_mutex_t g_audit_lock = PTHREAD_MUTEX_INITIALIZER;

static sqlite3 *audit_db(struct sl_console *c)
{
	if (c->audit || c->audit_failed)
		return c->audit;
	c->audit = sl_con_db_open(c, "audit log",
			 "PRAGMA journal_mode=WAL;"
			 "CREATE TABLE IF NOT EXISTS audit(id INTEGER PRIMARY KEY AUTOINCREMENT, ts_ms INTEGER NOT NULL,"
			 " who TEXT NOT NULL, role TEXT NOT NULL, action TEXT NOT NULL, target TEXT, detail TEXT,"
			 " status INTEGER NOT NULL);");
	c->audit_failed = !c->audit;
	return c->audit;
}

void sl_con_audit_close(struct sl_console *c)
{
	pthread_mutex_lock(&g_audit_lock);
	if (c->audit)
		sqlite3_close(c->audit);
	c->audit = NULL;
	pthread_mutex_unlock(&g_audit_lock);
}

void sl_con_who(const struct sl_console *c, const char *authorization, char *who, size_t whosz, const char **role)
{
	enum sl_http_role r = sl_http_auth_role(&c->sec, authorization);
	*role = r == SL_HTTP_ROLE_WRITE ? "operator" : r == SL_HTTP_ROLE_READ ? "viewer" : "none";
	if (!sl_http_auth_on(&c->sec)) {
		snprintf(who, whosz, "anonymous (auth off)");
		return;
	}
	if (authorization && !strncasecmp(authorization, "Basic ", 6)) {
		unsigned char dec[512];
		int n = sl_http_auth_b64_decode(authorization + 6, strlen(authorization + 6), dec, sizeof dec - 1);
		if (n > 0) {
			dec[n] = 0;
			char *colon = strchr((char *)dec, ':');
			if (colon)
				*colon = 0;
			snprintf(who, whosz, "%s", (char *)dec);
			return;
		}
	}
	/* A bearer token is a secret: only which of the two it was. */
	snprintf(who, whosz, r == SL_HTTP_ROLE_WRITE ? "token (operator)" : "token (viewer)");
}

void sl_con_audit(struct sl_console *c, const char *authorization, const char *action, const char *target,
		  const char *detail, int status)
{
	char who[256];
	const char *role;
	sl_con_who(c, authorization, who, sizeof who, &role);
	sl_info(COMP, "audit who=\"%s\" role=%s action=%s target=\"%s\" status=%d", who, role, action,
		target ? target : "", status);
	pthread_mutex_lock(&g_audit_lock);
	sqlite3 *db = audit_db(c);
	sqlite3_stmt *st = NULL;
	if (db && sqlite3_prepare_v2(db, "INSERT INTO audit(ts_ms, who, role, action, target, detail, status) VALUES "
				       "(?,?,?,?,?,?,?)", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, sl_con_now_ms());
		sqlite3_bind_text(st, 2, who, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 3, role, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, action, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 5, target ? target : "", -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 6, detail ? detail : "", -1, SQLITE_TRANSIENT);
		sqlite3_bind_int(st, 7, status);
		if (sqlite3_step(st) != SQLITE_DONE)
			sl_warn(COMP, "audit log: cannot record %s: %s", action, sqlite3_errmsg(db));
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&g_audit_lock);
}

void sl_con_audit_json(struct sl_console *c, int64_t limit, struct sl_buf *out)
{
	pthread_mutex_lock(&g_audit_lock);
	sqlite3 *db = audit_db(c);
	sqlite3_stmt *st = NULL;
	sl_buf_printf(out, "{\"ok\":%s,\"entries\":[", db ? "true" : "false");
	if (db && sqlite3_prepare_v2(db, "SELECT id, ts_ms, who, role, action, target, detail, status FROM audit "
				       "ORDER BY id DESC LIMIT ?", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, limit);
		for (int n = 0; sqlite3_step(st) == SQLITE_ROW; n++) {
			sl_buf_printf(out, "%s{\"id\":%" PRId64 ",\"time\":%" PRId64, n ? "," : "",
				      (int64_t)sqlite3_column_int64(st, 0), (int64_t)sqlite3_column_int64(st, 1));
			static const char *const cols[] = {"who", "role", "action", "target", "detail"};
			for (int k = 0; k < 5; k++) {
				const char *v = (const char *)sqlite3_column_text(st, 2 + k);
				sl_buf_printf(out, ",\"%s\":", cols[k]);
				sl_buf_json_str(out, v ? v : "", v ? strlen(v) : 0);
			}
			sl_buf_printf(out, ",\"status\":%d}", sqlite3_column_int(st, 7));
		}
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&g_audit_lock);
	sl_buf_puts(out, "]}");
}
