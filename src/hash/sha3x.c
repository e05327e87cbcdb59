/*
 * sha3x.c - the multi-buffer SHA3-256 engine: back-end choice and
 * calibration, lane bookkeeping (partial blocks, lanes dropping out of a
 * batch), padding, and the OpenSSL single-stream back end.  The Keccak
 * kernels are in keccakx_scalar.c, keccak4x_avx2.c and keccak8x_avx512.c.
 * See sha3x.h.
 */
#include "hash/sha3x.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "hash/hash_internal.h"
#include "hash/keccakx.h"

_Static_assert(SHA3X_RATE == KX_RATE, "one rate");
_Static_assert(SHA3X_LANES_MAX == KX_STRIDE, "state stride = widest kernel");

typedef void kx_multi_fn(uint64_t *s, const uint8_t *const p[], size_t nblocks);

struct sha3x_ctx {
	_Alignas(64) uint64_t s[25 * KX_STRIDE]; /* interleaved states, see keccakx.h */
	uint8_t pend[SHA3X_LANES_MAX][SHA3X_RATE]; /* a lane's partial block */
	unsigned npend[SHA3X_LANES_MAX];
	unsigned char live[SHA3X_LANES_MAX]; /* started, not finished */
	sha3x_impl impl;
	unsigned lanes;
	kx_multi_fn *kernel; /* NULL for the one-lane back ends */
	EVP_MD_CTX *md;      /* the OpenSSL back end */
};

/* ---- back ends, switches, calibration ---------------------------------- */

static const char *const impl_names[SHA3X_IMPL_COUNT] = {"auto", "openssl", "scalar", "avx2",
							  "avx512"};
static const unsigned impl_lanes[SHA3X_IMPL_COUNT] = {0, 1, 1, 4, 8};

#ifdef KX_HAVE_X86
static kx_multi_fn *const impl_kernel[SHA3X_IMPL_COUNT] = {
	NULL, NULL, NULL, kx_absorb_x4_avx2, kx_absorb_x8_avx512};
#else
static kx_multi_fn *const impl_kernel[SHA3X_IMPL_COUNT] = {NULL, NULL, NULL, NULL, NULL};
#endif

static struct {
	unsigned char avail[SHA3X_IMPL_COUNT];
	double rate[SHA3X_IMPL_COUNT]; /* bytes per CPU-second, one thread */
	sha3x_impl best;               /* AUTO without FIPS */
} g;
static pthread_once_t g_avail_once = PTHREAD_ONCE_INIT;
static pthread_once_t g_cal_once = PTHREAD_ONCE_INIT;

/* A switch is off unless set to something other than "0" (as ML-DSA's). */
static int switched_off(const char *name)
{
	const char *v = getenv(name);
	return v != NULL && strcmp(v, "0") != 0;
}

static void avail_init(void)
{
	g.avail[SHA3X_IMPL_OPENSSL] = 1;
	g.avail[SHA3X_IMPL_SCALAR] = 1;
#ifdef KX_HAVE_X86
	__builtin_cpu_init();
	int no_avx2 = switched_off("CRETO_SHA3_NO_AVX2");
	g.avail[SHA3X_IMPL_AVX2] = !no_avx2 && __builtin_cpu_supports("avx2");
	g.avail[SHA3X_IMPL_AVX512] = !no_avx2 && !switched_off("CRETO_SHA3_NO_AVX512") &&
				     __builtin_cpu_supports("avx512f");
#endif
}

static double cpu_seconds(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
		return 0;
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#define CAL_BLOCKS 128 /* per lane and run: 17 KiB */
#define CAL_RUNS 5     /* best of: other load on the machine only slows a run down */

/* Throughput of one back end over lanes * CAL_BLOCKS blocks of buf, bytes
 * per CPU-second (best of CAL_RUNS); 0 if it cannot be measured. */
static double measure(sha3x_impl impl, const uint8_t *buf)
{
	unsigned lanes = impl_lanes[impl];
	size_t per = (size_t)CAL_BLOCKS * SHA3X_RATE;
	double best = 0;
	EVP_MD_CTX *md = NULL;
	_Alignas(64) static _Thread_local uint64_t s[25 * KX_STRIDE];
	if (impl == SHA3X_IMPL_OPENSSL) {
		const EVP_MD *sha3 = creto_hash__md(CRETO_HASH_SHA3_256);
		if (sha3 == NULL || (md = EVP_MD_CTX_new()) == NULL)
			return 0;
		if (EVP_DigestInit_ex(md, sha3, NULL) != 1)
			goto out;
	}
	memset(s, 0, sizeof(s));
	for (int r = 0; r < CAL_RUNS; r++) {
		double t0 = cpu_seconds();
		if (impl == SHA3X_IMPL_OPENSSL) {
			if (EVP_DigestUpdate(md, buf, per) != 1)
				goto out;
		} else if (impl == SHA3X_IMPL_SCALAR) {
			kx_absorb_x1(s, buf, CAL_BLOCKS);
		} else {
			const uint8_t *p[SHA3X_LANES_MAX];
			for (unsigned j = 0; j < lanes; j++)
				p[j] = buf + j * per;
			impl_kernel[impl](s, p, CAL_BLOCKS);
		}
		double t = cpu_seconds() - t0;
		double rate = t > 0 ? (double)(lanes * per) / t : 0;
		if (rate > best)
			best = rate;
	}
out:
	EVP_MD_CTX_free(md);
	return best;
}

static void calibrate(void)
{
	(void)pthread_once(&g_avail_once, avail_init);
	g.best = SHA3X_IMPL_OPENSSL;
	uint8_t *buf = malloc((size_t)SHA3X_LANES_MAX * CAL_BLOCKS * SHA3X_RATE);
	if (buf == NULL)
		return; /* no figures: OpenSSL everywhere, scalar for lanes left alone */
	for (size_t i = 0; i < (size_t)SHA3X_LANES_MAX * CAL_BLOCKS * SHA3X_RATE; i++)
		buf[i] = (uint8_t)(i * 131 + (i >> 8));
	for (int i = 1; i < SHA3X_IMPL_COUNT; i++)
		if (g.avail[i])
			g.rate[i] = measure((sha3x_impl)i, buf);
	free(buf);
	/* the fastest multi-way back end, if it beats OpenSSL by 5% */
	sha3x_impl v = SHA3X_IMPL_AUTO;
	for (int i = SHA3X_IMPL_AVX2; i < SHA3X_IMPL_COUNT; i++)
		if (g.avail[i] && g.rate[i] > 0 && (v == SHA3X_IMPL_AUTO || g.rate[i] > g.rate[v]))
			v = (sha3x_impl)i;
	if (v != SHA3X_IMPL_AUTO && g.rate[v] >= 1.05 * g.rate[SHA3X_IMPL_OPENSSL])
		g.best = v;
}

/* Process-wide settings, read at every choice: FIPS asked for by the
 * application (sha3x_set_fips) and the back end forced by a test or a
 * benchmark (sha3x_force; AUTO: none). */
static atomic_int g_fips_on;
static atomic_int g_force = SHA3X_IMPL_AUTO;

static int fips_active(unsigned flags)
{
	return (flags & SHA3X_FIPS) != 0 || atomic_load(&g_fips_on) != 0 ||
	       EVP_default_properties_is_fips_enabled(NULL) == 1;
}

void sha3x_set_fips(int on)
{
	atomic_store(&g_fips_on, on != 0);
}

int sha3x_fips(unsigned flags)
{
	return fips_active(flags);
}

void sha3x_force(sha3x_impl impl)
{
	atomic_store(&g_force, (unsigned)impl < SHA3X_IMPL_COUNT ? (int)impl : (int)SHA3X_IMPL_AUTO);
}

const char *sha3x_impl_name(sha3x_impl impl)
{
	return (unsigned)impl < SHA3X_IMPL_COUNT ? impl_names[impl] : NULL;
}

int sha3x_impl_from_name(const char *name)
{
	for (int i = 0; name != NULL && i < SHA3X_IMPL_COUNT; i++)
		if (strcmp(name, impl_names[i]) == 0)
			return i;
	return -1;
}

unsigned sha3x_impl_lanes(sha3x_impl impl)
{
	return (unsigned)impl < SHA3X_IMPL_COUNT ? impl_lanes[impl] : 0;
}

int sha3x_impl_available(sha3x_impl impl)
{
	(void)pthread_once(&g_avail_once, avail_init);
	return (unsigned)impl < SHA3X_IMPL_COUNT && impl != SHA3X_IMPL_AUTO && g.avail[impl];
}

sha3x_impl sha3x_choose(unsigned flags)
{
	if (fips_active(flags))
		return SHA3X_IMPL_OPENSSL;
	int forced = atomic_load(&g_force);
	if (forced != SHA3X_IMPL_AUTO)
		return (sha3x_impl)forced;
	(void)pthread_once(&g_cal_once, calibrate);
	return g.best;
}

double sha3x_calibrated_rate(sha3x_impl impl)
{
	(void)pthread_once(&g_cal_once, calibrate);
	return (unsigned)impl < SHA3X_IMPL_COUNT && impl != SHA3X_IMPL_AUTO ? g.rate[impl] : 0;
}

/* ---- the engine -------------------------------------------------------- */

int sha3x_new(sha3x_impl impl, unsigned flags, sha3x_ctx **out, creto_err *e)
{
	*out = NULL;
	if (impl == SHA3X_IMPL_AUTO)
		impl = sha3x_choose(flags);
	if (!sha3x_impl_available(impl))
		return creto_err_set(e, CRETO_EUSAGE, "sha3-256 engine: back end %s not available on this CPU",
				     sha3x_impl_name(impl) ? sha3x_impl_name(impl) : "(unknown)");
	if (impl != SHA3X_IMPL_OPENSSL && fips_active(flags))
		return creto_err_set(e, CRETO_EUSAGE, "sha3-256 engine: FIPS mode hashes with OpenSSL only, not %s",
				     sha3x_impl_name(impl));
	/* the lane-alone rule (use_kernel) needs the calibration's figures */
	if (impl_kernel[impl] != NULL)
		(void)pthread_once(&g_cal_once, calibrate);
	sha3x_ctx *x = aligned_alloc(64, sizeof(*x));
	if (x == NULL)
		return creto_err_errno(e, ENOMEM, "sha3-256 engine");
	memset(x, 0, sizeof(*x));
	x->impl = impl;
	x->lanes = impl_lanes[impl];
	x->kernel = impl_kernel[impl];
	if (impl == SHA3X_IMPL_OPENSSL && (x->md = EVP_MD_CTX_new()) == NULL) {
		free(x);
		return creto_err_openssl(e, "sha3-256 engine");
	}
	*out = x;
	return CRETO_OK;
}

unsigned sha3x_lanes(const sha3x_ctx *x)
{
	return x->lanes;
}

sha3x_impl sha3x_ctx_impl(const sha3x_ctx *x)
{
	return x->impl;
}

void sha3x_free(sha3x_ctx *x)
{
	if (x == NULL)
		return;
	EVP_MD_CTX_free(x->md);
	free(x);
}

int sha3x_start(sha3x_ctx *x, unsigned lane, creto_err *e)
{
	assert(lane < x->lanes);
	if (lane >= x->lanes)
		return creto_err_set(e, CRETO_EUSAGE, "sha3-256 engine: no lane %u", lane);
	if (x->md != NULL && EVP_DigestInit_ex(x->md, creto_hash__md(CRETO_HASH_SHA3_256), NULL) != 1)
		return creto_err_openssl(e, "sha3-256: init");
	for (unsigned i = 0; i < 25; i++)
		x->s[i * KX_STRIDE + lane] = 0;
	x->npend[lane] = 0;
	x->live[lane] = 1;
	return CRETO_OK;
}

static void get_state(const sha3x_ctx *x, unsigned lane, uint64_t t[25])
{
	for (unsigned i = 0; i < 25; i++)
		t[i] = x->s[i * KX_STRIDE + lane];
}

static void put_state(sha3x_ctx *x, unsigned lane, const uint64_t t[25])
{
	for (unsigned i = 0; i < 25; i++)
		x->s[i * KX_STRIDE + lane] = t[i];
}

/* With m lanes that have blocks, is one multi-way kernel step cheaper than
 * m scalar ones?  From the calibration: rate[] is bytes per second over all
 * of a back end's lanes, so a step of the multi-way kernel costs
 * lanes / rate and a scalar block 1 / rate[scalar]. */
static int use_kernel(const sha3x_ctx *x, unsigned m)
{
	if (x->kernel == NULL)
		return 0;
	if (m == x->lanes)
		return 1;
	double rk = g.rate[x->impl], r1 = g.rate[SHA3X_IMPL_SCALAR];
	if (rk <= 0 || r1 <= 0)
		return 2 * m >= x->lanes;
	return (double)m / r1 >= (double)x->lanes / rk;
}

/* Where a lane's blocks of the current absorb come from: first its pending
 * block once completed (from pend[]), then nblk blocks in place at p. */
struct feed {
	const uint8_t *p;
	size_t nblk;
	int pend_first;
};

static void absorb_blocks(sha3x_ctx *x, struct feed *f)
{
	for (;;) {
		unsigned m = 0, first = 0;
		int any_pend = 0;
		size_t q = SIZE_MAX;
		for (unsigned j = 0; j < x->lanes; j++) {
			size_t left = f[j].nblk + (size_t)f[j].pend_first;
			if (left == 0)
				continue;
			if (m++ == 0)
				first = j;
			any_pend |= f[j].pend_first;
			if (f[j].nblk < q)
				q = f[j].nblk;
		}
		if (m == 0)
			return;
		if (!use_kernel(x, m)) {
			/* each lane alone through the scalar kernel */
			for (unsigned j = 0; j < x->lanes; j++) {
				if (f[j].nblk == 0 && !f[j].pend_first)
					continue;
				uint64_t t[25];
				get_state(x, j, t);
				if (f[j].pend_first)
					kx_absorb_x1(t, x->pend[j], 1);
				kx_absorb_x1(t, f[j].p, f[j].nblk);
				put_state(x, j, t);
				f[j].pend_first = 0;
				f[j].nblk = 0;
			}
			return;
		}
		/* one kernel call: a pending block alone, else the blocks every
		 * busy lane has in place; idle lanes read the first busy lane's
		 * data and get their states back afterwards */
		if (any_pend)
			q = 1;
		const uint8_t *p[SHA3X_LANES_MAX];
		uint64_t saved[SHA3X_LANES_MAX][25];
		const uint8_t *filler = f[first].pend_first ? x->pend[first] : f[first].p;
		for (unsigned j = 0; j < x->lanes; j++) {
			if (f[j].pend_first)
				p[j] = x->pend[j];
			else if (f[j].nblk > 0)
				p[j] = f[j].p;
			else {
				p[j] = filler;
				get_state(x, j, saved[j]);
			}
		}
		x->kernel(x->s, p, q);
		for (unsigned j = 0; j < x->lanes; j++) {
			if (f[j].pend_first)
				f[j].pend_first = 0;
			else if (f[j].nblk > 0)
				f[j].p += q * SHA3X_RATE, f[j].nblk -= q;
			else
				put_state(x, j, saved[j]);
		}
	}
}

int sha3x_absorb(sha3x_ctx *x, const uint8_t *const in[], const size_t len[], creto_err *e)
{
	for (unsigned j = 0; j < x->lanes; j++)
		if (len[j] > 0 && !x->live[j])
			return creto_err_set(e, CRETO_EUSAGE, "sha3-256 engine: lane %u not started", j);
	if (x->md != NULL) {
		if (len[0] > 0 && EVP_DigestUpdate(x->md, in[0], len[0]) != 1)
			return creto_err_openssl(e, "sha3-256: update");
		return CRETO_OK;
	}
	struct feed f[SHA3X_LANES_MAX];
	const uint8_t *tail[SHA3X_LANES_MAX];
	size_t ntail[SHA3X_LANES_MAX];
	for (unsigned j = 0; j < x->lanes; j++) {
		const uint8_t *d = in[j];
		size_t n = len[j];
		f[j].p = d;
		f[j].nblk = 0;
		f[j].pend_first = 0;
		tail[j] = NULL;
		ntail[j] = 0;
		if (n == 0)
			continue;
		if (x->npend[j] > 0) {
			size_t t = SHA3X_RATE - x->npend[j];
			if (t > n)
				t = n;
			memcpy(x->pend[j] + x->npend[j], d, t);
			x->npend[j] += (unsigned)t;
			d += t, n -= t;
			if (x->npend[j] < SHA3X_RATE)
				continue; /* everything went into the partial block */
			f[j].pend_first = 1;
			x->npend[j] = 0;
		}
		f[j].p = d;
		f[j].nblk = n / SHA3X_RATE;
		tail[j] = d + f[j].nblk * SHA3X_RATE;
		ntail[j] = n % SHA3X_RATE;
	}
	absorb_blocks(x, f);
	/* after the blocks: pend[j] may have been one of them */
	for (unsigned j = 0; j < x->lanes; j++)
		if (ntail[j] > 0) {
			memcpy(x->pend[j], tail[j], ntail[j]);
			x->npend[j] = (unsigned)ntail[j];
		}
	return CRETO_OK;
}

int sha3x_update(sha3x_ctx *x, unsigned lane, const void *data, size_t len, creto_err *e)
{
	const uint8_t *in[SHA3X_LANES_MAX] = {NULL};
	size_t n[SHA3X_LANES_MAX] = {0};
	if (lane >= x->lanes)
		return creto_err_set(e, CRETO_EUSAGE, "sha3-256 engine: no lane %u", lane);
	in[lane] = data;
	n[lane] = len;
	return sha3x_absorb(x, in, n, e);
}

int sha3x_finish(sha3x_ctx *x, unsigned lane, uint8_t out[SHA3X_DIGEST], creto_err *e)
{
	if (lane >= x->lanes || !x->live[lane])
		return creto_err_set(e, CRETO_EUSAGE, "sha3-256 engine: lane %u not started", lane);
	x->live[lane] = 0;
	if (x->md != NULL) {
		unsigned n = 0;
		if (EVP_DigestFinal_ex(x->md, out, &n) != 1 || n != SHA3X_DIGEST)
			return creto_err_openssl(e, "sha3-256: final");
		return CRETO_OK;
	}
	/* FIPS 202: the SHA-3 domain bits 01, then pad10*1 (§6.1, §5.1) */
	uint8_t *b = x->pend[lane];
	unsigned n = x->npend[lane];
	memset(b + n, 0, SHA3X_RATE - n);
	b[n] ^= 0x06;
	b[SHA3X_RATE - 1] ^= 0x80;
	uint64_t t[25];
	get_state(x, lane, t);
	kx_absorb_x1(t, b, 1);
	for (unsigned i = 0; i < SHA3X_DIGEST / 8; i++)
		for (unsigned k = 0; k < 8; k++)
			out[8 * i + k] = (uint8_t)(t[i] >> (8 * k));
	x->npend[lane] = 0;
	return CRETO_OK;
}
