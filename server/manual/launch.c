/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Kernel launches (spec: manual): the kernel's parameter layout, asked of
 * the runtime once and cached, gives each argument's place in the launch's
 * one segment; the launch itself is the hottest call of all, its arguments
 * read without protobuf-c (launch_args.h).
 */
#include <cuda_runtime_api.h>
#include <stdint.h>
#include <stdlib.h>

#include "launch_args.h"
#include "manual_internal.h"

extern cudaError_t cudaLaunchKernel_ptsz(const void *func, dim3 gridDim, dim3 blockDim,
                                         void **args, size_t sharedMem, cudaStream_t stream);

/* The kernel's parameter layout, from the runtime, cached. */
static int layout(struct vgpu_hostfn *fn)
{
    size_t off, size;
    int n = 0, st;

    if (fn->layout_known)
        return cudaSuccess;
    while ((st = cudaFuncGetParamInfo(fn->fake, (size_t)n, &off, &size)) == cudaSuccess) {
        uint32_t *o = realloc(fn->off, (size_t)(n + 1) * sizeof(*o));
        uint32_t *z = realloc(fn->size, (size_t)(n + 1) * sizeof(*z));

        if (o)
            fn->off = o;
        if (z)
            fn->size = z;
        if (!o || !z || n >= 4096)
            return cudaErrorMemoryAllocation;
        fn->off[n] = (uint32_t)off;
        fn->size[n] = (uint32_t)size;
        n++;
    }
    /* The end of the list is reported as an invalid index; anything else is real. */
    if (st != cudaErrorInvalidValue)
        return st;
    cudaGetLastError();
    fn->nparams = n;
    fn->layout_known = true;
    return cudaSuccess;
}

int vgpu_manual_param_info(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__RegisterArgs, register_args, c);
    Vgpu__Manual__RegisterRet r = VGPU__MANUAL__REGISTER_RET__INIT;
    struct vgpu_hostfn *fn = kernel_of(s, a->host);
    int rc = cudaErrorInvalidDeviceFunction;

    if (fn && (rc = layout(fn)) == cudaSuccess) {
        r.n_param_offset = r.n_param_size = (size_t)fn->nparams;
        r.param_offset = fn->off;
        r.param_size = fn->size;
        rc = reply(c, &r.base);
    }
    vgpu__manual__register_args__free_unpacked(a, &unpack_alloc_);
    return rc;
}

static dim3 dim(const struct vgpu_dim3 *d)
{
    dim3 r = { 1, 1, 1 };

    if (d->present) {
        r.x = d->x;
        r.y = d->y;
        r.z = d->z;
    }
    return r;
}

int vgpu_manual_launch(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    struct vgpu_launch_args a;
    struct vgpu_hostfn *fn;
    void *argv[512];
    int rc = cudaErrorInvalidDeviceFunction;

    /* the hottest call: its arguments are read without protobuf-c (launch_args.h) */
    if (vgpu_launch_args_read(c->args, c->args_len, &a))
        return cudaErrorInvalidValue;
    fn = kernel_of(s, a.host);
    if (!fn)
        return rc;
    if ((rc = layout(fn)) != cudaSuccess)
        return rc;
    if (!stream_ok(s, a.stream))
        return cudaErrorInvalidResourceHandle;
    if (fn->nparams > 512 || c->nseg != 1)
        return cudaErrorInvalidValue;
    for (int i = 0; i < fn->nparams; i++) {
        if ((uint64_t)fn->off[i] + fn->size[i] > c->seg[0].len)
            return cudaErrorInvalidValue;
        argv[i] = (uint8_t *)c->seg[0].data + fn->off[i];
    }
    vgpu_work_begin(s);
    if (a.cooperative)
        rc = cudaLaunchCooperativeKernel(fn->fake, dim(&a.grid), dim(&a.block), argv,
                                         a.shared_mem, (cudaStream_t)(uintptr_t)a.stream);
    else if (a.ptsz)
        rc = cudaLaunchKernel_ptsz(fn->fake, dim(&a.grid), dim(&a.block), argv, a.shared_mem,
                                   (cudaStream_t)(uintptr_t)a.stream);
    else
        rc = cudaLaunchKernel(fn->fake, dim(&a.grid), dim(&a.block), argv, a.shared_mem,
                              (cudaStream_t)(uintptr_t)a.stream);
    vgpu_work_end(s, (void *)(uintptr_t)a.stream, rc == cudaSuccess);
    return rc;
}
