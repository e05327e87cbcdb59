/*
 * backup.c - the encrypted NHI backup (docs/nhi.md "Backup format").
 *
 * The envelope of creto/hsm.h (creto_hsm_seal/unseal): AES-256-GCM under a
 * fresh 32-byte data key wrapped by an HSM key (CKM_AES_KEY_WRAP_PAD); the
 * whole header is the associated data.  The decrypted image is wiped
 * wherever it is dropped: on every failure here, and by the store when it
 * is freed.
 * Reading is all-or-nothing: every length is bounded and checked against
 * the file size before allocating, the image is only returned once the tag
 * verified, and a restore replaces the database file atomically.
 */
#include "creto/nhi.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "creto/hsm.h"
#include "internal.h"
#include "util/file.h"

#define BK_MAGIC_LEN 8
#define BK_FIXED1 22 /* magic, version, flags, created, key id length */
#define BK_NONCE CRETO_HSM_SEAL_NONCE
#define BK_TAG CRETO_HSM_SEAL_TAG
#define BK_WRAPPED_MIN 16
#define BK_HEADER_MAX (BK_FIXED1 + CRETO_NHI_BACKUP_KEYID_MAX + 2 + CRETO_NHI_BACKUP_WRAPPED_MAX + BK_NONCE + 8)

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* ---- the HSM wrapper ---- */
static const creto_hsm_opts *hsm_opts(const creto_nhi_wrapper *w, creto_hsm_opts *buf)
{
	if (w->opts == NULL)
		return NULL;
	memset(buf, 0, sizeof(*buf));
	buf->module_path = w->opts->module_path;
	buf->pin_file = w->opts->pin_file;
	return buf;
}

static int hsm_wrap(void *ctx, const uint8_t *key, size_t len, uint8_t **wrapped, size_t *wlen,
		    creto_err *e)
{
	const creto_nhi_wrapper *w = ctx;
	creto_hsm_opts ho;
	return creto_hsm_wrap(w->uri, hsm_opts(w, &ho), key, len, wrapped, wlen, e);
}

static int hsm_unwrap(void *ctx, const uint8_t *wrapped, size_t wlen, uint8_t *key, size_t cap,
		      size_t *klen, creto_err *e)
{
	const creto_nhi_wrapper *w = ctx;
	creto_hsm_opts ho;
	return creto_hsm_unwrap(w->uri, hsm_opts(w, &ho), wrapped, wlen, key, cap, klen, e);
}

void creto_nhi_wrapper_hsm(creto_nhi_wrapper *w, const char *uri, const creto_keys_opts *opts)
{
	memset(w, 0, sizeof(*w));
	w->uri = uri;
	w->opts = opts;
	w->wrap = hsm_wrap;
	w->unwrap = hsm_unwrap;
	w->ctx = w;
	/* Key id: the URI's path as given (no query: no module path, no PIN),
	 * checked by the one pkcs11: parser.  A URI it refuses is named by
	 * a placeholder here; wrapping with it then fails with the parser's
	 * reason. */
	creto_err ig;
	if (creto_p11_uri_path(uri, w->key_id_buf, sizeof(w->key_id_buf), &ig) != CRETO_OK)
		snprintf(w->key_id_buf, sizeof(w->key_id_buf), "pkcs11:(malformed URI)");
	w->key_id = w->key_id_buf;
}

/* The envelope's key wrapper is the backup's wrapper (an HSM key, or any
 * RFC 5649 implementation in tests). */
static void keywrap_of(const creto_nhi_wrapper *w, creto_hsm_keywrap *kw)
{
	memset(kw, 0, sizeof(*kw));
	kw->wrap = w->wrap;
	kw->unwrap = w->unwrap;
	kw->ctx = w->ctx;
}

/* ---- write ---- */
int creto_nhi_backup_write(creto_nhi_store *s, const creto_nhi_wrapper *w, const char *path,
			   int64_t now, creto_err *e)
{
	uint8_t *img = NULL, *out = NULL;
	size_t imglen = 0, outlen = 0;
	creto_hsm_envelope env;
	memset(&env, 0, sizeof(env));
	size_t kidlen = strlen(w->key_id);
	int rc;
	if (kidlen == 0 || kidlen > CRETO_NHI_BACKUP_KEYID_MAX)
		return creto_err_set(e, CRETO_EUSAGE, "backup: wrap key id: want 1..%d bytes",
				     CRETO_NHI_BACKUP_KEYID_MAX);
	rc = creto_nhi_store_serialize(s, &img, &imglen, e);
	if (rc != CRETO_OK)
		return creto_err_ctx(e, "backup");
	creto_hsm_keywrap kw;
	keywrap_of(w, &kw);
	rc = creto_hsm_envelope_new(&kw, &env, e);
	if (rc != CRETO_OK) {
		creto_err_ctx(e, "backup: wrap data key with %s", w->key_id);
		goto out;
	}
	size_t wlen = env.wrappedlen;
	if (wlen < BK_WRAPPED_MIN || wlen > CRETO_NHI_BACKUP_WRAPPED_MAX) {
		rc = creto_err_set(e, CRETO_EOP, "backup: wrapped data key of %zu bytes", wlen);
		goto out;
	}
	size_t hlen = BK_FIXED1 + kidlen + 2 + wlen + BK_NONCE + 8;
	outlen = hlen + imglen + BK_TAG;
	out = malloc(outlen);
	if (out == NULL) {
		rc = creto_err_set(e, CRETO_EOP, "backup: out of memory");
		goto out;
	}
	uint8_t *p = out;
	memcpy(p, CRETO_NHI_BACKUP_MAGIC, BK_MAGIC_LEN);
	put16(p + 8, CRETO_NHI_BACKUP_VERSION);
	put16(p + 10, 0);
	put64(p + 12, (uint64_t)now);
	put16(p + 20, (uint16_t)kidlen);
	p += BK_FIXED1;
	memcpy(p, w->key_id, kidlen);
	p += kidlen;
	put16(p, (uint16_t)wlen);
	memcpy(p + 2, env.wrapped, wlen);
	p += 2 + wlen;
	memcpy(p, env.nonce, BK_NONCE);
	put64(p + BK_NONCE, imglen);
	/* The whole header is the associated data. */
	rc = creto_hsm_seal(&env, out, hlen, img, imglen, out + hlen, out + hlen + imglen, e);
	if (rc != CRETO_OK) {
		creto_err_ctx(e, "backup: encrypt");
		goto out;
	}
	rc = creto_file_write_atomic(path, out, outlen, 0600, e);
out:
	creto_hsm_envelope_clear(&env);
	if (img != NULL) {
		OPENSSL_cleanse(img, imglen);
		sqlite3_free(img);
	}
	free(out);
	return rc;
}

/* ---- read ---- */
static int read_exact(int fd, uint8_t *buf, size_t len, const char *path, creto_err *e)
{
	ssize_t r = creto_read_full(fd, buf, len);
	if (r < 0)
		return creto_err_errno(e, errno, "%s", path);
	if ((size_t)r != len)
		return creto_err_set(e, CRETO_EREJECT, "%s: truncated backup", path);
	return CRETO_OK;
}

int creto_nhi_backup_decrypt(const char *path, const creto_nhi_wrapper *w, uint8_t **img,
			     size_t *len, creto_nhi_backup_info *info, creto_err *e)
{
	*img = NULL;
	*len = 0;
	uint8_t hdr[BK_HEADER_MAX];
	uint8_t *data = NULL;
	creto_hsm_envelope env;
	memset(&env, 0, sizeof(env));
	int rc = CRETO_OK;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC); /* never wait on a FIFO */
	if (fd < 0)
		return creto_err_errno(e, errno, "%s", path);
	struct stat st;
	if (fstat(fd, &st) != 0) {
		rc = creto_err_errno(e, errno, "%s", path);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = creto_err_set(e, CRETO_EREJECT, "%s: not a regular file", path);
		goto out;
	}
	uint64_t fsize = (uint64_t)st.st_size;
	if ((rc = read_exact(fd, hdr, BK_FIXED1, path, e)) != CRETO_OK)
		goto out;
	if (memcmp(hdr, CRETO_NHI_BACKUP_MAGIC, BK_MAGIC_LEN) != 0) {
		rc = creto_err_set(e, CRETO_EREJECT, "%s: not an NHI backup (bad magic)", path);
		goto out;
	}
	uint16_t ver = get16(hdr + 8), flags = get16(hdr + 10);
	if (ver < 1 || ver > CRETO_NHI_BACKUP_VERSION) {
		rc = creto_err_set(e, CRETO_EREJECT, "%s: backup format version %u not supported (1..%d)",
				   path, ver, CRETO_NHI_BACKUP_VERSION);
		goto out;
	}
	if (flags != 0) {
		rc = creto_err_set(e, CRETO_EREJECT, "%s: header flags 0x%04x unknown", path, flags);
		goto out;
	}
	uint64_t created = get64(hdr + 12);
	size_t kidlen = get16(hdr + 20);
	if (kidlen == 0 || kidlen > CRETO_NHI_BACKUP_KEYID_MAX) {
		rc = creto_err_set(e, CRETO_EREJECT, "%s: wrap key id length %zu out of range", path,
				   kidlen);
		goto out;
	}
	size_t o = BK_FIXED1;
	if ((rc = read_exact(fd, hdr + o, kidlen + 2, path, e)) != CRETO_OK)
		goto out;
	char kid[CRETO_NHI_BACKUP_KEYID_MAX + 1];
	memcpy(kid, hdr + o, kidlen);
	kid[kidlen] = '\0';
	if (strlen(kid) != kidlen) {
		rc = creto_err_set(e, CRETO_EREJECT, "%s: wrap key id holds a NUL", path);
		goto out;
	}
	o += kidlen;
	size_t wlen = get16(hdr + o);
	o += 2;
	if (wlen < BK_WRAPPED_MIN || wlen > CRETO_NHI_BACKUP_WRAPPED_MAX) {
		rc = creto_err_set(e, CRETO_EREJECT, "%s: wrapped key length %zu out of range", path,
				   wlen);
		goto out;
	}
	if ((rc = read_exact(fd, hdr + o, wlen + BK_NONCE + 8, path, e)) != CRETO_OK)
		goto out;
	const uint8_t *wrapped = hdr + o;
	const uint8_t *nonce = hdr + o + wlen;
	uint64_t dlen = get64(hdr + o + wlen + BK_NONCE);
	size_t hlen = o + wlen + BK_NONCE + 8;
	if (dlen == 0 || dlen > CRETO_NHI_BACKUP_DATA_MAX) {
		rc = creto_err_set(e, CRETO_EREJECT, "%s: data length %llu out of range", path,
				   (unsigned long long)dlen);
		goto out;
	}
	if (fsize != hlen + dlen + BK_TAG) {
		rc = creto_err_set(e, CRETO_EREJECT, "%s: %s: file is %llu bytes, header says %llu",
				   path, fsize < hlen + dlen + BK_TAG ? "truncated" : "trailing bytes",
				   (unsigned long long)fsize, (unsigned long long)(hlen + dlen + BK_TAG));
		goto out;
	}
	if (info != NULL) {
		info->version = ver;
		info->created = (int64_t)created;
		memcpy(info->key_id, kid, kidlen + 1);
		info->data_len = dlen;
	}
	creto_hsm_keywrap kw;
	keywrap_of(w, &kw);
	rc = creto_hsm_envelope_open(&kw, wrapped, wlen, nonce, &env, e);
	if (rc != CRETO_OK) {
		creto_err_ctx(e, "%s: data key does not unwrap with %s (backup names %s)", path,
			      w->key_id, kid);
		goto out;
	}
	data = sqlite3_malloc64(dlen);
	if (data == NULL) {
		rc = creto_err_set(e, CRETO_EOP, "%s: out of memory for %llu bytes", path,
				   (unsigned long long)dlen);
		goto out;
	}
	if ((rc = read_exact(fd, data, (size_t)dlen, path, e)) != CRETO_OK)
		goto out;
	uint8_t tag[BK_TAG];
	if ((rc = read_exact(fd, tag, BK_TAG, path, e)) != CRETO_OK)
		goto out;
	/* In place; on a tag mismatch the buffer is wiped. */
	rc = creto_hsm_unseal(&env, hdr, hlen, data, (size_t)dlen, tag, data, e);
	if (rc == CRETO_EREJECT) {
		rc = creto_err_set(e, CRETO_EREJECT,
				   "%s: authentication failed (tampered backup or header)", path);
		goto out;
	}
	if (rc != CRETO_OK) {
		creto_err_ctx(e, "%s: decrypt", path);
		goto out;
	}
	if (dlen < 100 || memcmp(data, "SQLite format 3", 16) != 0) {
		rc = creto_err_set(e, CRETO_EREJECT, "%s: content is not an SQLite image", path);
		goto out;
	}
	/* The format version bounds the schema inside (docs/nhi.md): version 1
	 * was written by stores of schema 1..2 (no agent keys), version 2 by
	 * schema 3 and later.  An image claiming otherwise was not made by creto. */
	uint32_t uv = (uint32_t)data[60] << 24 | (uint32_t)data[61] << 16 | (uint32_t)data[62] << 8 | data[63];
	if (ver == 1 && uv > 2) {
		rc = creto_err_set(e, CRETO_EREJECT, "%s: format version 1 holds schema version %u (at most 2)", path,
				   uv);
		goto out;
	}
	*img = data;
	*len = (size_t)dlen;
	data = NULL;
out:
	creto_hsm_envelope_clear(&env);
	if (data != NULL) {
		OPENSSL_cleanse(data, (size_t)dlen);
		sqlite3_free(data);
	}
	close(fd);
	return rc;
}

int creto_nhi_backup_open(const char *path, const creto_nhi_wrapper *w, creto_nhi_store **out,
			  creto_nhi_backup_info *info, creto_err *e)
{
	*out = NULL;
	uint8_t *img = NULL;
	size_t len = 0;
	int rc = creto_nhi_backup_decrypt(path, w, &img, &len, info, e);
	if (rc != CRETO_OK)
		return rc;
	rc = creto_nhi_store_open_image(img, len, out, e);
	if (rc != CRETO_OK)
		return creto_err_ctx(e, "%s", path);
	return CRETO_OK;
}

/* Revocation is final: an agent revoked in the store being replaced must
 * not come back from the backup (an older backup, or one made outside
 * before an inside revocation).  Absent from the backup is fine. */
struct unrevoke {
	creto_nhi_store *bak;
	char id[CRETO_NHI_ID_MAX + 1];
	creto_nhi_status st;
};

static int check_revoked(const creto_nhi_agent *a, void *arg)
{
	struct unrevoke *u = arg;
	if (a->status != CRETO_NHI_REVOKED)
		return 0;
	creto_nhi_agent b;
	creto_err ig;
	if (creto_nhi_store_get(u->bak, a->id, &b, &ig) != CRETO_OK)
		return 0; /* not in the backup */
	if (b.status == CRETO_NHI_REVOKED)
		return 0;
	memcpy(u->id, a->id, strlen(a->id) + 1);
	u->st = b.status;
	return 1;
}

static int no_unrevoke(creto_nhi_store *bak, const char *dbpath, creto_err *e)
{
	struct stat sb;
	if (lstat(dbpath, &sb) != 0) {
		if (errno == ENOENT)
			return CRETO_OK; /* a first restore */
		return creto_err_errno(e, errno, "%s", dbpath);
	}
	creto_nhi_store *cur = NULL;
	/* read-write: a store of an older schema (before an upgrade) is
	 * migrated like on any open, rather than refused as unreadable */
	int rc = creto_nhi_store_open(dbpath, 0, &cur, e);
	if (rc != CRETO_OK)
		return creto_err_ctx(e, "store to be replaced %s (remove it to restore from scratch)",
				     dbpath);
	struct unrevoke u = {.bak = bak};
	rc = creto_nhi_store_list(cur, check_revoked, &u, e);
	creto_nhi_store_free(cur);
	if (u.id[0]) /* the walk stopped at it */
		rc = creto_err_set(e, CRETO_EREJECT,
				   "agent %s is revoked in %s but %s in the backup: revocation is final, "
				   "nothing restored",
				   u.id, dbpath, creto_nhi_status_name(u.st));
	return rc;
}

int creto_nhi_backup_restore(const char *path, const creto_nhi_wrapper *w, const char *dbpath,
			     creto_nhi_backup_info *info, creto_err *e)
{
	creto_nhi_store *s = NULL;
	int rc = creto_nhi_backup_open(path, w, &s, info, e);
	if (rc != CRETO_OK)
		return rc;
	rc = nhi_store_quick_check(s, e);
	if (rc != CRETO_OK) {
		creto_err_ctx(e, "%s", path);
		goto out;
	}
	rc = no_unrevoke(s, dbpath, e);
	if (rc != CRETO_OK)
		goto out;
	size_t len = 0;
	const uint8_t *img = nhi_store_image(s, &len);
	if (img == NULL) {
		rc = creto_err_set(e, CRETO_EOP, "%s: no image", path);
		goto out;
	}
	rc = creto_file_write_atomic(dbpath, img, len, 0600, e);
out:
	creto_nhi_store_free(s);
	return rc;
}
