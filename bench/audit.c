/*
 * bench/audit.c - the driver behind bench/audit.sh (docs/audit.md
 * "Performance").  Library calls in one process; the CLI's start is not
 * counted.
 *   bench_audit append DIR N      group-commit appends (creto_audit_submit
 *                                 from one thread, then one sync): entries/s
 *   bench_audit sqlite DB N       baseline: the same entries as plain SQLite
 *                                 inserts (WAL, synchronous=NORMAL, 1000
 *                                 rows per transaction): rows/s
 *   bench_audit verify DIR        creto_audit_verify over the log: seconds
 *   bench_audit entries DIR FILE  the entries' bytes (what verify hashes)
 *                                 into FILE, for the sha256sum baseline
 *   bench_audit prove DIR K       K warm inclusion proofs of random entries:
 *                                 microseconds per proof, node reads per proof
 * Checkpoints are signed by an Ed25519 key made from a fixed seed.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "creto/audit.h"
#include "creto/sig.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static creto_signer *bench_key(void)
{
	uint8_t seed[32];
	memset(seed, 0x42, sizeof(seed));
	creto_signer *s = NULL;
	creto_err e;
	if (creto_signer_from_secret(CRETO_ALG_ED25519, seed, 32, &s, &e) != 0) {
		fprintf(stderr, "key: %s\n", e.msg);
		exit(3);
	}
	return s;
}

/* A gateway request record: what the hot path writes. */
static void mk_event(uint64_t i, creto_event *ev, creto_event_field f[5], char agent[32], char jti[40])
{
	static const char prompt[] = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
	snprintf(agent, 32, "agent-%06llu", (unsigned long long)(i % 100000));
	snprintf(jti, 40, "jti-%016llx", (unsigned long long)(i * 2654435761u));
	f[0] = (creto_event_field){"bytes_in", NULL, (int64_t)(i % 4096)};
	f[1] = (creto_event_field){"bytes_out", NULL, (int64_t)(i % 65536)};
	f[2] = (creto_event_field){"jti", jti, 0};
	f[3] = (creto_event_field){"prompt_sha256", prompt, 0};
	f[4] = (creto_event_field){"status", NULL, 200};
	*ev = (creto_event){"gateway", "request", "ok", "model llama-3-70b-instruct", NULL, agent, f, 5};
}

static int cmd_append(const char *dir, uint64_t n)
{
	creto_err e;
	creto_signer *s = bench_key();
	if (creto_audit_init(dir, "bench.example/audit", &e) != 0) {
		fprintf(stderr, "%s\n", e.msg);
		return 3;
	}
	creto_audit_opts o = {.signer = s, .flush_ms = 100};
	creto_audit *a;
	if (creto_audit_open(dir, &o, &a, &e) != 0) {
		fprintf(stderr, "%s\n", e.msg);
		return 3;
	}
	double t0 = now_s(), c0 = cpu_s();
	for (uint64_t i = 0; i < n; i++) {
		creto_event ev;
		creto_event_field f[5];
		char agent[32], jti[40];
		mk_event(i, &ev, f, agent, jti);
		if (creto_audit_submit(a, &ev, &e) != 0) {
			fprintf(stderr, "submit: %s\n", e.msg);
			return 3;
		}
	}
	if (creto_audit_sync(a, &e) != 0) {
		fprintf(stderr, "sync: %s\n", e.msg);
		return 3;
	}
	double t1 = now_s(), c1 = cpu_s();
	creto_audit_close(a); /* + the final checkpoint */
	creto_signer_free(s);
	/* N, wall s, entries/s (wall), CPU s of all threads, entries per CPU second */
	printf("append %llu %.3f %.0f %.3f %.0f\n", (unsigned long long)n, t1 - t0, (double)n / (t1 - t0),
	       c1 - c0, (double)n / (c1 - c0));
	return 0;
}

static int cmd_sqlite(const char *path, uint64_t n)
{
	sqlite3 *db;
	if (sqlite3_open(path, &db) != SQLITE_OK ||
	    sqlite3_exec(db,
			 "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
			 "CREATE TABLE t(seq INTEGER PRIMARY KEY, entry BLOB NOT NULL)",
			 NULL, NULL, NULL) != SQLITE_OK) {
		fprintf(stderr, "sqlite: %s\n", sqlite3_errmsg(db));
		return 3;
	}
	sqlite3_stmt *q;
	if (sqlite3_prepare_v2(db, "INSERT INTO t(seq, entry) VALUES(?, ?)", -1, &q, NULL) != SQLITE_OK)
		return 3;
	/* the same bytes the log stores: the same event, serialised as JSON by
	 * hand (no canonicalisation, no escaping, no hashing) */
	double t0 = now_s(), c0 = cpu_s();
	char buf[1024];
	for (uint64_t i = 0; i < n; i++) {
		if (i % 1000 == 0 && sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
			return 3;
		creto_event ev;
		creto_event_field f[5];
		char agent[32], jti[40];
		mk_event(i, &ev, f, agent, jti);
		int len = snprintf(buf, sizeof(buf),
				   "{\"actor\":\"%s\",\"component\":\"gateway\",\"event\":\"request\","
				   "\"fields\":{\"bytes_in\":%lld,\"bytes_out\":%lld,\"jti\":\"%s\","
				   "\"prompt_sha256\":\"%s\",\"status\":200},\"outcome\":\"ok\",\"seq\":%llu,"
				   "\"subject\":\"%s\",\"time\":%lld}",
				   agent, (long long)f[0].num, (long long)f[1].num, jti, f[3].str,
				   (unsigned long long)i, ev.subject, (long long)i);
		sqlite3_reset(q);
		sqlite3_bind_int64(q, 1, (int64_t)i);
		sqlite3_bind_blob(q, 2, buf, len, SQLITE_STATIC);
		if (sqlite3_step(q) != SQLITE_DONE)
			return 3;
		if ((i % 1000 == 999 || i + 1 == n) &&
		    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
			return 3;
	}
	double t1 = now_s(), c1 = cpu_s();
	sqlite3_finalize(q);
	sqlite3_close(db);
	printf("sqlite %llu %.3f %.0f %.3f %.0f\n", (unsigned long long)n, t1 - t0, (double)n / (t1 - t0),
	       c1 - c0, (double)n / (c1 - c0));
	return 0;
}

static int cmd_verify(const char *dir)
{
	creto_signer *s = bench_key();
	creto_err e;
	creto_audit_report rep;
	double t0 = now_s(), c0 = cpu_s();
	int rc = creto_audit_verify(dir, creto_signer_pubkey(s), NULL, 0, &rep, &e);
	double t1 = now_s(), c1 = cpu_s();
	creto_signer_free(s);
	if (rc != 0) {
		fprintf(stderr, "verify: %s\n", e.msg);
		return rc;
	}
	printf("verify %llu %.3f %.3f\n", (unsigned long long)rep.size, t1 - t0, c1 - c0);
	return 0;
}

static int write_entry(void *ctx, uint64_t seq, const char *entry, size_t len)
{
	(void)seq;
	return fwrite(entry, 1, len, ctx) == len ? 0 : 3;
}

static int cmd_entries(const char *dir, const char *out)
{
	creto_err e;
	creto_audit_reader *r;
	FILE *f = fopen(out, "wb");
	if (f == NULL || creto_audit_reader_open(dir, &r, &e) != 0)
		return 3;
	int rc = creto_audit_reader_scan(r, 0, UINT64_MAX, write_entry, f, &e);
	creto_audit_reader_close(r);
	return fclose(f) != 0 ? 3 : rc;
}

static int cmd_prove(const char *dir, unsigned k)
{
	creto_err e;
	creto_audit_reader *r;
	if (creto_audit_reader_open(dir, &r, &e) != 0) {
		fprintf(stderr, "%s\n", e.msg);
		return 3;
	}
	uint64_t n;
	if (creto_audit_reader_size(r, &n, NULL, &e) != 0 || n == 0)
		return 3;
	creto_audit_proof *p = malloc(sizeof(*p));
	uint64_t x = 88172645463325252ull;
	size_t plen = 0;
	/* warm up: the pages of the upper tree levels */
	for (unsigned i = 0; i < 1000; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		if (creto_audit_reader_prove(r, x % n, n, p, &e) != 0)
			return 3;
	}
	double t0 = now_s(), c0 = cpu_s();
	for (unsigned i = 0; i < k; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		if (creto_audit_reader_prove(r, x % n, n, p, &e) != 0) {
			fprintf(stderr, "%s\n", e.msg);
			return 3;
		}
		if (!creto_audit_verify_inclusion(p->index, n, p->leaf, (const uint8_t(*)[32])p->path,
						  p->len, p->root))
			return 1;
		plen += p->len;
	}
	double t1 = now_s(), c1 = cpu_s();
	/* N, us per proof (wall), us per proof (CPU), hashes per proof */
	printf("prove %llu %.2f %.2f %.1f\n", (unsigned long long)n, (t1 - t0) / k * 1e6,
	       (c1 - c0) / k * 1e6, (double)plen / k);
	free(p);
	creto_audit_reader_close(r);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "append") == 0)
		return cmd_append(argv[2], strtoull(argv[3], NULL, 10));
	if (argc == 4 && strcmp(argv[1], "sqlite") == 0)
		return cmd_sqlite(argv[2], strtoull(argv[3], NULL, 10));
	if (argc == 3 && strcmp(argv[1], "verify") == 0)
		return cmd_verify(argv[2]);
	if (argc == 4 && strcmp(argv[1], "entries") == 0)
		return cmd_entries(argv[2], argv[3]);
	if (argc == 4 && strcmp(argv[1], "prove") == 0)
		return cmd_prove(argv[2], (unsigned)strtoul(argv[3], NULL, 10));
	fprintf(stderr, "usage: bench_audit append DIR N | sqlite DB N | verify DIR | entries DIR FILE | "
			"prove DIR K\n");
	return 2;
}
