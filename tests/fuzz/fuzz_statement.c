/* fuzz_statement.c - the update statement parser (src/update/statement.c)
 * and the signatures document parser on arbitrary bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "update/update_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	creto_err e;
	upd_statement st;
	if (upd_statement_parse(data, size, &st, NULL, &e) == CRETO_OK)
		upd_statement_free(&st);
	char type[32];
	(void)!upd_statement_peek_type(data, size, type, &e);
	json_t *j = NULL;
	if (upd_json_parse(data, size, "fuzz", &j, &e) == CRETO_OK) {
		upd_sig *s = NULL;
		size_t n = 0;
		if (upd_sigs_parse(json_object_get(j, "signatures"), "fuzz", &s, &n, &e) == CRETO_OK)
			upd_sigs_free(s, n);
		char *c = NULL;
		if (upd_canon_dump(j, &c, NULL, &e) == CRETO_OK)
			free(c);
		json_decref(j);
	}
	return 0;
}
