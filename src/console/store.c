/* What the console remembers across restarts: every sample of every pipeline (the charts' history, and the windows
 * the error rate, dead-letter growth and alerts are computed over) and each alert's state, in SQLite under data_dir
 * (console.db, beside the audit log), for console.retention (24 h by default). On start the newest samples fill the
 * in-memory ring again and the alerts take up their state, so a chart does not start empty, a firing alert is not
 * announced a second time, and a rule's window spans the restart. Longer ranges than the ring holds (the time-range
 * picker's 6 h and 24 h) are read from here, averaged into at most max_points buckets. A database that cannot be
 * opened is said once in the log and the console runs on without memory. */
#include <errno.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "console/internal.h"
#include "core/log.h"

#define COMP "console"

void *sl_con_db_open(struct sl_console *c, const char *what, const char *schema)
{
	const char *dir = c->conf && c->conf->data_dir ? c->conf->data_dir : ".";
	char path[4200];
	snprintf(path, sizeof path, "%s/console.db", dir);
	if (mkdir(dir, 0755) && errno != EEXIST) {
		sl_warn(COMP, "%s: cannot create %s: %s", what, dir, strerror(errno));
		return NULL;
	}
	sqlite3 *db = NULL;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL) !=
		    SQLITE_OK ||
	    sqlite3_busy_timeout(db, 5000) != SQLITE_OK || sqlite3_exec(db, schema, NULL, NULL, NULL) != SQLITE_OK) {
		sl_warn(COMP, "%s: cannot open %s: %s", what, path, db ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		return NULL;
	}
	return db;
}

/* The collector thread writes, request threads read (history ranges): one connection each way is simplest, and
 * SQLite's FULLMUTEX serialises them. */
static sqlite3 *store_db(struct sl_console *c)
{
	if (c->store || c->store_failed)
		return c->store;
	c->store = sl_con_db_open(c, "history and alert state (not kept)",
			 "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
			 "CREATE TABLE IF NOT EXISTS samples(pipeline TEXT NOT NULL, t_ms INTEGER NOT NULL,"
			 " in_rate REAL, out_rate REAL, lag INTEGER, errors INTEGER, dlq INTEGER, table_rows INTEGER,"
			 " in_total INTEGER, out_total INTEGER, e2e_p95 REAL, lag_seconds REAL,"
			 " PRIMARY KEY(pipeline, t_ms)) WITHOUT ROWID;"
			 "CREATE INDEX IF NOT EXISTS samples_t ON samples(t_ms);"
			 "CREATE TABLE IF NOT EXISTS alert_state(alert TEXT NOT NULL, pipeline TEXT NOT NULL,"
			 " firing INTEGER NOT NULL, pending_since INTEGER, firing_since INTEGER, resolved_at INTEGER,"
			 " value REAL, silenced_until INTEGER, silenced_by TEXT, silence_comment TEXT,"
			 " PRIMARY KEY(alert, pipeline)) WITHOUT ROWID;");
	c->store_failed = !c->store;
	return c->store;
}

void sl_con_store_close(struct sl_console *c)
{
	if (c->store)
		sqlite3_close(c->store);
	c->store = NULL;
}

static void sample_from_row(sqlite3_stmt *st, int col, struct sl_con_sample *s)
{
	memset(s, 0, sizeof *s);
	s->t_ms = sqlite3_column_int64(st, col);
	s->in_rate = sqlite3_column_double(st, col + 1);
	s->out_rate = sqlite3_column_double(st, col + 2);
	s->lag = sqlite3_column_int64(st, col + 3);
	s->errors_total = (uint64_t)sqlite3_column_int64(st, col + 4);
	s->dlq = sqlite3_column_int64(st, col + 5);
	s->table_rows = sqlite3_column_int64(st, col + 6);
	s->in_total = (uint64_t)sqlite3_column_int64(st, col + 7);
	s->out_total = (uint64_t)sqlite3_column_int64(st, col + 8);
	s->e2e_p95 = sqlite3_column_type(st, col + 9) == SQLITE_NULL ? -1 : sqlite3_column_double(st, col + 9);
	s->lag_seconds = sqlite3_column_type(st, col + 10) == SQLITE_NULL ? -1 : sqlite3_column_double(st, col + 10);
}

void sl_con_store_load(struct sl_console *c)
{
	sqlite3 *db = store_db(c);
	if (!db)
		return;
	int64_t since = sl_con_now_ms() - c->cc.retention_ms;
	size_t loaded = 0;
	for (size_t i = 0; i < c->npipes; i++) {
		struct sl_con_pipe *cp = &c->pipes[i];
		sqlite3_stmt *st = NULL;
		/* the newest `history` samples, pushed oldest first */
		if (sqlite3_prepare_v2(db, "SELECT * FROM (SELECT t_ms, in_rate, out_rate, lag, errors, dlq, table_rows,"
					   " in_total, out_total, e2e_p95, lag_seconds FROM samples WHERE pipeline=? AND"
					   " t_ms>=? ORDER BY t_ms DESC LIMIT ?) ORDER BY t_ms",
				       -1, &st, NULL) != SQLITE_OK)
			break;
		sqlite3_bind_text(st, 1, cp->p->name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, since);
		sqlite3_bind_int64(st, 3, c->cc.history);
		while (sqlite3_step(st) == SQLITE_ROW) {
			struct sl_con_sample s;
			sample_from_row(st, 0, &s);
			sl_con_ring_push(c, cp, &s);
			loaded++;
		}
		sqlite3_finalize(st);
	}
	sqlite3_stmt *st = NULL;
	size_t alerts = 0;
	if (sqlite3_prepare_v2(db, "SELECT firing, pending_since, firing_since, resolved_at, value, silenced_until,"
				   " silenced_by, silence_comment FROM alert_state"
				   " WHERE alert=? AND pipeline=?", -1, &st, NULL) == SQLITE_OK) {
		for (size_t i = 0; i < c->nalerts; i++) {
			struct sl_con_alert *a = &c->alerts[i];
			sqlite3_reset(st);
			sqlite3_bind_text(st, 1, a->rule->name, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 2, a->pipeline, -1, SQLITE_STATIC);
			if (sqlite3_step(st) != SQLITE_ROW)
				continue;
			a->firing = sqlite3_column_int(st, 0) != 0;
			a->pending_since = sqlite3_column_int64(st, 1);
			a->firing_since = sqlite3_column_int64(st, 2);
			a->resolved_at = sqlite3_column_int64(st, 3);
			a->value = sqlite3_column_double(st, 4);
			a->silenced_until = sqlite3_column_int64(st, 5);
			const char *by = (const char *)sqlite3_column_text(st, 6), *why = (const char *)sqlite3_column_text(st, 7);
			snprintf(a->silenced_by, sizeof a->silenced_by, "%s", by ? by : "");
			snprintf(a->silence_comment, sizeof a->silence_comment, "%s", why ? why : "");
			alerts += a->firing;
		}
	}
	sqlite3_finalize(st);
	if (loaded || alerts)
		sl_debug(COMP, "history: %zu samples and %zu firing alerts taken up from console.db", loaded, alerts);
}

void sl_con_store_save(struct sl_console *c, int64_t now)
{
	sqlite3 *db = store_db(c);
	if (!db)
		return;
	/* Copy under the lock, write without it: a page asking meanwhile is not kept waiting on the disk. */
	struct sl_con_sample *last = calloc(c->npipes ? c->npipes : 1, sizeof *last);
	struct sl_con_alert *al = calloc(c->nalerts ? c->nalerts : 1, sizeof *al);
	if (!last || !al) {
		free(last);
		free(al);
		return;
	}
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->npipes; i++) {
		const struct sl_con_sample *s =
			c->pipes[i].nring ? sl_con_ring_at(c, &c->pipes[i], c->pipes[i].nring - 1) : NULL;
		if (s && s->t_ms == now)
			last[i] = *s;
	}
	memcpy(al, c->alerts, c->nalerts * sizeof *al);
	pthread_mutex_unlock(&c->lock);

	sqlite3_stmt *ins = NULL, *ast = NULL;
	bool ok = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK &&
		  sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO samples VALUES(?,?,?,?,?,?,?,?,?,?,?,?)", -1, &ins,
				     NULL) == SQLITE_OK &&
		  sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO alert_state VALUES(?,?,?,?,?,?,?,?,?,?)", -1, &ast, NULL) ==
			  SQLITE_OK;
	for (size_t i = 0; ok && i < c->npipes; i++) {
		const struct sl_con_sample *s = &last[i];
		if (!s->t_ms)
			continue;
		sqlite3_reset(ins);
		sqlite3_bind_text(ins, 1, c->pipes[i].p->name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(ins, 2, s->t_ms);
		sqlite3_bind_double(ins, 3, s->in_rate);
		sqlite3_bind_double(ins, 4, s->out_rate);
		sqlite3_bind_int64(ins, 5, s->lag);
		sqlite3_bind_int64(ins, 6, (int64_t)s->errors_total);
		sqlite3_bind_int64(ins, 7, s->dlq);
		sqlite3_bind_int64(ins, 8, s->table_rows);
		sqlite3_bind_int64(ins, 9, (int64_t)s->in_total);
		sqlite3_bind_int64(ins, 10, (int64_t)s->out_total);
		if (s->e2e_p95 >= 0)
			sqlite3_bind_double(ins, 11, s->e2e_p95);
		else
			sqlite3_bind_null(ins, 11);
		if (s->lag_seconds >= 0)
			sqlite3_bind_double(ins, 12, s->lag_seconds);
		else
			sqlite3_bind_null(ins, 12);
		ok = sqlite3_step(ins) == SQLITE_DONE;
	}
	for (size_t i = 0; ok && i < c->nalerts; i++) {
		sqlite3_reset(ast);
		sqlite3_bind_text(ast, 1, al[i].rule->name, -1, SQLITE_STATIC);
		sqlite3_bind_text(ast, 2, al[i].pipeline, -1, SQLITE_STATIC);
		sqlite3_bind_int(ast, 3, al[i].firing);
		sqlite3_bind_int64(ast, 4, al[i].pending_since);
		sqlite3_bind_int64(ast, 5, al[i].firing_since);
		sqlite3_bind_int64(ast, 6, al[i].resolved_at);
		sqlite3_bind_double(ast, 7, al[i].value);
		sqlite3_bind_int64(ast, 8, al[i].silenced_until);
		sqlite3_bind_text(ast, 9, al[i].silenced_by, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(ast, 10, al[i].silence_comment, -1, SQLITE_TRANSIENT);
		ok = sqlite3_step(ast) == SQLITE_DONE;
	}
	sqlite3_finalize(ins);
	sqlite3_finalize(ast);
	/* Retention: once a minute is plenty (a delete per sample would be most of the work). */
	if (ok && now - c->store_pruned_ms >= 60000) {
		sqlite3_stmt *del = NULL;
		ok = sqlite3_prepare_v2(db, "DELETE FROM samples WHERE t_ms<?", -1, &del, NULL) == SQLITE_OK;
		if (ok) {
			sqlite3_bind_int64(del, 1, now - c->cc.retention_ms);
			ok = sqlite3_step(del) == SQLITE_DONE;
		}
		sqlite3_finalize(del);
		c->store_pruned_ms = now;
	}
	if (ok)
		ok = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK;
	if (!ok) {
		if (!c->store_warned)
			sl_warn(COMP, "history: cannot write console.db: %s (said once)", sqlite3_errmsg(db));
		c->store_warned = true;
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	}
	free(last);
	free(al);
}

int sl_con_store_range(struct sl_console *c, const char *pipeline, int64_t from_ms, int64_t to_ms,
		       int64_t max_points, struct sl_buf *out)
{
	/* A separate read connection: the collector's may be inside a transaction. */
	const char *dir = c->conf && c->conf->data_dir ? c->conf->data_dir : ".";
	char path[4200];
	snprintf(path, sizeof path, "%s/console.db", dir);
	sqlite3 *db = NULL;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		sqlite3_close(db);
		return -1;
	}
	sqlite3_busy_timeout(db, 2000);
	int64_t bucket = (to_ms - from_ms) / (max_points > 0 ? max_points : 1);
	if (bucket < 1)
		bucket = 1;
	/* Averages per bucket for the rates and gauges; the counters' last value (MAX: they only rise, but for a reset
	 * topic, where the newest is what the page should say). */
	sqlite3_stmt *st = NULL;
	int rc = -1;
	if (sqlite3_prepare_v2(db, "SELECT MAX(t_ms), AVG(in_rate), AVG(out_rate), CAST(AVG(lag) AS INTEGER),"
				   " MAX(errors), MAX(dlq), MAX(table_rows), AVG(e2e_p95), AVG(lag_seconds)"
				   " FROM samples WHERE pipeline=? AND t_ms>=? AND t_ms<=? GROUP BY t_ms/? ORDER BY 1",
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, pipeline, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, from_ms);
		sqlite3_bind_int64(st, 3, to_ms);
		sqlite3_bind_int64(st, 4, bucket);
		bool first = true;
		while (sqlite3_step(st) == SQLITE_ROW) {
			sl_buf_printf(out, "%s[%" PRId64 ",%.3f,%.3f,%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64,
				      first ? "" : ",", (int64_t)sqlite3_column_int64(st, 0), sqlite3_column_double(st, 1),
				      sqlite3_column_double(st, 2), (int64_t)sqlite3_column_int64(st, 3),
				      (int64_t)sqlite3_column_int64(st, 4), (int64_t)sqlite3_column_int64(st, 5),
				      (int64_t)sqlite3_column_int64(st, 6));
			for (int k = 7; k <= 8; k++) {
				if (sqlite3_column_type(st, k) == SQLITE_NULL)
					sl_buf_puts(out, ",null");
				else
					sl_buf_printf(out, ",%.3f", sqlite3_column_double(st, k));
			}
			sl_buf_putc(out, ']');
			first = false;
		}
		rc = 0;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}
