/*
 * timeutil.h - UTC timestamps: RFC 3339 parsing/formatting, durations.
 * Times are int64_t seconds since the Unix epoch, UTC only.
 */
#ifndef CRETO_UTIL_TIMEUTIL_H
#define CRETO_UTIL_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "creto/error.h"

#define CRETO_TIME_STRLEN 21 /* "2026-11-29T21:43:28Z" + NUL */

/* Parse "YYYY-MM-DDThh:mm:ssZ" or "YYYY-MM-DD" (midnight UTC), strictly
 * (fields range-checked, nothing trailing). 0 or -1. */
int creto_time_parse(const char *s, int64_t *out) CRETO_WUR;

/* Format t as "YYYY-MM-DDThh:mm:ssZ" into out[CRETO_TIME_STRLEN]. */
void creto_time_format(int64_t t, char out[static CRETO_TIME_STRLEN]);

/* Current system time.  Never pinned: decisions take their time from a
 * creto_clock passed in (creto/clock.h); only build/creto-test pins one. */
int64_t creto_time_now(void);

/* Parse a duration "90", "90s", "15m", "1h", "7d" into seconds. 0 or -1. */
int creto_duration_parse(const char *s, int64_t *out) CRETO_WUR;

#endif
