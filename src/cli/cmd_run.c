/* `sluice ingest`, `sluice process` and `sluice up`: run a pipeline's loops from the command line. `up` runs ingest and
 * process of every pipeline in one process (the embedded default's way to run the whole seed stack) and, when the
 * sources are finite, ends once the processor has drained the topic, with a summary of where the data is. */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/log.h"
#include "console/console.h"
#include "pipeline/pipeline.h"
#include "registry/registry.h"
#include "scheduler/sched.h"

static volatile sig_atomic_t g_stop, g_reload;

/* SIGINT/SIGTERM: finish the batch in hand, commit, exit. SIGHUP: the same, then start again on the config read
 * anew (a config that no longer loads is reported and the old one kept). */
static void on_signal(int sig)
{
	if (sig == SIGHUP)
		g_reload = 1;
	g_stop = 1;
}

static void install_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

struct args {
	const char *config;
	const char *pipeline;
	int64_t count, for_ms;
	bool count_per_run, drain, quiet, until_done;
};

static int parse_args(const char *cmd, int argc, char **argv, struct args *a, const char *usage)
{
	memset(a, 0, sizeof *a);
	a->config = getenv("SLUICE_CONFIG");
	for (int i = 1; i < argc; i++) {
		const char *s = argv[i];
		if (!strcmp(s, "-h") || !strcmp(s, "--help")) {
			fputs(usage, stdout);
			exit(0);
		} else if ((!strcmp(s, "-c") || !strcmp(s, "--config")) && i + 1 < argc)
			a->config = argv[++i];
		else if ((!strcmp(s, "--count") || !strcmp(s, "--count-per-run")) && i + 1 < argc) {
			char *end;
			a->count_per_run = !strcmp(s, "--count-per-run");
			a->count = strtoll(argv[++i], &end, 10);
			if (*end || a->count <= 0)
				return sl_cli_fail(cmd, "%s wants a positive number of records, got '%s'", s, argv[i]) + 1;
		} else if (!strcmp(s, "--for") && i + 1 < argc) {
			if (sl_parse_duration_ms(argv[++i], &a->for_ms) || a->for_ms <= 0)
				return sl_cli_fail(cmd, "--for wants a duration like 60s or 5m, got '%s'", argv[i]) + 1;
		} else if (!strcmp(s, "--drain"))
			a->drain = true;
		else if (!strcmp(s, "--until-done"))
			a->until_done = true;
		else if (!strcmp(s, "-q") || !strcmp(s, "--quiet"))
			a->quiet = true;
		else if (s[0] != '-' && !a->pipeline)
			a->pipeline = s;
		else
			return sl_cli_fail(cmd, "unexpected argument '%s' (see sluice %s --help)", s, cmd) + 1;
	}
	if (!a->config)
		a->config = "sluice.yaml";
	return 0;
}

static int load(const char *cmd, const struct args *a, struct sl_conf *c)
{
	struct sl_err err = {0};
	if (sl_conf_load(a->config, c, &err))
		return sl_cli_fail(cmd, "%s", err.msg);
	int lvl = sl_log_parse_level(c->log_level);
	if (lvl >= 0 && sl_log_get_level() == SL_LOG_INFO)
		sl_log_set_level((enum sl_log_level)lvl);
	return 0;
}

static struct sl_pipeline *pick(const char *cmd, struct sl_conf *c, const char *name)
{
	struct sl_err err = {0};
	if (!name) {
		if (c->np == 1)
			return &c->p[0];
		sl_cli_fail(cmd, "%s has %zu pipelines: name one (sluice %s NAME)", c->doc.file, c->np, cmd);
		return NULL;
	}
	struct sl_pipeline *p = sl_conf_pipeline(c, name, &err);
	if (!p)
		sl_cli_fail(cmd, "%s", err.msg);
	return p;
}

/* The summary reads the same counters as the progress line and the metrics (struct sl_ingest_stats), and says how
 * the run ended, so a run that exits 1 never reads as a clean one. */
static void print_ingest(const struct sl_pipeline *p, const struct sl_ingest_stats *st, int rc)
{
	printf("ingest %s: %" PRIu64 " pages, %" PRIu64 " records, %" PRIu64 " bytes, %" PRIu64 " bad pages, %" PRIu64
	       " delivered to '%s', %" PRIu64 " to the dead-letter topic '%s' (%" PRIu64 " dropped), %" PRIu64
	       " requests, %" PRIu64 " retries, %" PRIu64 " undelivered, %.1f s, %.0f records/s",
	       p->name, st->pages, st->records, st->bytes, st->bad_pages, st->delivered, p->topic, st->dlq, p->dlq_topic,
	       st->dlq_dropped, st->requests, st->retries, st->delivery_failures, st->seconds,
	       st->seconds > 0 ? (double)st->records / st->seconds : 0);
	if (st->total_limit)
		printf("; total %" PRIu64 " of %" PRId64, st->total, st->total_limit);
	printf("; %s\n", rc ? "FAILED" : "ok");
}

static void print_process(const struct sl_pipeline *p, const struct sl_process_stats *st)
{
	printf("process %s: %" PRIu64 " consumed, %" PRIu64 " written in %" PRIu64 " batches, %" PRIu64
	       " to the dead-letter topic, %" PRIu64 " retries, lag %" PRId64 ", %.1f s, %.0f records/s"
	       " (%.0f records/s while streaming)\n",
	       p->name, st->consumed, st->written, st->batches, st->dlq, st->retries, st->lag, st->seconds,
	       st->seconds > 0 ? (double)st->written / st->seconds : 0,
	       st->active_seconds > 0 ? (double)st->written / st->active_seconds : 0);
	if (st->table_rows >= 0)
		printf("  table %s.%s has %" PRId64 " rows; look at them with:\n    %s\n", p->sink.keyspace, p->sink.table,
		       st->table_rows, st->where);
	else if (st->where[0])
		printf("  rows are in %s.%s; look at them with:\n    %s\n", p->sink.keyspace, p->sink.table, st->where);
}

/* After a SIGHUP: the new config replaces c when it loads; otherwise c stays. Returns true to run again. */
static bool reload(const char *cmd, const struct args *a, struct sl_conf *c)
{
	if (!g_reload)
		return false;
	g_reload = 0;
	g_stop = 0;
	struct sl_conf n;
	struct sl_err err = {0};
	if (sl_conf_load(a->config, &n, &err)) {
		sl_error(cmd, "SIGHUP: %s; keeping the running config", err.msg);
		return true;
	}
	sl_conf_free(c);
	*c = n;
	sl_info(cmd, "SIGHUP: reloaded %s", a->config);
	return true;
}

static const char *INGEST_USAGE =
	"Usage: sluice ingest [PIPELINE] [-c FILE] [--for DURATION] [--count N]\n\n"
	"Pulls the pipeline's source (an HTTP API or the generator), maps each record and publishes it to the\n"
	"pipeline's topic. A page's cursor is saved only once the log confirmed all of its records, so a restart\n"
	"resumes after the last delivered page. Records that do not map go to the dead-letter topic.\n\n"
	"  -c, --config FILE  config file (default $SLUICE_CONFIG or ./sluice.yaml)\n"
	"  --for DURATION     stop after this long (e.g. 60s, like the seed's DAG)\n"
	"  --count N          stop at N records in all, across runs: the number taken is saved with the\n"
	"                     cursor, so restarts (even after kill -9) stop at N overall (like the source's count:)\n"
	"  --count-per-run N  stop at N records taken by this run\n"
	"Without --for or --count it runs until the source has no more pages or SIGINT/SIGTERM.\n"
	"Exit status: 0 when everything taken was delivered; 1 when a record was not delivered, the source failed\n"
	"(HTTP errors past the retries, the circuit breaker on bad pages), or nothing was delivered although the\n"
	"source did not say it had no more pages and the total was not reached.\n";

int sl_cli_ingest(int argc, char **argv)
{
	struct args a;
	struct sl_conf c;
	int rc = parse_args("ingest", argc, argv, &a, INGEST_USAGE);
	if (rc)
		return rc;
	if ((rc = load("ingest", &a, &c)))
		return rc;
	struct sl_pipeline *p = pick("ingest", &c, a.pipeline);
	if (!p) {
		sl_conf_free(&c);
		return 2;
	}
	install_signals();
	struct sl_run_opts o = {.count = a.count, .count_per_run = a.count_per_run, .for_ms = a.for_ms,
				.progress = !a.quiet, .stop = &g_stop};
	struct sl_ingest_stats st;
	struct sl_err err = {0};
	rc = sl_ingest_run(&c, p, &o, &st, &err);
	print_ingest(p, &st, rc);
	if (rc)
		sl_cli_fail("ingest", "%s", err.msg);
	sl_conf_free(&c);
	return rc ? 1 : 0;
}

static const char *PROCESS_USAGE =
	"Usage: sluice process [PIPELINE] [-c FILE] [--drain] [--for DURATION]\n\n"
	"Consumes the pipeline's topic in its consumer group, decodes and validates each record, and writes\n"
	"micro-batches to the sink (Cassandra, or SQLite on the embedded default). Offsets are committed only after\n"
	"the sink has the rows. Records that fail go to the dead-letter topic with the reason in headers.\n\n"
	"  -c, --config FILE  config file (default $SLUICE_CONFIG or ./sluice.yaml)\n"
	"  --drain            stop once the group has no lag left\n"
	"  --for DURATION     stop after this long\n"
	"Without --drain or --for it runs until SIGINT/SIGTERM, which finish the batch in hand first.\n";

int sl_cli_process(int argc, char **argv)
{
	struct args a;
	struct sl_conf c;
	int rc = parse_args("process", argc, argv, &a, PROCESS_USAGE);
	if (rc)
		return rc;
	if ((rc = load("process", &a, &c)))
		return rc;
	struct sl_pipeline *p = pick("process", &c, a.pipeline);
	if (!p) {
		sl_conf_free(&c);
		return 2;
	}
	install_signals();
	const char *name = p->name;
	char namebuf[256];
	snprintf(namebuf, sizeof namebuf, "%s", name);
	struct sl_err err = {0};
	do {
		if (!(p = pick("process", &c, namebuf))) {
			rc = 1;
			break;
		}
		struct sl_run_opts o = {.for_ms = a.for_ms, .until_drained = a.drain, .progress = !a.quiet,
					.stop = &g_stop};
		struct sl_process_stats st;
		rc = sl_process_run(&c, p, &o, &st, &err);
		print_process(p, &st);
		if (rc)
			sl_cli_fail("process", "%s", err.msg);
	} while (rc == 0 && reload("process", &a, &c));
	sl_conf_free(&c);
	return rc ? 1 : 0;
}

/* ---- up ---- */

struct worker {
	struct sl_conf *c;
	struct sl_pipeline *p;
	struct sl_run_opts o;
	struct sl_ingest_stats ist;
	struct sl_process_stats pst;
	struct sl_err err;
	int rc;
	volatile int ingest_done;
};

static void *ingest_thread(void *arg)
{
	struct worker *w = arg;
	w->rc = sl_ingest_run(w->c, w->p, &w->o, &w->ist, &w->err);
	w->ingest_done = 1;
	return NULL;
}

static void *process_thread(void *arg)
{
	struct worker *w = arg;
	struct sl_run_opts o = w->o;
	o.count = 0;
	o.upstream_done = &w->ingest_done;
	o.until_drained = true;
	struct sl_err err = {0};
	int rc = sl_process_run(w->c, w->p, &o, &w->pst, &err);
	if (rc && !w->rc) {
		w->rc = rc;
		w->err = err;
	}
	return NULL;
}

static const char *UP_USAGE =
	"Usage: sluice up [-c FILE] [--for DURATION] [--count N]\n\n"
	"Runs every role the config names in one process: ingest (source -> topic) and process (topic -> sink) of\n"
	"every pipeline, side by side, and the schema registry (registry:), the scheduler (dags:) and the console\n"
	"(console:) when their sections are there. With no kafka: and no cassandra: section this is the embedded default: the topic is a SQLite\n"
	"log and the table a SQLite table, both in data_dir. When the sources are finite (generate with count, an\n"
	"API that runs out of pages), up ends once every record is in its table, and prints a summary.\n\n"
	"  -c, --config FILE  config file (default $SLUICE_CONFIG or ./sluice.yaml)\n"
	"  --for DURATION     stop ingesting after this long, then drain\n"
	"  --count N          ingest N records per pipeline in all, across runs, then drain\n"
	"  --until-done       run only the pipelines, to the end of their sources, then exit (no registry,\n"
	"                     scheduler or console)\n"
	"  -q, --quiet        no progress line\n"
	"A pipeline whose ingest a DAG schedules (a task of kind ingest) is ingested by the scheduler, not\n"
	"continuously; its processor streams all the time.\n";

/* The long-running roles `up` adds when the config names them: the schema registry (registry:), the scheduler
 * (dags:) and the console (console:), which serves the other two's APIs as well. */
struct services {
	struct sl_registry *reg;
	struct sl_registry_conf rconf;
	struct sl_sched *sched;
	struct sl_dag *dags;
	size_t ndags;
	pthread_t sched_thread;
	bool sched_running;
	struct sl_console *con;
};

static void *scheduler_thread(void *arg)
{
	struct services *sv = arg;
	while (!g_stop) {
		struct sl_err err = {0};
		int n = sl_sched_tick(sv->sched, &err);
		if (n < 0)
			sl_error("scheduler", "%s", err.msg);
		for (int i = 0; i < 10 && !g_stop && n <= 0; i++)
			usleep(100000);
	}
	return NULL;
}

static void services_stop(struct services *sv)
{
	if (sv->con)
		sl_console_stop(sv->con);
	if (sv->sched_running)
		pthread_join(sv->sched_thread, NULL);
	if (sv->sched)
		sl_sched_close(sv->sched);
	if (sv->reg)
		sl_registry_close(sv->reg);
	if (sv->dags)
		sl_sched_dags_free(sv->dags, sv->ndags);
	sl_opt_free(sl_registry_opts, &sv->rconf);
	memset(sv, 0, sizeof *sv);
}

static int services_start(const struct args *a, struct sl_conf *c, struct services *sv)
{
	struct sl_err err = {0};
	memset(sv, 0, sizeof *sv);
	if (c->registry) {
		if (sl_opt_bind(sl_registry_opts, c->registry, "registry", &sv->rconf, &err) ||
		    sl_registry_conf_dir(&sv->rconf, c->registry, c->data_dir, &err) || (sv->rconf.kafka = c->kafka, false) || sl_registry_open(&sv->reg, &sv->rconf, &err) || sl_registry_serve(sv->reg, NULL, &err))
			goto fail;
		sl_info("up", "schema registry on %s", sv->rconf.listen);
		sl_cli_warn_auth_parity(c->console, c->registry, c->scheduler, "registry");
	}
	if (c->dags) {
		static char exe[4096]; /* the scheduler keeps the pointer */
		ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
		exe[n > 0 ? n : 0] = '\0';
		struct sl_sched_opts so = {.config_path = a->config, .sluice_bin = n > 0 ? exe : "sluice", .owner = true};
		if (sl_sched_open(&sv->sched, c, &so, &err) || sl_sched_dags_load(c->dags, &sv->dags, &sv->ndags, &err))
			goto fail;
		if (pthread_create(&sv->sched_thread, NULL, scheduler_thread, sv) != 0) {
			sl_err_set(&err, SL_ENOMEM, "cannot start the scheduler thread");
			goto fail;
		}
		sv->sched_running = true;
	}
	if (c->console) {
		struct sl_console_start_opts co = {.embedded = true};
		if (sl_console_start(c, &co, &sv->con, &err))
			goto fail;
		if ((sv->reg && sl_console_plug_registry(sv->con, sv->reg)) ||
		    (sv->sched && sl_console_plug_scheduler(sv->con, sv->sched)))
			sl_warn("up", "console: could not add the registry or scheduler pages");
		sl_cli_warn_auth_parity(c->console, c->registry, c->scheduler, "console");
		printf("console: http://%s/\n", sl_console_address(sv->con));
		fflush(stdout);
	}
	return 0;
fail:
	services_stop(sv);
	return sl_cli_fail("up", "%s", err.msg);
}

/* Whether a DAG's ingest task drives pipeline name (then the scheduler, not up, runs its ingest). */
static bool dag_drives(const struct services *sv, const char *name)
{
	if (!sv || !sv->sched)
		return false;
	for (size_t d = 0; d < sv->ndags; d++)
		for (size_t t = 0; t < sv->dags[d].ntasks; t++)
			if (sv->dags[d].tasks[t].kind == SL_TASK_INGEST && sv->dags[d].tasks[t].pipeline &&
			    !strcmp(sv->dags[d].tasks[t].pipeline, name))
				return true;
	return false;
}

static int up_once(const struct args *ap, struct sl_conf *cp, const struct services *sv)
{
	const struct args a = *ap;
	struct sl_conf c = *cp; /* a shallow copy: the caller keeps ownership */
	struct worker *w = calloc(c.np, sizeof *w);
	pthread_t *ti = calloc(c.np, sizeof *ti), *tp = calloc(c.np, sizeof *tp);
	if (!w || !ti || !tp) {
		free(w);
		free(ti);
		free(tp);
		return sl_cli_fail("up", "out of memory");
	}
	printf("sluice up: %zu pipeline%s from %s, data in %s/\n", c.np, c.np == 1 ? "" : "s", a.config, c.data_dir);
	fflush(stdout);
	for (size_t i = 0; i < c.np; i++) {
		w[i] = (struct worker){.c = &c, .p = &c.p[i]};
		w[i].o = (struct sl_run_opts){.count = a.count, .for_ms = a.for_ms, .stop = &g_stop};
		pthread_create(&tp[i], NULL, process_thread, &w[i]);
		if (dag_drives(sv, w[i].p->name)) {
			sl_info("up", "pipeline %s: ingest runs when its DAG says; processing streams", w[i].p->name);
			w[i].ingest_done = 0; /* the processor streams until a signal */
			ti[i] = 0;
		} else
			pthread_create(&ti[i], NULL, ingest_thread, &w[i]);
	}
	/* One progress line for the whole process, from the live counters. */
	bool tty = isatty(STDERR_FILENO);
	double t0 = (double)time(NULL);
	bool *joined = calloc(c.np, sizeof *joined);
	for (size_t left = c.np; left;) {
		for (size_t i = 0; i < c.np; i++)
			if (!joined[i] && pthread_tryjoin_np(tp[i], NULL) == 0) {
				joined[i] = true;
				left--;
			}
		if (!left)
			break;
		if (!a.quiet) {
			uint64_t in = sl_live.ingested, del = sl_live.delivered, wr = sl_live.written, dl = sl_live.dlq;
			double dt = (double)time(NULL) - t0;
			fprintf(stderr, "%sgenerated/fetched %" PRIu64 ", logged %" PRIu64 ", written %" PRIu64
				", dead-lettered %" PRIu64 "  (%.0f s)%s",
				tty ? "\r" : "", in, del, wr, dl, dt, tty ? "   " : "\n");
		}
		usleep(tty ? 200000 : 1000000);
	}
	free(joined);
	if (!a.quiet && tty)
		fputc('\n', stderr);
	int status = 0;
	for (size_t i = 0; i < c.np; i++) {
		if (ti[i])
			pthread_join(ti[i], NULL);
		print_ingest(w[i].p, &w[i].ist, w[i].rc);
		print_process(w[i].p, &w[i].pst);
		if (w[i].rc) {
			sl_cli_fail("up", "%s", w[i].err.msg);
			status = 1;
		}
	}
	free(w);
	free(ti);
	free(tp);
	return status;
}

int sl_cli_up(int argc, char **argv)
{
	struct args a;
	struct sl_conf c;
	int rc = parse_args("up", argc, argv, &a, UP_USAGE);
	if (rc)
		return rc;
	if ((rc = load("up", &a, &c)))
		return rc;
	install_signals();
	do {
		struct services sv = {0};
		if (!a.until_done && (rc = services_start(&a, &c, &sv)))
			break;
		rc = up_once(&a, &c, &sv);
		/* With long-running roles, up stays after the pipelines end (finite sources), until a signal. */
		if ((sv.reg || sv.sched || sv.con) && !g_stop) {
			sl_info("up", "pipelines done; serving until SIGINT/SIGTERM");
			while (!g_stop)
				usleep(200000);
		}
		services_stop(&sv);
	} while (reload("up", &a, &c));
	sl_conf_free(&c);
	return rc;
}
