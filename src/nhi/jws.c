/*
 * jws.c - strict parsing of compact JWS tokens and JWT claims (RFC 7515,
 * RFC 7519) as profiled in docs/nhi.md "Token profile".
 *
 * Everything here reads untrusted bytes: lengths are bounded before any
 * allocation, base64url is decoded strictly, JSON objects with a duplicate
 * member are refused (two parsers must never see two different tokens), and
 * the payload is only decoded here, parsed after the signature verified.
 * JSON is read by util/jsonscan (docs/nhi.md "JSON of the header and the
 * payload"): strict, allocation-free, the same acceptance as jansson.
 */
#include "creto/nhi.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"
#include "util/jsonscan.h"
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
	/* the signature, with the claims, is the bearer credential */
	OPENSSL_cleanse(j, sizeof(*j));
}

/* base64url value + 1 of each byte, 0 outside the alphabet.
 * Tokens are public: a table decoder (not the constant-time one of
 * util/enc.h) keeps the cold resolve path short. */
static const uint8_t b64u_tab[256] = {
	['A'] = 1, ['B'] = 2, ['C'] = 3, ['D'] = 4, ['E'] = 5, ['F'] = 6, ['G'] = 7, ['H'] = 8,
	['I'] = 9, ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14, ['O'] = 15,
	['P'] = 16, ['Q'] = 17, ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22,
	['W'] = 23, ['X'] = 24, ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29,
	['d'] = 30, ['e'] = 31, ['f'] = 32, ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36,
	['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40, ['o'] = 41, ['p'] = 42, ['q'] = 43,
	['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48, ['w'] = 49, ['x'] = 50,
	['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56, ['4'] = 57,
	['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62, ['-'] = 63, ['_'] = 64,
};

/* The value of c, or a value with bit 7 set outside the alphabet. */
static inline unsigned b64u_v(unsigned char c)
{
	return (unsigned)b64u_tab[c] - 1u;
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

static int header_check(const creto_json_object *h, int assertion, creto_jws *out, creto_err *e)
{
	char a[32];
	const creto_json_value *alg = creto_json_get(h, "alg");
	if (alg == NULL || alg->type != CRETO_JSON_STRING)
		return creto_err_set(e, CRETO_EREJECT, "token header: alg missing or not a string");
	if (creto_json_string(alg, a, sizeof(a), NULL) != 0)
		return creto_err_set(e, CRETO_EREJECT,
				     "token header: alg longer than %zu bytes, not supported (EdDSA, ES256)",
				     sizeof(a) - 1);
	if (strcasecmp(a, "none") == 0)
		return creto_err_set(e, CRETO_EREJECT,
				     "token header: alg '%s' refused (unsecured JWS)", a);
	if (strncasecmp(a, "HS", 2) == 0)
		return creto_err_set(e, CRETO_EREJECT,
				     "token header: alg '%.16s' refused (symmetric MAC, alg confusion)",
				     a);
	if (strcmp(a, "EdDSA") == 0)
		out->alg = CRETO_JWS_EDDSA;
	else if (assertion && strcmp(a, "Ed25519") == 0)
		out->alg = CRETO_JWS_EDDSA; /* the fully-specified name (RFC 9864) WebCrypto clients send */
	else if (strcmp(a, "ES256") == 0)
		out->alg = CRETO_JWS_ES256;
	else
		return creto_err_set(e, CRETO_EREJECT, "token header: alg '%.16s' not supported (EdDSA, %sES256)", a,
				     assertion ? "Ed25519, " : "");
	/* Keys come from the JWK Set only, never from the token itself. */
	static const char *const forbidden[] = {"jku", "jwk", "x5u", "x5c", "x5t", "x5t#S256"};
	for (size_t i = 0; i < sizeof(forbidden) / sizeof(forbidden[0]); i++)
		if (creto_json_get(h, forbidden[i]) != NULL)
			return creto_err_set(e, CRETO_EREJECT,
					     "token header: '%s' refused (keys come only from the JWK Set)",
					     forbidden[i]);
	if (creto_json_get(h, "crit") != NULL)
		return creto_err_set(e, CRETO_EREJECT,
				     "token header: 'crit' refused (no extensions understood)");
	if (creto_json_get(h, "b64") != NULL)
		return creto_err_set(e, CRETO_EREJECT, "token header: 'b64' refused");
	if (creto_json_get(h, "zip") != NULL)
		return creto_err_set(e, CRETO_EREJECT, "token header: 'zip' refused");
	const creto_json_value *typ = creto_json_get(h, "typ");
	char t[32];
	/* a client assertion may also say what it is (RFC 7523bis) */
	if (typ != NULL &&
	    (creto_json_string(typ, t, sizeof(t), NULL) != 0 ||
	     (strcasecmp(t, "JWT") != 0 && !(assertion && strcasecmp(t, "client-authentication+jwt") == 0))))
		return creto_err_set(e, CRETO_EREJECT, "token header: typ must be 'JWT'%s",
				     assertion ? " or 'client-authentication+jwt'" : "");
	const creto_json_value *kid = creto_json_get(h, "kid");
	if (kid == NULL || kid->type != CRETO_JSON_STRING)
		return creto_err_set(e, CRETO_EREJECT, "token header: kid missing or not a string");
	size_t kl = 0;
	if (creto_json_string(kid, out->kid, sizeof(out->kid), &kl) != 0 || kl == 0)
		return creto_err_set(e, CRETO_EREJECT, "token header: kid: want 1..%d bytes",
				     CRETO_JWS_KID_MAX);
	return CRETO_OK;
}

int creto_jws_parse(const char *tok, size_t len, creto_jws *out, creto_err *e)
{
	return nhi_jws_parse(tok, len, 0, out, e);
}

int nhi_jws_parse(const char *tok, size_t len, int assertion, creto_jws *out, creto_err *e)
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
	creto_json_object h;
	int rc = seg_decode("header", tok, dots[0], JWS_HEADER_MAX, hstore, &hbuf, &hlen, e);
	if (rc != CRETO_OK)
		goto fail;
	rc = creto_json_object_scan("token header", (const char *)hbuf, hlen, &h, e);
	if (rc != CRETO_OK)
		goto fail;
	rc = header_check(&h, assertion, out, e);
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
		OPENSSL_cleanse(sigbuf, sizeof(sigbuf));
		rc = creto_err_set(e, CRETO_EREJECT, "token signature: %zu bytes, %s wants 64",
				   out->siglen, creto_jws_alg_name(out->alg));
		goto fail;
	}
	memcpy(out->sig, sigbuf, 64);
	OPENSSL_cleanse(sigbuf, sizeof(sigbuf));
	rc = seg_decode("payload", tok + dots[0] + 1, dots[1] - dots[0] - 1, CRETO_JWS_MAX, NULL,
			&out->payload, &out->payload_len, e);
	if (rc != CRETO_OK)
		goto fail;
	out->signing_input_len = dots[1];
	return CRETO_OK;
fail:
	creto_jws_clear(out);
	return rc;
}

static int claim_str(const creto_json_object *p, const char *name, int required, char *dst,
		     size_t cap, creto_err *e)
{
	const creto_json_value *v = creto_json_get(p, name);
	if (v == NULL) {
		if (required)
			return creto_err_set(e, CRETO_EREJECT, "token claim %s: missing", name);
		return CRETO_OK;
	}
	if (v->type != CRETO_JSON_STRING)
		return creto_err_set(e, CRETO_EREJECT, "token claim %s: not a string", name);
	size_t n = 0;
	if (creto_json_string(v, dst, cap, &n) != 0 || n == 0)
		return creto_err_set(e, CRETO_EREJECT, "token claim %s: want 1..%zu bytes", name,
				     cap - 1);
	return CRETO_OK;
}

static int claim_time(const creto_json_object *p, const char *name, int required, int64_t *dst,
		      int *present, creto_err *e)
{
	const creto_json_value *v = creto_json_get(p, name);
	if (present)
		*present = v != NULL;
	if (v == NULL) {
		if (required)
			return creto_err_set(e, CRETO_EREJECT, "token claim %s: missing", name);
		return CRETO_OK;
	}
	int64_t t;
	if (creto_json_int64(v, &t) != 0)
		return creto_err_set(e, CRETO_EREJECT, "token claim %s: not an integer NumericDate",
				     name);
	if (t < 0 || t > 253402300799LL) /* 9999-12-31T23:59:59Z */
		return creto_err_set(e, CRETO_EREJECT, "token claim %s: out of range", name);
	*dst = t;
	return CRETO_OK;
}

int creto_jwt_claims_parse(const uint8_t *payload, size_t len, creto_jwt_claims *out,
			   creto_err *e)
{
	memset(out, 0, sizeof(*out));
	creto_json_object p;
	int rc = creto_json_object_scan("token payload", (const char *)payload, len, &p, e);
	if (rc != CRETO_OK)
		return rc;
	if ((rc = claim_str(&p, "iss", 1, out->iss, sizeof(out->iss), e)) != CRETO_OK ||
	    (rc = claim_str(&p, "sub", 1, out->sub, sizeof(out->sub), e)) != CRETO_OK ||
	    (rc = claim_str(&p, "jti", 1, out->jti, sizeof(out->jti), e)) != CRETO_OK ||
	    (rc = claim_time(&p, "iat", 1, &out->iat, NULL, e)) != CRETO_OK ||
	    (rc = claim_time(&p, "exp", 1, &out->exp, NULL, e)) != CRETO_OK ||
	    (rc = claim_time(&p, "nbf", 0, &out->nbf, &out->has_nbf, e)) != CRETO_OK)
		return rc;
	if (!creto_nhi_id_valid(out->sub))
		return creto_err_set(e, CRETO_EREJECT, "token claim sub: '%.64s' is not an agent id",
				     out->sub);
	const creto_json_value *aud = creto_json_get(&p, "aud");
	if (aud != NULL && aud->type == CRETO_JSON_STRING) {
		rc = claim_str(&p, "aud", 1, out->aud[0], sizeof(out->aud[0]), e);
		if (rc != CRETO_OK)
			return rc;
		out->naud = 1;
	} else if (aud != NULL && aud->type == CRETO_JSON_ARRAY) {
		size_t pos = 0, n = 0;
		creto_json_value v;
		while (creto_json_array_next(aud, &pos, &v)) {
			size_t l = 0;
			if (n == CRETO_JWS_AUD_MAX)
				return creto_err_set(e, CRETO_EREJECT, "token claim aud: want 1..%d entries",
						     CRETO_JWS_AUD_MAX);
			if (creto_json_string(&v, out->aud[n], sizeof(out->aud[n]), &l) != 0 || l == 0)
				return creto_err_set(e, CRETO_EREJECT,
						     "token claim aud[%zu]: want a string of 1..%d bytes",
						     n, CRETO_NHI_ISSUER_MAX);
			n++;
		}
		if (n == 0)
			return creto_err_set(e, CRETO_EREJECT, "token claim aud: want 1..%d entries",
					     CRETO_JWS_AUD_MAX);
		out->naud = n;
	} else {
		return creto_err_set(e, CRETO_EREJECT, "token claim aud: %s",
				     aud ? "not a string or array" : "missing");
	}
	const creto_json_value *sc = creto_json_get(&p, "scope");
	if (sc != NULL) {
		if (creto_json_string(sc, out->scope, sizeof(out->scope), NULL) != 0)
			return creto_err_set(e, CRETO_EREJECT,
					     "token claim scope: want a string of at most %d bytes",
					     CRETO_NHI_SCOPES_LEN);
		/* space-delimited (RFC 8693 4.2), each a valid scope */
		for (const char *q = out->scope; *q;) {
			const char *sp = strchr(q, ' ');
			size_t n = sp ? (size_t)(sp - q) : strlen(q);
			if (!creto_nhi_scope_valid(q, n))
				return creto_err_set(e, CRETO_EREJECT,
						     "token claim scope: bad scope '%.*s'",
						     (int)(n > 64 ? 64 : n), q);
			q += n;
			if (*q == ' ')
				q++;
		}
		out->has_scope = 1;
	}
	return CRETO_OK;
}

int creto_jwt_claims_check(const creto_jwt_claims *c, const char *iss, const char *aud,
			   int64_t now, creto_nhi_rule *rule, creto_err *e)
{
	char t1[CRETO_TIME_STRLEN], t2[CRETO_TIME_STRLEN];
	creto_nhi_rule r = CRETO_NHI_RULE_NONE;
	int found = 0;
	for (size_t i = 0; i < c->naud; i++)
		found |= strcmp(c->aud[i], aud) == 0;
	if (strcmp(c->iss, iss) != 0) {
		r = CRETO_NHI_RULE_ISSUER;
		creto_err_set(e, CRETO_EREJECT, "token claim iss: '%.64s' is not the issuer '%s'", c->iss, iss);
	} else if (!found) {
		r = CRETO_NHI_RULE_AUDIENCE;
		creto_err_set(e, CRETO_EREJECT, "token claim aud: does not include '%s'", aud);
	} else if (c->exp <= c->iat) {
		r = CRETO_NHI_RULE_CLAIMS;
		creto_err_set(e, CRETO_EREJECT, "token claim exp: not after iat");
	} else if (now > c->exp + CRETO_NHI_SKEW) {
		r = CRETO_NHI_RULE_EXPIRED;
		creto_time_format(c->exp, t1);
		creto_time_format(now, t2);
		creto_err_set(e, CRETO_EREJECT, "token expired at %s (now %s, skew %ds)", t1, t2, CRETO_NHI_SKEW);
	} else if (c->has_nbf && now + CRETO_NHI_SKEW < c->nbf) {
		r = CRETO_NHI_RULE_NOT_YET_VALID;
		creto_time_format(c->nbf, t1);
		creto_time_format(now, t2);
		creto_err_set(e, CRETO_EREJECT, "token not valid before %s (now %s, skew %ds)", t1, t2,
			      CRETO_NHI_SKEW);
	} else if (now + CRETO_NHI_SKEW < c->iat) {
		r = CRETO_NHI_RULE_IAT;
		creto_time_format(c->iat, t1);
		creto_err_set(e, CRETO_EREJECT, "token claim iat: %s is in the future", t1);
	}
	if (rule != NULL)
		*rule = r;
	return r == CRETO_NHI_RULE_NONE ? CRETO_OK : CRETO_EREJECT;
}

const char *creto_nhi_rule_name(creto_nhi_rule r)
{
	static const char *const names[] = {
		[CRETO_NHI_RULE_NONE] = "none",
		[CRETO_NHI_RULE_MALFORMED] = "token_malformed",
		[CRETO_NHI_RULE_UNKNOWN_KEY] = "unknown_key",
		[CRETO_NHI_RULE_ALG] = "alg_mismatch",
		[CRETO_NHI_RULE_SIGNATURE] = "token_signature",
		[CRETO_NHI_RULE_CLAIMS] = "token_claims",
		[CRETO_NHI_RULE_ISSUER] = "token_issuer",
		[CRETO_NHI_RULE_AUDIENCE] = "token_audience",
		[CRETO_NHI_RULE_EXPIRED] = "token_expired",
		[CRETO_NHI_RULE_NOT_YET_VALID] = "token_not_yet_valid",
		[CRETO_NHI_RULE_IAT] = "token_iat",
		[CRETO_NHI_RULE_UNKNOWN_AGENT] = "unknown_agent",
		[CRETO_NHI_RULE_AGENT_STATUS] = "agent_status",
		[CRETO_NHI_RULE_AGENT_VALIDITY] = "agent_validity",
		[CRETO_NHI_RULE_ISSUER_KEY] = "issuer_key",
		[CRETO_NHI_RULE_SCOPE] = "scope_not_granted",
		[CRETO_NHI_RULE_INTERNAL] = "internal",
	};
	return (unsigned)r < sizeof(names) / sizeof(names[0]) ? names[r] : "internal";
}
