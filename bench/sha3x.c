/*
 * bench/sha3x.c - single-thread throughput of the multi-buffer SHA3-256
 * engine (src/hash/sha3x.c) on every back end this CPU can run, beside
 * OpenSSL's EVP SHA3-256 in the same process, then all back ends' choice on
 * every core at once.
 * Usage: bench_sha3x [SECONDS_PER_FIGURE]   (default 2)
 *
 * Per core: each lane of the engine hashes its own stream fed in 1 MiB
 * pieces from memory (every call gives every lane 1 MiB, as the hashing
 * pool does with its read buffers), one digest per 64 MiB per lane (the
 * default shard), so the padding and lane restarts are counted.  Time is
 * the thread's CPU time (as `openssl speed` counts), best of 5 rounds:
 * other load on a shared machine only lowers a round's figure.
 * All cores: one thread per CPU, each with its own engine (back end chosen
 * at run time), wall time over the same work per thread.
 * Output: "name lanes MB/s" lines (MB = 10^6 bytes) and a summary; parsed
 * by bench/sha3.sh.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "creto/hash.h"
#include "hash/sha3x.h"

#define PIECE (1u << 20)
#define SHARD (64u << 20)
#define ROUNDS 5

static uint8_t *g_buf; /* SHA3X_LANES_MAX pieces, one per lane */

static double now(clockid_t clk)
{
	struct timespec ts;
	clock_gettime(clk, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Hash per_lane bytes in every lane of x, in PIECE calls, a digest at
 * every SHARD; exits on failure. */
static void run(sha3x_ctx *x, size_t per_lane)
{
	unsigned lanes = sha3x_lanes(x);
	const uint8_t *in[SHA3X_LANES_MAX];
	size_t len[SHA3X_LANES_MAX];
	uint8_t d[SHA3X_DIGEST];
	creto_err e;
	for (unsigned j = 0; j < lanes; j++) {
		in[j] = g_buf + (size_t)j * PIECE;
		len[j] = PIECE;
		if (sha3x_start(x, j, &e) != CRETO_OK)
			goto fail;
	}
	for (size_t done = 0; done < per_lane; done += PIECE) {
		if (sha3x_absorb(x, in, len, &e) != CRETO_OK)
			goto fail;
		if ((done + PIECE) % SHARD == 0 || done + PIECE >= per_lane)
			for (unsigned j = 0; j < lanes; j++)
				if (sha3x_finish(x, j, d, &e) != CRETO_OK || sha3x_start(x, j, &e) != CRETO_OK)
					goto fail;
	}
	for (unsigned j = 0; j < lanes; j++)
		if (sha3x_finish(x, j, d, &e) != CRETO_OK)
			goto fail;
	return;
fail:
	fprintf(stderr, "bench_sha3x: %s\n", e.msg);
	exit(3);
}

/* Bytes per CPU-second of one thread on impl, best of ROUNDS rounds of
 * about secs / ROUNDS each. */
static double per_core(sha3x_impl impl, double secs)
{
	sha3x_ctx *x = NULL;
	creto_err e;
	if (sha3x_new(impl, 0, &x, &e) != CRETO_OK) {
		fprintf(stderr, "bench_sha3x: %s\n", e.msg);
		exit(3);
	}
	unsigned lanes = sha3x_lanes(x);
	double best = 0;
	for (int r = 0; r < ROUNDS; r++) {
		size_t per_lane = 0;
		double t0 = now(CLOCK_THREAD_CPUTIME_ID), t;
		do {
			run(x, 16u * PIECE);
			per_lane += 16u * PIECE;
			t = now(CLOCK_THREAD_CPUTIME_ID) - t0;
		} while (t < secs / ROUNDS);
		double v = (double)per_lane * lanes / t;
		if (v > best)
			best = v;
	}
	sha3x_free(x);
	return best;
}

struct job {
	size_t per_lane;
};

static void *worker(void *arg)
{
	struct job *j = arg;
	sha3x_ctx *x = NULL;
	creto_err e;
	if (sha3x_new(SHA3X_IMPL_AUTO, 0, &x, &e) != CRETO_OK) {
		fprintf(stderr, "bench_sha3x: %s\n", e.msg);
		exit(3);
	}
	run(x, j->per_lane);
	sha3x_free(x);
	return NULL;
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 2.0;
	if (secs <= 0)
		secs = 2.0;
	g_buf = malloc((size_t)SHA3X_LANES_MAX * PIECE);
	if (g_buf == NULL)
		return 3;
	for (size_t i = 0; i < (size_t)SHA3X_LANES_MAX * PIECE; i++)
		g_buf[i] = (uint8_t)(i * 2654435761u >> 13);

	sha3x_impl best = sha3x_choose(0);
	printf("chosen %s\n", sha3x_impl_name(best));
	printf("calibration");
	for (int i = 1; i < SHA3X_IMPL_COUNT; i++)
		printf(" %s=%.0f", sha3x_impl_name((sha3x_impl)i), sha3x_calibrated_rate((sha3x_impl)i) / 1e6);
	printf("\n");
	double ossl = 0;
	for (int i = 1; i < SHA3X_IMPL_COUNT; i++) {
		sha3x_impl im = (sha3x_impl)i;
		if (!sha3x_impl_available(im))
			continue;
		double v = per_core(im, secs);
		if (im == SHA3X_IMPL_OPENSSL)
			ossl = v;
		printf("core %s %u %.0f %.2f\n", sha3x_impl_name(im), sha3x_impl_lanes(im), v / 1e6,
		       ossl > 0 ? v / ossl : 0);
	}

	/* all cores, the chosen back end, the same work per thread */
	unsigned threads = creto_hash_default_threads();
	unsigned lanes = sha3x_impl_lanes(best);
	double rate1 = per_core(best, secs / 4); /* sizes the work: about secs per thread */
	size_t per_lane = (size_t)(rate1 * secs / lanes) / PIECE * PIECE;
	if (per_lane < PIECE)
		per_lane = PIECE;
	pthread_t *tid = calloc(threads, sizeof(*tid));
	struct job job = {per_lane};
	if (tid == NULL)
		return 3;
	double t0 = now(CLOCK_MONOTONIC);
	for (unsigned t = 0; t < threads; t++)
		if (pthread_create(&tid[t], NULL, worker, &job) != 0)
			return 3;
	for (unsigned t = 0; t < threads; t++)
		pthread_join(tid[t], NULL);
	double wall = now(CLOCK_MONOTONIC) - t0;
	printf("all %s %u %.0f threads=%u\n", sha3x_impl_name(best), lanes,
	       (double)per_lane * lanes * threads / wall / 1e6, threads);
	free(tid);
	free(g_buf);
	return 0;
}
