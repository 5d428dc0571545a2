/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A vgpu-stub device's link: the chardev of one VM's QEMU, accepted only on
 * a socket of type device.  The device sends a HELLO with the VM's identity
 * (from QEMU's command line, not the guest; a socket configured with an
 * identity takes only a HELLO that says the same), then the frames of the
 * guest's clients, each tagged with the client's channel.  Every channel
 * gets a session process of its own, exactly as a host-direct connection
 * does (session.c), fed through a socketpair; a CLOSE record, a new Hello
 * on the same channel, or the end of the link ends it.
 *
 * One event loop (loop.c) watches the link and every session, so a session
 * busy in a long call never stalls the link or the VM's other channels, and
 * a link that goes away ends every session at once.  Answers go back in the
 * order the frames came, as the device counts them.  The link owns the
 * shared BAR's slots: a channel that attaches its queue pair in a slot gets
 * it only after the session that held it before has ended.
 * Record format: docs/specs/vgpu-stub.md, "The link to vgpu-server".
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "contain.h"
#include "link_record.h"
#include "loop.h"
#include "server_internal.h"
#include "vgpu/fdio.h"
#include "vgpu/wire.h"

/* Each channel is a process with a CUDA context: a guest gets this many. */
#define LINK_MAX_CHANNELS 64
/* Frames answered in order, at most this many unanswered (the device owes itself 5). */
#define LINK_MAX_OWED 16

struct channel {
    uint32_t id;
    int fd;
    pid_t pid;
    bool reaped;               /* its process was reaped already (it ended on its own) */
    int slot;                  /* the shared BAR slot it holds, or -1 */
};

struct owed {                  /* a frame forwarded, its answer in the device's order */
    uint32_t channel;
    bool done;
    uint8_t *answer;           /* NULL when done: FAIL */
    size_t len;
};

struct link {
    int fd;
    const char *cache_dir;
    struct vgpu_identity who;
    struct vgpu_loop *loop;
    struct channel ch[LINK_MAX_CHANNELS];
    size_t nch;
    struct owed q[LINK_MAX_OWED];
    unsigned qhead, qn;
    struct vgpu_link_rx rx;
    bool dead;                 /* the link failed: end everything */
    int listed;                /* its entry in the scheduler's table of links (vgpuctl), or < 0 */
};

static void send_record(struct link *l, uint16_t type, uint32_t channel, const void *payload,
                        uint32_t len)
{
    uint8_t h[VGPU_LINK_HEADER_SIZE];
    struct iovec iov[2] = { { h, sizeof(h) }, { (void *)payload, len } };

    vgpu_link_header_pack(h, type, channel, len);
    if (!l->dead && vgpu_fd_writev_all(l->fd, iov, len ? 2 : 1))
        l->dead = true;
}

/* Sends the answers at the head of the queue that are known, in order. */
static void flush_owed(struct link *l)
{
    while (l->qn && l->q[l->qhead].done) {
        struct owed *o = &l->q[l->qhead];

        if (o->answer)
            send_record(l, VGPU_LINK_FRAME, o->channel, o->answer, (uint32_t)o->len);
        else
            send_record(l, VGPU_LINK_FAIL, o->channel, NULL, 0);
        free(o->answer);
        *o = (struct owed){ 0 };
        l->qhead = (l->qhead + 1) % LINK_MAX_OWED;
        l->qn--;
    }
}

/* The oldest unanswered frame of channel id, or NULL. */
static struct owed *owed_of(struct link *l, uint32_t id)
{
    for (unsigned k = 0; k < l->qn; k++) {
        struct owed *o = &l->q[(l->qhead + k) % LINK_MAX_OWED];

        if (!o->done && o->channel == id)
            return o;
    }
    return NULL;
}

static void qp_sessions_gone(pid_t pid);

static void end_channel(struct link *l, struct channel *c, const char *why)
{
    struct owed *o;
    int status;

    vgpu_loop_del(l->loop, c->fd);
    close(c->fd);
    /*
     * The guest process is gone: its session ends with EOF, unless it is
     * inside a long GPU wait, which must not stall the VM's other channels.
     */
    for (int t = 0; !c->reaped && t < 20; t++) {
        pid_t r = waitpid(c->pid, &status, WNOHANG);

        if (r != 0) {
            c->reaped = true;  /* by this, or before (-1: reap_sessions took it) */
            if (r > 0)
                vgpu_contain_reaped(c->pid, status);
        } else {
            usleep(5000);
        }
    }
    if (!c->reaped) {
        /* still ours (not reaped), so the pid cannot have been reused */
        kill(c->pid, SIGKILL);
        waitpid(c->pid, NULL, 0);
    }
    vgpu_sched_reap(c->pid);
    qp_sessions_gone(c->pid);
    while ((o = owed_of(l, c->id)))
        o->done = true;        /* FAIL: the device shows SERVER_GONE */
    vgpu_log(VGPU_LOG_INFO, "vm %u: channel %u closed (%s)", l->who.vm_id, c->id, why);
    *c = l->ch[--l->nch];
    vgpu_sched_link_channels(l->listed, (uint32_t)l->nch, false);
    flush_owed(l);
}

static struct channel *find_channel(struct link *l, uint32_t id)
{
    for (size_t i = 0; i < l->nch; i++)
        if (l->ch[i].id == id)
            return &l->ch[i];
    return NULL;
}

/* A session answered (or ended): its answer joins the queue in the device's order. */
static void on_session(struct vgpu_loop *loop, int fd, short revents, void *opaque)
{
    struct link *l = opaque;
    struct channel *c = NULL;
    struct owed *o;
    uint8_t *answer;
    size_t alen;

    (void)loop;
    for (size_t i = 0; i < l->nch && !c; i++)
        if (l->ch[i].fd == fd)
            c = &l->ch[i];
    if (!c)
        return;
    if (!(revents & POLLIN)) {
        end_channel(l, c, "its session ended");
        return;
    }
    if (vgpu_fd_read_frame(fd, NULL, &answer, &alen)) {
        end_channel(l, c, "its session ended");
        return;
    }
    o = owed_of(l, c->id);
    if (!o || alen > VGPU_LINK_MAX_PAYLOAD) {
        /* the device cannot take it; the client's session goes, not the VM's link */
        vgpu_log(VGPU_LOG_WARN, "vm %u: channel %u answered %s (%zu bytes)", l->who.vm_id,
                 c->id, o ? "over the link's limit" : "a frame nobody asked for", alen);
        free(answer);
        end_channel(l, c, "bad answer");
        return;
    }
    o->answer = answer;
    o->len = alen;
    o->done = true;
    flush_owed(l);
}

static struct channel *open_channel(struct link *l, uint32_t id)
{
    struct channel *c;
    int sv[2];
    pid_t pid, parent;

    if (l->nch >= LINK_MAX_CHANNELS) {
        vgpu_log(VGPU_LOG_WARN, "vm %u: refusing channel %u: %d client processes at once is "
                 "the limit", l->who.vm_id, id, LINK_MAX_CHANNELS);
        return NULL;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return NULL;
    parent = getpid();
    pid = fork();
    if (pid < 0) {
        close(sv[0]);
        close(sv[1]);
        return NULL;
    }
    if (pid == 0) {
        vgpu_contain_orphan(parent);
        close(sv[0]);
        close(l->fd);
        for (size_t i = 0; i < l->nch; i++)
            close(l->ch[i].fd);
        vgpu_session_run(sv[1], l->cache_dir, &l->who, NULL);
        _exit(0);
    }
    close(sv[1]);
    c = &l->ch[l->nch];
    *c = (struct channel){ .id = id, .fd = sv[0], .pid = pid, .slot = -1 };
    if (vgpu_loop_add(l->loop, c->fd, POLLIN, on_session, l) < 0) {
        l->nch++;
        end_channel(l, c, "out of memory");
        return NULL;
    }
    l->nch++;
    vgpu_sched_link_channels(l->listed, (uint32_t)l->nch, true);
    vgpu_log(VGPU_LOG_INFO, "vm %u: channel %u opened", l->who.vm_id, id);
    return c;
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

/*
 * The shared BAR slot a frame attaches its queue pair in (a Control
 * AttachQueuePair with in_bar), or -1: the link must know before the
 * session sees it, to end the slot's previous holder.
 */
static int attach_slot(const uint8_t *frame, uint32_t len)
{
    struct vgpu_frame f = { 0 };
    const Vgpu__Wire__AttachQueuePair *a;
    int slot = -1;

    if (!vgpu_link_bar || vgpu_frame_decode(frame, len, NULL, NULL, NULL, &f) ||
        f.env->body_case != VGPU__WIRE__ENVELOPE__BODY_CONTROL ||
        f.env->control->op_case != VGPU__WIRE__CONTROL__OP_ATTACH_QUEUE_PAIR)
        goto out;
    a = f.env->control->attach_queue_pair;
    if (a->in_bar && (a->bar_offset >> VGPU_STUB_SLOT_SHIFT) < VGPU_STUB_MAX_DOORBELLS)
        slot = (int)(a->bar_offset >> VGPU_STUB_SLOT_SHIFT);
out:
    vgpu_frame_release(&f);
    return slot;
}

/* Slot k goes to channel c: whoever held it before ends first. */
static void take_slot(struct link *l, struct channel *c, int k)
{
    for (size_t i = 0; i < l->nch; i++)
        if (&l->ch[i] != c && l->ch[i].slot == k) {
            vgpu_log(VGPU_LOG_INFO, "vm %u: channel %u takes BAR slot %d from channel %u",
                     l->who.vm_id, c->id, k, l->ch[i].id);
            if (c == &l->ch[l->nch - 1])
                c = &l->ch[i];         /* end_channel moves the last channel into i */
            end_channel(l, &l->ch[i], "its BAR slot was given to a new process");
            break;
        }
    c->slot = k;
}

static void forward(struct link *l, struct vgpu_link_record *r)
{
    struct channel *c = find_channel(l, r->channel);
    struct iovec iov = { r->payload, r->len };
    int slot;

    if (l->qn == LINK_MAX_OWED) {
        vgpu_log(VGPU_LOG_WARN, "vm %u: more than %d frames unanswered on the device link; "
                 "closing it", l->who.vm_id, LINK_MAX_OWED);
        l->dead = true;
        return;
    }
    l->q[(l->qhead + l->qn++) % LINK_MAX_OWED] = (struct owed){ .channel = r->channel };
    if (vgpu_link_frame_check(r->payload, r->len)) {
        vgpu_log(VGPU_LOG_WARN, "vm %u: channel %u sent a FRAME record of %u bytes that is not "
                 "one whole frame; ending that channel", l->who.vm_id, r->channel, r->len);
        if (c)
            end_channel(l, c, "malformed record");
        else
            owed_of(l, r->channel)->done = true;
        flush_owed(l);
        return;
    }
    if (c && is_hello(r->payload, r->len)) {
        end_channel(l, c, "its client started over");
        c = NULL;
    }
    if (!c && !(c = open_channel(l, r->channel))) {
        owed_of(l, r->channel)->done = true;
        flush_owed(l);
        return;
    }
    slot = attach_slot(r->payload, r->len);
    if (slot >= 0)
        take_slot(l, c, slot);
    c = find_channel(l, r->channel);
    if (vgpu_fd_writev_all(c->fd, &iov, 1))
        end_channel(l, c, "its session ended");
}

static void handle_record(struct link *l, struct vgpu_link_record *r)
{
    struct channel *c;

    switch (r->type) {
    case VGPU_LINK_FRAME:
        forward(l, r);
        break;
    case VGPU_LINK_CLOSE:
        c = find_channel(l, r->channel);
        if (r->len)
            vgpu_log(VGPU_LOG_WARN, "vm %u: CLOSE record with a payload; ending channel %u",
                     l->who.vm_id, r->channel);
        if (c)
            end_channel(l, c, "the device closed it");
        break;
    default:
        vgpu_log(VGPU_LOG_INFO, "vm %u: record type %u ignored", l->who.vm_id, r->type);
        break;
    }
    free(r->payload);
}

static void on_link(struct vgpu_loop *loop, int fd, short revents, void *opaque)
{
    struct link *l = opaque;
    uint8_t buf[64 << 10];
    ssize_t n;

    (void)loop;
    (void)revents;
    n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR)
        return;
    if (n <= 0) {
        l->dead = true;
        return;
    }
    for (size_t off = 0; off < (size_t)n && !l->dead;) {
        struct vgpu_link_record r;
        size_t used;
        int rc = vgpu_link_rx_feed(&l->rx, buf + off, (size_t)n - off, &used, &r);

        off += used;
        if (rc < 0) {
            vgpu_log(VGPU_LOG_WARN, "vm %u: bad record on the device link (%s); closing it",
                     l->who.vm_id, strerror(-rc));
            l->dead = true;
        } else if (rc == 1) {
            handle_record(l, &r);
        }
    }
}

uint8_t *vgpu_link_bar;
uint64_t vgpu_link_bar_size;
int vgpu_link_bar_fd = -1;
int vgpu_link_bells[VGPU_STUB_MAX_DOORBELLS];
int vgpu_link_nbells;

/*
 * A session process ended: a guest client waiting on a queue pair in the
 * shared BAR learns it from the pair's header (it cannot see the process).
 */
static void qp_sessions_gone(pid_t pid)
{
    uint64_t slots = vgpu_link_bar_size >> VGPU_STUB_SLOT_SHIFT;

    if (!vgpu_link_bar)
        return;
    for (uint64_t k = 0; k < (slots ? slots : 1); k++)
        vgpu_qp_mark_gone((struct vgpu_qp_hdr *)(vgpu_link_bar + (k << VGPU_STUB_SLOT_SHIFT)),
                          (uint32_t)pid);
}

/*
 * The device's shared BAR (a memfd QEMU passed with HELLO): mapped here,
 * before any channel's session is forked, so every session inherits it,
 * and its fd with it.
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
    if (p == MAP_FAILED) {
        vgpu_log(VGPU_LOG_WARN, "vm %u: cannot map the shared BAR: %s", vm, strerror(errno));
        close(fd);
        return;
    }
    /* kept (not across exec): a session maps parts of it again for mapped host memory */
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    vgpu_link_bar_fd = fd;
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
    for (uint32_t k = 0; k < VGPU_STUB_MAX_DOORBELLS; k++)
        vgpu_link_bells[k] = -1;
    for (uint32_t k = 0; k < n; k++) {
        char link[64], path[64];
        ssize_t r;

        snprintf(path, sizeof(path), "/proc/self/fd/%d", fds[k]);
        r = readlink(path, link, sizeof(link) - 1);
        if (!vgpu_link_bar || k >= VGPU_STUB_MAX_DOORBELLS || r <= 0 ||
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

/*
 * The first record: HELLO, with the shared BAR's memfd and the doorbells'
 * eventfds riding with it.  0, or -1 when the link is not a device's or
 * says an identity its socket does not give.
 */
static void close_fds(int *fds, unsigned from)
{
    for (unsigned i = from; i < VGPU_LINK_HELLO_MAX_FDS; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

static int read_hello(struct link *l, const struct vgpu_listen_cfg *lc)
{
    uint8_t h[VGPU_LINK_HEADER_SIZE], payload[VGPU_LINK_HELLO_MAX];
    int fds[VGPU_LINK_HELLO_MAX_FDS];
    struct vgpu_link_record r;
    struct vgpu_link_hello hello;
    uint32_t nbells;

    if (vgpu_fd_read_full_fds(l->fd, h, sizeof(h), fds, VGPU_LINK_HELLO_MAX_FDS) ||
        vgpu_link_header_read(h, sizeof(payload), &r) || r.type != VGPU_LINK_HELLO ||
        vgpu_fd_read_full(l->fd, payload, r.len) || vgpu_link_hello_unpack(payload, r.len, &hello)) {
        vgpu_log(VGPU_LOG_WARN, "a device link did not start with its HELLO; closing it");
        close_fds(fds, 0);
        return -1;
    }
    l->who.vm_id = hello.vm_id;
    l->who.pool = (char)hello.pool_id;
    l->who.priority = hello.priority;
    l->who.from_device = true;
    if (lc->pinned && (l->who.vm_id != lc->who.vm_id || l->who.pool != lc->who.pool ||
                       l->who.priority != lc->who.priority)) {
        vgpu_log(VGPU_LOG_WARN, "refused a device link on %s: its HELLO says vm %u, pool %c, "
                 "%s, and the socket is vm %u's (pool %c, %s); give QEMU's vgpu-stub the "
                 "socket's identity, or the VM a socket of its own", lc->address,
                 l->who.vm_id, l->who.pool, vgpu_prio_name(l->who.priority), lc->who.vm_id,
                 lc->who.pool, vgpu_prio_name(lc->who.priority));
        close_fds(fds, 0);
        return -1;
    }
    nbells = hello.doorbells < VGPU_STUB_MAX_DOORBELLS ? hello.doorbells : VGPU_STUB_MAX_DOORBELLS;
    close_fds(fds, 1 + nbells);
    if (fds[0] >= 0)
        map_bar(l->who.vm_id, fds[0], hello.bar_size);
    take_bells(l->who.vm_id, fds + 1, nbells);
    return 0;
}

/* Sessions that ended on their own (a crash) are reaped, and their channels end. */
static void reap_sessions(struct link *l)
{
    pid_t dead;
    int status;

    while ((dead = waitpid(-1, &status, WNOHANG)) > 0) {
        vgpu_contain_reaped(dead, status);
        for (size_t k = 0; k < l->nch; k++)
            if (l->ch[k].pid == dead)
                l->ch[k].reaped = true;
        vgpu_sched_reap(dead);
        qp_sessions_gone(dead);
    }
}

void vgpu_link_run(int fd, const char *cache_dir, const struct vgpu_listen_cfg *lc)
{
    struct link l = { .fd = fd, .cache_dir = cache_dir, .listed = -1 };
    int32_t dup;

    signal(SIGPIPE, SIG_IGN);
    if (read_hello(&l, lc))
        return;
    alarm(0);                  /* past the handshake (main.c set its deadline) */
    vgpu_log(VGPU_LOG_INFO, "vgpu-stub link: vm %u, pool %c, priority %u", l.who.vm_id,
             l.who.pool, l.who.priority);
    l.listed = vgpu_sched_link_up(l.who.vm_id, l.who.pool, l.who.priority, lc->address, &dup);
    if (dup)
        vgpu_log(VGPU_LOG_WARN, "vm %u: another device link (process %d) says vm_id %u too: "
                 "the two VMs share that VM's memory limit, its sessions and its CUDA IPC "
                 "handles; give each VM a vm-id of its own (-device vgpu-stub,vm-id=N)",
                 l.who.vm_id, (int)dup, l.who.vm_id);
    vgpu_proctitle_set("vgpu-server: link vm %u pool %c %s", l.who.vm_id, l.who.pool,
                       vgpu_prio_name(l.who.priority));
    vgpu_link_rx_init(&l.rx, VGPU_LINK_MAX_PAYLOAD);
    l.loop = vgpu_loop_new();
    if (!l.loop || vgpu_loop_add(l.loop, fd, POLLIN, on_link, &l) < 0)
        l.dead = true;
    while (!l.dead) {
        reap_sessions(&l);
        if (vgpu_loop_run_once(l.loop, 100) < 0)
            break;
    }
    vgpu_log(VGPU_LOG_INFO, "vm %u: device link closed, ending %zu session(s)", l.who.vm_id, l.nch);
    vgpu_sched_link_down(l.listed);    /* first: a QEMU linking again meanwhile is no clash */
    l.listed = -1;
    while (l.nch)
        end_channel(&l, &l.ch[l.nch - 1], "the link closed");
    for (unsigned k = 0; k < LINK_MAX_OWED; k++)
        free(l.q[k].answer);
    vgpu_link_rx_release(&l.rx);
    vgpu_loop_free(l.loop);
}
