/*
 * keys.c - opens a key reference (file path or pkcs11: URI) into a signer
 * or public key (include/creto/keys.h).  The one place that decides between
 * the key-file store and the HSM.
 */
#include "creto/keys.h"

#include <string.h>

#include "creto/hsm.h"

int creto_keys_is_pkcs11(const char *ref)
{
	return strncmp(ref, "pkcs11:", 7) == 0;
}

/* The HSM's options from the key options. */
static const creto_hsm_opts *hsm_opts(const creto_keys_opts *opts, creto_hsm_opts *buf)
{
	if (opts == NULL)
		return NULL;
	memset(buf, 0, sizeof(*buf));
	buf->module_path = opts->module_path;
	buf->pin_file = opts->pin_file;
	buf->events = opts->events.fn != NULL ? &opts->events : NULL; /* copied by the HSM */
	return buf;
}

int creto_keys_open_signer(const char *ref, const creto_keys_opts *opts, creto_signer **out,
			   creto_err *e)
{
	*out = NULL;
	creto_hsm_opts ho;
	if (creto_keys_is_pkcs11(ref))
		return creto_hsm_open_signer(ref, hsm_opts(opts, &ho), out, e);
	return creto_secretkey_load(ref, out, e);
}

int creto_keys_open_pubkey(const char *ref, const creto_keys_opts *opts, creto_pubkey **out,
			   creto_err *e)
{
	*out = NULL;
	creto_hsm_opts ho;
	if (creto_keys_is_pkcs11(ref))
		return creto_hsm_open_pubkey(ref, hsm_opts(opts, &ho), out, e);
	/* A public key file or the public half of a secret key file; the sig
	 * module tells them apart by their tag, so errors name the right one. */
	return creto_key_load_public(ref, out, e);
}
