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

/* Wrap the secret key bytes key[0..len) under the AES key named by uri
 * (CKM_AES_KEY_WRAP_PAD, RFC 5649): the bytes are imported as a session
 * CKK_GENERIC_SECRET/CKK_AES object and wrapped.  *wrapped is malloc'ed. */
int creto_hsm_wrap(const char *uri, const creto_keys_opts *opts, const uint8_t *key, size_t len,
		   uint8_t **wrapped, size_t *wrappedlen, creto_err *e) CRETO_WUR;
/* Inverse of creto_hsm_wrap: unwrap into an extractable session object and
 * return its value in key (keycap bytes); a wrong key or tampered blob is
 * CRETO_EREJECT.  The caller wipes key after use. */
int creto_hsm_unwrap(const char *uri, const creto_keys_opts *opts, const uint8_t *wrapped,
		     size_t wrappedlen, uint8_t *key, size_t keycap, size_t *keylen,
		     creto_err *e) CRETO_WUR;

#endif
