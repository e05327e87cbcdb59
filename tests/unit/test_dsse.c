/* test_dsse.c - DSSE envelopes: PAE known answer, sign/verify with every
 * algorithm, Sigstore-style ECDSA (DER, empty keyid) made by plain OpenSSL,
 * strict parsing, tampering. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "creto/dsse.h"
#include "util/enc.h"

#define INTOTO "application/vnd.in-toto+json"

static void test_pae(void **state)
{
	(void)state;
	uint8_t *p = NULL;
	size_t n = 0;
	creto_err e;
	/* The example of the DSSE protocol description. */
	assert_int_equal(creto_dsse_pae("http://example.com/HelloWorld", (const uint8_t *)"hello world", 11, &p,
					&n, &e), CRETO_OK);
	const char *want = "DSSEv1 29 http://example.com/HelloWorld 11 hello world";
	assert_int_equal(n, strlen(want));
	assert_memory_equal(p, want, n);
	free(p);
	assert_int_equal(creto_dsse_pae("t", NULL, 0, &p, &n, &e), CRETO_OK);
	assert_int_equal(n, strlen("DSSEv1 1 t 0 "));
	assert_memory_equal(p, "DSSEv1 1 t 0 ", n);
	free(p);
}

static void test_sign_verify_all(void **state)
{
	(void)state;
	static const creto_alg algs[] = {CRETO_ALG_ED25519, CRETO_ALG_ECDSA_P256, CRETO_ALG_ECDSA_P384,
					 CRETO_ALG_MLDSA44, CRETO_ALG_MLDSA65, CRETO_ALG_MLDSA87,
					 CRETO_ALG_HYBRID, CRETO_ALG_HYBRID_CNSA2};
	const char *body = "{\"_type\":\"https://in-toto.io/Statement/v1\"}";
	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
		creto_signer *s = NULL, *other = NULL;
		creto_dsse *env = NULL, *back = NULL;
		creto_err e;
		char *text = NULL;
		assert_int_equal(creto_signer_generate(algs[i], &s, &e), CRETO_OK);
		assert_int_equal(creto_signer_generate(algs[i], &other, &e), CRETO_OK);
		const creto_pubkey *pk = creto_signer_pubkey(s);
		assert_int_equal(creto_dsse_new(INTOTO, (const uint8_t *)body, strlen(body), &env, &e), CRETO_OK);
		assert_int_equal(creto_dsse_sign(env, s, CRETO_DSSE_KEYID_CRETO, &e), CRETO_OK);
		assert_int_equal(creto_dsse_format(env, &text, &e), CRETO_OK);
		assert_int_equal(text[strlen(text) - 1], '\n');
		assert_int_equal(creto_dsse_parse(text, strlen(text), &back, &e), CRETO_OK);
		assert_int_equal(creto_dsse_sig_count(back), 1);
		assert_string_equal(creto_dsse_sig_keyid(back, 0), creto_pubkey_id(pk));
		assert_null(creto_dsse_sig_keyid(back, 1));
		const uint8_t *pl = NULL;
		size_t plen = 0;
		assert_int_equal(creto_dsse_verify(back, pk, INTOTO, &pl, &plen, &e), CRETO_OK);
		assert_int_equal(plen, strlen(body));
		assert_memory_equal(pl, body, plen);
		/* wrong type, wrong key */
		assert_int_equal(creto_dsse_verify(back, pk, "text/plain", &pl, &plen, &e), CRETO_EREJECT);
		assert_null(pl);
		assert_int_equal(creto_dsse_verify(back, creto_signer_pubkey(other), INTOTO, NULL, NULL, &e),
				 CRETO_EREJECT);
		assert_non_null(strstr(e.msg, creto_pubkey_id(creto_signer_pubkey(other))));
		/* the signature is over the PAE, not the bare payload */
		uint8_t *raw = NULL;
		size_t rl = 0;
		assert_int_equal(creto_signer_sign(s, NULL, 0, (const uint8_t *)body, strlen(body), &raw, &rl, &e),
				 CRETO_OK);
		free(raw);
		/* two signatures (M-of-N style): both verify by index */
		assert_int_equal(creto_dsse_sign(env, other, CRETO_DSSE_KEYID_CRETO, &e), CRETO_OK);
		json_t *j = NULL;
		assert_int_equal(creto_dsse_to_json(env, &j, &e), CRETO_OK);
		creto_dsse *two = NULL;
		assert_int_equal(creto_dsse_from_json(j, &two, &e), CRETO_OK);
		json_decref(j);
		assert_int_equal(creto_dsse_verify_sig(two, 0, pk, &e), CRETO_OK);
		assert_int_equal(creto_dsse_verify_sig(two, 1, creto_signer_pubkey(other), &e), CRETO_OK);
		assert_int_equal(creto_dsse_verify_sig(two, 1, pk, &e), CRETO_EREJECT);
		assert_int_equal(creto_dsse_verify_sig(two, 2, pk, &e), CRETO_EUSAGE);
		assert_int_equal(creto_dsse_verify(two, creto_signer_pubkey(other), INTOTO, NULL, NULL, &e), CRETO_OK);
		creto_dsse_free(two);
		creto_dsse_free(back);
		/* tamper with the payload in the text */
		char *b64 = strstr(text, "\"payload\":\"") + 11;
		b64[2] = b64[2] == 'A' ? 'B' : 'A';
		assert_int_equal(creto_dsse_parse(text, strlen(text), &back, &e), CRETO_OK);
		assert_int_equal(creto_dsse_verify(back, pk, INTOTO, NULL, NULL, &e), CRETO_EREJECT);
		creto_dsse_free(back);
		free(text);
		creto_dsse_free(env);
		creto_signer_free(s);
		creto_signer_free(other);
	}
}

/* What model_signing's key method produces: ECDSA P-256/SHA-256 over the
 * PAE, DER-encoded, keyid "" (built here with plain OpenSSL, to the layout
 * of sigstore/model-transparency sign_ec_key.py). */
static void test_sigstore_style_ecdsa(void **state)
{
	(void)state;
	const char *body = "{\"_type\":\"https://in-toto.io/Statement/v1\",\"subject\":[]}";
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	uint8_t pt[65], der[80], *pae = NULL;
	size_t ptl = 0, derl = sizeof(der), pael = 0;
	creto_err e;
	assert_int_equal(EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pt, sizeof(pt), &ptl), 1);
	assert_int_equal(creto_dsse_pae(INTOTO, (const uint8_t *)body, strlen(body), &pae, &pael, &e), CRETO_OK);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	assert_int_equal(EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, k, NULL), 1);
	assert_int_equal(EVP_DigestSign(md, der, &derl, pae, pael), 1);
	EVP_MD_CTX_free(md);
	char pb[256], sb[256], text[1024];
	creto_b64_encode(pb, (const uint8_t *)body, strlen(body), 0);
	creto_b64_encode(sb, der, derl, 0);
	snprintf(text, sizeof(text), "{\"payload\":\"%s\",\"payloadType\":\"%s\",\"signatures\":[{\"sig\":\"%s\",\"keyid\":\"\"}]}",
		 pb, INTOTO, sb);
	creto_pubkey *p = NULL;
	creto_dsse *env = NULL;
	assert_int_equal(creto_pubkey_new(CRETO_ALG_ECDSA_P256, pt, ptl, &p, &e), CRETO_OK);
	assert_int_equal(creto_dsse_parse(text, strlen(text), &env, &e), CRETO_OK);
	assert_int_equal(creto_dsse_verify(env, p, INTOTO, NULL, NULL, &e), CRETO_OK);
	creto_dsse_free(env);
	/* and creto's own ECDSA DSSE signature is DER that OpenSSL verifies */
	creto_signer *s = NULL;
	assert_int_equal(creto_signer_generate(CRETO_ALG_ECDSA_P256, &s, &e), CRETO_OK);
	assert_int_equal(creto_dsse_new(INTOTO, (const uint8_t *)body, strlen(body), &env, &e), CRETO_OK);
	assert_int_equal(creto_dsse_sign(env, s, CRETO_DSSE_KEYID_EMPTY, &e), CRETO_OK);
	json_t *j = NULL;
	assert_int_equal(creto_dsse_to_json(env, &j, &e), CRETO_OK);
	json_t *sig0 = json_array_get(json_object_get(j, "signatures"), 0);
	assert_string_equal(json_string_value(json_object_get(sig0, "keyid")), "");
	const char *sigb64 = json_string_value(json_object_get(sig0, "sig"));
	uint8_t d2[128];
	size_t d2l = 0;
	assert_int_equal(creto_b64_decode(d2, sizeof(d2), &d2l, sigb64, strlen(sigb64), 0), 0);
	assert_int_equal(d2[0], 0x30); /* DER SEQUENCE */
	size_t rl = 0;
	const uint8_t *raw = creto_pubkey_raw(creto_signer_pubkey(s), &rl);
	OSSL_PARAM params[3] = {OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, "P-256", 0),
				OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)raw, rl),
				OSSL_PARAM_construct_end()};
	EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	EVP_PKEY *vk = NULL;
	assert_int_equal(EVP_PKEY_fromdata_init(pc), 1);
	assert_int_equal(EVP_PKEY_fromdata(pc, &vk, EVP_PKEY_PUBLIC_KEY, params), 1);
	md = EVP_MD_CTX_new();
	assert_int_equal(EVP_DigestVerifyInit_ex(md, NULL, "SHA256", NULL, NULL, vk, NULL), 1);
	assert_int_equal(EVP_DigestVerify(md, d2, d2l, pae, pael), 1);
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(vk);
	EVP_PKEY_CTX_free(pc);
	json_decref(j);
	creto_dsse_free(env);
	creto_signer_free(s);
	creto_pubkey_free(p);
	EVP_PKEY_free(k);
	free(pae);
}

static void expect_parse_reject(const char *text, const char *why)
{
	creto_dsse *env = NULL;
	creto_err e;
	if (creto_dsse_parse(text, strlen(text), &env, &e) != CRETO_EREJECT)
		fail_msg("envelope accepted: %s", why);
	assert_null(env);
}

static void test_parse_strict(void **state)
{
	(void)state;
	expect_parse_reject("", "empty");
	expect_parse_reject("[]", "array");
	expect_parse_reject("{\"payload\":\"YQ==\",\"payloadType\":\"t\",\"signatures\":[{\"sig\":\"YQ==\"}]} x",
			    "trailing garbage");
	expect_parse_reject("{\"payload\":\"YQ==\",\"payload\":\"Yg==\",\"payloadType\":\"t\",\"signatures\":[{\"sig\":\"YQ==\"}]}",
			    "duplicate member");
	expect_parse_reject("{\"payload\":\"YQ==\",\"payloadType\":\"t\",\"signatures\":[{\"sig\":\"YQ==\",\"sig\":\"Yg==\"}]}",
			    "duplicate sig");
	expect_parse_reject("{\"payload\":\"YQ==\",\"payloadType\":\"t\",\"signatures\":[]}", "no signatures");
	expect_parse_reject("{\"payload\":\"YQ==\",\"payloadType\":\"t\",\"signatures\":[{}]}", "missing sig");
	expect_parse_reject("{\"payload\":\"YQ\",\"payloadType\":\"t\",\"signatures\":[{\"sig\":\"YQ==\"}]}",
			    "unpadded base64");
	expect_parse_reject("{\"payload\":\"YR==\",\"payloadType\":\"t\",\"signatures\":[{\"sig\":\"YQ==\"}]}",
			    "non-canonical base64");
	expect_parse_reject("{\"payload\":\"YQ==\",\"payloadType\":\"\",\"signatures\":[{\"sig\":\"YQ==\"}]}",
			    "empty type");
	expect_parse_reject("{\"payload\":\"YQ==\",\"payloadType\":\"t\",\"signatures\":[{\"sig\":\"YQ==\"}],\"x\":1}",
			    "unknown member");
	expect_parse_reject("{\"payload\":\"YQ==\",\"payloadType\":\"t\",\"signatures\":[{\"sig\":\"YQ==\",\"x\":1}]}",
			    "unknown signature member");
	expect_parse_reject("{\"payload\":\"YQ==\",\"payloadType\":\"t\",\"signatures\":[{\"sig\":\"YQ==\",\"keyid\":5}]}",
			    "numeric keyid");
	expect_parse_reject("{\"payload\":5,\"payloadType\":\"t\",\"signatures\":[{\"sig\":\"YQ==\"}]}", "numeric payload");
	expect_parse_reject("{\"payloadType\":\"t\",\"signatures\":[{\"sig\":\"YQ==\"}]}", "no payload");
	expect_parse_reject("{\"payload\":\"YQ==\",\"payloadType\":\"a\\u0000b\",\"signatures\":[{\"sig\":\"YQ==\"}]}",
			    "NUL in type");
	/* too many signatures */
	char *big = malloc(100 * 20 + 200);
	strcpy(big, "{\"payload\":\"YQ==\",\"payloadType\":\"t\",\"signatures\":[");
	for (int i = 0; i < CRETO_DSSE_MAX_SIGS + 1; i++)
		strcat(big, i ? ",{\"sig\":\"YQ==\"}" : "{\"sig\":\"YQ==\"}");
	strcat(big, "]}");
	expect_parse_reject(big, "too many signatures");
	free(big);
	/* a minimal valid one parses; keyid absent reads as "" */
	creto_dsse *env = NULL;
	creto_err e;
	const char *ok = "{\"payload\":\"YQ==\",\"payloadType\":\"t\",\"signatures\":[{\"sig\":\"YQ==\"}]}";
	assert_int_equal(creto_dsse_parse(ok, strlen(ok), &env, &e), CRETO_OK);
	assert_string_equal(creto_dsse_sig_keyid(env, 0), "");
	assert_string_equal(creto_dsse_payload_type(env), "t");
	size_t n = 0;
	assert_memory_equal(creto_dsse_payload_unverified(env, &n), "a", 1);
	assert_int_equal(n, 1);
	/* a garbage signature with an empty keyid is tried and rejected */
	creto_signer *s = NULL;
	assert_int_equal(creto_signer_generate(CRETO_ALG_ECDSA_P256, &s, &e), CRETO_OK);
	assert_int_equal(creto_dsse_verify(env, creto_signer_pubkey(s), NULL, NULL, NULL, &e), CRETO_EREJECT);
	creto_signer_free(s);
	creto_dsse_free(env);
	/* usage errors building envelopes */
	assert_int_equal(creto_dsse_new("", (const uint8_t *)"a", 1, &env, &e), CRETO_EUSAGE);
	assert_int_equal(creto_dsse_new("a\nb", (const uint8_t *)"a", 1, &env, &e), CRETO_EUSAGE);
	creto_dsse_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pae),
		cmocka_unit_test(test_sign_verify_all),
		cmocka_unit_test(test_sigstore_style_ecdsa),
		cmocka_unit_test(test_parse_strict),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
