/*
 * p11.c - PKCS#11 modules, tokens, login and the session pool.
 *
 * A module is loaded with dlopen once per path and initialised with
 * CKF_OS_LOCKING_OK, so one process can sign from several threads.  A token
 * handle (creto_hsm) names one token, found by its label (slot ids change
 * when a token is initialised), and keeps a small pool of sessions: a
 * signer borrows one, so two threads never serialise on one session.  The
 * user logs in once per token (PKCS#11 login state is per application); no
 * C_Logout at close, because other handles may still use the login and the
 * module logs out when the last session closes.
 *
 * Fork: PKCS#11 says a child must call C_Initialize itself.  Every borrow
 * compares the pid that initialised the module with getpid(); in a child it
 * re-initialises the module, drops the inherited sessions and logs in again
 * with the PIN kept (in memory only, wiped on close) for that purpose.
 */
#include "p11.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "util/file.h"

static pthread_mutex_t g_mods_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_mods_cv = PTHREAD_COND_INITIALIZER; /* a module stopped being busy */
static struct p11_module *g_mods;

struct override {
	char path[512];
	ck_rv_t (*getfn)(struct ck_function_list **);
};
#define OVERRIDE_MAX 4
static struct override g_override[OVERRIDE_MAX];

void creto_hsm_module_override(const char *path, void *getfn)
{
	pthread_mutex_lock(&g_mods_mu);
	if (path == NULL) {
		memset(g_override, 0, sizeof(g_override));
		goto out;
	}
	struct override *slot = NULL;
	for (size_t i = 0; i < OVERRIDE_MAX && slot == NULL; i++)
		if (strcmp(g_override[i].path, path) == 0)
			slot = &g_override[i];
	for (size_t i = 0; i < OVERRIDE_MAX && slot == NULL && getfn != NULL; i++)
		if (g_override[i].getfn == NULL)
			slot = &g_override[i];
	if (slot == NULL)
		goto out;
	if (getfn == NULL) {
		memset(slot, 0, sizeof(*slot));
	} else {
		snprintf(slot->path, sizeof(slot->path), "%s", path);
		/* The pointer came in as void * so the public header needs no
		 * pkcs11.h; converting it back is the seam's whole purpose. */
		memcpy(&slot->getfn, &getfn, sizeof(getfn));
	}
out:
	pthread_mutex_unlock(&g_mods_mu);
}

/* The CKR_ value of the last PKCS#11 failure on this thread (p11_fail and
 * the module paths set it): the failover layer reads it after each job it
 * runs on an endpoint's worker thread, to tell a dead endpoint from a
 * refusal without parsing messages. */
static _Thread_local ck_rv_t tl_last_rv;

void p11_last_rv_reset(void)
{
	tl_last_rv = CKR_OK;
}

ck_rv_t p11_last_rv(void)
{
	return tl_last_rv;
}

int p11_rv_code(ck_rv_t rv)
{
	switch (rv) {
	case CKR_OK:
		return CRETO_OK;
	case CKR_PIN_INCORRECT:
	case CKR_PIN_INVALID:
	case CKR_PIN_LEN_RANGE:
	case CKR_USER_PIN_NOT_INITIALIZED:
		return CRETO_EUSAGE;
	case CKR_WRAPPED_KEY_INVALID:
	case CKR_WRAPPED_KEY_LEN_RANGE:
	case CKR_ENCRYPTED_DATA_INVALID:
	case CKR_ENCRYPTED_DATA_LEN_RANGE:
		return CRETO_EREJECT;
	default:
		return CRETO_EOP;
	}
}

int p11_fail(creto_err *e, ck_rv_t rv, const char *fn, const creto_hsm *h)
{
	tl_last_rv = rv;
	char buf[32];
	const char *name = creto_ckr_name(rv, buf);
	if (h != NULL && h->label[0] != '\0')
		return creto_err_set(e, p11_rv_code(rv), "%s on token '%s': %s", fn, h->label, name);
	return creto_err_set(e, p11_rv_code(rv), "%s: %s", fn, name);
}

/* ---- modules ---- */

static ck_rv_t mod_initialize(struct p11_module *m)
{
	struct ck_c_initialize_args args;
	memset(&args, 0, sizeof(args));
	args.flags = CKF_OS_LOCKING_OK;
	ck_rv_t rv = m->f->C_Initialize(&args);
	if (rv == CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		/* Someone else in this process initialised it: share, never
		 * finalise it under them. */
		m->we_initialized = 0;
		return CKR_OK;
	}
	m->we_initialized = rv == CKR_OK;
	return rv;
}

/* Resolve module-name (RFC 7512: a module name without path or suffix). */
static int resolve_module_name(const char *name, char *out, size_t cap, creto_err *e)
{
	if (strchr(name, '/') != NULL || name[0] == '\0' || name[0] == '.')
		return creto_err_set(e, CRETO_EUSAGE, "pkcs11 URI: module-name '%s' must be a bare name",
				     name);
	static const char *dirs[] = {"/usr/lib/x86_64-linux-gnu/pkcs11", "/usr/lib/aarch64-linux-gnu/pkcs11",
				     "/usr/lib/pkcs11", "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
				     "/usr/lib/softhsm", "/usr/lib64", "/usr/lib"};
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(out, cap, "%s/%s.so", dirs[i], name);
		if (access(out, R_OK) == 0)
			return CRETO_OK;
		snprintf(out, cap, "%s/lib%s.so", dirs[i], name);
		if (access(out, R_OK) == 0)
			return CRETO_OK;
	}
	return creto_err_set(e, CRETO_EUSAGE, "PKCS#11 module named '%s' not found", name);
}

/* ---- modules named by a p11-kit module configuration ----
 *
 * "p11-kit:NAME" names the module that p11-kit's configuration file
 * NAME.module describes (pkcs11.conf(5): /etc/pkcs11/modules/ and
 * /usr/share/p11-kit/modules/).  That is how one process reaches two
 * remote HSMs: p11-kit-client.so takes its server address from the
 * environment, once per C_GetFunctionList, while a module configuration
 * with a `remote: unix:path=...` line gives each endpoint its own RPC
 * client.  libp11-kit is loaded with dlopen (like every module) so a build
 * without remote endpoints needs nothing more. */

struct kit_api {
	void *dl;
	struct ck_function_list **(*load)(void *reserved, int flags);
	char *(*get_name)(struct ck_function_list *module);
	void (*release)(struct ck_function_list *module);
};

/* Managed modules (flags 0): each configuration gets its own function list
 * (unmanaged remote modules may share one, and their names with it). */

static int kit_api_get(struct kit_api *k, creto_err *e)
{
	memset(k, 0, sizeof(*k));
	k->dl = dlopen("libp11-kit.so.0", RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
	if (k->dl == NULL)
		return creto_err_set(e, CRETO_EOP, "p11-kit module configurations: cannot load libp11-kit.so.0");
	void *a = dlsym(k->dl, "p11_kit_modules_load");
	void *b = dlsym(k->dl, "p11_kit_module_get_name");
	void *c = dlsym(k->dl, "p11_kit_module_release");
	if (a == NULL || b == NULL || c == NULL) {
		dlclose(k->dl);
		k->dl = NULL;
		return creto_err_set(e, CRETO_EOP, "libp11-kit.so.0 lacks the module loading API");
	}
	memcpy(&k->load, &a, sizeof(a));
	memcpy(&k->get_name, &b, sizeof(b));
	memcpy(&k->release, &c, sizeof(c));
	return CRETO_OK;
}

/* Load the module of configuration name into m (m->f, m->kitmod). */
static int kit_load(struct p11_module *m, const char *name, creto_err *e)
{
	if (name[0] == '\0' || strchr(name, '/') != NULL)
		return creto_err_set(e, CRETO_EUSAGE,
				     "HSM endpoint 'p11-kit:%s': name a p11-kit module configuration (NAME.module)",
				     name);
	struct kit_api k;
	int rc = kit_api_get(&k, e);
	if (rc != CRETO_OK)
		return rc;
	struct ck_function_list **mods = k.load(NULL, 0);
	if (mods == NULL) {
		dlclose(k.dl);
		return creto_err_set(e, CRETO_EOP, "p11-kit: loading the module configurations failed");
	}
	for (size_t i = 0; mods[i] != NULL; i++) {
		char *n = k.get_name(mods[i]);
		if (m->kitmod == NULL && n != NULL && strcmp(n, name) == 0)
			m->kitmod = mods[i];
		else
			k.release(mods[i]);
		free(n);
	}
	free(mods);
	if (m->kitmod == NULL) {
		dlclose(k.dl);
		return creto_err_set(e, CRETO_EUSAGE,
				     "HSM endpoint 'p11-kit:%s': no p11-kit module configuration '%s.module' "
				     "(in /etc/pkcs11/modules or /usr/share/p11-kit/modules)",
				     name, name);
	}
	m->kitdl = k.dl;
	m->f = m->kitmod;
	return CRETO_OK;
}

static void kit_release(struct p11_module *m)
{
	if (m->kitmod == NULL)
		return;
	void *sym = dlsym(m->kitdl, "p11_kit_module_release");
	void (*rel)(struct ck_function_list *) = NULL;
	memcpy(&rel, &sym, sizeof(sym));
	if (rel != NULL)
		rel(m->kitmod);
	dlclose(m->kitdl);
	m->kitmod = NULL;
	m->kitdl = NULL;
}

static int module_acquire(const char *path, struct p11_module **out, creto_err *e)
{
	*out = NULL;
	int rc = CRETO_OK;
	pthread_mutex_lock(&g_mods_mu);
again:
	for (struct p11_module *m = g_mods; m != NULL; m = m->next) {
		if (strcmp(m->path, path) == 0) {
			if (m->busy) { /* being loaded or re-initialised */
				pthread_cond_wait(&g_mods_cv, &g_mods_mu);
				goto again;
			}
			m->refs++;
			*out = m;
			pthread_mutex_unlock(&g_mods_mu);
			return CRETO_OK;
		}
	}
	struct p11_module *m = calloc(1, sizeof(*m));
	if (m == NULL || (m->path = strdup(path)) == NULL) {
		free(m);
		pthread_mutex_unlock(&g_mods_mu);
		return creto_err_set(e, CRETO_EOP, "out of memory");
	}
	ck_rv_t (*getfn)(struct ck_function_list **) = NULL;
	for (size_t i = 0; i < OVERRIDE_MAX; i++)
		if (g_override[i].getfn != NULL && strcmp(g_override[i].path, path) == 0)
			getfn = g_override[i].getfn;
	/* Listed while it loads (busy), so that the mutex is not held across
	 * the module's own calls: C_Initialize of a remote module whose server
	 * hangs never returns, and must not stop every other module. */
	m->busy = 1;
	m->refs = 1;
	m->next = g_mods;
	g_mods = m;
	pthread_mutex_unlock(&g_mods_mu);
	if (getfn == NULL && strncmp(path, P11_KIT_PREFIX, strlen(P11_KIT_PREFIX)) == 0) {
		rc = kit_load(m, path + strlen(P11_KIT_PREFIX), e);
		if (rc != CRETO_OK)
			goto fail;
	} else if (getfn == NULL) {
		struct stat st;
		if (stat(path, &st) != 0) {
			rc = creto_err_set(e, CRETO_EUSAGE, "PKCS#11 module '%s': %s", path,
					   strerror(errno));
			goto fail;
		}
		m->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
		if (m->dl == NULL) {
			const char *why = dlerror();
			rc = creto_err_set(e, CRETO_EOP, "PKCS#11 module '%s': cannot load: %s", path,
					   why ? why : "dlopen failed");
			goto fail;
		}
		void *sym = dlsym(m->dl, "C_GetFunctionList");
		if (sym == NULL) {
			rc = creto_err_set(e, CRETO_EOP,
					   "PKCS#11 module '%s': no C_GetFunctionList (not a PKCS#11 module)",
					   path);
			goto fail;
		}
		memcpy(&getfn, &sym, sizeof(sym));
	}
	ck_rv_t rv = m->f != NULL ? CKR_OK : getfn(&m->f);
	if (rv != CKR_OK || m->f == NULL) {
		char b[32];
		rc = creto_err_set(e, CRETO_EOP, "C_GetFunctionList of module '%s': %s", path,
				   creto_ckr_name(rv == CKR_OK ? CKR_GENERAL_ERROR : rv, b));
		goto fail;
	}
	rv = mod_initialize(m);
	if (rv != CKR_OK) {
		char b[32];
		tl_last_rv = rv;
		rc = creto_err_set(e, CRETO_EOP, "C_Initialize of module '%s': %s", path,
				   creto_ckr_name(rv, b));
		goto fail;
	}
	pthread_mutex_lock(&g_mods_mu);
	m->pid = getpid();
	m->busy = 0;
	pthread_cond_broadcast(&g_mods_cv);
	pthread_mutex_unlock(&g_mods_mu);
	*out = m;
	return CRETO_OK;
fail:
	pthread_mutex_lock(&g_mods_mu);
	for (struct p11_module **pp = &g_mods; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == m) {
			*pp = m->next;
			break;
		}
	}
	pthread_cond_broadcast(&g_mods_cv);
	pthread_mutex_unlock(&g_mods_mu);
	kit_release(m);
	if (m->dl != NULL)
		dlclose(m->dl);
	free(m->path);
	free(m);
	return rc;
}

static void module_release(struct p11_module *m)
{
	if (m == NULL)
		return;
	pthread_mutex_lock(&g_mods_mu);
	if (--m->refs > 0) {
		pthread_mutex_unlock(&g_mods_mu);
		return;
	}
	for (struct p11_module **pp = &g_mods; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == m) {
			*pp = m->next;
			break;
		}
	}
	pthread_mutex_unlock(&g_mods_mu);
	if (m->we_initialized && m->pid == getpid())
		(void)m->f->C_Finalize(NULL);
	kit_release(m);
	if (m->dl != NULL)
		dlclose(m->dl);
	free(m->path);
	free(m);
}

int p11_module_reinit(struct p11_module *m, creto_err *e)
{
	int rc = CRETO_OK;
	pthread_mutex_lock(&g_mods_mu);
	if (m->refs > 1 || m->pid != getpid()) {
		/* Shared with another handle (or a forked child's copy): the
		 * others keep their sessions; only this handle reopens. */
		pthread_mutex_unlock(&g_mods_mu);
		return CRETO_OK;
	}
	/* The calls run without the mutex (a hung remote server must not
	 * stop other modules); a concurrent open of the same path waits. */
	m->busy = 1;
	pthread_mutex_unlock(&g_mods_mu);
	if (m->we_initialized)
		(void)m->f->C_Finalize(NULL);
	ck_rv_t rv = mod_initialize(m);
	if (rv != CKR_OK) {
		char b[32];
		tl_last_rv = rv;
		rc = creto_err_set(e, CRETO_EOP, "C_Initialize of module '%s': %s", m->path,
				   creto_ckr_name(rv, b));
	}
	pthread_mutex_lock(&g_mods_mu);
	m->gen++;
	m->busy = 0;
	pthread_cond_broadcast(&g_mods_cv);
	pthread_mutex_unlock(&g_mods_mu);
	return rc;
}

/* In a forked child: initialise the module again (once per process). */
static int module_check_fork(struct p11_module *m, creto_err *e)
{
	if (m->pid == getpid())
		return CRETO_OK;
	int rc = CRETO_OK;
	pthread_mutex_lock(&g_mods_mu);
	if (m->pid != getpid()) {
		struct ck_c_initialize_args args;
		memset(&args, 0, sizeof(args));
		args.flags = CKF_OS_LOCKING_OK;
		ck_rv_t rv = m->f->C_Initialize(&args);
		if (rv == CKR_CRYPTOKI_ALREADY_INITIALIZED) {
			/* The module kept the parent's state (SoftHSM2 without
			 * reset_on_fork): start clean. */
			(void)m->f->C_Finalize(NULL);
			rv = m->f->C_Initialize(&args);
		}
		if (rv != CKR_OK) {
			char b[32];
			rc = creto_err_set(e, CRETO_EOP, "C_Initialize after fork, module '%s': %s",
					   m->path, creto_ckr_name(rv, b));
		} else {
			m->we_initialized = 1;
			m->pid = getpid();
			m->gen++;
		}
	}
	pthread_mutex_unlock(&g_mods_mu);
	return rc;
}

/* ---- PINs ---- */

int p11_pin_read(const char *path, char buf[P11_PIN_BUF], size_t *pinlen, creto_err *e)
{
	/* The PIN goes into the caller's fixed buffer, never into one that
	 * grows: a realloc'ed buffer leaves an unwiped copy of the PIN in freed
	 * memory (creto_file_read does that at EOF). */
	*pinlen = 0;
	OPENSSL_cleanse(buf, P11_PIN_BUF); /* wiped on every failure path */
	int rc = CRETO_OK;
	if (strcmp(path, "-") == 0)
		return creto_err_set(e, CRETO_EUSAGE,
				     "PIN file '-': standard input is not accepted, name a file");
	/* One byte more than the longest valid file (PIN + CR LF) is "larger". */
	size_t len = 0;
	rc = creto_file_read_fixed(path, buf, P11_PIN_BUF - 1, &len, e);
	if (rc != CRETO_OK) {
		/* a missing, linked or odd PIN file is configuration: exit 2 */
		char why[CRETO_ERR_MSG_MAX];
		memcpy(why, e->msg, sizeof(why));
		rc = creto_err_set(e, CRETO_EUSAGE, "PIN file %s", why);
	}
	if (rc == CRETO_OK) {
		if (len > 0 && buf[len - 1] == '\n')
			len--;
		if (len > 0 && buf[len - 1] == '\r')
			len--;
		if (len == 0 || len > CRETO_HSM_PIN_MAX || memchr(buf, '\0', len) != NULL ||
		    memchr(buf, '\n', len) != NULL)
			rc = creto_err_set(e, CRETO_EUSAGE,
					   "PIN file %s: must hold one PIN of 1 to %d bytes on one line",
					   path, CRETO_HSM_PIN_MAX);
	}
	if (rc != CRETO_OK) {
		OPENSSL_cleanse(buf, P11_PIN_BUF);
		return rc;
	}
	OPENSSL_cleanse(buf + len, P11_PIN_BUF - len);
	*pinlen = len;
	return CRETO_OK;
}

/* A PIN file read into a heap copy of exactly the PIN's size (kept by a
 * token handle for re-login after fork); the read buffer is wiped. */
static int read_pin_file(const char *path, char **pin, size_t *pinlen, creto_err *e)
{
	char buf[P11_PIN_BUF];
	size_t len = 0;
	*pin = NULL;
	*pinlen = 0;
	int rc = p11_pin_read(path, buf, &len, e);
	if (rc == CRETO_OK) {
		*pin = malloc(len + 1);
		if (*pin == NULL) {
			rc = creto_err_set(e, CRETO_EOP, "out of memory");
		} else {
			memcpy(*pin, buf, len + 1);
			*pinlen = len;
		}
	}
	OPENSSL_cleanse(buf, sizeof(buf));
	return rc;
}

/* The PIN for u: pin-source, then opts->pin_file.  A pin-value attribute
 * is refused (creto_hsm_open): a URI travels in argv and config text. */
static int get_pin(const creto_p11_uri *u, const creto_hsm_opts *opts, char **pin, size_t *pinlen,
		   creto_err *e)
{
	*pin = NULL;
	*pinlen = 0;
	if (u != NULL && u->pin_source != NULL) {
		const char *p = u->pin_source;
		if (strncmp(p, "file:", 5) == 0) {
			p += 5;
			if (strncmp(p, "//localhost/", 12) == 0)
				p += 11;
			else if (strncmp(p, "///", 3) == 0)
				p += 2;
			else if (strncmp(p, "//", 2) == 0)
				return creto_err_set(e, CRETO_EUSAGE,
						     "pkcs11 URI: pin-source file URI must name a local file");
		}
		if (p[0] != '/')
			return creto_err_set(e, CRETO_EUSAGE,
					     "pkcs11 URI: pin-source must be file:/ABSOLUTE/PATH or /ABSOLUTE/PATH");
		return read_pin_file(p, pin, pinlen, e);
	}
	if (opts != NULL && opts->pin_file != NULL)
		return read_pin_file(opts->pin_file, pin, pinlen, e);
	return creto_err_set(e, CRETO_EUSAGE,
			     "no PIN for the token: add pin-source=file:PATH to the URI or use --pin-file");
}

static void wipe_free(char *p, size_t n)
{
	if (p == NULL)
		return;
	OPENSSL_cleanse(p, n);
	free(p);
}

/* ---- tokens ---- */

/* Copy a blank-padded PKCS#11 text field into a C string. */
static void field_str(char *out, const unsigned char *f, size_t n)
{
	while (n > 0 && (f[n - 1] == ' ' || f[n - 1] == '\0'))
		n--;
	memcpy(out, f, n);
	out[n] = '\0';
}

static int field_eq(const unsigned char *f, size_t n, const char *want)
{
	char s[65];
	if (n >= sizeof(s))
		n = sizeof(s) - 1;
	field_str(s, f, n);
	return strcmp(s, want) == 0;
}

static int module_matches(struct p11_module *m, const creto_p11_uri *u)
{
	if (u == NULL || (u->library_manufacturer == NULL && u->library_description == NULL &&
			  u->library_version == NULL))
		return 1;
	struct ck_info info;
	if (m->f->C_GetInfo(&info) != CKR_OK)
		return 0;
	if (u->library_manufacturer != NULL &&
	    !field_eq(info.manufacturer_id, sizeof(info.manufacturer_id), u->library_manufacturer))
		return 0;
	if (u->library_description != NULL &&
	    !field_eq(info.library_description, sizeof(info.library_description),
		      u->library_description))
		return 0;
	if (u->library_version != NULL) {
		unsigned long maj = strtoul(u->library_version, NULL, 10), min = 0;
		const char *dot = strchr(u->library_version, '.');
		if (dot != NULL)
			min = strtoul(dot + 1, NULL, 10);
		if (info.library_version.major != maj || info.library_version.minor != min)
			return 0;
	}
	return 1;
}

static int slot_matches(struct p11_module *m, ck_slot_id_t slot, const struct ck_token_info *ti,
			const creto_p11_uri *u)
{
	if (u == NULL)
		return 1;
	if (u->token != NULL && !field_eq(ti->label, sizeof(ti->label), u->token))
		return 0;
	if (u->manufacturer != NULL &&
	    !field_eq(ti->manufacturer_id, sizeof(ti->manufacturer_id), u->manufacturer))
		return 0;
	if (u->model != NULL && !field_eq(ti->model, sizeof(ti->model), u->model))
		return 0;
	if (u->serial != NULL &&
	    !field_eq(ti->serial_number, sizeof(ti->serial_number), u->serial))
		return 0;
	if (u->has_slot_id && slot != u->slot_id)
		return 0;
	if (u->slot_description != NULL || u->slot_manufacturer != NULL) {
		struct ck_slot_info si;
		if (m->f->C_GetSlotInfo(slot, &si) != CKR_OK)
			return 0;
		if (u->slot_description != NULL &&
		    !field_eq(si.slot_description, sizeof(si.slot_description), u->slot_description))
			return 0;
		if (u->slot_manufacturer != NULL &&
		    !field_eq(si.manufacturer_id, sizeof(si.manufacturer_id), u->slot_manufacturer))
			return 0;
	}
	return 1;
}

static int get_slots(struct p11_module *m, ck_slot_id_t **slots, unsigned long *n, creto_err *e)
{
	*slots = NULL;
	*n = 0;
	for (int tries = 0; tries < 4; tries++) {
		unsigned long cnt = 0;
		ck_rv_t rv = m->f->C_GetSlotList(1, NULL, &cnt);
		if (rv != CKR_OK)
			return p11_fail(e, rv, "C_GetSlotList", NULL);
		ck_slot_id_t *s = calloc(cnt ? cnt : 1, sizeof(*s));
		if (s == NULL)
			return creto_err_set(e, CRETO_EOP, "out of memory");
		rv = m->f->C_GetSlotList(1, s, &cnt);
		if (rv == CKR_BUFFER_TOO_SMALL) {
			free(s);
			continue;
		}
		if (rv != CKR_OK) {
			free(s);
			return p11_fail(e, rv, "C_GetSlotList", NULL);
		}
		*slots = s;
		*n = cnt;
		return CRETO_OK;
	}
	return creto_err_set(e, CRETO_EOP, "C_GetSlotList: slot list keeps changing");
}

/* Find the one initialised token matching u. */
static int find_token(creto_hsm *h, const creto_p11_uri *u, creto_err *e)
{
	struct p11_module *m = h->mod;
	if (!module_matches(m, u))
		return creto_err_set(e, CRETO_EOP,
				     "PKCS#11 module '%s' does not match the URI's library attributes",
				     m->path);
	ck_slot_id_t *slots = NULL;
	unsigned long n = 0;
	int rc = get_slots(m, &slots, &n, e);
	if (rc != CRETO_OK)
		return rc;
	int found = 0;
	for (unsigned long i = 0; i < n; i++) {
		struct ck_token_info ti;
		if (m->f->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
			continue;
		if (!(ti.flags & CKF_TOKEN_INITIALIZED))
			continue;
		if (!slot_matches(m, slots[i], &ti, u))
			continue;
		if (found++ == 0) {
			h->slot = slots[i];
			field_str(h->label, ti.label, sizeof(ti.label));
			unsigned long mx = ti.max_session_count;
			h->max = CRETO_HSM_POOL_MAX;
			if (mx != 0 && mx != (unsigned long)-1 && mx < h->max)
				h->max = mx;
		}
	}
	free(slots);
	if (found == 1)
		return CRETO_OK;
	h->label[0] = '\0';
	if (found == 0) {
		if (u != NULL && u->token != NULL)
			return creto_err_set(e, CRETO_EOP, "token '%s' not found in module %s", u->token,
					     m->path);
		return creto_err_set(e, CRETO_EOP, "no matching initialised token in module %s",
				     m->path);
	}
	if (u != NULL && u->token != NULL)
		return creto_err_set(e, CRETO_EUSAGE,
				     "%d tokens labelled '%s' in module %s: add serial= to the URI", found,
				     u->token, m->path);
	return creto_err_set(e, CRETO_EUSAGE, "%d tokens in module %s: name one with token=", found,
			     m->path);
}

static int module_path_for(const creto_p11_uri *u, const creto_hsm_opts *opts, char *buf,
			   size_t cap, creto_err *e)
{
	if (u != NULL && u->module_path != NULL) {
		snprintf(buf, cap, "%s", u->module_path);
		return CRETO_OK;
	}
	if (opts != NULL && opts->module_path != NULL) {
		snprintf(buf, cap, "%s", opts->module_path);
		return CRETO_OK;
	}
	if (u != NULL && u->module_name != NULL)
		return resolve_module_name(u->module_name, buf, cap, e);
	snprintf(buf, cap, "%s", CRETO_HSM_DEFAULT_MODULE);
	return CRETO_OK;
}

static int login(creto_hsm *h, ck_session_handle_t s, creto_err *e)
{
	ck_rv_t rv = h->mod->f->C_Login(s, CKU_USER, (unsigned char *)h->pin, h->pinlen);
	if (rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN)
		return CRETO_OK;
	/* A failed login is a security event (a wrong PIN may be someone
	 * guessing): report it to the caller's sink, never to the audit log
	 * directly (hsm sits below it).  The login fails either way, so the
	 * sink's own status changes nothing here. */
	char buf[32];
	const creto_event_field fields[] = {
		{"function", "C_Login", 0},
		{"module", h->mod->path, 0},
	};
	const creto_event ev = {
		.component = "hsm",
		.event = "login",
		.outcome = "failed",
		.subject = h->label,
		.reason = creto_ckr_name(rv, buf),
		.fields = fields,
		.nfields = sizeof(fields) / sizeof(fields[0]),
	};
	(void)creto_event_emit(&h->events, &ev);
	return p11_fail(e, rv, "C_Login", h);
}

static int open_session(creto_hsm *h, ck_session_handle_t *s, creto_err *e)
{
	ck_flags_t fl = CKF_SERIAL_SESSION | ((h->flags & CRETO_HSM_RW) ? CKF_RW_SESSION : 0);
	ck_rv_t rv = h->mod->f->C_OpenSession(h->slot, fl, NULL, NULL, s);
	if (rv != CKR_OK)
		return p11_fail(e, rv, "C_OpenSession", h);
	return CRETO_OK;
}

int creto_hsm_open(const creto_p11_uri *u, const creto_hsm_opts *opts, unsigned flags,
		   creto_hsm **out, creto_err *e)
{
	*out = NULL;
	/* RFC 7512 allows a PIN in the URI, but a URI travels in argv, shell
	 * history and configuration text: PINs come only from files. */
	if (u != NULL && u->pin_value != NULL)
		return creto_err_set(e, CRETO_EUSAGE,
				     "pkcs11 URI: pin-value is refused (a PIN must not appear in a URI or argv): use pin-source=file:PATH or --pin-file");
	char path[4096];
	int rc = module_path_for(u, opts, path, sizeof(path), e);
	if (rc != CRETO_OK)
		return rc;
	creto_hsm *h = calloc(1, sizeof(*h));
	if (h == NULL)
		return creto_err_set(e, CRETO_EOP, "out of memory");
	h->flags = flags;
	if (opts != NULL && opts->events != NULL)
		h->events = *opts->events;
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->cv, NULL);
	if (flags & CRETO_HSM_LOGIN) {
		rc = get_pin(u, opts, &h->pin, &h->pinlen, e);
		if (rc != CRETO_OK)
			goto fail;
	}
	rc = module_acquire(path, &h->mod, e);
	if (rc != CRETO_OK)
		goto fail;
	h->gen = h->mod->gen;
	rc = find_token(h, u, e);
	if (rc != CRETO_OK)
		goto fail;
	ck_session_handle_t s;
	rc = open_session(h, &s, e);
	if (rc != CRETO_OK)
		goto fail;
	h->nopen = 1;
	if (flags & CRETO_HSM_LOGIN) {
		rc = login(h, s, e);
		if (rc != CRETO_OK) {
			(void)h->mod->f->C_CloseSession(s);
			h->nopen = 0;
			goto fail;
		}
	}
	h->idle[h->nidle++] = s;
	*out = h;
	return CRETO_OK;
fail:
	creto_hsm_close(h);
	return rc;
}

int creto_hsm_open_uri(const char *uri, const creto_hsm_opts *opts, unsigned flags,
		       creto_hsm **out, creto_p11_uri **parsed, creto_err *e)
{
	*out = NULL;
	if (parsed != NULL)
		*parsed = NULL;
	creto_p11_uri *u = NULL;
	int rc = creto_p11_uri_parse(uri, &u, e);
	if (rc != CRETO_OK)
		return rc;
	rc = creto_hsm_open(u, opts, flags, out, e);
	if (rc != CRETO_OK || parsed == NULL)
		creto_p11_uri_free(u);
	else
		*parsed = u;
	return rc;
}

void creto_hsm_close(creto_hsm *h)
{
	if (h == NULL)
		return;
	if (h->mod != NULL && h->mod->pid == getpid() && h->gen == h->mod->gen)
		for (size_t i = 0; i < h->nidle; i++)
			(void)h->mod->f->C_CloseSession(h->idle[i]);
	module_release(h->mod);
	wipe_free(h->pin, h->pinlen);
	pthread_mutex_destroy(&h->mu);
	pthread_cond_destroy(&h->cv);
	free(h);
}

const char *creto_hsm_token_label(const creto_hsm *h)
{
	return h->label;
}

const char *creto_hsm_module_path(const creto_hsm *h)
{
	return h->mod->path;
}

unsigned p11_gen(creto_hsm *h)
{
	return __atomic_load_n(&h->epoch, __ATOMIC_ACQUIRE);
}

/* After fork: the inherited sessions are gone; log in again. */
static int reopen_after_fork(creto_hsm *h, creto_err *e)
{
	h->nidle = 0;
	h->nopen = 0;
	h->gen = h->mod->gen;
	__atomic_add_fetch(&h->epoch, 1, __ATOMIC_RELEASE);
	ck_session_handle_t s;
	int rc = open_session(h, &s, e);
	if (rc != CRETO_OK)
		return rc;
	if (h->flags & CRETO_HSM_LOGIN) {
		rc = login(h, s, e);
		if (rc != CRETO_OK) {
			(void)h->mod->f->C_CloseSession(s);
			return rc;
		}
	}
	h->idle[h->nidle++] = s;
	h->nopen = 1;
	return CRETO_OK;
}

int p11_session_get(creto_hsm *h, ck_session_handle_t *s, creto_err *e)
{
	int rc = module_check_fork(h->mod, e);
	if (rc != CRETO_OK)
		return rc;
	pthread_mutex_lock(&h->mu);
	if (h->gen != h->mod->gen) {
		rc = reopen_after_fork(h, e);
		if (rc != CRETO_OK)
			goto out;
	}
	while (h->nidle == 0 && h->nopen >= h->max)
		pthread_cond_wait(&h->cv, &h->mu);
	if (h->nidle > 0) {
		*s = h->idle[--h->nidle];
		goto out;
	}
	h->nopen++;
	pthread_mutex_unlock(&h->mu);
	rc = open_session(h, s, e);
	/* A fresh session shares the token's login, unless every session
	 * died meanwhile: logging in again is harmless either way. */
	if (rc == CRETO_OK && (h->flags & CRETO_HSM_LOGIN)) {
		rc = login(h, *s, e);
		if (rc != CRETO_OK)
			(void)h->mod->f->C_CloseSession(*s);
	}
	pthread_mutex_lock(&h->mu);
	if (rc != CRETO_OK) {
		h->nopen--;
		pthread_cond_signal(&h->cv);
	}
out:
	pthread_mutex_unlock(&h->mu);
	return rc;
}

void p11_session_put(creto_hsm *h, ck_session_handle_t s, ck_rv_t last_rv)
{
	/* A session whose last call failed may hold a half-finished
	 * operation (a module that does not end it on error): close it rather
	 * than lend it again.  Attributes that are absent or sensitive are
	 * not failures of the session. */
	int dead = last_rv == CKR_SESSION_HANDLE_INVALID || last_rv == CKR_SESSION_CLOSED ||
		   last_rv == CKR_DEVICE_REMOVED || last_rv == CKR_TOKEN_NOT_PRESENT ||
		   last_rv == CKR_CRYPTOKI_NOT_INITIALIZED;
	int drop = last_rv != CKR_OK && last_rv != CKR_ATTRIBUTE_TYPE_INVALID &&
		   last_rv != CKR_ATTRIBUTE_SENSITIVE;
	pthread_mutex_lock(&h->mu);
	if (drop || h->nidle >= CRETO_HSM_POOL_MAX) {
		if (h->nopen > 0)
			h->nopen--;
		if (!dead)
			(void)h->mod->f->C_CloseSession(s);
		/* With no session left the user is logged out, and a module may
		 * invalidate the handles of private objects (SoftHSM2 does). */
		if (h->nopen == 0)
			__atomic_add_fetch(&h->epoch, 1, __ATOMIC_RELEASE);
	} else {
		h->idle[h->nidle++] = s;
	}
	pthread_cond_signal(&h->cv);
	pthread_mutex_unlock(&h->mu);
}

int p11_handle_reconnect(creto_hsm *h, creto_err *e)
{
	int rc = p11_module_reinit(h->mod, e);
	if (rc != CRETO_OK)
		return rc;
	struct ck_token_info ti;
	ck_rv_t rv = h->mod->f->C_GetTokenInfo(h->slot, &ti);
	if (rv != CKR_OK)
		return p11_fail(e, rv, "C_GetTokenInfo", h);
	if (!field_eq(ti.label, sizeof(ti.label), h->label)) {
		tl_last_rv = CKR_TOKEN_NOT_PRESENT;
		return creto_err_set(e, CRETO_EOP, "slot %lu of module %s no longer holds token '%s'",
				     h->slot, h->mod->path, h->label);
	}
	ck_session_handle_t s;
	rc = p11_session_get(h, &s, e);
	if (rc == CRETO_OK)
		p11_session_put(h, s, CKR_OK);
	return rc;
}

/* ---- token initialisation ---- */

int creto_hsm_init_token(const char *module_path, const char *label, const char *so_pin_file,
			 const char *user_pin_file, creto_err *e)
{
	size_t ll = strlen(label);
	if (ll == 0 || ll > CRETO_HSM_TOKEN_LABEL_MAX)
		return creto_err_set(e, CRETO_EUSAGE, "token label must have 1 to %d bytes",
				     CRETO_HSM_TOKEN_LABEL_MAX);
	char so[P11_PIN_BUF], user[P11_PIN_BUF];
	size_t solen = 0, userlen = 0;
	struct p11_module *m = NULL;
	ck_slot_id_t *slots = NULL;
	unsigned long n = 0;
	ck_session_handle_t s = 0;
	int have_session = 0;
	creto_hsm fake; /* for error messages only */
	memset(&fake, 0, sizeof(fake));
	snprintf(fake.label, sizeof(fake.label), "%s", label);
	memset(user, 0, sizeof(user));
	int rc = p11_pin_read(so_pin_file, so, &solen, e);
	if (rc != CRETO_OK) {
		creto_err_ctx(e, "SO");
		goto out;
	}
	rc = p11_pin_read(user_pin_file, user, &userlen, e);
	if (rc != CRETO_OK)
		goto out;
	rc = module_acquire(module_path ? module_path : CRETO_HSM_DEFAULT_MODULE, &m, e);
	if (rc != CRETO_OK)
		goto out;
	rc = get_slots(m, &slots, &n, e);
	if (rc != CRETO_OK)
		goto out;
	int have_free = 0;
	ck_slot_id_t free_slot = 0;
	for (unsigned long i = 0; i < n; i++) {
		struct ck_token_info ti;
		if (m->f->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
			continue;
		if (ti.flags & CKF_TOKEN_INITIALIZED) {
			if (field_eq(ti.label, sizeof(ti.label), label)) {
				rc = creto_err_set(e, CRETO_EUSAGE, "token '%s' already exists in module %s",
						   label, m->path);
				goto out;
			}
		} else if (!have_free) {
			have_free = 1;
			free_slot = slots[i];
		}
	}
	if (!have_free) {
		rc = creto_err_set(e, CRETO_EOP, "module %s has no slot with an uninitialised token",
				   m->path);
		goto out;
	}
	unsigned char padded[32];
	memset(padded, ' ', sizeof(padded));
	memcpy(padded, label, ll);
	ck_rv_t rv = m->f->C_InitToken(free_slot, (unsigned char *)so, solen, padded);
	if (rv != CKR_OK) {
		rc = p11_fail(e, rv, "C_InitToken", &fake);
		goto out;
	}
	/* The slot id may change on initialisation (SoftHSM2): find it again. */
	creto_p11_uri want;
	memset(&want, 0, sizeof(want));
	want.token = (char *)label;
	creto_hsm tmp;
	memset(&tmp, 0, sizeof(tmp));
	tmp.mod = m;
	rc = find_token(&tmp, &want, e);
	if (rc != CRETO_OK)
		goto out;
	rv = m->f->C_OpenSession(tmp.slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s);
	if (rv != CKR_OK) {
		rc = p11_fail(e, rv, "C_OpenSession", &fake);
		goto out;
	}
	have_session = 1;
	rv = m->f->C_Login(s, CKU_SO, (unsigned char *)so, solen);
	if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
		rc = p11_fail(e, rv, "C_Login (SO)", &fake);
		goto out;
	}
	rv = m->f->C_InitPIN(s, (unsigned char *)user, userlen);
	if (rv != CKR_OK) {
		rc = p11_fail(e, rv, "C_InitPIN", &fake);
		goto out;
	}
	(void)m->f->C_Logout(s);
out:
	if (have_session)
		(void)m->f->C_CloseSession(s);
	free(slots);
	module_release(m);
	OPENSSL_cleanse(so, sizeof(so));
	OPENSSL_cleanse(user, sizeof(user));
	return rc;
}
