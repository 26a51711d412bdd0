// The only C++ in the JSON path: simdjson's DOM parser behind the C API of json.h. This file owns the mapping from
// simdjson types and error codes to sluice's; everything that can be written in C on top of that API (path syntax,
// rendering, error offsets) lives in json.c. No exception crosses into C: simdjson's error-code API is used throughout
// and the few calls that allocate are guarded.
#include <simdjson.h>

#include <cstring>
#include <new>
#include <type_traits>

extern "C" {
#include "codec/json.h"
}

using simdjson::dom::element;
using simdjson::dom::element_type;

// A handle is the bytes of a dom::element (a document pointer and a tape index); iterators are two dom iterators.
static_assert(sizeof(element) <= sizeof(sl_json_val), "dom::element does not fit sl_json_val");
static_assert(std::is_trivially_copyable<element>::value, "dom::element must be trivially copyable");
static_assert(sizeof(simdjson::dom::array::iterator) * 2 <= sizeof(sl_json_iter), "array iterator too big");
static_assert(sizeof(simdjson::dom::object::iterator) * 2 <= sizeof(sl_json_iter), "object iterator too big");
static_assert(std::is_trivially_copyable<simdjson::dom::array::iterator>::value, "array iterator not trivial");
static_assert(std::is_trivially_copyable<simdjson::dom::object::iterator>::value, "object iterator not trivial");

struct sl_json_parser {
	simdjson::dom::parser parser;
	size_t max_bytes;
	explicit sl_json_parser(size_t max) : parser(max), max_bytes(max) {}
};

static inline element to_el(sl_json_val v)
{
	element e;
	std::memcpy(static_cast<void *>(&e), v.opaque, sizeof e);
	return e;
}

static inline sl_json_val from_el(const element &e)
{
	sl_json_val v{};
	std::memcpy(v.opaque, static_cast<const void *>(&e), sizeof e);
	return v;
}

extern "C" int sl_json_parser_new(struct sl_json_parser **out, size_t max_bytes, size_t max_depth, struct sl_err *err)
{
	*out = nullptr;
	if (!max_bytes)
		max_bytes = SL_JSON_DEFAULT_MAX_BYTES;
	if (!max_depth)
		max_depth = SL_JSON_DEFAULT_MAX_DEPTH;
	auto *p = new (std::nothrow) sl_json_parser(max_bytes);
	if (!p)
		return sl_err_set(err, SL_ENOMEM, "json: out of memory creating a parser");
	// Allocate a small capacity now so the depth limit is set; simdjson grows capacity on demand up to max_bytes
	// and keeps the depth it was given.
	if (p->parser.allocate(4096, max_depth) != simdjson::SUCCESS) {
		delete p;
		return sl_err_set(err, SL_ENOMEM, "json: out of memory creating a parser");
	}
	*out = p;
	return 0;
}

extern "C" void sl_json_parser_free(struct sl_json_parser *p)
{
	delete p;
}

extern "C" int sl_json_parse(struct sl_json_parser *p, const char *buf, size_t len, struct sl_json_val *root,
			     struct sl_err *err)
{
	*root = sl_json_val{};
	if (len > p->max_bytes)
		return sl_err_set(err, SL_ETOOBIG, "json: document of %zu bytes exceeds the limit of %zu bytes", len,
				  p->max_bytes);
	element e;
	auto code = p->parser.parse(buf, len, true).get(e);
	if (code == simdjson::SUCCESS) {
		*root = from_el(e);
		return 0;
	}
	switch (code) {
	case simdjson::MEMALLOC:
		return sl_err_set(err, SL_ENOMEM, "json: out of memory parsing %zu bytes", len);
	case simdjson::CAPACITY:
		return sl_err_set(err, SL_ETOOBIG, "json: document of %zu bytes exceeds the limit of %zu bytes", len,
				  p->max_bytes);
	case simdjson::DEPTH_ERROR:
		return sl_err_set(err, SL_ETOOBIG, "json: nesting deeper than %zu levels", p->parser.max_depth());
	case simdjson::EMPTY:
		return sl_err_set(err, SL_EINVAL, "json: empty input (0 bytes or only whitespace)");
	default: {
		long off = sl_json_error_offset(buf, len);
		const char *what = simdjson::error_message(code);
		if (code == simdjson::UTF8_ERROR || off < 0)
			return sl_err_set(err, SL_EINVAL, "json: %s", what);
		if ((size_t)off >= len)
			return sl_err_set(err, SL_EINVAL, "json: truncated: input ends at byte %zu inside a value (%s)",
					  len, what);
		return sl_err_set(err, SL_EINVAL, "json: malformed at byte %ld near '%.*s' (%s)", off,
				  (int)(len - (size_t)off < 16 ? len - (size_t)off : 16), buf + off, what);
	}
	}
}

extern "C" enum sl_json_type sl_json_type(struct sl_json_val v)
{
	if (!v.opaque[0])
		return SL_JSON_INVALID;
	switch (to_el(v).type()) {
	case element_type::ARRAY: return SL_JSON_ARRAY;
	case element_type::OBJECT: return SL_JSON_OBJECT;
	case element_type::INT64: return SL_JSON_INT;
	case element_type::UINT64: return SL_JSON_UINT;
	case element_type::DOUBLE: return SL_JSON_DOUBLE;
	case element_type::STRING: return SL_JSON_STRING;
	case element_type::BOOL: return SL_JSON_BOOL;
	case element_type::NULL_VALUE: return SL_JSON_NULL;
	}
	return SL_JSON_INVALID;
}

extern "C" bool sl_json_get(struct sl_json_val obj, const char *key, size_t keylen, struct sl_json_val *out)
{
	*out = sl_json_val{};
	if (sl_json_type(obj) != SL_JSON_OBJECT)
		return false;
	simdjson::dom::object o;
	if (to_el(obj).get_object().get(o))
		return false;
	element e;
	// at_key compares raw (unescaped) key bytes; keys with escapes are rare in API payloads.
	if (o.at_key(std::string_view(key, keylen)).get(e))
		return false;
	*out = from_el(e);
	return true;
}

extern "C" bool sl_json_at(struct sl_json_val arr, size_t i, struct sl_json_val *out)
{
	*out = sl_json_val{};
	if (sl_json_type(arr) != SL_JSON_ARRAY)
		return false;
	simdjson::dom::array a;
	if (to_el(arr).get_array().get(a))
		return false;
	element e;
	if (a.at(i).get(e))
		return false;
	*out = from_el(e);
	return true;
}

extern "C" size_t sl_json_len(struct sl_json_val v)
{
	switch (sl_json_type(v)) {
	case SL_JSON_ARRAY: {
		simdjson::dom::array a;
		return to_el(v).get_array().get(a) ? 0 : a.size();
	}
	case SL_JSON_OBJECT: {
		simdjson::dom::object o;
		return to_el(v).get_object().get(o) ? 0 : o.size();
	}
	default: return 0;
	}
}

// Iterator layout: [cur, end] of the dom iterator type, plus the kind in the caller's choice of next function.
template <typename It> static void store_iter(sl_json_iter *it, const It &cur, const It &end)
{
	std::memcpy(reinterpret_cast<char *>(it->opaque), static_cast<const void *>(&cur), sizeof cur);
	std::memcpy(reinterpret_cast<char *>(it->opaque) + sizeof cur, static_cast<const void *>(&end), sizeof end);
}

template <typename It> static void load_iter(const sl_json_iter *it, It *cur, It *end)
{
	std::memcpy(static_cast<void *>(cur), reinterpret_cast<const char *>(it->opaque), sizeof *cur);
	std::memcpy(static_cast<void *>(end), reinterpret_cast<const char *>(it->opaque) + sizeof *cur, sizeof *end);
}

extern "C" bool sl_json_iter_init(struct sl_json_iter *it, struct sl_json_val v)
{
	*it = sl_json_iter{};
	switch (sl_json_type(v)) {
	case SL_JSON_ARRAY: {
		simdjson::dom::array a;
		if (to_el(v).get_array().get(a))
			return false;
		store_iter(it, a.begin(), a.end());
		return true;
	}
	case SL_JSON_OBJECT: {
		simdjson::dom::object o;
		if (to_el(v).get_object().get(o))
			return false;
		store_iter(it, o.begin(), o.end());
		return true;
	}
	default: return false;
	}
}

extern "C" bool sl_json_array_next(struct sl_json_iter *it, struct sl_json_val *out)
{
	*out = sl_json_val{};
	if (!it->opaque[0])
		return false;
	simdjson::dom::array::iterator cur, end;
	load_iter(it, &cur, &end);
	if (!(cur != end))
		return false;
	*out = from_el(*cur);
	++cur;
	store_iter(it, cur, end);
	return true;
}

extern "C" bool sl_json_object_next(struct sl_json_iter *it, const char **key, size_t *keylen, struct sl_json_val *out)
{
	*out = sl_json_val{};
	if (!it->opaque[0])
		return false;
	simdjson::dom::object::iterator cur, end;
	load_iter(it, &cur, &end);
	if (!(cur != end))
		return false;
	*key = cur.key_c_str();
	*keylen = cur.key_length();
	*out = from_el(cur.value());
	++cur;
	store_iter(it, cur, end);
	return true;
}

extern "C" int sl_json_str(struct sl_json_val v, const char **s, size_t *n)
{
	if (sl_json_type(v) != SL_JSON_STRING)
		return SL_ETYPE;
	std::string_view sv;
	if (to_el(v).get_string().get(sv))
		return SL_ETYPE;
	*s = sv.data();
	*n = sv.size();
	return 0;
}

extern "C" int sl_json_int64(struct sl_json_val v, int64_t *out)
{
	switch (sl_json_type(v)) {
	case SL_JSON_INT:
		return to_el(v).get_int64().get(*out) ? SL_ETYPE : 0;
	case SL_JSON_DOUBLE: {
		double d;
		if (to_el(v).get_double().get(d))
			return SL_ETYPE;
		// 2^63 is exactly representable; anything at or above it does not fit.
		if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0) || d != (double)(int64_t)d)
			return SL_ETYPE;
		*out = (int64_t)d;
		return 0;
	}
	default: return SL_ETYPE; // UINT is above INT64_MAX by definition
	}
}

extern "C" int sl_json_double(struct sl_json_val v, double *out)
{
	switch (sl_json_type(v)) {
	case SL_JSON_INT:
	case SL_JSON_UINT:
	case SL_JSON_DOUBLE:
		return to_el(v).get_double().get(*out) ? SL_ETYPE : 0;
	default: return SL_ETYPE;
	}
}

extern "C" int sl_json_bool(struct sl_json_val v, bool *out)
{
	if (sl_json_type(v) != SL_JSON_BOOL)
		return SL_ETYPE;
	return to_el(v).get_bool().get(*out) ? SL_ETYPE : 0;
}

extern "C" int sl_json_uint64_internal(struct sl_json_val v, uint64_t *out);
extern "C" int sl_json_uint64_internal(struct sl_json_val v, uint64_t *out)
{
	return to_el(v).get_uint64().get(*out) ? SL_ETYPE : 0;
}
