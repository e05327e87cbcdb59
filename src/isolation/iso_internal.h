/*
 * iso_internal.h - what the files of src/isolation share and nobody else
 * sees: the netlink readers, the probes, and report building.
 */
#ifndef CRETO_ISO_INTERNAL_H
#define CRETO_ISO_INTERNAL_H

#include "creto/isolation.h"

/* Every unicast route of every table for family (AF_INET / AF_INET6),
 * appended to out.  CRETO_EOP when netlink is unavailable. */
int iso_netlink_routes(int family, creto_iso_routes *out, creto_err *e) CRETO_WUR;

/* Append one route to r (growing it); CRETO_EOP when out of memory. */
int iso_routes_push(creto_iso_routes *r, const creto_iso_route *rt, creto_err *e) CRETO_WUR;

/* Links that could carry a packet out of this namespace: anything that is
 * not loopback and not a veth whose peer is in this same namespace.  Their
 * names are written, comma-separated, to bad (empty when none).
 * CRETO_EOP when netlink is unavailable. */
int iso_netlink_escaping_links(char *bad, size_t badlen, creto_err *e) CRETO_WUR;

/* Append one finding; on allocation failure CRETO_EOP. */
int iso_report_add(creto_iso_report *r, const char *kind, int result, const char *key, const char *fmt,
		   ...) CRETO_WUR CRETO_PRINTF(5, 6);

/* Run the active probes of cfg concurrently, adding one item per probe. */
int iso_run_probes(const creto_iso_config *cfg, creto_iso_report *r, creto_err *e) CRETO_WUR;

/* Monotonic milliseconds. */
uint64_t iso_now_ms(void);

#endif
