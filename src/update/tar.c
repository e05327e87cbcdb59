/*
 * tar.c - the strict, bounded POSIX ustar subset a .crupdate is made of
 * (docs/crupdate.md "Container"): regular files only, checked header
 * checksums, octal fields without tricks, the end-of-archive marker followed
 * by nothing but the zero padding of one record.  No libarchive: this reader
 * refuses everything it does not need.
 */
#include "update_int.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "util/file.h"

static int octal(const char *f, size_t n, uint64_t *out)
{
	/* Digits, then NUL or space terminators only; at least one digit. */
	uint64_t v = 0;
	size_t i = 0, digits = 0;
	while (i < n && f[i] == ' ')
		i++;
	for (; i < n && f[i] >= '0' && f[i] <= '7'; i++, digits++) {
		if (v >> 60)
			return -1;
		v = v * 8 + (uint64_t)(f[i] - '0');
	}
	if (digits == 0)
		return -1;
	for (; i < n; i++)
		if (f[i] != 0 && f[i] != ' ')
			return -1;
	*out = v;
	return 0;
}

static int all_zero(const uint8_t *b, size_t n)
{
	uint8_t acc = 0;
	for (size_t i = 0; i < n; i++)
		acc |= b[i];
	return acc == 0;
}

static const char *type_name(char t)
{
	switch (t) {
	case '1': return "a hard link";
	case '2': return "a symbolic link";
	case '3': return "a character device";
	case '4': return "a block device";
	case '5': return "a directory";
	case '6': return "a FIFO";
	case 'x': case 'g': return "a pax extended header";
	case 'L': case 'K': return "a GNU long-name header";
	default: return "not a regular file";
	}
}

int upd_tar_next(int fd, upd_tar_hdr *h, int *end, creto_update_rule *rule, creto_err *e)
{
	uint8_t b[UPD_TAR_BLOCK];
	*end = 0;
	memset(h, 0, sizeof *h);
	ssize_t got = creto_read_full(fd, b, sizeof b);
	if (got < 0)
		return creto_err_errno(e, errno, "read");
	if (got != UPD_TAR_BLOCK)
		return upd_reject(e, rule, CRETO_RULE_TRUNCATED, "truncated: package ends inside a tar header");
	if (all_zero(b, sizeof b)) {
		got = creto_read_full(fd, b, sizeof b);
		if (got < 0)
			return creto_err_errno(e, errno, "read");
		if (got != UPD_TAR_BLOCK)
			return upd_reject(e, rule, CRETO_RULE_TRUNCATED, "truncated: end-of-archive marker is one block");
		if (!all_zero(b, sizeof b))
			return upd_reject(e, rule, CRETO_RULE_CONTAINER, "container: zero block followed by data");
		*end = 1;
		return CRETO_OK;
	}
	uint64_t want, sum = 0;
	if (octal((const char *)b + 148, 8, &want) != 0)
		return upd_reject(e, rule, CRETO_RULE_CONTAINER, "container: malformed header checksum field");
	for (size_t i = 0; i < sizeof b; i++)
		sum += (i >= 148 && i < 156) ? (uint64_t)' ' : b[i];
	if (sum != want)
		return upd_reject(e, rule, CRETO_RULE_CONTAINER, "container: header checksum mismatch");
	if (memcmp(b + 257, "ustar\0" "00", 8) != 0)
		return upd_reject(e, rule, CRETO_RULE_CONTAINER, "container: not a POSIX ustar header");
	char name[101], prefix[156];
	memcpy(name, b, 100);
	name[100] = 0;
	memcpy(prefix, b + 345, 155);
	prefix[155] = 0;
	if (prefix[0])
		snprintf(h->name, sizeof h->name, "%s/%s", prefix, name);
	else
		snprintf(h->name, sizeof h->name, "%s", name);
	for (char *c = h->name; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
			*c = '?';
	h->type = (char)b[156];
	if (h->type != '0')
		return upd_reject(e, rule, CRETO_RULE_MEMBER_TYPE, "member type: %.120s is %s, only regular files are allowed",
				     h->name, type_name(h->type));
	if (!all_zero(b + 157, 100))
		return upd_reject(e, rule, CRETO_RULE_MEMBER_TYPE, "member type: %.120s carries a link name", h->name);
	if (octal((const char *)b + 124, 12, &h->size) != 0)
		return upd_reject(e, rule, CRETO_RULE_CONTAINER, "container: %.120s: malformed size field", h->name);
	uint64_t dummy;
	if (octal((const char *)b + 100, 8, &dummy) != 0 || octal((const char *)b + 136, 12, &dummy) != 0)
		return upd_reject(e, rule, CRETO_RULE_CONTAINER, "container: %.120s: malformed mode or mtime", h->name);
	return CRETO_OK;
}

int upd_tar_skip_pad(int fd, uint64_t size, creto_update_rule *rule, creto_err *e)
{
	size_t pad = (size_t)((UPD_TAR_BLOCK - size % UPD_TAR_BLOCK) % UPD_TAR_BLOCK);
	if (pad == 0)
		return CRETO_OK;
	uint8_t b[UPD_TAR_BLOCK];
	ssize_t got = creto_read_full(fd, b, pad);
	if (got < 0)
		return creto_err_errno(e, errno, "read");
	if ((size_t)got != pad)
		return upd_reject(e, rule, CRETO_RULE_TRUNCATED, "truncated: package ends inside member padding");
	if (!all_zero(b, pad))
		return upd_reject(e, rule, CRETO_RULE_CONTAINER, "container: non-zero member padding");
	return CRETO_OK;
}

int upd_tar_expect_eof(int fd, creto_update_rule *rule, creto_err *e)
{
	uint8_t b[UPD_TAR_RECORD + 1];
	ssize_t got = creto_read_full(fd, b, sizeof b);
	if (got < 0)
		return creto_err_errno(e, errno, "read");
	if ((size_t)got > UPD_TAR_RECORD - 2 * UPD_TAR_BLOCK || !all_zero(b, (size_t)got) ||
	    got % UPD_TAR_BLOCK != 0)
		return upd_reject(e, rule, CRETO_RULE_TRAILING_DATA, "trailing data: bytes after the end-of-archive marker");
	return CRETO_OK;
}

long upd_tar_name_split(const char *name)
{
	size_t nl = strlen(name);
	if (nl == 0)
		return -1;
	if (nl <= 100)
		return 0;
	long cut = -1;
	for (const char *c = name + 1; *c; c++) {
		size_t at = (size_t)(c - name);
		if (*c == '/' && at <= 155 && nl - at - 1 <= 100 && nl - at - 1 >= 1)
			cut = (long)at;
	}
	return cut;
}

int upd_tar_write_hdr(int fd, const char *name, uint64_t size, int64_t mtime, creto_err *e)
{
	uint8_t b[UPD_TAR_BLOCK];
	memset(b, 0, sizeof b);
	size_t nl = strlen(name);
	const char *n = name;
	long cut = upd_tar_name_split(name);
	if (cut < 0)
		return creto_err_set(e, CRETO_EUSAGE, "container: name %s does not fit a ustar header", name);
	if (cut > 0) {
		memcpy(b + 345, name, (size_t)cut);
		n = name + cut + 1;
		nl = strlen(n);
	}
	memcpy(b, n, nl);
	if (size > CRETO_FILE_SIZE_MAX)
		return creto_err_set(e, CRETO_EUSAGE, "container: %s larger than 8 GiB - 1", name);
	snprintf((char *)b + 100, 8, "%07o", 0644);
	snprintf((char *)b + 108, 8, "%07o", 0);
	snprintf((char *)b + 116, 8, "%07o", 0);
	snprintf((char *)b + 124, 12, "%011llo", (unsigned long long)size);
	snprintf((char *)b + 136, 12, "%011llo", (unsigned long long)(mtime < 0 ? 0 : mtime) & 077777777777ULL);
	b[156] = '0';
	memcpy(b + 257, "ustar\0" "00", 8);
	memcpy(b + 265, "root", 4);
	memcpy(b + 297, "root", 4);
	memset(b + 148, ' ', 8);
	unsigned sum = 0;
	for (size_t i = 0; i < sizeof b; i++)
		sum += b[i];
	snprintf((char *)b + 148, 8, "%06o", sum);
	b[155] = ' ';
	if (creto_write_all(fd, b, sizeof b) != 0)
		return creto_err_errno(e, errno, "write");
	return CRETO_OK;
}

int upd_tar_write_pad(int fd, uint64_t size, creto_err *e)
{
	static const uint8_t z[UPD_TAR_BLOCK];
	size_t pad = (size_t)((UPD_TAR_BLOCK - size % UPD_TAR_BLOCK) % UPD_TAR_BLOCK);
	if (pad && creto_write_all(fd, z, pad) != 0)
		return creto_err_errno(e, errno, "write");
	return CRETO_OK;
}

int upd_tar_write_end(int fd, creto_err *e)
{
	static const uint8_t z[2 * UPD_TAR_BLOCK];
	if (creto_write_all(fd, z, sizeof z) != 0)
		return creto_err_errno(e, errno, "write");
	return CRETO_OK;
}
