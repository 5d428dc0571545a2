/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Stream capture and CUDA graphs: the hand-written calls (codegen/spec/
 * cuda.spec "manual") and what the rest of the server asks about capture.
 * Graphs live here, on the real driver; the guest holds their handles
 * (CUgraph, CUgraphNode, CUgraphExec), each checked against the session's
 * table.  A capture records the session's real stream: the guest's queued
 * calls reach it in their order, on the one thread that serves the session,
 * and the driver reports illegal calls during a capture itself.
 *
 * Hand-written because they return what the generator cannot carry:
 * cuStreamGetCaptureInfo_v2/_v3 an array of node handles (and of edge
 * data) that the driver owns; cuGraphDestroy takes its nodes' handles out
 * of the table with it; cuGraphDebugDotPrint writes a file in the guest
 * (the driver writes it here into a memfd, the text travels back);
 * cuGraphInstantiateWithParams a struct holding handles.
 *
 * The session's work accounting (work.c) must not count launches into a
 * capturing stream, nor record its own events there (they would become
 * nodes of the program's graph): vgpu_graph_capturing() says which streams
 * capture, once the session has begun a capture at all.
 */
#include <cuda.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cuda_calltable.h"
#include "manual_internal.h"

/* Node handles one reply may carry, and dot text one reply may carry. */
#define GRAPH_DEPS_MAX 65536
#define GRAPH_NODES_MAX (1u << 22)
#define DOT_MAX (16u << 20)

#define SYM VGPU_DRIVER_SYM

static int kind(int cuda_kind)
{
    return vgpu_cuda_kind(cuda_kind);
}

/* NULL goes to the driver, which answers it; another graph than the session's is refused. */
static bool graph_ok(struct vgpu_session *s, uint64_t g)
{
    if (!g || vgpu_handle_known(s, kind(VGPU_CUDA_H_GRAPH), g))
        return true;
    vgpu_log(VGPU_LOG_INFO, "refused graph %#llx: not this session's", (unsigned long long)g);
    return false;
}

bool vgpu_graph_capturing(struct vgpu_session *s, void *stream)
{
    static __typeof__(&cuStreamIsCapturing) is_capturing;
    static bool tried;
    CUstreamCaptureStatus st = CU_STREAM_CAPTURE_STATUS_NONE;

    /* the legacy stream never captures (and asking about it may fail while another does) */
    if (!s->capture_seen || !stream || stream == CU_STREAM_LEGACY)
        return false;
    if (!tried) {
        tried = true;
        is_capturing = (__typeof__(&cuStreamIsCapturing))(void *)vgpu_driver_sym(
            "cuStreamIsCapturing");
    }
    return is_capturing && is_capturing((CUstream)stream, &st) == CUDA_SUCCESS &&
           st != CU_STREAM_CAPTURE_STATUS_NONE;
}

/*
 * The server's own calls on the session's thread (work.c's events) must
 * neither fail nor invalidate a capture the program has under way in
 * global or thread-local mode: they run in relaxed mode, and the mode the
 * program set is put back after.
 */
int vgpu_graph_relax(struct vgpu_session *s)
{
    static __typeof__(&cuThreadExchangeStreamCaptureMode) exchange;
    static bool tried;
    CUstreamCaptureMode m = CU_STREAM_CAPTURE_MODE_RELAXED;

    if (!s->capture_seen)
        return -1;
    if (!tried) {
        tried = true;
        exchange = (__typeof__(&cuThreadExchangeStreamCaptureMode))(void *)vgpu_driver_sym(
            "cuThreadExchangeStreamCaptureMode");
    }
    return exchange && exchange(&m) == CUDA_SUCCESS ? (int)m : -1;
}

void vgpu_graph_unrelax(int mode)
{
    CUstreamCaptureMode m = (CUstreamCaptureMode)mode;
    __typeof__(&cuThreadExchangeStreamCaptureMode) exchange;

    if (mode < 0)
        return;
    exchange = (__typeof__(&cuThreadExchangeStreamCaptureMode))(void *)vgpu_driver_sym(
        "cuThreadExchangeStreamCaptureMode");
    if (exchange)
        exchange(&m);
}

/*
 * The ids the guest libraries give their staging regions (shim_internal.h
 * VGPU_SHIM_STAGING_REGION, shim/driver/driver_internal.h
 * VGPU_DRV_STAGING_REGION): memory they reuse for the next copy.
 */
#define RT_STAGING_REGION 1u
#define DRV_STAGING_REGION 0x80000001u

/*
 * A captured copy keeps its host address and reads or writes it at every
 * launch of the graph.  Page-locked memory the program allocated (a shared
 * region) stays the program's; bytes that travel in the frame, or through
 * a staging region the guest reuses, would not be there then: such a copy
 * into a capturing stream is refused rather than recorded wrong.
 */
bool vgpu_graph_copy_refused(struct vgpu_session *s, void *stream, uint32_t region)
{
    if ((region && region != RT_STAGING_REGION && region != DRV_STAGING_REGION) ||
        !vgpu_graph_capturing(s, stream))
        return false;
    vgpu_log(VGPU_LOG_WARN, "an asynchronous copy of pageable host memory into a capturing "
             "stream cannot be replayed by a graph through vgpu: refused "
             "(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED); capture copies from page-locked memory "
             "(cuMemAllocHost, cudaMallocHost) instead");
    return true;
}

/*
 * What a capturing stream may not take (logged with why): an allocation
 * from a pool the program made (cuMemAllocFromPoolAsync,
 * cudaMallocFromPoolAsync: its graph memory is not charged per executable
 * graph yet), and a free of memory no allocation node made.
 */
bool vgpu_graph_alloc_refused(struct vgpu_session *s, void *stream, const char *what,
                              const char *why)
{
    if (!vgpu_graph_capturing(s, stream))
        return false;
    vgpu_log(VGPU_LOG_WARN, "vm %u: %s on a capturing stream refused "
             "(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED): %s", s->who.vm_id, what, why);
    return true;
}

/* ---- conditional nodes ---- */

#define COND_BODIES_MAX 1024

/*
 * Node went: its bodies' entries go too (their handles went with it), and
 * so does the conditional handle it used (the driver's, made for it).
 */
static void cond_bodies_gone(struct vgpu_session *s, uint64_t node)
{
    for (int i = s->ncond_bodies - 1; i >= 0; i--)
        if (s->cond_bodies[i].node == node) {
            vgpu_handle_remove(s, kind(VGPU_CUDA_H_GRAPH_CONDITIONAL), s->cond_bodies[i].handle);
            s->cond_bodies[i] = s->cond_bodies[--s->ncond_bodies];
        }
}

/*
 * cuGraphAddNode (and _v2) of a conditional node: the shim sends the other
 * node types as their own calls.  The handle must be the session's, the
 * body count what the type allows; the body graphs the driver makes are
 * the session's, and go with their node.
 */
static int h_add_cond(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__CondNodeArgs, cond_node_args, c);
    Vgpu__Manual__CondNodeRet r = VGPU__MANUAL__COND_NODE_RET__INIT;
    SYM(add, cuGraphAddNode_v2);
    SYM(destroy_node, cuGraphDestroyNode);
    CUgraphNodeParams p;
    CUgraphNode node = NULL;
    struct vgpu_cond_body *t;
    unsigned max = a->type == CU_GRAPH_COND_TYPE_IF ? 2 : a->type == CU_GRAPH_COND_TYPE_WHILE
                                                          ? 1 : COND_BODIES_MAX;
    int st = CUDA_ERROR_NOT_SUPPORTED;

    if (!add || !destroy_node)
        goto out;
    st = CUDA_ERROR_INVALID_HANDLE;
    if (!vgpu_graph_node_handles_ok(s, a->graph, a->deps, a->n_deps, 0, 0, true) ||
        !vgpu_handle_known(s, kind(VGPU_CUDA_H_GRAPH_CONDITIONAL), a->handle) ||
        (a->ctx && !vgpu_handle_known(s, kind(VGPU_CUDA_H_CONTEXT), a->ctx)))
        goto out;
    st = CUDA_ERROR_INVALID_VALUE;
    if (a->type < CU_GRAPH_COND_TYPE_IF || a->type > CU_GRAPH_COND_TYPE_SWITCH || !a->size ||
        a->size > max)
        goto out;
    st = CUDA_ERROR_OUT_OF_MEMORY;
    if (s->ncond_bodies > INT32_MAX / 2 - (int)a->size ||
        !(t = realloc(s->cond_bodies, (size_t)(s->ncond_bodies + (int)a->size) * sizeof(*t))))
        goto out;
    s->cond_bodies = t;
    memset(&p, 0, sizeof(p));
    p.type = CU_GRAPH_NODE_TYPE_CONDITIONAL;
    p.conditional.handle = a->handle;
    p.conditional.type = (CUgraphConditionalNodeType)a->type;
    p.conditional.size = a->size;
    p.conditional.ctx = (CUcontext)(uintptr_t)a->ctx;
    st = add(&node, (CUgraph)(uintptr_t)a->graph, (const CUgraphNode *)a->deps, NULL, a->n_deps,
             &p);
    if (st != CUDA_SUCCESS)
        goto out;
    st = CUDA_ERROR_OUT_OF_MEMORY;
    if (!p.conditional.phGraph_out ||
        !(r.bodies = vgpu_arena_alloc(c->arena, a->size * sizeof(*r.bodies))) ||
        vgpu_graph_node_made(s, (uint64_t)(uintptr_t)node))
        goto undo;
    for (unsigned i = 0; i < a->size; i++) {
        r.bodies[i] = (uint64_t)(uintptr_t)p.conditional.phGraph_out[i];
        if (vgpu_handle_add(s, kind(VGPU_CUDA_H_GRAPH), r.bodies[i])) {
            while (i--)
                vgpu_handle_remove(s, kind(VGPU_CUDA_H_GRAPH), r.bodies[i]);
            vgpu_handle_remove(s, kind(VGPU_CUDA_H_GRAPH_NODE), (uint64_t)(uintptr_t)node);
            goto undo;
        }
    }
    for (unsigned i = 0; i < a->size; i++)
        s->cond_bodies[s->ncond_bodies++] = (struct vgpu_cond_body){ (uint64_t)(uintptr_t)node,
                                                                     r.bodies[i], a->handle };
    r.node = (uint64_t)(uintptr_t)node;
    r.n_bodies = a->size;
    st = reply(c, &r.base);
    goto out;
undo:
    destroy_node(node);
out:
    vgpu__manual__cond_node_args__free_unpacked(a, &unpack_alloc_);
    return st;
}

/* ---- graph memory: allocation nodes ---- */

/*
 * An allocation node's address is fixed when the node is made (by hand,
 * or by capturing a stream-ordered allocation), and every launch of the
 * graph's executable graph makes its memory again there.  So:
 *   - the node's range is session memory from then on, while its graph or
 *     that graph's executable graph lives (CUDA lets a graph with memory
 *     nodes have one executable graph at a time);
 *   - what an executable graph's allocation nodes may hold at once (the
 *     sum of their sizes) is charged to the VM's memory limit from
 *     instantiation to cuGraphExecDestroy, when the driver is also asked
 *     to give back graph memory no executable graph holds
 *     (cuDeviceGraphMemTrim).
 * Memory a launch allocated and nothing freed yet outlives its executable
 * graph: at cuGraphExecDestroy (after the trim), each of its allocations
 * that no free node of its graph frees and that the driver still has
 * mapped (cuMemGetAddressRange) is charged on its own, whatever the limit
 * says (it exists already; the next allocation finds the limit full),
 * until the program frees it, a new executable graph of the same graph
 * takes it into its own charge, or the device is reset.  Its range stays
 * session memory meanwhile.
 */
#define GRAPH_MEM_MAX 65536

uint64_t vgpu_graph_capture_graph(struct vgpu_session *s, void *stream)
{
    SYM(info, cuStreamGetCaptureInfo_v3);
    CUstreamCaptureStatus st = CU_STREAM_CAPTURE_STATUS_NONE;
    CUgraph g = NULL;

    if (!info || !vgpu_graph_capturing(s, stream) ||
        info((CUstream)stream, &st, NULL, &g, NULL, NULL, NULL) != CUDA_SUCCESS ||
        st != CU_STREAM_CAPTURE_STATUS_ACTIVE)
        return 0;
    return (uint64_t)(uintptr_t)g;
}

static void graph_mem_drop(struct vgpu_session *s, int i);

/* Drops the entries overlapping [base, base + size), except those of graph keep. */
static void graph_mem_stale(struct vgpu_session *s, uint64_t base, uint64_t size, uint64_t keep)
{
    for (int i = s->ngraph_mem - 1; i >= 0; i--)
        if (s->graph_mem[i].dptr < base + size &&
            base < s->graph_mem[i].dptr + s->graph_mem[i].size &&
            (!keep || s->graph_mem[i].graph != keep))
            graph_mem_drop(s, i);
}

/*
 * The driver just gave [base, base + size) to a new allocation: an
 * allocation node's entry there is stale (its graph went without this
 * session seeing it: a capture that ended in an error).
 */
void vgpu_graph_mem_stale(struct vgpu_session *s, uint64_t base, uint64_t size)
{
    graph_mem_stale(s, base, size, 0);
}

int vgpu_graph_mem_reserve(struct vgpu_session *s)
{
    struct vgpu_graph_mem *t;

    if (s->ngraph_mem >= GRAPH_MEM_MAX) {
        vgpu_log(VGPU_LOG_WARN, "vm %u: a session holds at most %d graph allocation nodes' memory "
                 "at once (destroy graphs it no longer needs)", s->who.vm_id, GRAPH_MEM_MAX);
        return -ENOMEM;
    }
    if (!(t = realloc(s->graph_mem, (size_t)(s->ngraph_mem + 1) * sizeof(*t))))
        return -ENOMEM;
    s->graph_mem = t;
    return vgpu_range_reserve(s, 1);
}

/*
 * Within one graph CUDA may give allocations whose lifetimes do not
 * overlap the same address: those entries stay side by side; another
 * graph's there are stale.
 */
int vgpu_graph_mem_add(struct vgpu_session *s, uint64_t graph, uint64_t dptr, uint64_t size)
{
    graph_mem_stale(s, dptr, size, graph);
    if (vgpu_graph_mem_reserve(s) || vgpu_range_add(s, dptr, size, true))
        return -ENOMEM;
    s->ranges[s->nranges - 1].graph = true;
    s->graph_mem[s->ngraph_mem++] = (struct vgpu_graph_mem){ graph, 0, dptr, size, false, false };
    return 0;
}

/* Entry i's own charge (memory left allocated past its executable graph) goes. */
static void graph_mem_uncharge(struct vgpu_session *s, int i)
{
    if (s->graph_mem[i].charged)
        vgpu_memory_charge(s, -(int64_t)s->graph_mem[i].size);
    s->graph_mem[i].charged = false;
}

void vgpu_graph_mem_freed(struct vgpu_session *s, uint64_t ptr)
{
    for (int i = s->ngraph_mem - 1; i >= 0; i--)
        if (s->graph_mem[i].dptr == ptr) {
            graph_mem_uncharge(s, i);
            if (!s->graph_mem[i].graph && !s->graph_mem[i].exec)
                graph_mem_drop(s, i);   /* an orphan's memory is gone now */
            break;
        }
}


/* Entry i goes: its range is no session memory any more, its own charge goes too. */
static void graph_mem_drop(struct vgpu_session *s, int i)
{
    graph_mem_uncharge(s, i);
    vgpu_range_remove_graph(s, s->graph_mem[i].dptr);
    s->graph_mem[i] = s->graph_mem[--s->ngraph_mem];
}

/* Before graph g goes: which of its allocations its own free nodes free. */
static void graph_mem_mark_freed(struct vgpu_session *s, uint64_t g)
{
    SYM(get_nodes, cuGraphGetNodes);
    SYM(get_type, cuGraphNodeGetType);
    SYM(get_free, cuGraphMemFreeNodeGetParams);
    CUgraphNode *nodes = NULL;
    size_t n = 0;
    bool any = false;

    for (int i = 0; i < s->ngraph_mem && !any; i++)
        any = s->graph_mem[i].graph == g;
    if (!any || !get_nodes || !get_type || !get_free ||
        get_nodes((CUgraph)(uintptr_t)g, NULL, &n) != CUDA_SUCCESS || !n ||
        n > GRAPH_NODES_MAX || !(nodes = calloc(n, sizeof(*nodes))))
        return;
    if (get_nodes((CUgraph)(uintptr_t)g, nodes, &n) == CUDA_SUCCESS)
        for (size_t k = 0; k < n; k++) {
            CUgraphNodeType t;
            CUdeviceptr d;

            if (get_type(nodes[k], &t) != CUDA_SUCCESS || t != CU_GRAPH_NODE_TYPE_MEM_FREE ||
                get_free(nodes[k], &d) != CUDA_SUCCESS)
                continue;
            for (int i = 0; i < s->ngraph_mem; i++)
                if (s->graph_mem[i].graph == g && s->graph_mem[i].dptr == d)
                    s->graph_mem[i].freed_in_graph = true;
        }
    free(nodes);
}

/*
 * Graph g was destroyed: its nodes' memory goes once no executable graph of
 * it lives, except what a launch left allocated (charged on its own), which
 * stays the session's until the program frees it (an orphan: no graph, no
 * executable graph).
 */
static void graph_mem_graph_gone(struct vgpu_session *s, uint64_t g)
{
    for (int i = s->ngraph_mem - 1; i >= 0; i--)
        if (s->graph_mem[i].graph == g) {
            s->graph_mem[i].graph = 0;
            if (!s->graph_mem[i].exec &&
                (s->graph_mem[i].freed_in_graph || !s->graph_mem[i].charged))
                graph_mem_drop(s, i);
        }
}

/* The sizes of graph g's allocation nodes added up (child graphs too, 64 deep at most). */
static int alloc_bytes(CUgraph g, int depth, uint64_t *sum)
{
    SYM(get_nodes, cuGraphGetNodes);
    SYM(get_type, cuGraphNodeGetType);
    SYM(get_alloc, cuGraphMemAllocNodeGetParams);
    SYM(child, cuGraphChildGraphNodeGetGraph);
    CUgraphNode *nodes = NULL;
    size_t n = 0;
    int st;

    if (!get_nodes || !get_type || depth > 64)
        return CUDA_ERROR_NOT_SUPPORTED;
    if ((st = get_nodes(g, NULL, &n)) != CUDA_SUCCESS || !n)
        return st;
    if (n > GRAPH_NODES_MAX || !(nodes = calloc(n, sizeof(*nodes))))
        return CUDA_ERROR_OUT_OF_MEMORY;
    if ((st = get_nodes(g, nodes, &n)) == CUDA_SUCCESS)
        for (size_t i = 0; i < n && st == CUDA_SUCCESS; i++) {
            CUgraphNodeType t;
            CUDA_MEM_ALLOC_NODE_PARAMS p;
            CUgraph cg;

            if ((st = get_type(nodes[i], &t)) != CUDA_SUCCESS)
                break;
            if (t == CU_GRAPH_NODE_TYPE_MEM_ALLOC) {
                if (!get_alloc || (st = get_alloc(nodes[i], &p)) != CUDA_SUCCESS)
                    st = get_alloc ? st : CUDA_ERROR_NOT_SUPPORTED;
                else if (p.bytesize > UINT64_MAX / 2 - *sum)
                    st = CUDA_ERROR_OUT_OF_MEMORY;
                else
                    *sum += p.bytesize;
            } else if (t == CU_GRAPH_NODE_TYPE_GRAPH && child &&
                       (st = child(nodes[i], &cg)) == CUDA_SUCCESS) {
                st = alloc_bytes(cg, depth + 1, sum);
            }
        }
    free(nodes);
    return st;
}

/*
 * exec, just instantiated from graph: charged what its allocation nodes
 * may hold at once.  0; or nonzero with exec destroyed (over the VM's
 * limit, or the graph could not be read: logged).
 */
static int exec_mem_charge(struct vgpu_session *s, uint64_t graph, CUgraphExec exec)
{
    SYM(destroy_exec, cuGraphExecDestroy);
    struct vgpu_exec_mem *t = NULL;
    uint64_t bytes = 0;
    int st;

    if (!graph)
        return 0;       /* a NULL graph: the driver refused it */
    st = alloc_bytes((CUgraph)(uintptr_t)graph, 0, &bytes);
    if (st == CUDA_SUCCESS && bytes &&
        !(t = realloc(s->exec_mem, (size_t)(s->nexec_mem + 1) * sizeof(*t))))
        st = CUDA_ERROR_OUT_OF_MEMORY;
    if (t)
        s->exec_mem = t;
    if (st == CUDA_SUCCESS && bytes && vgpu_memory_charge(s, (int64_t)bytes)) {
        vgpu_log(VGPU_LOG_WARN, "vm %u: graph instantiation refused: its allocation nodes may "
                 "hold %llu bytes at once, more than the VM's memory limit leaves",
                 s->who.vm_id, (unsigned long long)bytes);
        st = CUDA_ERROR_OUT_OF_MEMORY;
    }
    if (st != CUDA_SUCCESS) {
        if (destroy_exec)
            destroy_exec(exec);
        return st;
    }
    if (!bytes)
        return 0;
    s->exec_mem[s->nexec_mem++] = (struct vgpu_exec_mem){ (uint64_t)(uintptr_t)exec, bytes };
    for (int i = 0; i < s->ngraph_mem; i++)
        if (s->graph_mem[i].graph == graph) {
            s->graph_mem[i].exec = (uint64_t)(uintptr_t)exec;
            graph_mem_uncharge(s, i);   /* what an earlier launch left: in the new charge */
        }
    return 0;
}

/*
 * exec was destroyed: its charge goes; each of its allocations that the
 * driver still has mapped once unheld graph memory went back (a launch
 * left it allocated, no free node freed it) is charged on its own; memory
 * of a destroyed graph that is not allocated any more, or that its free
 * nodes free, goes.
 */
static void exec_mem_gone(struct vgpu_session *s, uint64_t exec)
{
    SYM(trim, cuDeviceGraphMemTrim);
    SYM(range, cuMemGetAddressRange_v2);
    bool charged = false;

    for (int i = 0; i < s->nexec_mem; i++)
        if (s->exec_mem[i].exec == exec) {
            vgpu_memory_charge(s, -(int64_t)s->exec_mem[i].bytes);
            s->exec_mem[i] = s->exec_mem[--s->nexec_mem];
            charged = true;
            break;
        }
    /* what no executable graph holds goes back, on every device the session used */
    for (int d = 0; charged && trim && d < 64; d++)
        if (s->devices_used & (1ull << d))
            trim(d);
    for (int i = s->ngraph_mem - 1; i >= 0; i--) {
        struct vgpu_graph_mem *m = &s->graph_mem[i];
        CUdeviceptr base = 0;
        size_t size = 0;

        if (m->exec != exec)
            continue;
        m->exec = 0;
        if (!m->freed_in_graph && range && range(&base, &size, m->dptr) == CUDA_SUCCESS) {
            if (!m->charged)
                vgpu_memory_charge_force(s, (int64_t)m->size);
            m->charged = true;
        } else if (!m->graph) {
            graph_mem_drop(s, i);
        }
    }
}

static void mem_prop_out(const CUmemPoolProps *p, Vgpu__Manual__MemProp *m,
                         Vgpu__Manual__MemLocation *loc)
{
    m->type = p->allocType;
    m->handle_types = p->handleTypes;
    loc->type = p->location.type;
    loc->id = p->location.id;
    m->location = loc;
    m->usage = p->usage;
    m->max_size = p->maxSize;
}

#define ACCESS_MAX 64

static int h_add_mem_alloc(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__MemAllocNodeArgs, mem_alloc_node_args, c);
    Vgpu__Manual__MemAllocNodeRet r = VGPU__MANUAL__MEM_ALLOC_NODE_RET__INIT;
    SYM(add, cuGraphAddMemAllocNode);
    SYM(destroy_node, cuGraphDestroyNode);
    CUmemAccessDesc access[ACCESS_MAX];
    CUDA_MEM_ALLOC_NODE_PARAMS p;
    CUgraphNode node = NULL;
    int st = CUDA_ERROR_NOT_SUPPORTED;

    memset(&p, 0, sizeof(p));
    if (!add || !destroy_node)
        goto out;
    st = CUDA_ERROR_INVALID_HANDLE;
    if (!vgpu_graph_node_handles_ok(s, a->graph, a->deps, a->n_deps, 0, 0, true))
        goto out;
    st = CUDA_ERROR_INVALID_VALUE;
    if (!a->prop || a->n_access > ACCESS_MAX || !a->bytesize || a->bytesize > INT64_MAX / 2)
        goto out;
    if ((st = vgpu_vmm_pool_props_in(a->prop, &p.poolProps)) ||
        (st = vgpu_vmm_access_descs_in(a->access, a->n_access, access)))
        goto out;
    p.accessDescs = a->n_access ? access : NULL;
    p.accessDescCount = a->n_access;
    p.bytesize = a->bytesize;
    /* room first: the driver does not destroy a node of a graph with memory nodes */
    if (vgpu_graph_mem_reserve(s)) {
        st = CUDA_ERROR_OUT_OF_MEMORY;
        goto out;
    }
    st = add(&node, (CUgraph)(uintptr_t)a->graph, (const CUgraphNode *)a->deps, a->n_deps, &p);
    if (st != CUDA_SUCCESS)
        goto out;
    if (vgpu_graph_mem_add(s, a->graph, p.dptr, p.bytesize) ||
        vgpu_graph_node_made(s, (uint64_t)(uintptr_t)node)) {
        /* the node stays in its graph (charged when instantiated) without a handle here */
        st = CUDA_ERROR_OUT_OF_MEMORY;
        goto out;
    }
    r.node = (uint64_t)(uintptr_t)node;
    r.dptr = p.dptr;
    st = reply(c, &r.base);
out:
    vgpu__manual__mem_alloc_node_args__free_unpacked(a, &unpack_alloc_);
    return st;
}

static int h_mem_alloc_get(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__NodeArgs, node_args, c);
    Vgpu__Manual__MemAllocNodeRet r = VGPU__MANUAL__MEM_ALLOC_NODE_RET__INIT;
    Vgpu__Manual__MemProp prop = VGPU__MANUAL__MEM_PROP__INIT;
    Vgpu__Manual__MemLocation loc = VGPU__MANUAL__MEM_LOCATION__INIT;
    Vgpu__Manual__AccessDesc acc[ACCESS_MAX];
    Vgpu__Manual__MemLocation acc_loc[ACCESS_MAX];
    Vgpu__Manual__AccessDesc *accp[ACCESS_MAX];
    SYM(get, cuGraphMemAllocNodeGetParams);
    CUDA_MEM_ALLOC_NODE_PARAMS p;
    int st = CUDA_ERROR_NOT_SUPPORTED;

    if (!get)
        goto out;
    st = CUDA_ERROR_INVALID_HANDLE;
    if (!vgpu_graph_node_handles_ok(s, 0, NULL, 0, a->node, 0, false))
        goto out;
    memset(&p, 0, sizeof(p));
    if ((st = get((CUgraphNode)(uintptr_t)a->node, &p)) != CUDA_SUCCESS)
        goto out;
    if (p.accessDescCount > ACCESS_MAX || (p.accessDescCount && !p.accessDescs)) {
        st = CUDA_ERROR_NOT_SUPPORTED;
        goto out;
    }
    mem_prop_out(&p.poolProps, &prop, &loc);
    for (size_t i = 0; i < p.accessDescCount; i++) {
        vgpu__manual__access_desc__init(&acc[i]);
        vgpu__manual__mem_location__init(&acc_loc[i]);
        acc_loc[i].type = p.accessDescs[i].location.type;
        acc_loc[i].id = p.accessDescs[i].location.id;
        acc[i].location = &acc_loc[i];
        acc[i].flags = p.accessDescs[i].flags;
        accp[i] = &acc[i];
    }
    r.prop = &prop;
    r.access = accp;
    r.n_access = p.accessDescCount;
    r.bytesize = p.bytesize;
    r.dptr = p.dptr;
    st = reply(c, &r.base);
out:
    vgpu__manual__node_args__free_unpacked(a, &unpack_alloc_);
    return st;
}

/* ---- cuStreamGetCaptureInfo_v2 / _v3 ---- */

/* The driver's answer put in r: handles into the table, edge data as bytes. */
static int capture_info_reply(struct vgpu_session *s, struct vgpu_manual_call *c,
                              const Vgpu__Manual__CaptureInfoArgs *a,
                              Vgpu__Manual__CaptureInfoRet *r,
                              CUgraph g, const CUgraphNode *deps, const CUgraphEdgeData *edges,
                              size_t n)
{
    if (a->want_graph && g) {
        if (vgpu_handle_add(s, kind(VGPU_CUDA_H_GRAPH), (uint64_t)(uintptr_t)g))
            return CUDA_ERROR_OUT_OF_MEMORY;
        r->graph = (uint64_t)(uintptr_t)g;
    }
    if (a->want_deps && deps && n) {
        if (n > GRAPH_DEPS_MAX)
            return CUDA_ERROR_NOT_SUPPORTED;
        if (!(r->deps = vgpu_arena_alloc(c->arena, n * sizeof(*r->deps))))
            return CUDA_ERROR_OUT_OF_MEMORY;
        for (size_t i = 0; i < n; i++) {
            r->deps[i] = (uint64_t)(uintptr_t)deps[i];
            if (vgpu_handle_add(s, kind(VGPU_CUDA_H_GRAPH_NODE), r->deps[i]))
                return CUDA_ERROR_OUT_OF_MEMORY;
        }
        r->n_deps = n;
    }
    r->edges_null = edges == NULL;
    if (a->want_edges && edges && n) {
        r->edges.data = (uint8_t *)(uintptr_t)edges;
        r->edges.len = n * sizeof(*edges);
    }
    return CUDA_SUCCESS;
}

typedef CUresult (*info_v2_fn)(CUstream, CUstreamCaptureStatus *, cuuint64_t *, CUgraph *,
                              const CUgraphNode **, size_t *);
typedef CUresult (*info_v3_fn)(CUstream, CUstreamCaptureStatus *, cuuint64_t *, CUgraph *,
                              const CUgraphNode **, const CUgraphEdgeData **, size_t *);

_Static_assert(sizeof(CUgraphEdgeData) == 8, "edge data travels as 8 bytes each");

/* The driver's own function of the name the guest called (v2 or v3, plain or _ptsz). */
static int capture_info(struct vgpu_session *s, struct vgpu_manual_call *c, const char *name,
                        bool v3)
{
    UNPACK(Vgpu__Manual__CaptureInfoArgs, capture_info_args, c);
    Vgpu__Manual__CaptureInfoRet r = VGPU__MANUAL__CAPTURE_INFO_RET__INIT;
    void (*fn)(void) = vgpu_driver_sym(name);
    CUstreamCaptureStatus status = CU_STREAM_CAPTURE_STATUS_NONE;
    cuuint64_t id = 0;
    CUgraph g = NULL;
    const CUgraphNode *deps = NULL;
    const CUgraphEdgeData *edges = NULL;
    size_t n = 0;
    int st = CUDA_ERROR_NOT_SUPPORTED;

    if (!fn)
        goto out;
    st = CUDA_ERROR_INVALID_HANDLE;
    if (!stream_ok(s, a->stream))
        goto out;
    if (v3)
        st = ((info_v3_fn)fn)((CUstream)(uintptr_t)a->stream, &status, a->want_id ? &id : NULL,
                              a->want_graph ? &g : NULL, a->want_deps ? &deps : NULL,
                              a->want_edges ? &edges : NULL, a->want_count ? &n : NULL);
    else
        st = ((info_v2_fn)fn)((CUstream)(uintptr_t)a->stream, &status, a->want_id ? &id : NULL,
                              a->want_graph ? &g : NULL, a->want_deps ? &deps : NULL,
                              a->want_count ? &n : NULL);
    if (st != CUDA_SUCCESS)
        goto out;
    r.status = status;
    r.id = id;
    if (status == CU_STREAM_CAPTURE_STATUS_ACTIVE && a->want_count)
        r.count = n;
    if (status == CU_STREAM_CAPTURE_STATUS_ACTIVE &&
        (st = capture_info_reply(s, c, a, &r, g, deps, edges, a->want_count ? n : 0)))
        goto out;
    st = reply(c, &r.base);
out:
    vgpu__manual__capture_info_args__free_unpacked(a, &unpack_alloc_);
    return st;
}

static int h_capture_info_v2(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    return capture_info(s, c, "cuStreamGetCaptureInfo_v2", false);
}

static int h_capture_info_v2_ptsz(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    return capture_info(s, c, "cuStreamGetCaptureInfo_v2_ptsz", false);
}

static int h_capture_info_v3(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    return capture_info(s, c, "cuStreamGetCaptureInfo_v3", true);
}

static int h_capture_info_v3_ptsz(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    return capture_info(s, c, "cuStreamGetCaptureInfo_v3_ptsz", true);
}

/* ---- cuGraphDestroy ---- */

/* Handles that go with a graph or node: what the driver frees with it. */
struct doomed {
    uint64_t *h;
    int *kind;
    size_t n, cap;
    struct vgpu_session *s;     /* whose conditional bodies are known */
};

static int doom(struct doomed *d, int k, uint64_t h)
{
    if (d->n == d->cap) {
        size_t cap = d->cap ? 2 * d->cap : 64;
        uint64_t *nh = realloc(d->h, cap * sizeof(*nh));
        int *nk;

        if (!nh)
            return CUDA_ERROR_OUT_OF_MEMORY;
        d->h = nh;
        if (!(nk = realloc(d->kind, cap * sizeof(*nk))))
            return CUDA_ERROR_OUT_OF_MEMORY;
        d->kind = nk;
        d->cap = cap;
    }
    if (d->n >= GRAPH_NODES_MAX)
        return CUDA_ERROR_OUT_OF_MEMORY;
    d->h[d->n] = h;
    d->kind[d->n++] = k;
    return CUDA_SUCCESS;
}

static int doom_graph(struct doomed *d, CUgraph g, int depth);

/*
 * Node n, and when it holds a child graph, that graph and everything in it;
 * a conditional node's body graphs likewise.
 */
static int doom_node(struct doomed *d, CUgraphNode n, int depth)
{
    SYM(get_type, cuGraphNodeGetType);
    SYM(child, cuGraphChildGraphNodeGetGraph);
    CUgraphNodeType t;
    CUgraph g = NULL;
    int st;

    if ((st = doom(d, kind(VGPU_CUDA_H_GRAPH_NODE), (uint64_t)(uintptr_t)n)))
        return st;
    if (get_type && get_type(n, &t) == CUDA_SUCCESS && t == CU_GRAPH_NODE_TYPE_CONDITIONAL) {
        for (int i = 0; i < d->s->ncond_bodies; i++)
            if (d->s->cond_bodies[i].node == (uint64_t)(uintptr_t)n &&
                ((st = doom(d, kind(VGPU_CUDA_H_GRAPH), d->s->cond_bodies[i].graph)) ||
                 (st = doom_graph(d, (CUgraph)(uintptr_t)d->s->cond_bodies[i].graph,
                                  depth + 1))))
                return st;
        return CUDA_SUCCESS;
    }
    if (!get_type || get_type(n, &t) != CUDA_SUCCESS || t != CU_GRAPH_NODE_TYPE_GRAPH)
        return CUDA_SUCCESS;
    if (!child || (st = child(n, &g)) != CUDA_SUCCESS)
        return child ? st : CUDA_ERROR_NOT_SUPPORTED;
    if ((st = doom(d, kind(VGPU_CUDA_H_GRAPH), (uint64_t)(uintptr_t)g)))
        return st;
    return doom_graph(d, g, depth + 1);
}

/* Every node of graph g, child graphs included (nested at most 64 deep). */
static int doom_graph(struct doomed *d, CUgraph g, int depth)
{
    SYM(get_nodes, cuGraphGetNodes);
    CUgraphNode *nodes = NULL;
    size_t n = 0;
    int st;

    if (!get_nodes)
        return CUDA_ERROR_NOT_SUPPORTED;
    if (depth > 64)
        return CUDA_ERROR_NOT_SUPPORTED;
    if ((st = get_nodes(g, NULL, &n)) != CUDA_SUCCESS || !n)
        return st;
    if (n > GRAPH_NODES_MAX || !(nodes = calloc(n, sizeof(*nodes))))
        return CUDA_ERROR_OUT_OF_MEMORY;
    if ((st = get_nodes(g, nodes, &n)) == CUDA_SUCCESS)
        for (size_t i = 0; i < n && st == CUDA_SUCCESS; i++)
            st = doom_node(d, nodes[i], depth);
    free(nodes);
    return st;
}

/*
 * Is g the graph embedded in one of the session's child graph nodes (as
 * cuGraphChildGraphNodeGetGraph hands it out)?  Such a graph is the node's:
 * destroying it would have the driver free it twice, once more with its parent.
 */
static bool embedded_graph(struct vgpu_session *s, uint64_t g)
{
    SYM(get_type, cuGraphNodeGetType);
    SYM(child, cuGraphChildGraphNodeGetGraph);
    int nk = kind(VGPU_CUDA_H_GRAPH_NODE);

    for (int i = 0; i < s->ncond_bodies; i++)
        if (s->cond_bodies[i].graph == g)
            return true;        /* a conditional node's body */
    if (!get_type || !child)
        return false;
    for (int i = 0; i < s->nhandles; i++) {
        CUgraphNode n = (CUgraphNode)(uintptr_t)s->handles[i].value;
        CUgraphNodeType t;
        CUgraph e = NULL;

        if (s->handles[i].kind == nk && get_type(n, &t) == CUDA_SUCCESS &&
            t == CU_GRAPH_NODE_TYPE_GRAPH && child(n, &e) == CUDA_SUCCESS &&
            (uint64_t)(uintptr_t)e == g)
            return true;
    }
    return false;
}

/*
 * A graph, or one node, goes, and the handles the driver frees with it
 * leave the table: a handle left there would let a later call hand the
 * driver freed memory.  They are gathered first, as a graph still being
 * captured into refuses to go and keeps them.
 */
static int destroy(struct vgpu_session *s, struct vgpu_manual_call *c, bool node)
{
    UNPACK(Vgpu__Manual__GraphArgs, graph_args, c);
    SYM(destroy_graph, cuGraphDestroy);
    SYM(destroy_node, cuGraphDestroyNode);
    struct doomed d = { .s = s };
    int st = CUDA_ERROR_NOT_SUPPORTED;

    if (node ? !destroy_node : !destroy_graph)
        goto out;
    st = CUDA_ERROR_INVALID_HANDLE;
    if (node ? a->graph && !vgpu_handle_known(s, kind(VGPU_CUDA_H_GRAPH_NODE), a->graph)
             : !graph_ok(s, a->graph))
        goto out;
    if (a->graph && node)
        st = doom_node(&d, (CUgraphNode)(uintptr_t)a->graph, 0);
    else if (a->graph && !(st = doom(&d, kind(VGPU_CUDA_H_GRAPH), a->graph)))
        st = doom_graph(&d, (CUgraph)(uintptr_t)a->graph, 0);
    else
        st = CUDA_SUCCESS;
    if (st != CUDA_SUCCESS)
        goto out;
    if (!node && embedded_graph(s, a->graph)) {
        vgpu_log(VGPU_LOG_INFO, "cuGraphDestroy refused: the graph is a child graph node's "
                 "(from cuGraphChildGraphNodeGetGraph); it goes with its parent graph");
        st = CUDA_ERROR_INVALID_VALUE;
        goto out;
    }
    for (size_t i = 0; !node && i < d.n; i++)
        if (d.kind[i] == kind(VGPU_CUDA_H_GRAPH))
            graph_mem_mark_freed(s, d.h[i]);
    st = node ? destroy_node((CUgraphNode)(uintptr_t)a->graph)
              : destroy_graph((CUgraph)(uintptr_t)a->graph);
    for (size_t i = 0; st == CUDA_SUCCESS && i < d.n; i++) {
        vgpu_handle_remove(s, d.kind[i], d.h[i]);
        if (d.kind[i] == kind(VGPU_CUDA_H_GRAPH)) {
            vgpu_user_objects_graph_gone(d.h[i]);    /* its references went with it */
            graph_mem_graph_gone(s, d.h[i]);
        } else {
            cond_bodies_gone(s, d.h[i]);
        }
    }
out:
    free(d.h);
    free(d.kind);
    vgpu__manual__graph_args__free_unpacked(a, &unpack_alloc_);
    return st;
}

static int h_graph_destroy(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    return destroy(s, c, false);
}

static int h_node_destroy(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    return destroy(s, c, true);
}

/* ---- cuGraphDebugDotPrint ---- */

/* The whole of file descriptor fd (at most DOT_MAX bytes) into the call's arena. */
static int read_back(struct vgpu_manual_call *c, int fd, ProtobufCBinaryData *out)
{
    off_t end = lseek(fd, 0, SEEK_END);
    size_t got = 0;

    if (end < 0 || (uint64_t)end > DOT_MAX || lseek(fd, 0, SEEK_SET) != 0)
        return CUDA_ERROR_OPERATING_SYSTEM;
    if (!(out->data = vgpu_arena_alloc(c->arena, (size_t)end + 1)))
        return CUDA_ERROR_OUT_OF_MEMORY;
    while (got < (size_t)end) {
        ssize_t k = read(fd, out->data + got, (size_t)end - got);

        if (k <= 0)
            return CUDA_ERROR_OPERATING_SYSTEM;
        got += (size_t)k;
    }
    out->len = got;
    return CUDA_SUCCESS;
}

static int h_dot_print(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__GraphArgs, graph_args, c);
    Vgpu__Manual__DotRet r = VGPU__MANUAL__DOT_RET__INIT;
    SYM(dot, cuGraphDebugDotPrint);
    char path[64];
    int fd = -1, st = CUDA_ERROR_NOT_SUPPORTED;

    if (!dot)
        goto out;
    st = CUDA_ERROR_INVALID_HANDLE;
    if (!graph_ok(s, a->graph))
        goto out;
    /* a file of this process alone, reachable by a path the driver can open */
    st = CUDA_ERROR_OPERATING_SYSTEM;
    if ((fd = memfd_create("vgpu-graph-dot", MFD_CLOEXEC)) < 0)
        goto out;
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    if ((st = dot((CUgraph)(uintptr_t)a->graph, path, a->flags)) != CUDA_SUCCESS)
        goto out;
    if ((st = read_back(c, fd, &r.text)) == CUDA_SUCCESS)
        st = reply(c, &r.base);
out:
    if (fd >= 0)
        close(fd);
    vgpu__manual__graph_args__free_unpacked(a, &unpack_alloc_);
    return st;
}

/* ---- cuGraphInstantiateWithParams ---- */

/* cuGraphInstantiateWithFlags, WithParams, WithParams_ptsz: one handler, the driver's own call. */
static int instantiate(struct vgpu_session *s, struct vgpu_manual_call *c, const char *name)
{
    UNPACK(Vgpu__Manual__InstantiateArgs, instantiate_args, c);
    Vgpu__Manual__InstantiateRet r = VGPU__MANUAL__INSTANTIATE_RET__INIT;
    bool with_flags = !strcmp(name, "cuGraphInstantiateWithFlags");
    __typeof__(&cuGraphInstantiateWithParams) inst =
        (__typeof__(&cuGraphInstantiateWithParams))vgpu_driver_sym(name);
    __typeof__(&cuGraphInstantiateWithFlags) inst_flags =
        (__typeof__(&cuGraphInstantiateWithFlags))vgpu_driver_sym(name);
    CUDA_GRAPH_INSTANTIATE_PARAMS p = { .flags = a->flags,
                                        .hUploadStream = (CUstream)(uintptr_t)a->upload_stream };
    CUgraphExec exec = NULL;
    int st = CUDA_ERROR_NOT_SUPPORTED;

    if (!inst)
        goto out;
    st = CUDA_ERROR_INVALID_HANDLE;
    if (!graph_ok(s, a->graph))
        goto out;
    st = CUDA_ERROR_INVALID_HANDLE;
    if (!stream_ok(s, a->upload_stream) || (with_flags && a->upload_stream))
        goto out;
    if (with_flags) {
        st = inst_flags(&exec, (CUgraph)(uintptr_t)a->graph, a->flags);
        p.result_out = st == CUDA_SUCCESS ? CUDA_GRAPH_INSTANTIATE_SUCCESS
                                          : CUDA_GRAPH_INSTANTIATE_ERROR;
    } else {
        st = inst(&exec, (CUgraph)(uintptr_t)a->graph, &p);
    }
    /* what its allocation nodes may hold at once counts against the VM's limit */
    if (st == CUDA_SUCCESS && exec && exec_mem_charge(s, a->graph, exec)) {
        st = CUDA_ERROR_OUT_OF_MEMORY;
        p.result_out = CUDA_GRAPH_INSTANTIATE_ERROR;
        exec = NULL;
    }
    r.result = p.result_out;
    if (p.hErrNode_out) {
        r.err_node = (uint64_t)(uintptr_t)p.hErrNode_out;
        if (vgpu_handle_add(s, kind(VGPU_CUDA_H_GRAPH_NODE), r.err_node))
            st = CUDA_ERROR_OUT_OF_MEMORY;
    }
    if (st == CUDA_SUCCESS && exec) {
        r.exec = (uint64_t)(uintptr_t)exec;
        if (vgpu_handle_add(s, kind(VGPU_CUDA_H_GRAPH_EXEC), r.exec))
            st = CUDA_ERROR_OUT_OF_MEMORY;
    }
    /* the result code and error node travel with a failure too */
    if (reply(c, &r.base))
        st = CUDA_ERROR_OUT_OF_MEMORY;
    if (st != CUDA_SUCCESS && exec) {
        /* the guest never hears of it: it goes, with its charge */
        SYM(destroy_exec, cuGraphExecDestroy);

        vgpu_handle_remove(s, kind(VGPU_CUDA_H_GRAPH_EXEC), (uint64_t)(uintptr_t)exec);
        if (destroy_exec && destroy_exec(exec) == CUDA_SUCCESS)
            exec_mem_gone(s, (uint64_t)(uintptr_t)exec);
    }
out:
    vgpu__manual__instantiate_args__free_unpacked(a, &unpack_alloc_);
    return st;
}

static int h_instantiate(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    return instantiate(s, c, "cuGraphInstantiateWithParams");
}

static int h_instantiate_flags(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    return instantiate(s, c, "cuGraphInstantiateWithFlags");
}

/* The executable graph goes; so does what its allocation nodes were charged. */
static int h_exec_destroy(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__GraphArgs, graph_args, c);
    SYM(destroy_exec, cuGraphExecDestroy);
    int st = CUDA_ERROR_NOT_SUPPORTED;

    if (!destroy_exec)
        goto out;
    st = CUDA_ERROR_INVALID_HANDLE;
    if (a->graph && !vgpu_handle_known(s, kind(VGPU_CUDA_H_GRAPH_EXEC), a->graph))
        goto out;
    st = destroy_exec((CUgraphExec)(uintptr_t)a->graph);
    if (st == CUDA_SUCCESS && a->graph) {
        vgpu_handle_remove(s, kind(VGPU_CUDA_H_GRAPH_EXEC), a->graph);
        exec_mem_gone(s, a->graph);
    }
out:
    vgpu__manual__graph_args__free_unpacked(a, &unpack_alloc_);
    return st;
}

static int h_instantiate_ptsz(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    return instantiate(s, c, "cuGraphInstantiateWithParams_ptsz");
}

/* ---- cuGraphExecUpdate_v2 ---- */

static int h_exec_update(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__ExecUpdateArgs, exec_update_args, c);
    Vgpu__Manual__ExecUpdateRet r = VGPU__MANUAL__EXEC_UPDATE_RET__INIT;
    SYM(update, cuGraphExecUpdate_v2);
    CUgraphExecUpdateResultInfo info = { 0 };
    int st = CUDA_ERROR_NOT_SUPPORTED, nk = kind(VGPU_CUDA_H_GRAPH_NODE);

    if (!update)
        goto out;
    st = CUDA_ERROR_INVALID_HANDLE;
    if ((a->exec && !vgpu_handle_known(s, kind(VGPU_CUDA_H_GRAPH_EXEC), a->exec)) ||
        !graph_ok(s, a->graph))
        goto out;
    st = update((CUgraphExec)(uintptr_t)a->exec, (CUgraph)(uintptr_t)a->graph, &info);
    r.result = info.result;
    r.error_node = (uint64_t)(uintptr_t)info.errorNode;
    r.error_from_node = (uint64_t)(uintptr_t)info.errorFromNode;
    /* the nodes it names become the session's (those of the graph are already) */
    if ((r.error_node && vgpu_handle_add(s, nk, r.error_node)) ||
        (r.error_from_node && vgpu_handle_add(s, nk, r.error_from_node)) || reply(c, &r.base))
        st = CUDA_ERROR_OUT_OF_MEMORY;
out:
    vgpu__manual__exec_update_args__free_unpacked(a, &unpack_alloc_);
    return st;
}

/* ---- node lists: cuGraphGetNodes and its kin ---- */

typedef CUresult (*list_fn)(void *h, CUgraphNode *a, size_t *n);
typedef CUresult (*list_edges_fn)(void *h, CUgraphNode *a, CUgraphEdgeData *e, size_t *n);
typedef CUresult (*edges_fn)(CUgraph g, CUgraphNode *from, CUgraphNode *to, size_t *n);
typedef CUresult (*edges_v2_fn)(CUgraph g, CUgraphNode *from, CUgraphNode *to,
                                CUgraphEdgeData *e, size_t *n);

/* How each call of the family is made: its driver name, what it lists from, its shape. */
struct list_call {
    const char *name;
    bool of_node, edges, edge_data;
};

/* Every node the driver listed becomes the session's, and travels as a handle. */
static int list_out(struct vgpu_session *s, struct vgpu_manual_call *c, const CUgraphNode *a,
                    size_t n, uint64_t **out)
{
    if (!(*out = vgpu_arena_alloc(c->arena, (n ? n : 1) * sizeof(**out))))
        return CUDA_ERROR_OUT_OF_MEMORY;
    for (size_t i = 0; i < n; i++) {
        (*out)[i] = (uint64_t)(uintptr_t)a[i];
        if (a[i] && vgpu_handle_add(s, kind(VGPU_CUDA_H_GRAPH_NODE), (*out)[i]))
            return CUDA_ERROR_OUT_OF_MEMORY;
    }
    return CUDA_SUCCESS;
}

static int call_list(const struct list_call *lc, void (*fn)(void), void *h, CUgraphNode *a,
                     CUgraphNode *b, CUgraphEdgeData *e, size_t *n)
{
    if (lc->edges)
        return lc->edge_data ? ((edges_v2_fn)fn)(h, a, b, e, n) : ((edges_fn)fn)(h, a, b, n);
    return lc->edge_data ? ((list_edges_fn)fn)(h, a, e, n) : ((list_fn)fn)(h, a, n);
}

static int node_list(struct vgpu_session *s, struct vgpu_manual_call *c, const struct list_call *lc)
{
    UNPACK(Vgpu__Manual__NodeListArgs, node_list_args, c);
    Vgpu__Manual__NodeListRet r = VGPU__MANUAL__NODE_LIST_RET__INIT;
    void (*fn)(void) = vgpu_driver_sym(lc->name);
    size_t cap = a->want_nodes ? a->capacity : 0, n = cap;
    CUgraphNode *from = NULL, *to = NULL;
    CUgraphEdgeData *edges = NULL;
    int st = CUDA_ERROR_NOT_SUPPORTED;

    if (!fn)
        goto out;
    st = CUDA_ERROR_INVALID_HANDLE;
    if (lc->of_node ? a->handle && !vgpu_handle_known(s, kind(VGPU_CUDA_H_GRAPH_NODE), a->handle)
                    : !graph_ok(s, a->handle))
        goto out;
    st = CUDA_ERROR_INVALID_VALUE;
    if (cap > GRAPH_NODES_MAX || (a->want_edges && !a->want_nodes))
        goto out;
    st = CUDA_ERROR_OUT_OF_MEMORY;
    if (a->want_nodes && (!(from = vgpu_arena_alloc(c->arena, (cap ? cap : 1) * sizeof(*from))) ||
                          (lc->edges && !(to = vgpu_arena_alloc(c->arena,
                                                                (cap ? cap : 1) * sizeof(*to))))))
        goto out;
    if (a->want_edges && !(edges = vgpu_arena_alloc(c->arena, (cap ? cap : 1) * sizeof(*edges))))
        goto out;
    st = call_list(lc, fn, (void *)(uintptr_t)a->handle, from, to, edges, &n);
    if (st != CUDA_SUCCESS)
        goto out;
    r.count = n;
    /* the driver filled (or NULLed) every entry up to the capacity */
    if (from && ((st = list_out(s, c, from, cap, &r.nodes)) ||
                 (to && (st = list_out(s, c, to, cap, &r.to)))))
        goto out;
    r.n_nodes = from ? cap : 0;
    r.n_to = to ? cap : 0;
    if (edges) {
        r.edges.data = (uint8_t *)edges;
        r.edges.len = cap * sizeof(*edges);
    }
    st = reply(c, &r.base);
out:
    vgpu__manual__node_list_args__free_unpacked(a, &unpack_alloc_);
    return st;
}

#define LIST_HANDLER(fn_, of_node_, edges_, data_)                                 \
    static int h_##fn_(struct vgpu_session *s, struct vgpu_manual_call *c)        \
    {                                                                             \
        static const struct list_call lc = { #fn_, of_node_, edges_, data_ };     \
        return node_list(s, c, &lc);                                              \
    }

LIST_HANDLER(cuGraphGetNodes, false, false, false)
LIST_HANDLER(cuGraphGetRootNodes, false, false, false)
LIST_HANDLER(cuGraphGetEdges, false, true, false)
LIST_HANDLER(cuGraphGetEdges_v2, false, true, true)
LIST_HANDLER(cuGraphNodeGetDependencies, true, false, false)
LIST_HANDLER(cuGraphNodeGetDependencies_v2, true, false, true)
LIST_HANDLER(cuGraphNodeGetDependentNodes, true, false, false)
LIST_HANDLER(cuGraphNodeGetDependentNodes_v2, true, false, true)

/* ---- kernel, memset and memcpy nodes ---- */

enum node_op { NODE_ADD, NODE_SET, NODE_EXEC_SET };
enum node_kind { NODE_KERNEL, NODE_MEMSET, NODE_MEMCPY };

/* Everything a node call names is the session's: graph (adding), dependencies, node, executable. */
bool vgpu_graph_node_handles_ok(struct vgpu_session *s, uint64_t graph, const uint64_t *deps,
                                size_t ndeps, uint64_t node, uint64_t exec, bool add)
{
    int nk = kind(VGPU_CUDA_H_GRAPH_NODE);

    if (add && (!graph || !graph_ok(s, graph)))
        return false;
    for (size_t i = 0; i < ndeps; i++)
        if (!vgpu_handle_known(s, nk, deps[i]))
            return false;
    if (!add && !vgpu_handle_known(s, nk, node))
        return false;
    return !exec || vgpu_handle_known(s, kind(VGPU_CUDA_H_GRAPH_EXEC), exec);
}

int vgpu_graph_node_made(struct vgpu_session *s, uint64_t node)
{
    return vgpu_handle_add(s, kind(VGPU_CUDA_H_GRAPH_NODE), node) ? -1 : 0;
}

static bool node_handles_ok(struct vgpu_session *s, const Vgpu__Manual__NodeArgs *a,
                            enum node_op op)
{
    if (op == NODE_EXEC_SET && !a->exec)
        return false;
    if (!vgpu_graph_node_handles_ok(s, a->graph, a->deps, a->n_deps, a->node,
                                    op == NODE_EXEC_SET ? a->exec : 0, op == NODE_ADD))
        return false;
    return !a->ctx || vgpu_handle_known(s, kind(VGPU_CUDA_H_CONTEXT), a->ctx);
}

/* One side of a 3D copy: [start, start + len) it touches, checked to lie in one allocation.
 * Every product and sum is checked for wrap-around: a guest's pitch, rows and z can reach
 * 2^32 each, so z * pitch * rows does not fit 64 bits. A copy spanning slices (depth > 1
 * or z > 0) must keep y + height within the rows of a slice, as CUDA requires. */
static bool copy_side_ok(struct vgpu_session *s, uint32_t type, uint64_t addr, uint32_t x,
                         uint32_t y, uint32_t z, uint32_t pitch, uint32_t rows,
                         const Vgpu__Manual__Copy3D *c)
{
    uint64_t slice = (uint64_t)pitch * rows, start, len, t;

    if (type != CU_MEMORYTYPE_DEVICE && type != CU_MEMORYTYPE_UNIFIED)
        return false;
    if (!c->width || !c->height || !c->depth)
        return vgpu_range_check(s, addr, 0);
    if ((c->height > 1 || c->depth > 1) && c->width > pitch)
        return false;
    if ((c->depth > 1 || z) && (uint64_t)y + c->height > rows)
        return false;
    if (__builtin_mul_overflow((uint64_t)z, slice, &start) ||
        __builtin_mul_overflow((uint64_t)y, (uint64_t)pitch, &t) ||
        __builtin_add_overflow(start, t, &start) ||
        __builtin_add_overflow(start, (uint64_t)x, &start) ||
        __builtin_mul_overflow((uint64_t)(c->depth - 1), slice, &len) ||
        __builtin_mul_overflow((uint64_t)(c->height - 1), (uint64_t)pitch, &t) ||
        __builtin_add_overflow(len, t, &len) ||
        __builtin_add_overflow(len, (uint64_t)c->width, &len) ||
        __builtin_add_overflow(addr, start, &start) ||
        __builtin_add_overflow(start, len, &t))
        return false;
    return vgpu_range_check(s, start, len);
}

static int memcpy_params(struct vgpu_session *s, const Vgpu__Manual__NodeArgs *a, CUDA_MEMCPY3D *p)
{
    const Vgpu__Manual__Copy3D *c = a->copy;

    if (!c)
        return CUDA_ERROR_INVALID_VALUE;
    if (!copy_side_ok(s, c->src_type, c->src, c->src_x, c->src_y, c->src_z, c->src_pitch,
                      c->src_height, c) ||
        !copy_side_ok(s, c->dst_type, c->dst, c->dst_x, c->dst_y, c->dst_z, c->dst_pitch,
                      c->dst_height, c)) {
        vgpu_log(VGPU_LOG_WARN, "memcpy node refused: a side is not device memory of this "
                 "session, or its span leaves the allocation");
        return CUDA_ERROR_INVALID_VALUE;
    }
    *p = (CUDA_MEMCPY3D){
        .srcXInBytes = c->src_x, .srcY = c->src_y, .srcZ = c->src_z,
        .srcMemoryType = CU_MEMORYTYPE_DEVICE, .srcDevice = c->src,
        .srcPitch = c->src_pitch, .srcHeight = c->src_height,
        .dstXInBytes = c->dst_x, .dstY = c->dst_y, .dstZ = c->dst_z,
        .dstMemoryType = CU_MEMORYTYPE_DEVICE, .dstDevice = c->dst,
        .dstPitch = c->dst_pitch, .dstHeight = c->dst_height,
        .WidthInBytes = c->width, .Height = c->height, .Depth = c->depth,
    };
    return CUDA_SUCCESS;
}

static int memset_params(struct vgpu_session *s, const Vgpu__Manual__NodeArgs *a,
                         CUDA_MEMSET_NODE_PARAMS *p)
{
    uint64_t span = 0, width;

    bool bad;

    if (a->element_size != 1 && a->element_size != 2 && a->element_size != 4)
        return CUDA_ERROR_INVALID_VALUE;
    bad = __builtin_mul_overflow(a->width, (uint64_t)a->element_size, &width);
    if (!bad && a->height > 1)
        bad = vgpu_span_2d(a->pitch, width, a->height, &span) != 0;
    else if (!bad)
        span = a->height ? width : 0;     /* one row needs no pitch */
    if (bad || !vgpu_range_check(s, a->dst, span)) {
        vgpu_log(VGPU_LOG_INFO, "memset node refused: [%#llx, +%llu) is not inside one of this "
                 "session's allocations", (unsigned long long)a->dst, (unsigned long long)span);
        return CUDA_ERROR_INVALID_VALUE;
    }
    *p = (CUDA_MEMSET_NODE_PARAMS){ .dst = a->dst, .pitch = a->pitch, .value = a->value,
                                    .elementSize = a->element_size, .width = a->width,
                                    .height = a->height };
    return CUDA_SUCCESS;
}

/* The kernel's parameters laid out as a launch's (driver.c), pointers into ptrs. */
static int kernel_params(struct vgpu_session *s, struct vgpu_manual_call *c,
                         const Vgpu__Manual__NodeArgs *a, void **ptrs, CUDA_KERNEL_NODE_PARAMS *p)
{
    const uint8_t *buf = c->nseg ? c->seg[0].data : (const uint8_t *)"";
    size_t len = c->nseg ? c->seg[0].len : 0;
    void *func = NULL;
    int n = 0, st;

    if (!a->grid || !a->block || c->nseg > 1)
        return CUDA_ERROR_INVALID_VALUE;
    if (!a->function || (!vgpu_handle_known(s, kind(VGPU_CUDA_H_FUNCTION), a->function) &&
                         !vgpu_handle_known(s, kind(VGPU_CUDA_H_KERNEL), a->function)))
        return CUDA_ERROR_INVALID_HANDLE;
    if ((st = vgpu_driver_lay_out(s, a->function, buf, len, ptrs, &n, &func)) != CUDA_SUCCESS)
        return st;
    *p = (CUDA_KERNEL_NODE_PARAMS){
        .func = (CUfunction)func, .gridDimX = a->grid->x, .gridDimY = a->grid->y,
        .gridDimZ = a->grid->z, .blockDimX = a->block->x, .blockDimY = a->block->y,
        .blockDimZ = a->block->z, .sharedMemBytes = a->shared_mem,
        .kernelParams = n ? ptrs : NULL, .ctx = (CUcontext)(uintptr_t)a->ctx,
    };
    return CUDA_SUCCESS;
}

/* The driver function a node call makes, by kind and operation (its _v2 forms for kernels). */
static const char *const node_fns[3][3] = {
    [NODE_KERNEL] = { "cuGraphAddKernelNode_v2", "cuGraphKernelNodeSetParams_v2",
                      "cuGraphExecKernelNodeSetParams_v2" },
    [NODE_MEMSET] = { "cuGraphAddMemsetNode", "cuGraphMemsetNodeSetParams",
                      "cuGraphExecMemsetNodeSetParams" },
    [NODE_MEMCPY] = { "cuGraphAddMemcpyNode", "cuGraphMemcpyNodeSetParams",
                      "cuGraphExecMemcpyNodeSetParams" },
};

typedef CUresult (*add_fn)(CUgraphNode *, CUgraph, const CUgraphNode *, size_t, const void *);
typedef CUresult (*add_ctx_fn)(CUgraphNode *, CUgraph, const CUgraphNode *, size_t, const void *,
                              CUcontext);
typedef CUresult (*set_fn)(CUgraphNode, const void *);
typedef CUresult (*exec_set_fn)(CUgraphExec, CUgraphNode, const void *);
typedef CUresult (*exec_set_ctx_fn)(CUgraphExec, CUgraphNode, const void *, CUcontext);

static int node_driver(void (*fn)(void), enum node_op op, enum node_kind k,
                       const Vgpu__Manual__NodeArgs *a, const void *p, CUgraphNode *out)
{
    CUgraph g = (CUgraph)(uintptr_t)a->graph;
    CUgraphNode n = (CUgraphNode)(uintptr_t)a->node;
    CUgraphExec e = (CUgraphExec)(uintptr_t)a->exec;
    CUcontext ctx = (CUcontext)(uintptr_t)a->ctx;
    const CUgraphNode *deps = (const CUgraphNode *)(const void *)a->deps;

    _Static_assert(sizeof(CUgraphNode) == sizeof(uint64_t), "node handles travel as 64 bits");
    switch (op) {
    case NODE_ADD:
        return k == NODE_KERNEL ? ((add_fn)fn)(out, g, deps, a->n_deps, p)
                                : ((add_ctx_fn)fn)(out, g, deps, a->n_deps, p, ctx);
    case NODE_SET:
        return ((set_fn)fn)(n, p);
    default:
        return k == NODE_KERNEL ? ((exec_set_fn)fn)(e, n, p)
                                : ((exec_set_ctx_fn)fn)(e, n, p, ctx);
    }
}

static int node_call(struct vgpu_session *s, struct vgpu_manual_call *c, enum node_op op,
                     enum node_kind k)
{
    UNPACK(Vgpu__Manual__NodeArgs, node_args, c);
    Vgpu__Manual__NodeRet r = VGPU__MANUAL__NODE_RET__INIT;
    void (*fn)(void) = vgpu_driver_sym(node_fns[k][op]);
    union {
        CUDA_KERNEL_NODE_PARAMS kernel;
        CUDA_MEMSET_NODE_PARAMS memset;
        CUDA_MEMCPY3D copy;
    } p;
    void **ptrs = NULL;
    CUgraphNode node = NULL;
    int st = CUDA_ERROR_NOT_SUPPORTED;

    if (!fn)
        goto out;
    st = CUDA_ERROR_INVALID_HANDLE;
    if (!node_handles_ok(s, a, op))
        goto out;
    st = CUDA_ERROR_OUT_OF_MEMORY;
    if (k == NODE_KERNEL && !(ptrs = vgpu_arena_alloc(c->arena, 1024 * sizeof(*ptrs))))
        goto out;
    st = k == NODE_KERNEL ? kernel_params(s, c, a, ptrs, &p.kernel)
         : k == NODE_MEMSET ? memset_params(s, a, &p.memset)
                            : memcpy_params(s, a, &p.copy);
    if (st != CUDA_SUCCESS)
        goto out;
    if ((st = node_driver(fn, op, k, a, &p, &node)) != CUDA_SUCCESS)
        goto out;
    if (node) {
        r.node = (uint64_t)(uintptr_t)node;
        if (vgpu_handle_add(s, kind(VGPU_CUDA_H_GRAPH_NODE), r.node)) {
            st = CUDA_ERROR_OUT_OF_MEMORY;
            goto out;
        }
    }
    st = reply(c, &r.base);
out:
    vgpu__manual__node_args__free_unpacked(a, &unpack_alloc_);
    return st;
}

/*
 * A kernel node's parameters read back: the bytes of each parameter
 * gathered by the function's layout, with where each starts.  A function
 * the driver answers that the session did not name (a CUkernel's function
 * in this context) becomes the session's.
 */
static int h_kernel_get(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__GraphArgs, graph_args, c);
    Vgpu__Manual__KernelNodeRet r = VGPU__MANUAL__KERNEL_NODE_RET__INIT;
    Vgpu__Manual__Dim3 grid = VGPU__MANUAL__DIM3__INIT, block = VGPU__MANUAL__DIM3__INIT;
    SYM(get, cuGraphKernelNodeGetParams_v2);
    CUDA_KERNEL_NODE_PARAMS p = { 0 };
    const uint32_t *off = NULL, *size = NULL;
    uint64_t fn, total = 0;
    int n = 0, st = CUDA_ERROR_NOT_SUPPORTED;

    if (!get)
        goto out;
    st = CUDA_ERROR_INVALID_HANDLE;
    if (a->graph && !vgpu_handle_known(s, kind(VGPU_CUDA_H_GRAPH_NODE), a->graph))
        goto out;
    if ((st = get((CUgraphNode)(uintptr_t)a->graph, &p)) != CUDA_SUCCESS)
        goto out;
    fn = (uint64_t)(uintptr_t)(p.func ? (void *)p.func : (void *)p.kern);
    /* a CUfunction under its kind, a CUkernel (p.kern) under the kernel kind */
    if (!vgpu_handle_known(s, kind(VGPU_CUDA_H_KERNEL), fn) &&
        !vgpu_handle_known(s, kind(VGPU_CUDA_H_FUNCTION), fn) &&
        vgpu_handle_add(s, kind(p.func ? VGPU_CUDA_H_FUNCTION : VGPU_CUDA_H_KERNEL), fn)) {
        st = CUDA_ERROR_OUT_OF_MEMORY;
        goto out;
    }
    if (p.kernelParams && (st = vgpu_driver_layout(s, fn, &n, &off, &size)) != CUDA_SUCCESS)
        goto out;
    for (int i = 0; i < n; i++)
        if (off[i] + (uint64_t)size[i] > total)
            total = off[i] + (uint64_t)size[i];
    st = CUDA_ERROR_OUT_OF_MEMORY;
    if ((n && !(r.offset = vgpu_arena_alloc(c->arena, (size_t)n * sizeof(*r.offset)))) ||
        (total && !(r.params.data = vgpu_arena_alloc(c->arena, total))))
        goto out;
    for (int i = 0; i < n; i++) {
        r.offset[i] = off[i];
        memcpy(r.params.data + off[i], p.kernelParams[i], size[i]);
    }
    r.n_offset = (size_t)n;
    r.params.len = total;
    grid.x = p.gridDimX, grid.y = p.gridDimY, grid.z = p.gridDimZ;
    block.x = p.blockDimX, block.y = p.blockDimY, block.z = p.blockDimZ;
    r.function = fn;
    r.grid = &grid;
    r.block = &block;
    r.shared_mem = p.sharedMemBytes;
    r.ctx = (uint64_t)(uintptr_t)p.ctx;
    st = reply(c, &r.base);
out:
    vgpu__manual__graph_args__free_unpacked(a, &unpack_alloc_);
    return st;
}

/*
 * A memcpy node's copy read back: device-to-device nodes only (those the
 * guest can make); a captured copy with a host side holds the server's
 * address of the guest's memory, which means nothing in the guest.
 */
static int h_memcpy_get(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__GraphArgs, graph_args, c);
    Vgpu__Manual__Copy3D r = VGPU__MANUAL__COPY3_D__INIT;
    SYM(get, cuGraphMemcpyNodeGetParams);
    CUDA_MEMCPY3D p = { 0 };
    int st = CUDA_ERROR_NOT_SUPPORTED;

    if (!get)
        goto out;
    st = CUDA_ERROR_INVALID_HANDLE;
    if (a->graph && !vgpu_handle_known(s, kind(VGPU_CUDA_H_GRAPH_NODE), a->graph))
        goto out;
    if ((st = get((CUgraphNode)(uintptr_t)a->graph, &p)) != CUDA_SUCCESS)
        goto out;
    st = CUDA_ERROR_NOT_SUPPORTED;
    if (p.srcMemoryType != CU_MEMORYTYPE_DEVICE || p.dstMemoryType != CU_MEMORYTYPE_DEVICE ||
        (p.srcXInBytes | p.srcY | p.srcZ | p.srcPitch | p.srcHeight | p.dstXInBytes | p.dstY |
         p.dstZ | p.dstPitch | p.dstHeight | p.WidthInBytes | p.Height | p.Depth) > UINT32_MAX) {
        vgpu_log(VGPU_LOG_INFO, "memcpy node parameters not read back: a side is host or array "
                 "memory, or a size passes 4 GiB");
        goto out;
    }
    r.src_x = (uint32_t)p.srcXInBytes, r.src_y = (uint32_t)p.srcY, r.src_z = (uint32_t)p.srcZ;
    r.src_type = p.srcMemoryType, r.src = p.srcDevice;
    r.src_pitch = (uint32_t)p.srcPitch, r.src_height = (uint32_t)p.srcHeight;
    r.dst_x = (uint32_t)p.dstXInBytes, r.dst_y = (uint32_t)p.dstY, r.dst_z = (uint32_t)p.dstZ;
    r.dst_type = p.dstMemoryType, r.dst = p.dstDevice;
    r.dst_pitch = (uint32_t)p.dstPitch, r.dst_height = (uint32_t)p.dstHeight;
    r.width = (uint32_t)p.WidthInBytes, r.height = (uint32_t)p.Height, r.depth = (uint32_t)p.Depth;
    st = reply(c, &r.base);
out:
    vgpu__manual__graph_args__free_unpacked(a, &unpack_alloc_);
    return st;
}

/* ---- launch attributes of streams and kernel nodes ---- */

/*
 * A value the guest sets: attributes that hold neither a handle nor an
 * address pass; an access policy window must lie in the session's memory
 * (it steers the L2 cache over that range).  The event attributes are for
 * launches only, and the driver would refuse them here anyway.
 */
static bool attr_value_ok(struct vgpu_session *s, uint32_t id, const CUlaunchAttributeValue *v)
{
    switch (id) {
    case CU_LAUNCH_ATTRIBUTE_ACCESS_POLICY_WINDOW:
        return !v->accessPolicyWindow.num_bytes ||
               vgpu_range_check(s, (uint64_t)(uintptr_t)v->accessPolicyWindow.base_ptr,
                                v->accessPolicyWindow.num_bytes);
    case CU_LAUNCH_ATTRIBUTE_IGNORE:
    case CU_LAUNCH_ATTRIBUTE_COOPERATIVE:
    case CU_LAUNCH_ATTRIBUTE_SYNCHRONIZATION_POLICY:
    case CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION:
    case CU_LAUNCH_ATTRIBUTE_CLUSTER_SCHEDULING_POLICY_PREFERENCE:
    case CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION:
    case CU_LAUNCH_ATTRIBUTE_PRIORITY:
    case CU_LAUNCH_ATTRIBUTE_MEM_SYNC_DOMAIN_MAP:
    case CU_LAUNCH_ATTRIBUTE_MEM_SYNC_DOMAIN:
    case CU_LAUNCH_ATTRIBUTE_PREFERRED_CLUSTER_DIMENSION:
    case CU_LAUNCH_ATTRIBUTE_DEVICE_UPDATABLE_KERNEL_NODE:
    case CU_LAUNCH_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT:
    case CU_LAUNCH_ATTRIBUTE_NVLINK_UTIL_CENTRIC_SCHEDULING:
        return true;
    default:
        return false;
    }
}

typedef CUresult (*stream_attr_get_fn)(CUstream, CUlaunchAttributeID, CUlaunchAttributeValue *);
typedef CUresult (*stream_attr_set_fn)(CUstream, CUlaunchAttributeID, const CUlaunchAttributeValue *);
typedef CUresult (*node_attr_get_fn)(CUgraphNode, CUlaunchAttributeID, CUlaunchAttributeValue *);
typedef CUresult (*node_attr_set_fn)(CUgraphNode, CUlaunchAttributeID, const CUlaunchAttributeValue *);
typedef CUresult (*node_attr_copy_fn)(CUgraphNode, CUgraphNode);

/* What a call does, by its id: never by what the guest's message says of itself. */
enum attr_op { ATTR_STREAM_GET, ATTR_STREAM_SET, ATTR_NODE_GET, ATTR_NODE_SET, ATTR_NODE_COPY };

/* One handler for the seven calls; sym is the driver function of the call's id. */
static int attr_call(struct vgpu_session *s, struct vgpu_manual_call *c, const char *sym,
                     enum attr_op op)
{
    UNPACK(Vgpu__Manual__AttrArgs, attr_args, c);
    Vgpu__Manual__AttrRet r = VGPU__MANUAL__ATTR_RET__INIT;
    void (*fn)(void) = vgpu_driver_sym(sym);
    int nk = kind(VGPU_CUDA_H_GRAPH_NODE);
    bool node = op >= ATTR_NODE_GET;
    CUgraphNode n = (CUgraphNode)(uintptr_t)a->stream;
    CUstream st_h = (CUstream)(uintptr_t)a->stream;
    CUlaunchAttributeID id = (CUlaunchAttributeID)a->attr;
    CUlaunchAttributeValue v;
    int st = CUDA_ERROR_NOT_SUPPORTED;

    memset(&v, 0, sizeof(v));
    if (!fn)
        goto out;
    st = CUDA_ERROR_INVALID_HANDLE;
    if (node ? !vgpu_handle_known(s, nk, a->stream) ||
                   (op == ATTR_NODE_COPY && !vgpu_handle_known(s, nk, a->src))
             : !stream_ok(s, a->stream))
        goto out;
    st = CUDA_ERROR_INVALID_VALUE;
    if (op == ATTR_STREAM_SET || op == ATTR_NODE_SET) {
        if (a->value.len != sizeof(v))
            goto out;
        memcpy(&v, a->value.data, sizeof(v));
        if (!attr_value_ok(s, a->attr, &v)) {
            vgpu_log(VGPU_LOG_INFO, "launch attribute %u refused: not remoted, or its access "
                     "policy window is not this session's memory", a->attr);
            goto out;
        }
    }
    switch (op) {
    case ATTR_STREAM_GET:
        st = ((stream_attr_get_fn)fn)(st_h, id, &v);
        break;
    case ATTR_STREAM_SET:
        st = ((stream_attr_set_fn)fn)(st_h, id, &v);
        break;
    case ATTR_NODE_GET:
        st = ((node_attr_get_fn)fn)(n, id, &v);
        break;
    case ATTR_NODE_SET:
        st = ((node_attr_set_fn)fn)(n, id, &v);
        break;
    default:
        st = ((node_attr_copy_fn)fn)(n, (CUgraphNode)(uintptr_t)a->src);
        break;
    }
    if (st != CUDA_SUCCESS || (op != ATTR_STREAM_GET && op != ATTR_NODE_GET))
        goto out;
    r.value.data = (uint8_t *)&v;
    r.value.len = sizeof(v);
    st = reply(c, &r.base);
out:
    vgpu__manual__attr_args__free_unpacked(a, &unpack_alloc_);
    return st;
}

#define ATTR_HANDLER(name, op)                                                     \
    static int h_##name(struct vgpu_session *s, struct vgpu_manual_call *c)       \
    {                                                                             \
        return attr_call(s, c, #name, op);                                        \
    }
ATTR_HANDLER(cuStreamGetAttribute, ATTR_STREAM_GET)
ATTR_HANDLER(cuStreamGetAttribute_ptsz, ATTR_STREAM_GET)
ATTR_HANDLER(cuStreamSetAttribute, ATTR_STREAM_SET)
ATTR_HANDLER(cuStreamSetAttribute_ptsz, ATTR_STREAM_SET)
ATTR_HANDLER(cuGraphKernelNodeGetAttribute, ATTR_NODE_GET)
ATTR_HANDLER(cuGraphKernelNodeSetAttribute, ATTR_NODE_SET)
ATTR_HANDLER(cuGraphKernelNodeCopyAttributes, ATTR_NODE_COPY)

#define NODE_HANDLER(name_, op_, kind_)                                            \
    static int name_(struct vgpu_session *s, struct vgpu_manual_call *c)          \
    {                                                                             \
        return node_call(s, c, op_, kind_);                                       \
    }

NODE_HANDLER(h_add_kernel, NODE_ADD, NODE_KERNEL)
NODE_HANDLER(h_set_kernel, NODE_SET, NODE_KERNEL)
NODE_HANDLER(h_exec_set_kernel, NODE_EXEC_SET, NODE_KERNEL)
NODE_HANDLER(h_add_memset, NODE_ADD, NODE_MEMSET)
NODE_HANDLER(h_set_memset, NODE_SET, NODE_MEMSET)
NODE_HANDLER(h_exec_set_memset, NODE_EXEC_SET, NODE_MEMSET)
NODE_HANDLER(h_add_memcpy, NODE_ADD, NODE_MEMCPY)
NODE_HANDLER(h_set_memcpy, NODE_SET, NODE_MEMCPY)
NODE_HANDLER(h_exec_set_memcpy, NODE_EXEC_SET, NODE_MEMCPY)

#define ID(name) VGPU_CUDA_ID_##name

static const struct {
    uint32_t id;
    vgpu_manual_fn fn;
} handlers[] = {
    { ID(cuStreamGetCaptureInfo_v2), h_capture_info_v2 },
    { ID(cuStreamGetCaptureInfo_v2_ptsz), h_capture_info_v2_ptsz },
    { ID(cuStreamGetCaptureInfo_v3), h_capture_info_v3 },
    { ID(cuStreamGetCaptureInfo_v3_ptsz), h_capture_info_v3_ptsz },
    { ID(cuGraphDestroy), h_graph_destroy },
    { ID(cuGraphDestroyNode), h_node_destroy },
    { ID(cuGraphDebugDotPrint), h_dot_print },
    { ID(cuGraphInstantiateWithParams), h_instantiate },
    { ID(cuGraphInstantiateWithFlags), h_instantiate_flags },
    { ID(cuGraphExecDestroy), h_exec_destroy },
    { ID(cuGraphAddMemAllocNode), h_add_mem_alloc },
    { ID(cuGraphAddNode), h_add_cond },
    { ID(cuGraphAddNode_v2), h_add_cond },
    { ID(cuGraphMemAllocNodeGetParams), h_mem_alloc_get },
    { ID(cuGraphInstantiateWithParams_ptsz), h_instantiate_ptsz },
    { ID(cuGraphAddKernelNode), h_add_kernel },
    { ID(cuGraphAddKernelNode_v2), h_add_kernel },
    { ID(cuGraphKernelNodeSetParams), h_set_kernel },
    { ID(cuGraphKernelNodeSetParams_v2), h_set_kernel },
    { ID(cuGraphExecKernelNodeSetParams), h_exec_set_kernel },
    { ID(cuGraphExecKernelNodeSetParams_v2), h_exec_set_kernel },
    { ID(cuGraphAddMemsetNode), h_add_memset },
    { ID(cuGraphMemsetNodeSetParams), h_set_memset },
    { ID(cuGraphExecMemsetNodeSetParams), h_exec_set_memset },
    { ID(cuGraphAddMemcpyNode), h_add_memcpy },
    { ID(cuGraphMemcpyNodeSetParams), h_set_memcpy },
    { ID(cuGraphExecMemcpyNodeSetParams), h_exec_set_memcpy },
    { ID(cuGraphExecUpdate_v2), h_exec_update },
    { ID(cuGraphKernelNodeGetParams), h_kernel_get },
    { ID(cuGraphKernelNodeGetParams_v2), h_kernel_get },
    { ID(cuGraphMemcpyNodeGetParams), h_memcpy_get },
    { ID(cuStreamGetAttribute), h_cuStreamGetAttribute },
    { ID(cuStreamGetAttribute_ptsz), h_cuStreamGetAttribute_ptsz },
    { ID(cuStreamSetAttribute), h_cuStreamSetAttribute },
    { ID(cuStreamSetAttribute_ptsz), h_cuStreamSetAttribute_ptsz },
    { ID(cuGraphKernelNodeGetAttribute), h_cuGraphKernelNodeGetAttribute },
    { ID(cuGraphKernelNodeSetAttribute), h_cuGraphKernelNodeSetAttribute },
    { ID(cuGraphKernelNodeCopyAttributes), h_cuGraphKernelNodeCopyAttributes },
    { ID(cuGraphGetNodes), h_cuGraphGetNodes },
    { ID(cuGraphGetRootNodes), h_cuGraphGetRootNodes },
    { ID(cuGraphGetEdges), h_cuGraphGetEdges },
    { ID(cuGraphGetEdges_v2), h_cuGraphGetEdges_v2 },
    { ID(cuGraphNodeGetDependencies), h_cuGraphNodeGetDependencies },
    { ID(cuGraphNodeGetDependencies_v2), h_cuGraphNodeGetDependencies_v2 },
    { ID(cuGraphNodeGetDependentNodes), h_cuGraphNodeGetDependentNodes },
    { ID(cuGraphNodeGetDependentNodes_v2), h_cuGraphNodeGetDependentNodes_v2 },
};

vgpu_manual_fn vgpu_graph_manual_find(uint32_t id)
{
    for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++)
        if (handlers[i].id == id)
            return handlers[i].fn;
    return NULL;
}
