/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Socket transports of the shim: unix:PATH for host processes and
 * containers, tcp:HOST:PORT for a vgpu-server on another machine.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <sys/un.h>
#include <unistd.h>

#include "shim_internal.h"
#include "vgpu/fdio.h"
#include "vgpu/futex.h"
#include "vgpu/shmring.h"

static int unix_connect(struct vgpu_transport *t, const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd;

    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    strcpy(sa.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;

        close(fd);
        return -e;
    }
    t->fd = fd;
    return 0;
}

/* A CUDA call must not hang on an unreachable host: connect gives up after 5 s. */
static int connect_bounded(int fd, const struct sockaddr *sa, socklen_t len)
{
    struct pollfd p = { .fd = fd, .events = POLLOUT };
    int flags = fcntl(fd, F_GETFL), err = 0;
    socklen_t elen = sizeof(err);

    fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    if (connect(fd, sa, len) < 0) {
        if (errno != EINPROGRESS)
            return -1;
        if (poll(&p, 1, 5000) != 1) {
            errno = ETIMEDOUT;
            return -1;
        }
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0 || err) {
            errno = err ? err : EIO;
            return -1;
        }
    }
    fcntl(fd, F_SETFL, flags);
    return 0;
}

static int tcp_connect(struct vgpu_transport *t, const char *hostport)
{
    char host[256];
    const char *colon = strrchr(hostport, ':');
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *ai, *p;
    int fd = -1, one = 1, e = EHOSTUNREACH;

    if (!colon || (size_t)(colon - hostport) >= sizeof(host))
        return -EINVAL;
    memcpy(host, hostport, (size_t)(colon - hostport));
    host[colon - hostport] = '\0';
    if (getaddrinfo(host, colon + 1, &hints, &ai))
        return -EHOSTUNREACH;
    for (p = ai; p; p = p->ai_next) {
        fd = socket(p->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect_bounded(fd, p->ai_addr, p->ai_addrlen) == 0)
            break;
        e = errno;
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    if (fd < 0)
        return -e;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    t->fd = fd;
    return 0;
}

/* A frame that fits goes into the ring's request area; 1 when it did. */
static int ring_send(struct vgpu_transport *t, const struct vgpu_frame_header *h,
                     const Vgpu__Wire__Envelope *env, const struct iovec *payload, int npayload)
{
    struct vgpu_ring *r = t->ring;
    size_t len;

    if (vgpu_frame_gather(h, env, payload, npayload, r->req, VGPU_RING_AREA, &len))
        return 0;
    r->req_len = (uint32_t)len;
    __atomic_store_n(&r->req_seq, ++t->seq, __ATOMIC_RELEASE);
    return 1;
}

/* After a request on either carrier: wake the server if it sleeps. */
static void ring_doorbell(struct vgpu_ring *r)
{
    __atomic_add_fetch(&r->doorbell, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&r->server_sleeping, __ATOMIC_SEQ_CST))
        vgpu_futex_wake(&r->doorbell);
}

static int sock_send(struct vgpu_transport *t, const struct vgpu_frame_header *h,
                     const Vgpu__Wire__Envelope *env, const struct iovec *payload, int npayload)
{
    int pass = t->pass_fd, rc = 0;

    t->pass_fd = -1;
    t->last_via_ring = t->ring && pass < 0 && ring_send(t, h, env, payload, npayload);
    if (!t->last_via_ring)
        rc = vgpu_fd_send_frame_fd(t->fd, h, env, payload, npayload, pass);
    if (t->ring && rc == 0)
        ring_doorbell(t->ring);
    return rc;
}

/*
 * The reply to a request sent through the ring: a bounded spin on rep_seq
 * (a round trip on a busy server is a few microseconds), then futex sleeps
 * that look at the socket between them, so a server that died is noticed.
 */
static int ring_recv(struct vgpu_transport *t, uint8_t **buf, size_t *len)
{
    struct vgpu_ring *r = t->ring;
    uint64_t until = vgpu_mono_ns() + VGPU_RING_SPIN_NS;
    uint32_t n;

    for (unsigned i = 1; __atomic_load_n(&r->rep_seq, __ATOMIC_ACQUIRE) != t->seq; i++) {
        struct pollfd p = { .fd = t->fd, .events = POLLIN };
        uint32_t seen;

        /* spin for up to VGPU_RING_SPIN_NS, looking at the clock now and then */
        if (i % 64 || vgpu_mono_ns() < until) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
            continue;
        }
        __atomic_store_n(&r->client_sleeping, 1, __ATOMIC_SEQ_CST);
        seen = __atomic_load_n(&r->rep_seq, __ATOMIC_SEQ_CST);
        if (seen != t->seq)
            vgpu_futex_wait(&r->rep_seq, seen, 50000000u);
        __atomic_store_n(&r->client_sleeping, 0, __ATOMIC_SEQ_CST);
        /* a server that went away hangs the socket up */
        if (__atomic_load_n(&r->rep_seq, __ATOMIC_ACQUIRE) != t->seq && poll(&p, 1, 0) > 0 &&
            (p.revents & (POLLHUP | POLLERR)))
            return -EPIPE;
    }
    n = r->rep_len;
    if (n == VGPU_RING_ON_SOCKET)
        return vgpu_fd_read_frame(t->fd, NULL, buf, len);
    if (n > VGPU_RING_AREA || n < VGPU_FRAME_HEADER_SIZE)
        return -EPROTO;
    *buf = malloc(n);
    if (!*buf)
        return -ENOMEM;
    memcpy(*buf, r->rep, n);
    *len = n;
    return 0;
}

static int sock_recv(struct vgpu_transport *t, uint8_t **buf, size_t *len)
{
    if (t->ring && t->last_via_ring)
        return ring_recv(t, buf, len);
    return vgpu_fd_read_frame(t->fd, NULL, buf, len);
}

static void sock_close(struct vgpu_transport *t)
{
    if (t->ring)
        munmap(t->ring, sizeof(*t->ring));
    t->ring = NULL;
    if (t->fd >= 0)
        close(t->fd);
    t->fd = -1;
}

const struct vgpu_transport_ops vgpu_transport_unix = {
    "unix", unix_connect, sock_send, sock_recv, sock_close,
};

const struct vgpu_transport_ops vgpu_transport_tcp = {
    "tcp", tcp_connect, sock_send, sock_recv, sock_close,
};
