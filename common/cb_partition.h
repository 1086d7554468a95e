/* common/cb_partition.h - the partitions of the log (docs/scale.md): which
 * partition a job belongs to and the subjects of a partition's events.
 *
 * Pure functions of their arguments, thread-safe. The partition function is
 * part of the log's format: a job's partition is computed once at intake and
 * recorded in its cb.job.submitted, and the function must never change (the
 * tests pin it to fixed values).
 *
 * Layout: partition 0 is the log as it always was, "cb.evt.<tenant>.<job>";
 * partition k >= 1 is "cb.evp.<k>.<tenant>.<job>". */
#ifndef CB_PARTITION_H
#define CB_PARTITION_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CB_PARTITIONS_MAX 64

/* FNV-1a 64 of "<tenant>/<job>", modulo n (n of 0 or 1: 0). */
unsigned cb_partition_of(const char *tenant, const char *job, unsigned n);

/* A partition's event subject, or its root with a pattern: "cb.evt.<rest>" /
 * "cb.evp.<k>.<rest>" into buf. Returns 0, or -1 if it does not fit. */
int cb_partition_subject(unsigned partition, const char *tenant, const char *job, char *buf,
                         size_t size);
int cb_partition_pattern(unsigned partition, const char *rest, char *buf, size_t size);

/* The parts of an event subject of any partition, borrowed from subject
 * (tenant not terminated: tenant_len bytes; job to the end). false if subject
 * (may be NULL) is not one. */
typedef struct cb_log_subject {
    unsigned partition;
    const char *tenant, *job;
    size_t tenant_len;
} cb_log_subject;
bool cb_partition_parse(const char *subject, cb_log_subject *out);

/* What follows the partition's root in an event subject or pattern
 * ("acme.j1" of "cb.evp.3.acme.j1"), borrowed; NULL if it has none. */
const char *cb_partition_rest(const char *subject);

/* The partition whose log a subject pattern ("cb.evt.acme.>",
 * "cb.evp.3.*.*") reads from: 0 for cb.evt., k for cb.evp.<k>.; -1 if it is
 * neither or k is not a partition number (1 .. CB_PARTITIONS_MAX - 1). */
int cb_partition_of_pattern(const char *pattern);

/* A set of partitions as a bitmask (bit k: partition k). From a list such
 * as "0,2" or "1-3,5" of partitions below n: 0 and *set, or -1 (empty, not
 * numbers, out of range). Into text ("0-1,3"): returns buf. */
int cb_partition_set_parse(const char *s, unsigned n, uint64_t *set);
const char *cb_partition_set_text(uint64_t set, char *buf, size_t size);
/* The set of partitions 0 .. n-1. */
uint64_t cb_partition_set_all(unsigned n);
/* How many partitions a set holds. */
unsigned cb_partition_set_count(uint64_t set);

#endif /* CB_PARTITION_H */
