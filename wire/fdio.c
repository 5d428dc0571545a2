/* SPDX-License-Identifier: Apache-2.0 */
/* Frames over stream sockets; see include/vgpu/fdio.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vgpu/fdio.h"

static int read_all(int fd, uint8_t *p, size_t n, int *got_any)
{
    while (n) {
        ssize_t r = read(fd, p, n);

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            return *got_any ? -EPIPE : -ECONNRESET;
        *got_any = 1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

int vgpu_fd_read_full(int fd, void *buf, size_t n)
{
    int any = 0;

    return read_all(fd, buf, n, &any);
}

/*
 * Reads the frame header with recvmsg, so an fd the peer passed with the
 * frame (SCM_RIGHTS rides on the first byte) is caught: into *passed when
 * passed is not NULL, else closed.  Any further fds are closed.
 */
static int read_head(int fd, uint8_t *head, size_t n, int *passed, int npassed, int *got_any)
{
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(VGPU_FD_MAX_PASSED * sizeof(int))];
    } cm;
    int taken = 0;
    struct iovec iov = { head, n };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf,
                         .msg_controllen = sizeof(cm.buf) };
    ssize_t r;

    do
        r = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
    while (r < 0 && errno == EINTR);
    if (r < 0 && errno == ENOTSOCK)
        return read_all(fd, head, n, got_any);
    if (r < 0)
        return -errno;
    if (r == 0)
        return -ECONNRESET;
    *got_any = 1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
            int got;

            memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (passed && taken < npassed)
                passed[taken++] = got;
            else
                close(got);
        }
    }
    return read_all(fd, head + r, n - (size_t)r, got_any);
}

int vgpu_fd_read_full_fds(int fd, void *buf, size_t n, int *passed, int npassed)
{
    int any = 0, rc;

    for (int i = 0; passed && i < npassed; i++)
        passed[i] = -1;
    rc = read_head(fd, buf, n, passed, npassed, &any);
    for (int i = 0; rc && passed && i < npassed; i++) {
        if (passed[i] >= 0)
            close(passed[i]);
        passed[i] = -1;
    }
    return rc;
}

int vgpu_fd_read_full_fd(int fd, void *buf, size_t n, int *passed)
{
    return vgpu_fd_read_full_fds(fd, buf, n, passed, passed ? 1 : 0);
}

int vgpu_fd_read_frame_fd(int fd, const struct vgpu_wire_limits *lim, uint8_t **buf, size_t *len,
                          int *passed)
{
    uint8_t head[VGPU_FRAME_HEADER_SIZE];
    struct vgpu_frame_header h;
    int any = 0, rc;
    size_t total;
    uint8_t *b;

    *buf = NULL;
    *len = 0;
    if (passed)
        *passed = -1;
    rc = read_head(fd, head, sizeof(head), passed, passed ? 1 : 0, &any);
    if (rc)
        goto fail;
    rc = vgpu_frame_header_decode(head, sizeof(head), lim, &h);
    if (rc)
        goto fail;
    total = sizeof(head) + (size_t)h.env_len + (size_t)h.payload_len;
    b = malloc(total);
    if (!b) {
        rc = -ENOMEM;
        goto fail;
    }
    memcpy(b, head, sizeof(head));
    rc = read_all(fd, b + sizeof(head), total - sizeof(head), &any);
    if (rc) {
        free(b);
        goto fail;
    }
    *buf = b;
    *len = total;
    return 0;
fail:
    if (passed && *passed >= 0) {
        close(*passed);
        *passed = -1;
    }
    return rc;
}

int vgpu_fd_read_frame(int fd, const struct vgpu_wire_limits *lim, uint8_t **buf, size_t *len)
{
    return vgpu_fd_read_frame_fd(fd, lim, buf, len, NULL);
}

int vgpu_fd_writev_all(int fd, struct iovec *iov, int iovcnt)
{
    return vgpu_fd_writev_all_fd(fd, iov, iovcnt, -1);
}

int vgpu_fd_writev_all_fd(int fd, struct iovec *iov, int iovcnt, int pass)
{
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } cm;

    while (iovcnt > 0) {
        /* sendmsg with MSG_NOSIGNAL: a peer that went away must give EPIPE,
         * not a SIGPIPE that kills the program the shim lives in. */
        struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)(iovcnt > 1024 ? 1024 : iovcnt) };
        ssize_t w;

        if (pass >= 0) {
            /* the fd rides on the first bytes of the frame */
            memset(&cm, 0, sizeof(cm));
            mh.msg_control = cm.buf;
            mh.msg_controllen = sizeof(cm.buf);
            CMSG_FIRSTHDR(&mh)->cmsg_level = SOL_SOCKET;
            CMSG_FIRSTHDR(&mh)->cmsg_type = SCM_RIGHTS;
            CMSG_FIRSTHDR(&mh)->cmsg_len = CMSG_LEN(sizeof(int));
            memcpy(CMSG_DATA(CMSG_FIRSTHDR(&mh)), &pass, sizeof(int));
        }
        w = sendmsg(fd, &mh, MSG_NOSIGNAL);
        if (w > 0)
            pass = -1;

        if (w < 0 && errno == ENOTSOCK)
            w = writev(fd, iov, iovcnt > 1024 ? 1024 : iovcnt);

        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        while (iovcnt > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            iovcnt--;
        }
        if (iovcnt > 0) {
            iov->iov_base = (uint8_t *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
    return 0;
}

int vgpu_frame_gather(const struct vgpu_frame_header *tmpl, const Vgpu__Wire__Envelope *env,
                      const struct iovec *payload, int npayload, uint8_t *buf, size_t cap,
                      size_t *len)
{
    uint64_t plen = 0;
    size_t hsize, written;
    int rc;

    for (int i = 0; i < npayload; i++)
        plen += payload[i].iov_len;
    rc = vgpu_frame_head_size_flags(env, tmpl->flags, &hsize);
    if (rc)
        return rc;
    if (hsize > cap || plen > cap - hsize)
        return -E2BIG;
    rc = vgpu_frame_head_write(tmpl, env, plen, NULL, buf, hsize, &written);
    if (rc)
        return rc;
    *len = written;
    for (int i = 0; i < npayload; i++) {
        memcpy(buf + *len, payload[i].iov_base, payload[i].iov_len);
        *len += payload[i].iov_len;
    }
    return 0;
}

int vgpu_fd_send_frame(int fd, const struct vgpu_frame_header *tmpl,
                       const Vgpu__Wire__Envelope *env,
                       const struct iovec *payload, int npayload)
{
    return vgpu_fd_send_frame_fd(fd, tmpl, env, payload, npayload, -1);
}

int vgpu_fd_send_frame_fd(int fd, const struct vgpu_frame_header *tmpl,
                          const Vgpu__Wire__Envelope *env,
                          const struct iovec *payload, int npayload, int pass)
{
    struct iovec stack_iov[17], *iov = stack_iov;
    uint64_t plen = 0;
    size_t hsize, written;
    uint8_t *head;
    int rc;

    for (int i = 0; i < npayload; i++)
        plen += payload[i].iov_len;
    rc = vgpu_frame_head_size(env, &hsize);
    if (rc)
        return rc;
    head = malloc(hsize);
    if (!head)
        return -ENOMEM;
    rc = vgpu_frame_head_write(tmpl, env, plen, NULL, head, hsize, &written);
    if (rc)
        goto out;
    if (npayload + 1 > (int)(sizeof(stack_iov) / sizeof(stack_iov[0]))) {
        iov = calloc((size_t)npayload + 1, sizeof(*iov));
        if (!iov) {
            rc = -ENOMEM;
            goto out;
        }
    }
    iov[0].iov_base = head;
    iov[0].iov_len = written;
    for (int i = 0; i < npayload; i++)
        iov[i + 1] = payload[i];
    rc = vgpu_fd_writev_all_fd(fd, iov, npayload + 1, pass);
    if (iov != stack_iov)
        free(iov);
out:
    free(head);
    return rc;
}
