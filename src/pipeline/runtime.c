/* Helpers shared by ingest and process (see runtime.h). */
#include <inttypes.h>
#include <stdarg.h>
#include <unistd.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "pipeline/runtime.h"

struct sl_live sl_live;

void sl_pipeline_progress(bool final, const char *fmt, ...)
{
	static double last_line;
	bool tty = isatty(STDERR_FILENO);
	if (!tty && !final && sl_mono_s() - last_line < 10)
		return;
	last_line = sl_mono_s();
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (tty)
		fprintf(stderr, "\r%s\033[K%s", line, final ? "\n" : "");
	else
		fprintf(stderr, "%s\n", line);
}

void sl_pipeline_metrics(const char *pipeline, struct sl_pipeline_metrics *m)
{
	struct sl_metrics *r = sl_metrics_global();
	char l[300];
	snprintf(l, sizeof l, "pipeline=\"%s\"", pipeline);
	m->pages = sl_counter(r, "sluice_ingest_pages_total", l, "Pages (API responses) fetched");
	m->records = sl_counter(r, "sluice_ingest_records_total", l, "Raw records read from the source");
	m->bytes = sl_counter(r, "sluice_ingest_bytes_total", l, "Bytes of source pages");
	m->delivered = sl_counter(r, "sluice_ingest_delivered_total", l, "Records the topic confirmed (the dead-letter topic is counted in sluice_ingest_dlq_total)");
	m->delivery_failures = sl_counter(r, "sluice_ingest_delivery_failures_total", l,
					  "Records the log did not confirm (their page is fetched again)");
	m->ingest_dlq = sl_counter(r, "sluice_ingest_dlq_total", l, "Records and bad pages the dead-letter topic confirmed");
	m->consumed = sl_counter(r, "sluice_process_consumed_total", l, "Records consumed from the topic");
	m->written = sl_counter(r, "sluice_process_written_total", l, "Rows the sink acknowledged");
	m->process_dlq = sl_counter(r, "sluice_process_dlq_total", l, "Records dead-lettered at decode or sink");
	m->rejected = sl_counter(r, "sluice_sink_rejected_total", l, "Rows the sink refused for good");
	m->retries = sl_counter(r, "sluice_sink_retries_total", l, "Batch writes retried after a transient error");
	m->batches = sl_counter(r, "sluice_process_batches_total", l, "Micro-batches written");
	m->lag = sl_gauge(r, "sluice_process_lag", l, "Records in the topic not yet committed by the group");
	m->paused = sl_gauge(r, "sluice_process_paused", l,
			     "1 while the consumer's partitions are paused because the sink cannot keep up");
	static const double sizes[] = {1, 10, 50, 100, 250, 500, 1000, 5000, 10000};
	m->batch_records = sl_histogram(r, "sluice_process_batch_records", l, "Records per micro-batch", sizes,
					sizeof sizes / sizeof *sizes);
	m->write_seconds = sl_histogram(r, "sluice_sink_write_seconds", l, "Time to write one micro-batch",
					sl_latency_buckets, sl_latency_nbuckets);
	m->e2e_seconds = sl_histogram(r, "sluice_end_to_end_seconds", l,
				      "From a record's log timestamp to its row being acknowledged", sl_latency_buckets,
				      sl_latency_nbuckets);
}

int64_t sl_pipeline_lag(struct sl_topic_store *ts, const char *group, const char *topic)
{
	int64_t lag = 0;
	struct sl_err err = {0};
	int rc = ts->ops->group_lag(ts, group, topic, &lag, &err);
	return rc ? rc : lag;
}

void sl_pipeline_dlq_headers(struct sl_header h[6], const char *stage, const char *error, const char *pipeline,
		    const char *src_topic, char partbuf[16], int32_t partition, char offbuf[24], int64_t offset)
{
	snprintf(partbuf, 16, "%" PRId32, partition);
	snprintf(offbuf, 24, "%" PRId64, offset);
	h[0] = (struct sl_header){"sluice.stage", stage, strlen(stage)};
	h[1] = (struct sl_header){"sluice.error", error, strlen(error)};
	h[2] = (struct sl_header){"sluice.pipeline", pipeline, strlen(pipeline)};
	h[3] = (struct sl_header){"sluice.topic", src_topic ? src_topic : "", src_topic ? strlen(src_topic) : 0};
	h[4] = (struct sl_header){"sluice.partition", partbuf, strlen(partbuf)};
	h[5] = (struct sl_header){"sluice.offset", offbuf, strlen(offbuf)};
}
