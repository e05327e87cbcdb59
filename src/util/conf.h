/*
 * conf.h - the creto config file (docs/config.md): `[section]` headers and
 * `key = value` lines, '#' comments, in the style of the isolation config.
 *
 * Generic on purpose: each consumer (the gateway, `creto serve`) passes a
 * schema of typed keys; a key the schema does not name is an error quoting
 * its line, and so is a section no schema entry names.  A key may carry one
 * name argument (`model llama-3 = ...`) when its schema entry says so.
 * Values are kept in file order, so repeated keys (CRETO_CONF_MULTI) keep
 * their order.  Every error message starts "line N: ".
 */
#ifndef CRETO_UTIL_CONF_H
#define CRETO_UTIL_CONF_H

#include <stddef.h>
#include <stdint.h>

#include "creto/error.h"

#define CRETO_CONF_MAX (1u << 20)     /* bytes of a config file */
#define CRETO_CONF_LINE_MAX 4096      /* bytes of one line */
#define CRETO_CONF_NAME_MAX 64        /* bytes of a section, key or name argument */
#define CRETO_CONF_ENTRIES_MAX 4096   /* values in one file */

typedef enum creto_conf_type {
	CRETO_CONF_STR = 0,  /* any non-empty printable text */
	CRETO_CONF_INT,      /* decimal integer in [min, max] */
	CRETO_CONF_BOOL,     /* yes/no, true/false, on/off, 1/0 -> 1/0 */
	CRETO_CONF_MS,       /* duration "250ms", "2s", "5m", "1h", "3" (seconds) -> ms in [min, max] */
	CRETO_CONF_BYTES,    /* size "512", "64k", "16M", "1G" (binary units) -> bytes in [min, max] */
	CRETO_CONF_PATH,     /* an absolute path */
} creto_conf_type;

#define CRETO_CONF_MULTI 1u  /* the key may repeat; each value is kept */
#define CRETO_CONF_NAMED 2u  /* the key takes one name argument: `key NAME = value` */

/* One schema entry.  key == NULL makes the whole section known but opaque to
 * this consumer (its lines are syntax-checked and kept as strings). */
typedef struct creto_conf_key {
	const char *section;
	const char *key;
	creto_conf_type type;
	unsigned flags;
	int64_t min, max; /* for INT, MS, BYTES; both 0 = no bounds */
} creto_conf_key;

/* Opaque schema entry for a section another reader of the file owns. */
#define CRETO_CONF_OPAQUE(s) {s, NULL, CRETO_CONF_STR, 0, 0, 0},
/* The sections of the one creto config file, by owner (docs/config.md).
 * Applied to a macro X taking the quoted name: X("hsm") X("trust") ...
 * src/serve/config.c checks its schema against CRETO_CONF_SERVE_SECTIONS
 * on every parse, so the gateway (which keeps them opaque with
 * CRETO_CONF_OPAQUE) cannot drift from what `creto serve` reads. */
#define CRETO_CONF_SERVE_SECTIONS(X) \
	X("hsm") X("trust") X("state") X("diode") X("nhi") X("isolation") X("audit") X("serve")
#define CRETO_CONF_GATEWAY_SECTIONS(X) X("gateway") X("upstream") X("limits")

typedef struct creto_conf_entry {
	const creto_conf_key *key; /* schema entry (NULL in an opaque section) */
	const char *section;
	const char *name;  /* key text as written (without the name argument) */
	const char *arg;   /* the name argument, or NULL */
	const char *str;   /* the value text, trimmed */
	int64_t num;       /* parsed value for INT, BOOL, MS, BYTES */
	size_t line;
} creto_conf_entry;

typedef struct creto_conf creto_conf;

/* Parse text against schema (nschema entries).  *out owned by the caller
 * (creto_conf_free).  CRETO_EUSAGE with "line N: ..." on any error. */
int creto_conf_parse(const char *text, size_t len, const creto_conf_key *schema, size_t nschema,
		     creto_conf **out, creto_err *e) CRETO_WUR;
/* Read path (at most CRETO_CONF_MAX bytes) and parse it; errors gain
 * "config PATH: ". */
int creto_conf_load(const char *path, const creto_conf_key *schema, size_t nschema,
		    creto_conf **out, creto_err *e) CRETO_WUR;
void creto_conf_free(creto_conf *c);

/* Entries in file order; valid while c lives. */
size_t creto_conf_count(const creto_conf *c);
const creto_conf_entry *creto_conf_at(const creto_conf *c, size_t i);
/* The last entry of section/key, or NULL. */
const creto_conf_entry *creto_conf_get(const creto_conf *c, const char *section, const char *key);

/* Helpers shared with the parser: 0 or -1. */
int creto_conf_parse_ms(const char *s, int64_t *out) CRETO_WUR;
int creto_conf_parse_bytes(const char *s, int64_t *out) CRETO_WUR;

#endif
