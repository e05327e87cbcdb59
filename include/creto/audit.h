/*
 * creto/audit.h - the tamper-evident audit log (docs/audit.md).
 *
 * One entry per security decision, as canonical JSON; entries are the leaves
 * of an RFC 6962 Merkle tree; checkpoints are C2SP signed notes over the tree
 * size and root, signed through a creto_signer (file, pkcs11: or hybrid key).
 *
 * Two ways to append:
 *  - creto_audit_append: the entry is durable (fsync'd) when it returns 0.
 *    A decision whose record cannot be written must not happen (fail closed).
 *  - creto_audit_submit: group commit for hot paths (the gateway): queued,
 *    made durable by a background flusher within opts.flush_ms.  Fails fast
 *    with CRETO_EOP once the log is failing, so the caller stops admitting.
 *
 * Thread-safe: one creto_audit may be shared by every component of a process.
 * Only one process writes a log at a time (an exclusive lock on the dir).
 */
#ifndef CRETO_AUDIT_H
#define CRETO_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "creto/clock.h"
#include "creto/error.h"
#include "creto/event.h"

typedef struct creto_audit creto_audit;
struct creto_signer;

#define CRETO_AUDIT_ENTRY_MAX 16384 /* bytes of one canonical entry */

typedef struct creto_audit_opts {
	const creto_clock *clock;      /* NULL: the system clock */
	struct creto_signer *signer;   /* checkpoint key (borrowed); NULL: no checkpoints written */
	unsigned flush_ms;             /* group-commit delay for submit(); 0: 100 ms */
	uint64_t size_budget;          /* bytes; 0: unlimited.  Warn (audited) at 80%, refuse at 100% */
} creto_audit_opts;

/* Create a new log in dir (created 0700 if missing; must be empty) with the
 * given checkpoint origin line (e.g. "creto.enclave-a/audit"). */
int creto_audit_init(const char *dir, const char *origin, creto_err *e) CRETO_WUR;

/* Open an existing log for appending: repairs a torn tail (recorded as an
 * event), takes the writer lock.  *out owned by the caller. */
int creto_audit_open(const char *dir, const creto_audit_opts *o, creto_audit **out,
		     creto_err *e) CRETO_WUR;

/* Append one event, durable on return; *seq (may be NULL) gets its sequence number. */
int creto_audit_append(creto_audit *a, const creto_event *ev, uint64_t *seq, creto_err *e) CRETO_WUR;

/* Queue one event for group commit (see above). */
int creto_audit_submit(creto_audit *a, const creto_event *ev, creto_err *e) CRETO_WUR;

/* Make every queued entry durable now. */
int creto_audit_sync(creto_audit *a, creto_err *e) CRETO_WUR;

/* Sign and store a checkpoint of the current tree (needs opts.signer). */
int creto_audit_checkpoint(creto_audit *a, creto_err *e) CRETO_WUR;

/* 1 while appends succeed, 0 once the log is failing (disk full, budget). */
int creto_audit_healthy(creto_audit *a);

/* An event sink that appends (durable) to a: for components that must fail
 * closed.  The sink borrows a. */
creto_event_sink creto_audit_sink(creto_audit *a);

/* Flush, write a final checkpoint when a signer is set, unlock, free.  NULL ok. */
void creto_audit_close(creto_audit *a);

#endif
