/* The scheduler: DAGs from the config's `dags:` section, run on their schedules with Airflow's semantics (a run's
 * logical date is the start of its data interval and it runs once the interval has ended; catchup; backfill; trigger
 * rules; retries with Airflow 2.x's capped exponential backoff; an execution timeout per try), each task try a child
 * process whose stdout/stderr go to a log file under data_dir, and every run and task-instance state in SQLite
 * (data_dir/scheduler.db) so a restart neither repeats nor skips a run: a scheduled run's id is derived from its
 * logical date, and the next run to create is derived from the history, never from memory.
 *
 * The clock is a callback so tests drive time; child processes still run in real time. */
#ifndef SL_SCHED_H
#define SL_SCHED_H

#include <signal.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/httpauth.h"
#include "http/http.h"
#include "scheduler/cron.h"

struct sl_conf;

enum sl_ti_state {
	SL_TI_NONE = 0, /* not yet scheduled (waiting for upstream) */
	SL_TI_QUEUED,
	SL_TI_RUNNING,
	SL_TI_SUCCESS,
	SL_TI_FAILED,
	SL_TI_UP_FOR_RETRY,
	SL_TI_SKIPPED,
	SL_TI_UPSTREAM_FAILED,
};
const char *sl_sched_state_name(int state);

enum sl_trigger_rule { SL_TR_ALL_SUCCESS, SL_TR_ALL_DONE, SL_TR_ALL_FAILED, SL_TR_ONE_SUCCESS, SL_TR_ONE_FAILED,
		       SL_TR_NONE_FAILED };
enum sl_task_kind { SL_TASK_INGEST, SL_TASK_PROCESS, SL_TASK_CQL, SL_TASK_SHELL, SL_TASK_SENSOR };

struct sl_task {
	char *id;
	char *kind_s, *trigger_rule_s;
	enum sl_task_kind kind;
	enum sl_trigger_rule rule;
	struct sl_strlist upstream; /* depends_on */
	size_t *up;                 /* indexes of upstream tasks */
	size_t nup;
	char *pipeline;             /* ingest, process, sensor (lag) */
	int64_t for_ms, count;      /* ingest */
	struct sl_strlist statements; /* cql */
	char *command;              /* shell, sensor (command poke) */
	struct sl_strmap env;       /* shell: extra environment */
	int64_t lag_under;          /* sensor: lag of pipeline's group < N ... */
	char *table;                /* sensor: ... or rows in keyspace.table >= rows_at_least */
	int64_t rows_at_least;
	int64_t poke_interval_ms;
	int64_t retries, retry_delay_ms, max_retry_delay_ms;
	bool retry_exponential_backoff;
	int64_t execution_timeout_ms; /* sensors: their timeout */
};

struct sl_dag {
	char *id;
	char *description;
	char *schedule_s;       /* NULL: only manual runs */
	char *interval_s;       /* interval: 15m (alternative to schedule) */
	char *timezone;
	char *start_date_s;
	char *end_date_s;
	bool catchup, paused_at_creation;
	int64_t max_active_runs, max_active_tasks;
	bool has_schedule;
	struct sl_cron cron;
	struct sl_tz *tz;
	int64_t start_date, end_date; /* epoch seconds; end_date 0 = none */
	const struct sl_cfg_node *tasks_node;
	struct sl_task *tasks;
	size_t ntasks;
};

/* Binds and checks the dags: map (NULL or absent: no DAGs). Errors name file:line, the DAG and the task. */
int sl_sched_dags_load(const struct sl_cfg_node *dags, struct sl_dag **out, size_t *n, struct sl_err *err);
void sl_sched_dags_free(struct sl_dag *d, size_t n);
/* Parses "2024-01-01", "2024-01-01T06:00[:00]", with optional "Z" or "+02:00"; without an offset the time is local to
 * tz. */
int sl_sched_parse_time(const char *s, const struct sl_tz *tz, int64_t *out);
/* "2024-01-01T00:00:00+00:00" (UTC), Airflow's run-id form. */
void sl_sched_format_time(int64_t t, char *out, size_t outsz);

/* Airflow 2.x retry wait before try `next_try` (>= 2): retry_delay, or with exponential backoff
 * ceil(delay * 2^(next_try-2)) plus a deterministic jitter below that from SHA-1 of dag#task#logical_date#try,
 * capped by max_retry_delay. */
int64_t sl_sched_retry_wait_ms(const struct sl_task *t, const char *dag_id, int64_t logical_date, int next_try);

struct sl_sched_opts {
	const char *config_path;   /* passed to child `sluice` commands with -c */
	const char *sluice_bin;    /* the sluice executable for ingest/process/cql/sensor tasks */
	const char *data_dir;      /* NULL: the config's */
	int64_t (*now)(void *ctx); /* seconds since the epoch; NULL = the real clock */
	void *clock_ctx;
	int64_t kill_grace_ms;     /* between SIGTERM and SIGKILL on a timeout (default 5000) */
	bool quiet;                /* no INFO lines (tests) */
	/* The scheduler proper: takes data_dir/scheduler.lock (one per data_dir), creates scheduled runs and
	 * re-queues tries orphaned by a previous scheduler. Without it (dag trigger/pause/test/backfill), the handle
	 * only runs the runs it is told to (sl_sched_only) and never touches other processes' tries. */
	bool owner;
};

struct sl_sched;

int sl_sched_open(struct sl_sched **out, struct sl_conf *c, const struct sl_sched_opts *o, struct sl_err *err);
/* Kills running task processes (their tries will be re-queued on the next open) and closes the database. */
void sl_sched_close(struct sl_sched *s);
/* Same as close but leaves children running, as a crash would: for restart tests. */
void sl_sched_abandon(struct sl_sched *s);

/* One pass: reap finished tries, kill timed-out ones, create due scheduled runs, queue and start ready tasks,
 * finish runs. Returns the number of state changes (0 = nothing happened), or a negative SL_E*. */
int sl_sched_tick(struct sl_sched *s, struct sl_err *err);
/* Runs ticks until the runs given (or every active run when run_id is NULL) are finished or *stop is set. Sleeps
 * poll_ms between idle ticks. For `dag test`, `dag backfill` and tests. */
int sl_sched_run_until_done(struct sl_sched *s, const char *dag_id, const char *run_id, int poll_ms,
			    volatile sig_atomic_t *stop, struct sl_err *err);

struct sl_dag *sl_sched_dag(struct sl_sched *s, const char *dag_id, struct sl_err *err);
/* A manual run: run_id "manual__<logical date>", logical date now (or *logical_date when given), conf a JSON object
 * (NULL = {}). Writes the run id to run_id_out. */
int sl_sched_trigger(struct sl_sched *s, const char *dag_id, const char *conf_json, const int64_t *logical_date,
		     const char *run_id_in, char *run_id_out, size_t outsz, struct sl_err *err);
/* Creates backfill runs for every scheduled logical date in [start, end] that has no run yet; returns their count. */
int sl_sched_backfill(struct sl_sched *s, const char *dag_id, int64_t start, int64_t end, struct sl_err *err);
/* What a DAG list shows beside each DAG: its latest run (last_run_id "" when none; times -1 when not set) and the next
 * scheduled run (Airflow's next_dagrun and next_dagrun_create_after; -1 without a schedule). */
struct sl_sched_dag_summary {
	char last_run_id[160];
	char last_state[16];
	int64_t last_logical, last_start, last_end;
	int64_t next_logical, next_create_after;
};
int sl_sched_dag_summary(struct sl_sched *s, const char *dag_id, struct sl_sched_dag_summary *out);
/* The number of runs sl_sched_backfill would create for [start, end] (a dry run); at most 100000. */
int sl_sched_backfill_count(struct sl_sched *s, const char *dag_id, int64_t start, int64_t end, struct sl_err *err);
/* Airflow's clearTaskInstances for one run: the failed and upstream_failed task instances (every one unless
 * only_failed) are set back to not scheduled with their retries again (their try numbers and logs go on), and the run
 * is queued again, so the scheduler runs them anew. out gets {"task_instances":[{dag_id,dag_run_id,task_id}],
 * "total_entries"}; dry_run changes nothing. SL_EAGAIN while a task of the run is running, SL_ENOTFOUND: no run. */
int sl_sched_clear(struct sl_sched *s, const char *dag_id, const char *run_id, bool only_failed, bool dry_run,
		   struct sl_buf *out, struct sl_err *err);
/* Marks a run success (every task not successful becomes success) or failed (tasks not finished become failed), as
 * Airflow's PATCH dagRuns/{run} {"state"}. SL_EAGAIN while a task is running; SL_EINVAL for another state. */
int sl_sched_set_run_state(struct sl_sched *s, const char *dag_id, const char *run_id, const char *state,
			   struct sl_err *err);
int sl_sched_set_paused(struct sl_sched *s, const char *dag_id, bool paused, struct sl_err *err);
int sl_sched_is_paused(struct sl_sched *s, const char *dag_id);
/* Restricts ticks to the runs of dag_id whose run id starts with run_prefix (dag test, backfill). */
void sl_sched_only(struct sl_sched *s, const char *dag_id, const char *run_prefix);
/* Lets runs of paused DAGs progress (dag test and backfill run regardless of pause, like Airflow's). */
void sl_sched_ignore_pause(struct sl_sched *s, bool on);

/* Queries for the CLI and the REST API: JSON shaped like Airflow's stable API. */
int sl_sched_runs_json(struct sl_sched *s, const char *dag_id, int limit, struct sl_buf *out, struct sl_err *err);
/* One run as Airflow's DAGRun object (what creating or getting a run answers); SL_ENOTFOUND when absent. */
int sl_sched_run_json(struct sl_sched *s, const char *dag_id, const char *run_id, struct sl_buf *out,
		      struct sl_err *err);
int sl_sched_run_state(struct sl_sched *s, const char *dag_id, const char *run_id, char *state, size_t sz);
/* Every try of a run's task (task_id "~": of every task), Airflow's task instance tries list: {"task_instances":
 * [{"task_id","dag_id","dag_run_id","try_number","state","start_date","end_date","exit_code"}],"total_entries"},
 * ordered by task and try. Tries from before the scheduler kept them are not listed. SL_ENOTFOUND for an unknown run
 * or task. */
int sl_sched_task_tries_json(struct sl_sched *s, const char *dag_id, const char *run_id, const char *task_id,
			     struct sl_buf *out, struct sl_err *err);
int sl_sched_task_instances_json(struct sl_sched *s, const char *dag_id, const char *run_id, struct sl_buf *out,
				 struct sl_err *err);
/* The path of a try's log file (for the CLI); SL_EINVAL when an id is not valid (core/ident.h). */
int sl_sched_log_path(struct sl_sched *s, const char *dag_id, const char *run_id, const char *task_id, int try_number,
		      char *out, size_t outsz);
/* Appends up to about max bytes of a try's log to out, opened inside data_dir without following symlinks.
 * SL_EINVAL for an invalid id, SL_ENOTFOUND when there is no such log; messages name the path relative to
 * data_dir. */
int sl_sched_log_read(struct sl_sched *s, const char *dag_id, const char *run_id, const char *task_id, int try_number,
		      size_t max, struct sl_buf *out, struct sl_err *err);
/* Counts for tests: task instance of (dag, run, task): state and try number. */
int sl_sched_ti(struct sl_sched *s, const char *dag_id, const char *run_id, const char *task_id, int *state,
		int *try_number, int64_t *next_try_at);
int64_t sl_sched_count_runs(struct sl_sched *s, const char *dag_id, const char *run_type);
const struct sl_dag *sl_sched_dags(struct sl_sched *s, size_t *n);

/* The body of a cql or sensor task try (`sluice dag run-task`, a child process the runner starts, so a timeout can
 * kill it): cql runs the task's statements against the cassandra: section; a sensor pokes (a line per poke on out)
 * until its condition holds (0) or *stop is set (1). Negative SL_E* with err on an error that will not pass. */
struct sl_conf;
int sl_sched_task_run(struct sl_conf *c, const struct sl_dag *d, const struct sl_task *t,
		      const volatile sig_atomic_t *stop, FILE *out, struct sl_err *err);

/* REST API shaped like Airflow's stable API under /api/v1. Any HTTP server can call it: fills out with a JSON body
 * and *status with the HTTP status. */
int sl_sched_api_handle(struct sl_sched *s, const char *method, const char *path, const char *query, const char *body,
			size_t len, struct sl_buf *out, int *status);
/* Serves the API on src/http at addr:port (127.0.0.1 by default) until sl_sched_api_stop. */
struct sl_sched_http;
/* Where the API's secrets come from ($SLUICE_SCHEDULER_TOKEN, or basic auth for admin with
 * $SLUICE_SCHEDULER_PASSWORD) when the config has no scheduler: section; required beyond loopback. Clients of the
 * API send the same. */
extern const struct sl_http_auth_conf sl_sched_api_auth;
/* The scheduler: section (the API's credentials, allowed_hosts, limits). */
struct sl_sched_api_conf {
	struct sl_http_auth_conf auth;
	int64_t max_body;
	struct sl_http_conf http;
};
extern const struct sl_opt sl_sched_api_opts[];
/* section: the config's scheduler: section, or NULL for the defaults. */
int sl_sched_api_start(struct sl_sched *s, const char *addr, int port, const struct sl_cfg_node *section,
		       struct sl_sched_http **out, struct sl_err *err);
int sl_sched_api_port(const struct sl_sched_http *h);
void sl_sched_api_stop(struct sl_sched_http *h);

#endif
