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
        if (st == CUDA_SUCCESS && n)
            *n = r->n_deps;
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

static CUresult destroy(uint32_t id, const char *name, uint64_t handle)
{
    Vgpu__Manual__GraphArgs a = VGPU__MANUAL__GRAPH_ARGS__INIT;
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    CUresult st;

    a.graph = handle;
    st = vgpu_drv_call(id, name, &a.base, &req, &rep);
    vgpu_shim_rep_release(&rep);
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
    if (rep.ret && (r = vgpu__manual__instantiate_ret__unpack(NULL, rep.ret_len, rep.ret))) {
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
