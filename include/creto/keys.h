/*
 * creto/keys.h - open a key reference into a signer or a public key.
 *
 * A key reference is either a path (a secret key file NAME.key or a public
 * key file NAME.pub, docs/signatures.md) or an RFC 7512 `pkcs11:` URI naming
 * a key in an HSM (docs/keys.md).  Callers never care which.
 */
#ifndef CRETO_KEYS_H
#define CRETO_KEYS_H

#include "creto/error.h"
#include "creto/event.h"
#include "creto/sig.h"

/* Where HSM access comes from when the URI does not say (module-path=,
 * pin-source=): command-line options or the config file.  Any field NULL. */
typedef struct creto_keys_opts {
	const char *module_path; /* PKCS#11 module (.so) */
	const char *pin_file;    /* file holding the user PIN */
	creto_event_sink events; /* where the HSM reports security events (a failed login); may be empty */
} creto_keys_opts;

/* 1 when ref is a pkcs11: URI. */
int creto_keys_is_pkcs11(const char *ref);

/* Open a signer for ref (secret key file or pkcs11: URI). opts may be NULL. */
int creto_keys_open_signer(const char *ref, const creto_keys_opts *opts, creto_signer **out,
			   creto_err *e) CRETO_WUR;

/* Open the public key of ref: a public key file, a secret key file's
 * public half, or the public key of a pkcs11: URI. opts may be NULL. */
int creto_keys_open_pubkey(const char *ref, const creto_keys_opts *opts, creto_pubkey **out,
			   creto_err *e) CRETO_WUR;

#endif
