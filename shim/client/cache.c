/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Answers of calls the spec marks cached (pure queries of fixed facts), by
 * call id, the calling thread's device and the packed arguments.  Only
 * successes are kept, for the life of the client; the client's lock guards
 * the list.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client_internal.h"

struct vgpu_cache_entry {
    uint32_t id;
    int device;
    bool per_context;                   /* VGPU_FN_CACHE_CTX: dropped when contexts change */
    uint64_t context;                   /* the thread's current context then */
    uint8_t *args, *ret;                /* owned */
    size_t args_len, ret_len;
    struct vgpu_cache_entry *next;
};

const struct vgpu_cache_entry *vgpu_cache_find(const struct vgpu_client *c,
                                               const struct vgpu_call_req *req, int device,
                                               uint64_t context)
{
    for (const struct vgpu_cache_entry *e = c->cache; e; e = e->next)
        if (e->id == req->call_id && e->device == device && e->context == context &&
            e->args_len == req->args_len && !memcmp(e->args, req->args, req->args_len))
            return e;
    return NULL;
}

/* rep gets a copy of e's answer, released as any reply: 0 or -ENOMEM. */
int vgpu_cache_answer(const struct vgpu_cache_entry *e, struct vgpu_call_rep *rep)
{
    struct vgpu_reply_buf *rb = vgpu_reply_buf_new();

    if (!rb || !(rb->buf = malloc(e->ret_len ? e->ret_len : 1))) {
        free(rb);
        return -ENOMEM;
    }
    memcpy(rb->buf, e->ret, e->ret_len);
    rep->ret = rb->buf;
    rep->ret_len = e->ret_len;
    rep->priv = rb;
    return 0;
}

/* Keeps req's answer rep; a failure to allocate only means no entry. */
void vgpu_cache_add(struct vgpu_client *c, const struct vgpu_call_req *req,
                    const struct vgpu_call_rep *rep, int device, uint64_t context)
{
    struct vgpu_cache_entry *e = calloc(1, sizeof(*e));

    if (!e)
        return;
    e->args = malloc(req->args_len ? req->args_len : 1);
    e->ret = malloc(rep->ret_len ? rep->ret_len : 1);
    if (!e->args || !e->ret) {
        free(e->args);
        free(e->ret);
        free(e);
        return;
    }
    e->id = req->call_id;
    e->device = device;
    e->per_context = req->flags & VGPU_FN_CACHE_CTX;
    e->context = context;
    memcpy(e->args, req->args, req->args_len);
    memcpy(e->ret, rep->ret, rep->ret_len);
    e->args_len = req->args_len;
    e->ret_len = rep->ret_len;
    e->next = c->cache;
    c->cache = e;
}

void vgpu_cache_drop_contexts(struct vgpu_client *c)
{
    struct vgpu_cache_entry **pe = &c->cache;

    while (*pe) {
        struct vgpu_cache_entry *e = *pe;

        if (!e->per_context) {
            pe = &e->next;
            continue;
        }
        *pe = e->next;
        free(e->args);
        free(e->ret);
        free(e);
    }
}

void vgpu_cache_free(struct vgpu_client *c)
{
    while (c->cache) {
        struct vgpu_cache_entry *e = c->cache;

        c->cache = e->next;
        free(e->args);
        free(e->ret);
        free(e);
    }
}
