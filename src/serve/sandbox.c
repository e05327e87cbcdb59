/*
 * sandbox.c - the daemon's least privilege (sandbox.h, docs/serve-sandbox.md):
 * user switch, PR_SET_NO_NEW_PRIVS, a Landlock ruleset through the raw
 * syscalls (the kernel headers of the build host may be older than the
 * kernel it runs on, so the ABI 3+ constants are defined here), and a
 * seccomp allow-list built with libseccomp.
 */
#include "serve/sandbox.h"
#include "util/file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include <linux/capability.h>
#include <linux/landlock.h>
#include <linux/netlink.h>
#include <linux/sockios.h>

#include <openssl/crypto.h>
#include <seccomp.h>

/* ---- Landlock ABI constants newer than some build hosts' headers ---- */

#ifndef __NR_landlock_create_ruleset
#define __NR_landlock_create_ruleset 444
#define __NR_landlock_add_rule 445
#define __NR_landlock_restrict_self 446
#endif

#define LL_FS_EXECUTE (1ULL << 0)
#define LL_FS_WRITE_FILE (1ULL << 1)
#define LL_FS_READ_FILE (1ULL << 2)
#define LL_FS_READ_DIR (1ULL << 3)
#define LL_FS_REMOVE_DIR (1ULL << 4)
#define LL_FS_REMOVE_FILE (1ULL << 5)
#define LL_FS_MAKE_CHAR (1ULL << 6)
#define LL_FS_MAKE_DIR (1ULL << 7)
#define LL_FS_MAKE_REG (1ULL << 8)
#define LL_FS_MAKE_SOCK (1ULL << 9)
#define LL_FS_MAKE_FIFO (1ULL << 10)
#define LL_FS_MAKE_BLOCK (1ULL << 11)
#define LL_FS_MAKE_SYM (1ULL << 12)
#define LL_FS_REFER (1ULL << 13)    /* ABI 2 */
#define LL_FS_TRUNCATE (1ULL << 14) /* ABI 3 */
#define LL_FS_IOCTL_DEV (1ULL << 15) /* ABI 5 */
#define LL_SCOPE_ABSTRACT_UNIX (1ULL << 0) /* ABI 6 */
#define LL_SCOPE_SIGNAL (1ULL << 1)        /* ABI 6 */

/* Rights that apply to a non-directory; the kernel refuses others there. */
#define LL_FILE_RIGHTS                                                                             \
	(LL_FS_EXECUTE | LL_FS_WRITE_FILE | LL_FS_READ_FILE | LL_FS_TRUNCATE | LL_FS_IOCTL_DEV)

/* struct landlock_ruleset_attr as of ABI 6; the size passed tells the
 * kernel which fields exist, so older kernels get the prefix they know. */
struct ll_ruleset_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net; /* ABI 4 */
	uint64_t scoped;             /* ABI 6 */
};

struct ll_path_beneath {
	uint64_t allowed_access;
	int32_t parent_fd;
} __attribute__((packed));

/* Every file-system right the kernel of ABI abi knows: all of them are
 * handled, so whatever no rule grants is denied. */
static uint64_t ll_handled_fs(int abi)
{
	uint64_t h = (LL_FS_MAKE_SYM << 1) - 1; /* ABI 1: bits 0..12 */
	if (abi >= 2)
		h |= LL_FS_REFER;
	if (abi >= 3)
		h |= LL_FS_TRUNCATE;
	if (abi >= 5)
		h |= LL_FS_IOCTL_DEV;
	return h;
}

static uint64_t ll_rights(unsigned access, int is_dir)
{
	uint64_t r = LL_FS_READ_FILE;
	if (is_dir)
		r |= LL_FS_READ_DIR;
	if (access & CRETO_SANDBOX_RW) {
		r |= LL_FS_WRITE_FILE | LL_FS_TRUNCATE;
		if (is_dir)
			r |= LL_FS_REMOVE_DIR | LL_FS_REMOVE_FILE | LL_FS_MAKE_DIR | LL_FS_MAKE_REG |
			     LL_FS_REFER | LL_FS_MAKE_SYM; /* the state's `current` links */
	}
	if (access & CRETO_SANDBOX_EXEC)
		r |= LL_FS_EXECUTE;
	if (!is_dir)
		r &= LL_FILE_RIGHTS;
	return r;
}

int creto_sandbox_landlock_abi(void)
{
	long abi = syscall(__NR_landlock_create_ruleset, NULL, (size_t)0,
			   (uint32_t)LANDLOCK_CREATE_RULESET_VERSION);
	if (abi >= 0)
		return abi > INT_MAX ? INT_MAX : (int)abi;
	if (errno == ENOSYS || errno == EOPNOTSUPP)
		return 0;
	return -1;
}

int creto_sandbox_sanitizer_build(void)
{
#if defined(CRETO_SANITIZE) || defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	return 1;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) ||                         \
	__has_feature(memory_sanitizer) || __has_feature(leak_sanitizer)
	return 1;
#else
	return 0;
#endif
#else
	return 0;
#endif
}

/* ---- the rule set ---- */

struct rule {
	char *path;
	int fd; /* O_PATH */
	int is_dir;
	unsigned access;
};

struct creto_sandbox {
	struct rule *rules;
	size_t n, cap;
	int applied;
};

creto_sandbox *creto_sandbox_new(void)
{
	return calloc(1, sizeof(creto_sandbox));
}

void creto_sandbox_free(creto_sandbox *sb)
{
	if (sb == NULL)
		return;
	for (size_t i = 0; i < sb->n; i++) {
		if (sb->rules[i].fd >= 0)
			close(sb->rules[i].fd);
		free(sb->rules[i].path);
	}
	free(sb->rules);
	free(sb);
}

int creto_sandbox_allow(creto_sandbox *sb, const char *path, unsigned access, creto_err *e)
{
	unsigned kind = access & (CRETO_SANDBOX_RO | CRETO_SANDBOX_RW | CRETO_SANDBOX_EXEC);
	if (kind == 0 || (access & ~(kind | CRETO_SANDBOX_OPTIONAL)) != 0)
		return creto_err_set(e, CRETO_EUSAGE, "sandbox rule '%.300s': bad access flags 0x%x",
				     path, access);
	if (path[0] != '/')
		return creto_err_set(e, CRETO_EUSAGE, "sandbox rule '%.300s': not an absolute path",
				     path);
	if (sb->applied)
		return creto_err_set(e, CRETO_EUSAGE, "sandbox rule '%.300s': sandbox already applied",
				     path);
	int fd = open(path, O_PATH | O_CLOEXEC);
	if (fd < 0) {
		if ((errno == ENOENT || errno == ENOTDIR) && (access & CRETO_SANDBOX_OPTIONAL))
			return CRETO_OK;
		if (errno == ENOENT || errno == ENOTDIR)
			return creto_err_set(e, CRETO_EUSAGE, "sandbox rule '%.300s': no such file or "
					     "directory", path);
		return creto_err_errno(e, errno, "sandbox rule '%.300s'", path);
	}
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int err = errno;
		close(fd);
		return creto_err_errno(e, err, "sandbox rule '%.300s': fstat", path);
	}
	if (sb->n == sb->cap) {
		size_t nc = sb->cap ? sb->cap * 2 : 16;
		struct rule *nr = realloc(sb->rules, nc * sizeof(*nr));
		if (nr == NULL) {
			close(fd);
			return creto_err_set(e, CRETO_EOP, "sandbox rule: out of memory");
		}
		sb->rules = nr;
		sb->cap = nc;
	}
	char *p = strdup(path);
	if (p == NULL) {
		close(fd);
		return creto_err_set(e, CRETO_EOP, "sandbox rule: out of memory");
	}
	if (kind & CRETO_SANDBOX_RW)
		kind |= CRETO_SANDBOX_RO;
	sb->rules[sb->n++] =
		(struct rule){.path = p, .fd = fd, .is_dir = S_ISDIR(st.st_mode), .access = kind};
	return CRETO_OK;
}

int creto_sandbox_allow_rw(creto_sandbox *sb, const char *path, creto_err *e)
{
	return creto_sandbox_allow(sb, path, CRETO_SANDBOX_RW, e);
}

int creto_sandbox_allow_ro(creto_sandbox *sb, const char *path, creto_err *e)
{
	return creto_sandbox_allow(sb, path, CRETO_SANDBOX_RO, e);
}

/* OpenSSL_version(OPENSSL_DIR) is 'OPENSSLDIR: "/usr/lib/ssl"': the path
 * between the quotes, or "" when the form is not that. */
static void quoted_path(const char *s, char *out, size_t cap)
{
	out[0] = '\0';
	const char *a = strchr(s, '"');
	if (a == NULL)
		return;
	const char *b = strchr(a + 1, '"');
	if (b == NULL || (size_t)(b - a - 1) >= cap)
		return;
	memcpy(out, a + 1, (size_t)(b - a - 1));
	out[b - a - 1] = '\0';
}

int creto_sandbox_allow_base(creto_sandbox *sb, creto_err *e)
{
	static const char *const ro[] = {
		"/etc/resolv.conf", "/etc/nsswitch.conf", "/etc/hosts",
		"/etc/host.conf",   "/etc/gai.conf",      "/etc/localtime",
		"/proc/net",        "/sys/devices/system/cpu",
	};
	int rc = CRETO_OK;
	for (size_t i = 0; i < sizeof(ro) / sizeof(ro[0]) && rc == CRETO_OK; i++)
		rc = creto_sandbox_allow(sb, ro[i], CRETO_SANDBOX_RO | CRETO_SANDBOX_OPTIONAL, e);
	if (rc == CRETO_OK)
		rc = creto_sandbox_allow(sb, "/dev/null", CRETO_SANDBOX_RW | CRETO_SANDBOX_OPTIONAL, e);
	char dir[PATH_MAX];
	quoted_path(OpenSSL_version(OPENSSL_DIR), dir, sizeof(dir));
	if (rc == CRETO_OK && dir[0] == '/')
		rc = creto_sandbox_allow(sb, dir, CRETO_SANDBOX_RO | CRETO_SANDBOX_OPTIONAL, e);
	quoted_path(OpenSSL_version(OPENSSL_MODULES_DIR), dir, sizeof(dir));
	if (rc == CRETO_OK && dir[0] == '/')
		rc = creto_sandbox_allow(sb, dir, CRETO_SANDBOX_RO | CRETO_SANDBOX_OPTIONAL, e);
	return rc;
}

/* ---- apply ---- */

CRETO_PRINTF(2, 3) static void warn(creto_sandbox_report *r, const char *fmt, ...)
{
	if (r->nwarn >= CRETO_SANDBOX_WARN_MAX)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->warn[r->nwarn++], CRETO_SANDBOX_WARN_LEN, fmt, ap);
	va_end(ap);
}

struct target {
	char name[64];
	uid_t uid;
	gid_t gid;
};

static int resolve_user(const char *user, struct target *t, creto_err *e)
{
	long sz = sysconf(_SC_GETPW_R_SIZE_MAX);
	size_t bufsz = sz > 0 && sz < 1 << 20 ? (size_t)sz : 16384;
	char *buf = malloc(bufsz);
	if (buf == NULL)
		return creto_err_set(e, CRETO_EOP, "sandbox: out of memory");
	struct passwd pw, *res = NULL;
	int err;
	char *end = NULL;
	errno = 0;
	unsigned long v = strtoul(user, &end, 10);
	if (user[0] >= '0' && user[0] <= '9' && *end == '\0' && errno == 0 && v <= 0x7fffffffUL)
		err = getpwuid_r((uid_t)v, &pw, buf, bufsz, &res);
	else
		err = getpwnam_r(user, &pw, buf, bufsz, &res);
	int rc = CRETO_OK;
	if (res == NULL) {
		if (err != 0 && err != ENOENT && err != ESRCH)
			rc = creto_err_errno(e, err, "user '%.64s': lookup", user);
		else
			rc = creto_err_set(e, CRETO_EUSAGE, "user '%.64s': no such user", user);
	} else if (pw.pw_uid == 0 || pw.pw_gid == 0) {
		rc = creto_err_set(e, CRETO_EUSAGE, "user '%.64s': is root (uid %u, gid %u)", user,
				   (unsigned)pw.pw_uid, (unsigned)pw.pw_gid);
	} else if (strlen(pw.pw_name) >= sizeof(t->name)) {
		rc = creto_err_set(e, CRETO_EUSAGE, "user '%.64s': name too long", user);
	} else {
		memcpy(t->name, pw.pw_name, strlen(pw.pw_name) + 1);
		t->uid = pw.pw_uid;
		t->gid = pw.pw_gid;
	}
	free(buf);
	return rc;
}

/* Effective and permitted capability sets (both 64-bit halves). */
static int caps_held(uint64_t *eff, uint64_t *prm)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct d[2];
	memset(d, 0, sizeof(d));
	if (syscall(SYS_capget, &h, d) != 0)
		return -1;
	*eff = (uint64_t)d[1].effective << 32 | d[0].effective;
	*prm = (uint64_t)d[1].permitted << 32 | d[0].permitted;
	return 0;
}

static int switch_user(const struct target *t, creto_err *e)
{
	if (initgroups(t->name, t->gid) != 0)
		return creto_err_errno(e, errno, "user '%s': initgroups", t->name);
	if (setresgid(t->gid, t->gid, t->gid) != 0)
		return creto_err_errno(e, errno, "user '%s': setresgid %u", t->name, (unsigned)t->gid);
	if (setresuid(t->uid, t->uid, t->uid) != 0)
		return creto_err_errno(e, errno, "user '%s': setresuid %u", t->name, (unsigned)t->uid);
	/* Verify: every id is the target's and root cannot come back. */
	uid_t ru, eu, su;
	gid_t rg, eg, sg;
	if (getresuid(&ru, &eu, &su) != 0 || getresgid(&rg, &eg, &sg) != 0)
		return creto_err_errno(e, errno, "user '%s': getresuid", t->name);
	if (ru != t->uid || eu != t->uid || su != t->uid || rg != t->gid || eg != t->gid ||
	    sg != t->gid)
		return creto_err_set(e, CRETO_EOP, "user '%s': ids did not change (uid %u/%u/%u)",
				     t->name, (unsigned)ru, (unsigned)eu, (unsigned)su);
	if (setuid(0) == 0 || seteuid(0) == 0)
		return creto_err_set(e, CRETO_EOP, "user '%s': root uid can be regained", t->name);
	if (setgid(0) == 0 || setegid(0) == 0)
		return creto_err_set(e, CRETO_EOP, "user '%s': root gid can be regained", t->name);
	uint64_t eff = 0, prm = 0;
	if (caps_held(&eff, &prm) != 0)
		return creto_err_errno(e, errno, "user '%s': capget", t->name);
	if (eff != 0 || prm != 0)
		return creto_err_set(e, CRETO_EOP,
				     "user '%s': capabilities left after the switch (0x%llx)", t->name,
				     (unsigned long long)(eff | prm));
	return CRETO_OK;
}

/* Build the ruleset for ABI abi; *fd gets it.  The rules' O_PATH fds were
 * opened when they were added. */
static int landlock_build(creto_sandbox *sb, int abi, int *fd, creto_sandbox_report *rep,
			  creto_err *e)
{
	struct ll_ruleset_attr attr = {.handled_access_fs = ll_handled_fs(abi)};
	size_t attrsz = sizeof(uint64_t);
	if (abi >= 6) {
		/* No connecting to abstract unix sockets made outside the
		 * sandbox (the notify socket is connected before), no signals
		 * to processes outside it. */
		attr.scoped = LL_SCOPE_ABSTRACT_UNIX | LL_SCOPE_SIGNAL;
		attrsz = sizeof(attr);
	}
	int rfd = (int)syscall(__NR_landlock_create_ruleset, &attr, attrsz, (uint32_t)0);
	if (rfd < 0)
		return creto_err_errno(e, errno, "landlock: create ruleset (ABI %d)", abi);
	for (size_t i = 0; i < sb->n; i++) {
		const struct rule *r = &sb->rules[i];
		struct ll_path_beneath pb = {
			.allowed_access = ll_rights(r->access, r->is_dir) & attr.handled_access_fs,
			.parent_fd = r->fd,
		};
		if (pb.allowed_access == 0)
			continue;
		if (syscall(__NR_landlock_add_rule, rfd, LANDLOCK_RULE_PATH_BENEATH, &pb,
			    (uint32_t)0) != 0) {
			int err = errno;
			close(rfd);
			return creto_err_errno(e, err, "landlock: rule '%.300s'", r->path);
		}
		rep->landlock_rules++;
	}
	if (abi == 1)
		warn(rep, "landlock: ABI 1 kernel: renames and links across directories are refused "
			  "(EXDEV)");
	if (abi < 3)
		warn(rep, "landlock: ABI %d kernel: truncation is not restricted", abi);
	*fd = rfd;
	return CRETO_OK;
}

/* ---- seccomp ---- */

/* Syscalls allowed with any arguments; docs/serve-sandbox.md says why each
 * group is here.  Names the running architecture lacks are skipped. */
static const char *const sc_allow[] = {
	/* file descriptors and I/O */
	"read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev", "preadv2",
	"pwritev2", "lseek", "close", "close_range", "dup", "dup2", "dup3", "fcntl", "flock",
	"fsync", "fdatasync", "sync_file_range", "ftruncate", "fallocate", "sendfile",
	"copy_file_range", "pipe", "pipe2", "fadvise64", "readahead",
	/* paths (Landlock decides which) */
	"open", "openat", "openat2", "stat", "fstat", "lstat", "newfstatat", "statx", "statfs",
	"fstatfs", "access", "faccessat", "faccessat2", "readlink", "readlinkat", "getdents",
	"getdents64", "mkdir", "mkdirat", "rmdir", "unlink", "unlinkat", "rename", "renameat",
	"renameat2", "link", "linkat", "symlink", "symlinkat", "truncate", "chmod", "fchmod", "fchmodat", "fchown", "umask",
	"getcwd", "chdir", "fchdir", "utimensat", "inotify_init1", "inotify_add_watch",
	"inotify_rm_watch",
	/* memory (mmap and mprotect below, with arguments) */
	"brk", "munmap", "mremap", "madvise", "msync", "mlock", "munlock", "mlock2", "mincore",
	/* threads */
	"futex", "set_robust_list", "get_robust_list", "rseq", "sched_yield", "sched_getaffinity",
	"set_tid_address",
	/* time */
	"nanosleep", "clock_nanosleep", "clock_gettime", "clock_getres", "gettimeofday", "time",
	"timerfd_create", "timerfd_settime", "timerfd_gettime", "getitimer", "setitimer", "alarm",
	"times",
	/* identity and limits (read only) */
	"getpid", "gettid", "getppid", "getuid", "geteuid", "getgid", "getegid", "getresuid",
	"getresgid", "getgroups", "getrlimit", "getrusage", "uname", "sysinfo", "getpgrp",
	/* leaving */
	"exit", "exit_group", "restart_syscall",
	/* signals (delivery to this process only: kill, tgkill below) */
	"rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack", "rt_sigpending",
	"rt_sigtimedwait", "rt_sigsuspend", "signalfd", "signalfd4", "pause",
	/* event loops */
	"epoll_create", "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "epoll_pwait2",
	"poll", "ppoll", "select", "pselect6", "eventfd", "eventfd2",
	/* sockets (creation below, by family) */
	"bind", "listen", "accept", "accept4", "connect", "getsockname", "getpeername",
	"setsockopt", "getsockopt", "sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg",
	"recvmmsg", "shutdown",
	/* randomness */
	"getrandom",
};

/* ioctl requests allowed: terminal queries of stdio, non-blocking and
 * close-on-exec flags, bytes pending, interface name/index lookups. */
static const unsigned long sc_ioctls[] = {
	TCGETS, TIOCGWINSZ, FIONREAD, FIONBIO, FIOCLEX, FIONCLEX, SIOCGIFINDEX, SIOCGIFNAME,
	SIOCGIFCONF, SIOCGIFFLAGS,
};

static const unsigned long sc_prctls[] = {
	PR_SET_NAME, PR_GET_NAME, PR_GET_DUMPABLE, PR_GET_NO_NEW_PRIVS, PR_GET_SECCOMP,
	0x53564d41UL, /* PR_SET_VMA: glibc names anonymous mappings */
};

#define CLONE_NS_FLAGS                                                                             \
	(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET |   \
	 CLONE_NEWCGROUP | 0x00000080UL /* CLONE_NEWTIME */)

static int sc_add(scmp_filter_ctx ctx, uint32_t action, int nr, unsigned n,
		  const struct scmp_arg_cmp *cmp, const char *name, creto_err *e)
{
	int r = seccomp_rule_add_array(ctx, action, nr, n, cmp);
	if (r != 0)
		return creto_err_errno(e, -r, "seccomp: rule for %s", name);
	return CRETO_OK;
}

static int seccomp_build(int mode, scmp_filter_ctx *out, creto_err *e)
{
	uint32_t dflt = mode == CRETO_SANDBOX_SECCOMP_EPERM ? SCMP_ACT_ERRNO(EPERM)
			: mode == CRETO_SANDBOX_SECCOMP_LOG ? SCMP_ACT_LOG
							    : SCMP_ACT_KILL_PROCESS;
	scmp_filter_ctx ctx = seccomp_init(dflt);
	if (ctx == NULL)
		return creto_err_set(e, CRETO_EOP, "seccomp: init failed");
	int rc = CRETO_OK;
	/* A thread created from another architecture's syscall table
	 * (int 0x80, x32) is killed whatever the mode. */
	if (seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS) != 0 ||
	    seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1) != 0) {
		rc = creto_err_set(e, CRETO_EOP, "seccomp: filter attributes refused");
		goto out;
	}
	for (size_t i = 0; i < sizeof(sc_allow) / sizeof(sc_allow[0]) && rc == CRETO_OK; i++) {
		int nr = seccomp_syscall_resolve_name(sc_allow[i]);
		if (nr == __NR_SCMP_ERROR || nr < 0)
			continue; /* not on this architecture */
		rc = sc_add(ctx, SCMP_ACT_ALLOW, nr, 0, NULL, sc_allow[i], e);
	}
	if (rc != CRETO_OK)
		goto out;

	/* No mapping both writable and executable, by mmap or mprotect: a
	 * call passes when PROT_EXEC or PROT_WRITE is clear. */
	const int memcalls[] = {SCMP_SYS(mmap), SCMP_SYS(mprotect)};
	for (size_t i = 0; i < 2 && rc == CRETO_OK; i++) {
		struct scmp_arg_cmp noexec = SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0);
		struct scmp_arg_cmp nowrite = SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_WRITE, 0);
		rc = sc_add(ctx, SCMP_ACT_ALLOW, memcalls[i], 1, &noexec, "mmap/mprotect", e);
		if (rc == CRETO_OK)
			rc = sc_add(ctx, SCMP_ACT_ALLOW, memcalls[i], 1, &nowrite, "mmap/mprotect", e);
	}
	/* Threads only: clone with CLONE_THREAD and no namespace flag.  No
	 * fork, no exec.  clone3 passes its flags in memory a filter cannot
	 * read, so it fails with ENOSYS and glibc falls back to clone. */
	if (rc == CRETO_OK) {
		struct scmp_arg_cmp th = SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD | CLONE_NS_FLAGS,
						 CLONE_THREAD);
		rc = sc_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1, &th, "clone", e);
	}
	if (rc == CRETO_OK) {
		int nr = seccomp_syscall_resolve_name("clone3");
		if (nr != __NR_SCMP_ERROR && nr >= 0)
			rc = sc_add(ctx, SCMP_ACT_ERRNO(ENOSYS), nr, 0, NULL, "clone3", e);
	}
	/* Sockets of the families the daemon speaks: unix (notify, local
	 * peers), IPv4, IPv6, and rtnetlink for the isolation monitor. */
	const int families[] = {AF_UNIX, AF_INET, AF_INET6};
	for (size_t i = 0; i < 3 && rc == CRETO_OK; i++) {
		struct scmp_arg_cmp fam = SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)families[i], 0);
		rc = sc_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1, &fam, "socket", e);
	}
	if (rc == CRETO_OK) {
		struct scmp_arg_cmp nl[2] = {SCMP_A0(SCMP_CMP_EQ, AF_NETLINK, 0),
					     SCMP_A2(SCMP_CMP_EQ, NETLINK_ROUTE, 0)};
		rc = sc_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 2, nl, "socket", e);
	}
	if (rc == CRETO_OK) {
		struct scmp_arg_cmp un = SCMP_A0(SCMP_CMP_EQ, AF_UNIX, 0);
		rc = sc_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socketpair), 1, &un, "socketpair", e);
	}
	/* Signals to this process only (raise, abort, pthread_kill). */
	pid_t self = getpid();
	if (rc == CRETO_OK) {
		struct scmp_arg_cmp me = SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)self, 0);
		rc = sc_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(kill), 1, &me, "kill", e);
		if (rc == CRETO_OK)
			rc = sc_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1, &me, "tgkill", e);
	}
	for (size_t i = 0; i < sizeof(sc_ioctls) / sizeof(sc_ioctls[0]) && rc == CRETO_OK; i++) {
		struct scmp_arg_cmp req = SCMP_A1(SCMP_CMP_EQ, sc_ioctls[i], 0);
		rc = sc_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, &req, "ioctl", e);
	}
	for (size_t i = 0; i < sizeof(sc_prctls) / sizeof(sc_prctls[0]) && rc == CRETO_OK; i++) {
		struct scmp_arg_cmp opt = SCMP_A0(SCMP_CMP_EQ, sc_prctls[i], 0);
		rc = sc_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1, &opt, "prctl", e);
	}
	/* A thread's own nice value (the audit flusher lowers its weight):
	 * setpriority(PRIO_PROCESS, 0, n); raising it needs CAP_SYS_NICE. */
	if (rc == CRETO_OK) {
		struct scmp_arg_cmp own[2] = {SCMP_A0(SCMP_CMP_EQ, PRIO_PROCESS, 0), SCMP_A1(SCMP_CMP_EQ, 0, 0)};
		rc = sc_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(setpriority), 2, own, "setpriority", e);
	}
	/* Reading limits only: prlimit64 with no new limit. */
	if (rc == CRETO_OK) {
		struct scmp_arg_cmp get = SCMP_A2(SCMP_CMP_EQ, 0, 0);
		rc = sc_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prlimit64), 1, &get, "prlimit64", e);
	}
out:
	if (rc != CRETO_OK) {
		seccomp_release(ctx);
		return rc;
	}
	*out = ctx;
	return CRETO_OK;
}

int creto_sandbox_apply(creto_sandbox *sb, const creto_sandbox_opts *opts,
			creto_sandbox_report *rep, creto_err *e)
{
	static const creto_sandbox_opts dflt = {0};
	creto_sandbox_report scratch;
	if (rep == NULL)
		rep = &scratch;
	memset(rep, 0, sizeof(*rep));
	if (opts == NULL)
		opts = &dflt;
	int rc = CRETO_OK, rfd = -1;
	scmp_filter_ctx sctx = NULL;

	if (sb->applied)
		return creto_err_set(e, CRETO_EUSAGE, "sandbox: already applied");
	if (opts->landlock < CRETO_SANDBOX_LANDLOCK_AUTO || opts->landlock > CRETO_SANDBOX_LANDLOCK_OFF ||
	    opts->seccomp < CRETO_SANDBOX_SECCOMP_OFF || opts->seccomp > CRETO_SANDBOX_SECCOMP_LOG)
		return creto_err_set(e, CRETO_EUSAGE, "sandbox: bad options (landlock %d, seccomp %d)",
				     opts->landlock, opts->seccomp);
	size_t nthreads = creto_thread_count();
	if (nthreads > 1)
		return creto_err_set(e, CRETO_EUSAGE,
				     "sandbox: %zu threads running: apply it before starting any "
				     "thread",
				     nthreads);

	/* 1. Who to become (NSS may read files Landlock will hide). */
	struct target tgt = {0};
	int change = 0;
	if (opts->user != NULL) {
		rc = resolve_user(opts->user, &tgt, e);
		if (rc != CRETO_OK)
			goto out;
		if (geteuid() == 0 || getuid() == 0) {
			change = 1;
		} else if (geteuid() != tgt.uid || getuid() != tgt.uid) {
			rc = creto_err_set(e, CRETO_EUSAGE,
					   "user '%.64s': not started as root, cannot become uid %u",
					   opts->user, (unsigned)tgt.uid);
			goto out;
		}
	} else if (geteuid() == 0) {
		warn(rep, "running as root: no user to switch to was given");
	}

	/* 2. The Landlock ruleset, built while every rule path is open. */
	if (opts->landlock != CRETO_SANDBOX_LANDLOCK_OFF && creto_sandbox_sanitizer_build()) {
		rc = creto_sandbox_allow(sb, "/proc/self", CRETO_SANDBOX_RO | CRETO_SANDBOX_OPTIONAL,
					 e);
		if (rc != CRETO_OK)
			goto out;
		warn(rep, "landlock: sanitizer build: /proc/self readable (LeakSanitizer)");
	}
	if (opts->landlock != CRETO_SANDBOX_LANDLOCK_OFF) {
		int abi = creto_sandbox_landlock_abi();
		if (abi < 0) {
			rc = creto_err_errno(e, errno, "landlock: ABI version");
			goto out;
		}
		rep->landlock_abi = abi;
		if (abi == 0) {
			if (opts->landlock == CRETO_SANDBOX_LANDLOCK_REQUIRE) {
				rc = creto_err_set(e, CRETO_EOP, "landlock: not supported by this "
								 "kernel, and required");
				goto out;
			}
			warn(rep, "landlock: not supported by this kernel: file-system rules not "
				  "enforced");
		} else {
			rc = landlock_build(sb, abi, &rfd, rep, e);
			if (rc != CRETO_OK)
				goto out;
		}
	} else {
		warn(rep, "landlock: off by configuration: file-system rules not enforced");
	}

	/* 3. The seccomp filter, built now (it allocates), loaded last. */
	if (opts->seccomp != CRETO_SANDBOX_SECCOMP_OFF) {
		if (creto_sandbox_sanitizer_build()) {
			warn(rep, "seccomp: not installed: sanitizer build (LeakSanitizer needs ptrace)");
		} else {
			rc = seccomp_build(opts->seccomp, &sctx, e);
			if (rc != CRETO_OK)
				goto out;
		}
	} else {
		warn(rep, "seccomp: off by configuration: no syscall filter");
	}

	/* From here on the process changes for good. */
	sb->applied = 1;
	if (change) {
		rc = switch_user(&tgt, e);
		if (rc != CRETO_OK)
			goto out;
		rep->user_changed = 1;
	} else {
		uint64_t eff = 0, prm = 0;
		if (geteuid() != 0 && caps_held(&eff, &prm) == 0 && eff != 0)
			warn(rep, "capabilities held without root: effective 0x%llx",
			     (unsigned long long)eff);
	}
	rep->uid = geteuid();
	rep->gid = getegid();

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		rc = creto_err_errno(e, errno, "sandbox: PR_SET_NO_NEW_PRIVS");
		goto out;
	}
	if (rfd >= 0) {
		if (syscall(__NR_landlock_restrict_self, rfd, (uint32_t)0) != 0) {
			rc = creto_err_errno(e, errno, "landlock: restrict self");
			goto out;
		}
		rep->landlock_enforced = 1;
	}
	if (sctx != NULL) {
		int r = seccomp_load(sctx);
		if (r != 0) {
			rc = creto_err_errno(e, -r, "seccomp: load filter");
			goto out;
		}
		rep->seccomp_installed = 1;
	}
out:
	if (rfd >= 0)
		close(rfd);
	if (sctx != NULL)
		seccomp_release(sctx);
	return rc;
}
