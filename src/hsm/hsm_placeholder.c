/* hsm_placeholder.c - until src/hsm lands; deleted by the HSM owner. */
#include "creto/hsm.h"

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
