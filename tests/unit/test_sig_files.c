/* test_sig_files.c - key files and signature files: formats, strict
 * parsing (every malformation refused), checksums, 0600 and no overwrite. */
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

#include "creto/sig.h"

static char tmpdir[] = "/tmp/test_sig_files.XXXXXX";

static int setup(void **state)
{
	(void)state;
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Replace the first occurrence of from with to in s (malloc'ed result). */
static char *replace(const char *s, const char *from, const char *to)
{
	const char *p = strstr(s, from);
	assert_non_null(p);
	size_t n = strlen(s) - strlen(from) + strlen(to);
	char *r = malloc(n + 1);
	size_t a = (size_t)(p - s);
	memcpy(r, s, a);
	strcpy(r + a, to);
	strcat(r, p + strlen(from));
	return r;
}

static void expect_pub_reject(const char *text, size_t len, const char *why)
{
	creto_pubkey *p = NULL;
	creto_err e;
	if (creto_pubkey_parse(text, len, &p, &e) != CRETO_EREJECT)
		fail_msg("public key accepted: %s", why);
	assert_null(p);
	assert_true(strlen(e.msg) > 0);
}

static void test_pubkey_file(void **state)
{
	(void)state;
	creto_signer *s = NULL;
	creto_err e;
	assert_int_equal(creto_signer_generate(CRETO_ALG_ED25519, &s, &e), CRETO_OK);
	const creto_pubkey *pk = creto_signer_pubkey(s);
	char *t = NULL;
	assert_int_equal(creto_pubkey_format(pk, NULL, &t, &e), CRETO_OK);
	/* layout */
	char head[128];
	snprintf(head, sizeof(head), "untrusted comment: creto public key %s (ed25519)\ncreto-pubkey-v1 ed25519 %s\n",
		 creto_pubkey_id(pk), creto_pubkey_id(pk));
	assert_memory_equal(t, head, strlen(head));
	size_t n = strlen(t);
	creto_pubkey *p = NULL;
	assert_int_equal(creto_pubkey_parse(t, n, &p, &e), CRETO_OK);
	assert_true(creto_pubkey_equal(p, pk));
	creto_pubkey_free(p);
	/* malformations */
	expect_pub_reject(t, n - 1, "missing final newline");
	char *x = malloc(n + 2);
	memcpy(x, t, n);
	x[n] = '\n';
	expect_pub_reject(x, n + 1, "trailing blank line");
	x[n] = 'A';
	expect_pub_reject(x, n + 1, "trailing garbage");
	free(x);
	char *r;
	r = replace(t, "untrusted comment: ", "trusted comment: ");
	expect_pub_reject(r, strlen(r), "bad comment prefix");
	free(r);
	r = replace(t, "creto public key", "creto\tpublic key");
	expect_pub_reject(r, strlen(r), "control char in comment");
	free(r);
	r = replace(t, "creto-pubkey-v1 ed25519", "creto-pubkey-v2 ed25519");
	expect_pub_reject(r, strlen(r), "tag");
	free(r);
	r = replace(t, "creto-pubkey-v1 ed25519", "creto-pubkey-v1 ed448");
	expect_pub_reject(r, strlen(r), "alg");
	free(r);
	r = replace(t, "creto-pubkey-v1 ed25519", "creto-pubkey-v1 ecdsa-p256");
	expect_pub_reject(r, strlen(r), "alg with wrong length");
	free(r);
	r = replace(t, "creto-pubkey-v1 ed25519", "creto-pubkey-v1  ed25519");
	expect_pub_reject(r, strlen(r), "double space");
	free(r);
	/* key id that does not match the body */
	char wrongid[32];
	snprintf(wrongid, sizeof(wrongid), "ed25519 %s\n", creto_pubkey_id(pk));
	char bad[32];
	snprintf(bad, sizeof(bad), "ed25519 %.15s%c\n", creto_pubkey_id(pk),
		 creto_pubkey_id(pk)[15] == '0' ? '1' : '0');
	r = replace(t, wrongid, "ed25519\n");
	expect_pub_reject(r, strlen(r), "missing key id");
	free(r);
	r = replace(t, wrongid, bad);
	expect_pub_reject(r, strlen(r), "key id mismatch");
	free(r);
	/* uppercase key id */
	char upper[32];
	snprintf(upper, sizeof(upper), "ed25519 %s\n", creto_pubkey_id(pk));
	for (char *c = upper + 8; *c; c++)
		if (*c >= 'a' && *c <= 'f')
			*c = (char)(*c - 32);
	if (strcmp(upper, wrongid) != 0) {
		r = replace(t, wrongid, upper);
		expect_pub_reject(r, strlen(r), "uppercase key id");
		free(r);
	}
	/* body: short, CRLF */
	char *l3 = strstr(strstr(t, "creto-pubkey-v1"), "\n") + 1;
	r = replace(t, l3, "AAAA\n");
	expect_pub_reject(r, strlen(r), "short body");
	free(r);
	char *crlf = malloc(strlen(t) + 2);
	strcpy(crlf, t);
	strcpy(crlf + strlen(t) - 1, "\r\n");
	expect_pub_reject(crlf, strlen(crlf), "CRLF");
	free(crlf);
	/* NUL inside */
	char *nul = strdup(t);
	nul[5] = 0;
	expect_pub_reject(nul, n, "NUL in comment");
	free(nul);
	/* oversize */
	char *huge = calloc(1, CRETO_KEYFILE_MAX + 10);
	memset(huge, 'a', CRETO_KEYFILE_MAX + 5);
	expect_pub_reject(huge, CRETO_KEYFILE_MAX + 5, "oversize");
	free(huge);
	expect_pub_reject("", 0, "empty");
	/* user comment: printable only, bounded */
	char *c2 = NULL;
	assert_int_equal(creto_pubkey_format(pk, "officer 1 (alice)", &c2, &e), CRETO_OK);
	assert_non_null(strstr(c2, "untrusted comment: officer 1 (alice)\n"));
	free(c2);
	assert_int_equal(creto_pubkey_format(pk, "two\nlines", &c2, &e), CRETO_EUSAGE);
	free(t);
	creto_signer_free(s);
}

static void test_secret_file(void **state)
{
	(void)state;
	static const creto_alg algs[] = {CRETO_ALG_ED25519, CRETO_ALG_ECDSA_P256, CRETO_ALG_ECDSA_P384,
					 CRETO_ALG_MLDSA44, CRETO_ALG_MLDSA65, CRETO_ALG_MLDSA87,
					 CRETO_ALG_HYBRID, CRETO_ALG_HYBRID_CNSA2};
	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
		creto_signer *s = NULL, *s2 = NULL;
		creto_err e;
		char *t = NULL;
		assert_int_equal(creto_signer_generate(algs[i], &s, &e), CRETO_OK);
		assert_int_equal(creto_secretkey_format(s, NULL, &t, &e), CRETO_OK);
		assert_non_null(strstr(t, "\ncreto-seckey-v1 "));
		size_t n = strlen(t);
		assert_int_equal(creto_secretkey_parse(t, n, &s2, &e), CRETO_OK);
		assert_true(creto_pubkey_equal(creto_signer_pubkey(s), creto_signer_pubkey(s2)));
		creto_signer_free(s2);
		s2 = NULL;
		/* corrupt each body character in turn (changing it to another
		 * valid base64 char): checksum or canonical-base64 check refuses */
		char *l3 = strchr(strchr(t, '\n') + 1, '\n') + 1;
		size_t bl = strlen(l3) - 1;
		for (size_t k = 0; k < bl; k++) {
			char saved = l3[k];
			if (saved == '=')
				continue;
			l3[k] = saved == 'A' ? 'B' : 'A';
			int rc = creto_secretkey_parse(t, n, &s2, &e);
			if (rc != CRETO_EREJECT)
				fail_msg("%s: corrupted body char %zu accepted", creto_alg_name(algs[i]), k);
			assert_null(s2);
			l3[k] = saved;
		}
		/* a public key file is not a secret key file and vice versa */
		char *pt = NULL;
		creto_pubkey *pp = NULL;
		assert_int_equal(creto_pubkey_format(creto_signer_pubkey(s), NULL, &pt, &e), CRETO_OK);
		assert_int_equal(creto_secretkey_parse(pt, strlen(pt), &s2, &e), CRETO_EREJECT);
		assert_int_equal(creto_pubkey_parse(t, n, &pp, &e), CRETO_EREJECT);
		/* trailing garbage */
		char *x = malloc(n + 2);
		memcpy(x, t, n);
		x[n] = ' ';
		assert_int_equal(creto_secretkey_parse(x, n + 1, &s2, &e), CRETO_EREJECT);
		free(x);
		free(pt);
		creto_secret_text_free(t);
		creto_signer_free(s);
	}
}

static void test_checksum_message(void **state)
{
	(void)state;
	creto_signer *s = NULL, *s2 = NULL;
	creto_err e;
	char *t = NULL;
	assert_int_equal(creto_signer_generate(CRETO_ALG_ED25519, &s, &e), CRETO_OK);
	assert_int_equal(creto_secretkey_format(s, NULL, &t, &e), CRETO_OK);
	char *l3 = strchr(strchr(t, '\n') + 1, '\n') + 1;
	l3[0] = l3[0] == 'A' ? 'B' : 'A'; /* first secret byte changes: checksum catches it */
	assert_int_equal(creto_secretkey_parse(t, strlen(t), &s2, &e), CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "checksum mismatch"));
	creto_secret_text_free(t);
	creto_signer_free(s);
}

static void test_generate_files(void **state)
{
	(void)state;
	char name[256], kp[300], pp[300];
	creto_err e;
	snprintf(name, sizeof(name), "%s/officer", tmpdir);
	snprintf(kp, sizeof(kp), "%s.key", name);
	snprintf(pp, sizeof(pp), "%s.pub", name);
	assert_int_equal(creto_key_generate(CRETO_ALG_HYBRID, name, &e), CRETO_OK);
	struct stat st;
	assert_int_equal(stat(kp, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(stat(pp, &st), 0);
	assert_int_equal(st.st_mode & 0022, 0);
	/* never overwritten */
	struct stat before;
	assert_int_equal(stat(kp, &before), 0);
	assert_int_equal(creto_key_generate(CRETO_ALG_ED25519, name, &e), CRETO_EUSAGE);
	assert_non_null(strstr(e.msg, "already exists"));
	assert_int_equal(stat(kp, &st), 0);
	assert_int_equal(st.st_ino, before.st_ino);
	assert_int_equal(st.st_size, before.st_size);
	/* a stray .pub alone also blocks generation, and no .key appears */
	char n2[256], k2[300], p2[300];
	snprintf(n2, sizeof(n2), "%s/other", tmpdir);
	snprintf(k2, sizeof(k2), "%s.key", n2);
	snprintf(p2, sizeof(p2), "%s.pub", n2);
	FILE *f = fopen(p2, "w");
	fclose(f);
	assert_int_equal(creto_key_generate(CRETO_ALG_ED25519, n2, &e), CRETO_EUSAGE);
	assert_int_not_equal(access(k2, F_OK), 0);
	/* load both and sign/verify */
	creto_signer *s = NULL;
	creto_pubkey *p = NULL;
	assert_int_equal(creto_secretkey_load(kp, &s, &e), CRETO_OK);
	assert_int_equal(creto_pubkey_load(pp, &p, &e), CRETO_OK);
	assert_true(creto_pubkey_equal(p, creto_signer_pubkey(s)));
	uint8_t *sig = NULL;
	size_t sl = 0;
	assert_int_equal(creto_signer_sign(s, NULL, 0, (const uint8_t *)"x", 1, &sig, &sl, &e), CRETO_OK);
	assert_int_equal(creto_pubkey_verify(p, NULL, 0, (const uint8_t *)"x", 1, sig, sl, &e), CRETO_OK);
	free(sig);
	creto_signer_free(s);
	creto_pubkey_free(p);
	/* missing file: operational; symlink refused */
	char missing[300], link[300];
	snprintf(missing, sizeof(missing), "%s/none.key", tmpdir);
	assert_int_equal(creto_secretkey_load(missing, &s, &e), CRETO_EOP);
	snprintf(link, sizeof(link), "%s/link.key", tmpdir);
	assert_int_equal(symlink(kp, link), 0);
	assert_int_equal(creto_secretkey_load(link, &s, &e), CRETO_EREJECT);
	assert_null(s);
	assert_int_equal(creto_key_generate(CRETO_ALG_NONE, name, &e), CRETO_EUSAGE);
}

static void test_sigfile(void **state)
{
	(void)state;
	creto_signer *s = NULL;
	creto_err e;
	assert_int_equal(creto_signer_generate(CRETO_ALG_ECDSA_P256, &s, &e), CRETO_OK);
	const creto_pubkey *pk = creto_signer_pubkey(s);
	uint8_t *sig = NULL;
	size_t sl = 0;
	assert_int_equal(creto_signer_sign(s, NULL, 0, (const uint8_t *)"m", 1, &sig, &sl, &e), CRETO_OK);
	char *t = NULL;
	assert_int_equal(creto_sigfile_format(pk, sig, sl, &t, &e), CRETO_OK);
	char line2[64];
	snprintf(line2, sizeof(line2), "\ncreto-sig-v1 ecdsa-p256 %s\n", creto_pubkey_id(pk));
	assert_non_null(strstr(t, line2));
	creto_sigfile sf;
	assert_int_equal(creto_sigfile_parse(t, strlen(t), &sf, &e), CRETO_OK);
	assert_int_equal(sf.alg, CRETO_ALG_ECDSA_P256);
	assert_string_equal(sf.keyid, creto_pubkey_id(pk));
	assert_int_equal(sf.siglen, 64);
	assert_memory_equal(sf.sig, sig, 64);
	creto_sigfile_clear(&sf);
	creto_sigfile_clear(&sf);
	/* the algorithm decides the length: an ed25519 tag with a 64-byte body
	 * parses, a p384 tag does not */
	char *r = replace(t, "creto-sig-v1 ecdsa-p256", "creto-sig-v1 ecdsa-p384");
	assert_int_equal(creto_sigfile_parse(r, strlen(r), &sf, &e), CRETO_EREJECT);
	assert_null(sf.sig);
	free(r);
	r = replace(t, "creto-sig-v1", "creto-pubkey-v1");
	assert_int_equal(creto_sigfile_parse(r, strlen(r), &sf, &e), CRETO_EREJECT);
	free(r);
	assert_int_equal(creto_sigfile_parse(t, strlen(t) - 1, &sf, &e), CRETO_EREJECT);
	/* a wrong-length signature cannot be formatted */
	char *t2 = NULL;
	assert_int_equal(creto_sigfile_format(pk, sig, sl - 1, &t2, &e), CRETO_EUSAGE);
	free(t);
	free(sig);
	creto_signer_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pubkey_file),      cmocka_unit_test(test_secret_file),
		cmocka_unit_test(test_checksum_message), cmocka_unit_test(test_generate_files),
		cmocka_unit_test(test_sigfile),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
