/*
 * hsmha.h - `creto serve`'s signing keys through the [hsm] endpoint
 * failover (docs/hsm-remote.md, docs/serve.md "HSM endpoints"): which keys
 * go through the endpoints, the group that reaches them, its events queued
 * for the audit log, its status file and its metrics.  Internal to
 * src/serve/.
 */
#ifndef CRETO_SERVE_HSMHA_H
#define CRETO_SERVE_HSMHA_H

#include <stddef.h>

#include "creto/error.h"
#include "creto/event.h"
#include "creto/hsm.h"
#include "creto/serve.h"

/* The pkcs11: signing keys serve opens through the endpoints (when
 * cfg->n_hsm_endpoint > 0): [audit] checkpoint_key and, with a [gateway]
 * section, [gateway] issuer_key.  uris[] point into cfg; *ckpt / *issuer
 * receive their index in uris, or -1. */
size_t serve_hsm_keys(const creto_serve_config *cfg, const char *uris[2], int *ckpt, int *issuer);

/* [gateway] issuer_key ("" when not set). */
const char *serve_issuer_key(const creto_serve_config *cfg);

/* Open the group of the keys uris[0..n) through cfg's endpoints (PIN from
 * the first URI's pin-source, else [hsm] pin_file), events to sink (may be
 * NULL), no thread started (creto_hsm_ha_open_keys). */
int serve_hsm_open(const creto_serve_config *cfg, const char *const *uris, size_t n,
		   const creto_event_sink *sink, creto_hsm_ha **out, creto_err *e) CRETO_WUR;

/* The group's state as JSON (one object, docs/serve.md "HSM endpoints"),
 * malloc'ed. */
char *serve_hsm_status_json(creto_hsm_ha *g);

/* Prometheus text of the group (creto_hsm_endpoint_up and the counters),
 * malloc'ed into *out; 0 on success. */
int serve_hsm_metrics(creto_hsm_ha *g, char **out, size_t *len);

#endif
