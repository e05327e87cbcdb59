/*
 * test_sandbox.c - src/serve/sandbox.c and notify.c against the running
 * kernel.  Every sandbox is applied in a forked child (it is irreversible):
 * the child reports through its exit status (0, or a line on stderr and
 * exit 1) or dies by SIGSYS where the seccomp filter must kill it.
 *
 * Shown here: rule errors; Landlock denies writes and reads outside the
 * rules (EACCES) while the allowed directories work; a kernel without
 * Landlock is a warning (AUTO) or an error (REQUIRE), simulated by a seccomp
 * filter answering ENOSYS; each forbidden syscall kills the process (KILL)
 * or fails with EPERM (EPERM mode); the work a daemon does still runs under
 * the full sandbox (threads, loopback TCP, epoll, timerfd, signals, SQLite
 * in the state dir, OpenSSL signing, getaddrinfo of localhost, a passive
 * isolation check over rtnetlink and /proc/net); the user
 * switch to nobody cannot be undone; threads running refuse the apply; the
 * sd_notify messages, path and abstract sockets, reconnect after the
 * manager re-binds, and a notify socket connected before the sandbox keeps
 * working under it.  Seccomp cases skip in sanitizer builds (never
 * installed there); Landlock cases skip with a reason when the kernel has
 * none.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <seccomp.h>
#include <sqlite3.h>

#include "creto/isolation.h"
#include "serve/notify.h"
#include "serve/sandbox.h"

static char g_dir[400];
static int g_abi;

static int setup(void **state)
{
	(void)state;
	/* The dropped user must reach the directory wherever the tree is (CI
	 * may clone it under a 0700 home): a fresh directory under /tmp. */
	snprintf(g_dir, sizeof(g_dir), "/tmp/creto-test_sandbox.XXXXXX");
	if (mkdtemp(g_dir) == NULL)
		return -1;
	chmod(g_dir, 0755);
	g_abi = creto_sandbox_landlock_abi();
	fprintf(stderr, "# kernel Landlock ABI %d; seccomp %s in this build\n", g_abi,
		creto_sandbox_sanitizer_build() ? "never installed" : "installed");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[700];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void path_in(char *out, size_t cap, const char *name)
{
	snprintf(out, cap, "%s/%s", g_dir, name);
}

#define NEED_LANDLOCK()                                                                            \
	do {                                                                                       \
		if (g_abi <= 0) {                                                                  \
			fprintf(stderr, "# SKIP: kernel has no Landlock (ABI %d)\n", g_abi);       \
			skip();                                                                    \
		}                                                                                  \
	} while (0)
#define NEED_SECCOMP()                                                                             \
	do {                                                                                       \
		if (creto_sandbox_sanitizer_build()) {                                      \
			fprintf(stderr, "# SKIP: sanitizer build: the seccomp filter is never "    \
					"installed\n");                                            \
			skip();                                                                    \
		}                                                                                  \
	} while (0)

/* In the child: a failed check prints a line and exits 1 (cmocka's
 * asserts would longjmp into the parent's copy of the runner). */
#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "child check failed at line %d: %s (errno %s)\n", __LINE__, \
				#cond, strerror(errno));                                           \
			_exit(1);                                                                  \
		}                                                                                  \
	} while (0)

/* Run fn(arg) in a child; its wait status. */
static int in_child(void (*fn)(void *), void *arg)
{
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		fn(arg);
		_exit(0);
	}
	int st = 0;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return st;
}

static void assert_child_ok(int st)
{
	if (WIFSIGNALED(st))
		fprintf(stderr, "child killed by signal %d\n", WTERMSIG(st));
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void apply_or_die(creto_sandbox *sb, const creto_sandbox_opts *o, creto_sandbox_report *r)
{
	creto_err e;
	creto_err_clear(&e);
	int rc = creto_sandbox_apply(sb, o, r, &e);
	if (rc != CRETO_OK) {
		fprintf(stderr, "apply: %s\n", e.msg);
		_exit(1);
	}
}

static void write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

/* The directory layout of a daemon: conf (read-only) holding creto.conf,
 * state (read-write), outside (no rule) holding secret.txt. */
static void make_layout(const char *tag, char conf[600], char state[600], char outside[600])
{
	char base[500];
	path_in(base, sizeof(base), tag);
	assert_int_equal(mkdir(base, 0755), 0);
	snprintf(conf, 600, "%s/conf", base);
	snprintf(state, 600, "%s/state", base);
	snprintf(outside, 600, "%s/outside", base);
	assert_int_equal(mkdir(conf, 0755), 0);
	assert_int_equal(mkdir(state, 0755), 0);
	assert_int_equal(mkdir(outside, 0755), 0);
	char p[700];
	snprintf(p, sizeof(p), "%s/creto.conf", conf);
	write_text(p, "[state]\ndir = x\n");
	snprintf(p, sizeof(p), "%s/secret.txt", outside);
	write_text(p, "not for the daemon\n");
}

/* ---- rules ---- */

static void test_rule_errors(void **state)
{
	(void)state;
	creto_sandbox *sb = creto_sandbox_new();
	assert_non_null(sb);
	creto_err e;
	creto_err_clear(&e);
	assert_int_equal(creto_sandbox_allow_ro(sb, "relative/dir", &e), CRETO_EUSAGE);
	assert_non_null(strstr(e.msg, "not an absolute path"));
	char p[600];
	path_in(p, sizeof(p), "does-not-exist");
	assert_int_equal(creto_sandbox_allow_rw(sb, p, &e), CRETO_EUSAGE);
	assert_non_null(strstr(e.msg, "does-not-exist"));
	assert_non_null(strstr(e.msg, "no such file"));
	creto_err_clear(&e);
	assert_int_equal(creto_sandbox_allow(sb, p, CRETO_SANDBOX_RO | CRETO_SANDBOX_OPTIONAL, &e),
			 CRETO_OK);
	assert_int_equal(creto_sandbox_allow(sb, g_dir, 0, &e), CRETO_EUSAGE);
	assert_int_equal(creto_sandbox_allow(sb, g_dir, CRETO_SANDBOX_RO | 0x100, &e), CRETO_EUSAGE);
	assert_non_null(strstr(e.msg, "bad access flags"));
	assert_int_equal(creto_sandbox_allow_ro(sb, g_dir, &e), CRETO_OK);
	assert_int_equal(creto_sandbox_allow_base(sb, &e), CRETO_OK);
	/* bad options are refused before anything changes */
	creto_sandbox_opts o = {.landlock = 7};
	assert_int_equal(creto_sandbox_apply(sb, &o, NULL, &e), CRETO_EUSAGE);
	assert_non_null(strstr(e.msg, "bad options"));
	creto_sandbox_free(sb);
	creto_sandbox_free(NULL);
}

/* ---- Landlock ---- */

struct layout {
	char conf[600], state[600], outside[600];
	int seccomp;
};

static void child_landlock(void *arg)
{
	const struct layout *l = arg;
	creto_err e;
	creto_sandbox *sb = creto_sandbox_new();
	CHECK(sb != NULL);
	CHECK(creto_sandbox_allow_ro(sb, l->conf, &e) == CRETO_OK);
	CHECK(creto_sandbox_allow_rw(sb, l->state, &e) == CRETO_OK);
	CHECK(creto_sandbox_allow_base(sb, &e) == CRETO_OK);
	creto_sandbox_opts o = {.landlock = CRETO_SANDBOX_LANDLOCK_REQUIRE, .seccomp = l->seccomp};
	creto_sandbox_report r;
	apply_or_die(sb, &o, &r);
	creto_sandbox_free(sb);
	CHECK(r.landlock_enforced == 1 && r.landlock_abi > 0 && r.landlock_rules >= 2);
	char p[700], q[700], buf[64];

	/* the config reads, but nothing is written there */
	snprintf(p, sizeof(p), "%s/creto.conf", l->conf);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	CHECK(read(fd, buf, sizeof(buf)) > 0);
	close(fd);
	errno = 0;
	CHECK(open(p, O_WRONLY | O_CLOEXEC) < 0 && errno == EACCES);
	snprintf(q, sizeof(q), "%s/new.conf", l->conf);
	errno = 0;
	CHECK(open(q, O_WRONLY | O_CREAT | O_CLOEXEC, 0644) < 0 && errno == EACCES);

	/* the state dir: create, write, fsync, rename, truncate, mkdir, remove */
	snprintf(p, sizeof(p), "%s/db.tmp", l->state);
	snprintf(q, sizeof(q), "%s/db", l->state);
	fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	CHECK(write(fd, "x", 1) == 1 && fsync(fd) == 0);
	close(fd);
	CHECK(rename(p, q) == 0);
	CHECK(truncate(q, 0) == 0);
	snprintf(p, sizeof(p), "%s/sub", l->state);
	CHECK(mkdir(p, 0700) == 0);
	snprintf(p, sizeof(p), "%s/sub/moved", l->state);
	CHECK(rename(q, p) == 0); /* across directories, within the rule (REFER) */
	CHECK(unlink(p) == 0);

	/* outside every rule: no write, no create, no read, no rename out */
	snprintf(p, sizeof(p), "%s/secret.txt", l->outside);
	errno = 0;
	CHECK(open(p, O_WRONLY | O_CLOEXEC) < 0 && errno == EACCES);
	errno = 0;
	CHECK(open(p, O_RDONLY | O_CLOEXEC) < 0 && errno == EACCES);
	snprintf(p, sizeof(p), "%s/dropped", l->outside);
	errno = 0;
	CHECK(open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644) < 0 && errno == EACCES);
	errno = 0;
	CHECK(open("/etc/passwd", O_RDONLY | O_CLOEXEC) < 0 && errno == EACCES);
	errno = 0;
	CHECK(open("/tmp/creto-sandbox-escape", O_WRONLY | O_CREAT | O_CLOEXEC, 0600) < 0 &&
	      errno == EACCES);
	snprintf(p, sizeof(p), "%s/keep", l->state);
	fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	close(fd);
	snprintf(q, sizeof(q), "%s/stolen", l->outside);
	errno = 0;
	CHECK(rename(p, q) != 0 && (errno == EACCES || errno == EXDEV));

	/* the base rules: resolver files and /proc/net read, /dev/null writes */
	fd = open("/etc/hosts", O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	close(fd);
	fd = open("/proc/net/route", O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	close(fd);
	fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	CHECK(fd >= 0 && write(fd, "x", 1) == 1);
	close(fd);
}

static void test_landlock_rules(void **state)
{
	(void)state;
	NEED_LANDLOCK();
	struct layout l = {.seccomp = CRETO_SANDBOX_SECCOMP_OFF};
	make_layout("ll", l.conf, l.state, l.outside);
	assert_child_ok(in_child(child_landlock, &l));
	/* nothing escaped from the child */
	char p[700];
	snprintf(p, sizeof(p), "%s/dropped", l.outside);
	assert_int_equal(access(p, F_OK), -1);
}

/* A kernel without Landlock, simulated: a filter answering ENOSYS to
 * landlock_create_ruleset before the sandbox is applied. */
static void hide_landlock(void)
{
	scmp_filter_ctx c = seccomp_init(SCMP_ACT_ALLOW);
	CHECK(c != NULL);
	CHECK(seccomp_rule_add(c, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(landlock_create_ruleset), 0) == 0);
	CHECK(seccomp_load(c) == 0);
	seccomp_release(c);
}

static void child_no_landlock_auto(void *arg)
{
	(void)arg;
	hide_landlock();
	CHECK(creto_sandbox_landlock_abi() == 0);
	creto_sandbox *sb = creto_sandbox_new();
	creto_err e;
	CHECK(creto_sandbox_allow_rw(sb, g_dir, &e) == CRETO_OK);
	creto_sandbox_report r;
	creto_sandbox_opts o = {.landlock = CRETO_SANDBOX_LANDLOCK_AUTO};
	apply_or_die(sb, &o, &r);
	creto_sandbox_free(sb);
	CHECK(r.landlock_abi == 0 && r.landlock_enforced == 0);
	int found = 0;
	for (size_t i = 0; i < r.nwarn; i++)
		if (strstr(r.warn[i], "landlock: not supported by this kernel") != NULL)
			found = 1;
	CHECK(found);
	/* not enforced: a read outside the rule still works */
	int fd = open("/etc/passwd", O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	close(fd);
}

static void child_no_landlock_require(void *arg)
{
	(void)arg;
	hide_landlock();
	creto_sandbox *sb = creto_sandbox_new();
	creto_err e;
	creto_err_clear(&e);
	creto_sandbox_opts o = {.landlock = CRETO_SANDBOX_LANDLOCK_REQUIRE};
	CHECK(creto_sandbox_apply(sb, &o, NULL, &e) == CRETO_EOP);
	CHECK(strstr(e.msg, "landlock: not supported") != NULL);
	creto_sandbox_free(sb);
}

static void test_landlock_absent(void **state)
{
	(void)state;
	assert_child_ok(in_child(child_no_landlock_auto, NULL));
	assert_child_ok(in_child(child_no_landlock_require, NULL));
}

/* ---- seccomp ---- */

static void apply_seccomp(int mode)
{
	creto_sandbox *sb = creto_sandbox_new();
	CHECK(sb != NULL);
	creto_sandbox_opts o = {.landlock = CRETO_SANDBOX_LANDLOCK_OFF, .seccomp = mode};
	creto_sandbox_report r;
	apply_or_die(sb, &o, &r);
	creto_sandbox_free(sb);
	CHECK(r.seccomp_installed == 1);
}

static long forbidden(int which)
{
	switch (which) {
	case 0: return ptrace(PTRACE_TRACEME, 0, NULL, NULL);
	case 1: return mount("none", "/mnt", "tmpfs", 0, NULL);
	case 2: return unshare(CLONE_NEWUSER);
	case 3: return syscall(SYS_kexec_load, 0UL, 0UL, NULL, 0UL);
	case 4: return (long)fork();
	case 5: {
		char *const argv[] = {(char *)"/bin/true", NULL};
		return execv("/bin/true", argv);
	}
	case 6: {
		void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		return m == MAP_FAILED ? -1 : 0;
	}
	case 7: {
		void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		CHECK(m != MAP_FAILED);
		return mprotect(m, 4096, PROT_READ | PROT_WRITE | PROT_EXEC);
	}
	case 8: return socket(AF_PACKET, SOCK_RAW, 0);
	case 9: return kill(1, 0);
	case 10: return setuid(0);
	case 11: return syscall(SYS_bpf, 0, NULL, 0);
	case 12: return syscall(SYS_memfd_create, "x", 0);
	case 13: return syscall(SYS_io_uring_setup, 1, NULL);
	case 14: return syscall(SYS_clone, (unsigned long)(CLONE_THREAD | CLONE_NEWUSER), NULL,
				NULL, NULL, 0UL);
	case 15: return socket(AF_NETLINK, SOCK_RAW, 9 /* NETLINK_AUDIT */);
	case 16: return syscall(SYS_setns, 0, 0);
	case 17: return syscall(SYS_chroot, "/");
	case 18: return syscall(SYS_landlock_create_ruleset, NULL, 0UL, 1U);
	default: return 0;
	}
}
#define N_FORBIDDEN 19
static const char *const forbidden_name[N_FORBIDDEN] = {
	"ptrace", "mount", "unshare", "kexec_load", "fork", "execve", "mmap W+X", "mprotect W+X",
	"socket AF_PACKET", "kill pid 1", "setuid", "bpf", "memfd_create", "io_uring_setup",
	"clone NEWUSER", "socket NETLINK_AUDIT", "setns", "chroot", "landlock_create_ruleset",
};

static void child_forbidden_kill(void *arg)
{
	int which = *(const int *)arg;
	apply_seccomp(CRETO_SANDBOX_SECCOMP_KILL);
	(void)forbidden(which);
	_exit(42); /* still alive: the filter let it through */
}

static void test_seccomp_kills(void **state)
{
	(void)state;
	NEED_SECCOMP();
	for (int i = 0; i < N_FORBIDDEN; i++) {
		int st = in_child(child_forbidden_kill, &i);
		if (!(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS))
			fprintf(stderr, "%s: not killed by SIGSYS (status 0x%x)\n", forbidden_name[i],
				st);
		assert_true(WIFSIGNALED(st));
		assert_int_equal(WTERMSIG(st), SIGSYS);
	}
}

static void *thread_fn(void *arg)
{
	*(int *)arg = 7;
	return NULL;
}

static void child_forbidden_eperm(void *arg)
{
	(void)arg;
	apply_seccomp(CRETO_SANDBOX_SECCOMP_EPERM);
	for (int i = 0; i < N_FORBIDDEN; i++) {
		if (i == 4 || i == 5)
			continue; /* fork/exec would succeed with a different errno path: below */
		errno = 0;
		long r = forbidden(i);
		if (!(r == -1 && errno == EPERM))
			fprintf(stderr, "%s: r %ld errno %d\n", forbidden_name[i], r, errno);
		CHECK(r == -1 && errno == EPERM);
	}
	errno = 0;
	CHECK(fork() == -1 && errno == EPERM);
	/* clone3 answers ENOSYS in every mode, so glibc falls back to clone */
	errno = 0;
	CHECK(syscall(SYS_clone3, NULL, 0UL) == -1 && errno == ENOSYS);
	pthread_t t;
	int v = 0;
	CHECK(pthread_create(&t, NULL, thread_fn, &v) == 0);
	CHECK(pthread_join(t, NULL) == 0 && v == 7);
}

static void test_seccomp_eperm(void **state)
{
	(void)state;
	NEED_SECCOMP();
	assert_child_ok(in_child(child_forbidden_eperm, NULL));
}

/* ---- the daemon's work under the full sandbox ---- */

static volatile sig_atomic_t g_got_usr1;
static void on_usr1(int sig)
{
	(void)sig;
	g_got_usr1 = 1;
}

static void *accept_fn(void *arg)
{
	int lfd = *(int *)arg;
	int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		return (void *)1;
	char buf[5];
	ssize_t n = recv(c, buf, sizeof(buf), MSG_WAITALL);
	ssize_t w = n == 5 ? send(c, "pong!", 5, MSG_NOSIGNAL) : -1;
	close(c);
	return w == 5 ? NULL : (void *)1;
}

static void child_work(void *arg)
{
	const struct layout *l = arg;
	/* what the daemon opens first: the listening socket */
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(lfd >= 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	CHECK(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(lfd, 4) == 0);
	socklen_t sl = sizeof(sa);
	CHECK(getsockname(lfd, (struct sockaddr *)&sa, &sl) == 0);
	struct sigaction act = {.sa_handler = on_usr1};
	sigemptyset(&act.sa_mask);
	CHECK(sigaction(SIGUSR1, &act, NULL) == 0);

	creto_err e;
	creto_sandbox *sb = creto_sandbox_new();
	CHECK(creto_sandbox_allow_ro(sb, l->conf, &e) == CRETO_OK);
	CHECK(creto_sandbox_allow_rw(sb, l->state, &e) == CRETO_OK);
	CHECK(creto_sandbox_allow_base(sb, &e) == CRETO_OK);
	creto_sandbox_opts o = {.landlock = g_abi > 0 ? CRETO_SANDBOX_LANDLOCK_REQUIRE
						      : CRETO_SANDBOX_LANDLOCK_AUTO,
				.seccomp = l->seccomp};
	creto_sandbox_report r;
	apply_or_die(sb, &o, &r);
	creto_sandbox_free(sb);

	/* a thread accepting, the main thread connecting over loopback */
	pthread_t t;
	CHECK(pthread_create(&t, NULL, accept_fn, &lfd) == 0);
	int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(c >= 0 && connect(c, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	CHECK(send(c, "ping!", 5, MSG_NOSIGNAL) == 5);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = c}, got;
	CHECK(ep >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev) == 0);
	CHECK(epoll_wait(ep, &got, 1, 10000) == 1);
	char buf[8];
	CHECK(recv(c, buf, 5, MSG_WAITALL) == 5 && memcmp(buf, "pong!", 5) == 0);
	void *tr = (void *)1;
	CHECK(pthread_join(t, &tr) == 0 && tr == NULL);
	close(c);
	close(ep);

	/* a timer, a signal to itself, randomness, the time */
	int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	struct itimerspec its = {.it_value = {.tv_nsec = 1000000}};
	CHECK(tfd >= 0 && timerfd_settime(tfd, 0, &its, NULL) == 0);
	uint64_t ticks = 0;
	CHECK(read(tfd, &ticks, sizeof(ticks)) == sizeof(ticks) && ticks >= 1);
	close(tfd);
	CHECK(raise(SIGUSR1) == 0 && g_got_usr1 == 1);
	unsigned char rnd[32];
	CHECK(getrandom(rnd, sizeof(rnd), 0) == (ssize_t)sizeof(rnd));
	struct timespec ts;
	CHECK(clock_gettime(CLOCK_REALTIME, &ts) == 0);
	CHECK(sysconf(_SC_NPROCESSORS_ONLN) >= 1);

	/* SQLite in the state dir, WAL mode (shm mapping, locks) */
	char db[700];
	snprintf(db, sizeof(db), "%s/state.db", l->state);
	sqlite3 *s = NULL;
	CHECK(sqlite3_open_v2(db, &s, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) ==
	      SQLITE_OK);
	CHECK(sqlite3_exec(s,
			   "PRAGMA journal_mode=WAL; CREATE TABLE t(k TEXT PRIMARY KEY, v BLOB);"
			   "BEGIN; INSERT INTO t VALUES('a', randomblob(64)); COMMIT;"
			   "PRAGMA wal_checkpoint(TRUNCATE);",
			   NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_stmt *st = NULL;
	CHECK(sqlite3_prepare_v2(s, "SELECT length(v) FROM t WHERE k='a'", -1, &st, NULL) ==
	      SQLITE_OK);
	CHECK(sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) == 64);
	sqlite3_finalize(st);
	CHECK(sqlite3_close(s) == SQLITE_OK);

	/* OpenSSL: a fresh Ed25519 key and a P-256 key sign and verify */
	const char *algs[] = {"ED25519", "EC"};
	for (int i = 0; i < 2; i++) {
		EVP_PKEY *k = i == 0 ? EVP_PKEY_Q_keygen(NULL, NULL, algs[i])
				     : EVP_PKEY_Q_keygen(NULL, NULL, algs[i], "P-256");
		CHECK(k != NULL);
		EVP_MD_CTX *m = EVP_MD_CTX_new();
		unsigned char sig[160];
		size_t siglen = sizeof(sig);
		const unsigned char msg[] = "statement";
		CHECK(EVP_DigestSignInit(m, NULL, i == 0 ? NULL : EVP_sha256(), NULL, k) == 1);
		CHECK(EVP_DigestSign(m, sig, &siglen, msg, sizeof(msg)) == 1);
		EVP_MD_CTX_reset(m);
		CHECK(EVP_DigestVerifyInit(m, NULL, i == 0 ? NULL : EVP_sha256(), NULL, k) == 1);
		CHECK(EVP_DigestVerify(m, sig, siglen, msg, sizeof(msg)) == 1);
		EVP_MD_CTX_free(m);
		EVP_PKEY_free(k);
	}

	/* name resolution through /etc/hosts (nsswitch "files") */
	struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai = NULL;
	CHECK(getaddrinfo("localhost", "80", &hints, &ai) == 0 && ai != NULL);
	freeaddrinfo(ai);
	close(lfd);

	/* the isolation monitor's passive check, routes from rtnetlink and
	 * from /proc/net, resolver configuration from /etc/resolv.conf */
	static creto_iso_config cfg;
	creto_iso_config_default(&cfg);
	const int sources[] = {CRETO_ISO_ROUTES_NETLINK, CRETO_ISO_ROUTES_PROC};
	for (int i = 0; i < 2; i++) {
		creto_iso_opts io = {.active = 0, .route_source = sources[i]};
		creto_iso_report *rep = NULL;
		creto_err_clear(&e);
		int irc = creto_iso_check(&cfg, &io, &rep, &e);
		if (irc != CRETO_OK)
			fprintf(stderr, "isolation check (%d): %s\n", i, e.msg);
		CHECK(irc == CRETO_OK && rep != NULL && rep->n > 0);
		creto_iso_report_free(rep);
	}
}

static void test_daemon_work(void **state)
{
	(void)state;
	struct layout l = {.seccomp = creto_sandbox_sanitizer_build()
					      ? CRETO_SANDBOX_SECCOMP_OFF
					      : CRETO_SANDBOX_SECCOMP_KILL};
	make_layout("work", l.conf, l.state, l.outside);
	assert_child_ok(in_child(child_work, &l));
	char p[700];
	snprintf(p, sizeof(p), "%s/state.db", l.state);
	assert_int_equal(access(p, F_OK), 0);
}

/* Landlock and seccomp together: the Landlock checks still hold, and the
 * filter lets the daemon's file operations through. */
static void test_landlock_with_seccomp(void **state)
{
	(void)state;
	NEED_LANDLOCK();
	NEED_SECCOMP();
	struct layout l = {.seccomp = CRETO_SANDBOX_SECCOMP_KILL};
	make_layout("llsc", l.conf, l.state, l.outside);
	assert_child_ok(in_child(child_landlock, &l));
}

/* ---- the user switch ---- */

static void child_user(void *arg)
{
	const struct layout *l = arg;
	struct passwd *pw = getpwnam("nobody");
	CHECK(pw != NULL);
	uid_t nobody = pw->pw_uid;
	gid_t nogroup = pw->pw_gid;
	creto_err e;
	creto_sandbox *sb = creto_sandbox_new();
	CHECK(creto_sandbox_allow_rw(sb, l->state, &e) == CRETO_OK);
	CHECK(creto_sandbox_allow_ro(sb, l->conf, &e) == CRETO_OK);
	creto_sandbox_opts o = {.user = "nobody", .seccomp = l->seccomp};
	creto_sandbox_report r;
	apply_or_die(sb, &o, &r);
	creto_sandbox_free(sb);
	CHECK(r.user_changed == 1 && r.uid == nobody && r.gid == nogroup);
	uid_t ru, eu, su;
	CHECK(getresuid(&ru, &eu, &su) == 0 && ru == nobody && eu == nobody && su == nobody);
	gid_t groups[64];
	int ng = getgroups(64, groups);
	CHECK(ng >= 0);
	for (int i = 0; i < ng; i++)
		CHECK(groups[i] != 0);
	if (l->seccomp == CRETO_SANDBOX_SECCOMP_OFF) {
		/* without the filter the kernel itself refuses root */
		errno = 0;
		CHECK(setuid(0) == -1 && errno == EPERM);
		CHECK(setgid(0) == -1 && errno == EPERM);
	}
	/* the state dir (owned by nobody) is writable */
	char p[700];
	snprintf(p, sizeof(p), "%s/as-nobody", l->state);
	int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	close(fd);
	/* a root-only file in the config dir no longer reads (plain DAC) */
	snprintf(p, sizeof(p), "%s/root-only", l->conf);
	errno = 0;
	CHECK(open(p, O_RDONLY | O_CLOEXEC) < 0 && errno == EACCES);
}

static void child_user_errors(void *arg)
{
	(void)arg;
	creto_err e;
	creto_sandbox *sb = creto_sandbox_new();
	creto_sandbox_opts o = {.user = "root"};
	CHECK(creto_sandbox_apply(sb, &o, NULL, &e) == CRETO_EUSAGE);
	CHECK(strstr(e.msg, "is root") != NULL);
	o.user = "0";
	CHECK(creto_sandbox_apply(sb, &o, NULL, &e) == CRETO_EUSAGE);
	o.user = "no-such-user-creto";
	CHECK(creto_sandbox_apply(sb, &o, NULL, &e) == CRETO_EUSAGE);
	CHECK(strstr(e.msg, "no such user") != NULL);
	/* once not root, another user is refused */
	struct passwd *pw = getpwnam("nobody");
	CHECK(pw != NULL);
	CHECK(setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) == 0);
	CHECK(setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) == 0);
	o.user = "daemon";
	CHECK(creto_sandbox_apply(sb, &o, NULL, &e) == CRETO_EUSAGE);
	CHECK(strstr(e.msg, "not started as root") != NULL);
	/* the current user is fine, and no switch happens */
	o.user = "nobody";
	creto_sandbox_report r;
	apply_or_die(sb, &o, &r);
	CHECK(r.user_changed == 0 && r.uid == pw->pw_uid);
	creto_sandbox_free(sb);
}

static void test_user_switch(void **state)
{
	(void)state;
	if (geteuid() != 0 || getpwnam("nobody") == NULL) {
		fprintf(stderr, "# SKIP: not root or no user nobody: no user switch to test\n");
		skip();
	}
	for (int sc = 0; sc < 2; sc++) {
		if (sc == 1 && creto_sandbox_sanitizer_build())
			break;
		struct layout l = {.seccomp = sc ? CRETO_SANDBOX_SECCOMP_KILL
						 : CRETO_SANDBOX_SECCOMP_OFF};
		make_layout(sc ? "user-sc" : "user", l.conf, l.state, l.outside);
		struct passwd *pw = getpwnam("nobody");
		assert_int_equal(chown(l.state, pw->pw_uid, pw->pw_gid), 0);
		char p[700];
		snprintf(p, sizeof(p), "%s/root-only", l.conf);
		write_text(p, "secret\n");
		assert_int_equal(chmod(p, 0600), 0);
		assert_child_ok(in_child(child_user, &l));
	}
	assert_child_ok(in_child(child_user_errors, NULL));
}

static void *block_fn(void *arg)
{
	char c;
	ssize_t n = read(*(int *)arg, &c, 1);
	(void)n;
	return NULL;
}

static void child_threads(void *arg)
{
	(void)arg;
	int pfd[2];
	CHECK(pipe(pfd) == 0);
	pthread_t t;
	CHECK(pthread_create(&t, NULL, block_fn, &pfd[0]) == 0);
	creto_err e;
	creto_sandbox *sb = creto_sandbox_new();
	CHECK(creto_sandbox_apply(sb, NULL, NULL, &e) == CRETO_EUSAGE);
	CHECK(strstr(e.msg, "2 threads running") != NULL);
	CHECK(write(pfd[1], "x", 1) == 1);
	CHECK(pthread_join(t, NULL) == 0);
	creto_sandbox_free(sb);
}

static void test_threads_refused(void **state)
{
	(void)state;
	assert_child_ok(in_child(child_threads, NULL));
}

/* ---- sd_notify ---- */

/* A bound datagram socket: a path under g_dir, or abstract when name
 * starts with '@'. */
static int bind_dgram(const char *name)
{
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	size_t len = strlen(name);
	assert_true(len < sizeof(a.sun_path));
	memcpy(a.sun_path, name, len);
	socklen_t al = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
	if (name[0] == '@') {
		a.sun_path[0] = '\0';
		al--;
	} else {
		unlink(name);
	}
	assert_int_equal(bind(fd, (struct sockaddr *)&a, al), 0);
	return fd;
}

static void recv_msg(int fd, char *buf, size_t cap)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	assert_int_equal(poll(&p, 1, 10000), 1);
	ssize_t n = recv(fd, buf, cap - 1, 0);
	assert_true(n > 0);
	buf[n] = '\0';
}

static void check_messages(int rfd, creto_notify *n)
{
	creto_err e;
	char buf[CRETO_NOTIFY_MSG_MAX + 1];
	assert_int_equal(creto_notify_ready(n, "serving 3 models", &e), CRETO_OK);
	recv_msg(rfd, buf, sizeof(buf));
	assert_string_equal(buf, "READY=1\nSTATUS=serving 3 models");
	assert_int_equal(creto_notify_ready(n, NULL, &e), CRETO_OK);
	recv_msg(rfd, buf, sizeof(buf));
	assert_string_equal(buf, "READY=1");
	/* a status cannot add a line of its own */
	assert_int_equal(creto_notify_status(n, "evil\nMAINPID=1\x1b[2J", &e), CRETO_OK);
	recv_msg(rfd, buf, sizeof(buf));
	assert_string_equal(buf, "STATUS=evil\\nMAINPID=1\\x1b[2J");
	assert_int_equal(creto_notify_watchdog(n, &e), CRETO_OK);
	recv_msg(rfd, buf, sizeof(buf));
	assert_string_equal(buf, "WATCHDOG=1");
	assert_int_equal(creto_notify_stopping(n, &e), CRETO_OK);
	recv_msg(rfd, buf, sizeof(buf));
	assert_string_equal(buf, "STOPPING=1");
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	assert_int_equal(creto_notify_reloading(n, &e), CRETO_OK);
	clock_gettime(CLOCK_MONOTONIC, &b);
	recv_msg(rfd, buf, sizeof(buf));
	unsigned long long us = 0;
	assert_int_equal(sscanf(buf, "RELOADING=1\nMONOTONIC_USEC=%llu", &us), 1);
	assert_true(us >= (unsigned long long)a.tv_sec * 1000000ULL + (unsigned long long)a.tv_nsec / 1000);
	assert_true(us <= (unsigned long long)b.tv_sec * 1000000ULL + (unsigned long long)b.tv_nsec / 1000);
	assert_int_equal(creto_notify_send(n, "EXTEND_TIMEOUT_USEC=5000000\nSTATUS=x\n", &e),
			 CRETO_OK);
	recv_msg(rfd, buf, sizeof(buf));
	assert_string_equal(buf, "EXTEND_TIMEOUT_USEC=5000000\nSTATUS=x\n");
	/* malformed messages are refused, nothing sent */
	assert_int_equal(creto_notify_send(n, "", &e), CRETO_EUSAGE);
	assert_int_equal(creto_notify_send(n, "READY", &e), CRETO_EUSAGE);
	assert_int_equal(creto_notify_send(n, "=1", &e), CRETO_EUSAGE);
	assert_int_equal(creto_notify_send(n, "READY=1\n\nX=1", &e), CRETO_EUSAGE);
	assert_int_equal(creto_notify_send(n, "STATUS=a\tb", &e), CRETO_EUSAGE);
	char big[CRETO_NOTIFY_MSG_MAX + 16];
	memset(big, 'a', sizeof(big) - 1);
	big[0] = 'X';
	big[1] = '=';
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(creto_notify_send(n, big, &e), CRETO_EUSAGE);
	struct pollfd p = {.fd = rfd, .events = POLLIN};
	assert_int_equal(poll(&p, 1, 0), 0);
}

static void test_notify_path(void **state)
{
	(void)state;
	char sock[600];
	path_in(sock, sizeof(sock), "notify.sock");
	int rfd = bind_dgram(sock);
	creto_notify *n = NULL;
	creto_err e;
	assert_int_equal(creto_notify_open(sock, &n, &e), CRETO_OK);
	assert_non_null(n);
	check_messages(rfd, n);
	/* the manager re-binds its socket (systemd daemon-reexec): the next
	 * message reconnects and arrives */
	close(rfd);
	rfd = bind_dgram(sock);
	assert_int_equal(creto_notify_watchdog(n, &e), CRETO_OK);
	char buf[64];
	recv_msg(rfd, buf, sizeof(buf));
	assert_string_equal(buf, "WATCHDOG=1");
	/* the manager gone for good: an operational error naming the socket */
	close(rfd);
	unlink(sock);
	assert_int_equal(creto_notify_watchdog(n, &e), CRETO_EOP);
	assert_non_null(strstr(e.msg, "notify.sock"));
	creto_notify_close(n);
}

static void test_notify_abstract(void **state)
{
	(void)state;
	char name[64];
	snprintf(name, sizeof(name), "@creto-test-notify-%ld", (long)getpid());
	int rfd = bind_dgram(name);
	creto_notify *n = NULL;
	creto_err e;
	assert_int_equal(creto_notify_open(name, &n, &e), CRETO_OK);
	check_messages(rfd, n);
	creto_notify_close(n);
	close(rfd);
}

static void test_notify_open_errors(void **state)
{
	(void)state;
	creto_notify *n = (creto_notify *)1;
	creto_err e;
	/* no NOTIFY_SOCKET: a NULL handle and every call a no-op */
	assert_int_equal(creto_notify_open(NULL, &n, &e), CRETO_OK);
	assert_null(n);
	assert_int_equal(creto_notify_open("", &n, &e), CRETO_OK);
	assert_null(n);
	assert_int_equal(creto_notify_ready(NULL, "x", &e), CRETO_OK);
	assert_int_equal(creto_notify_watchdog(NULL, &e), CRETO_OK);
	assert_int_equal(creto_notify_reloading(NULL, &e), CRETO_OK);
	assert_int_equal(creto_notify_send(NULL, "garbage", &e), CRETO_OK);
	creto_notify_close(NULL);
	assert_int_equal(creto_notify_open("relative.sock", &n, &e), CRETO_EUSAGE);
	assert_non_null(strstr(e.msg, "relative.sock"));
	assert_int_equal(creto_notify_open("@", &n, &e), CRETO_EUSAGE);
	assert_int_equal(creto_notify_open("vsock:2:1234", &n, &e), CRETO_EUSAGE);
	char longp[200];
	memset(longp, 'a', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = '\0';
	assert_int_equal(creto_notify_open(longp, &n, &e), CRETO_EUSAGE);
	assert_non_null(strstr(e.msg, "longer than"));
	char missing[600];
	path_in(missing, sizeof(missing), "no-manager.sock");
	assert_int_equal(creto_notify_open(missing, &n, &e), CRETO_EOP);
	assert_null(n);
}

static void test_watchdog_env(void **state)
{
	(void)state;
	creto_err e;
	uint64_t us = 99;
	assert_int_equal(creto_notify_watchdog_usec(NULL, NULL, 10, &us, &e), CRETO_OK);
	assert_int_equal(us, 0);
	assert_int_equal(creto_notify_watchdog_usec("30000000", NULL, 10, &us, &e), CRETO_OK);
	assert_int_equal(us, 30000000);
	assert_int_equal(creto_notify_watchdog_usec("30000000", "10", 10, &us, &e), CRETO_OK);
	assert_int_equal(us, 30000000);
	/* inherited from a parent: not ours */
	assert_int_equal(creto_notify_watchdog_usec("30000000", "11", 10, &us, &e), CRETO_OK);
	assert_int_equal(us, 0);
	assert_int_equal(creto_notify_watchdog_usec("9223372036854775807", "", 10, &us, &e),
			 CRETO_OK);
	assert_int_equal(us, 9223372036854775807ULL);
	const char *bad[] = {"0", "-5", "+5", " 5", "5s", "9223372036854775808",
			     "99999999999999999999999", "0x10"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		us = 99;
		assert_int_equal(creto_notify_watchdog_usec(bad[i], NULL, 10, &us, &e), CRETO_EUSAGE);
		assert_int_equal(us, 0);
		assert_non_null(strstr(e.msg, "WATCHDOG_USEC"));
	}
	assert_int_equal(creto_notify_watchdog_usec("5", "abc", 10, &us, &e), CRETO_EUSAGE);
	assert_int_equal(creto_notify_watchdog_usec("5", "2147483648", 10, &us, &e), CRETO_EUSAGE);
	assert_non_null(strstr(e.msg, "WATCHDOG_PID"));
}

/* The notify socket, connected before the sandbox, works under it: Landlock
 * (ABI 6 scopes abstract sockets to the sandbox) and the seccomp filter. */
struct notify_arg {
	const char *name;
	int seccomp;
};

static void child_notify_sandboxed(void *arg)
{
	const struct notify_arg *a = arg;
	creto_err e;
	creto_notify *n = NULL;
	CHECK(creto_notify_open(a->name, &n, &e) == CRETO_OK);
	creto_sandbox *sb = creto_sandbox_new();
	creto_sandbox_opts o = {.seccomp = a->seccomp};
	apply_or_die(sb, &o, NULL);
	creto_sandbox_free(sb);
	CHECK(creto_notify_ready(n, "sandboxed", &e) == CRETO_OK);
	CHECK(creto_notify_watchdog(n, &e) == CRETO_OK);
	creto_notify_close(n);
	if (g_abi >= 6) {
		/* a fresh connection to the same abstract socket is refused */
		int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		size_t len = strlen(a->name);
		memcpy(sa.sun_path, a->name, len);
		sa.sun_path[0] = '\0';
		errno = 0;
		CHECK(connect(fd, (struct sockaddr *)&sa,
			      (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) != 0 &&
		      errno == EPERM);
		close(fd);
	}
}

static void test_notify_under_sandbox(void **state)
{
	(void)state;
	char name[64];
	snprintf(name, sizeof(name), "@creto-test-notify-sb-%ld", (long)getpid());
	int rfd = bind_dgram(name);
	struct notify_arg a = {name, creto_sandbox_sanitizer_build()
					     ? CRETO_SANDBOX_SECCOMP_OFF
					     : CRETO_SANDBOX_SECCOMP_KILL};
	assert_child_ok(in_child(child_notify_sandboxed, &a));
	char buf[128];
	recv_msg(rfd, buf, sizeof(buf));
	assert_string_equal(buf, "READY=1\nSTATUS=sandboxed");
	recv_msg(rfd, buf, sizeof(buf));
	assert_string_equal(buf, "WATCHDOG=1");
	close(rfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rule_errors),
		cmocka_unit_test(test_landlock_rules),
		cmocka_unit_test(test_landlock_absent),
		cmocka_unit_test(test_seccomp_kills),
		cmocka_unit_test(test_seccomp_eperm),
		cmocka_unit_test(test_daemon_work),
		cmocka_unit_test(test_landlock_with_seccomp),
		cmocka_unit_test(test_user_switch),
		cmocka_unit_test(test_threads_refused),
		cmocka_unit_test(test_notify_path),
		cmocka_unit_test(test_notify_abstract),
		cmocka_unit_test(test_notify_open_errors),
		cmocka_unit_test(test_watchdog_env),
		cmocka_unit_test(test_notify_under_sandbox),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
