/* Bounded byte-limited queue (see queue.h). */
#include "core/queue.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "core/clock.h"
#include "core/err.h"

int sl_queue_init(struct sl_queue *q, size_t max_items, size_t max_bytes)
{
	if (!max_items)
		max_items = 1;
	q->items = calloc(max_items, sizeof *q->items);
	q->sizes = calloc(max_items, sizeof *q->sizes);
	if (!q->items || !q->sizes) {
		free(q->items);
		free(q->sizes);
		return SL_ENOMEM;
	}
	pthread_mutex_init(&q->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&q->not_empty, &ca);
	pthread_cond_init(&q->not_full, &ca);
	pthread_condattr_destroy(&ca);
	q->cap_items = max_items;
	q->head = q->count = q->bytes = 0;
	q->max_bytes = max_bytes;
	q->closed = false;
	q->blocked_pushes = 0;
	return 0;
}

void sl_queue_destroy(struct sl_queue *q)
{
	pthread_mutex_destroy(&q->lock);
	pthread_cond_destroy(&q->not_empty);
	pthread_cond_destroy(&q->not_full);
	free(q->items);
	free(q->sizes);
	q->items = NULL;
	q->sizes = NULL;
}

/* Waits on cv until ready() holds; returns 0, SL_ETIMEDOUT or SL_ECLOSED. */
#define WAIT_UNTIL(q, cv, cond, timeout_ms, on_wait)                                                   \
	do {                                                                                            \
		struct timespec ts_;                                                                    \
		if ((timeout_ms) > 0)                                                                   \
			sl_deadline(&ts_, CLOCK_MONOTONIC, (timeout_ms));                                                   \
		int waited_ = 0;                                                                        \
		while (!(cond)) {                                                                       \
			if ((timeout_ms) == 0) {                                                        \
				rc = SL_ETIMEDOUT;                                                      \
				break;                                                                  \
			}                                                                               \
			if (!waited_++) {                                                               \
				on_wait;                                                                \
			}                                                                               \
			if ((timeout_ms) < 0)                                                           \
				pthread_cond_wait(&(cv), &(q)->lock);                                   \
			else if (pthread_cond_timedwait(&(cv), &(q)->lock, &ts_) == ETIMEDOUT && !(cond)) { \
				rc = SL_ETIMEDOUT;                                                      \
				break;                                                                  \
			}                                                                               \
		}                                                                                       \
	} while (0)

int sl_queue_push(struct sl_queue *q, void *item, size_t bytes, int timeout_ms)
{
	int rc = 0;
	pthread_mutex_lock(&q->lock);
	WAIT_UNTIL(q, q->not_full,
		   q->closed || (q->count < q->cap_items && (q->count == 0 || q->bytes + bytes <= q->max_bytes)),
		   timeout_ms, q->blocked_pushes++);
	if (rc == 0 && q->closed)
		rc = SL_ECLOSED;
	if (rc == 0) {
		size_t tail = (q->head + q->count) % q->cap_items;
		q->items[tail] = item;
		q->sizes[tail] = bytes;
		q->count++;
		q->bytes += bytes;
		pthread_cond_signal(&q->not_empty);
	}
	pthread_mutex_unlock(&q->lock);
	return rc;
}

int sl_queue_pop(struct sl_queue *q, void **item, int timeout_ms)
{
	int rc = 0;
	pthread_mutex_lock(&q->lock);
	WAIT_UNTIL(q, q->not_empty, q->count > 0 || q->closed, timeout_ms, (void)0);
	if (rc == 0 && q->count == 0)
		rc = SL_ECLOSED;
	if (rc == 0) {
		*item = q->items[q->head];
		q->bytes -= q->sizes[q->head];
		q->head = (q->head + 1) % q->cap_items;
		q->count--;
		pthread_cond_broadcast(&q->not_full);
	}
	pthread_mutex_unlock(&q->lock);
	return rc;
}

void sl_queue_close(struct sl_queue *q)
{
	pthread_mutex_lock(&q->lock);
	q->closed = true;
	pthread_cond_broadcast(&q->not_empty);
	pthread_cond_broadcast(&q->not_full);
	pthread_mutex_unlock(&q->lock);
}

size_t sl_queue_bytes(struct sl_queue *q)
{
	pthread_mutex_lock(&q->lock);
	size_t b = q->bytes;
	pthread_mutex_unlock(&q->lock);
	return b;
}

size_t sl_queue_count(struct sl_queue *q)
{
	pthread_mutex_lock(&q->lock);
	size_t c = q->count;
	pthread_mutex_unlock(&q->lock);
	return c;
}
