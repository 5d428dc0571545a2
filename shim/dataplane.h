/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The data plane of host-device copies (dataplane.c), shared by the guest
 * libraries: each gives it what a copy means in its API.
 */
#ifndef VGPU_DATAPLANE_H
#define VGPU_DATAPLANE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client/client.h"
#include "manual.pb-c.h"

/* Copies of at least this many bytes use shared regions when there are any. */
#define VGPU_SHIM_SHARE_MIN ((size_t)64 << 10)
/* Largest payload one copy frame carries; bigger copies go in pieces. */
#define VGPU_SHIM_CHUNK (32u << 20)

/*
 * A copy's bytes on req: in (bytes to send) as its one input segment, out
 * (where bytes come back) as its one output; an asynchronous copy that
 * brings nothing back may wait in the batch.
 */
static inline void vgpu_shim_req_bytes(struct vgpu_call_req *req, const void *in, void *out,
                                       size_t bytes, bool async)
{
    if (in) {
        req->seg[0].data = in;
        req->seg[0].len = bytes;
        req->nseg = 1;
    }
    if (out) {
        req->out[0].dst = out;
        req->out[0].len = bytes;
        req->nout = 1;
    }
    if (async && !out)
        req->flags = VGPU_FN_ASYNC;
}

/*
 * A copy's request (a is its Vgpu__Manual__CopyArgs): its bytes, and
 * VGPU_REQ_DRAINS when its bytes come back in the reply, which the server
 * sends once the copy's stream is done (server/manual/copy.c).
 */
static inline void vgpu_shim_copy_req(struct vgpu_call_req *req, const Vgpu__Manual__CopyArgs *a,
                                      const void *in, void *out, size_t bytes)
{
    vgpu_shim_req_bytes(req, in, out, bytes, a->async);
    if (out && a->async && !a->managed)
        req->flags |= VGPU_REQ_DRAINS;
}

struct vgpu_dp {
    /* the region id of this library's staging region (distinct per library) */
    uint32_t staging_region;
    /*
     * Sends one copy (a, with in as its input bytes or out for its output
     * bytes, bytes long): 0, or the library's status for the failure.
     */
    int (*call)(Vgpu__Manual__CopyArgs *a, const void *in, void *out, size_t bytes);
    /* The shared region [p, p+n) lies in, with its offset, or 0 (may be NULL). */
    uint32_t (*host_region)(const void *p, size_t n, uint64_t *off);
    /*
     * Waits for stream's work so far, as the library's stream synchronize
     * (may be NULL), and tells page-locked memory from pageable: before an
     * asynchronous copy to the device takes page-locked bytes while a host
     * callback is due.
     */
    void (*sync)(uint64_t stream);
    bool (*host_locked)(const void *p);
    /* Around fork(): the library's memory tables locked, and made private in the child. */
    void (*lock)(void);
    void (*unlock)(void);
    void (*forked)(void);
};

/* Once, at load time: ops stays valid for the process's life. */
VGPU_HIDDEN void vgpu_dp_init(const struct vgpu_dp *ops);
/*
 * One host-device copy of count bytes, a->dir H2D or D2H, a's stream and
 * async set: through a shared region, the staging region or frames.
 */
VGPU_HIDDEN int vgpu_dp_copy(Vgpu__Manual__CopyArgs *a, void *dst, const void *src, size_t count);
/*
 * Before a copy (dir, async, on stream) takes bytes of page-locked memory
 * at src here, when it is an asynchronous one to the device: waits for the stream while
 * a host callback is due or running, as the GPU would read them only when
 * the copy runs (vgpu_dp_copy does it itself; 2D and symbol copies call it).
 */
VGPU_HIDDEN void vgpu_dp_wait_for_callbacks(Vgpu__Manual__Direction dir, bool async, uint64_t stream,
                                            const void *src);

#endif
