/*
 * keys.c - opens a key reference (file path or pkcs11: URI) into a signer
 * or public key (include/creto/keys.h).  The one place that decides between
 * the key-file store and the HSM.
 */
#include "creto/keys.h"

#include <string.h>

#include "creto/hsm.h"
#include "util/file.h"

int creto_keys_is_pkcs11(const char *ref)
{
	return strncmp(ref, "pkcs11:", 7) == 0;
}

int creto_keys_open_signer(const char *ref, const creto_keys_opts *opts, creto_signer **out,
			   creto_err *e)
{
	*out = NULL;
	if (creto_keys_is_pkcs11(ref))
		return creto_hsm_open_signer(ref, opts, out, e);
	return creto_secretkey_load(ref, out, e);
}

int creto_keys_open_pubkey(const char *ref, const creto_keys_opts *opts, creto_pubkey **out,
			   creto_err *e)
{
	*out = NULL;
	if (creto_keys_is_pkcs11(ref))
		return creto_hsm_open_pubkey(ref, opts, out, e);
	/* A public key file; failing that, the public half of a secret key file. */
	creto_err pe;
	creto_err_clear(&pe);
	int rc = creto_pubkey_load(ref, out, &pe);
	if (rc == CRETO_OK)
		return CRETO_OK;
	creto_signer *s = NULL;
	creto_err se;
	creto_err_clear(&se);
	if (creto_secretkey_load(ref, &s, &se) != CRETO_OK) {
		if (e != NULL)
			*e = pe;
		return rc;
	}
	rc = creto_pubkey_dup(creto_signer_pubkey(s), out, e);
	creto_signer_free(s);
	return rc;
}
