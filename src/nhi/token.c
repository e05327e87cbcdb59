/*
 * token.c - issuing compact JWS tokens (docs/nhi.md "Token profile") with
 * any creto signer: a key file or a key in the HSM.
 */
#include "creto/nhi.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/enc.h"
#include "util/escape.h"
#include "util/file.h"

/* ---- the token's JSON, written directly (compact, members in a fixed
 * order, strings escaped as jansson does: \" \\ \b \f \n \r \t, other
 * controls as \u00XX, everything else as is; invalid UTF-8 refused) ---- */

typedef struct {
	char *p, *end;
	int bad; /* no room, or a string that is not UTF-8 */
} jw;

static void jw_raw(jw *w, const char *s, size_t n)
{
	if (w->bad || (size_t)(w->end - w->p) < n) {
		w->bad = 1;
		return;
	}
	memcpy(w->p, s, n);
	w->p += n;
}

static void jw_str(jw *w, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *u = (const unsigned char *)s;
	size_t n = strlen(s);
	jw_raw(w, "\"", 1);
	for (size_t i = 0; i < n && !w->bad;) {
		unsigned char c = u[i];
		if (c >= 0x80) {
			size_t l = creto_utf8_len(u + i, n - i, NULL);
			if (l == 0) {
				w->bad = 1;
				return;
			}
			jw_raw(w, s + i, l);
			i += l;
			continue;
		}
		char esc[6] = {'\\', 0, '0', '0', 0, 0};
		size_t el = 2;
		switch (c) {
		case '"': esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\b': esc[1] = 'b'; break;
		case '\f': esc[1] = 'f'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		default:
			if (c >= 0x20) {
				size_t j = i;
				while (j < n && u[j] >= 0x20 && u[j] < 0x80 && u[j] != '"' && u[j] != '\\')
					j++;
				jw_raw(w, s + i, j - i);
				i = j;
				continue;
			}
			esc[1] = 'u';
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			el = 6;
		}
		jw_raw(w, esc, el);
		i++;
	}
	jw_raw(w, "\"", 1);
}

static void jw_member(jw *w, const char *first, const char *key)
{
	jw_raw(w, first, strlen(first));
	jw_str(w, key);
	jw_raw(w, ":", 1);
}

static void jw_int(jw *w, int64_t v)
{
	char t[24];
	size_t i = sizeof(t);
	uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
	do {
		t[--i] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		t[--i] = '-';
	jw_raw(w, t + i, sizeof(t) - i);
}

/* A jti: 16 random bytes, base64url.  Drawn from a per-thread pool of
 * RAND_bytes output (one RAND_bytes per 256 tokens instead of one each);
 * the bytes taken are wiped from the pool. */
static int jti_random(uint8_t r[16])
{
	static __thread uint8_t pool[4096];
	static __thread size_t left;
	if (left < 16) {
		if (RAND_bytes(pool, sizeof(pool)) != 1)
			return -1;
		left = sizeof(pool);
	}
	left -= 16;
	memcpy(r, pool + left, 16);
	OPENSSL_cleanse(pool + left, 16);
	return 0;
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
		if (jti_random(r) != 0)
			return creto_err_openssl(e, "token jti");
		creto_b64_encode(jti, r, sizeof(r), 1);
	}
	/* header and claims as JSON, each base64url'd into the token buffer */
	char js[CRETO_JWS_MAX];
	jw w = {js, js + sizeof(js), 0};
	jw_member(&w, "{", "alg");
	jw_str(&w, creto_jws_alg_name(alg));
	jw_member(&w, ",", "typ");
	jw_str(&w, "JWT");
	jw_member(&w, ",", "kid");
	jw_str(&w, creto_pubkey_id(pk));
	jw_raw(&w, "}", 1);
	size_t hjl = (size_t)(w.p - js);
	jw_member(&w, "{", "iss");
	jw_str(&w, p->iss);
	jw_member(&w, ",", "sub");
	jw_str(&w, p->sub);
	jw_member(&w, ",", "aud");
	jw_str(&w, p->aud);
	jw_member(&w, ",", "iat");
	jw_int(&w, p->iat);
	jw_member(&w, ",", "nbf");
	jw_int(&w, p->nbf);
	jw_member(&w, ",", "exp");
	jw_int(&w, p->exp);
	jw_member(&w, ",", "jti");
	jw_str(&w, p->jti ? p->jti : jti);
	if (p->scope != NULL) {
		jw_member(&w, ",", "scope");
		jw_str(&w, p->scope);
	}
	jw_raw(&w, "}", 1);
	if (w.bad)
		return creto_err_set(e, CRETO_EUSAGE, "token: claims are not UTF-8 or over the %d-byte cap",
				     CRETO_JWS_MAX);
	size_t cjl = (size_t)(w.p - js) - hjl;
	size_t hl = creto_b64_enclen(hjl, 1), pl = creto_b64_enclen(cjl, 1);
	size_t cap = hl + 1 + pl + 1 + creto_b64_enclen(64, 1) + 1;
	if (cap > CRETO_JWS_MAX)
		return creto_err_set(e, CRETO_EUSAGE, "token: would be over the %d-byte cap", CRETO_JWS_MAX);
	int rc = CRETO_EOP;
	uint8_t *sig = NULL;
	size_t siglen = 0;
	char *buf = malloc(cap);
	if (buf == NULL) {
		rc = creto_err_set(e, CRETO_EOP, "out of memory");
		goto out;
	}
	creto_b64_encode(buf, (const uint8_t *)js, hjl, 1);
	buf[hl] = '.';
	creto_b64_encode(buf + hl + 1, (const uint8_t *)js + hjl, cjl, 1);
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
