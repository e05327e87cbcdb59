/*
 * parse.c - parsers of the kernel's and the resolver's text files:
 * /proc/net/route, /proc/net/ipv6_route and resolv.conf.  Pure functions
 * over a buffer (fuzzed by tests/fuzz/fuzz_isolation_*.c); they never read
 * files themselves.
 */
#include "creto/isolation.h"
#include "iso_internal.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* Kernel route flags (linux/route.h, include/uapi/linux/ipv6_route.h). */
#define ISO_RTF_UP 0x0001u
#define ISO_RTF_GATEWAY 0x0002u
#define ISO_RTF_REJECT 0x0200u
#define ISO_RTF_ANYCAST 0x00100000u
#define ISO_RTF_LOCAL 0x80000000u

#define MAX_FIELDS 16
#define MAX_LINE 512

void creto_iso_routes_free(creto_iso_routes *r)
{
	if (r == NULL)
		return;
	free(r->v);
	r->v = NULL;
	r->n = r->cap = 0;
}

int iso_routes_push(creto_iso_routes *r, const creto_iso_route *rt, creto_err *e)
{
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;
		creto_iso_route *v = realloc(r->v, cap * sizeof(*v));
		if (v == NULL)
			return creto_err_set(e, CRETO_EOP, "routes: out of memory");
		r->v = v;
		r->cap = cap;
	}
	r->v[r->n++] = *rt;
	return CRETO_OK;
}

/* Split one line into whitespace-separated fields (in place). */
static size_t split(char *line, char *f[MAX_FIELDS])
{
	size_t n = 0;
	char *save = NULL;
	for (char *t = strtok_r(line, " \t\r", &save); t != NULL && n < MAX_FIELDS;
	     t = strtok_r(NULL, " \t\r", &save))
		f[n++] = t;
	return n;
}

/* Exactly ndigits hex digits into *out. */
static int hex_u32(const char *s, size_t ndigits, uint32_t *out)
{
	if (strlen(s) != ndigits || ndigits > 8)
		return -1;
	uint32_t v = 0;
	for (size_t i = 0; i < ndigits; i++) {
		char c = s[i];
		uint32_t d;
		if (c >= '0' && c <= '9')
			d = (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			d = (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			d = (uint32_t)(c - 'A' + 10);
		else
			return -1;
		v = v << 4 | d;
	}
	*out = v;
	return 0;
}

static int hex_bytes16(const char *s, uint8_t out[16])
{
	if (strlen(s) != 32)
		return -1;
	for (size_t i = 0; i < 16; i++) {
		char two[3] = {s[2 * i], s[2 * i + 1], '\0'};
		uint32_t v;
		if (hex_u32(two, 2, &v) != 0)
			return -1;
		out[i] = (uint8_t)v;
	}
	return 0;
}

/* Iterate lines of text; calls fn on each (NUL-terminated copy). */
typedef int (*line_fn)(char *line, size_t lineno, void *ctx, creto_err *e);

static int each_line(const char *text, size_t len, line_fn fn, void *ctx, creto_err *e)
{
	char line[MAX_LINE];
	size_t pos = 0, lineno = 0;
	while (pos < len) {
		lineno++;
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t ll = nl != NULL ? (size_t)(nl - (text + pos)) : len - pos;
		if (ll >= sizeof(line))
			return creto_err_set(e, CRETO_EREJECT, "line %zu: longer than %d bytes", lineno,
					     MAX_LINE - 1);
		memcpy(line, text + pos, ll);
		line[ll] = '\0';
		pos += ll + (nl != NULL);
		if (memchr(line, '\0', ll) != NULL)
			return creto_err_set(e, CRETO_EREJECT, "line %zu: NUL byte", lineno);
		int rc = fn(line, lineno, ctx, e);
		if (rc != CRETO_OK)
			return rc;
	}
	return CRETO_OK;
}

static int copy_dev(char dev[32], const char *s)
{
	if (strlen(s) >= 32)
		return -1;
	snprintf(dev, 32, "%s", s);
	return 0;
}

static int v4_line(char *line, size_t lineno, void *ctx, creto_err *e)
{
	creto_iso_routes *out = ctx;
	char *f[MAX_FIELDS];
	size_t n = split(line, f);
	if (n == 0)
		return CRETO_OK;
	if (lineno == 1 && strcmp(f[0], "Iface") == 0)
		return CRETO_OK; /* the header */
	if (n < 8)
		return creto_err_set(e, CRETO_EREJECT, "line %zu: %zu fields, expected 11", lineno, n);
	uint32_t dst, gw, flags, mask;
	if (hex_u32(f[1], 8, &dst) != 0 || hex_u32(f[2], 8, &gw) != 0 || hex_u32(f[3], 4, &flags) != 0 ||
	    hex_u32(f[7], 8, &mask) != 0)
		return creto_err_set(e, CRETO_EREJECT, "line %zu: bad hex field", lineno);
	creto_iso_route rt;
	memset(&rt, 0, sizeof(rt));
	if (copy_dev(rt.dev, f[0]) != 0)
		return creto_err_set(e, CRETO_EREJECT, "line %zu: interface name too long", lineno);
	/* The kernel prints the __be32 as a native integer: copying the
	 * native integer back gives the network-order bytes. */
	uint8_t mb[4];
	memcpy(mb, &mask, 4);
	uint32_t m = (uint32_t)mb[0] << 24 | (uint32_t)mb[1] << 16 | (uint32_t)mb[2] << 8 | mb[3];
	unsigned plen = 0;
	while (plen < 32 && (m & (0x80000000u >> plen)))
		plen++;
	if (plen < 32 && (m << plen) != 0)
		return creto_err_set(e, CRETO_EREJECT, "line %zu: non-contiguous netmask", lineno);
	if (!(flags & ISO_RTF_UP) || (flags & ISO_RTF_REJECT))
		return CRETO_OK;
	rt.dst.family = AF_INET;
	rt.dst.len = (uint8_t)plen;
	memcpy(rt.dst.addr, &dst, 4);
	for (unsigned i = 0; i < 4; i++) /* clear host bits */
		rt.dst.addr[i] &= mb[i];
	if ((flags & ISO_RTF_GATEWAY) && gw != 0) {
		rt.has_gateway = 1;
		memcpy(rt.gateway, &gw, 4);
	}
	rt.table = 254; /* /proc/net/route lists the main table only */
	return iso_routes_push(out, &rt, e);
}

int creto_iso_parse_proc_route(const char *text, size_t len, creto_iso_routes *out, creto_err *e)
{
	return each_line(text, len, v4_line, out, e);
}

static int v6_line(char *line, size_t lineno, void *ctx, creto_err *e)
{
	creto_iso_routes *out = ctx;
	char *f[MAX_FIELDS];
	size_t n = split(line, f);
	if (n == 0)
		return CRETO_OK;
	if (n != 10)
		return creto_err_set(e, CRETO_EREJECT, "line %zu: %zu fields, expected 10", lineno, n);
	creto_iso_route rt;
	memset(&rt, 0, sizeof(rt));
	uint32_t plen, flags, tmp;
	uint8_t src[16];
	if (hex_bytes16(f[0], rt.dst.addr) != 0 || hex_u32(f[1], 2, &plen) != 0 || hex_bytes16(f[2], src) != 0 ||
	    hex_u32(f[3], 2, &tmp) != 0 || hex_bytes16(f[4], rt.gateway) != 0 || hex_u32(f[5], 8, &tmp) != 0 ||
	    hex_u32(f[6], 8, &tmp) != 0 || hex_u32(f[7], 8, &tmp) != 0 || hex_u32(f[8], 8, &flags) != 0)
		return creto_err_set(e, CRETO_EREJECT, "line %zu: bad hex field", lineno);
	if (plen > 128)
		return creto_err_set(e, CRETO_EREJECT, "line %zu: prefix length %u", lineno, plen);
	if (copy_dev(rt.dev, f[9]) != 0)
		return creto_err_set(e, CRETO_EREJECT, "line %zu: interface name too long", lineno);
	if (!(flags & ISO_RTF_UP) || (flags & (ISO_RTF_REJECT | ISO_RTF_LOCAL | ISO_RTF_ANYCAST)))
		return CRETO_OK;
	if (rt.dst.addr[0] == 0xff)
		return CRETO_OK; /* multicast */
	rt.dst.family = AF_INET6;
	rt.dst.len = (uint8_t)plen;
	creto_iso_prefix check = rt.dst;
	char s[CRETO_ISO_ADDRSTRLEN];
	creto_iso_prefix_format(&check, s);
	if (creto_iso_prefix_parse(s, &rt.dst) != 0) /* clears host bits */
		return creto_err_set(e, CRETO_EREJECT, "line %zu: bad destination", lineno);
	static const uint8_t zero[16];
	rt.has_gateway = (flags & ISO_RTF_GATEWAY) && memcmp(rt.gateway, zero, 16) != 0;
	if (!rt.has_gateway)
		memset(rt.gateway, 0, 16);
	return iso_routes_push(out, &rt, e);
}

int creto_iso_parse_proc_ipv6_route(const char *text, size_t len, creto_iso_routes *out, creto_err *e)
{
	return each_line(text, len, v6_line, out, e);
}

/* ---- resolv.conf ------------------------------------------------------- */

static int is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static unsigned hex_val(char c)
{
	if (c >= '0' && c <= '9')
		return (unsigned)(c - '0');
	if (c >= 'a' && c <= 'f')
		return (unsigned)(c - 'a' + 10);
	return (unsigned)(c - 'A' + 10);
}

/* One number as strtoul(s, &end, 0) reads it from a part that starts with
 * a digit: "0x" + hex digits is hex, a leading 0 octal, else decimal.  "0x"
 * with no hex digit after it reads as 0 and stops at the 'x'; "08" reads as
 * 0 and stops at the '8'.  Digits past 2^32 - 1 set *over (strtoul goes on
 * consuming them).  Returns the number of bytes consumed. */
static size_t aton_number(const char *s, size_t n, uint64_t *val, int *over)
{
	uint64_t v = 0;
	size_t i = 0;
	*over = 0;
	unsigned base = 10;
	if (s[0] == '0') {
		if (n >= 3 && (s[1] == 'x' || s[1] == 'X') && is_hex(s[2])) {
			base = 16;
			i = 2;
		} else {
			base = 8;
			i = 1;
		}
	}
	for (; i < n; i++) {
		unsigned d;
		if (base == 16 && is_hex(s[i]))
			d = hex_val(s[i]);
		else if (base == 8 && s[i] >= '0' && s[i] <= '7')
			d = (unsigned)(s[i] - '0');
		else if (base == 10 && s[i] >= '0' && s[i] <= '9')
			d = (unsigned)(s[i] - '0');
		else
			break;
		if (!*over) {
			v = v * base + d;
			if (v > 0xffffffffu)
				*over = 1;
		}
	}
	*val = v;
	return i;
}

int creto_iso_inet_aton_exact(const char *s, size_t n, uint8_t out[4])
{
	static const uint64_t max[4] = {0xffffffffu, 0xffffffu, 0xffffu, 0xffu};
	uint8_t parts[4] = {0, 0, 0, 0};
	size_t nparts = 0, i = 0;
	uint64_t val;
	for (;;) {
		if (i >= n || s[i] < '0' || s[i] > '9')
			return -1; /* every part starts with a digit */
		int over;
		i += aton_number(s + i, n - i, &val, &over);
		if (over)
			return -1;
		if (i < n && s[i] == '.') {
			if (nparts > 2 || val > 0xff)
				return -1;
			parts[nparts++] = (uint8_t)val;
			i++;
			continue;
		}
		break;
	}
	if (i != n || val > max[nparts])
		return -1; /* trailing bytes, or a last part too large for its place */
	uint32_t w = (uint32_t)parts[0] << 24 | (uint32_t)parts[1] << 16 | (uint32_t)parts[2] << 8 | parts[3];
	w |= (uint32_t)val;
	out[0] = (uint8_t)(w >> 24);
	out[1] = (uint8_t)(w >> 16);
	out[2] = (uint8_t)(w >> 8);
	out[3] = (uint8_t)w;
	return 0;
}

/* The address of a nameserver value (the bytes up to the first blank): an
 * IPv4 address in inet_aton form, or an IPv6 address (inet_pton) with any
 * "%scope" dropped (glibc ignores a scope it cannot read, so do we). */
static int nameserver_addr(const char *v, size_t n, creto_iso_endpoint *ep)
{
	memset(ep, 0, sizeof(*ep));
	ep->port = 53;
	if (n == 0)
		return -1;
	if (creto_iso_inet_aton_exact(v, n, ep->addr) == 0) {
		ep->family = AF_INET;
		return 0;
	}
	const char *pct = memchr(v, '%', n);
	if (pct != NULL)
		n = (size_t)(pct - v);
	char buf[64];
	if (n == 0 || n >= sizeof(buf))
		return -1; /* no IPv6 text is that long */
	memcpy(buf, v, n);
	buf[n] = '\0';
	if (inet_pton(AF_INET6, buf, ep->addr) != 1)
		return -1;
	ep->family = AF_INET6;
	return 0;
}

static int is_blank_any(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* glibc 2.36 (res_vinit_1): a line that starts, in its first column, with
 * "nameserver" and a space or tab; blanks (space, tab) skipped; the value
 * runs to the next space, tab or the end of the line; '#' and ';' lines
 * are comments.  The line ends at '\n' or at a NUL byte (getline then
 * string functions). */
static int glibc_nameserver(const char *l, size_t n, const char **v, size_t *vn)
{
	static const char kw[] = "nameserver";
	const size_t kl = sizeof(kw) - 1;
	if (n <= kl || memcmp(l, kw, kl) != 0 || (l[kl] != ' ' && l[kl] != '\t'))
		return 0;
	size_t i = kl;
	while (i < n && (l[i] == ' ' || l[i] == '\t'))
		i++;
	size_t j = i;
	while (j < n && l[j] != ' ' && l[j] != '\t')
		j++;
	*v = l + i;
	*vn = j - i;
	return 1;
}

/* The looser reading other resolvers use: leading blanks allowed, any
 * blank (also CR, VT, FF) separates.  A superset of glibc's lines. */
static int loose_nameserver(const char *l, size_t n, const char **v, size_t *vn)
{
	static const char kw[] = "nameserver";
	const size_t kl = sizeof(kw) - 1;
	size_t i = 0;
	while (i < n && is_blank_any(l[i]))
		i++;
	if (n - i <= kl || memcmp(l + i, kw, kl) != 0 || !is_blank_any(l[i + kl]))
		return 0;
	i += kl;
	while (i < n && is_blank_any(l[i]))
		i++;
	size_t j = i;
	while (j < n && !is_blank_any(l[j]))
		j++;
	*v = l + i;
	*vn = j - i;
	return 1;
}

void creto_iso_parse_resolv_conf(const char *text, size_t len, creto_iso_nameservers *out)
{
	memset(out, 0, sizeof(*out));
	size_t pos = 0, lineno = 0;
	while (pos < len) {
		lineno++;
		const char *l = text + pos;
		const char *nl = memchr(l, '\n', len - pos);
		size_t ll = nl != NULL ? (size_t)(nl - l) : len - pos;
		pos += ll + (nl != NULL);
		const char *nul = memchr(l, '\0', ll);
		if (nul != NULL)
			ll = (size_t)(nul - l); /* glibc reads the line as a C string */
		if (ll == 0 || l[0] == '#' || l[0] == ';')
			continue;
		const char *v;
		size_t vn;
		creto_iso_endpoint ep;
		int glibc = 0;
		if (glibc_nameserver(l, ll, &v, &vn) && nameserver_addr(v, vn, &ep) == 0) {
			glibc = 1;
		} else if (!loose_nameserver(l, ll, &v, &vn)) {
			continue; /* not a nameserver line (every glibc one is a loose one) */
		} else if (nameserver_addr(v, vn, &ep) != 0) {
			out->n_bad++;
			continue;
		}
		if (glibc)
			out->n_glibc++;
		if (out->n == CRETO_ISO_MAX_ITEMS) {
			out->n_extra++;
			continue;
		}
		out->ns[out->n] = ep;
		out->line[out->n] = lineno;
		out->glibc[out->n] = (uint8_t)glibc;
		out->n++;
	}
}

/* ---- proxy URLs -------------------------------------------------------- */

static int is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* RFC 3986 authority bytes: unreserved, sub-delims, ':', '@', '[', ']',
 * and '%' (checked as pct-encoded by the caller). */
static int authority_byte(char c)
{
	if (is_alpha(c) || (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("-._~!$&'()*+,;=:@[]%", c) != NULL;
}

static void proxy_problem(creto_iso_proxy *out, const char *why)
{
	out->problem = why;
	out->ambiguity = NULL;
	out->family = 0;
}

void creto_iso_proxy_parse(const char *v, creto_iso_proxy *out)
{
	memset(out, 0, sizeof(*out));
	for (const char *p = v; *p; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) {
			proxy_problem(out, "a blank, control or non-ASCII byte in the value");
			return;
		}
	/* scheme: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) "://"; without
	 * one, clients (curl) read the whole value as an authority */
	const char *rest = v;
	const char *sep = strstr(v, "://");
	if (sep != NULL) {
		size_t sl = (size_t)(sep - v);
		int ok = sl > 0 && sl < sizeof(out->scheme) && is_alpha(v[0]);
		for (size_t i = 1; ok && i < sl; i++)
			ok = is_alpha(v[i]) || (v[i] >= '0' && v[i] <= '9') || v[i] == '+' || v[i] == '-' ||
			     v[i] == '.';
		if (!ok) {
			proxy_problem(out, "not a URL (bad scheme)");
			return;
		}
		memcpy(out->scheme, v, sl);
		out->scheme[sl] = '\0';
		rest = sep + 3;
	}
	/* the authority ends at the first '/', '?' or '#' (RFC 3986 3.2) */
	size_t alen = strcspn(rest, "/?#");
	const char *after = rest + alen;
	for (size_t i = 0; i < alen; i++) {
		if (!authority_byte(rest[i])) {
			proxy_problem(out, "a byte RFC 3986 does not allow in the authority (clients read it differently)");
			return;
		}
		if (rest[i] == '%' && (i + 2 >= alen || !is_hex(rest[i + 1]) || !is_hex(rest[i + 2]))) {
			proxy_problem(out, "a '%' that is not percent-encoding in the authority");
			return;
		}
	}
	if (strchr(after, '@') != NULL)
		/* curl and RFC 3986 take the host before it, Python's
		 * urllib.request the one after it */
		out->ambiguity = "an '@' after the authority (clients disagree on the host)";
	/* userinfo is everything up to the last '@' of the authority */
	const char *hp = rest;
	for (size_t i = 0; i < alen; i++)
		if (rest[i] == '@')
			hp = rest + i + 1;
	size_t hplen = (size_t)(after - hp);
	const char *host = hp, *port = NULL;
	size_t hostlen, portlen = 0;
	int bracket = 0;
	if (hplen > 0 && hp[0] == '[') {
		const char *close = memchr(hp, ']', hplen);
		if (close == NULL) {
			proxy_problem(out, "an unclosed '[' in the host");
			return;
		}
		bracket = 1;
		host = hp + 1;
		hostlen = (size_t)(close - host);
		const char *t = close + 1;
		if (t < after && *t != ':') {
			proxy_problem(out, "bytes after the ']' of the host");
			return;
		}
		if (t < after) {
			port = t + 1;
			portlen = (size_t)(after - port);
		}
	} else {
		const char *colon = memchr(hp, ':', hplen);
		hostlen = colon != NULL ? (size_t)(colon - hp) : hplen;
		if (colon != NULL) {
			port = colon + 1;
			portlen = (size_t)(after - port);
		}
	}
	if (hostlen == 0) {
		proxy_problem(out, "no host");
		return;
	}
	if (memchr(host, '[', hostlen) != NULL || memchr(host, ']', hostlen) != NULL) {
		proxy_problem(out, "a '[' or ']' outside an IPv6 literal");
		return;
	}
	if (portlen >= sizeof(out->port)) {
		proxy_problem(out, "a port that is not a number");
		return;
	}
	for (size_t i = 0; i < portlen; i++)
		if (port[i] < '0' || port[i] > '9') {
			proxy_problem(out, "a port that is not a number");
			return;
		}
	if (hostlen >= sizeof(out->host)) {
		proxy_problem(out, "a host name longer than 255 bytes");
		return;
	}
	memcpy(out->host, host, hostlen);
	out->host[hostlen] = '\0';
	if (port != NULL)
		memcpy(out->port, port, portlen);
	out->port[portlen] = '\0';
	if (bracket) {
		/* inet_pton refuses a zone ("%25eth0"): then not an IP literal */
		if (inet_pton(AF_INET6, out->host, out->addr) == 1)
			out->family = AF_INET6;
	} else if (creto_iso_inet_aton_exact(out->host, hostlen, out->addr) == 0) {
		/* curl and getaddrinfo read numeric hosts in inet_aton forms */
		out->family = AF_INET;
	}
}
