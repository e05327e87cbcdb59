/*
 * mldsa_keccak.c - Keccak-f[1600], SHAKE128 and SHAKE256 (FIPS 202) for
 * ML-DSA, one instance or four at once.  See mldsa_keccak.h.
 *
 * The round is written once (mldsa_keccak_rounds.inc) and stepped over
 * plain uint64_t lanes (one state, lane-complemented), over GCC/clang
 * generic vectors (two states per SSE2/NEON register at the baseline
 * target, four per AVX2 register, chosen at run time as the NTT is), and
 * over both at once: on the baseline target three states go as one vector
 * pair plus one scalar state in the same loop, so that the integer and the
 * SIMD units work in parallel (see mldsa_keccakf1600xn).  No table lookups
 * and no data-dependent branches.
 */
#include "sig/mldsa/mldsa_keccak.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "sig/mldsa/mldsa_keccak_rounds.inc"

#define ROL(x, n) (((x) << (n)) | ((x) >> (64 - (n))))

/* ---- one instance ---------------------------------------------------- */

/* Lane i of a scalar state at p[i * stride] (stride a constant). */
#define KECCAK_SCALAR_FN(NAME, STRIDE) \
	static void NAME(uint64_t *p) \
	{ \
		KECCAK_DECL(s, uint64_t); \
		KECCAK_LOAD(s, SGET_##STRIDE); \
		KECCAK_COMPLEMENT(s); \
		for (unsigned r = 0; r < 24; r += 2) { \
			KECCAK_ROUND_LC(s, A, E, keccak_rc[r]); \
			KECCAK_ROUND_LC(s, E, A, keccak_rc[r + 1]); \
		} \
		KECCAK_COMPLEMENT(s); \
		KECCAK_STORE(s, SPUT_##STRIDE); \
	}
#define SGET_1(i) p[i]
#define SPUT_1(i, x) (p[i] = (x))
#define SGET_4(i) p[(i) * 4]
#define SPUT_4(i, x) (p[(i) * 4] = (x))
KECCAK_SCALAR_FN(permute_1, 1)
#if defined(__GNUC__) && !defined(MLDSA_NO_VECTOR_EXT)
/* Lane j of the four-way layout: permute_1s4(&s[0][j]). */
KECCAK_SCALAR_FN(permute_1s4, 4)
#endif

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

/* ---- up to four instances -------------------------------------------- */

#if defined(__GNUC__) && !defined(MLDSA_NO_VECTOR_EXT)
typedef uint64_t v4u64 __attribute__((vector_size(32), may_alias));
typedef uint64_t v2u64 __attribute__((vector_size(16), may_alias));

/* Baseline target: pairs of states in 16-byte vectors (one SSE2 / NEON
 * register per lane; 32-byte vectors split into halves spill more). */
#define KSTRIDE 2
#define KT v2u64
#define FN(x) x##_x2v
#define FN_ATTR
#include "sig/mldsa/mldsa_keccak_f.inc"
#undef KT
#undef FN
#undef FN_ATTR
#undef KSTRIDE

#if defined(__x86_64__) && !defined(MLDSA_NO_AVX2)
#define MLDSA_KECCAK_AVX2 1
#define KSTRIDE 1
#define KT v4u64
#define FN(x) x##_x4avx2
#define FN_ATTR __attribute__((target("avx2")))
#include "sig/mldsa/mldsa_keccak_f.inc"
#undef KT
#undef FN
#undef FN_ATTR
#undef KSTRIDE
#endif

/* Baseline target, three states: 0 and 1 as a vector pair, 2 as scalar
 * lanes (lane-complemented), stepped in the same loop.  The two chains
 * use different register files and execution units, so they overlap:
 * measured on x86-64 (SSE2), three states in about 1.2 times the time
 * of one vector pair (0.52 against 0.43 us; one scalar state 0.26 us). */
static void permute_2v1s(uint64_t s[25][4])
{
	KECCAK_DECL(v, v2u64);
	KECCAK_DECL(s, uint64_t);
#define VGET_(i) (*(v2u64 *)(void *)&s[i][0])
#define VPUT_(i, x) (*(v2u64 *)(void *)&s[i][0] = (x))
#define SGET_(i) s[i][2]
#define SPUT_(i, x) (s[i][2] = (x))
	KECCAK_LOAD(v, VGET_);
	KECCAK_LOAD(s, SGET_);
	KECCAK_COMPLEMENT(s);
	for (unsigned r = 0; r < 24; r += 2) {
		KECCAK_ROUND(v, A, E, keccak_rc[r]);
		KECCAK_ROUND_LC(s, A, E, keccak_rc[r]);
		KECCAK_ROUND(v, E, A, keccak_rc[r + 1]);
		KECCAK_ROUND_LC(s, E, A, keccak_rc[r + 1]);
	}
	KECCAK_COMPLEMENT(s);
	KECCAK_STORE(v, VPUT_);
	KECCAK_STORE(s, SPUT_);
#undef VGET_
#undef VPUT_
#undef SGET_
#undef SPUT_
}

static void xn_vector(uint64_t s[25][4], unsigned n)
{
	switch (n) {
	case 1:
		permute_1s4(&s[0][0]);
		break;
	case 2:
		permute_x2v((v2u64 *)(void *)s);
		break;
	case 3:
		permute_2v1s(s);
		break;
	default:
		permute_2v1s(s);
		permute_1s4(&s[0][3]);
		break;
	}
}

#ifdef MLDSA_KECCAK_AVX2
static void xn_avx2(uint64_t s[25][4], unsigned n)
{
	(void)n; /* all four in one pass */
	permute_x4avx2((v4u64 *)(void *)s);
}
#endif
#define XN_DEFAULT xn_vector
#define XN_DEFAULT_NAME "vector"
#define XN_DEFAULT_WIDTH 3
#else
/* No vector extensions: one scalar permutation per state. */
static void xn_scalar(uint64_t s[25][4], unsigned n)
{
	uint64_t t[25];
	for (unsigned j = 0; j < n; j++) {
		for (unsigned i = 0; i < 25; i++)
			t[i] = s[i][j];
		permute_1(t);
		for (unsigned i = 0; i < 25; i++)
			s[i][j] = t[i];
	}
	OPENSSL_cleanse(t, sizeof(t));
}
#define XN_DEFAULT xn_scalar
#define XN_DEFAULT_NAME "scalar"
#define XN_DEFAULT_WIDTH 1
#endif

static struct {
	void (*xn)(uint64_t s[25][4], unsigned n);
	const char *name;
	unsigned width;
} g_kx = {XN_DEFAULT, XN_DEFAULT_NAME, XN_DEFAULT_WIDTH};
static pthread_once_t g_kx_once = PTHREAD_ONCE_INIT;

static void kx_choose(void)
{
#ifdef MLDSA_KECCAK_AVX2
	const char *env = getenv("CRETO_MLDSA_NO_AVX2");
	__builtin_cpu_init();
	if ((env == NULL || strcmp(env, "0") == 0) && __builtin_cpu_supports("avx2")) {
		g_kx.xn = xn_avx2;
		g_kx.name = "avx2";
		g_kx.width = 4;
	}
#endif
}

void mldsa_keccakf1600xn(uint64_t s[25][4], unsigned n)
{
	(void)pthread_once(&g_kx_once, kx_choose);
	g_kx.xn(s, n);
}

void mldsa_keccakf1600x4(uint64_t s[25][4])
{
	mldsa_keccakf1600xn(s, 4);
}

const char *mldsa_keccak_x4_impl(void)
{
	(void)pthread_once(&g_kx_once, kx_choose);
	return g_kx.name;
}

unsigned mldsa_keccak_xn_width(void)
{
	(void)pthread_once(&g_kx_once, kx_choose);
	return g_kx.width;
}

void mldsa_shakexn_absorb(mldsa_shakex4 *x, unsigned rate, unsigned n, const uint8_t *const in[],
			  size_t inlen)
{
	memset(x->s, 0, sizeof(x->s));
	x->rate = rate;
	x->n = n;
	size_t off = 0;
	for (; inlen - off >= rate; off += rate) {
		for (unsigned i = 0; i < rate / 8; i++)
			for (unsigned j = 0; j < n; j++)
				x->s[i][j] ^= load64(in[j] + off + 8 * i);
		mldsa_keccakf1600xn(x->s, n);
	}
	size_t rest = inlen - off, i = 0;
	for (; i + 8 <= rest; i += 8)
		for (unsigned j = 0; j < n; j++)
			x->s[i / 8][j] ^= load64(in[j] + off + i);
	for (; i < rest; i++)
		for (unsigned j = 0; j < n; j++)
			x->s[i / 8][j] ^= (uint64_t)in[j][off + i] << (8 * (i % 8));
	for (unsigned j = 0; j < n; j++) {
		x->s[rest / 8][j] ^= (uint64_t)0x1f << (8 * (rest % 8));
		x->s[(rate - 1) / 8][j] ^= (uint64_t)0x80 << (8 * ((rate - 1) % 8));
	}
}

void mldsa_shakex4_absorb(mldsa_shakex4 *x, unsigned rate, const uint8_t *const in[4], size_t inlen)
{
	mldsa_shakexn_absorb(x, rate, 4, in, inlen);
}

void mldsa_shakex4_squeezeblocks(mldsa_shakex4 *x, uint8_t *const out[], size_t nblocks)
{
	for (size_t b = 0; b < nblocks; b++) {
		mldsa_keccakf1600xn(x->s, x->n);
		for (unsigned j = 0; j < x->n; j++) {
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
