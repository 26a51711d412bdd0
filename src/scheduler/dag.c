/* DAG definitions: the config's dags: map bound through option tables (so unknown keys get file:line and a
 * suggestion like every other section), then checked as a graph: known upstream ids, no cycles, a schedule that
 * parses, a time zone that exists. Also the Airflow 2.x retry backoff, which depends only on the task. */
#include <math.h>
#include <openssl/sha.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ident.h"
#include "scheduler/sched.h"

static const struct sl_opt dag_opts[] = {
	{"description", SL_OPT_STRING, NULL, offsetof(struct sl_dag, description), "what the DAG is for"},
	{"schedule", SL_OPT_STRING, NULL, offsetof(struct sl_dag, schedule_s),
	 "cron (5 fields), a preset (@daily, @hourly...) or \"every 15m\"; absent = manual runs only"},
	{"interval", SL_OPT_STRING, NULL, offsetof(struct sl_dag, interval_s),
	 "a fixed interval (15m, 1h) anchored at start_date, instead of schedule"},
	{"timezone", SL_OPT_STRING, "UTC", offsetof(struct sl_dag, timezone),
	 "IANA zone in which the schedule and start_date are read (Europe/Paris)"},
	{"start_date", SL_OPT_STRING, NULL, offsetof(struct sl_dag, start_date_s),
	 "first logical date considered: 2024-01-01 or 2024-01-01T06:00 (in timezone) or with Z/+hh:mm"},
	{"end_date", SL_OPT_STRING, NULL, offsetof(struct sl_dag, end_date_s), "no scheduled runs after this"},
	{"catchup", SL_OPT_BOOL, "false", offsetof(struct sl_dag, catchup),
	 "create a run for every missed interval since start_date (else only the latest)"},
	{"max_active_runs", SL_OPT_INT, "1", offsetof(struct sl_dag, max_active_runs), "runs of this DAG at once",
	 .min = 1, .max = 1000},
	{"concurrency", SL_OPT_INT, "16", offsetof(struct sl_dag, max_active_tasks),
	 "task tries of this DAG running at once, over all its runs (Airflow's max_active_tasks)", .min = 1,
	 .max = 1000},
	{"paused", SL_OPT_BOOL, "false", offsetof(struct sl_dag, paused_at_creation),
	 "paused when first seen; afterwards `sluice dag pause|unpause` and the API decide"},
	{"tasks", SL_OPT_NODE, NULL, offsetof(struct sl_dag, tasks_node), "map of task id to task", .required = true},
	{NULL},
};

static const struct sl_opt task_opts[] = {
	{"kind", SL_OPT_ENUM, NULL, offsetof(struct sl_task, kind_s), "what the task runs",
	 .choices = "ingest|process|cql|shell|sensor", .required = true},
	{"depends_on", SL_OPT_STRLIST, NULL, offsetof(struct sl_task, upstream), "upstream task ids"},
	{"trigger_rule", SL_OPT_ENUM, "all_success", offsetof(struct sl_task, trigger_rule_s),
	 "when the task runs given its upstream states",
	 .choices = "all_success|all_done|all_failed|one_success|one_failed|none_failed"},
	{"pipeline", SL_OPT_STRING, NULL, offsetof(struct sl_task, pipeline),
	 "ingest/process: the pipeline; sensor: the pipeline whose consumer lag is watched"},
	{"for", SL_OPT_DURATION, NULL, offsetof(struct sl_task, for_ms), "ingest: stop after this long (60s)"},
	{"count", SL_OPT_INT, NULL, offsetof(struct sl_task, count), "ingest: stop after about this many records",
	 .min = 0, .max = INT64_MAX},
	{"statements", SL_OPT_STRLIST, NULL, offsetof(struct sl_task, statements),
	 "cql: statements run in order against the cassandra: section"},
	{"command", SL_OPT_STRING, NULL, offsetof(struct sl_task, command),
	 "shell: run by /bin/sh -c (exit 0 success, 99 skipped, else failed); sensor: poked until it exits 0"},
	{"env", SL_OPT_STRMAP, NULL, offsetof(struct sl_task, env), "shell: extra environment variables"},
	{"lag_under", SL_OPT_INT, "-1", offsetof(struct sl_task, lag_under),
	 "sensor: done when the pipeline's consumer group lag is below this", .min = -1, .max = INT64_MAX},
	{"table", SL_OPT_STRING, NULL, offsetof(struct sl_task, table), "sensor: keyspace.table whose rows are counted"},
	{"rows_at_least", SL_OPT_INT, "-1", offsetof(struct sl_task, rows_at_least),
	 "sensor: done when table has at least this many rows", .min = -1, .max = INT64_MAX},
	{"poke_interval", SL_OPT_DURATION, "5s", offsetof(struct sl_task, poke_interval_ms), "sensor: between pokes"},
	{"timeout", SL_OPT_DURATION, "1h", offsetof(struct sl_task, execution_timeout_ms),
	 "sensor: fail when the condition is not met by then"},
	{"retries", SL_OPT_INT, "0", offsetof(struct sl_task, retries), "tries after the first", .min = 0, .max = 100},
	{"retry_delay", SL_OPT_DURATION, "5m", offsetof(struct sl_task, retry_delay_ms), "wait before a retry"},
	{"retry_exponential_backoff", SL_OPT_BOOL, "false", offsetof(struct sl_task, retry_exponential_backoff),
	 "double the wait each retry (with Airflow's deterministic jitter)"},
	{"max_retry_delay", SL_OPT_DURATION, "24h", offsetof(struct sl_task, max_retry_delay_ms),
	 "cap on the wait between tries"},
	{"execution_timeout", SL_OPT_DURATION, NULL, offsetof(struct sl_task, execution_timeout_ms),
	 "kill a try that runs longer (SIGTERM, then SIGKILL); the try fails and may be retried"},
	{NULL},
};

const char *sl_sched_state_name(int state)
{
	static const char *const n[] = {"none",   "queued",       "running", "success",
					"failed", "up_for_retry", "skipped", "upstream_failed"};
	return state >= 0 && state < 8 ? n[state] : "unknown";
}

void sl_sched_format_time(int64_t t, char *out, size_t outsz)
{
	int64_t days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400), sod = t - days * 86400, y;
	unsigned m, d;
	sl_tz_civil_from_days(days, &y, &m, &d);
	snprintf(out, outsz, "%04lld-%02u-%02uT%02d:%02d:%02d+00:00", (long long)y, m, d, (int)(sod / 3600),
		 (int)(sod % 3600 / 60), (int)(sod % 60));
}

int sl_sched_parse_time(const char *s, const struct sl_tz *tz, int64_t *out)
{
	int y, mo, d, h = 0, mi = 0, se = 0, n = 0;
	if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || mo < 1 || mo > 12 || d < 1 || d > 31)
		return SL_EINVAL;
	const char *p = s + n;
	if (*p == 'T' || *p == ' ') {
		int k = 0;
		if (sscanf(p + 1, "%2d:%2d%n", &h, &mi, &k) != 2)
			return SL_EINVAL;
		p += 1 + k;
		if (*p == ':') {
			if (sscanf(p + 1, "%2d%n", &se, &k) != 1)
				return SL_EINVAL;
			p += 1 + k;
		}
		if (h > 23 || mi > 59 || se > 60)
			return SL_EINVAL;
	}
	int64_t wall = sl_tz_days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + se;
	if (*p == 'Z' && !p[1]) {
		*out = wall;
		return 0;
	}
	if ((*p == '+' || *p == '-') && strlen(p) >= 3) {
		int oh = 0, om = 0;
		if (sscanf(p + 1, "%2d:%2d", &oh, &om) < 1)
			return SL_EINVAL;
		*out = wall - (*p == '-' ? -1 : 1) * (oh * 3600 + om * 60);
		return 0;
	}
	if (*p)
		return SL_EINVAL;
	/* Local wall time: the offset in force then (two guesses settle it except inside a DST gap/overlap, where the
	 * earlier instant wins, like pendulum's default). */
	int64_t u = wall - sl_tz_offset(tz, wall);
	u = wall - sl_tz_offset(tz, u);
	*out = u;
	return 0;
}

int64_t sl_sched_retry_wait_ms(const struct sl_task *t, const char *dag_id, int64_t logical_date, int next_try)
{
	int64_t delay_ms = t->retry_delay_ms;
	if (t->retry_exponential_backoff) {
		double sec = (double)delay_ms / 1000.0 * pow(2.0, next_try - 2);
		int64_t min_backoff = sec > 4e15 ? (int64_t)4e15 : (int64_t)ceil(sec);
		if (min_backoff < 1)
			min_backoff = 1;
		char key[512], ld[40];
		sl_sched_format_time(logical_date, ld, sizeof ld);
		ld[10] = ' '; /* str(datetime) in Airflow: "2024-01-01 00:00:00+00:00" */
		snprintf(key, sizeof key, "%s#%s#%s#%d", dag_id, t->id, ld, next_try);
		unsigned char h[SHA_DIGEST_LENGTH];
		SHA1((const unsigned char *)key, strlen(key), h);
		uint64_t r = 0; /* the 160-bit digest as a big-endian integer, mod min_backoff */
		for (size_t i = 0; i < sizeof h; i++)
			r = (uint64_t)(((unsigned __int128)r * 256 + h[i]) % (uint64_t)min_backoff);
		int64_t s = min_backoff + (int64_t)r;
		delay_ms = s > INT64_MAX / 1000 ? INT64_MAX : s * 1000;
	}
	if (t->max_retry_delay_ms > 0 && delay_ms > t->max_retry_delay_ms)
		delay_ms = t->max_retry_delay_ms;
	return delay_ms;
}

static void task_free(struct sl_task *t)
{
	sl_opt_free(task_opts, t);
	free(t->id);
	free(t->up);
}

void sl_sched_dags_free(struct sl_dag *d, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; k < d[i].ntasks; k++)
			task_free(&d[i].tasks[k]);
		free(d[i].tasks);
		sl_tz_free(d[i].tz);
		sl_opt_free(dag_opts, &d[i]);
		free(d[i].id);
	}
	free(d);
}

static int check_task(struct sl_dag *dag, struct sl_task *t, const struct sl_cfg_node *n, struct sl_err *err)
{
	char w[300];
	sl_cfg_where(n, w, sizeof w);
	static const char *const kinds[] = {"ingest", "process", "cql", "shell", "sensor"};
	static const char *const rules[] = {"all_success", "all_done", "all_failed", "one_success", "one_failed",
					    "none_failed"};
	for (int i = 0; i < 5; i++)
		if (!strcmp(t->kind_s, kinds[i]))
			t->kind = (enum sl_task_kind)i;
	for (int i = 0; i < 6; i++)
		if (!strcmp(t->trigger_rule_s, rules[i]))
			t->rule = (enum sl_trigger_rule)i;
	const char *need = NULL;
	switch (t->kind) {
	case SL_TASK_INGEST:
	case SL_TASK_PROCESS: need = t->pipeline ? NULL : "pipeline"; break;
	case SL_TASK_CQL: need = t->statements.n ? NULL : "statements"; break;
	case SL_TASK_SHELL: need = t->command ? NULL : "command"; break;
	case SL_TASK_SENSOR:
		if (!t->command && !(t->lag_under >= 0 && t->pipeline) && !(t->rows_at_least >= 0 && t->table))
			need = "command, or pipeline + lag_under, or table + rows_at_least";
		break;
	}
	if (need)
		return sl_err_set(err, SL_ECONFIG, "%s: dags.%s.tasks.%s: a %s task needs %s", w, dag->id, t->id,
				  t->kind_s, need);
	if (t->kind == SL_TASK_INGEST && !t->for_ms && !t->count)
		return sl_err_set(err, SL_ECONFIG,
				  "%s: dags.%s.tasks.%s: an ingest task needs for: (60s) or count: so that it ends", w,
				  dag->id, t->id);
	const char *dot = t->table ? strchr(t->table, '.') : NULL;
	if (t->table && !dot)
		return sl_err_set(err, SL_ECONFIG, "%s: dags.%s.tasks.%s: table '%s' must be keyspace.table", w, dag->id,
				  t->id, t->table);
	/* The keyspace names a file under data_dir with the SQLite sink (cmd_dag.c): checked like the pipelines'. */
	if (t->table && (sl_ident_check(SL_IDENT_TABLE, t->table, (size_t)(dot - t->table), err) ||
			 sl_ident_check(SL_IDENT_TABLE, dot + 1, strlen(dot + 1), err)))
		return sl_err_prefix(err, "%s: dags.%s.tasks.%s.table: ", w, dag->id, t->id);
	return 0;
}

/* Depth-first search for a cycle; color 1 = on the stack. */
static int find_cycle(struct sl_dag *d, size_t i, int *color, size_t *path, size_t depth, struct sl_err *err)
{
	color[i] = 1;
	path[depth] = i;
	for (size_t k = 0; k < d->tasks[i].nup; k++) {
		size_t u = d->tasks[i].up[k];
		if (color[u] == 1) {
			char msg[400] = "";
			size_t len = 0;
			for (size_t j = 0; j <= depth; j++)
				len += (size_t)snprintf(msg + len, len < sizeof msg ? sizeof msg - len : 0, "%s <- ",
							d->tasks[path[j]].id);
			snprintf(msg + (len < sizeof msg ? len : sizeof msg - 1), len < sizeof msg ? sizeof msg - len : 1,
				 "%s", d->tasks[u].id);
			return sl_err_set(err, SL_ECONFIG, "dags.%s: tasks form a cycle: %s", d->id, msg);
		}
		if (!color[u] && find_cycle(d, u, color, path, depth + 1, err))
			return SL_ECONFIG;
	}
	color[i] = 2;
	return 0;
}

static int load_dag(struct sl_dag *d, const char *id, const struct sl_cfg_node *n, struct sl_err *err)
{
	char sect[256], w[300];
	d->id = strdup(id);
	snprintf(sect, sizeof sect, "dags.%s", id);
	if (sl_opt_bind(dag_opts, n, sect, d, err))
		return SL_ECONFIG;
	sl_cfg_where(n, w, sizeof w);
	if (sl_tz_load(d->timezone, &d->tz, err))
		return sl_err_prefix(err, "%s: %s.timezone: ", w, sect);
	if (d->schedule_s && d->interval_s)
		return sl_err_set(err, SL_ECONFIG, "%s: %s: give schedule or interval, not both", w, sect);
	if (d->schedule_s || d->interval_s) {
		char buf[160];
		if (d->interval_s)
			snprintf(buf, sizeof buf, "every %s", d->interval_s);
		if (sl_cron_parse(&d->cron, d->schedule_s ? d->schedule_s : buf, err)) {
			/* Point at the schedule (or interval) line itself, not the DAG's. */
			const struct sl_cfg_node *at = sl_cfg_get(n, d->schedule_s ? "schedule" : "interval");
			char ws[300];
			return sl_err_prefix(err, "%s: %s: ", at ? sl_cfg_where(at, ws, sizeof ws) : w, sect);
		}
		d->has_schedule = true;
		if (!d->start_date_s)
			return sl_err_set(err, SL_ECONFIG,
					  "%s: %s: a scheduled DAG needs start_date (the first logical date, e.g. "
					  "2024-01-01)",
					  w, sect);
	}
	if (d->start_date_s && sl_sched_parse_time(d->start_date_s, d->tz, &d->start_date))
		return sl_err_set(err, SL_ECONFIG, "%s: %s.start_date: '%s' is not a date like 2024-01-01 or "
				  "2024-01-01T06:00:00Z", w, sect, d->start_date_s);
	if (d->end_date_s && sl_sched_parse_time(d->end_date_s, d->tz, &d->end_date))
		return sl_err_set(err, SL_ECONFIG, "%s: %s.end_date: '%s' is not a date like 2024-12-31", w, sect,
				  d->end_date_s);
	const struct sl_cfg_node *tn = d->tasks_node;
	if (tn->kind != SL_CFG_MAP || tn->n == 0)
		return sl_err_set(err, SL_ECONFIG, "%s: %s.tasks must be a map of task id to task", 
				  sl_cfg_where(tn, w, sizeof w), sect);
	d->tasks = calloc(tn->n, sizeof *d->tasks);
	if (!d->tasks)
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	for (size_t i = 0; i < tn->n; i++) {
		struct sl_task *t = &d->tasks[i];
		d->ntasks = i + 1;
		t->id = strdup(tn->keys[i]);
		if (sl_ident_check(SL_IDENT_TASK, tn->keys[i], strlen(tn->keys[i]), err))
			return sl_err_prefix(err, "%s:%d: %s.tasks: ", tn->file, tn->key_lines ? tn->key_lines[i] : tn->line,
					     sect);
		char ts[400];
		snprintf(ts, sizeof ts, "%s.tasks.%s", sect, t->id);
		if (sl_opt_bind(task_opts, tn->items[i], ts, t, err) || check_task(d, t, tn->items[i], err))
			return SL_ECONFIG;
	}
	const char **ids = calloc(d->ntasks, sizeof *ids);
	for (size_t i = 0; i < d->ntasks; i++)
		ids[i] = d->tasks[i].id;
	for (size_t i = 0; i < d->ntasks; i++) {
		struct sl_task *t = &d->tasks[i];
		t->up = calloc(t->upstream.n + 1, sizeof *t->up);
		for (size_t k = 0; k < t->upstream.n; k++) {
			size_t j = 0;
			while (j < d->ntasks && strcmp(ids[j], t->upstream.v[k]))
				j++;
			if (j == d->ntasks) {
				const char *sug = sl_cfg_suggest(t->upstream.v[k], ids, d->ntasks);
				sl_err_set(err, SL_ECONFIG, "%s: %s.tasks.%s.depends_on: no task '%s' in this DAG%s%s%s",
					   sl_cfg_where(tn->items[i], w, sizeof w), sect, t->id, t->upstream.v[k],
					   sug ? " (did you mean '" : "", sug ? sug : "", sug ? "'?)" : "");
				free(ids);
				return SL_ECONFIG;
			}
			t->up[t->nup++] = j;
		}
	}
	free(ids);
	int *color = calloc(d->ntasks, sizeof *color);
	size_t *path = calloc(d->ntasks + 1, sizeof *path);
	int rc = 0;
	for (size_t i = 0; i < d->ntasks && !rc; i++)
		if (!color[i])
			rc = find_cycle(d, i, color, path, 0, err);
	free(color);
	free(path);
	return rc;
}

int sl_sched_dags_load(const struct sl_cfg_node *dags, struct sl_dag **out, size_t *n, struct sl_err *err)
{
	*out = NULL;
	*n = 0;
	if (!dags || dags->kind == SL_CFG_NULL)
		return 0;
	char w[300];
	if (dags->kind != SL_CFG_MAP)
		return sl_err_set(err, SL_ECONFIG, "%s: 'dags' must be a map of DAG id to DAG",
				  sl_cfg_where(dags, w, sizeof w));
	struct sl_dag *d = calloc(dags->n + 1, sizeof *d);
	if (!d)
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	for (size_t i = 0; i < dags->n; i++) {
		/* DAG and task ids name directories of the task logs and go into URLs: checked at file:line. */
		if (sl_ident_check(SL_IDENT_DAG, dags->keys[i], strlen(dags->keys[i]), err)) {
			sl_err_prefix(err, "%s:%d: dags: ", dags->file, dags->key_lines ? dags->key_lines[i] : dags->line);
			sl_sched_dags_free(d, i);
			return SL_ECONFIG;
		}
		if (load_dag(&d[i], dags->keys[i], dags->items[i], err)) {
			sl_sched_dags_free(d, i + 1);
			return SL_ECONFIG;
		}
	}
	*out = d;
	*n = dags->n;
	return 0;
}
