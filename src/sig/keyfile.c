/*
 * keyfile.c - keys that live in files: the "file" signer (secret in
 * memory, wiped on free), key generation, and the three text formats of
 * docs/signatures.md (public key, secret key, signature file), which share
 * one strict three-line layout:
 *     untrusted comment: <printable ASCII>\n
 *     <tag> <alg> <key id>\n
 *     <base64 body>\n
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sig/sig_internal.h"
#include "util/enc.h"
#include "util/file.h"

#define TAG_PUB "creto-pubkey-v1"
#define TAG_SEC "creto-seckey-v1"
#define TAG_SIG "creto-sig-v1"
#define COMMENT_PREFIX "untrusted comment: "
#define COMMENT_MAX 256 /* characters after the prefix */
#define CHECKSUM_BYTES 8

/* ---- the file signer ---- */

struct file_key {
	creto_alg alg; /* non-hybrid */
	uint8_t secret[CRETO_SECRET_MAX];
	size_t secretlen;
	EVP_PKEY *pkey;   /* classical */
	EVP_MD_CTX *tmpl; /* classical: initialised for signing once, copied per signature
			   * (an init per signature fetches the algorithms again) */
	uint8_t *mldsa_sk; /* ML-DSA expanded secret key */
	size_t mldsa_sklen;
};

static void file_key_free(void *impl)
{
	struct file_key *k = impl;
	if (k == NULL)
		return;
	EVP_MD_CTX_free(k->tmpl);
	EVP_PKEY_free(k->pkey);
	if (k->mldsa_sk != NULL) {
		OPENSSL_cleanse(k->mldsa_sk, k->mldsa_sklen);
		free(k->mldsa_sk);
	}
	OPENSSL_cleanse(k, sizeof(*k));
	free(k);
}

static int file_sign(void *impl, const uint8_t *m, size_t mlen, uint8_t *sig, size_t sigcap,
		     size_t *siglen, creto_err *e)
{
	struct file_key *k = impl;
	size_t want = creto_alg_sig_len(k->alg);
	int rc = CRETO_EOP;
	*siglen = 0;
	if (sigcap < want)
		return creto_err_set(e, CRETO_EUSAGE, "signature buffer too small");
	if (k->alg == CRETO_ALG_ED25519 || creto_alg_ec_width(k->alg) != 0) {
		EVP_MD_CTX *md = EVP_MD_CTX_new();
		uint8_t der[160];
		size_t dl = sizeof(der);
		int ok = md != NULL &&
			 (k->tmpl != NULL ? EVP_MD_CTX_copy_ex(md, k->tmpl) == 1
					  : EVP_DigestSignInit(md, NULL, creto_alg_md(k->alg), NULL, k->pkey) == 1);
		if (k->alg == CRETO_ALG_ED25519) {
			dl = sigcap;
			ok = ok && EVP_DigestSign(md, sig, &dl, m, mlen) == 1 && dl == want;
		} else {
			ok = ok && EVP_DigestSign(md, der, &dl, m, mlen) == 1;
		}
		EVP_MD_CTX_free(md);
		if (!ok)
			return creto_err_openssl(e, "%s sign", creto_alg_name(k->alg));
		if (k->alg != CRETO_ALG_ED25519)
			return creto_ecdsa_der_to_raw(k->alg, der, dl, sig, sigcap, siglen, e);
		*siglen = dl;
		return CRETO_OK;
	}
	/* ML-DSA, hedged: fresh randomness per signature (FIPS 204 §3.4). */
	uint8_t rnd[CRETO_MLDSA_RNDBYTES];
	if (RAND_priv_bytes(rnd, sizeof(rnd)) != 1)
		return creto_err_openssl(e, "random bytes");
	if (creto_mldsa_sign_internal(creto_alg_mldsa_ps(k->alg), k->mldsa_sk, m, mlen, rnd, sig) == 0) {
		*siglen = want;
		rc = CRETO_OK;
	} else {
		rc = creto_err_set(e, CRETO_EOP, "%s sign failed", creto_alg_name(k->alg));
	}
	OPENSSL_cleanse(rnd, sizeof(rnd));
	return rc;
}

static const creto_signer_ops file_ops = {"file", file_sign, file_key_free};

/* The key pair of a classical ECDSA secret scalar d (fixed width). */
static int ec_keypair(creto_alg alg, const uint8_t *d, EVP_PKEY **pkey, uint8_t *pub, creto_err *e)
{
	size_t w = creto_alg_ec_width(alg), publen = creto_alg_pub_len(alg);
	int nid = alg == CRETO_ALG_ECDSA_P256 ? NID_X9_62_prime256v1 : NID_secp384r1;
	EC_GROUP *g = EC_GROUP_new_by_curve_name(nid);
	BN_CTX *bc = BN_CTX_secure_new();
	BIGNUM *bd = BN_secure_new();
	EC_POINT *P = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	int rc = CRETO_EOP;
	*pkey = NULL;
	if (g == NULL || bc == NULL || bd == NULL || BN_bin2bn(d, (int)w, bd) == NULL) {
		rc = creto_err_openssl(e, "EC key");
		goto out;
	}
	if (BN_is_zero(bd) || BN_cmp(bd, EC_GROUP_get0_order(g)) >= 0) {
		rc = creto_err_set(e, CRETO_EREJECT, "%s secret scalar out of range", creto_alg_name(alg));
		goto out;
	}
	P = EC_POINT_new(g);
	if (P == NULL || EC_POINT_mul(g, P, bd, NULL, NULL, bc) != 1 ||
	    EC_POINT_point2oct(g, P, POINT_CONVERSION_UNCOMPRESSED, pub, publen, bc) != publen) {
		rc = creto_err_openssl(e, "EC public key");
		goto out;
	}
	bld = OSSL_PARAM_BLD_new();
	if (bld == NULL ||
	    OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, creto_alg_curve(alg), 0) != 1 ||
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, bd) != 1 ||
	    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, publen) != 1 ||
	    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
	    (ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) != 1 || EVP_PKEY_fromdata(ctx, pkey, EVP_PKEY_KEYPAIR, params) != 1) {
		rc = creto_err_openssl(e, "EC key pair");
		goto out;
	}
	rc = CRETO_OK;
out:
	OSSL_PARAM_free(params); /* d is a secure BN: the builder used secure memory */
	OSSL_PARAM_BLD_free(bld);
	EVP_PKEY_CTX_free(ctx);
	EC_POINT_free(P);
	BN_clear_free(bd);
	BN_CTX_free(bc);
	EC_GROUP_free(g);
	return rc;
}

/* A file signer for a non-hybrid alg from its secret encoding. */
static int signer_from_secret1(creto_alg alg, const uint8_t *secret, size_t len, creto_signer **out,
			       creto_err *e)
{
	uint8_t pub[CRETO_MLDSA_PK_MAX];
	size_t publen = creto_alg_pub_len(alg);
	creto_pubkey *pk = NULL;
	int rc = CRETO_EOP;
	*out = NULL;
	if (len != creto_alg_secret_len(alg))
		return creto_err_set(e, CRETO_EREJECT, "%s secret key length %zu, expected %zu",
				     creto_alg_name(alg), len, creto_alg_secret_len(alg));
	struct file_key *k = calloc(1, sizeof(*k));
	if (k == NULL)
		return creto_err_set(e, CRETO_EOP, "out of memory");
	k->alg = alg;
	memcpy(k->secret, secret, len);
	k->secretlen = len;
	if (alg == CRETO_ALG_ED25519) {
		size_t pl = 32;
		k->pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, secret, len);
		if (k->pkey == NULL || EVP_PKEY_get_raw_public_key(k->pkey, pub, &pl) != 1 || pl != 32) {
			rc = creto_err_openssl(e, "ed25519 key");
			goto fail;
		}
	} else if (creto_alg_is_classical(alg)) {
		if ((rc = ec_keypair(alg, secret, &k->pkey, pub, e)) != CRETO_OK)
			goto fail;
	} else {
		creto_mldsa_ps ps = creto_alg_mldsa_ps(alg);
		k->mldsa_sklen = creto_mldsa_sk_bytes(ps);
		k->mldsa_sk = malloc(k->mldsa_sklen);
		if (k->mldsa_sk == NULL) {
			rc = creto_err_set(e, CRETO_EOP, "out of memory");
			goto fail;
		}
		if (creto_mldsa_keygen(ps, secret, pub, k->mldsa_sk) != 0) {
			rc = creto_err_set(e, CRETO_EOP, "%s key generation failed", creto_alg_name(alg));
			goto fail;
		}
	}
	/* the signing context, once; without it each signature inits its own */
	if (k->pkey != NULL && (k->tmpl = EVP_MD_CTX_new()) != NULL &&
	    EVP_DigestSignInit(k->tmpl, NULL, creto_alg_md(alg), NULL, k->pkey) != 1) {
		EVP_MD_CTX_free(k->tmpl);
		k->tmpl = NULL;
	}
	rc = creto_pubkey_new(alg, pub, publen, &pk, e);
	if (rc != CRETO_OK)
		goto fail;
	return creto_signer_new(&file_ops, k, pk, out, e);
fail:
	file_key_free(k);
	return rc;
}

int creto_signer_from_secret(creto_alg alg, const uint8_t *secret, size_t len, creto_signer **out,
			      creto_err *e)
{
	*out = NULL;
	if (!creto_alg_is_hybrid(alg))
		return signer_from_secret1(alg, secret, len, out, e);
	creto_alg ca = creto_alg_hybrid_classical(alg), qa = creto_alg_hybrid_pq(alg);
	size_t cl = creto_alg_secret_len(ca);
	creto_signer *c = NULL, *q = NULL;
	if (len != creto_alg_secret_len(alg))
		return creto_err_set(e, CRETO_EREJECT, "%s secret key length %zu, expected %zu",
				     creto_alg_name(alg), len, creto_alg_secret_len(alg));
	int rc = signer_from_secret1(ca, secret, cl, &c, e);
	if (rc == CRETO_OK)
		rc = signer_from_secret1(qa, secret + cl, len - cl, &q, e);
	if (rc != CRETO_OK) {
		creto_signer_free(c);
		return rc;
	}
	return creto_signer_hybrid_new(c, q, out, e);
}

static int random_secret1(creto_alg alg, uint8_t *out, creto_err *e)
{
	size_t len = creto_alg_secret_len(alg);
	if (RAND_priv_bytes(out, (int)len) != 1)
		return creto_err_openssl(e, "random bytes");
	if (creto_alg_ec_width(alg) != 0) {
		/* Rejection sampling in [1, n-1]; a retry is needed with
		 * probability below 2^-32 on P-256 and P-384. */
		int nid = alg == CRETO_ALG_ECDSA_P256 ? NID_X9_62_prime256v1 : NID_secp384r1;
		EC_GROUP *g = EC_GROUP_new_by_curve_name(nid);
		BIGNUM *d = BN_secure_new();
		int ok = g != NULL && d != NULL, tries = 0;
		while (ok && (BN_bin2bn(out, (int)len, d) == NULL || BN_is_zero(d) ||
			      BN_cmp(d, EC_GROUP_get0_order(g)) >= 0)) {
			ok = ++tries < 64 && RAND_priv_bytes(out, (int)len) == 1;
		}
		BN_clear_free(d);
		EC_GROUP_free(g);
		if (!ok)
			return creto_err_openssl(e, "EC secret");
	}
	return CRETO_OK;
}

int creto_signer_generate(creto_alg alg, creto_signer **out, creto_err *e)
{
	uint8_t secret[CRETO_SECRET_MAX];
	int rc;
	*out = NULL;
	if (creto_alg_name(alg) == NULL)
		return creto_err_set(e, CRETO_EUSAGE, "unknown algorithm %d", (int)alg);
	if (creto_alg_is_hybrid(alg)) {
		creto_alg ca = creto_alg_hybrid_classical(alg);
		rc = random_secret1(ca, secret, e);
		if (rc == CRETO_OK)
			rc = random_secret1(creto_alg_hybrid_pq(alg), secret + creto_alg_secret_len(ca), e);
	} else {
		rc = random_secret1(alg, secret, e);
	}
	if (rc == CRETO_OK)
		rc = creto_signer_from_secret(alg, secret, creto_alg_secret_len(alg), out, e);
	OPENSSL_cleanse(secret, sizeof(secret));
	return rc;
}

/* The secret encoding of a file signer (hybrid: both halves). */
static int signer_secret(const creto_signer *s, uint8_t *out, size_t *len, creto_err *e)
{
	if (s->ops == NULL) {
		size_t a = 0, b = 0;
		if (signer_secret(s->cl, out, &a, e) != CRETO_OK || signer_secret(s->pq, out + a, &b, e) != CRETO_OK)
			return CRETO_EUSAGE;
		*len = a + b;
		return CRETO_OK;
	}
	if (s->ops != &file_ops)
		return creto_err_set(e, CRETO_EUSAGE, "key %s is a %s key: its secret cannot be exported",
				     s->pub->id, s->kind);
	const struct file_key *k = s->impl;
	memcpy(out, k->secret, k->secretlen);
	*len = k->secretlen;
	return CRETO_OK;
}

/* ---- the shared text layout ---- */

static int checksum(creto_alg alg, const uint8_t *secret, size_t len, uint8_t out[CHECKSUM_BYTES],
		    creto_err *e)
{
	uint8_t h[32];
	const char *name = creto_alg_name(alg);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
		 EVP_DigestUpdate(md, TAG_SEC, sizeof(TAG_SEC)) == 1 && /* tag || 0x00 */
		 EVP_DigestUpdate(md, name, strlen(name) + 1) == 1 &&   /* alg || 0x00 */
		 EVP_DigestUpdate(md, secret, len) == 1 && EVP_DigestFinal_ex(md, h, NULL) == 1;
	EVP_MD_CTX_free(md);
	if (!ok)
		return creto_err_openssl(e, "checksum");
	memcpy(out, h, CHECKSUM_BYTES);
	OPENSSL_cleanse(h, sizeof(h));
	return CRETO_OK;
}

static int comment_ok(const char *c)
{
	size_t n = strlen(c);
	if (n > COMMENT_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)c[i] < 0x20 || (unsigned char)c[i] > 0x7e)
			return 0;
	return 1;
}

/* Format the three lines; body is base64-encoded. *out malloc'ed. */
static int format3(const char *comment, const char *tag, creto_alg alg, const char *keyid,
		   const uint8_t *body, size_t bodylen, char **out, creto_err *e)
{
	*out = NULL;
	if (!comment_ok(comment))
		return creto_err_set(e, CRETO_EUSAGE,
				     "comment must be at most %d printable ASCII characters", COMMENT_MAX);
	size_t b64 = creto_b64_enclen(bodylen, 0);
	size_t cap = strlen(COMMENT_PREFIX) + strlen(comment) + strlen(tag) + strlen(creto_alg_name(alg)) +
		     strlen(keyid) + b64 + 8;
	char *p = malloc(cap);
	if (p == NULL)
		return creto_err_set(e, CRETO_EOP, "out of memory");
	int n = snprintf(p, cap, COMMENT_PREFIX "%s\n%s %s %s\n", comment, tag, creto_alg_name(alg), keyid);
	creto_b64_encode(p + n, body, bodylen, 0);
	memcpy(p + n + b64, "\n", 2);
	*out = p;
	return CRETO_OK;
}

/* Strict parse of the three lines.  what names the file kind in errors. */
static int parse3(const char *text, size_t len, const char *tag, const char *what, creto_alg *alg,
		  char keyid[CRETO_KEYID_HEXLEN + 1], uint8_t *body, size_t bodycap, size_t *bodylen,
		  creto_err *e)
{
	const char *lines[3];
	size_t lens[3];
	size_t pos = 0;
	if (len > CRETO_KEYFILE_MAX)
		return creto_err_set(e, CRETO_EREJECT, "%s: larger than %d bytes", what, CRETO_KEYFILE_MAX);
	for (int i = 0; i < 3; i++) {
		const char *nl = pos < len ? memchr(text + pos, '\n', len - pos) : NULL;
		if (nl == NULL)
			return creto_err_set(e, CRETO_EREJECT, "%s: line %d missing or not terminated", what,
					     i + 1);
		lines[i] = text + pos;
		lens[i] = (size_t)(nl - (text + pos));
		pos += lens[i] + 1;
	}
	if (pos != len)
		return creto_err_set(e, CRETO_EREJECT, "%s: trailing data after line 3", what);
	size_t pl = strlen(COMMENT_PREFIX);
	if (lens[0] < pl || memcmp(lines[0], COMMENT_PREFIX, pl) != 0 || lens[0] - pl > COMMENT_MAX)
		return creto_err_set(e, CRETO_EREJECT, "%s: line 1 is not an untrusted comment", what);
	for (size_t i = pl; i < lens[0]; i++)
		if ((unsigned char)lines[0][i] < 0x20 || (unsigned char)lines[0][i] > 0x7e)
			return creto_err_set(e, CRETO_EREJECT, "%s: comment has a non-printable byte", what);
	/* line 2: tag SP alg SP keyid */
	char l2[96];
	if (lens[1] >= sizeof(l2))
		return creto_err_set(e, CRETO_EREJECT, "%s: line 2 too long", what);
	memcpy(l2, lines[1], lens[1]);
	l2[lens[1]] = 0;
	if (memchr(l2, 0, lens[1]) != NULL)
		return creto_err_set(e, CRETO_EREJECT, "%s: NUL byte in line 2", what);
	char *sp1 = strchr(l2, ' '), *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	if (sp1 == NULL || sp2 == NULL || strchr(sp2 + 1, ' ') != NULL)
		return creto_err_set(e, CRETO_EREJECT, "%s: line 2 must be '%s ALG KEYID'", what, tag);
	*sp1 = *sp2 = 0;
	if (strcmp(l2, tag) != 0)
		return creto_err_set(e, CRETO_EREJECT, "%s: expected '%s', found '%.32s'", what, tag, l2);
	*alg = creto_alg_from_name(sp1 + 1);
	if (*alg == CRETO_ALG_NONE)
		return creto_err_set(e, CRETO_EREJECT, "%s: unknown algorithm '%.32s'", what, sp1 + 1);
	const char *kid = sp2 + 1;
	if (strlen(kid) != CRETO_KEYID_HEXLEN || strspn(kid, "0123456789abcdef") != CRETO_KEYID_HEXLEN)
		return creto_err_set(e, CRETO_EREJECT, "%s: key id must be %d lowercase hex characters", what,
				     CRETO_KEYID_HEXLEN);
	memcpy(keyid, kid, CRETO_KEYID_HEXLEN + 1);
	if (creto_b64_decode(body, bodycap, bodylen, lines[2], lens[2], 0) != 0)
		return creto_err_set(e, CRETO_EREJECT, "%s: line 3 is not canonical base64 of the right size",
				     what);
	return CRETO_OK;
}

/* ---- public key files ---- */

int creto_pubkey_format(const creto_pubkey *pk, const char *comment, char **out, creto_err *e)
{
	char def[96];
	if (comment == NULL) {
		snprintf(def, sizeof(def), "creto public key %s (%s)", pk->id, creto_alg_name(pk->alg));
		comment = def;
	}
	return format3(comment, TAG_PUB, pk->alg, pk->id, pk->raw, pk->rawlen, out, e);
}

int creto_pubkey_parse(const char *text, size_t len, creto_pubkey **out, creto_err *e)
{
	uint8_t raw[CRETO_PUB_MAX];
	size_t rawlen = 0;
	char kid[CRETO_KEYID_HEXLEN + 1];
	creto_alg alg = CRETO_ALG_NONE;
	*out = NULL;
	int rc = parse3(text, len, TAG_PUB, "public key file", &alg, kid, raw, sizeof(raw), &rawlen, e);
	if (rc != CRETO_OK)
		return rc;
	if (rawlen != creto_alg_pub_len(alg))
		return creto_err_set(e, CRETO_EREJECT, "public key file: %s key of %zu bytes, expected %zu",
				     creto_alg_name(alg), rawlen, creto_alg_pub_len(alg));
	rc = creto_pubkey_new(alg, raw, rawlen, out, e);
	if (rc != CRETO_OK)
		return creto_err_ctx(e, "public key file");
	if (strcmp((*out)->id, kid) != 0) {
		rc = creto_err_set(e, CRETO_EREJECT, "public key file: key id %s does not match the key (%s)",
				   kid, (*out)->id);
		creto_pubkey_free(*out);
		*out = NULL;
	}
	return rc;
}

int creto_pubkey_load(const char *path, creto_pubkey **out, creto_err *e)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	*out = NULL;
	int rc = creto_file_read(path, CRETO_KEYFILE_MAX, &buf, &len, e);
	if (rc != CRETO_OK)
		return rc;
	rc = creto_pubkey_parse((const char *)buf, len, out, e);
	free(buf);
	if (rc != CRETO_OK)
		creto_err_ctx(e, "%s", path);
	return rc;
}

/* ---- secret key files ---- */

int creto_secretkey_format(const creto_signer *s, const char *comment, char **out, creto_err *e)
{
	uint8_t body[CRETO_SECRET_MAX + CHECKSUM_BYTES];
	size_t len = 0;
	char def[96];
	*out = NULL;
	int rc = signer_secret(s, body, &len, e);
	if (rc == CRETO_OK)
		rc = checksum(s->pub->alg, body, len, body + len, e);
	if (rc == CRETO_OK) {
		if (comment == NULL) {
			snprintf(def, sizeof(def), "creto secret key %s (%s)", s->pub->id,
				 creto_alg_name(s->pub->alg));
			comment = def;
		}
		rc = format3(comment, TAG_SEC, s->pub->alg, s->pub->id, body, len + CHECKSUM_BYTES, out, e);
	}
	OPENSSL_cleanse(body, sizeof(body));
	return rc;
}

void creto_secret_text_free(char *text)
{
	if (text == NULL)
		return;
	OPENSSL_cleanse(text, strlen(text));
	free(text);
}

int creto_secretkey_parse(const char *text, size_t len, creto_signer **out, creto_err *e)
{
	uint8_t body[CRETO_SECRET_MAX + CHECKSUM_BYTES], sum[CHECKSUM_BYTES];
	size_t bodylen = 0;
	char kid[CRETO_KEYID_HEXLEN + 1];
	creto_alg alg = CRETO_ALG_NONE;
	*out = NULL;
	int rc = parse3(text, len, TAG_SEC, "secret key file", &alg, kid, body, sizeof(body), &bodylen, e);
	if (rc != CRETO_OK)
		goto out;
	size_t sl = creto_alg_secret_len(alg);
	if (bodylen != sl + CHECKSUM_BYTES) {
		rc = creto_err_set(e, CRETO_EREJECT, "secret key file: %s body of %zu bytes, expected %zu",
				   creto_alg_name(alg), bodylen, sl + CHECKSUM_BYTES);
		goto out;
	}
	if ((rc = checksum(alg, body, sl, sum, e)) != CRETO_OK)
		goto out;
	if (CRYPTO_memcmp(sum, body + sl, CHECKSUM_BYTES) != 0) {
		rc = creto_err_set(e, CRETO_EREJECT, "secret key file: checksum mismatch (key %s corrupted)", kid);
		goto out;
	}
	rc = creto_signer_from_secret(alg, body, sl, out, e);
	if (rc != CRETO_OK) {
		creto_err_ctx(e, "secret key file");
		goto out;
	}
	if (strcmp((*out)->pub->id, kid) != 0) {
		rc = creto_err_set(e, CRETO_EREJECT, "secret key file: key id %s does not match the key (%s)",
				   kid, (*out)->pub->id);
		creto_signer_free(*out);
		*out = NULL;
	}
out:
	OPENSSL_cleanse(body, sizeof(body));
	return rc;
}

/* A secret key file is read into a fixed buffer (creto_file_read_fixed:
 * never realloc'ed, so no stray copy of the secret is left in freed
 * memory), and the buffer is wiped. */
int creto_secretkey_load(const char *path, creto_signer **out, creto_err *e)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	*out = NULL;
	buf = malloc(CRETO_KEYFILE_MAX + 1);
	if (buf == NULL)
		return creto_err_set(e, CRETO_EOP, "out of memory");
	int rc = creto_file_read_fixed(path, buf, CRETO_KEYFILE_MAX + 1, &len, e);
	if (rc == CRETO_OK) {
		rc = creto_secretkey_parse((const char *)buf, len, out, e);
		if (rc != CRETO_OK)
			creto_err_ctx(e, "%s", path);
	}
	OPENSSL_cleanse(buf, CRETO_KEYFILE_MAX + 1);
	free(buf);
	return rc;
}

int creto_key_load_public(const char *path, creto_pubkey **out, creto_err *e)
{
	creto_signer *s = NULL;
	size_t len = 0;
	*out = NULL;
	uint8_t *buf = malloc(CRETO_KEYFILE_MAX + 1);
	if (buf == NULL)
		return creto_err_set(e, CRETO_EOP, "out of memory");
	int rc = creto_file_read_fixed(path, buf, CRETO_KEYFILE_MAX + 1, &len, e);
	if (rc != CRETO_OK)
		goto out;
	const char *nl = memchr(buf, '\n', len);
	size_t tl = strlen(TAG_SEC " ");
	if (nl != NULL && (size_t)(buf + len - (const uint8_t *)nl) > tl &&
	    memcmp(nl + 1, TAG_SEC " ", tl) == 0) {
		rc = creto_secretkey_parse((const char *)buf, len, &s, e);
		if (rc == CRETO_OK)
			rc = creto_pubkey_dup(s->pub, out, e);
		creto_signer_free(s);
	} else {
		rc = creto_pubkey_parse((const char *)buf, len, out, e);
	}
	if (rc != CRETO_OK)
		creto_err_ctx(e, "%s", path);
out:
	OPENSSL_cleanse(buf, CRETO_KEYFILE_MAX + 1);
	free(buf);
	return rc;
}

static int exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0 || errno != ENOENT;
}

int creto_key_generate(creto_alg alg, const char *name, creto_err *e)
{
	creto_signer *s = NULL;
	char *sec = NULL, *pub = NULL, *kp = NULL, *pp = NULL;
	int rc;
	if (creto_alg_name(alg) == NULL)
		return creto_err_set(e, CRETO_EUSAGE, "unknown algorithm %d", (int)alg);
	if (asprintf(&kp, "%s.key", name) < 0 || asprintf(&pp, "%s.pub", name) < 0) {
		rc = creto_err_set(e, CRETO_EOP, "out of memory");
		goto out;
	}
	/* Refuse before creating anything, so neither file is left half-made. */
	if (exists(kp) || exists(pp)) {
		rc = creto_err_set(e, CRETO_EUSAGE, "%s: already exists (key files are never overwritten)",
				   exists(kp) ? kp : pp);
		goto out;
	}
	if ((rc = creto_signer_generate(alg, &s, e)) != CRETO_OK)
		goto out;
	if ((rc = creto_secretkey_format(s, NULL, &sec, e)) != CRETO_OK ||
	    (rc = creto_pubkey_format(s->pub, NULL, &pub, e)) != CRETO_OK)
		goto out;
	if ((rc = creto_file_write_excl(kp, sec, strlen(sec), 0600, e)) != CRETO_OK)
		goto out;
	if ((rc = creto_file_write_excl(pp, pub, strlen(pub), 0644, e)) != CRETO_OK) {
		(void)unlink(kp);
		goto out;
	}
	rc = CRETO_OK;
out:
	creto_secret_text_free(sec);
	free(pub);
	free(kp);
	free(pp);
	creto_signer_free(s);
	return rc;
}

/* ---- signature files ---- */

int creto_sigfile_format(const creto_pubkey *pk, const uint8_t *sig, size_t siglen, char **out,
			 creto_err *e)
{
	char c[96];
	*out = NULL;
	if (siglen != creto_alg_sig_len(pk->alg))
		return creto_err_set(e, CRETO_EUSAGE, "%s signature length %zu, expected %zu",
				     creto_alg_name(pk->alg), siglen, creto_alg_sig_len(pk->alg));
	snprintf(c, sizeof(c), "signature from creto key %s (%s)", pk->id, creto_alg_name(pk->alg));
	return format3(c, TAG_SIG, pk->alg, pk->id, sig, siglen, out, e);
}

int creto_sigfile_parse(const char *text, size_t len, creto_sigfile *out, creto_err *e)
{
	uint8_t *buf = NULL;
	size_t n = 0;
	memset(out, 0, sizeof(*out));
	buf = malloc(CRETO_SIG_MAX);
	if (buf == NULL)
		return creto_err_set(e, CRETO_EOP, "out of memory");
	int rc = parse3(text, len, TAG_SIG, "signature file", &out->alg, out->keyid, buf, CRETO_SIG_MAX, &n, e);
	if (rc == CRETO_OK && n != creto_alg_sig_len(out->alg))
		rc = creto_err_set(e, CRETO_EREJECT, "signature file: %s signature of %zu bytes, expected %zu",
				   creto_alg_name(out->alg), n, creto_alg_sig_len(out->alg));
	if (rc != CRETO_OK) {
		free(buf);
		memset(out, 0, sizeof(*out));
		return rc;
	}
	out->sig = buf;
	out->siglen = n;
	return CRETO_OK;
}

int creto_sigfile_load(const char *path, creto_sigfile *out, creto_err *e)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	memset(out, 0, sizeof(*out));
	int rc = creto_file_read(path, CRETO_KEYFILE_MAX, &buf, &len, e);
	if (rc != CRETO_OK)
		return rc;
	rc = creto_sigfile_parse((const char *)buf, len, out, e);
	free(buf);
	if (rc != CRETO_OK)
		creto_err_ctx(e, "%s", path);
	return rc;
}

void creto_sigfile_clear(creto_sigfile *sf)
{
	if (sf == NULL)
		return;
	free(sf->sig);
	memset(sf, 0, sizeof(*sf));
}
