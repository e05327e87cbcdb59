/*
 * creto/update.h - signed updates through the data diode (.crupdate).
 *
 * Formats are normative in docs/trust-root.md and docs/crupdate.md.
 * Outside the enclave: create a statement from a payload, let officers sign
 * it (each appends one signature to STATEMENT.sigs), assemble the package.
 * Inside: verify against a trust root given by the operator (never anything
 * taken from the package), apply atomically into a state directory, and
 * watch a diode directory.  Every rejection is CRETO_EREJECT with one line
 * naming the rule ("rollback: ...", "signature threshold: ...").
 */
#ifndef CRETO_UPDATE_H
#define CRETO_UPDATE_H

#include <stddef.h>
#include <stdint.h>

#include "creto/clock.h"
#include "creto/error.h"
#include "creto/event.h"
#include "creto/keys.h"

/* Signature context strings (domain separation, docs/crupdate.md). */
#define CRETO_TRUST_ROOT_CTX "creto-trust-root-v1"
#define CRETO_STATEMENT_CTX "creto-update-statement-v1"

#define CRETO_STATEMENT_MAX (4u << 20)   /* bytes of a statement */
#define CRETO_SIGS_MAX (1u << 20)        /* bytes of a signatures document */
#define CRETO_TRUST_ROOT_MAX (1u << 20)  /* bytes of a trust root file */
#define CRETO_UPDATE_SIGS_MAX 64         /* signatures in one document */
#define CRETO_UPDATE_FILES_MAX 10000     /* payload files in one statement */
#define CRETO_UPDATE_PATH_MAX 255        /* bytes of a payload path */
#define CRETO_UPDATE_NAME_MAX 64         /* bytes of a target name */
#define CRETO_SHARD_DEFAULT (4u << 20)   /* default shard size */
#define CRETO_SHARD_MIN (64u << 10)
#define CRETO_SHARD_MAX (8u << 20)
#define CRETO_FILE_SIZE_MAX 077777777777ULL /* ustar size field: 8 GiB - 1 */
/* A statement's `created` may be at most this far (seconds) after the
 * trusted time, max(clock, time floor): rule `created`. */
#define CRETO_CREATED_SKEW_MAX (24 * 3600)

/* ---- trust root (docs/trust-root.md) ---- */

typedef struct creto_trust_root creto_trust_root;

/* Parse and check a trust root document: structure, key ids recomputed from
 * the keys, roles referring to known keys, thresholds in range, and the
 * signatures of a threshold of its own root role.  Expiry is NOT checked
 * here (creto_trust_root_expires).  Malformed or under-signed: CRETO_EREJECT. */
int creto_trust_root_parse(const uint8_t *buf, size_t len, creto_trust_root **out,
			   creto_err *e) CRETO_WUR;
int creto_trust_root_load(const char *path, creto_trust_root **out, creto_err *e) CRETO_WUR;
/* As parse, but without requiring the self-signature threshold (for
 * `trust sign` and `trust show` of a document still being signed).
 * *nvalid receives how many distinct root-role keys signed validly. */
int creto_trust_root_parse_unsigned(const uint8_t *buf, size_t len, creto_trust_root **out,
				    int *nvalid, creto_err *e) CRETO_WUR;
void creto_trust_root_free(creto_trust_root *r);
int64_t creto_trust_root_version(const creto_trust_root *r);
int64_t creto_trust_root_expires(const creto_trust_root *r);
/* Trust roots expiring within this many days are warned about. */
#define CRETO_TRUST_WARN_DAYS 30
/* One warning line into buf when a root of that version and expiry is
 * expired at now, or expires within CRETO_TRUST_WARN_DAYS: returns 1; else
 * 0 and buf is "". */
int creto_trust_root_expiry_note(int64_t version, int64_t expires, int64_t now, char *buf,
				 size_t cap);
/* Check that a threshold of signer's root role signed doc (rotation). */
int creto_trust_root_signed_by(const creto_trust_root *signer, const creto_trust_root *doc,
			       creto_err *e) CRETO_WUR;
/* Human/JSON description (malloc'ed JSON text) for `trust show`. */
int creto_trust_root_describe(const creto_trust_root *r, char **json, creto_err *e) CRETO_WUR;

/* One role for creto_trust_root_create. */
typedef struct creto_trust_role_spec {
	const char *name;       /* "root", "model-weights", ... */
	const char **keyids;    /* key ids (16 hex) of keys given to create */
	size_t nkeyids;
	int threshold;
	int max_jump;           /* 0: default (1) */
} creto_trust_role_spec;

/* Build an unsigned trust root (canonical JSON, malloc'ed) from public keys
 * and roles.  Roles not given get all keys and default_threshold. */
int creto_trust_root_create(creto_pubkey *const *keys, size_t nkeys,
			    const creto_trust_role_spec *roles, size_t nroles,
			    int default_threshold, int default_jump, int64_t version,
			    int64_t expires, char **out, creto_err *e) CRETO_WUR;
/* Append the signature of signer to a trust root document (text in, new
 * malloc'ed text out).  The signer must be a key of the document's root role
 * (or, for a rotation, of the previous root: allow_foreign). */
int creto_trust_root_sign(const uint8_t *doc, size_t len, creto_signer *signer, int allow_foreign,
			  char **out, creto_err *e) CRETO_WUR;

/* Sign the trust root document at path and write it to out_path (NULL:
 * replace path), holding an exclusive lock on path from the read to the
 * replacement: officers signing at once queue, and every signature lands. */
int creto_trust_root_sign_file(const char *path, const char *out_path, creto_signer *signer,
			       int allow_foreign, creto_err *e) CRETO_WUR;

/* ---- statements and packages (docs/crupdate.md) ---- */

typedef struct creto_update_create_opts {
	const char *type;      /* model-weights | software-package | policy | cert-rotation */
	const char *name;
	int64_t version;
	int64_t created;       /* 0: now */
	int64_t expires;       /* 0: created + 30 days */
	const char *payload;   /* file or directory */
	uint32_t shard_size;   /* 0: CRETO_SHARD_DEFAULT */
	const creto_clock *clock; /* for created = 0; NULL: the system clock */
	int force;             /* replace an existing out_path (and remove the
				  stale OUT.sigs beside it); else refuse it */
} creto_update_create_opts;

/* Hash the payload and write the statement (canonical JSON) to out_path. */
int creto_update_create(const creto_update_create_opts *o, const char *out_path,
			creto_err *e) CRETO_WUR;
/* Sign the exact bytes of the statement and append one signature to
 * sigs_path (created when missing), leaving the statement untouched. */
int creto_update_sign(const char *statement_path, const char *sigs_path, const char *key_ref,
		      const creto_keys_opts *kopts, char keyid_out[17], creto_err *e) CRETO_WUR;
typedef struct creto_update_assemble_opts {
	/* The root the enclave will check against: the signatures must reach
	 * the threshold of the statement's role in it (CRETO_EREJECT naming
	 * how many are missing and which keys could sign).  NULL: not checked. */
	const char *trust_path;
	int force;             /* replace an existing out_path; else refuse it */
} creto_update_assemble_opts;

/* Join statement, signatures and payload into a package, checking the
 * payload against the statement as it is copied (ao may be NULL). */
int creto_update_assemble(const char *statement_path, const char *sigs_path,
			  const char *payload, const char *out_path,
			  const creto_update_assemble_opts *ao, creto_err *e) CRETO_WUR;
/* Describe a package without trusting it: JSON text (malloc'ed). */
int creto_update_inspect(const char *pkg, char **json, creto_err *e) CRETO_WUR;

/* The rule a package broke (docs/crupdate.md "Verification"): decided where
 * the check fails and carried beside the error, never read back from the
 * message text. */
typedef enum creto_update_rule {
	CRETO_RULE_NONE = 0,
	CRETO_RULE_CONTAINER,       /* not a strict ustar of regular files, or not a regular file */
	CRETO_RULE_SIZE,            /* a member larger than allowed or than the statement says */
	CRETO_RULE_TRUNCATED,
	CRETO_RULE_TRAILING_DATA,
	CRETO_RULE_MEMBER_TYPE,     /* link, FIFO, device or directory member */
	CRETO_RULE_ORDER,           /* members not in statement order */
	CRETO_RULE_DUPLICATE_NAME,
	CRETO_RULE_PATH,            /* a payload path that is not allowed */
	CRETO_RULE_STATEMENT,       /* malformed or not canonical statement */
	CRETO_RULE_SIGNATURES,      /* malformed signatures document */
	CRETO_RULE_THRESHOLD,       /* "signature threshold" */
	CRETO_RULE_REPLAY,          /* the very statement was applied before */
	CRETO_RULE_CREATED,         /* created too far after the trusted time */
	CRETO_RULE_EXPIRED,         /* statement or trust root expired */
	CRETO_RULE_ROLLBACK,
	CRETO_RULE_FAST_FORWARD,
	CRETO_RULE_ROTATION,        /* a new trust root that may not follow */
	CRETO_RULE_DIGEST,          /* payload does not match the statement */
} creto_update_rule;

/* The rule's name as it appears in messages, .reason files and JSON
 * ("signature threshold", "fast-forward", ...); "" for CRETO_RULE_NONE. */
const char *creto_update_rule_name(creto_update_rule r);

/* What verify/apply decided (filled as far as known, also on rejection). */
typedef struct creto_update_result {
	char type[32];
	char name[CRETO_UPDATE_NAME_MAX + 1];
	int64_t version;
	int64_t installed;            /* previous version, 0 if none */
	char statement_digest[65];    /* hex SHA3-256 of the statement bytes */
	char keyids[CRETO_UPDATE_SIGS_MAX * 17 + 1]; /* counted key ids, comma-separated */
	uint64_t payload_bytes;
	creto_update_rule rule_id;    /* rule that rejected, CRETO_RULE_NONE when accepted */
	char rule[32];                /* its name (creto_update_rule_name) */
	char install_path[4096];      /* apply: where it went */
	int already_applied;          /* the very statement was applied before */
	int root_unusable;            /* the trust root (--trust, or the rotated
					 root in state_dir) could not be read or
					 was refused: nothing was decided about pkg */
} creto_update_result;

/* Where verify and apply find their trust and state, and how they may be
 * interrupted.  Zero-initialise, then set what applies. */
typedef struct creto_update_opts {
	const char *trust_path;       /* the operator's trust root (required) */
	const char *state_dir;        /* state directory; NULL: verify without state */
	const creto_clock *clock;     /* expiry, time floor, audit times; NULL: system */
	/* Fault injection for crash tests: called at each named point of an
	 * install ("staged", "renamed", "before-commit", "committed",
	 * "link-tmp"; docs/crupdate.md "Crash safety").  NULL in the product. */
	void (*crash)(void *arg, const char *point);
	void *crash_arg;
	/* Asked between payload files and before the commit: non-zero stops
	 * the run with CRETO_EOP ("interrupted"), nothing installed.  NULL: never. */
	int (*cancelled)(void *arg);
	void *cancel_arg;
	/* apply: one writer per state.  Held by another process: wait up to
	 * this many seconds, then CRETO_EUSAGE naming the holder's PID. */
	int64_t lock_wait_s;
	/* apply: every decision is recorded here before its state commits
	 * (see creto_update_ctx_opts.sink).  Zero: nothing recorded. */
	creto_event_sink sink;
} creto_update_opts;

/* Open a package path the way every untrusted input is opened: O_NONBLOCK
 * and O_NOFOLLOW (a FIFO, device or symbolic link never blocks or is
 * followed), then fstat: anything but a regular file is CRETO_EREJECT with
 * rule `container`.  *fd is a blocking read descriptor on success. */
int creto_update_open(const char *pkg, int *fd, creto_err *e) CRETO_WUR;

/* Verify the package read from fd (a regular file, at offset 0; name is
 * only used in messages and audit rows) against the trust root (and the
 * state in o->state_dir when set: installed versions, time floor, rotated
 * root).  Streams and checks the whole payload; writes nothing. */
int creto_update_verify_fd(int fd, const char *name, const creto_update_opts *o,
			   creto_update_result *res, creto_err *e) CRETO_WUR;
/* Verify and install atomically into o->state_dir; records the decision. */
int creto_update_apply_fd(int fd, const char *name, const creto_update_opts *o,
			  creto_update_result *res, creto_err *e) CRETO_WUR;
/* The same on a path (creto_update_open, then the _fd call). */
int creto_update_verify(const char *pkg, const creto_update_opts *o, creto_update_result *res,
			creto_err *e) CRETO_WUR;
int creto_update_apply(const char *pkg, const creto_update_opts *o, creto_update_result *res,
		       creto_err *e) CRETO_WUR;

/* `creto state init`: create the state of state_dir (made 0700 when
 * missing) for the trust root at trust_path, which must load and be signed
 * by a threshold of its root role.  Every other operation refuses a
 * directory without initialised state (CRETO_EUSAGE, naming it); state made
 * by an earlier version counts as initialised.  Existing state: CRETO_EUSAGE. */
/* (creto_state_init_ex below with only the clock: the log gets the default origin, no key.) */
int creto_state_init(const char *state_dir, const char *trust_path, const creto_clock *clock,
		     creto_err *e) CRETO_WUR;

/* `creto state init` with its audit log (docs/audit.md "Who writes"):
 * besides the state, SDIR/audit/ is created (creto_audit_init) and its
 * first entry records the init.  Zero-initialise, then set what applies. */
typedef struct creto_state_init_opts {
	const creto_clock *clock;     /* NULL: system */
	/* Checkpoint origin of the log; NULL: "creto/" + the state directory's
	 * own name (after realpath; bytes outside [A-Za-z0-9._-] become '_'). */
	const char *audit_origin;
	/* A checkpoint key reference recorded for every later command that
	 * writes the log (a key file path or a pkcs11: URI, never a secret);
	 * NULL: none recorded.  The key is opened (creto_keys_open_signer with
	 * keys) and signs the log's first checkpoint. */
	const char *audit_key;
	const creto_keys_opts *keys;  /* module and PIN file for audit_key; may be NULL */
	uint64_t audit_budget;        /* size budget of the log in bytes, recorded; 0: none */
} creto_state_init_opts;
int creto_state_init_ex(const char *state_dir, const char *trust_path,
			const creto_state_init_opts *o, creto_err *e) CRETO_WUR;

/* Installed versions, time floor, trust root version and the last
 * audit_rows decisions about packages (apply, rotation, requeue entries of
 * the log SDIR/audit; for state from an earlier version whose log was not
 * written yet, the rows of its old audit table), as JSON text (malloc'ed).
 * docs/crupdate.md "State directory". */
int creto_update_status(const char *state_dir, int audit_rows, char **json, creto_err *e) CRETO_WUR;

/* ---- the audit log of a state directory ----
 * SDIR/audit/ (docs/audit.md "Who writes") records every decision of the
 * update, diode and trust commands.  `creto state init` creates it; state
 * from an earlier version gets it on its first write, with the rows of its
 * old audit table carried over once as the first entries (their own
 * times), then an `update migrate` entry.  A log that init created and is
 * gone is never silently recreated (CRETO_EOP).
 * A creto_state_log takes the log's writer lock only for each record
 * (open, durable append, close; the lock waited for up to lock_wait_ms),
 * so update apply, a running watcher and quarantine requeue can all write
 * it.  Its sink returns CRETO_EOP when the record cannot be written, and
 * the caller must then not act (creto_update_ctx_opts.sink). */
typedef struct creto_state_log creto_state_log;
typedef struct creto_state_log_opts {
	const creto_clock *clock;     /* entry times; NULL: system */
	/* Checkpoint key reference; NULL: the one recorded at state init (if
	 * any).  Opened at creto_state_log_open: one that cannot be opened
	 * fails the open, before anything is decided. */
	const char *key;
	const creto_keys_opts *keys;  /* may be NULL */
	int64_t lock_wait_ms;         /* 0: 10000 */
	const char *crash_point;      /* test builds only: creto_audit_set_crash_point */
} creto_state_log_opts;
/* Check the state, open the checkpoint key, create or migrate the log when
 * needed (under its writer lock).  *out owned by the caller. */
int creto_state_log_open(const char *state_dir, const creto_state_log_opts *o,
			 creto_state_log **out, creto_err *e) CRETO_WUR;
/* An event sink appending durably to the log (borrows l). */
creto_event_sink creto_state_log_sink(creto_state_log *l);
/* Entries appended through the sink so far. */
uint64_t creto_state_log_appended(const creto_state_log *l);
/* Why the last record failed ("" when none did). */
const char *creto_state_log_error(const creto_state_log *l);
/* 1 when a checkpoint key is in use. */
int creto_state_log_has_key(const creto_state_log *l);
/* While recording, the sink signs a checkpoint with a record at most once a
 * minute (a long-running watcher); at close, with a checkpoint key and
 * entries appended since the last one: sign and store a checkpoint
 * (CRETO_EOP when that fails; the entries stay durable and `creto audit
 * checkpoint --key K` signs later).  Then free.  NULL ok. */
int creto_state_log_close(creto_state_log *l, creto_err *e) CRETO_WUR;
/* SDIR/audit into buf. */
void creto_state_log_dir(const char *state_dir, char *buf, size_t cap);

/* ---- the update context: what a long-lived process holds ----
 *
 * A context holds, for its lifetime, the writer lock of a state directory,
 * its state database and the effective trust root (docs/crupdate.md "The
 * update context").  Read-only commands (verify --state, status, quarantine
 * list, creto_update_models_list) still work beside it.  The root is
 * re-read only after a rotation commits, or when the operator's --trust
 * file changes on disk (a ConfigMap update): a replacement that cannot be
 * used makes every later decision `retry` until it is fixed.
 * A context is used by one thread at a time.
 */
typedef struct creto_update_ctx creto_update_ctx;

typedef struct creto_update_ctx_opts {
	const creto_clock *clock;     /* expiry, time floor, audit times; NULL: system */
	/* Crash tests only (creto_update_opts.crash); NULL in the product. */
	void (*crash)(void *arg, const char *point);
	void *crash_arg;
	/* Asked between payload files, before a commit and while waiting for
	 * the lock: non-zero stops with CRETO_EOP ("interrupted"). */
	int (*cancelled)(void *arg);
	void *cancel_arg;
	int64_t lock_wait_s;          /* as creto_update_opts */
	/* Every decision goes here BEFORE its state commits: the record is
	 * durable first, then the state changes.  A sink that returns non-zero
	 * stops the action (CRETO_EOP, exit 3); a decision whose state commit
	 * never happened gets an `aborted` event, at the latest when the next
	 * context opens the state.  Zero: nothing recorded (no intent either). */
	creto_event_sink sink;
	/* Decide only: no lock, no recovery, state opened read-only (state_dir
	 * may be NULL: verify without state).  commit refuses. */
	int readonly;
	/* Who decides, in events: "update" (NULL) or "diode".  A cert-rotation
	 * is always component "trust". */
	const char *component;
} creto_update_ctx_opts;

/* Open: state initialised (else CRETO_EUSAGE), the writer lock (unless
 * readonly), recovery of an interrupted install (current links, staging,
 * an `aborted` event for an intent left behind), then the effective trust
 * root (refused: CRETO_EREJECT; unreadable: CRETO_EOP). */
int creto_update_ctx_open(const char *state_dir, const char *trust_path,
			  const creto_update_ctx_opts *o, creto_update_ctx **out,
			  creto_err *e) CRETO_WUR;
/* Release the lock, close the database.  NULL ok. */
void creto_update_ctx_close(creto_update_ctx *c);
/* The trust root in force: version and expiry (0 when it is unusable). */
void creto_update_ctx_root(const creto_update_ctx *c, int64_t *version, int64_t *expires);
/* Record one event of the caller's own (a watcher's start/stop) through
 * the context's sink; CRETO_EOP when refused. */
int creto_update_ctx_event(creto_update_ctx *c, const creto_event *ev, creto_err *e) CRETO_WUR;

/* What a decision says about one package. */
typedef enum creto_update_verdict {
	CRETO_VERDICT_ACCEPT = 1,   /* every rule holds: commit installs it */
	CRETO_VERDICT_DUPLICATE,    /* the very package was applied before (rule replay) */
	CRETO_VERDICT_QUARANTINE,   /* it broke `rule` */
	CRETO_VERDICT_RETRY,        /* nothing was decided about the package (the
				       trust root, the state, I/O): ask again later */
} creto_update_verdict;
/* "accept", "duplicate", "quarantine", "retry". */
const char *creto_update_verdict_name(creto_update_verdict v);

typedef struct upd_facts upd_facts;

/* A decision and the facts to commit.  Zero-initialise; release with
 * creto_update_decision_clear (which removes a payload staged for it and
 * never committed). */
typedef struct creto_update_decision {
	creto_update_verdict verdict;
	creto_update_rule rule;     /* QUARANTINE: the rule; DUPLICATE: CRETO_RULE_REPLAY */
	creto_err why;              /* all but ACCEPT: the one line (RETRY: its code
				       is operational, CRETO_EOP or CRETO_EUSAGE) */
	creto_update_result res;    /* what is known about the package */
	upd_facts *facts;           /* private: statement, staged payload, snapshot */
} creto_update_decision;

/* Decide about the package read from fd (a regular file at offset 0; name
 * appears in messages and records only).  A pure decision over the package
 * bytes, the trust root the context holds, the caller's clock and one
 * snapshot of the state (time floor, installed version of that target,
 * whether the statement was applied); it changes no state.  In a writable
 * context the payload is staged as it is hashed (SDIR/staging/, private to
 * the decision) so that commit need not read the package again.  Returns
 * CRETO_OK when d holds a verdict, whatever it is. */
int creto_update_decide(creto_update_ctx *c, int fd, const char *name,
			creto_update_decision *d, creto_err *e) CRETO_WUR;
/* The same on a path (creto_update_open): a symbolic link or non-regular
 * file is QUARANTINE with rule container; a missing file RETRY. */
int creto_update_decide_path(creto_update_ctx *c, const char *pkg, creto_update_decision *d,
			     creto_err *e) CRETO_WUR;
/* Commit d in one step: the event first (refused: CRETO_EOP, nothing
 * happens), then for ACCEPT the payload install (or new trust root), the
 * state rows in one transaction and the `current` switch; for DUPLICATE and
 * QUARANTINE nothing more.  The state must still be what the decision saw
 * (else RETRY).  Returns CRETO_OK for an install, else the verdict's status
 * (CRETO_EREJECT with d->why for DUPLICATE and QUARANTINE). */
int creto_update_commit(creto_update_ctx *c, creto_update_decision *d, creto_err *e) CRETO_WUR;
void creto_update_decision_clear(creto_update_decision *d);

/* One installed model, for the gateway and `creto serve`. */
typedef struct creto_update_model {
	char name[CRETO_UPDATE_NAME_MAX + 1];
	int64_t version;
	char path[4096];              /* SDIR/models/NAME/VERSION, as installed */
	char statement_digest[65];    /* hex SHA3-256 of the statement it came with */
	int64_t installed_at;         /* Unix seconds */
} creto_update_model;

/* The models installed (verified at apply) in state_dir, by name: read-only,
 * works beside a writer.  *out malloc'ed (free()), NULL when *n is 0. */
int creto_update_models_list(const char *state_dir, creto_update_model **out, size_t *n,
			     creto_err *e) CRETO_WUR;

/* ---- a stop handle ----
 * What a long-lived component is stopped through, instead of a global:
 * creto_stop_handle_stop is async-signal-safe and thread-safe (an atomic
 * flag and an eventfd a poll loop waits on). */
typedef struct creto_stop_handle creto_stop_handle;
int creto_stop_handle_new(creto_stop_handle **out, creto_err *e) CRETO_WUR;
void creto_stop_handle_stop(creto_stop_handle *h);
int creto_stop_handle_stopped(const creto_stop_handle *h);
/* Readable once stop was called (for poll). */
int creto_stop_handle_fd(const creto_stop_handle *h);
/* Clear a stop request (before reusing the handle). */
void creto_stop_handle_reset(creto_stop_handle *h);
void creto_stop_handle_free(creto_stop_handle *h);

/* ---- diode watcher ---- */

/* One decision of the watcher, for its report callback. */
typedef struct creto_diode_event {
	const char *file;       /* the name in the drop directory: untrusted bytes,
				   escape before printing (util/escape.h) */
	const char *decision;   /* "applied", "duplicate" (the very statement was
				   applied before: set aside in processed/),
				   "quarantined", or "retry" (an operational
				   failure: the package stays in the drop dir) */
	const char *rule;       /* quarantined: the rule, "" otherwise */
	const char *msg;        /* one line */
	const creto_update_result *res; /* what is known about the package */
} creto_diode_event;

typedef struct creto_diode_opts {
	const char *dir;          /* diode drop directory */
	const char *trust_path;
	const char *state_dir;
	int once;                 /* scan, process what is complete, return */
	int settle_ms;            /* size-stable interval; 0: 500 */
	int64_t timeout_s;        /* 0: none; stop after this long */
	const creto_clock *clock; /* trusted time for decisions; NULL: system */
	void (*crash)(void *arg, const char *point); /* as creto_update_opts */
	void *crash_arg;
	int64_t lock_wait_s;      /* as creto_update_opts; held for the whole watch */
	/* Called once when the watcher starts, after its checks (may be NULL):
	 * the trust root in force. */
	void (*started)(void *arg, int64_t root_version, int64_t root_expires);
	/* Called after each decision (may be NULL). */
	void (*report)(void *arg, const creto_diode_event *ev);
	void *report_arg;
	/* Stops the watcher when requested (may be NULL: once or timeout only). */
	creto_stop_handle *stop;
	/* Every decision, and the watcher's start and stop, before they take
	 * effect (creto_update_ctx_opts.sink).  Zero: nothing recorded. */
	creto_event_sink sink;
} creto_diode_opts;

/* Watch o->dir: every complete *.crupdate is applied or quarantined and
 * moved out of the diode directory; nothing is deleted.  Returns CRETO_OK
 * when it stops normally (once, timeout, o->stop); CRETO_EOP when the event
 * sink refuses a record (fail closed: nothing more is decided).
 * Opens its own update context from o (component "diode"). */
int creto_diode_watch(const creto_diode_opts *o, creto_err *e) CRETO_WUR;
/* The same on a context the caller holds (writable, opened with component
 * "diode"): `creto serve` runs it beside other components.  o->trust_path,
 * o->state_dir, o->clock, o->crash and o->sink are taken from ctx. */
int creto_diode_watch_ctx(creto_update_ctx *ctx, const creto_diode_opts *o, creto_err *e) CRETO_WUR;
/* Quarantine of a state directory (SDIR/quarantine/): every package with
 * its rule, the reason and when it was quarantined, as JSON text
 * (malloc'ed): [{"name","rule","reason","quarantined_at","bytes"}]. */
int creto_diode_quarantine_list(const char *state_dir, char **json, creto_err *e) CRETO_WUR;
/* One entry (name as listed): JSON object as above. */
int creto_diode_quarantine_show(const char *state_dir, const char *name, char **json,
				creto_err *e) CRETO_WUR;
/* Move a quarantined package back into drop_dir under its name (never
 * replacing a file there) for a new decision; its note is kept beside it
 * as NAME.reason.requeued.  The event (diode requeue, its record) goes
 * to sink (may be NULL: none) first: refused, nothing moves
 * (CRETO_EOP). */
int creto_diode_quarantine_requeue(const char *state_dir, const char *name, const char *drop_dir,
				   const creto_clock *clock, const creto_event_sink *sink,
				   creto_err *e) CRETO_WUR;


#endif
