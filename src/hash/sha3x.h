/*
 * sha3x.h - internal to src/hash: the multi-buffer SHA3-256 engine.  Not a
 * public contract (the pool in pool.c and the tests and benchmarks use it).
 *
 * SHA3-256 has no parallel mode, but creto hashes many independent messages
 * (files, shards of files): the engine carries several of them ("lanes")
 * through one multi-way Keccak-f[1600] in lock-step.  Every lane is an
 * ordinary SHA3-256 stream (FIPS 202); the engine changes the speed, never a
 * digest.  Back ends:
 *
 *   openssl  OpenSSL EVP SHA3-256, one lane: the baseline, the fallback, and
 *            the only back end when OpenSSL's FIPS provider is active or the
 *            caller asks for FIPS (SHA3X_FIPS);
 *   scalar   the engine's own portable one-state Keccak, one lane (it also
 *            finishes every lane of the multi-way back ends and carries lanes
 *            left alone in a batch);
 *   avx2     four lanes in AVX2 registers (x86-64);
 *   avx512   eight lanes in AVX-512 registers (x86-64, AVX512F).
 *
 * SHA3X_IMPL_AUTO picks, once per process, the fastest of the back ends this
 * CPU can run, measured by a short calibration at first use (a few ms of CPU
 * time: each back end against OpenSSL on the same data), never by
 * instruction-set flags alone; a multi-way back end is chosen only if it
 * beats OpenSSL's single stream by at least 5% per byte on this CPU.  The
 * environment switches CRETO_SHA3_NO_AVX512=1 and CRETO_SHA3_NO_AVX2=1 only
 * restrict (NO_AVX2 turns off AVX-512 as well, a superset); they are read
 * once, at first use.
 *
 * Use: sha3x_new, then for each message sha3x_start(lane), any number of
 * sha3x_absorb (all lanes at once) or sha3x_update (one lane) calls, and
 * sha3x_finish(lane); a finished lane can start a new message at once while
 * the other lanes carry on.  Lock-step pays when every call gives the busy
 * lanes about the same amount of data (e.g. 1 MiB each); lanes with less
 * data drop out of the batch early, and a lane left alone is carried by the
 * scalar kernel when that is cheaper than the multi-way one.
 *
 * Thread safety: a sha3x_ctx belongs to one thread; the choice and
 * calibration are process-wide, done once (pthread_once).
 */
#ifndef CRETO_HASH_SHA3X_H
#define CRETO_HASH_SHA3X_H

#include <stddef.h>
#include <stdint.h>

#include "creto/error.h"

#define SHA3X_DIGEST 32   /* SHA3-256 digest bytes */
#define SHA3X_RATE 136    /* SHA3-256 block (rate) bytes */
#define SHA3X_LANES_MAX 8 /* the widest back end */

typedef enum sha3x_impl {
	SHA3X_IMPL_AUTO = 0,
	SHA3X_IMPL_OPENSSL = 1,
	SHA3X_IMPL_SCALAR = 2,
	SHA3X_IMPL_AVX2 = 3,
	SHA3X_IMPL_AVX512 = 4,
} sha3x_impl;
#define SHA3X_IMPL_COUNT 5

/* flags */
#define SHA3X_FIPS 0x1u /* OpenSSL only (the --fips option) */

/* "auto", "openssl", "scalar", "avx2", "avx512"; NULL when out of range. */
const char *sha3x_impl_name(sha3x_impl impl);
/* Inverse of sha3x_impl_name; -1 when unknown. */
int sha3x_impl_from_name(const char *name);
/* Lanes of a back end (1, 4 or 8); 0 for AUTO or out of range. */
unsigned sha3x_impl_lanes(sha3x_impl impl);
/* Non-zero if impl is compiled in, the CPU has it and no switch turned it
 * off (OpenSSL and scalar always are). */
int sha3x_impl_available(sha3x_impl impl);
/* The back end AUTO means for these flags: OpenSSL under FIPS (flags,
 * sha3x_set_fips or an active FIPS provider), otherwise the back end forced
 * by sha3x_force, otherwise the calibrated choice. */
sha3x_impl sha3x_choose(unsigned flags);
/* FIPS for the whole process from now on (on = 1) or no longer asked for
 * (0; OpenSSL's own FIPS default still counts): creto_hash_set_fips. */
void sha3x_set_fips(int on);
/* Non-zero when these flags, sha3x_set_fips or OpenSSL's default
 * properties (EVP_default_properties_is_fips_enabled) ask for FIPS. */
int sha3x_fips(unsigned flags);
/* Tests and benchmarks only: make AUTO mean impl for the whole process
 * (SHA3X_IMPL_AUTO: back to the calibrated choice).  FIPS still wins; an
 * impl the CPU lacks makes sha3x_new fail with CRETO_EUSAGE.  Not for
 * production code: the calibrated choice is the fast one. */
void sha3x_force(sha3x_impl impl);
/* The calibration's throughput of impl on this CPU, bytes per CPU-second of
 * one thread (0 when impl is not available).  Runs the calibration if it
 * has not run yet. */
double sha3x_calibrated_rate(sha3x_impl impl);

typedef struct sha3x_ctx sha3x_ctx;

/* An engine with back end impl (AUTO: sha3x_choose(flags)), all lanes idle.
 * *out is owned by the caller (sha3x_free).  CRETO_EUSAGE for a back end
 * that is not available or (with SHA3X_FIPS or an active FIPS provider) is
 * not OpenSSL; CRETO_EOP when out of memory or OpenSSL fails. */
int sha3x_new(sha3x_impl impl, unsigned flags, sha3x_ctx **out, creto_err *e) CRETO_WUR;
/* Number of lanes (sha3x_impl_lanes of the back end in use). */
unsigned sha3x_lanes(const sha3x_ctx *x);
/* The back end in use (never AUTO). */
sha3x_impl sha3x_ctx_impl(const sha3x_ctx *x);
/* Start a new message in lane (< sha3x_lanes), dropping whatever the lane
 * held.  CRETO_EOP if OpenSSL fails. */
int sha3x_start(sha3x_ctx *x, unsigned lane, creto_err *e) CRETO_WUR;
/* Absorb len[j] bytes at in[j] into every lane j < sha3x_lanes(x); a lane
 * with len[j] == 0 is left as it is (in[j] may then be NULL), every other
 * lane must have been started.  The inputs may overlap.  CRETO_EUSAGE for a
 * lane not started, CRETO_EOP if OpenSSL fails. */
int sha3x_absorb(sha3x_ctx *x, const uint8_t *const in[], const size_t len[],
		 creto_err *e) CRETO_WUR;
/* Absorb len bytes into one lane (the others wait); same failures. */
int sha3x_update(sha3x_ctx *x, unsigned lane, const void *data, size_t len,
		 creto_err *e) CRETO_WUR;
/* Finish lane's message into out; the lane is idle afterwards.
 * CRETO_EUSAGE for a lane not started, CRETO_EOP if OpenSSL fails. */
int sha3x_finish(sha3x_ctx *x, unsigned lane, uint8_t out[SHA3X_DIGEST], creto_err *e) CRETO_WUR;
void sha3x_free(sha3x_ctx *x);

#endif
