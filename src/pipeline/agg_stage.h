/* The second stage of an aggregate output on Kafka (aggregate_state: changelog, docs/processing.md): the processor's
 * first stage produces each record an aggregate output takes to the output's repartition topic, keyed by its group
 * key, in a Kafka transaction with the source offsets; this stage, a thread of the same processor, consumes the
 * repartition topic in group <group>.<output> (read_committed), keeps one aggregate state per assigned partition
 * (restored from the changelog topic before any record of it is added), writes the changed rows to the sink, then
 * in one transaction produces the changed state entries to the compacted changelog topic and commits the
 * repartition offsets. Internal to src/pipeline/. */
#ifndef SL_PIPELINE_AGG_STAGE_H
#define SL_PIPELINE_AGG_STAGE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pipeline/pipeline.h"

/* The topics and groups of output oi: <topic>.<pipeline>.<output>.repartition / .changelog, group <group>.<output>,
 * and this processor's transactional ids (stable across its restarts: they hash data_dir and the host name, so a
 * restarted processor fences its predecessor and aborts the transaction it left open). */
struct sl_agg_stage_names {
	char repartition[512], changelog[512], group[512], txn_id[600];
};
void sl_agg_stage_names(const struct sl_conf *c, const struct sl_pipeline *p, size_t oi, struct sl_agg_stage_names *n);
/* The first stage's transactional id. */
void sl_agg_stage_source_txn_id(const struct sl_conf *c, const struct sl_pipeline *p, char *out, size_t outsz);

/* Watermark propagation (Flink's, in effect): with each transaction it commits, and when it has read a source
 * partition to its end, the first stage tells every partition of the repartition topic how far each source partition
 * it owns has got, with a marker record: no key, no value, and the header SL_PROGRESS_HEADER whose value is
 * "<source partition> <newest event time in ms, or -> <active|idle>". The second stage's watermark is the slowest
 * active source partition's (sl_aggregate_track_sources), so a backlog read one source partition after another makes
 * no record late. */
#define SL_PROGRESS_HEADER "sluice.progress"
/* Writes a marker's header value into buf (at least 64 bytes); returns its length. */
size_t sl_agg_stage_progress_format(char *buf, size_t bufsz, int32_t partition, int64_t newest_ms, bool idle);
/* Reads one; SL_EINVAL when it is not one. newest_ms: INT64_MIN for "-". */
int sl_agg_stage_progress_parse(const char *s, int32_t *partition, int64_t *newest_ms, bool *idle);

struct sl_agg_stage;
/* Starts output oi's second stage (a thread). nparts: the repartition topic's partitions (already created). */
int sl_agg_stage_start(struct sl_conf *c, struct sl_pipeline *p, size_t oi, struct sl_agg_stage **out,
		       struct sl_err *err);
/* Whether the stage ended (an error). */
bool sl_agg_stage_ended(struct sl_agg_stage *s);
/* Ends the stage and returns its error (err filled) or 0. drain: the first stage has read everything (a drain), so
 * the stage first reads everything committed to its topic and emits the windows that closed, until nothing has
 * come for 3 s (or *stop is set); otherwise it stops after the batch in hand. */
int sl_agg_stage_stop(struct sl_agg_stage *s, bool drain, volatile sig_atomic_t *stop, struct sl_err *err);

#endif
