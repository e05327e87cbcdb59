/* fuzz_isolation_proxy.c - the proxy URL reader (creto_iso_proxy_parse) on
 * arbitrary bytes: never reads past the value, and what it returns is
 * consistent (a judged value has a host, the host never holds userinfo). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "creto/isolation.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 4096)
		return 0;
	char *v = malloc(size + 1);
	if (v == NULL)
		return 0;
	memcpy(v, data, size);
	v[size] = '\0';
	creto_iso_proxy px;
	creto_iso_proxy_parse(v, &px);
	if (px.problem != NULL && (px.family != 0 || px.host[0] != '\0' || px.ambiguity != NULL))
		abort();
	if (px.problem == NULL) {
		if (px.host[0] == '\0' || strchr(px.host, '@') != NULL || strchr(px.host, '/') != NULL ||
		    strchr(px.host, '#') != NULL || strchr(px.host, '?') != NULL)
			abort();
		for (const char *p = px.port; *p; p++)
			if (*p < '0' || *p > '9')
				abort();
	}
	if (px.family != 0 && px.family != AF_INET && px.family != AF_INET6)
		abort();
	free(v);
	return 0;
}
