/*
 * hash.c - streaming SHA3-256 / SHA-256 over OpenSSL EVP, and the
 * single-threaded range reader the pool (pool.c) is built on.
 */
#include "creto/hash.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "hash/hash_internal.h"

struct creto_hash_ctx {
	creto_hash_alg alg;
	EVP_MD_CTX *md;
};

/* Explicitly fetched digests: OpenSSL 3 re-fetches an implicit EVP_sha3_256()
 * on every init, which costs more than hashing a small file. */
static pthread_once_t md_once = PTHREAD_ONCE_INIT;
static EVP_MD *md_sha3_256;
static EVP_MD *md_sha256;

static void md_fetch(void)
{
	md_sha3_256 = EVP_MD_fetch(NULL, "SHA3-256", NULL);
	md_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

const EVP_MD *creto_hash__md(creto_hash_alg alg)
{
	if (pthread_once(&md_once, md_fetch) != 0)
		return NULL;
	switch (alg) {
	case CRETO_HASH_SHA3_256:
		return md_sha3_256;
	case CRETO_HASH_SHA256:
		return md_sha256;
	default:
		return NULL;
	}
}

const char *creto_hash_name(creto_hash_alg alg)
{
	switch (alg) {
	case CRETO_HASH_SHA3_256:
		return "sha3-256";
	case CRETO_HASH_SHA256:
		return "sha256";
	default:
		return NULL;
	}
}

creto_hash_alg creto_hash_from_name(const char *name)
{
	if (name == NULL)
		return CRETO_HASH_NONE;
	if (strcmp(name, "sha3-256") == 0)
		return CRETO_HASH_SHA3_256;
	if (strcmp(name, "sha256") == 0)
		return CRETO_HASH_SHA256;
	return CRETO_HASH_NONE;
}

size_t creto_hash_len(creto_hash_alg alg)
{
	return creto_hash_name(alg) != NULL ? 32 : 0;
}

int creto_hash_init(creto_hash_alg alg, creto_hash_ctx **out, creto_err *e)
{
	*out = NULL;
	if (creto_hash_name(alg) == NULL)
		return creto_err_set(e, CRETO_EUSAGE, "unknown hash algorithm %d", (int)alg);
	const EVP_MD *md = creto_hash__md(alg);
	if (md == NULL)
		return creto_err_openssl(e, "%s: digest unavailable", creto_hash_name(alg));
	creto_hash_ctx *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return creto_err_errno(e, ENOMEM, "hash");
	c->alg = alg;
	c->md = EVP_MD_CTX_new();
	if (c->md == NULL || EVP_DigestInit_ex(c->md, md, NULL) != 1) {
		creto_hash_free(c);
		return creto_err_openssl(e, "%s: init", creto_hash_name(alg));
	}
	*out = c;
	return CRETO_OK;
}

int creto_hash_update(creto_hash_ctx *c, const void *data, size_t len, creto_err *e)
{
	if (len == 0)
		return CRETO_OK;
	if (EVP_DigestUpdate(c->md, data, len) != 1)
		return creto_err_openssl(e, "%s: update", creto_hash_name(c->alg));
	return CRETO_OK;
}

int creto_hash_final(creto_hash_ctx *c, uint8_t out[CRETO_HASH_MAX], creto_err *e)
{
	unsigned int n = 0;
	if (EVP_DigestFinal_ex(c->md, out, &n) != 1 || n != creto_hash_len(c->alg))
		return creto_err_openssl(e, "%s: final", creto_hash_name(c->alg));
	if (EVP_DigestInit_ex(c->md, creto_hash__md(c->alg), NULL) != 1)
		return creto_err_openssl(e, "%s: reinit", creto_hash_name(c->alg));
	return CRETO_OK;
}

creto_hash_alg creto_hash_ctx_alg(const creto_hash_ctx *c)
{
	return c->alg;
}

void creto_hash_free(creto_hash_ctx *c)
{
	if (c == NULL)
		return;
	EVP_MD_CTX_free(c->md);
	free(c);
}

int creto_hash_buf(creto_hash_alg alg, const void *data, size_t len, uint8_t out[CRETO_HASH_MAX],
		   creto_err *e)
{
	creto_hash_ctx *c = NULL;
	int rc = creto_hash_init(alg, &c, e);
	if (rc == CRETO_OK)
		rc = creto_hash_update(c, data, len, e);
	if (rc == CRETO_OK)
		rc = creto_hash_final(c, out, e);
	creto_hash_free(c);
	return rc;
}

int creto_hash__read_range(creto_hash_ctx *c, int fd, uint64_t offset, uint64_t length,
			   const char *name, uint8_t *buf, size_t bufsize,
			   atomic_int *stop, uint8_t out[CRETO_HASH_MAX], creto_err *e)
{
	const char *nm = name != NULL ? name : "file";
	if (length > UINT64_MAX - offset || offset + length > (uint64_t)INT64_MAX)
		return creto_err_set(e, CRETO_EUSAGE, "%s: range %llu+%llu out of bounds", nm,
				     (unsigned long long)offset, (unsigned long long)length);
	if (length > 0)
		(void)posix_fadvise(fd, (off_t)offset, (off_t)length, POSIX_FADV_SEQUENTIAL);
	uint64_t pos = offset, end = offset + length;
	while (pos < end) {
		if (stop != NULL && atomic_load_explicit(stop, memory_order_relaxed))
			return creto_err_set(e, CRETO_EOP, "%s: cancelled", nm);
		size_t want = end - pos < bufsize ? (size_t)(end - pos) : bufsize;
		ssize_t got = pread(fd, buf, want, (off_t)pos);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			return creto_err_errno(e, errno, "%s: read at offset %llu", nm,
					       (unsigned long long)pos);
		}
		if (got == 0)
			return creto_err_set(e, CRETO_EOP,
					     "%s: file changed while being hashed (ends at %llu, expected %llu)",
					     nm, (unsigned long long)pos, (unsigned long long)end);
		int rc = creto_hash_update(c, buf, (size_t)got, e);
		if (rc != CRETO_OK)
			return rc;
		pos += (uint64_t)got;
	}
	return creto_hash_final(c, out, e);
}

int creto_hash_fd_range(creto_hash_alg alg, int fd, uint64_t offset, uint64_t length,
			const char *name, uint8_t out[CRETO_HASH_MAX], creto_err *e)
{
	creto_hash_ctx *c = NULL;
	uint8_t *buf = NULL;
	int rc = creto_hash_init(alg, &c, e);
	if (rc != CRETO_OK)
		return rc;
	size_t bufsize = length < CRETO_HASH_BUFSIZE ? (size_t)length : CRETO_HASH_BUFSIZE;
	buf = malloc(bufsize > 0 ? bufsize : 1);
	if (buf == NULL) {
		rc = creto_err_errno(e, ENOMEM, "hash buffer");
		goto out;
	}
	rc = creto_hash__read_range(c, fd, offset, length, name, buf, bufsize > 0 ? bufsize : 1,
				    NULL, out, e);
out:
	free(buf);
	creto_hash_free(c);
	return rc;
}
