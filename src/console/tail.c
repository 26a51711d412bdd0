/* The message browser's live tail: GET /api/kafka/tail?topic=T[&partition=P] answers text/event-stream (server-sent
 * events) with one "message" event per new message of the topic — the same JSON object as a row of
 * /api/kafka/messages, its id "partition:offset" — from the end of each partition as it was when the tail opened.
 *
 * Bounded three ways, because each tail holds a thread and a socket: at most console.max_tails at once (the next
 * gets 503 with Retry-After before anything is streamed), each for at most console.tail_max_time (then an "end"
 * event and the connection closes), and each ends as soon as its client goes away (the socket is polled between
 * reads, and a heartbeat comment every console.tail_heartbeat makes a silent disconnect show as a failed write).
 * The thread reads the collector's log (topic/): the partitions' high watermarks every TAIL_POLL_MS, and a browse
 * from the last offset sent only where a partition grew, so an idle tail costs one watermark request per partition
 * per poll. Threads are joined when the next tail opens and at sl_console_stop, before the log is closed. */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "console/internal.h"
#include "core/log.h"
#include "topic/topic.h"

#define COMP "console"
/* How often a tail looks at the watermarks. */
#define TAIL_POLL_MS 250
/* Messages read per partition per poll at most (a burst is sent over several polls). */
#define TAIL_BATCH 200
/* A client that does not take an event within this is gone. */
#define TAIL_WRITE_MS 10000
#define TAIL_MAX_PARTS 4096

struct sl_con_tail {
	struct sl_con_tail *next;
	struct sl_console *c;
	pthread_t thread;
	bool started;
	volatile int done;      /* the thread has finished: join it */
	int fd;
	char topic[256];
	int32_t partition;      /* -1: every partition */
	int np;
};

int64_t sl_con_tails_open(struct sl_console *c)
{
	pthread_mutex_lock(&c->tail_lock);
	int64_t n = c->ntails;
	pthread_mutex_unlock(&c->tail_lock);
	return n;
}

/* Joins the finished tails' threads (lock held). */
static void reap(struct sl_console *c)
{
	for (struct sl_con_tail **pp = &c->tails; *pp;) {
		struct sl_con_tail *t = *pp;
		if (t->done) {
			*pp = t->next;
			if (t->started)
				pthread_join(t->thread, NULL);
			free(t);
		} else
			pp = &t->next;
	}
}

/* Whether the client is still there: a readable socket with nothing to read (EOF) or an error means gone. */
static bool client_here(int fd, int wait_ms)
{
	struct pollfd pf = {.fd = fd, .events = POLLIN | POLLRDHUP};
	int r = poll(&pf, 1, wait_ms);
	if (r <= 0)
		return r == 0 || errno == EINTR;
	if (pf.revents & (POLLHUP | POLLERR | POLLRDHUP | POLLNVAL))
		return false;
	char b[256];
	ssize_t n = recv(fd, b, sizeof b, MSG_DONTWAIT); /* an EventSource sends nothing after its request */
	return n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR));
}

/* Writes all of b; false when the client does not take it in time or is gone. */
static bool send_all(int fd, const char *p, size_t n)
{
	int64_t deadline = sl_con_now_ms() + TAIL_WRITE_MS;
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && (errno == EAGAIN || errno == EINTR) && sl_con_now_ms() < deadline) {
			struct pollfd pf = {.fd = fd, .events = POLLOUT};
			poll(&pf, 1, 100);
			continue;
		}
		return false;
	}
	return true;
}

struct tail_read {
	struct sl_console *c;
	struct sl_buf *out;
	int64_t sent;
};

static bool tail_one(void *ctx, const struct sl_msg *m)
{
	struct tail_read *r = ctx;
	/* The row's JSON has no raw newline (every string in it is escaped), so it is one data: line. */
	sl_buf_printf(r->out, "id: %" PRId32 ":%" PRId64 "\nevent: message\ndata: ", m->partition, m->offset);
	sl_con_msg_json(r->c, m, r->out);
	sl_buf_puts(r->out, "\n\n");
	r->sent++;
	return true;
}

static void *tail_main(void *arg)
{
	struct sl_con_tail *t = arg;
	struct sl_console *c = t->c;
	pthread_mutex_lock(&c->lock);
	struct sl_topic_store *log = c->log;
	pthread_mutex_unlock(&c->lock);
	int64_t *next = calloc((size_t)t->np, sizeof *next);
	struct sl_buf out;
	sl_buf_init(&out);
	struct sl_err err = {0};
	const char *why = "client gone";
	int64_t start = sl_con_now_ms(), last_write = start, sent = 0;
	bool ok = next && log;
	/* From the end as it is now: the tail shows what arrives from here on. */
	for (int p = 0; ok && p < t->np; p++) {
		int64_t lo = 0, hi = 0;
		if ((t->partition < 0 || p == t->partition) && log->ops->watermarks(log, t->topic, p, &lo, &hi, &err)) {
			ok = false;
			why = "the log did not answer";
		}
		next[p] = hi;
	}
	sl_buf_printf(&out, "retry: 3000\nevent: open\ndata: {\"topic\":");
	sl_buf_json_str(&out, t->topic, strlen(t->topic));
	sl_buf_printf(&out, ",\"partition\":%" PRId32 ",\"max_ms\":%" PRId64 ",\"ok\":%s}\n\n", t->partition,
		      c->cc.tail_max_ms, ok ? "true" : "false");
	if (!send_all(t->fd, out.data, out.len))
		ok = false;
	while (ok && !c->stop) {
		int64_t now = sl_con_now_ms();
		if (now - start >= c->cc.tail_max_ms) {
			why = "max time";
			break;
		}
		sl_buf_reset(&out);
		struct tail_read r = {.c = c, .out = &out};
		for (int p = 0; p < t->np && !c->stop; p++) {
			if (t->partition >= 0 && p != t->partition)
				continue;
			int64_t lo = 0, hi = 0;
			if (log->ops->watermarks(log, t->topic, p, &lo, &hi, &err))
				continue; /* a broker away for a moment: the next poll tries again */
			if (next[p] < lo)
				next[p] = lo; /* retention went past us */
			if (hi <= next[p])
				continue;
			int64_t n = hi - next[p] < TAIL_BATCH ? hi - next[p] : TAIL_BATCH, after = next[p];
			if (log->ops->browse(log, t->topic, p, next[p], -1, n, 3000, tail_one, &r, &after, &err) == 0 &&
			    after > next[p])
				next[p] = after;
		}
		if (!out.len && now - last_write >= c->cc.tail_heartbeat_ms)
			sl_buf_puts(&out, ": heartbeat\n\n");
		if (out.len) {
			if (!sl_buf_ok(&out) || !send_all(t->fd, out.data, out.len))
				break;
			last_write = sl_con_now_ms();
			sent += r.sent;
		}
		if (!client_here(t->fd, TAIL_POLL_MS))
			break;
	}
	if (c->stop)
		why = "console stopping";
	if (ok && strcmp(why, "client gone")) {
		sl_buf_reset(&out);
		sl_buf_printf(&out, "event: end\ndata: {\"reason\":\"%s\",\"sent\":%" PRId64 "}\n\n", why, sent);
		send_all(t->fd, out.data, out.len);
	}
	sl_debug(COMP, "live tail of %s ended: %s after %" PRId64 " messages", t->topic, why, sent);
	sl_buf_free(&out);
	free(next);
	shutdown(t->fd, SHUT_RDWR);
	close(t->fd);
	pthread_mutex_lock(&c->tail_lock);
	c->ntails--;
	t->done = 1;
	pthread_mutex_unlock(&c->tail_lock);
	return NULL;
}

/* The HTTP layer's hand-over (struct sl_http_resp.stream): fd -1 when the stream never started. */
static void tail_start(void *arg, int fd)
{
	struct sl_con_tail *t = arg;
	struct sl_console *c = t->c;
	t->fd = fd;
	pthread_mutex_lock(&c->tail_lock);
	if (fd >= 0 && !c->stop && pthread_create(&t->thread, NULL, tail_main, t) == 0) {
		t->started = true;
		pthread_mutex_unlock(&c->tail_lock);
		return;
	}
	/* Not started: the slot it held goes back. */
	c->ntails--;
	t->done = 1;
	pthread_mutex_unlock(&c->tail_lock);
	if (fd >= 0)
		close(fd);
}

void sl_con_api_tail(struct sl_console *c, const char *query, struct sl_con_resp *rs)
{
	char topic[256];
	int64_t part;
	rs->ctype = "application/json";
	if (sl_con_query_get(query, "topic", topic, sizeof topic) != 1 || !topic[0] ||
	    sl_con_query_int(query, "partition", -1, -1, TAIL_MAX_PARTS - 1, &part) < 0) {
		rs->status = 400;
		sl_buf_puts(&rs->body, "{\"error\":\"bad query: topic=NAME&partition=N (-1 or absent: every partition)\"}");
		return;
	}
	pthread_mutex_lock(&c->lock);
	struct sl_topic_store *log = c->log;
	pthread_mutex_unlock(&c->lock);
	struct sl_err err = {0};
	int np = 0;
	if (!log) {
		rs->status = 503;
		sl_buf_puts(&rs->body, "{\"error\":\"the log is not reachable yet\"}");
		return;
	}
	int rc = log->ops->partitions(log, topic, &np, &err);
	if (!rc && np <= 0)
		rc = sl_err_set(&err, SL_ENOTFOUND, "no topic %s", topic);
	if (!rc && (part >= np || np > TAIL_MAX_PARTS))
		rc = sl_err_set(&err, SL_ENOTFOUND, "topic %s has no partition %" PRId64 " (it has %d)", topic, part, np);
	if (rc) {
		sl_con_scrub_paths(c, err.msg, sizeof err.msg);
		rs->status = rc == SL_ENOTFOUND ? 404 : 503;
		sl_buf_puts(&rs->body, "{\"error\":");
		sl_buf_json_str(&rs->body, err.msg, strlen(err.msg));
		sl_buf_puts(&rs->body, "}");
		return;
	}
	struct sl_con_tail *t = calloc(1, sizeof *t);
	pthread_mutex_lock(&c->tail_lock);
	reap(c);
	bool room = t && !c->stop && c->ntails < c->cc.max_tails;
	if (room) {
		c->ntails++;
		t->c = c;
		t->fd = -1;
		t->partition = (int32_t)part;
		t->np = np;
		snprintf(t->topic, sizeof t->topic, "%s", topic);
		t->next = c->tails;
		c->tails = t;
	}
	int64_t max = c->cc.max_tails;
	pthread_mutex_unlock(&c->tail_lock);
	if (!room) {
		free(t);
		rs->status = 503;
		sl_buf_printf(&rs->body, "{\"error\":\"%" PRId64 " live tails are open, the most this console allows "
			      "(console.max_tails); retry when one ends\"}", max);
		return;
	}
	rs->status = 200;
	rs->ctype = "text/event-stream";
	rs->cache_control = "no-store";
	rs->stream = tail_start;
	rs->stream_arg = t;
}

void sl_con_tails_stop(struct sl_console *c)
{
	/* c->stop is set: each tail leaves its loop within one poll (or one write timeout). */
	pthread_mutex_lock(&c->tail_lock);
	struct sl_con_tail *t = c->tails;
	c->tails = NULL;
	pthread_mutex_unlock(&c->tail_lock);
	while (t) {
		struct sl_con_tail *n = t->next;
		if (t->started)
			pthread_join(t->thread, NULL);
		free(t);
		t = n;
	}
}
