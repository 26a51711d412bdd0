/* The console's insides, shared by its files and by the unit and fuzz tests: request parsing (request.c), the
 * Burrow-style lag evaluator (burrow.c), the collector's view of the log (collect.c), alerts (alerts.c), the JSON API
 * (api.c) and the HTTP glue (server.c). Nothing here is public API. */
#ifndef SL_CONSOLE_INTERNAL_H
#define SL_CONSOLE_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "console/console.h"
#include "core/buf.h"
#include "pipeline/pipeline.h"

/* ---- request parsing (request.c): pure functions, fuzzed ---- */

/* Splits a raw request target into a clean path (percent-decoded, no "..", no "//", no control bytes) and the raw
 * query (after '?', may be ""). Returns 0, or -1 for a target that is not a valid origin-form path. */
int sl_con_split_target(const char *target, char *path, size_t pathsz, char *query, size_t querysz);
/* The path of a target for the plugged-in routes: percent-decoded except "%2F", "%3F", "%23" and "%25", which stay
 * as they came (upper-cased), so a route that passes the path on (the registry's) keeps their meaning. Call after
 * sl_con_split_target accepted the target. Returns the length, or -1 when it does not fit. */
int sl_con_route_path(const char *target, char *out, size_t outsz);
/* The value of key in an application/x-www-form-urlencoded query, decoded. 1 found, 0 absent, -1 malformed. */
int sl_con_query_get(const char *query, const char *key, char *out, size_t outsz);
/* An integer parameter within [min,max]; def when absent. -1 when malformed or out of range. */
int sl_con_query_int(const char *query, const char *key, int64_t def, int64_t min, int64_t max, int64_t *out);
/* Decodes %XX and (form) '+'. Returns the length, or -1 on a bad escape, a NUL, or overflow. */
int sl_con_pct_decode(const char *s, size_t n, bool plus_space, char *out, size_t outsz);

/* Whether Accept-Encoding allows gzip (a "gzip" or "*" token whose q is not 0). */
bool sl_con_accepts_gzip(const char *accept_encoding);
/* Whether a browser's Origin header names the host:port it sent the request to (Host). */
bool sl_con_same_origin(const char *origin, const char *host);
/* Whether If-None-Match lists etag (or is "*"); weak validators compare equal. */
bool sl_con_etag_matches(const char *if_none_match, const char *etag);
/* "host:port", "[v6]:port" or ":port" (loopback). Returns 0 or -1. */
int sl_con_parse_listen(const char *listen, char *host, size_t hostsz, int *port);

/* ---- Burrow's evaluator (burrow.c) ---- */

enum sl_burrow_status { SL_BURROW_OK = 0, SL_BURROW_WARN, SL_BURROW_STALL, SL_BURROW_STOP, SL_BURROW_REWIND };
#define SL_BURROW_MAX 64

struct sl_burrow_commit {
	int64_t offset, lag, ts_ms;
};
/* The last commits of one partition, oldest first. */
struct sl_burrow_window {
	struct sl_burrow_commit c[SL_BURROW_MAX];
	size_t n, cap;
};
void sl_burrow_init(struct sl_burrow_window *w, size_t cap);
/* Appends a commit, dropping the oldest when the window is full. */
void sl_burrow_push(struct sl_burrow_window *w, int64_t offset, int64_t lag, int64_t ts_ms);
/* Burrow's rules, in the order of its evaluator: current lag 0 -> OK; no commit for longer than the window spans ->
 * STOP; some commit in the window had lag 0 -> OK; otherwise a commit went back -> REWIND; offsets unchanged ->
 * STALL; lag never fell -> WARN; else OK. An empty window with lag > 0 is STOP (nothing ever committed). */
enum sl_burrow_status sl_burrow_eval(const struct sl_burrow_window *w, int64_t current_lag, int64_t now_ms);
const char *sl_burrow_name(enum sl_burrow_status s);
/* A group's status: its worst partition's. */
static inline enum sl_burrow_status sl_burrow_worst(enum sl_burrow_status a, enum sl_burrow_status b) { return a > b ? a : b; }

/* ---- the collector's view (collect.c) ---- */

struct sl_con_part {
	int32_t partition;
	int64_t low, high, committed, lag;   /* committed -1: the group never committed here */
	int32_t leader;                      /* Kafka only; -1 otherwise */
	char isr[64];
	struct sl_burrow_window win;
	enum sl_burrow_status status;
	int64_t last_commit_ms, seen_commit_ms;
};

struct sl_con_sample {
	int64_t t_ms;
	double in_rate, out_rate;            /* records/s into the topic, committed by the group */
	int64_t lag, dlq, table_rows;
	uint64_t in_total, out_total, errors_total;
	double e2e_p95;                      /* seconds; -1 unknown */
	double lag_seconds;                  /* age of the oldest record not yet committed; -1 unknown */
};

struct sl_con_pipe {
	struct sl_pipeline *p;
	int nparts;
	struct sl_con_part *parts;
	int64_t high_sum, committed_sum, lag, dlq_high, table_rows;
	int64_t *out_rows;                   /* per output (outputs:; [0] is table_rows): rows, -1 unknown; or NULL */
	enum sl_burrow_status status;
	bool log_ok, sink_ok;
	char log_error[256], sink_error[256];
	/* in-process counters (sluice up): -1 when the pipelines run elsewhere */
	int64_t m_ingested, m_written, m_errors, m_retries, m_dlq;
	double e2e_p50, e2e_p95, lag_seconds;
	struct sl_con_sample *ring;          /* history, oldest first once full */
	size_t nring, ring_head;
};

struct sl_con_topic {
	char name[256];
	int nparts;
	int64_t messages;
	struct sl_con_part *parts;           /* low/high/leader/isr only */
};

struct sl_con_alert {
	const struct sl_console_rule *rule;
	char pipeline[128];
	double value;
	int64_t pending_since, firing_since, resolved_at;
	bool firing;
	/* an operator's silence (alerts.c): no notification until then; kept in console.db with the state */
	int64_t silenced_until;
	char silenced_by[128], silence_comment[256];
};

struct sl_con_broker { int32_t id; char host[256]; int port; };

/* A role in another process (remote.c). */
enum { SL_CON_REMOTE_REGISTRY, SL_CON_REMOTE_SCHEDULER };
struct sl_con_remote {
	const char *name;                    /* "registry" | "scheduler" */
	const struct sl_con_remote_conf *conf;
	char *authorization;                 /* the header line it wants ("Authorization: ..."), or NULL; never logged */
	bool on;                             /* a url is configured */
};
extern const struct sl_opt sl_con_registry_opts[], sl_con_scheduler_opts[];
/* How the Schemas summary asks a registry (plug.c): in this process, or over HTTP; cache is the summary's (plug.c),
 * made when the source is plugged in and freed with the remotes (sl_con_remotes_free). */
struct sl_con_schema_cache;
struct sl_con_reg_source {
	void (*get)(void *ctx, const char *target, int *status, struct sl_buf *out);
	void *ctx;
	struct sl_con_schema_cache *cache;
};
void sl_con_schema_cache_free(struct sl_con_schema_cache *sc);

struct sl_console {
	struct sl_conf *conf;
	struct sl_console_conf cc;
	struct sl_console_rule *rules;
	size_t nrules;
	bool rules_bound;
	struct sl_http_auth sec;         /* the listener's secrets (core/httpauth) */
	bool embedded;
	char address[300];
	char host[256];
	int port;

	struct sl_console_route routes[32];
	size_t nroutes;
	struct sl_con_remote remote[2];
	struct sl_con_reg_source reg_source[2]; /* the Schemas summary's registry: [0] in this process, [1] remote */
	struct sl_registry *registry;        /* plugged in (sluice up): schemas for the message browser */

	pthread_mutex_t avro_lock;           /* guards the two below */
	void *avro_cache;                    /* struct sl_avro_cache *: writer schemas by id, for JSON */
	void *pipes_registry;                /* struct sl_registry_client *: the pipelines' own, opened on demand */
	void *framed;                        /* decode.c: schema types and Protobuf schemas by id */

	pthread_mutex_t lock;                /* guards everything below */
	struct sl_con_pipe *pipes;
	size_t npipes;
	struct sl_con_topic *topics;
	size_t ntopics;
	struct sl_con_broker brokers[32];
	size_t nbrokers;
	bool log_ok;
	char log_error[256];
	int64_t last_poll_ms;
	struct sl_con_alert *alerts;
	size_t nalerts;
	uint64_t requests, unauthorized;

	/* collector */
	pthread_t thread;
	bool thread_started;
	volatile int stop;
	void *log;                           /* struct sl_topic_store * (topic/): opened by the collector */
	pthread_mutex_t cql_lock;            /* guards sinks (each reader is used by one thread at a time) */
	void *sinks;                         /* struct sl_sink *[npipes]: readers of the pipelines' tables (sink/) */
	void *httpd;                         /* struct sl_http_server * */

	/* live tails (tail.c): their threads, joined when they end and at stop */
	pthread_mutex_t tail_lock;
	struct sl_con_tail *tails;
	int64_t ntails;

	/* the audit log (audit.c): data_dir/console.db, opened on first use */
	void *audit;                         /* sqlite3 * */
	bool audit_failed;

	/* samples and alert state kept across restarts (store.c): data_dir/console.db too */
	void *store;                         /* sqlite3 * */
	bool store_failed, store_warned;
	int64_t store_pruned_ms;
};

int sl_con_init(struct sl_console *c, struct sl_conf *conf, const struct sl_console_start_opts *o,
		struct sl_err *err);
void sl_con_destroy(struct sl_console *c);
/* One round of sampling (the collector thread calls it every poll interval; tests call it directly). */
void sl_con_collect(struct sl_console *c);
void sl_con_collect_close(struct sl_console *c);
/* What the message browser asks for: a topic (partition -1: all), from an offset or a time (from_ms >= 0), or the
 * newest `limit` messages (newest first); text, dead-letter reason and stage filters (NULL or "": none). */
struct sl_con_browse_opts {
	const char *topic;
	int32_t partition;
	int64_t offset, from_ms, limit;
	bool newest;
	const char *filter, *reason, *stage;
	int64_t scan;            /* read at least this many (per partition when newest), up to 10000: the reasons
				  * seen are counted over them */
};
/* Messages of a topic for the browser (a JSON object into out: messages with headers and, for dead letters, their
 * stage, reason and original coordinates; the reasons seen). SL_ENOTFOUND for an unknown topic or partition. */
int sl_con_browse(struct sl_console *c, const struct sl_con_browse_opts *o, struct sl_buf *out, struct sl_err *err);
/* A page of a pipeline's sink table (JSON object into out): SQLite newest first, Cassandra in token order. token
 * (decoded, ntoken bytes) continues from the previous page's next_token; NULL for the first page. page (an offset
 * of page*size rows) applies to SQLite without a token. SL_EINVAL: the token is not one this table gave. key (not
 * NULL): the rows of the partition whose partition key is that value instead (one page). The answer carries the
 * columns' types ("schema") and when it was read ("snapshot_ms"). */
int sl_con_rows(struct sl_console *c, struct sl_pipeline *p, size_t output, const unsigned char *token, size_t ntoken,
		int64_t page, int64_t size, const char *key, struct sl_buf *out, struct sl_err *err);
/* A page token as the API shows it (lowercase hex) back into bytes; the length, or -1. */
#define SL_CON_TOKEN_MAX 2048
int sl_con_page_token_decode(const char *hex, unsigned char *out, size_t outsz);

struct sl_msg;
struct sl_con_resp;
/* One message as the browser's rows show it (JSON object: coordinates, key and value decoded, headers, a dead
 * letter's story) appended to out (collect.c). */
void sl_con_msg_json(struct sl_console *c, const struct sl_msg *m, struct sl_buf *out);

/* tail.c: GET /api/kafka/tail?topic=T[&partition=P]: server-sent events of the topic's new messages, bounded in
 * number (max_tails, 503 beyond) and time (tail_max_time), ended when the client goes away. */
struct sl_con_tail;
void sl_con_api_tail(struct sl_console *c, const char *query, struct sl_con_resp *rs);
/* Ends every tail and joins its thread (sl_console_stop). */
void sl_con_tails_stop(struct sl_console *c);
int64_t sl_con_tails_open(struct sl_console *c);

/* remote.c */
int sl_con_remotes_init(struct sl_console *c, struct sl_err *err);
void sl_con_remotes_free(struct sl_console *c);
/* One request to a remote role: target (path and query) is appended to its url. *status is its HTTP status, out
 * its body (at most 16 MiB), ctype (optional) its Content-Type. Fails only when no answer came. */
int sl_con_remote_call(const struct sl_con_remote *r, const char *method, const char *target, const char *body,
		       size_t len, int *status, struct sl_buf *out, char *ctype, size_t ctsz, struct sl_err *err);
/* A Confluent-framed Avro value (magic 0, schema id) as JSON, appended to out; schemas fetched and cached by id. */
int sl_con_avro_json(struct sl_console *c, const void *p, size_t n, int32_t *schema_id, struct sl_buf *out,
		     struct sl_err *err);
void sl_con_avro_close(struct sl_console *c);
/* A schema's text and type (AVRO, PROTOBUF, JSON) by id, from where the browser's schemas come from (remote.c); the
 * caller holds avro_lock. */
int sl_con_schema_text(struct sl_console *c, int id, char **schema, char **type, struct sl_err *err);
/* decode.c: a Confluent-framed value (magic 0, schema id) as JSON text appended to out, whatever its schema type:
 * Avro decoded, Protobuf decoded with its writer schema, JSON Schema's payload checked to be JSON. *format gets
 * "avro", "protobuf" or "json". An error says why (unknown id, bytes that do not decode); out is then unchanged. */
int sl_con_framed_json(struct sl_console *c, const void *p, size_t n, int32_t *schema_id, const char **format,
		       struct sl_buf *out, struct sl_err *err);
void sl_con_framed_close(struct sl_console *c);
/* The routes for console.registry.url and console.scheduler.url (plug.c). */
int sl_con_plug_remotes(struct sl_console *c);

/* alerts.c */
int sl_con_rules_bind(struct sl_console *c, struct sl_err *err);
void sl_con_rules_free(struct sl_console *c);
/* Evaluates every rule against the pipes (lock held); sends webhooks for changes after unlocking. */
void sl_con_alerts_eval(struct sl_console *c, int64_t now_ms);
void sl_con_alerts_json(struct sl_console *c, struct sl_buf *out);

/* audit.c: who did what through the console, in SQLite under data_dir */
/* The person behind an Authorization header: the basic user, or which token; role "operator", "viewer" or "none". */
void sl_con_who(const struct sl_console *c, const char *authorization, char *who, size_t whosz, const char **role);
void sl_con_audit(struct sl_console *c, const char *authorization, const char *action, const char *target,
		  const char *detail, int status);
/* The newest limit entries, newest first ({"ok":..,"entries":[...]}). */
void sl_con_audit_json(struct sl_console *c, int64_t limit, struct sl_buf *out);
void sl_con_audit_close(struct sl_console *c);

struct sl_con_req;
struct sl_con_resp;
/* kafkaops.c: create a topic, produce a message (operator, audited). Answers (1) the requests it owns, else 0. */
int sl_con_kafka_actions(struct sl_console *c, const struct sl_con_req *rq, const char *path, struct sl_con_resp *rs);
/* actions.c: the dead-letter view and replay, /api/whoami, /api/audit. Answers (1) the requests it owns, else 0. */
int sl_con_actions(struct sl_console *c, const struct sl_con_req *rq, const char *path, const char *query,
		   struct sl_con_resp *rs);

/* api.c */
/* The cookie the login page sets: hex of the Authorization value it was given (HttpOnly, SameSite=Strict). */
#define SL_CON_AUTH_COOKIE "sluice_auth"

struct sl_con_req {
	const char *method, *target;
	const char *authorization, *accept_encoding, *if_none_match;
	const char *origin, *host; /* a browser's Origin and the Host it asked for: cross-origin writes are refused */
	const char *accept;        /* a browser (text/html) gets an HTML 404 */
	const char *body;
	size_t len;
	bool body_too_big;
};
struct sl_con_resp {
	int status;
	const char *ctype;
	struct sl_buf body;
	const unsigned char *static_data;    /* an embedded asset, served as is */
	size_t static_len;
	const unsigned char *static_gz;      /* its gzip form, when the client takes it */
	size_t static_gz_len;
	char etag[40];
	const char *cache_control;
	bool www_authenticate;
	bool head;
	char set_cookie[1200];               /* a Set-Cookie header (the login page's), or "" */
	void (*stream)(void *arg, int fd);   /* a streamed answer (see struct sl_http_resp) */
	void *stream_arg;
};
/* Answers one request (no I/O but the console's own state). Never fails: errors become 4xx/5xx responses. */
void sl_con_dispatch(struct sl_console *c, const struct sl_con_req *rq, struct sl_con_resp *rs);
void sl_con_metrics_text(struct sl_console *c, struct sl_buf *out);

/* assets (generated from web/ at build time) */
struct sl_con_asset {
	const char *path;                    /* "/index.html" */
	const unsigned char *data;
	size_t len;
};
extern const struct sl_con_asset sl_con_assets[];
extern const size_t sl_con_nassets;
/* The asset for path ("/" is /index.html) with its ETag and gzip form (computed once). NULL when absent. */
const struct sl_con_asset *sl_con_asset_find(const char *path, const char **etag, const unsigned char **gz,
					     size_t *gzlen);
const char *sl_con_mime(const char *path);
/* gzip (RFC 1952) of data into out; 0 or -1. */
int sl_con_gzip(const void *data, size_t len, struct sl_buf *out);

int64_t sl_con_now_ms(void);

/* The history ring's i-th sample, oldest first (NULL past the end); errors per record over the last window ms. */
const struct sl_con_sample *sl_con_ring_at(const struct sl_console *c, const struct sl_con_pipe *cp, size_t i);
void sl_con_ring_push(struct sl_console *c, struct sl_con_pipe *cp, const struct sl_con_sample *s);
/* store.c: the samples and the alert state in data_dir/console.db for console.retention. load fills the rings and
 * the alerts at start; save writes the samples taken at now and every alert's state (collector thread); range
 * writes a pipeline's samples between from_ms and to_ms, averaged into at most max_points rows, as JSON arrays in
 * /api/history's column order (-1: nothing kept yet). */
void sl_con_store_load(struct sl_console *c);
void sl_con_store_save(struct sl_console *c, int64_t now);
int sl_con_store_range(struct sl_console *c, const char *pipeline, int64_t from_ms, int64_t to_ms,
		       int64_t max_points, struct sl_buf *out);
void sl_con_store_close(struct sl_console *c);
/* data_dir/console.db (history, alert state, audit log), opened with schema run once; NULL with a warning naming
 * what is lost (what) when it cannot be. Returns a sqlite3 *. */
void *sl_con_db_open(struct sl_console *c, const char *what, const char *schema);
/* procstat.c: the process_* families (CPU, memory, file descriptors, start time) from /proc/self. */
void sl_con_process_metrics(struct sl_buf *out);
double sl_con_error_rate(const struct sl_console *c, const struct sl_con_pipe *cp, int64_t now, int64_t window);
/* Dead letters added over the last window ms. */
int64_t sl_con_dlq_growth(const struct sl_console *c, const struct sl_con_pipe *cp, int64_t now, int64_t window);
/* A pipeline's one status (status.c), from its consumer group, error rate, dead-letter growth, firing alerts and
 * whether the log and the sink answer: OK, WARN or ERROR, with the reasons. Lock held. */
enum sl_con_health { SL_CON_OK = 0, SL_CON_WARN = 1, SL_CON_ERROR = 2 };
enum sl_con_health sl_con_pipe_health(struct sl_console *c, const struct sl_con_pipe *cp, int64_t now,
				      struct sl_buf *reasons);
const char *sl_con_health_name(enum sl_con_health h);
/* Rewrites every occurrence of data_dir's path in s (a message bound for an API answer) to "data_dir". */
void sl_con_scrub_paths(const struct sl_console *c, char *s, size_t cap);

#endif
