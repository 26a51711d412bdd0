/* What the ingest and process loops share: opening the log backend chosen by the config (embedded or Kafka), the
 * dead-letter producer, and time helpers. Internal to src/pipeline/. */
#ifndef SL_PIPELINE_RUNTIME_H
#define SL_PIPELINE_RUNTIME_H

#include <stdint.h>

#include "pipeline/pipeline.h"
#include "core/clock.h"
#include "core/metrics.h"
#include "topic/topic.h"

struct sl_backend {
	struct sl_embedded_log *emb; /* always open: cursors live here; and topics when there is no kafka section */
	bool kafka;
	struct sl_kafka_conf kc;     /* bound from the kafka: section when present */
	struct sl_kafka_lagger *lagger; /* the group-wide lag, one client for the run */
};

int sl_backend_open(struct sl_conf *c, struct sl_backend *b, struct sl_err *err);
void sl_backend_close(struct sl_backend *b);
int sl_backend_ensure_topic(struct sl_backend *b, struct sl_conf *c, const char *topic, int partitions,
			    int replication, struct sl_err *err);
int sl_backend_producer(struct sl_backend *b, struct sl_conf *c, sl_delivery_fn fn, void *ctx,
			struct sl_producer **out, struct sl_err *err);
int sl_backend_consumer(struct sl_backend *b, struct sl_conf *c, const char *group, const char *topic,
			struct sl_consumer **out, struct sl_err *err);

/* The group's lag over every partition of topic (not only those assigned to this process), so draining cannot end
 * before a consumer got its partitions. */
int64_t sl_backend_lag(struct sl_backend *b, struct sl_consumer *cons, const char *group, const char *topic);

/* Headers that say why a record went to the dead-letter topic. */
void sl_dlq_headers(struct sl_header h[6], const char *stage, const char *error, const char *pipeline,
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
void sl_progress(bool final, const char *fmt, ...) __attribute__((format(printf, 2, 3)));


#endif
