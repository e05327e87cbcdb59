/*
 * cmd_lint.c - `creto lint [--json|--sarif] [--registry R]... FILE|DIR...`:
 * runs the Kubernetes rules of src/lint over YAML files and prints the
 * findings as text, JSON, or SARIF 2.1.0 (docs/lint.md).  Exit 0 when no
 * error-level finding remains, 1 when one does, 2 usage, 3 I/O.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "creto/lint.h"

static const struct cli_cmd lint_cmd = {
	"", NULL, "[--json | --sarif] [--registry R]... FILE|DIR...",
	"check Kubernetes YAML for air-gap and model-integrity mistakes (exit 1 on any error finding)"};
const struct cli_cmd *cmd_lint_table(void) { return &lint_cmd; } /* docs: cli_doc.c */

enum { OPT_JSON = 256, OPT_SARIF, OPT_REGISTRY };

#define SARIF_SCHEMA "https://json.schemastore.org/sarif-2.1.0.json"
#define LINT_DOC_URI "docs/lint.md"

static void print_text(const creto_lint *l)
{
	for (size_t i = 0; i < creto_lint_count(l); i++) {
		const creto_lint_finding *f = creto_lint_get(l, i);
		if (f->line > 0)
			printf("%s:%lu:%lu: ", f->file, f->line, f->column);
		else
			printf("%s: ", f->file);
		printf("%s [%s] %s", creto_lint_severity_name(f->severity), f->rule->id, f->message);
		if (f->object[0] != '\0')
			printf(" (%s)", f->object);
		printf("\n    fix: %s\n", f->rule->fix);
	}
}

static json_t *findings_json(const creto_lint *l, int errors)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < creto_lint_count(l); i++) {
		const creto_lint_finding *f = creto_lint_get(l, i);
		json_array_append_new(arr, json_pack("{s:s, s:I, s:I, s:s, s:s, s:s, s:s, s:s}", "file", f->file,
						     "line", (json_int_t)f->line, "column", (json_int_t)f->column, "rule",
						     f->rule->id, "severity", creto_lint_severity_name(f->severity),
						     "message", f->message, "object", f->object, "fix", f->rule->fix));
	}
	return json_pack("{s:b, s:s, s:i, s:I, s:I, s:I, s:I, s:o}", "ok", !errors, "status",
			 errors ? "rejected" : "ok", "code", errors ? CRETO_EREJECT : CRETO_OK, "files",
			 (json_int_t)creto_lint_files(l), "errors", (json_int_t)creto_lint_count_severity(l, CRETO_LINT_ERROR),
			 "warnings", (json_int_t)creto_lint_count_severity(l, CRETO_LINT_WARNING), "notes",
			 (json_int_t)creto_lint_count_severity(l, CRETO_LINT_NOTE), "findings", arr);
}

/* A file name as a relative URI reference (RFC 3986): unreserved
 * characters and '/' stay, everything else is %XX. */
static char *to_uri(const char *path)
{
	size_t n = strlen(path);
	char *out = malloc(3 * n + 1);
	if (out == NULL)
		return NULL;
	size_t o = 0;
	for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    strchr("-._~/", *p) != NULL) {
			out[o++] = (char)*p;
		} else {
			static const char hex[] = "0123456789ABCDEF";
			out[o++] = '%';
			out[o++] = hex[*p >> 4];
			out[o++] = hex[*p & 15];
		}
	}
	out[o] = '\0';
	return out;
}

static const char *sarif_level(creto_lint_severity s)
{
	return s == CRETO_LINT_ERROR ? "error" : s == CRETO_LINT_WARNING ? "warning" : "note";
}

static json_t *findings_sarif(const creto_lint *l)
{
	size_t nr;
	const creto_lint_rule *rules = creto_lint_rules(&nr);
	json_t *jrules = json_array();
	for (size_t i = 0; i < nr; i++)
		json_array_append_new(
			jrules, json_pack("{s:s, s:s, s:{s:s}, s:{s:s}, s:{s:s}, s:s}", "id", rules[i].id, "name",
					  rules[i].id, "shortDescription", "text", rules[i].summary, "help", "text",
					  rules[i].fix, "defaultConfiguration", "level", sarif_level(rules[i].severity),
					  "helpUri", LINT_DOC_URI));
	json_t *results = json_array();
	for (size_t i = 0; i < creto_lint_count(l); i++) {
		const creto_lint_finding *f = creto_lint_get(l, i);
		char *uri = to_uri(f->file);
		if (uri == NULL) {
			json_decref(results);
			json_decref(jrules);
			return NULL;
		}
		json_t *phys = json_pack("{s:{s:s}}", "artifactLocation", "uri", uri);
		free(uri);
		if (f->line > 0)
			json_object_set_new(phys, "region",
					    f->column > 0 ? json_pack("{s:I, s:I}", "startLine", (json_int_t)f->line,
								      "startColumn", (json_int_t)f->column)
							  : json_pack("{s:I}", "startLine", (json_int_t)f->line));
		json_t *loc = json_pack("{s:o}", "physicalLocation", phys);
		if (f->object[0] != '\0')
			json_object_set_new(loc, "logicalLocations",
					    json_pack("[{s:s, s:s}]", "fullyQualifiedName", f->object, "kind", "resource"));
		json_array_append_new(results,
				      json_pack("{s:s, s:I, s:s, s:{s:s}, s:[o], s:{s:s}}", "ruleId", f->rule->id,
						"ruleIndex", (json_int_t)(f->rule - rules), "level",
						sarif_level(f->severity), "message", "text", f->message, "locations", loc,
						"properties", "fix", f->rule->fix));
	}
	return json_pack("{s:s, s:s, s:[{s:{s:{s:s, s:s, s:s, s:o}}, s:o, s:s}]}", "$schema", SARIF_SCHEMA,
			 "version", "2.1.0", "runs", "tool", "driver", "name", "creto-lint", "version", CRETO_VERSION,
			 "informationUri", LINT_DOC_URI, "rules", jrules, "results", results, "columnKind",
			 "unicodeCodePoints");
}

int cmd_lint(int argc, char **argv)
{
	static const struct option opts[] = {{"json", no_argument, NULL, OPT_JSON},
					     {"sarif", no_argument, NULL, OPT_SARIF},
					     {"registry", required_argument, NULL, OPT_REGISTRY},
					     {NULL, 0, NULL, 0}};
	const char *regs[CRETO_LINT_REGISTRIES_MAX];
	size_t nreg = 0;
	int json = 0, sarif = 0, c;
	/* help only alone: `creto lint -h x.yaml` must never be exit 0 unchecked */
	if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		printf("usage: creto lint %s\n  %s\n", lint_cmd.usage, lint_cmd.help);
		return CRETO_OK;
	}
	optind = 1;
	while ((c = cli_getopt(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case OPT_JSON: json = 1; break;
		case OPT_SARIF: sarif = 1; break;
		case OPT_REGISTRY:
			if (nreg == CRETO_LINT_REGISTRIES_MAX)
				return cli_usage_error("lint: more than %u --registry options", CRETO_LINT_REGISTRIES_MAX);
			regs[nreg++] = optarg;
			break;
		default:
			return cli_usage("lint", &lint_cmd);
		}
	}
	if (json && sarif)
		return cli_usage_error("lint: --json and --sarif exclude each other");
	if (optind >= argc)
		return cli_usage("lint", &lint_cmd);
	creto_err e;
	creto_err_clear(&e);
	creto_lint *l = creto_lint_new(regs, nreg, &e);
	if (l == NULL)
		return cli_fail(&e, json);
	int rc = CRETO_OK;
	for (int i = optind; i < argc && rc == CRETO_OK; i++)
		rc = creto_lint_add_path(l, argv[i], &e);
	if (rc == CRETO_OK)
		rc = creto_lint_run(l, &e);
	if (rc != CRETO_OK) {
		creto_lint_free(l);
		creto_err_ctx(&e, "lint");
		return cli_fail(&e, json);
	}
	size_t errors = creto_lint_count_severity(l, CRETO_LINT_ERROR);
	size_t warnings = creto_lint_count_severity(l, CRETO_LINT_WARNING);
	int out = CRETO_OK;
	if (json) {
		out = cli_json_out(findings_json(l, errors > 0));
	} else if (sarif) {
		json_t *doc = findings_sarif(l);
		if (doc == NULL) {
			fprintf(stderr, "creto: lint: out of memory building SARIF\n");
			out = CRETO_EOP;
		} else {
			out = cli_json_out(doc);
		}
	} else {
		print_text(l);
		if (errors == 0)
			printf("lint: %zu files, 0 errors, %zu warnings\n", creto_lint_files(l), warnings);
		if (fflush(stdout) != 0)
			out = CRETO_EOP;
	}
	if (out == CRETO_OK && errors > 0) {
		fprintf(stderr, "creto: lint: %zu error%s, %zu warning%s in %zu files\n", errors, errors == 1 ? "" : "s",
			warnings, warnings == 1 ? "" : "s", creto_lint_files(l));
		out = CRETO_EREJECT;
	}
	creto_lint_free(l);
	return out;
}
