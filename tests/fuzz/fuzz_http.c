/* fuzz_http.c - the gateway's HTTP parsers on arbitrary bytes: request
 * heads (with small limits so every limit is reached), response heads, and
 * the chunked decoder fed in two pieces split where the first byte says.
 * Checks the invariants the server relies on: a complete head lies within
 * the input, a refusal names a status and a reason, the decoder never
 * produces more than it consumed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	char *buf = malloc(size);
	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	gw_http_limits lim = {256, 1024, 16, 1u << 20};
	gw_http_req r;
	int rc = gw_http_parse_request(buf, size, &lim, &r);
	if (rc == 0) {
		if (r.head_len == 0 || r.head_len > size || r.head_len > lim.head_max ||
		    r.target < buf || r.target + r.target_len > buf + r.head_len || r.target[0] != '/' ||
		    (r.content_length > 0 && (uint64_t)r.content_length > lim.body_max) ||
		    (r.auth && (r.auth < buf || r.auth + r.auth_len > buf + r.head_len)))
			abort();
	} else if (rc == GW_HTTP_AGAIN) {
		if (size > lim.head_max)
			abort();
	} else if (rc < 400 || rc > 505 || r.reason == NULL) {
		abort();
	}
	gw_http_resp s;
	rc = gw_http_parse_response(buf, size, 2048, &s);
	if (rc == 0 && (s.head_len > size || s.status < 100 || s.status > 599 ||
			(s.chunked && s.content_length >= 0)))
		abort();
	/* chunked body: split at a point chosen by the input */
	memcpy(buf, data, size);
	size_t cut = data[0] % size;
	gw_chunked d;
	memset(&d, 0, sizeof(d));
	size_t out1 = 0, used1 = 0, out2 = 0, used2 = 0;
	if (gw_chunked_decode(&d, buf, cut, &out1, &used1) == 0) {
		if (out1 > used1 || used1 > cut)
			abort();
		if (!d.done && used1 != cut)
			abort();
		if (!d.done && gw_chunked_decode(&d, buf + cut, size - cut, &out2, &used2) == 0 &&
		    (out2 > used2 || used2 > size - cut))
			abort();
	}
	free(buf);
	return 0;
}
