/* Benchmark: prepared single-row inserts into a table shaped like the seed's spark_streams.created_users, through
 * sluice's CQL client, asynchronous with callbacks under an in-flight bound. Prints one JSON line with rows/s and the
 * process's CPU seconds (user + system), so bench/cql/run can compare it with the Python driver on the same node.
 *
 * Rows are synthetic by default. With `seed CONFIG SEED`, they are the very rows the processor writes: records
 * SEED:0 .. SEED:ROWS-1 of the `generate` source mapped by the first pipeline of CONFIG (the seed's mapping), made
 * before the clock starts, and written at the consistency of that pipeline's sink, so bench/process measures the
 * node's ceiling for the same inserts.
 * Usage: bench_cql HOST PORT ROWS CONCURRENCY [lz4] [seed CONFIG SEED] */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "core/log.h"
#include "cql/cql.h"
#include "mapping/mapping.h"
#include "pipeline/pipeline.h"
#include "source/generate.h"

struct ctx {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	long done, failed;
	char err[512];
};

static void on_done(struct sl_cql_future *f, void *data)
{
	struct ctx *c = data;
	int rc = sl_cql_future_rc(f);
	pthread_mutex_lock(&c->mu);
	c->done++;
	if (rc != 0 && !c->failed++)
		snprintf(c->err, sizeof c->err, "%s", sl_cql_future_error(f)->msg);
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	sl_cql_future_release(f);
}

static double now_s(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

/* Row i of the synthetic set: a random uuid and text columns of plausible length. */
static void bind_synthetic(struct sl_cql_statement *st, long i, unsigned *seed)
{
	uint8_t id[16];
	for (int k = 0; k < 16; k++)
		id[k] = (uint8_t)rand_r(seed);
	id[6] = (id[6] & 0x0f) | 0x40;
	id[8] = (id[8] & 0x3f) | 0x80;
	char first[32], last[32], email[96], user[48], addr[128], post[16], phone[24], dob[32], reg[32];
	snprintf(first, sizeof first, "First%ld", i % 997);
	snprintf(last, sizeof last, "Last%ld", i % 991);
	snprintf(email, sizeof email, "first%ld.last%ld@example.com", i % 997, i);
	snprintf(user, sizeof user, "user%ld", i);
	snprintf(addr, sizeof addr, "%ld Some Street, Springfield, Region %ld, Country", i % 9999, i % 50);
	snprintf(post, sizeof post, "%05ld", i % 99999);
	snprintf(phone, sizeof phone, "(0%ld) 555-%04ld", i % 9, i % 10000);
	snprintf(dob, sizeof dob, "1980-%02ld-%02ldT10:00:00.000Z", 1 + i % 12, 1 + i % 28);
	snprintf(reg, sizeof reg, "2015-%02ld-%02ldT10:00:00.000Z", 1 + i % 12, 1 + i % 28);
	sl_cql_bind_uuid(st, 0, id);
	sl_cql_bind_str(st, 1, first);
	sl_cql_bind_str(st, 2, last);
	sl_cql_bind_str(st, 3, i % 2 ? "male" : "female");
	sl_cql_bind_str(st, 4, addr);
	sl_cql_bind_str(st, 5, post);
	sl_cql_bind_str(st, 6, email);
	sl_cql_bind_str(st, 7, user);
	sl_cql_bind_str(st, 8, dob);
	sl_cql_bind_str(st, 9, reg);
	sl_cql_bind_str(st, 10, phone);
	sl_cql_bind_str(st, 11, "https://randomuser.me/api/portraits/med/men/75.jpg");
}

/* A row of the seed mapping: its columns are the INSERT's, in its order, a uuid and then text. */
static void bind_seed(struct sl_cql_statement *st, const struct sl_record *r)
{
	sl_cql_bind_uuid(st, 0, r->v[0].u.uuid);
	for (int k = 1; k < 12; k++)
		if (r->v[k].null)
			sl_cql_bind_unset(st, k); /* as the sink binds a missing value */
		else
			sl_cql_bind_text(st, k, r->v[k].u.s.p, r->v[k].u.s.n);
}

/* The processor's rows: generated raw records mapped by the config's first pipeline, all in one arena. */
static struct sl_record *seed_rows(const char *config, uint64_t seed, long rows, struct sl_arena *a, int *cl)
{
	struct sl_conf c;
	struct sl_err e = {0};
	struct sl_json_parser *jp = NULL;
	struct sl_record *recs = calloc((size_t)rows, sizeof *recs);
	struct sl_mapping_env env;
	struct sl_buf raw;
	sl_buf_init(&raw);
	sl_mapping_env_init(&env);
	if (!recs || sl_conf_load(config, &c, &e) || c.np < 1 || sl_json_parser_new(&jp, 1 << 20, 64, &e)) {
		fprintf(stderr, "bench_cql: %s: %s\n", config, e.msg[0] ? e.msg : "no pipeline");
		exit(1);
	}
	const struct sl_schema *sc = sl_mapping_schema(c.p[0].map);
	for (size_t k = 0; k < sc->n; k++)
		if (sc->n != 12 || sc->fields[k].type != (k ? SL_T_TEXT : SL_T_UUID)) {
			fprintf(stderr, "bench_cql: %s: the mapping is not the seed's (a uuid, then 11 text columns)\n",
				config);
			exit(1);
		}
	for (long i = 0; i < rows; i++) {
		struct sl_json_val root;
		sl_buf_reset(&raw);
		if (sl_generate_record(seed, (uint64_t)i, &raw) || sl_json_parse(jp, raw.data, raw.len, &root, &e) ||
		    sl_mapping_apply(c.p[0].map, root, &env, a, &recs[i], &e)) {
			fprintf(stderr, "bench_cql: record %ld: %s\n", i, e.msg);
			exit(1);
		}
	}
	*cl = sl_cql_consistency_parse(c.p[0].sink.consistency); /* the sink's, LOCAL_QUORUM by default */
	sl_json_parser_free(jp);
	sl_mapping_env_free(&env);
	sl_buf_free(&raw);
	sl_conf_free(&c);
	return recs;
}

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: %s HOST PORT ROWS CONCURRENCY [lz4] [seed CONFIG SEED]\n", argv[0]);
		return 2;
	}
	sl_log_set_level(SL_LOG_WARN);
	long rows = atol(argv[3]);
	struct sl_cql_options o;
	sl_cql_options_init(&o);
	o.contact_points = argv[1];
	o.port = atoi(argv[2]);
	o.max_inflight = atoi(argv[4]);
	o.compression = false;
	struct sl_record *recs = NULL;
	int cl = -1; /* the session's default (LOCAL_ONE), or the sink's with seed */
	struct sl_arena arena;
	sl_arena_init(&arena, 64 << 20);
	for (int i = 5; i < argc; i++) {
		if (!strcmp(argv[i], "lz4"))
			o.compression = true;
		else if (!strcmp(argv[i], "seed") && i + 2 < argc) {
			recs = seed_rows(argv[i + 1], strtoull(argv[i + 2], NULL, 10), rows, &arena, &cl);
			i += 2;
		} else {
			fprintf(stderr, "bench_cql: unknown argument %s\n", argv[i]);
			return 2;
		}
	}
	o.keyspace = "sl_bench_cql";
	struct sl_cql_session *s;
	struct sl_err e = {0};
	if (sl_cql_session_connect(&s, &o, &e) != 0) {
		fprintf(stderr, "bench_cql: %s\n", e.msg);
		return 1;
	}
	struct sl_cql_prepared *p;
	if (sl_cql_session_prepare_wait(s,
					"INSERT INTO created_users (id, first_name, last_name, gender, address, post_code, "
					"email, username, dob, registered_date, phone, picture) VALUES (?, ?, ?, ?, ?, ?, ?, "
					"?, ?, ?, ?, ?)",
					&p, &e) != 0) {
		fprintf(stderr, "bench_cql: %s\n", e.msg);
		return 1;
	}
	struct ctx c = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
	struct sl_cql_statement *st = sl_cql_prepared_bind(p);
	sl_cql_statement_set_idempotent(st, true);
	if (cl >= 0)
		sl_cql_statement_set_consistency(st, cl);
	unsigned seed = 42;
	double w0 = now_s(CLOCK_MONOTONIC), c0 = cpu_s();
	for (long i = 0; i < rows; i++) {
		sl_cql_statement_reset(st);
		if (recs)
			bind_seed(st, &recs[i]);
		else
			bind_synthetic(st, i, &seed);
		struct sl_cql_future *f = sl_cql_session_execute(s, st);
		sl_cql_future_set_callback(f, on_done, &c);
	}
	pthread_mutex_lock(&c.mu);
	while (c.done < rows)
		pthread_cond_wait(&c.cv, &c.mu);
	pthread_mutex_unlock(&c.mu);
	double wall = now_s(CLOCK_MONOTONIC) - w0, cpu = cpu_s() - c0;
	printf("{\"client\": \"sluice\", \"rows\": %ld, \"failed\": %ld, \"seconds\": %.3f, \"rows_per_s\": %.0f, "
	       "\"cpu_s\": %.3f, \"concurrency\": %d, \"lz4\": %s}\n",
	       rows, c.failed, wall, rows / wall, cpu, o.max_inflight, o.compression ? "true" : "false");
	if (c.failed)
		fprintf(stderr, "bench_cql: %ld failed, first: %s\n", c.failed, c.err);
	sl_cql_statement_free(st);
	sl_cql_session_close(s);
	return c.failed ? 1 : 0;
}
