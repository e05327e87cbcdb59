/*
 * mapwin.h - internal to src/hash: bounded read-only windows of a file
 * mapped into memory for hashing, and the SIGBUS guard that turns a file
 * truncated under a mapping into an error instead of the end of the
 * process.  Not a public contract (pool.c and the tests use it).
 *
 * Why: hashing from the page cache through pread copies every byte once
 * more (the kernel's copy into the caller's buffer: 12-18% of a thread's
 * CPU next to the AVX-512 Keccak, docs/sha3-engine.md).  A mapping lets the
 * Keccak kernel read the page-cache pages themselves.
 *
 * The risk of a mapping: when the file shrinks while it is mapped, reading
 * a page that is now wholly past the end raises SIGBUS.  mapwin_guarded()
 * runs a function with the calling thread's windows registered; a SIGBUS
 * whose faulting address lies in one of them jumps back out of the
 * function (siglongjmp) and mapwin_guarded() reports the fault.  Any other
 * SIGBUS (another thread's, an address outside the windows, kill -BUS) goes
 * to the handler that was installed before ours, or ends the process as
 * SIGBUS always did.  The handler is installed once per process, at the
 * first mapwin_available() call; if something replaces it later,
 * mapwin_available() says so and the pool reads with pread instead.
 */
#ifndef CRETO_HASH_MAPWIN_H
#define CRETO_HASH_MAPWIN_H

#include <stddef.h>
#include <stdint.h>

#define MAPWIN_SIZE (4u << 20) /* a window: this many bytes at a multiple of it in the file */
#define MAPWIN_MIN (1u << 20)  /* ranges shorter than this are read with pread */
#define MAPWIN_MAX 8           /* windows one guarded call may cover */

typedef struct mapwin {
	uint8_t *map;     /* the mapping, NULL when none */
	size_t maplen;    /* its length */
	uint64_t off;     /* file offset of map[0] (a multiple of MAPWIN_SIZE) */
	uint64_t end;     /* file offset just past the mapped bytes */
} mapwin;

/* 1 when windows may be used: the SIGBUS handler is installed (the first
 * call installs it) and is still the process's handler.  0 otherwise (the
 * caller reads with pread). */
int mapwin_available(void);

/* Map the window of fd that holds offset pos, read-only, replacing whatever
 * w held: the file bytes [A, min(A + MAPWIN_SIZE, end)) where A is pos
 * rounded down to a multiple of MAPWIN_SIZE (pos < end).  Windows at such
 * offsets let the kernel map the page cache's 2 MiB folios with one page
 * table entry each.  The file must have every one of those bytes now
 * (fstat), else nothing is mapped.  Returns 0, or an errno value
 * (EOVERFLOW: the file is shorter; any mmap failure) with w empty. */
int mapwin_map(mapwin *w, int fd, uint64_t pos, uint64_t end);

/* 1 when file offset pos lies inside the mapped window. */
int mapwin_has(const mapwin *w, uint64_t pos);

/* Address of file offset pos (mapwin_has(w, pos, 1) must hold). */
const uint8_t *mapwin_ptr(const mapwin *w, uint64_t pos);

/* Unmap (a window that holds nothing is left as it is). */
void mapwin_unmap(mapwin *w);

/* Run fn(arg) with the n windows w[0..n) (n <= MAPWIN_MAX; NULL entries
 * and empty windows are skipped) guarded in the calling thread.  Returns
 * fn's result; or, when reading one of the windows raised SIGBUS, stops fn
 * where it faulted, sets *fault to the index of that window and returns
 * -1.  After a fault, whatever fn was changing is in an unknown state: the
 * caller must give it up (the pool drops its engine).  *fault is -1 when
 * no fault happened.  Not reentrant within one thread. */
int mapwin_guarded(mapwin *const w[], unsigned n, int (*fn)(void *arg), void *arg, int *fault);

#endif
