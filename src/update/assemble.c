/*
 * assemble.c - the two commands that handle a package outside the enclave's
 * decision path: `update assemble` (statement, signatures and payload into
 * one strict ustar, checking the payload as it is copied and, with --trust,
 * the signature threshold) and `update inspect` (what a package claims,
 * trusting nothing).  They share the container code with decide.c.
 */
#include "update_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/file.h"
#include "util/timeutil.h"

/* ---- assemble ---- */

/* assemble --trust: the signatures reach the threshold of the statement's
 * role in the root the enclave will use. */
static int assemble_check(const char *trust_path, const upd_statement *s, const uint8_t *stm,
			  size_t stl, const upd_sig *sigs, size_t nsigs, creto_err *e)
{
	creto_trust_root *r = NULL;
	int rc = upd_load_effective_root(trust_path, NULL, NULL, &r, NULL, e);
	if (rc != CRETO_OK)
		return rc;
	char kids[CRETO_UPDATE_SIGS_MAX * 17 + 1];
	rc = upd_check_threshold(r, s->type, CRETO_STATEMENT_CTX, stm, stl, sigs, nsigs, kids, sizeof kids,
				 NULL, e);
	if (rc == CRETO_OK && creto_trust_root_expires(r) <= s->created) {
		char t[CRETO_TIME_STRLEN];
		creto_time_format(creto_trust_root_expires(r), t);
		rc = creto_err_set(e, CRETO_EREJECT, "expired: trust root version %lld expires at %s, "
				   "before this statement was created", (long long)creto_trust_root_version(r), t);
	}
	creto_trust_root_free(r);
	if (rc != CRETO_OK)
		creto_err_ctx(e, "update assemble: checked against %s", trust_path);
	return rc;
}

int creto_update_assemble(const char *statement_path, const char *sigs_path, const char *payload,
			  const char *out_path, const creto_update_assemble_opts *ao, creto_err *e)
{
	creto_update_assemble_opts dflt = {NULL, 0};
	if (ao == NULL)
		ao = &dflt;
	uint8_t *stm = NULL, *sig = NULL;
	size_t stl = 0, sgl = 0;
	upd_statement s;
	int have = 0, fd = -1, in = -1;
	upd_stream *strm = NULL;
	upd_sig *sigs = NULL;
	size_t nsigs = 0;
	char tmp[4200] = "";
	int rc = creto_file_read(statement_path, CRETO_STATEMENT_MAX, &stm, &stl, e);
	if (rc != CRETO_OK)
		goto out;
	if ((rc = upd_statement_parse(stm, stl, &s, NULL, e)) != CRETO_OK) {
		creto_err_ctx(e, "%s", statement_path);
		goto out;
	}
	have = 1;
	if ((rc = creto_file_read(sigs_path, CRETO_SIGS_MAX, &sig, &sgl, e)) != CRETO_OK)
		goto out;
	if ((rc = upd_parse_sigs_doc(sig, sgl, &sigs, &nsigs, e)) != CRETO_OK) {
		creto_err_ctx(e, "%s", sigs_path);
		goto out;
	}
	if (ao->trust_path != NULL &&
	    (rc = assemble_check(ao->trust_path, &s, stm, stl, sigs, nsigs, e)) != CRETO_OK)
		goto out;
	struct stat pb;
	if (!ao->force && lstat(out_path, &pb) == 0) {
		rc = creto_err_set(e, CRETO_EUSAGE, "%s: already exists (--force replaces it)", out_path);
		goto out;
	}
	if (stat(payload, &pb) != 0) {
		rc = creto_err_errno(e, errno, "payload %s", payload);
		goto out;
	}
	int single = S_ISREG(pb.st_mode);
	if (single) {
		const char *base = strrchr(payload, '/');
		base = base ? base + 1 : payload;
		if (s.nfiles != 1 || strcmp(s.files[0].path, base) != 0) {
			rc = creto_err_set(e, CRETO_EUSAGE, "assemble: payload file %s is not the statement's payload", payload);
			goto out;
		}
	}
	snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", out_path);
	fd = mkstemp(tmp);
	if (fd >= 0 && fchmod(fd, 0644) != 0) {
		close(fd);
		fd = -1;
	}
	if (fd < 0) {
		rc = creto_err_errno(e, errno, "create %s", tmp);
		tmp[0] = 0;
		goto out;
	}
	if ((rc = upd_tar_write_hdr(fd, UPD_STMT_MEMBER, stl, s.created, e)) != CRETO_OK)
		goto out;
	if (creto_write_all(fd, stm, stl) != 0) {
		rc = creto_err_errno(e, errno, "write %s", tmp);
		goto out;
	}
	if ((rc = upd_tar_write_pad(fd, stl, e)) != CRETO_OK ||
	    (rc = upd_tar_write_hdr(fd, UPD_SIGS_MEMBER, sgl, s.created, e)) != CRETO_OK)
		goto out;
	if (creto_write_all(fd, sig, sgl) != 0) {
		rc = creto_err_errno(e, errno, "write %s", tmp);
		goto out;
	}
	if ((rc = upd_tar_write_pad(fd, sgl, e)) != CRETO_OK ||
	    (rc = upd_stream_new(s.shard_size, &strm, e)) != CRETO_OK)
		goto out;
	for (size_t i = 0; i < s.nfiles; i++) {
		char src[4600], name[CRETO_UPDATE_PATH_MAX + 16];
		if (single)
			snprintf(src, sizeof src, "%s", payload);
		else
			snprintf(src, sizeof src, "%s/%s", payload, s.files[i].path);
		in = open(src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		struct stat sb;
		if (in < 0 || fstat(in, &sb) != 0) {
			rc = creto_err_errno(e, errno, "payload %s", src);
			goto out;
		}
		if (!S_ISREG(sb.st_mode) || (uint64_t)sb.st_size != s.files[i].size) {
			rc = creto_err_set(e, CRETO_EREJECT, "digest: payload file %s differs from the statement (size)", src);
			goto out;
		}
		snprintf(name, sizeof name, UPD_PAYLOAD_PREFIX "%s", s.files[i].path);
		if ((rc = upd_tar_write_hdr(fd, name, s.files[i].size, s.created, e)) != CRETO_OK ||
		    (rc = upd_stream_file(strm, &s.files[i], in, fd, NULL, e)) != CRETO_OK ||
		    (rc = upd_stream_flush(strm, e)) != CRETO_OK ||
		    (rc = upd_tar_write_pad(fd, s.files[i].size, e)) != CRETO_OK)
			goto out;
		close(in);
		in = -1;
	}
	if ((rc = upd_stream_finish(strm, NULL, e)) != CRETO_OK) {
		creto_err_ctx(e, "assemble");
		goto out;
	}
	if ((rc = upd_tar_write_end(fd, e)) != CRETO_OK)
		goto out;
	if (fsync(fd) != 0 || close(fd) != 0) {
		fd = -1;
		rc = creto_err_errno(e, errno, "write %s", tmp);
		goto out;
	}
	fd = -1;
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, out_path, ao->force ? 0 : RENAME_NOREPLACE) != 0) {
		rc = errno == EEXIST ? creto_err_set(e, CRETO_EUSAGE, "%s: already exists (--force replaces it)", out_path)
				     : creto_err_errno(e, errno, "rename %s", out_path);
		goto out;
	}
	tmp[0] = 0;
	rc = creto_file_sync_dir(out_path, 0, e);
out:
	if (in >= 0)
		close(in);
	if (fd >= 0)
		close(fd);
	if (tmp[0])
		unlink(tmp);
	upd_stream_free(strm);
	upd_sigs_free(sigs, nsigs);
	if (have)
		upd_statement_free(&s);
	free(stm);
	free(sig);
	return rc;
}

/* ---- inspect ---- */

int creto_update_inspect(const char *pkg, char **out, creto_err *e)
{
	*out = NULL;
	uint8_t *stm = NULL, *sig = NULL;
	size_t stl = 0, sgl = 0;
	upd_sig *sigs = NULL;
	size_t nsigs = 0;
	json_t *o = json_object(), *js = NULL, *members = json_array();
	int fd = -1;
	int rc = creto_update_open(pkg, &fd, e);
	if (rc != CRETO_OK)
		goto out;
	if ((rc = upd_read_member(fd, UPD_STMT_MEMBER, CRETO_STATEMENT_MAX, &stm, &stl, NULL, e)) != CRETO_OK ||
	    (rc = upd_read_member(fd, UPD_SIGS_MEMBER, CRETO_SIGS_MAX, &sig, &sgl, NULL, e)) != CRETO_OK ||
	    (rc = upd_json_parse(stm, stl, "statement", &js, e)) != CRETO_OK ||
	    (rc = upd_parse_sigs_doc(sig, sgl, &sigs, &nsigs, e)) != CRETO_OK)
		goto out;
	char dg[65];
	upd_sha3_hex(stm, stl, dg);
	json_object_set_new(o, "trusted", json_false());
	json_object_set_new(o, "statement_digest", json_string(dg));
	json_object_set_new(o, "statement_bytes", json_integer((json_int_t)stl));
	json_t *pl = json_object_get(js, "payload");
	size_t i;
	json_t *x;
	if (json_is_array(pl))
		json_array_foreach(pl, i, x) json_object_del(x, "shards");
	json_object_set(o, "statement", js);
	json_t *ks = json_array();
	for (i = 0; i < nsigs; i++)
		json_array_append_new(ks, json_string(sigs[i].keyid));
	json_object_set_new(o, "signed_by", ks);
	uint64_t total = 0;
	for (size_t n = 0; n <= CRETO_UPDATE_FILES_MAX; n++) {
		upd_tar_hdr h;
		int end;
		if ((rc = upd_tar_next(fd, &h, &end, NULL, e)) != CRETO_OK)
			goto out;
		if (end)
			break;
		json_t *m = json_object();
		json_object_set_new(m, "name", json_string(h.name));
		json_object_set_new(m, "size", json_integer((json_int_t)h.size));
		json_array_append_new(members, m);
		total += h.size;
		off_t skip = (off_t)((h.size + UPD_TAR_BLOCK - 1) / UPD_TAR_BLOCK * UPD_TAR_BLOCK);
		if (lseek(fd, skip, SEEK_CUR) < 0) {
			rc = creto_err_errno(e, errno, "seek");
			goto out;
		}
	}
	json_object_set(o, "members", members);
	json_object_set_new(o, "payload_bytes", json_integer((json_int_t)total));
	*out = json_dumps(o, JSON_INDENT(2));
	rc = *out ? CRETO_OK : creto_err_set(e, CRETO_EOP, "out of memory");
out:
	if (rc != CRETO_OK)
		creto_err_ctx(e, "%s", pkg);
	if (fd >= 0)
		close(fd);
	json_decref(js);
	json_decref(members);
	json_decref(o);
	upd_sigs_free(sigs, nsigs);
	free(stm);
	free(sig);
	return rc;
}
