/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The data plane both guest libraries share (each links its own copy, with
 * its own staging region id): copies of pageable memory go through the
 * staging region (a memfd host-direct, a slot of the shared BAR in a guest)
 * in two halves taking turns, filled and emptied by helper threads, while
 * page-locked buffers shared as regions are DMAed in place; without shared
 * memory, bytes travel in frames in pieces of VGPU_SHIM_CHUNK.  What a copy
 * means in its API (its call id, its status) is the library's: struct
 * vgpu_dp.
 */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane.h"

static const struct vgpu_dp *dp;

/*
 * The staging region: shared memory for copies from and to pageable memory
 * (host-direct over a unix socket).  A copy goes through it in pieces of
 * its size: the shim copies the bytes in or out, the server DMAs from or to
 * it, and no bytes travel in frames.  One copy uses it at a time.
 */
static pthread_mutex_t staging_lock = PTHREAD_MUTEX_INITIALIZER;
static uint8_t *staging;
static size_t staging_size;
static int staging_state;            /* 0 untried, 1 ready, -1 not available */

static bool staging_ready(void)
{
    if (staging_state == 0) {
        const char *v = getenv("VGPU_SHM_MB");
        size_t mb = v && *v ? strtoul(v, NULL, 10) : 64;

        staging_state = -1;
        if (mb && vgpu_client_can_share(vgpu_client_get())) {
            staging_size = mb << 20;
            staging = vgpu_client_region_new(vgpu_client_get(), dp->staging_region, staging_size);
        } else if (mb) {
            /* in a guest: a slot of the vgpu-stub device's shared BAR, if it has one */
            staging = vgpu_client_bar_region(vgpu_client_get(), dp->staging_region, &staging_size);
        }
        if (staging)
            staging_state = 1;
    }
    return staging_state == 1;
}

/*
 * fork(): the child's connection is new, and regions belong to the parent's
 * session.  The child keeps each page-locked buffer at its address but as
 * private memory with the same bytes (a shared mapping would let parent and
 * child write into each other's buffers), and copies carry bytes again.
 * The locks are held across fork so they are consistent in both.
 */
static pthread_mutex_t par_lock;
static int par_threads = -1;          /* copy helper threads, -1 until first use */

static void memory_atfork_prepare(void)
{
    pthread_mutex_lock(&staging_lock);
    pthread_mutex_lock(&par_lock);
    if (dp && dp->lock)
        dp->lock();
}

static void memory_atfork_parent(void)
{
    if (dp && dp->unlock)
        dp->unlock();
    pthread_mutex_unlock(&par_lock);
    pthread_mutex_unlock(&staging_lock);
}

static void memory_atfork_child(void)
{
    staging_state = 0;
    staging = NULL;
    par_threads = -1;           /* the helper threads are not in the child */
    if (dp && dp->forked)
        dp->forked();
    memory_atfork_parent();
}


/*
 * Copies into and out of the staging region are the host side of a
 * pageable copy; one thread's memcpy (about 10 GB/s) would bound it, so
 * large ones are split over helper threads (VGPU_COPY_THREADS, default 4,
 * 1 = none) started on first use.  par_start() hands a copy to the helpers
 * and returns, so the calling thread can have the server DMA the other half
 * of the staging region meanwhile; par_wait() waits for them.
 */
#define PAR_MIN ((size_t)4 << 20)
#define PAR_MAX 16

static pthread_mutex_t par_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t par_go = PTHREAD_COND_INITIALIZER, par_done = PTHREAD_COND_INITIALIZER;
static int par_pending;
static unsigned par_gen;
static uint8_t *par_dst;
static const uint8_t *par_src;
static size_t par_n;

static void par_part(int k, int parts)
{
    size_t per = (par_n / (size_t)parts + 4095) & ~(size_t)4095;
    size_t off = per * (size_t)k;

    if (off < par_n)
        memcpy(par_dst + off, par_src + off, par_n - off < per ? par_n - off : per);
}

static void *par_worker(void *arg)
{
    int k = (int)(intptr_t)arg;
    unsigned seen = 0;

    pthread_mutex_lock(&par_lock);
    for (;;) {
        while (par_gen == seen)
            pthread_cond_wait(&par_go, &par_lock);
        seen = par_gen;
        pthread_mutex_unlock(&par_lock);
        par_part(k, par_threads);
        pthread_mutex_lock(&par_lock);
        if (--par_pending == 0)
            pthread_cond_signal(&par_done);
    }
    return NULL;
}

static void par_init(void)
{
    const char *v = getenv("VGPU_COPY_THREADS");
    int want = v && *v ? atoi(v) : 4;
    sigset_t all, old;

    par_threads = 0;
    if (want <= 1)
        return;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    for (int i = 0; i < want && i < PAR_MAX; i++) {
        pthread_t t;

        if (pthread_create(&t, NULL, par_worker, (void *)(intptr_t)i))
            break;
        pthread_detach(t);
        par_threads++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* Starts copying n bytes; returns true when helpers took it, false when it was done here. */
static bool par_start(void *dst, const void *src, size_t n)
{
    if (par_threads < 0)
        par_init();
    if (n < PAR_MIN || par_threads == 0) {
        memcpy(dst, src, n);
        return false;
    }
    pthread_mutex_lock(&par_lock);
    par_dst = dst;
    par_src = src;
    par_n = n;
    par_pending = par_threads;
    par_gen++;
    pthread_cond_broadcast(&par_go);
    pthread_mutex_unlock(&par_lock);
    return true;
}

static void par_wait(void)
{
    pthread_mutex_lock(&par_lock);
    while (par_pending)
        pthread_cond_wait(&par_done, &par_lock);
    pthread_mutex_unlock(&par_lock);
}

/*
 * A pageable copy through the staging region, in two halves taking turns:
 * while the server DMAs one half, the helper threads fill (H2D) or empty
 * (D2H) the other.  Synchronous on the server's side, since the halves are
 * reused.  staging_lock held.
 */
static int staged_copy(Vgpu__Manual__CopyArgs *a, void *dst, const void *src, size_t count,
                       bool h2d)
{
    size_t half = staging_size / 2, done = 0;
    int st = 0, cur = 0;
    bool busy = false;                  /* helpers are working on the other half */

    a->async = false;
    a->region = dp->staging_region;
    if (h2d)
        busy = par_start(staging, src, count < half ? count : half);
    else {
        /* the first piece comes in before anything can go out */
        a->count = count < half ? count : half;
        a->region_offset = 0;
        a->dst = (uint64_t)(uintptr_t)dst;
        a->src = (uint64_t)(uintptr_t)src;
        st = dp->call(a, NULL, NULL, 0);
    }
    while (st == 0 && done < count) {
        size_t n = count - done < half ? count - done : half;
        size_t next = count - done - n < half ? count - done - n : half;
        uint8_t *here = staging + (size_t)cur * half, *there = staging + (size_t)(1 - cur) * half;

        if (h2d) {
            /* piece done..done+n is in here once the helpers finish */
            if (busy)
                par_wait();
            busy = next ? par_start(there, (const uint8_t *)src + done + n, next) : false;
            a->count = n;
            a->region_offset = (uint64_t)cur * half;
            a->dst = (uint64_t)(uintptr_t)dst + done;
            st = dp->call(a, NULL, NULL, 0);
        } else {
            /* piece done..done+n is in here: empty it while the next comes in there */
            busy = par_start((uint8_t *)dst + done, here, n);
            if (next) {
                a->count = next;
                a->region_offset = (uint64_t)(1 - cur) * half;
                a->src = (uint64_t)(uintptr_t)src + done + n;
                st = dp->call(a, NULL, NULL, 0);
            }
            if (busy)
                par_wait();
            busy = false;
        }
        done += n;
        cur = 1 - cur;
    }
    if (busy)
        par_wait();
    return st;
}


void vgpu_dp_init(const struct vgpu_dp *ops)
{
    dp = ops;
    pthread_atfork(memory_atfork_prepare, memory_atfork_parent, memory_atfork_child);
}

/*
 * An asynchronous copy to the device from page-locked memory whose bytes
 * are taken here, now (memory not shared with the server: smaller than a
 * region, or a guest's): natively the GPU reads it when the copy runs, so
 * a host callback queued ahead of the copy has run and what it wrote is
 * copied.  Only while a callback is due or running is the stream awaited
 * here; no other work before the copy writes the program's memory.
 * Pageable memory is taken at the call, as the driver does (on the H200,
 * driver 580, a copy behind a callback got the bytes from before it).
 */
void vgpu_dp_wait_for_callbacks(Vgpu__Manual__Direction dir, bool async, uint64_t stream,
                                const void *src)
{
    if (dir == VGPU__MANUAL__DIRECTION__DIR_H2D && async && dp->sync && dp->host_locked &&
        dp->host_locked(src) && vgpu_client_callbacks_due(vgpu_client_get()))
        dp->sync(stream);
}

int vgpu_dp_copy(Vgpu__Manual__CopyArgs *a, void *dst, const void *src, size_t count)
{
    bool h2d = a->dir == VGPU__MANUAL__DIRECTION__DIR_H2D;
    int st = 0;

    if (count >= VGPU_SHIM_SHARE_MIN) {
        const void *hp = h2d ? src : dst;
        uint64_t roff = 0;

        a->dst = (uint64_t)(uintptr_t)dst;
        a->src = (uint64_t)(uintptr_t)src;
        a->count = count;
        /* page-locked memory shared with the server: it DMAs, nothing is copied here */
        if (dp->host_region && (a->region = dp->host_region(hp, count, &roff))) {
            a->region_offset = roff;
            return dp->call(a, NULL, NULL, 0);
        }
        vgpu_dp_wait_for_callbacks(a->dir, a->async, a->stream, src);
        pthread_mutex_lock(&staging_lock);
        if (staging_ready()) {
            /* its parts are calls made with the lock held: no log callback runs in them */
            vgpu_client_quiet(vgpu_client_get(), 1);
            st = staged_copy(a, dst, src, count, h2d);
            vgpu_client_quiet(vgpu_client_get(), -1);
            pthread_mutex_unlock(&staging_lock);
            return st;
        }
        pthread_mutex_unlock(&staging_lock);
        a->region = 0;
    }
    if (count < VGPU_SHIM_SHARE_MIN)
        vgpu_dp_wait_for_callbacks(a->dir, a->async, a->stream, src);
    for (size_t off = 0; off < count && st == 0; off += VGPU_SHIM_CHUNK) {
        size_t n = count - off < VGPU_SHIM_CHUNK ? count - off : VGPU_SHIM_CHUNK;

        a->dst = (uint64_t)(uintptr_t)dst + (h2d ? off : 0);
        a->src = (uint64_t)(uintptr_t)src + (h2d ? 0 : off);
        a->count = n;
        st = h2d ? dp->call(a, (const uint8_t *)src + off, NULL, n)
                 : dp->call(a, NULL, (uint8_t *)dst + off, n);
    }
    return st;
}
