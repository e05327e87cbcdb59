/* timeutil.c - UTC time parsing and formatting (see timeutil.h). */
#include "util/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian), H. Hinnant's algorithm. */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int digits(const char *s, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

int creto_time_parse(const char *s, int64_t *out)
{
	int y, mo, d, h = 0, mi = 0, se = 0;
	size_t n = strlen(s);
	if (n != 10 && n != 20)
		return -1;
	if (digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' ||
	    digits(s + 8, 2, &d))
		return -1;
	if (n == 20) {
		if (s[10] != 'T' || digits(s + 11, 2, &h) || s[13] != ':' || digits(s + 14, 2, &mi) ||
		    s[16] != ':' || digits(s + 17, 2, &se) || s[19] != 'Z')
			return -1;
	}
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || se > 59)
		return -1;
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	if (mo == 2 && d == 29 && !leap)
		return -1;
	*out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
	return 0;
}

void creto_time_format(int64_t t, char out[static CRETO_TIME_STRLEN])
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (gmtime_r(&tt, &tm) == NULL || tm.tm_year + 1900 > 9999 || tm.tm_year + 1900 < 0) {
		snprintf(out, CRETO_TIME_STRLEN, "invalid-time");
		return;
	}
	/* Fields are range-checked by gmtime_r and the year test above. */
	strftime(out, CRETO_TIME_STRLEN, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int64_t creto_time_now(void)
{
	/* The system clock, always: no test hook reads the environment here
	 * (a pinned clock exists only in build/creto-test, via cli_clock()). */
	return (int64_t)time(NULL);
}

int creto_duration_parse(const char *s, int64_t *out)
{
	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	int64_t mul = 1;
	if (*end == 's')
		end++;
	else if (*end == 'm')
		mul = 60, end++;
	else if (*end == 'h')
		mul = 3600, end++;
	else if (*end == 'd')
		mul = 86400, end++;
	if (*end != '\0' || v > (unsigned long long)(INT64_MAX / 86400))
		return -1;
	*out = (int64_t)v * mul;
	return 0;
}
