/*
 * tls.h - the gateway's TLS (docs/gateway.md "TLS"): the server SSL_CTX
 * built from a certificate chain file and a private key file, replaced
 * whole on reload, and the non-blocking I/O of one TLS connection mapped
 * to what an epoll loop needs (want read / want write).
 *
 * OpenSSL's libssl, with the providers the process has loaded (the FIPS
 * provider when the system configuration enables it).  Not a public
 * interface.
 */
#ifndef CRETO_GATEWAY_TLS_H
#define CRETO_GATEWAY_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/ssl.h>

#include "creto/error.h"

#define GW_TLS_KEY_MAX 16384   /* bytes of a PEM private key file */
#define GW_TLS_CERT_MAX 262144 /* bytes of a PEM certificate chain file */

typedef struct gw_tls gw_tls;

/* Outcome of one TLS step on a non-blocking socket. */
enum {
	GW_TLS_OK = 0,
	GW_TLS_WANT_READ,   /* call again when the socket is readable */
	GW_TLS_WANT_WRITE,  /* call again when the socket is writable */
	GW_TLS_CLOSED,      /* the peer sent close_notify (or closed at a record boundary) */
	GW_TLS_ERROR,       /* fatal: close without close_notify */
	GW_TLS_PLAIN_HTTP,  /* handshake: the peer spoke plain HTTP */
};

/* Check and load: cert is a PEM chain (leaf first), key a PEM private key
 * in a regular file (no symbolic link) readable by its owner only (mode
 * 0600 or stricter, owned by root or the running user), unencrypted, that
 * matches the leaf; the leaf must not be expired at now (seconds since the
 * epoch).  min_version is 12 or 13 (TLS 1.2 or 1.3).  CRETO_EUSAGE with a
 * one-line message naming the file ("tls_key PATH: ..."), CRETO_EOP when a
 * file cannot be read. */
int gw_tls_new(const char *cert, const char *key, int min_version, int64_t now, gw_tls **out,
	       creto_err *e) CRETO_WUR;

/* Build a context from the files again (SIGHUP) and use it for new
 * connections; connections already open keep theirs.  On any error the
 * current context stays. */
int gw_tls_reload(gw_tls *t, const char *cert, const char *key, int min_version, int64_t now,
		  creto_err *e) CRETO_WUR;

/* A server connection on the connected non-blocking socket fd, with the
 * current context (thread-safe against reload).  NULL: out of memory. */
SSL *gw_tls_conn(gw_tls *t, int fd);

/* The handshake, one step.  GW_TLS_OK when done. */
int gw_tls_handshake(SSL *s);

/* At most n bytes of plaintext into buf: GW_TLS_OK with *got > 0, or a
 * want / closed / error.  After GW_TLS_OK more plaintext may already be
 * inside OpenSSL (SSL_has_pending): the caller reads again without waiting
 * for the socket. */
int gw_tls_read(SSL *s, void *buf, size_t n, size_t *got);

/* Up to n bytes of buf (partial writes: *put may be < n).  The caller
 * retries after a want with the same bytes at the start of a buffer that
 * may have moved and grown. */
int gw_tls_write(SSL *s, const void *buf, size_t n, size_t *put);

/* Close: send close_notify (once, not waiting for the peer's) when clean,
 * then free.  NULL ok. */
void gw_tls_close(SSL *s, int clean);

/* "TLSv1.3" and the cipher of an established connection (logs, tests). */
const char *gw_tls_version(const SSL *s);
const char *gw_tls_cipher(const SSL *s);

void gw_tls_free(gw_tls *t);

#endif
