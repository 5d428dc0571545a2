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

int vgpu_fd_read_frame(int fd, const struct vgpu_wire_limits *lim, uint8_t **buf, size_t *len)
{
    uint8_t head[VGPU_FRAME_HEADER_SIZE];
    struct vgpu_frame_header h;
    int any = 0, rc;
    size_t total;
    uint8_t *b;

    *buf = NULL;
    *len = 0;
    rc = read_all(fd, head, sizeof(head), &any);
    if (rc)
        return rc;
    rc = vgpu_frame_header_decode(head, sizeof(head), lim, &h);
    if (rc)
        return rc;
    total = sizeof(head) + (size_t)h.env_len + (size_t)h.payload_len;
    b = malloc(total);
    if (!b)
        return -ENOMEM;
    memcpy(b, head, sizeof(head));
    rc = read_all(fd, b + sizeof(head), total - sizeof(head), &any);
    if (rc) {
        free(b);
        return rc;
    }
    *buf = b;
    *len = total;
    return 0;
}

int vgpu_fd_writev_all(int fd, struct iovec *iov, int iovcnt)
{
    while (iovcnt > 0) {
        /* sendmsg with MSG_NOSIGNAL: a peer that went away must give EPIPE,
         * not a SIGPIPE that kills the program the shim lives in. */
        struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)(iovcnt > 1024 ? 1024 : iovcnt) };
        ssize_t w = sendmsg(fd, &mh, MSG_NOSIGNAL);

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

int vgpu_fd_send_frame(int fd, const struct vgpu_frame_header *tmpl,
                       const Vgpu__Wire__Envelope *env,
                       const struct iovec *payload, int npayload)
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
    rc = vgpu_fd_writev_all(fd, iov, npayload + 1);
    if (iov != stack_iov)
        free(iov);
out:
    free(head);
    return rc;
}
