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
int32_t sl_partition_for_key(const void *key, size_t len, int partitions);


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

/* The same lag from one long-lived client (for callers that ask often). */
struct sl_kafka_lagger;
int sl_kafka_lagger_open(const struct sl_kafka_conf *kc, const char *group, const char *topic,
			 struct sl_kafka_lagger **out, struct sl_err *err);
int sl_kafka_lagger_get(struct sl_kafka_lagger *l, int64_t *out, struct sl_err *err);
void sl_kafka_lagger_close(struct sl_kafka_lagger *l);

#endif
