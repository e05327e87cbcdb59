/* error.c - the creto_err convention (include/creto/error.h). */
#include "creto/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

#include "util/escape.h"

/* One printable line (util/escape.h, creto_escape_line): LF, CR and TAB
 * become \n \r \t; other control bytes, DEL, C1 controls and the bytes of
 * invalid UTF-8 become \xNN, so text from untrusted input (a token's kid, a
 * package's name) cannot forge a line, move the cursor or recolour a
 * terminal.  Backslashes are kept: the pass is idempotent, so the parts that
 * callers escaped reversibly with creto_escape where they inserted them are
 * never escaped twice, however many creto_err_ctx layers follow.  Truncates
 * at the buffer's end. */
static void sanitize(char *s)
{
	char out[CRETO_ERR_MSG_MAX];
	(void)creto_escape_line(out, sizeof(out), s);
	memcpy(s, out, strlen(out) + 1);
}

void creto_err_clear(creto_err *e)
{
	if (e == NULL)
		return;
	e->code = CRETO_OK;
	e->msg[0] = '\0';
}

CRETO_PRINTF(3, 0) static void vset(creto_err *e, int code, const char *fmt, va_list ap)
{
	e->code = code;
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	sanitize(e->msg);
}

int creto_err_set(creto_err *e, int code, const char *fmt, ...)
{
	if (e == NULL)
		return code;
	va_list ap;
	va_start(ap, fmt);
	vset(e, code, fmt, ap);
	va_end(ap);
	return code;
}

int creto_err_ctx(creto_err *e, const char *fmt, ...)
{
	if (e == NULL)
		return CRETO_EOP;
	if (e->code == CRETO_OK)
		e->code = CRETO_EOP;
	char prefix[CRETO_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	/* Build "<prefix>: <old>" keeping the start when it must be truncated. */
	char out[CRETO_ERR_MSG_MAX];
	size_t n = strnlen(prefix, sizeof(out) - 1);
	memcpy(out, prefix, n);
	size_t oldlen = strnlen(e->msg, sizeof(e->msg));
	if (oldlen > 0 && n + 2 < sizeof(out)) {
		out[n++] = ':';
		out[n++] = ' ';
		size_t room = sizeof(out) - 1 - n;
		size_t take = oldlen < room ? oldlen : room;
		memcpy(out + n, e->msg, take);
		n += take;
	}
	out[n] = '\0';
	memcpy(e->msg, out, n + 1);
	sanitize(e->msg);
	return e->code;
}

int creto_err_errno(creto_err *e, int errnum, const char *fmt, ...)
{
	if (e == NULL)
		return CRETO_EOP;
	char what[CRETO_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return creto_err_set(e, CRETO_EOP, "%.400s: %s", what, strerror(errnum));
}

int creto_err_openssl(creto_err *e, const char *fmt, ...)
{
	char what[CRETO_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	unsigned long code = ERR_get_error();
	char reason[256] = "unknown error";
	if (code != 0)
		ERR_error_string_n(code, reason, sizeof(reason));
	ERR_clear_error();
	return creto_err_set(e, CRETO_EOP, "%.300s: OpenSSL: %s", what, reason);
}

const char *creto_status_name(int code)
{
	switch (code) {
	case CRETO_OK: return "ok";
	case CRETO_EREJECT: return "rejected";
	case CRETO_EUSAGE: return "usage";
	case CRETO_EOP: return "operational";
	default: return "unknown";
	}
}
