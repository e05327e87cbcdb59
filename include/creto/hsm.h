/*
 * creto/hsm.h - PKCS#11 HSM provider (SoftHSM2 by default).
 * Initial contract used by src/keys/; the HSM owner extends this header.
 */
#ifndef CRETO_HSM_H
#define CRETO_HSM_H

#include "creto/error.h"
#include "creto/keys.h"
#include "creto/sig.h"

/* Open a signer for the key named by a pkcs11: URI. */
int creto_hsm_open_signer(const char *uri, const creto_keys_opts *opts, creto_signer **out,
			  creto_err *e) CRETO_WUR;
/* Read the public key of the key named by a pkcs11: URI. */
int creto_hsm_open_pubkey(const char *uri, const creto_keys_opts *opts, creto_pubkey **out,
			  creto_err *e) CRETO_WUR;

#endif
