/*
 * failover.c - one signing key reached through one or more HSM endpoints
 * (the same token replicated on two hosts, docs/hsm-remote.md).
 *
 * PKCS#11 calls cannot be cancelled, and p11-kit's remoting has no timeout:
 * a stopped server blocks its caller forever.  So every call on an endpoint
 * runs on that endpoint's own worker thread, and the caller waits for it at
 * most the deadline.  A late call is abandoned (the job is reference
 * counted: the worker frees it when it finally returns), the endpoint is
 * marked down and the operation goes once to another endpoint.  The worker
 * of a down endpoint probes it (reconnect, log in) until it answers, then
 * marks it up; the active endpoint does not move back by itself.
 *
 * Opening leaves no thread behind (creto_hsm_ha_open_keys), so a daemon can
 * open its keys, then apply a sandbox that refuses to start while other
 * threads run (src/serve/sandbox.c: Landlock binds only the calling thread
 * and the threads it creates later), then start the workers
 * (creto_hsm_ha_start).  Until then each call runs on a short-lived thread
 * of its own ("one-shot"), joined before the caller goes on.  A one-shot
 * call that misses the deadline is unblocked the only way a p11-kit call
 * can be: the sockets the call opened (the file descriptors that did not
 * exist when it started) are shut down, so the module's read returns and
 * the call fails with CKR_DEVICE_ERROR; then the thread is joined.  That is
 * done only while the one-shot thread and its caller are the only threads
 * of the process (a daemon before its sandbox, a command): with other
 * threads running, a new descriptor may be theirs, and a late one-shot is
 * abandoned like a late worker call (it cleans up after itself and, when
 * the workers were started meanwhile, starts its endpoint's worker).
 *
 * Several keys of one token can share the group (creto_hsm_ha_open_keys):
 * one connection, one worker and one state per endpoint for all of them.
 * Two groups on one endpoint would share its module (p11.c loads a module
 * once per process) and could not reconnect it (p11_module_reinit leaves a
 * shared module alone).
 *
 * All PKCS#11 state of an endpoint (its creto_hsm and creto_hsm_keys) is
 * touched only by the one thread running for it (its one-shot or its
 * worker, never both); the group's mutex guards the queues, the states and
 * the statistics.  Events go to the caller's sink outside the mutex.
 */
#include "p11.h"
#include "util/file.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/crypto.h>

enum ep_state { EP_DOWN = 0, EP_UP, EP_REFUSED };

#define JOB_SIG_MAX 128 /* an ECDSA P-384 or Ed25519 signature fits */

enum job_kind { JOB_OPEN, JOB_SIGN };

struct job {
	int refs; /* the caller's and the worker's */
	int kind, done;
	size_t key;   /* JOB_SIGN: which of the group's keys */
	uint8_t *msg; /* a copy: the caller may be gone when the worker runs */
	size_t msglen;
	uint8_t sig[JOB_SIG_MAX];
	size_t siglen;
	int rc;
	ck_rv_t rv;
	creto_err err;
	struct job *next;
};

struct ep {
	struct creto_hsm_ha *g;
	creto_hsm_endpoint spec;
	char name[600];
	pthread_t th;
	pthread_cond_t cv; /* wakes the worker */
	/* under g->mu */
	int state, busy, exited, started;
	int oneshot;       /* a one-shot thread runs for this endpoint */
	int os_abandoned;  /* ... and its caller gave up waiting for it */
	struct job *os_job;
	pthread_t os_th;
	struct job *head, *tail;
	struct timespec next_probe;
	uint64_t downs;
	char reason[64];
	/* the one thread running for the endpoint only */
	creto_hsm *h;
	creto_hsm_key *k[CRETO_HSM_HA_KEYS_MAX];
};

/* One key of the group, the same on every endpoint. */
struct ha_key {
	creto_p11_uri *u;
	uint8_t pub[128];
	size_t publen;
	creto_alg alg;
	char key_id[CRETO_KEYID_HEXLEN + 1];
};

struct creto_hsm_ha {
	pthread_mutex_t mu;
	pthread_cond_t done_cv; /* a job finished, or a worker exited */
	int refs;               /* the owner's and one per running worker or one-shot */
	int stop, started;
	struct ha_key key[CRETO_HSM_HA_KEYS_MAX];
	size_t nkeys;
	creto_hsm_opts opts;
	char *pin_file;
	creto_event_sink events;
	unsigned deadline_ms, probe_ms;
	struct ep ep[CRETO_HSM_ENDPOINTS_MAX];
	size_t n, active;
	char label[CRETO_HSM_TOKEN_LABEL_MAX + 1];
	creto_hsm_ha_stats st;
};

/* ---- endpoints ---- */

int creto_hsm_endpoint_parse(const char *spec, creto_hsm_endpoint *out, creto_err *e)
{
	memset(out, 0, sizeof(*out));
	const char *comma = strchr(spec, ',');
	size_t ml = comma ? (size_t)(comma - spec) : strlen(spec);
	if (ml == 0 || ml >= sizeof(out->module))
		return creto_err_set(e, CRETO_EUSAGE, "HSM endpoint '%s': name a module", spec);
	memcpy(out->module, spec, ml);
	if (out->module[0] != '/' &&
	    !(strncmp(out->module, P11_KIT_PREFIX, strlen(P11_KIT_PREFIX)) == 0 &&
	      ml > strlen(P11_KIT_PREFIX)))
		return creto_err_set(e, CRETO_EUSAGE,
				     "HSM endpoint '%s': the module must be an absolute path or p11-kit:NAME",
				     spec);
	int seen_slot = 0, seen_serial = 0;
	while (comma != NULL) {
		const char *opt = comma + 1;
		comma = strchr(opt, ',');
		size_t ol = comma ? (size_t)(comma - opt) : strlen(opt);
		char buf[64];
		if (ol == 0 || ol >= sizeof(buf))
			return creto_err_set(e, CRETO_EUSAGE, "HSM endpoint '%s': empty or long option", spec);
		memcpy(buf, opt, ol);
		buf[ol] = '\0';
		if (strncmp(buf, "slot-id=", 8) == 0 && !seen_slot) {
			char *end = NULL;
			errno = 0;
			unsigned long v = strtoul(buf + 8, &end, 0);
			if (buf[8] == '\0' || buf[8] == '-' || *end != '\0' || errno != 0)
				return creto_err_set(e, CRETO_EUSAGE, "HSM endpoint '%s': bad slot-id '%s'",
						     spec, buf + 8);
			out->slot_id = v;
			out->has_slot_id = seen_slot = 1;
		} else if (strncmp(buf, "serial=", 7) == 0 && !seen_serial) {
			size_t sl = strlen(buf + 7);
			if (sl == 0 || sl >= sizeof(out->serial))
				return creto_err_set(e, CRETO_EUSAGE,
						     "HSM endpoint '%s': serial must have 1 to 16 characters",
						     spec);
			memcpy(out->serial, buf + 7, sl + 1);
			seen_serial = 1;
		} else {
			return creto_err_set(e, CRETO_EUSAGE,
					     "HSM endpoint '%s': unknown or repeated option '%s' (slot-id=N, serial=S)",
					     spec, buf);
		}
	}
	return CRETO_OK;
}

void creto_hsm_endpoint_format(const creto_hsm_endpoint *ep, char *out, size_t cap)
{
	size_t n = (size_t)snprintf(out, cap, "%s", ep->module);
	if (ep->has_slot_id && n < cap)
		n += (size_t)snprintf(out + n, cap - n, ",slot-id=%lu", ep->slot_id);
	if (ep->serial[0] != '\0' && n < cap)
		(void)snprintf(out + n, cap - n, ",serial=%s", ep->serial);
}

/* ---- helpers ---- */

static void now_plus(struct timespec *ts, unsigned ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static int ts_due(const struct timespec *t)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > t->tv_sec || (now.tv_sec == t->tv_sec && now.tv_nsec >= t->tv_nsec);
}

/* A failure that says the endpoint (module, connection, token) is gone,
 * not that the request was refused. */
static int rv_dead(ck_rv_t rv)
{
	switch (rv) {
	case CKR_DEVICE_ERROR:
	case CKR_DEVICE_REMOVED:
	case CKR_DEVICE_MEMORY:
	case CKR_TOKEN_NOT_PRESENT:
	case CKR_TOKEN_NOT_RECOGNIZED:
	case CKR_SESSION_HANDLE_INVALID:
	case CKR_SESSION_CLOSED:
	case CKR_CRYPTOKI_NOT_INITIALIZED:
	case CKR_SLOT_ID_INVALID:
	case CKR_GENERAL_ERROR:
		return 1;
	default:
		return 0;
	}
}

struct ev_out {
	const char *event, *outcome, *reason, *endpoint, *from, *to;
};

static void emit(creto_hsm_ha *g, const struct ev_out *o)
{
	creto_event_field f[3];
	size_t nf = 0;
	if (o->endpoint != NULL)
		f[nf++] = (creto_event_field){"endpoint", o->endpoint, 0};
	if (o->from != NULL)
		f[nf++] = (creto_event_field){"from", o->from, 0};
	if (o->to != NULL)
		f[nf++] = (creto_event_field){"to", o->to, 0};
	const creto_event ev = {
		.component = "hsm",
		.event = o->event,
		.outcome = o->outcome,
		.subject = g->label[0] ? g->label : NULL,
		.reason = o->reason,
		.fields = f,
		.nfields = nf,
	};
	(void)creto_event_emit(&g->events, &ev);
}

static void job_unref_locked(struct job *j)
{
	if (--j->refs > 0)
		return;
	if (j->msg != NULL) {
		OPENSSL_cleanse(j->msg, j->msglen);
		free(j->msg);
	}
	OPENSSL_cleanse(j->sig, sizeof(j->sig));
	free(j);
}

static void ha_unref_locked(creto_hsm_ha *g); /* unlocks */

/* A failure to open an endpoint that probing again cannot mend: a
 * configuration or a refusal (missing key or mechanism, wrong or locked
 * PIN).  Anything else (no token behind a p11-kit client whose server is
 * gone, a broken connection) is an endpoint to probe again. */
static int open_refused(int rc, ck_rv_t rv)
{
	if (rv_dead(rv))
		return 0;
	return rc == CRETO_EUSAGE || rc == CRETO_EREJECT || rv == CKR_PIN_INCORRECT ||
	       rv == CKR_PIN_LOCKED || rv == CKR_PIN_EXPIRED || rv == CKR_PIN_INVALID;
}

/* ---- the one thread of an endpoint: every PKCS#11 call of it ---- */

/* Key i's URI on endpoint p: the first key's token attributes with p's
 * serial and slot, key i's object, id and type. */
static void key_uri(const creto_hsm_ha *g, const struct ep *p, size_t i, creto_p11_uri *u)
{
	*u = *g->key[0].u; /* shallow: only the endpoint's and the key's parts differ */
	u->module_path = NULL;
	u->module_name = NULL;
	if (p->spec.serial[0] != '\0')
		u->serial = (char *)p->spec.serial;
	if (p->spec.has_slot_id) {
		u->has_slot_id = 1;
		u->slot_id = p->spec.slot_id;
	}
	const creto_p11_uri *k = g->key[i].u;
	u->object = k->object;
	u->id = k->id;
	u->idlen = k->idlen;
	u->has_id = k->has_id;
	u->type = k->type;
}

static void ep_close_keys(struct ep *p)
{
	for (size_t i = 0; i < CRETO_HSM_HA_KEYS_MAX; i++) {
		creto_hsm_key_free(p->k[i]);
		p->k[i] = NULL;
	}
	creto_hsm_close(p->h);
	p->h = NULL;
}

/* Open (or reconnect) the endpoint and find the keys; each must be the
 * group's.  On failure *refused says a retry cannot help (wrong PIN, key
 * missing or different, mechanism missing). */
static int ep_open(struct ep *p, int *refused, creto_err *e)
{
	creto_hsm_ha *g = p->g;
	*refused = 0;
	p11_last_rv_reset();
	if (p->h != NULL) {
		int rc = p11_handle_reconnect(p->h, e);
		for (size_t i = 0; i < g->nkeys && rc == CRETO_OK; i++) {
			uint8_t raw[128];
			size_t len = 0;
			creto_alg alg = CRETO_ALG_NONE;
			creto_p11_uri u;
			key_uri(g, p, i, &u);
			u.type = CRETO_P11_TYPE_PRIVATE;
			rc = creto_hsm_pub_raw(p->h, &u, &alg, raw, sizeof(raw), &len, e);
			if (rc != CRETO_OK)
				break;
			pthread_mutex_lock(&g->mu);
			const struct ha_key *gk = &g->key[i];
			int same = gk->publen == len && gk->alg == alg && memcmp(gk->pub, raw, len) == 0;
			pthread_mutex_unlock(&g->mu);
			if (!same)
				rc = creto_err_set(e, CRETO_EUSAGE,
						   "token '%s': the key changed while the endpoint was down",
						   creto_hsm_token_label(p->h));
		}
		*refused = rc != CRETO_OK && open_refused(rc, p11_last_rv());
		return rc;
	}
	creto_p11_uri u;
	key_uri(g, p, 0, &u);
	creto_hsm_opts o = g->opts;
	o.module_path = p->spec.module;
	o.endpoints = NULL;
	o.nendpoints = 0;
	creto_hsm *h = NULL;
	creto_hsm_key *k[CRETO_HSM_HA_KEYS_MAX] = {NULL};
	int rc = creto_hsm_open(&u, &o, CRETO_HSM_LOGIN, &h, e);
	for (size_t i = 0; i < g->nkeys && rc == CRETO_OK; i++) {
		uint8_t raw[128];
		size_t len = 0;
		creto_alg alg = CRETO_ALG_NONE;
		key_uri(g, p, i, &u);
		rc = creto_hsm_key_find(h, &u, CRETO_P11_TYPE_PRIVATE, &k[i], e);
		if (rc == CRETO_OK)
			rc = creto_hsm_key_check(h, k[i], e);
		if (rc == CRETO_OK)
			rc = creto_hsm_pub_raw(h, &u, &alg, raw, sizeof(raw), &len, e);
		if (rc != CRETO_OK) {
			*refused = open_refused(rc, p11_last_rv());
			break;
		}
		pthread_mutex_lock(&g->mu);
		struct ha_key *gk = &g->key[i];
		if (gk->publen == 0) {
			memcpy(gk->pub, raw, len);
			gk->publen = len;
			gk->alg = alg;
			snprintf(g->label, sizeof(g->label), "%s", creto_hsm_token_label(h));
		} else if (gk->publen != len || gk->alg != alg || memcmp(gk->pub, raw, len) != 0) {
			rc = creto_err_set(e, CRETO_EUSAGE,
					   "token '%s': key '%s' differs from the one on the first endpoint (replicate the token again and check with `creto hsm compare`)",
					   creto_hsm_token_label(h), creto_hsm_key_label(k[i]));
			*refused = 1;
		}
		pthread_mutex_unlock(&g->mu);
	}
	if (rc != CRETO_OK) {
		if (!*refused)
			*refused = open_refused(rc, p11_last_rv());
		for (size_t i = 0; i < g->nkeys; i++)
			creto_hsm_key_free(k[i]);
		creto_hsm_close(h);
		return rc;
	}
	p->h = h;
	memcpy(p->k, k, sizeof(p->k));
	return CRETO_OK;
}

static void run_job(struct ep *p, struct job *j)
{
	p11_last_rv_reset();
	creto_err_clear(&j->err);
	if (j->kind == JOB_OPEN) {
		int refused = 0;
		j->rc = ep_open(p, &refused, &j->err);
		/* The caller tells refusals by rv: a refusal carries a live
		 * CKR_ (or none), a dead endpoint a dead one. */
		j->rv = j->rc == CRETO_OK ? CKR_OK : refused ? CKR_FUNCTION_REJECTED : CKR_DEVICE_REMOVED;
		return;
	}
	if (j->key >= CRETO_HSM_HA_KEYS_MAX || p->k[j->key] == NULL) {
		j->rc = creto_err_set(&j->err, CRETO_EOP, "HSM endpoint %s is not connected", p->name);
		j->rv = CKR_DEVICE_REMOVED;
		return;
	}
	j->rc = creto_hsm_key_sign(p->k[j->key], j->msg, j->msglen, j->sig, sizeof(j->sig),
				   &j->siglen, &j->err);
	j->rv = j->rc == CRETO_OK ? CKR_OK : p11_last_rv();
}
/* p11-kit-client writes to its socket without MSG_NOSIGNAL: a write to a
 * server that died raises SIGPIPE in the writing thread.  Blocked here, it
 * stays pending on this thread and the write fails with EPIPE, which the
 * client reports as CKR_DEVICE_ERROR; drain it after each call. */
static void drain_sigpipe(void)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	struct timespec zero = {0, 0};
	while (sigtimedwait(&set, NULL, &zero) == SIGPIPE) {
	}
}

/* SIGPIPE blocked in a thread that calls an endpoint (see drain_sigpipe). */
static void block_sigpipe(void)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
}

static void *worker(void *arg)
{
	struct ep *p = arg;
	creto_hsm_ha *g = p->g;
	block_sigpipe();
	pthread_mutex_lock(&g->mu);
	while (!g->stop) {
		struct job *j = p->head;
		if (j != NULL) {
			p->head = j->next;
			if (p->head == NULL)
				p->tail = NULL;
			p->busy = 1;
			pthread_mutex_unlock(&g->mu);
			run_job(p, j);
			drain_sigpipe();
			pthread_mutex_lock(&g->mu);
			p->busy = 0;
			j->done = 1;
			pthread_cond_broadcast(&g->done_cv);
			job_unref_locked(j);
			continue;
		}
		if (p->state == EP_DOWN && ts_due(&p->next_probe)) {
			p->busy = 1;
			pthread_mutex_unlock(&g->mu);
			creto_err pe;
			creto_err_clear(&pe);
			int refused = 0;
			int rc = ep_open(p, &refused, &pe);
			drain_sigpipe();
			pthread_mutex_lock(&g->mu);
			p->busy = 0;
			if (g->stop)
				break;
			if (rc == CRETO_OK && p->state == EP_DOWN) {
				p->state = EP_UP;
				pthread_mutex_unlock(&g->mu);
				emit(g, &(struct ev_out){"endpoint-up", "ok", NULL, p->name, NULL, NULL});
				pthread_mutex_lock(&g->mu);
			} else if (rc != CRETO_OK && refused) {
				/* Probing again could lock the PIN or keep hitting a
				 * different key: an operator has to act. */
				p->state = EP_REFUSED;
				snprintf(p->reason, sizeof(p->reason), "refused");
				pthread_mutex_unlock(&g->mu);
				emit(g, &(struct ev_out){"endpoint-down", "refused", pe.msg, p->name, NULL, NULL});
				pthread_mutex_lock(&g->mu);
			} else {
				now_plus(&p->next_probe, g->probe_ms);
			}
			continue;
		}
		if (p->state == EP_DOWN) {
			struct timespec t = p->next_probe;
			pthread_cond_timedwait(&p->cv, &g->mu, &t);
		} else {
			pthread_cond_wait(&p->cv, &g->mu);
		}
	}
	/* Stopping: fail what is queued, close the token, leave. */
	while (p->head != NULL) {
		struct job *j = p->head;
		p->head = j->next;
		j->rc = creto_err_set(&j->err, CRETO_EOP, "HSM endpoint %s: closing", p->name);
		j->rv = CKR_DEVICE_REMOVED;
		j->done = 1;
		job_unref_locked(j);
	}
	p->tail = NULL;
	pthread_mutex_unlock(&g->mu);
	ep_close_keys(p);
	drain_sigpipe();
	pthread_mutex_lock(&g->mu);
	p->exited = 1;
	pthread_cond_broadcast(&g->done_cv);
	ha_unref_locked(g);
	return NULL;
}

/* ---- the group ---- */

static void ha_free(creto_hsm_ha *g)
{
	for (size_t i = 0; i < g->n; i++)
		pthread_cond_destroy(&g->ep[i].cv);
	for (size_t i = 0; i < g->nkeys; i++)
		creto_p11_uri_free(g->key[i].u);
	free(g->pin_file);
	pthread_cond_destroy(&g->done_cv);
	pthread_mutex_unlock(&g->mu);
	pthread_mutex_destroy(&g->mu);
	free(g);
}

static void ha_unref_locked(creto_hsm_ha *g)
{
	if (--g->refs > 0) {
		pthread_mutex_unlock(&g->mu);
		return;
	}
	ha_free(g);
}

/* Start endpoint p's worker; the caller holds g->mu. */
static int spawn_worker_locked(creto_hsm_ha *g, struct ep *p)
{
	p->exited = 0;
	if (pthread_create(&p->th, NULL, worker, p) != 0) {
		p->exited = 1;
		return -1;
	}
	p->started = 1;
	g->refs++;
	return 0;
}

/* Mark endpoint i down (reason: a CKR_ name or "deadline"); the caller
 * holds g->mu, which is released while the event is emitted. */
static void mark_down_locked(creto_hsm_ha *g, size_t i, const char *reason)
{
	struct ep *p = &g->ep[i];
	if (p->state != EP_UP)
		return;
	p->state = EP_DOWN;
	p->downs++;
	snprintf(p->reason, sizeof(p->reason), "%s", reason);
	clock_gettime(CLOCK_MONOTONIC, &p->next_probe);
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&g->mu);
	emit(g, &(struct ev_out){"endpoint-down", "failed", reason, p->name, NULL, NULL});
	pthread_mutex_lock(&g->mu);
}

/* Wait on done_cv until j is done or dl passes; 1 when done. */
static int wait_done_locked(creto_hsm_ha *g, struct job *j, const struct timespec *dl)
{
	while (!j->done)
		if (pthread_cond_timedwait(&g->done_cv, &g->mu, dl) == ETIMEDOUT && !j->done)
			return 0;
	return 1;
}

enum { W_LATE = 0, W_DONE = 1, W_LATE_JOINED = 2 };

/* Queue a job on endpoint i's worker and wait for it at most the
 * deadline: W_DONE (results in j) or W_LATE (then j belongs to the
 * worker).  Called with g->mu held. */
static int submit_wait_locked(creto_hsm_ha *g, size_t i, struct job *j)
{
	struct ep *p = &g->ep[i];
	j->refs = 2;
	j->next = NULL;
	if (p->tail != NULL)
		p->tail->next = j;
	else
		p->head = j;
	p->tail = j;
	pthread_cond_signal(&p->cv);
	struct timespec dl;
	now_plus(&dl, g->deadline_ms);
	if (!wait_done_locked(g, j, &dl)) {
		j->refs--; /* the worker frees it when the call returns */
		return W_LATE;
	}
	j->refs--;
	return W_DONE;
}

/* ---- one-shot calls: before creto_hsm_ha_start ---- */

#define FD_SNAP_MAX 65536 /* descriptors tracked by a snapshot (a bitmap) */

/* Call fn on every open descriptor below FD_SNAP_MAX but the scan's own. */
static int fd_scan(void (*fn)(int fd, void *arg), void *arg)
{
	DIR *d = opendir("/proc/self/fd");
	if (d == NULL)
		return -1;
	int self = dirfd(d);
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		char *end = NULL;
		long fd = strtol(de->d_name, &end, 10);
		if (de->d_name[0] == '.' || *end != '\0' || fd < 0 || fd >= FD_SNAP_MAX || fd == self)
			continue;
		fn((int)fd, arg);
	}
	closedir(d);
	return 0;
}

static void snap_set(int fd, void *arg)
{
	uint8_t *bits = arg;
	bits[fd / 8] |= (uint8_t)(1u << (fd % 8));
}

static void shut_if_new_socket(int fd, void *arg)
{
	const uint8_t *bits = arg;
	struct stat st;
	if (bits[fd / 8] & (1u << (fd % 8)))
		return;
	if (fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode))
		(void)shutdown(fd, SHUT_RDWR);
}

/* The descriptors open now, or NULL (out of memory, no /proc). */
static uint8_t *fd_snapshot(void)
{
	uint8_t *bits = calloc(FD_SNAP_MAX / 8, 1);
	if (bits != NULL && fd_scan(snap_set, bits) != 0) {
		free(bits);
		bits = NULL;
	}
	return bits;
}

static void *oneshot_main(void *arg)
{
	struct ep *p = arg;
	creto_hsm_ha *g = p->g;
	block_sigpipe();
	pthread_mutex_lock(&g->mu);
	struct job *j = p->os_job;
	pthread_mutex_unlock(&g->mu);
	run_job(p, j);
	drain_sigpipe();
	pthread_mutex_lock(&g->mu);
	j->done = 1;
	p->os_job = NULL;
	pthread_cond_broadcast(&g->done_cv);
	job_unref_locked(j);
	if (p->os_abandoned) {
		/* Detached: nobody waits for this thread.  The endpoint is
		 * free again; it gets its worker now if the others have one. */
		p->oneshot = 0;
		p->os_abandoned = 0;
		if (g->stop) {
			pthread_mutex_unlock(&g->mu);
			ep_close_keys(p);
			pthread_mutex_lock(&g->mu);
		} else if (g->started && !p->started) {
			(void)spawn_worker_locked(g, p);
		}
		pthread_cond_broadcast(&g->done_cv);
	}
	ha_unref_locked(g);
	return NULL;
}

/* Run job j on a thread of its own for endpoint i (no worker yet) and wait
 * at most the deadline.  A late call's new sockets are shut down when this
 * thread and the one-shot are the process's only threads, and it gets one
 * more deadline to return.  W_DONE: j holds the results; W_LATE_JOINED: it
 * was late, returned and was joined (j is the caller's, its results are
 * not used); W_LATE: still running, detached, j belongs to it.  Called
 * with g->mu held. */
static int oneshot_wait_locked(creto_hsm_ha *g, size_t i, struct job *j)
{
	struct ep *p = &g->ep[i];
	while (p->oneshot && !p->os_abandoned)
		pthread_cond_wait(&g->done_cv, &g->mu);
	if (p->oneshot) { /* an earlier call is still stuck there */
		j->rc = creto_err_set(&j->err, CRETO_EOP, "HSM endpoint %s: an earlier call has not returned",
				      p->name);
		j->rv = CKR_DEVICE_REMOVED;
		return W_DONE;
	}
	uint8_t *snap = fd_snapshot();
	j->refs = 2;
	p->os_job = j;
	p->oneshot = 1;
	p->os_abandoned = 0;
	g->refs++;
	if (pthread_create(&p->os_th, NULL, oneshot_main, p) != 0) {
		g->refs--;
		p->oneshot = 0;
		p->os_job = NULL;
		j->refs = 1;
		free(snap);
		j->rc = creto_err_set(&j->err, CRETO_EOP, "cannot start a thread for HSM endpoint %s", p->name);
		j->rv = CKR_HOST_MEMORY;
		return W_DONE;
	}
	struct timespec dl;
	now_plus(&dl, g->deadline_ms);
	int done = wait_done_locked(g, j, &dl), late = !done;
	if (!done && snap != NULL) {
		pthread_mutex_unlock(&g->mu);
		int alone = creto_thread_count() == 2;
		if (alone)
			(void)fd_scan(shut_if_new_socket, snap);
		pthread_mutex_lock(&g->mu);
		if (alone) {
			now_plus(&dl, g->deadline_ms);
			done = wait_done_locked(g, j, &dl);
		}
	}
	free(snap);
	if (!done) {
		p->os_abandoned = 1;
		pthread_detach(p->os_th);
		j->refs--;
		return W_LATE;
	}
	pthread_mutex_unlock(&g->mu);
	pthread_join(p->os_th, NULL);
	pthread_mutex_lock(&g->mu);
	p->oneshot = 0;
	pthread_cond_broadcast(&g->done_cv);
	j->refs--;
	return late ? W_LATE_JOINED : W_DONE;
}

/* Run j on endpoint i: through its worker once started, else one-shot. */
static int run_wait_locked(creto_hsm_ha *g, size_t i, struct job *j)
{
	return g->started && g->ep[i].started ? submit_wait_locked(g, i, j) : oneshot_wait_locked(g, i, j);
}

static struct job *job_new(int kind, const uint8_t *msg, size_t msglen)
{
	struct job *j = calloc(1, sizeof(*j));
	if (j == NULL)
		return NULL;
	j->kind = kind;
	if (msglen > 0) {
		j->msg = malloc(msglen);
		if (j->msg == NULL) {
			free(j);
			return NULL;
		}
		memcpy(j->msg, msg, msglen);
		j->msglen = msglen;
	}
	return j;
}

void creto_hsm_ha_close(creto_hsm_ha *g)
{
	if (g == NULL)
		return;
	pthread_mutex_lock(&g->mu);
	g->stop = 1;
	for (size_t i = 0; i < g->n; i++)
		pthread_cond_signal(&g->ep[i].cv);
	/* Wait (bounded) for the workers that are not stuck in a call. */
	struct timespec dl;
	now_plus(&dl, g->deadline_ms);
	for (;;) {
		int waiting = 0;
		for (size_t i = 0; i < g->n; i++)
			if (g->ep[i].started && !g->ep[i].exited)
				waiting = 1;
		if (!waiting || pthread_cond_timedwait(&g->done_cv, &g->mu, &dl) == ETIMEDOUT)
			break;
	}
	for (size_t i = 0; i < g->n; i++) {
		struct ep *p = &g->ep[i];
		if (p->started) {
			if (p->exited)
				pthread_join(p->th, NULL);
			else
				pthread_detach(p->th);
		} else if (!p->oneshot) {
			/* never started: its keys are the caller's to close (a
			 * stuck one-shot closes its own) */
			pthread_mutex_unlock(&g->mu);
			ep_close_keys(p);
			pthread_mutex_lock(&g->mu);
		}
	}
	ha_unref_locked(g);
}

/* Parse and check the key URIs into g->key. */
static int keys_parse(creto_hsm_ha *g, const char *const *uris, size_t nkeys, creto_err *e)
{
	for (size_t i = 0; i < nkeys; i++) {
		int rc = creto_p11_uri_parse(uris[i], &g->key[i].u, e);
		if (rc != CRETO_OK)
			return rc;
		g->nkeys++;
		const creto_p11_uri *u = g->key[i].u, *u0 = g->key[0].u;
		if (u->pin_value != NULL)
			return creto_err_set(e, CRETO_EUSAGE,
					     "pkcs11 URI: pin-value is refused (a PIN must not appear in a URI or argv)");
		if (u->pq_file != NULL)
			return creto_err_set(e, CRETO_EUSAGE,
					     "pkcs11 URI: a hybrid key (x-creto-pq) cannot fail over: its ML-DSA half needs AES key wrap, which remote HSMs lack");
		if (u->object == NULL && !u->has_id)
			return creto_err_set(e, CRETO_EUSAGE, "pkcs11 URI names no key: add object= or id=");
		if (i > 0 && ((u->token != NULL) != (u0->token != NULL) ||
			      (u->token != NULL && strcmp(u->token, u0->token) != 0)))
			return creto_err_set(e, CRETO_EUSAGE,
					     "pkcs11 URI '%s': the keys reached through one set of HSM endpoints must name the same token as '%s'",
					     uris[i], uris[0]);
	}
	return CRETO_OK;
}

int creto_hsm_ha_open_keys(const char *const *uris, size_t nkeys, const creto_hsm_opts *opts,
			   creto_hsm_ha **out, creto_err *e)
{
	*out = NULL;
	if (opts == NULL || opts->nendpoints == 0 || opts->nendpoints > CRETO_HSM_ENDPOINTS_MAX)
		return creto_err_set(e, CRETO_EUSAGE, "HSM failover needs 1 to %d endpoints",
				     CRETO_HSM_ENDPOINTS_MAX);
	if (nkeys == 0 || nkeys > CRETO_HSM_HA_KEYS_MAX)
		return creto_err_set(e, CRETO_EUSAGE, "HSM failover takes 1 to %d keys", CRETO_HSM_HA_KEYS_MAX);
	creto_hsm_ha *g = calloc(1, sizeof(*g));
	if (g == NULL)
		return creto_err_set(e, CRETO_EOP, "out of memory");
	int rc = keys_parse(g, uris, nkeys, e);
	if (rc == CRETO_OK && opts->pin_file != NULL && (g->pin_file = strdup(opts->pin_file)) == NULL)
		rc = creto_err_set(e, CRETO_EOP, "out of memory");
	if (rc != CRETO_OK) {
		for (size_t i = 0; i < g->nkeys; i++)
			creto_p11_uri_free(g->key[i].u);
		free(g->pin_file);
		free(g);
		return rc;
	}
	g->opts = *opts;
	g->opts.pin_file = g->pin_file;
	g->opts.events = NULL; /* the group reports; the handles report logins */
	if (opts->events != NULL) {
		g->events = *opts->events;
		g->opts.events = &g->events;
	}
	g->opts.endpoints = NULL;
	g->opts.nendpoints = 0;
	g->deadline_ms = opts->deadline_ms ? opts->deadline_ms : CRETO_HSM_DEADLINE_MS;
	g->probe_ms = opts->probe_ms ? opts->probe_ms : CRETO_HSM_PROBE_MS;
	pthread_mutex_init(&g->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&g->done_cv, &ca);
	g->refs = 1;
	for (size_t i = 0; i < opts->nendpoints; i++) {
		struct ep *p = &g->ep[i];
		p->g = g;
		p->spec = opts->endpoints[i];
		creto_hsm_endpoint_format(&p->spec, p->name, sizeof(p->name));
		p->state = EP_UP; /* not yet: the open below decides */
		p->exited = 1;
		pthread_cond_init(&p->cv, &ca);
		g->n++;
	}
	pthread_condattr_destroy(&ca);
	pthread_mutex_lock(&g->mu);
	/* Open in order, each within the deadline, each on a one-shot thread
	 * joined before the next: no thread is left when this returns
	 * (unless one could not be unblocked, see the top of this file). */
	size_t up = 0;
	creto_err last;
	creto_err_clear(&last);
	for (size_t i = 0; i < g->n; i++) {
		struct ep *p = &g->ep[i];
		struct job *j = job_new(JOB_OPEN, NULL, 0);
		if (j == NULL) {
			rc = creto_err_set(e, CRETO_EOP, "out of memory");
			goto fail;
		}
		int w = oneshot_wait_locked(g, i, j);
		if (w != W_DONE) {
			if (w == W_LATE_JOINED)
				job_unref_locked(j);
			creto_err_set(&last, CRETO_EOP, "HSM endpoint %s: no answer within %u ms", p->name,
				      g->deadline_ms);
			mark_down_locked(g, i, "deadline");
			continue;
		}
		int jrc = j->rc;
		ck_rv_t jrv = j->rv;
		creto_err je = j->err;
		job_unref_locked(j);
		if (jrc == CRETO_OK) {
			if (up++ == 0)
				g->active = i;
			continue;
		}
		creto_err_ctx(&je, "HSM endpoint %s", p->name);
		if (jrv == CKR_FUNCTION_REJECTED) { /* a refusal: report it at once */
			*e = je;
			rc = je.code;
			goto fail;
		}
		last = je;
		mark_down_locked(g, i, "unreachable");
	}
	if (up == 0) {
		*e = last;
		rc = creto_err_set(e, CRETO_EOP, "no HSM endpoint answered (last: %s)", last.msg);
		goto fail;
	}
	for (size_t k = 0; k < g->nkeys; k++) {
		creto_pubkey *pk = NULL;
		rc = creto_pubkey_new(g->key[k].alg, g->key[k].pub, g->key[k].publen, &pk, e);
		if (rc != CRETO_OK)
			goto fail;
		memcpy(g->key[k].key_id, creto_pubkey_id(pk), sizeof(g->key[k].key_id));
		creto_pubkey_free(pk);
	}
	pthread_mutex_unlock(&g->mu);
	*out = g;
	return CRETO_OK;
fail:
	pthread_mutex_unlock(&g->mu);
	creto_hsm_ha_close(g);
	return rc;
}

int creto_hsm_ha_start(creto_hsm_ha *g, creto_err *e)
{
	int rc = CRETO_OK;
	pthread_mutex_lock(&g->mu);
	g->started = 1;
	for (size_t i = 0; i < g->n && rc == CRETO_OK; i++) {
		struct ep *p = &g->ep[i];
		if (p->started || p->oneshot) /* a stuck one-shot starts it when it returns */
			continue;
		if (spawn_worker_locked(g, p) != 0)
			rc = creto_err_set(e, CRETO_EOP, "cannot start the thread of HSM endpoint %s", p->name);
	}
	pthread_mutex_unlock(&g->mu);
	return rc;
}

int creto_hsm_ha_open(const char *uri, const creto_hsm_opts *opts, creto_hsm_ha **out,
		      creto_err *e)
{
	int rc = creto_hsm_ha_open_keys(&uri, 1, opts, out, e);
	if (rc == CRETO_OK && (rc = creto_hsm_ha_start(*out, e)) != CRETO_OK) {
		creto_hsm_ha_close(*out);
		*out = NULL;
	}
	return rc;
}

/* The endpoint to use: the active one while up, else the first other one
 * that is up (a failover), skipping `not`.  SIZE_MAX when none. */
static size_t pick_locked(creto_hsm_ha *g, size_t not)
{
	size_t a = g->active;
	if (a != not && g->ep[a].state == EP_UP)
		return a;
	for (size_t k = 1; k <= g->n; k++) {
		size_t i = (a + k) % g->n;
		if (i == not || g->ep[i].state != EP_UP)
			continue;
		g->active = i;
		g->st.failovers++;
		const char *from = g->ep[a].name, *to = g->ep[i].name;
		pthread_mutex_unlock(&g->mu);
		emit(g, &(struct ev_out){"failover", "ok", g->ep[a].reason[0] ? g->ep[a].reason : NULL,
					 NULL, from, to});
		pthread_mutex_lock(&g->mu);
		return i;
	}
	return (size_t)-1;
}

int creto_hsm_ha_sign_key(creto_hsm_ha *g, size_t key, const uint8_t *msg, size_t msglen,
			  uint8_t *sig, size_t sigcap, size_t *siglen, creto_err *e)
{
	*siglen = 0;
	if (key >= g->nkeys)
		return creto_err_set(e, CRETO_EUSAGE, "HSM failover: no key %zu", key);
	int rc = CRETO_OK;
	char why[CRETO_ERR_MSG_MAX] = "";
	pthread_mutex_lock(&g->mu);
	g->st.ops++;
	size_t tried = (size_t)-1;
	unsigned attempts = 0;
	for (;;) {
		size_t i = pick_locked(g, tried);
		if (i == (size_t)-1) {
			rc = creto_err_set(e, CRETO_EOP, "token '%s': no HSM endpoint is up%s%s", g->label,
					   why[0] ? "; " : "", why);
			break;
		}
		if (attempts++ > 0)
			g->st.retries++;
		struct job *j = job_new(JOB_SIGN, msg, msglen);
		if (j == NULL) {
			rc = creto_err_set(e, CRETO_EOP, "out of memory");
			break;
		}
		j->key = key;
		int w = run_wait_locked(g, i, j);
		if (w != W_DONE) {
			if (w == W_LATE_JOINED)
				job_unref_locked(j);
			snprintf(why, sizeof(why), "HSM endpoint %.300s: no answer within %u ms", g->ep[i].name,
				 g->deadline_ms);
			mark_down_locked(g, i, "deadline");
			rc = creto_err_set(e, CRETO_EOP, "token '%s': %s", g->label, why);
		} else {
			rc = j->rc;
			ck_rv_t rv = j->rv;
			if (rc == CRETO_OK) {
				if (j->siglen > sigcap) {
					rc = creto_err_set(e, CRETO_EOP, "signature buffer too small");
				} else {
					memcpy(sig, j->sig, j->siglen);
					*siglen = j->siglen;
				}
				job_unref_locked(j);
				break;
			}
			*e = j->err;
			job_unref_locked(j);
			if (!rv_dead(rv))
				break; /* a refusal: never on another endpoint */
			char b[32];
			snprintf(why, sizeof(why), "HSM endpoint %.150s: %.200s", g->ep[i].name, e->msg);
			mark_down_locked(g, i, creto_ckr_name(rv, b));
		}
		if (attempts >= 2)
			break; /* one retry, never more */
		tried = i;
	}
	if (attempts > g->st.max_attempts)
		g->st.max_attempts = attempts;
	if (rc != CRETO_OK)
		g->st.failed++;
	pthread_mutex_unlock(&g->mu);
	return rc;
}

int creto_hsm_ha_sign(creto_hsm_ha *g, const uint8_t *msg, size_t msglen, uint8_t *sig,
		      size_t sigcap, size_t *siglen, creto_err *e)
{
	return creto_hsm_ha_sign_key(g, 0, msg, msglen, sig, sigcap, siglen, e);
}

const uint8_t *creto_hsm_ha_pub(const creto_hsm_ha *g, creto_alg *alg, size_t *len)
{
	*alg = g->key[0].alg;
	*len = g->key[0].publen;
	return g->key[0].pub;
}

const char *creto_hsm_ha_key_id(const creto_hsm_ha *g)
{
	return g->key[0].key_id;
}

const char *creto_hsm_ha_token_label(const creto_hsm_ha *g)
{
	return g->label;
}

/* ---- a signer for one key of the group ---- */

struct ha_signer {
	creto_hsm_ha *g;
	size_t key;
};

static int has_sign(void *impl, const uint8_t *msg, size_t msglen, uint8_t *sig, size_t sigcap,
		    size_t *siglen, creto_err *e)
{
	const struct ha_signer *hs = impl;
	return creto_hsm_ha_sign_key(hs->g, hs->key, msg, msglen, sig, sigcap, siglen, e);
}

static void has_free(void *impl)
{
	free(impl);
}

static const creto_signer_ops ha_key_signer_ops = {"pkcs11", has_sign, has_free};

int creto_hsm_ha_signer(creto_hsm_ha *g, size_t key, creto_signer **out, creto_err *e)
{
	*out = NULL;
	if (key >= g->nkeys)
		return creto_err_set(e, CRETO_EUSAGE, "HSM failover: no key %zu", key);
	struct ha_signer *hs = calloc(1, sizeof(*hs));
	if (hs == NULL)
		return creto_err_set(e, CRETO_EOP, "out of memory");
	hs->g = g;
	hs->key = key;
	creto_pubkey *pub = NULL;
	int rc = creto_pubkey_new(g->key[key].alg, g->key[key].pub, g->key[key].publen, &pub, e);
	if (rc != CRETO_OK) {
		free(hs);
		return rc;
	}
	return creto_signer_new(&ha_key_signer_ops, hs, pub, out, e);
}

void creto_hsm_ha_stats_get(creto_hsm_ha *g, creto_hsm_ha_stats *st)
{
	pthread_mutex_lock(&g->mu);
	*st = g->st;
	pthread_mutex_unlock(&g->mu);
}

size_t creto_hsm_ha_endpoints(const creto_hsm_ha *g)
{
	return g->n;
}

void creto_hsm_ha_endpoint_get(creto_hsm_ha *g, size_t i, creto_hsm_ha_endpoint_status *st)
{
	memset(st, 0, sizeof(*st));
	if (i >= g->n)
		return;
	pthread_mutex_lock(&g->mu);
	const struct ep *p = &g->ep[i];
	snprintf(st->name, sizeof(st->name), "%s", p->name);
	st->up = p->state == EP_UP;
	st->active = i == g->active;
	st->downs = p->downs;
	snprintf(st->reason, sizeof(st->reason), "%s", p->reason);
	pthread_mutex_unlock(&g->mu);
}
