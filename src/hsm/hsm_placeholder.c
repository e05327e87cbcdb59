/* hsm_placeholder.c - until src/hsm lands; deleted by the HSM owner. */
#include "creto/hsm.h"

#include <stdint.h>

int creto_hsm_open_signer(const char *uri, const creto_keys_opts *opts, creto_signer **out,
			  creto_err *e)
{
	(void)uri;
	(void)opts;
	*out = NULL;
	return creto_err_set(e, CRETO_EUSAGE, "pkcs11: keys are not supported yet");
}

int creto_hsm_open_pubkey(const char *uri, const creto_keys_opts *opts, creto_pubkey **out,
			  creto_err *e)
{
	(void)uri;
	(void)opts;
	*out = NULL;
	return creto_err_set(e, CRETO_EUSAGE, "pkcs11: keys are not supported yet");
}

int creto_hsm_wrap(const char *uri, const creto_keys_opts *opts, const uint8_t *key, size_t len,
		   uint8_t **wrapped, size_t *wrappedlen, creto_err *e)
{
	(void)uri;
	(void)opts;
	(void)key;
	(void)len;
	*wrapped = NULL;
	*wrappedlen = 0;
	return creto_err_set(e, CRETO_EUSAGE, "pkcs11: keys are not supported yet");
}

int creto_hsm_unwrap(const char *uri, const creto_keys_opts *opts, const uint8_t *wrapped,
		     size_t wrappedlen, uint8_t *key, size_t keycap, size_t *keylen, creto_err *e)
{
	(void)uri;
	(void)opts;
	(void)wrapped;
	(void)wrappedlen;
	(void)key;
	(void)keycap;
	*keylen = 0;
	return creto_err_set(e, CRETO_EUSAGE, "pkcs11: keys are not supported yet");
}
