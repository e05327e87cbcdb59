/*
 * common.c - what every part of the model module shares: resource order,
 * path and UTF-8 validation, the root digest, accessors.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model_internal.h"
#include "util/enc.h"

int model_path_cmp(const char *a, const char *b)
{
	const unsigned char *x = (const unsigned char *)a, *y = (const unsigned char *)b;
	for (;; x++, y++) {
		unsigned cx = *x == '/' ? 1u : *x == 0 ? 0u : (unsigned)*x + 1u;
		unsigned cy = *y == '/' ? 1u : *y == 0 ? 0u : (unsigned)*y + 1u;
		if (cx != cy)
			return cx < cy ? -1 : 1;
		if (cx == 0)
			return 0;
	}
}

int model_res_cmp(const struct model_res *a, const struct model_res *b)
{
	int c = model_path_cmp(a->path, b->path);
	if (c != 0)
		return c;
	if (a->start != b->start)
		return a->start < b->start ? -1 : 1;
	if (a->end != b->end)
		return a->end < b->end ? -1 : 1;
	return 0;
}

int model_utf8_valid(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;
	while (i < n) {
		unsigned c = s[i];
		if (c < 0x80) {
			if (c == 0)
				return 0;
			i++;
			continue;
		}
		size_t len;
		unsigned cp, min;
		if (c >= 0xC2 && c <= 0xDF) {
			len = 2;
			cp = c & 0x1F;
			min = 0x80;
		} else if (c >= 0xE0 && c <= 0xEF) {
			len = 3;
			cp = c & 0x0F;
			min = 0x800;
		} else if (c >= 0xF0 && c <= 0xF4) {
			len = 4;
			cp = c & 0x07;
			min = 0x10000;
		} else {
			return 0;
		}
		if (n - i < len)
			return 0;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xC0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3F);
		}
		if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return 0;
		i += len;
	}
	return 1;
}

int model_path_valid(const char *p)
{
	size_t n = strlen(p);
	if (n == 0 || n > CRETO_MODEL_PATH_MAX || !model_utf8_valid(p, n))
		return 0;
	const char *c = p;
	for (;;) {
		const char *slash = strchr(c, '/');
		size_t len = slash ? (size_t)(slash - c) : strlen(c);
		if (len == 0 || (len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.'))
			return 0;
		if (!slash)
			return 1;
		c = slash + 1;
	}
}

/* sha3-256 manifests: the header that binds the layout (docs §1). */
static int root_header(const struct creto_model_manifest *m, creto_hash_ctx *c, creto_err *e)
{
	char h[256];
	int n = snprintf(h, sizeof(h),
			 "creto-model-root-v1\nmethod=%s\nshard_size=%llu\nallow_symlinks=%d\nresources=%zu\n",
			 m->method == CRETO_MODEL_SHARDS ? "shards" : "files",
			 (unsigned long long)(m->method == CRETO_MODEL_SHARDS ? m->shard_size : 0),
			 m->allow_symlinks ? 1 : 0, m->nres);
	if (n < 0 || (size_t)n >= sizeof(h))
		return creto_err_set(e, CRETO_EOP, "root digest header");
	return creto_hash_update(c, h, (size_t)n, e);
}

int model_compute_root(const struct creto_model_manifest *m, uint8_t root[32], creto_err *e)
{
	creto_hash_ctx *c = NULL;
	uint8_t d[CRETO_HASH_MAX];
	size_t dl = creto_hash_len(m->hash);
	int binds = creto_model_manifest_root_binds_layout(m);
	int rc = creto_hash_init(CRETO_HASH_SHA256, &c, e);
	if (rc == CRETO_OK && binds)
		rc = root_header(m, c, e);
	for (size_t i = 0; rc == CRETO_OK && i < m->nres; i++) {
		if (binds) {
			size_t nl = strlen(m->res[i].name);
			uint8_t be[4] = {(uint8_t)(nl >> 24), (uint8_t)(nl >> 16), (uint8_t)(nl >> 8),
					 (uint8_t)nl};
			rc = creto_hash_update(c, be, 4, e);
			if (rc == CRETO_OK)
				rc = creto_hash_update(c, m->res[i].name, nl, e);
			if (rc != CRETO_OK)
				break;
		}
		rc = creto_hash_update(c, m->res[i].digest, dl, e);
	}
	if (rc == CRETO_OK)
		rc = creto_hash_final(c, d, e);
	if (rc == CRETO_OK)
		memcpy(root, d, 32);
	creto_hash_free(c);
	return rc;
}

int creto_model_manifest_root_binds_layout(const creto_model_manifest *m)
{
	return m->hash == CRETO_HASH_SHA3_256;
}

void model_manifest_free(struct creto_model_manifest *m)
{
	if (m == NULL)
		return;
	free(m->model_name);
	for (size_t i = 0; i < m->nignore; i++)
		free(m->ignore[i]);
	free(m->ignore);
	for (size_t i = 0; i < m->nres; i++) {
		free(m->res[i].name);
		free(m->res[i].path);
	}
	free(m->res);
	free(m);
}

void creto_model_manifest_free(creto_model_manifest *m)
{
	model_manifest_free(m);
}

int model_add_ignore(struct creto_model_manifest *m, const char *p, creto_err *e)
{
	size_t pos = 0;
	while (pos < m->nignore) {
		int c = model_path_cmp(m->ignore[pos], p);
		if (c == 0)
			return CRETO_OK;
		if (c > 0)
			break;
		pos++;
	}
	char **n = realloc(m->ignore, (m->nignore + 1) * sizeof(*n));
	if (n == NULL)
		return creto_err_errno(e, ENOMEM, "ignore list");
	m->ignore = n;
	char *dup = strdup(p);
	if (dup == NULL)
		return creto_err_errno(e, ENOMEM, "ignore list");
	memmove(&n[pos + 1], &n[pos], (m->nignore - pos) * sizeof(*n));
	n[pos] = dup;
	m->nignore++;
	return CRETO_OK;
}

const char *model_quote(const char *s, char *buf, size_t cap)
{
	int utf8 = model_utf8_valid(s, strlen(s));
	size_t o = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p && o + 5 < cap; p++) {
		if (*p < 0x20 || *p == 0x7f || (*p >= 0x80 && !utf8))
			o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", *p);
		else
			buf[o++] = (char)*p;
	}
	buf[o] = '\0';
	return buf;
}

int creto_model_is_default_ignore(const char *p)
{
	return strcmp(p, ".git") == 0 || strcmp(p, ".gitattributes") == 0 ||
	       strcmp(p, ".github") == 0 || strcmp(p, ".gitignore") == 0;
}

const char *creto_model_manifest_name(const creto_model_manifest *m)
{
	return m->model_name;
}
creto_hash_alg creto_model_manifest_hash(const creto_model_manifest *m)
{
	return m->hash;
}
creto_model_method creto_model_manifest_method(const creto_model_manifest *m)
{
	return m->method;
}
uint64_t creto_model_manifest_shard_size(const creto_model_manifest *m)
{
	return m->shard_size;
}
int creto_model_manifest_allow_symlinks(const creto_model_manifest *m)
{
	return m->allow_symlinks;
}
size_t creto_model_manifest_count(const creto_model_manifest *m)
{
	return m->nres;
}
const char *creto_model_manifest_resource(const creto_model_manifest *m, size_t i,
					  const uint8_t **digest)
{
	if (i >= m->nres)
		return NULL;
	if (digest != NULL)
		*digest = m->res[i].digest;
	return m->res[i].name;
}
size_t creto_model_manifest_nignore(const creto_model_manifest *m)
{
	return m->nignore;
}
const char *creto_model_manifest_ignore(const creto_model_manifest *m, size_t i)
{
	return i < m->nignore ? m->ignore[i] : NULL;
}
size_t creto_model_manifest_files(const creto_model_manifest *m)
{
	return m->nfiles;
}
uint64_t creto_model_manifest_bytes(const creto_model_manifest *m)
{
	return m->bytes;
}
const uint8_t *creto_model_manifest_root(const creto_model_manifest *m)
{
	return m->root;
}

void creto_model_manifest_digest_str(const creto_model_manifest *m,
				     char out[CRETO_MODEL_DIGEST_STR_MAX])
{
	char hex[65];
	creto_hex_encode(hex, m->root, 32);
	snprintf(out, CRETO_MODEL_DIGEST_STR_MAX, "%s:%s", creto_hash_name(m->hash), hex);
}

int creto_model_parse_digest_str(const char *s, creto_hash_alg *alg, uint8_t root[32], creto_err *e)
{
	const char *colon = strchr(s, ':');
	char name[16];
	size_t n;
	if (colon == NULL || (size_t)(colon - s) >= sizeof(name))
		return creto_err_set(e, CRETO_EUSAGE, "digest '%.80s': expected <hash_type>:<hex>", s);
	memcpy(name, s, (size_t)(colon - s));
	name[colon - s] = '\0';
	*alg = creto_hash_from_name(name);
	if (*alg == CRETO_HASH_NONE)
		return creto_err_set(e, CRETO_EUSAGE, "digest '%.80s': unknown hash type '%s'", s, name);
	if (strlen(colon + 1) != 64 || creto_hex_decode(root, 32, &n, colon + 1, 64) != 0 || n != 32)
		return creto_err_set(e, CRETO_EUSAGE, "digest '%.80s': expected 64 hex digits", s);
	return CRETO_OK;
}

const char *creto_model_diff_kind_name(creto_model_diff_kind k)
{
	switch (k) {
	case CRETO_MODEL_MODIFIED:
		return "modified";
	case CRETO_MODEL_MISSING:
		return "missing";
	case CRETO_MODEL_EXTRA:
		return "extra";
	case CRETO_MODEL_RENAMED:
		return "renamed";
	default:
		return "same";
	}
}
