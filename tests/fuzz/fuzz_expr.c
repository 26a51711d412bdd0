/* libFuzzer target for the expression language: each input is compiled as an expression against a fixed schema
 * (errors are fine, crashes, leaks and hangs are not); one that compiles is evaluated over a record with a value in
 * every column and over one with none, and its result must be null or of the type the compiler gave it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "expr/expr.h"

static struct sl_schema S;
static struct sl_arena A;
static struct sl_expr_env ENV;
static struct sl_record FULL, EMPTY;

static void init(void)
{
	struct sl_err err;
	static const struct { const char *n; enum sl_type t; } cols[] = {
		{"name", SL_T_TEXT}, {"age", SL_T_INT}, {"score", SL_T_DOUBLE}, {"ok", SL_T_BOOLEAN}, {"id", SL_T_UUID},
		{"ts", SL_T_TIMESTAMP}, {"day", SL_T_DATE}, {"n", SL_T_BIGINT}, {"address", SL_T_TEXT}};
	sl_schema_init(&S);
	for (size_t i = 0; i < sizeof cols / sizeof *cols; i++)
		if (sl_schema_add(&S, cols[i].n, cols[i].t, false, &err))
			abort();
	sl_arena_init(&A, 0);
	sl_expr_env_init(&ENV);
	ENV.now_ms = 1700000000000;
	if (sl_record_init(&FULL, &S, &A, &err) || sl_record_init(&EMPTY, &S, &A, &err))
		abort();
	FULL.v[0] = (struct sl_value){.u.s = {"Ana, María", 11}};
	FULL.v[1].u.i32 = -7;
	FULL.v[2].u.d = 1e300;
	FULL.v[3].u.b = true;
	memset(FULL.v[4].u.uuid, 0xab, 16);
	FULL.v[5].u.i64 = -62135596800000; /* year 1 */
	FULL.v[6].u.days = 2932896;        /* 9999-12-31 */
	FULL.v[7].u.i64 = INT64_MIN;
	FULL.v[8] = (struct sl_value){.u.s = {"1 A St, B, C, D", 15}};
	for (size_t i = 0; i < S.n; i++)
		EMPTY.v[i].null = true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sl_arena run;
	static bool ready;
	if (!ready) {
		init();
		sl_arena_init(&run, 0);
		ready = true;
	}
	if (size > 4096)
		return 0;
	char *src = malloc(size + 1);
	if (!src)
		return 0;
	memcpy(src, data, size);
	src[size] = 0;
	struct sl_err err;
	struct sl_expr *e = NULL;
	if (sl_expr_compile(src, &S, "fuzz", &e, &err) == 0) {
		enum sl_type t = sl_expr_type(e);
		if ((int)t < 0 || t >= SL_T__COUNT)
			abort();
		const struct sl_record *rs[] = {&FULL, &EMPTY};
		for (int i = 0; i < 2; i++) {
			struct sl_value v;
			sl_arena_reset(&run);
			if (sl_expr_eval(e, rs[i], &ENV, &run, &v, &err) == 0 && !v.null && t == SL_T_TEXT && v.u.s.n &&
			    !v.u.s.p)
				abort();
			if (t == SL_T_BOOLEAN && sl_expr_test(e, rs[i], &ENV, &run, &err) > 1)
				abort();
		}
		sl_expr_free(e);
	}
	free(src);
	return 0;
}
