/*
 * test_mldsa_acvp.c - every NIST ACVP ML-DSA (FIPS 204) case: keyGen,
 * sigGen (external pure, external preHash, internal with and without
 * externalMu; deterministic and hedged) and sigVer, for ML-DSA-44/65/87.
 *
 * Vectors: $CRETO_VECTORS_DIR/acvp/ML-DSA-{keyGen,sigGen,sigVer}-FIPS204/
 * (by default tests/vectors/acvp/ of the source tree, see its README.md),
 * prompt.json joined with expectedResults.json on tgId and tcId.  Case
 * counts are asserted so that a truncated vector file cannot pass.  Each
 * sigVer case is verified twice, with the key new and then cached (the two
 * ways verification computes c t1).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sig/mldsa/mldsa.h"
#include "util/enc.h"

/* Variant programs (other back ends) run every ACVP_STRIDE-th case of each
 * group; this program runs them all. */
#ifndef ACVP_STRIDE
#define ACVP_STRIDE 1
#endif
#define PER_GROUP(n) (((n) + ACVP_STRIDE - 1) / ACVP_STRIDE)

static json_t *load(const char *folder, const char *file)
{
	const char *dir = getenv("CRETO_VECTORS_DIR");
	if (dir == NULL || *dir == '\0')
		dir = CRETO_VECTORS_DEFAULT; /* tests/vectors of the source tree */
	char path[4096];
	snprintf(path, sizeof(path), "%s/acvp/%s/%s", dir, folder, file);
	json_error_t err;
	json_t *j = json_load_file(path, 0, &err);
	if (j == NULL)
		fail_msg("%s: %s (line %d)", path, err.text, err.line);
	return j;
}

/* The group / test in expectedResults with the given ids. */
static json_t *find_by_id(json_t *arr, const char *key, json_int_t id)
{
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v) {
		if (json_integer_value(json_object_get(v, key)) == id)
			return v;
	}
	fail_msg("%s %lld not found in expected results", key, (long long)id);
	return NULL;
}

static creto_mldsa_ps ps_of(json_t *group)
{
	const char *s = json_string_value(json_object_get(group, "parameterSet"));
	assert_non_null(s);
	if (strcmp(s, "ML-DSA-44") == 0)
		return CRETO_MLDSA_44;
	if (strcmp(s, "ML-DSA-65") == 0)
		return CRETO_MLDSA_65;
	if (strcmp(s, "ML-DSA-87") == 0)
		return CRETO_MLDSA_87;
	fail_msg("unknown parameterSet %s", s);
	return CRETO_MLDSA_44;
}

/* Hex field of obj into a fresh buffer; *len set.  NULL if absent. */
static uint8_t *hexfield(json_t *obj, const char *name, size_t *len)
{
	const char *s = json_string_value(json_object_get(obj, name));
	if (s == NULL) {
		*len = 0;
		return NULL;
	}
	size_t n = strlen(s);
	uint8_t *b = malloc(n / 2 + 1);
	assert_non_null(b);
	assert_int_equal(creto_hex_decode(b, n / 2 + 1, len, s, n), 0);
	return b;
}

static const char *str(json_t *obj, const char *name)
{
	return json_string_value(json_object_get(obj, name));
}

static void test_keygen(void **state)
{
	(void)state;
	json_t *prompt = load("ML-DSA-keyGen-FIPS204", "prompt.json");
	json_t *expect = load("ML-DSA-keyGen-FIPS204", "expectedResults.json");
	json_t *egroups = json_object_get(expect, "testGroups");
	unsigned count[3] = {0, 0, 0}, total = 0;
	size_t gi, ti;
	json_t *g, *t;
	json_array_foreach(json_object_get(prompt, "testGroups"), gi, g) {
		creto_mldsa_ps ps = ps_of(g);
		json_t *eg = find_by_id(egroups, "tgId", json_integer_value(json_object_get(g, "tgId")));
		json_array_foreach(json_object_get(g, "tests"), ti, t) {
			if (ti % ACVP_STRIDE != 0)
				continue;
			json_t *et = find_by_id(json_object_get(eg, "tests"), "tcId",
						json_integer_value(json_object_get(t, "tcId")));
			size_t seedlen, pklen, sklen;
			uint8_t *seed = hexfield(t, "seed", &seedlen);
			uint8_t *epk = hexfield(et, "pk", &pklen);
			uint8_t *esk = hexfield(et, "sk", &sklen);
			assert_int_equal(seedlen, 32);
			assert_int_equal(pklen, creto_mldsa_pk_bytes(ps));
			assert_int_equal(sklen, creto_mldsa_sk_bytes(ps));
			uint8_t pk[CRETO_MLDSA_PK_MAX], sk[CRETO_MLDSA_SK_MAX], pk2[CRETO_MLDSA_PK_MAX];
			assert_int_equal(creto_mldsa_keygen(ps, seed, pk, sk), 0);
			assert_memory_equal(pk, epk, pklen);
			assert_memory_equal(sk, esk, sklen);
			assert_int_equal(creto_mldsa_pk_from_sk(ps, sk, pk2), 0);
			assert_memory_equal(pk2, epk, pklen);
			count[ps == CRETO_MLDSA_44 ? 0 : ps == CRETO_MLDSA_65 ? 1 : 2]++;
			total++;
			free(seed);
			free(epk);
			free(esk);
		}
	}
	printf("keyGen: %u cases (44: %u, 65: %u, 87: %u)\n", total, count[0], count[1], count[2]);
	assert_int_equal(count[0], PER_GROUP(25));
	assert_int_equal(count[1], PER_GROUP(25));
	assert_int_equal(count[2], PER_GROUP(25));
	json_decref(prompt);
	json_decref(expect);
}

static void test_siggen(void **state)
{
	(void)state;
	json_t *prompt = load("ML-DSA-sigGen-FIPS204", "prompt.json");
	json_t *expect = load("ML-DSA-sigGen-FIPS204", "expectedResults.json");
	json_t *egroups = json_object_get(expect, "testGroups");
	/* [ps][variant][deterministic]: variant 0 pure, 1 preHash, 2 internal, 3 externalMu */
	unsigned count[3][4][2];
	memset(count, 0, sizeof(count));
	unsigned total = 0;
	size_t gi, ti;
	json_t *g, *t;
	json_array_foreach(json_object_get(prompt, "testGroups"), gi, g) {
		creto_mldsa_ps ps = ps_of(g);
		int det = json_is_true(json_object_get(g, "deterministic"));
		const char *iface = str(g, "signatureInterface");
		const char *pre = str(g, "preHash");
		int extmu = json_is_true(json_object_get(g, "externalMu"));
		assert_non_null(iface);
		int variant = strcmp(iface, "internal") == 0 ? (extmu ? 3 : 2)
							   : (strcmp(pre, "preHash") == 0 ? 1 : 0);
		json_t *eg = find_by_id(egroups, "tgId", json_integer_value(json_object_get(g, "tgId")));
		json_array_foreach(json_object_get(g, "tests"), ti, t) {
			if (ti % ACVP_STRIDE != 0)
				continue;
			json_t *et = find_by_id(json_object_get(eg, "tests"), "tcId",
						json_integer_value(json_object_get(t, "tcId")));
			size_t sklen, msglen, ctxlen, mulen, rndlen, esiglen;
			uint8_t *sk = hexfield(t, "sk", &sklen);
			uint8_t *msg = hexfield(t, "message", &msglen);
			uint8_t *ctx = hexfield(t, "context", &ctxlen);
			uint8_t *mu = hexfield(t, "mu", &mulen);
			uint8_t *rndp = hexfield(t, "rnd", &rndlen);
			uint8_t *esig = hexfield(et, "signature", &esiglen);
			uint8_t rnd[32] = {0};
			if (!det) {
				assert_non_null(rndp);
				assert_int_equal(rndlen, 32);
				memcpy(rnd, rndp, 32);
			}
			assert_int_equal(sklen, creto_mldsa_sk_bytes(ps));
			assert_int_equal(esiglen, creto_mldsa_sig_bytes(ps));
			uint8_t sig[CRETO_MLDSA_SIG_MAX], pk[CRETO_MLDSA_PK_MAX];
			const uint8_t *m = msg ? msg : (const uint8_t *)"";
			int rc = -1, vrc = -1;
			assert_int_equal(creto_mldsa_pk_from_sk(ps, sk, pk), 0);
			switch (variant) {
			case 0:
				rc = creto_mldsa_sign(ps, sk, ctx, ctxlen, m, msglen, rnd, sig);
				vrc = creto_mldsa_verify(ps, pk, ctx, ctxlen, m, msglen, sig, esiglen);
				break;
			case 1:
				rc = creto_mldsa_sign_prehash(ps, sk, ctx, ctxlen, str(t, "hashAlg"), m,
							      msglen, rnd, sig);
				vrc = creto_mldsa_verify_prehash(ps, pk, ctx, ctxlen, str(t, "hashAlg"), m,
								 msglen, sig, esiglen);
				break;
			case 2:
				rc = creto_mldsa_sign_internal(ps, sk, m, msglen, rnd, sig);
				vrc = creto_mldsa_verify_internal(ps, pk, m, msglen, sig, esiglen);
				break;
			case 3:
				assert_int_equal(mulen, 64);
				rc = creto_mldsa_sign_mu(ps, sk, mu, rnd, sig);
				vrc = creto_mldsa_verify_mu(ps, pk, mu, sig, esiglen);
				break;
			}
			assert_int_equal(rc, 0);
			if (memcmp(sig, esig, esiglen) != 0)
				fail_msg("sigGen tgId %lld tcId %lld: signature differs",
					 (long long)json_integer_value(json_object_get(g, "tgId")),
					 (long long)json_integer_value(json_object_get(t, "tcId")));
			assert_int_equal(vrc, 0);
			count[ps == CRETO_MLDSA_44 ? 0 : ps == CRETO_MLDSA_65 ? 1 : 2][variant][det]++;
			total++;
			free(sk);
			free(msg);
			free(ctx);
			free(mu);
			free(rndp);
			free(esig);
		}
	}
	printf("sigGen: %u cases\n", total);
	for (int p = 0; p < 3; p++)
		for (int v = 0; v < 4; v++)
			for (int d = 0; d < 2; d++)
				assert_int_equal(count[p][v][d], PER_GROUP(15));
	assert_int_equal(total, 24 * PER_GROUP(15));
	json_decref(prompt);
	json_decref(expect);
}

static void test_sigver(void **state)
{
	(void)state;
	json_t *prompt = load("ML-DSA-sigVer-FIPS204", "prompt.json");
	json_t *expect = load("ML-DSA-sigVer-FIPS204", "expectedResults.json");
	json_t *egroups = json_object_get(expect, "testGroups");
	unsigned count[3][4], total = 0, valid = 0;
	memset(count, 0, sizeof(count));
	size_t gi, ti;
	json_t *g, *t;
	json_array_foreach(json_object_get(prompt, "testGroups"), gi, g) {
		creto_mldsa_ps ps = ps_of(g);
		const char *iface = str(g, "signatureInterface");
		const char *pre = str(g, "preHash");
		int extmu = json_is_true(json_object_get(g, "externalMu"));
		assert_non_null(iface);
		int variant = strcmp(iface, "internal") == 0 ? (extmu ? 3 : 2)
							   : (strcmp(pre, "preHash") == 0 ? 1 : 0);
		json_t *eg = find_by_id(egroups, "tgId", json_integer_value(json_object_get(g, "tgId")));
		json_array_foreach(json_object_get(g, "tests"), ti, t) {
			if (ti % ACVP_STRIDE != 0)
				continue;
			json_t *et = find_by_id(json_object_get(eg, "tests"), "tcId",
						json_integer_value(json_object_get(t, "tcId")));
			json_t *passed = json_object_get(et, "testPassed");
			assert_true(json_is_boolean(passed));
			size_t pklen, msglen, ctxlen, mulen, siglen;
			uint8_t *pk = hexfield(t, "pk", &pklen);
			uint8_t *msg = hexfield(t, "message", &msglen);
			uint8_t *ctx = hexfield(t, "context", &ctxlen);
			uint8_t *mu = hexfield(t, "mu", &mulen);
			uint8_t *sig = hexfield(t, "signature", &siglen);
			assert_non_null(pk);
			assert_non_null(sig);
			assert_int_equal(pklen, creto_mldsa_pk_bytes(ps));
			const uint8_t *m = msg ? msg : (const uint8_t *)"";
			int want = json_is_true(passed) ? 0 : -1;
			/* Twice: the first verification with a new key multiplies c t1
			 * directly, the second uses the cached NTT(t1 2^d) (computed
			 * then); both must give the expected result. */
			for (int pass = 0; pass < 2; pass++) {
				int rc = -1;
				switch (variant) {
				case 0:
					rc = creto_mldsa_verify(ps, pk, ctx, ctxlen, m, msglen, sig, siglen);
					break;
				case 1:
					rc = creto_mldsa_verify_prehash(ps, pk, ctx, ctxlen, str(t, "hashAlg"),
									m, msglen, sig, siglen);
					break;
				case 2:
					rc = creto_mldsa_verify_internal(ps, pk, m, msglen, sig, siglen);
					break;
				case 3:
					assert_int_equal(mulen, 64);
					rc = creto_mldsa_verify_mu(ps, pk, mu, sig, siglen);
					break;
				}
				if (rc != want)
					fail_msg("sigVer tgId %lld tcId %lld (%s key): got %d, want %d",
						 (long long)json_integer_value(json_object_get(g, "tgId")),
						 (long long)json_integer_value(json_object_get(t, "tcId")),
						 pass == 0 ? "new" : "cached", rc, want);
			}
			valid += json_is_true(passed);
			count[ps == CRETO_MLDSA_44 ? 0 : ps == CRETO_MLDSA_65 ? 1 : 2][variant]++;
			total++;
			free(pk);
			free(msg);
			free(ctx);
			free(mu);
			free(sig);
		}
	}
	printf("sigVer: %u cases, %u valid, %u invalid\n", total, valid, total - valid);
	for (int p = 0; p < 3; p++)
		for (int v = 0; v < 4; v++)
			assert_int_equal(count[p][v], PER_GROUP(15));
	assert_int_equal(total, 12 * PER_GROUP(15));
	if (ACVP_STRIDE == 1)
		assert_int_equal(valid, 36);
	json_decref(prompt);
	json_decref(expect);
}

#ifndef ACVP_EXPECT_BACKEND
#define ACVP_EXPECT_BACKEND NULL
#endif

int main(void)
{
	const char *want = ACVP_EXPECT_BACKEND;
	printf("ML-DSA back end: %s\n", creto_mldsa_backend());
	if (want != NULL && strcmp(creto_mldsa_backend(), want) != 0) {
		fprintf(stderr, "back end %s, expected %s\n", creto_mldsa_backend(), want);
		return 1;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keygen),
		cmocka_unit_test(test_siggen),
		cmocka_unit_test(test_sigver),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
