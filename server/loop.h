/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The server's event loop (loop.c): file descriptors watched with poll(2),
 * one callback each.  Single-threaded; a loop belongs to one process.
 */
#ifndef VGPU_LOOP_H
#define VGPU_LOOP_H

#include <stdbool.h>

struct vgpu_loop;

/* Called with the events poll reported (POLLHUP and POLLERR included). */
typedef void (*vgpu_loop_fn)(struct vgpu_loop *l, int fd, short revents, void *opaque);

/* An empty loop, or NULL.  Freed with vgpu_loop_free(), which closes nothing. */
struct vgpu_loop *vgpu_loop_new(void);
void vgpu_loop_free(struct vgpu_loop *l);

/*
 * Watches fd for events (POLLIN, POLLOUT); fn gets opaque.  The loop does
 * not own fd: remove the watch before closing it.  0 or a negative errno.
 */
int vgpu_loop_add(struct vgpu_loop *l, int fd, short events, vgpu_loop_fn fn, void *opaque);
/* Stops watching fd; from now on its callback is not called, not even in this round. */
void vgpu_loop_del(struct vgpu_loop *l, int fd);
/* Changes what fd is watched for; 0, or -ENOENT when it is not watched. */
int vgpu_loop_set_events(struct vgpu_loop *l, int fd, short events);
/* How many fds are watched. */
int vgpu_loop_count(const struct vgpu_loop *l);

/*
 * Waits up to timeout_ms (-1: for ever) and calls the callback of every
 * ready fd once.  0 (a signal or the timeout counts as a round), or a
 * negative errno from poll.
 */
int vgpu_loop_run_once(struct vgpu_loop *l, int timeout_ms);

#endif
