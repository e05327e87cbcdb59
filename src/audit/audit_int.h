/*
 * audit_int.h - internals shared by the files of src/audit/ (docs/audit.md):
 * entry.c (canonical JSON entries), tree.c (RFC 6962 hashing and proofs),
 * note.c (C2SP signed-note checkpoints), log.c (the SQLite store, appends,
 * group commit), check.c (the streaming verifier, export, archive).
 */
#ifndef CRETO_AUDIT_INT_H
#define CRETO_AUDIT_INT_H

#include <stddef.h>
#include <stdint.h>

#include "creto/audit.h"
#include "creto/sig.h"

#define AUD_HASH 32
#define AUD_LEVELS 64 /* tree levels a uint64 size can need */

/* ---- entries (entry.c) ---- */

/* Encode ev with seq and time_us as the canonical JSON entry into
 * out[CRETO_AUDIT_ENTRY_MAX]; *len gets its length.  CRETO_EUSAGE for an
 * event that breaks the rules (component/event/outcome not a token, a bad
 * or repeated field key) or an entry over CRETO_AUDIT_ENTRY_MAX bytes. */
int aud_entry_encode(const creto_event *ev, uint64_t seq, int64_t time_us, char *out, size_t *len,
		     creto_err *e) CRETO_WUR;

/* A parsed entry: spans into the parsed buffer (JSON string contents, still
 * JSON-escaped: only \\ and \" can occur); n == 0 and p == NULL when absent. */
typedef struct aud_span {
	const char *p;
	size_t n;
} aud_span;

typedef struct aud_entry {
	uint64_t seq;
	int64_t time_us;
	aud_span component, event, outcome, subject, reason, actor;
	aud_span fields; /* the raw text of the "fields" object, braces included */
} aud_entry;

/* Parse one canonical entry strictly (the exact form aud_entry_encode
 * writes: key order, no whitespace, escape.h text in every string, integer
 * forms).  CRETO_EREJECT naming the first problem. */
int aud_entry_parse(const char *buf, size_t len, aud_entry *out, creto_err *e) CRETO_WUR;

/* Decode a span's JSON escapes (\\ and \") into out (outsz bytes, NUL
 * terminated, cut when too small). */
void aud_span_text(const aud_span *s, char *out, size_t outsz);

/* ---- tree (tree.c) ---- */

void aud_leaf_hash(const void *entry, size_t len, uint8_t out[AUD_HASH]);
void aud_node_hash(const uint8_t l[AUD_HASH], const uint8_t r[AUD_HASH], uint8_t out[AUD_HASH]);

/* The compact range [0, size): frontier[l] holds the hash of the perfect
 * subtree of 2^l leaves that bit l of size stands for. */
typedef struct aud_frontier {
	uint64_t size;
	uint8_t h[AUD_LEVELS][AUD_HASH];
} aud_frontier;

/* Add one leaf hash.  For each perfect subtree completed (level >= 1),
 * done(level, index, hash, ctx) is called, lowest first; a nonzero return
 * stops and is returned. */
int aud_frontier_push(aud_frontier *f, const uint8_t leaf[AUD_HASH],
		      int (*done)(void *ctx, unsigned level, uint64_t index, const uint8_t h[AUD_HASH]),
		      void *ctx);
/* Root hash of [0, f->size) (SHA-256 of "" for the empty tree). */
void aud_frontier_root(const aud_frontier *f, uint8_t out[AUD_HASH]);

/* Where proofs read perfect subtree hashes: level 0 = leaf hashes. */
typedef int (*aud_node_fn)(void *ctx, unsigned level, uint64_t index, uint8_t out[AUD_HASH],
			   creto_err *e);

/* RFC 9162 section 2.1.3 inclusion proof of leaf idx in the tree of size
 * n; path has room for AUD_LEVELS hashes; *plen gets the count. */
int aud_inclusion_proof(aud_node_fn get, void *ctx, uint64_t idx, uint64_t n,
			uint8_t path[][AUD_HASH], size_t *plen, creto_err *e) CRETO_WUR;
/* The root an inclusion path leads to (RFC 9162 2.1.3.2); -1 when the
 * path does not fit (idx, n). */
int aud_inclusion_root(uint64_t idx, uint64_t n, const uint8_t leaf[AUD_HASH],
		       const uint8_t (*path)[AUD_HASH], size_t plen, uint8_t root[AUD_HASH]);
/* RFC 9162 section 2.1.4 consistency proof from size m to size n. */
int aud_consistency_proof(aud_node_fn get, void *ctx, uint64_t m, uint64_t n,
			  uint8_t path[][AUD_HASH], size_t *plen, creto_err *e) CRETO_WUR;
/* Root of [0, n) from stored subtree hashes: O(log n) reads. */
int aud_root_at(aud_node_fn get, void *ctx, uint64_t n, uint8_t out[AUD_HASH],
		creto_err *e) CRETO_WUR;

/* ---- checkpoints (note.c) ---- */

#define AUD_ORIGIN_MAX 255
#define AUD_NOTE_MAX 16384 /* bytes of one signed checkpoint */

typedef struct aud_checkpoint {
	char origin[AUD_ORIGIN_MAX + 1];
	uint64_t size;
	uint8_t root[AUD_HASH];
	size_t body_len; /* bytes of the note text (the signed part) */
} aud_checkpoint;

/* 0 when origin is a valid origin line / key name (1..255 bytes of
 * printable ASCII, no space, no '+'). */
int aud_origin_check(const char *origin, creto_err *e) CRETO_WUR;

/* Sign a checkpoint; *out is the malloc'ed signed note text. */
int aud_note_sign(creto_signer *s, const char *origin, uint64_t size, const uint8_t root[AUD_HASH],
		  char **out, size_t *outlen, creto_err *e) CRETO_WUR;
/* Parse a signed checkpoint strictly (body, blank line, signature lines).
 * Signatures are not checked. */
int aud_note_parse(const char *text, size_t len, aud_checkpoint *out, creto_err *e) CRETO_WUR;
/* Parse and check that a signature line of pub (key name = the origin, key
 * id per docs/audit.md) verifies.  CRETO_EREJECT otherwise. */
int aud_note_verify(const char *text, size_t len, const creto_pubkey *pub, aud_checkpoint *out,
		    creto_err *e) CRETO_WUR;

/* ---- the SQLite store (store.c) ---- */
struct sqlite3;

#define AUD_DB_NAME "audit.db"
#define AUD_LOCK_NAME "lock"
#define AUD_APP_ID 0x43524155 /* "CRAU" */
#define AUD_SCHEMA_VERSION 1
/* Levels 1..AUD_LOW_LEVELS are not stored: recomputed from at most
 * 2^AUD_LOW_LEVELS adjacent leaf hashes when a proof needs one, which
 * saves 7 of every 8 node rows on the append path. */
#define AUD_LOW_LEVELS 3
#define AUD_NODE_ID(level, index) ((int64_t)(((uint64_t)(level) << 48) | (uint64_t)(index)))

typedef struct aud_db {
	struct sqlite3 *db;
	char origin[AUD_ORIGIN_MAX + 1];
	uint64_t base;                    /* entries before base were archived */
	int64_t base_time;                /* time of the last archived entry */
	struct sqlite3_stmt *q_leaf, *q_node, *q_begin, *q_commit, *q_leaves;
	struct aud_ncache *cache;         /* readers: recently read tree nodes */
} aud_db;

/* Open DIR/audit.db (readonly or read-write), check its identity, read the
 * origin and base.  CRETO_EUSAGE when dir holds no audit log. */
int aud_db_open(aud_db *d, const char *dir, int readonly, creto_err *e) CRETO_WUR;
void aud_db_close(aud_db *d);
/* Entries held: *size = the tree size (base + rows, from max(seq)). */
int aud_db_size(aud_db *d, uint64_t *size, creto_err *e) CRETO_WUR;
/* The aud_node_fn over the store (ctx = aud_db*). */
int aud_db_node(void *ctx, unsigned level, uint64_t index, uint8_t out[AUD_HASH], creto_err *e);
/* Frontier of [0, size) from stored nodes. */
int aud_db_frontier(aud_db *d, uint64_t size, aud_frontier *f, creto_err *e) CRETO_WUR;
int aud_db_err(aud_db *d, creto_err *e, const char *what);
/* The newest stored checkpoint note (malloc'd, NUL-terminated) into *out,
 * its length into *len; *out NULL when there is none. */
int aud_db_last_checkpoint(aud_db *d, char **out, size_t *len, creto_err *e) CRETO_WUR;

/* ---- the writer's internals that archive (check.c) needs (log.c) ---- */
/* Sync, then hold the writer's database lock; *size = tree size. */
aud_db *aud_log_db_lock(creto_audit *a, uint64_t *size);
void aud_log_db_unlock(creto_audit *a);
void aud_log_crash(creto_audit *a, const char *point);

/* ---- export files (check.c) ---- */
#define AUD_EXPORT_TAG "creto-audit-export-v1"
#define AUD_LINE_MAX (2 * AUD_NOTE_MAX + 64) /* longest line of an export */

#endif
