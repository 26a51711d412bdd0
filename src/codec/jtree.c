/* An owned JSON tree (codec/jtree.h). Avro schemas are kept and compared long after the text was parsed, and a
 * compatibility check walks two documents at once; simdjson's handles live only until the next parse on their
 * parser, so the schema model and the registry copy each document into this small tree once. Numbers are re-rendered
 * from their value (1.50 becomes 1.5), as Jackson does in Confluent's canonical strings. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "codec/jtree.h"
#include "codec/json.h"

struct sl_rj *sl_jtree_new(enum sl_jtree_type t)
{
	struct sl_rj *j = calloc(1, sizeof *j);
	if (j)
		j->t = t;
	return j;
}

static char *dupn(const char *s, size_t n)
{
	char *d = malloc(n + 1);
	if (d) {
		memcpy(d, s, n);
		d[n] = 0;
	}
	return d;
}

static struct sl_rj *copy(struct sl_json_val v, struct sl_buf *tmp)
{
	struct sl_rj *j = NULL;
	struct sl_json_iter it;
	struct sl_json_val e;
	switch (sl_json_type(v)) {
	case SL_JSON_NULL:
		return sl_jtree_new(SL_RJ_NULL);
	case SL_JSON_BOOL:
		if ((j = sl_jtree_new(SL_RJ_BOOL)))
			sl_json_bool(v, &j->b);
		return j;
	case SL_JSON_INT:
	case SL_JSON_UINT:
	case SL_JSON_DOUBLE:
		if (!(j = sl_jtree_new(SL_RJ_NUM)))
			return NULL;
		sl_json_double(v, &j->d);
		j->is_int = sl_json_type(v) != SL_JSON_DOUBLE;
		sl_buf_reset(tmp);
		sl_json_render(v, tmp);
		if (!sl_buf_ok(tmp) || !(j->s = dupn(tmp->data, tmp->len)))
			goto fail;
		j->n = tmp->len;
		return j;
	case SL_JSON_STRING: {
		const char *s;
		size_t n;
		if (!(j = sl_jtree_new(SL_RJ_STR)))
			return NULL;
		sl_json_str(v, &s, &n);
		if (!(j->s = dupn(s, n)))
			goto fail;
		j->n = n;
		return j;
	}
	case SL_JSON_ARRAY:
	case SL_JSON_OBJECT: {
		bool obj = sl_json_type(v) == SL_JSON_OBJECT;
		size_t n = sl_json_len(v), i = 0;
		if (!(j = sl_jtree_new(obj ? SL_RJ_OBJ : SL_RJ_ARR)))
			return NULL;
		if (n && !(j->v = calloc(n, sizeof *j->v)))
			goto fail;
		if (obj && n && !(j->keys = calloc(n, sizeof *j->keys)))
			goto fail;
		sl_json_iter_init(&it, v);
		for (;;) {
			const char *k;
			size_t kn;
			if (obj ? !sl_json_object_next(&it, &k, &kn, &e) : !sl_json_array_next(&it, &e))
				break;
			if (i >= n)
				break;
			if (obj && !(j->keys[i] = dupn(k, kn)))
				goto fail;
			j->n = i + 1;
			if (!(j->v[i] = copy(e, tmp)))
				goto fail;
			i++;
		}
		return j;
	}
	default:
		return NULL;
	}
fail:
	sl_jtree_free(j);
	return NULL;
}

int sl_jtree_parse(const char *text, size_t len, struct sl_rj **out, struct sl_err *err)
{
	struct sl_json_parser *p;
	struct sl_json_val root;
	struct sl_buf tmp;
	int rc;
	*out = NULL;
	if ((rc = sl_json_parser_new(&p, 0, 256, err)))
		return rc;
	if ((rc = sl_json_parse(p, text, len, &root, err)) == 0) {
		sl_buf_init(&tmp);
		*out = copy(root, &tmp);
		sl_buf_free(&tmp);
		if (!*out)
			rc = sl_err_set(err, SL_ENOMEM, "out of memory copying a JSON document of %zu bytes", len);
	}
	sl_json_parser_free(p);
	return rc;
}

void sl_jtree_free(struct sl_rj *j)
{
	if (!j)
		return;
	for (size_t i = 0; i < j->n && (j->t == SL_RJ_ARR || j->t == SL_RJ_OBJ); i++) {
		if (j->keys)
			free(j->keys[i]);
		sl_jtree_free(j->v[i]);
	}
	free(j->keys);
	free(j->v);
	free(j->s);
	free(j);
}

struct sl_rj *sl_jtree_get(const struct sl_rj *obj, const char *key)
{
	if (!obj || obj->t != SL_RJ_OBJ)
		return NULL;
	for (size_t i = 0; i < obj->n; i++)
		if (!strcmp(obj->keys[i], key))
			return obj->v[i];
	return NULL;
}

const char *sl_jtree_getstr(const struct sl_rj *obj, const char *key)
{
	struct sl_rj *v = sl_jtree_get(obj, key);
	return v && v->t == SL_RJ_STR ? v->s : NULL;
}

bool sl_jtree_int(const struct sl_rj *j, int *out)
{
	if (!j || j->t != SL_RJ_NUM || !(j->d >= INT_MIN && j->d <= INT_MAX) || j->d != (double)(int)j->d)
		return false;
	*out = (int)j->d;
	return true;
}

bool sl_jtree_equal(const struct sl_rj *a, const struct sl_rj *b)
{
	if (!a || !b)
		return a == b;
	if (a->t != b->t)
		return false;
	switch (a->t) {
	case SL_RJ_NULL:
		return true;
	case SL_RJ_BOOL:
		return a->b == b->b;
	case SL_RJ_NUM:
		return a->d == b->d;
	case SL_RJ_STR:
		return a->n == b->n && !memcmp(a->s, b->s, a->n);
	case SL_RJ_ARR:
		if (a->n != b->n)
			return false;
		for (size_t i = 0; i < a->n; i++)
			if (!sl_jtree_equal(a->v[i], b->v[i]))
				return false;
		return true;
	case SL_RJ_OBJ:
		/* Objects compare as sets of members: key order carries no meaning in JSON. */
		if (a->n != b->n)
			return false;
		for (size_t i = 0; i < a->n; i++)
			if (!sl_jtree_equal(a->v[i], sl_jtree_get(b, a->keys[i])))
				return false;
		return true;
	}
	return false;
}

void sl_jtree_render(const struct sl_rj *j, struct sl_buf *out)
{
	switch (j->t) {
	case SL_RJ_NULL:
		sl_buf_puts(out, "null");
		break;
	case SL_RJ_BOOL:
		sl_buf_puts(out, j->b ? "true" : "false");
		break;
	case SL_RJ_NUM:
		sl_buf_append(out, j->s, j->n);
		break;
	case SL_RJ_STR:
		sl_buf_json_str(out, j->s, j->n);
		break;
	case SL_RJ_ARR:
		sl_buf_putc(out, '[');
		for (size_t i = 0; i < j->n; i++) {
			if (i)
				sl_buf_putc(out, ',');
			sl_jtree_render(j->v[i], out);
		}
		sl_buf_putc(out, ']');
		break;
	case SL_RJ_OBJ:
		sl_buf_putc(out, '{');
		for (size_t i = 0; i < j->n; i++) {
			if (i)
				sl_buf_putc(out, ',');
			sl_buf_json_str(out, j->keys[i], strlen(j->keys[i]));
			sl_buf_putc(out, ':');
			sl_jtree_render(j->v[i], out);
		}
		sl_buf_putc(out, '}');
		break;
	}
}
