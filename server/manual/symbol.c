/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Variables by symbol (spec: manual): address, size and copies to and from
 * a registered variable, through the server's stand-in for it; a copy's
 * extent is checked against the variable's size first.
 */
#include <cuda_runtime_api.h>
#include <stdbool.h>
#include <stdint.h>

#include "manual_internal.h"

static struct vgpu_hostfn *var_of(struct vgpu_session *s, uint64_t host)
{
    struct vgpu_hostfn *fn = vgpu_hostfn_find(s, host);

    return fn && fn->is_var ? fn : NULL;
}

/*
 * [offset, offset + count) inside the variable: the guest's extent checked
 * against the size the runtime gives for our stand-in, before any copy.
 */
static bool symbol_span_ok(const struct vgpu_hostfn *v, uint64_t offset, uint64_t count)
{
    size_t size = 0;

    if (cudaGetSymbolSize(&size, v->fake) != cudaSuccess)
        return false;
    return offset <= size && count <= size - offset;
}

int vgpu_manual_symbol(struct vgpu_session *s, struct vgpu_manual_call *c, uint32_t id)
{
    UNPACK(Vgpu__Manual__SymbolArgs, symbol_args, c);
    Vgpu__Manual__SymbolRet r = VGPU__MANUAL__SYMBOL_RET__INIT;
    struct vgpu_hostfn *v = var_of(s, a->host);
    cudaStream_t st = (cudaStream_t)(uintptr_t)a->stream;
    void *addr = NULL, *buf;
    size_t size = 0;
    int rc = cudaErrorInvalidSymbol;

    if (!v)
        goto out;
    rc = cudaErrorInvalidResourceHandle;
    if (a->async && !stream_ok(s, a->stream))
        goto out;
    rc = cudaErrorInvalidValue;
    if (a->dir != VGPU__MANUAL__DIRECTION__DIR_D2D && a->count > VGPU_CALL_MAX_BYTES)
        goto out;
    if ((id == VGPU_CUDART_ID_cudaMemcpyToSymbol || id == VGPU_CUDART_ID_cudaMemcpyFromSymbol) &&
        !symbol_span_ok(v, a->offset, a->count))
        goto out;
    switch (id) {
    case VGPU_CUDART_ID_cudaGetSymbolAddress:
    case VGPU_CUDART_ID_cudaGetSymbolSize:
        rc = cudaGetSymbolAddress(&addr, v->fake);
        if (rc == cudaSuccess)
            rc = cudaGetSymbolSize(&size, v->fake);
        if (rc == cudaSuccess && !vgpu_range_check(s, (uintptr_t)addr, size) &&
            vgpu_range_add(s, (uintptr_t)addr, size, false))
            rc = cudaErrorMemoryAllocation;
        r.addr = (uintptr_t)addr;
        r.size = size;
        if (rc == cudaSuccess)
            rc = reply(c, &r.base);
        break;
    case VGPU_CUDART_ID_cudaMemcpyToSymbol:
        if (a->dir == VGPU__MANUAL__DIRECTION__DIR_H2D) {
            if (c->nseg != 1 || c->seg[0].len != a->count)
                break;
            rc = a->async ? cudaMemcpyToSymbolAsync(v->fake, c->seg[0].data, a->count, a->offset,
                                                    cudaMemcpyHostToDevice, st)
                          : cudaMemcpyToSymbol(v->fake, c->seg[0].data, a->count, a->offset,
                                               cudaMemcpyHostToDevice);
        } else if (a->dir == VGPU__MANUAL__DIRECTION__DIR_D2D) {
            if (!vgpu_range_check(s, a->devptr, a->count))
                break;
            rc = a->async ? cudaMemcpyToSymbolAsync(v->fake, (void *)(uintptr_t)a->devptr, a->count,
                                                    a->offset, cudaMemcpyDeviceToDevice, st)
                          : cudaMemcpyToSymbol(v->fake, (void *)(uintptr_t)a->devptr, a->count,
                                               a->offset, cudaMemcpyDeviceToDevice);
        }
        break;
    case VGPU_CUDART_ID_cudaMemcpyFromSymbol:
        if (a->dir == VGPU__MANUAL__DIRECTION__DIR_D2H) {
            if (a->count > c->out_budget)
                break;
            buf = vgpu_arena_alloc(c->arena, a->count);
            if (!buf) {
                rc = cudaErrorMemoryAllocation;
                break;
            }
            rc = a->async ? cudaMemcpyFromSymbolAsync(buf, v->fake, a->count, a->offset,
                                                      cudaMemcpyDeviceToHost, st)
                          : cudaMemcpyFromSymbol(buf, v->fake, a->count, a->offset,
                                                 cudaMemcpyDeviceToHost);
            if (rc == cudaSuccess && a->async)
                rc = cudaStreamSynchronize(st);
            c->out[0].iov_base = buf;
            c->out[0].iov_len = a->count;
            c->nout = 1;
        } else if (a->dir == VGPU__MANUAL__DIRECTION__DIR_D2D) {
            if (!vgpu_range_check(s, a->devptr, a->count))
                break;
            rc = a->async ? cudaMemcpyFromSymbolAsync((void *)(uintptr_t)a->devptr, v->fake,
                                                      a->count, a->offset, cudaMemcpyDeviceToDevice, st)
                          : cudaMemcpyFromSymbol((void *)(uintptr_t)a->devptr, v->fake, a->count,
                                                 a->offset, cudaMemcpyDeviceToDevice);
        }
        break;
    }
out:
    vgpu__manual__symbol_args__free_unpacked(a, &unpack_alloc_);
    return rc;
}
