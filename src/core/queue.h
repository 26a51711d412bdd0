/* A bounded queue between threads, limited in bytes (and in items): a full queue blocks its producer until the
 * consumer frees room or the deadline passes — backpressure, never a drop. The byte cost of an item is given by the
 * producer (its payload size), so the bound holds whatever the record sizes. One item larger than the whole limit is
 * still admitted when the queue is empty, so a big record cannot wedge the pipeline. */
#ifndef SL_QUEUE_H
#define SL_QUEUE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sl_queue {
	pthread_mutex_t lock;
	pthread_cond_t not_empty, not_full;
	void **items;
	size_t *sizes;
	size_t cap_items, head, count;
	size_t max_bytes, bytes;
	bool closed;
	uint64_t blocked_pushes; /* how often a producer had to wait: a backpressure signal for metrics */
};

int sl_queue_init(struct sl_queue *q, size_t max_items, size_t max_bytes);
void sl_queue_destroy(struct sl_queue *q);
/* Waits up to timeout_ms (-1 forever, 0 not at all) for room. 0 ok, SL_ETIMEDOUT, SL_ECLOSED. */
int sl_queue_push(struct sl_queue *q, void *item, size_t bytes, int timeout_ms);
/* Waits up to timeout_ms for an item. 0 ok, SL_ETIMEDOUT, SL_ECLOSED once closed and drained. */
int sl_queue_pop(struct sl_queue *q, void **item, int timeout_ms);
/* Wakes everyone; pushes fail from now on, pops drain what is left. */
void sl_queue_close(struct sl_queue *q);
size_t sl_queue_bytes(struct sl_queue *q);
size_t sl_queue_count(struct sl_queue *q);

#endif
