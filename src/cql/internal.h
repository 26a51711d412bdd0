/* The CQL client's internal structures: session, hosts and ring, connections, requests, futures, statements,
 * prepared statements and batches. Ownership rule: everything about hosts, connections and in-flight requests
 * belongs to the session's I/O thread; other threads only touch the submission queue (under q_mu), futures (their
 * own lock) and statements they own. */
#ifndef SL_CQL_INTERNAL_H
#define SL_CQL_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "cql/cql.h"
#include "cql/proto.h"

#define SL_CQL_MAX_HOSTS 256
#define SL_CQL_MAX_PLAN 16
#define SL_CQL_DESC_MAX 160

struct sl_cql_future {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int refs;
	bool done;
	int rc;
	struct sl_err err;
	int32_t server_code;
	bool retryable;
	struct sl_cql_result *result;
	struct sl_cql_prepared *prepared;
	sl_cql_future_cb cb;
	void *cb_data;
};
struct sl_cql_future *sl_cql_future_new(void);
/* Completes f (I/O thread): stores the outcome, wakes waiters, runs the callback, drops the request's reference. */
void sl_cql_future_complete(struct sl_cql_future *f, int rc, const struct sl_err *err, int32_t server_code,
			    bool retryable, struct sl_cql_result *result, struct sl_cql_prepared *prepared);

struct sl_cql_prepared {
	struct sl_cql_prepared *next;     /* session cache */
	char *query;
	size_t query_len;
	struct sl_cql_result *res;        /* the PREPARED result: owns bind and result metadata */
	pthread_mutex_t mu;               /* guards id (a re-prepare may return a new one) */
	uint8_t id[64];
	uint16_t idlen;
	char keyspace[64];                /* for token-aware routing */
	char desc[SL_CQL_DESC_MAX];       /* the statement for error messages, made once (requests point here) */
};

/* A bound value slot: off/len into the statement's values buffer; len -1 null, -2 unset. */
struct sl_cql_slot {
	int32_t off, len;
};

struct sl_cql_statement {
	char *query;
	size_t query_len;
	struct sl_cql_prepared *prepared;
	int nvalues;
	struct sl_cql_slot *slots;
	struct sl_buf values;
	int consistency, serial_consistency;
	bool idempotent;
	int32_t page_size;
	uint8_t *paging_state;
	int32_t paging_state_len;
	int timeout_ms;
	int64_t timestamp;
	uint8_t *routing_key;             /* simple statements: set by the user */
	size_t routing_key_len;
	char routing_ks[64];
};

struct sl_cql_batch {
	int type;
	int count;
	struct sl_buf entries;            /* encoded queries */
	int consistency;
	bool idempotent;
	int timeout_ms;
	bool has_token;
	int64_t token;
	char keyspace[64];
	char desc[SL_CQL_DESC_MAX];
};

struct sl_cql_session;
struct sl_cql_conn;
struct sl_cql_req;

/* Internal requests (discovery, schema agreement, re-prepare) complete through a function instead of a future.
 * It receives ownership of res (NULL on failure). */
typedef void (*sl_cql_icb)(struct sl_cql_session *s, struct sl_cql_req *r, int rc, const struct sl_err *err,
			   int32_t server_code, struct sl_cql_result *res);

struct sl_cql_req {
	struct sl_cql_req *qnext;         /* submission queue / pending list */
	struct sl_cql_req *prev, *next;   /* connection's in-flight list */
	int opcode;
	struct sl_buf body;               /* uncompressed body */
	struct sl_cql_future *fut;        /* user requests */
	sl_cql_icb icb;                   /* internal requests */
	void *iarg;
	struct sl_cql_req *parent;        /* a re-prepare's waiting request */
	struct sl_cql_result *held;       /* schema agreement: the DDL's result, delivered once hosts agree */
	struct sl_cql_prepared *prepared; /* EXECUTE: to re-prepare on UNPREPARED */
	int idx;                          /* generic counter for internal chains */
	bool has_token;
	int64_t token;
	char keyspace[64];
	bool idempotent;
	bool counted;                     /* holds one of the session's max_inflight slots */
	bool is_ddl_wait;                 /* QUERY that may change schema: wait for agreement */
	int retries, reprepares;
	int timeout_ms;
	uint64_t deadline_ms;
	int target;                       /* host index the request must go to, or -1 */
	int plan[SL_CQL_MAX_PLAN], nplan, plan_pos;
	struct sl_cql_conn *conn;
	int stream;
	char desc[SL_CQL_DESC_MAX];       /* the statement, for error messages ... */
	const char *desc_ref;             /* ... or one that outlives the request (a prepared statement's) */
	char sv[40];                      /* schema agreement: the coordinator's schema version */
	uint64_t agree_deadline_ms;
	bool refresh_boot;                /* ring refresh: part of the session's bootstrap */
	/* Speculative execution (options.speculative_delay_ms): a user request still unanswered spec_at_ms is sent
	 * once more, as a copy (spec_copy) to the next host of its plan; `spec` links the two while both wait. The
	 * first success completes the user's request; the other answer is dropped (sl_cql_complete). */
	struct sl_cql_req *spec;
	bool spec_copy;
	uint64_t spec_at_ms;
};

/* The request's statement for messages: an EXECUTE points at its prepared statement's description instead of
 * formatting its own on every request (the hot path). */
static inline const char *sl_cql_req_desc(const struct sl_cql_req *r)
{
	return r->desc_ref ? r->desc_ref : r->desc;
}

enum sl_cql_conn_state {
	SL_CQL_CONN_CONNECTING, SL_CQL_CONN_TLS, SL_CQL_CONN_STARTUP, SL_CQL_CONN_AUTH, SL_CQL_CONN_USE,
	SL_CQL_CONN_REGISTER, SL_CQL_CONN_READY, SL_CQL_CONN_CLOSED,
};

struct sl_cql_conn {
	struct sl_cql_session *s;
	int host;
	int fd;
	int state;
	void *ssl;                        /* SSL * when TLS is on */
	bool want_write;                  /* registered for EPOLLOUT */
	bool dirty;                       /* wbuf has unflushed bytes */
	bool compress;
	bool control;                     /* registered for events */
	struct sl_buf rbuf, wbuf;
	size_t roff, woff;
	struct sl_cql_req **streams;      /* SL_CQL_MAX_STREAMS slots; ORPHAN marks a timed-out request's stream */
	int16_t *free_ids;
	int nfree;
	int inflight, orphans;
	uint64_t next_deadline_ms;         /* no request in flight expires before this: tick skips its scan */
	struct sl_cql_req *head, *tail;   /* in-flight, oldest first */
	uint64_t opened_ms, last_read_ms, last_write_ms;
	bool heartbeat_out;
	struct sl_cql_conn *dirty_next;
	struct sl_cql_conn *grave_next;
};

struct sl_cql_host {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char name[80];                    /* "10.0.0.1:9042" for messages */
	char dc[64], rack[64];
	char schema_version[40];
	bool enabled;                     /* pools are kept open (local DC, or remote when allowed) */
	bool contact;
	bool in_peers;                    /* seen by the last ring refresh */
	struct sl_cql_conn **conns;
	int nconns;
	int backoff_ms;
	uint64_t next_attempt_ms;
	int failures;
	char last_error[256];
	/* Set when a request timed out on a connection that had heard nothing from the host for a whole request
	 * timeout: the node hangs (paused, GC-stalled, partitioned) rather than refuses, so its sockets stay open and
	 * only timeouts tell. While set the host is out of every plan (sl_cql_host_up) and a probe (OPTIONS) goes to it
	 * every HUNG_PROBE_MS; the first byte read from it clears the mark. */
	uint64_t hung_since_ms;
};

struct sl_cql_ring_entry {
	int64_t token;
	int host;
};

struct sl_cql_ks {
	char name[64];
	int rf;                           /* SimpleStrategy */
	bool nts;
	int ndc;
	char dcs[8][64];
	int dc_rf[8];
};

struct sl_cql_timer {
	uint64_t at_ms;
	void (*fn)(struct sl_cql_session *s, void *arg);
	void *arg;
};

struct sl_cql_session {
	struct sl_cql_options o;
	char *strs;                       /* copies of the option strings */
	char keyspace[64];
	int epfd, evfd;
	pthread_t thread;
	bool thread_started;
	atomic_bool stop;
	pthread_t io_tid;

	/* submission queue */
	pthread_mutex_t q_mu;
	pthread_cond_t q_cv;              /* slot freed / bootstrap done */
	struct sl_cql_req *q_head, *q_tail;
	bool wake_pending;
	int inflight;                     /* user requests accepted and not yet completed */
	int boot_state;                   /* 0 running, 1 done, <0 failed */
	struct sl_err boot_err;

	/* prepared cache (shared with user threads) */
	pthread_mutex_t p_mu;
	struct sl_cql_prepared *prepared;

	/* I/O thread only */
	struct sl_cql_host *hosts[SL_CQL_MAX_HOSTS];
	int nhosts;
	struct sl_cql_ring_entry *ring;
	int nring;
	struct sl_cql_ks *kss;
	int nks;
	char local_dc[64];
	const char *peers_table;          /* system.peers_v2 or system.peers */
	int control;                      /* host index of the control connection, -1 */
	bool refreshing;
	struct sl_cql_req *pending_head, *pending_tail;
	struct sl_cql_conn *dirty_head;
	struct sl_cql_conn *grave;          /* closed connections, freed at the end of the loop iteration */
	void *ssl_ctx;                      /* SSL_CTX * when TLS is on */
	struct sl_cql_timer timers[64];
	int ntimers;
	unsigned rr;
	uint64_t last_tick_ms;

	/* stats */
	atomic_ullong st_requests, st_errors, st_timeouts, st_retries, st_reprepares, st_reconnects;
	atomic_ullong st_spec_sent, st_spec_wins;
	atomic_int st_hosts_up, st_connections;
};

/* The hot helpers several files share (inlined where they were when one file held them all). */

static inline uint64_t sl_cql_now_ms(void)
{
	return (uint64_t)sl_mono_ms();
}

/* Takes a request off its connection without an answer: its stream stays reserved (ORPHAN) until the late answer
 * comes and is dropped. */
void sl_cql_conn_abandon(struct sl_cql_conn *c, struct sl_cql_req *r);
/* Sends the speculative copy of r (see struct sl_cql_req) to the next host of its plan. */
void sl_cql_speculate(struct sl_cql_session *s, struct sl_cql_req *r);

static inline struct sl_cql_req *sl_cql_req_new(void)
{
	struct sl_cql_req *r = calloc(1, sizeof *r);
	if (!r)
		return NULL;
	sl_buf_init(&r->body);
	r->target = -1;
	return r;
}

/* Whether host i has a ready connection. */
static inline bool sl_cql_host_up(struct sl_cql_session *s, int i)
{
	struct sl_cql_host *h = s->hosts[i];
	if (h->hung_since_ms)
		return false;
	for (int k = 0; k < h->nconns; k++)
		if (h->conns[k]->state == SL_CQL_CONN_READY)
			return true;
	return false;
}

/* Whether host i is in the local data centre (or either is unknown). */
static inline bool sl_cql_host_local(struct sl_cql_session *s, int i)
{
	return !s->local_dc[0] || !s->hosts[i]->dc[0] || !strcmp(s->hosts[i]->dc, s->local_dc);
}

/* Whether a connection may still come up: some enabled host has one open or has not failed three times yet. */
static inline bool sl_cql_any_connecting(struct sl_cql_session *s)
{
	for (int i = 0; i < s->nhosts; i++) {
		struct sl_cql_host *h = s->hosts[i];
		if (h->enabled && (h->nconns > 0 || h->failures < 3))
			return true;
	}
	return false;
}

/* statement.c */
/* Encodes QUERY/EXECUTE bodies for st into r (user thread); fills routing and description. */
int sl_cql_statement_encode(const struct sl_cql_statement *st, int default_cl, struct sl_cql_req *r, struct sl_err *e);
int sl_cql_batch_encode(const struct sl_cql_batch *b, int default_cl, struct sl_cql_req *r, struct sl_err *e);
struct sl_cql_prepared *sl_cql_prepared_from_result(const char *query, struct sl_cql_result *res, const char *ks);
void sl_cql_prepared_free(struct sl_cql_prepared *p);
void sl_cql_describe(char *out, const char *query, size_t len);

/* conn.c (I/O thread) */
struct sl_cql_conn *sl_cql_conn_open(struct sl_cql_session *s, int host);
/* Sends r on c: assigns a stream, queues the frame. Returns SL_EFULL when no stream id is free. */
int sl_cql_conn_send(struct sl_cql_conn *c, struct sl_cql_req *r);
void sl_cql_conn_event(struct sl_cql_conn *c, uint32_t events);
void sl_cql_conn_flush(struct sl_cql_conn *c);
/* Closes c and fails or retries its in-flight requests with the reason. */
void sl_cql_conn_close(struct sl_cql_conn *c, int code, const char *why);
void sl_cql_conn_tick(struct sl_cql_conn *c, uint64_t now);
void sl_cql_conn_free(struct sl_cql_conn *c);

/* conn.c: the session's TLS context (tls: on), made once at connect; conn.c makes each connection's SSL from it. */
int sl_cql_tls_init(struct sl_cql_session *s, struct sl_err *e);
void sl_cql_tls_free(struct sl_cql_session *s);

/* io.c (I/O thread) */
/* The loop; the thread's start routine (session.c starts it). */
void *sl_cql_io_main(void *arg);
/* Runs fn(s, arg) at or after at (ms, sl_cql_now_ms); when the table is full, runs it now. */
void sl_cql_add_timer(struct sl_cql_session *s, uint64_t at, void (*fn)(struct sl_cql_session *, void *), void *arg);
/* c has bytes to write: flushed at the end of this loop iteration. */
void sl_cql_mark_dirty(struct sl_cql_session *s, struct sl_cql_conn *c);
/* Connection hooks, called by conn.c. */
void sl_cql_on_conn_ready(struct sl_cql_session *s, struct sl_cql_conn *c);
void sl_cql_on_conn_closed(struct sl_cql_session *s, struct sl_cql_conn *c, const char *why);

/* plan.c (I/O thread) */
void sl_cql_req_free(struct sl_cql_req *r);
/* Finishes r: its future (freeing its max_inflight slot) or its internal function; frees r. */
void sl_cql_complete(struct sl_cql_session *s, struct sl_cql_req *r, int rc, const struct sl_err *err,
		     int32_t server_code, bool retryable, struct sl_cql_result *res, struct sl_cql_prepared *prep);
/* Completes r with an error: code and msg, prefixed with the statement. */
void sl_cql_fail(struct sl_cql_session *s, struct sl_cql_req *r, int code, int32_t server_code, bool retryable,
		 const char *msg);
/* The ready connection of host i with a free stream and the fewest requests in flight, or NULL. */
struct sl_cql_conn *sl_cql_pick_conn(struct sl_cql_session *s, int i);
/* Sends r along its plan (made on first dispatch); pends it while a connection may come up, else fails it. */
void sl_cql_dispatch(struct sl_cql_session *s, struct sl_cql_req *r);
/* A QUERY at ONE for the session's own use (to host target, or -1 any), completing through cb. */
struct sl_cql_req *sl_cql_internal_query(struct sl_cql_session *s, const char *q, int target, sl_cql_icb cb,
					 struct sl_cql_req *parent);
/* A response for r arrived (body is malloc'd, ownership passes). */
void sl_cql_on_response(struct sl_cql_session *s, struct sl_cql_conn *c, struct sl_cql_req *r,
			const struct sl_cql_header *h, uint8_t *body, size_t len);
/* r could not complete on its connection (closed, timed out): retry if allowed, else fail. */
void sl_cql_on_req_failed(struct sl_cql_session *s, struct sl_cql_req *r, int code, const char *msg);

/* topology.c (I/O thread) */
/* The host with this address (added if new); -1 when the table is full or out of memory. */
int sl_cql_add_host(struct sl_cql_session *s, const struct sockaddr_storage *ss, socklen_t len);
/* Ends the bootstrap that connect waits for (rc < 0: failed with msg); later calls do nothing. */
void sl_cql_boot_done(struct sl_cql_session *s, int rc, const char *msg);
/* Re-reads system.local, the peers table and keyspaces on the control host, unless a refresh is running. */
void sl_cql_start_refresh(struct sl_cql_session *s, bool boot);
/* Schema agreement for a DDL request r (r->held, r->agree_deadline_ms set): asks until versions agree or the
 * deadline passes, then completes r. Also the timer continuation, with r as arg. */
void sl_cql_agree_step(struct sl_cql_session *s, void *arg);
void sl_cql_on_event(struct sl_cql_session *s, const struct sl_cql_event *ev);

#endif
