/*
 * lint.c - creto lint's inputs and findings (include/creto/lint.h): reading
 * files and directories, loading their YAML documents into objects, the
 * rule table, and the sorted list of findings.  The rules are in rules.c.
 */
#include "creto/lint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lint/lint_internal.h"
#include "util/escape.h"
#include "util/file.h"

/* Work of one run across all files: nodes with aliases expanded. */
#define RUN_EXPANDED_MAX (16u * CRETO_LINT_EXPANDED_MAX)

static const creto_lint_rule k_rules[] = {
	{"yaml", CRETO_LINT_ERROR,
	 "the file is not YAML the linter accepts: a syntax error, a duplicate key, a non-scalar key, or beyond a "
	 "bound (size, nodes, nesting, scalar size, alias expansion)",
	 "correct the YAML at the position given; Kubernetes' own reader would refuse it or read it differently"},
	{"manifest-shape", CRETO_LINT_ERROR,
	 "an object of a known kind whose structure is not what the kind requires, so it cannot be checked",
	 "give the object the structure of its kind (for example containers as a list of mappings)"},
	{"vllm-api-key-file", CRETO_LINT_ERROR, "vLLM has no --api-key-file flag: the container would not start",
	 "remove the flag; give the key to vLLM as env VLLM_API_KEY with valueFrom.secretKeyRef"},
	{"api-key-literal", CRETO_LINT_ERROR,
	 "an API key written into the manifest (--api-key, a literal VLLM_API_KEY, or a ConfigMap holding it)",
	 "keep the key in a Secret and set env VLLM_API_KEY from it with valueFrom.secretKeyRef"},
	{"vllm-trust-remote-code", CRETO_LINT_ERROR,
	 "--trust-remote-code runs Python code shipped inside the model repository",
	 "remove --trust-remote-code; serve only architectures vLLM implements itself"},
	{"vllm-hub-model", CRETO_LINT_ERROR,
	 "vLLM would look for the model on a hub: a model id instead of a local path, --download-dir, or no model",
	 "serve a verified local directory: --model /models/NAME on the read-only model volume; drop --download-dir"},
	{"vllm-usage-stats", CRETO_LINT_ERROR,
	 "a vLLM container without VLLM_NO_USAGE_STATS=1 or DO_NOT_TRACK=1 tries to report usage statistics",
	 "set env VLLM_NO_USAGE_STATS=\"1\" (and DO_NOT_TRACK=\"1\")"},
	{"vllm-offline", CRETO_LINT_ERROR,
	 "a vLLM container without HF_HUB_OFFLINE=1 and TRANSFORMERS_OFFLINE=1 tries to reach the Hugging Face hub",
	 "set env HF_HUB_OFFLINE=\"1\" and TRANSFORMERS_OFFLINE=\"1\""},
	{"image-registry", CRETO_LINT_ERROR, "an image from a registry other than the allowed internal ones",
	 "mirror the image into the internal registry and reference it there (creto lint --registry R)"},
	{"image-digest", CRETO_LINT_ERROR, "an image referenced by tag instead of by digest can change under the same name",
	 "pin the image by digest: REGISTRY/NAME@sha256:<64 hex digits>"},
	{"namespace-egress", CRETO_LINT_ERROR,
	 "a namespace with workloads but no NetworkPolicy that denies egress leaving it for all of its pods",
	 "add a NetworkPolicy with podSelector: {}, policyTypes: [Egress] and no egress rules (or rules only to "
	 "pods of the namespace)"},
	{"host-network", CRETO_LINT_ERROR, "hostNetwork, hostPID or hostIPC puts the pod in the node's namespaces",
	 "remove hostNetwork/hostPID/hostIPC"},
	{"model-volume-writable", CRETO_LINT_ERROR,
	 "a model volume mounted read-write into the serving container (or its verifier)",
	 "mount the model volume with readOnly: true"},
	{"model-unverified", CRETO_LINT_ERROR,
	 "a serving container's model is not first checked by an init container running `creto model verify` on "
	 "the same volume and path with a signature and public key",
	 "add an init container running `creto model verify /models/NAME --sig /models/NAME/model.sig --pub KEY` "
	 "on the same read-only volume mount"},
	{"model-version-unpinned", CRETO_LINT_ERROR,
	 "the model path goes through `current`, which an update can switch between verification and serving",
	 "mount a pinned version: subPath models/NAME/VERSION, never models/NAME/current"},
	{"vllm-service-bypass", CRETO_LINT_ERROR,
	 "vLLM's port is reachable without going through the creto gateway (NodePort/LoadBalancer/external IPs, "
	 "hostPort, or a Service without an ingress NetworkPolicy on the vLLM pods)",
	 "expose vLLM only as a ClusterIP Service and allow ingress to the vLLM pods only from the gateway pods"},
	{"privileged", CRETO_LINT_ERROR, "a privileged container has the node's devices and all capabilities",
	 "remove privileged: true (GPUs come through the device plugin's resource, not privileges)"},
	{"privilege-escalation", CRETO_LINT_ERROR,
	 "allowPrivilegeEscalation is true (error) or not set to false (warning)",
	 "set securityContext.allowPrivilegeEscalation: false"},
	{"run-as-non-root", CRETO_LINT_WARNING,
	 "the container may run as root: runAsNonRoot not true and no runAsUser above 0 (runAsUser 0 is an error)",
	 "set securityContext.runAsNonRoot: true and a runAsUser above 0"},
	{"writable-root-fs", CRETO_LINT_WARNING, "the container's root file system is writable",
	 "set securityContext.readOnlyRootFilesystem: true; mount an emptyDir where it must write"},
	{"capabilities-added", CRETO_LINT_ERROR, "the container adds Linux capabilities",
	 "remove securityContext.capabilities.add; drop ALL"},
	{"resource-limits", CRETO_LINT_WARNING, "the container has no CPU or memory limit",
	 "set resources.limits.cpu and resources.limits.memory"},
	{"probes", CRETO_LINT_WARNING, "a long-running container without a readiness or liveness probe",
	 "add readinessProbe and livenessProbe (vLLM: httpGet /health on its port)"},
	{"automount-token", CRETO_LINT_WARNING,
	 "the pod gets a Kubernetes API token it most likely does not need",
	 "set automountServiceAccountToken: false on the pod (or its ServiceAccount) unless it calls the API"},
	{"no-security-context", CRETO_LINT_WARNING, "neither the pod nor the container has a security context",
	 "add securityContext: runAsNonRoot, runAsUser, allowPrivilegeEscalation: false, "
	 "readOnlyRootFilesystem: true, capabilities.drop: [ALL]"},
	{"secret-in-manifest", CRETO_LINT_WARNING, "a Secret with its values written into the manifest files",
	 "create the Secret out of band (kubectl create secret ... from a file) and keep it out of the repository"},
};

const creto_lint_rule *creto_lint_rules(size_t *n)
{
	*n = sizeof(k_rules) / sizeof(k_rules[0]);
	return k_rules;
}

const creto_lint_rule *creto_lint_rule_find(const char *id)
{
	for (size_t i = 0; i < sizeof(k_rules) / sizeof(k_rules[0]); i++)
		if (strcmp(k_rules[i].id, id) == 0)
			return &k_rules[i];
	return NULL;
}

const char *creto_lint_severity_name(creto_lint_severity s)
{
	switch (s) {
	case CRETO_LINT_ERROR: return "error";
	case CRETO_LINT_WARNING: return "warning";
	default: return "note";
	}
}

const char *lint_esc(char *buf, size_t cap, const char *s)
{
	if (s == NULL)
		s = "(none)";
	size_t n = strlen(s);
	if (n > 200)
		n = 200;
	creto_escape(buf, cap, s, n);
	return buf;
}

static char *obj_label(const struct lint_obj *o)
{
	if (o == NULL)
		return strdup("");
	char k[64], ns[96], name[96];
	char *s = NULL;
	if (asprintf(&s, "%s/%s/%s", lint_esc(k, sizeof(k), o->kind), lint_esc(ns, sizeof(ns), o->ns),
		     lint_esc(name, sizeof(name), o->name)) < 0)
		return NULL;
	return s;
}

void lint_report(creto_lint *l, const struct lint_obj *obj, const char *file, const ynode *at, const char *id,
		 int sev, const char *fmt, ...)
{
	const creto_lint_rule *r = creto_lint_rule_find(id);
	if (r == NULL || l->oom)
		return;
	if (l->nf == l->capf) {
		size_t cap = l->capf ? l->capf * 2 : 32;
		creto_lint_finding *t = realloc(l->f, cap * sizeof(*t));
		if (t == NULL) {
			l->oom = 1;
			return;
		}
		l->f = t;
		l->capf = cap;
	}
	char msg[CRETO_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	creto_lint_finding *f = &l->f[l->nf];
	memset(f, 0, sizeof(*f));
	f->file = obj ? obj->file : file;
	f->line = at ? at->line : 0;
	f->column = at ? at->col : 0;
	f->rule = r;
	f->severity = sev < 0 ? r->severity : (creto_lint_severity)sev;
	char *o = obj_label(obj), *m = strdup(msg);
	if (o == NULL || m == NULL) {
		free(o);
		free(m);
		l->oom = 1;
		return;
	}
	f->object = o;
	f->message = m;
	l->nf++;
}

creto_lint *creto_lint_new(const char *const *registries, size_t n, creto_err *e)
{
	if (n > CRETO_LINT_REGISTRIES_MAX) {
		creto_err_set(e, CRETO_EUSAGE, "lint: more than %u registries", CRETO_LINT_REGISTRIES_MAX);
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		const char *r = registries[i];
		size_t len = strlen(r);
		if (len == 0 || len > 253 || r[0] == '/' || r[len - 1] == '/' || strpbrk(r, "@ \t\r\n") != NULL) {
			char b[128];
			creto_err_set(e, CRETO_EUSAGE, "lint: --registry '%s' is not a registry host or HOST/PATH prefix",
				      lint_esc(b, sizeof(b), r));
			return NULL;
		}
	}
	creto_lint *l = calloc(1, sizeof(*l));
	if (l == NULL)
		goto oom;
	if (n > 0 && (l->registries = calloc(n, sizeof(char *))) == NULL)
		goto oom;
	for (size_t i = 0; i < n; i++) {
		if ((l->registries[i] = strdup(registries[i])) == NULL)
			goto oom;
		l->nreg++;
	}
	return l;
oom:
	creto_lint_free(l);
	creto_err_errno(e, ENOMEM, "lint");
	return NULL;
}

void creto_lint_free(creto_lint *l)
{
	if (l == NULL)
		return;
	for (size_t i = 0; i < l->nreg; i++)
		free(l->registries[i]);
	free(l->registries);
	for (size_t i = 0; i < l->nfiles; i++) {
		free(l->files[i].name);
		ydoc_free(l->files[i].y);
	}
	free(l->files);
	free(l->objs);
	free(l->index);
	for (size_t i = 0; i < l->nf; i++) {
		free((char *)l->f[i].object);
		free((char *)l->f[i].message);
	}
	free(l->f);
	free(l);
}

static int add_obj(creto_lint *l, const char *file, const ynode *root)
{
	if (root == NULL || root->type != YN_MAP)
		return CRETO_OK;
	if (l->nobjs >= CRETO_LINT_OBJECTS_MAX)
		return CRETO_EREJECT;
	if (l->nobjs == l->capobjs) {
		size_t cap = l->capobjs ? l->capobjs * 2 : 32;
		struct lint_obj *t = realloc(l->objs, cap * sizeof(*t));
		if (t == NULL)
			return CRETO_EOP;
		l->objs = t;
		l->capobjs = cap;
	}
	struct lint_obj *o = &l->objs[l->nobjs++];
	o->file = file;
	o->root = root;
	const char *s;
	o->kind = (s = ystr(yget(root, "kind"))) ? s : "";
	o->name = (s = ystr(ypath(root, "metadata", "name", NULL))) ? s : "";
	o->ns = (s = ystr(ypath(root, "metadata", "namespace", NULL))) ? s : "default";
	return CRETO_OK;
}

static unsigned long lead_num(const char **p)
{
	char *end;
	unsigned long v = strtoul(*p, &end, 10);
	if (end == *p || *end != ':')
		return 0;
	*p = end + 1;
	return v;
}

/* A new file entry (name copied); NULL when out of memory. */
static struct lint_file *new_file(creto_lint *l, const char *name)
{
	if (l->nfiles == l->capfiles) {
		size_t cap = l->capfiles ? l->capfiles * 2 : 16;
		struct lint_file *t = realloc(l->files, cap * sizeof(*t));
		if (t == NULL)
			return NULL;
		l->files = t;
		l->capfiles = cap;
	}
	struct lint_file *lf = &l->files[l->nfiles];
	lf->y = NULL;
	if ((lf->name = strdup(name)) == NULL)
		return NULL;
	l->nfiles++;
	return lf;
}

int creto_lint_add_buffer(creto_lint *l, const char *name, const void *data, size_t len, creto_err *e)
{
	struct lint_file *lf = new_file(l, name);
	if (lf == NULL)
		return creto_err_errno(e, ENOMEM, "lint");
	creto_err ye;
	creto_err_clear(&ye);
	int rc = ydoc_load(data, len, &lf->y, &ye);
	if (rc == CRETO_EOP) {
		*e = ye;
		return creto_err_ctx(e, "%s", name);
	}
	if (rc != CRETO_OK) {
		/* "LINE:COL: reason" -> a finding at that line */
		const char *p = ye.msg;
		ynode at;
		memset(&at, 0, sizeof(at));
		at.line = (uint32_t)lead_num(&p);
		at.col = at.line ? (uint32_t)lead_num(&p) : 0;
		while (*p == ' ')
			p++;
		lint_report(l, NULL, lf->name, at.line ? &at : NULL, "yaml", -1, "%s", p);
		return CRETO_OK;
	}
	size_t expanded = 0;
	for (size_t i = 0; i < ydoc_count(lf->y); i++) {
		const ynode *r = ydoc_get(lf->y, i)->root;
		expanded += r ? r->expanded : 0;
	}
	if (l->expanded + expanded > RUN_EXPANDED_MAX) {
		lint_report(l, NULL, lf->name, NULL, "yaml", -1, "alias expansion of all files exceeds %u nodes",
			    RUN_EXPANDED_MAX);
		ydoc_free(lf->y);
		lf->y = NULL;
		return CRETO_OK;
	}
	l->expanded += expanded;
	for (size_t i = 0; i < ydoc_count(lf->y); i++) {
		const ynode *root = ydoc_get(lf->y, i)->root;
		const char *kind = ystr(yget(root, "kind"));
		int arc = CRETO_OK;
		if (kind != NULL && strcmp(kind, "List") == 0) {
			const ynode *items = yget(root, "items");
			for (size_t j = 0; j < yseq_len(items) && arc == CRETO_OK; j++)
				arc = add_obj(l, lf->name, yseq_at(items, j));
		} else {
			arc = add_obj(l, lf->name, root);
		}
		if (arc == CRETO_EOP)
			return creto_err_errno(e, ENOMEM, "lint");
		if (arc == CRETO_EREJECT) {
			lint_report(l, NULL, lf->name, root, "yaml", -1, "more than %u Kubernetes objects in this run",
				    CRETO_LINT_OBJECTS_MAX);
			break;
		}
	}
	return CRETO_OK;
}

static int add_file(creto_lint *l, const char *path, creto_err *e)
{
	uint8_t *data = NULL;
	size_t len = 0;
	int rc = creto_file_read(path, CRETO_LINT_FILE_MAX, &data, &len, e);
	if (rc == CRETO_EREJECT) {
		/* too big, a symbolic link, not a regular file: a finding, like
		 * any other refusal of the file */
		struct lint_file *lf = new_file(l, path);
		if (lf == NULL)
			return creto_err_errno(e, ENOMEM, "lint");
		const char *why = e->msg;
		size_t pl = strlen(path);
		if (strncmp(why, path, pl) == 0 && strncmp(why + pl, ": ", 2) == 0)
			why += pl + 2;
		lint_report(l, NULL, lf->name, NULL, "yaml", -1, "%s", why);
		creto_err_clear(e);
		return CRETO_OK;
	}
	if (rc != CRETO_OK)
		return rc;
	rc = creto_lint_add_buffer(l, path, data, len, e);
	free(data);
	return rc;
}

static int is_yaml_name(const char *n)
{
	size_t len = strlen(n);
	return (len > 5 && strcmp(n + len - 5, ".yaml") == 0) || (len > 4 && strcmp(n + len - 4, ".yml") == 0);
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every .yaml or .yml file under dir, in sorted order, symbolic links skipped.
 * *budget counts the files left. */
static int add_dir(creto_lint *l, const char *dir, unsigned depth, size_t *budget, creto_err *e)
{
	if (depth > CRETO_LINT_DIR_DEPTH_MAX)
		return creto_err_set(e, CRETO_EUSAGE, "%s: more than %u directory levels", dir,
				     CRETO_LINT_DIR_DEPTH_MAX);
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return creto_err_errno(e, errno, "%s", dir);
	DIR *d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return creto_err_errno(e, errno, "%s", dir);
	}
	char **names = NULL;
	size_t n = 0, cap = 0;
	int rc = CRETO_OK;
	struct dirent *de;
	errno = 0;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 32;
			char **t = realloc(names, cap * sizeof(*t));
			if (t == NULL) {
				rc = creto_err_errno(e, ENOMEM, "lint");
				goto out;
			}
			names = t;
		}
		if ((names[n] = strdup(de->d_name)) == NULL) {
			rc = creto_err_errno(e, ENOMEM, "lint");
			goto out;
		}
		n++;
		if (n > 4 * (size_t)CRETO_LINT_FILES_MAX) {
			rc = creto_err_set(e, CRETO_EUSAGE, "%s: too many entries", dir);
			goto out;
		}
	}
	qsort(names, n, sizeof(*names), name_cmp);
	for (size_t i = 0; i < n && rc == CRETO_OK; i++) {
		struct stat st;
		if (fstatat(dirfd(d), names[i], &st, AT_SYMLINK_NOFOLLOW) != 0) {
			rc = creto_err_errno(e, errno, "%s/%s", dir, names[i]);
			break;
		}
		char *path = NULL;
		if (asprintf(&path, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", names[i]) < 0) {
			rc = creto_err_errno(e, ENOMEM, "lint");
			break;
		}
		if (S_ISDIR(st.st_mode)) {
			rc = add_dir(l, path, depth + 1, budget, e);
		} else if (S_ISREG(st.st_mode) && is_yaml_name(names[i])) {
			if (*budget == 0)
				rc = creto_err_set(e, CRETO_EUSAGE, "more than %u files to lint", CRETO_LINT_FILES_MAX);
			else {
				(*budget)--;
				rc = add_file(l, path, e);
			}
		}
		free(path);
	}
out:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(d);
	return rc;
}

int creto_lint_add_path(creto_lint *l, const char *path, creto_err *e)
{
	struct stat st;
	if (strcmp(path, "-") == 0)
		return add_file(l, path, e);
	if (lstat(path, &st) != 0)
		return creto_err_errno(e, errno, "%s", path);
	if (S_ISDIR(st.st_mode)) {
		size_t budget = CRETO_LINT_FILES_MAX;
		for (size_t i = 0; i < l->nfiles; i++)
			if (budget > 0)
				budget--;
		return add_dir(l, path, 0, &budget, e);
	}
	if (S_ISLNK(st.st_mode) && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return creto_err_set(e, CRETO_EUSAGE, "%s: a symbolic link to a directory; name the directory", path);
	/* a FILE argument is read as named (creto_file_read refuses links and
	 * non-regular files) */
	return add_file(l, path, e);
}

static int finding_cmp(const void *a, const void *b)
{
	const creto_lint_finding *x = a, *y = b;
	int c = strcmp(x->file, y->file);
	if (c != 0)
		return c;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	if (x->column != y->column)
		return x->column < y->column ? -1 : 1;
	c = strcmp(x->rule->id, y->rule->id);
	if (c != 0)
		return c;
	return strcmp(x->message, y->message);
}

int creto_lint_run(creto_lint *l, creto_err *e)
{
	if (l->ran)
		return creto_err_set(e, CRETO_EUSAGE, "lint: already run");
	l->ran = 1;
	lint_rules_run(l);
	if (l->oom)
		return creto_err_errno(e, ENOMEM, "lint");
	if (l->nf > 1)
		qsort(l->f, l->nf, sizeof(*l->f), finding_cmp);
	return CRETO_OK;
}

size_t creto_lint_count(const creto_lint *l)
{
	return l ? l->nf : 0;
}

const creto_lint_finding *creto_lint_get(const creto_lint *l, size_t i)
{
	return l && i < l->nf ? &l->f[i] : NULL;
}

size_t creto_lint_files(const creto_lint *l)
{
	return l ? l->nfiles : 0;
}

size_t creto_lint_count_severity(const creto_lint *l, creto_lint_severity sev)
{
	size_t n = 0;
	for (size_t i = 0; l && i < l->nf; i++)
		n += l->f[i].severity == sev;
	return n;
}
