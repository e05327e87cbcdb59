/*
 * test_hsm_hybrid.c - the hybrid HSM key against SoftHSM2: keygen of both
 * profiles, signing through a pkcs11: URI with x-creto-pq, verification
 * with the sig module, and refusals: a tampered or foreign key file, a
 * missing file, a wrapping key that does not match, and rollback of a
 * keygen that cannot write its file; the public-key path refusing a file
 * made for another key and (with a PIN) an edited public-key line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "creto/hsm.h"
#include "creto/keys.h"
#include "creto/sig.h"

#include "softhsm_token.h"

static struct softhsm_token g_tok;
static int g_have;
static creto_keys_opts g_opts;   /* for creto_keys_* */
static creto_hsm_opts g_hopts;   /* the same, for creto_hsm_* */

static int setup_all(void **state)
{
	(void)state;
	g_have = access(SOFTHSM, R_OK) == 0;
	if (!g_have)
		return 0;
	if (softhsm_token_make(&g_tok, "test_hsm_hybrid", "hyb", "1111", "2222") != 0)
		return -1;
	g_opts.module_path = SOFTHSM;
	g_opts.pin_file = g_tok.pin;
	g_hopts.module_path = SOFTHSM;
	g_hopts.pin_file = g_tok.pin;
	return 0;
}

static int teardown_all(void **state)
{
	(void)state;
	return softhsm_token_remove(&g_tok);
}

static char g_last_kid[CRETO_KEYID_HEXLEN + 1]; /* key id of the last keygen */

static void keygen(creto_alg alg, const char *label, const char *path)
{
	creto_err e;
	creto_err_clear(&e);
	creto_hsm *h = NULL;
	assert_int_equal(creto_hsm_open_uri("pkcs11:token=hyb", &g_hopts, CRETO_HSM_LOGIN | CRETO_HSM_RW,
					    &h, NULL, &e),
			 CRETO_OK);
	int rc = creto_hsm_hybrid_keygen(h, alg, label, path, g_last_kid, &e);
	if (rc != CRETO_OK)
		fprintf(stderr, "hybrid keygen: %s\n", e.msg);
	assert_int_equal(rc, CRETO_OK);
	creto_hsm_close(h);
}

static void sign_verify(creto_alg alg, const char *label)
{
	char path[900], uri[1900];
	snprintf(path, sizeof(path), "%s/%s.pqkey", g_tok.dir, label);
	keygen(alg, label, path);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	snprintf(uri, sizeof(uri), "pkcs11:token=hyb;object=%s?x-creto-pq=%s", label, path);
	creto_err e;
	creto_err_clear(&e);
	creto_signer *s = NULL;
	int rc = creto_keys_open_signer(uri, &g_opts, &s, &e);
	if (rc != CRETO_OK)
		fprintf(stderr, "open: %s\n", e.msg);
	assert_int_equal(rc, CRETO_OK);
	const creto_pubkey *pk = creto_signer_pubkey(s);
	assert_int_equal(creto_pubkey_alg(pk), alg);
	assert_string_equal(creto_signer_kind(s), "hybrid(pkcs11)");
	const uint8_t msg[] = "hybrid: both halves must verify";
	const uint8_t ctx[] = "test";
	uint8_t *sig = NULL;
	size_t sl = 0;
	rc = creto_signer_sign(s, ctx, 4, msg, sizeof(msg) - 1, &sig, &sl, &e);
	if (rc != CRETO_OK)
		fprintf(stderr, "sign: %s\n", e.msg);
	assert_int_equal(rc, CRETO_OK);
	assert_int_equal(sl, creto_alg_sig_len(alg));
	assert_int_equal(creto_pubkey_verify(pk, ctx, 4, msg, sizeof(msg) - 1, sig, sl, &e), CRETO_OK);
	/* the public key read through the URI alone (no PIN) is the same */
	creto_pubkey *pub = NULL;
	rc = creto_hsm_open_pubkey(uri, NULL, &pub, &e);
	if (rc != CRETO_OK)
		fprintf(stderr, "pub: %s\n", e.msg);
	assert_int_equal(rc, CRETO_OK);
	assert_true(creto_pubkey_equal(pub, pk));
	/* keygen reported the creto key id of this hybrid key (issue 11 §6) */
	assert_string_equal(g_last_kid, creto_pubkey_id(pub));
	/* each half matters */
	sig[sl - 5] ^= 1;
	assert_int_equal(creto_pubkey_verify(pub, ctx, 4, msg, sizeof(msg) - 1, sig, sl, &e), CRETO_EREJECT);
	sig[sl - 5] ^= 1;
	sig[3] ^= 1;
	assert_int_equal(creto_pubkey_verify(pub, ctx, 4, msg, sizeof(msg) - 1, sig, sl, &e), CRETO_EREJECT);
	free(sig);
	creto_pubkey_free(pub);
	creto_signer_free(s);
}

static void test_hybrid(void **state)
{
	(void)state;
	if (!g_have)
		skip();
	sign_verify(CRETO_ALG_HYBRID, "root");
}

static void test_hybrid_cnsa2(void **state)
{
	(void)state;
	if (!g_have)
		skip();
	sign_verify(CRETO_ALG_HYBRID_CNSA2, "cnsa");
}

/* Replace the first occurrence of from with to in the file (same length). */
static void patch(const char *src, const char *dst, const char *from, const char *to)
{
	FILE *f = fopen(src, "rb");
	assert_non_null(f);
	char buf[20000];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strstr(buf, from);
	assert_non_null(p);
	memcpy(p, to, strlen(to));
	unlink(dst);
	f = fopen(dst, "wb");
	fwrite(buf, 1, n, f);
	fclose(f);
}

static int sign_with(const char *label, const char *path, creto_err *e)
{
	char uri[1900];
	snprintf(uri, sizeof(uri), "pkcs11:token=hyb;object=%s?x-creto-pq=%s", label, path);
	creto_signer *s = NULL;
	int rc = creto_keys_open_signer(uri, &g_opts, &s, e);
	if (rc != CRETO_OK)
		return rc;
	uint8_t *sig = NULL;
	size_t sl;
	rc = creto_signer_sign(s, NULL, 0, (const uint8_t *)"m", 1, &sig, &sl, e);
	free(sig);
	creto_signer_free(s);
	return rc;
}

static void test_refusals(void **state)
{
	(void)state;
	if (!g_have)
		skip();
	char a[900], b[900], bad[900];
	snprintf(a, sizeof(a), "%s/ka.pqkey", g_tok.dir);
	snprintf(b, sizeof(b), "%s/kb.pqkey", g_tok.dir);
	snprintf(bad, sizeof(bad), "%s/bad.pqkey", g_tok.dir);
	keygen(CRETO_ALG_HYBRID, "ka", a);
	keygen(CRETO_ALG_HYBRID, "kb", b);
	creto_err e;
	creto_err_clear(&e);
	assert_int_equal(sign_with("ka", a, &e), CRETO_OK);
	/* another key's file */
	assert_int_equal(sign_with("ka", b, &e), CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "belongs to key 'kb'"));
	/* a header field changed: GCM's AAD catches it at signing */
	patch(a, bad, "wrap-label: ka.pq-wrap", "wrap-label: kb.pq-wrap");
	assert_int_equal(sign_with("ka", bad, &e), CRETO_EREJECT); /* kb.pq-wrap has another id */
	assert_non_null(strstr(e.msg, "bad.pqkey: data key"));
	/* ciphertext tampered */
	FILE *f = fopen(a, "rb");
	char buf[20000];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *ct = strstr(buf, "ciphertext: ");
	assert_non_null(ct);
	ct[12] = ct[12] == 'A' ? 'B' : 'A';
	unlink(bad);
	f = fopen(bad, "wb");
	fwrite(buf, 1, n, f);
	fclose(f);
	assert_int_equal(sign_with("ka", bad, &e), CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "authentication failed"));
	/* public key changed: AAD again */
	f = fopen(a, "rb");
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *pk = strstr(buf, "public-key: ");
	pk[20] = pk[20] == 'A' ? 'B' : 'A';
	unlink(bad);
	f = fopen(bad, "wb");
	fwrite(buf, 1, n, f);
	fclose(f);
	assert_int_equal(sign_with("ka", bad, &e), CRETO_EREJECT);
	/* malformed */
	write_file(bad, "creto-hsm-pq-key-v1\nalg: hybrid\n");
	assert_int_equal(sign_with("ka", bad, &e), CRETO_EREJECT);
	write_file(bad, "not a key\n");
	assert_int_equal(sign_with("ka", bad, &e), CRETO_EREJECT);
	/* trailing bytes */
	f = fopen(a, "rb");
	n = fread(buf, 1, sizeof(buf) - 2, f);
	fclose(f);
	buf[n] = 'x';
	unlink(bad);
	f = fopen(bad, "wb");
	fwrite(buf, 1, n + 1, f);
	fclose(f);
	assert_int_equal(sign_with("ka", bad, &e), CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "trailing"));
	/* missing file, relative path */
	snprintf(bad, sizeof(bad), "%s/none.pqkey", g_tok.dir);
	assert_int_equal(sign_with("ka", bad, &e), CRETO_EOP);
	assert_int_equal(sign_with("ka", "rel.pqkey", &e), CRETO_EUSAGE);
	/* an Ed25519 file with a P-384 classical key */
	char c[900];
	snprintf(c, sizeof(c), "%s/kc.pqkey", g_tok.dir);
	keygen(CRETO_ALG_HYBRID_CNSA2, "kc", c);
	assert_int_equal(sign_with("kc", a, &e), CRETO_EREJECT);
}

/* dst = src with its line starting with `name` taken from donor. */
static void swap_line(const char *src, const char *donor, const char *dst, const char *name)
{
	static char a[20000], d[20000], out[40000];
	FILE *f = fopen(src, "rb");
	assert_non_null(f);
	size_t na = fread(a, 1, sizeof(a) - 1, f);
	fclose(f);
	a[na] = '\0';
	f = fopen(donor, "rb");
	assert_non_null(f);
	size_t nd = fread(d, 1, sizeof(d) - 1, f);
	fclose(f);
	d[nd] = '\0';
	char *la = strstr(a, name), *ld = strstr(d, name);
	assert_non_null(la);
	assert_non_null(ld);
	char *ea = strchr(la, '\n'), *ed = strchr(ld, '\n');
	assert_non_null(ea);
	assert_non_null(ed);
	int n = snprintf(out, sizeof(out), "%.*s%.*s%s", (int)(la - a), a, (int)(ed - ld), ld, ea);
	assert_true(n > 0 && (size_t)n < sizeof(out));
	unlink(dst);
	f = fopen(dst, "wb");
	assert_non_null(f);
	fwrite(out, 1, (size_t)n, f);
	fclose(f);
}

static int pub_with(const char *label, const char *path, const creto_hsm_opts *o,
		    creto_pubkey **pk, creto_err *e)
{
	char uri[1900];
	snprintf(uri, sizeof(uri), "pkcs11:token=hyb;object=%s?x-creto-pq=%s", label, path);
	*pk = NULL;
	creto_err_clear(e);
	return creto_hsm_open_pubkey(uri, o, pk, e);
}

/* The public-key path (creto hsm pub, trust-root export) accepts only the
 * file made for the key the URI names; with a PIN, the file's public key
 * is authenticated too. */
static void test_pubkey_binding(void **state)
{
	(void)state;
	if (!g_have)
		skip();
	char a[900], b[900], c[900], bad[900];
	snprintf(a, sizeof(a), "%s/pa.pqkey", g_tok.dir);
	snprintf(b, sizeof(b), "%s/pb.pqkey", g_tok.dir);
	snprintf(c, sizeof(c), "%s/pc.pqkey", g_tok.dir);
	snprintf(bad, sizeof(bad), "%s/pbad.pqkey", g_tok.dir);
	keygen(CRETO_ALG_HYBRID, "pa", a);
	keygen(CRETO_ALG_HYBRID, "pb", b);
	keygen(CRETO_ALG_HYBRID_CNSA2, "pc", c);
	creto_hsm_opts nopin = {.module_path = SOFTHSM};
	creto_err e;
	creto_pubkey *good = NULL, *pk = NULL;
	assert_int_equal(pub_with("pa", a, &g_hopts, &good, &e), CRETO_OK);
	assert_int_equal(pub_with("pa", a, &nopin, &pk, &e), CRETO_OK);
	assert_true(creto_pubkey_equal(pk, good));
	creto_pubkey_free(pk);
	/* another key's file: refused with and without a PIN */
	assert_int_equal(pub_with("pa", b, &nopin, &pk, &e), CRETO_EREJECT);
	assert_null(pk);
	assert_non_null(strstr(e.msg, "pb.pqkey: belongs to key 'pb'"));
	assert_non_null(strstr(e.msg, "not to key 'pa' on token 'hyb'"));
	assert_int_equal(pub_with("pa", b, &g_hopts, &pk, &e), CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "belongs to key 'pb'"));
	/* a file made for a P-384 key */
	assert_int_equal(pub_with("pa", c, &nopin, &pk, &e), CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "made for a ecdsa-p384 key"));
	/* another key's public-key line in the right file: the GCM tag
	 * catches it when the file can be unsealed (PIN) */
	swap_line(a, b, bad, "public-key: ");
	assert_int_equal(pub_with("pa", bad, &g_hopts, &pk, &e), CRETO_EREJECT);
	assert_null(pk);
	assert_non_null(strstr(e.msg, "pbad.pqkey: authentication failed"));
	/* without a PIN only the binding is checked (docs/keys.md §4): the
	 * swapped key comes through, and it is not the genuine one */
	assert_int_equal(pub_with("pa", bad, &nopin, &pk, &e), CRETO_OK);
	assert_false(creto_pubkey_equal(pk, good));
	creto_pubkey_free(pk);
	/* binding fields: id, label, token */
	swap_line(a, b, bad, "classical-id: ");
	assert_int_equal(pub_with("pa", bad, &nopin, &pk, &e), CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "belongs to key 'pa' (id "));
	patch(a, bad, "classical-label: pa", "classical-label: pb");
	assert_int_equal(pub_with("pa", bad, &nopin, &pk, &e), CRETO_EREJECT);
	patch(a, bad, "token: hyb", "token: hyc");
	assert_int_equal(pub_with("pa", bad, &nopin, &pk, &e), CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "made for token 'hyc', not 'hyb'"));
	/* a wrapping key that is not this file's: fails the unwrap with a PIN */
	swap_line(a, b, bad, "wrapped-data-key: ");
	assert_int_equal(pub_with("pa", bad, &g_hopts, &pk, &e), CRETO_EREJECT);
	creto_pubkey_free(good);
}

static void test_keygen_rollback(void **state)
{
	(void)state;
	if (!g_have)
		skip();
	creto_err e;
	creto_hsm *h = NULL;
	assert_int_equal(creto_hsm_open_uri("pkcs11:token=hyb", &g_hopts, CRETO_HSM_LOGIN | CRETO_HSM_RW,
					    &h, NULL, &e),
			 CRETO_OK);
	char path[900];
	snprintf(path, sizeof(path), "%s/no/such/dir/x.pqkey", g_tok.dir);
	assert_int_not_equal(creto_hsm_hybrid_keygen(h, CRETO_ALG_HYBRID, "gone", path, NULL, &e), CRETO_OK);
	creto_hsm_obj *objs = NULL;
	size_t n = 0;
	assert_int_equal(creto_hsm_list(h, &objs, &n, &e), CRETO_OK);
	for (size_t i = 0; i < n; i++)
		assert_true(strncmp(objs[i].label, "gone", 4) != 0);
	free(objs);
	/* an existing file or a taken label: refused before anything is made */
	snprintf(path, sizeof(path), "%s/root.pqkey", g_tok.dir);
	if (access(path, F_OK) == 0)
		assert_int_equal(creto_hsm_hybrid_keygen(h, CRETO_ALG_HYBRID, "fresh", path, NULL, &e), CRETO_EUSAGE);
	snprintf(path, sizeof(path), "%s/fresh2.pqkey", g_tok.dir);
	assert_int_equal(creto_hsm_keygen(h, CRETO_HSM_KT_AES256, "taken.pq-wrap", 0, NULL, &e), CRETO_OK);
	assert_int_equal(creto_hsm_hybrid_keygen(h, CRETO_ALG_HYBRID, "taken", path, NULL, &e), CRETO_EUSAGE);
	assert_int_not_equal(access(path, F_OK), 0);
	assert_int_equal(creto_hsm_hybrid_keygen(h, CRETO_ALG_ED25519, "x", path, NULL, &e), CRETO_EUSAGE);
	creto_hsm_close(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hybrid),
		cmocka_unit_test(test_hybrid_cnsa2),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_pubkey_binding),
		cmocka_unit_test(test_keygen_rollback),
	};
	return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
