/*
 * keccak4x_avx2.c - four Keccak-f[1600] states at once in AVX2 registers
 * (one state per 64-bit element), the absorb kernel of the SHA3-256 engine
 * on CPUs with AVX2.  Compiled for the baseline target; only this function
 * carries target("avx2"), and sha3x.c calls it only after checking the CPU.
 * See keccakx.h.
 *
 * Input words are moved into the interleaved layout with 4x4 transposes
 * (four 32-byte loads and eight shuffles per four words) rather than
 * gathers, which are slow on some AVX2 CPUs (AMD Zen 1 and 2).
 */
#include "hash/keccakx.h"

#ifdef KX_HAVE_X86
#include <immintrin.h>

#define KX_T __m256i
#define KX_XOR(a, b) _mm256_xor_si256((a), (b))
#define KX_XOR5(a, b, c, d, e) KX_XOR(KX_XOR(KX_XOR((a), (b)), KX_XOR((c), (d))), (e))
/* Rotations by 8 and 56 are byte shuffles: one instruction instead of three. */
#define KX_ROL(x, n) \
	((n) == 8    ? _mm256_shuffle_epi8((x), rot8) \
	 : (n) == 56 ? _mm256_shuffle_epi8((x), rot56) \
		     : _mm256_or_si256(_mm256_slli_epi64((x), (n)), _mm256_srli_epi64((x), 64 - (n))))
#define KX_XORROL1(a, b) KX_XOR((a), KX_ROL((b), 1))
#define KX_XORROL(a, d, n) KX_ROL(KX_XOR((a), (d)), (n))
#define KX_CHI(a, b, c) KX_XOR((a), _mm256_andnot_si256((b), (c)))
#define KX_XORC(a, rc) KX_XOR((a), _mm256_set1_epi64x((long long)(rc)))
#define KX_UNROLL 12
#include "hash/keccakx_round.inc"

__attribute__((target("avx2"))) void kx_absorb_x4_avx2(uint64_t *s, const uint8_t *const p[4],
							 size_t nblocks)
{
	const __m256i rot8 = _mm256_setr_epi8(7, 0, 1, 2, 3, 4, 5, 6, 15, 8, 9, 10, 11, 12, 13, 14,
					      7, 0, 1, 2, 3, 4, 5, 6, 15, 8, 9, 10, 11, 12, 13, 14);
	const __m256i rot56 = _mm256_setr_epi8(1, 2, 3, 4, 5, 6, 7, 0, 9, 10, 11, 12, 13, 14, 15, 8,
					       1, 2, 3, 4, 5, 6, 7, 0, 9, 10, 11, 12, 13, 14, 15, 8);
	KX_DECL(A);
	KX_DECL(E);
	__m256i w[KX_RATE / 8];
#define LOAD_(v, i) (v = _mm256_load_si256((const __m256i *)(const void *)(s + (i) * KX_STRIDE)))
#define STORE_(v, i) _mm256_store_si256((__m256i *)(void *)(s + (i) * KX_STRIDE), v)
#define ABSORB_(v, i) ((i) < KX_RATE / 8 ? (void)(v = KX_XOR(v, w[(i) < KX_RATE / 8 ? (i) : 0])) : (void)0)
	KX_EACH(A, LOAD_);
	for (size_t b = 0, off = 0; b < nblocks; b++, off += KX_RATE) {
		const uint8_t *p0 = p[0] + off, *p1 = p[1] + off, *p2 = p[2] + off, *p3 = p[3] + off;
#pragma GCC unroll 4
		for (unsigned i = 0; i < 16; i += 4) {
			__m256i r0 = _mm256_loadu_si256((const __m256i *)(const void *)(p0 + 8 * i));
			__m256i r1 = _mm256_loadu_si256((const __m256i *)(const void *)(p1 + 8 * i));
			__m256i r2 = _mm256_loadu_si256((const __m256i *)(const void *)(p2 + 8 * i));
			__m256i r3 = _mm256_loadu_si256((const __m256i *)(const void *)(p3 + 8 * i));
			__m256i t0 = _mm256_unpacklo_epi64(r0, r1), t1 = _mm256_unpackhi_epi64(r0, r1);
			__m256i t2 = _mm256_unpacklo_epi64(r2, r3), t3 = _mm256_unpackhi_epi64(r2, r3);
			w[i] = _mm256_permute2x128_si256(t0, t2, 0x20);
			w[i + 1] = _mm256_permute2x128_si256(t1, t3, 0x20);
			w[i + 2] = _mm256_permute2x128_si256(t0, t2, 0x31);
			w[i + 3] = _mm256_permute2x128_si256(t1, t3, 0x31);
		}
		long long q0, q1, q2, q3;
		__builtin_memcpy(&q0, p0 + 128, 8);
		__builtin_memcpy(&q1, p1 + 128, 8);
		__builtin_memcpy(&q2, p2 + 128, 8);
		__builtin_memcpy(&q3, p3 + 128, 8);
		w[16] = _mm256_setr_epi64x(q0, q1, q2, q3);
		KX_EACH(A, ABSORB_);
		KX_PERMUTE(A, E);
	}
	KX_EACH(A, STORE_);
#undef LOAD_
#undef STORE_
#undef ABSORB_
}
#else
typedef int kx_avx2_unused; /* ISO C: a translation unit declares something */
#endif
