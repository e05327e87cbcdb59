/*
 * statement.c - the update statement officers sign (docs/crupdate.md): its
 * strict parser (canonical bytes only, every field bounded), `update create`
 * which hashes a payload into one, and `update sign` which appends one
 * signature to the detached signatures document.
 */
#include "update_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "creto/hash.h"
#include "util/enc.h"
#include "util/file.h"
#include "util/timeutil.h"

/* Why `update create` refuses a payload path (docs/crupdate.md section 1). */
#define PATH_RULE                                                                                  \
	"path not allowed in a package (characters A-Za-z0-9._+@=,- only, at most 255 bytes, and "  \
	"payload/PATH must fit a ustar header: at most 100 bytes after some '/' with at most 155 "   \
	"before it)"

static const char *const TYPES[] = {"model-weights", "software-package", "policy", "cert-rotation",
				    NULL};

int upd_type_valid(const char *t)
{
	for (size_t i = 0; TYPES[i] != NULL; i++)
		if (strcmp(TYPES[i], t) == 0)
			return 1;
	return 0;
}

static int pchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-' || c == '+' || c == '@' || c == '=' || c == ',';
}

int upd_name_valid(const char *n)
{
	size_t l = strlen(n);
	if (l == 0 || l > CRETO_UPDATE_NAME_MAX || strcmp(n, ".") == 0 || strcmp(n, "..") == 0 ||
	    strcmp(n, "current") == 0)
		return 0;
	for (size_t i = 0; i < l; i++)
		if (!pchar(n[i]))
			return 0;
	return 1;
}

int upd_path_valid(const char *p)
{
	size_t l = strlen(p);
	if (l == 0 || l > CRETO_UPDATE_PATH_MAX || p[0] == '/')
		return 0;
	const char *c = p;
	while (*c) {
		const char *s = strchr(c, '/');
		size_t cl = s ? (size_t)(s - c) : strlen(c);
		if (cl == 0 || (cl == 1 && c[0] == '.') || (cl == 2 && c[0] == '.' && c[1] == '.'))
			return 0;
		for (size_t i = 0; i < cl; i++)
			if (!pchar(c[i]))
				return 0;
		if (s == NULL)
			break;
		c = s + 1;
		if (*c == 0)
			return 0; /* trailing slash */
	}
	return upd_path_fits_ustar(p);
}

int upd_path_fits_ustar(const char *p)
{
	char m[CRETO_UPDATE_PATH_MAX + sizeof UPD_PAYLOAD_PREFIX];
	if (strlen(p) > CRETO_UPDATE_PATH_MAX)
		return 0;
	snprintf(m, sizeof m, UPD_PAYLOAD_PREFIX "%s", p);
	return upd_tar_name_split(m) >= 0;
}

void upd_statement_free(upd_statement *st)
{
	if (st == NULL)
		return;
	for (size_t i = 0; i < st->nfiles; i++) {
		free(st->files[i].path);
		free(st->files[i].shards);
	}
	free(st->files);
	memset(st, 0, sizeof *st);
}

int upd_statement_peek_type(const uint8_t *buf, size_t len, char type[32], creto_err *e)
{
	json_t *j = NULL;
	int rc = upd_json_parse(buf, len, "statement", &j, e);
	if (rc != CRETO_OK)
		return rc;
	const char *t;
	rc = upd_json_str(j, "type", "statement", &t, e);
	if (rc == CRETO_OK && !upd_type_valid(t))
		rc = creto_err_set(e, CRETO_EREJECT, "statement: unknown update type %.40s", t);
	if (rc == CRETO_OK)
		snprintf(type, 32, "%s", t);
	json_decref(j);
	return rc;
}

int upd_statement_peek_name(const uint8_t *buf, size_t len, char name[CRETO_UPDATE_NAME_MAX + 1])
{
	json_t *j = NULL;
	creto_err ig;
	name[0] = 0;
	if (upd_json_parse(buf, len, "statement", &j, &ig) != CRETO_OK)
		return -1;
	const char *n = json_string_value(json_object_get(j, "name"));
	int ok = n != NULL && upd_name_valid(n);
	if (ok)
		snprintf(name, CRETO_UPDATE_NAME_MAX + 1, "%s", n);
	json_decref(j);
	return ok ? 0 : -1;
}

/* 64 lowercase hex digits (the canonical form: one spelling per digest). */
static int hex32(const char *s, uint8_t out[UPD_DIGEST_LEN])
{
	size_t n;
	if (strlen(s) != 64)
		return -1;
	for (size_t i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return -1;
	return creto_hex_decode(out, UPD_DIGEST_LEN, &n, s, 64) == 0 && n == UPD_DIGEST_LEN ? 0 : -1;
}

static int path_in_sorted(upd_file *f, size_t n, const char *p, size_t plen)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strncmp(f[mid].path, p, plen);
		if (c == 0 && f[mid].path[plen] != 0)
			c = 1;
		if (c == 0)
			return 1;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

static int parse_statement(const uint8_t *buf, size_t len, upd_statement *st, creto_update_rule *rule,
			   creto_err *e);

int upd_statement_parse(const uint8_t *buf, size_t len, upd_statement *st, creto_update_rule *rule,
			creto_err *e)
{
	creto_update_rule r = CRETO_RULE_NONE;
	int rc = parse_statement(buf, len, st, &r, e);
	if (rc == CRETO_EREJECT && rule != NULL)
		*rule = r != CRETO_RULE_NONE ? r : CRETO_RULE_STATEMENT;
	return rc;
}

static int parse_statement(const uint8_t *buf, size_t len, upd_statement *st, creto_update_rule *rule,
			   creto_err *e)
{
	memset(st, 0, sizeof *st);
	if (len > CRETO_STATEMENT_MAX)
		return creto_err_set(e, CRETO_EREJECT, "statement: larger than %u bytes", CRETO_STATEMENT_MAX);
	json_t *j = NULL;
	char *canon = NULL;
	size_t clen = 0;
	int rc = upd_json_parse(buf, len, "statement", &j, e);
	if (rc != CRETO_OK)
		return rc;
	static const char *const keys[] = {"format", "type", "name", "version", "created", "expires",
					   "digest_alg", "shard_size", "payload", NULL};
	const char *type, *name, *dalg;
	int64_t fmt, ss;
	if ((rc = upd_json_keys(j, "statement", keys, e)) != CRETO_OK ||
	    (rc = upd_canon_dump(j, &canon, &clen, e)) != CRETO_OK)
		goto out;
	if (clen != len || memcmp(canon, buf, len) != 0) {
		rc = creto_err_set(e, CRETO_EREJECT, "statement: not in canonical form");
		goto out;
	}
	if ((rc = upd_json_int(j, "format", "statement", 1, 1, &fmt, e)) != CRETO_OK ||
	    (rc = upd_json_str(j, "type", "statement", &type, e)) != CRETO_OK ||
	    (rc = upd_json_str(j, "name", "statement", &name, e)) != CRETO_OK ||
	    (rc = upd_json_int(j, "version", "statement", 1, (int64_t)1 << 53, &st->version, e)) != CRETO_OK ||
	    (rc = upd_json_time(j, "created", "statement", &st->created, e)) != CRETO_OK ||
	    (rc = upd_json_time(j, "expires", "statement", &st->expires, e)) != CRETO_OK ||
	    (rc = upd_json_str(j, "digest_alg", "statement", &dalg, e)) != CRETO_OK ||
	    (rc = upd_json_int(j, "shard_size", "statement", CRETO_SHARD_MIN, CRETO_SHARD_MAX, &ss, e)) != CRETO_OK)
		goto out;
	if (!upd_type_valid(type)) {
		rc = creto_err_set(e, CRETO_EREJECT, "statement: unknown update type %.40s", type);
		goto out;
	}
	if (!upd_name_valid(name)) {
		rc = creto_err_set(e, CRETO_EREJECT, "statement: name %.70s is not a valid target name", name);
		goto out;
	}
	if (strcmp(dalg, "sha3-256") != 0) {
		rc = creto_err_set(e, CRETO_EREJECT, "statement: digest_alg %.20s not supported", dalg);
		goto out;
	}
	if (st->expires <= st->created) {
		rc = creto_err_set(e, CRETO_EREJECT, "statement: expires is not after created");
		goto out;
	}
	snprintf(st->type, sizeof st->type, "%s", type);
	snprintf(st->name, sizeof st->name, "%s", name);
	st->shard_size = (uint32_t)ss;
	json_t *pl = json_object_get(j, "payload");
	if (!json_is_array(pl) || json_array_size(pl) > CRETO_UPDATE_FILES_MAX) {
		rc = creto_err_set(e, CRETO_EREJECT, "statement: payload must be an array of at most %d files",
				   CRETO_UPDATE_FILES_MAX);
		goto out;
	}
	size_t n = json_array_size(pl);
	st->files = calloc(n ? n : 1, sizeof *st->files);
	if (st->files == NULL) {
		rc = creto_err_set(e, CRETO_EOP, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		json_t *f = json_array_get(pl, i);
		char w[64];
		snprintf(w, sizeof w, "statement: payload file %zu", i + 1);
		static const char *const fk[] = {"path", "size", "digest", "?shards", NULL};
		const char *path, *dg;
		int64_t size;
		if ((rc = upd_json_keys(f, w, fk, e)) != CRETO_OK ||
		    (rc = upd_json_str(f, "path", w, &path, e)) != CRETO_OK ||
		    (rc = upd_json_int(f, "size", w, 0, (int64_t)CRETO_FILE_SIZE_MAX, &size, e)) != CRETO_OK ||
		    (rc = upd_json_str(f, "digest", w, &dg, e)) != CRETO_OK)
			goto out;
		upd_file *uf = &st->files[st->nfiles];
		if (!upd_path_valid(path)) {
			if (strlen(path) <= CRETO_UPDATE_PATH_MAX && !upd_path_fits_ustar(path))
				rc = upd_reject(e, rule, CRETO_RULE_PATH,
						   "path: %s: payload path %.80s... does not fit a ustar header as payload/PATH",
						   w, path);
			else
				rc = upd_reject(e, rule, CRETO_RULE_PATH,
						   "path: %s: payload path %.80s is absolute, has .. or an empty or invalid component",
						   w, path);
			goto out;
		}
		if (st->nfiles > 0) {
			int c = strcmp(st->files[st->nfiles - 1].path, path);
			if (c == 0) {
				rc = upd_reject(e, rule, CRETO_RULE_DUPLICATE_NAME, "duplicate name: %s: path %s listed twice", w, path);
				goto out;
			}
			if (c > 0) {
				rc = creto_err_set(e, CRETO_EREJECT, "statement: %s: paths not in byte order", w);
				goto out;
			}
		}
		/* No file may also be a directory of another file. */
		for (const char *s = strchr(path, '/'); s != NULL; s = strchr(s + 1, '/'))
			if (path_in_sorted(st->files, st->nfiles, path, (size_t)(s - path))) {
				rc = upd_reject(e, rule, CRETO_RULE_DUPLICATE_NAME,
						   "duplicate name: %s: %s is below a path that is a file", w, path);
				goto out;
			}
		uf->path = strdup(path);
		if (uf->path == NULL) {
			rc = creto_err_set(e, CRETO_EOP, "out of memory");
			goto out;
		}
		st->nfiles++;
		uf->size = (uint64_t)size;
		st->total += uf->size;
		if (hex32(dg, uf->digest) != 0) {
			rc = creto_err_set(e, CRETO_EREJECT, "%s: digest is not 64 lowercase hex digits", w);
			goto out;
		}
		uf->nshards = uf->size == 0 ? 1 : (size_t)((uf->size + st->shard_size - 1) / st->shard_size);
		json_t *sh = json_object_get(f, "shards");
		if (uf->nshards == 1) {
			if (sh != NULL) {
				rc = creto_err_set(e, CRETO_EREJECT, "%s: shards given for a one-shard file", w);
				goto out;
			}
			continue;
		}
		if (!json_is_array(sh) || json_array_size(sh) != uf->nshards) {
			rc = creto_err_set(e, CRETO_EREJECT, "%s: needs exactly %zu shard digests", w, uf->nshards);
			goto out;
		}
		uf->shards = malloc(uf->nshards * UPD_DIGEST_LEN);
		if (uf->shards == NULL) {
			rc = creto_err_set(e, CRETO_EOP, "out of memory");
			goto out;
		}
		for (size_t k = 0; k < uf->nshards; k++) {
			json_t *x = json_array_get(sh, k);
			if (!json_is_string(x) || hex32(json_string_value(x), uf->shards[k]) != 0) {
				rc = creto_err_set(e, CRETO_EREJECT, "%s: shard %zu is not 64 lowercase hex digits", w, k + 1);
				goto out;
			}
		}
		uint8_t top[UPD_DIGEST_LEN];
		if (upd_sha3(uf->shards, uf->nshards * UPD_DIGEST_LEN, top) != 0 ||
		    memcmp(top, uf->digest, UPD_DIGEST_LEN) != 0) {
			rc = creto_err_set(e, CRETO_EREJECT,
					   "%s: digest is not SHA3-256 of its shard digests", w);
			goto out;
		}
	}
	if (st->total > (uint64_t)1 << 50) {
		rc = creto_err_set(e, CRETO_EREJECT, "statement: payload too large");
		goto out;
	}
out:
	free(canon);
	json_decref(j);
	if (rc != CRETO_OK)
		upd_statement_free(st);
	return rc;
}

/* ---- create ---- */

typedef struct walk {
	char **paths;
	size_t n, cap;
} walk;

static int walk_add(walk *w, const char *p, creto_err *e)
{
	if (w->n >= CRETO_UPDATE_FILES_MAX)
		return creto_err_set(e, CRETO_EUSAGE, "payload: more than %d files", CRETO_UPDATE_FILES_MAX);
	if (w->n == w->cap) {
		size_t nc = w->cap ? w->cap * 2 : 64;
		char **np = realloc(w->paths, nc * sizeof *np);
		if (np == NULL)
			return creto_err_set(e, CRETO_EOP, "out of memory");
		w->paths = np;
		w->cap = nc;
	}
	w->paths[w->n] = strdup(p);
	if (w->paths[w->n] == NULL)
		return creto_err_set(e, CRETO_EOP, "out of memory");
	w->n++;
	return CRETO_OK;
}

static int walk_dir(const char *root, const char *rel, walk *w, int depth, creto_err *e)
{
	char full[4096];
	snprintf(full, sizeof full, "%s%s%s", root, rel[0] ? "/" : "", rel);
	if (depth > 32)
		return creto_err_set(e, CRETO_EUSAGE, "payload: %s nested too deep", full);
	DIR *d = opendir(full);
	if (d == NULL)
		return creto_err_errno(e, errno, "payload: %s", full);
	int rc = CRETO_OK;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		char r2[4096];
		snprintf(r2, sizeof r2, "%s%s%s", rel, rel[0] ? "/" : "", de->d_name);
		char f2[4096 + 8];
		snprintf(f2, sizeof f2, "%s/%s", root, r2);
		struct stat sb;
		if (lstat(f2, &sb) != 0) {
			rc = creto_err_errno(e, errno, "payload: %s", f2);
			break;
		}
		if (S_ISDIR(sb.st_mode))
			rc = walk_dir(root, r2, w, depth + 1, e);
		else if (S_ISREG(sb.st_mode)) {
			if (!upd_path_valid(r2))
				rc = creto_err_set(e, CRETO_EUSAGE, "payload: %s: %s", r2, PATH_RULE);
			else
				rc = walk_add(w, r2, e);
		} else
			rc = creto_err_set(e, CRETO_EUSAGE, "payload: %s is not a regular file or directory (symlinks and devices are refused)", f2);
		if (rc != CRETO_OK)
			break;
	}
	closedir(d);
	return rc;
}

static int cmp_pp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Hash one file into its digest (and shard digests), shards in parallel
 * through the hash pool (include/creto/hash.h). */
static int hash_file(const char *full, uint64_t size, uint32_t ss, json_t *ent, creto_err *e)
{
	int fd = open(full, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return creto_err_errno(e, errno, "payload: %s", full);
	uint8_t *sd = NULL;
	size_t nsh = 0;
	char hex[65];
	int rc;
	if (size == 0) {
		uint8_t d[CRETO_HASH_MAX];
		rc = creto_hash_buf(CRETO_HASH_SHA3_256, "", 0, d, e);
		if (rc == CRETO_OK) {
			creto_hex_encode(hex, d, UPD_DIGEST_LEN);
			json_object_set_new(ent, "digest", json_string(hex));
		}
		close(fd);
		return rc;
	}
	rc = creto_hash_file_shards(CRETO_HASH_SHA3_256, fd, size, ss, 0, full, &sd, &nsh, e);
	close(fd);
	if (rc != CRETO_OK)
		return rc;
	if (nsh == 1) {
		creto_hex_encode(hex, sd, UPD_DIGEST_LEN);
	} else {
		json_t *arr = json_array();
		for (size_t k = 0; k < nsh; k++) {
			creto_hex_encode(hex, sd + k * UPD_DIGEST_LEN, UPD_DIGEST_LEN);
			json_array_append_new(arr, json_string(hex));
		}
		json_object_set_new(ent, "shards", arr);
		upd_sha3_hex(sd, nsh * UPD_DIGEST_LEN, hex);
	}
	json_object_set_new(ent, "digest", json_string(hex));
	free(sd);
	return CRETO_OK;
}

int creto_update_create(const creto_update_create_opts *o, const char *out_path, creto_err *e)
{
	if (!upd_type_valid(o->type))
		return creto_err_set(e, CRETO_EUSAGE, "update create: unknown type %s", o->type);
	if (!upd_name_valid(o->name))
		return creto_err_set(e, CRETO_EUSAGE, "update create: invalid name %s", o->name);
	if (o->version < 1 || o->version > ((int64_t)1 << 53))
		return creto_err_set(e, CRETO_EUSAGE, "update create: version must be 1..2^53");
	uint32_t ss = o->shard_size ? o->shard_size : CRETO_SHARD_DEFAULT;
	if (ss < CRETO_SHARD_MIN || ss > CRETO_SHARD_MAX)
		return creto_err_set(e, CRETO_EUSAGE, "update create: shard size out of range");
	int64_t created = o->created ? o->created : creto_clock_now(o->clock);
	int64_t expires = o->expires ? o->expires : created + 30 * 86400;
	if (expires <= created)
		return creto_err_set(e, CRETO_EUSAGE, "update create: expires must be after created");
	struct stat sb;
	if (lstat(o->payload, &sb) != 0)
		return creto_err_errno(e, errno, "payload: %s", o->payload);
	walk w = {0};
	int rc = CRETO_OK;
	char root[4096];
	if (S_ISDIR(sb.st_mode)) {
		snprintf(root, sizeof root, "%s", o->payload);
		rc = walk_dir(root, "", &w, 0, e);
	} else if (S_ISREG(sb.st_mode)) {
		const char *base = strrchr(o->payload, '/');
		base = base ? base + 1 : o->payload;
		snprintf(root, sizeof root, "%.*s", (int)(base - o->payload), o->payload);
		if (root[0] == 0)
			snprintf(root, sizeof root, ".");
		if (!upd_path_valid(base))
			rc = creto_err_set(e, CRETO_EUSAGE, "payload: %s: %s", base, PATH_RULE);
		else
			rc = walk_add(&w, base, e);
	} else {
		rc = creto_err_set(e, CRETO_EUSAGE, "payload: %s is not a file or directory", o->payload);
	}
	json_t *st = json_object(), *pl = json_array();
	char *text = NULL;
	size_t tl = 0;
	if (rc != CRETO_OK)
		goto out;
	qsort(w.paths, w.n, sizeof *w.paths, cmp_pp);
	char tb[CRETO_TIME_STRLEN];
	json_object_set_new(st, "format", json_integer(1));
	json_object_set_new(st, "type", json_string(o->type));
	json_object_set_new(st, "name", json_string(o->name));
	json_object_set_new(st, "version", json_integer(o->version));
	creto_time_format(created, tb);
	json_object_set_new(st, "created", json_string(tb));
	creto_time_format(expires, tb);
	json_object_set_new(st, "expires", json_string(tb));
	json_object_set_new(st, "digest_alg", json_string("sha3-256"));
	json_object_set_new(st, "shard_size", json_integer(ss));
	json_object_set_new(st, "payload", pl);
	pl = NULL; /* owned by st now */
	for (size_t i = 0; i < w.n; i++) {
		char full[4400];
		snprintf(full, sizeof full, "%s/%s", root, w.paths[i]);
		struct stat fs;
		if (lstat(full, &fs) != 0 || !S_ISREG(fs.st_mode)) {
			rc = creto_err_set(e, CRETO_EOP, "payload: %s changed", full);
			goto out;
		}
		if ((uint64_t)fs.st_size > CRETO_FILE_SIZE_MAX) {
			rc = creto_err_set(e, CRETO_EUSAGE, "payload: %s larger than 8 GiB - 1", full);
			goto out;
		}
		json_t *ent = json_object();
		json_object_set_new(ent, "path", json_string(w.paths[i]));
		json_object_set_new(ent, "size", json_integer(fs.st_size));
		json_array_append_new(json_object_get(st, "payload"), ent);
		if ((rc = hash_file(full, (uint64_t)fs.st_size, ss, ent, e)) != CRETO_OK)
			goto out;
	}
	if ((rc = upd_canon_dump(st, &text, &tl, e)) != CRETO_OK)
		goto out;
	if (tl > CRETO_STATEMENT_MAX) {
		rc = creto_err_set(e, CRETO_EUSAGE, "update create: statement over %u bytes (raise --shard-size)",
				   CRETO_STATEMENT_MAX);
		goto out;
	}
	/* Round-trip through the verifier's parser. */
	upd_statement chk;
	if ((rc = upd_statement_parse((const uint8_t *)text, tl, &chk, NULL, e)) != CRETO_OK) {
		creto_err_ctx(e, "update create");
		goto out;
	}
	upd_statement_free(&chk);
	if (o->force) {
		/* A new statement: signatures made over the old one are stale. */
		char sp[4200];
		snprintf(sp, sizeof sp, "%s.sigs", out_path);
		if ((rc = creto_file_write_atomic(out_path, text, tl, 0644, e)) == CRETO_OK &&
		    unlink(sp) != 0 && errno != ENOENT)
			rc = creto_err_errno(e, errno, "remove stale %s", sp);
	} else {
		rc = upd_write_new(out_path, text, tl, e);
	}
out:
	for (size_t i = 0; i < w.n; i++)
		free(w.paths[i]);
	free(w.paths);
	free(text);
	json_decref(pl);
	json_decref(st);
	return rc;
}

/* ---- sign ---- */

int upd_write_new(const char *path, const void *data, size_t len, creto_err *e)
{
	struct stat sb;
	if (lstat(path, &sb) == 0)
		return creto_err_set(e, CRETO_EUSAGE, "%s: already exists (--force replaces it)", path);
	int rc = creto_file_write_excl(path, data, len, 0644, e);
	if (rc == CRETO_EUSAGE)
		creto_err_set(e, CRETO_EUSAGE, "%s: already exists (--force replaces it)", path);
	return rc;
}

int upd_doc_lock(const char *path, int *fd, creto_err *e)
{
	*fd = -1;
	for (int i = 0; i < 100; i++) {
		int f = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
		if (f < 0)
			return creto_err_errno(e, errno, "%s", path);
		struct stat a, b;
		if (fstat(f, &a) != 0 || !S_ISREG(a.st_mode)) {
			close(f);
			return creto_err_set(e, CRETO_EUSAGE, "%s: not a regular file", path);
		}
		int r;
		while ((r = flock(f, LOCK_EX)) != 0 && errno == EINTR)
			;
		if (r != 0) {
			r = errno;
			close(f);
			return creto_err_errno(e, r, "lock %s", path);
		}
		if (lstat(path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
			*fd = f;
			return CRETO_OK;
		}
		close(f); /* replaced by the signer before us: lock the new one */
	}
	return creto_err_set(e, CRETO_EOP, "lock %s: replaced too often while waiting", path);
}

int creto_update_sign(const char *statement_path, const char *sigs_path, const char *key_ref,
		      const creto_keys_opts *kopts, char keyid_out[17], creto_err *e)
{
	uint8_t *stm = NULL, *old = NULL, *sig = NULL;
	size_t stl = 0, oldl = 0, siglen = 0;
	creto_signer *signer = NULL;
	json_t *doc = NULL;
	char *text = NULL, *b64 = NULL;
	upd_statement st;
	int have_st = 0, lockfd = -1;
	int rc = creto_file_read(statement_path, CRETO_STATEMENT_MAX, &stm, &stl, e);
	if (rc != CRETO_OK)
		goto out;
	if ((rc = upd_statement_parse(stm, stl, &st, NULL, e)) != CRETO_OK) {
		creto_err_ctx(e, "%s", statement_path);
		goto out;
	}
	have_st = 1;
	/* One signer at a time per statement (it is never replaced by
	 * signing): the signatures document is read and replaced under it. */
	if ((rc = upd_doc_lock(statement_path, &lockfd, e)) != CRETO_OK)
		goto out;
	if (access(sigs_path, F_OK) == 0) {
		if ((rc = creto_file_read(sigs_path, CRETO_SIGS_MAX, &old, &oldl, e)) != CRETO_OK ||
		    (rc = upd_json_parse(old, oldl, sigs_path, &doc, e)) != CRETO_OK)
			goto out;
		static const char *const k[] = {"signatures", NULL};
		upd_sig *ps = NULL;
		size_t pn = 0;
		if ((rc = upd_json_keys(doc, sigs_path, k, e)) != CRETO_OK ||
		    (rc = upd_sigs_parse(json_object_get(doc, "signatures"), sigs_path, &ps, &pn, e)) != CRETO_OK)
			goto out;
		upd_sigs_free(ps, pn);
	} else {
		doc = json_object();
		json_object_set_new(doc, "signatures", json_array());
	}
	if ((rc = creto_keys_open_signer(key_ref, kopts, &signer, e)) != CRETO_OK)
		goto out;
	const char *kid = creto_pubkey_id(creto_signer_pubkey(signer));
	json_t *arr = json_object_get(doc, "signatures");
	size_t i;
	json_t *x;
	json_array_foreach(arr, i, x) {
		if (strcmp(json_string_value(json_object_get(x, "keyid")), kid) == 0) {
			rc = creto_err_set(e, CRETO_EREJECT, "%s: key %s already signed this statement",
					   sigs_path, kid);
			goto out;
		}
	}
	if (json_array_size(arr) >= CRETO_UPDATE_SIGS_MAX) {
		rc = creto_err_set(e, CRETO_EREJECT, "%s: already %d signatures", sigs_path,
				   CRETO_UPDATE_SIGS_MAX);
		goto out;
	}
	if ((rc = creto_signer_sign(signer, (const uint8_t *)CRETO_STATEMENT_CTX,
				    strlen(CRETO_STATEMENT_CTX), stm, stl, &sig, &siglen, e)) != CRETO_OK)
		goto out;
	/* Check our own signature before handing it on. */
	if ((rc = creto_pubkey_verify(creto_signer_pubkey(signer), (const uint8_t *)CRETO_STATEMENT_CTX,
				      strlen(CRETO_STATEMENT_CTX), stm, stl, sig, siglen, e)) != CRETO_OK) {
		rc = creto_err_ctx(e, "update sign: fresh signature does not verify");
		goto out;
	}
	b64 = malloc(creto_b64_enclen(siglen, 0) + 1);
	if (b64 == NULL) {
		rc = creto_err_set(e, CRETO_EOP, "out of memory");
		goto out;
	}
	creto_b64_encode(b64, sig, siglen, 0);
	json_t *ent = json_object();
	json_object_set_new(ent, "keyid", json_string(kid));
	json_object_set_new(ent, "sig", json_string(b64));
	json_array_append_new(arr, ent);
	size_t tl;
	if ((rc = upd_canon_dump(doc, &text, &tl, e)) != CRETO_OK ||
	    (rc = creto_file_write_atomic(sigs_path, text, tl, 0644, e)) != CRETO_OK)
		goto out;
	if (keyid_out != NULL)
		snprintf(keyid_out, 17, "%s", kid);
out:
	if (lockfd >= 0)
		close(lockfd);
	if (have_st)
		upd_statement_free(&st);
	creto_signer_free(signer);
	json_decref(doc);
	free(stm);
	free(old);
	free(sig);
	free(text);
	free(b64);
	return rc;
}
