/*
 * creto/event.h - security events, as every component reports them.
 *
 * Components below the audit log (hsm, sig, isolation, ...) never include
 * creto/audit.h: they report through a creto_event_sink their caller passes
 * in.  The audit log (creto/audit.h) records a creto_event as one entry; see
 * docs/audit.md for the canonical JSON form.  Strings are borrowed for the
 * duration of the call only; untrusted bytes are allowed (the log escapes
 * them).  Never put a secret, a token or a prompt into an event.
 */
#ifndef CRETO_EVENT_H
#define CRETO_EVENT_H

#include <stddef.h>
#include <stdint.h>

/* One extra detail of an event: a string or an integer value. */
typedef struct creto_event_field {
	const char *key;   /* [a-z0-9_]+, unique within the event */
	const char *str;   /* the value when non-NULL ... */
	int64_t num;       /* ... else this integer */
} creto_event_field;

typedef struct creto_event {
	const char *component; /* update diode trust nhi isolation gateway hsm audit cli serve */
	const char *event;     /* what happened: "apply", "quarantine", "login", "request", ... */
	const char *outcome;   /* "ok", "refused", "failed", "retry", "duplicate", "aborted", ... */
	const char *subject;   /* what it concerns (package name+version+digest, agent id, key id); may be NULL */
	const char *reason;    /* the rule name on refusal; may be NULL */
	const char *actor;     /* who acted, when known (agent id, uid, officer key id); may be NULL */
	const creto_event_field *fields; /* optional details */
	size_t nfields;
} creto_event;

/* Where a component sends its events.  fn returns 0 when the event was
 * recorded, or a creto status (3 when the log cannot be written): a caller
 * that must fail closed checks it.  A sink with fn == NULL drops events. */
typedef struct creto_event_sink {
	int (*fn)(void *ctx, const creto_event *ev);
	void *ctx;
} creto_event_sink;

/* Deliver ev to sink; 0 when sink or sink->fn is NULL. */
int creto_event_emit(const creto_event_sink *sink, const creto_event *ev);

#endif
