/*
 * config.c - the isolation config file: "key = value" lines, documented in
 * docs/isolation.md, and the built-in defaults (including the public probe
 * targets used when the file names none).
 */
#include "creto/isolation.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/file.h"

/* The default active probe targets: well-known public anycast resolvers
 * that a connected network always reaches.  Documented in docs/isolation.md;
 * change both together. */
static const char *const k_default_names[] = {"example.com", "www.iana.org"};
static const char *const k_default_resolvers[] = {"1.1.1.1", "8.8.8.8", "9.9.9.9",
						   "2606:4700:4700::1111", "2001:4860:4860::8888"};
static const char *const k_default_canaries[] = {"1.1.1.1:443", "8.8.8.8:443", "9.9.9.9:443",
						  "[2606:4700:4700::1111]:443",
						  "[2001:4860:4860::8888]:443"};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

void creto_iso_config_default(creto_iso_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->timeout_ms = CRETO_ISO_TIMEOUT_MS;
	cfg->link_local_internal = 1;
	snprintf(cfg->resolv_conf, sizeof(cfg->resolv_conf), "/etc/resolv.conf");
	for (size_t i = 0; i < N_OF(k_default_names); i++)
		snprintf(cfg->dns_name[cfg->n_dns_name++], CRETO_ISO_NAME_MAX + 1, "%s", k_default_names[i]);
	for (size_t i = 0; i < N_OF(k_default_resolvers); i++)
		if (creto_iso_endpoint_parse(k_default_resolvers[i], 53, &cfg->resolver[cfg->n_resolver]) == 0)
			cfg->n_resolver++;
	for (size_t i = 0; i < N_OF(k_default_canaries); i++)
		if (creto_iso_endpoint_parse(k_default_canaries[i], 0, &cfg->canary[cfg->n_canary]) == 0)
			cfg->n_canary++;
}

/* A DNS name: labels of letters, digits, '-' and '_', 1..63 bytes each,
 * at most 253 bytes, one optional trailing dot. */
static int valid_dns_name(const char *s)
{
	size_t n = strlen(s);
	if (n > 0 && s[n - 1] == '.')
		n--;
	if (n == 0 || n > CRETO_ISO_NAME_MAX)
		return 0;
	size_t label = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.') {
			if (label == 0)
				return 0;
			label = 0;
			continue;
		}
		if (!isalnum(c) && c != '-' && c != '_')
			return 0;
		if (++label > 63)
			return 0;
	}
	return label > 0;
}

/* Duration for the timeout: "2s", "1500ms", "2" (seconds). */
static int parse_timeout_ms(const char *s, unsigned *out)
{
	if (*s < '0' || *s > '9' || strlen(s) > 12)
		return -1;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (strcmp(end, "ms") == 0)
		;
	else if (strcmp(end, "s") == 0 || *end == '\0')
		v *= 1000;
	else
		return -1;
	if (v < 100 || v > CRETO_ISO_TIMEOUT_MAX_MS)
		return -1;
	*out = (unsigned)v;
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

/* The first value of a list key replaces its defaults (cfg->set_lists
 * remembers which were given), so a config says exactly which targets it
 * probes. */
enum { SET_ALLOW = 1, SET_CANARY = 2, SET_RESOLVER = 4, SET_DNS_NAME = 8 };

static int first_set(creto_iso_config *cfg, unsigned bit)
{
	int first = !(cfg->set_lists & bit);
	cfg->set_lists |= bit;
	return first;
}

int creto_iso_config_set(creto_iso_config *cfg, const char *key, const char *val, creto_err *e)
{
	int none = strcmp(val, "none") == 0;
	if (strcmp(key, "allow") == 0) {
		if (first_set(cfg, SET_ALLOW))
			cfg->n_allow = 0;
		if (none)
			return CRETO_OK;
		if (cfg->n_allow == CRETO_ISO_MAX_ITEMS)
			return creto_err_set(e, CRETO_EUSAGE, "more than %d allow entries",
					     CRETO_ISO_MAX_ITEMS);
		if (creto_iso_prefix_parse(val, &cfg->allow[cfg->n_allow]) != 0)
			return creto_err_set(e, CRETO_EUSAGE, "allow: bad prefix '%.64s'", val);
		cfg->n_allow++;
	} else if (strcmp(key, "canary") == 0 || strcmp(key, "resolver") == 0) {
		int is_canary = key[0] == 'c';
		creto_iso_endpoint *list = is_canary ? cfg->canary : cfg->resolver;
		size_t *n = is_canary ? &cfg->n_canary : &cfg->n_resolver;
		if (first_set(cfg, is_canary ? SET_CANARY : SET_RESOLVER))
			*n = 0;
		if (none)
			return CRETO_OK;
		if (*n == CRETO_ISO_MAX_ITEMS)
			return creto_err_set(e, CRETO_EUSAGE, "more than %d %s entries",
					     CRETO_ISO_MAX_ITEMS, key);
		if (creto_iso_endpoint_parse(val, is_canary ? 0 : 53, &list[*n]) != 0)
			return creto_err_set(e, CRETO_EUSAGE, "%s: bad address%s '%.64s'", key,
					     is_canary ? ":port" : "", val);
		(*n)++;
	} else if (strcmp(key, "dns_name") == 0) {
		if (first_set(cfg, SET_DNS_NAME))
			cfg->n_dns_name = 0;
		if (none)
			return CRETO_OK;
		if (cfg->n_dns_name == CRETO_ISO_MAX_ITEMS)
			return creto_err_set(e, CRETO_EUSAGE, "more than %d dns_name entries",
					     CRETO_ISO_MAX_ITEMS);
		if (!valid_dns_name(val))
			return creto_err_set(e, CRETO_EUSAGE, "dns_name: bad name '%.64s'", val);
		snprintf(cfg->dns_name[cfg->n_dns_name++], CRETO_ISO_NAME_MAX + 1, "%s", val);
	} else if (strcmp(key, "timeout") == 0) {
		if (parse_timeout_ms(val, &cfg->timeout_ms) != 0)
			return creto_err_set(e, CRETO_EUSAGE,
					     "timeout: '%.32s' is not 100ms..60s (e.g. 2s, 500ms)", val);
	} else if (strcmp(key, "resolv_conf") == 0) {
		if (val[0] != '/' || strlen(val) >= sizeof(cfg->resolv_conf))
			return creto_err_set(e, CRETO_EUSAGE, "resolv_conf: need an absolute path");
		snprintf(cfg->resolv_conf, sizeof(cfg->resolv_conf), "%s", val);
		cfg->resolv_conf_set = 1;
	} else if (strcmp(key, "link_local") == 0) {
		if (strcmp(val, "internal") == 0)
			cfg->link_local_internal = 1;
		else if (strcmp(val, "external") == 0)
			cfg->link_local_internal = 0;
		else
			return creto_err_set(e, CRETO_EUSAGE, "link_local: want internal or external");
	} else {
		return creto_err_set(e, CRETO_EUSAGE, "unknown key '%.32s'", key);
	}
	return CRETO_OK;
}

int creto_iso_config_parse(creto_iso_config *cfg, const char *text, size_t len, creto_err *e)
{
	size_t lineno = 0, pos = 0;
	char line[4200];
	while (pos < len) {
		lineno++;
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t ll = nl != NULL ? (size_t)(nl - (text + pos)) : len - pos;
		if (ll >= sizeof(line))
			return creto_err_set(e, CRETO_EUSAGE, "line %zu: longer than %zu bytes", lineno,
					     sizeof(line) - 1);
		memcpy(line, text + pos, ll);
		line[ll] = '\0';
		pos += ll + (nl != NULL);
		if (memchr(line, '\0', ll) != NULL)
			return creto_err_set(e, CRETO_EUSAGE, "line %zu: NUL byte", lineno);
		/* '#' at the start of a line or after a blank starts a comment */
		for (char *h = line; (h = strchr(h, '#')) != NULL; h++)
			if (h == line || h[-1] == ' ' || h[-1] == '\t') {
				*h = '\0';
				break;
			}
		char *s = trim(line);
		if (*s == '\0')
			continue;
		char *eq = strchr(s, '=');
		if (eq == NULL)
			return creto_err_set(e, CRETO_EUSAGE, "line %zu: expected 'key = value'", lineno);
		*eq = '\0';
		char *key = trim(s), *val = trim(eq + 1);
		if (*val == '\0')
			return creto_err_set(e, CRETO_EUSAGE, "line %zu: %.32s: empty value", lineno, key);
		if (creto_iso_config_set(cfg, key, val, e) != CRETO_OK)
			return creto_err_ctx(e, "line %zu", lineno);
	}
	return CRETO_OK;
}

int creto_iso_config_load(creto_iso_config *cfg, const char *path, creto_err *e)
{
	creto_iso_config_default(cfg);
	if (path == NULL)
		return CRETO_OK;
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = creto_file_read(path, CRETO_ISO_CONFIG_MAX, &buf, &len, e);
	if (rc != CRETO_OK) {
		/* an unreadable or oversized config is a configuration problem */
		if (e != NULL)
			e->code = CRETO_EUSAGE;
		return e != NULL ? creto_err_ctx(e, "config %s", path) : CRETO_EUSAGE;
	}
	rc = creto_iso_config_parse(cfg, (const char *)buf, len, e);
	free(buf);
	if (rc != CRETO_OK)
		return creto_err_ctx(e, "config %s", path);
	return CRETO_OK;
}
