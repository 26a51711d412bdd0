/* Growable byte buffer (see buf.h). */
#include "core/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sl_buf_init(struct sl_buf *b) { memset(b, 0, sizeof *b); }

void sl_buf_free(struct sl_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof *b);
}

char *sl_buf_reserve(struct sl_buf *b, size_t n)
{
	if (b->oom)
		return NULL;
	if (b->cap - b->len < n + 1) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap - b->len < n + 1) {
			if (cap > SIZE_MAX / 2) {
				b->oom = true;
				return NULL;
			}
			cap *= 2;
		}
		char *d = realloc(b->data, cap);
		if (!d) {
			b->oom = true;
			return NULL;
		}
		b->data = d;
		b->cap = cap;
	}
	return b->data + b->len;
}

void sl_buf_append(struct sl_buf *b, const void *p, size_t n)
{
	char *d = sl_buf_reserve(b, n);
	if (d) {
		if (n)
			memcpy(d, p, n);
		b->len += n;
	}
}

void sl_buf_puts(struct sl_buf *b, const char *s) { sl_buf_append(b, s, strlen(s)); }

void sl_buf_putc(struct sl_buf *b, char c)
{
	char *d = sl_buf_reserve(b, 1);
	if (d) {
		*d = c;
		b->len++;
	}
}

void sl_buf_printf(struct sl_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	char *d = sl_buf_reserve(b, (size_t)n);
	if (!d)
		return;
	va_start(ap, fmt);
	vsnprintf(d, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void sl_buf_json_str(struct sl_buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	/* Worst case every byte becomes \u00XX. */
	char *d = sl_buf_reserve(b, n * 6 + 2);
	if (!d)
		return;
	char *o = d;
	*o++ = '"';
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		switch (c) {
		case '"': *o++ = '\\'; *o++ = '"'; break;
		case '\\': *o++ = '\\'; *o++ = '\\'; break;
		case '\n': *o++ = '\\'; *o++ = 'n'; break;
		case '\r': *o++ = '\\'; *o++ = 'r'; break;
		case '\t': *o++ = '\\'; *o++ = 't'; break;
		case '\b': *o++ = '\\'; *o++ = 'b'; break;
		case '\f': *o++ = '\\'; *o++ = 'f'; break;
		default:
			if (c < 0x20) {
				*o++ = '\\'; *o++ = 'u'; *o++ = '0'; *o++ = '0';
				*o++ = hex[c >> 4]; *o++ = hex[c & 15];
			} else
				*o++ = (char)c;
		}
	}
	*o++ = '"';
	b->len += (size_t)(o - d);
}

const char *sl_buf_cstr(struct sl_buf *b)
{
	char *d = sl_buf_reserve(b, 0);
	if (!d)
		return "";
	*d = '\0';
	return b->data;
}
