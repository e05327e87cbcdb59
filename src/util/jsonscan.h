/*
 * jsonscan.h - a strict, allocation-free reader of one JSON object
 * (RFC 8259), for the hot path of token resolution (docs/nhi.md "JSON").
 *
 * creto_json_object_scan() validates the whole text in one pass (grammar,
 * UTF-8, escapes, integer range, duplicate member names, nesting) and
 * records each top-level member: its decoded name and the raw span of its
 * value.  Values are decoded on demand.  What it accepts is what jansson
 * accepts with JSON_REJECT_DUPLICATES (a differential fuzz target checks
 * that), within the limits below; beyond a limit it refuses.
 */
#ifndef CRETO_UTIL_JSONSCAN_H
#define CRETO_UTIL_JSONSCAN_H

#include <stddef.h>
#include <stdint.h>

#include "creto/error.h"

#define CRETO_JSON_MEMBERS_MAX 64  /* top-level members */
#define CRETO_JSON_NAMES_MAX 1024  /* bytes of all top-level names, decoded */
#define CRETO_JSON_DEPTH_MAX 32    /* nesting of arrays and objects */
#define CRETO_JSON_NUMBER_MAX 256  /* characters of one number */

typedef enum {
	CRETO_JSON_STRING,
	CRETO_JSON_INTEGER, /* no fraction or exponent; fits int64 */
	CRETO_JSON_REAL,
	CRETO_JSON_TRUE,
	CRETO_JSON_FALSE,
	CRETO_JSON_NULL,
	CRETO_JSON_OBJECT,
	CRETO_JSON_ARRAY,
} creto_json_type;

/* A value: its type and its text, as it appears in the input. */
typedef struct {
	creto_json_type type;
	const char *p;
	size_t n;
} creto_json_value;

typedef struct {
	size_t n;
	struct {
		uint16_t name_off, name_len; /* into names */
		creto_json_value v;
	} m[CRETO_JSON_MEMBERS_MAX];
	char names[CRETO_JSON_NAMES_MAX];
} creto_json_object;

/* Scan text[0..len) as one JSON object (whitespace around it allowed).
 * The object's values point into text, which must outlive it.  A refusal
 * is CRETO_EREJECT with "<what>: <reason> at byte N"; reasons include
 * "invalid JSON", "duplicate JSON key", "not a JSON object" and
 * "over the limit". */
int creto_json_object_scan(const char *what, const char *text, size_t len, creto_json_object *o,
			   creto_err *e) CRETO_WUR;

/* The member called name, or NULL. */
const creto_json_value *creto_json_get(const creto_json_object *o, const char *name);

/* A string value decoded into buf (NUL-terminated; the scan refused any
 * \u0000).  0, or -1 when v is not a string or needs more than cap - 1
 * bytes; *len (optional) is the decoded length in both cases. */
int creto_json_string(const creto_json_value *v, char *buf, size_t cap, size_t *len);

/* An integer value.  0, or -1 when v is not a CRETO_JSON_INTEGER. */
int creto_json_int64(const creto_json_value *v, int64_t *out);

/* The elements of an array value in order: *pos starts at 0; 1 and the
 * next element, or 0 at the end (or when v is not an array). */
int creto_json_array_next(const creto_json_value *v, size_t *pos, creto_json_value *elem);

#endif
