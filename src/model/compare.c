/*
 * compare.c - a manifest against a directory: which files are modified,
 * missing, extra or renamed.  Files are compared whole (all their shards),
 * so a change reports a file, not a shard.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "model/model_internal.h"

struct fgroup {
	const char *path;
	size_t first, count;
	int state; /* 0 unmatched, 1 same, 2 modified, 3 renamed */
	size_t peer; /* renamed: index of the other side */
};

static int group(const struct creto_model_manifest *m, struct fgroup **out, size_t *n, creto_err *e)
{
	*out = calloc(m->nres ? m->nres : 1, sizeof(**out));
	*n = 0;
	if (*out == NULL)
		return creto_err_errno(e, ENOMEM, "compare");
	for (size_t i = 0; i < m->nres; i++) {
		if (*n > 0 && strcmp((*out)[*n - 1].path, m->res[i].path) == 0) {
			(*out)[*n - 1].count++;
			continue;
		}
		(*out)[*n] = (struct fgroup){.path = m->res[i].path, .first = i, .count = 1};
		(*n)++;
	}
	return CRETO_OK;
}

/* Same content: same shard ranges (sizes) and digests. */
static int same_content(const struct creto_model_manifest *a, const struct fgroup *ga,
			const struct creto_model_manifest *b, const struct fgroup *gb, size_t dl)
{
	if (ga->count != gb->count)
		return 0;
	for (size_t k = 0; k < ga->count; k++) {
		const struct model_res *x = &a->res[ga->first + k], *y = &b->res[gb->first + k];
		if (a->method == CRETO_MODEL_SHARDS && (x->start != y->start || x->end != y->end))
			return 0;
		if (CRYPTO_memcmp(x->digest, y->digest, dl) != 0)
			return 0;
	}
	return 1;
}

/* Content order of two file groups: shard count, then each shard's range
 * and digest.  0 exactly when same_content. */
struct cctx {
	const struct creto_model_manifest *m;
	const struct fgroup *g;
	size_t dl;
};

static int content_cmp(const struct creto_model_manifest *a, const struct fgroup *ga,
		       const struct creto_model_manifest *b, const struct fgroup *gb, size_t dl)
{
	if (ga->count != gb->count)
		return ga->count < gb->count ? -1 : 1;
	for (size_t k = 0; k < ga->count; k++) {
		const struct model_res *x = &a->res[ga->first + k], *y = &b->res[gb->first + k];
		if (a->method == CRETO_MODEL_SHARDS) {
			if (x->start != y->start)
				return x->start < y->start ? -1 : 1;
			if (x->end != y->end)
				return x->end < y->end ? -1 : 1;
		}
		int c = memcmp(x->digest, y->digest, dl);
		if (c != 0)
			return c;
	}
	return 0;
}

static int idx_cmp(const void *pa, const void *pb, void *arg)
{
	const struct cctx *cx = arg;
	size_t a = *(const size_t *)pa, b = *(const size_t *)pb;
	int c = content_cmp(cx->m, &cx->g[a], cx->m, &cx->g[b], cx->dl);
	if (c != 0)
		return c;
	return a < b ? -1 : (a > b); /* equal content: path order */
}

static int match_renames(const struct creto_model_manifest *exp, struct fgroup *ge, size_t ne,
			 const struct creto_model_manifest *act, struct fgroup *ga, size_t na,
			 size_t dl, creto_err *e)
{
	size_t nx = 0;
	for (size_t j = 0; j < na; j++)
		nx += ga[j].state == 0;
	if (nx == 0)
		return CRETO_OK;
	size_t *ix = malloc(nx * sizeof(*ix));
	size_t *next = malloc(nx * sizeof(*next)); /* per run of equal content: next unused */
	if (ix == NULL || next == NULL) {
		free(ix);
		free(next);
		return creto_err_errno(e, ENOMEM, "compare");
	}
	nx = 0;
	for (size_t j = 0; j < na; j++)
		if (ga[j].state == 0)
			ix[nx++] = j;
	struct cctx cx = {.m = act, .g = ga, .dl = dl};
	qsort_r(ix, nx, sizeof(*ix), idx_cmp, &cx); /* glibc (_GNU_SOURCE) */
	for (size_t k = 0; k < nx; k++)
		next[k] = k;
	for (size_t i = 0; i < ne; i++) {
		if (ge[i].state != 0)
			continue;
		/* lower bound of ge[i]'s content among the extras */
		size_t lo = 0, hi = nx;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (content_cmp(act, &ga[ix[mid]], exp, &ge[i], dl) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo == nx || content_cmp(act, &ga[ix[lo]], exp, &ge[i], dl) != 0)
			continue;
		size_t k = next[lo];
		if (k >= nx || content_cmp(act, &ga[ix[k]], exp, &ge[i], dl) != 0)
			continue; /* every extra file of this content already taken */
		next[lo] = k + 1;
		size_t j = ix[k];
		ge[i].state = ga[j].state = 3;
		ge[i].peer = j;
	}
	free(ix);
	free(next);
	return CRETO_OK;
}

static void set_first(creto_model_diff *d, creto_model_diff_kind k, const char *path, const char *to)
{
	if (d->first_kind != CRETO_MODEL_SAME && model_path_cmp(d->first, path) <= 0)
		return;
	d->first_kind = k;
	snprintf(d->first, sizeof(d->first), "%s", path);
	snprintf(d->first_to, sizeof(d->first_to), "%s", to ? to : "");
}

int creto_model_compare(const creto_model_manifest *exp, const creto_model_manifest *act,
			creto_model_diff *dout, creto_err *e)
{
	creto_model_diff local;
	creto_model_diff *d = dout ? dout : &local;
	memset(d, 0, sizeof(*d));
	if (exp->hash != act->hash || exp->method != act->method ||
	    exp->shard_size != act->shard_size)
		return creto_err_set(e, CRETO_EREJECT, "manifests use different serializations (%s/%s)",
				     creto_hash_name(exp->hash), creto_hash_name(act->hash));
	size_t dl = creto_hash_len(exp->hash);
	struct fgroup *ge = NULL, *ga = NULL;
	size_t ne = 0, na = 0;
	int rc = group(exp, &ge, &ne, e);
	if (rc == CRETO_OK)
		rc = group(act, &ga, &na, e);
	if (rc != CRETO_OK)
		goto out;
	size_t i = 0, j = 0;
	while (i < ne && j < na) {
		int c = model_path_cmp(ge[i].path, ga[j].path);
		if (c < 0) {
			i++;
		} else if (c > 0) {
			j++;
		} else {
			int same = same_content(exp, &ge[i], act, &ga[j], dl);
			ge[i].state = ga[j].state = same ? 1 : 2;
			i++;
			j++;
		}
	}
	/* A missing file whose content is an extra file's content: a rename.
	 * The unmatched files of the directory are sorted by content (shard
	 * count, ranges, digests) and each missing file is looked up by binary
	 * search: O((m + n) log n) digest comparisons, so a million renamed
	 * files stay cheap.  Among extra files of equal content the first in
	 * path order is taken, the next one for the next missing file. */
	rc = match_renames(exp, ge, ne, act, ga, na, dl, e);
	if (rc != CRETO_OK)
		goto out;
	char q1[256], q2[256];
	for (i = 0; i < ne; i++) {
		if (ge[i].state == 0) {
			d->missing++;
			set_first(d, CRETO_MODEL_MISSING, ge[i].path, NULL);
		} else if (ge[i].state == 2) {
			d->modified++;
			set_first(d, CRETO_MODEL_MODIFIED, ge[i].path, NULL);
		} else if (ge[i].state == 3) {
			d->renamed++;
			set_first(d, CRETO_MODEL_RENAMED, ge[i].path, ga[ge[i].peer].path);
		}
	}
	for (j = 0; j < na; j++) {
		if (ga[j].state == 0) {
			d->extra++;
			set_first(d, CRETO_MODEL_EXTRA, ga[j].path, NULL);
		}
	}
	if (d->first_kind != CRETO_MODEL_SAME) {
		if (d->first_kind == CRETO_MODEL_RENAMED)
			rc = creto_err_set(e, CRETO_EREJECT,
					   "renamed file: %s -> %s (modified %zu, missing %zu, extra %zu, renamed %zu)",
					   model_quote(d->first, q1, sizeof(q1)),
					   model_quote(d->first_to, q2, sizeof(q2)), d->modified, d->missing,
					   d->extra, d->renamed);
		else
			rc = creto_err_set(e, CRETO_EREJECT,
					   "%s file: %s (modified %zu, missing %zu, extra %zu, renamed %zu)",
					   creto_model_diff_kind_name(d->first_kind),
					   model_quote(d->first, q1, sizeof(q1)), d->modified, d->missing,
					   d->extra, d->renamed);
	}
out:
	free(ge);
	free(ga);
	return rc;
}

int creto_model_verify(const char *dir, const creto_model_manifest *expected,
		       const creto_model_opts *o, creto_model_diff *d, creto_err *e)
{
	creto_model_opts bo;
	memset(&bo, 0, sizeof(bo));
	bo.hash = expected->hash;
	bo.method = expected->method;
	bo.shard_size = expected->shard_size;
	bo.allow_symlinks = expected->allow_symlinks;
	bo.threads = o ? o->threads : 0;
	size_t extra = o ? o->nignore : 0;
	const char **ign = calloc(expected->nignore + extra + 1, sizeof(*ign));
	if (ign == NULL)
		return creto_err_errno(e, ENOMEM, "verify");
	for (size_t i = 0; i < expected->nignore; i++)
		ign[i] = expected->ignore[i];
	for (size_t i = 0; i < extra; i++)
		ign[expected->nignore + i] = o->ignore[i];
	bo.ignore = ign;
	bo.nignore = expected->nignore + extra;
	creto_model_manifest *actual = NULL;
	int rc = model_build(dir, &bo, "verified", &actual, e);
	if (rc == CRETO_OK)
		rc = creto_model_compare(expected, actual, d, e);
	if (rc == CRETO_OK && CRYPTO_memcmp(actual->root, expected->root, 32) != 0)
		rc = creto_err_set(e, CRETO_EREJECT, "root digest differs"); /* unreachable when equal */
	creto_model_manifest_free(actual);
	free(ign);
	return rc;
}
