/*
 * fuzz_jsonscan.c - differential: src/util/jsonscan.c against jansson
 * (json_loadb with JSON_REJECT_DUPLICATES, the parser it replaces on the
 * token path).  On every input both must agree whether it is one valid
 * JSON object, except where jsonscan refuses over one of its documented
 * limits; when both accept, every top-level member must have the same
 * name, type and (for strings, integers and arrays of them) value.
 * A raw NUL byte is never valid JSON; jansson 2.14 lets one through after a
 * lone "0" ({"":0<NUL>} loads), so with one in the input only our refusal
 * is checked.
 */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "util/jsonscan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static creto_json_type kind(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return CRETO_JSON_OBJECT;
	case JSON_ARRAY: return CRETO_JSON_ARRAY;
	case JSON_STRING: return CRETO_JSON_STRING;
	case JSON_INTEGER: return CRETO_JSON_INTEGER;
	case JSON_REAL: return CRETO_JSON_REAL;
	case JSON_TRUE: return CRETO_JSON_TRUE;
	case JSON_FALSE: return CRETO_JSON_FALSE;
	case JSON_NULL: break;
	}
	return CRETO_JSON_NULL;
}

/* Same scalar value (strings, integers); other types: same type only. */
static void same(const creto_json_value *v, const json_t *j)
{
	static char buf[8192];
	if (v->type != kind(j))
		__builtin_trap();
	if (v->type == CRETO_JSON_STRING && json_string_length(j) < sizeof(buf)) {
		size_t n = 0;
		if (creto_json_string(v, buf, sizeof(buf), &n) != 0 || n != json_string_length(j) ||
		    memcmp(buf, json_string_value(j), n) != 0 || buf[n] != 0)
			__builtin_trap();
	} else if (v->type == CRETO_JSON_INTEGER) {
		int64_t x = 0;
		if (creto_json_int64(v, &x) != 0 || x != (int64_t)json_integer_value(j))
			__builtin_trap();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	creto_json_object o;
	creto_err e;
	int ours = creto_json_object_scan("fuzz", (const char *)data, size, &o, &e) == CRETO_OK;
	json_error_t je;
	json_t *j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &je);
	int theirs = j != NULL && json_is_object(j);
	if (memchr(data, 0, size) != NULL) {
		if (ours)
			__builtin_trap();
		json_decref(j);
		return 0;
	}
	if (ours != theirs && !(theirs && strstr(e.msg, "over the limit") != NULL))
		__builtin_trap();
	if (ours && theirs) {
		if (o.n != json_object_size(j))
			__builtin_trap();
		for (size_t k = 0; k < o.n; k++) {
			char name[300];
			size_t nl = o.m[k].name_len;
			memcpy(name, o.names + o.m[k].name_off, nl);
			name[nl] = 0;
			const json_t *jv = json_object_get(j, name);
			if (jv == NULL || creto_json_get(&o, name) != &o.m[k].v)
				__builtin_trap();
			same(&o.m[k].v, jv);
			if (o.m[k].v.type == CRETO_JSON_ARRAY) {
				size_t pos = 0, i = 0;
				creto_json_value el;
				while (creto_json_array_next(&o.m[k].v, &pos, &el)) {
					if (i >= json_array_size(jv))
						__builtin_trap();
					same(&el, json_array_get(jv, i++));
				}
				if (i != json_array_size(jv))
					__builtin_trap();
			}
		}
	}
	json_decref(j);
	return 0;
}
