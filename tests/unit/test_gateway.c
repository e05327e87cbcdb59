/* test_gateway.c - unit tests for the gateway's parts that stand alone: the
 * strict HTTP parsers and chunked decoder (known answers and every
 * refusal), the config file parser (util/conf), the gateway's config and
 * policy, the balancer, the per-agent limits, and the /metrics scanner. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "creto/gateway.h"
#include "creto/nhi_oauth.h"
#include "creto/serve.h"
#include "gateway/body.h"
#include "gateway/http.h"
#include "gateway/internal.h"
#include "gateway/limits.h"
#include "gateway/refusals.h"
#include "gateway/upstream.h"
#include "util/conf.h"

static const gw_http_limits k_lim = {256, 1024, 8, 1000};

static int req(const char *s, gw_http_req *r)
{
	return gw_http_parse_request(s, strlen(s), &k_lim, r);
}

static void test_request_ok(void **state)
{
	(void)state;
	gw_http_req r;
	const char *s = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization:  Bearer t.o.k \r\n"
			"Content-Length: 2\r\nExpect: 100-continue\r\n\r\n{}NEXT";
	assert_int_equal(req(s, &r), 0);
	assert_int_equal(r.method, GW_M_POST);
	assert_int_equal(r.target_len, strlen("/v1/chat/completions"));
	assert_memory_equal(r.target, "/v1/chat/completions", r.target_len);
	assert_int_equal(r.minor, 1);
	assert_int_equal(r.content_length, 2);
	assert_int_equal(r.keep_alive, 1);
	assert_int_equal(r.expect_continue, 1);
	assert_int_equal(r.auth_len, strlen("Bearer t.o.k"));
	assert_memory_equal(r.auth, "Bearer t.o.k", r.auth_len);
	assert_string_equal(s + r.head_len, "{}NEXT");
	assert_null(r.ctype);
	assert_int_equal(req("POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded "
			     "\r\nContent-Length: 0\r\n\r\n", &r), 0);
	assert_int_equal(r.ctype_len, strlen("application/x-www-form-urlencoded"));
	assert_memory_equal(r.ctype, "application/x-www-form-urlencoded", r.ctype_len);
	assert_int_equal(req("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r), 0);
	assert_int_equal(r.keep_alive, 0);
	assert_int_equal(req("GET / HTTP/1.0\r\n\r\n", &r), 0);
	assert_int_equal(r.keep_alive, 0);
	assert_int_equal(r.content_length, -1);
	assert_int_equal(req("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &r), 0);
	assert_int_equal(r.keep_alive, 1);
	/* incomplete heads ask for more */
	assert_int_equal(req("GET / HTTP/1.1\r\nHost: x\r\n", &r), GW_HTTP_AGAIN);
	assert_int_equal(req("GET / HTTP/1.1\r\nHost: x\r\n\r", &r), GW_HTTP_AGAIN);
	assert_int_equal(req("G", &r), GW_HTTP_AGAIN);
}

static void refused(const char *s, int status)
{
	gw_http_req r;
	int rc = req(s, &r);
	if (rc != status)
		fail_msg("'%s': got %d, want %d (%s)", s, rc, status, r.reason ? r.reason : "");
	assert_non_null(r.reason);
}

static void test_request_refused(void **state)
{
	(void)state;
	refused("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400);
	refused("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n", 400);
	refused("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", 400);
	refused("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 1\r\n\r\n", 400);
	refused("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400);
	refused("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x10\r\n\r\n", 400);
	refused("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n", 413);
	refused("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n", 400);
	refused("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", 501);
	refused("GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n", 400);     /* obs-fold */
	refused("GET / HTTP/1.1\r\nHost: x\r\n\tb\r\n\r\n", 400);
	refused("GET / HTTP/1.1\nHost: x\n\n", 400);                         /* bare LF */
	refused("GET / HTTP/1.1\r\nHost: x\nY: 1\r\n\r\n", 400);
	refused("GET / HTTP/1.1\r\nHost: x\rY: 1\r\n\r\n", 400);             /* bare CR */
	refused("GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400);                  /* space before colon */
	refused("GET / HTTP/1.1\r\n: x\r\n\r\n", 400);
	refused("GET / HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\n\r\n", 400);
	refused("GET / HTTP/1.1\r\n\r\n", 400);                               /* no Host */
	refused("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);
	refused("GET / HTTP/1.1\r\nHost: a\r\nAuthorization: a\r\nAuthorization: b\r\n\r\n", 400);
	refused("GET / HTTP/1.1\r\nHost: a\r\nExpect: something\r\n\r\n", 417);
	refused("POST / HTTP/1.1\r\nHost: a\r\nContent-Type: a/b\r\ncontent-type: c/d\r\n\r\n", 400);
	refused("GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400);
	refused("GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n", 400);          /* origin-form only */
	refused("GET / HTTP/1.2\r\nHost: x\r\n\r\n", 505);
	refused("GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505);
	refused("GET / HTTX/1.1\r\nHost: x\r\n\r\n", 400);
	refused("GET / HTTP/1.1 \r\nHost: x\r\n\r\n", 400);
	refused("\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", 400);
	gw_http_req r;
	assert_int_equal(gw_http_parse_request("GET /\0 HTTP/1.1\r\n\r\n", 19, &k_lim, &r), 400);
	/* limits */
	char big[2048];
	memset(big, 'a', sizeof(big));
	memcpy(big, "GET /", 5);
	big[sizeof(big) - 1] = '\0';
	refused(big, 414);
	snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nHost: x\r\nX: %01100d\r\n\r\n", 0);
	refused(big, 431);
	refused("GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\nE: 1\r\nF: 1\r\nG: 1\r\nH: 1\r\n\r\n", 431);
	/* a head that never ends is refused once it passes head_max */
	memset(big, 'a', sizeof(big));
	memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
	big[sizeof(big) - 1] = '\0';
	refused(big, 431);
}

static void test_response(void **state)
{
	(void)state;
	gw_http_resp r;
	const char *s = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
			"Transfer-Encoding: chunked\r\n\r\n5\r\n";
	assert_int_equal(gw_http_parse_response(s, strlen(s), 4096, &r), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.chunked, 1);
	assert_int_equal(r.event_stream, 1);
	assert_int_equal(r.keep_alive, 1);
	assert_string_equal(s + r.head_len, "5\r\n");
	s = "HTTP/1.1 404 Not Found\r\ncontent-length: 12\r\nconnection: close\r\n\r\n";
	assert_int_equal(gw_http_parse_response(s, strlen(s), 4096, &r), 0);
	assert_int_equal(r.status, 404);
	assert_int_equal(r.content_length, 12);
	assert_int_equal(r.keep_alive, 0);
	s = "HTTP/1.1 200\r\n\r\n";
	assert_int_equal(gw_http_parse_response(s, strlen(s), 4096, &r), 0);
	assert_int_equal(gw_http_parse_response("HTTP/1.1 200 OK\r\n", 17, 4096, &r), GW_HTTP_AGAIN);
	static const char *const bad[] = {
		"HTTP/1.1 20 OK\r\n\r\n",
		"HTTP/2 200 OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
		"HTTP/1.1 200 OK\nX: y\n\n",
		"HTTP/1.1 200 OK\r\n folded\r\n\r\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(gw_http_parse_response(bad[i], strlen(bad[i]), 4096, &r), -1);
	char big[600];
	memset(big, 'x', sizeof(big));
	memcpy(big, "HTTP/1.1 200 OK\r\n", 17);
	assert_int_equal(gw_http_parse_response(big, sizeof(big), 512, &r), -1);
}

static void chunked_ok(const char *in, const char *want, size_t rest)
{
	/* byte by byte and all at once give the same data */
	for (int mode = 0; mode < 2; mode++) {
		char buf[256], out[256];
		size_t n = strlen(in), o = 0, pos = 0;
		memcpy(buf, in, n);
		gw_chunked d;
		memset(&d, 0, sizeof(d));
		while (pos < n && !d.done) {
			size_t step = mode ? n - pos : 1, data, used;
			assert_int_equal(gw_chunked_decode(&d, buf + pos, step, &data, &used), 0);
			memcpy(out + o, buf + pos, data);
			o += data;
			pos += used;
			if (used < step)
				break;
		}
		assert_int_equal(d.done, 1);
		assert_int_equal(n - pos, rest);
		out[o] = '\0';
		assert_string_equal(out, want);
	}
}

static void test_chunked(void **state)
{
	(void)state;
	chunked_ok("5\r\nhello\r\n6;a=b\r\n world\r\n0\r\n\r\n", "hello world", 0);
	chunked_ok("A\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\nGET", "0123456789", 3);
	chunked_ok("0\r\n\r\n", "", 0);
	static const char *const bad[] = {"x\r\n", "5\nhello", "5\r\nhelloX\r\n", "\r\n", "5 \r\n",
					  "fffffffffffffffff\r\n", "0\r\nbad\n"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char buf[64];
		size_t n = strlen(bad[i]), data, used;
		memcpy(buf, bad[i], n);
		gw_chunked d;
		memset(&d, 0, sizeof(d));
		assert_int_equal(gw_chunked_decode(&d, buf, n, &data, &used), -1);
	}
}

static const creto_conf_key k_schema[] = {
	{"a", "s", CRETO_CONF_STR, CRETO_CONF_MULTI, 0, 0},
	{"a", "i", CRETO_CONF_INT, 0, -5, 5},
	{"a", "b", CRETO_CONF_BOOL, 0, 0, 0},
	{"a", "t", CRETO_CONF_MS, 0, 0, 0},
	{"a", "z", CRETO_CONF_BYTES, 0, 0, 0},
	{"a", "p", CRETO_CONF_PATH, 0, 0, 0},
	{"b", "n", CRETO_CONF_STR, CRETO_CONF_NAMED, 0, 0},
	{"c", NULL, CRETO_CONF_STR, 0, 0, 0},
};
#define NS (sizeof(k_schema) / sizeof(k_schema[0]))

static void conf_bad(const char *text, const char *want)
{
	creto_conf *c = NULL;
	creto_err e;
	creto_err_clear(&e);
	assert_int_equal(creto_conf_parse(text, strlen(text), k_schema, NS, &c, &e), CRETO_EUSAGE);
	assert_null(c);
	if (strstr(e.msg, want) == NULL)
		fail_msg("'%s': error '%s' lacks '%s'", text, e.msg, want);
}

static void test_conf(void **state)
{
	(void)state;
	const char *t = "# comment\n[a]\ns = one two # trailing\ns = x#y\ni = -5\nb = yes\nt = 250ms\n"
			"z = 64k\np = /etc/x\n\n[b]\nn first = 1\nn second = 2\n[c]\nwhatever = 3\n";
	creto_conf *c = NULL;
	creto_err e;
	creto_err_clear(&e);
	assert_int_equal(creto_conf_parse(t, strlen(t), k_schema, NS, &c, &e), CRETO_OK);
	const creto_conf_entry *en = creto_conf_get(c, "a", "s");
	assert_string_equal(en->str, "x#y");
	assert_int_equal(en->line, 4);
	assert_int_equal(creto_conf_get(c, "a", "i")->num, -5);
	assert_int_equal(creto_conf_get(c, "a", "b")->num, 1);
	assert_int_equal(creto_conf_get(c, "a", "t")->num, 250);
	assert_int_equal(creto_conf_get(c, "a", "z")->num, 65536);
	assert_string_equal(creto_conf_get(c, "b", "n")->arg, "second");
	assert_string_equal(creto_conf_get(c, "c", "whatever")->str, "3");
	size_t ns = 0;
	for (size_t i = 0; i < creto_conf_count(c); i++)
		if (creto_conf_at(c, i)->key && strcmp(creto_conf_at(c, i)->name, "s") == 0)
			ns++;
	assert_int_equal(ns, 2);
	creto_conf_free(c);
	conf_bad("s = 1\n", "line 1: a value before any [section]");
	conf_bad("[a]\nq = 1\n", "line 2: unknown key 'q' in [a]");
	conf_bad("[d]\n", "line 1: unknown section [d]");
	conf_bad("[a]\ni = 6\n", "line 2: i: '6' out of range -5..5");
	conf_bad("[a]\ni = 1\ni = 2\n", "line 3: i given twice (first on line 2)");
	conf_bad("[a]\n[a]\n", "line 2: section [a] given twice");
	conf_bad("[a]\nb = maybe\n", "line 2: b: want yes or no");
	conf_bad("[a]\nt = 5 s\n", "line 2: t: want a duration");
	conf_bad("[a]\nz = 1T\n", "line 2: z: want a size");
	conf_bad("[a]\np = rel/path\n", "line 2: p: need an absolute path");
	conf_bad("[a]\ns =\n", "line 2: s: empty value");
	conf_bad("[a]\ns\n", "line 2: expected 'key = value'");
	conf_bad("[a]\nS = 1\n", "line 2: bad key 'S'");
	conf_bad("[b]\nn = 1\n", "line 2: n: want 'n NAME = value'");
	conf_bad("[b]\nn x = 1\nn x = 2\n", "line 3: n x given twice");
	conf_bad("[a]\ni x = 1\n", "line 2: i takes no name");
	conf_bad("[a\n", "line 1: expected '[section]'");
	conf_bad("[a]\ns = a\x01z\n", "line 2: s: control character");
	assert_int_equal(creto_conf_parse("[a]\ns = a\0b\n", 11, k_schema, NS, &c, &e), CRETO_EUSAGE);
	assert_string_equal(e.msg, "line 2: NUL byte");
	char longl[CRETO_CONF_LINE_MAX + 16];
	memset(longl, 'x', sizeof(longl));
	longl[sizeof(longl) - 1] = '\0';
	conf_bad(longl, "line 1: longer than");
	int64_t v;
	assert_int_equal(creto_conf_parse_ms("2s", &v), 0);
	assert_int_equal(v, 2000);
	assert_int_equal(creto_conf_parse_ms("5m", &v), 0);
	assert_int_equal(v, 300000);
	assert_int_equal(creto_conf_parse_ms("1h", &v), 0);
	assert_int_equal(v, 3600000);
	assert_int_equal(creto_conf_parse_ms("-1", &v), -1);
	assert_int_equal(creto_conf_parse_bytes("16M", &v), 0);
	assert_int_equal(v, 16 << 20);
	assert_int_equal(creto_conf_parse_bytes("1G", &v), 0);
	assert_int_equal(creto_conf_parse_bytes("9999999999999G", &v), -1);
}

static const char k_gw[] = "[gateway]\nlisten = 127.0.0.1:0\nlisten = unix:/run/g.sock\nnhi_db = /x/nhi.db\n"
			   "jwks = /x/jwks.json\n[upstream]\nmodel m1 = http://127.0.0.1:8000 "
			   "http://[::1]:8001/\nmodel m2 = http://10.0.0.1:9000\n[limits]\nconcurrency = 4\n"
			   "max_tokens = 512\n[isolation]\nallow = 10.0.0.0/8\n";

static void gw_bad(const char *text, const char *want)
{
	creto_gateway_config *c = NULL;
	creto_err e;
	creto_err_clear(&e);
	assert_int_equal(creto_gateway_config_parse(text, strlen(text), &c, &e), CRETO_EUSAGE);
	if (strstr(e.msg, want) == NULL)
		fail_msg("error '%s' lacks '%s'", e.msg, want);
}

/* The whole file `creto serve` reads (docs/config.md): every serve section,
 * with keys the gateway does not know, is syntax-checked and skipped; an
 * unknown section and a syntax error inside a serve section are refused. */
static const char k_full[] = "[hsm]\nmodule = /usr/lib/softhsm/libsofthsm2.so\ntoken = enclave\n"
			     "pin_file = /etc/creto/hsm/user.pin\n[trust]\nroot = /etc/creto/trust/root.json\n"
			     "[state]\ndir = /var/lib/creto/state\n[diode]\ndrop = /var/lib/creto/drop\n"
			     "settle = 500ms\n[nhi]\nstore = /var/lib/creto/nhi.db\nissuer = https://idp\n"
			     "[audit]\ndir = /var/lib/creto/audit\n[serve]\nuser = creto\n"
			     "[isolation]\nallow = 10.0.0.0/8\n[gateway]\nlisten = 127.0.0.1:0\n"
			     "nhi_db = /x/nhi.db\njwks = /x/jwks.json\n[upstream]\n"
			     "model m1 = http://127.0.0.1:8000\n[limits]\nconcurrency = 4\n";

static void test_gateway_config_full_file(void **state)
{
	(void)state;
	creto_gateway_config *c = NULL;
	creto_err e;
	creto_err_clear(&e);
	assert_int_equal(creto_gateway_config_parse(k_full, strlen(k_full), &c, &e), CRETO_OK);
	assert_int_equal(c->nlisten, 1);
	assert_int_equal(c->nmodel, 1);
	gw_limits l;
	gw_config_limits(c, "anyone", &l);
	assert_int_equal(l.concurrency, 4);
	creto_gateway_config_free(c);
	/* serve reads the same text */
	creto_serve_config *sc = NULL;
	assert_int_equal(creto_serve_config_parse(k_full, strlen(k_full), &sc, &e), CRETO_OK);
	creto_serve_config_free(sc);
	/* each serve section alone is accepted */
	static const char *const secs[] = {"hsm", "trust", "state", "diode", "nhi", "isolation", "audit", "serve"};
	for (size_t i = 0; i < sizeof secs / sizeof secs[0]; i++) {
		char t[256];
		snprintf(t, sizeof t,
			 "[gateway]\nlisten = 127.0.0.1:0\nnhi_db = /x/n\njwks = /x/j\n[upstream]\n"
			 "model m = http://127.0.0.1:1\n[%s]\nwhatever = 1\n",
			 secs[i]);
		if (creto_gateway_config_parse(t, strlen(t), &c, &e) != CRETO_OK)
			fail_msg("[%s]: %s", secs[i], e.msg);
		creto_gateway_config_free(c);
	}
	char t[sizeof k_full + 32];
	snprintf(t, sizeof t, "%s[vault]\nx = 1\n", k_full);
	gw_bad(t, "unknown section [vault]");
	gw_bad("[gateway]\nlisten = 127.0.0.1:0\n[hsm]\nmodule\n", "line 4: expected 'key = value'");
	gw_bad("[hsm]\n[hsm]\n", "line 2: section [hsm] given twice");
}

static void test_gateway_config(void **state)
{
	(void)state;
	creto_gateway_config *c = NULL;
	creto_err e;
	creto_err_clear(&e);
	assert_int_equal(creto_gateway_config_parse(k_gw, strlen(k_gw), &c, &e), CRETO_OK);
	assert_int_equal(c->nlisten, 2);
	assert_int_equal(c->listen[1].is_unix, 1);
	assert_int_equal(c->nmodel, 2);
	assert_int_equal(c->model[0].nrep, 2);
	assert_string_equal(c->model[0].rep[1].hostport, "[::1]:8001");
	assert_int_equal(c->body_max, 16 << 20);
	gw_limits l;
	gw_config_limits(c, "anyone", &l);
	assert_int_equal(l.concurrency, 4);
	assert_int_equal(l.max_tokens, 512);
	assert_int_equal(l.endpoints, GW_EP_ALL);
	const char *pol = "{\"version\":1,\"default\":{\"requests_per_minute\":60},"
			  "\"agents\":{\"a1\":{\"concurrency\":1,\"endpoints\":[\"models\"]}}}";
	assert_int_equal(creto_gateway_policy_parse(c, pol, strlen(pol), &e), CRETO_OK);
	gw_config_limits(c, "a1", &l);
	assert_int_equal(l.concurrency, 1);
	assert_int_equal(l.requests_per_minute, 60);
	assert_int_equal(l.endpoints, GW_EP_MODELS);
	gw_config_limits(c, "a2", &l);
	assert_int_equal(l.concurrency, 4);
	static const char *const badpol[] = {
		"{\"agents\":{\"a1\":{},\"a1\":{}}}",           /* duplicate keys */
		"{\"agents\":{\"a1\":{\"concurrency\":-1}}}",
		"{\"agents\":{\"a1\":{\"burst\":1}}}",
		"{\"agents\":{\"bad id\":{}}}",
		"{\"agents\":{\"a1\":{\"endpoints\":[\"invocations\"]}}}",
		"{\"version\":2}",
		"[]",
		"{\"x\":1}",
	};
	for (size_t i = 0; i < sizeof(badpol) / sizeof(badpol[0]); i++)
		assert_int_equal(creto_gateway_policy_parse(c, badpol[i], strlen(badpol[i]), &e), CRETO_EUSAGE);
	creto_gateway_config_free(c);
	gw_bad("[gateway]\nlisten = localhost:80\n", "line 2: listen: want IP:PORT");
	gw_bad("[gateway]\nlisten = 127.0.0.1:0\nnhi_db = /a\njwks = /b\n[upstream]\nmodel m = http://h:1\n",
	       "line 6: model m: want http://IP:PORT");
	gw_bad("[gateway]\nlisten = 127.0.0.1:0\nnhi_db = /a\njwks = /b\n[upstream]\nmodel m = http://1.2.3.4:1/v1\n",
	       "want http://IP:PORT");
	gw_bad("[gateway]\nlisten = 127.0.0.1:0\nnhi_db = /a\njwks = /b\n", "at least one model");
	gw_bad("[gateway]\nlisten = 127.0.0.1:0\n[upstream]\nmodel m = http://1.2.3.4:1\n", "nhi_db and jwks");
	gw_bad("[gateway]\nworkers = 0\n", "line 2: workers: '0' out of range");
	/* serve's [nhi] store and jwks stand in for [gateway] nhi_db and jwks,
	 * which win when given */
	static const char fb[] = "[nhi]\nstore = /var/lib/creto/nhi.db\njwks = /etc/j.json\n[gateway]\n"
				 "listen = 127.0.0.1:0\n[upstream]\nmodel m = http://1.2.3.4:1\n";
	assert_int_equal(creto_gateway_config_parse(fb, strlen(fb), &c, &e), CRETO_OK);
	assert_string_equal(c->nhi_db, "/var/lib/creto/nhi.db");
	assert_string_equal(c->jwks, "/etc/j.json");
	creto_gateway_config_free(c);
	static const char fb2[] = "[nhi]\nstore = /x.db\njwks = /x.json\n[gateway]\nnhi_db = /a\n"
				  "listen = 127.0.0.1:0\n[upstream]\nmodel m = http://1.2.3.4:1\n";
	assert_int_equal(creto_gateway_config_parse(fb2, strlen(fb2), &c, &e), CRETO_OK);
	assert_string_equal(c->nhi_db, "/a");
	assert_string_equal(c->jwks, "/x.json");
	creto_gateway_config_free(c);
	/* the token endpoint's keys */
	static const char tk[] = "[gateway]\nlisten = 127.0.0.1:0\nnhi_db = /a\njwks = /b\ntoken_endpoint = yes\n"
				 "issuer_key = pkcs11:token=t;object=issuer\ntoken_ttl = 5m\nreplay_state = /var/lib/s\n"
				 "token_rate_agent = -1\n[upstream]\nmodel m = http://1.2.3.4:1\n";
	assert_int_equal(creto_gateway_config_parse(tk, strlen(tk), &c, &e), CRETO_OK);
	assert_int_equal(c->token_endpoint, 1);
	assert_string_equal(c->issuer_key, "pkcs11:token=t;object=issuer");
	assert_int_equal(c->token_ttl, 300);
	assert_string_equal(c->replay_state, "/var/lib/s");
	assert_int_equal(c->replay_capacity, CRETO_OAUTH_REPLAY_DEFAULT);
	assert_int_equal(c->token_rate_agent, -1);
	creto_gateway_config_free(c);
	assert_int_equal(creto_gateway_config_parse(k_gw, strlen(k_gw), &c, &e), CRETO_OK);
	assert_int_equal(c->token_endpoint, 0);
	assert_int_equal(c->token_ttl, CRETO_OAUTH_TTL_DEFAULT);
	creto_gateway_config_free(c);
	gw_bad("[gateway]\nlisten = 127.0.0.1:0\nnhi_db = /a\njwks = /b\ntoken_endpoint = yes\n"
	       "[upstream]\nmodel m = http://1.2.3.4:1\n",
	       "token_endpoint = yes needs issuer_key");
	gw_bad("[gateway]\nlisten = unix:/run/g.sock\nnhi_db = /a\njwks = /b\ntoken_endpoint = yes\nissuer_key = /k\n"
	       "[upstream]\nmodel m = http://1.2.3.4:1\n",
	       "only Unix listeners: set issuer_url");
	gw_bad("[gateway]\ntoken_ttl = 2d\n", "line 2: token_ttl");
	gw_bad("[upstream]\nmodel a b = http://1.2.3.4:1\n", "line 2: model: bad name 'a b'");
}

static void test_pick(void **state)
{
	(void)state;
	gw_replica_cfg cfg[3];
	gw_replica reps[3];
	gw_model m = {0};
	memset(reps, 0, sizeof(reps));
	for (int i = 0; i < 3; i++) {
		reps[i].cfg = &cfg[i];
		reps[i].index = i;
		atomic_store(&reps[i].healthy, 1);
		m.rep[i] = &reps[i];
	}
	m.nrep = 3;
	uint64_t rng = 1;
	/* two random choices never pick the busiest of three */
	atomic_store(&reps[0].outstanding, 10);
	atomic_store(&reps[1].outstanding, 5);
	atomic_store(&reps[2].outstanding, 0);
	for (int i = 0; i < 100; i++)
		assert_ptr_not_equal(gw_pick(&m, &rng, 0, 0, NULL, 0, 0), &reps[0]);
	/* unhealthy, ejected and excluded replicas are skipped */
	atomic_store(&reps[2].healthy, 0);
	atomic_store(&reps[1].ejected_until, 1000);
	gw_replica *ex[1] = {&reps[0]};
	assert_null(gw_pick(&m, &rng, 0, 0, ex, 1, 500));
	assert_ptr_equal(gw_pick(&m, &rng, 0, 0, ex, 1, 1000), &reps[1]);
	/* passive ejection after max_fails, cleared by a success */
	atomic_store(&reps[2].healthy, 1);
	gw_replica_result(&reps[2], 0, 5000, 2, 100);
	assert_true(gw_replica_usable(&reps[2], 100));
	gw_replica_result(&reps[2], 0, 5000, 2, 100);
	assert_false(gw_replica_usable(&reps[2], 100));
	assert_true(gw_replica_usable(&reps[2], 5100));
	/* affinity: one prefix sticks to one replica while loads are even, and
	 * moves when that replica is over 1.25x the mean */
	for (int i = 0; i < 3; i++) {
		atomic_store(&reps[i].outstanding, 0);
		atomic_store(&reps[i].ejected_until, 0);
	}
	gw_replica *a = gw_pick(&m, &rng, 1, 0xabcdef, NULL, 0, 0);
	for (int i = 0; i < 20; i++)
		assert_ptr_equal(gw_pick(&m, &rng, 1, 0xabcdef, NULL, 0, 0), a);
	atomic_store(&a->outstanding, 4);
	assert_ptr_not_equal(gw_pick(&m, &rng, 1, 0xabcdef, NULL, 0, 0), a);
}

static void test_limits(void **state)
{
	(void)state;
	gw_limiter *l = gw_limiter_new();
	assert_non_null(l);
	gw_limits lim = {.concurrency = 2, .requests_per_minute = 3, .tokens_per_minute = 600};
	gw_admission a1, a2, a3;
	assert_int_equal(gw_admit(l, "x", &lim, 100, 0, &a1), GW_ADMIT_OK);
	assert_int_equal(gw_admit(l, "x", &lim, 100, 0, &a2), GW_ADMIT_OK);
	assert_int_equal(gw_admit(l, "x", &lim, 100, 0, &a3), GW_ADMIT_BURST); /* concurrency */
	assert_string_equal(a3.what, "concurrent requests");
	assert_int_equal(gw_admit(l, "y", &lim, 100, 0, &a3), GW_ADMIT_OK);  /* another agent */
	gw_settle(l, &a3, &lim, 10);
	gw_settle(l, &a1, &lim, 50);  /* 50 of 100 used: 50 back */
	assert_int_equal(gw_admit(l, "x", &lim, 100, 0, &a1), GW_ADMIT_OK);  /* third request */
	gw_settle(l, &a1, &lim, -1);
	assert_int_equal(gw_admit(l, "x", &lim, 100, 0, &a1), GW_ADMIT_BURST); /* 3 per minute */
	assert_string_equal(a1.what, "requests per minute");
	assert_true(a1.retry_after_ms > 19000 && a1.retry_after_ms <= 20001);
	assert_int_equal(gw_admit(l, "x", &lim, 100, 20001, &a1), GW_ADMIT_OK); /* refilled */
	gw_settle(l, &a1, &lim, -1);
	gw_settle(l, &a2, &lim, -1);
	assert_int_equal(gw_admit(l, "x", &lim, 601, 40000, &a1), GW_ADMIT_QUOTA); /* never fits */
	/* tokens: 600/min; 250 left after 100+50+100+100 reserved and 50 back */
	gw_limits tl = {.tokens_per_minute = 600};
	assert_int_equal(gw_admit(l, "z", &tl, 500, 0, &a1), GW_ADMIT_OK);
	assert_int_equal(gw_admit(l, "z", &tl, 200, 0, &a2), GW_ADMIT_BURST);
	assert_string_equal(a2.what, "tokens per minute");
	assert_true(a2.retry_after_ms >= 10000 && a2.retry_after_ms <= 10001);
	gw_settle(l, &a1, &tl, 100); /* 400 back */
	assert_int_equal(gw_admit(l, "z", &tl, 200, 0, &a2), GW_ADMIT_OK);
	gw_settle(l, &a2, &tl, 200);
	gw_limiter_free(l);
}

static void test_metrics_scan(void **state)
{
	(void)state;
	const char *t = "# HELP vllm:num_requests_waiting x\n"
			"vllm:num_requests_waiting{engine=\"0\",model_name=\"a b\"} 3.0\n"
			"vllm:num_requests_waiting{model_name=\"c\",engine=\"1\"} 2\n"
			"vllm:num_requests_waiting_other 100\n"
			"vllm:gpu_cache_usage_perc{engine=\"0\"} 0.5\n"
			"vllm:gpu_cache_usage_perc{engine=\"1\"} 0.9\n";
	assert_true(gw_metric(t, "vllm:num_requests_waiting", 0) == 5.0);
	assert_true(gw_metric(t, "vllm:gpu_cache_usage_perc", 1) == 0.9);
	assert_true(gw_metric(t, "vllm:kv_cache_usage_perc", 1) < 0);
}

/* What a flush reported. */
typedef struct seen {
	size_t n;
	int64_t total, other;
	int64_t expired_agent_a;
	int fail;
} seen;

static int seen_emit(void *ctx, const gw_refusal_rec *r)
{
	seen *s = ctx;
	s->n++;
	s->total += r->count;
	assert_true(r->first_us <= r->last_us);
	if (strcmp(r->rule, "other") == 0)
		s->other += r->count;
	if (strcmp(r->rule, "token_expired") == 0 && strcmp(r->agent, "agent-a") == 0)
		s->expired_agent_a += r->count;
	return s->fail;
}

static void test_refusals(void **state)
{
	(void)state;
	assert_null(gw_refusals_new(0));
	gw_refusals *r = gw_refusals_new(1000000);
	assert_non_null(r);
	seen s = {0};
	/* nothing pending: nothing reported */
	assert_int_equal(gw_refusals_flush(r, 1, 1, seen_emit, &s), 0);
	assert_int_equal(s.n, 0);
	int64_t t = 1000000000;
	int firsts = 0;
	for (int i = 0; i < 200; i++)
		firsts += gw_refusals_add(r, "token_malformed", "", "127.0.0.1", "token: want 3 segments", t + i);
	for (int i = 0; i < 50; i++)
		firsts += gw_refusals_add(r, "token_expired", "agent-a", "127.0.0.1", "token expired at ...", t + i);
	assert_int_equal(firsts, 2); /* the first of each key: the caller records it at once */
	/* the interval has not ended: held */
	assert_int_equal(gw_refusals_flush(r, t + 999999, 0, seen_emit, &s), 0);
	assert_int_equal(s.n, 0);
	/* it has: two records with the rest */
	assert_int_equal(gw_refusals_flush(r, t + 1000000, 0, seen_emit, &s), 0);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.total + firsts, 250);
	assert_int_equal(s.expired_agent_a, 49);
	/* reported once only */
	assert_int_equal(gw_refusals_flush(r, t + 5000000, 1, seen_emit, &s), 0);
	assert_int_equal(s.n, 2);

	/* a flood of distinct claimed agents: bounded table, the excess folded
	 * into one "other" record, nothing lost */
	memset(&s, 0, sizeof(s));
	char id[32];
	const int distinct = GW_REFUSAL_SLOTS * 3;
	firsts = 0;
	for (int i = 0; i < distinct; i++) {
		snprintf(id, sizeof(id), "agent-%d", i);
		firsts += gw_refusals_add(r, "token_signature", id, "10.0.0.1", "bad", t + i);
		firsts += gw_refusals_add(r, "token_signature", id, "10.0.0.1", "bad", t + i);
	}
	assert_true(firsts <= GW_REFUSAL_SLOTS); /* at most one immediate record per slot */
	assert_int_equal(gw_refusals_flush(r, t, 1, seen_emit, &s), 0);
	assert_int_equal(s.total + firsts, 2 * distinct);
	assert_true(s.n <= GW_REFUSAL_SLOTS + 1);
	assert_true(s.other >= 2 * (distinct - GW_REFUSAL_SLOTS));

	/* an emit that fails is counted for the caller */
	memset(&s, 0, sizeof(s));
	s.fail = 3;
	assert_int_equal(gw_refusals_add(r, "no_bearer_token", NULL, NULL, NULL, t), 1);
	assert_int_equal(gw_refusals_add(r, "no_bearer_token", NULL, NULL, NULL, t), 0);
	assert_int_equal(gw_refusals_flush(r, t, 1, seen_emit, &s), 1);
	gw_refusals_free(r);

	char sub[CRETO_NHI_ID_MAX + 1];
	gw_refusal_claimed_sub("abc.def.ghi", 11, sub, sizeof(sub));
	assert_string_equal(sub, "");
}

/* The members the gateway acts on, read by the scanner and, beyond its
 * limits, by jansson with the same answers. */
static void test_body(void **state)
{
	(void)state;
	gw_body b;
	char err[200];
	static const char ok[] = "{\"model\":\"m1\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
				 "\"max_completion_tokens\":7,\"max_tokens\":9,\"stream\":true}";
	assert_int_equal(gw_body_read(ok, sizeof(ok) - 1, "messages", &b, err, sizeof(err)), 0);
	assert_true(b.model_ok);
	assert_string_equal(b.model, "m1");
	assert_string_equal(b.mt_key, "max_completion_tokens");
	assert_int_equal(b.mt, 7);
	assert_true(b.stream && b.so_absent && !b.so_object && !b.include_usage);
	assert_int_equal(b.prompt_len, strlen("[{\"role\":\"user\",\"content\":\"hi\"}]"));
	assert_memory_equal(b.prompt, "[{\"role\":\"user\",\"content\":\"hi\"}]", b.prompt_len);
	gw_body_clear(&b);

	/* refused: duplicate keys (the model server would read the last),
	 * not an object, empty */
	static const char dup[] = "{\"model\":\"a\",\"model\":\"b\"}";
	assert_int_equal(gw_body_read(dup, sizeof(dup) - 1, "messages", &b, err, sizeof(err)), 1);
	assert_non_null(strstr(err, "duplicate JSON key"));
	assert_int_equal(gw_body_read("[1]", 3, "messages", &b, err, sizeof(err)), 1);
	assert_string_equal(err, "body: not a JSON object");
	assert_int_equal(gw_body_read("", 0, "messages", &b, err, sizeof(err)), 1);
	assert_string_equal(err, "empty body");

	/* a model that is not a usable string, a max_tokens that is not a
	 * non-negative integer */
	static const char bad[] = "{\"model\":\"\",\"max_tokens\":1.5}";
	assert_int_equal(gw_body_read(bad, sizeof(bad) - 1, "prompt", &b, err, sizeof(err)), 0);
	assert_false(b.model_ok);
	assert_true(b.mt_bad);
	assert_null(b.prompt);
	gw_body_clear(&b);

	/* beyond the scanner's limits (70 members; a stream_options of 80):
	 * jansson reads it, with the include_usage the client asked for */
	char big[4096];
	size_t n = (size_t)snprintf(big, sizeof(big), "{\"model\":\"m\",\"stream\":true,\"input\":[1],"
						    "\"stream_options\":{\"include_usage\":true");
	for (int i = 0; i < 80; i++)
		n += (size_t)snprintf(big + n, sizeof(big) - n, ",\"k%d\":%d", i, i);
	n += (size_t)snprintf(big + n, sizeof(big) - n, "}");
	for (int i = 0; i < 70; i++)
		n += (size_t)snprintf(big + n, sizeof(big) - n, ",\"x%d\":%d", i, i);
	n += (size_t)snprintf(big + n, sizeof(big) - n, "}");
	assert_true(n < sizeof(big));
	gw_body s;
	memset(&s, 0, sizeof(s));
	s.mt = -1;
	assert_int_equal(gw_body_scan(big, n, "input", &s, err, sizeof(err)), 2);
	assert_int_equal(gw_body_read(big, n, "input", &b, err, sizeof(err)), 0);
	assert_true(b.model_ok && b.stream && b.so_object && b.include_usage);
	assert_int_equal(b.mt, -1);
	assert_non_null(b.prompt_owned);
	assert_string_equal(b.prompt, "[1]");
	gw_body_clear(&b);
	assert_null(b.prompt);

	/* a stream_options within the body's limits but not within those of
	 * an object read on its own (its member names over 1,024 bytes in
	 * total): jansson reads it too, and include_usage is seen */
	n = (size_t)snprintf(big, sizeof(big), "{\"model\":\"m\",\"stream_options\":{\"include_usage\":true");
	for (int i = 0; i < 4; i++)
		n += (size_t)snprintf(big + n, sizeof(big) - n, ",\"%c%0254d\":%d", 'a' + i, 0, i);
	n += (size_t)snprintf(big + n, sizeof(big) - n, "}}");
	memset(&s, 0, sizeof(s));
	s.mt = -1;
	assert_int_equal(gw_body_scan(big, n, "messages", &s, err, sizeof(err)), 2);
	assert_int_equal(gw_body_read(big, n, "messages", &b, err, sizeof(err)), 0);
	assert_true(b.include_usage);
	gw_body_clear(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_ok),  cmocka_unit_test(test_request_refused),
		cmocka_unit_test(test_response),    cmocka_unit_test(test_chunked),
		cmocka_unit_test(test_conf),        cmocka_unit_test(test_gateway_config),
		cmocka_unit_test(test_gateway_config_full_file),
		cmocka_unit_test(test_pick),        cmocka_unit_test(test_limits),
		cmocka_unit_test(test_metrics_scan), cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_body),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
