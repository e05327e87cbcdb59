/* test_jsonscan.c - unit tests for src/util/jsonscan.c: values, escapes,
 * UTF-8, numbers, duplicates, limits, and the reasons of each refusal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "util/jsonscan.h"

static creto_json_object o;

static int scan(const char *s)
{
	creto_err e;
	return creto_json_object_scan("t", s, strlen(s), &o, &e);
}

/* Refused, with a reason containing want. */
static void refused(const char *s, const char *want)
{
	creto_err e;
	assert_int_equal(creto_json_object_scan("t", s, strlen(s), &o, &e), CRETO_EREJECT);
	if (strstr(e.msg, want) == NULL)
		fail_msg("'%s': reason '%s' lacks '%s'", s, e.msg, want);
	assert_int_equal(o.n, 0);
}

static void test_values(void **state)
{
	(void)state;
	assert_int_equal(scan(" {\"s\" : \"x\", \"i\":-42,\"r\":1.5e3,\"t\":true,\"f\":false,"
			      "\"z\":null,\"o\":{\"a\":[1,{}]},\"a\":[\"p\", \"q\"]}\n"),
			 CRETO_OK);
	assert_int_equal(o.n, 8);
	static const creto_json_type types[] = {CRETO_JSON_STRING, CRETO_JSON_INTEGER,
						CRETO_JSON_REAL,   CRETO_JSON_TRUE,
						CRETO_JSON_FALSE,  CRETO_JSON_NULL,
						CRETO_JSON_OBJECT, CRETO_JSON_ARRAY};
	static const char *const names[] = {"s", "i", "r", "t", "f", "z", "o", "a"};
	for (size_t k = 0; k < 8; k++) {
		const creto_json_value *v = creto_json_get(&o, names[k]);
		assert_non_null(v);
		assert_int_equal(v->type, types[k]);
	}
	assert_null(creto_json_get(&o, "missing"));
	char buf[16];
	size_t n = 0;
	assert_int_equal(creto_json_string(creto_json_get(&o, "s"), buf, sizeof(buf), &n), 0);
	assert_string_equal(buf, "x");
	assert_int_equal(creto_json_string(creto_json_get(&o, "i"), buf, sizeof(buf), &n), -1);
	int64_t i = 0;
	assert_int_equal(creto_json_int64(creto_json_get(&o, "i"), &i), 0);
	assert_int_equal(i, -42);
	assert_int_equal(creto_json_int64(creto_json_get(&o, "r"), &i), -1);
	const creto_json_value *o2 = creto_json_get(&o, "o");
	assert_int_equal(o2->n, strlen("{\"a\":[1,{}]}"));
	/* array elements in order, then the end */
	const creto_json_value *a = creto_json_get(&o, "a");
	size_t pos = 0;
	creto_json_value el;
	assert_int_equal(creto_json_array_next(a, &pos, &el), 1);
	assert_int_equal(creto_json_string(&el, buf, sizeof(buf), NULL), 0);
	assert_string_equal(buf, "p");
	assert_int_equal(creto_json_array_next(a, &pos, &el), 1);
	assert_int_equal(creto_json_string(&el, buf, sizeof(buf), NULL), 0);
	assert_string_equal(buf, "q");
	assert_int_equal(creto_json_array_next(a, &pos, &el), 0);
	assert_int_equal(creto_json_array_next(creto_json_get(&o, "s"), &pos, &el), 0);
	assert_int_equal(scan("{}"), CRETO_OK);
	assert_int_equal(o.n, 0);
	assert_int_equal(scan("{\"e\":[]}"), CRETO_OK);
	pos = 0;
	assert_int_equal(creto_json_array_next(creto_json_get(&o, "e"), &pos, &el), 0);
}

static void test_strings(void **state)
{
	(void)state;
	char buf[64];
	size_t n = 0;
	assert_int_equal(scan("{\"\\u0061\\n\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\u20AC\\ud83d\\ude00\"}"),
			 CRETO_OK);
	assert_non_null(creto_json_get(&o, "a\n")); /* names are decoded */
	assert_int_equal(creto_json_string(&o.m[0].v, buf, sizeof(buf), &n), 0);
	assert_string_equal(buf, "\"\\/\b\f\n\r\t\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
	assert_int_equal(n, 17);
	/* a buffer too small: refused, and the length needed */
	assert_int_equal(scan("{\"k\":\"0123456789\"}"), CRETO_OK);
	assert_int_equal(creto_json_string(&o.m[0].v, buf, 10, &n), -1);
	assert_int_equal(n, 10);
	assert_int_equal(creto_json_string(&o.m[0].v, buf, 11, &n), 0);
	assert_string_equal(buf, "0123456789");
	/* escapes shrink: a long text that decodes short fits a short buffer */
	assert_int_equal(scan("{\"k\":\"\\u0041\\u0042\"}"), CRETO_OK);
	assert_int_equal(creto_json_string(&o.m[0].v, buf, 3, &n), 0);
	assert_string_equal(buf, "AB");
	/* UTF-8 as is */
	assert_int_equal(scan("{\"k\":\"\xc3\xa9\xef\xbf\xbf\xf4\x8f\xbf\xbf\"}"), CRETO_OK);
	refused("{\"k\":\"\\u0000\"}", "\\u0000");
	refused("{\"k\":\"\\ud800\"}", "lone UTF-16 high surrogate");
	refused("{\"k\":\"\\udc00\"}", "lone UTF-16 low surrogate");
	refused("{\"k\":\"\\ud800\\u0041\"}", "invalid UTF-16 surrogate pair");
	refused("{\"k\":\"\\u12g4\"}", "bad \\u escape");
	refused("{\"k\":\"\\x\"}", "bad escape");
	refused("{\"k\":\"a\tb\"}", "control character");
	refused("{\"k\":\"abc}", "unterminated string");
	refused("{\"k\":\"\xc0\xaf\"}", "invalid UTF-8");     /* overlong '/' */
	refused("{\"k\":\"\xe0\x80\xaf\"}", "invalid UTF-8"); /* overlong */
	refused("{\"k\":\"\xed\xa0\x80\"}", "invalid UTF-8"); /* surrogate */
	refused("{\"k\":\"\xf4\x90\x80\x80\"}", "invalid UTF-8"); /* > U+10FFFF */
	refused("{\"k\":\"\xc3\"}", "invalid UTF-8");         /* truncated */
	refused("{\"k\":\"\xff\"}", "invalid UTF-8");
}

static void test_numbers(void **state)
{
	(void)state;
	int64_t v = 0;
	assert_int_equal(scan("{\"a\":9223372036854775807,\"b\":-9223372036854775808,\"c\":-0,"
			      "\"d\":0.5,\"e\":1E-400,\"f\":2e+3}"),
			 CRETO_OK);
	assert_int_equal(creto_json_int64(creto_json_get(&o, "a"), &v), 0);
	assert_true(v == INT64_MAX);
	assert_int_equal(creto_json_int64(creto_json_get(&o, "b"), &v), 0);
	assert_true(v == INT64_MIN);
	assert_int_equal(creto_json_int64(creto_json_get(&o, "c"), &v), 0);
	assert_true(v == 0);
	assert_int_equal(creto_json_get(&o, "f")->type, CRETO_JSON_REAL);
	refused("{\"a\":9223372036854775808}", "integer out of range");
	refused("{\"a\":-9223372036854775809}", "integer out of range");
	refused("{\"a\":1e400}", "real number out of range");
	refused("{\"a\":01}", "',' or '}' expected");
	refused("{\"a\":1.}", "invalid number");
	refused("{\"a\":.5}", "invalid token");
	refused("{\"a\":-}", "invalid number");
	refused("{\"a\":1e}", "invalid number");
	refused("{\"a\":+1}", "invalid token");
	char big[400] = "{\"a\":1.";
	memset(big + 7, '0', 300);
	strcpy(big + 307, "}");
	refused(big, "over the limit");
}

static void test_structure(void **state)
{
	(void)state;
	refused("[1,2]", "not a JSON object");
	refused("\"x\"", "not a JSON object");
	refused("", "not a JSON object");
	refused("{\"a\":1} x", "data after the object");
	refused("{\"a\":1}{}", "data after the object");
	refused("{\"a\":1,}", "member name expected");
	refused("{\"a\" 1}", "':' expected");
	refused("{\"a\":1 \"b\":2}", "',' or '}' expected");
	refused("{\"a\":[1 2]}", "',' or ']' expected");
	refused("{\"a\":tru}", "invalid token");
	refused("{\"a\":nul", "invalid token");
	refused("{\"a\":", "value expected");
	refused("{'a':1}", "member name expected");
	refused("{\"a\":1}\x0b", "data after the object");
}

static void test_duplicates(void **state)
{
	(void)state;
	refused("{\"a\":1,\"a\":2}", "duplicate JSON key at byte 7");
	refused("{\"a\":1,\"\\u0061\":2}", "duplicate JSON key");
	refused("{\"\xc3\xa9\":1,\"\\u00e9\":2}", "duplicate JSON key");
	refused("{\"o\":{\"k\":1,\"k\":2}}", "duplicate JSON key");
	refused("{\"o\":[{\"k\":1,\"k\":2}]}", "duplicate JSON key");
	assert_int_equal(scan("{\"a\":1,\"A\":2,\"a \":3,\"o\":{\"a\":1},\"p\":{\"a\":1}}"), CRETO_OK);
}

static void test_limits(void **state)
{
	(void)state;
	char s[4096];
	size_t n = 0;
	/* 64 members fit, 65 do not */
	n += (size_t)snprintf(s + n, sizeof(s) - n, "{");
	for (int k = 0; k < 64; k++)
		n += (size_t)snprintf(s + n, sizeof(s) - n, "%s\"m%d\":%d", k ? "," : "", k, k);
	snprintf(s + n, sizeof(s) - n, "}");
	assert_int_equal(scan(s), CRETO_OK);
	assert_int_equal(o.n, 64);
	snprintf(s + n, sizeof(s) - n, ",\"m64\":1}");
	refused(s, "more than 64 members");
	/* nesting: 32 levels below the top fit */
	n = 0;
	n += (size_t)snprintf(s + n, sizeof(s) - n, "{\"d\":");
	for (int k = 0; k < 31; k++)
		s[n++] = '[';
	s[n++] = '1';
	for (int k = 0; k < 31; k++)
		s[n++] = ']';
	snprintf(s + n, sizeof(s) - n, "}");
	assert_int_equal(scan(s), CRETO_OK);
	n = 0;
	n += (size_t)snprintf(s + n, sizeof(s) - n, "{\"d\":");
	for (int k = 0; k < 32; k++)
		s[n++] = '[';
	s[n] = 0;
	refused(s, "nested deeper than 32");
	/* names: 255 bytes each, 1024 in total */
	char name[300];
	memset(name, 'n', 256);
	name[256] = 0;
	snprintf(s, sizeof(s), "{\"%s\":1}", name);
	refused(s, "member name longer than 255 bytes");
	name[255] = 0;
	snprintf(s, sizeof(s), "{\"%s\":1}", name);
	assert_int_equal(scan(s), CRETO_OK);
	n = 0;
	n += (size_t)snprintf(s + n, sizeof(s) - n, "{");
	for (int k = 0; k < 5; k++) {
		name[0] = (char)('a' + k);
		n += (size_t)snprintf(s + n, sizeof(s) - n, "%s\"%s\":1", k ? "," : "", name);
	}
	snprintf(s + n, sizeof(s) - n, "}");
	refused(s, "member names longer than 1024 bytes in total");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_values),     cmocka_unit_test(test_strings),
		cmocka_unit_test(test_numbers),    cmocka_unit_test(test_structure),
		cmocka_unit_test(test_duplicates), cmocka_unit_test(test_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
