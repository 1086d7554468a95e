/* common/cb_time.c - clocks and RFC 3339 timestamps. */
#define _GNU_SOURCE
#include "cb_time.h"

#include <ctype.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

int64_t cb_time_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t cb_time_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

char *cb_time_format(int64_t ns, char *buf, size_t size)
{
    time_t sec = (time_t)(ns / 1000000000);
    long usec = (long)((ns % 1000000000) / 1000);
    struct tm tm;

    if (ns < 0) {
        sec -= 1;
        usec += 1000000;
    }
    gmtime_r(&sec, &tm);
    snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, usec);
    return buf;
}

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int cb_time_parse(const char *s, int64_t *ns)
{
    struct tm tm;
    int y, mo, d, h, mi, se;
    int64_t frac = 0;
    const char *p;

    if (strlen(s) < 20 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' ||
        digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        digits(s + 11, 2, &h) || s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' ||
        digits(s + 17, 2, &se))
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
        return -1;
    p = s + 19;
    if (*p == '.') {
        int64_t scale = 100000000;
        p++;
        if (!isdigit((unsigned char)*p))
            return -1;
        while (isdigit((unsigned char)*p)) {
            frac += (*p - '0') * scale;
            scale /= 10;
            p++;
        }
    }
    memset(&tm, 0, sizeof tm);
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = se;
    int64_t secs = (int64_t)timegm(&tm);
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        if (digits(p + 1, 2, &oh) || p[3] != ':' || digits(p + 4, 2, &om))
            return -1;
        int64_t off = (int64_t)oh * 3600 + om * 60;
        secs -= (*p == '+') ? off : -off;
        p += 6;
    } else {
        return -1;
    }
    if (*p != '\0')
        return -1;
    /* nanoseconds since 1970 in 64 bits: the years 1678 to 2262 */
    if (secs < INT64_MIN / 1000000000 + 1 || secs > INT64_MAX / 1000000000 - 1)
        return -1;
    *ns = secs * 1000000000 + frac;
    return 0;
}
