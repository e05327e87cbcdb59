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

#include <float.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define Q MLDSA_Q
#define N MLDSA_N

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

/*
 * Two NTT back ends with the same contract (see mldsa_poly.h):
 *  - double precision (default where doubles are IEEE binary64 evaluated
 *    without excess precision): every product of the NTT and of the
 *    pointwise products is an integer below 2^53, so it is exact, and the
 *    reduction p - round(p/q) q is exact too.  Plain (non-Montgomery)
 *    domain.  The fixed-length loops let compilers vectorise them with
 *    the baseline SIMD of the target (SSE2 on x86-64, NEON on arm64);
 *    integer Montgomery products do not vectorise without SSE4.1.
 *  - 32-bit Montgomery integers (ref-style), for other targets or when
 *    MLDSA_NO_FP_NTT is defined.  Pointwise products carry a 2^-32 factor
 *    that the inverse NTT cancels.
 * FP multiply and add take the same time for all operands used here (all
 * are integers; no subnormals), so both are constant time.
 */
#if !defined(MLDSA_NO_FP_NTT) && FLT_RADIX == 2 && DBL_MANT_DIG == 53 && \
	(FLT_EVAL_METHOD == 0 || FLT_EVAL_METHOD == 1)
#define MLDSA_FP_NTT 1
#else
#define MLDSA_FP_NTT 0
#endif

#if MLDSA_FP_NTT

/* zd[i] = 1753^brv8(i) mod q, centred; zd[0] unused. */
static const double zd[N] = {
	0.0, -3572223.0, 3765607.0, 3761513.0, -3201494.0, -2883726.0, -3145678.0, -3201430.0,
	-601683.0, 3542485.0, 2682288.0, 2129892.0, 3764867.0, -1005239.0, 557458.0, -1221177.0,
	-3370349.0, -4063053.0, 2663378.0, -1674615.0, -3524442.0, -434125.0, 676590.0, -1335936.0,
	-3227876.0, 1714295.0, 2453983.0, 1460718.0, -642628.0, -3585098.0, 2815639.0, 2283733.0,
	3602218.0, 3182878.0, 2740543.0, -3586446.0, -3110818.0, 2101410.0, 3704823.0, 1159875.0,
	394148.0, 928749.0, 1095468.0, -3506380.0, 2071829.0, -4018989.0, 3241972.0, 2156050.0,
	3415069.0, 1759347.0, -817536.0, -3574466.0, 3756790.0, -1935799.0, -1716988.0, -3950053.0,
	-2897314.0, 3192354.0, 556856.0, 3870317.0, 2917338.0, 1853806.0, 3345963.0, 1858416.0,
	3073009.0, 1277625.0, -2635473.0, 3852015.0, 4183372.0, -3222807.0, -3121440.0, -274060.0,
	2508980.0, 2028118.0, 1937570.0, -3815725.0, 2811291.0, -2983781.0, -1109516.0, 4158088.0,
	1528066.0, 482649.0, 1148858.0, -2962264.0, -565603.0, 169688.0, 2462444.0, -3334383.0,
	-4166425.0, -3488383.0, 1987814.0, -3197248.0, 1736313.0, 235407.0, -3250154.0, 3258457.0,
	-2579253.0, 1787943.0, -2391089.0, -2254727.0, 3482206.0, -4182915.0, -1300016.0, -2362063.0,
	-1317678.0, 2461387.0, 3035980.0, 621164.0, 3901472.0, -1226661.0, 2925816.0, 3374250.0,
	1356448.0, -2775755.0, 2683270.0, -2778788.0, -3467665.0, 2312838.0, -653275.0, -459163.0,
	348812.0, -327848.0, 1011223.0, -2354215.0, -3818627.0, -1922253.0, -2236726.0, 1744507.0,
	1753.0, -1935420.0, -2659525.0, -1455890.0, 2660408.0, -1780227.0, -59148.0, 2772600.0,
	1182243.0, 87208.0, 636927.0, -3965306.0, -3956745.0, -2296397.0, -3284915.0, -3716946.0,
	-27812.0, 822541.0, 1009365.0, -2454145.0, -1979497.0, 1596822.0, -3956944.0, -3759465.0,
	-1685153.0, -3410568.0, 2678278.0, -3768948.0, -3551006.0, 635956.0, -250446.0, -2455377.0,
	-4146264.0, -1772588.0, 2192938.0, -1727088.0, 2387513.0, -3611750.0, -268456.0, -3180456.0,
	3747250.0, 2296099.0, 1239911.0, -3838479.0, 3195676.0, 2642980.0, 1254190.0, -12417.0,
	2998219.0, 141835.0, -89301.0, 2513018.0, -1354892.0, 613238.0, -1310261.0, -2218467.0,
	-458740.0, -1921994.0, 4040196.0, -3472069.0, 2039144.0, -1879878.0, -818761.0, -2178965.0,
	-1623354.0, 2105286.0, -2374402.0, -2033807.0, 586241.0, -1179613.0, 527981.0, -2743411.0,
	-1476985.0, 1994046.0, 2491325.0, -1393159.0, 507927.0, -1187885.0, -724804.0, -1834526.0,
	-3033742.0, -338420.0, 2647994.0, 3009748.0, -2612853.0, 4148469.0, 749577.0, -4022750.0,
	3980599.0, 2569011.0, -1615530.0, 1723229.0, 1665318.0, 2028038.0, 1163598.0, -3369273.0,
	3994671.0, -11879.0, -1370517.0, 3020393.0, 3363542.0, 214880.0, 545376.0, -770441.0,
	3105558.0, -1103344.0, 508145.0, -553718.0, 860144.0, 3430436.0, 140244.0, -1514152.0,
	-2185084.0, 3123762.0, 2358373.0, -2193087.0, -3014420.0, -1716814.0, 2926054.0, -392707.0,
	-303005.0, 3531229.0, -3974485.0, -3773731.0, 1900052.0, -781875.0, 1054478.0, -731434.0,
};

#define QD 8380417.0
#define QINVD (1.0 / 8380417.0)
#define MAGIC 6755399441055744.0 /* 1.5 * 2^52: x + MAGIC - MAGIC rounds x */
#define INV256 (-32736.0)        /* 256^-1 mod q, centred */
#define INV256_Z1 46690.0        /* 256^-1 * -zd[1] mod q */

/* A representative of p mod q in [-q/2 - 1, q/2 + 1] for integral |p| < 2^52.
 * p - k*q is exact whatever k is, so the rounding mode only moves the bound. */
static inline double redd(double p)
{
	double k = (p * QINVD + MAGIC) - MAGIC;
	return p - k * QD;
}

/* Scalar butterfly layers (any length). */
#define FWD_LAYER_S(LEN)                                                     \
	for (unsigned start = 0; start < N; start += 2 * (LEN)) {            \
		double z = zd[++k];                                          \
		for (unsigned j = start; j < start + (LEN); j++) {           \
			double t = redd(a[j + (LEN)] * z);                   \
			a[j + (LEN)] = a[j] - t;                             \
			a[j] = a[j] + t;                                     \
		}                                                            \
	}

#define INV_LAYER_S(LEN)                                                     \
	for (unsigned start = 0; start < N; start += 2 * (LEN)) {            \
		double z = -zd[--k];                                         \
		for (unsigned j = start; j < start + (LEN); j++) {           \
			double t = a[j];                                     \
			a[j] = t + a[j + (LEN)];                             \
			a[j + (LEN)] = redd((t - a[j + (LEN)]) * z);         \
		}                                                            \
	}

#if defined(__GNUC__) && !defined(MLDSA_NO_VECTOR_EXT)
/* GCC/clang generic vectors of 4 doubles: lowered to whatever SIMD the
 * target has (2 x SSE2 on baseline x86-64, NEON on arm64, AVX when built
 * for it), or to scalar code.  Same arithmetic as the scalar layers. */
typedef double vd4 __attribute__((vector_size(32)));

/* x = redd(x) lane-wise (a macro: vector return values warn about ABI). */
#define VREDD(x)                                                             \
	do {                                                                 \
		vd4 k_ = ((x) * QINVD + MAGIC) - MAGIC;                      \
		(x) = (x) - k_ * QD;                                         \
	} while (0)

#define FWD_LAYER(LEN)                                                       \
	for (unsigned start = 0; start < N; start += 2 * (LEN)) {            \
		double z = zd[++k];                                          \
		for (unsigned j = start; j < start + (LEN); j += 4) {        \
			vd4 x, y, t;                                         \
			memcpy(&x, &a[j], sizeof(x));                        \
			memcpy(&y, &a[j + (LEN)], sizeof(y));                \
			t = y * z;                                           \
			VREDD(t);                                            \
			y = x - t;                                           \
			x = x + t;                                           \
			memcpy(&a[j], &x, sizeof(x));                        \
			memcpy(&a[j + (LEN)], &y, sizeof(y));                \
		}                                                            \
	}

#define INV_LAYER(LEN)                                                       \
	for (unsigned start = 0; start < N; start += 2 * (LEN)) {            \
		double z = -zd[--k];                                         \
		for (unsigned j = start; j < start + (LEN); j += 4) {        \
			vd4 x, y;                                            \
			memcpy(&x, &a[j], sizeof(x));                        \
			memcpy(&y, &a[j + (LEN)], sizeof(y));                \
			vd4 d = x - y;                                       \
			x = x + y;                                           \
			y = d * z;                                           \
			VREDD(y);                                            \
			memcpy(&a[j], &x, sizeof(x));                        \
			memcpy(&a[j + (LEN)], &y, sizeof(y));                \
		}                                                            \
	}

/* Length-2 layers on vectors of 2 doubles (partners are contiguous). */
typedef double vd2 __attribute__((vector_size(16)));

#define FWD_LAYER2()                                                         \
	for (unsigned j = 0; j < N; j += 4) {                                \
		double z = zd[++k];                                          \
		vd2 x, y, t;                                                 \
		memcpy(&x, &a[j], sizeof(x));                                \
		memcpy(&y, &a[j + 2], sizeof(y));                            \
		t = y * z;                                                   \
		t = t - (((t * QINVD) + MAGIC) - MAGIC) * QD;                \
		y = x - t;                                                   \
		x = x + t;                                                   \
		memcpy(&a[j], &x, sizeof(x));                                \
		memcpy(&a[j + 2], &y, sizeof(y));                            \
	}

#define INV_LAYER2()                                                         \
	for (unsigned j = 0; j < N; j += 4) {                                \
		double z = -zd[--k];                                         \
		vd2 x, y, d;                                                 \
		memcpy(&x, &a[j], sizeof(x));                                \
		memcpy(&y, &a[j + 2], sizeof(y));                            \
		d = (x - y) * z;                                             \
		x = x + y;                                                   \
		y = d - (((d * QINVD) + MAGIC) - MAGIC) * QD;                \
		memcpy(&a[j], &x, sizeof(x));                                \
		memcpy(&a[j + 2], &y, sizeof(y));                            \
	}

/* Length-1 layers (partners adjacent): two butterflies at a time, the
 * even and odd coefficients separated with shuffles (unpcklpd/unpckhpd), where the compiler
 * has them (GCC 12+, clang); same arithmetic as the scalar layers. */
#if defined(__has_builtin)
#if __has_builtin(__builtin_shufflevector)
#define MLDSA_HAVE_SHUFFLE 1
#endif
#endif
#ifdef MLDSA_HAVE_SHUFFLE
#define FWD_LAYER1()                                                         \
	for (unsigned j = 0; j < N; j += 4) {                                \
		vd2 x, y, z, lo, hi, t;                                      \
		memcpy(&x, &a[j], sizeof(x));                                \
		memcpy(&y, &a[j + 2], sizeof(y));                            \
		memcpy(&z, &zd[k + 1], sizeof(z));                          \
		k += 2;                                                      \
		lo = __builtin_shufflevector(x, y, 0, 2);                    \
		hi = __builtin_shufflevector(x, y, 1, 3);                    \
		t = hi * z;                                                  \
		t = t - (((t * QINVD) + MAGIC) - MAGIC) * QD;                \
		hi = lo - t;                                                 \
		lo = lo + t;                                                 \
		x = __builtin_shufflevector(lo, hi, 0, 2);                   \
		y = __builtin_shufflevector(lo, hi, 1, 3);                   \
		memcpy(&a[j], &x, sizeof(x));                                \
		memcpy(&a[j + 2], &y, sizeof(y));                            \
	}

#define INV_LAYER1()                                                         \
	for (unsigned j = 0; j < N; j += 4) {                                \
		vd2 x, y, z, lo, hi, d;                                      \
		memcpy(&x, &a[j], sizeof(x));                                \
		memcpy(&y, &a[j + 2], sizeof(y));                            \
		memcpy(&z, &zd[k - 2], sizeof(z));                           \
		k -= 2;                                                      \
		z = -__builtin_shufflevector(z, z, 1, 0);                    \
		lo = __builtin_shufflevector(x, y, 0, 2);                    \
		hi = __builtin_shufflevector(x, y, 1, 3);                    \
		d = (lo - hi) * z;                                           \
		lo = lo + hi;                                                \
		d = d - (((d * QINVD) + MAGIC) - MAGIC) * QD;                \
		x = __builtin_shufflevector(lo, d, 0, 2);                    \
		y = __builtin_shufflevector(lo, d, 1, 3);                    \
		memcpy(&a[j], &x, sizeof(x));                                \
		memcpy(&a[j + 2], &y, sizeof(y));                            \
	}
#else
#define FWD_LAYER1() FWD_LAYER_S(1)
#define INV_LAYER1() INV_LAYER_S(1)
#endif

/* Last inverse layer with 1/256 folded in. */
#define INV_LAST()                                                           \
	for (unsigned j = 0; j < N / 2; j += 4) {                            \
		vd4 x, y;                                                    \
		memcpy(&x, &a[j], sizeof(x));                                \
		memcpy(&y, &a[j + N / 2], sizeof(y));                        \
		vd4 s = (x + y) * INV256, d = (x - y) * INV256_Z1;           \
		VREDD(s);                                                    \
		VREDD(d);                                                    \
		memcpy(&a[j], &s, sizeof(s));                                \
		memcpy(&a[j + N / 2], &d, sizeof(d));                        \
	}

#define REDUCE_ALL()                                                         \
	for (unsigned i = 0; i < N; i += 4) {                                \
		vd4 x;                                                       \
		memcpy(&x, &a[i], sizeof(x));                                \
		VREDD(x);                                                    \
		memcpy(&a[i], &x, sizeof(x));                                \
	}
#else
#define FWD_LAYER FWD_LAYER_S
#define INV_LAYER INV_LAYER_S
#define FWD_LAYER2() FWD_LAYER_S(2)
#define INV_LAYER2() INV_LAYER_S(2)
#define FWD_LAYER1() FWD_LAYER_S(1)
#define INV_LAYER1() INV_LAYER_S(1)
#define INV_LAST()                                                           \
	for (unsigned j = 0; j < N / 2; j++) {                               \
		double t = a[j], u = a[j + N / 2];                           \
		a[j] = redd((t + u) * INV256);                               \
		a[j + N / 2] = redd((t - u) * INV256_Z1);                    \
	}
#define REDUCE_ALL()                                                         \
	for (unsigned i = 0; i < N; i++)                                     \
		a[i] = redd(a[i]);
#endif

#define FN(x) x##_port
#define FN_ATTR
#include "sig/mldsa/mldsa_ntt_fp.inc"
#undef FN
#undef FN_ATTR

/* The same source compiled for AVX2 + FMA: the vd4 vectors become single
 * ymm registers.  Used when the CPU has both and CRETO_MLDSA_NO_AVX2 is
 * unset or "0" (tests and benchmarks set it to run the portable code). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(MLDSA_NO_VECTOR_EXT) && \
	!defined(MLDSA_NO_AVX2)
#define MLDSA_AVX2 1
#define FN(x) x##_avx2
#define FN_ATTR __attribute__((target("avx2,fma")))
#include "sig/mldsa/mldsa_ntt_fp.inc"
#undef FN
#undef FN_ATTR
#else
#define MLDSA_AVX2 0
#endif

static struct backend {
	void (*ntt)(mldsa_poly *);
	void (*invntt)(mldsa_poly *);
	void (*pointwise)(mldsa_poly *, const mldsa_poly *, const mldsa_poly *);
	void (*pointwise_acc)(mldsa_poly *, const mldsa_poly *, const mldsa_poly *, unsigned);
	const char *name;
} g_be = {ntt_port, invntt_port, pointwise_port, pointwise_acc_port, "portable"};
static pthread_once_t g_be_once = PTHREAD_ONCE_INIT;

static void be_choose(void)
{
#if MLDSA_AVX2
	const char *env = getenv("CRETO_MLDSA_NO_AVX2");
	__builtin_cpu_init();
	if ((env == NULL || strcmp(env, "0") == 0) && __builtin_cpu_supports("avx2") &&
	    __builtin_cpu_supports("fma")) {
		g_be.ntt = ntt_avx2;
		g_be.invntt = invntt_avx2;
		g_be.pointwise = pointwise_avx2;
		g_be.pointwise_acc = pointwise_acc_avx2;
		g_be.name = "avx2";
	}
#endif
}

static inline const struct backend *be(void)
{
	(void)pthread_once(&g_be_once, be_choose);
	return &g_be;
}

const char *mldsa_backend(void)
{
	return be()->name;
}

void mldsa_ntt(mldsa_poly *p)
{
	be()->ntt(p);
}

void mldsa_invntt(mldsa_poly *p)
{
	be()->invntt(p);
}

void mldsa_poly_pointwise(mldsa_poly *c, const mldsa_poly *a, const mldsa_poly *b)
{
	be()->pointwise(c, a, b);
}

void mldsa_poly_pointwise_acc(mldsa_poly *c, const mldsa_poly *a, const mldsa_poly *b, unsigned n)
{
	be()->pointwise_acc(c, a, b, n);
}

#else /* !MLDSA_FP_NTT */

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

void mldsa_invntt(mldsa_poly *p)
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

const char *mldsa_backend(void)
{
	return "integer";
}

#endif /* MLDSA_FP_NTT */

void mldsa_ternary_prepare(mldsa_ternary *tc, const mldsa_poly *c)
{
	/* c is public (verification only): branches on its coefficients. */
	int32_t total = 0, prefix = 0;
	tc->w = 0;
	for (unsigned p = 0; p < N; p++) {
		if (c->c[p] != 0) {
			tc->pos[tc->w] = (uint8_t)p;
			tc->neg[tc->w] = (uint8_t)(c->c[p] < 0);
			tc->w++;
		}
		total += c->c[p];
	}
	/* (c * J)[k] for J = 1 + X + ... + X^255: sum of c_p over p <= k minus
	 * the sum over p > k (X^256 = -1 wraps the latter with a minus). */
	for (unsigned k = 0; k < N; k++) {
		prefix += c->c[k];
		tc->cj[k] = 2 * prefix - total;
	}
}

/*
 * r = c * t1 in Z[X]/(X^256 + 1), exactly (no reduction mod q), for t1
 * with coefficients in [0, 1023] and c from mldsa_ternary_prepare (at most
 * 60 coefficients +-1: tau <= 60).  Verification uses this instead of NTT(c),
 * NTT(t1 * 2^d) and their product when the public key is new: a sum of
 * signed negacyclic shifts of t1, one per nonzero of c, which costs less
 * than the transforms.  With u = t1 - 512 in [-512, 511], c * t1 =
 * c * u + 512 * (c * J) and |c * u| <= 60 * 512 < 2^15, so the sums of
 * shifts run on 16-bit lanes (8 per SSE2 / NEON register).  ext
 * holds -u then u (and the negation), so the shift by p with its
 * wrap-around sign is the contiguous window ext + 256 - p.
 */
void mldsa_poly_mul_ternary_t1(mldsa_poly *r, const mldsa_ternary *tc, const mldsa_poly *t1)
{
	int16_t ext[2][2 * N];
	int16_t acc[N];
	const int16_t *src[N];
	for (unsigned k = 0; k < N; k++) {
		int16_t u = (int16_t)(t1->c[k] - 512);
		ext[0][k] = (int16_t)-u;
		ext[0][k + N] = u;
		ext[1][k] = u;
		ext[1][k + N] = (int16_t)-u;
	}
	for (unsigned i = 0; i < tc->w; i++)
		src[i] = ext[tc->neg[i]] + N - tc->pos[i];
#if defined(__GNUC__) && !defined(MLDSA_NO_VECTOR_EXT)
	/* 64 outputs at a time in eight 8-lane accumulators; each window is
	 * read unaligned.  No lane overflows (see above). */
	typedef int16_t vi8 __attribute__((vector_size(16)));
	for (unsigned kb = 0; kb < N; kb += 64) {
		vi8 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, a4 = {0}, a5 = {0}, a6 = {0}, a7 = {0};
		for (unsigned i = 0; i < tc->w; i++) {
			const int16_t *q = src[i] + kb;
			vi8 x0, x1, x2, x3, x4, x5, x6, x7;
			memcpy(&x0, q, 16), memcpy(&x1, q + 8, 16), memcpy(&x2, q + 16, 16);
			memcpy(&x3, q + 24, 16), memcpy(&x4, q + 32, 16), memcpy(&x5, q + 40, 16);
			memcpy(&x6, q + 48, 16), memcpy(&x7, q + 56, 16);
			a0 += x0, a1 += x1, a2 += x2, a3 += x3, a4 += x4, a5 += x5, a6 += x6, a7 += x7;
		}
		int16_t *o = acc + kb;
		memcpy(o, &a0, 16), memcpy(o + 8, &a1, 16), memcpy(o + 16, &a2, 16);
		memcpy(o + 24, &a3, 16), memcpy(o + 32, &a4, 16), memcpy(o + 40, &a5, 16);
		memcpy(o + 48, &a6, 16), memcpy(o + 56, &a7, 16);
	}
#else
	for (unsigned k = 0; k < N; k++) {
		int32_t sum = 0;
		for (unsigned i = 0; i < tc->w; i++)
			sum += src[i][k];
		acc[k] = (int16_t)sum;
	}
#endif
#if defined(__GNUC__) && !defined(MLDSA_NO_VECTOR_EXT)
	/* Widen four at a time (compilers do not vectorise the plain loop
	 * for baseline SSE2). */
	typedef int16_t v4i16 __attribute__((vector_size(8)));
	typedef int32_t v4i32 __attribute__((vector_size(16)));
	for (unsigned k = 0; k < N; k += 4) {
		v4i16 a;
		v4i32 cj, o;
		memcpy(&a, acc + k, sizeof(a));
		memcpy(&cj, tc->cj + k, sizeof(cj));
		o = __builtin_convertvector(a, v4i32) + cj * 512;
		memcpy(r->c + k, &o, sizeof(o));
	}
#else
	for (unsigned k = 0; k < N; k++)
		r->c[k] = acc[k] + 512 * tc->cj[k];
#endif
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

/* c may be a or b: compilers then keep the plain loops scalar (baseline
 * -O2 vectorises only without run-time overlap checks), so they are
 * written with generic 4-lane vectors where available; each step loads
 * its lanes before storing them, which is right for c == a or c == b. */
#if defined(__GNUC__) && !defined(MLDSA_NO_VECTOR_EXT)
typedef int32_t vi4 __attribute__((vector_size(16)));
#define POLY_LANEWISE(c, a, b, OP)                                           \
	for (unsigned i = 0; i < N; i += 4) {                                \
		vi4 x_, y_;                                                  \
		memcpy(&x_, &(a)->c[i], sizeof(x_));                         \
		memcpy(&y_, &(b)->c[i], sizeof(y_));                         \
		x_ = x_ OP y_;                                               \
		memcpy(&(c)->c[i], &x_, sizeof(x_));                         \
	}
#else
#define POLY_LANEWISE(c, a, b, OP)                                           \
	for (unsigned i = 0; i < N; i++)                                     \
		(c)->c[i] = (a)->c[i] OP (b)->c[i];
#endif

void mldsa_poly_add(mldsa_poly *c, const mldsa_poly *a, const mldsa_poly *b)
{
	POLY_LANEWISE(c, a, b, +)
}

void mldsa_poly_sub(mldsa_poly *c, const mldsa_poly *a, const mldsa_poly *b)
{
	POLY_LANEWISE(c, a, b, -)
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

void mldsa_poly_power2round(mldsa_poly *restrict a1, mldsa_poly *restrict a0,
			    const mldsa_poly *restrict a)
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
		/* a1 >= 0 here; shifts instead of products (SSE2 has no 32-bit
		 * vector multiply): 1025 = 2^10 + 1, 2 gamma2 = 2^19 - 2^9. */
		a1 = ((a1 << 10) + a1 + (1 << 21)) >> 22;
		a1 &= 15;
		*a0 = a - ((a1 << 19) - (a1 << 9));
	} else {
		a1 = (a1 * 11275 + (1 << 23)) >> 24;
		a1 ^= ((43 - a1) >> 31) & a1;
		*a0 = a - a1 * 2 * gamma2;
	}
	*a0 -= (((Q - 1) / 2 - *a0) >> 31) & Q;
	return a1;
}

void mldsa_poly_decompose(mldsa_poly *restrict a1, mldsa_poly *restrict a0,
			  const mldsa_poly *restrict a, int32_t gamma2)
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

unsigned mldsa_poly_make_hint(mldsa_poly *restrict h, const mldsa_poly *restrict a0,
			      const mldsa_poly *restrict a1, int32_t gamma2)
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

void mldsa_poly_use_hint(mldsa_poly *restrict b, const mldsa_poly *restrict a,
			 const mldsa_poly *restrict h, int32_t gamma2)
{
	/* Public data, but branch-free anyway: hints are sparse and scattered,
	 * so per-coefficient branches mispredict; this form also vectorises.
	 * With a hint, HighBits moves up by one when a0 > 0 and down by one
	 * otherwise, modulo m = (q-1) / (2 gamma2) (16 or 44). */
	if (gamma2 == (Q - 1) / 32) {
		for (unsigned i = 0; i < N; i++) {
			int32_t a0;
			int32_t a1 = decompose(&a0, a->c[i], (Q - 1) / 32);
			int32_t up = (int32_t)((uint32_t)(-a0) >> 31); /* a0 > 0 */
			/* h is 0 or 1: add +1 / -1 under the mask -h (no products,
			 * which baseline SSE2 lacks for 32-bit lanes). */
			b->c[i] = (a1 + ((2 * up - 1) & -h->c[i])) & 15;
		}
	} else {
		for (unsigned i = 0; i < N; i++) {
			int32_t a0;
			int32_t a1 = decompose(&a0, a->c[i], (Q - 1) / 88);
			int32_t up = (int32_t)((uint32_t)(-a0) >> 31);
			int32_t v = a1 + ((2 * up - 1) & -h->c[i]); /* in [-1, 44] */
			v += (v >> 31) & 44;                /* -1 -> 43 */
			v -= ((43 - v) >> 31) & 44;         /* 44 -> 0 */
			b->c[i] = v;
		}
	}
}

/* Little-endian 24-bit load (compilers merge the byte loads). */
static inline uint32_t load24(const uint8_t *b)
{
	return b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16;
}

static inline uint64_t load64le(const uint8_t *b)
{
	return (uint64_t)b[0] | (uint64_t)b[1] << 8 | (uint64_t)b[2] << 16 | (uint64_t)b[3] << 24 |
	       (uint64_t)b[4] << 32 | (uint64_t)b[5] << 40 | (uint64_t)b[6] << 48 |
	       (uint64_t)b[7] << 56;
}

unsigned mldsa_rej_uniform(int32_t *a, unsigned done, const uint8_t *buf, size_t buflen)
{
	/* ExpandA is public: branching on acceptance is fine.  Fast path: eight
	 * 23-bit candidates from three 64-bit words; all eight are accepted
	 * with probability 0.996, else they are compacted one by one (each is
	 * written at a[done], which advances only when it is accepted). */
	size_t pos = 0;
	const uint32_t m = 0x7fffff;
	while (done + 8 <= N && pos + 24 <= buflen) {
		uint64_t w0 = load64le(buf + pos), w1 = load64le(buf + pos + 8),
			 w2 = load64le(buf + pos + 16);
		/* Eight named values, not an array: GCC would vectorise the
		 * acceptance test through the stack (a store-forwarding stall). */
		uint32_t t0 = (uint32_t)w0 & m, t1 = (uint32_t)(w0 >> 24) & m,
			 t2 = (uint32_t)(w0 >> 48 | w1 << 16) & m, t3 = (uint32_t)(w1 >> 8) & m,
			 t4 = (uint32_t)(w1 >> 32) & m, t5 = (uint32_t)(w1 >> 56 | w2 << 8) & m,
			 t6 = (uint32_t)(w2 >> 16) & m, t7 = (uint32_t)(w2 >> 40) & m;
		pos += 24;
		/* t < 2^23: t - Q wraps (top bit set) exactly when t < Q. */
		const uint32_t q = (uint32_t)Q;
		uint32_t ok = (t0 - q) & (t1 - q) & (t2 - q) & (t3 - q) & (t4 - q) & (t5 - q) &
			      (t6 - q) & (t7 - q);
		int32_t *d = a + done;
		if (ok >> 31) {
			d[0] = (int32_t)t0, d[1] = (int32_t)t1, d[2] = (int32_t)t2;
			d[3] = (int32_t)t3, d[4] = (int32_t)t4, d[5] = (int32_t)t5;
			d[6] = (int32_t)t6, d[7] = (int32_t)t7;
			done += 8;
		} else {
			unsigned c = 0;
#define REJ_PUT(t) (d[c] = (int32_t)(t), c += (t) < q)
			REJ_PUT(t0), REJ_PUT(t1), REJ_PUT(t2), REJ_PUT(t3);
			REJ_PUT(t4), REJ_PUT(t5), REJ_PUT(t6), REJ_PUT(t7);
#undef REJ_PUT
			done += c;
		}
	}
	while (done < N && pos + 3 <= buflen) {
		uint32_t t = load24(buf + pos) & m;
		pos += 3;
		if (t < Q)
			a[done++] = (int32_t)t;
	}
	return done;
}

unsigned mldsa_rej_eta(int32_t *a, unsigned done, const uint8_t *buf, size_t buflen, int eta)
{
	/* Secret data (ExpandS).  Every nibble of buf goes through the same
	 * branch-free steps: the candidate's value, its acceptance bit
	 * (nibble < 15 for eta 2, < 9 for eta 4), a masked store to a[done]
	 * (once 256 are filled, a[N - 1] is rewritten with itself) and done +=
	 * accepted.  Control flow depends only on buflen; the store address
	 * follows the count of accepted candidates (the rejection pattern,
	 * which FIPS 204's rejection sampling makes depend on the XOF output),
	 * never an accepted value. */
	const uint32_t bound = eta == 2 ? 15 : 9;
	for (size_t pos = 0; pos < buflen; pos++) {
		for (unsigned half = 0; half < 2; half++) {
			uint32_t t = half ? (uint32_t)buf[pos] >> 4 : buf[pos] & 0x0fu;
			int32_t v = eta == 2 ? 2 - (int32_t)(t - ((205 * t) >> 10) * 5) : 4 - (int32_t)t;
			uint32_t ok = (t - bound) >> 31;          /* t < bound */
			uint32_t room = (uint32_t)(done - N) >> 31; /* done < N */
			unsigned idx = done - (room ^ 1u);
			uint32_t m = 0u - (ok & room);
			a[idx] = (int32_t)(((uint32_t)v & m) | ((uint32_t)a[idx] & ~m));
			done += ok & room;
		}
	}
	return done;
}

int mldsa_sample_in_ball(mldsa_poly *c, const uint8_t *buf, size_t buflen, unsigned tau, int ct)
{
	if (buflen < 8)
		return -1;
	uint64_t signs = 0;
	for (unsigned i = 0; i < 8; i++)
		signs |= (uint64_t)buf[i] << (8 * i);
	size_t pos = 8;
	/* Coefficients are in {-1, 0, 1}: work on bytes (16 per SSE2 lane op). */
	int8_t cc[N];
	uint8_t idx[N];
	for (unsigned p = 0; p < N; p++) {
		cc[p] = 0;
		idx[p] = (uint8_t)p;
	}
	for (unsigned i = N - tau; i < N; i++) {
		unsigned j;
		do {
			if (pos >= buflen)
				return -1;
			j = buf[pos++];
		} while (j > i);
		int8_t s = (int8_t)(1 - 2 * (int)(signs & 1));
		signs >>= 1;
		if (!ct) {
			cc[i] = cc[j];
			cc[j] = s;
			continue;
		}
		/* c[i] = c[j]; c[j] = s; with masks over all 256 positions instead
		 * of indexing by j, in one pass: read c[j], write s there, then
		 * set c[i] to the old c[j] unless i == j. */
		uint8_t jb = (uint8_t)j;
		int8_t cj = 0;
		for (unsigned p = 0; p < N; p++) {
			int8_t m = (int8_t)-(idx[p] == jb);
			cj = (int8_t)(cj | (cc[p] & m));
			cc[p] = (int8_t)((cc[p] & ~m) | (s & m));
		}
		int8_t mi = (int8_t)-(i == j);
		cc[i] = (int8_t)((s & mi) | (cj & ~mi));
	}
	for (unsigned p = 0; p < N; p++)
		c->c[p] = cc[p];
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
	/* Four 10-bit values from each five bytes (verification unpacks k of
	 * these per new public key). */
	for (unsigned i = 0; i < N / 4; i++, r += 5) {
		uint64_t v = (uint64_t)r[0] | (uint64_t)r[1] << 8 | (uint64_t)r[2] << 16 |
			     (uint64_t)r[3] << 24 | (uint64_t)r[4] << 32;
		a->c[4 * i + 0] = (int32_t)(v & 0x3ff);
		a->c[4 * i + 1] = (int32_t)((v >> 10) & 0x3ff);
		a->c[4 * i + 2] = (int32_t)((v >> 20) & 0x3ff);
		a->c[4 * i + 3] = (int32_t)(v >> 30);
	}
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
	/* Straight-line per group (ExpandMask runs this l times per attempt). */
	if (gamma1 == (1 << 17)) {
		for (unsigned i = 0; i < N / 4; i++, r += 9) {
			uint64_t v = 0;
			for (unsigned b = 0; b < 8; b++)
				v |= (uint64_t)r[b] << (8 * b);
			uint32_t hi = r[8];
			a->c[4 * i + 0] = (1 << 17) - (int32_t)(v & 0x3ffff);
			a->c[4 * i + 1] = (1 << 17) - (int32_t)((v >> 18) & 0x3ffff);
			a->c[4 * i + 2] = (1 << 17) - (int32_t)((v >> 36) & 0x3ffff);
			a->c[4 * i + 3] = (1 << 17) - (int32_t)(((v >> 54) | (uint64_t)hi << 10) & 0x3ffff);
		}
	} else {
		for (unsigned i = 0; i < N / 2; i++, r += 5) {
			uint64_t v = r[0] | (uint64_t)r[1] << 8 | (uint64_t)r[2] << 16 |
				     (uint64_t)r[3] << 24 | (uint64_t)r[4] << 32;
			a->c[2 * i + 0] = (1 << 19) - (int32_t)(v & 0xfffff);
			a->c[2 * i + 1] = (1 << 19) - (int32_t)(v >> 20);
		}
	}
}

void mldsa_pack_w1(uint8_t *r, const mldsa_poly *a, int32_t gamma2)
{
	if (gamma2 == (Q - 1) / 88) {
		for (unsigned i = 0; i < N / 4; i++, r += 3) {
			const int32_t *c = &a->c[4 * i];
			uint32_t v = (uint32_t)c[0] | (uint32_t)c[1] << 6 | (uint32_t)c[2] << 12 |
				     (uint32_t)c[3] << 18;
			r[0] = (uint8_t)v;
			r[1] = (uint8_t)(v >> 8);
			r[2] = (uint8_t)(v >> 16);
		}
	} else {
		for (unsigned i = 0; i < N / 2; i++)
			r[i] = (uint8_t)(a->c[2 * i] | a->c[2 * i + 1] << 4);
	}
}
