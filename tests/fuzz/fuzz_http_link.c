/* Fuzzes the http source's header parsers: the Link header (rel=next) and Retry-After (seconds or HTTP-date). Both
 * read bytes straight off the network. Checks: no crash or overread, a found URI fits its buffer and is
 * NUL-terminated, a Retry-After is -1 or a non-negative wait. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "source/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* exact-size copies so ASan sees any read past the end */
	char *h = malloc(size ? size : 1);
	if (!h)
		return 0;
	memcpy(h, data, size);
	char out[64];
	int rc = sl_source_http_link_next(h, size, out, sizeof out);
	if (rc == 0 && (strlen(out) == 0 || strlen(out) >= sizeof out))
		abort();
	if (rc != 0 && rc != SL_ENOTFOUND && rc != SL_ETOOBIG)
		abort();
	int64_t ra = sl_source_http_retry_after_ms(h, size, 1700000000);
	if (ra < -1)
		abort();
	free(h);
	return 0;
}
