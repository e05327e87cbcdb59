/* fuzz_isolation_route.c - the /proc/net/route and /proc/net/ipv6_route
 * parsers on arbitrary bytes (the first byte picks the parser). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "creto/isolation.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	creto_iso_routes rs = {0};
	creto_err e;
	creto_err_clear(&e);
	const char *text = (const char *)data + 1;
	int v6 = data[0] & 1;
	int rc = v6 ? creto_iso_parse_proc_ipv6_route(text, size - 1, &rs, &e)
		    : creto_iso_parse_proc_route(text, size - 1, &rs, &e);
	if (rc != CRETO_OK && rc != CRETO_EREJECT)
		abort();
	for (size_t i = 0; i < rs.n; i++) {
		const creto_iso_route *r = &rs.v[i];
		if (r->dst.family != (v6 ? AF_INET6 : AF_INET) || r->dst.len > (v6 ? 128 : 32))
			abort();
		if (memchr(r->dev, '\0', sizeof(r->dev)) == NULL)
			abort();
	}
	creto_iso_routes_free(&rs);
	return 0;
}
