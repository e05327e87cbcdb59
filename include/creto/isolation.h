/*
 * creto/isolation.h - proves, as far as a host can see, that the enclave has
 * no way out to outside networks.
 *
 * Passive checks send nothing: the IPv4/IPv6 routing tables (rtnetlink, or
 * /proc/net/route and /proc/net/ipv6_route), the interfaces that are up and
 * their addresses, the resolver configuration, and proxy environment
 * variables.  Active probes (opt-in) try to get out: DNS resolution through
 * the system resolver, direct UDP DNS queries to resolver addresses, and TCP
 * connects to canaries, all at once under one timeout.  A probe that
 * succeeds is a violation.  See docs/isolation.md.
 *
 * Nothing here prints or exits; results come back in a creto_iso_report.
 */
#ifndef CRETO_ISOLATION_H
#define CRETO_ISOLATION_H

#include <stddef.h>
#include <stdint.h>

#include "creto/error.h"

#define CRETO_ISO_ADDRSTRLEN 64      /* enough for any IPv6 text + "/128" */
#define CRETO_ISO_TIMEOUT_MS 2000    /* default probe timeout */
#define CRETO_ISO_TIMEOUT_MAX_MS 60000
#define CRETO_ISO_MAX_ITEMS 64       /* per list in the config */
#define CRETO_ISO_CONFIG_MAX 65536   /* bytes of config file */
#define CRETO_ISO_NAME_MAX 253       /* DNS name, RFC 1035 */

/* ---- prefixes ---------------------------------------------------------- */

/* An IPv4 or IPv6 prefix; addr is in network byte order, bits past len are
 * zero (creto_iso_prefix_parse clears them). */
typedef struct creto_iso_prefix {
	int family;       /* AF_INET or AF_INET6 */
	uint8_t len;      /* prefix length in bits */
	uint8_t addr[16]; /* 4 bytes used for AF_INET */
} creto_iso_prefix;

/* Parse "10.20.0.0/16", "fe80::/10" or a bare address (full length).
 * Host bits are cleared.  0 on success, -1 on any malformed input. */
int creto_iso_prefix_parse(const char *s, creto_iso_prefix *out) CRETO_WUR CRETO_NONNULL(1, 2);

/* 1 when the address (family, 4 or 16 bytes) lies inside p, else 0. */
int creto_iso_prefix_contains_addr(const creto_iso_prefix *p, int family, const uint8_t *addr)
	CRETO_NONNULL(1, 3);

/* 1 when prefix inner lies entirely inside prefix outer, else 0. */
int creto_iso_prefix_within(const creto_iso_prefix *outer, const creto_iso_prefix *inner)
	CRETO_NONNULL(1, 2);

/* Format as "addr/len" into out[CRETO_ISO_ADDRSTRLEN]. */
void creto_iso_prefix_format(const creto_iso_prefix *p, char out[static CRETO_ISO_ADDRSTRLEN]);

/* ---- configuration ----------------------------------------------------- */

/* A probe endpoint: an address and a port. */
typedef struct creto_iso_endpoint {
	int family;
	uint8_t addr[16];
	uint16_t port;
} creto_iso_endpoint;

typedef struct creto_iso_config {
	creto_iso_prefix allow[CRETO_ISO_MAX_ITEMS]; /* beyond the built-in loopback/link-local */
	size_t n_allow;
	creto_iso_endpoint canary[CRETO_ISO_MAX_ITEMS]; /* TCP connect targets */
	size_t n_canary;
	creto_iso_endpoint resolver[CRETO_ISO_MAX_ITEMS]; /* direct UDP DNS targets */
	size_t n_resolver;
	char dns_name[CRETO_ISO_MAX_ITEMS][CRETO_ISO_NAME_MAX + 1]; /* names to resolve */
	size_t n_dns_name;
	unsigned timeout_ms;
	char resolv_conf[4096];  /* resolver configuration file checked */
	int resolv_conf_set;     /* 1: named by the config or the caller, so it must exist */
	int link_local_internal; /* 1: 169.254/16 and fe80::/10 count as internal */
	unsigned set_lists;      /* list keys given so far (creto_iso_config_set) */
} creto_iso_config;

/* Fill cfg with the defaults documented in docs/isolation.md (including
 * the default public probe targets). */
void creto_iso_config_default(creto_iso_config *cfg) CRETO_NONNULL(1);

/* Parse the key = value config text (docs/isolation.md) over the defaults
 * already in cfg: a list key given at least once replaces that list's
 * defaults.  CRETO_EUSAGE with "line N: ..." on any error; cfg is then
 * unspecified. */
int creto_iso_config_parse(creto_iso_config *cfg, const char *text, size_t len, creto_err *e)
	CRETO_WUR CRETO_NONNULL(1, 2);

/* Apply one key = value of the config (docs/isolation.md) over cfg, as one
 * line of the file does: the first value of a list key replaces that
 * list's defaults ("none" leaves it empty).  CRETO_EUSAGE naming the key on
 * a bad key or value (no line number: the caller knows where it read it). */
int creto_iso_config_set(creto_iso_config *cfg, const char *key, const char *val, creto_err *e)
	CRETO_WUR CRETO_NONNULL(1, 2, 3);

/* Defaults, then the file at path (when not NULL).  A missing or unreadable
 * file is CRETO_EUSAGE (it is configuration), prefixed with the path. */
int creto_iso_config_load(creto_iso_config *cfg, const char *path, creto_err *e)
	CRETO_WUR CRETO_NONNULL(1);

/* Parse "1.2.3.4:53", "[2001:db8::1]:443" or, when default_port is not 0,
 * a bare address.  0 or -1. */
int creto_iso_endpoint_parse(const char *s, uint16_t default_port, creto_iso_endpoint *out)
	CRETO_WUR CRETO_NONNULL(1, 3);

/* Format as "1.2.3.4:53" / "[2001:db8::1]:443". */
void creto_iso_endpoint_format(const creto_iso_endpoint *ep, char out[static CRETO_ISO_ADDRSTRLEN + 8]);

/* 1 when the address is internal: loopback, link-local (if enabled), or in
 * one of cfg's allowed prefixes. */
int creto_iso_addr_internal(const creto_iso_config *cfg, int family, const uint8_t *addr)
	CRETO_NONNULL(1, 3);

/* 1 when the whole prefix is internal (same rules). */
int creto_iso_prefix_internal(const creto_iso_config *cfg, const creto_iso_prefix *p)
	CRETO_NONNULL(1, 2);

/* ---- parsers of system files (pure; fuzzed) ---------------------------- */

/* One route as the checks see it. */
typedef struct creto_iso_route {
	creto_iso_prefix dst;
	int has_gateway;
	uint8_t gateway[16];
	char dev[32];
	uint32_t table; /* 254 = main; 0 when unknown (/proc) */
} creto_iso_route;

typedef struct creto_iso_routes {
	creto_iso_route *v;
	size_t n, cap;
} creto_iso_routes;

void creto_iso_routes_free(creto_iso_routes *r);

/* Parse /proc/net/route text (main table; hex fields in host byte order, as
 * the kernel writes them) and append the usable unicast routes (RTF_UP set,
 * RTF_REJECT clear) to out.  CRETO_EREJECT with "line N: ..." on malformed
 * text; CRETO_EOP on allocation failure. */
int creto_iso_parse_proc_route(const char *text, size_t len, creto_iso_routes *out, creto_err *e)
	CRETO_WUR CRETO_NONNULL(1, 3);

/* Same for /proc/net/ipv6_route: reject, local, anycast and multicast
 * entries are skipped. */
int creto_iso_parse_proc_ipv6_route(const char *text, size_t len, creto_iso_routes *out, creto_err *e)
	CRETO_WUR CRETO_NONNULL(1, 3);

/* Nameservers from resolv.conf text, read as glibc 2.36's res_init reads
 * them (docs/isolation.md): a line that starts with "nameserver" and a
 * space or tab, the value up to the next space or tab, an IPv4 address in
 * any inet_aton form (134744072, 0x8.0x8.0x8.0x8, 8.8.2056, 010.010.010.010)
 * or an IPv6 address with an optional %scope.  Lines that only a looser
 * reader would take (leading blanks, CR/VT/FF as separators) are returned
 * too, with glibc[i] = 0.  All are returned, not only the first three
 * (MAXNS) glibc queries.  Never fails: what no reader takes is ignored. */
typedef struct creto_iso_nameservers {
	creto_iso_endpoint ns[CRETO_ISO_MAX_ITEMS];
	size_t line[CRETO_ISO_MAX_ITEMS]; /* 1-based line number of ns[i] */
	uint8_t glibc[CRETO_ISO_MAX_ITEMS]; /* 1: glibc reads this line as a nameserver */
	size_t n;       /* entries in ns */
	size_t n_glibc; /* nameservers glibc reads (also those past ns) */
	size_t n_extra; /* readable nameservers past CRETO_ISO_MAX_ITEMS, not in ns */
	size_t n_bad;   /* nameserver lines whose value no reader takes */
} creto_iso_nameservers;

void creto_iso_parse_resolv_conf(const char *text, size_t len, creto_iso_nameservers *out)
	CRETO_NONNULL(1, 3);

/* An IPv4 address in the forms glibc's inet_aton accepts, the whole of
 * s[0..n) and nothing else (glibc's __inet_aton_exact): one to four parts
 * separated by '.', each decimal, octal (leading 0) or hex (0x), every part
 * but the last at most 255, the last filling the remaining bytes
 * ("8.526344", "134744072").  out in network byte order.  0 or -1. */
int creto_iso_inet_aton_exact(const char *s, size_t n, uint8_t out[4]) CRETO_WUR CRETO_NONNULL(3);

/* A proxy variable's value read as curl and RFC 3986 read it: an optional
 * "scheme://" (without it the whole value is an authority, as curl
 * guesses), the authority up to the first '/', '?' or '#', the userinfo up
 * to its last '@', then the host ("[v6]" or anything up to ':') and an
 * optional numeric port.  The host is an IP literal when it is an IPv6
 * literal in brackets or an IPv4 address in an inet_aton form (curl and
 * getaddrinfo accept those).  problem is set (and family 0, host "") when
 * the value cannot be read safely: bytes RFC 3986 does not allow in an
 * authority, a bad port, blanks or control bytes.  ambiguity is set, with
 * the RFC 3986 host still filled in, when another client reads another
 * host: an '@' after the authority (Python's urllib.request takes the host
 * after it).  The userinfo (a password) is never copied out. */
typedef struct creto_iso_proxy {
	char scheme[32]; /* "" when the value has none */
	char host[256];  /* IPv6 without its brackets; "" when problem */
	char port[8];    /* "" when none */
	int family;      /* AF_INET / AF_INET6 for an IP literal host, else 0 */
	uint8_t addr[16];
	const char *problem;   /* NULL, or why the value cannot be read (static text) */
	const char *ambiguity; /* NULL, or why clients may read another host (static text) */
} creto_iso_proxy;

void creto_iso_proxy_parse(const char *v, creto_iso_proxy *out) CRETO_NONNULL(1, 2);

/* ---- the check --------------------------------------------------------- */

enum creto_iso_result { CRETO_ISO_PASS = 0, CRETO_ISO_FAIL = 1 };

typedef struct creto_iso_item {
	char kind[16];      /* "route", "interface", "resolver", "proxy", "probe", "routes" */
	char key[256];      /* stable identity of the finding (for watch): no timings */
	char evidence[512]; /* what was seen, human-readable, may include timings */
	int result;         /* creto_iso_result */
	int summary;        /* 1: a summary line; its failure is not counted again */
} creto_iso_item;

typedef struct creto_iso_report {
	creto_iso_item *items;
	size_t n, cap;
	size_t violations;
	int active;             /* probes were run */
	const char *route_source; /* "netlink" or "proc" */
	uint64_t elapsed_ms;    /* the whole check */
	uint64_t probes_ms;     /* the active part */
} creto_iso_report;

enum creto_iso_route_source { CRETO_ISO_ROUTES_AUTO = 0, CRETO_ISO_ROUTES_NETLINK, CRETO_ISO_ROUTES_PROC };

typedef struct creto_iso_opts {
	int active;       /* run the probes (see creto_iso_active_allowed) */
	int route_source; /* creto_iso_route_source */
} creto_iso_opts;

/* Run the checks.  On CRETO_OK *out holds a report (free it with
 * creto_iso_report_free) whose violations say isolated (0) or not; the
 * status never encodes the verdict.  CRETO_EOP when a check cannot be made
 * at all (routing table unreadable, probes refused by the test guard). */
int creto_iso_check(const creto_iso_config *cfg, const creto_iso_opts *opts, creto_iso_report **out,
		    creto_err *e) CRETO_WUR CRETO_NONNULL(1, 2, 3);

void creto_iso_report_free(creto_iso_report *r);

/* The test-suite guard for active probes.  When CRETO_TEST is set in the
 * environment, probes run only inside a network namespace a test made:
 * the current netns must differ from /proc/1/ns/net (when readable) and
 * from CRETO_TEST_OUTER_NETNS (an inode number, when set), at least one of
 * those two references must exist, every link in the namespace must be
 * loopback or a veth whose peer is in the same namespace, and the system
 * resolver must not hand queries to a daemon outside it (nsswitch "hosts"
 * only files/dns/myhostname, no nscd socket).  Without CRETO_TEST:
 * CRETO_OK.  Refusal: CRETO_EOP with the reason. */
int creto_iso_active_allowed(creto_err *e) CRETO_WUR;

#endif
