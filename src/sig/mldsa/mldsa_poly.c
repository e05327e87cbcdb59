/*
 * mldsa_poly.c - arithmetic in R_q for ML-DSA (FIPS 204): Montgomery NTT,
 * reductions, rounding and hints, bit packing, rejection samplers.
 *
 * Constant time: every function that can see secret coefficients (NTT,
 * pointwise products, reductions, Power2Round, Decompose, MakeHint, norm
 * checks, packing) is branch-free and uses no secret-dependent indices.
 * UseHint and the unpacking of public data may branch.
 */
#include "sig/mldsa/mldsa_poly.h"

#include <string.h>

#define Q MLDSA_Q
#define N MLDSA_N
#define QINV 58728449 /* q^-1 mod 2^32 */

/* zetas[i] = 2^32 * 1753^brv8(i) mod q, centred; zetas[0] unused. */
static const int32_t zetas[N] = {
	0, 25847, -2608894, -518909, 237124, -777960, -876248, 466468,
	1826347, 2353451, -359251, -2091905, 3119733, -2884855, 3111497, 2680103,
	2725464, 1024112, -1079900, 3585928, -549488, -1119584, 2619752, -2108549,
	-2118186, -3859737, -1399561, -3277672, 1757237, -19422, 4010497, 280005,
	2706023, 95776, 3077325, 3530437, -1661693, -3592148, -2537516, 3915439,
	-3861115, -3043716, 3574422, -2867647, 3539968, -300467, 2348700, -539299,
	-1699267, -1643818, 3505694, -3821735, 3507263, -2140649, -1600420, 3699596,
	811944, 531354, 954230, 3881043, 3900724, -2556880, 2071892, -2797779,
	-3930395, -1528703, -3677745, -3041255, -1452451, 3475950, 2176455, -1585221,
	-1257611, 1939314, -4083598, -1000202, -3190144, -3157330, -3632928, 126922,
	3412210, -983419, 2147896, 2715295, -2967645, -3693493, -411027, -2477047,
	-671102, -1228525, -22981, -1308169, -381987, 1349076, 1852771, -1430430,
	-3343383, 264944, 508951, 3097992, 44288, -1100098, 904516, 3958618,
	-3724342, -8578, 1653064, -3249728, 2389356, -210977, 759969, -1316856,
	189548, -3553272, 3159746, -1851402, -2409325, -177440, 1315589, 1341330,
	1285669, -1584928, -812732, -1439742, -3019102, -3881060, -3628969, 3839961,
	2091667, 3407706, 2316500, 3817976, -3342478, 2244091, -2446433, -3562462,
	266997, 2434439, -1235728, 3513181, -3520352, -3759364, -1197226, -3193378,
	900702, 1859098, 909542, 819034, 495491, -1613174, -43260, -522500,
	-655327, -3122442, 2031748, 3207046, -3556995, -525098, -768622, -3595838,
	342297, 286988, -2437823, 4108315, 3437287, -3342277, 1735879, 203044,
	2842341, 2691481, -2590150, 1265009, 4055324, 1247620, 2486353, 1595974,
	-3767016, 1250494, 2635921, -3548272, -2994039, 1869119, 1903435, -1050970,
	-1333058, 1237275, -3318210, -1430225, -451100, 1312455, 3306115, -1962642,
	-1279661, 1917081, -2546312, -1374803, 1500165, 777191, 2235880, 3406031,
	-542412, -2831860, -1671176, -1846953, -2584293, -3724270, 594136, -3776993,
	-2013608, 2432395, 2454455, -164721, 1957272, 3369112, 185531, -1207385,
	-3183426, 162844, 1616392, 3014001, 810149, 1652634, -3694233, -1799107,
	-3038916, 3523897, 3866901, 269760, 2213111, -975884, 1717735, 472078,
	-426683, 1723600, -1803090, 1910376, -1667432, -1104333, -260646, -3833893,
	-2939036, -2235985, -420899, -2286327, 183443, -976891, 1612842, -3545687,
	-554416, 3919660, -48306, -1362209, 3937738, 1400424, -846154, 1976782,
};

/* a * 2^-32 mod q for |a| < 2^31 q; result in (-q, q). */
static inline int32_t mont_reduce(int64_t a)
{
	int32_t t = (int32_t)(uint32_t)((uint64_t)a * QINV);
	return (int32_t)((a - (int64_t)t * Q) >> 32);
}

/* Representative in (-6283009, 6283009) for a <= 2^31 - 2^22 - 1. */
static inline int32_t reduce32(int32_t a)
{
	int32_t t = (a + (1 << 22)) >> 23;
	return a - t * Q;
}

/* Add q if a is negative. */
static inline int32_t caddq(int32_t a)
{
	return a + ((a >> 31) & Q);
}

void mldsa_ntt(mldsa_poly *p)
{
	int32_t *a = p->c;
	unsigned k = 0;
	for (unsigned len = 128; len > 0; len >>= 1) {
		for (unsigned start = 0; start < N; start += 2 * len) {
			int64_t zeta = zetas[++k];
			for (unsigned j = start; j < start + len; j++) {
				int32_t t = mont_reduce(zeta * a[j + len]);
				a[j + len] = a[j] - t;
				a[j] = a[j] + t;
			}
		}
	}
}

void mldsa_invntt_tomont(mldsa_poly *p)
{
	int32_t *a = p->c;
	const int64_t f = 41978; /* 2^64 / 256 mod q */
	unsigned k = N;
	for (unsigned len = 1; len < N; len <<= 1) {
		for (unsigned start = 0; start < N; start += 2 * len) {
			int64_t zeta = -zetas[--k];
			for (unsigned j = start; j < start + len; j++) {
				int32_t t = a[j];
				a[j] = t + a[j + len];
				a[j + len] = mont_reduce(zeta * (t - a[j + len]));
			}
		}
	}
	for (unsigned j = 0; j < N; j++)
		a[j] = mont_reduce(f * a[j]);
}

void mldsa_poly_pointwise(mldsa_poly *c, const mldsa_poly *a, const mldsa_poly *b)
{
	for (unsigned i = 0; i < N; i++)
		c->c[i] = mont_reduce((int64_t)a->c[i] * b->c[i]);
}

void mldsa_poly_pointwise_acc(mldsa_poly *c, const mldsa_poly *a, const mldsa_poly *b, unsigned n)
{
	for (unsigned i = 0; i < N; i++) {
		int64_t acc = 0;
		for (unsigned j = 0; j < n; j++)
			acc += (int64_t)a[j].c[i] * b[j].c[i];
		c->c[i] = mont_reduce(acc);
	}
}

void mldsa_poly_reduce(mldsa_poly *a)
{
	for (unsigned i = 0; i < N; i++)
		a->c[i] = reduce32(a->c[i]);
}

void mldsa_poly_caddq(mldsa_poly *a)
{
	for (unsigned i = 0; i < N; i++)
		a->c[i] = caddq(a->c[i]);
}

void mldsa_poly_add(mldsa_poly *c, const mldsa_poly *a, const mldsa_poly *b)
{
	for (unsigned i = 0; i < N; i++)
		c->c[i] = a->c[i] + b->c[i];
}

void mldsa_poly_sub(mldsa_poly *c, const mldsa_poly *a, const mldsa_poly *b)
{
	for (unsigned i = 0; i < N; i++)
		c->c[i] = a->c[i] - b->c[i];
}

void mldsa_poly_shiftl(mldsa_poly *a)
{
	for (unsigned i = 0; i < N; i++)
		a->c[i] = (int32_t)((uint32_t)a->c[i] << MLDSA_D);
}

int mldsa_poly_chknorm(const mldsa_poly *a, int32_t bound)
{
	/* bound <= (q-1)/8, so any |a| >= bound is out; |.| without branches. */
	uint32_t bad = 0;
	for (unsigned i = 0; i < N; i++) {
		int32_t t = a->c[i] >> 31;
		t = a->c[i] - (t & 2 * a->c[i]);
		bad |= (uint32_t)(bound - 1 - t) >> 31;
	}
	return (int)bad;
}

void mldsa_poly_power2round(mldsa_poly *a1, mldsa_poly *a0, const mldsa_poly *a)
{
	for (unsigned i = 0; i < N; i++) {
		int32_t v = a->c[i];
		int32_t hi = (v + (1 << (MLDSA_D - 1)) - 1) >> MLDSA_D;
		a0->c[i] = v - hi * (1 << MLDSA_D);
		a1->c[i] = hi;
	}
}

static inline int32_t decompose(int32_t *a0, int32_t a, int32_t gamma2)
{
	int32_t a1 = (a + 127) >> 7;
	if (gamma2 == (Q - 1) / 32) {
		a1 = (a1 * 1025 + (1 << 21)) >> 22;
		a1 &= 15;
	} else {
		a1 = (a1 * 11275 + (1 << 23)) >> 24;
		a1 ^= ((43 - a1) >> 31) & a1;
	}
	*a0 = a - a1 * 2 * gamma2;
	*a0 -= (((Q - 1) / 2 - *a0) >> 31) & Q;
	return a1;
}

void mldsa_poly_decompose(mldsa_poly *a1, mldsa_poly *a0, const mldsa_poly *a, int32_t gamma2)
{
	/* gamma2 is public: the branch inside decompose() is on the parameter set. */
	if (gamma2 == (Q - 1) / 32) {
		for (unsigned i = 0; i < N; i++)
			a1->c[i] = decompose(&a0->c[i], a->c[i], (Q - 1) / 32);
	} else {
		for (unsigned i = 0; i < N; i++)
			a1->c[i] = decompose(&a0->c[i], a->c[i], (Q - 1) / 88);
	}
}

unsigned mldsa_poly_make_hint(mldsa_poly *h, const mldsa_poly *a0, const mldsa_poly *a1,
			      int32_t gamma2)
{
	unsigned n = 0;
	for (unsigned i = 0; i < N; i++) {
		int32_t x = a0->c[i];
		int32_t v = (x > gamma2) | (x < -gamma2) | ((x == -gamma2) & (a1->c[i] != 0));
		h->c[i] = v;
		n += (unsigned)v;
	}
	return n;
}

void mldsa_poly_use_hint(mldsa_poly *b, const mldsa_poly *a, const mldsa_poly *h, int32_t gamma2)
{
	for (unsigned i = 0; i < N; i++) {
		int32_t a0;
		int32_t a1 = decompose(&a0, a->c[i], gamma2);
		if (h->c[i] == 0) {
			b->c[i] = a1;
		} else if (gamma2 == (Q - 1) / 32) {
			b->c[i] = (a0 > 0) ? (a1 + 1) & 15 : (a1 - 1) & 15;
		} else {
			if (a0 > 0)
				b->c[i] = (a1 == 43) ? 0 : a1 + 1;
			else
				b->c[i] = (a1 == 0) ? 43 : a1 - 1;
		}
	}
}

unsigned mldsa_rej_uniform(int32_t *a, unsigned done, const uint8_t *buf, size_t buflen)
{
	size_t pos = 0;
	while (done < N && pos + 3 <= buflen) {
		uint32_t t = buf[pos] | (uint32_t)buf[pos + 1] << 8 | (uint32_t)(buf[pos + 2] & 0x7f) << 16;
		pos += 3;
		if (t < Q)
			a[done++] = (int32_t)t;
	}
	return done;
}

unsigned mldsa_rej_eta(int32_t *a, unsigned done, const uint8_t *buf, size_t buflen, int eta)
{
	size_t pos = 0;
	while (done < N && pos < buflen) {
		uint32_t z[2] = {buf[pos] & 0x0fu, (uint32_t)buf[pos] >> 4};
		pos++;
		for (unsigned i = 0; i < 2 && done < N; i++) {
			if (eta == 2 && z[i] < 15) {
				uint32_t m5 = z[i] - ((205 * z[i]) >> 10) * 5;
				a[done++] = 2 - (int32_t)m5;
			} else if (eta == 4 && z[i] < 9) {
				a[done++] = 4 - (int32_t)z[i];
			}
		}
	}
	return done;
}

int mldsa_sample_in_ball(mldsa_poly *c, const uint8_t *buf, size_t buflen, unsigned tau)
{
	if (buflen < 8)
		return -1;
	uint64_t signs = 0;
	for (unsigned i = 0; i < 8; i++)
		signs |= (uint64_t)buf[i] << (8 * i);
	size_t pos = 8;
	memset(c->c, 0, sizeof(c->c));
	for (unsigned i = N - tau; i < N; i++) {
		unsigned j;
		do {
			if (pos >= buflen)
				return -1;
			j = buf[pos++];
		} while (j > i);
		int32_t s = 1 - 2 * (int32_t)(signs & 1);
		signs >>= 1;
		/* c[i] = c[j]; c[j] = s; with masks instead of indexing by j. */
		int32_t cj = 0;
		for (unsigned p = 0; p < i; p++) {
			int32_t m = -(int32_t)(p == j);
			cj |= c->c[p] & m;
		}
		c->c[i] = cj;
		for (unsigned p = 0; p <= i; p++) {
			int32_t m = -(int32_t)(p == j);
			c->c[p] = (c->c[p] & ~m) | (s & m);
		}
	}
	return 0;
}

/* Little-endian bit packing of 8 values of w bits into w bytes and back. */
static inline void pack8(uint8_t *r, const uint32_t v[8], unsigned w)
{
	uint64_t acc = 0;
	unsigned bits = 0, o = 0;
	for (unsigned i = 0; i < 8; i++) {
		acc |= (uint64_t)v[i] << bits;
		bits += w;
		while (bits >= 8) {
			r[o++] = (uint8_t)acc;
			acc >>= 8;
			bits -= 8;
		}
	}
}

static inline void unpack8(uint32_t v[8], const uint8_t *r, unsigned w)
{
	uint64_t acc = 0;
	unsigned bits = 0, o = 0;
	const uint64_t mask = ((uint64_t)1 << w) - 1;
	for (unsigned i = 0; i < 8; i++) {
		while (bits < w) {
			acc |= (uint64_t)r[o++] << bits;
			bits += 8;
		}
		v[i] = (uint32_t)(acc & mask);
		acc >>= w;
		bits -= w;
	}
}

/* r = pack(off - a) or pack(a) (off = 0 with sign = 1). */
static inline void pack_poly(uint8_t *r, const mldsa_poly *a, unsigned w, int32_t off, int32_t sign)
{
	for (unsigned i = 0; i < N / 8; i++) {
		uint32_t v[8];
		for (unsigned j = 0; j < 8; j++)
			v[j] = (uint32_t)(off + sign * a->c[8 * i + j]);
		pack8(r + w * i, v, w);
	}
}

static inline void unpack_poly(mldsa_poly *a, const uint8_t *r, unsigned w, int32_t off, int32_t sign)
{
	for (unsigned i = 0; i < N / 8; i++) {
		uint32_t v[8];
		unpack8(v, r + w * i, w);
		for (unsigned j = 0; j < 8; j++)
			a->c[8 * i + j] = off + sign * (int32_t)v[j];
	}
}

void mldsa_pack_t1(uint8_t *r, const mldsa_poly *a)
{
	pack_poly(r, a, 10, 0, 1);
}

void mldsa_unpack_t1(mldsa_poly *a, const uint8_t *r)
{
	unpack_poly(a, r, 10, 0, 1);
}

void mldsa_pack_t0(uint8_t *r, const mldsa_poly *a)
{
	pack_poly(r, a, 13, 1 << (MLDSA_D - 1), -1);
}

void mldsa_unpack_t0(mldsa_poly *a, const uint8_t *r)
{
	unpack_poly(a, r, 13, 1 << (MLDSA_D - 1), -1);
}

void mldsa_pack_eta(uint8_t *r, const mldsa_poly *a, int eta)
{
	if (eta == 2)
		pack_poly(r, a, 3, 2, -1);
	else
		pack_poly(r, a, 4, 4, -1);
}

void mldsa_unpack_eta(mldsa_poly *a, const uint8_t *r, int eta)
{
	if (eta == 2)
		unpack_poly(a, r, 3, 2, -1);
	else
		unpack_poly(a, r, 4, 4, -1);
}

void mldsa_pack_z(uint8_t *r, const mldsa_poly *a, int32_t gamma1)
{
	if (gamma1 == (1 << 17))
		pack_poly(r, a, 18, 1 << 17, -1);
	else
		pack_poly(r, a, 20, 1 << 19, -1);
}

void mldsa_unpack_z(mldsa_poly *a, const uint8_t *r, int32_t gamma1)
{
	if (gamma1 == (1 << 17))
		unpack_poly(a, r, 18, 1 << 17, -1);
	else
		unpack_poly(a, r, 20, 1 << 19, -1);
}

void mldsa_pack_w1(uint8_t *r, const mldsa_poly *a, int32_t gamma2)
{
	if (gamma2 == (Q - 1) / 88)
		pack_poly(r, a, 6, 0, 1);
	else
		pack_poly(r, a, 4, 0, 1);
}
