/* test_isolation.c - unit tests for src/isolation: prefixes, endpoints, the
 * config file, and the /proc/net/route, /proc/net/ipv6_route and
 * resolv.conf parsers (known answers and every error path). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "creto/isolation.h"

static void fmt_prefix(const char *in, const char *want)
{
	creto_iso_prefix p;
	char out[CRETO_ISO_ADDRSTRLEN];
	assert_int_equal(creto_iso_prefix_parse(in, &p), 0);
	creto_iso_prefix_format(&p, out);
	assert_string_equal(out, want);
}

static void test_prefix_parse(void **state)
{
	(void)state;
	fmt_prefix("10.20.0.0/16", "10.20.0.0/16");
	fmt_prefix("10.20.3.4/16", "10.20.0.0/16"); /* host bits cleared */
	fmt_prefix("10.31.255.255/12", "10.16.0.0/12");
	fmt_prefix("0.0.0.0/0", "0.0.0.0/0");
	fmt_prefix("192.0.2.7", "192.0.2.7/32");
	fmt_prefix("2001:db8::1/32", "2001:db8::/32");
	fmt_prefix("fe80::1234/10", "fe80::/10");
	fmt_prefix("::/0", "::/0");
	fmt_prefix("::1", "::1/128");
	static const char *bad[] = {"",           "10.0.0.0/33", "10.0.0.0/",  "/8",        "10.0.0.0/08",
				    "::/129",     "abc",         "10.0.0/8",   "10.0.0.0/-1", "10.0.0.0/8x",
				    "10.0.0.0/8/8", "1.2.3.4 /8", "2001:db8::/1000",
				    "0123456789012345678901234567890123456789012345678901234567890123456789"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		creto_iso_prefix p;
		assert_int_equal(creto_iso_prefix_parse(bad[i], &p), -1);
	}
}

static int within(const char *outer, const char *inner)
{
	creto_iso_prefix o, i;
	assert_int_equal(creto_iso_prefix_parse(outer, &o), 0);
	assert_int_equal(creto_iso_prefix_parse(inner, &i), 0);
	return creto_iso_prefix_within(&o, &i);
}

static void test_prefix_within(void **state)
{
	(void)state;
	assert_true(within("10.20.0.0/16", "10.20.0.0/16"));
	assert_true(within("10.20.0.0/16", "10.20.5.0/24"));
	assert_true(within("10.20.0.0/16", "10.20.255.255"));
	assert_false(within("10.20.0.0/16", "10.21.0.0/24"));
	assert_false(within("10.20.0.0/16", "10.0.0.0/8"));  /* wider than the allowed prefix */
	assert_false(within("10.20.0.0/16", "0.0.0.0/0"));   /* the default route is never inside */
	assert_true(within("0.0.0.0/0", "203.0.113.9"));
	assert_true(within("10.16.0.0/12", "10.31.0.0/16")); /* non-byte-aligned edges */
	assert_false(within("10.16.0.0/12", "10.32.0.0/16"));
	assert_false(within("10.16.0.0/12", "10.15.0.0/16"));
	assert_true(within("fe80::/10", "fe80::/64"));
	assert_true(within("fe80::/10", "febf::1"));
	assert_false(within("fe80::/10", "fec0::/64"));
	assert_false(within("10.0.0.0/8", "::/0"));          /* family mismatch */
	assert_false(within("::/0", "10.0.0.1"));
	assert_true(within("2001:db8::1/128", "2001:db8::1"));
	assert_false(within("2001:db8::1/128", "2001:db8::2"));

	creto_iso_prefix p;
	assert_int_equal(creto_iso_prefix_parse("192.0.2.0/25", &p), 0);
	uint8_t a[4] = {192, 0, 2, 127}, b[4] = {192, 0, 2, 128};
	assert_true(creto_iso_prefix_contains_addr(&p, AF_INET, a));
	assert_false(creto_iso_prefix_contains_addr(&p, AF_INET, b));
	assert_false(creto_iso_prefix_contains_addr(&p, AF_INET6, a));
}

static void test_endpoint_parse(void **state)
{
	(void)state;
	creto_iso_endpoint ep;
	char s[CRETO_ISO_ADDRSTRLEN + 8];
	assert_int_equal(creto_iso_endpoint_parse("192.0.2.1:443", 0, &ep), 0);
	creto_iso_endpoint_format(&ep, s);
	assert_string_equal(s, "192.0.2.1:443");
	assert_int_equal(creto_iso_endpoint_parse("[2001:db8::1]:53", 0, &ep), 0);
	creto_iso_endpoint_format(&ep, s);
	assert_string_equal(s, "[2001:db8::1]:53");
	assert_int_equal(creto_iso_endpoint_parse("2001:db8::1", 53, &ep), 0);
	assert_int_equal(ep.port, 53);
	assert_int_equal(creto_iso_endpoint_parse("[2001:db8::1]", 53, &ep), 0);
	assert_int_equal(ep.family, AF_INET6);
	assert_int_equal(creto_iso_endpoint_parse("198.51.100.53", 53, &ep), 0);
	assert_int_equal(ep.port, 53);
	static const char *bad[] = {"192.0.2.1",      "192.0.2.1:0",    "192.0.2.1:65536", "192.0.2.1:",
				    ":53",            "[2001:db8::1]x", "[2001:db8::1",     "host.example:80",
				    "192.0.2.1:08",   "192.0.2.1:5x",   "[192.0.2.1]:80x",  ""};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(creto_iso_endpoint_parse(bad[i], 0, &ep), -1);
}

static void test_internal(void **state)
{
	(void)state;
	creto_iso_config *cfg = malloc(sizeof(*cfg));
	assert_non_null(cfg);
	creto_iso_config_default(cfg);
	uint8_t lo4[4] = {127, 0, 0, 53}, ll4[4] = {169, 254, 1, 1}, ext[4] = {8, 8, 8, 8}, in[4] = {10, 20, 1, 1};
	uint8_t lo6[16] = {[15] = 1}, ll6[16] = {0xfe, 0x80, [15] = 9};
	uint8_t mapped_lo[16] = {[10] = 0xff, [11] = 0xff, [12] = 127, [15] = 1};
	uint8_t mapped_ext[16] = {[10] = 0xff, [11] = 0xff, [12] = 8, [13] = 8, [14] = 8, [15] = 8};
	assert_true(creto_iso_addr_internal(cfg, AF_INET, lo4));
	assert_true(creto_iso_addr_internal(cfg, AF_INET, ll4));
	assert_false(creto_iso_addr_internal(cfg, AF_INET, ext));
	assert_false(creto_iso_addr_internal(cfg, AF_INET, in));
	assert_true(creto_iso_addr_internal(cfg, AF_INET6, lo6));
	assert_true(creto_iso_addr_internal(cfg, AF_INET6, ll6));
	assert_true(creto_iso_addr_internal(cfg, AF_INET6, mapped_lo));
	assert_false(creto_iso_addr_internal(cfg, AF_INET6, mapped_ext));
	const char *text = "allow = 10.20.0.0/16\nlink_local = external\n";
	creto_err e;
	assert_int_equal(creto_iso_config_parse(cfg, text, strlen(text), &e), CRETO_OK);
	assert_true(creto_iso_addr_internal(cfg, AF_INET, in));
	assert_false(creto_iso_addr_internal(cfg, AF_INET, ll4));
	assert_false(creto_iso_addr_internal(cfg, AF_INET6, ll6));
	assert_true(creto_iso_addr_internal(cfg, AF_INET, lo4)); /* loopback always */
	free(cfg);
}

static void test_config_defaults_and_parse(void **state)
{
	(void)state;
	creto_iso_config *cfg = malloc(sizeof(*cfg));
	assert_non_null(cfg);
	creto_iso_config_default(cfg);
	assert_int_equal(cfg->timeout_ms, 2000);
	assert_int_equal(cfg->n_allow, 0);
	assert_int_equal(cfg->n_dns_name, 2);
	assert_string_equal(cfg->dns_name[0], "example.com");
	assert_int_equal(cfg->n_resolver, 5);
	assert_int_equal(cfg->n_canary, 5);
	assert_string_equal(cfg->resolv_conf, "/etc/resolv.conf");
	char s[CRETO_ISO_ADDRSTRLEN + 8];
	creto_iso_endpoint_format(&cfg->canary[0], s);
	assert_string_equal(s, "1.1.1.1:443");
	creto_iso_endpoint_format(&cfg->resolver[4], s);
	assert_string_equal(s, "[2001:4860:4860::8888]:53");

	const char *text = "# enclave config\n"
			   "  allow = 10.20.0.0/16  \n"
			   "allow=fd00:20::/48\r\n"
			   "\n"
			   "canary = 192.0.2.10:443   # must never answer\n"
			   "canary = [2001:db8::10]:22\n"
			   "resolver = none\n"
			   "dns_name = canary.example.\n"
			   "timeout = 1500ms\n"
			   "resolv_conf = /etc/enclave/resolv.conf\n"
			   "link_local = internal";
	creto_err e;
	creto_err_clear(&e);
	assert_int_equal(creto_iso_config_parse(cfg, text, strlen(text), &e), CRETO_OK);
	assert_int_equal(cfg->n_allow, 2);
	assert_int_equal(cfg->n_canary, 2);
	creto_iso_endpoint_format(&cfg->canary[1], s);
	assert_string_equal(s, "[2001:db8::10]:22");
	assert_int_equal(cfg->n_resolver, 0);
	assert_int_equal(cfg->n_dns_name, 1);
	assert_string_equal(cfg->dns_name[0], "canary.example.");
	assert_int_equal(cfg->timeout_ms, 1500);
	assert_string_equal(cfg->resolv_conf, "/etc/enclave/resolv.conf");

	creto_iso_config_default(cfg);
	const char *t2 = "timeout = 3\nresolver = 198.51.100.53\n";
	assert_int_equal(creto_iso_config_parse(cfg, t2, strlen(t2), &e), CRETO_OK);
	assert_int_equal(cfg->timeout_ms, 3000);
	assert_int_equal(cfg->n_resolver, 1);
	assert_int_equal(cfg->resolver[0].port, 53);
	assert_int_equal(cfg->n_canary, 5); /* an unnamed list keeps its defaults */
	free(cfg);
}

static void config_rejects(const char *text, size_t len, const char *want)
{
	creto_iso_config *cfg = malloc(sizeof(*cfg));
	assert_non_null(cfg);
	creto_iso_config_default(cfg);
	creto_err e;
	creto_err_clear(&e);
	assert_int_equal(creto_iso_config_parse(cfg, text, len, &e), CRETO_EUSAGE);
	if (strstr(e.msg, want) == NULL)
		fail_msg("'%s' lacks '%s'", e.msg, want);
	free(cfg);
}

static void test_config_errors(void **state)
{
	(void)state;
#define R(t, w) config_rejects(t, strlen(t), w)
	R("bogus = 1\n", "line 1: unknown key 'bogus'");
	R("allow 10.0.0.0/8\n", "line 1: expected 'key = value'");
	R("\nallow =\n", "line 2: allow: empty value");
	R("allow = 10.0.0.0/33\n", "line 1: allow: bad prefix");
	R("canary = 192.0.2.1\n", "canary: bad address:port");
	R("canary = host.example:443\n", "canary: bad address:port");
	R("resolver = 192.0.2.1:0\n", "resolver: bad address");
	R("dns_name = bad..name\n", "dns_name: bad name");
	R("dns_name = with space\n", "dns_name: bad name");
	R("dns_name = .\n", "dns_name: bad name");
	R("dns_name = a#b\n", "dns_name: bad name");
	R("allow = # nothing\n", "allow: empty value");
	R("dns_name = a234567890123456789012345678901234567890123456789012345678901234.example\n", "dns_name: bad name");
	R("timeout = 50ms\n", "timeout");
	R("timeout = 61s\n", "timeout");
	R("timeout = 2x\n", "timeout");
	R("timeout = -1\n", "timeout");
	R("resolv_conf = etc/resolv.conf\n", "absolute path");
	R("link_local = maybe\n", "link_local");
#undef R
	config_rejects("allow = 10.0.0.0/8\0\n", 20, "line 1: NUL byte");
	char big[5000];
	memset(big, 'a', sizeof(big));
	config_rejects(big, sizeof(big), "line 1: longer than");
	char many[65 * 24 + 1] = "";
	for (int i = 0; i < 65; i++) {
		char l[32];
		snprintf(l, sizeof(l), "allow = 10.%d.0.0/16\n", i);
		strcat(many, l);
	}
	config_rejects(many, strlen(many), "line 65: more than 64 allow entries");

	/* one key at a time (serve's [isolation] section): the same rules, the
	 * first value of a list replacing its defaults, errors without a line */
	creto_iso_config *cfg = malloc(sizeof(*cfg));
	assert_non_null(cfg);
	creto_iso_config_default(cfg);
	creto_err e;
	creto_err_clear(&e);
	assert_true(cfg->n_canary > 0);
	assert_int_equal(creto_iso_config_set(cfg, "canary", "192.0.2.1:443", &e), CRETO_OK);
	assert_int_equal(creto_iso_config_set(cfg, "canary", "192.0.2.2:443", &e), CRETO_OK);
	assert_int_equal(cfg->n_canary, 2);
	assert_int_equal(creto_iso_config_set(cfg, "resolver", "none", &e), CRETO_OK);
	assert_int_equal(cfg->n_resolver, 0);
	assert_int_equal(creto_iso_config_set(cfg, "allow", "nonsense", &e), CRETO_EUSAGE);
	assert_string_equal(e.msg, "allow: bad prefix 'nonsense'");
	assert_int_equal(creto_iso_config_set(cfg, "bogus", "1", &e), CRETO_EUSAGE);
	assert_string_equal(e.msg, "unknown key 'bogus'");
	free(cfg);
}

static void test_config_load(void **state)
{
	(void)state;
	creto_iso_config *cfg = malloc(sizeof(*cfg));
	assert_non_null(cfg);
	creto_err e;
	creto_err_clear(&e);
	assert_int_equal(creto_iso_config_load(cfg, NULL, &e), CRETO_OK);
	assert_int_equal(cfg->n_canary, 5);
	assert_int_equal(creto_iso_config_load(cfg, "/nonexistent/creto-iso.conf", &e), CRETO_EUSAGE);
	assert_non_null(strstr(e.msg, "config /nonexistent/creto-iso.conf"));
	char path[] = "/tmp/creto-iso-test-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	const char *t = "allow = 10.20.0.0/16\nfoo = bar\n";
	assert_int_equal(write(fd, t, strlen(t)), (ssize_t)strlen(t));
	close(fd);
	assert_int_equal(creto_iso_config_load(cfg, path, &e), CRETO_EUSAGE);
	assert_non_null(strstr(e.msg, "line 2: unknown key 'foo'"));
	unlink(path);
	free(cfg);
}

/* /proc/net/route prints each __be32 as a native integer with %08X. */
static void hex_be32(char out[9], uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
	uint8_t bytes[4] = {a, b, c, d};
	uint32_t v;
	memcpy(&v, bytes, 4);
	snprintf(out, 9, "%08X", v);
}

static void route_str(const creto_iso_route *r, char *out, size_t n)
{
	char d[CRETO_ISO_ADDRSTRLEN], g[INET6_ADDRSTRLEN] = "-";
	creto_iso_prefix_format(&r->dst, d);
	if (r->has_gateway)
		inet_ntop(r->dst.family, r->gateway, g, sizeof(g));
	snprintf(out, n, "%s via %s dev %s", d, g, r->dev);
}

static void test_proc_route(void **state)
{
	(void)state;
	char z[9], dst[9], gw[9], m0[9], m24[9], m16[9], bad[9];
	hex_be32(z, 0, 0, 0, 0);
	hex_be32(gw, 10, 99, 0, 1);
	hex_be32(dst, 10, 99, 0, 0);
	hex_be32(m0, 0, 0, 0, 0);
	hex_be32(m24, 255, 255, 255, 0);
	hex_be32(m16, 255, 255, 0, 0);
	hex_be32(bad, 255, 0, 255, 0);
	char text[2048];
	snprintf(text, sizeof(text),
		 "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
		 "v0\t%s\t%s\t0003\t0\t0\t0\t%s\t0\t0\t0\n"   /* default via 10.99.0.1 */
		 "v0\t%s\t%s\t0001\t0\t0\t0\t%s\t0\t0\t0\n"   /* 10.99.0.0/24 connected */
		 "v0\t%s\t%s\t0201\t0\t0\t0\t%s\t0\t0\t0\n"   /* reject: skipped */
		 "v0\t%s\t%s\t0000\t0\t0\t0\t%s\t0\t0\t0\n",  /* not up: skipped */
		 z, gw, m0, dst, z, m24, dst, z, m16, dst, z, m16);
	creto_iso_routes rs = {0};
	creto_err e;
	creto_err_clear(&e);
	assert_int_equal(creto_iso_parse_proc_route(text, strlen(text), &rs, &e), CRETO_OK);
	assert_int_equal(rs.n, 2);
	char s[160];
	route_str(&rs.v[0], s, sizeof(s));
	assert_string_equal(s, "0.0.0.0/0 via 10.99.0.1 dev v0");
	route_str(&rs.v[1], s, sizeof(s));
	assert_string_equal(s, "10.99.0.0/24 via - dev v0");
	assert_int_equal(rs.v[1].table, 254);
	creto_iso_routes_free(&rs);

	/* malformed inputs, each rejected with its line */
	char t2[512];
	snprintf(t2, sizeof(t2), "Iface\tDestination\n v0\t%s\t%s\t0003\t0\t0\t0\t%s\t0\t0\t0\n", z, gw, bad);
	assert_int_equal(creto_iso_parse_proc_route(t2, strlen(t2), &rs, &e), CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "line 2: non-contiguous netmask"));
	const char *t3 = "v0\tZZZZZZZZ\t00000000\t0003\t0\t0\t0\t00000000\t0\t0\t0\n";
	assert_int_equal(creto_iso_parse_proc_route(t3, strlen(t3), &rs, &e), CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "line 1: bad hex field"));
	const char *t4 = "v0\t00000000\t00000000\n";
	assert_int_equal(creto_iso_parse_proc_route(t4, strlen(t4), &rs, &e), CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "fields"));
	const char *t5 = "averyveryveryveryverylonginterfacename0\t00000000\t00000000\t0003\t0\t0\t0\t00000000\n";
	assert_int_equal(creto_iso_parse_proc_route(t5, strlen(t5), &rs, &e), CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "interface name too long"));
	const char *t6 = "v0\t000000000\t00000000\t0003\t0\t0\t0\t00000000\n";
	assert_int_equal(creto_iso_parse_proc_route(t6, strlen(t6), &rs, &e), CRETO_EREJECT);
	creto_iso_routes_free(&rs);
	assert_int_equal(creto_iso_parse_proc_route("", 0, &rs, &e), CRETO_OK);
	assert_int_equal(rs.n, 0);
}

static void test_proc_ipv6_route(void **state)
{
	(void)state;
	/* As the kernel writes it (a veth namespace with a default route). */
	const char *text =
		"20010db8000000000000000000000000 40 00000000000000000000000000000000 00 "
		"00000000000000000000000000000000 00000100 00000001 00000000 00000001       v0\n"
		"fe800000000000000000000000000000 40 00000000000000000000000000000000 00 "
		"00000000000000000000000000000000 00000100 00000001 00000000 00000001       v0\n"
		"00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
		"20010db8000000000000000000000001 00000400 00000001 00000000 00000003       v0\n"
		"00000000000000000000000000000001 80 00000000000000000000000000000000 00 "
		"00000000000000000000000000000000 00000000 00000002 00000000 80200001       lo\n"
		"ff000000000000000000000000000000 08 00000000000000000000000000000000 00 "
		"00000000000000000000000000000000 00000100 00000002 00000000 00000001       v0\n"
		"00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
		"00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo\n";
	creto_iso_routes rs = {0};
	creto_err e;
	creto_err_clear(&e);
	assert_int_equal(creto_iso_parse_proc_ipv6_route(text, strlen(text), &rs, &e), CRETO_OK);
	assert_int_equal(rs.n, 3);
	char s[160];
	route_str(&rs.v[0], s, sizeof(s));
	assert_string_equal(s, "2001:db8::/64 via - dev v0");
	route_str(&rs.v[1], s, sizeof(s));
	assert_string_equal(s, "fe80::/64 via - dev v0");
	route_str(&rs.v[2], s, sizeof(s));
	assert_string_equal(s, "::/0 via 2001:db8::1 dev v0");
	creto_iso_routes_free(&rs);

	const char *b1 = "00000000000000000000000000000000 81 00000000000000000000000000000000 00 "
			 "00000000000000000000000000000000 00000000 00000000 00000000 00000001 v0\n";
	assert_int_equal(creto_iso_parse_proc_ipv6_route(b1, strlen(b1), &rs, &e), CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "line 1: prefix length"));
	const char *b2 = "0000 00 v0\n";
	assert_int_equal(creto_iso_parse_proc_ipv6_route(b2, strlen(b2), &rs, &e), CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "fields, expected 10"));
	const char *b3 = "0000000000000000000000000000000g 00 00000000000000000000000000000000 00 "
			 "00000000000000000000000000000000 00000000 00000000 00000000 00000001 v0\n";
	assert_int_equal(creto_iso_parse_proc_ipv6_route(b3, strlen(b3), &rs, &e), CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "bad hex field"));
	char longline[700];
	memset(longline, '0', sizeof(longline));
	assert_int_equal(creto_iso_parse_proc_ipv6_route(longline, sizeof(longline), &rs, &e), CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "longer than"));
	creto_iso_routes_free(&rs);
}

static void test_resolv_conf(void **state)
{
	(void)state;
	const char *text = "# generated\n"
			   "; also a comment\n"
			   "search enclave.internal\n"
			   "nameserver 10.20.0.53\n"
			   "  nameserver\t2001:db8::53  \n"
			   "nameserver fe80::1%v0\n"
			   "nameserver not-an-address\n"
			   "nameserver\n"
			   "nameserver 10.0.0.1/8\n"
			   "nameserverx 192.0.2.9\n"
			   "options ndots:2\n"
			   "nameserver 127.0.0.53";
	creto_iso_nameservers ns;
	creto_iso_parse_resolv_conf(text, strlen(text), &ns);
	assert_int_equal(ns.n, 4);
	assert_int_equal(ns.n_bad, 2); /* a bare "nameserver" is no nameserver line */
	assert_int_equal(ns.n_glibc, 3); /* the indented line is glibc's no-op */
	assert_int_equal(ns.glibc[1], 0);
	assert_int_equal(ns.line[3], 12);
	char s[CRETO_ISO_ADDRSTRLEN + 8];
	creto_iso_endpoint_format(&ns.ns[0], s);
	assert_string_equal(s, "10.20.0.53:53");
	creto_iso_endpoint_format(&ns.ns[1], s);
	assert_string_equal(s, "[2001:db8::53]:53");
	creto_iso_endpoint_format(&ns.ns[2], s);
	assert_string_equal(s, "[fe80::1]:53");
	creto_iso_endpoint_format(&ns.ns[3], s);
	assert_string_equal(s, "127.0.0.53:53");

	/* an overlong line does not hide the nameserver after it */
	char buf[1200];
	memset(buf, 'x', 700);
	snprintf(buf + 700, sizeof(buf) - 700, "\nnameserver 192.0.2.53\n");
	creto_iso_parse_resolv_conf(buf, strlen(buf), &ns);
	assert_int_equal(ns.n, 1);

	/* more than the maximum: counted, not lost silently */
	char *many = malloc(70 * 24);
	assert_non_null(many);
	many[0] = '\0';
	for (int i = 0; i < 70; i++) {
		char l[32];
		snprintf(l, sizeof(l), "nameserver 10.0.0.%d\n", i);
		strcat(many, l);
	}
	creto_iso_parse_resolv_conf(many, strlen(many), &ns);
	assert_int_equal(ns.n, CRETO_ISO_MAX_ITEMS);
	assert_int_equal(ns.n_extra, 6);
	assert_int_equal(ns.n_glibc, 70);
	assert_int_equal(ns.n_bad, 0);
	free(many);
	creto_iso_parse_resolv_conf("", 0, &ns);
	assert_int_equal(ns.n, 0);
}

/* The address glibc 2.36 would use for one "nameserver VALUE" line, as
 * text ("" when it ignores the line). */
static void ns1(const char *line, size_t len, const char *want, int want_glibc)
{
	creto_iso_nameservers ns;
	creto_iso_parse_resolv_conf(line, len, &ns);
	if (want[0] == '\0') {
		if (ns.n != 0)
			fail_msg("'%s': read as a nameserver", line);
		return;
	}
	if (ns.n != 1)
		fail_msg("'%s': %zu nameservers, expected 1 (%s)", line, ns.n, want);
	char a[INET6_ADDRSTRLEN];
	assert_non_null(inet_ntop(ns.ns[0].family, ns.ns[0].addr, a, sizeof(a)));
	if (strcmp(a, want) != 0)
		fail_msg("'%s': read as %s, expected %s", line, a, want);
	assert_int_equal(ns.glibc[0], want_glibc);
}

#define NS(line, want) ns1(line, sizeof(line) - 1, want, 1)
#define NS_LOOSE(line, want) ns1(line, sizeof(line) - 1, want, 0)

static void test_resolv_conf_glibc_forms(void **state)
{
	(void)state;
	/* every inet_aton form of 8.8.8.8 (issue 11 §4b) */
	NS("nameserver 0x8.0x8.0x8.0x8\n", "8.8.8.8");
	NS("nameserver 134744072\n", "8.8.8.8");
	NS("nameserver 8.526344\n", "8.8.8.8");
	NS("nameserver 010.010.010.010\n", "8.8.8.8");
	NS("nameserver 8.8.2056\n", "8.8.8.8");
	NS("nameserver 0X08.0x0000000000000008.8.8", "8.8.8.8");
	NS("nameserver 00000000000000000000000010.8.8.8", "8.8.8.8");
	NS("nameserver 0x08080808", "8.8.8.8");
	NS("nameserver 01002004010", "8.8.8.8");
	NS("nameserver 4294967295", "255.255.255.255");
	NS("nameserver 0", "0.0.0.0");
	/* the value ends at a space or tab; whatever follows is ignored */
	NS("nameserver\t\t8.8.8.8 trailing words", "8.8.8.8");
	NS("nameserver 8.8.8.8\tx", "8.8.8.8");
	/* a NUL ends the line for glibc (getline, then C strings) */
	NS("nameserver 8.8.8.8\0garbage\n", "8.8.8.8");
	/* IPv6, with and without a scope (a scope glibc cannot read is ignored) */
	NS("nameserver 2001:4860:4860::8888\n", "2001:4860:4860::8888");
	NS("nameserver fe80::1%eth0\n", "fe80::1");
	NS("nameserver fe80::1%no-such-interface-at-all", "fe80::1");
	NS("nameserver ::ffff:8.8.8.8", "::ffff:8.8.8.8");
	/* what glibc ignores and nothing else reads either */
	NS("nameserver 4294967296", "");
	NS("nameserver 256.1.1.1", "");
	NS("nameserver 1.256.1.1", "");
	NS("nameserver 1.1.65536", "");
	NS("nameserver 1.16777216", "");
	NS("nameserver 08.8.8.8", "");
	NS("nameserver 0x.8.8.8", "");
	NS("nameserver 8.8.8.8.", "");
	NS("nameserver 8.8.8.8.8", "");
	NS("nameserver 8..8.8", "");
	NS("nameserver .8.8.8", "");
	NS("nameserver +8.8.8.8", "");
	NS("nameserver 8.8.8.8#comment", "");
	NS("nameserver 8.8.8.8%eth0", "");
	NS("nameserver 99999999999999999999999", "");
	NS("#nameserver 8.8.8.8", "");
	NS(";nameserver 8.8.8.8", "");
	NS("nameserver8.8.8.8", "");
	NS("Nameserver 8.8.8.8", "");
	NS("\0nameserver 8.8.8.8", "");
	/* lines glibc skips but looser readers take: still reported */
	NS_LOOSE(" nameserver 8.8.8.8", "8.8.8.8");
	NS_LOOSE("nameserver 8.8.8.8\r\n", "8.8.8.8");
	NS_LOOSE("nameserver 0x8.0x8.0x8.0x8\r", "8.8.8.8");
	NS_LOOSE("nameserver\v8.8.8.8", "8.8.8.8");
	/* no length limit: glibc reads lines of any length */
	char longl[5000];
	int k = snprintf(longl, sizeof(longl), "nameserver 8.8.8.8 ");
	memset(longl + k, 'x', sizeof(longl) - (size_t)k - 1);
	longl[sizeof(longl) - 1] = '\0';
	ns1(longl, strlen(longl), "8.8.8.8", 1);
	k = snprintf(longl, sizeof(longl), "nameserver 0x");
	memset(longl + k, '0', 3000);
	snprintf(longl + k + 3000, sizeof(longl) - (size_t)k - 3000, "8.8.8.8\n");
	ns1(longl, strlen(longl), "8.8.8.8", 1);
}

/* creto_iso_inet_aton_exact against the C library's inet_aton on the
 * system this runs on: glibc's __inet_aton_exact is inet_aton with no
 * bytes left over, i.e. inet_aton succeeding on a value without a blank. */
static void test_inet_aton_matches_libc(void **state)
{
	(void)state;
	static const char *const cases[] = {
		"0x8.0x8.0x8.0x8", "134744072", "8.526344", "010.010.010.010", "8.8.2056", "1", "0", "00", "0x",
		"0x0", "0xg", "08", "07", "0777", "0400.1.1.1", "255.255.255.255", "256.0.0.0", "1.2.3.4.5", "1.2.3.",
		".1.2.3", "1..2", "0xffffffff", "0x100000000", "4294967295", "4294967296", "037777777777",
		"040000000000", "1.0xffffff", "1.0x1000000", "1.2.0xffff", "1.2.0x10000", "1.2.3.0xff", "1.2.3.0x100",
		"0x0000000000000000000001.2.3.4", "-1", "+1", " 1", "1 ", "1\t", "1x", "0x1g", "0X1A.2.3.4",
		"18446744073709551615", "18446744073709551616", "9.9.9.9", "127.1", "0.0.0.0", "1.2.3.4\r",
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *c = cases[i];
		uint8_t mine[4];
		int ok_mine = creto_iso_inet_aton_exact(c, strlen(c), mine) == 0;
#ifdef __GLIBC__
		struct in_addr lib;
		int ok_lib = inet_aton(c, &lib) != 0 && strpbrk(c, " \t\n\r\v\f") == NULL;
		if (ok_mine != ok_lib)
			fail_msg("'%s': creto %s, libc %s", c, ok_mine ? "accepts" : "refuses",
				 ok_lib ? "accepts" : "refuses");
		if (ok_mine && memcmp(mine, &lib, 4) != 0)
			fail_msg("'%s': creto and libc read different addresses", c);
#else
		(void)ok_mine;
#endif
	}
}

/* want: the IP the proxy value points at ("" when it is a host name), or
 * NULL when it cannot be judged. */
static void px1(const char *v, const char *want_host, const char *want_port)
{
	creto_iso_proxy px;
	creto_iso_proxy_parse(v, &px);
	if (want_host == NULL) {
		if (px.problem == NULL)
			fail_msg("'%s': judged (host '%s'), expected a problem", v, px.host);
		assert_int_equal(px.family, 0);
		assert_null(strstr(px.host, "s3cret"));
		return;
	}
	if (px.problem != NULL || px.ambiguity != NULL)
		fail_msg("'%s': %s", v, px.problem ? px.problem : px.ambiguity);
	if (want_host[0] == '\0') {
		assert_int_equal(px.family, 0);
	} else {
		char a[INET6_ADDRSTRLEN];
		assert_non_null(inet_ntop(px.family, px.addr, a, sizeof(a)));
		if (strcmp(a, want_host) != 0)
			fail_msg("'%s': host %s, expected %s", v, a, want_host);
	}
	assert_string_equal(px.port, want_port);
	assert_null(strstr(px.host, "s3cret"));
}

/* The RFC 3986 host is host, and another client may read another one. */
static void px_amb(const char *v, const char *host)
{
	creto_iso_proxy px;
	creto_iso_proxy_parse(v, &px);
	if (px.problem != NULL || px.ambiguity == NULL)
		fail_msg("'%s': expected an ambiguity (problem %s)", v, px.problem ? px.problem : "none");
	char a[INET6_ADDRSTRLEN];
	assert_non_null(inet_ntop(px.family, px.addr, a, sizeof(a)));
	if (strcmp(a, host) != 0)
		fail_msg("'%s': host %s, expected %s", v, a, host);
	assert_null(strstr(px.host, "s3cret"));
}

static void test_proxy_parse(void **state)
{
	(void)state;
	/* the authority ends at the first '/', '?' or '#' (issue 11 §4b) */
	px_amb("http://8.8.8.8#@127.0.0.1", "8.8.8.8");
	px_amb("http://8.8.8.8?@127.0.0.1", "8.8.8.8");
	px_amb("http://8.8.8.8/@127.0.0.1", "8.8.8.8");
	px_amb("http://127.0.0.1#@8.8.8.8", "127.0.0.1"); /* urllib.request reads 8.8.8.8 */
	px_amb("http://u:s3cret@127.0.0.1/x?y#@8.8.8.8", "127.0.0.1");
	px1("http://8.8.8.8#frag", "8.8.8.8", "");
	px1("http://8.8.8.8?q", "8.8.8.8", "");
	px1("http://127.0.0.1:3128/", "127.0.0.1", "3128");
	/* userinfo: up to the last '@' of the authority */
	px1("http://user:s3cret@127.0.0.1:3128", "127.0.0.1", "3128");
	px1("http://127.0.0.1:3128@8.8.8.8", "8.8.8.8", "");
	px1("http://us@er:s3cret@8.8.8.8", "8.8.8.8", "");
	/* no scheme: an authority, as curl reads it */
	px1("8.8.8.8:3128", "8.8.8.8", "3128");
	px1("s3cret@127.0.0.1", "127.0.0.1", "");
	px1("socks5h://10.0.0.1:1080", "10.0.0.1", "1080");
	/* IPv6 literals */
	px1("http://[::1]:3128", "::1", "3128");
	px1("http://[2001:4860:4860::8888]", "2001:4860:4860::8888", "");
	px1("http://u:s3cret@[::1]", "::1", "");
	px1("http://[fe80::1%25eth0]:3128", "", "3128"); /* a zone: not judged as a literal */
	px1("http://[::1", NULL, "");
	px1("http://[::1]x:3128", NULL, "");
	px1("http://::1:3128", NULL, ""); /* port ":1:3128" */
	/* numeric hosts in inet_aton forms, as curl and getaddrinfo read them */
	px1("http://0x7f.1:3128", "127.0.0.1", "3128");
	px1("http://134744072", "8.8.8.8", "");
	px1("http://proxy.example:3128", "", "3128");
	/* what clients read differently */
	px1("http://8.8.8.8\\@127.0.0.1", NULL, "");
	px1("http://8.8.8.8 @127.0.0.1", NULL, "");
	px1("http://127.0.0.1:31x8", NULL, "");
	px1("http://127.0.0.1:123456789", NULL, "");
	px1("http://127.0.0.%31", "", ""); /* percent-encoded: a name to creto, so never internal */
	px1("http://%zz@127.0.0.1", NULL, "");
	px1("ht^tp://127.0.0.1", NULL, "");
	px1("http://", NULL, "");
	px1("http://s3cret@", NULL, "");
	px1("http://:3128", NULL, "");
	px1("", NULL, "");
}

static void test_guard_without_ctest_env(void **state)
{
	(void)state;
	/* outside the test suite's CRETO_TEST the guard never refuses */
	const char *saved = getenv("CRETO_TEST");
	char *copy = saved ? strdup(saved) : NULL;
	unsetenv("CRETO_TEST");
	creto_err e;
	creto_err_clear(&e);
	assert_int_equal(creto_iso_active_allowed(&e), CRETO_OK);
	/* with CRETO_TEST set and a bogus outer reference: refused, never probing */
	setenv("CRETO_TEST", "1", 1);
	setenv("CRETO_TEST_OUTER_NETNS", "12x", 1);
	assert_int_equal(creto_iso_active_allowed(&e), CRETO_EOP);
	assert_non_null(strstr(e.msg, "refused under CRETO_TEST"));
	/* the runner's own namespace named as the outer one: refused */
	struct stat st;
	assert_int_equal(stat("/proc/self/ns/net", &st), 0);
	char ino[32];
	snprintf(ino, sizeof(ino), "%llu", (unsigned long long)st.st_ino);
	setenv("CRETO_TEST_OUTER_NETNS", ino, 1);
	assert_int_equal(creto_iso_active_allowed(&e), CRETO_EOP);
	assert_non_null(strstr(e.msg, "refused under CRETO_TEST"));
	unsetenv("CRETO_TEST_OUTER_NETNS");
	if (copy != NULL) {
		setenv("CRETO_TEST", copy, 1);
		free(copy);
	} else {
		unsetenv("CRETO_TEST");
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prefix_parse),
		cmocka_unit_test(test_prefix_within),
		cmocka_unit_test(test_endpoint_parse),
		cmocka_unit_test(test_internal),
		cmocka_unit_test(test_config_defaults_and_parse),
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_config_load),
		cmocka_unit_test(test_proc_route),
		cmocka_unit_test(test_proc_ipv6_route),
		cmocka_unit_test(test_resolv_conf),
		cmocka_unit_test(test_resolv_conf_glibc_forms),
		cmocka_unit_test(test_inet_aton_matches_libc),
		cmocka_unit_test(test_proxy_parse),
		cmocka_unit_test(test_guard_without_ctest_env),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
