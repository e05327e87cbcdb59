/*
 * signer.c - an HSM key behind the signer interface of creto/sig.h, and
 * the public key of an HSM key pair.  src/keys/ calls these for every
 * `pkcs11:` reference, so any command that takes --key takes a URI.  A URI
 * with x-creto-pq=FILE names a hybrid key (hybrid.c, docs/keys.md §4).
 */
#include "p11.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


struct hsm_signer {
	creto_hsm *h;
	creto_hsm_key *k;
};

static int hs_sign(void *impl, const uint8_t *msg, size_t msglen, uint8_t *sig, size_t sigcap,
		   size_t *siglen, creto_err *e)
{
	struct hsm_signer *hs = impl;
	return creto_hsm_key_sign(hs->k, msg, msglen, sig, sigcap, siglen, e);
}

static void hs_free(void *impl)
{
	struct hsm_signer *hs = impl;
	if (hs == NULL)
		return;
	creto_hsm_key_free(hs->k);
	creto_hsm_close(hs->h);
	free(hs);
}

static const creto_signer_ops hsm_signer_ops = {"pkcs11", hs_sign, hs_free};

/* A PIN is needed to see private objects; public ones are readable
 * without, so log in only when one was given (a pin-value attribute asks
 * for a login, which creto_hsm_open then refuses). */
static unsigned pub_flags(const creto_p11_uri *u, const creto_hsm_opts *opts)
{
	if (u->pin_value != NULL || u->pin_source != NULL ||
	    (opts != NULL && opts->pin_file != NULL))
		return CRETO_HSM_LOGIN;
	return 0;
}

/* Raw public key of the classical key (the whole key without pq_file);
 * with pq_file, the hybrid key (classical || ML-DSA), the file checked
 * against the classical key found (and unsealed when h is logged in). */
static int pub_from(creto_hsm *h, const creto_p11_uri *u, creto_pubkey **out, creto_err *e)
{
	uint8_t *raw = malloc(128 + CRETO_PUB_MAX);
	if (raw == NULL)
		return creto_err_set(e, CRETO_EOP, "out of memory");
	size_t len = 0;
	creto_alg alg = CRETO_ALG_NONE;
	struct p11_keyname cl;
	int rc = p11_pub_raw(h, u, &alg, raw, 128, &len, u->pq_file != NULL ? &cl : NULL, e);
	if (rc == CRETO_OK && u->pq_file != NULL) {
		size_t pql = 0;
		creto_alg halg = CRETO_ALG_NONE;
		rc = p11_pq_pubkey(h, u->pq_file, alg, &cl, raw + len, CRETO_PUB_MAX, &pql,
				   &halg, e);
		len += pql;
		alg = halg;
	}
	if (rc == CRETO_OK) {
		rc = creto_pubkey_new(alg, raw, len, out, e);
		if (rc != CRETO_OK)
			creto_err_ctx(e, "token '%s': public key", creto_hsm_token_label(h));
	}
	free(raw);
	return rc;
}

static creto_alg alg_of(creto_hsm_keytype kt)
{
	switch (kt) {
	case CRETO_HSM_KT_ED25519: return CRETO_ALG_ED25519;
	case CRETO_HSM_KT_EC_P256: return CRETO_ALG_ECDSA_P256;
	case CRETO_HSM_KT_EC_P384: return CRETO_ALG_ECDSA_P384;
	default: return CRETO_ALG_NONE;
	}
}

/* A signer that fails over between endpoints (failover.c). */
static int ha_sign(void *impl, const uint8_t *msg, size_t msglen, uint8_t *sig, size_t sigcap,
		   size_t *siglen, creto_err *e)
{
	return creto_hsm_ha_sign(impl, msg, msglen, sig, sigcap, siglen, e);
}

static void ha_free(void *impl)
{
	creto_hsm_ha_close(impl);
}

static const creto_signer_ops ha_signer_ops = {"pkcs11", ha_sign, ha_free};

static int open_ha_signer(const char *uri, const creto_hsm_opts *opts, creto_signer **out,
			  creto_err *e)
{
	creto_hsm_ha *g = NULL;
	int rc = creto_hsm_ha_open(uri, opts, &g, e);
	if (rc != CRETO_OK)
		return rc;
	creto_alg alg;
	size_t len;
	const uint8_t *raw = creto_hsm_ha_pub(g, &alg, &len);
	creto_pubkey *pub = NULL;
	rc = creto_pubkey_new(alg, raw, len, &pub, e);
	if (rc != CRETO_OK) {
		creto_hsm_ha_close(g);
		return rc;
	}
	return creto_signer_new(&ha_signer_ops, g, pub, out, e);
}

int creto_hsm_open_signer(const char *uri, const creto_hsm_opts *opts, creto_signer **out,
			  creto_err *e)
{
	*out = NULL;
	if (opts != NULL && opts->nendpoints > 0)
		return open_ha_signer(uri, opts, out, e);
	creto_p11_uri *u = NULL;
	creto_pubkey *pub = NULL;
	creto_signer *cl = NULL, *pq = NULL;
	struct hsm_signer *hs = calloc(1, sizeof(*hs));
	if (hs == NULL)
		return creto_err_set(e, CRETO_EOP, "out of memory");
	int rc = creto_hsm_open_uri(uri, opts, CRETO_HSM_LOGIN, &hs->h, &u, e);
	if (rc != CRETO_OK)
		goto fail;
	rc = creto_hsm_key_find(hs->h, u, CRETO_P11_TYPE_PRIVATE, &hs->k, e);
	if (rc != CRETO_OK)
		goto fail;
	creto_alg alg = alg_of(creto_hsm_key_type(hs->k));
	if (alg == CRETO_ALG_NONE) {
		rc = creto_err_set(e, CRETO_EUSAGE,
				   "token '%s': key '%s' is not an Ed25519, P-256 or P-384 private key",
				   creto_hsm_token_label(hs->h), creto_hsm_key_label(hs->k));
		goto fail;
	}
	/* The classical signer's public key is the classical one even for a
	 * hybrid URI. */
	char *pqf = u->pq_file;
	u->pq_file = NULL;
	rc = pub_from(hs->h, u, &pub, e);
	u->pq_file = pqf;
	if (rc != CRETO_OK)
		goto fail;
	/* The private key's own label and id: the .pqkey must name them. */
	struct p11_keyname cln;
	memset(&cln, 0, sizeof(cln));
	snprintf(cln.label, sizeof(cln.label), "%s", creto_hsm_key_label(hs->k));
	cln.has_label = 1;
	const uint8_t *kid = creto_hsm_key_id(hs->k, &cln.idlen);
	if (cln.idlen > sizeof(cln.id))
		cln.idlen = 0;
	memcpy(cln.id, kid, cln.idlen);
	cln.has_id = cln.idlen > 0;
	/* creto_signer_new owns hs and pub from here, even on failure. */
	rc = creto_signer_new(&hsm_signer_ops, hs, pub, &cl, e);
	hs = NULL;
	if (rc != CRETO_OK || u->pq_file == NULL) {
		creto_p11_uri_free(u);
		*out = cl;
		return rc;
	}
	rc = p11_pq_signer_open(u, opts, &cln, alg, &pq, e);
	creto_p11_uri_free(u);
	if (rc != CRETO_OK) {
		creto_signer_free(cl);
		return rc;
	}
	/* Both signers owned by the hybrid from here, even on failure. */
	return creto_signer_hybrid_new(cl, pq, out, e);
fail:
	creto_p11_uri_free(u);
	hs_free(hs);
	return rc;
}

int creto_hsm_open_pubkey(const char *uri, const creto_hsm_opts *opts, creto_pubkey **out,
			  creto_err *e)
{
	*out = NULL;
	creto_p11_uri *u = NULL;
	int rc = creto_p11_uri_parse(uri, &u, e);
	if (rc != CRETO_OK)
		return rc;
	creto_hsm *h = NULL;
	if (opts != NULL && opts->nendpoints > 0) {
		/* The first endpoint that answers (no deadline: a one-shot read). */
		creto_hsm_opts o = *opts;
		o.nendpoints = 0;
		for (size_t i = 0; i < opts->nendpoints; i++) {
			o.module_path = opts->endpoints[i].module;
			creto_hsm_close(h);
			h = NULL;
			rc = creto_hsm_open(u, &o, pub_flags(u, &o), &h, e);
			if (rc == CRETO_OK)
				rc = pub_from(h, u, out, e);
			if (rc == CRETO_OK)
				break;
		}
	} else {
		rc = creto_hsm_open(u, opts, pub_flags(u, opts), &h, e);
		if (rc == CRETO_OK)
			rc = pub_from(h, u, out, e);
	}
	creto_hsm_close(h);
	creto_p11_uri_free(u);
	return rc;
}
