/*
 * check.c - runs the isolation checks and builds the report: routes,
 * interfaces, resolver configuration, proxy variables, and (opt-in) the
 * active probes behind the test-suite guard.
 */
#include "iso_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SYS_FILE_MAX (4u << 20) /* /proc/net/ipv6_route can be long on routers */

void creto_iso_report_free(creto_iso_report *r)
{
	if (r == NULL)
		return;
	free(r->items);
	free(r);
}

static int report_addv(creto_iso_report *r, int summary, const char *kind, int result, const char *key,
		       const char *fmt, va_list ap) CRETO_PRINTF(6, 0);

static int report_addv(creto_iso_report *r, int summary, const char *kind, int result, const char *key,
		       const char *fmt, va_list ap)
{
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 32;
		creto_iso_item *v = realloc(r->items, cap * sizeof(*v));
		if (v == NULL)
			return CRETO_EOP;
		r->items = v;
		r->cap = cap;
	}
	creto_iso_item *it = &r->items[r->n++];
	memset(it, 0, sizeof(*it));
	snprintf(it->kind, sizeof(it->kind), "%s", kind);
	snprintf(it->key, sizeof(it->key), "%s", key);
	vsnprintf(it->evidence, sizeof(it->evidence), fmt, ap);
	it->result = result;
	it->summary = summary;
	if (result == CRETO_ISO_FAIL && !summary)
		r->violations++;
	return CRETO_OK;
}

int iso_report_add(creto_iso_report *r, const char *kind, int result, const char *key, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = report_addv(r, 0, kind, result, key, fmt, ap);
	va_end(ap);
	return rc;
}

/* A summary line: shown, but its failure repeats findings already counted. */
static int report_summary(creto_iso_report *r, const char *kind, int result, const char *key, const char *fmt,
			  ...) CRETO_PRINTF(5, 6);

static int report_summary(creto_iso_report *r, const char *kind, int result, const char *key, const char *fmt,
			  ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = report_addv(r, 1, kind, result, key, fmt, ap);
	va_end(ap);
	return rc;
}

/* Read a system text file, following symlinks (/etc/resolv.conf usually is
 * one) and not trusting st_size (/proc files report 0).  Opened
 * non-blocking and refused unless a regular file, so a FIFO cannot hang
 * the check.  NUL-terminated.  *err_no: the errno of a failed open (ENOENT
 * for a missing file), else 0. */
static int read_text(const char *path, char **out, size_t *outlen, int *err_no, creto_err *e)
{
	*out = NULL;
	*outlen = 0;
	*err_no = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		*err_no = errno;
		return creto_err_errno(e, errno, "%s", path);
	}
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int err = errno;
		close(fd);
		return creto_err_errno(e, err, "%s", path);
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return creto_err_set(e, CRETO_EOP, "%s: not a regular file", path);
	}
	size_t cap = 8192, len = 0;
	char *buf = malloc(cap);
	int rc = CRETO_OK;
	if (buf == NULL) {
		rc = creto_err_set(e, CRETO_EOP, "%s: out of memory", path);
		goto out;
	}
	for (;;) {
		if (len + 1 >= cap) {
			if (cap >= SYS_FILE_MAX) {
				rc = creto_err_set(e, CRETO_EREJECT, "%s: larger than %u bytes", path, SYS_FILE_MAX);
				goto out;
			}
			char *nb = realloc(buf, cap * 2);
			if (nb == NULL) {
				rc = creto_err_set(e, CRETO_EOP, "%s: out of memory", path);
				goto out;
			}
			buf = nb;
			cap *= 2;
		}
		ssize_t n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = creto_err_errno(e, errno, "%s", path);
			break;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
out:
	close(fd);
	if (rc != CRETO_OK) {
		free(buf);
		return rc;
	}
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	return CRETO_OK;
}

static const char *table_name(uint32_t t, char buf[16])
{
	if (t == 254)
		return "main";
	if (t == 253)
		return "default";
	if (t == 255)
		return "local";
	snprintf(buf, 16, "%u", t);
	return buf;
}

static int check_routes(const creto_iso_config *cfg, int family, const creto_iso_routes *rs,
			const char *source, creto_iso_report *r)
{
	const char *fam = family == AF_INET ? "ipv4" : "ipv6";
	size_t bad = 0;
	for (size_t i = 0; i < rs->n; i++) {
		const creto_iso_route *rt = &rs->v[i];
		char dst[CRETO_ISO_ADDRSTRLEN], gw[INET6_ADDRSTRLEN] = "", tb[16], via[INET6_ADDRSTRLEN + 8] = "";
		char dev[40] = "";
		creto_iso_prefix_format(&rt->dst, dst);
		if (rt->has_gateway && inet_ntop(family, rt->gateway, gw, sizeof(gw)) != NULL)
			snprintf(via, sizeof(via), " via %s", gw);
		if (rt->dev[0])
			snprintf(dev, sizeof(dev), " dev %s", rt->dev);
		const char *table = rt->table ? table_name(rt->table, tb) : "main";
		char key[256];
		snprintf(key, sizeof(key), "route %s %s%s%s table %s", fam, dst, via, dev, table);
		int rc;
		if (creto_iso_prefix_internal(cfg, &rt->dst)) {
			rc = iso_report_add(r, "route", CRETO_ISO_PASS, key, "%s route %s%s%s (table %s) is internal",
					    fam, dst, via, dev, table);
		} else if (rt->dst.len == 0) {
			bad++;
			rc = iso_report_add(r, "route", CRETO_ISO_FAIL, key, "%s default route %s%s%s (table %s)", fam,
					    dst, via, dev, table);
		} else {
			bad++;
			rc = iso_report_add(r, "route", CRETO_ISO_FAIL, key,
					    "%s route %s%s%s (table %s) leads outside the allowed prefixes", fam, dst,
					    via, dev, table);
		}
		if (rc != CRETO_OK)
			return rc;
	}
	char key[64];
	snprintf(key, sizeof(key), "routes %s", fam);
	return report_summary(r, "routes", bad ? CRETO_ISO_FAIL : CRETO_ISO_PASS, key,
			      "%s routing tables (%s): %zu unicast routes, %zu outside the allowed prefixes", fam,
			      source, rs->n, bad);
}

static int read_routes(int family, int source, creto_iso_routes *rs, const char **used, creto_err *e)
{
	int rc;
	if (source != CRETO_ISO_ROUTES_PROC) {
		rc = iso_netlink_routes(family, rs, e);
		if (rc == CRETO_OK) {
			*used = "netlink";
			return CRETO_OK;
		}
		if (source == CRETO_ISO_ROUTES_NETLINK)
			return creto_err_ctx(e, "routes");
		creto_iso_routes_free(rs);
		creto_err_clear(e);
	}
	const char *path = family == AF_INET ? "/proc/net/route" : "/proc/net/ipv6_route";
	char *text = NULL;
	size_t len = 0;
	int err_no = 0;
	rc = read_text(path, &text, &len, &err_no, e);
	if (rc == CRETO_OK) {
		rc = family == AF_INET ? creto_iso_parse_proc_route(text, len, rs, e)
				       : creto_iso_parse_proc_ipv6_route(text, len, rs, e);
		if (rc != CRETO_OK)
			rc = creto_err_ctx(e, "%s", path);
	}
	free(text);
	if (rc == CRETO_EREJECT) /* a kernel file we cannot read is an operational problem */
		e->code = CRETO_EOP;
	if (family == AF_INET6 && err_no == ENOENT) {
		creto_err_clear(e); /* IPv6 disabled: no table to check */
		rc = CRETO_OK;
	}
	*used = "proc";
	return rc == CRETO_OK ? CRETO_OK : creto_err_ctx(e, "routes");
}

static int check_interfaces(const creto_iso_config *cfg, creto_iso_report *r, creto_err *e)
{
	struct ifaddrs *ifa = NULL;
	if (getifaddrs(&ifa) != 0)
		return creto_err_errno(e, errno, "interfaces");
	int rc = CRETO_OK;
	for (struct ifaddrs *i = ifa; i != NULL && rc == CRETO_OK; i = i->ifa_next) {
		if (!(i->ifa_flags & IFF_UP))
			continue;
		char key[256];
		if (i->ifa_addr == NULL || (i->ifa_addr->sa_family != AF_INET && i->ifa_addr->sa_family != AF_INET6)) {
			/* the link entry (AF_PACKET): report up links without addresses once */
			int has_addr = 0;
			for (struct ifaddrs *j = ifa; j != NULL; j = j->ifa_next)
				if (strcmp(j->ifa_name, i->ifa_name) == 0 && j->ifa_addr != NULL &&
				    (j->ifa_addr->sa_family == AF_INET || j->ifa_addr->sa_family == AF_INET6))
					has_addr = 1;
			if (!has_addr) {
				snprintf(key, sizeof(key), "interface %s", i->ifa_name);
				rc = iso_report_add(r, "interface", CRETO_ISO_PASS, key,
						    "interface %s is up with no IP address", i->ifa_name);
			}
			continue;
		}
		int fam = i->ifa_addr->sa_family;
		const uint8_t *a = fam == AF_INET
					   ? (const uint8_t *)&((struct sockaddr_in *)(void *)i->ifa_addr)->sin_addr
					   : (const uint8_t *)&((struct sockaddr_in6 *)(void *)i->ifa_addr)->sin6_addr;
		unsigned plen = fam == AF_INET ? 32 : 128;
		if (i->ifa_netmask != NULL) {
			const uint8_t *m = fam == AF_INET
						   ? (const uint8_t *)&((struct sockaddr_in *)(void *)i->ifa_netmask)->sin_addr
						   : (const uint8_t *)&((struct sockaddr_in6 *)(void *)i->ifa_netmask)->sin6_addr;
			plen = 0;
			for (unsigned b = 0; b < (fam == AF_INET ? 32u : 128u); b++)
				if (m[b / 8] & (0x80u >> (b % 8)))
					plen++;
		}
		char s[INET6_ADDRSTRLEN];
		if (inet_ntop(fam, a, s, sizeof(s)) == NULL)
			snprintf(s, sizeof(s), "?");
		snprintf(key, sizeof(key), "interface %s %s/%u", i->ifa_name, s, plen);
		if (creto_iso_addr_internal(cfg, fam, a))
			rc = iso_report_add(r, "interface", CRETO_ISO_PASS, key,
					    "interface %s is up with internal address %s/%u", i->ifa_name, s, plen);
		else
			rc = iso_report_add(r, "interface", CRETO_ISO_FAIL, key,
					    "interface %s is up with address %s/%u outside the allowed prefixes",
					    i->ifa_name, s, plen);
	}
	freeifaddrs(ifa);
	if (rc != CRETO_OK)
		return creto_err_set(e, CRETO_EOP, "report: out of memory");
	return CRETO_OK;
}

/* glibc queries the first MAXNS (3) nameservers it reads; every other one
 * is checked too (another resolver, or a reordered file, would use it). */
#define GLIBC_MAXNS 3

static int check_resolver(const creto_iso_config *cfg, creto_iso_report *r, creto_err *e)
{
	char *text = NULL;
	size_t len = 0;
	char key[4200];
	snprintf(key, sizeof(key), "resolver %s", cfg->resolv_conf);
	creto_err fe;
	creto_err_clear(&fe);
	int err_no = 0;
	int rc = read_text(cfg->resolv_conf, &text, &len, &err_no, &fe);
	if (rc != CRETO_OK) {
		if (err_no == ENOENT && cfg->resolv_conf_set)
			/* a file the operator named must exist: a typo must not pass */
			return creto_err_set(e, CRETO_EUSAGE, "resolv_conf %s: no such file", cfg->resolv_conf);
		if (err_no == ENOENT)
			/* glibc then asks 127.0.0.1 */
			return iso_report_add(r, "resolver", CRETO_ISO_PASS, key,
					      "%s does not exist: the resolver uses the local host", cfg->resolv_conf)
				       ? creto_err_set(e, CRETO_EOP, "report: out of memory")
				       : CRETO_OK;
		*e = fe;
		return creto_err_ctx(e, "resolver configuration");
	}
	creto_iso_nameservers ns;
	creto_iso_parse_resolv_conf(text, len, &ns);
	free(text);
	rc = CRETO_OK;
	size_t bad = 0, glibc_seen = 0;
	for (size_t i = 0; i < ns.n && rc == CRETO_OK; i++) {
		char a[INET6_ADDRSTRLEN];
		if (inet_ntop(ns.ns[i].family, ns.ns[i].addr, a, sizeof(a)) == NULL)
			snprintf(a, sizeof(a), "?");
		const char *how = "";
		if (!ns.glibc[i])
			how = " (a line glibc ignores but looser resolvers read)";
		else if (++glibc_seen > GLIBC_MAXNS)
			how = " (past the 3 glibc queries)";
		char k[4300];
		snprintf(k, sizeof(k), "resolver %s nameserver %s", cfg->resolv_conf, a);
		if (creto_iso_addr_internal(cfg, ns.ns[i].family, ns.ns[i].addr)) {
			rc = iso_report_add(r, "resolver", CRETO_ISO_PASS, k, "%s line %zu: nameserver %s is internal%s",
					    cfg->resolv_conf, ns.line[i], a, how);
		} else {
			bad++;
			rc = iso_report_add(r, "resolver", CRETO_ISO_FAIL, k,
					    "%s line %zu: nameserver %s is outside the allowed prefixes%s",
					    cfg->resolv_conf, ns.line[i], a, how);
		}
	}
	if (rc == CRETO_OK && ns.n_extra > 0) {
		bad++;
		char k[4300];
		snprintf(k, sizeof(k), "resolver %s too many", cfg->resolv_conf);
		rc = iso_report_add(r, "resolver", CRETO_ISO_FAIL, k, "%s: %zu nameservers past the first %d not checked",
				    cfg->resolv_conf, ns.n_extra, CRETO_ISO_MAX_ITEMS);
	}
	if (rc == CRETO_OK)
		rc = report_summary(r, "resolver", bad ? CRETO_ISO_FAIL : CRETO_ISO_PASS, key,
				    "%s: %zu nameservers, %zu outside the allowed prefixes%s", cfg->resolv_conf,
				    ns.n + ns.n_extra, bad,
				    ns.n_bad ? " (some nameserver lines unreadable, ignored as glibc does)" : "");
	if (rc != CRETO_OK)
		return creto_err_set(e, CRETO_EOP, "report: out of memory");
	return CRETO_OK;
}

static const char *const k_proxy_vars[] = {
	"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "ftp_proxy",   "FTP_PROXY",   "all_proxy",
	"ALL_PROXY",  "rsync_proxy", "RSYNC_PROXY", "socks_proxy", "SOCKS_PROXY", "grpc_proxy",  "GRPC_PROXY",
};

static int check_proxy(const creto_iso_config *cfg, creto_iso_report *r, creto_err *e)
{
	size_t set = 0;
	int rc = CRETO_OK;
	for (size_t i = 0; i < sizeof(k_proxy_vars) / sizeof(k_proxy_vars[0]) && rc == CRETO_OK; i++) {
		const char *v = getenv(k_proxy_vars[i]);
		if (v == NULL || *v == '\0')
			continue;
		set++;
		creto_iso_proxy px;
		creto_iso_proxy_parse(v, &px);
		/* shown: scheme and host only, never the userinfo (a password) */
		char shown[320], key[128];
		const char *scheme = px.scheme[0] ? px.scheme : "http";
		if (px.problem != NULL)
			snprintf(shown, sizeof(shown), "%s://...", scheme);
		else
			snprintf(shown, sizeof(shown), "%s://%s%s%s%s%s", scheme, px.family == AF_INET6 ? "[" : "", px.host,
				 px.family == AF_INET6 ? "]" : "", px.port[0] ? ":" : "", px.port);
		snprintf(key, sizeof(key), "proxy %s", k_proxy_vars[i]);
		if (px.problem != NULL)
			rc = iso_report_add(r, "proxy", CRETO_ISO_FAIL, key, "%s=%s: cannot be judged: %s", k_proxy_vars[i],
					    shown, px.problem);
		else if (px.family == 0 || !creto_iso_addr_internal(cfg, px.family, px.addr))
			rc = iso_report_add(r, "proxy", CRETO_ISO_FAIL, key,
					    "%s=%s: proxy host is not an internal address", k_proxy_vars[i], shown);
		else if (px.ambiguity != NULL)
			rc = iso_report_add(r, "proxy", CRETO_ISO_FAIL, key, "%s=%s: cannot be judged: %s", k_proxy_vars[i],
					    shown, px.ambiguity);
		else
			rc = iso_report_add(r, "proxy", CRETO_ISO_PASS, key, "%s=%s points at an internal address",
					    k_proxy_vars[i], shown);
	}
	if (rc == CRETO_OK && set == 0)
		rc = iso_report_add(r, "proxy", CRETO_ISO_PASS, "proxy", "no proxy environment variables set");
	return rc == CRETO_OK ? CRETO_OK : creto_err_set(e, CRETO_EOP, "report: out of memory");
}

/* ---- the guard --------------------------------------------------------- */

static int ns_inode(const char *path, unsigned long long *ino)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return -1;
	*ino = (unsigned long long)st.st_ino;
	return 0;
}

/* nsswitch "hosts" must stay within this process and this namespace:
 * "files", "dns" and "myhostname" do; others (resolve, mdns, ldap, ...)
 * ask a daemon that may live in another namespace. */
static int nsswitch_hosts_local(char *why, size_t whylen)
{
	char *text = NULL;
	size_t len = 0;
	creto_err e;
	creto_err_clear(&e);
	int err_no;
	if (read_text("/etc/nsswitch.conf", &text, &len, &err_no, &e) != CRETO_OK)
		return 1; /* glibc default: dns then files */
	int ok = 1;
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		while (*line == ' ' || *line == '\t')
			line++;
		if (strncmp(line, "hosts:", 6) != 0)
			continue;
		char *s2 = NULL;
		for (char *t = strtok_r(line + 6, " \t", &s2); t != NULL; t = strtok_r(NULL, " \t", &s2)) {
			if (t[0] == '#')
				break;
			if (t[0] == '[' || strchr(t, '=') != NULL || t[strlen(t) - 1] == ']')
				continue; /* action like [NOTFOUND=return] */
			if (strcmp(t, "files") != 0 && strcmp(t, "dns") != 0 && strcmp(t, "myhostname") != 0) {
				snprintf(why, whylen, "%.64s", t);
				ok = 0;
			}
		}
	}
	free(text);
	return ok;
}

int creto_iso_active_allowed(creto_err *e)
{
	if (getenv("CRETO_TEST") == NULL)
		return CRETO_OK;
	const char *pre = "active probes refused under CRETO_TEST";
	unsigned long long self, init, outer;
	if (ns_inode("/proc/self/ns/net", &self) != 0)
		return creto_err_set(e, CRETO_EOP, "%s: cannot read /proc/self/ns/net", pre);
	int refs = 0;
	if (ns_inode("/proc/1/ns/net", &init) == 0) {
		refs++;
		if (init == self)
			return creto_err_set(e, CRETO_EOP, "%s: this is the init network namespace", pre);
	}
	const char *o = getenv("CRETO_TEST_OUTER_NETNS");
	if (o != NULL && *o != '\0') {
		char *end;
		errno = 0;
		outer = strtoull(o, &end, 10);
		if (errno != 0 || *end != '\0')
			return creto_err_set(e, CRETO_EOP, "%s: CRETO_TEST_OUTER_NETNS is not an inode number", pre);
		refs++;
		if (outer == self)
			return creto_err_set(e, CRETO_EOP,
					     "%s: this is the test runner's network namespace (inode %llu)", pre, self);
	}
	if (refs == 0)
		return creto_err_set(e, CRETO_EOP,
				     "%s: cannot tell this network namespace from the host's (/proc/1/ns/net unreadable "
				     "and CRETO_TEST_OUTER_NETNS unset)",
				     pre);
	char bad[256];
	creto_err ne;
	creto_err_clear(&ne);
	if (iso_netlink_escaping_links(bad, sizeof(bad), &ne) != CRETO_OK)
		return creto_err_set(e, CRETO_EOP, "%s: cannot list links: %s", pre, ne.msg);
	if (bad[0] != '\0')
		return creto_err_set(e, CRETO_EOP, "%s: link %s could carry packets out of this namespace", pre, bad);
	char why[80];
	if (!nsswitch_hosts_local(why, sizeof(why)))
		return creto_err_set(e, CRETO_EOP, "%s: nsswitch hosts source '%s' may resolve outside this namespace",
				     pre, why);
	struct stat st;
	if (stat("/run/nscd/socket", &st) == 0 || stat("/var/run/nscd/socket", &st) == 0)
		return creto_err_set(e, CRETO_EOP, "%s: nscd would resolve outside this namespace", pre);
	return CRETO_OK;
}

int creto_iso_check(const creto_iso_config *cfg, const creto_iso_opts *opts, creto_iso_report **out,
		    creto_err *e)
{
	*out = NULL;
	uint64_t start = iso_now_ms();
	creto_iso_report *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return creto_err_set(e, CRETO_EOP, "report: out of memory");
	int rc = CRETO_OK;
	if (opts->active) {
		/* refuse before anything else is done, so a refused run is one clear error */
		rc = creto_iso_active_allowed(e);
		if (rc != CRETO_OK)
			goto out;
	}
	static const int fams[2] = {AF_INET, AF_INET6};
	for (int k = 0; k < 2; k++) {
		creto_iso_routes rs = {0};
		const char *used = "netlink";
		rc = read_routes(fams[k], opts->route_source, &rs, &used, e);
		if (rc == CRETO_OK) {
			r->route_source = used;
			if (check_routes(cfg, fams[k], &rs, used, r) != CRETO_OK)
				rc = creto_err_set(e, CRETO_EOP, "report: out of memory");
		}
		creto_iso_routes_free(&rs);
		if (rc != CRETO_OK)
			goto out;
	}
	rc = check_interfaces(cfg, r, e);
	if (rc != CRETO_OK)
		goto out;
	rc = check_resolver(cfg, r, e);
	if (rc != CRETO_OK)
		goto out;
	rc = check_proxy(cfg, r, e);
	if (rc != CRETO_OK)
		goto out;
	if (opts->active) {
		r->active = 1;
		rc = iso_run_probes(cfg, r, e);
		if (rc != CRETO_OK)
			goto out;
	}
out:
	r->elapsed_ms = iso_now_ms() - start;
	if (rc != CRETO_OK) {
		creto_iso_report_free(r);
		return rc;
	}
	*out = r;
	return CRETO_OK;
}
