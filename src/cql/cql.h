/* sluice's Cassandra client, public API (in the spirit of the DataStax driver's cassandra.h).
 *
 * A session owns one epoll I/O thread and a pool of connections (CQL native protocol v4) to the hosts of the local
 * data centre, discovered from system.local / system.peers_v2. Statements are simple (query text) or bound from a
 * prepared statement; executing one returns a future that completes on the I/O thread. Futures can be waited on from
 * any thread, or given a callback (which runs on the I/O thread: it must not block, but it may execute more
 * statements). Results are read with an iterator and typed getters; values borrowed from a result live as long as
 * the result.
 *
 * Typical writer (the sink; tests/integration/test_cql_session.c runs it, test_header_example):
 *     sl_cql_options_init(&o); o.contact_points = "10.0.0.1,10.0.0.2"; o.keyspace = "ks";
 *     sl_cql_session_connect(&s, &o, &err);
 *     sl_cql_session_query(s, "CREATE TABLE ...", NULL, &err);     // waits for schema agreement
 *     sl_cql_session_prepare_wait(s, "INSERT INTO t (a, b) VALUES (?, ?)", &p, &err);
 *     st = sl_cql_prepared_bind(p); sl_cql_bind_str(st, 0, "x"); sl_cql_bind_int32(st, 1, 42);
 *     f = sl_cql_session_execute(s, st); sl_cql_future_set_callback(f, on_done, ctx); sl_cql_future_release(f);
 *     sl_cql_statement_free(st);                                    // execute encoded it: free at once
 * In the callback: sl_cql_future_rc(f) is 0 or a negative SL_E*; sl_cql_future_error(f) has the message and
 * sl_cql_future_retryable(f) says whether trying again later can succeed. The session bounds requests in flight
 * (options.max_inflight): execute blocks a non-I/O thread until a slot frees, and fails with SL_EFULL on the I/O
 * thread. */
#ifndef SL_CQL_H
#define SL_CQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* ---- consistency, type ids, server error codes ---- */

enum sl_cql_consistency {
	SL_CQL_ANY = 0x0000, SL_CQL_ONE = 0x0001, SL_CQL_TWO = 0x0002, SL_CQL_THREE = 0x0003, SL_CQL_QUORUM = 0x0004,
	SL_CQL_ALL = 0x0005, SL_CQL_LOCAL_QUORUM = 0x0006, SL_CQL_EACH_QUORUM = 0x0007, SL_CQL_SERIAL = 0x0008,
	SL_CQL_LOCAL_SERIAL = 0x0009, SL_CQL_LOCAL_ONE = 0x000A,
};
const char *sl_cql_consistency_name(int cl);
/* Parses "one", "LOCAL_QUORUM", ...; returns -1 if unknown. */
int sl_cql_consistency_parse(const char *s);

enum sl_cql_type_id {
	SL_CQL_TYPE_CUSTOM = 0x0000, SL_CQL_TYPE_ASCII = 0x0001, SL_CQL_TYPE_BIGINT = 0x0002, SL_CQL_TYPE_BLOB = 0x0003,
	SL_CQL_TYPE_BOOLEAN = 0x0004, SL_CQL_TYPE_COUNTER = 0x0005, SL_CQL_TYPE_DECIMAL = 0x0006,
	SL_CQL_TYPE_DOUBLE = 0x0007, SL_CQL_TYPE_FLOAT = 0x0008, SL_CQL_TYPE_INT = 0x0009, SL_CQL_TYPE_TIMESTAMP = 0x000B,
	SL_CQL_TYPE_UUID = 0x000C, SL_CQL_TYPE_VARCHAR = 0x000D, SL_CQL_TYPE_VARINT = 0x000E,
	SL_CQL_TYPE_TIMEUUID = 0x000F, SL_CQL_TYPE_INET = 0x0010, SL_CQL_TYPE_DATE = 0x0011, SL_CQL_TYPE_TIME = 0x0012,
	SL_CQL_TYPE_SMALLINT = 0x0013, SL_CQL_TYPE_TINYINT = 0x0014, SL_CQL_TYPE_DURATION = 0x0015,
	SL_CQL_TYPE_LIST = 0x0020, SL_CQL_TYPE_MAP = 0x0021, SL_CQL_TYPE_SET = 0x0022, SL_CQL_TYPE_UDT = 0x0030,
	SL_CQL_TYPE_TUPLE = 0x0031,
};

/* Server error codes (ERROR frames). */
enum sl_cql_error_code {
	SL_CQL_ERR_SERVER = 0x0000, SL_CQL_ERR_PROTOCOL = 0x000A, SL_CQL_ERR_BAD_CREDENTIALS = 0x0100,
	SL_CQL_ERR_UNAVAILABLE = 0x1000, SL_CQL_ERR_OVERLOADED = 0x1001, SL_CQL_ERR_IS_BOOTSTRAPPING = 0x1002,
	SL_CQL_ERR_TRUNCATE = 0x1003, SL_CQL_ERR_WRITE_TIMEOUT = 0x1100, SL_CQL_ERR_READ_TIMEOUT = 0x1200,
	SL_CQL_ERR_READ_FAILURE = 0x1300, SL_CQL_ERR_FUNCTION_FAILURE = 0x1400, SL_CQL_ERR_WRITE_FAILURE = 0x1500,
	SL_CQL_ERR_SYNTAX = 0x2000, SL_CQL_ERR_UNAUTHORIZED = 0x2100, SL_CQL_ERR_INVALID = 0x2200,
	SL_CQL_ERR_CONFIG = 0x2300, SL_CQL_ERR_ALREADY_EXISTS = 0x2400, SL_CQL_ERR_UNPREPARED = 0x2500,
};
/* "Invalid query", "Unavailable", ... for a server error code. */
const char *sl_cql_error_name(int32_t code);

/* A CQL type as described by result metadata. Trees are owned by the result or prepared statement. */
struct sl_cql_type {
	uint16_t id;                  /* enum sl_cql_type_id */
	uint16_t n;                   /* number of entries in sub (list/set 1, map 2, tuple/UDT fields) */
	struct sl_cql_type **sub;
	const char **field_names;     /* UDT only */
	const char *custom;           /* CUSTOM: Java class name; UDT: keyspace */
	const char *name;             /* UDT: type name */
};
/* Writes the CQL spelling ("map<text, frozen<list<int>>>" is spelled "map<text, list<int>>") into out. */
void sl_cql_type_name(const struct sl_cql_type *t, char *out, size_t outsz);

struct sl_cql_column {
	const char *keyspace, *table, *name;
	struct sl_cql_type *type;
};

/* ---- options and session ---- */

struct sl_cql_options {
	const char *contact_points;   /* "host1,host2:9043"; default port below */
	int port;                     /* 9042 */
	const char *keyspace;         /* USE'd on every connection; NULL for none */
	const char *username, *password; /* PasswordAuthenticator (SASL PLAIN); NULL when the cluster has no auth */
	bool compression;             /* lz4 on every frame but STARTUP */
	bool tls;                     /* OpenSSL; tls_ca_file verifies the server's chain when set */
	const char *tls_ca_file, *tls_cert_file, *tls_key_file;
	bool tls_verify_hostname;
	const char *local_dc;         /* NULL: the data centre of the first contact point that answers */
	bool use_remote_dcs;          /* send to other data centres when no local host is up */
	bool token_aware;             /* route bound statements to a replica of their partition (default on) */
	int connections_per_host;     /* 1; one connection carries 32768 streams */
	int connect_timeout_ms;       /* 5000 */
	int request_timeout_ms;       /* 12000, per request unless the statement sets its own */
	int heartbeat_interval_ms;    /* 30000: OPTIONS on an idle connection; 0 disables */
	int idle_timeout_ms;          /* 60000: no answer to traffic or heartbeat for this long closes the connection */
	int reconnect_base_ms;        /* 1000, doubling up to reconnect_max_ms (60000); with no host up and requests
	                                 * waiting, every 2 s whatever the backoff */
	int reconnect_max_ms;
	int schema_agreement_ms;      /* 10000: how long DDL waits for all hosts to report the same schema version */
	int max_inflight;             /* 4096: requests in flight per session (backpressure bound) */
	int consistency;              /* default for statements: LOCAL_ONE */
	int max_retries;              /* 1: retries of one request under the retry policy */
	int speculative_delay_ms;     /* 0 (off): an idempotent statement unanswered after this long is sent to the
	                               * next host of its plan as well; the first success wins */
};
void sl_cql_options_init(struct sl_cql_options *o);

struct sl_cql_session;
struct sl_cql_statement;
struct sl_cql_prepared;
struct sl_cql_batch;
struct sl_cql_future;
struct sl_cql_result;

/* Connects to the contact points, authenticates, discovers the ring and opens the pools. Blocks up to
 * connect_timeout_ms per host tried. */
int sl_cql_session_connect(struct sl_cql_session **out, const struct sl_cql_options *o, struct sl_err *e);
/* Stops the I/O thread after failing whatever is still in flight with SL_ECANCELED; frees the session. */
void sl_cql_session_close(struct sl_cql_session *s);

struct sl_cql_future *sl_cql_session_execute(struct sl_cql_session *s, const struct sl_cql_statement *st);
struct sl_cql_future *sl_cql_session_execute_batch(struct sl_cql_session *s, const struct sl_cql_batch *b);
/* The future's result holds the prepared statement: sl_cql_future_prepared(). Cached by query text. */
struct sl_cql_future *sl_cql_session_prepare(struct sl_cql_session *s, const char *query);

/* Conveniences that block: run a simple statement (result optional; free with sl_cql_result_free) and prepare. */
int sl_cql_session_query(struct sl_cql_session *s, const char *query, struct sl_cql_result **result, struct sl_err *e);
int sl_cql_session_prepare_wait(struct sl_cql_session *s, const char *query, struct sl_cql_prepared **out,
				struct sl_err *e);
/* Polls schema versions until every up host agrees (DDL does this before its future completes). */
int sl_cql_session_wait_schema_agreement(struct sl_cql_session *s, int timeout_ms, struct sl_err *e);

struct sl_cql_session_stats {
	uint64_t requests, errors, timeouts, retries, reprepares, reconnects;
	uint64_t spec_sent, spec_wins;   /* speculative copies sent, and those that answered first */
	int inflight, hosts_up, hosts_total, connections;
};
void sl_cql_session_stats(struct sl_cql_session *s, struct sl_cql_session_stats *out);
/* The token (Murmur3) a partition key routes to, for tests and tools. */
int64_t sl_cql_token(const void *routing_key, size_t len);

/* ---- statements ---- */

/* A simple statement with nvalues positional ? markers (values are unset until bound). */
struct sl_cql_statement *sl_cql_statement_new(const char *query, int nvalues);
/* A statement bound to a prepared one: values typed by the prepared metadata, routed by its partition key. */
struct sl_cql_statement *sl_cql_prepared_bind(struct sl_cql_prepared *p);
void sl_cql_statement_free(struct sl_cql_statement *st);
/* Clears bound values to unset and the paging state, keeping the query; reuse a statement per row this way. */
void sl_cql_statement_reset(struct sl_cql_statement *st);
void sl_cql_statement_set_consistency(struct sl_cql_statement *st, int cl);
void sl_cql_statement_set_serial_consistency(struct sl_cql_statement *st, int cl);
/* Idempotent statements may be retried after timeouts and on another host. Default false. */
void sl_cql_statement_set_idempotent(struct sl_cql_statement *st, bool idempotent);
void sl_cql_statement_set_page_size(struct sl_cql_statement *st, int32_t page_size); /* <= 0: no paging */
int sl_cql_statement_set_paging_state(struct sl_cql_statement *st, const struct sl_cql_result *from);
/* The same from bytes a client kept (sl_cql_result_paging_state), e.g. a page token handed to a browser and back;
 * NULL clears it. The server checks what it gets: a forged state is an Invalid query error, not a crash. */
int sl_cql_statement_set_paging_state_raw(struct sl_cql_statement *st, const void *state, size_t len);
void sl_cql_statement_set_timeout(struct sl_cql_statement *st, int timeout_ms);
void sl_cql_statement_set_timestamp(struct sl_cql_statement *st, int64_t usec);
/* For simple statements: the keyspace and partition key bytes used for token-aware routing. */
int sl_cql_statement_set_routing_key(struct sl_cql_statement *st, const char *keyspace, const void *key, size_t len);

/* The partition token the statement routes to (Murmur3 of its routing key), for grouping rows by partition before
 * batching. SL_ENOTFOUND when a partition-key value is not bound or the statement has no routing key. */
int sl_cql_statement_token(const struct sl_cql_statement *st, int64_t *token);

/* Binders. Index is the 0-based ? position. On a prepared statement a binder checks that the column's type accepts
 * the value (bind_int32 on a bigint column is SL_ETYPE, with the column named in statement errors). */
int sl_cql_bind_null(struct sl_cql_statement *st, int i);
int sl_cql_bind_unset(struct sl_cql_statement *st, int i);
int sl_cql_bind_int8(struct sl_cql_statement *st, int i, int8_t v);
int sl_cql_bind_int16(struct sl_cql_statement *st, int i, int16_t v);
int sl_cql_bind_int32(struct sl_cql_statement *st, int i, int32_t v);     /* int */
int sl_cql_bind_int64(struct sl_cql_statement *st, int i, int64_t v);     /* bigint, counter, timestamp(ms), time(ns) */
int sl_cql_bind_uint32(struct sl_cql_statement *st, int i, uint32_t v);   /* date: days with the epoch at 2^31 */
int sl_cql_bind_bool(struct sl_cql_statement *st, int i, bool v);
int sl_cql_bind_float(struct sl_cql_statement *st, int i, float v);
int sl_cql_bind_double(struct sl_cql_statement *st, int i, double v);
int sl_cql_bind_text(struct sl_cql_statement *st, int i, const char *s, size_t len); /* text/varchar/ascii */
int sl_cql_bind_str(struct sl_cql_statement *st, int i, const char *s);   /* NUL-terminated; NULL binds null */
int sl_cql_bind_bytes(struct sl_cql_statement *st, int i, const void *p, size_t len); /* blob, or raw encoding */
int sl_cql_bind_uuid(struct sl_cql_statement *st, int i, const uint8_t uuid[16]);
int sl_cql_bind_inet(struct sl_cql_statement *st, int i, const uint8_t *addr, size_t len); /* 4 or 16 bytes */
int sl_cql_bind_varint(struct sl_cql_statement *st, int i, int64_t v);
int sl_cql_bind_decimal(struct sl_cql_statement *st, int i, const uint8_t *unscaled, size_t len, int32_t scale);
int sl_cql_bind_duration(struct sl_cql_statement *st, int i, int32_t months, int32_t days, int64_t nanos);
/* Collections, tuples and UDTs: build the value with struct sl_cql_coll, then bind it. */
struct sl_cql_coll;
int sl_cql_bind_coll(struct sl_cql_statement *st, int i, const struct sl_cql_coll *c);

/* A collection/tuple/UDT value builder. Lists, sets and maps carry a count (maps: append key then value);
 * tuples and UDTs do not. Elements are appended with the sl_cql_coll_* functions or as raw encodings. */
struct sl_cql_coll {
	int kind;                     /* SL_CQL_TYPE_LIST, _SET, _MAP, _TUPLE or _UDT */
	int32_t count;                /* elements appended */
	unsigned char *data;
	size_t len, cap;
	bool oom;
};
void sl_cql_coll_init(struct sl_cql_coll *c, int kind);
void sl_cql_coll_free(struct sl_cql_coll *c);
void sl_cql_coll_append_raw(struct sl_cql_coll *c, const void *p, size_t len);
void sl_cql_coll_append_null(struct sl_cql_coll *c);
void sl_cql_coll_append_int32(struct sl_cql_coll *c, int32_t v);
void sl_cql_coll_append_int64(struct sl_cql_coll *c, int64_t v);
void sl_cql_coll_append_double(struct sl_cql_coll *c, double v);
void sl_cql_coll_append_bool(struct sl_cql_coll *c, bool v);
void sl_cql_coll_append_text(struct sl_cql_coll *c, const char *s, size_t len);
void sl_cql_coll_append_uuid(struct sl_cql_coll *c, const uint8_t uuid[16]);
void sl_cql_coll_append_coll(struct sl_cql_coll *c, const struct sl_cql_coll *inner);

/* ---- batches (unlogged by default; keep one batch within one partition) ---- */

enum sl_cql_batch_type { SL_CQL_BATCH_LOGGED = 0, SL_CQL_BATCH_UNLOGGED = 1, SL_CQL_BATCH_COUNTER = 2 };
struct sl_cql_batch *sl_cql_batch_new(int type);
void sl_cql_batch_free(struct sl_cql_batch *b);
/* Copies the statement's query or prepared id and its bound values; the statement may be reset and reused. */
int sl_cql_batch_add(struct sl_cql_batch *b, const struct sl_cql_statement *st);
int sl_cql_batch_count(const struct sl_cql_batch *b);
size_t sl_cql_batch_bytes(const struct sl_cql_batch *b); /* encoded size, to stay under the server's 50 KiB fail */
void sl_cql_batch_clear(struct sl_cql_batch *b);
void sl_cql_batch_set_consistency(struct sl_cql_batch *b, int cl);
void sl_cql_batch_set_idempotent(struct sl_cql_batch *b, bool idempotent);
void sl_cql_batch_set_timeout(struct sl_cql_batch *b, int timeout_ms);

/* ---- futures ---- */

typedef void (*sl_cql_future_cb)(struct sl_cql_future *f, void *data);
/* Blocks until done; returns the rc. */
int sl_cql_future_wait(struct sl_cql_future *f);
/* Returns SL_ETIMEDOUT if not done within timeout_ms, else the rc. */
int sl_cql_future_wait_timed(struct sl_cql_future *f, int timeout_ms);
bool sl_cql_future_ready(struct sl_cql_future *f);
/* Runs cb once when the future completes: on the I/O thread, or right here if it already has. The callback may
 * call sl_cql_future_release on f (the future stays valid until both the callback has run and it was released). */
void sl_cql_future_set_callback(struct sl_cql_future *f, sl_cql_future_cb cb, void *data);
int sl_cql_future_rc(struct sl_cql_future *f);
const struct sl_err *sl_cql_future_error(struct sl_cql_future *f);
/* The server's error code (enum sl_cql_error_code), or -1 when the failure was the client's or the network's. */
int32_t sl_cql_future_server_code(struct sl_cql_future *f);
/* True when the failure is transient (timeouts, unavailable, overloaded, connection lost): retry later. */
bool sl_cql_future_retryable(struct sl_cql_future *f);
/* The result, borrowed (valid until release); NULL on failure. */
const struct sl_cql_result *sl_cql_future_result(struct sl_cql_future *f);
/* Takes ownership of the result (caller frees with sl_cql_result_free). */
struct sl_cql_result *sl_cql_future_take_result(struct sl_cql_future *f);
/* For futures from sl_cql_session_prepare: the prepared statement (owned by the session's cache). */
struct sl_cql_prepared *sl_cql_future_prepared(struct sl_cql_future *f);
void sl_cql_future_release(struct sl_cql_future *f);

/* ---- results ---- */

enum sl_cql_result_kind {
	SL_CQL_RESULT_VOID = 1, SL_CQL_RESULT_ROWS = 2, SL_CQL_RESULT_SET_KEYSPACE = 3, SL_CQL_RESULT_PREPARED = 4,
	SL_CQL_RESULT_SCHEMA_CHANGE = 5,
};
int sl_cql_result_kind(const struct sl_cql_result *r);
int sl_cql_result_row_count(const struct sl_cql_result *r);
int sl_cql_result_column_count(const struct sl_cql_result *r);
const struct sl_cql_column *sl_cql_result_column(const struct sl_cql_result *r, int i);
int sl_cql_result_column_index(const struct sl_cql_result *r, const char *name); /* -1 if absent */
bool sl_cql_result_has_more_pages(const struct sl_cql_result *r);
/* The paging state of a result with more pages (borrowed, valid while r is); SL_ENOTFOUND on the last page. */
int sl_cql_result_paging_state(const struct sl_cql_result *r, const uint8_t **state, size_t *len);
/* Server warnings attached to the response (e.g. batch size), NULL-terminated. */
const char *const *sl_cql_result_warnings(const struct sl_cql_result *r);
/* For SCHEMA_CHANGE results: whether the hosts agreed on the schema before the future completed. */
bool sl_cql_result_schema_agreed(const struct sl_cql_result *r);
void sl_cql_result_free(struct sl_cql_result *r);

/* A value in a result: type, bytes, and null-ness (len < 0). Empty (len 0) is not null. */
struct sl_cql_value {
	const struct sl_cql_type *type;
	const uint8_t *data;
	int32_t len;
};
static inline bool sl_cql_value_is_null(const struct sl_cql_value *v) { return v->len < 0; }

struct sl_cql_iter {
	const struct sl_cql_result *r;
	int row;                      /* index of the current row, -1 before the first */
	const uint8_t *next;          /* where the next row starts */
	struct sl_cql_value *cells;   /* current row, r's column count entries */
};
void sl_cql_iter_init(struct sl_cql_iter *it, const struct sl_cql_result *r);
bool sl_cql_iter_next(struct sl_cql_iter *it);
void sl_cql_iter_free(struct sl_cql_iter *it);
static inline const struct sl_cql_value *sl_cql_iter_value(const struct sl_cql_iter *it, int col)
{
	return &it->cells[col];
}

/* Typed getters: SL_ETYPE when the value's type is not one they read or its size is wrong, SL_ENOTFOUND for null. */
int sl_cql_value_int8(const struct sl_cql_value *v, int8_t *out);
int sl_cql_value_int16(const struct sl_cql_value *v, int16_t *out);
int sl_cql_value_int32(const struct sl_cql_value *v, int32_t *out);
int sl_cql_value_int64(const struct sl_cql_value *v, int64_t *out);  /* bigint, counter, timestamp, time, varint<=8B */
int sl_cql_value_uint32(const struct sl_cql_value *v, uint32_t *out); /* date */
int sl_cql_value_bool(const struct sl_cql_value *v, bool *out);
int sl_cql_value_float(const struct sl_cql_value *v, float *out);
int sl_cql_value_double(const struct sl_cql_value *v, double *out);
int sl_cql_value_text(const struct sl_cql_value *v, const char **s, size_t *len); /* not NUL-terminated */
int sl_cql_value_bytes(const struct sl_cql_value *v, const uint8_t **p, size_t *len);
int sl_cql_value_uuid(const struct sl_cql_value *v, uint8_t out[16]);
int sl_cql_value_inet(const struct sl_cql_value *v, uint8_t out[16], size_t *len);
int sl_cql_value_decimal(const struct sl_cql_value *v, const uint8_t **unscaled, size_t *len, int32_t *scale);
int sl_cql_value_duration(const struct sl_cql_value *v, int32_t *months, int32_t *days, int64_t *nanos);

/* Elements of a list/set (one value each), map (key, value, key, ...), tuple or UDT (one per field present). */
struct sl_cql_elems {
	const struct sl_cql_value *parent;
	int32_t count, index;         /* count: elements (maps: 2 x entries) */
	const uint8_t *p, *end;
	struct sl_cql_value value;
};
int sl_cql_elems_init(struct sl_cql_elems *it, const struct sl_cql_value *v);
/* Returns 1 with it->value set, 0 at the end, or SL_EPROTO on a malformed value. */
int sl_cql_elems_next(struct sl_cql_elems *it);

/* Formats a value as cqlsh shows it, or as JSON when json is true. Appends to a growable sl_buf. */
struct sl_buf;
int sl_cql_value_format(struct sl_buf *out, const struct sl_cql_value *v, bool json);

/* ---- prepared ---- */

int sl_cql_prepared_param_count(const struct sl_cql_prepared *p);
const struct sl_cql_column *sl_cql_prepared_param(const struct sl_cql_prepared *p, int i);
const char *sl_cql_prepared_query(const struct sl_cql_prepared *p);

#endif
