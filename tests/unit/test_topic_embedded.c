/* The embedded log through topic/'s store, as the pipeline and the console use it: produce (delivery only after the
 * commit), consume from a group's committed offsets, commit, watermarks, committed offsets and the group's lag,
 * browse by offset and by time, describe, cursors, and two producers on two threads keeping offsets dense. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "topic/topic.h"

struct env {
	char dir[128];
	struct sl_topic_store *ts;
};

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof *e);
	snprintf(e->dir, sizeof e->dir, "/tmp/sl_topic_emb_XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	struct sl_err err = {0};
	assert_int_equal(sl_topic_store_open(NULL, e->dir, 0, &e->ts, &err), 0);
	assert_string_equal(e->ts->backend, "embedded");
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	sl_topic_store_close(e->ts);
	char cmd[200];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", e->dir);
	assert_int_equal(system(cmd), 0);
	free(e);
	return 0;
}

struct deliveries {
	int ok, failed;
	int64_t offsets[2][1024];
	int n[2];
};

static void on_delivery(void *ctx, void *opaque, int err, const char *errmsg, int32_t partition, int64_t offset)
{
	struct deliveries *d = ctx;
	(void)opaque;
	(void)errmsg;
	if (err) {
		d->failed++;
		return;
	}
	d->ok++;
	if (partition >= 0 && partition < 2 && d->n[partition] < 1024)
		d->offsets[partition][d->n[partition]++] = offset;
}

static void produce(struct sl_topic_store *ts, const char *topic, int32_t partition, int count, int64_t ts_ms,
		    struct deliveries *d)
{
	struct sl_producer *p = NULL;
	struct sl_err err = {0};
	assert_int_equal(ts->ops->producer(ts, on_delivery, d, &p, &err), 0);
	for (int i = 0; i < count; i++) {
		char key[16], val[32];
		snprintf(key, sizeof key, "k%d", i);
		snprintf(val, sizeof val, "value-%d", i);
		struct sl_msg m = {.topic = topic, .partition = partition, .timestamp_ms = ts_ms, .key = key,
				   .key_len = strlen(key), .value = val, .value_len = strlen(val)};
		assert_int_equal(p->ops->produce(p, &m, NULL, 1000, &err), 0);
	}
	assert_int_equal(p->ops->flush(p, 10000, &err), 0);
	p->ops->poll(p, 0);
	assert_int_equal(p->ops->in_flight(p), 0);
	p->ops->destroy(p);
}

static void test_produce_consume_commit(void **state)
{
	struct env *e = *state;
	struct sl_topic_store *ts = e->ts;
	struct sl_err err = {0};
	assert_int_equal(ts->ops->ensure_topic(ts, "t", 2, 1, &err), 0);
	int np = 0;
	assert_int_equal(ts->ops->partitions(ts, "t", &np, &err), 0);
	assert_int_equal(np, 2);
	assert_int_equal(ts->ops->partitions(ts, "absent", &np, &err), SL_ENOTFOUND);

	struct deliveries d = {0};
	produce(ts, "t", 0, 5, 1000, &d);
	produce(ts, "t", 1, 3, 2000, &d);
	assert_int_equal(d.ok, 8);
	assert_int_equal(d.failed, 0);
	for (int i = 0; i < d.n[0]; i++)
		assert_int_equal(d.offsets[0][i], i); /* dense from 0, reported in order */

	int64_t lo = -1, hi = -1;
	assert_int_equal(ts->ops->watermarks(ts, "t", 0, &lo, &hi, &err), 0);
	assert_int_equal(lo, 0);
	assert_int_equal(hi, 5);
	assert_int_equal(ts->ops->watermarks(ts, "t", 1, &lo, &hi, &err), 0);
	assert_int_equal(hi, 3);

	/* A group with no commits: everything is lag, and committed says none. */
	int64_t lag = -1;
	assert_int_equal(ts->ops->group_lag(ts, "g", "t", &lag, &err), 0);
	assert_int_equal(lag, 8);
	struct sl_topic_part parts[2] = {{.partition = 0}, {.partition = 1}};
	assert_int_equal(ts->ops->committed(ts, "g", "t", parts, 2, &err), 0);
	assert_int_equal(parts[0].committed, -1);

	struct sl_consumer *c = NULL;
	assert_int_equal(ts->ops->consumer(ts, "g", "t", &c, &err), 0);
	struct sl_msg msgs[16];
	int got = 0;
	for (int tries = 0; tries < 50 && got < 8; tries++) {
		int n = c->ops->poll(c, msgs, 16, 100, &err);
		assert_true(n >= 0);
		for (int i = 0; i < n; i++) {
			assert_string_equal(msgs[i].topic, "t");
			char want[32];
			snprintf(want, sizeof want, "value-%d", (int)msgs[i].offset);
			assert_int_equal(msgs[i].value_len, strlen(want));
			assert_memory_equal(msgs[i].value, want, strlen(want));
			assert_int_equal(msgs[i].timestamp_ms, msgs[i].partition == 0 ? 1000 : 2000);
		}
		got += n;
	}
	assert_int_equal(got, 8);
	assert_int_equal(c->ops->commit(c, "t", 0, 3, &err), 0);
	assert_int_equal(c->ops->commit(c, "t", 1, 3, &err), 0);
	c->ops->destroy(c);

	assert_int_equal(ts->ops->committed(ts, "g", "t", parts, 2, &err), 0);
	assert_int_equal(parts[0].committed, 3);
	assert_int_equal(parts[1].committed, 3);
	assert_true(parts[0].commit_ms > 0);
	assert_int_equal(ts->ops->group_lag(ts, "g", "t", &lag, &err), 0);
	assert_int_equal(lag, 2);

	/* A new member of the group resumes at the commits: only partition 0's offsets 3 and 4 are left. */
	assert_int_equal(ts->ops->consumer(ts, "g", "t", &c, &err), 0);
	got = 0;
	for (int tries = 0; tries < 20; tries++) {
		int n = c->ops->poll(c, msgs + got, 16 - (size_t)got, 50, &err);
		assert_true(n >= 0);
		got += n;
		if (n == 0 && got)
			break;
	}
	assert_int_equal(got, 2);
	assert_int_equal(msgs[0].partition, 0);
	assert_int_equal(msgs[0].offset, 3);
	assert_int_equal(msgs[1].offset, 4);
	c->ops->destroy(c);

	int64_t t_ms = 0;
	assert_non_null(ts->ops->timestamp_at);
	assert_int_equal(ts->ops->timestamp_at(ts, "t", 1, 2, &t_ms, &err), 0);
	assert_int_equal(t_ms, 2000);
	assert_int_equal(ts->ops->timestamp_at(ts, "t", 1, 3, &t_ms, &err), SL_ENOTFOUND);
}

struct seen {
	int n;
	int64_t offsets[64];
	int32_t parts[64];
	int stop_after;
};

static bool collect(void *ctx, const struct sl_msg *m)
{
	struct seen *s = ctx;
	if (s->n < 64) {
		s->offsets[s->n] = m->offset;
		s->parts[s->n] = m->partition;
		s->n++;
	}
	return !s->stop_after || s->n < s->stop_after;
}

static void test_browse_describe_cursors(void **state)
{
	struct env *e = *state;
	struct sl_topic_store *ts = e->ts;
	struct sl_err err = {0};
	assert_int_equal(ts->ops->ensure_topic(ts, "b", 2, 1, &err), 0);
	assert_int_equal(ts->ops->ensure_topic(ts, "b-dlq", 1, 1, &err), 0);
	struct deliveries d = {0};
	produce(ts, "b", 0, 4, 1000, &d);
	produce(ts, "b", 0, 4, 5000, &d); /* offsets 4..7 are newer */
	produce(ts, "b", 1, 2, 1000, &d);

	struct seen s = {0};
	int64_t next = -1;
	assert_int_equal(ts->ops->browse(ts, "b", 0, 2, -1, 100, 1000, collect, &s, &next, &err), 0);
	assert_int_equal(s.n, 6);
	assert_int_equal(s.offsets[0], 2);
	assert_int_equal(s.offsets[5], 7);
	assert_int_equal(next, 8);

	/* Every partition, a callback that stops after 3. */
	memset(&s, 0, sizeof s);
	s.stop_after = 3;
	assert_int_equal(ts->ops->browse(ts, "b", -1, 0, -1, 100, 1000, collect, &s, &next, &err), 0);
	assert_int_equal(s.n, 3);
	assert_int_equal(next, s.offsets[2] + 1);

	/* By time: from the first message at or after 5000 ms. */
	memset(&s, 0, sizeof s);
	assert_int_equal(ts->ops->browse(ts, "b", 0, 0, 5000, 100, 1000, collect, &s, &next, &err), 0);
	assert_int_equal(s.n, 4);
	assert_int_equal(s.offsets[0], 4);

	/* max_scan bounds the read. */
	memset(&s, 0, sizeof s);
	assert_int_equal(ts->ops->browse(ts, "b", -1, 0, -1, 2, 1000, collect, &s, &next, &err), 0);
	assert_int_equal(s.n, 2);

	/* The named topics come first, then the others; watermarks and message counts per topic. */
	const char *first[] = {"b-dlq"};
	struct sl_topic_desc *td = NULL;
	size_t n = 0, nb = 9;
	assert_int_equal(ts->ops->describe(ts, first, 1, 10, &td, &n, NULL, 0, &nb, &err), 0);
	assert_int_equal(nb, 0);
	assert_true(n >= 2);
	assert_string_equal(td[0].name, "b-dlq");
	assert_int_equal(td[0].messages, 0);
	bool found = false;
	for (size_t i = 0; i < n; i++)
		if (!strcmp(td[i].name, "b")) {
			found = true;
			assert_int_equal(td[i].nparts, 2);
			assert_int_equal(td[i].parts[0].high, 8);
			assert_int_equal(td[i].parts[1].high, 2);
			assert_int_equal(td[i].parts[0].leader, -1);
			assert_int_equal(td[i].messages, 10);
		}
	assert_true(found);
	sl_topic_descs_free(td, n);

	char cur[64] = "";
	assert_int_equal(sl_topic_cursor_get(ts, "ingest:x", cur, sizeof cur, NULL), SL_ENOTFOUND);
	assert_int_equal(sl_topic_cursor_put(ts, "ingest:x", "page=3", &err), 0);
	assert_int_equal(sl_topic_cursor_put(ts, "ingest:x", "page=4", &err), 0);
	assert_int_equal(sl_topic_cursor_get(ts, "ingest:x", cur, sizeof cur, &err), 0);
	assert_string_equal(cur, "page=4");
}

struct thread_arg {
	struct sl_topic_store *ts;
	struct deliveries d;
};

static void *producer_thread(void *p)
{
	struct thread_arg *a = p;
	produce(a->ts, "c", 0, 300, 1000, &a->d);
	return NULL;
}

static bool count_dense(void *ctx, const struct sl_msg *m)
{
	int64_t *expect = ctx;
	if (m->offset != *expect)
		return false;
	(*expect)++;
	return true;
}

/* Two producers on two threads write one partition: every message is acknowledged once, with offsets dense and
 * distinct across both. */
static void test_concurrent_producers(void **state)
{
	struct env *e = *state;
	struct sl_err err = {0};
	assert_int_equal(e->ts->ops->ensure_topic(e->ts, "c", 1, 1, &err), 0);
	struct thread_arg a[2] = {{.ts = e->ts}, {.ts = e->ts}};
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, producer_thread, &a[i]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(a[0].d.ok + a[1].d.ok, 600);
	assert_int_equal(a[0].d.failed + a[1].d.failed, 0);
	/* Offsets reported to the two producers are disjoint and together 0..599. */
	static bool seen[600];
	memset(seen, 0, sizeof seen);
	for (int i = 0; i < 2; i++)
		for (int k = 0; k < a[i].d.n[0]; k++) {
			int64_t o = a[i].d.offsets[0][k];
			assert_true(o >= 0 && o < 600);
			assert_false(seen[o]);
			seen[o] = true;
		}
	int64_t lo, hi;
	assert_int_equal(e->ts->ops->watermarks(e->ts, "c", 0, &lo, &hi, &err), 0);
	assert_int_equal(lo, 0);
	assert_int_equal(hi, 600);
	int64_t expect = 0, next = 0;
	assert_int_equal(e->ts->ops->browse(e->ts, "c", 0, 0, -1, 1000, 1000, count_dense, &expect, &next, &err), 0);
	assert_int_equal(expect, 600);
}

static void test_inspect_does_not_create(void **state)
{
	(void)state;
	char dir[64];
	snprintf(dir, sizeof dir, "/tmp/sl_topic_none_XXXXXX");
	assert_non_null(mkdtemp(dir));
	struct sl_topic_store *ts = NULL;
	struct sl_err err = {0};
	assert_int_equal(sl_topic_store_open(NULL, dir, SL_TOPIC_INSPECT, &ts, &err), SL_ENOTFOUND);
	assert_non_null(strstr(err.msg, "not there yet"));
	char path[128];
	snprintf(path, sizeof path, "%s/log.db", dir);
	assert_int_not_equal(access(path, F_OK), 0);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_produce_consume_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_browse_describe_cursors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_producers, setup, teardown),
		cmocka_unit_test(test_inspect_does_not_create),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
