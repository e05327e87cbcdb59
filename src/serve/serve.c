/*
 * serve.c - `creto serve`: opens every component from one config file,
 * applies the sandbox, runs each component on its own thread with its own
 * stop handle and supervises them (docs/serve.md).
 *
 * Threads: the supervisor (the caller of creto_serve_run: signals come in
 * as requests on an eventfd, timers for checkpoints, the watchdog and
 * restarts), the diode watcher, the gateway (its own workers below it) and
 * the isolation monitor.  Components report to the supervisor through
 * flags and one eventfd; only the supervisor starts, stops or restarts a
 * component, so no two threads ever do that at once.
 *
 * No rule lives here: the watcher decides about packages, the gateway about
 * requests, isolation about routes.  serve decides only what is running.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "creto/audit.h"
#include "creto/gateway.h"
#include "creto/keys.h"
#include "creto/nhi.h"
#include "creto/serve.h"
#include "creto/update.h"
#include "serve/hsmha.h"
#include "serve/models.h"
#include "serve/notify.h"
#include "serve/sandbox.h"
#include "util/conf.h"
#include "util/file.h"

#define GW_LISTEN_MAX 16

/* Where Debian's p11-kit finds the modules its configurations name. */
#if defined(__x86_64__)
#define P11_KIT_MODULE_DIR "/usr/lib/x86_64-linux-gnu/pkcs11"
#elif defined(__aarch64__)
#define P11_KIT_MODULE_DIR "/usr/lib/aarch64-linux-gnu/pkcs11"
#else
#define P11_KIT_MODULE_DIR "/usr/lib/pkcs11"
#endif
#define MODELS_MAX 64

enum {
	EV_MODELS = 1u,    /* a model-weights update was applied */
	EV_POLICY = 2u,    /* the gateway policy update was applied */
	EV_NHI = 4u,       /* the NHI backup update was applied */
	EV_ISO = 8u,       /* the isolation state changed */
	EV_GW_EXIT = 16u,  /* the gateway's run returned */
	EV_WATCH_EXIT = 32u,
	EV_JWKS = 64u,     /* the issuer JWK Set update was applied */
	EV_HSM = 128u,     /* the HSM endpoints reported an event */
};

/* An HSM event (an endpoint down or up, a failover, a failed login), copied
 * from the thread that reported it for the supervisor to audit: the HSM
 * layer may report from inside a signature the audit log asked for (a
 * checkpoint), so it never calls the audit log itself. */
#define HSM_EVQ_MAX 64
#define HSM_EV_FIELDS 4
struct hsm_ev {
	char event[32], outcome[16], subject[64], reason[CRETO_ERR_MSG_MAX];
	int has_subject, has_reason;
	char key[HSM_EV_FIELDS][32];
	char str[HSM_EV_FIELDS][600];
	int64_t num[HSM_EV_FIELDS];
	int is_str[HSM_EV_FIELDS];
	size_t nf;
};

struct creto_serve {
	creto_serve_config *cfg;
	creto_serve_opts o;
	creto_keys_opts ko;  /* points into hsm_module/hsm_pin (fixed at start) */
	char hsm_module[CRETO_SERVE_PATH_MAX], hsm_pin[CRETO_SERVE_PATH_MAX];
	creto_signer *ckpt;
	/* [hsm] endpoint: the keys serve signs with, through the failover */
	creto_hsm_ha *ha;
	creto_signer *iss;        /* [gateway] issuer_key when it goes through ha */
	pthread_mutex_t evmu;     /* the HSM event queue */
	struct hsm_ev evq[HSM_EVQ_MAX];
	size_t nevq, evq_dropped;
	char *hsm_status;         /* the status last written to RUNTIME/hsm.json */
	int64_t hsm_status_ms;    /* when it was last looked at */
	creto_audit *audit;
	creto_update_ctx *uctx;
	creto_notify *notify;
	pthread_mutex_t mu; /* cfg swaps (reload) against the isolation thread, log */

	/* requests: stop/reload from signals, events from components */
	int ctl_fd;
	atomic_int stop_req, reload_req;
	atomic_uint events;

	/* the gateway */
	creto_gateway *gw;
	pthread_t gw_th;
	int gw_started;
	char gw_conf[CRETO_SERVE_PATH_MAX];
	char *listen[GW_LISTEN_MAX];
	size_t nlisten;
	char *routed[MODELS_MAX];
	size_t nrouted;
	char policy_path[CRETO_SERVE_PATH_MAX]; /* installed gateway policy, "" none */

	/* the diode watcher: its paths fixed at start (reload keeps them) */
	char drop[CRETO_SERVE_PATH_MAX], trust[CRETO_SERVE_PATH_MAX], state[CRETO_SERVE_PATH_MAX];
	char cfg_runtime[CRETO_SERVE_PATH_MAX]; /* runtime_dir, fixed at start: serve's record */
	int settle_ms;
	creto_stop_handle *watch_stop;
	pthread_t watch_th;
	int watch_started;
	int watch_paused;
	char pending_policy[CRETO_SERVE_PATH_MAX];
	char pending_nhi[CRETO_SERVE_PATH_MAX];
	char pending_jwks[CRETO_SERVE_PATH_MAX];
	char jwks_path[CRETO_SERVE_PATH_MAX]; /* RUNTIME/jwks.json once an update replaced it, "" none */

	/* the isolation monitor */
	creto_stop_handle *iso_stop;
	pthread_t iso_th;
	int iso_started;
	atomic_int iso_state;   /* -1 unknown, 0 isolated, 1 violated */
	atomic_int refusing;    /* on_violation = refuse and violated */
	char iso_first[512];    /* first failing finding (under mu) */
	size_t iso_violations;

	/* audit checkpoints */
	atomic_ullong entries;  /* appended since the last checkpoint */
	int64_t last_ckpt_ms;
	int fatal;
	creto_err fatal_err;
};

/* ---- logging and audit ---- */

static void slog(creto_serve *s, const char *comp, int level, const char *fmt, ...) CRETO_PRINTF(4, 5);

static void slog(creto_serve *s, const char *comp, int level, const char *fmt, ...)
{
	if (s->o.log == NULL)
		return;
	char line[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	for (char *p = line; *p; p++)
		if ((unsigned char)*p < ' ')
			*p = ' ';
	s->o.log(s->o.log_ctx, comp, level, line);
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Durable sink: every decision of the watcher and of serve itself. */
static int sink_append(void *ctx, const creto_event *ev)
{
	creto_serve *s = ctx;
	creto_err e;
	creto_err_clear(&e);
	int rc = creto_audit_append(s->audit, ev, NULL, &e);
	if (rc == CRETO_OK)
		atomic_fetch_add(&s->entries, 1);
	else
		slog(s, "audit", CRETO_SERVE_LOG_ERROR, "event=append_failed msg=\"%s\"", e.msg);
	return rc;
}

/* Group-commit sink for the gateway's hot path. */
static int sink_submit(void *ctx, const creto_event *ev)
{
	creto_serve *s = ctx;
	int rc = creto_audit_submit(s->audit, ev, NULL);
	if (rc == CRETO_OK)
		atomic_fetch_add(&s->entries, 1);
	return rc;
}

/* The gateway's admission switch: the audit log can take records and, with
 * on_violation = refuse, the enclave is isolated. */
static int admission(void *ctx)
{
	creto_serve *s = ctx;
	return creto_audit_healthy(s->audit) && !atomic_load(&s->refusing);
}

static void audit_ev(creto_serve *s, const char *comp, const char *event, const char *outcome,
		     const char *subject, const char *reason)
{
	creto_event ev = {comp, event, outcome, subject, reason, NULL, NULL, 0};
	(void)sink_append(s, &ev);
}

static void poke(creto_serve *s, unsigned ev);

/* The HSM failover's event sink: any thread, copy and wake the supervisor. */
static int hsm_sink(void *ctx, const creto_event *ev)
{
	creto_serve *s = ctx;
	pthread_mutex_lock(&s->evmu);
	if (s->nevq == HSM_EVQ_MAX) {
		s->evq_dropped++;
		pthread_mutex_unlock(&s->evmu);
		poke(s, EV_HSM);
		return CRETO_OK;
	}
	struct hsm_ev *q = &s->evq[s->nevq++];
	memset(q, 0, sizeof *q);
	snprintf(q->event, sizeof q->event, "%s", ev->event ? ev->event : "");
	snprintf(q->outcome, sizeof q->outcome, "%s", ev->outcome ? ev->outcome : "");
	if ((q->has_subject = ev->subject != NULL))
		snprintf(q->subject, sizeof q->subject, "%s", ev->subject);
	if ((q->has_reason = ev->reason != NULL))
		snprintf(q->reason, sizeof q->reason, "%s", ev->reason);
	for (size_t i = 0; i < ev->nfields && q->nf < HSM_EV_FIELDS; i++, q->nf++) {
		snprintf(q->key[q->nf], sizeof q->key[0], "%s", ev->fields[i].key);
		if ((q->is_str[q->nf] = ev->fields[i].str != NULL))
			snprintf(q->str[q->nf], sizeof q->str[0], "%s", ev->fields[i].str);
		else
			q->num[q->nf] = ev->fields[i].num;
	}
	pthread_mutex_unlock(&s->evmu);
	poke(s, EV_HSM);
	return CRETO_OK;
}

/* RUNTIME/hsm.json: the endpoints' state, rewritten when it changed (on
 * every HSM event, and every HSM_STATUS_MS for the counters). */
#define HSM_STATUS_MS 5000
static void hsm_status_write(creto_serve *s)
{
	if (s->ha == NULL)
		return;
	s->hsm_status_ms = mono_ms();
	char *js = serve_hsm_status_json(s->ha);
	if (js == NULL || (s->hsm_status != NULL && !strcmp(js, s->hsm_status))) {
		free(js);
		return;
	}
	char path[CRETO_SERVE_PATH_MAX + 16];
	creto_err e;
	creto_err_clear(&e);
	snprintf(path, sizeof path, "%s/hsm.json", s->cfg_runtime);
	size_t n = strlen(js);
	js[n] = '\n'; /* json_dumps leaves room: its NUL */
	int rc = creto_file_write_atomic(path, js, n + 1, 0644, &e);
	js[n] = '\0';
	if (rc != CRETO_OK) {
		slog(s, "hsm", CRETO_SERVE_LOG_ERROR, "event=status_failed msg=\"%s\"", e.msg);
		free(js);
		return;
	}
	free(s->hsm_status);
	s->hsm_status = js;
}

/* The supervisor: audit the queued HSM events (component hsm), log them. */
static void hsm_events(creto_serve *s)
{
	for (;;) {
		struct hsm_ev q;
		size_t dropped;
		pthread_mutex_lock(&s->evmu);
		dropped = s->evq_dropped;
		s->evq_dropped = 0;
		int have = s->nevq > 0;
		if (have) {
			q = s->evq[0];
			memmove(&s->evq[0], &s->evq[1], (s->nevq - 1) * sizeof q);
			s->nevq--;
		}
		pthread_mutex_unlock(&s->evmu);
		if (dropped)
			slog(s, "hsm", CRETO_SERVE_LOG_ERROR, "event=events_dropped count=%zu", dropped);
		if (!have)
			break;
		creto_event_field f[HSM_EV_FIELDS];
		char line[1600] = "";
		for (size_t i = 0; i < q.nf; i++) {
			f[i] = (creto_event_field){q.key[i], q.is_str[i] ? q.str[i] : NULL, q.num[i]};
			if (q.is_str[i])
				snprintf(line + strlen(line), sizeof line - strlen(line), " %s=%s", q.key[i], q.str[i]);
		}
		creto_event ev = {"hsm", q.event, q.outcome, q.has_subject ? q.subject : NULL,
				  q.has_reason ? q.reason : NULL, NULL, f, q.nf};
		(void)sink_append(s, &ev);
		slog(s, "hsm", !strcmp(q.outcome, "ok") ? CRETO_SERVE_LOG_INFO : CRETO_SERVE_LOG_WARN,
		     "event=%s outcome=%s%s reason=\"%s\"", q.event, q.outcome, line, q.has_reason ? q.reason : "");
	}
	hsm_status_write(s);
}

/* The gateway's /metrics: the HSM endpoints' gauges (a worker thread). */
static int hsm_metrics(void *ctx, char **out, size_t *len)
{
	creto_serve *s = ctx;
	return serve_hsm_metrics(s->ha, out, len);
}

static void gw_log(void *ctx, const char *line)
{
	creto_serve *s = ctx;
	int lvl = strstr(line, "level=error") ? CRETO_SERVE_LOG_ERROR
		  : strstr(line, "level=warn") ? CRETO_SERVE_LOG_WARN
					       : CRETO_SERVE_LOG_INFO;
	slog(s, "gateway", lvl, "%s", line);
}

static void nf(int rc)
{
	(void)rc; /* sd_notify is best effort: systemd may not listen */
}

static void poke(creto_serve *s, unsigned ev)
{
	if (ev)
		atomic_fetch_or(&s->events, ev);
	uint64_t one = 1;
	ssize_t w = write(s->ctl_fd, &one, sizeof one);
	(void)w;
}

void creto_serve_reload(creto_serve *s)
{
	if (s == NULL)
		return;
	atomic_store(&s->reload_req, 1);
	poke(s, 0);
}

void creto_serve_stop(creto_serve *s)
{
	if (s == NULL)
		return;
	atomic_store(&s->stop_req, 1);
	poke(s, 0);
}

/* ---- installed things ---- */

/* An installed `policy` update's payload file: STATE/policy/NAME/current
 * -> VERSION, the file `file` in it, pinned by version (never through
 * `current`).  "" when none is installed. */
static void installed_payload(creto_serve *s, const char *name, const char *file, char *out, size_t cap)
{
	out[0] = '\0';
	char link[CRETO_SERVE_PATH_MAX], ver[64];
	if (snprintf(link, sizeof link, "%s/policy/%s/current", s->cfg->state_dir, name) >= (int)sizeof link)
		return;
	ssize_t n = readlink(link, ver, sizeof ver - 1);
	if (n <= 0)
		return;
	ver[n] = '\0';
	if (strchr(ver, '/') != NULL || ver[0] == '.')
		return;
	if (snprintf(out, cap, "%s/policy/%s/%s/%s", s->cfg->state_dir, name, ver, file) >= (int)cap)
		out[0] = '\0';
}

/* The installed gateway policy. */
static void installed_policy(creto_serve *s, char *out, size_t cap)
{
	installed_payload(s, s->cfg->policy_update, "policy", out, cap);
}

#define JWKS_UPDATE_MAX (256 * 1024)

/* Validate the JWK Set at src (creto_jwks_parse, the gateway's own parser)
 * and, only when it parses, write those same bytes atomically to
 * RUNTIME/jwks.json, the file the derived gateway config names from then
 * on.  On any error RUNTIME/jwks.json and s->jwks_path are unchanged.
 * *nkeys gets the number of keys in the set. */
static int jwks_install(creto_serve *s, const char *src, size_t *nkeys, creto_err *e)
{
	*nkeys = 0;
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = creto_file_read(src, JWKS_UPDATE_MAX, &buf, &len, e);
	if (rc != CRETO_OK)
		return rc;
	creto_jwks *j = NULL;
	rc = creto_jwks_parse((const char *)buf, len, &j, e);
	if (rc == CRETO_OK && creto_jwks_count(j) == 0)
		rc = creto_err_set(e, CRETO_EREJECT, "%s: the JWK Set has no key", src);
	if (rc == CRETO_OK)
		*nkeys = creto_jwks_count(j);
	creto_jwks_free(j);
	char dst[CRETO_SERVE_PATH_MAX];
	if (rc == CRETO_OK && snprintf(dst, sizeof dst, "%s/jwks.json", s->cfg_runtime) >= (int)sizeof dst)
		rc = creto_err_set(e, CRETO_EUSAGE, "serve.runtime_dir: too long");
	if (rc == CRETO_OK)
		rc = creto_file_write_atomic(dst, buf, len, 0644, e);
	free(buf);
	if (rc == CRETO_OK)
		snprintf(s->jwks_path, sizeof s->jwks_path, "%s", dst);
	return rc;
}

/* At start: an installed JWK Set update is in force again (RUNTIME may be a
 * tmpfs gone after a reboot).  One that does not parse is refused and
 * audited; then the last accepted copy in RUNTIME/jwks.json is kept when it
 * parses, else the configured [nhi] jwks. */
static void jwks_at_start(creto_serve *s)
{
	char src[CRETO_SERVE_PATH_MAX];
	installed_payload(s, s->cfg->jwks_update, "jwks.json", src, sizeof src);
	if (!src[0])
		return;
	creto_err e;
	creto_err_clear(&e);
	size_t n = 0;
	if (jwks_install(s, src, &n, &e) == CRETO_OK) {
		slog(s, "serve", CRETO_SERVE_LOG_INFO, "event=jwks_installed path=%s keys=%zu", src, n);
		return;
	}
	audit_ev(s, "serve", "jwks", "refused", src, e.msg);
	slog(s, "serve", CRETO_SERVE_LOG_ERROR, "event=jwks_refused path=%s msg=\"%s\"", src, e.msg);
	char last[CRETO_SERVE_PATH_MAX];
	creto_jwks *j = NULL;
	creto_err_clear(&e);
	if (snprintf(last, sizeof last, "%s/jwks.json", s->cfg_runtime) < (int)sizeof last &&
	    creto_jwks_load(last, &j, &e) == CRETO_OK && creto_jwks_count(j) > 0) {
		snprintf(s->jwks_path, sizeof s->jwks_path, "%s", last);
		slog(s, "serve", CRETO_SERVE_LOG_WARN, "event=jwks_kept path=%s", last);
	}
	creto_jwks_free(j);
}

/* Verify the installed model-weights version NAME/VERSION at path with
 * `creto model verify --sig` semantics by a key of the model-weights role
 * of the trust root in force (root_version, 0: the newer known), and
 * record it in serve's record when it passes.  Every outcome is audited
 * (serve model-verify ok|refused|failed).  Runs on the watcher thread (or
 * at start, before any thread). */
static int model_verify(creto_serve *s, const char *name, int64_t version, const char *path,
			const char *statement_digest, int64_t root_version)
{
	char subj[160];
	snprintf(subj, sizeof subj, "%s/%lld", name, (long long)version);
	creto_pubkey **keys = NULL;
	size_t nkeys = 0;
	int64_t rv = 0;
	serve_verified v;
	memset(&v, 0, sizeof v);
	creto_err e;
	creto_err_clear(&e);
	int rc = serve_model_keys_load(s->trust, s->state, root_version, &keys, &nkeys, &rv, &e);
	if (rc == CRETO_OK)
		rc = serve_model_verify(path, keys, nkeys, v.keyid, v.digest, &e);
	serve_model_keys_free(keys, nkeys);
	if (rc == CRETO_OK) {
		snprintf(v.name, sizeof v.name, "%s", name);
		v.version = version;
		snprintf(v.statement_digest, sizeof v.statement_digest, "%s", statement_digest);
		rc = serve_verified_add(s->cfg_runtime, &v, &e);
	}
	const char *outcome = rc == CRETO_OK ? "ok" : rc == CRETO_EREJECT ? "refused" : "failed";
	creto_event_field f[] = {{"trust_root_version", NULL, rv}, {"keyid", v.keyid, 0}, {"digest", v.digest, 0}};
	creto_event ev = {"serve", "model-verify", outcome, subj, rc == CRETO_OK ? NULL : e.msg, NULL, f,
			  rc == CRETO_OK ? 3 : 1};
	(void)sink_append(s, &ev);
	if (rc == CRETO_OK)
		slog(s, "serve", CRETO_SERVE_LOG_INFO, "event=model_verified model=%s keyid=%s digest=%s", subj,
		     v.keyid, v.digest);
	else
		slog(s, "serve", CRETO_SERVE_LOG_ERROR,
		     "event=model_refused model=%s outcome=%s msg=\"%s\" routed=no", subj, outcome, e.msg);
	return rc;
}

/* At start: installed current versions of configured models that serve's
 * record does not list (the record lives in runtime_dir, gone after a
 * reboot; or a version installed while serve was not running) are
 * verified now, before anything is routed. */
static int models_verify_installed(creto_serve *s, creto_err *e)
{
	creto_update_model *m = NULL;
	size_t nm = 0;
	int rc = creto_update_models_list(s->state, &m, &nm, e);
	if (rc != CRETO_OK)
		return rc;
	serve_verified *v = NULL;
	size_t nv = 0;
	if ((rc = serve_verified_load(s->cfg_runtime, &v, &nv, e)) != CRETO_OK) {
		free(m);
		return rc;
	}
	int64_t rv = 0, rexp = 0;
	creto_update_ctx_root(s->uctx, &rv, &rexp);
	for (size_t i = 0; i < nm; i++) {
		int configured = 0;
		for (size_t j = 0; j < creto_conf_count(s->cfg->conf) && !configured; j++) {
			const creto_conf_entry *en = creto_conf_at(s->cfg->conf, j);
			configured = !strcmp(en->section, "upstream") && !strcmp(en->name, "model") && en->arg &&
				     !strcmp(en->arg, m[i].name);
		}
		if (configured && !serve_verified_has(v, nv, m[i].name, m[i].version, m[i].statement_digest))
			(void)model_verify(s, m[i].name, m[i].version, m[i].path, m[i].statement_digest, rv);
	}
	free(v);
	free(m);
	return CRETO_OK;
}

/* The configured models that have a verified version still installed
 * (the highest such version is the routable one, published in
 * RUNTIME/routable/NAME for the replicas' restart hook). */
static int verified_models(creto_serve *s, char **names, size_t *n, creto_err *e)
{
	*n = 0;
	serve_verified *v = NULL;
	size_t nv = 0;
	int rc = serve_verified_load(s->cfg_runtime, &v, &nv, e);
	if (rc != CRETO_OK)
		return rc;
	for (size_t i = 0; i < creto_conf_count(s->cfg->conf) && rc == CRETO_OK; i++) {
		const creto_conf_entry *en = creto_conf_at(s->cfg->conf, i);
		if (strcmp(en->section, "upstream") || strcmp(en->name, "model") || en->arg == NULL)
			continue;
		int64_t best = 0;
		for (size_t j = 0; j < nv; j++) {
			if (strcmp(v[j].name, en->arg) || v[j].version <= best)
				continue;
			char dir[CRETO_SERVE_PATH_MAX + 100];
			struct stat st;
			snprintf(dir, sizeof dir, "%s/models/%s/%lld", s->state, v[j].name, (long long)v[j].version);
			if (lstat(dir, &st) == 0 && S_ISDIR(st.st_mode))
				best = v[j].version;
		}
		if (best == 0 || *n >= MODELS_MAX)
			continue;
		rc = serve_routable_write(s->cfg_runtime, en->arg, best, e);
		if (rc == CRETO_OK && (names[(*n)++] = strdup(en->arg)) == NULL)
			rc = creto_err_set(e, CRETO_EOP, "out of memory");
	}
	free(v);
	return rc;
}

static void free_names(char **v, size_t *n)
{
	for (size_t i = 0; i < *n; i++)
		free(v[i]);
	*n = 0;
}

static int same_names(char **a, size_t na, char **b, size_t nb)
{
	if (na != nb)
		return 0;
	for (size_t i = 0; i < na; i++)
		if (strcmp(a[i], b[i]) != 0)
			return 0;
	return 1;
}

/* ---- the gateway ---- */

/* Write the gateway's config (runtime_dir/gateway.conf) for the routed
 * models and the installed policy; parse it first: a file the gateway
 * would refuse is never written. */
static int gw_write_conf(creto_serve *s, creto_serve_config *cfg, char **models, size_t nmodels,
			 const char *policy, creto_gateway_config **parsed, creto_err *e)
{
	memcpy(cfg->jwks_override, s->jwks_path, sizeof cfg->jwks_override);
	char *text = NULL;
	size_t nr = 0;
	int rc = creto_serve_gateway_text(cfg, policy[0] ? policy : NULL, (const char *const *)s->listen,
					  s->nlisten, (const char *const *)models, nmodels, &text, &nr, e);
	if (rc != CRETO_OK)
		return rc;
	creto_gateway_config *gc = NULL;
	rc = creto_gateway_config_parse(text, strlen(text), &gc, e);
	if (rc == CRETO_OK)
		rc = creto_file_write_atomic(s->gw_conf, text, strlen(text), 0600, e);
	free(text);
	if (rc == CRETO_OK && parsed != NULL)
		*parsed = gc;
	else
		creto_gateway_config_free(gc);
	return rc;
}

static void *gw_main(void *arg)
{
	creto_serve *s = arg;
	creto_err e;
	creto_err_clear(&e);
	if (creto_gateway_run(s->gw, &e) != CRETO_OK)
		slog(s, "gateway", CRETO_SERVE_LOG_ERROR, "event=stopped msg=\"%s\"", e.msg);
	poke(s, EV_GW_EXIT);
	return NULL;
}

/* Create the gateway for the routed models (binding its listeners).  The
 * first time, the addresses actually bound are kept so that a restart
 * binds the same ports. */
static int gw_open(creto_serve *s, creto_err *e)
{
	if (s->nrouted == 0)
		return CRETO_OK;
	creto_gateway_config *gc = NULL;
	int rc = gw_write_conf(s, s->cfg, s->routed, s->nrouted, s->policy_path, &gc, e);
	if (rc != CRETO_OK)
		return rc;
	creto_gateway_opts go = {
		.clock = s->o.clock,
		.audit = {sink_submit, s},
		.audit_healthy = admission,
		.audit_healthy_ctx = s,
		.log = gw_log,
		.log_ctx = s,
		.config_path = s->gw_conf,
		.issuer = s->iss,
		.metrics_extra = s->ha != NULL ? hsm_metrics : NULL,
		.metrics_extra_ctx = s,
	};
	rc = creto_gateway_new(gc, &go, &s->gw, e);
	creto_gateway_config_free(gc);
	if (rc != CRETO_OK)
		return rc;
	if (s->nlisten == 0) {
		size_t n = creto_gateway_listener_count(s->gw);
		for (size_t i = 0; i < n && i < GW_LISTEN_MAX; i++) {
			s->listen[i] = strdup(creto_gateway_listener(s->gw, i));
			if (s->listen[i] == NULL)
				return creto_err_set(e, CRETO_EOP, "out of memory");
			s->nlisten++;
		}
	}
	char models[1024] = "";
	for (size_t i = 0; i < s->nrouted; i++)
		snprintf(models + strlen(models), sizeof models - strlen(models), "%s%s", i ? "," : "",
			 s->routed[i]);
	for (size_t i = 0; i < s->nlisten; i++)
		slog(s, "gateway", CRETO_SERVE_LOG_INFO, "event=listening address=%s models=%s", s->listen[i],
		     models);
	return CRETO_OK;
}

static int gw_start(creto_serve *s, creto_err *e)
{
	if (s->gw == NULL)
		return CRETO_OK;
	if (pthread_create(&s->gw_th, NULL, gw_main, s) != 0)
		return creto_err_set(e, CRETO_EOP, "cannot start the gateway thread");
	s->gw_started = 1;
	return CRETO_OK;
}

static void gw_halt(creto_serve *s)
{
	if (s->gw_started) {
		creto_gateway_stop(s->gw);
		pthread_join(s->gw_th, NULL);
		s->gw_started = 0;
		/* its exit was asked for: not a failure to act on */
		atomic_fetch_and(&s->events, ~(unsigned)EV_GW_EXIT);
	}
	creto_gateway_free(s->gw);
	s->gw = NULL;
}

/* The routed model set (or the NHI store) changed: a new gateway on the
 * same addresses.  In-flight requests drain first (drain_timeout). */
static int gw_restart(creto_serve *s, const char *why, creto_err *e)
{
	slog(s, "gateway", CRETO_SERVE_LOG_INFO, "event=restart reason=%s", why);
	gw_halt(s);
	int rc = gw_open(s, e);
	if (rc == CRETO_OK)
		rc = gw_start(s, e);
	audit_ev(s, "serve", "gateway-restart", rc == CRETO_OK ? "ok" : "failed", why,
		 rc == CRETO_OK ? NULL : e->msg);
	return rc;
}

/* ---- the diode watcher ---- */

static void watch_report(void *arg, const creto_diode_event *ev)
{
	creto_serve *s = arg;
	const creto_update_result *r = ev->res;
	int lvl = !strcmp(ev->decision, "applied") || !strcmp(ev->decision, "duplicate")
			  ? CRETO_SERVE_LOG_INFO
			  : CRETO_SERVE_LOG_WARN;
	slog(s, "diode", lvl, "event=%s type=%s name=%s version=%lld rule=%s msg=\"%s\"", ev->decision,
	     r->type[0] ? r->type : "-", r->name[0] ? r->name : "-", (long long)r->version,
	     ev->rule[0] ? ev->rule : "-", ev->msg);
	if (strcmp(ev->decision, "applied") != 0)
		return;
	char pol[CRETO_SERVE_STR_MAX], nhi[CRETO_SERVE_STR_MAX], jwk[CRETO_SERVE_STR_MAX];
	pthread_mutex_lock(&s->mu);
	memcpy(pol, s->cfg->policy_update, sizeof pol);
	memcpy(nhi, s->cfg->nhi_update, sizeof nhi);
	memcpy(jwk, s->cfg->jwks_update, sizeof jwk);
	pthread_mutex_unlock(&s->mu);
	if (!strcmp(r->type, "model-weights")) {
		/* installed by the watcher; routable only once it verified */
		int64_t rv = 0, rexp = 0;
		creto_update_ctx_root(s->uctx, &rv, &rexp);
		(void)model_verify(s, r->name, r->version, r->install_path, r->statement_digest, rv);
		poke(s, EV_MODELS);
	} else if (!strcmp(r->type, "policy") && !strcmp(r->name, pol)) {
		pthread_mutex_lock(&s->mu);
		if (snprintf(s->pending_policy, sizeof s->pending_policy, "%s/policy", r->install_path) >=
		    (int)sizeof s->pending_policy)
			s->pending_policy[0] = '\0';
		pthread_mutex_unlock(&s->mu);
		poke(s, EV_POLICY);
	} else if (!strcmp(r->type, "policy") && !strcmp(r->name, nhi)) {
		pthread_mutex_lock(&s->mu);
		if (snprintf(s->pending_nhi, sizeof s->pending_nhi, "%s/nhi.backup", r->install_path) >=
		    (int)sizeof s->pending_nhi)
			s->pending_nhi[0] = '\0';
		pthread_mutex_unlock(&s->mu);
		poke(s, EV_NHI);
	} else if (!strcmp(r->type, "policy") && !strcmp(r->name, jwk)) {
		pthread_mutex_lock(&s->mu);
		if (snprintf(s->pending_jwks, sizeof s->pending_jwks, "%s/jwks.json", r->install_path) >=
		    (int)sizeof s->pending_jwks)
			s->pending_jwks[0] = '\0';
		pthread_mutex_unlock(&s->mu);
		poke(s, EV_JWKS);
	} else if (!strcmp(r->type, "software-package")) {
		slog(s, "diode", CRETO_SERVE_LOG_INFO,
		     "event=staged name=%s version=%lld path=%s msg=\"run the installer unit on it\"", r->name,
		     (long long)r->version, r->install_path);
	} else if (!strcmp(r->type, "cert-rotation")) {
		slog(s, "trust", CRETO_SERVE_LOG_INFO,
		     "event=rotated version=%lld msg=\"the next package is checked against it\"",
		     (long long)r->version);
	}
}

static void watch_started(void *arg, int64_t version, int64_t expires)
{
	creto_serve *s = arg;
	slog(s, "diode", CRETO_SERVE_LOG_INFO, "event=watching dir=%s trust_root_version=%lld expires=%lld",
	     s->drop, (long long)version, (long long)expires);
}

static void *watch_main(void *arg)
{
	creto_serve *s = arg;
	creto_diode_opts d = {
		.dir = s->drop,
		.trust_path = s->trust,
		.state_dir = s->state,
		.settle_ms = s->settle_ms,
		.clock = s->o.clock,
		.crash = s->o.crash,
		.crash_arg = s->o.crash_arg,
		.started = watch_started,
		.report = watch_report,
		.report_arg = s,
		.stop = s->watch_stop,
		.sink = {sink_append, s},
	};
	creto_err e;
	creto_err_clear(&e);
	if (creto_diode_watch_ctx(s->uctx, &d, &e) != CRETO_OK) {
		slog(s, "diode", CRETO_SERVE_LOG_ERROR, "event=stopped msg=\"%s\"", e.msg);
		poke(s, EV_WATCH_EXIT);
	}
	return NULL;
}

static int watch_start(creto_serve *s, creto_err *e)
{
	creto_stop_handle_reset(s->watch_stop);
	if (pthread_create(&s->watch_th, NULL, watch_main, s) != 0)
		return creto_err_set(e, CRETO_EOP, "cannot start the diode watcher thread");
	s->watch_started = 1;
	return CRETO_OK;
}

static void watch_halt(creto_serve *s)
{
	if (!s->watch_started)
		return;
	creto_stop_handle_stop(s->watch_stop);
	pthread_join(s->watch_th, NULL);
	s->watch_started = 0;
}

/* ---- the isolation monitor ---- */

static void *iso_main(void *arg)
{
	creto_serve *s = arg;
	while (!creto_stop_handle_stopped(s->iso_stop)) {
		pthread_mutex_lock(&s->mu);
		creto_iso_config iso = s->cfg->iso;
		creto_iso_opts io = {.active = s->cfg->active_probes, .route_source = CRETO_ISO_ROUTES_AUTO};
		int64_t interval = s->cfg->isolation_interval_ms;
		pthread_mutex_unlock(&s->mu);
		creto_iso_report *rep = NULL;
		creto_err e;
		creto_err_clear(&e);
		int state;
		char first[512] = "";
		size_t nv = 0;
		if (creto_iso_check(&iso, &io, &rep, &e) != CRETO_OK) {
			state = 1; /* a check that cannot run proves nothing: not isolated */
			snprintf(first, sizeof first, "check failed: %.480s", e.msg);
			nv = 1;
		} else {
			nv = rep->violations;
			state = nv > 0;
			for (size_t i = 0; i < rep->n && !first[0]; i++)
				if (rep->items[i].result == CRETO_ISO_FAIL && !rep->items[i].summary)
					if (snprintf(first, sizeof first, "%s %.400s", rep->items[i].kind, rep->items[i].key) < 0)
						first[0] = '\0';
		}
		creto_iso_report_free(rep);
		if (atomic_exchange(&s->iso_state, state) != state) {
			pthread_mutex_lock(&s->mu);
			snprintf(s->iso_first, sizeof s->iso_first, "%s", first);
			s->iso_violations = nv;
			pthread_mutex_unlock(&s->mu);
			poke(s, EV_ISO);
		}
		struct pollfd p = {creto_stop_handle_fd(s->iso_stop), POLLIN, 0};
		(void)poll(&p, 1, interval > INT_MAX ? INT_MAX : (int)interval);
	}
	return NULL;
}

/* The supervisor's side of an isolation change: audit it, switch the
 * gateway's admission and the watcher. */
static void iso_changed(creto_serve *s)
{
	int state = atomic_load(&s->iso_state);
	pthread_mutex_lock(&s->mu);
	char first[512];
	snprintf(first, sizeof first, "%s", s->iso_first);
	size_t nv = s->iso_violations;
	int refuse = s->cfg->on_violation == CRETO_SERVE_REFUSE;
	pthread_mutex_unlock(&s->mu);
	creto_event_field f[] = {{"violations", NULL, (int64_t)nv}};
	creto_event ev = {"isolation", "state", state ? "violated" : "isolated", NULL,
			  state ? first : NULL, NULL, f, 1};
	(void)sink_append(s, &ev);
	slog(s, "isolation", state ? CRETO_SERVE_LOG_ERROR : CRETO_SERVE_LOG_INFO,
	     "event=%s violations=%zu first=\"%s\"", state ? "violated" : "isolated", nv, first);
	if (state && refuse && !atomic_load(&s->refusing)) {
		atomic_store(&s->refusing, 1);
		audit_ev(s, "serve", "admission", "refusing", "gateway", "isolation");
		slog(s, "serve", CRETO_SERVE_LOG_WARN, "event=refusing msg=\"gateway answers 503, watcher paused\"");
		if (s->watch_started) {
			watch_halt(s);
			s->watch_paused = 1;
			audit_ev(s, "serve", "watcher", "paused", s->cfg->diode_drop, "isolation");
		}
	} else if (!state && atomic_load(&s->refusing)) {
		atomic_store(&s->refusing, 0);
		audit_ev(s, "serve", "admission", "admitting", "gateway", NULL);
		slog(s, "serve", CRETO_SERVE_LOG_INFO, "event=admitting msg=\"isolation restored\"");
		if (s->watch_paused) {
			creto_err e;
			creto_err_clear(&e);
			if (watch_start(s, &e) == CRETO_OK) {
				s->watch_paused = 0;
				audit_ev(s, "serve", "watcher", "resumed", s->cfg->diode_drop, NULL);
			} else {
				slog(s, "serve", CRETO_SERVE_LOG_ERROR, "event=watcher_resume msg=\"%s\"", e.msg);
			}
		}
	}
}

/* ---- updates taking effect ---- */

static void models_changed(creto_serve *s, const char *why)
{
	char *names[MODELS_MAX];
	size_t n = 0;
	creto_err e;
	creto_err_clear(&e);
	if (verified_models(s, names, &n, &e) != CRETO_OK) {
		free_names(names, &n);
		slog(s, "serve", CRETO_SERVE_LOG_ERROR, "event=models msg=\"%s\"", e.msg);
		return;
	}
	if (same_names(names, n, s->routed, s->nrouted)) {
		free_names(names, &n);
		slog(s, "serve", CRETO_SERVE_LOG_INFO,
		     "event=models msg=\"routed models unchanged; replicas pick a new verified version up "
		     "through their restart hook (RUNTIME/routable/NAME)\"");
		return;
	}
	free_names(s->routed, &s->nrouted);
	memcpy(s->routed, names, n * sizeof(char *));
	s->nrouted = n;
	char list[1024] = "";
	for (size_t i = 0; i < n; i++)
		snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? "," : "", names[i]);
	audit_ev(s, "serve", "models-routed", "ok", list, why);
	if (gw_restart(s, why, &e) != CRETO_OK) {
		s->fatal = 1;
		s->fatal_err = e;
	}
}

static void policy_changed(creto_serve *s)
{
	char path[CRETO_SERVE_PATH_MAX];
	pthread_mutex_lock(&s->mu);
	snprintf(path, sizeof path, "%s", s->pending_policy);
	pthread_mutex_unlock(&s->mu);
	creto_err e;
	creto_err_clear(&e);
	int rc = s->nrouted ? gw_write_conf(s, s->cfg, s->routed, s->nrouted, path, NULL, &e) : CRETO_OK;
	if (rc != CRETO_OK) {
		audit_ev(s, "serve", "policy-reload", "refused", path, e.msg);
		slog(s, "serve", CRETO_SERVE_LOG_ERROR, "event=policy_refused path=%s msg=\"%s\"", path, e.msg);
		return;
	}
	snprintf(s->policy_path, sizeof s->policy_path, "%s", path);
	if (s->gw != NULL)
		creto_gateway_reload(s->gw);
	audit_ev(s, "serve", "policy-reload", "ok", path, NULL);
	slog(s, "serve", CRETO_SERVE_LOG_INFO, "event=policy_reload path=%s", path);
}

static void nhi_changed(creto_serve *s)
{
	char path[CRETO_SERVE_PATH_MAX];
	pthread_mutex_lock(&s->mu);
	snprintf(path, sizeof path, "%s", s->pending_nhi);
	pthread_mutex_unlock(&s->mu);
	creto_err e;
	creto_err_clear(&e);
	int rc;
	if (!s->cfg->nhi_wrap_key[0]) {
		rc = creto_err_set(&e, CRETO_EUSAGE, "[nhi] wrap_key not set");
	} else {
		creto_nhi_wrapper w;
		creto_nhi_wrapper_hsm(&w, s->cfg->nhi_wrap_key, &s->ko);
		creto_nhi_backup_info info;
		rc = creto_nhi_backup_restore(path, &w, s->cfg->nhi_store, &info, &e);
	}
	audit_ev(s, "nhi", "restore", rc == CRETO_OK ? "ok" : "failed", path, rc == CRETO_OK ? NULL : e.msg);
	if (rc != CRETO_OK) {
		slog(s, "nhi", CRETO_SERVE_LOG_ERROR, "event=restore_failed path=%s msg=\"%s\"", path, e.msg);
		return;
	}
	slog(s, "nhi", CRETO_SERVE_LOG_INFO, "event=restored path=%s store=%s", path, s->cfg->nhi_store);
	/* the gateway holds the old store file open: a new gateway opens the new one */
	if (s->gw != NULL && gw_restart(s, "nhi-restore", &e) != CRETO_OK) {
		s->fatal = 1;
		s->fatal_err = e;
	}
}

/* A new issuer JWK Set arrived: validated, copied to RUNTIME/jwks.json,
 * and a new gateway resolves tokens against it (the gateway loads its JWKS
 * when it opens).  A set that does not parse, or that the new gateway
 * refuses to open with, is refused and audited, the one in force kept. */
static void jwks_changed(creto_serve *s)
{
	char path[CRETO_SERVE_PATH_MAX];
	pthread_mutex_lock(&s->mu);
	snprintf(path, sizeof path, "%s", s->pending_jwks);
	pthread_mutex_unlock(&s->mu);
	creto_err e;
	creto_err_clear(&e);
	size_t n = 0;
	/* the set in force, to put back if the gateway refuses the new one
	 * (e.g. [gateway] issuer_key not in it) */
	uint8_t *old = NULL;
	size_t oldlen = 0;
	char oldpath[CRETO_SERVE_PATH_MAX];
	memcpy(oldpath, s->jwks_path, sizeof oldpath);
	if (oldpath[0] && creto_file_read(oldpath, JWKS_UPDATE_MAX, &old, &oldlen, &e) != CRETO_OK) {
		free(old);
		old = NULL;
	}
	creto_err_clear(&e);
	int rc = path[0] ? jwks_install(s, path, &n, &e)
			 : creto_err_set(&e, CRETO_EUSAGE, "jwks update: path too long");
	if (rc != CRETO_OK) {
		audit_ev(s, "serve", "jwks", "refused", path, e.msg);
		slog(s, "serve", CRETO_SERVE_LOG_ERROR, "event=jwks_refused path=%s msg=\"%s\" keeping=old", path,
		     e.msg);
		free(old);
		return;
	}
	if (s->gw != NULL && gw_restart(s, "jwks-rotation", &e) != CRETO_OK) {
		/* the gateway would not open with it: the old set back, then the gateway */
		audit_ev(s, "serve", "jwks", "refused", path, e.msg);
		slog(s, "serve", CRETO_SERVE_LOG_ERROR, "event=jwks_refused path=%s msg=\"%s\" keeping=old", path,
		     e.msg);
		creto_err_clear(&e);
		if (old != NULL && creto_file_write_atomic(oldpath, old, oldlen, 0644, &e) == CRETO_OK)
			memcpy(s->jwks_path, oldpath, sizeof s->jwks_path);
		else
			s->jwks_path[0] = '\0'; /* back to the configured [nhi] jwks */
		free(old);
		if (gw_restart(s, "jwks-rollback", &e) != CRETO_OK) {
			s->fatal = 1;
			s->fatal_err = e;
		}
		return;
	}
	free(old);
	creto_event_field f[] = {{"keys", NULL, (int64_t)n}, {"installed", s->jwks_path, 0}};
	creto_event ev = {"serve", "jwks", "ok", path, NULL, NULL, f, 2};
	(void)sink_append(s, &ev);
	slog(s, "serve", CRETO_SERVE_LOG_INFO, "event=jwks_rotated path=%s keys=%zu installed=%s", path, n,
	     s->jwks_path);
}

/* ---- SIGHUP ---- */

static void reload(creto_serve *s)
{
	creto_err e;
	creto_err_clear(&e);
	nf(creto_notify_reloading(s->notify, NULL));
	creto_serve_config *nc = NULL;
	int rc = creto_serve_config_load(s->cfg->path, &nc, &e);
	creto_serve_report rep = {0};
	if (rc == CRETO_OK) {
		creto_serve_check_opts co = {.clock = s->o.clock, .no_keys = 1, .issuer = s->iss};
		rc = creto_serve_check(nc, &co, &rep, &e);
	}
	if (rc == CRETO_OK && s->nrouted)
		rc = gw_write_conf(s, nc, s->routed, s->nrouted, s->policy_path, NULL, &e);
	creto_serve_report_clear(&rep);
	if (rc != CRETO_OK) {
		creto_serve_config_free(nc);
		audit_ev(s, "serve", "reload", "refused", s->cfg->path, e.msg);
		slog(s, "serve", CRETO_SERVE_LOG_ERROR, "event=reload_refused msg=\"%s\" keeping=old", e.msg);
		nf(creto_notify_ready(s->notify, "running (reload refused)", NULL));
		return;
	}
	/* settings that need a restart are kept and named */
	const char *kept = NULL;
	if (strcmp(nc->state_dir, s->cfg->state_dir) || strcmp(nc->trust_root, s->cfg->trust_root) ||
	    strcmp(nc->diode_drop, s->cfg->diode_drop) || strcmp(nc->audit_dir, s->cfg->audit_dir) ||
	    strcmp(nc->audit_checkpoint_key, s->cfg->audit_checkpoint_key) ||
	    strcmp(nc->hsm_module, s->cfg->hsm_module) || strcmp(nc->user, s->cfg->user) ||
	    nc->n_hsm_endpoint != s->cfg->n_hsm_endpoint || nc->hsm_deadline_ms != s->cfg->hsm_deadline_ms ||
	    memcmp(nc->hsm_endpoint, s->cfg->hsm_endpoint, sizeof nc->hsm_endpoint) ||
	    strcmp(nc->runtime_dir, s->cfg->runtime_dir) || strcmp(nc->nhi_store, s->cfg->nhi_store))
		kept = "state, trust, diode, audit, hsm, nhi store, user and runtime_dir changes need a restart";
	/* nc keeps the old values of those */
#define KEEP(f) memcpy(nc->f, s->cfg->f, sizeof nc->f)
	KEEP(state_dir);
	KEEP(trust_root);
	KEEP(diode_drop);
	KEEP(audit_dir);
	KEEP(audit_checkpoint_key);
	KEEP(hsm_module);
	KEEP(hsm_pin_file);
	KEEP(hsm_endpoint);
	nc->n_hsm_endpoint = s->cfg->n_hsm_endpoint;
	nc->hsm_deadline_ms = s->cfg->hsm_deadline_ms;
	KEEP(user);
	KEEP(runtime_dir);
	KEEP(nhi_store);
#undef KEEP
	pthread_mutex_lock(&s->mu);
	creto_serve_config *old = s->cfg;
	s->cfg = nc;
	pthread_mutex_unlock(&s->mu);
	creto_serve_config_free(old);
	if (s->gw != NULL)
		creto_gateway_reload(s->gw);
	audit_ev(s, "serve", "reload", "ok", s->cfg->path, kept);
	slog(s, "serve", kept ? CRETO_SERVE_LOG_WARN : CRETO_SERVE_LOG_INFO, "event=reloaded config=%s%s%s",
	     s->cfg->path, kept ? " kept=\"" : "", kept ? kept : "");
	if (kept)
		slog(s, "serve", CRETO_SERVE_LOG_WARN, "event=reload_partial msg=\"%s\"", kept);
	/* a new on_violation applies to the current state */
	if (atomic_load(&s->iso_state) == 1)
		iso_changed(s);
	nf(creto_notify_ready(s->notify, "running", NULL));
}

/* ---- checkpoints ---- */

static void checkpoint(creto_serve *s, const char *why)
{
	s->last_ckpt_ms = mono_ms();
	if (s->ckpt == NULL)
		return;
	creto_err e;
	creto_err_clear(&e);
	if (creto_audit_sync(s->audit, &e) != CRETO_OK || creto_audit_checkpoint(s->audit, &e) != CRETO_OK) {
		slog(s, "audit", CRETO_SERVE_LOG_ERROR, "event=checkpoint_failed msg=\"%s\"", e.msg);
		return;
	}
	unsigned long long n = atomic_exchange(&s->entries, 0);
	slog(s, "audit", CRETO_SERVE_LOG_INFO, "event=checkpoint reason=%s entries=%llu", why, n);
}

/* ---- open, run, stop ---- */

static int ensure_runtime_dir(const char *dir, creto_err *e)
{
	struct stat st;
	if (stat(dir, &st) == 0) {
		if (!S_ISDIR(st.st_mode))
			return creto_err_set(e, CRETO_EUSAGE, "serve.runtime_dir %s: not a directory", dir);
		return CRETO_OK;
	}
	return creto_mkdir_p(dir, 0750, e);
}

int creto_serve_new(creto_serve_config *cfg, const creto_serve_opts *o, creto_serve **out,
		    creto_err *e)
{
	*out = NULL;
	creto_serve *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		creto_serve_config_free(cfg);
		return creto_err_set(e, CRETO_EOP, "out of memory");
	}
	s->cfg = cfg;
	s->o = *o;
	s->ctl_fd = -1;
	pthread_mutex_init(&s->mu, NULL);
	pthread_mutex_init(&s->evmu, NULL);
	atomic_init(&s->iso_state, -1);
	memcpy(s->drop, cfg->diode_drop, sizeof s->drop);
	memcpy(s->trust, cfg->trust_root, sizeof s->trust);
	memcpy(s->state, cfg->state_dir, sizeof s->state);
	memcpy(s->cfg_runtime, cfg->runtime_dir, sizeof s->cfg_runtime);
	s->settle_ms = (int)cfg->diode_settle_ms;
	memcpy(s->hsm_module, cfg->hsm_module, sizeof s->hsm_module);
	memcpy(s->hsm_pin, cfg->hsm_pin_file, sizeof s->hsm_pin);
	s->ko.module_path = s->hsm_module[0] ? s->hsm_module : NULL;
	s->ko.pin_file = s->hsm_pin[0] ? s->hsm_pin : NULL;
	*out = s;

	creto_serve_report rep;
	creto_serve_check_opts co = {.clock = o->clock};
	int rc = creto_serve_check(cfg, &co, &rep, e);
	for (size_t i = 0; i < rep.n; i++)
		slog(s, "config", rep.v[i].severity == CRETO_SERVE_ERROR ? CRETO_SERVE_LOG_ERROR : CRETO_SERVE_LOG_WARN,
		     "event=problem where=%s msg=\"%s\"", rep.v[i].where, rep.v[i].msg);
	creto_serve_report_clear(&rep);
	if (rc != CRETO_OK)
		return rc;

	s->ctl_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->ctl_fd < 0)
		return creto_err_errno(e, errno, "eventfd");
	if ((rc = creto_stop_handle_new(&s->watch_stop, e)) != CRETO_OK ||
	    (rc = creto_stop_handle_new(&s->iso_stop, e)) != CRETO_OK)
		return rc;
	if ((rc = ensure_runtime_dir(cfg->runtime_dir, e)) != CRETO_OK)
		return rc;
	if (snprintf(s->gw_conf, sizeof s->gw_conf, "%s/gateway.conf", cfg->runtime_dir) >= (int)sizeof s->gw_conf)
		return creto_err_set(e, CRETO_EUSAGE, "serve.runtime_dir: too long");
	{
		char rd[CRETO_SERVE_PATH_MAX + 16];
		snprintf(rd, sizeof rd, "%s/" SERVE_ROUTABLE_DIR, cfg->runtime_dir);
		if (mkdir(rd, 0755) != 0 && errno != EEXIST)
			return creto_err_errno(e, errno, "%s", rd);
	}

	/* keys, then the audit log: everything after this is recorded.  With
	 * [hsm] endpoint lines, the pkcs11: signing keys go through the
	 * failover: opened here, before the sandbox, with no thread left
	 * running (the workers start after it, creto_serve_run) */
	const char *uris[2];
	int ck_i = -1, iss_i = -1;
	size_t nha = serve_hsm_keys(cfg, uris, &ck_i, &iss_i);
	if (nha > 0) {
		creto_event_sink hs = {hsm_sink, s};
		if ((rc = serve_hsm_open(cfg, uris, nha, &hs, &s->ha, e)) != CRETO_OK)
			return creto_err_ctx(e, "hsm.endpoint");
		if (ck_i >= 0 && (rc = creto_hsm_ha_signer(s->ha, (size_t)ck_i, &s->ckpt, e)) != CRETO_OK)
			return creto_err_ctx(e, "audit.checkpoint_key");
		if (iss_i >= 0 && (rc = creto_hsm_ha_signer(s->ha, (size_t)iss_i, &s->iss, e)) != CRETO_OK)
			return creto_err_ctx(e, "gateway.issuer_key");
		for (size_t i = 0; i < creto_hsm_ha_endpoints(s->ha); i++) {
			creto_hsm_ha_endpoint_status es;
			creto_hsm_ha_endpoint_get(s->ha, i, &es);
			slog(s, "hsm", es.up ? CRETO_SERVE_LOG_INFO : CRETO_SERVE_LOG_WARN,
			     "event=endpoint name=%s up=%d active=%d keys=%zu token=%s", es.name, es.up, es.active, nha,
			     creto_hsm_ha_token_label(s->ha));
		}
	}
	if (cfg->audit_checkpoint_key[0] && s->ckpt == NULL &&
	    (rc = creto_keys_open_signer(cfg->audit_checkpoint_key, &s->ko, &s->ckpt, e)) != CRETO_OK)
		return creto_err_ctx(e, "audit.checkpoint_key");
	creto_audit_opts ao = {.clock = o->clock, .signer = s->ckpt, .size_budget = (uint64_t)cfg->audit_budget};
	if ((rc = creto_audit_open(cfg->audit_dir, &ao, &s->audit, e)) != CRETO_OK)
		return creto_err_ctx(e, "audit.dir");
	audit_ev(s, "serve", "start", "ok", cfg->path, NULL);

	/* the state: recovery runs here, an interrupted apply completes or rolls back */
	creto_update_ctx_opts uo = {
		.clock = o->clock,
		.crash = o->crash,
		.crash_arg = o->crash_arg,
		.sink = {sink_append, s},
		.component = "diode",
	};
	if ((rc = creto_update_ctx_open(s->state, s->trust, &uo, &s->uctx, e)) != CRETO_OK)
		return creto_err_ctx(e, "state.dir");

	/* the gateway: only models with an installed, verified version */
	if (cfg->has_gateway) {
		if ((rc = models_verify_installed(s, e)) != CRETO_OK)
			return creto_err_ctx(e, "models");
		installed_policy(s, s->policy_path, sizeof s->policy_path);
		jwks_at_start(s);
		if ((rc = verified_models(s, s->routed, &s->nrouted, e)) != CRETO_OK)
			return rc;
		if (s->nrouted == 0)
			slog(s, "gateway", CRETO_SERVE_LOG_WARN,
			     "event=waiting msg=\"no configured model has a verified version yet; the gateway starts "
			     "when one is installed\"");
		if ((rc = gw_open(s, e)) != CRETO_OK)
			return creto_err_ctx(e, "gateway");
	}
	if (o->notify_socket != NULL && (rc = creto_notify_open(o->notify_socket, &s->notify, e)) != CRETO_OK)
		return rc;
	return CRETO_OK;
}

/* Directory of a file path, for a read-only rule. */
static void dirname_of(const char *p, char *out, size_t cap)
{
	snprintf(out, cap, "%s", p);
	char *sl = strrchr(out, '/');
	if (sl == out)
		out[1] = '\0';
	else if (sl != NULL)
		*sl = '\0';
}

static int sandbox(creto_serve *s, creto_err *e)
{
	creto_serve_config *c = s->cfg;
	creto_sandbox *sb = creto_sandbox_new();
	if (sb == NULL)
		return creto_err_set(e, CRETO_EOP, "out of memory");
	char d[CRETO_SERVE_PATH_MAX];
	int rc = CRETO_OK;
#define RW(p) (rc == CRETO_OK ? (rc = creto_sandbox_allow(sb, (p), CRETO_SANDBOX_RW, e)) : rc)
#define RO(p) (rc == CRETO_OK ? (rc = creto_sandbox_allow(sb, (p), CRETO_SANDBOX_RO, e)) : rc)
#define RO_OPT(p) (rc == CRETO_OK ? (rc = creto_sandbox_allow(sb, (p), CRETO_SANDBOX_RO | CRETO_SANDBOX_OPTIONAL, e)) : rc)
	RW(c->state_dir);
	RW(c->diode_drop);
	RW(c->audit_dir);
	RW(c->runtime_dir);
	dirname_of(c->nhi_store, d, sizeof d); /* the store is replaced atomically beside itself */
	RW(d);
	dirname_of(c->path, d, sizeof d);
	RO(d);
	RO(c->trust_root);
	if (c->nhi_jwks[0])
		RO(c->nhi_jwks);
	if (c->nhi_backup[0])
		RO(c->nhi_backup);
	if (c->hsm_module[0])
		RO_OPT(c->hsm_module);
	if (c->hsm_pin_file[0])
		RO(c->hsm_pin_file);
	if (s->ha != NULL) {
		/* a down endpoint's probe may load its module again: a module
		 * path, or p11-kit's configurations and the modules they name */
		int kit = 0;
		for (size_t i = 0; i < c->n_hsm_endpoint; i++) {
			creto_hsm_endpoint ep;
			creto_err pe;
			if (creto_hsm_endpoint_parse(c->hsm_endpoint[i], &ep, &pe) != CRETO_OK)
				continue;
			if (ep.module[0] == '/')
				RO_OPT(ep.module);
			else
				kit = 1;
		}
		if (kit) {
			RO_OPT("/etc/pkcs11");
			RO_OPT("/usr/share/p11-kit/modules");
			RO_OPT(P11_KIT_MODULE_DIR);
		}
	}
	if (c->iso.resolv_conf_set)
		RO(c->iso.resolv_conf);
	for (size_t i = 0; i < creto_conf_count(c->conf); i++) {
		const creto_conf_entry *en = creto_conf_at(c->conf, i);
		if ((!strcmp(en->section, "gateway") && (!strcmp(en->name, "policy") || !strcmp(en->name, "jwks"))) ||
		    (!strcmp(en->section, "upstream") && !strcmp(en->name, "key_file")))
			RO(en->str);
		else if (!strcmp(en->section, "gateway") &&
			 (!strcmp(en->name, "nhi_db") || !strcmp(en->name, "tls_cert") || !strcmp(en->name, "tls_key"))) {
			/* the TLS files' directories: a rotation renames new files in (SIGHUP) */
			dirname_of(en->str, d, sizeof d);
			RO(d);
		}
	}
	for (size_t i = 0; i < s->o.n_sandbox_rw; i++)
		RW(s->o.sandbox_rw[i]);
	for (size_t i = 0; i < s->o.n_sandbox_ro; i++)
		RO_OPT(s->o.sandbox_ro[i]);
#undef RW
#undef RO
#undef RO_OPT
	if (rc == CRETO_OK)
		rc = creto_sandbox_allow_base(sb, e);
	if (rc != CRETO_OK) {
		creto_sandbox_free(sb);
		return rc;
	}
	const char *user = s->o.user ? s->o.user : c->user[0] ? c->user : NULL;
	creto_sandbox_opts so = {.user = user, .landlock = c->landlock, .seccomp = c->seccomp};
	creto_sandbox_report r;
	memset(&r, 0, sizeof r);
	rc = creto_sandbox_apply(sb, &so, &r, e);
	creto_sandbox_free(sb);
	for (size_t i = 0; i < r.nwarn; i++)
		slog(s, "sandbox", CRETO_SERVE_LOG_WARN, "event=warning msg=\"%s\"", r.warn[i]);
	if (rc != CRETO_OK)
		return rc;
	slog(s, "sandbox", CRETO_SERVE_LOG_INFO,
	     "event=applied uid=%u gid=%u user_changed=%d landlock_abi=%d landlock=%s rules=%zu seccomp=%s",
	     (unsigned)r.uid, (unsigned)r.gid, r.user_changed, r.landlock_abi,
	     r.landlock_enforced ? "enforced" : "off", r.landlock_rules, r.seccomp_installed ? "on" : "off");
	char f[256];
	snprintf(f, sizeof f, "landlock=%s seccomp=%s uid=%u", r.landlock_enforced ? "enforced" : "off",
		 r.seccomp_installed ? "on" : "off", (unsigned)r.uid);
	audit_ev(s, "serve", "sandbox", "ok", f, NULL);
	return CRETO_OK;
}

static void stop_all(creto_serve *s)
{
	nf(creto_notify_stopping(s->notify, NULL));
	slog(s, "serve", CRETO_SERVE_LOG_INFO, "event=stopping");
	/* order: no new requests or packages, then the monitor, then the log */
	int64_t deadline = mono_ms() + s->cfg->stop_timeout_ms;
	gw_halt(s);
	watch_halt(s);
	if (s->iso_started) {
		creto_stop_handle_stop(s->iso_stop);
		pthread_join(s->iso_th, NULL);
		s->iso_started = 0;
	}
	if (mono_ms() > deadline)
		slog(s, "serve", CRETO_SERVE_LOG_WARN, "event=stop_slow msg=\"components took longer than stop_timeout\"");
	if (s->ha != NULL)
		hsm_events(s);
	audit_ev(s, "serve", "stop", s->fatal ? "failed" : "ok", s->cfg->path, s->fatal ? s->fatal_err.msg : NULL);
	checkpoint(s, "shutdown");
}

static void status(creto_serve *s, int ready)
{
	char st[256], hsm[64] = "";
	if (s->ha != NULL) {
		size_t n = creto_hsm_ha_endpoints(s->ha), up = 0;
		for (size_t i = 0; i < n; i++) {
			creto_hsm_ha_endpoint_status es;
			creto_hsm_ha_endpoint_get(s->ha, i, &es);
			up += es.up != 0;
		}
		snprintf(hsm, sizeof hsm, ", hsm %zu/%zu endpoints up", up, n);
	}
	snprintf(st, sizeof st, "%s: %zu model%s routed, isolation %s%s%s%s", ready ? "running" : "starting",
		 s->nrouted, s->nrouted == 1 ? "" : "s",
		 atomic_load(&s->iso_state) == 1 ? "violated" : atomic_load(&s->iso_state) == 0 ? "ok" : "unknown",
		 atomic_load(&s->refusing) ? ", refusing" : "", s->watch_paused ? ", watcher paused" : "", hsm);
	creto_err e;
	if (ready)
		nf(creto_notify_ready(s->notify, st, &e));
	else
		nf(creto_notify_status(s->notify, st, &e));
}

int creto_serve_run(creto_serve *s, creto_err *e)
{
	int rc = sandbox(s, e);
	if (rc != CRETO_OK)
		return rc;
	/* the HSM endpoints' workers: only now, under the sandbox */
	if (s->ha != NULL && (rc = creto_hsm_ha_start(s->ha, e)) != CRETO_OK)
		goto out;
	hsm_events(s);
	if ((rc = gw_start(s, e)) != CRETO_OK)
		goto out;
	if ((rc = watch_start(s, e)) != CRETO_OK)
		goto out;
	if (pthread_create(&s->iso_th, NULL, iso_main, s) != 0) {
		rc = creto_err_set(e, CRETO_EOP, "cannot start the isolation monitor thread");
		goto out;
	}
	s->iso_started = 1;
	s->last_ckpt_ms = mono_ms();
	checkpoint(s, "start");
	slog(s, "serve", CRETO_SERVE_LOG_INFO, "event=ready models=%zu pid=%ld", s->nrouted, (long)getpid());
	status(s, 1);

	int64_t wd_ms = s->o.watchdog_usec ? (int64_t)(s->o.watchdog_usec / 2000) : 0;
	int64_t next_wd = mono_ms();
	while (!atomic_load(&s->stop_req) && !s->fatal) {
		int64_t now = mono_ms();
		int64_t ck_due = s->last_ckpt_ms + s->cfg->audit_checkpoint_ms;
		int64_t wake = ck_due;
		if (wd_ms && next_wd < wake)
			wake = next_wd;
		int tmo = wake <= now ? 0 : wake - now > 60000 ? 60000 : (int)(wake - now);
		/* at least once a second: the entry count */
		if (tmo > 1000)
			tmo = 1000;
		struct pollfd p = {s->ctl_fd, POLLIN, 0};
		int pr = poll(&p, 1, tmo);
		if (pr > 0) {
			uint64_t v;
			ssize_t r = read(s->ctl_fd, &v, sizeof v);
			(void)r;
		}
		if (atomic_load(&s->stop_req))
			break;
		unsigned ev = atomic_exchange(&s->events, 0);
		if (ev & EV_GW_EXIT && s->gw_started) {
			rc = creto_err_set(e, CRETO_EOP, "the gateway stopped on its own");
			s->fatal = 1;
			s->fatal_err = *e;
			break;
		}
		if (ev & EV_WATCH_EXIT && !s->watch_paused) {
			rc = creto_err_set(e, CRETO_EOP, "the diode watcher stopped on its own");
			s->fatal = 1;
			s->fatal_err = *e;
			break;
		}
		if (atomic_exchange(&s->reload_req, 0))
			reload(s);
		if (ev & EV_ISO)
			iso_changed(s);
		if (ev & EV_POLICY)
			policy_changed(s);
		if (ev & EV_MODELS)
			models_changed(s, "model-weights");
		if (ev & EV_NHI)
			nhi_changed(s);
		if (ev & EV_JWKS)
			jwks_changed(s);
		if (ev & EV_HSM)
			hsm_events(s);
		if (ev)
			status(s, 1);
		now = mono_ms();
		if (now >= s->last_ckpt_ms + s->cfg->audit_checkpoint_ms)
			checkpoint(s, "interval");
		else if ((int64_t)atomic_load(&s->entries) >= s->cfg->audit_checkpoint_entries)
			checkpoint(s, "entries");
		if (s->ha != NULL && now - s->hsm_status_ms >= HSM_STATUS_MS)
			hsm_status_write(s);
		if (wd_ms && now >= next_wd) {
			nf(creto_notify_watchdog(s->notify, NULL));
			next_wd = now + wd_ms;
		}
	}
	if (s->fatal && rc == CRETO_OK) {
		*e = s->fatal_err;
		rc = e->code ? e->code : CRETO_EOP;
	}
out:
	stop_all(s);
	return rc;
}

void creto_serve_free(creto_serve *s)
{
	if (s == NULL)
		return;
	gw_halt(s);
	watch_halt(s);
	if (s->iso_started) {
		creto_stop_handle_stop(s->iso_stop);
		pthread_join(s->iso_th, NULL);
	}
	creto_update_ctx_close(s->uctx);
	creto_audit_close(s->audit);
	creto_signer_free(s->ckpt);
	creto_signer_free(s->iss);
	creto_hsm_ha_close(s->ha); /* after every signer on it */
	free(s->hsm_status);
	creto_notify_close(s->notify);
	creto_stop_handle_free(s->watch_stop);
	creto_stop_handle_free(s->iso_stop);
	free_names(s->routed, &s->nrouted);
	free_names(s->listen, &s->nlisten);
	if (s->ctl_fd >= 0)
		close(s->ctl_fd);
	pthread_mutex_destroy(&s->mu);
	pthread_mutex_destroy(&s->evmu);
	creto_serve_config_free(s->cfg);
	free(s);
}
