/* The SQLite sink for the embedded default: one database file per keyspace (data_dir/<keyspace>.db), the table
 * created from the pipeline's schema, rows upserted by primary key, and the consumer's offsets written in the same
 * transaction as the rows — so after any crash the table and the offsets agree: exactly once here. */
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/log.h"
#include "sink/sink.h"

const struct sl_opt sl_sink_opts[] = {
	{"type", SL_OPT_ENUM, "auto", offsetof(struct sl_sink_conf, type),
	 "auto: Cassandra when the file has a cassandra: section, else SQLite; discard keeps nothing (benchmarks of the "
	 "engine alone)",
	 .choices = "auto|sqlite|cassandra|discard"},
	{"keyspace", SL_OPT_STRING, NULL, offsetof(struct sl_sink_conf, keyspace),
	 "Cassandra keyspace (SQLite: the database file data_dir/<keyspace>.db)", .required = true},
	{"table", SL_OPT_STRING, NULL, offsetof(struct sl_sink_conf, table), "table name", .required = true},
	{"primary_key", SL_OPT_STRLIST, NULL, offsetof(struct sl_sink_conf, primary_key),
	 "primary key columns, partition key first (default: the pipeline's key)"},
	{"consistency", SL_OPT_ENUM, "LOCAL_QUORUM", offsetof(struct sl_sink_conf, consistency),
	 "write consistency (Cassandra)", .choices = "ANY|ONE|TWO|THREE|QUORUM|ALL|LOCAL_QUORUM|EACH_QUORUM|LOCAL_ONE"},
	{"null_as_unset", SL_OPT_BOOL, "true", offsetof(struct sl_sink_conf, null_as_unset),
	 "a null value leaves the column as it is instead of writing a null (no tombstone)"},
	{"ttl", SL_OPT_DURATION, "0", offsetof(struct sl_sink_conf, ttl_s), "time to live of written rows (0 = none)"},
	{"columns", SL_OPT_STRMAP, NULL, offsetof(struct sl_sink_conf, columns),
	 "record field: table column, for fields whose column is named differently (by name otherwise)"},
	{"ttl_field", SL_OPT_STRING, NULL, offsetof(struct sl_sink_conf, ttl_field),
	 "a mapped int/bigint field giving each row's TTL in seconds, not written as a column (Cassandra)"},
	{"writetime_field", SL_OPT_STRING, NULL, offsetof(struct sl_sink_conf, writetime_field),
	 "a mapped timestamp field giving each row's write time, not written as a column (Cassandra)"},
	{"replication", SL_OPT_STRING, "{'class': 'SimpleStrategy', 'replication_factor': 1}",
	 offsetof(struct sl_sink_conf, replication), "replication of the keyspace when sluice creates it (Cassandra)"},
	{NULL},
};

struct sqlite_sink {
	struct sl_sink base;
	char *path;
	char *table;
	const struct sl_sink_conf *conf;
	const struct sl_schema *schema;
	sqlite3 *db;
	sqlite3_stmt *upsert, *offset_put, *offset_get;
	sqlite3_stmt *state_put, *state_del; /* prepared at the first batch with state */
	struct sl_buf scratch;
};

static int db_err(struct sl_err *err, struct sqlite_sink *s, const char *what)
{
	return sl_err_set(err, SL_EIO, "sqlite sink %s table %s: %s: %s", s->path, s->table, what,
			  sqlite3_errmsg(s->db));
}

static const char *sql_type(enum sl_type t)
{
	switch (t) {
	case SL_T_INT:
	case SL_T_BIGINT:
	case SL_T_BOOLEAN:
		return "INTEGER";
	case SL_T_DOUBLE:
		return "REAL";
	default:
		return "TEXT"; /* text, uuid, timestamp, date: their canonical text forms stay readable in sqlite3 */
	}
}

static int sq_prepare(struct sl_sink *bs, const struct sl_schema *schema, struct sl_err *err)
{
	struct sqlite_sink *s = (struct sqlite_sink *)bs;
	s->schema = schema;
	struct sl_buf q;
	sl_buf_init(&q);
	struct sl_buf pkcols;
	sl_buf_init(&pkcols);
	int prc = sl_sink_primary_key(s->conf, schema, s->table, &pkcols, NULL, err);
	if (prc) {
		sl_buf_free(&q);
		sl_buf_free(&pkcols);
		return prc;
	}
	if ((prc = sl_sink_check_fields(s->conf, schema, s->table, err))) {
		sl_buf_free(&q);
		sl_buf_free(&pkcols);
		return prc;
	}
	sl_buf_puts(&q, "CREATE TABLE IF NOT EXISTS ");
	sl_sink_ident(&q, s->table);
	sl_buf_puts(&q, " (");
	for (size_t i = 0; i < schema->n; i++) {
		sl_sink_ident(&q, sl_sink_column(s->conf, schema->fields[i].name));
		sl_buf_printf(&q, " %s, ", sql_type(schema->fields[i].type));
	}
	sl_buf_puts(&q, "PRIMARY KEY (");
	sl_buf_append(&q, pkcols.data, pkcols.len);
	sl_buf_puts(&q, "));"
			"CREATE TABLE IF NOT EXISTS _sluice_offsets(grp TEXT NOT NULL, topic TEXT NOT NULL,"
			" partition INTEGER NOT NULL, next_offset INTEGER NOT NULL,"
			" PRIMARY KEY(grp, topic, partition));"
			"CREATE TABLE IF NOT EXISTS _sluice_state(ns TEXT NOT NULL, k BLOB NOT NULL, v BLOB NOT NULL,"
			" PRIMARY KEY(ns, k)) WITHOUT ROWID;");
	int rc = 0;
	if (!sl_buf_ok(&q) || sqlite3_exec(s->db, sl_buf_cstr(&q), NULL, NULL, NULL) != SQLITE_OK)
		rc = db_err(err, s, "creating table");
	/* An existing table must have every column of the mapping. */
	for (size_t i = 0; rc == 0 && i < schema->n; i++) {
		sl_buf_reset(&q);
		sl_buf_puts(&q, "SELECT ");
		sl_sink_ident(&q, sl_sink_column(s->conf, schema->fields[i].name));
		sl_buf_puts(&q, " FROM ");
		sl_sink_ident(&q, s->table);
		sl_buf_puts(&q, " LIMIT 0");
		sqlite3_stmt *st = NULL;
		if (sqlite3_prepare_v2(s->db, sl_buf_cstr(&q), -1, &st, NULL) != SQLITE_OK)
			rc = sl_err_set(err, SL_ECONFIG, "sqlite sink %s: table %s exists without column '%s'", s->path,
					s->table, sl_sink_column(s->conf, schema->fields[i].name));
		sqlite3_finalize(st);
	}
	/* INSERT ... ON CONFLICT(pk) DO UPDATE: an upsert, like a CQL INSERT. */
	sl_buf_reset(&q);
	sl_buf_puts(&q, "INSERT INTO ");
	sl_sink_ident(&q, s->table);
	sl_buf_puts(&q, " (");
	for (size_t i = 0; i < schema->n; i++) {
		if (i)
			sl_buf_puts(&q, ", ");
		sl_sink_ident(&q, sl_sink_column(s->conf, schema->fields[i].name));
	}
	sl_buf_puts(&q, ") VALUES (");
	for (size_t i = 0; i < schema->n; i++)
		sl_buf_puts(&q, i ? ", ?" : "?");
	sl_buf_puts(&q, ") ON CONFLICT (");
	sl_buf_append(&q, pkcols.data, pkcols.len);
	sl_buf_puts(&q, ") DO UPDATE SET ");
	for (size_t i = 0; i < schema->n; i++) {
		if (i)
			sl_buf_puts(&q, ", ");
		sl_sink_ident(&q, sl_sink_column(s->conf, schema->fields[i].name));
		if (s->conf->null_as_unset) {
			sl_buf_puts(&q, " = COALESCE(excluded.");
			sl_sink_ident(&q, sl_sink_column(s->conf, schema->fields[i].name));
			sl_buf_puts(&q, ", ");
			sl_sink_ident(&q, sl_sink_column(s->conf, schema->fields[i].name));
			sl_buf_puts(&q, ")");
		} else {
			sl_buf_puts(&q, " = excluded.");
			sl_sink_ident(&q, sl_sink_column(s->conf, schema->fields[i].name));
		}
	}
	if (rc == 0 && (!sl_buf_ok(&q) || sqlite3_prepare_v2(s->db, sl_buf_cstr(&q), -1, &s->upsert, NULL) != SQLITE_OK))
		rc = db_err(err, s, "preparing upsert");
	if (rc == 0 &&
	    (sqlite3_prepare_v2(s->db,
				"INSERT INTO _sluice_offsets(grp, topic, partition, next_offset) VALUES(?,?,?,?) "
				"ON CONFLICT(grp, topic, partition) DO UPDATE SET next_offset=excluded.next_offset",
				-1, &s->offset_put, NULL) != SQLITE_OK ||
	     sqlite3_prepare_v2(s->db, "SELECT next_offset FROM _sluice_offsets WHERE grp=? AND topic=? AND partition=?",
				-1, &s->offset_get, NULL) != SQLITE_OK))
		rc = db_err(err, s, "preparing offsets");
	sl_buf_free(&q);
	sl_buf_free(&pkcols);
	return rc;
}

static int bind_value(struct sqlite_sink *s, int col, enum sl_type t, const struct sl_value *v)
{
	if (v->null)
		return sqlite3_bind_null(s->upsert, col);
	switch (t) {
	case SL_T_TEXT:
		return sqlite3_bind_text(s->upsert, col, v->u.s.p, (int)v->u.s.n, SQLITE_STATIC);
	case SL_T_INT:
		return sqlite3_bind_int(s->upsert, col, v->u.i32);
	case SL_T_BIGINT:
		return sqlite3_bind_int64(s->upsert, col, v->u.i64);
	case SL_T_BOOLEAN:
		return sqlite3_bind_int(s->upsert, col, v->u.b);
	case SL_T_DOUBLE:
		return sqlite3_bind_double(s->upsert, col, v->u.d);
	default:
		sl_buf_reset(&s->scratch);
		sl_value_to_text(t, v, &s->scratch);
		return sqlite3_bind_text(s->upsert, col, s->scratch.data ? s->scratch.data : "", (int)s->scratch.len,
					 SQLITE_TRANSIENT);
	}
}

static int sq_write(struct sl_sink *bs, struct sl_sink_batch *b, struct sl_err *err)
{
	struct sqlite_sink *s = (struct sqlite_sink *)bs;
	int rc = 0;
	if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return db_err(err, s, "begin");
	for (size_t i = 0; i < b->n && rc == 0; i++) {
		const struct sl_record *r = &b->recs[i];
		sqlite3_reset(s->upsert);
		for (size_t c = 0; c < s->schema->n; c++)
			bind_value(s, (int)c + 1, s->schema->fields[c].type, &r->v[c]);
		int st = sqlite3_step(s->upsert);
		if (st == SQLITE_DONE)
			continue;
		int ext = sqlite3_extended_errcode(s->db);
		if ((ext & 0xff) == SQLITE_CONSTRAINT || (ext & 0xff) == SQLITE_MISMATCH || (ext & 0xff) == SQLITE_TOOBIG) {
			/* This row can never be written: dead-letter it, keep the rest. */
			char reason[512];
			snprintf(reason, sizeof reason, "sqlite rejected the row: %s", sqlite3_errmsg(s->db));
			if (s->base.reject)
				s->base.reject(s->base.ctx, b, i, reason);
			continue;
		}
		rc = db_err(err, s, "writing a row");
	}
	if (rc == 0 && b->nstate && !s->state_put &&
	    (sqlite3_prepare_v2(s->db, "INSERT INTO _sluice_state(ns, k, v) VALUES(?,?,?) ON CONFLICT(ns, k) DO UPDATE "
				"SET v=excluded.v", -1, &s->state_put, NULL) != SQLITE_OK ||
	     sqlite3_prepare_v2(s->db, "DELETE FROM _sluice_state WHERE ns=? AND k=?", -1, &s->state_del, NULL) !=
		     SQLITE_OK))
		rc = db_err(err, s, "preparing state");
	/* Aggregate state, in the same transaction as the rows and the offsets: a replay never counts twice. */
	for (size_t i = 0; rc == 0 && i < b->nstate; i++) {
		const struct sl_state_put *sp = &b->state[i];
		sqlite3_stmt *st = sp->v ? s->state_put : s->state_del;
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, b->state_ns ? b->state_ns : "", -1, SQLITE_STATIC);
		sqlite3_bind_blob(st, 2, sp->k, (int)sp->klen, SQLITE_STATIC);
		if (sp->v)
			sqlite3_bind_blob(st, 3, sp->v, (int)sp->vlen, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			rc = db_err(err, s, "storing aggregate state");
	}
	for (size_t i = 0; rc == 0 && i < b->nmarks; i++) {
		sqlite3_reset(s->offset_put);
		sqlite3_bind_text(s->offset_put, 1, b->group ? b->group : "", -1, SQLITE_STATIC);
		sqlite3_bind_text(s->offset_put, 2, b->marks[i].topic, -1, SQLITE_STATIC);
		sqlite3_bind_int(s->offset_put, 3, b->marks[i].partition);
		sqlite3_bind_int64(s->offset_put, 4, b->marks[i].next_offset);
		if (sqlite3_step(s->offset_put) != SQLITE_DONE)
			rc = db_err(err, s, "storing offsets");
	}
	if (rc == 0 && sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		rc = db_err(err, s, "commit");
	if (rc) {
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		return rc; /* retryable by the caller: nothing of the batch is in the table */
	}
	if (s->base.done)
		s->base.done(s->base.ctx, b, 0, NULL);
	return 0;
}

static int sq_poll(struct sl_sink *bs, int timeout_ms)
{
	(void)bs;
	(void)timeout_ms;
	return 0;
}

static int sq_stored_offset(struct sl_sink *bs, const char *group, const char *topic, int32_t partition, int64_t *out)
{
	struct sqlite_sink *s = (struct sqlite_sink *)bs;
	if (!s->offset_get)
		return SL_ENOTFOUND;
	sqlite3_reset(s->offset_get);
	sqlite3_bind_text(s->offset_get, 1, group ? group : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(s->offset_get, 2, topic, -1, SQLITE_STATIC);
	sqlite3_bind_int(s->offset_get, 3, partition);
	if (sqlite3_step(s->offset_get) != SQLITE_ROW)
		return SL_ENOTFOUND;
	*out = sqlite3_column_int64(s->offset_get, 0);
	sqlite3_reset(s->offset_get);
	return 0;
}

static int64_t sq_count(struct sl_sink *bs, struct sl_err *err)
{
	struct sqlite_sink *s = (struct sqlite_sink *)bs;
	struct sl_buf q;
	sl_buf_init(&q);
	sl_buf_puts(&q, "SELECT COUNT(*) FROM ");
	sl_sink_ident(&q, s->table);
	sqlite3_stmt *st = NULL;
	int64_t n = SL_EIO;
	if (sqlite3_prepare_v2(s->db, sl_buf_cstr(&q), -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	else
		db_err(err, s, "counting rows");
	sqlite3_finalize(st);
	sl_buf_free(&q);
	return n;
}

static int sq_rows(struct sl_sink *bs, int64_t *out, bool *exact, struct sl_err *err)
{
	int64_t n = sq_count(bs, err);
	if (n < 0)
		return (int)n;
	*out = n;
	*exact = true;
	return 0;
}

static void json_text(struct sl_buf *out, const void *p, size_t n)
{
	sl_buf_json_str(out, p, n > 4096 ? 4096 : n);
}

static void cell(struct sl_buf *out, sqlite3_stmt *st, int i)
{
	switch (sqlite3_column_type(st, i)) {
	case SQLITE_NULL: sl_buf_puts(out, "null"); break;
	case SQLITE_INTEGER: sl_buf_printf(out, "%lld", (long long)sqlite3_column_int64(st, i)); break;
	case SQLITE_FLOAT: sl_buf_printf(out, "%.17g", sqlite3_column_double(st, i)); break;
	default: {
		const unsigned char *t = sqlite3_column_text(st, i);
		json_text(out, t, (size_t)sqlite3_column_bytes(st, i));
	}
	}
}

/* Runs a "SELECT rowid, * ..." whose ?1/?2 are bound by the caller and fills the page: the columns, then the rows up
 * to size (a row past it says a next page exists, its token the last rowid shown). */
static int page_rows(struct sqlite_sink *s, sqlite3_stmt *st, int64_t size, struct sl_sink_page *out, struct sl_err *err)
{
	int nc = sqlite3_column_count(st);
	for (int i = 1; i < nc; i++) {
		const char *cn = sqlite3_column_name(st, i);
		if (i > 1)
			sl_buf_putc(&out->columns, ',');
		sl_buf_json_str(&out->columns, cn, strlen(cn));
	}
	int64_t last = 0;
	int step;
	out->order = "newest";
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (out->nrows == size) {
			out->more = true;
			break;
		}
		last = sqlite3_column_int64(st, 0);
		sl_buf_puts(&out->rows, out->nrows++ ? ",[" : "[");
		for (int i = 1; i < nc; i++) {
			if (i > 1)
				sl_buf_putc(&out->rows, ',');
			cell(&out->rows, st, i);
		}
		sl_buf_putc(&out->rows, ']');
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE)
		return db_err(err, s, "reading rows");
	if (out->more)
		out->next_token_len = (size_t)snprintf((char *)out->next_token, sizeof out->next_token, "%lld",
						       (long long)last);
	return 0;
}

/* Newest first by rowid. The token is the last rowid shown, so a page continues below it however many rows arrived
 * meanwhile (page=N, an offset, is kept for scripts). */
static int sq_browse(struct sl_sink *bs, const unsigned char *token, size_t ntoken, int64_t page, int64_t size,
		     struct sl_sink_page *out, struct sl_err *err)
{
	struct sqlite_sink *s = (struct sqlite_sink *)bs;
	int64_t below = INT64_MAX;
	if (token) {
		char num[24];
		char *end;
		if (ntoken == 0 || ntoken >= sizeof num)
			return sl_err_set(err, SL_EINVAL, "bad page token");
		memcpy(num, token, ntoken);
		num[ntoken] = 0;
		long long v = strtoll(num, &end, 10);
		if (*end || v <= 0)
			return sl_err_set(err, SL_EINVAL, "bad page token");
		below = v;
	}
	char *sql = sqlite3_mprintf("SELECT rowid, * FROM \"%w\" WHERE rowid < ?1 ORDER BY rowid DESC LIMIT ?2 OFFSET ?3",
				    s->table);
	sqlite3_stmt *st = NULL;
	int rc = 0;
	if (!sql || sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
		rc = db_err(err, s, "reading rows");
	} else {
		sqlite3_bind_int64(st, 1, below);
		sqlite3_bind_int64(st, 2, size + 1);
		sqlite3_bind_int64(st, 3, token ? 0 : page * size);
		rc = page_rows(s, st, size, out, err);
	}
	sqlite3_free(sql);
	sqlite3_finalize(st);
	return rc;
}

/* The partition key here is the first primary key column (the one the Cassandra table would partition on). The
 * value is bound as text: against a column of INTEGER, REAL or NUMERIC affinity SQLite compares it as a number. */
static int sq_find(struct sl_sink *bs, const char *value, int64_t size, struct sl_sink_page *out, struct sl_err *err)
{
	struct sqlite_sink *s = (struct sqlite_sink *)bs;
	sqlite3_stmt *st = NULL;
	char col[256] = "";
	if (sqlite3_prepare_v2(s->db, "SELECT name FROM pragma_table_info(?1) WHERE pk = 1", -1, &st, NULL) != SQLITE_OK)
		return db_err(err, s, "describing");
	sqlite3_bind_text(st, 1, s->table, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		snprintf(col, sizeof col, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	st = NULL;
	if (!col[0])
		return sl_err_set(err, SL_ENOTFOUND, "sqlite sink %s: table %s has no primary key to filter on", s->path,
				  s->table);
	char *sql = sqlite3_mprintf("SELECT rowid, * FROM \"%w\" WHERE \"%w\" = ?1 ORDER BY rowid DESC LIMIT ?2", s->table,
				    col);
	int rc = 0;
	if (!sql || sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
		rc = db_err(err, s, "reading rows");
	} else {
		sqlite3_bind_text(st, 1, value, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 2, size + 1);
		rc = page_rows(s, st, size, out, err);
		/* A partition's rows are one page: no token continues it. */
		out->next_token_len = 0;
	}
	sqlite3_free(sql);
	sqlite3_finalize(st);
	return rc;
}

static int sq_describe(struct sl_sink *bs, struct sl_sink_column **cols, size_t *n, struct sl_err *err)
{
	struct sqlite_sink *s = (struct sqlite_sink *)bs;
	sqlite3_stmt *st = NULL;
	*cols = NULL;
	*n = 0;
	if (sqlite3_prepare_v2(s->db, "SELECT name, type, pk FROM pragma_table_info(?1) ORDER BY cid", -1, &st, NULL) !=
	    SQLITE_OK)
		return db_err(err, s, "describing");
	sqlite3_bind_text(st, 1, s->table, -1, SQLITE_STATIC);
	int rc = 0;
	size_t cap = 0;
	while (!rc && sqlite3_step(st) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			struct sl_sink_column *nc = realloc(*cols, cap * sizeof *nc);
			if (!nc) {
				rc = sl_err_set(err, SL_ENOMEM, "out of memory");
				break;
			}
			*cols = nc;
		}
		struct sl_sink_column *c = &(*cols)[(*n)++];
		snprintf(c->name, sizeof c->name, "%s", (const char *)sqlite3_column_text(st, 0));
		snprintf(c->type, sizeof c->type, "%s", (const char *)sqlite3_column_text(st, 1));
		c->key = sqlite3_column_int(st, 2) > 0;
		c->partition = sqlite3_column_int(st, 2) == 1;
	}
	sqlite3_finalize(st);
	if (!rc && *n == 0)
		rc = sl_err_set(err, SL_ENOTFOUND, "sqlite sink %s: no table %s", s->path, s->table);
	if (rc) {
		free(*cols);
		*cols = NULL;
		*n = 0;
	}
	return rc;
}

static int sq_state_load(struct sl_sink *bs, const char *ns,
			 int (*fn)(void *ctx, const void *k, size_t klen, const void *v, size_t vlen), void *ctx,
			 struct sl_err *err)
{
	struct sqlite_sink *s = (struct sqlite_sink *)bs;
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(s->db, "SELECT k, v FROM _sluice_state WHERE ns=?", -1, &st, NULL) != SQLITE_OK)
		return db_err(err, s, "reading aggregate state");
	sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
	int rc = 0, step;
	while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW)
		rc = fn(ctx, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0), sqlite3_column_blob(st, 1),
			(size_t)sqlite3_column_bytes(st, 1));
	if (rc == 0 && step != SQLITE_DONE)
		rc = db_err(err, s, "reading aggregate state");
	else if (rc)
		sl_err_set(err, rc, "sqlite sink %s: aggregate state of %s does not read back (written by another "
			   "version?)", s->path, ns);
	sqlite3_finalize(st);
	return rc;
}

static void sq_destroy(struct sl_sink *bs)
{
	struct sqlite_sink *s = (struct sqlite_sink *)bs;
	sqlite3_finalize(s->state_put);
	sqlite3_finalize(s->state_del);
	sqlite3_finalize(s->upsert);
	sqlite3_finalize(s->offset_put);
	sqlite3_finalize(s->offset_get);
	sqlite3_close(s->db);
	sl_buf_free(&s->scratch);
	free(s->path);
	free(s->table);
	free(s);
}

static const struct sl_sink_ops sqlite_ops = {
	.prepare = sq_prepare,
	.write = sq_write,
	.poll = sq_poll,
	.stored_offset = sq_stored_offset,
	.state_load = sq_state_load,
	.count = sq_count,
	.rows = sq_rows,
	.browse = sq_browse,
	.describe = sq_describe,
	.find = sq_find,
	.destroy = sq_destroy,
};

/* The sink object for conf's table in data_dir/<keyspace>.db, not opened yet. */
static int sq_alloc(const char *data_dir, const struct sl_sink_conf *conf, struct sqlite_sink **out, struct sl_err *err)
{
	for (const char *p = conf->keyspace; *p; p++)
		if (*p == '/' || *p == '\\')
			return sl_err_set(err, SL_ECONFIG, "sink keyspace '%s' must not contain a path separator",
					  conf->keyspace);
	struct sqlite_sink *s = calloc(1, sizeof *s);
	if (!s)
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	s->base.ops = &sqlite_ops;
	s->conf = conf;
	sl_buf_init(&s->scratch);
	size_t n = strlen(data_dir) + strlen(conf->keyspace) + 8;
	s->path = malloc(n);
	s->table = strdup(conf->table);
	if (!s->path || !s->table) {
		sq_destroy(&s->base);
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	}
	snprintf(s->path, n, "%s/%s.db", data_dir, conf->keyspace);
	*out = s;
	return 0;
}

int sl_sink_sqlite_new(const char *data_dir, const struct sl_sink_conf *conf, struct sl_sink **out,
		       struct sl_err *err)
{
	struct sqlite_sink *s;
	int rc = sq_alloc(data_dir, conf, &s, err);
	if (rc)
		return rc;
	if (sqlite3_open_v2(s->path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK) {
		rc = db_err(err, s, "opening");
		sq_destroy(&s->base);
		return rc;
	}
	sqlite3_busy_timeout(s->db, 30000);
	for (int tries = 0; tries < 200; tries++) { /* see embedded.c: WAL switch does not wait on busy */
		int prc = sqlite3_exec(s->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL, NULL, NULL);
		if (prc != SQLITE_BUSY && prc != SQLITE_LOCKED)
			break;
		usleep(50000);
	}
	snprintf(s->base.where, sizeof s->base.where, "sqlite3 %s 'SELECT * FROM %s LIMIT 5'", s->path, conf->table);
	*out = &s->base;
	return 0;
}

int sl_sink_sqlite_reader(const char *data_dir, const struct sl_sink_conf *conf, struct sl_sink **out,
			  struct sl_err *err)
{
	struct sqlite_sink *s;
	int rc = sq_alloc(data_dir, conf, &s, err);
	if (rc)
		return rc;
	if (access(s->path, R_OK) != 0) {
		rc = sl_err_set(err, SL_ENOTFOUND, "sqlite sink %s: not there yet", s->path);
		sq_destroy(&s->base);
		return rc;
	}
	if (sqlite3_open_v2(s->path, &s->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		rc = db_err(err, s, "opening");
		sq_destroy(&s->base);
		return rc;
	}
	sqlite3_busy_timeout(s->db, 2000);
	snprintf(s->base.where, sizeof s->base.where, "sqlite3 %s 'SELECT * FROM %s LIMIT 5'", s->path, conf->table);
	*out = &s->base;
	return 0;
}
