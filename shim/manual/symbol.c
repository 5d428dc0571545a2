/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Copies to and from the program's __device__ variables
 * (cudaMemcpyToSymbol and the rest): the symbol is named on the wire by
 * its registration key (launch.c uploads its module first), and host
 * memory travels in pieces of at most VGPU_SHIM_CHUNK.
 */
#include <cuda_runtime_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../shim_internal.h"
#include "cudart_calltable.h"
#include "manual.pb-c.h"

static int symbol_call(uint32_t id, const char *name, Vgpu__Manual__SymbolArgs *a, const void *in,
                       void *out, size_t bytes, Vgpu__Manual__SymbolRet **ret)
{
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    int st;

    vgpu_shim_req_bytes(&req, in, out, bytes, a->async);
    st = vgpu_shim_call(id, name, &a->base, &req, &rep);
    if (st == cudaSuccess && ret) {
        *ret = vgpu__manual__symbol_ret__unpack(NULL, rep.ret_len, rep.ret);
        if (!*ret)
            st = vgpu_shim_status(cudaErrorUnknown);
    }
    vgpu_shim_rep_release(&rep);
    return st;
}

/*
 * A copy to (to_symbol) or from a symbol: host memory travels in pieces of
 * at most VGPU_SHIM_CHUNK, like every copy; device memory is named by
 * address.  mem is the program's side of the copy.
 */
static int symbol_copy(bool to_symbol, const void *symbol, void *mem, size_t count, size_t offset,
                       enum cudaMemcpyKind kind, cudaStream_t stream, bool async)
{
    Vgpu__Manual__SymbolArgs a = VGPU__MANUAL__SYMBOL_ARGS__INIT;
    enum cudaMemcpyKind host_kind = to_symbol ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToHost;
    /* managed memory is device memory to a copy (managed.c): its host side goes first */
    bool managed = count && vgpu_managed_holds(mem, count);
    bool dev = managed || kind == cudaMemcpyDeviceToDevice ||
               (kind == cudaMemcpyDefault && vgpu_shim_is_device(mem));
    uint32_t id = to_symbol ? VGPU_CUDART_ID_cudaMemcpyToSymbol : VGPU_CUDART_ID_cudaMemcpyFromSymbol;
    const char *name = to_symbol ? "cudaMemcpyToSymbol" : "cudaMemcpyFromSymbol";
    int st = vgpu_shim_symbol(symbol, &a.host);

    if (st != cudaSuccess)
        return vgpu_shim_status(st);
    if (kind != host_kind && kind != cudaMemcpyDeviceToDevice && kind != cudaMemcpyDefault)
        return vgpu_shim_status(cudaErrorInvalidMemcpyDirection);
    if (managed && to_symbol)
        vgpu_managed_device_reads(mem, count);
    else if (managed)
        vgpu_managed_device_writes(mem, count);
    a.stream = (uint64_t)(uintptr_t)stream;
    a.async = async;
    a.to_symbol = to_symbol;
    a.dir = dev ? VGPU__MANUAL__DIRECTION__DIR_D2D :
            to_symbol ? VGPU__MANUAL__DIRECTION__DIR_H2D : VGPU__MANUAL__DIRECTION__DIR_D2H;
    vgpu_dp_wait_for_callbacks(a.dir, a.async, a.stream, mem);
    for (size_t off = 0; off < count && st == cudaSuccess; off += VGPU_SHIM_CHUNK) {
        size_t n = count - off < VGPU_SHIM_CHUNK ? count - off : VGPU_SHIM_CHUNK;
        uint8_t *piece = (uint8_t *)mem + off;

        a.count = n;
        a.offset = offset + off;
        a.devptr = dev ? (uint64_t)(uintptr_t)piece : 0;
        st = symbol_call(id, name, &a, !dev && to_symbol ? piece : NULL,
                         !dev && !to_symbol ? piece : NULL, n, NULL);
    }
    return st;
}

static int to_symbol(const void *symbol, const void *src, size_t count, size_t offset,
                     enum cudaMemcpyKind kind, cudaStream_t stream, bool async)
{
    return symbol_copy(true, symbol, (void *)src, count, offset, kind, stream, async);
}

static int from_symbol(void *dst, const void *symbol, size_t count, size_t offset,
                       enum cudaMemcpyKind kind, cudaStream_t stream, bool async)
{
    return symbol_copy(false, symbol, dst, count, offset, kind, stream, async);
}

VGPU_EXPORT cudaError_t cudaMemcpyToSymbol(const void *symbol, const void *src, size_t count,
                                           size_t offset, enum cudaMemcpyKind kind)
{
    return (cudaError_t)to_symbol(symbol, src, count, offset, kind, NULL, false);
}

VGPU_EXPORT cudaError_t cudaMemcpyToSymbol_ptds(const void *symbol, const void *src, size_t count,
                                                size_t offset, enum cudaMemcpyKind kind)
{
    return (cudaError_t)to_symbol(symbol, src, count, offset, kind, cudaStreamPerThread, false);
}

VGPU_EXPORT cudaError_t cudaMemcpyToSymbolAsync(const void *symbol, const void *src, size_t count,
                                                size_t offset, enum cudaMemcpyKind kind,
                                                cudaStream_t stream)
{
    return (cudaError_t)to_symbol(symbol, src, count, offset, kind, stream, true);
}

VGPU_EXPORT cudaError_t cudaMemcpyToSymbolAsync_ptsz(const void *symbol, const void *src,
                                                     size_t count, size_t offset,
                                                     enum cudaMemcpyKind kind, cudaStream_t stream)
{
    return (cudaError_t)to_symbol(symbol, src, count, offset, kind, stream, true);
}

VGPU_EXPORT cudaError_t cudaMemcpyFromSymbol(void *dst, const void *symbol, size_t count,
                                             size_t offset, enum cudaMemcpyKind kind)
{
    return (cudaError_t)from_symbol(dst, symbol, count, offset, kind, NULL, false);
}

VGPU_EXPORT cudaError_t cudaMemcpyFromSymbol_ptds(void *dst, const void *symbol, size_t count,
                                                  size_t offset, enum cudaMemcpyKind kind)
{
    return (cudaError_t)from_symbol(dst, symbol, count, offset, kind, cudaStreamPerThread, false);
}

VGPU_EXPORT cudaError_t cudaMemcpyFromSymbolAsync(void *dst, const void *symbol, size_t count,
                                                  size_t offset, enum cudaMemcpyKind kind,
                                                  cudaStream_t stream)
{
    return (cudaError_t)from_symbol(dst, symbol, count, offset, kind, stream, true);
}

VGPU_EXPORT cudaError_t cudaMemcpyFromSymbolAsync_ptsz(void *dst, const void *symbol, size_t count,
                                                       size_t offset, enum cudaMemcpyKind kind,
                                                       cudaStream_t stream)
{
    return (cudaError_t)from_symbol(dst, symbol, count, offset, kind, stream, true);
}

static int symbol_info(const void *symbol, void **addr, size_t *size, uint32_t id, const char *name)
{
    Vgpu__Manual__SymbolArgs a = VGPU__MANUAL__SYMBOL_ARGS__INIT;
    Vgpu__Manual__SymbolRet *r = NULL;
    int st = vgpu_shim_symbol(symbol, &a.host);

    if (st != cudaSuccess)
        return vgpu_shim_status(st);
    st = symbol_call(id, name, &a, NULL, NULL, 0, &r);
    if (st == cudaSuccess) {
        vgpu_shim_device_range_add((void *)(uintptr_t)r->addr, r->size);
        if (addr)
            *addr = (void *)(uintptr_t)r->addr;
        if (size)
            *size = r->size;
        vgpu__manual__symbol_ret__free_unpacked(r, NULL);
    }
    return st;
}

VGPU_EXPORT cudaError_t cudaGetSymbolAddress(void **devPtr, const void *symbol)
{
    if (!devPtr)
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    return (cudaError_t)symbol_info(symbol, devPtr, NULL, VGPU_CUDART_ID_cudaGetSymbolAddress,
                                    "cudaGetSymbolAddress");
}

VGPU_EXPORT cudaError_t cudaGetSymbolSize(size_t *size, const void *symbol)
{
    if (!size)
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    return (cudaError_t)symbol_info(symbol, NULL, size, VGPU_CUDART_ID_cudaGetSymbolSize,
                                    "cudaGetSymbolSize");
}
