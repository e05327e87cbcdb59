/*
 * alg.c - the table of signature algorithms: names, sizes, hybrid halves.
 * One row per creto_alg; everything else in src/sig/ asks here.
 */
#include <string.h>

#include "sig/sig_internal.h"

struct alg_row {
	creto_alg alg;
	const char *name;
	size_t pub_len, sig_len, secret_len;
	creto_alg cl, pq; /* hybrid halves */
};

static const struct alg_row algs[] = {
	{CRETO_ALG_ED25519, "ed25519", 32, 64, 32, CRETO_ALG_NONE, CRETO_ALG_NONE},
	{CRETO_ALG_ECDSA_P256, "ecdsa-p256", 65, 64, 32, CRETO_ALG_NONE, CRETO_ALG_NONE},
	{CRETO_ALG_ECDSA_P384, "ecdsa-p384", 97, 96, 48, CRETO_ALG_NONE, CRETO_ALG_NONE},
	{CRETO_ALG_MLDSA44, "ml-dsa-44", 1312, 2420, 32, CRETO_ALG_NONE, CRETO_ALG_NONE},
	{CRETO_ALG_MLDSA65, "ml-dsa-65", 1952, 3309, 32, CRETO_ALG_NONE, CRETO_ALG_NONE},
	{CRETO_ALG_MLDSA87, "ml-dsa-87", 2592, 4627, 32, CRETO_ALG_NONE, CRETO_ALG_NONE},
	{CRETO_ALG_HYBRID, "hybrid", 32 + 1952, 64 + 3309, 32 + 32, CRETO_ALG_ED25519,
	 CRETO_ALG_MLDSA65},
	{CRETO_ALG_HYBRID_CNSA2, "hybrid-cnsa2", 97 + 2592, 96 + 4627, 48 + 32, CRETO_ALG_ECDSA_P384,
	 CRETO_ALG_MLDSA87},
};

static const struct alg_row *row(creto_alg alg)
{
	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
		if (algs[i].alg == alg)
			return &algs[i];
	return NULL;
}

const char *creto_alg_name(creto_alg alg)
{
	const struct alg_row *r = row(alg);
	return r ? r->name : NULL;
}

creto_alg creto_alg_from_name(const char *name)
{
	if (name == NULL)
		return CRETO_ALG_NONE;
	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
		if (strcmp(algs[i].name, name) == 0)
			return algs[i].alg;
	return CRETO_ALG_NONE;
}

size_t creto_alg_pub_len(creto_alg alg)
{
	const struct alg_row *r = row(alg);
	return r ? r->pub_len : 0;
}

size_t creto_alg_sig_len(creto_alg alg)
{
	const struct alg_row *r = row(alg);
	return r ? r->sig_len : 0;
}

size_t creto_alg_secret_len(creto_alg alg)
{
	const struct alg_row *r = row(alg);
	return r ? r->secret_len : 0;
}

int creto_alg_is_hybrid(creto_alg alg)
{
	return alg == CRETO_ALG_HYBRID || alg == CRETO_ALG_HYBRID_CNSA2;
}

creto_alg creto_alg_hybrid_classical(creto_alg alg)
{
	const struct alg_row *r = row(alg);
	return r ? r->cl : CRETO_ALG_NONE;
}

creto_alg creto_alg_hybrid_pq(creto_alg alg)
{
	const struct alg_row *r = row(alg);
	return r ? r->pq : CRETO_ALG_NONE;
}

int creto_alg_is_classical(creto_alg alg)
{
	return alg == CRETO_ALG_ED25519 || alg == CRETO_ALG_ECDSA_P256 || alg == CRETO_ALG_ECDSA_P384;
}

int creto_alg_is_mldsa(creto_alg alg)
{
	return alg == CRETO_ALG_MLDSA44 || alg == CRETO_ALG_MLDSA65 || alg == CRETO_ALG_MLDSA87;
}

creto_mldsa_ps creto_alg_mldsa_ps(creto_alg alg)
{
	switch (alg) {
	case CRETO_ALG_MLDSA44:
		return CRETO_MLDSA_44;
	case CRETO_ALG_MLDSA65:
		return CRETO_MLDSA_65;
	default:
		return CRETO_MLDSA_87;
	}
}

const char *creto_alg_curve(creto_alg alg)
{
	return alg == CRETO_ALG_ECDSA_P256 ? "P-256" : alg == CRETO_ALG_ECDSA_P384 ? "P-384" : NULL;
}

const EVP_MD *creto_alg_md(creto_alg alg)
{
	return alg == CRETO_ALG_ECDSA_P256 ? EVP_sha256() : alg == CRETO_ALG_ECDSA_P384 ? EVP_sha384() : NULL;
}

size_t creto_alg_ec_width(creto_alg alg)
{
	return alg == CRETO_ALG_ECDSA_P256 ? 32 : alg == CRETO_ALG_ECDSA_P384 ? 48 : 0;
}
