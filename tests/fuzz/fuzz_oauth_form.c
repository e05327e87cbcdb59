/*
 * fuzz_oauth_form.c - the token endpoint's application/x-www-form-urlencoded
 * parser (src/nhi/oauth.c, creto_oauth_form_parse) on arbitrary bytes.
 * Invariants when it accepts: 1..CRETO_OAUTH_PARAMS_MAX fields, names
 * non-empty and unique, every decoded byte printable ASCII, and decoding
 * never grows (each field fits in the bytes it came from).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "creto/nhi_oauth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > CRETO_OAUTH_FORM_MAX + 16)
		return 0;
	char *buf = malloc(size + 1);
	if (buf == NULL)
		return 0;
	creto_oauth_form f;
	creto_err e;
	if (creto_oauth_form_parse((const char *)data, size, buf, &f, &e) == CRETO_OK) {
		size_t total = 0;
		if (f.n == 0 || f.n > CRETO_OAUTH_PARAMS_MAX || size > CRETO_OAUTH_FORM_MAX)
			__builtin_trap();
		for (size_t i = 0; i < f.n; i++) {
			size_t nl = strlen(f.name[i]), vl = strlen(f.value[i]);
			if (nl == 0)
				__builtin_trap();
			total += nl + vl + 2; /* '=' and '&' (or the end) in the input */
			for (const char *p = f.name[i]; *p; p++)
				if (*p < 0x20 || *p > 0x7e)
					__builtin_trap();
			for (const char *p = f.value[i]; *p; p++)
				if (*p < 0x20 || *p > 0x7e)
					__builtin_trap();
			for (size_t k = 0; k < i; k++)
				if (strcmp(f.name[k], f.name[i]) == 0)
					__builtin_trap();
		}
		if (total > size + 1)
			__builtin_trap();
	}
	free(buf);
	return 0;
}
