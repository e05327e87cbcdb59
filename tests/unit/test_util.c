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
#include "util/escape.h"
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
	/* no line break survives, and nothing is lost: LF/CR/TAB become \n \r \t */
	assert_int_equal(creto_err_set(&e, CRETO_EUSAGE, "two\nlines\r\tx"), CRETO_EUSAGE);
	assert_string_equal(e.msg, "two\\nlines\\r\\tx");
	/* control bytes from untrusted input are escaped, UTF-8 kept */
	assert_int_equal(creto_err_set(&e, CRETO_EREJECT, "kid '%s'", "a\x1b[31mb\x07\tc\x7f\xc3\xa9"),
			 CRETO_EREJECT);
	assert_string_equal(e.msg, "kid 'a\\x1b[31mb\\x07\\tc\\x7f\xc3\xa9'");
	assert_int_equal(creto_err_ctx(&e, "token"), CRETO_EREJECT);
	assert_string_equal(e.msg, "token: kid 'a\\x1b[31mb\\x07\\tc\\x7f\xc3\xa9'");
	/* C1 (0x9b = CSI as C2 9B, and raw) and invalid UTF-8 never pass */
	assert_int_equal(creto_err_set(&e, CRETO_EREJECT, "n '%s'", "\xc2\x9b" "31m\x9b\xff\xc0\xaf"),
			 CRETO_EREJECT);
	assert_string_equal(e.msg, "n '\\xc2\\x9b31m\\x9b\\xff\\xc0\\xaf'");
	assert_int_equal(creto_err_set(NULL, CRETO_EOP, "x"), CRETO_EOP);
}

/* escape(in) == want, and unescape(want) == in. */
static void check_escape(const char *in, size_t len, const char *want)
{
	char out[512];
	size_t need = creto_escape(out, sizeof(out), in, len);
	assert_string_equal(out, want);
	assert_int_equal(need, strlen(want));
	uint8_t back[256];
	size_t blen = 0;
	assert_int_equal(creto_unescape(back, sizeof(back), out, &blen), 0);
	assert_int_equal(blen, len);
	assert_memory_equal(back, in, len);
	/* the escaped form is already one safe line: the last pass of
	 * creto_err (creto_escape_line) leaves it unchanged */
	char line[512];
	(void)creto_escape_line(line, sizeof(line), out);
	assert_string_equal(line, out);
}

static void test_escape(void **state)
{
	(void)state;
	check_escape("plain name.crupdate", 19, "plain name.crupdate");
	check_escape("a\\b", 3, "a\\\\b");
	/* a newline cannot forge a second decision line */
	check_escape("x.crupdate\napplied y 1", 22, "x.crupdate\\napplied y 1");
	check_escape("a\rb\tc", 5, "a\\rb\\tc");
	/* escape sequences, NUL, DEL */
	check_escape("\x1b[2J\x1b]0;t\x07", 10, "\\x1b[2J\\x1b]0;t\\x07");
	check_escape("a\0b\x7f", 4, "a\\x00b\\x7f");
	/* 0x9B alone (invalid UTF-8) and as the C1 control U+009B (C2 9B) */
	check_escape("\x9b" "31m", 4, "\\x9b31m");
	check_escape("\xc2\x9b" "31m", 5, "\\xc2\\x9b31m");
	check_escape("\xc2\x80\xc2\x9f", 4, "\\xc2\\x80\\xc2\\x9f");
	/* U+00A0 and above are text */
	check_escape("\xc2\xa0\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 11,
		     "\xc2\xa0\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
	/* invalid UTF-8: stray continuation, truncated, bad lead bytes */
	check_escape("\x80", 1, "\\x80");
	check_escape("\xe2\x82", 2, "\\xe2\\x82");
	check_escape("\xff\xfe", 2, "\\xff\\xfe");
	check_escape("\xf5\x80\x80\x80", 4, "\\xf5\\x80\\x80\\x80");
	/* overlong forms: '/' as C0 AF and E0 80 AF, NUL as C0 80 */
	check_escape("\xc0\xaf", 2, "\\xc0\\xaf");
	check_escape("\xe0\x80\xaf", 3, "\\xe0\\x80\\xaf");
	check_escape("\xc0\x80", 2, "\\xc0\\x80");
	/* surrogates (U+D800, U+DFFF) and beyond U+10FFFF */
	check_escape("\xed\xa0\x80", 3, "\\xed\\xa0\\x80");
	check_escape("\xed\xbf\xbf", 3, "\\xed\\xbf\\xbf");
	check_escape("\xf4\x90\x80\x80", 4, "\\xf4\\x90\\x80\\x80");
	/* a text that looks escaped is escaped again, so it decodes to itself */
	check_escape("\\n\\x41", 6, "\\\\n\\\\x41");

	/* round trip of every byte value, in every position */
	uint8_t all[256];
	for (int i = 0; i < 256; i++)
		all[i] = (uint8_t)i;
	char *esc = creto_escape_dup(all, sizeof(all));
	assert_non_null(esc);
	for (const char *p = esc; *p; p++)
		assert_true((unsigned char)*p >= 0x20 && (unsigned char)*p != 0x7f);
	uint8_t back[256];
	size_t blen = 0;
	assert_int_equal(creto_unescape(back, sizeof(back), esc, &blen), 0);
	assert_int_equal(blen, sizeof(all));
	assert_memory_equal(back, all, sizeof(all));
	free(esc);

	/* a short buffer cuts at a whole escape and reports the full length */
	char small[6];
	assert_int_equal(creto_escape(small, sizeof(small), "ab\ncd", 5), 6);
	assert_string_equal(small, "ab\\nc");
	assert_int_equal(creto_escape(small, sizeof(small), "abcd\n", 5), 6);
	assert_string_equal(small, "abcd");

	/* malformed escapes and a too small output are refused */
	assert_int_equal(creto_unescape(back, sizeof(back), "a\\q", &blen), -1);
	assert_int_equal(creto_unescape(back, sizeof(back), "a\\x4", &blen), -1);
	assert_int_equal(creto_unescape(back, sizeof(back), "a\\xg0", &blen), -1);
	assert_int_equal(creto_unescape(back, sizeof(back), "a\\", &blen), -1);
	assert_int_equal(creto_unescape(back, 2, "abc", &blen), -1);
}

/* creto_err: untrusted parts escaped where inserted stay reversible through
 * any number of context layers (no double escaping). */
static void test_err_escaped_parts(void **state)
{
	(void)state;
	const char name[] = "evil\\name\napplied x 9\x9b";
	char esc[128];
	(void)creto_escape(esc, sizeof(esc), name, sizeof(name) - 1);
	creto_err e;
	creto_err_clear(&e);
	(void)creto_err_set(&e, CRETO_EREJECT, "%s: container: not a regular file", esc);
	(void)creto_err_ctx(&e, "drop");
	(void)creto_err_ctx(&e, "watch");
	char want[256];
	snprintf(want, sizeof(want), "watch: drop: %s: container: not a regular file", esc);
	assert_string_equal(e.msg, want);
	assert_null(strchr(e.msg, '\n'));
	/* the name decodes back from the message */
	const char *start = e.msg + strlen("watch: drop: ");
	char part[128];
	size_t plen = (size_t)(strstr(start, ": container") - start);
	memcpy(part, start, plen);
	part[plen] = '\0';
	char back[64];
	size_t blen = 0;
	assert_int_equal(creto_unescape(back, sizeof(back), part, &blen), 0);
	assert_int_equal(blen, sizeof(name) - 1);
	assert_memory_equal(back, name, blen);
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
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_err_escaped_parts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
