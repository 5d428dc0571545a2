/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Stream capture and CUDA graphs, as small as the CUDA documentation lets
 * them be honest.  A stream that captures records each launch, memset and
 * copy issued to it (driver_exec.c, driver_mem.c ask vgpu_fake_captured())
 * as the next node of its graph, depending on the node before, instead of
 * running it; cuStreamEndCapture hands the graph over.  An instantiated
 * graph is a copy of its nodes' operations in order (dependencies only
 * ever point back, so insertion order is a topological order), and
 * cuGraphLaunch runs them, synchronously like all the fake's work.
 *
 * The capture rules kept: the legacy stream cannot capture; a stream
 * cannot capture twice; while a capture not begun relaxed is under way, a
 * thread whose mode (cuThreadExchangeStreamCaptureMode) is not relaxed may
 * not make a potentially unsafe call (synchronous copies, cuMemAlloc) nor
 * synchronize with or query the capturing stream: the call answers
 * CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED and the capture is invalidated, so
 * cuStreamEndCapture answers CUDA_ERROR_STREAM_CAPTURE_INVALIDATED.  The
 * fake has one thread of callers (vgpu-server's session), so "any other
 * thread's global capture" never arises.
 *
 * Graphs built by hand take empty, kernel, memset, device-to-device memcpy
 * (one slice), event record and child graph nodes, each depending on one
 * node at most (enough for chains); a child graph node owns a clone of its
 * graph, inlined when instantiated.  Parameters may be set in a graph and
 * in an executable (found by the node each operation came from), and
 * cuGraphExecUpdate takes a graph's parameters when its operations match
 * the executable's one for one.  Graph memory: an allocation node (made
 * by hand or by capturing a stream-ordered allocation) takes its memory
 * when it is made and keeps it for the process's life; launching it puts
 * the memory in use, a free node (or a free outside a capture) takes it
 * out of use, and CU_GRAPH_MEM_ATTR_USED_MEM_CURRENT counts what is in
 * use (the other attributes read 0).  Conditional nodes (cuGraphAddNode only, the one
 * node type it takes): if, while and switch over at most 8 body graphs,
 * their handle's value set at each launch to its default where the handle
 * asks, and by the fake kernel fake_cond_count; a while node stops with an
 * error after a million rounds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fakecuda_internal.h"

#define DP(d) ((void *)(uintptr_t)(d))
#define CUDP(p) ((CUdeviceptr)(uintptr_t)(p))

/* The older forms, which cuda.h renames to the newest (or declares for the driver's build only). */
#undef cuStreamGetCaptureInfo
CUresult cuStreamGetCaptureInfo(CUstream hStream, CUstreamCaptureStatus *captureStatus_out,
                                cuuint64_t *id_out);
CUresult cuStreamGetCaptureInfo_v2(CUstream hStream, CUstreamCaptureStatus *captureStatus_out,
                                   cuuint64_t *id_out, CUgraph *graph_out,
                                   const CUgraphNode **dependencies_out,
                                   size_t *numDependencies_out);
CUresult cuStreamBeginCapture_v2_ptsz(CUstream hStream, CUstreamCaptureMode mode);
CUresult cuStreamEndCapture_ptsz(CUstream hStream, CUgraph *phGraph);
CUresult cuGraphUpload_ptsz(CUgraphExec hGraphExec, CUstream hStream);
CUresult cuGraphLaunch_ptsz(CUgraphExec hGraphExec, CUstream hStream);

struct node {
    struct graph *graph;
    struct vgpu_fake_op op;
    struct graph *child;       /* a child graph node's own copy of its graph */
    struct node *origin;       /* in a clone: the node it was cloned from */
    void *params[4];           /* cuGraphKernelNodeGetParams's kernelParams */
    CUmemPoolProps pool;       /* an allocation node's */
    CUmemAccessDesc access[4];
    size_t naccess;
    struct cond *handle;       /* a conditional node's */
    CUgraphConditionalNodeType cond_type;
    unsigned nbodies;
    CUgraph bodies[8];         /* its body graphs (the node's own, as CUDA hands them out) */
    struct node *dep;          /* the one node it depends on, or NULL */
    struct node *next;         /* in insertion order */
};

struct graph {
    struct node *first, *last;
    size_t n;
    struct graph *next;
};

struct exec {
    struct vgpu_fake_op *ops;
    struct node **origin;      /* the node each operation was instantiated from */
    size_t n;
    unsigned long long flags;
    struct exec *next;
};

struct vgpu_fake_capture {
    struct graph *graph;
    CUstreamCaptureMode mode;
    bool invalidated;
    unsigned long long id;
    CUgraphNode deps[1];       /* cuStreamGetCaptureInfo's answer: the last node */
    CUgraphEdgeData edges[1];
};

/* A conditional node's handle: its value, and what each launch sets it to. */
struct cond {
    unsigned value, dflt, flags;
    struct cond *next;
};

/* What an executable's conditional node runs: each body's operations in order. */
struct vgpu_fake_cond_run {
    struct cond *handle;
    CUgraphConditionalNodeType type;
    unsigned n;
    struct vgpu_fake_op *ops[8];
    size_t nops[8];
};

static struct cond *conds;
static struct graph *graphs;
static struct exec *execs;
static unsigned long long capture_ids;
static _Thread_local CUstreamCaptureMode thread_mode = CU_STREAM_CAPTURE_MODE_GLOBAL;

/* The stream's record if it is a live stream (not a default one), else NULL. */
static struct vgpu_fake_stream *stream_rec(CUstream s)
{
    for (struct vgpu_fake_stream *f = vgpu_fake_streams; f; f = f->next)
        if ((void *)f == (void *)s)
            return f;
    return NULL;
}

static struct graph *graph_find(CUgraph h)
{
    for (struct graph *g = graphs; g; g = g->next)
        if ((void *)g == (void *)h)
            return g;
    return NULL;
}

bool vgpu_fake_graph_known(CUgraph h)
{
    return graph_find(h) != NULL;
}

static struct node *node_find(CUgraphNode h)
{
    for (struct graph *g = graphs; g; g = g->next)
        for (struct node *n = g->first; n; n = n->next)
            if ((void *)n == (void *)h)
                return n;
    return NULL;
}

static struct exec *exec_find(CUgraphExec h)
{
    for (struct exec *e = execs; e; e = e->next)
        if ((void *)e == (void *)h)
            return e;
    return NULL;
}

static struct graph *graph_new(void)
{
    struct graph *g = calloc(1, sizeof(*g));

    if (g) {
        g->next = graphs;
        graphs = g;
    }
    return g;
}

static struct node *node_add(struct graph *g, const struct vgpu_fake_op *op, struct node *dep)
{
    struct node *n = calloc(1, sizeof(*n));

    if (!n)
        return NULL;
    n->graph = g;
    n->op = *op;
    n->dep = dep;
    if (g->last)
        g->last->next = n;
    else
        g->first = n;
    g->last = n;
    g->n++;
    return n;
}

static void graph_free(struct graph *g);

/* A copy of g (child graphs copied too), each node knowing its origin; NULL without memory. */
static struct graph *graph_clone(const struct graph *g)
{
    struct graph *c = graph_new();

    if (!c)
        return NULL;
    for (struct node *n = g->first; n; n = n->next) {
        struct node *dep = NULL, *x;

        for (struct node *y = c->first; n->dep && y; y = y->next)
            if (y->origin == n->dep)
                dep = y;
        if (!(x = node_add(c, &n->op, dep)) ||
            (n->child && !(x->child = graph_clone(n->child)))) {
            graph_free(c);
            return NULL;
        }
        x->origin = n;
        x->pool = n->pool;
        x->naccess = n->naccess;
        memcpy(x->access, n->access, sizeof(x->access));
    }
    vgpu_fake_uobj_copy(g, c);
    return c;
}

static void graph_free(struct graph *g)
{
    vgpu_fake_uobj_owner_gone(g);
    for (struct graph **p = &graphs; *p; p = &(*p)->next)
        if (*p == g) {
            *p = g->next;
            break;
        }
    while (g->first) {
        struct node *n = g->first;

        g->first = n->next;
        if (n->child)
            graph_free(n->child);
        for (unsigned i = 0; i < n->nbodies; i++)
            graph_free((struct graph *)n->bodies[i]);
        free(n);
    }
    free(g);
}

/* ---- capture ---- */

bool vgpu_fake_captured(CUstream s, const struct vgpu_fake_op *op, CUresult *r)
{
    struct vgpu_fake_stream *f = stream_rec(s);
    struct vgpu_fake_capture *c = f ? f->capture : NULL;
    struct node *n;

    if (!c)
        return false;
    if (c->invalidated) {
        *r = CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
        return true;
    }
    n = node_add(c->graph, op, (struct node *)c->deps[0]);
    *r = n ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
    if (n)
        c->deps[0] = (CUgraphNode)n;
    return true;
}

bool vgpu_fake_capture_copy(const char *fn, void *dst, size_t dpitch, const void *src,
                            size_t spitch, size_t width, size_t height, enum cudaMemcpyKind kind,
                            CUstream s, CUresult *r)
{
    struct vgpu_fake_stream *f = stream_rec(s);
    struct vgpu_fake_op op = { .kind = VGPU_FAKE_OP_COPY, .dst = dst, .src = src, .pitch = dpitch,
                               .spitch = spitch, .width = width, .height = height, .dir = kind };
    bool to_dev = kind == cudaMemcpyDeviceToDevice || kind == cudaMemcpyHostToDevice;
    bool from_dev = kind == cudaMemcpyDeviceToDevice || kind == cudaMemcpyDeviceToHost;

    if (!f || !f->capture)
        return false;
    /* the spans are checked when captured, as the driver validates a node's parameters */
    if (width && height &&
        ((to_dev && !vgpu_fake_dev_ok(fn, dst, (height - 1) * dpitch + width)) ||
         (from_dev && !vgpu_fake_dev_ok(fn, src, (height - 1) * spitch + width)))) {
        *r = CUDA_ERROR_INVALID_VALUE;
        return true;
    }
    return vgpu_fake_captured(s, &op, r);
}

/* Invalidates every capture that forbids this thread an unsafe call; true if one did. */
static bool forbid(void)
{
    bool any = false;

    if (thread_mode == CU_STREAM_CAPTURE_MODE_RELAXED)
        return false;
    for (struct vgpu_fake_stream *f = vgpu_fake_streams; f; f = f->next)
        if (f->capture && f->capture->mode != CU_STREAM_CAPTURE_MODE_RELAXED) {
            f->capture->invalidated = true;
            any = true;
        }
    return any;
}

CUresult vgpu_fake_capture_unsafe(const char *fn)
{
    if (!forbid())
        return CUDA_SUCCESS;
    vgpu_fake_diag("fakecuda: %s during stream capture: CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "
            "capture invalidated\n", fn);
    return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
}

CUresult vgpu_fake_capture_sync(const char *fn, CUstream s)
{
    struct vgpu_fake_stream *f = stream_rec(s);

    if (!f || !f->capture)
        return CUDA_SUCCESS;
    f->capture->invalidated = true;
    vgpu_fake_diag("fakecuda: %s of a capturing stream: CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "
            "capture invalidated\n", fn);
    return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
}

/* The capturing stream's record, after the checks every capture call makes. */
static CUresult capture_stream(const char *fn, CUstream s, struct vgpu_fake_stream **out)
{
    CUresult r = vgpu_fake_cu_ready();

    if (r)
        return r;
    if (!vgpu_fake_stream_ok(fn, s))
        return CUDA_ERROR_INVALID_HANDLE;
    *out = stream_rec(s);
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuStreamBeginCapture_v2(CUstream hStream, CUstreamCaptureMode mode)
{
    struct vgpu_fake_stream *f;
    struct vgpu_fake_capture *c;
    CUresult r = capture_stream("cuStreamBeginCapture", hStream, &f);

    if (r)
        return r;
    if (mode > CU_STREAM_CAPTURE_MODE_RELAXED)
        return CUDA_ERROR_INVALID_VALUE;
    if (!f)
        return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;   /* the legacy stream cannot capture */
    if (f->capture)
        return CUDA_ERROR_ILLEGAL_STATE;
    if (!(c = calloc(1, sizeof(*c))) || !(c->graph = graph_new())) {
        free(c);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    c->mode = mode;
    c->id = ++capture_ids;
    f->capture = c;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuStreamEndCapture(CUstream hStream, CUgraph *phGraph)
{
    struct vgpu_fake_stream *f;
    struct vgpu_fake_capture *c;
    CUresult r = capture_stream("cuStreamEndCapture", hStream, &f);

    if (r)
        return r;
    if (!phGraph)
        return CUDA_ERROR_INVALID_VALUE;
    if (!f || !(c = f->capture))
        return CUDA_ERROR_ILLEGAL_STATE;
    f->capture = NULL;
    *phGraph = NULL;
    if (c->invalidated) {
        graph_free(c->graph);
        r = CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
    } else {
        *phGraph = (CUgraph)c->graph;
    }
    free(c);
    return r;
}

FAKE_EXPORT CUresult cuStreamIsCapturing(CUstream hStream, CUstreamCaptureStatus *captureStatus)
{
    struct vgpu_fake_stream *f;
    CUresult r = capture_stream("cuStreamIsCapturing", hStream, &f);

    if (r)
        return r;
    if (!captureStatus)
        return CUDA_ERROR_INVALID_VALUE;
    *captureStatus = !f || !f->capture      ? CU_STREAM_CAPTURE_STATUS_NONE
                     : f->capture->invalidated ? CU_STREAM_CAPTURE_STATUS_INVALIDATED
                                               : CU_STREAM_CAPTURE_STATUS_ACTIVE;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuStreamGetCaptureInfo_v3(CUstream hStream,
                                               CUstreamCaptureStatus *captureStatus_out,
                                               cuuint64_t *id_out, CUgraph *graph_out,
                                               const CUgraphNode **dependencies_out,
                                               const CUgraphEdgeData **edgeData_out,
                                               size_t *numDependencies_out)
{
    struct vgpu_fake_stream *f;
    struct vgpu_fake_capture *c;
    CUresult r = cuStreamIsCapturing(hStream, captureStatus_out);

    if (r)
        return r;
    f = stream_rec(hStream);
    c = f ? f->capture : NULL;
    if (!c || c->invalidated)
        return CUDA_SUCCESS;   /* the other outputs are left as they were */
    if (edgeData_out && !dependencies_out)
        return CUDA_ERROR_INVALID_VALUE;
    if (id_out)
        *id_out = c->id;
    if (graph_out)
        *graph_out = (CUgraph)c->graph;
    if (dependencies_out)
        *dependencies_out = c->deps;
    if (edgeData_out)
        *edgeData_out = c->edges;
    if (numDependencies_out)
        *numDependencies_out = c->deps[0] ? 1 : 0;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuStreamGetCaptureInfo_v2(CUstream hStream,
                                               CUstreamCaptureStatus *captureStatus_out,
                                               cuuint64_t *id_out, CUgraph *graph_out,
                                               const CUgraphNode **dependencies_out,
                                               size_t *numDependencies_out)
{
    return cuStreamGetCaptureInfo_v3(hStream, captureStatus_out, id_out, graph_out,
                                     dependencies_out, NULL, numDependencies_out);
}

FAKE_EXPORT CUresult cuStreamGetCaptureInfo(CUstream hStream,
                                            CUstreamCaptureStatus *captureStatus_out,
                                            cuuint64_t *id_out)
{
    return cuStreamGetCaptureInfo_v3(hStream, captureStatus_out, id_out, NULL, NULL, NULL, NULL);
}

/* The runtime's form (vgpu-server's own moves of managed memory use it). */
FAKE_EXPORT cudaError_t cudaThreadExchangeStreamCaptureMode(enum cudaStreamCaptureMode *mode)
{
    vgpu_fake_rt_ctx();
    return vgpu_fake_status((cudaError_t)cuThreadExchangeStreamCaptureMode((CUstreamCaptureMode *)mode));
}

FAKE_EXPORT CUresult cuThreadExchangeStreamCaptureMode(CUstreamCaptureMode *mode)
{
    CUstreamCaptureMode old = thread_mode;

    if (!mode || *mode > CU_STREAM_CAPTURE_MODE_RELAXED)
        return CUDA_ERROR_INVALID_VALUE;
    thread_mode = *mode;
    *mode = old;
    return CUDA_SUCCESS;
}

/* ---- graphs ---- */

FAKE_EXPORT CUresult cuGraphCreate(CUgraph *phGraph, unsigned int flags)
{
    CUresult r = vgpu_fake_cu_ready();
    struct graph *g;

    if (r)
        return r;
    if (!phGraph || flags)
        return CUDA_ERROR_INVALID_VALUE;
    if (!(g = graph_new()))
        return CUDA_ERROR_OUT_OF_MEMORY;
    *phGraph = (CUgraph)g;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuGraphAddEmptyNode(CUgraphNode *phGraphNode, CUgraph hGraph,
                                         const CUgraphNode *dependencies, size_t numDependencies)
{
    struct graph *g = graph_find(hGraph);
    struct vgpu_fake_op op = { .kind = VGPU_FAKE_OP_EMPTY };
    struct node *dep = NULL, *n;

    if (!g)
        return vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_VALUE, "cuGraphAddEmptyNode",
                                   "unknown graph %p", (void *)hGraph);
    if (!phGraphNode || (numDependencies && !dependencies) || numDependencies > 1)
        return CUDA_ERROR_INVALID_VALUE;  /* the fake's nodes have one dependency at most */
    if (numDependencies) {
        dep = node_find(dependencies[0]);
        if (!dep || dep->graph != g)
            return vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_VALUE, "cuGraphAddEmptyNode",
                                       "node %p is not of graph %p", (void *)dependencies[0],
                                       (void *)hGraph);
    }
    if (!(n = node_add(g, &op, dep)))
        return CUDA_ERROR_OUT_OF_MEMORY;
    *phGraphNode = (CUgraphNode)n;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuGraphGetNodes(CUgraph hGraph, CUgraphNode *nodes, size_t *numNodes)
{
    struct graph *g = graph_find(hGraph);
    size_t i = 0;

    if (!g)
        return vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_VALUE, "cuGraphGetNodes",
                                   "unknown graph %p", (void *)hGraph);
    if (!numNodes)
        return CUDA_ERROR_INVALID_VALUE;
    if (nodes) {
        for (struct node *n = g->first; n && i < *numNodes; n = n->next)
            nodes[i++] = (CUgraphNode)n;
        for (size_t j = i; j < *numNodes; j++)
            nodes[j] = NULL;
        *numNodes = i;
    } else {
        *numNodes = g->n;
    }
    return CUDA_SUCCESS;
}

/* Fills out (capacity *n, NULLs past the end) with the nodes keep() selects; *n their count. */
static void fill(struct graph *g, bool (*keep)(const struct node *, const struct node *),
                 const struct node *ref, CUgraphNode *out, CUgraphEdgeData *edges, size_t *n)
{
    size_t i = 0;

    for (struct node *x = g->first; x; x = x->next)
        if (keep(x, ref)) {
            if (out && i < *n)
                out[i] = (CUgraphNode)x;
            if (edges && i < *n)
                memset(&edges[i], 0, sizeof(*edges));
            i++;
        }
    for (size_t j = i; out && j < *n; j++)
        out[j] = NULL;
    *n = i;
}

static bool is_root(const struct node *x, const struct node *ref)
{
    (void)ref;
    return !x->dep;
}

static bool is_dependency(const struct node *x, const struct node *ref)
{
    return ref->dep == x;
}

static bool is_dependent(const struct node *x, const struct node *ref)
{
    return x->dep == ref;
}

FAKE_EXPORT CUresult cuGraphGetRootNodes(CUgraph hGraph, CUgraphNode *rootNodes,
                                         size_t *numRootNodes)
{
    struct graph *g = graph_find(hGraph);

    if (!g)
        return vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_VALUE, "cuGraphGetRootNodes",
                                   "unknown graph %p", (void *)hGraph);
    if (!numRootNodes)
        return CUDA_ERROR_INVALID_VALUE;
    fill(g, is_root, NULL, rootNodes, NULL, numRootNodes);
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuGraphNodeGetDependencies_v2(CUgraphNode hNode, CUgraphNode *dependencies,
                                                   CUgraphEdgeData *edgeData,
                                                   size_t *numDependencies)
{
    struct node *n = node_find(hNode);

    if (!n)
        return vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_VALUE, "cuGraphNodeGetDependencies",
                                   "unknown node %p", (void *)hNode);
    if (!numDependencies)
        return CUDA_ERROR_INVALID_VALUE;
    fill(n->graph, is_dependency, n, dependencies, edgeData, numDependencies);
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuGraphNodeGetDependentNodes_v2(CUgraphNode hNode,
                                                     CUgraphNode *dependentNodes,
                                                     CUgraphEdgeData *edgeData,
                                                     size_t *numDependentNodes)
{
    struct node *n = node_find(hNode);

    if (!n)
        return vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_VALUE, "cuGraphNodeGetDependentNodes",
                                   "unknown node %p", (void *)hNode);
    if (!numDependentNodes)
        return CUDA_ERROR_INVALID_VALUE;
    fill(n->graph, is_dependent, n, dependentNodes, edgeData, numDependentNodes);
    return CUDA_SUCCESS;
}

/* Every edge (a node's one dependency to it), in node order. */
FAKE_EXPORT CUresult cuGraphGetEdges_v2(CUgraph hGraph, CUgraphNode *from, CUgraphNode *to,
                                        CUgraphEdgeData *edgeData, size_t *numEdges)
{
    struct graph *g = graph_find(hGraph);
    size_t i = 0;

    if (!g)
        return vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_VALUE, "cuGraphGetEdges",
                                   "unknown graph %p", (void *)hGraph);
    if (!numEdges || !from != !to)
        return CUDA_ERROR_INVALID_VALUE;
    for (struct node *x = g->first; x; x = x->next) {
        if (!x->dep)
            continue;
        if (from && i < *numEdges) {
            from[i] = (CUgraphNode)x->dep;
            to[i] = (CUgraphNode)x;
            if (edgeData)
                memset(&edgeData[i], 0, sizeof(*edgeData));
        }
        i++;
    }
    for (size_t j = i; from && j < *numEdges; j++)
        from[j] = to[j] = NULL;
    *numEdges = i;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuGraphNodeGetType(CUgraphNode hNode, CUgraphNodeType *type)
{
    static const CUgraphNodeType types[] = {
        [VGPU_FAKE_OP_EMPTY] = CU_GRAPH_NODE_TYPE_EMPTY,
        [VGPU_FAKE_OP_KERNEL] = CU_GRAPH_NODE_TYPE_KERNEL,
        [VGPU_FAKE_OP_MEMSET] = CU_GRAPH_NODE_TYPE_MEMSET,
        [VGPU_FAKE_OP_COPY] = CU_GRAPH_NODE_TYPE_MEMCPY,
        [VGPU_FAKE_OP_GRAPH] = CU_GRAPH_NODE_TYPE_GRAPH,
        [VGPU_FAKE_OP_EVENT] = CU_GRAPH_NODE_TYPE_EVENT_RECORD,
        [VGPU_FAKE_OP_HOST] = CU_GRAPH_NODE_TYPE_HOST,
        [VGPU_FAKE_OP_MEM_ALLOC] = CU_GRAPH_NODE_TYPE_MEM_ALLOC,
        [VGPU_FAKE_OP_MEM_FREE] = CU_GRAPH_NODE_TYPE_MEM_FREE,
        [VGPU_FAKE_OP_COND] = CU_GRAPH_NODE_TYPE_CONDITIONAL,
    };
    struct node *n = node_find(hNode);

    if (!n)
        return vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_VALUE, "cuGraphNodeGetType",
                                   "unknown node %p", (void *)hNode);
    if (!type)
        return CUDA_ERROR_INVALID_VALUE;
    *type = types[n->op.kind];
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuGraphDestroy(CUgraph hGraph)
{
    struct graph *g = graph_find(hGraph);

    if (!g)
        return vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_VALUE, "cuGraphDestroy",
                                   "unknown graph %p", (void *)hGraph);
    for (struct vgpu_fake_stream *f = vgpu_fake_streams; f; f = f->next)
        if (f->capture && f->capture->graph == g)
            return CUDA_ERROR_INVALID_VALUE;     /* still being captured into */
    graph_free(g);
    return CUDA_SUCCESS;
}

/* The node leaves its graph, and with it the edges to its dependents. */
FAKE_EXPORT CUresult cuGraphDestroyNode(CUgraphNode hNode)
{
    struct node *n = node_find(hNode), *prev = NULL;
    struct graph *g;

    if (!n)
        return vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_VALUE, "cuGraphDestroyNode",
                                   "unknown node %p", (void *)hNode);
    g = n->graph;
    for (struct node *x = g->first; x; x = x->next) {
        if (x->dep == n)
            x->dep = NULL;
        if (x->next == n)
            prev = x;
    }
    if (prev)
        prev->next = n->next;
    else
        g->first = n->next;
    if (g->last == n)
        g->last = prev;
    g->n--;
    if (n->child)
        graph_free(n->child);
    for (unsigned i = 0; i < n->nbodies; i++)
        graph_free((struct graph *)n->bodies[i]);
    free(n);
    return CUDA_SUCCESS;
}

/* Nodes and their edges in Graphviz's language, written where the caller says. */
FAKE_EXPORT CUresult cuGraphDebugDotPrint(CUgraph hGraph, const char *path, unsigned int flags)
{
    static const char *const kinds[] = { "EMPTY", "KERNEL", "MEMSET", "MEMCPY", "GRAPH", "EVENT",
                                         "HOST", "MEM_ALLOC", "MEM_FREE", "CONDITIONAL" };
    struct graph *g = graph_find(hGraph);
    FILE *fp;
    size_t i = 0;

    (void)flags;
    if (!g)
        return vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_VALUE, "cuGraphDebugDotPrint",
                                   "unknown graph %p", (void *)hGraph);
    if (!path)
        return CUDA_ERROR_INVALID_VALUE;
    if (!(fp = fopen(path, "w")))
        return CUDA_ERROR_OPERATING_SYSTEM;
    fprintf(fp, "digraph fakecuda {\n");
    for (struct node *n = g->first; n; n = n->next, i++) {
        fprintf(fp, "  n%zu [label=\"%s\"];\n", i, kinds[n->op.kind]);
        if (n->dep)
            fprintf(fp, "  n%zu -> n%zu;\n", i - 1, i);  /* captured chains only */
    }
    fprintf(fp, "}\n");
    return fclose(fp) ? CUDA_ERROR_OPERATING_SYSTEM : CUDA_SUCCESS;
}

/* The node hGraph gets with its dependencies checked (the fake's nodes have one at most). */
static CUresult add_node(const char *fn, CUgraph hGraph, const CUgraphNode *deps, size_t ndeps,
                         const struct vgpu_fake_op *op, struct node **out)
{
    struct graph *g = graph_find(hGraph);
    struct node *dep = NULL;

    if (!g)
        return vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_VALUE, fn, "unknown graph %p",
                                   (void *)hGraph);
    if ((ndeps && !deps) || ndeps > 1)
        return CUDA_ERROR_INVALID_VALUE;
    if (ndeps && (!(dep = node_find(deps[0])) || dep->graph != g))
        return vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_VALUE, fn, "node %p is not of graph %p",
                                   (void *)deps[0], (void *)hGraph);
    if (!(*out = node_add(g, op, dep)))
        return CUDA_ERROR_OUT_OF_MEMORY;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuGraphAddChildGraphNode(CUgraphNode *phGraphNode, CUgraph hGraph,
                                              const CUgraphNode *dependencies,
                                              size_t numDependencies, CUgraph childGraph)
{
    struct vgpu_fake_op op = { .kind = VGPU_FAKE_OP_GRAPH };
    struct graph *child = graph_find(childGraph), *copy;
    struct node *n;
    CUresult r;

    if (!child)
        return vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_VALUE, "cuGraphAddChildGraphNode",
                                   "unknown child graph %p", (void *)childGraph);
    if (!phGraphNode)
        return CUDA_ERROR_INVALID_VALUE;
    if (!(copy = graph_clone(child)))
        return CUDA_ERROR_OUT_OF_MEMORY;
    if ((r = add_node("cuGraphAddChildGraphNode", hGraph, dependencies, numDependencies, &op,
                      &n))) {
        graph_free(copy);
        return r;
    }
    n->child = copy;
    *phGraphNode = (CUgraphNode)n;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuGraphChildGraphNodeGetGraph(CUgraphNode hNode, CUgraph *phGraph)
{
    struct node *n = node_find(hNode);

    if (!n || !n->child)
        return vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_VALUE, "cuGraphChildGraphNodeGetGraph",
                                   "%p is not a child graph node", (void *)hNode);
    if (!phGraph)
        return CUDA_ERROR_INVALID_VALUE;
    *phGraph = (CUgraph)n->child;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuGraphAddEventRecordNode(CUgraphNode *phGraphNode, CUgraph hGraph,
                                               const CUgraphNode *dependencies,
                                               size_t numDependencies, CUevent event)
{
    struct vgpu_fake_op op = { .kind = VGPU_FAKE_OP_EVENT, .event = event };
    struct node *n;
    CUresult r;

    if (!vgpu_fake_event_find("cuGraphAddEventRecordNode", event))
        return CUDA_ERROR_INVALID_HANDLE;
    if (!phGraphNode)
        return CUDA_ERROR_INVALID_VALUE;
    if ((r = add_node("cuGraphAddEventRecordNode", hGraph, dependencies, numDependencies, &op,
                      &n)))
        return r;
    *phGraphNode = (CUgraphNode)n;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuGraphClone(CUgraph *phGraphClone, CUgraph originalGraph)
{
    struct graph *g = graph_find(originalGraph), *c;

    if (!g)
        return vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_VALUE, "cuGraphClone", "unknown graph %p",
                                   (void *)originalGraph);
    if (!phGraphClone)
        return CUDA_ERROR_INVALID_VALUE;
    if (!(c = graph_clone(g)))
        return CUDA_ERROR_OUT_OF_MEMORY;
    *phGraphClone = (CUgraph)c;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuGraphNodeFindInClone(CUgraphNode *phNode, CUgraphNode hOriginalNode,
                                            CUgraph hClonedGraph)
{
    struct graph *c = graph_find(hClonedGraph);
    struct node *o = node_find(hOriginalNode);

    if (!c || !o)
        return vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_VALUE, "cuGraphNodeFindInClone",
                                   "unknown graph %p or node %p", (void *)hClonedGraph,
                                   (void *)hOriginalNode);
    if (!phNode)
        return CUDA_ERROR_INVALID_VALUE;
    for (struct node *n = c->first; n; n = n->next)
        if (n->origin == o) {
            *phNode = (CUgraphNode)n;
            return CUDA_SUCCESS;
        }
    return CUDA_ERROR_INVALID_VALUE;
}

/* ---- kernel, memset and memcpy nodes ---- */

static CUresult memset_op(const CUDA_MEMSET_NODE_PARAMS *p, struct vgpu_fake_op *op)
{
    size_t span;

    if (!p || (p->elementSize != 1 && p->elementSize != 2 && p->elementSize != 4) ||
        (p->height > 1 && p->pitch < p->width * p->elementSize))
        return CUDA_ERROR_INVALID_VALUE;
    span = p->height ? (p->height - 1) * p->pitch + p->width * p->elementSize : 0;
    if (span && !vgpu_fake_dev_ok("memset node", (void *)(uintptr_t)p->dst, span))
        return CUDA_ERROR_INVALID_VALUE;
    *op = (struct vgpu_fake_op){ .kind = VGPU_FAKE_OP_MEMSET, .dst = (void *)(uintptr_t)p->dst,
                                 .pitch = p->height > 1 ? p->pitch : p->width * p->elementSize,
                                 .value = p->value, .elem = p->elementSize, .width = p->width,
                                 .height = p->height };
    return CUDA_SUCCESS;
}

/* Device-to-device copies of one slice (Depth 1), which is what the fake's copies do. */
static CUresult memcpy_op(const CUDA_MEMCPY3D *p, struct vgpu_fake_op *op)
{
    char *src, *dst;

    if (!p || p->srcMemoryType != CU_MEMORYTYPE_DEVICE ||
        p->dstMemoryType != CU_MEMORYTYPE_DEVICE ||
        p->Depth != 1 || p->srcZ || p->dstZ)
        return CUDA_ERROR_INVALID_VALUE;
    src = (char *)(uintptr_t)p->srcDevice + p->srcY * p->srcPitch + p->srcXInBytes;
    dst = (char *)(uintptr_t)p->dstDevice + p->dstY * p->dstPitch + p->dstXInBytes;
    *op = (struct vgpu_fake_op){ .kind = VGPU_FAKE_OP_COPY, .dst = dst, .src = src,
                                 .pitch = p->Height > 1 ? p->dstPitch : p->WidthInBytes,
                                 .spitch = p->Height > 1 ? p->srcPitch : p->WidthInBytes,
                                 .width = p->WidthInBytes, .height = p->Height,
                                 .dir = cudaMemcpyDeviceToDevice };
    return CUDA_SUCCESS;
}

/* A kernel node's launch configuration, kept to be read back. */
static void launch_of(const CUDA_KERNEL_NODE_PARAMS *p, struct vgpu_fake_op *op)
{
    op->grid[0] = p->gridDimX;
    op->grid[1] = p->gridDimY;
    op->grid[2] = p->gridDimZ;
    op->block[0] = p->blockDimX;
    op->block[1] = p->blockDimY;
    op->block[2] = p->blockDimZ;
    op->shmem = p->sharedMemBytes;
}

static CUresult add_op(const char *fn, CUgraphNode *out, CUgraph g, const CUgraphNode *deps,
                       size_t ndeps, CUresult r, const struct vgpu_fake_op *op)
{
    struct node *n;

    if (r)
        return r;
    if (!out)
        return CUDA_ERROR_INVALID_VALUE;
    if ((r = add_node(fn, g, deps, ndeps, op, &n)))
        return r;
    *out = (CUgraphNode)n;
    return CUDA_SUCCESS;
}

/* A node's operation replaced; the node must hold one of the kind. */
static CUresult set_op(const char *fn, CUgraphNode h, CUresult r, const struct vgpu_fake_op *op)
{
    struct node *n = node_find(h);

    if (!n)
        return vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_VALUE, fn, "unknown node %p", (void *)h);
    if (r)
        return r;
    if ((n->op.kind == VGPU_FAKE_OP_EMPTY ? VGPU_FAKE_OP_KERNEL : n->op.kind) !=
        (op->kind == VGPU_FAKE_OP_EMPTY ? VGPU_FAKE_OP_KERNEL : op->kind))
        return CUDA_ERROR_INVALID_VALUE;
    n->op = *op;
    return CUDA_SUCCESS;
}

/* The same in an executable graph: the operation instantiated from node h. */
static CUresult exec_set_op(const char *fn, CUgraphExec he, CUgraphNode h, CUresult r,
                            const struct vgpu_fake_op *op)
{
    struct exec *e = exec_find(he);

    if (!e || !node_find(h))
        return vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_VALUE, fn, "unknown executable %p or node %p",
                                   (void *)he, (void *)h);
    if (r)
        return r;
    for (size_t i = 0; i < e->n; i++)
        if ((void *)e->origin[i] == (void *)h) {
            e->ops[i] = *op;
            return CUDA_SUCCESS;
        }
    return CUDA_ERROR_INVALID_VALUE;
}

FAKE_EXPORT CUresult cuGraphAddKernelNode_v2(CUgraphNode *phGraphNode, CUgraph hGraph,
                                             const CUgraphNode *dependencies,
                                             size_t numDependencies,
                                             const CUDA_KERNEL_NODE_PARAMS *p)
{
    struct vgpu_fake_op op;
    CUresult r = p ? vgpu_fake_kernel_op("cuGraphAddKernelNode", p->func ? p->func
                                         : (CUfunction)(void *)p->kern, p->kernelParams,
                                         p->extra, &op)
                   : CUDA_ERROR_INVALID_VALUE;

    if (!r)
        launch_of(p, &op);
    return add_op("cuGraphAddKernelNode", phGraphNode, hGraph, dependencies, numDependencies, r,
                  &op);
}

/* kernelParams point into the node's own copy of the parameters. */
FAKE_EXPORT CUresult cuGraphKernelNodeGetParams_v2(CUgraphNode hNode, CUDA_KERNEL_NODE_PARAMS *p)
{
    struct node *n = node_find(hNode);
    const struct vgpu_fake_kernel *k;

    if (!n)
        return vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_VALUE, "cuGraphKernelNodeGetParams",
                                   "unknown node %p", (void *)hNode);
    if (!p || !n->op.func)
        return CUDA_ERROR_INVALID_VALUE;
    k = n->op.kernel;
    for (int i = 0; k && i < k->nparams; i++)
        n->params[i] = n->op.args + k->off[i];
    *p = (CUDA_KERNEL_NODE_PARAMS){
        .func = n->op.func, .gridDimX = n->op.grid[0], .gridDimY = n->op.grid[1],
        .gridDimZ = n->op.grid[2], .blockDimX = n->op.block[0], .blockDimY = n->op.block[1],
        .blockDimZ = n->op.block[2], .sharedMemBytes = n->op.shmem,
        .kernelParams = k && k->nparams ? n->params : NULL };
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuGraphKernelNodeSetParams_v2(CUgraphNode hNode,
                                                   const CUDA_KERNEL_NODE_PARAMS *p)
{
    struct vgpu_fake_op op = { 0 };
    CUresult r = p ? vgpu_fake_kernel_op("cuGraphKernelNodeSetParams", p->func ? p->func
                                         : (CUfunction)(void *)p->kern, p->kernelParams,
                                         p->extra, &op)
                   : CUDA_ERROR_INVALID_VALUE;

    if (!r)
        launch_of(p, &op);
    return set_op("cuGraphKernelNodeSetParams", hNode, r, &op);
}

FAKE_EXPORT CUresult cuGraphExecKernelNodeSetParams_v2(CUgraphExec hGraphExec, CUgraphNode hNode,
                                                       const CUDA_KERNEL_NODE_PARAMS *p)
{
    struct vgpu_fake_op op = { 0 };
    CUresult r = p ? vgpu_fake_kernel_op("cuGraphExecKernelNodeSetParams", p->func ? p->func
                                         : (CUfunction)(void *)p->kern, p->kernelParams,
                                         p->extra, &op)
                   : CUDA_ERROR_INVALID_VALUE;

    if (!r)
        launch_of(p, &op);
    return exec_set_op("cuGraphExecKernelNodeSetParams", hGraphExec, hNode, r, &op);
}

static bool in_galloc(const void *p);

FAKE_EXPORT CUresult cuGraphAddMemsetNode(CUgraphNode *phGraphNode, CUgraph hGraph,
                                          const CUgraphNode *dependencies, size_t numDependencies,
                                          const CUDA_MEMSET_NODE_PARAMS *memsetParams,
                                          CUcontext ctx)
{
    struct vgpu_fake_op op;
    CUresult r = memset_op(memsetParams, &op);

    /* as the real driver: it cannot tell a graph allocation's context from its address */
    if (!r && !ctx && in_galloc((const void *)(uintptr_t)memsetParams->dst))
        return vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_VALUE, "cuGraphAddMemsetNode",
                                   "a graph allocation's address without a context");
    return add_op("cuGraphAddMemsetNode", phGraphNode, hGraph, dependencies, numDependencies, r,
                  &op);
}

FAKE_EXPORT CUresult cuGraphMemsetNodeSetParams(CUgraphNode hNode,
                                                const CUDA_MEMSET_NODE_PARAMS *nodeParams)
{
    struct vgpu_fake_op op = { 0 };
    CUresult r = memset_op(nodeParams, &op);

    return set_op("cuGraphMemsetNodeSetParams", hNode, r, &op);
}

FAKE_EXPORT CUresult cuGraphMemsetNodeGetParams(CUgraphNode hNode,
                                                CUDA_MEMSET_NODE_PARAMS *nodeParams)
{
    struct node *n = node_find(hNode);

    if (!n)
        return vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_VALUE, "cuGraphMemsetNodeGetParams",
                                   "unknown node %p", (void *)hNode);
    if (!nodeParams || n->op.kind != VGPU_FAKE_OP_MEMSET)
        return CUDA_ERROR_INVALID_VALUE;
    *nodeParams = (CUDA_MEMSET_NODE_PARAMS){ .dst = (CUdeviceptr)(uintptr_t)n->op.dst,
                                             .pitch = n->op.pitch, .value = n->op.value,
                                             .elementSize = (unsigned)n->op.elem,
                                             .width = n->op.width, .height = n->op.height };
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuGraphExecMemsetNodeSetParams(CUgraphExec hGraphExec, CUgraphNode hNode,
                                                    const CUDA_MEMSET_NODE_PARAMS *memsetParams,
                                                    CUcontext ctx)
{
    struct vgpu_fake_op op = { 0 };
    CUresult r = memset_op(memsetParams, &op);

    (void)ctx;
    return exec_set_op("cuGraphExecMemsetNodeSetParams", hGraphExec, hNode, r, &op);
}

FAKE_EXPORT CUresult cuGraphAddMemcpyNode(CUgraphNode *phGraphNode, CUgraph hGraph,
                                          const CUgraphNode *dependencies, size_t numDependencies,
                                          const CUDA_MEMCPY3D *copyParams, CUcontext ctx)
{
    struct vgpu_fake_op op;
    CUresult r = memcpy_op(copyParams, &op);

    (void)ctx;
    return add_op("cuGraphAddMemcpyNode", phGraphNode, hGraph, dependencies, numDependencies, r,
                  &op);
}

FAKE_EXPORT CUresult cuGraphExecMemcpyNodeSetParams(CUgraphExec hGraphExec, CUgraphNode hNode,
                                                    const CUDA_MEMCPY3D *copyParams, CUcontext ctx)
{
    struct vgpu_fake_op op = { 0 };
    CUresult r = memcpy_op(copyParams, &op);

    (void)ctx;
    return exec_set_op("cuGraphExecMemcpyNodeSetParams", hGraphExec, hNode, r, &op);
}

/* A device-to-device copy node's parameters (the fake's only kind), one slice. */
FAKE_EXPORT CUresult cuGraphMemcpyNodeGetParams(CUgraphNode hNode, CUDA_MEMCPY3D *p)
{
    struct node *n = node_find(hNode);

    if (!n || n->op.kind != VGPU_FAKE_OP_COPY || !p)
        return vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_VALUE, "cuGraphMemcpyNodeGetParams",
                                   "node %p is not a memcpy node", (void *)hNode);
    *p = (CUDA_MEMCPY3D){ .srcMemoryType = CU_MEMORYTYPE_DEVICE,
                          .srcDevice = (CUdeviceptr)(uintptr_t)n->op.src,
                          .srcPitch = n->op.spitch, .srcHeight = n->op.height,
                          .dstMemoryType = CU_MEMORYTYPE_DEVICE,
                          .dstDevice = (CUdeviceptr)(uintptr_t)n->op.dst,
                          .dstPitch = n->op.pitch, .dstHeight = n->op.height,
                          .WidthInBytes = n->op.width, .Height = n->op.height, .Depth = 1 };
    return CUDA_SUCCESS;
}

/* ---- host nodes ---- */

static CUresult host_op(const CUDA_HOST_NODE_PARAMS *p, struct vgpu_fake_op *op)
{
    if (!p || !p->fn)
        return CUDA_ERROR_INVALID_VALUE;
    *op = (struct vgpu_fake_op){ .kind = VGPU_FAKE_OP_HOST, .host = p->fn,
                                 .host_data = p->userData };
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuGraphAddHostNode(CUgraphNode *phGraphNode, CUgraph hGraph,
                                        const CUgraphNode *dependencies, size_t numDependencies,
                                        const CUDA_HOST_NODE_PARAMS *nodeParams)
{
    struct vgpu_fake_op op;
    CUresult r = host_op(nodeParams, &op);

    return add_op("cuGraphAddHostNode", phGraphNode, hGraph, dependencies, numDependencies, r,
                  &op);
}

FAKE_EXPORT CUresult cuGraphHostNodeGetParams(CUgraphNode hNode, CUDA_HOST_NODE_PARAMS *nodeParams)
{
    struct node *n = node_find(hNode);

    if (!n || n->op.kind != VGPU_FAKE_OP_HOST || !nodeParams)
        return vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_VALUE, "cuGraphHostNodeGetParams",
                                   "node %p is not a host node", (void *)hNode);
    nodeParams->fn = n->op.host;
    nodeParams->userData = n->op.host_data;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuGraphHostNodeSetParams(CUgraphNode hNode,
                                              const CUDA_HOST_NODE_PARAMS *nodeParams)
{
    struct vgpu_fake_op op = { 0 };
    CUresult r = host_op(nodeParams, &op);

    return set_op("cuGraphHostNodeSetParams", hNode, r, &op);
}

FAKE_EXPORT CUresult cuGraphExecHostNodeSetParams(CUgraphExec hGraphExec, CUgraphNode hNode,
                                                  const CUDA_HOST_NODE_PARAMS *nodeParams)
{
    struct vgpu_fake_op op = { 0 };
    CUresult r = host_op(nodeParams, &op);

    return exec_set_op("cuGraphExecHostNodeSetParams", hGraphExec, hNode, r, &op);
}

/* ---- launch attributes of streams and kernel nodes: kept, read back, never acted on ---- */

struct attr {
    const void *object;
    CUlaunchAttributeID id;
    CUlaunchAttributeValue value;
    struct attr *next;
};

static struct attr *attrs;

static struct attr *attr_find(const void *object, CUlaunchAttributeID id, bool make)
{
    struct attr *a;

    for (a = attrs; a; a = a->next)
        if (a->object == object && a->id == id)
            return a;
    if (!make || !(a = calloc(1, sizeof(*a))))
        return NULL;
    a->object = object;
    a->id = id;
    a->next = attrs;
    attrs = a;
    return a;
}

/* The attributes CUDA documents as valid for streams (stream) or kernel nodes. */
static bool attr_valid(CUlaunchAttributeID id, bool stream)
{
    switch (id) {
    case CU_LAUNCH_ATTRIBUTE_ACCESS_POLICY_WINDOW:
    case CU_LAUNCH_ATTRIBUTE_PRIORITY:
    case CU_LAUNCH_ATTRIBUTE_MEM_SYNC_DOMAIN_MAP:
    case CU_LAUNCH_ATTRIBUTE_MEM_SYNC_DOMAIN:
        return true;
    case CU_LAUNCH_ATTRIBUTE_SYNCHRONIZATION_POLICY:
        return stream;
    case CU_LAUNCH_ATTRIBUTE_COOPERATIVE:
    case CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION:
    case CU_LAUNCH_ATTRIBUTE_CLUSTER_SCHEDULING_POLICY_PREFERENCE:
        return !stream;
    default:
        return false;
    }
}

static CUresult attr_rw(const char *fn, const void *object, bool ok, bool stream,
                        CUlaunchAttributeID id, CUlaunchAttributeValue *out,
                        const CUlaunchAttributeValue *in)
{
    struct attr *a;

    if (!ok)
        return vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_HANDLE, fn, "unknown %s %p",
                                   stream ? "stream" : "kernel node", object);
    if (!attr_valid(id, stream) || (!out && !in))
        return vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_VALUE, fn, "attribute %d not valid here",
                                   (int)id);
    if (out) {
        a = attr_find(object, id, false);
        if (a)
            *out = a->value;
        else
            memset(out, 0, sizeof(*out));
        return CUDA_SUCCESS;
    }
    if (!(a = attr_find(object, id, true)))
        return CUDA_ERROR_OUT_OF_MEMORY;
    a->value = *in;
    return CUDA_SUCCESS;
}

static bool kernel_node(CUgraphNode h)
{
    struct node *n = node_find(h);

    return n && n->op.kind == VGPU_FAKE_OP_KERNEL;
}

FAKE_EXPORT CUresult cuStreamGetAttribute(CUstream hStream, CUstreamAttrID attr,
                                          CUstreamAttrValue *value_out)
{
    return attr_rw("cuStreamGetAttribute", hStream,
                   vgpu_fake_stream_ok("cuStreamGetAttribute", (cudaStream_t)hStream), true, attr,
                   value_out, NULL);
}

FAKE_EXPORT CUresult cuStreamSetAttribute(CUstream hStream, CUstreamAttrID attr,
                                          const CUstreamAttrValue *value)
{
    return attr_rw("cuStreamSetAttribute", hStream,
                   vgpu_fake_stream_ok("cuStreamSetAttribute", (cudaStream_t)hStream), true, attr,
                   NULL, value);
}

/* The per-thread forms: the fake's per-thread stream is its legacy one. */
CUresult cuStreamGetAttribute_ptsz(CUstream hStream, CUstreamAttrID attr, CUstreamAttrValue *v);
CUresult cuStreamSetAttribute_ptsz(CUstream hStream, CUstreamAttrID attr, const CUstreamAttrValue *v);

FAKE_EXPORT CUresult cuStreamGetAttribute_ptsz(CUstream hStream, CUstreamAttrID attr,
                                               CUstreamAttrValue *value_out)
{
    return cuStreamGetAttribute(hStream, attr, value_out);
}

FAKE_EXPORT CUresult cuStreamSetAttribute_ptsz(CUstream hStream, CUstreamAttrID attr,
                                               const CUstreamAttrValue *value)
{
    return cuStreamSetAttribute(hStream, attr, value);
}

FAKE_EXPORT CUresult cuGraphKernelNodeGetAttribute(CUgraphNode hNode, CUkernelNodeAttrID attr,
                                                   CUkernelNodeAttrValue *value_out)
{
    return attr_rw("cuGraphKernelNodeGetAttribute", hNode, kernel_node(hNode), false, attr,
                   value_out, NULL);
}

FAKE_EXPORT CUresult cuGraphKernelNodeSetAttribute(CUgraphNode hNode, CUkernelNodeAttrID attr,
                                                   const CUkernelNodeAttrValue *value)
{
    return attr_rw("cuGraphKernelNodeSetAttribute", hNode, kernel_node(hNode), false, attr, NULL,
                   value);
}

FAKE_EXPORT CUresult cuGraphKernelNodeCopyAttributes(CUgraphNode dst, CUgraphNode src)
{
    if (!kernel_node(dst) || !kernel_node(src))
        return vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_VALUE, "cuGraphKernelNodeCopyAttributes",
                                   "not kernel nodes: %p, %p", (void *)dst, (void *)src);
    for (struct attr *a = attrs; a; a = a->next) {
        struct attr *d;

        if (a->object != (const void *)src)
            continue;
        if (!(d = attr_find(dst, a->id, true)))
            return CUDA_ERROR_OUT_OF_MEMORY;
        d->value = a->value;
    }
    return CUDA_SUCCESS;
}

/* ---- executable graphs ---- */

#define INSTANTIATE_FLAGS (CUDA_GRAPH_INSTANTIATE_FLAG_AUTO_FREE_ON_LAUNCH |   \
                           CUDA_GRAPH_INSTANTIATE_FLAG_UPLOAD |                \
                           CUDA_GRAPH_INSTANTIATE_FLAG_DEVICE_LAUNCH |         \
                           CUDA_GRAPH_INSTANTIATE_FLAG_USE_NODE_PRIORITY)

/*
 * g's operations in order, child graphs inlined: their count, written to
 * out (and each one's node to origin) when not NULL.
 */
static size_t flatten(const struct graph *g, struct vgpu_fake_op *out, struct node **origin);

/* A conditional node's bodies flattened for an executable; NULL without memory. */
static struct vgpu_fake_cond_run *cond_run_new(const struct node *n)
{
    struct vgpu_fake_cond_run *c = calloc(1, sizeof(*c));

    if (!c)
        return NULL;
    c->handle = n->handle;
    c->type = n->cond_type;
    c->n = n->nbodies;
    for (unsigned i = 0; i < c->n; i++) {
        const struct graph *b = (const struct graph *)n->bodies[i];
        size_t k = flatten(b, NULL, NULL);
        struct node **origin = calloc(k ? k : 1, sizeof(*origin));

        c->ops[i] = calloc(k ? k : 1, sizeof(*c->ops[i]));
        if (c->ops[i] && origin)
            c->nops[i] = flatten(b, c->ops[i], origin);
        free(origin);
    }
    return c;
}

static void ops_free(struct vgpu_fake_op *ops, size_t n);

static void cond_run_free(struct vgpu_fake_cond_run *c)
{
    for (unsigned i = 0; c && i < c->n; i++)
        ops_free(c->ops[i], c->nops[i]);
    free(c);
}

/* An executable's operations, with what its conditional nodes hold. */
static void ops_free(struct vgpu_fake_op *ops, size_t n)
{
    for (size_t i = 0; ops && i < n; i++)
        if (ops[i].kind == VGPU_FAKE_OP_COND)
            cond_run_free(ops[i].cond);
    free(ops);
}

static size_t flatten(const struct graph *g, struct vgpu_fake_op *out, struct node **origin)
{
    size_t i = 0;

    for (struct node *n = g->first; n; n = n->next) {
        if (n->child) {
            i += flatten(n->child, out ? out + i : NULL, origin ? origin + i : NULL);
        } else {
            if (out) {
                out[i] = n->op;
                origin[i] = n;
                if (n->op.kind == VGPU_FAKE_OP_COND)
                    out[i].cond = cond_run_new(n);
            }
            i++;
        }
    }
    return i;
}

FAKE_EXPORT CUresult cuGraphInstantiateWithFlags(CUgraphExec *phGraphExec, CUgraph hGraph,
                                                 unsigned long long flags)
{
    struct graph *g = graph_find(hGraph);
    struct exec *e;
    size_t n;

    if (!g)
        return vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_VALUE, "cuGraphInstantiateWithFlags",
                                   "unknown graph %p", (void *)hGraph);
    if (!phGraphExec || flags & ~(unsigned long long)INSTANTIATE_FLAGS)
        return CUDA_ERROR_INVALID_VALUE;
    n = flatten(g, NULL, NULL);
    if (!(e = calloc(1, sizeof(*e))) || (n && (!(e->ops = calloc(n, sizeof(*e->ops))) ||
                                               !(e->origin = calloc(n, sizeof(*e->origin)))))) {
        if (e)
            free(e->ops);
        free(e);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    e->n = flatten(g, e->ops, e->origin);
    e->flags = flags;
    vgpu_fake_uobj_copy(g, e);
    e->next = execs;
    execs = e;
    *phGraphExec = (CUgraphExec)e;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuGraphInstantiateWithParams(CUgraphExec *phGraphExec, CUgraph hGraph,
                                                  CUDA_GRAPH_INSTANTIATE_PARAMS *p)
{
    CUresult r;

    if (!p)
        return CUDA_ERROR_INVALID_VALUE;
    if (p->flags & CUDA_GRAPH_INSTANTIATE_FLAG_UPLOAD && !vgpu_fake_stream_ok(
            "cuGraphInstantiateWithParams", p->hUploadStream))
        return CUDA_ERROR_INVALID_HANDLE;
    r = cuGraphInstantiateWithFlags(phGraphExec, hGraph, p->flags);
    p->hErrNode_out = NULL;
    p->result_out = r ? CUDA_GRAPH_INSTANTIATE_ERROR : CUDA_GRAPH_INSTANTIATE_SUCCESS;
    return r;
}

FAKE_EXPORT CUresult cuGraphExecGetFlags(CUgraphExec hGraphExec, cuuint64_t *flags)
{
    struct exec *e = exec_find(hGraphExec);

    if (!e)
        return vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_VALUE, "cuGraphExecGetFlags",
                                   "unknown executable graph %p", (void *)hGraphExec);
    if (!flags)
        return CUDA_ERROR_INVALID_VALUE;
    *flags = e->flags;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuGraphExecDestroy(CUgraphExec hGraphExec)
{
    for (struct exec **p = &execs; *p; p = &(*p)->next)
        if ((void *)*p == (void *)hGraphExec) {
            struct exec *e = *p;

            *p = e->next;
            vgpu_fake_uobj_owner_gone(e);
            ops_free(e->ops, e->n);
            free(e->origin);
            free(e);
            return CUDA_SUCCESS;
        }
    return vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_VALUE, "cuGraphExecDestroy",
                               "unknown executable graph %p", (void *)hGraphExec);
}

/* An executable takes a graph's parameters when their operations match one for one. */
FAKE_EXPORT CUresult cuGraphExecUpdate_v2(CUgraphExec hGraphExec, CUgraph hGraph,
                                          CUgraphExecUpdateResultInfo *resultInfo)
{
    struct exec *e = exec_find(hGraphExec);
    struct graph *g = graph_find(hGraph);
    struct vgpu_fake_op *ops;
    struct node **origin;
    size_t n;

    if (!e || !g)
        return vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_VALUE, "cuGraphExecUpdate",
                                   "unknown executable %p or graph %p", (void *)hGraphExec,
                                   (void *)hGraph);
    if (!resultInfo)
        return CUDA_ERROR_INVALID_VALUE;
    *resultInfo = (CUgraphExecUpdateResultInfo){ .result = CU_GRAPH_EXEC_UPDATE_SUCCESS };
    n = flatten(g, NULL, NULL);
    if (n != e->n) {
        resultInfo->result = CU_GRAPH_EXEC_UPDATE_ERROR_TOPOLOGY_CHANGED;
        return CUDA_ERROR_GRAPH_EXEC_UPDATE_FAILURE;
    }
    ops = calloc(n ? n : 1, sizeof(*ops));
    origin = calloc(n ? n : 1, sizeof(*origin));
    if (!ops || !origin) {
        free(origin);
        free(ops);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    flatten(g, ops, origin);
    for (size_t i = 0; i < n; i++)
        if (ops[i].kind != e->ops[i].kind) {
            resultInfo->result = CU_GRAPH_EXEC_UPDATE_ERROR_NODE_TYPE_CHANGED;
            resultInfo->errorNode = (CUgraphNode)origin[i];
            free(ops);
            free(origin);
            return CUDA_ERROR_GRAPH_EXEC_UPDATE_FAILURE;
        }
    free(e->ops);
    free(e->origin);
    e->ops = ops;
    e->origin = origin;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuGraphUpload(CUgraphExec hGraphExec, CUstream hStream)
{
    if (!exec_find(hGraphExec))
        return vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_VALUE, "cuGraphUpload",
                                   "unknown executable graph %p", (void *)hGraphExec);
    return vgpu_fake_stream_ok("cuGraphUpload", hStream) ? CUDA_SUCCESS
                                                          : CUDA_ERROR_INVALID_HANDLE;
}

static CUresult run(const struct vgpu_fake_op *op);
static void galloc_use(const void *p, bool used);

/* Runs n operations in order; the first failure's status. */
static CUresult run_ops(const struct vgpu_fake_op *ops, size_t n)
{
    CUresult r;

    for (size_t i = 0; i < n; i++)
        if ((r = run(&ops[i])))
            return r;
    return CUDA_SUCCESS;
}

/* A conditional node: its handle's value picks the body (if, switch) or repeats it (while). */
static CUresult run_cond(const struct vgpu_fake_cond_run *c)
{
    CUresult r = CUDA_SUCCESS;
    unsigned v;

    if (!c)
        return CUDA_ERROR_OUT_OF_MEMORY;
    v = c->handle->value;
    switch (c->type) {
    case CU_GRAPH_COND_TYPE_IF:
        if (v)
            return run_ops(c->ops[0], c->nops[0]);
        return c->n == 2 ? run_ops(c->ops[1], c->nops[1]) : CUDA_SUCCESS;
    case CU_GRAPH_COND_TYPE_WHILE:
        for (long rounds = 0; c->handle->value && r == CUDA_SUCCESS; rounds++) {
            if (rounds == 1000000)
                return vgpu_fake_cu_refuse(CUDA_ERROR_LAUNCH_TIMEOUT, "cuGraphLaunch",
                                           "a while node ran a million rounds");
            r = run_ops(c->ops[0], c->nops[0]);
        }
        return r;
    default:
        return v < c->n ? run_ops(c->ops[v], c->nops[v]) : CUDA_SUCCESS;
    }
}

/* At a launch: handles that ask for it take their default value (nested bodies too). */
static void cond_defaults(const struct vgpu_fake_op *ops, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (ops[i].kind == VGPU_FAKE_OP_COND && ops[i].cond) {
            const struct vgpu_fake_cond_run *c = ops[i].cond;

            if (c->handle->flags & CU_GRAPH_COND_ASSIGN_DEFAULT)
                c->handle->value = c->handle->dflt;
            for (unsigned b = 0; b < c->n; b++)
                cond_defaults(c->ops[b], c->nops[b]);
        }
}

static CUresult run(const struct vgpu_fake_op *op)
{
    void *argv[4];

    switch (op->kind) {
    case VGPU_FAKE_OP_COND:
        return run_cond(op->cond);
    case VGPU_FAKE_OP_KERNEL:
        for (int i = 0; i < op->kernel->nparams; i++)
            argv[i] = (void *)(op->args + op->kernel->off[i]);
        return VGPU_FAKE_CU(op->kernel->run(argv));
    case VGPU_FAKE_OP_MEMSET:
        return VGPU_FAKE_CU(vgpu_fake_memset2d("cuGraphLaunch", op->dst, op->pitch, op->value,
                                               op->elem, op->width, op->height, NULL));
    case VGPU_FAKE_OP_COPY:
        return VGPU_FAKE_CU(vgpu_fake_copy2d("cuGraphLaunch", op->dst, op->pitch, op->src,
                                             op->spitch, op->width, op->height, op->dir));
    case VGPU_FAKE_OP_EVENT:
        return cuEventRecord(op->event, NULL);
    case VGPU_FAKE_OP_HOST:
        return vgpu_fake_host_node_run(op->host, op->host_data);
    case VGPU_FAKE_OP_MEM_ALLOC:
    case VGPU_FAKE_OP_MEM_FREE:
        galloc_use(op->dst, op->kind == VGPU_FAKE_OP_MEM_ALLOC);
        return CUDA_SUCCESS;
    default:
        return CUDA_SUCCESS;
    }
}

FAKE_EXPORT CUresult cuGraphLaunch(CUgraphExec hGraphExec, CUstream hStream)
{
    struct exec *e = exec_find(hGraphExec);
    CUresult r;

    if (!e)
        return vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_VALUE, "cuGraphLaunch",
                                   "unknown executable graph %p", (void *)hGraphExec);
    if (!vgpu_fake_stream_ok("cuGraphLaunch", hStream))
        return CUDA_ERROR_INVALID_HANDLE;
    cond_defaults(e->ops, e->n);
    for (size_t i = 0; i < e->n; i++)
        if ((r = run(&e->ops[i])))
            return r;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuStreamBeginCapture_v2_ptsz(CUstream hStream, CUstreamCaptureMode mode)
{
    return cuStreamBeginCapture_v2(hStream, mode);
}

FAKE_EXPORT CUresult cuStreamEndCapture_ptsz(CUstream hStream, CUgraph *phGraph)
{
    return cuStreamEndCapture(hStream, phGraph);
}

FAKE_EXPORT CUresult cuGraphUpload_ptsz(CUgraphExec hGraphExec, CUstream hStream)
{
    return cuGraphUpload(hGraphExec, hStream);
}

FAKE_EXPORT CUresult cuGraphLaunch_ptsz(CUgraphExec hGraphExec, CUstream hStream)
{
    return cuGraphLaunch(hGraphExec, hStream);
}

/* ---- conditional nodes ---- */

static struct cond *cond_find(unsigned long long h)
{
    for (struct cond *c = conds; c; c = c->next)
        if ((unsigned long long)(uintptr_t)c == h)
            return c;
    return NULL;
}

bool vgpu_fake_cond_set(unsigned long long h, unsigned value)
{
    struct cond *c = cond_find(h);

    if (c)
        c->value = value;
    return c != NULL;
}

FAKE_EXPORT CUresult cuGraphConditionalHandleCreate(CUgraphConditionalHandle *pHandle_out,
                                                    CUgraph hGraph, CUcontext ctx,
                                                    unsigned int defaultLaunchValue,
                                                    unsigned int flags)
{
    struct cond *c;
    CUresult r = vgpu_fake_cu_init_ok();

    if (r)
        return r;
    /* the real driver needs the context named (an H100's driver 580 answered NULL so) */
    if (!ctx)
        return vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_CONTEXT, "cuGraphConditionalHandleCreate",
                                   "no context");
    if (!graph_find(hGraph))
        return vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_VALUE, "cuGraphConditionalHandleCreate",
                                   "unknown graph %p", (void *)hGraph);
    if (!pHandle_out || flags & ~(unsigned)CU_GRAPH_COND_ASSIGN_DEFAULT)
        return CUDA_ERROR_INVALID_VALUE;
    if (!(c = calloc(1, sizeof(*c))))
        return CUDA_ERROR_OUT_OF_MEMORY;
    c->value = c->dflt = defaultLaunchValue;
    c->flags = flags;
    c->next = conds;
    conds = c;
    *pHandle_out = (CUgraphConditionalHandle)(uintptr_t)c;
    return CUDA_SUCCESS;
}

/* The generic call, for the one node type that has no call of its own: conditional nodes. */
FAKE_EXPORT CUresult cuGraphAddNode_v2(CUgraphNode *phGraphNode, CUgraph hGraph,
                                       const CUgraphNode *dependencies,
                                       const CUgraphEdgeData *dependencyData,
                                       size_t numDependencies, CUgraphNodeParams *p)
{
    struct vgpu_fake_op op = { .kind = VGPU_FAKE_OP_COND };
    CUDA_CONDITIONAL_NODE_PARAMS *cp;
    struct node *n;
    struct cond *h;
    unsigned max;
    CUresult r = vgpu_fake_cu_init_ok();

    (void)dependencyData;
    if (r)
        return r;
    if (!phGraphNode || !p)
        return CUDA_ERROR_INVALID_VALUE;
    if (p->type != CU_GRAPH_NODE_TYPE_CONDITIONAL)
        return vgpu_fake_cu_refuse(CUDA_ERROR_NOT_SUPPORTED, "cuGraphAddNode",
                                   "node type %d: the fake takes conditional nodes here only",
                                   (int)p->type);
    cp = &p->conditional;
    max = cp->type == CU_GRAPH_COND_TYPE_IF ? 2 : cp->type == CU_GRAPH_COND_TYPE_WHILE ? 1 : 8;
    if (!(h = cond_find(cp->handle)) || cp->size < 1 || cp->size > max ||
        cp->type > CU_GRAPH_COND_TYPE_SWITCH)
        return vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_VALUE, "cuGraphAddNode",
                                   "conditional node: handle %#llx, type %d, size %u",
                                   (unsigned long long)cp->handle, (int)cp->type, cp->size);
    if ((r = add_node("cuGraphAddNode", hGraph, dependencies, numDependencies, &op, &n)))
        return r;
    n->handle = h;
    n->cond_type = cp->type;
    for (unsigned i = 0; i < cp->size; i++) {
        struct graph *b = graph_new();

        if (!b) {
            cuGraphDestroyNode((CUgraphNode)n);
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
        n->bodies[n->nbodies++] = (CUgraph)b;
    }
    cp->phGraph_out = n->bodies;
    *phGraphNode = (CUgraphNode)n;
    return CUDA_SUCCESS;
}

/* CUDA 12.2's, without edge data (cuda.h now names the _v2 so). */
#undef cuGraphAddNode
CUresult cuGraphAddNode(CUgraphNode *phGraphNode, CUgraph hGraph, const CUgraphNode *dependencies,
                        size_t numDependencies, CUgraphNodeParams *nodeParams);
FAKE_EXPORT CUresult cuGraphAddNode(CUgraphNode *phGraphNode, CUgraph hGraph,
                                    const CUgraphNode *dependencies, size_t numDependencies,
                                    CUgraphNodeParams *nodeParams)
{
    return cuGraphAddNode_v2(phGraphNode, hGraph, dependencies, NULL, numDependencies,
                             nodeParams);
}

/* ---- graph memory: allocation and free nodes ---- */

/* Graph allocations' memory, by address: in use between an allocation and a free. */
struct galloc {
    const void *p;
    size_t size;
    bool used;
    struct galloc *next;
};

static struct galloc *gallocs;

static struct galloc *galloc_find(const void *p)
{
    for (struct galloc *a = gallocs; a; a = a->next)
        if (a->p == p)
            return a;
    return NULL;
}

/* p lies in memory an allocation node made. */
static bool in_galloc(const void *p)
{
    for (struct galloc *a = gallocs; a; a = a->next)
        if ((uintptr_t)p >= (uintptr_t)a->p && (uintptr_t)p - (uintptr_t)a->p < a->size)
            return true;
    return false;
}

/* Memory an allocation node made: known from now on (out of use until launched). */
static void galloc_add(const void *p, size_t size)
{
    struct galloc *a = galloc_find(p);

    if (!a && (a = calloc(1, sizeof(*a)))) {
        a->next = gallocs;
        gallocs = a;
    }
    if (a) {
        a->p = p;
        a->size = size;
    }
}

static void galloc_use(const void *p, bool used)
{
    struct galloc *a = galloc_find(p);

    if (a)
        a->used = used;
}

bool vgpu_fake_graph_unused(const void *p)
{
    for (struct galloc *a = gallocs; a; a = a->next)
        if ((const char *)p >= (const char *)a->p &&
            (const char *)p < (const char *)a->p + a->size)
            return !a->used;
    return false;
}

bool vgpu_fake_graph_free(const void *p)
{
    struct galloc *a = galloc_find(p);

    if (a)
        a->used = false;
    return a != NULL;
}

static cuuint64_t galloc_used(void)
{
    cuuint64_t n = 0;

    for (struct galloc *a = gallocs; a; a = a->next)
        n += a->used ? a->size : 0;
    return n;
}

/* The allocation node whose memory starts at p, or NULL. */
static struct node *graph_alloc_find(const void *p)
{
    for (struct graph *g = graphs; g; g = g->next)
        for (struct node *n = g->first; n; n = n->next)
            if (n->op.kind == VGPU_FAKE_OP_MEM_ALLOC && n->op.dst == p)
                return n;
    return NULL;
}

static const CUmemPoolProps default_pool = { .allocType = CU_MEM_ALLOCATION_TYPE_PINNED,
                                             .location = { .type = CU_MEM_LOCATION_TYPE_DEVICE } };

CUresult vgpu_fake_alloc_async(const char *fn, void **p, size_t size, CUstream s)
{
    struct vgpu_fake_op op = { .kind = VGPU_FAKE_OP_MEM_ALLOC };
    CUresult r = VGPU_FAKE_CU(vgpu_fake_malloc(p, size));

    if (r)
        return r;
    op.dst = *p;
    op.width = size;
    if (vgpu_fake_captured(s, &op, &r)) {
        struct vgpu_fake_stream *f = stream_rec(s);

        if (r) {
            vgpu_fake_free(fn, *p);
            return r;
        }
        ((struct node *)f->capture->deps[0])->pool = default_pool;
        galloc_add(*p, size);
    }
    return CUDA_SUCCESS;
}

CUresult vgpu_fake_free_async(const char *fn, void *p, CUstream s)
{
    struct vgpu_fake_op op = { .kind = VGPU_FAKE_OP_MEM_FREE, .dst = p };
    struct vgpu_fake_stream *f = stream_rec(s);
    CUresult r;

    if (f && f->capture && !graph_alloc_find(p))
        return vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_VALUE, fn, "a captured free of %p, which "
                                   "no allocation node made", p);
    if (vgpu_fake_captured(s, &op, &r))
        return r;
    return VGPU_FAKE_CU(vgpu_fake_free(fn, p));     /* a graph's: only out of use */
}

FAKE_EXPORT CUresult cuGraphAddMemAllocNode(CUgraphNode *phGraphNode, CUgraph hGraph,
                                            const CUgraphNode *dependencies,
                                            size_t numDependencies,
                                            CUDA_MEM_ALLOC_NODE_PARAMS *p)
{
    struct vgpu_fake_op op = { .kind = VGPU_FAKE_OP_MEM_ALLOC };
    struct node *n;
    void *mem;
    CUresult r = vgpu_fake_cu_init_ok();

    if (r)
        return r;
    if (!phGraphNode || !p || !p->bytesize || p->accessDescCount > 4 ||
        (p->accessDescCount && !p->accessDescs) ||
        p->poolProps.allocType != CU_MEM_ALLOCATION_TYPE_PINNED ||
        p->poolProps.location.type != CU_MEM_LOCATION_TYPE_DEVICE || p->poolProps.location.id ||
        p->poolProps.handleTypes)
        return vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_VALUE, "cuGraphAddMemAllocNode",
                                   "parameters the fake does not take");
    if ((r = VGPU_FAKE_CU(vgpu_fake_malloc(&mem, p->bytesize))))
        return r;
    op.dst = mem;
    op.width = p->bytesize;
    if ((r = add_node("cuGraphAddMemAllocNode", hGraph, dependencies, numDependencies, &op, &n))) {
        vgpu_fake_free("cuGraphAddMemAllocNode", mem);
        return r;
    }
    galloc_add(mem, p->bytesize);
    n->pool = p->poolProps;
    n->naccess = p->accessDescCount;
    if (n->naccess)
        memcpy(n->access, p->accessDescs, n->naccess * sizeof(*n->access));
    p->dptr = CUDP(mem);
    *phGraphNode = (CUgraphNode)n;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuGraphMemAllocNodeGetParams(CUgraphNode hNode,
                                                  CUDA_MEM_ALLOC_NODE_PARAMS *p)
{
    struct node *n = node_find(hNode);

    if (!n || n->op.kind != VGPU_FAKE_OP_MEM_ALLOC || !p)
        return vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_VALUE, "cuGraphMemAllocNodeGetParams",
                                   "%p is not an allocation node", (void *)hNode);
    *p = (CUDA_MEM_ALLOC_NODE_PARAMS){ .poolProps = n->pool,
                                       .accessDescs = n->naccess ? n->access : NULL,
                                       .accessDescCount = n->naccess, .bytesize = n->op.width,
                                       .dptr = CUDP(n->op.dst) };
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuGraphAddMemFreeNode(CUgraphNode *phGraphNode, CUgraph hGraph,
                                           const CUgraphNode *dependencies, size_t numDependencies,
                                           CUdeviceptr dptr)
{
    struct vgpu_fake_op op = { .kind = VGPU_FAKE_OP_MEM_FREE, .dst = DP(dptr) };
    struct node *n;
    CUresult r = vgpu_fake_cu_init_ok();

    if (r)
        return r;
    if (!phGraphNode)
        return CUDA_ERROR_INVALID_VALUE;
    if (!graph_alloc_find(DP(dptr)))
        return vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_VALUE, "cuGraphAddMemFreeNode",
                                   "%#llx is not a graph allocation", (unsigned long long)dptr);
    if ((r = add_node("cuGraphAddMemFreeNode", hGraph, dependencies, numDependencies, &op, &n)))
        return r;
    *phGraphNode = (CUgraphNode)n;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuGraphMemFreeNodeGetParams(CUgraphNode hNode, CUdeviceptr *dptr_out)
{
    struct node *n = node_find(hNode);

    if (!n || n->op.kind != VGPU_FAKE_OP_MEM_FREE || !dptr_out)
        return vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_VALUE, "cuGraphMemFreeNodeGetParams",
                                   "%p is not a free node", (void *)hNode);
    *dptr_out = CUDP(n->op.dst);
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuDeviceGraphMemTrim(CUdevice device)
{
    CUresult r = vgpu_fake_cu_init_ok();

    return r ? r : device ? CUDA_ERROR_INVALID_DEVICE : CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuDeviceGetGraphMemAttribute(CUdevice device, CUgraphMem_attribute attr,
                                                  void *value)
{
    CUresult r = cuDeviceGraphMemTrim(device);

    if (r)
        return r;
    if (!value || attr > CU_GRAPH_MEM_ATTR_RESERVED_MEM_HIGH)
        return CUDA_ERROR_INVALID_VALUE;
    memset(value, 0, sizeof(cuuint64_t));
    if (attr == CU_GRAPH_MEM_ATTR_USED_MEM_CURRENT) {
        cuuint64_t used = galloc_used();

        memcpy(value, &used, sizeof(used));
    }
    return CUDA_SUCCESS;
}

/* Only the high watermarks may be set, and only to 0 (a reset). */
FAKE_EXPORT CUresult cuDeviceSetGraphMemAttribute(CUdevice device, CUgraphMem_attribute attr,
                                                  void *value)
{
    CUresult r = cuDeviceGraphMemTrim(device);
    cuuint64_t v;

    if (r)
        return r;
    if (!value || (attr != CU_GRAPH_MEM_ATTR_USED_MEM_HIGH &&
                   attr != CU_GRAPH_MEM_ATTR_RESERVED_MEM_HIGH))
        return CUDA_ERROR_INVALID_VALUE;
    memcpy(&v, value, sizeof(v));
    return v ? CUDA_ERROR_INVALID_VALUE : CUDA_SUCCESS;
}
