/*
 * sandbox_probe.c - a stand-in for `creto serve`'s start-up, built only with
 * the tests and driven by tests/integration/test_sandbox.sh: it opens what
 * the daemon opens first (a loopback listening socket, the notify socket,
 * the HSM signer through the PKCS#11 module, the SQLite state database),
 * applies the sandbox the daemon will apply (src/serve/sandbox.h), then does
 * the daemon's work and prints one line per step on stdout:
 *     ok STEP            the step worked
 *     denied STEP ERRNO  a step that must fail failed with that errno
 *     FAIL STEP: why     anything else (exit 1)
 * With --forbid NAME it finally makes a forbidden syscall and prints
 * "alive after NAME" if it survives (exit 0 in EPERM mode, never in KILL).
 *
 * sandbox_probe --conf DIR --state DIR --outside DIR --hsm-dir DIR
 *   --module SO --key URI [--user U] [--seccomp kill|eperm|off]
 *   [--notify ADDR] [--forbid ptrace|mount|unshare|execve|fork]
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "creto/keys.h"
#include "creto/sig.h"
#include "serve/notify.h"
#include "serve/sandbox.h"

static int g_fail;

static void step(const char *name, int ok, const char *why)
{
	if (ok) {
		printf("ok %s\n", name);
	} else {
		printf("FAIL %s: %s\n", name, why ? why : strerror(errno));
		g_fail = 1;
	}
	fflush(stdout);
}

static void denied(const char *name, int rc)
{
	if (rc < 0)
		printf("denied %s %s\n", name, strerrorname_np(errno) ? strerrorname_np(errno) : "?");
	else {
		printf("FAIL %s: allowed\n", name);
		g_fail = 1;
	}
	fflush(stdout);
}

static int hsm_sign(creto_signer *s, creto_err *e)
{
	static const uint8_t msg[] = "checkpoint 42";
	uint8_t *sig = NULL;
	size_t siglen = 0;
	int rc = creto_signer_sign(s, (const uint8_t *)"probe", 5, msg, sizeof(msg), &sig, &siglen, e);
	if (rc == CRETO_OK)
		rc = creto_pubkey_verify(creto_signer_pubkey(s), (const uint8_t *)"probe", 5, msg,
					 sizeof(msg), sig, siglen, e);
	free(sig);
	return rc;
}

int main(int argc, char **argv)
{
	const char *conf = NULL, *state = NULL, *outside = NULL, *hsmdir = NULL, *module = NULL,
		   *key = NULL, *user = NULL, *notify = NULL, *forbid = NULL;
	int seccomp = CRETO_SANDBOX_SECCOMP_KILL;
	for (int i = 1; i + 1 < argc; i += 2) {
		const char *o = argv[i], *v = argv[i + 1];
		if (!strcmp(o, "--conf")) conf = v;
		else if (!strcmp(o, "--state")) state = v;
		else if (!strcmp(o, "--outside")) outside = v;
		else if (!strcmp(o, "--hsm-dir")) hsmdir = v;
		else if (!strcmp(o, "--module")) module = v;
		else if (!strcmp(o, "--key")) key = v;
		else if (!strcmp(o, "--user")) user = v;
		else if (!strcmp(o, "--notify")) notify = v;
		else if (!strcmp(o, "--forbid")) forbid = v;
		else if (!strcmp(o, "--seccomp"))
			seccomp = !strcmp(v, "off")     ? CRETO_SANDBOX_SECCOMP_OFF
				  : !strcmp(v, "eperm") ? CRETO_SANDBOX_SECCOMP_EPERM
							: CRETO_SANDBOX_SECCOMP_KILL;
		else {
			fprintf(stderr, "sandbox_probe: unknown option %s\n", o);
			return 2;
		}
	}
	if (!conf || !state || !outside || !hsmdir || !module || !key) {
		fprintf(stderr, "sandbox_probe: --conf --state --outside --hsm-dir --module --key\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	creto_err e;
	creto_err_clear(&e);

	/* ---- 1. open everything first ---- */
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 4) != 0 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &sl) != 0) {
		perror("listen");
		return 3;
	}
	creto_notify *nt = NULL;
	if (creto_notify_open(notify, &nt, &e) != CRETO_OK) {
		fprintf(stderr, "%s\n", e.msg);
		return 3;
	}
	creto_signer *signer = NULL;
	if (creto_keys_open_signer(key, NULL, &signer, &e) != CRETO_OK) {
		fprintf(stderr, "open signer: %s\n", e.msg);
		return 3;
	}
	char db[4096];
	snprintf(db, sizeof(db), "%s/state.db", state);
	sqlite3 *sq = NULL;
	if (sqlite3_open_v2(db, &sq, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK ||
	    sqlite3_exec(sq, "PRAGMA journal_mode=WAL; CREATE TABLE IF NOT EXISTS ev(n INTEGER)", NULL,
			 NULL, NULL) != SQLITE_OK) {
		fprintf(stderr, "sqlite: %s\n", sqlite3_errmsg(sq));
		return 3;
	}

	/* ---- 2. the sandbox ---- */
	creto_sandbox *sb = creto_sandbox_new();
	int rc = sb ? CRETO_OK : CRETO_EOP;
	if (rc == CRETO_OK)
		rc = creto_sandbox_allow_rw(sb, state, &e);
	if (rc == CRETO_OK)
		rc = creto_sandbox_allow_ro(sb, conf, &e);
	if (rc == CRETO_OK)
		rc = creto_sandbox_allow_ro(sb, hsmdir, &e);
	if (rc == CRETO_OK)
		rc = creto_sandbox_allow_ro(sb, module, &e);
	if (rc == CRETO_OK)
		rc = creto_sandbox_allow_base(sb, &e);
	creto_sandbox_opts so = {.user = user, .seccomp = seccomp};
	creto_sandbox_report rep;
	if (rc == CRETO_OK)
		rc = creto_sandbox_apply(sb, &so, &rep, &e);
	creto_sandbox_free(sb);
	if (rc != CRETO_OK) {
		fprintf(stderr, "sandbox: %s\n", e.msg);
		creto_signer_free(signer);
		sqlite3_close(sq);
		creto_notify_close(nt);
		close(lfd);
		return rc;
	}
	for (size_t i = 0; i < rep.nwarn; i++)
		printf("warning %s\n", rep.warn[i]);
	printf("sandbox uid=%u gid=%u landlock_abi=%d landlock=%d rules=%zu seccomp=%d\n",
	       (unsigned)rep.uid, (unsigned)rep.gid, rep.landlock_abi, rep.landlock_enforced,
	       rep.landlock_rules, rep.seccomp_installed);

	/* ---- 3. the daemon's work ---- */
	char p[4200];
	snprintf(p, sizeof(p), "%s/creto.conf", conf);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	char buf[256];
	step("read-config", fd >= 0 && read(fd, buf, sizeof(buf)) > 0, NULL);
	if (fd >= 0)
		close(fd);
	snprintf(p, sizeof(p), "%s/written-by-probe", state);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	step("write-state", fd >= 0 && write(fd, "x\n", 2) == 2 && fsync(fd) == 0, NULL);
	if (fd >= 0)
		close(fd);
	step("sqlite-write",
	     sqlite3_exec(sq, "BEGIN; INSERT INTO ev VALUES(1); COMMIT;", NULL, NULL, NULL) ==
		     SQLITE_OK,
	     sqlite3_errmsg(sq));
	sqlite3 *sq2 = NULL;
	int ok;
	snprintf(p, sizeof(p), "%s/second.db", state);
	ok = sqlite3_open_v2(p, &sq2, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) ==
		     SQLITE_OK &&
	     sqlite3_exec(sq2, "CREATE TABLE IF NOT EXISTS t(x); INSERT INTO t VALUES(1)", NULL,
			  NULL, NULL) == SQLITE_OK;
	step("sqlite-open-after", ok, sqlite3_errmsg(sq2));
	sqlite3_close(sq2);
	sqlite3_close(sq);

	int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ok = c >= 0 && connect(c, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	int a = ok ? accept4(lfd, NULL, NULL, SOCK_CLOEXEC) : -1;
	ok = a >= 0 && send(c, "hi", 2, MSG_NOSIGNAL) == 2 && recv(a, buf, 2, MSG_WAITALL) == 2;
	step("tcp-loopback", ok, NULL);
	if (c >= 0)
		close(c);
	if (a >= 0)
		close(a);

	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	unsigned char sig[64];
	size_t siglen = sizeof(sig);
	step("openssl-sign",
	     k && m && EVP_DigestSignInit(m, NULL, NULL, NULL, k) == 1 &&
		     EVP_DigestSign(m, sig, &siglen, (const unsigned char *)"x", 1) == 1,
	     "EVP_DigestSign");
	EVP_MD_CTX_free(m);
	EVP_PKEY_free(k);

	creto_err_clear(&e);
	step("hsm-sign", hsm_sign(signer, &e) == CRETO_OK, e.msg);
	/* a new session and login after the sandbox (what a reconnect does) */
	creto_signer *s2 = NULL;
	creto_err_clear(&e);
	rc = creto_keys_open_signer(key, NULL, &s2, &e);
	if (rc == CRETO_OK)
		rc = hsm_sign(s2, &e);
	step("hsm-reopen-sign", rc == CRETO_OK, e.msg);
	creto_signer_free(s2);
	creto_signer_free(signer);

	creto_err_clear(&e);
	step("notify-ready", creto_notify_ready(nt, "probe sandboxed", &e) == CRETO_OK, e.msg);
	creto_notify_close(nt);

	/* must fail: outside every rule */
	snprintf(p, sizeof(p), "%s/escaped", outside);
	denied("write-outside", open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
	denied("read-etc-shadow", open("/etc/shadow", O_RDONLY | O_CLOEXEC));
	snprintf(p, sizeof(p), "%s/creto.conf", conf);
	denied("write-config", open(p, O_WRONLY | O_APPEND | O_CLOEXEC));

	if (forbid != NULL) {
		long r = 0;
		if (!strcmp(forbid, "ptrace"))
			r = ptrace(PTRACE_TRACEME, 0, NULL, NULL);
		else if (!strcmp(forbid, "mount"))
			r = mount("none", "/mnt", "tmpfs", 0, NULL);
		else if (!strcmp(forbid, "unshare"))
			r = unshare(CLONE_NEWUSER | CLONE_NEWNET);
		else if (!strcmp(forbid, "fork"))
			r = fork();
		else if (!strcmp(forbid, "execve"))
			r = execl("/bin/sh", "sh", "-c", "exit 0", (char *)NULL);
		printf("alive after %s: %ld %s\n", forbid, r, r < 0 ? strerrorname_np(errno) : "");
		if (r == 0 && !strcmp(forbid, "fork"))
			_exit(0);
	}
	close(lfd);
	return g_fail;
}
