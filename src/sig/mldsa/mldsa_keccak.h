/*
 * mldsa_keccak.h - internal to src/sig/mldsa: Keccak-f[1600] and SHAKE128 /
 * SHAKE256 (FIPS 202) in portable C11, one instance at a time and four
 * independent instances at once (for ExpandA, ExpandS and ExpandMask).
 *
 * The four-way permutation uses GCC/clang generic vectors of four 64-bit
 * lanes: two SSE2 halves on baseline x86-64, one AVX2 register when the CPU
 * has AVX2 (chosen at run time, like the NTT, unless CRETO_MLDSA_NO_AVX2=1),
 * NEON pairs on arm64, and four scalar permutations with other compilers or
 * with -DMLDSA_NO_VECTOR_EXT.  Everything here is branch-free in the data:
 * only lengths steer control flow.
 */
#ifndef CRETO_MLDSA_KECCAK_H
#define CRETO_MLDSA_KECCAK_H

#include <stddef.h>
#include <stdint.h>

#define MLDSA_SHAKE128_RATE 168
#define MLDSA_SHAKE256_RATE 136

/* Keccak-f[1600] on 25 lanes (lane x + 5y; bytes little-endian in a lane). */
void mldsa_keccakf1600(uint64_t s[25]);

/* One SHAKE instance: init, absorb any number of times, then squeeze any
 * number of times (the output is one stream, however it is split). */
typedef struct mldsa_shake {
	uint64_t s[25];
	unsigned rate; /* bytes: 168 (SHAKE128) or 136 (SHAKE256) */
	unsigned pos;  /* bytes absorbed into / squeezed from the current block */
	int squeezing;
} mldsa_shake;

void mldsa_shake_init(mldsa_shake *x, unsigned rate);
void mldsa_shake_absorb(mldsa_shake *x, const uint8_t *in, size_t len);
void mldsa_shake_squeeze(mldsa_shake *x, uint8_t *out, size_t len);
/* Wipes the state (it may hold secret material). */
void mldsa_shake_wipe(mldsa_shake *x);
/* out = SHAKE(in, outlen) in one call; rate selects SHAKE128 or SHAKE256. */
void mldsa_shake_oneshot(uint8_t *out, size_t outlen, unsigned rate, const uint8_t *in, size_t inlen);

/* Four SHAKE instances in one interleaved state (s[i][j]: lane i of
 * instance j).  Each absorbs one input of a common length in one call,
 * then squeezes whole blocks. */
typedef struct mldsa_shakex4 {
	_Alignas(32) uint64_t s[25][4];
	unsigned rate;
} mldsa_shakex4;

void mldsa_shakex4_absorb(mldsa_shakex4 *x, unsigned rate, const uint8_t *const in[4], size_t inlen);
/* out[j] receives nblocks * rate more bytes of instance j's stream. */
void mldsa_shakex4_squeezeblocks(mldsa_shakex4 *x, uint8_t *const out[4], size_t nblocks);
void mldsa_shakex4_wipe(mldsa_shakex4 *x);
/* Keccak-f[1600] on the four interleaved states. */
void mldsa_keccakf1600x4(uint64_t s[25][4]);
/* "avx2", "vector" (generic vectors at the baseline target) or "scalar":
 * how mldsa_keccakf1600x4 runs. */
const char *mldsa_keccak_x4_impl(void);

#endif
