/* The REST API of the registry, independent of the HTTP server: a request (method, raw target, body) becomes a
 * status and a JSON body with Confluent's status codes, error_code values and messages (notes/schema-registry.md,
 * the OpenAPI file in ../shared/specs). Keeping it apart from the HTTP server lets the unit tests and the fuzzer drive
 * every route in-process. Paths are split before percent-decoding so subjects may hold any character, '/' too. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/ident.h"
#include "core/metrics.h"
#include "registry/internal.h"

#define MAX_SEGS 8
#define MAX_QUERY 16

struct req {
	const char *method;
	char *segs[MAX_SEGS];
	size_t nsegs;
	char *qk[MAX_QUERY], *qv[MAX_QUERY];
	size_t nq;
	const char *body;
	size_t len;
	int *status;
	struct sl_buf *out;
	struct sl_registry *r;
	/* How a malformed body is answered. Confluent's rest-utils says 400, but the OpenAPI file documents only 422
	 * (with the operation's own error_code) for these operations, and 404 for a lookup; sluice follows the file. */
	int bad_status, bad_code;
	char *own[MAX_SEGS + 2 * MAX_QUERY]; /* decoded, UTF-8-cleaned copies, freed after the request */
	size_t nown;
	bool nul[MAX_SEGS]; /* the raw segment held %00: decoding cut it there, so it is not the name that was sent */
	char *alias[2];     /* subjects an alias resolved to (path segment, ?subject=), freed after the request */
};

/* Decodes s (see pct_decode) into a clean UTF-8 copy owned by the request; falls back to s on OOM. */
static void pct_decode(char *s, bool plus);
static char *utf8_clean(const char *s);
static char *decoded(struct req *q, char *s, bool plus)
{
	char *c;
	pct_decode(s, plus);
	if (q->nown == sizeof q->own / sizeof *q->own || !(c = utf8_clean(s)))
		return s;
	return q->own[q->nown++] = c;
}

static char *utf8_clean(const char *s);

/* Messages are cut at fixed sizes, possibly inside a UTF-8 sequence: clean them before they become JSON. */
static void put_error(struct req *q, int status, int code, const char *msg)
{
	char *clean = utf8_clean(msg);
	const char *m = clean ? clean : "(out of memory)";
	sl_buf_reset(q->out);
	sl_buf_printf(q->out, "{\"error_code\":%d,\"message\":", code);
	sl_buf_json_str(q->out, m, strlen(m));
	sl_buf_putc(q->out, '}');
	*q->status = status;
	free(clean);
}

static void reply_err(struct req *q, int status, int code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void reply_err(struct req *q, int status, int code, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	put_error(q, status, code, msg);
}

static void reply_errbuf(struct req *q, int status, int code, struct sl_buf *msg)
{
	put_error(q, status, code, sl_buf_cstr(msg));
}

static void http_err(struct req *q, int status)
{
	const char *text = status == 404 ? "Not Found" : status == 405 ? "Method Not Allowed"
			   : status == 415 ? "Unsupported Media Type" : status == 413 ? "Payload Too Large"
			   : "Bad Request";
	reply_err(q, status, status, "HTTP %d %s", status, text);
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Replaces each byte that is not part of well-formed UTF-8 with U+FFFD, as Java's decoder does, so a subject
 * decoded from %XX escapes can be echoed in JSON. Returns a malloc'd string (or NULL). */
static char *utf8_clean(const char *s)
{
	size_t n = strlen(s);
	char *out = malloc(n * 3 + 1), *w = out;
	const unsigned char *p = (const unsigned char *)s;
	if (!out)
		return NULL;
	while (*p) {
		size_t len = *p < 0x80 ? 1 : (*p & 0xE0) == 0xC0 ? 2 : (*p & 0xF0) == 0xE0 ? 3 : (*p & 0xF8) == 0xF0 ? 4 : 0;
		bool ok = len > 0;
		for (size_t i = 1; ok && i < len; i++)
			ok = (p[i] & 0xC0) == 0x80;
		if (ok && len == 2)
			ok = *p >= 0xC2;
		if (ok && len == 3) {
			unsigned cp = ((p[0] & 0x0Fu) << 12) | ((p[1] & 0x3Fu) << 6) | (p[2] & 0x3Fu);
			ok = cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF);
		}
		if (ok && len == 4) {
			unsigned cp = ((p[0] & 0x07u) << 18) | ((p[1] & 0x3Fu) << 12) | ((p[2] & 0x3Fu) << 6) | (p[3] & 0x3Fu);
			ok = cp >= 0x10000 && cp <= 0x10FFFF;
		}
		if (ok) {
			memcpy(w, p, len);
			w += len;
			p += len;
		} else {
			memcpy(w, "\xEF\xBF\xBD", 3);
			w += 3;
			p++;
		}
	}
	*w = 0;
	return out;
}

/* Decodes %XX in place (and '+' as space in queries). Invalid escapes stay literal. */
static void pct_decode(char *s, bool plus)
{
	char *w = s;
	for (char *p = s; *p; p++) {
		int h, l;
		if (*p == '%' && (h = hexval(p[1])) >= 0 && (l = hexval(p[2])) >= 0) {
			*w++ = (char)(h * 16 + l);
			p += 2;
		} else if (plus && *p == '+')
			*w++ = ' ';
		else
			*w++ = *p;
	}
	*w = 0;
}

static const char *qget(struct req *q, const char *k)
{
	for (size_t i = 0; i < q->nq; i++)
		if (!strcmp(q->qk[i], k))
			return q->qv[i];
	return NULL;
}

/* Jersey reads a boolean parameter as true only for "true" (any case). */
static bool qbool(struct req *q, const char *k)
{
	const char *v = qget(q, k);
	return v && !strcasecmp(v, "true");
}

static bool parse_int(const char *s, long long lo, long long hi, long long *out);

/* Confluent's offset and limit on list endpoints: skip `offset` items, then at most `limit` (a limit of 0 or -1, or a
 * malformed one, is no limit; a malformed offset is 0). */
struct page {
	long long offset, limit, seen, emitted;
};

static struct page paging(struct req *q)
{
	struct page p = {0, -1, 0, 0};
	if (qget(q, "offset") && !parse_int(qget(q, "offset"), 0, INT_MAX, &p.offset))
		p.offset = 0;
	if (qget(q, "limit") && !parse_int(qget(q, "limit"), -1, INT_MAX, &p.limit))
		p.limit = -1;
	return p;
}

/* Whether the next item is on the page; counts it. */
static bool on_page(struct page *p)
{
	if (p->seen++ < p->offset)
		return false;
	if (p->limit > 0 && p->emitted >= p->limit)
		return false;
	p->emitted++;
	return true;
}

static bool parse_int(const char *s, long long lo, long long hi, long long *out)
{
	char *end;
	long long v;
	if (!s || !*s || isspace((unsigned char)*s))
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

/* Confluent's version ids: 1..2^31-1, "latest" or -1 (both -1 here). */
static bool parse_version(const char *s, int *v)
{
	long long x;
	if (!strcmp(s, "latest")) {
		*v = -1;
		return true;
	}
	if (!parse_int(s, -1, INT_MAX, &x) || x == 0)
		return false;
	*v = (int)x;
	return true;
}

static void bad_version(struct req *q, const char *s)
{
	reply_err(q, 422, 42202,
		  "The specified version '%s' is not a valid version id. Allowed values are between [1, 2^31-1] and "
		  "the string \"latest\"",
		  s);
}

static void json_str(struct sl_buf *b, const char *s)
{
	sl_buf_json_str(b, s, strlen(s));
}

static void put_schema_obj(struct sl_buf *b, const struct sl_reg_version *v, const struct sl_reg_schema *s)
{
	sl_buf_puts(b, "{\"subject\":");
	json_str(b, v->subject);
	/* schemaType even for AVRO, as Confluent's Schema entity (7.x on) answers it */
	sl_buf_printf(b, ",\"version\":%d,\"id\":%d,\"schemaType\":\"%s\"", v->version, v->id, s->type);
	if (s->refs)
		sl_buf_printf(b, ",\"references\":%s", s->refs);
	if (s->metadata)
		sl_buf_printf(b, ",\"metadata\":%s", s->metadata);
	if (s->ruleset)
		sl_buf_printf(b, ",\"ruleSet\":%s", s->ruleset);
	sl_buf_puts(b, ",\"schema\":");
	json_str(b, s->text);
	sl_buf_putc(b, '}');
}

/* ?format=serialized on a PROTOBUF schema: the text becomes base64 of its FileDescriptorProto, as Confluent's
 * clients (their ProtobufDeserializer) ask for it. Returns a malloc'd copy, or NULL to answer the stored text. */
static char *serialized_text(struct req *q, const struct sl_reg_schema *s)
{
	struct sl_reg_parsed *p;
	struct sl_err err;
	char *out = NULL;
	const char *f = qget(q, "format");
	if (!f || strcmp(f, "serialized") || strcmp(s->type, "PROTOBUF"))
		return NULL;
	if (sl_reg_parse_stored(q->r, s, &p, &err))
		return NULL;
	out = strdup(p->pb->serialized);
	sl_reg_parsed_free(p);
	return out;
}

static void ok(struct req *q)
{
	*q->status = 200;
}

/* Parses the body as a JSON object. On failure replies (see bad_status) and returns NULL. */
static struct sl_rj *body_object(struct req *q, bool empty_ok)
{
	struct sl_rj *j = NULL;
	struct sl_err err;
	if (!q->len) {
		if (empty_ok)
			return sl_jtree_new(SL_RJ_OBJ);
		reply_err(q, q->bad_status, q->bad_code, "Empty request: the request has no body");
		return NULL;
	}
	if (sl_jtree_parse(q->body, q->len, &j, &err)) {
		reply_err(q, q->bad_status, q->bad_code, "Unexpected character in the request body: %s", err.msg);
		return NULL;
	}
	if (j->t != SL_RJ_OBJ) {
		sl_jtree_free(j);
		reply_err(q, q->bad_status, q->bad_code, "Cannot deserialize the request body: expected a JSON object");
		return NULL;
	}
	return j;
}

/* The register/lookup request: schema (string; numbers and booleans are coerced as Jackson does), schemaType,
 * references. Replies and returns false when malformed. */
static bool schema_request(struct req *q, struct sl_rj *j, const char **text, size_t *len, const char **type,
			   const struct sl_rj **refs, char *coerced, size_t csz)
{
	struct sl_rj *s = sl_jtree_get(j, "schema"), *t = sl_jtree_get(j, "schemaType");
	*refs = sl_jtree_get(j, "references");
	*type = "AVRO";
	if (t && t->t == SL_RJ_STR)
		*type = t->s;
	else if (t && t->t != SL_RJ_NULL) {
		reply_err(q, q->bad_status, q->bad_code, "Cannot deserialize value of type `java.lang.String` for schemaType");
		return false;
	}
	if (!s || s->t == SL_RJ_NULL) {
		reply_err(q, q->bad_status, q->bad_code, "Empty schema: the request has no \"schema\"");
		return false;
	}
	if (s->t == SL_RJ_STR) {
		*text = s->s;
		*len = s->n;
	} else if (s->t == SL_RJ_NUM || s->t == SL_RJ_BOOL) {
		snprintf(coerced, csz, "%s", s->t == SL_RJ_NUM ? s->s : s->b ? "true" : "false");
		*text = coerced;
		*len = strlen(coerced);
	} else {
		reply_err(q, q->bad_status, q->bad_code, "Cannot deserialize value of type `java.lang.String` from %s value for schema",
			  s->t == SL_RJ_OBJ ? "Object" : "Array");
		return false;
	}
	if (*refs && (*refs)->t != SL_RJ_ARR && (*refs)->t != SL_RJ_NULL) {
		reply_err(q, q->bad_status, q->bad_code, "Cannot deserialize references: expected an array");
		return false;
	}
	if (*refs && (*refs)->t == SL_RJ_ARR)
		for (size_t i = 0; i < (*refs)->n; i++) {
			const struct sl_rj *ref = (*refs)->v[i];
			const struct sl_rj *ver = sl_jtree_get(ref, "version");
			if (ref->t != SL_RJ_OBJ || !sl_jtree_getstr(ref, "name") || !sl_jtree_getstr(ref, "subject") || !ver ||
			    ver->t != SL_RJ_NUM || !ver->is_int) {
				reply_err(q, q->bad_status, q->bad_code,
					  "Invalid schema: reference %zu needs a string name, a string subject and an "
					  "integer version",
					  i);
				return false;
			}
		}
	return true;
}

/* ---- /schemas ---- */

static int cmp_ver(const void *a, const void *b)
{
	const struct sl_reg_version *x = *(const struct sl_reg_version *const *)a;
	const struct sl_reg_version *y = *(const struct sl_reg_version *const *)b;
	int c = strcmp(x->subject, y->subject);
	return c ? c : (x->version > y->version) - (x->version < y->version);
}

/* All versions (filtered), sorted by subject then version. Caller frees. */
static size_t sorted_versions(struct sl_registry *r, bool deleted, const char *prefix, struct sl_reg_version ***out)
{
	struct sl_reg_version **v = malloc((r->nvers + 1) * sizeof *v);
	size_t n = 0, pl = prefix ? strlen(prefix) : 0;
	*out = v;
	if (!v)
		return 0;
	for (size_t i = 0; i < r->nvers; i++)
		if ((deleted || !r->vers[i].deleted) && (!pl || !strncmp(r->vers[i].subject, prefix, pl)))
			v[n++] = &r->vers[i];
	qsort(v, n, sizeof *v, cmp_ver);
	return n;
}

/* The version an id lookup answers through, as Confluent's getSchemaKeyUsingContexts: the id is looked up in the
 * context ?subject= names (none: the default context). A context alone (":.ctx:") or no subject takes any version of
 * the id in it; a subject of a named context must hold the id itself; an unqualified subject that does not is tried
 * in every context (":.ctx:subject"), then any version of the id in the default context answers. Soft-deleted
 * versions count (the id is still served). NULL when none. */
static struct sl_reg_version *version_for_id(struct sl_registry *r, int id, const char *subject)
{
	size_t cl;
	const char *cn = sl_reg_ctx_name(subject, &cl), *bare = subject;
	bool named = subject && !(cl == 1 && *cn == '.');
	struct sl_reg_version *any = NULL;
	if (subject && cn == subject + 1)
		bare = cn + cl + 1; /* the subject after its context */
	if (subject && !strncmp(subject, ":.:", 3))
		subject = bare; /* the default context named: the stored subjects are unqualified */
	for (size_t i = 0; i < r->nvers; i++) {
		struct sl_reg_version *v = &r->vers[i];
		if (v->id != id || !sl_reg_same_ctx(v->subject, subject))
			continue;
		if (!bare || !*bare || !strcmp(v->subject, subject))
			return v;
		if (!any)
			any = v;
	}
	if (named)
		return NULL;
	if (!bare || !*bare)
		return any;
	for (size_t i = 0; i < r->nvers; i++) {
		struct sl_reg_version *v = &r->vers[i];
		size_t vl;
		const char *vc = sl_reg_ctx_name(v->subject, &vl);
		if (v->id == id && vc == v->subject + 1 && !strcmp(vc + vl + 1, bare))
			return v;
	}
	return any;
}

static void get_schema_by_id(struct req *q, const char *idstr, const char *what)
{
	struct sl_registry *r = q->r;
	long long id;
	struct sl_reg_schema *s;
	struct sl_reg_version *at;
	const char *subject = qget(q, "subject");
	bool deleted = qbool(q, "deleted");
	if (!parse_int(idstr, INT_MIN, INT_MAX, &id)) {
		http_err(q, 404);
		return;
	}
	if (subject && !*subject)
		subject = NULL;
	at = version_for_id(r, (int)id, subject);
	s = at ? sl_reg_schema_by_id(r, at->subject, (int)id) : NULL;
	if (!s) {
		reply_err(q, 404, 40403, "Schema %lld not found", id);
		return;
	}
	ok(q);
	if (!what) {
		sl_buf_putc(q->out, '{');
		if (strcmp(s->type, "AVRO"))
			sl_buf_printf(q->out, "\"schemaType\":\"%s\",", s->type);
		char *ser = serialized_text(q, s);
		sl_buf_puts(q->out, "\"schema\":");
		json_str(q->out, ser ? ser : s->text);
		free(ser);
		if (s->refs)
			sl_buf_printf(q->out, ",\"references\":%s", s->refs);
		if (s->metadata)
			sl_buf_printf(q->out, ",\"metadata\":%s", s->metadata);
		if (s->ruleset)
			sl_buf_printf(q->out, ",\"ruleSet\":%s", s->ruleset);
		if (qbool(q, "fetchMaxId"))
			sl_buf_printf(q->out, ",\"maxId\":%d", sl_reg_max_id(r, at->subject));
		sl_buf_putc(q->out, '}');
	} else if (!strcmp(what, "schema")) {
		sl_buf_puts(q->out, s->text);
	} else {
		bool subjects = !strcmp(what, "subjects");
		struct sl_reg_version **v;
		size_t n = sorted_versions(r, deleted, NULL, &v), k = 0;
		const char *last = NULL;
		struct page pg = paging(q);
		sl_buf_putc(q->out, '[');
		for (size_t i = 0; i < n; i++) {
			/* the subject-versions of the id in the context the lookup found it in */
			if (v[i]->id != (int)id || !sl_reg_same_ctx(v[i]->subject, at->subject))
				continue;
			if (subjects && last && !strcmp(v[i]->subject, last))
				continue;
			last = v[i]->subject;
			if (!on_page(&pg))
				continue;
			if (k++)
				sl_buf_putc(q->out, ',');
			if (subjects)
				json_str(q->out, v[i]->subject);
			else {
				sl_buf_puts(q->out, "{\"subject\":");
				json_str(q->out, v[i]->subject);
				sl_buf_printf(q->out, ",\"version\":%d}", v[i]->version);
			}
		}
		free(v);
		sl_buf_putc(q->out, ']');
	}
}

static void get_schemas(struct req *q)
{
	struct sl_reg_version **v;
	const char *prefix = qget(q, "subjectPrefix");
	bool latest = qbool(q, "latestOnly");
	long long offset = 0, limit = -1;
	size_t n, emitted = 0, seen = 0;
	/* Out-of-range or malformed paging parameters page from the start, without limit (the file documents no
	 * error for them). */
	if (qget(q, "offset") && !parse_int(qget(q, "offset"), 0, INT_MAX, &offset))
		offset = 0;
	if (qget(q, "limit") && !parse_int(qget(q, "limit"), -1, INT_MAX, &limit))
		limit = -1;
	n = sorted_versions(q->r, qbool(q, "deleted"), prefix, &v);
	ok(q);
	sl_buf_putc(q->out, '[');
	for (size_t i = 0; i < n; i++) {
		struct sl_reg_schema *s = sl_reg_schema_by_id(q->r, v[i]->subject, v[i]->id);
		if (latest && i + 1 < n && !strcmp(v[i + 1]->subject, v[i]->subject))
			continue;
		if (!s || (long long)seen++ < offset)
			continue;
		if (limit > 0 && (long long)emitted >= limit)
			break;
		if (emitted++)
			sl_buf_putc(q->out, ',');
		put_schema_obj(q->out, v[i], s);
	}
	sl_buf_putc(q->out, ']');
	free(v);
}

/* ---- /subjects ---- */

static void get_subjects(struct req *q)
{
	struct sl_reg_version **v;
	bool deleted_only = qbool(q, "deletedOnly");
	size_t n = sorted_versions(q->r, qbool(q, "deleted") || deleted_only, qget(q, "subjectPrefix"), &v), k = 0;
	struct page pg = paging(q);
	ok(q);
	sl_buf_putc(q->out, '[');
	for (size_t i = 0; i < n; i++) {
		if (i && !strcmp(v[i - 1]->subject, v[i]->subject))
			continue;
		if (deleted_only) {
			/* deletedOnly: subjects whose every version is soft-deleted */
			bool live = false;
			for (size_t j = i; j < n && !strcmp(v[j]->subject, v[i]->subject); j++)
				live |= !v[j]->deleted;
			if (live)
				continue;
		}
		if (!on_page(&pg))
			continue;
		if (k++)
			sl_buf_putc(q->out, ',');
		json_str(q->out, v[i]->subject);
	}
	sl_buf_putc(q->out, ']');
	free(v);
}

static void get_versions(struct req *q, const char *subject)
{
	struct sl_reg_version **v;
	bool deleted_only = qbool(q, "deletedOnly");
	size_t n = sl_reg_subject_versions(q->r, subject, qbool(q, "deleted") || deleted_only, &v), k = 0;
	struct page pg = paging(q);
	if (!n) {
		reply_err(q, 404, 40401, "Subject '%s' not found.", subject);
		return;
	}
	ok(q);
	sl_buf_putc(q->out, '[');
	for (size_t i = 0; i < n; i++) {
		if (deleted_only && !v[i]->deleted)
			continue;
		if (!on_page(&pg))
			continue;
		sl_buf_printf(q->out, "%s%d", k++ ? "," : "", v[i]->version);
	}
	sl_buf_putc(q->out, ']');
	free(v);
}

/* Resolves subject/version for reads; replies with 40401/40402 and returns NULL when absent. */
static struct sl_reg_version *resolve(struct req *q, const char *subject, int version, bool deleted)
{
	struct sl_reg_version **v, *found = NULL;
	size_t n = sl_reg_subject_versions(q->r, subject, deleted, &v);
	if (!n) {
		reply_err(q, 404, 40401, "Subject '%s' not found.", subject);
		return NULL;
	}
	if (version == -1)
		found = v[n - 1];
	else
		for (size_t i = 0; i < n; i++)
			if (v[i]->version == version)
				found = v[i];
	free(v);
	if (!found)
		reply_err(q, 404, 40402, "Version %d not found.", version);
	return found;
}

static void get_version(struct req *q, const char *subject, const char *vstr, const char *what)
{
	int version;
	struct sl_reg_version *v;
	struct sl_reg_schema *s;
	if (!parse_version(vstr, &version)) {
		bad_version(q, vstr);
		return;
	}
	if (!(v = resolve(q, subject, version, qbool(q, "deleted"))))
		return;
	s = sl_reg_schema_by_id(q->r, v->subject, v->id);
	if (!s) {
		reply_err(q, 404, 40403, "Schema %d not found", v->id);
		return;
	}
	ok(q);
	if (!what) {
		char *ser = serialized_text(q, s);
		struct sl_reg_schema copy = *s;
		if (ser)
			copy.text = ser;
		put_schema_obj(q->out, v, &copy);
		free(ser);
	}
	else if (!strcmp(what, "schema"))
		sl_buf_puts(q->out, s->text);
	else {
		/* referencedby: ids of schemas whose references name this subject and version */
		size_t k = 0;
		sl_buf_putc(q->out, '[');
		for (size_t i = 0; i < q->r->nschemas; i++) {
			struct sl_reg_schema *o = &q->r->schemas[i];
			struct sl_rj *refs;
			struct sl_err err;
			bool hit = false;
			if (!o->refs || !sl_reg_schema_in_use(q->r, o, false) || sl_jtree_parse(o->refs, strlen(o->refs), &refs, &err))
				continue;
			for (size_t j = 0; j < refs->n && !hit; j++) {
				const char *rs = sl_jtree_getstr(refs->v[j], "subject");
				struct sl_rj *rv = sl_jtree_get(refs->v[j], "version");
				int rvn;
				hit = rs && sl_jtree_int(rv, &rvn) && !strcmp(rs, subject) && rvn == v->version;
			}
			sl_jtree_free(refs);
			if (hit)
				sl_buf_printf(q->out, "%s%d", k++ ? "," : "", o->id);
		}
		sl_buf_putc(q->out, ']');
	}
}

static bool readonly(struct req *q, const char *subject)
{
	const char *mode = sl_reg_mode(q->r, subject);
	if (!strcmp(mode, "READONLY") || !strcmp(mode, "READONLY_OVERRIDE")) {
		reply_err(q, 422, 42205, "Subject %s is in read-only mode", subject ? subject : "");
		return true;
	}
	return false;
}

static void store_failed(struct req *q, struct sl_err *err)
{
	reply_err(q, 500, 50001, "Error in the backend data store: %s", err->msg);
}

/* Whether a live schema references subject (any version when version is 0). */
static bool referenced(struct sl_registry *r, const char *subject, int version)
{
	for (size_t i = 0; i < r->nschemas; i++) {
		struct sl_reg_schema *o = &r->schemas[i];
		struct sl_rj *refs;
		struct sl_err err;
		bool hit = false;
		if (!o->refs || !sl_reg_schema_in_use(r, o, false) || sl_jtree_parse(o->refs, strlen(o->refs), &refs, &err))
			continue;
		for (size_t j = 0; j < refs->n && !hit; j++) {
			const char *rs = sl_jtree_getstr(refs->v[j], "subject");
			struct sl_rj *rv = sl_jtree_get(refs->v[j], "version");
			int rvn;
			hit = rs && sl_jtree_int(rv, &rvn) && !strcmp(rs, subject) && (!version || rvn == version);
		}
		sl_jtree_free(refs);
		if (hit)
			return true;
	}
	return false;
}

static void delete_version(struct req *q, const char *subject, const char *vstr)
{
	bool permanent = qbool(q, "permanent");
	struct sl_reg_version **vs, *v = NULL;
	struct sl_err err;
	int version;
	size_t n;
	if (!parse_version(vstr, &version)) {
		bad_version(q, vstr);
		return;
	}
	if (readonly(q, subject))
		return;
	n = sl_reg_subject_versions(q->r, subject, true, &vs);
	if (!n) {
		reply_err(q, 404, 40401, "Subject '%s' not found.", subject);
		return;
	}
	for (size_t i = n; i-- > 0 && !v;)
		if (version == -1 ? (permanent || !vs[i]->deleted) : vs[i]->version == version)
			v = vs[i];
	free(vs);
	if (!v) {
		if (version == -1)
			reply_err(q, 404, 40401, "Subject '%s' not found.", subject);
		else
			reply_err(q, 404, 40402, "Version %d not found.", version);
		return;
	}
	version = v->version;
	if (!permanent && v->deleted) {
		reply_err(q, 404, 40406, "Subject '%s' Version %d was soft deleted.Set permanent=true to delete permanently",
			  subject, version);
		return;
	}
	if (permanent && !v->deleted) {
		reply_err(q, 404, 40407, "Subject '%s' Version %d was not deleted first before being permanently deleted",
			  subject, version);
		return;
	}
	if (!permanent && referenced(q->r, subject, version)) {
		reply_err(q, 422, 42206,
			  "One or more references exist to the schema {magic=1,keytype=SCHEMA,subject=%s,version=%d}.",
			  subject, version);
		return;
	}
	if (permanent ? sl_reg_write_tombstone(q->r, subject, version, &err)
		      : sl_reg_write_schema(q->r, subject, version, v->id, true, &err)) {
		store_failed(q, &err);
		return;
	}
	ok(q);
	sl_buf_printf(q->out, "%d", version);
}

static void delete_subject(struct req *q, const char *subject)
{
	bool permanent = qbool(q, "permanent");
	struct sl_reg_version **vs;
	struct sl_err err;
	size_t n, live = 0, k = 0;
	int *nums;
	if (readonly(q, subject))
		return;
	n = sl_reg_subject_versions(q->r, subject, true, &vs);
	if (!n) {
		reply_err(q, 404, 40401, "Subject '%s' not found.", subject);
		return;
	}
	for (size_t i = 0; i < n; i++)
		live += !vs[i]->deleted;
	if (!permanent && !live) {
		free(vs);
		reply_err(q, 404, 40404, "Subject '%s' was soft deleted.Set permanent=true to delete permanently", subject);
		return;
	}
	if (permanent && live) {
		free(vs);
		reply_err(q, 404, 40405, "Subject '%s' was not deleted first before being permanently deleted", subject);
		return;
	}
	if (!permanent && referenced(q->r, subject, 0)) {
		free(vs);
		reply_err(q, 422, 42206, "One or more references exist to the schema {magic=1,keytype=SCHEMA,subject=%s}.",
			  subject);
		return;
	}
	/* Copy the numbers first: writes fold into the state and may move the version array. */
	if (!(nums = malloc(n * sizeof *nums))) {
		free(vs);
		reply_err(q, 500, 50001, "out of memory");
		return;
	}
	int *ids = malloc(n * sizeof *ids);
	for (size_t i = 0; i < n; i++) {
		nums[i] = vs[i]->version;
		if (ids)
			ids[i] = vs[i]->id;
	}
	bool *was_deleted = malloc(n * sizeof *was_deleted);
	for (size_t i = 0; i < n && was_deleted; i++)
		was_deleted[i] = vs[i]->deleted;
	free(vs);
	if (!ids || !was_deleted) {
		free(nums);
		free(ids);
		free(was_deleted);
		reply_err(q, 500, 50001, "out of memory");
		return;
	}
	sl_buf_reset(q->out);
	sl_buf_putc(q->out, '[');
	for (size_t i = 0; i < n; i++) {
		int rc;
		if (!permanent && was_deleted[i])
			continue;
		rc = permanent ? sl_reg_write_tombstone(q->r, subject, nums[i], &err)
			       : sl_reg_write_schema(q->r, subject, nums[i], ids[i], true, &err);
		if (rc) {
			free(nums);
			free(ids);
			free(was_deleted);
			store_failed(q, &err);
			return;
		}
		sl_buf_printf(q->out, "%s%d", k++ ? "," : "", nums[i]);
	}
	sl_buf_putc(q->out, ']');
	if (permanent) {
		/* A permanently deleted subject leaves no settings behind, as in Confluent. */
		if (sl_reg_kv_get(q->r->compat, q->r->ncompat, subject))
			sl_reg_write_setting(q->r, "CONFIG", subject, NULL, &err);
		if (sl_reg_kv_get(q->r->mode, q->r->nmode, subject))
			sl_reg_write_setting(q->r, "MODE", subject, NULL, &err);
	}
	free(nums);
	free(ids);
	free(was_deleted);
	ok(q);
}

static void register_schema(struct req *q, const char *subject)
{
	struct sl_rj *j = body_object(q, false);
	const char *text, *type;
	const struct sl_rj *refs;
	char coerced[64];
	size_t len;
	int id = -1, version = -1, code = 0, status;
	struct sl_buf msg;
	if (!j)
		return;
	if (!schema_request(q, j, &text, &len, &type, &refs, coerced, sizeof coerced)) {
		sl_jtree_free(j);
		return;
	}
	struct sl_rj *wid = sl_jtree_get(j, "id"), *wver = sl_jtree_get(j, "version");
	int want_id = wid && wid->t == SL_RJ_NUM && wid->is_int && wid->d > 0 && wid->d <= INT_MAX ? (int)wid->d : -1;
	int want_ver = wver && wver->t == SL_RJ_NUM && wver->is_int && wver->d > 0 && wver->d <= INT_MAX ? (int)wver->d : -1;
	/* the contract as Confluent's entities type it; null is absent */
	struct sl_rj *contract[2] = {NULL, NULL};
	for (int k = 0; k < 2; k++) {
		const struct sl_rj *c = sl_jtree_get(j, k ? "ruleSet" : "metadata");
		char why[256], *norm;
		struct sl_err perr;
		if (!c || c->t == SL_RJ_NULL)
			continue;
		if (!(norm = sl_reg_contract_norm(k == 1, c, why, sizeof why))) {
			reply_err(q, 422, 42201, "Invalid schema: %s", why);
			sl_jtree_free(contract[0]);
			sl_jtree_free(j);
			return;
		}
		if (sl_jtree_parse(norm, strlen(norm), &contract[k], &perr))
			contract[k] = NULL;
		free(norm);
	}
	/* normalize: asked for, or the config in force says so (Confluent's Config.normalize) */
	struct sl_rj *hold = NULL;
	const struct sl_rj *cn = sl_reg_config_key(q->r, subject, "normalize", &hold);
	bool normalize = qbool(q, "normalize") || (cn && cn->t == SL_RJ_BOOL && cn->b);
	sl_jtree_free(hold);
	sl_buf_init(&msg);
	status = sl_reg_register(q->r, subject, type, text, len, refs, contract[0], contract[1], want_id, want_ver,
				 normalize, &id, &version, &code, &msg);
	sl_jtree_free(contract[0]);
	sl_jtree_free(contract[1]);
	if (status != 200)
		reply_errbuf(q, status, code, &msg);
	else {
		/* Confluent's RegisterSchemaResponse as newer servers fill it: the id first (all older clients read), then
		 * the version, type, references, contract and canonical text of what was registered */
		const struct sl_reg_schema *rs = sl_reg_schema_by_id(q->r, subject, id);
		ok(q);
		sl_buf_printf(q->out, "{\"id\":%d", id);
		if (rs) {
			if (version > 0)
				sl_buf_printf(q->out, ",\"version\":%d", version);
			sl_buf_printf(q->out, ",\"schemaType\":\"%s\"", rs->type);
			if (rs->refs)
				sl_buf_printf(q->out, ",\"references\":%s", rs->refs);
			if (rs->metadata)
				sl_buf_printf(q->out, ",\"metadata\":%s", rs->metadata);
			if (rs->ruleset)
				sl_buf_printf(q->out, ",\"ruleSet\":%s", rs->ruleset);
			sl_buf_puts(q->out, ",\"schema\":");
			json_str(q->out, rs->text);
		}
		sl_buf_putc(q->out, '}');
	}
	sl_buf_free(&msg);
	sl_jtree_free(j);
}

static void lookup_schema(struct req *q, const char *subject)
{
	struct sl_rj *j;
	q->bad_status = 404; /* the OpenAPI file documents only 404 for a lookup */
	q->bad_code = 40403;
	j = body_object(q, false);
	const char *text, *type;
	const struct sl_rj *refs;
	char coerced[64];
	size_t len, n;
	struct sl_reg_parsed *p;
	struct sl_reg_version **vs;
	struct sl_err err;
	bool deleted = qbool(q, "deleted");
	if (!j)
		return;
	if (!schema_request(q, j, &text, &len, &type, &refs, coerced, sizeof coerced)) {
		sl_jtree_free(j);
		return;
	}
	n = sl_reg_subject_versions(q->r, subject, deleted, &vs);
	if (!n) {
		reply_err(q, 404, 40401, "Subject '%s' not found.", subject);
		sl_jtree_free(j);
		return;
	}
	if (sl_reg_parse(q->r, type, text, len, refs, &p, &err)) {
		reply_err(q, q->bad_status, q->bad_code, "Schema not found: the schema is invalid (type %s): %s", type,
			  err.msg);
		free(vs);
		sl_jtree_free(j);
		return;
	}
	reply_err(q, 404, 40403, "Schema not found");
	for (size_t i = n; i-- > 0;) {
		struct sl_reg_schema *s = sl_reg_schema_by_id(q->r, vs[i]->subject, vs[i]->id);
		if (s && !strcmp(s->type, p->type) && !strcmp(s->text, p->canon) &&
		    ((!s->refs && !p->refs) || (s->refs && p->refs && !strcmp(s->refs, p->refs)))) {
			sl_buf_reset(q->out);
			ok(q);
			put_schema_obj(q->out, vs[i], s);
			break;
		}
	}
	sl_reg_parsed_free(p);
	free(vs);
	sl_jtree_free(j);
}

static void compatibility(struct req *q, const char *subject, const char *vstr)
{
	struct sl_rj *j = body_object(q, false);
	const char *text, *type;
	const struct sl_rj *refs;
	char coerced[64];
	size_t len, n;
	struct sl_reg_parsed *p = NULL;
	struct sl_reg_version **vs = NULL, *one = NULL;
	struct sl_err err;
	struct sl_buf msgs;
	bool verbose = qbool(q, "verbose");
	int version = 0, rc;
	if (!j)
		return;
	sl_buf_init(&msgs);
	if (!schema_request(q, j, &text, &len, &type, &refs, coerced, sizeof coerced))
		goto out;
	if (vstr && !parse_version(vstr, &version)) {
		bad_version(q, vstr);
		goto out;
	}
	n = sl_reg_subject_versions(q->r, subject, false, &vs);
	if (vstr) {
		/* Confluent looks the version up without checking the subject: a numbered version of a missing subject
		 * is 40402, and "latest" of one checks against nothing (compatible). */
		if (!n && version == -1)
			goto check;
		if (!n) {
			reply_err(q, 404, 40402, "Version %d not found.", version);
			goto out;
		}
		for (size_t i = 0; i < n; i++)
			if (version == -1 ? i == n - 1 : vs[i]->version == version)
				one = vs[i];
		if (!one) {
			reply_err(q, 404, 40402, "Version %d not found.", version);
			goto out;
		}
	}
check:
	if (sl_reg_parse(q->r, type, text, len, refs, &p, &err)) {
		reply_err(q, 422, 42201, "Invalid schema of type %s, details: %s", type, err.msg);
		goto out;
	}
	const char *level = sl_reg_level(q->r, subject);
	{
		/* compatibilityGroup: only versions in the new schema's group (its contract merged as registration
		 * would merge it) are compared */
		char *md = NULL, *rs = NULL;
		struct sl_reg_schema *prev = n ? sl_reg_schema_by_id(q->r, vs[n - 1]->subject, vs[n - 1]->id) : NULL;
		sl_reg_merge_contract(q->r, subject, sl_jtree_get(j, "metadata"), sl_jtree_get(j, "ruleSet"), prev,
				      0, false, &md, &rs);
		if (one && !sl_reg_group_filter(q->r, subject, md, &one, 1))
			one = NULL, n = 0;
		else if (!one)
			n = sl_reg_group_filter(q->r, subject, md, vs, n);
		free(md);
		free(rs);
	}
	if (one) {
		/* Against one chosen version, the level's direction applies without its transitivity. */
		char lv[32];
		snprintf(lv, sizeof lv, "%s", level);
		char *t = strstr(lv, "_TRANSITIVE");
		if (t)
			*t = 0;
		rc = sl_reg_check(q->r, lv, p, &one, 1, &msgs, &err);
	} else
		rc = sl_reg_check(q->r, level, p, vs, n, &msgs, &err);
	if (rc < 0) {
		store_failed(q, &err);
		goto out;
	}
	ok(q);
	sl_buf_printf(q->out, "{\"is_compatible\":%s", rc ? "false" : "true");
	if (verbose) {
		size_t k = 0;
		sl_buf_puts(q->out, ",\"messages\":[");
		for (size_t off = 0; off < msgs.len; off += strlen(msgs.data + off) + 1) {
			if (k++)
				sl_buf_putc(q->out, ',');
			json_str(q->out, msgs.data + off);
		}
		sl_buf_putc(q->out, ']');
	}
	sl_buf_putc(q->out, '}');
out:
	sl_buf_free(&msgs);
	sl_reg_parsed_free(p);
	free(vs);
	sl_jtree_free(j);
}

/* ---- /config and /mode ---- */

static void upcase(char *s)
{
	for (; *s; s++)
		*s = (char)toupper((unsigned char)*s);
}

/* The contract keys (defaultMetadata...) of extras (a JSON object text, may be NULL) appended as members. */
static void put_extras(struct sl_buf *b, const char *extras)
{
	if (extras && strlen(extras) > 2) {
		sl_buf_putc(b, ',');
		sl_buf_append(b, extras + 1, strlen(extras) - 2);
	}
}

/* The subject's (or global) contract keys after a PUT: the stored ones, each replaced by the request's when given
 * (a JSON null clears one). Returns malloc'd JSON object text, or NULL when none remains. */
static char *merged_extras(const char *stored, const struct sl_rj *req)
{
	struct sl_rj *old = NULL;
	struct sl_err err;
	struct sl_buf b;
	size_t n = 0;
	char *out = NULL;
	if (stored && sl_jtree_parse(stored, strlen(stored), &old, &err))
		old = NULL;
	sl_buf_init(&b);
	sl_buf_putc(&b, '{');
	for (size_t i = 0; sl_reg_contract_keys[i]; i++) {
		const struct sl_rj *v = req ? sl_jtree_get(req, sl_reg_contract_keys[i]) : NULL;
		if (!v)
			v = old ? sl_jtree_get(old, sl_reg_contract_keys[i]) : NULL;
		if (!sl_reg_config_key_ok(sl_reg_contract_keys[i], v))
			continue;
		sl_buf_printf(&b, "%s\"%s\":", n++ ? "," : "", sl_reg_contract_keys[i]);
		sl_jtree_render(v, &b);
	}
	sl_buf_putc(&b, '}');
	if (n && sl_buf_ok(&b))
		out = strdup(sl_buf_cstr(&b));
	sl_buf_free(&b);
	sl_jtree_free(old);
	return out;
}

/* The contract keys of the first config in subject's scope (sl_reg_scope) that has any. */
static const char *scoped_extras(struct sl_registry *r, const char *subject)
{
	const char *keys[3], *v;
	char ctx[256];
	size_t n = sl_reg_scope(subject, keys, ctx, sizeof ctx);
	for (size_t i = 1; i < n; i++)
		if ((v = sl_reg_kv_get(r->cfgx, r->ncfgx, keys[i])))
			return v;
	return NULL;
}

static void config(struct req *q, const char *subject)
{
	struct sl_registry *r = q->r;
	struct sl_err err;
	const char *cur = sl_reg_kv_get(r->compat, r->ncompat, subject);
	const char *curx = sl_reg_kv_get(r->cfgx, r->ncfgx, subject);
	if (!strcmp(q->method, "GET")) {
		if (subject && !cur && !curx && !qbool(q, "defaultToGlobal")) {
			reply_err(q, 404, 40408, "Subject '%s' does not have subject-level compatibility configured", subject);
			return;
		}
		ok(q);
		sl_buf_puts(q->out, "{\"compatibilityLevel\":");
		/* defaultToGlobal: the setting in force, through the subject's context (sl_reg_scope) */
		json_str(q->out, cur ? cur : sl_reg_level(r, subject));
		put_extras(q->out, subject && !curx && qbool(q, "defaultToGlobal") ? scoped_extras(r, subject) : curx);
		sl_buf_putc(q->out, '}');
	} else if (!strcmp(q->method, "PUT")) {
		struct sl_rj *j;
		const struct sl_rj *c;
		bool contract = false;
		q->bad_code = 42203;
		j = body_object(q, true);
		char level[64];
		if (!j)
			return;
		c = sl_jtree_get(j, "compatibility");
		if (!c || c->t == SL_RJ_NULL)
			c = sl_jtree_get(j, "compatibilityLevel");
		/* The contract keys as Confluent's entities type them, rendered canonically into a fresh object that
		 * replaces the request's members (null clears a key, as absent keeps it). */
		struct sl_buf nb;
		sl_buf_init(&nb);
		sl_buf_putc(&nb, '{');
		for (size_t i = 0, n = 0; sl_reg_contract_keys[i]; i++) {
			const char *k = sl_reg_contract_keys[i];
			const struct sl_rj *v = sl_jtree_get(j, k);
			char why[256] = "", *norm = NULL;
			if (!v)
				continue;
			contract = true;
			sl_buf_printf(&nb, "%s\"%s\":", n++ ? "," : "", k);
			if (v->t == SL_RJ_NULL)
				sl_buf_puts(&nb, "null");
			else if ((sl_reg_config_key_kind(k) == 1 && v->t == SL_RJ_STR) ||
				 (sl_reg_config_key_kind(k) == 2 && v->t == SL_RJ_BOOL))
				sl_jtree_render(v, &nb);
			else if (!sl_reg_config_key_kind(k) &&
				 (norm = sl_reg_contract_norm(strstr(k, "RuleSet") != NULL, v, why, sizeof why)))
				sl_buf_puts(&nb, norm);
			else {
				sl_buf_free(&nb);
				sl_jtree_free(j);
				reply_err(q, 422, 42203, "Invalid %s: %s", k,
					  why[0] ? why : sl_reg_config_key_kind(k) == 1 ? "a string is expected"
											 : "a boolean is expected");
				return;
			}
			free(norm);
		}
		sl_buf_putc(&nb, '}');
		struct sl_rj *nj = NULL;
		struct sl_err perr;
		/* the level members stay in j; the contract members are read from nj */
		if (contract && sl_jtree_parse(sl_buf_cstr(&nb), nb.len, &nj, &perr))
			nj = NULL;
		sl_buf_free(&nb);
		if ((!c || c->t == SL_RJ_NULL) && !contract) {
			/* Confluent: a body that sets nothing changes nothing and answers the level in force. */
			sl_jtree_free(j);
			sl_jtree_free(nj);
			ok(q);
			sl_buf_puts(q->out, "{\"compatibility\":");
			json_str(q->out, sl_reg_level(r, subject));
			sl_buf_putc(q->out, '}');
			return;
		}
		if (c && c->t != SL_RJ_NULL &&
		    (c->t != SL_RJ_STR || c->n >= sizeof level ||
		     (snprintf(level, sizeof level, "%s", c->s), upcase(level), !sl_reg_valid_level(level)))) {
			sl_jtree_free(j);
			sl_jtree_free(nj);
			reply_err(q, 422, 42203,
				  "Invalid compatibility level. Valid values are none, backward, forward, full, "
				  "backward_transitive, forward_transitive, and full_transitive");
			return;
		}
		bool has_level = c && c->t != SL_RJ_NULL;
		if (subject && readonly(q, subject)) {
			sl_jtree_free(j);
			sl_jtree_free(nj);
			return;
		}
		char *x = merged_extras(curx, nj);
		/* a PUT that sets only contract keys keeps the level already set here (none: the global one applies) */
		if (sl_reg_write_config(r, subject, has_level ? level : cur, x, &err)) {
			free(x);
			sl_jtree_free(j);
			sl_jtree_free(nj);
			store_failed(q, &err);
			return;
		}
		ok(q);
		sl_buf_putc(q->out, '{');
		if (has_level)
			sl_buf_printf(q->out, "\"compatibility\":\"%s\"", level);
		for (size_t i = 0, n = has_level; sl_reg_contract_keys[i]; i++) {
			const struct sl_rj *v = nj ? sl_jtree_get(nj, sl_reg_contract_keys[i]) : NULL;
			if (!sl_reg_config_key_ok(sl_reg_contract_keys[i], v))
				continue;
			sl_buf_printf(q->out, "%s\"%s\":", n++ ? "," : "", sl_reg_contract_keys[i]);
			sl_jtree_render(v, q->out);
		}
		sl_buf_putc(q->out, '}');
		free(x);
		sl_jtree_free(j);
		sl_jtree_free(nj);
	} else { /* DELETE */
		char old[64];
		if (subject && readonly(q, subject))
			return;
		if (subject && !cur && !curx) {
			reply_err(q, 404, 40401, "Subject '%s' not found.", subject);
			return;
		}
		snprintf(old, sizeof old, "%s", cur ? cur : "BACKWARD");
		/* the write replays into the maps, freeing curx: keep a copy for the answer */
		char *oldx = curx ? strdup(curx) : NULL;
		if ((cur || curx) && sl_reg_write_config(r, subject, NULL, NULL, &err)) {
			free(oldx);
			store_failed(q, &err);
			return;
		}
		ok(q);
		sl_buf_printf(q->out, "{\"compatibilityLevel\":\"%s\"", old);
		put_extras(q->out, oldx);
		sl_buf_putc(q->out, '}');
		free(oldx);
	}
}

static void mode(struct req *q, const char *subject)
{
	struct sl_registry *r = q->r;
	struct sl_err err;
	const char *cur = sl_reg_kv_get(r->mode, r->nmode, subject);
	if (!strcmp(q->method, "GET")) {
		if (subject && !cur && !qbool(q, "defaultToGlobal")) {
			reply_err(q, 404, 40409, "Subject '%s' does not have subject-level mode configured", subject);
			return;
		}
		ok(q);
		sl_buf_puts(q->out, "{\"mode\":");
		json_str(q->out, cur ? cur : sl_reg_mode(r, subject));
		sl_buf_putc(q->out, '}');
	} else if (!strcmp(q->method, "PUT")) {
		struct sl_rj *j;
		const struct sl_rj *m;
		q->bad_code = 42204;
		j = body_object(q, true);
		char val[64];
		bool valid = false;
		if (!j)
			return;
		m = sl_jtree_get(j, "mode");
		if (m && m->t == SL_RJ_STR && m->n < sizeof val) {
			snprintf(val, sizeof val, "%s", m->s);
			upcase(val);
			for (size_t i = 0; sl_reg_modes[i]; i++)
				valid |= !strcmp(val, sl_reg_modes[i]);
		}
		sl_jtree_free(j);
		if (!valid) {
			reply_err(q, 422, 42204,
				  "Invalid mode. Valid values are READWRITE, READONLY, READONLY_OVERRIDE, IMPORT");
			return;
		}
		if (!strcmp(val, "IMPORT") && !qbool(q, "force")) {
			struct sl_reg_version **vs;
			size_t cl, n;
			const char *cn = sl_reg_ctx_name(subject, &cl);
			if (subject && cn == subject + 1 && !cn[cl + 1]) {
				/* a context (":.ctx:"): Confluent refuses while any live subject of it exists */
				n = 0;
				for (size_t i = 0; i < r->nvers; i++)
					n += !r->vers[i].deleted && sl_reg_same_ctx(r->vers[i].subject, subject);
			} else {
				n = subject ? sl_reg_subject_versions(r, subject, true, &vs) : r->nvers;
				if (subject)
					free(vs);
			}
			if (n) {
				reply_err(q, 422, 42205, "Cannot import since found existing subjects");
				return;
			}
		}
		if (sl_reg_write_setting(r, "MODE", subject, val, &err)) {
			store_failed(q, &err);
			return;
		}
		ok(q);
		sl_buf_printf(q->out, "{\"mode\":\"%s\"}", val);
	} else { /* DELETE */
		char old[64];
		if (subject && !cur) {
			reply_err(q, 404, 40401, "Subject '%s' not found.", subject);
			return;
		}
		snprintf(old, sizeof old, "%s", cur ? cur : "READWRITE");
		if (cur && sl_reg_write_setting(r, "MODE", subject, NULL, &err)) {
			store_failed(q, &err);
			return;
		}
		ok(q);
		sl_buf_printf(q->out, "{\"mode\":\"%s\"}", old);
	}
}

/* ---- routing ---- */

/* Subjects are checked where they enter (core/ident.h): no NUL, no control characters, a length bound; '/' and ':'
 * (contexts) stay valid, as in Confluent's registry. Replies 422 with Confluent's 42208 when the segment is not a
 * valid subject. */
static bool subject_ok(struct req *q, size_t i)
{
	struct sl_err err = {0};
	if (q->nul[i])
		sl_err_set(&err, SL_EINVAL, "subject holds a NUL byte (%%00)");
	else if (!sl_ident_check(SL_IDENT_SUBJECT, q->segs[i], strlen(q->segs[i]), &err))
		return true;
	reply_err(q, 422, 42208, "The specified subject is not valid: %s", err.msg);
	return false;
}

/* The subject an alias names, as Confluent's AliasFilter resolves it: the config of subject (its own, not the
 * global one) holds "alias"; an unqualified alias lives in the subject's context. Returns a malloc'd subject, or
 * NULL when subject is no alias. */
static char *resolve_alias(struct sl_registry *r, const char *subject)
{
	const char *x = sl_reg_kv_get(r->cfgx, r->ncfgx, subject), *a, *end;
	struct sl_rj *j = NULL;
	struct sl_err err;
	char *out = NULL;
	if (!x || sl_jtree_parse(x, strlen(x), &j, &err))
		return NULL;
	if ((a = sl_jtree_getstr(j, "alias")) && *a) {
		if (*a != ':' && !strncmp(subject, ":.", 2) && (end = strchr(subject + 2, ':'))) {
			size_t cl = (size_t)(end - subject) + 1, al = strlen(a);
			if ((out = malloc(cl + al + 1))) {
				memcpy(out, subject, cl);
				memcpy(out + cl, a, al + 1);
			}
		} else
			out = strdup(a);
	}
	sl_jtree_free(j);
	return out;
}

/* Replaces the subject in path segment i by the one its alias names (see resolve_alias). */
static void unalias_seg(struct req *q, size_t i)
{
	char *a;
	if (i < q->nsegs && (a = resolve_alias(q->r, q->segs[i]))) {
		free(q->alias[0]);
		q->alias[0] = q->segs[i] = a;
	}
}

static bool is(struct req *q, size_t i, const char *s)
{
	return i < q->nsegs && !strcmp(q->segs[i], s);
}

static bool method(struct req *q, const char *m)
{
	return !strcmp(q->method, m);
}

/* Whether the method is one of the '|'-separated allowed ones; replies 405 when not. */
static bool allow(struct req *q, const char *methods)
{
	size_t ml = strlen(q->method);
	for (const char *p = methods; *p;) {
		const char *bar = strchr(p, '|');
		size_t n = bar ? (size_t)(bar - p) : strlen(p);
		if (n == ml && !strncmp(p, q->method, n))
			return true;
		p += n + (bar ? 1 : 0);
	}
	http_err(q, 405);
	return false;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* GET /contexts: the default context "." and every context named by a qualified subject (":.ctx:subject"), soft-
 * deleted ones included (Confluent keeps a context once created), sorted, filtered by ?contextPrefix=, paged by
 * offset/limit. Each context has its own ids (registry.c). */
static void get_contexts(struct req *q)
{
	struct sl_registry *r = q->r;
	char **names = calloc(r->nvers + 2, sizeof *names);
	const char *prefix = qget(q, "contextPrefix");
	struct page pg = paging(q);
	size_t n = 0, k = 0;
	if (!names) {
		reply_err(q, 500, 50001, "out of memory");
		return;
	}
	if ((names[n] = strdup(".")))
		n++;
	for (size_t i = 0; i < r->nvers; i++) {
		const char *sj = r->vers[i].subject, *end;
		if (strncmp(sj, ":.", 2) || !(end = strchr(sj + 2, ':')) || end == sj + 2)
			continue;
		if ((names[n] = strndup(sj + 1, (size_t)(end - sj - 1))))
			n++;
	}
	qsort(names, n, sizeof *names, cmp_str);
	ok(q);
	sl_buf_putc(q->out, '[');
	for (size_t i = 0; i < n; i++) {
		if ((i && !strcmp(names[i], names[i - 1])) ||
		    (prefix && *prefix && strncmp(names[i], prefix, strlen(prefix))) || !on_page(&pg))
			continue;
		if (k++)
			sl_buf_putc(q->out, ',');
		json_str(q->out, names[i]);
	}
	sl_buf_putc(q->out, ']');
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* DELETE /contexts/{c}: Confluent refuses a context that still has subjects, soft-deleted ones included (42211),
 * and otherwise forgets it (204). sluice's contexts are read off the subjects, so an empty one is already gone. */
static void delete_context(struct req *q, const char *ctx)
{
	struct sl_registry *r = q->r;
	char name[512];
	size_t cl;
	/* ".ctx" or its delimited form ":.ctx:" */
	snprintf(name, sizeof name, "%s", *ctx == ':' ? ctx + 1 : ctx);
	cl = strlen(name);
	if (cl && name[cl - 1] == ':')
		name[--cl] = 0;
	for (size_t i = 0; i < r->nvers; i++) {
		const char *sj = r->vers[i].subject;
		bool in = !strcmp(name, ".") ? strncmp(sj, ":.", 2) != 0
					     : sj[0] == ':' && !strncmp(sj + 1, name, cl) && sj[1 + cl] == ':';
		if (in) {
			reply_err(q, 422, 42211, "The specified context '%s' is not empty.", ctx);
			return;
		}
	}
	*q->status = 204;
}

static void route(struct req *q)
{
	size_t n = q->nsegs;
	char **s = q->segs;
	if (n == 0) {
		if (allow(q, "GET|POST")) {
			ok(q);
			sl_buf_puts(q->out, "{}");
		}
		return;
	}
	if (is(q, 0, "schemas")) {
		/* ?subject= names an alias too on /schemas/ids (Confluent's AliasFilter) */
		for (size_t i = 0; i < q->nq && is(q, 1, "ids"); i++)
			if (!strcmp(q->qk[i], "subject") && *q->qv[i] && (q->alias[1] = resolve_alias(q->r, q->qv[i]))) {
				q->qv[i] = q->alias[1];
				break;
			}
		if (n == 1) {
			if (allow(q, "GET"))
				get_schemas(q);
		} else if (n == 2 && is(q, 1, "types")) {
			if (allow(q, "GET")) {
				ok(q);
				sl_buf_puts(q->out, "[\"JSON\",\"PROTOBUF\",\"AVRO\"]");
			}
		} else if (is(q, 1, "ids") && (n == 3 || (n == 4 && (is(q, 3, "schema") || is(q, 3, "subjects") ||
								      is(q, 3, "versions"))))) {
			if (allow(q, "GET"))
				get_schema_by_id(q, s[2], n == 4 ? s[3] : NULL);
		} else
			http_err(q, 404);
		return;
	}
	if (is(q, 0, "subjects")) {
		if (n > 1 && !*s[1]) {
			http_err(q, 404);
			return;
		}
		if (n > 1 && !subject_ok(q, 1))
			return;
		unalias_seg(q, 1);
		if (n == 1) {
			if (allow(q, "GET"))
				get_subjects(q);
		} else if (n == 2) {
			if (allow(q, "POST|DELETE"))
				method(q, "POST") ? lookup_schema(q, s[1]) : delete_subject(q, s[1]);
		} else if (n == 3 && is(q, 2, "versions")) {
			if (allow(q, "GET|POST"))
				method(q, "GET") ? get_versions(q, s[1]) : register_schema(q, s[1]);
		} else if (n == 4 && is(q, 2, "versions")) {
			if (allow(q, "GET|DELETE"))
				method(q, "GET") ? get_version(q, s[1], s[3], NULL) : delete_version(q, s[1], s[3]);
		} else if (n == 5 && is(q, 2, "versions") && (is(q, 4, "schema") || is(q, 4, "referencedby"))) {
			if (allow(q, "GET"))
				get_version(q, s[1], s[3], s[4]);
		} else
			http_err(q, 404);
		return;
	}
	if (is(q, 0, "compatibility") && is(q, 1, "subjects") && n >= 4 && n <= 5 && is(q, 3, "versions") && *s[2]) {
		if (subject_ok(q, 2) && allow(q, "POST")) {
			unalias_seg(q, 2);
			compatibility(q, s[2], n == 5 ? s[4] : NULL);
		}
		return;
	}
	if (is(q, 0, "config") && n <= 2 && (n == 1 || *s[1])) {
		if ((n == 1 || subject_ok(q, 1)) && allow(q, "GET|PUT|DELETE"))
			config(q, n == 2 && strcmp(s[1], ":.:") ? s[1] : NULL); /* ":.:" = top level */
		return;
	}
	if (is(q, 0, "v1") && is(q, 1, "metadata") && n == 3 && (is(q, 2, "id") || is(q, 2, "version"))) {
		if (allow(q, "GET")) {
			ok(q);
			if (is(q, 2, "id"))
				sl_buf_puts(q->out, "{\"scope\":{\"path\":[],\"clusters\":{\"schema-registry-cluster\":"
						    "\"schema-registry\"}},\"id\":\"schema-registry\"}");
			else
				sl_buf_puts(q->out, "{\"version\":\"" SL_VERSION "\",\"commitId\":\"sluice\"}");
		}
		return;
	}
	if (is(q, 0, "contexts") && n == 1) {
		if (allow(q, "GET"))
			get_contexts(q);
		return;
	}
	if (is(q, 0, "contexts") && n == 2 && *s[1]) {
		if (allow(q, "DELETE"))
			delete_context(q, s[1]);
		return;
	}
	if (is(q, 0, "mode") && n <= 2 && (n == 1 || *s[1])) {
		if ((n == 1 || subject_ok(q, 1)) && allow(q, "GET|PUT|DELETE"))
			mode(q, n == 2 && strcmp(s[1], ":.:") ? s[1] : NULL); /* ":.:" = top level */
		return;
	}
	http_err(q, 404);
}

void sl_registry_handle(struct sl_registry *r, const char *method_, const char *target, const char *body, size_t len,
			int *status, struct sl_buf *out)
{
	struct req q = {0};
	struct sl_err err;
	char *copy = strdup(target ? target : "/"), *path, *query, *p;
	sl_buf_reset(out);
	*status = 500;
	if (!copy) {
		sl_buf_puts(out, "{\"error_code\":50001,\"message\":\"out of memory\"}");
		return;
	}
	q.method = method_;
	q.body = body;
	q.len = len;
	q.status = status;
	q.out = out;
	q.r = r;
	q.bad_status = 422;
	q.bad_code = 42201;
	path = copy;
	if ((query = strchr(copy, '?')))
		*query++ = 0;
	if ((p = strchr(path, '#')))
		*p = 0;
	if (*path == '/')
		path++;
	/* Split on '/' first, then decode: an encoded %2F stays inside its segment. */
	if (*path) {
		for (char *seg = path;;) {
			char *slash = strchr(seg, '/');
			if (slash)
				*slash = 0;
			if (q.nsegs == MAX_SEGS) {
				http_err(&q, 404);
				goto done;
			}
			q.segs[q.nsegs++] = seg;
			if (!slash)
				break;
			seg = slash + 1;
		}
		if (q.nsegs > 1 && !*q.segs[q.nsegs - 1])
			q.nsegs--; /* a trailing slash */
	}
	for (size_t i = 0; i < q.nsegs; i++) {
		q.nul[i] = strstr(q.segs[i], "%00") != NULL;
		q.segs[i] = decoded(&q, q.segs[i], false);
	}
	for (char *kv = query; kv && *kv && q.nq < MAX_QUERY - 1;) {
		char *amp = strchr(kv, '&'), *eq;
		if (amp)
			*amp = 0;
		if ((eq = strchr(kv, '=')))
			*eq = 0;
		q.qk[q.nq] = kv;
		q.qv[q.nq] = eq ? eq + 1 : kv + strlen(kv);
		q.qk[q.nq] = decoded(&q, q.qk[q.nq], true);
		q.qv[q.nq] = decoded(&q, q.qv[q.nq], true);
		q.nq++;
		kv = amp ? amp + 1 : NULL;
	}
	pthread_mutex_lock(&r->mu);
	if (r->store->sync && r->store->sync(r->store, r, &err))
		store_failed(&q, &err);
	else
		route(&q);
	pthread_mutex_unlock(&r->mu);
done:
	if (!sl_buf_ok(out)) {
		sl_buf_reset(out);
		out->oom = false;
		*status = 500;
		sl_buf_puts(out, "{\"error_code\":50001,\"message\":\"out of memory building the response\"}");
	}
	/* /metrics (the console's, in the same process): requests by method and status class. The method is one of a
	 * fixed few ("other" for the rest), so a client cannot make up label values. */
	static const char *const known[] = {"GET", "POST", "PUT", "DELETE", "HEAD"};
	const char *m = "other";
	for (size_t i = 0; i < sizeof known / sizeof *known; i++)
		if (method_ && !strcmp(method_, known[i]))
			m = known[i];
	char l[64];
	snprintf(l, sizeof l, "method=\"%s\",code=\"%dxx\"", m, *status / 100);
	sl_counter_add(sl_counter(sl_metrics_global(), "sluice_registry_requests_total", l,
				  "Schema registry API requests, by method and status class"), 1);
	for (size_t i = 0; i < q.nown; i++)
		free(q.own[i]);
	free(q.alias[0]);
	free(q.alias[1]);
	free(copy);
}
