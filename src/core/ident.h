/* Identifiers that come from outside (HTTP paths and bodies, the CLI, the config) and end up in file paths, SQL
 * rows, JSON answers, log lines and child environments: one validator, one documented character set per kind, used
 * where each identifier enters (docs/security.md, "Identifiers and files").
 *
 * Every kind refuses the empty string, NUL, control characters (C0 and DEL) and anything over its length bound. The
 * kinds that become file names (DAG, task, run, pipeline, keyspace, table) have no path separator in their set and
 * refuse "." and any "..". */
#ifndef SL_IDENT_H
#define SL_IDENT_H

#include <stddef.h>

#include "core/err.h"

enum sl_ident_kind {
	SL_IDENT_DAG,      /* [A-Za-z0-9._-], <= 250 (Airflow's DAG id rule) */
	SL_IDENT_TASK,     /* [A-Za-z0-9._-], <= 250 */
	SL_IDENT_RUN,      /* [A-Za-z0-9._-:+~@], <= 250: manual__2024-01-01T00:00:00+00:00 */
	SL_IDENT_PIPELINE, /* [A-Za-z0-9._-], <= 200 */
	SL_IDENT_TOPIC,    /* Kafka's rule: [A-Za-z0-9._-], <= 249, not "." or ".." */
	SL_IDENT_TABLE,    /* CQL unquoted names: [A-Za-z0-9_], <= 48 (keyspaces too; a keyspace names a file) */
	SL_IDENT_SUBJECT,  /* Confluent: any printable UTF-8 ('/', ':' contexts included), <= 512 bytes */
};

#define SL_IDENT_MAX 512 /* the largest bound of any kind */

/* "DAG id", "run id", ... for messages. */
const char *sl_ident_kind_name(enum sl_ident_kind kind);

/* 0 when s[0..len) is a valid identifier of that kind; SL_EINVAL otherwise, with a message that names the kind, the
 * identifier (control bytes shown as \xNN, cut at 80 bytes) and what is wrong with it. */
int sl_ident_check(enum sl_ident_kind kind, const char *s, size_t len, struct sl_err *err);

#endif
