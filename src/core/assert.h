/* Invariants, in SQLite's style (its assert(), ALWAYS() and NEVER()). They state what the code relies on, where a
 * reader needs it, and make a broken invariant stop the program at the point it broke instead of corrupting data
 * later: a committed offset past an unwritten record, a ring index past its slots, a frame length past its buffer.
 *
 *   SL_ASSERT(x)  x must hold. Checked in debug builds (SL_DEBUG: CMake defines it for Debug, SL_SANITIZE and SL_FUZZ
 *                 builds, so `make asan`, the fuzzers and the unit tests run with it); compiled out in release, where
 *                 x is not evaluated: x must have no side effects. Cheap checks only on hot paths.
 *   SL_ALWAYS(x)  x is believed always true, but the code recovers when it is not: `if (!SL_ALWAYS(n <= cap))
 *                 return SL_EPROTO;`. x is evaluated in every build; in debug a false x stops the program (a test
 *                 finds the bug), in release the expression is x's truth value and the recovery path runs.
 *   SL_NEVER(x)   the same for a condition believed never true: `if (SL_NEVER(off < committed)) return;`.
 *
 * A failed check prints the expression, file, line and function to stderr and aborts (a core dump, a sanitizer or
 * libFuzzer report with the stack). */
#ifndef SL_ASSERT_H
#define SL_ASSERT_H

#include <stdbool.h>

/* Prints "sluice: invariant failed: EXPR (FILE:LINE FUNC)" and aborts. */
void sl_assert_fail(const char *expr, const char *file, int line, const char *func) __attribute__((noreturn, cold));

#ifdef SL_DEBUG
#define SL_ASSERT(x) (__builtin_expect(!!(x), 1) ? (void)0 : sl_assert_fail(#x, __FILE__, __LINE__, __func__))
#define SL_ALWAYS(x) (__builtin_expect(!!(x), 1) ? true : (sl_assert_fail(#x, __FILE__, __LINE__, __func__), false))
#define SL_NEVER(x) (__builtin_expect(!!(x), 0) ? (sl_assert_fail(#x, __FILE__, __LINE__, __func__), true) : false)
#else
/* `0 && (x)`: x is compiled (so it stays valid code, and variables only it reads are used) but never evaluated. */
#define SL_ASSERT(x) ((void)(0 && (x)))
#define SL_ALWAYS(x) (__builtin_expect(!!(x), 1))
#define SL_NEVER(x) (__builtin_expect(!!(x), 0))
#endif

#endif
