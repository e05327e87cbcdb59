/* fuzz_trust_root.c - the trust root parser (src/update/trust.c): JSON,
 * canonical subset, keys, roles, signatures, self-signature counting. */
#include <stdint.h>
#include <stdlib.h>

#include "creto/update.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	creto_err e;
	creto_trust_root *r = NULL;
	int n = 0;
	if (creto_trust_root_parse_unsigned(data, size, &r, &n, &e) == CRETO_OK) {
		char *j = NULL;
		if (creto_trust_root_describe(r, &j, &e) == CRETO_OK)
			free(j);
		creto_trust_root_free(r);
	}
	if (creto_trust_root_parse(data, size, &r, &e) == CRETO_OK)
		creto_trust_root_free(r);
	return 0;
}
