/* CQL native protocol v4, wire level: the 9-byte frame header, the notations of section 3 of the spec ([int],
 * [string], [bytes], [value], [inet], maps and lists), request encoders and decoders for every response a server
 * sends (ERROR with each error body, READY, AUTHENTICATE, SUPPORTED, RESULT of each kind, EVENT, AUTH_*).
 * Nothing here does I/O; the decoders trust no length read from the network. */
#ifndef SL_CQL_PROTO_H
#define SL_CQL_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/err.h"
#include "cql/cql.h"

#define SL_CQL_PROTO_VERSION 0x04
#define SL_CQL_RESPONSE_BIT 0x80
#define SL_CQL_HEADER_LEN 9
/* The spec caps a frame at 256 MiB; a bigger length means a corrupt or hostile stream. */
#define SL_CQL_MAX_BODY (256u * 1024u * 1024u)
#define SL_CQL_MAX_STREAMS 32768

enum sl_cql_opcode {
	SL_CQL_OP_ERROR = 0x00, SL_CQL_OP_STARTUP = 0x01, SL_CQL_OP_READY = 0x02, SL_CQL_OP_AUTHENTICATE = 0x03,
	SL_CQL_OP_OPTIONS = 0x05, SL_CQL_OP_SUPPORTED = 0x06, SL_CQL_OP_QUERY = 0x07, SL_CQL_OP_RESULT = 0x08,
	SL_CQL_OP_PREPARE = 0x09, SL_CQL_OP_EXECUTE = 0x0A, SL_CQL_OP_REGISTER = 0x0B, SL_CQL_OP_EVENT = 0x0C,
	SL_CQL_OP_BATCH = 0x0D, SL_CQL_OP_AUTH_CHALLENGE = 0x0E, SL_CQL_OP_AUTH_RESPONSE = 0x0F,
	SL_CQL_OP_AUTH_SUCCESS = 0x10,
};
const char *sl_cql_opcode_name(int op);

enum {
	SL_CQL_FLAG_COMPRESSION = 0x01, SL_CQL_FLAG_TRACING = 0x02, SL_CQL_FLAG_CUSTOM_PAYLOAD = 0x04,
	SL_CQL_FLAG_WARNING = 0x08,
};

/* Query parameter flags (QUERY, EXECUTE) and batch flags. */
enum {
	SL_CQL_QF_VALUES = 0x01, SL_CQL_QF_SKIP_METADATA = 0x02, SL_CQL_QF_PAGE_SIZE = 0x04,
	SL_CQL_QF_PAGING_STATE = 0x08, SL_CQL_QF_SERIAL_CONSISTENCY = 0x10, SL_CQL_QF_TIMESTAMP = 0x20,
	SL_CQL_QF_NAMES = 0x40,
};

/* Rows metadata flags. */
enum { SL_CQL_MF_GLOBAL_TABLES = 0x01, SL_CQL_MF_HAS_MORE_PAGES = 0x02, SL_CQL_MF_NO_METADATA = 0x04 };

struct sl_cql_header {
	uint8_t version;              /* 0x04 request, 0x84 response */
	uint8_t flags;
	int16_t stream;
	uint8_t opcode;
	uint32_t length;
};
void sl_cql_header_encode(uint8_t out[SL_CQL_HEADER_LEN], const struct sl_cql_header *h);
/* Checks the version (only v4 is spoken) and the length against SL_CQL_MAX_BODY. */
int sl_cql_header_decode(const uint8_t in[SL_CQL_HEADER_LEN], struct sl_cql_header *h, struct sl_err *e);

/* A bounds-checked reader. A read past the end sets .bad and returns zero/empty; decoders check .bad once at the
 * end of each structure, and size counts against what is left before looping or allocating. */
struct sl_cql_rd {
	const uint8_t *p, *end;
	bool bad;
};
static inline void sl_cql_rd_init(struct sl_cql_rd *r, const void *p, size_t n)
{
	r->p = p;
	r->end = r->p + n;
	r->bad = false;
}
static inline size_t sl_cql_rd_left(const struct sl_cql_rd *r) { return (size_t)(r->end - r->p); }
uint8_t sl_cql_rd_u8(struct sl_cql_rd *r);
uint16_t sl_cql_rd_u16(struct sl_cql_rd *r);
int32_t sl_cql_rd_i32(struct sl_cql_rd *r);
int64_t sl_cql_rd_i64(struct sl_cql_rd *r);
const uint8_t *sl_cql_rd_raw(struct sl_cql_rd *r, size_t n);
/* [string]: u16 length + bytes. */
const char *sl_cql_rd_string(struct sl_cql_rd *r, size_t *len);
/* [long string]: i32 length + bytes (negative is malformed). */
const char *sl_cql_rd_long_string(struct sl_cql_rd *r, size_t *len);
/* [bytes]: i32 length, negative means null (returns NULL with *len = -1). */
const uint8_t *sl_cql_rd_bytes(struct sl_cql_rd *r, int32_t *len);
/* [short bytes]: u16 length + bytes. */
const uint8_t *sl_cql_rd_short_bytes(struct sl_cql_rd *r, uint16_t *len);
/* A count for n elements each at least min_size bytes long: negative or more than could fit sets .bad. */
int32_t sl_cql_rd_count(struct sl_cql_rd *r, int32_t n, size_t min_size);
/* [string] copied into the arena, NUL-terminated (NULL on bad input or OOM; check .bad). */
char *sl_cql_rd_string_dup(struct sl_cql_rd *r, struct sl_arena *a);
/* [inet]: u8 size (4|16) + address + i32 port. */
int sl_cql_rd_inet(struct sl_cql_rd *r, struct sockaddr_storage *ss);
/* Skips a [string list] / [string multimap] / [bytes map] (parts of responses sluice reads but does not keep). */
void sl_cql_rd_skip_string_list(struct sl_cql_rd *r);
void sl_cql_rd_skip_bytes_map(struct sl_cql_rd *r);

/* Writers onto a sl_buf (big-endian). */
void sl_cql_wr_u8(struct sl_buf *b, uint8_t v);
void sl_cql_wr_u16(struct sl_buf *b, uint16_t v);
void sl_cql_wr_i32(struct sl_buf *b, int32_t v);
void sl_cql_wr_i64(struct sl_buf *b, int64_t v);
void sl_cql_wr_string(struct sl_buf *b, const char *s, size_t n);
void sl_cql_wr_long_string(struct sl_buf *b, const char *s, size_t n);
void sl_cql_wr_bytes(struct sl_buf *b, const void *p, int32_t n); /* n < 0 writes null (-1) */
void sl_cql_wr_short_bytes(struct sl_buf *b, const void *p, uint16_t n);
/* [string map] from k0, v0, k1, v1, ... */
void sl_cql_wr_string_map(struct sl_buf *b, const char *const *kv, int npairs);
void sl_cql_wr_string_list(struct sl_buf *b, const char *const *s, int n);
static inline void sl_cql_put_u16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline void sl_cql_put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static inline uint32_t sl_cql_get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ---- request bodies ---- */

/* STARTUP {CQL_VERSION: 3.0.0[, COMPRESSION: lz4]}. */
void sl_cql_enc_startup(struct sl_buf *b, bool lz4);
/* AUTH_RESPONSE with the SASL PLAIN token "\0user\0password". */
void sl_cql_enc_auth_plain(struct sl_buf *b, const char *user, const char *password);
/* REGISTER for TOPOLOGY_CHANGE, STATUS_CHANGE, SCHEMA_CHANGE. */
void sl_cql_enc_register(struct sl_buf *b);
void sl_cql_enc_prepare(struct sl_buf *b, const char *query, size_t len);

/* The parameters a QUERY or EXECUTE carries after its query text or id. values is nvalues concatenated [value]s. */
struct sl_cql_qparams {
	int consistency, serial_consistency;  /* serial < 0: not sent */
	const uint8_t *values;
	size_t values_len;
	int nvalues;
	int32_t page_size;                    /* <= 0: not sent */
	const uint8_t *paging_state;
	int32_t paging_state_len;             /* < 0: not sent */
	int64_t timestamp;                    /* INT64_MIN: not sent */
	bool skip_metadata;
};
void sl_cql_enc_qparams(struct sl_buf *b, const struct sl_cql_qparams *q);
void sl_cql_enc_query(struct sl_buf *b, const char *query, size_t len, const struct sl_cql_qparams *q);
void sl_cql_enc_execute(struct sl_buf *b, const uint8_t *id, uint16_t idlen, const struct sl_cql_qparams *q);

/* ---- responses ---- */

/* What precedes a response body when its header flags say so: tracing id, warnings, custom payload. The warnings
 * are copied into the arena (NULL-terminated array) when one is given. */
int sl_cql_decode_prefix(struct sl_cql_rd *r, uint8_t flags, struct sl_arena *a, char ***warnings,
			 uint8_t tracing_id[16], bool *has_tracing, struct sl_err *e);

/* An ERROR body with every field its code defines. Strings are copied (and truncated) into fixed buffers. */
struct sl_cql_error {
	int32_t code;
	char message[400];
	int consistency;
	int32_t required, alive;              /* unavailable */
	int32_t received, blockfor, numfailures;
	bool data_present;
	char write_type[24];                  /* SIMPLE, BATCH, UNLOGGED_BATCH, COUNTER, BATCH_LOG, CAS, VIEW, CDC */
	char keyspace[64], table[64];         /* already exists; function failure: keyspace, function name */
	uint8_t unprepared_id[64];
	uint16_t unprepared_id_len;
};
int sl_cql_decode_error(struct sl_cql_rd *r, struct sl_cql_error *out, struct sl_err *e);
/* One line: "Invalid query (0x2200): unconfigured table x" plus the body's details (e.g. "consistency ONE,
 * 1 of 2 replicas"). */
void sl_cql_error_describe(const struct sl_cql_error *er, char *out, size_t outsz);
/* True for codes a retry may cure (unavailable, overloaded, bootstrapping, timeouts, failures, server error). */
bool sl_cql_error_code_retryable(int32_t code);

/* A CQL type [option], allocated in the arena. Nesting is capped at 32 levels. */
struct sl_cql_type *sl_cql_decode_type(struct sl_cql_rd *r, struct sl_arena *a, int depth);

struct sl_cql_meta {
	int32_t flags;
	int32_t ncols;
	struct sl_cql_column *cols;           /* NULL with NO_METADATA */
	const uint8_t *paging_state;
	int32_t paging_state_len;             /* -1: none */
	int32_t npk;                          /* prepared bind metadata: partition-key indexes */
	uint16_t *pk;
};
/* prepared: the bind-variable form (pk indexes, no paging state). */
int sl_cql_decode_meta(struct sl_cql_rd *r, struct sl_arena *a, bool prepared, struct sl_cql_meta *m);

struct sl_cql_schema_change {
	const char *change;                   /* CREATED, UPDATED, DROPPED */
	const char *target;                   /* KEYSPACE, TABLE, TYPE, FUNCTION, AGGREGATE */
	const char *keyspace, *name;          /* name NULL for KEYSPACE */
	int nargs;
	const char **args;                    /* FUNCTION/AGGREGATE argument types */
};
int sl_cql_decode_schema_change(struct sl_cql_rd *r, struct sl_arena *a, struct sl_cql_schema_change *sc);

/* The decoded RESULT; the row cells point into body. Kept opaque in cql.h. */
struct sl_cql_result {
	int kind;
	struct sl_arena arena;
	uint8_t *body;                        /* owned (malloc); freed with the result */
	size_t body_len;
	struct sl_cql_meta meta;              /* rows metadata; prepared: bind variables */
	struct sl_cql_meta result_meta;       /* prepared: what an EXECUTE returns */
	int32_t nrows;
	const uint8_t *rows, *rows_end;
	const char *keyspace;                 /* SET_KEYSPACE */
	struct sl_cql_schema_change change;   /* SCHEMA_CHANGE */
	const uint8_t *prepared_id;
	uint16_t prepared_id_len;
	char **warnings;
	uint8_t tracing_id[16];
	bool has_tracing;
	bool schema_agreed;
};
/* Takes ownership of body (malloc'd) whatever the outcome; the result must be sl_cql_result_free'd. Every row cell
 * is bounds-checked here so iterators can trust them. */
int sl_cql_result_decode(struct sl_cql_result **out, uint8_t *body, size_t len, uint8_t flags, struct sl_err *e);

enum sl_cql_event_kind { SL_CQL_EVENT_TOPOLOGY = 1, SL_CQL_EVENT_STATUS = 2, SL_CQL_EVENT_SCHEMA = 3 };
struct sl_cql_event {
	int kind;
	char change[32];                      /* NEW_NODE, REMOVED_NODE, UP, DOWN, CREATED, UPDATED, DROPPED */
	struct sockaddr_storage addr;         /* topology, status */
	char target[16], keyspace[64], name[64]; /* schema */
};
int sl_cql_decode_event(struct sl_cql_rd *r, struct sl_cql_event *ev, struct sl_err *e);
/* AUTHENTICATE: the authenticator class name. */
int sl_cql_decode_authenticate(struct sl_cql_rd *r, char *cls, size_t clssz, struct sl_err *e);
/* SUPPORTED: whether "lz4" is listed under COMPRESSION. */
int sl_cql_decode_supported(struct sl_cql_rd *r, bool *lz4, struct sl_err *e);

/* lz4 body compression: 4-byte big-endian uncompressed length + one raw LZ4 block. */
int sl_cql_lz4_compress(struct sl_buf *out, const uint8_t *in, size_t n);
/* Returns a malloc'd body of *outlen bytes; refuses lengths above SL_CQL_MAX_BODY. */
int sl_cql_lz4_decompress(const uint8_t *in, size_t n, uint8_t **out, size_t *outlen, struct sl_err *e);

#endif
