/* Line logger (see log.h). */
#include "core/log.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static _Atomic int g_level = SL_LOG_INFO;

void sl_log_set_level(enum sl_log_level lvl) { atomic_store(&g_level, (int)lvl); }
enum sl_log_level sl_log_get_level(void) { return (enum sl_log_level)atomic_load(&g_level); }

int sl_log_parse_level(const char *s)
{
	static const char *names[] = {"debug", "info", "warn", "error", "off"};
	for (int i = 0; i < 5; i++)
		if (strcasecmp(s, names[i]) == 0)
			return i;
	return -1;
}

void sl_log(enum sl_log_level lvl, const char *component, const char *fmt, ...)
{
	static const char *tags[] = {"DEBUG", "INFO", "WARN", "ERROR", "OFF"};
	if ((int)lvl < atomic_load(&g_level))
		return;
	char line[4096];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s ", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L,
			 tags[lvl], component ? component : "-");
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
	va_end(ap);
	size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
	if (len > sizeof line - 2)
		len = sizeof line - 2;
	line[len++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, len);
	(void)w;
}

static int secret_name(const char *name, size_t n)
{
	static const char *words[] = {"key", "token", "secret", "password", "passwd", "auth", "sig", "credential"};
	char low[64];
	if (n >= sizeof low)
		n = sizeof low - 1;
	for (size_t i = 0; i < n; i++)
		low[i] = (char)tolower((unsigned char)name[i]);
	low[n] = '\0';
	for (size_t i = 0; i < sizeof words / sizeof *words; i++)
		if (strstr(low, words[i]))
			return 1;
	return 0;
}

void sl_log_redact(const char *url, char *out, size_t outsz)
{
	size_t o = 0;
	if (!outsz)
		return;
#define PUT(c) do { if (o + 1 < outsz) out[o++] = (c); } while (0)
#define PUTS(s) do { for (const char *q_ = (s); *q_; q_++) PUT(*q_); } while (0)
	const char *p = url;
	const char *scheme = strstr(url, "://");
	if (scheme) {
		const char *host = scheme + 3;
		const char *slash = host + strcspn(host, "/?#");
		const char *at = memchr(host, '@', (size_t)(slash - host));
		for (; p < host; p++)
			PUT(*p);
		if (at) {
			const char *colon = memchr(host, ':', (size_t)(at - host));
			for (; p < (colon ? colon : at); p++)
				PUT(*p);
			if (colon)
				PUTS(":***");
			p = at;
		}
	}
	int in_query = 0;
	while (*p) {
		if (*p == '?' || (in_query && *p == '&')) {
			in_query = 1;
			PUT(*p);
			p++;
			const char *name = p;
			size_t nl = strcspn(name, "=&#");
			for (size_t i = 0; i < nl; i++, p++)
				PUT(*p);
			if (*p == '=') {
				PUT(*p);
				p++;
				size_t vl = strcspn(p, "&#");
				if (secret_name(name, nl)) {
					PUTS("***");
					p += vl;
				}
			}
			continue;
		}
		if (*p == '#')
			in_query = 0;
		PUT(*p);
		p++;
	}
	out[o] = '\0';
#undef PUT
#undef PUTS
}
