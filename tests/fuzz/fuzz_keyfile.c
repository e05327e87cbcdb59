/*
 * fuzz_keyfile.c - every parser of untrusted signature material on the same
 * input: public key files, secret key files, signature files, DSSE
 * envelopes and SubjectPublicKeyInfo (PEM/DER) keys.  Whatever parses is then used (verify, format) so that the
 * objects a parser returns are exercised too.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "creto/dsse.h"
#include "creto/sig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* The parsers take text with a length; give them an unterminated copy
	 * so that ASan catches any read past the end. */
	char *text = malloc(size ? size : 1);
	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	creto_err e;
	static const uint8_t msg[] = "fuzz";

	creto_pubkey *pk = NULL;
	if (creto_pubkey_parse(text, size, &pk, &e) == CRETO_OK) {
		char *out = NULL;
		uint8_t sig[CRETO_SIG_MAX] = {0};
		size_t sl = creto_alg_sig_len(creto_pubkey_alg(pk));
		int vr = creto_pubkey_verify(pk, NULL, 0, msg, sizeof(msg), sig, sl, &e);
		(void)vr;
		if (creto_pubkey_format(pk, NULL, &out, &e) == CRETO_OK)
			free(out);
		creto_pubkey_free(pk);
	}

	creto_signer *s = NULL;
	if (creto_secretkey_parse(text, size, &s, &e) == CRETO_OK) {
		uint8_t *sig = NULL;
		size_t sl = 0;
		if (creto_signer_sign(s, NULL, 0, msg, sizeof(msg), &sig, &sl, &e) == CRETO_OK) {
			if (creto_pubkey_verify(creto_signer_pubkey(s), NULL, 0, msg, sizeof(msg), sig, sl, &e) !=
			    CRETO_OK)
				abort(); /* a parsed key must verify its own signature */
			free(sig);
		}
		creto_signer_free(s);
	}

	creto_sigfile sf;
	if (creto_sigfile_parse(text, size, &sf, &e) == CRETO_OK) {
		if (sf.siglen != creto_alg_sig_len(sf.alg))
			abort();
		creto_sigfile_clear(&sf);
	}

	if (creto_pubkey_from_spki(data, size, &pk, &e) == CRETO_OK) {
		char *pem = NULL;
		if (creto_pubkey_to_pem(pk, &pem, &e) == CRETO_OK)
			free(pem);
		creto_pubkey_free(pk);
	}

	creto_dsse *env = NULL;
	if (creto_dsse_parse(text, size, &env, &e) == CRETO_OK) {
		static creto_signer *k = NULL;
		if (k == NULL) {
			uint8_t seed[32] = {1};
			if (creto_signer_from_secret(CRETO_ALG_ED25519, seed, sizeof(seed), &k, &e) != CRETO_OK)
				abort();
		}
		int vr = creto_dsse_verify(env, creto_signer_pubkey(k), NULL, NULL, NULL, &e);
		(void)vr;
		char *out = NULL;
		if (creto_dsse_format(env, &out, &e) == CRETO_OK)
			free(out);
		creto_dsse_free(env);
	}
	free(text);
	return 0;
}
