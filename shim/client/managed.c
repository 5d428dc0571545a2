/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Managed memory's shadows, for every library of the process (managed.h),
 * with the guarantees CUDA gives on a device without concurrent managed
 * access (the attribute vgpu reports as 0): the host may touch managed
 * memory while no kernel runs, that is after a synchronizing call; kernels
 * see what the host wrote before their launch.
 *
 * The memory is real managed memory on the server.  Here, the program gets
 * its address, and a shadow of it is mapped at that same address (unified
 * addressing: one pointer for host and device), in chunks of 256 KiB whose
 * state the page protections keep:
 *
 *   invalid  (PROT_NONE): the device may hold newer bytes.  A host access
 *            faults; the handler fetches the chunk from the server (a
 *            device-to-host copy) and makes it clean;
 *   clean    (PROT_READ): equal to the device's.  A write faults; the
 *            handler makes the chunk dirty;
 *   dirty    (PROT_READ|PROT_WRITE): written here since.
 *
 * Before anything that puts work on the GPU (a call flagged VGPU_FN_WORK
 * of either library: launches, memsets, graph launches), the client calls
 * before_work() below: dirty chunks are copied to the device and every
 * chunk becomes invalid.  Copies and memsets that name managed memory
 * treat it as device memory (device_side(): dirty chunks they read pushed
 * first; chunks they write invalidated), so no library touches a shadow
 * inside a call.  What the program reads after a synchronizing call is
 * fetched on its first access, a chunk at a time.
 *
 * The bytes move through the move function of the library that added each
 * range (a raw copy of its own API); that library is pinned, so the
 * function outlives any dlclose.
 *
 * A shadow is placed with MAP_FIXED_NOREPLACE; when the server's address
 * is taken in this process, the allocation fails.  The SIGSEGV handler is
 * installed with the first managed range and hands faults outside managed
 * memory to the handler before it.
 *
 * The state is the process's (the signal handler must find it): only the
 * copy of this library that made the process's client keeps any; other
 * copies reach it through the client's ops.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "client_internal.h"
#include "managed.h"

#define CHUNK (256u << 10)
#define PAGE 4096u

enum { INVALID, CLEAN, DIRTY };

struct area {                   /* a page-aligned span of shadow memory */
    uintptr_t lo, hi;
    uint8_t *st;                /* per chunk, from lo */
    size_t nchunks;
    int refs;                   /* managed ranges in it */
    bool all_invalid;
};

struct mrange {
    uintptr_t base;
    size_t size;
    struct area *area;
    vgpu_managed_move move;     /* the adding library's */
};

static pthread_mutex_t mng_lock = PTHREAD_MUTEX_INITIALIZER;
static struct area **areas;
static int nareas, cap_areas;
static struct mrange *ranges;
static int nranges, cap_ranges;
static int live;                /* nranges, read without the lock on the fast paths */
static __thread bool busy;      /* this thread is inside the code below (its copies skip the hooks) */
static __thread uintptr_t last_dirty_fault;   /* the writable chunk this thread last faulted on */
static struct sigaction old_segv;
static bool handler_on, hooked;
__thread int vgpu_client_in_call;

static uintptr_t page_down(uintptr_t a)
{
    return a & ~(uintptr_t)(PAGE - 1);
}

static uintptr_t page_up(uintptr_t a)
{
    return (a + PAGE - 1) & ~(uintptr_t)(PAGE - 1);
}

static struct area *area_of(uintptr_t a)
{
    for (int i = 0; i < nareas; i++)
        if (a >= areas[i]->lo && a < areas[i]->hi)
            return areas[i];
    return NULL;
}

static void chunk_span(const struct area *ar, size_t i, uintptr_t *lo, size_t *n)
{
    uintptr_t end;

    *lo = ar->lo + i * CHUNK;
    end = *lo + CHUNK < ar->hi ? *lo + CHUNK : ar->hi;
    *n = end - *lo;
}

/*
 * Copies chunk i of ar from its shadow to the device (to_device: a push),
 * or from the device into the chunk-sized buffer into: the parts of it
 * that managed ranges cover, which is all the
 * server knows as the program's memory (a chunk may reach past a range's
 * end to its page's, or span the gap between two variables).
 */
static int move(struct area *ar, size_t i, bool to_device, uint8_t *into)
{
    uintptr_t lo;
    size_t n;
    int st = 0;

    chunk_span(ar, i, &lo, &n);
    for (int r = 0; r < nranges && st == 0; r++) {
        uintptr_t a = ranges[r].base > lo ? ranges[r].base : lo;
        uintptr_t b = ranges[r].base + ranges[r].size < lo + n ? ranges[r].base + ranges[r].size : lo + n;

        if (ranges[r].area != ar || a >= b)
            continue;
        st = to_device ? ranges[r].move((void *)a, a, b - a, true)
                       : ranges[r].move(into + (a - lo), a, b - a, false);
    }
    return st;
}

static void fatal(const char *what, uintptr_t a)
{
    char line[256];
    int n = snprintf(line, sizeof(line), "vgpu: managed memory at %#lx: %s; the program cannot go "
                     "on\n", (unsigned long)a, what);

    if (n > 0 && write(2, line, (size_t)n) < 0)
        _exit(127);
    abort();
}

/* A shadow's protection that did not change would make its state a lie: never silently. */
static void protect(uintptr_t a, size_t n, int prot)
{
    if (mprotect((void *)a, n, prot))
        fatal(errno == ENOMEM ? "its pages could not be protected (vm.max_map_count reached?)"
                              : "its pages could not be protected", a);
}

/* Pushes the dirty chunks of ar in [lo, hi) to the device; they stay readable (clean). */
static void push(struct area *ar, uintptr_t lo, uintptr_t hi)
{
    for (size_t i = (lo - ar->lo) / CHUNK; i < ar->nchunks && ar->lo + i * CHUNK < hi; i++) {
        uintptr_t c;
        size_t n;

        if (ar->st[i] != DIRTY)
            continue;
        chunk_span(ar, i, &c, &n);
        if (move(ar, i, true, NULL) != 0)
            fatal("the bytes the program wrote could not be sent to the GPU", c);
        protect(c, n, PROT_READ);
        ar->st[i] = CLEAN;
    }
}

/* Makes the chunks of ar in [lo, hi) invalid (the device will hold newer bytes). */
static void invalidate(struct area *ar, uintptr_t lo, uintptr_t hi)
{
    for (size_t i = (lo - ar->lo) / CHUNK; i < ar->nchunks && ar->lo + i * CHUNK < hi; i++) {
        uintptr_t c;
        size_t n;

        if (ar->st[i] == INVALID)
            continue;
        chunk_span(ar, i, &c, &n);
        protect(c, n, PROT_NONE);
        ar->st[i] = INVALID;
    }
}

static void before_work(void)
{
    if (!__atomic_load_n(&live, __ATOMIC_RELAXED) || busy)
        return;
    pthread_mutex_lock(&mng_lock);
    busy = true;
    for (int i = 0; i < nareas; i++) {
        struct area *ar = areas[i];

        if (ar->all_invalid)
            continue;
        push(ar, ar->lo, ar->hi);
        invalidate(ar, ar->lo, ar->hi);
        ar->all_invalid = true;
    }
    busy = false;
    pthread_mutex_unlock(&mng_lock);
}

/* For each area [p, p+n) meets: push its dirty chunks there, and with write, invalidate them. */
static void device_side(const void *p, size_t n, bool write)
{
    uintptr_t lo = (uintptr_t)p, hi = lo + n;

    if (!__atomic_load_n(&live, __ATOMIC_RELAXED) || busy || !n || hi < lo)
        return;
    pthread_mutex_lock(&mng_lock);
    busy = true;
    for (int i = 0; i < nareas; i++) {
        struct area *ar = areas[i];
        uintptr_t a = lo > ar->lo ? lo : ar->lo, b = hi < ar->hi ? hi : ar->hi;

        if (a >= b)
            continue;
        push(ar, a, b);
        if (write)
            invalidate(ar, a, b);
    }
    busy = false;
    pthread_mutex_unlock(&mng_lock);
}

void vgpu_managed_local_device_side(struct vgpu_client *c, const void *p, size_t n, bool write)
{
    (void)c;
    device_side(p, n, write);
}

bool vgpu_managed_local_busy(void)
{
    return busy;
}

bool vgpu_managed_local_holds(struct vgpu_client *c, const void *p, size_t n)
{
    bool yes = false;

    (void)c;
    if (!__atomic_load_n(&live, __ATOMIC_RELAXED))
        return false;
    pthread_mutex_lock(&mng_lock);
    for (int i = 0; i < nranges && !yes; i++)
        yes = (uintptr_t)p >= ranges[i].base && (uintptr_t)p - ranges[i].base < ranges[i].size &&
              n <= ranges[i].size - ((uintptr_t)p - ranges[i].base);
    pthread_mutex_unlock(&mng_lock);
    return yes;
}

/* ---- faults ---- */

/* 0 when the fault at a was managed memory's and is served; -1 when it is not ours. */
static int fault(uintptr_t a)
{
    struct area *ar;
    size_t i;
    uintptr_t c;
    size_t n;

    if (busy)
        return -1;              /* our own access faulted: not a shadow's state */
    if ((vgpu_client_in_call > 0)) {
        /*
         * A CUDA call of this thread writes its outputs into managed memory
         * while holding the client's lock; a thread sending the host's side
         * of managed memory holds our lock and waits for the client's.  Not
         * a hang: a second of trying, then the reason.
         */
        int tries = 0;

        while (pthread_mutex_trylock(&mng_lock)) {
            struct timespec ms = { 0, 1000000 };

            if (++tries == 1000)
                fatal("a CUDA call wrote its results into it while another thread was sending "
                      "work to the GPU", a);
            nanosleep(&ms, NULL);
        }
    } else {
        pthread_mutex_lock(&mng_lock);
    }
    ar = area_of(a);
    if (!ar) {
        pthread_mutex_unlock(&mng_lock);
        return -1;
    }
    i = (a - ar->lo) / CHUNK;
    chunk_span(ar, i, &c, &n);
    if (ar->st[i] == INVALID) {
        if ((vgpu_client_in_call > 0))
            fatal("a CUDA call read it as host memory while the GPU may hold newer bytes "
                  "(vgpu serves this only to the program's own accesses)", a);
        /*
         * Fetched aside and put in place whole (mremap), so another thread
         * touching the chunk meanwhile still faults and waits, never sees
         * it half filled or loses a write to the fetch.
         */
        void *tmp;

        busy = true;
        tmp = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (tmp == MAP_FAILED)
            fatal("no memory to fetch it into", a);
        if (move(ar, i, false, tmp) != 0)
            fatal("its bytes could not be fetched from the GPU", a);
        if (mprotect(tmp, n, PROT_READ) ||
            mremap(tmp, n, n, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)c) == MAP_FAILED)
            fatal("its fetched bytes could not be put in place", a);
        ar->st[i] = CLEAN;
        ar->all_invalid = false;
        busy = false;
    } else if (ar->st[i] == CLEAN) {
        protect(c, n, PROT_READ | PROT_WRITE);
        ar->st[i] = DIRTY;
    } else if (ar->st[i] == DIRTY) {
        /*
         * Writable by its state: another thread made it so while this one
         * waited (retry), unless this thread faulted here just before: then
         * the fault is not a shadow's after all.
         */
        if (last_dirty_fault == c) {
            last_dirty_fault = 0;
            pthread_mutex_unlock(&mng_lock);
            return -1;
        }
        last_dirty_fault = c;
        pthread_mutex_unlock(&mng_lock);
        return 0;
    }
    last_dirty_fault = 0;
    pthread_mutex_unlock(&mng_lock);
    return 0;
}

static void on_segv(int sig, siginfo_t *si, void *uc)
{
    int e = errno;

    if (fault((uintptr_t)si->si_addr) == 0) {
        errno = e;
        return;
    }
    errno = e;
    /* not managed memory: the handler before ours, or the default action when the access repeats */
    if (old_segv.sa_flags & SA_SIGINFO) {
        if (old_segv.sa_sigaction) {
            old_segv.sa_sigaction(sig, si, uc);
            return;
        }
    } else if (old_segv.sa_handler != SIG_DFL && old_segv.sa_handler != SIG_IGN) {
        old_segv.sa_handler(sig);
        return;
    }
    signal(SIGSEGV, SIG_DFL);
}

static void handler_install(void)
{
    struct sigaction sa;

    if (handler_on)
        return;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, &old_segv) == 0)
        handler_on = true;
}

/* ---- ranges ---- */

static int grow(void **p, int *cap, int n, size_t elem)
{
    void *q;
    int c;

    if (n < *cap)
        return 0;
    c = *cap ? 2 * *cap : 16;
    q = realloc(*p, (size_t)c * elem);
    if (!q)
        return -ENOMEM;
    *p = q;
    *cap = c;
    return 0;
}

/* Maps [lo, hi) where no area is: each gap of it, PROT_NONE.  0, or -errno (nothing left mapped). */
static int map_gaps(uintptr_t lo, uintptr_t hi)
{
    uintptr_t a = lo;

    while (a < hi) {
        struct area *ar = area_of(a);
        uintptr_t b = a;
        void *p;

        if (ar) {
            a = ar->hi;
            continue;
        }
        while (b < hi && !area_of(b))
            b += PAGE;
        p = mmap((void *)a, b - a, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
                 -1, 0);
        if (p != (void *)a) {
            int e = p == MAP_FAILED ? errno : EEXIST;

            if (p != MAP_FAILED)
                munmap(p, b - a);
            for (uintptr_t u = lo; u < a;) {      /* undo this call's gaps */
                struct area *in = area_of(u);

                if (in) {
                    u = in->hi;
                    continue;
                }
                munmap((void *)u, PAGE);
                u += PAGE;
            }
            return -e;
        }
        a = b;
    }
    return 0;
}

/*
 * The area for [lo, hi), page-aligned: an area holding it, or a new one
 * over it and every area it meets (their dirty chunks pushed first, all
 * of it invalid after).  NULL with errno when the span cannot be mapped.
 */
static struct area *area_for(uintptr_t lo, uintptr_t hi)
{
    struct area *ar, *hit = area_of(lo);
    int refs = 0, rc;

    if (hit && hi <= hit->hi)
        return hit;
    for (int i = 0; i < nareas; i++)
        if (areas[i]->lo < hi && lo < areas[i]->hi) {
            lo = lo < areas[i]->lo ? lo : areas[i]->lo;
            hi = hi > areas[i]->hi ? hi : areas[i]->hi;
        }
    ar = calloc(1, sizeof(*ar));
    if (!ar || (rc = grow((void **)&areas, &cap_areas, nareas, sizeof(*areas)))) {
        free(ar);
        errno = ENOMEM;
        return NULL;
    }
    ar->lo = lo;
    ar->hi = hi;
    ar->nchunks = (hi - lo + CHUNK - 1) / CHUNK;
    ar->st = calloc(ar->nchunks, 1);        /* INVALID */
    ar->all_invalid = true;
    if (!ar->st || (rc = map_gaps(lo, hi))) {
        errno = ar->st ? -rc : ENOMEM;
        free(ar->st);
        free(ar);
        return NULL;
    }
    /* the areas it swallows: their bytes to the device, then one area over all */
    for (int i = 0; i < nareas;) {
        struct area *old = areas[i];

        if (old->lo >= lo && old->hi <= hi) {
            push(old, old->lo, old->hi);
            protect(old->lo, old->hi - old->lo, PROT_NONE);
            refs += old->refs;
            for (int r = 0; r < nranges; r++)
                if (ranges[r].area == old)
                    ranges[r].area = ar;
            free(old->st);
            free(old);
            areas[i] = areas[--nareas];
            continue;
        }
        i++;
    }
    ar->refs = refs;
    areas[nareas++] = ar;
    return ar;
}


int vgpu_managed_local_add(struct vgpu_client *c, void *p, size_t size, vgpu_managed_move mv)
{
    uintptr_t base = (uintptr_t)p;
    struct area *ar;
    int rc = 0;

    if (!p || !size || base + size < base || !mv)
        return -EINVAL;
    pthread_mutex_lock(&mng_lock);
    busy = true;
    if (grow((void **)&ranges, &cap_ranges, nranges, sizeof(*ranges))) {
        rc = -ENOMEM;
    } else if (!(ar = area_for(page_down(base), page_up(base + size)))) {
        rc = -errno;
    } else {
        /*
         * An area that held other ranges: what its chunks here say is about
         * them.  Their dirty bytes go first (the new range is not listed
         * yet, so none of its own old shadow goes with them), then the
         * chunks are the device's: the new range's bytes come from there.
         */
        push(ar, page_down(base), page_up(base + size));
        invalidate(ar, page_down(base), page_up(base + size));
        ar->refs++;
        ranges[nranges++] = (struct mrange){ .base = base, .size = size, .area = ar, .move = mv };
        __atomic_store_n(&live, nranges, __ATOMIC_RELAXED);
        handler_install();
        /* before work from either library (libcuda.so.1's launches too): the host's side first */
        if (!hooked) {
            __atomic_store_n(&c->before_work, before_work, __ATOMIC_RELEASE);
            __atomic_store_n(&hooked, true, __ATOMIC_RELAXED);
        }
    }
    busy = false;
    pthread_mutex_unlock(&mng_lock);
    if (rc == 0)
        vgpu_client_pin((const void *)(uintptr_t)mv);
    return rc;
}

bool vgpu_managed_local_remove(struct vgpu_client *c, void *p, size_t *size_out)
{
    bool found = false;
    size_t size = 0;

    (void)c;
    if (!__atomic_load_n(&live, __ATOMIC_RELAXED))
        return false;
    pthread_mutex_lock(&mng_lock);
    for (int i = 0; i < nranges; i++) {
        struct area *ar = ranges[i].area;

        if (ranges[i].base != (uintptr_t)p)
            continue;
        found = true;
        size = ranges[i].size;
        ranges[i] = ranges[--nranges];
        if (--ar->refs == 0) {
            munmap((void *)ar->lo, ar->hi - ar->lo);
            for (int a = 0; a < nareas; a++)
                if (areas[a] == ar) {
                    areas[a] = areas[--nareas];
                    break;
                }
            free(ar->st);
            free(ar);
        }
        break;
    }
    __atomic_store_n(&live, nranges, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&mng_lock);
    if (found)
        vgpu_advice_forget(p, size);    /* its pages' advice and prefetches with it */
    if (found && size_out)
        *size_out = size;
    return found;
}

/* ---- managed.h: whichever copy made c ---- */

/* An older copy's client keeps no managed memory. */
#define HAS_OP(c, op) ((c)->ops->size >= offsetof(struct vgpu_client_ops, op) + sizeof((c)->ops->op))

int vgpu_client_managed_add(struct vgpu_client *c, void *p, size_t size, vgpu_managed_move mv)
{
    return HAS_OP(c, managed_add) ? c->ops->managed_add(c, p, size, mv) : -EOPNOTSUPP;
}

bool vgpu_client_managed_remove(struct vgpu_client *c, void *p, size_t *size)
{
    return HAS_OP(c, managed_remove) && c->ops->managed_remove(c, p, size);
}

void vgpu_client_managed_device_side(struct vgpu_client *c, const void *p, size_t n, bool write)
{
    if (HAS_OP(c, managed_device_side))
        c->ops->managed_device_side(c, p, n, write);
}

bool vgpu_client_managed_holds(struct vgpu_client *c, const void *p, size_t n)
{
    return HAS_OP(c, managed_holds) && c->ops->managed_holds(c, p, n);
}

int vgpu_client_managed_advise(struct vgpu_client *c, const void *p, size_t n, int advice,
                               struct vgpu_mem_loc loc)
{
    return HAS_OP(c, managed_advise) ? c->ops->managed_advise(c, p, n, advice, loc) : -EOPNOTSUPP;
}

int vgpu_client_managed_prefetched(struct vgpu_client *c, const void *p, size_t n,
                                   struct vgpu_mem_loc loc)
{
    return HAS_OP(c, managed_prefetched) ? c->ops->managed_prefetched(c, p, n, loc) : -EOPNOTSUPP;
}

int vgpu_client_managed_range_attrs(struct vgpu_client *c, void **data, const size_t *sizes,
                                    const int *attrs, size_t n, const void *p, size_t count)
{
    return HAS_OP(c, managed_range_attrs) ? c->ops->managed_range_attrs(c, data, sizes, attrs, n,
                                                                        p, count)
                                          : VGPU_RANGE_EINVAL;
}
