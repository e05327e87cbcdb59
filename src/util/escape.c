/* escape.c - reversible escaping of untrusted bytes (see escape.h). */
#include "util/escape.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

size_t creto_utf8_len(const unsigned char *p, size_t n, uint32_t *cp_out)
{
	unsigned c = p[0];
	if (c < 0x80) {
		if (cp_out != NULL)
			*cp_out = c;
		return 1;
	}
	size_t need;
	uint32_t cp, min;
	if (c >= 0xc2 && c <= 0xdf) {
		need = 2, cp = c & 0x1f, min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		need = 3, cp = c & 0x0f, min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 4, cp = c & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (n < need)
		return 0;
	for (size_t i = 1; i < need; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	if (cp_out != NULL)
		*cp_out = cp;
	return need;
}

static const char hexdig[] = "0123456789abcdef";

static size_t escape_impl(char *out, size_t outsz, const void *in, size_t len, int keep_backslash);

size_t creto_escape(char *out, size_t outsz, const void *in, size_t len)
{
	return escape_impl(out, outsz, in, len, 0);
}

size_t creto_escape_line(char *out, size_t outsz, const char *in)
{
	return escape_impl(out, outsz, in, strlen(in), 1);
}

static size_t escape_impl(char *out, size_t outsz, const void *in, size_t len, int keep_backslash)
{
	const unsigned char *p = in;
	size_t need = 0, o = 0;
	int full = 0; /* set once out ran out of room: later escapes are only counted */
	for (size_t i = 0; i < len;) {
		char tmp[16];
		size_t t = 0, adv = 1;
		unsigned c = p[i];
		size_t u = creto_utf8_len(p + i, len - i, NULL);
		if (c == '\\' && keep_backslash) {
			tmp[t++] = '\\';
		} else if (c == '\\') {
			tmp[t++] = '\\', tmp[t++] = '\\';
		} else if (c == '\n') {
			tmp[t++] = '\\', tmp[t++] = 'n';
		} else if (c == '\r') {
			tmp[t++] = '\\', tmp[t++] = 'r';
		} else if (c == '\t') {
			tmp[t++] = '\\', tmp[t++] = 't';
		} else if (c < 0x20 || c == 0x7f || u == 0 ||
			   (u == 2 && c == 0xc2 && p[i + 1] < 0xa0)) {
			/* control, DEL, a byte of an invalid sequence, or a C1
			 * control (both of its bytes). */
			size_t nb = (u == 2 && c == 0xc2 && p[i + 1] < 0xa0) ? 2 : 1;
			for (size_t k = 0; k < nb; k++) {
				unsigned b = p[i + k];
				tmp[t++] = '\\', tmp[t++] = 'x';
				tmp[t++] = hexdig[b >> 4], tmp[t++] = hexdig[b & 15];
			}
			adv = nb;
		} else {
			memcpy(tmp, p + i, u);
			t = u;
			adv = u;
		}
		need += t;
		if (!full && outsz > 0 && o + t < outsz) {
			memcpy(out + o, tmp, t);
			o += t;
		} else {
			full = 1;
		}
		i += adv;
	}
	if (outsz > 0)
		out[o] = '\0';
	return need;
}

char *creto_escape_dup(const void *in, size_t len)
{
	size_t need = creto_escape(NULL, 0, in, len);
	char *s = malloc(need + 1);
	if (s == NULL)
		return NULL;
	(void)creto_escape(s, need + 1, in, len);
	return s;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int creto_unescape(void *out, size_t outsz, const char *in, size_t *outlen)
{
	unsigned char *o = out;
	size_t n = 0;
	for (const char *s = in; *s;) {
		unsigned char b;
		if (*s != '\\') {
			b = (unsigned char)*s++;
		} else {
			char k = s[1];
			if (k == '\\')
				b = '\\', s += 2;
			else if (k == 'n')
				b = '\n', s += 2;
			else if (k == 'r')
				b = '\r', s += 2;
			else if (k == 't')
				b = '\t', s += 2;
			else if (k == 'x' && s[2] != '\0' && s[3] != '\0') {
				int hi = hexval(s[2]), lo = hexval(s[3]);
				if (hi < 0 || lo < 0)
					return -1;
				b = (unsigned char)(hi << 4 | lo);
				s += 4;
			} else {
				return -1;
			}
		}
		if (n >= outsz)
			return -1;
		o[n++] = b;
	}
	*outlen = n;
	return 0;
}
