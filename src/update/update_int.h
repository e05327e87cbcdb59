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
int upd_state_audit(upd_state *s, int64_t now, const char *source, const creto_update_result *r,
		    const char *decision, const char *reason, creto_err *e) CRETO_WUR;
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

/* ---- used by the diode watcher ---- */
/* Load the trust root at trust_path as verify/apply would (with the state
 * of sdir: rotation record, digest): CRETO_EREJECT when it is refused,
 * CRETO_EOP when it cannot be read. */
int upd_root_check(const char *trust_path, const char *sdir, creto_err *e) CRETO_WUR;
/* As upd_root_check, and the version and expiry of the root in force. */
int upd_root_info(const char *trust_path, const char *sdir, int64_t *version, int64_t *expires,
		  creto_err *e) CRETO_WUR;
/* creto_update_apply without the `rejected` audit row (the watcher writes
 * one `quarantined` row once the package is in quarantine/). */
int upd_apply_watched(int fd, const char *name, const creto_update_opts *o,
		      creto_update_result *res, creto_err *e) CRETO_WUR;


#endif
