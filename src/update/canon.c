/*
 * canon.c - the canonical JSON subset every signed creto update document
 * uses (docs/trust-root.md "Canonical JSON"), strict helpers to read fields
 * of untrusted JSON, SHA3-256, and the signature list.
 */
#include "update_int.h"

#include <stdarg.h>

#include <openssl/evp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/enc.h"
#include "util/timeutil.h"

#define CANON_DEPTH_MAX 8

static int str_ok(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c > 0x7e || c == '"' || c == '\\')
			return 0;
	}
	return 1;
}

static int check_rec(const json_t *v, const char *where, int depth, creto_err *e)
{
	if (depth > CANON_DEPTH_MAX)
		return creto_err_set(e, CRETO_EREJECT, "%s: nested too deep", where);
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		const char *k;
		const json_t *x;
		json_object_foreach((json_t *)v, k, x) {
			if (!str_ok(k, strlen(k)))
				return creto_err_set(e, CRETO_EREJECT,
						     "%s: key with a character outside the canonical set", where);
			int rc = check_rec(x, where, depth + 1, e);
			if (rc != CRETO_OK)
				return rc;
		}
		return CRETO_OK;
	}
	case JSON_ARRAY: {
		size_t i;
		const json_t *x;
		json_array_foreach(v, i, x) {
			int rc = check_rec(x, where, depth + 1, e);
			if (rc != CRETO_OK)
				return rc;
		}
		return CRETO_OK;
	}
	case JSON_STRING:
		if (!str_ok(json_string_value(v), json_string_length(v)))
			return creto_err_set(e, CRETO_EREJECT,
					     "%s: string with a character outside the canonical set", where);
		return CRETO_OK;
	case JSON_INTEGER:
		return CRETO_OK;
	default:
		return creto_err_set(e, CRETO_EREJECT,
				     "%s: only objects, arrays, integers and strings are allowed", where);
	}
}

int upd_canon_check(const json_t *v, const char *where, creto_err *e)
{
	return check_rec(v, where, 0, e);
}

typedef struct sbuf {
	char *p;
	size_t len, cap;
	int oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t nc = b->cap ? b->cap : 256;
		while (nc < b->len + n + 1)
			nc *= 2;
		char *np = realloc(b->p, nc);
		if (np == NULL) {
			b->oom = 1;
			return;
		}
		b->p = np;
		b->cap = nc;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void dump_rec(const json_t *v, sbuf *b)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		size_t n = json_object_size(v), i = 0;
		const char **keys = calloc(n ? n : 1, sizeof *keys);
		if (keys == NULL) {
			b->oom = 1;
			return;
		}
		const char *k;
		const json_t *x;
		json_object_foreach((json_t *)v, k, x) keys[i++] = k;
		qsort(keys, n, sizeof *keys, cmp_str);
		sb_put(b, "{", 1);
		for (i = 0; i < n; i++) {
			if (i)
				sb_put(b, ",", 1);
			sb_put(b, "\"", 1);
			sb_put(b, keys[i], strlen(keys[i]));
			sb_put(b, "\":", 2);
			dump_rec(json_object_get(v, keys[i]), b);
		}
		sb_put(b, "}", 1);
		free(keys);
		return;
	}
	case JSON_ARRAY: {
		size_t i;
		const json_t *x;
		sb_put(b, "[", 1);
		json_array_foreach(v, i, x) {
			if (i)
				sb_put(b, ",", 1);
			dump_rec(x, b);
		}
		sb_put(b, "]", 1);
		return;
	}
	case JSON_STRING:
		sb_put(b, "\"", 1);
		sb_put(b, json_string_value(v), json_string_length(v));
		sb_put(b, "\"", 1);
		return;
	case JSON_INTEGER: {
		char t[32];
		int n = snprintf(t, sizeof t, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		sb_put(b, t, (size_t)n);
		return;
	}
	default:
		b->oom = 1;
		return;
	}
}

int upd_canon_dump(const json_t *v, char **out, size_t *outlen, creto_err *e)
{
	*out = NULL;
	int rc = upd_canon_check(v, "canonical JSON", e);
	if (rc != CRETO_OK)
		return rc;
	sbuf b = {0};
	dump_rec(v, &b);
	if (b.oom || b.p == NULL) {
		free(b.p);
		return creto_err_set(e, CRETO_EOP, "out of memory");
	}
	*out = b.p;
	if (outlen != NULL)
		*outlen = b.len;
	return CRETO_OK;
}

int upd_json_parse(const uint8_t *buf, size_t len, const char *what, json_t **out, creto_err *e)
{
	json_error_t je;
	*out = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &je);
	if (*out == NULL)
		return creto_err_set(e, CRETO_EREJECT, "%s: malformed JSON at line %d column %d: %s",
				     what, je.line, je.column, je.text);
	if (!json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		return creto_err_set(e, CRETO_EREJECT, "%s: not a JSON object", what);
	}
	return CRETO_OK;
}

int upd_json_keys(const json_t *o, const char *where, const char *const *keys, creto_err *e)
{
	if (!json_is_object(o))
		return creto_err_set(e, CRETO_EREJECT, "%s: not an object", where);
	size_t required = 0, present = 0;
	for (size_t i = 0; keys[i] != NULL; i++) {
		int opt = keys[i][0] == '?';
		const char *k = keys[i] + opt;
		int has = json_object_get(o, k) != NULL;
		if (!opt && !has)
			return creto_err_set(e, CRETO_EREJECT, "%s: missing field %s", where, k);
		required += !opt;
		present += has;
	}
	if (json_object_size(o) != present) {
		const char *k;
		const json_t *x;
		json_object_foreach((json_t *)o, k, x) {
			int known = 0;
			for (size_t i = 0; keys[i] != NULL; i++)
				if (strcmp(keys[i] + (keys[i][0] == '?'), k) == 0)
					known = 1;
			if (!known)
				return creto_err_set(e, CRETO_EREJECT, "%s: unknown field %.40s", where, k);
		}
	}
	(void)required;
	return CRETO_OK;
}

int upd_json_int(const json_t *o, const char *k, const char *where, int64_t lo, int64_t hi,
		 int64_t *out, creto_err *e)
{
	const json_t *v = json_object_get(o, k);
	if (!json_is_integer(v))
		return creto_err_set(e, CRETO_EREJECT, "%s: field %s is not an integer", where, k);
	json_int_t x = json_integer_value(v);
	if (x < lo || x > hi)
		return creto_err_set(e, CRETO_EREJECT, "%s: field %s out of range (%lld)", where, k,
				     (long long)x);
	*out = (int64_t)x;
	return CRETO_OK;
}

int upd_json_str(const json_t *o, const char *k, const char *where, const char **out, creto_err *e)
{
	const json_t *v = json_object_get(o, k);
	if (!json_is_string(v))
		return creto_err_set(e, CRETO_EREJECT, "%s: field %s is not a string", where, k);
	*out = json_string_value(v);
	if (strlen(*out) != json_string_length(v))
		return creto_err_set(e, CRETO_EREJECT, "%s: field %s contains NUL", where, k);
	return CRETO_OK;
}

int upd_json_time(const json_t *o, const char *k, const char *where, int64_t *out, creto_err *e)
{
	const char *s;
	int rc = upd_json_str(o, k, where, &s, e);
	if (rc != CRETO_OK)
		return rc;
	if (strlen(s) != CRETO_TIME_STRLEN - 1 || creto_time_parse(s, out) != 0)
		return creto_err_set(e, CRETO_EREJECT, "%s: field %s is not a YYYY-MM-DDThh:mm:ssZ time",
				     where, k);
	return CRETO_OK;
}

int upd_sha3(const void *buf, size_t len, uint8_t out[UPD_DIGEST_LEN])
{
	unsigned int n = 0;
	return EVP_Digest(buf, len, out, &n, EVP_sha3_256(), NULL) == 1 && n == UPD_DIGEST_LEN ? 0 : -1;
}

void upd_sha3_hex(const void *buf, size_t len, char out[65])
{
	uint8_t d[UPD_DIGEST_LEN];
	if (upd_sha3(buf, len, d) != 0)
		memset(d, 0, sizeof d);
	creto_hex_encode(out, d, sizeof d);
}

static int keyid_ok(const char *s)
{
	if (strlen(s) != CRETO_KEYID_HEXLEN)
		return 0;
	for (size_t i = 0; i < CRETO_KEYID_HEXLEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

int upd_sigs_parse(const json_t *arr, const char *where, upd_sig **out, size_t *n, creto_err *e)
{
	*out = NULL;
	*n = 0;
	if (!json_is_array(arr))
		return creto_err_set(e, CRETO_EREJECT, "%s: signatures is not an array", where);
	size_t cnt = json_array_size(arr);
	if (cnt > CRETO_UPDATE_SIGS_MAX)
		return creto_err_set(e, CRETO_EREJECT, "%s: %zu signatures, at most %d allowed", where,
				     cnt, CRETO_UPDATE_SIGS_MAX);
	upd_sig *s = calloc(cnt ? cnt : 1, sizeof *s);
	if (s == NULL)
		return creto_err_set(e, CRETO_EOP, "out of memory");
	static const char *const keys[] = {"keyid", "sig", NULL};
	int rc = CRETO_OK;
	size_t i;
	for (i = 0; i < cnt; i++) {
		const json_t *x = json_array_get(arr, i);
		char w[96];
		snprintf(w, sizeof w, "%s: signature %zu", where, i + 1);
		const char *kid, *b64;
		if ((rc = upd_json_keys(x, w, keys, e)) != CRETO_OK ||
		    (rc = upd_json_str(x, "keyid", w, &kid, e)) != CRETO_OK ||
		    (rc = upd_json_str(x, "sig", w, &b64, e)) != CRETO_OK)
			goto out;
		if (!keyid_ok(kid)) {
			rc = creto_err_set(e, CRETO_EREJECT, "%s: key id is not 16 lowercase hex digits", w);
			goto out;
		}
		memcpy(s[i].keyid, kid, CRETO_KEYID_HEXLEN + 1);
		size_t bl = strlen(b64);
		if (bl > creto_b64_enclen(CRETO_SIG_MAX, 0)) {
			rc = creto_err_set(e, CRETO_EREJECT, "%s: signature too long", w);
			goto out;
		}
		s[i].sig = malloc(creto_b64_declen_max(bl) + 1);
		if (s[i].sig == NULL) {
			rc = creto_err_set(e, CRETO_EOP, "out of memory");
			goto out;
		}
		if (creto_b64_decode(s[i].sig, creto_b64_declen_max(bl) + 1, &s[i].siglen, b64, bl, 0) != 0) {
			rc = creto_err_set(e, CRETO_EREJECT, "%s: signature is not base64", w);
			goto out;
		}
	}
out:
	if (rc != CRETO_OK) {
		upd_sigs_free(s, cnt);
		return rc;
	}
	*out = s;
	*n = cnt;
	return CRETO_OK;
}

void upd_sigs_free(upd_sig *s, size_t n)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(s[i].sig);
	free(s);
}



int upd_reject(creto_err *e, creto_update_rule *rule, creto_update_rule r, const char *fmt, ...)
{
	char msg[CRETO_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (rule != NULL)
		*rule = r;
	return creto_err_set(e, CRETO_EREJECT, "%s", msg);
}

const char *creto_update_rule_name(creto_update_rule r)
{
	static const char *const names[] = {
		[CRETO_RULE_NONE] = "",
		[CRETO_RULE_CONTAINER] = "container",
		[CRETO_RULE_SIZE] = "size",
		[CRETO_RULE_TRUNCATED] = "truncated",
		[CRETO_RULE_TRAILING_DATA] = "trailing data",
		[CRETO_RULE_MEMBER_TYPE] = "member type",
		[CRETO_RULE_ORDER] = "order",
		[CRETO_RULE_DUPLICATE_NAME] = "duplicate name",
		[CRETO_RULE_PATH] = "path",
		[CRETO_RULE_STATEMENT] = "statement",
		[CRETO_RULE_SIGNATURES] = "signatures",
		[CRETO_RULE_THRESHOLD] = "signature threshold",
		[CRETO_RULE_REPLAY] = "replay",
		[CRETO_RULE_CREATED] = "created",
		[CRETO_RULE_EXPIRED] = "expired",
		[CRETO_RULE_ROLLBACK] = "rollback",
		[CRETO_RULE_FAST_FORWARD] = "fast-forward",
		[CRETO_RULE_ROTATION] = "rotation",
		[CRETO_RULE_DIGEST] = "digest",
	};
	if ((unsigned)r >= sizeof names / sizeof names[0] || names[r] == NULL)
		return "";
	return names[r];
}
