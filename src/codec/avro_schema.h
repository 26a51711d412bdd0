/* The Avro schema model: a schema's JSON parsed and validated into a graph of typed nodes, with everything Avro
 * Java keeps (defaults, aliases, docs, order, extra properties), which avro-c 1.11.1 drops (DESIGN.md §5). The
 * codec's decoder resolves writer schemas on it; the registry computes canonical strings and compatibility on it. */
#ifndef SL_CODEC_AVRO_SCHEMA_H
#define SL_CODEC_AVRO_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/jtree.h"
#include "core/err.h"

/* Nesting bound for schema graphs: deeper schemas are refused rather than risking the C stack. */
#define SL_AVRO_MAX_DEPTH 200

enum sl_avro_type {
	SL_AVRO_NULL, SL_AVRO_BOOLEAN, SL_AVRO_INT, SL_AVRO_LONG, SL_AVRO_FLOAT, SL_AVRO_DOUBLE, SL_AVRO_BYTES,
	SL_AVRO_STRING, SL_AVRO_RECORD, SL_AVRO_ENUM, SL_AVRO_ARRAY, SL_AVRO_MAP, SL_AVRO_UNION, SL_AVRO_FIXED,
};

/* The Avro name of each type ("null" ... "fixed"), indexed by enum sl_avro_type. */
extern const char *const sl_avro_type_names[SL_AVRO_FIXED + 1];

struct sl_avro_field;

/* One node of a parsed Avro schema. Named types appear once as a definition; later references point at it
 * (so the graph may be cyclic through records). Everything is owned by the struct sl_avro_schema. */
struct sl_avro {
	enum sl_avro_type t;
	char *name, *space;      /* named types: simple name and namespace (NULL or "" = none) */
	char *fullname;
	char *doc;
	char **aliases;          /* full names */
	size_t naliases;
	struct sl_avro_field *fields;
	size_t nfields;
	char **symbols;
	size_t nsymbols;
	char *enum_default;
	int64_t size;            /* fixed */
	struct sl_avro *items;   /* array items, map values */
	struct sl_avro **branches;
	size_t nbranches;
	const struct sl_rj *src; /* the JSON node it came from (for extra properties in the canonical string) */
	bool is_error;           /* record declared as "error" */
	bool from_ref;           /* defined by a referenced schema: always written as a name */
};

struct sl_avro_field {
	char *name;
	char **aliases;
	size_t naliases;
	struct sl_avro *type;
	const struct sl_rj *def; /* default, NULL if none */
	const char *order;       /* NULL or "ascending" (not written), "descending", "ignore" */
	const struct sl_rj *src;
};

struct sl_avro_schema {
	struct sl_rj **jsons;    /* the parsed texts (references first, then the schema); nodes point into them */
	size_t njsons;
	struct sl_avro *root;
	struct sl_avro **all;    /* every node allocated, for freeing and for named lookups */
	size_t nall, capall;
	char **strs;             /* strings built while parsing (full names), freed with the schema */
	size_t nstrs, capstrs;
};

/* A resolver for references: returns the canonical schema text of (subject, version) or NULL. */
struct sl_avro_refs {
	size_t n;
	const char **texts; /* schema texts of references, parsed first so their named types are known */
};

/* Parses and validates an Avro schema. refs may be NULL. Messages say what is wrong and where. */
int sl_avro_schema_parse(const char *text, size_t len, const struct sl_avro_refs *refs, struct sl_avro_schema **out,
		  struct sl_err *err);
void sl_avro_schema_free(struct sl_avro_schema *s);

#endif
