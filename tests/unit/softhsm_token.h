/*
 * softhsm_token.h - what the SoftHSM2-backed unit tests share (test_hsm.c,
 * test_hsm_failover.c, test_hsm_hybrid.c, test_hsm_seal.c): a private temp
 * directory (tmpdir.h), a SoftHSM2
 * configuration of its own in it (SOFTHSM2_CONF points there, never at the
 * system's), PIN files, one initialised token, and removal at the end.
 * Include after cmocka.h.
 */
#ifndef CRETO_TESTS_SOFTHSM_TOKEN_H
#define CRETO_TESTS_SOFTHSM_TOKEN_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "creto/hsm.h"
#include "tmpdir.h"

#define SOFTHSM "/usr/lib/softhsm/libsofthsm2.so"

/* Writes text to path, mode 0600 (PIN files are secrets). */
static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	chmod(path, 0600);
}

/* A SoftHSM2 token in a fresh directory.  dir receives the directory, pin
 * and so the paths of the user and SO PIN files (holding user_pin and
 * so_pin); the token is initialised with label.  0, or -1 with the reason
 * on stderr. */
struct softhsm_token {
	char dir[512];
	char pin[600];
	char so[600];
};

static int softhsm_token_make(struct softhsm_token *t, const char *name, const char *label,
			      const char *user_pin, const char *so_pin)
{
	char p[600], conf[1200];
	if (tmpdir_make(t->dir, sizeof(t->dir), name) != 0)
		return -1;
	snprintf(p, sizeof(p), "%s/tokens", t->dir);
	mkdir(p, 0700);
	snprintf(conf, sizeof(conf),
		 "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n"
		 "slots.removable = false\n",
		 p);
	snprintf(p, sizeof(p), "%s/softhsm2.conf", t->dir);
	write_file(p, conf);
	setenv("SOFTHSM2_CONF", p, 1);
	char line[128];
	snprintf(t->pin, sizeof(t->pin), "%s/user.pin", t->dir);
	snprintf(t->so, sizeof(t->so), "%s/so.pin", t->dir);
	snprintf(line, sizeof(line), "%s\n", user_pin);
	write_file(t->pin, line);
	snprintf(line, sizeof(line), "%s\n", so_pin);
	write_file(t->so, line);
	creto_err e;
	creto_err_clear(&e);
	if (creto_hsm_init_token(SOFTHSM, label, t->so, t->pin, &e) != CRETO_OK) {
		fprintf(stderr, "softhsm_token_make: %s\n", e.msg);
		return -1;
	}
	return 0;
}

/* Removes the token's directory (nothing when it was never made). */
static int softhsm_token_remove(struct softhsm_token *t)
{
	int rc = tmpdir_remove(t->dir);
	t->dir[0] = '\0';
	return rc;
}

#endif
