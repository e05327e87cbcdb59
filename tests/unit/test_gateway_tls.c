/* test_gateway_tls.c - the gateway's TLS module (src/gateway/tls.c): the
 * file checks (key mode, link, encryption, a mismatched pair, an expired
 * certificate, the version setting), a real handshake between the server
 * side and an OpenSSL client over a non-blocking socketpair (ALPN, version,
 * plaintext left inside OpenSSL, close_notify), tls_min_version = 1.3, the
 * reload (a bad pair keeps the old context; a good one serves new
 * connections only), and the memory an idle server connection keeps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gateway/tls.h"

/* ---- OpenSSL's allocations counted (set before any is made) ---- */

static size_t g_live; /* bytes OpenSSL holds now */

static void *m_malloc(size_t n, const char *f, int l)
{
	(void)f;
	(void)l;
	size_t *p = malloc(n + 16);
	if (p == NULL)
		return NULL;
	p[0] = n;
	g_live += n;
	return (char *)p + 16;
}

static void m_free(void *q, const char *f, int l)
{
	(void)f;
	(void)l;
	if (q == NULL)
		return;
	size_t *p = (size_t *)(void *)((char *)q - 16);
	g_live -= p[0];
	free(p);
}

static void *m_realloc(void *q, size_t n, const char *f, int l)
{
	if (q == NULL)
		return m_malloc(n, f, l);
	size_t *p = (size_t *)(void *)((char *)q - 16);
	size_t old = p[0];
	size_t *np = realloc(p, n + 16);
	if (np == NULL)
		return NULL;
	np[0] = n;
	g_live = g_live - old + n;
	return (char *)np + 16;
}

/* ---- fixtures ---- */

static char g_dir[64];

static void path(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", g_dir, name);
}

static EVP_PKEY *ec_key(void)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	assert_non_null(k);
	return k;
}

/* A self-signed certificate for 127.0.0.1, valid from now + from_s to now + to_s. */
static X509 *self_signed(EVP_PKEY *k, const char *cn, long from_s, long to_s)
{
	X509 *x = X509_new();
	assert_non_null(x);
	assert_int_equal(X509_set_version(x, 2), 1);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), from_s);
	X509_gmtime_adj(X509_getm_notAfter(x), to_s);
	X509_NAME *nm = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, nm);
	X509_set_pubkey(x, k);
	X509V3_CTX v3;
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "IP:127.0.0.1");
	assert_non_null(ext);
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);
	return x;
}

static void write_cert(const char *name, X509 *x)
{
	char p[128];
	path(p, sizeof(p), name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_X509(f, x), 1);
	fclose(f);
}

static void write_key(const char *name, EVP_PKEY *k, mode_t mode, const char *pass)
{
	char p[128];
	path(p, sizeof(p), name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	if (pass == NULL)
		assert_int_equal(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
	else
		assert_int_equal(PEM_write_PrivateKey(f, k, EVP_aes_128_cbc(), (unsigned char *)pass,
						      (int)strlen(pass), NULL, NULL),
				 1);
	fclose(f);
	assert_int_equal(chmod(p, mode), 0);
}

static X509 *g_cert_a, *g_cert_b;

static int setup(void **state)
{
	(void)state;
	snprintf(g_dir, sizeof(g_dir), "/tmp/creto-test-gwtls.XXXXXX");
	assert_non_null(mkdtemp(g_dir));
	EVP_PKEY *a = ec_key(), *b = ec_key();
	g_cert_a = self_signed(a, "creto-a", 0, 86400);
	g_cert_b = self_signed(b, "creto-b", 0, 86400);
	X509 *old = self_signed(a, "creto-old", -2 * 86400, -86400);
	write_cert("a.crt", g_cert_a);
	write_cert("b.crt", g_cert_b);
	write_cert("old.crt", old);
	write_key("a.key", a, 0600, NULL);
	write_key("b.key", b, 0400, NULL);
	write_key("open.key", a, 0640, NULL);
	write_key("enc.key", a, 0600, "secret");
	X509_free(old);
	EVP_PKEY_free(a);
	EVP_PKEY_free(b);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	const char *names[] = {"a.crt", "b.crt", "old.crt", "a.key", "b.key", "open.key", "enc.key", "link.key"};
	char p[128];
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		path(p, sizeof(p), names[i]);
		(void)unlink(p);
	}
	(void)rmdir(g_dir);
	X509_free(g_cert_a);
	X509_free(g_cert_b);
	return 0;
}

static int64_t now(void)
{
	return (int64_t)time(NULL);
}

/* gw_tls_new on files of g_dir; the error message in msg. */
static int try_new(const char *cert, const char *key, int minv, gw_tls **t, char *msg, size_t n)
{
	char c[128], k[128];
	path(c, sizeof(c), cert);
	path(k, sizeof(k), key);
	creto_err e;
	creto_err_clear(&e);
	*t = NULL;
	int rc = gw_tls_new(c, k, minv, now(), t, &e);
	snprintf(msg, n, "%s", e.msg);
	return rc;
}

static void test_files(void **state)
{
	(void)state;
	gw_tls *t = NULL;
	char msg[512];
	assert_int_equal(try_new("a.crt", "a.key", 12, &t, msg, sizeof(msg)), CRETO_OK);
	gw_tls_free(t);
	assert_int_equal(try_new("b.crt", "b.key", 13, &t, msg, sizeof(msg)), CRETO_OK); /* 0400 is fine */
	gw_tls_free(t);

	assert_int_equal(try_new("a.crt", "open.key", 12, &t, msg, sizeof(msg)), CRETO_EUSAGE);
	assert_non_null(strstr(msg, "open.key: mode 0640, want no group or other bits (chmod 600)"));
	assert_null(t);
	assert_int_equal(try_new("a.crt", "b.key", 12, &t, msg, sizeof(msg)), CRETO_EUSAGE);
	assert_non_null(strstr(msg, "b.key: does not match the certificate in"));
	assert_int_equal(try_new("a.crt", "enc.key", 12, &t, msg, sizeof(msg)), CRETO_EUSAGE);
	assert_non_null(strstr(msg, "enc.key: not an unencrypted PEM private key"));
	assert_int_equal(try_new("old.crt", "a.key", 12, &t, msg, sizeof(msg)), CRETO_EUSAGE);
	assert_non_null(strstr(msg, "old.crt: the certificate has expired"));
	assert_int_equal(try_new("a.key", "a.key", 12, &t, msg, sizeof(msg)), CRETO_EUSAGE);
	assert_non_null(strstr(msg, "a.key: no PEM certificate"));
	assert_int_equal(try_new("a.crt", "none.key", 12, &t, msg, sizeof(msg)), CRETO_EOP);
	assert_non_null(strstr(msg, "none.key"));
	assert_int_equal(try_new("a.crt", "a.key", 11, &t, msg, sizeof(msg)), CRETO_EUSAGE);
	char target[128], link[128];
	path(target, sizeof(target), "a.key");
	path(link, sizeof(link), "link.key");
	assert_int_equal(symlink(target, link), 0);
	assert_int_equal(try_new("a.crt", "link.key", 12, &t, msg, sizeof(msg)), CRETO_EUSAGE);
	assert_non_null(strstr(msg, "link.key: is a symbolic link"));
	/* every message is one line */
	assert_null(strchr(msg, '\n'));
}

/* ---- a client against the server side over a socketpair ---- */

struct pair {
	int fd[2];
	SSL_CTX *cctx;
	SSL *c, *s;
};

static void pair_open(struct pair *p, gw_tls *t, X509 *trust, int max_version)
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, p->fd), 0);
	p->cctx = SSL_CTX_new(TLS_client_method());
	assert_non_null(p->cctx);
	X509_STORE_add_cert(SSL_CTX_get_cert_store(p->cctx), trust);
	SSL_CTX_set_verify(p->cctx, SSL_VERIFY_PEER, NULL);
	if (max_version)
		SSL_CTX_set_max_proto_version(p->cctx, max_version);
	static const unsigned char alpn[] = "\x02h2\x08http/1.1";
	SSL_CTX_set_alpn_protos(p->cctx, alpn, sizeof(alpn) - 1);
	p->c = SSL_new(p->cctx);
	SSL_set_fd(p->c, p->fd[0]);
	SSL_set_connect_state(p->c);
	p->s = gw_tls_conn(t, p->fd[1]);
	assert_non_null(p->s);
}

/* Step both sides until both finish or one fails: 1 done, 0 failed. */
static int pair_handshake(struct pair *p)
{
	int cdone = 0, sdone = 0;
	for (int i = 0; i < 100 && !(cdone && sdone); i++) {
		if (!cdone) {
			int r = SSL_do_handshake(p->c);
			if (r == 1)
				cdone = 1;
			else if (SSL_get_error(p->c, r) != SSL_ERROR_WANT_READ)
				return 0;
		}
		if (!sdone) {
			int r = gw_tls_handshake(p->s);
			if (r == GW_TLS_OK)
				sdone = 1;
			else if (r != GW_TLS_WANT_READ && r != GW_TLS_WANT_WRITE)
				return 0;
		}
	}
	ERR_clear_error();
	return cdone && sdone;
}

static void pair_close(struct pair *p)
{
	SSL_free(p->c);
	gw_tls_close(p->s, 0);
	SSL_CTX_free(p->cctx);
	close(p->fd[0]);
	close(p->fd[1]);
}

static gw_tls *open_a(int minv)
{
	gw_tls *t = NULL;
	char msg[512];
	assert_int_equal(try_new("a.crt", "a.key", minv, &t, msg, sizeof(msg)), CRETO_OK);
	return t;
}

static void test_handshake_io(void **state)
{
	(void)state;
	gw_tls *t = open_a(12);
	struct pair p;
	pair_open(&p, t, g_cert_a, 0);
	assert_true(pair_handshake(&p));
	assert_string_equal(gw_tls_version(p.s), "TLSv1.3");
	const unsigned char *proto = NULL;
	unsigned int plen = 0;
	SSL_get0_alpn_selected(p.c, &proto, &plen);
	assert_int_equal(plen, 8);
	assert_memory_equal(proto, "http/1.1", 8);
	/* 20000 bytes from the client (two records) read 1000 at a time: the
	 * rest of a record waits inside OpenSSL, where epoll cannot see it */
	static char big[20000], got[20000];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)('a' + i % 26);
	assert_int_equal(SSL_write(p.c, big, (int)sizeof(big)), (int)sizeof(big));
	size_t have = 0, n = 0;
	int saw_pending = 0;
	for (int i = 0; i < 200 && have < sizeof(big); i++) {
		int r = gw_tls_read(p.s, got + have, 1000, &n);
		if (r == GW_TLS_OK) {
			have += n;
			saw_pending |= SSL_has_pending(p.s);
		} else {
			assert_int_equal(r, GW_TLS_WANT_READ);
		}
	}
	assert_int_equal(have, sizeof(big));
	assert_memory_equal(got, big, sizeof(big));
	assert_true(saw_pending);
	size_t k = 0;
	assert_int_equal(gw_tls_read(p.s, got, sizeof(got), &k), GW_TLS_WANT_READ);
	/* server to client */
	assert_int_equal(gw_tls_write(p.s, "HTTP/1.1 200 OK\r\n\r\n", 19, &k), GW_TLS_OK);
	assert_int_equal(k, 19);
	char buf[64];
	assert_int_equal(SSL_read(p.c, buf, sizeof(buf)), 19);
	/* no session ticket came before the data: nothing to resume */
	assert_int_equal(SSL_SESSION_is_resumable(SSL_get_session(p.c)), 0);
	/* close_notify */
	gw_tls_close(p.s, 1);
	p.s = NULL;
	int r = SSL_read(p.c, buf, sizeof(buf));
	assert_true(r <= 0);
	assert_int_equal(SSL_get_error(p.c, r), SSL_ERROR_ZERO_RETURN);
	ERR_clear_error();
	pair_close(&p);

	/* the client sends close_notify: the server reads GW_TLS_CLOSED */
	pair_open(&p, t, g_cert_a, TLS1_2_VERSION);
	assert_true(pair_handshake(&p));
	assert_string_equal(gw_tls_version(p.s), "TLSv1.2");
	assert_string_equal(gw_tls_cipher(p.s), "ECDHE-ECDSA-AES128-GCM-SHA256");
	assert_int_equal(SSL_shutdown(p.c), 0);
	assert_int_equal(gw_tls_read(p.s, got, sizeof(got), &k), GW_TLS_CLOSED);
	pair_close(&p);

	/* TLS 1.2 renegotiation asked by the client: refused */
	pair_open(&p, t, g_cert_a, TLS1_2_VERSION);
	assert_true(pair_handshake(&p));
	assert_int_equal(SSL_renegotiate(p.c), 1);
	int cr = SSL_do_handshake(p.c);
	assert_int_equal(SSL_get_error(p.c, cr), SSL_ERROR_WANT_READ);
	assert_int_equal(gw_tls_read(p.s, got, sizeof(got), &k), GW_TLS_WANT_READ);
	cr = SSL_do_handshake(p.c);
	assert_true(cr <= 0);
	assert_int_equal(SSL_get_error(p.c, cr), SSL_ERROR_SSL);
	ERR_clear_error();
	pair_close(&p);

	/* a client that offers only h2: refused (no_application_protocol) */
	pair_open(&p, t, g_cert_a, 0);
	static const unsigned char h2[] = "\x02h2";
	SSL_set_alpn_protos(p.c, h2, sizeof(h2) - 1);
	assert_false(pair_handshake(&p));
	pair_close(&p);

	/* plain HTTP to the TLS side */
	pair_open(&p, t, g_cert_a, 0);
	assert_int_equal(write(p.fd[0], "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27), 27);
	assert_int_equal(gw_tls_handshake(p.s), GW_TLS_PLAIN_HTTP);
	pair_close(&p);
	gw_tls_free(t);
}

static void test_min_version(void **state)
{
	(void)state;
	gw_tls *t = open_a(13);
	struct pair p;
	pair_open(&p, t, g_cert_a, TLS1_2_VERSION);
	assert_false(pair_handshake(&p));
	pair_close(&p);
	pair_open(&p, t, g_cert_a, 0);
	assert_true(pair_handshake(&p));
	assert_string_equal(gw_tls_version(p.s), "TLSv1.3");
	pair_close(&p);
	gw_tls_free(t);
}

static void test_reload(void **state)
{
	(void)state;
	gw_tls *t = open_a(12);
	struct pair before;
	pair_open(&before, t, g_cert_a, 0); /* made with the first context */
	char c[128], k[128], kb[128];
	path(c, sizeof(c), "b.crt");
	path(k, sizeof(k), "a.key");
	path(kb, sizeof(kb), "b.key");
	creto_err e;
	creto_err_clear(&e);
	/* a bad pair: refused, the old context stays */
	assert_int_equal(gw_tls_reload(t, c, k, 12, now(), &e), CRETO_EUSAGE);
	assert_non_null(strstr(e.msg, "does not match"));
	struct pair p;
	pair_open(&p, t, g_cert_a, 0);
	assert_true(pair_handshake(&p));
	pair_close(&p);
	/* a good one: new connections get it */
	assert_int_equal(gw_tls_reload(t, c, kb, 12, now(), &e), CRETO_OK);
	pair_open(&p, t, g_cert_b, 0);
	assert_true(pair_handshake(&p));
	X509 *peer = SSL_get1_peer_certificate(p.c);
	assert_non_null(peer);
	assert_int_equal(X509_cmp(peer, g_cert_b), 0);
	X509_free(peer);
	pair_close(&p);
	/* the connection made before keeps the old context */
	assert_true(pair_handshake(&before));
	pair_close(&before);
	gw_tls_free(t);
}

/* What an idle server connection keeps after its handshake (docs/gateway.md
 * "TLS": the figure printed here). */
static void test_idle_memory(void **state)
{
	(void)state;
	gw_tls *t = open_a(12);
	struct pair p[8];
	size_t n = sizeof(p) / sizeof(p[0]), least = SIZE_MAX;
	for (size_t i = 0; i < n; i++) {
		size_t before = g_live;
		pair_open(&p[i], t, g_cert_a, 0);
		assert_true(pair_handshake(&p[i]));
		/* the client's share out: what stays is the server's */
		SSL_free(p[i].c);
		SSL_CTX_free(p[i].cctx);
		p[i].c = NULL;
		p[i].cctx = NULL;
		size_t kept = g_live > before ? g_live - before : 0;
		if (kept < least)
			least = kept; /* the first handshake also fills OpenSSL's lazy tables */
	}
	print_message("memory: an idle TLS 1.3 server connection keeps %zu bytes in OpenSSL (its SSL object)\n",
		      least);
	assert_true(least < 16384);
	for (size_t i = 0; i < n; i++)
		pair_close(&p[i]);
	gw_tls_free(t);
}

int main(void)
{
	/* before any OpenSSL allocation */
	if (!CRYPTO_set_mem_functions(m_malloc, m_realloc, m_free))
		return 1;
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_files),       cmocka_unit_test(test_handshake_io),
		cmocka_unit_test(test_min_version), cmocka_unit_test(test_reload),
		cmocka_unit_test(test_idle_memory),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
