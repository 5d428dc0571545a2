/* SPDX-License-Identifier: Apache-2.0 */
/*
 * CUDA graphs and stream capture for the runtime API, on the driver API's:
 * as NVIDIA's runtime does on its driver, each runtime call here is the
 * driver call of vgpu's own libcuda.so.1 (ondriver.h), so the server keeps
 * one set of graphs with the same checks for both APIs
 * (server/manual/graph.c, docs/driver.md "Stream capture and CUDA graphs").
 *
 * What differs between the two APIs is converted here: a kernel node names
 * its kernel by the program's host stub, which becomes the kernel's
 * CUfunction (cudaGetFuncBySymbol, launch.c); memcpy nodes take
 * cudaMemcpy3DParms, which become CUDA_MEMCPY3D; the symbol forms of
 * memcpy nodes take the symbol's device address.
 *
 * cudaGetDriverEntryPoint hands out that library's functions, as
 * cuGetProcAddress does (so a program calling the driver through them is
 * remoted too).
 *
 * Without libcuda.so.1 beside this library, each of these calls says so
 * once and returns cudaErrorNotSupported.
 */
#include <cuda.h>
#include <cuda_runtime_api.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../shim_internal.h"

#include "ondriver.h"

/* ---- stream capture ---- */

ONDRIVER_PASS(cudaStreamBeginCapture, (cudaStream_t stream, enum cudaStreamCaptureMode mode),
     cuStreamBeginCapture_v2, cuStreamBeginCapture_v2, (stream, (CUstreamCaptureMode)mode))
ONDRIVER_PASS(cudaStreamBeginCapture_ptsz, (cudaStream_t stream, enum cudaStreamCaptureMode mode),
     cuStreamBeginCapture_v2, cuStreamBeginCapture_v2_ptsz, (stream, (CUstreamCaptureMode)mode))
ONDRIVER_PASS(cudaStreamBeginCaptureToGraph,
     (cudaStream_t stream, cudaGraph_t graph, const cudaGraphNode_t *dependencies,
      const cudaGraphEdgeData *dependencyData, size_t numDependencies, enum cudaStreamCaptureMode mode),
     cuStreamBeginCaptureToGraph, cuStreamBeginCaptureToGraph,
     (stream, graph, dependencies, (const CUgraphEdgeData *)dependencyData, numDependencies,
      (CUstreamCaptureMode)mode))
ONDRIVER_PASS(cudaStreamBeginCaptureToGraph_ptsz,
     (cudaStream_t stream, cudaGraph_t graph, const cudaGraphNode_t *dependencies,
      const cudaGraphEdgeData *dependencyData, size_t numDependencies, enum cudaStreamCaptureMode mode),
     cuStreamBeginCaptureToGraph, cuStreamBeginCaptureToGraph_ptsz,
     (stream, graph, dependencies, (const CUgraphEdgeData *)dependencyData, numDependencies,
      (CUstreamCaptureMode)mode))
ONDRIVER_PASS(cudaThreadExchangeStreamCaptureMode, (enum cudaStreamCaptureMode *mode),
     cuThreadExchangeStreamCaptureMode, cuThreadExchangeStreamCaptureMode,
     ((CUstreamCaptureMode *)mode))
ONDRIVER_PASS(cudaStreamEndCapture, (cudaStream_t stream, cudaGraph_t *pGraph),
     cuStreamEndCapture, cuStreamEndCapture, (stream, pGraph))
ONDRIVER_PASS(cudaStreamEndCapture_ptsz, (cudaStream_t stream, cudaGraph_t *pGraph),
     cuStreamEndCapture, cuStreamEndCapture_ptsz, (stream, pGraph))
ONDRIVER_PASS(cudaStreamIsCapturing, (cudaStream_t stream, enum cudaStreamCaptureStatus *pCaptureStatus),
     cuStreamIsCapturing, cuStreamIsCapturing, (stream, (CUstreamCaptureStatus *)pCaptureStatus))
ONDRIVER_PASS(cudaStreamIsCapturing_ptsz, (cudaStream_t stream, enum cudaStreamCaptureStatus *pCaptureStatus),
     cuStreamIsCapturing, cuStreamIsCapturing_ptsz, (stream, (CUstreamCaptureStatus *)pCaptureStatus))
ONDRIVER_PASS(cudaStreamGetCaptureInfo,
     (cudaStream_t stream, enum cudaStreamCaptureStatus *captureStatus_out,
      unsigned long long *id_out, cudaGraph_t *graph_out, const cudaGraphNode_t **dependencies_out,
      const cudaGraphEdgeData **edgeData_out, size_t *numDependencies_out),
     cuStreamGetCaptureInfo_v3, cuStreamGetCaptureInfo_v3,
     (stream, (CUstreamCaptureStatus *)captureStatus_out, (cuuint64_t *)id_out, graph_out,
      dependencies_out, (const CUgraphEdgeData **)edgeData_out, numDependencies_out))
ONDRIVER_PASS(cudaStreamGetCaptureInfo_ptsz,
     (cudaStream_t stream, enum cudaStreamCaptureStatus *captureStatus_out,
      unsigned long long *id_out, cudaGraph_t *graph_out, const cudaGraphNode_t **dependencies_out,
      const cudaGraphEdgeData **edgeData_out, size_t *numDependencies_out),
     cuStreamGetCaptureInfo_v3, cuStreamGetCaptureInfo_v3_ptsz,
     (stream, (CUstreamCaptureStatus *)captureStatus_out, (cuuint64_t *)id_out, graph_out,
      dependencies_out, (const CUgraphEdgeData **)edgeData_out, numDependencies_out))
ONDRIVER_PASS(cudaStreamUpdateCaptureDependencies,
     (cudaStream_t stream, cudaGraphNode_t *dependencies, const cudaGraphEdgeData *dependencyData,
      size_t numDependencies, unsigned int flags),
     cuStreamUpdateCaptureDependencies_v2, cuStreamUpdateCaptureDependencies_v2,
     (stream, dependencies, (const CUgraphEdgeData *)dependencyData, numDependencies, flags))
ONDRIVER_PASS(cudaStreamUpdateCaptureDependencies_ptsz,
     (cudaStream_t stream, cudaGraphNode_t *dependencies, const cudaGraphEdgeData *dependencyData,
      size_t numDependencies, unsigned int flags),
     cuStreamUpdateCaptureDependencies_v2, cuStreamUpdateCaptureDependencies_v2_ptsz,
     (stream, dependencies, (const CUgraphEdgeData *)dependencyData, numDependencies, flags))

/* ---- graphs and their nodes ---- */

ONDRIVER_PASS(cudaGraphCreate, (cudaGraph_t *pGraph, unsigned int flags), cuGraphCreate, cuGraphCreate,
     (pGraph, flags))
ONDRIVER_PASS(cudaGraphClone, (cudaGraph_t *pGraphClone, cudaGraph_t originalGraph), cuGraphClone,
     cuGraphClone, (pGraphClone, originalGraph))
ONDRIVER_PASS(cudaGraphNodeFindInClone,
     (cudaGraphNode_t *pNode, cudaGraphNode_t originalNode, cudaGraph_t clonedGraph),
     cuGraphNodeFindInClone, cuGraphNodeFindInClone, (pNode, originalNode, clonedGraph))
ONDRIVER_PASS(cudaGraphNodeGetType, (cudaGraphNode_t node, enum cudaGraphNodeType *pType),
     cuGraphNodeGetType, cuGraphNodeGetType, (node, (CUgraphNodeType *)pType))
ONDRIVER_PASS(cudaGraphGetNodes, (cudaGraph_t graph, cudaGraphNode_t *nodes, size_t *numNodes),
     cuGraphGetNodes, cuGraphGetNodes, (graph, nodes, numNodes))
ONDRIVER_PASS(cudaGraphGetRootNodes, (cudaGraph_t graph, cudaGraphNode_t *pRootNodes, size_t *pNumRootNodes),
     cuGraphGetRootNodes, cuGraphGetRootNodes, (graph, pRootNodes, pNumRootNodes))
ONDRIVER_PASS(cudaGraphGetEdges,
     (cudaGraph_t graph, cudaGraphNode_t *from, cudaGraphNode_t *to, cudaGraphEdgeData *edgeData,
      size_t *numEdges),
     cuGraphGetEdges_v2, cuGraphGetEdges_v2, (graph, from, to, (CUgraphEdgeData *)edgeData, numEdges))
ONDRIVER_PASS(cudaGraphNodeGetDependencies,
     (cudaGraphNode_t node, cudaGraphNode_t *pDependencies, cudaGraphEdgeData *edgeData,
      size_t *pNumDependencies),
     cuGraphNodeGetDependencies_v2, cuGraphNodeGetDependencies_v2,
     (node, pDependencies, (CUgraphEdgeData *)edgeData, pNumDependencies))
ONDRIVER_PASS(cudaGraphNodeGetDependentNodes,
     (cudaGraphNode_t node, cudaGraphNode_t *pDependentNodes, cudaGraphEdgeData *edgeData,
      size_t *pNumDependentNodes),
     cuGraphNodeGetDependentNodes_v2, cuGraphNodeGetDependentNodes_v2,
     (node, pDependentNodes, (CUgraphEdgeData *)edgeData, pNumDependentNodes))
ONDRIVER_PASS(cudaGraphAddDependencies,
     (cudaGraph_t graph, const cudaGraphNode_t *from, const cudaGraphNode_t *to,
      const cudaGraphEdgeData *edgeData, size_t numDependencies),
     cuGraphAddDependencies_v2, cuGraphAddDependencies_v2,
     (graph, from, to, (const CUgraphEdgeData *)edgeData, numDependencies))
ONDRIVER_PASS(cudaGraphRemoveDependencies,
     (cudaGraph_t graph, const cudaGraphNode_t *from, const cudaGraphNode_t *to,
      const cudaGraphEdgeData *edgeData, size_t numDependencies),
     cuGraphRemoveDependencies_v2, cuGraphRemoveDependencies_v2,
     (graph, from, to, (const CUgraphEdgeData *)edgeData, numDependencies))
ONDRIVER_PASS(cudaGraphDestroyNode, (cudaGraphNode_t node), cuGraphDestroyNode, cuGraphDestroyNode, (node))
ONDRIVER_PASS(cudaGraphDestroy, (cudaGraph_t graph), cuGraphDestroy, cuGraphDestroy, (graph))
ONDRIVER_PASS(cudaGraphDebugDotPrint, (cudaGraph_t graph, const char *path, unsigned int flags),
     cuGraphDebugDotPrint, cuGraphDebugDotPrint, (graph, path, flags))
ONDRIVER_PASS(cudaGraphAddEmptyNode,
     (cudaGraphNode_t *pGraphNode, cudaGraph_t graph, const cudaGraphNode_t *pDependencies,
      size_t numDependencies),
     cuGraphAddEmptyNode, cuGraphAddEmptyNode, (pGraphNode, graph, pDependencies, numDependencies))
ONDRIVER_PASS(cudaGraphAddChildGraphNode,
     (cudaGraphNode_t *pGraphNode, cudaGraph_t graph, const cudaGraphNode_t *pDependencies,
      size_t numDependencies, cudaGraph_t childGraph),
     cuGraphAddChildGraphNode, cuGraphAddChildGraphNode,
     (pGraphNode, graph, pDependencies, numDependencies, childGraph))
ONDRIVER_PASS(cudaGraphChildGraphNodeGetGraph, (cudaGraphNode_t node, cudaGraph_t *pGraph),
     cuGraphChildGraphNodeGetGraph, cuGraphChildGraphNodeGetGraph, (node, pGraph))
ONDRIVER_PASS(cudaGraphAddEventRecordNode,
     (cudaGraphNode_t *pGraphNode, cudaGraph_t graph, const cudaGraphNode_t *pDependencies,
      size_t numDependencies, cudaEvent_t event),
     cuGraphAddEventRecordNode, cuGraphAddEventRecordNode,
     (pGraphNode, graph, pDependencies, numDependencies, event))
ONDRIVER_PASS(cudaGraphEventRecordNodeGetEvent, (cudaGraphNode_t node, cudaEvent_t *event_out),
     cuGraphEventRecordNodeGetEvent, cuGraphEventRecordNodeGetEvent, (node, event_out))
ONDRIVER_PASS(cudaGraphEventRecordNodeSetEvent, (cudaGraphNode_t node, cudaEvent_t event),
     cuGraphEventRecordNodeSetEvent, cuGraphEventRecordNodeSetEvent, (node, event))
ONDRIVER_PASS(cudaGraphAddEventWaitNode,
     (cudaGraphNode_t *pGraphNode, cudaGraph_t graph, const cudaGraphNode_t *pDependencies,
      size_t numDependencies, cudaEvent_t event),
     cuGraphAddEventWaitNode, cuGraphAddEventWaitNode,
     (pGraphNode, graph, pDependencies, numDependencies, event))
ONDRIVER_PASS(cudaGraphEventWaitNodeGetEvent, (cudaGraphNode_t node, cudaEvent_t *event_out),
     cuGraphEventWaitNodeGetEvent, cuGraphEventWaitNodeGetEvent, (node, event_out))
ONDRIVER_PASS(cudaGraphEventWaitNodeSetEvent, (cudaGraphNode_t node, cudaEvent_t event),
     cuGraphEventWaitNodeSetEvent, cuGraphEventWaitNodeSetEvent, (node, event))
ONDRIVER_PASS(cudaGraphNodeSetEnabled,
     (cudaGraphExec_t hGraphExec, cudaGraphNode_t hNode, unsigned int isEnabled),
     cuGraphNodeSetEnabled, cuGraphNodeSetEnabled, (hGraphExec, hNode, isEnabled))
ONDRIVER_PASS(cudaGraphNodeGetEnabled,
     (cudaGraphExec_t hGraphExec, cudaGraphNode_t hNode, unsigned int *isEnabled),
     cuGraphNodeGetEnabled, cuGraphNodeGetEnabled, (hGraphExec, hNode, isEnabled))

/* ---- kernel nodes ---- */

/* p as the driver's parameters: its kernel's CUfunction, its launch and arguments. */
static cudaError_t kernel_params(const struct cudaKernelNodeParams *p, CUDA_KERNEL_NODE_PARAMS *k)
{
    CUfunction f;
    cudaError_t st;

    if (!p)
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    st = vgpu_shim_function_of(p->func, &f);
    if (st != cudaSuccess)
        return st;
    memset(k, 0, sizeof(*k));
    k->func = f;
    k->gridDimX = p->gridDim.x;
    k->gridDimY = p->gridDim.y;
    k->gridDimZ = p->gridDim.z;
    k->blockDimX = p->blockDim.x;
    k->blockDimY = p->blockDim.y;
    k->blockDimZ = p->blockDim.z;
    k->sharedMemBytes = p->sharedMemBytes;
    k->kernelParams = p->kernelParams;
    k->extra = p->extra;
    return cudaSuccess;
}

VGPU_EXPORT cudaError_t cudaGraphAddKernelNode(cudaGraphNode_t *pGraphNode, cudaGraph_t graph,
                                               const cudaGraphNode_t *pDependencies,
                                               size_t numDependencies,
                                               const struct cudaKernelNodeParams *pNodeParams)
{
    CUDA_KERNEL_NODE_PARAMS k;
    cudaError_t st;
    ONDRIVER(cuGraphAddKernelNode_v2, cuGraphAddKernelNode_v2);

    if ((st = kernel_params(pNodeParams, &k)) != cudaSuccess)
        return st;
    return vgpu_ondriver_done(p(pGraphNode, graph, pDependencies, numDependencies, &k));
}

VGPU_EXPORT cudaError_t cudaGraphKernelNodeSetParams(cudaGraphNode_t node,
                                                     const struct cudaKernelNodeParams *pNodeParams)
{
    CUDA_KERNEL_NODE_PARAMS k;
    cudaError_t st;
    ONDRIVER(cuGraphKernelNodeSetParams_v2, cuGraphKernelNodeSetParams_v2);

    if ((st = kernel_params(pNodeParams, &k)) != cudaSuccess)
        return st;
    return vgpu_ondriver_done(p(node, &k));
}

VGPU_EXPORT cudaError_t cudaGraphExecKernelNodeSetParams(cudaGraphExec_t hGraphExec,
                                                         cudaGraphNode_t node,
                                                         const struct cudaKernelNodeParams *pNodeParams)
{
    CUDA_KERNEL_NODE_PARAMS k;
    cudaError_t st;
    ONDRIVER(cuGraphExecKernelNodeSetParams_v2, cuGraphExecKernelNodeSetParams_v2);

    if ((st = kernel_params(pNodeParams, &k)) != cudaSuccess)
        return st;
    return vgpu_ondriver_done(p(hGraphExec, node, &k));
}

VGPU_EXPORT cudaError_t cudaGraphKernelNodeGetParams(cudaGraphNode_t node,
                                                     struct cudaKernelNodeParams *pNodeParams)
{
    CUDA_KERNEL_NODE_PARAMS k;
    CUresult r;
    ONDRIVER(cuGraphKernelNodeGetParams_v2, cuGraphKernelNodeGetParams_v2);

    if (!pNodeParams)
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    r = p(node, &k);
    if (r == CUDA_SUCCESS) {
        /* the kernel as the program named it: its host stub, when the program registered it */
        const void *stub = vgpu_shim_stub_of_function((uint64_t)(uintptr_t)k.func);

        pNodeParams->func = stub ? (void *)stub : (void *)k.func;
        pNodeParams->gridDim = (dim3){ k.gridDimX, k.gridDimY, k.gridDimZ };
        pNodeParams->blockDim = (dim3){ k.blockDimX, k.blockDimY, k.blockDimZ };
        pNodeParams->sharedMemBytes = k.sharedMemBytes;
        pNodeParams->kernelParams = k.kernelParams;
        pNodeParams->extra = k.extra;
    }
    return vgpu_ondriver_done(r);
}

/* ---- memset nodes ---- */

static void memset_params(const struct cudaMemsetParams *p, CUDA_MEMSET_NODE_PARAMS *m)
{
    m->dst = (CUdeviceptr)(uintptr_t)p->dst;
    m->pitch = p->pitch;
    m->value = p->value;
    m->elementSize = p->elementSize;
    m->width = p->width;
    m->height = p->height;
}

/*
 * The context a memset or copy node runs in: the thread's current one, or,
 * with none set (a runtime program's thread), its device's primary context,
 * which the runtime holds a reference on, as NVIDIA's runtime passes it.  The
 * driver can tell it from ordinary device memory, but not from a graph
 * allocation's address, which is mapped only when the graph runs (NULL there
 * is CUDA_ERROR_INVALID_VALUE: found on an H100, 2026-12-05 15:01).  NULL
 * when vgpu's libcuda.so.1 cannot say; the call then says why.
 */
static CUcontext current_ctx(void)
{
    static __typeof__(&cuCtxGetCurrent) current;
    static __typeof__(&cuDevicePrimaryCtxRetain) retain;
    static CUcontext primary[64];          /* retained once per device, as NVIDIA's runtime holds it */
    CUcontext ctx = NULL;
    int dev = 0;

    if (!current)
        *(void **)&current = vgpu_ondriver_sym("cuCtxGetCurrent", __func__);
    if (current)
        current(&ctx);
    if (ctx)
        return ctx;
    /* none set on this thread: the runtime's is its device's primary context, named as such */
    if (!retain)
        *(void **)&retain = vgpu_ondriver_sym("cuDevicePrimaryCtxRetain", __func__);
    if (!retain || cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= 64)
        return NULL;
    if (!(ctx = __atomic_load_n(&primary[dev], __ATOMIC_ACQUIRE)) &&
        retain(&ctx, (CUdevice)dev) == CUDA_SUCCESS) {
        CUcontext none = NULL;

        /* a second thread's retain is given back: one reference held per device */
        if (!__atomic_compare_exchange_n(&primary[dev], &none, ctx, false, __ATOMIC_ACQ_REL,
                                         __ATOMIC_ACQUIRE)) {
            __typeof__(&cuDevicePrimaryCtxRelease) release;

            *(void **)&release = vgpu_ondriver_sym("cuDevicePrimaryCtxRelease_v2", __func__);
            if (release)
                release((CUdevice)dev);
            ctx = none;
        }
    }
    return ctx;
}

VGPU_EXPORT cudaError_t cudaGraphAddMemsetNode(cudaGraphNode_t *pGraphNode, cudaGraph_t graph,
                                               const cudaGraphNode_t *pDependencies,
                                               size_t numDependencies,
                                               const struct cudaMemsetParams *pMemsetParams)
{
    CUDA_MEMSET_NODE_PARAMS m;
    ONDRIVER(cuGraphAddMemsetNode, cuGraphAddMemsetNode);

    if (!pMemsetParams)
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    memset_params(pMemsetParams, &m);
    return vgpu_ondriver_done(p(pGraphNode, graph, pDependencies, numDependencies, &m, current_ctx()));
}

VGPU_EXPORT cudaError_t cudaGraphMemsetNodeSetParams(cudaGraphNode_t node,
                                                     const struct cudaMemsetParams *pNodeParams)
{
    CUDA_MEMSET_NODE_PARAMS m;
    ONDRIVER(cuGraphMemsetNodeSetParams, cuGraphMemsetNodeSetParams);

    if (!pNodeParams)
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    memset_params(pNodeParams, &m);
    return vgpu_ondriver_done(p(node, &m));
}

VGPU_EXPORT cudaError_t cudaGraphExecMemsetNodeSetParams(cudaGraphExec_t hGraphExec,
                                                         cudaGraphNode_t node,
                                                         const struct cudaMemsetParams *pNodeParams)
{
    CUDA_MEMSET_NODE_PARAMS m;
    ONDRIVER(cuGraphExecMemsetNodeSetParams, cuGraphExecMemsetNodeSetParams);

    if (!pNodeParams)
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    memset_params(pNodeParams, &m);
    return vgpu_ondriver_done(p(hGraphExec, node, &m, current_ctx()));
}

VGPU_EXPORT cudaError_t cudaGraphMemsetNodeGetParams(cudaGraphNode_t node,
                                                     struct cudaMemsetParams *pNodeParams)
{
    CUDA_MEMSET_NODE_PARAMS m;
    CUresult r;
    ONDRIVER(cuGraphMemsetNodeGetParams, cuGraphMemsetNodeGetParams);

    if (!pNodeParams)
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    r = p(node, &m);
    if (r == CUDA_SUCCESS) {
        pNodeParams->dst = (void *)(uintptr_t)m.dst;
        pNodeParams->pitch = m.pitch;
        pNodeParams->value = m.value;
        pNodeParams->elementSize = m.elementSize;
        pNodeParams->width = m.width;
        pNodeParams->height = m.height;
    }
    return vgpu_ondriver_done(r);
}

/* ---- memcpy nodes ---- */

/* A side's memory type: by the kind, or with cudaMemcpyDefault by what the address is. */
static CUmemorytype side(enum cudaMemcpyKind kind, bool src, const void *p)
{
    switch (kind) {
    case cudaMemcpyHostToHost: return CU_MEMORYTYPE_HOST;
    case cudaMemcpyHostToDevice: return src ? CU_MEMORYTYPE_HOST : CU_MEMORYTYPE_DEVICE;
    case cudaMemcpyDeviceToHost: return src ? CU_MEMORYTYPE_DEVICE : CU_MEMORYTYPE_HOST;
    case cudaMemcpyDeviceToDevice: return CU_MEMORYTYPE_DEVICE;
    default: return vgpu_shim_is_device(p) ? CU_MEMORYTYPE_DEVICE : CU_MEMORYTYPE_HOST;
    }
}

/* p as CUDA_MEMCPY3D (the server takes device-to-device copies, and says why it refuses others). */
static cudaError_t copy_params(const struct cudaMemcpy3DParms *p, CUDA_MEMCPY3D *c)
{
    if (!p)
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    if ((int)p->kind < cudaMemcpyHostToHost || p->kind > cudaMemcpyDefault)
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidMemcpyDirection);
    memset(c, 0, sizeof(*c));
    c->srcXInBytes = p->srcPos.x;
    c->srcY = p->srcPos.y;
    c->srcZ = p->srcPos.z;
    c->srcMemoryType = p->srcArray ? CU_MEMORYTYPE_ARRAY : side(p->kind, true, p->srcPtr.ptr);
    c->srcHost = p->srcPtr.ptr;
    c->srcDevice = (CUdeviceptr)(uintptr_t)p->srcPtr.ptr;
    c->srcArray = (CUarray)p->srcArray;
    c->srcPitch = p->srcPtr.pitch;
    c->srcHeight = p->srcPtr.ysize;
    c->dstXInBytes = p->dstPos.x;
    c->dstY = p->dstPos.y;
    c->dstZ = p->dstPos.z;
    c->dstMemoryType = p->dstArray ? CU_MEMORYTYPE_ARRAY : side(p->kind, false, p->dstPtr.ptr);
    c->dstHost = p->dstPtr.ptr;
    c->dstDevice = (CUdeviceptr)(uintptr_t)p->dstPtr.ptr;
    c->dstArray = (CUarray)p->dstArray;
    c->dstPitch = p->dstPtr.pitch;
    c->dstHeight = p->dstPtr.ysize;
    c->WidthInBytes = p->extent.width;
    c->Height = p->extent.height;
    c->Depth = p->extent.depth;
    return cudaSuccess;
}

/* A 1D copy of count bytes as cudaMemcpy3DParms. */
static struct cudaMemcpy3DParms copy_1d(void *dst, const void *src, size_t count,
                                        enum cudaMemcpyKind kind)
{
    struct cudaMemcpy3DParms p = { 0 };

    p.srcPtr = (struct cudaPitchedPtr){ .ptr = (void *)src, .pitch = count, .xsize = count, .ysize = 1 };
    p.dstPtr = (struct cudaPitchedPtr){ .ptr = dst, .pitch = count, .xsize = count, .ysize = 1 };
    p.extent = (struct cudaExtent){ .width = count, .height = 1, .depth = 1 };
    p.kind = kind;
    return p;
}

VGPU_EXPORT cudaError_t cudaGraphAddMemcpyNode(cudaGraphNode_t *pGraphNode, cudaGraph_t graph,
                                               const cudaGraphNode_t *pDependencies,
                                               size_t numDependencies,
                                               const struct cudaMemcpy3DParms *pCopyParams)
{
    CUDA_MEMCPY3D c;
    cudaError_t st;
    ONDRIVER(cuGraphAddMemcpyNode, cuGraphAddMemcpyNode);

    if ((st = copy_params(pCopyParams, &c)) != cudaSuccess)
        return st;
    return vgpu_ondriver_done(p(pGraphNode, graph, pDependencies, numDependencies, &c, current_ctx()));
}

VGPU_EXPORT cudaError_t cudaGraphAddMemcpyNode1D(cudaGraphNode_t *pGraphNode, cudaGraph_t graph,
                                                 const cudaGraphNode_t *pDependencies,
                                                 size_t numDependencies, void *dst, const void *src,
                                                 size_t count, enum cudaMemcpyKind kind)
{
    struct cudaMemcpy3DParms p = copy_1d(dst, src, count, kind);

    return cudaGraphAddMemcpyNode(pGraphNode, graph, pDependencies, numDependencies, &p);
}

VGPU_EXPORT cudaError_t cudaGraphMemcpyNodeSetParams(cudaGraphNode_t node,
                                                     const struct cudaMemcpy3DParms *pNodeParams)
{
    CUDA_MEMCPY3D c;
    cudaError_t st;
    ONDRIVER(cuGraphMemcpyNodeSetParams, cuGraphMemcpyNodeSetParams);

    if ((st = copy_params(pNodeParams, &c)) != cudaSuccess)
        return st;
    return vgpu_ondriver_done(p(node, &c));
}

VGPU_EXPORT cudaError_t cudaGraphMemcpyNodeSetParams1D(cudaGraphNode_t node, void *dst,
                                                       const void *src, size_t count,
                                                       enum cudaMemcpyKind kind)
{
    struct cudaMemcpy3DParms p = copy_1d(dst, src, count, kind);

    return cudaGraphMemcpyNodeSetParams(node, &p);
}

VGPU_EXPORT cudaError_t cudaGraphExecMemcpyNodeSetParams(cudaGraphExec_t hGraphExec,
                                                         cudaGraphNode_t node,
                                                         const struct cudaMemcpy3DParms *pNodeParams)
{
    CUDA_MEMCPY3D c;
    cudaError_t st;
    ONDRIVER(cuGraphExecMemcpyNodeSetParams, cuGraphExecMemcpyNodeSetParams);

    if ((st = copy_params(pNodeParams, &c)) != cudaSuccess)
        return st;
    return vgpu_ondriver_done(p(hGraphExec, node, &c, current_ctx()));
}

VGPU_EXPORT cudaError_t cudaGraphExecMemcpyNodeSetParams1D(cudaGraphExec_t hGraphExec,
                                                           cudaGraphNode_t node, void *dst,
                                                           const void *src, size_t count,
                                                           enum cudaMemcpyKind kind)
{
    struct cudaMemcpy3DParms p = copy_1d(dst, src, count, kind);

    return cudaGraphExecMemcpyNodeSetParams(hGraphExec, node, &p);
}

/* A symbol's device address plus offset, for the symbol forms of memcpy nodes. */
static cudaError_t symbol_at(const void *symbol, size_t offset, size_t count, void **at)
{
    size_t size;
    cudaError_t st = cudaGetSymbolSize(&size, symbol);

    if (st == cudaSuccess && (offset > size || count > size - offset))
        st = (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    if (st == cudaSuccess)
        st = cudaGetSymbolAddress(at, symbol);
    if (st == cudaSuccess)
        *at = (char *)*at + offset;
    return st;
}

/* The direction of a copy to or from a symbol, as a two-sided kind. */
static enum cudaMemcpyKind symbol_kind(enum cudaMemcpyKind kind, bool to_symbol)
{
    if (kind == cudaMemcpyDefault || kind == cudaMemcpyDeviceToDevice)
        return kind;
    return to_symbol ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToHost;
}

VGPU_EXPORT cudaError_t cudaGraphAddMemcpyNodeToSymbol(cudaGraphNode_t *pGraphNode, cudaGraph_t graph,
                                                       const cudaGraphNode_t *pDependencies,
                                                       size_t numDependencies, const void *symbol,
                                                       const void *src, size_t count, size_t offset,
                                                       enum cudaMemcpyKind kind)
{
    void *at;
    cudaError_t st = symbol_at(symbol, offset, count, &at);

    if (st != cudaSuccess)
        return st;
    return cudaGraphAddMemcpyNode1D(pGraphNode, graph, pDependencies, numDependencies, at, src,
                                    count, symbol_kind(kind, true));
}

VGPU_EXPORT cudaError_t cudaGraphAddMemcpyNodeFromSymbol(cudaGraphNode_t *pGraphNode,
                                                         cudaGraph_t graph,
                                                         const cudaGraphNode_t *pDependencies,
                                                         size_t numDependencies, void *dst,
                                                         const void *symbol, size_t count,
                                                         size_t offset, enum cudaMemcpyKind kind)
{
    void *at;
    cudaError_t st = symbol_at(symbol, offset, count, &at);

    if (st != cudaSuccess)
        return st;
    return cudaGraphAddMemcpyNode1D(pGraphNode, graph, pDependencies, numDependencies, dst, at,
                                    count, symbol_kind(kind, false));
}

VGPU_EXPORT cudaError_t cudaGraphMemcpyNodeSetParamsToSymbol(cudaGraphNode_t node, const void *symbol,
                                                             const void *src, size_t count,
                                                             size_t offset, enum cudaMemcpyKind kind)
{
    void *at;
    cudaError_t st = symbol_at(symbol, offset, count, &at);

    return st != cudaSuccess ? st
                             : cudaGraphMemcpyNodeSetParams1D(node, at, src, count, symbol_kind(kind, true));
}

VGPU_EXPORT cudaError_t cudaGraphMemcpyNodeSetParamsFromSymbol(cudaGraphNode_t node, void *dst,
                                                               const void *symbol, size_t count,
                                                               size_t offset, enum cudaMemcpyKind kind)
{
    void *at;
    cudaError_t st = symbol_at(symbol, offset, count, &at);

    return st != cudaSuccess ? st
                             : cudaGraphMemcpyNodeSetParams1D(node, dst, at, count, symbol_kind(kind, false));
}

VGPU_EXPORT cudaError_t cudaGraphExecMemcpyNodeSetParamsToSymbol(cudaGraphExec_t hGraphExec,
                                                                 cudaGraphNode_t node,
                                                                 const void *symbol, const void *src,
                                                                 size_t count, size_t offset,
                                                                 enum cudaMemcpyKind kind)
{
    void *at;
    cudaError_t st = symbol_at(symbol, offset, count, &at);

    return st != cudaSuccess ? st
                             : cudaGraphExecMemcpyNodeSetParams1D(hGraphExec, node, at, src, count,
                                                                  symbol_kind(kind, true));
}

VGPU_EXPORT cudaError_t cudaGraphExecMemcpyNodeSetParamsFromSymbol(cudaGraphExec_t hGraphExec,
                                                                   cudaGraphNode_t node, void *dst,
                                                                   const void *symbol, size_t count,
                                                                   size_t offset,
                                                                   enum cudaMemcpyKind kind)
{
    void *at;
    cudaError_t st = symbol_at(symbol, offset, count, &at);

    return st != cudaSuccess ? st
                             : cudaGraphExecMemcpyNodeSetParams1D(hGraphExec, node, dst, at, count,
                                                                  symbol_kind(kind, false));
}

/* ---- executable graphs ---- */

ONDRIVER_PASS(cudaGraphInstantiate, (cudaGraphExec_t *pGraphExec, cudaGraph_t graph, unsigned long long flags),
     cuGraphInstantiateWithFlags, cuGraphInstantiateWithFlags, (pGraphExec, graph, flags))
ONDRIVER_PASS(cudaGraphInstantiateWithFlags,
     (cudaGraphExec_t *pGraphExec, cudaGraph_t graph, unsigned long long flags),
     cuGraphInstantiateWithFlags, cuGraphInstantiateWithFlags, (pGraphExec, graph, flags))
ONDRIVER_PASS(cudaGraphInstantiateWithParams,
     (cudaGraphExec_t *pGraphExec, cudaGraph_t graph, cudaGraphInstantiateParams *instantiateParams),
     cuGraphInstantiateWithParams, cuGraphInstantiateWithParams,
     (pGraphExec, graph, (CUDA_GRAPH_INSTANTIATE_PARAMS *)instantiateParams))
ONDRIVER_PASS(cudaGraphInstantiateWithParams_ptsz,
     (cudaGraphExec_t *pGraphExec, cudaGraph_t graph, cudaGraphInstantiateParams *instantiateParams),
     cuGraphInstantiateWithParams, cuGraphInstantiateWithParams_ptsz,
     (pGraphExec, graph, (CUDA_GRAPH_INSTANTIATE_PARAMS *)instantiateParams))
ONDRIVER_PASS(cudaGraphExecGetFlags, (cudaGraphExec_t graphExec, unsigned long long *flags),
     cuGraphExecGetFlags, cuGraphExecGetFlags, (graphExec, (cuuint64_t *)flags))
ONDRIVER_PASS(cudaGraphExecChildGraphNodeSetParams,
     (cudaGraphExec_t hGraphExec, cudaGraphNode_t node, cudaGraph_t childGraph),
     cuGraphExecChildGraphNodeSetParams, cuGraphExecChildGraphNodeSetParams,
     (hGraphExec, node, childGraph))
ONDRIVER_PASS(cudaGraphExecEventRecordNodeSetEvent,
     (cudaGraphExec_t hGraphExec, cudaGraphNode_t hNode, cudaEvent_t event),
     cuGraphExecEventRecordNodeSetEvent, cuGraphExecEventRecordNodeSetEvent,
     (hGraphExec, hNode, event))
ONDRIVER_PASS(cudaGraphExecEventWaitNodeSetEvent,
     (cudaGraphExec_t hGraphExec, cudaGraphNode_t hNode, cudaEvent_t event),
     cuGraphExecEventWaitNodeSetEvent, cuGraphExecEventWaitNodeSetEvent, (hGraphExec, hNode, event))
ONDRIVER_PASS(cudaGraphExecUpdate,
     (cudaGraphExec_t hGraphExec, cudaGraph_t hGraph, cudaGraphExecUpdateResultInfo *resultInfo),
     cuGraphExecUpdate_v2, cuGraphExecUpdate_v2,
     (hGraphExec, hGraph, (CUgraphExecUpdateResultInfo *)resultInfo))
ONDRIVER_PASS(cudaGraphUpload, (cudaGraphExec_t graphExec, cudaStream_t stream), cuGraphUpload,
     cuGraphUpload, (graphExec, stream))
ONDRIVER_PASS(cudaGraphUpload_ptsz, (cudaGraphExec_t graphExec, cudaStream_t stream), cuGraphUpload,
     cuGraphUpload_ptsz, (graphExec, stream))
ONDRIVER_PASS(cudaGraphExecDestroy, (cudaGraphExec_t graphExec), cuGraphExecDestroy, cuGraphExecDestroy,
     (graphExec))

/* A launch is work: the client sends managed memory's host side first (managed.c). */
ONDRIVER_PASS(cudaGraphLaunch, (cudaGraphExec_t graphExec, cudaStream_t stream), cuGraphLaunch,
              cuGraphLaunch, (graphExec, stream))
ONDRIVER_PASS(cudaGraphLaunch_ptsz, (cudaGraphExec_t graphExec, cudaStream_t stream),
              cuGraphLaunch, cuGraphLaunch_ptsz, (graphExec, stream))

/* ---- graph memory ---- */

ONDRIVER_PASS(cudaDeviceGraphMemTrim, (int device), cuDeviceGraphMemTrim, cuDeviceGraphMemTrim,
     ((CUdevice)device))
ONDRIVER_PASS(cudaDeviceGetGraphMemAttribute, (int device, enum cudaGraphMemAttributeType attr, void *value),
     cuDeviceGetGraphMemAttribute, cuDeviceGetGraphMemAttribute,
     ((CUdevice)device, (CUgraphMem_attribute)attr, value))
ONDRIVER_PASS(cudaDeviceSetGraphMemAttribute, (int device, enum cudaGraphMemAttributeType attr, void *value),
     cuDeviceSetGraphMemAttribute, cuDeviceSetGraphMemAttribute,
     ((CUdevice)device, (CUgraphMem_attribute)attr, value))

/* ---- driver entry points: vgpu's libcuda.so.1's, as cuGetProcAddress gives them ---- */

VGPU_EXPORT cudaError_t cudaGetDriverEntryPointByVersion(const char *symbol, void **funcPtr,
                                                         unsigned int cudaVersion,
                                                         unsigned long long flags,
                                                         enum cudaDriverEntryPointQueryResult *driverStatus)
{
    ONDRIVER(cuGetProcAddress_v2, cuGetProcAddress_v2);

    if (!symbol || !funcPtr)
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    /* cudaEnableDefault, cudaEnableLegacyStream, ...PerThreadDefaultStream are CU_GET_PROC_ADDRESS_*'s */
    return vgpu_ondriver_done(p(symbol, funcPtr, (int)cudaVersion, flags,
                  (CUdriverProcAddressQueryResult *)driverStatus));
}

VGPU_EXPORT cudaError_t cudaGetDriverEntryPointByVersion_ptsz(
    const char *symbol, void **funcPtr, unsigned int cudaVersion, unsigned long long flags,
    enum cudaDriverEntryPointQueryResult *driverStatus)
{
    /* a per-thread default stream build: its default is the per-thread stream's forms */
    if (flags == cudaEnableDefault)
        flags = cudaEnablePerThreadDefaultStream;
    return cudaGetDriverEntryPointByVersion(symbol, funcPtr, cudaVersion, flags, driverStatus);
}

VGPU_EXPORT cudaError_t cudaGetDriverEntryPoint(const char *symbol, void **funcPtr,
                                                unsigned long long flags,
                                                enum cudaDriverEntryPointQueryResult *driverStatus)
{
    return cudaGetDriverEntryPointByVersion(symbol, funcPtr, CUDART_VERSION, flags, driverStatus);
}

VGPU_EXPORT cudaError_t cudaGetDriverEntryPoint_ptsz(const char *symbol, void **funcPtr,
                                                     unsigned long long flags,
                                                     enum cudaDriverEntryPointQueryResult *driverStatus)
{
    return cudaGetDriverEntryPointByVersion_ptsz(symbol, funcPtr, CUDART_VERSION, flags, driverStatus);
}

/* A device-to-device memcpy node's copy (the only kind the server reads back). */
VGPU_EXPORT cudaError_t cudaGraphMemcpyNodeGetParams(cudaGraphNode_t node,
                                                     struct cudaMemcpy3DParms *pNodeParams)
{
    CUDA_MEMCPY3D c;
    CUresult r;
    ONDRIVER(cuGraphMemcpyNodeGetParams, cuGraphMemcpyNodeGetParams);

    if (!pNodeParams)
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    if ((r = p(node, &c)) != CUDA_SUCCESS)
        return vgpu_ondriver_done(r);
    memset(pNodeParams, 0, sizeof(*pNodeParams));
    pNodeParams->srcPos = (struct cudaPos){ c.srcXInBytes, c.srcY, c.srcZ };
    pNodeParams->srcPtr = (struct cudaPitchedPtr){ .ptr = (void *)(uintptr_t)c.srcDevice,
                                                   .pitch = c.srcPitch, .xsize = c.WidthInBytes,
                                                   .ysize = c.srcHeight };
    pNodeParams->dstPos = (struct cudaPos){ c.dstXInBytes, c.dstY, c.dstZ };
    pNodeParams->dstPtr = (struct cudaPitchedPtr){ .ptr = (void *)(uintptr_t)c.dstDevice,
                                                   .pitch = c.dstPitch, .xsize = c.WidthInBytes,
                                                   .ysize = c.dstHeight };
    pNodeParams->extent = (struct cudaExtent){ c.WidthInBytes, c.Height, c.Depth };
    pNodeParams->kind = cudaMemcpyDeviceToDevice;
    return vgpu_ondriver_done(CUDA_SUCCESS);
}

/* ---- host nodes: the function runs in this process at each launch (shim/driver/hostfn.c) ---- */

_Static_assert(sizeof(struct cudaHostNodeParams) == sizeof(CUDA_HOST_NODE_PARAMS),
               "host node parameters have one layout in both APIs");
ONDRIVER_PASS(cudaGraphAddHostNode,
     (cudaGraphNode_t *pGraphNode, cudaGraph_t graph, const cudaGraphNode_t *pDependencies,
      size_t numDependencies, const struct cudaHostNodeParams *pNodeParams),
     cuGraphAddHostNode, cuGraphAddHostNode,
     (pGraphNode, graph, pDependencies, numDependencies, (const CUDA_HOST_NODE_PARAMS *)pNodeParams))
ONDRIVER_PASS(cudaGraphHostNodeGetParams, (cudaGraphNode_t node, struct cudaHostNodeParams *pNodeParams),
     cuGraphHostNodeGetParams, cuGraphHostNodeGetParams,
     (node, (CUDA_HOST_NODE_PARAMS *)pNodeParams))
ONDRIVER_PASS(cudaGraphHostNodeSetParams,
     (cudaGraphNode_t node, const struct cudaHostNodeParams *pNodeParams),
     cuGraphHostNodeSetParams, cuGraphHostNodeSetParams,
     (node, (const CUDA_HOST_NODE_PARAMS *)pNodeParams))
ONDRIVER_PASS(cudaGraphExecHostNodeSetParams,
     (cudaGraphExec_t hGraphExec, cudaGraphNode_t node, const struct cudaHostNodeParams *pNodeParams),
     cuGraphExecHostNodeSetParams, cuGraphExecHostNodeSetParams,
     (hGraphExec, node, (const CUDA_HOST_NODE_PARAMS *)pNodeParams))

/* ---- launch attributes of kernel nodes and streams ---- */

_Static_assert(sizeof(cudaLaunchAttributeValue) == sizeof(CUlaunchAttributeValue),
               "launch attribute values have one layout in both APIs");
ONDRIVER_PASS(cudaGraphKernelNodeCopyAttributes, (cudaGraphNode_t hDst, cudaGraphNode_t hSrc),
     cuGraphKernelNodeCopyAttributes, cuGraphKernelNodeCopyAttributes, (hDst, hSrc))
ONDRIVER_PASS(cudaGraphKernelNodeGetAttribute,
     (cudaGraphNode_t hNode, cudaKernelNodeAttrID attr, cudaKernelNodeAttrValue *value_out),
     cuGraphKernelNodeGetAttribute, cuGraphKernelNodeGetAttribute,
     (hNode, (CUkernelNodeAttrID)attr, (CUkernelNodeAttrValue *)value_out))
ONDRIVER_PASS(cudaGraphKernelNodeSetAttribute,
     (cudaGraphNode_t hNode, cudaKernelNodeAttrID attr, const cudaKernelNodeAttrValue *value),
     cuGraphKernelNodeSetAttribute, cuGraphKernelNodeSetAttribute,
     (hNode, (CUkernelNodeAttrID)attr, (const CUkernelNodeAttrValue *)value))
ONDRIVER_PASS(cudaStreamGetAttribute,
     (cudaStream_t hStream, cudaStreamAttrID attr, cudaStreamAttrValue *value_out),
     cuStreamGetAttribute, cuStreamGetAttribute,
     (hStream, (CUstreamAttrID)attr, (CUstreamAttrValue *)value_out))
ONDRIVER_PASS(cudaStreamGetAttribute_ptsz,
     (cudaStream_t hStream, cudaStreamAttrID attr, cudaStreamAttrValue *value_out),
     cuStreamGetAttribute, cuStreamGetAttribute_ptsz,
     (hStream, (CUstreamAttrID)attr, (CUstreamAttrValue *)value_out))
ONDRIVER_PASS(cudaStreamSetAttribute,
     (cudaStream_t hStream, cudaStreamAttrID attr, const cudaStreamAttrValue *value),
     cuStreamSetAttribute, cuStreamSetAttribute,
     (hStream, (CUstreamAttrID)attr, (const CUstreamAttrValue *)value))
ONDRIVER_PASS(cudaStreamSetAttribute_ptsz,
     (cudaStream_t hStream, cudaStreamAttrID attr, const cudaStreamAttrValue *value),
     cuStreamSetAttribute, cuStreamSetAttribute_ptsz,
     (hStream, (CUstreamAttrID)attr, (const CUstreamAttrValue *)value))

/* ---- user objects (the destructor runs in this process: shim/driver/hostfn.c) ---- */

ONDRIVER_PASS(cudaUserObjectCreate,
     (cudaUserObject_t *object_out, void *ptr, cudaHostFn_t destroy, unsigned int initialRefcount,
      unsigned int flags),
     cuUserObjectCreate, cuUserObjectCreate, (object_out, ptr, destroy, initialRefcount, flags))
ONDRIVER_PASS(cudaUserObjectRetain, (cudaUserObject_t object, unsigned int count),
     cuUserObjectRetain, cuUserObjectRetain, (object, count))
ONDRIVER_PASS(cudaUserObjectRelease, (cudaUserObject_t object, unsigned int count),
     cuUserObjectRelease, cuUserObjectRelease, (object, count))
ONDRIVER_PASS(cudaGraphRetainUserObject,
     (cudaGraph_t graph, cudaUserObject_t object, unsigned int count, unsigned int flags),
     cuGraphRetainUserObject, cuGraphRetainUserObject, (graph, object, count, flags))
ONDRIVER_PASS(cudaGraphReleaseUserObject,
     (cudaGraph_t graph, cudaUserObject_t object, unsigned int count),
     cuGraphReleaseUserObject, cuGraphReleaseUserObject, (graph, object, count))

/* ---- graph memory: allocation and free nodes ---- */

_Static_assert(sizeof(struct cudaMemAllocNodeParams) == sizeof(CUDA_MEM_ALLOC_NODE_PARAMS) &&
               offsetof(struct cudaMemAllocNodeParams, dptr) ==
                   offsetof(CUDA_MEM_ALLOC_NODE_PARAMS, dptr),
               "the runtime's allocation node parameters are the driver's");

/* The node's address becomes device memory here too, which a free leaves (graph allocations). */
VGPU_EXPORT cudaError_t cudaGraphAddMemAllocNode(cudaGraphNode_t *pGraphNode, cudaGraph_t graph,
                                                 const cudaGraphNode_t *pDependencies,
                                                 size_t numDependencies,
                                                 struct cudaMemAllocNodeParams *nodeParams)
{
    cudaError_t st;

    ONDRIVER(cuGraphAddMemAllocNode, cuGraphAddMemAllocNode);
    st = vgpu_ondriver_done(p(pGraphNode, graph, pDependencies, numDependencies,
                              (CUDA_MEM_ALLOC_NODE_PARAMS *)nodeParams));
    if (st == cudaSuccess)
        vgpu_shim_device_range_add_graph(nodeParams->dptr, nodeParams->bytesize);
    return st;
}
ONDRIVER_PASS(cudaGraphMemAllocNodeGetParams,
     (cudaGraphNode_t node, struct cudaMemAllocNodeParams *params_out),
     cuGraphMemAllocNodeGetParams, cuGraphMemAllocNodeGetParams,
     (node, (CUDA_MEM_ALLOC_NODE_PARAMS *)params_out))
ONDRIVER_PASS(cudaGraphAddMemFreeNode,
     (cudaGraphNode_t *pGraphNode, cudaGraph_t graph, const cudaGraphNode_t *pDependencies,
      size_t numDependencies, void *dptr),
     cuGraphAddMemFreeNode, cuGraphAddMemFreeNode,
     (pGraphNode, graph, pDependencies, numDependencies, (CUdeviceptr)(uintptr_t)dptr))
ONDRIVER_PASS(cudaGraphMemFreeNodeGetParams, (cudaGraphNode_t node, void *dptr_out),
     cuGraphMemFreeNodeGetParams, cuGraphMemFreeNodeGetParams, (node, (CUdeviceptr *)dptr_out))

/* ---- the driver's log (vgpu's libcuda.so.1 reads it from the server) ---- */

ONDRIVER_PASS(cudaLogsCurrent, (cudaLogIterator *iterator_out, unsigned int flags),
     cuLogsCurrent, cuLogsCurrent, ((CUlogIterator *)iterator_out, flags))
ONDRIVER_PASS(cudaLogsDumpToMemory,
     (cudaLogIterator *iterator, char *buffer, size_t *size, unsigned int flags),
     cuLogsDumpToMemory, cuLogsDumpToMemory, ((CUlogIterator *)iterator, buffer, size, flags))
ONDRIVER_PASS(cudaLogsDumpToFile,
     (cudaLogIterator *iterator, const char *pathToFile, unsigned int flags),
     cuLogsDumpToFile, cuLogsDumpToFile, ((CUlogIterator *)iterator, pathToFile, flags))
/* the callbacks run in this process, on vgpu's libcuda.so.1 (a cudaLogLevel is a CUlogLevel) */
ONDRIVER_PASS(cudaLogsRegisterCallback,
     (cudaLogsCallback_t callbackFunc, void *userData, cudaLogsCallbackHandle *callback_out),
     cuLogsRegisterCallback, cuLogsRegisterCallback,
     ((CUlogsCallback)callbackFunc, userData, (CUlogsCallbackHandle *)callback_out))
ONDRIVER_PASS(cudaLogsUnregisterCallback, (cudaLogsCallbackHandle callback),
     cuLogsUnregisterCallback, cuLogsUnregisterCallback, ((CUlogsCallbackHandle)callback))

/* ---- async notifications: run in this process as host callbacks are, on vgpu's libcuda.so.1 ---- */

ONDRIVER_PASS(cudaDeviceRegisterAsyncNotification,
     (int device, cudaAsyncCallback callbackFunc, void *userData,
      cudaAsyncCallbackHandle_t *callback),
     cuDeviceRegisterAsyncNotification, cuDeviceRegisterAsyncNotification,
     ((CUdevice)device, (CUasyncCallback)callbackFunc, userData, (CUasyncCallbackHandle *)callback))
ONDRIVER_PASS(cudaDeviceUnregisterAsyncNotification, (int device, cudaAsyncCallbackHandle_t callback),
     cuDeviceUnregisterAsyncNotification, cuDeviceUnregisterAsyncNotification,
     ((CUdevice)device, (CUasyncCallbackHandle)callback))

/* ---- conditional nodes: their handle and node for the current context ---- */

VGPU_EXPORT cudaError_t cudaGraphConditionalHandleCreate(cudaGraphConditionalHandle *pHandle_out,
                                                         cudaGraph_t graph,
                                                         unsigned int defaultLaunchValue,
                                                         unsigned int flags)
{
    ONDRIVER(cuGraphConditionalHandleCreate, cuGraphConditionalHandleCreate);
    return vgpu_ondriver_done(p((CUgraphConditionalHandle *)pHandle_out, graph, current_ctx(),
                                defaultLaunchValue, flags));
}

/* A conditional node through the driver's generic call, in the current context. */
static cudaError_t add_conditional(cudaGraphNode_t *pGraphNode, cudaGraph_t graph,
                                   const cudaGraphNode_t *d, size_t n,
                                   struct cudaConditionalNodeParams *c)
{
    CUgraphNodeParams np;
    CUcontext ctx = current_ctx();
    cudaError_t st;

    ONDRIVER(cuGraphAddNode, cuGraphAddNode_v2);
    memset(&np, 0, sizeof(np));
    np.type = CU_GRAPH_NODE_TYPE_CONDITIONAL;
    np.conditional.handle = c->handle;
    np.conditional.type = (CUgraphConditionalNodeType)c->type;
    np.conditional.size = c->size;
    np.conditional.ctx = ctx;
    st = vgpu_ondriver_done(p(pGraphNode, graph, d, NULL, n, &np));
    if (st == cudaSuccess)
        c->phGraph_out = np.conditional.phGraph_out;
    return st;
}

/* ---- the generic node calls: each node type's own call (shim/driver/graph.c says why) ---- */

static cudaError_t generic_refused(const char *name, const char *what)
{
    vgpu_shim_log(VGPU_LOG_ERROR, "%s: %s is not remoted by vgpu; it returns "
                  "cudaErrorNotSupported", name, what);
    return (cudaError_t)vgpu_shim_status(cudaErrorNotSupported);
}

static cudaError_t generic_type_refused(const char *name, enum cudaGraphNodeType type)
{
    char what[64];

    snprintf(what, sizeof(what), "a node of type %d (cudaGraphNodeType)", (int)type);
    return generic_refused(name, what);
}

static bool generic_params_ok(const struct cudaGraphNodeParams *p)
{
    return p && !p->reserved0[0] && !p->reserved0[1] && !p->reserved0[2] && !p->reserved2;
}

static struct cudaKernelNodeParams kernel_v1(const struct cudaKernelNodeParamsV2 *k)
{
    struct cudaKernelNodeParams v = { 0 };

    v.func = k->func;
    v.gridDim = k->gridDim;
    v.blockDim = k->blockDim;
    v.sharedMemBytes = k->sharedMemBytes;
    v.kernelParams = k->kernelParams;
    v.extra = k->extra;
    return v;
}

static struct cudaMemsetParams memset_v1(const struct cudaMemsetParamsV2 *m)
{
    struct cudaMemsetParams v = { 0 };

    v.dst = m->dst;
    v.pitch = m->pitch;
    v.value = m->value;
    v.elementSize = m->elementSize;
    v.width = m->width;
    v.height = m->height;
    return v;
}

VGPU_EXPORT cudaError_t cudaGraphAddNode(cudaGraphNode_t *pGraphNode, cudaGraph_t graph,
                                         const cudaGraphNode_t *pDependencies,
                                         const cudaGraphEdgeData *dependencyData,
                                         size_t numDependencies,
                                         struct cudaGraphNodeParams *p)
{
    static const cudaGraphEdgeData none;
    const cudaGraphNode_t *d = pDependencies;
    size_t n = numDependencies;

    if (!generic_params_ok(p))
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    for (size_t i = 0; dependencyData && i < n; i++)
        if (memcmp(&dependencyData[i], &none, sizeof(none)))
            return generic_refused("cudaGraphAddNode", "edge data other than the default");
    switch (p->type) {
    case cudaGraphNodeTypeKernel: {
        struct cudaKernelNodeParams k = kernel_v1(&p->kernel);

        return cudaGraphAddKernelNode(pGraphNode, graph, d, n, &k);
    }
    case cudaGraphNodeTypeMemcpy:
        return cudaGraphAddMemcpyNode(pGraphNode, graph, d, n, &p->memcpy.copyParams);
    case cudaGraphNodeTypeMemset: {
        struct cudaMemsetParams m = memset_v1(&p->memset);

        return cudaGraphAddMemsetNode(pGraphNode, graph, d, n, &m);
    }
    case cudaGraphNodeTypeHost: {
        struct cudaHostNodeParams h = { p->host.fn, p->host.userData };

        return cudaGraphAddHostNode(pGraphNode, graph, d, n, &h);
    }
    case cudaGraphNodeTypeGraph:
        if (p->graph.ownership != cudaGraphChildGraphOwnershipClone)
            return generic_refused("cudaGraphAddNode", "a child graph node that takes its graph "
                                   "over (ownership move)");
        return cudaGraphAddChildGraphNode(pGraphNode, graph, d, n, p->graph.graph);
    case cudaGraphNodeTypeEventRecord:
        return cudaGraphAddEventRecordNode(pGraphNode, graph, d, n, p->eventRecord.event);
    case cudaGraphNodeTypeWaitEvent:
        return cudaGraphAddEventWaitNode(pGraphNode, graph, d, n, p->eventWait.event);
    case cudaGraphNodeTypeEmpty:
        return cudaGraphAddEmptyNode(pGraphNode, graph, d, n);
    case cudaGraphNodeTypeMemAlloc: {
        struct cudaMemAllocNodeParams m = { .poolProps = p->alloc.poolProps,
                                            .accessDescs = p->alloc.accessDescs,
                                            .accessDescCount = p->alloc.accessDescCount,
                                            .bytesize = p->alloc.bytesize };
        cudaError_t st = cudaGraphAddMemAllocNode(pGraphNode, graph, d, n, &m);

        if (st == cudaSuccess)
            p->alloc.dptr = m.dptr;
        return st;
    }
    case cudaGraphNodeTypeMemFree:
        return cudaGraphAddMemFreeNode(pGraphNode, graph, d, n, p->free.dptr);
    case cudaGraphNodeTypeConditional:
        return add_conditional(pGraphNode, graph, d, n, &p->conditional);
    default:
        return generic_type_refused("cudaGraphAddNode", p->type);
    }
}

VGPU_EXPORT cudaError_t cudaGraphNodeSetParams(cudaGraphNode_t node, struct cudaGraphNodeParams *p)
{
    if (!generic_params_ok(p))
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    switch (p->type) {
    case cudaGraphNodeTypeKernel: {
        struct cudaKernelNodeParams k = kernel_v1(&p->kernel);

        return cudaGraphKernelNodeSetParams(node, &k);
    }
    case cudaGraphNodeTypeMemcpy:
        return cudaGraphMemcpyNodeSetParams(node, &p->memcpy.copyParams);
    case cudaGraphNodeTypeMemset: {
        struct cudaMemsetParams m = memset_v1(&p->memset);

        return cudaGraphMemsetNodeSetParams(node, &m);
    }
    case cudaGraphNodeTypeHost: {
        struct cudaHostNodeParams h = { p->host.fn, p->host.userData };

        return cudaGraphHostNodeSetParams(node, &h);
    }
    case cudaGraphNodeTypeEventRecord:
        return cudaGraphEventRecordNodeSetEvent(node, p->eventRecord.event);
    case cudaGraphNodeTypeWaitEvent:
        return cudaGraphEventWaitNodeSetEvent(node, p->eventWait.event);
    default:
        return generic_type_refused("cudaGraphNodeSetParams", p->type);
    }
}

VGPU_EXPORT cudaError_t cudaGraphExecNodeSetParams(cudaGraphExec_t graphExec, cudaGraphNode_t node,
                                                   struct cudaGraphNodeParams *p)
{
    if (!generic_params_ok(p))
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    switch (p->type) {
    case cudaGraphNodeTypeKernel: {
        struct cudaKernelNodeParams k = kernel_v1(&p->kernel);

        return cudaGraphExecKernelNodeSetParams(graphExec, node, &k);
    }
    case cudaGraphNodeTypeMemcpy:
        return cudaGraphExecMemcpyNodeSetParams(graphExec, node, &p->memcpy.copyParams);
    case cudaGraphNodeTypeMemset: {
        struct cudaMemsetParams m = memset_v1(&p->memset);

        return cudaGraphExecMemsetNodeSetParams(graphExec, node, &m);
    }
    case cudaGraphNodeTypeHost: {
        struct cudaHostNodeParams h = { p->host.fn, p->host.userData };

        return cudaGraphExecHostNodeSetParams(graphExec, node, &h);
    }
    case cudaGraphNodeTypeGraph:
        return cudaGraphExecChildGraphNodeSetParams(graphExec, node, p->graph.graph);
    case cudaGraphNodeTypeEventRecord:
        return cudaGraphExecEventRecordNodeSetEvent(graphExec, node, p->eventRecord.event);
    case cudaGraphNodeTypeWaitEvent:
        return cudaGraphExecEventWaitNodeSetEvent(graphExec, node, p->eventWait.event);
    default:
        return generic_type_refused("cudaGraphExecNodeSetParams", p->type);
    }
}
