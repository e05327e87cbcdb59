/* fuzz_conf.c - the creto config file parser (util/conf.c) and, through
 * it, the gateway's sections (listen addresses, replica URLs, durations,
 * sizes) on arbitrary bytes.  Every refusal is CRETO_EUSAGE with a one-line
 * message starting "line N: " or naming the section; an accepted file's
 * entries carry line numbers within the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "creto/gateway.h"
#include "util/conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const creto_conf_key k_schema[] = {
	{"a", "s", CRETO_CONF_STR, CRETO_CONF_MULTI, 0, 0},
	{"a", "i", CRETO_CONF_INT, 0, -5, 5},
	{"a", "b", CRETO_CONF_BOOL, 0, 0, 0},
	{"a", "t", CRETO_CONF_MS, 0, 0, 0},
	{"a", "z", CRETO_CONF_BYTES, 0, 0, 0},
	{"a", "p", CRETO_CONF_PATH, 0, 0, 0},
	{"b", "n", CRETO_CONF_STR, CRETO_CONF_NAMED, 0, 0},
	{"c", NULL, CRETO_CONF_STR, 0, 0, 0},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	creto_err e;
	creto_err_clear(&e);
	creto_conf *c = NULL;
	int rc = creto_conf_parse((const char *)data, size, k_schema, sizeof(k_schema) / sizeof(k_schema[0]),
				  &c, &e);
	if (rc == CRETO_OK) {
		size_t lines = 1;
		for (size_t i = 0; i < size; i++)
			lines += data[i] == '\n';
		for (size_t i = 0; i < creto_conf_count(c); i++) {
			const creto_conf_entry *en = creto_conf_at(c, i);
			if (en->line == 0 || en->line > lines)
				abort();
			if (en->key && en->key->type == CRETO_CONF_INT && (en->num < -5 || en->num > 5))
				abort();
		}
		creto_conf_free(c);
	} else if (rc != CRETO_EUSAGE || strncmp(e.msg, "line ", 5) != 0 || strchr(e.msg, '\n')) {
		abort();
	}
	creto_gateway_config *g = NULL;
	creto_err_clear(&e);
	rc = creto_gateway_config_parse((const char *)data, size, &g, &e);
	if (rc == CRETO_OK)
		creto_gateway_config_free(g);
	else if (rc != CRETO_EUSAGE || e.msg[0] == '\0' || strchr(e.msg, '\n'))
		abort();
	return 0;
}
