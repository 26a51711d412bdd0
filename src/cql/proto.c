/* CQL native protocol v4 framing, notations, request encoders and response decoders (see proto.h). Every count and
 * length that comes from the network is checked against the bytes that remain before it is used. */
#include "cql/proto.h"
#include "core/assert.h"

#include <arpa/inet.h>
#include <lz4.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *sl_cql_opcode_name(int op)
{
	switch (op) {
	case SL_CQL_OP_ERROR: return "ERROR";
	case SL_CQL_OP_STARTUP: return "STARTUP";
	case SL_CQL_OP_READY: return "READY";
	case SL_CQL_OP_AUTHENTICATE: return "AUTHENTICATE";
	case SL_CQL_OP_OPTIONS: return "OPTIONS";
	case SL_CQL_OP_SUPPORTED: return "SUPPORTED";
	case SL_CQL_OP_QUERY: return "QUERY";
	case SL_CQL_OP_RESULT: return "RESULT";
	case SL_CQL_OP_PREPARE: return "PREPARE";
	case SL_CQL_OP_EXECUTE: return "EXECUTE";
	case SL_CQL_OP_REGISTER: return "REGISTER";
	case SL_CQL_OP_EVENT: return "EVENT";
	case SL_CQL_OP_BATCH: return "BATCH";
	case SL_CQL_OP_AUTH_CHALLENGE: return "AUTH_CHALLENGE";
	case SL_CQL_OP_AUTH_RESPONSE: return "AUTH_RESPONSE";
	case SL_CQL_OP_AUTH_SUCCESS: return "AUTH_SUCCESS";
	}
	return "UNKNOWN";
}

static const char *const cl_names[] = {"ANY", "ONE", "TWO", "THREE", "QUORUM", "ALL", "LOCAL_QUORUM",
				       "EACH_QUORUM", "SERIAL", "LOCAL_SERIAL", "LOCAL_ONE"};

const char *sl_cql_consistency_name(int cl)
{
	return cl >= 0 && cl < (int)(sizeof cl_names / sizeof *cl_names) ? cl_names[cl] : "UNKNOWN";
}

int sl_cql_consistency_parse(const char *s)
{
	for (int i = 0; i < (int)(sizeof cl_names / sizeof *cl_names); i++)
		if (!strcasecmp(s, cl_names[i]))
			return i;
	return -1;
}

const char *sl_cql_error_name(int32_t code)
{
	switch (code) {
	case SL_CQL_ERR_SERVER: return "Server error";
	case SL_CQL_ERR_PROTOCOL: return "Protocol error";
	case SL_CQL_ERR_BAD_CREDENTIALS: return "Bad credentials";
	case SL_CQL_ERR_UNAVAILABLE: return "Unavailable";
	case SL_CQL_ERR_OVERLOADED: return "Overloaded";
	case SL_CQL_ERR_IS_BOOTSTRAPPING: return "Is bootstrapping";
	case SL_CQL_ERR_TRUNCATE: return "Truncate error";
	case SL_CQL_ERR_WRITE_TIMEOUT: return "Write timeout";
	case SL_CQL_ERR_READ_TIMEOUT: return "Read timeout";
	case SL_CQL_ERR_READ_FAILURE: return "Read failure";
	case SL_CQL_ERR_FUNCTION_FAILURE: return "Function failure";
	case SL_CQL_ERR_WRITE_FAILURE: return "Write failure";
	case SL_CQL_ERR_SYNTAX: return "Syntax error";
	case SL_CQL_ERR_UNAUTHORIZED: return "Unauthorized";
	case SL_CQL_ERR_INVALID: return "Invalid query";
	case SL_CQL_ERR_CONFIG: return "Configuration error";
	case SL_CQL_ERR_ALREADY_EXISTS: return "Already exists";
	case SL_CQL_ERR_UNPREPARED: return "Unprepared";
	}
	return "Unknown error";
}

bool sl_cql_error_code_retryable(int32_t code)
{
	switch (code) {
	case SL_CQL_ERR_SERVER:
	case SL_CQL_ERR_UNAVAILABLE:
	case SL_CQL_ERR_OVERLOADED:
	case SL_CQL_ERR_IS_BOOTSTRAPPING:
	case SL_CQL_ERR_TRUNCATE:
	case SL_CQL_ERR_WRITE_TIMEOUT:
	case SL_CQL_ERR_READ_TIMEOUT:
	case SL_CQL_ERR_READ_FAILURE:
	case SL_CQL_ERR_WRITE_FAILURE:
		return true;
	}
	return false;
}

/* ---- header ---- */

void sl_cql_header_encode(uint8_t out[SL_CQL_HEADER_LEN], const struct sl_cql_header *h)
{
	SL_ASSERT(h->length <= SL_CQL_MAX_BODY); /* the server closes the connection on a longer body */
	out[0] = h->version;
	out[1] = h->flags;
	sl_cql_put_u16(out + 2, (uint16_t)h->stream);
	out[4] = h->opcode;
	sl_cql_put_u32(out + 5, h->length);
}

int sl_cql_header_decode(const uint8_t in[SL_CQL_HEADER_LEN], struct sl_cql_header *h, struct sl_err *e)
{
	h->version = in[0];
	h->flags = in[1];
	h->stream = (int16_t)(uint16_t)((unsigned)in[2] << 8 | in[3]);
	h->opcode = in[4];
	h->length = sl_cql_get_u32(in + 5);
	if ((h->version & 0x7f) != SL_CQL_PROTO_VERSION)
		return sl_err_set(e, SL_EPROTO, "frame has protocol version %d; sluice speaks v4 (server too old?)",
				  h->version & 0x7f);
	if (h->length > SL_CQL_MAX_BODY)
		return sl_err_set(e, SL_EPROTO, "frame body of %u bytes exceeds the protocol's 256 MiB limit", h->length);
	return 0;
}

/* ---- reader ---- */

const uint8_t *sl_cql_rd_raw(struct sl_cql_rd *r, size_t n)
{
	SL_ASSERT(r->p <= r->end);
	if (r->bad || sl_cql_rd_left(r) < n) {
		r->bad = true;
		return NULL;
	}
	const uint8_t *p = r->p;
	r->p += n;
	SL_ASSERT(r->p <= r->end);
	return p;
}

uint8_t sl_cql_rd_u8(struct sl_cql_rd *r)
{
	const uint8_t *p = sl_cql_rd_raw(r, 1);
	return p ? p[0] : 0;
}

uint16_t sl_cql_rd_u16(struct sl_cql_rd *r)
{
	const uint8_t *p = sl_cql_rd_raw(r, 2);
	return p ? (uint16_t)((unsigned)p[0] << 8 | p[1]) : 0;
}

int32_t sl_cql_rd_i32(struct sl_cql_rd *r)
{
	const uint8_t *p = sl_cql_rd_raw(r, 4);
	return p ? (int32_t)sl_cql_get_u32(p) : 0;
}

int64_t sl_cql_rd_i64(struct sl_cql_rd *r)
{
	const uint8_t *p = sl_cql_rd_raw(r, 8);
	return p ? (int64_t)((uint64_t)sl_cql_get_u32(p) << 32 | sl_cql_get_u32(p + 4)) : 0;
}

const char *sl_cql_rd_string(struct sl_cql_rd *r, size_t *len)
{
	uint16_t n = sl_cql_rd_u16(r);
	const uint8_t *p = sl_cql_rd_raw(r, n);
	*len = p ? n : 0;
	return p ? (const char *)p : "";
}

const char *sl_cql_rd_long_string(struct sl_cql_rd *r, size_t *len)
{
	int32_t n = sl_cql_rd_i32(r);
	if (n < 0) {
		r->bad = true;
		n = 0;
	}
	const uint8_t *p = sl_cql_rd_raw(r, (size_t)n);
	*len = p ? (size_t)n : 0;
	return p ? (const char *)p : "";
}

const uint8_t *sl_cql_rd_bytes(struct sl_cql_rd *r, int32_t *len)
{
	int32_t n = sl_cql_rd_i32(r);
	if (r->bad || n < 0) {
		*len = -1;
		return NULL;
	}
	const uint8_t *p = sl_cql_rd_raw(r, (size_t)n);
	*len = p ? n : -1;
	return p;
}

const uint8_t *sl_cql_rd_short_bytes(struct sl_cql_rd *r, uint16_t *len)
{
	uint16_t n = sl_cql_rd_u16(r);
	const uint8_t *p = sl_cql_rd_raw(r, n);
	*len = p ? n : 0;
	return p;
}

int32_t sl_cql_rd_count(struct sl_cql_rd *r, int32_t n, size_t min_size)
{
	if (r->bad || n < 0 || (min_size && (size_t)n > sl_cql_rd_left(r) / min_size)) {
		r->bad = true;
		return 0;
	}
	return n;
}

char *sl_cql_rd_string_dup(struct sl_cql_rd *r, struct sl_arena *a)
{
	size_t n;
	const char *s = sl_cql_rd_string(r, &n);
	if (r->bad)
		return NULL;
	char *d = sl_arena_strndup(a, s, n);
	if (!d)
		r->bad = true;
	return d;
}

int sl_cql_rd_inet(struct sl_cql_rd *r, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof *ss);
	uint8_t n = sl_cql_rd_u8(r);
	if (n != 4 && n != 16) {
		r->bad = true;
		return SL_EPROTO;
	}
	const uint8_t *a = sl_cql_rd_raw(r, n);
	int32_t port = sl_cql_rd_i32(r);
	if (r->bad)
		return SL_EPROTO;
	if (n == 4) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;
		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, a, 4);
		sin->sin_port = htons((uint16_t)port);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, a, 16);
		sin6->sin6_port = htons((uint16_t)port);
	}
	return 0;
}

void sl_cql_rd_skip_string_list(struct sl_cql_rd *r)
{
	int32_t n = sl_cql_rd_count(r, sl_cql_rd_u16(r), 2);
	for (int32_t i = 0; i < n && !r->bad; i++) {
		size_t len;
		sl_cql_rd_string(r, &len);
	}
}

void sl_cql_rd_skip_bytes_map(struct sl_cql_rd *r)
{
	int32_t n = sl_cql_rd_count(r, sl_cql_rd_u16(r), 6);
	for (int32_t i = 0; i < n && !r->bad; i++) {
		size_t len;
		int32_t blen;
		sl_cql_rd_string(r, &len);
		sl_cql_rd_bytes(r, &blen);
	}
}

/* ---- writers ---- */

void sl_cql_wr_u8(struct sl_buf *b, uint8_t v) { sl_buf_append(b, &v, 1); }

void sl_cql_wr_u16(struct sl_buf *b, uint16_t v)
{
	uint8_t p[2];
	sl_cql_put_u16(p, v);
	sl_buf_append(b, p, 2);
}

void sl_cql_wr_i32(struct sl_buf *b, int32_t v)
{
	uint8_t p[4];
	sl_cql_put_u32(p, (uint32_t)v);
	sl_buf_append(b, p, 4);
}

void sl_cql_wr_i64(struct sl_buf *b, int64_t v)
{
	uint8_t p[8];
	sl_cql_put_u32(p, (uint32_t)((uint64_t)v >> 32));
	sl_cql_put_u32(p + 4, (uint32_t)v);
	sl_buf_append(b, p, 8);
}

void sl_cql_wr_string(struct sl_buf *b, const char *s, size_t n)
{
	if (n > UINT16_MAX) {
		b->oom = true; /* a [string] cannot carry it; the caller reports the encoding failure */
		return;
	}
	sl_cql_wr_u16(b, (uint16_t)n);
	sl_buf_append(b, s, n);
}

void sl_cql_wr_long_string(struct sl_buf *b, const char *s, size_t n)
{
	if (n > INT32_MAX) {
		b->oom = true;
		return;
	}
	sl_cql_wr_i32(b, (int32_t)n);
	sl_buf_append(b, s, n);
}

void sl_cql_wr_bytes(struct sl_buf *b, const void *p, int32_t n)
{
	if (n < 0) {
		sl_cql_wr_i32(b, -1);
		return;
	}
	sl_cql_wr_i32(b, n);
	sl_buf_append(b, p, (size_t)n);
}

void sl_cql_wr_short_bytes(struct sl_buf *b, const void *p, uint16_t n)
{
	sl_cql_wr_u16(b, n);
	sl_buf_append(b, p, n);
}

void sl_cql_wr_string_map(struct sl_buf *b, const char *const *kv, int npairs)
{
	sl_cql_wr_u16(b, (uint16_t)npairs);
	for (int i = 0; i < 2 * npairs; i++)
		sl_cql_wr_string(b, kv[i], strlen(kv[i]));
}

void sl_cql_wr_string_list(struct sl_buf *b, const char *const *s, int n)
{
	sl_cql_wr_u16(b, (uint16_t)n);
	for (int i = 0; i < n; i++)
		sl_cql_wr_string(b, s[i], strlen(s[i]));
}

/* ---- requests ---- */

void sl_cql_enc_startup(struct sl_buf *b, bool lz4)
{
	const char *kv[] = {"CQL_VERSION", "3.0.0", "DRIVER_NAME", "sluice", "COMPRESSION", "lz4"};
	sl_cql_wr_string_map(b, kv, lz4 ? 3 : 2);
}

void sl_cql_enc_auth_plain(struct sl_buf *b, const char *user, const char *password)
{
	size_t ul = strlen(user), pl = strlen(password);
	sl_cql_wr_i32(b, (int32_t)(ul + pl + 2));
	sl_cql_wr_u8(b, 0);
	sl_buf_append(b, user, ul);
	sl_cql_wr_u8(b, 0);
	sl_buf_append(b, password, pl);
}

void sl_cql_enc_register(struct sl_buf *b)
{
	const char *ev[] = {"TOPOLOGY_CHANGE", "STATUS_CHANGE", "SCHEMA_CHANGE"};
	sl_cql_wr_string_list(b, ev, 3);
}

void sl_cql_enc_prepare(struct sl_buf *b, const char *query, size_t len) { sl_cql_wr_long_string(b, query, len); }

void sl_cql_enc_qparams(struct sl_buf *b, const struct sl_cql_qparams *q)
{
	uint8_t flags = 0;
	if (q->nvalues > 0)
		flags |= SL_CQL_QF_VALUES;
	if (q->skip_metadata)
		flags |= SL_CQL_QF_SKIP_METADATA;
	if (q->page_size > 0)
		flags |= SL_CQL_QF_PAGE_SIZE;
	if (q->paging_state_len >= 0 && q->paging_state)
		flags |= SL_CQL_QF_PAGING_STATE;
	if (q->serial_consistency >= 0)
		flags |= SL_CQL_QF_SERIAL_CONSISTENCY;
	if (q->timestamp != INT64_MIN)
		flags |= SL_CQL_QF_TIMESTAMP;
	sl_cql_wr_u16(b, (uint16_t)q->consistency);
	sl_cql_wr_u8(b, flags);
	if (flags & SL_CQL_QF_VALUES) {
		sl_cql_wr_u16(b, (uint16_t)q->nvalues);
		sl_buf_append(b, q->values, q->values_len);
	}
	if (flags & SL_CQL_QF_PAGE_SIZE)
		sl_cql_wr_i32(b, q->page_size);
	if (flags & SL_CQL_QF_PAGING_STATE)
		sl_cql_wr_bytes(b, q->paging_state, q->paging_state_len);
	if (flags & SL_CQL_QF_SERIAL_CONSISTENCY)
		sl_cql_wr_u16(b, (uint16_t)q->serial_consistency);
	if (flags & SL_CQL_QF_TIMESTAMP)
		sl_cql_wr_i64(b, q->timestamp);
}

void sl_cql_enc_query(struct sl_buf *b, const char *query, size_t len, const struct sl_cql_qparams *q)
{
	sl_cql_wr_long_string(b, query, len);
	sl_cql_enc_qparams(b, q);
}

void sl_cql_enc_execute(struct sl_buf *b, const uint8_t *id, uint16_t idlen, const struct sl_cql_qparams *q)
{
	sl_cql_wr_short_bytes(b, id, idlen);
	sl_cql_enc_qparams(b, q);
}

/* ---- responses ---- */

int sl_cql_decode_prefix(struct sl_cql_rd *r, uint8_t flags, struct sl_arena *a, char ***warnings,
			 uint8_t tracing_id[16], bool *has_tracing, struct sl_err *e)
{
	if (warnings)
		*warnings = NULL;
	if (has_tracing)
		*has_tracing = false;
	if (flags & SL_CQL_FLAG_TRACING) {
		const uint8_t *id = sl_cql_rd_raw(r, 16);
		if (id && tracing_id)
			memcpy(tracing_id, id, 16);
		if (id && has_tracing)
			*has_tracing = true;
	}
	if (flags & SL_CQL_FLAG_WARNING) {
		int32_t n = sl_cql_rd_count(r, sl_cql_rd_u16(r), 2);
		char **w = NULL;
		if (a && warnings && n > 0) {
			w = sl_arena_alloc(a, sizeof *w * ((size_t)n + 1));
			if (!w)
				return sl_err_set(e, SL_ENOMEM, "out of memory decoding response warnings");
		}
		for (int32_t i = 0; i < n && !r->bad; i++) {
			if (w)
				w[i] = sl_cql_rd_string_dup(r, a);
			else {
				size_t len;
				sl_cql_rd_string(r, &len);
			}
		}
		if (w && !r->bad) {
			w[n] = NULL;
			*warnings = w;
		}
	}
	if (flags & SL_CQL_FLAG_CUSTOM_PAYLOAD)
		sl_cql_rd_skip_bytes_map(r);
	if (r->bad)
		return sl_err_set(e, SL_EPROTO, "malformed response: truncated tracing id, warnings or custom payload");
	return 0;
}

static void copy_string(struct sl_cql_rd *r, char *dst, size_t dstsz)
{
	size_t n;
	const char *s = sl_cql_rd_string(r, &n);
	if (n >= dstsz)
		n = dstsz - 1;
	memcpy(dst, s, n);
	dst[n] = '\0';
}

int sl_cql_decode_error(struct sl_cql_rd *r, struct sl_cql_error *er, struct sl_err *e)
{
	memset(er, 0, sizeof *er);
	er->code = sl_cql_rd_i32(r);
	copy_string(r, er->message, sizeof er->message);
	switch (er->code) {
	case SL_CQL_ERR_UNAVAILABLE:
		er->consistency = sl_cql_rd_u16(r);
		er->required = sl_cql_rd_i32(r);
		er->alive = sl_cql_rd_i32(r);
		break;
	case SL_CQL_ERR_WRITE_TIMEOUT:
		er->consistency = sl_cql_rd_u16(r);
		er->received = sl_cql_rd_i32(r);
		er->blockfor = sl_cql_rd_i32(r);
		copy_string(r, er->write_type, sizeof er->write_type);
		break;
	case SL_CQL_ERR_READ_TIMEOUT:
		er->consistency = sl_cql_rd_u16(r);
		er->received = sl_cql_rd_i32(r);
		er->blockfor = sl_cql_rd_i32(r);
		er->data_present = sl_cql_rd_u8(r) != 0;
		break;
	case SL_CQL_ERR_READ_FAILURE:
		er->consistency = sl_cql_rd_u16(r);
		er->received = sl_cql_rd_i32(r);
		er->blockfor = sl_cql_rd_i32(r);
		er->numfailures = sl_cql_rd_i32(r);
		er->data_present = sl_cql_rd_u8(r) != 0;
		break;
	case SL_CQL_ERR_WRITE_FAILURE:
		er->consistency = sl_cql_rd_u16(r);
		er->received = sl_cql_rd_i32(r);
		er->blockfor = sl_cql_rd_i32(r);
		er->numfailures = sl_cql_rd_i32(r);
		copy_string(r, er->write_type, sizeof er->write_type);
		break;
	case SL_CQL_ERR_FUNCTION_FAILURE:
		copy_string(r, er->keyspace, sizeof er->keyspace);
		copy_string(r, er->table, sizeof er->table);
		sl_cql_rd_skip_string_list(r);
		break;
	case SL_CQL_ERR_ALREADY_EXISTS:
		copy_string(r, er->keyspace, sizeof er->keyspace);
		copy_string(r, er->table, sizeof er->table);
		break;
	case SL_CQL_ERR_UNPREPARED: {
		uint16_t n;
		const uint8_t *id = sl_cql_rd_short_bytes(r, &n);
		if (id && n <= sizeof er->unprepared_id) {
			memcpy(er->unprepared_id, id, n);
			er->unprepared_id_len = n;
		} else if (id) {
			r->bad = true;
		}
		break;
	}
	default:
		break;
	}
	if (r->bad)
		return sl_err_set(e, SL_EPROTO, "malformed ERROR body (code 0x%04x)", (unsigned)er->code);
	return 0;
}

void sl_cql_error_describe(const struct sl_cql_error *er, char *out, size_t outsz)
{
	int n = snprintf(out, outsz, "%s (0x%04x): %s", sl_cql_error_name(er->code), (unsigned)er->code, er->message);
	if (n < 0 || (size_t)n >= outsz)
		return;
	out += n;
	outsz -= (size_t)n;
	switch (er->code) {
	case SL_CQL_ERR_UNAVAILABLE:
		snprintf(out, outsz, " [consistency %s needs %d replicas, %d alive]", sl_cql_consistency_name(er->consistency),
			 er->required, er->alive);
		break;
	case SL_CQL_ERR_WRITE_TIMEOUT:
		snprintf(out, outsz, " [consistency %s, %d of %d replicas acknowledged, write type %s]",
			 sl_cql_consistency_name(er->consistency), er->received, er->blockfor, er->write_type);
		break;
	case SL_CQL_ERR_READ_TIMEOUT:
		snprintf(out, outsz, " [consistency %s, %d of %d replicas answered, data %s]",
			 sl_cql_consistency_name(er->consistency), er->received, er->blockfor,
			 er->data_present ? "present" : "missing");
		break;
	case SL_CQL_ERR_READ_FAILURE:
	case SL_CQL_ERR_WRITE_FAILURE:
		snprintf(out, outsz, " [consistency %s, %d of %d replicas answered, %d failed%s%s]",
			 sl_cql_consistency_name(er->consistency), er->received, er->blockfor, er->numfailures,
			 er->write_type[0] ? ", write type " : "", er->write_type);
		break;
	default:
		break;
	}
}

struct sl_cql_type *sl_cql_decode_type(struct sl_cql_rd *r, struct sl_arena *a, int depth)
{
	if (depth > 32) {
		r->bad = true;
		return NULL;
	}
	struct sl_cql_type *t = sl_arena_alloc(a, sizeof *t);
	if (!t) {
		r->bad = true;
		return NULL;
	}
	memset(t, 0, sizeof *t);
	t->id = sl_cql_rd_u16(r);
	if (r->bad)
		return NULL;
	int n = 0;
	switch (t->id) {
	case SL_CQL_TYPE_CUSTOM:
		t->custom = sl_cql_rd_string_dup(r, a);
		/* v4 has no duration id: servers send it as this custom class. */
		if (t->custom && !strcmp(t->custom, "org.apache.cassandra.db.marshal.DurationType"))
			t->id = SL_CQL_TYPE_DURATION;
		return r->bad ? NULL : t;
	case SL_CQL_TYPE_LIST:
	case SL_CQL_TYPE_SET:
		n = 1;
		break;
	case SL_CQL_TYPE_MAP:
		n = 2;
		break;
	case SL_CQL_TYPE_UDT:
		t->custom = sl_cql_rd_string_dup(r, a);
		t->name = sl_cql_rd_string_dup(r, a);
		n = sl_cql_rd_count(r, sl_cql_rd_u16(r), 4);
		break;
	case SL_CQL_TYPE_TUPLE:
		n = sl_cql_rd_count(r, sl_cql_rd_u16(r), 2);
		break;
	default:
		if (t->id > SL_CQL_TYPE_DURATION || t->id == 0x000A) {
			r->bad = true; /* 0x000A was text before v3 and is no longer sent */
			return NULL;
		}
		return t;
	}
	if (r->bad)
		return NULL;
	t->n = (uint16_t)n;
	t->sub = sl_arena_alloc(a, sizeof *t->sub * (size_t)(n ? n : 1));
	if (t->id == SL_CQL_TYPE_UDT)
		t->field_names = sl_arena_alloc(a, sizeof *t->field_names * (size_t)(n ? n : 1));
	if (!t->sub || (t->id == SL_CQL_TYPE_UDT && !t->field_names)) {
		r->bad = true;
		return NULL;
	}
	for (int i = 0; i < n && !r->bad; i++) {
		if (t->id == SL_CQL_TYPE_UDT)
			t->field_names[i] = sl_cql_rd_string_dup(r, a);
		t->sub[i] = sl_cql_decode_type(r, a, depth + 1);
	}
	return r->bad ? NULL : t;
}

int sl_cql_decode_meta(struct sl_cql_rd *r, struct sl_arena *a, bool prepared, struct sl_cql_meta *m)
{
	memset(m, 0, sizeof *m);
	m->paging_state_len = -1;
	m->flags = sl_cql_rd_i32(r);
	m->ncols = sl_cql_rd_count(r, sl_cql_rd_i32(r), 0);
	/* Bind markers are counted in a [short] and tables are far narrower; a bigger count is corrupt even when
	 * NO_METADATA means no column specs follow to bound it. */
	if (m->ncols > UINT16_MAX)
		r->bad = true;
	if (prepared) {
		m->npk = sl_cql_rd_count(r, sl_cql_rd_i32(r), 2);
		if (m->npk > 0) {
			m->pk = sl_arena_alloc(a, sizeof *m->pk * (size_t)m->npk);
			if (!m->pk)
				return SL_ENOMEM;
			for (int32_t i = 0; i < m->npk; i++) {
				m->pk[i] = sl_cql_rd_u16(r);
				if (m->pk[i] >= m->ncols)
					r->bad = true;
			}
		}
	} else if (m->flags & SL_CQL_MF_HAS_MORE_PAGES) {
		m->paging_state = sl_cql_rd_bytes(r, &m->paging_state_len);
	}
	if (r->bad)
		return SL_EPROTO;
	if (m->flags & SL_CQL_MF_NO_METADATA)
		return 0;
	/* Each column spec takes at least a name and a type id: 4 bytes. */
	if (sl_cql_rd_count(r, m->ncols, 4) != m->ncols || r->bad)
		return SL_EPROTO;
	const char *gks = NULL, *gtable = NULL;
	if (m->flags & SL_CQL_MF_GLOBAL_TABLES) {
		gks = sl_cql_rd_string_dup(r, a);
		gtable = sl_cql_rd_string_dup(r, a);
	}
	if (m->ncols > 0) {
		m->cols = sl_arena_alloc(a, sizeof *m->cols * (size_t)m->ncols);
		if (!m->cols)
			return SL_ENOMEM;
	}
	for (int32_t i = 0; i < m->ncols && !r->bad; i++) {
		struct sl_cql_column *c = &m->cols[i];
		if (m->flags & SL_CQL_MF_GLOBAL_TABLES) {
			c->keyspace = gks;
			c->table = gtable;
		} else {
			c->keyspace = sl_cql_rd_string_dup(r, a);
			c->table = sl_cql_rd_string_dup(r, a);
		}
		c->name = sl_cql_rd_string_dup(r, a);
		c->type = sl_cql_decode_type(r, a, 0);
	}
	return r->bad ? SL_EPROTO : 0;
}

int sl_cql_decode_schema_change(struct sl_cql_rd *r, struct sl_arena *a, struct sl_cql_schema_change *sc)
{
	memset(sc, 0, sizeof *sc);
	sc->change = sl_cql_rd_string_dup(r, a);
	sc->target = sl_cql_rd_string_dup(r, a);
	if (r->bad)
		return SL_EPROTO;
	sc->keyspace = sl_cql_rd_string_dup(r, a);
	if (strcmp(sc->target, "KEYSPACE") != 0)
		sc->name = sl_cql_rd_string_dup(r, a);
	if (!strcmp(sc->target, "FUNCTION") || !strcmp(sc->target, "AGGREGATE")) {
		sc->nargs = sl_cql_rd_count(r, sl_cql_rd_u16(r), 2);
		if (sc->nargs > 0) {
			sc->args = sl_arena_alloc(a, sizeof *sc->args * (size_t)sc->nargs);
			if (!sc->args)
				return SL_ENOMEM;
			for (int i = 0; i < sc->nargs; i++)
				sc->args[i] = sl_cql_rd_string_dup(r, a);
		}
	}
	return r->bad ? SL_EPROTO : 0;
}

/* Walks one [bytes] cell: checks that it fits. */
static bool skip_cells(struct sl_cql_rd *r, int32_t nrows, int32_t ncols)
{
	for (int32_t i = 0; i < nrows; i++)
		for (int32_t j = 0; j < ncols; j++) {
			int32_t len;
			sl_cql_rd_bytes(r, &len);
			if (r->bad)
				return false;
		}
	return true;
}

int sl_cql_result_decode(struct sl_cql_result **out, uint8_t *body, size_t len, uint8_t flags, struct sl_err *e)
{
	*out = NULL;
	struct sl_cql_result *res = calloc(1, sizeof *res);
	if (!res) {
		free(body);
		return sl_err_set(e, SL_ENOMEM, "out of memory decoding a RESULT");
	}
	sl_arena_init(&res->arena, len < 2048 ? 2048 : 8192);
	res->body = body;
	res->body_len = len;
	struct sl_cql_rd r;
	sl_cql_rd_init(&r, body, len);
	int rc = sl_cql_decode_prefix(&r, flags, &res->arena, &res->warnings, res->tracing_id, &res->has_tracing, e);
	if (rc < 0)
		goto fail;
	res->kind = sl_cql_rd_i32(&r);
	rc = SL_EPROTO;
	switch (res->kind) {
	case SL_CQL_RESULT_VOID:
		break;
	case SL_CQL_RESULT_ROWS: {
		rc = sl_cql_decode_meta(&r, &res->arena, false, &res->meta);
		if (rc < 0)
			goto bad;
		res->nrows = sl_cql_rd_count(&r, sl_cql_rd_i32(&r), 0);
		if (r.bad)
			goto bad;
		/* Every cell is at least its 4-byte length; checked before the walk so a huge count fails fast. */
		if (res->meta.ncols > 0 && (size_t)res->nrows > sl_cql_rd_left(&r) / 4 / (size_t)res->meta.ncols)
			goto bad;
		if (res->meta.ncols == 0 && res->nrows > 0)
			goto bad; /* a row without columns cannot exist, and would let a count spin for nothing */
		res->rows = r.p;
		if (!skip_cells(&r, res->nrows, res->meta.ncols))
			goto bad;
		res->rows_end = r.p;
		break;
	}
	case SL_CQL_RESULT_SET_KEYSPACE:
		res->keyspace = sl_cql_rd_string_dup(&r, &res->arena);
		break;
	case SL_CQL_RESULT_PREPARED:
		res->prepared_id = sl_cql_rd_short_bytes(&r, &res->prepared_id_len);
		if (r.bad || sl_cql_decode_meta(&r, &res->arena, true, &res->meta) < 0 ||
		    sl_cql_decode_meta(&r, &res->arena, false, &res->result_meta) < 0)
			goto bad;
		break;
	case SL_CQL_RESULT_SCHEMA_CHANGE:
		if (sl_cql_decode_schema_change(&r, &res->arena, &res->change) < 0)
			goto bad;
		break;
	default:
		sl_err_set(e, SL_EPROTO, "RESULT of unknown kind %d", res->kind);
		goto fail;
	}
	if (r.bad)
		goto bad;
	*out = res;
	return 0;
bad:
	rc = sl_err_set(e, SL_EPROTO, "malformed RESULT (kind %d): a length runs past the end of the %zu-byte body",
			res->kind, len);
fail:
	sl_cql_result_free(res);
	return rc;
}

void sl_cql_result_free(struct sl_cql_result *r)
{
	if (!r)
		return;
	sl_arena_free(&r->arena);
	free(r->body);
	free(r);
}

int sl_cql_decode_event(struct sl_cql_rd *r, struct sl_cql_event *ev, struct sl_err *e)
{
	memset(ev, 0, sizeof *ev);
	char type[32];
	copy_string(r, type, sizeof type);
	if (!strcmp(type, "TOPOLOGY_CHANGE") || !strcmp(type, "STATUS_CHANGE")) {
		ev->kind = type[0] == 'T' ? SL_CQL_EVENT_TOPOLOGY : SL_CQL_EVENT_STATUS;
		copy_string(r, ev->change, sizeof ev->change);
		sl_cql_rd_inet(r, &ev->addr);
	} else if (!strcmp(type, "SCHEMA_CHANGE")) {
		ev->kind = SL_CQL_EVENT_SCHEMA;
		copy_string(r, ev->change, sizeof ev->change);
		copy_string(r, ev->target, sizeof ev->target);
		copy_string(r, ev->keyspace, sizeof ev->keyspace);
		if (strcmp(ev->target, "KEYSPACE") != 0)
			copy_string(r, ev->name, sizeof ev->name);
		if (!strcmp(ev->target, "FUNCTION") || !strcmp(ev->target, "AGGREGATE"))
			sl_cql_rd_skip_string_list(r);
	} else if (!r->bad) {
		return sl_err_set(e, SL_EPROTO, "EVENT of unknown type '%s'", type);
	}
	if (r->bad)
		return sl_err_set(e, SL_EPROTO, "malformed EVENT body");
	return 0;
}

int sl_cql_decode_authenticate(struct sl_cql_rd *r, char *cls, size_t clssz, struct sl_err *e)
{
	copy_string(r, cls, clssz);
	if (r->bad)
		return sl_err_set(e, SL_EPROTO, "malformed AUTHENTICATE body");
	return 0;
}

int sl_cql_decode_supported(struct sl_cql_rd *r, bool *lz4, struct sl_err *e)
{
	*lz4 = false;
	int32_t n = sl_cql_rd_count(r, sl_cql_rd_u16(r), 4);
	for (int32_t i = 0; i < n && !r->bad; i++) {
		size_t klen;
		const char *k = sl_cql_rd_string(r, &klen);
		bool is_comp = klen == 11 && !memcmp(k, "COMPRESSION", 11);
		int32_t m = sl_cql_rd_count(r, sl_cql_rd_u16(r), 2);
		for (int32_t j = 0; j < m && !r->bad; j++) {
			size_t vlen;
			const char *v = sl_cql_rd_string(r, &vlen);
			if (is_comp && vlen == 3 && !memcmp(v, "lz4", 3))
				*lz4 = true;
		}
	}
	if (r->bad)
		return sl_err_set(e, SL_EPROTO, "malformed SUPPORTED body");
	return 0;
}

/* ---- lz4 ---- */

int sl_cql_lz4_compress(struct sl_buf *out, const uint8_t *in, size_t n)
{
	if (n > (size_t)LZ4_MAX_INPUT_SIZE)
		return SL_ETOOBIG;
	int bound = LZ4_compressBound((int)n);
	char *d = sl_buf_reserve(out, 4 + (size_t)bound);
	if (!d)
		return SL_ENOMEM;
	sl_cql_put_u32((uint8_t *)d, (uint32_t)n);
	int c = LZ4_compress_default((const char *)in, d + 4, (int)n, bound);
	if (c <= 0 && n > 0)
		return SL_EIO;
	SL_ASSERT(c <= bound); /* inside what sl_buf_reserve gave */
	out->len += 4 + (size_t)c;
	return 0;
}

int sl_cql_lz4_decompress(const uint8_t *in, size_t n, uint8_t **out, size_t *outlen, struct sl_err *e)
{
	*out = NULL;
	*outlen = 0;
	if (n < 4)
		return sl_err_set(e, SL_EPROTO, "lz4 body of %zu bytes has no length prefix", n);
	uint32_t ulen = sl_cql_get_u32(in);
	if (ulen > SL_CQL_MAX_BODY)
		return sl_err_set(e, SL_EPROTO, "lz4 body claims %u uncompressed bytes, over the 256 MiB limit", ulen);
	uint8_t *d = malloc(ulen ? ulen : 1);
	if (!d)
		return sl_err_set(e, SL_ENOMEM, "out of memory for a %u-byte decompressed body", ulen);
	if (n - 4 > (size_t)INT32_MAX) {
		free(d);
		return sl_err_set(e, SL_EPROTO, "lz4 body too large");
	}
	int got = LZ4_decompress_safe((const char *)in + 4, (char *)d, (int)(n - 4), (int)ulen);
	if (got < 0 || (uint32_t)got != ulen) {
		free(d);
		return sl_err_set(e, SL_EPROTO, "corrupt lz4 body (%d of %u bytes decoded)", got, ulen);
	}
	*out = d;
	*outlen = ulen;
	return 0;
}
