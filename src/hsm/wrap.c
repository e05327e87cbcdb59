/*
 * wrap.c - wrap and unwrap secret key bytes under an HSM AES key with
 * CKM_AES_KEY_WRAP_PAD (RFC 5649).
 *
 * The bytes travel through the module as a short-lived session object
 * (CKA_TOKEN false, destroyed before return): imported with C_CreateObject
 * and wrapped, or unwrapped as an extractable generic secret and read back.
 * The wrapping key itself never leaves the HSM.
 */
#include "p11.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#define WRAP_MAX_KEY 4096 /* largest secret accepted for wrapping */

static unsigned char w_true = 1, w_false = 0;

static int find_wrapping_key(creto_hsm *h, const creto_p11_uri *u, creto_hsm_key **k,
			     creto_err *e)
{
	int rc = creto_hsm_key_find(h, u, CRETO_P11_TYPE_SECRET_KEY, k, e);
	if (rc != CRETO_OK)
		return rc;
	if (creto_hsm_key_type(*k) != CRETO_HSM_KT_AES256) {
		creto_hsm_key_free(*k);
		*k = NULL;
		return creto_err_set(e, CRETO_EUSAGE, "token '%s': wrapping key '%s' is not AES-256",
				     h->label, u->object ? u->object : "(by id)");
	}
	return CRETO_OK;
}

/* What wrap and unwrap both hold: the AES wrapping key named by u, a pooled
 * session and the key's handle in it.  wrap_begin takes all three (and
 * releases what it took when it fails); wrap_end gives them back. */
struct wrap_ctx {
	creto_hsm_key *k;
	ck_session_handle_t s;
	ck_object_handle_t wk;
	ck_rv_t last;
};

static int wrap_begin(creto_hsm *h, const creto_p11_uri *u, struct wrap_ctx *w, creto_err *e)
{
	w->k = NULL;
	w->last = CKR_OK;
	int rc = find_wrapping_key(h, u, &w->k, e);
	if (rc != CRETO_OK)
		return rc;
	rc = p11_session_get(h, &w->s, e);
	if (rc != CRETO_OK) {
		creto_hsm_key_free(w->k);
		return rc;
	}
	rc = p11_key_handle(w->k, w->s, &w->wk, &w->last, e);
	if (rc != CRETO_OK) {
		p11_session_put(h, w->s, w->last);
		creto_hsm_key_free(w->k);
	}
	return rc;
}

static void wrap_end(creto_hsm *h, struct wrap_ctx *w)
{
	p11_session_put(h, w->s, w->last);
	creto_hsm_key_free(w->k);
}

int creto_hsm_wrap_with(creto_hsm *h, const creto_p11_uri *u, const uint8_t *key, size_t len,
			uint8_t **wrapped, size_t *wrappedlen, creto_err *e)
{
	*wrapped = NULL;
	*wrappedlen = 0;
	/* Whole 8-byte blocks only: SoftHSM2 2.6.1 returns RFC 5649's
	 * padding as part of an unwrapped generic secret, so a padded length
	 * would not round-trip.  The blob stays standard RFC 5649. */
	if (len == 0 || len > WRAP_MAX_KEY || len % 8 != 0)
		return creto_err_set(e, CRETO_EUSAGE,
				     "key to wrap must be a multiple of 8 bytes, 8 to %d (got %zu)",
				     WRAP_MAX_KEY, len);
	struct wrap_ctx w;
	int rc = wrap_begin(h, u, &w, e);
	if (rc != CRETO_OK)
		return rc;
	struct ck_function_list *f = h->mod->f;
	ck_session_handle_t s = w.s;
	ck_object_handle_t wk = w.wk, tmp = 0;
	ck_rv_t last = CKR_OK;
	int have_tmp = 0;
	uint8_t *out = NULL;
	ck_object_class_t cls = CKO_SECRET_KEY;
	ck_key_type_t kt = CKK_GENERIC_SECRET;
	struct ck_attribute tpl[] = {
		{CKA_CLASS, &cls, sizeof(cls)},	 {CKA_KEY_TYPE, &kt, sizeof(kt)},
		{CKA_TOKEN, &w_false, 1},	 {CKA_PRIVATE, &w_true, 1},
		{CKA_SENSITIVE, &w_false, 1},	 {CKA_EXTRACTABLE, &w_true, 1},
		{CKA_VALUE, (void *)key, len},
	};
	last = f->C_CreateObject(s, tpl, sizeof(tpl) / sizeof(tpl[0]), &tmp);
	if (last != CKR_OK) {
		rc = p11_fail(e, last, "C_CreateObject", h);
		goto out;
	}
	have_tmp = 1;
	struct ck_mechanism mech = {CKM_AES_KEY_WRAP_PAD, NULL, 0};
	unsigned long ol = 0;
	last = f->C_WrapKey(s, &mech, wk, tmp, NULL, &ol);
	if (last != CKR_OK) {
		rc = p11_fail(e, last, "C_WrapKey", h);
		goto out;
	}
	out = malloc(ol ? ol : 1);
	if (out == NULL) {
		rc = creto_err_set(e, CRETO_EOP, "out of memory");
		goto out;
	}
	last = f->C_WrapKey(s, &mech, wk, tmp, out, &ol);
	if (last != CKR_OK) {
		rc = p11_fail(e, last, "C_WrapKey", h);
		goto out;
	}
	*wrapped = out;
	*wrappedlen = ol;
	out = NULL;
out:
	if (have_tmp) {
		ck_rv_t rv = f->C_DestroyObject(s, tmp);
		if (rv != CKR_OK && rc == CRETO_OK) {
			free(*wrapped);
			*wrapped = NULL;
			*wrappedlen = 0;
			rc = p11_fail(e, rv, "C_DestroyObject", h);
		}
	}
	free(out);
	w.last = last;
	wrap_end(h, &w);
	return rc;
}

int creto_hsm_unwrap_with(creto_hsm *h, const creto_p11_uri *u, const uint8_t *wrapped,
			  size_t wrappedlen, uint8_t *key, size_t keycap, size_t *keylen,
			  creto_err *e)
{
	*keylen = 0;
	/* RFC 5649: at least two 64-bit blocks, a multiple of 8 bytes. */
	if (wrappedlen < 16 || wrappedlen % 8 != 0 || wrappedlen > WRAP_MAX_KEY + 16)
		return creto_err_set(e, CRETO_EREJECT, "wrapped key: %zu bytes is not an RFC 5649 blob",
				     wrappedlen);
	struct wrap_ctx w;
	int rc = wrap_begin(h, u, &w, e);
	if (rc != CRETO_OK)
		return rc;
	struct ck_function_list *f = h->mod->f;
	ck_session_handle_t s = w.s;
	ck_object_handle_t wk = w.wk, tmp = 0;
	ck_rv_t last = CKR_OK;
	int have_tmp = 0;
	ck_object_class_t cls = CKO_SECRET_KEY;
	ck_key_type_t kt = CKK_GENERIC_SECRET;
	struct ck_attribute tpl[] = {
		{CKA_CLASS, &cls, sizeof(cls)}, {CKA_KEY_TYPE, &kt, sizeof(kt)},
		{CKA_TOKEN, &w_false, 1},	{CKA_PRIVATE, &w_true, 1},
		{CKA_SENSITIVE, &w_false, 1},	{CKA_EXTRACTABLE, &w_true, 1},
	};
	struct ck_mechanism mech = {CKM_AES_KEY_WRAP_PAD, NULL, 0};
	last = f->C_UnwrapKey(s, &mech, wk, (unsigned char *)wrapped, wrappedlen, tpl,
			      sizeof(tpl) / sizeof(tpl[0]), &tmp);
	if (last != CKR_OK) {
		/* SoftHSM2 reports a failed integrity check as
		 * CKR_GENERAL_ERROR/CKR_FUNCTION_FAILED: to the caller it is a
		 * blob that does not unwrap under this key. */
		rc = p11_fail(e, last, "C_UnwrapKey", h);
		if (last == CKR_GENERAL_ERROR || last == CKR_FUNCTION_FAILED) {
			rc = CRETO_EREJECT;
			if (e != NULL)
				e->code = rc;
		}
		if (rc == CRETO_EREJECT)
			creto_err_ctx(e, "wrapped key does not unwrap (wrong key or tampered)");
		goto out;
	}
	have_tmp = 1;
	struct ck_attribute a = {CKA_VALUE, NULL, 0};
	last = f->C_GetAttributeValue(s, tmp, &a, 1);
	if (last != CKR_OK) {
		rc = p11_fail(e, last, "C_GetAttributeValue", h);
		goto out;
	}
	if (a.value_len > keycap) {
		rc = creto_err_set(e, CRETO_EREJECT, "unwrapped key has %lu bytes, room for %zu",
				   a.value_len, keycap);
		goto out;
	}
	a.value = key;
	last = f->C_GetAttributeValue(s, tmp, &a, 1);
	if (last != CKR_OK) {
		OPENSSL_cleanse(key, keycap);
		rc = p11_fail(e, last, "C_GetAttributeValue", h);
		goto out;
	}
	*keylen = a.value_len;
out:
	if (have_tmp)
		(void)f->C_DestroyObject(s, tmp);
	w.last = last;
	wrap_end(h, &w);
	return rc;
}

int creto_hsm_wrap(const char *uri, const creto_hsm_opts *opts, const uint8_t *key, size_t len,
		   uint8_t **wrapped, size_t *wrappedlen, creto_err *e)
{
	*wrapped = NULL;
	*wrappedlen = 0;
	creto_hsm *h = NULL;
	creto_p11_uri *u = NULL;
	int rc = creto_hsm_open_uri(uri, opts, CRETO_HSM_LOGIN, &h, &u, e);
	if (rc == CRETO_OK)
		rc = creto_hsm_wrap_with(h, u, key, len, wrapped, wrappedlen, e);
	creto_hsm_close(h);
	creto_p11_uri_free(u);
	return rc;
}

int creto_hsm_unwrap(const char *uri, const creto_hsm_opts *opts, const uint8_t *wrapped,
		     size_t wrappedlen, uint8_t *key, size_t keycap, size_t *keylen, creto_err *e)
{
	*keylen = 0;
	creto_hsm *h = NULL;
	creto_p11_uri *u = NULL;
	int rc = creto_hsm_open_uri(uri, opts, CRETO_HSM_LOGIN, &h, &u, e);
	if (rc == CRETO_OK)
		rc = creto_hsm_unwrap_with(h, u, wrapped, wrappedlen, key, keycap, keylen, e);
	creto_hsm_close(h);
	creto_p11_uri_free(u);
	return rc;
}
