/*
 * fuzz_mldsa.c - libFuzzer target for ML-DSA verification of hostile
 * input: public key, signature (z encoding, hint encoding) and context.
 * Input: byte 0 selects the parameter set (mod 3), byte 1 the context
 * length; then pk, signature, context and message.  Verification must
 * return 0 or -1 and never touch memory out of bounds.  Seeds: valid
 * (pk, sig, ctx, msg) tuples for each set, plus a truncated one.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "sig/mldsa/mldsa.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const creto_mldsa_ps sets[3] = {CRETO_MLDSA_44, CRETO_MLDSA_65, CRETO_MLDSA_87};
	if (size < 2)
		return 0;
	creto_mldsa_ps ps = sets[data[0] % 3];
	size_t ctxlen = data[1];
	size_t pklen = creto_mldsa_pk_bytes(ps), siglen = creto_mldsa_sig_bytes(ps);
	data += 2;
	size -= 2;
	if (size < pklen + siglen + ctxlen)
		return 0;
	const uint8_t *pk = data, *sig = data + pklen, *ctx = sig + siglen;
	const uint8_t *msg = ctx + ctxlen;
	size_t msglen = size - pklen - siglen - ctxlen;
	int rc = creto_mldsa_verify(ps, pk, ctx, ctxlen, msg, msglen, sig, siglen);
	if (rc != 0 && rc != -1)
		__builtin_trap();
	if (msglen >= CRETO_MLDSA_MUBYTES) {
		rc = creto_mldsa_verify_mu(ps, pk, msg, sig, siglen);
		if (rc != 0 && rc != -1)
			__builtin_trap();
	}
	/* a one-byte-short signature is always refused */
	if (creto_mldsa_verify(ps, pk, ctx, ctxlen, msg, msglen, sig, siglen - 1) != -1)
		__builtin_trap();
	return 0;
}
