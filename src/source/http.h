/* The http source's pure helpers (src/source/http.c), exported for the unit tests and fuzzers that check them on
 * their own: URL templates, Retry-After in both forms, backoff bounds, Link header parsing and the token-bucket rate
 * limiter. source.h is the source's public face; nothing but http.c and its tests uses these. */
#ifndef SL_SOURCE_HTTP_H
#define SL_SOURCE_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

/* Expands {page} {offset} {limit} {cursor} ({cursor} URL-encoded; "{{" and "}}" are literal braces) into out;
 * SL_ECONFIG names any other placeholder. */
int sl_source_http_expand(const char *tmpl, int64_t page, int64_t offset, int64_t limit, const char *cursor,
			  struct sl_buf *out, struct sl_err *err);
/* A Retry-After value (delay-seconds or an HTTP-date) as the wait in ms from now_epoch_s (0 for a date in the past),
 * or -1 when the value is neither. */
int64_t sl_source_http_retry_after_ms(const char *v, size_t len, int64_t now_epoch_s);
/* Capped exponential backoff with full jitter drawn from rnd. */
int64_t sl_source_http_backoff_ms(int attempt, int64_t base_ms, int64_t cap_ms, uint64_t rnd);
/* The URI of the first link-value with rel "next" (RFC 8288) into out: 0, SL_ENOTFOUND or SL_ETOOBIG. */
int sl_source_http_link_next(const char *h, size_t len, char *out, size_t outsz);

struct sl_source_http_bucket;
struct sl_source_http_bucket *sl_source_http_bucket_new(double per_second, double burst, int64_t now_ms);
/* 0 when a request may start now (a token is taken), else the ms until one will be there; rate 0: no limit. */
int64_t sl_source_http_bucket_take(struct sl_source_http_bucket *b, int64_t now_ms);
void sl_source_http_bucket_free(struct sl_source_http_bucket *b);

#endif
