/*
 * conf.c - the creto config file parser (docs/config.md): sections of typed
 * `key = value` lines checked against a caller's schema.  The text is copied
 * once and split in place; entries point into that copy.
 */
#include "util/conf.h"

#include <stdlib.h>
#include <string.h>

#include "util/file.h"

struct creto_conf {
	char *text;
	creto_conf_entry *ent;
	size_t n, cap;
};

void creto_conf_free(creto_conf *c)
{
	if (c == NULL)
		return;
	free(c->text);
	free(c->ent);
	free(c);
}

size_t creto_conf_count(const creto_conf *c)
{
	return c->n;
}

const creto_conf_entry *creto_conf_at(const creto_conf *c, size_t i)
{
	return i < c->n ? &c->ent[i] : NULL;
}

const creto_conf_entry *creto_conf_get(const creto_conf *c, const char *section, const char *key)
{
	for (size_t i = c->n; i-- > 0;)
		if (strcmp(c->ent[i].section, section) == 0 && strcmp(c->ent[i].name, key) == 0)
			return &c->ent[i];
	return NULL;
}

/* Decimal digits then an optional unit; the number is at most 12 digits so
 * no product below can overflow. */
static int num_unit(const char *s, uint64_t *v, const char **unit)
{
	size_t d = 0;
	while (s[d] >= '0' && s[d] <= '9')
		d++;
	if (d == 0 || d > 12)
		return -1;
	*v = strtoull(s, NULL, 10);
	*unit = s + d;
	return 0;
}

int creto_conf_parse_ms(const char *s, int64_t *out)
{
	uint64_t v;
	const char *u;
	if (num_unit(s, &v, &u) != 0)
		return -1;
	if (strcmp(u, "ms") == 0)
		;
	else if (*u == '\0' || strcmp(u, "s") == 0)
		v *= 1000;
	else if (strcmp(u, "m") == 0)
		v *= 60000;
	else if (strcmp(u, "h") == 0)
		v *= 3600000;
	else
		return -1;
	*out = (int64_t)v;
	return 0;
}

int creto_conf_parse_bytes(const char *s, int64_t *out)
{
	uint64_t v;
	const char *u;
	if (num_unit(s, &v, &u) != 0)
		return -1;
	unsigned shift;
	if (*u == '\0')
		shift = 0;
	else if (strcmp(u, "k") == 0 || strcmp(u, "K") == 0)
		shift = 10;
	else if (strcmp(u, "M") == 0)
		shift = 20;
	else if (strcmp(u, "G") == 0)
		shift = 30;
	else
		return -1;
	if (v > (UINT64_C(1) << 40) >> shift)
		return -1;
	*out = (int64_t)(v << shift);
	return 0;
}

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		s[--n] = '\0';
	return s;
}

/* [a-z0-9_-], starting with a letter, at most CRETO_CONF_NAME_MAX bytes. */
static int ident_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > CRETO_CONF_NAME_MAX || !(s[0] >= 'a' && s[0] <= 'z'))
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

/* A name argument: printable ASCII without blanks, '=' or '#'. */
static int arg_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > CRETO_CONF_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] > '~' || s[i] == '=' || s[i] == '#')
			return 0;
	return 1;
}

static int value_ok(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < ' ' && *s != '\t')
			return 0;
	return 1;
}

static int typed(creto_conf_entry *en, const creto_conf_key *k, creto_err *e)
{
	const char *v = en->str;
	int64_t n = 0;
	const char *what = NULL;
	switch (k->type) {
	case CRETO_CONF_STR:
		return CRETO_OK;
	case CRETO_CONF_PATH:
		if (v[0] != '/' || strlen(v) > 4095)
			return creto_err_set(e, CRETO_EUSAGE, "line %zu: %s: need an absolute path", en->line,
					     k->key);
		return CRETO_OK;
	case CRETO_CONF_BOOL:
		if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "on") || !strcmp(v, "1"))
			en->num = 1;
		else if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "off") || !strcmp(v, "0"))
			en->num = 0;
		else
			return creto_err_set(e, CRETO_EUSAGE, "line %zu: %s: want yes or no, not '%.32s'",
					     en->line, k->key, v);
		return CRETO_OK;
	case CRETO_CONF_INT: {
		const char *p = v;
		int neg = *p == '-';
		p += neg;
		size_t d = strspn(p, "0123456789");
		if (d == 0 || d > 15 || p[d] != '\0') {
			what = "an integer";
			break;
		}
		n = (int64_t)strtoll(p, NULL, 10) * (neg ? -1 : 1);
		break;
	}
	case CRETO_CONF_MS:
		if (creto_conf_parse_ms(v, &n) != 0)
			what = "a duration (e.g. 250ms, 2s, 5m)";
		break;
	case CRETO_CONF_BYTES:
		if (creto_conf_parse_bytes(v, &n) != 0)
			what = "a size (e.g. 4096, 64k, 16M)";
		break;
	}
	if (what != NULL)
		return creto_err_set(e, CRETO_EUSAGE, "line %zu: %s: want %s, not '%.32s'", en->line,
				     k->key, what, v);
	if ((k->min || k->max) && (n < k->min || n > k->max))
		return creto_err_set(e, CRETO_EUSAGE, "line %zu: %s: '%.32s' out of range %lld..%lld",
				     en->line, k->key, v, (long long)k->min, (long long)k->max);
	en->num = n;
	return CRETO_OK;
}

static int add(creto_conf *c, const creto_conf_entry *en, creto_err *e)
{
	if (c->n == CRETO_CONF_ENTRIES_MAX)
		return creto_err_set(e, CRETO_EUSAGE, "line %zu: more than %d values", en->line,
				     CRETO_CONF_ENTRIES_MAX);
	if (c->n == c->cap) {
		size_t nc = c->cap ? c->cap * 2 : 32;
		creto_conf_entry *p = realloc(c->ent, nc * sizeof(*p));
		if (p == NULL)
			return creto_err_set(e, CRETO_EOP, "out of memory");
		c->ent = p;
		c->cap = nc;
	}
	c->ent[c->n++] = *en;
	return CRETO_OK;
}

static int line(creto_conf *c, char *l, size_t lineno, const char **section,
		const creto_conf_key *schema, size_t nschema, creto_err *e)
{
	/* '#' at the start of a line or after a blank starts a comment */
	for (char *h = l; (h = strchr(h, '#')) != NULL; h++)
		if (h == l || h[-1] == ' ' || h[-1] == '\t') {
			*h = '\0';
			break;
		}
	char *s = trim(l);
	if (*s == '\0')
		return CRETO_OK;
	if (*s == '[') {
		size_t n = strlen(s);
		if (s[n - 1] != ']')
			return creto_err_set(e, CRETO_EUSAGE, "line %zu: expected '[section]'", lineno);
		s[n - 1] = '\0';
		char *name = trim(s + 1);
		if (!ident_ok(name))
			return creto_err_set(e, CRETO_EUSAGE, "line %zu: bad section name '%.32s'", lineno, name);
		size_t i;
		for (i = 0; i < nschema; i++)
			if (strcmp(schema[i].section, name) == 0)
				break;
		if (i == nschema)
			return creto_err_set(e, CRETO_EUSAGE, "line %zu: unknown section [%.32s]", lineno, name);
		for (size_t j = 0; j < c->n; j++)
			if (strcmp(c->ent[j].section, name) == 0 && c->ent[j].key == NULL &&
			    c->ent[j].name[0] == '\0')
				return creto_err_set(e, CRETO_EUSAGE, "line %zu: section [%s] given twice (first on line %zu)",
						     lineno, name, c->ent[j].line);
		*section = name;
		/* a marker entry records where the section starts */
		creto_conf_entry m = {.section = name, .name = "", .str = "", .line = lineno};
		return add(c, &m, e);
	}
	if (*section == NULL)
		return creto_err_set(e, CRETO_EUSAGE, "line %zu: a value before any [section]", lineno);
	char *eq = strchr(s, '=');
	if (eq == NULL)
		return creto_err_set(e, CRETO_EUSAGE, "line %zu: expected 'key = value'", lineno);
	*eq = '\0';
	char *lhs = trim(s), *val = trim(eq + 1);
	char *arg = NULL;
	char *sp = strpbrk(lhs, " \t");
	if (sp != NULL) {
		*sp = '\0';
		arg = trim(sp + 1);
		if (!arg_ok(arg))
			return creto_err_set(e, CRETO_EUSAGE, "line %zu: %.32s: bad name '%.64s'", lineno, lhs, arg);
	}
	if (!ident_ok(lhs))
		return creto_err_set(e, CRETO_EUSAGE, "line %zu: bad key '%.32s'", lineno, lhs);
	if (*val == '\0')
		return creto_err_set(e, CRETO_EUSAGE, "line %zu: %s: empty value", lineno, lhs);
	if (!value_ok(val))
		return creto_err_set(e, CRETO_EUSAGE, "line %zu: %s: control character in value", lineno, lhs);
	const creto_conf_key *k = NULL;
	int opaque = 0;
	for (size_t i = 0; i < nschema; i++) {
		if (strcmp(schema[i].section, *section) != 0)
			continue;
		if (schema[i].key == NULL)
			opaque = 1;
		else if (strcmp(schema[i].key, lhs) == 0)
			k = &schema[i];
	}
	creto_conf_entry en = {.key = k, .section = *section, .name = lhs, .arg = arg, .str = val,
			       .line = lineno};
	if (k == NULL) {
		if (!opaque)
			return creto_err_set(e, CRETO_EUSAGE, "line %zu: unknown key '%s' in [%s]", lineno, lhs,
					     *section);
		return add(c, &en, e);
	}
	if ((k->flags & CRETO_CONF_NAMED) && arg == NULL)
		return creto_err_set(e, CRETO_EUSAGE, "line %zu: %s: want '%s NAME = value'", lineno, lhs, lhs);
	if (!(k->flags & CRETO_CONF_NAMED) && arg != NULL)
		return creto_err_set(e, CRETO_EUSAGE, "line %zu: %s takes no name", lineno, lhs);
	for (size_t j = 0; j < c->n; j++) {
		const creto_conf_entry *o = &c->ent[j];
		if (o->key != k)
			continue;
		if (!(k->flags & CRETO_CONF_MULTI) &&
		    (!(k->flags & CRETO_CONF_NAMED) || strcmp(o->arg, arg) == 0))
			return creto_err_set(e, CRETO_EUSAGE, "line %zu: %s%s%s given twice (first on line %zu)",
					     lineno, lhs, arg ? " " : "", arg ? arg : "", o->line);
	}
	int rc = typed(&en, k, e);
	if (rc != CRETO_OK)
		return rc;
	return add(c, &en, e);
}

int creto_conf_parse(const char *text, size_t len, const creto_conf_key *schema, size_t nschema,
		     creto_conf **out, creto_err *e)
{
	*out = NULL;
	if (len > CRETO_CONF_MAX)
		return creto_err_set(e, CRETO_EUSAGE, "longer than %u bytes", CRETO_CONF_MAX);
	creto_conf *c = calloc(1, sizeof(*c));
	if (c == NULL || (c->text = malloc(len + 1)) == NULL) {
		free(c);
		return creto_err_set(e, CRETO_EOP, "out of memory");
	}
	memcpy(c->text, text, len);
	c->text[len] = '\0';
	const char *section = NULL;
	size_t lineno = 0, pos = 0;
	int rc = CRETO_OK;
	while (pos < len && rc == CRETO_OK) {
		lineno++;
		char *l = c->text + pos;
		char *nl = memchr(l, '\n', len - pos);
		size_t ll = nl != NULL ? (size_t)(nl - l) : len - pos;
		pos += ll + (nl != NULL);
		if (ll > CRETO_CONF_LINE_MAX) {
			rc = creto_err_set(e, CRETO_EUSAGE, "line %zu: longer than %d bytes", lineno,
					   CRETO_CONF_LINE_MAX);
			break;
		}
		if (memchr(l, '\0', ll) != NULL) {
			rc = creto_err_set(e, CRETO_EUSAGE, "line %zu: NUL byte", lineno);
			break;
		}
		l[ll] = '\0';
		rc = line(c, l, lineno, &section, schema, nschema, e);
	}
	if (rc != CRETO_OK) {
		creto_conf_free(c);
		return rc;
	}
	*out = c;
	return CRETO_OK;
}

int creto_conf_load(const char *path, const creto_conf_key *schema, size_t nschema,
		    creto_conf **out, creto_err *e)
{
	*out = NULL;
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = creto_file_read_follow(path, CRETO_CONF_MAX, &buf, &len, e);
	if (rc != CRETO_OK) {
		if (e != NULL)
			e->code = CRETO_EUSAGE;
		return e != NULL ? creto_err_ctx(e, "config %s", path) : CRETO_EUSAGE;
	}
	rc = creto_conf_parse((const char *)buf, len, schema, nschema, out, e);
	free(buf);
	if (rc != CRETO_OK)
		return creto_err_ctx(e, "config %s", path);
	return CRETO_OK;
}
