/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A client that speaks vgpu frames by hand, past the shim: for tests that
 * send what the shim never would (hostile and mistaken clients).
 */
#ifndef VGPU_TEST_RAWCLIENT_H
#define VGPU_TEST_RAWCLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <protobuf-c/protobuf-c.h>

#include "vgpu/wire.h"

struct vgpu_rawclient {
    int fd;
    uint64_t seq;
    int pass_fd;               /* an fd the next frame passes (SCM_RIGHTS), or -1 */
};

/* Connects to the unix socket path; 0 or a negative errno. */
int vgpu_raw_dial(struct vgpu_rawclient *c, const char *path);

/* Sends env, reads and decodes the reply into f and *buf (the caller releases both). */
int vgpu_raw_exchange(struct vgpu_rawclient *c, Vgpu__Wire__Envelope *env,
                      const struct iovec *payload, int n, struct vgpu_frame *f, uint8_t **buf);

/* Hello with call-table hash; 0, or an error with the server's sentence in why. */
int vgpu_raw_hello(struct vgpu_rawclient *c, const char *name, uint64_t hash, char *why,
                   size_t whylen);

/*
 * One call with at most one input segment: its status, or a negative error
 * when the connection failed or the answer was not one result.  With ret,
 * *ret gets a malloc'ed copy of the result message.
 */
int vgpu_raw_call(struct vgpu_rawclient *c, uint32_t id, const ProtobufCMessage *args,
                  const void *seg, size_t seglen, uint8_t **ret, size_t *ret_len);
/* The same with the arguments already packed (plen bytes at packed, which may be anything). */
int vgpu_raw_call_bytes(struct vgpu_rawclient *c, uint32_t id, const uint8_t *packed, size_t plen,
                        const void *seg, size_t seglen, uint8_t **ret, size_t *ret_len);

/*
 * One control operation (the Control's op set by the caller): 0 with the
 * reply, a ControlReply, in f and *buf (the caller releases both), or a
 * negative error when the connection failed or the answer was something else.
 */
int vgpu_raw_control(struct vgpu_rawclient *c, Vgpu__Wire__Control *ctl, struct vgpu_frame *f,
                     uint8_t **buf);

#endif
