/*
 * models.c - a model-weights version is routable only after it verified
 * with `creto model verify --sig` semantics by a key of the trust root's
 * `model-weights` role (serve/models.h, docs/serve.md "Model versions").
 * The keys come from the trust root in force, read through its public
 * description (creto_trust_root_describe): no key is configured for this.
 */
#include "serve/models.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "creto/update.h"
#include "util/enc.h"
#include "util/file.h"

#define VERIFIED_MAX (1u << 20) /* bytes of the record */

void serve_model_keys_free(creto_pubkey **keys, size_t nkeys)
{
	if (keys == NULL)
		return;
	for (size_t i = 0; i < nkeys; i++)
		creto_pubkey_free(keys[i]);
	free(keys);
}

/* The model-weights role's keys of a parsed, self-signed root. */
static int role_keys(const creto_trust_root *r, creto_pubkey ***out, size_t *nout, creto_err *e)
{
	char *txt = NULL;
	int rc = creto_trust_root_describe(r, &txt, e);
	if (rc != CRETO_OK)
		return rc;
	json_t *d = json_loads(txt, 0, NULL);
	free(txt);
	if (d == NULL)
		return creto_err_set(e, CRETO_EOP, "trust root: description unreadable");
	json_t *keys = json_object_get(d, "keys");
	json_t *role = json_object_get(json_object_get(d, "roles"), "model-weights");
	json_t *ids = json_object_get(role, "keyids");
	if (!json_is_object(keys) || !json_is_array(ids) || json_array_size(ids) == 0) {
		json_decref(d);
		return creto_err_set(e, CRETO_EREJECT, "trust root version %lld has no model-weights role",
				     (long long)creto_trust_root_version(r));
	}
	size_t n = json_array_size(ids);
	creto_pubkey **v = calloc(n, sizeof *v);
	if (v == NULL) {
		json_decref(d);
		return creto_err_set(e, CRETO_EOP, "out of memory");
	}
	size_t k = 0;
	rc = CRETO_OK;
	for (size_t i = 0; i < n && rc == CRETO_OK; i++) {
		const char *id = json_string_value(json_array_get(ids, i));
		json_t *key = id ? json_object_get(keys, id) : NULL;
		const char *alg = json_string_value(json_object_get(key, "alg"));
		const char *pub = json_string_value(json_object_get(key, "public"));
		if (alg == NULL || pub == NULL) {
			rc = creto_err_set(e, CRETO_EOP, "trust root: model-weights key %s not described",
					   id ? id : "?");
			break;
		}
		size_t cap = creto_b64_declen_max(strlen(pub)), len = 0;
		uint8_t *raw = malloc(cap ? cap : 1);
		if (raw == NULL) {
			rc = creto_err_set(e, CRETO_EOP, "out of memory");
			break;
		}
		if (creto_b64_decode(raw, cap, &len, pub, strlen(pub), 0) != 0)
			rc = creto_err_set(e, CRETO_EOP, "trust root: key %s: bad base64", id);
		else
			rc = creto_pubkey_new(creto_alg_from_name(alg), raw, len, &v[k], e);
		free(raw);
		if (rc == CRETO_OK)
			k++;
	}
	json_decref(d);
	if (rc != CRETO_OK) {
		serve_model_keys_free(v, k);
		return rc;
	}
	*out = v;
	*nout = k;
	return CRETO_OK;
}

int serve_model_keys_load(const char *trust_path, const char *state_dir, int64_t want_version,
			  creto_pubkey ***keys, size_t *nkeys, int64_t *root_version, creto_err *e)
{
	*keys = NULL;
	*nkeys = 0;
	char rotated[4096];
	if (snprintf(rotated, sizeof rotated, "%s/trust-root.json", state_dir) >= (int)sizeof rotated)
		return creto_err_set(e, CRETO_EUSAGE, "state.dir: too long");
	creto_trust_root *op = NULL, *rot = NULL;
	int rc = creto_trust_root_load(trust_path, &op, e);
	if (rc != CRETO_OK)
		return creto_err_ctx(e, "trust.root");
	struct stat st;
	if (lstat(rotated, &st) == 0) {
		creto_err re;
		creto_err_clear(&re);
		if (creto_trust_root_load(rotated, &rot, &re) != CRETO_OK)
			rot = NULL; /* an unusable rotated root: only the operator's can match */
	}
	const creto_trust_root *use = NULL;
	if (want_version > 0) {
		if (creto_trust_root_version(op) == want_version)
			use = op;
		else if (rot != NULL && creto_trust_root_version(rot) == want_version)
			use = rot;
	} else {
		use = rot != NULL && creto_trust_root_version(rot) > creto_trust_root_version(op) ? rot : op;
	}
	if (use == NULL)
		rc = creto_err_set(e, CRETO_EOP, "trust root version %lld in force not found at %s or %s",
				   (long long)want_version, trust_path, rotated);
	else {
		*root_version = creto_trust_root_version(use);
		rc = role_keys(use, keys, nkeys, e);
	}
	creto_trust_root_free(op);
	creto_trust_root_free(rot);
	return rc;
}

int serve_model_verify(const char *dir, creto_pubkey *const *keys, size_t nkeys, char keyid[17],
		       char digest[CRETO_MODEL_DIGEST_STR_MAX], creto_err *e)
{
	keyid[0] = '\0';
	digest[0] = '\0';
	char sig[4096];
	if (snprintf(sig, sizeof sig, "%s/%s", dir, SERVE_MODEL_SIG) >= (int)sizeof sig)
		return creto_err_set(e, CRETO_EUSAGE, "%s: path too long", dir);
	struct stat st;
	if (lstat(sig, &st) != 0) {
		if (errno == ENOENT)
			return creto_err_set(e, CRETO_EREJECT, "no %s in the payload (unsigned model)", SERVE_MODEL_SIG);
		return creto_err_errno(e, errno, "%s", sig);
	}
	uint8_t *buf = NULL, *stmt = NULL;
	size_t len = 0, stlen = 0;
	int rc = creto_file_read(sig, CRETO_MODEL_MANIFEST_MAX, &buf, &len, e);
	if (rc != CRETO_OK)
		return rc == CRETO_EOP ? rc : creto_err_set(e, CRETO_EREJECT, "%s: %s", SERVE_MODEL_SIG, e->msg);
	const creto_pubkey *by = NULL;
	creto_err last;
	creto_err_clear(&last);
	for (size_t i = 0; i < nkeys && by == NULL; i++) {
		creto_err ke;
		creto_err_clear(&ke);
		if (creto_model_verify_signature(buf, len, keys[i], &stmt, &stlen, &ke) == CRETO_OK)
			by = keys[i];
		else
			last = ke;
	}
	free(buf);
	if (by == NULL)
		return creto_err_set(e, CRETO_EREJECT, "%s: signature by no key of the model-weights role (%zu keys; last: %.200s)",
				     SERVE_MODEL_SIG, nkeys, last.msg[0] ? last.msg : "none");
	snprintf(keyid, 17, "%s", creto_pubkey_id(by));
	creto_model_manifest *mf = NULL;
	rc = creto_model_manifest_parse(stmt, stlen, &mf, e);
	free(stmt);
	if (rc != CRETO_OK)
		return creto_err_ctx(e, "%s: statement", SERVE_MODEL_SIG);
	const char *ign[] = {SERVE_MODEL_SIG};
	creto_model_opts o = {.ignore = ign, .nignore = 1};
	rc = creto_model_verify(dir, mf, &o, NULL, e);
	if (rc == CRETO_OK)
		creto_model_manifest_digest_str(mf, digest);
	creto_model_manifest_free(mf);
	return rc;
}

/* ---- the record ---- */

static int name_ok(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n == 0 || n > max)
		return 0;
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || (unsigned char)*s > '~' || *s == '/')
			return 0;
	return 1;
}

int serve_verified_load(const char *runtime_dir, serve_verified **out, size_t *n, creto_err *e)
{
	*out = NULL;
	*n = 0;
	char path[4096];
	if (snprintf(path, sizeof path, "%s/%s", runtime_dir, SERVE_VERIFIED_FILE) >= (int)sizeof path)
		return creto_err_set(e, CRETO_EUSAGE, "serve.runtime_dir: too long");
	uint8_t *buf = NULL;
	size_t len = 0;
	struct stat st;
	if (lstat(path, &st) != 0 && errno == ENOENT)
		return CRETO_OK;
	int rc = creto_file_read(path, VERIFIED_MAX, &buf, &len, e);
	if (rc != CRETO_OK)
		return rc;
	size_t cap = 0, k = 0;
	serve_verified *v = NULL;
	char *p = (char *)buf, *end = p + len;
	int line = 0;
	while (p < end && rc == CRETO_OK) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL) {
			rc = creto_err_set(e, CRETO_EOP, "%s: line %d: no newline", path, line + 1);
			break;
		}
		*nl = '\0';
		line++;
		if (k == cap) {
			size_t nc = cap ? cap * 2 : 16;
			serve_verified *nv = realloc(v, nc * sizeof *nv);
			if (nv == NULL) {
				rc = creto_err_set(e, CRETO_EOP, "out of memory");
				break;
			}
			v = nv;
			cap = nc;
		}
		serve_verified *r = &v[k];
		memset(r, 0, sizeof *r);
		long long ver = 0;
		int used = 0;
		if (sscanf(p, "%64s %lld %64s %16s %79s%n", r->name, &ver, r->statement_digest, r->keyid, r->digest,
			   &used) != 5 ||
		    p[used] != '\0' || ver < 1 || !name_ok(r->name, 64) || strlen(r->statement_digest) != 64) {
			rc = creto_err_set(e, CRETO_EOP, "%s: line %d: malformed", path, line);
			break;
		}
		r->version = ver;
		k++;
		p = nl + 1;
	}
	free(buf);
	if (rc != CRETO_OK) {
		free(v);
		return rc;
	}
	*out = v;
	*n = k;
	return CRETO_OK;
}

int serve_verified_has(const serve_verified *list, size_t n, const char *name, int64_t version,
		       const char *statement_digest)
{
	for (size_t i = 0; i < n; i++)
		if (list[i].version == version && !strcmp(list[i].name, name) &&
		    (statement_digest == NULL || !strcmp(list[i].statement_digest, statement_digest)))
			return 1;
	return 0;
}

int serve_verified_add(const char *runtime_dir, const serve_verified *nv, creto_err *e)
{
	if (!name_ok(nv->name, 64) || !name_ok(nv->statement_digest, 64) || !name_ok(nv->keyid, 16) ||
	    !name_ok(nv->digest, CRETO_MODEL_DIGEST_STR_MAX - 1))
		return creto_err_set(e, CRETO_EUSAGE, "verified model %s: bad field", nv->name);
	serve_verified *v = NULL;
	size_t n = 0;
	int rc = serve_verified_load(runtime_dir, &v, &n, e);
	if (rc != CRETO_OK)
		return rc;
	size_t cap = (n + 1) * 256;
	char *txt = malloc(cap), *q = txt;
	if (txt == NULL) {
		free(v);
		return creto_err_set(e, CRETO_EOP, "out of memory");
	}
	for (size_t i = 0; i <= n; i++) {
		const serve_verified *r = i < n ? &v[i] : nv;
		if (i < n && r->version == nv->version && !strcmp(r->name, nv->name))
			continue; /* replaced by nv */
		q += snprintf(q, cap - (size_t)(q - txt), "%s %lld %s %s %s\n", r->name, (long long)r->version,
			      r->statement_digest, r->keyid, r->digest);
	}
	free(v);
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", runtime_dir, SERVE_VERIFIED_FILE);
	rc = creto_file_write_atomic(path, txt, (size_t)(q - txt), 0644, e);
	free(txt);
	return rc;
}

int serve_routable_write(const char *runtime_dir, const char *name, int64_t version, creto_err *e)
{
	if (!name_ok(name, 64))
		return creto_err_set(e, CRETO_EUSAGE, "routable model: bad name");
	char dir[4096], path[4200], txt[32], cur[32];
	if (snprintf(dir, sizeof dir, "%s/%s", runtime_dir, SERVE_ROUTABLE_DIR) >= (int)sizeof dir)
		return creto_err_set(e, CRETO_EUSAGE, "serve.runtime_dir: too long");
	if (mkdir(dir, 0755) != 0 && errno != EEXIST)
		return creto_err_errno(e, errno, "%s", dir);
	snprintf(path, sizeof path, "%s/%s", dir, name);
	int n = snprintf(txt, sizeof txt, "%lld\n", (long long)version);
	size_t got = 0;
	creto_err ig;
	creto_err_clear(&ig);
	if (creto_file_read_fixed(path, cur, sizeof cur - 1, &got, &ig) == CRETO_OK && got == (size_t)n &&
	    memcmp(cur, txt, got) == 0)
		return CRETO_OK;
	return creto_file_write_atomic(path, txt, (size_t)n, 0644, e);
}
