/*
 * http.c - strict HTTP/1.1 head parsers and the chunked decoder (see
 * http.h).  The parsers take the whole head at once from a buffer the
 * caller grows; they never allocate and never read past len.
 */
#include "gateway/http.h"

#include <string.h>
#include <strings.h>

/* RFC 9110 tchar */
static int tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* field-vchar, SP, HTAB (obs-text allowed, controls refused) */
static int vchar(unsigned char c)
{
	return c == '\t' || (c >= ' ' && c != 0x7f);
}

static int ieq(const char *a, size_t n, const char *lit)
{
	return strlen(lit) == n && strncasecmp(a, lit, n) == 0;
}

/* Does the comma-separated list v contain token tok (case-insensitive)? */
static int list_has(const char *v, size_t n, const char *tok)
{
	size_t i = 0;
	while (i < n) {
		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		size_t s = i;
		while (i < n && v[i] != ',')
			i++;
		size_t e = i;
		while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (e > s && ieq(v + s, e - s, tok))
			return 1;
	}
	return 0;
}

/* 1*DIGIT, at most 18 digits (so no overflow). */
static int parse_len(const char *v, size_t n, int64_t *out)
{
	if (n == 0 || n > 18)
		return -1;
	int64_t x = 0;
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		x = x * 10 + (v[i] - '0');
	}
	*out = x;
	return 0;
}

struct hdr_cb {
	const char *name;
	size_t nlen;
	const char *val;
	size_t vlen;
};

/* Split one header line [p, end) (no CRLF) into name and trimmed value. */
static int header_line(const char *p, const char *end, struct hdr_cb *h)
{
	const char *c = p;
	while (c < end && tchar((unsigned char)*c))
		c++;
	if (c == p || c == end || *c != ':')
		return -1; /* empty name, no colon, or whitespace before the colon */
	h->name = p;
	h->nlen = (size_t)(c - p);
	c++;
	while (c < end && (*c == ' ' || *c == '\t'))
		c++;
	const char *ve = end;
	while (ve > c && (ve[-1] == ' ' || ve[-1] == '\t'))
		ve--;
	for (const char *q = c; q < ve; q++)
		if (!vchar((unsigned char)*q))
			return -1;
	h->val = c;
	h->vlen = (size_t)(ve - c);
	return 0;
}

/* Find the end of the head: the first CRLFCRLF.  A bare LF anywhere in the
 * head is refused (a parser accepting it could be made to disagree with
 * one that does not).  Returns the head length, 0 when incomplete, -1 on
 * a bare LF or a NUL. */
static long head_end(const char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		char c = buf[i];
		if (c == '\0')
			return -1;
		if (c == '\n') {
			if (i == 0 || buf[i - 1] != '\r')
				return -1;
			if (i >= 3 && buf[i - 2] == '\n' && buf[i - 3] == '\r')
				return (long)(i + 1);
		}
	}
	return 0;
}

static int refuse(gw_http_req *r, int status, const char *why)
{
	r->reason = why;
	return status;
}

int gw_http_parse_request(const char *buf, size_t len, const gw_http_limits *lim, gw_http_req *r)
{
	memset(r, 0, sizeof(*r));
	r->content_length = -1;
	/* Tolerate nothing before the request line: RFC 9112 allows skipping
	 * empty lines, but a strict gateway refuses them. */
	const char *nl = memchr(buf, '\n', len);
	size_t first = nl ? (size_t)(nl - buf) : len;
	if (first > lim->line_max)
		return refuse(r, 414, "request line too long");
	long he = head_end(buf, len < lim->head_max ? len : lim->head_max);
	if (he < 0)
		return refuse(r, 400, "bare LF or NUL in the request head");
	if (he == 0)
		return len > lim->head_max ? refuse(r, 431, "request head too large") : GW_HTTP_AGAIN;
	size_t hl = (size_t)he;
	r->head_len = hl;
	/* request line: method SP target SP HTTP/1.x CRLF */
	const char *p = buf, *le = buf + first - 1; /* le at the CR */
	const char *sp1 = p;
	while (sp1 < le && tchar((unsigned char)*sp1))
		sp1++;
	if (sp1 == p || sp1 >= le || *sp1 != ' ')
		return refuse(r, 400, "malformed request line");
	size_t mlen = (size_t)(sp1 - p);
	if (mlen == 3 && memcmp(p, "GET", 3) == 0)
		r->method = GW_M_GET;
	else if (mlen == 4 && memcmp(p, "POST", 4) == 0)
		r->method = GW_M_POST;
	else if (mlen == 4 && memcmp(p, "HEAD", 4) == 0)
		r->method = GW_M_HEAD;
	else
		r->method = GW_M_OTHER;
	const char *t = sp1 + 1, *te = t;
	while (te < le && *te > ' ' && *te != 0x7f)
		te++;
	if (te == t || te >= le || *te != ' ' || t[0] != '/')
		return refuse(r, 400, "malformed request target");
	r->target = t;
	r->target_len = (size_t)(te - t);
	const char *v = te + 1;
	if (le - v != 8 || memcmp(v, "HTTP/1.", 7) != 0)
		return refuse(r, (le - v == 8 && memcmp(v, "HTTP/", 5) == 0) ? 505 : 400,
			      "malformed HTTP version");
	if (v[7] == '1')
		r->minor = 1;
	else if (v[7] == '0')
		r->minor = 0;
	else
		return refuse(r, 505, "HTTP version not supported");
	int conn_close = 0, conn_keep = 0, have_host = 0, have_te = 0;
	size_t nh = 0;
	p = buf + first + 1;
	const char *end = buf + hl - 2; /* the final CRLF */
	while (p < end) {
		const char *e = memchr(p, '\r', (size_t)(end - p) + 1);
		if (e == NULL || e[1] != '\n')
			return refuse(r, 400, "malformed header");
		if (*p == ' ' || *p == '\t')
			return refuse(r, 400, "obsolete line folding");
		if (++nh > lim->headers_max)
			return refuse(r, 431, "too many headers");
		struct hdr_cb h;
		if (header_line(p, e, &h) != 0)
			return refuse(r, 400, "malformed header");
		if (ieq(h.name, h.nlen, "content-length")) {
			int64_t cl;
			if (r->content_length >= 0)
				return refuse(r, 400, "duplicate Content-Length");
			if (parse_len(h.val, h.vlen, &cl) != 0)
				return refuse(r, 400, "malformed Content-Length");
			r->content_length = cl;
		} else if (ieq(h.name, h.nlen, "transfer-encoding")) {
			have_te = 1;
		} else if (ieq(h.name, h.nlen, "host")) {
			if (have_host++)
				return refuse(r, 400, "duplicate Host");
		} else if (ieq(h.name, h.nlen, "connection")) {
			conn_close |= list_has(h.val, h.vlen, "close");
			conn_keep |= list_has(h.val, h.vlen, "keep-alive");
		} else if (ieq(h.name, h.nlen, "authorization")) {
			if (r->auth != NULL)
				return refuse(r, 400, "duplicate Authorization");
			r->auth = h.val;
			r->auth_len = h.vlen;
		} else if (ieq(h.name, h.nlen, "content-type")) {
			if (r->ctype != NULL)
				return refuse(r, 400, "duplicate Content-Type");
			r->ctype = h.val;
			r->ctype_len = h.vlen;
		} else if (ieq(h.name, h.nlen, "expect")) {
			if (!ieq(h.val, h.vlen, "100-continue"))
				return refuse(r, 417, "unsupported Expect");
			r->expect_continue = 1;
		}
		p = e + 2;
	}
	if (have_te && r->content_length >= 0)
		return refuse(r, 400, "both Content-Length and Transfer-Encoding");
	if (have_te)
		return refuse(r, 501, "Transfer-Encoding in a request is not supported");
	if (r->minor == 1 && !have_host)
		return refuse(r, 400, "missing Host");
	if (r->content_length > 0 && (uint64_t)r->content_length > lim->body_max)
		return refuse(r, 413, "request body too large");
	r->keep_alive = r->minor == 1 ? !conn_close : (conn_keep && !conn_close);
	return 0;
}

int gw_http_parse_response(const char *buf, size_t len, size_t max, gw_http_resp *r)
{
	memset(r, 0, sizeof(*r));
	r->content_length = -1;
	long he = head_end(buf, len < max ? len : max);
	if (he < 0 || (he == 0 && len > max)) {
		r->reason = he < 0 ? "bare LF or NUL in the response head" : "response head too large";
		return -1;
	}
	if (he == 0)
		return GW_HTTP_AGAIN;
	r->head_len = (size_t)he;
	const char *nl = memchr(buf, '\n', (size_t)he);
	/* "HTTP/1.x NNN " or "HTTP/1.x NNN" CRLF */
	size_t ll = (size_t)(nl - buf) - 1;
	if (ll < 12 || memcmp(buf, "HTTP/1.", 7) != 0 || (buf[7] != '0' && buf[7] != '1') ||
	    buf[8] != ' ' || buf[9] < '1' || buf[9] > '5' || buf[10] < '0' || buf[10] > '9' ||
	    buf[11] < '0' || buf[11] > '9' || (ll > 12 && buf[12] != ' ')) {
		r->reason = "malformed status line";
		return -1;
	}
	r->status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
	int minor = buf[7] - '0', conn_close = 0, conn_keep = 0, te = 0;
	const char *p = nl + 1, *end = buf + he - 2;
	while (p < end) {
		const char *e = memchr(p, '\r', (size_t)(end - p) + 1);
		struct hdr_cb h;
		if (e == NULL || e[1] != '\n' || *p == ' ' || *p == '\t' || header_line(p, e, &h) != 0) {
			r->reason = "malformed response header";
			return -1;
		}
		if (ieq(h.name, h.nlen, "content-length")) {
			int64_t cl;
			if (r->content_length >= 0 || parse_len(h.val, h.vlen, &cl) != 0) {
				r->reason = "bad or duplicate Content-Length";
				return -1;
			}
			r->content_length = cl;
		} else if (ieq(h.name, h.nlen, "transfer-encoding")) {
			if (te++ || !ieq(h.val, h.vlen, "chunked")) {
				r->reason = "unsupported Transfer-Encoding";
				return -1;
			}
			r->chunked = 1;
		} else if (ieq(h.name, h.nlen, "connection")) {
			conn_close |= list_has(h.val, h.vlen, "close");
			conn_keep |= list_has(h.val, h.vlen, "keep-alive");
		} else if (ieq(h.name, h.nlen, "content-type")) {
			r->content_type = h.val;
			r->content_type_len = h.vlen;
			r->event_stream = h.vlen >= 17 && strncasecmp(h.val, "text/event-stream", 17) == 0;
		}
		p = e + 2;
	}
	if (r->chunked && r->content_length >= 0) {
		r->reason = "both Content-Length and Transfer-Encoding";
		return -1;
	}
	r->keep_alive = minor == 1 ? !conn_close : (conn_keep && !conn_close);
	return 0;
}

enum { CK_SIZE = 0, CK_EXT, CK_SIZE_LF, CK_DATA, CK_DATA_CR, CK_DATA_LF, CK_TRAILER, CK_TRAILER_LF };

#define CK_LINE_MAX 4096

int gw_chunked_decode(gw_chunked *d, char *buf, size_t len, size_t *out, size_t *used)
{
	size_t i = 0, o = 0;
	while (i < len && !d->done) {
		unsigned char c = (unsigned char)buf[i];
		switch (d->state) {
		case CK_SIZE: {
			int v = -1;
			if (c >= '0' && c <= '9')
				v = c - '0';
			else if (c >= 'a' && c <= 'f')
				v = c - 'a' + 10;
			else if (c >= 'A' && c <= 'F')
				v = c - 'A' + 10;
			if (v >= 0) {
				if (d->left >> 56)
					return -1; /* too large */
				d->left = d->left * 16 + (uint64_t)v;
				d->linelen++;
			} else if (d->linelen == 0) {
				return -1;
			} else if (c == ';') {
				d->state = CK_EXT;
			} else if (c == '\r') {
				d->state = CK_SIZE_LF;
			} else {
				return -1;
			}
			i++;
			break;
		}
		case CK_EXT:
			if (c == '\r')
				d->state = CK_SIZE_LF;
			else if (c == '\n' || ++d->linelen > CK_LINE_MAX)
				return -1;
			i++;
			break;
		case CK_SIZE_LF:
			if (c != '\n')
				return -1;
			i++;
			d->linelen = 0;
			d->state = d->left ? CK_DATA : CK_TRAILER;
			break;
		case CK_DATA: {
			size_t n = len - i;
			if (n > d->left)
				n = (size_t)d->left;
			memmove(buf + o, buf + i, n);
			o += n;
			i += n;
			d->left -= n;
			if (d->left == 0)
				d->state = CK_DATA_CR;
			break;
		}
		case CK_DATA_CR:
			if (c != '\r')
				return -1;
			i++;
			d->state = CK_DATA_LF;
			break;
		case CK_DATA_LF:
			if (c != '\n')
				return -1;
			i++;
			d->state = CK_SIZE;
			break;
		case CK_TRAILER:
			/* trailer fields are read and dropped; an empty line ends the body */
			if (c == '\r') {
				d->state = CK_TRAILER_LF;
			} else if (c == '\n' || ++d->linelen > CK_LINE_MAX) {
				return -1;
			}
			i++;
			break;
		case CK_TRAILER_LF:
			if (c != '\n')
				return -1;
			i++;
			if (d->linelen == 0)
				d->done = 1;
			d->linelen = 0;
			d->state = CK_TRAILER;
			break;
		default:
			return -1;
		}
	}
	*out = o;
	*used = i;
	return 0;
}
