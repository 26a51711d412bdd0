/* libFuzzer target for the request layer of src/http: the input is a byte stream as a client would send it. The head
 * is found and parsed (request line, headers), the target split and decoded once, the access policy run (credentials
 * with both roles, allowed hosts, Origin, content types), and what follows the head decoded as a chunked body fed in
 * pieces whose sizes come from the input itself. Nothing may crash, leak or read out of bounds, and the invariants
 * checked below must hold. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 1 << 16)
		return 0;
	char *buf = malloc(size + 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = 0;
	ssize_t e = sl_http_head_end(buf, size, size / 2); /* from the middle, then from the start: the same answer */
	ssize_t e0 = sl_http_head_end(buf, size, 0);
	if (e > 0 && e0 > 0 && e < e0)
		abort();
	struct sl_http_head h;
	if (e0 > 0 && sl_http_parse_head(buf, (size_t)e0, 4096, &h) == 0) {
		if (!h.method || !h.target || (h.chunked && h.content_length >= 0))
			abort();
		size_t tl = strlen(h.target);
		char *path = malloc(tl + 2);
		const char *query;
		if (path && sl_http_split_target(h.target, path, tl + 2, &query) == 0) {
			/* Decoded once: never a ".." segment, a NUL or a control byte in what handlers see. */
			if (strstr(path, "/../") || (strlen(path) >= 3 && !strcmp(path + strlen(path) - 3, "/..")))
				abort();
			for (const char *p = path; *p; p++)
				if ((unsigned char)*p < 0x20)
					abort();
			struct sl_http_auth a = {.token = "rw", .read_token = "ro", .user = "u", .password = "p"};
			const char *hosts[] = {"sluice.example"}, *open[] = {"/health", NULL};
			struct sl_http_policy pol = {.auth = &a, .hosts = hosts, .nhosts = 1, .open_paths = open};
			struct sl_http_verdict v;
			sl_http_policy_check(&pol, &h, path, &v);
			if (!v.status && sl_http_is_write(h.method) && v.role != SL_HTTP_ROLE_WRITE)
				abort();
			pol.auth = NULL;
			sl_http_policy_check(&pol, &h, path, &v);
		}
		free(path);
		/* The rest as a chunked body, fed in pieces of 1..16 bytes chosen by the input's own bytes. */
		struct sl_http_chunked c = {0};
		struct sl_buf out;
		sl_buf_init(&out);
		size_t i = (size_t)e0;
		bool done = false;
		while (i < size && !done) {
			size_t step = 1 + (unsigned char)data[i] % 16;
			if (step > size - i)
				step = size - i;
			ssize_t k = sl_http_chunked_feed(&c, (const char *)data + i, step, &out, &done);
			if (k < 0)
				break;
			if ((size_t)k > step || (!done && (size_t)k != step))
				abort();
			i += (size_t)k;
		}
		if (out.len > size)
			abort();
		sl_buf_free(&out);
	}
	free(buf);
	return 0;
}
