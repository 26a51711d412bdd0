/* The registry's embedded store: Confluent's `_schemas` records in one SQLite table, compacted by key as Kafka's
 * log compaction would (a record replaces the previous value of its key; a tombstone removes it). Replaying the
 * table in write order rebuilds the registry, so this store and the Kafka one share every line of the fold. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "core/log.h"
#include "registry/internal.h"

struct sqlite_store {
	struct sl_reg_store base;
	sqlite3 *db;
	char *path;
	sqlite3_stmt *put, *del, *since;
	int64_t seq;  /* highest seq applied: another process (a pipeline beside `sluice up`) may share the file */
};

static int db_err(struct sqlite_store *s, struct sl_err *err, const char *what)
{
	return sl_err_set(err, SL_EIO, "%s: %s: %s", s->path, what, sqlite3_errmsg(s->db));
}

static int sq_write(struct sl_reg_store *st, struct sl_registry *r, const char *key, const char *value,
		    struct sl_err *err)
{
	struct sqlite_store *s = (struct sqlite_store *)st;
	sqlite3_stmt *q = value ? s->put : s->del;
	int rc;
	sqlite3_reset(q);
	sqlite3_bind_text(q, 1, key, -1, SQLITE_TRANSIENT);
	if (value)
		sqlite3_bind_text(q, 2, value, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(q);
	sqlite3_reset(q);
	if (rc != SQLITE_DONE)
		return db_err(s, err, "writing a registry record");
	sl_reg_apply(r, key, strlen(key), value, value ? strlen(value) : 0);
	return 0;
}

/* Applies rows that other connections wrote since the last look (re-applying our own is harmless: the fold is
 * idempotent). A tombstone written elsewhere is only seen on the next open. */
static int sq_sync(struct sl_reg_store *st, struct sl_registry *r, struct sl_err *err)
{
	struct sqlite_store *s = (struct sqlite_store *)st;
	int rc;
	sqlite3_reset(s->since);
	sqlite3_bind_int64(s->since, 1, s->seq);
	while ((rc = sqlite3_step(s->since)) == SQLITE_ROW) {
		sl_reg_apply(r, (const char *)sqlite3_column_text(s->since, 0), (size_t)sqlite3_column_bytes(s->since, 0),
			     (const char *)sqlite3_column_text(s->since, 1), (size_t)sqlite3_column_bytes(s->since, 1));
		s->seq = sqlite3_column_int64(s->since, 2);
	}
	sqlite3_reset(s->since);
	return rc == SQLITE_DONE ? 0 : db_err(s, err, "reading new records");
}

static void sq_close(struct sl_reg_store *st)
{
	struct sqlite_store *s = (struct sqlite_store *)st;
	sqlite3_finalize(s->since);
	sqlite3_finalize(s->put);
	sqlite3_finalize(s->del);
	sqlite3_close(s->db);
	free(s->path);
	free(s);
}

static int mkdirs(const char *dir, struct sl_err *err)
{
	char tmp[4096];
	size_t n = strlen(dir);
	if (n >= sizeof tmp)
		return sl_err_set(err, SL_EINVAL, "data_dir '%s' is too long", dir);
	memcpy(tmp, dir, n + 1);
	for (size_t i = 1; i <= n; i++)
		if (tmp[i] == '/' || tmp[i] == 0) {
			char c = tmp[i];
			tmp[i] = 0;
			if (mkdir(tmp, 0755) && errno != EEXIST)
				return sl_err_set(err, SL_EIO, "creating data_dir '%s': %s", tmp, strerror(errno));
			tmp[i] = c;
		}
	return 0;
}

int sl_reg_store_sqlite_open(struct sl_reg_store **out, struct sl_registry *r, const char *data_dir,
			     struct sl_err *err)
{
	struct sqlite_store *s = calloc(1, sizeof *s);
	sqlite3_stmt *q = NULL;
	size_t n = 0;
	int rc;
	if (!s)
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	s->base.write = sq_write;
	s->base.sync = sq_sync;
	s->base.close = sq_close;
	if ((rc = mkdirs(data_dir, err))) {
		free(s);
		return rc;
	}
	if (asprintf(&s->path, "%s/registry.db", data_dir) < 0) {
		free(s);
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	}
	if (sqlite3_open(s->path, &s->db) != SQLITE_OK) {
		rc = db_err(s, err, "opening");
		goto fail;
	}
	sqlite3_busy_timeout(s->db, 5000);
	/* seq orders the replay; a replaced key moves to the end, as a compacted topic keeps the latest offset. */
	if (sqlite3_exec(s->db,
			 "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
			 "CREATE TABLE IF NOT EXISTS schemas_log (key TEXT PRIMARY KEY, value TEXT NOT NULL, "
			 "seq INTEGER NOT NULL);",
			 NULL, NULL, NULL) != SQLITE_OK) {
		rc = db_err(s, err, "creating the schemas_log table");
		goto fail;
	}
	if (sqlite3_prepare_v2(s->db,
			       "INSERT OR REPLACE INTO schemas_log(key, value, seq) "
			       "VALUES (?1, ?2, (SELECT COALESCE(MAX(seq), 0) + 1 FROM schemas_log))",
			       -1, &s->put, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, "DELETE FROM schemas_log WHERE key = ?1", -1, &s->del, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, "SELECT key, value, seq FROM schemas_log WHERE seq > ?1 ORDER BY seq", -1,
			       &s->since, NULL) != SQLITE_OK) {
		rc = db_err(s, err, "preparing statements");
		goto fail;
	}
	if (sqlite3_prepare_v2(s->db, "SELECT key, value, seq FROM schemas_log ORDER BY seq", -1, &q, NULL) != SQLITE_OK) {
		rc = db_err(s, err, "reading");
		goto fail;
	}
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		sl_reg_apply(r, (const char *)sqlite3_column_text(q, 0), (size_t)sqlite3_column_bytes(q, 0),
			     (const char *)sqlite3_column_text(q, 1), (size_t)sqlite3_column_bytes(q, 1));
		s->seq = sqlite3_column_int64(q, 2);
		n++;
	}
	sqlite3_finalize(q);
	if (rc != SQLITE_DONE) {
		rc = db_err(s, err, "replaying");
		goto fail;
	}
	sl_info("registry", "store=sqlite path=%s records=%zu schemas=%zu", s->path, n, r->nschemas);
	*out = &s->base;
	return 0;
fail:
	sq_close(&s->base);
	return rc;
}
