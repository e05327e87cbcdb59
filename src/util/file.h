/*
 * file.h - the few file operations everything else builds on, written for a
 * hostile filesystem: no symlink following on the final component, bounded
 * reads, crash-safe replacement (temp file + fsync + rename + fsync dir),
 * and exclusive 0600 creation for secrets.
 */
#ifndef CRETO_UTIL_FILE_H
#define CRETO_UTIL_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "creto/error.h"

/* Read a whole regular file of at most max bytes (O_NOFOLLOW).  *out is
 * malloc'ed with a NUL after the data (not counted in *outlen); caller frees.
 * A file over max is CRETO_EREJECT ("PATH: larger than N bytes"); a missing
 * or unreadable file CRETO_EOP.  "-" reads standard input. */
int creto_file_read(const char *path, size_t max, uint8_t **out, size_t *outlen, creto_err *e) CRETO_WUR;
/* Read a whole regular file (O_NOFOLLOW; a FIFO or device is refused at
 * once) into the caller's fixed buffer buf[cap], for secrets: they must
 * never pass through a buffer that grows, since realloc leaves unwiped
 * copies behind.  A file of cap bytes or more is CRETO_EREJECT ("PATH:
 * larger than cap-1 bytes"); on failure buf may hold part of the file and
 * the caller wipes it.  No NUL is added. */
int creto_file_read_fixed(const char *path, void *buf, size_t cap, size_t *len,
			  creto_err *e) CRETO_WUR;
/* creto_file_read_fixed for a secret (a private key): also CRETO_EREJECT
 * when the file is owned by anyone but root or the running user, or has
 * any group or other permission bit ("PATH: mode 0644, want no group or
 * other bits (chmod 600)"). */
int creto_file_read_secret(const char *path, void *buf, size_t cap, size_t *len,
			   creto_err *e) CRETO_WUR;
/* The same, following a symbolic link: only for operator configuration that
 * deployments mount as links (a Kubernetes ConfigMap), never for packages,
 * state or anything else that crosses the diode.  The target must still be
 * a regular file of at most max bytes. */
int creto_file_read_follow(const char *path, size_t max, uint8_t **out, size_t *outlen,
			   creto_err *e) CRETO_WUR;

/* Replace path atomically with data: write PATH.tmp.XXXXXX in the same
 * directory with mode, fsync, rename over path, fsync the directory.  On
 * failure path is untouched and the temp file removed. */
int creto_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
			    creto_err *e) CRETO_WUR;

/* Create path exclusively (O_CREAT|O_EXCL|O_NOFOLLOW) with mode, write,
 * fsync.  Refuses to overwrite ("PATH: already exists", CRETO_EUSAGE).  On
 * failure the partial file is removed.  For secret keys: mode 0600. */
int creto_file_write_excl(const char *path, const void *data, size_t len, mode_t mode,
			  creto_err *e) CRETO_WUR;

/* fsync the directory containing path (or path itself when is_dir). */
int creto_file_sync_dir(const char *path, int is_dir, creto_err *e) CRETO_WUR;

/* write(2) all of buf, retrying on EINTR and short writes. 0 or -1 (errno). */
int creto_write_all(int fd, const void *buf, size_t len) CRETO_WUR;

/* read(2) up to len bytes, retrying on EINTR and short reads until EOF.
 * Returns the count read (< len only at EOF) or -1 (errno). */
ssize_t creto_read_full(int fd, void *buf, size_t len) CRETO_WUR;

/* mkdir -p with mode for each created component. */
int creto_mkdir_p(const char *path, mode_t mode, creto_err *e) CRETO_WUR;

/* Threads of this process (entries of /proc/self/task); 0 when unknown. */
size_t creto_thread_count(void);

#endif
