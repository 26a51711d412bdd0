/* Statements, bound values, batches, prepared statements and futures: everything a user thread builds before the
 * I/O thread sends it. Binding checks a value against the prepared column's type, so a mismatch is reported here
 * with the column's name instead of as a server "Invalid query" later. EXECUTE and BATCH bodies are encoded on the
 * caller's thread so the I/O thread only frames and writes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "cql/internal.h"
#include "cql/types.h"

#define SLOT_NULL (-1)
#define SLOT_UNSET (-2)

void sl_cql_describe(char *out, const char *query, size_t len)
{
	/* One line, trimmed: enough of the statement for a user to recognise it in a log. */
	size_t j = 0;
	bool space = false;
	for (size_t i = 0; i < len && j + 4 < SL_CQL_DESC_MAX; i++) {
		char ch = query[i];
		if (ch == '\n' || ch == '\t' || ch == '\r' || ch == ' ') {
			space = j > 0;
			continue;
		}
		if (space)
			out[j++] = ' ';
		space = false;
		out[j++] = ch;
	}
	if (j + 4 >= SL_CQL_DESC_MAX && len > j) {
		memcpy(out + j, "...", 3);
		j += 3;
	}
	out[j] = '\0';
}

/* ---- futures ---- */

struct sl_cql_future *sl_cql_future_new(void)
{
	struct sl_cql_future *f = calloc(1, sizeof *f);
	if (!f)
		return NULL;
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv, NULL);
	f->refs = 2; /* the caller's and the request's */
	f->server_code = -1;
	return f;
}

static void future_unref(struct sl_cql_future *f)
{
	pthread_mutex_lock(&f->mu);
	int left = --f->refs;
	pthread_mutex_unlock(&f->mu);
	if (left)
		return;
	sl_cql_result_free(f->result);
	pthread_mutex_destroy(&f->mu);
	pthread_cond_destroy(&f->cv);
	free(f);
}

void sl_cql_future_complete(struct sl_cql_future *f, int rc, const struct sl_err *err, int32_t server_code,
			    bool retryable, struct sl_cql_result *result, struct sl_cql_prepared *prepared)
{
	pthread_mutex_lock(&f->mu);
	f->rc = rc;
	if (rc < 0 && err) {
		f->err = *err;
		f->err.code = rc;
	} else if (rc < 0) {
		sl_err_set(&f->err, rc, "%s", sl_strerror(rc));
	}
	f->server_code = server_code;
	f->retryable = retryable;
	f->result = result;
	f->prepared = prepared;
	f->done = true;
	sl_cql_future_cb cb = f->cb;
	void *data = f->cb_data;
	f->cb = NULL;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
	if (cb)
		cb(f, data);
	future_unref(f);
}

int sl_cql_future_wait(struct sl_cql_future *f)
{
	pthread_mutex_lock(&f->mu);
	while (!f->done)
		pthread_cond_wait(&f->cv, &f->mu);
	int rc = f->rc;
	pthread_mutex_unlock(&f->mu);
	return rc;
}

int sl_cql_future_wait_timed(struct sl_cql_future *f, int timeout_ms)
{
	struct timespec ts;
	sl_deadline(&ts, CLOCK_REALTIME, timeout_ms);
	pthread_mutex_lock(&f->mu);
	while (!f->done)
		if (pthread_cond_timedwait(&f->cv, &f->mu, &ts) != 0)
			break;
	int rc = f->done ? f->rc : SL_ETIMEDOUT;
	pthread_mutex_unlock(&f->mu);
	return rc;
}

bool sl_cql_future_ready(struct sl_cql_future *f)
{
	pthread_mutex_lock(&f->mu);
	bool d = f->done;
	pthread_mutex_unlock(&f->mu);
	return d;
}

void sl_cql_future_set_callback(struct sl_cql_future *f, sl_cql_future_cb cb, void *data)
{
	pthread_mutex_lock(&f->mu);
	if (!f->done) {
		f->cb = cb;
		f->cb_data = data;
		/* The callback may release the user's reference; keep the future alive until it has run. */
		pthread_mutex_unlock(&f->mu);
		return;
	}
	pthread_mutex_unlock(&f->mu);
	cb(f, data);
}

int sl_cql_future_rc(struct sl_cql_future *f) { return sl_cql_future_wait(f); }

const struct sl_err *sl_cql_future_error(struct sl_cql_future *f)
{
	sl_cql_future_wait(f);
	return &f->err;
}

int32_t sl_cql_future_server_code(struct sl_cql_future *f)
{
	sl_cql_future_wait(f);
	return f->server_code;
}

bool sl_cql_future_retryable(struct sl_cql_future *f)
{
	sl_cql_future_wait(f);
	return f->retryable;
}

const struct sl_cql_result *sl_cql_future_result(struct sl_cql_future *f)
{
	sl_cql_future_wait(f);
	return f->result;
}

struct sl_cql_result *sl_cql_future_take_result(struct sl_cql_future *f)
{
	sl_cql_future_wait(f);
	pthread_mutex_lock(&f->mu);
	struct sl_cql_result *r = f->result;
	f->result = NULL;
	pthread_mutex_unlock(&f->mu);
	return r;
}

struct sl_cql_prepared *sl_cql_future_prepared(struct sl_cql_future *f)
{
	sl_cql_future_wait(f);
	return f->prepared;
}

void sl_cql_future_release(struct sl_cql_future *f)
{
	if (f)
		future_unref(f);
}

/* ---- prepared ---- */

struct sl_cql_prepared *sl_cql_prepared_from_result(const char *query, struct sl_cql_result *res, const char *ks)
{
	struct sl_cql_prepared *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->query_len = strlen(query);
	p->query = strdup(query);
	sl_cql_describe(p->desc, query, p->query_len);
	if (!p->query || res->prepared_id_len > sizeof p->id) {
		free(p->query);
		free(p);
		return NULL;
	}
	pthread_mutex_init(&p->mu, NULL);
	p->res = res;
	memcpy(p->id, res->prepared_id, res->prepared_id_len);
	p->idlen = res->prepared_id_len;
	const char *pks = NULL;
	if (res->meta.ncols > 0 && res->meta.cols)
		pks = res->meta.cols[0].keyspace;
	snprintf(p->keyspace, sizeof p->keyspace, "%s", pks && *pks ? pks : ks ? ks : "");
	return p;
}

void sl_cql_prepared_free(struct sl_cql_prepared *p)
{
	if (!p)
		return;
	sl_cql_result_free(p->res);
	pthread_mutex_destroy(&p->mu);
	free(p->query);
	free(p);
}

int sl_cql_prepared_param_count(const struct sl_cql_prepared *p) { return p->res->meta.ncols; }

const struct sl_cql_column *sl_cql_prepared_param(const struct sl_cql_prepared *p, int i)
{
	return sl_cql_result_column(p->res, i);
}

const char *sl_cql_prepared_query(const struct sl_cql_prepared *p) { return p->query; }

/* ---- statements ---- */

static struct sl_cql_statement *stmt_alloc(int nvalues)
{
	struct sl_cql_statement *st = calloc(1, sizeof *st);
	if (!st)
		return NULL;
	if (nvalues > 0) {
		st->slots = malloc(sizeof *st->slots * (size_t)nvalues);
		if (!st->slots) {
			free(st);
			return NULL;
		}
	}
	st->nvalues = nvalues;
	for (int i = 0; i < nvalues; i++)
		st->slots[i] = (struct sl_cql_slot){0, SLOT_UNSET};
	sl_buf_init(&st->values);
	st->consistency = -1;
	st->serial_consistency = -1;
	st->paging_state_len = -1;
	st->timestamp = INT64_MIN;
	return st;
}

struct sl_cql_statement *sl_cql_statement_new(const char *query, int nvalues)
{
	struct sl_cql_statement *st = stmt_alloc(nvalues < 0 ? 0 : nvalues);
	if (!st)
		return NULL;
	st->query_len = strlen(query);
	st->query = strdup(query);
	if (!st->query) {
		sl_cql_statement_free(st);
		return NULL;
	}
	return st;
}

struct sl_cql_statement *sl_cql_prepared_bind(struct sl_cql_prepared *p)
{
	struct sl_cql_statement *st = stmt_alloc(p->res->meta.ncols);
	if (st)
		st->prepared = p;
	return st;
}

void sl_cql_statement_free(struct sl_cql_statement *st)
{
	if (!st)
		return;
	free(st->query);
	free(st->slots);
	free(st->paging_state);
	free(st->routing_key);
	sl_buf_free(&st->values);
	free(st);
}

void sl_cql_statement_reset(struct sl_cql_statement *st)
{
	for (int i = 0; i < st->nvalues; i++)
		st->slots[i] = (struct sl_cql_slot){0, SLOT_UNSET};
	sl_buf_reset(&st->values);
	free(st->paging_state);
	st->paging_state = NULL;
	st->paging_state_len = -1;
}

void sl_cql_statement_set_consistency(struct sl_cql_statement *st, int cl) { st->consistency = cl; }
void sl_cql_statement_set_serial_consistency(struct sl_cql_statement *st, int cl) { st->serial_consistency = cl; }
void sl_cql_statement_set_idempotent(struct sl_cql_statement *st, bool idem) { st->idempotent = idem; }
void sl_cql_statement_set_page_size(struct sl_cql_statement *st, int32_t n) { st->page_size = n; }
void sl_cql_statement_set_timeout(struct sl_cql_statement *st, int ms) { st->timeout_ms = ms; }
void sl_cql_statement_set_timestamp(struct sl_cql_statement *st, int64_t usec) { st->timestamp = usec; }

int sl_cql_statement_set_paging_state(struct sl_cql_statement *st, const struct sl_cql_result *from)
{
	free(st->paging_state);
	st->paging_state = NULL;
	st->paging_state_len = -1;
	if (!sl_cql_result_has_more_pages(from))
		return SL_ENOTFOUND;
	st->paging_state = malloc(from->meta.paging_state_len ? (size_t)from->meta.paging_state_len : 1);
	if (!st->paging_state)
		return SL_ENOMEM;
	memcpy(st->paging_state, from->meta.paging_state, (size_t)from->meta.paging_state_len);
	st->paging_state_len = from->meta.paging_state_len;
	return 0;
}

int sl_cql_statement_set_paging_state_raw(struct sl_cql_statement *st, const void *state, size_t len)
{
	free(st->paging_state);
	st->paging_state = NULL;
	st->paging_state_len = -1;
	if (!state)
		return 0;
	if (len > INT32_MAX)
		return SL_EINVAL;
	st->paging_state = malloc(len ? len : 1);
	if (!st->paging_state)
		return SL_ENOMEM;
	memcpy(st->paging_state, state, len);
	st->paging_state_len = (int32_t)len;
	return 0;
}

int sl_cql_statement_set_routing_key(struct sl_cql_statement *st, const char *keyspace, const void *key, size_t len)
{
	free(st->routing_key);
	st->routing_key = malloc(len ? len : 1);
	if (!st->routing_key)
		return SL_ENOMEM;
	memcpy(st->routing_key, key, len);
	st->routing_key_len = len;
	snprintf(st->routing_ks, sizeof st->routing_ks, "%s", keyspace ? keyspace : "");
	return 0;
}

/* Which bind functions a column type accepts. */
enum { K_NULL, K_I8, K_I16, K_I32, K_I64, K_U32, K_BOOL, K_FLOAT, K_DOUBLE, K_TEXT, K_BYTES, K_UUID, K_INET,
       K_VARINT, K_DECIMAL, K_DURATION, K_COLL };

static bool accepts(int type, int kind)
{
	switch (kind) {
	case K_NULL: case K_BYTES: return true; /* null/unset, and raw encodings, fit every column */
	case K_I8: return type == SL_CQL_TYPE_TINYINT;
	case K_I16: return type == SL_CQL_TYPE_SMALLINT;
	case K_I32: return type == SL_CQL_TYPE_INT;
	case K_I64: return type == SL_CQL_TYPE_BIGINT || type == SL_CQL_TYPE_COUNTER || type == SL_CQL_TYPE_TIMESTAMP ||
			   type == SL_CQL_TYPE_TIME;
	case K_U32: return type == SL_CQL_TYPE_DATE;
	case K_BOOL: return type == SL_CQL_TYPE_BOOLEAN;
	case K_FLOAT: return type == SL_CQL_TYPE_FLOAT;
	case K_DOUBLE: return type == SL_CQL_TYPE_DOUBLE;
	case K_TEXT: return type == SL_CQL_TYPE_VARCHAR || type == SL_CQL_TYPE_ASCII;
	case K_UUID: return type == SL_CQL_TYPE_UUID || type == SL_CQL_TYPE_TIMEUUID;
	case K_INET: return type == SL_CQL_TYPE_INET;
	case K_VARINT: return type == SL_CQL_TYPE_VARINT;
	case K_DECIMAL: return type == SL_CQL_TYPE_DECIMAL;
	case K_DURATION: return type == SL_CQL_TYPE_DURATION;
	case K_COLL: return type == SL_CQL_TYPE_LIST || type == SL_CQL_TYPE_SET || type == SL_CQL_TYPE_MAP ||
			    type == SL_CQL_TYPE_TUPLE || type == SL_CQL_TYPE_UDT;
	}
	return false;
}

static int check(struct sl_cql_statement *st, int i, int kind)
{
	if (i < 0 || i >= st->nvalues)
		return SL_EINVAL;
	if (st->prepared) {
		const struct sl_cql_column *c = sl_cql_result_column(st->prepared->res, i);
		if (c && c->type && !accepts(c->type->id, kind))
			return SL_ETYPE;
	}
	return 0;
}

static int put(struct sl_cql_statement *st, int i, int kind, const void *p, size_t len)
{
	int rc = check(st, i, kind);
	if (rc < 0)
		return rc;
	if (len > INT32_MAX || st->values.len > (size_t)INT32_MAX - len)
		return SL_ETOOBIG;
	st->slots[i].off = (int32_t)st->values.len;
	st->slots[i].len = (int32_t)len;
	sl_buf_append(&st->values, p, len);
	return sl_buf_ok(&st->values) ? 0 : SL_ENOMEM;
}

int sl_cql_bind_null(struct sl_cql_statement *st, int i)
{
	int rc = check(st, i, K_NULL);
	if (!rc)
		st->slots[i].len = SLOT_NULL;
	return rc;
}

int sl_cql_bind_unset(struct sl_cql_statement *st, int i)
{
	int rc = check(st, i, K_NULL);
	if (!rc)
		st->slots[i].len = SLOT_UNSET;
	return rc;
}

int sl_cql_bind_int8(struct sl_cql_statement *st, int i, int8_t v) { return put(st, i, K_I8, &v, 1); }

int sl_cql_bind_int16(struct sl_cql_statement *st, int i, int16_t v)
{
	uint8_t b[2];
	sl_cql_put_u16(b, (uint16_t)v);
	return put(st, i, K_I16, b, 2);
}

int sl_cql_bind_int32(struct sl_cql_statement *st, int i, int32_t v)
{
	uint8_t b[4];
	sl_cql_put_u32(b, (uint32_t)v);
	return put(st, i, K_I32, b, 4);
}

int sl_cql_bind_uint32(struct sl_cql_statement *st, int i, uint32_t v)
{
	uint8_t b[4];
	sl_cql_put_u32(b, v);
	return put(st, i, K_U32, b, 4);
}

int sl_cql_bind_int64(struct sl_cql_statement *st, int i, int64_t v)
{
	uint8_t b[8];
	sl_cql_put_be64(b, (uint64_t)v);
	return put(st, i, K_I64, b, 8);
}

int sl_cql_bind_bool(struct sl_cql_statement *st, int i, bool v)
{
	uint8_t b = v ? 1 : 0;
	return put(st, i, K_BOOL, &b, 1);
}

int sl_cql_bind_float(struct sl_cql_statement *st, int i, float v)
{
	uint32_t u;
	memcpy(&u, &v, 4);
	uint8_t b[4];
	sl_cql_put_u32(b, u);
	return put(st, i, K_FLOAT, b, 4);
}

int sl_cql_bind_double(struct sl_cql_statement *st, int i, double v)
{
	uint64_t u;
	memcpy(&u, &v, 8);
	uint8_t b[8];
	sl_cql_put_be64(b, u);
	return put(st, i, K_DOUBLE, b, 8);
}

int sl_cql_bind_text(struct sl_cql_statement *st, int i, const char *s, size_t len)
{
	return put(st, i, K_TEXT, s, len);
}

int sl_cql_bind_str(struct sl_cql_statement *st, int i, const char *s)
{
	return s ? put(st, i, K_TEXT, s, strlen(s)) : sl_cql_bind_null(st, i);
}

int sl_cql_bind_bytes(struct sl_cql_statement *st, int i, const void *p, size_t len)
{
	return put(st, i, K_BYTES, p, len);
}

int sl_cql_bind_uuid(struct sl_cql_statement *st, int i, const uint8_t uuid[16]) { return put(st, i, K_UUID, uuid, 16); }

int sl_cql_bind_inet(struct sl_cql_statement *st, int i, const uint8_t *addr, size_t len)
{
	if (len != 4 && len != 16)
		return SL_EINVAL;
	return put(st, i, K_INET, addr, len);
}

int sl_cql_bind_varint(struct sl_cql_statement *st, int i, int64_t v)
{
	uint8_t b[8];
	size_t n = sl_cql_varint_from_int64(v, b);
	return put(st, i, K_VARINT, b, n);
}

int sl_cql_bind_decimal(struct sl_cql_statement *st, int i, const uint8_t *unscaled, size_t len, int32_t scale)
{
	if (len == 0 || len > 4096)
		return SL_EINVAL;
	uint8_t b[4 + 4096];
	sl_cql_put_u32(b, (uint32_t)scale);
	memcpy(b + 4, unscaled, len);
	return put(st, i, K_DECIMAL, b, 4 + len);
}

int sl_cql_bind_duration(struct sl_cql_statement *st, int i, int32_t months, int32_t days, int64_t nanos)
{
	uint8_t b[27];
	size_t n = sl_cql_duration_encode(b, months, days, nanos);
	return put(st, i, K_DURATION, b, n);
}

int sl_cql_bind_coll(struct sl_cql_statement *st, int i, const struct sl_cql_coll *c)
{
	struct sl_buf b;
	sl_buf_init(&b);
	int rc = sl_cql_coll_encode(c, &b);
	if (!rc)
		rc = put(st, i, K_COLL, b.data, b.len);
	sl_buf_free(&b);
	return rc;
}

static void encode_values(const struct sl_cql_statement *st, struct sl_buf *out)
{
	/* Sized once: growing by doubling cost every request a few reallocs and copies. */
	size_t need = 0;
	for (int i = 0; i < st->nvalues; i++)
		need += 4 + (st->slots[i].len > 0 ? (size_t)st->slots[i].len : 0);
	sl_buf_reserve(out, need);
	for (int i = 0; i < st->nvalues; i++) {
		const struct sl_cql_slot *sl = &st->slots[i];
		if (sl->len < 0)
			sl_cql_wr_i32(out, sl->len);
		else
			sl_cql_wr_bytes(out, st->values.data + sl->off, sl->len);
	}
}

/* The partition key of a bound statement, in the prepared pk order; false when a component is not bound. */
static bool routing_token(const struct sl_cql_statement *st, int64_t *token)
{
	if (!st->prepared) {
		if (!st->routing_key)
			return false;
		*token = sl_cql_murmur3_token(st->routing_key, st->routing_key_len);
		return true;
	}
	const struct sl_cql_meta *m = &st->prepared->res->meta;
	if (m->npk <= 0 || m->npk > 16)
		return false;
	const uint8_t *parts[16];
	size_t lens[16];
	for (int k = 0; k < m->npk; k++) {
		const struct sl_cql_slot *sl = &st->slots[m->pk[k]];
		if (sl->len < 0)
			return false;
		parts[k] = (const uint8_t *)st->values.data + sl->off;
		lens[k] = (size_t)sl->len;
	}
	if (m->npk == 1) {
		*token = sl_cql_murmur3_token(parts[0], lens[0]);
		return true;
	}
	struct sl_buf b;
	sl_buf_init(&b);
	if (sl_cql_routing_key(&b, parts, lens, m->npk) < 0) {
		sl_buf_free(&b);
		return false;
	}
	*token = sl_cql_murmur3_token(b.data, b.len);
	sl_buf_free(&b);
	return true;
}

int sl_cql_statement_token(const struct sl_cql_statement *st, int64_t *token)
{
	return routing_token(st, token) ? 0 : SL_ENOTFOUND;
}

int sl_cql_statement_encode(const struct sl_cql_statement *st, int default_cl, struct sl_cql_req *r, struct sl_err *e)
{
	struct sl_buf vals;
	sl_buf_init(&vals);
	encode_values(st, &vals);
	sl_buf_reserve(&r->body, vals.len + 128 + (st->prepared ? 0 : st->query_len)); /* the frame around them */
	struct sl_cql_qparams q = {
		.consistency = st->consistency >= 0 ? st->consistency : default_cl,
		.serial_consistency = st->serial_consistency,
		.values = (const uint8_t *)vals.data,
		.values_len = vals.len,
		.nvalues = st->nvalues,
		.page_size = st->page_size,
		.paging_state = st->paging_state,
		.paging_state_len = st->paging_state_len,
		.timestamp = st->timestamp,
	};
	if (st->prepared) {
		struct sl_cql_prepared *p = st->prepared;
		pthread_mutex_lock(&p->mu);
		sl_cql_enc_execute(&r->body, p->id, p->idlen, &q);
		pthread_mutex_unlock(&p->mu);
		r->opcode = SL_CQL_OP_EXECUTE;
		r->prepared = p;
		r->desc_ref = p->desc;
		snprintf(r->keyspace, sizeof r->keyspace, "%s", p->keyspace);
	} else {
		sl_cql_enc_query(&r->body, st->query, st->query_len, &q);
		r->opcode = SL_CQL_OP_QUERY;
		sl_cql_describe(r->desc, st->query, st->query_len);
		snprintf(r->keyspace, sizeof r->keyspace, "%s", st->routing_ks);
	}
	bool ok = sl_buf_ok(&vals);
	sl_buf_free(&vals);
	if (!ok || !sl_buf_ok(&r->body))
		return sl_err_set(e, SL_ENOMEM, "out of memory encoding statement: %s", sl_cql_req_desc(r));
	r->has_token = routing_token(st, &r->token);
	r->idempotent = st->idempotent;
	r->timeout_ms = st->timeout_ms;
	return 0;
}

/* ---- batches ---- */

struct sl_cql_batch *sl_cql_batch_new(int type)
{
	struct sl_cql_batch *b = calloc(1, sizeof *b);
	if (!b)
		return NULL;
	b->type = type;
	b->consistency = -1;
	sl_buf_init(&b->entries);
	return b;
}

void sl_cql_batch_free(struct sl_cql_batch *b)
{
	if (!b)
		return;
	sl_buf_free(&b->entries);
	free(b);
}

int sl_cql_batch_add(struct sl_cql_batch *b, const struct sl_cql_statement *st)
{
	if (b->count >= UINT16_MAX)
		return SL_EFULL;
	if (st->prepared) {
		sl_cql_wr_u8(&b->entries, 1);
		pthread_mutex_lock(&st->prepared->mu);
		sl_cql_wr_short_bytes(&b->entries, st->prepared->id, st->prepared->idlen);
		pthread_mutex_unlock(&st->prepared->mu);
	} else {
		sl_cql_wr_u8(&b->entries, 0);
		sl_cql_wr_long_string(&b->entries, st->query, st->query_len);
	}
	sl_cql_wr_u16(&b->entries, (uint16_t)st->nvalues);
	encode_values(st, &b->entries);
	if (!sl_buf_ok(&b->entries))
		return SL_ENOMEM;
	if (b->count == 0) {
		int64_t t;
		b->has_token = routing_token(st, &t);
		b->token = t;
		const char *q = st->prepared ? st->prepared->query : st->query;
		sl_cql_describe(b->desc, q, strlen(q));
		snprintf(b->keyspace, sizeof b->keyspace, "%s", st->prepared ? st->prepared->keyspace : st->routing_ks);
	}
	b->count++;
	return 0;
}

int sl_cql_batch_count(const struct sl_cql_batch *b) { return b->count; }
size_t sl_cql_batch_bytes(const struct sl_cql_batch *b) { return b->entries.len; }

void sl_cql_batch_clear(struct sl_cql_batch *b)
{
	sl_buf_reset(&b->entries);
	b->count = 0;
	b->has_token = false;
}

void sl_cql_batch_set_consistency(struct sl_cql_batch *b, int cl) { b->consistency = cl; }
void sl_cql_batch_set_idempotent(struct sl_cql_batch *b, bool idem) { b->idempotent = idem; }
void sl_cql_batch_set_timeout(struct sl_cql_batch *b, int ms) { b->timeout_ms = ms; }

int sl_cql_batch_encode(const struct sl_cql_batch *b, int default_cl, struct sl_cql_req *r, struct sl_err *e)
{
	if (b->count == 0)
		return sl_err_set(e, SL_EINVAL, "batch has no statements");
	sl_cql_wr_u8(&r->body, (uint8_t)b->type);
	sl_cql_wr_u16(&r->body, (uint16_t)b->count);
	sl_buf_append(&r->body, b->entries.data, b->entries.len);
	sl_cql_wr_u16(&r->body, (uint16_t)(b->consistency >= 0 ? b->consistency : default_cl));
	sl_cql_wr_u8(&r->body, 0);
	if (!sl_buf_ok(&r->body))
		return sl_err_set(e, SL_ENOMEM, "out of memory encoding batch");
	r->opcode = SL_CQL_OP_BATCH;
	snprintf(r->desc, sizeof r->desc, "BATCH of %d: %s", b->count, b->desc);
	snprintf(r->keyspace, sizeof r->keyspace, "%s", b->keyspace);
	r->has_token = b->has_token;
	r->token = b->token;
	r->idempotent = b->idempotent;
	r->timeout_ms = b->timeout_ms;
	return 0;
}
