/* core/assert.h: SL_ALWAYS and SL_NEVER evaluate their argument once in every build and yield its truth value when
 * it holds; a broken invariant aborts in a debug build (SL_DEBUG: Debug, ASan, fuzz) and is survivable in release,
 * where SL_ASSERT does not even evaluate its argument. Both builds run this test. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/assert.h"

static int calls;
static int count(int v)
{
	calls++;
	return v;
}

static void test_hold(void **state)
{
	(void)state;
	calls = 0;
	assert_true(SL_ALWAYS(count(1)));
	assert_false(SL_NEVER(count(0)));
	assert_int_equal(calls, 2); /* evaluated exactly once each, in every build */
	SL_ASSERT(count(1));
#ifdef SL_DEBUG
	assert_int_equal(calls, 3);
#else
	assert_int_equal(calls, 2); /* compiled out */
#endif
}

/* Runs fn in a child; returns its wait status. */
static int in_child(void (*fn)(void))
{
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* keep the expected failure's message out of the test's output */
		if (!freopen("/dev/null", "w", stderr))
			_exit(3);
		fn();
		_exit(0);
	}
	int st = 0;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return st;
}

static void child_assert(void) { SL_ASSERT(count(0) == 1); }
static void child_always(void) { _exit(SL_ALWAYS(count(0)) ? 1 : 2); }
static void child_never(void) { _exit(SL_NEVER(count(1)) ? 2 : 1); }

static void test_broken(void **state)
{
	(void)state;
	int a = in_child(child_assert), b = in_child(child_always), c = in_child(child_never);
#ifdef SL_DEBUG
	/* a broken invariant stops the program where it broke */
	assert_true(WIFSIGNALED(a) && WTERMSIG(a) == SIGABRT);
	assert_true(WIFSIGNALED(b) && WTERMSIG(b) == SIGABRT);
	assert_true(WIFSIGNALED(c) && WTERMSIG(c) == SIGABRT);
#else
	/* release: SL_ASSERT is gone, and SL_ALWAYS/SL_NEVER hand the recovery path the real truth value */
	assert_true(WIFEXITED(a) && WEXITSTATUS(a) == 0);
	assert_true(WIFEXITED(b) && WEXITSTATUS(b) == 2);
	assert_true(WIFEXITED(c) && WEXITSTATUS(c) == 2);
#endif
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hold),
		cmocka_unit_test(test_broken),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
