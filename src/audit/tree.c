/*
 * tree.c - RFC 6962 / RFC 9162 Merkle tree hashing for the audit log:
 * leaf SHA-256(0x00 || entry), node SHA-256(0x01 || left || right), the
 * compact range (frontier) an appender keeps, and inclusion and consistency
 * proofs built from stored perfect-subtree hashes in O(log n) reads.
 */
#include <pthread.h>
#include <string.h>

#include <openssl/evp.h>

#include "audit/audit_int.h"

/* One SHA-256 context per thread (EVP_Digest would fetch and count
 * references on every call). */
static pthread_key_t tl_key;
static pthread_once_t tl_once = PTHREAD_ONCE_INIT;
static int tl_ok;
static EVP_MD *md_sha256;

static void tl_free(void *p)
{
	EVP_MD_CTX_free(p);
}

static void tl_init(void)
{
	md_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	tl_ok = md_sha256 != NULL && pthread_key_create(&tl_key, tl_free) == 0;
}

static void sha256_2(uint8_t prefix, const void *a, size_t an, const void *b, size_t bn,
		     uint8_t out[AUD_HASH])
{
	EVP_MD_CTX *c = NULL;
	if (pthread_once(&tl_once, tl_init) == 0 && tl_ok) {
		c = pthread_getspecific(tl_key);
		if (c == NULL && (c = EVP_MD_CTX_new()) != NULL && pthread_setspecific(tl_key, c) != 0) {
			EVP_MD_CTX_free(c);
			c = NULL;
		}
	}
	unsigned dl = 0;
	int ok;
	if (c != NULL) {
		ok = EVP_DigestInit_ex2(c, md_sha256, NULL) == 1 && EVP_DigestUpdate(c, &prefix, 1) == 1 &&
		     EVP_DigestUpdate(c, a, an) == 1 && (bn == 0 || EVP_DigestUpdate(c, b, bn) == 1) &&
		     EVP_DigestFinal_ex(c, out, &dl) == 1;
	} else {
		EVP_MD_CTX *t = EVP_MD_CTX_new();
		ok = t != NULL && EVP_DigestInit_ex2(t, EVP_sha256(), NULL) == 1 &&
		     EVP_DigestUpdate(t, &prefix, 1) == 1 && EVP_DigestUpdate(t, a, an) == 1 &&
		     (bn == 0 || EVP_DigestUpdate(t, b, bn) == 1) && EVP_DigestFinal_ex(t, out, &dl) == 1;
		EVP_MD_CTX_free(t);
	}
	/* SHA-256 cannot fail short of memory corruption; never leave garbage. */
	if (!ok)
		memset(out, 0, AUD_HASH);
}

void aud_leaf_hash(const void *entry, size_t len, uint8_t out[AUD_HASH])
{
	sha256_2(0x00, entry, len, NULL, 0, out);
}

void aud_node_hash(const uint8_t l[AUD_HASH], const uint8_t r[AUD_HASH], uint8_t out[AUD_HASH])
{
	sha256_2(0x01, l, AUD_HASH, r, AUD_HASH, out);
}

int aud_frontier_push(aud_frontier *f, const uint8_t leaf[AUD_HASH],
		      int (*done)(void *ctx, unsigned level, uint64_t index, const uint8_t h[AUD_HASH]),
		      void *ctx)
{
	uint8_t h[AUD_HASH];
	memcpy(h, leaf, AUD_HASH);
	unsigned level = 0;
	uint64_t s = f->size;
	while (s & 1) {
		aud_node_hash(f->h[level], h, h);
		level++;
		s >>= 1;
		if (done != NULL) {
			int rc = done(ctx, level, f->size >> level, h);
			if (rc)
				return rc;
		}
	}
	memcpy(f->h[level], h, AUD_HASH);
	f->size++;
	return 0;
}

void aud_frontier_root(const aud_frontier *f, uint8_t out[AUD_HASH])
{
	if (f->size == 0) {
		EVP_MD_CTX *t = EVP_MD_CTX_new();
		unsigned dl;
		if (t == NULL || EVP_DigestInit_ex2(t, EVP_sha256(), NULL) != 1 ||
		    EVP_DigestFinal_ex(t, out, &dl) != 1)
			memset(out, 0, AUD_HASH);
		EVP_MD_CTX_free(t);
		return;
	}
	int have = 0;
	uint8_t r[AUD_HASH];
	for (unsigned l = 0; l < AUD_LEVELS; l++) {
		if (!((f->size >> l) & 1))
			continue;
		if (!have) {
			memcpy(r, f->h[l], AUD_HASH);
			have = 1;
		} else {
			aud_node_hash(f->h[l], r, r);
		}
	}
	memcpy(out, r, AUD_HASH);
}

/* Largest power of two strictly below n (n >= 2). */
static uint64_t split(uint64_t n)
{
	uint64_t k = 1;
	while (k << 1 < n)
		k <<= 1;
	return k;
}

static unsigned log2u(uint64_t n)
{
	unsigned l = 0;
	while ((UINT64_C(1) << l) < n)
		l++;
	return l;
}

/* MTH(D[lo : lo+n]) */
static int mth(aud_node_fn get, void *ctx, uint64_t lo, uint64_t n, uint8_t out[AUD_HASH],
	       creto_err *e)
{
	if ((n & (n - 1)) == 0 && lo % n == 0)
		return get(ctx, log2u(n), lo / n, out, e);
	uint64_t k = split(n);
	uint8_t l[AUD_HASH], r[AUD_HASH];
	int rc = mth(get, ctx, lo, k, l, e);
	if (rc == 0)
		rc = mth(get, ctx, lo + k, n - k, r, e);
	if (rc == 0)
		aud_node_hash(l, r, out);
	return rc;
}

int aud_root_at(aud_node_fn get, void *ctx, uint64_t n, uint8_t out[AUD_HASH], creto_err *e)
{
	if (n == 0) {
		aud_frontier z;
		z.size = 0;
		aud_frontier_root(&z, out);
		return 0;
	}
	return mth(get, ctx, 0, n, out, e);
}

/* PATH(m, D[lo : lo+n]), appended deepest first. */
static int path(aud_node_fn get, void *ctx, uint64_t m, uint64_t lo, uint64_t n,
		uint8_t out[][AUD_HASH], size_t *plen, creto_err *e)
{
	if (n <= 1)
		return 0;
	uint64_t k = split(n);
	int rc;
	uint8_t h[AUD_HASH];
	if (m < k) {
		rc = path(get, ctx, m, lo, k, out, plen, e);
		if (rc == 0)
			rc = mth(get, ctx, lo + k, n - k, h, e);
	} else {
		rc = path(get, ctx, m - k, lo + k, n - k, out, plen, e);
		if (rc == 0)
			rc = mth(get, ctx, lo, k, h, e);
	}
	if (rc == 0) {
		if (*plen >= AUD_LEVELS)
			return creto_err_set(e, CRETO_EOP, "audit proof: path too long");
		memcpy(out[(*plen)++], h, AUD_HASH);
	}
	return rc;
}

int aud_inclusion_proof(aud_node_fn get, void *ctx, uint64_t idx, uint64_t n,
			uint8_t out[][AUD_HASH], size_t *plen, creto_err *e)
{
	*plen = 0;
	if (idx >= n)
		return creto_err_set(e, CRETO_EUSAGE, "audit proof: entry %llu not in a tree of %llu",
				     (unsigned long long)idx, (unsigned long long)n);
	return path(get, ctx, idx, 0, n, out, plen, e);
}

/* SUBPROOF(m, D[lo : lo+n], b) */
static int subproof(aud_node_fn get, void *ctx, uint64_t m, uint64_t lo, uint64_t n, int b,
		    uint8_t out[][AUD_HASH], size_t *plen, creto_err *e)
{
	uint8_t h[AUD_HASH];
	int rc;
	if (m == n) {
		if (b)
			return 0;
		rc = mth(get, ctx, lo, n, h, e);
	} else {
		uint64_t k = split(n);
		if (m <= k) {
			rc = subproof(get, ctx, m, lo, k, b, out, plen, e);
			if (rc == 0)
				rc = mth(get, ctx, lo + k, n - k, h, e);
		} else {
			rc = subproof(get, ctx, m - k, lo + k, n - k, 0, out, plen, e);
			if (rc == 0)
				rc = mth(get, ctx, lo, k, h, e);
		}
	}
	if (rc == 0) {
		if (*plen >= AUD_LEVELS)
			return creto_err_set(e, CRETO_EOP, "audit proof: path too long");
		memcpy(out[(*plen)++], h, AUD_HASH);
	}
	return rc;
}

int aud_consistency_proof(aud_node_fn get, void *ctx, uint64_t m, uint64_t n,
			  uint8_t out[][AUD_HASH], size_t *plen, creto_err *e)
{
	*plen = 0;
	if (m > n)
		return creto_err_set(e, CRETO_EUSAGE, "audit proof: size %llu beyond %llu",
				     (unsigned long long)m, (unsigned long long)n);
	if (m == 0 || m == n)
		return 0;
	return subproof(get, ctx, m, 0, n, 1, out, plen, e);
}

int aud_inclusion_root(uint64_t idx, uint64_t n, const uint8_t leaf[AUD_HASH],
		       const uint8_t (*p)[AUD_HASH], size_t plen, uint8_t root[AUD_HASH])
{
	if (idx >= n)
		return -1;
	uint64_t fn = idx, sn = n - 1;
	uint8_t r[AUD_HASH];
	memcpy(r, leaf, AUD_HASH);
	for (size_t i = 0; i < plen; i++) {
		if (sn == 0)
			return -1;
		if ((fn & 1) || fn == sn) {
			aud_node_hash(p[i], r, r);
			while (!(fn & 1) && fn != 0) {
				fn >>= 1;
				sn >>= 1;
			}
		} else {
			aud_node_hash(r, p[i], r);
		}
		fn >>= 1;
		sn >>= 1;
	}
	if (sn != 0)
		return -1;
	memcpy(root, r, AUD_HASH);
	return 0;
}

int creto_audit_verify_inclusion(uint64_t idx, uint64_t n, const uint8_t leaf[32],
				 const uint8_t (*p)[32], size_t plen, const uint8_t root[32])
{
	uint8_t r[AUD_HASH];
	return aud_inclusion_root(idx, n, leaf, p, plen, r) == 0 && memcmp(r, root, AUD_HASH) == 0;
}

int creto_audit_verify_consistency(uint64_t m, uint64_t n, const uint8_t old_root[32],
				   const uint8_t new_root[32], const uint8_t (*p)[32], size_t plen)
{
	if (m > n)
		return 0;
	if (m == n)
		return plen == 0 && memcmp(old_root, new_root, AUD_HASH) == 0;
	if (m == 0)
		return plen == 0;
	/* When m is a power of two the old root is the first node of the path. */
	size_t i = 0;
	uint8_t fr[AUD_HASH], sr[AUD_HASH];
	if ((m & (m - 1)) == 0) {
		memcpy(fr, old_root, AUD_HASH);
	} else {
		if (plen == 0)
			return 0;
		memcpy(fr, p[0], AUD_HASH);
		i = 1;
	}
	memcpy(sr, fr, AUD_HASH);
	uint64_t fn = m - 1, sn = n - 1;
	while (fn & 1) {
		fn >>= 1;
		sn >>= 1;
	}
	for (; i < plen; i++) {
		if (sn == 0)
			return 0;
		if ((fn & 1) || fn == sn) {
			aud_node_hash(p[i], fr, fr);
			aud_node_hash(p[i], sr, sr);
			while (!(fn & 1) && fn != 0) {
				fn >>= 1;
				sn >>= 1;
			}
		} else {
			aud_node_hash(sr, p[i], sr);
		}
		fn >>= 1;
		sn >>= 1;
	}
	return sn == 0 && memcmp(fr, old_root, AUD_HASH) == 0 && memcmp(sr, new_root, AUD_HASH) == 0;
}
