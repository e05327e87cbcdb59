/*
 * bundle.c - signatures over a model manifest: a DSSE envelope over the
 * statement (payloadType application/vnd.in-toto+json) inside a Sigstore
 * bundle v0.3, laid out as sigstore/model-transparency's key method writes
 * it (`_signing/sign_ec_key.py`):
 *
 *   {"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
 *    "verificationMaterial": {"publicKey": {"hint": HINT}, "tlogEntries": []},
 *    "dsseEnvelope": {"payload": B64(statement), "payloadType": ...,
 *                     "signatures": [{"sig": B64(sig), "keyid": KEYID}]}}
 *
 * ECDSA P-256/P-384: HINT = hex SHA-256 of the PEM SubjectPublicKeyInfo
 * text, KEYID "", DER signature: what `model_signing verify key` accepts.
 * Ed25519, ML-DSA and hybrids: the same layout, HINT and KEYID = the creto
 * key id, the algorithm's own signature encoding (docs/model-manifest.md).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include "model/model_internal.h"
#include "util/enc.h"
#include "util/file.h"

#include "creto/dsse.h"

static int is_ecdsa(creto_alg a)
{
	return a == CRETO_ALG_ECDSA_P256 || a == CRETO_ALG_ECDSA_P384;
}

/* hex SHA-256 of the PEM SubjectPublicKeyInfo of an ECDSA public key. */
static int ec_pem_hint(const creto_pubkey *pk, char hex[65], creto_err *e)
{
	size_t rawlen = 0;
	const uint8_t *raw = creto_pubkey_raw(pk, &rawlen);
	const char *group = creto_pubkey_alg(pk) == CRETO_ALG_ECDSA_P256 ? "P-256" : "P-384";
	EVP_PKEY_CTX *pc = NULL;
	EVP_PKEY *pkey = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	BIO *bio = NULL;
	int rc = CRETO_EOP;
	bld = OSSL_PARAM_BLD_new();
	if (bld == NULL ||
	    !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) ||
	    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, raw, rawlen) ||
	    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
	    (pc = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(pc) != 1 ||
	    EVP_PKEY_fromdata(pc, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) {
		rc = creto_err_openssl(e, "public key %s", creto_pubkey_id(pk));
		goto out;
	}
	bio = BIO_new(BIO_s_mem());
	if (bio == NULL || PEM_write_bio_PUBKEY(bio, pkey) != 1) {
		rc = creto_err_openssl(e, "public key %s: PEM", creto_pubkey_id(pk));
		goto out;
	}
	char *pem = NULL;
	long n = BIO_get_mem_data(bio, &pem);
	uint8_t d[CRETO_HASH_MAX];
	if (n <= 0 || (rc = creto_hash_buf(CRETO_HASH_SHA256, pem, (size_t)n, d, e)) != CRETO_OK) {
		if (n <= 0)
			rc = creto_err_set(e, CRETO_EOP, "PEM encoding failed");
		goto out;
	}
	creto_hex_encode(hex, d, 32);
	rc = CRETO_OK;
out:
	BIO_free(bio);
	EVP_PKEY_free(pkey);
	EVP_PKEY_CTX_free(pc);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	return rc;
}

static int key_hint(const creto_pubkey *pk, char hint[65], creto_err *e)
{
	if (is_ecdsa(creto_pubkey_alg(pk)))
		return ec_pem_hint(pk, hint, e);
	strncpy(hint, creto_pubkey_id(pk), 64);
	hint[64] = '\0';
	return CRETO_OK;
}

int creto_model_sign_statement(const uint8_t *statement, size_t len, creto_signer *s,
			       char **out, size_t *outlen, creto_err *e)
{
	*out = NULL;
	*outlen = 0;
	const creto_pubkey *pk = creto_signer_pubkey(s);
	char hint[65];
	creto_dsse *env = NULL;
	json_t *ej = NULL, *b = NULL;
	int rc = key_hint(pk, hint, e);
	if (rc == CRETO_OK)
		rc = creto_dsse_new(CRETO_MODEL_PAYLOAD_TYPE, statement, len, &env, e);
	if (rc == CRETO_OK)
		rc = creto_dsse_sign(env, s,
				     is_ecdsa(creto_pubkey_alg(pk)) ? CRETO_DSSE_KEYID_EMPTY
								    : CRETO_DSSE_KEYID_CRETO, e);
	if (rc == CRETO_OK)
		rc = creto_dsse_to_json(env, &ej, e);
	if (rc != CRETO_OK)
		goto out;
	b = json_pack("{s:s, s:{s:{s:s}, s:[]}, s:O}", "mediaType", CRETO_MODEL_BUNDLE_MEDIA_TYPE,
		      "verificationMaterial", "publicKey", "hint", hint, "tlogEntries", "dsseEnvelope",
		      ej);
	char *txt = b ? json_dumps(b, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
	if (txt == NULL) {
		rc = creto_err_errno(e, ENOMEM, "bundle");
		goto out;
	}
	size_t n = strlen(txt);
	char *t2 = realloc(txt, n + 2);
	if (t2 == NULL) {
		free(txt);
		rc = creto_err_errno(e, ENOMEM, "bundle");
		goto out;
	}
	t2[n] = '\n';
	t2[n + 1] = '\0';
	*out = t2;
	*outlen = n + 1;
out:
	json_decref(b);
	json_decref(ej);
	creto_dsse_free(env);
	if (rc != CRETO_OK)
		(void)creto_err_ctx(e, "sign manifest");
	return rc;
}

static int only_keys(json_t *obj, const char *where, const char *const *allowed, creto_err *e)
{
	const char *k;
	json_t *v;
	if (!json_is_object(obj))
		return creto_err_set(e, CRETO_EREJECT, "%s: missing or not an object", where);
	json_object_foreach(obj, k, v) {
		int ok = 0;
		for (const char *const *a = allowed; *a; a++)
			if (strcmp(*a, k) == 0)
				ok = 1;
		if (!ok)
			return creto_err_set(e, CRETO_EREJECT, "%s: unexpected field '%.64s'", where, k);
	}
	return CRETO_OK;
}

int creto_model_verify_signature(const uint8_t *sig, size_t siglen, const creto_pubkey *pk,
				 uint8_t **statement, size_t *stlen, creto_err *e)
{
	static const char *const top[] = {"mediaType", "verificationMaterial", "dsseEnvelope", NULL};
	static const char *const vm_keys[] = {"publicKey", "tlogEntries", NULL};
	static const char *const pk_keys[] = {"hint", NULL};
	*statement = NULL;
	*stlen = 0;
	if (siglen > CRETO_MODEL_MANIFEST_MAX)
		return creto_err_set(e, CRETO_EREJECT, "signature larger than %u bytes",
				     CRETO_MODEL_MANIFEST_MAX);
	json_error_t je;
	json_t *root = json_loadb((const char *)sig, siglen, JSON_REJECT_DUPLICATES, &je);
	if (root == NULL)
		return creto_err_set(e, CRETO_EREJECT, "invalid JSON at line %d column %d: %s", je.line,
				     je.column, je.text);
	creto_dsse *env = NULL;
	int rc = CRETO_OK;
	if (!json_is_object(root)) {
		rc = creto_err_set(e, CRETO_EREJECT, "not a JSON object");
		goto out;
	}
	if (json_object_get(root, "mediaType") == NULL) {
		/* A bare DSSE envelope. */
		rc = creto_dsse_from_json(root, &env, e);
		goto verify;
	}
	if ((rc = only_keys(root, "bundle", top, e)) != CRETO_OK)
		goto out;
	const char *mt = json_string_value(json_object_get(root, "mediaType"));
	if (mt == NULL || strcmp(mt, CRETO_MODEL_BUNDLE_MEDIA_TYPE) != 0) {
		rc = creto_err_set(e, CRETO_EREJECT, "bundle.mediaType: expected %s",
				   CRETO_MODEL_BUNDLE_MEDIA_TYPE);
		goto out;
	}
	json_t *vm = json_object_get(root, "verificationMaterial");
	if ((rc = only_keys(vm, "bundle.verificationMaterial", vm_keys, e)) != CRETO_OK)
		goto out;
	json_t *tl = json_object_get(vm, "tlogEntries");
	if (tl != NULL && (!json_is_array(tl) || json_array_size(tl) != 0)) {
		/* Transparency-log entries cannot be checked offline; none are expected. */
		rc = creto_err_set(e, CRETO_EREJECT,
				   "bundle.verificationMaterial.tlogEntries: expected an empty list");
		goto out;
	}
	json_t *pkj = json_object_get(vm, "publicKey");
	if ((rc = only_keys(pkj, "bundle.verificationMaterial.publicKey", pk_keys, e)) != CRETO_OK)
		goto out;
	json_t *hj = json_object_get(pkj, "hint");
	if (hj != NULL) {
		char want[65];
		const char *hint = json_string_value(hj);
		if (hint == NULL) {
			rc = creto_err_set(e, CRETO_EREJECT, "bundle.verificationMaterial.publicKey.hint: not a string");
			goto out;
		}
		if ((rc = key_hint(pk, want, e)) != CRETO_OK)
			goto out;
		if (strcmp(hint, want) != 0) {
			rc = creto_err_set(e, CRETO_EREJECT,
					   "bundle.verificationMaterial.publicKey.hint: names another key than %s",
					   creto_pubkey_id(pk));
			goto out;
		}
	}
	rc = creto_dsse_from_json(json_object_get(root, "dsseEnvelope"), &env, e);
	if (rc != CRETO_OK)
		(void)creto_err_ctx(e, "bundle.dsseEnvelope");
verify:
	if (rc != CRETO_OK)
		goto out;
	const uint8_t *p = NULL;
	size_t n = 0;
	rc = creto_dsse_verify(env, pk, CRETO_MODEL_PAYLOAD_TYPE, &p, &n, e);
	if (rc != CRETO_OK)
		goto out;
	*statement = malloc(n ? n : 1);
	if (*statement == NULL) {
		rc = creto_err_errno(e, ENOMEM, "signature");
		goto out;
	}
	memcpy(*statement, p, n);
	*stlen = n;
out:
	creto_dsse_free(env);
	json_decref(root);
	return rc;
}


#define PEM_PUB_HEAD "-----BEGIN PUBLIC KEY-----"

int creto_model_open_pubkey(const char *ref, const creto_keys_opts *opts, creto_pubkey **out,
			    creto_err *e)
{
	*out = NULL;
	if (creto_keys_is_pkcs11(ref))
		return creto_keys_open_pubkey(ref, opts, out, e);
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = creto_file_read(ref, 65536, &buf, &len, e);
	if (rc != CRETO_OK)
		return rc;
	if (len < strlen(PEM_PUB_HEAD) || memcmp(buf, PEM_PUB_HEAD, strlen(PEM_PUB_HEAD)) != 0) {
		free(buf);
		return creto_keys_open_pubkey(ref, opts, out, e);
	}
	BIO *bio = BIO_new_mem_buf(buf, (int)len);
	EVP_PKEY *pkey = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
	uint8_t raw[160];
	size_t rawlen = 0;
	creto_alg alg = CRETO_ALG_NONE;
	if (pkey == NULL) {
		rc = creto_err_set(e, CRETO_EREJECT, "%s: not a valid PEM public key", ref);
		goto out;
	}
	if (EVP_PKEY_is_a(pkey, "ED25519")) {
		alg = CRETO_ALG_ED25519;
		rawlen = sizeof(raw);
		if (EVP_PKEY_get_raw_public_key(pkey, raw, &rawlen) != 1) {
			rc = creto_err_openssl(e, "%s", ref);
			goto out;
		}
	} else if (EVP_PKEY_is_a(pkey, "EC")) {
		char group[64];
		size_t gl = 0;
		if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
						   &gl) != 1) {
			rc = creto_err_set(e, CRETO_EREJECT, "%s: EC key without a named curve", ref);
			goto out;
		}
		if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0)
			alg = CRETO_ALG_ECDSA_P256;
		else if (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0)
			alg = CRETO_ALG_ECDSA_P384;
		else {
			rc = creto_err_set(e, CRETO_EREJECT, "%s: unsupported curve %s", ref, group);
			goto out;
		}
		(void)EVP_PKEY_set_utf8_string_param(pkey, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
						     "uncompressed");
		if (EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_PUB_KEY, raw, sizeof(raw),
						    &rawlen) != 1) {
			rc = creto_err_openssl(e, "%s", ref);
			goto out;
		}
	} else {
		rc = creto_err_set(e, CRETO_EREJECT, "%s: PEM key type not supported (ECDSA P-256/P-384, Ed25519)",
				   ref);
		goto out;
	}
	rc = creto_pubkey_new(alg, raw, rawlen, out, e);
	if (rc != CRETO_OK)
		(void)creto_err_ctx(e, "%s", ref);
out:
	EVP_PKEY_free(pkey);
	BIO_free(bio);
	free(buf);
	return rc;
}
