/* common/cb_pattern.c - schema patterns: a fast path for "^atoms$", else
 * regexec() (cb_pattern.h). */
#include "cb_pattern.h"

#include <regex.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cb_alloc.h"

#define MAX_ATOMS   32
#define MAX_COUNT   1000       /* larger {m,n} bounds go to regexec */
#define UNBOUNDED   UINT32_MAX /* "*", "+", "{m,}" */
#define STEP_BUDGET (1L << 16) /* backtracking work per match before regexec takes over */

typedef struct atom {
    uint8_t set[32]; /* bit b: byte b matches */
    uint32_t min, max;
} atom;

struct cb_pattern {
    regex_t re;
    bool simple;     /* atoms[] says the whole pattern */
    bool end_anchor; /* it ends with "$" */
    size_t natoms;
    atom atoms[MAX_ATOMS];
};

static void set_add(atom *a, unsigned char c)
{
    a->set[c >> 3] |= (uint8_t)(1u << (c & 7));
}

static bool set_has(const atom *a, unsigned char c)
{
    return (a->set[c >> 3] >> (c & 7)) & 1u;
}

/* A bracket expression at src (just after "["): its bytes into a; the
 * position after "]", or NULL for forms left to regexec. */
static const char *parse_bracket(const char *src, atom *a)
{
    bool neg = false;
    const unsigned char *p = (const unsigned char *)src;
    if (*p == '^') {
        neg = true;
        p++;
    }
    if (*p == ']') /* a literal "]" first: rare, left to regexec */
        return NULL;
    while (*p && *p != ']') {
        if (*p == '[') /* [:class:], [.coll.], [=equiv=] */
            return NULL;
        if (p[1] == '-' && p[2] && p[2] != ']') {
            if (p[0] > p[2] || p[2] == '[')
                return NULL;
            for (unsigned c = p[0]; c <= p[2]; c++)
                set_add(a, (unsigned char)c);
            p += 3;
        } else {
            set_add(a, *p++);
        }
    }
    if (*p != ']')
        return NULL;
    if (neg)
        for (int i = 0; i < 32; i++)
            a->set[i] = (uint8_t)~a->set[i];
    a->set[0] &= (uint8_t)~1u; /* never NUL: inputs with one never match */
    return (const char *)p + 1;
}

static const char *parse_count(const char *p, uint32_t *out)
{
    uint32_t v = 0;
    if (*p < '0' || *p > '9')
        return NULL;
    while (*p >= '0' && *p <= '9') {
        v = v * 10 + (uint32_t)(*p++ - '0');
        if (v > MAX_COUNT)
            return NULL;
    }
    *out = v;
    return p;
}

/* A quantifier at p (or none): the atom's counts; the position after it,
 * or NULL for forms left to regexec. */
static const char *parse_quantifier(const char *p, atom *a)
{
    a->min = a->max = 1;
    switch (*p) {
    case '?':
        a->min = 0;
        return p + 1;
    case '*':
        a->min = 0;
        a->max = UNBOUNDED;
        return p + 1;
    case '+':
        a->max = UNBOUNDED;
        return p + 1;
    case '{':
        if (!(p = parse_count(p + 1, &a->min)))
            return NULL;
        if (*p == '}') {
            a->max = a->min;
            return p + 1;
        }
        if (*p++ != ',')
            return NULL;
        if (*p == '}') {
            a->max = UNBOUNDED;
            return p + 1;
        }
        if (!(p = parse_count(p, &a->max)) || *p != '}' || a->max < a->min)
            return NULL;
        return p + 1;
    default:
        return p;
    }
}

/* Whether src has the simple form; fills p's atoms. */
static bool parse_simple(cb_pattern *p, const char *src)
{
    if (*src++ != '^')
        return false;
    while (*src) {
        atom *a;
        if (*src == '$' && src[1] == '\0') {
            p->end_anchor = true;
            return true;
        }
        if (p->natoms == MAX_ATOMS)
            return false;
        a = &p->atoms[p->natoms++];
        memset(a, 0, sizeof *a);
        switch (*src) {
        case '\\': /* an escaped punctuation character stands for itself */
            if (!src[1] || !strchr(".[]()|*+?{}^$\\/-", src[1]))
                return false;
            set_add(a, (unsigned char)src[1]);
            src += 2;
            break;
        case '.':
            memset(a->set, 0xff, sizeof a->set);
            a->set[0] &= (uint8_t)~1u;
            src++;
            break;
        case '[':
            if (!(src = parse_bracket(src + 1, a)))
                return false;
            break;
        case '(':
        case ')':
        case '|':
        case '*':
        case '+':
        case '?':
        case '{':
        case '}':
        case '^':
        case '$':
            return false;
        default:
            set_add(a, (unsigned char)*src++);
            break;
        }
        if (!(src = parse_quantifier(src, a)))
            return false;
        if (strchr("?*+{", *src) && *src) /* a quantified quantifier */
            return false;
    }
    return true;
}

cb_pattern *cb_pattern_compile(const char *src)
{
    cb_pattern *p = cb_calloc(1, sizeof *p);
    if (!p)
        return NULL;
    if (regcomp(&p->re, src, REG_EXTENDED | REG_NOSUB) != 0) {
        cb_free(p);
        return NULL;
    }
    p->simple = parse_simple(p, src);
    return p;
}

/* 1: the atoms from ai on match s[pos..len); 0: they do not; -1: the budget
 * ran out (regexec decides). Greedy, backing off one byte at a time. */
static int match_from(const cb_pattern *p, size_t ai, const unsigned char *s, size_t pos,
                      size_t len, long *budget)
{
    const atom *a;
    size_t n = 0;
    if (ai == p->natoms)
        return !p->end_anchor || pos == len;
    a = &p->atoms[ai];
    while (n < a->max && pos + n < len && set_has(a, s[pos + n]))
        n++;
    if ((*budget -= (long)n + 1) < 0)
        return -1;
    if (n < a->min)
        return 0;
    for (size_t k = n + 1; k-- > a->min;) {
        int r = match_from(p, ai + 1, s, pos + k, len, budget);
        if (r != 0)
            return r;
    }
    return 0;
}

bool cb_pattern_match(const cb_pattern *p, const char *s, size_t len)
{
    if (!p || memchr(s, '\0', len))
        return false;
    if (p->simple) {
        long budget = STEP_BUDGET;
        int r = match_from(p, 0, (const unsigned char *)s, 0, len, &budget);
        if (r >= 0)
            return r == 1;
    }
    return regexec(&p->re, s, 0, NULL, 0) == 0;
}

bool cb_pattern_is_simple(const cb_pattern *p)
{
    return p && p->simple;
}

size_t cb_pattern_sample(const cb_pattern *p, unsigned *seed, char *buf, size_t size)
{
    size_t n = 0;
    if (!p || !p->simple || size == 0)
        return 0;
    for (size_t ai = 0; ai < p->natoms; ai++) {
        const atom *a = &p->atoms[ai];
        uint32_t extra = a->max == a->min ? 0 : (uint32_t)rand_r(seed) % 4;
        uint32_t count = a->min + (a->max - a->min < extra ? a->max - a->min : extra);
        int members = 0;
        for (int c = 1; c < 256; c++)
            members += set_has(a, (unsigned char)c);
        for (uint32_t k = 0; k < count && members > 0 && n + 1 < size; k++) {
            int pick = rand_r(seed) % members;
            for (int c = 1; c < 256; c++)
                if (set_has(a, (unsigned char)c) && pick-- == 0) {
                    buf[n++] = (char)c;
                    break;
                }
        }
    }
    buf[n] = '\0';
    return n;
}

void cb_pattern_free(cb_pattern *p)
{
    if (!p)
        return;
    regfree(&p->re);
    cb_free(p);
}
