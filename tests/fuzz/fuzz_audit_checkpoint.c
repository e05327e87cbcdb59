/*
 * fuzz_audit_checkpoint.c - the signed-note checkpoint parser and verifier
 * (src/audit/note.c) on untrusted text: kept checkpoints, checkpoint rows
 * of a log, checkpoint lines of an export.  A parsed note is verified
 * against fixed keys of two types (Ed25519 note type 0x01, and a creto
 * 0xff type), which must never accept a note they did not sign.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static creto_signer *ed, *ec;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	creto_err e;
	if (ed == NULL) {
		uint8_t seed[48];
		memset(seed, 7, sizeof(seed));
		if (creto_signer_from_secret(CRETO_ALG_ED25519, seed, 32, &ed, &e) != 0)
			ed = NULL;
		if (creto_signer_from_secret(CRETO_ALG_ECDSA_P384, seed, 48, &ec, &e) != 0)
			ec = NULL;
	}
	char *text = malloc(size ? size : 1);
	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	aud_checkpoint cp;
	if (aud_note_parse(text, size, &cp, &e) == CRETO_OK) {
		if (cp.body_len >= size || strlen(cp.origin) == 0)
			abort();
		if (ed != NULL && aud_note_verify(text, size, creto_signer_pubkey(ed), &cp, &e) == 0) {
			/* only a note whose text ed signed: re-sign must give the same line */
			char *again = NULL;
			size_t al;
			if (aud_note_sign(ed, cp.origin, cp.size, cp.root, &again, &al, &e) == 0 &&
			    (al > size || memcmp(again, text, cp.body_len) != 0))
				abort();
			free(again);
		}
		if (ec != NULL)
			if (aud_note_verify(text, size, creto_signer_pubkey(ec), &cp, &e) == 0)
			abort(); /* nothing in the corpus is signed by this key */
	}
	free(text);
	return 0;
}
