/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A vgpu-stub device's link: the chardev of one VM's QEMU.  The device sends
 * a HELLO with the VM's identity (from QEMU's command line, not the guest),
 * then the frames of the guest's clients, each tagged with the client's
 * channel.  Every channel gets a session process of its own, exactly as a
 * host-direct connection does (session.c), fed through a socketpair; a
 * CLOSE record, a new Hello on the same channel, or the end of the link ends
 * it.  The device has at most one frame in flight, so this loop forwards a
 * frame and waits for its answer before reading the next record.
 * Record format: docs/specs/vgpu-stub.md, "The link to vgpu-server".
 */
#include <errno.h>
#include <stdio.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "server_internal.h"
#include "vgpu/fdio.h"
#include "vgpu/wire.h"

#define LINK_MAGIC 0x4c445056u
#define LINK_HEADER_SIZE 16
#define LINK_MAX (64u << 20)
/* Each channel is a process with a CUDA context: a guest gets this many. */
#define LINK_MAX_CHANNELS 64

enum { LINK_HELLO = 1, LINK_FRAME = 2, LINK_CLOSE = 3, LINK_FAIL = 4 };

struct channel {
    uint32_t id;
    int fd;
    pid_t pid;
    bool reaped;               /* its process was reaped already (it ended on its own) */
};

struct link {
    int fd;
    const char *cache_dir;
    struct vgpu_identity who;
    struct channel *ch;
    size_t nch, cap;
};

static uint32_t ld32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void st32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static int send_record(struct link *l, uint16_t type, uint32_t channel, const void *payload,
                       uint32_t len)
{
    uint8_t h[LINK_HEADER_SIZE];
    struct iovec iov[2] = { { h, sizeof(h) }, { (void *)payload, len } };

    st32(h, LINK_MAGIC);
    h[4] = (uint8_t)type;
    h[5] = (uint8_t)(type >> 8);
    h[6] = h[7] = 0;
    st32(h + 8, channel);
    st32(h + 12, len);
    return vgpu_fd_writev_all(l->fd, iov, len ? 2 : 1);
}

static void qp_sessions_gone(pid_t pid);

static void end_channel(struct link *l, size_t i)
{
    close(l->ch[i].fd);
    /*
     * The guest process is gone: its session ends with EOF, unless it is
     * inside a long GPU wait, which must not stall the VM's other channels.
     */
    for (int t = 0; !l->ch[i].reaped && t < 20; t++) {
        if (waitpid(l->ch[i].pid, NULL, WNOHANG) != 0)
            l->ch[i].reaped = true;
        else
            usleep(5000);
    }
    if (!l->ch[i].reaped) {
        /* still ours (not reaped), so the pid cannot have been reused */
        kill(l->ch[i].pid, SIGKILL);
        waitpid(l->ch[i].pid, NULL, 0);
    }
    vgpu_sched_reap(l->ch[i].pid);
    qp_sessions_gone(l->ch[i].pid);
    vgpu_log(VGPU_LOG_INFO, "vm %u: channel %u closed", l->who.vm_id, l->ch[i].id);
    l->ch[i] = l->ch[--l->nch];
}

static struct channel *open_channel(struct link *l, uint32_t id)
{
    int sv[2];
    pid_t pid;

    if (l->nch >= LINK_MAX_CHANNELS) {
        vgpu_log(VGPU_LOG_WARN, "vm %u: refusing channel %u: %d client processes at once is "
                 "the limit", l->who.vm_id, id, LINK_MAX_CHANNELS);
        return NULL;
    }
    if (l->nch == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        struct channel *p = realloc(l->ch, cap * sizeof(*p));

        if (!p)
            return NULL;
        l->ch = p;
        l->cap = cap;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return NULL;
    pid = fork();
    if (pid < 0) {
        close(sv[0]);
        close(sv[1]);
        return NULL;
    }
    if (pid == 0) {
        close(sv[0]);
        close(l->fd);
        for (size_t i = 0; i < l->nch; i++)
            close(l->ch[i].fd);
        vgpu_session_run(sv[1], l->cache_dir, &l->who);
        _exit(0);
    }
    close(sv[1]);
    l->ch[l->nch].id = id;
    l->ch[l->nch].fd = sv[0];
    l->ch[l->nch].pid = pid;
    l->ch[l->nch].reaped = false;
    vgpu_log(VGPU_LOG_INFO, "vm %u: channel %u opened", l->who.vm_id, id);
    return &l->ch[l->nch++];
}

static ssize_t find_channel(struct link *l, uint32_t id)
{
    for (size_t i = 0; i < l->nch; i++)
        if (l->ch[i].id == id)
            return (ssize_t)i;
    return -1;
}

/* A Hello on a channel that has a session: the client restarted (pid reuse). */
static bool is_hello(const uint8_t *frame, uint32_t len)
{
    struct vgpu_frame f = { 0 };
    bool hello = vgpu_frame_decode(frame, len, NULL, NULL, NULL, &f) == 0 &&
                 f.env->body_case == VGPU__WIRE__ENVELOPE__BODY_HELLO;

    vgpu_frame_release(&f);
    return hello;
}

static int forward(struct link *l, uint32_t id, uint8_t *frame, uint32_t len)
{
    ssize_t i = find_channel(l, id);
    struct channel *c;
    struct iovec iov = { frame, len };
    uint8_t *answer;
    size_t alen;
    int rc;

    if (i >= 0 && is_hello(frame, len))
        end_channel(l, (size_t)i), i = -1;
    c = i >= 0 ? &l->ch[i] : open_channel(l, id);
    if (!c)
        return send_record(l, LINK_FAIL, id, NULL, 0);
    rc = vgpu_fd_writev_all(c->fd, &iov, 1);
    if (rc == 0)
        rc = vgpu_fd_read_frame(c->fd, NULL, &answer, &alen);
    if (rc) {
        /* the session refused the frame or died: its client gets SERVER_GONE */
        vgpu_log(VGPU_LOG_INFO, "vm %u: channel %u session ended", l->who.vm_id, id);
        end_channel(l, (size_t)(c - l->ch));
        return send_record(l, LINK_FAIL, id, NULL, 0);
    }
    if (alen > LINK_MAX) {
        /* the device cannot take it; the client's session goes, not the VM's link */
        vgpu_log(VGPU_LOG_WARN, "vm %u: channel %u answer of %zu bytes is over the link's "
                 "limit", l->who.vm_id, id, alen);
        free(answer);
        end_channel(l, (size_t)(c - l->ch));
        return send_record(l, LINK_FAIL, id, NULL, 0);
    }
    rc = send_record(l, LINK_FRAME, id, answer, (uint32_t)alen);
    free(answer);
    return rc;
}

uint8_t *vgpu_link_bar;
uint64_t vgpu_link_bar_size;
int vgpu_link_bells[VGPU_LINK_MAX_BELLS];
int vgpu_link_nbells;

/*
 * A session process ended: a guest client waiting on a queue pair in the
 * shared BAR learns it from the pair's header (it cannot see the process).
 */
static void qp_sessions_gone(pid_t pid)
{
    uint64_t slots = vgpu_link_bar_size >> VGPU_QP_SLOT_SHIFT;

    if (!vgpu_link_bar)
        return;
    for (uint64_t k = 0; k < (slots ? slots : 1); k++)
        vgpu_qp_mark_gone((struct vgpu_qp_hdr *)(vgpu_link_bar + (k << VGPU_QP_SLOT_SHIFT)),
                          (uint32_t)pid);
}

/*
 * The device's shared BAR (a memfd QEMU passed with HELLO): mapped here,
 * before any channel's session is forked, so every session inherits it.
 * It must be sealed against shrinking, like a host-direct region.
 */
static void map_bar(uint32_t vm, int fd, uint64_t size)
{
    void *p;

    if (!size || size > ((uint64_t)1 << 36) || !vgpu_sealed_memfd(fd, size)) {
        vgpu_log(VGPU_LOG_WARN, "vm %u: the shared BAR's memory is not a sealed memfd of %llu "
                 "bytes; guests use the 1 KB window only (give QEMU memory-backend-memfd)", vm,
                 (unsigned long long)size);
        close(fd);
        return;
    }
    p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        vgpu_log(VGPU_LOG_WARN, "vm %u: cannot map the shared BAR: %s", vm, strerror(errno));
        return;
    }
    vgpu_link_bar = p;
    vgpu_link_bar_size = size;
    vgpu_log(VGPU_LOG_INFO, "vm %u: shared BAR of %llu MiB mapped", vm,
             (unsigned long long)(size >> 20));
}

/*
 * The doorbells' eventfds that came with HELLO (in the order of the slots).
 * Only with a mapped BAR, and only eventfds: anything else is closed.
 */
static void take_bells(uint32_t vm, const int *fds, uint32_t n)
{
    for (uint32_t k = 0; k < VGPU_LINK_MAX_BELLS; k++)
        vgpu_link_bells[k] = -1;
    for (uint32_t k = 0; k < n; k++) {
        char link[64], path[64];
        ssize_t r;

        snprintf(path, sizeof(path), "/proc/self/fd/%d", fds[k]);
        r = readlink(path, link, sizeof(link) - 1);
        if (!vgpu_link_bar || k >= VGPU_LINK_MAX_BELLS || r <= 0 ||
            (link[r] = '\0', strcmp(link, "anon_inode:[eventfd]"))) {
            close(fds[k]);
            continue;
        }
        vgpu_link_bells[k] = fds[k];
        vgpu_link_nbells = (int)k + 1;
    }
    if (vgpu_link_nbells)
        vgpu_log(VGPU_LOG_INFO, "vm %u: %d doorbell(s) for queue pairs in the shared BAR", vm,
                 vgpu_link_nbells);
}

void vgpu_link_run(int fd, const char *cache_dir)
{
    struct link l = { .fd = fd, .cache_dir = cache_dir };
    uint8_t h[LINK_HEADER_SIZE], hello[24] = { 0 };
    int fds[1 + VGPU_LINK_MAX_BELLS];
    uint32_t hlen, nbells = 0;
    int rc;

    signal(SIGPIPE, SIG_IGN);
    /*
     * HELLO: 12 bytes; 20 with the size of the shared BAR, whose memfd rides
     * with it; 24 with the number of doorbell eventfds that follow the memfd.
     */
    if (vgpu_fd_read_full_fds(fd, h, sizeof(h), fds, 1 + VGPU_LINK_MAX_BELLS) ||
        ld32(h) != LINK_MAGIC || (h[4] | h[5] << 8) != LINK_HELLO ||
        ((hlen = ld32(h + 12)) != 12 && hlen != 20 && hlen != 24) ||
        vgpu_fd_read_full(fd, hello, hlen)) {
        vgpu_log(VGPU_LOG_WARN, "a device link did not start with its HELLO; closing it");
        for (int i = 0; i < 1 + VGPU_LINK_MAX_BELLS; i++)
            if (fds[i] >= 0)
                close(fds[i]);
        return;
    }
    if (hlen == 24)
        nbells = ld32(hello + 20);
    for (uint32_t i = 1 + (nbells < VGPU_LINK_MAX_BELLS ? nbells : VGPU_LINK_MAX_BELLS);
         i < 1 + VGPU_LINK_MAX_BELLS; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    if (fds[0] >= 0)
        map_bar(ld32(hello), fds[0], (uint64_t)ld32(hello + 12) | (uint64_t)ld32(hello + 16) << 32);
    take_bells(ld32(hello), fds + 1, nbells < VGPU_LINK_MAX_BELLS ? nbells : VGPU_LINK_MAX_BELLS);
    l.who.vm_id = ld32(hello);
    l.who.pool = (char)hello[4];
    l.who.priority = hello[5];
    l.who.from_device = true;
    vgpu_log(VGPU_LOG_INFO, "vgpu-stub link: vm %u, pool %c, priority %u", l.who.vm_id,
             l.who.pool, l.who.priority);
    for (;;) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        uint32_t type, id, len;
        uint8_t *payload = NULL;
        pid_t dead;

        /* sessions that ended on their own (a crash) are reaped while the link is quiet */
        while (poll(&p, 1, 100) == 0 || (p.revents & POLLIN) == 0) {
            while ((dead = waitpid(-1, NULL, WNOHANG)) > 0) {
                for (size_t k = 0; k < l.nch; k++)
                    if (l.ch[k].pid == dead)
                        l.ch[k].reaped = true;
                vgpu_sched_reap(dead);
                qp_sessions_gone(dead);
            }
            if (p.revents & (POLLHUP | POLLERR))
                break;
        }
        rc = vgpu_fd_read_full(fd, h, sizeof(h));
        if (rc)
            break;
        type = (uint32_t)(h[4] | h[5] << 8);
        id = ld32(h + 8);
        len = ld32(h + 12);
        if (ld32(h) != LINK_MAGIC || len > LINK_MAX) {
            vgpu_log(VGPU_LOG_WARN, "vm %u: bad record on the device link; closing it", l.who.vm_id);
            break;
        }
        if (len && (!(payload = malloc(len)) || vgpu_fd_read_full(fd, payload, len))) {
            free(payload);
            break;
        }
        if (type == LINK_FRAME) {
            rc = forward(&l, id, payload, len);
        } else if (type == LINK_CLOSE) {
            ssize_t i = find_channel(&l, id);

            if (i >= 0)
                end_channel(&l, (size_t)i);
            rc = 0;
        } else {
            vgpu_log(VGPU_LOG_INFO, "vm %u: record type %u ignored", l.who.vm_id, type);
            rc = 0;
        }
        free(payload);
        if (rc)
            break;
    }
    vgpu_log(VGPU_LOG_INFO, "vm %u: device link closed, ending %zu session(s)", l.who.vm_id, l.nch);
    while (l.nch)
        end_channel(&l, l.nch - 1);
    free(l.ch);
}
