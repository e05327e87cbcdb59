/*
 * fuzz_pkcs11_uri.c - the RFC 7512 parser on arbitrary bytes.  Whatever it
 * accepts must survive a format/parse round trip of its key attributes,
 * and every refusal must carry a message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "creto/hsm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > CRETO_HSM_URI_MAX + 64)
		return 0;
	char *s = malloc(size + 1);
	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	creto_p11_uri *u = NULL;
	creto_err e;
	creto_err_clear(&e);
	int rc = creto_p11_uri_parse(s, &u, &e);
	if (rc != CRETO_OK) {
		if (u != NULL || e.msg[0] == '\0')
			abort();
	} else {
		char *f = creto_p11_uri_format(u->token, u->object, u->id, u->idlen, u->type);
		/* Formatting encodes every reserved byte, so it may outgrow
		 * the parser's length bound: only shorter ones must round-trip. */
		if (f != NULL && strlen(f) <= CRETO_HSM_URI_MAX) {
			creto_p11_uri *v = NULL;
			if (creto_p11_uri_parse(f, &v, &e) != CRETO_OK)
				abort();
			if ((u->token == NULL) != (v->token == NULL) ||
			    (u->token != NULL && strcmp(u->token, v->token) != 0) ||
			    (u->object == NULL) != (v->object == NULL) ||
			    (u->object != NULL && strcmp(u->object, v->object) != 0) ||
			    (u->idlen > 0 && (v->idlen != u->idlen || memcmp(u->id, v->id, u->idlen) != 0)) ||
			    u->type != v->type)
				abort();
			creto_p11_uri_free(v);
		}
		free(f);
		creto_p11_uri_free(u);
	}
	free(s);
	return 0;
}
