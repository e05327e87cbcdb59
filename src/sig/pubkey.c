/*
 * pubkey.c - public keys: validation of raw encodings, key ids, the
 * domain-separated messages, and verification for every algorithm.
 * Classical keys keep their EVP_PKEY so that a verify costs one OpenSSL
 * operation and no parsing.
 */
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "sig/sig_internal.h"
#include "util/enc.h"

int creto_sig_keyid(creto_alg alg, const uint8_t *raw, size_t rawlen,
		    char id[CRETO_KEYID_HEXLEN + 1], creto_err *e)
{
	const char *name = creto_alg_name(alg);
	uint8_t h[32];
	unsigned int hl = 0;
	int rc = CRETO_EOP;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (name == NULL)
		return creto_err_set(e, CRETO_EUSAGE, "unknown algorithm %d", (int)alg);
	if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(md, name, strlen(name) + 1) != 1 || /* name || 0x00 */
	    EVP_DigestUpdate(md, raw, rawlen) != 1 || EVP_DigestFinal_ex(md, h, &hl) != 1) {
		rc = creto_err_openssl(e, "key id");
		goto out;
	}
	creto_hex_encode(id, h, CRETO_KEYID_BYTES);
	rc = CRETO_OK;
out:
	EVP_MD_CTX_free(md);
	return rc;
}

static int ed25519_pkey(const uint8_t *raw, size_t len, EVP_PKEY **out, creto_err *e)
{
	*out = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw, len);
	if (*out == NULL) {
		ERR_clear_error();
		return creto_err_set(e, CRETO_EREJECT, "malformed ed25519 public key");
	}
	return CRETO_OK;
}

/* An uncompressed SEC1 point on the curve, not the point at infinity. */
static int ecdsa_pkey(creto_alg alg, const uint8_t *raw, size_t len, EVP_PKEY **out, creto_err *e)
{
	EVP_PKEY_CTX *ctx = NULL, *chk = NULL;
	EVP_PKEY *pkey = NULL;
	int rc = CRETO_EREJECT;
	OSSL_PARAM params[3];
	*out = NULL;
	if (len != creto_alg_pub_len(alg) || raw[0] != 0x04)
		return creto_err_set(e, CRETO_EREJECT, "malformed %s public key (not an uncompressed point)",
				     creto_alg_name(alg));
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
						     (char *)creto_alg_curve(alg), 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)raw, len);
	params[2] = OSSL_PARAM_construct_end();
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1) {
		rc = creto_err_openssl(e, "EC key");
		goto out;
	}
	if (EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1 || pkey == NULL) {
		ERR_clear_error();
		rc = creto_err_set(e, CRETO_EREJECT, "malformed %s public key (point not on the curve)",
				   creto_alg_name(alg));
		goto out;
	}
	chk = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
	/* P-256 and P-384 have cofactor 1: on the curve and not infinity
	 * suffices (the quick check skips the costly n*Q = O test). */
	if (chk == NULL || EVP_PKEY_public_check_quick(chk) != 1) {
		ERR_clear_error();
		rc = creto_err_set(e, CRETO_EREJECT, "malformed %s public key (point fails validation)",
				   creto_alg_name(alg));
		goto out;
	}
	*out = pkey;
	pkey = NULL;
	rc = CRETO_OK;
out:
	EVP_PKEY_free(pkey);
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_CTX_free(chk);
	return rc;
}

int creto_pubkey_new(creto_alg alg, const uint8_t *raw, size_t len, creto_pubkey **out, creto_err *e)
{
	creto_pubkey *pk = NULL;
	int rc;
	*out = NULL;
	const char *name = creto_alg_name(alg);
	if (name == NULL)
		return creto_err_set(e, CRETO_EUSAGE, "unknown algorithm %d", (int)alg);
	if (len != creto_alg_pub_len(alg))
		return creto_err_set(e, CRETO_EREJECT, "%s public key length %zu, expected %zu", name, len,
				     creto_alg_pub_len(alg));
	pk = calloc(1, sizeof(*pk));
	if (pk == NULL || (pk->raw = malloc(len)) == NULL) {
		free(pk);
		return creto_err_set(e, CRETO_EOP, "out of memory");
	}
	pk->alg = alg;
	memcpy(pk->raw, raw, len);
	pk->rawlen = len;
	switch (alg) {
	case CRETO_ALG_ED25519:
		rc = ed25519_pkey(raw, len, &pk->pkey, e);
		if (rc == CRETO_OK) {
			/* As for ECDSA below: copied per verification, no fetch. */
			pk->vmd = EVP_MD_CTX_new();
			if (pk->vmd == NULL || EVP_DigestVerifyInit_ex(pk->vmd, NULL, NULL, NULL, NULL,
								       pk->pkey, NULL) != 1)
				rc = creto_err_openssl(e, "%s public key", creto_alg_name(alg));
		}
		break;
	case CRETO_ALG_ECDSA_P256:
	case CRETO_ALG_ECDSA_P384:
		rc = ecdsa_pkey(alg, raw, len, &pk->pkey, e);
		if (rc == CRETO_OK) {
			/* Verify contexts are duplicated from this template, which
			 * spares a provider fetch per verification. */
			pk->vctx = EVP_PKEY_CTX_new_from_pkey(NULL, pk->pkey, NULL);
			if (pk->vctx == NULL || EVP_PKEY_verify_init(pk->vctx) != 1)
				rc = creto_err_openssl(e, "%s public key", creto_alg_name(alg));
		}
		break;
	case CRETO_ALG_MLDSA44:
	case CRETO_ALG_MLDSA65:
	case CRETO_ALG_MLDSA87:
		/* FIPS 204 pkDecode accepts every byte string of the right length
		 * (t1 coefficients are 10-bit fields), so the length is the check. */
		rc = CRETO_OK;
		break;
	default: { /* hybrids */
		creto_alg ca = creto_alg_hybrid_classical(alg), qa = creto_alg_hybrid_pq(alg);
		size_t cl = creto_alg_pub_len(ca);
		rc = creto_pubkey_new(ca, raw, cl, &pk->cl, e);
		if (rc == CRETO_OK)
			rc = creto_pubkey_new(qa, raw + cl, len - cl, &pk->pq, e);
		if (rc == CRETO_OK && EVP_Digest(raw, len, pk->bind, NULL, EVP_sha512(), NULL) != 1)
			rc = creto_err_openssl(e, "SHA-512");
		break;
	}
	}
	if (rc == CRETO_OK)
		rc = creto_sig_keyid(alg, raw, len, pk->id, e);
	if (rc != CRETO_OK) {
		creto_pubkey_free(pk);
		return rc;
	}
	*out = pk;
	return CRETO_OK;
}

creto_alg creto_pubkey_alg(const creto_pubkey *pk)
{
	return pk->alg;
}

const uint8_t *creto_pubkey_raw(const creto_pubkey *pk, size_t *len)
{
	*len = pk->rawlen;
	return pk->raw;
}

const char *creto_pubkey_id(const creto_pubkey *pk)
{
	return pk->id;
}

int creto_pubkey_dup(const creto_pubkey *pk, creto_pubkey **out, creto_err *e)
{
	return creto_pubkey_new(pk->alg, pk->raw, pk->rawlen, out, e);
}

int creto_pubkey_equal(const creto_pubkey *a, const creto_pubkey *b)
{
	return a != NULL && b != NULL && a->alg == b->alg && a->rawlen == b->rawlen &&
	       memcmp(a->raw, b->raw, a->rawlen) == 0;
}

void creto_pubkey_free(creto_pubkey *pk)
{
	if (pk == NULL)
		return;
	EVP_PKEY_CTX_free(pk->vctx);
	EVP_MD_CTX_free(pk->vmd);
	EVP_PKEY_free(pk->pkey);
	creto_pubkey_free(pk->cl);
	creto_pubkey_free(pk->pq);
	free(pk->raw);
	free(pk);
}

/* ---- messages (docs/signatures.md, "Messages") ---- */

static int check_ctx(size_t ctxlen, creto_err *e)
{
	if (ctxlen > CRETO_SIG_CTX_MAX)
		return creto_err_set(e, CRETO_EUSAGE, "context of %zu bytes, at most %d allowed", ctxlen,
				     CRETO_SIG_CTX_MAX);
	return CRETO_OK;
}

/* out = label || 0x00 || name || 0x00 || [bind] || ctxlen (1 byte) || ctx || msg */
static int encode_msg(const char *label, const char *name, const uint8_t *bind, size_t bindlen,
		      const uint8_t *ctx, size_t ctxlen, const uint8_t *msg, size_t msglen,
		      uint8_t **out, size_t *outlen, creto_err *e)
{
	size_t ll = strlen(label) + 1, nl = strlen(name) + 1;
	size_t head = ll + nl + bindlen + 1 + ctxlen;
	*out = NULL;
	*outlen = 0;
	if (check_ctx(ctxlen, e) != CRETO_OK)
		return CRETO_EUSAGE;
	if (msglen > SIZE_MAX - head)
		return creto_err_set(e, CRETO_EUSAGE, "message too long");
	uint8_t *p = malloc(head + msglen + 1);
	if (p == NULL)
		return creto_err_set(e, CRETO_EOP, "out of memory");
	size_t o = 0;
	memcpy(p + o, label, ll);
	o += ll;
	memcpy(p + o, name, nl);
	o += nl;
	if (bindlen) {
		memcpy(p + o, bind, bindlen);
		o += bindlen;
	}
	p[o++] = (uint8_t)ctxlen;
	if (ctxlen) {
		memcpy(p + o, ctx, ctxlen);
		o += ctxlen;
	}
	if (msglen)
		memcpy(p + o, msg, msglen);
	*out = p;
	*outlen = head + msglen;
	return CRETO_OK;
}

int creto_sig_classical_msg(creto_alg alg, const uint8_t *ctx, size_t ctxlen, const uint8_t *msg,
			    size_t msglen, const uint8_t **out, size_t *outlen, uint8_t **owned,
			    creto_err *e)
{
	*owned = NULL;
	if (ctxlen == 0) {
		/* Raw signatures must never be able to stand for a context-bound
		 * or hybrid one: a message that begins like those encodings is
		 * refused, for signing and verifying alike. */
		static const char *const labels[] = {CRETO_SIG_CTX_LABEL, CRETO_SIG_HYBRID_LABEL};
		for (size_t i = 0; i < sizeof(labels) / sizeof(labels[0]); i++) {
			size_t ll = strlen(labels[i]);
			if (msglen >= ll && memcmp(msg, labels[i], ll) == 0)
				return creto_err_set(e, CRETO_EREJECT,
						     "message begins with '%s', reserved for context-bound "
						     "signatures; give a context",
						     labels[i]);
		}
		*out = msg;
		*outlen = msglen;
		return CRETO_OK;
	}
	int rc = encode_msg(CRETO_SIG_CTX_LABEL, creto_alg_name(alg), NULL, 0, ctx, ctxlen, msg, msglen,
			    owned, outlen, e);
	*out = *owned;
	return rc;
}

int creto_sig_mldsa_mprime(const uint8_t *ctx, size_t ctxlen, const uint8_t *msg, size_t msglen,
			   uint8_t **out, size_t *outlen, creto_err *e)
{
	*out = NULL;
	if (check_ctx(ctxlen, e) != CRETO_OK)
		return CRETO_EUSAGE;
	if (msglen > SIZE_MAX - 2 - ctxlen)
		return creto_err_set(e, CRETO_EUSAGE, "message too long");
	uint8_t *p = malloc(2 + ctxlen + msglen + 1);
	if (p == NULL)
		return creto_err_set(e, CRETO_EOP, "out of memory");
	p[0] = 0;
	p[1] = (uint8_t)ctxlen;
	if (ctxlen)
		memcpy(p + 2, ctx, ctxlen);
	if (msglen)
		memcpy(p + 2 + ctxlen, msg, msglen);
	*out = p;
	*outlen = 2 + ctxlen + msglen;
	return CRETO_OK;
}

int creto_sig_hybrid_msg(const creto_pubkey *pk, const uint8_t *ctx, size_t ctxlen,
			 const uint8_t *msg, size_t msglen, uint8_t **out, size_t *outlen, creto_err *e)
{
	return encode_msg(CRETO_SIG_HYBRID_LABEL, creto_alg_name(pk->alg), pk->bind, sizeof(pk->bind),
			  ctx, ctxlen, msg, msglen, out, outlen, e);
}

/* ---- verification ---- */

static int bad_sig(creto_err *e)
{
	ERR_clear_error();
	return creto_err_set(e, CRETO_EREJECT, "bad signature");
}

static int verify_ed25519(const creto_pubkey *pk, const uint8_t *m, size_t mlen, const uint8_t *sig,
			  creto_err *e)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int rc;
	if (md == NULL || pk->vmd == NULL || EVP_MD_CTX_copy_ex(md, pk->vmd) != 1)
		rc = creto_err_openssl(e, "ed25519 verify");
	else if (EVP_DigestVerify(md, sig, 64, m, mlen) == 1)
		rc = CRETO_OK;
	else
		rc = bad_sig(e);
	EVP_MD_CTX_free(md);
	return rc;
}

/* SHA-256 and SHA-384, fetched once per process (an implicit fetch on every
 * digest costs more than the hashing of a short message). */
static EVP_MD *ecdsa_md[2];
static pthread_once_t ecdsa_md_once = PTHREAD_ONCE_INIT;

static void ecdsa_md_fetch(void)
{
	ecdsa_md[0] = EVP_MD_fetch(NULL, "SHA2-256", NULL);
	ecdsa_md[1] = EVP_MD_fetch(NULL, "SHA2-384", NULL);
}

/* DER INTEGER of a w-byte big-endian unsigned value into out (room for
 * w + 3 bytes); returns the encoded length. */
static size_t der_uint(uint8_t *out, const uint8_t *v, size_t w)
{
	size_t i = 0;
	while (i + 1 < w && v[i] == 0)
		i++;
	size_t n = w - i, pad = (v[i] & 0x80) ? 1 : 0;
	out[0] = 0x02;
	out[1] = (uint8_t)(n + pad);
	out[2] = 0;
	memcpy(out + 2 + pad, v + i, n);
	return 2 + pad + n;
}

static int verify_ecdsa(const creto_pubkey *pk, const uint8_t *m, size_t mlen, const uint8_t *sig,
			size_t siglen, creto_err *e)
{
	size_t w = siglen / 2;
	if (pthread_once(&ecdsa_md_once, ecdsa_md_fetch) != 0)
		return creto_err_set(e, CRETO_EOP, "ecdsa verify: initialisation failed");
	const EVP_MD *md = ecdsa_md[pk->alg == CRETO_ALG_ECDSA_P384];
	if (md == NULL || pk->vctx == NULL)
		return creto_err_openssl(e, "ecdsa verify: digest unavailable");
	/* r||s -> DER SEQUENCE { INTEGER r, INTEGER s }; both fit one length byte. */
	uint8_t der[2 + 2 * (48 + 3)];
	size_t n = der_uint(der + 2, sig, w);
	n += der_uint(der + 2 + n, sig + w, w);
	der[0] = 0x30;
	der[1] = (uint8_t)n;
	uint8_t dig[EVP_MAX_MD_SIZE];
	unsigned int dl = 0;
	if (EVP_Digest(m, mlen, dig, &dl, md, NULL) != 1)
		return creto_err_openssl(e, "ecdsa verify: digest");
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_dup(pk->vctx);
	if (c == NULL)
		return creto_err_openssl(e, "ecdsa verify");
	int rc = EVP_PKEY_verify(c, der, n + 2, dig, dl) == 1 ? CRETO_OK : bad_sig(e);
	EVP_PKEY_CTX_free(c);
	return rc;
}

static int check_siglen(creto_alg alg, size_t siglen, creto_err *e)
{
	if (siglen != creto_alg_sig_len(alg))
		return creto_err_set(e, CRETO_EREJECT, "%s signature length %zu, expected %zu",
				     creto_alg_name(alg), siglen, creto_alg_sig_len(alg));
	return CRETO_OK;
}

int creto_sig_verify_primitive(const creto_pubkey *pk, const uint8_t *m, size_t mlen,
			       const uint8_t *sig, size_t siglen, creto_err *e)
{
	if (check_siglen(pk->alg, siglen, e) != CRETO_OK)
		return CRETO_EREJECT;
	switch (pk->alg) {
	case CRETO_ALG_ED25519:
		return verify_ed25519(pk, m, mlen, sig, e);
	case CRETO_ALG_ECDSA_P256:
	case CRETO_ALG_ECDSA_P384:
		return verify_ecdsa(pk, m, mlen, sig, siglen, e);
	case CRETO_ALG_MLDSA44:
	case CRETO_ALG_MLDSA65:
	case CRETO_ALG_MLDSA87:
		if (creto_mldsa_verify_internal(creto_alg_mldsa_ps(pk->alg), pk->raw, m, mlen, sig,
						siglen) == 0)
			return CRETO_OK;
		return bad_sig(e);
	default:
		return creto_err_set(e, CRETO_EUSAGE, "not a primitive algorithm");
	}
}

int creto_pubkey_verify(const creto_pubkey *pk, const uint8_t *ctx, size_t ctxlen,
			const uint8_t *msg, size_t msglen, const uint8_t *sig, size_t siglen,
			creto_err *e)
{
	uint8_t *m = NULL;
	const uint8_t *mp = NULL;
	size_t mlen = 0;
	int rc;
	if (check_ctx(ctxlen, e) != CRETO_OK)
		return CRETO_EUSAGE;
	if (check_siglen(pk->alg, siglen, e) != CRETO_OK)
		return CRETO_EREJECT;
	if (creto_alg_is_classical(pk->alg)) {
		rc = creto_sig_classical_msg(pk->alg, ctx, ctxlen, msg, msglen, &mp, &mlen, &m, e);
		if (rc == CRETO_OK)
			rc = creto_sig_verify_primitive(pk, mp, mlen, sig, siglen, e);
	} else if (creto_alg_is_mldsa(pk->alg)) {
		rc = creto_sig_mldsa_mprime(ctx, ctxlen, msg, msglen, &m, &mlen, e);
		if (rc == CRETO_OK)
			rc = creto_sig_verify_primitive(pk, m, mlen, sig, siglen, e);
	} else {
		/* Hybrid: both halves over the same bound message; the ML-DSA half
		 * additionally carries the label as its FIPS 204 context. */
		size_t cls = creto_alg_sig_len(pk->cl->alg);
		uint8_t *mq = NULL;
		size_t mqlen = 0;
		rc = creto_sig_hybrid_msg(pk, ctx, ctxlen, msg, msglen, &m, &mlen, e);
		if (rc == CRETO_OK) {
			rc = creto_sig_verify_primitive(pk->cl, m, mlen, sig, cls, e);
			if (rc != CRETO_OK)
				creto_err_ctx(e, "%s half", creto_alg_name(pk->cl->alg));
		}
		if (rc == CRETO_OK)
			rc = creto_sig_mldsa_mprime((const uint8_t *)CRETO_SIG_HYBRID_LABEL,
						    strlen(CRETO_SIG_HYBRID_LABEL), m, mlen, &mq, &mqlen, e);
		if (rc == CRETO_OK) {
			rc = creto_sig_verify_primitive(pk->pq, mq, mqlen, sig + cls, siglen - cls, e);
			if (rc != CRETO_OK)
				creto_err_ctx(e, "%s half", creto_alg_name(pk->pq->alg));
		}
		free(mq);
	}
	free(m);
	return rc;
}

/* ---- ECDSA r||s <-> DER ---- */

int creto_ecdsa_raw_to_der(creto_alg alg, const uint8_t *raw, size_t rawlen, uint8_t **der,
			   size_t *derlen, creto_err *e)
{
	size_t w = creto_alg_ec_width(alg);
	*der = NULL;
	*derlen = 0;
	if (w == 0)
		return creto_err_set(e, CRETO_EUSAGE, "not an ECDSA algorithm");
	if (rawlen != 2 * w)
		return creto_err_set(e, CRETO_EREJECT, "%s signature length %zu, expected %zu",
				     creto_alg_name(alg), rawlen, 2 * w);
	/* SEQUENCE { INTEGER r, INTEGER s }: at most 2 + 2 * (w + 3) bytes,
	 * under 128 for P-256 and P-384, so one length byte. */
	uint8_t buf[2 + 2 * (48 + 3)];
	size_t n = der_uint(buf + 2, raw, w);
	n += der_uint(buf + 2 + n, raw + w, w);
	buf[0] = 0x30;
	buf[1] = (uint8_t)n;
	*der = malloc(n + 2);
	if (*der == NULL)
		return creto_err_set(e, CRETO_EOP, "out of memory");
	memcpy(*der, buf, n + 2);
	*derlen = n + 2;
	return CRETO_OK;
}

/* One DER INTEGER at *p (of the n bytes left), strictly: short-form length,
 * minimal encoding, not negative, a value of at most w bytes, which goes
 * left-padded into out[w].  Advances *p and *n; -1 when it is not that. */
static int der_read_uint(const uint8_t **p, size_t *n, uint8_t *out, size_t w)
{
	const uint8_t *q = *p;
	if (*n < 3 || q[0] != 0x02 || q[1] == 0 || q[1] >= 0x80 || (size_t)q[1] > *n - 2)
		return -1;
	size_t len = q[1];
	const uint8_t *v = q + 2;
	if (v[0] & 0x80)
		return -1; /* negative */
	if (len > 1 && v[0] == 0 && !(v[1] & 0x80))
		return -1; /* not minimal */
	if (len > 1 && v[0] == 0) {
		v++;
		len--;
	}
	if (len > w)
		return -1;
	memset(out, 0, w - len);
	memcpy(out + (w - len), v, len);
	*p = q + 2 + q[1];
	*n -= 2 + (size_t)q[1];
	return 0;
}

int creto_ecdsa_der_to_raw(creto_alg alg, const uint8_t *der, size_t derlen, uint8_t *raw,
			   size_t rawcap, size_t *rawlen, creto_err *e)
{
	size_t w = creto_alg_ec_width(alg);
	*rawlen = 0;
	if (w == 0)
		return creto_err_set(e, CRETO_EUSAGE, "not an ECDSA algorithm");
	if (rawcap < 2 * w)
		return creto_err_set(e, CRETO_EUSAGE, "ECDSA raw buffer too small");
	/* Strict DER (X.690 §10): SEQUENCE with a short-form length that is
	 * exactly what follows, two minimal non-negative INTEGERs, nothing
	 * after.  For P-256 and P-384 every valid signature has short-form
	 * lengths (at most 2 + 2 * (48 + 3) = 104 bytes). */
	if (derlen < 2 || derlen > 2 * w + 16 || der[0] != 0x30 || der[1] >= 0x80 ||
	    (size_t)der[1] != derlen - 2)
		return creto_err_set(e, CRETO_EREJECT, "malformed DER ECDSA signature");
	const uint8_t *p = der + 2;
	size_t n = derlen - 2;
	if (der_read_uint(&p, &n, raw, w) != 0 || der_read_uint(&p, &n, raw + w, w) != 0 || n != 0)
		return creto_err_set(e, CRETO_EREJECT, "malformed or non-canonical DER ECDSA signature");
	*rawlen = 2 * w;
	return CRETO_OK;
}

/* ---- SubjectPublicKeyInfo interop ---- */

int creto_pubkey_from_spki(const uint8_t *data, size_t len, creto_pubkey **out, creto_err *e)
{
	EVP_PKEY *k = NULL;
	BIGNUM *x = NULL, *y = NULL;
	uint8_t raw[97];
	size_t rawlen = 0;
	creto_alg alg = CRETO_ALG_NONE;
	int rc = CRETO_EREJECT;
	*out = NULL;
	if (len == 0 || len > CRETO_KEYFILE_MAX)
		return creto_err_set(e, CRETO_EREJECT, "public key: empty or larger than %d bytes", CRETO_KEYFILE_MAX);
	static const char pem[] = "-----BEGIN PUBLIC KEY-----";
	if (len >= sizeof(pem) - 1 && memcmp(data, pem, sizeof(pem) - 1) == 0) {
		BIO *b = BIO_new_mem_buf(data, (int)len);
		if (b != NULL)
			k = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
		BIO_free(b);
	} else {
		const unsigned char *p = data;
		k = d2i_PUBKEY(NULL, &p, (long)len);
		if (k != NULL && p != data + len) {
			EVP_PKEY_free(k);
			k = NULL;
		}
	}
	if (k == NULL) {
		ERR_clear_error();
		return creto_err_set(e, CRETO_EREJECT, "public key: not a PEM or DER SubjectPublicKeyInfo");
	}
	if (EVP_PKEY_is_a(k, "ED25519")) {
		alg = CRETO_ALG_ED25519;
		rawlen = 32;
		if (EVP_PKEY_get_raw_public_key(k, raw, &rawlen) != 1 || rawlen != 32)
			goto bad;
	} else if (EVP_PKEY_is_a(k, "EC")) {
		char group[32];
		if (EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), NULL) != 1)
			goto bad;
		if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0)
			alg = CRETO_ALG_ECDSA_P256;
		else if (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0)
			alg = CRETO_ALG_ECDSA_P384;
		else {
			rc = creto_err_set(e, CRETO_EREJECT, "public key: EC curve %.31s not supported", group);
			goto out;
		}
		size_t w = creto_alg_ec_width(alg);
		if (EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_X, &x) != 1 ||
		    EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_Y, &y) != 1 ||
		    BN_bn2binpad(x, raw + 1, (int)w) < 0 || BN_bn2binpad(y, raw + 1 + w, (int)w) < 0)
			goto bad;
		raw[0] = 0x04;
		rawlen = 1 + 2 * w;
	} else {
		rc = creto_err_set(e, CRETO_EREJECT, "public key: only Ed25519, P-256 and P-384 keys are supported");
		goto out;
	}
	rc = creto_pubkey_new(alg, raw, rawlen, out, e);
	goto out;
bad:
	ERR_clear_error();
	rc = creto_err_set(e, CRETO_EREJECT, "public key: malformed");
out:
	BN_free(x);
	BN_free(y);
	EVP_PKEY_free(k);
	return rc;
}

int creto_pubkey_to_pem(const creto_pubkey *pk, char **out, creto_err *e)
{
	BIO *b = NULL;
	char *mem = NULL;
	int rc = CRETO_EOP;
	*out = NULL;
	if (pk->pkey == NULL)
		return creto_err_set(e, CRETO_EUSAGE, "%s keys have no SubjectPublicKeyInfo form here",
				     creto_alg_name(pk->alg));
	b = BIO_new(BIO_s_mem());
	if (b == NULL || PEM_write_bio_PUBKEY(b, pk->pkey) != 1) {
		rc = creto_err_openssl(e, "PEM public key");
		goto out;
	}
	long n = BIO_get_mem_data(b, &mem);
	if (n <= 0 || (*out = malloc((size_t)n + 1)) == NULL) {
		rc = creto_err_set(e, CRETO_EOP, "out of memory");
		goto out;
	}
	memcpy(*out, mem, (size_t)n);
	(*out)[n] = 0;
	rc = CRETO_OK;
out:
	BIO_free(b);
	return rc;
}
