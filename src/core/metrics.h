/* Metrics registry: counters, gauges and histograms, lock-free to update, exported as Prometheus text (0.0.4).
 * A metric is registered once (name, help, one optional label set like `pipeline="users"`) and then updated through
 * its pointer from any thread. Names follow Prometheus habits: `sluice_` prefix, base units, `_total` for counters. */
#ifndef SL_METRICS_H
#define SL_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

enum sl_metric_kind { SL_METRIC_COUNTER, SL_METRIC_GAUGE, SL_METRIC_HISTOGRAM };

#define SL_HIST_MAX_BUCKETS 24

struct sl_metric {
	enum sl_metric_kind kind;
	char *name, *help, *labels; /* labels: `k="v",k2="v2"` without braces, or "" */
	_Atomic uint64_t count;     /* counter value; histogram observation count */
	_Atomic int64_t gauge;      /* gauge value (integers; scale in the name, e.g. _bytes) */
	_Atomic uint64_t sum_micros;/* histogram sum, in millionths of the unit */
	size_t nbuckets;
	double bounds[SL_HIST_MAX_BUCKETS];
	_Atomic uint64_t buckets[SL_HIST_MAX_BUCKETS]; /* non-cumulative counts; +Inf is count - sum(buckets) */
	struct sl_metric *next;
};

struct sl_metrics;

/* The process-wide registry (created on first use). Tests may create their own. */
struct sl_metrics *sl_metrics_global(void);
struct sl_metrics *sl_metrics_new(void);
void sl_metrics_free(struct sl_metrics *m);

/* Registration returns the existing metric when name+labels were registered before (same kind), else a new one;
 * NULL only on out-of-memory or a kind clash. */
struct sl_metric *sl_counter(struct sl_metrics *m, const char *name, const char *labels, const char *help);
struct sl_metric *sl_gauge(struct sl_metrics *m, const char *name, const char *labels, const char *help);
/* bounds: ascending upper bounds (in the metric's unit, e.g. seconds), at most SL_HIST_MAX_BUCKETS. */
struct sl_metric *sl_histogram(struct sl_metrics *m, const char *name, const char *labels, const char *help,
			       const double *bounds, size_t nbounds);
/* Looks a metric up without creating it. */
struct sl_metric *sl_metric_find(struct sl_metrics *m, const char *name, const char *labels);

static inline void sl_counter_add(struct sl_metric *c, uint64_t n) { if (c) atomic_fetch_add_explicit(&c->count, n, memory_order_relaxed); }
static inline void sl_gauge_set(struct sl_metric *g, int64_t v) { if (g) atomic_store_explicit(&g->gauge, v, memory_order_relaxed); }
static inline void sl_gauge_add(struct sl_metric *g, int64_t v) { if (g) atomic_fetch_add_explicit(&g->gauge, v, memory_order_relaxed); }
static inline uint64_t sl_counter_get(const struct sl_metric *c) { return c ? atomic_load(&c->count) : 0; }
static inline int64_t sl_gauge_get(const struct sl_metric *g) { return g ? atomic_load(&g->gauge) : 0; }
void sl_histogram_observe(struct sl_metric *h, double v);
/* The q-quantile (0..1) estimated from the buckets by linear interpolation; 0 when empty. */
double sl_histogram_quantile(const struct sl_metric *h, double q);

/* Latency buckets in seconds, 100 µs .. 10 s. */
extern const double sl_latency_buckets[];
extern const size_t sl_latency_nbuckets;

/* Appends the whole registry in Prometheus text exposition format. */
void sl_metrics_export(struct sl_metrics *m, struct sl_buf *out);

#endif
