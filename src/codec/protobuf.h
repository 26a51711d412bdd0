/* Protobuf schemas: a .proto file (text, or a base64 serialized FileDescriptorProto as Confluent's clients send)
 * parsed with its imports into a plain C model of messages, fields and enums, plus the canonical text the registry
 * stores and the serialized descriptor it serves with ?format=serialized. Parsing is Debian's libprotobuf behind a
 * C++ shim (protobuf.cc); everything downstream (compatibility, the wire-format decoder) works on this model only,
 * so no C++ type crosses the boundary and no exception escapes it. */
#ifndef SL_CODEC_PROTOBUF_H
#define SL_CODEC_PROTOBUF_H

#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"

/* Labels as Confluent's model (Square Wire) sees them: a proto3 field without a label has none. */
enum sl_pb_label { SL_PB_LABEL_NONE, SL_PB_LABEL_OPTIONAL, SL_PB_LABEL_REQUIRED, SL_PB_LABEL_REPEATED };

struct sl_pb_msg;
struct sl_pb_enum;

struct sl_pb_field {
	char *name;
	int number;
	enum sl_pb_label label;
	int type;              /* google.protobuf.FieldDescriptorProto.Type: 1 double .. 18 sint64 */
	char *type_name;       /* message/enum full name without the leading dot, else NULL */
	int oneof;             /* index into the message's oneofs (real oneofs only), -1 when none */
	bool packed;           /* repeated scalars written packed (proto3 default) */
	struct sl_pb_msg *msg; /* resolved type (message, map entry) or NULL */
	struct sl_pb_enum *en; /* resolved enum or NULL */
};

struct sl_pb_enum {
	char *name; /* simple name */
	char *full;
	char **vnames;
	int *vnums;
	size_t nvals;
};

struct sl_pb_msg {
	char *name; /* simple name */
	char *full; /* package.Outer.Name */
	const char *package; /* the defining file's package ("" when none) */
	const char *origin;  /* the reference the defining file came from ("subject\x01version"), NULL for the main file
			      * and for built-in files */
	bool map_entry;
	struct sl_pb_field *fields; /* declaration order */
	size_t nfields;
	char **oneofs;
	size_t noneofs;
	struct sl_pb_msg **nested;
	size_t nnested;
	struct sl_pb_enum **enums;
	size_t nenums;
};

/* One dependency the main file may import: its import path, its text (.proto or base64 descriptor) and the label
 * of where it came from (the registry's reference; may be NULL). */
struct sl_pb_dep {
	const char *name;
	const char *text;
	const char *origin;
};

struct sl_pb_schema {
	char *package;    /* "" when none */
	char *syntax;     /* "proto2" or "proto3" */
	struct sl_pb_msg **msgs;   /* the main file's top-level messages, declaration order */
	size_t nmsgs;
	struct sl_pb_enum **enums; /* the main file's top-level enums */
	size_t nenums;
	struct sl_pb_msg **all;    /* every message of the main file and its dependencies, for lookups by full name */
	size_t nall;
	struct sl_pb_enum **allenums;
	size_t nallenums;
	char *canonical;  /* the file as protoc prints it: fully qualified type names, fixed layout */
	char *serialized; /* base64 of the serialized FileDescriptorProto */
	void *owner;      /* the shim's allocations */
};

/* Parses text (len bytes) as a .proto file, or, failing that, as base64 of a FileDescriptorProto, resolving imports
 * among deps (any order; a dependency's own imports too) and the well-known types built into libprotobuf
 * (google/protobuf/..., e.g. timestamp.proto). SL_EINVAL with protoc's message (line:column) when the schema is not valid. */
int sl_protobuf_parse(const char *text, size_t len, const struct sl_pb_dep *deps, size_t ndeps,
		      struct sl_pb_schema **out, struct sl_err *err);
void sl_protobuf_free(struct sl_pb_schema *s);

/* The message with full name (no leading dot), or NULL. */
struct sl_pb_msg *sl_protobuf_find(const struct sl_pb_schema *s, const char *full);
struct sl_pb_enum *sl_protobuf_find_enum(const struct sl_pb_schema *s, const char *full);

/* The message that Confluent's message indexes name: indexes[0] a top-level message, then nested ones. NULL when out
 * of range. */
struct sl_pb_msg *sl_protobuf_by_index(const struct sl_pb_schema *s, const int *indexes, size_t n);

#endif
