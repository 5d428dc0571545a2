/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Socket transports of the shim: unix:PATH for host processes and
 * containers, and plain TCP (VGPU_TLS=insecure) for a vgpu-server on
 * another machine; tcp:HOST:PORT speaks TLS otherwise (transport_tls.c).
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

#include "client/transport.h"
#include "vgpu/fdio.h"
#include "vgpu/futex.h"

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

int vgpu_shim_tcp_connect(struct vgpu_transport *t, const char *hostport)
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

static int sock_send(struct vgpu_transport *t, const struct vgpu_frame_header *h,
                     const Vgpu__Wire__Envelope *env, const struct iovec *payload, int npayload)
{
    int pass = t->pass_fd, rc;

    t->pass_fd = -1;
    rc = vgpu_fd_send_frame_fd(t->fd, h, env, payload, npayload, pass);
    /* a sleeping server waits on the doorbell, not on the socket */
    if (rc == 0 && t->qp_mem) {
        __atomic_add_fetch(&t->qp.hdr->socket_frames, 1, __ATOMIC_RELEASE);
        vgpu_shim_qp_ring(t);
    }
    return rc;
}

static int sock_recv(struct vgpu_transport *t, uint8_t **buf, size_t *len)
{
    return vgpu_fd_read_frame(t->fd, NULL, buf, len);
}

static void sock_bell(struct vgpu_transport *t)
{
    vgpu_futex_wake(&t->qp.hdr->doorbell);
}

/* A server that went away hangs the socket up. */
static int sock_alive(struct vgpu_transport *t)
{
    struct pollfd p = { .fd = t->fd, .events = POLLIN };

    if (poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR)))
        return -EPIPE;
    return 0;
}

static void sock_close(struct vgpu_transport *t)
{
    if (t->qp_mem)
        munmap(t->qp_mem, t->qp_len);
    t->qp_mem = NULL;
    if (t->fd >= 0)
        close(t->fd);
    t->fd = -1;
}

const struct vgpu_transport_ops vgpu_transport_unix = {
    .name = "unix", .connect = unix_connect, .send = sock_send, .recv = sock_recv,
    .close = sock_close, .bell = sock_bell, .alive = sock_alive, .qp_futex = true,
};

const struct vgpu_transport_ops vgpu_transport_tcp = {
    .name = "tcp", .connect = vgpu_shim_tcp_connect, .send = sock_send, .recv = sock_recv,
    .close = sock_close, .bell = sock_bell, .alive = sock_alive, .qp_futex = true,
};
