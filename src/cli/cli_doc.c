/* cli_doc.c - man pages (roff) and bash completion generated from the same
 * subcommand tables that print --help, so help, man and completion never
 * disagree.  Reached through the hidden commands `creto __man` and
 * `creto __completion bash` (cli.h, cli_doc_main); the build runs them
 * (scripts/gen-docs.sh) and `make install` installs what they wrote. */
#include "cli.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DOC_FLAGS_MAX 48
#define DOC_NAME_MAX 40
#define DOC_ARG_MAX 96

/* One option found in a usage line: "--state" and its value "SDIR" (empty
 * for a switch).  enumerated: the value is a|b|c of literal words. */
struct doc_flag {
	char name[DOC_NAME_MAX];
	char arg[DOC_ARG_MAX];
	int enumerated;
};

struct doc_flags {
	struct doc_flag f[DOC_FLAGS_MAX];
	size_t n;
};

static int is_single(const struct cli_cmd *t)
{
	return t != NULL && t[0].name != NULL && t[0].name[0] == '\0';
}

static const struct cli_doc_group *find_doc(const struct cli_doc_group *docs, const char *name)
{
	for (; docs->name != NULL; docs++)
		if (strcmp(docs->name, name) == 0)
			return docs;
	return NULL;
}

/* The nested table of "GROUP CMD" (diode quarantine), or NULL. */
static const struct cli_cmd *nested(const struct cli_doc_group *docs, const char *group, const char *cmd)
{
	char key[2 * DOC_NAME_MAX];
	snprintf(key, sizeof(key), "%s %s", group, cmd);
	const struct cli_doc_group *d = find_doc(docs, key);
	return d != NULL ? d->table() : NULL;
}

static int flag_char(int c)
{
	return isalnum(c) || c == '-';
}

static void add_flag(struct doc_flags *fl, const char *name, size_t nl, const char *arg, size_t al)
{
	if (nl < 2 || nl >= DOC_NAME_MAX)
		return;
	for (size_t i = 0; i < fl->n; i++)
		if (strlen(fl->f[i].name) == nl && strncmp(fl->f[i].name, name, nl) == 0)
			return;
	if (fl->n == DOC_FLAGS_MAX)
		return;
	struct doc_flag *f = &fl->f[fl->n++];
	memcpy(f->name, name, nl);
	f->name[nl] = '\0';
	if (al >= DOC_ARG_MAX)
		al = DOC_ARG_MAX - 1;
	memcpy(f->arg, arg, al);
	f->arg[al] = '\0';
	/* a|b|c of lower-case words: values to complete */
	f->enumerated = al > 0 && strchr(f->arg, '|') != NULL;
	for (size_t i = 0; i < al && f->enumerated; i++)
		if (!(islower((unsigned char)f->arg[i]) || isdigit((unsigned char)f->arg[i]) || f->arg[i] == '-' ||
		      f->arg[i] == '|'))
			f->enumerated = 0;
	if (f->enumerated && !islower((unsigned char)f->arg[0]))
		f->enumerated = 0;
}

/* The length of tok without the closing brackets it does not open. */
static size_t trim_closers(const char *tok, size_t n)
{
	int open_sq = 0, open_par = 0;
	for (size_t i = 0; i < n; i++) {
		open_sq += tok[i] == '[';
		open_par += tok[i] == '(';
	}
	for (size_t i = 0; i < n; i++) {
		open_sq -= tok[i] == ']';
		open_par -= tok[i] == ')';
	}
	while (n > 0 && ((tok[n - 1] == ']' && open_sq < 0) || (tok[n - 1] == ')' && open_par < 0))) {
		if (tok[n - 1] == ']')
			open_sq++;
		else
			open_par++;
		n--;
	}
	return n;
}

/* Every option in a usage line: a token (after its opening brackets) that
 * starts with '-' and a letter or a second '-'; its value is the next
 * token when the option's own token did not end in ']', ')' or '|' and the
 * next one is neither an option nor a bracket nor '|'. */
static void parse_usage(const char *usage, struct doc_flags *fl)
{
	const char *p = usage;
	while (*p) {
		while (*p == ' ')
			p++;
		const char *tok = p;
		while (*p && *p != ' ')
			p++;
		size_t tl = (size_t)(p - tok);
		while (tl > 0 && (*tok == '[' || *tok == '(')) {
			tok++;
			tl--;
		}
		if (tl < 2 || tok[0] != '-' || !(isalpha((unsigned char)tok[1]) || tok[1] == '-'))
			continue;
		/* "--json|--sarif]": alternatives, none with a value */
		const char *q = tok, *end = tok + tl;
		int alternatives = memchr(tok, '|', tl) != NULL;
		while (q < end) {
			const char *n0 = q;
			while (q < end && flag_char((unsigned char)*q))
				q++;
			size_t nl = (size_t)(q - n0);
			int bare = q == end; /* the token is just the option */
			if (alternatives || !bare) {
				add_flag(fl, n0, nl, "", 0);
			} else {
				const char *a = p;
				while (*a == ' ')
					a++;
				const char *ae = a;
				while (*ae && *ae != ' ')
					ae++;
				if (ae > a && *a != '-' && *a != '[' && *a != '(' && *a != '|')
					add_flag(fl, n0, nl, a, trim_closers(a, (size_t)(ae - a)));
				else
					add_flag(fl, n0, nl, "", 0);
			}
			while (q < end && *q != '-')
				q++;
		}
	}
}

/* ---- roff ---------------------------------------------------------------- */

/* Text as roff: backslash and '-' escaped, a leading '.' or '\'' guarded. */
static void roff(FILE *f, const char *s)
{
	if (*s == '.' || *s == '\'')
		fputs("\\&", f);
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\e", f);
		else if (*s == '-')
			fputs("\\-", f);
		else if (*s == '`')
			fputc('\'', f);
		else
			fputc(*s, f);
	}
}

static void roff_upper(FILE *f, const char *s)
{
	for (; *s; s++)
		if (*s == '-')
			fputs("\\-", f);
		else
			fputc(toupper((unsigned char)*s), f);
}

static void th(FILE *f, const char *name, int section)
{
	fputs(".TH ", f);
	roff_upper(f, name);
	fprintf(f, " %d \"\" \"creto %s\" \"creto manual\"\n", section, CRETO_VERSION);
}

static const char *const k_exit_status = ".SH EXIT STATUS\n"
					 ".TP\n.B 0\nsuccess; for a check: verified, isolated\n"
					 ".TP\n.B 1\nrejected: bad signature, tampered file, too few signatures, "
					 "expired, rolled back, not isolated, malformed input\n"
					 ".TP\n.B 2\nusage error: bad arguments or configuration\n"
					 ".TP\n.B 3\noperational error: I/O, HSM unavailable, out of memory\n";

static const char *const k_common_opts =
	".TP\n.B \\-\\-json\nmachine output on standard output; errors, usage errors included, as one "
	"JSON object (see /usr/share/doc/creto/errors.md)\n"
	".TP\n.B \\-\\-quiet\nno status lines and no progress on standard error (errors still show)\n"
	".TP\n.B \\-\\-progress\nprogress of long work on standard error even when it is not a terminal\n"
	".TP\n.BR \\-h \", \" \\-\\-help\nas the one argument after a command: print its synopsis\n";

static void synopsis_line(FILE *f, const char *path, const struct cli_cmd *c)
{
	fputs(".PP\n\\fBcreto ", f);
	roff(f, path);
	if (c->name[0] != '\0') {
		fputc(' ', f);
		roff(f, c->name);
	}
	fputs("\\fR ", f);
	roff(f, c->usage);
	fputc('\n', f);
}

static void command_entry(FILE *f, const char *path, const struct cli_cmd *c)
{
	fputs(".TP\n\\fB", f);
	roff(f, path);
	fputc(' ', f);
	roff(f, c->name);
	fputs("\\fR ", f);
	roff(f, c->usage);
	fputc('\n', f);
	roff(f, c->help);
	fputs(".\n", f);
}

/* The OPTIONS section: each option of the group once, with its value and
 * the commands that take it. */
static void options_section(FILE *f, const char *group, const struct cli_cmd *t, const struct cli_doc_group *docs)
{
	struct doc_flags all = {.n = 0};
	struct {
		const char *path, *name, *usage;
	} cmds[64];
	size_t nc = 0;
	char paths[16][2 * DOC_NAME_MAX];
	size_t np = 0;
	if (is_single(t)) {
		cmds[nc].path = group;
		cmds[nc].name = "";
		cmds[nc++].usage = t->usage;
	} else {
		for (const struct cli_cmd *c = t; c->name != NULL && nc < 64; c++) {
			const struct cli_cmd *sub = nested(docs, group, c->name);
			if (sub == NULL) {
				cmds[nc].path = group;
				cmds[nc].name = c->name;
				cmds[nc++].usage = c->usage;
				continue;
			}
			if (np == 16)
				continue;
			snprintf(paths[np], sizeof(paths[np]), "%s %s", group, c->name);
			for (const struct cli_cmd *s = sub; s->name != NULL && nc < 64; s++) {
				cmds[nc].path = paths[np];
				cmds[nc].name = s->name;
				cmds[nc++].usage = s->usage;
			}
			np++;
		}
	}
	for (size_t i = 0; i < nc; i++)
		parse_usage(cmds[i].usage, &all);
	fputs(".SH OPTIONS\n", f);
	for (size_t i = 0; i < all.n; i++) {
		const struct doc_flag *fl = &all.f[i];
		if (strcmp(fl->name, "--json") == 0 || strcmp(fl->name, "--quiet") == 0)
			continue;
		fputs(".TP\n\\fB", f);
		roff(f, fl->name);
		fputs("\\fR", f);
		if (fl->arg[0] != '\0') {
			fputs(" \\fI", f);
			roff(f, fl->arg);
			fputs("\\fR", f);
		}
		fputc('\n', f);
		if (is_single(t)) {
			fputs("See the synopsis.\n", f);
			continue;
		}
		fputs("Taken by:", f);
		int first = 1;
		for (size_t j = 0; j < nc; j++) {
			struct doc_flags one = {.n = 0};
			parse_usage(cmds[j].usage, &one);
			for (size_t k = 0; k < one.n; k++) {
				if (strcmp(one.f[k].name, fl->name) != 0)
					continue;
				fputs(first ? " " : ", ", f);
				/* the words after the group: "verify", "quarantine list" */
				const char *sub = cmds[j].path + strlen(group);
				while (*sub == ' ')
					sub++;
				fputs("\\fB", f);
				if (*sub) {
					roff(f, sub);
					fputc(' ', f);
				}
				roff(f, cmds[j].name);
				fputs("\\fR", f);
				first = 0;
			}
		}
		fputs(".\n", f);
	}
	fputs(k_common_opts, f);
}

static void see_also_doc(FILE *f, const struct cli_doc_group *d)
{
	if (d != NULL && d->doc != NULL) {
		fputs(".PP\nThe formats and rules in detail: \\fI/usr/share/doc/creto/", f);
		roff(f, d->doc);
		fputs("\\fR.\n", f);
	}
}

static int man_group(FILE *f, const struct cli_cmd *g, const struct cli_doc_group *docs)
{
	const struct cli_doc_group *d = find_doc(docs, g->name);
	/* a group without a table in docs[] (a new one): its entry in main.c */
	const struct cli_cmd fallback[2] = {{"", NULL, g->usage, g->help}, {NULL, NULL, NULL, NULL}};
	const struct cli_cmd *t = d != NULL ? d->table() : fallback;
	char page[2 * DOC_NAME_MAX];
	snprintf(page, sizeof(page), "creto-%s", g->name);
	th(f, page, 1);
	fputs(".SH NAME\n", f);
	roff(f, page);
	fputs(" \\- ", f);
	roff(f, g->help);
	fputs("\n.SH SYNOPSIS\n", f);
	if (is_single(t)) {
		synopsis_line(f, g->name, t);
	} else {
		for (const struct cli_cmd *c = t; c->name != NULL; c++) {
			const struct cli_cmd *sub = nested(docs, g->name, c->name);
			if (sub == NULL) {
				synopsis_line(f, g->name, c);
				continue;
			}
			char path[2 * DOC_NAME_MAX];
			snprintf(path, sizeof(path), "%s %s", g->name, c->name);
			for (const struct cli_cmd *s = sub; s->name != NULL; s++)
				synopsis_line(f, path, s);
		}
	}
	fputs(".SH DESCRIPTION\n", f);
	if (is_single(t)) {
		roff(f, t->help);
		fputs(".\n", f);
	} else {
		fputs("\\fBcreto ", f);
		roff(f, g->name);
		fputs("\\fR: ", f);
		roff(f, g->help);
		fputs(".\nThe first argument after the group names the command; \\fBcreto ", f);
		roff(f, g->name);
		fputs(" \\fICOMMAND\\fB \\-\\-help\\fR prints its synopsis.\n.SH COMMANDS\n", f);
		for (const struct cli_cmd *c = t; c->name != NULL; c++) {
			const struct cli_cmd *sub = nested(docs, g->name, c->name);
			if (sub == NULL) {
				command_entry(f, g->name, c);
				continue;
			}
			char path[2 * DOC_NAME_MAX];
			snprintf(path, sizeof(path), "%s %s", g->name, c->name);
			for (const struct cli_cmd *s = sub; s->name != NULL; s++)
				command_entry(f, path, s);
		}
	}
	options_section(f, g->name, t, docs);
	fputs(k_exit_status, f);
	fputs(".SH SEE ALSO\n.BR creto (1),\n.BR creto.conf (5)\n", f);
	see_also_doc(f, d);
	return ferror(f) ? CRETO_EOP : CRETO_OK;
}

static int man_main(FILE *f, const struct cli_cmd *groups)
{
	th(f, "creto", 1);
	fputs(".SH NAME\ncreto \\- verified updates, models and agent identities for air\\-gapped enclaves\n"
	      ".SH SYNOPSIS\n.B creto\n.I GROUP COMMAND\n[\\fIOPTIONS\\fR]\n"
	      ".PP\n.B creto \\-\\-help\n.PP\n.B creto \\-\\-version\n[\\fB\\-\\-json\\fR]\n"
	      ".SH DESCRIPTION\n"
	      "creto is the security core of an air\\-gapped enclave that runs AI agents and local "
	      "LLM inference.\nUpdates cross a one\\-way data diode as signed .crupdate packages that "
	      "need M of N officer signatures; model directories are hashed and verified before they "
	      "are loaded; agents hold identities whose keys live in a PKCS#11 HSM; the isolation of "
	      "the host is checked.\n"
	      ".PP\nEach group of commands has its own page, listed below; "
	      "\\fBcreto \\fIGROUP\\fB \\-\\-help\\fR lists a group's commands.\n"
	      ".SH COMMAND GROUPS\n",
	      f);
	for (const struct cli_cmd *g = groups; g->name != NULL; g++) {
		fputs(".TP\n.B ", f);
		roff(f, g->name);
		fputc('\n', f);
		roff(f, g->help);
		fputs("; see\n.BR creto\\-", f);
		roff(f, g->name);
		fputs(" (1).\n", f);
	}
	fputs(".SH OPTIONS\nEvery command accepts:\n", f);
	fputs(k_common_opts, f);
	fputs(".TP\n.B \\-\\-version\nprint the version (with \\fB\\-\\-json\\fR as JSON)\n", f);
	fputs(k_exit_status, f);
	fputs(".SH ENVIRONMENT\n"
	      ".TP\n.B SOFTHSM2_CONF\nread by the SoftHSM2 PKCS#11 module to find its token directory\n"
	      ".TP\n.B CRETO_MLDSA_NO_AVX2\nwhen set, ML\\-DSA uses its portable code instead of AVX2\n"
	      ".TP\n.BR http_proxy \", \" https_proxy \", \" all_proxy \", \" no_proxy\n"
	      "examined by \\fBcreto isolation check\\fR (a proxy outside the enclave is a way out)\n"
	      ".SH FILES\n"
	      ".TP\n.I /etc/creto/isolation.conf\nthe isolation check's configuration; see\n.BR creto.conf (5)\n"
	      ".TP\n.I /etc/creto/trust/root.json\nthe enclave trust root the diode watcher verifies against\n"
	      ".TP\n.I /var/lib/creto\nstate: the applied updates, the audit log, the drop directory "
	      "(owned by the system user \\fIcreto\\fR)\n"
	      ".TP\n.I /lib/systemd/system/creto\\-*.service\nthe hardened units; see "
	      "\\fI/usr/share/doc/creto/install.md\\fR\n"
	      ".SH SEE ALSO\n",
	      f);
	for (const struct cli_cmd *g = groups; g->name != NULL; g++) {
		fputs(".BR creto\\-", f);
		roff(f, g->name);
		fputs(" (1),\n", f);
	}
	fputs(".BR creto.conf (5),\n.BR systemd.exec (5),\n.BR softhsm2\\-util (1)\n", f);
	return ferror(f) ? CRETO_EOP : CRETO_OK;
}

/* ---- bash completion ----------------------------------------------------- */

/* words of a table, space separated, into f */
static void words(FILE *f, const struct cli_cmd *t)
{
	for (const struct cli_cmd *c = t; c->name != NULL; c++)
		fprintf(f, "%s ", c->name);
}

static void comp_flags(FILE *f, const char *key, const char *usage, FILE *vals)
{
	struct doc_flags fl = {.n = 0};
	parse_usage(usage, &fl);
	fprintf(f, "\t'%s') flags='", key);
	for (size_t i = 0, sep = 0; i < fl.n; i++)
		if (strcmp(fl.f[i].name, "--json") != 0 && strcmp(fl.f[i].name, "--quiet") != 0)
			fprintf(f, "%s%s", sep++ ? " " : "", fl.f[i].name);
	fputs("' ;;\n", f);
	for (size_t i = 0; i < fl.n; i++) {
		if (fl.f[i].arg[0] == '\0')
			continue;
		fprintf(vals, "\t'%s|%s') ", key, fl.f[i].name);
		if (fl.f[i].enumerated) {
			fputs("COMPREPLY=($(compgen -W '", vals);
			for (const char *s = fl.f[i].arg; *s; s++)
				fputc(*s == '|' ? ' ' : *s, vals);
			fputs("' -- \"$cur\")); return 0 ;;\n", vals);
		} else {
			fputs("return 0 ;;\n", vals); /* a value: files (complete -o default) */
		}
	}
}

static int completion_bash(FILE *f, const struct cli_cmd *groups, const struct cli_doc_group *docs)
{
	/* the value cases are collected apart and printed after the flags */
	char *vbuf = NULL;
	size_t vlen = 0;
	FILE *vals = open_memstream(&vbuf, &vlen);
	if (vals == NULL)
		return CRETO_EOP;
	fprintf(f, "# bash completion for creto %s, generated by `creto __completion bash`\n"
		   "# from the command tables that print --help.  Do not edit.\n"
		   "_creto()\n{\n"
		   "\tlocal cur prev key flags=\n"
		   "\tcur=${COMP_WORDS[COMP_CWORD]}\n"
		   "\tprev=${COMP_WORDS[COMP_CWORD-1]}\n"
		   "\tCOMPREPLY=()\n"
		   "\tif [ \"$COMP_CWORD\" -eq 1 ]; then\n"
		   "\t\tCOMPREPLY=($(compgen -W '",
		CRETO_VERSION);
	words(f, groups);
	fputs("--help --version' -- \"$cur\"))\n\t\treturn 0\n\tfi\n\tkey=${COMP_WORDS[1]}\n\tcase \"$key\" in\n", f);
	/* single-command groups */
	int any = 0;
	for (const struct cli_cmd *g = groups; g->name != NULL; g++) {
		const struct cli_doc_group *d = find_doc(docs, g->name);
		if (d == NULL || is_single(d->table())) {
			fprintf(f, "%s%s", any ? "|" : "\t", g->name);
			any = 1;
		}
	}
	if (any)
		fputs(") ;;\n", f);
	fputs("\t*)\n\t\tif [ \"$COMP_CWORD\" -eq 2 ]; then\n\t\t\tcase \"$key\" in\n", f);
	for (const struct cli_cmd *g = groups; g->name != NULL; g++) {
		const struct cli_doc_group *d = find_doc(docs, g->name);
		if (d == NULL || is_single(d->table()))
			continue;
		fprintf(f, "\t\t\t%s) COMPREPLY=($(compgen -W '", g->name);
		words(f, d->table());
		fputs("--help' -- \"$cur\")) ;;\n", f);
	}
	fputs("\t\t\tesac\n\t\t\treturn 0\n\t\tfi\n\t\tkey=\"$key ${COMP_WORDS[2]}\"\n\t\tcase \"$key\" in\n", f);
	for (const struct cli_cmd *g = groups; g->name != NULL; g++) {
		const struct cli_doc_group *d = find_doc(docs, g->name);
		if (d == NULL || is_single(d->table()))
			continue;
		for (const struct cli_cmd *c = d->table(); c->name != NULL; c++) {
			const struct cli_cmd *sub = nested(docs, g->name, c->name);
			if (sub == NULL)
				continue;
			fprintf(f, "\t\t'%s %s')\n\t\t\tif [ \"$COMP_CWORD\" -eq 3 ]; then\n"
				   "\t\t\t\tCOMPREPLY=($(compgen -W '",
				g->name, c->name);
			words(f, sub);
			fputs("--help' -- \"$cur\"))\n\t\t\t\treturn 0\n\t\t\tfi\n"
			      "\t\t\tkey=\"$key ${COMP_WORDS[3]}\" ;;\n",
			      f);
		}
	}
	fputs("\t\tesac ;;\n\tesac\n\tcase \"$key\" in\n", f);
	for (const struct cli_cmd *g = groups; g->name != NULL; g++) {
		const struct cli_doc_group *d = find_doc(docs, g->name);
		if (d == NULL) {
			comp_flags(f, g->name, g->usage, vals);
			continue;
		}
		const struct cli_cmd *t = d->table();
		if (is_single(t)) {
			comp_flags(f, g->name, t->usage, vals);
			continue;
		}
		for (const struct cli_cmd *c = t; c->name != NULL; c++) {
			const struct cli_cmd *sub = nested(docs, g->name, c->name);
			char key[3 * DOC_NAME_MAX];
			if (sub == NULL) {
				snprintf(key, sizeof(key), "%s %s", g->name, c->name);
				comp_flags(f, key, c->usage, vals);
				continue;
			}
			for (const struct cli_cmd *s = sub; s->name != NULL; s++) {
				snprintf(key, sizeof(key), "%s %s %s", g->name, c->name, s->name);
				comp_flags(f, key, s->usage, vals);
			}
		}
	}
	if (fclose(vals) != 0) {
		free(vbuf);
		return CRETO_EOP;
	}
	fputs("\tesac\n\tcase \"$key|$prev\" in\n", f);
	fwrite(vbuf, 1, vlen, f);
	free(vbuf);
	fputs("\tesac\n"
	      "\tif [[ $cur == -* ]]; then\n"
	      "\t\tCOMPREPLY=($(compgen -W \"$flags --json --quiet --progress --help\" -- \"$cur\"))\n"
	      "\tfi\n"
	      "\treturn 0\n}\n"
	      "complete -o default -F _creto creto\n",
	      f);
	return ferror(f) ? CRETO_EOP : CRETO_OK;
}

/* ---- entry --------------------------------------------------------------- */

int cli_doc_main(const struct cli_cmd *groups, const struct cli_doc_group *docs, int argc, char **argv)
{
	int rc;
	if (strcmp(argv[0], "__completion") == 0) {
		if (argc != 2 || strcmp(argv[1], "bash") != 0)
			return cli_usage_error("__completion: want 'bash'");
		rc = completion_bash(stdout, groups, docs);
	} else if (argc == 1) {
		rc = man_main(stdout, groups);
	} else if (argc == 2 && strcmp(argv[1], "--list") == 0) {
		printf("creto\n");
		for (const struct cli_cmd *g = groups; g->name != NULL; g++)
			printf("creto-%s\n", g->name);
		rc = CRETO_OK;
	} else if (argc == 2) {
		const struct cli_cmd *g = groups;
		while (g->name != NULL && strcmp(g->name, argv[1]) != 0)
			g++;
		if (g->name == NULL)
			return cli_usage_error("__man: unknown group '%.64s'", argv[1]);
		rc = man_group(stdout, g, docs);
	} else {
		return cli_usage_error("__man: want [GROUP|--list]");
	}
	if (fflush(stdout) != 0)
		rc = CRETO_EOP;
	return rc;
}
