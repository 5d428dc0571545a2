/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Answers of calls the spec marks cached (pure queries of fixed facts), by
 * call id, the calling thread's device, its context (for the per-context
 * ones) and the packed arguments, in a hash table of lists.  Only successes
 * are kept, for the life of the client (the per-context ones until a call
 * that changes contexts); the client's lock guards the table.
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

/* FNV-1a over what keys an answer */
static unsigned bucket(uint32_t id, int device, uint64_t context, const uint8_t *args, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull;
    const uint8_t *p;

#define MIX(x)                                                   \
    do {                                                         \
        p = (const uint8_t *)&(x);                               \
        for (size_t i_ = 0; i_ < sizeof(x); i_++)                \
            h = (h ^ p[i_]) * 0x100000001b3ull;                  \
    } while (0)
    MIX(id);
    MIX(device);
    MIX(context);
#undef MIX
    for (size_t i = 0; i < len; i++)
        h = (h ^ args[i]) * 0x100000001b3ull;
    return (unsigned)(h ^ (h >> 32)) % VGPU_CACHE_BUCKETS;
}

const struct vgpu_cache_entry *vgpu_cache_find(const struct vgpu_client *c,
                                               const struct vgpu_call_req *req, int device,
                                               uint64_t context)
{
    unsigned b = bucket(req->call_id, device, context, req->args, req->args_len);

    for (const struct vgpu_cache_entry *e = c->cache[b]; e; e = e->next)
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
    unsigned b = bucket(e->id, device, context, e->args, e->args_len);
    e->next = c->cache[b];
    c->cache[b] = e;
}

void vgpu_cache_drop_contexts(struct vgpu_client *c)
{
    for (unsigned b = 0; b < VGPU_CACHE_BUCKETS; b++) {
        struct vgpu_cache_entry **pe = &c->cache[b];

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
}

void vgpu_cache_free(struct vgpu_client *c)
{
    for (unsigned b = 0; b < VGPU_CACHE_BUCKETS; b++)
        while (c->cache[b]) {
            struct vgpu_cache_entry *e = c->cache[b];

            c->cache[b] = e->next;
            free(e->args);
            free(e->ret);
            free(e);
        }
}
