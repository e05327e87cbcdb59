/*
 * keccak8x_avx512.c - eight Keccak-f[1600] states at once in AVX-512
 * registers (one state per 64-bit element), the absorb kernel of the
 * SHA3-256 engine on CPUs with AVX512F.  vpternlogq does theta's five-way
 * XOR in two instructions and chi's a ^ (~b & c) in one; vprolq rotates in
 * one; 32 registers hold the 25 lanes with few spills.  Compiled for the
 * baseline target; only this function carries target("avx512f"), and
 * sha3x.c calls it only after checking the CPU.  See keccakx.h.
 *
 * Input words 0..15 of the eight blocks come by 64-byte loads and 8x8
 * transposes, word 16 by one gather (vpgatherqq) at offsets taken relative
 * to the first input.
 */
#include "hash/keccakx.h"

#ifdef KX_HAVE_X86
#include <immintrin.h>

#define KX_T __m512i
#define KX_XOR(a, b) _mm512_xor_si512((a), (b))
/* ternary-logic immediates: 0x96 = a ^ b ^ c; 0xd2 = a ^ (~b & c) */
#define KX_XOR5(a, b, c, d, e) \
	_mm512_ternarylogic_epi64(_mm512_ternarylogic_epi64((a), (b), (c), 0x96), (d), (e), 0x96)
#define KX_XORROL1(a, b) KX_XOR((a), _mm512_rol_epi64((b), 1))
#define KX_XORROL(a, d, n) _mm512_rol_epi64(KX_XOR((a), (d)), (n))
#define KX_CHI(a, b, c) _mm512_ternarylogic_epi64((a), (b), (c), 0xd2)
#define KX_XORC(a, rc) KX_XOR((a), _mm512_set1_epi64((long long)(rc)))
#ifndef KX_UNROLL
#define KX_UNROLL 12
#endif
#include "hash/keccakx_round.inc"

#define KX_AHEAD 4 /* blocks of prefetch distance */

/* Words w..w+7 of the eight inputs' blocks at byte offset off, one
 * register per word (element j: input j): eight 64-byte loads and an 8x8
 * transpose of 64-bit elements in three steps of eight shuffles
 * (unpack: pairs of inputs; vpermt2q: quads; vshufi64x2: all eight).  On
 * AMD Zen 4 this costs about half of what eight vpgatherqq do. */
__attribute__((target("avx512f"), always_inline)) static inline void
kx8_words(const uint8_t *const p[8], size_t off, __m512i c[8])
{
	__m512i r[8], t[8], u[8];
#pragma GCC unroll 8
	for (unsigned j = 0; j < 8; j++)
		r[j] = _mm512_loadu_si512((const void *)(p[j] + off));
	/* t[2k]: (r2k[0], r2k+1[0], r2k[2], r2k+1[2], ...); t[2k+1]: odd words */
#pragma GCC unroll 4
	for (unsigned k = 0; k < 4; k++) {
		t[2 * k] = _mm512_unpacklo_epi64(r[2 * k], r[2 * k + 1]);
		t[2 * k + 1] = _mm512_unpackhi_epi64(r[2 * k], r[2 * k + 1]);
	}
	/* u: four inputs per word, two words per register (w, w+4 / w+2, w+6
	 * / w+1, w+5 / w+3, w+7 for inputs 0-3 in u[0..3], 4-7 in u[4..7]) */
	const __m512i lo = _mm512_setr_epi64(0, 1, 8, 9, 4, 5, 12, 13);
	const __m512i hi = _mm512_setr_epi64(2, 3, 10, 11, 6, 7, 14, 15);
#pragma GCC unroll 2
	for (unsigned h = 0; h < 2; h++) {
		u[4 * h + 0] = _mm512_permutex2var_epi64(t[4 * h + 0], lo, t[4 * h + 2]);
		u[4 * h + 1] = _mm512_permutex2var_epi64(t[4 * h + 0], hi, t[4 * h + 2]);
		u[4 * h + 2] = _mm512_permutex2var_epi64(t[4 * h + 1], lo, t[4 * h + 3]);
		u[4 * h + 3] = _mm512_permutex2var_epi64(t[4 * h + 1], hi, t[4 * h + 3]);
	}
	/* the low 256 bits of u[i] and u[i+4] are word a, the high ones word b */
	c[0] = _mm512_shuffle_i64x2(u[0], u[4], 0x44);
	c[4] = _mm512_shuffle_i64x2(u[0], u[4], 0xee);
	c[2] = _mm512_shuffle_i64x2(u[1], u[5], 0x44);
	c[6] = _mm512_shuffle_i64x2(u[1], u[5], 0xee);
	c[1] = _mm512_shuffle_i64x2(u[2], u[6], 0x44);
	c[5] = _mm512_shuffle_i64x2(u[2], u[6], 0xee);
	c[3] = _mm512_shuffle_i64x2(u[3], u[7], 0x44);
	c[7] = _mm512_shuffle_i64x2(u[3], u[7], 0xee);
}

__attribute__((target("avx512f"))) void kx_absorb_x8_avx512(uint64_t *s, const uint8_t *const p[8],
							    size_t nblocks)
{
	KX_DECL(A);
	KX_DECL(E);
	/* word 16 (the last of a block) by one gather: byte offsets of inputs
	 * 1..7 from input 0, unsigned arithmetic on the addresses, so any two
	 * buffers will do */
	uintptr_t base = (uintptr_t)p[0];
	__m512i idx = _mm512_setr_epi64(0, (long long)((uintptr_t)p[1] - base),
					(long long)((uintptr_t)p[2] - base),
					(long long)((uintptr_t)p[3] - base),
					(long long)((uintptr_t)p[4] - base),
					(long long)((uintptr_t)p[5] - base),
					(long long)((uintptr_t)p[6] - base),
					(long long)((uintptr_t)p[7] - base));
#define LOAD_(v, i) (v = _mm512_load_si512((const void *)(s + (i) * KX_STRIDE)))
#define STORE_(v, i) _mm512_store_si512((void *)(s + (i) * KX_STRIDE), v)
	KX_EACH(A, LOAD_);
	for (size_t b = 0; b < nblocks; b++) {
		size_t off = b * KX_RATE;
		/* the inputs come straight from the page cache (mapped files,
		 * src/hash/mapwin.h), not from a copy still in L2: ask for the
		 * block KX_AHEAD blocks on of every input now, so that it is
		 * in cache when its turn comes (a prefetch never faults, also
		 * past the end of an input; the address is computed as an
		 * integer, since it may be past the end) */
#pragma GCC unroll 8
		for (unsigned j = 0; j < 8; j++) {
			const char *f = (const char *)((uintptr_t)p[j] + off + KX_AHEAD * KX_RATE);
			_mm_prefetch(f, _MM_HINT_T0);
			_mm_prefetch(f + 64, _MM_HINT_T0);
			_mm_prefetch(f + KX_RATE - 1, _MM_HINT_T0);
		}
		__m512i c[8];
		kx8_words(p, off, c);
		A0 = KX_XOR(A0, c[0]);
		A1 = KX_XOR(A1, c[1]);
		A2 = KX_XOR(A2, c[2]);
		A3 = KX_XOR(A3, c[3]);
		A4 = KX_XOR(A4, c[4]);
		A5 = KX_XOR(A5, c[5]);
		A6 = KX_XOR(A6, c[6]);
		A7 = KX_XOR(A7, c[7]);
		kx8_words(p, off + 64, c);
		A8 = KX_XOR(A8, c[0]);
		A9 = KX_XOR(A9, c[1]);
		A10 = KX_XOR(A10, c[2]);
		A11 = KX_XOR(A11, c[3]);
		A12 = KX_XOR(A12, c[4]);
		A13 = KX_XOR(A13, c[5]);
		A14 = KX_XOR(A14, c[6]);
		A15 = KX_XOR(A15, c[7]);
		A16 = KX_XOR(A16, _mm512_i64gather_epi64(idx, (const void *)(p[0] + off + 128), 1));
		KX_PERMUTE(A, E);
	}
	KX_EACH(A, STORE_);
#undef LOAD_
#undef STORE_
}
#else
typedef int kx_avx512_unused; /* ISO C: a translation unit declares something */
#endif
