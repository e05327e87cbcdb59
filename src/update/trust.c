/*
 * trust.c - the trust root (docs/trust-root.md): keys with recomputed key
 * ids, one role per update type with its key ids, threshold and maximum
 * version jump, a version and an expiry, signed over the canonical bytes of
 * its "signed" part with context "creto-trust-root-v1".  Also the one
 * threshold check every signed document goes through: each key counts once,
 * only keys of the role count, thresholds come only from the root.
 */
#include "update_int.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/enc.h"
#include "util/file.h"
#include "util/timeutil.h"

#define ROOT_KEYS_MAX 64
#define ROOT_ROLES_MAX 8

static const char *const ROLE_NAMES[] = {"root", "model-weights", "software-package", "policy",
					 "cert-rotation", NULL};

typedef struct root_role {
	char name[32];
	int idx[ROOT_KEYS_MAX]; /* indexes into keys */
	size_t n;
	int threshold;
	int max_jump;
} root_role;

struct creto_trust_root {
	int64_t version, expires;
	creto_pubkey *keys[ROOT_KEYS_MAX];
	size_t nkeys;
	root_role roles[ROOT_ROLES_MAX];
	size_t nroles;
	char *signed_bytes; /* canonical bytes of "signed" */
	size_t signed_len;
	upd_sig *sigs;
	size_t nsigs;
	json_t *doc;
};

void creto_trust_root_free(creto_trust_root *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->nkeys; i++)
		creto_pubkey_free(r->keys[i]);
	free(r->signed_bytes);
	upd_sigs_free(r->sigs, r->nsigs);
	json_decref(r->doc);
	free(r);
}

int64_t creto_trust_root_version(const creto_trust_root *r) { return r->version; }
int64_t creto_trust_root_expires(const creto_trust_root *r) { return r->expires; }

static const root_role *find_role(const creto_trust_root *r, const char *name)
{
	for (size_t i = 0; i < r->nroles; i++)
		if (strcmp(r->roles[i].name, name) == 0)
			return &r->roles[i];
	return NULL;
}

int upd_root_has_role(const creto_trust_root *r, const char *role)
{
	return find_role(r, role) != NULL;
}

int upd_root_role_jump(const creto_trust_root *r, const char *role)
{
	const root_role *ro = find_role(r, role);
	return ro == NULL ? -1 : ro->max_jump;
}

static int find_key(const creto_trust_root *r, const char *keyid)
{
	for (size_t i = 0; i < r->nkeys; i++)
		if (strcmp(creto_pubkey_id(r->keys[i]), keyid) == 0)
			return (int)i;
	return -1;
}

static int role_known(const char *n)
{
	for (size_t i = 0; ROLE_NAMES[i] != NULL; i++)
		if (strcmp(ROLE_NAMES[i], n) == 0)
			return 1;
	return 0;
}

/* The key material of a key: the key itself, or for a hybrid its classical
 * and its ML-DSA half (raw layout classical || ML-DSA, docs/signatures.md). */
typedef struct key_part {
	creto_alg alg;
	const uint8_t *raw;
	size_t len;
} key_part;

static size_t key_parts(const creto_pubkey *pk, key_part out[2])
{
	size_t len;
	const uint8_t *raw = creto_pubkey_raw(pk, &len);
	creto_alg a = creto_pubkey_alg(pk);
	if (!creto_alg_is_hybrid(a)) {
		out[0] = (key_part){a, raw, len};
		return 1;
	}
	creto_alg ca = creto_alg_hybrid_classical(a), qa = creto_alg_hybrid_pq(a);
	size_t cl = creto_alg_pub_len(ca);
	out[0] = (key_part){ca, raw, cl};
	out[1] = (key_part){qa, raw + cl, len - cl};
	return 2;
}

/* Whether a and b share key material: equal keys, a key equal to a half of
 * a hybrid, or two hybrids with a common half.  Such a pair would let one
 * holder count twice towards a threshold. */
static int same_material(const creto_pubkey *a, const creto_pubkey *b)
{
	key_part pa[2], pb[2];
	size_t na = key_parts(a, pa), nb = key_parts(b, pb);
	for (size_t i = 0; i < na; i++)
		for (size_t j = 0; j < nb; j++)
			if (pa[i].alg == pb[j].alg && pa[i].len == pb[j].len &&
			    memcmp(pa[i].raw, pb[j].raw, pa[i].len) == 0)
				return 1;
	return 0;
}

#define SAME_MATERIAL_WHY                                                                         \
	"a key, or either half of a hybrid key, may appear only once in a trust root"

/* Keep at most three notes on why signatures did not count. */
static void note_add(char *notes, size_t cap, int *nnotes, const char *note)
{
	size_t l = strlen(notes);
	if (*nnotes >= 3 || l + 4 >= cap)
		return;
	snprintf(notes + l, cap - l, "%s%s", l ? "; " : "", note);
	(*nnotes)++;
}

int upd_check_threshold(const creto_trust_root *r, const char *role, const char *ctx,
			const uint8_t *msg, size_t msglen, const upd_sig *sigs, size_t nsigs,
			char *keyids_out, size_t cap, int *nvalid, creto_err *e)
{
	const root_role *ro = find_role(r, role);
	if (nvalid != NULL)
		*nvalid = 0;
	if (keyids_out != NULL && cap)
		keyids_out[0] = 0;
	if (ro == NULL)
		return creto_err_set(e, CRETO_EREJECT, "wrong role: the trust root has no role %s", role);
	int counted[ROOT_KEYS_MAX] = {0};
	int valid = 0;
	char notes[300] = "", note[200];
	int nnotes = 0;
	for (size_t i = 0; i < nsigs; i++) {
		const char *kid = sigs[i].keyid;
		int k = find_key(r, kid);
		if (k < 0) {
			snprintf(note, sizeof note, "key %s unknown to the trust root", kid);
			note_add(notes, sizeof notes, &nnotes, note);
			continue;
		}
		int in_role = 0;
		for (size_t j = 0; j < ro->n; j++)
			if (ro->idx[j] == k)
				in_role = 1;
		if (!in_role) {
			snprintf(note, sizeof note, "key %s not in role %s", kid, role);
			note_add(notes, sizeof notes, &nnotes, note);
			continue;
		}
		if (counted[k]) {
			snprintf(note, sizeof note, "key %s signed twice, counted once", kid);
			note_add(notes, sizeof notes, &nnotes, note);
			continue;
		}
		creto_err ve;
		creto_err_clear(&ve);
		if (creto_pubkey_verify(r->keys[k], (const uint8_t *)ctx, strlen(ctx), msg, msglen,
					sigs[i].sig, sigs[i].siglen, &ve) != CRETO_OK) {
			snprintf(note, sizeof note, "key %s: %.120s", kid, ve.msg);
			note_add(notes, sizeof notes, &nnotes, note);
			continue;
		}
		counted[k] = 1;
		valid++;
		if (keyids_out != NULL) {
			size_t l = strlen(keyids_out);
			if (l + CRETO_KEYID_HEXLEN + 2 < cap)
				snprintf(keyids_out + l, cap - l, "%s%s", l ? "," : "", kid);
		}
	}
	if (nvalid != NULL)
		*nvalid = valid;
	if (valid < ro->threshold)
		return creto_err_set(e, CRETO_EREJECT,
				     "signature threshold: %d valid distinct signature%s of role %s, %d required%s%s%s",
				     valid, valid == 1 ? "" : "s", role, ro->threshold, notes[0] ? " (" : "",
				     notes, notes[0] ? ")" : "");
	return CRETO_OK;
}

/* Parse everything but the self-signature check. */
static int parse_root(const uint8_t *buf, size_t len, creto_trust_root **out, creto_err *e)
{
	*out = NULL;
	if (len > CRETO_TRUST_ROOT_MAX)
		return creto_err_set(e, CRETO_EREJECT, "trust root: larger than %u bytes",
				     CRETO_TRUST_ROOT_MAX);
	creto_trust_root *r = calloc(1, sizeof *r);
	if (r == NULL)
		return creto_err_set(e, CRETO_EOP, "out of memory");
	int rc = upd_json_parse(buf, len, "trust root", &r->doc, e);
	if (rc != CRETO_OK)
		goto out;
	static const char *const top[] = {"signed", "signatures", NULL};
	if ((rc = upd_json_keys(r->doc, "trust root", top, e)) != CRETO_OK)
		goto out;
	json_t *s = json_object_get(r->doc, "signed");
	static const char *const sk[] = {"type", "format", "version", "expires", "keys", "roles", NULL};
	const char *type;
	int64_t fmt;
	if ((rc = upd_json_keys(s, "trust root signed", sk, e)) != CRETO_OK ||
	    (rc = upd_canon_check(s, "trust root signed", e)) != CRETO_OK ||
	    (rc = upd_json_str(s, "type", "trust root", &type, e)) != CRETO_OK ||
	    (rc = upd_json_int(s, "format", "trust root", 1, 1, &fmt, e)) != CRETO_OK ||
	    (rc = upd_json_int(s, "version", "trust root", 1, (int64_t)1 << 53, &r->version, e)) != CRETO_OK ||
	    (rc = upd_json_time(s, "expires", "trust root", &r->expires, e)) != CRETO_OK)
		goto out;
	if (strcmp(type, "creto-trust-root") != 0) {
		rc = creto_err_set(e, CRETO_EREJECT, "trust root: type is not creto-trust-root");
		goto out;
	}
	json_t *keys = json_object_get(s, "keys");
	if (!json_is_object(keys) || json_object_size(keys) == 0 || json_object_size(keys) > ROOT_KEYS_MAX) {
		rc = creto_err_set(e, CRETO_EREJECT, "trust root: keys must be an object of 1..%d keys",
				   ROOT_KEYS_MAX);
		goto out;
	}
	const char *kid;
	json_t *kv;
	json_object_foreach(keys, kid, kv) {
		char w[80];
		snprintf(w, sizeof w, "trust root: key %.20s", kid);
		static const char *const kk[] = {"alg", "public", NULL};
		const char *alg, *pub;
		if ((rc = upd_json_keys(kv, w, kk, e)) != CRETO_OK ||
		    (rc = upd_json_str(kv, "alg", w, &alg, e)) != CRETO_OK ||
		    (rc = upd_json_str(kv, "public", w, &pub, e)) != CRETO_OK)
			goto out;
		creto_alg a = creto_alg_from_name(alg);
		if (a == CRETO_ALG_NONE) {
			rc = creto_err_set(e, CRETO_EREJECT, "%s: unknown algorithm %.32s", w, alg);
			goto out;
		}
		uint8_t raw[CRETO_PUB_MAX];
		size_t rawlen;
		if (strlen(pub) > creto_b64_enclen(CRETO_PUB_MAX, 0) ||
		    creto_b64_decode(raw, sizeof raw, &rawlen, pub, strlen(pub), 0) != 0) {
			rc = creto_err_set(e, CRETO_EREJECT, "%s: public is not base64 of a key", w);
			goto out;
		}
		creto_pubkey *pk = NULL;
		if ((rc = creto_pubkey_new(a, raw, rawlen, &pk, e)) != CRETO_OK) {
			creto_err_ctx(e, "%s", w);
			goto out;
		}
		r->keys[r->nkeys++] = pk;
		if (strcmp(creto_pubkey_id(pk), kid) != 0) {
			rc = creto_err_set(e, CRETO_EREJECT, "%s: key id does not match the key (computed %s)",
					   w, creto_pubkey_id(pk));
			goto out;
		}
		for (size_t i = 0; i + 1 < r->nkeys; i++)
			if (same_material(r->keys[i], pk)) {
				rc = creto_err_set(e, CRETO_EREJECT, "%s: same key material as key %s (%s)", w,
						   creto_pubkey_id(r->keys[i]), SAME_MATERIAL_WHY);
				goto out;
			}
	}
	json_t *roles = json_object_get(s, "roles");
	if (!json_is_object(roles) || json_object_get(roles, "root") == NULL) {
		rc = creto_err_set(e, CRETO_EREJECT, "trust root: roles must be an object with a root role");
		goto out;
	}
	const char *rn;
	json_t *rv;
	json_object_foreach(roles, rn, rv) {
		char w[80];
		snprintf(w, sizeof w, "trust root: role %.32s", rn);
		if (!role_known(rn)) {
			rc = creto_err_set(e, CRETO_EREJECT, "%s: unknown role", w);
			goto out;
		}
		static const char *const rk[] = {"keyids", "threshold", "?max_jump", NULL};
		root_role *ro = &r->roles[r->nroles++];
		snprintf(ro->name, sizeof ro->name, "%s", rn);
		int64_t th, mj = 1;
		if ((rc = upd_json_keys(rv, w, rk, e)) != CRETO_OK ||
		    (rc = upd_json_int(rv, "threshold", w, 1, ROOT_KEYS_MAX, &th, e)) != CRETO_OK)
			goto out;
		if (json_object_get(rv, "max_jump") != NULL &&
		    (rc = upd_json_int(rv, "max_jump", w, 1, 1000000, &mj, e)) != CRETO_OK)
			goto out;
		if ((strcmp(rn, "root") == 0 || strcmp(rn, "cert-rotation") == 0) && mj != 1) {
			rc = creto_err_set(e, CRETO_EREJECT, "%s: max_jump must be 1", w);
			goto out;
		}
		json_t *ids = json_object_get(rv, "keyids");
		if (!json_is_array(ids) || json_array_size(ids) == 0 || json_array_size(ids) > ROOT_KEYS_MAX) {
			rc = creto_err_set(e, CRETO_EREJECT, "%s: keyids must be a non-empty array", w);
			goto out;
		}
		size_t i;
		json_t *id;
		json_array_foreach(ids, i, id) {
			int k = json_is_string(id) ? find_key(r, json_string_value(id)) : -1;
			if (k < 0) {
				rc = creto_err_set(e, CRETO_EREJECT, "%s: key id %.20s is not in keys", w,
						   json_is_string(id) ? json_string_value(id) : "?");
				goto out;
			}
			for (size_t j = 0; j < ro->n; j++)
				if (ro->idx[j] == k) {
					rc = creto_err_set(e, CRETO_EREJECT, "%s: key id %s listed twice", w,
							   json_string_value(id));
					goto out;
				}
			ro->idx[ro->n++] = k;
		}
		if ((size_t)th > ro->n) {
			rc = creto_err_set(e, CRETO_EREJECT, "%s: threshold %lld exceeds its %zu keys", w,
					   (long long)th, ro->n);
			goto out;
		}
		ro->threshold = (int)th;
		ro->max_jump = (int)mj;
	}
	if ((rc = upd_canon_dump(s, &r->signed_bytes, &r->signed_len, e)) != CRETO_OK ||
	    (rc = upd_sigs_parse(json_object_get(r->doc, "signatures"), "trust root", &r->sigs,
				 &r->nsigs, e)) != CRETO_OK)
		goto out;
out:
	if (rc != CRETO_OK) {
		creto_trust_root_free(r);
		return rc;
	}
	*out = r;
	return CRETO_OK;
}

int creto_trust_root_signed_by(const creto_trust_root *signer, const creto_trust_root *doc,
			       creto_err *e)
{
	return upd_check_threshold(signer, "root", CRETO_TRUST_ROOT_CTX,
				   (const uint8_t *)doc->signed_bytes, doc->signed_len, doc->sigs,
				   doc->nsigs, NULL, 0, NULL, e);
}

int creto_trust_root_parse_unsigned(const uint8_t *buf, size_t len, creto_trust_root **out,
				    int *nvalid, creto_err *e)
{
	int rc = parse_root(buf, len, out, e);
	if (rc != CRETO_OK)
		return rc;
	creto_err te;
	creto_err_clear(&te);
	rc = upd_check_threshold(*out, "root", CRETO_TRUST_ROOT_CTX, (const uint8_t *)(*out)->signed_bytes,
				 (*out)->signed_len, (*out)->sigs, (*out)->nsigs, NULL, 0, nvalid, &te);
	(void)rc;
	return CRETO_OK;
}

int creto_trust_root_parse(const uint8_t *buf, size_t len, creto_trust_root **out, creto_err *e)
{
	int rc = parse_root(buf, len, out, e);
	if (rc != CRETO_OK)
		return rc;
	rc = creto_trust_root_signed_by(*out, *out, e);
	if (rc != CRETO_OK) {
		creto_err_ctx(e, "trust root version %lld", (long long)(*out)->version);
		creto_trust_root_free(*out);
		*out = NULL;
	}
	return rc;
}

int creto_trust_root_load(const char *path, creto_trust_root **out, creto_err *e)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	*out = NULL;
	int rc = creto_file_read(path, CRETO_TRUST_ROOT_MAX, &buf, &len, e);
	if (rc == CRETO_OK)
		rc = creto_trust_root_parse(buf, len, out, e);
	free(buf);
	if (rc != CRETO_OK)
		creto_err_ctx(e, "%s", path);
	return rc;
}

int creto_trust_root_describe(const creto_trust_root *r, char **json, creto_err *e)
{
	json_t *o = json_deep_copy(json_object_get(r->doc, "signed"));
	if (o == NULL)
		return creto_err_set(e, CRETO_EOP, "out of memory");
	json_t *sigs = json_array();
	for (size_t i = 0; i < r->nsigs; i++)
		json_array_append_new(sigs, json_string(r->sigs[i].keyid));
	json_object_set_new(o, "signed_by", sigs);
	int nvalid = 0;
	creto_err te;
	creto_err_clear(&te);
	int ok = upd_check_threshold(r, "root", CRETO_TRUST_ROOT_CTX, (const uint8_t *)r->signed_bytes,
				     r->signed_len, r->sigs, r->nsigs, NULL, 0, &nvalid, &te) == CRETO_OK;
	json_object_set_new(o, "valid_root_signatures", json_integer(nvalid));
	json_object_set_new(o, "self_signed", json_boolean(ok));
	*json = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(o);
	return *json ? CRETO_OK : creto_err_set(e, CRETO_EOP, "out of memory");
}

int creto_trust_root_create(creto_pubkey *const *keys, size_t nkeys,
			    const creto_trust_role_spec *roles, size_t nroles, int default_threshold,
			    int default_jump, int64_t version, int64_t expires, char **out, creto_err *e)
{
	*out = NULL;
	if (nkeys == 0 || nkeys > ROOT_KEYS_MAX)
		return creto_err_set(e, CRETO_EUSAGE, "trust init: give 1..%d keys", ROOT_KEYS_MAX);
	if (default_threshold < 1 || (size_t)default_threshold > nkeys)
		return creto_err_set(e, CRETO_EUSAGE, "trust init: threshold %d out of 1..%zu",
				     default_threshold, nkeys);
	for (size_t i = 0; i < nkeys; i++)
		for (size_t j = 0; j < i; j++)
			if (same_material(keys[j], keys[i]))
				return creto_err_set(e, CRETO_EUSAGE, "trust init: key %s: same key material as key %s (%s)",
						     creto_pubkey_id(keys[i]), creto_pubkey_id(keys[j]),
						     SAME_MATERIAL_WHY);
	json_t *s = json_object(), *jk = json_object(), *jr = json_object();
	char tb[CRETO_TIME_STRLEN];
	creto_time_format(expires, tb);
	json_object_set_new(s, "type", json_string("creto-trust-root"));
	json_object_set_new(s, "format", json_integer(1));
	json_object_set_new(s, "version", json_integer(version));
	json_object_set_new(s, "expires", json_string(tb));
	json_object_set_new(s, "keys", jk);
	json_object_set_new(s, "roles", jr);
	for (size_t i = 0; i < nkeys; i++) {
		size_t rl;
		const uint8_t *raw = creto_pubkey_raw(keys[i], &rl);
		char *b = malloc(creto_b64_enclen(rl, 0) + 1);
		if (b == NULL)
			break;
		creto_b64_encode(b, raw, rl, 0);
		json_t *k = json_object();
		json_object_set_new(k, "alg", json_string(creto_alg_name(creto_pubkey_alg(keys[i]))));
		json_object_set_new(k, "public", json_string(b));
		free(b);
		json_object_set_new(jk, creto_pubkey_id(keys[i]), k);
	}
	int rc = CRETO_OK;
	for (size_t ri = 0; ROLE_NAMES[ri] != NULL; ri++) {
		const char *rn = ROLE_NAMES[ri];
		const creto_trust_role_spec *sp = NULL;
		for (size_t j = 0; j < nroles; j++)
			if (strcmp(roles[j].name, rn) == 0)
				sp = &roles[j];
		json_t *ro = json_object(), *ids = json_array();
		int th = default_threshold;
		int mj = (strcmp(rn, "root") == 0 || strcmp(rn, "cert-rotation") == 0) ? 1 : default_jump;
		if (sp != NULL) {
			for (size_t j = 0; j < sp->nkeyids; j++)
				json_array_append_new(ids, json_string(sp->keyids[j]));
			th = sp->threshold;
			if (sp->max_jump > 0)
				mj = sp->max_jump;
		} else {
			for (size_t j = 0; j < nkeys; j++)
				json_array_append_new(ids, json_string(creto_pubkey_id(keys[j])));
		}
		json_object_set_new(ro, "keyids", ids);
		json_object_set_new(ro, "threshold", json_integer(th));
		json_object_set_new(ro, "max_jump", json_integer(mj < 1 ? 1 : mj));
		json_object_set_new(jr, rn, ro);
	}
	for (size_t j = 0; j < nroles; j++)
		if (!role_known(roles[j].name))
			rc = creto_err_set(e, CRETO_EUSAGE, "trust init: unknown role %s", roles[j].name);
	json_t *doc = json_object();
	json_object_set_new(doc, "signed", s);
	json_object_set_new(doc, "signatures", json_array());
	char *text = NULL;
	size_t tl = 0;
	if (rc == CRETO_OK)
		rc = upd_canon_dump(doc, &text, &tl, e);
	json_decref(doc);
	if (rc != CRETO_OK)
		return rc;
	/* Validate what we built through the parser every verifier uses. */
	creto_trust_root *chk = NULL;
	rc = parse_root((const uint8_t *)text, tl, &chk, e);
	creto_trust_root_free(chk);
	if (rc != CRETO_OK) {
		free(text);
		return creto_err_ctx(e, "trust init");
	}
	*out = text;
	return CRETO_OK;
}

int creto_trust_root_sign(const uint8_t *doc, size_t len, creto_signer *signer, int allow_foreign,
			  char **out, creto_err *e)
{
	*out = NULL;
	creto_trust_root *r = NULL;
	int rc = parse_root(doc, len, &r, e);
	if (rc != CRETO_OK)
		return rc;
	const char *kid = creto_pubkey_id(creto_signer_pubkey(signer));
	int k = find_key(r, kid);
	const root_role *ro = find_role(r, "root");
	int in_role = 0;
	for (size_t j = 0; k >= 0 && j < ro->n; j++)
		in_role |= ro->idx[j] == k;
	if (!in_role && !allow_foreign) {
		rc = creto_err_set(e, CRETO_EREJECT,
				   "trust sign: key %s is not in the root role of this trust root", kid);
		goto out;
	}
	for (size_t i = 0; i < r->nsigs; i++)
		if (strcmp(r->sigs[i].keyid, kid) == 0) {
			rc = creto_err_set(e, CRETO_EREJECT, "trust sign: key %s already signed", kid);
			goto out;
		}
	uint8_t *sig = NULL;
	size_t siglen = 0;
	rc = creto_signer_sign(signer, (const uint8_t *)CRETO_TRUST_ROOT_CTX, strlen(CRETO_TRUST_ROOT_CTX),
			       (const uint8_t *)r->signed_bytes, r->signed_len, &sig, &siglen, e);
	if (rc != CRETO_OK)
		goto out;
	char *b = malloc(creto_b64_enclen(siglen, 0) + 1);
	if (b == NULL) {
		free(sig);
		rc = creto_err_set(e, CRETO_EOP, "out of memory");
		goto out;
	}
	creto_b64_encode(b, sig, siglen, 0);
	free(sig);
	json_t *ent = json_object();
	json_object_set_new(ent, "keyid", json_string(kid));
	json_object_set_new(ent, "sig", json_string(b));
	free(b);
	json_array_append_new(json_object_get(r->doc, "signatures"), ent);
	rc = upd_canon_dump(r->doc, out, NULL, e);
out:
	creto_trust_root_free(r);
	return rc;
}

int creto_trust_root_sign_file(const char *path, const char *out_path, creto_signer *signer,
			       int allow_foreign, creto_err *e)
{
	int lockfd = -1;
	uint8_t *doc = NULL;
	size_t len = 0;
	char *text = NULL;
	/* Officers signing at once: each reads the document only once the one
	 * before has replaced it, so no signature is lost. */
	int rc = upd_doc_lock(path, &lockfd, e);
	if (rc == CRETO_OK)
		rc = creto_file_read(path, CRETO_TRUST_ROOT_MAX, &doc, &len, e);
	if (rc == CRETO_OK)
		rc = creto_trust_root_sign(doc, len, signer, allow_foreign, &text, e);
	if (rc == CRETO_OK)
		rc = creto_file_write_atomic(out_path != NULL ? out_path : path, text, strlen(text), 0644, e);
	if (lockfd >= 0)
		close(lockfd);
	free(doc);
	free(text);
	return rc;
}

int creto_trust_root_expiry_note(int64_t version, int64_t expires, int64_t now, char *buf,
				 size_t cap)
{
	char t[CRETO_TIME_STRLEN];
	creto_time_format(expires, t);
	if (cap > 0)
		buf[0] = 0;
	if (expires <= now) {
		snprintf(buf, cap, "warning: trust root version %lld EXPIRED at %s: every package is "
			 "refused until a rotation (signed before expiry) or a re-provisioned root",
			 (long long)version, t);
		return 1;
	}
	if (expires - now <= (int64_t)CRETO_TRUST_WARN_DAYS * 86400) {
		snprintf(buf, cap, "warning: trust root version %lld expires at %s, in %lld days: "
			 "rotate it before then", (long long)version, t,
			 (long long)((expires - now) / 86400));
		return 1;
	}
	return 0;
}
