/*
 * keyops.c - keys on a token: generate, find, list, export the public key,
 * sign, destroy.
 *
 * Signing gives the primitive signature creto/sig.h expects: Ed25519 is
 * CKM_EDDSA over the message; ECDSA hashes on the host (SoftHSM2 2.6 has no
 * CKM_ECDSA_SHA256, and every module has CKM_ECDSA) and returns the module's
 * fixed-width r||s unchanged.
 */
#include "p11.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

static const uint8_t OID_P256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
static const uint8_t OID_P384[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};
static const uint8_t OID_ED25519[] = {0x06, 0x03, 0x2b, 0x65, 0x70};
static const uint8_t STR_ED25519[] = {0x13, 0x0c, 'e', 'd', 'w', 'a', 'r', 'd', 's',
				      '2', '5', '5', '1', '9'};

static unsigned char g_true = 1, g_false = 0;

static const char *kt_names[] = {NULL, "ec-p256", "ec-p384", "ed25519", "aes-256"};

const char *creto_hsm_keytype_name(creto_hsm_keytype t)
{
	if ((unsigned)t >= sizeof(kt_names) / sizeof(kt_names[0]))
		return NULL;
	return kt_names[t];
}

creto_hsm_keytype creto_hsm_keytype_from_name(const char *name)
{
	for (size_t i = 1; i < sizeof(kt_names) / sizeof(kt_names[0]); i++)
		if (strcmp(kt_names[i], name) == 0)
			return (creto_hsm_keytype)i;
	return CRETO_HSM_KT_NONE;
}

static creto_hsm_keytype keytype_of(ck_key_type_t kt, const uint8_t *params, size_t plen)
{
	if (kt == CKK_AES)
		return CRETO_HSM_KT_AES256;
	if (kt == CKK_EC) {
		if (plen == sizeof(OID_P256) && memcmp(params, OID_P256, plen) == 0)
			return CRETO_HSM_KT_EC_P256;
		if (plen == sizeof(OID_P384) && memcmp(params, OID_P384, plen) == 0)
			return CRETO_HSM_KT_EC_P384;
		return CRETO_HSM_KT_NONE;
	}
	if (kt == CKK_EC_EDWARDS) {
		if ((plen == sizeof(OID_ED25519) && memcmp(params, OID_ED25519, plen) == 0) ||
		    (plen == sizeof(STR_ED25519) && memcmp(params, STR_ED25519, plen) == 0))
			return CRETO_HSM_KT_ED25519;
	}
	return CRETO_HSM_KT_NONE;
}

static ck_object_class_t class_of(creto_p11_type t)
{
	switch (t) {
	case CRETO_P11_TYPE_PUBLIC:
		return CKO_PUBLIC_KEY;
	case CRETO_P11_TYPE_PRIVATE:
		return CKO_PRIVATE_KEY;
	case CRETO_P11_TYPE_SECRET_KEY:
		return CKO_SECRET_KEY;
	case CRETO_P11_TYPE_CERT:
		return CKO_CERTIFICATE;
	case CRETO_P11_TYPE_DATA:
		return CKO_DATA;
	default:
		return (ck_object_class_t)-1;
	}
}

static creto_p11_type type_of(ck_object_class_t c)
{
	switch (c) {
	case CKO_PUBLIC_KEY:
		return CRETO_P11_TYPE_PUBLIC;
	case CKO_PRIVATE_KEY:
		return CRETO_P11_TYPE_PRIVATE;
	case CKO_SECRET_KEY:
		return CRETO_P11_TYPE_SECRET_KEY;
	case CKO_CERTIFICATE:
		return CRETO_P11_TYPE_CERT;
	case CKO_DATA:
		return CRETO_P11_TYPE_DATA;
	default:
		return CRETO_P11_TYPE_ANY;
	}
}

/* "key 'issuer'" / "key id=0a1b.." for messages. */
static void key_desc(char *out, size_t cap, const char *label, const uint8_t *id, size_t idlen)
{
	if (label != NULL) {
		snprintf(out, cap, "key '%s'", label);
		return;
	}
	size_t n = (size_t)snprintf(out, cap, "key id=");
	for (size_t i = 0; i < idlen && n + 3 < cap; i++)
		n += (size_t)snprintf(out + n, cap - n, "%02x", id[i]);
}

/* Find up to max objects matching label/id/class in session s. */
static int find_objs(creto_hsm *h, ck_session_handle_t s, const char *label, const uint8_t *id,
		     size_t idlen, int has_id, ck_object_class_t cls, ck_object_handle_t *objs,
		     unsigned long max, unsigned long *n, ck_rv_t *last, creto_err *e)
{
	struct ck_attribute t[3];
	unsigned long nt = 0;
	if (label != NULL)
		t[nt++] = (struct ck_attribute){CKA_LABEL, (void *)label, strlen(label)};
	if (has_id)
		t[nt++] = (struct ck_attribute){CKA_ID, (void *)id, idlen};
	if (cls != (ck_object_class_t)-1)
		t[nt++] = (struct ck_attribute){CKA_CLASS, &cls, sizeof(cls)};
	struct ck_function_list *f = h->mod->f;
	*n = 0;
	ck_rv_t rv = f->C_FindObjectsInit(s, nt ? t : NULL, nt);
	*last = rv;
	if (rv != CKR_OK)
		return p11_fail(e, rv, "C_FindObjectsInit", h);
	rv = f->C_FindObjects(s, objs, max, n);
	*last = rv;
	ck_rv_t rv2 = f->C_FindObjectsFinal(s);
	if (rv != CKR_OK)
		return p11_fail(e, rv, "C_FindObjects", h);
	if (rv2 != CKR_OK) {
		*last = rv2;
		return p11_fail(e, rv2, "C_FindObjectsFinal", h);
	}
	return CRETO_OK;
}

/* Read one attribute into a malloc'ed buffer; *len 0 and *buf NULL when
 * the object has no such attribute (or it is sensitive). */
static int get_attr(creto_hsm *h, ck_session_handle_t s, ck_object_handle_t o,
		    ck_attribute_type_t type, uint8_t **buf, size_t *len, ck_rv_t *last, creto_err *e)
{
	*buf = NULL;
	*len = 0;
	struct ck_attribute a = {type, NULL, 0};
	ck_rv_t rv = h->mod->f->C_GetAttributeValue(s, o, &a, 1);
	*last = rv;
	if (rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_SENSITIVE ||
	    a.value_len == (unsigned long)-1)
		return CRETO_OK;
	if (rv != CKR_OK)
		return p11_fail(e, rv, "C_GetAttributeValue", h);
	if (a.value_len > 1u << 20)
		return creto_err_set(e, CRETO_EOP, "token '%s': attribute of %lu bytes", h->label,
				     a.value_len);
	a.value = malloc(a.value_len ? a.value_len : 1);
	if (a.value == NULL)
		return creto_err_set(e, CRETO_EOP, "out of memory");
	rv = h->mod->f->C_GetAttributeValue(s, o, &a, 1);
	*last = rv;
	if (rv != CKR_OK) {
		free(a.value);
		return p11_fail(e, rv, "C_GetAttributeValue", h);
	}
	*buf = a.value;
	*len = a.value_len;
	return CRETO_OK;
}

static int get_ulong(creto_hsm *h, ck_session_handle_t s, ck_object_handle_t o,
		     ck_attribute_type_t type, unsigned long *v, int *present)
{
	struct ck_attribute a = {type, v, sizeof(*v)};
	ck_rv_t rv = h->mod->f->C_GetAttributeValue(s, o, &a, 1);
	*present = rv == CKR_OK && a.value_len == sizeof(*v);
	return rv == CKR_OK || rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_SENSITIVE;
}

static int get_bool(creto_hsm *h, ck_session_handle_t s, ck_object_handle_t o,
		    ck_attribute_type_t type)
{
	unsigned char b = 0;
	struct ck_attribute a = {type, &b, 1};
	if (h->mod->f->C_GetAttributeValue(s, o, &a, 1) != CKR_OK || a.value_len != 1)
		return 0;
	return b != 0;
}

/* Key type of a key object (from CKA_KEY_TYPE and CKA_EC_PARAMS). */
static int object_keytype(creto_hsm *h, ck_session_handle_t s, ck_object_handle_t o,
			  creto_hsm_keytype *kt, ck_rv_t *last, creto_err *e)
{
	unsigned long ktype = 0;
	int present = 0;
	*kt = CRETO_HSM_KT_NONE;
	if (!get_ulong(h, s, o, CKA_KEY_TYPE, &ktype, &present) || !present)
		return CRETO_OK;
	uint8_t *params = NULL;
	size_t plen = 0;
	if (ktype == CKK_EC || ktype == CKK_EC_EDWARDS) {
		int rc = get_attr(h, s, o, CKA_EC_PARAMS, &params, &plen, last, e);
		if (rc != CRETO_OK)
			return rc;
	}
	*kt = keytype_of(ktype, params, plen);
	if (*kt == CRETO_HSM_KT_AES256) {
		unsigned long vl = 0;
		if (get_ulong(h, s, o, CKA_VALUE_LEN, &vl, &present) && present && vl != 32)
			*kt = CRETO_HSM_KT_NONE;
	}
	free(params);
	return CRETO_OK;
}

/* CKA_EC_POINT: a DER OCTET STRING, or (some modules) the raw point. */
static int ec_point_raw(const uint8_t *p, size_t n, const uint8_t **raw, size_t *rawlen);

/* The creto algorithm and expected raw public key length of a key type. */
static creto_alg alg_of_kt(creto_hsm_keytype kt, size_t *want)
{
	switch (kt) {
	case CRETO_HSM_KT_ED25519:
		*want = 32;
		return CRETO_ALG_ED25519;
	case CRETO_HSM_KT_EC_P256:
		*want = 65;
		return CRETO_ALG_ECDSA_P256;
	case CRETO_HSM_KT_EC_P384:
		*want = 97;
		return CRETO_ALG_ECDSA_P384;
	default:
		*want = 0;
		return CRETO_ALG_NONE;
	}
}

/* The creto key id (creto_pubkey_id, the one `key id`, `hsm pub` and trust
 * roots use) of a key of type kt whose CKA_EC_POINT is pt; "" when it has
 * none or is not a signing key creto knows. */
static void creto_id_of(creto_hsm_keytype kt, const uint8_t *pt, size_t ptlen,
			char out[CRETO_KEYID_HEXLEN + 1])
{
	out[0] = '\0';
	size_t want;
	creto_alg alg = alg_of_kt(kt, &want);
	if (alg == CRETO_ALG_NONE || pt == NULL)
		return;
	const uint8_t *r;
	size_t rl;
	(void)ec_point_raw(pt, ptlen, &r, &rl);
	if (rl != want || (want != 32 && r[0] != 0x04))
		return;
	creto_pubkey *pk = NULL;
	creto_err ig;
	if (creto_pubkey_new(alg, r, rl, &pk, &ig) == CRETO_OK)
		memcpy(out, creto_pubkey_id(pk), CRETO_KEYID_HEXLEN + 1);
	creto_pubkey_free(pk);
}

/* ---- keygen ---- */

int creto_hsm_keygen(creto_hsm *h, creto_hsm_keytype t, const char *label, unsigned flags,
		     uint8_t idout[CRETO_HSM_KEYID_BYTES], creto_err *e)
{
	size_t ll = strlen(label);
	if (ll == 0 || ll > CRETO_HSM_LABEL_MAX)
		return creto_err_set(e, CRETO_EUSAGE, "key label must have 1 to %d bytes",
				     CRETO_HSM_LABEL_MAX);
	if (creto_hsm_keytype_name(t) == NULL || t == CRETO_HSM_KT_NONE)
		return creto_err_set(e, CRETO_EUSAGE, "unknown key type");
	uint8_t id[CRETO_HSM_KEYID_BYTES];
	if (RAND_bytes(id, sizeof(id)) != 1)
		return creto_err_openssl(e, "key id");
	ck_session_handle_t s;
	int rc = p11_session_get(h, &s, e);
	if (rc != CRETO_OK)
		return rc;
	ck_rv_t last = CKR_OK;
	ck_object_handle_t objs[1];
	unsigned long n = 0;
	rc = find_objs(h, s, label, NULL, 0, 0, (ck_object_class_t)-1, objs, 1, &n, &last, e);
	if (rc != CRETO_OK)
		goto out;
	if (n > 0) {
		rc = creto_err_set(e, CRETO_EUSAGE, "key '%s' already exists on token '%s'", label,
				   h->label);
		goto out;
	}
	unsigned char *sens = (flags & CRETO_HSM_EXTRACTABLE) ? &g_false : &g_true;
	unsigned char *extr = (flags & CRETO_HSM_EXTRACTABLE) ? &g_true : &g_false;
	struct ck_function_list *f = h->mod->f;
	ck_object_handle_t pub = 0, priv = 0;
	if (t == CRETO_HSM_KT_AES256) {
		ck_object_class_t cls = CKO_SECRET_KEY;
		ck_key_type_t kt = CKK_AES;
		unsigned long vlen = 32;
		struct ck_attribute tpl[] = {
			{CKA_CLASS, &cls, sizeof(cls)},       {CKA_KEY_TYPE, &kt, sizeof(kt)},
			{CKA_VALUE_LEN, &vlen, sizeof(vlen)}, {CKA_TOKEN, &g_true, 1},
			{CKA_PRIVATE, &g_true, 1},	      {CKA_SENSITIVE, sens, 1},
			{CKA_EXTRACTABLE, extr, 1},	      {CKA_WRAP, &g_true, 1},
			{CKA_UNWRAP, &g_true, 1},	      {CKA_ENCRYPT, &g_false, 1},
			{CKA_DECRYPT, &g_false, 1},	      {CKA_SIGN, &g_false, 1},
			{CKA_VERIFY, &g_false, 1},	      {CKA_DERIVE, &g_false, 1},
			{CKA_LABEL, (void *)label, ll},	      {CKA_ID, id, sizeof(id)},
		};
		struct ck_mechanism mech = {CKM_AES_KEY_GEN, NULL, 0};
		last = f->C_GenerateKey(s, &mech, tpl, sizeof(tpl) / sizeof(tpl[0]), &priv);
		if (last != CKR_OK) {
			rc = p11_fail(e, last, "C_GenerateKey", h);
			goto out;
		}
	} else {
		const uint8_t *params = t == CRETO_HSM_KT_EC_P256   ? OID_P256
					: t == CRETO_HSM_KT_EC_P384 ? OID_P384
								    : OID_ED25519;
		size_t plen = t == CRETO_HSM_KT_EC_P256	  ? sizeof(OID_P256)
			      : t == CRETO_HSM_KT_EC_P384 ? sizeof(OID_P384)
							  : sizeof(OID_ED25519);
		ck_key_type_t kt = t == CRETO_HSM_KT_ED25519 ? CKK_EC_EDWARDS : CKK_EC;
		ck_object_class_t pcls = CKO_PUBLIC_KEY, scls = CKO_PRIVATE_KEY;
		struct ck_attribute pt[] = {
			{CKA_CLASS, &pcls, sizeof(pcls)}, {CKA_KEY_TYPE, &kt, sizeof(kt)},
			{CKA_TOKEN, &g_true, 1},	  {CKA_PRIVATE, &g_false, 1},
			{CKA_VERIFY, &g_true, 1},	  {CKA_EC_PARAMS, (void *)params, plen},
			{CKA_ENCRYPT, &g_false, 1},	  {CKA_WRAP, &g_false, 1},
			{CKA_DERIVE, &g_false, 1},	  {CKA_LABEL, (void *)label, ll},
			{CKA_ID, id, sizeof(id)},
		};
		struct ck_attribute st[] = {
			{CKA_CLASS, &scls, sizeof(scls)}, {CKA_KEY_TYPE, &kt, sizeof(kt)},
			{CKA_TOKEN, &g_true, 1},	  {CKA_PRIVATE, &g_true, 1},
			{CKA_SENSITIVE, sens, 1},	  {CKA_EXTRACTABLE, extr, 1},
			{CKA_SIGN, &g_true, 1},		  {CKA_DECRYPT, &g_false, 1},
			{CKA_UNWRAP, &g_false, 1},	  {CKA_DERIVE, &g_false, 1},
			{CKA_LABEL, (void *)label, ll},	  {CKA_ID, id, sizeof(id)},
		};
		struct ck_mechanism mech = {
			t == CRETO_HSM_KT_ED25519 ? CKM_EC_EDWARDS_KEY_PAIR_GEN : CKM_EC_KEY_PAIR_GEN,
			NULL, 0};
		last = f->C_GenerateKeyPair(s, &mech, pt, sizeof(pt) / sizeof(pt[0]), st,
					    sizeof(st) / sizeof(st[0]), &pub, &priv);
		if (last != CKR_OK) {
			rc = p11_fail(e, last, "C_GenerateKeyPair", h);
			goto out;
		}
	}
	if (idout != NULL)
		memcpy(idout, id, sizeof(id));
out:
	p11_session_put(h, s, last);
	return rc;
}

/* ---- list ---- */

static int obj_cmp(const void *a, const void *b)
{
	const creto_hsm_obj *x = a, *y = b;
	int c = strcmp(x->label, y->label);
	if (c != 0)
		return c;
	return (int)x->type - (int)y->type;
}

int creto_hsm_list(creto_hsm *h, creto_hsm_obj **objsout, size_t *nout, creto_err *e)
{
	*objsout = NULL;
	*nout = 0;
	ck_session_handle_t s;
	int rc = p11_session_get(h, &s, e);
	if (rc != CRETO_OK)
		return rc;
	struct ck_function_list *f = h->mod->f;
	ck_object_handle_t *hs = NULL;
	size_t nh = 0, caph = 0;
	creto_hsm_obj *objs = NULL;
	ck_rv_t last = f->C_FindObjectsInit(s, NULL, 0);
	if (last != CKR_OK) {
		rc = p11_fail(e, last, "C_FindObjectsInit", h);
		goto out;
	}
	for (;;) {
		if (nh == caph) {
			caph = caph ? caph * 2 : 64;
			if (caph > 65536) {
				(void)f->C_FindObjectsFinal(s);
				rc = creto_err_set(e, CRETO_EOP, "token '%s': too many objects", h->label);
				goto out;
			}
			ck_object_handle_t *nhs = realloc(hs, caph * sizeof(*hs));
			if (nhs == NULL) {
				(void)f->C_FindObjectsFinal(s);
				rc = creto_err_set(e, CRETO_EOP, "out of memory");
				goto out;
			}
			hs = nhs;
		}
		unsigned long got = 0;
		last = f->C_FindObjects(s, hs + nh, caph - nh, &got);
		if (last != CKR_OK) {
			(void)f->C_FindObjectsFinal(s);
			rc = p11_fail(e, last, "C_FindObjects", h);
			goto out;
		}
		if (got == 0)
			break;
		nh += got;
	}
	last = f->C_FindObjectsFinal(s);
	if (last != CKR_OK) {
		rc = p11_fail(e, last, "C_FindObjectsFinal", h);
		goto out;
	}
	objs = calloc(nh ? nh : 1, sizeof(*objs));
	if (objs == NULL) {
		rc = creto_err_set(e, CRETO_EOP, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < nh; i++) {
		creto_hsm_obj *o = &objs[i];
		unsigned long cls = 0;
		int present = 0;
		(void)get_ulong(h, s, hs[i], CKA_CLASS, &cls, &present);
		o->type = present ? type_of(cls) : CRETO_P11_TYPE_ANY;
		uint8_t *b = NULL;
		size_t bl = 0;
		rc = get_attr(h, s, hs[i], CKA_LABEL, &b, &bl, &last, e);
		if (rc != CRETO_OK)
			goto out;
		if (bl > CRETO_HSM_LABEL_MAX)
			bl = CRETO_HSM_LABEL_MAX;
		if (b != NULL)
			memcpy(o->label, b, bl);
		o->label[bl] = '\0';
		free(b);
		rc = get_attr(h, s, hs[i], CKA_ID, &b, &bl, &last, e);
		if (rc != CRETO_OK)
			goto out;
		o->idlen = bl > CRETO_HSM_ID_MAX ? CRETO_HSM_ID_MAX : bl;
		if (b != NULL)
			memcpy(o->id, b, o->idlen);
		free(b);
		if (o->type == CRETO_P11_TYPE_PUBLIC || o->type == CRETO_P11_TYPE_PRIVATE ||
		    o->type == CRETO_P11_TYPE_SECRET_KEY) {
			rc = object_keytype(h, s, hs[i], &o->keytype, &last, e);
			if (rc != CRETO_OK)
				goto out;
		}
		if (o->type == CRETO_P11_TYPE_PRIVATE || o->type == CRETO_P11_TYPE_SECRET_KEY) {
			o->sensitive = get_bool(h, s, hs[i], CKA_SENSITIVE);
			o->extractable = get_bool(h, s, hs[i], CKA_EXTRACTABLE);
		}
		if ((o->type == CRETO_P11_TYPE_PUBLIC || o->type == CRETO_P11_TYPE_PRIVATE) &&
		    o->keytype != CRETO_HSM_KT_NONE) {
			rc = get_attr(h, s, hs[i], CKA_EC_POINT, &b, &bl, &last, e);
			if (rc != CRETO_OK)
				goto out;
			creto_id_of(o->keytype, b, bl, o->key_id);
			free(b);
		}
	}
	/* A private key without CKA_EC_POINT has the key id of its public
	 * half (same label and CKA_ID). */
	for (size_t i = 0; i < nh; i++) {
		creto_hsm_obj *o = &objs[i];
		if (o->type != CRETO_P11_TYPE_PRIVATE || o->key_id[0] != '\0')
			continue;
		for (size_t j = 0; j < nh; j++) {
			const creto_hsm_obj *q = &objs[j];
			if (q->type == CRETO_P11_TYPE_PUBLIC && q->key_id[0] != '\0' &&
			    q->keytype == o->keytype && strcmp(q->label, o->label) == 0 &&
			    q->idlen == o->idlen && memcmp(q->id, o->id, o->idlen) == 0) {
				memcpy(o->key_id, q->key_id, sizeof(o->key_id));
				break;
			}
		}
	}
	qsort(objs, nh, sizeof(*objs), obj_cmp);
	*objsout = objs;
	*nout = nh;
	objs = NULL;
	rc = CRETO_OK;
out:
	p11_session_put(h, s, last);
	free(hs);
	free(objs);
	return rc;
}

/* ---- find ---- */

struct creto_hsm_key {
	creto_hsm *h;
	ck_object_handle_t obj;
	unsigned gen;
	ck_object_class_t cls;
	creto_hsm_keytype kt;
	char *label;
	uint8_t id[CRETO_HSM_ID_MAX];
	size_t idlen;
	int has_id;
};

creto_hsm_keytype creto_hsm_key_type(const creto_hsm_key *k)
{
	return k->kt;
}

const char *creto_hsm_key_label(const creto_hsm_key *k)
{
	return k->label != NULL ? k->label : "";
}

const uint8_t *creto_hsm_key_id(const creto_hsm_key *k, size_t *len)
{
	*len = k->has_id ? k->idlen : 0;
	return k->id;
}

void creto_hsm_key_free(creto_hsm_key *k)
{
	if (k == NULL)
		return;
	free(k->label);
	free(k);
}

/* Find exactly one object in session s; message names the key. */
static int find_one(creto_hsm *h, ck_session_handle_t s, const char *label, const uint8_t *id,
		    size_t idlen, int has_id, ck_object_class_t cls, ck_object_handle_t *obj,
		    ck_rv_t *last, creto_err *e)
{
	ck_object_handle_t objs[2];
	unsigned long n = 0;
	int rc = find_objs(h, s, label, id, idlen, has_id, cls, objs, 2, &n, last, e);
	if (rc != CRETO_OK)
		return rc;
	char d[160];
	key_desc(d, sizeof(d), label, id, idlen);
	const char *what = cls == CKO_PRIVATE_KEY  ? " (private key)"
			   : cls == CKO_PUBLIC_KEY ? " (public key)"
			   : cls == CKO_SECRET_KEY ? " (secret key)"
						   : "";
	if (n == 0)
		return creto_err_set(e, CRETO_EUSAGE, "%s%s not found on token '%s'", d, what,
				     h->label);
	if (n > 1)
		return creto_err_set(e, CRETO_EUSAGE,
				     "%s%s is ambiguous on token '%s': add id= to the URI", d, what,
				     h->label);
	*obj = objs[0];
	return CRETO_OK;
}

/* ---- one URI, one key ----
 *
 * A URI names a key, never a set of keys: every operation that takes one
 * (sign, pub, wrap, unwrap, destroy) resolves it to exactly one key first.
 * The objects of one key share CKA_LABEL and CKA_ID and belong to one
 * family: a key pair (public key, private key and certificate), a secret
 * key, or a data object, each class at most once.  Objects matching the URI
 * that belong to two keys are refused whatever the operation needs, so a
 * URI that is ambiguous on the token never acts (destroy above all). */

#define RESOLVE_MAX 64 /* objects examined; more is ambiguous anyway */

struct p11_match {
	ck_object_handle_t obj;
	ck_object_class_t cls;
	char label[CRETO_HSM_LABEL_MAX + 1];
	uint8_t id[CRETO_HSM_ID_MAX];
	size_t labellen, idlen;
	int has_label, has_id;
};

static int family_of(ck_object_class_t c)
{
	switch (c) {
	case CKO_PUBLIC_KEY:
	case CKO_PRIVATE_KEY:
	case CKO_CERTIFICATE:
		return 0;
	case CKO_SECRET_KEY:
		return 1;
	case CKO_DATA:
		return 2;
	default:
		return 3;
	}
}

static int same_key(const struct p11_match *a, const struct p11_match *b)
{
	return family_of(a->cls) == family_of(b->cls) && a->has_label == b->has_label &&
	       a->labellen == b->labellen && memcmp(a->label, b->label, a->labellen) == 0 &&
	       a->has_id == b->has_id && a->idlen == b->idlen && memcmp(a->id, b->id, a->idlen) == 0;
}

/* Read class, label and id of objs[0..n) into m. */
static int match_attrs(creto_hsm *h, ck_session_handle_t s, const ck_object_handle_t *objs,
		       unsigned long n, struct p11_match *m, ck_rv_t *last, creto_err *e)
{
	for (unsigned long i = 0; i < n; i++) {
		memset(&m[i], 0, sizeof(m[i]));
		m[i].obj = objs[i];
		unsigned long cls = 0;
		int present = 0;
		(void)get_ulong(h, s, objs[i], CKA_CLASS, &cls, &present);
		m[i].cls = present ? cls : (ck_object_class_t)-1;
		uint8_t *b = NULL;
		size_t bl = 0;
		int rc = get_attr(h, s, objs[i], CKA_LABEL, &b, &bl, last, e);
		if (rc != CRETO_OK)
			return rc;
		if (b != NULL) {
			m[i].has_label = 1;
			m[i].labellen = bl > CRETO_HSM_LABEL_MAX ? CRETO_HSM_LABEL_MAX : bl;
			memcpy(m[i].label, b, m[i].labellen);
		}
		free(b);
		rc = get_attr(h, s, objs[i], CKA_ID, &b, &bl, last, e);
		if (rc != CRETO_OK)
			return rc;
		if (b != NULL) {
			m[i].has_id = 1;
			m[i].idlen = bl > CRETO_HSM_ID_MAX ? CRETO_HSM_ID_MAX : bl;
			memcpy(m[i].id, b, m[i].idlen);
		}
		free(b);
	}
	return CRETO_OK;
}

/* Order matches by label, id, class: messages then name keys the same way
 * whatever order the module returns them in. */
static int match_cmp(const void *a, const void *b)
{
	const struct p11_match *x = a, *y = b;
	size_t n = x->labellen < y->labellen ? x->labellen : y->labellen;
	int c = memcmp(x->label, y->label, n);
	if (c != 0 || x->labellen != y->labellen)
		return c != 0 ? c : (x->labellen < y->labellen ? -1 : 1);
	n = x->idlen < y->idlen ? x->idlen : y->idlen;
	c = memcmp(x->id, y->id, n);
	if (c != 0 || x->idlen != y->idlen)
		return c != 0 ? c : (x->idlen < y->idlen ? -1 : 1);
	return x->cls < y->cls ? -1 : x->cls > y->cls;
}

/* Append "id=<hex>" or "'<label>'" naming a matched key to out. */
static void name_match(char *out, size_t cap, const struct p11_match *m, int by_id)
{
	size_t n = strlen(out);
	if (n + 8 >= cap)
		return;
	if (by_id) {
		n += (size_t)snprintf(out + n, cap - n, "%sid=", n ? ", " : "");
		for (size_t i = 0; i < m->idlen && n + 3 < cap; i++)
			n += (size_t)snprintf(out + n, cap - n, "%02x", m->id[i]);
		if (m->idlen == 0)
			snprintf(out + n, cap - n, "-");
	} else {
		snprintf(out + n, cap - n, "%s'%.*s'", n ? ", " : "", (int)m->labellen, m->label);
	}
}

/* The objects of the one key that u names (label, id and u's type=), in
 * m[0..*n); none is *n == 0 (the caller says what was missing).  Objects of
 * more than one key, or two objects of one class for the same key, are
 * CRETO_EUSAGE naming the keys and what to add to the URI. */
static int resolve_in(creto_hsm *h, ck_session_handle_t s, const creto_p11_uri *u,
		      struct p11_match *m, unsigned long *n, ck_rv_t *last, creto_err *e)
{
	ck_object_handle_t objs[RESOLVE_MAX];
	*n = 0;
	int rc = find_objs(h, s, u->object, u->id, u->idlen, u->has_id, class_of(u->type), objs,
			   RESOLVE_MAX, n, last, e);
	if (rc != CRETO_OK)
		return rc;
	rc = match_attrs(h, s, objs, *n, m, last, e);
	if (rc != CRETO_OK)
		return rc;
	qsort(m, *n, sizeof(*m), match_cmp);
	size_t keys = 0;
	int ids_differ = 0, labels_differ = 0, dup = 0;
	char names[256] = "";
	for (unsigned long i = 0; i < *n; i++) {
		int first = 1;
		for (unsigned long j = 0; j < i && first; j++) {
			if (same_key(&m[j], &m[i])) {
				first = 0;
				if (m[j].cls == m[i].cls)
					dup = 1;
			}
		}
		if (!first)
			continue;
		if (keys++ > 0) {
			if (m[i].idlen != m[0].idlen || memcmp(m[i].id, m[0].id, m[0].idlen) != 0)
				ids_differ = 1;
			if (m[i].labellen != m[0].labellen ||
			    memcmp(m[i].label, m[0].label, m[0].labellen) != 0)
				labels_differ = 1;
		}
	}
	if (keys <= 1 && !dup)
		return CRETO_OK;
	char d[160];
	key_desc(d, sizeof(d), u->object, u->id, u->idlen);
	if (keys <= 1)
		return creto_err_set(e, CRETO_EUSAGE,
				     "%s is ambiguous on token '%s': two objects of one class carry "
				     "the same label and id (remove one with the token's own tools)",
				     d, h->label);
	int by_id = ids_differ || !labels_differ;
	for (unsigned long i = 0; i < *n; i++) {
		int first = 1;
		for (unsigned long j = 0; j < i && first; j++)
			if (same_key(&m[j], &m[i]))
				first = 0;
		if (first)
			name_match(names, sizeof(names), &m[i], by_id);
	}
	const char *add = ids_differ ? "id=" : labels_differ ? "object=" : "type=";
	return creto_err_set(e, CRETO_EUSAGE,
			     "%s is ambiguous on token '%s': the URI matches %s%zu keys (%s); add %s "
			     "to the URI to name one",
			     d, h->label, *n == RESOLVE_MAX ? "at least " : "", keys, names, add);
}

/* resolve_in into a malloc'ed *m of RESOLVE_MAX entries (free() it, also
 * on failure). */
static int resolve(creto_hsm *h, ck_session_handle_t s, const creto_p11_uri *u,
		   struct p11_match **m, unsigned long *n, ck_rv_t *last, creto_err *e)
{
	*n = 0;
	*m = calloc(RESOLVE_MAX, sizeof(**m));
	if (*m == NULL)
		return creto_err_set(e, CRETO_EOP, "out of memory");
	return resolve_in(h, s, u, *m, n, last, e);
}

/* The object of class cls among one key's objects m[0..n), or -1. */
static long pick(const struct p11_match *m, unsigned long n, ck_object_class_t cls)
{
	for (unsigned long i = 0; i < n; i++)
		if (m[i].cls == cls)
			return (long)i;
	return -1;
}

static int not_found(creto_hsm *h, const creto_p11_uri *u, ck_object_class_t cls, creto_err *e)
{
	char d[160];
	key_desc(d, sizeof(d), u->object, u->id, u->idlen);
	const char *what = cls == CKO_PRIVATE_KEY  ? " (private key)"
			   : cls == CKO_PUBLIC_KEY ? " (public key)"
			   : cls == CKO_SECRET_KEY ? " (secret key)"
						   : "";
	return creto_err_set(e, CRETO_EUSAGE, "%s%s not found on token '%s'", d, what, h->label);
}

static int need_name(const creto_p11_uri *u, creto_err *e)
{
	if (u->object == NULL && !u->has_id)
		return creto_err_set(e, CRETO_EUSAGE, "pkcs11 URI names no key: add object= or id=");
	return CRETO_OK;
}

int creto_hsm_key_find(creto_hsm *h, const creto_p11_uri *u, creto_p11_type want,
		       creto_hsm_key **out, creto_err *e)
{
	*out = NULL;
	int rc = need_name(u, e);
	if (rc != CRETO_OK)
		return rc;
	if (u->type != CRETO_P11_TYPE_ANY && want != CRETO_P11_TYPE_ANY && u->type != want)
		return creto_err_set(e, CRETO_EUSAGE, "pkcs11 URI: type=%s, but a %s key is needed",
				     creto_p11_type_name(u->type), creto_p11_type_name(want));
	creto_hsm_key *k = calloc(1, sizeof(*k));
	if (k == NULL)
		return creto_err_set(e, CRETO_EOP, "out of memory");
	k->h = h;
	k->cls = class_of(want != CRETO_P11_TYPE_ANY ? want : u->type);
	ck_session_handle_t s;
	rc = p11_session_get(h, &s, e);
	if (rc != CRETO_OK) {
		free(k);
		return rc;
	}
	ck_rv_t last = CKR_OK;
	struct p11_match *m = NULL;
	unsigned long n = 0;
	long i = -1;
	k->gen = p11_gen(h);
	rc = resolve(h, s, u, &m, &n, &last, e);
	if (rc == CRETO_OK) {
		if (k->cls != (ck_object_class_t)-1) {
			i = pick(m, n, k->cls);
		} else if (n == 1) {
			i = 0;
		} else if (n > 1) {
			char d[160];
			key_desc(d, sizeof(d), u->object, u->id, u->idlen);
			rc = creto_err_set(e, CRETO_EUSAGE,
					   "%s is a key pair on token '%s': add type= to the URI", d,
					   h->label);
		}
		if (rc == CRETO_OK && i < 0)
			rc = not_found(h, u, k->cls, e);
	}
	if (rc == CRETO_OK) {
		k->obj = m[i].obj;
		rc = object_keytype(h, s, k->obj, &k->kt, &last, e);
	}
	/* Remember the object's own label and id: a later re-find (after fork
	 * or logout) then names exactly this object. */
	if (rc == CRETO_OK) {
		const char *label = u->object;
		if (m[i].has_label && memchr(m[i].label, '\0', m[i].labellen) == NULL)
			label = m[i].label; /* NUL-terminated: the array is zeroed */
		if (label != NULL && (k->label = strdup(label)) == NULL)
			rc = creto_err_set(e, CRETO_EOP, "out of memory");
		if (m[i].has_id) {
			memcpy(k->id, m[i].id, m[i].idlen);
			k->idlen = m[i].idlen;
			k->has_id = 1;
		} else if (u->has_id) {
			memcpy(k->id, u->id, u->idlen);
			k->idlen = u->idlen;
			k->has_id = 1;
		}
	}
	free(m);
	p11_session_put(h, s, last);
	if (rc != CRETO_OK) {
		creto_hsm_key_free(k);
		return rc;
	}
	*out = k;
	return CRETO_OK;
}

int p11_key_handle(creto_hsm_key *k, ck_session_handle_t s, ck_object_handle_t *obj,
		   ck_rv_t *last, creto_err *e)
{
	creto_hsm *h = k->h;
	/* Fast path without the lock: the epoch only moves after fork or
	 * when every session closed. */
	if (__atomic_load_n(&k->gen, __ATOMIC_ACQUIRE) == p11_gen(h)) {
		*obj = __atomic_load_n(&k->obj, __ATOMIC_RELAXED);
		return CRETO_OK;
	}
	pthread_mutex_lock(&h->mu);
	int rc = CRETO_OK;
	if (k->gen != p11_gen(h)) {
		/* Object handles may have changed: find the key again. */
		ck_object_handle_t o = 0;
		rc = find_one(h, s, k->label, k->id, k->idlen, k->has_id, k->cls, &o, last, e);
		if (rc == CRETO_OK) {
			__atomic_store_n(&k->obj, o, __ATOMIC_RELAXED);
			__atomic_store_n(&k->gen, p11_gen(h), __ATOMIC_RELEASE);
		}
	}
	*obj = k->obj;
	pthread_mutex_unlock(&h->mu);
	return rc;
}

/* ---- public keys ---- */

/* CKA_EC_POINT: a DER OCTET STRING, or (some modules) the raw point. */
static int ec_point_raw(const uint8_t *p, size_t n, const uint8_t **raw, size_t *rawlen)
{
	if (n >= 2 && p[0] == 0x04) {
		if (p[1] < 0x80 && (size_t)p[1] + 2 == n) {
			*raw = p + 2;
			*rawlen = p[1];
			return 1;
		}
		if (p[1] == 0x81 && n >= 3 && p[2] >= 0x80 && (size_t)p[2] + 3 == n) {
			*raw = p + 3;
			*rawlen = p[2];
			return 1;
		}
	}
	*raw = p;
	*rawlen = n;
	return 0;
}

int creto_hsm_pub_raw(creto_hsm *h, const creto_p11_uri *u, creto_alg *alg, uint8_t *raw,
		      size_t cap, size_t *len, creto_err *e)
{
	return p11_pub_raw(h, u, alg, raw, cap, len, NULL, e);
}

int creto_hsm_pub_id(creto_hsm *h, const creto_p11_uri *u, char out[CRETO_KEYID_HEXLEN + 1],
		     creto_err *e)
{
	out[0] = '\0';
	uint8_t raw[128];
	size_t len = 0;
	creto_alg alg = CRETO_ALG_NONE;
	int rc = p11_pub_raw(h, u, &alg, raw, sizeof(raw), &len, NULL, e);
	if (rc != CRETO_OK)
		return rc;
	creto_pubkey *pk = NULL;
	rc = creto_pubkey_new(alg, raw, len, &pk, e);
	if (rc == CRETO_OK)
		memcpy(out, creto_pubkey_id(pk), CRETO_KEYID_HEXLEN + 1);
	creto_pubkey_free(pk);
	return rc;
}

/* CKA_LABEL and CKA_ID of object o into name (absent ones: has_* 0). */
static int object_name(creto_hsm *h, ck_session_handle_t s, ck_object_handle_t o,
		       struct p11_keyname *name, ck_rv_t *last, creto_err *e)
{
	uint8_t *v = NULL;
	size_t vl = 0;
	memset(name, 0, sizeof(*name));
	int rc = get_attr(h, s, o, CKA_LABEL, &v, &vl, last, e);
	if (rc != CRETO_OK)
		return rc;
	if (v != NULL && vl <= CRETO_HSM_LABEL_MAX && memchr(v, '\0', vl) == NULL) {
		memcpy(name->label, v, vl);
		name->label[vl] = '\0';
		name->has_label = 1;
	}
	free(v);
	v = NULL;
	rc = get_attr(h, s, o, CKA_ID, &v, &vl, last, e);
	if (rc != CRETO_OK)
		return rc;
	if (v != NULL && vl <= CRETO_HSM_ID_MAX) {
		memcpy(name->id, v, vl);
		name->idlen = vl;
		name->has_id = 1;
	}
	free(v);
	return CRETO_OK;
}

int p11_pub_raw(creto_hsm *h, const creto_p11_uri *u, creto_alg *alg, uint8_t *raw, size_t cap,
		size_t *len, struct p11_keyname *name, creto_err *e)
{
	*alg = CRETO_ALG_NONE;
	*len = 0;
	if (name != NULL)
		memset(name, 0, sizeof(*name));
	int rc = need_name(u, e);
	if (rc != CRETO_OK)
		return rc;
	if (u->type == CRETO_P11_TYPE_SECRET_KEY || u->type == CRETO_P11_TYPE_CERT ||
	    u->type == CRETO_P11_TYPE_DATA)
		return creto_err_set(e, CRETO_EUSAGE, "pkcs11 URI: type=%s has no public key",
				     creto_p11_type_name(u->type));
	ck_session_handle_t s;
	rc = p11_session_get(h, &s, e);
	if (rc != CRETO_OK)
		return rc;
	ck_rv_t last = CKR_OK;
	ck_object_handle_t o = 0;
	uint8_t *pt = NULL;
	size_t ptlen = 0;
	struct p11_match *m = NULL;
	unsigned long nm = 0;
	rc = resolve(h, s, u, &m, &nm, &last, e);
	if (rc == CRETO_OK && nm > 0 && u->type != CRETO_P11_TYPE_ANY) {
		/* type=private names the key by its private object: its public
		 * key is on the other objects of the same key. */
		creto_p11_uri k;
		memset(&k, 0, sizeof(k));
		char label[CRETO_HSM_LABEL_MAX + 1];
		uint8_t id[CRETO_HSM_ID_MAX];
		if (m[0].has_label) {
			memcpy(label, m[0].label, sizeof(label));
			k.object = label;
		}
		memcpy(id, m[0].id, m[0].idlen);
		k.id = id;
		k.idlen = m[0].idlen;
		k.has_id = m[0].has_id;
		free(m);
		m = NULL;
		rc = resolve(h, s, &k, &m, &nm, &last, e);
	}
	if (rc != CRETO_OK)
		goto out;
	long i = pick(m, nm, CKO_PUBLIC_KEY);
	if (i < 0) {
		/* No public object: some modules keep CKA_EC_POINT on the
		 * private key of the same key. */
		creto_err pe;
		creto_err_clear(&pe);
		i = pick(m, nm, CKO_PRIVATE_KEY);
		if (i < 0 ||
		    get_attr(h, s, m[i].obj, CKA_EC_POINT, &pt, &ptlen, &last, &pe) != CRETO_OK ||
		    pt == NULL) {
			rc = not_found(h, u, CKO_PUBLIC_KEY, e);
			goto out;
		}
	}
	o = m[i].obj;
	creto_hsm_keytype kt;
	rc = object_keytype(h, s, o, &kt, &last, e);
	if (rc != CRETO_OK)
		goto out;
	if (pt == NULL) {
		rc = get_attr(h, s, o, CKA_EC_POINT, &pt, &ptlen, &last, e);
		if (rc != CRETO_OK)
			goto out;
	}
	char d[160];
	key_desc(d, sizeof(d), u->object, u->id, u->idlen);
	size_t want;
	switch (kt) {
	case CRETO_HSM_KT_ED25519:
		*alg = CRETO_ALG_ED25519;
		want = 32;
		break;
	case CRETO_HSM_KT_EC_P256:
		*alg = CRETO_ALG_ECDSA_P256;
		want = 65;
		break;
	case CRETO_HSM_KT_EC_P384:
		*alg = CRETO_ALG_ECDSA_P384;
		want = 97;
		break;
	default:
		rc = creto_err_set(e, CRETO_EUSAGE,
				   "%s on token '%s': not an Ed25519, P-256 or P-384 key", d, h->label);
		goto out;
	}
	const uint8_t *r;
	size_t rl;
	(void)ec_point_raw(pt ? pt : (const uint8_t *)"", ptlen, &r, &rl);
	if (rl != want || (want != 32 && r[0] != 0x04)) {
		*alg = CRETO_ALG_NONE;
		rc = creto_err_set(e, CRETO_EOP,
				   "%s on token '%s': CKA_EC_POINT is not a %zu-byte %s point", d,
				   h->label, want, want == 32 ? "Ed25519" : "uncompressed EC");
		goto out;
	}
	if (cap < rl) {
		rc = creto_err_set(e, CRETO_EOP, "public key buffer too small");
		goto out;
	}
	if (name != NULL) {
		rc = object_name(h, s, o, name, &last, e);
		if (rc != CRETO_OK) {
			*alg = CRETO_ALG_NONE;
			goto out;
		}
	}
	memcpy(raw, r, rl);
	*len = rl;
out:
	free(m);
	free(pt);
	p11_session_put(h, s, last);
	return rc;
}

/* ---- sign ---- */

int creto_hsm_key_sign(creto_hsm_key *k, const uint8_t *msg, size_t msglen, uint8_t *sig,
		       size_t sigcap, size_t *siglen, creto_err *e)
{
	*siglen = 0;
	creto_hsm *h = k->h;
	uint8_t dig[EVP_MAX_MD_SIZE];
	const uint8_t *data = msg;
	size_t datalen = msglen, want;
	ck_mechanism_type_t mt;
	switch (k->kt) {
	case CRETO_HSM_KT_ED25519:
		mt = CKM_EDDSA;
		want = 64;
		break;
	case CRETO_HSM_KT_EC_P256:
	case CRETO_HSM_KT_EC_P384: {
		unsigned int dl = 0;
		const EVP_MD *md = k->kt == CRETO_HSM_KT_EC_P256 ? EVP_sha256() : EVP_sha384();
		if (EVP_Digest(msg, msglen, dig, &dl, md, NULL) != 1)
			return creto_err_openssl(e, "ECDSA digest");
		data = dig;
		datalen = dl;
		mt = CKM_ECDSA;
		want = k->kt == CRETO_HSM_KT_EC_P256 ? 64 : 96;
		break;
	}
	default:
		return creto_err_set(e, CRETO_EUSAGE, "token '%s': the key cannot sign (not Ed25519 or ECDSA)",
				     h->label);
	}
	if (sigcap < want)
		return creto_err_set(e, CRETO_EOP, "signature buffer too small");
	ck_session_handle_t s;
	int rc = p11_session_get(h, &s, e);
	if (rc != CRETO_OK)
		return rc;
	ck_rv_t last = CKR_OK;
	ck_object_handle_t obj;
	rc = p11_key_handle(k, s, &obj, &last, e);
	if (rc != CRETO_OK)
		goto out;
	struct ck_mechanism mech = {mt, NULL, 0};
	struct ck_function_list *f = h->mod->f;
	P11_MODULE_LEAKS_BEGIN();
	last = f->C_SignInit(s, &mech, obj);
	P11_MODULE_LEAKS_END();
	if (last != CKR_OK) {
		rc = p11_fail(e, last, "C_SignInit", h);
		goto out;
	}
	unsigned long sl = (unsigned long)sigcap;
	last = f->C_Sign(s, (unsigned char *)data, datalen, sig, &sl);
	if (last != CKR_OK) {
		rc = p11_fail(e, last, "C_Sign", h);
		goto out;
	}
	if (sl != want) {
		OPENSSL_cleanse(sig, sigcap);
		rc = creto_err_set(e, CRETO_EOP, "C_Sign on token '%s': %lu-byte signature, expected %zu",
				   h->label, sl, want);
		goto out;
	}
	*siglen = sl;
out:
	OPENSSL_cleanse(dig, sizeof(dig));
	p11_session_put(h, s, last);
	return rc;
}

/* ---- destroy ---- */

int creto_hsm_destroy(creto_hsm *h, const creto_p11_uri *u, size_t *nout, creto_err *e)
{
	*nout = 0;
	int rc = need_name(u, e);
	if (rc != CRETO_OK)
		return rc;
	ck_session_handle_t s;
	rc = p11_session_get(h, &s, e);
	if (rc != CRETO_OK)
		return rc;
	ck_rv_t last = CKR_OK;
	struct p11_match *m = NULL;
	unsigned long n = 0;
	/* Exactly one key, or nothing is destroyed. */
	rc = resolve(h, s, u, &m, &n, &last, e);
	if (rc != CRETO_OK)
		goto out;
	if (n == 0) {
		rc = not_found(h, u, (ck_object_class_t)-1, e);
		goto out;
	}
	for (unsigned long i = 0; i < n; i++) {
		last = h->mod->f->C_DestroyObject(s, m[i].obj);
		if (last != CKR_OK) {
			rc = p11_fail(e, last, "C_DestroyObject", h);
			goto out;
		}
		(*nout)++;
	}
out:
	free(m);
	p11_session_put(h, s, last);
	return rc;
}
