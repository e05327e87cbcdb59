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
 *    made durable by a background flusher that gathers for 2 ms (or
 *    opts.flush_ms if less) before each commit.  Fails fast
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

/* ---- additions (docs/audit.md) ---- */

struct creto_pubkey;

/* Append (durable) with a given time in UTC microseconds instead of the
 * clock's, for records carried over from an older store (migration).  The
 * time is still clamped to be no earlier than the previous entry's; a
 * clamped entry carries the given time in the field "given_time_us". */
int creto_audit_append_at(creto_audit *a, const creto_event *ev, int64_t time_us, uint64_t *seq,
			  creto_err *e) CRETO_WUR;

/* Entries made durable so far (the tree size). */
uint64_t creto_audit_size(creto_audit *a);

/* The newest stored checkpoint (signed note text, malloc'ed, NUL-terminated)
 * or *out = NULL when none was written yet. */
int creto_audit_last_checkpoint(creto_audit *a, char **out, size_t *len, creto_err *e) CRETO_WUR;

/* Move the entries before the stored checkpoint `kept` (signed note text)
 * into an export file out_path (written atomically), then delete them from
 * the log.  The export verifies on its own (creto_audit_verify); the log
 * keeps the tree nodes and checkpoints, so it still verifies too. */
int creto_audit_archive(creto_audit *a, const char *kept, size_t kept_len, const char *out_path,
			creto_err *e) CRETO_WUR;

/* Test builds only (build/creto-test, via cli_crash_point()): raise SIGKILL
 * when the log reaches the named point: "append-before-commit",
 * "append-after-commit", "checkpoint-signed", "checkpoint-stored",
 * "archive-written".  NULL: none.  The string is borrowed. */
void creto_audit_set_crash_point(creto_audit *a, const char *point);

/* ---- reading, proving, verifying: no lock; beside a running writer ----
 * A reader is one SQLite connection with a node cache: use it from one
 * thread at a time (open one per thread). */

typedef struct creto_audit_reader creto_audit_reader;

int creto_audit_reader_open(const char *dir, creto_audit_reader **out, creto_err *e) CRETO_WUR;
void creto_audit_reader_close(creto_audit_reader *r);
const char *creto_audit_reader_origin(const creto_audit_reader *r);
/* Tree size and the first entry still held (entries before it archived). */
int creto_audit_reader_size(creto_audit_reader *r, uint64_t *size, uint64_t *first,
			    creto_err *e) CRETO_WUR;
/* First sequence number whose time is >= time_us (binary search: times
 * never decrease); the tree size when none. */
int creto_audit_reader_seek_time(creto_audit_reader *r, int64_t time_us, uint64_t *seq,
				 creto_err *e) CRETO_WUR;
/* Call fn for each entry with from <= seq < to in order, with its
 * canonical JSON (valid during the call); fn returning nonzero stops the
 * scan and is returned. */
int creto_audit_reader_scan(creto_audit_reader *r, uint64_t from, uint64_t to,
			    int (*fn)(void *ctx, uint64_t seq, const char *entry, size_t len),
			    void *ctx, creto_err *e) CRETO_WUR;
/* The newest stored checkpoint (as creto_audit_last_checkpoint). */
int creto_audit_reader_checkpoint(creto_audit_reader *r, char **out, size_t *len,
				  creto_err *e) CRETO_WUR;

#define CRETO_AUDIT_PROOF_MAX 64
typedef struct creto_audit_proof {
	uint64_t index, size;         /* inclusion: leaf index; consistency: old size */
	uint8_t leaf[32];             /* inclusion: the leaf hash */
	uint8_t root[32];             /* root of the tree of `size` (inclusion) / new size */
	uint8_t path[CRETO_AUDIT_PROOF_MAX][32];
	size_t len;
} creto_audit_proof;

/* RFC 9162 inclusion proof of entry seq in the tree of `size` entries
 * (0: the current size).  O(log n) reads. */
int creto_audit_reader_prove(creto_audit_reader *r, uint64_t seq, uint64_t size,
			     creto_audit_proof *p, creto_err *e) CRETO_WUR;
/* RFC 9162 consistency proof from old_size to new_size (0: current):
 * p->index = old_size, p->size = new_size, p->root = root at new_size. */
int creto_audit_reader_consistency(creto_audit_reader *r, uint64_t old_size, uint64_t new_size,
				   creto_audit_proof *p, creto_err *e) CRETO_WUR;

/* RFC 9162 proof checks: 1 when valid. */
int creto_audit_verify_inclusion(uint64_t idx, uint64_t n, const uint8_t leaf[32],
				 const uint8_t (*path)[32], size_t plen, const uint8_t root[32]);
int creto_audit_verify_consistency(uint64_t m, uint64_t n, const uint8_t old_root[32],
				   const uint8_t new_root[32], const uint8_t (*path)[32],
				   size_t plen);

typedef struct creto_audit_report {
	char origin[256];
	uint64_t first;        /* first entry present (0 unless archived) */
	uint64_t size;         /* tree size */
	uint64_t checkpoints;  /* signed checkpoints verified */
	uint64_t signed_size;  /* size of the newest verified checkpoint */
	uint8_t root[32];      /* root of the whole tree */
} creto_audit_report;

/* Verify a log directory or an export file (docs/audit.md "Verify"):
 * recompute every leaf and the root, check every checkpoint's signature
 * by pub and its root, sequence numbers without gaps, monotone time, and,
 * with kept (an older signed checkpoint kept elsewhere; NULL: none), that
 * the log still extends it.  CRETO_EREJECT naming the first bad entry or
 * checkpoint. */
int creto_audit_verify(const char *path, const struct creto_pubkey *pub, const char *kept,
		       size_t kept_len, creto_audit_report *rep, creto_err *e) CRETO_WUR;

/* Write entries [first, before) and their checkpoints as an export file
 * (before = 0: all). */
int creto_audit_export(const char *dir, uint64_t before, const char *out_path,
		       creto_err *e) CRETO_WUR;

/* Parse a signed checkpoint (no signature check): its origin (buffer of
 * 256), size and root.  CRETO_EREJECT when malformed. */
int creto_audit_checkpoint_parse(const char *text, size_t len, char *origin, uint64_t *size,
				 uint8_t root[32], creto_err *e) CRETO_WUR;

#endif
