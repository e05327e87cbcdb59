/*
 * creto/hash.h - streaming digests (SHA3-256, SHA-256 over OpenSSL EVP) and
 * the parallel hashing engine that model integrity and the update payload
 * checks share: byte ranges of files on disk (creto_hash_ranges), and data
 * that arrives once, in order, from a descriptor (creto_hash_stream).
 *
 * The pool hashes a list of byte ranges of files: each range gets its own
 * digest (a whole file is one range; a shard of a file is one range).  Work
 * is spread over a few threads (one per CPU by default); every thread owns
 * one bounded read buffer (CRETO_HASH_BUFSIZE), reads with pread(2) or, for
 * ranges of 1 MiB or more on the multi-lane SHA3-256 engine, from bounded
 * mapped windows of the file (4 MiB per lane, unmapped as they are done; a
 * file truncated under a window is the error "changed while being hashed",
 * never SIGBUS: the pool installs a SIGBUS handler once per process, which
 * passes every other SIGBUS on to the handler it replaced;
 * docs/sha3-engine.md), and reads each byte of each range exactly once.
 * Memory does not grow with the size of the data, only (slightly) with the
 * number of threads.
 *
 * Thread safety: a creto_hash_ctx belongs to one thread; the pool functions
 * are reentrant (they start and join their own threads per call).
 */
#ifndef CRETO_HASH_H
#define CRETO_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "creto/error.h"

typedef enum creto_hash_alg {
	CRETO_HASH_NONE = 0,
	CRETO_HASH_SHA3_256 = 1, /* the default everywhere */
	CRETO_HASH_SHA256 = 2,
} creto_hash_alg;

#define CRETO_HASH_MAX 32               /* largest digest, bytes */
#define CRETO_HASH_HEX_MAX (2 * CRETO_HASH_MAX + 1)
#define CRETO_HASH_BUFSIZE (1u << 20)   /* read buffer per worker thread */
#define CRETO_HASH_THREADS_MAX 256      /* upper bound on worker threads */

/* "sha3-256" / "sha256"; NULL for an unknown value. */
const char *creto_hash_name(creto_hash_alg alg);
/* Inverse of creto_hash_name; CRETO_HASH_NONE when unknown. */
creto_hash_alg creto_hash_from_name(const char *name);
/* Digest length in bytes (32 for both); 0 for an unknown value. */
size_t creto_hash_len(creto_hash_alg alg);

/* Number of CPUs this process may run on (sched_getaffinity), at least 1. */
unsigned creto_hash_default_threads(void);

/* ---- FIPS and the SHA3-256 engine ----
 * SHA3-256 in the pool and the streams goes through a multi-lane engine
 * that hashes several shards or files at once on one core (AVX2, AVX-512;
 * docs/sha3-engine.md), chosen at first use by what is fastest on the
 * running CPU.  It changes the speed, never a digest. */

/* FIPS for this process from now on (on = 1; 0 withdraws the request):
 * every digest then comes from OpenSSL (whose SHA3 may be the validated
 * one), never from the engine's own Keccak.  OpenSSL's FIPS provider as the
 * default (EVP_default_properties_is_fips_enabled) has the same effect
 * without this call.  Call it before hashing starts (e.g. for a --fips
 * option), not while another thread hashes. */
void creto_hash_set_fips(int on);
/* 1 when hashing uses OpenSSL only (creto_hash_set_fips(1) or OpenSSL's
 * FIPS default), else 0. */
int creto_hash_fips(void);
/* The back end the pool and the streams use for alg now: "avx512", "avx2"
 * or "openssl" (always "openssl" for SHA-256 and under FIPS).  The first
 * call for SHA3-256 runs the engine's calibration (a few ms). */
const char *creto_hash_engine(creto_hash_alg alg);

/* ---- streaming ---- */
typedef struct creto_hash_ctx creto_hash_ctx;

/* Start a digest of alg.  *out is owned by the caller (creto_hash_free).
 * An unknown alg is CRETO_EUSAGE; an OpenSSL failure CRETO_EOP. */
int creto_hash_init(creto_hash_alg alg, creto_hash_ctx **out, creto_err *e) CRETO_WUR;
/* Absorb len bytes (len may be 0, data then may be NULL). */
int creto_hash_update(creto_hash_ctx *c, const void *data, size_t len, creto_err *e) CRETO_WUR;
/* Finish into out (creto_hash_len bytes, at most CRETO_HASH_MAX) and reset
 * the context to a fresh digest of the same algorithm, so it can be reused. */
int creto_hash_final(creto_hash_ctx *c, uint8_t out[CRETO_HASH_MAX], creto_err *e) CRETO_WUR;
creto_hash_alg creto_hash_ctx_alg(const creto_hash_ctx *c);
void creto_hash_free(creto_hash_ctx *c);

/* One-shot digest of a buffer. */
int creto_hash_buf(creto_hash_alg alg, const void *data, size_t len, uint8_t out[CRETO_HASH_MAX],
		   creto_err *e) CRETO_WUR;

/* Digest of bytes [offset, offset+length) of an open file, read with pread
 * into a CRETO_HASH_BUFSIZE buffer, in the calling thread.  A file shorter
 * than offset+length is CRETO_EOP ("file changed while being hashed");
 * name (may be NULL) is used in error messages. */
int creto_hash_fd_range(creto_hash_alg alg, int fd, uint64_t offset, uint64_t length,
			const char *name, uint8_t out[CRETO_HASH_MAX], creto_err *e) CRETO_WUR;

/* ---- the parallel pool ---- */

/* What a file was when it was listed: identity, size and change times.
 * Two equal idents mean the file was not replaced and, as far as the file
 * system's timestamp granularity can tell, not written in between. */
typedef struct creto_hash_ident {
	uint64_t dev, ino, size;
	int64_t mtime_sec, mtime_nsec, ctime_sec, ctime_nsec;
} creto_hash_ident;

/* The ident of a stat result. */
void creto_hash_ident_from_stat(const struct stat *st, creto_hash_ident *out);
/* 1 when a and b are equal. */
int creto_hash_ident_equal(const creto_hash_ident *a, const creto_hash_ident *b);

/* One unit of work: a byte range of a file, and its digest once hashed.
 * The file is either an open descriptor (fd >= 0; the pool never closes it
 * and uses only pread and mmap, so many ranges may share one fd), or path opened
 * under dirfd (AT_FDCWD allowed) by the worker with
 * O_RDONLY|O_CLOEXEC|O_NOFOLLOW|O_NONBLOCK (a FIFO never blocks it) and no
 * symlink anywhere in path (openat2 RESOLVE_NO_SYMLINKS|RESOLVE_BENEATH,
 * falling back to O_NOFOLLOW on the last component where openat2 is
 * missing); it must be a regular file.  Set fd = -1 to use path. */
typedef struct creto_hash_range {
	int fd;
	int dirfd;
	const char *path;  /* also names the range in error messages (with fd too, may be NULL) */
	uint64_t offset;
	uint64_t length;
	/* Optional (NULL: not checked): what the file must still be.  The
	 * descriptor that is hashed is fstat'ed before and again after the
	 * range is read; any difference from *expect fails the pool with
	 * CRETO_EOP ("changed while being hashed") and sets changed. */
	const creto_hash_ident *expect;
	int changed;                    /* out: 1 when *expect did not hold */
	uint8_t digest[CRETO_HASH_MAX]; /* out: creto_hash_len(alg) bytes */
} creto_hash_range;

/* Hash every range of r[0..n) with threads workers (0 = one per CPU; never
 * more than n or CRETO_HASH_THREADS_MAX).  Large ranges are started first so
 * that the threads finish together.  On failure the first error met is
 * returned (naming the path and offset), the other workers stop early, and
 * the digests are unspecified.  CRETO_EOP for I/O errors, files that
 * shrank and files that differ from their expect ident, CRETO_EREJECT for a path that is not a regular file or goes
 * through a symlink, CRETO_EUSAGE for a bad alg. */
int creto_hash_ranges(creto_hash_alg alg, creto_hash_range *r, size_t n, unsigned threads,
		      creto_err *e) CRETO_WUR;

/* Shards of one open file: bytes [0, size) cut into shards of shard_size
 * (the last one shorter; size 0 gives no shard), hashed in parallel.
 * *digests is malloc'ed (caller frees) with *nshards * creto_hash_len(alg)
 * bytes, shard i at i * creto_hash_len(alg).  name (may be NULL) is used in
 * error messages.  shard_size 0 is CRETO_EUSAGE. */
int creto_hash_file_shards(creto_hash_alg alg, int fd, uint64_t size, uint64_t shard_size,
			   unsigned threads, const char *name, uint8_t **digests,
			   size_t *nshards, creto_err *e) CRETO_WUR;

/* ---- streams: data read once, in order, from a descriptor ---- */

/* A stream is cut into shards of shard_size bytes.  The caller's thread
 * reads each shard into one of a few shard buffers and hands it on; worker
 * threads hash the shards in parallel (and check them against expected
 * digests), while one writer thread copies the same buffers, in order, to an
 * output descriptor when one is given, so that the data is read once and
 * never read back (with O_DIRECT for shards whose position and length are
 * multiples of 4 KiB, where the file system takes it: the bytes go from the
 * hashed buffer to the disk without a page-cache copy; the descriptor's
 * flags are put back after each shard).  A buffer is reused once hashed and written.  With a
 * multi-lane SHA3-256 back end of k lanes (creto_hash_engine) each worker
 * hashes up to k queued shards at once in lock-step, pointing the engine
 * into the shard buffers (no copy).  Memory is nbuf * shard_size, whatever
 * the length of the data: nbuf = threads * k + 3 (k = 1 for SHA-256,
 * OpenSSL or FIPS), but never more than the larger of threads + 3 and
 * max(threads, 2) * CRETO_HASH_STREAM_MEM / shard_size; with k > 1 the buffers go
 * to as few workers as keep their k lanes busy (at least one, at most
 * threads). */
typedef struct creto_hash_stream creto_hash_stream;

#define CRETO_HASH_STREAM_THREADS_MAX 16
#define CRETO_HASH_STREAM_SHARD_MAX (256u << 20)
#define CRETO_HASH_STREAM_MEM (24u << 20) /* buffer budget per thread, beyond threads + 3 shards */

/* threads: hashing workers (0 = one per CPU, at most 8; never more than
 * CRETO_HASH_STREAM_THREADS_MAX).  shard_size: 1..CRETO_HASH_STREAM_SHARD_MAX
 * bytes, else CRETO_EUSAGE.  The stream is used by one thread. */
int creto_hash_stream_new(creto_hash_alg alg, size_t shard_size, unsigned threads,
			  creto_hash_stream **out, creto_err *e) CRETO_WUR;
/* Waits for queued work, stops the threads, frees the buffers. */
void creto_hash_stream_free(creto_hash_stream *s);

/* Read length bytes from in_fd (read(2) from its current position: a file,
 * pipe or socket; exactly length bytes are consumed when all goes well) as
 * ceil(length / shard_size) shards, the last one shorter; length 0 is one
 * empty shard.  For shard k (k = 0..n-1):
 *   - expect (may be NULL): its digest must equal expect + k * hash_len;
 *   - digests (may be NULL): its digest is stored at digests + k * hash_len;
 * both arrays hold n digests and, like name, must stay valid until
 * creto_hash_stream_finish returns.  out_fd >= 0: the bytes are also written
 * there, in order, by the writer thread (call creto_hash_stream_flush before
 * fsync or close of out_fd).  name names the data in messages.
 *
 * Returns once the last shard is queued; hashing goes on in the background.
 * CRETO_EREJECT when a failure is known (a digest that differs, from this or
 * an earlier call, or in_fd ending before length bytes): then reading stops,
 * pending shards are waited for, and creto_hash_stream_failure tells the
 * first failure in stream order.  CRETO_EOP for a read, write or hashing
 * error.  A failure is sticky: every later call returns it. */
int creto_hash_stream_fd(creto_hash_stream *s, int in_fd, uint64_t length, int out_fd,
			 const char *name, const uint8_t *expect, uint8_t *digests,
			 creto_err *e) CRETO_WUR;

/* Wait until every byte queued for an output descriptor is written.
 * CRETO_EOP on a write error (naming the data). */
int creto_hash_stream_flush(creto_hash_stream *s, creto_err *e) CRETO_WUR;

/* Wait for every queued shard: CRETO_OK when every digest was computed
 * (and matched its expect); otherwise as creto_hash_stream_fd. */
int creto_hash_stream_finish(creto_hash_stream *s, creto_err *e) CRETO_WUR;

typedef enum creto_hash_fail_kind {
	CRETO_HASH_FAIL_NONE = 0,
	CRETO_HASH_FAIL_MISMATCH = 1, /* a shard's digest differs from its expect */
	CRETO_HASH_FAIL_SHORT = 2,    /* in_fd ended before length bytes */
} creto_hash_fail_kind;

typedef struct creto_hash_stream_fail {
	creto_hash_fail_kind kind;
	const char *name;         /* as given to creto_hash_stream_fd */
	uint64_t shard, nshards;  /* MISMATCH: shard k (0-based) of nshards */
	uint64_t got, want;       /* SHORT: bytes read, bytes wanted */
} creto_hash_stream_fail;

/* The first failure in stream order (kind NONE when there is none).  A
 * shard that differs is reported before a short read that came after it. */
creto_hash_stream_fail creto_hash_stream_failure(creto_hash_stream *s);

#endif
