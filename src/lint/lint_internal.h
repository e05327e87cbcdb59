/*
 * lint_internal.h - what lint.c (inputs, findings) and rules.c (the rules)
 * share inside src/lint.  Not a public header.
 */
#ifndef CRETO_LINT_INTERNAL_H
#define CRETO_LINT_INTERNAL_H

#include <stddef.h>

#include "creto/lint.h"
#include "lint/ydoc.h"

/* One Kubernetes object: a document's root mapping (or an item of a List). */
struct lint_obj {
	const char *file;
	const ynode *root;
	const char *kind; /* "" when absent */
	const char *name; /* "" when absent */
	const char *ns;   /* "default" when absent */
};

struct lint_file {
	char *name;
	yfile *y;
};

struct creto_lint {
	char **registries;
	size_t nreg;
	struct lint_file *files;
	size_t nfiles, capfiles;
	struct lint_obj *objs;
	size_t nobjs, capobjs;
	creto_lint_finding *f;
	size_t nf, capf;
	size_t expanded; /* all files so far */
	const struct lint_obj **index; /* objs sorted by kind, namespace, name (rules.c) */
	size_t work;     /* steps the rules took, bounded by LINT_WORK_MAX */
	int exhausted;
	int ran;
	int oom;
};

/* Record a finding of rule id at node at (line/column; may be NULL) of obj's
 * file (or of file when obj is NULL); sev < 0 means the rule's default.
 * The message is printf-formatted; callers escape untrusted text with
 * lint_esc.  Out of memory is remembered (l->oom) and reported by
 * creto_lint_run. */
void lint_report(creto_lint *l, const struct lint_obj *obj, const char *file, const ynode *at,
		 const char *id, int sev, const char *fmt, ...) CRETO_PRINTF(7, 8);

/* Untrusted text s (or "(none)") escaped into buf[cap], cut to fit. */
const char *lint_esc(char *buf, size_t cap, const char *s);

/* The rules' steps over one run: aliases can make a small file name the
 * same container or list many times over, so the rules count their steps
 * and stop with a "yaml" finding beyond this. */
#define LINT_WORK_MAX 50000000u

/* Run every rule over l->objs. */
void lint_rules_run(creto_lint *l);

#endif
