/*
 * test_hsm.c - the PKCS#11 layer against the real SoftHSM2 module, in a
 * private token directory (SOFTHSM2_CONF under the build tree): token init,
 * login errors, keygen of every type, list, public key export, signing
 * (verified independently with OpenSSL EVP), wrap/unwrap, destroy, two
 * threads signing at once, a forked child signing, and injected CKR_
 * failures (locked PIN, device error) through the module-override seam.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#define CRYPTOKI_GNU 1
#include <p11-kit/pkcs11.h>

#include "creto/hsm.h"
#include "creto/keys.h"
#include "hsm/p11.h"

#include "softhsm_token.h"

static struct softhsm_token g_tok;
static char g_badpin[600];
static int g_have_softhsm;

static char *uri_for(const char *obj, const char *type)
{
	static char buf[4][1024];
	static int i;
	char *b = buf[i++ % 4];
	snprintf(b, 1024, "pkcs11:token=unit;object=%s%s%s?module-path=%s&pin-source=file:%s", obj,
		 type ? ";type=" : "", type ? type : "", SOFTHSM, g_tok.pin);
	return b;
}

static int setup_all(void **state)
{
	(void)state;
	g_have_softhsm = access(SOFTHSM, R_OK) == 0;
	if (!g_have_softhsm)
		return 0;
	if (softhsm_token_make(&g_tok, "test_hsm", "unit", "4321-user", "8765-so") != 0)
		return -1;
	snprintf(g_badpin, sizeof(g_badpin), "%s/bad.pin", g_tok.dir);
	write_file(g_badpin, "0000-wrong\n");
	return 0;
}

static int teardown_all(void **state)
{
	(void)state;
	return softhsm_token_remove(&g_tok);
}

#define NEED_SOFTHSM()                                                                             \
	do {                                                                                       \
		if (!g_have_softhsm)                                                               \
			skip();                                                                    \
	} while (0)

static creto_hsm *open_rw(void)
{
	creto_err e;
	creto_err_clear(&e);
	creto_hsm *h = NULL;
	int rc = creto_hsm_open_uri(uri_for("x", NULL), NULL, CRETO_HSM_LOGIN | CRETO_HSM_RW, &h,
				    NULL, &e);
	if (rc != CRETO_OK)
		fprintf(stderr, "open: %s\n", e.msg);
	assert_int_equal(rc, CRETO_OK);
	return h;
}

/* ---- OpenSSL verification of raw signatures ---- */

static EVP_PKEY *pkey_from_raw(creto_alg alg, const uint8_t *raw, size_t len)
{
	if (alg == CRETO_ALG_ED25519)
		return EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw, len);
	OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
	OSSL_PARAM_BLD_push_utf8_string(b, OSSL_PKEY_PARAM_GROUP_NAME,
					alg == CRETO_ALG_ECDSA_P256 ? "prime256v1" : "secp384r1", 0);
	OSSL_PARAM_BLD_push_octet_string(b, OSSL_PKEY_PARAM_PUB_KEY, raw, len);
	OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(b);
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	EVP_PKEY *pk = NULL;
	if (EVP_PKEY_fromdata_init(c) != 1 || EVP_PKEY_fromdata(c, &pk, EVP_PKEY_PUBLIC_KEY, params) != 1)
		pk = NULL;
	EVP_PKEY_CTX_free(c);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(b);
	return pk;
}

static int ossl_verify(creto_alg alg, const uint8_t *raw, size_t rawlen, const uint8_t *msg,
		       size_t msglen, const uint8_t *sig, size_t siglen)
{
	EVP_PKEY *pk = pkey_from_raw(alg, raw, rawlen);
	if (pk == NULL)
		return 0;
	uint8_t der[160];
	const uint8_t *s = sig;
	size_t sl = siglen;
	if (alg != CRETO_ALG_ED25519) {
		size_t half = siglen / 2;
		ECDSA_SIG *es = ECDSA_SIG_new();
		ECDSA_SIG_set0(es, BN_bin2bn(sig, (int)half, NULL), BN_bin2bn(sig + half, (int)half, NULL));
		uint8_t *p = der;
		int n = i2d_ECDSA_SIG(es, &p);
		ECDSA_SIG_free(es);
		s = der;
		sl = (size_t)n;
	}
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	const EVP_MD *md = alg == CRETO_ALG_ED25519	 ? NULL
			   : alg == CRETO_ALG_ECDSA_P256 ? EVP_sha256()
							 : EVP_sha384();
	int ok = EVP_DigestVerifyInit(m, NULL, md, NULL, pk) == 1 &&
		 EVP_DigestVerify(m, s, sl, msg, msglen) == 1;
	EVP_MD_CTX_free(m);
	EVP_PKEY_free(pk);
	return ok;
}

/* ---- tests ---- */

static void test_init_token_twice(void **state)
{
	(void)state;
	NEED_SOFTHSM();
	creto_err e;
	creto_err_clear(&e);
	assert_int_equal(creto_hsm_init_token(SOFTHSM, "unit", g_tok.so, g_tok.pin, &e), CRETO_EUSAGE);
	assert_non_null(strstr(e.msg, "token 'unit' already exists"));
	char missing[700];
	snprintf(missing, sizeof(missing), "%s/nope.pin", g_tok.dir);
	assert_int_equal(creto_hsm_init_token(SOFTHSM, "other", missing, g_tok.pin, &e), CRETO_EUSAGE);
	assert_non_null(strstr(e.msg, "PIN file"));
}

static void test_open_errors(void **state)
{
	(void)state;
	NEED_SOFTHSM();
	creto_err e;
	creto_hsm *h = NULL;
	char u[1400];
	/* wrong PIN */
	snprintf(u, sizeof(u), "pkcs11:token=unit?module-path=%s&pin-source=file:%s", SOFTHSM,
		 g_badpin);
	creto_err_clear(&e);
	assert_int_equal(creto_hsm_open_uri(u, NULL, CRETO_HSM_LOGIN, &h, NULL, &e), CRETO_EUSAGE);
	assert_null(h);
	assert_string_equal(e.msg, "C_Login on token 'unit': CKR_PIN_INCORRECT");
	/* missing token */
	snprintf(u, sizeof(u), "pkcs11:token=nosuch?module-path=%s&pin-source=file:%s", SOFTHSM,
		 g_tok.pin);
	assert_int_equal(creto_hsm_open_uri(u, NULL, CRETO_HSM_LOGIN, &h, NULL, &e), CRETO_EOP);
	assert_non_null(strstr(e.msg, "token 'nosuch' not found in module"));
	/* missing module */
	snprintf(u, sizeof(u), "pkcs11:token=unit?module-path=/nonexistent/lib.so&pin-source=file:%s", g_tok.pin);
	assert_int_equal(creto_hsm_open_uri(u, NULL, CRETO_HSM_LOGIN, &h, NULL, &e), CRETO_EUSAGE);
	assert_non_null(strstr(e.msg, "PKCS#11 module '/nonexistent/lib.so'"));
	/* a file that is not a module */
	snprintf(u, sizeof(u), "pkcs11:token=unit?module-path=%s&pin-source=file:%s", g_tok.pin, g_tok.pin);
	assert_int_equal(creto_hsm_open_uri(u, NULL, CRETO_HSM_LOGIN, &h, NULL, &e), CRETO_EOP);
	assert_non_null(strstr(e.msg, "cannot load"));
	/* a shared object that is not a PKCS#11 module */
	snprintf(u, sizeof(u), "pkcs11:token=unit?module-path=/lib/x86_64-linux-gnu/libz.so.1&pin-source=file:%s", g_tok.pin);
	if (access("/lib/x86_64-linux-gnu/libz.so.1", R_OK) == 0) {
		assert_int_equal(creto_hsm_open_uri(u, NULL, CRETO_HSM_LOGIN, &h, NULL, &e), CRETO_EOP);
		assert_non_null(strstr(e.msg, "no C_GetFunctionList"));
	}
	/* no PIN at all */
	snprintf(u, sizeof(u), "pkcs11:token=unit?module-path=%s", SOFTHSM);
	assert_int_equal(creto_hsm_open_uri(u, NULL, CRETO_HSM_LOGIN, &h, NULL, &e), CRETO_EUSAGE);
	assert_non_null(strstr(e.msg, "no PIN"));
	/* PIN file missing */
	snprintf(u, sizeof(u), "pkcs11:token=unit?module-path=%s&pin-source=file:%s/missing", SOFTHSM,
		 g_tok.dir);
	assert_int_equal(creto_hsm_open_uri(u, NULL, CRETO_HSM_LOGIN, &h, NULL, &e), CRETO_EUSAGE);
	assert_non_null(strstr(e.msg, "PIN file"));
	/* relative pin-source refused */
	snprintf(u, sizeof(u), "pkcs11:token=unit?module-path=%s&pin-source=pin.txt", SOFTHSM);
	assert_int_equal(creto_hsm_open_uri(u, NULL, CRETO_HSM_LOGIN, &h, NULL, &e), CRETO_EUSAGE);
	/* options supply module and PIN */
	creto_hsm_opts o = {.module_path = SOFTHSM, .pin_file = g_tok.pin};
	assert_int_equal(creto_hsm_open_uri("pkcs11:token=unit", &o, CRETO_HSM_LOGIN, &h, NULL, &e),
			 CRETO_OK);
	assert_string_equal(creto_hsm_token_label(h), "unit");
	assert_string_equal(creto_hsm_module_path(h), SOFTHSM);
	creto_hsm_close(h);
	/* pin-value is refused (a PIN in a URI is a PIN in argv), with or
	 * without a login, even when the PIN is right */
	snprintf(u, sizeof(u), "pkcs11:token=unit?module-path=%s&pin-value=4321-user", SOFTHSM);
	assert_int_equal(creto_hsm_open_uri(u, NULL, CRETO_HSM_LOGIN, &h, NULL, &e), CRETO_EUSAGE);
	assert_null(h);
	assert_non_null(strstr(e.msg, "pin-value is refused"));
	assert_non_null(strstr(e.msg, "pin-source=file:PATH or --pin-file"));
	assert_null(strstr(e.msg, "4321-user"));
	assert_int_equal(creto_hsm_open_uri(u, NULL, 0, &h, NULL, &e), CRETO_EUSAGE);
	assert_null(h);
	/* file:/// forms */
	snprintf(u, sizeof(u), "pkcs11:token=unit?module-path=%s&pin-source=file://%s", SOFTHSM, g_tok.pin);
	assert_int_equal(creto_hsm_open_uri(u, NULL, CRETO_HSM_LOGIN, &h, NULL, &e), CRETO_OK);
	creto_hsm_close(h);
	/* module-name resolves through the module directories */
	snprintf(u, sizeof(u), "pkcs11:token=unit?module-name=softhsm2&pin-source=file:%s", g_tok.pin);
	assert_int_equal(creto_hsm_open_uri(u, NULL, CRETO_HSM_LOGIN, &h, NULL, &e), CRETO_OK);
	creto_hsm_close(h);
	/* token found by serial-less attributes: manufacturer */
	snprintf(u, sizeof(u), "pkcs11:token=unit;manufacturer=SoftHSM%%20project?module-path=%s",
		 SOFTHSM);
	assert_int_equal(creto_hsm_open_uri(u, NULL, 0, &h, NULL, &e), CRETO_OK);
	creto_hsm_close(h);
	snprintf(u, sizeof(u), "pkcs11:token=unit;model=nope?module-path=%s", SOFTHSM);
	assert_int_equal(creto_hsm_open_uri(u, NULL, 0, &h, NULL, &e), CRETO_EOP);
}

/* The PIN file reader: the caller's fixed buffer, strict format, and a
 * wiped buffer on every failure. */
static void pin_refused(const char *path, const char *why)
{
	char buf[P11_PIN_BUF];
	size_t len = 99;
	creto_err e;
	creto_err_clear(&e);
	memset(buf, 0x55, sizeof(buf));
	assert_int_equal(p11_pin_read(path, buf, &len, &e), CRETO_EUSAGE);
	assert_int_equal(len, 0);
	if (strstr(e.msg, why) == NULL)
		fail_msg("%s: '%s' lacks '%s'", path, e.msg, why);
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0);
}

static void pin_accepted(const char *path, const char *want)
{
	char buf[P11_PIN_BUF];
	size_t len = 0;
	creto_err e;
	creto_err_clear(&e);
	memset(buf, 0x55, sizeof(buf));
	assert_int_equal(p11_pin_read(path, buf, &len, &e), CRETO_OK);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(buf, want, len);
	/* NUL-terminated, nothing of the file left after the PIN */
	for (size_t i = len; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0);
}

static void test_pin_read(void **state)
{
	(void)state;
	char d[512], p[700], q[700];
	const char *bd = getenv("CRETO_BUILD_DIR");
	snprintf(d, sizeof(d), "%s/test-tmp/test_hsm_pin.XXXXXX", bd ? bd : "/tmp");
	assert_non_null(mkdtemp(d));
	snprintf(p, sizeof(p), "%s/pin", d);
	write_file(p, "1234\n");
	pin_accepted(p, "1234");
	write_file(p, "1234\r\n");
	pin_accepted(p, "1234");
	write_file(p, "no-newline");
	pin_accepted(p, "no-newline");
	char big[CRETO_HSM_PIN_MAX + 3];
	memset(big, 'x', CRETO_HSM_PIN_MAX);
	memcpy(big + CRETO_HSM_PIN_MAX, "\r\n", 3);
	write_file(p, big);
	big[CRETO_HSM_PIN_MAX] = '\0';
	pin_accepted(p, big);
	big[CRETO_HSM_PIN_MAX] = 'x';
	big[CRETO_HSM_PIN_MAX + 1] = '\0';
	write_file(p, big);
	pin_refused(p, "1 to 256 bytes");
	write_file(p, "");
	pin_refused(p, "must hold one PIN");
	write_file(p, "\n");
	pin_refused(p, "must hold one PIN");
	write_file(p, "12\n34\n");
	pin_refused(p, "on one line");
	FILE *f = fopen(p, "wb");
	assert_non_null(f);
	fwrite("12\0" "34\n", 1, 6, f);
	fclose(f);
	pin_refused(p, "must hold one PIN");
	/* not regular files, links, standard input, missing */
	write_file(p, "1234\n");
	snprintf(q, sizeof(q), "%s/link", d);
	assert_int_equal(symlink(p, q), 0);
	pin_refused(q, "is a symbolic link");
	pin_refused(d, "not a regular file");
	snprintf(q, sizeof(q), "%s/fifo", d);
	assert_int_equal(mkfifo(q, 0600), 0);
	pin_refused(q, "not a regular file"); /* and does not block */
	pin_refused("-", "standard input is not accepted");
	snprintf(q, sizeof(q), "%s/missing", d);
	pin_refused(q, "No such file");
	char cmd[700];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d);
	assert_int_equal(system(cmd), 0);
}

static void sign_and_check(creto_hsm *h, const char *label, creto_alg want_alg)
{
	creto_err e;
	creto_err_clear(&e);
	creto_p11_uri *u = NULL;
	assert_int_equal(creto_p11_uri_parse(uri_for(label, NULL), &u, &e), CRETO_OK);
	uint8_t raw[128];
	size_t rawlen = 0;
	creto_alg alg;
	assert_int_equal(creto_hsm_pub_raw(h, u, &alg, raw, sizeof(raw), &rawlen, &e), CRETO_OK);
	assert_int_equal(alg, want_alg);
	creto_hsm_key *k = NULL;
	int rc = creto_hsm_key_find(h, u, CRETO_P11_TYPE_PRIVATE, &k, &e);
	if (rc != CRETO_OK)
		fprintf(stderr, "find: %s\n", e.msg);
	assert_int_equal(rc, CRETO_OK);
	const uint8_t msg[] = "the enclave trusts what it can verify";
	uint8_t sig[128];
	size_t siglen = 0;
	rc = creto_hsm_key_sign(k, msg, sizeof(msg) - 1, sig, sizeof(sig), &siglen, &e);
	if (rc != CRETO_OK)
		fprintf(stderr, "sign: %s\n", e.msg);
	assert_int_equal(rc, CRETO_OK);
	assert_int_equal(siglen, want_alg == CRETO_ALG_ECDSA_P384 ? 96 : 64);
	assert_true(ossl_verify(alg, raw, rawlen, msg, sizeof(msg) - 1, sig, siglen));
	sig[3] ^= 1;
	assert_false(ossl_verify(alg, raw, rawlen, msg, sizeof(msg) - 1, sig, siglen));
	/* too small a buffer is refused, not overrun */
	assert_int_equal(creto_hsm_key_sign(k, msg, 3, sig, 10, &siglen, &e), CRETO_EOP);
	creto_hsm_key_free(k);
	creto_p11_uri_free(u);
}

static void test_keygen_sign(void **state)
{
	(void)state;
	NEED_SOFTHSM();
	creto_hsm *h = open_rw();
	creto_err e;
	creto_err_clear(&e);
	uint8_t id[CRETO_HSM_KEYID_BYTES];
	assert_int_equal(creto_hsm_keygen(h, CRETO_HSM_KT_ED25519, "ed", 0, id, &e), CRETO_OK);
	assert_int_equal(creto_hsm_keygen(h, CRETO_HSM_KT_EC_P256, "p256", 0, NULL, &e), CRETO_OK);
	assert_int_equal(creto_hsm_keygen(h, CRETO_HSM_KT_EC_P384, "p384", 0, NULL, &e), CRETO_OK);
	/* a label in use is refused */
	assert_int_equal(creto_hsm_keygen(h, CRETO_HSM_KT_ED25519, "ed", 0, NULL, &e), CRETO_EUSAGE);
	assert_string_equal(e.msg, "key 'ed' already exists on token 'unit'");
	assert_int_equal(creto_hsm_keygen(h, CRETO_HSM_KT_ED25519, "", 0, NULL, &e), CRETO_EUSAGE);
	sign_and_check(h, "ed", CRETO_ALG_ED25519);
	sign_and_check(h, "p256", CRETO_ALG_ECDSA_P256);
	sign_and_check(h, "p384", CRETO_ALG_ECDSA_P384);

	/* found by id alone, too */
	char u[1400], idpct[64] = "";
	for (int i = 0; i < CRETO_HSM_KEYID_BYTES; i++)
		snprintf(idpct + 3 * i, 4, "%%%02X", id[i]);
	snprintf(u, sizeof(u), "pkcs11:token=unit;id=%s;type=private", idpct);
	creto_p11_uri *pu = NULL;
	assert_int_equal(creto_p11_uri_parse(u, &pu, &e), CRETO_OK);
	creto_hsm_key *k = NULL;
	assert_int_equal(creto_hsm_key_find(h, pu, CRETO_P11_TYPE_PRIVATE, &k, &e), CRETO_OK);
	assert_int_equal(creto_hsm_key_type(k), CRETO_HSM_KT_ED25519);
	creto_hsm_key_free(k);
	creto_p11_uri_free(pu);

	/* the private key is sensitive and not extractable */
	creto_hsm_obj *objs = NULL;
	size_t n = 0;
	assert_int_equal(creto_hsm_list(h, &objs, &n, &e), CRETO_OK);
	int seen_priv = 0;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(objs[i].label, "ed") == 0 && objs[i].type == CRETO_P11_TYPE_PRIVATE) {
			seen_priv = 1;
			assert_true(objs[i].sensitive);
			assert_false(objs[i].extractable);
			assert_int_equal(objs[i].keytype, CRETO_HSM_KT_ED25519);
			assert_memory_equal(objs[i].id, id, sizeof(id));
		}
	}
	assert_true(seen_priv);
	free(objs);
	creto_hsm_close(h);
}

static void test_missing_key(void **state)
{
	(void)state;
	NEED_SOFTHSM();
	creto_hsm *h = open_rw();
	creto_err e;
	creto_err_clear(&e);
	creto_p11_uri *u = NULL;
	assert_int_equal(creto_p11_uri_parse(uri_for("ghost", NULL), &u, &e), CRETO_OK);
	creto_hsm_key *k = NULL;
	assert_int_equal(creto_hsm_key_find(h, u, CRETO_P11_TYPE_PRIVATE, &k, &e), CRETO_EUSAGE);
	assert_string_equal(e.msg, "key 'ghost' (private key) not found on token 'unit'");
	uint8_t raw[128];
	size_t rl;
	creto_alg alg;
	assert_int_equal(creto_hsm_pub_raw(h, u, &alg, raw, sizeof(raw), &rl, &e), CRETO_EUSAGE);
	size_t nd = 0;
	assert_int_equal(creto_hsm_destroy(h, u, &nd, &e), CRETO_EUSAGE);
	creto_p11_uri_free(u);
	/* a URI without object= or id= names no key */
	assert_int_equal(creto_p11_uri_parse("pkcs11:token=unit", &u, &e), CRETO_OK);
	assert_int_equal(creto_hsm_key_find(h, u, CRETO_P11_TYPE_PRIVATE, &k, &e), CRETO_EUSAGE);
	assert_non_null(strstr(e.msg, "names no key"));
	creto_p11_uri_free(u);
	/* type=public cannot sign */
	assert_int_equal(creto_p11_uri_parse("pkcs11:token=unit;object=x;type=public", &u, &e),
			 CRETO_OK);
	assert_int_equal(creto_hsm_key_find(h, u, CRETO_P11_TYPE_PRIVATE, &k, &e), CRETO_EUSAGE);
	creto_p11_uri_free(u);
	creto_hsm_close(h);
}

static void test_wrap_unwrap(void **state)
{
	(void)state;
	NEED_SOFTHSM();
	creto_hsm *h = open_rw();
	creto_err e;
	creto_err_clear(&e);
	assert_int_equal(creto_hsm_keygen(h, CRETO_HSM_KT_AES256, "backup", 0, NULL, &e), CRETO_OK);
	assert_int_equal(creto_hsm_keygen(h, CRETO_HSM_KT_AES256, "other-aes", 0, NULL, &e), CRETO_OK);
	creto_hsm_close(h);
	uint8_t key[32], back[64];
	for (size_t i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)(i * 7 + 1);
	uint8_t *w = NULL;
	size_t wl = 0, bl = 0;
	int rc = creto_hsm_wrap(uri_for("backup", NULL), NULL, key, sizeof(key), &w, &wl, &e);
	if (rc != CRETO_OK)
		fprintf(stderr, "wrap: %s\n", e.msg);
	assert_int_equal(rc, CRETO_OK);
	assert_int_equal(wl, 40); /* RFC 5649: 32 bytes + 8 */
	rc = creto_hsm_unwrap(uri_for("backup", "secret-key"), NULL, w, wl, back, sizeof(back), &bl, &e);
	if (rc != CRETO_OK)
		fprintf(stderr, "unwrap: %s\n", e.msg);
	assert_int_equal(rc, CRETO_OK);
	assert_int_equal(bl, 32);
	assert_memory_equal(back, key, 32);
	/* 24 bytes: RFC 5649 blob of 32; lengths off the 8-byte grid are refused */
	uint8_t *w2 = NULL;
	size_t wl2 = 0;
	assert_int_equal(creto_hsm_wrap(uri_for("backup", NULL), NULL, key, 24, &w2, &wl2, &e), CRETO_OK);
	assert_int_equal(wl2, 32);
	assert_int_equal(creto_hsm_unwrap(uri_for("backup", NULL), NULL, w2, wl2, back, sizeof(back), &bl, &e),
			 CRETO_OK);
	assert_int_equal(bl, 24);
	assert_memory_equal(back, key, 24);
	free(w2);
	assert_int_equal(creto_hsm_wrap(uri_for("backup", NULL), NULL, key, 13, &w2, &wl2, &e), CRETO_EUSAGE);
	/* tampered */
	w[5] ^= 0x40;
	assert_int_equal(creto_hsm_unwrap(uri_for("backup", NULL), NULL, w, wl, back, sizeof(back), &bl, &e),
			 CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "does not unwrap"));
	w[5] ^= 0x40;
	/* wrong key */
	assert_int_equal(creto_hsm_unwrap(uri_for("other-aes", NULL), NULL, w, wl, back, sizeof(back), &bl, &e),
			 CRETO_EREJECT);
	/* not a blob */
	assert_int_equal(creto_hsm_unwrap(uri_for("backup", NULL), NULL, w, 7, back, sizeof(back), &bl, &e),
			 CRETO_EREJECT);
	/* too small an output */
	assert_int_equal(creto_hsm_unwrap(uri_for("backup", NULL), NULL, w, wl, back, 16, &bl, &e),
			 CRETO_EREJECT);
	/* wrapping key missing / not AES */
	assert_int_equal(creto_hsm_wrap(uri_for("ghost", NULL), NULL, key, 32, &w2, &wl2, &e), CRETO_EUSAGE);
	assert_int_equal(creto_hsm_unwrap(uri_for("ghost", NULL), NULL, w, wl, back, sizeof(back), &bl, &e),
			 CRETO_EUSAGE);
	assert_int_equal(creto_hsm_wrap(uri_for("backup", NULL), NULL, key, 0, &w2, &wl2, &e), CRETO_EUSAGE);
	free(w);
}

static void test_destroy(void **state)
{
	(void)state;
	NEED_SOFTHSM();
	creto_hsm *h = open_rw();
	creto_err e;
	creto_err_clear(&e);
	assert_int_equal(creto_hsm_keygen(h, CRETO_HSM_KT_EC_P256, "doomed", 0, NULL, &e), CRETO_OK);
	creto_p11_uri *u = NULL;
	assert_int_equal(creto_p11_uri_parse("pkcs11:object=doomed", &u, &e), CRETO_OK);
	size_t n = 0;
	assert_int_equal(creto_hsm_destroy(h, u, &n, &e), CRETO_OK);
	assert_int_equal(n, 2); /* public + private */
	assert_int_equal(creto_hsm_destroy(h, u, &n, &e), CRETO_EUSAGE);
	assert_string_equal(e.msg, "key 'doomed' not found on token 'unit'");
	creto_p11_uri_free(u);
	creto_hsm_close(h);
}

/* Give every object labelled from the label to (raw PKCS#11, as another
 * tool could). */
static void relabel(creto_hsm *h, const char *from, const char *to)
{
	ck_session_handle_t s;
	creto_err e;
	assert_int_equal(p11_session_get(h, &s, &e), CRETO_OK);
	struct ck_function_list *f = h->mod->f;
	struct ck_attribute t = {CKA_LABEL, (void *)from, strlen(from)};
	ck_object_handle_t objs[8];
	unsigned long n = 0;
	assert_int_equal(f->C_FindObjectsInit(s, &t, 1), CKR_OK);
	assert_int_equal(f->C_FindObjects(s, objs, 8, &n), CKR_OK);
	assert_int_equal(f->C_FindObjectsFinal(s), CKR_OK);
	assert_true(n > 0);
	for (unsigned long i = 0; i < n; i++) {
		struct ck_attribute a = {CKA_LABEL, (void *)to, strlen(to)};
		assert_int_equal(f->C_SetAttributeValue(s, objs[i], &a, 1), CKR_OK);
	}
	p11_session_put(h, s, CKR_OK);
}

static size_t count_label(creto_hsm *h, const char *label)
{
	creto_hsm_obj *objs = NULL;
	size_t n = 0, c = 0;
	creto_err e;
	assert_int_equal(creto_hsm_list(h, &objs, &n, &e), CRETO_OK);
	for (size_t i = 0; i < n; i++)
		c += strcmp(objs[i].label, label) == 0;
	free(objs);
	return c;
}

/* issue 11 §4c: a URI that matches two keys never acts, whatever the
 * operation (destroy used to destroy both). */
static void test_ambiguous_uri(void **state)
{
	(void)state;
	NEED_SOFTHSM();
	creto_hsm *h = open_rw();
	creto_err e;
	creto_err_clear(&e);
	uint8_t id1[CRETO_HSM_KEYID_BYTES], id2[CRETO_HSM_KEYID_BYTES], id3[CRETO_HSM_KEYID_BYTES];
	assert_int_equal(creto_hsm_keygen(h, CRETO_HSM_KT_ED25519, "twin", 0, id1, &e), CRETO_OK);
	assert_int_equal(creto_hsm_keygen(h, CRETO_HSM_KT_ED25519, "twin-b", 0, id2, &e), CRETO_OK);
	relabel(h, "twin-b", "twin");
	assert_int_equal(count_label(h, "twin"), 4);
	creto_p11_uri *u = NULL;
	assert_int_equal(creto_p11_uri_parse("pkcs11:object=twin", &u, &e), CRETO_OK);
	size_t nd = 99;
	assert_int_equal(creto_hsm_destroy(h, u, &nd, &e), CRETO_EUSAGE);
	assert_int_equal(nd, 0);
	assert_non_null(strstr(e.msg, "key 'twin' is ambiguous on token 'unit'"));
	assert_non_null(strstr(e.msg, "matches 2 keys"));
	assert_non_null(strstr(e.msg, "add id="));
	assert_int_equal(count_label(h, "twin"), 4); /* nothing destroyed */
	creto_hsm_key *k = NULL;
	assert_int_equal(creto_hsm_key_find(h, u, CRETO_P11_TYPE_PRIVATE, &k, &e), CRETO_EUSAGE);
	assert_non_null(strstr(e.msg, "ambiguous"));
	assert_null(k);
	uint8_t raw[128];
	size_t rl = 0;
	creto_alg alg;
	assert_int_equal(creto_hsm_pub_raw(h, u, &alg, raw, sizeof(raw), &rl, &e), CRETO_EUSAGE);
	assert_non_null(strstr(e.msg, "ambiguous"));
	creto_p11_uri_free(u);
	/* type= narrows to one class but still two keys */
	assert_int_equal(creto_p11_uri_parse("pkcs11:object=twin;type=public", &u, &e), CRETO_OK);
	assert_int_equal(creto_hsm_destroy(h, u, &nd, &e), CRETO_EUSAGE);
	creto_p11_uri_free(u);
	/* with id= the URI names one key: exactly its two objects go */
	char uri[200];
	int o = snprintf(uri, sizeof(uri), "pkcs11:object=twin;id=");
	for (size_t i = 0; i < sizeof(id2); i++)
		o += snprintf(uri + o, sizeof(uri) - (size_t)o, "%%%02x", id2[i]);
	assert_int_equal(creto_p11_uri_parse(uri, &u, &e), CRETO_OK);
	assert_int_equal(creto_hsm_destroy(h, u, &nd, &e), CRETO_OK);
	assert_int_equal(nd, 2);
	creto_p11_uri_free(u);
	assert_int_equal(count_label(h, "twin"), 2);
	assert_int_equal(creto_p11_uri_parse("pkcs11:object=twin", &u, &e), CRETO_OK);
	assert_int_equal(creto_hsm_key_find(h, u, CRETO_P11_TYPE_PRIVATE, &k, &e), CRETO_OK);
	size_t kl = 0;
	assert_memory_equal(creto_hsm_key_id(k, &kl), id1, sizeof(id1));
	creto_hsm_key_free(k);
	creto_p11_uri_free(u);

	/* a key pair and an AES key under one label: wrap, sign and destroy
	 * all refuse */
	assert_int_equal(creto_hsm_keygen(h, CRETO_HSM_KT_AES256, "mixed-aes", 0, id3, &e), CRETO_OK);
	relabel(h, "mixed-aes", "twin");
	assert_int_equal(creto_p11_uri_parse("pkcs11:object=twin", &u, &e), CRETO_OK);
	uint8_t dk[32] = {1}, *w = NULL;
	size_t wl = 0;
	assert_int_equal(creto_hsm_wrap_with(h, u, dk, sizeof(dk), &w, &wl, &e), CRETO_EUSAGE);
	assert_non_null(strstr(e.msg, "ambiguous"));
	assert_null(w);
	assert_int_equal(creto_hsm_key_find(h, u, CRETO_P11_TYPE_PRIVATE, &k, &e), CRETO_EUSAGE);
	assert_int_equal(creto_hsm_destroy(h, u, &nd, &e), CRETO_EUSAGE);
	assert_int_equal(count_label(h, "twin"), 3);
	creto_p11_uri_free(u);
	/* type=secret-key names the AES key alone */
	assert_int_equal(creto_p11_uri_parse("pkcs11:object=twin;type=secret-key", &u, &e), CRETO_OK);
	assert_int_equal(creto_hsm_wrap_with(h, u, dk, sizeof(dk), &w, &wl, &e), CRETO_OK);
	free(w);
	assert_int_equal(creto_hsm_destroy(h, u, &nd, &e), CRETO_OK);
	assert_int_equal(nd, 1);
	creto_p11_uri_free(u);
	assert_int_equal(creto_p11_uri_parse("pkcs11:object=twin", &u, &e), CRETO_OK);
	assert_int_equal(creto_hsm_destroy(h, u, &nd, &e), CRETO_OK);
	assert_int_equal(nd, 2);
	creto_p11_uri_free(u);
	creto_hsm_close(h);
}

/* issue 11 §6: list and keygen name keys by the creto key id, the one
 * `key id`, `hsm pub` and trust roots use. */
static void test_key_ids(void **state)
{
	(void)state;
	NEED_SOFTHSM();
	creto_hsm *h = open_rw();
	creto_err e;
	creto_err_clear(&e);
	assert_int_equal(creto_hsm_keygen(h, CRETO_HSM_KT_EC_P256, "kid-p256", 0, NULL, &e), CRETO_OK);
	assert_int_equal(creto_hsm_keygen(h, CRETO_HSM_KT_AES256, "kid-aes", 0, NULL, &e), CRETO_OK);
	creto_pubkey *pub = NULL;
	assert_int_equal(creto_hsm_open_pubkey(uri_for("kid-p256", NULL), NULL, &pub, &e), CRETO_OK);
	const char *want = creto_pubkey_id(pub);
	creto_p11_uri *u = NULL;
	assert_int_equal(creto_p11_uri_parse("pkcs11:object=kid-p256", &u, &e), CRETO_OK);
	char kid[CRETO_KEYID_HEXLEN + 1];
	assert_int_equal(creto_hsm_pub_id(h, u, kid, &e), CRETO_OK);
	assert_string_equal(kid, want);
	creto_p11_uri_free(u);
	assert_int_equal(creto_p11_uri_parse("pkcs11:object=kid-aes", &u, &e), CRETO_OK);
	assert_int_equal(creto_hsm_pub_id(h, u, kid, &e), CRETO_EUSAGE);
	creto_p11_uri_free(u);
	creto_hsm_obj *objs = NULL;
	size_t n = 0, seen = 0;
	assert_int_equal(creto_hsm_list(h, &objs, &n, &e), CRETO_OK);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(objs[i].label, "kid-p256") == 0) {
			assert_string_equal(objs[i].key_id, want);
			seen++;
		}
		if (strcmp(objs[i].label, "kid-aes") == 0)
			assert_string_equal(objs[i].key_id, "");
		/* never the CKA_ID in hex */
		assert_true(objs[i].key_id[0] == '\0' || strlen(objs[i].key_id) == CRETO_KEYID_HEXLEN);
	}
	assert_int_equal(seen, 2); /* public and private object */
	free(objs);
	creto_pubkey_free(pub);
	creto_hsm_close(h);
}

struct thr {
	creto_hsm_key *k;
	int ok;
};

static void *sign_many(void *arg)
{
	struct thr *t = arg;
	creto_err e;
	t->ok = 1;
	for (int i = 0; i < 50; i++) {
		uint8_t sig[64];
		size_t sl;
		if (creto_hsm_key_sign(t->k, (const uint8_t *)"m", 1, sig, sizeof(sig), &sl, &e) != CRETO_OK)
			t->ok = 0;
	}
	return NULL;
}

static void test_threads_and_fork(void **state)
{
	(void)state;
	NEED_SOFTHSM();
	creto_hsm *h = open_rw();
	creto_err e;
	creto_err_clear(&e);
	assert_int_equal(creto_hsm_keygen(h, CRETO_HSM_KT_ED25519, "par", 0, NULL, &e), CRETO_OK);
	creto_p11_uri *u = NULL;
	assert_int_equal(creto_p11_uri_parse("pkcs11:object=par", &u, &e), CRETO_OK);
	creto_hsm_key *k = NULL;
	assert_int_equal(creto_hsm_key_find(h, u, CRETO_P11_TYPE_PRIVATE, &k, &e), CRETO_OK);
	struct thr t[2] = {{k, 0}, {k, 0}};
	pthread_t th[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, sign_many, &t[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	assert_true(t[0].ok && t[1].ok);

	/* A forked child re-initialises the module, logs in again, and signs;
	 * the parent keeps working afterwards. */
	uint8_t raw[64];
	size_t rl;
	creto_alg alg;
	assert_int_equal(creto_hsm_pub_raw(h, u, &alg, raw, sizeof(raw), &rl, &e), CRETO_OK);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		uint8_t sig[64];
		size_t sl = 0;
		creto_err ce;
		int rc = creto_hsm_key_sign(k, (const uint8_t *)"child", 5, sig, sizeof(sig), &sl, &ce);
		if (rc != CRETO_OK) {
			fprintf(stderr, "child: %s\n", ce.msg);
			_exit(1);
		}
		_exit(ossl_verify(alg, raw, rl, (const uint8_t *)"child", 5, sig, sl) ? 0 : 2);
	}
	int st = 0;
	waitpid(pid, &st, 0);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	uint8_t sig[64];
	size_t sl;
	assert_int_equal(creto_hsm_key_sign(k, (const uint8_t *)"p", 1, sig, sizeof(sig), &sl, &e), CRETO_OK);
	assert_true(ossl_verify(alg, raw, rl, (const uint8_t *)"p", 1, sig, sl));
	creto_hsm_key_free(k);
	creto_p11_uri_free(u);
	creto_hsm_close(h);
}

static void test_keys_open_signer(void **state)
{
	(void)state;
	NEED_SOFTHSM();
	creto_hsm *h = open_rw();
	creto_err e;
	creto_err_clear(&e);
	assert_int_equal(creto_hsm_keygen(h, CRETO_HSM_KT_EC_P256, "via-keys", 0, NULL, &e), CRETO_OK);
	assert_int_equal(creto_hsm_keygen(h, CRETO_HSM_KT_AES256, "aes-not-signer", 0, NULL, &e), CRETO_OK);
	creto_hsm_close(h);
	creto_signer *s = NULL;
	int rc = creto_keys_open_signer(uri_for("via-keys", NULL), NULL, &s, &e);
	if (rc != CRETO_OK)
		fprintf(stderr, "open_signer: %s\n", e.msg);
	assert_int_equal(rc, CRETO_OK);
	assert_string_equal(creto_signer_kind(s), "pkcs11");
	const creto_pubkey *pk = creto_signer_pubkey(s);
	assert_int_equal(creto_pubkey_alg(pk), CRETO_ALG_ECDSA_P256);
	uint8_t *sig = NULL;
	size_t sl = 0;
	const uint8_t msg[] = "signed through the signer interface";
	assert_int_equal(creto_signer_sign(s, NULL, 0, msg, sizeof(msg) - 1, &sig, &sl, &e), CRETO_OK);
	size_t rl = 0;
	const uint8_t *raw = creto_pubkey_raw(pk, &rl);
	assert_true(ossl_verify(CRETO_ALG_ECDSA_P256, raw, rl, msg, sizeof(msg) - 1, sig, sl));
	free(sig);
	/* the public key alone, without a PIN */
	creto_pubkey *pub = NULL;
	char u[1400];
	snprintf(u, sizeof(u), "pkcs11:token=unit;object=via-keys?module-path=%s", SOFTHSM);
	assert_int_equal(creto_keys_open_pubkey(u, NULL, &pub, &e), CRETO_OK);
	assert_true(creto_pubkey_equal(pub, pk));
	creto_pubkey_free(pub);
	creto_signer_free(s);
	/* an AES key cannot sign */
	assert_int_equal(creto_keys_open_signer(uri_for("aes-not-signer", NULL), NULL, &s, &e),
			 CRETO_EUSAGE);
	assert_null(s);
	/* a missing key */
	assert_int_equal(creto_keys_open_signer(uri_for("ghost", NULL), NULL, &s, &e), CRETO_EUSAGE);
	assert_null(s);
}

/* ---- injected failures: a module wrapping SoftHSM2 whose C_Login or
 * C_Sign fails the way a real HSM might ---- */

static struct ck_function_list g_real_copy, g_fake;
static ck_rv_t g_login_rv, g_sign_rv;

static ck_rv_t fake_login(ck_session_handle_t s, ck_user_type_t t, unsigned char *pin, unsigned long n)
{
	if (g_login_rv != CKR_OK)
		return g_login_rv;
	return g_real_copy.C_Login(s, t, pin, n);
}

static ck_rv_t fake_sign(ck_session_handle_t s, unsigned char *d, unsigned long dl, unsigned char *sig,
			 unsigned long *sl)
{
	if (g_sign_rv != CKR_OK)
		return g_sign_rv;
	return g_real_copy.C_Sign(s, d, dl, sig, sl);
}

static ck_rv_t fake_getfn(struct ck_function_list **out)
{
	static void *dl;
	if (dl == NULL)
		dl = dlopen(SOFTHSM, RTLD_NOW | RTLD_LOCAL);
	ck_rv_t (*g)(struct ck_function_list **) = NULL;
	void *sym = dlsym(dl, "C_GetFunctionList");
	memcpy(&g, &sym, sizeof(sym));
	struct ck_function_list *real = NULL;
	ck_rv_t rv = g(&real);
	if (rv != CKR_OK)
		return rv;
	g_real_copy = *real;
	g_fake = *real;
	g_fake.C_Login = fake_login;
	g_fake.C_Sign = fake_sign;
	*out = &g_fake;
	return CKR_OK;
}

static void test_injected_errors(void **state)
{
	(void)state;
	NEED_SOFTHSM();
	void *fn;
	ck_rv_t (*gf)(struct ck_function_list **) = fake_getfn;
	memcpy(&fn, &gf, sizeof(fn));
	creto_hsm_module_override("/fake/locked.so", fn);
	creto_err e;
	creto_err_clear(&e);
	creto_hsm *h = NULL;
	char u[1400];
	snprintf(u, sizeof(u), "pkcs11:token=unit;object=ed?module-path=/fake/locked.so&pin-source=file:%s",
		 g_tok.pin);
	g_login_rv = CKR_PIN_LOCKED;
	assert_int_equal(creto_hsm_open_uri(u, NULL, CRETO_HSM_LOGIN, &h, NULL, &e), CRETO_EOP);
	assert_string_equal(e.msg, "C_Login on token 'unit': CKR_PIN_LOCKED");
	g_login_rv = CKR_PIN_EXPIRED;
	assert_int_equal(creto_hsm_open_uri(u, NULL, CRETO_HSM_LOGIN, &h, NULL, &e), CRETO_EOP);
	assert_string_equal(e.msg, "C_Login on token 'unit': CKR_PIN_EXPIRED");
	g_login_rv = CKR_OK;
	g_sign_rv = CKR_DEVICE_ERROR;
	creto_signer *s = NULL;
	int rc = creto_keys_open_signer(u, NULL, &s, &e);
	if (rc != CRETO_OK)
		fprintf(stderr, "fake open_signer: %s\n", e.msg);
	assert_int_equal(rc, CRETO_OK);
	uint8_t *sig = NULL;
	size_t sl = 0;
	assert_int_equal(creto_signer_sign(s, NULL, 0, (const uint8_t *)"x", 1, &sig, &sl, &e), CRETO_EOP);
	assert_non_null(strstr(e.msg, "C_Sign on token 'unit': CKR_DEVICE_ERROR"));
	free(sig);
	sig = NULL;
	g_sign_rv = CKR_OK;
	rc = creto_signer_sign(s, NULL, 0, (const uint8_t *)"x", 1, &sig, &sl, &e);
	if (rc != CRETO_OK)
		fprintf(stderr, "sign after failure: %s\n", e.msg);
	assert_int_equal(rc, CRETO_OK);
	free(sig);
	creto_signer_free(s);
	creto_hsm_module_override(NULL, NULL);
}

static void test_ckr_names(void **state)
{
	(void)state;
	char b[32];
	assert_string_equal(creto_ckr_name(CKR_PIN_INCORRECT, b), "CKR_PIN_INCORRECT");
	assert_string_equal(creto_ckr_name(CKR_PIN_LOCKED, b), "CKR_PIN_LOCKED");
	assert_string_equal(creto_ckr_name(CKR_TOKEN_NOT_PRESENT, b), "CKR_TOKEN_NOT_PRESENT");
	assert_string_equal(creto_ckr_name(CKR_FUNCTION_REJECTED, b), "CKR_FUNCTION_REJECTED");
	assert_string_equal(creto_ckr_name(0x4242, b), "CKR_0x4242");
	assert_string_equal(creto_ckr_name(CKR_VENDOR_DEFINED | 7, b), "CKR_VENDOR_DEFINED+0x7");
	assert_string_equal(creto_hsm_keytype_name(CRETO_HSM_KT_AES256), "aes-256");
	assert_int_equal(creto_hsm_keytype_from_name("ec-p384"), CRETO_HSM_KT_EC_P384);
	assert_int_equal(creto_hsm_keytype_from_name("rsa"), CRETO_HSM_KT_NONE);
}

/* ---- the event sink (issue 11 §9): hsm reports a failed login through
 * the sink its caller passes in, never through the audit log ---- */

struct rec {
	int n;
	char component[16], event[16], outcome[16], subject[64], reason[64], module[600];
	int has_pin; /* any field holding the PIN text */
	int status;  /* what the sink returns */
};

static int rec_sink(void *ctx, const creto_event *ev)
{
	struct rec *r = ctx;
	r->n++;
	snprintf(r->component, sizeof(r->component), "%s", ev->component);
	snprintf(r->event, sizeof(r->event), "%s", ev->event);
	snprintf(r->outcome, sizeof(r->outcome), "%s", ev->outcome);
	snprintf(r->subject, sizeof(r->subject), "%s", ev->subject ? ev->subject : "");
	snprintf(r->reason, sizeof(r->reason), "%s", ev->reason ? ev->reason : "");
	for (size_t i = 0; i < ev->nfields; i++) {
		const char *v = ev->fields[i].str;
		if (v != NULL && strcmp(ev->fields[i].key, "module") == 0)
			snprintf(r->module, sizeof(r->module), "%s", v);
		if (v != NULL && (strstr(v, "0000-wrong") || strstr(v, "4321-user")))
			r->has_pin = 1;
	}
	return r->status;
}

static void test_login_event(void **state)
{
	(void)state;
	NEED_SOFTHSM();
	struct rec r;
	memset(&r, 0, sizeof(r));
	creto_event_sink sink = {rec_sink, &r};
	creto_hsm_opts o = {.module_path = SOFTHSM, .pin_file = g_badpin, .events = &sink};
	creto_err e;
	creto_err_clear(&e);
	creto_hsm *h = NULL;
	assert_int_equal(creto_hsm_open_uri("pkcs11:token=unit", &o, CRETO_HSM_LOGIN, &h, NULL, &e),
			 CRETO_EUSAGE);
	assert_null(h);
	assert_string_equal(e.msg, "C_Login on token 'unit': CKR_PIN_INCORRECT");
	assert_int_equal(r.n, 1);
	assert_string_equal(r.component, "hsm");
	assert_string_equal(r.event, "login");
	assert_string_equal(r.outcome, "failed");
	assert_string_equal(r.reason, "CKR_PIN_INCORRECT");
	assert_string_equal(r.subject, "unit");
	assert_string_equal(r.module, SOFTHSM);
	assert_false(r.has_pin);
	/* a sink that fails does not turn the failure into anything else */
	r.status = CRETO_EOP;
	assert_int_equal(creto_hsm_open_uri("pkcs11:token=unit", &o, CRETO_HSM_LOGIN, &h, NULL, &e),
			 CRETO_EUSAGE);
	assert_int_equal(r.n, 2);
	r.status = CRETO_OK;
	/* a good PIN and a session without login report nothing */
	o.pin_file = g_tok.pin;
	assert_int_equal(creto_hsm_open_uri("pkcs11:token=unit", &o, CRETO_HSM_LOGIN, &h, NULL, &e),
			 CRETO_OK);
	creto_hsm_close(h);
	h = NULL;
	assert_int_equal(creto_hsm_open_uri("pkcs11:token=unit", &o, 0, &h, NULL, &e), CRETO_OK);
	creto_hsm_close(h);
	h = NULL;
	assert_int_equal(r.n, 2);
	/* a locked PIN (injected) is reported with its own CKR name */
	void *fn;
	ck_rv_t (*gf)(struct ck_function_list **) = fake_getfn;
	memcpy(&fn, &gf, sizeof(fn));
	creto_hsm_module_override("/fake/events.so", fn);
	creto_hsm_opts fo = {.module_path = "/fake/events.so", .pin_file = g_tok.pin, .events = &sink};
	g_login_rv = CKR_PIN_LOCKED;
	assert_int_equal(creto_hsm_open_uri("pkcs11:token=unit", &fo, CRETO_HSM_LOGIN, &h, NULL, &e),
			 CRETO_EOP);
	g_login_rv = CKR_OK;
	assert_int_equal(r.n, 3);
	assert_string_equal(r.reason, "CKR_PIN_LOCKED");
	creto_hsm_module_override("/fake/events.so", NULL);
	/* no sink: the same failure, nothing to report to */
	o.pin_file = g_badpin;
	o.events = NULL;
	assert_int_equal(creto_hsm_open_uri("pkcs11:token=unit", &o, CRETO_HSM_LOGIN, &h, NULL, &e),
			 CRETO_EUSAGE);
	assert_int_equal(r.n, 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ckr_names),
		cmocka_unit_test(test_init_token_twice),
		cmocka_unit_test(test_open_errors),
		cmocka_unit_test(test_pin_read),
		cmocka_unit_test(test_keygen_sign),
		cmocka_unit_test(test_missing_key),
		cmocka_unit_test(test_wrap_unwrap),
		cmocka_unit_test(test_destroy),
		cmocka_unit_test(test_ambiguous_uri),
		cmocka_unit_test(test_key_ids),
		cmocka_unit_test(test_threads_and_fork),
		cmocka_unit_test(test_keys_open_signer),
		cmocka_unit_test(test_injected_errors),
		cmocka_unit_test(test_login_event),
	};
	return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
