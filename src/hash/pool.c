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

#include <openssl/crypto.h>

#include "hash/hash_internal.h"
#include "hash/mapwin.h"
#include "hash/sha3x.h"
#include "util/file.h"

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

void creto_hash_set_fips(int on)
{
	sha3x_set_fips(on);
}

int creto_hash_fips(void)
{
	return sha3x_fips(0) ? 1 : 0;
}

/* The back end the pool and the streams use for alg: a multi-lane one, or
 * OpenSSL's single stream (also when the choice is the one-lane scalar
 * kernel, which only tests can force). */
static sha3x_impl engine_impl(creto_hash_alg alg)
{
	if (alg != CRETO_HASH_SHA3_256)
		return SHA3X_IMPL_OPENSSL;
	sha3x_impl impl = sha3x_choose(0);
	return sha3x_impl_lanes(impl) > 1 ? impl : SHA3X_IMPL_OPENSSL;
}

const char *creto_hash_engine(creto_hash_alg alg)
{
	return sha3x_impl_name(engine_impl(alg));
}

struct order {
	uint64_t length;
	size_t idx;
};

struct pool {
	creto_hash_alg alg;
	sha3x_impl impl; /* engine_impl(alg) when the call started */
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

/* Open a range's file by path: no symlinks anywhere under a real dirfd,
 * and never blocking: O_NONBLOCK makes the open of a FIFO (or device)
 * swapped in after the walk return at once, and the fstat below refuses
 * it.  For a regular file O_NONBLOCK changes nothing. */
static int open_range(const creto_hash_range *rg, int *fd, creto_err *e)
{
	const char *nm = rg->path;
	int f = -1;
	if (rg->dirfd != AT_FDCWD) {
		struct open_how how;
		memset(&how, 0, sizeof(how));
		how.flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK;
		how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
		do {
			f = (int)syscall(SYS_openat2, rg->dirfd, rg->path, &how, sizeof(how));
		} while (f < 0 && errno == EAGAIN);
		if (f < 0 && errno != ENOSYS && errno != EPERM) /* EPERM: seccomp filters */
			goto fail;
	}
	if (f < 0)
		f = openat(rg->dirfd, rg->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
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

void creto_hash_ident_from_stat(const struct stat *st, creto_hash_ident *out)
{
	memset(out, 0, sizeof(*out));
	out->dev = (uint64_t)st->st_dev;
	out->ino = (uint64_t)st->st_ino;
	out->size = (uint64_t)st->st_size;
	out->mtime_sec = (int64_t)st->st_mtim.tv_sec;
	out->mtime_nsec = (int64_t)st->st_mtim.tv_nsec;
	out->ctime_sec = (int64_t)st->st_ctim.tv_sec;
	out->ctime_nsec = (int64_t)st->st_ctim.tv_nsec;
}

int creto_hash_ident_equal(const creto_hash_ident *a, const creto_hash_ident *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime_sec == b->mtime_sec && a->mtime_nsec == b->mtime_nsec &&
	       a->ctime_sec == b->ctime_sec && a->ctime_nsec == b->ctime_nsec;
}

/* The descriptor still is the file of rg->expect (when one is given). */
static int check_ident(creto_hash_range *rg, int fd, const char *when, creto_err *e)
{
	if (rg->expect == NULL)
		return CRETO_OK;
	struct stat st;
	if (fstat(fd, &st) != 0)
		return creto_err_errno(e, errno, "%s: stat", rg->path ? rg->path : "file");
	creto_hash_ident now;
	creto_hash_ident_from_stat(&st, &now);
	if (creto_hash_ident_equal(&now, rg->expect))
		return CRETO_OK;
	rg->changed = 1;
	return creto_err_set(e, CRETO_EOP, "%s: changed while being hashed (%s)",
			     rg->path ? rg->path : "file", when);
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
	int mapped; /* read through mapped windows (else pread) */
	uint64_t pos, end;
	mapwin w;
};

static void lane_close(struct lane *l)
{
	mapwin_unmap(&l->w);
	if (l->own && l->fd >= 0)
		close(l->fd);
	l->idx = SIZE_MAX;
	l->fd = -1;
	l->own = 0;
	l->mapped = 0;
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
		int rc = check_ident(rg, l->fd, "before reading", e);
		if (rc == CRETO_OK)
			rc = sha3x_start(x, j, e);
		if (rc != CRETO_OK)
			return rc;
		if (rg->length > 0) {
			(void)posix_fadvise(l->fd, (off_t)rg->offset, (off_t)rg->length,
					    POSIX_FADV_SEQUENTIAL);
			l->mapped = rg->length >= MAPWIN_MIN && mapwin_available();
			return CRETO_OK;
		}
		rc = sha3x_finish(x, j, rg->digest, e);
		if (rc == CRETO_OK)
			rc = check_ident(rg, l->fd, "after reading", e);
		lane_close(l);
		if (rc != CRETO_OK)
			return rc;
	}
}

_Static_assert(MAPWIN_MAX >= SHA3X_LANES_MAX, "a guarded call covers every lane's window");

/* One round's sha3x_absorb, run under the SIGBUS guard when lanes read
 * from mapped windows. */
struct absorb_call {
	sha3x_ctx *x;
	const uint8_t *const *in;
	const size_t *len;
	creto_err *e;
};

static int absorb_fn(void *arg)
{
	struct absorb_call *a = arg;
	return sha3x_absorb(a->x, a->in, a->len, a->e);
}

/* The worker loop on engine x; returns after the work or the first error
 * (recorded in p).  A lane reads its range either through mapped windows
 * (ranges of MAPWIN_MIN bytes or more: no copy; mapwin.h), the rest of its
 * window per round, or with pread into its part of buf; a lane whose window
 * cannot be mapped (a file system without mmap, a file now shorter than
 * the range) falls back to pread for the rest of its range, which reports
 * a short file as before. */
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
	mapwin *win[SHA3X_LANES_MAX];
	int idle = 0, rc = CRETO_OK;
	size_t bad = 0;
	creto_err e;
	creto_err_clear(&e);
	for (unsigned j = 0; j < SHA3X_LANES_MAX; j++) {
		memset(&ln[j], 0, sizeof(ln[j]));
		ln[j].idx = SIZE_MAX;
		ln[j].fd = -1;
		in[j] = NULL;
		len[j] = 0;
	}
	while (!atomic_load_explicit(&p->stop, memory_order_relaxed)) {
		unsigned busy = 0, nwin = 0;
		for (unsigned j = 0; j < lim; j++) {
			struct lane *l = &ln[j];
			len[j] = 0;
			win[j] = NULL;
			if (l->idx == SIZE_MAX && !idle) {
				rc = lane_take(p, x, j, l, &idle, &bad, &e);
				if (rc != CRETO_OK)
					goto out;
			}
			if (l->idx == SIZE_MAX)
				continue;
			if (l->mapped) {
				if (mapwin_has(&l->w, l->pos) ||
				    mapwin_map(&l->w, l->fd, l->pos, l->end) == 0) {
					in[j] = mapwin_ptr(&l->w, l->pos);
					len[j] = (size_t)(l->w.end - l->pos);
					win[j] = &l->w;
					nwin++;
					busy++;
					continue;
				}
				l->mapped = 0; /* pread from here on */
			}
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
			in[j] = buf + (size_t)j * piece;
			len[j] = (size_t)got;
			busy++;
		}
		if (busy == 0)
			break;
		struct absorb_call ac = {x, in, len, &e};
		if (nwin == 0) {
			rc = absorb_fn(&ac);
		} else {
			int fault = -1;
			rc = mapwin_guarded(win, lim, absorb_fn, &ac, &fault);
			if (fault >= 0) {
				/* the file shrank under the mapping: the engine
				 * stopped mid-block and is given up with the pool */
				struct lane *l = &ln[fault];
				bad = l->idx;
				rc = creto_err_set(&e, CRETO_EOP,
						   "%s: file changed while being hashed (truncated while bytes %llu..%llu were read)",
						   p->r[l->idx].path != NULL ? p->r[l->idx].path : "file",
						   (unsigned long long)l->pos, (unsigned long long)l->w.end);
				goto out;
			}
		}
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
			if (rc == CRETO_OK)
				rc = check_ident(&p->r[l->idx], l->fd, "after reading", &e);
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
 * the engine has one lane (OpenSSL: FIPS, or no faster back end here) or
 * each worker gets one range at most, so the one-stream loop below runs as
 * it always did. */
static int worker_sha3x(struct pool *p)
{
	/* a worker with one range at a time would run one lane alone, on the
	 * scalar kernel: OpenSSL's single stream is faster there */
	size_t share = (p->n + p->threads - 1) / (p->threads > 0 ? p->threads : 1);
	if (p->impl == SHA3X_IMPL_OPENSSL || share <= 1)
		return 0;
	sha3x_ctx *x = NULL;
	uint8_t *buf = NULL;
	creto_err e;
	creto_err_clear(&e);
	int rc = sha3x_new(p->impl, 0, &x, &e);
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
		rc = check_ident(rg, fd, "before reading", &e);
		if (rc == CRETO_OK)
			rc = creto_hash__read_range(c, fd, rg->offset, rg->length, rg->path, buf,
						    CRETO_HASH_BUFSIZE, &p->stop, rg->digest, &e);
		if (rc == CRETO_OK)
			rc = check_ident(rg, fd, "after reading", &e);
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
	for (size_t i = 0; i < n; i++) {
		if (r[i].fd < 0 && r[i].path == NULL)
			return creto_err_set(e, CRETO_EUSAGE, "range %zu: neither fd nor path", i);
		r[i].changed = 0;
	}

	struct pool p;
	memset(&p, 0, sizeof(p));
	p.alg = alg;
	p.impl = engine_impl(alg);
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

/* ---- streams ---------------------------------------------------------------
 * The same engine for data that arrives once, in order: the caller's thread
 * reads shards into a few buffers, workers hash them (lowest sequence number
 * first), one writer copies them to the output in order.  Failures are kept
 * in stream order (sequence numbers), so the first one is reported whatever
 * the thread timing. */

enum { SJ_NONE = 0, SJ_QUEUED, SJ_RUNNING, SJ_DONE };

struct sjob {
	uint8_t *buf;
	size_t len;
	const uint8_t *expect; /* NULL: not checked */
	uint8_t *out;          /* NULL: not stored */
	const char *name;
	uint64_t shard, nshards;
	uint64_t seq;
	int in_use, hstate, wstate;
	int out_fd;
};

struct creto_hash_stream {
	creto_hash_alg alg;
	sha3x_impl impl;            /* engine_impl(alg) at creation */
	unsigned lanes;             /* shards one worker hashes at once (1: one-stream loop) */
	size_t piece;               /* bytes per lane per sha3x_absorb */
	size_t dlen, shard_size, nbuf, nworkers;
	struct sjob *jobs;
	pthread_t th[CRETO_HASH_STREAM_THREADS_MAX];
	pthread_t writer;
	int have_writer;
	pthread_mutex_t mu;
	pthread_cond_t cv_work, cv_write, cv_free;
	int stop;
	int no_direct; /* the writer's: O_DIRECT refused once, buffered from then on */
	uint64_t next_seq;
	/* first failure in stream order (REJECT kinds) */
	creto_hash_stream_fail fail;
	uint64_t fail_seq;
	/* first operational error (hashing, writing) */
	int op_rc;
	creto_err op_err;
};

static void sjob_release_if_done(creto_hash_stream *s, struct sjob *j)
{
	if ((j->hstate == SJ_NONE || j->hstate == SJ_DONE) &&
	    (j->wstate == SJ_NONE || j->wstate == SJ_DONE)) {
		j->in_use = 0;
		pthread_cond_broadcast(&s->cv_free);
	}
}

/* Under s->mu: remember a failure unless an earlier one (in stream order) is known. */
static void stream_fail(creto_hash_stream *s, uint64_t seq, const creto_hash_stream_fail *f)
{
	if (s->fail.kind == CRETO_HASH_FAIL_NONE || seq < s->fail_seq) {
		s->fail = *f;
		s->fail_seq = seq;
	}
}

static void stream_op_error(creto_hash_stream *s, int rc, const creto_err *e)
{
	if (s->op_rc == CRETO_OK) {
		s->op_rc = rc;
		s->op_err = *e;
	}
}

/* The first queued shard in stream order, or NULL.  Under s->mu. */
static struct sjob *stream_next(creto_hash_stream *s)
{
	struct sjob *j = NULL;
	for (size_t i = 0; i < s->nbuf; i++)
		if (s->jobs[i].hstate == SJ_QUEUED && (j == NULL || s->jobs[i].seq < j->seq))
			j = &s->jobs[i];
	return j;
}

/* Under s->mu: the number of shards queued for hashing. */
static size_t stream_queued(const creto_hash_stream *s)
{
	size_t n = 0;
	for (size_t i = 0; i < s->nbuf; i++)
		n += s->jobs[i].hstate == SJ_QUEUED;
	return n;
}

/* Under s->mu: the verdict of a hashed shard (rc: how the hashing went,
 * got: its digest), and the buffer released when it is also written. */
static void stream_done(creto_hash_stream *s, struct sjob *j, int rc, const creto_err *e,
			const uint8_t *got)
{
	if (rc != CRETO_OK) {
		stream_op_error(s, rc, e);
	} else if (j->expect != NULL && CRYPTO_memcmp(got, j->expect, s->dlen) != 0) {
		creto_hash_stream_fail f = {.kind = CRETO_HASH_FAIL_MISMATCH, .name = j->name,
					    .shard = j->shard, .nshards = j->nshards};
		stream_fail(s, j->seq, &f);
	}
	j->hstate = SJ_DONE;
	sjob_release_if_done(s, j);
}

/* A worker on a multi-lane back end: up to s->lanes shards in flight, one
 * per lane.  Per round, idle lanes take the next queued shards (stream
 * order), one sha3x_absorb gives every busy lane its next s->piece bytes
 * straight from the shard buffers (a multiple of the block, so the lanes
 * stay in lock-step), and lanes whose shard is done finish and are free
 * for the next round.  A shard that arrives while the others are half done
 * joins at once.  Returns 0 (nothing done) when the engine cannot be made,
 * so that the one-stream loop does the work. */
static int stream_worker_lanes(creto_hash_stream *s)
{
	sha3x_ctx *x = NULL;
	creto_err e;
	creto_err_clear(&e);
	creto_hash_ctx *one = NULL; /* OpenSSL, for a shard that would run alone */
	if (s->lanes <= 1 || sha3x_new(s->impl, 0, &x, &e) != CRETO_OK)
		return 0;
	if (creto_hash_init(s->alg, &one, &e) != CRETO_OK)
		one = NULL; /* then a lone shard goes through the lanes too */
	unsigned k = s->lanes < sha3x_lanes(x) ? s->lanes : sha3x_lanes(x);
	struct sjob *ln[SHA3X_LANES_MAX] = {NULL};
	size_t pos[SHA3X_LANES_MAX] = {0};
	const uint8_t *in[SHA3X_LANES_MAX] = {NULL};
	size_t len[SHA3X_LANES_MAX] = {0};
	uint8_t got[SHA3X_LANES_MAX][CRETO_HASH_MAX];
	int fresh[SHA3X_LANES_MAX] = {0}, rcs[SHA3X_LANES_MAX];
	creto_err errs[SHA3X_LANES_MAX];
	pthread_mutex_lock(&s->mu);
	for (;;) {
		/* no lane busy and one shard queued (e.g. when the writer holds
		 * the other buffers): a lane alone would run on the scalar
		 * kernel, slower than OpenSSL's single stream, so OpenSSL
		 * hashes it; two or more go through the lanes */
		struct sjob *lone = NULL;
		if (one != NULL && stream_queued(s) == 1) {
			unsigned idle = 0;
			for (unsigned j = 0; j < k; j++)
				idle += ln[j] == NULL;
			if (idle == k)
				lone = stream_next(s);
		}
		if (lone != NULL) {
			lone->hstate = SJ_RUNNING;
			pthread_mutex_unlock(&s->mu);
			uint8_t d[CRETO_HASH_MAX];
			creto_err le;
			creto_err_clear(&le);
			int rc = creto_hash_update(one, lone->buf, lone->len, &le);
			if (rc == CRETO_OK)
				rc = creto_hash_final(one, d, &le);
			if (rc == CRETO_OK && lone->out != NULL)
				memcpy(lone->out, d, s->dlen);
			pthread_mutex_lock(&s->mu);
			stream_done(s, lone, rc, &le, d);
			continue;
		}
		unsigned busy = 0;
		for (unsigned j = 0; j < k; j++) {
			if (ln[j] == NULL && (ln[j] = stream_next(s)) != NULL) {
				ln[j]->hstate = SJ_RUNNING;
				pos[j] = 0;
				fresh[j] = 1;
			}
			busy += ln[j] != NULL;
		}
		if (busy == 0) {
			if (s->stop)
				break;
			pthread_cond_wait(&s->cv_work, &s->mu);
			continue;
		}
		pthread_mutex_unlock(&s->mu);
		int rc = CRETO_OK;
		for (unsigned j = 0; j < SHA3X_LANES_MAX; j++) {
			len[j] = 0;
			if (j >= k || ln[j] == NULL)
				continue;
			if (fresh[j] && rc == CRETO_OK)
				rc = sha3x_start(x, j, &e);
			fresh[j] = 0;
			size_t left = ln[j]->len - pos[j];
			in[j] = ln[j]->buf + pos[j];
			len[j] = left < s->piece ? left : s->piece;
		}
		if (rc == CRETO_OK)
			rc = sha3x_absorb(x, in, len, &e);
		/* lanes whose shard is done (every lane when the engine failed) */
		unsigned ndone = 0;
		for (unsigned j = 0; j < k; j++) {
			rcs[j] = -1;
			if (ln[j] == NULL)
				continue;
			pos[j] += len[j];
			if (rc == CRETO_OK && pos[j] < ln[j]->len)
				continue;
			rcs[j] = rc;
			errs[j] = e;
			if (rc == CRETO_OK)
				rcs[j] = sha3x_finish(x, j, got[j], &errs[j]);
			if (rcs[j] == CRETO_OK && ln[j]->out != NULL)
				memcpy(ln[j]->out, got[j], s->dlen);
			ndone++;
		}
		pthread_mutex_lock(&s->mu);
		for (unsigned j = 0; ndone > 0 && j < k; j++) {
			if (rcs[j] == -1)
				continue;
			stream_done(s, ln[j], rcs[j], &errs[j], got[j]);
			ln[j] = NULL;
		}
	}
	pthread_mutex_unlock(&s->mu);
	creto_hash_free(one);
	sha3x_free(x);
	return 1;
}

static void *stream_worker(void *arg)
{
	creto_hash_stream *s = arg;
	if (stream_worker_lanes(s))
		return NULL;
	creto_hash_ctx *c = NULL;
	creto_err e;
	creto_err_clear(&e);
	int crc = creto_hash_init(s->alg, &c, &e);
	pthread_mutex_lock(&s->mu);
	if (crc != CRETO_OK)
		stream_op_error(s, crc, &e);
	for (;;) {
		struct sjob *j = stream_next(s);
		if (j == NULL) {
			if (s->stop)
				break;
			pthread_cond_wait(&s->cv_work, &s->mu);
			continue;
		}
		j->hstate = SJ_RUNNING;
		pthread_mutex_unlock(&s->mu);
		uint8_t got[CRETO_HASH_MAX];
		int rc = crc;
		if (rc == CRETO_OK)
			rc = creto_hash_update(c, j->buf, j->len, &e);
		if (rc == CRETO_OK)
			rc = creto_hash_final(c, got, &e);
		if (rc == CRETO_OK && j->out != NULL)
			memcpy(j->out, got, s->dlen);
		pthread_mutex_lock(&s->mu);
		stream_done(s, j, rc, &e, got);
	}
	pthread_mutex_unlock(&s->mu);
	creto_hash_free(c);
	return NULL;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		if (w == 0)
			return EIO;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Alignment of O_DIRECT writes: the buffer, the file offset and the
 * length (a multiple of every logical block size up to 4 KiB). */
#define STREAM_DIRECT_ALIGN 4096u

/* Write one shard buffer at the current position of fd.  When the buffer,
 * the position and the length are all multiples of STREAM_DIRECT_ALIGN
 * (every shard of a file whose shard size is a multiple of 4 KiB, the
 * update default, except a shorter last one), the write goes with O_DIRECT
 * straight from the buffer that was hashed to the disk: no copy into
 * freshly allocated page-cache pages (which dominated apply's CPU) and no
 * dirty pages left for the final fsync; the descriptor's flags are put
 * back afterwards.  Otherwise, or where the file system refuses O_DIRECT
 * (then for the rest of the stream), an ordinary write followed by the
 * start of its writeback, so that the caller's fsync has little left.
 * Either way the bytes written are the buffer's, which the workers hash:
 * nothing is read back. */
static int write_shard(creto_hash_stream *s, int fd, const uint8_t *buf, size_t len)
{
	off_t at = lseek(fd, 0, SEEK_CUR);
	struct stat st;
	/* regular files only: on a pipe O_DIRECT means packet mode */
	if (!s->no_direct && at >= 0 && (uint64_t)at % STREAM_DIRECT_ALIGN == 0 &&
	    len % STREAM_DIRECT_ALIGN == 0 && (uintptr_t)buf % STREAM_DIRECT_ALIGN == 0 &&
	    fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
		int fl = fcntl(fd, F_GETFL);
		if (fl >= 0 && fcntl(fd, F_SETFL, fl | O_DIRECT) == 0) {
			int er = write_all(fd, buf, len);
			(void)fcntl(fd, F_SETFL, fl);
			if (er != EINVAL)
				return er;
			/* O_DIRECT accepted by fcntl but not by this file
			 * system's write: once more, buffered, from the start */
			if (lseek(fd, at, SEEK_SET) != at)
				return errno;
		}
		s->no_direct = 1;
	}
	int er = write_all(fd, buf, len);
	if (er == 0 && at >= 0)
		(void)sync_file_range(fd, at, (off_t)len, SYNC_FILE_RANGE_WRITE);
	return er;
}

/* Writes queued buffers in sequence order (write_shard). */
static void *stream_writer(void *arg)
{
	creto_hash_stream *s = arg;
	pthread_mutex_lock(&s->mu);
	for (;;) {
		struct sjob *j = NULL;
		for (size_t i = 0; i < s->nbuf; i++)
			if (s->jobs[i].wstate == SJ_QUEUED && (j == NULL || s->jobs[i].seq < j->seq))
				j = &s->jobs[i];
		if (j == NULL) {
			if (s->stop)
				break;
			pthread_cond_wait(&s->cv_write, &s->mu);
			continue;
		}
		j->wstate = SJ_RUNNING;
		int skip = s->op_rc != CRETO_OK;
		pthread_mutex_unlock(&s->mu);
		int er = 0;
		if (!skip)
			er = write_shard(s, j->out_fd, j->buf, j->len);
		pthread_mutex_lock(&s->mu);
		if (er != 0) {
			creto_err e;
			creto_err_clear(&e);
			(void)creto_err_errno(&e, er, "%s: write copy", j->name ? j->name : "stream");
			stream_op_error(s, CRETO_EOP, &e);
		}
		j->wstate = SJ_DONE;
		sjob_release_if_done(s, j);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

int creto_hash_stream_new(creto_hash_alg alg, size_t shard_size, unsigned threads,
			  creto_hash_stream **out, creto_err *e)
{
	*out = NULL;
	if (creto_hash_name(alg) == NULL)
		return creto_err_set(e, CRETO_EUSAGE, "unknown hash algorithm %d", (int)alg);
	if (shard_size == 0 || shard_size > CRETO_HASH_STREAM_SHARD_MAX)
		return creto_err_set(e, CRETO_EUSAGE, "stream shard size %zu: expected 1..%u", shard_size,
				     CRETO_HASH_STREAM_SHARD_MAX);
	if (threads == 0) {
		threads = creto_hash_default_threads();
		if (threads > 8)
			threads = 8;
	}
	if (threads > CRETO_HASH_STREAM_THREADS_MAX)
		threads = CRETO_HASH_STREAM_THREADS_MAX;
	creto_hash_stream *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return creto_err_errno(e, ENOMEM, "hash stream");
	s->alg = alg;
	s->impl = engine_impl(alg);
	s->dlen = creto_hash_len(alg);
	s->shard_size = shard_size;
	/* buffers: one per lane of every worker plus the one being read and
	 * two being written, within CRETO_HASH_STREAM_MEM per thread (counting
	 * at least two threads, so that one CPU still fills eight lanes of
	 * 4 MiB shards), but never fewer than the one-stream workers need.
	 * With lanes, the buffers go to as few workers as keep every lane
	 * busy: a kernel call costs the same with 5 of 8 lanes as with 8, so
	 * full lanes on fewer cores hash more per CPU-second (and leave a core
	 * to the reader). */
	unsigned k = sha3x_impl_lanes(s->impl);
	size_t cap = (size_t)CRETO_HASH_STREAM_MEM * (threads < 2 ? 2 : threads) / shard_size;
	if (cap < (size_t)threads + 3)
		cap = (size_t)threads + 3;
	s->nbuf = (size_t)threads * k + 3;
	if (s->nbuf > cap)
		s->nbuf = cap;
	unsigned workers = threads;
	if (k > 1) {
		size_t w = (s->nbuf - 3) / k;
		workers = w < 1 ? 1 : w < threads ? (unsigned)w : threads;
	}
	size_t share = (s->nbuf - 2 + workers - 1) / workers;
	s->lanes = share < k ? (unsigned)share : k;
	s->piece = CRETO_HASH_BUFSIZE / (k > 0 ? k : 1) / SHA3X_RATE * SHA3X_RATE;
	creto_err_clear(&s->op_err);
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv_work, NULL);
	pthread_cond_init(&s->cv_write, NULL);
	pthread_cond_init(&s->cv_free, NULL);
	s->jobs = calloc(s->nbuf, sizeof(*s->jobs));
	if (s->jobs == NULL)
		goto oom;
	for (size_t i = 0; i < s->nbuf; i++)
		if (posix_memalign((void **)&s->jobs[i].buf, STREAM_DIRECT_ALIGN, shard_size) != 0) {
			s->jobs[i].buf = NULL;
			goto oom;
		}
	for (unsigned i = 0; i < workers; i++) {
		int err = pthread_create(&s->th[i], NULL, stream_worker, s);
		if (err != 0) {
			if (s->nworkers > 0)
				break; /* fewer workers still finish the work */
			creto_hash_stream_free(s);
			return creto_err_errno(e, err, "hash stream: thread");
		}
		s->nworkers++;
	}
	int err = pthread_create(&s->writer, NULL, stream_writer, s);
	if (err != 0) {
		creto_hash_stream_free(s);
		return creto_err_errno(e, err, "hash stream: writer thread");
	}
	s->have_writer = 1;
	*out = s;
	return CRETO_OK;
oom:
	creto_hash_stream_free(s);
	return creto_err_errno(e, ENOMEM, "hash stream buffers");
}

static int stream_busy(const creto_hash_stream *s)
{
	for (size_t i = 0; i < s->nbuf; i++)
		if (s->jobs[i].in_use)
			return 1;
	return 0;
}

void creto_hash_stream_free(creto_hash_stream *s)
{
	if (s == NULL)
		return;
	pthread_mutex_lock(&s->mu);
	s->stop = 1; /* the threads drain what is queued, then leave */
	pthread_cond_broadcast(&s->cv_work);
	pthread_cond_broadcast(&s->cv_write);
	pthread_mutex_unlock(&s->mu);
	for (size_t i = 0; i < s->nworkers; i++)
		pthread_join(s->th[i], NULL);
	if (s->have_writer)
		pthread_join(s->writer, NULL);
	if (s->jobs != NULL)
		for (size_t i = 0; i < s->nbuf; i++)
			free(s->jobs[i].buf);
	free(s->jobs);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv_work);
	pthread_cond_destroy(&s->cv_write);
	pthread_cond_destroy(&s->cv_free);
	free(s);
}

/* Under s->mu: the error to return once a failure is known (op errors
 * first: they mean the verdict could not be reached). */
static int stream_status(creto_hash_stream *s, creto_err *e)
{
	if (s->op_rc != CRETO_OK) {
		if (e != NULL)
			*e = s->op_err;
		return s->op_rc;
	}
	const creto_hash_stream_fail *f = &s->fail;
	const char *nm = f->name ? f->name : "stream";
	if (f->kind == CRETO_HASH_FAIL_MISMATCH) {
		if (f->nshards == 1)
			return creto_err_set(e, CRETO_EREJECT, "%s: digest differs", nm);
		return creto_err_set(e, CRETO_EREJECT, "%s: shard %llu of %llu: digest differs", nm,
				     (unsigned long long)f->shard + 1, (unsigned long long)f->nshards);
	}
	if (f->kind == CRETO_HASH_FAIL_SHORT)
		return creto_err_set(e, CRETO_EREJECT, "%s: ends after %llu of %llu bytes", nm,
				     (unsigned long long)f->got, (unsigned long long)f->want);
	return CRETO_OK;
}

int creto_hash_stream_finish(creto_hash_stream *s, creto_err *e)
{
	pthread_mutex_lock(&s->mu);
	while (stream_busy(s))
		pthread_cond_wait(&s->cv_free, &s->mu);
	int rc = stream_status(s, e);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int creto_hash_stream_flush(creto_hash_stream *s, creto_err *e)
{
	pthread_mutex_lock(&s->mu);
	for (;;) {
		int pending = 0;
		for (size_t i = 0; i < s->nbuf; i++)
			if (s->jobs[i].in_use &&
			    (s->jobs[i].wstate == SJ_QUEUED || s->jobs[i].wstate == SJ_RUNNING))
				pending = 1;
		if (!pending)
			break;
		pthread_cond_wait(&s->cv_free, &s->mu);
	}
	int rc = CRETO_OK;
	if (s->op_rc != CRETO_OK) {
		rc = s->op_rc;
		if (e != NULL)
			*e = s->op_err;
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

creto_hash_stream_fail creto_hash_stream_failure(creto_hash_stream *s)
{
	pthread_mutex_lock(&s->mu);
	creto_hash_stream_fail f = s->fail;
	pthread_mutex_unlock(&s->mu);
	return f;
}

int creto_hash_stream_fd(creto_hash_stream *s, int in_fd, uint64_t length, int out_fd,
			 const char *name, const uint8_t *expect, uint8_t *digests, creto_err *e)
{
	uint64_t nshards = length == 0 ? 1 : length / s->shard_size + (length % s->shard_size != 0);
	uint64_t left = length;
	for (uint64_t k = 0; k < nshards; k++) {
		size_t len = left < s->shard_size ? (size_t)left : s->shard_size;
		pthread_mutex_lock(&s->mu);
		struct sjob *j = NULL;
		while (s->fail.kind == CRETO_HASH_FAIL_NONE && s->op_rc == CRETO_OK) {
			for (size_t i = 0; i < s->nbuf && j == NULL; i++)
				if (!s->jobs[i].in_use)
					j = &s->jobs[i];
			if (j != NULL)
				break;
			pthread_cond_wait(&s->cv_free, &s->mu);
		}
		if (j != NULL)
			j->in_use = 1; /* ours to fill */
		pthread_mutex_unlock(&s->mu);
		if (j == NULL)
			return creto_hash_stream_finish(s, e); /* an earlier failure: stop reading */
		ssize_t got = creto_read_full(in_fd, j->buf, len);
		if (got < 0 || (size_t)got != len) {
			int err = errno;
			pthread_mutex_lock(&s->mu);
			j->in_use = 0;
			pthread_cond_broadcast(&s->cv_free);
			if (got < 0) {
				creto_err re;
				creto_err_clear(&re);
				(void)creto_err_errno(&re, err, "%s: read", name ? name : "stream");
				stream_op_error(s, CRETO_EOP, &re);
			} else {
				creto_hash_stream_fail f = {.kind = CRETO_HASH_FAIL_SHORT, .name = name,
							    .got = length - left + (uint64_t)got,
							    .want = length};
				stream_fail(s, s->next_seq++, &f);
			}
			pthread_mutex_unlock(&s->mu);
			return creto_hash_stream_finish(s, e);
		}
		j->len = len;
		j->expect = expect != NULL ? expect + k * s->dlen : NULL;
		j->out = digests != NULL ? digests + k * s->dlen : NULL;
		j->name = name;
		j->shard = k;
		j->nshards = nshards;
		j->out_fd = out_fd;
		pthread_mutex_lock(&s->mu);
		j->seq = s->next_seq++;
		j->hstate = SJ_QUEUED;
		j->wstate = out_fd >= 0 && len > 0 ? SJ_QUEUED : SJ_NONE;
		pthread_cond_signal(&s->cv_work);
		if (j->wstate == SJ_QUEUED)
			pthread_cond_signal(&s->cv_write);
		pthread_mutex_unlock(&s->mu);
		left -= len;
	}
	return CRETO_OK;
}
