/* common/cb_proc.h - a child process driven from a libevent loop: its stdin,
 * stdout and stderr are non-blocking socket pairs, its exit is a pidfd event
 * (no SIGCHLD handler, no global table, no zombie: the exit is reaped when it
 * is reported). Used by the local backend for cold invocations (write the
 * input, close stdin, collect stdout) and warm runtimes (line protocol).
 *
 * Children get only fds 0-2 (everything else is closed at spawn) and the
 * parent's environment plus `env`. Bounded: stdout beyond max_out bytes (or a
 * line beyond it in line mode) kills the child and reports CB_ETOOBIG; only
 * the last stderr_tail bytes of stderr are kept.
 *
 * Threading: one loop; every callback runs on it. */
#ifndef CB_PROC_H
#define CB_PROC_H
#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

#include "cb_status.h"

struct event_base;
typedef struct cb_proc cb_proc;

/* Line mode: each complete stdout line (without '\n', NUL-terminated,
 * borrowed for the call). */
typedef void cb_proc_line_cb(cb_proc *p, const char *line, size_t len, void *ctx);
/* The child ended. wstatus as from waitpid; s is CB_OK, or CB_ETOOBIG when it
 * was killed for oversize output. The output (cold mode) is cb_proc_output().
 * The callback may free p. */
typedef void cb_proc_exit_cb(cb_proc *p, int wstatus, cb_status s, void *ctx);

typedef struct cb_proc_opts {
    const char *const *argv; /* argv[0] is looked up in PATH; borrowed during spawn */
    const json_t *env;       /* object of extra variables, or NULL; borrowed during spawn */
    const char *cwd;         /* or NULL */
    size_t max_out;          /* bytes of stdout (cold) or of one line (line mode); default 1 MiB */
    size_t stderr_tail;      /* default 4096 */
    int line_mode;           /* 1: deliver stdout lines to on_line */
    size_t data_limit;       /* bytes of data memory the child may use (RLIMIT_DATA: its heap
                              * and private writable mappings), set by prlimit(1) before the
                              * program starts; 0: no limit */
    cb_proc_line_cb *on_line;
    cb_proc_exit_cb *on_exit;
    void *ctx;
} cb_proc_opts;

/* Start the child. On CB_OK *out is owned: cb_proc_free() (which kills a
 * child still running, SIGKILL, and reaps it). Errors: CB_ENOTFOUND (no such
 * program), CB_EIO, CB_ENOMEM. */
CB_NODISCARD cb_status cb_proc_spawn(struct event_base *base, const cb_proc_opts *o, cb_proc **out);
/* Queue bytes for the child's stdin (copied). Errors: CB_ECLOSED. */
CB_NODISCARD cb_status cb_proc_write(cb_proc *p, const void *data, size_t len);
/* Close stdin once what is queued has been written (EOF for the child). */
void cb_proc_close_stdin(cb_proc *p);
/* Send a signal (the exit is still reported through on_exit). */
void cb_proc_kill(cb_proc *p, int sig);
pid_t cb_proc_pid(const cb_proc *p);
/* Cold mode: everything the child wrote on stdout (NUL-terminated), borrowed
 * until cb_proc_free. */
const char *cb_proc_output(const cb_proc *p, size_t *len);
/* The last stderr bytes, NUL-terminated, borrowed until the next loop turn. */
const char *cb_proc_stderr(cb_proc *p);
/* Describe a wait status: "exit status 3", "killed by signal 9". */
void cb_proc_describe(int wstatus, char *buf, size_t size);
void cb_proc_free(cb_proc *p); /* accepts NULL */

#endif /* CB_PROC_H */
