/* The request parser of src/http: where a head ends, the request line and headers (cut in place), chunked bodies
 * decoded as they arrive, and the request target split into a path decoded exactly once and the raw query. Pure
 * functions over bytes: the server, the unit tests and tests/fuzz/fuzz_httpd.c call them alike. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/http.h"

ssize_t sl_http_head_end(const char *buf, size_t len, size_t from)
{
	/* A head ends at the first "\n\r\n" or "\n\n" (bare LF tolerated, as most servers do). */
	size_t i = from > 2 ? from - 2 : 0;
	for (; i < len; i++) {
		unsigned char ch = (unsigned char)buf[i];
		if (ch == 0)
			return -1;
		if (ch != '\n')
			continue;
		if (i + 1 < len && buf[i + 1] == '\n')
			return (ssize_t)(i + 2);
		if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
			return (ssize_t)(i + 3);
	}
	return 0;
}

static bool is_tchar(int ch)
{
	return isalnum(ch) || (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* Cuts the next line out of [*p, end): returns its start (NUL-terminated, CR dropped) or NULL at the end. */
static char *next_line(char **p, char *end)
{
	if (*p >= end)
		return NULL;
	char *s = *p, *nl = memchr(s, '\n', (size_t)(end - s));
	if (!nl)
		return NULL;
	*p = nl + 1;
	if (nl > s && nl[-1] == '\r')
		nl[-1] = 0;
	*nl = 0;
	return s;
}

static bool has_token(const char *v, const char *tok)
{
	size_t n = strlen(tok);
	for (const char *p = v; p && *p;) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		const char *e = p;
		while (*e && *e != ',')
			e++;
		const char *t = e;
		while (t > p && (t[-1] == ' ' || t[-1] == '\t'))
			t--;
		if ((size_t)(t - p) == n && !strncasecmp(p, tok, n))
			return true;
		p = e;
	}
	return false;
}

int sl_http_parse_head(char *buf, size_t len, size_t max_target, struct sl_http_head *h)
{
	memset(h, 0, sizeof *h);
	h->content_length = -1;
	char *p = buf, *end = buf + len;
	char *line = next_line(&p, end);
	while (line && !*line) /* RFC 9112 2.2: ignore empty lines before the request line */
		line = next_line(&p, end);
	if (!line)
		return 400;
	for (char *c = line; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			return 400;
	char *sp1 = strchr(line, ' ');
	if (!sp1 || sp1 == line)
		return 400;
	*sp1 = 0;
	for (char *c = line; *c; c++)
		if (!is_tchar((unsigned char)*c))
			return 400;
	char *target = sp1 + 1, *sp2 = strrchr(target, ' ');
	if (!sp2 || sp2 == target)
		return 400;
	*sp2 = 0;
	if ((size_t)(sp2 - target) > max_target)
		return 414;
	if (strchr(target, ' '))
		return 400;
	const char *ver = sp2 + 1;
	if (strncmp(ver, "HTTP/", 5))
		return 400;
	if (strcmp(ver, "HTTP/1.1") && strcmp(ver, "HTTP/1.0"))
		return 505;
	h->method = line;
	h->target = target;
	h->minor = ver[7] - '0';
	h->keep_alive = h->minor == 1;
	bool te = false;
	while ((line = next_line(&p, end)) && *line) {
		if (*line == ' ' || *line == '\t')
			return 400; /* obsolete line folding: refused (RFC 9112 5.2) */
		char *colon = strchr(line, ':');
		if (!colon || colon == line)
			return 400;
		for (char *c = line; c < colon; c++)
			if (!is_tchar((unsigned char)*c))
				return 400; /* also "Name :" (whitespace before the colon) */
		*colon = 0;
		char *v = colon + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		char *ve = v + strlen(v);
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			*--ve = 0;
		for (char *c = v; *c; c++)
			if (((unsigned char)*c < 0x20 && *c != '\t') || *c == 0x7f)
				return 400;
		if (h->nh >= SL_HTTP_MAX_HEADERS)
			return 431;
		h->h[h->nh].name = line;
		h->h[h->nh++].value = v;
		if (!strcasecmp(line, "Content-Length")) {
			if (!*v)
				return 400;
			for (const char *c = v; *c; c++)
				if (!isdigit((unsigned char)*c))
					return 400;
			errno = 0;
			long long n = strtoll(v, NULL, 10);
			if (errno || (h->content_length >= 0 && h->content_length != n))
				return 400; /* two different lengths: request smuggling */
			h->content_length = n;
		} else if (!strcasecmp(line, "Transfer-Encoding")) {
			if (te || strcasecmp(v, "chunked"))
				return 501;
			te = h->chunked = true;
		} else if (!strcasecmp(line, "Connection")) {
			if (has_token(v, "close"))
				h->keep_alive = false;
			else if (has_token(v, "keep-alive"))
				h->keep_alive = true;
		} else if (!strcasecmp(line, "Expect")) {
			if (strcasecmp(v, "100-continue"))
				return 417;
			h->expect_continue = true;
		}
	}
	if (!line)
		return 400;
	if (h->chunked && h->content_length >= 0)
		return 400; /* both: smuggling again (RFC 9112 6.3 lets a server refuse) */
	if (h->minor == 1 && sl_http_head_count(h, "Host") != 1)
		return 400;
	if (sl_http_head_count(h, "Host") > 1)
		return 400;
	return 0;
}

const char *sl_http_head_get(const struct sl_http_head *h, const char *name)
{
	for (size_t i = 0; i < h->nh; i++)
		if (!strcasecmp(h->h[i].name, name))
			return h->h[i].value;
	return NULL;
}

size_t sl_http_head_count(const struct sl_http_head *h, const char *name)
{
	size_t n = 0;
	for (size_t i = 0; i < h->nh; i++)
		n += !strcasecmp(h->h[i].name, name);
	return n;
}

static int hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

enum { CH_SIZE, CH_EXT, CH_SIZE_LF, CH_DATA, CH_DATA_CR, CH_DATA_LF, CH_TRAILER, CH_TRAILER_LF, CH_DONE };

#define CH_LINE_MAX 4096

ssize_t sl_http_chunked_feed(struct sl_http_chunked *c, const char *in, size_t n, struct sl_buf *out, bool *done)
{
	size_t i = 0;
	*done = c->state == CH_DONE;
	while (i < n && c->state != CH_DONE) {
		unsigned char ch = (unsigned char)in[i];
		switch (c->state) {
		case CH_SIZE: {
			int v = hexval(ch);
			if (v >= 0) {
				if (c->left >> 60 || ++c->linelen > 16)
					return -1;
				c->left = c->left * 16 + (uint64_t)v;
			} else if (c->linelen && (ch == ';' || ch == ' ' || ch == '\t')) {
				c->state = CH_EXT;
			} else if (c->linelen && ch == '\r') {
				c->state = CH_SIZE_LF;
			} else
				return -1;
			i++;
			break;
		}
		case CH_EXT: /* chunk extensions: skipped, bounded */
			if (ch == '\r')
				c->state = CH_SIZE_LF;
			else if (ch < 0x20 && ch != '\t')
				return -1;
			else if (++c->linelen > CH_LINE_MAX)
				return -1;
			i++;
			break;
		case CH_SIZE_LF:
			if (ch != '\n')
				return -1;
			i++;
			c->linelen = 0;
			c->state = c->left ? CH_DATA : CH_TRAILER;
			break;
		case CH_DATA: {
			size_t take = n - i;
			if ((uint64_t)take > c->left)
				take = (size_t)c->left;
			sl_buf_append(out, in + i, take);
			i += take;
			c->left -= take;
			if (!c->left)
				c->state = CH_DATA_CR;
			break;
		}
		case CH_DATA_CR:
			if (ch != '\r')
				return -1;
			i++;
			c->state = CH_DATA_LF;
			break;
		case CH_DATA_LF:
			if (ch != '\n')
				return -1;
			i++;
			c->state = CH_SIZE;
			c->linelen = 0;
			break;
		case CH_TRAILER: /* trailer fields (ignored) until an empty line */
			if (ch == '\r') {
				c->state = CH_TRAILER_LF;
			} else if ((ch < 0x20 && ch != '\t') || ++c->linelen > CH_LINE_MAX)
				return -1;
			i++;
			break;
		case CH_TRAILER_LF:
			if (ch != '\n')
				return -1;
			i++;
			if (c->linelen == 0)
				c->state = CH_DONE;
			else {
				c->linelen = 0;
				c->state = CH_TRAILER;
			}
			break;
		}
	}
	*done = c->state == CH_DONE;
	return (ssize_t)i;
}

int sl_http_split_target(const char *target, char *path, size_t pathsz, const char **query)
{
	if (!target || target[0] != '/' || pathsz < 2)
		return -1;
	size_t plen = strcspn(target, "?#");
	if (target[plen] == '#' || strchr(target + plen, '#'))
		return -1; /* a fragment never reaches a server */
	*query = target[plen] == '?' ? target + plen + 1 : target + plen;
	for (const char *q = *query; *q; q++)
		if ((unsigned char)*q <= 0x20 || *q == 0x7f)
			return -1;
	size_t o = 0;
	for (size_t i = 0; i < plen; i++) {
		int ch = (unsigned char)target[i];
		if (ch == '%') {
			int hi = hexval((unsigned char)target[i + 1]), lo = hi < 0 ? -1 : hexval((unsigned char)target[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			ch = hi * 16 + lo;
			i += 2;
		}
		if (ch < 0x20 || ch == 0x7f)
			return -1;
		if (o + 1 >= pathsz)
			return -1;
		path[o++] = (char)ch;
	}
	path[o] = 0;
	/* "." and ".." segments are refused, decoded or not: no handler has to think about them. */
	for (const char *s = path; s;) {
		const char *seg = s + 1, *e = strchr(seg, '/');
		size_t n = e ? (size_t)(e - seg) : strlen(seg);
		if ((n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
			return -1;
		s = e;
	}
	return 0;
}
