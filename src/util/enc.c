/* enc.c - hex and base64 codecs, constant-time in the data (see enc.h). */
#include "util/enc.h"

#include <string.h>

static const char hexdig[] = "0123456789abcdef";

void creto_hex_encode(char *out, const uint8_t *in, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hexdig[in[i] >> 4];
		out[2 * i + 1] = hexdig[in[i] & 15];
	}
	out[2 * n] = '\0';
}

/* Returns the value of hex digit c, or -1; no data-dependent branches. */
static int hexval(unsigned char c)
{
	int d = c - '0', l = (c | 0x20) - 'a';
	int isd = ((d >= 0) & (d <= 9));
	int isl = ((l >= 0) & (l <= 5));
	return (-isd & d) | (-isl & (l + 10)) | ((isd | isl) - 1);
}

int creto_hex_decode(uint8_t *out, size_t outcap, size_t *outlen, const char *in, size_t inlen)
{
	if (inlen % 2 != 0 || inlen / 2 > outcap)
		return -1;
	int bad = 0;
	for (size_t i = 0; i < inlen / 2; i++) {
		int hi = hexval((unsigned char)in[2 * i]);
		int lo = hexval((unsigned char)in[2 * i + 1]);
		bad |= (hi | lo) & 0x100;
		out[i] = (uint8_t)(((hi & 15) << 4) | (lo & 15));
	}
	if (bad)
		return -1;
	*outlen = inlen / 2;
	return 0;
}

size_t creto_b64_enclen(size_t n, int url)
{
	if (!url)
		return (n + 2) / 3 * 4;
	return n / 3 * 4 + (n % 3 == 0 ? 0 : n % 3 + 1);
}

size_t creto_b64_declen_max(size_t inlen)
{
	return inlen / 4 * 3 + 3;
}

/* Constant-time 6-bit value -> base64 char. */
static char b64char(unsigned v, int url)
{
	int x = (int)v;
	int r = 'A' + x;
	r += (((25 - x) >> 8) & 6);                /* 26.. -> 'a'.. */
	r -= (((51 - x) >> 8) & 75);               /* 52.. -> '0'.. */
	r += (((61 - x) >> 8) & (url ? -13 : -15)); /* 62 -> '-' or '+' */
	r += (((62 - x) >> 8) & (url ? 49 : 3));   /* 63 -> '_' or '/' */
	return (char)r;
}

void creto_b64_encode(char *out, const uint8_t *in, size_t n, int url)
{
	size_t o = 0, i = 0;
	for (; i + 3 <= n; i += 3) {
		unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
		out[o++] = b64char(v >> 18, url);
		out[o++] = b64char((v >> 12) & 63, url);
		out[o++] = b64char((v >> 6) & 63, url);
		out[o++] = b64char(v & 63, url);
	}
	if (n - i == 1) {
		unsigned v = (unsigned)in[i] << 16;
		out[o++] = b64char(v >> 18, url);
		out[o++] = b64char((v >> 12) & 63, url);
		if (!url) {
			out[o++] = '=';
			out[o++] = '=';
		}
	} else if (n - i == 2) {
		unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
		out[o++] = b64char(v >> 18, url);
		out[o++] = b64char((v >> 12) & 63, url);
		out[o++] = b64char((v >> 6) & 63, url);
		if (!url)
			out[o++] = '=';
	}
	out[o] = '\0';
}

/* Constant-time base64 char -> value, or a negative number when invalid. */
static int b64val(unsigned char ch, int url)
{
	int c = ch, r = -1;
	r += (((('A' - 1) - c) & (c - ('Z' + 1))) >> 8) & (c - 'A' + 1);
	r += (((('a' - 1) - c) & (c - ('z' + 1))) >> 8) & (c - 'a' + 26 + 1);
	r += (((('0' - 1) - c) & (c - ('9' + 1))) >> 8) & (c - '0' + 52 + 1);
	int c62 = url ? '-' : '+', c63 = url ? '_' : '/';
	r += ((((c62 - 1) - c) & (c - (c62 + 1))) >> 8) & 63;
	r += ((((c63 - 1) - c) & (c - (c63 + 1))) >> 8) & 64;
	return r;
}

int creto_b64_decode(uint8_t *out, size_t outcap, size_t *outlen, const char *in, size_t inlen,
		     int url)
{
	size_t pad = 0;
	if (!url) {
		if (inlen % 4 != 0)
			return -1;
		if (inlen >= 1 && in[inlen - 1] == '=')
			pad++;
		if (inlen >= 2 && in[inlen - 2] == '=')
			pad++;
		inlen -= pad;
	} else if (inlen % 4 == 1) {
		return -1;
	}
	size_t need = inlen / 4 * 3 + (inlen % 4 ? inlen % 4 - 1 : 0);
	if (need > outcap)
		return -1;
	int bad = 0;
	size_t o = 0, i = 0;
	for (; i + 4 <= inlen; i += 4) {
		int a = b64val((unsigned char)in[i], url), b = b64val((unsigned char)in[i + 1], url);
		int c = b64val((unsigned char)in[i + 2], url), d = b64val((unsigned char)in[i + 3], url);
		bad |= (a | b | c | d) & ~63;
		unsigned v = (unsigned)(a & 63) << 18 | (unsigned)(b & 63) << 12 |
			     (unsigned)(c & 63) << 6 | (unsigned)(d & 63);
		out[o++] = (uint8_t)(v >> 16);
		out[o++] = (uint8_t)(v >> 8);
		out[o++] = (uint8_t)v;
	}
	size_t rem = inlen - i;
	if (rem == 2 || rem == 3) {
		int a = b64val((unsigned char)in[i], url), b = b64val((unsigned char)in[i + 1], url);
		int c = rem == 3 ? b64val((unsigned char)in[i + 2], url) : 0;
		bad |= (a | b | c) & ~63;
		unsigned v = (unsigned)(a & 63) << 18 | (unsigned)(b & 63) << 12 | (unsigned)(c & 63) << 6;
		out[o++] = (uint8_t)(v >> 16);
		if (rem == 3)
			out[o++] = (uint8_t)(v >> 8);
		/* Non-canonical: leftover bits must be zero. */
		bad |= (int)(rem == 2 ? (v & 0xffff) : (v & 0xff));
	} else if (rem != 0) {
		bad = 1;
	}
	if (bad)
		return -1;
	*outlen = o;
	return 0;
}
