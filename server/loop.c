/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small poll(2) event loop: the server's main process (listeners, the
 * admin socket) and each device link (the link socket, every channel's
 * session) wait in one.  Watches are kept in a dense array rebuilt into the
 * pollfd array only when it changed; a callback may add or remove watches,
 * its own included, and a removed watch is never called again, even later
 * in the same round.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "loop.h"

struct watch {
    int fd;
    short events;
    vgpu_loop_fn fn;
    void *opaque;
    bool gone;                 /* removed during this round: skip it */
};

struct vgpu_loop {
    struct watch *w;
    struct pollfd *p;
    int n, cap;
    bool dirty;                /* p must be rebuilt from w */
    bool dispatching;          /* removed watches are compacted after the round */
};

struct vgpu_loop *vgpu_loop_new(void)
{
    return calloc(1, sizeof(struct vgpu_loop));
}

void vgpu_loop_free(struct vgpu_loop *l)
{
    if (!l)
        return;
    free(l->w);
    free(l->p);
    free(l);
}

int vgpu_loop_add(struct vgpu_loop *l, int fd, short events, vgpu_loop_fn fn, void *opaque)
{
    if (fd < 0 || !fn)
        return -EINVAL;
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 16;
        struct watch *w = realloc(l->w, (size_t)cap * sizeof(*w));
        struct pollfd *p;

        if (!w)
            return -ENOMEM;
        l->w = w;
        p = realloc(l->p, (size_t)cap * sizeof(*p));
        if (!p)
            return -ENOMEM;
        l->p = p;
        l->cap = cap;
    }
    l->w[l->n++] = (struct watch){ .fd = fd, .events = events, .fn = fn, .opaque = opaque };
    l->dirty = true;
    return 0;
}

static void compact(struct vgpu_loop *l)
{
    int k = 0;

    for (int i = 0; i < l->n; i++)
        if (!l->w[i].gone)
            l->w[k++] = l->w[i];
    l->n = k;
}

void vgpu_loop_del(struct vgpu_loop *l, int fd)
{
    for (int i = 0; i < l->n; i++)
        if (l->w[i].fd == fd && !l->w[i].gone) {
            l->w[i].gone = true;
            l->dirty = true;
        }
    if (!l->dispatching)
        compact(l);
}

int vgpu_loop_set_events(struct vgpu_loop *l, int fd, short events)
{
    for (int i = 0; i < l->n; i++)
        if (l->w[i].fd == fd && !l->w[i].gone) {
            l->w[i].events = events;
            l->dirty = true;
            return 0;
        }
    return -ENOENT;
}

int vgpu_loop_count(const struct vgpu_loop *l)
{
    int n = 0;

    for (int i = 0; i < l->n; i++)
        n += !l->w[i].gone;
    return n;
}

int vgpu_loop_run_once(struct vgpu_loop *l, int timeout_ms)
{
    int n, ready;

    if (l->dirty) {
        for (int i = 0; i < l->n; i++)
            l->p[i] = (struct pollfd){ .fd = l->w[i].fd, .events = l->w[i].events };
        l->dirty = false;
    }
    n = l->n;
    ready = poll(l->p, (nfds_t)n, timeout_ms);
    if (ready < 0)
        return errno == EINTR ? 0 : -errno;
    l->dispatching = true;
    /* only the watches that were polled; ones added by a callback wait for the next round */
    for (int i = 0; i < n && ready > 0; i++) {
        short rev = l->p[i].revents;

        if (!rev)
            continue;
        ready--;
        if (!l->w[i].gone)
            l->w[i].fn(l, l->w[i].fd, rev, l->w[i].opaque);
    }
    l->dispatching = false;
    if (l->dirty)
        compact(l);
    return 0;
}
