/* The failure path of core/assert.h's invariants. */
#include "core/assert.h"

#include <stdio.h>
#include <stdlib.h>

void sl_assert_fail(const char *expr, const char *file, int line, const char *func)
{
	fprintf(stderr, "sluice: invariant failed: %s (%s:%d %s)\n", expr, file, line, func);
	fflush(stderr);
	abort();
}
