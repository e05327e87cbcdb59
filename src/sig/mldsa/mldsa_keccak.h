/*
 * mldsa_keccak.h - internal to src/sig/mldsa: Keccak-f[1600] and SHAKE128 /
 * SHAKE256 (FIPS 202) in portable C11, one instance at a time and four
 * independent instances at once (for ExpandA, ExpandS and ExpandMask).
 *
 * The multi-way permutation uses GCC/clang generic vectors of 64-bit
 * lanes: one AVX2 register for four states when the CPU has AVX2 (chosen
 * at run time, like the NTT, unless CRETO_MLDSA_NO_AVX2=1); otherwise
 * SSE2 / NEON pairs of states, with a third state in scalar registers
 * stepped alongside; scalar permutations with other compilers or with
 * -DMLDSA_NO_VECTOR_EXT.  Everything here is branch-free in the data:
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

/* Up to four SHAKE instances in one interleaved state (s[i][j]: lane i of
 * instance j).  Each absorbs one input of a common length in one call,
 * then squeezes whole blocks. */
typedef struct mldsa_shakex4 {
	_Alignas(32) uint64_t s[25][4];
	unsigned rate;
	unsigned n; /* instances in use: 1..4 */
} mldsa_shakex4;

/* n instances (1..4) over in[0..n-1]. */
void mldsa_shakexn_absorb(mldsa_shakex4 *x, unsigned rate, unsigned n, const uint8_t *const in[],
			  size_t inlen);
void mldsa_shakex4_absorb(mldsa_shakex4 *x, unsigned rate, const uint8_t *const in[4], size_t inlen);
/* out[j] (j < n) receives nblocks * rate more bytes of instance j's stream. */
void mldsa_shakex4_squeezeblocks(mldsa_shakex4 *x, uint8_t *const out[], size_t nblocks);
void mldsa_shakex4_wipe(mldsa_shakex4 *x);
/* Keccak-f[1600] on the four interleaved states. */
void mldsa_keccakf1600x4(uint64_t s[25][4]);
/* The same on states 0..n-1 only (n in 1..4); the others may be permuted
 * too or left as they are. */
void mldsa_keccakf1600xn(uint64_t s[25][4], unsigned n);
/* "avx2", "vector" (generic vectors at the baseline target) or "scalar":
 * how mldsa_keccakf1600xn runs. */
const char *mldsa_keccak_x4_impl(void);
/* How many states one mldsa_keccakf1600xn call should carry for the best
 * throughput per state: 4 (avx2: four per register), 3 ("vector": a vector
 * pair beside one scalar state) or 1 ("scalar": no gain from grouping). */
unsigned mldsa_keccak_xn_width(void);

#endif
