/* Aggregate outputs: an output with `aggregate:` groups the records by expressions, optionally into time windows,
 * and writes one row per group (and window) with its measures. Its configuration is checked when the file loads;
 * at run time its state lives in memory, and every batch hands the sink the rows that changed (update) or the
 * windows the watermark closed (final) together with the state entries that changed, which the SQLite sink stores in
 * the transaction of the rows and the input offsets (the embedded default): a restart restores the state and resumes
 * at the offsets it was committed with, so no record counts twice.
 *
 *   outputs:
 *     signups_per_minute:
 *       aggregate:
 *         group_by: [country]                      # columns, or { name: expression }
 *         window: { size: 1m, slide: 30s, time: arrival, lateness: 10s }   # slide: hopping; time: an expression
 *         measures: { signups: "count()", avg_age: "avg(age)", emails: "count_distinct(email)" }
 *         emit: final                              # update (default) | final
 *         late: dlq                                # dlq (default) | drop
 *       sink: { keyspace: spark_streams, table: signups_per_minute }
 *
 * Semantics (the Spark Structured Streaming ones, so Spark can be the oracle): a record with event time t belongs to
 * every window [start, start + size) with start a multiple of slide (of size for tumbling) and start <= t < start +
 * size. The watermark moves at the end of a batch to the newest event time read minus lateness; while records are
 * read, "newest" is the slowest input partition's newest (every partition must have delivered one), so that a
 * backlog read one partition after another does not make the later partitions' records late; once the processor
 * has caught up, the newest of all (for arrival time, the log's timestamps, and the clock too). A window whose end
 * is at or before the watermark is closed: records for it are late, and in final mode its row is written then and
 * its state dropped. A record that falls only in closed windows is late:
 * counted, and sent to the dead-letter topic (late: dlq) or dropped. Without window:, one row per group, updated. */
#ifndef SL_PIPELINE_AGGREGATE_H
#define SL_PIPELINE_AGGREGATE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/config.h"
#include "core/err.h"
#include "core/record.h"
#include "expr/expr.h"
#include "sink/sink.h"

struct sl_aggregate_conf;
struct sl_aggregate;

/* Parses an output's aggregate: section against the pipeline's full schema; fills schema with the result table's
 * columns (group columns, window_start, window_end, measures) and its key. */
int sl_aggregate_conf_load(const struct sl_cfg_node *n, const struct sl_schema *full, const char *section,
		     struct sl_schema *schema, struct sl_aggregate_conf **out, struct sl_err *err);
void sl_aggregate_conf_free(struct sl_aggregate_conf *c);
/* The primary key columns the result table gets when the sink names none: the group columns and window_start. */
void sl_aggregate_conf_default_key(const struct sl_aggregate_conf *c, struct sl_strlist *pk);
bool sl_aggregate_conf_emit_final(const struct sl_aggregate_conf *c);
bool sl_aggregate_conf_late_dlq(const struct sl_aggregate_conf *c);
bool sl_aggregate_conf_windowed(const struct sl_aggregate_conf *c);

/* nparts: the input topic's partitions (the watermark follows the slowest of them while records are read). */
int sl_aggregate_new(const struct sl_aggregate_conf *c, const struct sl_schema *out_schema, int nparts,
		     struct sl_aggregate **out, struct sl_err *err);
void sl_aggregate_free(struct sl_aggregate *g);
/* Scale-out (aggregate_state: changelog): the input partitions are the SOURCE topic's partitions, whose records
 * reach this state through a repartition topic. The watermark is then the slowest source partition's newest event
 * time (from its records and from the first stage's progress markers) over the partitions that are not idle, minus
 * lateness; it does not move until every source partition has reported; once all are idle (read to their end), the
 * newest of all, and for arrival time the clock too. A record of a partition makes it active again. Call right after
 * sl_aggregate_new, before any restore (the idle flags are part of the stored state). */
int sl_aggregate_track_sources(struct sl_aggregate *g);
/* A progress marker of source partition `partition`: its newest event time (INT64_MIN: none yet), and whether the
 * first stage has read it to its end. Kept in the state (stored at the next flush). */
void sl_aggregate_source_progress(struct sl_aggregate *g, int32_t partition, int64_t newest_ms, bool idle);
/* The event time a record has for c's windows (its expression, or arrival_ms for arrival time); SL_ENOTFOUND when
 * c has no window, SL_ETYPE when the expression gives null. */
int sl_aggregate_event_time(const struct sl_aggregate_conf *c, const struct sl_record *r, int64_t arrival_ms,
			    struct sl_expr_env *env, struct sl_arena *a, int64_t *t, struct sl_err *err);
/* Restores one state entry (sl_sink state_load's callback). */
int sl_aggregate_restore(void *g, const void *k, size_t klen, const void *v, size_t vlen);

/* Adds one record; *late is set when it fell only in closed windows (not counted). Strings the state keeps are
 * copied. An expression that fails is returned with err saying which. */
int sl_aggregate_add(struct sl_aggregate *g, const struct sl_record *r, int32_t partition, int64_t arrival_ms,
		     struct sl_expr_env *env, struct sl_arena *a, bool *late, struct sl_err *err);
/* Ends a batch: advances the watermark, and returns the rows to write and the state to store with them (both in
 * a). now_ms is the clock, which moves an arrival-time watermark when the processor is idle; INT64_MIN otherwise. */
int sl_aggregate_flush(struct sl_aggregate *g, int64_t now_ms, struct sl_arena *a, struct sl_record **rows, size_t *nrows,
		 struct sl_state_put **puts, size_t *nputs, struct sl_err *err);
/* Whether a flush of a caught-up processor would close a window now (the watermark of the newest event of any
 * partition, or for arrival time the clock, passed one), so an idle processor emits. */
bool sl_aggregate_due(const struct sl_aggregate *g, int64_t now_ms);

/* The bytes of a record's group values (as in the state's keys, without the window): the key a repartition topic
 * is keyed by, so that every record of a group lands on one partition and so in one processor's state. In a. */
int sl_aggregate_group_key(const struct sl_aggregate_conf *c, const struct sl_record *r, struct sl_expr_env *env,
			   struct sl_arena *a, const void **key, size_t *klen, struct sl_err *err);

struct sl_aggregate_stats {
	int64_t watermark_ms; /* INT64_MIN before any record */
	int64_t open_windows; /* state entries (groups x windows) */
	uint64_t late, counted;
};
void sl_aggregate_stats(const struct sl_aggregate *g, struct sl_aggregate_stats *st);

#endif
