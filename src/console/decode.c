/* The message browser's view of Confluent-framed values (byte 0, a big-endian schema id, then the payload): the
 * schema's type is asked of the registry once per id and kept, and the value shown as JSON — Avro through the Avro
 * cache (remote.c), Protobuf through its writer schema parsed once (codec/protobuf.h) and walked by
 * sl_pbwire_json, JSON Schema's payload as it is once it parsed as JSON. An id the registry does not know is
 * remembered for a few seconds so a page of such records asks once. Everything here runs under avro_lock. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/json.h"
#include "codec/pbwire.h"
#include "codec/protobuf.h"
#include "console/internal.h"

/* Ids kept; past it the table starts over (a browser sees a handful of ids). */
#define FRAMED_MAX 256
/* How long an id the registry could not give stays refused before it is asked again. */
#define FRAMED_BAD_MS 5000

struct framed_entry {
	int32_t id;
	char type[16];                /* AVRO, PROTOBUF, JSON; "" when bad */
	struct sl_pb_schema *pb;      /* PROTOBUF: the parsed writer schema */
	char error[256];              /* why the id cannot be used */
	int64_t bad_at;
};

struct framed {
	struct framed_entry e[FRAMED_MAX];
	size_t n;
};

static void entry_clear(struct framed_entry *e)
{
	sl_protobuf_free(e->pb);
	memset(e, 0, sizeof *e);
}

void sl_con_framed_close(struct sl_console *c)
{
	struct framed *f = c->framed;
	for (size_t i = 0; f && i < f->n; i++)
		entry_clear(&f->e[i]);
	free(f);
	c->framed = NULL;
}

/* The entry for id, fetched and (Protobuf) parsed on first use. NULL with err set when it cannot be had; a registry
 * that did not answer is not remembered (the next page asks again). */
static struct framed_entry *entry_for(struct sl_console *c, int32_t id, struct sl_err *err)
{
	struct framed *f = c->framed;
	if (!f && !(f = c->framed = calloc(1, sizeof *f))) {
		sl_err_set(err, SL_ENOMEM, "out of memory");
		return NULL;
	}
	int64_t now = sl_con_now_ms();
	struct framed_entry *e = NULL;
	for (size_t i = 0; i < f->n; i++)
		if (f->e[i].id == id) {
			e = &f->e[i];
			break;
		}
	if (e && e->type[0])
		return e;
	if (e && now - e->bad_at < FRAMED_BAD_MS) {
		sl_err_set(err, SL_ENOTFOUND, "%s", e->error);
		return NULL;
	}
	if (!e) {
		if (f->n == FRAMED_MAX) {
			for (size_t i = 0; i < f->n; i++)
				entry_clear(&f->e[i]);
			f->n = 0;
		}
		e = &f->e[f->n++];
	} else
		entry_clear(e);
	e->id = id;
	char *text = NULL, *type = NULL;
	struct sl_err ferr = {0};
	int rc = sl_con_schema_text(c, id, &text, &type, &ferr);
	if (rc && rc != SL_ENOTFOUND) {
		f->n--; /* not this id's fault: nothing remembered */
		if (e != &f->e[f->n]) {
			*e = f->e[f->n];
			memset(&f->e[f->n], 0, sizeof f->e[f->n]);
		}
		sl_err_set(err, rc, "schema id %" PRId32 ": %s", id, ferr.msg);
		return NULL;
	}
	if (rc)
		snprintf(e->error, sizeof e->error, "schema id %" PRId32 " is not in the registry", id);
	else if (!strcmp(type, "PROTOBUF")) {
		struct sl_err perr = {0};
		if (sl_protobuf_parse(text, strlen(text), NULL, 0, &e->pb, &perr))
			snprintf(e->error, sizeof e->error, "schema id %" PRId32 ": the Protobuf schema cannot be read: %s", id,
				 perr.msg);
	} else if (strcmp(type, "AVRO") && strcmp(type, "JSON"))
		snprintf(e->error, sizeof e->error, "schema id %" PRId32 " has schema type %.32s, which the browser does not "
			 "decode", id, type);
	if (!e->error[0])
		snprintf(e->type, sizeof e->type, "%s", type);
	free(text);
	free(type);
	if (e->error[0]) {
		e->bad_at = now;
		sl_err_set(err, SL_ENOTFOUND, "%s", e->error);
		return NULL;
	}
	return e;
}

int sl_con_framed_json(struct sl_console *c, const void *p, size_t n, int32_t *schema_id, const char **format,
		       struct sl_buf *out, struct sl_err *err)
{
	const unsigned char *b = p;
	*schema_id = -1;
	*format = NULL;
	if (!p || n < 5 || b[0] != 0)
		return sl_err_set(err, SL_EINVAL, "not a framed value");
	int32_t id = (int32_t)((uint32_t)b[1] << 24 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 8 | b[4]);
	pthread_mutex_lock(&c->avro_lock);
	struct framed_entry *e = entry_for(c, id, err);
	char type[16] = "";
	int rc = e ? 0 : err->code ? err->code : SL_ENOTFOUND;
	if (e)
		snprintf(type, sizeof type, "%s", e->type);
	size_t mark = out->len;
	if (e && !strcmp(type, "PROTOBUF")) {
		*format = "protobuf";
		rc = sl_pbwire_json(e->pb, p, n, out, err);
	} else if (e && !strcmp(type, "JSON")) {
		*format = "json";
		/* The payload is the JSON document itself; shown as it is once it parses. */
		struct sl_json_parser *jp = NULL;
		struct sl_json_val root;
		struct sl_err jerr = {0};
		if ((rc = sl_json_parser_new(&jp, 0, 64, err)) == 0) {
			if (sl_json_parse(jp, (const char *)b + 5, n - 5, &root, &jerr))
				rc = sl_err_set(err, SL_EINVAL, "schema id %" PRId32 " (JSON Schema): the value after the frame "
						"is not JSON: %s", id, jerr.msg);
			else
				sl_buf_append(out, b + 5, n - 5);
			sl_json_parser_free(jp);
		}
	}
	pthread_mutex_unlock(&c->avro_lock);
	if (e && !strcmp(type, "AVRO")) { /* the Avro cache takes the lock itself */
		*format = "avro";
		int32_t aid;
		rc = sl_con_avro_json(c, p, n, &aid, out, err);
	}
	if (rc)
		out->len = mark;
	else
		*schema_id = id;
	return rc;
}
