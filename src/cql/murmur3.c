/* Partition tokens: Murmur3 x64-128 exactly as Cassandra's MurmurHash.hash3_x64_128 + Murmur3Partitioner compute
 * them, and composite routing keys. Cassandra reads the tail bytes as Java (signed) bytes and sign-extends them
 * before shifting, which changes the hash of any key whose tail has a byte >= 0x80; we must do the same or route
 * such keys to the wrong replica. */
#include <string.h>

#include "cql/proto.h"
#include "cql/types.h"

static inline uint64_t rotl64(uint64_t v, int n) { return (v << n) | (v >> (64 - n)); }

static inline uint64_t fmix64(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	k *= 0xc4ceb9fe1a85ec53ULL;
	k ^= k >> 33;
	return k;
}

static inline uint64_t getblock(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* A Java byte widened to long: sign-extended. */
static inline uint64_t sbyte(const uint8_t *p, size_t i) { return (uint64_t)(int64_t)(int8_t)p[i]; }

int64_t sl_cql_murmur3_token(const void *key, size_t len)
{
	const uint8_t *data = key;
	const uint64_t c1 = 0x87c37b91114253d5ULL, c2 = 0x4cf5ad432745937fULL;
	uint64_t h1 = 0, h2 = 0;
	size_t nblocks = len / 16;
	for (size_t i = 0; i < nblocks; i++) {
		uint64_t k1 = getblock(data + i * 16), k2 = getblock(data + i * 16 + 8);
		k1 *= c1;
		k1 = rotl64(k1, 31);
		k1 *= c2;
		h1 ^= k1;
		h1 = rotl64(h1, 27);
		h1 += h2;
		h1 = h1 * 5 + 0x52dce729;
		k2 *= c2;
		k2 = rotl64(k2, 33);
		k2 *= c1;
		h2 ^= k2;
		h2 = rotl64(h2, 31);
		h2 += h1;
		h2 = h2 * 5 + 0x38495ab5;
	}
	const uint8_t *tail = data + nblocks * 16;
	uint64_t k1 = 0, k2 = 0;
	switch (len & 15) {
	case 15: k2 ^= sbyte(tail, 14) << 48; /* fall through */
	case 14: k2 ^= sbyte(tail, 13) << 40; /* fall through */
	case 13: k2 ^= sbyte(tail, 12) << 32; /* fall through */
	case 12: k2 ^= sbyte(tail, 11) << 24; /* fall through */
	case 11: k2 ^= sbyte(tail, 10) << 16; /* fall through */
	case 10: k2 ^= sbyte(tail, 9) << 8; /* fall through */
	case 9:
		k2 ^= sbyte(tail, 8);
		k2 *= c2;
		k2 = rotl64(k2, 33);
		k2 *= c1;
		h2 ^= k2;
		/* fall through */
	case 8: k1 ^= sbyte(tail, 7) << 56; /* fall through */
	case 7: k1 ^= sbyte(tail, 6) << 48; /* fall through */
	case 6: k1 ^= sbyte(tail, 5) << 40; /* fall through */
	case 5: k1 ^= sbyte(tail, 4) << 32; /* fall through */
	case 4: k1 ^= sbyte(tail, 3) << 24; /* fall through */
	case 3: k1 ^= sbyte(tail, 2) << 16; /* fall through */
	case 2: k1 ^= sbyte(tail, 1) << 8; /* fall through */
	case 1:
		k1 ^= sbyte(tail, 0);
		k1 *= c1;
		k1 = rotl64(k1, 31);
		k1 *= c2;
		h1 ^= k1;
	}
	h1 ^= (uint64_t)len;
	h2 ^= (uint64_t)len;
	h1 += h2;
	h2 += h1;
	h1 = fmix64(h1);
	h2 = fmix64(h2);
	h1 += h2;
	int64_t t = (int64_t)h1;
	/* Murmur3Partitioner reserves Long.MIN_VALUE as the minimum token, so a key hashing to it gets MAX_VALUE. */
	return t == INT64_MIN ? INT64_MAX : t;
}

int64_t sl_cql_token(const void *routing_key, size_t len) { return sl_cql_murmur3_token(routing_key, len); }

int sl_cql_routing_key(struct sl_buf *out, const uint8_t *const *parts, const size_t *lens, int n)
{
	if (n == 1) {
		sl_buf_append(out, parts[0], lens[0]);
		return sl_buf_ok(out) ? 0 : SL_ENOMEM;
	}
	for (int i = 0; i < n; i++) {
		if (lens[i] > UINT16_MAX)
			return SL_ETOOBIG;
		sl_cql_wr_u16(out, (uint16_t)lens[i]);
		sl_buf_append(out, parts[i], lens[i]);
		sl_cql_wr_u8(out, 0);
	}
	return sl_buf_ok(out) ? 0 : SL_ENOMEM;
}
