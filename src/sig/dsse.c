/*
 * dsse.c - DSSE envelopes: PAE, signing with any creto_signer, strict
 * parsing and verification (include/creto/dsse.h, docs/signatures.md).
 */
#include "creto/dsse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sig/sig_internal.h"
#include "util/enc.h"

struct dsse_sig {
	char *keyid;
	uint8_t *sig;
	size_t siglen;
};

struct creto_dsse {
	char *type;
	uint8_t *payload;
	size_t len;
	struct dsse_sig sigs[CRETO_DSSE_MAX_SIGS];
	size_t nsigs;
};

static int type_ok(const char *t, size_t n)
{
	if (n == 0 || n > CRETO_DSSE_TYPE_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)t[i] < 0x20 || (unsigned char)t[i] > 0x7e)
			return 0;
	return 1;
}

int creto_dsse_new(const char *type, const uint8_t *payload, size_t len, creto_dsse **out,
		   creto_err *e)
{
	*out = NULL;
	if (type == NULL || !type_ok(type, strlen(type)))
		return creto_err_set(e, CRETO_EUSAGE, "DSSE: payloadType must be 1..%d printable ASCII bytes",
				     CRETO_DSSE_TYPE_MAX);
	if (len > CRETO_DSSE_MAX_BYTES / 2)
		return creto_err_set(e, CRETO_EUSAGE, "DSSE: payload of %zu bytes is too large", len);
	creto_dsse *d = calloc(1, sizeof(*d));
	if (d == NULL || (d->type = strdup(type)) == NULL || (d->payload = malloc(len + 1)) == NULL) {
		creto_dsse_free(d);
		return creto_err_set(e, CRETO_EOP, "out of memory");
	}
	if (len)
		memcpy(d->payload, payload, len);
	d->len = len;
	*out = d;
	return CRETO_OK;
}

void creto_dsse_free(creto_dsse *env)
{
	if (env == NULL)
		return;
	for (size_t i = 0; i < env->nsigs; i++) {
		free(env->sigs[i].keyid);
		free(env->sigs[i].sig);
	}
	free(env->type);
	free(env->payload);
	free(env);
}

int creto_dsse_pae(const char *type, const uint8_t *payload, size_t len, uint8_t **out,
		   size_t *outlen, creto_err *e)
{
	char head[CRETO_DSSE_TYPE_MAX + 64];
	size_t tl = strlen(type);
	*out = NULL;
	*outlen = 0;
	if (tl > CRETO_DSSE_TYPE_MAX)
		return creto_err_set(e, CRETO_EUSAGE, "DSSE: payloadType too long");
	int n = snprintf(head, sizeof(head), "DSSEv1 %zu %s %zu ", tl, type, len);
	if (n < 0 || (size_t)n >= sizeof(head))
		return creto_err_set(e, CRETO_EUSAGE, "DSSE: payloadType too long");
	uint8_t *p = malloc((size_t)n + len + 1);
	if (p == NULL)
		return creto_err_set(e, CRETO_EOP, "out of memory");
	memcpy(p, head, (size_t)n);
	if (len)
		memcpy(p + n, payload, len);
	*out = p;
	*outlen = (size_t)n + len;
	return CRETO_OK;
}

static int is_ecdsa(creto_alg a)
{
	return a == CRETO_ALG_ECDSA_P256 || a == CRETO_ALG_ECDSA_P384;
}

int creto_dsse_sign(creto_dsse *env, creto_signer *s, int keyid_mode, creto_err *e)
{
	uint8_t *pae = NULL, *sig = NULL, *der = NULL;
	size_t paelen = 0, siglen = 0, derlen = 0;
	const creto_pubkey *pk = creto_signer_pubkey(s);
	int rc;
	if (env->nsigs >= CRETO_DSSE_MAX_SIGS)
		return creto_err_set(e, CRETO_EUSAGE, "DSSE: at most %d signatures", CRETO_DSSE_MAX_SIGS);
	rc = creto_dsse_pae(env->type, env->payload, env->len, &pae, &paelen, e);
	if (rc == CRETO_OK)
		rc = creto_signer_sign(s, NULL, 0, pae, paelen, &sig, &siglen, e);
	if (rc == CRETO_OK && is_ecdsa(pk->alg)) {
		rc = creto_ecdsa_raw_to_der(pk->alg, sig, siglen, &der, &derlen, e);
		if (rc == CRETO_OK) {
			free(sig);
			sig = der;
			siglen = derlen;
		}
	}
	if (rc == CRETO_OK) {
		struct dsse_sig *ds = &env->sigs[env->nsigs];
		ds->keyid = strdup(keyid_mode == CRETO_DSSE_KEYID_EMPTY ? "" : pk->id);
		if (ds->keyid == NULL) {
			rc = creto_err_set(e, CRETO_EOP, "out of memory");
		} else {
			ds->sig = sig;
			ds->siglen = siglen;
			sig = NULL;
			env->nsigs++;
		}
	}
	free(sig);
	free(pae);
	return rc;
}

static json_t *b64_json(const uint8_t *p, size_t n)
{
	char *s = malloc(creto_b64_enclen(n, 0) + 1);
	if (s == NULL)
		return NULL;
	creto_b64_encode(s, p, n, 0);
	json_t *j = json_string(s);
	free(s);
	return j;
}

int creto_dsse_to_json(const creto_dsse *env, json_t **out, creto_err *e)
{
	*out = NULL;
	json_t *o = json_object(), *sigs = json_array();
	int bad = o == NULL || sigs == NULL || json_object_set_new(o, "payload", b64_json(env->payload, env->len)) ||
		  json_object_set_new(o, "payloadType", json_string(env->type));
	for (size_t i = 0; !bad && i < env->nsigs; i++) {
		json_t *s = json_object();
		bad = s == NULL || json_object_set_new(s, "keyid", json_string(env->sigs[i].keyid)) ||
		      json_object_set_new(s, "sig", b64_json(env->sigs[i].sig, env->sigs[i].siglen)) ||
		      json_array_append_new(sigs, s);
	}
	if (bad || json_object_set_new(o, "signatures", sigs)) {
		json_decref(o);
		return creto_err_set(e, CRETO_EOP, "out of memory");
	}
	*out = o;
	return CRETO_OK;
}

int creto_dsse_format(const creto_dsse *env, char **out, creto_err *e)
{
	json_t *o = NULL;
	*out = NULL;
	int rc = creto_dsse_to_json(env, &o, e);
	if (rc != CRETO_OK)
		return rc;
	char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (s == NULL)
		return creto_err_set(e, CRETO_EOP, "out of memory");
	size_t n = strlen(s);
	char *t = realloc(s, n + 2);
	if (t == NULL) {
		free(s);
		return creto_err_set(e, CRETO_EOP, "out of memory");
	}
	t[n] = '\n';
	t[n + 1] = 0;
	*out = t;
	return CRETO_OK;
}

/* Strict base64 of a JSON string member into a malloc'ed buffer. */
static int b64_member(const json_t *v, const char *what, size_t max, uint8_t **out, size_t *len,
		      creto_err *e)
{
	*out = NULL;
	*len = 0;
	if (!json_is_string(v))
		return creto_err_set(e, CRETO_EREJECT, "DSSE: %s is not a string", what);
	const char *s = json_string_value(v);
	size_t sl = json_string_length(v);
	size_t cap = creto_b64_declen_max(sl);
	if (cap > max)
		return creto_err_set(e, CRETO_EREJECT, "DSSE: %s too large", what);
	uint8_t *p = malloc(cap + 1);
	if (p == NULL)
		return creto_err_set(e, CRETO_EOP, "out of memory");
	if (creto_b64_decode(p, cap + 1, len, s, sl, 0) != 0) {
		free(p);
		return creto_err_set(e, CRETO_EREJECT, "DSSE: %s is not canonical base64", what);
	}
	*out = p;
	return CRETO_OK;
}

int creto_dsse_from_json(const json_t *obj, creto_dsse **out, creto_err *e)
{
	creto_dsse *d = NULL;
	int rc;
	const char *k;
	json_t *v;
	*out = NULL;
	if (!json_is_object(obj))
		return creto_err_set(e, CRETO_EREJECT, "DSSE: envelope is not a JSON object");
	json_object_foreach((json_t *)obj, k, v) {
		if (strcmp(k, "payload") != 0 && strcmp(k, "payloadType") != 0 && strcmp(k, "signatures") != 0)
			return creto_err_set(e, CRETO_EREJECT, "DSSE: unknown member '%.40s'", k);
	}
	json_t *jp = json_object_get(obj, "payload"), *jt = json_object_get(obj, "payloadType"),
	       *js = json_object_get(obj, "signatures");
	if (jp == NULL || jt == NULL || js == NULL)
		return creto_err_set(e, CRETO_EREJECT, "DSSE: missing %s",
				     jp == NULL ? "payload" : jt == NULL ? "payloadType" : "signatures");
	if (!json_is_string(jt) || !type_ok(json_string_value(jt), json_string_length(jt)) ||
	    strlen(json_string_value(jt)) != json_string_length(jt))
		return creto_err_set(e, CRETO_EREJECT, "DSSE: payloadType must be 1..%d printable ASCII bytes",
				     CRETO_DSSE_TYPE_MAX);
	if (!json_is_array(js) || json_array_size(js) == 0 || json_array_size(js) > CRETO_DSSE_MAX_SIGS)
		return creto_err_set(e, CRETO_EREJECT, "DSSE: signatures must be an array of 1..%d entries",
				     CRETO_DSSE_MAX_SIGS);
	d = calloc(1, sizeof(*d));
	if (d == NULL || (d->type = strdup(json_string_value(jt))) == NULL) {
		rc = creto_err_set(e, CRETO_EOP, "out of memory");
		goto fail;
	}
	if ((rc = b64_member(jp, "payload", CRETO_DSSE_MAX_BYTES, &d->payload, &d->len, e)) != CRETO_OK)
		goto fail;
	for (size_t i = 0; i < json_array_size(js); i++) {
		json_t *s = json_array_get(js, i);
		struct dsse_sig *ds = &d->sigs[i];
		if (!json_is_object(s)) {
			rc = creto_err_set(e, CRETO_EREJECT, "DSSE: signature %zu is not an object", i);
			goto fail;
		}
		json_object_foreach(s, k, v) {
			if (strcmp(k, "keyid") != 0 && strcmp(k, "sig") != 0) {
				rc = creto_err_set(e, CRETO_EREJECT, "DSSE: signature %zu: unknown member '%.40s'", i, k);
				goto fail;
			}
		}
		json_t *jk = json_object_get(s, "keyid");
		if (jk != NULL && (!json_is_string(jk) || json_string_length(jk) > CRETO_DSSE_KEYID_MAX ||
				   strlen(json_string_value(jk)) != json_string_length(jk))) {
			rc = creto_err_set(e, CRETO_EREJECT, "DSSE: signature %zu: bad keyid", i);
			goto fail;
		}
		ds->keyid = strdup(jk ? json_string_value(jk) : "");
		d->nsigs = i + 1;
		if (ds->keyid == NULL) {
			rc = creto_err_set(e, CRETO_EOP, "out of memory");
			goto fail;
		}
		json_t *jg = json_object_get(s, "sig");
		if (jg == NULL) {
			rc = creto_err_set(e, CRETO_EREJECT, "DSSE: signature %zu: missing sig", i);
			goto fail;
		}
		if ((rc = b64_member(jg, "sig", CRETO_SIG_MAX, &ds->sig, &ds->siglen, e)) != CRETO_OK) {
			creto_err_ctx(e, "signature %zu", i);
			goto fail;
		}
	}
	*out = d;
	return CRETO_OK;
fail:
	creto_dsse_free(d);
	return rc;
}

int creto_dsse_parse(const char *text, size_t len, creto_dsse **out, creto_err *e)
{
	json_error_t je;
	*out = NULL;
	if (len > CRETO_DSSE_MAX_BYTES)
		return creto_err_set(e, CRETO_EREJECT, "DSSE: envelope larger than %zu bytes", CRETO_DSSE_MAX_BYTES);
	json_t *o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (o == NULL)
		return creto_err_set(e, CRETO_EREJECT, "DSSE: malformed JSON at line %d: %.80s", je.line, je.text);
	int rc = creto_dsse_from_json(o, out, e);
	json_decref(o);
	return rc;
}

const char *creto_dsse_payload_type(const creto_dsse *env)
{
	return env->type;
}

const uint8_t *creto_dsse_payload_unverified(const creto_dsse *env, size_t *len)
{
	*len = env->len;
	return env->payload;
}

size_t creto_dsse_sig_count(const creto_dsse *env)
{
	return env->nsigs;
}

const char *creto_dsse_sig_keyid(const creto_dsse *env, size_t i)
{
	return i < env->nsigs ? env->sigs[i].keyid : NULL;
}

int creto_dsse_verify_sig(const creto_dsse *env, size_t i, const creto_pubkey *pk, creto_err *e)
{
	uint8_t *pae = NULL;
	size_t paelen = 0;
	uint8_t raw[2 * 48];
	const uint8_t *sig;
	size_t siglen;
	int rc;
	if (i >= env->nsigs)
		return creto_err_set(e, CRETO_EUSAGE, "DSSE: no signature %zu", i);
	const struct dsse_sig *ds = &env->sigs[i];
	if (ds->keyid[0] != 0 && strcmp(ds->keyid, pk->id) != 0)
		return creto_err_set(e, CRETO_EREJECT, "DSSE: signature %zu is by key %.64s, not %s", i, ds->keyid,
				     pk->id);
	sig = ds->sig;
	siglen = ds->siglen;
	if (is_ecdsa(pk->alg)) {
		rc = creto_ecdsa_der_to_raw(pk->alg, ds->sig, ds->siglen, raw, sizeof(raw), &siglen, e);
		if (rc != CRETO_OK)
			return creto_err_ctx(e, "DSSE: signature %zu (key %s)", i, pk->id);
		sig = raw;
	}
	rc = creto_dsse_pae(env->type, env->payload, env->len, &pae, &paelen, e);
	if (rc == CRETO_OK) {
		rc = creto_pubkey_verify(pk, NULL, 0, pae, paelen, sig, siglen, e);
		if (rc != CRETO_OK)
			creto_err_ctx(e, "DSSE: signature %zu (key %s)", i, pk->id);
	}
	free(pae);
	return rc;
}

int creto_dsse_verify(const creto_dsse *env, const creto_pubkey *pk, const char *type,
		      const uint8_t **payload, size_t *len, creto_err *e)
{
	creto_err last;
	int tried = 0;
	if (payload != NULL)
		*payload = NULL;
	if (len != NULL)
		*len = 0;
	if (type != NULL && strcmp(env->type, type) != 0)
		return creto_err_set(e, CRETO_EREJECT, "DSSE: payloadType '%.64s', expected '%.64s'", env->type,
				     type);
	creto_err_clear(&last);
	for (size_t i = 0; i < env->nsigs; i++) {
		const char *k = env->sigs[i].keyid;
		if (k[0] != 0 && strcmp(k, pk->id) != 0)
			continue;
		tried++;
		if (creto_dsse_verify_sig(env, i, pk, &last) == CRETO_OK) {
			if (payload != NULL)
				*payload = env->payload;
			if (len != NULL)
				*len = env->len;
			return CRETO_OK;
		}
	}
	if (tried == 0)
		return creto_err_set(e, CRETO_EREJECT, "DSSE: no signature by key %s (%s)", pk->id,
				     creto_alg_name(pk->alg));
	if (e != NULL)
		*e = last;
	return CRETO_EREJECT;
}
