/* fuzz_lint_yaml.c - the bounded YAML loader and every lint rule on
 * arbitrary bytes: never a crash, a leak or unbounded work; every finding
 * names a known rule and is one line. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "creto/lint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const regs[] = {"harbor.internal"};
	creto_err e;
	creto_lint *l = creto_lint_new(regs, size % 2, &e);
	if (l == NULL)
		abort();
	/* the same bytes twice: cross-document rules see two files */
	if (creto_lint_add_buffer(l, "a.yaml", data, size, &e) != CRETO_OK ||
	    creto_lint_add_buffer(l, "b.yaml", data, size, &e) != CRETO_OK || creto_lint_run(l, &e) != CRETO_OK)
		abort(); /* only out of memory fails */
	for (size_t i = 0; i < creto_lint_count(l); i++) {
		const creto_lint_finding *f = creto_lint_get(l, i);
		if (creto_lint_rule_find(f->rule->id) != f->rule || strchr(f->message, '\n') != NULL ||
		    f->severity > CRETO_LINT_ERROR)
			abort();
	}
	creto_lint_free(l);
	return 0;
}
