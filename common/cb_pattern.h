/* common/cb_pattern.h - a schema's "pattern": a POSIX extended regular
 * expression, matched fast when it has the simple anchored form the
 * project's schemas use.
 *
 * Every invocation command, submission and event field with a "pattern"
 * (tenant and job names, digests, URLs) is checked against it; glibc's
 * regexec() was ~12 % of an adapter's CPU in `cb bench fanout`. A pattern
 * that starts with "^" and is a sequence of single-character atoms (a
 * literal, "\x", ".", a bracket expression) each with an optional "?", "*",
 * "+", "{m}", "{m,}" or "{m,n}", ending with an optional "$", is matched by
 * a small backtracking matcher over bytes; anything else (groups,
 * alternation, classes like [[:alpha:]]) and any input on which that
 * matcher would take too many steps goes to regexec(). Both read bytes as
 * the C locale does (the project never calls setlocale()); test_pattern
 * compares the two on every schema's pattern and random inputs.
 *
 * Ownership: cb_pattern_compile() returns a pattern the caller frees with
 * cb_pattern_free(). A compiled pattern is immutable: cb_pattern_match() may
 * be called from any number of threads at once. */
#ifndef CB_PATTERN_H
#define CB_PATTERN_H
#include <stdbool.h>
#include <stddef.h>

typedef struct cb_pattern cb_pattern;

/* NULL when `src` is not a valid extended regular expression (or out of
 * memory). */
cb_pattern *cb_pattern_compile(const char *src);
/* Whether s[0..len) matches (a search, as regexec: anchors only where the
 * pattern has them). s[len] must be '\0'. A NUL inside s never matches, as
 * for JSON strings the validator checks. */
bool cb_pattern_match(const cb_pattern *p, const char *s, size_t len);
/* For tests: whether the fast matcher took the pattern, and a string built
 * from its atoms (each repeated between its minimum and a few more times,
 * bytes drawn from its set with rand_r(seed)) into buf (NUL-terminated, cut
 * at size - 1); its length, 0 when the pattern is not simple. */
bool cb_pattern_is_simple(const cb_pattern *p);
size_t cb_pattern_sample(const cb_pattern *p, unsigned *seed, char *buf, size_t size);
void cb_pattern_free(cb_pattern *p); /* accepts NULL */

#endif /* CB_PATTERN_H */
