/* The bodies of the scheduler's cql and sensor task tries (run as `sluice dag run-task`, a child process the runner
 * starts, so an execution timeout can kill it). A cql task runs its statements against the cassandra: section. A
 * sensor pokes until its condition holds: a command's exit status, a pipeline's consumer-group lag (through topic/),
 * or a table's rows — the sink's count where that is exact and cheap (SQLite), else the progress of the pipeline
 * that writes the table (records its group committed, which it does only once the sink acknowledged them), else
 * the store's estimate. Never count(*) on Cassandra: it reads every row of every node, at every poke. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cql/cql.h"
#include "pipeline/pipeline.h"
#include "scheduler/sched.h"
#include "sink/sink.h"
#include "topic/topic.h"

static int run_cql(struct sl_conf *c, const struct sl_task *t, FILE *out, struct sl_err *err)
{
	if (!c->cassandra)
		return sl_err_set(err, SL_ECONFIG, "cql tasks need the cassandra: section");
	struct sl_cassandra_conf cc;
	if (sl_opt_bind(sl_cassandra_opts, c->cassandra, "cassandra", &cc, err)) {
		sl_opt_free(sl_cassandra_opts, &cc);
		return SL_ECONFIG;
	}
	struct sl_cql_session *s = NULL;
	int rc = sl_cassandra_connect(&cc, SL_CQL_LOCAL_QUORUM, &s, err);
	for (size_t i = 0; !rc && i < t->statements.n; i++) {
		fprintf(out, "cql: %s\n", t->statements.v[i]);
		fflush(out);
		struct sl_cql_result *r = NULL;
		rc = sl_cql_session_query(s, t->statements.v[i], &r, err);
		if (r)
			sl_cql_result_free(r);
		if (rc)
			sl_err_prefix(err, "statement %zu (%s): ", i + 1, t->statements.v[i]);
	}
	if (s)
		sl_cql_session_close(s);
	sl_opt_free(sl_cassandra_opts, &cc);
	return rc;
}

/* Records the pipeline's group has committed on its topic: offsets move only past rows the sink acknowledged. */
static int committed_records(struct sl_conf *c, const struct sl_pipeline *p, int64_t *out, struct sl_err *err)
{
	struct sl_topic_store *ts = NULL;
	int rc = sl_topic_store_open(c->kafka, c->data_dir, SL_TOPIC_INSPECT, &ts, err);
	if (rc == SL_ENOTFOUND) {
		*out = 0; /* no log yet: nothing written */
		return 0;
	}
	if (rc)
		return rc;
	int n = 0;
	rc = ts->ops->partitions(ts, p->topic, &n, err);
	struct sl_topic_part *parts = rc ? NULL : calloc(n ? (size_t)n : 1, sizeof *parts);
	if (!rc && !parts)
		rc = sl_err_set(err, SL_ENOMEM, "out of memory");
	for (int i = 0; !rc && i < n; i++)
		parts[i].partition = i;
	if (!rc)
		rc = ts->ops->committed(ts, p->group, p->topic, parts, n, err);
	*out = 0;
	for (int i = 0; !rc && i < n; i++)
		*out += parts[i].committed > 0 ? parts[i].committed : 0;
	free(parts);
	sl_topic_store_close(ts);
	if (rc == SL_ENOTFOUND) {
		*out = 0;
		return 0;
	}
	return rc;
}

/* Rows of keyspace.table, and how they were counted (for the poke line). */
static int table_rows(struct sl_conf *c, const char *table, int64_t *out, const char **how, struct sl_err *err)
{
	const char *dot = strchr(table, '.');
	if (!dot)
		return sl_err_set(err, SL_ECONFIG, "sensor table '%s' is not keyspace.table", table);
	char ks[256];
	snprintf(ks, sizeof ks, "%.*s", (int)(dot - table), table);
	const struct sl_pipeline *p = NULL;
	for (size_t i = 0; i < c->np && !p; i++)
		if (c->p[i].sink.keyspace && c->p[i].sink.table && !strcmp(c->p[i].sink.keyspace, ks) &&
		    !strcmp(c->p[i].sink.table, dot + 1) && strcmp(c->p[i].sink.type ? c->p[i].sink.type : "", "discard"))
			p = &c->p[i];
	struct sl_sink_conf own = {.type = "auto", .keyspace = ks, .table = (char *)(dot + 1),
				   .consistency = "LOCAL_ONE"};
	struct sl_sink *s = NULL;
	int rc = sl_sink_open_reader(c->cassandra, c->data_dir, p ? p->name : "sensor", p ? &p->sink : &own, &s, err);
	if (rc == SL_ENOTFOUND) {
		*out = 0; /* not created yet: no rows */
		*how = "no table yet";
		return 0;
	}
	if (rc)
		return rc;
	bool exact = false;
	int64_t n = -1;
	rc = s->ops->rows ? s->ops->rows(s, &n, &exact, err) : SL_ENOTFOUND;
	s->ops->destroy(s);
	if (!rc && exact) {
		*out = n;
		*how = "rows";
		return 0;
	}
	if (p) {
		sl_err_clear(err);
		*how = "records committed by the pipeline's group";
		return committed_records(c, p, out, err);
	}
	if (!rc) {
		*out = n;
		*how = "estimated rows";
	}
	return rc;
}

static int poke(struct sl_conf *c, const struct sl_task *t, FILE *out, struct sl_err *err)
{
	if (t->command) {
		int st = system(t->command);
		fprintf(out, "poke: command exited %d\n", st == -1 ? -1 : WEXITSTATUS(st));
		return st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
	}
	if (t->table && t->rows_at_least >= 0) {
		int64_t n = 0;
		const char *how = "rows";
		if (table_rows(c, t->table, &n, &how, err)) {
			fprintf(out, "poke: counting rows of %s: %s\n", t->table, err->msg);
			sl_err_clear(err);
			return 0;
		}
		fprintf(out, "poke: %s has %lld %s (want >= %lld)\n", t->table, (long long)n, how,
			(long long)t->rows_at_least);
		return n >= t->rows_at_least;
	}
	struct sl_pipeline *p = sl_conf_pipeline(c, t->pipeline, err);
	if (!p)
		return err->code ? err->code : SL_ENOTFOUND;
	struct sl_topic_store *ts = NULL;
	int64_t lag = 0;
	int rc = sl_topic_store_open(c->kafka, c->data_dir, SL_TOPIC_INSPECT, &ts, err);
	if (!rc) {
		rc = ts->ops->group_lag(ts, p->group, p->topic, &lag, err);
		sl_topic_store_close(ts);
	}
	if (rc)
		fprintf(out, "poke: lag of %s: %s\n", p->group, err->msg);
	else
		fprintf(out, "poke: group %s lag %lld (want < %lld)\n", p->group, (long long)lag,
			(long long)t->lag_under);
	sl_err_clear(err);
	return !rc && lag < t->lag_under;
}

int sl_sched_task_run(struct sl_conf *c, const struct sl_dag *d, const struct sl_task *t,
		      const volatile sig_atomic_t *stop, FILE *out, struct sl_err *err)
{
	if (t->kind == SL_TASK_CQL) {
		int rc = run_cql(c, t, out, err);
		if (rc)
			sl_err_prefix(err, "task %s.%s: ", d->id, t->id);
		return rc;
	}
	/* sensor: poke until the condition holds; the scheduler's timeout ends it otherwise. */
	for (;;) {
		int ok = poke(c, t, out, err);
		fflush(out);
		if (ok < 0) {
			sl_err_prefix(err, "task %s.%s: ", d->id, t->id);
			return ok;
		}
		if (ok)
			return 0;
		if (stop && *stop)
			return 1;
		usleep((useconds_t)(t->poke_interval_ms > 0 ? t->poke_interval_ms : 1000) * 1000);
	}
}
