/*
 * fuzz_jws.c - the JWS compact parser and the JWT claim parser/checks
 * (src/nhi/jws.c) on arbitrary bytes.  Input: the token itself; when it
 * parses, its payload goes through the claim parser and checks.  A second
 * pass feeds the raw input to the claim parser as a payload.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "creto/nhi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	creto_jws j;
	creto_err e;
	creto_jwt_claims c;
	if (creto_jws_parse((const char *)data, size, &j, &e) == CRETO_OK) {
		if (j.signing_input_len >= size || j.siglen != 64 || j.kid[0] == '\0')
			__builtin_trap();
		if (creto_jwt_claims_parse(j.payload, j.payload_len, &c, &e) == CRETO_OK)
			if (creto_jwt_claims_check(&c, "creto-airgap", "creto-gateway", 1900000000, NULL, &e) == CRETO_OK && c.exp <= c.iat)
			__builtin_trap();
		creto_jws_clear(&j);
	}
	if (size <= CRETO_JWS_MAX && creto_jwt_claims_parse(data, size, &c, &e) == CRETO_OK) {
		if (!creto_nhi_id_valid(c.sub) || c.naud == 0 || c.naud > CRETO_JWS_AUD_MAX)
			__builtin_trap();
		if (creto_jwt_claims_check(&c, "creto-airgap", "creto-gateway", 1900000000, NULL, &e) == CRETO_OK && c.exp <= c.iat)
			__builtin_trap();
	}
	return 0;
}
