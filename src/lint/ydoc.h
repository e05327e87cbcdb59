/*
 * ydoc.h - a bounded YAML loader on libyaml's event parser: every document
 * of a file becomes a read-only tree of scalars, sequences and mappings in
 * one arena.  An alias points at its anchored node (shared, never copied);
 * what a reader walking the tree would visit is counted per document and
 * bounded (CRETO_LINT_EXPANDED_MAX), which stops alias bombs.  Mapping keys
 * must be scalars and unique.  Lookups honour YAML 1.1 merge keys ("<<"),
 * as Kubernetes' own YAML reader does.
 */
#ifndef CRETO_LINT_YDOC_H
#define CRETO_LINT_YDOC_H

#include <stddef.h>
#include <stdint.h>

#include "creto/error.h"

typedef enum { YN_SCALAR = 1, YN_SEQ, YN_MAP } yn_type;

typedef struct ynode ynode;
struct ynode {
	uint8_t type;        /* yn_type */
	uint8_t plain;       /* scalar written without quotes or block style */
	uint32_t line, col;  /* 1-based */
	size_t n;            /* scalar: length; sequence: items; mapping: pairs */
	const char *str;     /* scalar: NUL-terminated (may hold NULs before n) */
	ynode **items;       /* sequence: n items; mapping: key 2i, value 2i+1 */
	size_t expanded;     /* nodes under and including this one, aliases expanded */
	unsigned mdepth;     /* mapping: levels of "<<" merges below it (bounded at load) */
};

typedef struct ydoc {
	ynode *root; /* NULL for an empty document */
	uint32_t line;
} ydoc;

typedef struct yfile yfile;

/* Load all documents of data[0..len).  Returns CRETO_OK with *out set, or:
 * CRETO_EREJECT with *out NULL and e "LINE:COL: reason" for YAML that does
 * not parse or breaks a bound; CRETO_EOP when out of memory. */
int ydoc_load(const void *data, size_t len, yfile **out, creto_err *e) CRETO_WUR;
size_t ydoc_count(const yfile *f);
const ydoc *ydoc_get(const yfile *f, size_t i);
void ydoc_free(yfile *f);

/* Mapping lookup (explicit keys first, then "<<" merges); NULL when m is
 * not a mapping or lacks key. */
const ynode *yget(const ynode *m, const char *key);
/* yget along a path of keys ending with NULL. */
const ynode *ypath(const ynode *m, ...);
/* The scalar's text, or NULL for anything else (and for a null scalar:
 * plain "", "~", "null", "Null", "NULL"). */
const char *ystr(const ynode *n);
/* True for a YAML 1.1 true (true/True/TRUE/yes/Yes/YES/on/On/ON/y/Y),
 * quoted or not; false otherwise, including for NULL. */
int ytrue(const ynode *n);
/* True for an explicit false (false/False/FALSE/no/No/NO/off/Off/OFF/n/N). */
int yfalse(const ynode *n);
/* Items of a sequence (0 for anything else). */
size_t yseq_len(const ynode *n);
const ynode *yseq_at(const ynode *n, size_t i);

/* Call cb(key, value, ctx) for every pair of a mapping, merges included
 * (explicit pairs first, then each "<<" source in order; a merged key that
 * an earlier pair already defines is skipped).  Stops when cb returns
 * non-zero.  Nothing happens when m is not a mapping. */
typedef int (*ymap_cb)(const ynode *k, const ynode *v, void *ctx);
void ymap_each(const ynode *m, ymap_cb cb, void *ctx);

#endif
