/*
 * sandbox.h - least privilege for the daemon: drop to an unprivileged user,
 * PR_SET_NO_NEW_PRIVS, a Landlock file-system ruleset and a seccomp
 * allow-list, applied once, in that order, after everything the daemon needs
 * was opened (docs/serve-sandbox.md).
 *
 *     creto_sandbox *sb = creto_sandbox_new();
 *     creto_sandbox_allow_rw(sb, state_dir, &e);      // each call may fail: a
 *     creto_sandbox_allow_ro(sb, config_dir, &e);     // missing path names itself
 *     creto_sandbox_allow_base(sb, &e);               // resolver files, /proc/net, ...
 *     creto_sandbox_opts o = {.user = "creto", .seccomp = CRETO_SANDBOX_SECCOMP_KILL};
 *     creto_sandbox_report r;
 *     rc = creto_sandbox_apply(sb, &o, &r, &e);       // log r.warn[0..r.nwarn)
 *     creto_sandbox_free(sb);
 *
 * Everything here is irreversible for the process.  creto_sandbox_apply
 * must run before any thread is started (Landlock and NO_NEW_PRIVS bind the
 * calling thread and the threads it creates later; it refuses when more than
 * one thread runs).  When it fails part-way, the process is left partly
 * restricted: the caller must exit.
 */
#ifndef CRETO_SERVE_SANDBOX_H
#define CRETO_SERVE_SANDBOX_H

#include <stddef.h>
#include <sys/types.h>

#include "creto/error.h"

typedef struct creto_sandbox creto_sandbox;

/* Access a rule grants beneath a path (a directory: everything beneath it;
 * a file: that file). */
#define CRETO_SANDBOX_RO 1u       /* read files, list directories */
#define CRETO_SANDBOX_RW 2u       /* RO + create, write, truncate, rename, remove */
#define CRETO_SANDBOX_EXEC 4u     /* execute (with RO); no daemon rule uses it today */
#define CRETO_SANDBOX_OPTIONAL 8u /* a missing path is skipped, not an error */

/* Landlock: enforce when the kernel has it, else a warning (AUTO); fail
 * when it does not (REQUIRE); never (OFF, a warning). */
enum creto_sandbox_landlock {
	CRETO_SANDBOX_LANDLOCK_AUTO = 0,
	CRETO_SANDBOX_LANDLOCK_REQUIRE,
	CRETO_SANDBOX_LANDLOCK_OFF,
};

/* seccomp: what a syscall outside the allow-list does.  KILL (the product
 * default) ends the whole process with SIGSYS; EPERM makes it fail with
 * EPERM (diagnosis); LOG lets it run and has the kernel log it (finding a
 * missing syscall in staging). */
enum creto_sandbox_seccomp {
	CRETO_SANDBOX_SECCOMP_OFF = 0,
	CRETO_SANDBOX_SECCOMP_KILL,
	CRETO_SANDBOX_SECCOMP_EPERM,
	CRETO_SANDBOX_SECCOMP_LOG,
};

typedef struct creto_sandbox_opts {
	/* Run as this user (name, or a decimal uid) when started as root:
	 * its uid, primary gid and supplementary groups.  NULL keeps the
	 * current user (a warning when that is root).  A user that is root is
	 * CRETO_EUSAGE; so is a user other than the current one when not
	 * started as root. */
	const char *user;
	int landlock; /* enum creto_sandbox_landlock */
	int seccomp;  /* enum creto_sandbox_seccomp; never installed in sanitizer builds */
} creto_sandbox_opts;

#define CRETO_SANDBOX_WARN_MAX 8
#define CRETO_SANDBOX_WARN_LEN 256

/* What creto_sandbox_apply did, for the daemon's start-up log line. */
typedef struct creto_sandbox_report {
	int landlock_abi;      /* the kernel's Landlock ABI version; 0 when none */
	int landlock_enforced; /* 1 when the ruleset is in force */
	size_t landlock_rules; /* rules added (optional paths that were missing are not) */
	int seccomp_installed; /* 1 when the filter is loaded */
	int user_changed;      /* 1 when the process switched user */
	uid_t uid;             /* the real = effective = saved ids now */
	gid_t gid;
	/* Things the caller must log: one line each, e.g. "landlock: not
	 * supported by this kernel (ENOSYS): file-system rules not enforced". */
	size_t nwarn;
	char warn[CRETO_SANDBOX_WARN_MAX][CRETO_SANDBOX_WARN_LEN];
} creto_sandbox_report;

/* A new, empty rule set; NULL when out of memory. */
creto_sandbox *creto_sandbox_new(void);

/* Free sb and close the path descriptors it holds.  Accepts NULL.  The
 * sandbox stays in force after the free (it belongs to the process). */
void creto_sandbox_free(creto_sandbox *sb);

/* Add a rule: access (CRETO_SANDBOX_RO, RW or EXEC, optionally |
 * CRETO_SANDBOX_OPTIONAL) beneath path.  path must be absolute; it is
 * opened now (O_PATH, following symbolic links: a rule names the file the
 * link points to, as the kernel checks it), so a rename later does not move
 * the rule.  A missing path is CRETO_EUSAGE naming it (skipped with
 * OPTIONAL); a relative path or unknown flag CRETO_EUSAGE; other open
 * errors CRETO_EOP. */
int creto_sandbox_allow(creto_sandbox *sb, const char *path, unsigned access,
			creto_err *e) CRETO_WUR CRETO_NONNULL(1, 2);
/* creto_sandbox_allow(sb, path, CRETO_SANDBOX_RW, e). */
int creto_sandbox_allow_rw(creto_sandbox *sb, const char *path, creto_err *e) CRETO_WUR
	CRETO_NONNULL(1, 2);
/* creto_sandbox_allow(sb, path, CRETO_SANDBOX_RO, e). */
int creto_sandbox_allow_ro(creto_sandbox *sb, const char *path, creto_err *e) CRETO_WUR
	CRETO_NONNULL(1, 2);

/* The rules every daemon needs whatever its configuration, each optional
 * (skipped when missing): read-only /etc/resolv.conf, /etc/nsswitch.conf,
 * /etc/hosts, /etc/host.conf, /etc/gai.conf, /etc/localtime, /proc/net
 * (the isolation monitor), /sys/devices/system/cpu (the CPU count), the
 * OpenSSL configuration and provider directories; read-write /dev/null. */
int creto_sandbox_allow_base(creto_sandbox *sb, creto_err *e) CRETO_WUR CRETO_NONNULL(1);

/* Apply, in this order: resolve opts->user; build the Landlock ruleset;
 * switch user (initgroups, setgid, setuid) and verify that neither root
 * uid nor gid can be regained and that no capability is left; set
 * PR_SET_NO_NEW_PRIVS; restrict self with the ruleset; load the seccomp
 * filter (docs/serve-sandbox.md lists it).  opts NULL means the defaults
 * (no user, Landlock AUTO, seccomp OFF).  rep (optional) is filled on
 * success and on failure.  Errors: CRETO_EUSAGE for a bad option (unknown
 * user, root user, more than one thread running), CRETO_EOP when the
 * kernel refuses a step (then the process is partly restricted and must
 * exit).  A kernel without Landlock is a warning in rep unless
 * opts->landlock is REQUIRE.  Call once. */
int creto_sandbox_apply(creto_sandbox *sb, const creto_sandbox_opts *opts,
			creto_sandbox_report *rep, creto_err *e) CRETO_WUR CRETO_NONNULL(1);

/* The Landlock ABI version of the running kernel, 0 when it has none
 * (ENOSYS, EOPNOTSUPP), -1 with errno for any other failure. */
int creto_sandbox_landlock_abi(void);

/* 1 in a sanitizer build: the seccomp filter is never installed there
 * (LeakSanitizer stops the world with ptrace) and creto_sandbox_apply adds
 * a read-only Landlock rule for /proc/self (LeakSanitizer reads its task
 * list and memory map at exit). */
int creto_sandbox_sanitizer_build(void);

#endif
