/*
 * fuzz_ecdsa_der.c - the strict DER reader of ECDSA signatures
 * (creto_ecdsa_der_to_raw, src/sig/pubkey.c) on untrusted bytes: audit
 * checkpoint signatures from outside, signatures from an HSM.  Checked
 * against OpenSSL: an input is accepted exactly when OpenSSL's d2i takes all
 * of it, re-encodes it to the same bytes and both values fit the curve's
 * width; an accepted input re-encodes (creto_ecdsa_raw_to_der) to itself.
 */
#include <openssl/ec.h>
#include <openssl/err.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "creto/sig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int openssl_accepts(const uint8_t *der, size_t len, int width)
{
	const unsigned char *p = der;
	ECDSA_SIG *s = d2i_ECDSA_SIG(NULL, &p, (long)len);
	int ok = 0;
	if (s != NULL && (size_t)(p - der) == len) {
		unsigned char *re = NULL;
		int n = i2d_ECDSA_SIG(s, &re);
		const BIGNUM *r, *sv;
		ECDSA_SIG_get0(s, &r, &sv);
		ok = n > 0 && (size_t)n == len && memcmp(re, der, len) == 0 && BN_num_bytes(r) <= width &&
		     BN_num_bytes(sv) <= width;
		OPENSSL_free(re);
	}
	ECDSA_SIG_free(s);
	ERR_clear_error();
	return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct {
		creto_alg alg;
		int width;
	} curves[] = {{CRETO_ALG_ECDSA_P256, 32}, {CRETO_ALG_ECDSA_P384, 48}};
	if (size > 4096)
		return 0;
	for (size_t c = 0; c < 2; c++) {
		uint8_t raw[96];
		size_t rl = 0;
		creto_err e;
		int ours = creto_ecdsa_der_to_raw(curves[c].alg, data, size, raw, sizeof(raw), &rl, &e) == CRETO_OK;
		/* creto also caps the length at 2 * width + 16 before parsing */
		int ref = size <= (size_t)(2 * curves[c].width + 16) && openssl_accepts(data, size, curves[c].width);
		if (ours != ref)
			abort();
		if (!ours)
			continue;
		if (rl != (size_t)(2 * curves[c].width))
			abort();
		uint8_t *der = NULL;
		size_t dl = 0;
		if (creto_ecdsa_raw_to_der(curves[c].alg, raw, rl, &der, &dl, &e) != CRETO_OK || dl != size ||
		    memcmp(der, data, size) != 0)
			abort();
		free(der);
	}
	return 0;
}
