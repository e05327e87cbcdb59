/*
 * mldsa_keccak.c - Keccak-f[1600], SHAKE128 and SHAKE256 (FIPS 202) for
 * ML-DSA, one instance or four at once.  See mldsa_keccak.h.
 *
 * The permutation is written once (mldsa_keccak_f.inc, round bodies in
 * mldsa_keccak_rounds.inc) and compiled for plain uint64_t lanes and for
 * GCC/clang generic vectors of four uint64_t; the vector version is
 * compiled twice, for the baseline target and for AVX2 (chosen at run time
 * as the NTT is).  No table lookups and no data-dependent branches.
 */
#include "sig/mldsa/mldsa_keccak.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "sig/mldsa/mldsa_keccak_rounds.inc"

#define ROL(x, n) (((x) << (n)) | ((x) >> (64 - (n))))

/* ---- one instance ---------------------------------------------------- */

#define KT uint64_t
#define KSTRIDE 1
#define FN(x) x##_1
#define FN_ATTR
#include "sig/mldsa/mldsa_keccak_f.inc"
#undef KT
#undef FN
#undef FN_ATTR

void mldsa_keccakf1600(uint64_t s[25])
{
	permute_1(s);
}

#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) && \
	__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
/* Little-endian: a lane is its bytes in memory order. */
static uint64_t load64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

static void store64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}
#else
static uint64_t load64(const uint8_t *p)
{
	return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
	       (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 |
	       (uint64_t)p[7] << 56;
}

static void store64(uint8_t *p, uint64_t v)
{
	for (unsigned i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
#endif

void mldsa_shake_init(mldsa_shake *x, unsigned rate)
{
	memset(x->s, 0, sizeof(x->s));
	x->rate = rate;
	x->pos = 0;
	x->squeezing = 0;
}

void mldsa_shake_absorb(mldsa_shake *x, const uint8_t *in, size_t len)
{
	unsigned pos = x->pos;
	while (len > 0) {
		if (pos % 8 == 0 && len >= 8 && pos + 8 <= x->rate) {
			x->s[pos / 8] ^= load64(in);
			in += 8, len -= 8, pos += 8;
		} else {
			x->s[pos / 8] ^= (uint64_t)*in << (8 * (pos % 8));
			in++, len--, pos++;
		}
		if (pos == x->rate) {
			permute_1(x->s);
			pos = 0;
		}
	}
	x->pos = pos;
}

/* SHAKE padding: the domain bits 1111 then pad10*1 (FIPS 202 §6.2, §5.1). */
static void shake_finish(mldsa_shake *x)
{
	x->s[x->pos / 8] ^= (uint64_t)0x1f << (8 * (x->pos % 8));
	x->s[(x->rate - 1) / 8] ^= (uint64_t)0x80 << (8 * ((x->rate - 1) % 8));
	x->pos = x->rate; /* the first squeeze permutes */
	x->squeezing = 1;
}

void mldsa_shake_squeeze(mldsa_shake *x, uint8_t *out, size_t len)
{
	if (!x->squeezing)
		shake_finish(x);
	unsigned pos = x->pos;
	while (len > 0) {
		if (pos == x->rate) {
			permute_1(x->s);
			pos = 0;
		}
		if (pos % 8 == 0 && len >= 8 && pos + 8 <= x->rate) {
			store64(out, x->s[pos / 8]);
			out += 8, len -= 8, pos += 8;
		} else {
			*out++ = (uint8_t)(x->s[pos / 8] >> (8 * (pos % 8)));
			len--, pos++;
		}
	}
	x->pos = pos;
}

void mldsa_shake_wipe(mldsa_shake *x)
{
	OPENSSL_cleanse(x, sizeof(*x));
}

void mldsa_shake_oneshot(uint8_t *out, size_t outlen, unsigned rate, const uint8_t *in, size_t inlen)
{
	mldsa_shake x;
	mldsa_shake_init(&x, rate);
	mldsa_shake_absorb(&x, in, inlen);
	mldsa_shake_squeeze(&x, out, outlen);
	mldsa_shake_wipe(&x);
}

/* ---- four instances --------------------------------------------------- */

#if defined(__GNUC__) && !defined(MLDSA_NO_VECTOR_EXT)
typedef uint64_t v4u64 __attribute__((vector_size(32), may_alias));
typedef uint64_t v2u64 __attribute__((vector_size(16), may_alias));

/* Baseline target: two passes over pairs of instances (lanes 0-1, then
 * 2-3), 16-byte vectors: one SSE2 / NEON register per lane, which spills
 * less than 32-byte vectors split into halves (measured: 1.05 against
 * 1.3 us per four permutations, and 0.4 us for one scalar permutation). */
#undef KSTRIDE
#define KSTRIDE 2
#define KT v2u64
#define FN(x) x##_x2v
#define FN_ATTR
#include "sig/mldsa/mldsa_keccak_f.inc"
#undef KT
#undef FN
#undef FN_ATTR
#undef KSTRIDE
#define KSTRIDE 1

#if defined(__x86_64__) && !defined(MLDSA_NO_AVX2)
#define MLDSA_KECCAK_AVX2 1
#define KT v4u64
#define FN(x) x##_x4avx2
#define FN_ATTR __attribute__((target("avx2")))
#include "sig/mldsa/mldsa_keccak_f.inc"
#undef KT
#undef FN
#undef FN_ATTR
#endif

static void x4_vector(uint64_t s[25][4])
{
	permute_x2v((v2u64 *)(void *)s);
	permute_x2v((v2u64 *)(void *)&s[0][2]);
}

#ifdef MLDSA_KECCAK_AVX2
static void x4_avx2(uint64_t s[25][4])
{
	permute_x4avx2((v4u64 *)(void *)s);
}
#endif
#define X4_DEFAULT x4_vector
#define X4_DEFAULT_NAME "vector"
#else
/* No vector extensions: four scalar permutations. */
static void x4_scalar(uint64_t s[25][4])
{
	uint64_t t[25];
	for (unsigned j = 0; j < 4; j++) {
		for (unsigned i = 0; i < 25; i++)
			t[i] = s[i][j];
		permute_1(t);
		for (unsigned i = 0; i < 25; i++)
			s[i][j] = t[i];
	}
	OPENSSL_cleanse(t, sizeof(t));
}
#define X4_DEFAULT x4_scalar
#define X4_DEFAULT_NAME "scalar"
#endif

static struct {
	void (*x4)(uint64_t s[25][4]);
	const char *name;
} g_kx = {X4_DEFAULT, X4_DEFAULT_NAME};
static pthread_once_t g_kx_once = PTHREAD_ONCE_INIT;

static void kx_choose(void)
{
#ifdef MLDSA_KECCAK_AVX2
	const char *env = getenv("CRETO_MLDSA_NO_AVX2");
	__builtin_cpu_init();
	if ((env == NULL || strcmp(env, "0") == 0) && __builtin_cpu_supports("avx2")) {
		g_kx.x4 = x4_avx2;
		g_kx.name = "avx2";
	}
#endif
}

void mldsa_keccakf1600x4(uint64_t s[25][4])
{
	(void)pthread_once(&g_kx_once, kx_choose);
	g_kx.x4(s);
}

const char *mldsa_keccak_x4_impl(void)
{
	(void)pthread_once(&g_kx_once, kx_choose);
	return g_kx.name;
}

void mldsa_shakex4_absorb(mldsa_shakex4 *x, unsigned rate, const uint8_t *const in[4], size_t inlen)
{
	memset(x->s, 0, sizeof(x->s));
	x->rate = rate;
	size_t off = 0;
	for (; inlen - off >= rate; off += rate) {
		for (unsigned i = 0; i < rate / 8; i++)
			for (unsigned j = 0; j < 4; j++)
				x->s[i][j] ^= load64(in[j] + off + 8 * i);
		mldsa_keccakf1600x4(x->s);
	}
	size_t rest = inlen - off, i = 0;
	for (; i + 8 <= rest; i += 8)
		for (unsigned j = 0; j < 4; j++)
			x->s[i / 8][j] ^= load64(in[j] + off + i);
	for (; i < rest; i++)
		for (unsigned j = 0; j < 4; j++)
			x->s[i / 8][j] ^= (uint64_t)in[j][off + i] << (8 * (i % 8));
	for (unsigned j = 0; j < 4; j++) {
		x->s[rest / 8][j] ^= (uint64_t)0x1f << (8 * (rest % 8));
		x->s[(rate - 1) / 8][j] ^= (uint64_t)0x80 << (8 * ((rate - 1) % 8));
	}
}

void mldsa_shakex4_squeezeblocks(mldsa_shakex4 *x, uint8_t *const out[4], size_t nblocks)
{
	for (size_t b = 0; b < nblocks; b++) {
		mldsa_keccakf1600x4(x->s);
		for (unsigned j = 0; j < 4; j++) {
			uint8_t *o = out[j] + b * x->rate;
			for (unsigned i = 0; i < x->rate / 8; i++)
				store64(o + 8 * i, x->s[i][j]);
		}
	}
}

void mldsa_shakex4_wipe(mldsa_shakex4 *x)
{
	OPENSSL_cleanse(x, sizeof(*x));
}
