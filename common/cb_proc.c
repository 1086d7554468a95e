/* common/cb_proc.c - child processes on a libevent loop (see cb_proc.h).
 * posix_spawn (not fork: the NATS client runs threads) with fds 0-2 mapped
 * to socket pairs and everything else closed; a pidfd reports the exit. */
#define _GNU_SOURCE
#include "cb_proc.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cb_alloc.h"
#include "cb_log.h"

extern char **environ;

struct cb_proc {
    pid_t pid;
    int in_fd, out_fd, err_fd, pid_fd;
    struct event *in_ev, *out_ev, *err_ev, *pid_ev;
    struct evbuffer *in, *out, *err;
    size_t max_out, tail;
    int line_mode, close_in, oversize, reaped;
    cb_proc_line_cb *on_line;
    cb_proc_exit_cb *on_exit;
    void *ctx;
    char *err_copy, *out_copy;
};

static void close_fd(int *fd, struct event **ev)
{
    if (*ev) {
        event_free(*ev);
        *ev = NULL;
    }
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

static void flush_in(cb_proc *p)
{
    while (evbuffer_get_length(p->in) > 0) {
        size_t n = evbuffer_get_contiguous_space(p->in);
        unsigned char *d = evbuffer_pullup(p->in, (ev_ssize_t)n);
        ssize_t w = send(p->in_fd, d, n, MSG_NOSIGNAL);
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            event_add(p->in_ev, NULL);
            return;
        }
        if (w < 0) { /* the child closed its stdin or died: nothing more to say */
            evbuffer_drain(p->in, evbuffer_get_length(p->in));
            break;
        }
        evbuffer_drain(p->in, (size_t)w);
    }
    if (p->close_in)
        close_fd(&p->in_fd, &p->in_ev);
}

static void in_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    flush_in(arg);
}

/* Deliver complete lines; returns -1 when a line is over the limit. */
static int take_lines(cb_proc *p)
{
    for (;;) {
        struct evbuffer_ptr e = evbuffer_search_eol(p->out, NULL, NULL, EVBUFFER_EOL_LF);
        if (e.pos < 0)
            return evbuffer_get_length(p->out) > p->max_out ? -1 : 0;
        if ((size_t)e.pos > p->max_out)
            return -1;
        char *line = cb_malloc((size_t)e.pos + 1);
        if (!line)
            return -1;
        evbuffer_remove(p->out, line, (size_t)e.pos);
        line[e.pos] = '\0';
        evbuffer_drain(p->out, 1);
        p->on_line(p, line, (size_t)e.pos, p->ctx);
        free(line);
    }
}

/* Read what is there now. Returns 0 on EAGAIN, 1 on EOF, -1 on oversize. */
static int read_some(cb_proc *p, int fd, struct evbuffer *buf, size_t limit)
{
    for (;;) {
        int n = evbuffer_read(buf, fd, 65536);
        if (n < 0)
            return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : 1;
        if (n == 0)
            return 1;
        if (buf == p->out) {
            if (p->line_mode ? take_lines(p) < 0 : evbuffer_get_length(buf) > limit)
                return -1;
        } else if (evbuffer_get_length(buf) > limit) {
            evbuffer_drain(buf, evbuffer_get_length(buf) - limit);
        }
    }
}

static void oversize(cb_proc *p)
{
    if (!p->oversize) {
        p->oversize = 1;
        kill(p->pid, SIGKILL);
    }
    evbuffer_drain(p->out, evbuffer_get_length(p->out));
    close_fd(&p->out_fd, &p->out_ev);
}

static void out_cb(evutil_socket_t fd, short what, void *arg)
{
    cb_proc *p = arg;
    (void)what;
    int r = read_some(p, fd, p->out, p->max_out);
    if (r < 0)
        oversize(p);
    else if (r > 0)
        close_fd(&p->out_fd, &p->out_ev);
}

static void err_cb(evutil_socket_t fd, short what, void *arg)
{
    cb_proc *p = arg;
    (void)what;
    if (read_some(p, fd, p->err, p->tail) != 0)
        close_fd(&p->err_fd, &p->err_ev);
}

static void pid_cb(evutil_socket_t fd, short what, void *arg)
{
    cb_proc *p = arg;
    int wstatus = 0;
    (void)fd;
    (void)what;
    if (waitpid(p->pid, &wstatus, WNOHANG) != p->pid)
        return; /* spurious */
    p->reaped = 1;
    close_fd(&p->pid_fd, &p->pid_ev);
    /* Everything the child wrote is in the socket buffers now (unless it left
     * a grandchild holding them: we do not wait for that). */
    if (p->out_fd >= 0 && read_some(p, p->out_fd, p->out, p->max_out) < 0)
        oversize(p);
    if (p->err_fd >= 0)
        (void)read_some(p, p->err_fd, p->err, p->tail);
    close_fd(&p->out_fd, &p->out_ev);
    close_fd(&p->err_fd, &p->err_ev);
    close_fd(&p->in_fd, &p->in_ev);
    p->on_exit(p, wstatus, p->oversize ? CB_ETOOBIG : CB_OK, p->ctx);
}

static char **build_env(const json_t *extra)
{
    size_t n = 0, k = 0, m = extra ? json_object_size(extra) : 0;
    while (environ[n])
        n++;
    char **env = calloc(n + m + 1, sizeof *env);
    if (!env)
        return NULL;
    if (extra) {
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)extra, key, v)
        {
            const char *s = json_string_value(v);
            size_t len = strlen(key) + (s ? strlen(s) : 0) + 2;
            if (!(env[k] = malloc(len)))
                goto fail;
            snprintf(env[k++], len, "%s=%s", key, s ? s : "");
        }
    }
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(environ[i], '=');
        if (eq && extra) { /* the configured value wins */
            char name[256];
            size_t nl = (size_t)(eq - environ[i]);
            if (nl < sizeof name) {
                memcpy(name, environ[i], nl);
                name[nl] = '\0';
                if (json_object_get(extra, name))
                    continue;
            }
        }
        if (!(env[k++] = strdup(environ[i])))
            goto fail;
    }
    return env;
fail:
    for (size_t i = 0; env[i]; i++)
        free(env[i]);
    free(env);
    return NULL;
}

static void free_env(char **env)
{
    for (size_t i = 0; env && env[i]; i++)
        free(env[i]);
    free(env);
}

static int nonblock_pair(int pair[2])
{
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
        return -1;
    return evutil_make_socket_nonblocking(pair[0]);
}

cb_status cb_proc_spawn(struct event_base *base, const cb_proc_opts *o, cb_proc **out)
{
    int pin[2] = {-1, -1}, pout[2] = {-1, -1}, perr[2] = {-1, -1};
    posix_spawn_file_actions_t fa;
    char **env = NULL;
    cb_proc *p;
    cb_status s = CB_EIO;
    int rc;

    if (!base || !o || !o->argv || !o->argv[0] || !o->on_exit || (o->line_mode && !o->on_line) ||
        !out)
        return CB_EINVAL;
    if (!(p = cb_calloc(1, sizeof *p)))
        return CB_ENOMEM;
    p->in_fd = p->out_fd = p->err_fd = p->pid_fd = -1;
    p->max_out = o->max_out ? o->max_out : 1u << 20;
    p->tail = o->stderr_tail ? o->stderr_tail : 4096;
    p->line_mode = o->line_mode;
    p->on_line = o->on_line;
    p->on_exit = o->on_exit;
    p->ctx = o->ctx;
    if (!(p->in = evbuffer_new()) || !(p->out = evbuffer_new()) || !(p->err = evbuffer_new()) ||
        !(env = build_env(o->env))) {
        s = CB_ENOMEM;
        goto fail;
    }
    if (nonblock_pair(pin) || nonblock_pair(pout) || nonblock_pair(perr))
        goto fail;
    if (posix_spawn_file_actions_init(&fa) != 0)
        goto fail;
    posix_spawn_file_actions_adddup2(&fa, pin[1], 0);
    posix_spawn_file_actions_adddup2(&fa, pout[1], 1);
    posix_spawn_file_actions_adddup2(&fa, perr[1], 2);
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    if (o->cwd)
        posix_spawn_file_actions_addchdir_np(&fa, o->cwd);
    if (o->data_limit) { /* prlimit(1) sets the limit, then runs the program */
        size_t n = 0;
        char opt[48];
        const char **argv;
        while (o->argv[n])
            n++;
        if (!(argv = cb_calloc(n + 4, sizeof *argv))) {
            posix_spawn_file_actions_destroy(&fa);
            s = CB_ENOMEM;
            goto fail;
        }
        snprintf(opt, sizeof opt, "--data=%zu", o->data_limit);
        argv[0] = "prlimit";
        argv[1] = opt;
        argv[2] = "--";
        memcpy(argv + 3, o->argv, n * sizeof *argv);
        rc = posix_spawnp(&p->pid, argv[0], &fa, NULL, (char *const *)argv, env);
        free(argv);
    } else {
        rc = posix_spawnp(&p->pid, o->argv[0], &fa, NULL, (char *const *)o->argv, env);
    }
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        s = rc == ENOENT || rc == EACCES ? CB_ENOTFOUND : CB_EIO;
        goto fail;
    }
    close(pin[1]);
    close(pout[1]);
    close(perr[1]);
    p->in_fd = pin[0];
    p->out_fd = pout[0];
    p->err_fd = perr[0];
    free_env(env);
    p->pid_fd = (int)syscall(SYS_pidfd_open, p->pid, 0);
    if (p->pid_fd < 0 || !(p->in_ev = event_new(base, p->in_fd, EV_WRITE, in_cb, p)) ||
        !(p->out_ev = event_new(base, p->out_fd, EV_READ | EV_PERSIST, out_cb, p)) ||
        !(p->err_ev = event_new(base, p->err_fd, EV_READ | EV_PERSIST, err_cb, p)) ||
        !(p->pid_ev = event_new(base, p->pid_fd, EV_READ | EV_PERSIST, pid_cb, p)) ||
        event_add(p->out_ev, NULL) || event_add(p->err_ev, NULL) || event_add(p->pid_ev, NULL)) {
        cb_proc_free(p);
        return CB_EIO;
    }
    *out = p;
    return CB_OK;
fail:
    for (int i = 0; i < 2; i++) {
        if (pin[i] >= 0)
            close(pin[i]);
        if (pout[i] >= 0)
            close(pout[i]);
        if (perr[i] >= 0)
            close(perr[i]);
    }
    free_env(env);
    if (p->in)
        evbuffer_free(p->in);
    if (p->out)
        evbuffer_free(p->out);
    if (p->err)
        evbuffer_free(p->err);
    free(p);
    return s;
}

cb_status cb_proc_write(cb_proc *p, const void *data, size_t len)
{
    if (p->in_fd < 0 || p->close_in)
        return CB_ECLOSED;
    if (evbuffer_add(p->in, data, len) != 0)
        return CB_ENOMEM;
    flush_in(p);
    return CB_OK;
}

void cb_proc_close_stdin(cb_proc *p)
{
    p->close_in = 1;
    if (p->in_fd >= 0 && evbuffer_get_length(p->in) == 0)
        close_fd(&p->in_fd, &p->in_ev);
}

void cb_proc_kill(cb_proc *p, int sig)
{
    if (!p->reaped)
        kill(p->pid, sig);
}

pid_t cb_proc_pid(const cb_proc *p)
{
    return p->pid;
}

const char *cb_proc_output(const cb_proc *p, size_t *len)
{
    cb_proc *m = (cb_proc *)p;
    size_t n = evbuffer_get_length(m->out);
    free(m->out_copy);
    if (!(m->out_copy = malloc(n + 1)))
        return NULL;
    evbuffer_copyout(m->out, m->out_copy, n);
    m->out_copy[n] = '\0';
    if (len)
        *len = n;
    return m->out_copy;
}

const char *cb_proc_stderr(cb_proc *p)
{
    size_t n = evbuffer_get_length(p->err);
    free(p->err_copy);
    if (!(p->err_copy = malloc(n + 1)))
        return "";
    evbuffer_copyout(p->err, p->err_copy, n);
    p->err_copy[n] = '\0';
    return p->err_copy;
}

void cb_proc_describe(int wstatus, char *buf, size_t size)
{
    if (WIFEXITED(wstatus))
        snprintf(buf, size, "exit status %d", WEXITSTATUS(wstatus));
    else if (WIFSIGNALED(wstatus))
        snprintf(buf, size, "killed by signal %d (%s)", WTERMSIG(wstatus),
                 strsignal(WTERMSIG(wstatus)));
    else
        snprintf(buf, size, "wait status %d", wstatus);
}

void cb_proc_free(cb_proc *p)
{
    if (!p)
        return;
    if (!p->reaped) {
        int ws;
        kill(p->pid, SIGKILL);
        while (waitpid(p->pid, &ws, 0) < 0 && errno == EINTR)
            ;
    }
    close_fd(&p->in_fd, &p->in_ev);
    close_fd(&p->out_fd, &p->out_ev);
    close_fd(&p->err_fd, &p->err_ev);
    close_fd(&p->pid_fd, &p->pid_ev);
    evbuffer_free(p->in);
    evbuffer_free(p->out);
    evbuffer_free(p->err);
    free(p->err_copy);
    free(p->out_copy);
    free(p);
}
