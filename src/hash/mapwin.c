/*
 * mapwin.c - bounded file windows mapped for hashing, and the SIGBUS guard
 * (see mapwin.h).
 *
 * The guard: one process-wide SA_SIGINFO handler for SIGBUS, installed
 * once (pthread_once) and remembering the handler it replaced.  A thread
 * about to read its windows publishes them in a thread-local record that
 * holds a sigjmp_buf (mapwin_guarded); the handler, which runs on the
 * faulting thread, looks only at that thread's record: a kernel-raised
 * SIGBUS (si_code > 0) at an address inside one of the windows jumps back
 * to mapwin_guarded, which unblocks SIGBUS again (sigsetjmp does not save
 * the mask: that would cost a system call per guarded call) and returns
 * the fault.  Everything else is passed to the previous handler, or, when
 * that was the default, the default action is restored and the signal
 * raised again, so the process ends with SIGBUS as it would have without
 * us.
 */
#include "hash/mapwin.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct guard {
	sigjmp_buf jb;
	mapwin *const *w;
	unsigned n;
	volatile int fault;
};

static _Thread_local struct guard *volatile tls_guard;
static struct sigaction g_prev; /* the SIGBUS handler before ours */
static int g_installed;         /* set once, under g_once */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	struct guard *g = tls_guard;
	if (g != NULL && si != NULL && si->si_code > 0) { /* raised by the kernel, not sent */
		uintptr_t a = (uintptr_t)si->si_addr;
		for (unsigned i = 0; i < g->n; i++) {
			const mapwin *w = g->w[i];
			if (w == NULL || w->map == NULL)
				continue;
			if (a >= (uintptr_t)w->map && a - (uintptr_t)w->map < w->maplen) {
				g->fault = (int)i;
				tls_guard = NULL;
				siglongjmp(g->jb, 1);
			}
		}
	}
	/* not ours: as if we had never been here */
	if ((g_prev.sa_flags & SA_SIGINFO) && g_prev.sa_sigaction != NULL) {
		g_prev.sa_sigaction(sig, si, uc);
		return;
	}
	if (!(g_prev.sa_flags & SA_SIGINFO) && g_prev.sa_handler != SIG_DFL &&
	    g_prev.sa_handler != SIG_IGN) {
		g_prev.sa_handler(sig);
		return;
	}
	if (!(g_prev.sa_flags & SA_SIGINFO) && g_prev.sa_handler == SIG_IGN &&
	    (si == NULL || si->si_code <= 0))
		return; /* a sent SIGBUS that was ignored stays ignored */
	struct sigaction dfl;
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	(void)sigaction(SIGBUS, &dfl, NULL);
	(void)raise(SIGBUS); /* pending until we return; a fault also repeats */
}

static void install(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigbus;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGBUS, &sa, &g_prev) == 0)
		g_installed = 1;
}

int mapwin_available(void)
{
	(void)pthread_once(&g_once, install);
	if (!g_installed)
		return 0;
	struct sigaction cur;
	if (sigaction(SIGBUS, NULL, &cur) != 0)
		return 0;
	return (cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == on_sigbus;
}

void mapwin_unmap(mapwin *w)
{
	if (w->map != NULL)
		(void)munmap(w->map, w->maplen);
	w->map = NULL;
	w->maplen = 0;
	w->off = w->end = 0;
}

int mapwin_map(mapwin *w, int fd, uint64_t pos, uint64_t end)
{
	mapwin_unmap(w);
	(void)pthread_once(&g_once, install);
	if (pos >= end || end > (uint64_t)INT64_MAX)
		return EINVAL;
	uint64_t off = pos - pos % MAPWIN_SIZE;
	uint64_t wend = end - off < MAPWIN_SIZE ? end : off + MAPWIN_SIZE;
	struct stat st;
	if (fstat(fd, &st) != 0)
		return errno;
	/* the bytes must all be in the file now: a page that is only partly
	 * inside it reads as zeros past the end, never faults */
	if (st.st_size < 0 || (uint64_t)st.st_size < wend)
		return EOVERFLOW;
	/* no MAP_POPULATE: faulting the pages in (fault-around, or one entry
	 * per 2 MiB folio) costs less CPU than populating them up front */
	size_t maplen = (size_t)(wend - off);
	void *m = mmap(NULL, maplen, PROT_READ, MAP_SHARED, fd, (off_t)off);
	if (m == MAP_FAILED)
		return errno;
	w->map = m;
	w->maplen = maplen;
	w->off = off;
	w->end = wend;
	return 0;
}

int mapwin_has(const mapwin *w, uint64_t pos)
{
	return w->map != NULL && pos >= w->off && pos < w->end;
}

const uint8_t *mapwin_ptr(const mapwin *w, uint64_t pos)
{
	return w->map + (pos - w->off);
}

int mapwin_guarded(mapwin *const w[], unsigned n, int (*fn)(void *arg), void *arg, int *fault)
{
	*fault = -1;
	if (n > MAPWIN_MAX)
		n = MAPWIN_MAX;
	struct guard g;
	g.w = w;
	g.n = n;
	g.fault = -1;
	if (sigsetjmp(g.jb, 0) != 0) {
		/* back from the handler: SIGBUS is still blocked in this thread
		 * (the mask was not saved), and a blocked SIGBUS from a fault
		 * would end the process */
		sigset_t bus;
		sigemptyset(&bus);
		sigaddset(&bus, SIGBUS);
		(void)pthread_sigmask(SIG_UNBLOCK, &bus, NULL);
		tls_guard = NULL;
		*fault = g.fault;
		return -1;
	}
	tls_guard = &g;
	atomic_signal_fence(memory_order_seq_cst);
	int rc = fn(arg);
	atomic_signal_fence(memory_order_seq_cst);
	tls_guard = NULL;
	return rc;
}
