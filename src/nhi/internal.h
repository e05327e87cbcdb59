/* internal.h - what src/nhi/ files share beyond creto/nhi.h. */
#ifndef CRETO_NHI_INTERNAL_H
#define CRETO_NHI_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "creto/nhi.h"

/* The in-memory image of a store opened with creto_nhi_store_open_image,
 * without copying (valid until the next change or free); NULL when the store
 * is not an in-memory one. */
const uint8_t *nhi_store_image(creto_nhi_store *s, size_t *len);
/* PRAGMA quick_check; CRETO_EREJECT naming the first problem. */
int nhi_store_quick_check(creto_nhi_store *s, creto_err *e) CRETO_WUR;

/* creto_jws_parse; with assertion set, typ may also be
 * "client-authentication+jwt" (a client assertion, RFC 7523bis). */
int nhi_jws_parse(const char *tok, size_t len, int assertion, creto_jws *out, creto_err *e) CRETO_WUR;

#endif
