/* Shared inside src/registry/: an owned JSON tree (schemas outlive the parser that read them, and compatibility walks
 * two documents at once, which simdjson's one-document-per-parser handles cannot), the Avro and JSON Schema models
 * and their compatibility checkers, and the registry's in-memory state that every store folds records into. */
#ifndef SL_REGISTRY_INTERNAL_H
#define SL_REGISTRY_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <pthread.h>

#include "core/buf.h"
#include "core/err.h"
#include "registry/registry.h"

/* ---- owned JSON tree (jtree.c) ---- */

enum sl_rj_type { SL_RJ_NULL, SL_RJ_BOOL, SL_RJ_NUM, SL_RJ_STR, SL_RJ_ARR, SL_RJ_OBJ };

struct sl_rj {
	enum sl_rj_type t;
	bool b;
	double d;      /* SL_RJ_NUM: the value; text keeps the literal so rendering reproduces it */
	bool is_int;   /* SL_RJ_NUM written without '.', 'e' */
	char *s;       /* SL_RJ_STR: the string (NUL-terminated, may contain NULs: see n); SL_RJ_NUM: the literal */
	size_t n;      /* string length; SL_RJ_ARR/OBJ: element count */
	char **keys;   /* SL_RJ_OBJ, in document order */
	struct sl_rj **v;
};

/* Parses text into a tree. SL_EINVAL with "at byte N" for malformed JSON, SL_ETOOBIG for limits. */
int sl_rj_parse(const char *text, size_t len, struct sl_rj **out, struct sl_err *err);
void sl_rj_free(struct sl_rj *j);
struct sl_rj *sl_rj_get(const struct sl_rj *obj, const char *key);
/* The string value of obj[key], or NULL when absent or not a string. */
const char *sl_rj_getstr(const struct sl_rj *obj, const char *key);
/* j as an int: true only for an integral number within int's range (a JSON number may be anything: 1e300, 2.5). */
bool sl_rj_int(const struct sl_rj *j, int *out);
bool sl_rj_equal(const struct sl_rj *a, const struct sl_rj *b);
void sl_rj_render(const struct sl_rj *j, struct sl_buf *out);
struct sl_rj *sl_rj_new(enum sl_rj_type t);

/* ---- Avro (avro.c) ---- */

enum sl_avro_type {
	SL_AVRO_NULL, SL_AVRO_BOOLEAN, SL_AVRO_INT, SL_AVRO_LONG, SL_AVRO_FLOAT, SL_AVRO_DOUBLE, SL_AVRO_BYTES,
	SL_AVRO_STRING, SL_AVRO_RECORD, SL_AVRO_ENUM, SL_AVRO_ARRAY, SL_AVRO_MAP, SL_AVRO_UNION, SL_AVRO_FIXED,
};

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
int sl_avro_parse(const char *text, size_t len, const struct sl_avro_refs *refs, struct sl_avro_schema **out,
		  struct sl_err *err);
void sl_avro_free(struct sl_avro_schema *s);
/* The canonical string Confluent stores and returns (Avro's Schema.toString(): fixed key order, whitespace removed,
 * names relative to the enclosing namespace, attributes kept). */
void sl_avro_canonical(const struct sl_avro_schema *s, struct sl_buf *out);

/* Reader/writer compatibility: 0 when reader can read data written with writer; 1 when not, with one line per broken
 * rule appended to msgs (NUL-separated list in a buffer), each naming the rule, the location and the names. */
int sl_avro_compatible(const struct sl_avro *reader, const struct sl_avro *writer, struct sl_buf *msgs);

/* ---- JSON Schema (jsonschema.c) ---- */

/* Checks that text is a JSON Schema document (an object or boolean); SL_EINVAL with the reason. */
int sl_jsonschema_validate(const char *text, size_t len, struct sl_err *err);
/* Confluent's json-schema diff: 0 when data valid under writer is valid under reader (update = reader,
 * original = writer); 1 when not, with the breaking changes ("TYPE_CHANGED #/properties/foo") appended to msgs. */
int sl_jsonschema_compatible(const struct sl_rj *reader, const struct sl_rj *writer, struct sl_buf *msgs);

/* ---- stores (store_sqlite.c, store_kafka.c) ---- */

/* A store keeps Confluent's `_schemas` records. Every operation runs with the registry's mutex held.
 * sync catches the registry up with records it has not applied yet (others' writes); write makes one record durable
 * and applies it before returning (value NULL = tombstone). */
struct sl_reg_store {
	int (*sync)(struct sl_reg_store *st, struct sl_registry *r, struct sl_err *err);
	/* Optional: the catch-up a writer needs before it allocates ids (Kafka: write a NOOP and read up to it, so
	 * every record written before this leader took over is applied). Registration uses it instead of sync. */
	int (*barrier)(struct sl_reg_store *st, struct sl_registry *r, struct sl_err *err);
	int (*write)(struct sl_reg_store *st, struct sl_registry *r, const char *key, const char *value,
		     struct sl_err *err);
	void (*close)(struct sl_reg_store *st);
};

int sl_reg_store_sqlite_open(struct sl_reg_store **out, struct sl_registry *r, const char *data_dir,
			     struct sl_err *err);
int sl_reg_store_kafka_open(struct sl_reg_store **out, struct sl_registry *r, const struct sl_registry_conf *conf,
			    struct sl_err *err);

/* Folds one record into the registry's state (a malformed record is logged and skipped, as Confluent does). */
void sl_reg_apply(struct sl_registry *r, const char *key, size_t keylen, const char *value, size_t valuelen);

/* ---- the registry's state (registry.c) ---- */

struct sl_reg_schema {
	int id;
	char *type;  /* "AVRO", "JSON" */
	char *text;  /* canonical text */
	char *refs;  /* canonical JSON array of references, or NULL */
};

struct sl_reg_version {
	char *subject;
	int version;
	int id;
	bool deleted;
};

struct sl_reg_kv {
	char *subject; /* NULL = global */
	char *value;
};

struct sl_registry {
	pthread_mutex_t mu;
	struct sl_registry_conf conf;
	struct sl_reg_store *store;
	struct sl_reg_schema *schemas;
	size_t nschemas, capschemas;
	struct sl_reg_version *vers;
	size_t nvers, capvers;
	struct sl_reg_kv *compat, *mode;
	size_t ncompat, capcompat, nmode, capmode;
	int max_id;
	void *httpd;        /* struct sl_http_server (api.c) */
	char *forward_url;  /* kafka store: the leader's REST URL when this node is a follower, else NULL */
	bool leader;        /* may write (sqlite: always) */
	char *self_url;     /* this node's REST URL once serving (the kafka store advertises it to the group) */
	struct sl_http_auth auth; /* secrets of the REST API (none: open, loopback only) */
};

extern const char *const sl_reg_levels[];
extern const char *const sl_reg_modes[];

/* A schema parsed by its type, with the canonical text Confluent stores. */
struct sl_reg_parsed {
	const char *type;             /* "AVRO" or "JSON" (static) */
	struct sl_avro_schema *avro;
	struct sl_rj *json;
	char *canon;
	char *refs;                   /* canonical references array or NULL */
};

struct sl_reg_schema *sl_reg_schema_by_id(struct sl_registry *r, int id);
struct sl_reg_version *sl_reg_find_version(struct sl_registry *r, const char *subject, int version);
size_t sl_reg_subject_versions(struct sl_registry *r, const char *subject, bool with_deleted,
			       struct sl_reg_version ***out);
bool sl_reg_id_in_use(struct sl_registry *r, int id, bool with_deleted);
const char *sl_reg_kv_get(const struct sl_reg_kv *arr, size_t n, const char *subject);
const char *sl_reg_level(struct sl_registry *r, const char *subject);
const char *sl_reg_mode(struct sl_registry *r, const char *subject);
bool sl_reg_valid_level(const char *s);
int sl_reg_write_schema(struct sl_registry *r, const char *subject, int version, int id, bool deleted,
			struct sl_err *err);
int sl_reg_write_tombstone(struct sl_registry *r, const char *subject, int version, struct sl_err *err);
int sl_reg_write_setting(struct sl_registry *r, const char *kind, const char *subject, const char *value,
			 struct sl_err *err);
int sl_reg_parse(struct sl_registry *r, const char *type, const char *text, size_t len, const struct sl_rj *refs,
		 struct sl_reg_parsed **out, struct sl_err *err);
int sl_reg_parse_stored(struct sl_registry *r, const struct sl_reg_schema *s, struct sl_reg_parsed **out,
			struct sl_err *err);
void sl_reg_parsed_free(struct sl_reg_parsed *p);
/* Checks p against prev (ascending versions) under level; 0 compatible, 1 not (msgs filled), <0 error. */
int sl_reg_check(struct sl_registry *r, const char *level, const struct sl_reg_parsed *p,
		 struct sl_reg_version **prev, size_t nprev, struct sl_buf *msgs, struct sl_err *err);
/* Registers under the registry's lock. Returns the HTTP status (200 ok); on error sets *code and msg. */
int sl_reg_register(struct sl_registry *r, const char *subject, const char *type, const char *text, size_t len,
		    const struct sl_rj *refs, int want_id, int want_version, bool normalize, int *id_out,
		    int *version_out, int *code, struct sl_buf *msg);

/* msgs helpers: a list of NUL-terminated strings in one buffer. */
void sl_reg_msg(struct sl_buf *msgs, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
