/* The schema registry: a Confluent Schema Registry-compatible service (`sluice registry`) and the C API the rest of
 * sluice uses to register and fetch schemas in-process. State is a fold over records in Confluent's `_schemas`
 * key/value format, kept in a SQLite file (the embedded default) or the `_schemas` Kafka topic (at scale), so a
 * registry that Confluent's tools wrote can be read. Thread-safe: one mutex serializes every operation. */
#ifndef SL_REGISTRY_H
#define SL_REGISTRY_H

#include <stddef.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/httpauth.h"
#include "http/http.h"

struct sl_registry;

struct sl_registry_conf {
	char *listen;          /* host:port for the REST API */
	char *data_dir;        /* sqlite store: data_dir/registry.db */
	char *store;           /* "sqlite" or "kafka" */
	char *brokers;         /* kafka store: bootstrap servers */
	char *topic;           /* kafka store: "_schemas" */
	char *group;           /* kafka store: the group whose single member is the leader */
	/* kafka store: the config's top-level kafka: section (security, properties, brokers when registry.brokers is
	 * not set); NULL: plaintext with defaults. Not an option of registry:; set by the caller, must outlive the
	 * registry. */
	const struct sl_cfg_node *kafka;
	int64_t max_body;      /* request body limit in bytes */
	struct sl_http_auth_conf auth; /* token/basic auth of the REST API; also what this process sends to another */
	struct sl_http_conf http;      /* allowed_hosts, connection limits and timeouts (src/http) */
};

/* The `registry:` section of a config file (see docs/registry.md). */
extern const struct sl_opt sl_registry_opts[];

/* Where the sqlite store lives when the registry: section (section, may be NULL) does not set data_dir itself:
 * <data_dir>/registry under the config's top-level data_dir, beside everything else sluice keeps (var/registry when
 * the config has none either). Replaces conf->data_dir; call after binding the section. */
int sl_registry_conf_dir(struct sl_registry_conf *conf, const struct sl_cfg_node *section, const char *data_dir,
			 struct sl_err *err);

/* Opens the store and replays it. conf is copied. */
int sl_registry_open(struct sl_registry **out, const struct sl_registry_conf *conf, struct sl_err *err);
void sl_registry_close(struct sl_registry *r);

/* Registers schema (text) of type "AVRO" (NULL means AVRO) or "JSON" under subject with the subject's compatibility
 * rules, and sets *id. An existing identical schema returns its id. Errors: SL_EINVAL for an invalid schema, SL_ETYPE
 * for an incompatible one (the message says which rule broke), SL_EIO for a store failure. */
int sl_registry_register(struct sl_registry *r, const char *subject, const char *schema, const char *type, int *id,
			 struct sl_err *err);
/* Fetches the canonical schema text and type ("AVRO"/"JSON") of id; both malloc'd. SL_ENOTFOUND when unknown. */
int sl_registry_schema_by_id(struct sl_registry *r, int id, char **schema, char **type, struct sl_err *err);

/* The same two calls against a registry elsewhere (ours or Confluent's) at base URL ("http://host:8081"), over HTTP,
 * sending the credentials that auth points at (NULL: none). Errors as above; a 409's message is the registry's,
 * naming the rule that broke; a 401 says which variables to set. */
int sl_registry_http_register(const char *base, const struct sl_http_auth_conf *auth, const char *subject,
			      const char *schema, const char *type, int *id, struct sl_err *err);
int sl_registry_http_schema(const char *base, const struct sl_http_auth_conf *auth, int id, char **schema, char **type,
			    struct sl_err *err);

/* A client's handle on the registry a config names: one in this process (the registry: section's store; section
 * NULL: the sqlite store in data_dir/registry) or, url non-NULL, one elsewhere over HTTP with the section's
 * credentials. It registers and fetches as the calls above do. */
struct sl_registry_client;
int sl_registry_client_open(struct sl_registry_client **out, const char *url, const struct sl_cfg_node *section,
			    const char *data_dir, struct sl_err *err);
void sl_registry_client_close(struct sl_registry_client *g);
/* type: "AVRO" (or NULL) or "JSON"; errors as sl_registry_register. */
int sl_registry_client_register(struct sl_registry_client *g, const char *subject, const char *schema,
				const char *type, int *id, struct sl_err *err);
/* SL_ENOTFOUND for an unknown id; other errors are the registry being unreachable. */
int sl_registry_client_fetch(struct sl_registry_client *g, int id, char **schema, char **type, struct sl_err *err);

/* Answers one REST request in-process: method ("GET"...), the raw request target (path and query, still
 * percent-encoded), the body. Sets *status and fills out with the JSON response (cleared first). */
void sl_registry_handle(struct sl_registry *r, const char *method, const char *target, const char *body, size_t len,
			int *status, struct sl_buf *out);

/* Starts the HTTP server on conf.listen in background threads; *port gets the bound port (useful with port 0). */
int sl_registry_serve(struct sl_registry *r, int *port, struct sl_err *err);
/* Stops the HTTP server (sl_registry_close does it too). */
void sl_registry_stop(struct sl_registry *r);

#endif
