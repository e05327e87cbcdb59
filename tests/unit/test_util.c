/* test_util.c - unit tests for src/util: codecs, time, files, errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/enc.h"
#include "util/file.h"
#include "util/timeutil.h"

static void test_hex(void **state)
{
	(void)state;
	uint8_t in[] = {0x00, 0x01, 0xab, 0xff};
	char out[9];
	creto_hex_encode(out, in, sizeof(in));
	assert_string_equal(out, "0001abff");
	uint8_t back[4];
	size_t n = 0;
	assert_int_equal(creto_hex_decode(back, sizeof(back), &n, "0001ABff", 8), 0);
	assert_int_equal(n, 4);
	assert_memory_equal(back, in, 4);
	assert_int_equal(creto_hex_decode(back, sizeof(back), &n, "0g", 2), -1);
	assert_int_equal(creto_hex_decode(back, sizeof(back), &n, "012", 3), -1);
	assert_int_equal(creto_hex_decode(back, 1, &n, "0102", 4), -1);
}

/* RFC 4648 §10 test vectors, both alphabets. */
static void test_b64_rfc4648(void **state)
{
	(void)state;
	static const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
	static const char *std[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
	static const char *url[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
	for (size_t i = 0; i < 7; i++) {
		char out[16];
		uint8_t dec[16];
		size_t n = 0, pl = strlen(plain[i]);
		creto_b64_encode(out, (const uint8_t *)plain[i], pl, 0);
		assert_string_equal(out, std[i]);
		assert_int_equal(creto_b64_enclen(pl, 0), strlen(std[i]));
		creto_b64_encode(out, (const uint8_t *)plain[i], pl, 1);
		assert_string_equal(out, url[i]);
		assert_int_equal(creto_b64_enclen(pl, 1), strlen(url[i]));
		assert_int_equal(creto_b64_decode(dec, sizeof(dec), &n, std[i], strlen(std[i]), 0), 0);
		assert_int_equal(n, pl);
		assert_memory_equal(dec, plain[i], pl);
		assert_int_equal(creto_b64_decode(dec, sizeof(dec), &n, url[i], strlen(url[i]), 1), 0);
		assert_int_equal(n, pl);
		assert_memory_equal(dec, plain[i], pl);
	}
}

static void test_b64_alphabet_and_strictness(void **state)
{
	(void)state;
	uint8_t all[48];
	for (size_t i = 0; i < sizeof(all); i++)
		all[i] = (uint8_t)(i * 4 + 3) ^ 0xf0; /* every 6-bit value appears */
	char s[80], u[80];
	uint8_t d[64];
	size_t n;
	creto_b64_encode(s, all, sizeof(all), 0);
	creto_b64_encode(u, all, sizeof(all), 1);
	assert_int_equal(creto_b64_decode(d, sizeof(d), &n, s, strlen(s), 0), 0);
	assert_memory_equal(d, all, sizeof(all));
	assert_int_equal(creto_b64_decode(d, sizeof(d), &n, u, strlen(u), 1), 0);
	assert_memory_equal(d, all, sizeof(all));
	/* Each alphabet refuses the other's specials, whitespace, bad padding. */
	assert_int_equal(creto_b64_decode(d, sizeof(d), &n, "ab+/", 4, 1), -1);
	assert_int_equal(creto_b64_decode(d, sizeof(d), &n, "ab-_", 4, 0), -1);
	assert_int_equal(creto_b64_decode(d, sizeof(d), &n, "Zm9", 3, 0), -1);
	assert_int_equal(creto_b64_decode(d, sizeof(d), &n, "Zm9v\n", 5, 0), -1);
	assert_int_equal(creto_b64_decode(d, sizeof(d), &n, "Zg=", 3, 0), -1);
	assert_int_equal(creto_b64_decode(d, sizeof(d), &n, "Z", 1, 1), -1);
	/* Non-canonical trailing bits. */
	assert_int_equal(creto_b64_decode(d, sizeof(d), &n, "Zh==", 4, 0), -1);
	assert_int_equal(creto_b64_decode(d, sizeof(d), &n, "Zh", 2, 1), -1);
	/* Output capacity is honoured. */
	assert_int_equal(creto_b64_decode(d, 2, &n, "Zm9v", 4, 0), -1);
}

static void test_time(void **state)
{
	(void)state;
	int64_t t;
	assert_int_equal(creto_time_parse("1970-01-01T00:00:00Z", &t), 0);
	assert_int_equal(t, 0);
	assert_int_equal(creto_time_parse("2026-11-29T21:43:28Z", &t), 0);
	assert_int_equal(t, 1795988608);
	char s[CRETO_TIME_STRLEN];
	creto_time_format(t, s);
	assert_string_equal(s, "2026-11-29T21:43:28Z");
	assert_int_equal(creto_time_parse("2024-02-29", &t), 0);
	assert_int_equal(creto_time_parse("2023-02-29", &t), -1);
	assert_int_equal(creto_time_parse("2026-13-01", &t), -1);
	assert_int_equal(creto_time_parse("2026-11-29T24:00:00Z", &t), -1);
	assert_int_equal(creto_time_parse("2026-11-29T21:43:28+01:00", &t), -1);
	assert_int_equal(creto_time_parse("2026-11-29 ", &t), -1);
	int64_t d;
	assert_int_equal(creto_duration_parse("1h", &d), 0);
	assert_int_equal(d, 3600);
	assert_int_equal(creto_duration_parse("30", &d), 0);
	assert_int_equal(d, 30);
	assert_int_equal(creto_duration_parse("7d", &d), 0);
	assert_int_equal(d, 604800);
	assert_int_equal(creto_duration_parse("-1s", &d), -1);
	assert_int_equal(creto_duration_parse("1w", &d), -1);
	assert_int_equal(creto_duration_parse("", &d), -1);
}

static void test_files(void **state)
{
	(void)state;
	char dir[] = "/tmp/creto-test-util.XXXXXX";
	assert_non_null(mkdtemp(dir));
	char p[256], l[256];
	snprintf(p, sizeof(p), "%s/a.txt", dir);
	snprintf(l, sizeof(l), "%s/link", dir);
	creto_err e;
	assert_int_equal(creto_file_write_excl(p, "hello", 5, 0600, &e), CRETO_OK);
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(creto_file_write_excl(p, "x", 1, 0600, &e), CRETO_EUSAGE);
	assert_non_null(strstr(e.msg, "already exists"));
	uint8_t *buf;
	size_t n;
	assert_int_equal(creto_file_read(p, 5, &buf, &n, &e), CRETO_OK);
	assert_int_equal(n, 5);
	assert_string_equal((char *)buf, "hello");
	free(buf);
	assert_int_equal(creto_file_read(p, 4, &buf, &n, &e), CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "larger than 4 bytes"));
	assert_int_equal(creto_file_write_atomic(p, "replaced", 8, 0644, &e), CRETO_OK);
	assert_int_equal(creto_file_read(p, 100, &buf, &n, &e), CRETO_OK);
	assert_string_equal((char *)buf, "replaced");
	free(buf);
	assert_int_equal(symlink(p, l), 0);
	assert_int_equal(creto_file_read(l, 100, &buf, &n, &e), CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "symbolic link"));
	/* the _follow variant (operator configuration) takes the link's target */
	assert_int_equal(creto_file_read_follow(l, 100, &buf, &n, &e), CRETO_OK);
	assert_string_equal((char *)buf, "replaced");
	free(buf);
	assert_int_equal(creto_file_read_follow(l, 4, &buf, &n, &e), CRETO_EREJECT);
	/* a FIFO is refused at once, never waited on */
	char f[256];
	snprintf(f, sizeof(f), "%s/fifo", dir);
	assert_int_equal(mkfifo(f, 0600), 0);
	assert_int_equal(creto_file_read(f, 100, &buf, &n, &e), CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "not a regular file"));
	assert_int_equal(creto_file_read_follow(f, 100, &buf, &n, &e), CRETO_EREJECT);
	unlink(f);
	assert_int_equal(creto_file_read(dir, 100, &buf, &n, &e), CRETO_EREJECT);
	assert_int_equal(creto_file_write_excl(l, "x", 1, 0600, &e), CRETO_EUSAGE);
	snprintf(l, sizeof(l), "%s/missing", dir);
	assert_int_equal(creto_file_read(l, 100, &buf, &n, &e), CRETO_EOP);
	snprintf(l, sizeof(l), "%s/x/y/z", dir);
	assert_int_equal(creto_mkdir_p(l, 0700, &e), CRETO_OK);
	assert_int_equal(stat(l, &st), 0);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

static void test_err_context(void **state)
{
	(void)state;
	creto_err e;
	creto_err_clear(&e);
	assert_int_equal(creto_err_set(&e, CRETO_EREJECT, "bad signature"), CRETO_EREJECT);
	assert_int_equal(creto_err_ctx(&e, "signature %d", 2), CRETO_EREJECT);
	assert_int_equal(creto_err_ctx(&e, "statement"), CRETO_EREJECT);
	assert_string_equal(e.msg, "statement: signature 2: bad signature");
	assert_int_equal(creto_err_set(&e, CRETO_EUSAGE, "two\nlines"), CRETO_EUSAGE);
	assert_string_equal(e.msg, "two lines");
	/* control bytes from untrusted input are escaped, UTF-8 kept */
	assert_int_equal(creto_err_set(&e, CRETO_EREJECT, "kid '%s'", "a\x1b[31mb\x07\tc\x7f\xc3\xa9"),
			 CRETO_EREJECT);
	assert_string_equal(e.msg, "kid 'a\\x1b[31mb\\x07 c\\x7f\xc3\xa9'");
	assert_int_equal(creto_err_ctx(&e, "token"), CRETO_EREJECT);
	assert_string_equal(e.msg, "token: kid 'a\\x1b[31mb\\x07 c\\x7f\xc3\xa9'");
	assert_int_equal(creto_err_set(NULL, CRETO_EOP, "x"), CRETO_EOP);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hex),
		cmocka_unit_test(test_b64_rfc4648),
		cmocka_unit_test(test_b64_alphabet_and_strictness),
		cmocka_unit_test(test_time),
		cmocka_unit_test(test_files),
		cmocka_unit_test(test_err_context),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
