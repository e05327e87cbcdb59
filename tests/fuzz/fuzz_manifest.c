/* fuzz_manifest.c - the model manifest parser over untrusted bytes: it must
 * never crash, and whatever it accepts must survive a write/parse round
 * trip with the same root digest and resources. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "creto/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	creto_err e;
	creto_model_manifest *m = NULL, *m2 = NULL;
	if (creto_model_manifest_parse(data, size, &m, &e) != CRETO_OK)
		return 0;
	char *js = NULL;
	size_t jl = 0;
	if (creto_model_manifest_json(m, &js, &jl, &e) != CRETO_OK)
		abort();
	if (creto_model_manifest_parse((const uint8_t *)js, jl, &m2, &e) != CRETO_OK)
		abort();
	if (memcmp(creto_model_manifest_root(m), creto_model_manifest_root(m2), 32) != 0 ||
	    creto_model_manifest_count(m) != creto_model_manifest_count(m2))
		abort();
	for (size_t i = 0; i < creto_model_manifest_count(m); i++)
		if (strcmp(creto_model_manifest_resource(m, i, NULL),
			   creto_model_manifest_resource(m2, i, NULL)) != 0)
			abort();
	free(js);
	creto_model_manifest_free(m);
	creto_model_manifest_free(m2);
	return 0;
}
