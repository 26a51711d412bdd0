/* The Kafka backend of topic.h over librdkafka: an idempotent producer whose delivery callback fires only on the
 * broker's acks=all, a high-level group consumer with explicit offset commits and rebalance hooks, the admin call that
 * creates a topic and waits until the cluster's metadata shows it, and watermark/lag queries. It also owns the
 * `kafka:` section of sluice.yaml (sl_kafka_opts) and how those options become librdkafka properties; raw
 * `properties` are applied last so an operator can override anything we set.
 *
 * Choices:
 * - Partitioner murmur2_random: the Java client's default, so a key lands on the same partition as from Java clients
 *   and as sl_topic_partition_for_key() computes for the embedded log.
 * - The queue is capped in bytes (queue.buffering.max.kbytes, default 64 MiB, not librdkafka's 1 GiB); produce()
 *   blocks on QUEUE_FULL while serving delivery reports, so a full queue is backpressure, never a drop.
 * - message.timeout.ms defaults to 5 minutes: a broker outage shorter than that costs nothing but time, because
 *   librdkafka keeps retrying queued messages; after it, each message is reported failed to the delivery callback.
 * - The consumer uses the cooperative-sticky assignor (a rebalance revokes only the partitions that move) and handles
 *   eager protocols too, in case `properties` override the assignor. Commits go out asynchronously: the processor
 *   asks for one only after the sink has the rows, so a commit that is late or lost replays rows that are already
 *   written (upserts) and loses nothing; waiting a round trip per batch would cap the rate instead. Pending offsets
 *   are committed synchronously when partitions are revoked and when the consumer closes.
 * - Security (security_protocol, sasl_*, ssl_*): passwords come only from the environment (the *_env keys name the
 *   variables) and are never logged; raw `properties` may not carry secrets. librdkafka treats an authentication
 *   or TLS failure as transient and retries forever, which turns a wrong password into minutes of silence. Every
 *   client here records such failures from librdkafka's error callback (struct sl_kafka_watch), and the metadata calls
 *   every command starts with (ensure_topic and friends) return them at once as SL_EAUTH, with librdkafka's
 *   reason, which names the broker. */
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "core/assert.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "topic/topic.h"

#define COMP "kafka"

const struct sl_opt sl_kafka_opts[] = {
	{"brokers", SL_OPT_STRING, "127.0.0.1:9092", offsetof(struct sl_kafka_conf, brokers),
	 "Bootstrap brokers, comma-separated host:port."},
	{"client_id", SL_OPT_STRING, "sluice", offsetof(struct sl_kafka_conf, client_id),
	 "client.id sent to the brokers (shows in broker logs and quotas)."},
	{"compression", SL_OPT_ENUM, "lz4", offsetof(struct sl_kafka_conf, compression),
	 "Producer compression codec.", .choices = "none|gzip|snappy|lz4|zstd"},
	{"linger", SL_OPT_DURATION, "5ms", offsetof(struct sl_kafka_conf, linger_ms),
	 "How long the producer waits to fill a batch (linger.ms).", .min = 0, .max = 900000},
	{"buffer_max", SL_OPT_SIZE, "64MiB", offsetof(struct sl_kafka_conf, buffer_max),
	 "Cap in bytes on messages queued in the producer and not yet acknowledged; a full buffer blocks the "
	 "producer (backpressure).", .min = 1024, .max = (int64_t)2097151 * 1024},
	{"message_max", SL_OPT_SIZE, "1MB", offsetof(struct sl_kafka_conf, message_max),
	 "Largest message the producer sends (message.max.bytes); keep it at or below the broker's limit.",
	 .min = 1000, .max = 1000000000},
	{"message_timeout", SL_OPT_DURATION, "5m", offsetof(struct sl_kafka_conf, message_timeout_ms),
	 "How long a message may wait for the broker's ack (retrying through outages) before it is reported failed.",
	 .min = 1000, .max = 2147483647},
	{"commit_interval", SL_OPT_DURATION, "1s", offsetof(struct sl_kafka_conf, commit_interval_ms),
	 "How often the processor's consumer sends the offsets of the batches written since the last commit, all "
	 "partitions in one request. A crash replays at most this much more (upserts absorb it); a rebalance, a drain "
	 "and a clean stop commit at once. 0 commits after every batch, which costs the broker more CPU than serving "
	 "the fetches.",
	 .min = 0, .max = 60000},
	{"metadata_refresh", SL_OPT_DURATION, "2s", offsetof(struct sl_kafka_conf, metadata_refresh_ms),
	 "How often every client refreshes the metadata of its topics. When a broker dies, the controller moves its "
	 "leaderships after the brokers' broker.session.timeout.ms, without the partitions ever lacking a leader, so "
	 "clients find the new leaders only at this refresh: a broker loss stalls a partition for about that timeout "
	 "plus up to this interval. Partitions added to a topic are also found at it. Each refresh is one small "
	 "request per client.",
	 .min = 100, .max = 3600000},
	{"properties", SL_OPT_STRMAP, NULL, offsetof(struct sl_kafka_conf, properties),
	 "Raw librdkafka properties, applied last (they override everything above); secrets are refused here."},
	{"security_protocol", SL_OPT_ENUM, "plaintext", offsetof(struct sl_kafka_conf, security_protocol),
	 "How to talk to the brokers: plaintext, ssl (TLS), sasl_plaintext (SASL without TLS), sasl_ssl (SASL over TLS).",
	 .choices = "plaintext|ssl|sasl_plaintext|sasl_ssl"},
	{"sasl_mechanism", SL_OPT_ENUM, "PLAIN", offsetof(struct sl_kafka_conf, sasl_mechanism),
	 "SASL mechanism (security_protocol sasl_*). SCRAM with Kafka 4.x needs librdkafka 2.6.1 or newer.",
	 .choices = "PLAIN|SCRAM-SHA-256|SCRAM-SHA-512"},
	{"sasl_username", SL_OPT_STRING, NULL, offsetof(struct sl_kafka_conf, sasl_username),
	 "SASL user name (security_protocol sasl_*)."},
	{"sasl_password_env", SL_OPT_STRING, NULL, offsetof(struct sl_kafka_conf, sasl_password_env),
	 "Environment variable that holds the SASL password (the password is never read from the file)."},
	{"ssl_ca_location", SL_OPT_STRING, NULL, offsetof(struct sl_kafka_conf, ssl_ca_location),
	 "CA certificates (PEM file) that verify the brokers' certificates; default: the system's CA store."},
	{"ssl_certificate_location", SL_OPT_STRING, NULL, offsetof(struct sl_kafka_conf, ssl_certificate_location),
	 "Client certificate (PEM file) for brokers that require one (ssl.client.auth=required)."},
	{"ssl_key_location", SL_OPT_STRING, NULL, offsetof(struct sl_kafka_conf, ssl_key_location),
	 "Private key (PEM file) of the client certificate."},
	{"ssl_key_password_env", SL_OPT_STRING, NULL, offsetof(struct sl_kafka_conf, ssl_key_password_env),
	 "Environment variable that holds the passphrase of an encrypted ssl_key_location."},
	{"ssl_endpoint_identification", SL_OPT_ENUM, "https", offsetof(struct sl_kafka_conf, ssl_endpoint_identification),
	 "https: the broker's certificate must name the host it is reached by; none: only the chain is verified.",
	 .choices = "https|none"},
	{NULL},
};

static int64_t mono_ms(void)
{
	return sl_mono_ms();
}

static int map_err(rd_kafka_resp_err_t e)
{
	switch (e) {
	case RD_KAFKA_RESP_ERR_NO_ERROR: return 0;
	case RD_KAFKA_RESP_ERR__TIMED_OUT:
	case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
	case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT: return SL_ETIMEDOUT;
	case RD_KAFKA_RESP_ERR__QUEUE_FULL: return SL_EFULL;
	case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE: return SL_ETOOBIG;
	case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
	case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
	case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION: return SL_ENOTFOUND;
	case RD_KAFKA_RESP_ERR__PURGE_QUEUE:
	case RD_KAFKA_RESP_ERR__PURGE_INFLIGHT:
	case RD_KAFKA_RESP_ERR__DESTROY: return SL_ECANCELED;
	case RD_KAFKA_RESP_ERR__INVALID_ARG: return SL_EINVAL;
	case RD_KAFKA_RESP_ERR__TRANSPORT:
	case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN: return SL_EIO;
	case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
	case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
	case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
	case RD_KAFKA_RESP_ERR__AUTHENTICATION: return SL_EAUTH;
	default: return SL_ESERVER;
	}
}

/* librdkafka's own log lines go through our logger, so one process has one log format. */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	enum sl_log_level l = level <= 3 ? SL_LOG_ERROR : level <= 4 ? SL_LOG_WARN : level <= 6 ? SL_LOG_INFO
										       : SL_LOG_DEBUG;
	if (l == SL_LOG_DEBUG && sl_log_get_level() > SL_LOG_DEBUG)
		return;
	sl_log(l, COMP, "%s client=%s", buf, rd_kafka_name(rk));
	(void)fac;
}

static const char *brokers_of(const struct sl_kafka_conf *kc)
{
	return kc && kc->brokers ? kc->brokers : "127.0.0.1:9092";
}

static void watch_init(struct sl_kafka_watch *w, void *owner, const struct sl_kafka_conf *kc)
{
	memset(w, 0, sizeof *w);
	w->owner = owner;
	snprintf(w->brokers, sizeof w->brokers, "%s", brokers_of(kc));
	snprintf(w->protocol, sizeof w->protocol, "%s", kc && kc->security_protocol ? kc->security_protocol : "plaintext");
}

/* Broker-down and similar errors are transient from librdkafka's point of view (it keeps retrying); say so once per
 * event at warn so an operator sees why delivery stalls. Authentication and TLS failures are not going to pass:
 * they are recorded for the caller to stop on. */
static void error_cb(rd_kafka_t *rk, int e, const char *reason, void *opaque)
{
	struct sl_kafka_watch *w = opaque;
	if (w) {
		if (e != RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || !*w->last)
			snprintf(w->last, sizeof w->last, "%s", reason);
		if (e == RD_KAFKA_RESP_ERR__TRANSPORT)
			w->dropped = true;
		if ((e == RD_KAFKA_RESP_ERR__AUTHENTICATION || e == RD_KAFKA_RESP_ERR__SSL ||
		     e == RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED) && !atomic_load(&w->fatal)) {
			snprintf(w->why, sizeof w->why, "%s", reason);
			atomic_store(&w->fatal, SL_EAUTH);
		}
	}
	if (e == RD_KAFKA_RESP_ERR__FATAL) {
		char buf[512];
		rd_kafka_resp_err_t fe = rd_kafka_fatal_error(rk, buf, sizeof buf);
		sl_error(COMP, "fatal producer error client=%s error=%s reason=\"%s\"", rd_kafka_name(rk),
			 rd_kafka_err2name(fe), buf);
		return;
	}
	sl_warn(COMP, "client=%s error=%s reason=\"%s\"", rd_kafka_name(rk), rd_kafka_err2name((rd_kafka_resp_err_t)e),
		reason);
}

/* librdkafka properties that hold secrets: never printed, never accepted from the file. */
static bool secret_property(const char *k)
{
	return strstr(k, "password") || strstr(k, "secret") || !strcmp(k, "ssl.key.pem") ||
	       !strcmp(k, "ssl_key") || !strcmp(k, "sasl.oauthbearer.config") || !strcmp(k, "ssl.keystore.location");
}

static int set(rd_kafka_conf_t *c, const char *k, const char *v, struct sl_err *err)
{
	char es[256];
	if (rd_kafka_conf_set(c, k, v, es, sizeof es) != RD_KAFKA_CONF_OK)
		return sl_err_set(err, SL_ECONFIG, "kafka: property %s=%s: %s", k, secret_property(k) ? "[redacted]" : v,
				  es);
	return 0;
}

/* A secret from the environment variable the config names; key is the config key, for the message. */
static int secret_from_env(const char *key, const char *var, const char **out, struct sl_err *err)
{
	const char *v = getenv(var);
	if (!v)
		return sl_err_set(err, SL_ECONFIG, "kafka.%s: environment variable %s is not set", key, var);
	if (!*v)
		return sl_err_set(err, SL_ECONFIG, "kafka.%s: environment variable %s is empty", key, var);
	*out = v;
	return 0;
}

static int readable(const char *key, const char *path, struct sl_err *err)
{
	if (access(path, R_OK) != 0)
		return sl_err_set(err, SL_ECONFIG, "kafka.%s: cannot read %s: %s", key, path, strerror(errno));
	return 0;
}

/* security_protocol, sasl_* and ssl_* as librdkafka properties, after checking they fit together. */
static int security_conf(rd_kafka_conf_t *c, const struct sl_kafka_conf *kc, struct sl_err *err)
{
	const char *proto = kc->security_protocol ? kc->security_protocol : "plaintext";
	bool sasl = !strncmp(proto, "sasl_", 5);
	bool tls = !strcmp(proto, "ssl") || !strcmp(proto, "sasl_ssl");
	if (!sasl && (kc->sasl_username || kc->sasl_password_env))
		return sl_err_set(err, SL_ECONFIG, "kafka: sasl_username/sasl_password_env are set but security_protocol "
				  "is %s, so they would not be used; set security_protocol: sasl_ssl (or sasl_plaintext)",
				  proto);
	if (!tls && (kc->ssl_ca_location || kc->ssl_certificate_location || kc->ssl_key_location ||
		     kc->ssl_key_password_env))
		return sl_err_set(err, SL_ECONFIG, "kafka: ssl_* keys are set but security_protocol is %s, so they would "
				  "not be used; set security_protocol: ssl (or sasl_ssl)", proto);
	int rc = set(c, "security.protocol", proto, err);
	if (rc)
		return rc;
	if (sasl) {
		const char *mech = kc->sasl_mechanism ? kc->sasl_mechanism : "PLAIN";
		if (!kc->sasl_username || !*kc->sasl_username || !kc->sasl_password_env)
			return sl_err_set(err, SL_ECONFIG, "kafka: security_protocol %s needs sasl_username and "
					  "sasl_password_env (the environment variable that holds the password)", proto);
		const char *pw = NULL;
		if ((rc = secret_from_env("sasl_password_env", kc->sasl_password_env, &pw, err)) ||
		    (rc = set(c, "sasl.mechanism", mech, err)) || (rc = set(c, "sasl.username", kc->sasl_username, err)) ||
		    (rc = set(c, "sasl.password", pw, err)))
			return rc;
		static atomic_bool warned;
		if (!strncmp(mech, "SCRAM", 5) && rd_kafka_version() < 0x020601ff && !atomic_exchange(&warned, true))
			sl_warn(COMP, "sasl_mechanism=%s with librdkafka %s: versions before 2.6.1 cannot do SCRAM with "
				"Kafka 4.x brokers (they fail as invalid credentials; librdkafka#4895); Kafka 3.x works",
				mech, rd_kafka_version_str());
	}
	if (tls) {
		if (kc->ssl_ca_location && ((rc = readable("ssl_ca_location", kc->ssl_ca_location, err)) ||
					    (rc = set(c, "ssl.ca.location", kc->ssl_ca_location, err))))
			return rc;
		if (!!kc->ssl_certificate_location != !!kc->ssl_key_location)
			return sl_err_set(err, SL_ECONFIG, "kafka: ssl_certificate_location and ssl_key_location go "
					  "together (a client certificate and its key)");
		if (kc->ssl_certificate_location &&
		    ((rc = readable("ssl_certificate_location", kc->ssl_certificate_location, err)) ||
		     (rc = readable("ssl_key_location", kc->ssl_key_location, err)) ||
		     (rc = set(c, "ssl.certificate.location", kc->ssl_certificate_location, err)) ||
		     (rc = set(c, "ssl.key.location", kc->ssl_key_location, err))))
			return rc;
		if (kc->ssl_key_password_env) {
			const char *kp = NULL;
			if ((rc = secret_from_env("ssl_key_password_env", kc->ssl_key_password_env, &kp, err)) ||
			    (rc = set(c, "ssl.key.password", kp, err)))
				return rc;
		}
		const char *eid = kc->ssl_endpoint_identification ? kc->ssl_endpoint_identification : "https";
		if ((rc = set(c, "ssl.endpoint.identification.algorithm", eid, err)))
			return rc;
	}
	return 0;
}


/* The common part of every client's configuration: brokers, client id, logging, then (producer) delivery settings,
 * then the raw properties. */
static int build_conf(const struct sl_kafka_conf *kc, enum sl_kafka_role role, rd_kafka_conf_t **out, struct sl_err *err)
{
	rd_kafka_conf_t *c = rd_kafka_conf_new();
	char num[32];
	int rc = set(c, "bootstrap.servers", kc && kc->brokers ? kc->brokers : "127.0.0.1:9092", err);
	if (!rc)
		rc = set(c, "client.id", kc && kc->client_id ? kc->client_id : "sluice", err);
	if (!rc)
		rc = set(c, "log.connection.close", "false", err);
	/* A broker's death is seen at once ("broker down" refresh), but then the metadata still names it the leader
	 * until the controller fences it (broker.session.timeout.ms); the new leader is elected in the same step, so
	 * the partition never lacks one and librdkafka's fast refresh (for leaderless partitions) never fires. The
	 * clients find it at their periodic refresh: librdkafka's 5 min default stalled the stream that long, our
	 * former 10 s made a broker_kill cost 12-20 s. The same refresh finds partitions added to a topic. */
	snprintf(num, sizeof num, "%" PRId64, kc && kc->metadata_refresh_ms > 0 ? kc->metadata_refresh_ms : 2000);
	if (!rc)
		rc = set(c, "topic.metadata.refresh.interval.ms", num, err);
	/* A request queued for a broker that died before it was sent waits there until this timeout, and an
	 * idempotent producer moves a partition to its new leader only once the old leader's requests are settled:
	 * at librdkafka's 60 s (30 s with the registry's message.timeout.ms) a produce waited for the dead broker to
	 * come back instead of going to the new leader. A broker that answers nothing for 10 s is down for us. */
	if (!rc)
		rc = set(c, "socket.timeout.ms", "10000", err);
	if (!rc && role == SL_KAFKA_PRODUCER) {
		rc = set(c, "enable.idempotence", "true", err);
		if (!rc)
			rc = set(c, "acks", "all", err);
		if (!rc)
			rc = set(c, "partitioner", "murmur2_random", err);
		if (!rc)
			rc = set(c, "compression.codec", kc && kc->compression ? kc->compression : "lz4", err);
		int64_t kb = kc && kc->buffer_max > 0 ? kc->buffer_max / 1024 : 64 * 1024;
		if (kb < 1)
			kb = 1;
		snprintf(num, sizeof num, "%" PRId64, kb);
		if (!rc)
			rc = set(c, "queue.buffering.max.kbytes", num, err);
		/* The byte cap is the one that matters; the message-count cap must not bite first. */
		if (!rc)
			rc = set(c, "queue.buffering.max.messages", "2147483647", err);
		snprintf(num, sizeof num, "%" PRId64, kc && kc->linger_ms >= 0 ? kc->linger_ms : 5);
		if (!rc)
			rc = set(c, "linger.ms", num, err);
		snprintf(num, sizeof num, "%" PRId64, kc && kc->message_timeout_ms > 0 ? kc->message_timeout_ms : 300000);
		if (!rc)
			rc = set(c, "message.timeout.ms", num, err);
		if (!rc && kc && kc->message_max > 0) {
			snprintf(num, sizeof num, "%" PRId64, kc->message_max);
			rc = set(c, "message.max.bytes", num, err);
		}
	} else if (!rc && role == SL_KAFKA_CONSUMER) {
		rc = set(c, "enable.auto.commit", "false", err);
		if (!rc)
			rc = set(c, "enable.auto.offset.store", "false", err);
		if (!rc)
			rc = set(c, "auto.offset.reset", "earliest", err);
		if (!rc)
			rc = set(c, "partition.assignment.strategy", "cooperative-sticky", err);
		/* Keep the prefetch queue small (the processor bounds memory in bytes too) and refill it at once: with
		 * librdkafka's default fetch.queue.backoff.ms (1 s) a full queue idles the fetcher for a second after
		 * every refill, which capped a drain at ~70k records/s with the CPU 90 % idle; 5 ms gives ~600k. */
		if (!rc)
			rc = set(c, "queued.max.messages.kbytes", "4096", err);
		if (!rc)
			rc = set(c, "max.partition.fetch.bytes", "524288", err);
		if (!rc && rd_kafka_version() >= 0x020200ff) /* the property came in librdkafka 2.2.0 */
			rc = set(c, "fetch.queue.backoff.ms", "5", err);
		/* A member killed without leaving holds its partitions until the session times out; librdkafka's 45 s
		 * default stalls a restarted processor that long. 10 s (heartbeats every 3 s) still rides out a GC
		 * pause or a slow broker. `properties` can override both. */
		if (!rc)
			rc = set(c, "session.timeout.ms", "10000", err);
		if (!rc)
			rc = set(c, "heartbeat.interval.ms", "3000", err);
	}
	if (!rc && kc)
		rc = security_conf(c, kc, err);
	for (size_t i = 0; !rc && kc && i < kc->properties.n; i++) {
		if (secret_property(kc->properties.k[i]))
			rc = sl_err_set(err, SL_ECONFIG, "kafka.properties.%s: secrets are not read from the config file; "
					"use kafka.sasl_password_env / kafka.ssl_key_password_env (environment) or key "
					"files", kc->properties.k[i]);
		else
			rc = set(c, kc->properties.k[i], kc->properties.v[i], err);
	}
	if (rc) {
		rd_kafka_conf_destroy(c);
		return rc;
	}
	rd_kafka_conf_set_log_cb(c, log_cb);
	rd_kafka_conf_set_error_cb(c, error_cb);
	*out = c;
	return 0;
}

static int new_client(rd_kafka_type_t type, rd_kafka_conf_t *c, rd_kafka_t **out, struct sl_err *err)
{
	char es[512];
	rd_kafka_t *rk = rd_kafka_new(type, c, es, sizeof es);
	if (!rk) {
		rd_kafka_conf_destroy(c);
		return sl_err_set(err, SL_ECONFIG, "kafka: cannot create client: %s", es);
	}
	*out = rk;
	return 0;
}

int sl_kafka_conf_build(const struct sl_kafka_conf *kc, enum sl_kafka_role role, struct sl_kafka_watch *w,
			rd_kafka_conf_t **out, struct sl_err *err)
{
	int rc = build_conf(kc, role, out, err);
	if (rc)
		return rc;
	if (w) {
		watch_init(w, NULL, kc);
		rd_kafka_conf_set_opaque(*out, w);
	}
	return 0;
}

int sl_kafka_conf_set(rd_kafka_conf_t *c, const char *key, const char *value, struct sl_err *err)
{
	return set(c, key, value, err);
}

/* ---- producer ---- */

struct kprod {
	struct sl_producer base;
	struct sl_kafka_watch w;
	rd_kafka_t *rk;
	int64_t in_flight; /* enqueued, not yet reported; touched only on the caller's thread */
};

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	struct kprod *p = ((struct sl_kafka_watch *)opaque)->owner;
	(void)rk;
	p->in_flight--;
	if (!p->base.on_delivery)
		return;
	int rc = map_err(m->err);
	/* Idempotence guarantees the message is persisted only with an offset; without one it is not acked. */
	if (!rc && m->offset < 0)
		rc = SL_EPROTO;
	char msg[300];
	const char *em = NULL;
	if (rc) {
		snprintf(msg, sizeof msg, "kafka: delivery to %s [%" PRId32 "] failed: %s", rd_kafka_topic_name(m->rkt),
			 m->partition, m->err ? rd_kafka_err2str(m->err) : "no offset in the ack");
		em = msg;
	}
	p->base.on_delivery(p->base.ctx, m->_private, rc, em, m->partition, m->offset);
}

static int kp_produce(struct sl_producer *bp, const struct sl_msg *m, void *opaque, int timeout_ms,
		      struct sl_err *err)
{
	struct kprod *p = (struct kprod *)bp;
	int64_t deadline = mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	bool warned = false;
	for (;;) {
		rd_kafka_headers_t *hdrs = NULL;
		if (m->n_headers) {
			hdrs = rd_kafka_headers_new(m->n_headers);
			for (size_t i = 0; i < m->n_headers; i++)
				rd_kafka_header_add(hdrs, m->headers[i].key, -1, m->headers[i].value,
						    (ssize_t)m->headers[i].value_len);
		}
		rd_kafka_resp_err_t e = rd_kafka_producev(
			p->rk, RD_KAFKA_V_TOPIC(m->topic),
			RD_KAFKA_V_PARTITION(m->partition >= 0 ? m->partition : RD_KAFKA_PARTITION_UA),
			RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(m->key, m->key_len),
			RD_KAFKA_V_VALUE((void *)m->value, m->value_len), RD_KAFKA_V_TIMESTAMP(m->timestamp_ms),
			RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
		if (!e) {
			p->in_flight++;
			return 0;
		}
		if (hdrs) /* ownership passes to librdkafka only on success */
			rd_kafka_headers_destroy(hdrs);
		if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
			return sl_err_set(err, map_err(e), "kafka: produce to %s: %s", m->topic, rd_kafka_err2str(e));
		int64_t left = deadline - mono_ms();
		if (left <= 0)
			return sl_err_set(err, SL_EFULL,
					  "kafka: produce to %s: producer buffer full (buffer_max) for %d ms; %" PRId64
					  " messages await the broker's ack",
					  m->topic, timeout_ms, p->in_flight);
		if (!warned) {
			sl_debug(COMP, "producer buffer full, waiting topic=%s in_flight=%" PRId64, m->topic, p->in_flight);
			warned = true;
		}
		/* Serving delivery reports is what frees room in the queue. */
		rd_kafka_poll(p->rk, left < 50 ? (int)left : 50);
	}
}

static int kp_poll(struct sl_producer *bp, int timeout_ms)
{
	struct kprod *p = (struct kprod *)bp;
	return rd_kafka_poll(p->rk, timeout_ms);
}

static int kp_flush(struct sl_producer *bp, int timeout_ms, struct sl_err *err)
{
	struct kprod *p = (struct kprod *)bp;
	rd_kafka_resp_err_t e = rd_kafka_flush(p->rk, timeout_ms);
	if (e == RD_KAFKA_RESP_ERR__TIMED_OUT || p->in_flight > 0)
		return sl_err_set(err, SL_ETIMEDOUT, "kafka: flush: %" PRId64 " messages not acknowledged after %d ms",
				  p->in_flight, timeout_ms);
	if (e)
		return sl_err_set(err, map_err(e), "kafka: flush: %s", rd_kafka_err2str(e));
	return 0;
}

static int64_t kp_in_flight(struct sl_producer *bp)
{
	return ((struct kprod *)bp)->in_flight;
}

/* Unflushed messages are dropped without callbacks: the caller flushes first when it wants them. */
static void kp_destroy(struct sl_producer *bp)
{
	struct kprod *p = (struct kprod *)bp;
	if (!p)
		return;
	if (p->in_flight > 0)
		sl_warn(COMP, "producer closed with %" PRId64 " messages not acknowledged", p->in_flight);
	p->base.on_delivery = NULL;
	rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
	rd_kafka_poll(p->rk, 0);
	rd_kafka_destroy(p->rk);
	free(p);
}

static const struct sl_producer_ops kafka_producer_ops = {
	.produce = kp_produce,
	.poll = kp_poll,
	.flush = kp_flush,
	.in_flight = kp_in_flight,
	.destroy = kp_destroy,
};

/* A producer with the delivery callback and the watch; txn_id: a transactional one (its timeouts set, transactions
 * not yet initialised). */
static int kprod_new(const struct sl_kafka_conf *kc, const char *txn_id, const struct sl_producer_ops *ops,
		     sl_delivery_fn fn, void *ctx, struct kprod **out, struct sl_err *err);

int sl_kafka_producer(const struct sl_kafka_conf *kc, sl_delivery_fn fn, void *ctx, struct sl_producer **out,
		      struct sl_err *err)
{
	struct kprod *p;
	int rc = kprod_new(kc, NULL, &kafka_producer_ops, fn, ctx, &p, err);
	if (rc)
		return rc;
	*out = &p->base;
	return 0;
}

/* ---- consumer ---- */

struct kcons;

struct kcons {
	struct sl_consumer base;
	struct sl_kafka_watch w;
	rd_kafka_t *rk;
	char *topic;
	rd_kafka_message_t **held; /* messages returned by the last poll, destroyed at the next */
	size_t nheld, capheld;
	struct sl_header *hdrs;    /* headers of the held messages, one array for all */
	size_t caphdrs;
	/* Offsets asked to be committed. Commits go out asynchronously (a synchronous round trip per batch would
	 * cap the processor's rate) and at most every commit_interval_ms (kafka.commit_interval), all partitions in
	 * one request: the broker appends every commit to __consumer_offsets, and one request per batch and
	 * partition cost it more CPU than serving the fetches. A synchronous commit of these settles them when partitions are revoked, when the lag
	 * is asked and when the consumer closes, so a clean handover, a drain or a shutdown replays nothing; a crash
	 * replays at most the interval's batches more (the sink's writes are upserts). */
	struct pending_commit {
		int32_t partition;
		int64_t offset;
		bool dirty;  /* not yet committed synchronously */
		bool unsent; /* not yet in any commit request */
	} *pc;
	size_t npc, cappc;
	int64_t last_commit_ms, commit_interval_ms;
	/* What the processor last asked for (kc_pause). librdkafka keeps a partition's pause across a revoke and a
	 * later assignment of it, so newly assigned partitions are set to this, not left as they were. */
	bool paused;
};

/* Commits pending offsets (of the partitions in parts, or all when parts is NULL). settle: every offset not yet
 * committed synchronously, committed synchronously (a revoke or the close; a failure is only warned about, as those
 * partitions are leaving). Otherwise the offsets not yet in any request, asynchronously or with sync synchronously;
 * a failure keeps them for the next try. */
static rd_kafka_resp_err_t commit_offsets(struct kcons *c, const rd_kafka_topic_partition_list_t *parts, bool settle,
					  bool sync)
{
	sync = sync || settle;
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)(c->npc ? c->npc : 1));
	for (size_t i = 0; i < c->npc; i++) {
		if (!(settle ? c->pc[i].dirty : c->pc[i].unsent))
			continue;
		bool want = !parts;
		for (int k = 0; parts && k < parts->cnt; k++)
			if (parts->elems[k].partition == c->pc[i].partition && !strcmp(parts->elems[k].topic, c->topic))
				want = true;
		if (!want)
			continue;
		rd_kafka_topic_partition_list_add(l, c->topic, c->pc[i].partition)->offset = c->pc[i].offset;
		c->pc[i].unsent = false;
		if (sync)
			c->pc[i].dirty = false;
	}
	rd_kafka_resp_err_t e = l->cnt ? rd_kafka_commit(c->rk, l, sync ? 0 : 1) : RD_KAFKA_RESP_ERR_NO_ERROR;
	if (e && settle)
		sl_warn(COMP, "final commit topic=%s partitions=%d failed: %s", c->topic, l->cnt, rd_kafka_err2str(e));
	/* Not taken (a rebalance under way, the coordinator moving): keep them for the next try, or for the
	 * synchronous commit at revoke or close. */
	for (int k = 0; e && !settle && k < l->cnt; k++)
		for (size_t i = 0; i < c->npc; i++)
			if (c->pc[i].partition == l->elems[k].partition && c->pc[i].offset == l->elems[k].offset)
				c->pc[i].unsent = c->pc[i].dirty = true;
	rd_kafka_topic_partition_list_destroy(l);
	c->last_commit_ms = mono_ms();
	return e;
}

static void hook_each(struct kcons *c, const rd_kafka_topic_partition_list_t *parts, bool assign)
{
	void (*fn)(void *, const char *, int32_t) = assign ? c->base.on_assign : c->base.on_revoke;
	for (int i = 0; fn && i < parts->cnt; i++)
		fn(c->base.ctx, parts->elems[i].topic, parts->elems[i].partition);
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t e, rd_kafka_topic_partition_list_t *parts,
			 void *opaque)
{
	struct kcons *c = ((struct sl_kafka_watch *)opaque)->owner;
	/* NULL once the member has left the group (a close during a rebalance): the partitions go as in eager. */
	const char *proto = rd_kafka_rebalance_protocol(rk);
	bool coop = proto && strcmp(proto, "COOPERATIVE") == 0;
	if (e == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
		rd_kafka_error_t *ke = NULL;
		rd_kafka_resp_err_t re = 0;
		if (coop)
			ke = rd_kafka_incremental_assign(rk, parts);
		else
			re = rd_kafka_assign(rk, parts);
		if (ke || re) {
			sl_error(COMP, "assign failed group topic=%s error=%s", c->topic,
				 ke ? rd_kafka_error_string(ke) : rd_kafka_err2str(re));
			if (ke)
				rd_kafka_error_destroy(ke);
		}
		/* A partition paused (backpressure) when it was revoked comes back paused, while the processor, which
		 * resumed "all" of an empty assignment meanwhile, believes it running: the stream would stop for good
		 * (seen when a broker holding the group coordinator was killed during a pause). */
		rd_kafka_resp_err_t pe = c->paused ? rd_kafka_pause_partitions(rk, parts)
						   : rd_kafka_resume_partitions(rk, parts);
		if (pe)
			sl_warn(COMP, "%s of the assigned partitions failed topic=%s error=%s",
				c->paused ? "pause" : "resume", c->topic, rd_kafka_err2str(pe));
		sl_info(COMP, "assigned topic=%s partitions=%d protocol=%s%s", c->topic, parts->cnt,
			coop ? "cooperative" : "eager", c->paused ? " (paused)" : "");
		hook_each(c, parts, true);
	} else {
		/* Revoke hooks first, so the processor can flush and commit while it still owns the partitions. */
		hook_each(c, parts, false);
		commit_offsets(c, parts, true, true);
		sl_info(COMP, "revoked topic=%s partitions=%d reason=%s", c->topic, parts->cnt, rd_kafka_err2name(e));
		if (coop) {
			rd_kafka_error_t *ke = rd_kafka_incremental_unassign(rk, parts);
			if (ke)
				rd_kafka_error_destroy(ke);
		} else {
			rd_kafka_assign(rk, NULL);
		}
	}
}

static void release_held(struct kcons *c)
{
	for (size_t i = 0; i < c->nheld; i++)
		rd_kafka_message_destroy(c->held[i]);
	c->nheld = 0;
}

static int kc_poll(struct sl_consumer *bc, struct sl_msg *out, size_t max, int timeout_ms, struct sl_err *err)
{
	struct kcons *c = (struct kcons *)bc;
	release_held(c);
	if (mono_ms() - c->last_commit_ms >= c->commit_interval_ms) {
		rd_kafka_resp_err_t ce = commit_offsets(c, NULL, false, false);
		if (ce)
			sl_warn(COMP, "commit topic=%s failed: %s", c->topic, rd_kafka_err2str(ce));
	}
	if (max > c->capheld) {
		rd_kafka_message_t **h = realloc(c->held, max * sizeof *h);
		if (!h)
			return sl_err_set(err, SL_ENOMEM, "out of memory");
		c->held = h;
		c->capheld = max;
	}
	int64_t deadline = mono_ms() + timeout_ms;
	size_t n = 0, nh = 0;
	while (n < max) {
		int64_t left = n ? 0 : deadline - mono_ms();
		rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, left > 0 ? (int)left : 0);
		if (!m && !n && atomic_load(&c->w.fatal))
			return sl_err_set(err, SL_EAUTH, "kafka: consume %s from %s: %s", c->topic, c->w.brokers,
					  c->w.why);
		if (!m)
			break;
		if (m->err) {
			if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
				rd_kafka_message_destroy(m);
				continue;
			}
			int code = map_err(m->err);
			char why[256];
			snprintf(why, sizeof why, "%s", rd_kafka_message_errstr(m));
			const char *tn = m->rkt ? rd_kafka_topic_name(m->rkt) : c->topic;
			int32_t part = m->partition;
			rd_kafka_message_destroy(m);
			if (n)
				break; /* hand back what we have; the error comes again or passes */
			/* Transport errors are transient for a consumer (librdkafka reconnects); report them as EAGAIN. */
			if (code == SL_EIO || code == SL_ETIMEDOUT) {
				sl_warn(COMP, "consumer topic=%s error=\"%s\"", tn, why);
				return 0;
			}
			return sl_err_set(err, code, "kafka: consume %s [%" PRId32 "]: %s", tn, part, why);
		}
		c->held[c->nheld++] = m;
		size_t hn = 0;
		rd_kafka_headers_t *hs = NULL;
		if (!c->base.skip_headers && !rd_kafka_message_headers(m, &hs) && hs)
			hn = rd_kafka_header_cnt(hs);
		nh += hn;
		n++;
		/* After the first message, take what is already queued (poll with 0) up to max: a deadline here
		 * would cut a batch to one message when the caller asks for no waiting. */
	}
	/* Headers: one array for the whole poll, filled after the count is known so pointers stay stable. */
	if (nh > c->caphdrs) {
		struct sl_header *h = realloc(c->hdrs, nh * sizeof *h);
		if (!h)
			return sl_err_set(err, SL_ENOMEM, "out of memory");
		c->hdrs = h;
		c->caphdrs = nh;
	}
	size_t hi = 0;
	for (size_t i = 0; i < n; i++) {
		rd_kafka_message_t *m = c->held[i];
		struct sl_msg *o = &out[i];
		memset(o, 0, sizeof *o);
		o->topic = rd_kafka_topic_name(m->rkt);
		o->partition = m->partition;
		o->offset = m->offset;
		o->timestamp_ms = rd_kafka_message_timestamp(m, NULL);
		o->key = m->key;
		o->key_len = m->key_len;
		o->value = m->payload;
		o->value_len = m->len;
		rd_kafka_headers_t *hs = NULL;
		if (!c->base.skip_headers && !rd_kafka_message_headers(m, &hs) && hs) {
			o->headers = &c->hdrs[hi];
			const char *name;
			const void *val;
			size_t vl;
			for (size_t j = 0; !rd_kafka_header_get_all(hs, j, &name, &val, &vl); j++) {
				c->hdrs[hi].key = name;
				c->hdrs[hi].value = val;
				c->hdrs[hi].value_len = vl;
				hi++;
				o->n_headers++;
			}
		}
	}
	return (int)n;
}

static int kc_commit(struct sl_consumer *bc, const char *topic, int32_t partition, int64_t next_offset,
		     struct sl_err *err)
{
	struct kcons *c = (struct kcons *)bc;
	size_t i = 0;
	SL_ASSERT(next_offset > 0 && partition >= 0); /* one past a record that was read */
	while (i < c->npc && c->pc[i].partition != partition)
		i++;
	if (i == c->npc) {
		if (c->npc == c->cappc) {
			size_t cap = c->cappc ? c->cappc * 2 : 16;
			struct pending_commit *n = realloc(c->pc, cap * sizeof *n);
			if (!n)
				return sl_err_set(err, SL_ENOMEM, "out of memory");
			c->pc = n;
			c->cappc = cap;
		}
		c->npc++;
	}
	c->pc[i] = (struct pending_commit){partition, next_offset, true, true};
	if (mono_ms() - c->last_commit_ms < c->commit_interval_ms)
		return 0;
	rd_kafka_resp_err_t e = commit_offsets(c, NULL, false, false);
	if (e)
		return sl_err_set(err, map_err(e), "kafka: commit %s [%" PRId32 "] offset %" PRId64 ": %s", topic,
				  partition, next_offset, rd_kafka_err2str(e));
	return 0;
}

static int kc_seek(struct sl_consumer *bc, const char *topic, int32_t partition, int64_t offset, struct sl_err *err)
{
	struct kcons *c = (struct kcons *)bc;
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(l, topic, partition)->offset = offset;
	rd_kafka_error_t *ke = rd_kafka_seek_partitions(c->rk, l, 10000);
	rd_kafka_resp_err_t e = ke ? rd_kafka_error_code(ke) : l->elems[0].err;
	if (ke)
		rd_kafka_error_destroy(ke);
	rd_kafka_topic_partition_list_destroy(l);
	if (e)
		return sl_err_set(err, map_err(e), "kafka: seek %s [%" PRId32 "] to %" PRId64 ": %s", topic, partition,
				  offset, rd_kafka_err2str(e));
	return 0;
}

/* Sum over parts of (high watermark - committed); a partition with no commit counts from its low watermark. The
 * whole question gets budget_ms: the committed offsets and each partition's watermarks are one round trip each,
 * to the group's coordinator and to each partition's leader, and a leader that has just died keeps its requests
 * queued until their timeout (the metadata names it until the controller fences it). */
static int64_t lag_of(rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts, int budget_ms, struct sl_err *err)
{
	int64_t deadline = mono_ms() + budget_ms;
	rd_kafka_resp_err_t e = rd_kafka_committed(rk, parts, budget_ms);
	if (e)
		return sl_err_set(err, map_err(e), "kafka: committed offsets: %s", rd_kafka_err2str(e));
	int64_t lag = 0;
	for (int i = 0; i < parts->cnt; i++) {
		rd_kafka_topic_partition_t *tp = &parts->elems[i];
		int64_t lo, hi, left = deadline - mono_ms();
		e = left > 0 ? rd_kafka_query_watermark_offsets(rk, tp->topic, tp->partition, &lo, &hi, (int)left)
			     : RD_KAFKA_RESP_ERR__TIMED_OUT;
		if (e)
			return sl_err_set(err, map_err(e), "kafka: watermarks of %s [%" PRId32 "]: %s", tp->topic,
					  tp->partition, rd_kafka_err2str(e));
		int64_t from = tp->offset >= 0 ? tp->offset : lo;
		if (hi > from)
			lag += hi - from;
	}
	return lag;
}

static int64_t kc_lag(struct sl_consumer *bc, struct sl_err *err)
{
	struct kcons *c = (struct kcons *)bc;
	/* The lag is counted from the broker's committed offsets: settle what is held back first, or a drain would
	 * wait out the commit interval to see its last batches. */
	rd_kafka_resp_err_t e = commit_offsets(c, NULL, false, true);
	if (e)
		sl_warn(COMP, "commit topic=%s failed: %s", c->topic, rd_kafka_err2str(e));
	rd_kafka_topic_partition_list_t *parts = NULL;
	e = rd_kafka_assignment(c->rk, &parts);
	if (e)
		return sl_err_set(err, map_err(e), "kafka: assignment of %s: %s", c->topic, rd_kafka_err2str(e));
	int64_t lag = lag_of(c->rk, parts, 10000, err);
	rd_kafka_topic_partition_list_destroy(parts);
	return lag;
}

static void kc_destroy(struct sl_consumer *bc)
{
	struct kcons *c = (struct kcons *)bc;
	if (!c)
		return;
	release_held(c);
	commit_offsets(c, NULL, true, true);
	/* Leaves the group cleanly (revoke hooks run from here) so the others rebalance at once, not after the
	 * session timeout. */
	rd_kafka_consumer_close(c->rk);
	rd_kafka_destroy(c->rk);
	free(c->held);
	free(c->hdrs);
	free(c->pc);
	free(c->topic);
	free(c);
}

static int kc_pause(struct sl_consumer *bc, bool paused, struct sl_err *err)
{
	struct kcons *c = (struct kcons *)bc;
	rd_kafka_topic_partition_list_t *parts = NULL;
	rd_kafka_resp_err_t e = rd_kafka_assignment(c->rk, &parts);
	if (!e)
		e = paused ? rd_kafka_pause_partitions(c->rk, parts) : rd_kafka_resume_partitions(c->rk, parts);
	int n = parts ? parts->cnt : 0;
	if (parts)
		rd_kafka_topic_partition_list_destroy(parts);
	if (e)
		return sl_err_set(err, map_err(e), "kafka: %s %s: %s", paused ? "pause" : "resume", c->topic,
				  rd_kafka_err2str(e));
	c->paused = paused;
	sl_info(COMP, "%s topic=%s partitions=%d", paused ? "paused" : "resumed", c->topic, n);
	return 0;
}

static const struct sl_consumer_ops kafka_consumer_ops = {
	.pause = kc_pause,
	.poll = kc_poll,
	.commit = kc_commit,
	.seek = kc_seek,
	.lag = kc_lag,
	.destroy = kc_destroy,
};

static int kafka_consumer(const struct sl_kafka_conf *kc, const char *group, const char *topic, unsigned flags,
			  struct sl_consumer **out, struct sl_err *err);

int sl_kafka_consumer(const struct sl_kafka_conf *kc, const char *group, const char *topic,
		      struct sl_consumer **out, struct sl_err *err)
{
	return kafka_consumer(kc, group, topic, 0, out, err);
}

static int kafka_consumer(const struct sl_kafka_conf *kc, const char *group, const char *topic, unsigned flags,
			  struct sl_consumer **out, struct sl_err *err)
{
	if (!group || !*group || !topic || !*topic)
		return sl_err_set(err, SL_EINVAL, "kafka: a consumer needs a group and a topic");
	struct kcons *c = calloc(1, sizeof *c);
	if (!c || !(c->topic = strdup(topic))) {
		free(c);
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	}
	rd_kafka_conf_t *conf = NULL;
	int rc = build_conf(kc, SL_KAFKA_CONSUMER, &conf, err);
	if (!rc && (rc = set(conf, "group.id", group, err)) != 0)
		rd_kafka_conf_destroy(conf);
	/* read_committed also makes librdkafka ask for stable offsets (KIP-447): a partition's committed offset is
	 * not handed over while a transaction that commits it is still open. */
	if (!rc && (flags & SL_CONSUME_COMMITTED) && (rc = set(conf, "isolation.level", "read_committed", err)) != 0)
		rd_kafka_conf_destroy(conf);
	if (rc) {
		free(c->topic);
		free(c);
		return rc;
	}
	rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
	watch_init(&c->w, c, kc);
	rd_kafka_conf_set_opaque(conf, &c->w);
	rc = new_client(RD_KAFKA_CONSUMER, conf, &c->rk, err);
	if (rc) {
		free(c->topic);
		free(c);
		return rc;
	}
	c->base.ops = &kafka_consumer_ops;
	c->commit_interval_ms = kc ? kc->commit_interval_ms : 1000;
	rd_kafka_poll_set_consumer(c->rk);
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(l, topic, RD_KAFKA_PARTITION_UA);
	rd_kafka_resp_err_t e = rd_kafka_subscribe(c->rk, l);
	rd_kafka_topic_partition_list_destroy(l);
	if (e) {
		rc = sl_err_set(err, map_err(e), "kafka: subscribe group %s to %s: %s", group, topic,
				rd_kafka_err2str(e));
		c->base.ops->destroy(&c->base);
		return rc;
	}
	*out = &c->base;
	return 0;
}

/* ---- transactions (exactly-once stages) ---- */

/* A transactional call's error: SL_EAGAIN when the transaction can be aborted and the work done again (a rebalance
 * fenced the group generation, a coordinator moved), SL_EIO when the producer is fenced for good or broken. */
static int txn_error(rd_kafka_error_t *e, const char *what, struct sl_err *err)
{
	int code = rd_kafka_error_is_fatal(e) ? SL_EIO : SL_EAGAIN;
	sl_err_set(err, code, "kafka: %s: %s%s", what, rd_kafka_error_string(e),
		   rd_kafka_error_is_fatal(e) ? " (fatal)" : rd_kafka_error_txn_requires_abort(e) ? " (abort)" : "");
	rd_kafka_error_destroy(e);
	return code;
}

static int kp_begin(struct sl_producer *bp, struct sl_err *err)
{
	rd_kafka_error_t *e = rd_kafka_begin_transaction(((struct kprod *)bp)->rk);
	return e ? txn_error(e, "begin transaction", err) : 0;
}

static int kp_send_offsets(struct sl_producer *bp, struct sl_consumer *cons, const char *topic,
			   const struct sl_topic_part *parts, int n, struct sl_err *err)
{
	struct kprod *p = (struct kprod *)bp;
	struct kcons *c = (struct kcons *)cons;
	if (n <= 0)
		return 0;
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
	for (int i = 0; i < n; i++)
		rd_kafka_topic_partition_list_add(l, topic, parts[i].partition)->offset = parts[i].committed;
	rd_kafka_consumer_group_metadata_t *md = rd_kafka_consumer_group_metadata(c->rk);
	rd_kafka_error_t *e = md ? rd_kafka_send_offsets_to_transaction(p->rk, l, md, 30000) : NULL;
	rd_kafka_topic_partition_list_destroy(l);
	if (!md)
		return sl_err_set(err, SL_EINVAL, "kafka: send offsets of %s: the consumer has no group", topic);
	rd_kafka_consumer_group_metadata_destroy(md);
	return e ? txn_error(e, "send offsets to the transaction", err) : 0;
}

static int kp_commit(struct sl_producer *bp, struct sl_err *err)
{
	rd_kafka_error_t *e = rd_kafka_commit_transaction(((struct kprod *)bp)->rk, 60000);
	return e ? txn_error(e, "commit transaction", err) : 0;
}

static int kp_abort(struct sl_producer *bp, struct sl_err *err)
{
	rd_kafka_error_t *e = rd_kafka_abort_transaction(((struct kprod *)bp)->rk, 30000);
	return e ? txn_error(e, "abort transaction", err) : 0;
}

static const struct sl_producer_ops kafka_txn_producer_ops = {
	.produce = kp_produce,
	.poll = kp_poll,
	.flush = kp_flush,
	.in_flight = kp_in_flight,
	.destroy = kp_destroy,
	.begin = kp_begin,
	.send_offsets = kp_send_offsets,
	.commit = kp_commit,
	.abort = kp_abort,
};

/* The transaction timeout bounds how long a transaction left open by a killed processor that never comes back
 * holds read_committed readers of its partitions (a restart under the same id aborts it at once). */
#define TXN_TIMEOUT_MS "10000"

static int kprod_new(const struct sl_kafka_conf *kc, const char *txn_id, const struct sl_producer_ops *ops,
		     sl_delivery_fn fn, void *ctx, struct kprod **out, struct sl_err *err)
{
	struct kprod *p = calloc(1, sizeof *p);
	if (!p)
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	rd_kafka_conf_t *c;
	int rc = build_conf(kc, SL_KAFKA_PRODUCER, &c, err);
	if (rc) {
		free(p);
		return rc;
	}
	/* librdkafka refuses a message timeout above the transaction's. */
	if (txn_id && ((rc = set(c, "transactional.id", txn_id, err)) ||
		       (rc = set(c, "transaction.timeout.ms", TXN_TIMEOUT_MS, err)) ||
		       (rc = set(c, "message.timeout.ms", TXN_TIMEOUT_MS, err)))) {
		rd_kafka_conf_destroy(c);
		free(p);
		return rc;
	}
	rd_kafka_conf_set_dr_msg_cb(c, dr_cb);
	watch_init(&p->w, p, kc);
	rd_kafka_conf_set_opaque(c, &p->w);
	if ((rc = new_client(RD_KAFKA_PRODUCER, c, &p->rk, err))) {
		free(p);
		return rc;
	}
	p->base.ops = ops;
	p->base.on_delivery = fn;
	p->base.ctx = ctx;
	*out = p;
	return 0;
}

int sl_kafka_txn_producer(const struct sl_kafka_conf *kc, const char *txn_id, sl_delivery_fn fn, void *ctx,
			  struct sl_producer **out, struct sl_err *err)
{
	struct kprod *p;
	int rc = kprod_new(kc, txn_id, &kafka_txn_producer_ops, fn, ctx, &p, err);
	if (rc)
		return rc;
	/* Fences an earlier producer with this id and aborts the transaction it left open. */
	rd_kafka_error_t *e = rd_kafka_init_transactions(p->rk, 60000);
	if (e) {
		rc = txn_error(e, "init transactions", err);
		sl_err_prefix(err, "transactional.id %s: ", txn_id);
		kp_destroy(&p->base);
		return rc;
	}
	*out = &p->base;
	return 0;
}

/* ---- admin and metadata ---- */

/* The error for a client that could not get metadata: an authentication/TLS failure its error callback saw, or a
 * timeout with the last error librdkafka reported (and a hint when that looks like a protocol mismatch). */
static int connect_error(struct sl_kafka_watch *w, rd_kafka_resp_err_t e, const char *what, int waited_ms,
			 struct sl_err *err)
{
	const char *brokers = w->brokers;
	if (atomic_load(&w->fatal))
		return sl_err_set(err, SL_EAUTH, "kafka: %s: cannot authenticate to %s: %s", what, brokers, w->why);
	char hint[200] = "";
	/* The usual causes: nothing listens there, or the listener wants another protocol (a plaintext client on a
	 * SASL or TLS listener is dropped without a word; librdkafka only sees the brokers go down). */
	snprintf(hint, sizeof hint, "; is a broker listening there, and does its listener take security_protocol %s%s?",
		 w->protocol, w->dropped ? " (the connection was dropped)" : "");
	return sl_err_set(err, map_err(e), "kafka: %s: no answer from %s in %d s: %s%s%s%s%s", what, brokers,
			  (waited_ms + 999) / 1000, rd_kafka_err2str(e), *w->last ? " (last error: " : "", w->last,
			  *w->last ? ")" : "", hint);
}

/* Partition count of topic as the cluster's metadata says, 0 when absent (or still without leaders). Keeps asking
 * for up to 10 s while the brokers do not answer, but stops at once on an authentication or TLS failure. */
static int topic_partitions(rd_kafka_t *rk, struct sl_kafka_watch *w, const char *topic, int *out, bool need_leaders,
			    struct sl_err *err)
{
	/* All topics, not just this one: a metadata request naming a topic makes a broker with
	 * auto.create.topics.enable create it with the broker's default partition count. */
	const struct rd_kafka_metadata *md = NULL;
	int64_t t0 = mono_ms();
	rd_kafka_resp_err_t e;
	for (;;) {
		e = rd_kafka_metadata(rk, 1, NULL, &md, 1000);
		rd_kafka_poll(rk, 0); /* serves the error callback */
		if (!e)
			break;
		if (atomic_load(&w->fatal) || mono_ms() - t0 >= 10000 ||
		    (e != RD_KAFKA_RESP_ERR__TIMED_OUT && e != RD_KAFKA_RESP_ERR__TRANSPORT &&
		     e != RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)) {
			char what[300];
			snprintf(what, sizeof what, "metadata for topic %s", topic);
			return connect_error(w, e, what, (int)(mono_ms() - t0), err);
		}
	}
	*out = 0;
	for (int i = 0; i < md->topic_cnt; i++) {
		const rd_kafka_metadata_topic_t *t = &md->topics[i];
		if (strcmp(t->topic, topic) || t->err)
			continue;
		int n = t->partition_cnt;
		for (int j = 0; need_leaders && j < t->partition_cnt; j++)
			if (t->partitions[j].leader < 0 || t->partitions[j].err)
				n = 0;
		*out = n;
	}
	rd_kafka_metadata_destroy(md);
	return 0;
}

/* w must outlive the client. */
static int admin_client(const struct sl_kafka_conf *kc, rd_kafka_t **rk, struct sl_kafka_watch *w, struct sl_err *err)
{
	rd_kafka_conf_t *c = NULL;
	int rc = build_conf(kc, SL_KAFKA_ADMIN, &c, err);
	if (rc)
		return rc;
	watch_init(w, NULL, kc);
	rd_kafka_conf_set_opaque(c, w);
	return new_client(RD_KAFKA_PRODUCER, c, rk, err);
}

int sl_kafka_client_partitions(rd_kafka_t *rk, struct sl_kafka_watch *w, const char *topic, int *out,
			       struct sl_err *err)
{
	return topic_partitions(rk, w, topic, out, false, err);
}

int sl_kafka_ensure_topic(const struct sl_kafka_conf *kc, const char *topic, int partitions, int replication,
			  struct sl_err *err)
{
	if (!topic || !*topic || partitions < 1)
		return sl_err_set(err, SL_EINVAL, "kafka: ensure topic %s: need a name and partitions >= 1",
				  topic ? topic : "(null)");
	rd_kafka_t *rk = NULL;
	struct sl_kafka_watch w;
	int rc = admin_client(kc, &rk, &w, err);
	if (rc)
		return rc;
	int have = 0;
	rc = topic_partitions(rk, &w, topic, &have, false, err);
	if (!rc && have == 0) {
		char es[256];
		rd_kafka_NewTopic_t *nt =
			rd_kafka_NewTopic_new(topic, partitions, replication > 0 ? replication : -1, es, sizeof es);
		if (!nt) {
			rd_kafka_destroy(rk);
			return sl_err_set(err, SL_EINVAL, "kafka: topic %s: %s", topic, es);
		}
		rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
		rd_kafka_AdminOptions_t *ao = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
		rd_kafka_AdminOptions_set_operation_timeout(ao, 30000, es, sizeof es);
		rd_kafka_AdminOptions_set_request_timeout(ao, 30000, es, sizeof es);
		rd_kafka_CreateTopics(rk, &nt, 1, ao, q);
		rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 35000);
		if (!ev) {
			rc = sl_err_set(err, SL_ETIMEDOUT, "kafka: create topic %s: no answer from %s in 35 s", topic,
					kc && kc->brokers ? kc->brokers : "127.0.0.1:9092");
		} else if (rd_kafka_event_error(ev)) {
			rc = sl_err_set(err, map_err(rd_kafka_event_error(ev)), "kafka: create topic %s: %s", topic,
					rd_kafka_event_error_string(ev));
		} else {
			size_t n;
			const rd_kafka_topic_result_t **tr =
				rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
			for (size_t i = 0; i < n; i++) {
				rd_kafka_resp_err_t te = rd_kafka_topic_result_error(tr[i]);
				if (te && te != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
					rc = sl_err_set(err, map_err(te), "kafka: create topic %s (%d partitions, "
							"replication %d): %s", topic, partitions, replication,
							rd_kafka_topic_result_error_string(tr[i]));
				else if (!te)
					sl_info(COMP, "created topic=%s partitions=%d replication=%d", topic, partitions,
						replication);
			}
		}
		if (ev)
			rd_kafka_event_destroy(ev);
		rd_kafka_AdminOptions_destroy(ao);
		rd_kafka_NewTopic_destroy(nt);
		rd_kafka_queue_destroy(q);
	}
	/* The create call returns when the controller accepted it; producers and consumers need every partition to
	 * have a leader in the metadata they fetch, which comes a little later. */
	int64_t deadline = mono_ms() + 30000;
	while (!rc) {
		rc = topic_partitions(rk, &w, topic, &have, true, err);
		if (rc || have > 0)
			break;
		if (mono_ms() > deadline) {
			rc = sl_err_set(err, SL_ETIMEDOUT, "kafka: topic %s not visible with leaders after 30 s", topic);
			break;
		}
		struct timespec ts = {0, 100 * 1000000};
		nanosleep(&ts, NULL);
	}
	if (!rc && have != partitions)
		sl_warn(COMP, "topic=%s exists with partitions=%d, config asks for %d; keeping the existing topic", topic,
			have, partitions);
	rd_kafka_destroy(rk);
	return rc;
}

int sl_kafka_partitions(const struct sl_kafka_conf *kc, const char *topic, int *out, struct sl_err *err)
{
	rd_kafka_t *rk = NULL;
	struct sl_kafka_watch w;
	int rc = admin_client(kc, &rk, &w, err);
	if (rc)
		return rc;
	rc = topic_partitions(rk, &w, topic, out, false, err);
	if (!rc && *out == 0)
		rc = sl_err_set(err, SL_ENOTFOUND, "kafka: topic %s does not exist", topic);
	rd_kafka_destroy(rk);
	return rc;
}

int sl_kafka_watermarks(const struct sl_kafka_conf *kc, const char *topic, int32_t partition, int64_t *low,
			int64_t *high, struct sl_err *err)
{
	rd_kafka_t *rk = NULL;
	struct sl_kafka_watch w;
	int rc = admin_client(kc, &rk, &w, err);
	if (rc)
		return rc;
	rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(rk, topic, partition, low, high, 10000);
	rd_kafka_poll(rk, 0);
	if (e && atomic_load(&w.fatal))
		rc = connect_error(&w, e, "watermarks", 10000, err);
	else if (e)
		rc = sl_err_set(err, map_err(e), "kafka: watermarks of %s [%" PRId32 "]: %s", topic, partition,
				rd_kafka_err2str(e));
	rd_kafka_destroy(rk);
	return rc;
}

int sl_kafka_group_lag(const struct sl_kafka_conf *kc, const char *group, const char *topic, int64_t *out,
		       struct sl_err *err)
{
	int n = 0;
	int rc = sl_kafka_partitions(kc, topic, &n, err);
	if (rc)
		return rc;
	rd_kafka_conf_t *c = NULL;
	struct sl_kafka_watch w;
	watch_init(&w, NULL, kc);
	rc = build_conf(kc, SL_KAFKA_CONSUMER, &c, err);
	if (!rc && (rc = set(c, "group.id", group, err)) != 0)
		rd_kafka_conf_destroy(c);
	if (!rc)
		rd_kafka_conf_set_opaque(c, &w);
	rd_kafka_t *rk = NULL;
	if (!rc)
		rc = new_client(RD_KAFKA_CONSUMER, c, &rk, err);
	if (rc)
		return rc;
	rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(n);
	for (int i = 0; i < n; i++)
		rd_kafka_topic_partition_list_add(parts, topic, i);
	int64_t lag = lag_of(rk, parts, 10000, err);
	rd_kafka_topic_partition_list_destroy(parts);
	rd_kafka_destroy(rk); /* never subscribed: nothing to close */
	if (lag < 0)
		return (int)lag;
	*out = lag;
	return 0;
}

/* A long-lived client for the group-wide lag: the processor asks once a second while idle, and a new client per
 * question (threads, connections, a metadata round trip) would churn the broker. Not subscribed, so it never joins
 * the group it reads. */
#define LAGGER_BUDGET_MS 1000

struct sl_kafka_lagger {
	struct sl_kafka_watch w;
	rd_kafka_t *rk;
	char *group, *topic;
};

int sl_kafka_lagger_open(const struct sl_kafka_conf *kc, const char *group, const char *topic,
			 struct sl_kafka_lagger **out, struct sl_err *err)
{
	struct sl_kafka_lagger *l = calloc(1, sizeof *l);
	if (!l)
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	rd_kafka_conf_t *c = NULL;
	int rc = build_conf(kc, SL_KAFKA_CONSUMER, &c, err);
	if (!rc && (rc = set(c, "group.id", group, err)) != 0)
		rd_kafka_conf_destroy(c);
	watch_init(&l->w, l, kc);
	if (!rc)
		rd_kafka_conf_set_opaque(c, &l->w);
	if (!rc)
		rc = new_client(RD_KAFKA_CONSUMER, c, &l->rk, err);
	l->group = strdup(group);
	l->topic = strdup(topic);
	if (!rc && (!l->group || !l->topic))
		rc = sl_err_set(err, SL_ENOMEM, "out of memory");
	if (rc) {
		sl_kafka_lagger_close(l);
		return rc;
	}
	*out = l;
	return 0;
}

int sl_kafka_lagger_get(struct sl_kafka_lagger *l, int64_t *out, struct sl_err *err)
{
	int n = 0;
	int rc = topic_partitions(l->rk, &l->w, l->topic, &n, false, err);
	if (rc)
		return rc;
	if (n == 0)
		return sl_err_set(err, SL_ENOTFOUND, "kafka: topic %s does not exist", l->topic);
	rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(n);
	for (int i = 0; i < n; i++)
		rd_kafka_topic_partition_list_add(parts, l->topic, i);
	/* The processor asks on its main loop (once a second while idle, and with each progress line): at 10 s a
	 * question, a dead partition leader stalled every partition's rows (the cluster broker_kill: 17 s). A late
	 * answer is only a gauge missed; the next question comes a second later. */
	int64_t lag = lag_of(l->rk, parts, LAGGER_BUDGET_MS, err);
	rd_kafka_topic_partition_list_destroy(parts);
	if (lag < 0)
		return (int)lag;
	*out = lag;
	return 0;
}

void sl_kafka_lagger_close(struct sl_kafka_lagger *l)
{
	if (!l)
		return;
	if (l->rk)
		rd_kafka_destroy(l->rk);
	free(l->group);
	free(l->topic);
	free(l);
}

int sl_kafka_check(const struct sl_kafka_conf *kc, struct sl_err *err)
{
	/* Building the client configuration runs every check a producer and a consumer would (security
	 * combinations, secrets in raw properties, properties librdkafka does not know), without connecting. */
	rd_kafka_conf_t *c = NULL;
	int rc = build_conf(kc, SL_KAFKA_PRODUCER, &c, err);
	if (rc)
		return rc;
	rd_kafka_conf_destroy(c);
	if ((rc = build_conf(kc, SL_KAFKA_CONSUMER, &c, err)))
		return rc;
	rd_kafka_conf_destroy(c);
	return 0;
}

const char *sl_kafka_version(void)
{
	return rd_kafka_version_str();
}

/* ---- the topic store (topic.h): Kafka ---- */

/* One metadata client for the store's life (describe, watermarks), one never-subscribed member per group whose
 * commits are asked (the console asks every few seconds), and the group-wide lag client: asking through new clients
 * each time would churn threads and connections on the brokers. */
struct kstore {
	struct sl_topic_store base;
	struct sl_kafka_conf kc;
	struct sl_kafka_watch mw;
	rd_kafka_t *meta;
	struct kgroup {
		char *group;
		struct sl_kafka_watch w;
		rd_kafka_t *rk;
	} *groups;
	size_t ngroups;
	struct sl_kafka_lagger *lagger;
	char *lag_group, *lag_topic;
};

static int ks_client(struct kstore *s, const char *group, struct sl_kafka_watch *w, rd_kafka_t **out,
		     struct sl_err *err)
{
	rd_kafka_conf_t *c = NULL;
	int rc = sl_kafka_conf_build(&s->kc, SL_KAFKA_ADMIN, w, &c, err);
	if (rc)
		return rc;
	if ((rc = set(c, "group.id", group, err)) || (rc = set(c, "enable.auto.commit", "false", err))) {
		rd_kafka_conf_destroy(c);
		return rc;
	}
	return new_client(RD_KAFKA_CONSUMER, c, out, err);
}

static int ks_meta(struct kstore *s, struct sl_err *err)
{
	return s->meta ? 0 : ks_client(s, "sluice-inspect", &s->mw, &s->meta, err);
}

static int ks_ensure_topic(struct sl_topic_store *bs, const char *topic, int partitions, int replication,
			   struct sl_err *err)
{
	return sl_kafka_ensure_topic(&((struct kstore *)bs)->kc, topic, partitions, replication, err);
}

static int ks_partitions(struct sl_topic_store *bs, const char *topic, int *out, struct sl_err *err)
{
	struct kstore *s = (struct kstore *)bs;
	int rc = ks_meta(s, err);
	if (!rc)
		rc = topic_partitions(s->meta, &s->mw, topic, out, false, err);
	if (!rc && *out == 0)
		rc = sl_err_set(err, SL_ENOTFOUND, "kafka: topic %s does not exist", topic);
	return rc;
}

static int ks_watermarks(struct sl_topic_store *bs, const char *topic, int32_t partition, int64_t *low,
			 int64_t *high, struct sl_err *err)
{
	struct kstore *s = (struct kstore *)bs;
	int rc = ks_meta(s, err);
	if (rc)
		return rc;
	rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(s->meta, topic, partition, low, high, 10000);
	rd_kafka_poll(s->meta, 0);
	if (e && atomic_load(&s->mw.fatal))
		return connect_error(&s->mw, e, "watermarks", 10000, err);
	if (e)
		return sl_err_set(err, map_err(e), "kafka: watermarks of %s [%" PRId32 "]: %s", topic, partition,
				  rd_kafka_err2str(e));
	return 0;
}

static int ks_producer(struct sl_topic_store *bs, sl_delivery_fn fn, void *ctx, struct sl_producer **out,
		       struct sl_err *err)
{
	return sl_kafka_producer(&((struct kstore *)bs)->kc, fn, ctx, out, err);
}

static int ks_consumer(struct sl_topic_store *bs, const char *group, const char *topic, struct sl_consumer **out,
		       struct sl_err *err)
{
	return sl_kafka_consumer(&((struct kstore *)bs)->kc, group, topic, out, err);
}

static int ks_group_lag(struct sl_topic_store *bs, const char *group, const char *topic, int64_t *out,
			struct sl_err *err)
{
	struct kstore *s = (struct kstore *)bs;
	if (s->lagger && (strcmp(s->lag_group, group) || strcmp(s->lag_topic, topic))) {
		sl_kafka_lagger_close(s->lagger);
		s->lagger = NULL;
	}
	if (!s->lagger) {
		free(s->lag_group);
		free(s->lag_topic);
		s->lag_group = strdup(group);
		s->lag_topic = strdup(topic);
		if (!s->lag_group || !s->lag_topic)
			return sl_err_set(err, SL_ENOMEM, "out of memory");
		int rc = sl_kafka_lagger_open(&s->kc, group, topic, &s->lagger, err);
		if (rc)
			return rc;
	}
	return sl_kafka_lagger_get(s->lagger, out, err);
}

static int ks_committed(struct sl_topic_store *bs, const char *group, const char *topic, struct sl_topic_part *parts,
			int n, struct sl_err *err)
{
	struct kstore *s = (struct kstore *)bs;
	struct kgroup *g = NULL;
	for (size_t i = 0; i < s->ngroups; i++)
		if (!strcmp(s->groups[i].group, group))
			g = &s->groups[i];
	if (!g) {
		struct kgroup *ng = realloc(s->groups, (s->ngroups + 1) * sizeof *ng);
		if (!ng)
			return sl_err_set(err, SL_ENOMEM, "out of memory");
		s->groups = ng;
		g = &ng[s->ngroups];
		memset(g, 0, sizeof *g);
		if (!(g->group = strdup(group)))
			return sl_err_set(err, SL_ENOMEM, "out of memory");
		int rc = ks_client(s, group, &g->w, &g->rk, err);
		if (rc) {
			free(g->group);
			return rc;
		}
		s->ngroups++;
	}
	if (n <= 0)
		return 0;
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
	for (int i = 0; i < n; i++)
		rd_kafka_topic_partition_list_add(l, topic, parts[i].partition);
	rd_kafka_resp_err_t e = rd_kafka_committed(g->rk, l, 5000);
	rd_kafka_poll(g->rk, 0);
	for (int i = 0; !e && i < l->cnt; i++) {
		parts[i].committed = l->elems[i].offset >= 0 ? l->elems[i].offset : -1;
		parts[i].commit_ms = 0;
	}
	rd_kafka_topic_partition_list_destroy(l);
	if (e && atomic_load(&g->w.fatal))
		return connect_error(&g->w, e, "committed offsets", 5000, err);
	if (e)
		return sl_err_set(err, map_err(e), "kafka: committed offsets of group %s on %s: %s", group, topic,
				  rd_kafka_err2str(e));
	return 0;
}

static void set_isr(struct sl_topic_part *pt, const rd_kafka_metadata_partition_t *mp)
{
	size_t o = 0;
	pt->isr[0] = 0;
	for (int i = 0; i < mp->isr_cnt && o + 12 < sizeof pt->isr; i++)
		o += (size_t)snprintf(pt->isr + o, sizeof pt->isr - o, "%s%" PRId32, i ? "," : "", mp->isrs[i]);
	pt->leader = mp->leader;
}

static rd_kafka_AdminOptions_t *admin_begin(struct kstore *s, rd_kafka_admin_op_t op, rd_kafka_queue_t **q);
static rd_kafka_event_t *admin_wait(struct kstore *s, rd_kafka_queue_t *q, const char *what, struct sl_err *err);

/* Every listed partition's earliest (low) or latest (high) offset in one ListOffsets admin request (librdkafka
 * sends one per leader), instead of a watermark query per partition: with a thousand topics on the cluster that is
 * the difference between a few round trips and a thousand, each round of the console's collector. A partition the
 * answer does not cover keeps -1. */
static void list_offsets(struct kstore *s, struct sl_topic_desc *ts, size_t n, bool latest)
{
	int total = 0;
	for (size_t i = 0; i < n; i++)
		total += ts[i].nparts;
	if (!total)
		return;
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(total);
	for (size_t i = 0; i < n; i++)
		for (int p = 0; p < ts[i].nparts; p++)
			rd_kafka_topic_partition_list_add(l, ts[i].name, ts[i].parts[p].partition)->offset =
				latest ? RD_KAFKA_OFFSET_SPEC_LATEST : RD_KAFKA_OFFSET_SPEC_EARLIEST;
	rd_kafka_queue_t *q;
	rd_kafka_AdminOptions_t *ao = admin_begin(s, RD_KAFKA_ADMIN_OP_LISTOFFSETS, &q);
	rd_kafka_ListOffsets(s->meta, l, ao, q);
	struct sl_err err = {0};
	rd_kafka_event_t *ev = admin_wait(s, q, "list offsets", &err);
	if (ev) {
		size_t cnt = 0, hint = 0;
		const rd_kafka_ListOffsetsResultInfo_t **infos =
			rd_kafka_ListOffsets_result_infos(rd_kafka_event_ListOffsets_result(ev), &cnt);
		for (size_t k = 0; k < cnt; k++) {
			const rd_kafka_topic_partition_t *tp = rd_kafka_ListOffsetsResultInfo_topic_partition(infos[k]);
			if (!tp || tp->err)
				continue;
			/* Answers come mostly in the order asked: look from the last topic matched. */
			for (size_t j = 0; j < n; j++) {
				size_t i = (hint + j) % n;
				if (strcmp(ts[i].name, tp->topic))
					continue;
				hint = i;
				for (int p = 0; p < ts[i].nparts; p++)
					if (ts[i].parts[p].partition == tp->partition) {
						if (latest)
							ts[i].parts[p].high = tp->offset;
						else
							ts[i].parts[p].low = tp->offset;
					}
				break;
			}
		}
		rd_kafka_event_destroy(ev);
	} else
		sl_warn(COMP, "%s", err.msg);
	rd_kafka_AdminOptions_destroy(ao);
	rd_kafka_queue_destroy(q);
	rd_kafka_topic_partition_list_destroy(l);
}

static int ks_describe(struct sl_topic_store *bs, const char *const *first, size_t nfirst, size_t max,
		       struct sl_topic_desc **out, size_t *nout, struct sl_topic_broker *brokers, size_t maxb,
		       size_t *nbrokers, struct sl_err *err)
{
	struct kstore *s = (struct kstore *)bs;
	int rc = ks_meta(s, err);
	if (rc)
		return rc;
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_resp_err_t e = rd_kafka_metadata(s->meta, 1, NULL, &md, 5000);
	rd_kafka_poll(s->meta, 0);
	if (e)
		return connect_error(&s->mw, e, "metadata", 5000, err);
	size_t nb = 0;
	for (int i = 0; brokers && i < md->broker_cnt && nb < maxb; i++, nb++) {
		brokers[nb].id = md->brokers[i].id;
		snprintf(brokers[nb].host, sizeof brokers[nb].host, "%s", md->brokers[i].host);
		brokers[nb].port = md->brokers[i].port;
	}
	if (nbrokers)
		*nbrokers = nb;
	struct sl_topic_desc *ts = calloc(max ? max : 1, sizeof *ts);
	size_t n = 0;
	for (int pass = 0; ts && pass < 2; pass++)
		for (int i = 0; i < md->topic_cnt && n < max; i++) {
			const rd_kafka_metadata_topic_t *mt = &md->topics[i];
			if (mt->topic[0] == '_' && mt->topic[1] == '_')
				continue; /* __consumer_offsets and friends */
			bool named = false;
			for (size_t q = 0; q < nfirst; q++)
				named |= first[q] && !strcmp(mt->topic, first[q]);
			if (named != (pass == 0))
				continue;
			struct sl_topic_desc *t = &ts[n++];
			snprintf(t->name, sizeof t->name, "%s", mt->topic);
			t->nparts = mt->partition_cnt;
			t->parts = calloc(t->nparts ? (size_t)t->nparts : 1, sizeof *t->parts);
			for (int p = 0; t->parts && p < mt->partition_cnt; p++) {
				struct sl_topic_part *pt = &t->parts[p];
				pt->partition = mt->partitions[p].id;
				pt->committed = -1;
				set_isr(pt, &mt->partitions[p]);
				pt->low = pt->high = -1;
			}
			if (!t->parts)
				t->nparts = 0;
		}
	rd_kafka_metadata_destroy(md);
	if (!ts)
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	list_offsets(s, ts, n, false);
	list_offsets(s, ts, n, true);
	for (size_t i = 0; i < n; i++)
		for (int p = 0; p < ts[i].nparts; p++) {
			struct sl_topic_part *pt = &ts[i].parts[p];
			if (pt->low < 0 || pt->high < 0)
				pt->low = pt->high = -1;
			else
				ts[i].messages += pt->high - pt->low;
		}
	*out = ts;
	*nout = n;
	return 0;
}

static int ks_browse(struct sl_topic_store *bs, const char *topic, int32_t partition, int64_t offset, int64_t from_ms,
		     int64_t max_scan, int timeout_ms, sl_topic_browse_fn fn, void *ctx, int64_t *next,
		     struct sl_err *err)
{
	struct kstore *s = (struct kstore *)bs;
	int np = 0;
	int rc = ks_partitions(bs, topic, &np, err);
	if (rc)
		return rc;
	struct sl_kafka_watch w;
	rd_kafka_t *rk = NULL;
	rd_kafka_conf_t *c = NULL;
	if ((rc = sl_kafka_conf_build(&s->kc, SL_KAFKA_ADMIN, &w, &c, err)))
		return rc;
	if ((rc = set(c, "group.id", "sluice-browser", err)) || (rc = set(c, "enable.auto.commit", "false", err)) ||
	    (rc = set(c, "enable.partition.eof", "true", err))) {
		rd_kafka_conf_destroy(c);
		return rc;
	}
	if ((rc = new_client(RD_KAFKA_CONSUMER, c, &rk, err)))
		return rc;
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(np);
	for (int i = 0; i < np; i++)
		if (partition < 0 || partition == i)
			rd_kafka_topic_partition_list_add(l, topic, i)->offset = from_ms >= 0 ? from_ms : offset;
	if (l->cnt == 0)
		rc = sl_err_set(err, SL_ENOTFOUND, "kafka: topic %s has no partition %" PRId32, topic, partition);
	rd_kafka_resp_err_t e = 0;
	/* By time: the broker maps the timestamp to each partition's first offset at or after it. */
	if (!rc && from_ms >= 0 && (e = rd_kafka_offsets_for_times(rk, l, 10000)))
		rc = sl_err_set(err, map_err(e), "kafka: offsets of %s at %" PRId64 " ms: %s", topic, from_ms,
				rd_kafka_err2str(e));
	if (!rc && (e = rd_kafka_assign(rk, l)))
		rc = sl_err_set(err, map_err(e), "kafka: assigning %s: %s", topic, rd_kafka_err2str(e));
	int nparts = l->cnt;
	rd_kafka_topic_partition_list_destroy(l);
	int64_t scanned = 0, last = offset, deadline = mono_ms() + timeout_ms;
	int eof = 0;
	bool go = true;
	while (!rc && go && scanned < max_scan && mono_ms() < deadline && eof < nparts) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
		if (!m) {
			if (atomic_load(&w.fatal))
				rc = connect_error(&w, RD_KAFKA_RESP_ERR__AUTHENTICATION, "browse", 0, err);
			continue;
		}
		if (m->err) {
			if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
				eof++;
			rd_kafka_message_destroy(m);
			continue;
		}
		scanned++;
		if (m->offset + 1 > last)
			last = m->offset + 1;
		rd_kafka_timestamp_type_t tt;
		struct sl_msg msg = {.topic = topic, .partition = m->partition, .offset = m->offset,
				     .timestamp_ms = rd_kafka_message_timestamp(m, &tt), .key = m->key,
				     .key_len = m->key_len, .value = m->payload, .value_len = m->len};
		/* Headers too (a dead letter's reason and original coordinates are there): the first 32, pointing
		 * into the message, which lives until after the callback. */
		struct sl_header hs[32];
		rd_kafka_headers_t *rh = NULL;
		if (!rd_kafka_message_headers(m, &rh) && rh) {
			const char *hn;
			const void *hv;
			size_t hl;
			for (size_t j = 0; msg.n_headers < 32 && !rd_kafka_header_get_all(rh, j, &hn, &hv, &hl); j++)
				hs[msg.n_headers++] = (struct sl_header){hn, hv ? hv : "", hv ? hl : 0};
			msg.headers = hs;
		}
		go = fn(ctx, &msg);
		rd_kafka_message_destroy(m);
	}
	if (next)
		*next = last;
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	return rc;
}

static void ks_close(struct sl_topic_store *bs)
{
	struct kstore *s = (struct kstore *)bs;
	for (size_t i = 0; i < s->ngroups; i++) {
		rd_kafka_destroy(s->groups[i].rk); /* never subscribed: nothing to close */
		free(s->groups[i].group);
	}
	free(s->groups);
	if (s->meta)
		rd_kafka_destroy(s->meta);
	sl_kafka_lagger_close(s->lagger);
	free(s->lag_group);
	free(s->lag_topic);
	sl_embedded_close(s->base.state);
	sl_opt_free(sl_kafka_opts, &s->kc);
	free(s);
}

/* One admin request on the inspector's client: waits up to 15 s for its result event (NULL with *err set). */
/* Options and a result queue for one admin request on the metadata handle: the broker is given 10 s, admin_wait
 * waits 15 for the answer. */
static rd_kafka_AdminOptions_t *admin_begin(struct kstore *s, rd_kafka_admin_op_t op, rd_kafka_queue_t **q)
{
	char es[256];
	*q = rd_kafka_queue_new(s->meta);
	rd_kafka_AdminOptions_t *ao = rd_kafka_AdminOptions_new(s->meta, op);
	rd_kafka_AdminOptions_set_request_timeout(ao, 10000, es, sizeof es);
	return ao;
}

static rd_kafka_event_t *admin_wait(struct kstore *s, rd_kafka_queue_t *q, const char *what, struct sl_err *err)
{
	rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 15000);
	if (!ev) {
		sl_err_set(err, SL_ETIMEDOUT, "kafka: %s: no answer from %s in 15 s", what,
			   s->kc.brokers ? s->kc.brokers : "127.0.0.1:9092");
		return NULL;
	}
	if (rd_kafka_event_error(ev)) {
		sl_err_set(err, map_err(rd_kafka_event_error(ev)), "kafka: %s: %s", what, rd_kafka_event_error_string(ev));
		rd_kafka_event_destroy(ev);
		return NULL;
	}
	return ev;
}

static int ks_group_members(struct sl_topic_store *bs, const char *group, int *members, struct sl_err *err)
{
	struct kstore *s = (struct kstore *)bs;
	int rc = ks_meta(s, err);
	if (rc)
		return rc;
	char what[300];
	snprintf(what, sizeof what, "describe group %s", group);
	rd_kafka_queue_t *q;
	rd_kafka_AdminOptions_t *ao = admin_begin(s, RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS, &q);
	const char *groups[1] = {group};
	rd_kafka_DescribeConsumerGroups(s->meta, groups, 1, ao, q);
	rd_kafka_event_t *ev = admin_wait(s, q, what, err);
	rc = ev ? 0 : err->code;
	if (ev) {
		size_t n = 0;
		const rd_kafka_ConsumerGroupDescription_t **d =
			rd_kafka_DescribeConsumerGroups_result_groups(rd_kafka_event_DescribeConsumerGroups_result(ev), &n);
		const rd_kafka_error_t *ge = n ? rd_kafka_ConsumerGroupDescription_error(d[0]) : NULL;
		if (!n)
			rc = sl_err_set(err, SL_EPROTO, "kafka: %s: no description in the answer", what);
		else if (ge && rd_kafka_error_code(ge) != RD_KAFKA_RESP_ERR_GROUP_ID_NOT_FOUND)
			rc = sl_err_set(err, map_err(rd_kafka_error_code(ge)), "kafka: %s: %s", what,
					rd_kafka_error_string(ge));
		else
			*members = ge ? 0 : (int)rd_kafka_ConsumerGroupDescription_member_count(d[0]);
		rd_kafka_event_destroy(ev);
	}
	rd_kafka_AdminOptions_destroy(ao);
	rd_kafka_queue_destroy(q);
	return rc;
}

static int ks_commit_group(struct sl_topic_store *bs, const char *group, const char *topic,
			   const struct sl_topic_part *parts, int n, struct sl_err *err)
{
	struct kstore *s = (struct kstore *)bs;
	int rc = ks_meta(s, err);
	if (rc || n <= 0)
		return rc;
	char what[600];
	snprintf(what, sizeof what, "set the offsets of group %s on %s", group, topic);
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
	for (int i = 0; i < n; i++)
		rd_kafka_topic_partition_list_add(l, topic, parts[i].partition)->offset = parts[i].committed;
	rd_kafka_AlterConsumerGroupOffsets_t *a = rd_kafka_AlterConsumerGroupOffsets_new(group, l);
	rd_kafka_queue_t *q;
	rd_kafka_AdminOptions_t *ao = admin_begin(s, RD_KAFKA_ADMIN_OP_ALTERCONSUMERGROUPOFFSETS, &q);
	rd_kafka_AlterConsumerGroupOffsets(s->meta, &a, 1, ao, q);
	rd_kafka_event_t *ev = admin_wait(s, q, what, err);
	rc = ev ? 0 : err->code;
	if (ev) {
		size_t ng = 0;
		const rd_kafka_group_result_t **gr = rd_kafka_AlterConsumerGroupOffsets_result_groups(
			rd_kafka_event_AlterConsumerGroupOffsets_result(ev), &ng);
		const rd_kafka_error_t *ge = ng ? rd_kafka_group_result_error(gr[0]) : NULL;
		if (ge)
			rc = sl_err_set(err, map_err(rd_kafka_error_code(ge)), "kafka: %s: %s", what,
					rd_kafka_error_string(ge));
		const rd_kafka_topic_partition_list_t *pl = ng ? rd_kafka_group_result_partitions(gr[0]) : NULL;
		for (int i = 0; !rc && pl && i < pl->cnt; i++)
			if (pl->elems[i].err)
				rc = sl_err_set(err, map_err(pl->elems[i].err), "kafka: %s [%" PRId32 "]: %s", what,
						pl->elems[i].partition, rd_kafka_err2str(pl->elems[i].err));
		rd_kafka_event_destroy(ev);
	}
	rd_kafka_AdminOptions_destroy(ao);
	rd_kafka_AlterConsumerGroupOffsets_destroy(a);
	rd_kafka_topic_partition_list_destroy(l);
	rd_kafka_queue_destroy(q);
	return rc;
}

/* The answer of a topic-level admin request: the first topic result's error, if any. */
static int topic_result_err(const rd_kafka_topic_result_t **tr, size_t n, const char *what, struct sl_err *err)
{
	if (n && rd_kafka_topic_result_error(tr[0]))
		return sl_err_set(err, rd_kafka_topic_result_error(tr[0]) == RD_KAFKA_RESP_ERR_INVALID_PARTITIONS ||
					       rd_kafka_topic_result_error(tr[0]) == RD_KAFKA_RESP_ERR_INVALID_REQUEST
				       ? SL_EINVAL
				       : map_err(rd_kafka_topic_result_error(tr[0])),
				  "kafka: %s: %s", what, rd_kafka_topic_result_error_string(tr[0]));
	return 0;
}

static int ks_add_partitions(struct sl_topic_store *bs, const char *topic, int total, struct sl_err *err)
{
	struct kstore *s = (struct kstore *)bs;
	int now_n = 0;
	int rc = ks_partitions(bs, topic, &now_n, err);
	if (rc)
		return rc;
	if (total <= now_n)
		return sl_err_set(err, SL_EINVAL, "topic '%s' has %d partitions: the new count must be more, got %d", topic,
				  now_n, total);
	char es[256], what[400];
	snprintf(what, sizeof what, "add partitions to %s (%d to %d)", topic, now_n, total);
	rd_kafka_NewPartitions_t *np = rd_kafka_NewPartitions_new(topic, (size_t)total, es, sizeof es);
	if (!np)
		return sl_err_set(err, SL_EINVAL, "kafka: %s: %s", what, es);
	rd_kafka_queue_t *q;
	rd_kafka_AdminOptions_t *ao = admin_begin(s, RD_KAFKA_ADMIN_OP_CREATEPARTITIONS, &q);
	rd_kafka_CreatePartitions(s->meta, &np, 1, ao, q);
	rd_kafka_event_t *ev = admin_wait(s, q, what, err);
	rc = ev ? 0 : err->code;
	if (ev) {
		size_t n = 0;
		const rd_kafka_topic_result_t **tr =
			rd_kafka_CreatePartitions_result_topics(rd_kafka_event_CreatePartitions_result(ev), &n);
		rc = topic_result_err(tr, n, what, err);
		rd_kafka_event_destroy(ev);
	}
	rd_kafka_AdminOptions_destroy(ao);
	rd_kafka_NewPartitions_destroy(np);
	rd_kafka_queue_destroy(q);
	return rc;
}

static int ks_configs(struct sl_topic_store *bs, const char *topic, struct sl_topic_config **out, size_t *n,
		      struct sl_err *err)
{
	struct kstore *s = (struct kstore *)bs;
	*out = NULL;
	*n = 0;
	int rc = ks_meta(s, err);
	if (rc)
		return rc;
	char what[400];
	snprintf(what, sizeof what, "describe the configuration of %s", topic);
	rd_kafka_ConfigResource_t *cr = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
	rd_kafka_queue_t *q;
	rd_kafka_AdminOptions_t *ao = admin_begin(s, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS, &q);
	rd_kafka_DescribeConfigs(s->meta, &cr, 1, ao, q);
	rd_kafka_event_t *ev = admin_wait(s, q, what, err);
	rc = ev ? 0 : err->code;
	if (ev) {
		size_t nr = 0;
		const rd_kafka_ConfigResource_t **rs =
			rd_kafka_DescribeConfigs_result_resources(rd_kafka_event_DescribeConfigs_result(ev), &nr);
		if (!nr) {
			rc = sl_err_set(err, SL_EPROTO, "kafka: %s: no answer for the topic", what);
		} else if (rd_kafka_ConfigResource_error(rs[0])) {
			rd_kafka_resp_err_t e = rd_kafka_ConfigResource_error(rs[0]);
			rc = sl_err_set(err, e == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ? SL_ENOTFOUND : map_err(e),
					"kafka: %s: %s", what, rd_kafka_ConfigResource_error_string(rs[0]));
		} else {
			size_t ne = 0;
			const rd_kafka_ConfigEntry_t **ce = rd_kafka_ConfigResource_configs(rs[0], &ne);
			*out = calloc(ne ? ne : 1, sizeof **out);
			if (!*out) {
				rc = sl_err_set(err, SL_ENOMEM, "out of memory");
			} else {
				for (size_t i = 0; i < ne; i++) {
					struct sl_topic_config *c = &(*out)[i];
					const char *v = rd_kafka_ConfigEntry_value(ce[i]);
					snprintf(c->name, sizeof c->name, "%s", rd_kafka_ConfigEntry_name(ce[i]));
					snprintf(c->value, sizeof c->value, "%s", v ? v : "");
					c->is_null = !v;
					c->is_default = rd_kafka_ConfigEntry_is_default(ce[i]);
					c->read_only = rd_kafka_ConfigEntry_is_read_only(ce[i]);
					c->sensitive = rd_kafka_ConfigEntry_is_sensitive(ce[i]);
				}
				*n = ne;
			}
		}
		rd_kafka_event_destroy(ev);
	}
	rd_kafka_AdminOptions_destroy(ao);
	rd_kafka_ConfigResource_destroy(cr);
	rd_kafka_queue_destroy(q);
	return rc;
}

/* IncrementalAlterConfigs: the one entry changes, the others stay (AlterConfigs would reset them). */
static int ks_set_config(struct sl_topic_store *bs, const char *topic, const char *name, const char *value,
			 struct sl_err *err)
{
	struct kstore *s = (struct kstore *)bs;
	int rc = ks_meta(s, err);
	if (rc)
		return rc;
	char what[600];
	snprintf(what, sizeof what, "set %s of %s", name, topic);
	rd_kafka_ConfigResource_t *cr = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
	rd_kafka_error_t *e = rd_kafka_ConfigResource_add_incremental_config(
		cr, name, value ? RD_KAFKA_ALTER_CONFIG_OP_TYPE_SET : RD_KAFKA_ALTER_CONFIG_OP_TYPE_DELETE, value);
	if (e) {
		rc = sl_err_set(err, SL_EINVAL, "kafka: %s: %s", what, rd_kafka_error_string(e));
		rd_kafka_error_destroy(e);
		rd_kafka_ConfigResource_destroy(cr);
		return rc;
	}
	rd_kafka_queue_t *q;
	rd_kafka_AdminOptions_t *ao = admin_begin(s, RD_KAFKA_ADMIN_OP_INCREMENTALALTERCONFIGS, &q);
	rd_kafka_IncrementalAlterConfigs(s->meta, &cr, 1, ao, q);
	rd_kafka_event_t *ev = admin_wait(s, q, what, err);
	rc = ev ? 0 : err->code;
	if (ev) {
		size_t nr = 0;
		const rd_kafka_ConfigResource_t **rs = rd_kafka_IncrementalAlterConfigs_result_resources(
			rd_kafka_event_IncrementalAlterConfigs_result(ev), &nr);
		if (nr && rd_kafka_ConfigResource_error(rs[0])) {
			rd_kafka_resp_err_t re = rd_kafka_ConfigResource_error(rs[0]);
			rc = sl_err_set(err,
					re == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ? SL_ENOTFOUND
					: re == RD_KAFKA_RESP_ERR_INVALID_CONFIG || re == RD_KAFKA_RESP_ERR_INVALID_REQUEST ||
							re == RD_KAFKA_RESP_ERR_POLICY_VIOLATION
						? SL_EINVAL
						: map_err(re),
					"kafka: %s: %s", what, rd_kafka_ConfigResource_error_string(rs[0]));
		}
		rd_kafka_event_destroy(ev);
	}
	rd_kafka_AdminOptions_destroy(ao);
	rd_kafka_ConfigResource_destroy(cr);
	rd_kafka_queue_destroy(q);
	return rc;
}

static int ks_txn_producer(struct sl_topic_store *bs, const char *txn_id, sl_delivery_fn fn, void *ctx,
			   struct sl_producer **out, struct sl_err *err)
{
	return sl_kafka_txn_producer(&((struct kstore *)bs)->kc, txn_id, fn, ctx, out, err);
}

static int ks_consumer_ex(struct sl_topic_store *bs, const char *group, const char *topic, unsigned flags,
			  struct sl_consumer **out, struct sl_err *err)
{
	return kafka_consumer(&((struct kstore *)bs)->kc, group, topic, flags, out, err);
}

static int ks_ensure_compacted(struct sl_topic_store *bs, const char *topic, int partitions, int replication,
			       struct sl_err *err)
{
	struct kstore *s = (struct kstore *)bs;
	int rc = sl_kafka_ensure_topic(&s->kc, topic, partitions, replication, err);
	if (rc)
		return rc;
	/* Set after creation (ensure_topic keeps one topic-creating call): a changelog keeps the newest value of each
	 * key; setting it again on an existing topic is harmless. */
	return bs->ops->set_config(bs, topic, "cleanup.policy", "compact", err);
}

static int ks_read_partition(struct sl_topic_store *bs, const char *topic, int32_t partition, int timeout_ms,
			     int (*fn)(void *ctx, const void *k, size_t klen, const void *v, size_t vlen), void *ctx,
			     struct sl_err *err)
{
	struct kstore *s = (struct kstore *)bs;
	int64_t low = 0, high = 0;
	int rc = ks_watermarks(bs, topic, partition, &low, &high, err);
	if (rc || high <= low)
		return rc;
	rd_kafka_conf_t *c = NULL;
	struct sl_kafka_watch w;
	if ((rc = sl_kafka_conf_build(&s->kc, SL_KAFKA_ADMIN, &w, &c, err)))
		return rc;
	rd_kafka_t *rk = NULL;
	if ((rc = set(c, "group.id", "sluice-restore", err)) || (rc = set(c, "enable.auto.commit", "false", err)) ||
	    (rc = set(c, "isolation.level", "read_committed", err)) ||
	    (rc = set(c, "enable.partition.eof", "true", err))) {
		rd_kafka_conf_destroy(c);
		return rc;
	}
	if ((rc = new_client(RD_KAFKA_CONSUMER, c, &rk, err)))
		return rc;
	rd_kafka_poll_set_consumer(rk);
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(l, topic, partition)->offset = RD_KAFKA_OFFSET_BEGINNING;
	rd_kafka_resp_err_t e = rd_kafka_assign(rk, l);
	rd_kafka_topic_partition_list_destroy(l);
	if (e)
		rc = sl_err_set(err, map_err(e), "kafka: read %s [%" PRId32 "]: %s", topic, partition, rd_kafka_err2str(e));
	/* Done at an end-of-partition at or past the high watermark the call started with: a read_committed reader's
	 * end is the last stable offset, which stays below a transaction still open, so an end below it means
	 * waiting for that transaction to commit or abort (its producer's restart, or the transaction timeout). */
	int64_t deadline = mono_ms() + timeout_ms;
	while (!rc) {
		if (mono_ms() > deadline) {
			rc = sl_err_set(err, SL_ETIMEDOUT, "kafka: read %s [%" PRId32 "] to offset %" PRId64 ": not "
					"reached in %d ms (a transaction still open?)", topic, partition, high, timeout_ms);
			break;
		}
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
		if (!m)
			continue;
		if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			bool end = m->offset >= high;
			rd_kafka_message_destroy(m);
			if (end)
				break;
			continue;
		}
		if (m->err) {
			int code = map_err(m->err);
			if (code != SL_EIO && code != SL_ETIMEDOUT)
				rc = sl_err_set(err, code, "kafka: read %s [%" PRId32 "]: %s", topic, partition,
						rd_kafka_message_errstr(m));
			rd_kafka_message_destroy(m);
			continue;
		}
		if ((rc = fn(ctx, m->key, m->key_len, m->payload, m->len)))
			rc = sl_err_set(err, rc, "%s [%" PRId32 "]@%" PRId64 ": entry not understood", topic,
					partition, m->offset);
		int64_t next = m->offset + 1;
		rd_kafka_message_destroy(m);
		if (!rc && next >= high)
			break;
	}
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	return rc;
}

static const struct sl_topic_store_ops kafka_store_ops = {
	.ensure_topic = ks_ensure_topic, .partitions = ks_partitions, .watermarks = ks_watermarks,
	.producer = ks_producer,	 .consumer = ks_consumer,     .group_lag = ks_group_lag,
	.committed = ks_committed,	 .describe = ks_describe,     .browse = ks_browse,
	.close = ks_close,		 .group_members = ks_group_members, .commit_group = ks_commit_group,
	.add_partitions = ks_add_partitions, .configs = ks_configs, .set_config = ks_set_config,
	.txn_producer = ks_txn_producer, .consumer_ex = ks_consumer_ex, .ensure_compacted = ks_ensure_compacted,
	.read_partition = ks_read_partition,
};

int sl_kafka_store_open(const struct sl_cfg_node *kafka, struct sl_topic_store **out, struct sl_err *err)
{
	struct kstore *s = calloc(1, sizeof *s);
	if (!s)
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	if (sl_opt_bind(sl_kafka_opts, kafka, "kafka", &s->kc, err)) {
		sl_opt_free(sl_kafka_opts, &s->kc);
		free(s);
		return SL_ECONFIG;
	}
	s->base.ops = &kafka_store_ops;
	s->base.backend = "kafka";
	s->base.where = brokers_of(&s->kc);
	s->base.message_timeout_ms = s->kc.message_timeout_ms > 0 ? s->kc.message_timeout_ms : 295000;
	/* Made now, not on first use: the store's callers may ask from several threads (the console). */
	int rc = ks_meta(s, err);
	if (rc) {
		ks_close(&s->base);
		return rc;
	}
	*out = &s->base;
	return 0;
}
