/* fuzz_container.c - the strict ustar reader (src/update/tar.c) over
 * arbitrary bytes: headers, member padding and the end-of-archive rules,
 * as the verifier walks them. */
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "update/update_int.h"
#include "util/file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = memfd_create("fuzz", MFD_CLOEXEC);
	if (fd < 0)
		return 0;
	if (creto_write_all(fd, data, size) != 0 || lseek(fd, 0, SEEK_SET) != 0) {
		close(fd);
		return 0;
	}
	creto_err e;
	uint8_t buf[4096];
	for (int i = 0; i < 64; i++) {
		upd_tar_hdr h;
		int end;
		if (upd_tar_next(fd, &h, &end, NULL, &e) != CRETO_OK)
			break;
		if (end) {
			(void)!upd_tar_expect_eof(fd, NULL, &e);
			break;
		}
		/* Bounded as the verifier bounds members: never more than we have. */
		uint64_t left = h.size > size ? size : h.size;
		while (left > 0) {
			ssize_t got = creto_read_full(fd, buf, left < sizeof buf ? (size_t)left : sizeof buf);
			if (got <= 0)
				break;
			left -= (uint64_t)got;
		}
		if (h.size > size || upd_tar_skip_pad(fd, h.size, NULL, &e) != CRETO_OK)
			break;
	}
	close(fd);
	return 0;
}
