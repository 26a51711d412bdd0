/* An owned JSON tree: a document copied out of the parser once, for code that keeps it or walks two at a time
 * (simdjson's handles live only until the next parse on their parser). Avro schemas are parsed on it (avro_schema.c),
 * and the registry keeps, compares and renders schemas and its `_schemas` records with it. */
#ifndef SL_CODEC_JTREE_H
#define SL_CODEC_JTREE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/err.h"

enum sl_jtree_type { SL_RJ_NULL, SL_RJ_BOOL, SL_RJ_NUM, SL_RJ_STR, SL_RJ_ARR, SL_RJ_OBJ };

struct sl_rj {
	enum sl_jtree_type t;
	bool b;
	double d;      /* SL_RJ_NUM: the value; text keeps the literal so rendering reproduces it */
	bool is_int;   /* SL_RJ_NUM written without '.', 'e' */
	char *s;       /* SL_RJ_STR: the string (NUL-terminated, may contain NULs: see n); SL_RJ_NUM: the literal */
	size_t n;      /* string length; SL_RJ_ARR/OBJ: element count */
	char **keys;   /* SL_RJ_OBJ, in document order */
	struct sl_rj **v;
};

/* Parses text into a tree. SL_EINVAL with "at byte N" for malformed JSON, SL_ETOOBIG for limits. */
int sl_jtree_parse(const char *text, size_t len, struct sl_rj **out, struct sl_err *err);
void sl_jtree_free(struct sl_rj *j);
struct sl_rj *sl_jtree_get(const struct sl_rj *obj, const char *key);
/* The string value of obj[key], or NULL when absent or not a string. */
const char *sl_jtree_getstr(const struct sl_rj *obj, const char *key);
/* j as an int: true only for an integral number within int's range (a JSON number may be anything: 1e300, 2.5). */
bool sl_jtree_int(const struct sl_rj *j, int *out);
bool sl_jtree_equal(const struct sl_rj *a, const struct sl_rj *b);
void sl_jtree_render(const struct sl_rj *j, struct sl_buf *out);
struct sl_rj *sl_jtree_new(enum sl_jtree_type t);

#endif
