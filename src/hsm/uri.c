/*
 * uri.c - RFC 7512 `pkcs11:` URIs: a strict parser and a formatter.
 *
 * Grammar (RFC 7512 §2.3), enforced character by character:
 *   pk11-URI  = "pkcs11:" pk11-path [ "?" pk11-query ]
 *   pk11-path = [ pk11-pattr *(";" pk11-pattr) ]
 *   pk11-query = [ pk11-qattr *("&" pk11-qattr) ]
 *   path values: unreserved / ":[]@!$'()*+,=" / pct-encoded
 *   query values: the same plus "/?|"
 * Unknown non-vendor path attributes and duplicated path attributes are
 * refused as the RFC requires; we also refuse unknown non-vendor query
 * attributes, duplicated standard query attributes, and pin-source with
 * pin-value, because a key reference that means two things is a mistake in
 * an enclave.  Vendor attributes ("x-...") are accepted and ignored.
 * pin-value is parsed like any attribute (and wiped on free), but
 * creto_hsm_open refuses a URI carrying one: PINs come only from files.
 */
#include "creto/hsm.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

static int is_unreserved(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

static int is_pchar_res(unsigned char c)
{
	return c != '\0' && strchr(":[]@!$'()*+,=", c) != NULL;
}

static int is_qchar_res(unsigned char c)
{
	return is_pchar_res(c) || c == '/' || c == '?' || c == '|';
}

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decode s[0..n) (characters already checked against the set of
 * the component).  *out is malloc'ed with a NUL after the data. */
static int pct_decode(const char *s, size_t n, int query, const char *attr, uint8_t **out,
		      size_t *outlen, creto_err *e)
{
	uint8_t *b = malloc(n + 1);
	if (b == NULL)
		return creto_err_set(e, CRETO_EOP, "out of memory");
	size_t j = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '%') {
			int hi = i + 2 < n ? hexval((unsigned char)s[i + 1]) : -1;
			int lo = i + 2 < n ? hexval((unsigned char)s[i + 2]) : -1;
			if (hi < 0 || lo < 0) {
				OPENSSL_cleanse(b, n + 1);
				free(b);
				return creto_err_set(e, CRETO_EUSAGE,
						     "pkcs11 URI: attribute '%s': bad percent-encoding", attr);
			}
			b[j++] = (uint8_t)(hi << 4 | lo);
			i += 2;
			continue;
		}
		if (!is_unreserved(c) && !(query ? is_qchar_res(c) : is_pchar_res(c))) {
			OPENSSL_cleanse(b, n + 1);
			free(b);
			if (c >= 0x21 && c < 0x7f)
				return creto_err_set(e, CRETO_EUSAGE,
						     "pkcs11 URI: attribute '%s': character '%c' must be percent-encoded",
						     attr, c);
			return creto_err_set(e, CRETO_EUSAGE,
					     "pkcs11 URI: attribute '%s': byte 0x%02x must be percent-encoded",
					     attr, c);
		}
		b[j++] = c;
	}
	b[j] = '\0';
	*out = b;
	*outlen = j;
	return CRETO_OK;
}

enum attr_kind { A_TEXT, A_ID, A_TYPE, A_SLOTID, A_LIBVER };

struct attr_def {
	const char *name;
	enum attr_kind kind;
	size_t off; /* offsetof the char * field (A_TEXT / A_LIBVER) */
	unsigned bit;
};

#define F(field) offsetof(creto_p11_uri, field)
static const struct attr_def path_attrs[] = {
	{"token", A_TEXT, F(token), 1u << 0},
	{"manufacturer", A_TEXT, F(manufacturer), 1u << 1},
	{"model", A_TEXT, F(model), 1u << 2},
	{"serial", A_TEXT, F(serial), 1u << 3},
	{"library-manufacturer", A_TEXT, F(library_manufacturer), 1u << 4},
	{"library-description", A_TEXT, F(library_description), 1u << 5},
	{"library-version", A_LIBVER, F(library_version), 1u << 6},
	{"slot-description", A_TEXT, F(slot_description), 1u << 7},
	{"slot-manufacturer", A_TEXT, F(slot_manufacturer), 1u << 8},
	{"slot-id", A_SLOTID, 0, 1u << 9},
	{"object", A_TEXT, F(object), 1u << 10},
	{"id", A_ID, 0, 1u << 11},
	{"type", A_TYPE, 0, 1u << 12},
	{NULL, A_TEXT, 0, 0},
};
static const struct attr_def query_attrs[] = {
	{"module-path", A_TEXT, F(module_path), 1u << 0},
	{"module-name", A_TEXT, F(module_name), 1u << 1},
	{"pin-source", A_TEXT, F(pin_source), 1u << 2},
	{"pin-value", A_TEXT, F(pin_value), 1u << 3},
	{"x-creto-pq", A_TEXT, F(pq_file), 1u << 4}, /* docs/keys.md §4 */
	{NULL, A_TEXT, 0, 0},
};
#undef F

static const char *type_names[] = {NULL, "public", "private", "secret-key", "cert", "data"};

const char *creto_p11_type_name(creto_p11_type t)
{
	if ((unsigned)t >= sizeof(type_names) / sizeof(type_names[0]))
		return NULL;
	return type_names[t];
}

static int all_digits(const char *s, size_t n)
{
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return 1;
}

/* One attribute "name=value" (s[0..n)) of the path (query 0) or query. */
static int parse_attr(creto_p11_uri *u, const char *s, size_t n, int query, unsigned *seen,
		      creto_err *e)
{
	const char *eq = memchr(s, '=', n);
	if (eq == NULL || eq == s)
		return creto_err_set(e, CRETO_EUSAGE, "pkcs11 URI: %s attribute '%.*s' has no name=value",
				     query ? "query" : "path", (int)(n > 64 ? 64 : n), s);
	size_t nl = (size_t)(eq - s);
	const char *v = eq + 1;
	size_t vl = n - nl - 1;
	char name[64];
	if (nl >= sizeof(name))
		return creto_err_set(e, CRETO_EUSAGE, "pkcs11 URI: attribute name too long");
	memcpy(name, s, nl);
	name[nl] = '\0';
	/* Names: letters, digits and '-' only. */
	for (size_t i = 0; i < nl; i++) {
		unsigned char c = (unsigned char)name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-'))
			return creto_err_set(e, CRETO_EUSAGE, "pkcs11 URI: bad attribute name '%.*s'",
					     (int)nl, name);
	}
	const struct attr_def *d = query ? query_attrs : path_attrs;
	for (; d->name != NULL; d++)
		if (strcmp(d->name, name) == 0)
			break;
	/* Values are checked and decoded even for vendor attributes. */
	uint8_t *val = NULL;
	size_t vlen = 0;
	int rc = pct_decode(v, vl, query, name, &val, &vlen, e);
	if (rc != CRETO_OK)
		return rc;
	if (d->name == NULL) {
		int vendor = nl > 2 && name[0] == 'x' && name[1] == '-';
		OPENSSL_cleanse(val, vlen);
		free(val);
		if (vendor)
			return CRETO_OK;
		return creto_err_set(e, CRETO_EUSAGE, "pkcs11 URI: unknown %s attribute '%s'",
				     query ? "query" : "path", name);
	}
	if (*seen & d->bit) {
		OPENSSL_cleanse(val, vlen);
		free(val);
		return creto_err_set(e, CRETO_EUSAGE, "pkcs11 URI: attribute '%s' appears twice", name);
	}
	*seen |= d->bit;
	if (d->kind != A_ID && memchr(val, '\0', vlen) != NULL) {
		OPENSSL_cleanse(val, vlen);
		free(val);
		return creto_err_set(e, CRETO_EUSAGE, "pkcs11 URI: attribute '%s' contains a NUL byte",
				     name);
	}
	switch (d->kind) {
	case A_ID:
		u->id = val;
		u->idlen = vlen;
		u->has_id = 1;
		if (vlen > CRETO_HSM_ID_MAX)
			return creto_err_set(e, CRETO_EUSAGE, "pkcs11 URI: id longer than %d bytes",
					     CRETO_HSM_ID_MAX);
		return CRETO_OK;
	case A_TYPE: {
		creto_p11_type t = CRETO_P11_TYPE_ANY;
		for (size_t i = 1; i < sizeof(type_names) / sizeof(type_names[0]); i++)
			if (strcmp((char *)val, type_names[i]) == 0)
				t = (creto_p11_type)i;
		free(val);
		if (t == CRETO_P11_TYPE_ANY)
			return creto_err_set(e, CRETO_EUSAGE,
					     "pkcs11 URI: type must be public, private, secret-key, cert or data");
		u->type = t;
		return CRETO_OK;
	}
	case A_SLOTID: {
		if (!all_digits((char *)val, vlen) || vlen > 18) {
			free(val);
			return creto_err_set(e, CRETO_EUSAGE, "pkcs11 URI: slot-id must be a decimal number");
		}
		u->slot_id = strtoul((char *)val, NULL, 10);
		u->has_slot_id = 1;
		free(val);
		return CRETO_OK;
	}
	case A_LIBVER: {
		/* 1*DIGIT [ "." 1*DIGIT ] */
		const char *dot = memchr(val, '.', vlen);
		size_t a = dot ? (size_t)(dot - (char *)val) : vlen;
		if (!all_digits((char *)val, a) ||
		    (dot != NULL && !all_digits(dot + 1, vlen - a - 1))) {
			free(val);
			return creto_err_set(e, CRETO_EUSAGE,
					     "pkcs11 URI: library-version must be MAJOR[.MINOR]");
		}
		break;
	}
	case A_TEXT:
		break;
	}
	if (strcmp(name, "object") == 0 && vlen > CRETO_HSM_LABEL_MAX) {
		free(val);
		return creto_err_set(e, CRETO_EUSAGE, "pkcs11 URI: object label longer than %d bytes",
				     CRETO_HSM_LABEL_MAX);
	}
	if (strcmp(name, "pin-value") == 0 && vlen > CRETO_HSM_PIN_MAX) {
		OPENSSL_cleanse(val, vlen);
		free(val);
		return creto_err_set(e, CRETO_EUSAGE, "pkcs11 URI: pin-value longer than %d bytes",
				     CRETO_HSM_PIN_MAX);
	}
	*(char **)((char *)u + d->off) = (char *)val;
	return CRETO_OK;
}

/* Split s[0..n) at sep and parse each attribute. */
static int parse_component(creto_p11_uri *u, const char *s, size_t n, char sep, int query,
			   creto_err *e)
{
	unsigned seen = 0;
	if (n == 0)
		return CRETO_OK;
	size_t start = 0;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && s[i] != sep)
			continue;
		if (i == start)
			return creto_err_set(e, CRETO_EUSAGE, "pkcs11 URI: empty %s attribute",
					     query ? "query" : "path");
		int rc = parse_attr(u, s + start, i - start, query, &seen, e);
		if (rc != CRETO_OK)
			return rc;
		start = i + 1;
	}
	return CRETO_OK;
}

int creto_p11_uri_parse(const char *s, creto_p11_uri **out, creto_err *e)
{
	*out = NULL;
	if (s == NULL || strncmp(s, "pkcs11:", 7) != 0)
		return creto_err_set(e, CRETO_EUSAGE, "not a pkcs11: URI");
	size_t len = strnlen(s, CRETO_HSM_URI_MAX + 1);
	if (len > CRETO_HSM_URI_MAX)
		return creto_err_set(e, CRETO_EUSAGE, "pkcs11 URI longer than %d bytes",
				     CRETO_HSM_URI_MAX);
	creto_p11_uri *u = calloc(1, sizeof(*u));
	if (u == NULL)
		return creto_err_set(e, CRETO_EOP, "out of memory");
	const char *p = s + 7;
	size_t plen = len - 7;
	const char *q = memchr(p, '?', plen);
	size_t pathlen = q ? (size_t)(q - p) : plen;
	int rc = parse_component(u, p, pathlen, ';', 0, e);
	if (rc == CRETO_OK && q != NULL)
		rc = parse_component(u, q + 1, plen - pathlen - 1, '&', 1, e);
	if (rc == CRETO_OK && u->pin_source != NULL && u->pin_value != NULL)
		rc = creto_err_set(e, CRETO_EUSAGE,
				   "pkcs11 URI: pin-source and pin-value must not both be given");
	if (rc != CRETO_OK) {
		creto_p11_uri_free(u);
		return rc;
	}
	*out = u;
	return CRETO_OK;
}

void creto_p11_uri_free(creto_p11_uri *u)
{
	if (u == NULL)
		return;
	char **texts[] = {&u->token,	      &u->manufacturer,	    &u->model,
			  &u->serial,	      &u->library_manufacturer, &u->library_description,
			  &u->library_version, &u->slot_description, &u->slot_manufacturer,
			  &u->object,	      &u->module_path,	    &u->module_name,
			  &u->pin_source,     &u->pq_file};
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
		free(*texts[i]);
	if (u->pin_value != NULL) {
		OPENSSL_cleanse(u->pin_value, strlen(u->pin_value));
		free(u->pin_value);
	}
	free(u->id);
	free(u);
}

/* ---- formatting ---- */

struct sbuf {
	char *p;
	size_t len, cap;
	int oom;
};

static void sb_put(struct sbuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = (b->len + n + 1) * 2;
		char *np = realloc(b->p, cap);
		if (np == NULL) {
			b->oom = 1;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_pct(struct sbuf *b, const uint8_t *v, size_t n, int all)
{
	static const char hx[] = "0123456789ABCDEF";
	for (size_t i = 0; i < n; i++) {
		/* '=' and the other reserved characters are legal in a path
		 * value, but encoding everything except unreserved is simpler
		 * for other parsers to accept. */
		if (!all && is_unreserved(v[i])) {
			sb_put(b, (const char *)&v[i], 1);
		} else {
			char t[3] = {'%', hx[v[i] >> 4], hx[v[i] & 15]};
			sb_put(b, t, 3);
		}
	}
}

char *creto_p11_uri_format(const char *token, const char *object, const uint8_t *id,
			   size_t idlen, creto_p11_type type)
{
	struct sbuf b = {0};
	int first = 1;
	sb_put(&b, "pkcs11:", 7);
	if (token != NULL) {
		sb_put(&b, "token=", 6);
		sb_pct(&b, (const uint8_t *)token, strlen(token), 0);
		first = 0;
	}
	if (object != NULL) {
		sb_put(&b, first ? "object=" : ";object=", first ? 7 : 8);
		sb_pct(&b, (const uint8_t *)object, strlen(object), 0);
		first = 0;
	}
	if (id != NULL && idlen > 0) {
		sb_put(&b, first ? "id=" : ";id=", first ? 3 : 4);
		sb_pct(&b, id, idlen, 1);
		first = 0;
	}
	const char *tn = creto_p11_type_name(type);
	if (tn != NULL) {
		sb_put(&b, first ? "type=" : ";type=", first ? 5 : 6);
		sb_put(&b, tn, strlen(tn));
	}
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

int creto_p11_uri_path(const char *uri, char *out, size_t cap, creto_err *e)
{
	if (cap > 0)
		out[0] = '\0';
	creto_p11_uri *u = NULL;
	int rc = creto_p11_uri_parse(uri, &u, e);
	creto_p11_uri_free(u);
	if (rc != CRETO_OK)
		return rc;
	/* The grammar keeps '?' out of the path: the first one starts the
	 * query (module, PIN source or value, vendor attributes). */
	const char *q = strchr(uri, '?');
	size_t n = q != NULL ? (size_t)(q - uri) : strlen(uri);
	if (n >= cap)
		return creto_err_set(e, CRETO_EUSAGE, "pkcs11 URI: path longer than %zu bytes",
				     cap ? cap - 1 : 0);
	memcpy(out, uri, n);
	out[n] = '\0';
	return CRETO_OK;
}
