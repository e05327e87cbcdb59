/*
 * build.c - walk a model directory and hash it into a manifest.
 *
 * The walk never leaves the root: every directory is opened with openat
 * under its parent's fd with O_NOFOLLOW, entries are classified with
 * fstatat(AT_SYMLINK_NOFOLLOW), and only regular files are taken.  A symlink
 * is refused unless allow_symlinks, and then only when it resolves (openat2
 * RESOLVE_BENEATH) to a regular file inside the root; the file is then read
 * through its resolved path, itself opened with no symlink anywhere.
 * Names are validated as UTF-8 before they are used anywhere.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "model/model_internal.h"

struct wfile {
	char *rel;   /* name in the manifest */
	char *open;  /* path read (differs from rel for an allowed symlink) */
	uint64_t size;
	creto_hash_ident id; /* at the walk: every descriptor hashed must match it */
};

struct walk {
	int rootfd;
	char rootreal[PATH_MAX];
	int allow_symlinks;
	const struct creto_model_manifest *m; /* ignore list */
	struct wfile *f;
	size_t n, cap;
};

static int is_ignored(const struct creto_model_manifest *m, const char *rel)
{
	size_t rl = strlen(rel);
	for (size_t i = 0; i < m->nignore; i++) {
		size_t il = strlen(m->ignore[i]);
		if (rl >= il && memcmp(rel, m->ignore[i], il) == 0 && (rel[il] == '\0' || rel[il] == '/'))
			return 1;
	}
	return 0;
}

static int add_file(struct walk *w, const char *rel, const char *open_path,
		    const struct stat *st, creto_err *e)
{
	if (w->n == w->cap) {
		size_t nc = w->cap ? w->cap * 2 : 64;
		struct wfile *nf = realloc(w->f, nc * sizeof(*nf));
		if (nf == NULL)
			return creto_err_errno(e, ENOMEM, "model walk");
		w->f = nf;
		w->cap = nc;
	}
	struct wfile *f = &w->f[w->n];
	f->rel = strdup(rel);
	f->open = strdup(open_path);
	f->size = (uint64_t)st->st_size;
	creto_hash_ident_from_stat(st, &f->id);
	if (f->rel == NULL || f->open == NULL) {
		free(f->rel);
		free(f->open);
		return creto_err_errno(e, ENOMEM, "model walk");
	}
	w->n++;
	if (w->n > CRETO_MODEL_RESOURCES_MAX)
		return creto_err_set(e, CRETO_EREJECT, "model has more than %u files",
				     CRETO_MODEL_RESOURCES_MAX);
	return CRETO_OK;
}

static int fd_realpath(int fd, char *out, size_t cap, creto_err *e)
{
	char proc[64];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(proc, out, cap - 1);
	if (n < 0)
		return creto_err_errno(e, errno, "resolve %s", proc);
	if ((size_t)n >= cap - 1)
		return creto_err_set(e, CRETO_EREJECT, "resolved path too long");
	out[n] = '\0';
	return CRETO_OK;
}

/* An allowed symlink at rel: must resolve beneath the root to a regular file. */
static int take_symlink(struct walk *w, const char *rel, creto_err *e)
{
	char q[256];
	struct open_how how;
	memset(&how, 0, sizeof(how));
	how.flags = O_PATH | O_CLOEXEC;
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
	int fd;
	do {
		fd = (int)syscall(SYS_openat2, w->rootfd, rel, &how, sizeof(how));
	} while (fd < 0 && errno == EAGAIN);
	if (fd < 0) {
		if (errno == EXDEV || errno == ELOOP)
			return creto_err_set(e, CRETO_EREJECT, "%s: symlink resolves outside the model root",
					     model_quote(rel, q, sizeof(q)));
		if (errno == ENOENT)
			return creto_err_set(e, CRETO_EREJECT, "%s: dangling symlink",
					     model_quote(rel, q, sizeof(q)));
		if (errno == ENOSYS)
			return creto_err_set(e, CRETO_EOP, "%s: symlinks need openat2 (Linux 5.6+)",
					     model_quote(rel, q, sizeof(q)));
		return creto_err_errno(e, errno, "%s: resolve symlink", model_quote(rel, q, sizeof(q)));
	}
	struct stat st;
	char real[PATH_MAX];
	int rc = CRETO_OK;
	if (fstat(fd, &st) != 0) {
		rc = creto_err_errno(e, errno, "%s: stat", model_quote(rel, q, sizeof(q)));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = creto_err_set(e, CRETO_EREJECT, "%s: symlink to something other than a regular file",
				   model_quote(rel, q, sizeof(q)));
		goto out;
	}
	rc = fd_realpath(fd, real, sizeof(real), e);
	if (rc != CRETO_OK)
		goto out;
	size_t rl = strlen(w->rootreal);
	const char *inside = NULL;
	if (strcmp(w->rootreal, "/") == 0)
		inside = real + 1;
	else if (strncmp(real, w->rootreal, rl) == 0 && real[rl] == '/')
		inside = real + rl + 1;
	if (inside == NULL || !model_path_valid(inside)) {
		rc = creto_err_set(e, CRETO_EREJECT, "%s: symlink resolves outside the model root",
				   model_quote(rel, q, sizeof(q)));
		goto out;
	}
	rc = add_file(w, rel, inside, &st, e);
out:
	close(fd);
	return rc;
}

static int walk_dir(struct walk *w, int dfd, char *rel, size_t rellen, int depth, creto_err *e)
{
	char q[256];
	DIR *d = fdopendir(dfd);
	if (d == NULL) {
		int err = errno;
		close(dfd);
		return creto_err_errno(e, err, "%s: open directory", rellen ? rel : ".");
	}
	int rc = CRETO_OK;
	for (;;) {
		errno = 0;
		struct dirent *de = readdir(d);
		if (de == NULL) {
			if (errno != 0)
				rc = creto_err_errno(e, errno, "%s: read directory", rellen ? rel : ".");
			break;
		}
		const char *name = de->d_name;
		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
			continue;
		size_t nl = strlen(name);
		size_t cl = rellen + (rellen ? 1 : 0) + nl;
		if (cl > CRETO_MODEL_PATH_MAX) {
			rc = creto_err_set(e, CRETO_EREJECT, "%s/%s: path longer than %d bytes",
					   model_quote(rel, q, sizeof(q)), "...", CRETO_MODEL_PATH_MAX);
			break;
		}
		if (rellen)
			rel[rellen] = '/';
		memcpy(rel + rellen + (rellen ? 1 : 0), name, nl + 1);
		if (!model_utf8_valid(name, nl)) {
			rc = creto_err_set(e, CRETO_EREJECT, "%s: file name is not valid UTF-8",
					   model_quote(rel, q, sizeof(q)));
			break;
		}
		if (is_ignored(w->m, rel)) {
			rel[rellen] = '\0';
			continue;
		}
		struct stat st;
		if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
			rc = creto_err_errno(e, errno, "%s: stat", model_quote(rel, q, sizeof(q)));
			break;
		}
		if (S_ISDIR(st.st_mode)) {
			if (depth >= CRETO_MODEL_DEPTH_MAX) {
				rc = creto_err_set(e, CRETO_EREJECT, "%s: directories nested deeper than %d",
						   model_quote(rel, q, sizeof(q)), CRETO_MODEL_DEPTH_MAX);
				break;
			}
			int sub = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
			if (sub < 0) {
				rc = creto_err_errno(e, errno, "%s: open directory",
						     model_quote(rel, q, sizeof(q)));
				break;
			}
			rc = walk_dir(w, sub, rel, cl, depth + 1, e);
		} else if (S_ISREG(st.st_mode)) {
			rc = add_file(w, rel, rel, &st, e);
		} else if (S_ISLNK(st.st_mode)) {
			if (!w->allow_symlinks)
				rc = creto_err_set(e, CRETO_EREJECT,
						   "%s: symlink refused (--allow-symlinks not given)",
						   model_quote(rel, q, sizeof(q)));
			else
				rc = take_symlink(w, rel, e);
		} else {
			rc = creto_err_set(e, CRETO_EREJECT, "%s: not a regular file or directory",
					   model_quote(rel, q, sizeof(q)));
		}
		rel[rellen] = '\0';
		if (rc != CRETO_OK)
			break;
	}
	closedir(d);
	return rc;
}

static int wfile_cmp(const void *a, const void *b)
{
	return model_path_cmp(((const struct wfile *)a)->rel, ((const struct wfile *)b)->rel);
}

/* Normalise a user ignore path: strip "./" prefixes and trailing '/'. */
static int norm_ignore(const char *in, char *out, size_t cap, creto_err *e)
{
	while (in[0] == '.' && in[1] == '/')
		in += 2;
	size_t n = strlen(in);
	while (n > 1 && in[n - 1] == '/')
		n--;
	if (n >= cap)
		return creto_err_set(e, CRETO_EUSAGE, "ignore path too long");
	memcpy(out, in, n);
	out[n] = '\0';
	if (!model_path_valid(out))
		return creto_err_set(e, CRETO_EUSAGE,
				     "ignore path '%.200s': must be relative to the model root, without '..'",
				     out);
	return CRETO_OK;
}

static int model_name_of(const char *dir, int rootfd, char **out, creto_err *e)
{
	char buf[PATH_MAX];
	size_t n = strlen(dir);
	while (n > 1 && dir[n - 1] == '/')
		n--;
	const char *end = dir + n, *start = end;
	while (start > dir && start[-1] != '/')
		start--;
	size_t bl = (size_t)(end - start);
	if (bl == 0 || (bl == 1 && start[0] == '.') || (bl == 2 && start[0] == '.' && start[1] == '.') ||
	    (bl == 1 && start[0] == '/')) {
		int rc = fd_realpath(rootfd, buf, sizeof(buf), e);
		if (rc != CRETO_OK)
			return rc;
		const char *s = strrchr(buf, '/');
		s = s ? s + 1 : buf;
		*out = strdup(*s ? s : "/");
	} else {
		*out = strndup(start, bl);
	}
	if (*out == NULL)
		return creto_err_errno(e, ENOMEM, "model name");
	if (!model_utf8_valid(*out, strlen(*out)))
		return creto_err_set(e, CRETO_EREJECT, "model directory name is not valid UTF-8");
	return CRETO_OK;
}

int model_build(const char *dir, const creto_model_opts *o, const char *verb,
		creto_model_manifest **out, creto_err *e)
{
	static const creto_model_opts defaults;
	if (o == NULL)
		o = &defaults;
	*out = NULL;
	int rc = CRETO_OK;
	struct walk w;
	memset(&w, 0, sizeof(w));
	w.rootfd = -1;
	creto_hash_range *r = NULL;
	char *rel = NULL;
	struct creto_model_manifest *m = calloc(1, sizeof(*m));
	if (m == NULL)
		return creto_err_errno(e, ENOMEM, "model");

	m->hash = o->hash == CRETO_HASH_NONE ? CRETO_HASH_SHA3_256 : o->hash;
	m->method = o->method != CRETO_MODEL_DEFAULT ? o->method
		    : m->hash == CRETO_HASH_SHA3_256 ? CRETO_MODEL_SHARDS
						     : CRETO_MODEL_FILES;
	m->allow_symlinks = o->allow_symlinks ? 1 : 0;
	if (creto_hash_name(m->hash) == NULL) {
		rc = creto_err_set(e, CRETO_EUSAGE, "unknown hash type");
		goto out;
	}
	if (m->method != CRETO_MODEL_FILES && m->method != CRETO_MODEL_SHARDS) {
		rc = creto_err_set(e, CRETO_EUSAGE, "unknown serialization method");
		goto out;
	}
	if (m->method == CRETO_MODEL_SHARDS)
		m->shard_size = o->shard_size                      ? o->shard_size
				: m->hash == CRETO_HASH_SHA3_256 ? CRETO_MODEL_SHARD_SHA3
								 : CRETO_MODEL_SHARD_DEFAULT;
	/* sha3-256: every file contributes, an empty one as one empty shard
	 * (sha256 shards keep model-signing's layout: none). */
	int empty_shard = m->hash == CRETO_HASH_SHA3_256;
	static const char *const defaults_ign[] = {".git", ".gitattributes", ".github", ".gitignore"};
	for (size_t i = 0; i < 4 && rc == CRETO_OK; i++)
		rc = model_add_ignore(m, defaults_ign[i], e);
	for (size_t i = 0; i < o->nignore && rc == CRETO_OK; i++) {
		char norm[CRETO_MODEL_PATH_MAX + 1];
		rc = norm_ignore(o->ignore[i], norm, sizeof(norm), e);
		if (rc == CRETO_OK)
			rc = model_add_ignore(m, norm, e);
	}
	if (rc != CRETO_OK)
		goto out;

	w.rootfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w.rootfd < 0) {
		if (errno == ENOTDIR)
			rc = creto_err_set(e, CRETO_EUSAGE, "%s: not a directory", dir);
		else
			rc = creto_err_errno(e, errno, "%s", dir);
		goto out;
	}
	rc = fd_realpath(w.rootfd, w.rootreal, sizeof(w.rootreal), e);
	if (rc == CRETO_OK)
		rc = model_name_of(dir, w.rootfd, &m->model_name, e);
	if (rc != CRETO_OK)
		goto out;
	w.allow_symlinks = m->allow_symlinks;
	w.m = m;
	rel = malloc(CRETO_MODEL_PATH_MAX + 2);
	int dfd = rel ? dup(w.rootfd) : -1;
	if (dfd < 0) {
		rc = creto_err_errno(e, rel ? errno : ENOMEM, "%s", dir);
		goto out;
	}
	rel[0] = '\0';
	rc = walk_dir(&w, dfd, rel, 0, 0, e);
	if (rc != CRETO_OK)
		goto out;
	qsort(w.f, w.n, sizeof(*w.f), wfile_cmp);

	/* resources */
	size_t nr = 0;
	for (size_t i = 0; i < w.n; i++) {
		uint64_t k = m->method == CRETO_MODEL_FILES ? 1
			     : w.f[i].size / m->shard_size + (w.f[i].size % m->shard_size != 0);
		if (k == 0 && empty_shard)
			k = 1;
		if (k > CRETO_MODEL_RESOURCES_MAX || nr + k > CRETO_MODEL_RESOURCES_MAX) {
			rc = creto_err_set(e, CRETO_EREJECT, "model has more than %u resources",
					   CRETO_MODEL_RESOURCES_MAX);
			goto out;
		}
		nr += (size_t)k;
		m->bytes += w.f[i].size;
	}
	m->nfiles = w.n;
	r = calloc(nr ? nr : 1, sizeof(*r));
	m->res = calloc(nr ? nr : 1, sizeof(*m->res));
	if (r == NULL || m->res == NULL) {
		rc = creto_err_errno(e, ENOMEM, "model");
		goto out;
	}
	size_t k = 0;
	for (size_t i = 0; i < w.n; i++) {
		uint64_t size = w.f[i].size;
		uint64_t step = m->method == CRETO_MODEL_FILES ? (size ? size : 1) : m->shard_size;
		uint64_t off = 0;
		do {
			uint64_t len = size - off < step ? size - off : step;
			if (m->method == CRETO_MODEL_SHARDS && len == 0 && !empty_shard)
				break;
			r[k].fd = -1;
			r[k].dirfd = w.rootfd;
			r[k].path = w.f[i].open;
			r[k].offset = off;
			r[k].length = len;
			r[k].expect = &w.f[i].id;
			struct model_res *res = &m->res[k];
			m->nres = k + 1;
			res->start = off;
			res->end = off + len;
			res->path = strdup(w.f[i].rel);
			if (m->method == CRETO_MODEL_FILES) {
				res->name = strdup(w.f[i].rel);
			} else {
				size_t nl = strlen(w.f[i].rel) + 48;
				res->name = malloc(nl);
				if (res->name)
					snprintf(res->name, nl, "%s:%llu:%llu", w.f[i].rel,
						 (unsigned long long)off, (unsigned long long)(off + len));
			}
			if (res->name == NULL || res->path == NULL) {
				rc = creto_err_errno(e, ENOMEM, "model");
				goto out;
			}
			k++;
			off += len;
		} while (off < size);
	}
	rc = creto_hash_ranges(m->hash, r, nr, o->threads, e);
	if (rc != CRETO_OK) {
		/* A file that is not what the walk saw (replaced, written, resized)
		 * gives no digest of anything that existed as a whole: an
		 * operational error naming it, never a verdict. */
		char q[256];
		for (size_t i = 0; i < nr; i++)
			if (r[i].changed) {
				rc = creto_err_set(e, CRETO_EOP, "%s: changed while being %s",
						   model_quote(m->res[i].path, q, sizeof(q)), verb);
				break;
			}
		goto out;
	}
	for (size_t i = 0; i < nr; i++)
		memcpy(m->res[i].digest, r[i].digest, CRETO_HASH_MAX);
	/* Every descriptor hashed matched the walk before and after; the name
	 * must still lead to that file too (not replaced once hashed). */
	for (size_t i = 0; i < w.n; i++) {
		struct stat st;
		creto_hash_ident now;
		char q[256];
		int same = fstatat(w.rootfd, w.f[i].open, &st, AT_SYMLINK_NOFOLLOW) == 0;
		if (same) {
			creto_hash_ident_from_stat(&st, &now);
			same = creto_hash_ident_equal(&now, &w.f[i].id);
		}
		if (!same) {
			rc = creto_err_set(e, CRETO_EOP, "%s: changed while being %s",
					   model_quote(w.f[i].rel, q, sizeof(q)), verb);
			goto out;
		}
	}
	rc = model_compute_root(m, m->root, e);
	if (rc != CRETO_OK)
		goto out;
	*out = m;
	m = NULL;
out:
	for (size_t i = 0; i < w.n; i++) {
		free(w.f[i].rel);
		free(w.f[i].open);
	}
	free(w.f);
	free(r);
	free(rel);
	if (w.rootfd >= 0)
		close(w.rootfd);
	model_manifest_free(m);
	return rc;
}

int creto_model_build(const char *dir, const creto_model_opts *o, creto_model_manifest **out,
		      creto_err *e)
{
	return model_build(dir, o, "hashed", out, e);
}
