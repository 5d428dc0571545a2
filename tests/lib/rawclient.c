/* SPDX-License-Identifier: Apache-2.0 */
/* A client that speaks vgpu frames by hand; see rawclient.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "rawclient.h"
#include "vgpu/callgen.h"
#include "vgpu/fdio.h"

int vgpu_raw_dial(struct vgpu_rawclient *c, const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };

    c->fd = -1;
    c->seq = 0;
    c->pass_fd = -1;
    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    strcpy(sa.sun_path, path);
    c->fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;

        if (c->fd >= 0)
            close(c->fd);
        c->fd = -1;
        return -e;
    }
    return 0;
}

int vgpu_raw_exchange(struct vgpu_rawclient *c, Vgpu__Wire__Envelope *env,
                      const struct iovec *payload, int n, struct vgpu_frame *f, uint8_t **buf)
{
    struct vgpu_frame_header h = { .seq = ++c->seq };
    size_t len;
    int rc = vgpu_fd_send_frame_fd(c->fd, &h, env, payload, n, c->pass_fd);

    c->pass_fd = -1;
    if (rc)
        return rc;
    rc = vgpu_fd_read_frame(c->fd, NULL, buf, &len);
    if (rc)
        return rc;
    return vgpu_frame_decode(*buf, len, NULL, NULL, NULL, f);
}

int vgpu_raw_hello(struct vgpu_rawclient *c, const char *name, uint64_t hash, char *why,
                   size_t whylen)
{
    Vgpu__Wire__Envelope env = VGPU__WIRE__ENVELOPE__INIT;
    Vgpu__Wire__Hello h = VGPU__WIRE__HELLO__INIT;
    struct vgpu_frame f = { 0 };
    uint8_t *buf = NULL;
    int rc;

    vgpu_hello_init(&h, hash, "cudart", name, (uint32_t)getpid(), "test");
    env.body_case = VGPU__WIRE__ENVELOPE__BODY_HELLO;
    env.hello = &h;
    rc = vgpu_raw_exchange(c, &env, NULL, 0, &f, &buf);
    if (rc == 0)
        rc = vgpu_hello_reply_check(f.env->hello_reply, hash, why, whylen);
    vgpu_frame_release(&f);
    free(buf);
    return rc;
}

int vgpu_raw_call(struct vgpu_rawclient *c, uint32_t id, const ProtobufCMessage *args,
                  const void *seg, size_t seglen, uint8_t **ret, size_t *ret_len)
{
    struct vgpu_arena ar = { 0 };
    const uint8_t *packed = NULL;
    size_t plen = 0;
    int rc;

    if (args && vgpu_call_pack(&ar, args, &packed, &plen))
        return -ENOMEM;
    rc = vgpu_raw_call_bytes(c, id, packed, plen, seg, seglen, ret, ret_len);
    vgpu_arena_free(&ar);
    return rc;
}

int vgpu_raw_call_bytes(struct vgpu_rawclient *c, uint32_t id, const uint8_t *packed, size_t plen,
                        const void *seg, size_t seglen, uint8_t **ret, size_t *ret_len)
{
    Vgpu__Wire__Envelope env = VGPU__WIRE__ENVELOPE__INIT;
    Vgpu__Wire__CallBatch b = VGPU__WIRE__CALL_BATCH__INIT;
    Vgpu__Wire__Call call = VGPU__WIRE__CALL__INIT, *cp = &call;
    Vgpu__Wire__Segment s = VGPU__WIRE__SEGMENT__INIT, *sp = &s;
    struct iovec iov = { (void *)seg, seglen };
    struct vgpu_frame f = { 0 };
    uint8_t *buf = NULL;
    int rc;

    call.call_id = id;
    call.args.data = (uint8_t *)packed;
    call.args.len = plen;
    if (seg) {
        s.length = seglen;
        call.n_segments = 1;
        call.segments = &sp;
    }
    b.n_calls = 1;
    b.calls = &cp;
    env.body_case = VGPU__WIRE__ENVELOPE__BODY_CALLS;
    env.calls = &b;
    rc = vgpu_raw_exchange(c, &env, seg ? &iov : NULL, seg ? 1 : 0, &f, &buf);
    if (rc == 0 && (f.env->body_case != VGPU__WIRE__ENVELOPE__BODY_RESULTS ||
                    f.env->results->n_results != 1))
        rc = VGPU_WIRE_E_MALFORMED;
    if (rc == 0) {
        const ProtobufCBinaryData *r = &f.env->results->results[0]->ret;

        rc = f.env->results->results[0]->status;
        if (ret && (*ret = malloc(r->len ? r->len : 1))) {
            if (r->len)            /* an empty result may carry no data pointer */
                memcpy(*ret, r->data, r->len);
            *ret_len = r->len;
        } else if (ret) {
            rc = -ENOMEM;
        }
    }
    vgpu_frame_release(&f);
    free(buf);
    return rc;
}

int vgpu_raw_control(struct vgpu_rawclient *c, Vgpu__Wire__Control *ctl, struct vgpu_frame *f,
                     uint8_t **buf)
{
    Vgpu__Wire__Envelope env = VGPU__WIRE__ENVELOPE__INIT;
    int rc;

    *buf = NULL;
    env.body_case = VGPU__WIRE__ENVELOPE__BODY_CONTROL;
    env.control = ctl;
    rc = vgpu_raw_exchange(c, &env, NULL, 0, f, buf);
    if (rc == 0 && f->env->body_case != VGPU__WIRE__ENVELOPE__BODY_CONTROL_REPLY)
        rc = -EPROTO;
    if (rc) {
        vgpu_frame_release(f);
        free(*buf);
        *buf = NULL;
    }
    return rc;
}
