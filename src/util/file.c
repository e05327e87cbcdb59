/* file.c - bounded reads, atomic and exclusive writes (see file.h). */
#include "util/file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int creto_write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

ssize_t creto_read_full(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;
	size_t got = 0;
	while (got < len) {
		ssize_t r = read(fd, p + got, len - got);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

static int file_read(const char *path, int follow, size_t max, uint8_t **out, size_t *outlen,
		     creto_err *e)
{
	int fd, rc = CRETO_EOP;
	int is_stdin = strcmp(path, "-") == 0;
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;

	*out = NULL;
	*outlen = 0;
	if (is_stdin) {
		fd = STDIN_FILENO;
	} else {
		fd = open(path, O_RDONLY | (follow ? 0 : O_NOFOLLOW) | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
		if (fd < 0) {
			if (errno == ELOOP)
				return creto_err_set(e, CRETO_EREJECT, "%s: is a symbolic link", path);
			return creto_err_errno(e, errno, "%s", path);
		}
		struct stat st;
		if (fstat(fd, &st) != 0) {
			rc = creto_err_errno(e, errno, "%s", path);
			goto out;
		}
		if (!S_ISREG(st.st_mode)) {
			rc = creto_err_set(e, CRETO_EREJECT, "%s: not a regular file", path);
			goto out;
		}
		if ((uint64_t)st.st_size > max) {
			rc = creto_err_set(e, CRETO_EREJECT, "%s: larger than %zu bytes", path, max);
			goto out;
		}
		cap = (size_t)st.st_size + 1;
	}
	for (;;) {
		if (cap - len < 2) {
			size_t ncap = cap ? cap * 2 : 4096;
			if (ncap > max + 2)
				ncap = max + 2;
			if (ncap <= len + 1) {
				rc = creto_err_set(e, CRETO_EREJECT, "%s: larger than %zu bytes", path, max);
				goto out;
			}
			uint8_t *n = realloc(buf, ncap);
			if (n == NULL) {
				rc = creto_err_set(e, CRETO_EOP, "%s: out of memory", path);
				goto out;
			}
			buf = n;
			cap = ncap;
		} else if (buf == NULL) {
			buf = malloc(cap);
			if (buf == NULL) {
				rc = creto_err_set(e, CRETO_EOP, "%s: out of memory", path);
				goto out;
			}
		}
		ssize_t r = read(fd, buf + len, cap - len - 1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			rc = creto_err_errno(e, errno, "%s", path);
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (len > max) {
			rc = creto_err_set(e, CRETO_EREJECT, "%s: larger than %zu bytes", path, max);
			goto out;
		}
	}
	if (buf == NULL && (buf = malloc(1)) == NULL) {
		rc = creto_err_set(e, CRETO_EOP, "%s: out of memory", path);
		goto out;
	}
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	buf = NULL;
	rc = CRETO_OK;
out:
	free(buf);
	if (!is_stdin)
		close(fd);
	return rc;
}

int creto_file_read(const char *path, size_t max, uint8_t **out, size_t *outlen, creto_err *e)
{
	return file_read(path, 0, max, out, outlen, e);
}

int creto_file_read_follow(const char *path, size_t max, uint8_t **out, size_t *outlen,
			   creto_err *e)
{
	return file_read(path, 1, max, out, outlen, e);
}

/* read_fixed with secret: also refuse a file owned by anyone but root or
 * this user, or with any group or other permission bit. */
static int read_fixed(const char *path, void *buf, size_t cap, size_t *len, int secret, creto_err *e)
{
	*len = 0;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ELOOP)
			return creto_err_set(e, CRETO_EREJECT, "%s: is a symbolic link", path);
		return creto_err_errno(e, errno, "%s", path);
	}
	struct stat st;
	int rc = CRETO_OK;
	if (fstat(fd, &st) != 0) {
		rc = creto_err_errno(e, errno, "%s", path);
	} else if (!S_ISREG(st.st_mode)) {
		rc = creto_err_set(e, CRETO_EREJECT, "%s: not a regular file", path);
	} else if (secret && st.st_uid != 0 && st.st_uid != geteuid()) {
		rc = creto_err_set(e, CRETO_EREJECT, "%s: owned by uid %u, not by root or the running user", path,
				   (unsigned)st.st_uid);
	} else if (secret && (st.st_mode & 077)) {
		rc = creto_err_set(e, CRETO_EREJECT, "%s: mode %04o, want no group or other bits (chmod 600)", path,
				   (unsigned)(st.st_mode & 07777));
	} else {
		ssize_t r = creto_read_full(fd, buf, cap);
		if (r < 0)
			rc = creto_err_errno(e, errno, "%s", path);
		else if ((size_t)r >= cap)
			rc = creto_err_set(e, CRETO_EREJECT, "%s: larger than %zu bytes", path, cap - 1);
		else
			*len = (size_t)r;
	}
	close(fd);
	return rc;
}

int creto_file_read_fixed(const char *path, void *buf, size_t cap, size_t *len, creto_err *e)
{
	return read_fixed(path, buf, cap, len, 0, e);
}

int creto_file_read_secret(const char *path, void *buf, size_t cap, size_t *len, creto_err *e)
{
	return read_fixed(path, buf, cap, len, 1, e);
}

int creto_file_sync_dir(const char *path, int is_dir, creto_err *e)
{
	char *copy = strdup(path);
	if (copy == NULL)
		return creto_err_set(e, CRETO_EOP, "out of memory");
	const char *dir = is_dir ? copy : dirname(copy);
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = CRETO_OK;
	if (fd < 0 || fsync(fd) != 0)
		rc = creto_err_errno(e, errno, "fsync directory %s", dir);
	if (fd >= 0)
		close(fd);
	free(copy);
	return rc;
}

int creto_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
			    creto_err *e)
{
	size_t n = strlen(path) + sizeof(".tmp.XXXXXX");
	char *tmp = malloc(n);
	if (tmp == NULL)
		return creto_err_set(e, CRETO_EOP, "out of memory");
	snprintf(tmp, n, "%s.tmp.XXXXXX", path);
	int rc = CRETO_EOP;
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		rc = creto_err_errno(e, errno, "%s: create temporary file", path);
		free(tmp);
		return rc;
	}
	if (fchmod(fd, mode) != 0 || creto_write_all(fd, data, len) != 0 || fsync(fd) != 0) {
		rc = creto_err_errno(e, errno, "%s: write", tmp);
		goto fail;
	}
	if (close(fd) != 0) {
		fd = -1;
		rc = creto_err_errno(e, errno, "%s: close", tmp);
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) != 0) {
		rc = creto_err_errno(e, errno, "rename %s to %s", tmp, path);
		goto fail;
	}
	free(tmp);
	return creto_file_sync_dir(path, 0, e);
fail:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	free(tmp);
	return rc;
}

int creto_file_write_excl(const char *path, const void *data, size_t len, mode_t mode,
			  creto_err *e)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0) {
		if (errno == EEXIST)
			return creto_err_set(e, CRETO_EUSAGE, "%s: already exists, not overwriting", path);
		return creto_err_errno(e, errno, "%s", path);
	}
	int rc = CRETO_OK;
	if (fchmod(fd, mode) != 0 || creto_write_all(fd, data, len) != 0 || fsync(fd) != 0)
		rc = creto_err_errno(e, errno, "%s: write", path);
	if (close(fd) != 0 && rc == CRETO_OK)
		rc = creto_err_errno(e, errno, "%s: close", path);
	if (rc != CRETO_OK) {
		unlink(path);
		return rc;
	}
	return creto_file_sync_dir(path, 0, e);
}

int creto_mkdir_p(const char *path, mode_t mode, creto_err *e)
{
	char *p = strdup(path);
	if (p == NULL)
		return creto_err_set(e, CRETO_EOP, "out of memory");
	int rc = CRETO_OK;
	if (p[0] == '\0') {
		free(p);
		return creto_err_set(e, CRETO_EUSAGE, "empty directory path");
	}
	for (char *s = p + 1;; s++) {
		if (*s == '/' || *s == '\0') {
			char c = *s;
			*s = '\0';
			if (mkdir(p, mode) != 0 && errno != EEXIST) {
				rc = creto_err_errno(e, errno, "mkdir %s", p);
				break;
			}
			*s = c;
			if (c == '\0')
				break;
		}
	}
	free(p);
	return rc;
}

size_t creto_thread_count(void)
{
	DIR *d = opendir("/proc/self/task");
	if (d == NULL)
		return 0;
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}
