/*
 * manifest.c - the model manifest as an in-toto Statement v1 with the
 * OpenSSF model-signing predicate (docs/model-manifest.md): writing it, and
 * parsing an untrusted one strictly.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "model/model_internal.h"
#include "util/enc.h"
#include "util/file.h"

#define STATEMENT_TYPE "https://in-toto.io/Statement/v1"

static const char *method_name(creto_model_method m)
{
	return m == CRETO_MODEL_SHARDS ? "shards" : "files";
}

int creto_model_manifest_json(const creto_model_manifest *m, char **out, size_t *outlen,
			      creto_err *e)
{
	*out = NULL;
	*outlen = 0;
	char hex[2 * CRETO_HASH_MAX + 1];
	int rc = CRETO_EOP;
	json_t *st = json_object(), *subj = json_array(), *s0 = json_object(), *dg = json_object();
	json_t *pred = json_object(), *ser = json_object(), *ign = json_array(), *res = json_array();
	if (!st || !subj || !s0 || !dg || !pred || !ser || !ign || !res)
		goto oom;
	creto_hex_encode(hex, m->root, 32);
	int bad = 0;
	bad |= json_object_set_new(dg, "sha256", json_string(hex));
	bad |= json_object_set_new(s0, "name", json_string(m->model_name));
	bad |= json_object_set(s0, "digest", dg);
	bad |= json_array_append(subj, s0);
	bad |= json_object_set_new(st, "_type", json_string(STATEMENT_TYPE));
	bad |= json_object_set(st, "subject", subj);
	bad |= json_object_set_new(st, "predicateType", json_string(CRETO_MODEL_PREDICATE_TYPE));
	bad |= json_object_set_new(ser, "method", json_string(method_name(m->method)));
	bad |= json_object_set_new(ser, "hash_type", json_string(creto_hash_name(m->hash)));
	if (m->method == CRETO_MODEL_SHARDS)
		bad |= json_object_set_new(ser, "shard_size", json_integer((json_int_t)m->shard_size));
	bad |= json_object_set_new(ser, "allow_symlinks", json_boolean(m->allow_symlinks));
	for (size_t i = 0; i < m->nignore; i++)
		bad |= json_array_append_new(ign, json_string(m->ignore[i]));
	bad |= json_object_set(ser, "ignore_paths", ign);
	size_t dl = creto_hash_len(m->hash);
	for (size_t i = 0; i < m->nres && !bad; i++) {
		json_t *r = json_object();
		creto_hex_encode(hex, m->res[i].digest, dl);
		if (r == NULL)
			goto oom;
		bad |= json_object_set_new(r, "name", json_string(m->res[i].name));
		bad |= json_object_set_new(r, "algorithm", json_string(creto_hash_name(m->hash)));
		bad |= json_object_set_new(r, "digest", json_string(hex));
		bad |= json_array_append_new(res, r);
	}
	bad |= json_object_set(pred, "serialization", ser);
	bad |= json_object_set(pred, "resources", res);
	bad |= json_object_set(st, "predicate", pred);
	if (bad)
		goto oom;
	char *txt = json_dumps(st, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (txt == NULL)
		goto oom;
	size_t n = strlen(txt);
	char *t2 = realloc(txt, n + 2);
	if (t2 == NULL) {
		free(txt);
		goto oom;
	}
	t2[n] = '\n';
	t2[n + 1] = '\0';
	*out = t2;
	*outlen = n + 1;
	rc = CRETO_OK;
	goto out;
oom:
	rc = creto_err_errno(e, ENOMEM, "manifest JSON");
out:
	json_decref(st);
	json_decref(subj);
	json_decref(s0);
	json_decref(dg);
	json_decref(pred);
	json_decref(ser);
	json_decref(ign);
	json_decref(res);
	return rc;
}

/* ---- parsing ---- */

/* Refuse keys of obj not in allowed (NULL-terminated). */
static int only_keys(json_t *obj, const char *where, const char *const *allowed, creto_err *e)
{
	const char *k;
	json_t *v;
	json_object_foreach(obj, k, v) {
		int ok = 0;
		for (const char *const *a = allowed; *a; a++)
			if (strcmp(*a, k) == 0)
				ok = 1;
		if (!ok)
			return creto_err_set(e, CRETO_EREJECT, "%s: unexpected field '%.64s'", where, k);
	}
	return CRETO_OK;
}

static int get_str(json_t *obj, const char *key, const char *where, const char **out, creto_err *e)
{
	json_t *v = json_object_get(obj, key);
	if (v == NULL)
		return creto_err_set(e, CRETO_EREJECT, "%s: missing field '%s'", where, key);
	if (!json_is_string(v))
		return creto_err_set(e, CRETO_EREJECT, "%s.%s: not a string", where, key);
	*out = json_string_value(v);
	if (strlen(*out) != json_string_length(v))
		return creto_err_set(e, CRETO_EREJECT, "%s.%s: contains NUL", where, key);
	return CRETO_OK;
}

/* A non-negative integer, which protobuf-made JSON may write as a float. */
static int get_uint(json_t *v, const char *where, uint64_t *out, creto_err *e)
{
	if (json_is_integer(v)) {
		json_int_t i = json_integer_value(v);
		if (i < 0)
			return creto_err_set(e, CRETO_EREJECT, "%s: negative", where);
		*out = (uint64_t)i;
		return CRETO_OK;
	}
	if (json_is_real(v)) {
		double d = json_real_value(v);
		if (!(d >= 0.0 && d <= 9007199254740992.0) || (double)(uint64_t)d != d)
			return creto_err_set(e, CRETO_EREJECT, "%s: not a non-negative integer", where);
		*out = (uint64_t)d;
		return CRETO_OK;
	}
	return creto_err_set(e, CRETO_EREJECT, "%s: not a number", where);
}

/* Parse a decimal offset of a shard name: digits only, no leading zeros. */
static int parse_dec(const char *s, size_t n, uint64_t *out)
{
	if (n == 0 || n > 20 || (n > 1 && s[0] == '0'))
		return -1;
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		unsigned dg = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - dg) / 10)
			return -1;
		v = v * 10 + dg;
	}
	*out = v;
	return 0;
}

static int parse_resource(struct creto_model_manifest *m, json_t *r, size_t i, creto_err *e)
{
	static const char *const keys[] = {"name", "algorithm", "digest", NULL};
	char where[48];
	char q[256];
	snprintf(where, sizeof(where), "predicate.resources[%zu]", i);
	if (!json_is_object(r))
		return creto_err_set(e, CRETO_EREJECT, "%s: not an object", where);
	int rc = only_keys(r, where, keys, e);
	const char *name = NULL, *alg = NULL, *dig = NULL;
	if (rc == CRETO_OK)
		rc = get_str(r, "name", where, &name, e);
	if (rc == CRETO_OK)
		rc = get_str(r, "algorithm", where, &alg, e);
	if (rc == CRETO_OK)
		rc = get_str(r, "digest", where, &dig, e);
	if (rc != CRETO_OK)
		return rc;
	if (creto_hash_from_name(alg) != m->hash)
		return creto_err_set(e, CRETO_EREJECT, "%s.algorithm: '%.32s', expected hash_type '%s'",
				     where, alg, creto_hash_name(m->hash));
	size_t dl = creto_hash_len(m->hash), got = 0;
	struct model_res *res = &m->res[i];
	if (strlen(dig) != 2 * dl || creto_hex_decode(res->digest, sizeof(res->digest), &got, dig,
						      2 * dl) != 0 || got != dl)
		return creto_err_set(e, CRETO_EREJECT, "%s.digest: expected %zu hex digits", where, 2 * dl);
	for (const char *p = dig; *p; p++)
		if (*p >= 'A' && *p <= 'F')
			return creto_err_set(e, CRETO_EREJECT, "%s.digest: not lowercase hex", where);
	res->name = strdup(name);
	if (res->name == NULL)
		return creto_err_errno(e, ENOMEM, "manifest");
	size_t plen = strlen(name);
	if (m->method == CRETO_MODEL_SHARDS) {
		const char *c2 = strrchr(name, ':');
		const char *c1 = NULL;
		if (c2 != NULL)
			for (const char *p = c2 - 1; p >= name; p--)
				if (*p == ':') {
					c1 = p;
					break;
				}
		if (c1 == NULL || parse_dec(c1 + 1, (size_t)(c2 - c1 - 1), &res->start) != 0 ||
		    parse_dec(c2 + 1, strlen(c2 + 1), &res->end) != 0 || res->end < res->start ||
		    (res->end == res->start && !creto_model_manifest_root_binds_layout(m)))
			return creto_err_set(e, CRETO_EREJECT, "%s.name '%s': expected path:start:end",
					     where, model_quote(name, q, sizeof(q)));
		plen = (size_t)(c1 - name);
	}
	res->path = strndup(name, plen);
	if (res->path == NULL)
		return creto_err_errno(e, ENOMEM, "manifest");
	if (!model_path_valid(res->path))
		return creto_err_set(e, CRETO_EREJECT, "%s.name '%s': not a clean relative path",
				     where, model_quote(name, q, sizeof(q)));
	return CRETO_OK;
}

/* Shards of each file start at 0, are contiguous, and all but the last are
 * exactly shard_size long; an empty shard (sha3-256: an empty file) is the
 * only shard of its file. */
static int check_shards(const struct creto_model_manifest *m, creto_err *e)
{
	char q[256];
	for (size_t i = 0; i < m->nres; i++) {
		const struct model_res *r = &m->res[i];
		int first = i == 0 || strcmp(m->res[i - 1].path, r->path) != 0;
		int last = i + 1 == m->nres || strcmp(m->res[i + 1].path, r->path) != 0;
		if (first && r->start != 0)
			return creto_err_set(e, CRETO_EREJECT, "resource %s: first shard does not start at 0",
					     model_quote(r->name, q, sizeof(q)));
		if (!first && m->res[i - 1].end != r->start)
			return creto_err_set(e, CRETO_EREJECT, "resource %s: shards not contiguous",
					     model_quote(r->name, q, sizeof(q)));
		uint64_t len = r->end - r->start;
		if (len == 0 && !(first && last))
			return creto_err_set(e, CRETO_EREJECT,
					     "resource %s: an empty shard must be its file's only shard",
					     model_quote(r->name, q, sizeof(q)));
		if (len > m->shard_size || (!last && len != m->shard_size))
			return creto_err_set(e, CRETO_EREJECT, "resource %s: length differs from shard_size",
					     model_quote(r->name, q, sizeof(q)));
	}
	return CRETO_OK;
}

int creto_model_manifest_parse(const uint8_t *buf, size_t len, creto_model_manifest **out,
			       creto_err *e)
{
	static const char *const top_keys[] = {"_type", "subject", "predicateType", "predicate", NULL};
	static const char *const subj_keys[] = {"name", "digest", NULL};
	static const char *const ser_keys[] = {"method", "hash_type", "shard_size", "allow_symlinks",
					       "ignore_paths", NULL};
	*out = NULL;
	if (len > CRETO_MODEL_MANIFEST_MAX)
		return creto_err_set(e, CRETO_EREJECT, "manifest larger than %u bytes",
				     CRETO_MODEL_MANIFEST_MAX);
	if (!model_utf8_valid((const char *)buf, len) && len > 0)
		return creto_err_set(e, CRETO_EREJECT, "manifest: not UTF-8 text");
	json_error_t je;
	json_t *root = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &je);
	if (root == NULL)
		return creto_err_set(e, CRETO_EREJECT, "manifest: invalid JSON at line %d column %d: %s",
				     je.line, je.column, je.text);
	int rc = CRETO_OK;
	char q[256];
	struct creto_model_manifest *m = calloc(1, sizeof(*m));
	if (m == NULL) {
		rc = creto_err_errno(e, ENOMEM, "manifest");
		goto out;
	}
	const char *s = NULL;
	if (!json_is_object(root)) {
		rc = creto_err_set(e, CRETO_EREJECT, "manifest: not a JSON object");
		goto out;
	}
	if ((rc = only_keys(root, "statement", top_keys, e)) != CRETO_OK ||
	    (rc = get_str(root, "_type", "statement", &s, e)) != CRETO_OK)
		goto out;
	if (strcmp(s, STATEMENT_TYPE) != 0) {
		rc = creto_err_set(e, CRETO_EREJECT, "statement._type: '%.80s', expected %s", s,
				   STATEMENT_TYPE);
		goto out;
	}
	if ((rc = get_str(root, "predicateType", "statement", &s, e)) != CRETO_OK)
		goto out;
	if (strcmp(s, CRETO_MODEL_PREDICATE_TYPE) != 0) {
		rc = creto_err_set(e, CRETO_EREJECT, "statement.predicateType: '%.80s', expected %s", s,
				   CRETO_MODEL_PREDICATE_TYPE);
		goto out;
	}
	json_t *subj = json_object_get(root, "subject");
	if (!json_is_array(subj) || json_array_size(subj) != 1) {
		rc = creto_err_set(e, CRETO_EREJECT, "statement.subject: expected exactly one subject");
		goto out;
	}
	json_t *s0 = json_array_get(subj, 0);
	if (!json_is_object(s0)) {
		rc = creto_err_set(e, CRETO_EREJECT, "statement.subject[0]: not an object");
		goto out;
	}
	if ((rc = only_keys(s0, "subject[0]", subj_keys, e)) != CRETO_OK ||
	    (rc = get_str(s0, "name", "subject[0]", &s, e)) != CRETO_OK)
		goto out;
	if ((m->model_name = strdup(s)) == NULL) {
		rc = creto_err_errno(e, ENOMEM, "manifest");
		goto out;
	}
	json_t *dg = json_object_get(s0, "digest");
	static const char *const dg_keys[] = {"sha256", NULL};
	if (!json_is_object(dg)) {
		rc = creto_err_set(e, CRETO_EREJECT, "subject[0].digest: missing or not an object");
		goto out;
	}
	uint8_t want_root[32];
	size_t got = 0;
	if ((rc = only_keys(dg, "subject[0].digest", dg_keys, e)) != CRETO_OK ||
	    (rc = get_str(dg, "sha256", "subject[0].digest", &s, e)) != CRETO_OK)
		goto out;
	if (strlen(s) != 64 || creto_hex_decode(want_root, 32, &got, s, 64) != 0) {
		rc = creto_err_set(e, CRETO_EREJECT, "subject[0].digest.sha256: expected 64 hex digits");
		goto out;
	}

	json_t *pred = json_object_get(root, "predicate");
	if (!json_is_object(pred)) {
		rc = creto_err_set(e, CRETO_EREJECT, "statement: missing predicate");
		goto out;
	}
	/* Other predicate fields are ignored, as the v1.0 predicate says. */
	json_t *ser = json_object_get(pred, "serialization");
	if (!json_is_object(ser)) {
		rc = creto_err_set(e, CRETO_EREJECT, "predicate.serialization: missing or not an object");
		goto out;
	}
	if ((rc = only_keys(ser, "predicate.serialization", ser_keys, e)) != CRETO_OK ||
	    (rc = get_str(ser, "method", "predicate.serialization", &s, e)) != CRETO_OK)
		goto out;
	if (strcmp(s, "files") == 0) {
		m->method = CRETO_MODEL_FILES;
	} else if (strcmp(s, "shards") == 0) {
		m->method = CRETO_MODEL_SHARDS;
	} else {
		rc = creto_err_set(e, CRETO_EREJECT, "predicate.serialization.method: unknown '%.32s'", s);
		goto out;
	}
	if ((rc = get_str(ser, "hash_type", "predicate.serialization", &s, e)) != CRETO_OK)
		goto out;
	m->hash = creto_hash_from_name(s);
	if (m->hash == CRETO_HASH_NONE) {
		rc = creto_err_set(e, CRETO_EREJECT,
				   "predicate.serialization.hash_type: unsupported '%.32s' (sha3-256, sha256)", s);
		goto out;
	}
	json_t *as = json_object_get(ser, "allow_symlinks");
	if (as != NULL && !json_is_boolean(as)) {
		rc = creto_err_set(e, CRETO_EREJECT, "predicate.serialization.allow_symlinks: not a boolean");
		goto out;
	}
	m->allow_symlinks = as != NULL && json_is_true(as);
	json_t *ss = json_object_get(ser, "shard_size");
	if (m->method == CRETO_MODEL_SHARDS) {
		if (ss == NULL) {
			rc = creto_err_set(e, CRETO_EREJECT, "predicate.serialization: missing shard_size");
			goto out;
		}
		if ((rc = get_uint(ss, "predicate.serialization.shard_size", &m->shard_size, e)) != CRETO_OK)
			goto out;
		if (m->shard_size == 0) {
			rc = creto_err_set(e, CRETO_EREJECT, "predicate.serialization.shard_size: 0");
			goto out;
		}
	} else if (ss != NULL) {
		rc = creto_err_set(e, CRETO_EREJECT, "predicate.serialization.shard_size: only for shards");
		goto out;
	}
	json_t *ign = json_object_get(ser, "ignore_paths");
	if (ign != NULL) {
		if (!json_is_array(ign) || json_array_size(ign) > 4096) {
			rc = creto_err_set(e, CRETO_EREJECT, "predicate.serialization.ignore_paths: not a list");
			goto out;
		}
		size_t i;
		json_t *v;
		json_array_foreach(ign, i, v) {
			const char *p = json_string_value(v);
			if (p == NULL || strlen(p) != json_string_length(v) || !model_path_valid(p)) {
				rc = creto_err_set(e, CRETO_EREJECT,
						   "predicate.serialization.ignore_paths[%zu]: not a clean relative path", i);
				goto out;
			}
			if ((rc = model_add_ignore(m, p, e)) != CRETO_OK)
				goto out;
		}
	}

	json_t *res = json_object_get(pred, "resources");
	if (!json_is_array(res)) {
		rc = creto_err_set(e, CRETO_EREJECT, "predicate.resources: missing or not a list");
		goto out;
	}
	size_t n = json_array_size(res);
	if (n > CRETO_MODEL_RESOURCES_MAX) {
		rc = creto_err_set(e, CRETO_EREJECT, "predicate.resources: more than %u",
				   CRETO_MODEL_RESOURCES_MAX);
		goto out;
	}
	m->res = calloc(n ? n : 1, sizeof(*m->res));
	if (m->res == NULL) {
		rc = creto_err_errno(e, ENOMEM, "manifest");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		m->nres = i + 1;
		if ((rc = parse_resource(m, json_array_get(res, i), i, e)) != CRETO_OK)
			goto out;
		if (i > 0 && model_res_cmp(&m->res[i - 1], &m->res[i]) >= 0) {
			rc = creto_err_set(e, CRETO_EREJECT,
					   "predicate.resources[%zu] '%s': not in canonical order or duplicated", i,
					   model_quote(m->res[i].name, q, sizeof(q)));
			goto out;
		}
		if (m->method == CRETO_MODEL_FILES && i > 0 &&
		    strncmp(m->res[i - 1].path, m->res[i].path, strlen(m->res[i - 1].path)) == 0 &&
		    m->res[i].path[strlen(m->res[i - 1].path)] == '/') {
			rc = creto_err_set(e, CRETO_EREJECT, "predicate.resources[%zu] '%s': under a file",
					   i, model_quote(m->res[i].name, q, sizeof(q)));
			goto out;
		}
	}
	if (m->method == CRETO_MODEL_SHARDS && (rc = check_shards(m, e)) != CRETO_OK)
		goto out;
	for (size_t i = 0; i < n; i++)
		if (i == 0 || strcmp(m->res[i - 1].path, m->res[i].path) != 0)
			m->nfiles++;
	if ((rc = model_compute_root(m, m->root, e)) != CRETO_OK)
		goto out;
	if (CRYPTO_memcmp(m->root, want_root, 32) != 0) {
		/* A sha3-256 manifest of an earlier creto has the root of the
		 * digests only: refused (it binds less), but said plainly. */
		uint8_t legacy[32];
		creto_hash_alg h = m->hash;
		m->hash = CRETO_HASH_SHA256; /* the digests-only root; same digest length */
		int old = model_compute_root(m, legacy, e) == CRETO_OK &&
			  CRYPTO_memcmp(legacy, want_root, 32) == 0;
		m->hash = h;
		if (old && h == CRETO_HASH_SHA3_256)
			rc = creto_err_set(e, CRETO_EREJECT,
					   "subject[0].digest.sha256: a sha3-256 root of an earlier creto "
					   "version (digests only); write the manifest again with creto model manifest");
		else
			rc = creto_err_set(e, CRETO_EREJECT,
					   "subject[0].digest.sha256: does not match the root digest of the resources");
		goto out;
	}
	*out = m;
	m = NULL;
out:
	json_decref(root);
	model_manifest_free(m);
	return rc;
}

int creto_model_manifest_load(const char *path, creto_model_manifest **out, creto_err *e)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	*out = NULL;
	int rc = creto_file_read(path, CRETO_MODEL_MANIFEST_MAX, &buf, &len, e);
	if (rc == CRETO_OK)
		rc = creto_model_manifest_parse(buf, len, out, e);
	if (rc != CRETO_OK)
		(void)creto_err_ctx(e, "%s", path);
	free(buf);
	return rc;
}
