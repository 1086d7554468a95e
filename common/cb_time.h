/* common/cb_time.h - clocks. Pure modules never call these: they take time
 * as an argument. */
#ifndef CB_TIME_H
#define CB_TIME_H
#include <stddef.h>
#include <stdint.h>

/* Wall clock, nanoseconds since the Unix epoch. */
int64_t cb_time_now_ns(void);
/* Monotonic clock, nanoseconds from an arbitrary origin. */
int64_t cb_time_mono_ns(void);
/* Format `ns` since the epoch as RFC 3339 UTC with microseconds
 * ("2026-11-27T04:02:22.123456Z") into buf (>= 32 bytes). Returns buf. */
char *cb_time_format(int64_t ns, char *buf, size_t size);
/* Parse an RFC 3339 timestamp (Z or +hh:mm offset, optional fraction).
 * Returns 0 and sets *ns, or -1 if malformed. */
int cb_time_parse(const char *s, int64_t *ns);

#endif /* CB_TIME_H */
