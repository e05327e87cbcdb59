/* fuzz_isolation_config.c - the isolation config parser (key = value) and,
 * through it, the prefix and endpoint parsers, on arbitrary bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "creto/isolation.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static creto_iso_config cfg;
	creto_iso_config_default(&cfg);
	creto_err e;
	creto_err_clear(&e);
	int rc = creto_iso_config_parse(&cfg, (const char *)data, size, &e);
	if (rc != CRETO_OK && rc != CRETO_EUSAGE)
		abort();
	if (rc == CRETO_OK) {
		/* what was accepted must be within bounds and usable */
		if (cfg.n_allow > CRETO_ISO_MAX_ITEMS || cfg.n_canary > CRETO_ISO_MAX_ITEMS ||
		    cfg.n_resolver > CRETO_ISO_MAX_ITEMS || cfg.n_dns_name > CRETO_ISO_MAX_ITEMS)
			abort();
		if (cfg.timeout_ms < 100 || cfg.timeout_ms > CRETO_ISO_TIMEOUT_MAX_MS)
			abort();
		for (size_t i = 0; i < cfg.n_allow; i++) {
			char s[CRETO_ISO_ADDRSTRLEN];
			creto_iso_prefix p;
			creto_iso_prefix_format(&cfg.allow[i], s);
			if (creto_iso_prefix_parse(s, &p) != 0 || memcmp(&p, &cfg.allow[i], sizeof(p)) != 0)
				abort(); /* format and parse round-trip */
		}
		for (size_t i = 0; i < cfg.n_canary; i++) {
			char s[CRETO_ISO_ADDRSTRLEN + 8];
			creto_iso_endpoint ep;
			creto_iso_endpoint_format(&cfg.canary[i], s);
			if (creto_iso_endpoint_parse(s, 0, &ep) != 0 || memcmp(&ep, &cfg.canary[i], sizeof(ep)) != 0)
				abort();
		}
	} else if (e.msg[0] == '\0' || strchr(e.msg, '\n') != NULL) {
		abort();
	}
	return 0;
}
