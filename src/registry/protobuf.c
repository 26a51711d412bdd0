/* Protobuf compatibility as Confluent's registry decides it (its protobuf-provider "diff" package): the original
 * (writer) and update (reader) files are walked side by side, every difference gets a type, and the update is
 * compatible when each difference is one of the compatible kinds. Fields are matched by number across the whole
 * message, oneof membership included, so moving a field in or out of a oneof cannot hide a type change; scalars are
 * grouped by wire encoding (int32/int64/uint32/uint64/bool/enum; sint*; fixed32/sfixed32; fixed64/sfixed64;
 * string/bytes; float; double); a message-typed field compares the referenced messages unless both come from the
 * same reference (subject and version). The walk runs on the C model of codec/protobuf.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry/internal.h"

enum diff {
	PACKAGE_CHANGED, MESSAGE_ADDED, MESSAGE_REMOVED, MESSAGE_MOVED, ENUM_ADDED, ENUM_REMOVED, ENUM_CONST_ADDED,
	ENUM_CONST_CHANGED, ENUM_CONST_REMOVED, FIELD_ADDED, FIELD_REMOVED, FIELD_NAME_CHANGED, FIELD_KIND_CHANGED,
	FIELD_SCALAR_KIND_CHANGED, FIELD_NAMED_TYPE_CHANGED, FIELD_NUMERIC_LABEL_CHANGED,
	FIELD_STRING_OR_BYTES_LABEL_CHANGED, REQUIRED_FIELD_ADDED, REQUIRED_FIELD_REMOVED, ONEOF_ADDED, ONEOF_REMOVED,
	ONEOF_FIELD_ADDED, ONEOF_FIELD_REMOVED, ONEOF_FIELD_MOVED_TO_TOP_LEVEL, MULTIPLE_FIELDS_MOVED_TO_ONEOF,
	FIELD_MOVED_TO_EXISTING_ONEOF,
};

static const char *const diff_names[] = {
	"PACKAGE_CHANGED", "MESSAGE_ADDED", "MESSAGE_REMOVED", "MESSAGE_MOVED", "ENUM_ADDED", "ENUM_REMOVED",
	"ENUM_CONST_ADDED", "ENUM_CONST_CHANGED", "ENUM_CONST_REMOVED", "FIELD_ADDED", "FIELD_REMOVED",
	"FIELD_NAME_CHANGED", "FIELD_KIND_CHANGED", "FIELD_SCALAR_KIND_CHANGED", "FIELD_NAMED_TYPE_CHANGED",
	"FIELD_NUMERIC_LABEL_CHANGED", "FIELD_STRING_OR_BYTES_LABEL_CHANGED", "REQUIRED_FIELD_ADDED",
	"REQUIRED_FIELD_REMOVED", "ONEOF_ADDED", "ONEOF_REMOVED", "ONEOF_FIELD_ADDED", "ONEOF_FIELD_REMOVED",
	"ONEOF_FIELD_MOVED_TO_TOP_LEVEL", "MULTIPLE_FIELDS_MOVED_TO_ONEOF", "FIELD_MOVED_TO_EXISTING_ONEOF",
};

/* Confluent's COMPATIBLE_CHANGES. */
static bool compatible_change(enum diff d)
{
	switch (d) {
	case MESSAGE_ADDED: case MESSAGE_MOVED: case ENUM_ADDED: case ENUM_REMOVED: case ENUM_CONST_ADDED:
	case ENUM_CONST_CHANGED: case ENUM_CONST_REMOVED: case FIELD_ADDED: case FIELD_REMOVED: case FIELD_NAME_CHANGED:
	case FIELD_STRING_OR_BYTES_LABEL_CHANGED: case ONEOF_ADDED: case ONEOF_REMOVED: case ONEOF_FIELD_ADDED:
	case ONEOF_FIELD_MOVED_TO_TOP_LEVEL:
		return true;
	default:
		return false;
	}
}

#define MAX_STACK 64

struct pbctx {
	struct sl_buf *msgs;
	char path[512];
	size_t plen;
	const struct sl_pb_msg *stack[MAX_STACK]; /* originals being compared: recursion stops at a repeat */
	size_t nstack;
	bool bad;
};

static size_t push(struct pbctx *c, const char *name)
{
	size_t old = c->plen;
	int n = snprintf(c->path + c->plen, sizeof c->path - c->plen, "/%s", name);
	if (n > 0)
		c->plen = c->plen + (size_t)n < sizeof c->path ? c->plen + (size_t)n : sizeof c->path - 1;
	return old;
}

static size_t push_num(struct pbctx *c, int n)
{
	char b[16];
	snprintf(b, sizeof b, "%d", n);
	return push(c, b);
}

static void pop(struct pbctx *c, size_t old)
{
	c->plen = old;
	c->path[old] = 0;
}

static void add(struct pbctx *c, enum diff d)
{
	if (compatible_change(d))
		return;
	c->bad = true;
	sl_reg_msg(c->msgs, "Incompatibility{type:%s, location:#%s}", diff_names[d], c->plen ? c->path : "/");
}

static void compare_types(struct pbctx *c, struct sl_pb_msg *const *om, size_t nom, struct sl_pb_enum *const *oe,
			  size_t noe, struct sl_pb_msg *const *um, size_t num, struct sl_pb_enum *const *ue, size_t nue);
static void compare_msg(struct pbctx *c, const struct sl_pb_msg *o, const struct sl_pb_msg *u);

enum kind { K_SCALAR, K_MAP, K_MESSAGE };
enum skind { S_GENERAL, S_SIGNED, S_STRBYTES, S_FIXED32, S_FIXED64, S_FLOAT, S_DOUBLE };

static enum kind kind_of(const struct sl_pb_field *f)
{
	if (f->msg)
		return f->msg->map_entry ? K_MAP : K_MESSAGE;
	return K_SCALAR;
}

static enum skind skind_of(const struct sl_pb_field *f)
{
	switch (f->type) {
	case 1: return S_DOUBLE;
	case 2: return S_FLOAT;
	case 6: case 16: return S_FIXED64;
	case 7: case 15: return S_FIXED32;
	case 9: case 12: return S_STRBYTES;
	case 17: case 18: return S_SIGNED;
	default: return S_GENERAL; /* int32, int64, uint32, uint64, bool, enum */
	}
}

static bool same_origin(const char *a, const char *b)
{
	return a && b && !strcmp(a, b);
}

static const char *local_name(const struct sl_pb_msg *m)
{
	size_t pl = strlen(m->package);
	return pl && !strncmp(m->full, m->package, pl) && m->full[pl] == '.' ? m->full + pl + 1 : m->full;
}

static void compare_message_types(struct pbctx *c, const struct sl_pb_msg *o, const struct sl_pb_msg *u)
{
	struct pbctx sub;
	if (strcmp(local_name(o), local_name(u))) {
		add(c, FIELD_NAMED_TYPE_CHANGED);
		return;
	}
	/* Both from the same subject-version of a reference: the same definition, nothing to compare. */
	if (same_origin(o->origin, u->origin))
		return;
	sub = *c;
	sub.bad = false;
	compare_msg(&sub, o, u);
	if (sub.bad)
		add(c, FIELD_NAMED_TYPE_CHANGED);
}

/* labels: SL_PB_LABEL_NONE stands for Confluent's null label (proto3 implicit, oneof members, map parts). */
static void compare_labels_types(struct pbctx *c, enum sl_pb_label ol, enum sl_pb_label ul,
				 const struct sl_pb_field *of, const struct sl_pb_field *uf)
{
	enum kind ok = kind_of(of), uk = kind_of(uf);
	if (ok != uk) {
		add(c, FIELD_KIND_CHANGED);
		return;
	}
	if (ok == K_SCALAR) {
		enum skind os = skind_of(of), us = skind_of(uf);
		if (os != us)
			add(c, FIELD_SCALAR_KIND_CHANGED);
		else if (ol != SL_PB_LABEL_NONE && ul != SL_PB_LABEL_NONE && ol != ul)
			add(c, os == S_STRBYTES ? FIELD_STRING_OR_BYTES_LABEL_CHANGED : FIELD_NUMERIC_LABEL_CHANGED);
	} else if (ok == K_MESSAGE)
		compare_message_types(c, of->msg, uf->msg);
	else if (of->msg->nfields == 2 && uf->msg->nfields == 2) {
		compare_labels_types(c, SL_PB_LABEL_NONE, SL_PB_LABEL_NONE, &of->msg->fields[0], &uf->msg->fields[0]);
		compare_labels_types(c, SL_PB_LABEL_NONE, SL_PB_LABEL_NONE, &of->msg->fields[1], &uf->msg->fields[1]);
	}
}

/* The label Confluent's model gives a field: oneof members and map fields have none. */
static enum sl_pb_label wire_label(const struct sl_pb_field *f)
{
	if (f->oneof >= 0 || (f->msg && f->msg->map_entry))
		return SL_PB_LABEL_NONE;
	return f->label;
}

static void compare_field(struct pbctx *c, const struct sl_pb_field *o, const struct sl_pb_field *u)
{
	if (strcmp(o->name, u->name))
		add(c, FIELD_NAME_CHANGED);
	compare_labels_types(c, wire_label(o), wire_label(u), o, u);
}

static const struct sl_pb_field *by_tag(const struct sl_pb_msg *m, int tag)
{
	for (size_t i = 0; i < m->nfields; i++)
		if (m->fields[i].number == tag)
			return &m->fields[i];
	return NULL;
}

static int oneof_by_name(const struct sl_pb_msg *m, const char *name)
{
	for (size_t i = 0; i < m->noneofs; i++)
		if (!strcmp(m->oneofs[i], name))
			return (int)i;
	return -1;
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void compare_msg(struct pbctx *c, const struct sl_pb_msg *o, const struct sl_pb_msg *u)
{
	bool seen = false;
	for (size_t i = 0; i < c->nstack && !seen; i++)
		seen = c->stack[i] == o;
	if (!seen && c->nstack < MAX_STACK) {
		c->stack[c->nstack++] = o;
		/* Original oneofs none of whose members survive anywhere: a complete deletion, compatible. */
		bool *gone = calloc(o->noneofs + 1, sizeof *gone);
		for (size_t k = 0; k < o->noneofs && gone; k++) {
			bool survives = oneof_by_name(u, o->oneofs[k]) >= 0;
			for (size_t i = 0; i < o->nfields && !survives; i++)
				survives = o->fields[i].oneof == (int)k && by_tag(u, o->fields[i].number);
			gone[k] = !survives;
		}
		/* Newly mutually exclusive fields: an update oneof whose pre-existing members come from more than one
		 * original group (an original oneof, or each top-level field on its own). */
		for (size_t k = 0; k < u->noneofs; k++) {
			size_t at = push(c, u->oneofs[k]);
			int groups[256], ng = 0, moved_in = 0;
			for (size_t i = 0; i < u->nfields; i++) {
				const struct sl_pb_field *uf = &u->fields[i], *of;
				int g;
				if (uf->oneof != (int)k || !(of = by_tag(o, uf->number)))
					continue;
				if (of->oneof >= 0)
					g = -1 - of->oneof;
				else {
					g = of->number;
					moved_in++;
				}
				bool dup = false;
				for (int j = 0; j < ng && !dup; j++)
					dup = groups[j] == g;
				if (!dup && ng < 256)
					groups[ng++] = g;
			}
			if (ng > 1)
				add(c, moved_in > 1 ? MULTIPLE_FIELDS_MOVED_TO_ONEOF : FIELD_MOVED_TO_EXISTING_ONEOF);
			pop(c, at);
		}
		/* Oneofs added or removed by name: compatible, so only the per-field pass can break. Every tag, in
		 * order. */
		int *tags = malloc((o->nfields + u->nfields + 1) * sizeof *tags);
		size_t nt = 0;
		for (size_t i = 0; tags && i < o->nfields; i++)
			tags[nt++] = o->fields[i].number;
		for (size_t i = 0; tags && i < u->nfields; i++)
			if (!by_tag(o, u->fields[i].number))
				tags[nt++] = u->fields[i].number;
		if (tags)
			qsort(tags, nt, sizeof *tags, cmp_int);
		for (size_t t = 0; t < nt; t++) {
			const struct sl_pb_field *of = by_tag(o, tags[t]), *uf = by_tag(u, tags[t]);
			size_t at = c->plen;
			if (!uf) {
				if (of->oneof >= 0) {
					if (!gone || !gone[of->oneof]) {
						push(c, o->oneofs[of->oneof]);
						push_num(c, tags[t]);
						add(c, ONEOF_FIELD_REMOVED);
					}
				} else {
					push_num(c, tags[t]);
					add(c, of->label == SL_PB_LABEL_REQUIRED ? REQUIRED_FIELD_REMOVED : FIELD_REMOVED);
				}
			} else if (!of) {
				if (uf->oneof >= 0) {
					push(c, u->oneofs[uf->oneof]);
					push_num(c, tags[t]);
					add(c, ONEOF_FIELD_ADDED);
				} else {
					push_num(c, tags[t]);
					add(c, uf->label == SL_PB_LABEL_REQUIRED ? REQUIRED_FIELD_ADDED : FIELD_ADDED);
				}
			} else {
				if (of->oneof >= 0 && uf->oneof < 0) {
					push_num(c, tags[t]);
					add(c, ONEOF_FIELD_MOVED_TO_TOP_LEVEL);
					pop(c, at);
				}
				if (uf->oneof >= 0)
					push(c, u->oneofs[uf->oneof]);
				push_num(c, tags[t]);
				compare_field(c, of, uf);
			}
			pop(c, at);
		}
		free(tags);
		free(gone);
		c->nstack--;
	}
	compare_types(c, o->nested, o->nnested, o->enums, o->nenums, u->nested, u->nnested, u->enums, u->nenums);
}

static void compare_enum(struct pbctx *c, const struct sl_pb_enum *o, const struct sl_pb_enum *u)
{
	/* Every change to an enum's constants is compatible in Confluent's rules; they are walked for symmetry with
	 * its diff (and so a later rule change has one place to go). */
	for (size_t i = 0; i < o->nvals; i++) {
		bool found = false;
		for (size_t j = 0; j < u->nvals && !found; j++)
			found = o->vnums[i] == u->vnums[j];
		size_t at = push_num(c, o->vnums[i]);
		if (!found)
			add(c, ENUM_CONST_REMOVED);
		pop(c, at);
	}
}

static int index_of(struct sl_pb_msg *const *m, size_t n, const char *name, bool skip_maps)
{
	int idx = 0;
	for (size_t i = 0; i < n; i++) {
		if (skip_maps && m[i]->map_entry)
			continue;
		if (!strcmp(m[i]->name, name))
			return idx;
		idx++;
	}
	return -1;
}

static void compare_types(struct pbctx *c, struct sl_pb_msg *const *om, size_t nom, struct sl_pb_enum *const *oe,
			  size_t noe, struct sl_pb_msg *const *um, size_t num, struct sl_pb_enum *const *ue, size_t nue)
{
	/* Map entries are not types in Confluent's model: they neither appear nor disappear. */
	char **names = malloc((nom + num + 1) * sizeof *names);
	size_t nn = 0;
	if (!names)
		return;
	for (size_t i = 0; i < nom; i++)
		if (!om[i]->map_entry)
			names[nn++] = om[i]->name;
	for (size_t i = 0; i < num; i++)
		if (!um[i]->map_entry && index_of(om, nom, um[i]->name, true) < 0)
			names[nn++] = um[i]->name;
	qsort(names, nn, sizeof *names, cmp_str);
	for (size_t i = 0; i < nn; i++) {
		int oi = index_of(om, nom, names[i], true), ui = index_of(um, num, names[i], true);
		size_t at = push(c, names[i]);
		if (ui < 0)
			add(c, MESSAGE_REMOVED);
		else if (oi < 0)
			add(c, MESSAGE_ADDED);
		else {
			const struct sl_pb_msg *o = NULL, *u = NULL;
			for (size_t k = 0; k < nom; k++)
				if (!strcmp(om[k]->name, names[i]))
					o = om[k];
			for (size_t k = 0; k < num; k++)
				if (!strcmp(um[k]->name, names[i]))
					u = um[k];
			compare_msg(c, o, u);
			if (oi != ui)
				add(c, MESSAGE_MOVED);
		}
		pop(c, at);
	}
	free(names);
	for (size_t i = 0; i < noe; i++) {
		const struct sl_pb_enum *u = NULL;
		size_t at = push(c, oe[i]->name);
		for (size_t k = 0; k < nue && !u; k++)
			if (!strcmp(ue[k]->name, oe[i]->name))
				u = ue[k];
		if (!u)
			add(c, ENUM_REMOVED);
		else
			compare_enum(c, oe[i], u);
		pop(c, at);
	}
}

int sl_reg_protobuf_compatible(const struct sl_pb_schema *reader, const struct sl_pb_schema *writer,
			       struct sl_buf *msgs)
{
	struct pbctx c = {.msgs = msgs};
	if (strcmp(reader->package, writer->package))
		add(&c, PACKAGE_CHANGED);
	compare_types(&c, writer->msgs, writer->nmsgs, writer->enums, writer->nenums, reader->msgs, reader->nmsgs,
		      reader->enums, reader->nenums);
	return c.bad ? 1 : 0;
}
