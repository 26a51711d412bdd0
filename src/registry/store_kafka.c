/* The registry's store at scale: the `_schemas` compacted Kafka topic (1 partition, cleanup.policy=compact) in
 * Confluent's key/value format, so several `sluice registry` processes share one registry and a topic that
 * Confluent's own registry wrote reads back unchanged.
 *
 * Reading: every node replays partition 0 from offset 0 at open and then catches up to the high watermark before
 * it answers (sync), so a schema registered through any node is visible through every other one as soon as the
 * write is acknowledged. A background thread also drains the topic once a second, so state stays fresh when idle.
 *
 * Writing: one leader. Nodes that serve HTTP join the consumer group `group` subscribed to the topic; the member
 * that the group assigns partition 0 is the leader (one partition, so exactly one member holds it). Its client.id
 * is its REST URL, which is how followers find it: they describe the group, pick the member whose assignment holds
 * partition 0 and forward writes there (api.c); with no leader they answer 50004. Before allocating an id the
 * leader writes a NOOP record and reads up to it (barrier), so every record written before it took over (by a
 * previous leader that has not yet noticed it was deposed, say) is applied first; ids are max seen + 1.
 *
 * Every client is configured by topic/'s sl_kafka_conf_build from the `kafka:` section (conf->kafka), so the store
 * reaches a secured cluster (SASL, TLS, client certificates) as ingest and process do, and stops at once with the
 * broker's reason on wrong credentials. registry.brokers, when set, overrides kafka.brokers. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "core/clock.h"
#include "core/log.h"
#include "registry/internal.h"
#include "topic/topic.h"

#define NOOP_KEY "{\"keytype\":\"NOOP\",\"magic\":0}"
#define OP_TIMEOUT_MS 10000
#define DRAIN_TIMEOUT_MS 500 /* the background drain's patience per query and read (it runs every second) */

struct kafka_store {
	struct sl_reg_store base;
	struct sl_registry *r;
	char *topic, *group, *brokers;
	struct sl_kafka_conf kc;     /* the kafka: section (security, properties), brokers as above */
	struct sl_kafka_watch pw, rw, ew; /* what each client's error callback saw (their opaques) */
	rd_kafka_t *prod;
	rd_kafka_t *reader;          /* simple consumer of partition 0: no group, no commits */
	rd_kafka_topic_t *rkt;
	int64_t next;                /* next offset to apply */
	pthread_t thr;
	bool thr_started;
	volatile int stop;
	rd_kafka_t *elect;           /* group member, once this node serves HTTP */
	bool is_leader;              /* as the election thread sees it */
};

struct delivery {
	int done;
	rd_kafka_resp_err_t err;
	int64_t offset;
};

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	struct delivery *d = m->_private;
	(void)rk;
	(void)opaque;
	if (d) {
		d->err = m->err;
		d->offset = m->offset;
		d->done = 1;
	}
}

static int64_t now_ms(void)
{
	return sl_mono_ms();
}

static int set_conf(rd_kafka_conf_t *c, const char *k, const char *v, struct sl_err *err)
{
	int rc = sl_kafka_conf_set(c, k, v, err);
	if (rc)
		sl_err_prefix(err, "registry kafka store: ");
	return rc;
}

/* A client of the store from the kafka: section; w becomes its opaque (its owner is the store). */
static int new_conf(struct kafka_store *s, struct sl_kafka_watch *w, const char *client_id, rd_kafka_conf_t **out,
		    struct sl_err *err)
{
	int rc = sl_kafka_conf_build(&s->kc, SL_KAFKA_ADMIN, w, out, err);
	if (rc) {
		sl_err_prefix(err, "registry kafka store: ");
		return rc;
	}
	w->owner = s;
	if ((rc = set_conf(*out, "client.id", client_id, err)) || (rc = set_conf(*out, "log_level", "3", err))) {
		rd_kafka_conf_destroy(*out);
		*out = NULL;
	}
	return rc;
}

/* Applies records until the next offset to read is at least target (or the deadline passes). */
static int read_until(struct kafka_store *s, int64_t target, int timeout_ms, struct sl_err *err)
{
	int64_t deadline = now_ms() + timeout_ms;
	while (s->next < target) {
		int64_t left = deadline - now_ms();
		if (left <= 0)
			return sl_err_set(err, SL_ETIMEDOUT,
					  "registry kafka store: topic %s read up to offset %" PRId64 " of %" PRId64
					  " within %d ms (is the broker %s up?)",
					  s->topic, s->next, target, timeout_ms, s->brokers);
		rd_kafka_message_t *m = rd_kafka_consume(s->rkt, 0, (int)(left > 200 ? 200 : left));
		if (!m)
			continue;
		if (m->err) {
			if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
				sl_warn("registry", "kafka store: reading %s: %s", s->topic, rd_kafka_message_errstr(m));
			rd_kafka_message_destroy(m);
			continue;
		}
		if (m->key)
			sl_reg_apply(s->r, m->key, m->key_len, m->payload, m->payload ? m->len : 0);
		s->next = m->offset + 1;
		rd_kafka_message_destroy(m);
	}
	return 0;
}

/* Catches up to the high watermark within timeout_ms for each of the query and the read. */
static int sync_within(struct kafka_store *s, int timeout_ms, struct sl_err *err)
{
	int64_t lo = 0, hi = 0;
	rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(s->reader, s->topic, 0, &lo, &hi, timeout_ms);
	if (e)
		return sl_err_set(err, SL_EIO, "registry kafka store: high watermark of %s[0]: %s", s->topic,
				  rd_kafka_err2str(e));
	return read_until(s, hi, timeout_ms, err);
}

/* Catches up to the high watermark: every acknowledged write, by any node, is applied after this. */
static int ks_sync(struct sl_reg_store *st, struct sl_registry *r, struct sl_err *err)
{
	(void)r;
	return sync_within((struct kafka_store *)st, OP_TIMEOUT_MS, err);
}

/* Produces one record to partition 0 and waits for the broker's acknowledgement; *offset gets its offset. */
static int produce_sync(struct kafka_store *s, const char *key, const char *value, int64_t *offset, struct sl_err *err)
{
	struct delivery d = {0};
	rd_kafka_resp_err_t e = rd_kafka_producev(
		s->prod, RD_KAFKA_V_TOPIC(s->topic), RD_KAFKA_V_PARTITION(0), RD_KAFKA_V_KEY(key, strlen(key)),
		RD_KAFKA_V_VALUE((void *)value, value ? strlen(value) : 0), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
		RD_KAFKA_V_OPAQUE(&d), RD_KAFKA_V_END);
	if (e)
		return sl_err_set(err, SL_EIO, "registry kafka store: writing to %s: %s", s->topic, rd_kafka_err2str(e));
	int64_t deadline = now_ms() + OP_TIMEOUT_MS * 3;
	while (!d.done && now_ms() < deadline)
		rd_kafka_poll(s->prod, 100);
	if (!d.done) {
		/* The message may still be delivered later: d is on this stack, so wait for the callback whatever it
		 * takes (message.timeout.ms bounds it) rather than leave a dangling opaque. */
		while (!d.done)
			rd_kafka_poll(s->prod, 100);
	}
	if (d.err)
		return sl_err_set(err, SL_EIO, "registry kafka store: writing to %s: %s", s->topic, rd_kafka_err2str(d.err));
	*offset = d.offset;
	return 0;
}

static int ks_barrier(struct sl_reg_store *st, struct sl_registry *r, struct sl_err *err)
{
	struct kafka_store *s = (struct kafka_store *)st;
	int64_t off;
	int rc;
	if (!r->leader)
		return sl_err_set(err, SL_EAGAIN, "this registry is not the leader of group %s", s->group);
	if ((rc = produce_sync(s, NOOP_KEY, NULL, &off, err)))
		return rc;
	return read_until(s, off + 1, OP_TIMEOUT_MS, err);
}

static int ks_write(struct sl_reg_store *st, struct sl_registry *r, const char *key, const char *value,
		    struct sl_err *err)
{
	struct kafka_store *s = (struct kafka_store *)st;
	int64_t off;
	int rc;
	if (!r->leader)
		return sl_err_set(err, SL_EAGAIN, "this registry is not the leader of group %s; write through the leader",
				  s->group);
	if ((rc = produce_sync(s, key, value, &off, err)))
		return rc;
	/* Applied by reading it back, so the fold sees records in the log's order, the same on every node. */
	return read_until(s, off + 1, OP_TIMEOUT_MS, err);
}

/* ---- election ---- */

/* The leader's URL from the group's description (asked of the group's coordinator alone), or NULL.
 *
 * Not rd_kafka_list_groups: it asks every broker and fails whole when one of them does not answer, so with one
 * broker down a follower found no leader for as long as that broker stayed down (the long-form registry scenario:
 * 60 s of 50004 "no registry leads" with the leader alive and leading). */
static char *find_leader(struct kafka_store *s, rd_kafka_t *rk)
{
	char es[256], *url = NULL;
	const char *groups[1] = {s->group};
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_AdminOptions_t *o = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS);
	rd_kafka_AdminOptions_set_request_timeout(o, 3000, es, sizeof es);
	rd_kafka_DescribeConsumerGroups(rk, groups, 1, o, q);
	rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 4000);
	if (ev && !rd_kafka_event_error(ev)) {
		size_t n = 0;
		const rd_kafka_ConsumerGroupDescription_t **gd =
		    rd_kafka_DescribeConsumerGroups_result_groups(rd_kafka_event_DescribeConsumerGroups_result(ev), &n);
		for (size_t g = 0; g < n && !url; g++) {
			if (rd_kafka_ConsumerGroupDescription_error(gd[g]) ||
			    rd_kafka_ConsumerGroupDescription_state(gd[g]) != RD_KAFKA_CONSUMER_GROUP_STATE_STABLE)
				continue;
			size_t mc = rd_kafka_ConsumerGroupDescription_member_count(gd[g]);
			for (size_t m = 0; m < mc && !url; m++) {
				const rd_kafka_MemberDescription_t *md = rd_kafka_ConsumerGroupDescription_member(gd[g], m);
				const char *cid = rd_kafka_MemberDescription_client_id(md);
				const rd_kafka_MemberAssignment_t *ma = rd_kafka_MemberDescription_assignment(md);
				const rd_kafka_topic_partition_list_t *tp = ma ? rd_kafka_MemberAssignment_partitions(ma) : NULL;
				for (int i = 0; cid && !strncmp(cid, "http", 4) && tp && i < tp->cnt && !url; i++)
					if (tp->elems[i].partition == 0 && !strcmp(tp->elems[i].topic, s->topic))
						url = strdup(cid);
			}
		}
	}
	if (ev)
		rd_kafka_event_destroy(ev);
	rd_kafka_AdminOptions_destroy(o);
	rd_kafka_queue_destroy(q);
	return url;
}

static void set_leader(struct kafka_store *s, bool lead)
{
	pthread_mutex_lock(&s->r->mu);
	s->r->leader = lead;
	if (lead) {
		free(s->r->forward_url);
		s->r->forward_url = NULL;
	}
	pthread_mutex_unlock(&s->r->mu);
	if (lead != s->is_leader)
		sl_info("registry", "kafka store: %s group=%s topic=%s", lead ? "leading" : "following", s->group, s->topic);
	s->is_leader = lead;
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t e, rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	struct kafka_store *s = ((struct sl_kafka_watch *)opaque)->owner;
	if (e == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
		bool lead = false;
		for (int i = 0; i < parts->cnt; i++)
			if (parts->elems[i].partition == 0 && !strcmp(parts->elems[i].topic, s->topic))
				lead = true;
		rd_kafka_assign(rk, parts);
		/* Membership is all this consumer is for: it never reads. */
		rd_kafka_pause_partitions(rk, parts);
		set_leader(s, lead);
	} else {
		set_leader(s, false);
		rd_kafka_assign(rk, NULL);
	}
}

static int join_group(struct kafka_store *s, const char *url)
{
	rd_kafka_conf_t *c = NULL;
	char e[256];
	struct sl_err err;
	/* client.id carries the REST URL: followers read it from the group description. */
	if (new_conf(s, &s->ew, url, &c, &err) || set_conf(c, "group.id", s->group, &err) ||
	    set_conf(c, "enable.auto.commit", "false", &err) || set_conf(c, "auto.offset.reset", "latest", &err) ||
	    set_conf(c, "partition.assignment.strategy", "range", &err) ||
	    /* A killed leader is replaced after this long. */
	    set_conf(c, "session.timeout.ms", "6000", &err) || set_conf(c, "heartbeat.interval.ms", "1000", &err)) {
		sl_warn("registry", "%s", err.msg);
		if (c)
			rd_kafka_conf_destroy(c);
		return -1;
	}
	rd_kafka_conf_set_rebalance_cb(c, rebalance_cb);
	if (!(s->elect = rd_kafka_new(RD_KAFKA_CONSUMER, c, e, sizeof e))) {
		sl_warn("registry", "kafka store: cannot create the group member: %s", e);
		rd_kafka_conf_destroy(c);
		return -1;
	}
	rd_kafka_poll_set_consumer(s->elect);
	rd_kafka_topic_partition_list_t *t = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(t, s->topic, RD_KAFKA_PARTITION_UA);
	rd_kafka_resp_err_t se = rd_kafka_subscribe(s->elect, t);
	rd_kafka_topic_partition_list_destroy(t);
	if (se)
		sl_warn("registry", "kafka store: joining group %s: %s", s->group, rd_kafka_err2str(se));
	sl_info("registry", "kafka store: joined the election group=%s url=%s", s->group, url);
	return 0;
}

static void *elect_main(void *arg)
{
	struct kafka_store *s = arg;
	int64_t last_find = 0, last_drain = 0;
	while (!s->stop) {
		if (!s->elect) {
			char *url = NULL;
			pthread_mutex_lock(&s->r->mu);
			if (s->r->self_url)
				url = strdup(s->r->self_url);
			pthread_mutex_unlock(&s->r->mu);
			if (url) {
				join_group(s, url);
				free(url);
			}
		}
		if (s->elect) {
			rd_kafka_message_t *m = rd_kafka_consumer_poll(s->elect, 200);
			if (m)
				rd_kafka_message_destroy(m);
		} else
			usleep(200000);
		int64_t now = now_ms();
		if (!s->is_leader && now - last_find >= 1000) {
			last_find = now;
			char *url = find_leader(s, s->elect ? s->elect : s->reader);
			pthread_mutex_lock(&s->r->mu);
			if (!s->r->leader) {
				free(s->r->forward_url);
				s->r->forward_url = url;
				url = NULL;
			}
			pthread_mutex_unlock(&s->r->mu);
			free(url);
		}
		if (now - last_drain >= 1000) {
			struct sl_err err;
			last_drain = now;
			/* Only freshness while idle, under the registry's lock: with the partition's leader gone the
			 * watermark query waits its whole timeout, and at OP_TIMEOUT_MS every registration queued
			 * behind this lock waited up to 20 s a round (the broker_kill of the registry scenario). A
			 * short try now and another in a second cost nothing; s->next keeps what was read. */
			pthread_mutex_lock(&s->r->mu);
			if (sync_within(s, DRAIN_TIMEOUT_MS, &err))
				sl_debug("registry", "%s", err.msg);
			pthread_mutex_unlock(&s->r->mu);
		}
	}
	return NULL;
}

/* ---- open/close ---- */

static void ks_close(struct sl_reg_store *st)
{
	struct kafka_store *s = (struct kafka_store *)st;
	if (s->thr_started) {
		s->stop = 1;
		pthread_join(s->thr, NULL);
	}
	if (s->elect) {
		/* Leaving the group at once hands leadership over without waiting for the session timeout. */
		rd_kafka_consumer_close(s->elect);
		rd_kafka_destroy(s->elect);
	}
	if (s->rkt) {
		rd_kafka_consume_stop(s->rkt, 0);
		rd_kafka_topic_destroy(s->rkt);
	}
	if (s->reader)
		rd_kafka_destroy(s->reader);
	if (s->prod) {
		rd_kafka_flush(s->prod, 5000);
		rd_kafka_destroy(s->prod);
	}
	free(s->topic);
	free(s->group);
	free(s->brokers);
	sl_opt_free(sl_kafka_opts, &s->kc);
	free(s);
}

/* Creates the topic as Confluent's registry would (1 partition, compacted) when it does not exist. */
static int ensure_topic(struct kafka_store *s, struct sl_err *err)
{
	/* The first call of the store: it stops at once on wrong credentials or an untrusted certificate, with the
	 * broker's reason, instead of librdkafka retrying them for minutes. */
	int have = 0, rc = sl_kafka_client_partitions(s->prod, &s->pw, s->topic, &have, err);
	if (rc) {
		sl_err_prefix(err, "registry kafka store: ");
		return rc;
	}
	if (have > 0) {
		if (have != 1)
			sl_warn("registry", "kafka store: topic %s has %d partitions; only partition 0 is used", s->topic,
				have);
		return 0;
	}
	char es[256];
	rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(s->topic, 1, -1, es, sizeof es);
	rd_kafka_NewTopic_set_config(nt, "cleanup.policy", "compact");
	rd_kafka_queue_t *q = rd_kafka_queue_new(s->prod);
	rd_kafka_AdminOptions_t *o = rd_kafka_AdminOptions_new(s->prod, RD_KAFKA_ADMIN_OP_CREATETOPICS);
	rd_kafka_AdminOptions_set_operation_timeout(o, OP_TIMEOUT_MS, es, sizeof es);
	rd_kafka_CreateTopics(s->prod, &nt, 1, o, q);
	rd_kafka_event_t *ev = rd_kafka_queue_poll(q, OP_TIMEOUT_MS + 5000);
	if (!ev)
		rc = sl_err_set(err, SL_ETIMEDOUT, "registry kafka store: creating topic %s timed out", s->topic);
	else {
		size_t n;
		const rd_kafka_topic_result_t **res = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
		if (rd_kafka_event_error(ev))
			rc = sl_err_set(err, SL_EIO, "registry kafka store: creating topic %s: %s", s->topic,
					rd_kafka_event_error_string(ev));
		else if (n == 1 && rd_kafka_topic_result_error(res[0]) &&
			 rd_kafka_topic_result_error(res[0]) != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
			rc = sl_err_set(err, SL_EIO, "registry kafka store: creating topic %s: %s", s->topic,
					rd_kafka_topic_result_error_string(res[0]));
		else
			sl_info("registry", "kafka store: created topic %s (1 partition, compacted)", s->topic);
		rd_kafka_event_destroy(ev);
	}
	rd_kafka_AdminOptions_destroy(o);
	rd_kafka_NewTopic_destroy(nt);
	rd_kafka_queue_destroy(q);
	/* A new topic's partition needs a leader before the first read: wait for the watermark query to answer. */
	for (int i = 0; !rc && i < 50; i++) {
		int64_t lo, hi;
		if (!rd_kafka_query_watermark_offsets(s->prod, s->topic, 0, &lo, &hi, 1000))
			break;
		usleep(200000);
	}
	return rc;
}

int sl_reg_store_kafka_open(struct sl_reg_store **out, struct sl_registry *r, const struct sl_registry_conf *conf,
			    struct sl_err *err)
{
	struct kafka_store *s = calloc(1, sizeof *s);
	rd_kafka_conf_t *pc = NULL, *cc = NULL;
	char e[256];
	int rc;
	if (!s)
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	s->base.sync = ks_sync;
	s->base.barrier = ks_barrier;
	s->base.write = ks_write;
	s->base.close = ks_close;
	s->r = r;
	s->topic = strdup(conf->topic);
	s->group = strdup(conf->group);
	if (conf->kafka && sl_opt_bind(sl_kafka_opts, conf->kafka, "kafka", &s->kc, err)) {
		rc = SL_ECONFIG;
		goto fail;
	}
	if (!conf->kafka && (rc = sl_opt_defaults(sl_kafka_opts, &s->kc, err)))
		goto fail;
	if (conf->brokers) { /* registry.brokers (or --brokers) wins over kafka.brokers */
		free(s->kc.brokers);
		s->kc.brokers = strdup(conf->brokers);
	}
	s->brokers = strdup(s->kc.brokers ? s->kc.brokers : "127.0.0.1:9092");
	if (!s->topic || !s->group || !s->brokers || (conf->brokers && !s->kc.brokers)) {
		rc = sl_err_set(err, SL_ENOMEM, "out of memory");
		goto fail;
	}
	r->leader = false; /* until the group says so */
	if ((rc = new_conf(s, &s->pw, "sluice-registry-writer", &pc, err)) ||
	    (rc = set_conf(pc, "enable.idempotence", "true", err)) || (rc = set_conf(pc, "acks", "all", err)) ||
	    (rc = set_conf(pc, "linger.ms", "0", err)) || (rc = set_conf(pc, "message.timeout.ms", "30000", err)))
		goto fail;
	rd_kafka_conf_set_dr_msg_cb(pc, dr_cb);
	if (!(s->prod = rd_kafka_new(RD_KAFKA_PRODUCER, pc, e, sizeof e))) {
		rc = sl_err_set(err, SL_ECONFIG, "registry kafka store: producer for %s: %s", s->brokers, e);
		goto fail;
	}
	pc = NULL;
	if ((rc = ensure_topic(s, err)))
		goto fail;
	if ((rc = new_conf(s, &s->rw, "sluice-registry-reader", &cc, err)) ||
	    (rc = set_conf(cc, "enable.partition.eof", "false", err)) || (rc = set_conf(cc, "fetch.wait.max.ms", "50", err)))
		goto fail;
	if (!(s->reader = rd_kafka_new(RD_KAFKA_CONSUMER, cc, e, sizeof e))) {
		rc = sl_err_set(err, SL_ECONFIG, "registry kafka store: reader for %s: %s", s->brokers, e);
		goto fail;
	}
	cc = NULL;
	if (!(s->rkt = rd_kafka_topic_new(s->reader, s->topic, NULL)) ||
	    rd_kafka_consume_start(s->rkt, 0, RD_KAFKA_OFFSET_BEGINNING) == -1) {
		rc = sl_err_set(err, SL_EIO, "registry kafka store: reading %s: %s", s->topic,
				rd_kafka_err2str(rd_kafka_last_error()));
		goto fail;
	}
	/* The replay: everything up to the high watermark now. */
	if ((rc = ks_sync(&s->base, r, err)))
		goto fail;
	sl_info("registry", "store=kafka topic=%s brokers=%s records_to=%" PRId64 " schemas=%zu", s->topic, s->brokers,
		s->next, r->nschemas);
	if (pthread_create(&s->thr, NULL, elect_main, s)) {
		rc = sl_err_set(err, SL_ENOMEM, "registry kafka store: cannot start the election thread");
		goto fail;
	}
	s->thr_started = true;
	*out = &s->base;
	return 0;
fail:
	if (pc)
		rd_kafka_conf_destroy(pc);
	if (cc)
		rd_kafka_conf_destroy(cc);
	ks_close(&s->base);
	return rc;
}
