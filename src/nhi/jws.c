/*
 * jws.c - strict parsing of compact JWS tokens and JWT claims (RFC 7515,
 * RFC 7519) as profiled in docs/nhi.md "Token profile".
 *
 * Everything here reads untrusted bytes: lengths are bounded before any
 * allocation, base64url is decoded strictly, JSON objects with a duplicate
 * member are refused (two parsers must never see two different tokens), and
 * the payload is only decoded here, parsed after the signature verified.
 */
#include "creto/nhi.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/timeutil.h"

#define JWS_HEADER_MAX 1024 /* decoded bytes of a protected header */

const char *creto_jws_alg_name(creto_jws_alg a)
{
	switch (a) {
	case CRETO_JWS_EDDSA: return "EdDSA";
	case CRETO_JWS_ES256: return "ES256";
	case CRETO_JWS_NONE: break;
	}
	return NULL;
}

creto_alg creto_jws_alg_key(creto_jws_alg a)
{
	switch (a) {
	case CRETO_JWS_EDDSA: return CRETO_ALG_ED25519;
	case CRETO_JWS_ES256: return CRETO_ALG_ECDSA_P256;
	case CRETO_JWS_NONE: break;
	}
	return CRETO_ALG_NONE;
}

void creto_jws_clear(creto_jws *j)
{
	if (j == NULL)
		return;
	free(j->payload);
	memset(j, 0, sizeof(*j));
}

/* base64url value of a byte, 0xff outside the alphabet.
 * Tokens are public: a table decoder (not the constant-time one of
 * util/enc.h) keeps the cold resolve path short. */
static inline unsigned b64u_v(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return (unsigned)(c - 'A');
	if (c >= 'a' && c <= 'z')
		return (unsigned)(c - 'a' + 26);
	if (c >= '0' && c <= '9')
		return (unsigned)(c - '0' + 52);
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return 0xff;
}

/* Strict base64url without padding (RFC 7515 2): alphabet only, length not
 * 1 mod 4, unused trailing bits zero.  out holds the decoded length
 * (inlen / 4 * 3 + inlen % 4 - 1 when inlen % 4, else inlen / 4 * 3).
 * 0 and *outlen, or -1. */
static int b64u_decode(uint8_t *out, size_t *outlen, const char *in, size_t inlen)
{
	if (inlen % 4 == 1)
		return -1;
	const unsigned char *p = (const unsigned char *)in;
	size_t o = 0, i = 0;
	unsigned bad = 0;
	for (; i + 4 <= inlen; i += 4) {
		unsigned a = b64u_v(p[i]), b = b64u_v(p[i + 1]), c = b64u_v(p[i + 2]),
			 d = b64u_v(p[i + 3]);
		bad |= a | b | c | d;
		unsigned v = a << 18 | b << 12 | c << 6 | d;
		out[o++] = (uint8_t)(v >> 16);
		out[o++] = (uint8_t)(v >> 8);
		out[o++] = (uint8_t)v;
	}
	size_t rem = inlen - i;
	if (rem) {
		unsigned a = b64u_v(p[i]), b = b64u_v(p[i + 1]);
		unsigned c = rem == 3 ? b64u_v(p[i + 2]) : 0;
		bad |= a | b | c;
		unsigned v = (a & 63) << 18 | (b & 63) << 12 | (c & 63) << 6;
		out[o++] = (uint8_t)(v >> 16);
		if (rem == 3)
			out[o++] = (uint8_t)(v >> 8);
		if (rem == 2 ? (v & 0xffff) : (v & 0xff))
			return -1; /* non-canonical: nonzero unused bits */
	}
	if (bad & 0x80)
		return -1;
	*outlen = o;
	return 0;
}

/* Decode one base64url segment into buf (max + 1 bytes) or, when
 * buf is NULL, a fresh buffer; at most max decoded bytes, NUL-terminated. */
static int seg_decode(const char *what, const char *in, size_t inlen, size_t max, uint8_t *buf,
		      uint8_t **out, size_t *outlen, creto_err *e)
{
	*out = NULL;
	if (inlen == 0)
		return creto_err_set(e, CRETO_EREJECT, "token %s: empty", what);
	/* exact decoded length (the decoder writes no more than this) */
	size_t dlen = inlen / 4 * 3 + (inlen % 4 ? inlen % 4 - 1 : 0);
	if (dlen > max)
		return creto_err_set(e, CRETO_EREJECT, "token %s: longer than %zu bytes", what, max);
	int own = buf == NULL;
	if (own && (buf = malloc(dlen + 1)) == NULL)
		return creto_err_set(e, CRETO_EOP, "out of memory");
	size_t n = 0;
	if (b64u_decode(buf, &n, in, inlen) != 0) {
		if (own)
			free(buf);
		return creto_err_set(e, CRETO_EREJECT, "token %s: bad base64url", what);
	}
	buf[n] = 0;
	*out = buf;
	*outlen = n;
	return CRETO_OK;
}

/* Load a JSON object, refusing duplicate members; reason names where. */
static int json_object_strict(const char *what, const uint8_t *buf, size_t len, json_t **out,
			      creto_err *e)
{
	json_error_t je;
	json_t *j = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &je);
	if (j == NULL) {
		/* jansson says "duplicate object key" for a repeated member. */
		if (strstr(je.text, "duplicate") != NULL)
			return creto_err_set(e, CRETO_EREJECT, "%s: duplicate JSON key (%s)", what,
					     je.text);
		return creto_err_set(e, CRETO_EREJECT, "%s: invalid JSON: %s", what, je.text);
	}
	if (!json_is_object(j)) {
		json_decref(j);
		return creto_err_set(e, CRETO_EREJECT, "%s: not a JSON object", what);
	}
	*out = j;
	return CRETO_OK;
}

static int header_check(json_t *h, creto_jws *out, creto_err *e)
{
	json_t *alg = json_object_get(h, "alg");
	if (!json_is_string(alg))
		return creto_err_set(e, CRETO_EREJECT, "token header: alg missing or not a string");
	const char *a = json_string_value(alg);
	if (strcasecmp(a, "none") == 0)
		return creto_err_set(e, CRETO_EREJECT,
				     "token header: alg '%s' refused (unsecured JWS)", a);
	if (strncasecmp(a, "HS", 2) == 0)
		return creto_err_set(e, CRETO_EREJECT,
				     "token header: alg '%.16s' refused (symmetric MAC, alg confusion)",
				     a);
	if (strcmp(a, "EdDSA") == 0)
		out->alg = CRETO_JWS_EDDSA;
	else if (strcmp(a, "ES256") == 0)
		out->alg = CRETO_JWS_ES256;
	else
		return creto_err_set(e, CRETO_EREJECT,
				     "token header: alg '%.16s' not supported (EdDSA, ES256)", a);
	/* Keys come from the JWK Set only, never from the token itself. */
	static const char *const forbidden[] = {"jku", "jwk", "x5u", "x5c", "x5t", "x5t#S256"};
	for (size_t i = 0; i < sizeof(forbidden) / sizeof(forbidden[0]); i++)
		if (json_object_get(h, forbidden[i]) != NULL)
			return creto_err_set(e, CRETO_EREJECT,
					     "token header: '%s' refused (keys come only from the JWK Set)",
					     forbidden[i]);
	if (json_object_get(h, "crit") != NULL)
		return creto_err_set(e, CRETO_EREJECT,
				     "token header: 'crit' refused (no extensions understood)");
	if (json_object_get(h, "b64") != NULL)
		return creto_err_set(e, CRETO_EREJECT, "token header: 'b64' refused");
	if (json_object_get(h, "zip") != NULL)
		return creto_err_set(e, CRETO_EREJECT, "token header: 'zip' refused");
	json_t *typ = json_object_get(h, "typ");
	if (typ != NULL && (!json_is_string(typ) || strcasecmp(json_string_value(typ), "JWT") != 0))
		return creto_err_set(e, CRETO_EREJECT, "token header: typ must be 'JWT'");
	json_t *kid = json_object_get(h, "kid");
	if (!json_is_string(kid))
		return creto_err_set(e, CRETO_EREJECT, "token header: kid missing or not a string");
	size_t kl = json_string_length(kid);
	if (kl == 0 || kl > CRETO_JWS_KID_MAX || strlen(json_string_value(kid)) != kl)
		return creto_err_set(e, CRETO_EREJECT, "token header: kid: want 1..%d bytes",
				     CRETO_JWS_KID_MAX);
	memcpy(out->kid, json_string_value(kid), kl + 1);
	return CRETO_OK;
}

int creto_jws_parse(const char *tok, size_t len, creto_jws *out, creto_err *e)
{
	memset(out, 0, sizeof(*out));
	if (len > CRETO_JWS_MAX)
		return creto_err_set(e, CRETO_EREJECT, "token: %zu bytes, over the %d-byte cap", len,
				     CRETO_JWS_MAX);
	if (len == 0)
		return creto_err_set(e, CRETO_EREJECT, "token: empty");
	size_t dots[2], nd = 0;
	for (size_t i = 0; i < len; i++) {
		if (tok[i] != '.')
			continue;
		if (nd == 2)
			return creto_err_set(e, CRETO_EREJECT,
					     "token: more than 3 segments (JWE or garbage)");
		dots[nd++] = i;
	}
	if (nd != 2)
		return creto_err_set(e, CRETO_EREJECT, "token: want 3 dot-separated segments, found %zu",
				     nd + 1);
	uint8_t hstore[JWS_HEADER_MAX + 4];
	uint8_t *hbuf = NULL;
	size_t hlen = 0;
	json_t *h = NULL;
	int rc = seg_decode("header", tok, dots[0], JWS_HEADER_MAX, hstore, &hbuf, &hlen, e);
	if (rc != CRETO_OK)
		goto fail;
	rc = json_object_strict("token header", hbuf, hlen, &h, e);
	if (rc != CRETO_OK)
		goto fail;
	rc = header_check(h, out, e);
	if (rc != CRETO_OK)
		goto fail;
	/* Signature: exactly 64 bytes for both algorithms (r||s for ES256). */
	const char *s = tok + dots[1] + 1;
	size_t slen = len - dots[1] - 1;
	if (slen == 0) {
		rc = creto_err_set(e, CRETO_EREJECT, "token signature: empty (unsecured JWS)");
		goto fail;
	}
	uint8_t sigbuf[68];
	if (slen > 88 || b64u_decode(sigbuf, &out->siglen, s, slen) != 0) {
		rc = creto_err_set(e, CRETO_EREJECT,
				   "token signature: bad base64url or longer than 64 bytes");
		goto fail;
	}
	if (out->siglen != 64) {
		rc = creto_err_set(e, CRETO_EREJECT, "token signature: %zu bytes, %s wants 64",
				   out->siglen, creto_jws_alg_name(out->alg));
		goto fail;
	}
	memcpy(out->sig, sigbuf, 64);
	rc = seg_decode("payload", tok + dots[0] + 1, dots[1] - dots[0] - 1, CRETO_JWS_MAX, NULL,
			&out->payload, &out->payload_len, e);
	if (rc != CRETO_OK)
		goto fail;
	out->signing_input_len = dots[1];
	json_decref(h);
	return CRETO_OK;
fail:
	json_decref(h);
	creto_jws_clear(out);
	return rc;
}

static int claim_str(json_t *p, const char *name, int required, char *dst, size_t cap,
		     creto_err *e)
{
	json_t *v = json_object_get(p, name);
	if (v == NULL) {
		if (required)
			return creto_err_set(e, CRETO_EREJECT, "token claim %s: missing", name);
		return CRETO_OK;
	}
	if (!json_is_string(v))
		return creto_err_set(e, CRETO_EREJECT, "token claim %s: not a string", name);
	size_t n = json_string_length(v);
	if (n == 0 || n >= cap)
		return creto_err_set(e, CRETO_EREJECT, "token claim %s: want 1..%zu bytes", name,
				     cap - 1);
	memcpy(dst, json_string_value(v), n + 1);
	return CRETO_OK;
}

static int claim_time(json_t *p, const char *name, int required, int64_t *dst, int *present,
		      creto_err *e)
{
	json_t *v = json_object_get(p, name);
	if (present)
		*present = v != NULL;
	if (v == NULL) {
		if (required)
			return creto_err_set(e, CRETO_EREJECT, "token claim %s: missing", name);
		return CRETO_OK;
	}
	if (!json_is_integer(v))
		return creto_err_set(e, CRETO_EREJECT, "token claim %s: not an integer NumericDate",
				     name);
	json_int_t t = json_integer_value(v);
	if (t < 0 || t > 253402300799LL) /* 9999-12-31T23:59:59Z */
		return creto_err_set(e, CRETO_EREJECT, "token claim %s: out of range", name);
	*dst = (int64_t)t;
	return CRETO_OK;
}

int creto_jwt_claims_parse(const uint8_t *payload, size_t len, creto_jwt_claims *out,
			   creto_err *e)
{
	memset(out, 0, sizeof(*out));
	json_t *p = NULL;
	int rc = json_object_strict("token payload", payload, len, &p, e);
	if (rc != CRETO_OK)
		return rc;
	if ((rc = claim_str(p, "iss", 1, out->iss, sizeof(out->iss), e)) != CRETO_OK ||
	    (rc = claim_str(p, "sub", 1, out->sub, sizeof(out->sub), e)) != CRETO_OK ||
	    (rc = claim_str(p, "jti", 1, out->jti, sizeof(out->jti), e)) != CRETO_OK ||
	    (rc = claim_time(p, "iat", 1, &out->iat, NULL, e)) != CRETO_OK ||
	    (rc = claim_time(p, "exp", 1, &out->exp, NULL, e)) != CRETO_OK ||
	    (rc = claim_time(p, "nbf", 0, &out->nbf, &out->has_nbf, e)) != CRETO_OK)
		goto out;
	if (!creto_nhi_id_valid(out->sub)) {
		rc = creto_err_set(e, CRETO_EREJECT, "token claim sub: '%.64s' is not an agent id",
				   out->sub);
		goto out;
	}
	json_t *aud = json_object_get(p, "aud");
	if (json_is_string(aud)) {
		rc = claim_str(p, "aud", 1, out->aud[0], sizeof(out->aud[0]), e);
		out->naud = 1;
	} else if (json_is_array(aud)) {
		size_t n = json_array_size(aud);
		if (n == 0 || n > CRETO_JWS_AUD_MAX) {
			rc = creto_err_set(e, CRETO_EREJECT, "token claim aud: want 1..%d entries",
					   CRETO_JWS_AUD_MAX);
			goto out;
		}
		for (size_t i = 0; i < n; i++) {
			json_t *v = json_array_get(aud, i);
			size_t l = json_is_string(v) ? json_string_length(v) : 0;
			if (l == 0 || l > CRETO_NHI_ISSUER_MAX) {
				rc = creto_err_set(e, CRETO_EREJECT,
						   "token claim aud[%zu]: want a string of 1..%d bytes", i,
						   CRETO_NHI_ISSUER_MAX);
				goto out;
			}
			memcpy(out->aud[i], json_string_value(v), l + 1);
		}
		out->naud = n;
	} else {
		rc = creto_err_set(e, CRETO_EREJECT, "token claim aud: %s",
				   aud ? "not a string or array" : "missing");
		goto out;
	}
	if (rc != CRETO_OK)
		goto out;
	json_t *sc = json_object_get(p, "scope");
	if (sc != NULL) {
		if (!json_is_string(sc) || json_string_length(sc) > CRETO_NHI_SCOPES_LEN ||
		    strlen(json_string_value(sc)) != json_string_length(sc)) {
			rc = creto_err_set(e, CRETO_EREJECT,
					   "token claim scope: want a string of at most %d bytes",
					   CRETO_NHI_SCOPES_LEN);
			goto out;
		}
		const char *v = json_string_value(sc);
		/* space-delimited (RFC 8693 4.2), each a valid scope */
		for (const char *q = v; *q;) {
			const char *sp = strchr(q, ' ');
			size_t n = sp ? (size_t)(sp - q) : strlen(q);
			if (!creto_nhi_scope_valid(q, n)) {
				rc = creto_err_set(e, CRETO_EREJECT, "token claim scope: bad scope '%.*s'",
						   (int)(n > 64 ? 64 : n), q);
				goto out;
			}
			q += n;
			if (*q == ' ')
				q++;
		}
		memcpy(out->scope, v, strlen(v) + 1);
		out->has_scope = 1;
	}
out:
	json_decref(p);
	return rc;
}

int creto_jwt_claims_check(const creto_jwt_claims *c, const char *iss, const char *aud,
			   int64_t now, creto_err *e)
{
	char t1[CRETO_TIME_STRLEN], t2[CRETO_TIME_STRLEN];
	if (strcmp(c->iss, iss) != 0)
		return creto_err_set(e, CRETO_EREJECT, "token claim iss: '%.64s' is not the issuer '%s'",
				     c->iss, iss);
	int found = 0;
	for (size_t i = 0; i < c->naud; i++)
		found |= strcmp(c->aud[i], aud) == 0;
	if (!found)
		return creto_err_set(e, CRETO_EREJECT, "token claim aud: does not include '%s'", aud);
	if (c->exp <= c->iat)
		return creto_err_set(e, CRETO_EREJECT, "token claim exp: not after iat");
	if (now > c->exp + CRETO_NHI_SKEW) {
		creto_time_format(c->exp, t1);
		creto_time_format(now, t2);
		return creto_err_set(e, CRETO_EREJECT, "token expired at %s (now %s, skew %ds)", t1, t2,
				     CRETO_NHI_SKEW);
	}
	if (c->has_nbf && now + CRETO_NHI_SKEW < c->nbf) {
		creto_time_format(c->nbf, t1);
		creto_time_format(now, t2);
		return creto_err_set(e, CRETO_EREJECT, "token not valid before %s (now %s, skew %ds)",
				     t1, t2, CRETO_NHI_SKEW);
	}
	if (now + CRETO_NHI_SKEW < c->iat) {
		creto_time_format(c->iat, t1);
		return creto_err_set(e, CRETO_EREJECT, "token claim iat: %s is in the future", t1);
	}
	return CRETO_OK;
}
