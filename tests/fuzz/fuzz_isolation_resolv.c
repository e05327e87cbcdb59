/* fuzz_isolation_resolv.c - the resolv.conf nameserver parser on arbitrary
 * bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "creto/isolation.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static creto_iso_nameservers ns;
	creto_iso_parse_resolv_conf((const char *)data, size, &ns);
	if (ns.n > CRETO_ISO_MAX_ITEMS)
		abort();
	for (size_t i = 0; i < ns.n; i++)
		if ((ns.ns[i].family != AF_INET && ns.ns[i].family != AF_INET6) || ns.ns[i].port != 53)
			abort();
	return 0;
}
