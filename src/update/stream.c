/*
 * stream.c - payload streaming with bounded memory and parallel shard
 * hashing.  The reader thread (the caller) fills one of a few shard-sized
 * buffers from the package, writes it to the staging file, and hands it to
 * a small set of hashing threads; memory is nbuf * shard_size whatever the
 * payload size.  The model hash pool hashes (file, offset, length) ranges of
 * files already on disk; here the data arrives as one stream and is hashed
 * while it passes, so a second read of the staged copy is avoided.
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

typedef struct job {
	uint8_t *buf;
	size_t len;
	uint8_t want[UPD_DIGEST_LEN];
	const char *path;
	size_t shard, nshards;
	uint64_t seq;
	int state; /* 0 free, 1 queued, 2 hashing */
} job;

struct upd_stream {
	uint32_t shard_size;
	size_t nbuf, nworkers;
	job *jobs;
	pthread_t th[STREAM_WORKERS_MAX];
	pthread_mutex_t mu;
	pthread_cond_t cv_work, cv_free;
	int stop;
	uint64_t next_seq;
	size_t busy;
	/* first failure in statement order */
	int failed;
	uint64_t fail_seq;
	char fail_msg[300];
};

static void *worker(void *arg)
{
	upd_stream *s = arg;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	pthread_mutex_lock(&s->mu);
	for (;;) {
		job *j = NULL;
		/* Oldest queued job first. */
		for (size_t i = 0; i < s->nbuf; i++)
			if (s->jobs[i].state == 1 && (j == NULL || s->jobs[i].seq < j->seq))
				j = &s->jobs[i];
		if (j == NULL) {
			if (s->stop)
				break;
			pthread_cond_wait(&s->cv_work, &s->mu);
			continue;
		}
		j->state = 2;
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
		j->state = 0;
		s->busy--;
		pthread_cond_broadcast(&s->cv_free);
	}
	pthread_mutex_unlock(&s->mu);
	EVP_MD_CTX_free(c);
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
	s->nbuf = s->nworkers + 2;
	s->shard_size = shard_size;
	s->jobs = calloc(s->nbuf, sizeof *s->jobs);
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv_work, NULL);
	pthread_cond_init(&s->cv_free, NULL);
	if (s->jobs == NULL)
		goto oom;
	for (size_t i = 0; i < s->nbuf; i++) {
		s->jobs[i].buf = malloc(shard_size ? shard_size : 1);
		if (s->jobs[i].buf == NULL)
			goto oom;
	}
	for (size_t i = 0; i < s->nworkers; i++)
		if (pthread_create(&s->th[i], NULL, worker, s) != 0) {
			s->nworkers = i;
			upd_stream_free(s);
			return creto_err_set(e, CRETO_EOP, "cannot start hashing threads");
		}
	*out = s;
	return CRETO_OK;
oom:
	s->nworkers = 0;
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
	pthread_mutex_unlock(&s->mu);
	for (size_t i = 0; i < s->nworkers; i++)
		pthread_join(s->th[i], NULL);
	if (s->jobs != NULL)
		for (size_t i = 0; i < s->nbuf; i++)
			free(s->jobs[i].buf);
	free(s->jobs);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv_work);
	pthread_cond_destroy(&s->cv_free);
	free(s);
}

int upd_stream_finish(upd_stream *s, creto_err *e)
{
	pthread_mutex_lock(&s->mu);
	while (s->busy > 0)
		pthread_cond_wait(&s->cv_free, &s->mu);
	int failed = s->failed;
	char msg[sizeof s->fail_msg];
	memcpy(msg, s->fail_msg, sizeof msg);
	pthread_mutex_unlock(&s->mu);
	if (failed)
		return creto_err_set(e, CRETO_EREJECT, "%s", msg);
	return CRETO_OK;
}

int upd_stream_file(upd_stream *s, const upd_file *f, int in_fd, int out_fd, creto_err *e)
{
	uint64_t left = f->size;
	for (size_t k = 0; k < f->nshards; k++) {
		size_t len = left < s->shard_size ? (size_t)left : s->shard_size;
		pthread_mutex_lock(&s->mu);
		job *j = NULL;
		for (;;) {
			if (s->failed)
				break;
			for (size_t i = 0; i < s->nbuf && j == NULL; i++)
				if (s->jobs[i].state == 0)
					j = &s->jobs[i];
			if (j != NULL)
				break;
			pthread_cond_wait(&s->cv_free, &s->mu);
		}
		pthread_mutex_unlock(&s->mu);
		if (j == NULL)
			return upd_stream_finish(s, e); /* an earlier shard failed: stop reading */
		ssize_t got = creto_read_full(in_fd, j->buf, len);
		if (got < 0)
			return creto_err_errno(e, errno, "read payload");
		if ((size_t)got != len) {
			int rc = upd_stream_finish(s, e);
			if (rc != CRETO_OK)
				return rc;
			return creto_err_set(e, CRETO_EREJECT, "truncated: package ends inside payload file %.200s",
					     f->path);
		}
		if (out_fd >= 0 && len > 0) {
			if (creto_write_all(out_fd, j->buf, len) != 0)
				return creto_err_errno(e, errno, "write staging copy of %s", f->path);
			/* Start writeback now so the final fsync overlaps with hashing
			 * instead of waiting for the whole file. */
			(void)sync_file_range(out_fd, (off_t)(f->size - left), (off_t)len, SYNC_FILE_RANGE_WRITE);
		}
		memcpy(j->want, f->nshards == 1 ? f->digest : f->shards[k], UPD_DIGEST_LEN);
		j->len = len;
		j->path = f->path;
		j->shard = k;
		j->nshards = f->nshards;
		pthread_mutex_lock(&s->mu);
		j->seq = s->next_seq++;
		j->state = 1;
		s->busy++;
		pthread_cond_signal(&s->cv_work);
		pthread_mutex_unlock(&s->mu);
		left -= len;
	}
	return CRETO_OK;
}
