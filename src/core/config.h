/* Configuration: a YAML file read (libyaml) into a tree of nodes that remember file:line, then bound into C structs
 * through one option table per component (name, type, default, offset, doc), in the manner of nginx's ngx_command_t.
 * Unknown keys and wrong types are errors naming file:line and suggesting the nearest known key.
 * docs/configuration.md is generated from the same tables (`sluice config-doc`). */
#ifndef SL_CONFIG_H
#define SL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/err.h"

enum sl_cfg_kind { SL_CFG_SCALAR, SL_CFG_MAP, SL_CFG_SEQ, SL_CFG_NULL };

struct sl_cfg_node {
	enum sl_cfg_kind kind;
	const char *file;        /* shared, owned by the document */
	int line, col;           /* 1-based */
	char *value;             /* SL_CFG_SCALAR: the text; NULL otherwise */
	bool quoted;             /* scalar was written in quotes (so "123" is a string, not a number) */
	/* SL_CFG_MAP: keys[i] -> items[i]; SL_CFG_SEQ: items[i] */
	size_t n;
	char **keys;
	int *key_lines;
	struct sl_cfg_node **items;
};

struct sl_cfg_doc {
	char *file;
	struct sl_cfg_node *root;
};

/* Reads and parses a YAML file. Environment references ${NAME} and ${NAME:-default} in scalars are expanded. */
int sl_cfg_load_file(struct sl_cfg_doc *doc, const char *path, struct sl_err *err);
/* Parses YAML text; name is used in messages in place of a file name. */
int sl_cfg_load_string(struct sl_cfg_doc *doc, const char *name, const char *text, size_t len, struct sl_err *err);
void sl_cfg_free(struct sl_cfg_doc *doc);

/* Map lookup; NULL when absent or when node is not a map. */
struct sl_cfg_node *sl_cfg_get(const struct sl_cfg_node *map, const char *key);
/* "file:line" of a node, for messages. */
const char *sl_cfg_where(const struct sl_cfg_node *n, char *buf, size_t bufsz);

/* Scalar conversions; each fails with a message naming file:line and the key. */
int sl_cfg_as_bool(const struct sl_cfg_node *n, const char *key, bool *out, struct sl_err *err);
int sl_cfg_as_int(const struct sl_cfg_node *n, const char *key, int64_t *out, struct sl_err *err);
int sl_cfg_as_double(const struct sl_cfg_node *n, const char *key, double *out, struct sl_err *err);
/* Durations: "250ms", "5s", "2m", "1h", "1d", or a bare number of seconds. Stored in milliseconds. */
int sl_cfg_as_duration_ms(const struct sl_cfg_node *n, const char *key, int64_t *out, struct sl_err *err);
/* Sizes: "64KiB", "16MiB", "1GiB", "100kB", "1MB", or a bare number of bytes. */
int sl_cfg_as_size(const struct sl_cfg_node *n, const char *key, int64_t *out, struct sl_err *err);
int sl_parse_duration_ms(const char *s, int64_t *out);
int sl_parse_size(const char *s, int64_t *out);

/* ---- option tables ---- */

enum sl_opt_type {
	SL_OPT_STRING,   /* char * (malloc'd copy) */
	SL_OPT_INT,      /* int64_t */
	SL_OPT_DOUBLE,   /* double */
	SL_OPT_BOOL,     /* bool */
	SL_OPT_DURATION, /* int64_t milliseconds */
	SL_OPT_SIZE,     /* int64_t bytes */
	SL_OPT_ENUM,     /* char * restricted to the '|'-separated list in .choices */
	SL_OPT_STRLIST,  /* struct sl_strlist: a sequence of scalars, or one scalar */
	SL_OPT_STRMAP,   /* struct sl_strmap: a map of scalars (e.g. raw librdkafka properties) */
	SL_OPT_NODE,     /* const struct sl_cfg_node *: left for the component to interpret (mapping, DAGs) */
	SL_OPT_SECTION,  /* a nested struct bound by .sub (at .offset inside the parent) */
};

struct sl_strlist { size_t n; char **v; };
struct sl_strmap { size_t n; char **k; char **v; };

struct sl_opt {
	const char *name;
	enum sl_opt_type type;
	const char *def;          /* default as text, parsed like a config value; NULL = no default (zero) */
	size_t offset;            /* where the value goes in the bound struct */
	const char *doc;          /* one or two sentences for --help and docs/configuration.md */
	const char *choices;      /* SL_OPT_ENUM: "a|b|c" */
	const struct sl_opt *sub; /* SL_OPT_SECTION: the section's table, terminated by {NULL} */
	bool required;
	int64_t min, max;         /* SL_OPT_INT/SIZE/DURATION bounds when min < max */
};

/* Applies defaults, then binds map's keys into dst through table. An unknown key is an error with file:line and a
 * "did you mean" suggestion; a missing required key names the section. section names the map for messages
 * ("pipelines.users.source"). */
int sl_opt_bind(const struct sl_opt *table, const struct sl_cfg_node *map, const char *section, void *dst,
		struct sl_err *err);
/* Sets every option in table to its default (what sl_opt_bind does first). */
int sl_opt_defaults(const struct sl_opt *table, void *dst, struct sl_err *err);
/* Frees the strings, lists and maps that binding allocated. */
void sl_opt_free(const struct sl_opt *table, void *dst);
/* Writes a Markdown table of the options (recursing into sections) to fp. */
void sl_opt_doc_markdown(const struct sl_opt *table, const char *section, FILE *fp);

/* The closest of candidates to word by edit distance, or NULL when none is close enough to suggest. */
const char *sl_cfg_suggest(const char *word, const char *const *candidates, size_t n);

#endif
