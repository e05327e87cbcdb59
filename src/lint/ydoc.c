/*
 * ydoc.c - the bounded YAML loader of creto lint (ydoc.h).  libyaml's event
 * parser does the syntax; this file builds the trees and enforces the
 * bounds: nodes per file, nesting, scalar size, alias expansion per
 * document, merge depth, scalar-only and unique mapping keys.
 */
#include "lint/ydoc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "creto/lint.h"
#include "util/escape.h"

#define MERGE_DEPTH_MAX 32u
#define ARENA_CHUNK 65536u

struct chunk {
	struct chunk *next;
	size_t used, cap;
	max_align_t data[];
};

struct yfile {
	struct chunk *chunks;
	ydoc *docs;
	size_t ndocs, capdocs;
};

struct frame {
	ynode *node;
	ynode **items;
	size_t n, cap;
	size_t expanded;
	unsigned mdepth;
	char *anchor; /* malloc'ed, registered when the node completes */
};

struct anchor {
	const char *name; /* arena */
	ynode *node;
};

struct builder {
	yfile *f;
	struct frame stack[CRETO_LINT_DEPTH_MAX];
	size_t depth;
	struct anchor *anchors; /* open addressing, power-of-two capacity */
	size_t nanchors, capanchors;
	size_t nodes;
	size_t file_expanded; /* all documents so far */
	ynode *root;
	creto_err *e;
};

static void *arena_alloc(yfile *f, size_t size)
{
	size = (size + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
	struct chunk *c = f->chunks;
	if (c == NULL || c->cap - c->used < size) {
		size_t cap = size > ARENA_CHUNK ? size : ARENA_CHUNK;
		c = malloc(sizeof(*c) + cap);
		if (c == NULL)
			return NULL;
		c->cap = cap;
		c->used = 0;
		/* a dedicated chunk for a big block goes behind the current one,
		 * so the current one keeps its free space */
		if (size > ARENA_CHUNK && f->chunks != NULL) {
			c->next = f->chunks->next;
			f->chunks->next = c;
		} else {
			c->next = f->chunks;
			f->chunks = c;
		}
	}
	void *p = (char *)c->data + c->used;
	c->used += size;
	return p;
}

static int fail(struct builder *b, const yaml_mark_t *m, int code, const char *fmt, ...) CRETO_PRINTF(4, 5);
static int fail(struct builder *b, const yaml_mark_t *m, int code, const char *fmt, ...)
{
	char msg[CRETO_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (m != NULL)
		return creto_err_set(b->e, code, "%lu:%lu: %s", (unsigned long)m->line + 1,
				     (unsigned long)m->column + 1, msg);
	return creto_err_set(b->e, code, "%s", msg);
}

static size_t hash_name(const char *s)
{
	size_t h = 1469598103934665603u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211u;
	return h;
}

static ynode *anchor_find(const struct builder *b, const char *name)
{
	if (b->capanchors == 0)
		return NULL;
	size_t mask = b->capanchors - 1;
	for (size_t i = hash_name(name) & mask;; i = (i + 1) & mask) {
		if (b->anchors[i].name == NULL)
			return NULL;
		if (strcmp(b->anchors[i].name, name) == 0)
			return b->anchors[i].node;
	}
}

static int anchor_put(struct builder *b, const char *name, ynode *node)
{
	if ((b->nanchors + 1) * 2 > b->capanchors) {
		size_t cap = b->capanchors ? b->capanchors * 2 : 64;
		struct anchor *t = calloc(cap, sizeof(*t));
		if (t == NULL)
			return -1;
		for (size_t j = 0; j < b->capanchors; j++) {
			if (b->anchors[j].name == NULL)
				continue;
			size_t i = hash_name(b->anchors[j].name) & (cap - 1);
			while (t[i].name != NULL)
				i = (i + 1) & (cap - 1);
			t[i] = b->anchors[j];
		}
		free(b->anchors);
		b->anchors = t;
		b->capanchors = cap;
	}
	size_t mask = b->capanchors - 1;
	size_t i = hash_name(name) & mask;
	for (; b->anchors[i].name != NULL; i = (i + 1) & mask)
		if (strcmp(b->anchors[i].name, name) == 0) {
			b->anchors[i].node = node; /* YAML: a redefined anchor wins from here on */
			return 0;
		}
	size_t len = strlen(name);
	char *copy = arena_alloc(b->f, len + 1);
	if (copy == NULL)
		return -1;
	memcpy(copy, name, len + 1);
	b->anchors[i].name = copy;
	b->anchors[i].node = node;
	b->nanchors++;
	return 0;
}

static void anchors_reset(struct builder *b)
{
	free(b->anchors);
	b->anchors = NULL;
	b->nanchors = b->capanchors = 0;
}

static int is_merge_key(const ynode *k)
{
	return k->type == YN_SCALAR && k->plain && k->n == 2 && memcmp(k->str, "<<", 2) == 0;
}

/* A finished node (new or an alias target) joins its parent, or becomes
 * the document's root. */
static int attach(struct builder *b, ynode *node, const yaml_mark_t *m)
{
	if (b->depth == 0) {
		b->root = node;
		b->file_expanded += node->expanded;
		if (b->file_expanded > CRETO_LINT_EXPANDED_MAX)
			return fail(b, m, CRETO_EREJECT, "alias expansion exceeds %u nodes", CRETO_LINT_EXPANDED_MAX);
		return CRETO_OK;
	}
	struct frame *fr = &b->stack[b->depth - 1];
	if (fr->node->type == YN_MAP) {
		if (fr->n % 2 == 0 && node->type != YN_SCALAR)
			return fail(b, m, CRETO_EREJECT, "mapping key is not a scalar");
		if (fr->n % 2 == 1 && is_merge_key(fr->items[fr->n - 1])) {
			unsigned md = 0;
			if (node->type == YN_MAP) {
				md = node->mdepth;
			} else if (node->type == YN_SEQ) {
				for (size_t i = 0; i < node->n; i++) {
					if (node->items[i]->type != YN_MAP)
						return fail(b, m, CRETO_EREJECT, "merge key '<<' wants mappings");
					if (node->items[i]->mdepth > md)
						md = node->items[i]->mdepth;
				}
			} else {
				return fail(b, m, CRETO_EREJECT, "merge key '<<' wants a mapping");
			}
			if (md + 1 > MERGE_DEPTH_MAX)
				return fail(b, m, CRETO_EREJECT, "merge keys nested deeper than %u", MERGE_DEPTH_MAX);
			if (md + 1 > fr->mdepth)
				fr->mdepth = md + 1;
		}
	}
	if (fr->n == fr->cap) {
		size_t cap = fr->cap ? fr->cap * 2 : 8;
		ynode **t = realloc(fr->items, cap * sizeof(*t));
		if (t == NULL)
			return creto_err_errno(b->e, ENOMEM, "yaml");
		fr->items = t;
		fr->cap = cap;
	}
	fr->items[fr->n++] = node;
	fr->expanded += node->expanded;
	if (b->file_expanded + fr->expanded > CRETO_LINT_EXPANDED_MAX)
		return fail(b, m, CRETO_EREJECT, "alias expansion exceeds %u nodes", CRETO_LINT_EXPANDED_MAX);
	return CRETO_OK;
}

static ynode *new_node(struct builder *b, yn_type t, const yaml_mark_t *m)
{
	ynode *n = arena_alloc(b->f, sizeof(*n));
	if (n == NULL)
		return NULL;
	memset(n, 0, sizeof(*n));
	n->type = (uint8_t)t;
	n->line = (uint32_t)(m->line + 1);
	n->col = (uint32_t)(m->column + 1);
	n->expanded = 1;
	return n;
}

static int count_node(struct builder *b, const yaml_mark_t *m)
{
	if (++b->nodes > CRETO_LINT_NODES_MAX)
		return fail(b, m, CRETO_EREJECT, "more than %u YAML nodes", CRETO_LINT_NODES_MAX);
	return CRETO_OK;
}

static int register_anchor(struct builder *b, const char *anchor, ynode *node)
{
	if (anchor != NULL && anchor_put(b, anchor, node) != 0)
		return creto_err_errno(b->e, ENOMEM, "yaml");
	return CRETO_OK;
}

static int on_scalar(struct builder *b, const yaml_event_t *ev)
{
	const yaml_mark_t *m = &ev->start_mark;
	int rc = count_node(b, m);
	if (rc != CRETO_OK)
		return rc;
	size_t len = ev->data.scalar.length;
	if (len > CRETO_LINT_SCALAR_MAX)
		return fail(b, m, CRETO_EREJECT, "scalar of %zu bytes exceeds %u", len, CRETO_LINT_SCALAR_MAX);
	ynode *n = new_node(b, YN_SCALAR, m);
	char *s = n ? arena_alloc(b->f, len + 1) : NULL;
	if (s == NULL)
		return creto_err_errno(b->e, ENOMEM, "yaml");
	memcpy(s, ev->data.scalar.value, len);
	s[len] = '\0';
	n->str = s;
	n->n = len;
	n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
	/* rules read scalars as text: long ones weigh more, so that aliases of a
	 * big scalar cannot multiply the bytes the rules go through */
	n->expanded = 1 + len / 64;
	rc = attach(b, n, m);
	if (rc != CRETO_OK)
		return rc;
	return register_anchor(b, (const char *)ev->data.scalar.anchor, n);
}

static int on_start(struct builder *b, const yaml_event_t *ev, yn_type t, const yaml_char_t *anchor)
{
	const yaml_mark_t *m = &ev->start_mark;
	int rc = count_node(b, m);
	if (rc != CRETO_OK)
		return rc;
	if (b->depth >= CRETO_LINT_DEPTH_MAX)
		return fail(b, m, CRETO_EREJECT, "nested deeper than %u levels", CRETO_LINT_DEPTH_MAX);
	ynode *n = new_node(b, t, m);
	if (n == NULL)
		return creto_err_errno(b->e, ENOMEM, "yaml");
	struct frame *fr = &b->stack[b->depth];
	memset(fr, 0, sizeof(*fr));
	fr->node = n;
	fr->expanded = 1;
	if (anchor != NULL && (fr->anchor = strdup((const char *)anchor)) == NULL)
		return creto_err_errno(b->e, ENOMEM, "yaml");
	b->depth++;
	return CRETO_OK;
}

static int key_cmp(const void *a, const void *b)
{
	const ynode *x = *(const ynode *const *)a, *y = *(const ynode *const *)b;
	if (x->n != y->n)
		return x->n < y->n ? -1 : 1;
	int c = memcmp(x->str, y->str, x->n);
	if (c != 0)
		return c;
	return x->line < y->line ? -1 : x->line > y->line;
}

/* Duplicate keys: sort a copy of the keys, compare neighbours. */
static int check_duplicates(struct builder *b, const struct frame *fr)
{
	size_t nk = fr->n / 2;
	if (nk < 2)
		return CRETO_OK;
	const ynode **keys = malloc(nk * sizeof(*keys));
	if (keys == NULL)
		return creto_err_errno(b->e, ENOMEM, "yaml");
	for (size_t i = 0; i < nk; i++)
		keys[i] = fr->items[2 * i];
	qsort(keys, nk, sizeof(*keys), key_cmp);
	int rc = CRETO_OK;
	for (size_t i = 1; i < nk; i++) {
		if (keys[i]->n == keys[i - 1]->n && memcmp(keys[i]->str, keys[i - 1]->str, keys[i]->n) == 0) {
			char k[96];
			creto_escape(k, sizeof(k), keys[i]->str, keys[i]->n > 64 ? 64 : keys[i]->n);
			rc = creto_err_set(b->e, CRETO_EREJECT, "%lu:%lu: duplicate key '%s' (first at line %lu)",
					   (unsigned long)keys[i]->line, (unsigned long)keys[i]->col, k,
					   (unsigned long)keys[i - 1]->line);
			break;
		}
	}
	free(keys);
	return rc;
}

static int on_end(struct builder *b, const yaml_event_t *ev)
{
	if (b->depth == 0)
		return fail(b, &ev->start_mark, CRETO_EREJECT, "unbalanced end of collection");
	struct frame *fr = &b->stack[b->depth - 1];
	ynode *n = fr->node;
	int rc = CRETO_OK;
	if (n->type == YN_MAP) {
		if (fr->n % 2 != 0)
			return fail(b, &ev->start_mark, CRETO_EREJECT, "mapping without a value");
		if ((rc = check_duplicates(b, fr)) != CRETO_OK)
			return rc;
	}
	if (fr->n > 0) {
		n->items = arena_alloc(b->f, fr->n * sizeof(*n->items));
		if (n->items == NULL)
			return creto_err_errno(b->e, ENOMEM, "yaml");
		memcpy(n->items, fr->items, fr->n * sizeof(*n->items));
	}
	n->n = n->type == YN_MAP ? fr->n / 2 : fr->n;
	n->expanded = fr->expanded;
	n->mdepth = fr->mdepth;
	char *anchor = fr->anchor;
	free(fr->items);
	fr->items = NULL;
	fr->anchor = NULL;
	b->depth--;
	rc = attach(b, n, &ev->start_mark);
	if (rc == CRETO_OK)
		rc = register_anchor(b, anchor, n);
	free(anchor);
	return rc;
}

static int on_alias(struct builder *b, const yaml_event_t *ev)
{
	const yaml_mark_t *m = &ev->start_mark;
	int rc = count_node(b, m);
	if (rc != CRETO_OK)
		return rc;
	const char *name = (const char *)ev->data.alias.anchor;
	ynode *target = anchor_find(b, name);
	if (target == NULL) {
		char a[96];
		creto_escape(a, sizeof(a), name, strnlen(name, 64));
		return fail(b, m, CRETO_EREJECT, "alias '*%s' names no earlier anchor", a);
	}
	return attach(b, target, m);
}

static int add_doc(struct builder *b, uint32_t line)
{
	yfile *f = b->f;
	if (f->ndocs == f->capdocs) {
		size_t cap = f->capdocs ? f->capdocs * 2 : 4;
		ydoc *t = realloc(f->docs, cap * sizeof(*t));
		if (t == NULL)
			return creto_err_errno(b->e, ENOMEM, "yaml");
		f->docs = t;
		f->capdocs = cap;
	}
	f->docs[f->ndocs].root = b->root;
	f->docs[f->ndocs].line = line;
	f->ndocs++;
	return CRETO_OK;
}

int ydoc_load(const void *data, size_t len, yfile **out, creto_err *e)
{
	*out = NULL;
	if (len > CRETO_LINT_FILE_MAX)
		return creto_err_set(e, CRETO_EREJECT, "larger than %u bytes", CRETO_LINT_FILE_MAX);
	struct builder b;
	memset(&b, 0, sizeof(b));
	b.e = e;
	b.f = calloc(1, sizeof(*b.f));
	if (b.f == NULL)
		return creto_err_errno(e, ENOMEM, "yaml");
	yaml_parser_t p;
	if (!yaml_parser_initialize(&p)) {
		free(b.f);
		return creto_err_errno(e, ENOMEM, "yaml");
	}
	yaml_parser_set_input_string(&p, data, len);
	int rc = CRETO_OK, done = 0;
	uint32_t doc_line = 1;
	while (!done && rc == CRETO_OK) {
		yaml_event_t ev;
		if (!yaml_parser_parse(&p, &ev)) {
			if (p.error == YAML_MEMORY_ERROR) {
				rc = creto_err_errno(e, ENOMEM, "yaml");
			} else {
				rc = creto_err_set(e, CRETO_EREJECT, "%lu:%lu: %s%s%s", (unsigned long)p.problem_mark.line + 1,
						   (unsigned long)p.problem_mark.column + 1,
						   p.problem ? p.problem : "malformed YAML", p.context ? " " : "",
						   p.context ? p.context : "");
			}
			break;
		}
		switch (ev.type) {
		case YAML_STREAM_END_EVENT: done = 1; break;
		case YAML_DOCUMENT_START_EVENT:
			anchors_reset(&b);
			b.root = NULL;
			doc_line = (uint32_t)(ev.start_mark.line + 1);
			break;
		case YAML_DOCUMENT_END_EVENT: rc = add_doc(&b, doc_line); break;
		case YAML_SCALAR_EVENT: rc = on_scalar(&b, &ev); break;
		case YAML_SEQUENCE_START_EVENT: rc = on_start(&b, &ev, YN_SEQ, ev.data.sequence_start.anchor); break;
		case YAML_MAPPING_START_EVENT: rc = on_start(&b, &ev, YN_MAP, ev.data.mapping_start.anchor); break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT: rc = on_end(&b, &ev); break;
		case YAML_ALIAS_EVENT: rc = on_alias(&b, &ev); break;
		default: break;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&p);
	for (size_t i = 0; i < b.depth; i++) {
		free(b.stack[i].items);
		free(b.stack[i].anchor);
	}
	anchors_reset(&b);
	if (rc != CRETO_OK) {
		ydoc_free(b.f);
		return rc;
	}
	*out = b.f;
	return CRETO_OK;
}

size_t ydoc_count(const yfile *f)
{
	return f ? f->ndocs : 0;
}

const ydoc *ydoc_get(const yfile *f, size_t i)
{
	return f && i < f->ndocs ? &f->docs[i] : NULL;
}

void ydoc_free(yfile *f)
{
	if (f == NULL)
		return;
	for (struct chunk *c = f->chunks, *next; c != NULL; c = next) {
		next = c->next;
		free(c);
	}
	free(f->docs);
	free(f);
}

static int key_is(const ynode *k, const char *key, size_t klen)
{
	return k->type == YN_SCALAR && k->n == klen && memcmp(k->str, key, klen) == 0;
}

static const ynode *get_len(const ynode *m, const char *key, size_t klen)
{
	if (m == NULL || m->type != YN_MAP)
		return NULL;
	const ynode *merge = NULL;
	for (size_t i = 0; i < m->n; i++) {
		const ynode *k = m->items[2 * i];
		if (key_is(k, key, klen) && !is_merge_key(k))
			return m->items[2 * i + 1];
		if (is_merge_key(k))
			merge = m->items[2 * i + 1];
	}
	if (merge == NULL)
		return NULL;
	/* merge depth is bounded at load, so this recursion is too */
	if (merge->type == YN_MAP)
		return get_len(merge, key, klen);
	for (size_t i = 0; i < merge->n; i++) {
		const ynode *v = get_len(merge->items[i], key, klen);
		if (v != NULL)
			return v;
	}
	return NULL;
}

const ynode *yget(const ynode *m, const char *key)
{
	return get_len(m, key, strlen(key));
}

const ynode *ypath(const ynode *m, ...)
{
	va_list ap;
	va_start(ap, m);
	const char *k;
	while (m != NULL && (k = va_arg(ap, const char *)) != NULL)
		m = yget(m, k);
	va_end(ap);
	return m;
}

const char *ystr(const ynode *n)
{
	if (n == NULL || n->type != YN_SCALAR)
		return NULL;
	if (n->plain && (n->n == 0 || strcmp(n->str, "~") == 0 || strcmp(n->str, "null") == 0 ||
			 strcmp(n->str, "Null") == 0 || strcmp(n->str, "NULL") == 0))
		return NULL;
	return n->str;
}

static int one_of(const char *s, const char *const *set)
{
	for (; *set != NULL; set++)
		if (strcmp(s, *set) == 0)
			return 1;
	return 0;
}

int ytrue(const ynode *n)
{
	static const char *const t[] = {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON", "y", "Y", NULL};
	const char *s = ystr(n);
	return s != NULL && one_of(s, t);
}

int yfalse(const ynode *n)
{
	static const char *const f[] = {"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF", "n", "N", NULL};
	const char *s = ystr(n);
	return s != NULL && one_of(s, f);
}

size_t yseq_len(const ynode *n)
{
	return n != NULL && n->type == YN_SEQ ? n->n : 0;
}

const ynode *yseq_at(const ynode *n, size_t i)
{
	return i < yseq_len(n) ? n->items[i] : NULL;
}

static int each(const ynode *top, const ynode *m, ymap_cb cb, void *ctx)
{
	const ynode *merge = NULL;
	for (size_t i = 0; i < m->n; i++) {
		const ynode *k = m->items[2 * i];
		if (is_merge_key(k)) {
			merge = m->items[2 * i + 1];
			continue;
		}
		const ynode *v = m->items[2 * i + 1];
		/* a pair merged from below counts only when it is what a lookup
		 * from the top finds */
		if (m != top && get_len(top, k->str, k->n) != v)
			continue;
		if (cb(k, v, ctx))
			return 1;
	}
	if (merge == NULL)
		return 0;
	if (merge->type == YN_MAP)
		return each(top, merge, cb, ctx);
	for (size_t i = 0; i < merge->n; i++)
		if (each(top, merge->items[i], cb, ctx))
			return 1;
	return 0;
}

void ymap_each(const ynode *m, ymap_cb cb, void *ctx)
{
	if (m != NULL && m->type == YN_MAP)
		(void)each(m, m, cb, ctx);
}
