/* What the ingest and process loops share: the dead-letter headers, metrics and progress lines. The log backend is
 * topic/'s (sl_topic_store_open). Internal to src/pipeline/. */
#ifndef SL_PIPELINE_RUNTIME_H
#define SL_PIPELINE_RUNTIME_H

#include <stdint.h>

#include "pipeline/pipeline.h"
#include "core/clock.h"
#include "core/metrics.h"
#include "topic/topic.h"

/* The config's log backend (topic.h). */
static inline int sl_pipeline_topics(const struct sl_conf *c, struct sl_topic_store **out, struct sl_err *err)
{
	return sl_topic_store_open(c->kafka, c->data_dir, 0, out, err);
}

/* The group's lag over every partition of topic (not only those assigned to this process), so draining cannot end
 * before a consumer got its partitions; negative SL_E* when unknown. */
int64_t sl_pipeline_lag(struct sl_topic_store *ts, const char *group, const char *topic);

/* Headers that say why a record went to the dead-letter topic. */
void sl_pipeline_dlq_headers(struct sl_header h[6], const char *stage, const char *error, const char *pipeline,
		    const char *src_topic, char partbuf[16], int32_t partition, char offbuf[24], int64_t offset);

/* Per-pipeline metrics (Prometheus names), registered once in the global registry. */
struct sl_pipeline_metrics {
	struct sl_metric *pages, *records, *bytes, *delivered, *delivery_failures, *ingest_dlq;
	struct sl_metric *consumed, *written, *process_dlq, *rejected, *retries, *batches, *lag, *paused;
	struct sl_metric *batch_records, *write_seconds, *e2e_seconds;
};
void sl_pipeline_metrics(const char *pipeline, struct sl_pipeline_metrics *m);

/* A progress line on stderr: rewritten in place on a terminal; on a pipe or file, a new line at most every 10 s
 * (and always for the final one), so logs stay readable. */
void sl_pipeline_progress(bool final, const char *fmt, ...) __attribute__((format(printf, 2, 3)));


#endif
