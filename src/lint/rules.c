/*
 * rules.c - the rules of creto lint (docs/lint.md): vLLM flags and
 * environment, air-gap hygiene (registries, digests, egress, host
 * namespaces), model integrity (read-only model volumes verified by an
 * init container at a pinned version, no path to vLLM around the gateway)
 * and a hardening baseline.  Each rule reads the trees of ydoc.h and
 * reports through lint_report; none allocates more than a container's
 * argument list, and all work is bounded by the loader's limits.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lint/lint_internal.h"

#define ESC 160 /* size of the buffers that hold escaped untrusted text */

/* Count n steps of rule work; 1 once the run's budget is spent. */
static int spend(creto_lint *l, size_t n)
{
	l->work += n;
	if (l->work > LINT_WORK_MAX)
		l->exhausted = 1;
	return l->exhausted;
}

/* ---- objects and workloads ---- */

struct workload {
	const struct lint_obj *o;
	const ynode *pod;    /* the pod spec */
	const ynode *labels; /* the pod's labels (may be NULL) */
	int batch;           /* Job or CronJob: runs to completion, no probes */
	int vllm;            /* has a vLLM container */
};

static int kind_is(const struct lint_obj *o, const char *k)
{
	return strcmp(o->kind, k) == 0;
}

/* The pod spec and labels of a workload kind; 0 when o is not one. */
static int workload_of(const struct lint_obj *o, struct workload *w)
{
	memset(w, 0, sizeof(*w));
	w->o = o;
	const ynode *tmpl = NULL;
	if (kind_is(o, "Pod")) {
		w->pod = yget(o->root, "spec");
		w->labels = ypath(o->root, "metadata", "labels", NULL);
		return 1;
	}
	if (kind_is(o, "Deployment") || kind_is(o, "StatefulSet") || kind_is(o, "DaemonSet") ||
	    kind_is(o, "ReplicaSet") || kind_is(o, "ReplicationController"))
		tmpl = ypath(o->root, "spec", "template", NULL);
	else if (kind_is(o, "Job"))
		tmpl = ypath(o->root, "spec", "template", NULL), w->batch = 1;
	else if (kind_is(o, "CronJob"))
		tmpl = ypath(o->root, "spec", "jobTemplate", "spec", "template", NULL), w->batch = 1;
	else
		return 0;
	w->pod = yget(tmpl, "spec");
	w->labels = ypath(tmpl, "metadata", "labels", NULL);
	return 1;
}

/* ---- command lines ---- */

struct tok {
	const char *p;
	size_t n;
	const ynode *src;
};

struct argv {
	creto_lint *l;
	struct tok *t;
	size_t n, cap;
	int oom;
};

static void argv_add(struct argv *a, const char *p, size_t n, const ynode *src)
{
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 32;
		struct tok *t = realloc(a->t, cap * sizeof(*t));
		if (t == NULL) {
			a->oom = 1;
			return;
		}
		a->t = t;
		a->cap = cap;
	}
	a->t[a->n++] = (struct tok){p, n, src};
}

/* command + args, each element split at white space (a shell command line
 * in one element is read word by word; quotes are not interpreted). */
static void argv_build(creto_lint *l, struct argv *a, const ynode *c)
{
	memset(a, 0, sizeof(*a));
	a->l = l;
	const ynode *lists[2] = {yget(c, "command"), yget(c, "args")};
	for (int li = 0; li < 2; li++)
		for (size_t i = 0; i < yseq_len(lists[li]) && !a->oom; i++) {
			const ynode *el = yseq_at(lists[li], i);
			const char *s = ystr(el);
			if (s == NULL)
				continue;
			const char *end = s + el->n;
			while (s < end && !a->oom) {
				while (s < end && isspace((unsigned char)*s))
					s++;
				const char *w = s;
				while (s < end && !isspace((unsigned char)*s))
					s++;
				if (s > w && !spend(l, 1))
					argv_add(a, w, (size_t)(s - w), el);
			}
		}
}

static int tok_is(const struct tok *t, const char *s)
{
	size_t n = strlen(s);
	return t->n == n && memcmp(t->p, s, n) == 0;
}

/* Index of flag (as "--flag" or "--flag=..."), from index from; -1 if none. */
static long flag_find(const struct argv *a, size_t from, const char *flag)
{
	size_t fl = strlen(flag);
	if (from < a->n && spend(a->l, a->n - from))
		return -1;
	for (size_t i = from; i < a->n; i++)
		if (a->t[i].n >= fl && memcmp(a->t[i].p, flag, fl) == 0 && (a->t[i].n == fl || a->t[i].p[fl] == '='))
			return (long)i;
	return -1;
}

/* The value of the flag at index i into buf (NUL-terminated, cut to fit);
 * NULL when it has none. */
static const char *flag_value(const struct argv *a, size_t i, const char *flag, char *buf, size_t cap)
{
	size_t fl = strlen(flag);
	const char *p;
	size_t n;
	if (a->t[i].n > fl) {
		p = a->t[i].p + fl + 1;
		n = a->t[i].n - fl - 1;
	} else if (i + 1 < a->n) {
		p = a->t[i + 1].p;
		n = a->t[i + 1].n;
	} else {
		return NULL;
	}
	if (n >= cap)
		n = cap - 1;
	memcpy(buf, p, n);
	buf[n] = '\0';
	return buf;
}

static int tok_has(const struct tok *t, const char *needle)
{
	size_t nl = strlen(needle);
	for (size_t i = 0; i + nl <= t->n; i++)
		if (strncasecmp(t->p + i, needle, nl) == 0)
			return 1;
	return 0;
}

/* ---- images ---- */

static int is_public_registry(const char *host, size_t n)
{
	static const char *const pub[] = {"docker.io",       "index.docker.io", "registry-1.docker.io", "ghcr.io",
					  "quay.io",         "gcr.io",          "registry.k8s.io",      "k8s.gcr.io",
					  "nvcr.io",         "public.ecr.aws",  "mcr.microsoft.com",    "registry.gitlab.com",
					  "docker.pkg.github.com", NULL};
	for (const char *const *p = pub; *p; p++)
		if (strlen(*p) == n && strncasecmp(host, *p, n) == 0)
			return 1;
	if (n > 7 && strncasecmp(host + n - 7, ".gcr.io", 7) == 0)
		return 1;
	if (n > 10 && strncasecmp(host + n - 10, ".docker.io", 10) == 0)
		return 1;
	return 0;
}

/* Length of the registry host at the start of an image name, 0 when the
 * name has none (Docker Hub). */
static size_t registry_len(const char *name)
{
	const char *slash = strchr(name, '/');
	if (slash == NULL)
		return 0;
	size_t n = (size_t)(slash - name);
	if (memchr(name, '.', n) || memchr(name, ':', n) || (n == 9 && memcmp(name, "localhost", 9) == 0))
		return n;
	return 0;
}

static int registry_allowed(const creto_lint *l, const char *name)
{
	size_t hn = registry_len(name);
	if (l->nreg == 0)
		return hn != 0 && !is_public_registry(name, hn);
	for (size_t i = 0; i < l->nreg; i++) {
		size_t rl = strlen(l->registries[i]);
		if (strncmp(name, l->registries[i], rl) == 0 && name[rl] == '/')
			return 1;
	}
	return 0;
}

static int is_digest(const char *d)
{
	if (strncmp(d, "sha256:", 7) != 0 || strlen(d + 7) != 64)
		return 0;
	for (const char *p = d + 7; *p; p++)
		if (!isdigit((unsigned char)*p) && !(*p >= 'a' && *p <= 'f'))
			return 0;
	return 1;
}

static void check_image(creto_lint *l, const struct lint_obj *o, const ynode *img, const char *cname)
{
	char b1[ESC], b2[ESC];
	const char *image = ystr(img);
	if (image == NULL) {
		if (img != NULL)
			lint_report(l, o, NULL, img, "manifest-shape", -1, "container '%s': image is not a string",
				    lint_esc(b1, sizeof(b1), cname));
		return;
	}
	const char *at = strchr(image, '@');
	size_t nl = at ? (size_t)(at - image) : strlen(image);
	char *name = strndup(image, nl);
	if (name == NULL) {
		l->oom = 1;
		return;
	}
	if (!registry_allowed(l, name))
		lint_report(l, o, NULL, img, "image-registry", -1, "container '%s': image '%s' is not from %s",
			    lint_esc(b1, sizeof(b1), cname), lint_esc(b2, sizeof(b2), image),
			    l->nreg ? "an allowed registry (--registry)" : "an internal registry");
	if (at == NULL || !is_digest(at + 1))
		lint_report(l, o, NULL, img, "image-digest", -1, "container '%s': image '%s' is not pinned by digest",
			    lint_esc(b1, sizeof(b1), cname), lint_esc(b2, sizeof(b2), image));
	free(name);
}

/* ---- environment ---- */

struct envval {
	const ynode *at;     /* where it is set */
	const char *value;   /* literal value, NULL when from a reference */
	int secret;          /* valueFrom.secretKeyRef / envFrom secretRef */
	int configmap;       /* from a ConfigMap (a literal, just elsewhere) */
	int unresolved;      /* envFrom a ConfigMap or Secret not among the inputs */
};

static int obj_cmp3(const struct lint_obj *x, const char *kind, const char *ns, const char *name)
{
	int c = strcmp(x->kind, kind);
	if (c == 0)
		c = strcmp(x->ns, ns);
	if (c == 0)
		c = strcmp(x->name, name);
	return c;
}

static int index_cmp(const void *a, const void *b)
{
	const struct lint_obj *x = *(const struct lint_obj *const *)a, *y = *(const struct lint_obj *const *)b;
	int c = obj_cmp3(x, y->kind, y->ns, y->name);
	return c ? c : (x < y ? -1 : x > y);
}

/* The first object of kind/ns/name among the inputs, or NULL. */
static const struct lint_obj *find_obj(creto_lint *l, const char *kind, const char *ns, const char *name)
{
	if (name == NULL || l->index == NULL || spend(l, 1))
		return NULL;
	size_t lo = 0, hi = l->nobjs;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (obj_cmp3(l->index[mid], kind, ns, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < l->nobjs && obj_cmp3(l->index[lo], kind, ns, name) == 0 ? l->index[lo] : NULL;
}

/* Where container c gets env var var from: env beats envFrom, later
 * entries beat earlier ones.  0 when it is not set at all. */
static int env_lookup(creto_lint *l, const struct lint_obj *o, const ynode *c, const char *var,
		      struct envval *ev)
{
	memset(ev, 0, sizeof(*ev));
	const ynode *env = yget(c, "env");
	const ynode *ef = yget(c, "envFrom");
	if (spend(l, yseq_len(env) + yseq_len(ef)))
		return 0;
	for (size_t i = yseq_len(env); i-- > 0;) {
		const ynode *it = yseq_at(env, i);
		const char *n = ystr(yget(it, "name"));
		if (n == NULL || strcmp(n, var) != 0)
			continue;
		ev->at = it;
		const ynode *vf = yget(it, "valueFrom");
		if (vf != NULL) {
			ev->secret = yget(vf, "secretKeyRef") != NULL;
			ev->configmap = yget(vf, "configMapKeyRef") != NULL;
			if (ev->configmap) {
				const ynode *ref = yget(vf, "configMapKeyRef");
				const struct lint_obj *cm =
					find_obj(l, "ConfigMap", o->ns, ystr(yget(ref, "name")));
				const char *key = ystr(yget(ref, "key"));
				if (cm != NULL && key != NULL)
					ev->value = ystr(ypath(cm->root, "data", key, NULL));
				else
					ev->unresolved = 1;
			}
		} else {
			ev->value = ystr(yget(it, "value"));
			if (ev->value == NULL)
				ev->value = "";
		}
		return 1;
	}
	for (size_t i = yseq_len(ef); i-- > 0;) {
		const ynode *it = yseq_at(ef, i);
		const char *prefix = ystr(yget(it, "prefix"));
		size_t pl = prefix ? strlen(prefix) : 0;
		if (pl > 0 && strncmp(var, prefix, pl) != 0)
			continue;
		const char *key = var + pl;
		const ynode *ref;
		if ((ref = yget(it, "configMapRef")) != NULL) {
			const struct lint_obj *cm = find_obj(l, "ConfigMap", o->ns, ystr(yget(ref, "name")));
			if (cm == NULL)
				continue;
			const ynode *v = ypath(cm->root, "data", key, NULL);
			if (v != NULL) {
				ev->at = v;
				ev->configmap = 1;
				ev->value = ystr(v) ? ystr(v) : "";
				return 1;
			}
		} else if ((ref = yget(it, "secretRef")) != NULL) {
			const struct lint_obj *s = find_obj(l, "Secret", o->ns, ystr(yget(ref, "name")));
			if (s == NULL || ypath(s->root, "data", key, NULL) || ypath(s->root, "stringData", key, NULL)) {
				/* a Secret made out of band may hold it: assume so */
				if (s != NULL || strcmp(var, "VLLM_API_KEY") == 0) {
					ev->at = it;
					ev->secret = 1;
					return 1;
				}
			}
		}
	}
	return 0;
}

static int env_is(creto_lint *l, const struct lint_obj *o, const ynode *c, const char *var,
		  const char *const *accepted)
{
	struct envval ev;
	if (!env_lookup(l, o, c, var, &ev) || ev.value == NULL)
		return 0;
	for (; *accepted; accepted++)
		if (strcasecmp(ev.value, *accepted) == 0)
			return 1;
	return 0;
}

/* ---- label selectors ---- */

static int label_has(const ynode *labels, const char *k, const char *v)
{
	const char *have = ystr(yget(labels, k));
	return have != NULL && (v == NULL || strcmp(have, v) == 0);
}

struct match_ctx {
	creto_lint *l;
	const ynode *labels;
	int ok;
};

static int match_pair(const ynode *k, const ynode *v, void *ctx)
{
	struct match_ctx *m = ctx;
	if (spend(m->l, 1) || !label_has(m->labels, k->str, ystr(v)) || ystr(v) == NULL) {
		m->ok = 0;
		return 1;
	}
	return 0;
}

/* A plain map selector (Service) against labels: every pair present. */
static int map_selects(creto_lint *l, const ynode *sel, const ynode *labels)
{
	struct match_ctx m = {l, labels, 1};
	ymap_each(sel, match_pair, &m);
	return m.ok;
}

static int in_values(const ynode *values, const char *v)
{
	/* callers paid for the values (bounded by the expressions' sizes) */
	for (size_t i = 0; i < yseq_len(values); i++) {
		const char *s = ystr(yseq_at(values, i));
		if (s != NULL && v != NULL && strcmp(s, v) == 0)
			return 1;
	}
	return 0;
}

/* A LabelSelector (matchLabels + matchExpressions) against labels.
 * An absent or empty selector selects everything. */
static int selector_selects(creto_lint *l, const ynode *sel, const ynode *labels)
{
	if (!map_selects(l, yget(sel, "matchLabels"), labels))
		return 0;
	const ynode *ex = yget(sel, "matchExpressions");
	if (spend(l, yseq_len(ex)))
		return 0;
	for (size_t i = 0; i < yseq_len(ex); i++) {
		const ynode *e = yseq_at(ex, i);
		const char *key = ystr(yget(e, "key")), *op = ystr(yget(e, "operator"));
		if (key == NULL || op == NULL)
			return 0;
		const char *have = ystr(yget(labels, key));
		if (strcmp(op, "In") == 0 && !in_values(yget(e, "values"), have))
			return 0;
		if (strcmp(op, "NotIn") == 0 && have != NULL && in_values(yget(e, "values"), have))
			return 0;
		if (strcmp(op, "Exists") == 0 && have == NULL)
			return 0;
		if (strcmp(op, "DoesNotExist") == 0 && have != NULL)
			return 0;
	}
	return 1;
}

static int selector_empty(const ynode *sel)
{
	const ynode *ml = yget(sel, "matchLabels"), *ex = yget(sel, "matchExpressions");
	return (ml == NULL || ml->type != YN_MAP || ml->n == 0) && yseq_len(ex) == 0 &&
	       (sel == NULL || sel->type == YN_MAP || ystr(sel) == NULL);
}

static int seq_has(const ynode *seq, const char *s)
{
	return in_values(seq, s);
}

/* policyTypes, defaulted as the API server does. */
static int netpol_has_type(const ynode *spec, const char *type)
{
	const ynode *pt = yget(spec, "policyTypes");
	if (pt != NULL)
		return seq_has(pt, type);
	if (strcmp(type, "Ingress") == 0)
		return 1;
	return yget(spec, "egress") != NULL;
}

/* Does this NetworkPolicy deny all egress that leaves the namespace, for
 * all pods of it? */
static int netpol_denies_egress(creto_lint *l, const struct lint_obj *np)
{
	const ynode *spec = yget(np->root, "spec");
	if (spend(l, 1 + yseq_len(yget(spec, "egress"))))
		return 0;
	if (!selector_empty(yget(spec, "podSelector")) || !netpol_has_type(spec, "Egress"))
		return 0;
	const ynode *eg = yget(spec, "egress");
	for (size_t i = 0; i < yseq_len(eg); i++) {
		const ynode *to = yget(yseq_at(eg, i), "to");
		if (yseq_len(to) == 0)
			return 0; /* a rule without "to" allows every destination */
		for (size_t j = 0; j < yseq_len(to); j++) {
			const ynode *peer = yseq_at(to, j);
			if (yget(peer, "ipBlock") || yget(peer, "namespaceSelector") || !yget(peer, "podSelector"))
				return 0;
		}
	}
	return 1;
}

/* ---- paths ---- */

/* Normalised relative path: components joined by '/', no "", "." ; ".."
 * pops.  Writes into buf. */
static void path_norm(char *buf, size_t cap, const char *a, const char *b)
{
	size_t o = 0;
	buf[0] = '\0';
	const char *parts[2] = {a ? a : "", b ? b : ""};
	for (int k = 0; k < 2; k++) {
		const char *p = parts[k];
		while (*p) {
			while (*p == '/')
				p++;
			const char *s = p;
			while (*p && *p != '/')
				p++;
			size_t n = (size_t)(p - s);
			if (n == 0 || (n == 1 && s[0] == '.'))
				continue;
			if (n == 2 && s[0] == '.' && s[1] == '.') {
				while (o > 0 && buf[o - 1] != '/')
					o--;
				if (o > 0)
					o--;
				buf[o] = '\0';
				continue;
			}
			if (o + n + 2 >= cap)
				return;
			if (o > 0)
				buf[o++] = '/';
			memcpy(buf + o, s, n);
			o += n;
			buf[o] = '\0';
		}
	}
}

static int has_component(const char *path, const char *comp)
{
	size_t cl = strlen(comp);
	for (const char *p = path; *p;) {
		while (*p == '/')
			p++;
		const char *s = p;
		while (*p && *p != '/')
			p++;
		if ((size_t)(p - s) == cl && memcmp(s, comp, cl) == 0)
			return 1;
	}
	return 0;
}

/* The volume mount of container c with the longest mountPath that holds
 * path; *rel gets the rest of path.  NULL when none does. */
static const ynode *mount_for(creto_lint *l, const ynode *c, const char *path, const char **rel)
{
	const ynode *best = NULL;
	size_t bestlen = 0;
	const ynode *vm = yget(c, "volumeMounts");
	if (spend(l, yseq_len(vm)))
		return NULL;
	for (size_t i = 0; i < yseq_len(vm); i++) {
		const char *mp = ystr(yget(yseq_at(vm, i), "mountPath"));
		if (mp == NULL)
			continue;
		size_t ml = strlen(mp);
		while (ml > 1 && mp[ml - 1] == '/')
			ml--;
		if (strncmp(path, mp, ml) != 0 || (path[ml] != '\0' && path[ml] != '/' && !(ml == 1 && mp[0] == '/')))
			continue;
		if (best == NULL || ml > bestlen) {
			best = yseq_at(vm, i);
			bestlen = ml;
			*rel = path + ml;
		}
	}
	return best;
}

static const ynode *pod_volume(const ynode *pod, const char *name)
{
	const ynode *vols = yget(pod, "volumes");
	for (size_t i = 0; i < yseq_len(vols); i++) {
		const char *n = ystr(yget(yseq_at(vols, i), "name"));
		if (n != NULL && name != NULL && strcmp(n, name) == 0)
			return yseq_at(vols, i);
	}
	return NULL;
}

static int mount_readonly(const ynode *pod, const ynode *mount)
{
	if (ytrue(yget(mount, "readOnly")))
		return 1;
	const ynode *vol = pod_volume(pod, ystr(yget(mount, "name")));
	return ytrue(ypath(vol, "persistentVolumeClaim", "readOnly", NULL));
}

/* ---- containers ---- */

static int is_vllm(const ynode *c, const struct argv *a)
{
	if (spend(a->l, a->n))
		return 0;
	const char *image = ystr(yget(c, "image"));
	if (image != NULL) {
		const char *at = strchr(image, '@');
		size_t nl = at ? (size_t)(at - image) : strlen(image);
		/* the repository's last component, tag cut off */
		size_t s = nl;
		while (s > 0 && image[s - 1] != '/')
			s--;
		const char *colon = memchr(image + s, ':', nl - s);
		size_t e = colon ? (size_t)(colon - image) : nl;
		for (size_t i = s; i + 4 <= e; i++)
			if (strncasecmp(image + i, "vllm", 4) == 0)
				return 1;
	}
	for (size_t i = 0; i < a->n; i++) {
		const struct tok *t = &a->t[i];
		if (tok_is(t, "vllm") || (t->n > 5 && memcmp(t->p + t->n - 5, "/vllm", 5) == 0) ||
		    tok_has(t, "vllm.entrypoints"))
			return 1;
	}
	return 0;
}

/* The model vLLM serves: --model, or the word after `vllm serve`.  NULL
 * when neither is given. */
static const char *vllm_model(const struct argv *a, char *buf, size_t cap, const ynode **at)
{
	long i = flag_find(a, 0, "--model");
	if (i >= 0) {
		*at = a->t[i].src;
		return flag_value(a, (size_t)i, "--model", buf, cap);
	}
	if (spend(a->l, a->n))
		return NULL;
	for (size_t j = 0; j + 1 < a->n; j++) {
		if (!tok_is(&a->t[j], "serve") || j == 0)
			continue;
		const struct tok *prev = &a->t[j - 1];
		if (!(tok_is(prev, "vllm") || (prev->n > 5 && memcmp(prev->p + prev->n - 5, "/vllm", 5) == 0)))
			continue;
		const struct tok *m = &a->t[j + 1];
		if (m->n > 0 && m->p[0] == '-')
			return NULL;
		size_t n = m->n < cap - 1 ? m->n : cap - 1;
		memcpy(buf, m->p, n);
		buf[n] = '\0';
		*at = m->src;
		return buf;
	}
	return NULL;
}

static const char *cname_of(const ynode *c)
{
	const char *n = ystr(yget(c, "name"));
	return n ? n : "";
}

static void check_vllm_flags(creto_lint *l, const struct lint_obj *o, const ynode *c, const struct argv *a)
{
	char b1[ESC];
	const char *cn = lint_esc(b1, sizeof(b1), cname_of(c));
	long i;
	if ((i = flag_find(a, 0, "--api-key-file")) >= 0)
		lint_report(l, o, NULL, a->t[i].src, "vllm-api-key-file", -1,
			    "container '%s': vLLM has no --api-key-file flag; the container would not start", cn);
	if ((i = flag_find(a, 0, "--api-key")) >= 0)
		lint_report(l, o, NULL, a->t[i].src, "api-key-literal", -1,
			    "container '%s': --api-key puts the key in the manifest and the process list", cn);
	if ((i = flag_find(a, 0, "--trust-remote-code")) >= 0)
		lint_report(l, o, NULL, a->t[i].src, "vllm-trust-remote-code", -1,
			    "container '%s': --trust-remote-code runs code from the model repository", cn);
	if ((i = flag_find(a, 0, "--download-dir")) >= 0)
		lint_report(l, o, NULL, a->t[i].src, "vllm-hub-model", -1,
			    "container '%s': --download-dir: vLLM would download the model", cn);
	char mb[512], b2[ESC];
	const ynode *mat = NULL;
	const char *model = vllm_model(a, mb, sizeof(mb), &mat);
	if (model == NULL)
		lint_report(l, o, NULL, c, "vllm-hub-model", -1,
			    "container '%s': no --model: vLLM would fetch its default model from the hub", cn);
	else if (model[0] != '/')
		lint_report(l, o, NULL, mat, "vllm-hub-model", -1,
			    "container '%s': model '%s' is a hub id, not a local path", cn, lint_esc(b2, sizeof(b2), model));
	if ((i = flag_find(a, 0, "--tokenizer")) >= 0) {
		const char *t = flag_value(a, (size_t)i, "--tokenizer", mb, sizeof(mb));
		if (t != NULL && t[0] != '/')
			lint_report(l, o, NULL, a->t[i].src, "vllm-hub-model", -1,
				    "container '%s': tokenizer '%s' is a hub id, not a local path", cn,
				    lint_esc(b2, sizeof(b2), t));
	}
}

static void check_vllm_env(creto_lint *l, const struct lint_obj *o, const ynode *c)
{
	char b1[ESC];
	const char *cn = lint_esc(b1, sizeof(b1), cname_of(c));
	static const char *const one[] = {"1", NULL};
	static const char *const on[] = {"1", "true", "yes", "on", NULL};
	struct envval ev;
	if (env_lookup(l, o, c, "VLLM_API_KEY", &ev) && !ev.secret)
		lint_report(l, o, NULL, ev.at, "api-key-literal", -1,
			    "container '%s': VLLM_API_KEY is %s, not from a Secret", cn,
			    ev.configmap ? "taken from a ConfigMap" : "written as a literal");
	if (!env_is(l, o, c, "VLLM_NO_USAGE_STATS", one) && !env_is(l, o, c, "DO_NOT_TRACK", one))
		lint_report(l, o, NULL, c, "vllm-usage-stats", -1,
			    "container '%s': neither VLLM_NO_USAGE_STATS=1 nor DO_NOT_TRACK=1 is set", cn);
	int hf = env_is(l, o, c, "HF_HUB_OFFLINE", on), tf = env_is(l, o, c, "TRANSFORMERS_OFFLINE", on);
	if (!hf || !tf)
		lint_report(l, o, NULL, c, "vllm-offline", -1, "container '%s': %s%s%s not set to 1", cn,
			    hf ? "" : "HF_HUB_OFFLINE", !hf && !tf ? " and " : "", tf ? "" : "TRANSFORMERS_OFFLINE");
}

/* `creto model verify DIR ...` in an init container: DIR and whether it
 * checks a signature with a public key, or a manifest against an expected
 * digest.  0 when the container runs no such command. */
static int verify_cmd(const struct argv *a, char *dir, size_t cap, int *signed_check)
{
	if (spend(a->l, a->n))
		return 0;
	for (size_t i = 0; i + 2 < a->n; i++) {
		if (!tok_is(&a->t[i], "model") || !tok_is(&a->t[i + 1], "verify"))
			continue;
		int creto = 0;
		for (size_t j = 0; j < i; j++)
			if (tok_is(&a->t[j], "creto") || (a->t[j].n > 6 && memcmp(a->t[j].p + a->t[j].n - 6, "/creto", 6) == 0))
				creto = 1;
		if (!creto)
			continue;
		static const char *const with_value[] = {"--sig", "--pub", "--manifest", "--expect", "--threads",
							 "--ignore", "--module", "--pin-file", NULL};
		dir[0] = '\0';
		for (size_t j = i + 2; j < a->n; j++) {
			const struct tok *t = &a->t[j];
			if (t->n > 0 && t->p[0] == '-') {
				for (const char *const *w = with_value; *w; w++)
					if (tok_is(t, *w))
						j++;
				continue;
			}
			size_t n = t->n < cap - 1 ? t->n : cap - 1;
			memcpy(dir, t->p, n);
			dir[n] = '\0';
			break;
		}
		int sig = flag_find(a, i, "--sig") >= 0 && flag_find(a, i, "--pub") >= 0;
		int man = flag_find(a, i, "--manifest") >= 0 && flag_find(a, i, "--expect") >= 0;
		*signed_check = sig || man;
		return dir[0] != '\0';
	}
	return 0;
}

/* The model volume of a vLLM container: every mount that holds the model
 * path, each checked for read-only, a pinned version, and an init container
 * that verifies the same volume and path first. */
static void check_model(creto_lint *l, const struct workload *w, const ynode *c, const struct argv *a)
{
	char b1[ESC], b2[ESC], b3[ESC];
	const char *cn = lint_esc(b1, sizeof(b1), cname_of(c));
	char mb[512];
	const ynode *mat = NULL;
	const char *model = vllm_model(a, mb, sizeof(mb), &mat);
	if (model == NULL || model[0] != '/')
		return; /* vllm-hub-model has said it */
	const char *rel = NULL;
	const ynode *mount = mount_for(l, c, model, &rel);
	if (mount == NULL) {
		lint_report(l, w->o, NULL, mat, "model-unverified", -1,
			    "container '%s': model '%s' is on no volume: it is part of the image or downloaded", cn,
			    lint_esc(b2, sizeof(b2), model));
		return;
	}
	const char *vol = ystr(yget(mount, "name"));
	if (!mount_readonly(w->pod, mount))
		lint_report(l, w->o, NULL, mount, "model-volume-writable", -1,
			    "container '%s': model volume '%s' is mounted read-write", cn, lint_esc(b2, sizeof(b2), vol));
	char served[1024];
	path_norm(served, sizeof(served), ystr(yget(mount, "subPath")), rel);
	if (has_component(served, "current") || has_component(model, "current"))
		lint_report(l, w->o, NULL, mat, "model-version-unpinned", -1,
			    "container '%s': model path '%s' on volume '%s' goes through 'current'", cn,
			    lint_esc(b2, sizeof(b2), served), lint_esc(b3, sizeof(b3), vol));
	/* an init container that verifies the same (volume, path) */
	const ynode *inits = yget(w->pod, "initContainers");
	const ynode *mismatch = NULL, *unsigned_check = NULL;
	char other[1024] = "";
	for (size_t i = 0; i < yseq_len(inits); i++) {
		const ynode *ic = yseq_at(inits, i);
		struct argv ia;
		argv_build(l, &ia, ic);
		if (ia.oom)
			l->oom = 1;
		char dir[512];
		int signed_check = 0;
		int found = verify_cmd(&ia, dir, sizeof(dir), &signed_check);
		free(ia.t);
		if (!found)
			continue;
		const char *irel = NULL;
		const ynode *im = mount_for(l, ic, dir, &irel);
		char checked[1024];
		if (im == NULL) {
			mismatch = ic;
			snprintf(other, sizeof(other), "'%s' on no volume", dir);
			continue;
		}
		const char *ivol = ystr(yget(im, "name"));
		path_norm(checked, sizeof(checked), ystr(yget(im, "subPath")), irel);
		if (ivol == NULL || vol == NULL || strcmp(ivol, vol) != 0 || strcmp(checked, served) != 0) {
			mismatch = ic;
			char v1[ESC], v2[ESC];
			snprintf(other, sizeof(other), "'%s' on volume '%s'", lint_esc(v1, sizeof(v1), checked),
				 lint_esc(v2, sizeof(v2), ivol));
			continue;
		}
		if (!signed_check) {
			unsigned_check = ic;
			continue;
		}
		if (!mount_readonly(w->pod, im))
			lint_report(l, w->o, NULL, im, "model-volume-writable", -1,
				    "init container '%s': mounts the model volume '%s' read-write", cname_of(ic),
				    lint_esc(b2, sizeof(b2), vol));
		return;
	}
	if (unsigned_check != NULL)
		lint_report(l, w->o, NULL, unsigned_check, "model-unverified", -1,
			    "container '%s': the init container checks the model without --sig/--pub (or --manifest "
			    "with --expect), which proves nothing",
			    cn);
	else if (mismatch != NULL)
		lint_report(l, w->o, NULL, mismatch, "model-unverified", -1,
			    "container '%s': serves '%s' on volume '%s' but the init container verifies %s", cn,
			    lint_esc(b2, sizeof(b2), served), lint_esc(b3, sizeof(b3), vol), other);
	else
		lint_report(l, w->o, NULL, c, "model-unverified", -1,
			    "container '%s': no init container runs `creto model verify` on model volume '%s'", cn,
			    lint_esc(b2, sizeof(b2), vol));
}

static const ynode *sc_get(const ynode *sc, const ynode *psc, const char *key)
{
	const ynode *v = yget(sc, key);
	return v ? v : yget(psc, key);
}

static void check_hardening(creto_lint *l, const struct workload *w, const ynode *c, int init)
{
	char b1[ESC], b2[ESC];
	const char *cn = lint_esc(b1, sizeof(b1), cname_of(c));
	const ynode *sc = yget(c, "securityContext"), *psc = yget(w->pod, "securityContext");
	if (ytrue(yget(sc, "privileged")))
		lint_report(l, w->o, NULL, yget(sc, "privileged"), "privileged", -1, "container '%s' is privileged", cn);
	const ynode *add = ypath(sc, "capabilities", "add", NULL);
	if (yseq_len(add) > 0)
		lint_report(l, w->o, NULL, add, "capabilities-added", -1, "container '%s' adds capabilities (%s%s)", cn,
			    lint_esc(b2, sizeof(b2), ystr(yseq_at(add, 0))), yseq_len(add) > 1 ? ", ..." : "");
	if (sc == NULL && psc == NULL) {
		lint_report(l, w->o, NULL, c, "no-security-context", -1,
			    "container '%s': neither it nor its pod has a securityContext", cn);
	} else {
		const ynode *ape = yget(sc, "allowPrivilegeEscalation");
		if (ytrue(ape))
			lint_report(l, w->o, NULL, ape, "privilege-escalation", -1,
				    "container '%s': allowPrivilegeEscalation is true", cn);
		else if (!yfalse(ape))
			lint_report(l, w->o, NULL, sc ? sc : c, "privilege-escalation", CRETO_LINT_WARNING,
				    "container '%s': allowPrivilegeEscalation is not set to false", cn);
		const ynode *nonroot = sc_get(sc, psc, "runAsNonRoot"), *uid = sc_get(sc, psc, "runAsUser");
		const char *us = ystr(uid);
		long u = us ? strtol(us, NULL, 10) : -1;
		if (us != NULL && u == 0)
			lint_report(l, w->o, NULL, uid, "run-as-non-root", CRETO_LINT_ERROR,
				    "container '%s': runAsUser is 0 (root)", cn);
		else if (!ytrue(nonroot) && u <= 0)
			lint_report(l, w->o, NULL, sc ? sc : psc, "run-as-non-root", -1,
				    "container '%s': runAsNonRoot is not true and no runAsUser above 0", cn);
		if (!ytrue(yget(sc, "readOnlyRootFilesystem")))
			lint_report(l, w->o, NULL, sc ? sc : c, "writable-root-fs", -1,
				    "container '%s': readOnlyRootFilesystem is not true", cn);
	}
	const ynode *lim = ypath(c, "resources", "limits", NULL);
	int cpu = yget(lim, "cpu") != NULL, mem = yget(lim, "memory") != NULL;
	if (!cpu || !mem)
		lint_report(l, w->o, NULL, c, "resource-limits", -1, "container '%s': no %s%s%s limit", cn,
			    cpu ? "" : "cpu", !cpu && !mem ? " or " : "", mem ? "" : "memory");
	if (!init && !w->batch) {
		int rp = yget(c, "readinessProbe") != NULL, lp = yget(c, "livenessProbe") != NULL;
		if (!rp || !lp)
			lint_report(l, w->o, NULL, c, "probes", -1, "container '%s': no %s%s%s", cn,
				    rp ? "" : "readinessProbe", !rp && !lp ? " and no " : "", lp ? "" : "livenessProbe");
	}
}

static void check_ports(creto_lint *l, const struct workload *w, const ynode *c)
{
	char b1[ESC];
	const ynode *ports = yget(c, "ports");
	for (size_t i = 0; i < yseq_len(ports); i++) {
		const ynode *hp = yget(yseq_at(ports, i), "hostPort");
		if (hp != NULL && ystr(hp) != NULL && strcmp(ystr(hp), "0") != 0)
			lint_report(l, w->o, NULL, hp, "vllm-service-bypass", -1,
				    "container '%s': hostPort exposes vLLM on the node, around the gateway",
				    lint_esc(b1, sizeof(b1), cname_of(c)));
	}
}

static int container_list_ok(creto_lint *l, const struct workload *w, const ynode *list, const char *what)
{
	if (list == NULL)
		return 1;
	int ok = list->type == YN_SEQ;
	for (size_t i = 0; ok && i < list->n; i++)
		ok = list->items[i]->type == YN_MAP;
	if (!ok)
		lint_report(l, w->o, NULL, list, "manifest-shape", -1, "%s is not a list of mappings", what);
	return ok;
}

static void check_workload(creto_lint *l, struct workload *w)
{
	if (w->pod == NULL || w->pod->type != YN_MAP) {
		lint_report(l, w->o, NULL, w->o->root, "manifest-shape", -1, "no pod spec where the kind has one");
		return;
	}
	static const char *const hostns[] = {"hostNetwork", "hostPID", "hostIPC"};
	for (size_t i = 0; i < 3; i++)
		if (ytrue(yget(w->pod, hostns[i])))
			lint_report(l, w->o, NULL, yget(w->pod, hostns[i]), "host-network", -1, "%s is true", hostns[i]);
	const ynode *cs = yget(w->pod, "containers"), *ics = yget(w->pod, "initContainers");
	if (!container_list_ok(l, w, cs, "containers") || !container_list_ok(l, w, ics, "initContainers"))
		return;
	if (yseq_len(cs) == 0)
		lint_report(l, w->o, NULL, w->pod, "manifest-shape", -1, "the pod has no containers");
	for (int init = 1; init >= 0; init--) {
		const ynode *list = init ? ics : cs;
		for (size_t i = 0; i < yseq_len(list); i++) {
			const ynode *c = yseq_at(list, i);
			struct argv a;
			argv_build(l, &a, c);
			if (a.oom)
				l->oom = 1;
			check_image(l, w->o, yget(c, "image"), cname_of(c));
			check_hardening(l, w, c, init);
			if (!init && is_vllm(c, &a)) {
				w->vllm = 1;
				check_vllm_flags(l, w->o, c, &a);
				check_vllm_env(l, w->o, c);
				check_model(l, w, c, &a);
				check_ports(l, w, c);
			}
			free(a.t);
		}
	}
	if (!yfalse(yget(w->pod, "automountServiceAccountToken"))) {
		const char *sa = ystr(yget(w->pod, "serviceAccountName"));
		const struct lint_obj *so = find_obj(l, "ServiceAccount", w->o->ns, sa ? sa : "default");
		if (so == NULL || !yfalse(yget(so->root, "automountServiceAccountToken")))
			lint_report(l, w->o, NULL, w->pod, "automount-token", -1,
				    "automountServiceAccountToken is not false for the pod or its ServiceAccount");
	}
}

/* ---- other kinds ---- */

struct key_ctx {
	creto_lint *l;
	const struct lint_obj *o;
};

static int is_key_name(const char *k)
{
	static const char *const names[] = {"api-key", "api_key", "apikey", NULL};
	for (const char *const *n = names; *n; n++) {
		size_t nl = strlen(*n);
		for (const char *p = k; *p; p++)
			if (strncasecmp(p, *n, nl) == 0)
				return 1;
	}
	return 0;
}

static int configmap_key(const ynode *k, const ynode *v, void *ctx)
{
	struct key_ctx *kc = ctx;
	char b[ESC];
	(void)v;
	if (is_key_name(k->str))
		lint_report(kc->l, kc->o, NULL, k, "api-key-literal", -1, "ConfigMap key '%s' holds an API key",
			    lint_esc(b, sizeof(b), k->str));
	return 0;
}

static void check_secret(creto_lint *l, const struct lint_obj *o)
{
	const ynode *d = yget(o->root, "data"), *sd = yget(o->root, "stringData");
	const ynode *at = (d && d->type == YN_MAP && d->n > 0) ? d : (sd && sd->type == YN_MAP && sd->n > 0) ? sd : NULL;
	if (at != NULL)
		lint_report(l, o, NULL, at, "secret-in-manifest", -1, "the Secret's values are in the manifest");
}

static void check_kustomization(creto_lint *l, const struct lint_obj *o)
{
	char b1[ESC], b2[ESC];
	const ynode *images = yget(o->root, "images");
	for (size_t i = 0; i < yseq_len(images); i++) {
		const ynode *im = yseq_at(images, i);
		const char *name = ystr(yget(im, "name"));
		const char *nn = ystr(yget(im, "newName"));
		const char *digest = ystr(yget(im, "digest"));
		if (nn != NULL && !registry_allowed(l, nn))
			lint_report(l, o, NULL, yget(im, "newName"), "image-registry", -1,
				    "images: newName '%s' is not from %s", lint_esc(b1, sizeof(b1), nn),
				    l->nreg ? "an allowed registry (--registry)" : "an internal registry");
		if (digest == NULL || !is_digest(digest))
			lint_report(l, o, NULL, im, "image-digest", -1, "images: '%s' is set %s, not by digest",
				    lint_esc(b1, sizeof(b1), name),
				    yget(im, "newTag") ? "by tag" : lint_esc(b2, sizeof(b2), "without a digest"));
	}
}

/* Services and NetworkPolicies that open vLLM pods around the gateway. */
static void check_bypass(creto_lint *l, const struct workload *ws, size_t nw)
{
	char b1[ESC], b2[ESC];
	for (size_t i = 0; i < l->nobjs; i++) {
		const struct lint_obj *o = &l->objs[i];
		int svc = kind_is(o, "Service"), np = kind_is(o, "NetworkPolicy");
		if (!svc && !np)
			continue;
		const ynode *spec = yget(o->root, "spec");
		for (size_t j = 0; j < nw; j++) {
			const struct workload *w = &ws[j];
			if (!w->vllm || strcmp(w->o->ns, o->ns) != 0 || spend(l, 1))
				continue;
			if (np) {
				if (!selector_selects(l, yget(spec, "podSelector"), w->labels) ||
				    !netpol_has_type(spec, "Ingress"))
					continue;
				const ynode *ing = yget(spec, "ingress");
				for (size_t k = 0; k < yseq_len(ing); k++) {
					const ynode *from = yget(yseq_at(ing, k), "from");
					if (yseq_len(from) == 0)
						lint_report(l, o, NULL, yseq_at(ing, k), "vllm-service-bypass", -1,
							    "an ingress rule without 'from' opens the vLLM pods of %s '%s' to "
							    "every pod",
							    lint_esc(b1, sizeof(b1), w->o->kind), lint_esc(b2, sizeof(b2), w->o->name));
				}
				continue;
			}
			const ynode *sel = yget(spec, "selector");
			if (sel == NULL || sel->type != YN_MAP || sel->n == 0 || !map_selects(l, sel, w->labels))
				continue;
			const char *type = ystr(yget(spec, "type"));
			if ((type && (strcmp(type, "NodePort") == 0 || strcmp(type, "LoadBalancer") == 0)) ||
			    yseq_len(yget(spec, "externalIPs")) > 0) {
				lint_report(l, o, NULL, type ? yget(spec, "type") : yget(spec, "externalIPs"),
					    "vllm-service-bypass", -1, "exposes the vLLM pods of %s '%s' outside the cluster",
					    lint_esc(b1, sizeof(b1), w->o->kind), lint_esc(b2, sizeof(b2), w->o->name));
				continue;
			}
			int guarded = 0;
			for (size_t k = 0; k < l->nobjs && !guarded; k++) {
				const struct lint_obj *p = &l->objs[k];
				if (spend(l, 1) || !kind_is(p, "NetworkPolicy") || strcmp(p->ns, o->ns) != 0)
					continue;
				const ynode *ps = yget(p->root, "spec");
				guarded = selector_selects(l, yget(ps, "podSelector"), w->labels) && netpol_has_type(ps, "Ingress");
			}
			if (!guarded)
				lint_report(l, o, NULL, sel, "vllm-service-bypass", -1,
					    "selects the vLLM pods of %s '%s' and no NetworkPolicy limits who reaches them",
					    lint_esc(b1, sizeof(b1), w->o->kind), lint_esc(b2, sizeof(b2), w->o->name));
		}
	}
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* by namespace, then input order, so each namespace's first workload leads */
static int ws_ns_cmp(const void *a, const void *b)
{
	const struct workload *x = *(const struct workload *const *)a, *y = *(const struct workload *const *)b;
	int c = strcmp(x->o->ns, y->o->ns);
	return c ? c : (x->o < y->o ? -1 : x->o > y->o);
}

void lint_rules_run(creto_lint *l)
{
	l->index = calloc(l->nobjs ? l->nobjs : 1, sizeof(*l->index));
	if (l->index == NULL) {
		l->oom = 1;
		return;
	}
	for (size_t i = 0; i < l->nobjs; i++)
		l->index[i] = &l->objs[i];
	qsort(l->index, l->nobjs, sizeof(*l->index), index_cmp);
	struct workload *ws = calloc(l->nobjs ? l->nobjs : 1, sizeof(*ws));
	if (ws == NULL) {
		l->oom = 1;
		return;
	}
	size_t nw = 0;
	for (size_t i = 0; i < l->nobjs; i++) {
		const struct lint_obj *o = &l->objs[i];
		if (workload_of(o, &ws[nw])) {
			check_workload(l, &ws[nw]);
			nw++;
		} else if (kind_is(o, "ConfigMap")) {
			struct key_ctx kc = {l, o};
			ymap_each(yget(o->root, "data"), configmap_key, &kc);
		} else if (kind_is(o, "Secret")) {
			check_secret(l, o);
		} else if (kind_is(o, "Kustomization")) {
			check_kustomization(l, o);
		}
	}
	/* one namespace-egress finding per namespace, at its first workload:
	 * the namespaces whose egress is denied, then each workload's
	 * namespace looked up in them */
	const char **denied = calloc(l->nobjs ? l->nobjs : 1, sizeof(*denied));
	const struct workload **byns = calloc(nw ? nw : 1, sizeof(*byns));
	if (denied == NULL || byns == NULL) {
		l->oom = 1;
	} else {
		size_t nd = 0;
		for (size_t k = 0; k < l->nobjs; k++)
			if (kind_is(&l->objs[k], "NetworkPolicy") && netpol_denies_egress(l, &l->objs[k]))
				denied[nd++] = l->objs[k].ns;
		qsort(denied, nd, sizeof(*denied), str_cmp);
		for (size_t i = 0; i < nw; i++)
			byns[i] = &ws[i];
		qsort(byns, nw, sizeof(*byns), ws_ns_cmp);
		for (size_t i = 0; i < nw; i++) {
			const char *ns = byns[i]->o->ns;
			if (i > 0 && strcmp(byns[i - 1]->o->ns, ns) == 0)
				continue;
			char b[ESC];
			if (bsearch(&ns, denied, nd, sizeof(*denied), str_cmp) == NULL)
				lint_report(l, byns[i]->o, NULL, byns[i]->o->root, "namespace-egress", -1,
					    "namespace '%s' has no NetworkPolicy denying egress for all of its pods",
					    lint_esc(b, sizeof(b), ns));
		}
	}
	free(denied);
	free(byns);
	check_bypass(l, ws, nw);
	free(ws);
	if (l->exhausted)
		lint_report(l, NULL, l->nfiles ? l->files[0].name : "", NULL, "yaml", -1,
			    "the rules stopped after %u steps: the input is too large or too repetitive "
			    "(aliases), and is not fully checked",
			    LINT_WORK_MAX);
}
