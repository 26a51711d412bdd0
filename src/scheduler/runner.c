/* The scheduler's engine: run history in SQLite, due-run creation, trigger rules, retries, timeouts and the child
 * processes that run task tries. See sched.h for the semantics it keeps.
 *
 * Every state change is written before the next decision is taken from it, so a crash loses at most the tries that
 * were running (re-queued on the next open, without counting a try: the task did not fail, the scheduler went away).
 * A DAG's next scheduled logical date is stored with the run it comes from, in one transaction, which is what makes a
 * restart neither repeat nor skip a run. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "codec/json.h"
#include "core/clock.h"
#include "core/ident.h"
#include "core/log.h"
#include "core/metrics.h"
#include "pipeline/pipeline.h"
#include "scheduler/sched.h"

struct child {
	pid_t pid;
	size_t dag, task;
	char run_id[128];
	int try_number;
	int64_t deadline;  /* clock seconds; 0 = none */
	bool timed_out;
	double term_at;    /* monotonic seconds when SIGTERM went out */
};

/* /metrics (the console's, in the same process): task tries that ended, by DAG, task and state. DAG and task ids are
 * validated identifiers ([A-Za-z0-9._-]), safe inside a label value as they are. */
static void count_task(const char *dag, const char *task, const char *state)
{
	char l[800];
	snprintf(l, sizeof l, "dag=\"%s\",task=\"%s\",state=\"%s\"", dag, task, state);
	sl_counter_add(sl_counter(sl_metrics_global(), "sluice_scheduler_task_tries_total", l,
				  "Task tries that ended, by DAG, task and state (up_for_retry counts a failed try)"), 1);
}

struct sl_sched {
	pthread_mutex_t mu;
	struct sl_conf *conf;
	struct sl_dag *dags;
	size_t ndags;
	sqlite3 *db;
	char data_dir[512];
	struct sl_sched_opts o;
	struct child *ch;
	size_t nch, capch;
	bool ignore_pause;
	int lock_fd;
	char only_dag[256], only_prefix[256];
	/* Task environment (see task_env): names a `sluice` task may inherit beyond the base set, and names no task
	 * inherits (the servers' secrets). */
	struct sl_strlist client_env, deny_env;
};

static int64_t now_s(struct sl_sched *s)
{
	return s->o.now ? s->o.now(s->o.clock_ctx) : (int64_t)time(NULL);
}

static int dbexec(struct sl_sched *s, const char *sql, struct sl_err *err)
{
	char *msg = NULL;
	if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		sl_err_set(err, SL_EIO, "scheduler db %s/scheduler.db: %s (in: %.60s)", s->data_dir, msg ? msg : "?", sql);
		sqlite3_free(msg);
		return SL_EIO;
	}
	return 0;
}

static sqlite3_stmt *prep(struct sl_sched *s, const char *sql)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
		sl_error("scheduler", "prepare failed: %s sql=%.80s", sqlite3_errmsg(s->db), sql);
		return NULL;
	}
	return st;
}

static const char schema[] =
	"PRAGMA journal_mode=WAL;"
	"PRAGMA busy_timeout=5000;"
	"CREATE TABLE IF NOT EXISTS dag (dag_id TEXT PRIMARY KEY, is_paused INTEGER NOT NULL,"
	" next_logical INTEGER);"
	"CREATE TABLE IF NOT EXISTS dag_run (dag_id TEXT NOT NULL, run_id TEXT NOT NULL, run_type TEXT NOT NULL,"
	" logical_date INTEGER NOT NULL, interval_start INTEGER, interval_end INTEGER, state TEXT NOT NULL,"
	" conf TEXT NOT NULL DEFAULT '{}', queued_at INTEGER, start_date INTEGER, end_date INTEGER,"
	" PRIMARY KEY (dag_id, run_id), UNIQUE (dag_id, logical_date));"
	"CREATE TABLE IF NOT EXISTS task_instance (dag_id TEXT NOT NULL, run_id TEXT NOT NULL, task_id TEXT NOT NULL,"
	" state INTEGER NOT NULL, try_number INTEGER NOT NULL DEFAULT 0, max_tries INTEGER NOT NULL,"
	" start_date INTEGER, end_date INTEGER, next_try_at INTEGER, pid INTEGER, exit_code INTEGER,"
	" PRIMARY KEY (dag_id, run_id, task_id));"
	/* Every try of a task instance (task_instance holds the latest only): the Gantt chart draws them all. */
	"CREATE TABLE IF NOT EXISTS task_try (dag_id TEXT NOT NULL, run_id TEXT NOT NULL, task_id TEXT NOT NULL,"
	" try_number INTEGER NOT NULL, start_date INTEGER, end_date INTEGER, state TEXT NOT NULL, exit_code INTEGER,"
	" PRIMARY KEY (dag_id, run_id, task_id, try_number));";

static void lock(struct sl_sched *s) { pthread_mutex_lock(&s->mu); }
static void unlock(struct sl_sched *s) { pthread_mutex_unlock(&s->mu); }

static int mkdirs(const char *path)
{
	char tmp[1024];
	snprintf(tmp, sizeof tmp, "%s", path);
	for (char *p = tmp + 1; *p; p++)
		if (*p == '/') {
			*p = 0;
			if (mkdir(tmp, 0755) && errno != EEXIST)
				return -1;
			*p = '/';
		}
	return mkdir(tmp, 0755) && errno != EEXIST ? -1 : 0;
}

/* ---- the task environment ----
 *
 * A task try is a child process. It used to inherit the scheduler's whole environment, the API tokens and passwords
 * of the console, registry and scheduler included, so any shell task (or anything an ingest source runs) could read
 * them. A try now gets:
 *   - the base set: PATH, HOME, USER, LOGNAME, SHELL, TMPDIR, TERM, LANG, LANGUAGE, LC_*, TZ, TZDIR, the TLS and
 *     Kerberos client settings (SSL_CERT_FILE, SSL_CERT_DIR, KRB5_CONFIG, KRB5CCNAME) and the sanitizers' options;
 *   - the run's SLUICE_* variables (SLUICE_DAG_ID, SLUICE_RUN_ID, SLUICE_CONF, SLUICE_CONFIG, ...);
 *   - ingest, process, cql and sensor tries (which run `sluice` on the same config): every variable the config
 *     names as a client secret (any *_env key outside the console: and registry: sections: the Kafka SASL and key
 *     passwords, Cassandra's password_env, the sources' token/password/value_env), every ${VAR} the config file
 *     expands (the child loads the same file), and the registry: section's token/password variables when a
 *     pipeline sends schemas to a registry elsewhere (registry_url: they are then the client's credentials);
 *   - shell tries: their task's env: map, which is how a shell task is given anything else.
 * The servers' own secrets (console and scheduler API credentials, the console's credentials for remote roles, the
 * registry's unless it is a client of it as above) are never passed on, even when the config expands them. */

static const char *const base_env[] = {"PATH", "HOME", "USER", "LOGNAME", "SHELL", "TMPDIR", "TERM", "LANG",
				       "LANGUAGE", "TZ", "TZDIR", "SSL_CERT_FILE", "SSL_CERT_DIR", "KRB5_CONFIG",
				       "KRB5CCNAME", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "NO_COLOR", NULL};

static bool list_has(const struct sl_strlist *l, const char *name, size_t n)
{
	for (size_t i = 0; i < l->n; i++)
		if (strlen(l->v[i]) == n && !strncmp(l->v[i], name, n))
			return true;
	return false;
}

static void list_add(struct sl_strlist *l, const char *name, size_t n)
{
	if (!n || list_has(l, name, n))
		return;
	char **v = realloc(l->v, (l->n + 1) * sizeof *v);
	if (!v)
		return;
	l->v = v;
	if ((v[l->n] = strndup(name, n)))
		l->n++;
}

static void list_free(struct sl_strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static void list_add_s(struct sl_strlist *l, const char *name) { list_add(l, name, strlen(name)); }

static const char *scalar_at(const struct sl_cfg_node *n, const char *key, const char *def)
{
	const struct sl_cfg_node *v = sl_cfg_get(n, key);
	return v && v->kind == SL_CFG_SCALAR && v->value ? v->value : def;
}

/* Values of the *_env keys anywhere under n: the variables the config names as secrets. */
static void collect_env_keys(const struct sl_cfg_node *n, struct sl_strlist *out, int depth)
{
	if (!n || depth > 16)
		return;
	for (size_t i = 0; i < n->n; i++) {
		const struct sl_cfg_node *it = n->items[i];
		size_t kl = n->kind == SL_CFG_MAP && n->keys ? strlen(n->keys[i]) : 0;
		if (kl > 4 && !strcmp(n->keys[i] + kl - 4, "_env") && it && it->kind == SL_CFG_SCALAR && it->value)
			list_add(out, it->value, strlen(it->value));
		else
			collect_env_keys(it, out, depth + 1);
	}
}

/* The ${NAME} and ${NAME:-default} the config file expands. */
static void collect_expanded(const char *file, struct sl_strlist *out)
{
	FILE *fp = file ? fopen(file, "r") : NULL;
	if (!fp)
		return;
	char line[4096];
	while (fgets(line, sizeof line, fp))
		for (char *p = strstr(line, "${"); p; p = strstr(p + 2, "${")) {
			size_t n = strcspn(p + 2, ":}");
			if (p[2 + n] == '}' || p[2 + n] == ':')
				list_add(out, p + 2, n);
		}
	fclose(fp);
}

static void task_env_init(struct sl_sched *s, struct sl_conf *c)
{
	const struct sl_cfg_node *con = c->console;
	list_add_s(&s->deny_env, scalar_at(con, "token_env", "SLUICE_CONSOLE_TOKEN"));
	list_add_s(&s->deny_env, scalar_at(con, "password_env", "SLUICE_CONSOLE_PASSWORD"));
	const char *remote[][3] = {{"registry", "SLUICE_REGISTRY_TOKEN", "SLUICE_REGISTRY_PASSWORD"},
				   {"scheduler", "SLUICE_SCHEDULER_TOKEN", "SLUICE_SCHEDULER_PASSWORD"}};
	for (int i = 0; i < 2; i++) {
		const struct sl_cfg_node *r = sl_cfg_get(con, remote[i][0]);
		const char *t = scalar_at(r, "token_env", remote[i][1]), *pw = scalar_at(r, "password_env", remote[i][2]);
		list_add_s(&s->deny_env, t);
		list_add_s(&s->deny_env, pw);
	}
	list_add_s(&s->deny_env, sl_sched_api_auth.token_env);
	list_add_s(&s->deny_env, sl_sched_api_auth.password_env);
	bool registry_client = false;
	for (size_t i = 0; i < c->np; i++)
		registry_client |= c->p[i].registry_url && *c->p[i].registry_url;
	const char *rt = scalar_at(c->registry, "token_env", "SLUICE_REGISTRY_TOKEN");
	const char *rp = scalar_at(c->registry, "password_env", "SLUICE_REGISTRY_PASSWORD");
	struct sl_strlist allow = {0};
	if (registry_client) {
		list_add_s(&allow, rt);
		list_add_s(&allow, rp);
	} else {
		list_add_s(&s->deny_env, rt);
		list_add_s(&s->deny_env, rp);
	}
	const struct sl_cfg_node *root = c->doc.root;
	for (size_t i = 0; root && root->kind == SL_CFG_MAP && i < root->n; i++)
		if (strcmp(root->keys[i], "console") && strcmp(root->keys[i], "registry") && strcmp(root->keys[i], "dags"))
			collect_env_keys(root->items[i], &allow, 0);
	collect_expanded(c->doc.file, &allow);
	for (size_t i = 0; i < allow.n; i++)
		if (!list_has(&s->deny_env, allow.v[i], strlen(allow.v[i])))
			list_add_s(&s->client_env, allow.v[i]);
	list_free(&allow);
}

/* Sets name=value in env (replacing an earlier value). */
static void env_set(struct sl_strlist *env, const char *name, const char *value)
{
	size_t nl = strlen(name);
	char *kv = malloc(nl + strlen(value) + 2);
	if (!kv)
		return;
	sprintf(kv, "%s=%s", name, value);
	for (size_t i = 0; i < env->n; i++)
		if (!strncmp(env->v[i], name, nl) && env->v[i][nl] == '=') {
			free(env->v[i]);
			env->v[i] = kv;
			return;
		}
	char **v = realloc(env->v, (env->n + 2) * sizeof *v);
	if (!v) {
		free(kv);
		return;
	}
	env->v = v;
	v[env->n++] = kv;
	v[env->n] = NULL;
}

static void env_pass(struct sl_strlist *env, const struct sl_strlist *deny, const char *name)
{
	const char *v = getenv(name);
	if (v && !list_has(deny, name, strlen(name)))
		env_set(env, name, v);
}

extern char **environ;

/* The environment of one try (built before fork: the child of a threaded process should not allocate). */
static void task_env(struct sl_sched *s, const struct sl_task *t, struct sl_strlist *env)
{
	for (size_t i = 0; base_env[i]; i++)
		env_pass(env, &s->deny_env, base_env[i]);
	for (char **e = environ; e && *e; e++)
		if (!strncmp(*e, "LC_", 3)) {
			const char *eq = strchr(*e, '=');
			char name[128];
			if (eq && (size_t)(eq - *e) < sizeof name) {
				snprintf(name, sizeof name, "%.*s", (int)(eq - *e), *e);
				env_pass(env, &s->deny_env, name);
			}
		}
	if (t->kind != SL_TASK_SHELL)
		for (size_t i = 0; i < s->client_env.n; i++)
			env_pass(env, &s->deny_env, s->client_env.v[i]);
}

int sl_sched_open(struct sl_sched **out, struct sl_conf *c, const struct sl_sched_opts *o, struct sl_err *err)
{
	*out = NULL;
	struct sl_sched *s = calloc(1, sizeof *s);
	if (!s)
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	pthread_mutexattr_t a;
	pthread_mutexattr_init(&a);
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&s->mu, &a);
	pthread_mutexattr_destroy(&a);
	s->conf = c;
	s->o = *o;
	if (!s->o.kill_grace_ms)
		s->o.kill_grace_ms = 5000;
	snprintf(s->data_dir, sizeof s->data_dir, "%s", o->data_dir ? o->data_dir : c->data_dir);
	int rc = sl_sched_dags_load(c->dags, &s->dags, &s->ndags, err);
	if (rc) {
		free(s);
		return rc;
	}
	task_env_init(s, c);
	char path[700];
	if (mkdirs(s->data_dir)) {
		sl_sched_close(s);
		return sl_err_set(err, SL_EIO, "cannot create data_dir %s: %s", s->data_dir, strerror(errno));
	}
	snprintf(path, sizeof path, "%s/scheduler.db", s->data_dir);
	if (sqlite3_open(path, &s->db) != SQLITE_OK) {
		sl_err_set(err, SL_EIO, "cannot open %s: %s", path, sqlite3_errmsg(s->db));
		sl_sched_close(s);
		return SL_EIO;
	}
	s->lock_fd = -1;
	if (o->owner) {
		snprintf(path, sizeof path, "%s/scheduler.lock", s->data_dir);
		s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
		/* A task forked by a scheduler that just died holds the lock until it execs (the descriptor is
		 * close-on-exec): a restart within those milliseconds waits a little before calling it another scheduler. */
		bool locked = s->lock_fd >= 0 && flock(s->lock_fd, LOCK_EX | LOCK_NB) == 0;
		for (int i = 0; s->lock_fd >= 0 && !locked && i < 40; i++) {
			usleep(50000);
			locked = flock(s->lock_fd, LOCK_EX | LOCK_NB) == 0;
		}
		if (!locked) {
			char pidbuf[32] = "?";
			if (s->lock_fd >= 0) {
				ssize_t r = pread(s->lock_fd, pidbuf, sizeof pidbuf - 1, 0);
				pidbuf[r > 0 ? r : 0] = 0;
			}
			sl_err_set(err, SL_EAGAIN, "another sluice scheduler (pid %s) runs on data_dir %s; one per data_dir",
				   pidbuf, s->data_dir);
			sl_sched_close(s);
			return SL_EAGAIN;
		}
		if (ftruncate(s->lock_fd, 0) == 0)
			dprintf(s->lock_fd, "%d", (int)getpid());
	}
	if (dbexec(s, schema, err)) {
		sl_sched_close(s);
		return SL_EIO;
	}
	sqlite3_stmt *st = prep(s, "INSERT OR IGNORE INTO dag (dag_id, is_paused) VALUES (?, ?)");
	for (size_t i = 0; st && i < s->ndags; i++) {
		sqlite3_bind_text(st, 1, s->dags[i].id, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 2, s->dags[i].paused_at_creation);
		sqlite3_step(st);
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	/* Tries left running by a scheduler that went away: their processes are not our children, so we cannot
	 * watch them. Stop them and queue the task again without spending a try. Only the lock holder may. */
	if (!o->owner) {
		*out = s;
		return 0;
	}
	st = prep(s, "SELECT pid FROM task_instance WHERE state = 2 AND pid > 0");
	while (st && sqlite3_step(st) == SQLITE_ROW) {
		pid_t pid = (pid_t)sqlite3_column_int(st, 0);
		if (pid > 1 && kill(-pid, 0) == 0) {
			kill(-pid, SIGKILL);
			sl_warn("scheduler", "killed the orphaned task process group pid=%d from a previous scheduler", pid);
		}
	}
	sqlite3_finalize(st);
	dbexec(s, "UPDATE task_instance SET state = 1, try_number = try_number - 1, pid = NULL WHERE state = 2", err);
	*out = s;
	return 0;
}

void sl_sched_only(struct sl_sched *s, const char *dag_id, const char *run_prefix)
{
	snprintf(s->only_dag, sizeof s->only_dag, "%s", dag_id ? dag_id : "");
	snprintf(s->only_prefix, sizeof s->only_prefix, "%s", run_prefix ? run_prefix : "");
}

static void free_all(struct sl_sched *s)
{
	if (s->lock_fd >= 0)
		close(s->lock_fd); /* releases the flock */
	if (s->db)
		sqlite3_close(s->db);
	sl_sched_dags_free(s->dags, s->ndags);
	list_free(&s->client_env);
	list_free(&s->deny_env);
	free(s->ch);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

void sl_sched_close(struct sl_sched *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nch; i++) {
		kill(-s->ch[i].pid, SIGTERM);
		int st;
		for (int k = 0; k < 50 && waitpid(s->ch[i].pid, &st, WNOHANG) == 0; k++)
			usleep(100000);
		kill(-s->ch[i].pid, SIGKILL);
		waitpid(s->ch[i].pid, &st, 0);
	}
	free_all(s);
}

void sl_sched_abandon(struct sl_sched *s)
{
	if (s)
		free_all(s);
}

const struct sl_dag *sl_sched_dags(struct sl_sched *s, size_t *n)
{
	*n = s->ndags;
	return s->dags;
}

static struct sl_dag *find_dag(struct sl_sched *s, const char *id, size_t *idx)
{
	for (size_t i = 0; i < s->ndags; i++)
		if (!strcmp(s->dags[i].id, id)) {
			if (idx)
				*idx = i;
			return &s->dags[i];
		}
	return NULL;
}

struct sl_dag *sl_sched_dag(struct sl_sched *s, const char *dag_id, struct sl_err *err)
{
	struct sl_dag *d = find_dag(s, dag_id, NULL);
	if (!d) {
		const char **ids = calloc(s->ndags + 1, sizeof *ids);
		for (size_t i = 0; i < s->ndags; i++)
			ids[i] = s->dags[i].id;
		const char *sug = sl_cfg_suggest(dag_id, ids, s->ndags);
		sl_err_set(err, SL_ENOTFOUND, "no DAG '%s' in the config%s%s%s", dag_id, sug ? " (did you mean '" : "",
			   sug ? sug : "", sug ? "'?)" : "");
		free(ids);
	}
	return d;
}

int sl_sched_is_paused(struct sl_sched *s, const char *dag_id)
{
	lock(s);
	sqlite3_stmt *st = prep(s, "SELECT is_paused FROM dag WHERE dag_id = ?");
	int p = 0;
	if (st) {
		sqlite3_bind_text(st, 1, dag_id, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW)
			p = sqlite3_column_int(st, 0);
		sqlite3_finalize(st);
	}
	unlock(s);
	return p;
}

int sl_sched_set_paused(struct sl_sched *s, const char *dag_id, bool paused, struct sl_err *err)
{
	if (!sl_sched_dag(s, dag_id, err))
		return SL_ENOTFOUND;
	lock(s);
	sqlite3_stmt *st = prep(s, "UPDATE dag SET is_paused = ? WHERE dag_id = ?");
	sqlite3_bind_int(st, 1, paused);
	sqlite3_bind_text(st, 2, dag_id, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : sl_err_set(err, SL_EIO, "pausing %s: %s", dag_id,
								     sqlite3_errmsg(s->db));
	sqlite3_finalize(st);
	unlock(s);
	return rc;
}

void sl_sched_ignore_pause(struct sl_sched *s, bool on) { s->ignore_pause = on; }

/* Inserts a run and its task instances in one transaction; next_logical (when >= 0) moves the DAG's schedule
 * pointer in the same transaction. Returns 1 when created, 0 when a run at that logical date already existed. */
static int create_run(struct sl_sched *s, struct sl_dag *d, const char *run_id, const char *type, int64_t logical,
		      int64_t istart, int64_t iend, const char *conf, int64_t next_logical, struct sl_err *err)
{
	if (dbexec(s, "BEGIN IMMEDIATE", err))
		return SL_EIO;
	sqlite3_stmt *st = prep(s, "INSERT OR IGNORE INTO dag_run (dag_id, run_id, run_type, logical_date, interval_start,"
				   " interval_end, state, conf, queued_at) VALUES (?,?,?,?,?,?,'queued',?,?)");
	sqlite3_bind_text(st, 1, d->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, run_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, type, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, logical);
	sqlite3_bind_int64(st, 5, istart);
	sqlite3_bind_int64(st, 6, iend);
	sqlite3_bind_text(st, 7, conf ? conf : "{}", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 8, now_s(s));
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	int created = rc == SQLITE_DONE && sqlite3_changes(s->db) == 1;
	if (rc != SQLITE_DONE) {
		sl_err_set(err, SL_EIO, "creating run %s of %s: %s", run_id, d->id, sqlite3_errmsg(s->db));
		dbexec(s, "ROLLBACK", NULL);
		return SL_EIO;
	}
	if (created) {
		st = prep(s, "INSERT INTO task_instance (dag_id, run_id, task_id, state, max_tries) VALUES (?,?,?,0,?)");
		for (size_t i = 0; i < d->ntasks; i++) {
			sqlite3_bind_text(st, 1, d->id, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 2, run_id, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 3, d->tasks[i].id, -1, SQLITE_STATIC);
			sqlite3_bind_int64(st, 4, d->tasks[i].retries + 1);
			sqlite3_step(st);
			sqlite3_reset(st);
		}
		sqlite3_finalize(st);
	}
	if (next_logical >= 0) {
		st = prep(s, "UPDATE dag SET next_logical = ? WHERE dag_id = ?");
		sqlite3_bind_int64(st, 1, next_logical);
		sqlite3_bind_text(st, 2, d->id, -1, SQLITE_STATIC);
		sqlite3_step(st);
		sqlite3_finalize(st);
	}
	if (dbexec(s, "COMMIT", err))
		return SL_EIO;
	if (created && !s->o.quiet)
		sl_info("scheduler", "created run dag=%s run_id=%s", d->id, run_id);
	return created;
}

static int64_t scalar(struct sl_sched *s, const char *sql, const char *a, const char *b, int64_t def)
{
	sqlite3_stmt *st = prep(s, sql);
	if (!st)
		return def;
	if (a)
		sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
	if (b)
		sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC);
	int64_t v = def;
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static int64_t first_logical(struct sl_dag *d)
{
	int64_t t;
	if (sl_cron_next(&d->cron, d->tz, d->start_date, d->start_date - 1, &t))
		return INT64_MAX;
	return t;
}

static int schedule_dag(struct sl_sched *s, struct sl_dag *d, int64_t now, struct sl_err *err)
{
	int changes = 0;
	int64_t ptr = scalar(s, "SELECT next_logical FROM dag WHERE dag_id = ?", d->id, NULL, INT64_MIN);
	if (ptr == INT64_MIN)
		ptr = first_logical(d);
	for (int guard = 0; guard < 1000 && ptr != INT64_MAX; guard++) {
		if (d->end_date && ptr > d->end_date)
			break;
		int64_t end;
		if (sl_cron_next(&d->cron, d->tz, d->start_date, ptr, &end) || end > now)
			break;
		if (!d->catchup) {
			/* Only the latest complete interval: the last L with next(L) <= now. */
			int64_t e, l;
			if (!sl_cron_prev(&d->cron, d->tz, d->start_date, now + 1, &e) &&
			    !sl_cron_prev(&d->cron, d->tz, d->start_date, e, &l) && l > ptr &&
			    (!d->end_date || l <= d->end_date)) {
				ptr = l;
				end = e;
			}
		}
		int64_t active = scalar(s, "SELECT count(*) FROM dag_run WHERE dag_id = ? AND state IN ('queued','running')",
					d->id, NULL, 0);
		if (active >= d->max_active_runs)
			break;
		char rid[128], ts[40];
		sl_sched_format_time(ptr, ts, sizeof ts);
		snprintf(rid, sizeof rid, "scheduled__%s", ts);
		int rc = create_run(s, d, rid, "scheduled", ptr, ptr, end, NULL, end, err);
		if (rc < 0)
			return rc;
		changes += rc;
		ptr = end;
	}
	return changes;
}

int sl_sched_trigger(struct sl_sched *s, const char *dag_id, const char *conf_json, const int64_t *logical_date,
		     const char *run_id_in, char *run_id_out, size_t outsz, struct sl_err *err)
{
	struct sl_dag *d = sl_sched_dag(s, dag_id, err);
	if (!d)
		return SL_ENOTFOUND;
	/* The run id names a directory under data_dir/logs and goes into JSON and environments: checked here, where
	 * every caller (API, CLI, console) passes. The conf is stored and answered as is, so it must be a JSON object. */
	if (run_id_in && *run_id_in && sl_ident_check(SL_IDENT_RUN, run_id_in, strlen(run_id_in), err))
		return sl_err_prefix(err, "trigger %s: ", dag_id);
	if (conf_json) {
		struct sl_json_parser *jp = NULL;
		struct sl_json_val root;
		struct sl_err jerr = {0};
		bool ok = !sl_json_parser_new(&jp, 1 << 20, 64, &jerr) &&
			  !sl_json_parse(jp, conf_json, strlen(conf_json), &root, &jerr) &&
			  sl_json_type(root) == SL_JSON_OBJECT;
		sl_json_parser_free(jp);
		if (!ok)
			return sl_err_set(err, SL_EINVAL, "trigger %s: conf must be a JSON object, got '%.40s'%s%s", dag_id,
					  conf_json, jerr.msg[0] ? ": " : "", jerr.msg);
	}
	lock(s);
	int64_t ld = logical_date ? *logical_date : now_s(s);
	/* Logical dates are unique per DAG (as in Airflow) and ours have whole seconds: two manual runs in one second
	 * take the next free second rather than failing. */
	for (char lds[24]; !logical_date; ld++) {
		snprintf(lds, sizeof lds, "%lld", (long long)ld);
		if (!scalar(s, "SELECT count(*) FROM dag_run WHERE dag_id = ? AND logical_date = CAST(? AS INTEGER)",
			    dag_id, lds, 0))
			break;
	}
	char rid[160], ts[40];
	sl_sched_format_time(ld, ts, sizeof ts);
	if (run_id_in && *run_id_in)
		snprintf(rid, sizeof rid, "%s", run_id_in);
	else
		snprintf(rid, sizeof rid, "manual__%s", ts);
	/* Airflow's data interval for a manual run (infer_manual_data_interval): the last complete interval before it,
	 * ending at the latest fire time at or before the logical date and starting at the one before that (a daily DAG
	 * triggered at 01:00 on the 25th covers the 24th). Without a schedule, or before two fire times exist: the
	 * logical date itself. */
	int64_t istart = ld, iend = ld, pend, pstart;
	if (d->has_schedule && !sl_cron_prev(&d->cron, d->tz, d->start_date, ld + 1, &pend) &&
	    !sl_cron_prev(&d->cron, d->tz, d->start_date, pend, &pstart)) {
		istart = pstart;
		iend = pend;
	}
	int rc = create_run(s, d, rid, "manual", ld, istart, iend, conf_json, -1, err);
	unlock(s);
	if (rc == 0)
		return sl_err_set(err, SL_EINVAL, "trigger %s: a run with id %s or logical date %s already exists", dag_id,
				  rid, ts);
	if (rc < 0)
		return rc;
	if (run_id_out)
		snprintf(run_id_out, outsz, "%s", rid);
	return 0;
}

int sl_sched_backfill(struct sl_sched *s, const char *dag_id, int64_t start, int64_t end, struct sl_err *err)
{
	struct sl_dag *d = sl_sched_dag(s, dag_id, err);
	if (!d)
		return SL_ENOTFOUND;
	if (!d->has_schedule)
		return sl_err_set(err, SL_EINVAL, "backfill %s: the DAG has no schedule to backfill", dag_id);
	lock(s);
	int n = 0;
	int64_t l;
	for (int64_t t = start - 1; !sl_cron_next(&d->cron, d->tz, d->start_date, t, &l) && l <= end; t = l) {
		int64_t iend;
		sl_cron_next(&d->cron, d->tz, d->start_date, l, &iend);
		char rid[128], ts[40];
		sl_sched_format_time(l, ts, sizeof ts);
		snprintf(rid, sizeof rid, "backfill__%s", ts);
		int rc = create_run(s, d, rid, "backfill", l, l, iend, NULL, -1, err);
		if (rc < 0) {
			unlock(s);
			return rc;
		}
		n += rc;
	}
	unlock(s);
	return n;
}

int sl_sched_dag_summary(struct sl_sched *s, const char *dag_id, struct sl_sched_dag_summary *out)
{
	memset(out, 0, sizeof *out);
	out->next_logical = out->next_create_after = -1;
	struct sl_err err = {0};
	struct sl_dag *d = sl_sched_dag(s, dag_id, &err);
	if (!d)
		return SL_ENOTFOUND;
	lock(s);
	sqlite3_stmt *st = prep(s, "SELECT run_id, state, logical_date, coalesce(start_date, -1), coalesce(end_date, -1)"
				   " FROM dag_run WHERE dag_id = ? ORDER BY logical_date DESC LIMIT 1");
	sqlite3_bind_text(st, 1, dag_id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		snprintf(out->last_run_id, sizeof out->last_run_id, "%s", (const char *)sqlite3_column_text(st, 0));
		snprintf(out->last_state, sizeof out->last_state, "%s", (const char *)sqlite3_column_text(st, 1));
		out->last_logical = sqlite3_column_int64(st, 2);
		out->last_start = sqlite3_column_int64(st, 3);
		out->last_end = sqlite3_column_int64(st, 4);
	}
	sqlite3_finalize(st);
	/* Airflow's next_dagrun: the next run the schedule creates covers the interval that ends at the next fire
	 * time after now (its logical date is that interval's start), and is created then. */
	int64_t end, start;
	if (d->has_schedule && !sl_cron_next(&d->cron, d->tz, d->start_date, now_s(s), &end)) {
		out->next_create_after = end;
		out->next_logical = !sl_cron_prev(&d->cron, d->tz, d->start_date, end, &start) ? start : end;
	}
	unlock(s);
	return 0;
}

/* ---- operator actions on a run (the console's DAGs page, Airflow's API) ---- */

/* The first running task of a run, or "" (a run with a task running is not changed under it). */
static void running_task(struct sl_sched *s, const char *dag_id, const char *run_id, char *out, size_t sz)
{
	sqlite3_stmt *st = prep(s, "SELECT task_id FROM task_instance WHERE dag_id = ? AND run_id = ? AND state = ?"
				   " ORDER BY task_id LIMIT 1");
	sqlite3_bind_text(st, 1, dag_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, run_id, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, SL_TI_RUNNING);
	out[0] = 0;
	if (sqlite3_step(st) == SQLITE_ROW)
		snprintf(out, sz, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
}


/* Steps a statement that returns no row (unless rc already says a step failed) and finalizes it; what (with its
 * trailing space, or "") names the action in the error. */
static int step_done(struct sl_sched *s, sqlite3_stmt *st, int rc, const char *what, const char *dag_id,
		     const char *run_id, struct sl_err *err)
{
	if (!rc && sqlite3_step(st) != SQLITE_DONE)
		rc = sl_err_set(err, SL_EIO, "%s%s run %s: %s", what, dag_id, run_id, sqlite3_errmsg(s->db));
	sqlite3_finalize(st);
	return rc;
}

/* Ends the transaction a run action began: rolled back after a failure, else committed. */
static int end_tx(struct sl_sched *s, int rc, struct sl_err *err)
{
	if (rc) {
		dbexec(s, "ROLLBACK", NULL);
		return rc;
	}
	return dbexec(s, "COMMIT", err);
}
int sl_sched_clear(struct sl_sched *s, const char *dag_id, const char *run_id, bool only_failed, bool dry_run,
		   struct sl_buf *out, struct sl_err *err)
{
	struct sl_dag *d = sl_sched_dag(s, dag_id, err);
	if (!d)
		return SL_ENOTFOUND;
	lock(s);
	char st_name[32], busy[200];
	if (sl_sched_run_state(s, dag_id, run_id, st_name, sizeof st_name)) {
		unlock(s);
		return sl_err_set(err, SL_ENOTFOUND, "clear %s: no run %s", dag_id, run_id);
	}
	running_task(s, dag_id, run_id, busy, sizeof busy);
	if (busy[0]) {
		unlock(s);
		return sl_err_set(err, SL_EAGAIN, "clear %s run %s: task %s is running; clear it once it has ended",
				  dag_id, run_id, busy);
	}
	/* Failed ones and those that never ran because of them (upstream_failed), or every task. */
	sqlite3_stmt *st = prep(s, "SELECT task_id FROM task_instance WHERE dag_id = ?1 AND run_id = ?2"
				   " AND (?3 = 0 OR state IN (?4, ?5)) ORDER BY task_id");
	sqlite3_bind_text(st, 1, dag_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, run_id, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, only_failed);
	sqlite3_bind_int(st, 4, SL_TI_FAILED);
	sqlite3_bind_int(st, 5, SL_TI_UPSTREAM_FAILED);
	int n = 0, rc = 0;
	sl_buf_puts(out, "{\"task_instances\":[");
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *tid = (const char *)sqlite3_column_text(st, 0);
		sl_buf_puts(out, n++ ? ",{\"dag_id\":" : "{\"dag_id\":");
		sl_buf_json_str(out, dag_id, strlen(dag_id));
		sl_buf_puts(out, ",\"dag_run_id\":");
		sl_buf_json_str(out, run_id, strlen(run_id));
		sl_buf_puts(out, ",\"task_id\":");
		sl_buf_json_str(out, tid, strlen(tid));
		sl_buf_putc(out, '}');
	}
	sqlite3_finalize(st);
	sl_buf_printf(out, "],\"total_entries\":%d,\"dry_run\":%s}", n, dry_run ? "true" : "false");
	if (!dry_run && n) {
		rc = dbexec(s, "BEGIN IMMEDIATE", err);
		/* Not yet scheduled again, with retries again (max_tries past the tries made), the try numbers going on. */
		for (size_t k = 0; !rc && k < d->ntasks; k++) {
			st = prep(s, "UPDATE task_instance SET state = 0, next_try_at = NULL, pid = NULL, exit_code = NULL,"
				     " start_date = NULL, end_date = NULL, max_tries = try_number + ?4"
				     " WHERE dag_id = ?1 AND run_id = ?2 AND task_id = ?3 AND (?5 = 0 OR state IN (?6, ?7))");
			sqlite3_bind_text(st, 1, dag_id, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 2, run_id, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 3, d->tasks[k].id, -1, SQLITE_STATIC);
			sqlite3_bind_int64(st, 4, d->tasks[k].retries + 1);
			sqlite3_bind_int(st, 5, only_failed);
			sqlite3_bind_int(st, 6, SL_TI_FAILED);
			sqlite3_bind_int(st, 7, SL_TI_UPSTREAM_FAILED);
			rc = step_done(s, st, rc, "clear ", dag_id, run_id, err);
		}
		if (!rc) {
			/* The run is queued again (reset_dag_runs): the scheduler starts it and runs the cleared tasks. */
			st = prep(s, "UPDATE dag_run SET state = 'queued', end_date = NULL WHERE dag_id = ? AND run_id = ?");
			sqlite3_bind_text(st, 1, dag_id, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 2, run_id, -1, SQLITE_STATIC);
			rc = step_done(s, st, rc, "clear ", dag_id, run_id, err);
		}
		rc = end_tx(s, rc, err);
		if (!rc && !s->o.quiet)
			sl_info("scheduler", "cleared %d task(s) of dag=%s run_id=%s", n, dag_id, run_id);
	}
	unlock(s);
	return rc;
}

int sl_sched_set_run_state(struct sl_sched *s, const char *dag_id, const char *run_id, const char *state,
			   struct sl_err *err)
{
	struct sl_dag *d = sl_sched_dag(s, dag_id, err);
	if (!d)
		return SL_ENOTFOUND;
	bool success = !strcmp(state, "success");
	if (!success && strcmp(state, "failed"))
		return sl_err_set(err, SL_EINVAL, "%s run %s: state must be success or failed, not '%.32s'", dag_id,
				  run_id, state);
	lock(s);
	char st_name[32], busy[200];
	if (sl_sched_run_state(s, dag_id, run_id, st_name, sizeof st_name)) {
		unlock(s);
		return sl_err_set(err, SL_ENOTFOUND, "%s: no run %s", dag_id, run_id);
	}
	running_task(s, dag_id, run_id, busy, sizeof busy);
	if (busy[0]) {
		unlock(s);
		return sl_err_set(err, SL_EAGAIN, "mark %s run %s %s: task %s is running; wait for it to end", dag_id,
				  run_id, state, busy);
	}
	int rc = dbexec(s, "BEGIN IMMEDIATE", err);
	/* Success: every task that did not succeed is marked success (Airflow's set_dag_run_state_to_success); failed:
	 * the tasks that have not finished are marked failed, the finished ones keep their state. */
	sqlite3_stmt *st = prep(s, success ? "UPDATE task_instance SET state = ?3, next_try_at = NULL,"
					     " end_date = coalesce(end_date, ?4) WHERE dag_id = ?1 AND run_id = ?2"
					     " AND state <> ?3"
					   : "UPDATE task_instance SET state = ?3, next_try_at = NULL,"
					     " end_date = coalesce(end_date, ?4) WHERE dag_id = ?1 AND run_id = ?2"
					     " AND state NOT IN (3, 4, 6, 7)");
	sqlite3_bind_text(st, 1, dag_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, run_id, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, success ? SL_TI_SUCCESS : SL_TI_FAILED);
	sqlite3_bind_int64(st, 4, now_s(s));
	rc = step_done(s, st, rc, "", dag_id, run_id, err);
	st = prep(s, "UPDATE dag_run SET state = ?3, start_date = coalesce(start_date, ?4), end_date = ?4"
		     " WHERE dag_id = ?1 AND run_id = ?2");
	sqlite3_bind_text(st, 1, dag_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, run_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, state, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, now_s(s));
	rc = step_done(s, st, rc, "", dag_id, run_id, err);
	rc = end_tx(s, rc, err);
	if (!rc && !s->o.quiet)
		sl_info("scheduler", "run dag=%s run_id=%s marked %s", dag_id, run_id, state);
	unlock(s);
	return rc;
}

int sl_sched_backfill_count(struct sl_sched *s, const char *dag_id, int64_t start, int64_t end, struct sl_err *err)
{
	struct sl_dag *d = sl_sched_dag(s, dag_id, err);
	if (!d)
		return SL_ENOTFOUND;
	if (!d->has_schedule)
		return sl_err_set(err, SL_EINVAL, "backfill %s: the DAG has no schedule to backfill", dag_id);
	lock(s);
	int n = 0;
	int64_t l;
	for (int64_t t = start - 1; n < 100000 && !sl_cron_next(&d->cron, d->tz, d->start_date, t, &l) && l <= end;
	     t = l) {
		char lds[24];
		snprintf(lds, sizeof lds, "%lld", (long long)l);
		if (!scalar(s, "SELECT count(*) FROM dag_run WHERE dag_id = ? AND logical_date = CAST(? AS INTEGER)",
			    dag_id, lds, 0))
			n++;
	}
	unlock(s);
	return n;
}

/* ---- task processes ---- */

/* Task logs live at data_dir/logs/dag_id=D/run_id=R/task_id=T/attempt=N.log. The ids are checked by the identifier
 * validator (no '/', no '..', no control bytes), and the file is reached one directory at a time from a descriptor
 * of data_dir with O_NOFOLLOW, so neither an id nor a symlink planted under logs/ can put a log outside data_dir. */
static int log_ids_ok(const char *dag, const char *run, const char *task, int try_number, struct sl_err *err)
{
	int rc;
	if ((rc = sl_ident_check(SL_IDENT_DAG, dag, strlen(dag), err)) ||
	    (rc = sl_ident_check(SL_IDENT_RUN, run, strlen(run), err)) ||
	    (rc = sl_ident_check(SL_IDENT_TASK, task, strlen(task), err)))
		return rc;
	if (try_number < 1)
		return sl_err_set(err, SL_EINVAL, "try number %d: tries count from 1", try_number);
	return 0;
}

/* The log's path relative to data_dir (what answers and messages show). */
static void task_log_rel(const char *dag, const char *run, const char *task, int try_number, char *out, size_t outsz)
{
	snprintf(out, outsz, "logs/dag_id=%s/run_id=%s/task_id=%s/attempt=%d.log", dag, run, task, try_number);
}

/* Opens a try's log: flags O_RDONLY to read it, or O_WRONLY|O_APPEND|O_CREAT to write it (then the directories are
 * created as needed). Returns the descriptor, or a negative SL_E* (SL_ENOTFOUND when it does not exist). */
static int task_log_open(struct sl_sched *s, const char *dag, const char *run, const char *task, int try_number,
			 int flags, struct sl_err *err)
{
	int rc = log_ids_ok(dag, run, task, try_number, err);
	if (rc)
		return rc;
	bool create = flags & O_CREAT;
	char comp[4][300], rel[1100];
	snprintf(comp[0], sizeof comp[0], "logs");
	snprintf(comp[1], sizeof comp[1], "dag_id=%s", dag);
	snprintf(comp[2], sizeof comp[2], "run_id=%s", run);
	snprintf(comp[3], sizeof comp[3], "task_id=%s", task);
	task_log_rel(dag, run, task, try_number, rel, sizeof rel);
	int dfd = open(s->data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return sl_err_set(err, SL_EIO, "cannot open data_dir: %s", strerror(errno));
	for (int i = 0; i < 4; i++) {
		if (create && mkdirat(dfd, comp[i], 0755) && errno != EEXIST) {
			rc = sl_err_set(err, SL_EIO, "cannot create %s in data_dir: %s", rel, strerror(errno));
			close(dfd);
			return rc;
		}
		int next = openat(dfd, comp[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		int e = errno;
		close(dfd);
		if (next < 0)
			return sl_err_set(err, e == ENOENT ? SL_ENOTFOUND : SL_EIO, "%s: %s", rel,
					  e == ELOOP ? "a symlink on the way (refused)" : strerror(e));
		dfd = next;
	}
	char name[40];
	snprintf(name, sizeof name, "attempt=%d.log", try_number);
	int fd = openat(dfd, name, flags | O_NOFOLLOW | O_CLOEXEC, 0644);
	int e = errno;
	close(dfd);
	if (fd < 0)
		return sl_err_set(err, e == ENOENT ? SL_ENOTFOUND : SL_EIO, "%s: %s", rel,
				  e == ELOOP ? "a symlink (refused)" : strerror(e));
	return fd;
}

int sl_sched_log_path(struct sl_sched *s, const char *dag_id, const char *run_id, const char *task_id, int try_number,
		      char *out, size_t outsz)
{
	if (log_ids_ok(dag_id, run_id, task_id, try_number, NULL))
		return SL_EINVAL;
	char rel[1100];
	task_log_rel(dag_id, run_id, task_id, try_number, rel, sizeof rel);
	snprintf(out, outsz, "%s/%s", s->data_dir, rel);
	return 0;
}

int sl_sched_log_read(struct sl_sched *s, const char *dag_id, const char *run_id, const char *task_id, int try_number,
		      size_t max, struct sl_buf *out, struct sl_err *err)
{
	int fd = task_log_open(s, dag_id, run_id, task_id, try_number, O_RDONLY, err);
	if (fd < 0)
		return fd;
	char chunk[4096];
	ssize_t r;
	while (out->len < max && (r = read(fd, chunk, sizeof chunk)) > 0)
		sl_buf_append(out, chunk, (size_t)r);
	close(fd);
	return sl_buf_ok(out) ? 0 : sl_err_set(err, SL_ENOMEM, "out of memory");
}

static int spawn(struct sl_sched *s, size_t di, size_t ti, const char *run_id, int try_number, int64_t logical,
		 int64_t istart, int64_t iend, const char *conf, struct sl_err *err)
{
	struct sl_dag *d = &s->dags[di];
	struct sl_task *t = &d->tasks[ti];
	char path[1100];
	task_log_rel(d->id, run_id, t->id, try_number, path, sizeof path);
	int fd = task_log_open(s, d->id, run_id, t->id, try_number, O_WRONLY | O_CREAT | O_APPEND, err);
	if (fd < 0)
		return sl_err_prefix(err, "task %s.%s run=%s: ", d->id, t->id, run_id);
	const char *bin = s->o.sluice_bin ? s->o.sluice_bin : "sluice";
	const char *cfg = s->o.config_path ? s->o.config_path : "sluice.yaml";
	char num[64];
	const char *argv[16];
	int ac = 0;
	switch (t->kind) {
	case SL_TASK_INGEST:
		argv[ac++] = bin, argv[ac++] = "ingest", argv[ac++] = t->pipeline, argv[ac++] = "-c", argv[ac++] = cfg;
		if (t->count) {
			snprintf(num, sizeof num, "%lld", (long long)t->count);
			argv[ac++] = "--count", argv[ac++] = num;
		} else {
			snprintf(num, sizeof num, "%lldms", (long long)t->for_ms);
			argv[ac++] = "--for", argv[ac++] = num;
		}
		break;
	case SL_TASK_PROCESS:
		argv[ac++] = bin, argv[ac++] = "process", argv[ac++] = t->pipeline, argv[ac++] = "-c", argv[ac++] = cfg;
		argv[ac++] = "--drain";
		break;
	case SL_TASK_CQL:
	case SL_TASK_SENSOR:
		argv[ac++] = bin, argv[ac++] = "dag", argv[ac++] = "run-task", argv[ac++] = d->id, argv[ac++] = t->id;
		argv[ac++] = "-c", argv[ac++] = cfg;
		break;
	case SL_TASK_SHELL:
		argv[ac++] = "/bin/sh", argv[ac++] = "-c", argv[ac++] = t->command;
		break;
	}
	argv[ac] = NULL;
	char ts[40], ie[40], ist[40];
	sl_sched_format_time(logical, ts, sizeof ts);
	sl_sched_format_time(istart, ist, sizeof ist);
	sl_sched_format_time(iend, ie, sizeof ie);
	dprintf(fd, "sluice scheduler: dag=%s run=%s task=%s try=%d/%lld kind=%s command:", d->id, run_id, t->id,
		try_number, (long long)t->retries + 1, t->kind_s);
	for (int i = 0; i < ac; i++)
		dprintf(fd, " %s", argv[i]);
	dprintf(fd, "\n");
	char tn[16], ds[11];
	snprintf(tn, sizeof tn, "%d", try_number);
	snprintf(ds, sizeof ds, "%.10s", ts);
	struct sl_strlist env = {0};
	task_env(s, t, &env);
	env_set(&env, "SLUICE_DAG_ID", d->id);
	env_set(&env, "SLUICE_TASK_ID", t->id);
	env_set(&env, "SLUICE_RUN_ID", run_id);
	env_set(&env, "SLUICE_LOGICAL_DATE", ts);
	env_set(&env, "SLUICE_DS", ds);
	env_set(&env, "SLUICE_DATA_INTERVAL_START", ist);
	env_set(&env, "SLUICE_DATA_INTERVAL_END", ie);
	env_set(&env, "SLUICE_TRY_NUMBER", tn);
	env_set(&env, "SLUICE_CONF", conf ? conf : "{}");
	env_set(&env, "SLUICE_CONFIG", cfg);
	for (size_t i = 0; i < t->env.n; i++)
		env_set(&env, t->env.k[i], t->env.v[i]);
	if (!env.v) {
		close(fd);
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	}
	pid_t pid = fork();
	if (pid < 0) {
		close(fd);
		list_free(&env);
		return sl_err_set(err, SL_EIO, "fork for task %s.%s: %s", d->id, t->id, strerror(errno));
	}
	if (pid == 0) {
		/* Own process group, so a timeout kills the task and everything it started. */
		setpgid(0, 0);
		int nul = open("/dev/null", O_RDONLY);
		if (nul >= 0)
			dup2(nul, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		/* execvpe searches the PATH of the scheduler, the one the task's own PATH came from. */
		execvpe(argv[0], (char *const *)argv, env.v);
		dprintf(2, "sluice scheduler: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	setpgid(pid, pid);
	close(fd);
	list_free(&env);
	if (s->nch == s->capch) {
		size_t nc = s->capch ? s->capch * 2 : 8;
		struct child *n = realloc(s->ch, nc * sizeof *n);
		if (!n) {
			kill(-pid, SIGKILL);
			return sl_err_set(err, SL_ENOMEM, "out of memory");
		}
		s->ch = n;
		s->capch = nc;
	}
	struct child *c = &s->ch[s->nch++];
	memset(c, 0, sizeof *c);
	c->pid = pid;
	c->dag = di;
	c->task = ti;
	snprintf(c->run_id, sizeof c->run_id, "%s", run_id);
	c->try_number = try_number;
	if (t->execution_timeout_ms > 0)
		c->deadline = now_s(s) + (t->execution_timeout_ms + 999) / 1000;
	if (!s->o.quiet)
		sl_info("scheduler", "started dag=%s run=%s task=%s try=%d pid=%d log=%s", d->id, run_id, t->id,
			try_number, pid, path);
	return 0;
}

static void set_ti(struct sl_sched *s, const char *dag, const char *run, const char *task, int state,
		   int64_t next_try_at, int exit_code, bool set_end)
{
	sqlite3_stmt *st = prep(s, "UPDATE task_instance SET state = ?, next_try_at = ?, exit_code = ?, pid = NULL,"
				   " end_date = CASE WHEN ? THEN ? ELSE end_date END"
				   " WHERE dag_id = ? AND run_id = ? AND task_id = ?");
	sqlite3_bind_int(st, 1, state);
	if (next_try_at)
		sqlite3_bind_int64(st, 2, next_try_at);
	if (exit_code != INT32_MIN)
		sqlite3_bind_int(st, 3, exit_code);
	sqlite3_bind_int(st, 4, set_end);
	sqlite3_bind_int64(st, 5, now_s(s));
	sqlite3_bind_text(st, 6, dag, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, run, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, task, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		sl_error("scheduler", "updating task %s.%s run=%s: %s", dag, task, run, sqlite3_errmsg(s->db));
	sqlite3_finalize(st);
}

/* A try is retried while its number is below max_tries: retries + 1 at first, and try_number + retries + 1 after a
 * clear (Airflow's), so a cleared task gets its retries again while its try numbers (and logs) go on. */
static int max_tries_of(struct sl_sched *s, const char *dag, const char *run, const char *task, int def)
{
	sqlite3_stmt *st = prep(s, "SELECT max_tries FROM task_instance WHERE dag_id = ? AND run_id = ? AND task_id = ?");
	sqlite3_bind_text(st, 1, dag, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, run, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, task, -1, SQLITE_STATIC);
	int v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : def;
	sqlite3_finalize(st);
	return v;
}

static int reap(struct sl_sched *s)
{
	int changes = 0;
	int64_t now = now_s(s);
	for (size_t i = 0; i < s->nch;) {
		struct child *c = &s->ch[i];
		int wst;
		pid_t r = waitpid(c->pid, &wst, WNOHANG);
		if (r == 0) {
			if (c->deadline && now >= c->deadline && !c->timed_out) {
				c->timed_out = true;
				c->term_at = sl_mono_s();
				kill(-c->pid, SIGTERM);
				sl_warn("scheduler", "task %s.%s run=%s try=%d exceeded its execution_timeout; sent SIGTERM",
					s->dags[c->dag].id, s->dags[c->dag].tasks[c->task].id, c->run_id, c->try_number);
			} else if (c->timed_out && sl_mono_s() - c->term_at > (double)s->o.kill_grace_ms / 1000) {
				kill(-c->pid, SIGKILL);
			}
			i++;
			continue;
		}
		struct sl_dag *d = &s->dags[c->dag];
		struct sl_task *t = &d->tasks[c->task];
		int code = r < 0 ? -1 : WIFEXITED(wst) ? WEXITSTATUS(wst) : 128 + WTERMSIG(wst);
		int lfd = task_log_open(s, d->id, c->run_id, t->id, c->try_number, O_WRONLY | O_APPEND, NULL);
		FILE *lf = lfd >= 0 ? fdopen(lfd, "a") : NULL;
		if (lfd >= 0 && !lf)
			close(lfd);
		int state;
		int64_t next_try = 0;
		if (code == 0 && !c->timed_out) {
			state = SL_TI_SUCCESS;
		} else if (code == 99 && !c->timed_out) {
			state = SL_TI_SKIPPED;
		} else if (c->try_number < max_tries_of(s, d->id, c->run_id, t->id, t->retries + 1)) {
			int64_t logical = 0;
			sqlite3_stmt *st = prep(s, "SELECT logical_date FROM dag_run WHERE dag_id = ? AND run_id = ?");
			sqlite3_bind_text(st, 1, d->id, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 2, c->run_id, -1, SQLITE_STATIC);
			if (sqlite3_step(st) == SQLITE_ROW)
				logical = sqlite3_column_int64(st, 0);
			sqlite3_finalize(st);
			state = SL_TI_UP_FOR_RETRY;
			next_try = now + (sl_sched_retry_wait_ms(t, d->id, logical, c->try_number + 1) + 999) / 1000;
		} else {
			state = SL_TI_FAILED;
		}
		if (lf) {
			fprintf(lf, "sluice scheduler: try %d ended: %s%s (exit code %d)\n", c->try_number,
				sl_sched_state_name(state), c->timed_out ? " after execution_timeout" : "", code);
			fclose(lf);
		}
		set_ti(s, d->id, c->run_id, t->id, state, next_try, code, true);
		{
			sqlite3_stmt *u = prep(s, "UPDATE task_try SET end_date = ?, state = ?, exit_code = ? WHERE dag_id = ?"
						  " AND run_id = ? AND task_id = ? AND try_number = ?");
			sqlite3_bind_int64(u, 1, now_s(s));
			sqlite3_bind_text(u, 2, sl_sched_state_name(state), -1, SQLITE_STATIC);
			sqlite3_bind_int(u, 3, code);
			sqlite3_bind_text(u, 4, d->id, -1, SQLITE_STATIC);
			sqlite3_bind_text(u, 5, c->run_id, -1, SQLITE_STATIC);
			sqlite3_bind_text(u, 6, t->id, -1, SQLITE_STATIC);
			sqlite3_bind_int(u, 7, c->try_number);
			sqlite3_step(u);
			sqlite3_finalize(u);
		}
		count_task(d->id, t->id, sl_sched_state_name(state));
		if (!s->o.quiet || state == SL_TI_FAILED)
			sl_log(state == SL_TI_FAILED ? SL_LOG_WARN : SL_LOG_INFO, "scheduler",
			       "task dag=%s run=%s task=%s try=%d %s exit_code=%d%s", d->id, c->run_id, t->id,
			       c->try_number, sl_sched_state_name(state), code, c->timed_out ? " (timed out)" : "");
		s->ch[i] = s->ch[--s->nch];
		changes++;
	}
	return changes;
}

static bool terminal(int st)
{
	return st == SL_TI_SUCCESS || st == SL_TI_FAILED || st == SL_TI_SKIPPED || st == SL_TI_UPSTREAM_FAILED;
}

/* Airflow's trigger rules: the state a waiting task moves to given its upstream states, or NONE to keep waiting. */
static int evaluate_rule(const struct sl_task *t, const int *states)
{
	size_t succ = 0, fail = 0, skip = 0, done = 0;
	for (size_t k = 0; k < t->nup; k++) {
		int u = states[t->up[k]];
		succ += u == SL_TI_SUCCESS;
		fail += u == SL_TI_FAILED || u == SL_TI_UPSTREAM_FAILED;
		skip += u == SL_TI_SKIPPED;
		done += terminal(u);
	}
	bool all_done = done == t->nup;
	switch (t->rule) {
	case SL_TR_ALL_SUCCESS:
		if (fail)
			return SL_TI_UPSTREAM_FAILED;
		if (skip)
			return SL_TI_SKIPPED;
		return all_done ? SL_TI_QUEUED : SL_TI_NONE;
	case SL_TR_ALL_DONE:
		return all_done ? SL_TI_QUEUED : SL_TI_NONE;
	case SL_TR_ALL_FAILED:
		if (succ || skip)
			return SL_TI_SKIPPED;
		return all_done ? SL_TI_QUEUED : SL_TI_NONE;
	case SL_TR_ONE_SUCCESS:
		if (succ)
			return SL_TI_QUEUED;
		if (all_done)
			return fail ? SL_TI_UPSTREAM_FAILED : SL_TI_SKIPPED;
		return SL_TI_NONE;
	case SL_TR_ONE_FAILED:
		if (fail)
			return SL_TI_QUEUED;
		return all_done ? SL_TI_SKIPPED : SL_TI_NONE;
	case SL_TR_NONE_FAILED:
		if (fail)
			return SL_TI_UPSTREAM_FAILED;
		return all_done ? SL_TI_QUEUED : SL_TI_NONE;
	}
	return SL_TI_NONE;
}

static int running_tasks_of(struct sl_sched *s, size_t di)
{
	int n = 0;
	for (size_t i = 0; i < s->nch; i++)
		n += s->ch[i].dag == di;
	return n;
}

/* Moves one run forward; returns the number of changes. */
static int progress_run(struct sl_sched *s, size_t di, const char *run_id, int64_t logical, int64_t istart,
			int64_t iend, const char *conf, struct sl_err *err)
{
	struct sl_dag *d = &s->dags[di];
	int *states = calloc(d->ntasks, sizeof *states);
	int *tries = calloc(d->ntasks, sizeof *tries);
	int64_t *next_at = calloc(d->ntasks, sizeof *next_at);
	int changes = 0;
	int64_t now = now_s(s);
	for (int pass = 0; pass < 64; pass++) {
		sqlite3_stmt *st = prep(s, "SELECT task_id, state, try_number, next_try_at FROM task_instance"
					   " WHERE dag_id = ? AND run_id = ?");
		sqlite3_bind_text(st, 1, d->id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, run_id, -1, SQLITE_STATIC);
		while (sqlite3_step(st) == SQLITE_ROW) {
			const char *tid = (const char *)sqlite3_column_text(st, 0);
			for (size_t k = 0; k < d->ntasks; k++)
				if (!strcmp(d->tasks[k].id, tid)) {
					states[k] = sqlite3_column_int(st, 1);
					tries[k] = sqlite3_column_int(st, 2);
					next_at[k] = sqlite3_column_int64(st, 3);
				}
		}
		sqlite3_finalize(st);
		int pass_changes = 0;
		for (size_t k = 0; k < d->ntasks; k++) {
			struct sl_task *t = &d->tasks[k];
			if (states[k] == SL_TI_NONE) {
				int ns = evaluate_rule(t, states);
				if (ns != SL_TI_NONE) {
					set_ti(s, d->id, run_id, t->id, ns, 0, INT32_MIN, ns != SL_TI_QUEUED);
					states[k] = ns;
					pass_changes++;
				}
			} else if (states[k] == SL_TI_UP_FOR_RETRY && now >= next_at[k]) {
				set_ti(s, d->id, run_id, t->id, SL_TI_QUEUED, 0, INT32_MIN, false);
				states[k] = SL_TI_QUEUED;
				pass_changes++;
			}
			if (states[k] == SL_TI_QUEUED && running_tasks_of(s, di) < d->max_active_tasks) {
				int tn = tries[k] + 1;
				if (spawn(s, di, k, run_id, tn, logical, istart, iend, conf, err)) {
					sl_error("scheduler", "%s", err->msg);
					set_ti(s, d->id, run_id, t->id, SL_TI_FAILED, 0, -1, true);
					states[k] = SL_TI_FAILED;
				} else {
					sqlite3_stmt *u = prep(s, "UPDATE task_instance SET state = 2, try_number = ?, pid = ?,"
								  " start_date = ?, end_date = NULL, next_try_at = NULL"
								  " WHERE dag_id = ? AND run_id = ? AND task_id = ?");
					sqlite3_bind_int(u, 1, tn);
					sqlite3_bind_int(u, 2, s->ch[s->nch - 1].pid);
					sqlite3_bind_int64(u, 3, now);
					sqlite3_bind_text(u, 4, d->id, -1, SQLITE_STATIC);
					sqlite3_bind_text(u, 5, run_id, -1, SQLITE_STATIC);
					sqlite3_bind_text(u, 6, t->id, -1, SQLITE_STATIC);
					sqlite3_step(u);
					sqlite3_finalize(u);
					u = prep(s, "INSERT OR REPLACE INTO task_try (dag_id, run_id, task_id, try_number, start_date,"
						    " state) VALUES (?, ?, ?, ?, ?, 'running')");
					sqlite3_bind_text(u, 1, d->id, -1, SQLITE_STATIC);
					sqlite3_bind_text(u, 2, run_id, -1, SQLITE_STATIC);
					sqlite3_bind_text(u, 3, t->id, -1, SQLITE_STATIC);
					sqlite3_bind_int(u, 4, tn);
					sqlite3_bind_int64(u, 5, now);
					sqlite3_step(u);
					sqlite3_finalize(u);
					states[k] = SL_TI_RUNNING;
					tries[k] = tn;
				}
				pass_changes++;
			}
		}
		changes += pass_changes;
		if (!pass_changes)
			break;
	}
	bool all_terminal = true, failed = false;
	for (size_t k = 0; k < d->ntasks; k++) {
		all_terminal &= terminal(states[k]);
		/* A run fails when a leaf task (one no other task depends on) failed, as in Airflow. */
		bool leaf = true;
		for (size_t j = 0; j < d->ntasks && leaf; j++)
			for (size_t u = 0; u < d->tasks[j].nup; u++)
				if (d->tasks[j].up[u] == k)
					leaf = false;
		if (leaf && (states[k] == SL_TI_FAILED || states[k] == SL_TI_UPSTREAM_FAILED))
			failed = true;
	}
	if (all_terminal) {
		sqlite3_stmt *st = prep(s, "UPDATE dag_run SET state = ?, end_date = ? WHERE dag_id = ? AND run_id = ?");
		sqlite3_bind_text(st, 1, failed ? "failed" : "success", -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, now);
		sqlite3_bind_text(st, 3, d->id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, run_id, -1, SQLITE_STATIC);
		sqlite3_step(st);
		sqlite3_finalize(st);
		sl_log(failed ? SL_LOG_WARN : SL_LOG_INFO, "scheduler", "run dag=%s run_id=%s %s", d->id, run_id,
		       failed ? "failed" : "success");
		char l[600];
		snprintf(l, sizeof l, "dag=\"%s\",state=\"%s\"", d->id, failed ? "failed" : "success");
		sl_counter_add(sl_counter(sl_metrics_global(), "sluice_scheduler_dag_runs_total", l,
					  "DAG runs that ended, by DAG and final state"), 1);
		changes++;
	}
	free(states);
	free(tries);
	free(next_at);
	return changes;
}

int sl_sched_tick(struct sl_sched *s, struct sl_err *err)
{
	lock(s);
	int changes = reap(s);
	int64_t now = now_s(s);
	for (size_t di = 0; di < s->ndags; di++) {
		struct sl_dag *d = &s->dags[di];
		if (s->only_dag[0] && strcmp(s->only_dag, d->id))
			continue;
		int paused = scalar(s, "SELECT is_paused FROM dag WHERE dag_id = ?", d->id, NULL, 0) != 0;
		if (paused && !s->ignore_pause)
			continue;
		if (d->has_schedule && !paused && s->o.owner) {
			int rc = schedule_dag(s, d, now, err);
			if (rc < 0) {
				unlock(s);
				return rc;
			}
			changes += rc;
		}
		/* Start queued runs, oldest logical date first, up to max_active_runs. */
		int64_t running = scalar(s, "SELECT count(*) FROM dag_run WHERE dag_id = ? AND state = 'running'", d->id,
					 NULL, 0);
		sqlite3_stmt *st = prep(s, "SELECT run_id FROM dag_run WHERE dag_id = ? AND state = 'queued'"
					   " AND substr(run_id, 1, length(?3)) = ?3 ORDER BY logical_date LIMIT ?2");
		sqlite3_bind_text(st, 1, d->id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, d->max_active_runs - running > 0 ? d->max_active_runs - running : 0);
		sqlite3_bind_text(st, 3, s->only_prefix, -1, SQLITE_STATIC);
		char ids[64][160];
		int nids = 0;
		while (nids < 64 && sqlite3_step(st) == SQLITE_ROW)
			snprintf(ids[nids++], sizeof ids[0], "%s", (const char *)sqlite3_column_text(st, 0));
		sqlite3_finalize(st);
		for (int i = 0; i < nids; i++) {
			st = prep(s, "UPDATE dag_run SET state = 'running', start_date = ? WHERE dag_id = ? AND run_id = ?");
			sqlite3_bind_int64(st, 1, now);
			sqlite3_bind_text(st, 2, d->id, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 3, ids[i], -1, SQLITE_STATIC);
			sqlite3_step(st);
			sqlite3_finalize(st);
			changes++;
		}
		st = prep(s, "SELECT run_id, logical_date, interval_start, interval_end, conf FROM dag_run"
			     " WHERE dag_id = ? AND state = 'running' AND substr(run_id, 1, length(?2)) = ?2"
			     " ORDER BY logical_date");
		sqlite3_bind_text(st, 1, d->id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, s->only_prefix, -1, SQLITE_STATIC);
		struct {
			char id[160];
			int64_t l, a, b;
			char *conf;
		} runs[64];
		int nr = 0;
		while (nr < 64 && sqlite3_step(st) == SQLITE_ROW) {
			snprintf(runs[nr].id, sizeof runs[nr].id, "%s", (const char *)sqlite3_column_text(st, 0));
			runs[nr].l = sqlite3_column_int64(st, 1);
			runs[nr].a = sqlite3_column_int64(st, 2);
			runs[nr].b = sqlite3_column_int64(st, 3);
			runs[nr].conf = strdup((const char *)sqlite3_column_text(st, 4));
			nr++;
		}
		sqlite3_finalize(st);
		for (int i = 0; i < nr; i++) {
			changes += progress_run(s, di, runs[i].id, runs[i].l, runs[i].a, runs[i].b, runs[i].conf, err);
			free(runs[i].conf);
		}
	}
	unlock(s);
	return changes;
}

int sl_sched_run_state(struct sl_sched *s, const char *dag_id, const char *run_id, char *state, size_t sz)
{
	lock(s);
	sqlite3_stmt *st = prep(s, "SELECT state FROM dag_run WHERE dag_id = ? AND run_id = ?");
	sqlite3_bind_text(st, 1, dag_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, run_id, -1, SQLITE_STATIC);
	int rc = SL_ENOTFOUND;
	if (sqlite3_step(st) == SQLITE_ROW) {
		snprintf(state, sz, "%s", (const char *)sqlite3_column_text(st, 0));
		rc = 0;
	}
	sqlite3_finalize(st);
	unlock(s);
	return rc;
}

int sl_sched_run_until_done(struct sl_sched *s, const char *dag_id, const char *run_id, int poll_ms,
			    volatile sig_atomic_t *stop, struct sl_err *err)
{
	for (;;) {
		int rc = sl_sched_tick(s, err);
		if (rc < 0)
			return rc;
		int64_t active;
		lock(s);
		if (run_id)
			active = scalar(s, "SELECT count(*) FROM dag_run WHERE dag_id = ? AND run_id = ? AND state IN"
					   " ('queued','running')", dag_id, run_id, 0);
		else if (dag_id)
			active = scalar(s, "SELECT count(*) FROM dag_run WHERE dag_id = ? AND state IN ('queued','running')",
					dag_id, NULL, 0);
		else
			active = scalar(s, "SELECT count(*) FROM dag_run WHERE state IN ('queued','running')", NULL, NULL, 0);
		unlock(s);
		if (!active)
			return 0;
		if (stop && *stop)
			return SL_ECANCELED;
		if (rc == 0)
			usleep((useconds_t)poll_ms * 1000);
	}
}

int sl_sched_ti(struct sl_sched *s, const char *dag_id, const char *run_id, const char *task_id, int *state,
		int *try_number, int64_t *next_try_at)
{
	lock(s);
	sqlite3_stmt *st = prep(s, "SELECT state, try_number, next_try_at FROM task_instance WHERE dag_id = ? AND"
				   " run_id = ? AND task_id = ?");
	sqlite3_bind_text(st, 1, dag_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, run_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, task_id, -1, SQLITE_STATIC);
	int rc = SL_ENOTFOUND;
	if (sqlite3_step(st) == SQLITE_ROW) {
		if (state)
			*state = sqlite3_column_int(st, 0);
		if (try_number)
			*try_number = sqlite3_column_int(st, 1);
		if (next_try_at)
			*next_try_at = sqlite3_column_int64(st, 2);
		rc = 0;
	}
	sqlite3_finalize(st);
	unlock(s);
	return rc;
}

int64_t sl_sched_count_runs(struct sl_sched *s, const char *dag_id, const char *run_type)
{
	lock(s);
	int64_t n = run_type ? scalar(s, "SELECT count(*) FROM dag_run WHERE dag_id = ? AND run_type = ?", dag_id,
				      run_type, 0)
			     : scalar(s, "SELECT count(*) FROM dag_run WHERE dag_id = ?", dag_id, NULL, 0);
	unlock(s);
	return n;
}

static void json_time(struct sl_buf *b, sqlite3_stmt *st, int col)
{
	if (sqlite3_column_type(st, col) == SQLITE_NULL) {
		sl_buf_puts(b, "null");
		return;
	}
	char ts[40];
	sl_sched_format_time(sqlite3_column_int64(st, col), ts, sizeof ts);
	sl_buf_printf(b, "\"%s\"", ts);
}

static const char run_cols[] = "SELECT run_id, run_type, logical_date, interval_start, interval_end, state, conf,"
				" queued_at, start_date, end_date FROM dag_run";

/* One dag_run row (run_cols) as Airflow's DAGRun object. */
static void run_row_json(sqlite3_stmt *st, const char *dag_id, struct sl_buf *out)
{
	const char *rid = (const char *)sqlite3_column_text(st, 0);
	const char *type = (const char *)sqlite3_column_text(st, 1);
	const char *state = (const char *)sqlite3_column_text(st, 5);
	const char *conf = (const char *)sqlite3_column_text(st, 6);
	sl_buf_puts(out, "{\"dag_id\":");
	sl_buf_json_str(out, dag_id, strlen(dag_id));
	sl_buf_puts(out, ",\"dag_run_id\":");
	sl_buf_json_str(out, rid, strlen(rid));
	sl_buf_puts(out, ",\"run_type\":");
	sl_buf_json_str(out, type, strlen(type));
	sl_buf_puts(out, ",\"logical_date\":");
	json_time(out, st, 2);
	sl_buf_puts(out, ",\"execution_date\":");
	json_time(out, st, 2);
	sl_buf_puts(out, ",\"data_interval_start\":");
	json_time(out, st, 3);
	sl_buf_puts(out, ",\"data_interval_end\":");
	json_time(out, st, 4);
	sl_buf_puts(out, ",\"state\":");
	sl_buf_json_str(out, state, strlen(state));
	/* conf was checked to be a JSON object when the run was created (sl_sched_trigger); a row written otherwise
	 * (an older sluice, a hand edit) shows as {} rather than breaking the document. */
	sl_buf_puts(out, ",\"conf\":");
	sl_buf_puts(out, conf && *conf == '{' && conf[strlen(conf) - 1] == '}' ? conf : "{}");
	sl_buf_printf(out, ",\"external_trigger\":%s,\"queued_at\":", strcmp(type, "manual") ? "false" : "true");
	json_time(out, st, 7);
	sl_buf_puts(out, ",\"start_date\":");
	json_time(out, st, 8);
	sl_buf_puts(out, ",\"end_date\":");
	json_time(out, st, 9);
	sl_buf_putc(out, '}');
}

int sl_sched_runs_json(struct sl_sched *s, const char *dag_id, int limit, struct sl_buf *out, struct sl_err *err)
{
	if (!sl_sched_dag(s, dag_id, err))
		return SL_ENOTFOUND;
	lock(s);
	char sql[300];
	snprintf(sql, sizeof sql, "%s WHERE dag_id = ? ORDER BY logical_date DESC LIMIT ?", run_cols);
	sqlite3_stmt *st = prep(s, sql);
	sqlite3_bind_text(st, 1, dag_id, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, limit > 0 ? limit : 100);
	sl_buf_puts(out, "{\"dag_runs\":[");
	int n = 0;
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (n++)
			sl_buf_putc(out, ',');
		run_row_json(st, dag_id, out);
	}
	sqlite3_finalize(st);
	sl_buf_printf(out, "],\"total_entries\":%lld}",
		      (long long)scalar(s, "SELECT count(*) FROM dag_run WHERE dag_id = ?", dag_id, NULL, 0));
	unlock(s);
	return 0;
}

int sl_sched_run_json(struct sl_sched *s, const char *dag_id, const char *run_id, struct sl_buf *out,
		      struct sl_err *err)
{
	lock(s);
	char sql[300];
	snprintf(sql, sizeof sql, "%s WHERE dag_id = ? AND run_id = ?", run_cols);
	sqlite3_stmt *st = prep(s, sql);
	sqlite3_bind_text(st, 1, dag_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, run_id, -1, SQLITE_STATIC);
	int rc = 0;
	if (st && sqlite3_step(st) == SQLITE_ROW)
		run_row_json(st, dag_id, out);
	else
		rc = sl_err_set(err, SL_ENOTFOUND, "no run '%s' of DAG '%s'", run_id, dag_id);
	sqlite3_finalize(st);
	unlock(s);
	return rc;
}

int sl_sched_task_tries_json(struct sl_sched *s, const char *dag_id, const char *run_id, const char *task_id,
			     struct sl_buf *out, struct sl_err *err)
{
	lock(s);
	if (!scalar(s, "SELECT count(*) FROM dag_run WHERE dag_id = ? AND run_id = ?", dag_id, run_id, 0)) {
		unlock(s);
		return sl_err_set(err, SL_ENOTFOUND, "no run '%s' of DAG '%s'", run_id, dag_id);
	}
	bool all = !strcmp(task_id, "~");
	sqlite3_stmt *st = prep(s, "SELECT task_id, try_number, state, start_date, end_date, exit_code FROM task_try"
				   " WHERE dag_id = ?1 AND run_id = ?2 AND (?3 = '~' OR task_id = ?3)"
				   " ORDER BY task_id, try_number");
	sqlite3_bind_text(st, 1, dag_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, run_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, task_id, -1, SQLITE_STATIC);
	sl_buf_puts(out, "{\"task_instances\":[");
	int n = 0;
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *tid = (const char *)sqlite3_column_text(st, 0);
		const char *state = (const char *)sqlite3_column_text(st, 2);
		sl_buf_puts(out, n++ ? ",{\"task_id\":" : "{\"task_id\":");
		sl_buf_json_str(out, tid, strlen(tid));
		sl_buf_puts(out, ",\"dag_id\":");
		sl_buf_json_str(out, dag_id, strlen(dag_id));
		sl_buf_puts(out, ",\"dag_run_id\":");
		sl_buf_json_str(out, run_id, strlen(run_id));
		sl_buf_printf(out, ",\"try_number\":%d,\"state\":", sqlite3_column_int(st, 1));
		sl_buf_json_str(out, state ? state : "", state ? strlen(state) : 0);
		sl_buf_puts(out, ",\"start_date\":");
		json_time(out, st, 3);
		sl_buf_puts(out, ",\"end_date\":");
		json_time(out, st, 4);
		if (sqlite3_column_type(st, 5) == SQLITE_NULL)
			sl_buf_puts(out, ",\"exit_code\":null}");
		else
			sl_buf_printf(out, ",\"exit_code\":%d}", sqlite3_column_int(st, 5));
	}
	sqlite3_finalize(st);
	sl_buf_printf(out, "],\"total_entries\":%d}", n);
	int rc = 0;
	if (!n && !all) {
		st = prep(s, "SELECT 1 FROM task_instance WHERE dag_id = ? AND run_id = ? AND task_id = ?");
		sqlite3_bind_text(st, 1, dag_id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, run_id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, task_id, -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_ROW)
			rc = sl_err_set(err, SL_ENOTFOUND, "no task '%s' in run '%s' of DAG '%s'", task_id, run_id, dag_id);
		sqlite3_finalize(st);
	}
	unlock(s);
	return rc;
}

int sl_sched_task_instances_json(struct sl_sched *s, const char *dag_id, const char *run_id, struct sl_buf *out,
				 struct sl_err *err)
{
	lock(s);
	if (!scalar(s, "SELECT count(*) FROM dag_run WHERE dag_id = ? AND run_id = ?", dag_id, run_id, 0)) {
		unlock(s);
		return sl_err_set(err, SL_ENOTFOUND, "no run '%s' of DAG '%s'", run_id, dag_id);
	}
	sqlite3_stmt *st = prep(s, "SELECT task_id, state, try_number, max_tries, start_date, end_date, next_try_at,"
				   " exit_code, pid FROM task_instance WHERE dag_id = ? AND run_id = ? ORDER BY rowid");
	sqlite3_bind_text(st, 1, dag_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, run_id, -1, SQLITE_STATIC);
	sl_buf_puts(out, "{\"task_instances\":[");
	int n = 0;
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *tid = (const char *)sqlite3_column_text(st, 0);
		int state = sqlite3_column_int(st, 1);
		sl_buf_puts(out, n++ ? ",{\"task_id\":" : "{\"task_id\":");
		sl_buf_json_str(out, tid, strlen(tid));
		sl_buf_puts(out, ",\"dag_id\":");
		sl_buf_json_str(out, dag_id, strlen(dag_id));
		sl_buf_puts(out, ",\"dag_run_id\":");
		sl_buf_json_str(out, run_id, strlen(run_id));
		if (state == SL_TI_NONE)
			sl_buf_puts(out, ",\"state\":null");
		else
			sl_buf_printf(out, ",\"state\":\"%s\"", sl_sched_state_name(state));
		sl_buf_printf(out, ",\"try_number\":%d,\"max_tries\":%d,\"start_date\":", sqlite3_column_int(st, 2),
			      sqlite3_column_int(st, 3));
		json_time(out, st, 4);
		sl_buf_puts(out, ",\"end_date\":");
		json_time(out, st, 5);
		sl_buf_puts(out, ",\"next_try_at\":");
		json_time(out, st, 6);
		if (sqlite3_column_type(st, 7) == SQLITE_NULL)
			sl_buf_puts(out, ",\"exit_code\":null");
		else
			sl_buf_printf(out, ",\"exit_code\":%d", sqlite3_column_int(st, 7));
		sl_buf_putc(out, '}');
	}
	sqlite3_finalize(st);
	sl_buf_printf(out, "],\"total_entries\":%d}", n);
	unlock(s);
	return 0;
}
