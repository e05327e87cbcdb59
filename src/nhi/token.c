/*
 * token.c - issuing compact JWS tokens (docs/nhi.md "Token profile") with
 * any creto signer: a key file or a key in the HSM.
 */
#include "creto/nhi.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/enc.h"
#include "util/file.h"

/* base64url of a JSON object (compact, members in insertion order). */
static char *b64_json(json_t *o)
{
	char *txt = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (txt == NULL)
		return NULL;
	size_t n = strlen(txt);
	char *b = malloc(creto_b64_enclen(n, 1) + 1);
	if (b != NULL)
		creto_b64_encode(b, (const uint8_t *)txt, n, 1);
	free(txt);
	return b;
}

int creto_nhi_token_issue(creto_signer *s, const creto_nhi_token_params *p, char **out,
			  creto_err *e)
{
	*out = NULL;
	const creto_pubkey *pk = creto_signer_pubkey(s);
	creto_jws_alg alg;
	switch (creto_pubkey_alg(pk)) {
	case CRETO_ALG_ED25519: alg = CRETO_JWS_EDDSA; break;
	case CRETO_ALG_ECDSA_P256: alg = CRETO_JWS_ES256; break;
	default:
		return creto_err_set(e, CRETO_EUSAGE,
				     "token issuer key %s is %s; tokens need ed25519 or ecdsa-p256",
				     creto_pubkey_id(pk), creto_alg_name(creto_pubkey_alg(pk)));
	}
	if (p->iss == NULL || p->sub == NULL || p->aud == NULL || p->exp <= p->iat)
		return creto_err_set(e, CRETO_EUSAGE, "token: iss, sub, aud and exp > iat required");
	if (!creto_nhi_id_valid(p->sub))
		return creto_err_set(e, CRETO_EUSAGE, "token: sub '%.64s' is not an agent id", p->sub);
	char jti[32];
	if (p->jti == NULL) {
		uint8_t r[16];
		if (RAND_bytes(r, sizeof(r)) != 1)
			return creto_err_openssl(e, "token jti");
		creto_b64_encode(jti, r, sizeof(r), 1);
	}
	int rc = CRETO_EOP;
	char *h64 = NULL, *p64 = NULL, *buf = NULL;
	uint8_t *sig = NULL;
	size_t siglen = 0;
	json_t *h = json_pack("{s:s, s:s, s:s}", "alg", creto_jws_alg_name(alg), "typ", "JWT", "kid",
			      creto_pubkey_id(pk));
	json_t *c = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:s}", "iss", p->iss, "sub", p->sub,
			      "aud", p->aud, "iat", (json_int_t)p->iat, "nbf", (json_int_t)p->nbf,
			      "exp", (json_int_t)p->exp, "jti", p->jti ? p->jti : jti);
	if (h == NULL || c == NULL ||
	    (p->scope != NULL && json_object_set_new(c, "scope", json_string(p->scope)) != 0)) {
		rc = creto_err_set(e, CRETO_EOP, "token: cannot build JSON (bad UTF-8 or no memory)");
		goto out;
	}
	h64 = b64_json(h);
	p64 = b64_json(c);
	if (h64 == NULL || p64 == NULL) {
		rc = creto_err_set(e, CRETO_EOP, "out of memory");
		goto out;
	}
	size_t hl = strlen(h64), pl = strlen(p64);
	size_t cap = hl + 1 + pl + 1 + creto_b64_enclen(64, 1) + 1;
	if (cap > CRETO_JWS_MAX) {
		rc = creto_err_set(e, CRETO_EUSAGE, "token: would be over the %d-byte cap",
				   CRETO_JWS_MAX);
		goto out;
	}
	buf = malloc(cap);
	if (buf == NULL) {
		rc = creto_err_set(e, CRETO_EOP, "out of memory");
		goto out;
	}
	memcpy(buf, h64, hl);
	buf[hl] = '.';
	memcpy(buf + hl + 1, p64, pl);
	/* Empty context: the plain RFC 8032 / ECDSA-SHA256 r||s signature JWS wants. */
	rc = creto_signer_sign(s, NULL, 0, (const uint8_t *)buf, hl + 1 + pl, &sig, &siglen, e);
	if (rc != CRETO_OK) {
		creto_err_ctx(e, "token sign (key %s)", creto_pubkey_id(pk));
		goto out;
	}
	if (siglen != 64) {
		rc = creto_err_set(e, CRETO_EOP, "token sign: %zu-byte signature, want 64", siglen);
		goto out;
	}
	buf[hl + 1 + pl] = '.';
	creto_b64_encode(buf + hl + 1 + pl + 1, sig, siglen, 1);
	*out = buf;
	buf = NULL;
	rc = CRETO_OK;
out:
	free(buf);
	if (sig != NULL) /* with the claims, the signature is the bearer credential */
		OPENSSL_cleanse(sig, siglen);
	free(sig);
	free(h64);
	free(p64);
	json_decref(h);
	json_decref(c);
	return rc;
}

int creto_nhi_token_read(const char *path, char *buf, size_t cap, size_t *len, creto_err *e)
{
	*len = 0;
	if (cap < 3)
		return creto_err_set(e, CRETO_EUSAGE, "token: buffer too small");
	int is_stdin = strcmp(path, "-") == 0;
	const char *what = is_stdin ? "standard input" : path;
	int fd = 0, rc = CRETO_OK;
	if (!is_stdin) {
		fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
		if (fd < 0) {
			if (errno == ELOOP)
				return creto_err_set(e, CRETO_EREJECT, "token: %s: is a symbolic link", path);
			return creto_err_errno(e, errno, "token: %s", path);
		}
		struct stat st;
		if (fstat(fd, &st) != 0)
			rc = creto_err_errno(e, errno, "token: %s", path);
		else if (!S_ISREG(st.st_mode))
			rc = creto_err_set(e, CRETO_EREJECT, "token: %s: not a regular file", path);
	}
	if (rc == CRETO_OK) {
		/* cap - 1 bytes read show an input over cap - 2 bytes as one */
		ssize_t n = creto_read_full(fd, buf, cap - 1);
		if (n < 0)
			rc = creto_err_errno(e, errno, "token: %s", what);
		else if ((size_t)n == cap - 1)
			rc = creto_err_set(e, CRETO_EREJECT, "token: %s holds more than %zu bytes, over the %d-byte cap",
					   what, cap - 2, CRETO_JWS_MAX);
		else
			*len = (size_t)n;
	}
	if (!is_stdin)
		close(fd);
	if (rc == CRETO_OK) {
		if (*len && buf[*len - 1] == '\n')
			(*len)--;
		buf[*len] = '\0';
		if (memchr(buf, '\0', *len) != NULL)
			rc = creto_err_set(e, CRETO_EREJECT, "token: holds a NUL byte");
	}
	if (rc != CRETO_OK) {
		OPENSSL_cleanse(buf, cap);
		*len = 0;
	}
	return rc;
}
