/*
 * stream.c - payload streaming with bounded memory, parallel shard hashing
 * and overlapped writes.  The caller's thread reads the package into one of
 * a few shard-sized buffers and hands it on; hashing threads (one per CPU)
 * check each shard's digest while one writer thread copies the same buffer
 * into the staging file, in order, and starts its writeback; a buffer is
 * reused once both are done.  Memory is nbuf * shard_size whatever the
 * payload size.  (The hash pool of include/creto/hash.h hashes ranges of
 * files already on disk; here the data arrives as one stream and is hashed
 * as it passes, so the staged copy is never read back.)
 */
#include "update_int.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/file.h"

#define STREAM_WORKERS_MAX 8

enum { ST_NONE = 0, ST_QUEUED, ST_RUNNING, ST_DONE };

typedef struct job {
	uint8_t *buf;
	size_t len;
	uint8_t want[UPD_DIGEST_LEN];
	const char *path;
	size_t shard, nshards;
	uint64_t seq;
	int in_use;
	int hstate, wstate;
	int out_fd;
	off_t off;
} job;

struct upd_stream {
	uint32_t shard_size;
	size_t nbuf, nworkers;
	job *jobs;
	pthread_t th[STREAM_WORKERS_MAX];
	pthread_t writer;
	int have_writer;
	pthread_mutex_t mu;
	pthread_cond_t cv_work, cv_write, cv_free;
	int stop;
	uint64_t next_seq;
	/* first digest failure in statement order */
	int failed;
	uint64_t fail_seq;
	char fail_msg[300];
	int write_errno;
	char write_path[256];
};

static void release_if_done(upd_stream *s, job *j)
{
	if ((j->hstate == ST_NONE || j->hstate == ST_DONE) && (j->wstate == ST_NONE || j->wstate == ST_DONE)) {
		j->in_use = 0;
		pthread_cond_broadcast(&s->cv_free);
	}
}

static void *worker(void *arg)
{
	upd_stream *s = arg;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	pthread_mutex_lock(&s->mu);
	for (;;) {
		job *j = NULL;
		for (size_t i = 0; i < s->nbuf; i++)
			if (s->jobs[i].hstate == ST_QUEUED && (j == NULL || s->jobs[i].seq < j->seq))
				j = &s->jobs[i];
		if (j == NULL) {
			if (s->stop)
				break;
			pthread_cond_wait(&s->cv_work, &s->mu);
			continue;
		}
		j->hstate = ST_RUNNING;
		pthread_mutex_unlock(&s->mu);
		uint8_t got[UPD_DIGEST_LEN];
		unsigned int dl = 0;
		int ok = c != NULL && EVP_DigestInit_ex(c, EVP_sha3_256(), NULL) == 1 &&
			 EVP_DigestUpdate(c, j->buf, j->len) == 1 && EVP_DigestFinal_ex(c, got, &dl) == 1;
		int match = ok && CRYPTO_memcmp(got, j->want, UPD_DIGEST_LEN) == 0;
		pthread_mutex_lock(&s->mu);
		if (!match && (!s->failed || j->seq < s->fail_seq)) {
			s->failed = 1;
			s->fail_seq = j->seq;
			if (!ok)
				snprintf(s->fail_msg, sizeof s->fail_msg, "sha3-256 failed");
			else if (j->nshards == 1)
				snprintf(s->fail_msg, sizeof s->fail_msg,
					 "digest: payload file %.200s does not match the statement", j->path);
			else
				snprintf(s->fail_msg, sizeof s->fail_msg,
					 "digest: payload file %.200s shard %zu of %zu does not match the statement",
					 j->path, j->shard + 1, j->nshards);
		}
		j->hstate = ST_DONE;
		release_if_done(s, j);
	}
	pthread_mutex_unlock(&s->mu);
	EVP_MD_CTX_free(c);
	return NULL;
}

/* Writes every queued buffer in sequence order (one writer keeps file
 * order), then starts its writeback so the final fsync has little left. */
static void *writer(void *arg)
{
	upd_stream *s = arg;
	pthread_mutex_lock(&s->mu);
	for (;;) {
		job *j = NULL;
		for (size_t i = 0; i < s->nbuf; i++)
			if (s->jobs[i].wstate == ST_QUEUED && (j == NULL || s->jobs[i].seq < j->seq))
				j = &s->jobs[i];
		if (j == NULL) {
			if (s->stop)
				break;
			pthread_cond_wait(&s->cv_write, &s->mu);
			continue;
		}
		j->wstate = ST_RUNNING;
		int skip = s->write_errno != 0;
		pthread_mutex_unlock(&s->mu);
		int er = 0;
		if (!skip) {
			if (creto_write_all(j->out_fd, j->buf, j->len) != 0)
				er = errno ? errno : EIO;
			else
				(void)sync_file_range(j->out_fd, j->off, (off_t)j->len, SYNC_FILE_RANGE_WRITE);
		}
		pthread_mutex_lock(&s->mu);
		if (er && !s->write_errno) {
			s->write_errno = er;
			snprintf(s->write_path, sizeof s->write_path, "%.200s", j->path);
		}
		j->wstate = ST_DONE;
		release_if_done(s, j);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

int upd_stream_new(uint32_t shard_size, upd_stream **out, creto_err *e)
{
	*out = NULL;
	upd_stream *s = calloc(1, sizeof *s);
	if (s == NULL)
		return creto_err_set(e, CRETO_EOP, "out of memory");
	long np = sysconf(_SC_NPROCESSORS_ONLN);
	s->nworkers = np < 1 ? 1 : (np > STREAM_WORKERS_MAX ? STREAM_WORKERS_MAX : (size_t)np);
	s->nbuf = s->nworkers + 3;
	s->shard_size = shard_size;
	s->jobs = calloc(s->nbuf, sizeof *s->jobs);
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv_work, NULL);
	pthread_cond_init(&s->cv_write, NULL);
	pthread_cond_init(&s->cv_free, NULL);
	size_t want = s->nworkers;
	s->nworkers = 0;
	if (s->jobs == NULL)
		goto oom;
	for (size_t i = 0; i < s->nbuf; i++) {
		s->jobs[i].buf = malloc(shard_size ? shard_size : 1);
		if (s->jobs[i].buf == NULL)
			goto oom;
	}
	for (size_t i = 0; i < want; i++) {
		if (pthread_create(&s->th[i], NULL, worker, s) != 0)
			goto nothread;
		s->nworkers++;
	}
	if (pthread_create(&s->writer, NULL, writer, s) != 0)
		goto nothread;
	s->have_writer = 1;
	*out = s;
	return CRETO_OK;
nothread:
	upd_stream_free(s);
	return creto_err_set(e, CRETO_EOP, "cannot start hashing threads");
oom:
	upd_stream_free(s);
	return creto_err_set(e, CRETO_EOP, "out of memory");
}

void upd_stream_free(upd_stream *s)
{
	if (s == NULL)
		return;
	pthread_mutex_lock(&s->mu);
	s->stop = 1;
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

static int busy(const upd_stream *s)
{
	for (size_t i = 0; i < s->nbuf; i++)
		if (s->jobs[i].in_use)
			return 1;
	return 0;
}

int upd_stream_finish(upd_stream *s, creto_update_rule *rule, creto_err *e)
{
	pthread_mutex_lock(&s->mu);
	while (busy(s))
		pthread_cond_wait(&s->cv_free, &s->mu);
	int failed = s->failed, we = s->write_errno;
	char msg[sizeof s->fail_msg], wp[sizeof s->write_path];
	memcpy(msg, s->fail_msg, sizeof msg);
	memcpy(wp, s->write_path, sizeof wp);
	pthread_mutex_unlock(&s->mu);
	if (failed)
		return upd_reject(e, rule, CRETO_RULE_DIGEST, "%s", msg);
	if (we)
		return creto_err_errno(e, we, "write copy of %s", wp);
	return CRETO_OK;
}

int upd_stream_file(upd_stream *s, const upd_file *f, int in_fd, int out_fd,
		    creto_update_rule *rule, creto_err *e)
{
	uint64_t left = f->size;
	for (size_t k = 0; k < f->nshards; k++) {
		size_t len = left < s->shard_size ? (size_t)left : s->shard_size;
		pthread_mutex_lock(&s->mu);
		job *j = NULL;
		for (;;) {
			if (s->failed || s->write_errno)
				break;
			for (size_t i = 0; i < s->nbuf && j == NULL; i++)
				if (!s->jobs[i].in_use)
					j = &s->jobs[i];
			if (j != NULL)
				break;
			pthread_cond_wait(&s->cv_free, &s->mu);
		}
		pthread_mutex_unlock(&s->mu);
		if (j == NULL)
			return upd_stream_finish(s, rule, e); /* an earlier shard failed: stop reading */
		ssize_t got = creto_read_full(in_fd, j->buf, len);
		if (got < 0)
			return creto_err_errno(e, errno, "read payload");
		if ((size_t)got != len) {
			int rc = upd_stream_finish(s, rule, e);
			if (rc != CRETO_OK)
				return rc;
			return upd_reject(e, rule, CRETO_RULE_TRUNCATED, "truncated: package ends inside payload file %.200s",
					     f->path);
		}
		memcpy(j->want, f->nshards == 1 ? f->digest : f->shards[k], UPD_DIGEST_LEN);
		j->len = len;
		j->path = f->path;
		j->shard = k;
		j->nshards = f->nshards;
		j->out_fd = out_fd;
		j->off = (off_t)(f->size - left);
		pthread_mutex_lock(&s->mu);
		j->seq = s->next_seq++;
		j->in_use = 1;
		j->hstate = ST_QUEUED;
		j->wstate = out_fd >= 0 && len > 0 ? ST_QUEUED : ST_NONE;
		pthread_cond_signal(&s->cv_work);
		if (j->wstate == ST_QUEUED)
			pthread_cond_signal(&s->cv_write);
		pthread_mutex_unlock(&s->mu);
		left -= len;
	}
	return CRETO_OK;
}

int upd_stream_flush(upd_stream *s, creto_err *e)
{
	pthread_mutex_lock(&s->mu);
	for (;;) {
		int pending = 0;
		for (size_t i = 0; i < s->nbuf; i++)
			if (s->jobs[i].in_use && (s->jobs[i].wstate == ST_QUEUED || s->jobs[i].wstate == ST_RUNNING))
				pending = 1;
		if (!pending)
			break;
		pthread_cond_wait(&s->cv_free, &s->mu);
	}
	int we = s->write_errno;
	char wp[sizeof s->write_path];
	memcpy(wp, s->write_path, sizeof wp);
	pthread_mutex_unlock(&s->mu);
	if (we)
		return creto_err_errno(e, we, "write copy of %s", wp);
	return CRETO_OK;
}
