/* SPDX-License-Identifier: Apache-2.0 */
/*
 * CUDA user objects: a reference count, a destructor run once when it
 * reaches 0, on the host functions' thread (hostfn.c) and never waited
 * for, as CU_USER_OBJECT_NO_DESTRUCTOR_SYNC says.  References are held by
 * the caller or by an owner: a graph (cuGraphRetainUserObject), and what
 * is made from it: a clone and an executable graph take the graph's
 * references as their own, and an owner that goes releases its own.
 */
#include <stdlib.h>

#include "fakecuda_internal.h"

struct uobj {
    unsigned refs;
    void (*destroy)(void *);
    void *ptr;
    struct uobj *next;
};

struct uref {                  /* an owner's references to an object */
    const void *owner;
    struct uobj *o;
    unsigned n;
    struct uref *next;
};

static struct uobj *objs;
static struct uref *refs;

static struct uobj *find(CUuserObject h)
{
    for (struct uobj *o = objs; o; o = o->next)
        if ((void *)o == (void *)h)
            return o;
    return NULL;
}

static void drop(struct uobj *o, unsigned n)
{
    o->refs -= n;
    if (o->refs)
        return;
    for (struct uobj **p = &objs; *p; p = &(*p)->next)
        if (*p == o) {
            *p = o->next;
            break;
        }
    vgpu_fake_host_fn_later(o->destroy, o->ptr);
    free(o);
}

static struct uref *ref_of(const void *owner, struct uobj *o, bool make)
{
    struct uref *r;

    for (r = refs; r; r = r->next)
        if (r->owner == owner && r->o == o)
            return r;
    if (!make || !(r = calloc(1, sizeof(*r))))
        return NULL;
    *r = (struct uref){ .owner = owner, .o = o, .next = refs };
    refs = r;
    return r;
}

void vgpu_fake_uobj_copy(const void *from, const void *to)
{
    for (struct uref *r = refs; r; r = r->next) {
        struct uref *c;

        if (r->owner != from || !(c = ref_of(to, r->o, true)))
            continue;
        c->n += r->n;
        r->o->refs += r->n;
    }
}

void vgpu_fake_uobj_owner_gone(const void *owner)
{
    for (struct uref **p = &refs; *p;) {
        struct uref *r = *p;

        if (r->owner != owner) {
            p = &r->next;
            continue;
        }
        *p = r->next;
        drop(r->o, r->n);
        free(r);
    }
}

FAKE_EXPORT CUresult cuUserObjectCreate(CUuserObject *object_out, void *ptr, CUhostFn destroy,
                                        unsigned int initialRefcount, unsigned int flags)
{
    struct uobj *o;

    if (!object_out || !destroy || !initialRefcount || flags != CU_USER_OBJECT_NO_DESTRUCTOR_SYNC)
        return vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_VALUE, "cuUserObjectCreate",
                                   "no destructor, no reference or flags %u", flags);
    if (!(o = calloc(1, sizeof(*o))))
        return CUDA_ERROR_OUT_OF_MEMORY;
    *o = (struct uobj){ .refs = initialRefcount, .destroy = destroy, .ptr = ptr, .next = objs };
    objs = o;
    *object_out = (CUuserObject)o;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuUserObjectRetain(CUuserObject object, unsigned int count)
{
    struct uobj *o = find(object);

    if (!o || !count)
        return vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_VALUE, "cuUserObjectRetain",
                                   "unknown object %p or count 0", (void *)object);
    o->refs += count;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuUserObjectRelease(CUuserObject object, unsigned int count)
{
    struct uobj *o = find(object);

    if (!o || !count || count > o->refs)
        return vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_VALUE, "cuUserObjectRelease",
                                   "unknown object %p, or count %u beyond its references",
                                   (void *)object, count);
    drop(o, count);
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuGraphRetainUserObject(CUgraph graph, CUuserObject object, unsigned int count,
                                             unsigned int flags)
{
    struct uobj *o = find(object);
    struct uref *r;

    if (!vgpu_fake_graph_known(graph) || !o || !count || (flags & ~CU_GRAPH_USER_OBJECT_MOVE))
        return vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_VALUE, "cuGraphRetainUserObject",
                                   "unknown graph %p or object %p", (void *)graph, (void *)object);
    if (!(r = ref_of(graph, o, true)))
        return CUDA_ERROR_OUT_OF_MEMORY;
    r->n += count;
    if (!(flags & CU_GRAPH_USER_OBJECT_MOVE))
        o->refs += count;      /* moved references were the caller's already */
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuGraphReleaseUserObject(CUgraph graph, CUuserObject object, unsigned int count)
{
    struct uobj *o = find(object);
    struct uref *r = o ? ref_of(graph, o, false) : NULL;

    if (!r || !count || count > r->n)
        return vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_VALUE, "cuGraphReleaseUserObject",
                                   "graph %p holds fewer than %u references to %p", (void *)graph,
                                   count, (void *)object);
    r->n -= count;
    if (!r->n)
        for (struct uref **p = &refs; *p; p = &(*p)->next)
            if (*p == r) {
                *p = r->next;
                free(r);
                break;
            }
    drop(o, count);
    return CUDA_SUCCESS;
}
