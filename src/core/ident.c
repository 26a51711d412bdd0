/* The identifier validator (ident.h): character sets and length bounds per kind. Pure, no allocation, so the HTTP
 * handlers, the config loader and the CLI call it on every input without a second thought. */
#include <stdbool.h>
#include <string.h>

#include "core/ident.h"

struct kind {
	const char *name;
	size_t max;
	const char *extra; /* allowed besides [A-Za-z0-9]; NULL: every printable byte (subjects) */
	bool path;         /* becomes (part of) a file name: no "." alone, no ".." anywhere */
};

static const struct kind kinds[] = {
	[SL_IDENT_DAG] = {"DAG id", 250, "._-", true},
	[SL_IDENT_TASK] = {"task id", 250, "._-", true},
	[SL_IDENT_RUN] = {"run id", 250, "._-:+~@", true},
	[SL_IDENT_PIPELINE] = {"pipeline name", 200, "._-", true},
	[SL_IDENT_TOPIC] = {"topic name", 249, "._-", false},
	[SL_IDENT_TABLE] = {"table name", 48, "_", true},
	[SL_IDENT_SUBJECT] = {"subject", 512, NULL, false},
};

const char *sl_ident_kind_name(enum sl_ident_kind kind)
{
	return (unsigned)kind < sizeof kinds / sizeof *kinds ? kinds[kind].name : "identifier";
}

/* The identifier as it may appear in a message: printable ASCII as is, every other byte as \xNN. */
static void shown(const char *s, size_t len, char *out, size_t outsz)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	for (size_t i = 0; i < len && o + 8 < outsz; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c < 0x7f && c != '\\') {
			out[o++] = (char)c;
		} else {
			out[o++] = '\\', out[o++] = 'x', out[o++] = hex[c >> 4], out[o++] = hex[c & 15];
		}
		if (i == 79 && len > 80) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
	}
	out[o] = 0;
}

int sl_ident_check(enum sl_ident_kind kind, const char *s, size_t len, struct sl_err *err)
{
	if ((unsigned)kind >= sizeof kinds / sizeof *kinds)
		return sl_err_set(err, SL_EINVAL, "unknown identifier kind %d", (int)kind);
	const struct kind *k = &kinds[kind];
	char show[400];
	if (!s || !len)
		return sl_err_set(err, SL_EINVAL, "the %s is empty", k->name);
	shown(s, len, show, sizeof show);
	if (len > k->max)
		return sl_err_set(err, SL_EINVAL, "%s '%s' is %zu bytes long; at most %zu", k->name, show, len, k->max);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		bool ok;
		if (!k->extra)
			ok = c >= 0x20 && c != 0x7f; /* UTF-8 sequences pass; the registry cleans malformed ones */
		else
			ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			     (c && strchr(k->extra, c));
		if (!ok) {
			if (c < 0x20 || c == 0x7f)
				return sl_err_set(err, SL_EINVAL, "%s '%s' holds the control byte \\x%02x at %zu", k->name,
						  show, c, i);
			return sl_err_set(err, SL_EINVAL, "%s '%s' holds '%c' at %zu; allowed: letters, digits and %s",
					  k->name, show, c >= 0x20 && c < 0x7f ? (char)c : '?', i, k->extra);
		}
	}
	bool dots = (len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.');
	if (dots || (k->path && memmem(s, len, "..", 2)))
		return sl_err_set(err, SL_EINVAL, "%s '%s' may not be '.' or hold '..'", k->name, show);
	return 0;
}
