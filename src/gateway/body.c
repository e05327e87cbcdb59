/*
 * body.c - the request body's members the gateway acts on (body.h).
 */
#include "gateway/body.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/jsonscan.h"

int gw_body_scan(const char *body, size_t len, const char *prompt_key, gw_body *b, char *err,
		 size_t errsz)
{
	creto_json_object o;
	creto_err e;
	creto_err_clear(&e);
	if (creto_json_object_scan("body", body, len, &o, &e) != CRETO_OK) {
		if (strstr(e.msg, "over the limit") != NULL)
			return 2;
		snprintf(err, errsz, "%.180s", e.msg);
		return 1;
	}
	const creto_json_value *v = creto_json_get(&o, "model");
	size_t ml = 0;
	b->model_ok = v && v->type == CRETO_JSON_STRING &&
		      creto_json_string(v, b->model, sizeof(b->model), &ml) == 0 && ml > 0;
	b->mt_key = "max_completion_tokens";
	if ((v = creto_json_get(&o, "max_completion_tokens")) == NULL) {
		b->mt_key = "max_tokens";
		v = creto_json_get(&o, "max_tokens");
	}
	if (v && v->type != CRETO_JSON_NULL &&
	    (v->type != CRETO_JSON_INTEGER || creto_json_int64(v, &b->mt) != 0 || b->mt < 0))
		b->mt_bad = 1;
	v = creto_json_get(&o, "stream");
	b->stream = v && v->type == CRETO_JSON_TRUE;
	v = creto_json_get(&o, "stream_options");
	b->so_absent = v == NULL || v->type == CRETO_JSON_NULL;
	b->so_object = v && v->type == CRETO_JSON_OBJECT;
	if (b->so_object) {
		/* valid already (the outer scan checked it); it can only be
		 * beyond the limits, and then jansson must read it, or an
		 * include_usage the client asked for would go unseen */
		creto_json_object so;
		if (creto_json_object_scan("stream_options", v->p, v->n, &so, &e) != CRETO_OK)
			return 2;
		const creto_json_value *iu = creto_json_get(&so, "include_usage");
		b->include_usage = iu && iu->type == CRETO_JSON_TRUE;
	}
	if ((v = creto_json_get(&o, prompt_key)) != NULL) {
		b->prompt = v->p;
		b->prompt_len = v->n;
	}
	return 0;
}

int gw_body_jansson(const char *body, size_t len, const char *prompt_key, gw_body *b, char *err,
		    size_t errsz)
{
	json_error_t je;
	json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	if (o == NULL || !json_is_object(o)) {
		snprintf(err, errsz, "%.180s", o ? "not a JSON object" : je.text);
		json_decref(o);
		return 1;
	}
	json_t *jm = json_object_get(o, "model");
	if (json_is_string(jm) && json_string_length(jm) > 0 && json_string_length(jm) <= GW_MODEL_NAME_MAX &&
	    strlen(json_string_value(jm)) == json_string_length(jm)) {
		b->model_ok = 1;
		memcpy(b->model, json_string_value(jm), json_string_length(jm) + 1);
	}
	b->mt_key = "max_completion_tokens";
	json_t *mt = json_object_get(o, "max_completion_tokens");
	if (mt == NULL) {
		b->mt_key = "max_tokens";
		mt = json_object_get(o, "max_tokens");
	}
	if (mt && !json_is_null(mt)) {
		if (!json_is_integer(mt) || json_integer_value(mt) < 0)
			b->mt_bad = 1;
		else
			b->mt = json_integer_value(mt);
	}
	b->stream = json_is_true(json_object_get(o, "stream"));
	json_t *so = json_object_get(o, "stream_options");
	b->so_absent = so == NULL || json_is_null(so);
	b->so_object = json_is_object(so);
	b->include_usage = b->so_object && json_is_true(json_object_get(so, "include_usage"));
	json_t *pr = json_object_get(o, prompt_key);
	if (pr && (b->prompt_owned = json_dumps(pr, JSON_COMPACT | JSON_ENCODE_ANY)) != NULL) {
		b->prompt = b->prompt_owned;
		b->prompt_len = strlen(b->prompt_owned);
	}
	json_decref(o);
	return 0;
}

static void body_reset(gw_body *b)
{
	memset(b, 0, sizeof(*b));
	b->mt = -1;
}

int gw_body_read(const char *body, size_t len, const char *prompt_key, gw_body *b, char *err,
		 size_t errsz)
{
	body_reset(b);
	if (len == 0) {
		snprintf(err, errsz, "empty body");
		return 1;
	}
	int rc = gw_body_scan(body, len, prompt_key, b, err, errsz);
	if (rc == 2) {
		body_reset(b);
		rc = gw_body_jansson(body, len, prompt_key, b, err, errsz);
	}
	return rc;
}

void gw_body_clear(gw_body *b)
{
	free(b->prompt_owned);
	b->prompt_owned = NULL;
	b->prompt = NULL;
}
