/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Frames over a stream socket: read exactly one frame, write one frame
 * without copying its payload.  Shared by the shim's socket transport and
 * the server.
 */
#ifndef VGPU_FDIO_H
#define VGPU_FDIO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vgpu/wire.h"

/*
 * Reads one whole frame (header, envelope, payload) into a malloc'ed buffer
 * the caller frees.  Returns 0; -ECONNRESET when the peer closed before the
 * first byte; another negative errno; or a negative enum vgpu_wire_err when
 * the header is invalid (nothing more is read then).
 */
int vgpu_fd_read_frame(int fd, const struct vgpu_wire_limits *lim, uint8_t **buf, size_t *len);
/*
 * The same, and an fd the peer passed with the frame (SCM_RIGHTS) lands in
 * *passed (-1 if none; the caller owns it; closed on failure).
 */
int vgpu_fd_read_frame_fd(int fd, const struct vgpu_wire_limits *lim, uint8_t **buf, size_t *len,
                          int *passed);

/*
 * Reads exactly n bytes.  0; -ECONNRESET when the peer closed before the
 * first byte, -EPIPE when it closed after some; or another negative errno.
 */
int vgpu_fd_read_full(int fd, void *buf, size_t n);
/* The same, and an fd passed with the first bytes lands in *passed (-1 if none). */
int vgpu_fd_read_full_fd(int fd, void *buf, size_t n, int *passed);
/* The same with up to npassed fds (unused entries -1; more than that are closed). */
#define VGPU_FD_MAX_PASSED 72
int vgpu_fd_read_full_fds(int fd, void *buf, size_t n, int *passed, int npassed);

/* Writes all of iov, retrying partial writes and EINTR.  0 or -errno. */
int vgpu_fd_writev_all(int fd, struct iovec *iov, int iovcnt);
/* The same, passing fd pass (>= 0) with the first bytes (SCM_RIGHTS). */
int vgpu_fd_writev_all_fd(int fd, struct iovec *iov, int iovcnt, int pass);

/*
 * Encodes env (header flags/seq from tmpl) and sends it followed by the
 * payload pieces, in one writev where possible.  0 or a negative error.
 */
int vgpu_fd_send_frame(int fd, const struct vgpu_frame_header *tmpl,
                       const Vgpu__Wire__Envelope *env,
                       const struct iovec *payload, int npayload);
/*
 * Writes the frame vgpu_fd_send_frame() would send (header, envelope, then
 * the payload pieces) into buf instead: 0 with its length in *len, -E2BIG
 * when it does not fit cap bytes, or another negative error.
 */
int vgpu_frame_gather(const struct vgpu_frame_header *tmpl, const Vgpu__Wire__Envelope *env,
                      const struct iovec *payload, int npayload, uint8_t *buf, size_t cap,
                      size_t *len);
/* The same, passing fd pass (>= 0) with the frame. */
int vgpu_fd_send_frame_fd(int fd, const struct vgpu_frame_header *tmpl,
                          const Vgpu__Wire__Envelope *env,
                          const struct iovec *payload, int npayload, int pass);

#endif
