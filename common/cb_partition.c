/* common/cb_partition.c - the partitions of the log (see cb_partition.h). */
#include "cb_partition.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

unsigned cb_partition_of(const char *tenant, const char *job, unsigned n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    const unsigned char *p;
    if (n <= 1)
        return 0;
    for (p = (const unsigned char *)tenant; *p; p++)
        h = (h ^ *p) * 0x100000001b3ULL;
    h = (h ^ '/') * 0x100000001b3ULL;
    for (p = (const unsigned char *)job; *p; p++)
        h = (h ^ *p) * 0x100000001b3ULL;
    return (unsigned)(h % n);
}

int cb_partition_pattern(unsigned partition, const char *rest, char *buf, size_t size)
{
    int n = partition ? snprintf(buf, size, "cb.evp.%u.%s", partition, rest)
                      : snprintf(buf, size, "cb.evt.%s", rest);
    return n < 0 || (size_t)n >= size ? -1 : 0;
}

int cb_partition_subject(unsigned partition, const char *tenant, const char *job, char *buf,
                         size_t size)
{
    int n = partition ? snprintf(buf, size, "cb.evp.%u.%s.%s", partition, tenant, job)
                      : snprintf(buf, size, "cb.evt.%s.%s", tenant, job);
    return n < 0 || (size_t)n >= size ? -1 : 0;
}

/* The partition number at s (digits up to a dot, no leading zero), its end in
 * *end; -1 if none. */
static int number(const char *s, const char **end)
{
    unsigned k = 0;
    const char *p = s;
    if (*p < '1' || *p > '9')
        return -1;
    while (*p >= '0' && *p <= '9' && k < CB_PARTITIONS_MAX)
        k = k * 10 + (unsigned)(*p++ - '0');
    if (*p != '.' || k >= CB_PARTITIONS_MAX)
        return -1;
    *end = p + 1;
    return (int)k;
}

int cb_partition_of_pattern(const char *pattern)
{
    const char *rest;
    if (!pattern)
        return -1;
    if (!strncmp(pattern, "cb.evt.", 7))
        return 0;
    if (strncmp(pattern, "cb.evp.", 7))
        return -1;
    return number(pattern + 7, &rest);
}

const char *cb_partition_rest(const char *subject)
{
    const char *rest;
    int k = cb_partition_of_pattern(subject);
    if (k < 0)
        return NULL;
    rest = subject + 7;
    if (k > 0)
        (void)number(rest, &rest);
    return rest;
}

bool cb_partition_parse(const char *subject, cb_log_subject *out)
{
    const char *rest = cb_partition_rest(subject), *dot;
    if (!rest)
        return false;
    if (!(dot = strchr(rest, '.')) || dot == rest || !dot[1] || strchr(dot + 1, '.'))
        return false;
    out->partition = (unsigned)cb_partition_of_pattern(subject);
    out->tenant = rest;
    out->tenant_len = (size_t)(dot - rest);
    out->job = dot + 1;
    return true;
}

int cb_partition_set_parse(const char *s, unsigned n, uint64_t *set)
{
    uint64_t out = 0;
    const char *p = s;
    if (!s || !*s || n < 1 || n > CB_PARTITIONS_MAX)
        return -1;
    while (*p) {
        unsigned a = 0, b;
        int digits = 0;
        while (*p >= '0' && *p <= '9' && a < CB_PARTITIONS_MAX) {
            a = a * 10 + (unsigned)(*p++ - '0');
            digits++;
        }
        if (!digits)
            return -1;
        b = a;
        if (*p == '-') {
            p++;
            b = 0;
            digits = 0;
            while (*p >= '0' && *p <= '9' && b < CB_PARTITIONS_MAX) {
                b = b * 10 + (unsigned)(*p++ - '0');
                digits++;
            }
            if (!digits)
                return -1;
        }
        if (a > b || b >= n)
            return -1;
        for (unsigned k = a; k <= b; k++)
            out |= 1ULL << k;
        if (*p == ',')
            p++;
        else if (*p)
            return -1;
    }
    *set = out;
    return 0;
}

const char *cb_partition_set_text(uint64_t set, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (unsigned k = 0; k < CB_PARTITIONS_MAX; k++) {
        unsigned e = k;
        int w;
        if (!(set >> k & 1))
            continue;
        while (e + 1 < CB_PARTITIONS_MAX && (set >> (e + 1) & 1))
            e++;
        w = e > k ? snprintf(buf + used, size - used, "%s%u-%u", used ? "," : "", k, e)
                  : snprintf(buf + used, size - used, "%s%u", used ? "," : "", k);
        if (w < 0 || (size_t)w >= size - used)
            break;
        used += (size_t)w;
        k = e;
    }
    return buf;
}

unsigned cb_partition_set_count(uint64_t set)
{
    unsigned n = 0;
    for (; set; set &= set - 1)
        n++;
    return n;
}

uint64_t cb_partition_set_all(unsigned n)
{
    return n >= CB_PARTITIONS_MAX ? ~0ULL : (1ULL << n) - 1;
}
