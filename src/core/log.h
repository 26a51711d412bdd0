/* Logging: one line per event on stderr, `TIME LEVEL component message key=value ...`. Thread-safe; a line is written
 * with one write(2) so concurrent lines never interleave. Never pass secrets: use sl_log_redact() for URLs. */
#ifndef SL_LOG_H
#define SL_LOG_H

#include <stddef.h>

enum sl_log_level { SL_LOG_DEBUG = 0, SL_LOG_INFO, SL_LOG_WARN, SL_LOG_ERROR, SL_LOG_OFF };

void sl_log_set_level(enum sl_log_level lvl);
enum sl_log_level sl_log_get_level(void);
/* Parses "debug|info|warn|error|off"; returns -1 on anything else. */
int sl_log_parse_level(const char *s);
void sl_log(enum sl_log_level lvl, const char *component, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define sl_debug(comp, ...) do { if (sl_log_get_level() <= SL_LOG_DEBUG) sl_log(SL_LOG_DEBUG, comp, __VA_ARGS__); } while (0)
#define sl_info(comp, ...) sl_log(SL_LOG_INFO, comp, __VA_ARGS__)
#define sl_warn(comp, ...) sl_log(SL_LOG_WARN, comp, __VA_ARGS__)
#define sl_error(comp, ...) sl_log(SL_LOG_ERROR, comp, __VA_ARGS__)

/* Copies url into out with any userinfo password and the values of query parameters whose name looks secret
 * (key, token, secret, password, auth, sig) replaced by "***". */
void sl_log_redact(const char *url, char *out, size_t outsz);

#endif
