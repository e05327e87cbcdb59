/*
 * enc.h - hex and base64 (RFC 4648 §4 standard, §5 URL-safe) encoding.
 *
 * Decoders are strict (no whitespace, canonical padding, no trailing bits)
 * and branch-free on the data, so they may decode secret keys.
 */
#ifndef CRETO_UTIL_ENC_H
#define CRETO_UTIL_ENC_H

#include <stddef.h>
#include <stdint.h>

#include "creto/error.h"

/* Lowercase hex of in[0..n) into out, which holds 2n+1 bytes; NUL-terminated. */
void creto_hex_encode(char *out, const uint8_t *in, size_t n);

/* Decode exactly inlen hex chars (either case) into out (outcap bytes).
 * Returns 0 and sets *outlen, or -1 on odd length, bad char or overflow. */
int creto_hex_decode(uint8_t *out, size_t outcap, size_t *outlen, const char *in, size_t inlen) CRETO_WUR;

/* Encoded length, without the NUL, of n bytes. url: base64url without padding. */
size_t creto_b64_enclen(size_t n, int url);

/* Encode into out (creto_b64_enclen(n,url)+1 bytes), NUL-terminated. */
void creto_b64_encode(char *out, const uint8_t *in, size_t n, int url);

/* Strict decode.  Standard alphabet requires '=' padding to a multiple of 4;
 * url requires no padding.  Returns 0 and sets *outlen, -1 on any error. */
int creto_b64_decode(uint8_t *out, size_t outcap, size_t *outlen, const char *in, size_t inlen,
		     int url) CRETO_WUR;

/* Largest decoded size of inlen base64 chars (for allocation). */
size_t creto_b64_declen_max(size_t inlen);

#endif
