/* Pipelines: the config file as a whole (sluice.yaml) and the two loops that move records — ingest (source -> mapping
 * -> topic) and process (topic -> decode -> sink). The CLI, the scheduler and the tests all run pipelines through
 * these functions, so a test can run a whole pipeline in one process.
 *
 * Where the log and the sink live follows from the file: with a `kafka:` section the topic is Kafka, else the embedded
 * log in data_dir; with a `cassandra:` section the sink is Cassandra, else SQLite in data_dir. */
#ifndef SL_PIPELINE_H
#define SL_PIPELINE_H

#include <signal.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/config.h"
#include "core/err.h"
#include "expr/expr.h"
#include "mapping/mapping.h"
#include "sink/sink.h"

struct sl_batch_conf {
	int64_t max_records;
	int64_t max_bytes;
	int64_t max_wait_ms;
	int64_t in_flight;
};

/* One table the processor writes: the pipeline's own sink: (output "main", the mapped columns), or one of outputs:,
 * each with its filter and its columns (a projection of the mapped and computed columns). */
struct sl_output {
	char *name;
	char *where_src;               /* outputs: a filter of its own */
	struct sl_strlist columns;     /* outputs: the columns it takes (default: all, computed ones included) */
	struct sl_sink_conf sink;      /* outputs: bound here; "main" points at the pipeline's */
	const struct sl_sink_conf *conf;
	struct sl_expr *where;
	struct sl_schema schema;       /* the columns it writes */
	int *cols;                     /* schema column -> column of the pipeline's full record (projection) */
	bool project;                  /* records are copied into schema (else they are the full record, or its prefix) */
	char *offsets_group;           /* the group its sink keeps offsets under (SQLite): each output its own */
	const struct sl_cfg_node *aggregate; /* outputs: group_by, window, measures (src/pipeline/aggregate.h) */
	struct sl_aggregate_conf *agg;       /* an aggregate output: its rows are groups x windows, not records */
	const struct sl_cfg_node *at;  /* for messages */
};

struct sl_pipeline {
	char *name;                        /* the key under pipelines: */
	const struct sl_cfg_node *source;  /* interpreted by sl_source_new */
	char *topic;
	int64_t partitions, replication;
	char *format;                      /* json or avro (Confluent wire format, schemas in the registry) */
	char *registry_url;                /* avro: a registry elsewhere; else the registry: section's store */
	char *subject_strategy;            /* avro: topic (<topic>-value), record, topic_record */
	char *key;                         /* key column */
	char *dlq_topic;                   /* default <topic>.dlq */
	char *group;                       /* consumer group, default sluice-<name> */
	const struct sl_cfg_node *mapping; /* column -> spec */
	struct sl_sink_conf sink;
	struct sl_batch_conf batch;
	int64_t max_record_bytes;
	bool random_keys;                  /* a uuid() on a primary-key column is intended (a replay adds rows) */
	struct sl_mapping *map;            /* compiled mapping */
	/* Stream processing (docs/processing.md): a filter for every output, computed columns, further outputs. */
	char *where_src;
	const struct sl_cfg_node *compute; /* column -> expression, in order */
	const struct sl_cfg_node *outputs; /* name -> { where, columns, sink } */
	char *aggregate_state;             /* Kafka: changelog (repartition + changelog topics) | checkpoint (local) */
	struct sl_expr *where;
	struct sl_expr **computed;         /* one per computed column, filling full's columns after the mapping's */
	size_t ncomputed;
	struct sl_schema full;             /* the mapping's columns, then the computed ones */
	struct sl_output *out;             /* out[0] is the pipeline's sink: ("main") */
	size_t nout;
};

/* The schema records are decoded into and outputs project from: the mapping's plus the computed columns. */
static inline const struct sl_schema *sl_pipeline_schema(const struct sl_pipeline *p)
{
	return &p->full;
}

struct sl_conf {
	struct sl_cfg_doc doc;
	char *data_dir;
	char *log_level;
	const struct sl_cfg_node *dags; /* the dags: section, bound by src/scheduler/ */
	const struct sl_cfg_node *pipelines_node, *kafka, *cassandra, *console, *registry, *scheduler;
	struct sl_pipeline *p;
	size_t np;
};

/* Loads, binds and checks the whole file: every pipeline's options, source options and mapping. */
int sl_conf_load(const char *path, struct sl_conf *c, struct sl_err *err);
void sl_conf_free(struct sl_conf *c);
/* The pipeline called name; NULL with a message listing the pipelines when absent. */
struct sl_pipeline *sl_conf_pipeline(struct sl_conf *c, const char *name, struct sl_err *err);
/* Writes docs/configuration.md's body. */
void sl_conf_doc_markdown(FILE *fp);

/* ---- running ---- */

#define SL_CURSOR_MAX_TEXT 1100 /* "total=N;" + a source cursor (SL_CURSOR_MAX) */

struct sl_run_opts {
	int64_t count;                    /* ingest: records in all, across runs (kept with the cursor); 0 = no limit */
	bool count_per_run;               /* ingest: count is for this run only */
	int64_t for_ms;                   /* stop after this long (0 = no limit) */
	bool until_drained;               /* process: stop when the topic has no more records for the group */
	bool progress;                    /* a progress line on stderr while running */
	volatile sig_atomic_t *stop;      /* set by a signal handler to stop gracefully */
	volatile int *upstream_done;      /* process: set once ingest has finished, so draining can end */
};

/* One source of truth for a run's counts: the progress line, the summary, the metrics and the exit code all read
 * these. records: taken from pages (mapped or not); delivered: confirmed in the topic; dlq: confirmed in the
 * dead-letter topic (records and whole bad pages); dlq_dropped: dead-letter entries over dlq_max_bytes, dropped;
 * delivery_failures: produced but not confirmed (their pages are fetched again next run). */
struct sl_ingest_stats {
	uint64_t pages, bad_pages, records, bytes, delivered, delivery_failures, dlq, dlq_dropped, retries, requests;
	uint64_t total;          /* records taken across runs (the saved total after this run) */
	int64_t total_limit;     /* the total asked for (source count or --count); 0 = none */
	bool total_reached;
	double seconds;
	char cursor[SL_CURSOR_MAX_TEXT];
};

struct sl_process_stats {
	uint64_t consumed, written, rejected, dlq, batches, retries;
	int64_t table_rows;
	int64_t lag;
	double seconds;
	double active_seconds;   /* from the first record consumed to the last batch committed: the streaming rate's
				  * denominator, without connecting, joining the group and waiting for the end */
	char where[512];
};

int sl_ingest_run(struct sl_conf *c, struct sl_pipeline *p, const struct sl_run_opts *o, struct sl_ingest_stats *st,
		  struct sl_err *err);
int sl_process_run(struct sl_conf *c, struct sl_pipeline *p, const struct sl_run_opts *o,
		   struct sl_process_stats *st, struct sl_err *err);

/* The dead-letter topic: list (replay=false; one line per record on out: offset, stage, source position, reason,
 * value) or replay into the pipeline's topic (records from offset `from` on; 0 = all; limit 0 = no limit). */
struct sl_dlq_stats {
	uint64_t listed, replayed, still_failing;
	int64_t high_watermark, next_offset;
};
int sl_dlq_run(struct sl_conf *c, struct sl_pipeline *p, bool replay, int64_t from, int64_t limit,
	       struct sl_dlq_stats *st, FILE *out, struct sl_err *err);
/* Which dead letters a run takes (the console's replay of one, a selection, or all matching a filter): offsets (when
 * noffsets > 0) lists them; reason (a substring of the sluice.error header) and stage (equal to sluice.stage) narrow
 * further when set. dry_run counts what would be replayed (st->listed) and publishes nothing. */
struct sl_dlq_select {
	const int64_t *offsets;
	size_t noffsets;
	const char *reason, *stage;
	bool dry_run;
};
int sl_dlq_run_select(struct sl_conf *c, struct sl_pipeline *p, bool replay, const struct sl_dlq_select *sel,
		      int64_t from, int64_t limit, struct sl_dlq_stats *st, FILE *out, struct sl_err *err);

/* Live counters of a run in progress (read by progress lines and the console). */
struct sl_live {
	_Atomic uint64_t ingested, delivered, consumed, written, dlq;
};
extern struct sl_live sl_live;

#endif
