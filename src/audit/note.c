/*
 * note.c - checkpoints: the C2SP tlog-checkpoint body (origin, tree size,
 * base64 root) signed as a C2SP signed-note (docs/audit.md "Checkpoints").
 *
 * Signature lines ("— <origin> base64(key id || signature)"):
 *   ed25519     type 0x01, the standard note signature: RFC 8032 over the
 *               note text; key id = SHA-256(name || 0x0A || 0x01 || pk)[:4]
 *   ecdsa-p256  type 0x02: ASN.1 DER ECDSA over SHA-256 of the note text;
 *               key id = SHA-256(DER SubjectPublicKeyInfo)[:4]
 *   any other   type 0xff followed by "creto-sig/<alg name>": the creto
 *               signature (docs/signatures.md) of the note text with context
 *               "creto-audit-checkpoint-v1"; key id =
 *               SHA-256(name || 0x0A || 0xff || "creto-sig/<alg>" || raw pk)[:4]
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "audit/audit_int.h"
#include "util/enc.h"
#include "util/escape.h"

#define SIG_LINES_MAX 16
#define CP_CTX "creto-audit-checkpoint-v1"
static const char emdash[] = "\xe2\x80\x94 ";

int aud_origin_check(const char *origin, creto_err *e)
{
	size_t n = origin ? strlen(origin) : 0;
	if (n == 0 || n > AUD_ORIGIN_MAX)
		return creto_err_set(e, CRETO_EUSAGE, "audit origin: must be 1..%d bytes",
				     AUD_ORIGIN_MAX);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)origin[i];
		if (c <= 0x20 || c >= 0x7f || c == '+')
			return creto_err_set(e, CRETO_EUSAGE,
					     "audit origin: byte %zu: only printable ASCII without space "
					     "or '+'",
					     i);
	}
	return CRETO_OK;
}

static int sha256(const void *a, size_t an, uint8_t out[32])
{
	unsigned dl;
	return EVP_Digest(a, an, out, &dl, EVP_sha256(), NULL) == 1 ? 0 : -1;
}

/* The signature type of pub and its key id for key name `name`. */
typedef struct sigtype {
	int raw;        /* sign with an empty context (standard note types) */
	int der;        /* ECDSA DER signature (type 0x02) */
	uint8_t id[4];
} sigtype;

static int sig_type(const creto_pubkey *pub, const char *name, sigtype *t, creto_err *e)
{
	creto_alg alg = creto_pubkey_alg(pub);
	size_t pklen;
	const uint8_t *pk = creto_pubkey_raw(pub, &pklen);
	memset(t, 0, sizeof(*t));
	uint8_t d[32];
	if (alg == CRETO_ALG_ECDSA_P256) {
		char *pem = NULL;
		int rc = creto_pubkey_to_pem(pub, &pem, e);
		if (rc)
			return rc;
		/* body of the PEM: the base64 of the DER SPKI */
		char b64[512];
		size_t bn = 0;
		const char *p = strchr(pem, '\n');
		for (p = p ? p + 1 : pem; *p != '\0' && *p != '-'; p++)
			if (*p != '\n' && bn + 1 < sizeof(b64))
				b64[bn++] = *p;
		free(pem);
		uint8_t der[256];
		size_t derlen;
		if (creto_b64_decode(der, sizeof(der), &derlen, b64, bn, 0) != 0 ||
		    sha256(der, derlen, d) != 0)
			return creto_err_set(e, CRETO_EOP, "checkpoint: cannot encode the P-256 key");
		t->raw = 1;
		t->der = 1;
		memcpy(t->id, d, 4);
		return 0;
	}
	size_t nn = strlen(name);
	const char *an = creto_alg_name(alg);
	if (an == NULL)
		return creto_err_set(e, CRETO_EUSAGE, "checkpoint: unknown key algorithm");
	char tag[64];
	size_t tn = 0;
	if (alg == CRETO_ALG_ED25519) {
		tag[tn++] = 0x01;
		t->raw = 1;
	} else {
		tag[tn++] = (char)0xff;
		tn += (size_t)snprintf(tag + tn, sizeof(tag) - tn, "creto-sig/%s", an);
	}
	uint8_t *buf = malloc(nn + 1 + tn + pklen);
	if (buf == NULL)
		return creto_err_set(e, CRETO_EOP, "out of memory");
	memcpy(buf, name, nn);
	buf[nn] = 0x0a;
	memcpy(buf + nn + 1, tag, tn);
	memcpy(buf + nn + 1 + tn, pk, pklen);
	int ok = sha256(buf, nn + 1 + tn + pklen, d) == 0;
	free(buf);
	if (!ok)
		return creto_err_set(e, CRETO_EOP, "checkpoint: SHA-256 failed");
	memcpy(t->id, d, 4);
	return 0;
}

static size_t body_format(char *out, size_t cap, const char *origin, uint64_t size,
			  const uint8_t root[AUD_HASH])
{
	char r64[64];
	creto_b64_encode(r64, root, AUD_HASH, 0);
	int n = snprintf(out, cap, "%s\n%llu\n%s\n", origin, (unsigned long long)size, r64);
	return n < 0 ? 0 : (size_t)n;
}

int aud_note_sign(creto_signer *s, const char *origin, uint64_t size, const uint8_t root[AUD_HASH],
		  char **out, size_t *outlen, creto_err *e)
{
	*out = NULL;
	*outlen = 0;
	int rc = aud_origin_check(origin, e);
	if (rc)
		return rc;
	char body[AUD_ORIGIN_MAX + 128];
	size_t bl = body_format(body, sizeof(body), origin, size, root);
	sigtype t;
	rc = sig_type(creto_signer_pubkey(s), origin, &t, e);
	if (rc)
		return rc;
	uint8_t *sig = NULL, *der = NULL;
	size_t sl = 0;
	rc = creto_signer_sign(s, t.raw ? NULL : (const uint8_t *)CP_CTX, t.raw ? 0 : strlen(CP_CTX),
			       (const uint8_t *)body, bl, &sig, &sl, e);
	if (rc)
		return creto_err_ctx(e, "checkpoint: sign");
	const uint8_t *sp = sig;
	if (t.der) {
		size_t dl;
		rc = creto_ecdsa_raw_to_der(CRETO_ALG_ECDSA_P256, sig, sl, &der, &dl, e);
		if (rc) {
			free(sig);
			return rc;
		}
		sp = der;
		sl = dl;
	}
	uint8_t *blob = malloc(4 + sl);
	size_t b64n = creto_b64_enclen(4 + sl, 0);
	size_t cap = bl + 1 + sizeof(emdash) + strlen(origin) + 1 + b64n + 2;
	char *text = malloc(cap);
	if (blob == NULL || text == NULL) {
		free(sig), free(der), free(blob), free(text);
		return creto_err_set(e, CRETO_EOP, "out of memory");
	}
	memcpy(blob, t.id, 4);
	memcpy(blob + 4, sp, sl);
	free(sig);
	free(der);
	size_t n = 0;
	memcpy(text, body, bl);
	n = bl;
	text[n++] = '\n';
	n += (size_t)snprintf(text + n, cap - n, "%s%s ", emdash, origin);
	creto_b64_encode(text + n, blob, 4 + sl, 0);
	n += b64n;
	text[n++] = '\n';
	text[n] = '\0';
	free(blob);
	*out = text;
	*outlen = n;
	return CRETO_OK;
}

/* RFC 3629 UTF-8 without control bytes other than LF. */
static int note_chars_ok(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	for (size_t i = 0; i < n;) {
		unsigned c = p[i];
		if (c < 0x80) {
			if ((c < 0x20 && c != '\n') || c == 0x7f)
				return 0;
			i++;
			continue;
		}
		uint32_t cp;
		size_t need = creto_utf8_len(p + i, n - i, &cp);
		if (need == 0)
			return 0;
		i += need;
	}
	return 1;
}

typedef struct sigline {
	const char *name;
	size_t namelen;
	const char *b64;
	size_t b64len;
} sigline;

static int parse_all(const char *text, size_t len, aud_checkpoint *cp, sigline *sl, size_t *nsl,
		     creto_err *e)
{
	memset(cp, 0, sizeof(*cp));
	*nsl = 0;
	if (len > AUD_NOTE_MAX)
		return creto_err_set(e, CRETO_EREJECT, "checkpoint: %zu bytes, over %d", len,
				     AUD_NOTE_MAX);
	if (len == 0 || text[len - 1] != '\n' || !note_chars_ok(text, len))
		return creto_err_set(e, CRETO_EREJECT,
				     "checkpoint: not UTF-8 text of lines ending in newline");
	/* the text ends at the last blank line */
	size_t sep = 0;
	int found = 0;
	for (size_t i = len - 1; i > 0; i--)
		if (text[i] == '\n' && text[i - 1] == '\n') {
			sep = i; /* text[0..sep) is the note text (ends with \n) */
			found = 1;
			break;
		}
	if (!found)
		return creto_err_set(e, CRETO_EREJECT, "checkpoint: no blank line before signatures");
	cp->body_len = sep;
	/* body: exactly three lines */
	const char *p = text, *end = text + sep;
	const char *l1 = memchr(p, '\n', (size_t)(end - p));
	if (l1 == NULL || l1 == p)
		return creto_err_set(e, CRETO_EREJECT, "checkpoint: empty origin line");
	size_t on = (size_t)(l1 - p);
	if (on > AUD_ORIGIN_MAX)
		return creto_err_set(e, CRETO_EREJECT, "checkpoint: origin over %d bytes",
				     AUD_ORIGIN_MAX);
	memcpy(cp->origin, p, on);
	cp->origin[on] = '\0';
	p = l1 + 1;
	const char *l2 = memchr(p, '\n', (size_t)(end - p));
	if (l2 == NULL || l2 == p || l2 - p > 20 || (p[0] == '0' && l2 - p > 1))
		return creto_err_set(e, CRETO_EREJECT, "checkpoint: bad tree size line");
	uint64_t size = 0;
	for (const char *q = p; q < l2; q++) {
		if (*q < '0' || *q > '9')
			return creto_err_set(e, CRETO_EREJECT, "checkpoint: bad tree size line");
		unsigned dgt = (unsigned)(*q - '0');
		if (size > (UINT64_MAX - dgt) / 10)
			return creto_err_set(e, CRETO_EREJECT, "checkpoint: tree size out of range");
		size = size * 10 + dgt;
	}
	cp->size = size;
	p = l2 + 1;
	const char *l3 = memchr(p, '\n', (size_t)(end - p));
	size_t rl;
	if (l3 == NULL || creto_b64_decode(cp->root, AUD_HASH, &rl, p, (size_t)(l3 - p), 0) != 0 ||
	    rl != AUD_HASH)
		return creto_err_set(e, CRETO_EREJECT, "checkpoint: bad root hash line");
	if (l3 + 1 != end)
		return creto_err_set(e, CRETO_EREJECT, "checkpoint: extension lines are not accepted");
	/* signature lines */
	p = text + sep + 1;
	end = text + len;
	if (p >= end)
		return creto_err_set(e, CRETO_EREJECT, "checkpoint: no signature line");
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t ll = (size_t)(nl - p);
		if (ll < 4 || memcmp(p, emdash, 4) != 0)
			return creto_err_set(e, CRETO_EREJECT,
					     "checkpoint: signature line %zu does not start with an em dash",
					     *nsl + 1);
		const char *name = p + 4;
		const char *sp = memchr(name, ' ', (size_t)(nl - name));
		if (sp == NULL || sp == name)
			return creto_err_set(e, CRETO_EREJECT, "checkpoint: signature line %zu: no key name",
					     *nsl + 1);
		for (const char *q = name; q < sp; q++)
			if (*q == '+')
				return creto_err_set(e, CRETO_EREJECT,
						     "checkpoint: signature line %zu: '+' in key name",
						     *nsl + 1);
		const char *b = sp + 1;
		if (memchr(b, ' ', (size_t)(nl - b)) != NULL || nl - b < 8)
			return creto_err_set(e, CRETO_EREJECT,
					     "checkpoint: signature line %zu: bad signature field", *nsl + 1);
		if (*nsl >= SIG_LINES_MAX)
			return creto_err_set(e, CRETO_EREJECT, "checkpoint: over %d signature lines",
					     SIG_LINES_MAX);
		sl[*nsl].name = name;
		sl[*nsl].namelen = (size_t)(sp - name);
		sl[*nsl].b64 = b;
		sl[*nsl].b64len = (size_t)(nl - b);
		(*nsl)++;
		p = nl + 1;
	}
	return CRETO_OK;
}

int aud_note_parse(const char *text, size_t len, aud_checkpoint *out, creto_err *e)
{
	sigline sl[SIG_LINES_MAX];
	size_t n;
	int rc = parse_all(text, len, out, sl, &n, e);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		uint8_t tmp[CRETO_SIG_MAX + 4];
		size_t tl;
		if (sl[i].b64len > creto_b64_enclen(sizeof(tmp), 0) ||
		    creto_b64_decode(tmp, sizeof(tmp), &tl, sl[i].b64, sl[i].b64len, 0) != 0 || tl < 5)
			rc = creto_err_set(e, CRETO_EREJECT,
					   "checkpoint: signature line %zu: bad base64", i + 1);
	}
	return rc;
}

int aud_note_verify(const char *text, size_t len, const creto_pubkey *pub, aud_checkpoint *out,
		    creto_err *e)
{
	int rc = aud_note_parse(text, len, out, e);
	if (rc)
		return rc;
	sigline sl[SIG_LINES_MAX];
	size_t n;
	rc = parse_all(text, len, out, sl, &n, e);
	if (rc)
		return rc;
	sigtype t;
	rc = sig_type(pub, out->origin, &t, e);
	if (rc)
		return rc;
	size_t on = strlen(out->origin);
	for (size_t i = 0; i < n; i++) {
		if (sl[i].namelen != on || memcmp(sl[i].name, out->origin, on) != 0)
			continue;
		uint8_t *blob = malloc(CRETO_SIG_MAX + 4);
		size_t bl;
		if (blob == NULL)
			return creto_err_set(e, CRETO_EOP, "out of memory");
		if (creto_b64_decode(blob, CRETO_SIG_MAX + 4, &bl, sl[i].b64, sl[i].b64len, 0) != 0 ||
		    bl < 5 || memcmp(blob, t.id, 4) != 0) {
			free(blob);
			continue; /* another key of the same name */
		}
		uint8_t raw[CRETO_SIG_MAX];
		const uint8_t *sig = blob + 4;
		size_t siglen = bl - 4;
		if (t.der) {
			if (creto_ecdsa_der_to_raw(CRETO_ALG_ECDSA_P256, sig, siglen, raw, sizeof(raw),
						   &siglen, e) != 0) {
				free(blob);
				return creto_err_set(e, CRETO_EREJECT,
						     "checkpoint at size %llu: malformed ECDSA signature",
						     (unsigned long long)out->size);
			}
			sig = raw;
		}
		rc = creto_pubkey_verify(pub, t.raw ? NULL : (const uint8_t *)CP_CTX,
					 t.raw ? 0 : strlen(CP_CTX), (const uint8_t *)text, out->body_len,
					 sig, siglen, e);
		free(blob);
		if (rc)
			return creto_err_ctx(e, "checkpoint at size %llu: key %s",
					     (unsigned long long)out->size, creto_pubkey_id(pub));
		return CRETO_OK;
	}
	return creto_err_set(e, CRETO_EREJECT,
			     "checkpoint at size %llu: no signature by key %s under name '%s'",
			     (unsigned long long)out->size, creto_pubkey_id(pub), out->origin);
}
