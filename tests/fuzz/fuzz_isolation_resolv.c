/* fuzz_isolation_resolv.c - the resolv.conf nameserver parser on arbitrary
 * bytes, and (with glibc) creto's inet_aton reading checked against the C
 * library's on the same bytes. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "creto/isolation.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static creto_iso_nameservers ns;
	creto_iso_parse_resolv_conf((const char *)data, size, &ns);
	if (ns.n > CRETO_ISO_MAX_ITEMS || ns.n_glibc > ns.n + ns.n_extra)
		abort();
	for (size_t i = 0; i < ns.n; i++)
		if ((ns.ns[i].family != AF_INET && ns.ns[i].family != AF_INET6) || ns.ns[i].port != 53 ||
		    ns.line[i] == 0 || ns.glibc[i] > 1)
			abort();

	/* The whole input as one nameserver value: creto agrees with glibc's
	 * inet_aton with nothing left over (no blank inside). */
	if (size > 256 || memchr(data, '\0', size) != NULL)
		return 0;
	char s[257];
	memcpy(s, data, size);
	s[size] = '\0';
	uint8_t mine[4];
	int ok_mine = creto_iso_inet_aton_exact(s, size, mine) == 0;
#ifdef __GLIBC__
	struct in_addr lib;
	int ok_lib = inet_aton(s, &lib) != 0 && strpbrk(s, " \t\n\r\v\f") == NULL;
	if (ok_mine != ok_lib || (ok_mine && memcmp(mine, &lib, 4) != 0))
		abort();
#else
	(void)ok_mine;
#endif
	return 0;
}
