/* The embedded log: topics with partitions and offsets, consumer-group positions and source cursors, all in one
 * SQLite database (data_dir/log.db, WAL mode). It keeps Kafka's semantics where a pipeline can see them — offsets
 * dense per partition, delivery reported only after the write is durable (the transaction committed), a group resumes
 * at its committed offset — so the same pipeline runs here and on Kafka unchanged. Each producer and consumer has its
 * own connection; writers serialize on SQLite's write lock (BEGIN IMMEDIATE), so offsets stay dense even with several
 * processes. */
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/clock.h"
#include "core/log.h"
#include "topic/topic.h"

#define PRODUCER_BATCH 1000
#define PRODUCER_BATCH_BYTES (4u << 20)

struct sl_embedded_log {
	char *path;
	char where[4200]; /* "log PATH", for displays */
	sqlite3 *db; /* admin and cursors; guarded by lock */
	pthread_mutex_t lock;
};

static const char *SCHEMA_SQL =
	"PRAGMA journal_mode=WAL;"
	"CREATE TABLE IF NOT EXISTS topics(name TEXT PRIMARY KEY, partitions INTEGER NOT NULL,"
	"  created_ms INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS messages(topic TEXT NOT NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL,"
	"  ts_ms INTEGER NOT NULL, key BLOB, value BLOB, headers BLOB,"
	"  PRIMARY KEY(topic, partition, offset)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS group_offsets(grp TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL,"
	"  next_offset INTEGER NOT NULL, updated_ms INTEGER NOT NULL, PRIMARY KEY(grp, topic, partition));"
	"CREATE TABLE IF NOT EXISTS cursors(name TEXT PRIMARY KEY, value TEXT NOT NULL, updated_ms INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS topic_configs(topic TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL,"
	"  PRIMARY KEY(topic, name));";

/* Retention: messages older than a topic's retention.ms go, but never the newest of a partition (the watermarks and
 * the next offset are read from the messages kept, as Kafka keeps its active segment). topic NULL: every topic. */
static const char *RETENTION_SQL =
	"DELETE FROM messages WHERE (topic, partition, offset) IN ("
	" SELECT m.topic, m.partition, m.offset FROM messages m JOIN topic_configs c"
	"  ON c.topic = m.topic AND c.name = 'retention.ms' AND CAST(c.value AS INTEGER) >= 0"
	" WHERE (?1 IS NULL OR m.topic = ?1) AND m.ts_ms < ?2 - CAST(c.value AS INTEGER)"
	"  AND m.offset < (SELECT MAX(offset) FROM messages x WHERE x.topic = m.topic AND x.partition = m.partition))";

static int apply_retention(sqlite3 *db, const char *topic, int64_t now)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db, RETENTION_SQL, -1, &st, NULL) != SQLITE_OK)
		return -1; /* a log from before topic_configs: nothing to apply */
	if (topic)
		sqlite3_bind_text(st, 1, topic, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now);
	int rc = sqlite3_step(st) == SQLITE_DONE ? sqlite3_changes(db) : -1;
	sqlite3_finalize(st);
	return rc;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int db_err(struct sl_err *err, sqlite3 *db, const char *what, const char *path)
{
	int code = sqlite3_errcode(db);
	int sl = (code == SQLITE_FULL || code == SQLITE_IOERR) ? SL_EIO : (code == SQLITE_BUSY ? SL_EAGAIN : SL_EIO);
	return sl_err_set(err, sl, "embedded log %s: %s: %s", path, what, sqlite3_errmsg(db));
}

static int open_conn(const char *path, sqlite3 **out, struct sl_err *err)
{
	sqlite3 *db = NULL;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK) {
		int rc = sl_err_set(err, SL_EIO, "embedded log %s: cannot open: %s", path,
				    db ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		return rc;
	}
	sqlite3_busy_timeout(db, 30000);
	/* NORMAL in WAL mode is durable against process crashes (kill -9), which is the failure we promise to survive
	 * on one machine; FULL would add an fsync per transaction for power loss. */
	/* Switching to WAL takes an exclusive lock and does not wait on the busy handler: retry while another
	 * connection (another thread of this process, at first start) holds the database. */
	int prc = SQLITE_BUSY;
	for (int tries = 0; tries < 200 && (prc == SQLITE_BUSY || prc == SQLITE_LOCKED); tries++) {
		prc = sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL, NULL, NULL);
		if (prc == SQLITE_BUSY || prc == SQLITE_LOCKED)
			usleep(50000);
	}
	if (prc != SQLITE_OK) {
		int rc = db_err(err, db, "setting WAL mode", path);
		sqlite3_close(db);
		return rc;
	}
	*out = db;
	return 0;
}

int sl_embedded_open(const char *data_dir, struct sl_embedded_log **out, struct sl_err *err)
{
	char dir[4096];
	snprintf(dir, sizeof dir, "%s", data_dir);
	for (char *s = dir + 1;; s++) { /* mkdir -p */
		char c = *s;
		if (c == '/' || c == '\0') {
			*s = '\0';
			if (mkdir(dir, 0755) != 0 && errno != EEXIST)
				return sl_err_set(err, SL_EIO, "data_dir %s: cannot create %s: %s", data_dir, dir,
						  strerror(errno));
			*s = c;
		}
		if (!c)
			break;
	}
	struct sl_embedded_log *log = calloc(1, sizeof *log);
	if (!log)
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	size_t n = strlen(data_dir) + 16;
	log->path = malloc(n);
	if (!log->path) {
		free(log);
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	}
	snprintf(log->path, n, "%s/log.db", data_dir);
	snprintf(log->where, sizeof log->where, "log %s", log->path);
	pthread_mutex_init(&log->lock, NULL);
	int rc = open_conn(log->path, &log->db, err);
	if (rc == 0 && sqlite3_exec(log->db, SCHEMA_SQL, NULL, NULL, NULL) != SQLITE_OK)
		rc = db_err(err, log->db, "creating tables", log->path);
	if (rc) {
		sl_embedded_close(log);
		return rc;
	}
	*out = log;
	return 0;
}

void sl_embedded_close(struct sl_embedded_log *log)
{
	if (!log)
		return;
	sqlite3_close(log->db);
	pthread_mutex_destroy(&log->lock);
	free(log->path);
	free(log);
}

int sl_embedded_partitions(struct sl_embedded_log *log, const char *topic, int *out, struct sl_err *err)
{
	pthread_mutex_lock(&log->lock);
	sqlite3_stmt *st = NULL;
	int rc = 0;
	if (sqlite3_prepare_v2(log->db, "SELECT partitions FROM topics WHERE name=?", -1, &st, NULL) != SQLITE_OK) {
		rc = db_err(err, log->db, "reading topics", log->path);
	} else {
		sqlite3_bind_text(st, 1, topic, -1, SQLITE_STATIC);
		int s = sqlite3_step(st);
		if (s == SQLITE_ROW)
			*out = sqlite3_column_int(st, 0);
		else if (s == SQLITE_DONE)
			rc = sl_err_set(err, SL_ENOTFOUND, "embedded log %s: topic '%s' does not exist", log->path, topic);
		else
			rc = db_err(err, log->db, "reading topics", log->path);
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&log->lock);
	return rc;
}

int sl_embedded_ensure_topic(struct sl_embedded_log *log, const char *topic, int partitions, struct sl_err *err)
{
	if (partitions < 1 || partitions > 10000)
		return sl_err_set(err, SL_EINVAL, "topic '%s': partitions must be 1..10000, got %d", topic, partitions);
	int have = 0;
	int rc = sl_embedded_partitions(log, topic, &have, NULL);
	if (rc == 0) {
		if (have != partitions)
			sl_warn("topic", "topic '%s' exists with %d partitions; keeping them (config asks %d)", topic,
				have, partitions);
		return 0;
	}
	pthread_mutex_lock(&log->lock);
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(log->db, "INSERT OR IGNORE INTO topics(name, partitions, created_ms) VALUES(?,?,?)", -1,
			       &st, NULL) != SQLITE_OK ||
	    (sqlite3_bind_text(st, 1, topic, -1, SQLITE_STATIC), sqlite3_bind_int(st, 2, partitions),
	     sqlite3_bind_int64(st, 3, now_ms()), sqlite3_step(st)) != SQLITE_DONE)
		rc = db_err(err, log->db, "creating topic", log->path);
	else
		rc = 0;
	sqlite3_finalize(st);
	pthread_mutex_unlock(&log->lock);
	if (rc == 0)
		sl_info("topic", "created embedded topic '%s' partitions=%d", topic, partitions);
	return rc;
}

int sl_embedded_high_watermark(struct sl_embedded_log *log, const char *topic, int32_t partition, int64_t *out,
			       struct sl_err *err)
{
	pthread_mutex_lock(&log->lock);
	sqlite3_stmt *st = NULL;
	int rc = 0;
	if (sqlite3_prepare_v2(log->db, "SELECT MAX(offset) FROM messages WHERE topic=? AND partition=?", -1, &st,
			       NULL) != SQLITE_OK) {
		rc = db_err(err, log->db, "reading watermark", log->path);
	} else {
		sqlite3_bind_text(st, 1, topic, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 2, partition);
		if (sqlite3_step(st) == SQLITE_ROW)
			*out = sqlite3_column_type(st, 0) == SQLITE_NULL ? 0 : sqlite3_column_int64(st, 0) + 1;
		else
			rc = db_err(err, log->db, "reading watermark", log->path);
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&log->lock);
	return rc;
}

int sl_embedded_cursor_get(struct sl_embedded_log *log, const char *name, char *out, size_t outsz, struct sl_err *err)
{
	pthread_mutex_lock(&log->lock);
	sqlite3_stmt *st = NULL;
	int rc = SL_ENOTFOUND;
	if (sqlite3_prepare_v2(log->db, "SELECT value FROM cursors WHERE name=?", -1, &st, NULL) != SQLITE_OK) {
		rc = db_err(err, log->db, "reading cursor", log->path);
	} else {
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW) {
			snprintf(out, outsz, "%s", (const char *)sqlite3_column_text(st, 0));
			rc = 0;
		}
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&log->lock);
	return rc;
}

int sl_embedded_cursor_put(struct sl_embedded_log *log, const char *name, const char *value, struct sl_err *err)
{
	pthread_mutex_lock(&log->lock);
	sqlite3_stmt *st = NULL;
	int rc = 0;
	if (sqlite3_prepare_v2(log->db,
			       "INSERT INTO cursors(name, value, updated_ms) VALUES(?,?,?) "
			       "ON CONFLICT(name) DO UPDATE SET value=excluded.value, updated_ms=excluded.updated_ms",
			       -1, &st, NULL) != SQLITE_OK ||
	    (sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC), sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC),
	     sqlite3_bind_int64(st, 3, now_ms()), sqlite3_step(st)) != SQLITE_DONE)
		rc = db_err(err, log->db, "saving cursor", log->path);
	sqlite3_finalize(st);
	pthread_mutex_unlock(&log->lock);
	return rc;
}

int32_t sl_topic_partition_for_key(const void *key, size_t len, int partitions)
{
	/* Kafka's murmur2 (as in the Java client's Utils.murmur2), then toPositive() modulo partitions. */
	const uint8_t *data = key;
	const uint32_t m = 0x5bd1e995;
	const int r = 24;
	uint32_t h = 0x9747b28cu ^ (uint32_t)len;
	size_t len4 = len / 4;
	for (size_t i = 0; i < len4; i++) {
		size_t i4 = i * 4;
		uint32_t k = (uint32_t)data[i4] | (uint32_t)data[i4 + 1] << 8 | (uint32_t)data[i4 + 2] << 16 |
			     (uint32_t)data[i4 + 3] << 24;
		k *= m;
		k ^= k >> r;
		k *= m;
		h *= m;
		h ^= k;
	}
	switch (len % 4) {
	case 3: h ^= (uint32_t)data[(len & ~3u) + 2] << 16; /* fall through */
	case 2: h ^= (uint32_t)data[(len & ~3u) + 1] << 8;  /* fall through */
	case 1:
		h ^= data[len & ~3u];
		h *= m;
	}
	h ^= h >> 13;
	h *= m;
	h ^= h >> 15;
	return partitions > 0 ? (int32_t)((h & 0x7fffffff) % (uint32_t)partitions) : 0;
}

/* ---- producer ---- */

struct pending {
	char *topic;
	int32_t partition;
	int64_t ts_ms;
	void *key, *value, *headers;
	size_t key_len, value_len, headers_len;
	void *opaque;
	int64_t offset; /* assigned at write */
	int err;
};

struct emb_producer {
	struct sl_producer base;
	struct sl_embedded_log *log;
	sqlite3 *db;
	sqlite3_stmt *ins, *maxoff;
	struct pending *pend;
	size_t npend, cap, pend_bytes;
	struct pending *done; /* written (or failed), awaiting their delivery callback */
	size_t ndone, done_cap;
	char errmsg[SL_ERR_MSG_MAX];
	/* A write that failed for a reason that passes (disk full, I/O error, the database locked for too long) keeps
	 * its messages pending and is tried again, like a Kafka producer riding out a broker outage: the source waits
	 * (SL_EFULL once PRODUCER_HOLD is reached) instead of failing its pages, and goes on once space returns. */
	double stalled_since, next_try, last_warn;
	double last_retention;
};

/* Pending messages a stalled producer holds before produce() answers SL_EFULL (backpressure, bounded memory). */
#define PRODUCER_HOLD (2 * PRODUCER_BATCH)
#define PRODUCER_HOLD_BYTES (2 * PRODUCER_BATCH_BYTES)

static double mono_s(void)
{
	return sl_mono_s();
}

static bool transient(int code)
{
	code &= 0xff;
	return code == SQLITE_FULL || code == SQLITE_IOERR || code == SQLITE_BUSY || code == SQLITE_LOCKED;
}

static void pending_free(struct pending *p)
{
	free(p->topic);
	free(p->key);
	free(p->value);
	free(p->headers);
}

static void *dup_bytes(const void *p, size_t n)
{
	if (!p)
		return NULL;
	void *d = malloc(n ? n : 1);
	if (d && n)
		memcpy(d, p, n);
	return d;
}

/* Writes every pending message in one transaction; their outcome goes to the done list either way. */
static int producer_write(struct emb_producer *p)
{
	if (!p->npend)
		return 0;
	if (p->stalled_since > 0 && mono_s() < p->next_try)
		return SL_EAGAIN;
	struct sl_err err = {0};
	int rc = 0, code = SQLITE_OK;
	if (sqlite3_exec(p->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		rc = db_err(&err, p->db, "begin", p->log->path);
	/* Partition offsets: read once per (topic, partition) per transaction, under the write lock. */
	struct { const char *topic; int32_t part; int64_t next; } offs[64];
	size_t noffs = 0;
	for (size_t i = 0; rc == 0 && i < p->npend; i++) {
		struct pending *m = &p->pend[i];
		size_t k = 0;
		while (k < noffs && !(offs[k].part == m->partition && !strcmp(offs[k].topic, m->topic)))
			k++;
		if (k == noffs) {
			if (noffs == 64) { /* too many partitions in one batch: write the rest next time */
				break;
			}
			sqlite3_reset(p->maxoff);
			sqlite3_bind_text(p->maxoff, 1, m->topic, -1, SQLITE_STATIC);
			sqlite3_bind_int(p->maxoff, 2, m->partition);
			if (sqlite3_step(p->maxoff) != SQLITE_ROW) {
				rc = db_err(&err, p->db, "reading offsets", p->log->path);
				break;
			}
			offs[k].topic = m->topic;
			offs[k].part = m->partition;
			offs[k].next = sqlite3_column_type(p->maxoff, 0) == SQLITE_NULL
					       ? 0
					       : sqlite3_column_int64(p->maxoff, 0) + 1;
			sqlite3_reset(p->maxoff); /* an open read statement would pin a stale snapshot */
			noffs++;
		}
		m->offset = offs[k].next++;
		sqlite3_reset(p->ins);
		sqlite3_bind_text(p->ins, 1, m->topic, -1, SQLITE_STATIC);
		sqlite3_bind_int(p->ins, 2, m->partition);
		sqlite3_bind_int64(p->ins, 3, m->offset);
		sqlite3_bind_int64(p->ins, 4, m->ts_ms);
		if (m->key)
			sqlite3_bind_blob(p->ins, 5, m->key, (int)m->key_len, SQLITE_STATIC);
		else
			sqlite3_bind_null(p->ins, 5);
		if (m->value)
			sqlite3_bind_blob(p->ins, 6, m->value, (int)m->value_len, SQLITE_STATIC);
		else
			sqlite3_bind_null(p->ins, 6);
		if (m->headers)
			sqlite3_bind_blob(p->ins, 7, m->headers, (int)m->headers_len, SQLITE_STATIC);
		else
			sqlite3_bind_null(p->ins, 7);
		if (sqlite3_step(p->ins) != SQLITE_DONE)
			rc = db_err(&err, p->db, "appending", p->log->path);
	}
	if (rc == 0 && sqlite3_exec(p->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		rc = db_err(&err, p->db, "commit", p->log->path);
	if (rc) {
		code = sqlite3_extended_errcode(p->db);
		sqlite3_exec(p->db, "ROLLBACK", NULL, NULL, NULL);
		snprintf(p->errmsg, sizeof p->errmsg, "%s", err.msg);
	}
	if (rc && transient(code)) {
		/* Nothing of the transaction is in the log: keep every message pending and try again shortly. */
		double now = mono_s();
		for (size_t i = 0; i < p->npend; i++)
			p->pend[i].offset = -1;
		if (p->stalled_since == 0)
			p->stalled_since = now;
		if (now - p->last_warn >= 10) {
			sl_warn("topic", "%s; holding %zu messages and retrying (stalled %.0f s)", err.msg, p->npend,
				now - p->stalled_since);
			p->last_warn = now;
		}
		p->next_try = now + 0.5;
		return rc;
	}
	if (rc == 0 && mono_s() - p->last_retention >= 60) {
		/* Retention (retention.ms set through the console) as the log grows, once a minute at most. */
		p->last_retention = mono_s();
		apply_retention(p->db, NULL, now_ms());
	}
	if (rc)
		sl_warn("topic", "%s", err.msg);
	else if (p->stalled_since > 0) {
		sl_info("topic", "embedded log %s: writes resumed after %.1f s", p->log->path, mono_s() - p->stalled_since);
		p->stalled_since = 0;
		p->last_warn = 0;
	}
	/* Move to done: everything on failure (reported as failed), or the written prefix on success. */
	size_t moved = p->npend;
	if (rc == 0) {
		moved = 0;
		while (moved < p->npend && p->pend[moved].offset >= 0)
			moved++;
	}
	if (p->ndone + moved > p->done_cap) {
		size_t cap = (p->ndone + moved) * 2;
		struct pending *d = realloc(p->done, cap * sizeof *d);
		if (!d)
			return SL_ENOMEM;
		p->done = d;
		p->done_cap = cap;
	}
	for (size_t i = 0; i < moved; i++) {
		p->pend[i].err = rc;
		p->done[p->ndone++] = p->pend[i];
		p->pend_bytes -= p->pend[i].key_len + p->pend[i].value_len;
	}
	memmove(p->pend, p->pend + moved, (p->npend - moved) * sizeof *p->pend);
	p->npend -= moved;
	return rc;
}

static int emb_produce(struct sl_producer *bp, const struct sl_msg *m, void *opaque, int timeout_ms,
		       struct sl_err *err)
{
	struct emb_producer *p = (struct emb_producer *)bp;
	if (p->npend >= PRODUCER_BATCH || p->pend_bytes >= PRODUCER_BATCH_BYTES)
		producer_write(p); /* failures are reported per message through the delivery callback */
	if (p->stalled_since > 0 && (p->npend >= PRODUCER_HOLD || p->pend_bytes >= PRODUCER_HOLD_BYTES))
		return sl_err_set(err, SL_EFULL, "%s; %zu messages held", p->errmsg, p->npend);
	if (p->npend == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 256;
		struct pending *n = realloc(p->pend, cap * sizeof *n);
		if (!n)
			return sl_err_set(err, SL_ENOMEM, "out of memory");
		p->pend = n;
		p->cap = cap;
	}
	int parts = 1;
	int32_t part = m->partition;
	if (part < 0) {
		int rc = sl_embedded_partitions(p->log, m->topic, &parts, err);
		if (rc)
			return rc;
		part = m->key ? sl_topic_partition_for_key(m->key, m->key_len, parts) : (int32_t)(rand() % parts);
	}
	struct pending *q = &p->pend[p->npend];
	memset(q, 0, sizeof *q);
	q->topic = strdup(m->topic);
	q->partition = part;
	q->ts_ms = m->timestamp_ms ? m->timestamp_ms : now_ms();
	q->key = dup_bytes(m->key, m->key_len);
	q->key_len = m->key_len;
	q->value = dup_bytes(m->value, m->value_len);
	q->value_len = m->value_len;
	q->opaque = opaque;
	q->offset = -1;
	if (m->n_headers) {
		size_t hl = 0;
		for (size_t i = 0; i < m->n_headers; i++)
			hl += 6 + strlen(m->headers[i].key) + m->headers[i].value_len;
		uint8_t *h = malloc(hl);
		if (h) {
			size_t o = 0;
			for (size_t i = 0; i < m->n_headers; i++) {
				size_t kl = strlen(m->headers[i].key), vl = m->headers[i].value_len;
				h[o++] = (uint8_t)(kl >> 8);
				h[o++] = (uint8_t)kl;
				memcpy(h + o, m->headers[i].key, kl);
				o += kl;
				h[o++] = (uint8_t)(vl >> 24);
				h[o++] = (uint8_t)(vl >> 16);
				h[o++] = (uint8_t)(vl >> 8);
				h[o++] = (uint8_t)vl;
				memcpy(h + o, m->headers[i].value, vl);
				o += vl;
			}
			q->headers = h;
			q->headers_len = hl;
		}
	}
	if (!q->topic || (m->key && !q->key) || (m->value && !q->value) || (m->n_headers && !q->headers)) {
		pending_free(q);
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	}
	(void)timeout_ms;
	p->npend++;
	p->pend_bytes += q->key_len + q->value_len;
	return 0;
}

static int emb_poll(struct sl_producer *bp, int timeout_ms)
{
	struct emb_producer *p = (struct emb_producer *)bp;
	producer_write(p);
	if (p->stalled_since > 0 && !p->ndone && timeout_ms > 0) {
		/* Stalled: wait for the next try rather than spin on a full disk. */
		double wait = p->next_try - mono_s();
		if (wait > timeout_ms / 1000.0)
			wait = timeout_ms / 1000.0;
		if (wait > 0)
			usleep((useconds_t)(wait * 1e6));
	}
	size_t n = p->ndone;
	for (size_t i = 0; i < n; i++) {
		struct pending *d = &p->done[i];
		if (p->base.on_delivery)
			p->base.on_delivery(p->base.ctx, d->opaque, d->err, d->err ? p->errmsg : NULL, d->partition,
					    d->offset);
		pending_free(d);
	}
	p->ndone = 0;
	return (int)n;
}

static int emb_flush(struct sl_producer *bp, int timeout_ms, struct sl_err *err)
{
	struct emb_producer *p = (struct emb_producer *)bp;
	int64_t deadline = now_ms() + timeout_ms;
	while (p->npend || p->ndone) {
		emb_poll(bp, 0);
		if (p->npend && now_ms() > deadline)
			return sl_err_set(err, SL_ETIMEDOUT, "embedded log %s: %zu messages not written after %d ms: %s",
					  p->log->path, p->npend, timeout_ms, p->errmsg);
		if (p->npend)
			usleep(50000);
	}
	return 0;
}

static int64_t emb_in_flight(struct sl_producer *bp)
{
	struct emb_producer *p = (struct emb_producer *)bp;
	return (int64_t)(p->npend + p->ndone);
}

static void emb_pdestroy(struct sl_producer *bp)
{
	struct emb_producer *p = (struct emb_producer *)bp;
	for (size_t i = 0; i < p->npend; i++)
		pending_free(&p->pend[i]);
	for (size_t i = 0; i < p->ndone; i++)
		pending_free(&p->done[i]);
	free(p->pend);
	free(p->done);
	sqlite3_finalize(p->ins);
	sqlite3_finalize(p->maxoff);
	sqlite3_close(p->db);
	free(p);
}

static const struct sl_producer_ops emb_producer_ops = {
	.produce = emb_produce,
	.poll = emb_poll,
	.flush = emb_flush,
	.in_flight = emb_in_flight,
	.destroy = emb_pdestroy,
};

int sl_embedded_producer(struct sl_embedded_log *log, sl_delivery_fn fn, void *ctx, struct sl_producer **out,
			 struct sl_err *err)
{
	struct emb_producer *p = calloc(1, sizeof *p);
	if (!p)
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	p->base.ops = &emb_producer_ops;
	p->base.on_delivery = fn;
	p->base.ctx = ctx;
	p->log = log;
	int rc = open_conn(log->path, &p->db, err);
	if (rc == 0 &&
	    (sqlite3_prepare_v2(p->db,
				"INSERT INTO messages(topic, partition, offset, ts_ms, key, value, headers) "
				"VALUES(?,?,?,?,?,?,?)",
				-1, &p->ins, NULL) != SQLITE_OK ||
	     sqlite3_prepare_v2(p->db, "SELECT MAX(offset) FROM messages WHERE topic=? AND partition=?", -1, &p->maxoff,
				NULL) != SQLITE_OK))
		rc = db_err(err, p->db, "preparing producer", log->path);
	if (rc) {
		emb_pdestroy(&p->base);
		return rc;
	}
	*out = &p->base;
	return 0;
}

/* ---- consumer ---- */

struct emb_part {
	int32_t partition;
	int64_t position;   /* next offset to read */
	int64_t committed;
};

struct emb_consumer {
	struct sl_consumer base;
	struct sl_embedded_log *log;
	sqlite3 *db;
	sqlite3_stmt *fetch, *commit, *hw;
	char *group, *topic;
	struct emb_part *parts;
	int nparts;
	int next_part;          /* round-robin start */
	struct sl_arena arena;  /* the current poll's messages */
	struct sl_header *hdrs;
	size_t nhdrs, hdrs_cap;
};

static int parse_headers(struct emb_consumer *c, const uint8_t *h, size_t n, struct sl_msg *m)
{
	size_t start = c->nhdrs;
	size_t o = 0;
	while (o + 6 <= n) {
		size_t kl = (size_t)h[o] << 8 | h[o + 1];
		if (o + 2 + kl + 4 > n)
			break;
		const uint8_t *k = h + o + 2;
		o += 2 + kl;
		size_t vl = (size_t)h[o] << 24 | (size_t)h[o + 1] << 16 | (size_t)h[o + 2] << 8 | h[o + 3];
		o += 4;
		if (vl > n - o)
			break;
		if (c->nhdrs == c->hdrs_cap) {
			size_t cap = c->hdrs_cap ? c->hdrs_cap * 2 : 64;
			struct sl_header *nh = realloc(c->hdrs, cap * sizeof *nh);
			if (!nh)
				return SL_ENOMEM;
			c->hdrs = nh;
			c->hdrs_cap = cap;
		}
		c->hdrs[c->nhdrs].key = sl_arena_strndup(&c->arena, (const char *)k, kl);
		c->hdrs[c->nhdrs].value = sl_arena_memdup(&c->arena, h + o, vl);
		c->hdrs[c->nhdrs].value_len = vl;
		c->nhdrs++;
		o += vl;
	}
	/* Pointers into hdrs are fixed up after the poll, since hdrs may move while growing. */
	m->headers = (const struct sl_header *)(uintptr_t)start;
	m->n_headers = c->nhdrs - start;
	return 0;
}

static int emb_cpoll(struct sl_consumer *bc, struct sl_msg *out, size_t max, int timeout_ms, struct sl_err *err)
{
	struct emb_consumer *c = (struct emb_consumer *)bc;
	int64_t deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	sl_arena_reset(&c->arena);
	c->nhdrs = 0;
	for (;;) {
		size_t got = 0;
		for (int k = 0; k < c->nparts && got < max; k++) {
			struct emb_part *pt = &c->parts[(c->next_part + k) % c->nparts];
			sqlite3_reset(c->fetch);
			sqlite3_bind_text(c->fetch, 1, c->topic, -1, SQLITE_STATIC);
			sqlite3_bind_int(c->fetch, 2, pt->partition);
			sqlite3_bind_int64(c->fetch, 3, pt->position);
			sqlite3_bind_int64(c->fetch, 4, (sqlite3_int64)(max - got));
			int s;
			while ((s = sqlite3_step(c->fetch)) == SQLITE_ROW) {
				struct sl_msg *m = &out[got++];
				memset(m, 0, sizeof *m);
				m->topic = c->topic;
				m->partition = pt->partition;
				m->offset = sqlite3_column_int64(c->fetch, 0);
				m->timestamp_ms = sqlite3_column_int64(c->fetch, 1);
				if (sqlite3_column_type(c->fetch, 2) != SQLITE_NULL) {
					m->key_len = (size_t)sqlite3_column_bytes(c->fetch, 2);
					m->key = sl_arena_memdup(&c->arena, sqlite3_column_blob(c->fetch, 2), m->key_len);
				}
				if (sqlite3_column_type(c->fetch, 3) != SQLITE_NULL) {
					m->value_len = (size_t)sqlite3_column_bytes(c->fetch, 3);
					m->value = sl_arena_memdup(&c->arena, sqlite3_column_blob(c->fetch, 3),
								   m->value_len);
				}
				if (sqlite3_column_type(c->fetch, 4) != SQLITE_NULL &&
				    parse_headers(c, sqlite3_column_blob(c->fetch, 4),
						  (size_t)sqlite3_column_bytes(c->fetch, 4), m))
					return sl_err_set(err, SL_ENOMEM, "out of memory");
				if ((m->key_len && !m->key) || (m->value_len && !m->value))
					return sl_err_set(err, SL_ENOMEM, "out of memory");
				pt->position = m->offset + 1;
			}
			if (s != SQLITE_DONE)
				return db_err(err, c->db, "reading messages", c->log->path);
		}
		c->next_part = (c->next_part + 1) % c->nparts;
		if (got) {
			for (size_t i = 0; i < got; i++)
				out[i].headers = out[i].n_headers ? c->hdrs + (uintptr_t)out[i].headers : NULL;
			return (int)got;
		}
		if (now_ms() >= deadline)
			return 0;
		usleep(20000);
	}
}

static int emb_commit(struct sl_consumer *bc, const char *topic, int32_t partition, int64_t next_offset,
		      struct sl_err *err)
{
	struct emb_consumer *c = (struct emb_consumer *)bc;
	sqlite3_reset(c->commit);
	sqlite3_bind_text(c->commit, 1, c->group, -1, SQLITE_STATIC);
	sqlite3_bind_text(c->commit, 2, topic, -1, SQLITE_STATIC);
	sqlite3_bind_int(c->commit, 3, partition);
	sqlite3_bind_int64(c->commit, 4, next_offset);
	sqlite3_bind_int64(c->commit, 5, now_ms());
	if (sqlite3_step(c->commit) != SQLITE_DONE)
		return db_err(err, c->db, "committing offset", c->log->path);
	for (int i = 0; i < c->nparts; i++)
		if (c->parts[i].partition == partition)
			c->parts[i].committed = next_offset;
	return 0;
}

static int emb_seek(struct sl_consumer *bc, const char *topic, int32_t partition, int64_t offset, struct sl_err *err)
{
	struct emb_consumer *c = (struct emb_consumer *)bc;
	for (int i = 0; i < c->nparts; i++)
		if (c->parts[i].partition == partition && !strcmp(topic, c->topic)) {
			c->parts[i].position = offset;
			return 0;
		}
	return sl_err_set(err, SL_ENOTFOUND, "topic '%s' has no partition %d", topic, partition);
}

static int64_t emb_lag(struct sl_consumer *bc, struct sl_err *err)
{
	struct emb_consumer *c = (struct emb_consumer *)bc;
	int64_t lag = 0;
	for (int i = 0; i < c->nparts; i++) {
		sqlite3_reset(c->hw);
		sqlite3_bind_text(c->hw, 1, c->topic, -1, SQLITE_STATIC);
		sqlite3_bind_int(c->hw, 2, c->parts[i].partition);
		if (sqlite3_step(c->hw) != SQLITE_ROW)
			return db_err(err, c->db, "reading watermark", c->log->path);
		int64_t hw = sqlite3_column_type(c->hw, 0) == SQLITE_NULL ? 0 : sqlite3_column_int64(c->hw, 0) + 1;
		sqlite3_reset(c->hw);
		if (hw > c->parts[i].committed)
			lag += hw - c->parts[i].committed;
	}
	return lag;
}

static void emb_cdestroy(struct sl_consumer *bc)
{
	struct emb_consumer *c = (struct emb_consumer *)bc;
	sqlite3_finalize(c->fetch);
	sqlite3_finalize(c->commit);
	sqlite3_finalize(c->hw);
	sqlite3_close(c->db);
	sl_arena_free(&c->arena);
	free(c->hdrs);
	free(c->parts);
	free(c->group);
	free(c->topic);
	free(c);
}

static const struct sl_consumer_ops emb_consumer_ops = {
	.poll = emb_cpoll,
	.commit = emb_commit,
	.seek = emb_seek,
	.lag = emb_lag,
	.destroy = emb_cdestroy,
};

int sl_embedded_consumer(struct sl_embedded_log *log, const char *group, const char *topic, struct sl_consumer **out,
			 struct sl_err *err)
{
	int nparts = 0;
	int rc = sl_embedded_partitions(log, topic, &nparts, err);
	if (rc)
		return rc;
	struct emb_consumer *c = calloc(1, sizeof *c);
	if (!c)
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	c->base.ops = &emb_consumer_ops;
	c->log = log;
	c->group = strdup(group);
	c->topic = strdup(topic);
	c->parts = calloc((size_t)nparts, sizeof *c->parts);
	c->nparts = nparts;
	sl_arena_init(&c->arena, 1 << 20);
	if (!c->group || !c->topic || !c->parts) {
		emb_cdestroy(&c->base);
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	}
	rc = open_conn(log->path, &c->db, err);
	sqlite3_stmt *st = NULL;
	if (rc == 0 &&
	    (sqlite3_prepare_v2(c->db,
				"SELECT offset, ts_ms, key, value, headers FROM messages "
				"WHERE topic=? AND partition=? AND offset>=? ORDER BY offset LIMIT ?",
				-1, &c->fetch, NULL) != SQLITE_OK ||
	     sqlite3_prepare_v2(c->db,
				"INSERT INTO group_offsets(grp, topic, partition, next_offset, updated_ms) "
				"VALUES(?,?,?,?,?) ON CONFLICT(grp, topic, partition) DO UPDATE SET "
				"next_offset=excluded.next_offset, updated_ms=excluded.updated_ms",
				-1, &c->commit, NULL) != SQLITE_OK ||
	     sqlite3_prepare_v2(c->db, "SELECT MAX(offset) FROM messages WHERE topic=? AND partition=?", -1, &c->hw,
				NULL) != SQLITE_OK ||
	     sqlite3_prepare_v2(c->db, "SELECT next_offset FROM group_offsets WHERE grp=? AND topic=? AND partition=?",
				-1, &st, NULL) != SQLITE_OK))
		rc = db_err(err, c->db, "preparing consumer", log->path);
	for (int i = 0; rc == 0 && i < nparts; i++) {
		c->parts[i].partition = i;
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, group, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, topic, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 3, i);
		if (sqlite3_step(st) == SQLITE_ROW)
			c->parts[i].position = c->parts[i].committed = sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	if (rc) {
		emb_cdestroy(&c->base);
		return rc;
	}
	*out = &c->base;
	return 0;
}

/* ---- the topic store (topic.h): the embedded log ---- */

/* Inspection goes through the log's own connection (under its lock), so nothing outside this file knows the
 * tables. */
struct estore {
	struct sl_topic_store base;
	struct sl_embedded_log *log;
};

#define ELOG(bs) (((struct estore *)(bs))->log)

static int es_ensure_topic(struct sl_topic_store *bs, const char *topic, int partitions, int replication,
			   struct sl_err *err)
{
	(void)replication;
	return sl_embedded_ensure_topic(ELOG(bs), topic, partitions, err);
}

static int es_partitions(struct sl_topic_store *bs, const char *topic, int *out, struct sl_err *err)
{
	return sl_embedded_partitions(ELOG(bs), topic, out, err);
}

/* Low and high watermarks under the lock already held. */
static int watermarks_locked(struct sl_embedded_log *log, const char *topic, int32_t partition, int64_t *low,
			     int64_t *high, struct sl_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = 0;
	if (sqlite3_prepare_v2(log->db, "SELECT MIN(offset), MAX(offset) FROM messages WHERE topic=? AND partition=?",
			       -1, &st, NULL) != SQLITE_OK) {
		rc = db_err(err, log->db, "reading watermarks", log->path);
	} else {
		sqlite3_bind_text(st, 1, topic, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 2, partition);
		if (sqlite3_step(st) == SQLITE_ROW) {
			bool none = sqlite3_column_type(st, 1) == SQLITE_NULL;
			*high = none ? 0 : sqlite3_column_int64(st, 1) + 1;
			*low = none ? *high : sqlite3_column_int64(st, 0);
		} else
			rc = db_err(err, log->db, "reading watermarks", log->path);
	}
	sqlite3_finalize(st);
	return rc;
}

static int es_watermarks(struct sl_topic_store *bs, const char *topic, int32_t partition, int64_t *low,
			 int64_t *high, struct sl_err *err)
{
	struct sl_embedded_log *log = ELOG(bs);
	pthread_mutex_lock(&log->lock);
	int rc = watermarks_locked(log, topic, partition, low, high, err);
	pthread_mutex_unlock(&log->lock);
	return rc;
}

static int es_producer(struct sl_topic_store *bs, sl_delivery_fn fn, void *ctx, struct sl_producer **out,
		       struct sl_err *err)
{
	return sl_embedded_producer(ELOG(bs), fn, ctx, out, err);
}

static int es_consumer(struct sl_topic_store *bs, const char *group, const char *topic, struct sl_consumer **out,
		       struct sl_err *err)
{
	return sl_embedded_consumer(ELOG(bs), group, topic, out, err);
}

static int es_committed(struct sl_topic_store *bs, const char *group, const char *topic, struct sl_topic_part *parts,
			int n, struct sl_err *err)
{
	struct sl_embedded_log *log = ELOG(bs);
	pthread_mutex_lock(&log->lock);
	sqlite3_stmt *st = NULL;
	int rc = 0;
	if (sqlite3_prepare_v2(log->db, "SELECT next_offset, updated_ms FROM group_offsets WHERE grp=? AND topic=? AND "
				       "partition=?", -1, &st, NULL) != SQLITE_OK)
		rc = db_err(err, log->db, "reading group offsets", log->path);
	for (int i = 0; !rc && i < n; i++) {
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, group, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, topic, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 3, parts[i].partition);
		int s = sqlite3_step(st);
		parts[i].committed = s == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
		parts[i].commit_ms = s == SQLITE_ROW ? sqlite3_column_int64(st, 1) : 0;
		if (s != SQLITE_ROW && s != SQLITE_DONE)
			rc = db_err(err, log->db, "reading group offsets", log->path);
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&log->lock);
	return rc;
}

static int es_group_lag(struct sl_topic_store *bs, const char *group, const char *topic, int64_t *out,
			struct sl_err *err)
{
	int n = 0;
	int rc = sl_embedded_partitions(ELOG(bs), topic, &n, err);
	struct sl_topic_part *parts = rc ? NULL : calloc(n ? (size_t)n : 1, sizeof *parts);
	if (!rc && !parts)
		rc = sl_err_set(err, SL_ENOMEM, "out of memory");
	for (int i = 0; !rc && i < n; i++) {
		parts[i].partition = i;
		rc = es_watermarks(bs, topic, i, &parts[i].low, &parts[i].high, err);
	}
	if (!rc)
		rc = es_committed(bs, group, topic, parts, n, err);
	int64_t lag = 0;
	for (int i = 0; !rc && i < n; i++) {
		int64_t from = parts[i].committed >= 0 ? parts[i].committed : parts[i].low;
		lag += parts[i].high > from ? parts[i].high - from : 0;
	}
	free(parts);
	if (!rc)
		*out = lag;
	return rc;
}

static int es_describe(struct sl_topic_store *bs, const char *const *first, size_t nfirst, size_t max,
		       struct sl_topic_desc **out, size_t *nout, struct sl_topic_broker *brokers, size_t maxb,
		       size_t *nbrokers, struct sl_err *err)
{
	struct sl_embedded_log *log = ELOG(bs);
	(void)brokers;
	(void)maxb;
	if (nbrokers)
		*nbrokers = 0;
	struct sl_topic_desc *ts = calloc(max ? max : 1, sizeof *ts);
	if (!ts)
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	size_t n = 0;
	int rc = 0;
	pthread_mutex_lock(&log->lock);
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(log->db, "SELECT name, partitions FROM topics ORDER BY name", -1, &st, NULL) != SQLITE_OK)
		rc = db_err(err, log->db, "reading topics", log->path);
	for (int pass = 0; !rc && pass < 2; pass++) {
		sqlite3_reset(st);
		while (n < max && sqlite3_step(st) == SQLITE_ROW) {
			const char *name = (const char *)sqlite3_column_text(st, 0);
			bool named = false;
			for (size_t q = 0; q < nfirst; q++)
				named |= first[q] && !strcmp(name, first[q]);
			if (named != (pass == 0))
				continue;
			struct sl_topic_desc *t = &ts[n++];
			snprintf(t->name, sizeof t->name, "%s", name);
			t->nparts = sqlite3_column_int(st, 1);
			if (t->nparts < 0 || t->nparts > 10000)
				t->nparts = 0;
			t->parts = calloc(t->nparts ? (size_t)t->nparts : 1, sizeof *t->parts);
			if (!t->parts)
				t->nparts = 0;
			for (int p = 0; !rc && p < t->nparts; p++) {
				struct sl_topic_part *pt = &t->parts[p];
				pt->partition = p;
				pt->leader = -1;
				pt->committed = -1;
				rc = watermarks_locked(log, t->name, p, &pt->low, &pt->high, err);
				t->messages += pt->high - pt->low;
			}
		}
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&log->lock);
	if (rc) {
		sl_topic_descs_free(ts, n);
		return rc;
	}
	*out = ts;
	*nout = n;
	return 0;
}

/* The first 32 headers of a stored message (the producer's format: 2-byte key length, key, 4-byte value length,
 * value), keys copied out (they are not NUL-terminated in the blob), values pointing into it. */
static size_t browse_headers(const uint8_t *h, size_t n, struct sl_header hs[32], char keys[32][128])
{
	size_t o = 0, nh = 0;
	while (h && nh < 32 && o + 6 <= n) {
		size_t kl = (size_t)h[o] << 8 | h[o + 1];
		if (o + 2 + kl + 4 > n)
			break;
		size_t kc = kl < 127 ? kl : 127;
		memcpy(keys[nh], h + o + 2, kc);
		keys[nh][kc] = 0;
		o += 2 + kl;
		size_t vl = (size_t)h[o] << 24 | (size_t)h[o + 1] << 16 | (size_t)h[o + 2] << 8 | h[o + 3];
		o += 4;
		if (vl > n - o)
			break;
		hs[nh] = (struct sl_header){keys[nh], h + o, vl};
		nh++;
		o += vl;
	}
	return nh;
}

static int es_browse(struct sl_topic_store *bs, const char *topic, int32_t partition, int64_t offset, int64_t from_ms,
		     int64_t max_scan, int timeout_ms, sl_topic_browse_fn fn, void *ctx, int64_t *next,
		     struct sl_err *err)
{
	struct sl_embedded_log *log = ELOG(bs);
	(void)timeout_ms; /* max_scan bounds a local read */
	/* Its own connection: the callback may take long (decoding through the registry), and the log's shared
	 * connection must not be held that long. */
	sqlite3 *db = NULL;
	int rc = open_conn(log->path, &db, err);
	if (rc)
		return rc;
	sqlite3_stmt *st = NULL;
	int64_t last = offset;
	if (sqlite3_prepare_v2(db, "SELECT partition, offset, ts_ms, key, value, headers FROM messages WHERE topic=?1 AND "
				   "(?2 < 0 OR partition=?2) AND offset>=?3 AND ts_ms>=?4 ORDER BY offset, partition "
				   "LIMIT ?5", -1, &st, NULL) != SQLITE_OK) {
		rc = db_err(err, db, "reading messages", log->path);
	} else {
		sqlite3_bind_text(st, 1, topic, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 2, partition);
		sqlite3_bind_int64(st, 3, from_ms >= 0 ? 0 : offset);
		sqlite3_bind_int64(st, 4, from_ms >= 0 ? from_ms : INT64_MIN);
		sqlite3_bind_int64(st, 5, max_scan);
		int s;
		while ((s = sqlite3_step(st)) == SQLITE_ROW) {
			struct sl_msg m = {.topic = topic, .partition = sqlite3_column_int(st, 0),
					   .offset = sqlite3_column_int64(st, 1), .timestamp_ms = sqlite3_column_int64(st, 2),
					   .key = sqlite3_column_blob(st, 3), .key_len = (size_t)sqlite3_column_bytes(st, 3),
					   .value = sqlite3_column_blob(st, 4),
					   .value_len = (size_t)sqlite3_column_bytes(st, 4)};
			struct sl_header hs[32];
			char keys[32][128];
			m.n_headers = browse_headers(sqlite3_column_blob(st, 5), (size_t)sqlite3_column_bytes(st, 5), hs, keys);
			m.headers = m.n_headers ? hs : NULL;
			last = m.offset + 1;
			if (!fn(ctx, &m))
				break;
		}
		if (s != SQLITE_ROW && s != SQLITE_DONE)
			rc = db_err(err, db, "reading messages", log->path);
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	if (next)
		*next = last;
	return rc;
}

static int es_timestamp_at(struct sl_topic_store *bs, const char *topic, int32_t partition, int64_t offset,
			   int64_t *ts_ms, struct sl_err *err)
{
	struct sl_embedded_log *log = ELOG(bs);
	pthread_mutex_lock(&log->lock);
	sqlite3_stmt *st = NULL;
	int rc = 0;
	if (sqlite3_prepare_v2(log->db, "SELECT ts_ms FROM messages WHERE topic=? AND partition=? AND offset=?", -1, &st,
			       NULL) != SQLITE_OK) {
		rc = db_err(err, log->db, "reading messages", log->path);
	} else {
		sqlite3_bind_text(st, 1, topic, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 2, partition);
		sqlite3_bind_int64(st, 3, offset);
		int s = sqlite3_step(st);
		if (s == SQLITE_ROW)
			*ts_ms = sqlite3_column_int64(st, 0);
		else if (s == SQLITE_DONE)
			rc = sl_err_set(err, SL_ENOTFOUND, "embedded log %s: no message %s [%d] @%lld", log->path, topic,
					(int)partition, (long long)offset);
		else
			rc = db_err(err, log->db, "reading messages", log->path);
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&log->lock);
	return rc;
}

static void es_close(struct sl_topic_store *bs)
{
	struct estore *s = (struct estore *)bs;
	/* The log doubles as the cursor store: state points at it, closed once. */
	sl_embedded_close(s->base.state);
	free(s);
}

/* The embedded log has no group coordinator: its consumers own every partition without joining anything, so who is
 * reading now is not known (-1). */
static int es_group_members(struct sl_topic_store *bs, const char *group, int *members, struct sl_err *err)
{
	(void)bs;
	(void)group;
	(void)err;
	*members = -1;
	return 0;
}

static int es_commit_group(struct sl_topic_store *bs, const char *group, const char *topic,
			   const struct sl_topic_part *parts, int n, struct sl_err *err)
{
	struct sl_embedded_log *log = ELOG(bs);
	pthread_mutex_lock(&log->lock);
	sqlite3_stmt *st = NULL;
	int rc = 0;
	if (sqlite3_exec(log->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(log->db,
			       "INSERT INTO group_offsets(grp, topic, partition, next_offset, updated_ms) VALUES(?,?,?,?,?) "
			       "ON CONFLICT(grp, topic, partition) DO UPDATE SET next_offset=excluded.next_offset, "
			       "updated_ms=excluded.updated_ms",
			       -1, &st, NULL) != SQLITE_OK)
		rc = db_err(err, log->db, "setting group offsets", log->path);
	for (int i = 0; !rc && i < n; i++) {
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, group, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, topic, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 3, parts[i].partition);
		sqlite3_bind_int64(st, 4, parts[i].committed);
		sqlite3_bind_int64(st, 5, now_ms());
		if (sqlite3_step(st) != SQLITE_DONE)
			rc = db_err(err, log->db, "setting group offsets", log->path);
	}
	sqlite3_finalize(st);
	if (sqlite3_exec(log->db, rc ? "ROLLBACK" : "COMMIT", NULL, NULL, NULL) != SQLITE_OK && !rc)
		rc = db_err(err, log->db, "setting group offsets", log->path);
	pthread_mutex_unlock(&log->lock);
	return rc;
}

static int es_add_partitions(struct sl_topic_store *bs, const char *topic, int total, struct sl_err *err)
{
	struct sl_embedded_log *log = ELOG(bs);
	int now_n = 0;
	int rc = sl_embedded_partitions(log, topic, &now_n, err);
	if (rc)
		return rc;
	if (total <= now_n || total > 10000)
		return sl_err_set(err, SL_EINVAL, "topic '%s' has %d partitions: the new count must be more (up to 10000), "
				  "got %d", topic, now_n, total);
	pthread_mutex_lock(&log->lock);
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(log->db, "UPDATE topics SET partitions = ? WHERE name = ?", -1, &st, NULL) != SQLITE_OK) {
		rc = db_err(err, log->db, "adding partitions", log->path);
	} else {
		sqlite3_bind_int(st, 1, total);
		sqlite3_bind_text(st, 2, topic, -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			rc = db_err(err, log->db, "adding partitions", log->path);
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&log->lock);
	return rc;
}

/* The one configuration the embedded log applies: retention.ms (-1, its default, keeps every message). */
static int es_configs(struct sl_topic_store *bs, const char *topic, struct sl_topic_config **out, size_t *n,
		      struct sl_err *err)
{
	struct sl_embedded_log *log = ELOG(bs);
	int parts;
	int rc = sl_embedded_partitions(log, topic, &parts, err);
	if (rc)
		return rc;
	*out = calloc(1, sizeof **out);
	if (!*out)
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	*n = 1;
	struct sl_topic_config *c = &(*out)[0];
	snprintf(c->name, sizeof c->name, "retention.ms");
	snprintf(c->value, sizeof c->value, "-1");
	c->is_default = true;
	pthread_mutex_lock(&log->lock);
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(log->db, "SELECT value FROM topic_configs WHERE topic = ? AND name = 'retention.ms'", -1,
			       &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, topic, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW) {
			snprintf(c->value, sizeof c->value, "%s", (const char *)sqlite3_column_text(st, 0));
			c->is_default = false;
		}
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&log->lock);
	return 0;
}

static int es_set_config(struct sl_topic_store *bs, const char *topic, const char *name, const char *value,
			 struct sl_err *err)
{
	struct sl_embedded_log *log = ELOG(bs);
	int parts;
	int rc = sl_embedded_partitions(log, topic, &parts, err);
	if (rc)
		return rc;
	if (strcmp(name, "retention.ms"))
		return sl_err_set(err, SL_EINVAL, "the embedded log applies retention.ms alone, not '%.100s' (a Kafka "
				  "cluster takes every topic configuration)", name);
	char *end = NULL;
	long long v = value ? strtoll(value, &end, 10) : -1;
	if (value && (!*value || *end || v < -1))
		return sl_err_set(err, SL_EINVAL, "retention.ms must be -1 (keep every message) or milliseconds, got "
				  "'%.60s'", value);
	pthread_mutex_lock(&log->lock);
	sqlite3_stmt *st = NULL;
	const char *sql = value ? "INSERT INTO topic_configs(topic, name, value) VALUES(?1, ?2, ?3)"
				  " ON CONFLICT(topic, name) DO UPDATE SET value = excluded.value"
				: "DELETE FROM topic_configs WHERE topic = ?1 AND name = ?2";
	if (sqlite3_prepare_v2(log->db, sql, -1, &st, NULL) != SQLITE_OK) {
		rc = db_err(err, log->db, "setting retention.ms", log->path);
	} else {
		char num[24];
		snprintf(num, sizeof num, "%lld", v);
		sqlite3_bind_text(st, 1, topic, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, num, -1, SQLITE_TRANSIENT);
		if (sqlite3_step(st) != SQLITE_DONE)
			rc = db_err(err, log->db, "setting retention.ms", log->path);
	}
	sqlite3_finalize(st);
	if (!rc)
		apply_retention(log->db, topic, now_ms()); /* at once, then as the producers write */
	pthread_mutex_unlock(&log->lock);
	return rc;
}

static const struct sl_topic_store_ops embedded_store_ops = {
	.ensure_topic = es_ensure_topic, .partitions = es_partitions, .watermarks = es_watermarks,
	.producer = es_producer,	 .consumer = es_consumer,     .group_lag = es_group_lag,
	.committed = es_committed,	 .describe = es_describe,     .browse = es_browse,
	.timestamp_at = es_timestamp_at, .close = es_close, .group_members = es_group_members,
	.commit_group = es_commit_group, .add_partitions = es_add_partitions, .configs = es_configs,
	.set_config = es_set_config,
};

int sl_embedded_store_open(struct sl_embedded_log *log, bool own, struct sl_topic_store **out, struct sl_err *err)
{
	struct estore *s = calloc(1, sizeof *s);
	if (!s)
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	s->base.ops = &embedded_store_ops;
	s->base.backend = "embedded";
	s->base.where = log->where;
	s->base.state = own ? log : NULL;
	s->base.consumer_owns_all = true;
	/* The embedded log holds a message through a full disk for about as long as Kafka's default message timeout
	 * (ingest waits this + 5 s). */
	s->base.message_timeout_ms = 295000;
	s->log = log;
	*out = &s->base;
	return 0;
}
