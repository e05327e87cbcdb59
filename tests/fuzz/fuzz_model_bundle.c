/* fuzz_model_bundle.c - the model signature reader (Sigstore bundle v0.3 or
 * bare DSSE envelope) over untrusted bytes, against a fixed P-256 key: it
 * must never crash, and never accept (no seed is signed by that key). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "creto/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#if __has_include("creto/dsse.h")
/* The P-256 base point: a valid public key whose secret (1) nobody uses. */
static const uint8_t G[65] = {
	0x04, 0x6b, 0x17, 0xd1, 0xf2, 0xe1, 0x2c, 0x42, 0x47, 0xf8, 0xbc, 0xe6, 0xe5, 0x63, 0xa4,
	0x40, 0xf2, 0x77, 0x03, 0x7d, 0x81, 0x2d, 0xeb, 0x33, 0xa0, 0xf4, 0xa1, 0x39, 0x45, 0xd8,
	0x98, 0xc2, 0x96, 0x4f, 0xe3, 0x42, 0xe2, 0xfe, 0x1a, 0x7f, 0x9b, 0x8e, 0xe7, 0xeb, 0x4a,
	0x7c, 0x0f, 0x9e, 0x16, 0x2b, 0xce, 0x33, 0x57, 0x6b, 0x31, 0x5e, 0xce, 0xcb, 0xb6, 0x40,
	0x68, 0x37, 0xbf, 0x51, 0xf5};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static creto_pubkey *pk;
	creto_err e;
	if (pk == NULL && creto_pubkey_new(CRETO_ALG_ECDSA_P256, G, sizeof(G), &pk, &e) != CRETO_OK)
		abort();
	uint8_t *st = NULL;
	size_t sl = 0;
	if (creto_model_verify_signature(data, size, pk, &st, &sl, &e) == CRETO_OK)
		abort();
	free(st);
	return 0;
}
#else
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	creto_err e;
	uint8_t *st = NULL;
	size_t sl = 0;
	if (creto_model_verify_signature(data, size, NULL, &st, &sl, &e) == CRETO_OK)
		abort();
	free(st);
	return 0;
}
#endif
