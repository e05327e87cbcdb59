/*
 * hybrid.c - the hybrid HSM key: classical half in the HSM, ML-DSA half in
 * a file `creto-hsm-pq-key-v1` (docs/keys.md §4) holding the ML-DSA seed
 * encrypted with AES-256-GCM under a data key wrapped by an HSM AES key.
 *
 * The seed exists in clear only inside pq_sign(): unwrap the data key
 * through the HSM, decrypt, derive the key pair, check the public key,
 * sign, wipe.  Nothing secret is kept between signatures.
 */
#include "p11.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "util/enc.h"
#include "util/file.h"

#define PQ_MAGIC "creto-hsm-pq-key-v1"
#define PQ_FILE_MAX 16384
#define PQ_SEED CRETO_MLDSA_SEED_LEN
#define PQ_NONCE CRETO_HSM_SEAL_NONCE
#define PQ_TAG CRETO_HSM_SEAL_TAG
#define PQ_WRAPPED_DK 40 /* RFC 5649 of the 32-byte data key */

struct pq_file {
	creto_alg alg, pq_alg, cl_alg;
	char token[CRETO_HSM_TOKEN_LABEL_MAX + 1];
	char cl_label[CRETO_HSM_LABEL_MAX + 1], wrap_label[CRETO_HSM_LABEL_MAX + 1];
	uint8_t cl_id[CRETO_HSM_KEYID_BYTES], wrap_id[CRETO_HSM_KEYID_BYTES];
	uint8_t wrapped[PQ_WRAPPED_DK];
	uint8_t nonce[PQ_NONCE];
	uint8_t pk[CRETO_PUB_MAX];
	size_t pklen;
	uint8_t ct[PQ_SEED + PQ_TAG];
	uint8_t *aad; /* file bytes up to the end of the public-key line */
	size_t aadlen;
};

/* ---- file parsing ---- */

/* Take the next line "name: value" from *p (within end); value NUL-
 * terminated in buf. */
static int take_line(const char **p, const char *end, const char *name, char *buf, size_t cap,
		     const char *path, creto_err *e)
{
	const char *nl = memchr(*p, '\n', (size_t)(end - *p));
	size_t nlen = strlen(name);
	if (nl == NULL)
		return creto_err_set(e, CRETO_EREJECT, "%s: line '%s' missing or not LF-terminated", path,
				     name);
	size_t len = (size_t)(nl - *p);
	if (len < nlen + 2 || memcmp(*p, name, nlen) != 0 || (*p)[nlen] != ':' || (*p)[nlen + 1] != ' ')
		return creto_err_set(e, CRETO_EREJECT, "%s: expected line '%s: ...'", path, name);
	size_t vlen = len - nlen - 2;
	if (vlen == 0 || vlen >= cap)
		return creto_err_set(e, CRETO_EREJECT, "%s: %s: bad length", path, name);
	memcpy(buf, *p + nlen + 2, vlen);
	buf[vlen] = '\0';
	for (size_t i = 0; i < vlen; i++)
		if ((unsigned char)buf[i] < 0x20 || (unsigned char)buf[i] == 0x7f)
			return creto_err_set(e, CRETO_EREJECT, "%s: %s: control character", path, name);
	*p = nl + 1;
	return CRETO_OK;
}

static int b64_exact(const char *v, uint8_t *out, size_t want, const char *path, const char *name,
		     creto_err *e)
{
	size_t n = 0;
	if (creto_b64_decode(out, want, &n, v, strlen(v), 0) != 0 || n != want)
		return creto_err_set(e, CRETO_EREJECT, "%s: %s: not base64 of %zu bytes", path, name, want);
	return CRETO_OK;
}

static int hex_exact(const char *v, uint8_t *out, size_t want, const char *path, const char *name,
		     creto_err *e)
{
	size_t n = 0;
	for (const char *c = v; *c; c++)
		if (*c >= 'A' && *c <= 'F')
			return creto_err_set(e, CRETO_EREJECT, "%s: %s: hex must be lowercase", path, name);
	if (creto_hex_decode(out, want, &n, v, strlen(v)) != 0 || n != want)
		return creto_err_set(e, CRETO_EREJECT, "%s: %s: not %zu hex bytes", path, name, want);
	return CRETO_OK;
}

static int copy_text(char *dst, size_t cap, const char *v, const char *path, const char *name,
		     creto_err *e)
{
	size_t n = strlen(v);
	if (n >= cap)
		return creto_err_set(e, CRETO_EREJECT, "%s: %s: longer than %zu bytes", path, name,
				     cap - 1);
	memcpy(dst, v, n + 1);
	return CRETO_OK;
}

static int parse_pq_file(const char *path, struct pq_file *pf, creto_err *e)
{
	memset(pf, 0, sizeof(*pf));
	uint8_t *data = NULL;
	size_t len = 0;
	int rc = creto_file_read(path, PQ_FILE_MAX, &data, &len, e);
	if (rc != CRETO_OK)
		return creto_err_ctx(e, "hybrid key file");
	const char *p = (const char *)data, *end = p + len;
	char v[4096];
	if (memchr(data, '\0', len) != NULL || memchr(data, '\r', len) != NULL) {
		rc = creto_err_set(e, CRETO_EREJECT, "%s: NUL or CR in file", path);
		goto out;
	}
	size_t ml = strlen(PQ_MAGIC);
	if (len < ml + 1 || memcmp(p, PQ_MAGIC "\n", ml + 1) != 0) {
		rc = creto_err_set(e, CRETO_EREJECT, "%s: not a %s file", path, PQ_MAGIC);
		goto out;
	}
	p += ml + 1;
#define LINE(name)                                                                                 \
	do {                                                                                       \
		rc = take_line(&p, end, name, v, sizeof(v), path, e);                              \
		if (rc != CRETO_OK)                                                                \
			goto out;                                                                  \
	} while (0)
	LINE("alg");
	pf->alg = creto_alg_from_name(v);
	LINE("pq-alg");
	pf->pq_alg = creto_alg_from_name(v);
	LINE("classical-alg");
	pf->cl_alg = creto_alg_from_name(v);
	int okalg = (pf->alg == CRETO_ALG_HYBRID && pf->pq_alg == CRETO_ALG_MLDSA65 &&
		     pf->cl_alg == CRETO_ALG_ED25519) ||
		    (pf->alg == CRETO_ALG_HYBRID_CNSA2 && pf->pq_alg == CRETO_ALG_MLDSA87 &&
		     pf->cl_alg == CRETO_ALG_ECDSA_P384);
	if (!okalg) {
		rc = creto_err_set(e, CRETO_EREJECT,
				   "%s: alg/pq-alg/classical-alg must be hybrid/ml-dsa-65/ed25519 or hybrid-cnsa2/ml-dsa-87/ecdsa-p384",
				   path);
		goto out;
	}
	LINE("token");
	if ((rc = copy_text(pf->token, sizeof(pf->token), v, path, "token", e)) != CRETO_OK)
		goto out;
	LINE("classical-label");
	if ((rc = copy_text(pf->cl_label, sizeof(pf->cl_label), v, path, "classical-label", e)) !=
	    CRETO_OK)
		goto out;
	LINE("classical-id");
	if ((rc = hex_exact(v, pf->cl_id, sizeof(pf->cl_id), path, "classical-id", e)) != CRETO_OK)
		goto out;
	LINE("wrap-label");
	if ((rc = copy_text(pf->wrap_label, sizeof(pf->wrap_label), v, path, "wrap-label", e)) !=
	    CRETO_OK)
		goto out;
	LINE("wrap-id");
	if ((rc = hex_exact(v, pf->wrap_id, sizeof(pf->wrap_id), path, "wrap-id", e)) != CRETO_OK)
		goto out;
	LINE("wrapped-data-key");
	if ((rc = b64_exact(v, pf->wrapped, PQ_WRAPPED_DK, path, "wrapped-data-key", e)) != CRETO_OK)
		goto out;
	LINE("nonce");
	if ((rc = b64_exact(v, pf->nonce, PQ_NONCE, path, "nonce", e)) != CRETO_OK)
		goto out;
	LINE("public-key");
	pf->pklen = creto_alg_pub_len(pf->pq_alg);
	if ((rc = b64_exact(v, pf->pk, pf->pklen, path, "public-key", e)) != CRETO_OK)
		goto out;
	pf->aadlen = (size_t)(p - (const char *)data);
	LINE("ciphertext");
	if ((rc = b64_exact(v, pf->ct, sizeof(pf->ct), path, "ciphertext", e)) != CRETO_OK)
		goto out;
#undef LINE
	if (p != end) {
		rc = creto_err_set(e, CRETO_EREJECT, "%s: trailing bytes after ciphertext", path);
		goto out;
	}
	pf->aad = malloc(pf->aadlen);
	if (pf->aad == NULL) {
		rc = creto_err_set(e, CRETO_EOP, "out of memory");
		goto out;
	}
	memcpy(pf->aad, data, pf->aadlen);
	rc = CRETO_OK;
out:
	free(data);
	return rc;
}

/* ---- binding and unsealing ---- */

/* The file's metadata binding: made for a cl_alg key on token `token`
 * whose key objects carry cl's label and id.  This is what a .pqkey paired
 * with another key (or another token) fails; it needs no PIN. */
static int pq_check_binding(const struct pq_file *pf, const char *path, creto_alg cl_alg,
			    const char *token, const struct p11_keyname *cl, creto_err *e)
{
	if (pf->cl_alg != cl_alg)
		return creto_err_set(e, CRETO_EREJECT, "%s: made for a %s key, the URI names a %s key",
				     path, creto_alg_name(pf->cl_alg), creto_alg_name(cl_alg));
	if (strcmp(pf->token, token) != 0)
		return creto_err_set(e, CRETO_EREJECT, "%s: made for token '%s', not '%s'", path,
				     pf->token, token);
	if (!cl->has_label || strcmp(pf->cl_label, cl->label) != 0 || !cl->has_id ||
	    cl->idlen != CRETO_HSM_KEYID_BYTES ||
	    memcmp(pf->cl_id, cl->id, CRETO_HSM_KEYID_BYTES) != 0) {
		char hex[2 * CRETO_HSM_KEYID_BYTES + 1];
		creto_hex_encode(hex, pf->cl_id, sizeof(pf->cl_id));
		return creto_err_set(e, CRETO_EREJECT,
				     "%s: belongs to key '%s' (id %s), not to key '%s' on token '%s'",
				     path, pf->cl_label, hex, cl->has_label ? cl->label : "",
				     token);
	}
	return CRETO_OK;
}

/* Unwrap the data key through h (logged in) and open the envelope
 * (creto_hsm_unseal): the seed in seed (wiped by the caller).  This
 * authenticates every header line and the public-key line; that the seed
 * gives that public key is checked where the seed is used. */
static int pq_unseal(creto_hsm *h, const struct pq_file *pf, const char *path,
		     uint8_t seed[PQ_SEED], creto_err *e)
{
	creto_p11_uri wu;
	memset(&wu, 0, sizeof(wu));
	wu.object = (char *)pf->wrap_label;
	wu.id = (uint8_t *)pf->wrap_id;
	wu.idlen = CRETO_HSM_KEYID_BYTES;
	wu.has_id = 1;
	wu.type = CRETO_P11_TYPE_SECRET_KEY;
	creto_hsm_keywrap kw;
	creto_hsm_keywrap_with(&kw, h, &wu);
	creto_hsm_envelope env;
	int rc = creto_hsm_envelope_open(&kw, pf->wrapped, sizeof(pf->wrapped), pf->nonce, &env, e);
	if (rc != CRETO_OK) {
		/* The file named a wrapping key the token lacks: the file is
		 * wrong, not the configuration. */
		if (rc == CRETO_EUSAGE && e != NULL)
			e->code = rc = CRETO_EREJECT;
		return creto_err_ctx(e, "%s: data key", path);
	}
	rc = creto_hsm_unseal(&env, pf->aad, pf->aadlen, pf->ct, PQ_SEED, pf->ct + PQ_SEED, seed, e);
	creto_hsm_envelope_clear(&env);
	if (rc == CRETO_EREJECT)
		return creto_err_set(e, CRETO_EREJECT,
				     "%s: authentication failed (wrong HSM key or tampered file)", path);
	return rc == CRETO_OK ? rc : creto_err_ctx(e, "%s", path);
}

/* ---- the ML-DSA half as a signer ---- */

struct pq_signer {
	creto_hsm *h;
	char *path;
	struct pq_file pf;
};

static void pq_free(void *impl)
{
	struct pq_signer *q = impl;
	if (q == NULL)
		return;
	creto_hsm_close(q->h);
	free(q->pf.aad);
	free(q->path);
	free(q);
}

static int pq_sign(void *impl, const uint8_t *msg, size_t msglen, uint8_t *sig, size_t sigcap,
		   size_t *siglen, creto_err *e)
{
	struct pq_signer *q = impl;
	*siglen = 0;
	uint8_t seed[PQ_SEED];
	int rc = pq_unseal(q->h, &q->pf, q->path, seed, e);
	if (rc == CRETO_OK) {
		rc = creto_mldsa_seed_sign(q->pf.pq_alg, seed, q->pf.pk, q->pf.pklen, msg, msglen, sig,
					   sigcap, siglen, e);
		if (rc == CRETO_EREJECT)
			rc = creto_err_set(e, CRETO_EREJECT,
					   "%s: seed does not give the file's public key", q->path);
		else if (rc != CRETO_OK)
			creto_err_ctx(e, "%s", q->path);
	}
	OPENSSL_cleanse(seed, sizeof(seed));
	return rc;
}

static const creto_signer_ops pq_ops = {"pkcs11+file", pq_sign, pq_free};

static int pq_path_ok(const char *path, creto_err *e)
{
	if (path[0] != '/')
		return creto_err_set(e, CRETO_EUSAGE, "pkcs11 URI: x-creto-pq must be an absolute path");
	return CRETO_OK;
}

int p11_pq_signer_open(const creto_p11_uri *u, const creto_hsm_opts *opts,
		       const struct p11_keyname *cl, creto_alg cl_alg, creto_signer **out,
		       creto_err *e)
{
	*out = NULL;
	const char *path = u->pq_file;
	int rc = pq_path_ok(path, e);
	if (rc != CRETO_OK)
		return rc;
	struct pq_signer *q = calloc(1, sizeof(*q));
	if (q == NULL || (q->path = strdup(path)) == NULL) {
		free(q);
		return creto_err_set(e, CRETO_EOP, "out of memory");
	}
	creto_pubkey *pub = NULL;
	rc = parse_pq_file(path, &q->pf, e);
	if (rc != CRETO_OK)
		goto fail;
	/* A second handle on the same token for the unwrapping: module and
	 * login are shared, sessions are not. */
	rc = creto_hsm_open(u, opts, CRETO_HSM_LOGIN, &q->h, e);
	if (rc != CRETO_OK)
		goto fail;
	rc = pq_check_binding(&q->pf, path, cl_alg, creto_hsm_token_label(q->h), cl, e);
	if (rc != CRETO_OK)
		goto fail;
	rc = creto_pubkey_new(q->pf.pq_alg, q->pf.pk, q->pf.pklen, &pub, e);
	if (rc != CRETO_OK) {
		creto_err_ctx(e, "%s: public-key", path);
		goto fail;
	}
	return creto_signer_new(&pq_ops, q, pub, out, e);
fail:
	pq_free(q);
	return rc;
}

int p11_pq_pubkey(creto_hsm *h, const char *path, creto_alg cl_alg, const struct p11_keyname *cl,
		  uint8_t *pk, size_t cap, size_t *pklen, creto_alg *alg, creto_err *e)
{
	struct pq_file pf;
	uint8_t seed[PQ_SEED], *derived = NULL;
	*pklen = 0;
	*alg = CRETO_ALG_NONE;
	int rc = pq_path_ok(path, e);
	if (rc != CRETO_OK)
		return rc;
	rc = parse_pq_file(path, &pf, e);
	if (rc != CRETO_OK)
		return rc;
	rc = pq_check_binding(&pf, path, cl_alg, creto_hsm_token_label(h), cl, e);
	if (rc != CRETO_OK)
		goto out;
	if (h->flags & CRETO_HSM_LOGIN) {
		/* With the user logged in, the public-key line is authenticated
		 * too: the same unwrap, GCM check and key derivation as a
		 * signature. */
		derived = malloc(CRETO_PUB_MAX);
		if (derived == NULL) {
			rc = creto_err_set(e, CRETO_EOP, "out of memory");
			goto out;
		}
		size_t dl = 0;
		rc = pq_unseal(h, &pf, path, seed, e);
		if (rc == CRETO_OK)
			rc = creto_mldsa_seed_pubkey(pf.pq_alg, seed, derived, CRETO_PUB_MAX, &dl, e);
		if (rc != CRETO_OK)
			goto out;
		if (dl != pf.pklen || CRYPTO_memcmp(derived, pf.pk, dl) != 0) {
			rc = creto_err_set(e, CRETO_EREJECT,
					   "%s: seed does not give the file's public key", path);
			goto out;
		}
	}
	if (cap < pf.pklen) {
		rc = creto_err_set(e, CRETO_EOP, "public key buffer too small");
		goto out;
	}
	memcpy(pk, pf.pk, pf.pklen);
	*pklen = pf.pklen;
	*alg = pf.alg;
out:
	OPENSSL_cleanse(seed, sizeof(seed));
	free(derived);
	free(pf.aad);
	return rc;
}

/* ---- keygen ---- */

static int rollback(creto_hsm *h, const char *label, const uint8_t *id)
{
	creto_p11_uri u;
	memset(&u, 0, sizeof(u));
	u.object = (char *)label;
	u.id = (uint8_t *)id;
	u.idlen = CRETO_HSM_KEYID_BYTES;
	u.has_id = 1;
	size_t n;
	creto_err ignore;
	return creto_hsm_destroy(h, &u, &n, &ignore);
}

static int label_free(creto_hsm *h, const char *label, creto_err *e)
{
	creto_hsm_obj *objs = NULL;
	size_t n = 0;
	int rc = creto_hsm_list(h, &objs, &n, e);
	if (rc != CRETO_OK)
		return rc;
	for (size_t i = 0; i < n; i++)
		if (strcmp(objs[i].label, label) == 0)
			rc = creto_err_set(e, CRETO_EUSAGE, "key '%s' already exists on token '%s'", label,
					   creto_hsm_token_label(h));
	free(objs);
	return rc;
}

static void append(char **p, size_t *left, const char *name, const char *value)
{
	int n = snprintf(*p, *left, "%s: %s\n", name, value);
	if (n < 0 || (size_t)n >= *left) {
		*left = 0;
		return;
	}
	*p += n;
	*left -= (size_t)n;
}

/* The creto key id of the hybrid key: classical public key (read from the
 * token) || ML-DSA public key, as creto_hsm_open_pubkey gives it. */
static int hybrid_id(creto_hsm *h, creto_alg alg, const char *label, const uint8_t *cl_id,
		     const uint8_t *pk, size_t pklen, char out[CRETO_KEYID_HEXLEN + 1], creto_err *e)
{
	creto_p11_uri u;
	memset(&u, 0, sizeof(u));
	u.object = (char *)label;
	u.id = (uint8_t *)cl_id;
	u.idlen = CRETO_HSM_KEYID_BYTES;
	u.has_id = 1;
	uint8_t *raw = malloc(128 + CRETO_PUB_MAX);
	if (raw == NULL)
		return creto_err_set(e, CRETO_EOP, "out of memory");
	size_t len = 0;
	creto_alg cl_alg = CRETO_ALG_NONE;
	creto_pubkey *pub = NULL;
	int rc = p11_pub_raw(h, &u, &cl_alg, raw, 128, &len, NULL, e);
	if (rc == CRETO_OK) {
		memcpy(raw + len, pk, pklen);
		rc = creto_pubkey_new(alg, raw, len + pklen, &pub, e);
	}
	if (rc == CRETO_OK)
		memcpy(out, creto_pubkey_id(pub), CRETO_KEYID_HEXLEN + 1);
	creto_pubkey_free(pub);
	free(raw);
	return rc;
}

int creto_hsm_hybrid_keygen(creto_hsm *h, creto_alg alg, const char *label, const char *path,
			    char key_id[CRETO_KEYID_HEXLEN + 1], creto_err *e)
{
	char kid[CRETO_KEYID_HEXLEN + 1];
	if (alg != CRETO_ALG_HYBRID && alg != CRETO_ALG_HYBRID_CNSA2)
		return creto_err_set(e, CRETO_EUSAGE, "hybrid keygen: alg must be hybrid or hybrid-cnsa2");
	char wrap_label[CRETO_HSM_LABEL_MAX + 1];
	if (strlen(label) == 0 ||
	    (size_t)snprintf(wrap_label, sizeof(wrap_label), "%s.pq-wrap", label) >= sizeof(wrap_label))
		return creto_err_set(e, CRETO_EUSAGE, "hybrid keygen: label must have 1 to %d bytes",
				     CRETO_HSM_LABEL_MAX - 8);
	creto_alg pq_alg = alg == CRETO_ALG_HYBRID ? CRETO_ALG_MLDSA65 : CRETO_ALG_MLDSA87;
	creto_alg cl_alg = alg == CRETO_ALG_HYBRID ? CRETO_ALG_ED25519 : CRETO_ALG_ECDSA_P384;
	creto_hsm_keytype kt = alg == CRETO_ALG_HYBRID ? CRETO_HSM_KT_ED25519 : CRETO_HSM_KT_EC_P384;
	size_t pklen = 0;
	uint8_t cl_id[CRETO_HSM_KEYID_BYTES], wrap_id[CRETO_HSM_KEYID_BYTES];
	uint8_t seed[PQ_SEED], ct[PQ_SEED + PQ_TAG];
	uint8_t *pk = malloc(CRETO_PUB_MAX);
	creto_hsm_envelope env;
	memset(&env, 0, sizeof(env));
	char *text = NULL;
	int made_cl = 0, made_wrap = 0;
	int rc;
	if (pk == NULL) {
		rc = creto_err_set(e, CRETO_EOP, "out of memory");
		goto out;
	}
	/* Refuse before creating anything. */
	if (access(path, F_OK) == 0) {
		rc = creto_err_set(e, CRETO_EUSAGE, "%s: already exists", path);
		goto out;
	}
	if ((rc = label_free(h, label, e)) != CRETO_OK || (rc = label_free(h, wrap_label, e)) != CRETO_OK)
		goto out;
	rc = creto_hsm_keygen(h, kt, label, 0, cl_id, e);
	if (rc != CRETO_OK)
		goto out;
	made_cl = 1;
	rc = creto_hsm_keygen(h, CRETO_HSM_KT_AES256, wrap_label, 0, wrap_id, e);
	if (rc != CRETO_OK)
		goto out;
	made_wrap = 1;
	if (RAND_priv_bytes(seed, sizeof(seed)) != 1) {
		rc = creto_err_openssl(e, "hybrid keygen: randomness");
		goto out;
	}
	rc = creto_mldsa_seed_pubkey(pq_alg, seed, pk, CRETO_PUB_MAX, &pklen, e);
	if (rc != CRETO_OK) {
		creto_err_ctx(e, "hybrid keygen");
		goto out;
	}
	creto_p11_uri wu;
	memset(&wu, 0, sizeof(wu));
	wu.object = wrap_label;
	wu.id = wrap_id;
	wu.idlen = sizeof(wrap_id);
	wu.has_id = 1;
	creto_hsm_keywrap kw;
	creto_hsm_keywrap_with(&kw, h, &wu);
	rc = creto_hsm_envelope_new(&kw, &env, e);
	if (rc != CRETO_OK)
		goto out;
	if (env.wrappedlen != PQ_WRAPPED_DK) {
		rc = creto_err_set(e, CRETO_EOP, "hybrid keygen: wrapped data key has %zu bytes",
				   env.wrappedlen);
		goto out;
	}
	size_t cap = PQ_FILE_MAX;
	text = malloc(cap);
	if (text == NULL) {
		rc = creto_err_set(e, CRETO_EOP, "out of memory");
		goto out;
	}
	char *p = text, hex[2 * CRETO_HSM_KEYID_BYTES + 1], b64[4096];
	size_t left = cap;
	append(&p, &left, PQ_MAGIC "\nalg", creto_alg_name(alg));
	append(&p, &left, "pq-alg", creto_alg_name(pq_alg));
	append(&p, &left, "classical-alg", creto_alg_name(cl_alg));
	append(&p, &left, "token", creto_hsm_token_label(h));
	append(&p, &left, "classical-label", label);
	creto_hex_encode(hex, cl_id, sizeof(cl_id));
	append(&p, &left, "classical-id", hex);
	append(&p, &left, "wrap-label", wrap_label);
	creto_hex_encode(hex, wrap_id, sizeof(wrap_id));
	append(&p, &left, "wrap-id", hex);
	creto_b64_encode(b64, env.wrapped, env.wrappedlen, 0);
	append(&p, &left, "wrapped-data-key", b64);
	creto_b64_encode(b64, env.nonce, sizeof(env.nonce), 0);
	append(&p, &left, "nonce", b64);
	creto_b64_encode(b64, pk, pklen, 0);
	append(&p, &left, "public-key", b64);
	size_t aadlen = (size_t)(p - text);
	if (left == 0) {
		rc = creto_err_set(e, CRETO_EOP, "hybrid keygen: file too large");
		goto out;
	}
	rc = creto_hsm_seal(&env, (const uint8_t *)text, aadlen, seed, PQ_SEED, ct, ct + PQ_SEED, e);
	if (rc != CRETO_OK) {
		creto_err_ctx(e, "hybrid keygen");
		goto out;
	}
	creto_b64_encode(b64, ct, sizeof(ct), 0);
	append(&p, &left, "ciphertext", b64);
	if (left == 0) {
		rc = creto_err_set(e, CRETO_EOP, "hybrid keygen: file too large");
		goto out;
	}
	rc = hybrid_id(h, alg, label, cl_id, pk, pklen, kid, e);
	if (rc != CRETO_OK)
		goto out;
	rc = creto_file_write_excl(path, text, (size_t)(p - text), 0600, e);
	if (rc == CRETO_OK && key_id != NULL)
		memcpy(key_id, kid, sizeof(kid));
out:
	if (rc != CRETO_OK) {
		/* No half-made key: remove what was generated. */
		if (made_cl)
			(void)rollback(h, label, cl_id);
		if (made_wrap)
			(void)rollback(h, wrap_label, wrap_id);
	}
	OPENSSL_cleanse(seed, sizeof(seed));
	creto_hsm_envelope_clear(&env);
	free(pk);
	free(text);
	return rc;
}
