/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Host callbacks of the driver API: cuLaunchHostFunc and cuStreamAddCallback
 * (and their _ptsz forms); host nodes and async notifications (below) run
 * the same way.  The function is registered with the client
 * under an id (client/callbacks.c), the id goes to the server, which puts
 * the real call on the session's stream; the client's callback thread runs
 * the function in this process when the stream reaches it.  The call waits
 * for the server's answer, so an invalid stream is reported here and the
 * callback is on the stream before the program goes on (a program may spin
 * on a flag the callback sets without calling CUDA again).  Without the
 * shared-memory queue pair (TCP, VGPU_SHM=0, a guest without a shared BAR)
 * both fail with CUDA_ERROR_NOT_SUPPORTED (docs/driver.md).
 */
#include <cuda.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_calltable.h"
#include "driver_internal.h"
#include "manual.pb-c.h"
#include "../hostfn_reply.h"

static CUresult host_call(uint32_t id, const char *name, CUstream stream, int kind, void (*fn)(void),
                          void *data)
{
    struct vgpu_client *c = vgpu_client_get();
    Vgpu__Manual__HostFnArgs a = VGPU__MANUAL__HOST_FN_ARGS__INIT;
    struct vgpu_callback cb = { .kind = kind, .fn = fn, .data = data, .stream = stream };
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    int st;

    if (!fn)
        return CUDA_ERROR_INVALID_VALUE;
    st = vgpu_client_callback_add(c, &cb, &a.id);
    if (st)
        return (CUresult)vgpu_drv_status(st);
    a.stream = (uint64_t)(uintptr_t)stream;
    vgpu_client_callback_keep(c, a.id, VGPU_CB_KEEP, NULL);
    st = vgpu_drv_call(id, name, &a.base, &req, &rep);
    if (st == CUDA_SUCCESS)
        vgpu_hostfn_reply_kept(c, a.id, &rep);
    vgpu_client_rep_release(c, &rep);
    if (st != CUDA_SUCCESS)
        vgpu_client_callback_cancel(c, a.id);
    return (CUresult)st;
}

#define ID(name) VGPU_CUDA_ID_##name

/* ---- host nodes ---- */

/*
 * Adds, or sets, a host node: the function is registered under an id kept
 * for as long as the process lives (each launch of the graph, or of an
 * executable made from it, runs it), and the server's node runs that id.
 */
static CUresult host_node(uint32_t id, const char *name, Vgpu__Manual__HostNodeArgs *a,
                          const CUgraphNode *deps, size_t ndeps,
                          const CUDA_HOST_NODE_PARAMS *p, CUgraphNode *node)
{
    struct vgpu_client *c = vgpu_client_get();
    struct vgpu_callback cb = { .kind = VGPU_CB_HOST_FN };
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    uint64_t *d = NULL;
    int st;

    if (!p || !p->fn || (ndeps && !deps) || ndeps > 65536)
        return CUDA_ERROR_INVALID_VALUE;
    if (ndeps && !(d = calloc(ndeps, sizeof(*d))))
        return CUDA_ERROR_OUT_OF_MEMORY;
    for (size_t i = 0; i < ndeps; i++)
        d[i] = (uint64_t)(uintptr_t)deps[i];
    a->deps = d;
    a->n_deps = ndeps;
    cb.fn = (void (*)(void))p->fn;
    cb.data = p->userData;
    if ((st = vgpu_client_callback_add(c, &cb, &a->id)) != 0) {
        free(d);
        return (CUresult)vgpu_drv_status(st);
    }
    if ((st = vgpu_client_callback_keep(c, a->id, VGPU_CB_KEEP, NULL)) != 0) {
        vgpu_client_callback_cancel(c, a->id);
        free(d);
        return (CUresult)vgpu_drv_status(st);
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
    vgpu_client_rep_release(c, &rep);
    if (st != CUDA_SUCCESS)
        vgpu_client_callback_cancel(c, a->id);
    free(d);
    return (CUresult)st;
}

VGPU_EXPORT CUresult cuGraphAddHostNode(CUgraphNode *phGraphNode, CUgraph hGraph,
                                        const CUgraphNode *dependencies, size_t numDependencies,
                                        const CUDA_HOST_NODE_PARAMS *nodeParams)
{
    Vgpu__Manual__HostNodeArgs a = VGPU__MANUAL__HOST_NODE_ARGS__INIT;

    if (!phGraphNode)
        return CUDA_ERROR_INVALID_VALUE;
    a.graph = (uint64_t)(uintptr_t)hGraph;
    return host_node(ID(cuGraphAddHostNode), "cuGraphAddHostNode", &a, dependencies,
                     numDependencies, nodeParams, phGraphNode);
}

VGPU_EXPORT CUresult cuGraphHostNodeSetParams(CUgraphNode hNode,
                                              const CUDA_HOST_NODE_PARAMS *nodeParams)
{
    Vgpu__Manual__HostNodeArgs a = VGPU__MANUAL__HOST_NODE_ARGS__INIT;

    a.node = (uint64_t)(uintptr_t)hNode;
    return host_node(ID(cuGraphHostNodeSetParams), "cuGraphHostNodeSetParams", &a, NULL, 0,
                     nodeParams, NULL);
}

VGPU_EXPORT CUresult cuGraphExecHostNodeSetParams(CUgraphExec hGraphExec, CUgraphNode hNode,
                                                  const CUDA_HOST_NODE_PARAMS *nodeParams)
{
    Vgpu__Manual__HostNodeArgs a = VGPU__MANUAL__HOST_NODE_ARGS__INIT;

    a.exec = (uint64_t)(uintptr_t)hGraphExec;
    a.node = (uint64_t)(uintptr_t)hNode;
    return host_node(ID(cuGraphExecHostNodeSetParams), "cuGraphExecHostNodeSetParams", &a, NULL,
                     0, nodeParams, NULL);
}

/* The node's function and data, from the id the server says it runs. */
VGPU_EXPORT CUresult cuGraphHostNodeGetParams(CUgraphNode hNode, CUDA_HOST_NODE_PARAMS *nodeParams)
{
    struct vgpu_client *c = vgpu_client_get();
    Vgpu__Manual__GraphArgs a = VGPU__MANUAL__GRAPH_ARGS__INIT;
    Vgpu__Manual__HostNodeRet *r;
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    struct vgpu_callback cb;
    int st;

    if (!nodeParams)
        return CUDA_ERROR_INVALID_VALUE;
    a.graph = (uint64_t)(uintptr_t)hNode;
    st = vgpu_drv_call(ID(cuGraphHostNodeGetParams), "cuGraphHostNodeGetParams", &a.base, &req,
                       &rep);
    if (st == CUDA_SUCCESS) {
        r = vgpu__manual__host_node_ret__unpack(NULL, rep.ret_len, rep.ret);
        if (!r) {
            st = vgpu_shim_bad_reply(&req);
        } else if (vgpu_client_callback_keep(c, r->id, VGPU_CB_AS_IS, &cb) != 0) {
            st = CUDA_ERROR_INVALID_VALUE;   /* not a node this process made */
        } else {
            nodeParams->fn = (CUhostFn)cb.fn;
            nodeParams->userData = cb.data;
        }
        if (r)
            vgpu__manual__host_node_ret__free_unpacked(r, NULL);
    }
    vgpu_client_rep_release(c, &rep);
    return (CUresult)st;
}

VGPU_EXPORT CUresult cuLaunchHostFunc(CUstream hStream, CUhostFn fn, void *userData)
{
    return host_call(ID(cuLaunchHostFunc), "cuLaunchHostFunc", hStream, VGPU_CB_HOST_FN,
                     (void (*)(void))fn, userData);
}

VGPU_EXPORT CUresult cuLaunchHostFunc_ptsz(CUstream hStream, CUhostFn fn, void *userData)
{
    return host_call(ID(cuLaunchHostFunc_ptsz), "cuLaunchHostFunc_ptsz", hStream, VGPU_CB_HOST_FN,
                     (void (*)(void))fn, userData);
}

/* flags is reserved and must be 0 (the server checks it again through the real call). */
VGPU_EXPORT CUresult cuStreamAddCallback(CUstream hStream, CUstreamCallback callback, void *userData,
                                         unsigned int flags)
{
    if (flags)
        return CUDA_ERROR_INVALID_VALUE;
    return host_call(ID(cuStreamAddCallback), "cuStreamAddCallback", hStream, VGPU_CB_STREAM,
                     (void (*)(void))callback, userData);
}

VGPU_EXPORT CUresult cuStreamAddCallback_ptsz(CUstream hStream, CUstreamCallback callback,
                                              void *userData, unsigned int flags)
{
    if (flags)
        return CUDA_ERROR_INVALID_VALUE;
    return host_call(ID(cuStreamAddCallback_ptsz), "cuStreamAddCallback_ptsz", hStream,
                     VGPU_CB_STREAM, (void (*)(void))callback, userData);
}

/* ---- user objects: the destructor runs in this process, once, when the last reference goes ---- */

VGPU_EXPORT CUresult cuUserObjectCreate(CUuserObject *object_out, void *ptr, CUhostFn destroy,
                                        unsigned int initialRefcount, unsigned int flags)
{
    struct vgpu_client *c = vgpu_client_get();
    Vgpu__Manual__UserObjectArgs a = VGPU__MANUAL__USER_OBJECT_ARGS__INIT;
    struct vgpu_callback cb = { .kind = VGPU_CB_HOST_FN, .fn = (void (*)(void))destroy,
                                .data = ptr };
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    Vgpu__Manual__NodeRet *r;
    int st;

    if (!object_out || !destroy || !initialRefcount || flags != CU_USER_OBJECT_NO_DESTRUCTOR_SYNC)
        return CUDA_ERROR_INVALID_VALUE;
    if ((st = vgpu_client_callback_add(c, &cb, &a.id)) != 0)
        return (CUresult)vgpu_drv_status(st);
    if ((st = vgpu_client_callback_keep(c, a.id, VGPU_CB_LATER, NULL)) != 0) {
        vgpu_client_callback_cancel(c, a.id);
        return (CUresult)vgpu_drv_status(st);
    }
    a.refcount = initialRefcount;
    a.flags = flags;
    st = vgpu_drv_call(ID(cuUserObjectCreate), "cuUserObjectCreate", &a.base, &req, &rep);
    if (st == CUDA_SUCCESS) {
        if ((r = vgpu__manual__node_ret__unpack(NULL, rep.ret_len, rep.ret))) {
            *object_out = (CUuserObject)(uintptr_t)r->node;
            vgpu__manual__node_ret__free_unpacked(r, NULL);
        } else {
            st = vgpu_shim_bad_reply(&req);
        }
    }
    vgpu_client_rep_release(c, &rep);
    if (st != CUDA_SUCCESS)
        vgpu_client_callback_cancel(c, a.id);
    return (CUresult)st;
}

/* The references: the server counts what the session and each graph hold, and refuses the rest. */
static CUresult user_object_refs(uint32_t id, const char *name, CUuserObject object, CUgraph graph,
                                 unsigned int count, unsigned int flags)
{
    Vgpu__Manual__UserObjectArgs a = VGPU__MANUAL__USER_OBJECT_ARGS__INIT;
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    CUresult st;

    a.object = (uint64_t)(uintptr_t)object;
    a.graph = (uint64_t)(uintptr_t)graph;
    a.refcount = count;
    a.flags = flags;
    st = vgpu_drv_call(id, name, &a.base, &req, &rep);
    vgpu_shim_rep_release(&rep);
    return st;
}

VGPU_EXPORT CUresult cuUserObjectRetain(CUuserObject object, unsigned int count)
{
    return user_object_refs(ID(cuUserObjectRetain), "cuUserObjectRetain", object, NULL, count, 0);
}

VGPU_EXPORT CUresult cuUserObjectRelease(CUuserObject object, unsigned int count)
{
    return user_object_refs(ID(cuUserObjectRelease), "cuUserObjectRelease", object, NULL, count, 0);
}

VGPU_EXPORT CUresult cuGraphRetainUserObject(CUgraph graph, CUuserObject object, unsigned int count,
                                             unsigned int flags)
{
    return user_object_refs(ID(cuGraphRetainUserObject), "cuGraphRetainUserObject", object, graph,
                            count, flags);
}

VGPU_EXPORT CUresult cuGraphReleaseUserObject(CUgraph graph, CUuserObject object, unsigned int count)
{
    return user_object_refs(ID(cuGraphReleaseUserObject), "cuGraphReleaseUserObject", object, graph,
                            count, 0);
}

/*
 * ---- async notifications ----
 *
 * cuDeviceRegisterAsyncNotification: the program's function is a kept
 * callback entry; the server registers a trampoline of its own with the
 * driver, which makes the entry due when the driver has a notification
 * (its type as the status, bytes over budget as the figure).  notify_run
 * then calls the program's function on the client's callback thread with
 * the notification built again here, and the handle this library gave
 * out.  As with host callbacks, the function may not make CUDA calls
 * (they fail: docs/driver.md).
 */
struct notify {
    struct notify *next;
    CUasyncCallback fn;
    void *data;
    uint64_t id;               /* the client's entry */
    uint64_t handle;           /* the server's */
    CUdevice device;
};

static pthread_mutex_t notify_lock = PTHREAD_MUTEX_INITIALIZER;
static struct notify *notifies;
/*
 * Unregistered ones: the client's callback thread may be running one as
 * it goes, so they stay (at most one per registration the program made).
 */
static struct notify *retired;

static void notify_run(void *data, int type, uint64_t bytes)
{
    struct notify *n = data;
    CUasyncNotificationInfo info;

    memset(&info, 0, sizeof(info));
    info.type = (CUasyncNotificationType)type;
    info.info.overBudget.bytesOverBudget = bytes;
    n->fn(&info, n->data, (CUasyncCallbackHandle)n);
}

VGPU_EXPORT CUresult cuDeviceRegisterAsyncNotification(CUdevice device, CUasyncCallback callbackFunc,
                                                       void *userData,
                                                       CUasyncCallbackHandle *callback)
{
    struct vgpu_client *c = vgpu_client_get();
    Vgpu__Manual__AsyncNotifyArgs a = VGPU__MANUAL__ASYNC_NOTIFY_ARGS__INIT;
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    struct vgpu_callback cb = { .kind = VGPU_CB_NOTIFY, .fn = (void (*)(void))notify_run };
    struct notify *n;
    int st;

    if (!callbackFunc || !callback)
        return CUDA_ERROR_INVALID_VALUE;
    if (!vgpu_client_runs_notify(c)) {
        vgpu_shim_log(VGPU_LOG_ERROR, "cuDeviceRegisterAsyncNotification: the process's vgpu client "
                      "comes from an older vgpu library that cannot run notifications; use one "
                      "vgpu release for libcudart.so.13 and libcuda.so.1");
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    if (!(n = calloc(1, sizeof(*n))))
        return CUDA_ERROR_OUT_OF_MEMORY;
    vgpu_client_pin((const void *)(uintptr_t)notify_run);   /* the client keeps it */
    *n = (struct notify){ .fn = callbackFunc, .data = userData, .device = device };
    cb.data = n;
    if ((st = vgpu_client_callback_add(c, &cb, &n->id)) != 0 ||
        (st = vgpu_client_callback_keep(c, n->id, VGPU_CB_KEEP, NULL)) != 0) {
        if (n->id)
            vgpu_client_callback_cancel(c, n->id);
        free(n);
        return (CUresult)vgpu_drv_status(st);
    }
    a.device = device;
    a.id = n->id;
    st = vgpu_drv_call(ID(cuDeviceRegisterAsyncNotification), "cuDeviceRegisterAsyncNotification",
                       &a.base, &req, &rep);
    if (st == CUDA_SUCCESS) {
        Vgpu__Manual__AsyncNotifyRet *r =
            vgpu__manual__async_notify_ret__unpack(NULL, rep.ret_len, rep.ret);

        if (r) {
            n->handle = r->handle;
            vgpu__manual__async_notify_ret__free_unpacked(r, NULL);
        } else {
            st = vgpu_shim_bad_reply(&req);
        }
    }
    vgpu_client_rep_release(c, &rep);
    if (st != CUDA_SUCCESS) {
        vgpu_client_callback_cancel(c, n->id);
        free(n);
        return (CUresult)st;
    }
    pthread_mutex_lock(&notify_lock);
    n->next = notifies;
    notifies = n;
    pthread_mutex_unlock(&notify_lock);
    *callback = (CUasyncCallbackHandle)n;
    return CUDA_SUCCESS;
}

VGPU_EXPORT CUresult cuDeviceUnregisterAsyncNotification(CUdevice device,
                                                         CUasyncCallbackHandle callback)
{
    struct vgpu_client *c = vgpu_client_get();
    Vgpu__Manual__AsyncNotifyArgs a = VGPU__MANUAL__ASYNC_NOTIFY_ARGS__INIT;
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    struct notify **p, *n = NULL;
    int st;

    pthread_mutex_lock(&notify_lock);
    for (p = &notifies; *p; p = &(*p)->next)
        if (*p == (struct notify *)callback && (*p)->device == device) {
            n = *p;
            break;
        }
    pthread_mutex_unlock(&notify_lock);
    if (!n)
        return CUDA_ERROR_INVALID_VALUE;
    a.device = device;
    a.handle = n->handle;
    st = vgpu_drv_call(ID(cuDeviceUnregisterAsyncNotification),
                       "cuDeviceUnregisterAsyncNotification", &a.base, &req, &rep);
    vgpu_client_rep_release(c, &rep);
    if (st != CUDA_SUCCESS)
        return (CUresult)st;
    pthread_mutex_lock(&notify_lock);
    for (p = &notifies; *p; p = &(*p)->next)
        if (*p == n) {
            *p = n->next;
            break;
        }
    n->next = retired;
    retired = n;
    pthread_mutex_unlock(&notify_lock);
    vgpu_client_callback_cancel(c, n->id);
    return CUDA_SUCCESS;
}
