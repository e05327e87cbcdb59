/*
 * cmd_model.c - `creto model hash|manifest|verify|sign`: model directory
 * digests, manifests in the OpenSSF model-signing format, and their
 * signatures.  The work is in src/model/; this file parses options, picks
 * the files to leave out (the manifest or signature itself when it lies in
 * the model directory), and prints.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>

#include "cli.h"
#include "creto/hash.h"
#include "creto/keys.h"
#include "creto/model.h"
#include "util/enc.h"
#include "util/file.h"

static int cmd_model_hash(int argc, char **argv);
static int cmd_model_manifest(int argc, char **argv);
static int cmd_model_verify(int argc, char **argv);
static int cmd_model_sign(int argc, char **argv);

#define HASH_OPTS "[--hash sha3-256|sha256] [--method files|shards] [--shard-size N] [--threads N] " \
		  "[--allow-symlinks] [--ignore PATH]... [--fips]"

static const struct cli_cmd model_cmds[] = {
	{"hash", cmd_model_hash, "DIR " HASH_OPTS " [--json]",
	 "print <hash_type>:<root digest> of a model directory"},
	{"manifest", cmd_model_manifest, "DIR -o MANIFEST.json " HASH_OPTS " [--json]",
	 "write the model's manifest (in-toto statement, OpenSSF model-signing format)"},
	{"verify", cmd_model_verify,
	 "DIR (--manifest MANIFEST.json [--expect HASH_TYPE:HEX] | --sig model.sig --pub P) "
	 "[--threads N] [--ignore PATH]... [--fips] [--module SO] [--pin-file F] [--json]",
	 "check a model directory against its manifest or signature"},
	{"sign", cmd_model_sign,
	 "DIR|MANIFEST.json --key K -o model.sig " HASH_OPTS " [--module SO] [--pin-file F] [--json]",
	 "sign a model manifest (DSSE; Sigstore bundle v0.3 for ECDSA keys)"},
	{NULL, NULL, NULL, NULL},
};
const struct cli_cmd *cmd_model_table(void) { return model_cmds; } /* docs: cli_doc.c */

int cmd_model(int argc, char **argv)
{
	return cli_dispatch("model", model_cmds, argc, argv);
}

enum {
	OPT_HASH = 256,
	OPT_METHOD,
	OPT_SHARD,
	OPT_THREADS,
	OPT_SYMLINKS,
	OPT_IGNORE,
	OPT_JSON,
	OPT_MANIFEST,
	OPT_EXPECT,
	OPT_SIG,
	OPT_PUB,
	OPT_KEY,
	OPT_MODULE,
	OPT_PIN,
	OPT_FIPS,
};

#define MAX_IGNORES 256

struct mopts {
	creto_model_opts o;
	const char *ign[MAX_IGNORES + 4];
	size_t nign_user; /* from --ignore */
	int json;
	const char *out, *manifest, *expect, *sig, *pub, *key, *module, *pin;
	const char *dir;
};

/* Common option parsing; which options are accepted depends on cmd. */
static int parse(int argc, char **argv, const struct cli_cmd *cmd, int hashopts, struct mopts *m)
{
	static const struct option all[] = {
		{"hash", required_argument, NULL, OPT_HASH},
		{"method", required_argument, NULL, OPT_METHOD},
		{"shard-size", required_argument, NULL, OPT_SHARD},
		{"threads", required_argument, NULL, OPT_THREADS},
		{"allow-symlinks", no_argument, NULL, OPT_SYMLINKS},
		{"ignore", required_argument, NULL, OPT_IGNORE},
		{"json", no_argument, NULL, OPT_JSON},
		{"output", required_argument, NULL, 'o'},
		{"manifest", required_argument, NULL, OPT_MANIFEST},
		{"expect", required_argument, NULL, OPT_EXPECT},
		{"sig", required_argument, NULL, OPT_SIG},
		{"pub", required_argument, NULL, OPT_PUB},
		{"key", required_argument, NULL, OPT_KEY},
		{"module", required_argument, NULL, OPT_MODULE},
		{"pin-file", required_argument, NULL, OPT_PIN},
		{"fips", no_argument, NULL, OPT_FIPS},
		{NULL, 0, NULL, 0},
	};
	memset(m, 0, sizeof(*m));
	optind = 1;
	int c;
	uint64_t v;
	while ((c = cli_getopt(argc, argv, "o:", all, NULL)) != -1) {
		if (!hashopts && (c == OPT_HASH || c == OPT_METHOD || c == OPT_SHARD || c == OPT_SYMLINKS))
			return cli_usage_error("--%s comes from the manifest", all[c - OPT_HASH].name);
		switch (c) {
		case OPT_HASH:
			m->o.hash = creto_hash_from_name(optarg);
			if (m->o.hash == CRETO_HASH_NONE)
				return cli_usage_error("--hash '%.64s': want sha3-256 or sha256", optarg);
			break;
		case OPT_METHOD:
			if (strcmp(optarg, "files") == 0)
				m->o.method = CRETO_MODEL_FILES;
			else if (strcmp(optarg, "shards") == 0)
				m->o.method = CRETO_MODEL_SHARDS;
			else
				return cli_usage_error("--method '%.64s': want files or shards", optarg);
			break;
		case OPT_SHARD:
			if (cli_parse_u64(NULL, NULL, "--shard-size", optarg, 1, UINT64_MAX >> 1, &v) != 0)
				return CRETO_EUSAGE;
			m->o.shard_size = v;
			break;
		case OPT_THREADS:
			if (cli_parse_u64(NULL, NULL, "--threads", optarg, 1, CRETO_HASH_THREADS_MAX, &v) != 0)
				return CRETO_EUSAGE;
			m->o.threads = (unsigned)v;
			break;
		case OPT_SYMLINKS: m->o.allow_symlinks = 1; break;
		case OPT_IGNORE:
			if (m->nign_user >= MAX_IGNORES)
				return cli_usage_error("too many --ignore (at most %d)", MAX_IGNORES);
			m->ign[m->nign_user++] = optarg;
			break;
		case OPT_JSON: m->json = 1; break;
		case 'o': m->out = optarg; break;
		case OPT_MANIFEST: m->manifest = optarg; break;
		case OPT_EXPECT: m->expect = optarg; break;
		case OPT_SIG: m->sig = optarg; break;
		case OPT_PUB: m->pub = optarg; break;
		case OPT_KEY: m->key = optarg; break;
		case OPT_MODULE: m->module = optarg; break;
		case OPT_PIN: m->pin = optarg; break;
		/* digests from OpenSSL only (its SHA3 may be the validated one),
		 * never the multi-lane engine; the digests are the same */
		case OPT_FIPS: creto_hash_set_fips(1); break;
		default:
			return cli_usage("model", cmd);
		}
	}
	if (m->o.shard_size != 0 && m->o.method != CRETO_MODEL_SHARDS)
		return cli_usage_error("--shard-size needs --method shards");
	if (optind != argc - 1) {
		(void)cli_usage_error("want exactly one %s, got %d arguments", cmd == &model_cmds[3] ?
				      "DIR or MANIFEST.json" : "DIR", argc - optind);
		return cli_usage("model", cmd);
	}
	m->dir = argv[optind];
	/* --ignore paths given as DIR/x are taken relative to DIR. */
	size_t dl = strlen(m->dir);
	while (dl > 1 && m->dir[dl - 1] == '/')
		dl--;
	for (size_t i = 0; i < m->nign_user; i++)
		if (strncmp(m->ign[i], m->dir, dl) == 0 && m->ign[i][dl] == '/')
			m->ign[i] += dl + 1;
	m->o.ignore = m->ign;
	m->o.nignore = m->nign_user;
	return CRETO_OK;
}

/* When file lies inside dir, the path relative to dir, malloc'ed, else NULL. */
static char *rel_inside(const char *dir, const char *file)
{
	char rd[PATH_MAX], rp[PATH_MAX];
	if (realpath(dir, rd) == NULL)
		return NULL;
	char *copy = strdup(file);
	if (copy == NULL)
		return NULL;
	char *slash = strrchr(copy, '/');
	const char *base = slash ? slash + 1 : copy;
	const char *parent = slash ? (slash == copy ? "/" : copy) : ".";
	if (slash && slash != copy)
		*slash = '\0';
	char *res = NULL;
	if (realpath(parent, rp) != NULL && *base != '\0') {
		size_t n = strlen(rd);
		char full[PATH_MAX * 2];
		snprintf(full, sizeof(full), "%s/%s", strcmp(rp, "/") == 0 ? "" : rp, base);
		if (strcmp(rd, "/") == 0)
			res = strdup(full + 1);
		else if (strncmp(full, rd, n) == 0 && full[n] == '/')
			res = strdup(full + n + 1);
	}
	free(copy);
	return res;
}

/* Leave the tool's own output/input file out of the model when it is inside. */
static void ignore_own(struct mopts *m, const char *file, char **hold)
{
	*hold = file ? rel_inside(m->dir, file) : NULL;
	if (*hold != NULL && m->o.nignore < MAX_IGNORES + 4)
		m->ign[m->o.nignore++] = *hold;
}

/* creto_model_build with progress on stderr when wanted (cli.h). */
static int build(const char *dir, const creto_model_opts *o, const char *label, creto_model_manifest **mf,
		 creto_err *e)
{
	cli_progress *p = cli_progress_wanted() ? cli_progress_start(label, cli_dir_bytes(dir)) : NULL;
	int rc = creto_model_build(dir, o, mf, e);
	cli_progress_stop(p);
	return rc;
}

static json_t *summary_json(const creto_model_manifest *mf)
{
	char dg[CRETO_MODEL_DIGEST_STR_MAX];
	creto_model_manifest_digest_str(mf, dg);
	return json_pack("{s:b, s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "ok", 1, "model",
			 creto_model_manifest_name(mf), "digest", dg, "hash_type",
			 creto_hash_name(creto_model_manifest_hash(mf)), "method",
			 creto_model_manifest_method(mf) == CRETO_MODEL_SHARDS ? "shards" : "files",
			 "files", (json_int_t)creto_model_manifest_files(mf), "resources",
			 (json_int_t)creto_model_manifest_count(mf), "bytes",
			 (json_int_t)creto_model_manifest_bytes(mf));
}

static int cmd_model_hash(int argc, char **argv)
{
	struct mopts m;
	int rc = parse(argc, argv, &model_cmds[0], 1, &m);
	if (rc != CRETO_OK)
		return rc;
	creto_err e;
	creto_err_clear(&e);
	creto_model_manifest *mf = NULL;
	rc = build(m.dir, &m.o, "model hash", &mf, &e);
	if (rc != CRETO_OK)
		return cli_fail(&e, m.json);
	if (m.json) {
		rc = cli_json_out(summary_json(mf));
	} else {
		char dg[CRETO_MODEL_DIGEST_STR_MAX];
		creto_model_manifest_digest_str(mf, dg);
		rc = printf("%s\n", dg) < 0 || fflush(stdout) != 0 ? CRETO_EOP : CRETO_OK;
	}
	creto_model_manifest_free(mf);
	return rc;
}

static int cmd_model_manifest(int argc, char **argv)
{
	struct mopts m;
	int rc = parse(argc, argv, &model_cmds[1], 1, &m);
	if (rc != CRETO_OK)
		return rc;
	if (m.out == NULL)
		return cli_usage_error("model manifest: -o MANIFEST.json is required");
	char *own = NULL, *txt = NULL;
	size_t len = 0;
	ignore_own(&m, m.out, &own);
	creto_err e;
	creto_err_clear(&e);
	creto_model_manifest *mf = NULL;
	rc = build(m.dir, &m.o, "model manifest", &mf, &e);
	if (rc == CRETO_OK)
		rc = creto_model_manifest_json(mf, &txt, &len, &e);
	if (rc == CRETO_OK)
		rc = creto_file_write_atomic(m.out, txt, len, 0644, &e);
	if (rc != CRETO_OK) {
		rc = cli_fail(&e, m.json);
	} else if (m.json) {
		json_t *o = summary_json(mf);
		if (o != NULL)
			json_object_set_new(o, "manifest", json_string(m.out));
		rc = cli_json_out(o);
	} else {
		char dg[CRETO_MODEL_DIGEST_STR_MAX];
		creto_model_manifest_digest_str(mf, dg);
		cli_status("wrote %s: %zu files, %zu resources, %s", m.out, creto_model_manifest_files(mf),
			   creto_model_manifest_count(mf), dg);
	}
	free(txt);
	free(own);
	creto_model_manifest_free(mf);
	return rc;
}

/* A rejection of verify: one stderr line, and the diff as JSON. */
static int verify_fail(const creto_err *e, int json, const creto_model_manifest *mf,
		       const creto_model_diff *d)
{
	if (!json || d == NULL || d->first_kind == CRETO_MODEL_SAME)
		return cli_fail(e, json);
	fprintf(stderr, "creto: %s\n", e->msg);
	json_t *o = json_pack("{s:b, s:s, s:i, s:s, s:s, s:I, s:I, s:I, s:I, s:{s:s, s:s}}", "ok", 0,
			      "status", creto_status_name(e->code), "code", e->code, "error", e->msg,
			      "model", creto_model_manifest_name(mf), "modified", (json_int_t)d->modified,
			      "missing", (json_int_t)d->missing, "extra", (json_int_t)d->extra, "renamed",
			      (json_int_t)d->renamed, "first", "kind",
			      creto_model_diff_kind_name(d->first_kind), "path", d->first);
	if (o != NULL && d->first_kind == CRETO_MODEL_RENAMED)
		json_object_set_new(json_object_get(o, "first"), "to", json_string(d->first_to));
	if (o != NULL)
		(void)cli_json_out(o);
	return e->code;
}

static int in_list(const char *p, const char *const *l, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (l[i] != NULL && strcmp(l[i], p) == 0)
			return 1;
	return 0;
}

static int cmd_model_verify(int argc, char **argv)
{
	struct mopts m;
	int rc = parse(argc, argv, &model_cmds[2], 0, &m);
	if (rc != CRETO_OK)
		return rc;
	if ((m.manifest == NULL) == (m.sig == NULL))
		return cli_usage_error("model verify: give either --manifest or --sig");
	if (m.sig != NULL && m.pub == NULL)
		return cli_usage_error("model verify: --sig needs --pub");
	if (m.sig == NULL && m.pub != NULL)
		return cli_usage_error("model verify: --pub goes with --sig");
	char *own = NULL;
	uint8_t *buf = NULL, *stmt = NULL;
	size_t len = 0, stlen = 0;
	creto_pubkey *pk = NULL;
	creto_model_manifest *mf = NULL;
	creto_model_diff *d = calloc(1, sizeof(*d));
	creto_err e;
	creto_err_clear(&e);
	if (d == NULL) {
		rc = creto_err_errno(&e, ENOMEM, "verify");
		goto fail;
	}
	ignore_own(&m, m.sig ? m.sig : m.manifest, &own);
	if (m.sig != NULL) {
		creto_keys_opts ko = {.module_path = m.module, .pin_file = m.pin};
		rc = creto_model_open_pubkey(m.pub, &ko, &pk, &e);
		if (rc == CRETO_OK)
			rc = creto_file_read(m.sig, CRETO_MODEL_MANIFEST_MAX, &buf, &len, &e);
		if (rc == CRETO_OK)
			rc = creto_model_verify_signature(buf, len, pk, &stmt, &stlen, &e);
		if (rc == CRETO_OK)
			rc = creto_model_manifest_parse(stmt, stlen, &mf, &e);
		if (rc != CRETO_OK) {
			(void)creto_err_ctx(&e, "%s", m.sig);
			goto fail;
		}
	} else {
		rc = creto_model_manifest_load(m.manifest, &mf, &e);
		if (rc != CRETO_OK)
			goto fail;
	}
	if (m.expect != NULL) {
		creto_hash_alg alg;
		uint8_t root[32];
		rc = creto_model_parse_digest_str(m.expect, &alg, root, &e);
		if (rc != CRETO_OK)
			goto fail;
		if (alg != creto_model_manifest_hash(mf) ||
		    CRYPTO_memcmp(root, creto_model_manifest_root(mf), 32) != 0) {
			char dg[CRETO_MODEL_DIGEST_STR_MAX];
			creto_model_manifest_digest_str(mf, dg);
			rc = creto_err_set(&e, CRETO_EREJECT, "%s: digest %s, expected %s",
					   m.sig ? m.sig : m.manifest, dg, m.expect);
			goto fail;
		}
		/* The root digest binds the resources, not ignore_paths: an
		 * unsigned manifest may not widen what is skipped on its own. */
		if (m.sig == NULL && !creto_model_manifest_root_binds_layout(mf) &&
		    (creto_model_manifest_method(mf) != CRETO_MODEL_FILES ||
		     creto_model_manifest_allow_symlinks(mf))) {
			/* Nor choose how the directory is read: with sha256
			 * shards, empty files add no digest; with symlinks,
			 * links stand in for files.  Only a signature, or a
			 * sha3-256 root (which binds them), confirms those. */
			rc = creto_err_set(&e, CRETO_EREJECT,
					   "%s: method %s%s not confirmed: a manifest checked only by "
					   "--expect must use method files without symlinks (sign it to "
					   "use others)",
					   m.manifest,
					   creto_model_manifest_method(mf) == CRETO_MODEL_FILES ? "files"
												 : "shards",
					   creto_model_manifest_allow_symlinks(mf) ? " with symlinks" : "");
			goto fail;
		}
		if (m.sig == NULL) {
			for (size_t i = 0; i < creto_model_manifest_nignore(mf); i++) {
				const char *p = creto_model_manifest_ignore(mf, i);
				if (!creto_model_is_default_ignore(p) &&
				    !in_list(p, m.ign, m.o.nignore)) {
					rc = creto_err_set(&e, CRETO_EREJECT,
							   "%s: ignore_paths entry '%.200s' not confirmed (add --ignore %.200s)",
							   m.manifest, p, p);
					goto fail;
				}
			}
		}
	}
	cli_progress *prog = NULL;
	if (cli_progress_wanted()) {
		uint64_t total = creto_model_manifest_bytes(mf);
		prog = cli_progress_start("model verify", total != 0 ? total : cli_dir_bytes(m.dir));
	}
	rc = creto_model_verify(m.dir, mf, &m.o, d, &e);
	cli_progress_stop(prog);
	if (rc != CRETO_OK) {
		(void)creto_err_ctx(&e, "%s", m.dir);
		rc = verify_fail(&e, m.json, mf, d);
		goto out;
	}
	if (m.json) {
		json_t *o = summary_json(mf);
		if (o != NULL) {
			json_object_set_new(o, "status", json_string("verified"));
			json_object_set_new(o, "files", json_integer((json_int_t)creto_model_manifest_files(mf)));
			json_object_set_new(o, "signed", json_boolean(m.sig != NULL));
			if (pk != NULL)
				json_object_set_new(o, "keyid", json_string(creto_pubkey_id(pk)));
		}
		rc = cli_json_out(o);
	} else {
		char dg[CRETO_MODEL_DIGEST_STR_MAX];
		creto_model_manifest_digest_str(mf, dg);
		char by[64] = "";
		if (pk != NULL)
			snprintf(by, sizeof(by), " by key %s", creto_pubkey_id(pk));
		printf("%s: verified %zu files against %s %s%s (%s)\n", m.dir,
		       creto_model_manifest_files(mf), m.sig ? "signature" : "manifest",
		       m.sig ? m.sig : m.manifest, by, dg);
		rc = CRETO_OK;
	}
	goto out;
fail:
	rc = cli_fail(&e, m.json);
out:
	free(d);
	free(own);
	free(buf);
	free(stmt);
	creto_pubkey_free(pk);
	creto_model_manifest_free(mf);
	return rc;
}

static int cmd_model_sign(int argc, char **argv)
{
	struct mopts m;
	int rc = parse(argc, argv, &model_cmds[3], 1, &m);
	if (rc != CRETO_OK)
		return rc;
	if (m.key == NULL || m.out == NULL)
		return cli_usage_error("model sign: --key K and -o model.sig are required");
	creto_err e;
	creto_err_clear(&e);
	char *own = NULL, *txt = NULL, *sig = NULL;
	size_t len = 0, siglen = 0;
	uint8_t *raw = NULL;
	creto_signer *s = NULL;
	creto_model_manifest *mf = NULL;
	struct stat st;
	if (stat(m.dir, &st) != 0) {
		rc = creto_err_errno(&e, errno, "%s", m.dir);
		goto fail;
	}
	if (S_ISDIR(st.st_mode)) {
		ignore_own(&m, m.out, &own);
		rc = build(m.dir, &m.o, "model sign", &mf, &e);
		if (rc == CRETO_OK)
			rc = creto_model_manifest_json(mf, &txt, &len, &e);
	} else {
		/* A manifest file: sign its exact bytes once they parse cleanly. */
		if (m.o.hash || m.o.method || m.o.shard_size || m.o.allow_symlinks || m.o.nignore)
			return cli_usage_error("model sign: hash options apply to a DIR, not a manifest");
		rc = creto_file_read(m.dir, CRETO_MODEL_MANIFEST_MAX, &raw, &len, &e);
		if (rc == CRETO_OK)
			rc = creto_model_manifest_parse(raw, len, &mf, &e);
		if (rc != CRETO_OK)
			(void)creto_err_ctx(&e, "%s", m.dir);
		txt = (char *)raw;
		raw = NULL;
	}
	if (rc != CRETO_OK)
		goto fail;
	creto_keys_opts ko = {.module_path = m.module, .pin_file = m.pin};
	rc = creto_keys_open_signer(m.key, &ko, &s, &e);
	if (rc == CRETO_OK)
		rc = creto_model_sign_statement((const uint8_t *)txt, len, s, &sig, &siglen, &e);
	if (rc == CRETO_OK)
		rc = creto_file_write_atomic(m.out, sig, siglen, 0644, &e);
	if (rc != CRETO_OK)
		goto fail;
	char dg[CRETO_MODEL_DIGEST_STR_MAX];
	creto_model_manifest_digest_str(mf, dg);
	const creto_pubkey *pk = creto_signer_pubkey(s);
	if (m.json) {
		json_t *o = summary_json(mf);
		if (o != NULL) {
			json_object_set_new(o, "signature", json_string(m.out));
			json_object_set_new(o, "keyid", json_string(creto_pubkey_id(pk)));
			json_object_set_new(o, "alg", json_string(creto_alg_name(creto_pubkey_alg(pk))));
		}
		rc = cli_json_out(o);
	} else {
		cli_status("wrote %s: %s signature by key %s over %s", m.out,
			   creto_alg_name(creto_pubkey_alg(pk)), creto_pubkey_id(pk), dg);
		rc = CRETO_OK;
	}
	goto out;
fail:
	rc = cli_fail(&e, m.json);
out:
	free(own);
	free(txt);
	free(raw);
	free(sig);
	creto_signer_free(s);
	creto_model_manifest_free(mf);
	return rc;
}
