/*
 * keccakx_scalar.c - the one-state Keccak-f[1600] absorb kernel of the
 * SHA3-256 engine, portable C: it finishes every stream (padding block) and
 * carries a stream alone when too few streams are left to fill a multi-way
 * kernel (see sha3x.c).  See keccakx.h.
 */
#include "hash/keccakx.h"

#include <string.h>

#define KX_T uint64_t
#define KX_ROL(x, n) (((x) << (n)) | ((x) >> (64 - (n))))
#define KX_XOR(a, b) ((a) ^ (b))
#define KX_XOR5(a, b, c, d, e) ((a) ^ (b) ^ (c) ^ (d) ^ (e))
#define KX_XORROL1(a, b) ((a) ^ KX_ROL(b, 1))
#define KX_XORROL(a, d, n) KX_ROL((a) ^ (d), n)
#define KX_CHI(a, b, c) ((a) ^ (~(b) & (c)))
#define KX_XORC(a, rc) ((a) ^ (rc))
#include "hash/keccakx_round.inc"

/* Lane i of a block, little-endian whatever the host order. */
static uint64_t load_le64(const uint8_t *p)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
#else
	return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
	       (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 |
	       (uint64_t)p[7] << 56;
#endif
}

void kx_absorb_x1(uint64_t s[25], const uint8_t *p, size_t nblocks)
{
	KX_DECL(A);
	KX_DECL(E);
#define LOAD_(v, i) (v = s[i])
#define STORE_(v, i) (s[i] = v)
#define ABSORB_(v, i) ((i) < KX_RATE / 8 ? (void)(v ^= load_le64(p + 8 * (i))) : (void)0)
	KX_EACH(A, LOAD_);
	for (size_t b = 0; b < nblocks; b++, p += KX_RATE) {
		KX_EACH(A, ABSORB_);
		KX_PERMUTE(A, E);
	}
	KX_EACH(A, STORE_);
#undef LOAD_
#undef STORE_
#undef ABSORB_
}
