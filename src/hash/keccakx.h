/*
 * keccakx.h - internal to src/hash: the Keccak-f[1600] absorb kernels under
 * the multi-buffer SHA3-256 engine (sha3x.c).  Not a public contract.
 *
 * A kernel XORs nblocks rate blocks of each of its states' inputs into the
 * states, one Keccak-f[1600] permutation after each block, keeping the
 * states in registers between blocks.  The multi-way kernels work on an
 * interleaved state: word i (lane x + 5y) of state j at s[i * KX_STRIDE + j],
 * s aligned to 64 bytes; input block b of state j starts at p[j] + b * KX_RATE
 * (any alignment).  Every state of the kernel's width is permuted: a caller
 * that has fewer inputs points the spare p[j] at readable data and restores
 * those states afterwards.
 */
#ifndef CRETO_HASH_KECCAKX_H
#define CRETO_HASH_KECCAKX_H

#include <stddef.h>
#include <stdint.h>

#define KX_RATE 136  /* SHA3-256 rate in bytes: 1600 - 2 * 256 bits */
#define KX_STRIDE 8  /* words between lane i of state 0 and lane i + 1: the widest kernel */

/* One state s[0..24] (contiguous), portable C. */
void kx_absorb_x1(uint64_t s[25], const uint8_t *p, size_t nblocks);

#if defined(__x86_64__) && defined(__GNUC__) && !defined(CRETO_SHA3_NO_SIMD)
#define KX_HAVE_X86 1
/* Four states, AVX2 (256-bit registers); the caller checked the CPU has AVX2. */
void kx_absorb_x4_avx2(uint64_t *s, const uint8_t *const p[4], size_t nblocks);
/* Eight states, AVX-512F (512-bit registers, vpternlogq and vprolq); the
 * caller checked the CPU has AVX512F. */
void kx_absorb_x8_avx512(uint64_t *s, const uint8_t *const p[8], size_t nblocks);
#endif

#endif
