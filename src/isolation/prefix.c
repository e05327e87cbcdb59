/*
 * prefix.c - IPv4/IPv6 prefixes and endpoints: parsing, containment,
 * formatting.  Everything the isolation checks decide ("is this route or
 * this address internal?") comes down to creto_iso_prefix_within.
 */
#include "creto/isolation.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static void clear_host_bits(creto_iso_prefix *p)
{
	size_t bytes = p->family == AF_INET ? 4 : 16;
	for (size_t i = 0; i < bytes; i++) {
		size_t bit = i * 8;
		if (bit >= p->len)
			p->addr[i] = 0;
		else if (bit + 8 > p->len)
			p->addr[i] &= (uint8_t)(0xffu << (8 - (p->len - bit)));
	}
}

static int parse_addr(const char *s, int *family, uint8_t addr[16])
{
	memset(addr, 0, 16);
	if (inet_pton(AF_INET, s, addr) == 1) {
		*family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, s, addr) == 1) {
		*family = AF_INET6;
		return 0;
	}
	return -1;
}

int creto_iso_prefix_parse(const char *s, creto_iso_prefix *out)
{
	char buf[CRETO_ISO_ADDRSTRLEN];
	size_t n = strlen(s);
	if (n == 0 || n >= sizeof(buf))
		return -1;
	memcpy(buf, s, n + 1);
	char *slash = strchr(buf, '/');
	long len = -1;
	if (slash != NULL) {
		*slash = '\0';
		const char *l = slash + 1;
		if (*l < '0' || *l > '9' || strlen(l) > 3)
			return -1;
		if (l[0] == '0' && l[1] != '\0')
			return -1; /* no leading zeros: "/08" is ambiguous */
		char *end;
		len = strtol(l, &end, 10);
		if (*end != '\0')
			return -1;
	}
	memset(out, 0, sizeof(*out));
	if (parse_addr(buf, &out->family, out->addr) != 0)
		return -1;
	long max = out->family == AF_INET ? 32 : 128;
	if (len < 0)
		len = max;
	if (len > max)
		return -1;
	out->len = (uint8_t)len;
	clear_host_bits(out);
	return 0;
}

int creto_iso_prefix_contains_addr(const creto_iso_prefix *p, int family, const uint8_t *addr)
{
	if (p->family != family)
		return 0;
	size_t full = p->len / 8, rem = p->len % 8;
	if (memcmp(p->addr, addr, full) != 0)
		return 0;
	if (rem == 0)
		return 1;
	uint8_t mask = (uint8_t)(0xffu << (8 - rem));
	return (addr[full] & mask) == p->addr[full];
}

int creto_iso_prefix_within(const creto_iso_prefix *outer, const creto_iso_prefix *inner)
{
	if (outer->family != inner->family || inner->len < outer->len)
		return 0;
	return creto_iso_prefix_contains_addr(outer, inner->family, inner->addr);
}

void creto_iso_prefix_format(const creto_iso_prefix *p, char out[static CRETO_ISO_ADDRSTRLEN])
{
	char a[INET6_ADDRSTRLEN];
	if (inet_ntop(p->family, p->addr, a, sizeof(a)) == NULL)
		snprintf(a, sizeof(a), "?");
	snprintf(out, CRETO_ISO_ADDRSTRLEN, "%s/%u", a, p->len);
}

int creto_iso_endpoint_parse(const char *s, uint16_t default_port, creto_iso_endpoint *out)
{
	char buf[CRETO_ISO_ADDRSTRLEN];
	size_t n = strlen(s);
	if (n == 0 || n >= sizeof(buf))
		return -1;
	memcpy(buf, s, n + 1);
	const char *host = buf, *port = NULL;
	if (buf[0] == '[') {
		char *close = strchr(buf, ']');
		if (close == NULL)
			return -1;
		*close = '\0';
		host = buf + 1;
		if (close[1] == ':')
			port = close + 2;
		else if (close[1] != '\0')
			return -1;
	} else {
		char *colon = strchr(buf, ':');
		/* exactly one colon: IPv4 (or name) with a port; more: bare IPv6 */
		if (colon != NULL && strchr(colon + 1, ':') == NULL) {
			*colon = '\0';
			port = colon + 1;
		}
	}
	memset(out, 0, sizeof(*out));
	if (parse_addr(host, &out->family, out->addr) != 0)
		return -1;
	if (out->family == AF_INET6 && buf[0] != '[' && port != NULL)
		return -1;
	if (port == NULL) {
		if (default_port == 0)
			return -1;
		out->port = default_port;
		return 0;
	}
	if (*port < '1' || *port > '9' || strlen(port) > 5)
		return -1;
	char *end;
	long v = strtol(port, &end, 10);
	if (*end != '\0' || v < 1 || v > 65535)
		return -1;
	out->port = (uint16_t)v;
	return 0;
}

void creto_iso_endpoint_format(const creto_iso_endpoint *ep, char out[static CRETO_ISO_ADDRSTRLEN + 8])
{
	char a[INET6_ADDRSTRLEN];
	if (inet_ntop(ep->family, ep->addr, a, sizeof(a)) == NULL)
		snprintf(a, sizeof(a), "?");
	if (ep->family == AF_INET6)
		snprintf(out, CRETO_ISO_ADDRSTRLEN + 8, "[%s]:%u", a, ep->port);
	else
		snprintf(out, CRETO_ISO_ADDRSTRLEN + 8, "%s:%u", a, ep->port);
}

/* Built-in internal ranges: loopback always, link-local unless disabled. */
static const char *const k_loopback[] = {"127.0.0.0/8", "::1/128"};
static const char *const k_link_local[] = {"169.254.0.0/16", "fe80::/10"};

static int builtin_within(const char *const *list, size_t n, const creto_iso_prefix *p)
{
	for (size_t i = 0; i < n; i++) {
		creto_iso_prefix b;
		if (creto_iso_prefix_parse(list[i], &b) == 0 && creto_iso_prefix_within(&b, p))
			return 1;
	}
	return 0;
}

int creto_iso_prefix_internal(const creto_iso_config *cfg, const creto_iso_prefix *p)
{
	if (builtin_within(k_loopback, 2, p))
		return 1;
	if (cfg->link_local_internal && builtin_within(k_link_local, 2, p))
		return 1;
	for (size_t i = 0; i < cfg->n_allow; i++)
		if (creto_iso_prefix_within(&cfg->allow[i], p))
			return 1;
	return 0;
}

int creto_iso_addr_internal(const creto_iso_config *cfg, int family, const uint8_t *addr)
{
	creto_iso_prefix p;
	memset(&p, 0, sizeof(p));
	p.family = family;
	p.len = family == AF_INET ? 32 : 128;
	memcpy(p.addr, addr, family == AF_INET ? 4 : 16);
	/* IPv4-mapped IPv6 (::ffff:a.b.c.d) is judged as the IPv4 address. */
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	if (family == AF_INET6 && memcmp(addr, mapped, 12) == 0) {
		memset(&p, 0, sizeof(p));
		p.family = AF_INET;
		p.len = 32;
		memcpy(p.addr, addr + 12, 4);
	}
	return creto_iso_prefix_internal(cfg, &p);
}
