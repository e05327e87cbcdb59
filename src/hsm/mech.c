/*
 * mech.c - what a module offers: its mechanism list (C_GetMechanismList,
 * C_GetMechanismInfo) and the check that a key's operation is among them.
 *
 * A module may carry a key it cannot use: p11-kit 0.24's remoting forwards
 * only the mechanisms its RPC layer knows, so through p11-kit-client.so an
 * Ed25519 key fails at C_SignInit and an AES key at C_WrapKey with
 * CKR_MECHANISM_INVALID.  creto_hsm_key_check says so when the key is
 * configured, in one line naming the mechanism and the fix.
 */
#include "p11.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
	unsigned long m;
	const char *name;
} mech_names[] = {
	{CKM_RSA_PKCS_KEY_PAIR_GEN, "CKM_RSA_PKCS_KEY_PAIR_GEN"},
	{CKM_RSA_PKCS, "CKM_RSA_PKCS"},
	{CKM_RSA_X_509, "CKM_RSA_X_509"},
	{CKM_RSA_PKCS_OAEP, "CKM_RSA_PKCS_OAEP"},
	{CKM_RSA_PKCS_PSS, "CKM_RSA_PKCS_PSS"},
	{CKM_SHA256_RSA_PKCS, "CKM_SHA256_RSA_PKCS"},
	{CKM_SHA_1, "CKM_SHA_1"},
	{CKM_SHA256, "CKM_SHA256"},
	{CKM_SHA384, "CKM_SHA384"},
	{CKM_SHA512, "CKM_SHA512"},
	{CKM_SHA256_HMAC, "CKM_SHA256_HMAC"},
	{CKM_GENERIC_SECRET_KEY_GEN, "CKM_GENERIC_SECRET_KEY_GEN"},
	{CKM_EC_KEY_PAIR_GEN, "CKM_EC_KEY_PAIR_GEN"},
	{CKM_ECDSA, "CKM_ECDSA"},
	{CKM_ECDSA_SHA256, "CKM_ECDSA_SHA256"},
	{CKM_ECDSA_SHA384, "CKM_ECDSA_SHA384"},
	{CKM_ECDH1_DERIVE, "CKM_ECDH1_DERIVE"},
	{CKM_EC_EDWARDS_KEY_PAIR_GEN, "CKM_EC_EDWARDS_KEY_PAIR_GEN"},
	{CKM_EDDSA, "CKM_EDDSA"},
	{CKM_AES_KEY_GEN, "CKM_AES_KEY_GEN"},
	{CKM_AES_ECB, "CKM_AES_ECB"},
	{CKM_AES_CBC, "CKM_AES_CBC"},
	{CKM_AES_CBC_PAD, "CKM_AES_CBC_PAD"},
	{CKM_AES_GCM, "CKM_AES_GCM"},
	{CKM_AES_KEY_WRAP, "CKM_AES_KEY_WRAP"},
	{CKM_AES_KEY_WRAP_PAD, "CKM_AES_KEY_WRAP_PAD"},
};

const char *creto_hsm_mech_name(unsigned long m, char buf[32])
{
	for (size_t i = 0; i < sizeof(mech_names) / sizeof(mech_names[0]); i++)
		if (mech_names[i].m == m)
			return mech_names[i].name;
	if (m >= CKM_VENDOR_DEFINED)
		snprintf(buf, 32, "CKM_VENDOR+0x%lx", m - (unsigned long)CKM_VENDOR_DEFINED);
	else
		snprintf(buf, 32, "CKM_0x%lx", m);
	return buf;
}

static unsigned mech_flags(ck_flags_t f)
{
	unsigned out = 0;
	if (f & CKF_SIGN) out |= CRETO_HSM_MF_SIGN;
	if (f & CKF_VERIFY) out |= CRETO_HSM_MF_VERIFY;
	if (f & CKF_ENCRYPT) out |= CRETO_HSM_MF_ENCRYPT;
	if (f & CKF_DECRYPT) out |= CRETO_HSM_MF_DECRYPT;
	if (f & CKF_DIGEST) out |= CRETO_HSM_MF_DIGEST;
	if (f & CKF_WRAP) out |= CRETO_HSM_MF_WRAP;
	if (f & CKF_UNWRAP) out |= CRETO_HSM_MF_UNWRAP;
	if (f & CKF_GENERATE) out |= CRETO_HSM_MF_GENERATE;
	if (f & CKF_GENERATE_KEY_PAIR) out |= CRETO_HSM_MF_GENERATE_KEY_PAIR;
	if (f & CKF_DERIVE) out |= CRETO_HSM_MF_DERIVE;
	return out;
}

static int mech_cmp(const void *a, const void *b)
{
	const creto_hsm_mech *x = a, *y = b;
	return x->type < y->type ? -1 : x->type > y->type;
}

int creto_hsm_mechanisms(creto_hsm *h, creto_hsm_mech **out, size_t *nout, creto_err *e)
{
	*out = NULL;
	*nout = 0;
	/* Through the session pool's fork check, so a forked child asks its
	 * own initialised module. */
	ck_session_handle_t s;
	int rc = p11_session_get(h, &s, e);
	if (rc != CRETO_OK)
		return rc;
	p11_session_put(h, s, CKR_OK);
	struct ck_function_list *f = h->mod->f;
	ck_mechanism_type_t *types = NULL;
	creto_hsm_mech *m = NULL;
	unsigned long n = 0;
	for (int tries = 0; tries < 4; tries++) {
		ck_rv_t rv = f->C_GetMechanismList(h->slot, NULL, &n);
		if (rv != CKR_OK)
			return p11_fail(e, rv, "C_GetMechanismList", h);
		if (n > 4096)
			return creto_err_set(e, CRETO_EOP, "token '%s': %lu mechanisms", h->label, n);
		free(types);
		/* Room to spare: through p11-kit 0.24's RPC client, a buffer
		 * of exactly the size the first call reported is written past
		 * (ASan caught it; the client seems to copy more than the count
		 * it reports, which leaves out the mechanisms it cannot
		 * forward).  The returned count says how many are valid. */
		unsigned long cap = n + 512;
		types = calloc(cap, sizeof(*types));
		if (types == NULL)
			return creto_err_set(e, CRETO_EOP, "out of memory");
		n = cap;
		rv = f->C_GetMechanismList(h->slot, types, &n);
		if (rv == CKR_OK && n > cap)
			rv = CKR_BUFFER_TOO_SMALL;
		if (rv == CKR_BUFFER_TOO_SMALL)
			continue;
		if (rv != CKR_OK) {
			free(types);
			return p11_fail(e, rv, "C_GetMechanismList", h);
		}
		break;
	}
	m = calloc(n ? n : 1, sizeof(*m));
	if (m == NULL) {
		free(types);
		return creto_err_set(e, CRETO_EOP, "out of memory");
	}
	for (unsigned long i = 0; i < n; i++) {
		struct ck_mechanism_info mi;
		memset(&mi, 0, sizeof(mi));
		m[i].type = types[i];
		if (f->C_GetMechanismInfo(h->slot, types[i], &mi) == CKR_OK) {
			m[i].min_key = mi.min_key_size;
			m[i].max_key = mi.max_key_size;
			m[i].flags = mech_flags(mi.flags);
		}
	}
	free(types);
	qsort(m, n, sizeof(*m), mech_cmp);
	*out = m;
	*nout = n;
	return CRETO_OK;
}

int creto_hsm_mech_offered(creto_hsm *h, unsigned long type, unsigned flags, int *offered,
			   creto_err *e)
{
	*offered = 0;
	creto_hsm_mech *m = NULL;
	size_t n = 0;
	int rc = creto_hsm_mechanisms(h, &m, &n, e);
	if (rc != CRETO_OK)
		return rc;
	for (size_t i = 0; i < n; i++)
		if (m[i].type == type && (m[i].flags & flags) == flags)
			*offered = 1;
	free(m);
	return CRETO_OK;
}

int creto_hsm_keytype_mech(creto_hsm_keytype kt, unsigned long *type, unsigned *flags)
{
	switch (kt) {
	case CRETO_HSM_KT_EC_P256:
	case CRETO_HSM_KT_EC_P384:
		*type = CKM_ECDSA;
		*flags = CRETO_HSM_MF_SIGN;
		return 1;
	case CRETO_HSM_KT_ED25519:
		*type = CKM_EDDSA;
		*flags = CRETO_HSM_MF_SIGN;
		return 1;
	case CRETO_HSM_KT_AES256:
		*type = CKM_AES_KEY_WRAP_PAD;
		*flags = CRETO_HSM_MF_WRAP | CRETO_HSM_MF_UNWRAP;
		return 1;
	default:
		return 0;
	}
}

int creto_hsm_key_check(creto_hsm *h, const creto_hsm_key *k, creto_err *e)
{
	unsigned long type = 0;
	unsigned flags = 0;
	creto_hsm_keytype kt = creto_hsm_key_type(k);
	if (!creto_hsm_keytype_mech(kt, &type, &flags))
		return creto_err_set(e, CRETO_EUSAGE, "token '%s': key '%s' is of a type creto does not use",
				     h->label, creto_hsm_key_label(k));
	int offered = 0;
	int rc = creto_hsm_mech_offered(h, type, flags, &offered, e);
	if (rc != CRETO_OK || offered)
		return rc;
	char b[32];
	const char *mn = creto_hsm_mech_name(type, b);
	const char *op = flags & CRETO_HSM_MF_SIGN ? "sign" : "wrap/unwrap";
	const char *fix = kt == CRETO_HSM_KT_AES256
				  ? "keep this key on a local token (p11-kit remoting carries no AES key wrap)"
				  : "use an ec-p256 key for a remote HSM (p11-kit remoting carries ECDSA, not EdDSA)";
	return creto_err_set(e, CRETO_EUSAGE,
			     "token '%s' (module %s): key '%s' (%s) needs %s to %s, which the module does not offer: %s",
			     h->label, h->mod->path, creto_hsm_key_label(k), creto_hsm_keytype_name(kt), mn,
			     op, fix);
}
