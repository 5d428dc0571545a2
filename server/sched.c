/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The scheduler's shared state: one anonymous shared mapping created by the
 * server before its first fork, so every session process (and the link
 * processes that fork sessions for a VM's channels) sees it.
 *
 * One robust process-shared mutex guards it; a session that dies holding
 * it leaves it consistent again for the next locker (every update below
 * leaves the table valid at each store that matters).  A waiting session
 * sleeps on a futex word in its own slot; whoever changes the state runs the
 * policy and wakes the sessions it grants.  Waiters also wake by themselves
 * when the policy says time alone will change its answer.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "scheduler.h"
#include "vgpu/fdio.h"
#include "vgpu/futex.h"

struct slot {
    int32_t pid;                      /* 0: free */
    uint32_t vm_id;
    char pool;
    uint8_t priority;
    uint16_t gpu;                     /* index in the pool */
    char client[48];
    uint64_t calls;                   /* updated by the owner alone */
    uint64_t held[VGPU_HELD_KINDS];   /* device memory bytes, streams: counted against VM limits */
    uint32_t queued;                  /* granted work items not yet finished */
    uint32_t waiting;                 /* in its class's queue */
    uint64_t ticket, since_ns;
    uint32_t granted;                 /* futex word: 1 when a grant is waiting for it */
    uint64_t grants, wait_ns;         /* totals, for vgpuctl */
};

struct domain {
    uint32_t members;                 /* sessions on it */
    uint64_t last_active_ns[VGPU_PRIO_CLASSES];
    /* sums over the domain's slots, kept with them, for the fast path */
    uint32_t waiting[VGPU_PRIO_CLASSES], queued[VGPU_PRIO_CLASSES];
};

struct shared {
    pthread_mutex_t lock;
    struct vgpu_sched_params params;
    uint64_t next_ticket;
    struct slot slot[VGPU_SCHED_MAX_SESSIONS];
    struct domain dom[VGPU_SCHED_MAX_POOLS][VGPU_SCHED_MAX_GPUS];
};

static struct shared *sh;
static int self = -1;                 /* this process's slot */

static void lock(void)
{
    if (pthread_mutex_lock(&sh->lock) == EOWNERDEAD)
        pthread_mutex_consistent(&sh->lock);
}

static void unlock(void)
{
    pthread_mutex_unlock(&sh->lock);
}

int vgpu_sched_init(const struct vgpu_sched_params *p)
{
    pthread_mutexattr_t ma;
    void *m = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    if (m == MAP_FAILED)
        return -errno;
    sh = m;
    memset(sh, 0, sizeof(*sh));
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&sh->lock, &ma);
    pthread_mutexattr_destroy(&ma);
    sh->params = *p;
    return 0;
}

static bool alive(const struct slot *s)
{
    return s->pid > 0 && (kill(s->pid, 0) == 0 || errno != ESRCH);
}

static int pool_index(char pool)
{
    return pool >= 'A' && pool <= 'Z' ? pool - 'A' : 0;
}

static struct domain *domain_of(const struct slot *s)
{
    return &sh->dom[pool_index(s->pool)][s->gpu % VGPU_SCHED_MAX_GPUS];
}

static bool same_domain(const struct slot *a, const struct slot *b)
{
    return a->pool == b->pool && a->gpu == b->gpu;
}

/* Frees slot i (its process is gone): its work left the GPU with its context. */
static void drop(int i)
{
    struct slot *s = &sh->slot[i];

    if (s->queued || s->waiting) {
        struct domain *d = domain_of(s);

        d->last_active_ns[s->priority] = vgpu_mono_ns();
        d->waiting[s->priority] -= s->waiting;
        d->queued[s->priority] -= s->queued;
    }
    domain_of(s)->members--;
    memset(s, 0, sizeof(*s));
}

/*
 * Runs the policy over the domain of slot `of` and wakes what it grants.
 * Called with the lock held after every change to that domain.
 */
static uint64_t decide(const struct slot *of)
{
    static struct vgpu_sched_waiter w[VGPU_PRIO_CLASSES][VGPU_SCHED_MAX_SESSIONS];
    struct vgpu_sched_view v = { .now_ns = vgpu_mono_ns() };
    const struct domain *d = domain_of(of);
    uint32_t grant[VGPU_SCHED_MAX_SESSIONS];
    uint64_t recheck;
    int n;

    for (int c = 0; c < VGPU_PRIO_CLASSES; c++) {
        v.cls[c].w = w[c];
        v.cls[c].last_active_ns = d->last_active_ns[c];
    }
    for (int i = 0; i < VGPU_SCHED_MAX_SESSIONS; i++) {
        struct slot *s = &sh->slot[i];
        struct vgpu_sched_class *k;

        if (!s->pid || !same_domain(s, of))
            continue;
        /* a waiter that died without being reaped yet must not be granted */
        if (s->waiting && i != self && !alive(s)) {
            drop(i);
            continue;
        }
        k = &v.cls[s->priority];
        k->queued += s->queued;
        if (s->waiting)
            w[s->priority][k->nw++] = (struct vgpu_sched_waiter){
                .slot = (uint32_t)i, .ticket = s->ticket, .since_ns = s->since_ns };
    }
    n = vgpu_sched_decide(&sh->params, &v, grant, VGPU_SCHED_MAX_SESSIONS, &recheck);
    for (int i = 0; i < n; i++) {
        struct slot *s = &sh->slot[grant[i]];

        struct domain *gd = domain_of(s);

        s->waiting = 0;
        s->queued++;
        gd->waiting[s->priority]--;
        gd->queued[s->priority]++;
        s->grants++;
        s->wait_ns += v.now_ns - s->since_ns;
        __atomic_store_n(&s->granted, 1, __ATOMIC_RELEASE);
        gd->last_active_ns[s->priority] = v.now_ns;
        if ((int)grant[i] != self)
            vgpu_futex_wake(&s->granted);
    }
    return recheck;
}

int vgpu_sched_join(const struct vgpu_sched_join *j)
{
    int found = -ENOSPC, of_vm = 0;

    if (!sh)
        return 0;
    lock();
    for (int i = 0; i < VGPU_SCHED_MAX_SESSIONS; i++) {
        struct slot *s = &sh->slot[i];

        if (s->pid && !alive(s))
            drop(i);
        of_vm += s->pid && s->vm_id == j->vm_id;
    }
    for (int i = 0; i < VGPU_SCHED_MAX_SESSIONS && (!j->max_vm || of_vm < (int)j->max_vm); i++) {
        struct slot *s = &sh->slot[i];

        if (!s->pid) {
            s->pid = (int32_t)getpid();
            s->vm_id = j->vm_id;
            s->pool = j->pool;
            s->priority = j->priority < VGPU_PRIO_CLASSES ? j->priority : VGPU_PRIO_LOW;
            snprintf(s->client, sizeof(s->client), "%s", j->client ? j->client : "");
            domain_of(s)->members++;
            found = self = i;
            break;
        }
    }
    if (found == -ENOSPC && j->max_vm && of_vm >= (int)j->max_vm)
        found = -EUSERS;
    unlock();
    return found;
}

bool vgpu_sched_joined(int pid)
{
    bool in = false;

    if (!sh || pid <= 0)
        return false;
    lock();
    for (int i = 0; i < VGPU_SCHED_MAX_SESSIONS && !in; i++)
        in = sh->slot[i].pid == pid;
    unlock();
    return in;
}

void vgpu_sched_leave(void)
{
    if (!sh || self < 0)
        return;
    lock();
    if (sh->slot[self].pid == (int32_t)getpid()) {
        struct slot copy = sh->slot[self];

        drop(self);
        decide(&copy);
    }
    self = -1;
    unlock();
}

void vgpu_sched_reap(int pid)
{
    if (!sh || pid <= 0)
        return;
    lock();
    for (int i = 0; i < VGPU_SCHED_MAX_SESSIONS; i++)
        if (sh->slot[i].pid == pid) {
            struct slot copy = sh->slot[i];

            drop(i);
            decide(&copy);
        }
    unlock();
}

void vgpu_sched_set_gpu(int gpu)
{
    if (!sh || self < 0 || gpu < 0)
        return;
    lock();
    {
        struct slot *s = &sh->slot[self];
        struct domain *d = domain_of(s);

        /* the sums follow the slot to its new domain */
        d->queued[s->priority] -= s->queued;
        d->members--;
        s->gpu = (uint16_t)(gpu % VGPU_SCHED_MAX_GPUS);
        domain_of(s)->queued[s->priority] += s->queued;
        domain_of(s)->members++;
    }
    unlock();
}

/*
 * Rule 2 for a session about to wait, in O(1): nobody of its class waits
 * before it and no higher class is busy.  Lock held.
 */
static bool free_to_go(const struct slot *s)
{
    const struct domain *d = domain_of(s);
    uint64_t now = vgpu_mono_ns();

    if (d->waiting[s->priority])
        return false;
    for (int c = s->priority + 1; c < VGPU_PRIO_CLASSES; c++)
        if (d->waiting[c] || d->queued[c] ||
            (d->last_active_ns[c] && now - d->last_active_ns[c] < sh->params.hold_ns))
            return false;
    return true;
}

void vgpu_sched_acquire(void)
{
    struct slot *s;
    uint64_t recheck;

    if (!sh || self < 0)
        return;
    s = &sh->slot[self];
    lock();
    if (free_to_go(s)) {
        /* what decide() would answer, without scanning: no waiter ahead, no higher class busy */
        struct domain *d = domain_of(s);

        s->queued++;
        s->grants++;
        d->queued[s->priority]++;
        d->last_active_ns[s->priority] = vgpu_mono_ns();
        unlock();
        return;
    }
    s->granted = 0;
    s->waiting = 1;
    domain_of(s)->waiting[s->priority]++;
    s->ticket = sh->next_ticket++;
    s->since_ns = vgpu_mono_ns();
    recheck = decide(s);
    while (!__atomic_load_n(&s->granted, __ATOMIC_ACQUIRE)) {
        uint64_t t = vgpu_mono_ns(), wait = recheck > t ? recheck - t : 0;

        unlock();
        /*
         * At most one hold at a time: a higher class's work ending changes
         * the answer after its hold without anyone waking this waiter.
         */
        if (wait > sh->params.hold_ns)
            wait = sh->params.hold_ns ? sh->params.hold_ns : 1000000u;
        vgpu_futex_wait(&s->granted, 0, wait);
        lock();
        if (!__atomic_load_n(&s->granted, __ATOMIC_ACQUIRE))
            recheck = decide(s);
    }
    unlock();
}

void vgpu_sched_release(uint32_t n)
{
    struct slot *s;

    if (!sh || self < 0 || !n)
        return;
    s = &sh->slot[self];
    lock();
    {
        struct domain *d = domain_of(s);
        uint32_t k = s->queued < n ? s->queued : n;

        s->queued -= k;
        d->queued[s->priority] -= k;
        d->last_active_ns[s->priority] = vgpu_mono_ns();
        /* only a waiter can be granted by this */
        if (d->waiting[0] || d->waiting[1] || d->waiting[2])
            decide(s);
    }
    unlock();
}

uint32_t vgpu_sched_max_queued(void)
{
    if (!sh || self < 0)
        return 32;
    return sh->params.max_queued[sh->slot[self].priority];
}

bool vgpu_sched_alone(void)
{
    /* read without the lock: a session joining is noticed at the next look */
    return !sh || self < 0 || __atomic_load_n(&domain_of(&sh->slot[self])->members, __ATOMIC_RELAXED) <= 1;
}

void vgpu_sched_count_call(void)
{
    if (sh && self >= 0)
        __atomic_add_fetch(&sh->slot[self].calls, 1, __ATOMIC_RELAXED);
}

int vgpu_sched_charge(enum vgpu_held what, int64_t delta, uint64_t limit)
{
    struct slot *me;
    uint64_t total = 0, *mine;
    int rc = 0;

    if (!sh || self < 0)
        return 0;
    me = &sh->slot[self];
    mine = &me->held[what];
    lock();
    if (delta > 0 && limit) {
        for (int i = 0; i < VGPU_SCHED_MAX_SESSIONS; i++)
            if (sh->slot[i].pid && sh->slot[i].vm_id == me->vm_id)
                total += sh->slot[i].held[what];
        if (total + (uint64_t)delta > limit || total + (uint64_t)delta < total)
            rc = -ENOMEM;
    }
    if (!rc)
        *mine = delta < 0 && (uint64_t)-delta > *mine ? 0 : *mine + (uint64_t)delta;
    unlock();
    return rc;
}

/* ---- the admin report ---- */

struct out {
    char *buf;
    size_t len, cap;
};

__attribute__((format(printf, 2, 3))) static void put(struct out *o, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (o->len >= o->cap)
        return;
    va_start(ap, fmt);
    n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->len = o->len + (size_t)n < o->cap ? o->len + (size_t)n : o->cap;
}

/* A client name (from an untrusted Hello): printable ASCII only, quotes escaped for JSON. */
static void put_name(struct out *o, const char *s, bool json)
{
    for (; *s; s++) {
        if (json && (*s == '"' || *s == '\\'))
            put(o, "\\%c", *s);
        else if (*s >= 0x20 && *s < 0x7f)
            put(o, "%c", *s);
        else if (!json)
            put(o, "?");
    }
}

int vgpu_sched_report(int fd, bool json, const char *const *pool_gpus)
{
    static char buf[256 * 1024];
    struct out o = { buf, 0, sizeof(buf) };
    struct slot snap[VGPU_SCHED_MAX_SESSIONS];
    struct domain dom[VGPU_SCHED_MAX_POOLS][VGPU_SCHED_MAX_GPUS];
    uint64_t now;
    bool first = true;
    int n = 0;

    if (!sh)
        return -ENODEV;
    lock();
    for (int i = 0; i < VGPU_SCHED_MAX_SESSIONS; i++)
        if (sh->slot[i].pid && !alive(&sh->slot[i]))
            drop(i);
    memcpy(snap, sh->slot, sizeof(snap));
    memcpy(dom, sh->dom, sizeof(dom));
    unlock();
    now = vgpu_mono_ns();
    put(&o, json ? "{\"sessions\":[" : "%-8s %-4s %-8s %-8s %10s %7s %7s %12s %7s  %s\n", "PID",
        "POOL", "PRIORITY", "VM", "CALLS", "QUEUED", "WAITING", "DEV-MEM", "STREAMS", "CLIENT");
    for (int i = 0; i < VGPU_SCHED_MAX_SESSIONS; i++) {
        const struct slot *s = &snap[i];

        if (!s->pid)
            continue;
        n++;
        if (json) {
            put(&o, "%s{\"pid\":%d,\"vm_id\":%u,\"pool\":\"%c\",\"gpu\":%u,\"priority\":\"%s\","
                "\"calls\":%" PRIu64 ",\"queued\":%u,\"waiting\":%u,\"grants\":%" PRIu64
                ",\"wait_us\":%" PRIu64 ",\"device_memory\":%" PRIu64 ",\"streams\":%" PRIu64 ",\"client\":\"",
                first ? "" : ",", s->pid, s->vm_id, s->pool, s->gpu, vgpu_prio_name(s->priority),
                s->calls, s->queued, s->waiting, s->grants, s->wait_ns / 1000, s->held[VGPU_HELD_MEMORY],
                s->held[VGPU_HELD_STREAMS]);
            put_name(&o, s->client, true);
            put(&o, "\"}");
            first = false;
        } else {
            put(&o, "%-8d %-4c %-8s %-8u %10" PRIu64 " %7u %7u %12" PRIu64 " %7" PRIu64 "  ", s->pid,
                s->pool, vgpu_prio_name(s->priority), s->vm_id, s->calls, s->queued, s->waiting,
                s->held[VGPU_HELD_MEMORY], s->held[VGPU_HELD_STREAMS]);
            put_name(&o, s->client, false);
            put(&o, "\n");
        }
    }
    put(&o, json ? "],\"pools\":[" : "%s\n%-4s %-6s %8s %8s %8s %8s %8s %8s\n",
        json ? "" : n ? "" : "(no sessions)", "POOL", "GPU", "Q-HIGH", "Q-MED", "Q-LOW", "W-HIGH",
        "W-MED", "W-LOW");
    first = true;
    for (int p = 0; p < VGPU_SCHED_MAX_POOLS; p++) {
        int ngpu = 0;
        uint32_t q[VGPU_SCHED_MAX_GPUS][VGPU_PRIO_CLASSES] = { { 0 } };
        uint32_t w[VGPU_SCHED_MAX_GPUS][VGPU_PRIO_CLASSES] = { { 0 } };
        bool used[VGPU_SCHED_MAX_GPUS] = { false };

        for (int i = 0; i < VGPU_SCHED_MAX_SESSIONS; i++) {
            const struct slot *s = &snap[i];

            if (!s->pid || pool_index(s->pool) != p)
                continue;
            used[s->gpu] = true;
            q[s->gpu][s->priority] += s->queued;
            w[s->gpu][s->priority] += s->waiting;
        }
        for (int g = 0; g < VGPU_SCHED_MAX_GPUS; g++)
            ngpu += used[g];
        if (!(pool_gpus && pool_gpus[p]) && !ngpu)
            continue;
        if (json) {
            put(&o, "%s{\"pool\":\"%c\",\"gpus\":\"%s\",\"queues\":[", first ? "" : ",", 'A' + p,
                pool_gpus && pool_gpus[p] ? pool_gpus[p] : "all");
            first = false;
        }
        for (int g = 0, k = 0; g < VGPU_SCHED_MAX_GPUS; g++) {
            if (!used[g] && !(g == 0 && !ngpu))
                continue;
            if (json)
                put(&o, "%s{\"gpu\":%d,\"queued\":{\"high\":%u,\"medium\":%u,\"low\":%u},"
                    "\"waiting\":{\"high\":%u,\"medium\":%u,\"low\":%u},\"busy_ms_ago\":{"
                    "\"high\":%" PRIu64 ",\"medium\":%" PRIu64 ",\"low\":%" PRIu64 "}}",
                    k++ ? "," : "", g, q[g][2], q[g][1], q[g][0], w[g][2], w[g][1], w[g][0],
                    dom[p][g].last_active_ns[2] ? (now - dom[p][g].last_active_ns[2]) / 1000000 : 0,
                    dom[p][g].last_active_ns[1] ? (now - dom[p][g].last_active_ns[1]) / 1000000 : 0,
                    dom[p][g].last_active_ns[0] ? (now - dom[p][g].last_active_ns[0]) / 1000000 : 0);
            else
                put(&o, "%-4c %-6d %8u %8u %8u %8u %8u %8u\n", 'A' + p, g, q[g][2], q[g][1],
                    q[g][0], w[g][2], w[g][1], w[g][0]);
        }
        if (json)
            put(&o, "]}");
        else if (pool_gpus && pool_gpus[p])
            put(&o, "     pool %c: host GPUs %s\n", 'A' + p, pool_gpus[p]);
    }
    if (json)
        put(&o, "]}\n");
    {
        struct iovec iov = { .iov_base = buf, .iov_len = o.len };

        return vgpu_fd_writev_all(fd, &iov, 1);
    }
}
