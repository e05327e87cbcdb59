/*
 * creto/error.h - the one error convention of creto-airgap.
 *
 * Every library function that can fail returns an int status and fills a
 * caller-provided creto_err.  The status is one of the codes below, which are
 * also the exit codes of the `creto` program (docs/errors.md), so the
 * CLI never has to translate.  The message is one line, says what was wrong
 * and where, and gains context as it travels up:
 *     "update verify: statement: signature 2 (key 3fa1...): bad signature"
 * Messages never contain secrets.  See docs/errors.md.
 */
#ifndef CRETO_ERROR_H
#define CRETO_ERROR_H

#include <stddef.h>

#define CRETO_WUR __attribute__((warn_unused_result))
#define CRETO_NONNULL(...) __attribute__((nonnull(__VA_ARGS__)))
#define CRETO_PRINTF(f, a) __attribute__((format(printf, f, a)))

enum creto_status {
	CRETO_OK = 0,       /* success; for a check: verified / isolated */
	CRETO_EREJECT = 1,  /* the thing checked was rejected (bad input, bad signature, ...) */
	CRETO_EUSAGE = 2,   /* bad arguments or configuration */
	CRETO_EOP = 3,      /* operational: I/O, HSM unavailable, out of memory */
};

#define CRETO_ERR_MSG_MAX 512

typedef struct creto_err {
	int code;                     /* a creto_status */
	char msg[CRETO_ERR_MSG_MAX];  /* one line, NUL-terminated, "" when code == CRETO_OK */
} creto_err;

/* Reset to CRETO_OK with an empty message.  e may be NULL. */
void creto_err_clear(creto_err *e);

/* Set code and message (printf format; truncated to fit, newlines replaced).
 * Returns code, so callers write `return creto_err_set(e, CRETO_EREJECT, ...)`.
 * e may be NULL, in which case only code is returned. */
int creto_err_set(creto_err *e, int code, const char *fmt, ...) CRETO_PRINTF(3, 4);

/* Prefix the existing message with "<context>: " and return e->code
 * (CRETO_EOP if e is NULL or carries no code).  Used on the way up. */
int creto_err_ctx(creto_err *e, const char *fmt, ...) CRETO_PRINTF(2, 3);

/* Set a CRETO_EOP error "<what>: <strerror(errnum)>". Returns CRETO_EOP. */
int creto_err_errno(creto_err *e, int errnum, const char *fmt, ...) CRETO_PRINTF(3, 4);

/* Set a CRETO_EOP error for an OpenSSL failure, appending the first queued
 * OpenSSL reason and clearing the OpenSSL error queue. Returns CRETO_EOP. */
int creto_err_openssl(creto_err *e, const char *fmt, ...) CRETO_PRINTF(2, 3);

/* Name of a status code: "ok", "rejected", "usage", "operational". */
const char *creto_status_name(int code);

#endif
