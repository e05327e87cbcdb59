/*
 * clock.c - the system clock behind creto/clock.h, and event delivery.
 */
#include <time.h>

#include "creto/clock.h"
#include "creto/event.h"

static int64_t system_now(void *ctx)
{
	(void)ctx;
	return (int64_t)time(NULL);
}

static const creto_clock system_clock = {system_now, NULL};

const creto_clock *creto_clock_system(void)
{
	return &system_clock;
}

int64_t creto_clock_now(const creto_clock *c)
{
	if (c == NULL || c->now == NULL)
		return system_now(NULL);
	return c->now(c->ctx);
}

int64_t creto_clock_now_us(const creto_clock *c)
{
	if (c == NULL || c == &system_clock || c->now == NULL) {
		struct timespec ts;
		if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
			return system_now(NULL) * 1000000;
		return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
	}
	return c->now(c->ctx) * 1000000;
}

int creto_event_emit(const creto_event_sink *sink, const creto_event *ev)
{
	if (sink == NULL || sink->fn == NULL)
		return 0;
	return sink->fn(sink->ctx, ev);
}
