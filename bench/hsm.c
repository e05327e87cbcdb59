/*
 * bench/hsm.c - signatures per second through a PKCS#11 module.
 *
 *   bench_hsm creto   MODULE TOKEN PINFILE KEYLABEL SECONDS THREADS
 *   bench_hsm raw     MODULE TOKEN PINFILE KEYLABEL SECONDS THREADS
 *   bench_hsm openssl ALG SECONDS
 *   bench_hsm creto-null|raw-null MODULE TOKEN PINFILE KEYLABEL SECONDS THREADS
 *   bench_hsm ha KEY-URI PINFILE SECONDS DEADLINE_MS ENDPOINT...
 *
 * "ha" signs in one thread through a failover handle (src/hsm/failover.c)
 * over the endpoints (--endpoint syntax) and prints "<signatures/s> <count>
 * <failed> <longest gap between two successes, ms>": while the benchmark
 * kills or stops a server, that gap is the time from the failure to the
 * first success on the other endpoint (plus one signature).
 *
 * "creto" signs through src/hsm (session pool, key lookup, host hashing
 * for ECDSA); "raw" is the module's own cost: C_SignInit + C_Sign in a loop
 * on one pre-opened session per thread, no library in between; "openssl"
 * signs in process with EVP.  The -null modes replace the module's
 * C_SignInit/C_Sign with functions that return at once, so creto-null minus
 * raw-null is the library's own per-signature cost, free of SoftHSM2's
 * (and of the noise of its cost on a loaded machine).  Prints "<signatures/s> <count> <seconds>".
 */
#define CRYPTOKI_GNU 1
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <p11-kit/pkcs11.h>

#include "creto/hsm.h"

static const uint8_t g_msg[] = "a 64-byte message signed over and over by the benchmark.......";
static double g_secs;

static double cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double g_cpu0;

/* "<signatures/s> <count> <seconds> <CPU microseconds per signature>":
 * the CPU figure is what a loaded machine distorts least. */
static void report(long n, double dt)
{
	double cpu = cpu_now() - g_cpu0;
	printf("%.0f %ld %.2f %.2f\n", (double)n / dt, n, dt, n ? cpu * 1e6 / (double)n : 0.0);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- a module whose signing costs nothing ---- */

static struct ck_function_list g_null;
static const char *g_real_module;

static ck_rv_t null_sign_init(ck_session_handle_t s, struct ck_mechanism *m, ck_object_handle_t k)
{
	(void)s;
	(void)m;
	(void)k;
	return CKR_OK;
}

static ck_rv_t null_sign(ck_session_handle_t s, unsigned char *d, unsigned long dl, unsigned char *sig,
			 unsigned long *sl)
{
	(void)s;
	(void)d;
	(void)dl;
	if (sig != NULL && *sl >= 64)
		memset(sig, 0x5a, 64);
	*sl = 64;
	return CKR_OK;
}

static ck_rv_t null_getfn(struct ck_function_list **out)
{
	void *dl = dlopen(g_real_module, RTLD_NOW);
	if (dl == NULL)
		return CKR_GENERAL_ERROR;
	ck_rv_t (*gf)(struct ck_function_list **);
	void *sym = dlsym(dl, "C_GetFunctionList");
	memcpy(&gf, &sym, sizeof(sym));
	struct ck_function_list *real;
	ck_rv_t rv = gf(&real);
	if (rv != CKR_OK)
		return rv;
	g_null = *real;
	g_null.C_SignInit = null_sign_init;
	g_null.C_Sign = null_sign;
	*out = &g_null;
	return CKR_OK;
}

/* ---- creto ---- */

struct cthr {
	creto_hsm_key *k;
	long n;
	int fail;
};

static void *creto_loop(void *arg)
{
	struct cthr *t = arg;
	double end = now() + g_secs;
	creto_err e;
	while (now() < end) {
		for (int i = 0; i < 16; i++) {
			uint8_t sig[128];
			size_t sl;
			if (creto_hsm_key_sign(t->k, g_msg, sizeof(g_msg) - 1, sig, sizeof(sig), &sl, &e) !=
			    CRETO_OK) {
				fprintf(stderr, "sign: %s\n", e.msg);
				t->fail = 1;
				return NULL;
			}
			t->n++;
		}
	}
	return NULL;
}

static int run_creto(const char *module, const char *token, const char *pinfile, const char *label,
		     int threads)
{
	char uri[2048];
	snprintf(uri, sizeof(uri), "pkcs11:token=%s;object=%s;type=private", token, label);
	creto_hsm_opts o = {.module_path = module, .pin_file = pinfile};
	creto_err e;
	creto_hsm *h = NULL;
	creto_p11_uri *u = NULL;
	creto_hsm_key *k = NULL;
	if (creto_hsm_open_uri(uri, &o, CRETO_HSM_LOGIN, &h, &u, &e) != CRETO_OK ||
	    creto_hsm_key_find(h, u, CRETO_P11_TYPE_PRIVATE, &k, &e) != CRETO_OK) {
		fprintf(stderr, "creto: %s\n", e.msg);
		return 3;
	}
	struct cthr t[16];
	pthread_t th[16];
	memset(t, 0, sizeof(t));
	g_cpu0 = cpu_now();
	double t0 = now();
	for (int i = 0; i < threads; i++) {
		t[i].k = k;
		pthread_create(&th[i], NULL, creto_loop, &t[i]);
	}
	long n = 0;
	int fail = 0;
	for (int i = 0; i < threads; i++) {
		pthread_join(th[i], NULL);
		n += t[i].n;
		fail |= t[i].fail;
	}
	double dt = now() - t0;
	creto_hsm_key_free(k);
	creto_p11_uri_free(u);
	creto_hsm_close(h);
	if (fail)
		return 3;
	report(n, dt);
	return 0;
}

/* ---- raw PKCS#11 ---- */

struct rthr {
	struct ck_function_list *f;
	ck_session_handle_t s;
	ck_object_handle_t key;
	ck_mechanism_type_t mech;
	const uint8_t *data;
	unsigned long datalen;
	long n;
	int fail;
};

static void *raw_loop(void *arg)
{
	struct rthr *t = arg;
	double end = now() + g_secs;
	while (now() < end) {
		for (int i = 0; i < 16; i++) {
			struct ck_mechanism m = {t->mech, NULL, 0};
			uint8_t sig[128];
			unsigned long sl = sizeof(sig);
			if (t->f->C_SignInit(t->s, &m, t->key) != CKR_OK ||
			    t->f->C_Sign(t->s, (uint8_t *)t->data, t->datalen, sig, &sl) != CKR_OK) {
				t->fail = 1;
				return NULL;
			}
			t->n++;
		}
	}
	return NULL;
}

static int run_raw(const char *module, const char *token, const char *pinfile, const char *label,
		   int threads, int null)
{
	struct ck_function_list *f;
	if (null) {
		g_real_module = module;
		if (null_getfn(&f) != CKR_OK)
			return 3;
	} else {
		void *dl = dlopen(module, RTLD_NOW);
		if (dl == NULL)
			return 3;
		ck_rv_t (*gf)(struct ck_function_list **);
		void *sym = dlsym(dl, "C_GetFunctionList");
		memcpy(&gf, &sym, sizeof(sym));
		gf(&f);
	}
	struct ck_c_initialize_args a;
	memset(&a, 0, sizeof(a));
	a.flags = CKF_OS_LOCKING_OK;
	if (f->C_Initialize(&a) != CKR_OK)
		return 3;
	ck_slot_id_t slots[64];
	unsigned long ns = 64;
	f->C_GetSlotList(1, slots, &ns);
	ck_slot_id_t slot = 0;
	int found = 0;
	for (unsigned long i = 0; i < ns; i++) {
		struct ck_token_info ti;
		f->C_GetTokenInfo(slots[i], &ti);
		size_t l = strlen(token);
		if (l <= 32 && memcmp(ti.label, token, l) == 0 && (l == 32 || ti.label[l] == ' ')) {
			slot = slots[i];
			found = 1;
		}
	}
	char pin[256];
	FILE *pf = fopen(pinfile, "r");
	if (!found || pf == NULL || fgets(pin, sizeof(pin), pf) == NULL)
		return 3;
	fclose(pf);
	pin[strcspn(pin, "\r\n")] = '\0';
	struct rthr t[16];
	pthread_t th[16];
	memset(t, 0, sizeof(t));
	uint8_t dig[48];
	for (int i = 0; i < threads; i++) {
		t[i].f = f;
		if (f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &t[i].s) != CKR_OK)
			return 3;
		if (i == 0 && f->C_Login(t[i].s, CKU_USER, (uint8_t *)pin, strlen(pin)) != CKR_OK)
			return 3;
		ck_object_class_t cls = CKO_PRIVATE_KEY;
		struct ck_attribute tpl[] = {{CKA_LABEL, (void *)label, strlen(label)},
					     {CKA_CLASS, &cls, sizeof(cls)}};
		unsigned long got = 0;
		f->C_FindObjectsInit(t[i].s, tpl, 2);
		f->C_FindObjects(t[i].s, &t[i].key, 1, &got);
		f->C_FindObjectsFinal(t[i].s);
		if (got != 1)
			return 3;
		ck_key_type_t kt = 0;
		struct ck_attribute ka = {CKA_KEY_TYPE, &kt, sizeof(kt)};
		f->C_GetAttributeValue(t[i].s, t[i].key, &ka, 1);
		if (kt == CKK_EC_EDWARDS) {
			t[i].mech = CKM_EDDSA;
			t[i].data = g_msg;
			t[i].datalen = sizeof(g_msg) - 1;
		} else {
			/* SoftHSM's own ECDSA cost: the digest is given. */
			unsigned dl2 = 0;
			EVP_Digest(g_msg, sizeof(g_msg) - 1, dig, &dl2, EVP_sha256(), NULL);
			t[i].mech = CKM_ECDSA;
			t[i].data = dig;
			t[i].datalen = 32;
		}
	}
	g_cpu0 = cpu_now();
	double t0 = now();
	for (int i = 0; i < threads; i++)
		pthread_create(&th[i], NULL, raw_loop, &t[i]);
	long n = 0;
	int fail = 0;
	for (int i = 0; i < threads; i++) {
		pthread_join(th[i], NULL);
		n += t[i].n;
		fail |= t[i].fail;
	}
	double dt = now() - t0;
	for (int i = 0; i < threads; i++)
		f->C_CloseSession(t[i].s);
	f->C_Finalize(NULL);
	if (fail)
		return 3;
	report(n, dt);
	return 0;
}

/* ---- OpenSSL in process ---- */

static int run_openssl(const char *alg)
{
	EVP_PKEY *pk = NULL;
	int ed = strcmp(alg, "ed25519") == 0;
	if (ed)
		pk = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	else
		pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (pk == NULL)
		return 3;
	long n = 0;
	g_cpu0 = cpu_now();
	double t0 = now(), end = t0 + g_secs;
	while (now() < end) {
		for (int i = 0; i < 16; i++) {
			EVP_MD_CTX *m = EVP_MD_CTX_new();
			uint8_t sig[128];
			size_t sl = sizeof(sig);
			if (EVP_DigestSignInit(m, NULL, ed ? NULL : EVP_sha256(), NULL, pk) != 1 ||
			    EVP_DigestSign(m, sig, &sl, g_msg, sizeof(g_msg) - 1) != 1)
				return 3;
			EVP_MD_CTX_free(m);
			n++;
		}
	}
	double dt = now() - t0;
	EVP_PKEY_free(pk);
	report(n, dt);
	return 0;
}

static int run_ha(const char *uri, const char *pinfile, unsigned deadline, char **eps, int nep)
{
	creto_hsm_endpoint ep[CRETO_HSM_ENDPOINTS_MAX];
	creto_err e;
	creto_err_clear(&e);
	if (nep < 1 || nep > CRETO_HSM_ENDPOINTS_MAX)
		return 2;
	for (int i = 0; i < nep; i++)
		if (creto_hsm_endpoint_parse(eps[i], &ep[i], &e) != CRETO_OK) {
			fprintf(stderr, "bench_hsm: %s\n", e.msg);
			return 2;
		}
	creto_hsm_opts o;
	memset(&o, 0, sizeof(o));
	o.pin_file = pinfile;
	o.endpoints = ep;
	o.nendpoints = (size_t)nep;
	o.deadline_ms = deadline;
	creto_hsm_ha *g = NULL;
	if (creto_hsm_ha_open(uri, &o, &g, &e) != CRETO_OK) {
		fprintf(stderr, "bench_hsm: %s\n", e.msg);
		return 3;
	}
	g_cpu0 = cpu_now();
	double t0 = now(), last = t0, gap = 0, t = t0;
	long n = 0, failed = 0;
	while ((t = now()) - t0 < g_secs) {
		uint8_t sig[128];
		size_t sl = 0;
		if (creto_hsm_ha_sign(g, g_msg, sizeof(g_msg) - 1, sig, sizeof(sig), &sl, &e) != CRETO_OK) {
			failed++;
			continue;
		}
		double d = now();
		if (d - last > gap)
			gap = d - last;
		last = d;
		n++;
	}
	printf("%.0f %ld %ld %.1f\n", (double)n / (t - t0), n, failed, gap * 1e3);
	creto_hsm_ha_close(g);
	return failed ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc >= 7 && strcmp(argv[1], "ha") == 0) {
		g_secs = atof(argv[4]);
		return run_ha(argv[2], argv[3], (unsigned)atoi(argv[5]), argv + 6, argc - 6);
	}
	if (argc == 4 && strcmp(argv[1], "openssl") == 0) {
		g_secs = atof(argv[3]);
		return run_openssl(argv[2]);
	}
	if (argc != 8) {
		fprintf(stderr, "usage: bench_hsm creto|raw|creto-null|raw-null MODULE TOKEN PINFILE KEY SECONDS THREADS\n"
				"       bench_hsm openssl ed25519|ecdsa-p256 SECONDS\n");
		return 2;
	}
	g_secs = atof(argv[6]);
	int threads = atoi(argv[7]);
	if (threads < 1 || threads > 16)
		return 2;
	if (strcmp(argv[1], "creto") == 0)
		return run_creto(argv[2], argv[3], argv[4], argv[5], threads);
	if (strcmp(argv[1], "raw") == 0)
		return run_raw(argv[2], argv[3], argv[4], argv[5], threads, 0);
	if (strcmp(argv[1], "creto-null") == 0) {
		g_real_module = argv[2];
		void *fn;
		ck_rv_t (*gf)(struct ck_function_list **) = null_getfn;
		memcpy(&fn, &gf, sizeof(fn));
		creto_hsm_module_override("/null/module.so", fn);
		return run_creto("/null/module.so", argv[3], argv[4], argv[5], threads);
	}
	if (strcmp(argv[1], "raw-null") == 0)
		return run_raw(argv[2], argv[3], argv[4], argv[5], threads, 1);
	return 2;
}
