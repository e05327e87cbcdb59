/*
 * creto/clock.h - the clock the library is given, never one it reads itself.
 *
 * Every decision that depends on time (statement and trust-root expiry, the
 * time floor, token exp/nbf, audit timestamps) takes its time from a clock
 * the caller passes in.  The product passes the system clock; only the test
 * program (build/creto-test, compiled with CRETO_TEST_HOOKS) pins it.  No
 * library code reads the time from the environment.
 */
#ifndef CRETO_CLOCK_H
#define CRETO_CLOCK_H

#include <stdint.h>

typedef struct creto_clock {
	/* Seconds since the Unix epoch, UTC.  Must be thread-safe. */
	int64_t (*now)(void *ctx);
	void *ctx;
} creto_clock;

/* The system clock (time(2)).  Never NULL, static storage. */
const creto_clock *creto_clock_system(void);

/* c->now(c->ctx); the system clock when c is NULL. */
int64_t creto_clock_now(const creto_clock *c);

/* Microseconds since the Unix epoch, UTC: clock_gettime(CLOCK_REALTIME)
 * for the system clock (c NULL or creto_clock_system()), else
 * c->now(c->ctx) * 1000000 (a given clock has whole seconds). */
int64_t creto_clock_now_us(const creto_clock *c);

#endif
