/*
 * notify.c - the sd_notify datagram protocol over $NOTIFY_SOCKET
 * (notify.h).  No libsystemd: a SOCK_DGRAM unix socket connected once,
 * before the sandbox, and one send per message.
 */
#include "serve/notify.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "util/escape.h"

struct creto_notify {
	int fd;
	struct sockaddr_un addr;
	socklen_t addrlen;
	char name[sizeof(((struct sockaddr_un *)0)->sun_path) + 1]; /* for messages */
};

static int do_connect(creto_notify *n, creto_err *e)
{
	if (connect(n->fd, (const struct sockaddr *)&n->addr, n->addrlen) != 0)
		return creto_err_errno(e, errno, "notify socket '%s': connect", n->name);
	return CRETO_OK;
}

int creto_notify_open(const char *addr, creto_notify **out, creto_err *e)
{
	*out = NULL;
	if (addr == NULL || addr[0] == '\0')
		return CRETO_OK;
	size_t len = strlen(addr);
	creto_notify *n = calloc(1, sizeof(*n));
	if (n == NULL)
		return creto_err_set(e, CRETO_EOP, "notify: out of memory");
	n->fd = -1;
	char shown[128];
	(void)creto_escape(shown, sizeof(shown), addr, len);
	int rc = CRETO_OK;
	if ((addr[0] != '/' && addr[0] != '@') || len < 2) {
		rc = creto_err_set(e, CRETO_EUSAGE,
				   "notify socket '%s': want an absolute path or @name", shown);
		goto out;
	}
	/* A path needs its NUL inside sun_path; an abstract name does not. */
	if (len > sizeof(n->addr.sun_path) - (addr[0] == '/')) {
		rc = creto_err_set(e, CRETO_EUSAGE, "notify socket '%s': longer than %zu bytes",
				   shown, sizeof(n->addr.sun_path) - 1);
		goto out;
	}
	memcpy(n->name, addr, len + 1);
	n->addr.sun_family = AF_UNIX;
	memcpy(n->addr.sun_path, addr, len);
	if (addr[0] == '@')
		n->addr.sun_path[0] = '\0'; /* abstract: the length bounds the name */
	n->addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (addr[0] == '/'));
	n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (n->fd < 0) {
		rc = creto_err_errno(e, errno, "notify: socket");
		goto out;
	}
	rc = do_connect(n, e);
out:
	if (rc != CRETO_OK) {
		creto_notify_close(n);
		return rc;
	}
	*out = n;
	return CRETO_OK;
}

void creto_notify_close(creto_notify *n)
{
	if (n == NULL)
		return;
	if (n->fd >= 0)
		close(n->fd);
	free(n);
}

/* KEY=VALUE lines, KEY non-empty, no control byte but the line ends. */
static int well_formed(const char *s)
{
	if (*s == '\0')
		return 0;
	while (*s != '\0') {
		const char *eol = strchr(s, '\n');
		size_t linelen = eol ? (size_t)(eol - s) : strlen(s);
		const char *eq = memchr(s, '=', linelen);
		if (eq == NULL || eq == s)
			return 0;
		for (size_t i = 0; i < linelen; i++)
			if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
				return 0;
		s += linelen + (eol != NULL);
	}
	return 1;
}

int creto_notify_send(creto_notify *n, const char *state, creto_err *e)
{
	if (n == NULL)
		return CRETO_OK;
	size_t len = strlen(state);
	if (len > CRETO_NOTIFY_MSG_MAX)
		return creto_err_set(e, CRETO_EUSAGE, "notify: message of %zu bytes (at most %d)",
				     len, CRETO_NOTIFY_MSG_MAX);
	if (!well_formed(state))
		return creto_err_set(e, CRETO_EUSAGE, "notify: message is not KEY=VALUE lines");
	for (int attempt = 0;; attempt++) {
		ssize_t w = send(n->fd, state, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w >= 0 && (size_t)w == len)
			return CRETO_OK;
		if (w >= 0)
			return creto_err_set(e, CRETO_EOP, "notify socket '%s': short send", n->name);
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return creto_err_set(e, CRETO_EOP, "notify socket '%s': busy", n->name);
		if ((errno == ECONNREFUSED || errno == ENOTCONN) && attempt == 0) {
			int rc = do_connect(n, e);
			if (rc != CRETO_OK)
				return rc;
			continue;
		}
		return creto_err_errno(e, errno, "notify socket '%s': send", n->name);
	}
}

/* head + STATUS=<status made one line>. */
static int send_status(creto_notify *n, const char *head, const char *status, creto_err *e)
{
	if (n == NULL)
		return CRETO_OK;
	char line[CRETO_NOTIFY_STATUS_MAX + 1];
	(void)creto_escape_line(line, sizeof(line), status);
	char msg[CRETO_NOTIFY_STATUS_MAX + 64];
	snprintf(msg, sizeof(msg), "%sSTATUS=%s", head, line);
	/* An empty status is "STATUS=" (clears it): well formed. */
	return creto_notify_send(n, msg, e);
}

int creto_notify_ready(creto_notify *n, const char *status, creto_err *e)
{
	if (status == NULL)
		return creto_notify_send(n, "READY=1", e);
	return send_status(n, "READY=1\n", status, e);
}

int creto_notify_status(creto_notify *n, const char *status, creto_err *e)
{
	return send_status(n, "", status ? status : "", e);
}

int creto_notify_watchdog(creto_notify *n, creto_err *e)
{
	return creto_notify_send(n, "WATCHDOG=1", e);
}

int creto_notify_reloading(creto_notify *n, creto_err *e)
{
	if (n == NULL)
		return CRETO_OK;
	struct timespec ts;
	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		return creto_err_errno(e, errno, "notify: CLOCK_MONOTONIC");
	char msg[96];
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
		 (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000U);
	return creto_notify_send(n, msg, e);
}

int creto_notify_stopping(creto_notify *n, creto_err *e)
{
	return creto_notify_send(n, "STOPPING=1", e);
}

/* Decimal digits only, no sign or space, in 1..max. */
static int parse_pos(const char *s, uint64_t max, uint64_t *out)
{
	if (s[0] == '\0' || strlen(s) > 20)
		return -1;
	uint64_t v = 0;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		unsigned d = (unsigned)(*p - '0');
		if (v > (max - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (v == 0)
		return -1;
	*out = v;
	return 0;
}

int creto_notify_watchdog_usec(const char *usec, const char *pid, pid_t self, uint64_t *out,
			       creto_err *e)
{
	*out = 0;
	if (usec == NULL || usec[0] == '\0')
		return CRETO_OK;
	char shown[64];
	uint64_t v = 0, p = 0;
	if (parse_pos(usec, (uint64_t)INT64_MAX, &v) != 0) {
		(void)creto_escape(shown, sizeof(shown), usec, strlen(usec));
		return creto_err_set(e, CRETO_EUSAGE, "WATCHDOG_USEC '%s': not a number of "
				     "microseconds in 1..2^63-1", shown);
	}
	if (pid != NULL && pid[0] != '\0') {
		if (parse_pos(pid, (uint64_t)INT_MAX, &p) != 0) {
			(void)creto_escape(shown, sizeof(shown), pid, strlen(pid));
			return creto_err_set(e, CRETO_EUSAGE, "WATCHDOG_PID '%s': not a process id",
					     shown);
		}
		if ((pid_t)p != self)
			return CRETO_OK; /* meant for another process */
	}
	*out = v;
	return CRETO_OK;
}
