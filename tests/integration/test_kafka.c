/* The Kafka backend against the real broker (tests/services, 127.0.0.1:9092 or $SL_KAFKA_BROKERS): a topic created
 * with 3 partitions and visible at once; 10,000 keyed messages with headers, each acknowledged with a distinct
 * (partition, offset) on the partition sl_topic_partition_for_key() predicts; all read back by a group, committed, and not
 * redelivered when the group reopens; two consumers of one group splitting the partitions. An unreachable broker
 * fails the test. Topic and group names carry the pid and time, so runs never see each other's data. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "topic/topic.h"

#define N_MSGS 10000
#define PARTS 3

static char topic[128];
static struct sl_kafka_conf kc;

struct dr {
	int err;
	int32_t partition;
	int64_t offset;
	int seen;
};
static struct dr drs[N_MSGS];
static int n_reports, n_bad;

static void on_delivery(void *ctx, void *opaque, int err, const char *errmsg, int32_t partition, int64_t offset)
{
	(void)ctx;
	intptr_t i = (intptr_t)opaque - 1;
	assert_true(i >= 0 && i < N_MSGS);
	drs[i].err = err;
	drs[i].partition = partition;
	drs[i].offset = offset;
	drs[i].seen++;
	n_reports++;
	if (err) {
		if (n_bad++ < 5)
			fprintf(stderr, "delivery of %ld failed: %s\n", (long)i, errmsg ? errmsg : "?");
	}
}

static void key_of(int i, char *buf, size_t n)
{
	snprintf(buf, n, "user-%05d", i);
}

static int setup(void **state)
{
	(void)state;
	sl_log_set_level(SL_LOG_WARN);
	struct sl_err e = {0};
	assert_int_equal(sl_opt_defaults(sl_kafka_opts, &kc, &e), 0);
	const char *b = getenv("SL_KAFKA_BROKERS");
	if (b && *b) {
		free(kc.brokers);
		kc.brokers = strdup(b);
	}
	snprintf(topic, sizeof topic, "sl_test_kafka_%d_%ld", (int)getpid(), (long)time(NULL));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	sl_opt_free(sl_kafka_opts, &kc);
	return 0;
}

static void test_ensure_topic(void **state)
{
	(void)state;
	struct sl_err e = {0};
	int64_t t0 = sl_mono_ms();
	if (sl_kafka_ensure_topic(&kc, topic, PARTS, 1, &e) != 0)
		fail_msg("ensure_topic %s on %s: %s (is the broker up? tests/services/run up)", topic, kc.brokers, e.msg);
	int n = 0;
	assert_int_equal(sl_kafka_partitions(&kc, topic, &n, &e), 0);
	assert_int_equal(n, PARTS);
	/* A second call finds it and changes nothing. */
	assert_int_equal(sl_kafka_ensure_topic(&kc, topic, PARTS, 1, &e), 0);
	fprintf(stderr, "ensure_topic: %ld ms\n", (long)(sl_mono_ms() - t0));
	/* An absent topic is reported as such. */
	char absent[160];
	snprintf(absent, sizeof absent, "%s_absent", topic);
	assert_int_equal(sl_kafka_partitions(&kc, absent, &n, &e), SL_ENOTFOUND);
}

static void test_produce(void **state)
{
	(void)state;
	struct sl_err e = {0};
	struct sl_producer *p = NULL;
	assert_int_equal(sl_kafka_producer(&kc, on_delivery, NULL, &p, &e), 0);
	int64_t t0 = sl_mono_ms();
	for (int i = 0; i < N_MSGS; i++) {
		char key[32], val[96], hv[16];
		key_of(i, key, sizeof key);
		int vl = snprintf(val, sizeof val, "{\"i\":%d,\"name\":\"user %d\"}", i, i);
		int hl = snprintf(hv, sizeof hv, "%d", i);
		struct sl_header h[2] = {{"seq", hv, (size_t)hl}, {"origin", "test", 4}};
		struct sl_msg m = {.topic = topic, .partition = -1, .key = key, .key_len = strlen(key), .value = val,
				   .value_len = (size_t)vl, .headers = h, .n_headers = 2};
		if (p->ops->produce(p, &m, (void *)(intptr_t)(i + 1), 10000, &e) != 0)
			fail_msg("produce %d: %s", i, e.msg);
		if (i % 1000 == 0)
			p->ops->poll(p, 0);
	}
	if (p->ops->flush(p, 30000, &e) != 0)
		fail_msg("flush: %s", e.msg);
	assert_int_equal(p->ops->in_flight(p), 0);
	fprintf(stderr, "produced %d in %ld ms\n", N_MSGS, (long)(sl_mono_ms() - t0));
	p->ops->destroy(p);

	assert_int_equal(n_reports, N_MSGS);
	assert_int_equal(n_bad, 0);
	/* Distinct (partition, offset): per partition, offsets form a set without repeats. */
	static unsigned char used[PARTS][N_MSGS];
	memset(used, 0, sizeof used);
	for (int i = 0; i < N_MSGS; i++) {
		char key[32];
		key_of(i, key, sizeof key);
		assert_int_equal(drs[i].seen, 1);
		assert_int_equal(drs[i].err, 0);
		assert_int_equal(drs[i].partition, sl_topic_partition_for_key(key, strlen(key), PARTS));
		assert_true(drs[i].offset >= 0 && drs[i].offset < N_MSGS);
		assert_int_equal(used[drs[i].partition][drs[i].offset], 0);
		used[drs[i].partition][drs[i].offset] = 1;
	}
	int64_t total = 0;
	for (int pt = 0; pt < PARTS; pt++) {
		int64_t lo = -1, hi = -1;
		assert_int_equal(sl_kafka_watermarks(&kc, topic, pt, &lo, &hi, &e), 0);
		total += hi - lo;
	}
	assert_int_equal(total, N_MSGS);
}

struct hooks {
	int assigned[PARTS];
	int n_assign, n_revoke;
};

static void on_assign(void *ctx, const char *t, int32_t part)
{
	struct hooks *h = ctx;
	assert_string_equal(t, topic);
	assert_true(part >= 0 && part < PARTS);
	h->assigned[part] = 1;
	h->n_assign++;
}

static void on_revoke(void *ctx, const char *t, int32_t part)
{
	struct hooks *h = ctx;
	(void)t;
	h->assigned[part] = 0;
	h->n_revoke++;
}

static struct sl_consumer *open_consumer(const char *group, struct hooks *h)
{
	struct sl_err e = {0};
	struct sl_consumer *c = NULL;
	if (sl_kafka_consumer(&kc, group, topic, &c, &e) != 0)
		fail_msg("consumer: %s", e.msg);
	c->on_assign = on_assign;
	c->on_revoke = on_revoke;
	c->ctx = h;
	return c;
}

static void test_consume_commit_reopen(void **state)
{
	(void)state;
	char group[160];
	snprintf(group, sizeof group, "%s_g1", topic);
	struct hooks h = {0};
	struct sl_consumer *c = open_consumer(group, &h);
	static unsigned char got[N_MSGS];
	memset(got, 0, sizeof got);
	int64_t next[PARTS] = {0};
	int n = 0;
	struct sl_msg ms[500];
	struct sl_err e = {0};
	int64_t deadline = sl_mono_ms() + 40000;
	while (n < N_MSGS && sl_mono_ms() < deadline) {
		int k = c->ops->poll(c, ms, 500, 500, &e);
		if (k < 0)
			fail_msg("poll: %s", e.msg);
		for (int j = 0; j < k; j++) {
			struct sl_msg *m = &ms[j];
			assert_string_equal(m->topic, topic);
			char key[32];
			memcpy(key, m->key, m->key_len < 31 ? m->key_len : 31);
			key[m->key_len < 31 ? m->key_len : 31] = 0;
			int i = atoi(key + 5);
			assert_true(i >= 0 && i < N_MSGS);
			assert_int_equal(got[i], 0);
			got[i] = 1;
			assert_int_equal(m->partition, drs[i].partition);
			assert_int_equal(m->offset, drs[i].offset);
			char val[96];
			int vl = snprintf(val, sizeof val, "{\"i\":%d,\"name\":\"user %d\"}", i, i);
			assert_int_equal(m->value_len, (size_t)vl);
			assert_memory_equal(m->value, val, (size_t)vl);
			assert_int_equal(m->n_headers, 2);
			assert_string_equal(m->headers[0].key, "seq");
			char hv[16] = {0};
			memcpy(hv, m->headers[0].value, m->headers[0].value_len < 15 ? m->headers[0].value_len : 15);
			assert_int_equal(atoi(hv), i);
			assert_string_equal(m->headers[1].key, "origin");
			assert_memory_equal(m->headers[1].value, "test", 4);
			if (m->offset + 1 > next[m->partition])
				next[m->partition] = m->offset + 1;
			n++;
		}
	}
	assert_int_equal(n, N_MSGS);
	assert_int_equal(h.n_assign, PARTS);
	int64_t lag = c->ops->lag(c, &e);
	assert_int_equal(lag, N_MSGS); /* nothing committed yet */
	for (int pt = 0; pt < PARTS; pt++)
		if (c->ops->commit(c, topic, pt, next[pt], &e) != 0)
			fail_msg("commit: %s", e.msg);
	lag = c->ops->lag(c, &e);
	assert_int_equal(lag, 0);
	c->ops->destroy(c);
	assert_int_equal(h.n_revoke, PARTS);

	int64_t glag = -1;
	assert_int_equal(sl_kafka_group_lag(&kc, group, topic, &glag, &e), 0);
	assert_int_equal(glag, 0);

	/* Reopen: the group resumes after its commits, so nothing comes back. */
	struct hooks h2 = {0};
	c = open_consumer(group, &h2);
	deadline = sl_mono_ms() + 20000;
	int again = 0;
	while (h2.n_assign < PARTS && sl_mono_ms() < deadline) {
		int k = c->ops->poll(c, ms, 500, 200, &e);
		assert_true(k >= 0);
		again += k;
	}
	assert_int_equal(h2.n_assign, PARTS);
	for (int r = 0; r < 10; r++) { /* assigned: give the fetchers a moment to find anything there is */
		int k = c->ops->poll(c, ms, 500, 200, &e);
		assert_true(k >= 0);
		again += k;
	}
	assert_int_equal(again, 0);
	/* seek rewinds one partition: its messages come again. */
	assert_int_equal(c->ops->seek(c, topic, 0, 0, &e), 0);
	int64_t want = next[0];
	int64_t seen0 = 0;
	deadline = sl_mono_ms() + 20000;
	while (seen0 < want && sl_mono_ms() < deadline) {
		int k = c->ops->poll(c, ms, 500, 200, &e);
		assert_true(k >= 0);
		for (int j = 0; j < k; j++) {
			assert_int_equal(ms[j].partition, 0);
			seen0++;
		}
	}
	assert_int_equal(seen0, want);
	c->ops->destroy(c);
}

static void test_two_consumers_split(void **state)
{
	(void)state;
	char group[160];
	snprintf(group, sizeof group, "%s_g2", topic);
	struct hooks h1 = {0}, h2 = {0};
	struct sl_consumer *c1 = open_consumer(group, &h1);
	struct sl_msg ms[200];
	struct sl_err e = {0};
	int64_t deadline = sl_mono_ms() + 20000;
	while (h1.n_assign == 0 && sl_mono_ms() < deadline)
		assert_true(c1->ops->poll(c1, ms, 200, 200, &e) >= 0);
	assert_true(h1.n_assign > 0);
	struct sl_consumer *c2 = open_consumer(group, &h2);
	deadline = sl_mono_ms() + 40000;
	for (;;) {
		assert_true(c1->ops->poll(c1, ms, 200, 100, &e) >= 0);
		assert_true(c2->ops->poll(c2, ms, 200, 100, &e) >= 0);
		int a1 = 0, a2 = 0, both = 0;
		for (int p = 0; p < PARTS; p++) {
			a1 += h1.assigned[p];
			a2 += h2.assigned[p];
			both += h1.assigned[p] && h2.assigned[p];
		}
		if (a1 > 0 && a2 > 0 && a1 + a2 == PARTS && both == 0)
			break;
		if (sl_mono_ms() > deadline)
			fail_msg("partitions not split: c1 has %d, c2 has %d", a1, a2);
	}
	assert_true(h2.n_assign > 0);
	c2->ops->destroy(c2);
	c1->ops->destroy(c1);
}

static void test_bad_broker_reports(void **state)
{
	(void)state;
	/* A message larger than message_max is refused at produce time with a message naming the topic. */
	struct sl_kafka_conf small = kc;
	small.message_max = 1000;
	struct sl_err e = {0};
	struct sl_producer *p = NULL;
	assert_int_equal(sl_kafka_producer(&small, on_delivery, NULL, &p, &e), 0);
	static char big[5000];
	memset(big, 'x', sizeof big);
	struct sl_msg m = {.topic = topic, .partition = -1, .key = "k", .key_len = 1, .value = big, .value_len = 5000};
	int rc = p->ops->produce(p, &m, (void *)1, 1000, &e);
	assert_int_equal(rc, SL_ETOOBIG);
	assert_non_null(strstr(e.msg, topic));
	p->ops->destroy(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ensure_topic),
		cmocka_unit_test(test_produce),
		cmocka_unit_test(test_consume_commit_reopen),
		cmocka_unit_test(test_two_consumers_split),
		cmocka_unit_test(test_bad_broker_reports),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
