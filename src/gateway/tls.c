/*
 * tls.c - the gateway's TLS: a server SSL_CTX from a PEM certificate chain
 * and a PEM private key (checked like every secret file here), swapped
 * whole on reload, and the non-blocking handshake / read / write / close
 * of one connection (docs/gateway.md "TLS").
 */
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway/tls.h"
#include "util/file.h"

struct gw_tls {
	pthread_mutex_t mu; /* guards ctx against a reload between load and SSL_new */
	SSL_CTX *ctx;
};

/* TLS 1.2: forward secrecy and AEAD only, server's order.  TLS 1.3 keeps
 * OpenSSL's suites (all AEAD).  Under the FIPS provider ChaCha20 is not
 * available and is skipped. */
static const char k_ciphers12[] = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
				  "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
				  "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

/* The first queued OpenSSL reason (then the queue is emptied). */
static const char *ossl_reason(char *buf, size_t n)
{
	unsigned long code = ERR_peek_error();
	const char *r = code ? ERR_reason_error_string(code) : NULL;
	snprintf(buf, n, "%s", r ? r : "unknown error");
	ERR_clear_error();
	return buf;
}

/* ALPN: "http/1.1" or nothing: a client that offers only other protocols
 * (h2) is refused with no_application_protocol rather than spoken to in
 * a protocol it did not ask for. */
static int alpn_select(SSL *s, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
		       unsigned int inlen, void *arg)
{
	(void)s;
	(void)arg;
	for (unsigned int i = 0; i < inlen;) {
		unsigned int l = in[i];
		if (l == 0 || i + 1 + l > inlen)
			break;
		if (l == 8 && memcmp(in + i + 1, "http/1.1", 8) == 0) {
			*out = in + i + 1;
			*outlen = 8;
			return SSL_TLSEXT_ERR_OK;
		}
		i += 1 + l;
	}
	return SSL_TLSEXT_ERR_ALERT_FATAL;
}

static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1; /* never prompt: an encrypted key is refused */
}

/* The private key file: a regular file (no symbolic link), owned by root
 * or the running user, no group or other bits; read into a fixed buffer
 * that is wiped. */
static int load_key(const char *path, EVP_PKEY **out, creto_err *e)
{
	*out = NULL;
	unsigned char buf[GW_TLS_KEY_MAX];
	size_t n = 0;
	int rc = creto_file_read_secret(path, buf, sizeof(buf), &n, e);
	if (rc != CRETO_OK) { /* "tls_key PATH: why"; the file's own fault is configuration */
		char why[CRETO_ERR_MSG_MAX];
		memcpy(why, e->msg, sizeof(why));
		rc = creto_err_set(e, rc == CRETO_EREJECT ? CRETO_EUSAGE : rc, "tls_key %s", why);
	} else {
		BIO *b = BIO_new_mem_buf(buf, (int)n);
		EVP_PKEY *pk = b ? PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL) : NULL;
		BIO_free(b);
		if (pk == NULL) {
			char why[160];
			rc = creto_err_set(e, CRETO_EUSAGE, "tls_key %s: not an unencrypted PEM private key (%s)", path,
					   ossl_reason(why, sizeof(why)));
		}
		*out = pk;
	}
	OPENSSL_cleanse(buf, sizeof(buf));
	return rc;
}

/* The certificate chain: the leaf first, then its intermediates. */
static int load_chain(const char *path, int64_t now, X509 **leaf, STACK_OF(X509) **chain, creto_err *e)
{
	*leaf = NULL;
	*chain = NULL;
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = creto_file_read_follow(path, GW_TLS_CERT_MAX, &buf, &len, e);
	if (rc != CRETO_OK)
		return creto_err_ctx(e, "tls_cert");
	char why[160];
	BIO *b = BIO_new_mem_buf(buf, (int)len);
	X509 *x = b ? PEM_read_bio_X509_AUX(b, NULL, NULL, NULL) : NULL;
	STACK_OF(X509) *sk = sk_X509_new_null();
	if (x == NULL || sk == NULL) {
		rc = creto_err_set(e, CRETO_EUSAGE, "tls_cert %s: no PEM certificate (%s)", path,
				   ossl_reason(why, sizeof(why)));
		goto out;
	}
	for (;;) {
		X509 *ca = PEM_read_bio_X509(b, NULL, NULL, NULL);
		if (ca == NULL)
			break;
		if (!sk_X509_push(sk, ca)) {
			X509_free(ca);
			rc = creto_err_set(e, CRETO_EOP, "tls_cert %s: out of memory", path);
			goto out;
		}
	}
	unsigned long last = ERR_peek_last_error();
	if (ERR_GET_LIB(last) == ERR_LIB_PEM && ERR_GET_REASON(last) == PEM_R_NO_START_LINE) {
		ERR_clear_error(); /* the end of the file */
	} else if (last != 0) {
		rc = creto_err_set(e, CRETO_EUSAGE, "tls_cert %s: a bad certificate after the first (%s)", path,
				   ossl_reason(why, sizeof(why)));
		goto out;
	}
	time_t t = (time_t)now;
	if (X509_cmp_time(X509_get0_notAfter(x), &t) <= 0) {
		rc = creto_err_set(e, CRETO_EUSAGE, "tls_cert %s: the certificate has expired", path);
		goto out;
	}
	*leaf = x;
	*chain = sk;
	x = NULL;
	sk = NULL;
out:
	X509_free(x);
	sk_X509_pop_free(sk, X509_free);
	BIO_free(b);
	free(buf);
	return rc;
}

static int build(const char *cert, const char *key, int min_version, int64_t now, SSL_CTX **out, creto_err *e)
{
	*out = NULL;
	if (min_version != 12 && min_version != 13)
		return creto_err_set(e, CRETO_EUSAGE, "tls_min_version: want 1.2 or 1.3");
	ERR_clear_error();
	X509 *leaf = NULL;
	STACK_OF(X509) *chain = NULL;
	EVP_PKEY *pk = NULL;
	SSL_CTX *ctx = NULL;
	char why[160];
	int rc = load_chain(cert, now, &leaf, &chain, e);
	if (rc == CRETO_OK)
		rc = load_key(key, &pk, e);
	if (rc != CRETO_OK)
		goto out;
	ctx = SSL_CTX_new_ex(NULL, NULL, TLS_server_method());
	if (ctx == NULL) {
		rc = creto_err_openssl(e, "TLS context");
		goto out;
	}
	if (!SSL_CTX_set_min_proto_version(ctx, min_version == 13 ? TLS1_3_VERSION : TLS1_2_VERSION) ||
	    !SSL_CTX_set_cipher_list(ctx, k_ciphers12)) {
		rc = creto_err_openssl(e, "TLS context settings");
		goto out;
	}
	/* no renegotiation; the server's cipher order; no resumption: no
	 * tickets (a ticket key living as long as the process would weaken
	 * forward secrecy) and no session cache (agents keep connections
	 * alive) */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_TICKET |
					 SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	(void)SSL_CTX_set_num_tickets(ctx, 0);
	/* buffers given back while a connection is idle; partial writes from
	 * a buffer that may move between retries */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
				      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_clear_mode(ctx, SSL_MODE_AUTO_RETRY);
	SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
	if (SSL_CTX_use_certificate(ctx, leaf) != 1) {
		rc = creto_err_set(e, CRETO_EUSAGE, "tls_cert %s: refused (%s)", cert, ossl_reason(why, sizeof(why)));
		goto out;
	}
	for (int i = 0; i < sk_X509_num(chain); i++)
		if (SSL_CTX_add1_chain_cert(ctx, sk_X509_value(chain, i)) != 1) {
			rc = creto_err_set(e, CRETO_EUSAGE, "tls_cert %s: chain certificate %d refused (%s)", cert,
					   i + 2, ossl_reason(why, sizeof(why)));
			goto out;
		}
	if (SSL_CTX_use_PrivateKey(ctx, pk) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
		ERR_clear_error();
		rc = creto_err_set(e, CRETO_EUSAGE, "tls_key %s: does not match the certificate in %s", key, cert);
		goto out;
	}
	*out = ctx;
	ctx = NULL;
out:
	SSL_CTX_free(ctx);
	EVP_PKEY_free(pk);
	X509_free(leaf);
	sk_X509_pop_free(chain, X509_free);
	ERR_clear_error();
	return rc;
}

int gw_tls_new(const char *cert, const char *key, int min_version, int64_t now, gw_tls **out, creto_err *e)
{
	*out = NULL;
	gw_tls *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return creto_err_set(e, CRETO_EOP, "out of memory");
	int rc = build(cert, key, min_version, now, &t->ctx, e);
	if (rc != CRETO_OK) {
		free(t);
		return rc;
	}
	pthread_mutex_init(&t->mu, NULL);
	*out = t;
	return CRETO_OK;
}

int gw_tls_reload(gw_tls *t, const char *cert, const char *key, int min_version, int64_t now, creto_err *e)
{
	SSL_CTX *nc = NULL;
	int rc = build(cert, key, min_version, now, &nc, e);
	if (rc != CRETO_OK)
		return rc;
	pthread_mutex_lock(&t->mu);
	SSL_CTX *old = t->ctx;
	t->ctx = nc;
	pthread_mutex_unlock(&t->mu);
	SSL_CTX_free(old); /* open connections hold their own reference */
	return CRETO_OK;
}

SSL *gw_tls_conn(gw_tls *t, int fd)
{
	pthread_mutex_lock(&t->mu);
	SSL *s = SSL_new(t->ctx);
	pthread_mutex_unlock(&t->mu);
	if (s == NULL) {
		ERR_clear_error();
		return NULL;
	}
	if (SSL_set_fd(s, fd) != 1) {
		SSL_free(s);
		ERR_clear_error();
		return NULL;
	}
	SSL_set_accept_state(s);
	return s;
}

static int map_err(SSL *s, int r)
{
	int err = SSL_get_error(s, r);
	int out;
	switch (err) {
	case SSL_ERROR_WANT_READ: out = GW_TLS_WANT_READ; break;
	case SSL_ERROR_WANT_WRITE: out = GW_TLS_WANT_WRITE; break;
	case SSL_ERROR_ZERO_RETURN: out = GW_TLS_CLOSED; break;
	case SSL_ERROR_SSL: {
		unsigned long code = ERR_peek_error();
		out = ERR_GET_LIB(code) == ERR_LIB_SSL && ERR_GET_REASON(code) == SSL_R_HTTP_REQUEST
			      ? GW_TLS_PLAIN_HTTP
			      : GW_TLS_ERROR;
		break;
	}
	default: out = GW_TLS_ERROR; break;
	}
	ERR_clear_error();
	return out;
}

/* Every SSL I/O call starts with an empty error queue (SSL_get_error reads
 * it; other code on this thread may have left entries). */
int gw_tls_handshake(SSL *s)
{
	ERR_clear_error();
	int r = SSL_do_handshake(s);
	return r == 1 ? GW_TLS_OK : map_err(s, r);
}

int gw_tls_read(SSL *s, void *buf, size_t n, size_t *got)
{
	ERR_clear_error();
	*got = 0;
	int r = SSL_read_ex(s, buf, n, got);
	return r == 1 ? GW_TLS_OK : map_err(s, r);
}

int gw_tls_write(SSL *s, const void *buf, size_t n, size_t *put)
{
	ERR_clear_error();
	*put = 0;
	int r = SSL_write_ex(s, buf, n, put);
	return r == 1 ? GW_TLS_OK : map_err(s, r);
}

void gw_tls_close(SSL *s, int clean)
{
	if (s == NULL)
		return;
	if (clean && SSL_is_init_finished(s)) {
		ERR_clear_error();
		(void)SSL_shutdown(s); /* close_notify; the peer's is not waited for */
	}
	ERR_clear_error();
	SSL_free(s);
}

const char *gw_tls_version(const SSL *s)
{
	return SSL_get_version(s);
}

const char *gw_tls_cipher(const SSL *s)
{
	return SSL_get_cipher_name(s);
}

void gw_tls_free(gw_tls *t)
{
	if (t == NULL)
		return;
	SSL_CTX_free(t->ctx);
	pthread_mutex_destroy(&t->mu);
	free(t);
}
