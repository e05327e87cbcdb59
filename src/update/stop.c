/*
 * stop.c - the stop handle of a long-lived component: an atomic flag and an
 * eventfd.  Stopping is async-signal-safe (an atomic store and write(2)),
 * so a SIGTERM handler or another thread may call it; the component polls
 * the eventfd beside its own descriptors and checks the flag between steps.
 */
#include "update_int.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct creto_stop_handle {
	atomic_int stopped;
	int fd;
};

int creto_stop_handle_new(creto_stop_handle **out, creto_err *e)
{
	*out = NULL;
	creto_stop_handle *h = calloc(1, sizeof *h);
	if (h == NULL)
		return creto_err_set(e, CRETO_EOP, "out of memory");
	atomic_init(&h->stopped, 0);
	h->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (h->fd < 0) {
		int rc = creto_err_errno(e, errno, "eventfd");
		free(h);
		return rc;
	}
	*out = h;
	return CRETO_OK;
}

void creto_stop_handle_stop(creto_stop_handle *h)
{
	if (h == NULL)
		return;
	int saved = errno; /* from a signal handler: leave errno as it was */
	atomic_store(&h->stopped, 1);
	uint64_t one = 1;
	ssize_t n = write(h->fd, &one, sizeof one);
	(void)n; /* EAGAIN: the counter is already non-zero */
	errno = saved;
}

int creto_stop_handle_stopped(const creto_stop_handle *h)
{
	return h != NULL && atomic_load(&((creto_stop_handle *)h)->stopped) != 0;
}

int creto_stop_handle_fd(const creto_stop_handle *h)
{
	return h != NULL ? h->fd : -1;
}

void creto_stop_handle_reset(creto_stop_handle *h)
{
	if (h == NULL)
		return;
	uint64_t v;
	while (read(h->fd, &v, sizeof v) > 0) {
	}
	atomic_store(&h->stopped, 0);
}

void creto_stop_handle_free(creto_stop_handle *h)
{
	if (h == NULL)
		return;
	close(h->fd);
	free(h);
}
