/*
 * fuzz_audit_export.c - `creto audit verify --export FILE` on untrusted
 * export files (src/audit/check.c): header, entry and checkpoint lines,
 * the frontier of an archive.  The input is written to a private temporary
 * file and verified against a fixed Ed25519 key.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "creto/audit.h"
#include "creto/sig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static creto_signer *ed;
static char path[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	creto_err e;
	if (ed == NULL) {
		/* the key of the seed corpus: seed bytes 0x07 */
		uint8_t seed[32];
		memset(seed, 7, sizeof(seed));
		if (creto_signer_from_secret(CRETO_ALG_ED25519, seed, 32, &ed, &e) != 0)
			return 0;
		snprintf(path, sizeof(path), "/tmp/fuzz_audit_export.%ld", (long)getpid());
	}
	FILE *f = fopen(path, "wb");
	if (f == NULL)
		return 0;
	if (size)
		fwrite(data, 1, size, f);
	fclose(f);
	creto_audit_report rep;
	if (creto_audit_verify(path, creto_signer_pubkey(ed), NULL, 0, &rep, &e) == 0 && rep.size > 1000000)
		abort(); /* no input this small holds that many entries */
	unlink(path);
	return 0;
}
