/* A growable byte buffer for building payloads (JSON, CQL frames, HTTP bodies). Keeps its capacity across
 * sl_buf_reset() so a reused buffer stops allocating once warm. On allocation failure the buffer sets .oom and
 * ignores further writes; check sl_buf_ok() once at the end instead of after every append. */
#ifndef SL_BUF_H
#define SL_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sl_buf {
	char *data;
	size_t len, cap;
	bool oom;
};

void sl_buf_init(struct sl_buf *b);
void sl_buf_free(struct sl_buf *b);
static inline void sl_buf_reset(struct sl_buf *b) { b->len = 0; b->oom = false; }
static inline bool sl_buf_ok(const struct sl_buf *b) { return !b->oom; }
/* Ensures room for n more bytes; returns a pointer to them, or NULL (and sets oom). */
char *sl_buf_reserve(struct sl_buf *b, size_t n);
void sl_buf_append(struct sl_buf *b, const void *p, size_t n);
void sl_buf_puts(struct sl_buf *b, const char *s);
void sl_buf_putc(struct sl_buf *b, char c);
void sl_buf_printf(struct sl_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as a JSON string literal, quotes included, escaping what RFC 8259 requires. */
void sl_buf_json_str(struct sl_buf *b, const char *s, size_t n);
/* NUL-terminates without counting the NUL in len; returns data. */
const char *sl_buf_cstr(struct sl_buf *b);

#endif
