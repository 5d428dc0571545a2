/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Stream capture and CUDA graphs for libcuda.so.1: the calls the
 * generator cannot carry (server/manual/graph.c is the other side).  The
 * graphs themselves live on the server; the guest holds their handles.
 *
 * cuStreamGetCaptureInfo_v2/_v3 hand out arrays the driver owns, "valid
 * until the next API call on the stream" (CUDA's words): here they are
 * copies kept per stream, replaced by the stream's next such call, so a
 * caller on another stream never sees them change.  cuGraphDebugDotPrint
 * writes its file in the guest, from the text the server's driver wrote.
 *
 * Graph memory: an allocation node's address is fixed when it is made,
 * and the server charges what an executable graph's allocation nodes may
 * hold to the VM's limit at instantiation (cuGraphInstantiateWithFlags and
 * cuGraphExecDestroy come here for that).  cuGraphMemAllocNodeGetParams
 * hands out access descriptors the node "owns": copies kept per node here.
 */
#include <cuda.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_calltable.h"
#include "driver_internal.h"
#include "manual.pb-c.h"

#define ID(name) VGPU_CUDA_ID_##name

/* The arrays one stream's last cuStreamGetCaptureInfo answered with. */
struct capture_arrays {
    CUstream stream;
    CUgraphNode *deps;
    CUgraphEdgeData *edges;
    struct capture_arrays *next;
};

static struct capture_arrays *arrays;
static pthread_mutex_t arrays_lock = PTHREAD_MUTEX_INITIALIZER;

/*
 * Keeps deps (and edges) as stream's arrays, freeing those of its previous
 * call; CUDA_ERROR_OUT_OF_MEMORY leaves nothing changed.
 */
static CUresult keep_arrays(CUstream stream, const Vgpu__Manual__CaptureInfoRet *r, bool edges,
                            const CUgraphNode **deps_out, const CUgraphEdgeData **edges_out)
{
    size_t n = r->n_deps;
    CUgraphNode *d = calloc(n ? n : 1, sizeof(*d));
    CUgraphEdgeData *e = edges ? calloc(n ? n : 1, sizeof(*e)) : NULL;
    struct capture_arrays *a;

    if (!d || (edges && !e)) {
        free(d);
        free(e);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    for (size_t i = 0; i < n; i++)
        d[i] = (CUgraphNode)(uintptr_t)r->deps[i];
    if (e && r->edges.len == n * sizeof(*e))
        memcpy(e, r->edges.data, r->edges.len);
    pthread_mutex_lock(&arrays_lock);
    for (a = arrays; a && a->stream != stream; a = a->next)
        ;
    if (!a && (a = calloc(1, sizeof(*a)))) {
        a->stream = stream;
        a->next = arrays;
        arrays = a;
    }
    if (!a) {
        pthread_mutex_unlock(&arrays_lock);
        free(d);
        free(e);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    free(a->deps);
    free(a->edges);
    a->deps = d;
    a->edges = e;
    pthread_mutex_unlock(&arrays_lock);
    *deps_out = d;
    if (edges_out)
        *edges_out = r->edges_null ? NULL : e;
    return CUDA_SUCCESS;
}

static CUresult capture_info(uint32_t id, const char *name, CUstream stream,
                             CUstreamCaptureStatus *status, cuuint64_t *id_out, CUgraph *graph,
                             const CUgraphNode **deps, const CUgraphEdgeData **edges, size_t *n)
{
    Vgpu__Manual__CaptureInfoArgs a = VGPU__MANUAL__CAPTURE_INFO_ARGS__INIT;
    Vgpu__Manual__CaptureInfoRet *r;
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    CUresult st;

    if (!status)
        return CUDA_ERROR_INVALID_VALUE;
    a.stream = (uint64_t)(uintptr_t)stream;
    a.want_id = id_out != NULL;
    a.want_graph = graph != NULL;
    a.want_deps = deps != NULL;
    a.want_edges = edges != NULL;
    a.want_count = n != NULL;
    if ((st = vgpu_drv_call(id, name, &a.base, &req, &rep)) != CUDA_SUCCESS)
        goto out;
    if (!(r = vgpu__manual__capture_info_ret__unpack(NULL, rep.ret_len, rep.ret))) {
        st = vgpu_shim_bad_reply(&req);
        goto out;
    }
    *status = (CUstreamCaptureStatus)r->status;
    /* the other outputs are the driver's only while the stream captures */
    if (r->status == CU_STREAM_CAPTURE_STATUS_ACTIVE) {
        if (deps)
            st = keep_arrays(stream, r, edges != NULL, deps, edges);
        if (st == CUDA_SUCCESS && id_out)
            *id_out = r->id;
        if (st == CUDA_SUCCESS && graph)
            *graph = (CUgraph)(uintptr_t)r->graph;
        /* the count alone travels as count (a server before it answered deps only) */
        if (st == CUDA_SUCCESS && n)
            *n = deps || !r->count ? r->n_deps : r->count;
    }
    vgpu__manual__capture_info_ret__free_unpacked(r, NULL);
out:
    vgpu_shim_rep_release(&rep);
    return st;
}

VGPU_EXPORT CUresult cuStreamGetCaptureInfo_v2(CUstream hStream,
                                               CUstreamCaptureStatus *captureStatus_out,
                                               cuuint64_t *id_out, CUgraph *graph_out,
                                               const CUgraphNode **dependencies_out,
                                               size_t *numDependencies_out)
{
    return capture_info(ID(cuStreamGetCaptureInfo_v2), "cuStreamGetCaptureInfo_v2", hStream,
                        captureStatus_out, id_out, graph_out, dependencies_out, NULL,
                        numDependencies_out);
}

VGPU_EXPORT CUresult cuStreamGetCaptureInfo_v2_ptsz(CUstream hStream,
                                                    CUstreamCaptureStatus *captureStatus_out,
                                                    cuuint64_t *id_out, CUgraph *graph_out,
                                                    const CUgraphNode **dependencies_out,
                                                    size_t *numDependencies_out)
{
    return capture_info(ID(cuStreamGetCaptureInfo_v2_ptsz), "cuStreamGetCaptureInfo_v2_ptsz",
                        hStream, captureStatus_out, id_out, graph_out, dependencies_out, NULL,
                        numDependencies_out);
}

VGPU_EXPORT CUresult cuStreamGetCaptureInfo_v3(CUstream hStream,
                                               CUstreamCaptureStatus *captureStatus_out,
                                               cuuint64_t *id_out, CUgraph *graph_out,
                                               const CUgraphNode **dependencies_out,
                                               const CUgraphEdgeData **edgeData_out,
                                               size_t *numDependencies_out)
{
    return capture_info(ID(cuStreamGetCaptureInfo_v3), "cuStreamGetCaptureInfo_v3", hStream,
                        captureStatus_out, id_out, graph_out, dependencies_out, edgeData_out,
                        numDependencies_out);
}

VGPU_EXPORT CUresult cuStreamGetCaptureInfo_v3_ptsz(CUstream hStream,
                                                    CUstreamCaptureStatus *captureStatus_out,
                                                    cuuint64_t *id_out, CUgraph *graph_out,
                                                    const CUgraphNode **dependencies_out,
                                                    const CUgraphEdgeData **edgeData_out,
                                                    size_t *numDependencies_out)
{
    return capture_info(ID(cuStreamGetCaptureInfo_v3_ptsz), "cuStreamGetCaptureInfo_v3_ptsz",
                        hStream, captureStatus_out, id_out, graph_out, dependencies_out,
                        edgeData_out, numDependencies_out);
}

/* ---- graphs ---- */

static void forget_bodies(uint64_t h, bool node);

static CUresult destroy(uint32_t id, const char *name, uint64_t handle)
{
    Vgpu__Manual__GraphArgs a = VGPU__MANUAL__GRAPH_ARGS__INIT;
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    CUresult st;

    a.graph = handle;
    st = vgpu_drv_call(id, name, &a.base, &req, &rep);
    vgpu_shim_rep_release(&rep);
    if (st == CUDA_SUCCESS && id == ID(cuGraphDestroyNode))
        forget_bodies(handle, true);
    else if (st == CUDA_SUCCESS && id == ID(cuGraphDestroy))
        forget_bodies(handle, false);
    return st;
}

VGPU_EXPORT CUresult cuGraphDestroy(CUgraph hGraph)
{
    return destroy(ID(cuGraphDestroy), "cuGraphDestroy", (uint64_t)(uintptr_t)hGraph);
}

VGPU_EXPORT CUresult cuGraphDestroyNode(CUgraphNode hNode)
{
    return destroy(ID(cuGraphDestroyNode), "cuGraphDestroyNode", (uint64_t)(uintptr_t)hNode);
}

/* The text the server's driver wrote, written to path here. */
static CUresult write_dot(const char *path, const ProtobufCBinaryData *text)
{
    FILE *f = fopen(path, "w");
    int bad;

    if (!f)
        return CUDA_ERROR_OPERATING_SYSTEM;
    bad = text->len && fwrite(text->data, 1, text->len, f) != text->len;
    if (fclose(f) || bad)
        return CUDA_ERROR_OPERATING_SYSTEM;
    return CUDA_SUCCESS;
}

VGPU_EXPORT CUresult cuGraphDebugDotPrint(CUgraph hGraph, const char *path, unsigned int flags)
{
    Vgpu__Manual__GraphArgs a = VGPU__MANUAL__GRAPH_ARGS__INIT;
    Vgpu__Manual__DotRet *r;
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    CUresult st;

    if (!path)
        return CUDA_ERROR_INVALID_VALUE;
    a.graph = (uint64_t)(uintptr_t)hGraph;
    a.flags = flags;
    st = vgpu_drv_call(ID(cuGraphDebugDotPrint), "cuGraphDebugDotPrint", &a.base, &req, &rep);
    if (st == CUDA_SUCCESS) {
        if ((r = vgpu__manual__dot_ret__unpack(NULL, rep.ret_len, rep.ret))) {
            st = write_dot(path, &r->text);
            vgpu__manual__dot_ret__free_unpacked(r, NULL);
        } else {
            st = vgpu_shim_bad_reply(&req);
        }
    }
    vgpu_shim_rep_release(&rep);
    return st;
}

static CUresult instantiate(uint32_t id, const char *name, CUgraphExec *exec, CUgraph graph,
                            CUDA_GRAPH_INSTANTIATE_PARAMS *p)
{
    Vgpu__Manual__InstantiateArgs a = VGPU__MANUAL__INSTANTIATE_ARGS__INIT;
    Vgpu__Manual__InstantiateRet *r;
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    CUresult st;

    if (!exec || !p)
        return CUDA_ERROR_INVALID_VALUE;
    a.graph = (uint64_t)(uintptr_t)graph;
    a.flags = p->flags;
    a.upload_stream = (uint64_t)(uintptr_t)p->hUploadStream;
    st = vgpu_drv_call(id, name, &a.base, &req, &rep);
    /* a failure of the driver's own still carries the result code and error node */
    if ((st == CUDA_SUCCESS || rep.ret_len) &&
        (r = vgpu__manual__instantiate_ret__unpack(NULL, rep.ret_len, rep.ret))) {
        p->result_out = (CUgraphInstantiateResult)r->result;
        p->hErrNode_out = (CUgraphNode)(uintptr_t)r->err_node;
        if (st == CUDA_SUCCESS)
            *exec = (CUgraphExec)(uintptr_t)r->exec;
        vgpu__manual__instantiate_ret__free_unpacked(r, NULL);
    } else if (st == CUDA_SUCCESS) {
        st = vgpu_shim_bad_reply(&req);
    }
    vgpu_shim_rep_release(&rep);
    return st;
}

VGPU_EXPORT CUresult cuGraphInstantiateWithFlags(CUgraphExec *phGraphExec, CUgraph hGraph,
                                                 unsigned long long flags)
{
    CUDA_GRAPH_INSTANTIATE_PARAMS p = { .flags = flags };

    return instantiate(ID(cuGraphInstantiateWithFlags), "cuGraphInstantiateWithFlags",
                       phGraphExec, hGraph, &p);
}

VGPU_EXPORT CUresult cuGraphExecDestroy(CUgraphExec hGraphExec)
{
    return destroy(ID(cuGraphExecDestroy), "cuGraphExecDestroy",
                   (uint64_t)(uintptr_t)hGraphExec);
}

VGPU_EXPORT CUresult cuGraphInstantiateWithParams(CUgraphExec *phGraphExec, CUgraph hGraph,
                                                  CUDA_GRAPH_INSTANTIATE_PARAMS *instantiateParams)
{
    return instantiate(ID(cuGraphInstantiateWithParams), "cuGraphInstantiateWithParams",
                       phGraphExec, hGraph, instantiateParams);
}

VGPU_EXPORT CUresult cuGraphInstantiateWithParams_ptsz(
    CUgraphExec *phGraphExec, CUgraph hGraph, CUDA_GRAPH_INSTANTIATE_PARAMS *instantiateParams)
{
    return instantiate(ID(cuGraphInstantiateWithParams_ptsz), "cuGraphInstantiateWithParams_ptsz",
                       phGraphExec, hGraph, instantiateParams);
}

/* The update's result and its nodes come back with a failure too (the driver's words on why). */
VGPU_EXPORT CUresult cuGraphExecUpdate_v2(CUgraphExec hGraphExec, CUgraph hGraph,
                                          CUgraphExecUpdateResultInfo *resultInfo)
{
    Vgpu__Manual__ExecUpdateArgs a = VGPU__MANUAL__EXEC_UPDATE_ARGS__INIT;
    Vgpu__Manual__ExecUpdateRet *r;
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    CUresult st;

    if (!resultInfo)
        return CUDA_ERROR_INVALID_VALUE;
    a.exec = (uint64_t)(uintptr_t)hGraphExec;
    a.graph = (uint64_t)(uintptr_t)hGraph;
    st = vgpu_drv_call(ID(cuGraphExecUpdate_v2), "cuGraphExecUpdate_v2", &a.base, &req, &rep);
    if ((st == CUDA_SUCCESS || rep.ret_len) &&
        (r = vgpu__manual__exec_update_ret__unpack(NULL, rep.ret_len, rep.ret))) {
        resultInfo->result = (CUgraphExecUpdateResult)r->result;
        resultInfo->errorNode = (CUgraphNode)(uintptr_t)r->error_node;
        resultInfo->errorFromNode = (CUgraphNode)(uintptr_t)r->error_from_node;
        vgpu__manual__exec_update_ret__free_unpacked(r, NULL);
    } else if (st == CUDA_SUCCESS) {
        st = vgpu_shim_bad_reply(&req);
    }
    vgpu_shim_rep_release(&rep);
    return st;
}

/* ---- node lists ---- */

/*
 * One call of the cuGraphGetNodes family: the driver's arrays copied into
 * the caller's (a, b: nodes, or from and to; e: edge data), *n in and out.
 */
static CUresult node_list(uint32_t id, const char *name, uint64_t handle, CUgraphNode *a,
                          CUgraphNode *b, CUgraphEdgeData *e, size_t *n)
{
    Vgpu__Manual__NodeListArgs args = VGPU__MANUAL__NODE_LIST_ARGS__INIT;
    Vgpu__Manual__NodeListRet *r;
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    CUresult st;

    if (!n)
        return CUDA_ERROR_INVALID_VALUE;
    args.handle = handle;
    args.want_nodes = a != NULL;
    args.want_edges = e != NULL;
    args.capacity = a ? *n : 0;
    if ((st = vgpu_drv_call(id, name, &args.base, &req, &rep)) != CUDA_SUCCESS)
        goto out;
    r = vgpu__manual__node_list_ret__unpack(NULL, rep.ret_len, rep.ret);
    if (!r || (a && r->n_nodes != *n) || (b && r->n_to != *n) ||
        (e && r->edges.len != *n * sizeof(*e))) {
        st = vgpu_shim_bad_reply(&req);
    } else {
        for (size_t i = 0; a && i < r->n_nodes; i++)
            a[i] = (CUgraphNode)(uintptr_t)r->nodes[i];
        for (size_t i = 0; b && i < r->n_to; i++)
            b[i] = (CUgraphNode)(uintptr_t)r->to[i];
        if (e && r->edges.len)
            memcpy(e, r->edges.data, r->edges.len);
        *n = r->count;
    }
    if (r)
        vgpu__manual__node_list_ret__free_unpacked(r, NULL);
out:
    vgpu_shim_rep_release(&rep);
    return st;
}

#define H(x) ((uint64_t)(uintptr_t)(x))

VGPU_EXPORT CUresult cuGraphGetNodes(CUgraph hGraph, CUgraphNode *nodes, size_t *numNodes)
{
    return node_list(ID(cuGraphGetNodes), "cuGraphGetNodes", H(hGraph), nodes, NULL, NULL,
                     numNodes);
}

VGPU_EXPORT CUresult cuGraphGetRootNodes(CUgraph hGraph, CUgraphNode *rootNodes,
                                         size_t *numRootNodes)
{
    return node_list(ID(cuGraphGetRootNodes), "cuGraphGetRootNodes", H(hGraph), rootNodes, NULL,
                     NULL, numRootNodes);
}

VGPU_EXPORT CUresult cuGraphGetEdges(CUgraph hGraph, CUgraphNode *from, CUgraphNode *to,
                                     size_t *numEdges)
{
    if (!from != !to)
        return CUDA_ERROR_INVALID_VALUE;
    return node_list(ID(cuGraphGetEdges), "cuGraphGetEdges", H(hGraph), from, to, NULL, numEdges);
}

VGPU_EXPORT CUresult cuGraphGetEdges_v2(CUgraph hGraph, CUgraphNode *from, CUgraphNode *to,
                                        CUgraphEdgeData *edgeData, size_t *numEdges)
{
    if (!from != !to || (edgeData && !from))
        return CUDA_ERROR_INVALID_VALUE;
    return node_list(ID(cuGraphGetEdges_v2), "cuGraphGetEdges_v2", H(hGraph), from, to, edgeData,
                     numEdges);
}

VGPU_EXPORT CUresult cuGraphNodeGetDependencies(CUgraphNode hNode, CUgraphNode *dependencies,
                                                size_t *numDependencies)
{
    return node_list(ID(cuGraphNodeGetDependencies), "cuGraphNodeGetDependencies", H(hNode),
                     dependencies, NULL, NULL, numDependencies);
}

VGPU_EXPORT CUresult cuGraphNodeGetDependencies_v2(CUgraphNode hNode, CUgraphNode *dependencies,
                                                   CUgraphEdgeData *edgeData,
                                                   size_t *numDependencies)
{
    if (edgeData && !dependencies)
        return CUDA_ERROR_INVALID_VALUE;
    return node_list(ID(cuGraphNodeGetDependencies_v2), "cuGraphNodeGetDependencies_v2",
                     H(hNode), dependencies, NULL, edgeData, numDependencies);
}

VGPU_EXPORT CUresult cuGraphNodeGetDependentNodes(CUgraphNode hNode, CUgraphNode *dependentNodes,
                                                  size_t *numDependentNodes)
{
    return node_list(ID(cuGraphNodeGetDependentNodes), "cuGraphNodeGetDependentNodes", H(hNode),
                     dependentNodes, NULL, NULL, numDependentNodes);
}

VGPU_EXPORT CUresult cuGraphNodeGetDependentNodes_v2(CUgraphNode hNode,
                                                     CUgraphNode *dependentNodes,
                                                     CUgraphEdgeData *edgeData,
                                                     size_t *numDependentNodes)
{
    if (edgeData && !dependentNodes)
        return CUDA_ERROR_INVALID_VALUE;
    return node_list(ID(cuGraphNodeGetDependentNodes_v2), "cuGraphNodeGetDependentNodes_v2",
                     H(hNode), dependentNodes, NULL, edgeData, numDependentNodes);
}

/* ---- kernel node parameters read back ---- */

/* What a kernel node's parameters say, whichever version of the struct held them. */
struct kernel_node {
    CUfunction func;
    unsigned grid[3], block[3], shmem;
    void **params, **extra;
    CUcontext ctx;
};


/*
 * The parameters of a node's last cuGraphKernelNodeGetParams: CUDA keeps
 * the kernelParams it hands out valid while the node lives and its
 * parameters stay; here until the node's next such call.
 */
struct kernel_params {
    CUgraphNode node;
    uint8_t *bytes;
    void **ptrs;
    struct kernel_params *next;
};

static struct kernel_params *kparams;
static pthread_mutex_t kparams_lock = PTHREAD_MUTEX_INITIALIZER;

/* kernelParams for node from r: copies kept for the node; NULL without memory. */
static void **keep_params(CUgraphNode node, const Vgpu__Manual__KernelNodeRet *r)
{
    uint8_t *bytes = malloc(r->params.len ? r->params.len : 1);
    void **ptrs = calloc(r->n_offset ? r->n_offset : 1, sizeof(*ptrs));
    struct kernel_params *k;

    if (!bytes || !ptrs)
        goto fail;
    if (r->params.len)
        memcpy(bytes, r->params.data, r->params.len);
    for (size_t i = 0; i < r->n_offset; i++) {
        if (r->offset[i] > r->params.len)
            goto fail;
        ptrs[i] = bytes + r->offset[i];
    }
    pthread_mutex_lock(&kparams_lock);
    for (k = kparams; k && k->node != node; k = k->next)
        ;
    if (!k && (k = calloc(1, sizeof(*k)))) {
        k->node = node;
        k->next = kparams;
        kparams = k;
    }
    if (k) {
        free(k->bytes);
        free(k->ptrs);
        k->bytes = bytes;
        k->ptrs = ptrs;
    }
    pthread_mutex_unlock(&kparams_lock);
    if (k)
        return ptrs;
fail:
    free(bytes);
    free(ptrs);
    return NULL;
}

/* The node's launch into *k; a CUresult. */
static CUresult kernel_get(uint32_t id, const char *name, CUgraphNode node, struct kernel_node *k)
{
    Vgpu__Manual__GraphArgs a = VGPU__MANUAL__GRAPH_ARGS__INIT;
    Vgpu__Manual__KernelNodeRet *r;
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    CUresult st;

    a.graph = (uint64_t)(uintptr_t)node;
    if ((st = vgpu_drv_call(id, name, &a.base, &req, &rep)) != CUDA_SUCCESS)
        goto out;
    r = vgpu__manual__kernel_node_ret__unpack(NULL, rep.ret_len, rep.ret);
    if (!r || !r->grid || !r->block) {
        st = vgpu_shim_bad_reply(&req);
    } else if (r->n_offset && !(k->params = keep_params(node, r))) {
        st = CUDA_ERROR_OUT_OF_MEMORY;
    } else {
        *k = (struct kernel_node){
            .func = (CUfunction)(uintptr_t)r->function, .grid = { r->grid->x, r->grid->y, r->grid->z },
            .block = { r->block->x, r->block->y, r->block->z }, .shmem = r->shared_mem,
            .params = r->n_offset ? k->params : NULL, .ctx = (CUcontext)(uintptr_t)r->ctx };
    }
    if (r)
        vgpu__manual__kernel_node_ret__free_unpacked(r, NULL);
out:
    vgpu_shim_rep_release(&rep);
    return st;
}

#define FILL_KERNEL(p, k)                                                                   \
    do {                                                                                    \
        (p)->func = (k).func;                                                               \
        (p)->gridDimX = (k).grid[0], (p)->gridDimY = (k).grid[1], (p)->gridDimZ = (k).grid[2]; \
        (p)->blockDimX = (k).block[0], (p)->blockDimY = (k).block[1];                      \
        (p)->blockDimZ = (k).block[2];                                                      \
        (p)->sharedMemBytes = (k).shmem;                                                    \
        (p)->kernelParams = (k).params;                                                     \
        (p)->extra = NULL;                                                                  \
    } while (0)

/* ---- kernel, memset and memcpy nodes ---- */

/* Sends one node call: a, its handles filled by the caller; *node (when not NULL) the new node. */
static CUresult node_call(uint32_t id, const char *name, Vgpu__Manual__NodeArgs *a,
                          const CUgraphNode *deps, size_t ndeps, const void *seg, size_t seglen,
                          CUgraphNode *node)
{
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    uint64_t *d = NULL;
    CUresult st;

    if (ndeps && !deps)
        return CUDA_ERROR_INVALID_VALUE;
    if (ndeps > 65536 || (ndeps && !(d = calloc(ndeps, sizeof(*d)))))
        return ndeps > 65536 ? CUDA_ERROR_INVALID_VALUE : CUDA_ERROR_OUT_OF_MEMORY;
    for (size_t i = 0; i < ndeps; i++)
        d[i] = (uint64_t)(uintptr_t)deps[i];
    a->deps = d;
    a->n_deps = ndeps;
    if (seglen) {
        req.seg[0].data = seg;
        req.seg[0].len = seglen;
        req.nseg = 1;
    }
    st = vgpu_drv_call(id, name, &a->base, &req, &rep);
    if (st == CUDA_SUCCESS && node) {
        Vgpu__Manual__NodeRet *r = vgpu__manual__node_ret__unpack(NULL, rep.ret_len, rep.ret);

        if (r) {
            *node = (CUgraphNode)(uintptr_t)r->node;
            vgpu__manual__node_ret__free_unpacked(r, NULL);
        } else {
            st = vgpu_shim_bad_reply(&req);
        }
    }
    vgpu_shim_rep_release(&rep);
    free(d);
    return st;
}


static CUresult kernel_node(uint32_t id, const char *name, Vgpu__Manual__NodeArgs *a,
                            const struct kernel_node *k, const CUgraphNode *deps, size_t ndeps,
                            CUgraphNode *node)
{
    Vgpu__Manual__Dim3 grid = VGPU__MANUAL__DIM3__INIT, block = VGPU__MANUAL__DIM3__INIT;
    _Alignas(16) uint8_t small[1024];
    uint8_t *heap = NULL;
    const void *buf = NULL;
    size_t len = 0;
    CUresult st;

    if (!k->func)
        return CUDA_ERROR_INVALID_VALUE;
    if ((st = vgpu_drv_kernel_params(k->func, k->params, k->extra, small, sizeof(small), &heap,
                                     &buf, &len)))
        return st;
    grid.x = k->grid[0];
    grid.y = k->grid[1];
    grid.z = k->grid[2];
    block.x = k->block[0];
    block.y = k->block[1];
    block.z = k->block[2];
    a->function = (uint64_t)(uintptr_t)k->func;
    a->grid = &grid;
    a->block = &block;
    a->shared_mem = k->shmem;
    a->ctx = (uint64_t)(uintptr_t)k->ctx;
    st = node_call(id, name, a, deps, ndeps, buf, len, node);
    free(heap);
    return st;
}

#define KERNEL_OF(p, func_, ctx_)                                                          \
    { .func = (func_), .grid = { (p)->gridDimX, (p)->gridDimY, (p)->gridDimZ },           \
      .block = { (p)->blockDimX, (p)->blockDimY, (p)->blockDimZ },                        \
      .shmem = (p)->sharedMemBytes, .params = (p)->kernelParams, .extra = (p)->extra,     \
      .ctx = (ctx_) }
/* A v2 struct names a CUkernel in kern when func is NULL. */
#define FUNC_V2(p) ((p)->func ? (p)->func : (CUfunction)(void *)(p)->kern)

VGPU_EXPORT CUresult cuGraphAddKernelNode(CUgraphNode *phGraphNode, CUgraph hGraph,
                                          const CUgraphNode *dependencies, size_t numDependencies,
                                          const CUDA_KERNEL_NODE_PARAMS_v1 *nodeParams)
{
    Vgpu__Manual__NodeArgs a = VGPU__MANUAL__NODE_ARGS__INIT;

    if (!phGraphNode || !nodeParams)
        return CUDA_ERROR_INVALID_VALUE;
    struct kernel_node k = KERNEL_OF(nodeParams, nodeParams->func, NULL);
    a.graph = (uint64_t)(uintptr_t)hGraph;
    return kernel_node(ID(cuGraphAddKernelNode), "cuGraphAddKernelNode", &a, &k, dependencies,
                       numDependencies, phGraphNode);
}

VGPU_EXPORT CUresult cuGraphAddKernelNode_v2(CUgraphNode *phGraphNode, CUgraph hGraph,
                                             const CUgraphNode *dependencies,
                                             size_t numDependencies,
                                             const CUDA_KERNEL_NODE_PARAMS *nodeParams)
{
    Vgpu__Manual__NodeArgs a = VGPU__MANUAL__NODE_ARGS__INIT;

    if (!phGraphNode || !nodeParams)
        return CUDA_ERROR_INVALID_VALUE;
    struct kernel_node k = KERNEL_OF(nodeParams, FUNC_V2(nodeParams), nodeParams->ctx);
    a.graph = (uint64_t)(uintptr_t)hGraph;
    return kernel_node(ID(cuGraphAddKernelNode_v2), "cuGraphAddKernelNode_v2", &a, &k,
                       dependencies, numDependencies, phGraphNode);
}

VGPU_EXPORT CUresult cuGraphKernelNodeSetParams(CUgraphNode hNode,
                                                const CUDA_KERNEL_NODE_PARAMS_v1 *nodeParams)
{
    Vgpu__Manual__NodeArgs a = VGPU__MANUAL__NODE_ARGS__INIT;

    if (!nodeParams)
        return CUDA_ERROR_INVALID_VALUE;
    struct kernel_node k = KERNEL_OF(nodeParams, nodeParams->func, NULL);
    a.node = (uint64_t)(uintptr_t)hNode;
    return kernel_node(ID(cuGraphKernelNodeSetParams), "cuGraphKernelNodeSetParams", &a, &k,
                       NULL, 0, NULL);
}

VGPU_EXPORT CUresult cuGraphKernelNodeSetParams_v2(CUgraphNode hNode,
                                                   const CUDA_KERNEL_NODE_PARAMS *nodeParams)
{
    Vgpu__Manual__NodeArgs a = VGPU__MANUAL__NODE_ARGS__INIT;

    if (!nodeParams)
        return CUDA_ERROR_INVALID_VALUE;
    struct kernel_node k = KERNEL_OF(nodeParams, FUNC_V2(nodeParams), nodeParams->ctx);
    a.node = (uint64_t)(uintptr_t)hNode;
    return kernel_node(ID(cuGraphKernelNodeSetParams_v2), "cuGraphKernelNodeSetParams_v2", &a,
                       &k, NULL, 0, NULL);
}

VGPU_EXPORT CUresult cuGraphExecKernelNodeSetParams(CUgraphExec hGraphExec, CUgraphNode hNode,
                                                    const CUDA_KERNEL_NODE_PARAMS_v1 *nodeParams)
{
    Vgpu__Manual__NodeArgs a = VGPU__MANUAL__NODE_ARGS__INIT;

    if (!nodeParams)
        return CUDA_ERROR_INVALID_VALUE;
    struct kernel_node k = KERNEL_OF(nodeParams, nodeParams->func, NULL);
    a.exec = (uint64_t)(uintptr_t)hGraphExec;
    a.node = (uint64_t)(uintptr_t)hNode;
    return kernel_node(ID(cuGraphExecKernelNodeSetParams), "cuGraphExecKernelNodeSetParams", &a,
                       &k, NULL, 0, NULL);
}

VGPU_EXPORT CUresult cuGraphExecKernelNodeSetParams_v2(CUgraphExec hGraphExec, CUgraphNode hNode,
                                                       const CUDA_KERNEL_NODE_PARAMS *nodeParams)
{
    Vgpu__Manual__NodeArgs a = VGPU__MANUAL__NODE_ARGS__INIT;

    if (!nodeParams)
        return CUDA_ERROR_INVALID_VALUE;
    struct kernel_node k = KERNEL_OF(nodeParams, FUNC_V2(nodeParams), nodeParams->ctx);
    a.exec = (uint64_t)(uintptr_t)hGraphExec;
    a.node = (uint64_t)(uintptr_t)hNode;
    return kernel_node(ID(cuGraphExecKernelNodeSetParams_v2), "cuGraphExecKernelNodeSetParams_v2",
                       &a, &k, NULL, 0, NULL);
}

static void memset_args(Vgpu__Manual__NodeArgs *a, const CUDA_MEMSET_NODE_PARAMS *p, CUcontext ctx)
{
    a->dst = p->dst;
    a->pitch = p->pitch;
    a->value = p->value;
    a->element_size = p->elementSize;
    a->width = p->width;
    a->height = p->height;
    a->ctx = (uint64_t)(uintptr_t)ctx;
}

VGPU_EXPORT CUresult cuGraphAddMemsetNode(CUgraphNode *phGraphNode, CUgraph hGraph,
                                          const CUgraphNode *dependencies, size_t numDependencies,
                                          const CUDA_MEMSET_NODE_PARAMS *memsetParams,
                                          CUcontext ctx)
{
    Vgpu__Manual__NodeArgs a = VGPU__MANUAL__NODE_ARGS__INIT;

    if (!phGraphNode || !memsetParams)
        return CUDA_ERROR_INVALID_VALUE;
    memset_args(&a, memsetParams, ctx);
    a.graph = (uint64_t)(uintptr_t)hGraph;
    return node_call(ID(cuGraphAddMemsetNode), "cuGraphAddMemsetNode", &a, dependencies,
                     numDependencies, NULL, 0, phGraphNode);
}

VGPU_EXPORT CUresult cuGraphMemsetNodeSetParams(CUgraphNode hNode,
                                                const CUDA_MEMSET_NODE_PARAMS *nodeParams)
{
    Vgpu__Manual__NodeArgs a = VGPU__MANUAL__NODE_ARGS__INIT;

    if (!nodeParams)
        return CUDA_ERROR_INVALID_VALUE;
    memset_args(&a, nodeParams, NULL);
    a.node = (uint64_t)(uintptr_t)hNode;
    return node_call(ID(cuGraphMemsetNodeSetParams), "cuGraphMemsetNodeSetParams", &a, NULL, 0,
                     NULL, 0, NULL);
}

VGPU_EXPORT CUresult cuGraphExecMemsetNodeSetParams(CUgraphExec hGraphExec, CUgraphNode hNode,
                                                    const CUDA_MEMSET_NODE_PARAMS *memsetParams,
                                                    CUcontext ctx)
{
    Vgpu__Manual__NodeArgs a = VGPU__MANUAL__NODE_ARGS__INIT;

    if (!memsetParams)
        return CUDA_ERROR_INVALID_VALUE;
    memset_args(&a, memsetParams, ctx);
    a.exec = (uint64_t)(uintptr_t)hGraphExec;
    a.node = (uint64_t)(uintptr_t)hNode;
    return node_call(ID(cuGraphExecMemsetNodeSetParams), "cuGraphExecMemsetNodeSetParams", &a,
                     NULL, 0, NULL, 0, NULL);
}

/*
 * A memcpy node's copy, device to device only: a host side would be read
 * or written at each launch on the server, where the guest's memory is not.
 */
static CUresult copy_args(Vgpu__Manual__NodeArgs *a, Vgpu__Manual__Copy3D *c,
                          const CUDA_MEMCPY3D *p, CUcontext ctx, const char *name)
{
    static int said;

    if ((p->srcMemoryType != CU_MEMORYTYPE_DEVICE && p->srcMemoryType != CU_MEMORYTYPE_UNIFIED) ||
        (p->dstMemoryType != CU_MEMORYTYPE_DEVICE && p->dstMemoryType != CU_MEMORYTYPE_UNIFIED)) {
        if (!__atomic_exchange_n(&said, 1, __ATOMIC_RELAXED))
            vgpu_shim_log(VGPU_LOG_ERROR, "%s: memcpy nodes with a host or array side are not "
                          "remoted by vgpu (only device to device); it returns "
                          "CUDA_ERROR_NOT_SUPPORTED. Capture a cuMemcpyAsync from page-locked "
                          "memory instead", name);
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    c->src_x = p->srcXInBytes;
    c->src_y = p->srcY;
    c->src_z = p->srcZ;
    c->src_type = p->srcMemoryType;
    c->src = p->srcDevice;
    c->src_pitch = (uint32_t)p->srcPitch;
    c->src_height = (uint32_t)p->srcHeight;
    c->dst_x = p->dstXInBytes;
    c->dst_y = p->dstY;
    c->dst_z = p->dstZ;
    c->dst_type = p->dstMemoryType;
    c->dst = p->dstDevice;
    c->dst_pitch = (uint32_t)p->dstPitch;
    c->dst_height = (uint32_t)p->dstHeight;
    c->width = (uint32_t)p->WidthInBytes;
    c->height = (uint32_t)p->Height;
    c->depth = (uint32_t)p->Depth;
    a->copy = c;
    a->ctx = (uint64_t)(uintptr_t)ctx;
    return CUDA_SUCCESS;
}

VGPU_EXPORT CUresult cuGraphAddMemcpyNode(CUgraphNode *phGraphNode, CUgraph hGraph,
                                          const CUgraphNode *dependencies, size_t numDependencies,
                                          const CUDA_MEMCPY3D *copyParams, CUcontext ctx)
{
    Vgpu__Manual__NodeArgs a = VGPU__MANUAL__NODE_ARGS__INIT;
    Vgpu__Manual__Copy3D c = VGPU__MANUAL__COPY3_D__INIT;
    CUresult st;

    if (!phGraphNode || !copyParams)
        return CUDA_ERROR_INVALID_VALUE;
    if ((st = copy_args(&a, &c, copyParams, ctx, "cuGraphAddMemcpyNode")))
        return st;
    a.graph = (uint64_t)(uintptr_t)hGraph;
    return node_call(ID(cuGraphAddMemcpyNode), "cuGraphAddMemcpyNode", &a, dependencies,
                     numDependencies, NULL, 0, phGraphNode);
}

VGPU_EXPORT CUresult cuGraphMemcpyNodeSetParams(CUgraphNode hNode, const CUDA_MEMCPY3D *nodeParams)
{
    Vgpu__Manual__NodeArgs a = VGPU__MANUAL__NODE_ARGS__INIT;
    Vgpu__Manual__Copy3D c = VGPU__MANUAL__COPY3_D__INIT;
    CUresult st;

    if (!nodeParams)
        return CUDA_ERROR_INVALID_VALUE;
    if ((st = copy_args(&a, &c, nodeParams, NULL, "cuGraphMemcpyNodeSetParams")))
        return st;
    a.node = (uint64_t)(uintptr_t)hNode;
    return node_call(ID(cuGraphMemcpyNodeSetParams), "cuGraphMemcpyNodeSetParams", &a, NULL, 0,
                     NULL, 0, NULL);
}

VGPU_EXPORT CUresult cuGraphExecMemcpyNodeSetParams(CUgraphExec hGraphExec, CUgraphNode hNode,
                                                    const CUDA_MEMCPY3D *copyParams, CUcontext ctx)
{
    Vgpu__Manual__NodeArgs a = VGPU__MANUAL__NODE_ARGS__INIT;
    Vgpu__Manual__Copy3D c = VGPU__MANUAL__COPY3_D__INIT;
    CUresult st;

    if (!copyParams)
        return CUDA_ERROR_INVALID_VALUE;
    if ((st = copy_args(&a, &c, copyParams, ctx, "cuGraphExecMemcpyNodeSetParams")))
        return st;
    a.exec = (uint64_t)(uintptr_t)hGraphExec;
    a.node = (uint64_t)(uintptr_t)hNode;
    return node_call(ID(cuGraphExecMemcpyNodeSetParams), "cuGraphExecMemcpyNodeSetParams", &a,
                     NULL, 0, NULL, 0, NULL);
}

VGPU_EXPORT CUresult cuGraphKernelNodeGetParams(CUgraphNode hNode,
                                                CUDA_KERNEL_NODE_PARAMS_v1 *nodeParams)
{
    struct kernel_node k = { 0 };
    CUresult st;

    if (!nodeParams)
        return CUDA_ERROR_INVALID_VALUE;
    st = kernel_get(ID(cuGraphKernelNodeGetParams), "cuGraphKernelNodeGetParams", hNode, &k);
    if (st == CUDA_SUCCESS)
        FILL_KERNEL(nodeParams, k);
    return st;
}

VGPU_EXPORT CUresult cuGraphKernelNodeGetParams_v2(CUgraphNode hNode,
                                                   CUDA_KERNEL_NODE_PARAMS *nodeParams)
{
    struct kernel_node k = { 0 };
    CUresult st;

    if (!nodeParams)
        return CUDA_ERROR_INVALID_VALUE;
    st = kernel_get(ID(cuGraphKernelNodeGetParams_v2), "cuGraphKernelNodeGetParams_v2", hNode,
                    &k);
    if (st == CUDA_SUCCESS) {
        FILL_KERNEL(nodeParams, k);
        nodeParams->kern = NULL;
        nodeParams->ctx = k.ctx;
    }
    return st;
}

/* Device-to-device memcpy nodes only (those a guest can add): the server says so for others. */
VGPU_EXPORT CUresult cuGraphMemcpyNodeGetParams(CUgraphNode hNode, CUDA_MEMCPY3D *nodeParams)
{
    Vgpu__Manual__GraphArgs a = VGPU__MANUAL__GRAPH_ARGS__INIT;
    Vgpu__Manual__Copy3D *r;
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    CUresult st;

    if (!nodeParams)
        return CUDA_ERROR_INVALID_VALUE;
    a.graph = (uint64_t)(uintptr_t)hNode;
    st = vgpu_drv_call(ID(cuGraphMemcpyNodeGetParams), "cuGraphMemcpyNodeGetParams", &a.base,
                       &req, &rep);
    if (st == CUDA_SUCCESS) {
        if (!(r = vgpu__manual__copy3_d__unpack(NULL, rep.ret_len, rep.ret))) {
            st = vgpu_shim_bad_reply(&req);
        } else {
            *nodeParams = (CUDA_MEMCPY3D){
                .srcXInBytes = r->src_x, .srcY = r->src_y, .srcZ = r->src_z,
                .srcMemoryType = (CUmemorytype)r->src_type, .srcDevice = r->src,
                .srcPitch = r->src_pitch, .srcHeight = r->src_height,
                .dstXInBytes = r->dst_x, .dstY = r->dst_y, .dstZ = r->dst_z,
                .dstMemoryType = (CUmemorytype)r->dst_type, .dstDevice = r->dst,
                .dstPitch = r->dst_pitch, .dstHeight = r->dst_height,
                .WidthInBytes = r->width, .Height = r->height, .Depth = r->depth,
            };
            vgpu__manual__copy3_d__free_unpacked(r, NULL);
        }
    }
    vgpu_shim_rep_release(&rep);
    return st;
}

/* ---- launch attributes of streams and kernel nodes ---- */

/*
 * One call for the seven: a is filled by the caller (object, attribute,
 * what to do); a value set travels as its bytes, a value read comes back
 * into *out.
 */
static CUresult attr_call(uint32_t id, const char *name, Vgpu__Manual__AttrArgs *a,
                          const CUlaunchAttributeValue *in, CUlaunchAttributeValue *out)
{
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    Vgpu__Manual__AttrRet *r;
    CUresult st;

    if ((a->set && !in) || (!a->set && !a->copy && !out))
        return CUDA_ERROR_INVALID_VALUE;
    if (a->set) {
        a->value.data = (uint8_t *)in;
        a->value.len = sizeof(*in);
    }
    st = vgpu_drv_call(id, name, &a->base, &req, &rep);
    if (st == CUDA_SUCCESS && out) {
        r = vgpu__manual__attr_ret__unpack(NULL, rep.ret_len, rep.ret);
        if (!r || r->value.len != sizeof(*out))
            st = vgpu_shim_bad_reply(&req);
        else
            memcpy(out, r->value.data, sizeof(*out));
        if (r)
            vgpu__manual__attr_ret__free_unpacked(r, NULL);
    }
    vgpu_shim_rep_release(&rep);
    return st;
}

#define STREAM_ATTR(name, set_, value_t)                                                   \
    VGPU_EXPORT CUresult name(CUstream hStream, CUstreamAttrID attr, value_t value)        \
    {                                                                                      \
        Vgpu__Manual__AttrArgs a = VGPU__MANUAL__ATTR_ARGS__INIT;                          \
                                                                                           \
        a.stream = (uint64_t)(uintptr_t)hStream;                                           \
        a.attr = (uint32_t)attr;                                                           \
        a.set = (set_);                                                                    \
        return attr_call(ID(name), #name, &a, (set_) ? (const void *)value : NULL,         \
                         (set_) ? NULL : (void *)value);                                   \
    }
STREAM_ATTR(cuStreamGetAttribute, false, CUstreamAttrValue *)
STREAM_ATTR(cuStreamGetAttribute_ptsz, false, CUstreamAttrValue *)
STREAM_ATTR(cuStreamSetAttribute, true, const CUstreamAttrValue *)
STREAM_ATTR(cuStreamSetAttribute_ptsz, true, const CUstreamAttrValue *)

VGPU_EXPORT CUresult cuGraphKernelNodeGetAttribute(CUgraphNode hNode, CUkernelNodeAttrID attr,
                                                   CUkernelNodeAttrValue *value_out)
{
    Vgpu__Manual__AttrArgs a = VGPU__MANUAL__ATTR_ARGS__INIT;

    a.stream = (uint64_t)(uintptr_t)hNode;
    a.node = true;
    a.attr = (uint32_t)attr;
    return attr_call(ID(cuGraphKernelNodeGetAttribute), "cuGraphKernelNodeGetAttribute", &a,
                     NULL, value_out);
}

VGPU_EXPORT CUresult cuGraphKernelNodeSetAttribute(CUgraphNode hNode, CUkernelNodeAttrID attr,
                                                   const CUkernelNodeAttrValue *value)
{
    Vgpu__Manual__AttrArgs a = VGPU__MANUAL__ATTR_ARGS__INIT;

    a.stream = (uint64_t)(uintptr_t)hNode;
    a.node = true;
    a.attr = (uint32_t)attr;
    a.set = true;
    return attr_call(ID(cuGraphKernelNodeSetAttribute), "cuGraphKernelNodeSetAttribute", &a,
                     value, NULL);
}

VGPU_EXPORT CUresult cuGraphKernelNodeCopyAttributes(CUgraphNode dst, CUgraphNode src)
{
    Vgpu__Manual__AttrArgs a = VGPU__MANUAL__ATTR_ARGS__INIT;

    a.stream = (uint64_t)(uintptr_t)dst;
    a.src = (uint64_t)(uintptr_t)src;
    a.node = true;
    a.copy = true;
    return attr_call(ID(cuGraphKernelNodeCopyAttributes), "cuGraphKernelNodeCopyAttributes", &a,
                     NULL, NULL);
}

/* ---- graph memory: allocation nodes ---- */

VGPU_EXPORT CUresult cuGraphAddMemAllocNode(CUgraphNode *phGraphNode, CUgraph hGraph,
                                            const CUgraphNode *dependencies,
                                            size_t numDependencies,
                                            CUDA_MEM_ALLOC_NODE_PARAMS *nodeParams)
{
    Vgpu__Manual__MemAllocNodeArgs a = VGPU__MANUAL__MEM_ALLOC_NODE_ARGS__INIT;
    Vgpu__Manual__MemProp prop = VGPU__MANUAL__MEM_PROP__INIT;
    Vgpu__Manual__MemLocation loc = VGPU__MANUAL__MEM_LOCATION__INIT;
    Vgpu__Manual__AccessDesc acc[64], *accp[64];
    Vgpu__Manual__MemLocation acc_loc[64];
    Vgpu__Manual__MemAllocNodeRet *r;
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    CUresult st;

    if (!phGraphNode || !nodeParams || (numDependencies && !dependencies) ||
        nodeParams->accessDescCount > 64 ||
        (nodeParams->accessDescCount && !nodeParams->accessDescs))
        return CUDA_ERROR_INVALID_VALUE;
    if (nodeParams->poolProps.win32SecurityAttributes)
        return CUDA_ERROR_INVALID_VALUE;
    a.graph = (uint64_t)(uintptr_t)hGraph;
    a.deps = (uint64_t *)(uintptr_t)dependencies;
    a.n_deps = numDependencies;
    vgpu_drv_pool_props_out(&nodeParams->poolProps, &prop, &loc);
    a.prop = &prop;
    vgpu_drv_access_out(nodeParams->accessDescs, nodeParams->accessDescCount, acc, accp, acc_loc);
    a.access = accp;
    a.n_access = nodeParams->accessDescCount;
    a.bytesize = nodeParams->bytesize;
    st = vgpu_drv_call(ID(cuGraphAddMemAllocNode), "cuGraphAddMemAllocNode", &a.base, &req, &rep);
    if (st == CUDA_SUCCESS) {
        if ((r = vgpu__manual__mem_alloc_node_ret__unpack(NULL, rep.ret_len, rep.ret))) {
            *phGraphNode = (CUgraphNode)(uintptr_t)r->node;
            nodeParams->dptr = r->dptr;
            vgpu_drv_device_add_graph(r->dptr, nodeParams->bytesize);
            vgpu__manual__mem_alloc_node_ret__free_unpacked(r, NULL);
        } else {
            st = vgpu_shim_bad_reply(&req);
        }
    }
    vgpu_shim_rep_release(&rep);
    return st;
}

/* The access descriptors cuGraphMemAllocNodeGetParams handed out for one node. */
struct node_access {
    CUgraphNode node;
    CUmemAccessDesc *desc;
    struct node_access *next;
};

static struct node_access *node_access;

/* Keeps n descriptors as node's (replacing its earlier ones); NULL without memory. */
static const CUmemAccessDesc *keep_access(CUgraphNode node, const CUmemAccessDesc *d, size_t n)
{
    struct node_access *k;
    CUmemAccessDesc *copy = malloc(n * sizeof(*copy));

    if (!copy)
        return NULL;
    memcpy(copy, d, n * sizeof(*copy));
    pthread_mutex_lock(&arrays_lock);
    for (k = node_access; k && k->node != node; k = k->next)
        ;
    if (!k && (k = calloc(1, sizeof(*k)))) {
        k->node = node;
        k->next = node_access;
        node_access = k;
    }
    if (k) {
        free(k->desc);
        k->desc = copy;
    }
    pthread_mutex_unlock(&arrays_lock);
    if (!k)
        free(copy);
    return k ? copy : NULL;
}

VGPU_EXPORT CUresult cuGraphMemAllocNodeGetParams(CUgraphNode hNode,
                                                  CUDA_MEM_ALLOC_NODE_PARAMS *params_out)
{
    Vgpu__Manual__NodeArgs a = VGPU__MANUAL__NODE_ARGS__INIT;
    Vgpu__Manual__MemAllocNodeRet *r;
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    CUmemAccessDesc d[64];
    CUresult st;

    if (!params_out)
        return CUDA_ERROR_INVALID_VALUE;
    a.node = (uint64_t)(uintptr_t)hNode;
    st = vgpu_drv_call(ID(cuGraphMemAllocNodeGetParams), "cuGraphMemAllocNodeGetParams", &a.base,
                       &req, &rep);
    if (st == CUDA_SUCCESS) {
        r = vgpu__manual__mem_alloc_node_ret__unpack(NULL, rep.ret_len, rep.ret);
        if (!r || !r->prop || !r->prop->location || r->n_access > 64) {
            st = vgpu_shim_bad_reply(&req);
        } else {
            memset(params_out, 0, sizeof(*params_out));
            params_out->poolProps.allocType = (CUmemAllocationType)r->prop->type;
            params_out->poolProps.handleTypes = (CUmemAllocationHandleType)r->prop->handle_types;
            params_out->poolProps.location.type = (CUmemLocationType)r->prop->location->type;
            params_out->poolProps.location.id = r->prop->location->id;
            params_out->poolProps.usage = (unsigned short)r->prop->usage;
            params_out->poolProps.maxSize = r->prop->max_size;
            for (size_t i = 0; i < r->n_access; i++) {
                memset(&d[i], 0, sizeof(d[i]));
                if (r->access[i] && r->access[i]->location) {
                    d[i].location.type = (CUmemLocationType)r->access[i]->location->type;
                    d[i].location.id = r->access[i]->location->id;
                    d[i].flags = (CUmemAccess_flags)r->access[i]->flags;
                }
            }
            params_out->accessDescCount = r->n_access;
            if (r->n_access && !(params_out->accessDescs = keep_access(hNode, d, r->n_access)))
                st = CUDA_ERROR_OUT_OF_MEMORY;
            params_out->bytesize = r->bytesize;
            params_out->dptr = r->dptr;
        }
        if (r)
            vgpu__manual__mem_alloc_node_ret__free_unpacked(r, NULL);
    }
    vgpu_shim_rep_release(&rep);
    return st;
}

/* ---- conditional nodes ---- */

/*
 * The body graphs one conditional node (of graph) has: the array CUDA
 * "owns" for the node's life, freed when the node or its graph is
 * destroyed here.
 */
struct node_bodies {
    CUgraphNode node;
    CUgraph graph;
    CUgraph *bodies;
    struct node_bodies *next;
};

static struct node_bodies *node_bodies;

/* The node's arrays, or those of every node of graph, go. */
static void forget_bodies(uint64_t h, bool node)
{
    pthread_mutex_lock(&arrays_lock);
    for (struct node_bodies **k = &node_bodies; *k;) {
        struct node_bodies *x = *k;

        if (node ? (uint64_t)(uintptr_t)x->node == h : (uint64_t)(uintptr_t)x->graph == h) {
            *k = x->next;
            free(x->bodies);
            free(x);
        } else {
            k = &x->next;
        }
    }
    pthread_mutex_unlock(&arrays_lock);
}

/* Keeps n body graphs as node's; the array, or NULL without memory. */
static CUgraph *keep_bodies(CUgraphNode node, CUgraph graph, const uint64_t *b, size_t n)
{
    struct node_bodies *k = calloc(1, sizeof(*k));
    CUgraph *copy = calloc(n ? n : 1, sizeof(*copy));

    if (!k || !copy) {
        free(k);
        free(copy);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        copy[i] = (CUgraph)(uintptr_t)b[i];
    k->node = node;
    k->graph = graph;
    k->bodies = copy;
    pthread_mutex_lock(&arrays_lock);
    k->next = node_bodies;
    node_bodies = k;
    pthread_mutex_unlock(&arrays_lock);
    return copy;
}

/* A conditional node, made on the server (CondNodeArgs under cuGraphAddNode_v2's id). */
static CUresult add_conditional(CUgraphNode *phGraphNode, CUgraph hGraph,
                                const CUgraphNode *dependencies, size_t n,
                                CUDA_CONDITIONAL_NODE_PARAMS *p)
{
    Vgpu__Manual__CondNodeArgs a = VGPU__MANUAL__COND_NODE_ARGS__INIT;
    Vgpu__Manual__CondNodeRet *r;
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    CUresult st;

    if (!phGraphNode || (n && !dependencies))
        return CUDA_ERROR_INVALID_VALUE;
    a.graph = (uint64_t)(uintptr_t)hGraph;
    a.deps = (uint64_t *)(uintptr_t)dependencies;
    a.n_deps = n;
    a.handle = p->handle;
    a.type = p->type;
    a.size = p->size;
    a.ctx = (uint64_t)(uintptr_t)p->ctx;
    st = vgpu_drv_call(ID(cuGraphAddNode_v2), "cuGraphAddNode", &a.base, &req, &rep);
    if (st == CUDA_SUCCESS) {
        r = vgpu__manual__cond_node_ret__unpack(NULL, rep.ret_len, rep.ret);
        if (!r || r->n_bodies != p->size) {
            st = vgpu_shim_bad_reply(&req);
        } else if (!(p->phGraph_out = keep_bodies((CUgraphNode)(uintptr_t)r->node, hGraph,
                                                  r->bodies, r->n_bodies))) {
            st = CUDA_ERROR_OUT_OF_MEMORY;
        } else {
            *phGraphNode = (CUgraphNode)(uintptr_t)r->node;
        }
        if (r)
            vgpu__manual__cond_node_ret__free_unpacked(r, NULL);
    }
    vgpu_shim_rep_release(&rep);
    return st;
}

/* ---- the generic node calls: each node type's own call ---- */

/*
 * cuGraphAddNode (and _v2), cuGraphNodeSetParams, cuGraphExecNodeSetParams
 * take CUgraphNodeParams, a tagged union of every node type's parameters:
 * here each becomes its type's own call (checked by the server as those
 * are); a conditional node, which has no call of its own, goes as
 * itself.  Types vgpu does not remote (external semaphores, batch memory
 * operations) and edge data
 * other than the default answer CUDA_ERROR_NOT_SUPPORTED with a line
 * naming them.
 */
static CUresult generic_refused(const char *name, const char *what)
{
    vgpu_shim_log(VGPU_LOG_ERROR, "%s: %s is not remoted by vgpu; it returns "
                  "CUDA_ERROR_NOT_SUPPORTED", name, what);
    return CUDA_ERROR_NOT_SUPPORTED;
}

static CUresult generic_type_refused(const char *name, CUgraphNodeType type)
{
    char what[64];

    snprintf(what, sizeof(what), "a node of type %d (CUgraphNodeType)", (int)type);
    return generic_refused(name, what);
}

/* The parameters' reserved fields are zero, as CUDA requires. */
static bool generic_params_ok(const CUgraphNodeParams *p)
{
    return p && !p->reserved0[0] && !p->reserved0[1] && !p->reserved0[2] && !p->reserved2;
}

#define KERNEL_V3(p)                                                                         \
    { .func = (p)->func, .gridDimX = (p)->gridDimX, .gridDimY = (p)->gridDimY,             \
      .gridDimZ = (p)->gridDimZ, .blockDimX = (p)->blockDimX, .blockDimY = (p)->blockDimY, \
      .blockDimZ = (p)->blockDimZ, .sharedMemBytes = (p)->sharedMemBytes,                  \
      .kernelParams = (p)->kernelParams, .extra = (p)->extra, .kern = (p)->kern,           \
      .ctx = (p)->ctx }
#define MEMSET_V2(p)                                                                         \
    { .dst = (p)->dst, .pitch = (p)->pitch, .value = (p)->value,                           \
      .elementSize = (p)->elementSize, .width = (p)->width, .height = (p)->height }

static CUresult generic_add(const char *name, CUgraphNode *phGraphNode, CUgraph hGraph,
                            const CUgraphNode *dependencies, const CUgraphEdgeData *edges,
                            size_t n, CUgraphNodeParams *p)
{
    static const CUgraphEdgeData none;

    if (!generic_params_ok(p))
        return CUDA_ERROR_INVALID_VALUE;
    for (size_t i = 0; edges && i < n; i++)
        if (memcmp(&edges[i], &none, sizeof(none)))
            return generic_refused(name, "edge data other than the default");
    switch (p->type) {
    case CU_GRAPH_NODE_TYPE_KERNEL: {
        CUDA_KERNEL_NODE_PARAMS k = KERNEL_V3(&p->kernel);

        return cuGraphAddKernelNode_v2(phGraphNode, hGraph, dependencies, n, &k);
    }
    case CU_GRAPH_NODE_TYPE_MEMCPY:
        if (p->memcpy.flags || p->memcpy.reserved)
            return CUDA_ERROR_INVALID_VALUE;
        return cuGraphAddMemcpyNode(phGraphNode, hGraph, dependencies, n, &p->memcpy.copyParams,
                                    p->memcpy.copyCtx);
    case CU_GRAPH_NODE_TYPE_MEMSET: {
        CUDA_MEMSET_NODE_PARAMS m = MEMSET_V2(&p->memset);

        return cuGraphAddMemsetNode(phGraphNode, hGraph, dependencies, n, &m, p->memset.ctx);
    }
    case CU_GRAPH_NODE_TYPE_HOST: {
        CUDA_HOST_NODE_PARAMS h = { .fn = p->host.fn, .userData = p->host.userData };

        return cuGraphAddHostNode(phGraphNode, hGraph, dependencies, n, &h);
    }
    case CU_GRAPH_NODE_TYPE_GRAPH:
        if (p->graph.ownership != CU_GRAPH_CHILD_GRAPH_OWNERSHIP_CLONE)
            return generic_refused(name, "a child graph node that takes its graph over (ownership "
                                   "move)");
        return cuGraphAddChildGraphNode(phGraphNode, hGraph, dependencies, n, p->graph.graph);
    case CU_GRAPH_NODE_TYPE_EVENT_RECORD:
        return cuGraphAddEventRecordNode(phGraphNode, hGraph, dependencies, n, p->eventRecord.event);
    case CU_GRAPH_NODE_TYPE_WAIT_EVENT:
        return cuGraphAddEventWaitNode(phGraphNode, hGraph, dependencies, n, p->eventWait.event);
    case CU_GRAPH_NODE_TYPE_EMPTY:
        return cuGraphAddEmptyNode(phGraphNode, hGraph, dependencies, n);
    case CU_GRAPH_NODE_TYPE_MEM_ALLOC: {
        CUDA_MEM_ALLOC_NODE_PARAMS m = { .poolProps = p->alloc.poolProps,
                                         .accessDescs = p->alloc.accessDescs,
                                         .accessDescCount = p->alloc.accessDescCount,
                                         .bytesize = p->alloc.bytesize };
        CUresult st = cuGraphAddMemAllocNode(phGraphNode, hGraph, dependencies, n, &m);

        if (st == CUDA_SUCCESS)
            p->alloc.dptr = m.dptr;
        return st;
    }
    case CU_GRAPH_NODE_TYPE_MEM_FREE:
        return cuGraphAddMemFreeNode(phGraphNode, hGraph, dependencies, n, p->free.dptr);
    case CU_GRAPH_NODE_TYPE_CONDITIONAL:
        return add_conditional(phGraphNode, hGraph, dependencies, n, &p->conditional);
    default:
        return generic_type_refused(name, p->type);
    }
}

/* CUDA 13's cuGraphAddNode, with edge data (the _v2 of CUDA 12.3). */
VGPU_EXPORT CUresult cuGraphAddNode_v2(CUgraphNode *phGraphNode, CUgraph hGraph,
                                       const CUgraphNode *dependencies,
                                       const CUgraphEdgeData *dependencyData, size_t numDependencies,
                                       CUgraphNodeParams *nodeParams)
{
    return generic_add("cuGraphAddNode", phGraphNode, hGraph, dependencies, dependencyData,
                       numDependencies, nodeParams);
}

/* CUDA 12.2's, without edge data (cuda.h now names the _v2 so). */
#undef cuGraphAddNode
CUresult cuGraphAddNode(CUgraphNode *phGraphNode, CUgraph hGraph, const CUgraphNode *dependencies,
                        size_t numDependencies, CUgraphNodeParams *nodeParams);
VGPU_EXPORT CUresult cuGraphAddNode(CUgraphNode *phGraphNode, CUgraph hGraph,
                                    const CUgraphNode *dependencies, size_t numDependencies,
                                    CUgraphNodeParams *nodeParams)
{
    return generic_add("cuGraphAddNode", phGraphNode, hGraph, dependencies, NULL, numDependencies,
                       nodeParams);
}

VGPU_EXPORT CUresult cuGraphNodeSetParams(CUgraphNode hNode, CUgraphNodeParams *p)
{
    const char *name = "cuGraphNodeSetParams";

    if (!generic_params_ok(p))
        return CUDA_ERROR_INVALID_VALUE;
    switch (p->type) {
    case CU_GRAPH_NODE_TYPE_KERNEL: {
        CUDA_KERNEL_NODE_PARAMS k = KERNEL_V3(&p->kernel);

        return cuGraphKernelNodeSetParams_v2(hNode, &k);
    }
    case CU_GRAPH_NODE_TYPE_MEMCPY:
        if (p->memcpy.flags || p->memcpy.reserved)
            return CUDA_ERROR_INVALID_VALUE;
        return cuGraphMemcpyNodeSetParams(hNode, &p->memcpy.copyParams);
    case CU_GRAPH_NODE_TYPE_MEMSET: {
        CUDA_MEMSET_NODE_PARAMS m = MEMSET_V2(&p->memset);

        return cuGraphMemsetNodeSetParams(hNode, &m);
    }
    case CU_GRAPH_NODE_TYPE_HOST: {
        CUDA_HOST_NODE_PARAMS h = { .fn = p->host.fn, .userData = p->host.userData };

        return cuGraphHostNodeSetParams(hNode, &h);
    }
    case CU_GRAPH_NODE_TYPE_EVENT_RECORD:
        return cuGraphEventRecordNodeSetEvent(hNode, p->eventRecord.event);
    case CU_GRAPH_NODE_TYPE_WAIT_EVENT:
        return cuGraphEventWaitNodeSetEvent(hNode, p->eventWait.event);
    default:
        return generic_type_refused(name, p->type);
    }
}

VGPU_EXPORT CUresult cuGraphExecNodeSetParams(CUgraphExec hGraphExec, CUgraphNode hNode,
                                              CUgraphNodeParams *p)
{
    const char *name = "cuGraphExecNodeSetParams";

    if (!generic_params_ok(p))
        return CUDA_ERROR_INVALID_VALUE;
    switch (p->type) {
    case CU_GRAPH_NODE_TYPE_KERNEL: {
        CUDA_KERNEL_NODE_PARAMS k = KERNEL_V3(&p->kernel);

        return cuGraphExecKernelNodeSetParams_v2(hGraphExec, hNode, &k);
    }
    case CU_GRAPH_NODE_TYPE_MEMCPY:
        if (p->memcpy.flags || p->memcpy.reserved)
            return CUDA_ERROR_INVALID_VALUE;
        return cuGraphExecMemcpyNodeSetParams(hGraphExec, hNode, &p->memcpy.copyParams,
                                              p->memcpy.copyCtx);
    case CU_GRAPH_NODE_TYPE_MEMSET: {
        CUDA_MEMSET_NODE_PARAMS m = MEMSET_V2(&p->memset);

        return cuGraphExecMemsetNodeSetParams(hGraphExec, hNode, &m, p->memset.ctx);
    }
    case CU_GRAPH_NODE_TYPE_HOST: {
        CUDA_HOST_NODE_PARAMS h = { .fn = p->host.fn, .userData = p->host.userData };

        return cuGraphExecHostNodeSetParams(hGraphExec, hNode, &h);
    }
    case CU_GRAPH_NODE_TYPE_GRAPH:
        return cuGraphExecChildGraphNodeSetParams(hGraphExec, hNode, p->graph.graph);
    case CU_GRAPH_NODE_TYPE_EVENT_RECORD:
        return cuGraphExecEventRecordNodeSetEvent(hGraphExec, hNode, p->eventRecord.event);
    case CU_GRAPH_NODE_TYPE_WAIT_EVENT:
        return cuGraphExecEventWaitNodeSetEvent(hGraphExec, hNode, p->eventWait.event);
    default:
        return generic_type_refused(name, p->type);
    }
}
