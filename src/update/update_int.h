/*
 * update_int.h - internals shared by the files of src/update/ (not a public
 * contract): canonical JSON, the ustar reader/writer, the state database,
 * digests and the signature-threshold check.
 */
#ifndef CRETO_UPDATE_INT_H
#define CRETO_UPDATE_INT_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "creto/update.h"

/* ---- canonical JSON (docs/trust-root.md "Canonical JSON") ---- */
/* Check that v uses only the canonical subset (objects, arrays, integers,
 * strings of printable ASCII without '"' and '\'), depth <= 8. */
int upd_canon_check(const json_t *v, const char *where, creto_err *e) CRETO_WUR;
/* Serialise v canonically; *out malloc'ed and NUL-terminated. */
int upd_canon_dump(const json_t *v, char **out, size_t *outlen, creto_err *e) CRETO_WUR;
/* Parse untrusted JSON (duplicates rejected, bounded). */
int upd_json_parse(const uint8_t *buf, size_t len, const char *what, json_t **out,
		   creto_err *e) CRETO_WUR;
/* Object with exactly the listed keys (NULL-terminated; "?x" = optional). */
int upd_json_keys(const json_t *o, const char *where, const char *const *keys,
		  creto_err *e) CRETO_WUR;
int upd_json_int(const json_t *o, const char *k, const char *where, int64_t lo, int64_t hi,
		 int64_t *out, creto_err *e) CRETO_WUR;
int upd_json_str(const json_t *o, const char *k, const char *where, const char **out,
		 creto_err *e) CRETO_WUR;
int upd_json_time(const json_t *o, const char *k, const char *where, int64_t *out,
		  creto_err *e) CRETO_WUR;

/* ---- rejections ---- */
/* creto_err_set(e, CRETO_EREJECT, ...) that also stores r in *rule (when
 * rule is not NULL): the rule travels beside the message.  Returns
 * CRETO_EREJECT. */
int upd_reject(creto_err *e, creto_update_rule *rule, creto_update_rule r, const char *fmt, ...)
	CRETO_PRINTF(4, 5);

/* ---- digests ---- */
#define UPD_DIGEST_LEN 32
int upd_sha3(const void *buf, size_t len, uint8_t out[UPD_DIGEST_LEN]);
void upd_sha3_hex(const void *buf, size_t len, char out[65]);

/* ---- signature documents ---- */
typedef struct upd_sig {
	char keyid[CRETO_KEYID_HEXLEN + 1];
	uint8_t *sig;
	size_t siglen;
} upd_sig;
/* Parse a "signatures" JSON array (bounded count, key id form, base64). */
int upd_sigs_parse(const json_t *arr, const char *where, upd_sig **out, size_t *n,
		   creto_err *e) CRETO_WUR;
void upd_sigs_free(upd_sig *s, size_t n);

/* Count distinct keys of role `role` in root r whose signature over
 * (ctx, msg) verifies; fails with "signature threshold" when fewer than
 * the role's threshold.  keyids_out (may be NULL, cap bytes) receives the
 * counted key ids comma-separated. */
int upd_check_threshold(const creto_trust_root *r, const char *role, const char *ctx,
			const uint8_t *msg, size_t msglen, const upd_sig *sigs, size_t nsigs,
			char *keyids_out, size_t cap, int *nvalid, creto_err *e) CRETO_WUR;
/* The role's max_jump (1 when absent); -1 when the role does not exist. */
int upd_root_role_jump(const creto_trust_root *r, const char *role);
int upd_root_has_role(const creto_trust_root *r, const char *role);

/* ---- statement ---- */
typedef struct upd_file {
	char *path;
	uint64_t size;
	uint8_t digest[UPD_DIGEST_LEN];
	uint8_t (*shards)[UPD_DIGEST_LEN]; /* NULL when the file is one shard */
	size_t nshards;                    /* shards of the file (>= 1) */
} upd_file;

typedef struct upd_statement {
	char type[32];
	char name[CRETO_UPDATE_NAME_MAX + 1];
	int64_t version;
	int64_t created, expires;
	uint32_t shard_size;
	upd_file *files;
	size_t nfiles;
	uint64_t total;
} upd_statement;

/* rule (may be NULL) receives the rule of a rejection: path, duplicate
 * name, else statement. */
int upd_statement_parse(const uint8_t *buf, size_t len, upd_statement *st, creto_update_rule *rule,
			creto_err *e) CRETO_WUR;
void upd_statement_free(upd_statement *st);
/* Untrusted peek at the "type" of a statement (for role selection). */
int upd_statement_peek_type(const uint8_t *buf, size_t len, char type[32], creto_err *e) CRETO_WUR;
/* Untrusted peek at the "name" (for the state snapshot); -1 and "" when
 * there is no valid one (the full parse then refuses the statement). */
int upd_statement_peek_name(const uint8_t *buf, size_t len, char name[CRETO_UPDATE_NAME_MAX + 1]);
int upd_type_valid(const char *t);
/* A payload path: syntax (docs/crupdate.md section 1) and payload/PATH
 * fits a ustar header (upd_path_fits_ustar). */
int upd_path_valid(const char *p);
int upd_path_fits_ustar(const char *p);
#define UPD_PAYLOAD_PREFIX "payload/"
int upd_name_valid(const char *n);

/* ---- ustar ---- */
#define UPD_TAR_BLOCK 512
#define UPD_TAR_RECORD 10240
typedef struct upd_tar_hdr {
	char name[256 + 2];
	uint64_t size;
	char type;
} upd_tar_hdr;
/* Read the next header from fd.  *end = 1 at the end-of-archive marker.
 * Strict: checksum, magic, octal fields, regular files only. */
int upd_tar_next(int fd, upd_tar_hdr *h, int *end, creto_update_rule *rule, creto_err *e) CRETO_WUR;
/* After the end marker: only zero padding up to one record, then EOF. */
int upd_tar_expect_eof(int fd, creto_update_rule *rule, creto_err *e) CRETO_WUR;
/* Skip the padding after a member of size bytes. */
int upd_tar_skip_pad(int fd, uint64_t size, creto_update_rule *rule, creto_err *e) CRETO_WUR;
/* Where a member name is cut into ustar prefix and name: 0 when it fits
 * the 100-byte name field whole, the offset of the '/' that leaves <= 155
 * bytes before and 1..100 after it (the last such '/'), or -1 when no
 * split exists. */
long upd_tar_name_split(const char *name);
/* Write a regular-file header. */
int upd_tar_write_hdr(int fd, const char *name, uint64_t size, int64_t mtime,
		      creto_err *e) CRETO_WUR;
int upd_tar_write_pad(int fd, uint64_t size, creto_err *e) CRETO_WUR;
int upd_tar_write_end(int fd, creto_err *e) CRETO_WUR;

/* ---- payload streaming with parallel shard hashing ---- */
typedef struct upd_stream upd_stream;
int upd_stream_new(uint32_t shard_size, upd_stream **out, creto_err *e) CRETO_WUR;
void upd_stream_free(upd_stream *s);
/* Copy f->size bytes from in_fd to out_fd (-1: discard), checking digests.
 * Writes happen in the writer thread: call upd_stream_flush before closing
 * out_fd.  A digest mismatch may be reported by upd_stream_finish only. */
int upd_stream_file(upd_stream *s, const upd_file *f, int in_fd, int out_fd,
		    creto_update_rule *rule, creto_err *e) CRETO_WUR;
/* Wait until every buffer queued so far is written (before fsync/close of
 * the output file); a write error is CRETO_EOP. */
int upd_stream_flush(upd_stream *s, creto_err *e) CRETO_WUR;
/* Wait for every pending shard; first mismatch in statement order. */
int upd_stream_finish(upd_stream *s, creto_update_rule *rule, creto_err *e) CRETO_WUR;

/* ---- state database ---- */
typedef struct upd_state upd_state;
/* Open the state of dir, which must be initialised (`state init`, or state
 * made by an earlier version): otherwise CRETO_EUSAGE naming dir.  A
 * write open upgrades an earlier schema in place. */
int upd_state_open(const char *dir, int readonly, upd_state **out, creto_err *e) CRETO_WUR;
/* CRETO_OK when dir holds initialised state, else CRETO_EUSAGE naming it. */
int upd_state_initialised(const char *dir, creto_err *e) CRETO_WUR;
/* Create the state of dir (made 0700 when missing); refuses existing state. */
int upd_state_create(const char *dir, upd_state **out, creto_err *e) CRETO_WUR;
int upd_state_meta(upd_state *s, const char *k, char *out, size_t cap, creto_err *e) CRETO_WUR;
int upd_state_meta_set(upd_state *s, const char *k, const char *v, creto_err *e) CRETO_WUR;
/* One writer per state: flock DIR/lock without blocking; held by another
 * process, retry for up to wait_s seconds (0: refuse at once), then
 * CRETO_EUSAGE naming the holder's PID (which the holder writes into the
 * lock file).  *fd: close it to release. */
int upd_state_lock(const char *dir, int64_t wait_s, int (*cancelled)(void *), void *arg, int *fd,
		   creto_err *e) CRETO_WUR;
void upd_state_close(upd_state *s);
int upd_state_installed(upd_state *s, const char *type, const char *name, int64_t *version,
			creto_err *e) CRETO_WUR;
int upd_state_time_floor(upd_state *s, int64_t *floor, creto_err *e) CRETO_WUR;
int upd_state_applied(upd_state *s, const char *stmt_digest, int *applied, creto_err *e) CRETO_WUR;
int upd_state_root(upd_state *s, int64_t *version, char digest[65], creto_err *e) CRETO_WUR;
int upd_state_begin(upd_state *s, creto_err *e) CRETO_WUR;
int upd_state_commit(upd_state *s, creto_err *e) CRETO_WUR;
void upd_state_rollback(upd_state *s);
int upd_state_record_install(upd_state *s, const creto_update_result *r, int64_t created,
			     int64_t now, creto_err *e) CRETO_WUR;
int upd_state_set_root(upd_state *s, int64_t version, const char *digest, creto_err *e) CRETO_WUR;
/* The rows of the old audit table (state of earlier versions), id > after_id. */
typedef struct upd_audit_row {
	int64_t id, at, version;
	const char *source, *digest, *type, *name, *keyids, *decision, *reason; /* may be NULL */
} upd_audit_row;
int upd_state_each_audit_row(upd_state *s, int64_t after_id,
			     int (*fn)(void *arg, const upd_audit_row *r), void *arg,
			     creto_err *e) CRETO_WUR;
/* ---- the audit log of the state (auditlog.c) ---- */
/* 1 when SDIR/audit/audit.db exists. */
int upd_log_exists(const char *sdir);
/* The last `rows` decisions about packages in the log, oldest first, as
 * status rows appended to arr. */
int upd_status_log(const char *sdir, int rows, json_t *arr, creto_err *e) CRETO_WUR;
/* (type, name, version) rows for recovery; callback per row. */
int upd_state_each_installed(upd_state *s,
			     int (*fn)(void *arg, const char *type, const char *name, int64_t v),
			     void *arg, creto_err *e) CRETO_WUR;

/* ---- documents several officers sign ---- */
/* Write a new output that carries signatures or trust: created exclusively
 * (CRETO_EUSAGE "PATH: already exists (--force replaces it)"). */
int upd_write_new(const char *path, const void *data, size_t len, creto_err *e) CRETO_WUR;
/* Take an exclusive flock(2) on the document at path, for the whole
 * read-sign-replace of one signer: concurrent signers queue instead of one
 * losing the other's signature.  The document is replaced by rename, so
 * the lock is re-taken until the path still names the locked file.
 * *fd: close it to unlock (after the rename). */
int upd_doc_lock(const char *path, int *fd, creto_err *e) CRETO_WUR;

/* ---- the container ---- */
#define UPD_STMT_MEMBER "statement.json"
#define UPD_SIGS_MEMBER "signatures.json"
/* Read the next member, which must be named want and hold at most max bytes. */
int upd_read_member(int fd, const char *want, size_t max, uint8_t **buf, size_t *len,
		    creto_update_rule *rule, creto_err *e) CRETO_WUR;
/* A signatures document {"signatures": [...]}. */
int upd_parse_sigs_doc(const uint8_t *buf, size_t len, upd_sig **sigs, size_t *n,
		       creto_err *e) CRETO_WUR;
/* "models", "software", "policy" for the payload types, else NULL. */
const char *upd_kind_dir(const char *type);
/* Remove a tree of our own (staging leftovers): never follows symlinks. */
void upd_rm_tree(const char *p);

/* ---- the effective trust root (ctx.c) ---- */
/* Load the trust root at trust_path (symlinks followed: the operator's own
 * configuration) and, with st, the one the state names after a rotation.
 * root_digest_out (may be NULL) receives the digest of the root in force. */
int upd_load_effective_root(const char *trust_path, const char *sdir, upd_state *st,
			    creto_trust_root **out, char *root_digest_out, creto_err *e) CRETO_WUR;

/* ---- the state a decision is made over ---- */
typedef struct upd_snapshot {
	int64_t floor;        /* the time floor */
	int64_t installed;    /* installed version of (type, name); 0: none */
	int applied;          /* the statement digest was applied before */
	int64_t root_version; /* rotation record (0: the provisioned root) */
} upd_snapshot;
/* One read transaction: everything a decision needs to know of the state. */
int upd_state_snapshot(upd_state *s, const char *type, const char *name, const char *digest,
		       upd_snapshot *snap, creto_err *e) CRETO_WUR;
int upd_state_meta_del(upd_state *s, const char *k, creto_err *e) CRETO_WUR;
/* The meta key of a recorded intent (ctx.c). */
#define UPD_INTENT_KEY "pending_event"

/* ---- the context (ctx.c) ---- */
struct creto_update_ctx {
	char *sdir;                 /* NULL: verify without state */
	char *trust_path;
	creto_update_ctx_opts o;
	int lockfd;
	upd_state *st;
	creto_trust_root *root;     /* NULL while the --trust file is unusable */
	char root_digest[65];
	creto_err root_err;         /* why root is NULL */
	struct { long long dev, ino, size, mtime_ns, ctime_ns; int ok; } trust_id;
	int generation;             /* bumped whenever root changes */
	int sink_failed;            /* the sink refused a record: fail closed */
	creto_err sink_err;         /* its message */
};

/* Re-read the root when the --trust file changed on disk since it was
 * loaded.  A file that cannot be used: ctx->root NULL, root_err set. */
void upd_ctx_refresh_root(creto_update_ctx *c);
/* Load the root afresh (after a rotation commits). */
int upd_ctx_reload_root(creto_update_ctx *c, creto_err *e) CRETO_WUR;
/* The caller's fault injection point (crash tests only). */
void upd_crash_at(const creto_update_ctx *c, const char *point);
int upd_ctx_cancelled(const creto_update_ctx *c);

/* Events and intents.  An event about a decision, built from d:
 * component, event, outcome, subject "NAME@VERSION sha3-256:DIGEST",
 * reason (rule name), fields type/name/version/statement_digest/file/keyids. */
#define UPD_INTENT 1        /* record an intent before the event: a decision with a state commit */
int upd_record(creto_update_ctx *c, const creto_update_decision *d, const char *outcome,
	       int flags, creto_err *e) CRETO_WUR;
/* The state commit of an intent did not happen: an `aborted` event, then
 * the intent is cleared (left for recovery when the sink refuses). */
void upd_record_aborted(creto_update_ctx *c, const creto_update_decision *d, const char *why);
/* Inside the commit's transaction: the intent is done. */
int upd_intent_done(creto_update_ctx *c, creto_err *e) CRETO_WUR;
/* On open: an intent left behind means its commit never happened. */
int upd_intent_recover(creto_update_ctx *c, creto_err *e) CRETO_WUR;

/* ---- decisions (decide.c) and their facts ---- */
struct upd_facts {
	char source[4096];          /* the name given to decide */
	int64_t now;                /* the clock, read once per decision */
	upd_snapshot snap;
	int generation;             /* the context's root when decided */
	upd_statement stm;
	int have_stm;
	char stage[4096];           /* staged payload (ACCEPT, writable context) */
	uint8_t *newroot;           /* cert-rotation: the new root's bytes */
	size_t newroot_len;
	const char *component;      /* of its events */
};
/* A verdict without reading a package (the watcher's non-regular entries). */
int upd_decision_init(creto_update_decision *d, const char *name, creto_err *e) CRETO_WUR;
void upd_decision_set(creto_update_decision *d, int rc, const creto_err *why);

/* ---- recovery (recover.c) ---- */
/* Make derived state match the database: current links, trust-root.json,
 * staging and temporary files.  Under the writer lock. */
int upd_recover(creto_update_ctx *c, creto_err *e) CRETO_WUR;
int upd_switch_current(creto_update_ctx *c, const char *base, int64_t version, creto_err *e) CRETO_WUR;
/* Create TOP/SUB and fsync the parent of every directory on the way. */
int upd_mkdir_durable(const char *top, const char *sub, creto_err *e) CRETO_WUR;

/* ---- the watcher's commit steps (commit.c) ---- */
/* The state commit of a decision that changes no rows (a quarantine): its
 * intent done, one transaction. */
int upd_commit_intent(creto_update_ctx *c, creto_err *e) CRETO_WUR;

#endif
