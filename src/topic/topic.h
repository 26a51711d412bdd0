/* Topics: the durable log between ingest and processing. Two backends share this interface: Kafka (librdkafka,
 * kafka.c) and the embedded log (SQLite in data_dir, embedded.c) that runs the pipeline on one machine with nothing
 * else installed. A backend is a struct of callbacks, as in Fluent Bit's output plugins.
 *
 * Delivery contract: a producer's delivery callback fires only once the log has the message durably (Kafka: acks=all
 * delivery report; embedded: the SQLite transaction committed). Callers count a record as sent, and advance a source
 * cursor, only from there. */
#ifndef SL_TOPIC_H
#define SL_TOPIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/err.h"

struct sl_header {
	const char *key;
	const void *value;
	size_t value_len;
};

struct sl_msg {
	const char *topic;
	int32_t partition;       /* produce: -1 = by key */
	int64_t offset;
	int64_t timestamp_ms;
	const void *key;
	size_t key_len;
	const void *value;
	size_t value_len;
	const struct sl_header *headers;
	size_t n_headers;
};

/* Called on the thread that calls poll()/flush(). err is 0 or negative SL_E*; errmsg says why. */
typedef void (*sl_delivery_fn)(void *ctx, void *msg_opaque, int err, const char *errmsg, int32_t partition,
			       int64_t offset);

struct sl_topic_part;
struct sl_consumer;
struct sl_producer;
struct sl_producer_ops {
	/* Enqueues m (copied). Blocks up to timeout_ms while the backend's buffer is full (backpressure);
	 * SL_EFULL if still full then. */
	int (*produce)(struct sl_producer *p, const struct sl_msg *m, void *msg_opaque, int timeout_ms,
		       struct sl_err *err);
	/* Serves delivery callbacks; returns how many were served. */
	int (*poll)(struct sl_producer *p, int timeout_ms);
	/* Waits until every enqueued message is delivered or failed, up to timeout_ms; SL_ETIMEDOUT otherwise. */
	int (*flush)(struct sl_producer *p, int timeout_ms, struct sl_err *err);
	/* Messages enqueued and not yet reported. */
	int64_t (*in_flight)(struct sl_producer *p);
	void (*destroy)(struct sl_producer *p);
	/* Transactions (a producer from the store's txn_producer; NULL on others). A failed call leaves the open
	 * transaction to abort(): what it produced and the offsets it sent are then never visible to read_committed
	 * readers. commit() flushes first. */
	int (*begin)(struct sl_producer *p, struct sl_err *err);
	/* Adds a consumer group's offsets (parts[i].committed = next offset of parts[i].partition of topic) to the
	 * open transaction, with the consumer's group metadata (generation), so a member that lost the partitions
	 * in a rebalance cannot commit them (KIP-447 fencing). cons: a consumer of the same store. */
	int (*send_offsets)(struct sl_producer *p, struct sl_consumer *cons, const char *topic,
			    const struct sl_topic_part *parts, int n, struct sl_err *err);
	int (*commit)(struct sl_producer *p, struct sl_err *err);
	int (*abort)(struct sl_producer *p, struct sl_err *err);
};
struct sl_producer {
	const struct sl_producer_ops *ops;
	sl_delivery_fn on_delivery;
	void *ctx;
};

struct sl_consumer;
struct sl_consumer_ops {
	/* Fills up to max messages; returns their count (0 on timeout) or a negative SL_E*. The messages stay valid
	 * until the next poll() or destroy(). */
	int (*poll)(struct sl_consumer *c, struct sl_msg *out, size_t max, int timeout_ms, struct sl_err *err);
	/* Records that everything before next_offset in the partition is done. */
	int (*commit)(struct sl_consumer *c, const char *topic, int32_t partition, int64_t next_offset,
		      struct sl_err *err);
	/* Starts reading the partition at offset (used when a sink keeps its own offsets). */
	int (*seek)(struct sl_consumer *c, const char *topic, int32_t partition, int64_t offset, struct sl_err *err);
	/* Stops (true) or resumes (false) fetching from every assigned partition, while poll() keeps the member alive
	 * in its group: backpressure from a slow sink without a rebalance. May be NULL (nothing to pause). */
	int (*pause)(struct sl_consumer *c, bool paused, struct sl_err *err);
	/* Total lag of the group over its partitions (high watermark - committed), or negative SL_E*. */
	int64_t (*lag)(struct sl_consumer *c, struct sl_err *err);
	void (*destroy)(struct sl_consumer *c);
};
struct sl_consumer {
	const struct sl_consumer_ops *ops;
	/* Rebalance hooks (Kafka); the embedded log owns every partition, so never calls them. */
	void (*on_assign)(void *ctx, const char *topic, int32_t partition);
	void (*on_revoke)(void *ctx, const char *topic, int32_t partition);
	void *ctx;
	/* Set by a caller that never reads headers (the processor): Kafka parses them only when asked, and asking
	 * for every message costs the poll a varint walk per record. */
	bool skip_headers;
};

/* ---- the embedded log ---- */

/* Opens (creating) data_dir/log.db. topic partitions are fixed at creation. */
struct sl_embedded_log;
int sl_embedded_open(const char *data_dir, struct sl_embedded_log **out, struct sl_err *err);
void sl_embedded_close(struct sl_embedded_log *log);
int sl_embedded_ensure_topic(struct sl_embedded_log *log, const char *topic, int partitions, struct sl_err *err);
/* High watermark (next offset to be written) of a partition. */
int sl_embedded_high_watermark(struct sl_embedded_log *log, const char *topic, int32_t partition, int64_t *out,
			       struct sl_err *err);
int sl_embedded_partitions(struct sl_embedded_log *log, const char *topic, int *out, struct sl_err *err);
/* Producer: batches up to max_batch messages per transaction. */
int sl_embedded_producer(struct sl_embedded_log *log, sl_delivery_fn fn, void *ctx, struct sl_producer **out,
			 struct sl_err *err);
/* Consumer over every partition of topic for group, starting at the group's committed offsets. */
int sl_embedded_consumer(struct sl_embedded_log *log, const char *group, const char *topic, struct sl_consumer **out,
			 struct sl_err *err);
/* Small key/value store beside the log for source cursors: saved in one transaction. */
int sl_embedded_cursor_get(struct sl_embedded_log *log, const char *name, char *out, size_t outsz, struct sl_err *err);
int sl_embedded_cursor_put(struct sl_embedded_log *log, const char *name, const char *value, struct sl_err *err);

/* Kafka's default partitioner (murmur2 of the key, positive, modulo partitions), so keys land on the same partition
 * number in both backends. */
int32_t sl_topic_partition_for_key(const void *key, size_t len, int partitions);


/* ---- Kafka (librdkafka, kafka.c) ---- */

#include "core/config.h"

/* The top-level `kafka:` section of sluice.yaml, bound through sl_kafka_opts. */
struct sl_kafka_conf {
	char *brokers;               /* bootstrap.servers */
	char *client_id;
	char *compression;           /* none|gzip|snappy|lz4|zstd */
	int64_t linger_ms;
	int64_t buffer_max;          /* bytes; queue.buffering.max.kbytes = buffer_max / 1024 */
	int64_t message_max;         /* bytes; message.max.bytes */
	int64_t message_timeout_ms;  /* how long a message may wait for its ack (outages included) */
	int64_t commit_interval_ms;  /* a consumer's offsets go out at most this often (0: with every commit call) */
	int64_t metadata_refresh_ms; /* topic.metadata.refresh.interval.ms: how soon a moved leader is found */
	struct sl_strmap properties; /* raw librdkafka properties, applied last */
	/* Security (docs/security.md). Secrets are never in the file: the password fields name environment
	 * variables, keys and certificates are files. */
	char *security_protocol;     /* plaintext|ssl|sasl_plaintext|sasl_ssl */
	char *sasl_mechanism;        /* PLAIN|SCRAM-SHA-256|SCRAM-SHA-512 */
	char *sasl_username;
	char *sasl_password_env;
	char *ssl_ca_location;       /* CA bundle (PEM) that verifies the brokers; default: the system's */
	char *ssl_certificate_location; /* client certificate (PEM), for brokers that require one */
	char *ssl_key_location;      /* its private key (PEM) */
	char *ssl_key_password_env;  /* the key's passphrase, when it is encrypted */
	char *ssl_endpoint_identification; /* https (verify the broker's name) | none */
};
extern const struct sl_opt sl_kafka_opts[];

/* Idempotent producer (acks=all, murmur2_random partitioner). fn gets err=0 only for a broker-acked message. Call
 * flush() before destroy(): destroy drops unacknowledged messages without calling fn. */
int sl_kafka_producer(const struct sl_kafka_conf *kc, sl_delivery_fn fn, void *ctx, struct sl_producer **out,
		      struct sl_err *err);
/* Transactional producer (transactional.id txn_id, init_transactions done): the producer ops' begin, send_offsets,
 * commit and abort. */
int sl_kafka_txn_producer(const struct sl_kafka_conf *kc, const char *txn_id, sl_delivery_fn fn, void *ctx,
			  struct sl_producer **out, struct sl_err *err);
/* Group consumer subscribed to topic: manual commits (sent asynchronously, settled synchronously on revoke and close); cooperative-sticky assignment; reads from the
 * earliest offset when the group has no commit. Set on_assign/on_revoke/ctx on *out before the first poll. */
int sl_kafka_consumer(const struct sl_kafka_conf *kc, const char *group, const char *topic,
		      struct sl_consumer **out, struct sl_err *err);
/* Creates topic when absent and waits (up to 30 s) until every partition has a leader. An existing topic is kept
 * as it is (a warning says so when its partition count differs). replication <= 0: the broker's default. */
int sl_kafka_ensure_topic(const struct sl_kafka_conf *kc, const char *topic, int partitions, int replication,
			  struct sl_err *err);
/* Partition count of an existing topic (SL_ENOTFOUND when absent). */
int sl_kafka_partitions(const struct sl_kafka_conf *kc, const char *topic, int *out, struct sl_err *err);
int sl_kafka_watermarks(const struct sl_kafka_conf *kc, const char *topic, int32_t partition, int64_t *low,
			int64_t *high, struct sl_err *err);
/* Lag of group on every partition of topic (high watermark - committed; uncommitted counts from the low
 * watermark), without joining the group. */
int sl_kafka_group_lag(const struct sl_kafka_conf *kc, const char *group, const char *topic, int64_t *out,
		       struct sl_err *err);

/* Checks a kafka: section as a producer and a consumer would use it, without connecting. */
int sl_kafka_check(const struct sl_kafka_conf *kc, struct sl_err *err);

/* The librdkafka sluice runs with, as "2.12.1" (for --version and bug reports). */
const char *sl_kafka_version(void);

/* ---- the one place librdkafka configurations are made ---- */

/* What a client's error callback saw. librdkafka treats an authentication or TLS failure as transient and retries
 * forever; the callback keeps the first one here so a caller stops at once with librdkafka's reason (which names the
 * broker) instead of minutes of silence. owner is the caller's: a client's opaque points at its watch, so a
 * rebalance callback finds its own object through it. */
struct sl_kafka_watch {
	void *owner;
	char brokers[256];
	char protocol[16];
	_Atomic int fatal;         /* 0, or SL_EAUTH once an authentication or TLS failure was seen */
	char why[512];
	char last[512];            /* the last error of any kind but "all brokers down", for timeouts */
	bool dropped;              /* a broker closed the connection (__TRANSPORT) */
};

enum sl_kafka_role {
	SL_KAFKA_PRODUCER, /* idempotent, acks=all, the byte-capped queue, compression, linger */
	SL_KAFKA_CONSUMER, /* manual commits, earliest, cooperative-sticky, small prefetch */
	SL_KAFKA_ADMIN     /* metadata, watermarks, committed offsets, a reader or group member a caller tunes */
};

/* Builds a librdkafka configuration from the kafka: section: brokers, client id, the role's settings, security
 * (SASL, TLS, client certificates; secrets from the environment), then the raw properties; our logger and an error
 * callback that records authentication/TLS failures into w (initialised here; may be NULL; it must outlive the
 * client; it becomes the configuration's opaque). Every librdkafka client of sluice is made from this. Callers may
 * set more properties on *out before rd_kafka_new(). */
struct rd_kafka_conf_s;
int sl_kafka_conf_build(const struct sl_kafka_conf *kc, enum sl_kafka_role role, struct sl_kafka_watch *w,
			struct rd_kafka_conf_s **out, struct sl_err *err);
/* Sets one property on a configuration from sl_kafka_conf_build (the message redacts secrets). */
int sl_kafka_conf_set(struct rd_kafka_conf_s *c, const char *key, const char *value, struct sl_err *err);
/* Partition count of topic (0 when absent) from a client built as above: asks for up to 10 s while the brokers do
 * not answer, stops at once on an authentication or TLS failure (SL_EAUTH, "cannot authenticate to BROKERS: why").
 * Callers use it as the first call of a new client, to fail fast on wrong credentials. */
struct rd_kafka_s;
int sl_kafka_client_partitions(struct rd_kafka_s *rk, struct sl_kafka_watch *w, const char *topic, int *out,
			       struct sl_err *err);

/* The same lag from one long-lived client (for callers that ask often). */
struct sl_kafka_lagger;
int sl_kafka_lagger_open(const struct sl_kafka_conf *kc, const char *group, const char *topic,
			 struct sl_kafka_lagger **out, struct sl_err *err);
int sl_kafka_lagger_get(struct sl_kafka_lagger *l, int64_t *out, struct sl_err *err);
void sl_kafka_lagger_close(struct sl_kafka_lagger *l);


/* ---- the topic store: the log backend the config chose, and everything others ask of it ---- */

/* A partition as the inspection calls see it. */
struct sl_topic_part {
	int32_t partition;
	int64_t low, high;      /* watermarks; -1 when unknown */
	int64_t committed;      /* a group's next offset; -1 when the group has none */
	int64_t commit_ms;      /* when the group last committed (embedded); 0 when the backend does not say (Kafka) */
	int32_t leader;         /* broker id; -1 where there are no brokers (embedded) */
	char isr[64];           /* in-sync replicas "1,2,3"; empty on the embedded log */
};
struct sl_topic_desc {
	char name[256];
	int nparts;
	struct sl_topic_part *parts; /* malloc'd; sl_topic_descs_free */
	int64_t messages;            /* sum of high - low */
};
struct sl_topic_broker {
	int32_t id;
	char host[256];
	int port;
};
/* Called per message by browse; false stops. The message lives only during the call. */
typedef bool (*sl_topic_browse_fn)(void *ctx, const struct sl_msg *m);

/* A topic configuration entry as the operator sees it (Kafka's DescribeConfigs). */
struct sl_topic_config {
	char name[128];
	char value[256];     /* "" with is_null */
	bool is_null, is_default, read_only, sensitive;
};

struct sl_topic_store;
struct sl_topic_store_ops {
	/* Creates topic when absent (an existing one is kept as it is). replication <= 0: the broker's default. */
	int (*ensure_topic)(struct sl_topic_store *s, const char *topic, int partitions, int replication,
			    struct sl_err *err);
	/* Partition count; SL_ENOTFOUND when the topic does not exist. */
	int (*partitions)(struct sl_topic_store *s, const char *topic, int *out, struct sl_err *err);
	int (*watermarks)(struct sl_topic_store *s, const char *topic, int32_t partition, int64_t *low, int64_t *high,
			  struct sl_err *err);
	int (*producer)(struct sl_topic_store *s, sl_delivery_fn fn, void *ctx, struct sl_producer **out,
			struct sl_err *err);
	int (*consumer)(struct sl_topic_store *s, const char *group, const char *topic, struct sl_consumer **out,
			struct sl_err *err);
	/* The group's lag over every partition of topic (high watermark - committed; uncommitted from the low
	 * watermark), without joining the group. One long-lived client per store, so callers may ask often. */
	int (*group_lag)(struct sl_topic_store *s, const char *group, const char *topic, int64_t *out,
			 struct sl_err *err);
	/* Fills committed (and commit_ms) of parts[0..n) (their partition numbers set) for group on topic. */
	int (*committed)(struct sl_topic_store *s, const char *group, const char *topic, struct sl_topic_part *parts,
			 int n, struct sl_err *err);
	/* Up to max topics (those named in first[] first, so a busy cluster's others cannot crowd them out), with
	 * partitions and watermarks; brokers (up to maxb; NULL allowed) where the backend has any. */
	int (*describe)(struct sl_topic_store *s, const char *const *first, size_t nfirst, size_t max,
			struct sl_topic_desc **out, size_t *nout, struct sl_topic_broker *brokers, size_t maxb,
			size_t *nbrokers, struct sl_err *err);
	/* Messages of topic (partition < 0: every partition) from offset, or from the first message at or after
	 * from_ms when from_ms >= 0; at most max_scan messages and about timeout_ms, each to fn until it says stop.
	 * *next gets the offset after the last message seen. */
	int (*browse)(struct sl_topic_store *s, const char *topic, int32_t partition, int64_t offset, int64_t from_ms,
		      int64_t max_scan, int timeout_ms, sl_topic_browse_fn fn, void *ctx, int64_t *next,
		      struct sl_err *err);
	/* Optional (NULL where it would cost a fetch per call, as on Kafka): the timestamp of the message at offset
	 * (for how old the oldest unprocessed record is). SL_ENOTFOUND when there is none. */
	int (*timestamp_at)(struct sl_topic_store *s, const char *topic, int32_t partition, int64_t offset,
			    int64_t *ts_ms, struct sl_err *err);
	void (*close)(struct sl_topic_store *s);
	/* How many consumers are members of group now (an offset reset is refused under them); -1 where the backend
	 * cannot know (the embedded log has no group coordinator). */
	int (*group_members)(struct sl_topic_store *s, const char *group, int *members, struct sl_err *err);
	/* Sets group's committed offsets on topic: each parts[i].partition to parts[i].committed. */
	int (*commit_group)(struct sl_topic_store *s, const char *group, const char *topic,
			    const struct sl_topic_part *parts, int n, struct sl_err *err);
	/* Raises topic's partition count to total (never lowers it: SL_EINVAL). Keys hash over the new count from
	 * then on, as on Kafka. SL_ENOTFOUND for an unknown topic. */
	int (*add_partitions)(struct sl_topic_store *s, const char *topic, int total, struct sl_err *err);
	/* topic's configuration (*out malloc'd, *n entries; the caller frees *out). */
	int (*configs)(struct sl_topic_store *s, const char *topic, struct sl_topic_config **out, size_t *n,
		       struct sl_err *err);
	/* Sets one configuration entry (value NULL: back to its default). A name or value the backend does not take
	 * is SL_EINVAL with the reason (the embedded log takes retention.ms alone). */
	int (*set_config)(struct sl_topic_store *s, const char *topic, const char *name, const char *value,
			  struct sl_err *err);
	/* ---- exactly-once stages (docs/processing.md); NULL where the backend has no transactions (embedded) ---- */
	/* A transactional producer under txn_id (stable across restarts of one processor, so a restart fences and
	 * aborts the transaction its predecessor left open). */
	int (*txn_producer)(struct sl_topic_store *s, const char *txn_id, sl_delivery_fn fn, void *ctx,
			    struct sl_producer **out, struct sl_err *err);
	/* A group consumer as consumer(), with flags (SL_CONSUME_*). */
	int (*consumer_ex)(struct sl_topic_store *s, const char *group, const char *topic, unsigned flags,
			   struct sl_consumer **out, struct sl_err *err);
	/* Creates a compacted topic (cleanup.policy=compact) when absent, as ensure_topic. */
	int (*ensure_compacted)(struct sl_topic_store *s, const char *topic, int partitions, int replication,
				struct sl_err *err);
	/* Every committed message of one partition, from its start to the high watermark it has when the call
	 * starts (waiting, up to timeout_ms, for transactions still open below it to end), in order, to fn (value
	 * NULL: a tombstone). */
	int (*read_partition)(struct sl_topic_store *s, const char *topic, int32_t partition, int timeout_ms,
			      int (*fn)(void *ctx, const void *k, size_t klen, const void *v, size_t vlen), void *ctx,
			      struct sl_err *err);
};

enum {
	SL_CONSUME_COMMITTED = 1, /* isolation.level=read_committed: only committed transactions' messages */
};

struct sl_topic_store {
	const struct sl_topic_store_ops *ops;
	const char *backend;            /* "kafka" | "embedded", for messages and the console */
	const char *where;              /* brokers or the log's path, for messages */
	struct sl_embedded_log *state;  /* source cursors (always embedded); NULL with SL_TOPIC_INSPECT on Kafka */
	int64_t message_timeout_ms;     /* how long the log may hold an unacknowledged message (ingest's patience) */
	/* The consumer holds every partition from its creation (no group rebalance), so it can be positioned (seek)
	 * before its first poll: a sink that keeps offsets with its rows starts it there. */
	bool consumer_owns_all;
};

enum {
	SL_TOPIC_INSPECT = 1, /* a reader (the console): do not create data_dir or the embedded log; SL_ENOTFOUND
			       * ("not there yet") while no pipeline has made it */
};

/* Opens the backend the config chose: Kafka when kafka (the top-level `kafka:` section) is given, else the embedded
 * log in data_dir. The embedded log is also opened beside Kafka for source cursors (unless SL_TOPIC_INSPECT). */
int sl_topic_store_open(const struct sl_cfg_node *kafka, const char *data_dir, int flags, struct sl_topic_store **out,
			struct sl_err *err);
void sl_topic_store_close(struct sl_topic_store *s);
/* "kafka" | "embedded": the backend sl_topic_store_open would choose, for display before it is open. */
const char *sl_topic_backend_name(const struct sl_cfg_node *kafka);
/* Source cursors (beside the log, whatever the backend). */
int sl_topic_cursor_get(struct sl_topic_store *s, const char *name, char *out, size_t outsz, struct sl_err *err);
int sl_topic_cursor_put(struct sl_topic_store *s, const char *name, const char *value, struct sl_err *err);
void sl_topic_descs_free(struct sl_topic_desc *d, size_t n);

/* The backends' stores (callers use sl_topic_store_open). kafka: the bound `kafka:` section. */
int sl_kafka_store_open(const struct sl_cfg_node *kafka, struct sl_topic_store **out, struct sl_err *err);
int sl_embedded_store_open(struct sl_embedded_log *log, bool own, struct sl_topic_store **out, struct sl_err *err);

#endif
