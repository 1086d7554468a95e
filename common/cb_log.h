/* common/cb_log.h - structured logging: one JSON object per line on stderr
 * ({"ts","level","mod","msg"[,"tenant","job"]}). Thread-safe: each line is
 * written with one fwrite. */
#ifndef CB_LOG_H
#define CB_LOG_H

typedef enum cb_log_level {
    CB_LOG_DEBUG = 0,
    CB_LOG_INFO = 1,
    CB_LOG_WARN = 2,
    CB_LOG_ERROR = 3,
    CB_LOG_OFF = 4,
} cb_log_level;

/* Lines below `lvl` are dropped. The default is CB_LOG_INFO, or the value of
 * the environment variable CB_LOG_LEVEL (debug|info|warn|error|off) read on the
 * first log call. Call once at start-up, before threads exist. */
void cb_log_set_level(cb_log_level lvl);
int cb_log_enabled(cb_log_level lvl);

void cb_log(cb_log_level lvl, const char *mod, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Same, tagged with a tenant and job (either may be NULL). */
void cb_log_job(cb_log_level lvl, const char *mod, const char *tenant, const char *job,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#define CB_LOG_DBG(mod, ...) cb_log(CB_LOG_DEBUG, mod, __VA_ARGS__)
#define CB_LOG_INF(mod, ...) cb_log(CB_LOG_INFO, mod, __VA_ARGS__)
#define CB_LOG_WRN(mod, ...) cb_log(CB_LOG_WARN, mod, __VA_ARGS__)
#define CB_LOG_ERR(mod, ...) cb_log(CB_LOG_ERROR, mod, __VA_ARGS__)

#endif /* CB_LOG_H */
