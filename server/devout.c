/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Device output: what the program's kernels print (printf, and the message
 * of a failed assert) goes to the guest program's own stdout and stderr,
 * not to the server's.  The driver writes it in the session process, at a
 * synchronizing call, to that process's stdout and stderr.  A session
 * therefore points its fds 1 and 2 at two memfds when it starts (its own
 * log lines keep the server's stderr: vgpu_log_fd), and:
 *
 *   - once the session has put work on the GPU (vgpu_devout_arm(), from
 *     work.c), a reply the client waits for looks at the two files when
 *     its batch ran a call at which the driver writes them (a launch, a
 *     blocking copy, a synchronize, module loading and unloading, context
 *     destruction: the CUDA C++ Programming Guide's "Formatted Output";
 *     session.c's flushes_printf()), and after the server wrote a line of
 *     its own; a query such as cudaStreamQuery costs no look.  When they
 *     hold bytes, the reply says so
 *     (ResultBatch.device_output) and the client fetches them before its
 *     call returns (Control FetchDeviceOutput), so the text lands where the
 *     synchronizing call returns, as natively;
 *   - a device-wide synchronize that found them empty disarms the look
 *     again, so a program that prints nothing pays two fstats per such
 *     reply only while work it has not synchronized is outstanding;
 *   - what kernels print after the program's last synchronizing call is
 *     lost, as it is natively when a program exits without synchronizing.
 *
 * The server tells the program a few things itself the same way, on its
 * stderr (vgpu_devout_say(): an allocation over the VM's memory limit).
 *
 * The files are opened O_APPEND and read from an offset of the session's
 * own; when everything is read they are truncated, so they never grow
 * past what one reply has not fetched yet.
 *
 * The driver's log messages go the same way while the client has a log
 * callback registered (cuLogsRegisterCallback): the session registers one
 * callback of its own with the driver, which may call it on any thread;
 * it keeps the messages (at most DRVLOG_KEPT, each cut at DRVLOG_TEXT
 * bytes, the rest counted as dropped), the next reply says output waits,
 * and FetchDeviceOutput hands them over in order.  The client runs the
 * program's callbacks on the thread whose call fetched them.
 */
#include <cuda.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server_internal.h"
#include "vgpu/wire.h"

#define DEVOUT_REPLY_MAX (512u << 10)   /* bytes of both streams one reply carries */
#define DEVOUT_KEEP_MAX (64u << 20)     /* bytes a file keeps for a client that does not fetch */
#define DRVLOG_KEPT 64                  /* driver log messages kept between two fetches */
#define DRVLOG_TEXT 2048                /* bytes of one message kept (a reply stays under 1 MiB) */

struct drvlog_msg {
    struct drvlog_msg *next;
    int level;
    size_t len;
    char text[];
};

struct vgpu_drvlog {
    pthread_mutex_t lock;               /* the driver calls on_log on any thread */
    struct drvlog_msg *head, **tail;
    uint32_t n, dropped;                /* kept; dropped since the last fetch */
    CUlogsCallbackHandle handle;        /* the driver's, while watching */
    bool watching;
    bool registered;                    /* the driver holds on_log with this (not unregistered since) */
};

static int capture(int target, const char *name)
{
    int fd = memfd_create(name, MFD_CLOEXEC);

    if (fd < 0)
        return -errno;
    if (fcntl(fd, F_SETFL, O_APPEND) < 0 || dup2(fd, target) < 0 ||
        fcntl(target, F_SETFD, 0) < 0) {
        int e = errno;

        close(fd);
        return -e;
    }
    return fd;
}

int vgpu_devout_start(struct vgpu_session *s)
{
    int logfd;

    s->devout_fd[0] = s->devout_fd[1] = -1;
    fflush(stdout);
    fflush(stderr);
    logfd = fcntl(2, F_DUPFD_CLOEXEC, 3);
    if (logfd < 0) {
        vgpu_log(VGPU_LOG_WARN, "kernels' printf goes to the server's output: no fd for the log (%m)");
        return -errno;
    }
    vgpu_log_fd = logfd;
    /* where test runtimes and tools in this process write their own diagnostics */
    {
        char v[16];

        snprintf(v, sizeof(v), "%d", logfd);
        setenv("VGPU_SERVER_LOG_FD", v, 1);
    }
    s->devout_fd[0] = capture(1, "vgpu-device-stdout");
    s->devout_fd[1] = capture(2, "vgpu-device-stderr");
    if (s->devout_fd[0] < 0 || s->devout_fd[1] < 0) {
        vgpu_log(VGPU_LOG_WARN, "kernels' printf goes to the server's output: no memfd (%s)",
                 strerror(-(s->devout_fd[0] < 0 ? s->devout_fd[0] : s->devout_fd[1])));
        return -ENOMEM;
    }
    return 0;
}

void vgpu_devout_say(struct vgpu_session *s, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    int n;

    if (s->devout_fd[1] <= 2)
        return;                 /* no program to tell: a session not started by vgpu_session_run */
    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n <= 0)
        return;
    if ((size_t)n >= sizeof(line))
        n = sizeof(line) - 1;
    if (write(s->devout_fd[1], line, (size_t)n) == n) {
        s->devout_armed = true;
        s->devout_synced = false;
        s->devout_said = true;
    }
}

void vgpu_devout_arm(struct vgpu_session *s)
{
    s->devout_armed = true;
    s->devout_synced = false;
}

void vgpu_devout_synced_all(struct vgpu_session *s)
{
    s->devout_synced = true;
}

/* Bytes waiting in stream i (0 stdout, 1 stderr) past what was fetched. */
static uint64_t waiting(struct vgpu_session *s, int i)
{
    struct stat st;

    /* a session not started by vgpu_session_run (tests) has none: 0 is no file of ours */
    if (s->devout_fd[i] <= 2 || fstat(s->devout_fd[i], &st) < 0 || (uint64_t)st.st_size < s->devout_off[i])
        return 0;
    return (uint64_t)st.st_size - s->devout_off[i];
}

/*
 * Bytes waiting in stream i.  A client that never fetches cannot make the
 * session's memory grow: past the bound, they are dropped.
 */
static uint64_t waiting_bounded(struct vgpu_session *s, int i)
{
    uint64_t n = waiting(s, i);

    if (n <= DEVOUT_KEEP_MAX || ftruncate(s->devout_fd[i], 0))
        return n;
    s->devout_off[i] = 0;
    vgpu_log(VGPU_LOG_WARN, "vm %u: %llu bytes of what kernels printed were never fetched by the "
             "client; dropped", s->who.vm_id, (unsigned long long)n);
    return 0;
}

/* ---- the driver's log ---- */

static void CUDA_CB on_log(void *data, CUlogLevel level, char *message, size_t length)
{
    struct vgpu_drvlog *d = data;
    size_t n = message ? strnlen(message, length < DRVLOG_TEXT ? length : DRVLOG_TEXT) : 0;
    struct drvlog_msg *m = NULL;

    pthread_mutex_lock(&d->lock);
    if (d->watching && d->n < DRVLOG_KEPT && (m = malloc(sizeof(*m) + n))) {
        m->next = NULL;
        m->level = (int)level;
        m->len = n;
        memcpy(m->text, message, n);
        *d->tail = m;
        d->tail = &m->next;
        __atomic_store_n(&d->n, d->n + 1, __ATOMIC_RELEASE);
    } else if (d->watching) {
        __atomic_store_n(&d->dropped, d->dropped + 1, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&d->lock);
}

int vgpu_devout_log_watch(struct vgpu_session *s, bool on)
{
    VGPU_DRIVER_SYM(reg, cuLogsRegisterCallback);
    VGPU_DRIVER_SYM(unreg, cuLogsUnregisterCallback);
    struct vgpu_drvlog *d = s->drvlog;
    int st;

    if (!reg || !unreg)
        return CUDA_ERROR_NOT_SUPPORTED;
    if (!d) {
        /* freed at the session's end, once the driver no longer holds it (vgpu_devout_log_end) */
        if (!on || !(d = calloc(1, sizeof(*d))))
            return on ? CUDA_ERROR_OUT_OF_MEMORY : CUDA_ERROR_INVALID_VALUE;
        pthread_mutex_init(&d->lock, NULL);
        d->tail = &d->head;
        s->drvlog = d;
    }
    if (on == d->watching)
        return on ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
    if (on) {
        if (d->registered) {
            /* the driver would not let an earlier one go: it still delivers */
            pthread_mutex_lock(&d->lock);
            d->watching = true;
            pthread_mutex_unlock(&d->lock);
            return CUDA_SUCCESS;
        }
        st = reg(on_log, d, &d->handle);
        pthread_mutex_lock(&d->lock);
        d->watching = st == CUDA_SUCCESS;
        d->registered = st == CUDA_SUCCESS;
        pthread_mutex_unlock(&d->lock);
        return st;
    }
    st = unreg(d->handle);
    if (st == CUDA_SUCCESS)
        d->registered = false;
    pthread_mutex_lock(&d->lock);
    d->watching = false;         /* whatever the driver said: the client has none left */
    pthread_mutex_unlock(&d->lock);
    return st;
}

void vgpu_devout_log_end(struct vgpu_session *s)
{
    struct vgpu_drvlog *d = s->drvlog;

    if (d && d->watching)
        vgpu_devout_log_watch(s, false);
    /* while the driver may still call on_log with it, it stays */
    if (!d || d->registered)
        return;
    while (d->head) {
        struct drvlog_msg *m = d->head;

        d->head = m->next;
        free(m);
    }
    pthread_mutex_destroy(&d->lock);
    free(d);
    s->drvlog = NULL;
}

static bool drvlog_waiting(struct vgpu_session *s)
{
    struct vgpu_drvlog *d = s->drvlog;

    return d && (__atomic_load_n(&d->n, __ATOMIC_ACQUIRE) ||
                 __atomic_load_n(&d->dropped, __ATOMIC_ACQUIRE));
}

/* Moves the kept messages into r (the arena holds them until the reply is sent). */
static int drvlog_take(struct vgpu_session *s, struct vgpu_arena *arena, Vgpu__Wire__ControlReply *r)
{
    struct vgpu_drvlog *d = s->drvlog;
    struct drvlog_msg *m, *next;
    Vgpu__Wire__DriverLogMessage **out;
    size_t i = 0;
    int rc = 0;

    if (!d)
        return 0;
    pthread_mutex_lock(&d->lock);
    m = d->head;
    r->driver_log_dropped = d->dropped;
    out = d->n ? vgpu_arena_alloc(arena, d->n * sizeof(*out)) : NULL;
    if (d->n && !out) {
        pthread_mutex_unlock(&d->lock);
        return -ENOMEM;
    }
    for (; m; m = next) {
        Vgpu__Wire__DriverLogMessage *o = vgpu_arena_alloc(arena, sizeof(*o));
        uint8_t *t = vgpu_arena_alloc(arena, m->len ? m->len : 1);

        next = m->next;
        if (o && t) {
            vgpu__wire__driver_log_message__init(o);
            o->level = m->level;
            memcpy(t, m->text, m->len);
            o->text.data = t;
            o->text.len = m->len;
            out[i++] = o;
        } else {
            rc = -ENOMEM;
        }
        free(m);
    }
    d->head = NULL;
    d->tail = &d->head;
    __atomic_store_n(&d->n, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&d->dropped, 0, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&d->lock);
    r->driver_log = out;
    r->n_driver_log = i;
    return rc;
}

bool vgpu_devout_pending(struct vgpu_session *s, bool flushed)
{
    bool any;

    if (drvlog_waiting(s))
        return true;       /* only a client that registered a log callback gets messages */

    /* a client that does not announce it would take the flag for a malformed reply */
    if (!s->devout_armed || !(s->client_features & VGPU_FEATURE_DEVICE_OUTPUT))
        return false;
    /* the driver writes at the calls of flushes_printf() only: nothing new since the last look */
    if (!flushed && !s->devout_said)
        return false;
    s->devout_said = false;
    fflush(stdout);
    fflush(stderr);
    any = waiting_bounded(s, 0) | waiting_bounded(s, 1);   /* both: each is bounded */
    if (!any && s->devout_synced)
        s->devout_armed = false;
    return any;
}

/* Reads up to max bytes of stream i into the arena; the file empties once all is read. */
static int take(struct vgpu_session *s, int i, struct vgpu_arena *arena, size_t max,
                ProtobufCBinaryData *out, bool *more)
{
    uint64_t n = waiting(s, i);
    uint8_t *p;
    ssize_t got;

    if (n > max) {
        n = max;
        *more = true;
    }
    if (!n)
        return 0;
    p = vgpu_arena_alloc(arena, (size_t)n);
    if (!p)
        return -ENOMEM;
    got = pread(s->devout_fd[i], p, (size_t)n, (off_t)s->devout_off[i]);
    if (got < 0)
        return -errno;
    out->data = p;
    out->len = (size_t)got;
    s->devout_off[i] += (uint64_t)got;
    if (!waiting(s, i) && ftruncate(s->devout_fd[i], 0) == 0)
        s->devout_off[i] = 0;
    return 0;
}

int vgpu_devout_fetch(struct vgpu_session *s, struct vgpu_arena *arena, Vgpu__Wire__ControlReply *r)
{
    bool more = false;
    int rc;

    fflush(stdout);
    fflush(stderr);
    rc = take(s, 0, arena, DEVOUT_REPLY_MAX, &r->stdout_data, &more);
    if (rc == 0)
        rc = take(s, 1, arena, DEVOUT_REPLY_MAX - r->stdout_data.len, &r->stderr_data, &more);
    if (rc == 0)
        rc = drvlog_take(s, arena, r);
    r->more = more;
    return rc;
}
