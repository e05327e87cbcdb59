/* test_jws.c - unit tests for the JWS compact parser and JWT claim rules
 * (src/nhi/jws.c): structure, base64url, duplicate keys, alg rules, sizes,
 * claim types and the time window with its skew. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "creto/nhi.h"
#include "util/enc.h"

static char *b64(const char *s)
{
	size_t n = strlen(s);
	char *o = malloc(creto_b64_enclen(n, 1) + 1);
	creto_b64_encode(o, (const uint8_t *)s, n, 1);
	return o;
}

/* header.payload.sig with a 64-byte zero signature unless sig given. */
static char *mk(const char *h, const char *p, const char *sig)
{
	char *hb = b64(h), *pb = b64(p);
	char zs[100];
	if (sig == NULL) {
		uint8_t z[64] = {0};
		creto_b64_encode(zs, z, 64, 1);
		sig = zs;
	}
	size_t n = strlen(hb) + strlen(pb) + strlen(sig) + 3;
	char *t = malloc(n);
	snprintf(t, n, "%s.%s.%s", hb, pb, sig);
	free(hb);
	free(pb);
	return t;
}

static int parse_rc(const char *h, const char *p, const char *sig, const char *want)
{
	char *t = mk(h, p, sig);
	creto_jws j;
	creto_err e;
	creto_err_clear(&e);
	int rc = creto_jws_parse(t, strlen(t), &j, &e);
	if (want != NULL && strstr(e.msg, want) == NULL) {
		fprintf(stderr, "message '%s' lacks '%s'\n", e.msg, want);
		rc = -1;
	}
	creto_jws_clear(&j);
	free(t);
	return rc;
}

static void test_parse_ok(void **state)
{
	(void)state;
	char *t = mk("{\"alg\":\"EdDSA\",\"typ\":\"JWT\",\"kid\":\"0123456789abcdef\"}", "{\"a\":1}", NULL);
	creto_jws j;
	creto_err e;
	assert_int_equal(creto_jws_parse(t, strlen(t), &j, &e), CRETO_OK);
	assert_int_equal(j.alg, CRETO_JWS_EDDSA);
	assert_string_equal(j.kid, "0123456789abcdef");
	assert_int_equal(j.siglen, 64);
	assert_int_equal(j.payload_len, 7);
	assert_memory_equal(j.payload, "{\"a\":1}", 7);
	assert_int_equal(j.signing_input_len, (size_t)(strrchr(t, '.') - t));
	creto_jws_clear(&j);
	free(t);
	assert_int_equal(parse_rc("{\"alg\":\"ES256\",\"kid\":\"k\"}", "{}", NULL, NULL), CRETO_OK);
	assert_string_equal(creto_jws_alg_name(CRETO_JWS_ES256), "ES256");
	assert_int_equal(creto_jws_alg_key(CRETO_JWS_EDDSA), CRETO_ALG_ED25519);
	assert_int_equal(creto_jws_alg_key(CRETO_JWS_ES256), CRETO_ALG_ECDSA_P256);
}

static void test_parse_alg_rules(void **state)
{
	(void)state;
	assert_int_equal(parse_rc("{\"alg\":\"none\",\"kid\":\"k\"}", "{}", NULL, "alg 'none' refused"), 1);
	assert_int_equal(parse_rc("{\"alg\":\"nOnE\",\"kid\":\"k\"}", "{}", NULL, "unsecured"), 1);
	assert_int_equal(parse_rc("{\"alg\":\"HS256\",\"kid\":\"k\"}", "{}", NULL, "symmetric"), 1);
	assert_int_equal(parse_rc("{\"alg\":\"HS512\",\"kid\":\"k\"}", "{}", NULL, "HS512"), 1);
	assert_int_equal(parse_rc("{\"alg\":\"RS256\",\"kid\":\"k\"}", "{}", NULL, "not supported"), 1);
	assert_int_equal(parse_rc("{\"alg\":\"eddsa\",\"kid\":\"k\"}", "{}", NULL, "not supported"), 1);
	assert_int_equal(parse_rc("{\"alg\":7,\"kid\":\"k\"}", "{}", NULL, "alg missing"), 1);
	assert_int_equal(parse_rc("{\"kid\":\"k\"}", "{}", NULL, "alg missing"), 1);
	assert_int_equal(parse_rc("{\"alg\":\"EdDSA\"}", "{}", NULL, "kid missing"), 1);
	assert_int_equal(parse_rc("{\"alg\":\"EdDSA\",\"kid\":\"\"}", "{}", NULL, "kid: want"), 1);
	assert_int_equal(parse_rc("{\"alg\":\"EdDSA\",\"kid\":\"k\",\"jku\":\"http://127.0.0.1/\"}", "{}",
				  NULL, "'jku' refused"),
			 1);
	assert_int_equal(parse_rc("{\"alg\":\"EdDSA\",\"kid\":\"k\",\"x5c\":[]}", "{}", NULL, "'x5c'"), 1);
	assert_int_equal(parse_rc("{\"alg\":\"EdDSA\",\"kid\":\"k\",\"crit\":[\"b64\"],\"b64\":false}", "{}",
				  NULL, "'crit' refused"),
			 1);
	assert_int_equal(parse_rc("{\"alg\":\"EdDSA\",\"kid\":\"k\",\"typ\":\"at+jwt\"}", "{}", NULL, "typ"), 1);
	assert_int_equal(parse_rc("{\"alg\":\"EdDSA\",\"kid\":\"k\",\"typ\":\"jwt\"}", "{}", NULL, NULL), 0);
}

static void test_parse_json(void **state)
{
	(void)state;
	assert_int_equal(parse_rc("{\"alg\":\"EdDSA\",\"kid\":\"k\",\"kid\":\"j\"}", "{}", NULL,
				  "token header: duplicate JSON key"),
			 1);
	assert_int_equal(parse_rc("[\"alg\"]", "{}", NULL, "not a JSON object"), 1);
	assert_int_equal(parse_rc("{\"alg\":\"EdDSA\",", "{}", NULL, "invalid JSON"), 1);
	assert_int_equal(parse_rc("{\"alg\":\"EdDSA\",\"kid\":\"k\"} x", "{}", NULL, "invalid JSON"), 1);
	/* the payload is decoded, not parsed: anything goes until the signature verified */
	assert_int_equal(parse_rc("{\"alg\":\"EdDSA\",\"kid\":\"k\"}", "not json", NULL, NULL), 0);
}

static void test_parse_structure(void **state)
{
	(void)state;
	creto_jws j;
	creto_err e;
	static const struct {
		const char *tok, *want;
	} bad[] = {
		{"", "empty"},
		{"abc", "want 3"},
		{"a.b", "want 3"},
		{"a.b.c.d", "more than 3"},
		{"a.b.c.d.e", "more than 3"},
		{".e30.AAAA", "header: empty"},
		{"e30=.e30.AAAA", "header: bad base64url"},
		{"e3 0.e30.AAAA", "header: bad base64url"},
		{"e3+0.e30.AAAA", "header: bad base64url"},
		{"eyJhbGciOiJFZERTQSIsImtpZCI6ImsifQ.e30.", "signature: empty"},
		{"eyJhbGciOiJFZERTQSIsImtpZCI6ImsifQ.e30.AAAA", "signature: 3 bytes"},
		{"eyJhbGciOiJFZERTQSIsImtpZCI6ImsifQ.e30.AA/A", "bad base64url"},
		{"eyJhbGciOiJFZERTQSIsImtpZCI6ImsifQ..AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		 "payload: empty"},
		{"eyJhbGciOiJFZERTQSIsImtpZCI6ImsifQ.e3!.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		 "payload: bad base64url"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		creto_err_clear(&e);
		assert_int_equal(creto_jws_parse(bad[i].tok, strlen(bad[i].tok), &j, &e), CRETO_EREJECT);
		if (strstr(e.msg, bad[i].want) == NULL)
			fail_msg("%s: '%s' lacks '%s'", bad[i].tok, e.msg, bad[i].want);
		creto_jws_clear(&j);
	}
	/* 65-byte signature, non-canonical trailing bits */
	uint8_t z[65] = {0};
	char s65[100];
	creto_b64_encode(s65, z, 65, 1);
	assert_int_equal(parse_rc("{\"alg\":\"EdDSA\",\"kid\":\"k\"}", "{}", s65, "signature"), 1);
	char nc[100];
	creto_b64_encode(nc, z, 64, 1);
	nc[strlen(nc) - 1] = 'B';
	assert_int_equal(parse_rc("{\"alg\":\"EdDSA\",\"kid\":\"k\"}", "{}", nc, "bad base64url"), 1);
	/* size cap */
	char *big = malloc(CRETO_JWS_MAX + 2);
	memset(big, 'a', CRETO_JWS_MAX + 1);
	big[CRETO_JWS_MAX + 1] = 0;
	creto_err_clear(&e);
	assert_int_equal(creto_jws_parse(big, CRETO_JWS_MAX + 1, &j, &e), CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "8192-byte cap"));
	free(big);
	/* big header */
	char hdr[2000];
	snprintf(hdr, sizeof(hdr), "{\"alg\":\"EdDSA\",\"kid\":\"k\",\"pad\":\"%01200d\"}", 0);
	assert_int_equal(parse_rc(hdr, "{}", NULL, "header: longer than"), 1);
}

static int claims_rc(const char *json, creto_jwt_claims *c, const char *want)
{
	creto_err e;
	creto_err_clear(&e);
	int rc = creto_jwt_claims_parse((const uint8_t *)json, strlen(json), c, &e);
	if (want != NULL && strstr(e.msg, want) == NULL) {
		fprintf(stderr, "message '%s' lacks '%s'\n", e.msg, want);
		return -1;
	}
	return rc;
}

#define GOOD "\"iss\":\"i\",\"sub\":\"agent-1\",\"iat\":1000,\"exp\":2000,\"jti\":\"j\""

static void test_claims(void **state)
{
	(void)state;
	creto_jwt_claims c;
	assert_int_equal(claims_rc("{" GOOD ",\"aud\":\"a\",\"nbf\":900,\"scope\":\"x y\"}", &c, NULL), 0);
	assert_string_equal(c.iss, "i");
	assert_string_equal(c.sub, "agent-1");
	assert_int_equal(c.naud, 1);
	assert_int_equal(c.has_nbf, 1);
	assert_int_equal(c.nbf, 900);
	assert_int_equal(c.has_scope, 1);
	assert_string_equal(c.scope, "x y");
	assert_int_equal(claims_rc("{" GOOD ",\"aud\":[\"a\",\"b\"]}", &c, NULL), 0);
	assert_int_equal(c.naud, 2);
	assert_string_equal(c.aud[1], "b");
	assert_int_equal(claims_rc("{" GOOD ",\"aud\":\"a\",\"aud\":\"b\"}", &c, "duplicate JSON key"), 1);
	assert_int_equal(claims_rc("{" GOOD "}", &c, "aud: missing"), 1);
	assert_int_equal(claims_rc("{" GOOD ",\"aud\":[]}", &c, "aud: want"), 1);
	assert_int_equal(claims_rc("{" GOOD ",\"aud\":[1]}", &c, "aud[0]"), 1);
	assert_int_equal(claims_rc("{" GOOD ",\"aud\":{}}", &c, "not a string or array"), 1);
	assert_int_equal(claims_rc("{\"sub\":\"a\",\"aud\":\"a\",\"iat\":1,\"exp\":2,\"jti\":\"j\"}", &c, "iss: missing"), 1);
	assert_int_equal(claims_rc("{\"iss\":\"i\",\"aud\":\"a\",\"iat\":1,\"exp\":2,\"jti\":\"j\"}", &c, "sub: missing"), 1);
	assert_int_equal(claims_rc("{\"iss\":\"i\",\"sub\":\"a b\",\"aud\":\"a\",\"iat\":1,\"exp\":2,\"jti\":\"j\"}", &c,
				   "not an agent id"),
			 1);
	assert_int_equal(claims_rc("{\"iss\":\"i\",\"sub\":\"a\",\"aud\":\"a\",\"iat\":1,\"exp\":2.5,\"jti\":\"j\"}", &c,
				   "exp: not an integer"),
			 1);
	assert_int_equal(claims_rc("{\"iss\":\"i\",\"sub\":\"a\",\"aud\":\"a\",\"iat\":-1,\"exp\":2,\"jti\":\"j\"}", &c,
				   "iat: out of range"),
			 1);
	assert_int_equal(claims_rc("{\"iss\":\"i\",\"sub\":\"a\",\"aud\":\"a\",\"exp\":2,\"jti\":\"j\"}", &c, "iat: missing"), 1);
	assert_int_equal(claims_rc("{\"iss\":\"i\",\"sub\":\"a\",\"aud\":\"a\",\"iat\":1,\"exp\":2}", &c, "jti: missing"), 1);
	assert_int_equal(claims_rc("{\"iss\":1,\"sub\":\"a\",\"aud\":\"a\",\"iat\":1,\"exp\":2,\"jti\":\"j\"}", &c, "iss: not a string"), 1);
	assert_int_equal(claims_rc("{" GOOD ",\"aud\":\"a\",\"scope\":\"x  y\"}", &c, "bad scope"), 1);
	assert_int_equal(claims_rc("{" GOOD ",\"aud\":\"a\",\"scope\":7}", &c, "scope: want"), 1);
	assert_int_equal(claims_rc("{" GOOD ",\"aud\":\"a\",\"iss\":\"\\u0000\"}", &c, "duplicate"), 1);
	assert_int_equal(claims_rc("{\"iss\":\"a\\u0000b\",\"sub\":\"a\",\"aud\":\"a\",\"iat\":1,\"exp\":2,\"jti\":\"j\"}", &c, "invalid JSON"), 1);
	assert_int_equal(claims_rc("[]", &c, "not a JSON object"), 1);
}

static void test_claims_check(void **state)
{
	(void)state;
	creto_jwt_claims c;
	creto_err e;
	creto_nhi_rule rule = CRETO_NHI_RULE_INTERNAL;
	assert_int_equal(claims_rc("{" GOOD ",\"aud\":[\"x\",\"gw\"],\"nbf\":1100}", &c, NULL), 0);
	assert_int_equal(creto_jwt_claims_check(&c, "i", "gw", 1500, &rule, &e), CRETO_OK);
	assert_int_equal(creto_jwt_claims_check(&c, "j", "gw", 1500, &rule, &e), CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "iss"));
	assert_int_equal(rule, CRETO_NHI_RULE_ISSUER);
	assert_int_equal(creto_jwt_claims_check(&c, "i", "gx", 1500, &rule, &e), CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "aud"));
	assert_int_equal(rule, CRETO_NHI_RULE_AUDIENCE);
	/* exp + skew is the last valid second */
	assert_int_equal(creto_jwt_claims_check(&c, "i", "gw", 2000 + CRETO_NHI_SKEW, &rule, &e), CRETO_OK);
	assert_int_equal(creto_jwt_claims_check(&c, "i", "gw", 2001 + CRETO_NHI_SKEW, &rule, &e), CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "expired"));
	assert_int_equal(rule, CRETO_NHI_RULE_EXPIRED);
	/* nbf - skew is the first valid second */
	assert_int_equal(creto_jwt_claims_check(&c, "i", "gw", 1100 - CRETO_NHI_SKEW, &rule, &e), CRETO_OK);
	assert_int_equal(creto_jwt_claims_check(&c, "i", "gw", 1099 - CRETO_NHI_SKEW, &rule, &e), CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "not valid before"));
	assert_int_equal(rule, CRETO_NHI_RULE_NOT_YET_VALID);
	/* iat in the future */
	assert_int_equal(claims_rc("{" GOOD ",\"aud\":\"gw\"}", &c, NULL), 0);
	assert_int_equal(creto_jwt_claims_check(&c, "i", "gw", 1000 - CRETO_NHI_SKEW - 1, &rule, &e), CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "iat"));
	assert_int_equal(rule, CRETO_NHI_RULE_IAT);
	c.exp = c.iat;
	assert_int_equal(creto_jwt_claims_check(&c, "i", "gw", 1000, &rule, &e), CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "exp: not after iat"));
	assert_int_equal(rule, CRETO_NHI_RULE_CLAIMS);
	assert_int_equal(creto_jwt_claims_check(&c, "j", "gw", 1000, NULL, &e), CRETO_EREJECT);
}

static void test_scope_syntax(void **state)
{
	(void)state;
	assert_true(creto_nhi_scope_valid("model:llama-3.1-70b-instruct", 28));
	assert_false(creto_nhi_scope_valid("a b", 3));
	assert_false(creto_nhi_scope_valid("", 0));
	assert_false(creto_nhi_scope_valid("a\"", 2));
	assert_true(creto_nhi_scopes_has("a b:c d", "b:c", 3));
	assert_false(creto_nhi_scopes_has("a b:cd", "b:c", 3));
	assert_false(creto_nhi_scopes_has("", "a", 1));
	assert_true(creto_nhi_id_valid("agent-1@x.y:z_"));
	assert_false(creto_nhi_id_valid("a/b"));
	assert_false(creto_nhi_id_valid(""));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_ok),	   cmocka_unit_test(test_parse_alg_rules),
		cmocka_unit_test(test_parse_json),	   cmocka_unit_test(test_parse_structure),
		cmocka_unit_test(test_claims),	   cmocka_unit_test(test_claims_check),
		cmocka_unit_test(test_scope_syntax),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
