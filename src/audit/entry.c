/*
 * entry.c - one audit entry as canonical JSON (docs/audit.md "Entries"):
 * the encoder the log writes with, and the strict parser verify reads with.
 *
 * Every string value is the src/util/escape.h text of the caller's bytes,
 * then JSON-escaped; since escape.h output holds no control byte, the only
 * JSON escapes that can occur are \\ and \".  Keys are sorted bytewise, no
 * whitespace, integers only.  Parsing accepts exactly what encoding writes.
 */
#include <stdlib.h>
#include <string.h>

#include "audit/audit_int.h"
#include "util/escape.h"

#define TOKEN_MAX 64
#define FIELDS_MAX 32

/* 1 when s[0..n) is text escape.h passes through unchanged: valid UTF-8
 * (RFC 3629) without control bytes, DEL, C1 controls or backslash. */
static int plain_text(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned c = p[i];
		if (c < 0x80) {
			if (c < 0x20 || c == 0x7f || c == '\\')
				return 0;
			i++;
			continue;
		}
		uint32_t cp;
		size_t need = creto_utf8_len(p + i, n - i, &cp);
		if (need == 0 || cp <= 0x9f)
			return 0;
		i += need;
	}
	return 1;
}

/* ---- encoding ---- */

typedef struct wbuf {
	char *p;
	size_t n, cap;
	int over;
} wbuf;

static void put(wbuf *w, const char *s, size_t n)
{
	if (w->over || n > w->cap - w->n) {
		w->over = 1;
		return;
	}
	memcpy(w->p + w->n, s, n);
	w->n += n;
}

static void puts_(wbuf *w, const char *s)
{
	put(w, s, strlen(s));
}

static void put_int(wbuf *w, int64_t v)
{
	char tmp[24];
	size_t i = sizeof(tmp);
	uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
	do {
		tmp[--i] = (char)('0' + u % 10);
		u /= 10;
	} while (u != 0);
	if (v < 0)
		tmp[--i] = '-';
	put(w, tmp + i, sizeof(tmp) - i);
}

static void put_uint(wbuf *w, uint64_t u)
{
	char tmp[24];
	size_t i = sizeof(tmp);
	do {
		tmp[--i] = (char)('0' + u % 10);
		u /= 10;
	} while (u != 0);
	put(w, tmp + i, sizeof(tmp) - i);
}

/* "escape.h text of s, JSON-escaped" */
static void put_str(wbuf *w, const char *s)
{
	static __thread char scratch[CRETO_AUDIT_ENTRY_MAX];
	size_t len = strlen(s);
	if (len >= sizeof(scratch)) {
		w->over = 1;
		return;
	}
	const char *src = scratch;
	size_t need;
	if (plain_text((const unsigned char *)s, len)) {
		src = s; /* escape.h would copy it unchanged */
		need = len;
	} else {
		need = creto_escape(scratch, sizeof(scratch), s, len);
	}
	if (need >= sizeof(scratch)) {
		w->over = 1;
		return;
	}
	put(w, "\"", 1);
	size_t start = 0;
	for (size_t i = 0; i < need; i++) {
		char c = src[i];
		if (c == '"' || c == '\\') {
			put(w, src + start, i - start);
			put(w, "\\", 1);
			start = i;
		}
	}
	put(w, src + start, need - start);
	put(w, "\"", 1);
}

static int is_token(const char *s, int dots)
{
	size_t n = 0;
	for (; s[n] != '\0'; n++) {
		char c = s[n];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
		      (dots && (c == '-' || c == '.'))))
			return 0;
		if (n >= TOKEN_MAX)
			return 0;
	}
	return n > 0;
}

int aud_entry_encode(const creto_event *ev, uint64_t seq, int64_t time_us, char *out, size_t *len,
		     creto_err *e)
{
	*len = 0;
	const char *need[3] = {ev->component, ev->event, ev->outcome};
	const char *names[3] = {"component", "event", "outcome"};
	for (int i = 0; i < 3; i++)
		if (need[i] == NULL || !is_token(need[i], 1))
			return creto_err_set(e, CRETO_EUSAGE,
					     "audit entry: %s must be 1..%d of [a-z0-9_.-]", names[i],
					     TOKEN_MAX);
	if (time_us < 0)
		return creto_err_set(e, CRETO_EUSAGE, "audit entry: time before 1970");
	if (ev->nfields > FIELDS_MAX || (ev->nfields > 0 && ev->fields == NULL))
		return creto_err_set(e, CRETO_EUSAGE, "audit entry: more than %d fields", FIELDS_MAX);
	size_t order[FIELDS_MAX];
	for (size_t i = 0; i < ev->nfields; i++) {
		const char *k = ev->fields[i].key;
		if (k == NULL || !is_token(k, 0))
			return creto_err_set(e, CRETO_EUSAGE,
					     "audit entry: field %zu: key must be 1..%d of [a-z0-9_]", i,
					     TOKEN_MAX);
		/* insertion sort by key; equal keys are refused */
		size_t j = i;
		while (j > 0) {
			int c = strcmp(ev->fields[order[j - 1]].key, k);
			if (c == 0)
				return creto_err_set(e, CRETO_EUSAGE, "audit entry: field '%s' twice", k);
			if (c < 0)
				break;
			order[j] = order[j - 1];
			j--;
		}
		order[j] = i;
	}

	wbuf w = {out, 0, CRETO_AUDIT_ENTRY_MAX, 0};
	put(&w, "{", 1);
	if (ev->actor != NULL) {
		puts_(&w, "\"actor\":");
		put_str(&w, ev->actor);
		put(&w, ",", 1);
	}
	puts_(&w, "\"component\":");
	put_str(&w, ev->component);
	puts_(&w, ",\"event\":");
	put_str(&w, ev->event);
	if (ev->nfields > 0) {
		puts_(&w, ",\"fields\":{");
		for (size_t i = 0; i < ev->nfields; i++) {
			const creto_event_field *f = &ev->fields[order[i]];
			if (i > 0)
				put(&w, ",", 1);
			put(&w, "\"", 1);
			puts_(&w, f->key);
			puts_(&w, "\":");
			if (f->str != NULL)
				put_str(&w, f->str);
			else
				put_int(&w, f->num);
		}
		put(&w, "}", 1);
	}
	puts_(&w, ",\"outcome\":");
	put_str(&w, ev->outcome);
	if (ev->reason != NULL) {
		puts_(&w, ",\"reason\":");
		put_str(&w, ev->reason);
	}
	puts_(&w, ",\"seq\":");
	put_uint(&w, seq);
	if (ev->subject != NULL) {
		puts_(&w, ",\"subject\":");
		put_str(&w, ev->subject);
	}
	puts_(&w, ",\"time\":");
	put_int(&w, time_us);
	put(&w, "}", 1);
	if (w.over)
		return creto_err_set(e, CRETO_EUSAGE, "audit entry: longer than %d bytes",
				     CRETO_AUDIT_ENTRY_MAX);
	*len = w.n;
	return CRETO_OK;
}

/* ---- parsing ---- */

typedef struct rd {
	const char *p;
	size_t i, n;
	creto_err *e;
} rd;

static int bad(rd *r, const char *what)
{
	return creto_err_set(r->e, CRETO_EREJECT, "entry: %s at byte %zu", what, r->i);
}

static int lit(rd *r, const char *s)
{
	size_t n = strlen(s);
	if (r->n - r->i < n || memcmp(r->p + r->i, s, n) != 0)
		return 0;
	r->i += n;
	return 1;
}

/* A JSON string whose decoded value is canonical escape.h text. */
static int rd_str(rd *r, aud_span *out)
{
	static __thread char dec[CRETO_AUDIT_ENTRY_MAX];
	static __thread char raw[CRETO_AUDIT_ENTRY_MAX];
	static __thread char re[CRETO_AUDIT_ENTRY_MAX];
	if (!lit(r, "\""))
		return bad(r, "expected a string");
	size_t start = r->i, dn = 0;
	/* fast path: no backslash before the closing quote */
	const char *q = memchr(r->p + start, '"', r->n - start);
	if (q != NULL && memchr(r->p + start, '\\', (size_t)(q - (r->p + start))) == NULL) {
		out->p = r->p + start;
		out->n = (size_t)(q - out->p);
		if (!plain_text((const unsigned char *)out->p, out->n))
			return bad(r, "string not in escaped form");
		r->i = start + out->n + 1;
		return 0;
	}
	int plain = 1; /* no backslash in the decoded text (the common case) */
	for (;;) {
		if (r->i >= r->n)
			return bad(r, "unterminated string");
		unsigned char c = (unsigned char)r->p[r->i];
		if (c == '"')
			break;
		if (c < 0x20)
			return bad(r, "control byte in string");
		if (c == '\\') {
			if (r->i + 1 >= r->n || (r->p[r->i + 1] != '\\' && r->p[r->i + 1] != '"'))
				return bad(r, "escape other than \\\\ or \\\"");
			if (r->p[r->i + 1] == '\\')
				plain = 0;
			dec[dn++] = r->p[r->i + 1];
			r->i += 2;
			continue;
		}
		dec[dn++] = (char)c;
		r->i++;
	}
	out->p = r->p + start;
	out->n = r->i - start;
	r->i++; /* closing quote */
	if (plain) {
		/* no backslash in the text: canonical iff escape.h passes it through */
		if (!plain_text((const unsigned char *)dec, dn))
			return bad(r, "string not in escaped form");
		return 0;
	}
	dec[dn] = '\0';
	/* The decoded text must be what creto_escape writes for some bytes. */
	size_t rawn;
	if (creto_unescape(raw, sizeof(raw), dec, &rawn) != 0)
		return bad(r, "malformed \\ escape in string value");
	size_t ren = creto_escape(re, sizeof(re), raw, rawn);
	if (ren != dn || memcmp(re, dec, dn) != 0)
		return bad(r, "string not in escaped form");
	return 0;
}

static int rd_int(rd *r, int64_t *out, int allow_neg)
{
	int neg = 0;
	if (r->i < r->n && r->p[r->i] == '-') {
		if (!allow_neg)
			return bad(r, "negative number");
		neg = 1;
		r->i++;
	}
	if (r->i >= r->n || r->p[r->i] < '0' || r->p[r->i] > '9')
		return bad(r, "expected an integer");
	if (r->p[r->i] == '0' && r->i + 1 < r->n && r->p[r->i + 1] >= '0' && r->p[r->i + 1] <= '9')
		return bad(r, "leading zero");
	if (neg && r->p[r->i] == '0')
		return bad(r, "negative zero");
	uint64_t v = 0;
	size_t digits = 0;
	while (r->i < r->n && r->p[r->i] >= '0' && r->p[r->i] <= '9') {
		unsigned d = (unsigned)(r->p[r->i] - '0');
		if (v > (UINT64_C(9223372036854775808) - d) / 10)
			return bad(r, "integer out of range");
		v = v * 10 + d;
		r->i++;
		digits++;
	}
	if (r->i < r->n && (r->p[r->i] == '.' || r->p[r->i] == 'e' || r->p[r->i] == 'E'))
		return bad(r, "not an integer");
	if (!neg && v > (uint64_t)INT64_MAX)
		return bad(r, "integer out of range");
	*out = neg ? (v == UINT64_C(9223372036854775808) ? INT64_MIN : -(int64_t)v) : (int64_t)v;
	(void)digits;
	return 0;
}

static int is_tok_span(const aud_span *s, int dots)
{
	if (s->n == 0 || s->n > TOKEN_MAX)
		return 0;
	for (size_t i = 0; i < s->n; i++) {
		char c = s->p[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
		      (dots && (c == '-' || c == '.'))))
			return 0;
	}
	return 1;
}

static int rd_fields(rd *r, aud_span *out)
{
	size_t start = r->i;
	if (!lit(r, "{"))
		return bad(r, "fields: expected an object");
	aud_span prev = {NULL, 0};
	size_t count = 0;
	for (;;) {
		if (count > 0 && !lit(r, ","))
			break;
		aud_span k;
		int rc = rd_str(r, &k);
		if (rc)
			return rc;
		if (!is_tok_span(&k, 0))
			return bad(r, "fields: key not of [a-z0-9_]");
		if (prev.p != NULL) {
			size_t m = prev.n < k.n ? prev.n : k.n;
			int c = memcmp(prev.p, k.p, m);
			if (c > 0 || (c == 0 && prev.n >= k.n))
				return bad(r, "fields: keys not in strictly ascending order");
		}
		prev = k;
		if (!lit(r, ":"))
			return bad(r, "fields: expected ':'");
		if (r->i < r->n && r->p[r->i] == '"') {
			aud_span v;
			rc = rd_str(r, &v);
		} else {
			int64_t v;
			rc = rd_int(r, &v, 1);
		}
		if (rc)
			return rc;
		if (++count > FIELDS_MAX)
			return bad(r, "fields: too many");
	}
	if (count == 0)
		return bad(r, "fields: empty object");
	if (!lit(r, "}"))
		return bad(r, "fields: expected '}'");
	out->p = r->p + start;
	out->n = r->i - start;
	return 0;
}

enum { K_ACTOR, K_COMPONENT, K_EVENT, K_FIELDS, K_OUTCOME, K_REASON, K_SEQ, K_SUBJECT, K_TIME, K_N };
static const char *const keys[K_N] = {"\"actor\":",  "\"component\":", "\"event\":",
				      "\"fields\":", "\"outcome\":",   "\"reason\":",
				      "\"seq\":",    "\"subject\":",   "\"time\":"};
static const size_t key_len[K_N] = {8, 12, 8, 9, 10, 9, 6, 10, 7};

int aud_entry_parse(const char *buf, size_t len, aud_entry *out, creto_err *e)
{
	memset(out, 0, sizeof(*out));
	if (len > CRETO_AUDIT_ENTRY_MAX)
		return creto_err_set(e, CRETO_EREJECT, "entry: %zu bytes, over %d", len,
				     CRETO_AUDIT_ENTRY_MAX);
	rd r = {buf, 0, len, e};
	if (!lit(&r, "{"))
		return bad(&r, "expected '{'");
	int next = 0; /* keys must appear in table order */
	unsigned seen = 0;
	for (;;) {
		if (seen != 0 && !lit(&r, ","))
			break;
		int k = -1;
		for (int i = next; i < K_N && k < 0; i++) {
			size_t pn = key_len[i];
			if (r.n - r.i >= pn && memcmp(r.p + r.i, keys[i], pn) == 0) {
				r.i += pn;
				k = i;
			}
		}
		if (k < 0)
			return bad(&r, "unknown, repeated or misordered key");
		next = k + 1;
		seen |= 1u << k;
		int rc = 0;
		int64_t v;
		switch (k) {
		case K_ACTOR: rc = rd_str(&r, &out->actor); break;
		case K_COMPONENT: rc = rd_str(&r, &out->component); break;
		case K_EVENT: rc = rd_str(&r, &out->event); break;
		case K_FIELDS: rc = rd_fields(&r, &out->fields); break;
		case K_OUTCOME: rc = rd_str(&r, &out->outcome); break;
		case K_REASON: rc = rd_str(&r, &out->reason); break;
		case K_SEQ:
			rc = rd_int(&r, &v, 0);
			out->seq = (uint64_t)v;
			break;
		case K_SUBJECT: rc = rd_str(&r, &out->subject); break;
		default:
			rc = rd_int(&r, &v, 0);
			out->time_us = v;
			break;
		}
		if (rc)
			return rc;
	}
	if (!lit(&r, "}"))
		return bad(&r, "expected ',' or '}'");
	if (r.i != len)
		return bad(&r, "trailing bytes");
	unsigned req = (1u << K_COMPONENT) | (1u << K_EVENT) | (1u << K_OUTCOME) | (1u << K_SEQ) |
		       (1u << K_TIME);
	if ((seen & req) != req)
		return creto_err_set(e, CRETO_EREJECT,
				     "entry: missing one of component, event, outcome, seq, time");
	if (!is_tok_span(&out->component, 1) || !is_tok_span(&out->event, 1) ||
	    !is_tok_span(&out->outcome, 1))
		return creto_err_set(e, CRETO_EREJECT,
				     "entry: component, event and outcome must be of [a-z0-9_.-]");
	return CRETO_OK;
}

void aud_span_text(const aud_span *s, char *out, size_t outsz)
{
	size_t o = 0;
	if (outsz == 0)
		return;
	for (size_t i = 0; i < s->n && o + 1 < outsz; i++) {
		char c = s->p[i];
		if (c == '\\' && i + 1 < s->n)
			c = s->p[++i];
		out[o++] = c;
	}
	out[o] = '\0';
}
