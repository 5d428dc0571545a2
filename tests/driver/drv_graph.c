/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Stream capture and CUDA graphs through the driver API: a capture of
 * memsets, a kernel and a device-to-device copy on a stream (with an
 * allocation inside it under a relaxed thread mode, as PyTorch's caching
 * allocator does), the capture's info, the graph's dot file, instantiation
 * two ways, upload, and many launches whose results accumulate; a
 * synchronous copy during a global capture, which the driver refuses and
 * which invalidates the capture; the graph's nodes and edges; a graph
 * built by hand around the captured one (a child graph node, an event
 * record node), cloned and launched; memset, kernel and memcpy nodes added
 * one by one, their parameters changed in the graph and in its executable;
 * graph memory: allocation and free nodes built by hand and captured from
 * stream-ordered allocations, launched again and again; graph memory
 * attributes.  Prints what it saw; the same output natively and through
 * vgpu (against the fake driver in CI).  With VGPU_TEST_REFUSALS set (vgpu
 * only) also what the server must refuse: handles of graphs that are gone.
 */
#include <cuda.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern const unsigned char drv_test_ptx[];

#define N 1024
#define LAUNCHES 100

#define CHECK(call)                                                                    \
    do {                                                                               \
        CUresult r_ = (call);                                                          \
        if (r_ != CUDA_SUCCESS) {                                                      \
            printf("%s failed: %s\n", #call, name_of(r_));                             \
            return 1;                                                                  \
        }                                                                              \
    } while (0)

static const char *name_of(CUresult r)
{
    const char *n = NULL;

    return cuGetErrorName(r, &n) == CUDA_SUCCESS && n ? n : "?";
}

struct bufs {
    CUdeviceptr a, b, d;
    CUfunction add;
};

/*
 * The graph: b = 2, a = a + b (fake_add), d = a; with a cuMemAlloc inside
 * the capture under a relaxed thread mode.  Prints the capture's info.
 */
static int capture(CUstream s, const struct bufs *m, CUgraph *graph, CUgraphNode *last)
{
    CUstreamCaptureStatus st;
    CUstreamCaptureMode mode = CU_STREAM_CAPTURE_MODE_RELAXED;
    cuuint64_t id = 0;
    CUgraph g = NULL;
    const CUgraphNode *deps = NULL;
    const CUgraphEdgeData *edges = NULL;
    size_t ndeps = 0;
    CUdeviceptr tmp;
    int n = N;
    void *args[] = { (void *)&m->a, (void *)&m->a, (void *)&m->b, &n };

    CHECK(cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_GLOBAL));
    CHECK(cuStreamIsCapturing(s, &st));
    printf("capturing: %s\n", st == CU_STREAM_CAPTURE_STATUS_ACTIVE ? "active" : "not");
    CHECK(cuMemsetD32Async(m->b, 2, N, s));
    CHECK(cuLaunchKernel(m->add, N / 256, 1, 1, 256, 1, 1, 0, s, args, NULL));
    /* PyTorch's allocator: relaxed around a cudaMalloc during capture */
    CHECK(cuThreadExchangeStreamCaptureMode(&mode));
    printf("thread mode was %s\n", mode == CU_STREAM_CAPTURE_MODE_GLOBAL ? "global" : "other");
    CHECK(cuMemAlloc(&tmp, 4096));
    CHECK(cuThreadExchangeStreamCaptureMode(&mode));
    printf("relaxed allocation inside capture: ok, the mode put back replaced %s\n",
           mode == CU_STREAM_CAPTURE_MODE_RELAXED ? "relaxed" : "another");
    CHECK(cuMemcpyDtoDAsync(m->d, m->a, N * sizeof(int), s));
    CHECK(cuStreamGetCaptureInfo(s, &st, &id, &g, &deps, &edges, &ndeps));
    printf("capture info: %s, id %s, graph %s, %zu dependency, edge type %d\n",
           st == CU_STREAM_CAPTURE_STATUS_ACTIVE ? "active" : "not", id ? "set" : "0",
           g ? "set" : "none", ndeps, edges ? (int)edges[0].type : 0);
    *last = ndeps ? deps[0] : NULL;
    ndeps = 0;
    CHECK(cuStreamGetCaptureInfo(s, &st, NULL, NULL, NULL, NULL, &ndeps));
    printf("capture info, count alone: %zu dependency\n", ndeps);
    CHECK(cuStreamEndCapture(s, graph));
    printf("graph %s, same as the capture's: %s\n", *graph ? "made" : "none",
           *graph == g ? "yes" : "no");
    CHECK(cuMemFree(tmp));
    return 0;
}

/* The captured graph's shape: a chain of three nodes. */
static int shape(CUgraph g)
{
    CUgraphNode nodes[8], roots[8], from[8], to[8], deps[8];
    CUgraphEdgeData ed[8];
    size_t n = 0, nr = 8, ne = 8, nd = 8;
    CUgraphNodeType t0;
    int from_root = 0;

    CHECK(cuGraphGetNodes(g, NULL, &n));
    printf("captured graph: %zu nodes\n", n);
    n = 8;
    CHECK(cuGraphGetNodes(g, nodes, &n));
    CHECK(cuGraphGetRootNodes(g, roots, &nr));
    CHECK(cuGraphGetEdges(g, from, to, ed, &ne));
    CHECK(cuGraphNodeGetType(roots[0], &t0));
    for (size_t i = 0; i < ne && i < 8; i++)
        if (from[i] == roots[0]) {
            CHECK(cuGraphNodeGetDependencies(to[i], deps, NULL, &nd));
            from_root++;
        }
    printf("%zu root (%s), %zu edges, %d from the root, whose successor depends on it: %s, "
           "entries past the count: %s\n", nr,
           t0 == CU_GRAPH_NODE_TYPE_MEMSET ? "a memset" : "other",
           ne, from_root, nd == 1 && deps[0] == roots[0] ? "yes" : "no",
           n < 8 && nodes[8 - 1] == NULL ? "NULL" : "set");
    return 0;
}

/* Sets a to 1, launches exec `times` times, prints what d holds. */
static int replay(CUgraphExec exec, CUstream s, const struct bufs *m, int times, const char *what)
{
    static int host[N];
    int bad = 0;

    CHECK(cuMemsetD32(m->a, 1, N));
    for (int i = 0; i < times; i++)
        CHECK(cuGraphLaunch(exec, s));
    CHECK(cuStreamSynchronize(s));
    CHECK(cuMemcpyDtoH(host, m->d, sizeof(host)));
    for (int i = 0; i < N; i++)
        bad += host[i] != 1 + 2 * times;
    printf("%s: %d launches, d[0] = %d, %s\n", what, times, host[0],
           bad ? "some differ" : "all equal");
    return 0;
}

/* A synchronous copy during a global capture: refused, and the capture is invalidated. */
static int illegal(CUstream s, const struct bufs *m)
{
    int x = 7;
    CUgraph g = NULL;
    CUstreamCaptureStatus st;
    CUresult r;

    CHECK(cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_GLOBAL));
    CHECK(cuMemsetD32Async(m->b, 3, N, s));
    r = cuMemcpyHtoD(m->b, &x, sizeof(x));
    printf("synchronous copy during a global capture: %s\n", name_of(r));
    r = cuStreamIsCapturing(s, &st);
    printf("then the stream: %s, %s\n", name_of(r),
           st == CU_STREAM_CAPTURE_STATUS_INVALIDATED ? "invalidated" : "not invalidated");
    r = cuStreamEndCapture(s, &g);
    printf("end of the invalidated capture: %s, graph %s\n", name_of(r), g ? "made" : "none");
    return 0;
}

/*
 * A graph built by hand: an empty node, the captured graph as a child after
 * it, an event record after that; then a clone of it, launched, and the
 * handles that went with the graph refused.
 */
static int by_hand(CUstream s, CUgraph captured, const struct bufs *m)
{
    CUgraph g, clone, inner;
    CUgraphNode n0, n1, n2, found;
    CUgraphNodeType t;
    CUgraphExec e;
    CUevent ev;
    static int host[N];

    CHECK(cuEventCreate(&ev, CU_EVENT_DEFAULT));
    CHECK(cuGraphCreate(&g, 0));
    CHECK(cuGraphAddEmptyNode(&n0, g, NULL, 0));
    CHECK(cuGraphAddChildGraphNode(&n1, g, &n0, 1, captured));
    CHECK(cuGraphAddEventRecordNode(&n2, g, &n1, 1, ev));
    CHECK(cuGraphChildGraphNodeGetGraph(n1, &inner));
    CHECK(cuGraphNodeGetType(n1, &t));
    printf("hand-built graph: child node type %s\n",
           t == CU_GRAPH_NODE_TYPE_GRAPH ? "graph" : "other");
    CHECK(cuGraphClone(&clone, g));
    CHECK(cuGraphNodeFindInClone(&found, n2, clone));
    CHECK(cuGraphNodeGetType(found, &t));
    printf("clone: the event node found, type %s\n",
           t == CU_GRAPH_NODE_TYPE_EVENT_RECORD ? "event record" : "other");
    CHECK(cuGraphInstantiateWithFlags(&e, clone, 0));
    CHECK(cuMemsetD32(m->a, 1, N));
    CHECK(cuGraphLaunch(e, s));
    CHECK(cuGraphLaunch(e, s));
    CHECK(cuStreamSynchronize(s));
    CHECK(cuEventSynchronize(ev));
    CHECK(cuMemcpyDtoH(host, m->d, sizeof(host)));
    printf("clone launched twice: d[0] = %d, event %s\n", host[0],
           cuEventQuery(ev) == CUDA_SUCCESS ? "complete" : "not complete");
    CHECK(cuGraphExecDestroy(e));
    CHECK(cuGraphDestroy(clone));
    CHECK(cuGraphDestroyNode(n2));
    CHECK(cuGraphDestroy(g));
    CHECK(cuEventDestroy(ev));
    if (getenv("VGPU_TEST_REFUSALS")) {
        /* the server knows these are gone: refused, never handed to the driver */
        printf("destroyed node: %s\n", name_of(cuGraphNodeGetType(n2, &t)));
        printf("destroyed graph's node: %s\n", name_of(cuGraphNodeGetType(n0, &t)));
        printf("destroyed graph's child graph: %s\n",
               name_of(cuGraphInstantiateWithFlags(&e, inner, 0)));
        printf("destroyed graph again: %s\n", name_of(cuGraphDestroy(g)));
        printf("destroyed executable graph: %s\n", name_of(cuGraphExecDestroy(e)));
    }
    return 0;
}

/* d as an int, after the stream finished. */
static int d0(CUstream s, const struct bufs *m, int *out)
{
    static int host[N];
    int bad = 0;

    CHECK(cuStreamSynchronize(s));
    CHECK(cuMemcpyDtoH(host, m->d, sizeof(host)));
    for (int i = 1; i < N; i++)
        bad += host[i] != host[0];
    *out = bad ? -1 : host[0];
    return 0;
}

/*
 * Nodes added one by one: b = 5 (memset), a = a + b (kernel), d = a
 * (memcpy); launched, then its executable's memset and kernel changed.
 */
static int explicit_nodes(CUstream s, const struct bufs *m)
{
    CUgraph g;
    CUgraphNode ns, nk, nc;
    CUgraphExec e;
    int n = N, v = 0, v2 = 0, v3 = 0;
    void *add_args[] = { (void *)&m->a, (void *)&m->a, (void *)&m->b, &n };
    void *twice_args[] = { (void *)&m->a, (void *)&m->b, (void *)&m->b, &n };
    CUDA_MEMSET_NODE_PARAMS ms = { .dst = m->b, .value = 5, .elementSize = 4, .width = N,
                                   .height = 1 };
    CUDA_KERNEL_NODE_PARAMS kp = { .func = m->add, .gridDimX = N / 256, .gridDimY = 1,
                                   .gridDimZ = 1, .blockDimX = 256, .blockDimY = 1,
                                   .blockDimZ = 1, .kernelParams = add_args };
    CUDA_MEMCPY3D cp = { .srcMemoryType = CU_MEMORYTYPE_DEVICE, .srcDevice = m->a,
                         .srcPitch = N * sizeof(int), .srcHeight = 1,
                         .dstMemoryType = CU_MEMORYTYPE_DEVICE, .dstDevice = m->d,
                         .dstPitch = N * sizeof(int), .dstHeight = 1,
                         .WidthInBytes = N * sizeof(int), .Height = 1, .Depth = 1 };
    CUcontext ctx;
    CUgraphExecUpdateResultInfo info = { 0 };

    CHECK(cuCtxGetCurrent(&ctx));
    CHECK(cuGraphCreate(&g, 0));
    CHECK(cuGraphAddMemsetNode(&ns, g, NULL, 0, &ms, ctx));
    CHECK(cuGraphAddKernelNode(&nk, g, &ns, 1, &kp));
    CHECK(cuGraphAddMemcpyNode(&nc, g, &nk, 1, &cp, ctx));
    CHECK(cuGraphInstantiateWithFlags(&e, g, 0));
    CHECK(cuMemsetD32(m->a, 1, N));
    for (int i = 0; i < 3; i++)
        CHECK(cuGraphLaunch(e, s));
    if (d0(s, m, &v))
        return 1;
    ms.value = 1;
    CHECK(cuGraphExecMemsetNodeSetParams(e, ns, &ms, ctx));
    kp.kernelParams = twice_args;
    CHECK(cuGraphExecKernelNodeSetParams(e, nk, &kp));
    CHECK(cuGraphLaunch(e, s));
    if (d0(s, m, &v2))
        return 1;
    CHECK(cuGraphMemsetNodeGetParams(ns, &ms));
    {
        CUDA_KERNEL_NODE_PARAMS back = { 0 };
        int nb = 0;
        CUdeviceptr p0 = 0;

        CHECK(cuGraphKernelNodeGetParams(nk, &back));
        memcpy(&p0, back.kernelParams[0], sizeof(p0));
        memcpy(&nb, back.kernelParams[3], sizeof(nb));
        printf("kernel node read back: %s function, grid %u, block %u, dst is a: %s, n %d\n",
               back.func == m->add ? "the same" : "another", back.gridDimX, back.blockDimX,
               p0 == m->a ? "yes" : "no", nb);
    }
    CHECK(cuGraphKernelNodeSetParams(nk, &kp));
    CHECK(cuGraphExecUpdate(e, g, &info));
    CHECK(cuGraphLaunch(e, s));
    if (d0(s, m, &v3))
        return 1;
    printf("explicit nodes: 3 launches d = %d; executable changed: d = %d; the graph's memset "
           "still %u; its kernel changed and the executable updated (%s): d = %d\n", v, v2,
           ms.value, info.result == CU_GRAPH_EXEC_UPDATE_SUCCESS ? "success" : "failed", v3);
    if (getenv("VGPU_TEST_REFUSALS")) {
        CUgraphNode bad;
        int host = 0;

        ms.dst = m->a + N * sizeof(int) - 4;
        ms.width = 2;
        printf("memset node past its allocation: %s\n",
               name_of(cuGraphAddMemsetNode(&bad, g, NULL, 0, &ms, ctx)));
        cp.srcMemoryType = CU_MEMORYTYPE_HOST;
        cp.srcHost = &host;
        printf("memcpy node from host memory: %s\n",
               name_of(cuGraphAddMemcpyNode(&bad, g, NULL, 0, &cp, ctx)));
        kp.func = (CUfunction)(void *)0x4321;
        printf("kernel node of a foreign function: %s\n",
               name_of(cuGraphAddKernelNode(&bad, g, NULL, 0, &kp)));
    }
    CHECK(cuGraphExecDestroy(e));
    CHECK(cuGraphDestroy(g));
    return 0;
}

/* The dot file of graph g begins like one. */
static int dot(CUgraph g)
{
    char path[] = "/tmp/drv_graph_dot.XXXXXX", head[8] = "";
    int fd = mkstemp(path);
    FILE *f;

    if (fd < 0)
        return 1;
    close(fd);
    CHECK(cuGraphDebugDotPrint(g, path, CU_GRAPH_DEBUG_DOT_FLAGS_VERBOSE));
    f = fopen(path, "r");
    if (f) {
        if (!fgets(head, sizeof(head), f))
            head[0] = 0;
        fclose(f);
    }
    unlink(path);
    printf("dot file: %s\n", !strncmp(head, "digraph", 7) ? "a digraph" : "not a digraph");
    return 0;
}

/* The first int of dptr's N, if all N are equal; -1 otherwise. */
static int all_equal(CUdeviceptr dptr, int *out)
{
    static int host[N];
    int bad = 0;

    CHECK(cuMemcpyDtoH(host, dptr, sizeof(host)));
    for (int i = 1; i < N; i++)
        bad += host[i] != host[0];
    *out = bad ? -1 : host[0];
    return 0;
}

/*
 * Graph memory: by hand, alloc p (N ints) -> memset p = 7 -> d = p -> free
 * p; captured, the same with 9 from cuMemAllocAsync and cuMemFreeAsync.
 * Each launched three times; the allocation's address is fixed, its node
 * parameters read back.
 */
static int mem_nodes(CUstream s, const struct bufs *m, CUdevice dev)
{
    CUmemAccessDesc acc = { .location = { .type = CU_MEM_LOCATION_TYPE_DEVICE, .id = dev },
                            .flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE };
    CUDA_MEM_ALLOC_NODE_PARAMS ap = { 0 }, back = { 0 };
    CUDA_MEMSET_NODE_PARAMS ms = { 0 };
    CUDA_MEMCPY3D cp = { 0 };
    CUgraphNode na, nm, nc, nf;
    CUcontext ctx;
    CUgraphNodeType ta, tf;
    CUgraph g, g2;
    CUgraphExec e, e2;
    CUdeviceptr freed = 0, p2 = 0;
    size_t n = 0, nalloc = 0, nfree = 0;
    CUgraphNode nodes[8];
    int v = 0, v2 = 0;

    ap.poolProps.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
    ap.poolProps.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    ap.poolProps.location.id = dev;
    ap.accessDescs = &acc;
    ap.accessDescCount = 1;
    ap.bytesize = N * sizeof(int);
    CHECK(cuGraphCreate(&g, 0));
    CHECK(cuGraphAddMemAllocNode(&na, g, NULL, 0, &ap));
    ms.dst = ap.dptr;
    ms.value = 7;
    ms.elementSize = 4;
    ms.width = N;
    ms.height = 1;
    /* a graph allocation's address is mapped only when the graph runs: the context is named */
    CHECK(cuCtxGetCurrent(&ctx));
    CHECK(cuGraphAddMemsetNode(&nm, g, &na, 1, &ms, ctx));
    cp.srcMemoryType = cp.dstMemoryType = CU_MEMORYTYPE_DEVICE;
    cp.srcDevice = ap.dptr;
    cp.dstDevice = m->d;
    cp.WidthInBytes = N * sizeof(int);
    cp.Height = cp.Depth = 1;
    CHECK(cuGraphAddMemcpyNode(&nc, g, &nm, 1, &cp, ctx));
    CHECK(cuGraphAddMemFreeNode(&nf, g, &nc, 1, ap.dptr));
    CHECK(cuGraphNodeGetType(na, &ta));
    CHECK(cuGraphNodeGetType(nf, &tf));
    CHECK(cuGraphMemAllocNodeGetParams(na, &back));
    CHECK(cuGraphMemFreeNodeGetParams(nf, &freed));
    printf("allocation node: type %s, %zu bytes, the same address: %s, %zu access descriptor "
           "(read-write: %s); free node: type %s, its address: %s\n",
           ta == CU_GRAPH_NODE_TYPE_MEM_ALLOC ? "alloc" : "other", back.bytesize,
           back.dptr == ap.dptr ? "yes" : "no", back.accessDescCount,
           back.accessDescCount == 1 &&
                   back.accessDescs[0].flags == CU_MEM_ACCESS_FLAGS_PROT_READWRITE ? "yes" : "no",
           tf == CU_GRAPH_NODE_TYPE_MEM_FREE ? "free" : "other", freed == ap.dptr ? "yes" : "no");
    CHECK(cuGraphInstantiateWithFlags(&e, g, 0));
    CHECK(cuMemsetD32(m->d, 0, N));
    for (int i = 0; i < 3; i++)
        CHECK(cuGraphLaunch(e, s));
    CHECK(cuStreamSynchronize(s));
    if (all_equal(m->d, &v))
        return 1;
    CHECK(cuGraphExecDestroy(e));
    CHECK(cuGraphDestroy(g));

    /* captured: the stream-ordered allocation and free become the graph's nodes */
    CHECK(cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_GLOBAL));
    CHECK(cuMemAllocAsync(&p2, N * sizeof(int), s));
    CHECK(cuMemsetD32Async(p2, 9, N, s));
    CHECK(cuMemcpyDtoDAsync(m->d, p2, N * sizeof(int), s));
    CHECK(cuMemFreeAsync(p2, s));
    CHECK(cuStreamEndCapture(s, &g2));
    n = 8;
    CHECK(cuGraphGetNodes(g2, nodes, &n));
    for (size_t i = 0; i < n; i++) {
        CUgraphNodeType t;

        CHECK(cuGraphNodeGetType(nodes[i], &t));
        nalloc += t == CU_GRAPH_NODE_TYPE_MEM_ALLOC;
        nfree += t == CU_GRAPH_NODE_TYPE_MEM_FREE;
    }
    CHECK(cuGraphInstantiateWithFlags(&e2, g2, 0));
    CHECK(cuMemsetD32(m->d, 0, N));
    for (int i = 0; i < 3; i++)
        CHECK(cuGraphLaunch(e2, s));
    CHECK(cuStreamSynchronize(s));
    if (all_equal(m->d, &v2))
        return 1;
    printf("graph memory nodes: by hand 3 launches d = %d; captured %zu allocation and %zu free "
           "node, 3 launches d = %d\n", v, nalloc, nfree, v2);
    CHECK(cuGraphExecDestroy(e2));
    CHECK(cuGraphDestroy(g2));
    return 0;
}

static int graph_memory(CUdevice dev)
{
    cuuint64_t v = 1, zero = 0;

    CHECK(cuDeviceGraphMemTrim(dev));
    CHECK(cuDeviceGetGraphMemAttribute(dev, CU_GRAPH_MEM_ATTR_USED_MEM_CURRENT, &v));
    CHECK(cuDeviceSetGraphMemAttribute(dev, CU_GRAPH_MEM_ATTR_USED_MEM_HIGH, &zero));
    printf("graph memory in use: %llu\n", (unsigned long long)v);
    return 0;
}

int main(void)
{
    CUdevice dev;
    CUcontext ctx;
    CUmodule mod;
    CUstream s;
    CUgraph g;
    CUgraphNode last;
    CUgraphNodeType t;
    CUgraphExec e1, e2;
    CUDA_GRAPH_INSTANTIATE_PARAMS ip = { 0 };
    cuuint64_t flags = 0;
    struct bufs m;

    setvbuf(stdout, NULL, _IOLBF, 0);
    CHECK(cuInit(0));
    CHECK(cuDeviceGet(&dev, 0));
    CHECK(cuDevicePrimaryCtxRetain(&ctx, dev));
    CHECK(cuCtxSetCurrent(ctx));
    CHECK(cuModuleLoadData(&mod, drv_test_ptx));
    CHECK(cuModuleGetFunction(&m.add, mod, "fake_add"));
    CHECK(cuMemAlloc(&m.a, N * sizeof(int)));
    CHECK(cuMemAlloc(&m.b, N * sizeof(int)));
    CHECK(cuMemAlloc(&m.d, N * sizeof(int)));
    CHECK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));

    if (capture(s, &m, &g, &last) || dot(g) || shape(g))
        return 1;
    CHECK(cuGraphNodeGetType(last, &t));
    printf("last captured node: %s\n", t == CU_GRAPH_NODE_TYPE_MEMCPY ? "a copy" : "another");
    CHECK(cuGraphInstantiateWithFlags(&e1, g, 0));
    CHECK(cuGraphUpload(e1, s));
    if (replay(e1, s, &m, LAUNCHES, "instantiated with flags"))
        return 1;
    ip.flags = CUDA_GRAPH_INSTANTIATE_FLAG_UPLOAD;
    ip.hUploadStream = s;
    CHECK(cuGraphInstantiateWithParams(&e2, g, &ip));
    CHECK(cuGraphExecGetFlags(e2, &flags));
    printf("instantiated with params: result %d, flags %llu\n", (int)ip.result_out,
           (unsigned long long)flags);
    if (replay(e2, s, &m, 7, "instantiated with params"))
        return 1;
    CHECK(cuGraphExecDestroy(e1));
    CHECK(cuGraphExecDestroy(e2));
    if (by_hand(s, g, &m))
        return 1;
    CHECK(cuGraphDestroy(g));

    if (explicit_nodes(s, &m) || mem_nodes(s, &m, dev) || illegal(s, &m) || graph_memory(dev))
        return 1;
    CHECK(cuStreamDestroy(s));
    CHECK(cuMemFree(m.a));
    CHECK(cuMemFree(m.b));
    CHECK(cuMemFree(m.d));
    CHECK(cuModuleUnload(mod));
    CHECK(cuDevicePrimaryCtxRelease(dev));
    printf("done\n");
    return 0;
}
