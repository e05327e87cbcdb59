/*
 * cmd_audit.c - `creto audit ...`: create, append to, read, prove, verify,
 * export and archive the tamper-evident audit log (docs/audit.md).
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "creto/audit.h"
#include "creto/keys.h"
#include "creto/sig.h"
#include "util/enc.h"
#include "util/file.h"
#include "util/timeutil.h"

#define STDIN_MAX (64 * 1024)

static int a_init(int argc, char **argv);
static int a_append(int argc, char **argv);
static int a_show(int argc, char **argv);
static int a_tail(int argc, char **argv);
static int a_verify(int argc, char **argv);
static int a_prove(int argc, char **argv);
static int a_export(int argc, char **argv);
static int a_checkpoint(int argc, char **argv);
static int a_archive(int argc, char **argv);

static const struct cli_cmd AUDIT_CMDS[] = {
	{"init", a_init, "--dir D --origin NAME [--key K] [--module SO] [--pin-file F]",
	 "create an empty log (with --key: sign its first checkpoint)"},
	{"append", a_append,
	 "--dir D [--key K] [--module SO] [--pin-file F] [--budget BYTES] < EVENT.json",
	 "append one event (JSON on stdin), durable; with --key sign a checkpoint after it"},
	{"show", a_show, "--dir D [--since TIME] [--component C] [--json]",
	 "list entries (TIME: YYYY-MM-DD or YYYY-MM-DDThh:mm:ssZ)"},
	{"tail", a_tail, "--dir D [-n N] [-f] [--timeout SECONDS]",
	 "the last N entries; -f: keep printing new ones until SIGTERM/SIGINT or the timeout"},
	{"verify", a_verify, "(--dir D | --export FILE) --pub P [--checkpoint OLD] [--json]",
	 "recompute the tree, check every checkpoint, sequence and time; exit 1 on tampering"},
	{"prove", a_prove, "--dir D SEQ [--size N]",
	 "inclusion proof of entry SEQ (JSON), against the newest checkpoint covering it"},
	{"export", a_export, "--dir D -o FILE [--before N]",
	 "write entries and checkpoints as JSONL that `creto audit verify --export` checks"},
	{"checkpoint", a_checkpoint, "--dir D [--key K] [--module SO] [--pin-file F] [-o FILE]",
	 "the newest signed checkpoint (with --key: sign a new one first), to keep off the host"},
	{"archive", a_archive, "--dir D --before CHECKPOINT -o FILE",
	 "move the entries before a stored checkpoint into an export, freeing space"},
	{NULL, NULL, NULL, NULL},
};
const struct cli_cmd *cmd_audit_table(void) { return AUDIT_CMDS; } /* docs: cli_doc.c */


int cmd_audit(int argc, char **argv)
{
	return cli_dispatch("audit", AUDIT_CMDS, argc, argv);
}

static void fmt_us(int64_t us, char *out, size_t n)
{
	char b[CRETO_TIME_STRLEN];
	creto_time_format(us / 1000000, b);
	b[19] = '\0'; /* drop the Z */
	snprintf(out, n, "%s.%06lldZ", b, (long long)(us % 1000000));
}

/* Open the writer with the CLI's clock, crash point and an optional key. */
static int open_writer(const char *dir, const char *key, const creto_keys_opts *ko,
		       uint64_t budget, creto_signer **s, creto_audit **a, creto_err *e)
{
	*s = NULL;
	*a = NULL;
	if (key != NULL) {
		int rc = creto_keys_open_signer(key, ko, s, e);
		if (rc)
			return rc;
	}
	creto_audit_opts o = {.clock = cli_clock(), .signer = *s, .flush_ms = 0, .size_budget = budget};
	int rc = creto_audit_open(dir, &o, a, e);
	if (rc) {
		creto_signer_free(*s);
		*s = NULL;
		return rc;
	}
	creto_audit_set_crash_point(*a, cli_crash_point());
	return 0;
}

static int a_init(int argc, char **argv)
{
	static const struct option opts[] = {
		{"dir", required_argument, NULL, 'd'},    {"origin", required_argument, NULL, 'O'},
		{"key", required_argument, NULL, 'k'},    {"module", required_argument, NULL, 'm'},
		{"pin-file", required_argument, NULL, 'P'}, {NULL, 0, NULL, 0},
	};
	const char *dir = NULL, *origin = NULL, *key = NULL;
	creto_keys_opts ko = {0};
	int c;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 'O': origin = optarg; break;
		case 'k': key = optarg; break;
		case 'm': ko.module_path = optarg; break;
		case 'P': ko.pin_file = optarg; break;
		default: return cli_usage("audit", &AUDIT_CMDS[0]);
		}
	}
	if (dir == NULL || origin == NULL || optind != argc)
		return cli_usage("audit", &AUDIT_CMDS[0]);
	creto_err e;
	creto_err_clear(&e);
	int rc = creto_audit_init(dir, origin, &e);
	creto_signer *s = NULL;
	creto_audit *a = NULL;
	if (rc == 0 && key != NULL) {
		rc = open_writer(dir, key, &ko, 0, &s, &a, &e);
		if (rc == 0)
			rc = creto_audit_checkpoint(a, &e);
	}
	if (rc == 0)
		printf("created audit log %s (origin %s)%s%s\n", dir, origin,
		       s ? ", checkpoints signed by key " : "",
		       s ? creto_pubkey_id(creto_signer_pubkey(s)) : "");
	creto_audit_close(a);
	creto_signer_free(s);
	return rc ? cli_fail(&e, 0) : 0;
}

/* The event on stdin: {"component","event","outcome", optional "subject",
 * "reason","actor" strings, optional "fields" of strings and integers}. */
static int read_event(json_t **root, creto_event *ev, creto_event_field *f, size_t fmax,
		      creto_err *e)
{
	static char buf[STDIN_MAX + 1];
	size_t n = 0;
	for (;;) {
		ssize_t r = read(STDIN_FILENO, buf + n, sizeof(buf) - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return creto_err_errno(e, errno, "stdin");
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > STDIN_MAX)
			return creto_err_set(e, CRETO_EUSAGE, "stdin: event over %d bytes", STDIN_MAX);
	}
	json_error_t je;
	json_t *o = json_loadb(buf, n, JSON_REJECT_DUPLICATES, &je);
	if (o == NULL || !json_is_object(o)) {
		json_decref(o);
		return creto_err_set(e, CRETO_EUSAGE, "stdin: not a JSON object (line %d: %s)", je.line,
				     je.text);
	}
	*root = o;
	memset(ev, 0, sizeof(*ev));
	const char *k;
	json_t *v;
	json_object_foreach(o, k, v)
	{
		const char **slot = NULL;
		if (strcmp(k, "component") == 0)
			slot = &ev->component;
		else if (strcmp(k, "event") == 0)
			slot = &ev->event;
		else if (strcmp(k, "outcome") == 0)
			slot = &ev->outcome;
		else if (strcmp(k, "subject") == 0)
			slot = &ev->subject;
		else if (strcmp(k, "reason") == 0)
			slot = &ev->reason;
		else if (strcmp(k, "actor") == 0)
			slot = &ev->actor;
		if (slot != NULL) {
			if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
				return creto_err_set(e, CRETO_EUSAGE, "stdin: \"%s\" must be a string without NUL", k);
			*slot = json_string_value(v);
			continue;
		}
		if (strcmp(k, "fields") != 0 || !json_is_object(v))
			return creto_err_set(e, CRETO_EUSAGE, "stdin: unknown member \"%s\"", k);
		const char *fk;
		json_t *fv;
		json_object_foreach(v, fk, fv)
		{
			if (ev->nfields >= fmax)
				return creto_err_set(e, CRETO_EUSAGE, "stdin: over %zu fields", fmax);
			creto_event_field *x = &f[ev->nfields++];
			x->key = fk;
			if (json_is_string(fv) && strlen(json_string_value(fv)) == json_string_length(fv))
				x->str = json_string_value(fv);
			else if (json_is_integer(fv))
				x->num = json_integer_value(fv);
			else
				return creto_err_set(e, CRETO_EUSAGE,
						     "stdin: field \"%s\" must be a string or an integer", fk);
		}
	}
	ev->fields = f;
	return 0;
}

static int a_append(int argc, char **argv)
{
	static const struct option opts[] = {
		{"dir", required_argument, NULL, 'd'},    {"key", required_argument, NULL, 'k'},
		{"module", required_argument, NULL, 'm'}, {"pin-file", required_argument, NULL, 'P'},
		{"budget", required_argument, NULL, 'b'}, {NULL, 0, NULL, 0},
	};
	const char *dir = NULL, *key = NULL;
	creto_keys_opts ko = {0};
	uint64_t budget = 0;
	int c;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 'k': key = optarg; break;
		case 'm': ko.module_path = optarg; break;
		case 'P': ko.pin_file = optarg; break;
		case 'b': {
			char *end;
			errno = 0;
			budget = strtoull(optarg, &end, 10);
			if (*end || errno || optarg[0] == '-')
				return cli_usage_error("--budget: not a byte count: %s", optarg);
			break;
		}
		default: return cli_usage("audit", &AUDIT_CMDS[1]);
		}
	}
	if (dir == NULL || optind != argc)
		return cli_usage("audit", &AUDIT_CMDS[1]);
	creto_err e;
	creto_err_clear(&e);
	json_t *root = NULL;
	creto_event ev;
	creto_event_field f[32];
	memset(f, 0, sizeof(f));
	int rc = read_event(&root, &ev, f, 32, &e);
	creto_signer *s = NULL;
	creto_audit *a = NULL;
	uint64_t seq = 0;
	if (rc == 0)
		rc = open_writer(dir, key, &ko, budget, &s, &a, &e);
	if (rc == 0)
		rc = creto_audit_append(a, &ev, &seq, &e);
	if (rc == 0 && s != NULL)
		rc = creto_audit_checkpoint(a, &e);
	if (rc == 0)
		printf("%llu\n", (unsigned long long)seq);
	creto_audit_close(a);
	creto_signer_free(s);
	json_decref(root);
	return rc ? cli_fail(&e, 0) : 0;
}

/* ---- show / tail ---- */

typedef struct show_ctx {
	int json;
	const char *component;
	uint64_t shown;
} show_ctx;

static void print_entry(const char *entry, size_t len, int json)
{
	if (json) {
		fwrite(entry, 1, len, stdout);
		fputc('\n', stdout);
		return;
	}
	json_error_t je;
	json_t *o = json_loadb(entry, len, 0, &je);
	if (o == NULL) {
		printf("(unreadable entry)\n");
		return;
	}
	char t[40];
	fmt_us(json_integer_value(json_object_get(o, "time")), t, sizeof(t));
	printf("%llu %s %s %s %s", (unsigned long long)json_integer_value(json_object_get(o, "seq")),
	       t, json_string_value(json_object_get(o, "component")),
	       json_string_value(json_object_get(o, "event")),
	       json_string_value(json_object_get(o, "outcome")));
	static const char *const opt[] = {"subject", "reason", "actor"};
	for (int i = 0; i < 3; i++) {
		const char *v = json_string_value(json_object_get(o, opt[i]));
		if (v != NULL)
			printf(" %s=%s", opt[i], v);
	}
	const char *k;
	json_t *v;
	json_object_foreach(json_object_get(o, "fields"), k, v)
	{
		if (json_is_string(v))
			printf(" %s=%s", k, json_string_value(v));
		else
			printf(" %s=%lld", k, (long long)json_integer_value(v));
	}
	putchar('\n');
	json_decref(o);
}

static int show_one(void *ctx, uint64_t seq, const char *entry, size_t len)
{
	show_ctx *s = ctx;
	(void)seq;
	if (s->component != NULL) {
		char pat[96];
		int n = snprintf(pat, sizeof(pat), "\"component\":\"%s\"", s->component);
		if (n < 0 || (size_t)n >= sizeof(pat) || memmem(entry, len, pat, (size_t)n) == NULL)
			return 0;
	}
	print_entry(entry, len, s->json);
	s->shown++;
	return 0;
}

static int a_show(int argc, char **argv)
{
	static const struct option opts[] = {
		{"dir", required_argument, NULL, 'd'},       {"since", required_argument, NULL, 's'},
		{"component", required_argument, NULL, 'c'}, {"json", no_argument, NULL, 'J'},
		{NULL, 0, NULL, 0},
	};
	const char *dir = NULL, *since = NULL;
	show_ctx sc = {0, NULL, 0};
	int c;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 's': since = optarg; break;
		case 'c': sc.component = optarg; break;
		case 'J': sc.json = 1; break;
		default: return cli_usage("audit", &AUDIT_CMDS[2]);
		}
	}
	if (dir == NULL || optind != argc)
		return cli_usage("audit", &AUDIT_CMDS[2]);
	int64_t t = 0;
	if (since != NULL && creto_time_parse(since, &t) != 0)
		return cli_usage_error("--since: not a time (YYYY-MM-DD or YYYY-MM-DDThh:mm:ssZ): %s",
				       since);
	if (sc.component != NULL && (strlen(sc.component) > 64 || strpbrk(sc.component, "\"\\") != NULL))
		return cli_usage_error("--component: not a component name");
	creto_err e;
	creto_err_clear(&e);
	creto_audit_reader *r = NULL;
	uint64_t from = 0;
	int rc = creto_audit_reader_open(dir, &r, &e);
	if (rc == 0 && since != NULL)
		rc = creto_audit_reader_seek_time(r, t * 1000000, &from, &e);
	if (rc == 0)
		rc = creto_audit_reader_scan(r, from, UINT64_MAX, show_one, &sc, &e);
	creto_audit_reader_close(r);
	if (rc == 0 && fflush(stdout) != 0)
		rc = creto_err_errno(&e, errno, "stdout");
	return rc ? cli_fail(&e, 0) : 0;
}

static volatile sig_atomic_t tail_stop;
static void on_term(int sig)
{
	(void)sig;
	tail_stop = 1;
}

static int a_tail(int argc, char **argv)
{
	static const struct option opts[] = {
		{"dir", required_argument, NULL, 'd'},     {"follow", no_argument, NULL, 'f'},
		{"timeout", required_argument, NULL, 't'}, {"json", no_argument, NULL, 'J'},
		{NULL, 0, NULL, 0},
	};
	const char *dir = NULL;
	int follow = 0;
	long n = 10;
	int64_t timeout = 0;
	show_ctx sc = {0, NULL, 0};
	int c;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "fn:", opts, NULL)) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 'f': follow = 1; break;
		case 'J': sc.json = 1; break;
		case 'n': {
			char *end;
			n = strtol(optarg, &end, 10);
			if (*end || n < 0)
				return cli_usage_error("-n: not a count: %s", optarg);
			break;
		}
		case 't':
			if (creto_duration_parse(optarg, &timeout) != 0 || timeout <= 0)
				return cli_usage_error("--timeout: not a duration: %s", optarg);
			break;
		default: return cli_usage("audit", &AUDIT_CMDS[3]);
		}
	}
	if (dir == NULL || optind != argc)
		return cli_usage("audit", &AUDIT_CMDS[3]);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	creto_err e;
	creto_err_clear(&e);
	creto_audit_reader *r = NULL;
	uint64_t size = 0;
	int rc = creto_audit_reader_open(dir, &r, &e);
	if (rc == 0)
		rc = creto_audit_reader_size(r, &size, NULL, &e);
	uint64_t from = size > (uint64_t)n ? size - (uint64_t)n : 0;
	if (rc == 0)
		rc = creto_audit_reader_scan(r, from, size, show_one, &sc, &e);
	fflush(stdout);
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (rc == 0 && follow && !tail_stop) {
		struct timespec now, d = {0, 200 * 1000000L};
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (timeout > 0 && now.tv_sec - t0.tv_sec >= timeout)
			break;
		nanosleep(&d, NULL);
		uint64_t nsize;
		rc = creto_audit_reader_size(r, &nsize, NULL, &e);
		if (rc == 0 && nsize > size) {
			rc = creto_audit_reader_scan(r, size, nsize, show_one, &sc, &e);
			size = nsize;
			fflush(stdout);
		}
	}
	creto_audit_reader_close(r);
	return rc ? cli_fail(&e, 0) : 0;
}

/* ---- verify / prove / export / checkpoint / archive ---- */

static int a_verify(int argc, char **argv)
{
	static const struct option opts[] = {
		{"dir", required_argument, NULL, 'd'},        {"export", required_argument, NULL, 'x'},
		{"pub", required_argument, NULL, 'p'},        {"checkpoint", required_argument, NULL, 'c'},
		{"module", required_argument, NULL, 'm'},     {"pin-file", required_argument, NULL, 'P'},
		{"json", no_argument, NULL, 'J'},             {NULL, 0, NULL, 0},
	};
	const char *dir = NULL, *pubref = NULL, *kept_path = NULL;
	creto_keys_opts ko = {0};
	int json = 0, c;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
		case 'x': dir = optarg; break;
		case 'p': pubref = optarg; break;
		case 'c': kept_path = optarg; break;
		case 'm': ko.module_path = optarg; break;
		case 'P': ko.pin_file = optarg; break;
		case 'J': json = 1; break;
		default: return cli_usage("audit", &AUDIT_CMDS[4]);
		}
	}
	if (dir == NULL || pubref == NULL || optind != argc)
		return cli_usage("audit", &AUDIT_CMDS[4]);
	creto_err e;
	creto_err_clear(&e);
	creto_pubkey *pub = NULL;
	uint8_t *kept = NULL;
	size_t kept_len = 0;
	creto_audit_report rep;
	int rc = creto_keys_open_pubkey(pubref, &ko, &pub, &e);
	if (rc == 0 && kept_path != NULL)
		rc = creto_file_read(kept_path, 16384, &kept, &kept_len, &e);
	if (rc == 0)
		rc = creto_audit_verify(dir, pub, (const char *)kept, kept_len, &rep, &e);
	creto_pubkey_free(pub);
	free(kept);
	if (rc)
		return cli_fail(&e, json);
	char root[64];
	creto_b64_encode(root, rep.root, 32, 0);
	if (json) {
		json_t *o = json_pack("{s:b, s:s, s:s, s:I, s:I, s:I, s:I, s:s, s:b}", "ok", 1, "status",
				      "ok", "origin", rep.origin, "first", (json_int_t)rep.first, "size",
				      (json_int_t)rep.size, "checkpoints", (json_int_t)rep.checkpoints,
				      "signed_size", (json_int_t)rep.signed_size, "root", root,
				      "kept_checkpoint", kept_path != NULL);
		return o ? cli_json_out(o) : CRETO_EOP;
	}
	printf("verified audit log %s: %llu entries (from %llu), %llu signed checkpoints, newest at "
	       "size %llu, root %s%s\n",
	       rep.origin, (unsigned long long)rep.size, (unsigned long long)rep.first,
	       (unsigned long long)rep.checkpoints, (unsigned long long)rep.signed_size, root,
	       kept_path ? ", extends the kept checkpoint" : "");
	if (rep.size > rep.signed_size)
		fprintf(stderr, "creto: warning: %llu entries after the newest checkpoint are not signed yet\n",
			(unsigned long long)(rep.size - rep.signed_size));
	return 0;
}

static void b64(char *out, const uint8_t h[32])
{
	creto_b64_encode(out, h, 32, 0);
}

static int a_prove(int argc, char **argv)
{
	static const struct option opts[] = {
		{"dir", required_argument, NULL, 'd'},
		{"size", required_argument, NULL, 's'},
		{NULL, 0, NULL, 0},
	};
	const char *dir = NULL;
	uint64_t size = 0;
	int c;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 's': {
			char *end;
			size = strtoull(optarg, &end, 10);
			if (*end || optarg[0] == '-' || size == 0)
				return cli_usage_error("--size: not a tree size: %s", optarg);
			break;
		}
		default: return cli_usage("audit", &AUDIT_CMDS[5]);
		}
	}
	if (dir == NULL || optind + 1 != argc)
		return cli_usage("audit", &AUDIT_CMDS[5]);
	char *end;
	uint64_t seq = strtoull(argv[optind], &end, 10);
	if (*end || argv[optind][0] == '-' || argv[optind][0] == '\0')
		return cli_usage_error("SEQ: not a sequence number: %s", argv[optind]);
	creto_err e;
	creto_err_clear(&e);
	creto_audit_reader *r = NULL;
	char *cp = NULL;
	size_t cpl = 0;
	creto_audit_proof *p = calloc(1, sizeof(*p));
	int rc = p ? creto_audit_reader_open(dir, &r, &e) : creto_err_set(&e, CRETO_EOP, "out of memory");
	uint64_t held = 0;
	if (rc == 0)
		rc = creto_audit_reader_size(r, &held, NULL, &e);
	if (rc == 0 && size > held)
		rc = creto_err_set(&e, CRETO_EUSAGE, "audit prove: --size %llu beyond the log's %llu entries",
				   (unsigned long long)size, (unsigned long long)held);
	if (rc == 0)
		rc = creto_audit_reader_checkpoint(r, &cp, &cpl, &e);
	if (rc == 0 && size == 0 && cp != NULL) {
		uint64_t cs;
		if (creto_audit_checkpoint_parse(cp, cpl, NULL, &cs, NULL, &e) == 0 && seq < cs)
			size = cs;
		else {
			free(cp);
			cp = NULL;
		}
	} else if (cp != NULL && size != 0) {
		uint64_t cs;
		if (creto_audit_checkpoint_parse(cp, cpl, NULL, &cs, NULL, &e) != 0 || cs != size) {
			free(cp);
			cp = NULL;
		}
	}
	if (rc == 0) {
		creto_err_clear(&e);
		rc = creto_audit_reader_prove(r, seq, size, p, &e);
	}
	/* the path leads to the root the checkpoint signed, or the stored tree
	 * was changed: never print a proof that does not check */
	uint8_t cproot[32];
	if (rc == 0 && cp != NULL &&
	    (creto_audit_checkpoint_parse(cp, cpl, NULL, NULL, cproot, &e) != 0 ||
	     memcmp(cproot, p->root, 32) != 0))
		rc = creto_err_set(&e, CRETO_EREJECT,
				   "audit prove: entry %llu does not lead to the root of the checkpoint at "
				   "size %llu: the stored tree was changed (run creto audit verify)",
				   (unsigned long long)seq, (unsigned long long)p->size);
	if (rc == 0) {
		char h[64];
		json_t *path = json_array();
		for (size_t i = 0; i < p->len; i++) {
			b64(h, p->path[i]);
			json_array_append_new(path, json_string(h));
		}
		char leaf[64], root[64];
		b64(leaf, p->leaf);
		b64(root, p->root);
		json_t *o = json_pack("{s:I, s:I, s:s, s:s, s:o, s:s?}", "seq", (json_int_t)p->index,
				      "size", (json_int_t)p->size, "leaf_hash", leaf, "root", root,
				      "path", path, "checkpoint", cp);
		rc = o ? cli_json_out(o) : creto_err_set(&e, CRETO_EOP, "out of memory");
	}
	free(cp);
	free(p);
	creto_audit_reader_close(r);
	return rc ? cli_fail(&e, 0) : 0;
}

static int a_export(int argc, char **argv)
{
	static const struct option opts[] = {
		{"dir", required_argument, NULL, 'd'},
		{"before", required_argument, NULL, 'b'},
		{"output", required_argument, NULL, 'o'},
		{NULL, 0, NULL, 0},
	};
	const char *dir = NULL, *out = NULL;
	uint64_t before = 0;
	int c;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "o:", opts, NULL)) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 'o': out = optarg; break;
		case 'b': {
			char *end;
			before = strtoull(optarg, &end, 10);
			if (*end || optarg[0] == '-' || before == 0)
				return cli_usage_error("--before: not a tree size: %s", optarg);
			break;
		}
		default: return cli_usage("audit", &AUDIT_CMDS[6]);
		}
	}
	if (dir == NULL || out == NULL || optind != argc)
		return cli_usage("audit", &AUDIT_CMDS[6]);
	creto_err e;
	creto_err_clear(&e);
	int rc = creto_audit_export(dir, before, out, &e);
	if (rc)
		return cli_fail(&e, 0);
	printf("wrote %s\n", out);
	return 0;
}

static int a_checkpoint(int argc, char **argv)
{
	static const struct option opts[] = {
		{"dir", required_argument, NULL, 'd'},    {"key", required_argument, NULL, 'k'},
		{"module", required_argument, NULL, 'm'}, {"pin-file", required_argument, NULL, 'P'},
		{"output", required_argument, NULL, 'o'}, {NULL, 0, NULL, 0},
	};
	const char *dir = NULL, *key = NULL, *out = NULL;
	creto_keys_opts ko = {0};
	int c;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "o:", opts, NULL)) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 'k': key = optarg; break;
		case 'm': ko.module_path = optarg; break;
		case 'P': ko.pin_file = optarg; break;
		case 'o': out = optarg; break;
		default: return cli_usage("audit", &AUDIT_CMDS[7]);
		}
	}
	if (dir == NULL || optind != argc)
		return cli_usage("audit", &AUDIT_CMDS[7]);
	creto_err e;
	creto_err_clear(&e);
	char *cp = NULL;
	size_t cpl = 0;
	int rc;
	if (key != NULL) {
		creto_signer *s = NULL;
		creto_audit *a = NULL;
		rc = open_writer(dir, key, &ko, 0, &s, &a, &e);
		if (rc == 0)
			rc = creto_audit_checkpoint(a, &e);
		if (rc == 0)
			rc = creto_audit_last_checkpoint(a, &cp, &cpl, &e);
		creto_audit_close(a);
		creto_signer_free(s);
	} else {
		creto_audit_reader *r = NULL;
		rc = creto_audit_reader_open(dir, &r, &e);
		if (rc == 0)
			rc = creto_audit_reader_checkpoint(r, &cp, &cpl, &e);
		creto_audit_reader_close(r);
	}
	if (rc == 0 && cp == NULL)
		rc = creto_err_set(&e, CRETO_EUSAGE, "audit log %s: no checkpoint yet (use --key)", dir);
	if (rc == 0) {
		if (out != NULL)
			rc = creto_file_write_atomic(out, cp, cpl, 0644, &e);
		else if (fwrite(cp, 1, cpl, stdout) != cpl || fflush(stdout) != 0)
			rc = creto_err_errno(&e, errno, "stdout");
	}
	free(cp);
	return rc ? cli_fail(&e, 0) : 0;
}

static int a_archive(int argc, char **argv)
{
	static const struct option opts[] = {
		{"dir", required_argument, NULL, 'd'},
		{"before", required_argument, NULL, 'b'},
		{"output", required_argument, NULL, 'o'},
		{NULL, 0, NULL, 0},
	};
	const char *dir = NULL, *cpath = NULL, *out = NULL;
	int c;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "o:", opts, NULL)) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 'b': cpath = optarg; break;
		case 'o': out = optarg; break;
		default: return cli_usage("audit", &AUDIT_CMDS[8]);
		}
	}
	if (dir == NULL || cpath == NULL || out == NULL || optind != argc)
		return cli_usage("audit", &AUDIT_CMDS[8]);
	creto_err e;
	creto_err_clear(&e);
	uint8_t *cp = NULL;
	size_t cpl = 0;
	creto_signer *s = NULL;
	creto_audit *a = NULL;
	int rc = creto_file_read(cpath, 16384, &cp, &cpl, &e);
	if (rc == 0)
		rc = open_writer(dir, NULL, NULL, 0, &s, &a, &e);
	if (rc == 0)
		rc = creto_audit_archive(a, (const char *)cp, cpl, out, &e);
	creto_audit_close(a);
	free(cp);
	if (rc)
		return cli_fail(&e, 0);
	printf("archived into %s\n", out);
	return 0;
}
