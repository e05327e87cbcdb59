/* test_sig.c - unit tests for src/sig: algorithms, RFC 8032 vectors, ECDSA
 * interop with plain OpenSSL, contexts, hybrids (corruption, swapping,
 * stripping), bit flips of signature, message and public key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

#include "creto/sig.h"
#include "util/enc.h"

static const creto_alg all_algs[] = {CRETO_ALG_ED25519, CRETO_ALG_ECDSA_P256, CRETO_ALG_ECDSA_P384,
				     CRETO_ALG_MLDSA44, CRETO_ALG_MLDSA65, CRETO_ALG_MLDSA87,
				     CRETO_ALG_HYBRID,  CRETO_ALG_HYBRID_CNSA2};
#define NALGS (sizeof(all_algs) / sizeof(all_algs[0]))

static uint8_t *unhex(const char *h, size_t *n)
{
	size_t l = strlen(h);
	uint8_t *p = malloc(l / 2 + 1);
	assert_non_null(p);
	assert_int_equal(creto_hex_decode(p, l / 2 + 1, n, h, l), 0);
	return p;
}

static creto_signer *gen(creto_alg alg)
{
	creto_signer *s = NULL;
	creto_err e;
	assert_int_equal(creto_signer_generate(alg, &s, &e), CRETO_OK);
	return s;
}

static void test_alg_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < NALGS; i++) {
		const char *n = creto_alg_name(all_algs[i]);
		assert_non_null(n);
		assert_int_equal(creto_alg_from_name(n), all_algs[i]);
		assert_true(creto_alg_pub_len(all_algs[i]) <= CRETO_PUB_MAX);
		assert_true(creto_alg_sig_len(all_algs[i]) <= CRETO_SIG_MAX);
	}
	assert_null(creto_alg_name(CRETO_ALG_NONE));
	assert_int_equal(creto_alg_from_name("rsa"), CRETO_ALG_NONE);
	assert_int_equal(creto_alg_from_name(NULL), CRETO_ALG_NONE);
	assert_int_equal(creto_alg_sig_len(CRETO_ALG_HYBRID), 64 + 3309);
	assert_int_equal(creto_alg_pub_len(CRETO_ALG_HYBRID_CNSA2), 97 + 2592);
	assert_int_equal(creto_alg_hybrid_classical(CRETO_ALG_HYBRID_CNSA2), CRETO_ALG_ECDSA_P384);
	assert_int_equal(creto_alg_hybrid_pq(CRETO_ALG_HYBRID), CRETO_ALG_MLDSA65);
	assert_int_equal(creto_alg_hybrid_pq(CRETO_ALG_ED25519), CRETO_ALG_NONE);
	assert_true(creto_alg_is_hybrid(CRETO_ALG_HYBRID));
	assert_false(creto_alg_is_hybrid(CRETO_ALG_MLDSA65));
}

/* RFC 8032 §7.1, TEST 1, 2, 3 and 1024 (1023-byte message). */
static const char msg1023[] =
	"08b8b2b733424243760fe426a4b54908632110a66c2f6591eabd3345e3e4eb98fa6e264bf09efe12ee50f8f54e9f77b1e3"
	"55f6c50544e23fb1433ddf73be84d879de7c0046dc4996d9e773f4bc9efe5738829adb26c81b37c93a1b270b20329d6586"
	"75fc6ea534e0810a4432826bf58c941efb65d57a338bbd2e26640f89ffbc1a858efcb8550ee3a5e1998bd177e93a7363c3"
	"44fe6b199ee5d02e82d522c4feba15452f80288a821a579116ec6dad2b3b310da903401aa62100ab5d1a36553e06203b33"
	"890cc9b832f79ef80560ccb9a39ce767967ed628c6ad573cb116dbefefd75499da96bd68a8a97b928a8bbc103b6621fcde"
	"2beca1231d206be6cd9ec7aff6f6c94fcd7204ed3455c68c83f4a41da4af2b74ef5c53f1d8ac70bdcb7ed185ce81bd8435"
	"9d44254d95629e9855a94a7c1958d1f8ada5d0532ed8a5aa3fb2d17ba70eb6248e594e1a2297acbbb39d502f1a8c6eb6f1"
	"ce22b3de1a1f40cc24554119a831a9aad6079cad88425de6bde1a9187ebb6092cf67bf2b13fd65f27088d78b7e883c8759"
	"d2c4f5c65adb7553878ad575f9fad878e80a0c9ba63bcbcc2732e69485bbc9c90bfbd62481d9089beccf80cfe2df16a2cf"
	"65bd92dd597b0707e0917af48bbb75fed413d238f5555a7a569d80c3414a8d0859dc65a46128bab27af87a71314f318c78"
	"2b23ebfe808b82b0ce26401d2e22f04d83d1255dc51addd3b75a2b1ae0784504df543af8969be3ea7082ff7fc9888c144d"
	"a2af58429ec96031dbcad3dad9af0dcbaaaf268cb8fcffead94f3c7ca495e056a9b47acdb751fb73e666c6c655ade82972"
	"97d07ad1ba5e43f1bca32301651339e22904cc8c42f58c30c04aafdb038dda0847dd988dcda6f3bfd15c4b4c4525004aa0"
	"6eeff8ca61783aacec57fb3d1f92b0fe2fd1a85f6724517b65e614ad6808d6f6ee34dff7310fdc82aebfd904b01e1dc54b"
	"2927094b2db68d6f903b68401adebf5a7e08d78ff4ef5d63653a65040cf9bfd4aca7984a74d37145986780fc0b16ac4516"
	"49de6188a7dbdf191f64b5fc5e2ab47b57f7f7276cd419c17a3ca8e1b939ae49e488acba6b965610b5480109c8b17b80e1"
	"b7b750dfc7598d5d5011fd2dcc5600a32ef5b52a1ecc820e308aa342721aac0943bf6686b64b2579376504ccc493d97e6a"
	"ed3fb0f9cd71a43dd497f01f17c0e2cb3797aa2a2f256656168e6c496afc5fb93246f6b1116398a346f1a641f3b041e989"
	"f7914f90cc2c7fff357876e506b50d334ba77c225bc307ba537152f3f1610e4eafe595f6d9d90d11faa933a15ef1369546"
	"868a7f3a45a96768d40fd9d03412c091c6315cf4fde7cb68606937380db2eaaa707b4c4185c32eddcdd306705e4dc1ffc8"
	"72eeee475a64dfac86aba41c0618983f8741c5ef68d3a101e8a3b8cac60c905c15fc910840b94c00a0b9d0";

static const struct {
	const char *sk, *pk, *msg, *sig;
} rfc8032[] = {
	{"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
	 "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
	 "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46b"
	 "d25bf5f0595bbe24655141438e7a100b"},
	{"4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
	 "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
	 "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c"
	 "387b2eaeb4302aeeb00d291612bb0c00"},
	{"c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
	 "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
	 "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc659"
	 "4a7c15e9716ed28dc027beceea1ec40a"},
	{"f5e5767cf153319517630f226876b86c8160cc583bc013744c6bf255f5cc0ee5",
	 "278117fc144c72340f67d0f2316e8386ceffbf2b2428c9c51fef7c597f1d426e", msg1023,
	 "0aab4c900501b3e24d7cdf4663326a3a87df5e4843b2cbdb67cbf6e460fec350aa5371b1508f9f4528ecea23c436d94b"
	 "5e8fcd4f681e30a6ac00a9704a188a03"},
};

static void test_ed25519_rfc8032(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(rfc8032) / sizeof(rfc8032[0]); i++) {
		size_t skl, pkl, ml, sl, rl, gotl;
		uint8_t *sk = unhex(rfc8032[i].sk, &skl), *pk = unhex(rfc8032[i].pk, &pkl),
			*m = unhex(rfc8032[i].msg, &ml), *sig = unhex(rfc8032[i].sig, &sl), *got = NULL;
		creto_signer *s = NULL;
		creto_pubkey *p = NULL;
		creto_err e;
		if (i == 3)
			assert_int_equal(ml, 1023);
		assert_int_equal(creto_signer_from_secret(CRETO_ALG_ED25519, sk, skl, &s, &e), CRETO_OK);
		const uint8_t *raw = creto_pubkey_raw(creto_signer_pubkey(s), &rl);
		assert_int_equal(rl, 32);
		assert_memory_equal(raw, pk, 32);
		assert_int_equal(creto_signer_sign(s, NULL, 0, m, ml, &got, &gotl, &e), CRETO_OK);
		assert_int_equal(gotl, 64);
		assert_memory_equal(got, sig, 64);
		assert_int_equal(creto_pubkey_new(CRETO_ALG_ED25519, pk, pkl, &p, &e), CRETO_OK);
		assert_int_equal(creto_pubkey_verify(p, NULL, 0, m, ml, sig, sl, &e), CRETO_OK);
		sig[10] ^= 1;
		assert_int_equal(creto_pubkey_verify(p, NULL, 0, m, ml, sig, sl, &e), CRETO_EREJECT);
		if (i == 0) /* key id: first 8 bytes of SHA-256("ed25519" 0x00 pk) */
			assert_string_equal(creto_pubkey_id(p), "40302329e41f3cc7");
		free(got);
		creto_pubkey_free(p);
		creto_signer_free(s);
		free(sk);
		free(pk);
		free(m);
		free(sig);
	}
}

/* Plain OpenSSL ECDSA (no creto involvement) must verify here, and the
 * other way round: empty context means the standard signature. */
static void test_ecdsa_openssl_interop(void **state)
{
	(void)state;
	static const struct {
		creto_alg alg;
		const char *curve, *md;
	} cases[] = {{CRETO_ALG_ECDSA_P256, "P-256", "SHA256"}, {CRETO_ALG_ECDSA_P384, "P-384", "SHA384"}};
	const uint8_t msg[] = "interop message";
	for (size_t i = 0; i < 2; i++) {
		EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", cases[i].curve);
		assert_non_null(k);
		uint8_t pt[200], der[200], raw[96], *der2 = NULL;
		size_t ptl = 0, derl = sizeof(der), rawl = 0, der2l = 0;
		assert_int_equal(EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pt,
								 sizeof(pt), &ptl), 1);
		creto_pubkey *p = NULL;
		creto_err e;
		assert_int_equal(creto_pubkey_new(cases[i].alg, pt, ptl, &p, &e), CRETO_OK);
		EVP_MD_CTX *md = EVP_MD_CTX_new();
		assert_int_equal(EVP_DigestSignInit_ex(md, NULL, cases[i].md, NULL, NULL, k, NULL), 1);
		assert_int_equal(EVP_DigestSign(md, der, &derl, msg, sizeof(msg)), 1);
		EVP_MD_CTX_free(md);
		assert_int_equal(creto_ecdsa_der_to_raw(cases[i].alg, der, derl, raw, sizeof(raw), &rawl, &e),
				 CRETO_OK);
		assert_int_equal(rawl, creto_alg_sig_len(cases[i].alg));
		assert_int_equal(creto_pubkey_verify(p, NULL, 0, msg, sizeof(msg), raw, rawl, &e), CRETO_OK);
		/* round trip back to identical DER */
		assert_int_equal(creto_ecdsa_raw_to_der(cases[i].alg, raw, rawl, &der2, &der2l, &e), CRETO_OK);
		assert_int_equal(der2l, derl);
		assert_memory_equal(der2, der, derl);
		free(der2);
		/* with a context the same signature must not verify */
		assert_int_equal(creto_pubkey_verify(p, (const uint8_t *)"c", 1, msg, sizeof(msg), raw, rawl, &e),
				 CRETO_EREJECT);
		/* non-canonical DER: trailing byte, and a wrong algorithm */
		der[derl] = 0;
		assert_int_equal(creto_ecdsa_der_to_raw(cases[i].alg, der, derl + 1, raw, sizeof(raw), &rawl, &e),
				 CRETO_EREJECT);
		assert_int_equal(creto_ecdsa_der_to_raw(CRETO_ALG_ED25519, der, derl, raw, sizeof(raw), &rawl, &e),
				 CRETO_EUSAGE);
		creto_pubkey_free(p);
		EVP_PKEY_free(k);
	}
}

/* The hand-written DER of r||s agrees with OpenSSL's i2d/d2i on values with
 * leading zeros and high bits, zero, and the largest width; every
 * non-canonical or malformed encoding is refused (as d2i + re-encode did). */
static void test_ecdsa_der_vs_openssl(void **state)
{
	(void)state;
	const creto_alg algs[] = {CRETO_ALG_ECDSA_P256, CRETO_ALG_ECDSA_P384};
	for (size_t a = 0; a < 2; a++) {
		size_t w = algs[a] == CRETO_ALG_ECDSA_P256 ? 32 : 48;
		for (int t = 0; t < 4000; t++) {
			uint8_t raw[96], back[96];
			assert_int_equal(RAND_bytes(raw, (int)(2 * w)), 1);
			int shape = t % 8; /* leading zero bytes, high bits, zero values */
			if (shape == 1)
				memset(raw, 0, (size_t)(t % (int)w));
			if (shape == 2)
				memset(raw + w, 0, (size_t)(t % (int)w));
			if (shape == 3)
				raw[0] |= 0x80, raw[w] |= 0x80;
			if (shape == 4)
				memset(raw, 0, w);
			if (shape == 5)
				raw[0] = 0, raw[1] |= 0x80;
			if (shape == 6)
				raw[0] = 0, raw[1] = 0x7f;
			uint8_t *der = NULL, *ref = NULL;
			size_t dl = 0, bl = 0;
			creto_err e;
			assert_int_equal(creto_ecdsa_raw_to_der(algs[a], raw, 2 * w, &der, &dl, &e), CRETO_OK);
			ECDSA_SIG *s = ECDSA_SIG_new();
			BIGNUM *r = BN_bin2bn(raw, (int)w, NULL), *sv = BN_bin2bn(raw + w, (int)w, NULL);
			assert_int_equal(ECDSA_SIG_set0(s, r, sv), 1);
			int rl = i2d_ECDSA_SIG(s, &ref);
			assert_true(rl > 0);
			assert_int_equal(dl, (size_t)rl);
			assert_memory_equal(der, ref, dl);
			assert_int_equal(creto_ecdsa_der_to_raw(algs[a], der, dl, back, sizeof(back), &bl, &e),
					 CRETO_OK);
			assert_int_equal(bl, 2 * w);
			assert_memory_equal(back, raw, 2 * w);
			/* every one-byte change is refused or decodes to what
			 * OpenSSL's strict d2i + re-encode also accepts */
			uint8_t m[128];
			memcpy(m, der, dl);
			size_t i = (size_t)t % dl;
			m[i] ^= (uint8_t)(1u << (t % 8));
			const unsigned char *pp = m;
			ECDSA_SIG *s2 = d2i_ECDSA_SIG(NULL, &pp, (long)dl);
			unsigned char *re = NULL;
			int ok_ref = 0;
			if (s2 != NULL && (size_t)(pp - m) == dl && i2d_ECDSA_SIG(s2, &re) == (int)dl &&
			    memcmp(re, m, dl) == 0) {
				const BIGNUM *r2, *s2v;
				ECDSA_SIG_get0(s2, &r2, &s2v);
				ok_ref = BN_num_bytes(r2) <= (int)w && BN_num_bytes(s2v) <= (int)w;
			}
			ERR_clear_error();
			int ours = creto_ecdsa_der_to_raw(algs[a], m, dl, back, sizeof(back), &bl, &e);
			assert_int_equal(ours == CRETO_OK, ok_ref);
			OPENSSL_free(re);
			ECDSA_SIG_free(s2);
			OPENSSL_free(ref);
			ECDSA_SIG_free(s);
			free(der);
		}
	}
	/* hand-made refusals */
	static const uint8_t bad[][10] = {
		{0x30, 0x06, 0x02, 0x01, 0x80, 0x02, 0x01, 0x01},       /* negative r */
		{0x30, 0x07, 0x02, 0x02, 0x00, 0x01, 0x02, 0x01, 0x01}, /* r not minimal */
		{0x30, 0x05, 0x02, 0x00, 0x02, 0x01, 0x01},             /* empty INTEGER */
		{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01},             /* s cut short */
		{0x30, 0x81, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01}, /* long-form length */
		{0x31, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01},       /* SET, not SEQUENCE */
	};
	static const size_t badlen[] = {8, 9, 7, 7, 9, 8};
	for (size_t i = 0; i < sizeof(badlen) / sizeof(badlen[0]); i++) {
		uint8_t raw[64];
		size_t rl = 0;
		creto_err e;
		assert_int_equal(creto_ecdsa_der_to_raw(CRETO_ALG_ECDSA_P256, bad[i], badlen[i], raw, sizeof(raw),
							&rl, &e),
				 CRETO_EREJECT);
	}
	/* a 33-byte value (over the width) is refused */
	uint8_t big[2 + 2 + 33 + 3];
	big[0] = 0x30;
	big[1] = (uint8_t)(sizeof(big) - 2);
	big[2] = 0x02;
	big[3] = 33;
	memset(big + 4, 0x11, 33);
	big[37] = 0x02, big[38] = 0x01, big[39] = 0x01;
	uint8_t raw[64];
	size_t rl = 0;
	creto_err e;
	assert_int_equal(creto_ecdsa_der_to_raw(CRETO_ALG_ECDSA_P256, big, sizeof(big), raw, sizeof(raw), &rl, &e),
			 CRETO_EREJECT);
}

/* Each algorithm: sign and verify, with and without context; length and
 * context errors. */
static void test_round_trip_all(void **state)
{
	(void)state;
	const uint8_t msg[] = "the message";
	for (size_t i = 0; i < NALGS; i++) {
		creto_signer *s = gen(all_algs[i]);
		const creto_pubkey *p = creto_signer_pubkey(s);
		uint8_t *sig = NULL, *big = NULL;
		size_t sl = 0;
		creto_err e;
		assert_int_equal(creto_pubkey_alg(p), all_algs[i]);
		assert_int_equal(strlen(creto_pubkey_id(p)), 16);
		assert_int_equal(creto_signer_sign(s, (const uint8_t *)"ctx", 3, msg, sizeof(msg), &sig, &sl, &e),
				 CRETO_OK);
		assert_int_equal(sl, creto_alg_sig_len(all_algs[i]));
		assert_int_equal(creto_pubkey_verify(p, (const uint8_t *)"ctx", 3, msg, sizeof(msg), sig, sl, &e),
				 CRETO_OK);
		/* wrong / missing context */
		assert_int_equal(creto_pubkey_verify(p, (const uint8_t *)"ctX", 3, msg, sizeof(msg), sig, sl, &e),
				 CRETO_EREJECT);
		assert_int_equal(creto_pubkey_verify(p, NULL, 0, msg, sizeof(msg), sig, sl, &e), CRETO_EREJECT);
		/* truncated, over-long, empty */
		big = calloc(1, sl + 1);
		memcpy(big, sig, sl);
		assert_int_equal(creto_pubkey_verify(p, (const uint8_t *)"ctx", 3, msg, sizeof(msg), big, sl - 1, &e),
				 CRETO_EREJECT);
		assert_non_null(strstr(e.msg, "signature length"));
		assert_int_equal(creto_pubkey_verify(p, (const uint8_t *)"ctx", 3, msg, sizeof(msg), big, sl + 1, &e),
				 CRETO_EREJECT);
		assert_int_equal(creto_pubkey_verify(p, (const uint8_t *)"ctx", 3, msg, sizeof(msg), big, 0, &e),
				 CRETO_EREJECT);
		/* context of 256 bytes is a usage error on both sides */
		uint8_t longctx[256];
		memset(longctx, 'c', sizeof(longctx));
		uint8_t *s2 = NULL;
		size_t s2l = 0;
		assert_int_equal(creto_signer_sign(s, longctx, 256, msg, sizeof(msg), &s2, &s2l, &e), CRETO_EUSAGE);
		assert_null(s2);
		assert_int_equal(creto_pubkey_verify(p, longctx, 256, msg, sizeof(msg), sig, sl, &e), CRETO_EUSAGE);
		assert_int_equal(creto_signer_sign(s, longctx, 255, msg, sizeof(msg), &s2, &s2l, &e), CRETO_OK);
		assert_int_equal(creto_pubkey_verify(p, longctx, 255, msg, sizeof(msg), s2, s2l, &e), CRETO_OK);
		/* empty message */
		free(s2);
		assert_int_equal(creto_signer_sign(s, NULL, 0, NULL, 0, &s2, &s2l, &e), CRETO_OK);
		assert_int_equal(creto_pubkey_verify(p, NULL, 0, NULL, 0, s2, s2l, &e), CRETO_OK);
		/* dup and equal */
		creto_pubkey *d = NULL;
		assert_int_equal(creto_pubkey_dup(p, &d, &e), CRETO_OK);
		assert_true(creto_pubkey_equal(p, d));
		assert_string_equal(creto_pubkey_id(p), creto_pubkey_id(d));
		creto_pubkey_free(d);
		assert_string_equal(creto_signer_kind(s), creto_alg_is_hybrid(all_algs[i]) ? "hybrid(file)" : "file");
		free(s2);
		free(big);
		free(sig);
		creto_signer_free(s);
	}
}

/* Flip bits of the signature, the message and the public key: every flip
 * must be rejected.  Classical: every bit.  ML-DSA and hybrids (kilobytes
 * of signature and key, slower verify), sampled as the issue allows: every
 * bit of the first and last 8 bytes, of 16 bytes around each place where a
 * hybrid's classical half ends (32, 64, 96, 97) and of every 127th byte;
 * every bit of every 3rd message byte. */
static int sampled(size_t byte, size_t len, int every)
{
	return every || byte < 8 || byte + 8 >= len || (byte >= 24 && byte < 40) ||
	       (byte >= 56 && byte < 72) || (byte >= 88 && byte < 105) || byte % 127 == 0;
}

static void test_bit_flips(void **state)
{
	(void)state;
	uint8_t msg[48];
	memset(msg, 0x5a, sizeof(msg));
	for (size_t i = 0; i < NALGS; i++) {
		creto_alg alg = all_algs[i];
		int every = !creto_alg_is_hybrid(alg) && alg < CRETO_ALG_MLDSA44;
		creto_signer *s = gen(alg);
		const creto_pubkey *p = creto_signer_pubkey(s);
		uint8_t *sig = NULL;
		size_t sl = 0, pl = 0, n = 0;
		creto_err e;
		assert_int_equal(creto_signer_sign(s, NULL, 0, msg, sizeof(msg), &sig, &sl, &e), CRETO_OK);
		for (size_t b = 0; b < sl; b++) {
			if (!sampled(b, sl, every))
				continue;
			for (int bit = 0; bit < 8; bit++, n++) {
				sig[b] ^= (uint8_t)(1u << bit);
				if (creto_pubkey_verify(p, NULL, 0, msg, sizeof(msg), sig, sl, &e) != CRETO_EREJECT)
					fail_msg("%s: sig flip byte %zu bit %d accepted", creto_alg_name(alg), b, bit);
				sig[b] ^= (uint8_t)(1u << bit);
			}
		}
		for (size_t b = 0; b < sizeof(msg); b += every ? 1 : 3)
			for (int bit = 0; bit < 8; bit++, n++) {
				msg[b] ^= (uint8_t)(1u << bit);
				if (creto_pubkey_verify(p, NULL, 0, msg, sizeof(msg), sig, sl, &e) != CRETO_EREJECT)
					fail_msg("%s: msg flip byte %zu bit %d accepted", creto_alg_name(alg), b, bit);
				msg[b] ^= (uint8_t)(1u << bit);
			}
		const uint8_t *raw = creto_pubkey_raw(p, &pl);
		uint8_t *pk = malloc(pl);
		memcpy(pk, raw, pl);
		for (size_t b = 0; b < pl; b++) {
			if (!sampled(b, pl, every))
				continue;
			for (int bit = 0; bit < 8; bit++, n++) {
				creto_pubkey *q = NULL;
				pk[b] ^= (uint8_t)(1u << bit);
				/* either the key is refused outright or the signature is */
				if (creto_pubkey_new(alg, pk, pl, &q, &e) == CRETO_OK) {
					if (creto_pubkey_verify(q, NULL, 0, msg, sizeof(msg), sig, sl, &e) != CRETO_EREJECT)
						fail_msg("%s: pk flip byte %zu bit %d accepted", creto_alg_name(alg), b, bit);
					creto_pubkey_free(q);
				} else {
					assert_int_equal(e.code, CRETO_EREJECT);
				}
				pk[b] ^= (uint8_t)(1u << bit);
			}
		}
		assert_int_equal(creto_pubkey_verify(p, NULL, 0, msg, sizeof(msg), sig, sl, &e), CRETO_OK);
		assert_true(n > 700);
		free(pk);
		free(sig);
		creto_signer_free(s);
	}
}

/* Hybrid: either half corrupted, halves swapped between two hybrid keys,
 * and stripping: a half presented as a stand-alone signature. */
static void test_hybrid_binding(void **state)
{
	(void)state;
	static const creto_alg hy[] = {CRETO_ALG_HYBRID, CRETO_ALG_HYBRID_CNSA2};
	const uint8_t msg[] = "officer approves update 42";
	for (size_t h = 0; h < 2; h++) {
		creto_alg alg = hy[h], ca = creto_alg_hybrid_classical(alg), qa = creto_alg_hybrid_pq(alg);
		size_t cls = creto_alg_sig_len(ca), cpl = creto_alg_pub_len(ca), pl = 0;
		creto_signer *a = gen(alg), *b = gen(alg);
		const creto_pubkey *pa = creto_signer_pubkey(a), *pb = creto_signer_pubkey(b);
		uint8_t *sa = NULL, *sb = NULL;
		size_t sal = 0, sbl = 0;
		creto_err e;
		assert_int_equal(creto_signer_sign(a, NULL, 0, msg, sizeof(msg), &sa, &sal, &e), CRETO_OK);
		assert_int_equal(creto_signer_sign(b, NULL, 0, msg, sizeof(msg), &sb, &sbl, &e), CRETO_OK);
		uint8_t *mix = malloc(sal);
		/* classical half corrupted */
		memcpy(mix, sa, sal);
		mix[3] ^= 0x80;
		assert_int_equal(creto_pubkey_verify(pa, NULL, 0, msg, sizeof(msg), mix, sal, &e), CRETO_EREJECT);
		assert_non_null(strstr(e.msg, creto_alg_name(ca)));
		/* ML-DSA half corrupted */
		memcpy(mix, sa, sal);
		mix[cls + 100] ^= 0x01;
		assert_int_equal(creto_pubkey_verify(pa, NULL, 0, msg, sizeof(msg), mix, sal, &e), CRETO_EREJECT);
		assert_non_null(strstr(e.msg, creto_alg_name(qa)));
		/* swapped halves: a's classical + b's ML-DSA, and the reverse */
		memcpy(mix, sa, cls);
		memcpy(mix + cls, sb + cls, sal - cls);
		assert_int_equal(creto_pubkey_verify(pa, NULL, 0, msg, sizeof(msg), mix, sal, &e), CRETO_EREJECT);
		assert_int_equal(creto_pubkey_verify(pb, NULL, 0, msg, sizeof(msg), mix, sal, &e), CRETO_EREJECT);
		/* a hybrid key made of a's classical half and b's ML-DSA half
		 * accepts neither a's nor b's signature nor the mix */
		const uint8_t *ra = creto_pubkey_raw(pa, &pl), *rb = creto_pubkey_raw(pb, &pl);
		uint8_t *rmix = malloc(pl);
		memcpy(rmix, ra, cpl);
		memcpy(rmix + cpl, rb + cpl, pl - cpl);
		creto_pubkey *pm = NULL;
		assert_int_equal(creto_pubkey_new(alg, rmix, pl, &pm, &e), CRETO_OK);
		assert_int_equal(creto_pubkey_verify(pm, NULL, 0, msg, sizeof(msg), mix, sal, &e), CRETO_EREJECT);
		assert_int_equal(creto_pubkey_verify(pm, NULL, 0, msg, sizeof(msg), sa, sal, &e), CRETO_EREJECT);
		assert_int_equal(creto_pubkey_verify(pm, NULL, 0, msg, sizeof(msg), sb, sal, &e), CRETO_EREJECT);
		creto_pubkey_free(pm);
		/* stripping: the classical half as a plain signature by the
		 * classical key, with or without context */
		creto_pubkey *pc = NULL, *pq = NULL;
		assert_int_equal(creto_pubkey_new(ca, ra, cpl, &pc, &e), CRETO_OK);
		assert_int_equal(creto_pubkey_verify(pc, NULL, 0, msg, sizeof(msg), sa, cls, &e), CRETO_EREJECT);
		assert_int_equal(creto_pubkey_verify(pc, (const uint8_t *)"creto-hybrid-v1", 15, msg, sizeof(msg),
						     sa, cls, &e), CRETO_EREJECT);
		/* and the ML-DSA half as a plain ML-DSA signature */
		assert_int_equal(creto_pubkey_new(qa, ra + cpl, pl - cpl, &pq, &e), CRETO_OK);
		assert_int_equal(creto_pubkey_verify(pq, NULL, 0, msg, sizeof(msg), sa + cls, sal - cls, &e),
				 CRETO_EREJECT);
		assert_int_equal(creto_pubkey_verify(pq, (const uint8_t *)"creto-hybrid-v1", 15, msg, sizeof(msg),
						     sa + cls, sal - cls, &e), CRETO_EREJECT);
		creto_signer *c1 = NULL;
		/* hybrid signers only join a known pair */
		assert_int_equal(creto_signer_hybrid_new(gen(CRETO_ALG_ED25519), gen(CRETO_ALG_MLDSA87), &c1, &e),
				 CRETO_EUSAGE);
		assert_null(c1);
		creto_pubkey_free(pc);
		creto_pubkey_free(pq);
		free(rmix);
		free(mix);
		free(sa);
		free(sb);
		creto_signer_free(a);
		creto_signer_free(b);
	}
}

/* A signature of one algorithm offered to another algorithm's key. */
static void test_cross_algorithm(void **state)
{
	(void)state;
	const uint8_t msg[] = "cross";
	creto_signer *s[NALGS];
	uint8_t *sig[NALGS];
	size_t sl[NALGS];
	creto_err e;
	for (size_t i = 0; i < NALGS; i++) {
		s[i] = gen(all_algs[i]);
		assert_int_equal(creto_signer_sign(s[i], NULL, 0, msg, sizeof(msg), &sig[i], &sl[i], &e), CRETO_OK);
	}
	for (size_t i = 0; i < NALGS; i++)
		for (size_t j = 0; j < NALGS; j++) {
			int rc = creto_pubkey_verify(creto_signer_pubkey(s[j]), NULL, 0, msg, sizeof(msg), sig[i],
						     sl[i], &e);
			assert_int_equal(rc, i == j ? CRETO_OK : CRETO_EREJECT);
		}
	for (size_t i = 0; i < NALGS; i++) {
		free(sig[i]);
		creto_signer_free(s[i]);
	}
}

static void test_pubkey_validation(void **state)
{
	(void)state;
	creto_pubkey *p = NULL;
	creto_err e;
	uint8_t pt[97];
	/* P-256 point not on the curve */
	memset(pt, 0, sizeof(pt));
	pt[0] = 4;
	pt[64] = 1;
	assert_int_equal(creto_pubkey_new(CRETO_ALG_ECDSA_P256, pt, 65, &p, &e), CRETO_EREJECT);
	assert_null(p);
	/* compressed and infinity encodings refused */
	pt[0] = 2;
	assert_int_equal(creto_pubkey_new(CRETO_ALG_ECDSA_P256, pt, 65, &p, &e), CRETO_EREJECT);
	pt[0] = 0;
	assert_int_equal(creto_pubkey_new(CRETO_ALG_ECDSA_P256, pt, 1, &p, &e), CRETO_EREJECT);
	/* wrong lengths */
	assert_int_equal(creto_pubkey_new(CRETO_ALG_ED25519, pt, 31, &p, &e), CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "length 31"));
	assert_int_equal(creto_pubkey_new(CRETO_ALG_MLDSA65, pt, 97, &p, &e), CRETO_EREJECT);
	assert_int_equal(creto_pubkey_new(CRETO_ALG_NONE, pt, 32, &p, &e), CRETO_EUSAGE);
	/* a generated key passes; its id is stable across dup */
	creto_signer *s = gen(CRETO_ALG_ECDSA_P384);
	size_t l = 0;
	const uint8_t *raw = creto_pubkey_raw(creto_signer_pubkey(s), &l);
	assert_int_equal(creto_pubkey_new(CRETO_ALG_ECDSA_P384, raw, l, &p, &e), CRETO_OK);
	/* the same bytes as another algorithm give another key id */
	creto_pubkey_free(p);
	creto_signer_free(s);
	/* secrets: out-of-range ECDSA scalar and wrong secret lengths */
	uint8_t zero[48] = {0}, ff[48];
	memset(ff, 0xff, sizeof(ff));
	creto_signer *t = NULL;
	assert_int_equal(creto_signer_from_secret(CRETO_ALG_ECDSA_P256, zero, 32, &t, &e), CRETO_EREJECT);
	assert_int_equal(creto_signer_from_secret(CRETO_ALG_ECDSA_P384, ff, 48, &t, &e), CRETO_EREJECT);
	assert_int_equal(creto_signer_from_secret(CRETO_ALG_ED25519, zero, 31, &t, &e), CRETO_EREJECT);
	assert_null(t);
}

/* A signer backed by a custom store (as the HSM plugs in): the raw
 * Ed25519 primitive over the bytes creto gives it. */
struct fake {
	EVP_PKEY *k;
	int calls;
};
static int fake_sign(void *impl, const uint8_t *m, size_t ml, uint8_t *sig, size_t cap, size_t *sl,
		     creto_err *e)
{
	struct fake *f = impl;
	f->calls++;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	*sl = cap;
	int ok = md != NULL && EVP_DigestSignInit(md, NULL, NULL, NULL, f->k) == 1 &&
		 EVP_DigestSign(md, sig, sl, m, ml) == 1;
	EVP_MD_CTX_free(md);
	return ok ? CRETO_OK : creto_err_set(e, CRETO_EOP, "fake sign");
}
static void fake_free(void *impl)
{
	struct fake *f = impl;
	EVP_PKEY_free(f->k);
	free(f);
}
static struct fake *fake_new(creto_pubkey **pub)
{
	struct fake *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	assert_non_null(f->k);
	uint8_t raw[32];
	size_t rl = sizeof(raw);
	assert_int_equal(EVP_PKEY_get_raw_public_key(f->k, raw, &rl), 1);
	creto_err e;
	assert_int_equal(creto_pubkey_new(CRETO_ALG_ED25519, raw, rl, pub, &e), CRETO_OK);
	return f;
}
static const creto_signer_ops fake_ops = {"pkcs11", fake_sign, fake_free};

static void test_custom_signer(void **state)
{
	(void)state;
	creto_err e;
	creto_pubkey *pub = NULL;
	struct fake *f = fake_new(&pub);
	creto_signer *s = NULL, *h = NULL;
	assert_int_equal(creto_signer_new(&fake_ops, f, pub, &s, &e), CRETO_OK);
	assert_string_equal(creto_signer_kind(s), "pkcs11");
	assert_int_equal(creto_signer_hybrid_new(s, gen(CRETO_ALG_MLDSA65), &h, &e), CRETO_OK);
	assert_string_equal(creto_signer_kind(h), "hybrid(pkcs11)");
	uint8_t *sig = NULL;
	size_t sl = 0;
	assert_int_equal(creto_signer_sign(h, (const uint8_t *)"x", 1, (const uint8_t *)"m", 1, &sig, &sl, &e),
			 CRETO_OK);
	assert_int_equal(f->calls, 1);
	assert_int_equal(creto_pubkey_verify(creto_signer_pubkey(h), (const uint8_t *)"x", 1,
					     (const uint8_t *)"m", 1, sig, sl, &e), CRETO_OK);
	/* an HSM key's secret cannot be written to a file */
	char *text = NULL;
	assert_int_equal(creto_secretkey_format(h, NULL, &text, &e), CRETO_EUSAGE);
	assert_null(text);
	free(sig);
	creto_signer_free(h);
	/* a hybrid public key is refused by creto_signer_new, and inputs released */
	creto_signer *g = gen(CRETO_ALG_HYBRID);
	creto_pubkey *hp = NULL;
	assert_int_equal(creto_pubkey_dup(creto_signer_pubkey(g), &hp, &e), CRETO_OK);
	creto_pubkey *unused = NULL;
	struct fake *f2 = fake_new(&unused);
	creto_pubkey_free(unused);
	assert_int_equal(creto_signer_new(&fake_ops, f2, hp, &s, &e), CRETO_EUSAGE);
	creto_signer_free(g);
	creto_signer_free(NULL);
	creto_pubkey_free(NULL);
}

/* A raw (empty-context) classical signature can never stand for a
 * context-bound or hybrid one: messages that begin like those encodings are
 * refused on both sides. */
static void test_raw_reserved_prefix(void **state)
{
	(void)state;
	creto_err e;
	creto_signer *s = gen(CRETO_ALG_ED25519);
	static const uint8_t forged[] = "creto-ctx-v1\0ed25519\0\x19" "creto-update-statement-v1{}";
	static const uint8_t hyb[] = "creto-hybrid-v1\0x";
	uint8_t *sig = NULL;
	size_t sl = 0;
	assert_int_equal(creto_signer_sign(s, NULL, 0, forged, sizeof(forged) - 1, &sig, &sl, &e),
			 CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "reserved for context-bound signatures"));
	assert_int_equal(creto_signer_sign(s, NULL, 0, hyb, sizeof(hyb) - 1, &sig, &sl, &e),
			 CRETO_EREJECT);
	/* with a context the same bytes are an ordinary message */
	assert_int_equal(creto_signer_sign(s, (const uint8_t *)"c", 1, forged, sizeof(forged) - 1, &sig,
					   &sl, &e),
			 CRETO_OK);
	assert_int_equal(creto_pubkey_verify(creto_signer_pubkey(s), NULL, 0, forged,
					     sizeof(forged) - 1, sig, sl, &e),
			 CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "reserved"));
	free(sig);
	creto_signer_free(s);
}

/* NIST ACVP through the creto API (the ML-DSA module has its own full ACVP
 * test): every keyGen case gives the vector's pk from the seed, which is the
 * creto secret encoding; every external/pure sigVer case (context included)
 * verifies exactly when the vector says, which checks that creto builds
 * FIPS 204's M' = 0 || len(ctx) || ctx || msg. */
static json_t *load_vec(const char *rel)
{
	const char *dir = getenv("CRETO_VECTORS_DIR");
	char path[1024];
	snprintf(path, sizeof(path), "%s/acvp/%s", dir ? dir : CRETO_VECTORS_DEFAULT, rel);
	return json_load_file(path, 0, NULL);
}

static uint8_t *jhex(json_t *t, const char *k, size_t *n)
{
	const char *h = json_string_value(json_object_get(t, k));
	assert_non_null(h);
	return unhex(h, n);
}

static creto_alg ps_alg(const char *ps)
{
	return strcmp(ps, "ML-DSA-44") == 0 ? CRETO_ALG_MLDSA44 : strcmp(ps, "ML-DSA-65") == 0 ? CRETO_ALG_MLDSA65
											: CRETO_ALG_MLDSA87;
}

static void test_mldsa_acvp_api(void **state)
{
	(void)state;
	json_t *kg = load_vec("ML-DSA-keyGen-FIPS204/internalProjection.json");
	json_t *sv = load_vec("ML-DSA-sigVer-FIPS204/internalProjection.json");
	if (kg == NULL || sv == NULL) {
		json_decref(kg);
		json_decref(sv);
		skip();
	}
	size_t i, j, nk = 0, nv = 0;
	json_t *g, *t;
	creto_err e;
	json_array_foreach(json_object_get(kg, "testGroups"), i, g) {
		creto_alg alg = ps_alg(json_string_value(json_object_get(g, "parameterSet")));
		json_array_foreach(json_object_get(g, "tests"), j, t) {
			size_t sl, pl, rl;
			uint8_t *seed = jhex(t, "seed", &sl), *pk = jhex(t, "pk", &pl);
			creto_signer *s = NULL;
			assert_int_equal(creto_signer_from_secret(alg, seed, sl, &s, &e), CRETO_OK);
			const uint8_t *raw = creto_pubkey_raw(creto_signer_pubkey(s), &rl);
			assert_int_equal(rl, pl);
			assert_memory_equal(raw, pk, pl);
			creto_signer_free(s);
			free(seed);
			free(pk);
			nk++;
		}
	}
	json_array_foreach(json_object_get(sv, "testGroups"), i, g) {
		if (strcmp(json_string_value(json_object_get(g, "signatureInterface")), "external") != 0 ||
		    strcmp(json_string_value(json_object_get(g, "preHash")), "pure") != 0)
			continue;
		creto_alg alg = ps_alg(json_string_value(json_object_get(g, "parameterSet")));
		json_array_foreach(json_object_get(g, "tests"), j, t) {
			size_t pl, ml, cl, sl;
			uint8_t *pk = jhex(t, "pk", &pl), *m = jhex(t, "message", &ml), *c = jhex(t, "context", &cl),
				*sig = jhex(t, "signature", &sl);
			creto_pubkey *p = NULL;
			assert_int_equal(creto_pubkey_new(alg, pk, pl, &p, &e), CRETO_OK);
			int rc = creto_pubkey_verify(p, c, cl, m, ml, sig, sl, &e);
			assert_int_equal(rc, json_is_true(json_object_get(t, "testPassed")) ? CRETO_OK : CRETO_EREJECT);
			creto_pubkey_free(p);
			free(pk);
			free(m);
			free(c);
			free(sig);
			nv++;
		}
	}
	assert_int_equal(nk, 75);
	assert_int_equal(nv, 45);
	json_decref(kg);
	json_decref(sv);
}

/* SubjectPublicKeyInfo interop (Sigstore/model_signing keys are PEM). */
static void test_spki(void **state)
{
	(void)state;
	static const struct {
		const char *type, *arg;
		creto_alg alg;
	} ks[] = {{"ED25519", NULL, CRETO_ALG_ED25519}, {"EC", "P-256", CRETO_ALG_ECDSA_P256},
		  {"EC", "P-384", CRETO_ALG_ECDSA_P384}};
	creto_err e;
	for (size_t i = 0; i < 3; i++) {
		EVP_PKEY *k = ks[i].arg ? EVP_PKEY_Q_keygen(NULL, NULL, ks[i].type, ks[i].arg)
					: EVP_PKEY_Q_keygen(NULL, NULL, ks[i].type);
		assert_non_null(k);
		BIO *b = BIO_new(BIO_s_mem());
		assert_int_equal(PEM_write_bio_PUBKEY(b, k), 1);
		char *pem = NULL;
		long n = BIO_get_mem_data(b, &pem);
		creto_pubkey *p = NULL, *q = NULL;
		assert_int_equal(creto_pubkey_from_spki((const uint8_t *)pem, (size_t)n, &p, &e), CRETO_OK);
		assert_int_equal(creto_pubkey_alg(p), ks[i].alg);
		char *back = NULL;
		assert_int_equal(creto_pubkey_to_pem(p, &back, &e), CRETO_OK);
		assert_int_equal(strlen(back), (size_t)n);
		assert_memory_equal(back, pem, (size_t)n);
		/* DER form gives the same key; a trailing byte is refused */
		unsigned char *der = NULL;
		int dl = i2d_PUBKEY(k, &der);
		assert_true(dl > 0);
		assert_int_equal(creto_pubkey_from_spki(der, (size_t)dl, &q, &e), CRETO_OK);
		assert_true(creto_pubkey_equal(p, q));
		creto_pubkey_free(q);
		unsigned char *der2 = malloc((size_t)dl + 1);
		memcpy(der2, der, (size_t)dl);
		der2[dl] = 0;
		assert_int_equal(creto_pubkey_from_spki(der2, (size_t)dl + 1, &q, &e), CRETO_EREJECT);
		free(der2);
		OPENSSL_free(der);
		free(back);
		creto_pubkey_free(p);
		BIO_free(b);
		EVP_PKEY_free(k);
	}
	/* compressed P-256 point inside an SPKI: accepted, stored uncompressed */
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	assert_int_equal(EVP_PKEY_set_utf8_string_param(k, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, "compressed"), 1);
	unsigned char *der = NULL;
	int dl = i2d_PUBKEY(k, &der);
	assert_int_equal(dl, 59); /* 26-byte header + 33-byte compressed point */
	creto_pubkey *p = NULL;
	size_t rl = 0;
	assert_int_equal(creto_pubkey_from_spki(der, (size_t)dl, &p, &e), CRETO_OK);
	assert_int_equal(creto_pubkey_raw(p, &rl)[0], 0x04);
	assert_int_equal(rl, 65);
	creto_pubkey_free(p);
	OPENSSL_free(der);
	EVP_PKEY_free(k);
	/* other curves and garbage refused; ML-DSA has no SPKI here */
	k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521");
	der = NULL;
	dl = i2d_PUBKEY(k, &der);
	assert_int_equal(creto_pubkey_from_spki(der, (size_t)dl, &p, &e), CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "not supported"));
	OPENSSL_free(der);
	EVP_PKEY_free(k);
	assert_int_equal(creto_pubkey_from_spki((const uint8_t *)"-----BEGIN PUBLIC KEY-----\nxx\n", 30, &p, &e),
			 CRETO_EREJECT);
	assert_int_equal(creto_pubkey_from_spki((const uint8_t *)"", 0, &p, &e), CRETO_EREJECT);
	creto_signer *s = gen(CRETO_ALG_MLDSA44);
	char *pem = NULL;
	assert_int_equal(creto_pubkey_to_pem(creto_signer_pubkey(s), &pem, &e), CRETO_EUSAGE);
	creto_signer_free(s);
}

/* The ML-DSA seed API the HSM's hybrid key uses instead of sig's private
 * mldsa.h (issue 11 §9): the seed's public key, and a primitive signature
 * over M' that verifies as a pure ML-DSA signature. */
static void test_mldsa_seed(void **state)
{
	(void)state;
	creto_err e;
	creto_err_clear(&e);
	static const creto_alg algs[] = {CRETO_ALG_MLDSA65, CRETO_ALG_MLDSA87};
	for (size_t a = 0; a < 2; a++) {
		creto_alg alg = algs[a];
		uint8_t seed[CRETO_MLDSA_SEED_LEN], pk[CRETO_PUB_MAX], pk2[CRETO_PUB_MAX];
		for (size_t i = 0; i < sizeof(seed); i++)
			seed[i] = (uint8_t)(i * 13 + a);
		size_t pkl = 0, pkl2 = 0;
		assert_int_equal(creto_mldsa_seed_pubkey(alg, seed, pk, sizeof(pk), &pkl, &e), CRETO_OK);
		assert_int_equal(pkl, creto_alg_pub_len(alg));
		/* deterministic */
		assert_int_equal(creto_mldsa_seed_pubkey(alg, seed, pk2, sizeof(pk2), &pkl2, &e), CRETO_OK);
		assert_memory_equal(pk, pk2, pkl);
		assert_int_equal(creto_mldsa_seed_pubkey(alg, seed, pk2, pkl - 1, &pkl2, &e), CRETO_EOP);
		creto_pubkey *pub = NULL;
		assert_int_equal(creto_pubkey_new(alg, pk, pkl, &pub, &e), CRETO_OK);
		/* M' for an empty context: 0 || 0 || msg */
		const char *msg = "sealed seed";
		uint8_t m[64] = {0, 0};
		memcpy(m + 2, msg, strlen(msg));
		uint8_t sig[CRETO_SIG_MAX];
		size_t sl = 0;
		assert_int_equal(creto_mldsa_seed_sign(alg, seed, pk, pkl, m, 2 + strlen(msg), sig,
						       sizeof(sig), &sl, &e),
				 CRETO_OK);
		assert_int_equal(sl, creto_alg_sig_len(alg));
		assert_int_equal(creto_pubkey_verify(pub, NULL, 0, (const uint8_t *)msg, strlen(msg), sig,
						     sl, &e),
				 CRETO_OK);
		/* a seed that is not the key's signs nothing */
		pk[7] ^= 1;
		sl = 99;
		assert_int_equal(creto_mldsa_seed_sign(alg, seed, pk, pkl, m, 2, sig, sizeof(sig), &sl, &e),
				 CRETO_EREJECT);
		assert_int_equal(sl, 0);
		assert_int_equal(creto_mldsa_seed_sign(alg, seed, NULL, 0, m, 2, sig, 10, &sl, &e),
				 CRETO_EOP);
		creto_pubkey_free(pub);
	}
	uint8_t seed[CRETO_MLDSA_SEED_LEN] = {0}, pk[CRETO_PUB_MAX], sig[64];
	size_t n = 0;
	assert_int_equal(creto_mldsa_seed_pubkey(CRETO_ALG_ED25519, seed, pk, sizeof(pk), &n, &e),
			 CRETO_EUSAGE);
	assert_int_equal(creto_mldsa_seed_sign(CRETO_ALG_HYBRID, seed, NULL, 0, seed, 1, sig,
					       sizeof(sig), &n, &e),
			 CRETO_EUSAGE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alg_table),
		cmocka_unit_test(test_ed25519_rfc8032),
		cmocka_unit_test(test_ecdsa_openssl_interop),
		cmocka_unit_test(test_round_trip_all),
		cmocka_unit_test(test_bit_flips),
		cmocka_unit_test(test_hybrid_binding),
		cmocka_unit_test(test_cross_algorithm),
		cmocka_unit_test(test_pubkey_validation),
		cmocka_unit_test(test_custom_signer),
		cmocka_unit_test(test_raw_reserved_prefix),
		cmocka_unit_test(test_mldsa_acvp_api),
		cmocka_unit_test(test_spki),
		cmocka_unit_test(test_ecdsa_der_vs_openssl),
		cmocka_unit_test(test_mldsa_seed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
