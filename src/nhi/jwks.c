/*
 * jwks.c - the issuer's public keys as a JWK Set (RFC 7517; OKP per
 * RFC 8037, EC per RFC 7518 6.2), written for standard JOSE libraries and
 * read back strictly by the resolver.
 */
#include "creto/nhi.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "util/enc.h"
#include "util/file.h"

#define JWKS_KEYS_MAX 64
#define JWKS_FILE_MAX (256 * 1024)

struct creto_jwks {
	size_t n;
	char kid[JWKS_KEYS_MAX][CRETO_JWS_KID_MAX + 1];
	creto_pubkey *key[JWKS_KEYS_MAX];
};

static json_t *b64_str(const uint8_t *b, size_t n)
{
	char s[128];
	creto_b64_encode(s, b, n, 1);
	return json_string(s);
}

int creto_jwks_format(const creto_pubkey *const *keys, size_t n, char **out, creto_err *e)
{
	*out = NULL;
	json_t *arr = json_array(), *set = NULL;
	int rc = CRETO_OK;
	if (arr == NULL)
		return creto_err_set(e, CRETO_EOP, "out of memory");
	for (size_t i = 0; i < n; i++) {
		size_t rl = 0;
		const uint8_t *raw = creto_pubkey_raw(keys[i], &rl);
		const char *kid = creto_pubkey_id(keys[i]);
		json_t *k = NULL;
		switch (creto_pubkey_alg(keys[i])) {
		case CRETO_ALG_ED25519:
			k = json_pack("{s:s, s:s, s:o, s:s, s:s, s:s}", "kty", "OKP", "crv", "Ed25519",
				      "x", b64_str(raw, rl), "kid", kid, "alg", "EdDSA", "use", "sig");
			break;
		case CRETO_ALG_ECDSA_P256:
			if (rl != 65 || raw[0] != 4) {
				rc = creto_err_set(e, CRETO_EOP, "key %s: bad P-256 point", kid);
				goto out;
			}
			k = json_pack("{s:s, s:s, s:o, s:o, s:s, s:s, s:s}", "kty", "EC", "crv", "P-256",
				      "x", b64_str(raw + 1, 32), "y", b64_str(raw + 33, 32), "kid", kid,
				      "alg", "ES256", "use", "sig");
			break;
		default:
			rc = creto_err_set(e, CRETO_EUSAGE,
					   "key %s is %s; a JWK Set holds ed25519 or ecdsa-p256 keys", kid,
					   creto_alg_name(creto_pubkey_alg(keys[i])));
			goto out;
		}
		if (k == NULL || json_array_append_new(arr, k) != 0) {
			rc = creto_err_set(e, CRETO_EOP, "out of memory");
			goto out;
		}
	}
	set = json_pack("{s:O}", "keys", arr);
	char *txt = set ? json_dumps(set, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
	if (txt == NULL) {
		rc = creto_err_set(e, CRETO_EOP, "out of memory");
		goto out;
	}
	*out = txt;
out:
	json_decref(arr);
	json_decref(set);
	return rc;
}

static int coord(json_t *k, const char *name, uint8_t *dst, size_t want, size_t idx, creto_err *e)
{
	json_t *v = json_object_get(k, name);
	size_t n = 0;
	if (!json_is_string(v))
		return creto_err_set(e, CRETO_EREJECT, "jwks key %zu: '%s' missing", idx, name);
	const char *s = json_string_value(v);
	size_t sl = json_string_length(v);
	if (sl > 64 || creto_b64_decode(dst, want, &n, s, sl, 1) != 0 || n != want)
		return creto_err_set(e, CRETO_EREJECT,
				     "jwks key %zu: '%s' is not %zu bytes of base64url", idx, name, want);
	return CRETO_OK;
}

static int want_str(json_t *k, const char *name, const char *want, size_t idx, creto_err *e)
{
	json_t *v = json_object_get(k, name);
	if (v == NULL)
		return CRETO_OK;
	if (!json_is_string(v) || strcmp(json_string_value(v), want) != 0)
		return creto_err_set(e, CRETO_EREJECT, "jwks key %zu: '%s' must be '%s'", idx, name,
				     want);
	return CRETO_OK;
}

static int parse_key(json_t *k, size_t idx, creto_pubkey **pk, const char **kidp, creto_err *e)
{
	*pk = NULL;
	if (!json_is_object(k))
		return creto_err_set(e, CRETO_EREJECT, "jwks key %zu: not an object", idx);
	static const char *const priv[] = {"d", "p", "q", "dp", "dq", "qi", "k"};
	for (size_t i = 0; i < sizeof(priv) / sizeof(priv[0]); i++)
		if (json_object_get(k, priv[i]) != NULL)
			return creto_err_set(e, CRETO_EREJECT,
					     "jwks key %zu: holds private or secret material ('%s')", idx,
					     priv[i]);
	json_t *kid = json_object_get(k, "kid");
	if (!json_is_string(kid) || json_string_length(kid) == 0 ||
	    json_string_length(kid) > CRETO_JWS_KID_MAX)
		return creto_err_set(e, CRETO_EREJECT, "jwks key %zu: kid missing", idx);
	*kidp = json_string_value(kid);
	json_t *kty = json_object_get(k, "kty");
	const char *t = json_is_string(kty) ? json_string_value(kty) : "";
	int rc = want_str(k, "use", "sig", idx, e);
	if (rc != CRETO_OK)
		return rc;
	uint8_t raw[65];
	creto_alg alg;
	size_t rl;
	if (strcmp(t, "OKP") == 0) {
		if ((rc = want_str(k, "crv", "Ed25519", idx, e)) != CRETO_OK ||
		    (rc = want_str(k, "alg", "EdDSA", idx, e)) != CRETO_OK)
			return rc;
		if (json_object_get(k, "crv") == NULL)
			return creto_err_set(e, CRETO_EREJECT, "jwks key %zu: crv missing", idx);
		if ((rc = coord(k, "x", raw, 32, idx, e)) != CRETO_OK)
			return rc;
		alg = CRETO_ALG_ED25519;
		rl = 32;
	} else if (strcmp(t, "EC") == 0) {
		if ((rc = want_str(k, "crv", "P-256", idx, e)) != CRETO_OK ||
		    (rc = want_str(k, "alg", "ES256", idx, e)) != CRETO_OK)
			return rc;
		if (json_object_get(k, "crv") == NULL)
			return creto_err_set(e, CRETO_EREJECT, "jwks key %zu: crv missing", idx);
		raw[0] = 4;
		if ((rc = coord(k, "x", raw + 1, 32, idx, e)) != CRETO_OK ||
		    (rc = coord(k, "y", raw + 33, 32, idx, e)) != CRETO_OK)
			return rc;
		alg = CRETO_ALG_ECDSA_P256;
		rl = 65;
	} else {
		return creto_err_set(e, CRETO_EREJECT,
				     "jwks key %zu (kid %.64s): kty '%.16s' not supported (OKP, EC)", idx,
				     *kidp, t);
	}
	rc = creto_pubkey_new(alg, raw, rl, pk, e);
	if (rc != CRETO_OK)
		return creto_err_ctx(e, "jwks key %zu (kid %.64s)", idx, *kidp);
	if (strcmp(creto_pubkey_id(*pk), *kidp) != 0) {
		rc = creto_err_set(e, CRETO_EREJECT, "jwks key %zu: kid '%.64s' is not the key id %s",
				   idx, *kidp, creto_pubkey_id(*pk));
		creto_pubkey_free(*pk);
		*pk = NULL;
		return rc;
	}
	return CRETO_OK;
}

int creto_jwks_parse(const char *text, size_t len, creto_jwks **out, creto_err *e)
{
	*out = NULL;
	json_error_t je;
	json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (j == NULL)
		return creto_err_set(e, CRETO_EREJECT, "jwks: %s: %s",
				     json_error_code(&je) == json_error_duplicate_key ? "duplicate JSON key"
										       : "invalid JSON",
				     je.text);
	int rc = CRETO_OK;
	creto_jwks *s = NULL;
	json_t *keys = json_is_object(j) ? json_object_get(j, "keys") : NULL;
	if (!json_is_array(keys) || json_array_size(keys) == 0 ||
	    json_array_size(keys) > JWKS_KEYS_MAX) {
		rc = creto_err_set(e, CRETO_EREJECT, "jwks: want an object with 1..%d \"keys\"",
				   JWKS_KEYS_MAX);
		goto out;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		rc = creto_err_set(e, CRETO_EOP, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < json_array_size(keys); i++) {
		const char *kid = NULL;
		creto_pubkey *pk = NULL;
		rc = parse_key(json_array_get(keys, i), i, &pk, &kid, e);
		if (rc != CRETO_OK)
			goto out;
		for (size_t k = 0; k < s->n; k++)
			if (strcmp(s->kid[k], kid) == 0) {
				creto_pubkey_free(pk);
				rc = creto_err_set(e, CRETO_EREJECT, "jwks: kid %s appears twice", kid);
				goto out;
			}
		memcpy(s->kid[s->n], kid, strlen(kid) + 1);
		s->key[s->n++] = pk;
	}
	*out = s;
	s = NULL;
out:
	creto_jwks_free(s);
	json_decref(j);
	return rc;
}

int creto_jwks_load(const char *path, creto_jwks **out, creto_err *e)
{
	*out = NULL;
	uint8_t *buf = NULL;
	size_t n = 0;
	int rc = creto_file_read(path, JWKS_FILE_MAX, &buf, &n, e);
	if (rc != CRETO_OK)
		return rc;
	rc = creto_jwks_parse((const char *)buf, n, out, e);
	free(buf);
	if (rc != CRETO_OK)
		return creto_err_ctx(e, "%s", path);
	return CRETO_OK;
}

const creto_pubkey *creto_jwks_find(const creto_jwks *j, const char *kid)
{
	for (size_t i = 0; i < j->n; i++)
		if (strcmp(j->kid[i], kid) == 0)
			return j->key[i];
	return NULL;
}

size_t creto_jwks_count(const creto_jwks *j)
{
	return j->n;
}

void creto_jwks_free(creto_jwks *j)
{
	if (j == NULL)
		return;
	for (size_t i = 0; i < j->n; i++)
		creto_pubkey_free(j->key[i]);
	free(j);
}
