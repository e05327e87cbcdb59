/*
 * escape.h - one reversible escaping for untrusted bytes in line-oriented
 * output (watcher lines, logs, audit rows, error messages).
 *
 *   \  -> \\        LF -> \n     CR -> \r     TAB -> \t
 *   every other byte < 0x20, 0x7F            -> \xNN (lowercase hex)
 *   C1 controls U+0080..U+009F (C2 80..C2 9F) -> \xc2\xNN
 *   every byte of an invalid UTF-8 sequence   -> \xNN
 *   valid UTF-8 otherwise passes unchanged.
 *
 * "Valid UTF-8" is RFC 3629: shortest form, no surrogates, at most U+10FFFF.
 * The output never holds a control byte, so one escaped string is one line
 * that a terminal shows as text.  creto_unescape reverses it exactly.
 * JSON output does not use this (jansson escapes strings itself).
 */
#ifndef CRETO_UTIL_ESCAPE_H
#define CRETO_UTIL_ESCAPE_H

#include <stddef.h>
#include <stdint.h>

#include "creto/error.h"

/* Length (1..4) of the valid UTF-8 sequence at p[0..n) (RFC 3629: shortest
 * form, no surrogates, at most U+10FFFF), its code point in *cp (may be
 * NULL); 0 when the bytes at p do not start one.  n must be > 0. */
size_t creto_utf8_len(const unsigned char *p, size_t n, uint32_t *cp);

/* Escape in[0..len) into out[outsz] (always NUL-terminated when outsz > 0,
 * cut at a whole escape when it does not fit).  Returns the length the
 * whole escaped string needs, without the NUL, as snprintf does. */
size_t creto_escape(char *out, size_t outsz, const void *in, size_t len);

/* The escaped string of in as a new malloc'd NUL-terminated string, or NULL
 * when out of memory. */
char *creto_escape_dup(const void *in, size_t len);

/* Decode an escaped string back to its bytes into out[outsz]; *outlen gets
 * the byte count.  0, or -1 on a malformed escape or when out is too small. */
int creto_unescape(void *out, size_t outsz, const char *in, size_t *outlen) CRETO_WUR;

/* The last pass over a whole message line (creto_err does it): the same
 * rewriting as creto_escape for LF, CR, TAB (\n \r \t), other controls, DEL,
 * C1 controls and invalid UTF-8 bytes (\xNN), but a backslash is left as it
 * is.  So it is idempotent: parts escaped with creto_escape where they were
 * inserted (reversible) pass unchanged, however often a message is passed
 * through it on its way up, and whatever was not escaped still cannot break
 * the line or reach the terminal as a control.  NUL-terminated in, out of
 * outsz bytes (cut at a whole escape); returns the length it needs. */
size_t creto_escape_line(char *out, size_t outsz, const char *in);

#endif
