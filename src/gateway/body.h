/*
 * body.h - what the gateway reads from a request body before it forwards
 * it (docs/gateway.md "A request, in order"): the model, the max_tokens
 * cap, the streaming options and the prompt's JSON text.  The body must be
 * one JSON object without duplicate keys, so the gateway and the model
 * server cannot read two different models from one body.  Not a public
 * interface.
 */
#ifndef CRETO_GATEWAY_BODY_H
#define CRETO_GATEWAY_BODY_H

#include <stddef.h>
#include <stdint.h>

#include "gateway/internal.h"

typedef struct gw_body {
	int model_ok;                      /* a non-empty string of at most GW_MODEL_NAME_MAX bytes */
	char model[GW_MODEL_NAME_MAX + 1];
	const char *mt_key;                /* "max_completion_tokens" when present, else "max_tokens" */
	int mt_bad;                        /* present, not null, not a non-negative integer */
	int64_t mt;                        /* -1: none */
	int stream;                        /* "stream": true */
	int so_absent, so_object;          /* stream_options missing or null / an object */
	int include_usage;                 /* stream_options.include_usage: true */
	const char *prompt;                /* the prompt member's JSON text (NULL: absent) */
	size_t prompt_len;
	char *prompt_owned;                /* the same re-encoded by jansson (the fallback) */
} gw_body;

/* Read body (len bytes) into b; prompt_key names the member whose JSON text
 * is the prompt ("messages", "prompt", "input").  0, or 1 with the reason
 * in err when the body is not one JSON object without duplicate keys.
 * The strict scanner (util/jsonscan, no allocation) reads it; a body beyond
 * the scanner's limits is read with jansson instead, with the same
 * acceptance.  gw_body_clear frees what b holds. */
int gw_body_read(const char *body, size_t len, const char *prompt_key, gw_body *b, char *err,
		 size_t errsz);
void gw_body_clear(gw_body *b);

/* The two readers on their own (tests and the differential fuzz target):
 * gw_body_scan returns 0, 1 (refused), or 2 when the body is beyond the
 * scanner's limits; gw_body_jansson returns 0 or 1.  Both fill a b that
 * the caller zeroed, with mt = -1. */
int gw_body_scan(const char *body, size_t len, const char *prompt_key, gw_body *b, char *err,
		 size_t errsz);
int gw_body_jansson(const char *body, size_t len, const char *prompt_key, gw_body *b, char *err,
		    size_t errsz);

#endif
