/*
 * pool.c - the parallel hashing pool: a list of file byte ranges, a few
 * worker threads, one bounded buffer each, one digest per range.
 *
 * Scheduling is longest-range-first from a shared atomic cursor: with
 * ranges of very different sizes (a 5 GB shard next to a tokenizer file)
 * this keeps the threads busy until the end.  Each range is read once, in
 * order, with pread, so ranges of one file can run on several threads at
 * once through one shared descriptor.
 */
#include "creto/hash.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "hash/hash_internal.h"
#include "hash/sha3x.h"

unsigned creto_hash_default_threads(void)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	if (sched_getaffinity(0, sizeof(set), &set) == 0) {
		int n = CPU_COUNT(&set);
		if (n > 0)
			return (unsigned)n;
	}
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)n : 1;
}

struct order {
	uint64_t length;
	size_t idx;
};

struct pool {
	creto_hash_alg alg;
	creto_hash_range *r;
	struct order *order;
	size_t n;
	unsigned threads; /* workers started (or about to be) */
	atomic_size_t next;
	atomic_int stop;
	pthread_mutex_t lock;
	int rc;        /* first error, under lock */
	creto_err err; /* its message */
};

static int order_cmp(const void *a, const void *b)
{
	const struct order *x = a, *y = b;
	if (x->length != y->length)
		return x->length > y->length ? -1 : 1;
	return x->idx < y->idx ? -1 : (x->idx > y->idx);
}

/* Open a range's file by path: no symlinks anywhere under a real dirfd. */
static int open_range(const creto_hash_range *rg, int *fd, creto_err *e)
{
	const char *nm = rg->path;
	int f = -1;
	if (rg->dirfd != AT_FDCWD) {
		struct open_how how;
		memset(&how, 0, sizeof(how));
		how.flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW;
		how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
		do {
			f = (int)syscall(SYS_openat2, rg->dirfd, rg->path, &how, sizeof(how));
		} while (f < 0 && errno == EAGAIN);
		if (f < 0 && errno != ENOSYS && errno != EPERM) /* EPERM: seccomp filters */
			goto fail;
	}
	if (f < 0)
		f = openat(rg->dirfd, rg->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (f < 0)
		goto fail;
	struct stat st;
	if (fstat(f, &st) != 0) {
		int err = errno;
		close(f);
		return creto_err_errno(e, err, "%s: stat", nm);
	}
	if (!S_ISREG(st.st_mode)) {
		close(f);
		return creto_err_set(e, CRETO_EREJECT, "%s: not a regular file", nm);
	}
	*fd = f;
	return CRETO_OK;
fail:
	if (errno == ELOOP || errno == EXDEV)
		return creto_err_set(e, CRETO_EREJECT, "%s: path goes through a symlink or leaves its directory", nm);
	return creto_err_errno(e, errno, "%s: open", nm);
}

static void record_error(struct pool *p, int rc, const creto_err *e, size_t idx)
{
	pthread_mutex_lock(&p->lock);
	if (p->rc == CRETO_OK) {
		p->rc = rc;
		p->err = *e;
		if (p->r[idx].path == NULL)
			(void)creto_err_ctx(&p->err, "range %zu", idx);
	}
	pthread_mutex_unlock(&p->lock);
	atomic_store(&p->stop, 1);
}

/* ---- SHA3-256 through the multi-buffer engine (src/hash/sha3x.h) ----------
 * A worker keeps up to k ranges in flight, one per lane of its engine: per
 * round every busy lane preads its next piece into its part of the
 * worker's one CRETO_HASH_BUFSIZE buffer, one sha3x_absorb hashes all the
 * pieces, and a lane whose range is done stores the digest and takes the
 * next range from the shared cursor at once.  Pieces are a multiple of the
 * SHA3-256 block (136 bytes), so the lanes stay in lock-step.  Digests are
 * those of the one-stream path; only the speed differs. */

struct lane {
	size_t idx; /* the range, SIZE_MAX when the lane is idle */
	int fd, own;
	uint64_t pos, end;
};

static void lane_close(struct lane *l)
{
	if (l->own && l->fd >= 0)
		close(l->fd);
	l->idx = SIZE_MAX;
	l->fd = -1;
	l->own = 0;
}

/* Gives lane j of x the next range with bytes to hash; ranges of length 0
 * are finished on the way.  Sets *idle when the cursor is exhausted. */
static int lane_take(struct pool *p, sha3x_ctx *x, unsigned j, struct lane *l, int *idle,
		     size_t *bad, creto_err *e)
{
	for (;;) {
		size_t k = atomic_fetch_add(&p->next, 1);
		if (k >= p->n) {
			*idle = 1;
			return CRETO_OK;
		}
		size_t idx = p->order[k].idx;
		creto_hash_range *rg = &p->r[idx];
		const char *nm = rg->path != NULL ? rg->path : "file";
		*bad = idx;
		if (rg->length > UINT64_MAX - rg->offset || rg->offset + rg->length > (uint64_t)INT64_MAX)
			return creto_err_set(e, CRETO_EUSAGE, "%s: range %llu+%llu out of bounds", nm,
					     (unsigned long long)rg->offset,
					     (unsigned long long)rg->length);
		l->idx = idx;
		l->fd = rg->fd;
		l->pos = rg->offset;
		l->end = rg->offset + rg->length;
		if (l->fd < 0) {
			int rc = open_range(rg, &l->fd, e);
			if (rc != CRETO_OK) {
				l->fd = -1;
				return rc;
			}
			l->own = 1;
		}
		int rc = sha3x_start(x, j, e);
		if (rc != CRETO_OK)
			return rc;
		if (rg->length > 0) {
			(void)posix_fadvise(l->fd, (off_t)rg->offset, (off_t)rg->length,
					    POSIX_FADV_SEQUENTIAL);
			return CRETO_OK;
		}
		rc = sha3x_finish(x, j, rg->digest, e);
		lane_close(l);
		if (rc != CRETO_OK)
			return rc;
	}
}

/* The worker loop on engine x; returns after the work or the first error
 * (recorded in p). */
static void worker_lanes(struct pool *p, sha3x_ctx *x, uint8_t *buf)
{
	unsigned k = sha3x_lanes(x);
	size_t piece = CRETO_HASH_BUFSIZE / k / SHA3X_RATE * SHA3X_RATE;
	/* few ranges: share them out over the threads rather than fill one
	 * worker's lanes (a lane alone is faster on the scalar kernel) */
	size_t share = (p->n + p->threads - 1) / (p->threads > 0 ? p->threads : 1);
	unsigned lim = share < k ? (unsigned)share : k;
	struct lane ln[SHA3X_LANES_MAX];
	const uint8_t *in[SHA3X_LANES_MAX];
	size_t len[SHA3X_LANES_MAX];
	int idle = 0, rc = CRETO_OK;
	size_t bad = 0;
	creto_err e;
	creto_err_clear(&e);
	for (unsigned j = 0; j < SHA3X_LANES_MAX; j++) {
		ln[j].idx = SIZE_MAX;
		ln[j].fd = -1;
		ln[j].own = 0;
		in[j] = buf + (size_t)j * piece;
		len[j] = 0;
	}
	while (!atomic_load_explicit(&p->stop, memory_order_relaxed)) {
		unsigned busy = 0;
		for (unsigned j = 0; j < lim; j++) {
			struct lane *l = &ln[j];
			len[j] = 0;
			if (l->idx == SIZE_MAX && !idle) {
				rc = lane_take(p, x, j, l, &idle, &bad, &e);
				if (rc != CRETO_OK)
					goto out;
			}
			if (l->idx == SIZE_MAX)
				continue;
			const char *nm = p->r[l->idx].path != NULL ? p->r[l->idx].path : "file";
			size_t want = l->end - l->pos < piece ? (size_t)(l->end - l->pos) : piece;
			ssize_t got;
			do {
				got = pread(l->fd, buf + (size_t)j * piece, want, (off_t)l->pos);
			} while (got < 0 && errno == EINTR);
			bad = l->idx;
			if (got < 0) {
				rc = creto_err_errno(&e, errno, "%s: read at offset %llu", nm,
						     (unsigned long long)l->pos);
				goto out;
			}
			if (got == 0) {
				rc = creto_err_set(&e, CRETO_EOP,
						   "%s: file changed while being hashed (ends at %llu, expected %llu)",
						   nm, (unsigned long long)l->pos, (unsigned long long)l->end);
				goto out;
			}
			len[j] = (size_t)got;
			busy++;
		}
		if (busy == 0)
			break;
		rc = sha3x_absorb(x, in, len, &e);
		if (rc != CRETO_OK)
			goto out;
		for (unsigned j = 0; j < lim; j++) {
			struct lane *l = &ln[j];
			if (len[j] == 0)
				continue;
			l->pos += len[j];
			if (l->pos < l->end)
				continue;
			bad = l->idx;
			rc = sha3x_finish(x, j, p->r[l->idx].digest, &e);
			lane_close(l);
			if (rc != CRETO_OK)
				goto out;
		}
	}
out:
	if (rc != CRETO_OK)
		record_error(p, rc, &e, bad);
	for (unsigned j = 0; j < SHA3X_LANES_MAX; j++)
		lane_close(&ln[j]);
}

/* SHA3-256 on a multi-way back end: the lanes loop; 0 (nothing done) when
 * the engine has one lane (OpenSSL: FIPS, or no faster back end here), so
 * the one-stream loop below runs as it always did. */
static int worker_sha3x(struct pool *p)
{
	if (p->alg != CRETO_HASH_SHA3_256 || sha3x_impl_lanes(sha3x_choose(0)) <= 1)
		return 0;
	sha3x_ctx *x = NULL;
	uint8_t *buf = NULL;
	creto_err e;
	creto_err_clear(&e);
	int rc = sha3x_new(SHA3X_IMPL_AUTO, 0, &x, &e);
	if (rc == CRETO_OK && (buf = malloc(CRETO_HASH_BUFSIZE)) == NULL)
		rc = creto_err_errno(&e, ENOMEM, "hash buffer");
	if (rc != CRETO_OK)
		record_error(p, rc, &e, 0);
	else
		worker_lanes(p, x, buf);
	free(buf);
	sha3x_free(x);
	return 1;
}

static void *worker(void *arg)
{
	struct pool *p = arg;
	if (worker_sha3x(p))
		return NULL;
	creto_hash_ctx *c = NULL;
	uint8_t *buf = NULL;
	creto_err e;
	creto_err_clear(&e);

	int rc = creto_hash_init(p->alg, &c, &e);
	if (rc == CRETO_OK && (buf = malloc(CRETO_HASH_BUFSIZE)) == NULL)
		rc = creto_err_errno(&e, ENOMEM, "hash buffer");
	if (rc != CRETO_OK) {
		record_error(p, rc, &e, 0);
		goto out;
	}
	for (;;) {
		if (atomic_load(&p->stop))
			break;
		size_t k = atomic_fetch_add(&p->next, 1);
		if (k >= p->n)
			break;
		size_t idx = p->order[k].idx;
		creto_hash_range *rg = &p->r[idx];
		int fd = rg->fd, own = 0;
		if (fd < 0) {
			rc = open_range(rg, &fd, &e);
			if (rc != CRETO_OK) {
				record_error(p, rc, &e, idx);
				break;
			}
			own = 1;
		}
		rc = creto_hash__read_range(c, fd, rg->offset, rg->length, rg->path, buf,
					    CRETO_HASH_BUFSIZE, &p->stop, rg->digest, &e);
		if (own)
			close(fd);
		if (rc != CRETO_OK) {
			record_error(p, rc, &e, idx);
			break;
		}
	}
out:
	free(buf);
	creto_hash_free(c);
	return NULL;
}

int creto_hash_ranges(creto_hash_alg alg, creto_hash_range *r, size_t n, unsigned threads,
		      creto_err *e)
{
	if (creto_hash_name(alg) == NULL)
		return creto_err_set(e, CRETO_EUSAGE, "unknown hash algorithm %d", (int)alg);
	if (n == 0)
		return CRETO_OK;
	for (size_t i = 0; i < n; i++)
		if (r[i].fd < 0 && r[i].path == NULL)
			return creto_err_set(e, CRETO_EUSAGE, "range %zu: neither fd nor path", i);

	struct pool p;
	memset(&p, 0, sizeof(p));
	p.alg = alg;
	p.r = r;
	p.n = n;
	atomic_init(&p.next, 0);
	atomic_init(&p.stop, 0);
	p.rc = CRETO_OK;
	creto_err_clear(&p.err);
	if (pthread_mutex_init(&p.lock, NULL) != 0)
		return creto_err_set(e, CRETO_EOP, "hash pool: mutex");

	int rc = CRETO_OK;
	pthread_t *tids = NULL;
	p.order = calloc(n, sizeof(*p.order));
	if (p.order == NULL) {
		rc = creto_err_errno(e, ENOMEM, "hash pool");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		p.order[i].length = r[i].length;
		p.order[i].idx = i;
	}
	qsort(p.order, n, sizeof(*p.order), order_cmp);

	if (threads == 0)
		threads = creto_hash_default_threads();
	if (threads > CRETO_HASH_THREADS_MAX)
		threads = CRETO_HASH_THREADS_MAX;
	if (threads > n)
		threads = (unsigned)n;
	p.threads = threads > 0 ? threads : 1;

	if (threads <= 1) {
		(void)worker(&p);
	} else {
		tids = calloc(threads, sizeof(*tids));
		if (tids == NULL) {
			rc = creto_err_errno(e, ENOMEM, "hash pool");
			goto out;
		}
		unsigned started = 0;
		for (; started < threads; started++) {
			int err = pthread_create(&tids[started], NULL, worker, &p);
			if (err != 0) {
				if (started == 0) {
					rc = creto_err_errno(e, err, "hash pool: thread");
					goto out;
				}
				break; /* fewer threads still finish the work */
			}
		}
		for (unsigned i = 0; i < started; i++)
			pthread_join(tids[i], NULL);
	}
	if (p.rc != CRETO_OK) {
		rc = p.rc;
		if (e != NULL)
			*e = p.err;
	}
out:
	free(tids);
	free(p.order);
	pthread_mutex_destroy(&p.lock);
	return rc;
}

int creto_hash_file_shards(creto_hash_alg alg, int fd, uint64_t size, uint64_t shard_size,
			   unsigned threads, const char *name, uint8_t **digests,
			   size_t *nshards, creto_err *e)
{
	*digests = NULL;
	*nshards = 0;
	size_t dlen = creto_hash_len(alg);
	if (dlen == 0)
		return creto_err_set(e, CRETO_EUSAGE, "unknown hash algorithm %d", (int)alg);
	if (shard_size == 0)
		return creto_err_set(e, CRETO_EUSAGE, "shard size 0");
	uint64_t ns = size / shard_size + (size % shard_size != 0);
	if (ns > SIZE_MAX / sizeof(creto_hash_range) || ns > SIZE_MAX / dlen)
		return creto_err_set(e, CRETO_EUSAGE, "%s: too many shards", name ? name : "file");
	if (ns == 0)
		return CRETO_OK;
	creto_hash_range *r = calloc((size_t)ns, sizeof(*r));
	uint8_t *d = malloc((size_t)ns * dlen);
	int rc = CRETO_OK;
	if (r == NULL || d == NULL) {
		rc = creto_err_errno(e, ENOMEM, "hash shards");
		goto out;
	}
	for (size_t i = 0; i < ns; i++) {
		r[i].fd = fd;
		r[i].dirfd = AT_FDCWD;
		r[i].path = name;
		r[i].offset = (uint64_t)i * shard_size;
		r[i].length = size - r[i].offset < shard_size ? size - r[i].offset : shard_size;
	}
	rc = creto_hash_ranges(alg, r, (size_t)ns, threads, e);
	if (rc != CRETO_OK)
		goto out;
	for (size_t i = 0; i < ns; i++)
		memcpy(d + i * dlen, r[i].digest, dlen);
	*digests = d;
	*nshards = (size_t)ns;
	d = NULL;
out:
	free(d);
	free(r);
	return rc;
}
