/*
 * jsonscan.c - strict, allocation-free reading of one JSON object
 * (RFC 8259); see jsonscan.h.  Every input byte is untrusted: the cursor
 * never reads past len, and every refusal names its byte offset.
 */
#include "util/jsonscan.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NAME_MAX_DECODED 255 /* bytes of any one member name, decoded */

typedef struct {
	const unsigned char *b;
	size_t len, i;
	const char *why; /* reason of the first refusal */
	int limit;       /* the refusal is a limit, not bad JSON */
	int dup;         /* the refusal is a duplicate name */
	size_t at;       /* its byte offset */
} cur;

static int bad(cur *c, const char *why)
{
	c->why = why;
	c->at = c->i;
	return -1;
}

static int over(cur *c, const char *why)
{
	c->limit = 1;
	return bad(c, why);
}

static void ws(cur *c)
{
	while (c->i < c->len) {
		unsigned char ch = c->b[c->i];
		if (ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r')
			break;
		c->i++;
	}
}

/* Length of the well-formed UTF-8 sequence at p (Unicode 15, table 3-7),
 * 0 if there is none. */
static size_t utf8_seq(const unsigned char *p, size_t avail)
{
	unsigned b0 = p[0];
	size_t n;
	unsigned lo = 0x80, hi = 0xbf;
	if (b0 >= 0xc2 && b0 <= 0xdf)
		n = 2;
	else if (b0 >= 0xe0 && b0 <= 0xef) {
		n = 3;
		if (b0 == 0xe0)
			lo = 0xa0; /* overlong */
		else if (b0 == 0xed)
			hi = 0x9f; /* UTF-16 surrogates */
	} else if (b0 >= 0xf0 && b0 <= 0xf4) {
		n = 4;
		if (b0 == 0xf0)
			lo = 0x90; /* overlong */
		else if (b0 == 0xf4)
			hi = 0x8f; /* above U+10FFFF */
	} else
		return 0;
	if (avail < n || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t k = 2; k < n; k++)
		if (p[k] < 0x80 || p[k] > 0xbf)
			return 0;
	return n;
}

static long hex4(cur *c)
{
	if (c->len - c->i < 4)
		return -1;
	long v = 0;
	for (int k = 0; k < 4; k++) {
		unsigned ch = c->b[c->i + (size_t)k];
		int d;
		if (ch >= '0' && ch <= '9')
			d = (int)(ch - '0');
		else if (ch >= 'a' && ch <= 'f')
			d = (int)(ch - 'a' + 10);
		else if (ch >= 'A' && ch <= 'F')
			d = (int)(ch - 'A' + 10);
		else
			return -1;
		v = v << 4 | d;
	}
	c->i += 4;
	return v;
}

static size_t utf8_put(char *out, unsigned long cp)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | cp >> 12);
		out[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | cp >> 18);
	out[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	out[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* The string at the cursor (on its opening quote): validated, and decoded
 * into out when out is not NULL (the decoded form is never longer than the
 * text).  *n is the decoded length. */
static int string(cur *c, char *out, size_t *n)
{
	size_t o = 0;
	c->i++;
	for (;;) {
		if (c->i >= c->len)
			return bad(c, "unterminated string");
		unsigned ch = c->b[c->i];
		if (ch == '"') {
			c->i++;
			break;
		}
		if (ch < 0x20)
			return bad(c, "control character in a string");
		if (ch >= 0x80) {
			size_t k = utf8_seq(c->b + c->i, c->len - c->i);
			if (k == 0)
				return bad(c, "invalid UTF-8");
			if (out)
				memcpy(out + o, c->b + c->i, k);
			o += k;
			c->i += k;
			continue;
		}
		if (ch != '\\') {
			if (out)
				out[o] = (char)ch;
			o++;
			c->i++;
			continue;
		}
		if (c->i + 1 >= c->len)
			return bad(c, "unterminated string");
		char d;
		switch (c->b[c->i + 1]) {
		case '"': d = '"'; break;
		case '\\': d = '\\'; break;
		case '/': d = '/'; break;
		case 'b': d = '\b'; break;
		case 'f': d = '\f'; break;
		case 'n': d = '\n'; break;
		case 'r': d = '\r'; break;
		case 't': d = '\t'; break;
		case 'u': {
			c->i += 2;
			long cp = hex4(c);
			if (cp < 0)
				return bad(c, "bad \\u escape");
			if (cp >= 0xdc00 && cp <= 0xdfff)
				return bad(c, "lone UTF-16 low surrogate");
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (c->len - c->i < 2 || c->b[c->i] != '\\' || c->b[c->i + 1] != 'u')
					return bad(c, "lone UTF-16 high surrogate");
				c->i += 2;
				long lo = hex4(c);
				if (lo < 0)
					return bad(c, "bad \\u escape");
				if (lo < 0xdc00 || lo > 0xdfff)
					return bad(c, "invalid UTF-16 surrogate pair");
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			}
			if (cp == 0)
				return bad(c, "\\u0000 in a string");
			char tmp[4];
			size_t k = utf8_put(out ? out + o : tmp, (unsigned long)cp);
			o += k;
			continue;
		}
		default:
			c->i++;
			return bad(c, "bad escape");
		}
		if (out)
			out[o] = d;
		o++;
		c->i += 2;
	}
	*n = o;
	return 0;
}

static int isdig(const cur *c)
{
	return c->i < c->len && c->b[c->i] >= '0' && c->b[c->i] <= '9';
}

/* A number: the grammar of RFC 8259 6; an integer must fit int64 and a
 * real must be finite (what jansson refuses as "too big"). */
static int number(cur *c, creto_json_type *t)
{
	size_t s = c->i;
	int neg = 0, real = 0;
	if (c->b[c->i] == '-') {
		neg = 1;
		c->i++;
	}
	if (!isdig(c))
		return bad(c, "invalid number");
	if (c->b[c->i] == '0')
		c->i++;
	else
		while (isdig(c))
			c->i++;
	if (c->i < c->len && c->b[c->i] == '.') {
		c->i++;
		real = 1;
		if (!isdig(c))
			return bad(c, "invalid number");
		while (isdig(c))
			c->i++;
	}
	if (c->i < c->len && (c->b[c->i] == 'e' || c->b[c->i] == 'E')) {
		c->i++;
		real = 1;
		if (c->i < c->len && (c->b[c->i] == '+' || c->b[c->i] == '-'))
			c->i++;
		if (!isdig(c))
			return bad(c, "invalid number");
		while (isdig(c))
			c->i++;
	}
	size_t n = c->i - s;
	if (n > CRETO_JSON_NUMBER_MAX) {
		c->i = s;
		return over(c, "number longer than 256 characters");
	}
	if (!real) {
		/* magnitude against 2^63 - 1, or 2^63 when negative */
		uint64_t v = 0, cap = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
		for (size_t k = s + (size_t)neg; k < c->i; k++) {
			unsigned d = c->b[k] - '0';
			if (v > (cap - d) / 10) {
				c->i = s;
				return bad(c, "integer out of range");
			}
			v = v * 10 + d;
		}
		*t = CRETO_JSON_INTEGER;
		return 0;
	}
	char buf[CRETO_JSON_NUMBER_MAX + 1];
	memcpy(buf, c->b + s, n);
	buf[n] = 0;
	errno = 0;
	double d = strtod(buf, NULL);
	if (errno == ERANGE && isinf(d)) {
		c->i = s;
		return bad(c, "real number out of range");
	}
	*t = CRETO_JSON_REAL;
	return 0;
}

static int literal(cur *c, const char *w, size_t n)
{
	if (c->len - c->i < n || memcmp(c->b + c->i, w, n) != 0)
		return bad(c, "invalid token");
	c->i += n;
	return 0;
}

/* Two member names, given as validated string texts (quotes included)
 * whose decoded forms are at most NAME_MAX_DECODED bytes: equal once
 * decoded? */
static int names_equal(const unsigned char *a, size_t an, const unsigned char *b, size_t bn)
{
	if (memchr(a, '\\', an) == NULL && memchr(b, '\\', bn) == NULL)
		return an == bn && memcmp(a, b, an) == 0;
	char da[NAME_MAX_DECODED], db[NAME_MAX_DECODED];
	cur x = {a, an, 0, NULL, 0, 0, 0}, y = {b, bn, 0, NULL, 0, 0, 0};
	size_t na = 0, nb = 0;
	(void)string(&x, da, &na);
	(void)string(&y, db, &nb);
	return na == nb && memcmp(da, db, na) == 0;
}

static int value(cur *c, int depth, creto_json_type *t);

typedef struct {
	size_t at, n; /* the name's text in the input, quotes included */
} name_span;

/* The object at the cursor (on '{'); top is filled for the outermost. */
static int object(cur *c, int depth, creto_json_object *top)
{
	if (depth >= CRETO_JSON_DEPTH_MAX)
		return over(c, "nested deeper than 32");
	name_span names[CRETO_JSON_MEMBERS_MAX];
	size_t nm = 0, used = 0;
	c->i++;
	ws(c);
	if (c->i < c->len && c->b[c->i] == '}') {
		c->i++;
		return 0;
	}
	for (;;) {
		if (c->i >= c->len || c->b[c->i] != '"')
			return bad(c, "member name expected");
		if (nm == CRETO_JSON_MEMBERS_MAX)
			return over(c, "more than 64 members in an object");
		size_t s = c->i, dn = 0;
		if (string(c, NULL, &dn) != 0)
			return -1;
		if (dn > NAME_MAX_DECODED) {
			c->i = s;
			return over(c, "member name longer than 255 bytes");
		}
		for (size_t k = 0; k < nm; k++)
			if (names_equal(c->b + names[k].at, names[k].n, c->b + s, c->i - s)) {
				c->i = s;
				c->dup = 1;
				return bad(c, "duplicate JSON key");
			}
		names[nm].at = s;
		names[nm].n = c->i - s;
		if (top != NULL) {
			if (used + dn > CRETO_JSON_NAMES_MAX) {
				c->i = s;
				return over(c, "member names longer than 1024 bytes in total");
			}
			cur d = {c->b + s, c->i - s, 0, NULL, 0, 0, 0};
			(void)string(&d, top->names + used, &dn);
			top->m[nm].name_off = (uint16_t)used;
			top->m[nm].name_len = (uint16_t)dn;
			used += dn;
		}
		nm++;
		ws(c);
		if (c->i >= c->len || c->b[c->i] != ':')
			return bad(c, "':' expected");
		c->i++;
		ws(c);
		size_t vs = c->i;
		creto_json_type vt;
		if (value(c, depth + 1, &vt) != 0)
			return -1;
		if (top != NULL) {
			top->m[nm - 1].v.type = vt;
			top->m[nm - 1].v.p = (const char *)c->b + vs;
			top->m[nm - 1].v.n = c->i - vs;
			top->n = nm;
		}
		ws(c);
		if (c->i < c->len && c->b[c->i] == ',') {
			c->i++;
			ws(c);
			continue;
		}
		if (c->i < c->len && c->b[c->i] == '}') {
			c->i++;
			return 0;
		}
		return bad(c, "',' or '}' expected");
	}
}

static int array(cur *c, int depth)
{
	if (depth >= CRETO_JSON_DEPTH_MAX)
		return over(c, "nested deeper than 32");
	c->i++;
	ws(c);
	if (c->i < c->len && c->b[c->i] == ']') {
		c->i++;
		return 0;
	}
	for (;;) {
		creto_json_type t;
		if (value(c, depth + 1, &t) != 0)
			return -1;
		ws(c);
		if (c->i < c->len && c->b[c->i] == ',') {
			c->i++;
			ws(c);
			continue;
		}
		if (c->i < c->len && c->b[c->i] == ']') {
			c->i++;
			return 0;
		}
		return bad(c, "',' or ']' expected");
	}
}

static int value(cur *c, int depth, creto_json_type *t)
{
	size_t n;
	if (c->i >= c->len)
		return bad(c, "value expected");
	switch (c->b[c->i]) {
	case '"':
		*t = CRETO_JSON_STRING;
		return string(c, NULL, &n);
	case '{':
		*t = CRETO_JSON_OBJECT;
		return object(c, depth, NULL);
	case '[':
		*t = CRETO_JSON_ARRAY;
		return array(c, depth);
	case 't':
		*t = CRETO_JSON_TRUE;
		return literal(c, "true", 4);
	case 'f':
		*t = CRETO_JSON_FALSE;
		return literal(c, "false", 5);
	case 'n':
		*t = CRETO_JSON_NULL;
		return literal(c, "null", 4);
	default:
		if (c->b[c->i] == '-' || (c->b[c->i] >= '0' && c->b[c->i] <= '9'))
			return number(c, t);
		return bad(c, "invalid token");
	}
}

int creto_json_object_scan(const char *what, const char *text, size_t len, creto_json_object *o,
			   creto_err *e)
{
	cur c = {(const unsigned char *)text, len, 0, NULL, 0, 0, 0};
	o->n = 0;
	ws(&c);
	if (c.i >= c.len || c.b[c.i] != '{')
		return creto_err_set(e, CRETO_EREJECT, "%s: not a JSON object", what);
	int rc = object(&c, 0, o);
	if (rc == 0) {
		ws(&c);
		if (c.i != c.len)
			rc = bad(&c, "data after the object");
	}
	if (rc == 0)
		return CRETO_OK;
	o->n = 0;
	if (c.dup)
		return creto_err_set(e, CRETO_EREJECT, "%s: duplicate JSON key at byte %zu", what, c.at);
	return creto_err_set(e, CRETO_EREJECT, "%s: %s: %s at byte %zu", what,
			     c.limit ? "JSON over the limit" : "invalid JSON", c.why, c.at);
}

const creto_json_value *creto_json_get(const creto_json_object *o, const char *name)
{
	size_t n = strlen(name);
	for (size_t k = 0; k < o->n; k++)
		if (o->m[k].name_len == n && memcmp(o->names + o->m[k].name_off, name, n) == 0)
			return &o->m[k].v;
	return NULL;
}

int creto_json_string(const creto_json_value *v, char *buf, size_t cap, size_t *len)
{
	if (v == NULL || v->type != CRETO_JSON_STRING)
		return -1;
	cur c = {(const unsigned char *)v->p, v->n, 0, NULL, 0, 0, 0};
	size_t n = 0;
	/* the text was validated by the scan; decode in place only when it
	 * surely fits (the decoded form is at most the text less its quotes) */
	if (v->n - 2 < cap) {
		if (string(&c, buf, &n) != 0)
			return -1;
	} else if (string(&c, NULL, &n) != 0 || n >= cap) {
		if (len)
			*len = n;
		return -1;
	} else {
		c.i = 0;
		(void)string(&c, buf, &n);
	}
	buf[n] = 0;
	if (len)
		*len = n;
	return 0;
}

int creto_json_int64(const creto_json_value *v, int64_t *out)
{
	if (v == NULL || v->type != CRETO_JSON_INTEGER)
		return -1;
	/* validated and in range: plain accumulation, negative side kept so
	 * INT64_MIN needs no special case */
	size_t k = v->p[0] == '-';
	int64_t x = 0;
	for (; k < v->n; k++)
		x = x * 10 - (v->p[k] - '0');
	*out = v->p[0] == '-' ? x : -x;
	return 0;
}

int creto_json_array_next(const creto_json_value *v, size_t *pos, creto_json_value *elem)
{
	if (v == NULL || v->type != CRETO_JSON_ARRAY)
		return 0;
	cur c = {(const unsigned char *)v->p, v->n, *pos, NULL, 0, 0, 0};
	if (c.i == 0)
		c.i = 1; /* past '[' */
	ws(&c);
	if (c.i >= c.len || c.b[c.i] == ']')
		return 0;
	if (c.b[c.i] == ',') {
		c.i++;
		ws(&c);
	}
	size_t s = c.i;
	/* validated already: depth 0 here cannot exceed the limit again */
	if (value(&c, 0, &elem->type) != 0)
		return 0;
	elem->p = v->p + s;
	elem->n = c.i - s;
	*pos = c.i;
	return 1;
}
