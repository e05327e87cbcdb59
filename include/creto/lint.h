/*
 * creto/lint.h - `creto lint`: rules for Kubernetes YAML that catch the
 * mistakes that break an air gap or let vLLM serve an unverified model
 * (docs/lint.md lists every rule).
 *
 * Use: creto_lint_new(), then creto_lint_add_path() / creto_lint_add_buffer()
 * for every input, then creto_lint_run() once, then read the findings.
 * Inputs are untrusted: the YAML loader (libyaml) is bounded in bytes,
 * nodes, alias expansion, nesting and scalar size, and refuses duplicate
 * mapping keys.  A document that breaks a bound or does not parse becomes
 * an error-level finding of rule "yaml" (the file is not linted further);
 * only I/O failures and running out of memory are errors of the call.
 */
#ifndef CRETO_LINT_H
#define CRETO_LINT_H

#include <stddef.h>

#include "creto/error.h"

/* Loader bounds (per file unless noted). */
#define CRETO_LINT_FILE_MAX (8u << 20)        /* bytes of one file */
#define CRETO_LINT_NODES_MAX 500000u          /* YAML nodes of one file, as written */
#define CRETO_LINT_EXPANDED_MAX 1000000u      /* nodes of one file with aliases expanded (a scalar
					       * counts 1 + length/64) */
#define CRETO_LINT_OBJECTS_MAX 20000u         /* Kubernetes objects of one run */
#define CRETO_LINT_DEPTH_MAX 64u              /* nesting of sequences and mappings */
#define CRETO_LINT_SCALAR_MAX (1u << 20)      /* bytes of one scalar */
#define CRETO_LINT_FILES_MAX 10000u           /* files under all DIR arguments */
#define CRETO_LINT_DIR_DEPTH_MAX 16u          /* directory levels below a DIR argument */
#define CRETO_LINT_REGISTRIES_MAX 32u

typedef enum {
	CRETO_LINT_NOTE = 0,
	CRETO_LINT_WARNING = 1,
	CRETO_LINT_ERROR = 2, /* any remaining error-level finding makes `creto lint` exit 1 */
} creto_lint_severity;

/* A rule: its stable id (kebab-case), default severity, a one-line
 * description, and how to fix what it reports. */
typedef struct {
	const char *id;
	creto_lint_severity severity;
	const char *summary;
	const char *fix;
} creto_lint_rule;

typedef struct {
	const char *file;    /* as given (DIR/sub/file.yaml for files found under DIR) */
	unsigned long line;  /* 1-based; 0 when the finding is about the whole file */
	unsigned long column;
	const creto_lint_rule *rule;
	creto_lint_severity severity;
	const char *object;  /* "Kind/namespace/name" or "" */
	const char *message; /* one line; untrusted text from the input is escaped */
} creto_lint_finding;

typedef struct creto_lint creto_lint;

/* The rule table, in the order docs/lint.md lists it; *n gets its size. */
const creto_lint_rule *creto_lint_rules(size_t *n);

/* The rule with this id, or NULL. */
const creto_lint_rule *creto_lint_rule_find(const char *id);

/* A new linter.  registries[0..n) are the allowed image registries
 * ("harbor.internal" or a prefix such as "harbor.internal/creto"); with
 * none, images from Docker Hub and the well-known public registries are
 * refused.  The strings are copied.  NULL with e set (CRETO_EUSAGE for a
 * bad registry, CRETO_EOP when out of memory). */
creto_lint *creto_lint_new(const char *const *registries, size_t n, creto_err *e) CRETO_WUR;

/* Add one file, or every .yaml / .yml file under a directory (sorted,
 * symbolic links not followed, hidden entries skipped).  CRETO_EOP for a
 * path that cannot be read, CRETO_EUSAGE for a FILE that is neither a
 * regular file nor a directory, or over CRETO_LINT_FILES_MAX files. */
int creto_lint_add_path(creto_lint *l, const char *path, creto_err *e) CRETO_WUR CRETO_NONNULL(1, 2);

/* Add YAML text named name (used in findings).  Parsing problems become
 * findings; only out-of-memory is an error (CRETO_EOP). */
int creto_lint_add_buffer(creto_lint *l, const char *name, const void *data, size_t len,
			  creto_err *e) CRETO_WUR CRETO_NONNULL(1, 2);

/* Run every rule over everything added (rules look across documents: a
 * namespace's NetworkPolicies, the ConfigMaps a container's envFrom names,
 * the Services that select vLLM pods).  Call once.  CRETO_EOP when out of
 * memory.  The findings are sorted by file, line, column and rule. */
int creto_lint_run(creto_lint *l, creto_err *e) CRETO_WUR CRETO_NONNULL(1);

size_t creto_lint_count(const creto_lint *l);
/* The i-th finding (i < count); valid until creto_lint_free. */
const creto_lint_finding *creto_lint_get(const creto_lint *l, size_t i);
/* Number of files read and of findings at severity sev. */
size_t creto_lint_files(const creto_lint *l);
size_t creto_lint_count_severity(const creto_lint *l, creto_lint_severity sev);

/* Frees everything; NULL is fine. */
void creto_lint_free(creto_lint *l);

const char *creto_lint_severity_name(creto_lint_severity s); /* "note", "warning", "error" */

#endif
