/* Shared by the request-shaped fuzz targets: a NUL-terminated copy of the input split on '\n' into at most n fields
 * (the last one keeps any further newlines). Fields not present are NULL. Returns the copy (free it), or NULL. */
#ifndef SL_FUZZ_FIELDS_H
#define SL_FUZZ_FIELDS_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static inline char *sl_fuzz_fields(const uint8_t *data, size_t size, char **f, int n)
{
	char *buf = malloc(size + 1);
	if (!buf)
		return NULL;
	memcpy(buf, data, size);
	buf[size] = 0;
	char *p = buf;
	for (int i = 0; i < n; i++)
		f[i] = NULL;
	for (int i = 0; i < n && p; i++) {
		f[i] = p;
		char *nl = i < n - 1 ? memchr(p, '\n', (size_t)(buf + size - p)) : NULL;
		if (nl) {
			*nl = 0;
			p = nl + 1;
		} else
			p = NULL;
	}
	return buf;
}

#endif
