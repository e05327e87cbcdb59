/*
 * fuzz_gateway_body.c - differential: the gateway's two readers of a
 * request body (src/gateway/body.c), the strict scanner and the jansson
 * fallback used beyond the scanner's limits.  On every input both must
 * agree whether the body is accepted and, when it is, on every member the
 * gateway acts on: the model (the scope check), the max_tokens key, value
 * and refusal, stream, stream_options and include_usage, and the prompt
 * (the same JSON value; the scanner keeps its text, jansson re-encodes it).
 * The first input byte picks the prompt member (messages, prompt, input).
 * With a raw NUL in the body only the scanner's refusal is checked
 * (jansson 2.14 lets one through after a lone "0", see fuzz_jsonscan.c).
 */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "gateway/body.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void reset(gw_body *b)
{
	memset(b, 0, sizeof(*b));
	b->mt = -1;
}

/* The two prompts are the same JSON value. */
static void same_prompt(const gw_body *a, const gw_body *b)
{
	if ((a->prompt == NULL) != (b->prompt == NULL))
		__builtin_trap();
	if (a->prompt == NULL)
		return;
	json_t *x = json_loadb(a->prompt, a->prompt_len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
	json_t *y = json_loadb(b->prompt, b->prompt_len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
	if (x == NULL || y == NULL || !json_equal(x, y))
		__builtin_trap();
	json_decref(x);
	json_decref(y);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const keys[] = {"messages", "prompt", "input"};
	if (size < 1)
		return 0;
	const char *key = keys[data[0] % 3];
	const char *body = (const char *)data + 1;
	size_t len = size - 1;
	gw_body s, j;
	char es[200], ej[200];
	reset(&s);
	reset(&j);
	int rs = gw_body_scan(body, len, key, &s, es, sizeof(es));
	int rj = gw_body_jansson(body, len, key, &j, ej, sizeof(ej));
	if (memchr(body, 0, len) != NULL) {
		if (rs == 0)
			__builtin_trap();
	} else if (rs != 2) {
		if (rs != rj)
			__builtin_trap();
		if (rs == 0) {
			if (s.model_ok != j.model_ok || (s.model_ok && strcmp(s.model, j.model) != 0))
				__builtin_trap();
			if (strcmp(s.mt_key, j.mt_key) != 0 || s.mt_bad != j.mt_bad || (!s.mt_bad && s.mt != j.mt))
				__builtin_trap();
			if (s.stream != j.stream || s.so_absent != j.so_absent || s.so_object != j.so_object ||
			    s.include_usage != j.include_usage)
				__builtin_trap();
			same_prompt(&s, &j);
		}
	}
	/* the reader the gateway calls: the scanner's answer, or jansson's
	 * beyond its limits */
	gw_body r;
	char er[200];
	int rr = gw_body_read(body, len, key, &r, er, sizeof(er));
	if (len > 0 && memchr(body, 0, len) == NULL && rr != (rs == 2 ? rj : rs))
		__builtin_trap();
	gw_body_clear(&r);
	gw_body_clear(&s);
	gw_body_clear(&j);
	return 0;
}
