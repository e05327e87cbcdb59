/*
 * test_hsm_failover.c - the failover group (src/hsm/failover.c) on a
 * SoftHSM2 token in a private SOFTHSM2_CONF under the build tree: opening
 * leaves no thread behind, signing before creto_hsm_ha_start (one-shot
 * calls), two keys of one token in one group, each with its own signer, a
 * dead endpoint (CKR_DEVICE_ERROR injected into C_Sign of a wrapped
 * SoftHSM2 module) failed over with one retry and reported to the sink,
 * a refusal never failed over, keys of two tokens refused.  The p11-kit
 * endpoints, a killed and a hung server are tested end to end in
 * tests/integration/test_hsm_remote.sh and test_serve_hsm_failover.sh.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dlfcn.h>

#include <cmocka.h>

#define CRYPTOKI_GNU 1
#include <p11-kit/pkcs11.h>

#include "creto/hsm.h"
#include "util/file.h"

#include "softhsm_token.h"
#define FAKE "/fake/failover-a.so"

static struct softhsm_token g_tok;
static int g_have_softhsm;
static ck_rv_t g_sign_rv = CKR_OK; /* what the wrapped module's C_Sign answers */
static struct ck_function_list g_real, g_fake;

static ck_rv_t fake_sign(ck_session_handle_t s, unsigned char *d, unsigned long dl, unsigned char *sig,
			 unsigned long *sl)
{
	if (g_sign_rv != CKR_OK)
		return g_sign_rv;
	return g_real.C_Sign(s, d, dl, sig, sl);
}

/* The wrapped module shares the SoftHSM2 library with the second endpoint:
 * its re-initialisation (the probe's reconnect) must not finalise the
 * library under the other. */
static ck_rv_t fake_initialize(void *args)
{
	ck_rv_t rv = g_real.C_Initialize(args);
	return rv == CKR_CRYPTOKI_ALREADY_INITIALIZED ? CKR_OK : rv;
}

static ck_rv_t fake_finalize(void *reserved)
{
	(void)reserved;
	return CKR_OK;
}

static ck_rv_t fake_getfn(struct ck_function_list **out)
{
	void *dl = dlopen(SOFTHSM, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
	if (dl == NULL)
		return CKR_GENERAL_ERROR;
	ck_rv_t (*g)(struct ck_function_list **) = NULL;
	void *sym = dlsym(dl, "C_GetFunctionList");
	memcpy(&g, &sym, sizeof(sym));
	struct ck_function_list *real = NULL;
	ck_rv_t rv = g(&real);
	if (rv != CKR_OK)
		return rv;
	g_real = *real;
	g_fake = *real;
	g_fake.C_Sign = fake_sign;
	g_fake.C_Initialize = fake_initialize;
	g_fake.C_Finalize = fake_finalize;
	*out = &g_fake;
	return CKR_OK;
}

static int setup_all(void **state)
{
	(void)state;
	g_have_softhsm = access(SOFTHSM, R_OK) == 0;
	if (!g_have_softhsm)
		return 0;
	if (softhsm_token_make(&g_tok, "test_hsm_failover", "ha", "4321-user", "8765-so") != 0)
		return -1;
	creto_err e;
	creto_err_clear(&e);
	creto_hsm *h = NULL;
	creto_hsm_opts o = {.module_path = SOFTHSM, .pin_file = g_tok.pin};
	if (creto_hsm_open_uri("pkcs11:token=ha", &o, CRETO_HSM_LOGIN | CRETO_HSM_RW, &h, NULL, &e) != CRETO_OK ||
	    creto_hsm_keygen(h, CRETO_HSM_KT_EC_P256, "cp", 0, NULL, &e) != CRETO_OK ||
	    creto_hsm_keygen(h, CRETO_HSM_KT_EC_P256, "iss", 0, NULL, &e) != CRETO_OK) {
		fprintf(stderr, "setup: %s\n", e.msg);
		creto_hsm_close(h);
		return -1;
	}
	creto_hsm_close(h);
	void *fn;
	ck_rv_t (*gf)(struct ck_function_list **) = fake_getfn;
	memcpy(&fn, &gf, sizeof(fn));
	creto_hsm_module_override(FAKE, fn);
	return 0;
}

static int teardown_all(void **state)
{
	(void)state;
	creto_hsm_module_override(FAKE, NULL);
	return softhsm_token_remove(&g_tok);
}

#define NEED_SOFTHSM()                                                                             \
	do {                                                                                       \
		if (!g_have_softhsm)                                                               \
			skip();                                                                    \
	} while (0)

static void *nop(void *arg)
{
	return arg;
}

/* Threads of the process, after one thread has come and gone: a sanitizer
 * runtime starts its own background thread at the first pthread_create,
 * which is not the group's. */
static size_t threads(void)
{
	pthread_t t;
	if (pthread_create(&t, NULL, nop, NULL) == 0)
		pthread_join(t, NULL);
	size_t n = creto_thread_count();
	assert_true(n > 0);
	return n;
}

/* What the group reported. */
struct rec {
	int downs, ups, failovers, other;
	char down_reason[64], down_endpoint[600], from[600], to[600];
};

static int rec_sink(void *ctx, const creto_event *ev)
{
	struct rec *r = ctx;
	const char *ep = NULL, *from = NULL, *to = NULL;
	for (size_t i = 0; i < ev->nfields; i++) {
		if (!strcmp(ev->fields[i].key, "endpoint"))
			ep = ev->fields[i].str;
		else if (!strcmp(ev->fields[i].key, "from"))
			from = ev->fields[i].str;
		else if (!strcmp(ev->fields[i].key, "to"))
			to = ev->fields[i].str;
	}
	if (!strcmp(ev->event, "endpoint-down")) {
		r->downs++;
		snprintf(r->down_reason, sizeof(r->down_reason), "%s", ev->reason ? ev->reason : "");
		snprintf(r->down_endpoint, sizeof(r->down_endpoint), "%s", ep ? ep : "");
	} else if (!strcmp(ev->event, "endpoint-up")) {
		r->ups++;
	} else if (!strcmp(ev->event, "failover")) {
		r->failovers++;
		snprintf(r->from, sizeof(r->from), "%s", from ? from : "");
		snprintf(r->to, sizeof(r->to), "%s", to ? to : "");
	} else {
		r->other++;
	}
	return 0;
}

static void sign_verify(creto_signer *s)
{
	creto_err e;
	creto_err_clear(&e);
	uint8_t *sig = NULL;
	size_t sl = 0;
	const uint8_t msg[] = "checkpoint body";
	int rc = creto_signer_sign(s, NULL, 0, msg, sizeof(msg) - 1, &sig, &sl, &e);
	if (rc != CRETO_OK)
		fprintf(stderr, "sign: %s\n", e.msg);
	assert_int_equal(rc, CRETO_OK);
	assert_int_equal(sl, 64);
	assert_int_equal(creto_pubkey_verify(creto_signer_pubkey(s), NULL, 0, msg, sizeof(msg) - 1, sig, sl, &e),
			 CRETO_OK);
	free(sig);
}

static void test_open_start_failover(void **state)
{
	(void)state;
	NEED_SOFTHSM();
	struct rec r;
	memset(&r, 0, sizeof(r));
	creto_event_sink sink = {rec_sink, &r};
	creto_hsm_endpoint ep[2];
	creto_err e;
	creto_err_clear(&e);
	assert_int_equal(creto_hsm_endpoint_parse(FAKE, &ep[0], &e), CRETO_OK);
	assert_int_equal(creto_hsm_endpoint_parse(SOFTHSM, &ep[1], &e), CRETO_OK);
	creto_hsm_opts o = {.pin_file = g_tok.pin, .events = &sink, .endpoints = ep, .nendpoints = 2,
			    .deadline_ms = 5000, .probe_ms = 50};
	const char *uris[] = {"pkcs11:token=ha;object=cp", "pkcs11:token=ha;object=iss"};
	size_t before = threads();
	creto_hsm_ha *g = NULL;
	int rc = creto_hsm_ha_open_keys(uris, 2, &o, &g, &e);
	if (rc != CRETO_OK)
		fprintf(stderr, "open: %s\n", e.msg);
	assert_int_equal(rc, CRETO_OK);
	/* a sandbox that needs one thread can be applied now */
	assert_int_equal(threads(), before);
	assert_string_equal(creto_hsm_ha_token_label(g), "ha");
	creto_signer *cp = NULL, *iss = NULL;
	assert_int_equal(creto_hsm_ha_signer(g, 0, &cp, &e), CRETO_OK);
	assert_int_equal(creto_hsm_ha_signer(g, 1, &iss, &e), CRETO_OK);
	creto_signer *none = NULL;
	assert_int_equal(creto_hsm_ha_signer(g, 2, &none, &e), CRETO_EUSAGE);
	assert_null(none);
	assert_string_not_equal(creto_pubkey_id(creto_signer_pubkey(cp)), creto_pubkey_id(creto_signer_pubkey(iss)));
	assert_string_equal(creto_pubkey_id(creto_signer_pubkey(cp)), creto_hsm_ha_key_id(g));
	/* before start: each call on a thread of its own, joined */
	sign_verify(cp);
	sign_verify(iss);
	assert_int_equal(threads(), before);
	/* started: one worker per endpoint */
	assert_int_equal(creto_hsm_ha_start(g, &e), CRETO_OK);
	assert_int_equal(creto_hsm_ha_start(g, &e), CRETO_OK); /* idempotent */
	assert_int_equal(threads(), before + 2);
	sign_verify(iss);
	creto_hsm_ha_stats st;
	creto_hsm_ha_stats_get(g, &st);
	assert_int_equal(st.ops, 3);
	assert_int_equal(st.retries, 0);
	creto_hsm_ha_endpoint_status es;
	creto_hsm_ha_endpoint_get(g, 0, &es);
	assert_true(es.up && es.active);
	assert_string_equal(es.name, FAKE);

	/* a refusal is returned as it is, never failed over */
	g_sign_rv = CKR_KEY_HANDLE_INVALID;
	uint8_t sig[128];
	size_t sl = 0;
	assert_int_equal(creto_hsm_ha_sign_key(g, 1, (const uint8_t *)"x", 1, sig, sizeof(sig), &sl, &e), CRETO_EOP);
	assert_non_null(strstr(e.msg, "CKR_KEY_HANDLE_INVALID"));
	creto_hsm_ha_stats_get(g, &st);
	assert_int_equal(st.failovers, 0);
	assert_int_equal(st.retries, 0);
	assert_int_equal(st.failed, 1);
	assert_int_equal(r.downs, 0);

	/* endpoint a dies: the signature goes to b, once retried */
	g_sign_rv = CKR_DEVICE_ERROR;
	sign_verify(cp);
	creto_hsm_ha_stats_get(g, &st);
	assert_int_equal(st.retries, 1);
	assert_int_equal(st.failovers, 1);
	assert_int_equal(st.failed, 1);
	assert_int_equal(st.max_attempts, 2);
	creto_hsm_ha_endpoint_get(g, 1, &es);
	assert_true(es.up && es.active);
	assert_int_equal(r.downs, 1);
	assert_string_equal(r.down_reason, "CKR_DEVICE_ERROR");
	assert_string_equal(r.down_endpoint, FAKE);
	assert_int_equal(r.failovers, 1);
	assert_string_equal(r.from, FAKE);
	assert_string_equal(r.to, SOFTHSM);
	/* and is probed until it answers (the probe reconnects; signing
	 * stays on b: the active endpoint does not move back by itself) */
	g_sign_rv = CKR_OK;
	for (int i = 0; i < 200 && r.ups == 0; i++)
		usleep(10000);
	assert_int_equal(r.ups, 1);
	creto_hsm_ha_endpoint_get(g, 0, &es);
	assert_true(es.up && !es.active);
	assert_int_equal(es.downs, 1);
	sign_verify(iss);

	creto_hsm_ha_stats_get(g, &st);
	assert_int_equal(st.failovers, 1);
	assert_int_equal(st.failed, 1);
	assert_int_equal(r.other, 0);

	creto_signer_free(cp);
	creto_signer_free(iss);
	creto_hsm_ha_close(g);
	for (int i = 0; i < 200 && threads() != before; i++)
		usleep(10000);
	assert_int_equal(threads(), before);
}

static void test_open_refusals(void **state)
{
	(void)state;
	NEED_SOFTHSM();
	creto_hsm_endpoint ep;
	creto_err e;
	creto_err_clear(&e);
	assert_int_equal(creto_hsm_endpoint_parse(SOFTHSM, &ep, &e), CRETO_OK);
	creto_hsm_opts o = {.pin_file = g_tok.pin, .endpoints = &ep, .nendpoints = 1};
	creto_hsm_ha *g = NULL;
	size_t base = threads();
	const char *two_tokens[] = {"pkcs11:token=ha;object=cp", "pkcs11:token=other;object=iss"};
	assert_int_equal(creto_hsm_ha_open_keys(two_tokens, 2, &o, &g, &e), CRETO_EUSAGE);
	assert_non_null(strstr(e.msg, "must name the same token"));
	const char *missing[] = {"pkcs11:token=ha;object=cp", "pkcs11:token=ha;object=nope"};
	assert_int_equal(creto_hsm_ha_open_keys(missing, 2, &o, &g, &e), CRETO_EUSAGE);
	assert_non_null(strstr(e.msg, "'nope'"));
	assert_null(g);
	const char *none[] = {"pkcs11:token=ha"};
	assert_int_equal(creto_hsm_ha_open_keys(none, 1, &o, &g, &e), CRETO_EUSAGE);
	assert_int_equal(creto_hsm_ha_open_keys(missing, 0, &o, &g, &e), CRETO_EUSAGE);
	assert_int_equal(threads(), base); /* no thread left by a refused open */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_start_failover),
		cmocka_unit_test(test_open_refusals),
	};
	return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
