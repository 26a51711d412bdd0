/* Shared inside src/registry/: the compatibility checkers and canonical forms of Avro and JSON Schema (on the codec's
 * schema model and JSON tree, codec/avro_schema.h and codec/jtree.h), and the registry's in-memory state that every
 * store folds records into. */
#ifndef SL_REGISTRY_INTERNAL_H
#define SL_REGISTRY_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <pthread.h>

#include "codec/avro_schema.h"
#include "codec/jtree.h"
#include "codec/protobuf.h"
#include "core/buf.h"
#include "core/err.h"
#include "registry/registry.h"

/* ---- Avro (avro.c): canonical form and compatibility on the codec's schema model ---- */

/* The canonical string Confluent stores and returns (Avro's Schema.toString(): fixed key order, whitespace removed,
 * names relative to the enclosing namespace, attributes kept). */
void sl_reg_avro_canonical(const struct sl_avro_schema *s, struct sl_buf *out);

/* Reader/writer compatibility: 0 when reader can read data written with writer; 1 when not, with one line per broken
 * rule appended to msgs (NUL-separated list in a buffer), each naming the rule, the location and the names. */
int sl_reg_avro_compatible(const struct sl_avro *reader, const struct sl_avro *writer, struct sl_buf *msgs);

/* ---- JSON Schema (jsonschema.c) ---- */

/* Checks that text is a JSON Schema document (an object or boolean); SL_EINVAL with the reason. */
int sl_reg_jsonschema_validate(const char *text, size_t len, struct sl_err *err);
/* Confluent's json-schema diff: 0 when data valid under writer is valid under reader (update = reader,
 * original = writer); 1 when not, with the breaking changes ("TYPE_CHANGED #/properties/foo") appended to msgs. */
int sl_reg_jsonschema_compatible(const struct sl_rj *reader, const struct sl_rj *writer, struct sl_buf *msgs);

/* ---- Protobuf (protobuf.c) ---- */

/* Confluent's Protobuf diff: 0 when reader (the update) is compatible with writer (the original), 1 when not, with
 * one "Incompatibility{type:..., location:#/...}" line per incompatible difference appended to msgs. */
int sl_reg_protobuf_compatible(const struct sl_pb_schema *reader, const struct sl_pb_schema *writer,
			       struct sl_buf *msgs);

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
	char *ctx;   /* its context's name: "." (default) or ".ctx"; ids are unique within a context */
	char *type;  /* "AVRO", "JSON", "PROTOBUF" */
	char *text;  /* canonical text */
	char *refs;  /* canonical JSON array of references, or NULL */
	char *metadata, *ruleset; /* data contract (contract.c): canonical JSON objects, or NULL */
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
	struct sl_reg_kv *cfgx; /* a CONFIG record's contract keys (defaultMetadata...) as one JSON object */
	size_t ncfgx, capcfgx;
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
	const char *type;             /* "AVRO", "JSON" or "PROTOBUF" (static) */
	struct sl_avro_schema *avro;
	struct sl_rj *json;
	struct sl_pb_schema *pb;
	char *canon;
	char *refs;                   /* canonical references array or NULL */
};

/* where: a subject (qualified or not) or a context (":.ctx:"), NULL for the default context; only its context's
 * schemas and versions count. */
const char *sl_reg_ctx_name(const char *where, size_t *len);
bool sl_reg_same_ctx(const char *a, const char *b);
struct sl_reg_schema *sl_reg_schema_by_id(struct sl_registry *r, const char *where, int id);
int sl_reg_max_id(struct sl_registry *r, const char *where);
struct sl_reg_version *sl_reg_find_version(struct sl_registry *r, const char *subject, int version);
size_t sl_reg_subject_versions(struct sl_registry *r, const char *subject, bool with_deleted,
			       struct sl_reg_version ***out);
bool sl_reg_id_in_use(struct sl_registry *r, const char *where, int id, bool with_deleted);
/* Whether a version of s's context uses s (live only unless with_deleted). */
bool sl_reg_schema_in_use(struct sl_registry *r, const struct sl_reg_schema *s, bool with_deleted);
const char *sl_reg_kv_get(const struct sl_reg_kv *arr, size_t n, const char *subject);
/* The keys a subject's settings are looked up under, most specific first (see registry.c). */
size_t sl_reg_scope(const char *subject, const char *keys[3], char *ctx, size_t ctxlen);
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
/* Keeps of v (ascending) only the versions whose metadata property named by the compatibilityGroup in force for
 * subject equals md's (absent on both sides counts as equal: Confluent's rule); all of them when no group is set.
 * Returns the count kept. */
size_t sl_reg_group_filter(struct sl_registry *r, const char *subject, const char *md, struct sl_reg_version **v,
			   size_t n);
/* The contract a registration of version under subject gets (config default, the request's or prev's, config
 * override); malloc'd canonical JSON or NULL each. */
void sl_reg_merge_contract(struct sl_registry *r, const char *subject, const struct sl_rj *metadata,
			   const struct sl_rj *ruleset, const struct sl_reg_schema *prev, int version, bool asked_version,
			   char **md_out, char **rs_out);
/* Registers under the registry's lock. Returns the HTTP status (200 ok); on error sets *code and msg. */
int sl_reg_register(struct sl_registry *r, const char *subject, const char *type, const char *text, size_t len,
		    const struct sl_rj *refs, const struct sl_rj *metadata, const struct sl_rj *ruleset, int want_id,
		    int want_version, bool normalize, int *id_out, int *version_out, int *code, struct sl_buf *msg);
/* Writes a CONFIG record: level (NULL deletes the record) and the contract keys of extras (a JSON object text or
 * NULL). */
int sl_reg_write_config(struct sl_registry *r, const char *subject, const char *level, const char *extras,
			struct sl_err *err);
/* The contract key of the config in force for subject (the subject's, else the global one), or NULL. */
const struct sl_rj *sl_reg_config_key(struct sl_registry *r, const char *subject, const char *key,
				      struct sl_rj **hold);

/* ---- data contracts (contract.c) ---- */

/* Merges metadata layers in order (NULL layers skipped); version > 0 sets the "confluent:version" property when
 * force_version or when a layer already has it. Returns malloc'd canonical JSON, or NULL when no layer is given. */
char *sl_reg_metadata_merge(const struct sl_rj *const *layers, size_t n, int version, bool force_version);
/* Merges ruleSet layers in order; NULL when no layer is given. */
char *sl_reg_ruleset_merge(const struct sl_rj *const *layers, size_t n);
extern const char *const sl_reg_contract_keys[];
/* Checks a metadata (ruleset false) or ruleSet object against Confluent's entity types (enums included) and
 * renders it canonically: known members only, sets sorted and deduplicated. Returns malloc'd JSON, or NULL with why
 * set. */
char *sl_reg_contract_norm(bool ruleset, const struct sl_rj *v, char *why, size_t whylen);
/* What a config key holds: 0 an object (metadata, ruleSet), 1 a string, 2 a boolean. */
int sl_reg_config_key_kind(const char *key);
/* Whether v is a usable value for config key (an object; a non-empty string for "alias"). */
bool sl_reg_config_key_ok(const char *key, const struct sl_rj *v);

/* msgs helpers: a list of NUL-terminated strings in one buffer. */
void sl_reg_msg(struct sl_buf *msgs, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
