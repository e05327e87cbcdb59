/*
 * tmpdir.h - a private directory for a unit test, under the build tree
 * ($CRETO_BUILD_DIR/test-tmp, else /tmp), and its removal.  Header-only,
 * shared by the unit tests that write files.
 */
#ifndef CRETO_TESTS_TMPDIR_H
#define CRETO_TESTS_TMPDIR_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

/* A fresh directory named name.XXXXXX into dir (cap bytes); 0 or -1. */
static int tmpdir_make(char *dir, size_t cap, const char *name)
{
	const char *b = getenv("CRETO_BUILD_DIR");
	char base[400];
	if (b != NULL) {
		snprintf(base, sizeof(base), "%s/test-tmp", b);
		mkdir(base, 0700);
	} else {
		snprintf(base, sizeof(base), "/tmp");
	}
	if ((size_t)snprintf(dir, cap, "%s/%s.XXXXXX", base, name) >= cap)
		return -1;
	return mkdtemp(dir) != NULL ? 0 : -1;
}

/* Removes dir and everything in it (nothing when dir is ""); 0 or -1. */
static int tmpdir_remove(const char *dir)
{
	if (dir[0] == '\0')
		return 0;
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

#endif
