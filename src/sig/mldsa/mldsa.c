/*
 * mldsa.c - ML-DSA (FIPS 204) key generation, signing and verification for
 * ML-DSA-44, -65 and -87, in portable C11 over OpenSSL's SHAKE.
 *
 * Layout: parameter sets; the XOF layer (SHAKE from mldsa_keccak.c); the
 * samplers ExpandA / ExpandS / ExpandMask / SampleInBall; key and signature
 * encodings; the internal algorithms (KeyGen_internal, Sign_internal,
 * Verify_internal, all working on mu); the external interfaces (pure with
 * context, HashML-DSA).  Polynomial arithmetic lives in mldsa_poly.c.
 *
 * Secrets: the signing workspace (s1, s2, t0, K, rho'', y, ...) lives in one
 * heap block that is cleansed before it is freed, on every path.  Rejection
 * in Sign_internal branches only on whether a candidate is accepted, as
 * FIPS 204 permits (rejected candidates are independent of the output).
 */
#include "sig/mldsa/mldsa.h"
#include "sig/mldsa/mldsa_keccak.h"
#include "sig/mldsa/mldsa_poly.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <string.h>

#define K_MAX 8
#define L_MAX 7
#define Q MLDSA_Q
#define N MLDSA_N

typedef struct params {
	unsigned k, l, tau, omega, ctilde;
	int eta;
	int32_t beta, gamma1, gamma2;
	size_t eta_bytes, z_bytes, w1_bytes;
	size_t pk_bytes, sk_bytes, sig_bytes;
} params;

static const params P44 = {4, 4, 39, 80, 32, 2, 78, 1 << 17, (Q - 1) / 88, 96, 576, 192, 1312, 2560, 2420};
static const params P65 = {6, 5, 49, 55, 48, 4, 196, 1 << 19, (Q - 1) / 32, 128, 640, 128, 1952, 4032, 3309};
static const params P87 = {8, 7, 60, 75, 64, 2, 120, 1 << 19, (Q - 1) / 32, 96, 640, 128, 2592, 4896, 4627};

static const params *get_params(creto_mldsa_ps ps)
{
	switch (ps) {
	case CRETO_MLDSA_44:
		return &P44;
	case CRETO_MLDSA_65:
		return &P65;
	case CRETO_MLDSA_87:
		return &P87;
	}
	return NULL;
}

size_t creto_mldsa_pk_bytes(creto_mldsa_ps ps)
{
	const params *p = get_params(ps);
	return p ? p->pk_bytes : 0;
}

size_t creto_mldsa_sk_bytes(creto_mldsa_ps ps)
{
	const params *p = get_params(ps);
	return p ? p->sk_bytes : 0;
}

size_t creto_mldsa_sig_bytes(creto_mldsa_ps ps)
{
	const params *p = get_params(ps);
	return p ? p->sig_bytes : 0;
}

const char *creto_mldsa_backend(void)
{
	return mldsa_backend();
}

/* ---- XOF layer -------------------------------------------------------
 * SHAKE128 / SHAKE256 from mldsa_keccak.c: one instance for H, mu, rho''
 * and SampleInBall; up to four at once for ExpandA, ExpandS and
 * ExpandMask, whose inputs differ only in their last two bytes. */

#define SHAKE128_RATE MLDSA_SHAKE128_RATE
#define SHAKE256_RATE MLDSA_SHAKE256_RATE

typedef struct iov {
	const uint8_t *p;
	size_t n;
} iov;

/* out = SHAKE256(in[0] || ... || in[n-1], outlen). */
static void shake256_v(const iov *in, unsigned n, uint8_t *out, size_t outlen)
{
	mldsa_shake x;
	mldsa_shake_init(&x, SHAKE256_RATE);
	for (unsigned i = 0; i < n; i++)
		mldsa_shake_absorb(&x, in[i].p, in[i].n);
	mldsa_shake_squeeze(&x, out, outlen);
	mldsa_shake_wipe(&x);
}

static void shake256_2(uint8_t *out, size_t outlen, const uint8_t *a, size_t an, const uint8_t *b,
		       size_t bn)
{
	iov in[2] = {{a, an}, {b, bn}};
	shake256_v(in, 2, out, outlen);
}

/* Up to four SHAKE instances over inputs of one length, run together when
 * the multi-way permutation is cheaper per instance than single ones
 * (mldsa_keccak_xn_width() > 1), else one at a time.  The samplers take
 * their polynomials in groups of xofn_group() (3 on the baseline target:
 * a vector pair plus a scalar state; 4 with AVX2). */
typedef struct xofn {
	mldsa_shakex4 x4;
	mldsa_shake x1[4];
	unsigned n, wide;
} xofn;

static unsigned xofn_group(void)
{
	unsigned w = mldsa_keccak_xn_width();
	return w > 1 ? w : 4;
}

static void xofn_start(xofn *g, unsigned rate, unsigned n, const uint8_t *const in[4], size_t inlen)
{
	g->n = n;
	g->wide = n >= 2 && mldsa_keccak_xn_width() > 1;
	if (g->wide) {
		mldsa_shakexn_absorb(&g->x4, rate, n, in, inlen);
		return;
	}
	for (unsigned j = 0; j < n; j++) {
		mldsa_shake_init(&g->x1[j], rate);
		mldsa_shake_absorb(&g->x1[j], in[j], inlen);
	}
}

/* out[j] (j < n) receives the next nblocks blocks of instance j. */
static void xofn_blocks(xofn *g, uint8_t *const out[4], size_t nblocks)
{
	if (g->wide) {
		mldsa_shakex4_squeezeblocks(&g->x4, out, nblocks);
		return;
	}
	for (unsigned j = 0; j < g->n; j++)
		mldsa_shake_squeeze(&g->x1[j], out[j], nblocks * g->x1[j].rate);
}

static void xofn_wipe(xofn *g)
{
	OPENSSL_cleanse(g, sizeof(*g));
}

/* ---- samplers (FIPS 204 §7.3) --------------------------------------- */

/* Lanes of the interleaved state to and from bytes (little-endian). */
#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) && \
	__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
static uint64_t le64(const uint8_t *b)
{
	uint64_t v;
	memcpy(&v, b, 8);
	return v;
}

static void lanes_out(uint8_t *o, uint64_t s[25][4], unsigned j, unsigned nlanes)
{
	for (unsigned i = 0; i < nlanes; i++)
		memcpy(o + 8 * i, &s[i][j], 8);
}
#else
static uint64_t le64(const uint8_t *b)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < 8; i++)
		v |= (uint64_t)b[i] << (8 * i);
	return v;
}

static void lanes_out(uint8_t *o, uint64_t s[25][4], unsigned j, unsigned nlanes)
{
	for (unsigned i = 0; i < nlanes; i++)
		for (unsigned b = 0; b < 8; b++)
			o[8 * i + b] = (uint8_t)(s[i][j] >> (8 * b));
}
#endif

/* ExpandA (Alg. 32): A[r][s] = RejNTTPoly(rho || s || r), and optionally
 * (pk != NULL) tr = H(pk, 64) alongside, all public.  The SHAKE streams run
 * as jobs on the lanes of the multi-way permutation (width 3 or 4, or 1
 * without vector extensions): an entry takes one lane from its absorption
 * until RejNTTPoly has 256 coefficients (five blocks nearly always, more
 * if needed), tr takes one lane for the blocks of pk; a lane that finishes
 * takes the next job at once.  So tr, which would otherwise cost a chain
 * of single permutations, fills lane slots beside the entries, and no
 * lane idles until the last entries.  Each 168-byte block is sampled as it
 * is squeezed (168 is a multiple of 3: no candidate spans two blocks).
 * The result is exactly that of one SHAKE instance per stream. */
enum { JOB_IDLE = -1, JOB_TR = -2 };

static void expand_a_tr(mldsa_poly *A, const params *p, const uint8_t rho[32], const uint8_t *pk,
			uint8_t tr[64])
{
	const unsigned total = p->k * p->l, width = mldsa_keccak_xn_width();
	_Alignas(32) uint64_t s[25][4];
	uint8_t blk[SHAKE128_RATE];
	int job[4] = {JOB_IDLE, JOB_IDLE, JOB_IDLE, JOB_IDLE};
	unsigned done[4] = {0, 0, 0, 0}, next = 0;
	size_t trpos = 0; /* bytes of pk absorbed */
	int tr_todo = pk != NULL, tr_last = 0;
	uint64_t rho64[4];
	for (unsigned i = 0; i < 4; i++)
		rho64[i] = le64(rho + 8 * i);
	memset(s, 0, sizeof(s));
	for (;;) {
		unsigned n = 0; /* lanes 0..n-1 hold the active jobs */
		for (unsigned j = 0; j < width; j++) {
			if (job[j] == JOB_IDLE) {
				if (tr_todo && j == width - 1) {
					job[j] = JOB_TR;
					tr_todo = 0;
					for (unsigned i = 0; i < 25; i++)
						s[i][j] = 0;
				} else if (next < total) {
					unsigned e = next++; /* = r * l + s */
					job[j] = (int)e;
					done[j] = 0;
					for (unsigned i = 0; i < 25; i++)
						s[i][j] = 0;
					for (unsigned i = 0; i < 4; i++)
						s[i][j] = rho64[i];
					/* bytes 32, 33: s and r; then SHAKE padding */
					s[4][j] = (uint64_t)(e % p->l) | (uint64_t)(e / p->l) << 8 |
						  (uint64_t)0x1f << 16;
					s[20][j] = (uint64_t)0x80 << 56;
				}
			}
			if (job[j] == JOB_TR) {
				/* one block of pk, or its rest with the padding */
				size_t rest = p->pk_bytes - trpos;
				if (rest >= SHAKE256_RATE) {
					for (unsigned i = 0; i < SHAKE256_RATE / 8; i++)
						s[i][j] ^= le64(pk + trpos + 8 * i);
					trpos += SHAKE256_RATE;
				} else {
					for (size_t i = 0; i < rest; i++)
						s[i / 8][j] ^= (uint64_t)pk[trpos + i] << (8 * (i % 8));
					s[rest / 8][j] ^= (uint64_t)0x1f << (8 * (rest % 8));
					s[(SHAKE256_RATE - 1) / 8][j] ^= (uint64_t)0x80
									<< (8 * ((SHAKE256_RATE - 1) % 8));
					trpos = p->pk_bytes;
					tr_last = 1;
				}
			}
			if (job[j] != JOB_IDLE)
				n = j + 1;
		}
		if (n == 0)
			break;
		mldsa_keccakf1600xn(s, n);
		for (unsigned j = 0; j < n; j++) {
			if (job[j] == JOB_TR) {
				if (tr_last) {
					lanes_out(tr, s, j, 8);
					job[j] = JOB_IDLE;
				}
			} else if (job[j] != JOB_IDLE) {
				lanes_out(blk, s, j, SHAKE128_RATE / 8);
				done[j] = mldsa_rej_uniform(A[job[j]].c, done[j], blk, SHAKE128_RATE);
				if (done[j] == N)
					job[j] = JOB_IDLE;
			}
		}
	}
}

static void expand_a(mldsa_poly *A, const params *p, const uint8_t rho[32])
{
	expand_a_tr(A, p, rho, NULL, NULL);
}

/* ExpandS (Alg. 33): s1[i] = RejBoundedPoly(rho' || i), s2[i] =
 * RejBoundedPoly(rho' || l + i), a group of polynomials at a time (secret).  Two
 * blocks (544 candidates) nearly always suffice: 256 are needed, and a
 * candidate is accepted with probability 15/16 (eta 2) or 9/16 (eta 4).
 * Only the number of blocks drawn depends on the XOF output (FIPS 204's
 * rejection sampling reveals that much); mldsa_rej_eta is branch-free. */
static void expand_s(mldsa_poly *s1, mldsa_poly *s2, const params *p, const uint8_t rhop[64])
{
	const unsigned total = p->l + p->k;
	uint8_t in[4][66], buf[4][2 * SHAKE256_RATE];
	const uint8_t *inp[4] = {in[0], in[1], in[2], in[3]};
	uint8_t *out[4] = {buf[0], buf[1], buf[2], buf[3]};
	xofn g;
	const unsigned grp = xofn_group();
	for (unsigned base = 0; base < total; base += grp) {
		unsigned n = total - base < grp ? total - base : grp, done[4], more = 0;
		int32_t *a[4];
		for (unsigned j = 0; j < n; j++) {
			unsigned i = base + j;
			a[j] = i < p->l ? s1[i].c : s2[i - p->l].c;
			memcpy(in[j], rhop, 64);
			in[j][64] = (uint8_t)i;
			in[j][65] = (uint8_t)(i >> 8);
		}
		xofn_start(&g, SHAKE256_RATE, n, inp, 66);
		xofn_blocks(&g, out, 2);
		for (unsigned j = 0; j < n; j++) {
			done[j] = mldsa_rej_eta(a[j], 0, buf[j], sizeof(buf[j]), p->eta);
			more |= done[j] < N;
		}
		while (more) {
			xofn_blocks(&g, out, 1);
			more = 0;
			for (unsigned j = 0; j < n; j++) {
				if (done[j] < N)
					done[j] = mldsa_rej_eta(a[j], done[j], buf[j], SHAKE256_RATE,
								p->eta);
				more |= done[j] < N;
			}
		}
	}
	xofn_wipe(&g);
	OPENSSL_cleanse(buf, sizeof(buf));
	OPENSSL_cleanse(in, sizeof(in));
}

/* ExpandMask (Alg. 34): y[r] from H(rho'' || kappa + r, 32 * bitlen),
 * a group of polynomials at a time; five SHAKE256 blocks (680 bytes) cover the
 * 576 or 640 bytes needed.  No rejection: branch-free. */
static void expand_mask(mldsa_poly *y, const params *p, const uint8_t rhopp[64], unsigned kappa)
{
	uint8_t in[4][66], buf[4][5 * SHAKE256_RATE];
	const uint8_t *inp[4] = {in[0], in[1], in[2], in[3]};
	uint8_t *out[4] = {buf[0], buf[1], buf[2], buf[3]};
	xofn g;
	const unsigned grp = xofn_group();
	for (unsigned base = 0; base < p->l; base += grp) {
		unsigned n = p->l - base < grp ? p->l - base : grp;
		for (unsigned j = 0; j < n; j++) {
			unsigned nonce = (kappa + base + j) & 0xffffu;
			memcpy(in[j], rhopp, 64);
			in[j][64] = (uint8_t)nonce;
			in[j][65] = (uint8_t)(nonce >> 8);
		}
		xofn_start(&g, SHAKE256_RATE, n, inp, 66);
		xofn_blocks(&g, out, 5);
		for (unsigned j = 0; j < n; j++)
			mldsa_unpack_z(&y[base + j], buf[j], p->gamma1);
	}
	xofn_wipe(&g);
	OPENSSL_cleanse(buf, sizeof(buf));
	OPENSSL_cleanse(in, sizeof(in));
}

/* SampleInBall (Alg. 29) from c~: one block is nearly always enough;
 * otherwise squeeze the next block of the same stream and start over on
 * the longer prefix. */
static int sample_in_ball(mldsa_poly *c, const params *p, const uint8_t *ctilde, int ct)
{
	uint8_t buf[4 * SHAKE256_RATE];
	int rc = -1;
	mldsa_shake x;
	mldsa_shake_init(&x, SHAKE256_RATE);
	mldsa_shake_absorb(&x, ctilde, p->ctilde);
	for (size_t len = SHAKE256_RATE; len <= sizeof(buf); len += SHAKE256_RATE) {
		mldsa_shake_squeeze(&x, buf + len - SHAKE256_RATE, SHAKE256_RATE);
		if (mldsa_sample_in_ball(c, buf, len, p->tau, ct) == 0) {
			rc = 0;
			break;
		}
	}
	mldsa_shake_wipe(&x);
	OPENSSL_cleanse(buf, sizeof(buf));
	return rc;
}

/* ---- encodings (FIPS 204 §7.2) -------------------------------------- */

static void pk_encode(uint8_t *pk, const params *p, const uint8_t rho[32], const mldsa_poly *t1)
{
	memcpy(pk, rho, 32);
	for (unsigned i = 0; i < p->k; i++)
		mldsa_pack_t1(pk + 32 + 320 * i, &t1[i]);
}

static void pk_decode(const params *p, const uint8_t *pk, uint8_t rho[32], mldsa_poly *t1)
{
	memcpy(rho, pk, 32);
	for (unsigned i = 0; i < p->k; i++)
		mldsa_unpack_t1(&t1[i], pk + 32 + 320 * i);
}

static void sk_encode(uint8_t *sk, const params *p, const uint8_t rho[32], const uint8_t key[32],
		      const uint8_t tr[64], const mldsa_poly *s1, const mldsa_poly *s2,
		      const mldsa_poly *t0)
{
	memcpy(sk, rho, 32);
	memcpy(sk + 32, key, 32);
	memcpy(sk + 64, tr, 64);
	sk += 128;
	for (unsigned i = 0; i < p->l; i++, sk += p->eta_bytes)
		mldsa_pack_eta(sk, &s1[i], p->eta);
	for (unsigned i = 0; i < p->k; i++, sk += p->eta_bytes)
		mldsa_pack_eta(sk, &s2[i], p->eta);
	for (unsigned i = 0; i < p->k; i++, sk += 416)
		mldsa_pack_t0(sk, &t0[i]);
}

static void sk_decode(const params *p, const uint8_t *sk, uint8_t rho[32], uint8_t key[32],
		      uint8_t tr[64], mldsa_poly *s1, mldsa_poly *s2, mldsa_poly *t0)
{
	memcpy(rho, sk, 32);
	memcpy(key, sk + 32, 32);
	memcpy(tr, sk + 64, 64);
	sk += 128;
	for (unsigned i = 0; i < p->l; i++, sk += p->eta_bytes)
		mldsa_unpack_eta(&s1[i], sk, p->eta);
	for (unsigned i = 0; i < p->k; i++, sk += p->eta_bytes)
		mldsa_unpack_eta(&s2[i], sk, p->eta);
	for (unsigned i = 0; i < p->k; i++, sk += 416)
		mldsa_unpack_t0(&t0[i], sk);
}

/* sigEncode (Alg. 26): c~ || z || HintBitPack(h). */
static void sig_encode(uint8_t *sig, const params *p, const uint8_t *ctilde, const mldsa_poly *z,
		       const mldsa_poly *h)
{
	memcpy(sig, ctilde, p->ctilde);
	uint8_t *q = sig + p->ctilde;
	for (unsigned i = 0; i < p->l; i++, q += p->z_bytes)
		mldsa_pack_z(q, &z[i], p->gamma1);
	memset(q, 0, p->omega + p->k);
	unsigned idx = 0;
	for (unsigned i = 0; i < p->k; i++) {
		for (unsigned j = 0; j < N; j++)
			if (h[i].c[j] != 0) /* the hint is part of the signature: public */
				q[idx++] = (uint8_t)j;
		q[p->omega + i] = (uint8_t)idx;
	}
}

/* sigDecode (Alg. 27) with HintBitUnpack's malformation checks; -1 if malformed. */
static int sig_decode(const params *p, const uint8_t *sig, mldsa_poly *z, mldsa_poly *h)
{
	const uint8_t *q = sig + p->ctilde;
	for (unsigned i = 0; i < p->l; i++, q += p->z_bytes)
		mldsa_unpack_z(&z[i], q, p->gamma1);
	unsigned idx = 0;
	for (unsigned i = 0; i < p->k; i++) {
		memset(h[i].c, 0, sizeof(h[i].c));
		unsigned end = q[p->omega + i];
		if (end < idx || end > p->omega)
			return -1;
		for (unsigned j = idx; j < end; j++) {
			if (j > idx && q[j] <= q[j - 1])
				return -1;
			h[i].c[q[j]] = 1;
		}
		idx = end;
	}
	for (unsigned j = idx; j < p->omega; j++)
		if (q[j] != 0)
			return -1;
	return 0;
}

/* ---- matrix-vector helpers ------------------------------------------ */

/* t[i] = sum_j A[i][j] * v[j] in the NTT domain (Montgomery), |t| < q. */
static void matvec(mldsa_poly *t, const mldsa_poly *A, const mldsa_poly *v, const params *p)
{
	for (unsigned i = 0; i < p->k; i++)
		mldsa_poly_pointwise_acc(&t[i], &A[i * p->l], v, p->l);
}

/* ---- per-thread cache of public expansions ----------------------------
 * Verifying many signatures with one key, or signing many messages, would
 * otherwise re-expand A (k*l SHAKE128 streams, most of a verification's
 * cost) every time.  Each thread keeps the last A (keyed by the parameter
 * set and rho) and the last public key's tr and NTT(t1 * 2^d) (keyed by the
 * whole pk).  Only public values are cached; entries are compared in full,
 * so a hit gives exactly what recomputation would. */
typedef struct pubcache {
	const params *p; /* NULL: no A */
	uint8_t rho[32];
	mldsa_poly A[K_MAX * L_MAX];
	const params *pkp; /* NULL: no pk entry */
	uint8_t pk[CRETO_MLDSA_PK_MAX];
	uint8_t tr[64];
	/* t1 as decoded (t1hat_ok == 0) or NTT(t1 * 2^d) (t1hat_ok == 1): the
	 * first verification with a key multiplies c t1 directly (cheaper than
	 * the transforms), a second one transforms t1 once for all later ones. */
	int t1hat_ok;
	mldsa_poly t1hat[K_MAX];
} pubcache;

static pthread_key_t g_cache_key;
static int g_cache_ok;
static pthread_once_t g_cache_once = PTHREAD_ONCE_INIT;

static void cache_free(void *c)
{
	OPENSSL_free(c);
}

static void cache_init(void)
{
	g_cache_ok = pthread_key_create(&g_cache_key, cache_free) == 0;
}

/* The calling thread's cache, or a private one (*owned = 1) when there is
 * no thread cache; NULL only when out of memory. */
static pubcache *cache_acquire(int *owned)
{
	pubcache *c = NULL;
	*owned = 0;
	if (pthread_once(&g_cache_once, cache_init) == 0 && g_cache_ok) {
		c = pthread_getspecific(g_cache_key);
		if (c == NULL) {
			c = OPENSSL_zalloc(sizeof(*c));
			if (c != NULL && pthread_setspecific(g_cache_key, c) != 0) {
				OPENSSL_free(c);
				c = NULL;
			}
		}
	}
	if (c == NULL) {
		c = OPENSSL_zalloc(sizeof(*c));
		*owned = 1;
	}
	return c;
}

static void cache_release(pubcache *c, int owned)
{
	if (owned)
		OPENSSL_free(c);
}

void creto_mldsa_cache_clear(void)
{
	if (pthread_once(&g_cache_once, cache_init) != 0 || !g_cache_ok)
		return;
	pubcache *c = pthread_getspecific(g_cache_key);
	if (c != NULL && pthread_setspecific(g_cache_key, NULL) == 0)
		OPENSSL_free(c);
}

/* A for (p, rho), from the cache or expanded into it; with pk != NULL
 * also tr = H(pk, 64), computed alongside A when A is expanded. */
static const mldsa_poly *cache_a(pubcache *c, const params *p, const uint8_t rho[32],
				 const uint8_t *pk, uint8_t tr[64])
{
	if (c->p == p && memcmp(c->rho, rho, 32) == 0) {
		if (pk != NULL)
			shake256_2(tr, 64, pk, p->pk_bytes, NULL, 0);
		return c->A;
	}
	c->p = NULL;
	c->pkp = NULL;
	expand_a_tr(c->A, p, rho, pk, tr);
	c->p = p;
	memcpy(c->rho, rho, 32);
	return c->A;
}

/* ---- KeyGen_internal (Alg. 6) --------------------------------------- */

typedef struct keygen_ws {
	mldsa_poly A[K_MAX * L_MAX];
	mldsa_poly s1[L_MAX], s1hat[L_MAX], s2[K_MAX], t[K_MAX], t1[K_MAX], t0[K_MAX];
	uint8_t seedbuf[128]; /* rho || rho' || K */
	uint8_t tr[64];
} keygen_ws;

/* Computes t = A s1 + s2 and its Power2Round split into ws from the
 * expanded A and s1, s2 already in ws. */
static void keygen_t(keygen_ws *ws, const params *p)
{
	for (unsigned i = 0; i < p->l; i++) {
		ws->s1hat[i] = ws->s1[i];
		mldsa_ntt(&ws->s1hat[i]);
	}
	matvec(ws->t, ws->A, ws->s1hat, p);
	for (unsigned i = 0; i < p->k; i++) {
		mldsa_invntt(&ws->t[i]);
		mldsa_poly_add(&ws->t[i], &ws->t[i], &ws->s2[i]);
		mldsa_poly_caddq(&ws->t[i]);
		mldsa_poly_power2round(&ws->t1[i], &ws->t0[i], &ws->t[i]);
	}
}

int creto_mldsa_keygen(creto_mldsa_ps ps, const uint8_t seed[CRETO_MLDSA_SEEDBYTES], uint8_t *pk,
		       uint8_t *sk)
{
	const params *p = get_params(ps);
	if (p == NULL || seed == NULL || pk == NULL || sk == NULL)
		return -1;
	int rc = -1;
	keygen_ws *ws = OPENSSL_zalloc(sizeof(*ws));
	if (ws == NULL)
		goto out;
	uint8_t kl[2] = {(uint8_t)p->k, (uint8_t)p->l};
	shake256_2(ws->seedbuf, 128, seed, 32, kl, 2);
	const uint8_t *rho = ws->seedbuf, *rhop = ws->seedbuf + 32, *key = ws->seedbuf + 96;
	expand_a(ws->A, p, rho);
	expand_s(ws->s1, ws->s2, p, rhop);
	keygen_t(ws, p);
	pk_encode(pk, p, rho, ws->t1);
	shake256_2(ws->tr, 64, pk, p->pk_bytes, NULL, 0);
	sk_encode(sk, p, rho, key, ws->tr, ws->s1, ws->s2, ws->t0);
	rc = 0;
out:
	if (rc != 0) {
		if (p != NULL && pk != NULL)
			memset(pk, 0, p->pk_bytes);
		if (p != NULL && sk != NULL)
			OPENSSL_cleanse(sk, p->sk_bytes);
	}
	OPENSSL_clear_free(ws, sizeof(*ws));
	return rc;
}

int creto_mldsa_pk_from_sk(creto_mldsa_ps ps, const uint8_t *sk, uint8_t *pk)
{
	const params *p = get_params(ps);
	if (p == NULL || sk == NULL || pk == NULL)
		return -1;
	int rc = -1;
	uint8_t rho[32], key[32], tr[64];
	keygen_ws *ws = OPENSSL_zalloc(sizeof(*ws));
	mldsa_poly *t0 = OPENSSL_malloc(sizeof(mldsa_poly) * K_MAX);
	if (ws == NULL || t0 == NULL)
		goto out;
	sk_decode(p, sk, rho, key, tr, ws->s1, ws->s2, t0);
	/* A well-formed sk has every eta coefficient in [-eta, eta]. */
	for (unsigned i = 0; i < p->l; i++)
		if (mldsa_poly_chknorm(&ws->s1[i], p->eta + 1))
			goto out;
	for (unsigned i = 0; i < p->k; i++)
		if (mldsa_poly_chknorm(&ws->s2[i], p->eta + 1))
			goto out;
	expand_a(ws->A, p, rho);
	keygen_t(ws, p);
	/* The stored t0 and tr must be the ones this s1, s2 give. */
	if (CRYPTO_memcmp(t0, ws->t0, sizeof(mldsa_poly) * p->k) != 0)
		goto out;
	pk_encode(pk, p, rho, ws->t1);
	shake256_2(ws->tr, 64, pk, p->pk_bytes, NULL, 0);
	if (CRYPTO_memcmp(tr, ws->tr, 64) != 0)
		goto out;
	rc = 0;
out:
	if (rc != 0)
		memset(pk, 0, p->pk_bytes);
	OPENSSL_clear_free(ws, sizeof(*ws));
	OPENSSL_clear_free(t0, sizeof(mldsa_poly) * K_MAX);
	OPENSSL_cleanse(key, sizeof(key));
	return rc;
}

/* ---- Sign_internal (Alg. 7) ----------------------------------------- */

typedef struct sign_ws {
	mldsa_poly s1[L_MAX], s2[K_MAX], t0[K_MAX];
	mldsa_poly y[L_MAX], z[L_MAX], w[K_MAX], w1[K_MAX], w0[K_MAX], h[K_MAX], cp;
	uint8_t rho[32], key[32], tr[64], mu[64], rhopp[64];
	uint8_t w1buf[K_MAX * 192];
	uint8_t ctilde[64];
} sign_ws;

/* mu = H(tr || pre || msg, 64). */
static void compute_mu(uint8_t mu[64], const uint8_t tr[64], const uint8_t *pre, size_t prelen,
		       const uint8_t *msg, size_t msglen)
{
	iov in[3] = {{tr, 64}, {pre, prelen}, {msg, msglen}};
	shake256_v(in, 3, mu, 64);
}

/* The signing core.  mu is given (extmu != NULL) or computed from
 * pre || msg (M' in pieces, so the message is never copied). */
static int sign_core(const params *p, const uint8_t *sk, const uint8_t *extmu, const uint8_t *pre,
		     size_t prelen, const uint8_t *msg, size_t msglen, const uint8_t rnd[32],
		     uint8_t *sig)
{
	if (p == NULL || sk == NULL || sig == NULL || rnd == NULL || (msg == NULL && msglen > 0))
		return -1;
	int rc = -1, owned = 0;
	const mldsa_poly *A;
	sign_ws *ws = OPENSSL_malloc(sizeof(*ws));
	pubcache *cache = cache_acquire(&owned);
	if (ws == NULL || cache == NULL)
		goto out;
	sk_decode(p, sk, ws->rho, ws->key, ws->tr, ws->s1, ws->s2, ws->t0);
	if (extmu != NULL)
		memcpy(ws->mu, extmu, 64);
	else
		compute_mu(ws->mu, ws->tr, pre, prelen, msg, msglen);
	{
		iov in[3] = {{ws->key, 32}, {rnd, 32}, {ws->mu, 64}};
		shake256_v(in, 3, ws->rhopp, 64);
	}
	A = cache_a(cache, p, ws->rho, NULL, NULL);
	for (unsigned i = 0; i < p->l; i++)
		mldsa_ntt(&ws->s1[i]);
	for (unsigned i = 0; i < p->k; i++) {
		mldsa_ntt(&ws->s2[i]);
		mldsa_ntt(&ws->t0[i]);
	}
	const size_t w1len = p->k * p->w1_bytes;
	/* kappa is 16 bits in FIPS 204; 2^16 / l attempts never run out in practice. */
	for (unsigned kappa = 0; kappa + p->l <= 0x10000u; kappa += p->l) {
		expand_mask(ws->y, p, ws->rhopp, kappa);
		for (unsigned i = 0; i < p->l; i++) {
			ws->z[i] = ws->y[i];
			mldsa_ntt(&ws->z[i]);
		}
		matvec(ws->w, A, ws->z, p);
		for (unsigned i = 0; i < p->k; i++) {
			mldsa_invntt(&ws->w[i]);
			mldsa_poly_caddq(&ws->w[i]);
			mldsa_poly_decompose(&ws->w1[i], &ws->w0[i], &ws->w[i], p->gamma2);
			mldsa_pack_w1(ws->w1buf + i * p->w1_bytes, &ws->w1[i], p->gamma2);
		}
		shake256_2(ws->ctilde, p->ctilde, ws->mu, 64, ws->w1buf, w1len);
		if (sample_in_ball(&ws->cp, p, ws->ctilde, 1) != 0)
			goto out;
		mldsa_ntt(&ws->cp);

		/* r0 = LowBits(w - c s2); reject if ||r0|| >= gamma2 - beta.  Checked
		 * before z because it rejects more often (about 2/3 of attempts for
		 * ML-DSA-65) at similar cost; the order does not change the output. */
		int reject = 0;
		for (unsigned i = 0; i < p->k && !reject; i++) {
			mldsa_poly_pointwise(&ws->h[i], &ws->cp, &ws->s2[i]);
			mldsa_invntt(&ws->h[i]);
			mldsa_poly_sub(&ws->w0[i], &ws->w0[i], &ws->h[i]);
			mldsa_poly_reduce(&ws->w0[i]);
			reject = mldsa_poly_chknorm(&ws->w0[i], p->gamma2 - p->beta);
		}
		if (reject)
			continue;
		/* z = y + c s1; reject if ||z|| >= gamma1 - beta. */
		for (unsigned i = 0; i < p->l && !reject; i++) {
			mldsa_poly_pointwise(&ws->z[i], &ws->cp, &ws->s1[i]);
			mldsa_invntt(&ws->z[i]);
			mldsa_poly_add(&ws->z[i], &ws->z[i], &ws->y[i]);
			mldsa_poly_reduce(&ws->z[i]);
			reject = mldsa_poly_chknorm(&ws->z[i], p->gamma1 - p->beta);
		}
		if (reject)
			continue;
		/* Hints from c t0; reject if ||c t0|| >= gamma2 or too many ones. */
		unsigned ones = 0;
		for (unsigned i = 0; i < p->k && !reject; i++) {
			mldsa_poly_pointwise(&ws->h[i], &ws->cp, &ws->t0[i]);
			mldsa_invntt(&ws->h[i]);
			mldsa_poly_reduce(&ws->h[i]);
			reject = mldsa_poly_chknorm(&ws->h[i], p->gamma2);
			mldsa_poly_add(&ws->w0[i], &ws->w0[i], &ws->h[i]);
			ones += mldsa_poly_make_hint(&ws->h[i], &ws->w0[i], &ws->w1[i], p->gamma2);
		}
		if (reject || ones > p->omega)
			continue;
		sig_encode(sig, p, ws->ctilde, ws->z, ws->h);
		rc = 0;
		break;
	}
out:
	if (rc != 0)
		memset(sig, 0, p->sig_bytes);
	OPENSSL_clear_free(ws, sizeof(*ws));
	cache_release(cache, owned);
	return rc;
}

/* ---- Verify_internal (Alg. 8) --------------------------------------- */

typedef struct verify_ws {
	mldsa_poly z[L_MAX], h[K_MAX], w[K_MAX], ct1[K_MAX], cp;
	mldsa_ternary tc;
	uint8_t rho[32], mu[64];
	uint8_t w1buf[K_MAX * 192];
	uint8_t ctilde[64];
} verify_ws;

static int verify_core(const params *p, const uint8_t *pk, const uint8_t *extmu, const uint8_t *pre,
		       size_t prelen, const uint8_t *msg, size_t msglen, const uint8_t *sig,
		       size_t siglen)
{
	if (p == NULL || pk == NULL || sig == NULL || siglen != p->sig_bytes ||
	    (msg == NULL && msglen > 0))
		return -1;
	int rc = -1, owned = 0;
	const mldsa_poly *A;
	verify_ws *ws = OPENSSL_malloc(sizeof(*ws));
	pubcache *c = cache_acquire(&owned);
	if (ws == NULL || c == NULL)
		goto out;
	if (sig_decode(p, sig, ws->z, ws->h) != 0)
		goto out;
	for (unsigned i = 0; i < p->l; i++)
		if (mldsa_poly_chknorm(&ws->z[i], p->gamma1 - p->beta))
			goto out;
	/* tr = H(pk), t1 and A: from the cache when pk is the last one. */
	if (c->pkp == p && c->p == p && memcmp(c->pk, pk, p->pk_bytes) == 0) {
		A = c->A;
		if (!c->t1hat_ok) {
			for (unsigned i = 0; i < p->k; i++) {
				mldsa_poly_shiftl(&c->t1hat[i]);
				mldsa_ntt(&c->t1hat[i]);
			}
			c->t1hat_ok = 1;
		}
	} else {
		c->pkp = NULL;
		pk_decode(p, pk, ws->rho, c->t1hat);
		c->t1hat_ok = 0;
		A = cache_a(c, p, ws->rho, pk, c->tr);
		memcpy(c->pk, pk, p->pk_bytes);
		c->pkp = p;
	}
	if (extmu != NULL)
		memcpy(ws->mu, extmu, 64);
	else
		compute_mu(ws->mu, c->tr, pre, prelen, msg, msglen);
	if (sample_in_ball(&ws->cp, p, sig, 0) != 0)
		goto out;
	for (unsigned i = 0; i < p->l; i++)
		mldsa_ntt(&ws->z[i]);
	matvec(ws->w, A, ws->z, p);
	/* w' = A z - c t1 2^d, to [0, q) either way: both give the canonical
	 * representative of the same residue, so UseHint sees equal inputs. */
	if (c->t1hat_ok) {
		mldsa_ntt(&ws->cp);
		for (unsigned i = 0; i < p->k; i++) {
			mldsa_poly_pointwise(&ws->ct1[i], &ws->cp, &c->t1hat[i]);
			mldsa_poly_sub(&ws->w[i], &ws->w[i], &ws->ct1[i]);
			mldsa_poly_reduce(&ws->w[i]);
			mldsa_invntt(&ws->w[i]);
			mldsa_poly_caddq(&ws->w[i]);
		}
	} else {
		/* |c t1 2^d| <= tau * 1023 * 2^13 < 2^29 and |invntt| <= q, so
		 * the difference is in reduce32's range. */
		mldsa_ternary_prepare(&ws->tc, &ws->cp);
		for (unsigned i = 0; i < p->k; i++) {
			mldsa_invntt(&ws->w[i]);
			mldsa_poly_mul_ternary_t1(&ws->ct1[i], &ws->tc, &c->t1hat[i]);
			mldsa_poly_shiftl(&ws->ct1[i]);
			mldsa_poly_sub(&ws->w[i], &ws->w[i], &ws->ct1[i]);
			mldsa_poly_reduce(&ws->w[i]);
			mldsa_poly_caddq(&ws->w[i]);
		}
	}
	for (unsigned i = 0; i < p->k; i++) {
		mldsa_poly_use_hint(&ws->ct1[i], &ws->w[i], &ws->h[i], p->gamma2);
		mldsa_pack_w1(ws->w1buf + i * p->w1_bytes, &ws->ct1[i], p->gamma2);
	}
	shake256_2(ws->ctilde, p->ctilde, ws->mu, 64, ws->w1buf, p->k * p->w1_bytes);
	rc = CRYPTO_memcmp(ws->ctilde, sig, p->ctilde) == 0 ? 0 : -1;
out:
	OPENSSL_free(ws);
	cache_release(c, owned);
	return rc;
}

/* ---- public interfaces ----------------------------------------------- */

int creto_mldsa_sign_internal(creto_mldsa_ps ps, const uint8_t *sk, const uint8_t *mprime,
			      size_t mlen, const uint8_t rnd[CRETO_MLDSA_RNDBYTES], uint8_t *sig)
{
	return sign_core(get_params(ps), sk, NULL, NULL, 0, mprime, mlen, rnd, sig);
}

int creto_mldsa_sign_mu(creto_mldsa_ps ps, const uint8_t *sk, const uint8_t mu[CRETO_MLDSA_MUBYTES],
			const uint8_t rnd[CRETO_MLDSA_RNDBYTES], uint8_t *sig)
{
	if (mu == NULL)
		return -1;
	return sign_core(get_params(ps), sk, mu, NULL, 0, NULL, 0, rnd, sig);
}

int creto_mldsa_verify_internal(creto_mldsa_ps ps, const uint8_t *pk, const uint8_t *mprime,
				size_t mlen, const uint8_t *sig, size_t siglen)
{
	return verify_core(get_params(ps), pk, NULL, NULL, 0, mprime, mlen, sig, siglen);
}

int creto_mldsa_verify_mu(creto_mldsa_ps ps, const uint8_t *pk, const uint8_t mu[CRETO_MLDSA_MUBYTES],
			  const uint8_t *sig, size_t siglen)
{
	if (mu == NULL)
		return -1;
	return verify_core(get_params(ps), pk, mu, NULL, 0, NULL, 0, sig, siglen);
}

/* Domain-separation prefix of M': dom || |ctx| || ctx (|| OID). */
static int make_prefix(uint8_t *pre, size_t *prelen, uint8_t dom, const uint8_t *ctx, size_t ctxlen)
{
	if (ctxlen > CRETO_MLDSA_CTX_MAX || (ctx == NULL && ctxlen > 0))
		return -1;
	pre[0] = dom;
	pre[1] = (uint8_t)ctxlen;
	if (ctxlen > 0)
		memcpy(pre + 2, ctx, ctxlen);
	*prelen = 2 + ctxlen;
	return 0;
}

int creto_mldsa_sign(creto_mldsa_ps ps, const uint8_t *sk, const uint8_t *ctx, size_t ctxlen,
		     const uint8_t *msg, size_t msglen, const uint8_t rnd[CRETO_MLDSA_RNDBYTES],
		     uint8_t *sig)
{
	uint8_t pre[2 + CRETO_MLDSA_CTX_MAX];
	size_t prelen;
	if (make_prefix(pre, &prelen, 0, ctx, ctxlen) != 0) {
		const params *p = get_params(ps);
		if (p != NULL && sig != NULL)
			memset(sig, 0, p->sig_bytes);
		return -1;
	}
	return sign_core(get_params(ps), sk, NULL, pre, prelen, msg, msglen, rnd, sig);
}

int creto_mldsa_verify(creto_mldsa_ps ps, const uint8_t *pk, const uint8_t *ctx, size_t ctxlen,
		       const uint8_t *msg, size_t msglen, const uint8_t *sig, size_t siglen)
{
	uint8_t pre[2 + CRETO_MLDSA_CTX_MAX];
	size_t prelen;
	if (make_prefix(pre, &prelen, 0, ctx, ctxlen) != 0)
		return -1;
	return verify_core(get_params(ps), pk, NULL, pre, prelen, msg, msglen, sig, siglen);
}

/* HashML-DSA pre-hash functions: ACVP name, OpenSSL name, OID last byte
 * (under 2.16.840.1.101.3.4.2), output length. */
static const struct prehash {
	const char *acvp, *ossl;
	uint8_t oid;
	size_t outlen;
} prehashes[] = {
	{"SHA2-256", "SHA2-256", 0x01, 32},      {"SHA2-384", "SHA2-384", 0x02, 48},
	{"SHA2-512", "SHA2-512", 0x03, 64},      {"SHA2-224", "SHA2-224", 0x04, 28},
	{"SHA2-512/224", "SHA2-512/224", 0x05, 28}, {"SHA2-512/256", "SHA2-512/256", 0x06, 32},
	{"SHA3-224", "SHA3-224", 0x07, 28},      {"SHA3-256", "SHA3-256", 0x08, 32},
	{"SHA3-384", "SHA3-384", 0x09, 48},      {"SHA3-512", "SHA3-512", 0x0a, 64},
	{"SHAKE-128", "SHAKE128", 0x0b, 32},     {"SHAKE-256", "SHAKE256", 0x0c, 64},
};

#define PREHASH_MAX (2 + CRETO_MLDSA_CTX_MAX + 11 + 64)

/* pre = 1 || |ctx| || ctx || OID || PH(msg). */
static int prehash_prefix(uint8_t *pre, size_t *prelen, const uint8_t *ctx, size_t ctxlen,
			  const char *ph, const uint8_t *msg, size_t msglen)
{
	const struct prehash *h = NULL;
	if (ph == NULL || (msg == NULL && msglen > 0))
		return -1;
	for (size_t i = 0; i < sizeof(prehashes) / sizeof(prehashes[0]); i++)
		if (strcmp(ph, prehashes[i].acvp) == 0)
			h = &prehashes[i];
	if (h == NULL || make_prefix(pre, prelen, 1, ctx, ctxlen) != 0)
		return -1;
	static const uint8_t oid[10] = {0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02};
	memcpy(pre + *prelen, oid, sizeof(oid));
	pre[*prelen + 10] = h->oid;
	*prelen += 11;
	int rc = -1;
	EVP_MD *md = EVP_MD_fetch(NULL, h->ossl, NULL);
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	if (md == NULL || c == NULL || EVP_DigestInit_ex(c, md, NULL) != 1 ||
	    (msglen > 0 && EVP_DigestUpdate(c, msg, msglen) != 1))
		goto out;
	if (EVP_MD_get_flags(md) & EVP_MD_FLAG_XOF) {
		if (EVP_DigestFinalXOF(c, pre + *prelen, h->outlen) != 1)
			goto out;
	} else {
		unsigned int n = 0;
		if (EVP_DigestFinal_ex(c, pre + *prelen, &n) != 1 || n != h->outlen)
			goto out;
	}
	*prelen += h->outlen;
	rc = 0;
out:
	EVP_MD_CTX_free(c);
	EVP_MD_free(md);
	return rc;
}

int creto_mldsa_sign_prehash(creto_mldsa_ps ps, const uint8_t *sk, const uint8_t *ctx, size_t ctxlen,
			     const char *ph, const uint8_t *msg, size_t msglen,
			     const uint8_t rnd[CRETO_MLDSA_RNDBYTES], uint8_t *sig)
{
	uint8_t pre[PREHASH_MAX];
	size_t prelen;
	if (prehash_prefix(pre, &prelen, ctx, ctxlen, ph, msg, msglen) != 0) {
		const params *p = get_params(ps);
		if (p != NULL && sig != NULL)
			memset(sig, 0, p->sig_bytes);
		return -1;
	}
	return sign_core(get_params(ps), sk, NULL, pre, prelen, NULL, 0, rnd, sig);
}

int creto_mldsa_verify_prehash(creto_mldsa_ps ps, const uint8_t *pk, const uint8_t *ctx,
			       size_t ctxlen, const char *ph, const uint8_t *msg, size_t msglen,
			       const uint8_t *sig, size_t siglen)
{
	uint8_t pre[PREHASH_MAX];
	size_t prelen;
	if (prehash_prefix(pre, &prelen, ctx, ctxlen, ph, msg, msglen) != 0)
		return -1;
	return verify_core(get_params(ps), pk, NULL, pre, prelen, NULL, 0, sig, siglen);
}
