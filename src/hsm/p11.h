/*
 * p11.h - internals shared by the files of src/hsm/ (not a public header):
 * the loaded module, the token handle with its session pool, and helpers
 * that turn a CKR_ value into a one-line error.
 */
#ifndef CRETO_HSM_P11_H
#define CRETO_HSM_P11_H

#include <pthread.h>
#include <sys/types.h>

#define CRYPTOKI_GNU 1
#include <p11-kit/pkcs11.h>

#include "creto/hsm.h"

/* SoftHSM2 2.6.1 leaks a few bytes in every EdDSA C_SignInit (an ASN.1
 * object it decodes and never frees).  In sanitizer builds, allocations the
 * module makes inside such calls are not counted as our leaks. */
#ifdef CRETO_SANITIZE
#include <sanitizer/lsan_interface.h>
#define P11_MODULE_LEAKS_BEGIN() __lsan_disable()
#define P11_MODULE_LEAKS_END() __lsan_enable()
#else
#define P11_MODULE_LEAKS_BEGIN() ((void)0)
#define P11_MODULE_LEAKS_END() ((void)0)
#endif

/* One module per path per process, initialised once (C_Initialize with
 * CKF_OS_LOCKING_OK) and again in a forked child (pid != getpid()). */
struct p11_module {
	char *path;
	void *dl;                   /* NULL when a test override supplied f */
	struct ck_function_list *f;
	pid_t pid;                  /* process that initialised it */
	unsigned gen;               /* bumped on every re-initialisation */
	int refs;
	int we_initialized;
	struct p11_module *next;
};

struct creto_hsm {
	struct p11_module *mod;
	ck_slot_id_t slot;
	char label[CRETO_HSM_TOKEN_LABEL_MAX + 1];
	unsigned flags;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	ck_session_handle_t idle[CRETO_HSM_POOL_MAX];
	size_t nidle, nopen, max;
	unsigned gen;               /* mod->gen the sessions belong to */
	unsigned epoch;             /* bumped whenever object handles may be stale */
	char *pin;                  /* kept for re-login after fork; wiped */
	size_t pinlen;
};

/* Fill e with "<fn> on token '<label>': CKR_..." and return the status
 * class of rv (see creto/hsm.h). */
int p11_fail(creto_err *e, ck_rv_t rv, const char *fn, const creto_hsm *h);
/* Status class of a CKR_ value. */
int p11_rv_code(ck_rv_t rv);

/* Borrow a session from h's pool (opening one, re-initialising after fork,
 * or waiting for one to be returned).  Return it with p11_session_put;
 * last_rv tells whether the session is still usable. */
int p11_session_get(creto_hsm *h, ck_session_handle_t *s, creto_err *e);
void p11_session_put(creto_hsm *h, ck_session_handle_t s, ck_rv_t last_rv);
/* The epoch of h's object handles: changes after fork re-initialisation or
 * when every session closed (the user was logged out). */
unsigned p11_gen(creto_hsm *h);

/* The object handle of k, found again when the module was re-initialised
 * (after fork) since k was found. */
int p11_key_handle(creto_hsm_key *k, ck_session_handle_t s, ck_object_handle_t *obj,
		   ck_rv_t *last, creto_err *e);

/* The ML-DSA half of a hybrid HSM key (hybrid.c): u->pq_file must belong to
 * the classical key cl_label/cl_id of type cl_alg on u's token. */
int p11_pq_signer_open(const creto_p11_uri *u, const creto_keys_opts *opts,
		       const char *cl_label, const uint8_t *cl_id, size_t cl_idlen,
		       creto_alg cl_alg, creto_signer **out, creto_err *e);
/* The ML-DSA public key in a hybrid key file made for a cl_alg key; *alg
 * receives the hybrid algorithm. */
int p11_pq_pubkey(const char *path, creto_alg cl_alg, uint8_t *pk, size_t cap, size_t *pklen,
		  creto_alg *alg, creto_err *e);

#endif
