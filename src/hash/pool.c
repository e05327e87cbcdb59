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

static void *worker(void *arg)
{
	struct pool *p = arg;
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
