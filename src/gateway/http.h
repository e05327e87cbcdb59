/*
 * http.h - the gateway's strict HTTP/1.1 message parsers (docs/gateway.md
 * "HTTP"): request heads from clients, response heads from replicas, and an
 * incremental chunked-body decoder.  Nothing here allocates; results point
 * into the caller's buffer.  Everything that could let two parsers disagree
 * about where a message ends is refused (CL+TE, duplicate or malformed
 * Content-Length, obs-fold, bare LF, whitespace before the colon).
 */
#ifndef CRETO_GATEWAY_HTTP_H
#define CRETO_GATEWAY_HTTP_H

#include <stddef.h>
#include <stdint.h>

#define GW_HTTP_AGAIN 1 /* the head is not complete yet */

typedef enum gw_method { GW_M_OTHER = 0, GW_M_GET, GW_M_POST, GW_M_HEAD } gw_method;

typedef struct gw_http_limits {
	size_t line_max;   /* request line bytes (414 above) */
	size_t head_max;   /* request line + headers bytes (431 above) */
	size_t headers_max;/* header count (431 above) */
	uint64_t body_max; /* Content-Length (413 above) */
} gw_http_limits;

typedef struct gw_http_req {
	gw_method method;
	const char *target;
	size_t target_len;
	int minor;               /* HTTP/1.<minor>: 0 or 1 */
	size_t head_len;         /* bytes up to and including the empty line */
	int64_t content_length;  /* -1: none */
	int keep_alive;          /* after this request (version default, Connection) */
	int expect_continue;     /* Expect: 100-continue */
	const char *auth;        /* Authorization value, or NULL */
	size_t auth_len;
	const char *ctype;       /* Content-Type value, or NULL (a second one is refused) */
	size_t ctype_len;
	const char *reason;      /* why the head was refused (static text) */
} gw_http_req;

/* Parse a request head from buf[0..len).  0: complete (*r filled);
 * GW_HTTP_AGAIN: need more bytes (len still within the limits); otherwise
 * the HTTP status to refuse with (400, 413, 414, 431, 501, 505) and
 * r->reason.  Never reads beyond len. */
int gw_http_parse_request(const char *buf, size_t len, const gw_http_limits *lim, gw_http_req *r);

typedef struct gw_http_resp {
	int status;
	size_t head_len;
	int64_t content_length; /* -1: none */
	int chunked;
	int keep_alive;
	int event_stream;       /* Content-Type: text/event-stream */
	const char *content_type;
	size_t content_type_len;
	const char *reason;
} gw_http_resp;

/* Parse a response head (from a replica) of at most max bytes: 0, GW_HTTP_AGAIN
 * or -1 (r->reason). */
int gw_http_parse_response(const char *buf, size_t len, size_t max, gw_http_resp *r);

/* Incremental chunked decoder; zero-initialise. */
typedef struct gw_chunked {
	int state;
	uint64_t left;   /* bytes of chunk data still to come */
	size_t linelen;  /* bytes of the current size/trailer line */
	int done;        /* the last chunk and trailers were read */
} gw_chunked;

/* Decode buf[0..len) in place: the data bytes are moved to the start of buf
 * and their count returned in *out; *used gets the input consumed (it stops
 * after the end of the body, leaving what follows).  0, or -1 on a framing
 * error. */
int gw_chunked_decode(gw_chunked *d, char *buf, size_t len, size_t *out, size_t *used);

#endif
