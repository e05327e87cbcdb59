/*
 * keccak8x_avx512.c - eight Keccak-f[1600] states at once in AVX-512
 * registers (one state per 64-bit element), the absorb kernel of the
 * SHA3-256 engine on CPUs with AVX512F.  vpternlogq does theta's five-way
 * XOR in two instructions and chi's a ^ (~b & c) in one; vprolq rotates in
 * one; 32 registers hold the 25 lanes with few spills.  Compiled for the
 * baseline target; only this function carries target("avx512f"), and
 * sha3x.c calls it only after checking the CPU.  See keccakx.h.
 *
 * Input word i of the eight blocks is one gather (vpgatherqq) at offsets
 * taken relative to the first input.
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

__attribute__((target("avx512f"))) void kx_absorb_x8_avx512(uint64_t *s, const uint8_t *const p[8],
							    size_t nblocks)
{
	KX_DECL(A);
	KX_DECL(E);
	/* byte offsets of inputs 1..7 from input 0: unsigned arithmetic on the
	 * addresses, so any two buffers will do */
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
#define ABSORB_(v, i) \
	((i) < KX_RATE / 8 ? (void)(v = KX_XOR(v, _mm512_i64gather_epi64(idx, (const void *)(q + 8 * ((i) % 17)), 1))) \
			   : (void)0)
	KX_EACH(A, LOAD_);
	for (size_t b = 0; b < nblocks; b++) {
		const uint8_t *q = p[0] + b * KX_RATE;
		/* the inputs come straight from the page cache (mapped files,
		 * src/hash/mapwin.h), not from a copy still in L2: ask for the
		 * block KX_AHEAD blocks on of every input now, so that it is
		 * in cache when its turn comes (a prefetch never faults, also
		 * past the end of an input) */
		for (unsigned j = 0; j < 8; j++) {
			const char *f = (const char *)p[j] + (b + KX_AHEAD) * KX_RATE;
			_mm_prefetch(f, _MM_HINT_T0);
			_mm_prefetch(f + 64, _MM_HINT_T0);
			_mm_prefetch(f + KX_RATE - 1, _MM_HINT_T0);
		}
		KX_EACH(A, ABSORB_);
		KX_PERMUTE(A, E);
	}
	KX_EACH(A, STORE_);
#undef LOAD_
#undef STORE_
#undef ABSORB_
}
#else
typedef int kx_avx512_unused; /* ISO C: a translation unit declares something */
#endif
