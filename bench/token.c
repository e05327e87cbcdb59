/*
 * bench/token.c - the driver behind bench/token.sh: token endpoint issuance
 * rate beside its ceiling, in the same process and run.
 *   bench_token AGENT_ALG ISSUER_ALG SECONDS DIR file|mem [ISSUER_KEY_REF]
 *     AGENT_ALG / ISSUER_ALG: ed25519 | p256.  file: the agent store is an
 *     SQLite file (every lookup takes and drops SQLite's file locks: a few
 *     system calls); mem: the store opened in memory from its image, as a
 *     backup is loaded inside the enclave.  ISSUER_KEY_REF (optional): a
 *     pkcs11: URI (HSM issuer key); its algorithm must be ISSUER_ALG.
 *   bench_token forms AGENT_ALG N DIR AUD
 *     (for the over-HTTP row) writes DIR/nhi.db (NAGENTS agents, each with
 *     one AGENT_ALG key and the scopes below) and DIR/forms: N token request
 *     bodies, one a line, each with its own jti, aud AUD, exp now + 300 s.
 *   Prints: "issue/s ceiling/s" where
 *     issue/s   = creto_nhi_token_endpoint calls that issued a token per
 *                 second, one thread, over assertions made before the
 *                 timed run (each a distinct jti, so none is a replay);
 *     ceiling/s = the two raw operations issuance cannot avoid, back to
 *                 back on one thread over the same messages: OpenSSL verify
 *                 of the assertion's signature + the issuer signature
 *                 (OpenSSL sign for a file key; for an HSM key, C_Sign
 *                 through creto's pkcs11 signer, the least a PKCS#11 call
 *                 costs here).
 * Rate limits are off (they would throttle a benchmark by design); the
 * replay cache holds every assertion of the run.
 */
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "creto/keys.h"
#include "creto/nhi.h"
#include "creto/nhi_oauth.h"

#define NAGENTS 64

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const creto_err *e)
{
	fprintf(stderr, "bench_token: %s: %s\n", what, e ? e->msg : "");
	exit(3);
}

static creto_alg alg_of(const char *s)
{
	if (strcmp(s, "ed25519") == 0)
		return CRETO_ALG_ED25519;
	if (strcmp(s, "p256") == 0)
		return CRETO_ALG_ECDSA_P256;
	fprintf(stderr, "bench_token: algorithm ed25519 or p256\n");
	exit(2);
}

/* A key pair in OpenSSL and the same key as a creto file signer. */
static EVP_PKEY *keygen(creto_alg a, creto_signer **sg)
{
	EVP_PKEY *k = a == CRETO_ALG_ED25519 ? EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")
					     : EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	uint8_t sec[32];
	size_t n = sizeof(sec);
	if (a == CRETO_ALG_ED25519) {
		if (EVP_PKEY_get_raw_private_key(k, sec, &n) != 1)
			die("raw key", NULL);
	} else {
		BIGNUM *d = NULL;
		if (EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_PRIV_KEY, &d) != 1 || BN_bn2binpad(d, sec, 32) != 32)
			die("raw key", NULL);
		BN_clear_free(d);
	}
	creto_err e;
	if (creto_signer_from_secret(a, sec, 32, sg, &e) != CRETO_OK)
		die("signer", &e);
	return k;
}

/* JWS r||s -> DER for OpenSSL's ECDSA verify. */
static size_t rs_to_der(const uint8_t rs[64], uint8_t *der)
{
	creto_err e;
	uint8_t *d = NULL;
	size_t dl = 0;
	if (creto_ecdsa_raw_to_der(CRETO_ALG_ECDSA_P256, rs, 64, &d, &dl, &e) != CRETO_OK)
		die("der", &e);
	memcpy(der, d, dl);
	free(d);
	return dl;
}

/* The forms mode: an agent store and N form bodies for a gateway. */
static int forms_main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr, "usage: bench_token forms ed25519|p256 N DIR AUD\n");
		return 2;
	}
	creto_alg aa = alg_of(argv[2]);
	long n = atol(argv[3]);
	const char *dir = argv[4], *aud = argv[5];
	if (n < 1 || n > 10000000) {
		fprintf(stderr, "bench_token: N out of range\n");
		return 2;
	}
	creto_err e;
	char path[512];
	snprintf(path, sizeof(path), "%s/nhi.db", dir);
	if (creto_nhi_store_init(path, NULL, &e) != CRETO_OK)
		die("init", &e);
	creto_nhi_store *store = NULL;
	if (creto_nhi_store_open(path, 0, &store, &e) != CRETO_OK)
		die("open", &e);
	creto_signer *asg[NAGENTS];
	for (int i = 0; i < NAGENTS; i++) {
		creto_nhi_agent a;
		memset(&a, 0, sizeof(a));
		snprintf(a.id, sizeof(a.id), "bench-agent-%02d", i);
		snprintf(a.name, sizeof(a.name), "Bench %d", i);
		snprintf(a.scopes, sizeof(a.scopes), "model:llama-3.1-8b-instruct tool:search");
		a.created = 1;
		if (creto_nhi_store_add(store, &a, &e) != CRETO_OK)
			die("add", &e);
		EVP_PKEY_free(keygen(aa, &asg[i]));
		if (creto_nhi_store_key_add(store, a.id, creto_signer_pubkey(asg[i]), 0, 0, 1, NULL, &e) != CRETO_OK)
			die("key add", &e);
	}
	creto_nhi_store_free(store);
	snprintf(path, sizeof(path), "%s/forms", dir);
	FILE *f = fopen(path, "wx");
	if (f == NULL)
		die("forms file exists or cannot be created", NULL);
	int64_t t0 = (int64_t)time(NULL);
	for (long i = 0; i < n; i++) {
		char sub[32], jti[32];
		snprintf(sub, sizeof(sub), "bench-agent-%02ld", i % NAGENTS);
		snprintf(jti, sizeof(jti), "h%ld", i);
		creto_nhi_token_params p = {
			.iss = sub, .sub = sub, .aud = aud, .jti = jti, .iat = t0, .nbf = t0, .exp = t0 + 300};
		char *tok = NULL;
		if (creto_nhi_token_issue(asg[i % NAGENTS], &p, &tok, &e) != CRETO_OK)
			die("assertion", &e);
		fprintf(f,
			"grant_type=client_credentials&client_assertion_type=urn%%3Aietf%%3Aparams%%3A"
			"oauth%%3Aclient-assertion-type%%3Ajwt-bearer&client_assertion=%s\n",
			tok);
		free(tok);
	}
	if (fclose(f) != 0)
		die("forms file: write failed", NULL);
	for (int i = 0; i < NAGENTS; i++)
		creto_signer_free(asg[i]);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "forms") == 0)
		return forms_main(argc, argv);
	if (argc < 6 || (strcmp(argv[5], "file") != 0 && strcmp(argv[5], "mem") != 0)) {
		fprintf(stderr, "usage: bench_token ed25519|p256 ed25519|p256 SECONDS DIR file|mem [ISSUER_KEY_REF]\n");
		return 2;
	}
	int mem = strcmp(argv[5], "mem") == 0;
	creto_alg aa = alg_of(argv[1]), ia = alg_of(argv[2]);
	double secs = atof(argv[3]);
	const char *dir = argv[4];
	creto_err e;
	char db[512];
	snprintf(db, sizeof(db), "%s/token-%s-%s.db", dir, argv[1], argv[2]);
	remove(db);
	if (creto_nhi_store_init(db, NULL, &e) != CRETO_OK)
		die("init", &e);
	creto_nhi_store *store = NULL;
	if (creto_nhi_store_open(db, 0, &store, &e) != CRETO_OK)
		die("open", &e);
	/* agents, each with one key */
	creto_signer *asg[NAGENTS];
	EVP_PKEY *apk[NAGENTS];
	for (int i = 0; i < NAGENTS; i++) {
		creto_nhi_agent a;
		memset(&a, 0, sizeof(a));
		snprintf(a.id, sizeof(a.id), "bench-agent-%02d", i);
		snprintf(a.name, sizeof(a.name), "Bench %d", i);
		snprintf(a.scopes, sizeof(a.scopes), "model:llama-3.1-8b-instruct tool:search");
		a.created = 1;
		if (creto_nhi_store_add(store, &a, &e) != CRETO_OK)
			die("add", &e);
		apk[i] = keygen(aa, &asg[i]);
		if (creto_nhi_store_key_add(store, a.id, creto_signer_pubkey(asg[i]), 0, 0, 1, NULL, &e) != CRETO_OK)
			die("key add", &e);
	}
	if (mem) { /* the same store, in memory */
		uint8_t *img = NULL;
		size_t ilen = 0;
		if (creto_nhi_store_serialize(store, &img, &ilen, &e) != CRETO_OK)
			die("serialize", &e);
		creto_nhi_store_free(store);
		if (creto_nhi_store_open_image(img, ilen, &store, &e) != CRETO_OK)
			die("open image", &e);
	}
	/* the issuer: a file key, or the given reference (HSM) */
	creto_signer *isg = NULL;
	EVP_PKEY *ipk = NULL;
	if (argc > 6) {
		if (creto_keys_open_signer(argv[6], NULL, &isg, &e) != CRETO_OK)
			die("issuer key", &e);
		if (creto_pubkey_alg(creto_signer_pubkey(isg)) != ia)
			die("issuer key: not of ISSUER_ALG", NULL);
	} else {
		ipk = keygen(ia, &isg);
	}
	int64_t t0 = (int64_t)time(NULL);
	/* assertions, made before the timed run: enough for SECONDS at 40k/s */
	size_t nasrt = (size_t)(secs * 40000) + 1000;
	char **form = calloc(nasrt, sizeof(char *));
	size_t *flen = calloc(nasrt, sizeof(size_t));
	const char *url = "https://creto.bench";
	for (size_t i = 0; i < nasrt; i++) {
		char sub[32], jti[32];
		snprintf(sub, sizeof(sub), "bench-agent-%02zu", i % NAGENTS);
		snprintf(jti, sizeof(jti), "j%zu", i);
		creto_nhi_token_params p = {.iss = sub, .sub = sub, .aud = "https://creto.bench/oauth/token", .jti = jti,
					    .iat = t0, .nbf = t0, .exp = t0 + 300};
		char *tok = NULL;
		if (creto_nhi_token_issue(asg[i % NAGENTS], &p, &tok, &e) != CRETO_OK)
			die("assertion", &e);
		size_t n = strlen(tok) + 200;
		form[i] = malloc(n);
		flen[i] = (size_t)snprintf(form[i], n,
					   "grant_type=client_credentials&client_assertion_type=urn%%3Aietf%%3Aparams%%3A"
					   "oauth%%3Aclient-assertion-type%%3Ajwt-bearer&client_assertion=%s",
					   tok);
		free(tok);
	}
	creto_nhi_replay *rp = NULL;
	if (creto_nhi_replay_open(NULL, nasrt, t0 - 1000, &rp, &e) != CRETO_OK)
		die("replay", &e);
	creto_nhi_oauth_opts oo = {.issuer_url = url, .rate_agent = -1, .rate_source = -1};
	creto_nhi_oauth *o = NULL;
	if (creto_nhi_oauth_new(store, isg, rp, &oo, &o, &e) != CRETO_OK)
		die("endpoint", &e);

	/* The machine may be shared: creto and the ceiling run in alternating
	 * slices of SLICE seconds, so both see the same load. */
#define SLICE 0.1
	/* the assertions as received, split before timing: signing input and
	 * signature (DER for ECDSA, as OpenSSL takes it) */
	const char **tokp = calloc(nasrt, sizeof(char *));
	size_t *silen = calloc(nasrt, sizeof(size_t)), *dlen = calloc(nasrt, sizeof(size_t));
	uint8_t(*sigs)[80] = calloc(nasrt, sizeof(*sigs));
	for (size_t i = 0; i < nasrt; i++) {
		tokp[i] = strstr(form[i], "client_assertion=") + 17;
		creto_jws j;
		if (creto_jws_parse(tokp[i], strlen(tokp[i]), &j, &e) != CRETO_OK)
			die("parse", &e);
		silen[i] = j.signing_input_len;
		if (aa == CRETO_ALG_ED25519) {
			memcpy(sigs[i], j.sig, 64);
			dlen[i] = 64;
		} else {
			dlen[i] = rs_to_der(j.sig, sigs[i]);
		}
		creto_jws_clear(&j);
	}
	/* the issuer signs a message of an access token's signing-input size */
	char msg[400];
	memset(msg, 'e', sizeof(msg));
	size_t mlen = 330;
	EVP_MD_CTX *vc = EVP_MD_CTX_new(), *sc = EVP_MD_CTX_new();
	size_t done = 0, k = 0;
	double t_creto = 0, t_ceil = 0;
	while (t_creto < secs && done < nasrt) {
		/* ---- creto: the endpoint ---- */
		double start = now_s(), el = 0;
		while (done < nasrt) {
			creto_nhi_token_request rq = {.body = form[done], .len = flen[done],
						      .content_type = "application/x-www-form-urlencoded",
						      .source = "127.0.0.1"};
			creto_nhi_token_response r;
			if (creto_nhi_token_endpoint(o, &rq, t0, &r, &e) != CRETO_OK)
				die("issue", &e);
			creto_nhi_token_response_clear(&r);
			done++;
			if ((done & 15) == 0 && (el = now_s() - start) >= SLICE)
				break;
		}
		t_creto += now_s() - start;
		/* ---- ceiling: verify(assertion) + issuer sign, raw ---- */
		start = now_s();
		for (;;) {
			size_t i = k % nasrt;
			EVP_PKEY *vk = apk[i % NAGENTS];
			EVP_MD_CTX_reset(vc); /* a one-shot EdDSA context cannot be re-initialised as is */
			int ok = EVP_DigestVerifyInit(vc, NULL, aa == CRETO_ALG_ED25519 ? NULL : EVP_sha256(), NULL, vk) == 1 &&
				 EVP_DigestVerify(vc, sigs[i], dlen[i], (const uint8_t *)tokp[i], silen[i]) == 1;
			if (!ok)
				die("raw verify", NULL);
			if (ipk != NULL) {
				uint8_t sig[80];
				size_t sl = sizeof(sig);
				EVP_MD_CTX_reset(sc);
				ok = EVP_DigestSignInit(sc, NULL, ia == CRETO_ALG_ED25519 ? NULL : EVP_sha256(), NULL, ipk) ==
					     1 &&
				     EVP_DigestSign(sc, sig, &sl, (const uint8_t *)msg, mlen) == 1;
			} else {
				uint8_t *sig = NULL;
				size_t sl = 0;
				ok = creto_signer_sign(isg, NULL, 0, (const uint8_t *)msg, mlen, &sig, &sl, &e) == CRETO_OK;
				free(sig);
			}
			if (!ok)
				die("raw sign", NULL);
			k++;
			if ((k & 15) == 0 && now_s() - start >= SLICE)
				break;
		}
		t_ceil += now_s() - start;
	}
	double rate = (double)done / t_creto;
	double ceil = (double)k / t_ceil;
	printf("%.0f %.0f\n", rate, ceil);

	EVP_MD_CTX_free(vc);
	EVP_MD_CTX_free(sc);
	free(tokp);
	free(silen);
	free(dlen);
	free(sigs);
	creto_nhi_oauth_free(o, t0);
	if (creto_nhi_replay_close(rp, t0, &e) != CRETO_OK)
		die("replay close", &e);
	for (size_t i = 0; i < nasrt; i++)
		free(form[i]);
	free(form);
	free(flen);
	for (int i = 0; i < NAGENTS; i++) {
		creto_signer_free(asg[i]);
		EVP_PKEY_free(apk[i]);
	}
	creto_signer_free(isg);
	EVP_PKEY_free(ipk);
	creto_nhi_store_free(store);
	remove(db);
	return 0;
}
