/*
 * bench/nhi.c - the driver behind bench/nhi.sh.
 *   bench_nhi resolve ed25519|p256 cold|cached THREADS SECONDS
 *       resolves/s over 4096 distinct tokens; cold = no cache (every
 *       resolve parses, verifies the signature and reads the store),
 *       cached = a warm cache (every resolve is a digest + cache hit).
 *   bench_nhi parts ed25519|p256
 *       microseconds per token in each stage of a cold resolve (JWS parse,
 *       signature verify, claims parse, store lookup) and the whole resolve
 *   bench_nhi mkbackup N FILE.bak   store of N agents -> encrypted backup
 *   bench_nhi load FILE.bak         time to load it into memory, peak RSS
 * The data key is wrapped with OpenSSL AES key wrap (RFC 5649) under a key
 * made from a fixed seed: the one HSM unwrap of a real load is a single
 * PKCS#11 call and does not change the figures.
 */
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "creto/nhi.h"
#include <sqlite3.h>

#define NTOK 4096
#define NAGENTS 4096

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const creto_err *e)
{
	fprintf(stderr, "bench_nhi: %s: %s\n", what, e ? e->msg : "");
	exit(3);
}

/* ---- signer: a key made in memory by the library ---- */
static creto_signer *signer(int ec)
{
	creto_signer *s = NULL;
	creto_err e;
	if (creto_signer_generate(ec ? CRETO_ALG_ECDSA_P256 : CRETO_ALG_ED25519, &s, &e) != CRETO_OK)
		die("signer", &e);
	return s;
}

/* ---- resolve ---- */
struct run {
	creto_nhi_resolver *r;
	char **tok;
	double secs;
	int64_t now;
	uint64_t count;
	int fails;
	unsigned seed;
};

static void *loop(void *arg)
{
	struct run *w = arg;
	creto_nhi_identity id;
	creto_err e;
	double end = now_s() + w->secs;
	uint64_t n = 0;
	unsigned i = w->seed;
	for (;;) {
		for (int k = 0; k < 64; k++, i++) {
			const char *t = w->tok[i % NTOK];
			if (creto_nhi_resolve(w->r, t, strlen(t), w->now, &id, NULL, &e) != CRETO_OK)
				w->fails++;
		}
		n += 64;
		if (now_s() >= end)
			break;
	}
	w->count = n;
	return NULL;
}

/* What every resolve figure runs against: NAGENTS agents in an in-memory
 * store (as the enclave holds it once loaded from its backup; a file store
 * adds a lock syscall per lookup), one issuer key, NTOK distinct tokens. */
struct fixture {
	char dbp[32];
	creto_nhi_store *store;
	creto_signer *sg;
	char *jtxt;
	creto_jwks *jw;
	char **tok;
	int64_t t0;
};

static void fixture_new(struct fixture *f, int ec)
{
	memset(f, 0, sizeof(*f));
	snprintf(f->dbp, sizeof(f->dbp), "/tmp/bench_nhi_XXXXXX");
	int fd = mkstemp(f->dbp);
	if (fd < 0)
		die("mkstemp", NULL);
	close(fd);
	unlink(f->dbp);
	creto_err e;
	creto_nhi_store *s = NULL;
	if (creto_nhi_store_init(f->dbp, NULL, &e) != 0 ||
	    creto_nhi_store_open(f->dbp, 0, &s, &e) != 0 || creto_nhi_store_begin(s, &e) != 0)
		die("store", &e);
	creto_nhi_agent a;
	memset(&a, 0, sizeof(a));
	for (int i = 0; i < NAGENTS; i++) {
		snprintf(a.id, sizeof(a.id), "agent-%06d", i);
		snprintf(a.name, sizeof(a.name), "Agent %d", i);
		snprintf(a.scopes, sizeof(a.scopes), "model:llama-3.1-70b-instruct tool:search");
		a.created = 1;
		if (creto_nhi_store_add(s, &a, &e) != 0)
			die("add", &e);
	}
	if (creto_nhi_store_commit(s, &e) != 0)
		die("commit", &e);
	uint8_t *img = NULL;
	size_t imglen = 0;
	if (creto_nhi_store_serialize(s, &img, &imglen, &e) != 0)
		die("serialize", &e);
	creto_nhi_store_free(s);
	unlink(f->dbp);
	if (creto_nhi_store_open_image(img, imglen, &f->store, &e) != 0)
		die("open image", &e);
	f->sg = signer(ec);
	const creto_pubkey *keys[1] = {creto_signer_pubkey(f->sg)};
	if (creto_jwks_format(keys, 1, &f->jtxt, &e) != 0 ||
	    creto_jwks_parse(f->jtxt, strlen(f->jtxt), &f->jw, &e) != 0)
		die("jwks", &e);
	f->t0 = 1900000000;
	f->tok = calloc(NTOK, sizeof(char *));
	if (f->tok == NULL)
		die("out of memory", NULL);
	for (int i = 0; i < NTOK; i++) {
		char sub[32];
		snprintf(sub, sizeof(sub), "agent-%06d", i % NAGENTS);
		creto_nhi_token_params p = {.iss = CRETO_NHI_DEFAULT_ISSUER, .sub = sub,
					    .aud = CRETO_NHI_DEFAULT_AUDIENCE, .scope = "tool:search",
					    .iat = f->t0, .nbf = f->t0, .exp = f->t0 + 3600};
		if (creto_nhi_token_issue(f->sg, &p, &f->tok[i], &e) != 0)
			die("issue", &e);
	}
}

static void fixture_free(struct fixture *f)
{
	for (int i = 0; i < NTOK; i++)
		free(f->tok[i]);
	free(f->tok);
	free(f->jtxt);
	creto_jwks_free(f->jw);
	creto_signer_free(f->sg);
	creto_nhi_store_free(f->store);
}

static int cmd_resolve(int ec, int cached, int threads, double secs)
{
	struct fixture f;
	fixture_new(&f, ec);
	creto_err e;
	char **tok = f.tok;
	int64_t t0 = f.t0;
	creto_nhi_resolver_opts o = {.cache_entries = cached ? 2 * NTOK : 0};
	creto_nhi_resolver *r = NULL;
	if (creto_nhi_resolver_new(f.store, f.jw, &o, &r, &e) != 0)
		die("resolver", &e);
	if (cached) { /* warm */
		creto_nhi_identity id;
		for (int i = 0; i < NTOK; i++)
			if (creto_nhi_resolve(r, tok[i], strlen(tok[i]), t0, &id, NULL, &e) != 0)
				die("warm", &e);
	}
	struct run w[16];
	pthread_t th[16];
	struct timespec c0, c1;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
	double wall0 = now_s();
	if (threads < 1 || threads > 16)
		threads = 1;
	for (int i = 0; i < threads; i++) {
		w[i] = (struct run){r, tok, secs, t0, 0, 0, (unsigned)(i * 977)};
		pthread_create(&th[i], NULL, loop, &w[i]);
	}
	uint64_t total = 0;
	int fails = 0;
	for (int i = 0; i < threads; i++) {
		pthread_join(th[i], NULL);
		total += w[i].count;
		fails += w[i].fails;
	}
	double wall = now_s() - wall0;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
	double cpu = (double)(c1.tv_sec - c0.tv_sec) + (double)(c1.tv_nsec - c0.tv_nsec) / 1e9;
	/* wall-clock rate, and the rate per CPU-second times the thread count
	 * (what the threads would do with a core each: `openssl speed`
	 * without -elapsed divides by CPU time the same way) */
	printf("%.0f %.0f\n", (double)total / wall, (double)total / cpu * threads);
	if (fails)
		fprintf(stderr, "bench_nhi: %d resolves failed\n", fails);
	creto_nhi_resolver_free(r);
	fixture_free(&f);
	return fails ? 1 : 0;
}

/* Where a cold resolve spends its time: each stage alone, microseconds
 * per token, over the same NTOK tokens (one thread). */
static double per_tok(double t, long n)
{
	return (now_s() - t) / (double)n * 1e6;
}

static int cmd_parts(int ec)
{
	struct fixture f;
	fixture_new(&f, ec);
	creto_err e;
	const long rounds = 8, n = rounds * NTOK;
	creto_jws *j = calloc(NTOK, sizeof(*j));
	creto_jwt_claims c;
	creto_nhi_agent a;
	if (j == NULL)
		die("out of memory", NULL);
	double t = now_s();
	for (long k = 0; k < n; k++) {
		creto_jws *jk = &j[k % NTOK];
		creto_jws_clear(jk);
		if (creto_jws_parse(f.tok[k % NTOK], strlen(f.tok[k % NTOK]), jk, &e) != 0)
			die("parse", &e);
	}
	double parse = per_tok(t, n);
	t = now_s();
	for (long k = 0; k < n; k++) {
		const creto_jws *jk = &j[k % NTOK];
		const creto_pubkey *pk = creto_jwks_find(f.jw, jk->kid);
		if (pk == NULL || creto_pubkey_verify(pk, NULL, 0, (const uint8_t *)f.tok[k % NTOK],
						      jk->signing_input_len, jk->sig, jk->siglen,
						      &e) != 0)
			die("verify", &e);
	}
	double verify = per_tok(t, n);
	t = now_s();
	for (long k = 0; k < n; k++) {
		const creto_jws *jk = &j[k % NTOK];
		if (creto_jwt_claims_parse(jk->payload, jk->payload_len, &c, &e) != 0)
			die("claims", &e);
	}
	double claims = per_tok(t, n);
	t = now_s();
	for (long k = 0; k < n; k++) {
		char id[32];
		snprintf(id, sizeof(id), "agent-%06ld", k % NAGENTS);
		if (creto_nhi_store_get(f.store, id, &a, &e) != 0)
			die("store", &e);
	}
	double store = per_tok(t, n);
	creto_nhi_resolver *r = NULL;
	if (creto_nhi_resolver_new(f.store, f.jw, NULL, &r, &e) != 0)
		die("resolver", &e);
	creto_nhi_identity id;
	t = now_s();
	for (long k = 0; k < n; k++)
		if (creto_nhi_resolve(r, f.tok[k % NTOK], strlen(f.tok[k % NTOK]), f.t0, &id, NULL,
				      &e) != 0)
			die("resolve", &e);
	double whole = per_tok(t, n);
	printf("%.2f %.2f %.2f %.2f %.2f %zu\n", parse, verify, claims, store, whole,
	       strlen(f.tok[0]));
	creto_nhi_resolver_free(r);
	for (int i = 0; i < NTOK; i++)
		creto_jws_clear(&j[i]);
	free(j);
	fixture_free(&f);
	return 0;
}

/* ---- backup load ---- */
static const uint8_t kek[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
				17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

static int kw(int enc, const uint8_t *in, size_t len, uint8_t *out, size_t *outlen)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int n = 0, m = 0, ok;
	EVP_CIPHER_CTX_set_flags(c, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
	ok = EVP_CipherInit_ex(c, EVP_aes_256_wrap_pad(), NULL, kek, NULL, enc) == 1 &&
	     EVP_CipherUpdate(c, out, &n, in, (int)len) == 1 && EVP_CipherFinal_ex(c, out + n, &m) == 1;
	EVP_CIPHER_CTX_free(c);
	*outlen = (size_t)(n + m);
	return ok;
}

static int w_wrap(void *ctx, const uint8_t *key, size_t len, uint8_t **w, size_t *wlen, creto_err *e)
{
	(void)ctx;
	*w = malloc(len + 16);
	return kw(1, key, len, *w, wlen) ? CRETO_OK : creto_err_set(e, CRETO_EOP, "wrap");
}

static int w_unwrap(void *ctx, const uint8_t *w, size_t wlen, uint8_t *key, size_t cap,
		    size_t *klen, creto_err *e)
{
	(void)ctx;
	uint8_t buf[600];
	if (wlen > sizeof(buf) || !kw(0, w, wlen, buf, klen) || *klen > cap)
		return creto_err_set(e, CRETO_EREJECT, "unwrap");
	memcpy(key, buf, *klen);
	return CRETO_OK;
}

static const creto_nhi_wrapper bench_wrapper = {
	.key_id = "bench:aes-kw", .wrap = w_wrap, .unwrap = w_unwrap, .ctx = NULL};

static int cmd_mkbackup(long n, const char *out)
{
	char dbp[] = "/tmp/bench_nhi_XXXXXX";
	int fd = mkstemp(dbp);
	if (fd < 0)
		die("mkstemp", NULL);
	close(fd);
	unlink(dbp);
	creto_err e;
	creto_nhi_store *s = NULL;
	double t = now_s();
	if (creto_nhi_store_init(dbp, NULL, &e) != 0 || creto_nhi_store_open(dbp, 0, &s, &e) != 0 ||
	    creto_nhi_store_begin(s, &e) != 0)
		die("store", &e);
	creto_nhi_agent a;
	memset(&a, 0, sizeof(a));
	for (long i = 0; i < n; i++) {
		snprintf(a.id, sizeof(a.id), "agent-%08ld", i);
		snprintf(a.name, sizeof(a.name), "Inference agent %ld", i);
		snprintf(a.scopes, sizeof(a.scopes), "model:llama-3.1-70b-instruct tool:search");
		a.created = 1900000000;
		a.not_after = 1990000000;
		if (creto_nhi_store_add(s, &a, &e) != 0)
			die("add", &e);
	}
	if (creto_nhi_store_commit(s, &e) != 0)
		die("commit", &e);
	double t1 = now_s();
	if (creto_nhi_backup_write(s, &bench_wrapper, out, 1900000000, &e) != 0)
		die("backup", &e);
	printf("provisioned %ld agents in %.1f s, backup written in %.1f s\n", n, t1 - t,
	       now_s() - t1);
	creto_nhi_store_free(s);
	unlink(dbp);
	return 0;
}

static int cmd_load(const char *bak)
{
	creto_err e;
	creto_nhi_store *s = NULL;
	creto_nhi_backup_info bi;
	double t = now_s();
	if (creto_nhi_backup_open(bak, &bench_wrapper, &s, &bi, &e) != 0)
		die("load", &e);
	creto_nhi_agent a;
	if (creto_nhi_store_get(s, "agent-00000007", &a, &e) != 0)
		die("lookup", &e);
	double dt = now_s() - t;
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	printf("%.3f %ld %llu\n", dt, ru.ru_maxrss / 1024, (unsigned long long)bi.data_len);
	creto_nhi_store_free(s);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 6 && strcmp(argv[1], "resolve") == 0)
		return cmd_resolve(strcmp(argv[2], "p256") == 0, strcmp(argv[3], "cached") == 0,
				   atoi(argv[4]), atof(argv[5]));
	if (argc == 3 && strcmp(argv[1], "parts") == 0)
		return cmd_parts(strcmp(argv[2], "p256") == 0);
	if (argc == 4 && strcmp(argv[1], "mkbackup") == 0)
		return cmd_mkbackup(atol(argv[2]), argv[3]);
	if (argc == 3 && strcmp(argv[1], "load") == 0)
		return cmd_load(argv[2]);
	fprintf(stderr, "usage: bench_nhi resolve ed25519|p256 cold|cached THREADS SECONDS\n"
			"       bench_nhi parts ed25519|p256\n"
			"       bench_nhi mkbackup N FILE.bak | load FILE.bak\n");
	return 2;
}
