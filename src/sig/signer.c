/*
 * signer.c - the generic signer: a key store's primitive sign() behind the
 * context and hybrid encodings, so that a file key and an HSM key are the
 * same thing to every caller.
 */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sig/sig_internal.h"

int creto_signer_new(const creto_signer_ops *ops, void *impl, creto_pubkey *pub, creto_signer **out,
		     creto_err *e)
{
	*out = NULL;
	if (ops == NULL || ops->sign == NULL || pub == NULL || creto_alg_is_hybrid(pub->alg)) {
		if (ops != NULL && ops->free != NULL)
			ops->free(impl);
		creto_pubkey_free(pub);
		return creto_err_set(e, CRETO_EUSAGE, "signer: needs sign() and a non-hybrid public key");
	}
	creto_signer *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		if (ops->free != NULL)
			ops->free(impl);
		creto_pubkey_free(pub);
		return creto_err_set(e, CRETO_EOP, "out of memory");
	}
	s->ops = ops;
	s->impl = impl;
	s->pub = pub;
	snprintf(s->kind, sizeof(s->kind), "%s", ops->kind ? ops->kind : "unknown");
	*out = s;
	return CRETO_OK;
}

int creto_signer_hybrid_new(creto_signer *classical, creto_signer *pq, creto_signer **out,
			    creto_err *e)
{
	creto_signer *s = NULL;
	uint8_t *raw = NULL;
	int rc = CRETO_EUSAGE;
	creto_alg alg = CRETO_ALG_NONE;
	*out = NULL;
	if (classical == NULL || pq == NULL || classical->ops == NULL || pq->ops == NULL) {
		rc = creto_err_set(e, CRETO_EUSAGE, "hybrid signer: needs two non-hybrid signers");
		goto fail;
	}
	creto_alg ca = classical->pub->alg, qa = pq->pub->alg;
	if (ca == CRETO_ALG_ED25519 && qa == CRETO_ALG_MLDSA65)
		alg = CRETO_ALG_HYBRID;
	else if (ca == CRETO_ALG_ECDSA_P384 && qa == CRETO_ALG_MLDSA87)
		alg = CRETO_ALG_HYBRID_CNSA2;
	else {
		rc = creto_err_set(e, CRETO_EUSAGE, "hybrid signer: %s + %s is not a hybrid algorithm",
				   creto_alg_name(ca), creto_alg_name(qa));
		goto fail;
	}
	size_t cl = classical->pub->rawlen, ql = pq->pub->rawlen;
	raw = malloc(cl + ql);
	s = calloc(1, sizeof(*s));
	if (raw == NULL || s == NULL) {
		rc = creto_err_set(e, CRETO_EOP, "out of memory");
		goto fail;
	}
	memcpy(raw, classical->pub->raw, cl);
	memcpy(raw + cl, pq->pub->raw, ql);
	rc = creto_pubkey_new(alg, raw, cl + ql, &s->pub, e);
	if (rc != CRETO_OK)
		goto fail;
	free(raw);
	s->cl = classical;
	s->pq = pq;
	snprintf(s->kind, sizeof(s->kind), "hybrid(%.48s)", classical->kind);
	*out = s;
	return CRETO_OK;
fail:
	free(raw);
	free(s);
	creto_signer_free(classical);
	creto_signer_free(pq);
	return rc;
}

/* One primitive signature by a non-hybrid signer over an encoded message,
 * into sig (exactly the algorithm's length). */
static int sign_primitive(creto_signer *s, const uint8_t *m, size_t mlen, uint8_t *sig,
			  creto_err *e)
{
	size_t want = creto_alg_sig_len(s->pub->alg), got = 0;
	int rc = s->ops->sign(s->impl, m, mlen, sig, want, &got, e);
	if (rc != CRETO_OK)
		return creto_err_ctx(e, "sign with key %s", s->pub->id);
	if (got != want)
		return creto_err_set(e, CRETO_EOP, "sign with key %s: %s signature of %zu bytes, expected %zu",
				     s->pub->id, creto_alg_name(s->pub->alg), got, want);
	return CRETO_OK;
}

int creto_signer_sign(creto_signer *s, const uint8_t *ctx, size_t ctxlen, const uint8_t *msg,
		      size_t msglen, uint8_t **sig, size_t *siglen, creto_err *e)
{
	creto_alg alg = s->pub->alg;
	size_t len = creto_alg_sig_len(alg);
	uint8_t *m = NULL, *mq = NULL, *out = NULL;
	const uint8_t *mp = NULL;
	size_t mlen = 0, mqlen = 0;
	int rc;
	*sig = NULL;
	*siglen = 0;
	if (ctxlen > CRETO_SIG_CTX_MAX)
		return creto_err_set(e, CRETO_EUSAGE, "context of %zu bytes, at most %d allowed", ctxlen,
				     CRETO_SIG_CTX_MAX);
	out = malloc(len);
	if (out == NULL)
		return creto_err_set(e, CRETO_EOP, "out of memory");
	if (creto_alg_is_classical(alg)) {
		rc = creto_sig_classical_msg(alg, ctx, ctxlen, msg, msglen, &mp, &mlen, &m, e);
		if (rc == CRETO_OK)
			rc = sign_primitive(s, mp, mlen, out, e);
	} else if (creto_alg_is_mldsa(alg)) {
		rc = creto_sig_mldsa_mprime(ctx, ctxlen, msg, msglen, &m, &mlen, e);
		if (rc == CRETO_OK)
			rc = sign_primitive(s, m, mlen, out, e);
	} else {
		size_t cls = creto_alg_sig_len(s->cl->pub->alg);
		rc = creto_sig_hybrid_msg(s->pub, ctx, ctxlen, msg, msglen, &m, &mlen, e);
		if (rc == CRETO_OK)
			rc = sign_primitive(s->cl, m, mlen, out, e);
		if (rc == CRETO_OK)
			rc = creto_sig_mldsa_mprime((const uint8_t *)CRETO_SIG_HYBRID_LABEL,
						    strlen(CRETO_SIG_HYBRID_LABEL), m, mlen, &mq, &mqlen, e);
		if (rc == CRETO_OK)
			rc = sign_primitive(s->pq, mq, mqlen, out + cls, e);
	}
	free(m);
	free(mq);
	if (rc != CRETO_OK) {
		free(out);
		return rc;
	}
	*sig = out;
	*siglen = len;
	return CRETO_OK;
}

const creto_pubkey *creto_signer_pubkey(const creto_signer *s)
{
	return s->pub;
}

const char *creto_signer_kind(const creto_signer *s)
{
	return s->kind;
}

void creto_signer_free(creto_signer *s)
{
	if (s == NULL)
		return;
	if (s->ops != NULL && s->ops->free != NULL)
		s->ops->free(s->impl);
	creto_signer_free(s->cl);
	creto_signer_free(s->pq);
	creto_pubkey_free(s->pub);
	OPENSSL_cleanse(s, sizeof(*s));
	free(s);
}
