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
 *     work.c), every reply that answers a call it waits for looks at the
 *     two files; when they hold bytes, the reply says so
 *     (ResultBatch.device_output) and the client fetches them before its
 *     call returns (Control FetchDeviceOutput), so the text lands where the
 *     synchronizing call returns, as natively;
 *   - a device-wide synchronize that found them empty disarms the look
 *     again, so a program that prints nothing pays one fstat per waited
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
 */
#include <errno.h>
#include <fcntl.h>
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

bool vgpu_devout_pending(struct vgpu_session *s)
{
    bool any;

    /* a client that does not announce it would take the flag for a malformed reply */
    if (!s->devout_armed || !(s->client_features & VGPU_FEATURE_DEVICE_OUTPUT))
        return false;
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
    r->more = more;
    return rc;
}
