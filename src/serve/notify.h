/*
 * notify.h - systemd readiness and liveness without libsystemd: the
 * sd_notify protocol is one datagram of "KEY=VALUE\n" lines sent to the
 * unix socket named by $NOTIFY_SOCKET (a path, or "@name" for the abstract
 * namespace).  docs/serve-sandbox.md describes it.
 *
 * The caller reads the environment (NOTIFY_SOCKET, WATCHDOG_USEC,
 * WATCHDOG_PID) and passes the values in; nothing here calls getenv.  The
 * socket is connected when opened, before the sandbox is applied, so the
 * messages keep flowing under Landlock's abstract-socket scope and the
 * seccomp filter.
 */
#ifndef CRETO_SERVE_NOTIFY_H
#define CRETO_SERVE_NOTIFY_H

#include <stdint.h>
#include <sys/types.h>

#include "creto/error.h"

typedef struct creto_notify creto_notify;

/* Longest message sent (a datagram; systemd reads up to its page size). */
#define CRETO_NOTIFY_MSG_MAX 4096
/* Longest STATUS= text kept; longer text is cut at a character boundary. */
#define CRETO_NOTIFY_STATUS_MAX 1024

/* Open a handle for the socket addr (the value of $NOTIFY_SOCKET).  NULL or
 * "" (not run by systemd, or no Type=notify) gives *out = NULL and
 * CRETO_OK: every call below is then a no-op returning CRETO_OK.  An
 * address that is neither absolute nor "@name", or too long for a unix
 * socket, is CRETO_EUSAGE naming it; a socket or connect failure CRETO_EOP. */
int creto_notify_open(const char *addr, creto_notify **out, creto_err *e) CRETO_WUR;

/* Close the socket and free n.  Accepts NULL. */
void creto_notify_close(creto_notify *n);

/* Send state as one datagram: one or more "KEY=VALUE" lines, each ending in
 * "\n" or at the end of the string.  A line without '=', an empty line or a
 * control byte other than the line ends is CRETO_EUSAGE (nothing sent).
 * When the manager is gone (ECONNREFUSED: a systemd re-exec bound a new
 * socket at the same address) the socket is connected again once.  The
 * send never blocks: a full queue is CRETO_EOP ("busy").  n NULL: no-op. */
int creto_notify_send(creto_notify *n, const char *state, creto_err *e) CRETO_WUR;

/* "READY=1" and, when status is not NULL, "STATUS=<status>".  The status
 * text is made one line (util/escape.h creto_escape_line: a newline becomes
 * "\n"), so it can never add a KEY=VALUE of its own. */
int creto_notify_ready(creto_notify *n, const char *status, creto_err *e) CRETO_WUR;
/* "STATUS=<status>", made one line the same way. */
int creto_notify_status(creto_notify *n, const char *status, creto_err *e) CRETO_WUR;
/* "WATCHDOG=1": the liveness ping, at least every interval / 2. */
int creto_notify_watchdog(creto_notify *n, creto_err *e) CRETO_WUR;
/* "RELOADING=1" and "MONOTONIC_USEC=<CLOCK_MONOTONIC now>", as
 * Type=notify-reload wants before a reload; "READY=1" follows it after. */
int creto_notify_reloading(creto_notify *n, creto_err *e) CRETO_WUR;
/* "STOPPING=1": shutdown has begun. */
int creto_notify_stopping(creto_notify *n, creto_err *e) CRETO_WUR;

/* The watchdog interval systemd asks for, from the values of $WATCHDOG_USEC
 * and $WATCHDOG_PID (either may be NULL).  *usec = 0 (CRETO_OK) when there
 * is no watchdog: usec NULL or "", or WATCHDOG_PID set to a process other
 * than self (the variables were inherited from a parent).  A value that is
 * not a decimal number in 1..2^63-1 (usec) or 1..INT_MAX (pid) is
 * CRETO_EUSAGE. */
int creto_notify_watchdog_usec(const char *usec, const char *pid, pid_t self, uint64_t *out,
			       creto_err *e) CRETO_WUR;

#endif
