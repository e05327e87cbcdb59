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
	int busy;                   /* loading or re-initialising, without the list's mutex */
	int we_initialized;
	void *kitdl;                /* libp11-kit, for a "p11-kit:NAME" module */
	struct ck_function_list *kitmod; /* that module, released at the end */
	struct p11_module *next;
};

/* Module paths of this form name a p11-kit module configuration. */
#define P11_KIT_PREFIX "p11-kit:"

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
	creto_event_sink events;    /* from creto_hsm_opts: failed logins go here */
};

/* Size of a buffer for p11_pin_read: the longest PIN, CR LF, and one byte
 * to tell a longer file. */
#define P11_PIN_BUF (CRETO_HSM_PIN_MAX + 4)

/* Read a PIN file into the caller's fixed buffer buf (never a growing heap
 * buffer, which would leave a copy of the PIN in freed memory): opened
 * O_NOFOLLOW, a regular file, one PIN of 1..CRETO_HSM_PIN_MAX bytes with
 * one trailing LF or CR LF removed; NUL-terminated, *pinlen excludes the
 * NUL.  Every failure (missing, symlink, not a regular file, empty, too
 * long, two lines, a NUL byte, "-") is CRETO_EUSAGE and leaves buf wiped.
 * The caller wipes buf after use (OPENSSL_cleanse). */
int p11_pin_read(const char *path, char buf[P11_PIN_BUF], size_t *pinlen, creto_err *e) CRETO_WUR;

/* Fill e with "<fn> on token '<label>': CKR_..." and return the status
 * class of rv (see creto/hsm.h). */
int p11_fail(creto_err *e, ck_rv_t rv, const char *fn, const creto_hsm *h);
/* The CKR_ value of the last PKCS#11 failure reported on this thread
 * (p11_fail, module loading); reset before a job, read after it. */
void p11_last_rv_reset(void);
ck_rv_t p11_last_rv(void);

/* Finalise and initialise module m again (a remote endpoint whose
 * connection broke needs a new one) and bump m->gen, so every handle on it
 * reopens its sessions and logs in again.  A module shared with other
 * handles is left alone (CRETO_OK). */
int p11_module_reinit(struct p11_module *m, creto_err *e);

/* Reconnect h after its endpoint failed: p11_module_reinit, the slot
 * checked to hold h's token still, a session opened (and the user logged
 * in again).  Object handles are found again through the epoch. */
int p11_handle_reconnect(creto_hsm *h, creto_err *e);

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

/* The CKA_LABEL and CKA_ID of an object as found on the token. */
struct p11_keyname {
	char label[CRETO_HSM_LABEL_MAX + 1];
	uint8_t id[CRETO_HSM_ID_MAX];
	size_t idlen;
	int has_label, has_id;
};

/* creto_hsm_pub_raw that also reports (when name is not NULL) the label
 * and id of the object the public key was read from. */
int p11_pub_raw(creto_hsm *h, const creto_p11_uri *u, creto_alg *alg, uint8_t *raw, size_t cap,
		size_t *len, struct p11_keyname *name, creto_err *e) CRETO_WUR;

/* The ML-DSA half of a hybrid HSM key (hybrid.c): u->pq_file must have
 * been made for the classical key cl (label and id as found on the token) of
 * type cl_alg on u's token, else CRETO_EREJECT.  The file's GCM tag and
 * public key are checked at every signature. */
int p11_pq_signer_open(const creto_p11_uri *u, const creto_hsm_opts *opts,
		       const struct p11_keyname *cl, creto_alg cl_alg, creto_signer **out,
		       creto_err *e) CRETO_WUR;
/* The ML-DSA public key in the hybrid key file path, which must have been
 * made for the classical key cl of type cl_alg on h's token (the same
 * binding checks as p11_pq_signer_open, without a PIN).  When h is logged
 * in (CRETO_HSM_LOGIN), the file is also unsealed: the data key unwrapped,
 * the GCM tag (over every header line and the public key) verified and the
 * seed's public key compared with the file's, so the returned key is
 * authenticated; without login only the binding is.  A file that fails is
 * CRETO_EREJECT naming the file.  *alg receives the hybrid algorithm. */
int p11_pq_pubkey(creto_hsm *h, const char *path, creto_alg cl_alg, const struct p11_keyname *cl,
		  uint8_t *pk, size_t cap, size_t *pklen, creto_alg *alg, creto_err *e) CRETO_WUR;

#endif
