/* Sinks: where typed records end up. Cassandra (cassandra.c, sluice's own CQL client) at scale, SQLite (sqlite.c) on
 * the embedded default. Both are upserts by primary key, so a record written twice after a crash leaves the table as
 * if written once: at-least-once delivery becomes effectively-once in the table.
 *
 * A batch carries its records and the log positions it covers (per partition, the offset after its last record). The
 * sink calls done() once the whole batch is durable or definitively failed; the processor commits a partition's
 * offset only up to the lowest batch not yet done. Several batches may be in flight at once; done() may come in any
 * order. Records the sink rejects for a non-retryable reason are reported
 * one by one through reject(), so they go to the dead-letter topic while the rest of the batch is written. */
#ifndef SL_SINK_H
#define SL_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/record.h"

struct sl_offset_mark {
	const char *topic;
	int32_t partition;
	int64_t next_offset;
};

/* Aggregate state that must be durable exactly when the batch's rows and offsets are (the embedded default: one
 * SQLite transaction). v NULL deletes the key. */
struct sl_state_put {
	const void *k, *v;
	size_t klen, vlen;
};

struct sl_sink_batch {
	struct sl_record *recs;
	size_t n;
	struct sl_offset_mark *marks;
	size_t nmarks;
	const char *group;  /* consumer group whose offsets the marks are */
	void *opaque;       /* the processor's */
	void *opaque_sink;  /* the sink's */
	const struct sl_state_put *state; /* optional: only sinks with state_load take it */
	size_t nstate;
	const char *state_ns; /* the namespace of the state (pipeline/output) */
};

/* A page of a table as readers show it: cells rendered as JSON values (null, numbers, strings). */
struct sl_sink_page {
	struct sl_buf columns;           /* JSON strings, comma-separated: "id","name" */
	struct sl_buf rows;              /* JSON arrays, comma-separated: [1,"a"],[2,"b"] */
	int64_t nrows;
	bool more;                       /* a next page has rows */
	const char *order;               /* "newest" | "token" */
	unsigned char next_token[512];   /* opaque; pass back to continue */
	size_t next_token_len;           /* 0: no next page */
};
void sl_sink_page_init(struct sl_sink_page *p);
void sl_sink_page_free(struct sl_sink_page *p);

struct sl_sink_column {
	char name[128];
	char type[64];
	bool key;
	bool partition; /* part of the partition key (SQLite: the first primary key column) */
};

struct sl_sink;
typedef void (*sl_sink_done_fn)(void *ctx, struct sl_sink_batch *b, int err, const char *errmsg);
typedef void (*sl_sink_reject_fn)(void *ctx, struct sl_sink_batch *b, size_t index, const char *reason);

struct sl_sink_ops {
	/* Creates the table (and keyspace) from the schema when absent; checks that an existing table has the columns. */
	int (*prepare)(struct sl_sink *s, const struct sl_schema *schema, struct sl_err *err);
	/* Submits a batch; done() is called from write() itself or from a later poll(). */
	int (*write)(struct sl_sink *s, struct sl_sink_batch *b, struct sl_err *err);
	/* Serves completions; returns how many batches completed. */
	int (*poll)(struct sl_sink *s, int timeout_ms);
	/* For sinks that store consumer offsets with the rows (exactly once): the next offset to read. SL_ENOTFOUND
	 * when none is stored or the sink does not store offsets. */
	int (*stored_offset)(struct sl_sink *s, const char *group, const char *topic, int32_t partition, int64_t *out);
	/* Optional: sinks that keep aggregate state with their rows and offsets (SQLite). Calls fn for every entry of
	 * the namespace; a batch's state puts are then applied in the transaction of its rows and offsets. */
	int (*state_load)(struct sl_sink *s, const char *ns,
			  int (*fn)(void *ctx, const void *k, size_t klen, const void *v, size_t vlen), void *ctx,
			  struct sl_err *err);
	/* Optional: rows in the table, for the run's summary; negative SL_E* when unknown. Only for a sink where that
	 * is cheap: NULL where it would mean a scan of a distributed table (Cassandra's count(*) reads every row of
	 * every node, and a summary must not put that load on a production cluster at every exit). */
	int64_t (*count)(struct sl_sink *s, struct sl_err *err);
	/* Optional: whether the store can be reached now (1) or not (0). The processor retries batches that failed
	 * while it could not as soon as it can again, instead of waiting out their backoff. */
	int (*available)(struct sl_sink *s);
	/* Optional, for readers (the console, the scheduler's sensor): rows in the table, never a scan of a distributed
	 * table. *exact is false for an estimate (Cassandra: system.size_estimates, which the node refreshes every few
	 * minutes and which counts partitions, not rows). SL_ENOTFOUND while the table does not exist. */
	int (*rows)(struct sl_sink *s, int64_t *out, bool *exact, struct sl_err *err);
	/* Optional: a page of rows (see struct sl_sink_page): newest first where the store knows the order (SQLite),
	 * else in the store's own order (Cassandra: token order). token/ntoken continue from a previous page's
	 * next_token (NULL: the first page); page is an offset in pages for stores without tokens' order. */
	int (*browse)(struct sl_sink *s, const unsigned char *token, size_t ntoken, int64_t page, int64_t size,
		      struct sl_sink_page *out, struct sl_err *err);
	/* Optional: the table's columns and their types as the store names them. */
	int (*describe)(struct sl_sink *s, struct sl_sink_column **cols, size_t *n, struct sl_err *err);
	/* Optional: the rows of one partition, the one whose partition key (a single column) is value, given as text and
	 * read as the column's type; at most size, newest first where the store knows the order. SL_EINVAL when value
	 * is not of that type or the partition key has several columns, so a reader can say why. */
	int (*find)(struct sl_sink *s, const char *value, int64_t size, struct sl_sink_page *out, struct sl_err *err);
	void (*destroy)(struct sl_sink *s);
};

struct sl_sink {
	const struct sl_sink_ops *ops;
	sl_sink_done_fn done;
	sl_sink_reject_fn reject;
	void *ctx;
	char where[512]; /* where the data is and how to look at it, for the summary */
};

struct sl_sink_conf {
	char *type;                    /* auto | sqlite | cassandra | discard */
	char *keyspace;
	char *table;
	struct sl_strlist primary_key; /* default: the mapping's key column */
	char *consistency;
	bool null_as_unset;
	int64_t ttl_s;
	char *replication;             /* keyspace replication as CQL map text */
	struct sl_strmap columns;      /* record field -> table column, where the names differ */
	char *ttl_field;               /* a field (int/bigint seconds) giving each row's TTL (Cassandra) */
	char *writetime_field;         /* a field (timestamp) giving each row's write time (Cassandra) */
};

extern const struct sl_opt sl_sink_opts[];

/* The top-level `cassandra:` section. */
struct sl_cassandra_conf {
	struct sl_strlist contact_points;
	int64_t port;
	char *local_dc, *username, *password_env, *tls_ca_file;
	char *tls_cert_file, *tls_key_file; /* client certificate and key (PEM), for require_client_auth */
	bool compression, tls, tls_verify_hostname;
	int64_t connect_timeout_ms, request_timeout_ms, max_inflight, max_attempts, retry_backoff_max_ms;
	int64_t speculative_delay_ms;
};
extern const struct sl_opt sl_cassandra_opts[];

/* A CQL session from a bound cassandra: section (TLS, credentials from the environment, timeouts), checked for
 * settings that would be silently ignored. Every role that talks to Cassandra connects through this. */
struct sl_cql_session;
int sl_cassandra_connect(const struct sl_cassandra_conf *cc, int consistency, struct sl_cql_session **out,
			 struct sl_err *err);

/* Cassandra: connects with the cassandra: section's options; prepare() creates keyspace and table. */
int sl_sink_cassandra_new(const struct sl_cfg_node *cassandra, const struct sl_sink_conf *conf, struct sl_sink **out,
			  struct sl_err *err);

/* The table column a record field is written to (sink.columns renames; by name otherwise). */
const char *sl_sink_column(const struct sl_sink_conf *conf, const char *field);
/* Whether a field is written as a column (not when it only gives a row's TTL or write time). */
bool sl_sink_is_column(const struct sl_sink_conf *conf, const char *field);
/* Checks sink.columns, ttl_field and writetime_field against the schema (names exist, types fit). */
int sl_sink_check_fields(const struct sl_sink_conf *conf, const struct sl_schema *schema, const char *table,
			 struct sl_err *err);

/* Appends name as a quoted identifier (the same rules in CQL and SQLite). */
void sl_sink_ident(struct sl_buf *b, const char *name);
/* Appends the quoted primary key columns, comma-separated (configured, else the pipeline's key), checking that
 * each is a mapped column; *partition gets the first (the partition key). */
int sl_sink_primary_key(const struct sl_sink_conf *conf, const struct sl_schema *schema, const char *table,
			struct sl_buf *cols, const char **partition, struct sl_err *err);

/* Opens the sink the pipeline's sink: section chose (type auto: Cassandra when there is a cassandra: section, else
 * SQLite in data_dir; discard). pipeline names it in messages. */
int sl_sink_open(const struct sl_cfg_node *cassandra, const char *data_dir, const char *pipeline,
		 const struct sl_sink_conf *conf, struct sl_sink **out, struct sl_err *err);
/* Whether rows() of the sink the section chooses is an exact, cheap count (SQLite), so a reader that wants only
 * that need not open the others (a CQL session per poll for an estimate). */
bool sl_sink_counts_exactly(const struct sl_cfg_node *cassandra, const struct sl_sink_conf *conf);
/* "cassandra" | "sqlite" | "discard": the kind of sink the section chooses, for display. */
const char *sl_sink_kind(const struct sl_cfg_node *cassandra, const struct sl_sink_conf *conf);
/* The same for a reader (the console, a sensor): never creates anything; a SQLite table's file that is not there
 * yet is SL_ENOTFOUND ("not there yet"). Cassandra: a LOCAL_ONE session. */
int sl_sink_open_reader(const struct sl_cfg_node *cassandra, const char *data_dir, const char *pipeline,
			const struct sl_sink_conf *conf, struct sl_sink **out, struct sl_err *err);

/* Discards every row (benchmarks of the engine alone). */
int sl_sink_null_new(struct sl_sink **out, struct sl_err *err);

/* SQLite: data_dir/<keyspace>.db, table <table>. */
int sl_sink_sqlite_new(const char *data_dir, const struct sl_sink_conf *conf, struct sl_sink **out,
		       struct sl_err *err);
/* Read-only, never creating the file (SL_ENOTFOUND when it is not there yet). */
int sl_sink_sqlite_reader(const char *data_dir, const struct sl_sink_conf *conf, struct sl_sink **out,
			  struct sl_err *err);

#endif
