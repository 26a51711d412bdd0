/* Metrics registry and Prometheus text export (see metrics.h). Registration takes a lock; updates are atomics. */
#include "core/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sl_metrics {
	pthread_mutex_t lock;
	struct sl_metric *head, *tail;
};

const double sl_latency_buckets[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
				     0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
const size_t sl_latency_nbuckets = sizeof sl_latency_buckets / sizeof *sl_latency_buckets;

static struct sl_metrics *g_metrics;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void make_global(void) { g_metrics = sl_metrics_new(); }

struct sl_metrics *sl_metrics_global(void)
{
	pthread_once(&g_once, make_global);
	return g_metrics;
}

struct sl_metrics *sl_metrics_new(void)
{
	struct sl_metrics *m = calloc(1, sizeof *m);
	if (m)
		pthread_mutex_init(&m->lock, NULL);
	return m;
}

void sl_metrics_free(struct sl_metrics *m)
{
	if (!m)
		return;
	for (struct sl_metric *x = m->head; x;) {
		struct sl_metric *next = x->next;
		free(x->name);
		free(x->help);
		free(x->labels);
		free(x);
		x = next;
	}
	pthread_mutex_destroy(&m->lock);
	free(m);
}

static struct sl_metric *find_locked(struct sl_metrics *m, const char *name, const char *labels)
{
	for (struct sl_metric *x = m->head; x; x = x->next)
		if (!strcmp(x->name, name) && !strcmp(x->labels, labels ? labels : ""))
			return x;
	return NULL;
}

struct sl_metric *sl_metric_find(struct sl_metrics *m, const char *name, const char *labels)
{
	pthread_mutex_lock(&m->lock);
	struct sl_metric *x = find_locked(m, name, labels);
	pthread_mutex_unlock(&m->lock);
	return x;
}

static struct sl_metric *reg(struct sl_metrics *m, enum sl_metric_kind kind, const char *name, const char *labels,
			     const char *help, const double *bounds, size_t nbounds)
{
	if (!m || nbounds > SL_HIST_MAX_BUCKETS)
		return NULL;
	pthread_mutex_lock(&m->lock);
	struct sl_metric *x = find_locked(m, name, labels);
	if (x) {
		pthread_mutex_unlock(&m->lock);
		return x->kind == kind ? x : NULL;
	}
	x = calloc(1, sizeof *x);
	if (x) {
		x->kind = kind;
		x->name = strdup(name);
		x->help = strdup(help ? help : "");
		x->labels = strdup(labels ? labels : "");
		x->nbuckets = nbounds;
		for (size_t i = 0; i < nbounds; i++)
			x->bounds[i] = bounds[i];
		if (!x->name || !x->help || !x->labels) {
			free(x->name);
			free(x->help);
			free(x->labels);
			free(x);
			x = NULL;
		} else {
			if (m->tail)
				m->tail->next = x;
			else
				m->head = x;
			m->tail = x;
		}
	}
	pthread_mutex_unlock(&m->lock);
	return x;
}

struct sl_metric *sl_counter(struct sl_metrics *m, const char *name, const char *labels, const char *help)
{
	return reg(m, SL_METRIC_COUNTER, name, labels, help, NULL, 0);
}

struct sl_metric *sl_gauge(struct sl_metrics *m, const char *name, const char *labels, const char *help)
{
	return reg(m, SL_METRIC_GAUGE, name, labels, help, NULL, 0);
}

struct sl_metric *sl_histogram(struct sl_metrics *m, const char *name, const char *labels, const char *help,
			       const double *bounds, size_t nbounds)
{
	return reg(m, SL_METRIC_HISTOGRAM, name, labels, help, bounds, nbounds);
}

void sl_histogram_observe(struct sl_metric *h, double v)
{
	if (!h || !(v >= 0))
		return;
	size_t i = 0;
	while (i < h->nbuckets && v > h->bounds[i])
		i++;
	if (i < h->nbuckets)
		atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_micros, (uint64_t)llround(v * 1e6), memory_order_relaxed);
	atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
}

double sl_histogram_quantile(const struct sl_metric *h, double q)
{
	uint64_t total = atomic_load(&h->count);
	if (!total)
		return 0;
	double rank = q * (double)total, seen = 0, lo = 0;
	for (size_t i = 0; i < h->nbuckets; i++) {
		double c = (double)atomic_load(&h->buckets[i]);
		if (seen + c >= rank && c > 0)
			return lo + (h->bounds[i] - lo) * ((rank - seen) / c);
		seen += c;
		lo = h->bounds[i];
	}
	return h->nbuckets ? h->bounds[h->nbuckets - 1] : 0;
}

static void fmt_double(struct sl_buf *out, double v)
{
	if (isinf(v))
		sl_buf_puts(out, v > 0 ? "+Inf" : "-Inf");
	else
		sl_buf_printf(out, "%.17g", v);
}

static void series(struct sl_buf *out, const struct sl_metric *x, const char *suffix, const char *extra)
{
	sl_buf_puts(out, x->name);
	sl_buf_puts(out, suffix);
	if (x->labels[0] || extra) {
		sl_buf_putc(out, '{');
		sl_buf_puts(out, x->labels);
		if (extra) {
			if (x->labels[0])
				sl_buf_putc(out, ',');
			sl_buf_puts(out, extra);
		}
		sl_buf_putc(out, '}');
	}
	sl_buf_putc(out, ' ');
}

void sl_metrics_export(struct sl_metrics *m, struct sl_buf *out)
{
	static const char *kinds[] = {"counter", "gauge", "histogram"};
	pthread_mutex_lock(&m->lock);
	for (struct sl_metric *x = m->head; x; x = x->next) {
		/* HELP/TYPE once per family: only for the first series of a name. */
		int first = 1;
		for (struct sl_metric *y = m->head; y != x; y = y->next)
			if (!strcmp(y->name, x->name)) {
				first = 0;
				break;
			}
		if (first) {
			sl_buf_printf(out, "# HELP %s ", x->name);
			for (const char *p = x->help; *p; p++) {
				if (*p == '\\')
					sl_buf_puts(out, "\\\\");
				else if (*p == '\n')
					sl_buf_puts(out, "\\n");
				else
					sl_buf_putc(out, *p);
			}
			sl_buf_printf(out, "\n# TYPE %s %s\n", x->name, kinds[x->kind]);
		}
		switch (x->kind) {
		case SL_METRIC_COUNTER:
			series(out, x, "", NULL);
			sl_buf_printf(out, "%llu\n", (unsigned long long)atomic_load(&x->count));
			break;
		case SL_METRIC_GAUGE:
			series(out, x, "", NULL);
			sl_buf_printf(out, "%lld\n", (long long)atomic_load(&x->gauge));
			break;
		case SL_METRIC_HISTOGRAM: {
			uint64_t cum = 0;
			char le[64];
			for (size_t i = 0; i < x->nbuckets; i++) {
				cum += atomic_load(&x->buckets[i]);
				snprintf(le, sizeof le, "le=\"%.17g\"", x->bounds[i]);
				series(out, x, "_bucket", le);
				sl_buf_printf(out, "%llu\n", (unsigned long long)cum);
			}
			uint64_t total = atomic_load(&x->count);
			series(out, x, "_bucket", "le=\"+Inf\"");
			sl_buf_printf(out, "%llu\n", (unsigned long long)(total > cum ? total : cum));
			series(out, x, "_sum", NULL);
			fmt_double(out, (double)atomic_load(&x->sum_micros) / 1e6);
			sl_buf_putc(out, '\n');
			series(out, x, "_count", NULL);
			sl_buf_printf(out, "%llu\n", (unsigned long long)(total > cum ? total : cum));
			break;
		}
		}
	}
	pthread_mutex_unlock(&m->lock);
}
