/*
 * fuzz_audit_entry.c - the strict parser of canonical audit entries
 * (src/audit/entry.c), as `creto audit verify` runs it on untrusted logs
 * and exports.  Whatever it accepts must be valid JSON with sorted keys
 * (jansson agrees), and, for an entry without fields whose strings decode
 * to NUL-free bytes, encoding the parsed event again gives the same bytes.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit_int.h"
#include "util/escape.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* span -> raw bytes (JSON unescape, then escape.h unescape); NULL when the
 * raw bytes hold a NUL (not representable as a C string event). */
static char *raw_of(const aud_span *s)
{
	if (s->p == NULL)
		return NULL;
	char *t = malloc(s->n + 1), *r = malloc(s->n + 1);
	size_t rn = 0;
	aud_span_text(s, t, s->n + 1);
	if (creto_unescape(r, s->n + 1, t, &rn) != 0 || memchr(r, 0, rn) != NULL)
		abort(); /* accepted text must unescape; NUL checked below */
	r[rn] = '\0';
	free(t);
	return r;
}

static int has_nul(const aud_span *s)
{
	if (s->p == NULL)
		return 0;
	return s->n >= 6 && memmem(s->p, s->n, "\\\\x00", 5) != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size ? size : 1);
	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	aud_entry pe;
	creto_err e;
	if (aud_entry_parse(text, size, &pe, &e) == CRETO_OK) {
		json_error_t je;
		json_t *o = json_loadb(text, size, JSON_REJECT_DUPLICATES, &je);
		if (o == NULL || !json_is_object(o))
			abort();
		const char *prev = NULL, *k;
		json_t *v;
		json_object_foreach(o, k, v)
		{
			(void)v;
			if (prev != NULL && strcmp(prev, k) >= 0)
				abort();
			prev = k;
		}
		json_decref(o);
		const aud_span *ss[6] = {&pe.component, &pe.event,  &pe.outcome,
					 &pe.subject,   &pe.reason, &pe.actor};
		int nul = 0;
		for (int i = 0; i < 6; i++)
			nul |= has_nul(ss[i]);
		if (pe.fields.p == NULL && !nul) {
			char *r[6];
			for (int i = 0; i < 6; i++)
				r[i] = raw_of(ss[i]);
			creto_event ev = {r[0], r[1], r[2], r[3], r[4], r[5], NULL, 0};
			static char buf[CRETO_AUDIT_ENTRY_MAX];
			size_t len;
			if (aud_entry_encode(&ev, pe.seq, pe.time_us, buf, &len, &e) != CRETO_OK ||
			    len != size || memcmp(buf, text, size) != 0)
				abort();
			for (int i = 0; i < 6; i++)
				free(r[i]);
		}
	}
	free(text);
	return 0;
}
