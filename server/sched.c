/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The scheduler's shared state (layout in sched_internal.h): one memfd the
 * server maps before its first fork and then seals, so every session
 * process (and the link processes that fork sessions for a VM's channels)
 * inherits it, and none can make a new writable mapping of it.
 *
 * Claiming and freeing slots (writing identities) is for trusted processes
 * and goes under a robust mutex in the policy area.  Everything a session
 * does per call is lock-free and writes only its own page: it decides its
 * own grant from what the sessions of its pool publish (vgpu_sched_decide
 * over that snapshot), so a confined session needs nothing else writable.
 * What it reads from another's page it copies once and bounds: a session
 * that lies about itself can make its own class look busy (which its
 * priority already allows it to do by working) and lose its own place, and
 * nothing more.  A waiter sleeps on a futex word in its own page; the rules
 * that can end a wait are time-based (the hold, starvation), so it sleeps
 * until the policy's recheck time (at most one hold), and is woken early
 * only as a hint (another process cannot change its word).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sched_internal.h"
#include "vgpu/futex.h"

#define SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE | F_SEAL_SEAL)
#define MAX_QUEUED_SEEN 65536u     /* what another session may claim to have queued, at most */

static struct vgpu_sched_shared *rw;       /* writable whole: trusted processes; NULL once confined */
static const struct vgpu_sched_shared *sh; /* the whole, for reading */
static struct vgpu_sched_page *me;         /* this session's page */
static int self = -1;                      /* this process's slot */
static int32_t self_pid;
static int claim_rc;                       /* what this process's claim answered */
static int my_prio;
static char my_pool;
static int view_fd = -1;                   /* read-only fd of the memfd, for confining */
static bool sealed;

/* Members of this session's pool (other than itself), as of gen members_gen. */
static int members[VGPU_SCHED_MAX_SESSIONS], nmembers;
static uint32_t members_gen;

const struct vgpu_sched_shared *vgpu_sched_view(void)
{
    return sh;
}

struct vgpu_sched_shared *vgpu_sched_writable(void)
{
    return rw;
}

void vgpu_sched_lock(void)
{
    if (pthread_mutex_lock(&rw->pol.p.lock) == EOWNERDEAD)
        pthread_mutex_consistent(&rw->pol.p.lock);
}

void vgpu_sched_unlock(void)
{
    pthread_mutex_unlock(&rw->pol.p.lock);
}

int vgpu_sched_alive(int32_t pid)
{
    return pid > 0 && (kill(pid, 0) == 0 || errno != ESRCH);
}

/* The read-only fd sessions map their view from: a fresh open of the memfd, never the writable one. */
static int open_view(int fd)
{
    char path[64];
    int ro;

    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    ro = open(path, O_RDONLY | O_CLOEXEC);
    if (ro < 0)
        return -errno;
    close(fd);
    return ro;
}

int vgpu_sched_init(const struct vgpu_sched_params *p)
{
    pthread_mutexattr_t ma;
    void *m;
    int fd = memfd_create("vgpu-sched", MFD_CLOEXEC | MFD_ALLOW_SEALING), ro;

    if (fd < 0)
        return -errno;
    if (ftruncate(fd, sizeof(*rw)) < 0 ||
        (m = mmap(NULL, sizeof(*rw), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED) {
        int rc = -errno;

        close(fd);
        return rc;
    }
    rw = m;
    sh = m;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&rw->pol.p.lock, &ma);
    pthread_mutexattr_destroy(&ma);
    rw->pol.p.params = *p;
    /* from here on no one, this process included, can map it writable again */
    sealed = fcntl(fd, F_ADD_SEALS, SEALS) == 0;
    ro = open_view(fd);
    view_fd = ro >= 0 ? ro : fd;
    return 0;
}

void vgpu_sched_drop(int i)
{
    memset(&rw->page[i].s, 0, sizeof(rw->page[i].s));
    memset(&rw->pol.p.id[i], 0, sizeof(rw->pol.p.id[i]));
    __atomic_add_fetch(&rw->pol.p.gen, 1, __ATOMIC_RELEASE);
}

/* A slot for this process with j's identity; lock held. */
static int claim(const struct vgpu_sched_join *j)
{
    uint32_t of_vm = 0;
    int free_slot = -1;

    for (int i = 0; i < VGPU_SCHED_MAX_SESSIONS; i++) {
        struct vgpu_sched_ident *id = &rw->pol.p.id[i];

        if (id->pid && !vgpu_sched_alive(id->pid))
            vgpu_sched_drop(i);
        if (id->pid)
            of_vm += id->vm_id == j->vm_id;
        else if (free_slot < 0)
            free_slot = i;
    }
    if (j->max_vm && of_vm >= j->max_vm)
        return -EUSERS;
    if (free_slot < 0)
        return -ENOSPC;
    {
        int i = free_slot;
        struct vgpu_sched_ident *id = &rw->pol.p.id[i];

        memset(&rw->page[i].s, 0, sizeof(rw->page[i].s));
        id->vm_id = j->vm_id;
        id->pool = j->pool;
        id->priority = j->priority < VGPU_PRIO_CLASSES ? j->priority : VGPU_PRIO_LOW;
        id->pid = (int32_t)getpid();
        __atomic_add_fetch(&rw->pol.p.gen, 1, __ATOMIC_RELEASE);
        self = i;
        self_pid = id->pid;
        my_prio = id->priority;
        my_pool = id->pool;
        me = &rw->page[i].s;
        members_gen = __atomic_load_n(&rw->pol.p.gen, __ATOMIC_ACQUIRE) - 1;
        return i;
    }
}

int vgpu_sched_claim(const struct vgpu_sched_join *j)
{
    if (!sh)
        return 0;
    if (self >= 0 && self_pid == (int32_t)getpid())
        return self;
    self = -1;
    me = NULL;
    if (!rw)
        return claim_rc ? claim_rc : -ENOSPC;
    vgpu_sched_lock();
    claim_rc = claim(j);
    vgpu_sched_unlock();
    return claim_rc;
}

int vgpu_sched_join(const struct vgpu_sched_join *j)
{
    int rc;

    if (!sh)
        return 0;
    rc = vgpu_sched_claim(j);
    if (rc < 0)
        return rc;
    snprintf(me->client, sizeof(me->client), "%s", j->client ? j->client : "");
    __atomic_store_n(&me->client_pid, j->client_pid, __ATOMIC_RELAXED);
    __atomic_store_n(&me->admitted, 1, __ATOMIC_RELEASE);
    return self;
}

bool vgpu_sched_admitted(int pid)
{
    if (!sh || pid <= 0)
        return false;
    for (int i = 0; i < VGPU_SCHED_MAX_SESSIONS; i++)
        if (__atomic_load_n(&sh->pol.p.id[i].pid, __ATOMIC_ACQUIRE) == pid)
            return __atomic_load_n(&sh->page[i].s.admitted, __ATOMIC_ACQUIRE) != 0;
    return false;
}

int vgpu_sched_confine(void)
{
    const size_t size = sizeof(*rw);
    char *old = (char *)rw, *page;
    void *view;
    long pagesz = sysconf(_SC_PAGESIZE);

    if (!sh || !rw)
        return 0;
    if (!sealed || view_fd < 0 || pagesz <= 0 || VGPU_SCHED_STRIDE % (unsigned long)pagesz)
        return -EOPNOTSUPP;
    view = mmap(NULL, size, PROT_READ, MAP_SHARED, view_fd, 0);
    if (view == MAP_FAILED)
        return -errno;
    if (self >= 0 && self_pid == (int32_t)getpid()) {
        /* keep exactly one page of the inherited writable mapping: this slot's */
        page = (char *)&rw->page[self];
        munmap(old, (size_t)(page - old));
        munmap(page + pagesz, (size_t)(old + size - (page + pagesz)));
    } else {
        munmap(old, size);
        self = -1;
        me = NULL;
    }
    rw = NULL;
    sh = view;
    close(view_fd);
    view_fd = -1;
    return 0;
}

void *vgpu_sched_own_page(size_t *len)
{
    long pagesz = sysconf(_SC_PAGESIZE);

    *len = pagesz > 0 ? (size_t)pagesz : 4096;
    return self >= 0 ? (void *)me : NULL;
}

static void refresh_members(void);

/* Wakes the waiters of this session's domain (a hint: they also wake by themselves). */
static void wake_domain(uint16_t gpu)
{
    for (int k = 0; k < nmembers; k++) {
        const struct vgpu_sched_page *o = &sh->page[members[k]].s;

        if (__atomic_load_n(&o->waiting, __ATOMIC_RELAXED) &&
            __atomic_load_n(&o->gpu, __ATOMIC_RELAXED) == gpu)
            vgpu_futex_wake((uint32_t *)&o->bell);
    }
}

void vgpu_sched_leave(void)
{
    if (!sh || self < 0 || self_pid != (int32_t)getpid())
        return;
    /* withdraw what this session published; its work left the GPU with its context */
    __atomic_store_n(&me->waiting, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&me->queued, 0, __ATOMIC_RELEASE);
    for (int k = 0; k < VGPU_HELD_KINDS; k++)
        __atomic_store_n(&me->held[k], 0, __ATOMIC_RELEASE);
    refresh_members();
    wake_domain(me->gpu);
    if (rw) {
        vgpu_sched_lock();
        if (rw->pol.p.id[self].pid == self_pid)
            vgpu_sched_drop(self);
        vgpu_sched_unlock();
    }
    self = -1;
    me = NULL;
}

void vgpu_sched_reap(int pid)
{
    if (!rw || pid <= 0)
        return;
    vgpu_sched_lock();
    for (int i = 0; i < VGPU_SCHED_MAX_SESSIONS; i++)
        if (rw->pol.p.id[i].pid == pid)
            vgpu_sched_drop(i);
    for (int i = 0; i < VGPU_SCHED_MAX_LINKS; i++)
        if (rw->pol.p.link[i].pid == pid)
            memset(&rw->pol.p.link[i], 0, sizeof(rw->pol.p.link[i]));
    vgpu_sched_unlock();
}

int vgpu_sched_link_up(uint32_t vm_id, char pool, uint8_t priority, const char *from, int32_t *dup)
{
    int32_t pid = (int32_t)getpid();
    int idx = -ENOSPC;

    *dup = 0;
    if (!rw)
        return -ENODEV;
    vgpu_sched_lock();
    for (int i = 0; i < VGPU_SCHED_MAX_LINKS; i++) {
        struct vgpu_sched_link *l = &rw->pol.p.link[i];

        if (l->pid && !vgpu_sched_alive(l->pid))
            memset(l, 0, sizeof(*l));       /* a link process that died unreaped */
        if (l->pid && l->pid != pid && l->vm_id == vm_id && !*dup)
            *dup = l->pid;
        if (!l->pid && idx < 0)
            idx = i;
    }
    if (idx >= 0) {
        struct vgpu_sched_link *l = &rw->pol.p.link[idx];

        *l = (struct vgpu_sched_link){ .vm_id = vm_id, .pool = pool, .priority = priority,
                                       .up_ns = vgpu_mono_ns() };
        snprintf(l->from, sizeof(l->from), "%s", from ? from : "");
        __atomic_store_n(&l->pid, pid, __ATOMIC_RELEASE);
    }
    vgpu_sched_unlock();
    return idx;
}

void vgpu_sched_link_channels(int index, uint32_t now, bool opened)
{
    struct vgpu_sched_link *l;

    if (!rw || index < 0 || index >= VGPU_SCHED_MAX_LINKS)
        return;
    l = &rw->pol.p.link[index];
    __atomic_store_n(&l->channels, (uint16_t)(now > UINT16_MAX ? UINT16_MAX : now), __ATOMIC_RELAXED);
    if (opened)
        __atomic_add_fetch(&l->channels_total, 1, __ATOMIC_RELAXED);
}

void vgpu_sched_link_down(int index)
{
    if (!rw || index < 0 || index >= VGPU_SCHED_MAX_LINKS)
        return;
    vgpu_sched_lock();
    if (rw->pol.p.link[index].pid == (int32_t)getpid())
        memset(&rw->pol.p.link[index], 0, sizeof(rw->pol.p.link[index]));
    vgpu_sched_unlock();
}

void vgpu_sched_set_gpu(int gpu)
{
    if (!sh || self < 0 || gpu < 0)
        return;
    __atomic_store_n(&me->gpu, (uint16_t)(gpu % VGPU_SCHED_MAX_GPUS), __ATOMIC_RELEASE);
}

/* The other sessions of this pool, refreshed when a slot was claimed or freed. */
static void refresh_members(void)
{
    uint32_t gen = __atomic_load_n(&sh->pol.p.gen, __ATOMIC_ACQUIRE);

    if (gen == members_gen)
        return;
    members_gen = gen;
    nmembers = 0;
    for (int i = 0; i < VGPU_SCHED_MAX_SESSIONS; i++)
        if (i != self && __atomic_load_n(&sh->pol.p.id[i].pid, __ATOMIC_RELAXED) &&
            __atomic_load_n(&sh->pol.p.id[i].pool, __ATOMIC_RELAXED) == my_pool)
            members[nmembers++] = i;
}

/* Another session's published state, copied once and bounded: nothing in it is trusted. */
struct peer {
    int prio;
    bool waiting;
    uint32_t queued;
    uint64_t since_ns, active_ns;
};

static bool read_peer(int i, uint16_t gpu, uint64_t now, struct peer *p)
{
    const struct vgpu_sched_ident *id = &sh->pol.p.id[i];
    const struct vgpu_sched_page *o = &sh->page[i].s;
    uint32_t q;

    /* the identity is the policy area's; a slot being freed or reclaimed is skipped */
    if (!__atomic_load_n(&id->pid, __ATOMIC_RELAXED) ||
        __atomic_load_n(&id->pool, __ATOMIC_RELAXED) != my_pool ||
        __atomic_load_n(&o->gpu, __ATOMIC_ACQUIRE) != gpu)
        return false;
    p->prio = __atomic_load_n(&id->priority, __ATOMIC_RELAXED) % VGPU_PRIO_CLASSES;
    p->waiting = __atomic_load_n(&o->waiting, __ATOMIC_ACQUIRE) != 0;
    q = __atomic_load_n(&o->queued, __ATOMIC_RELAXED);
    p->queued = q < MAX_QUEUED_SEEN ? q : MAX_QUEUED_SEEN;
    p->since_ns = __atomic_load_n(&o->since_ns, __ATOMIC_RELAXED);
    p->active_ns = __atomic_load_n(&o->active_ns, __ATOMIC_RELAXED);
    if (p->since_ns > now)
        p->since_ns = now;
    if (p->active_ns > now)
        p->active_ns = now;
    return true;
}

/*
 * Rule 2 for this session in O(sessions of its pool), without writing
 * anything shared: no higher class of its domain is busy.
 */
static bool free_to_go(uint64_t now)
{
    const struct vgpu_sched_params *pa = &sh->pol.p.params;
    uint16_t gpu = me->gpu;

    refresh_members();
    for (int k = 0; k < nmembers; k++) {
        struct peer p;

        if (!read_peer(members[k], gpu, now, &p) || p.prio <= my_prio)
            continue;
        if (p.waiting || p.queued || (p.active_ns && now - p.active_ns < pa->hold_ns))
            return false;
    }
    return true;
}

/*
 * The policy over this session's domain as its members publish it: is this
 * session among those it grants now?  *recheck_ns: when to look again.
 * A peer found dead is left out (its slot waits for its reaper).
 */
static bool granted(uint64_t now, uint64_t *recheck_ns)
{
    static struct vgpu_sched_waiter w[VGPU_PRIO_CLASSES][VGPU_SCHED_MAX_SESSIONS];
    uint32_t out[VGPU_SCHED_MAX_SESSIONS];
    struct vgpu_sched_view v = { .now_ns = now };
    uint16_t gpu = me->gpu;
    int n;

    for (int c = 0; c < VGPU_PRIO_CLASSES; c++)
        v.cls[c].w = w[c];
    w[my_prio][v.cls[my_prio].nw++] = (struct vgpu_sched_waiter){
        .slot = (uint32_t)self, .ticket = me->since_ns, .since_ns = me->since_ns };
    refresh_members();
    for (int k = 0; k < nmembers; k++) {
        struct vgpu_sched_class *c;
        struct peer p;

        if (!read_peer(members[k], gpu, now, &p) || (!p.waiting && !p.queued && !p.active_ns))
            continue;
        if ((p.waiting || p.queued) && !vgpu_sched_alive(sh->pol.p.id[members[k]].pid))
            continue;
        c = &v.cls[p.prio];
        c->queued = c->queued + p.queued < c->queued ? UINT32_MAX : c->queued + p.queued;
        if (p.active_ns > c->last_active_ns)
            c->last_active_ns = p.active_ns;
        if (p.waiting)
            w[p.prio][c->nw++] = (struct vgpu_sched_waiter){
                .slot = (uint32_t)members[k], .ticket = p.since_ns, .since_ns = p.since_ns };
    }
    n = vgpu_sched_decide(&sh->pol.p.params, &v, out, VGPU_SCHED_MAX_SESSIONS, recheck_ns);
    for (int i = 0; i < n; i++)
        if (out[i] == (uint32_t)self)
            return true;
    return false;
}

/* One more item of this session's on the GPU. */
static void take(uint64_t now)
{
    __atomic_store_n(&me->queued, me->queued + 1, __ATOMIC_RELEASE);
    __atomic_store_n(&me->active_ns, now, __ATOMIC_RELEASE);
    __atomic_store_n(&me->grants, me->grants + 1, __ATOMIC_RELAXED);
}

void vgpu_sched_acquire(void)
{
    uint64_t now, recheck, hold;

    if (!sh || self < 0)
        return;
    now = vgpu_mono_ns();
    if (free_to_go(now)) {
        take(now);
        return;
    }
    hold = sh->pol.p.params.hold_ns;
    __atomic_store_n(&me->since_ns, now, __ATOMIC_RELAXED);
    __atomic_store_n(&me->active_ns, now, __ATOMIC_RELAXED);
    __atomic_store_n(&me->waiting, 1, __ATOMIC_SEQ_CST);
    while (!granted(now = vgpu_mono_ns(), &recheck)) {
        uint64_t wait = recheck > now ? recheck - now : 0;

        /*
         * At most one hold at a time: a higher class's work ending changes
         * the answer after its hold, and nobody can change this word.
         */
        if (wait > hold)
            wait = hold ? hold : 1000000u;
        else if (!wait)
            wait = 1000;
        vgpu_futex_wait(&me->bell, me->bell, wait);
    }
    __atomic_store_n(&me->wait_ns, me->wait_ns + (now - me->since_ns), __ATOMIC_RELAXED);
    take(now);
    __atomic_store_n(&me->waiting, 0, __ATOMIC_RELEASE);
}

void vgpu_sched_release(uint32_t n)
{
    uint32_t q;

    if (!sh || self < 0 || !n)
        return;
    q = me->queued;
    __atomic_store_n(&me->active_ns, vgpu_mono_ns(), __ATOMIC_RELEASE);
    __atomic_store_n(&me->queued, q < n ? 0 : q - n, __ATOMIC_RELEASE);
    /* with a hold, no waiter can go before it runs out: they wake by themselves */
    if (!sh->pol.p.params.hold_ns)
        wake_domain(me->gpu);
}

uint32_t vgpu_sched_max_queued(void)
{
    if (!sh || self < 0)
        return 32;
    return sh->pol.p.params.max_queued[my_prio];
}

bool vgpu_sched_alone(void)
{
    uint16_t gpu;

    if (!sh || self < 0)
        return true;
    /* a session joining is noticed at the next look */
    refresh_members();
    gpu = me->gpu;
    for (int k = 0; k < nmembers; k++)
        if (__atomic_load_n(&sh->page[members[k]].s.gpu, __ATOMIC_RELAXED) == gpu &&
            __atomic_load_n(&sh->pol.p.id[members[k]].pid, __ATOMIC_RELAXED))
            return false;
    return true;
}

void vgpu_sched_count_call(void)
{
    if (sh && self >= 0)
        __atomic_store_n(&me->calls, me->calls + 1, __ATOMIC_RELAXED);
}

/* What all sessions of vm hold of one kind, saturated (each session's own count is its word). */
static uint64_t vm_total(uint32_t vm, enum vgpu_held what)
{
    uint64_t total = 0;

    for (int i = 0; i < VGPU_SCHED_MAX_SESSIONS; i++)
        if (__atomic_load_n(&sh->pol.p.id[i].pid, __ATOMIC_SEQ_CST) &&
            __atomic_load_n(&sh->pol.p.id[i].vm_id, __ATOMIC_RELAXED) == vm) {
            uint64_t h = __atomic_load_n(&sh->page[i].s.held[what], __ATOMIC_SEQ_CST);

            total = total + h < total ? UINT64_MAX : total + h;
        }
    return total;
}

uint64_t vgpu_sched_vm_held(enum vgpu_held what)
{
    if (!sh || self < 0 || (unsigned)what >= VGPU_HELD_KINDS)
        return 0;
    return vm_total(__atomic_load_n(&sh->pol.p.id[self].vm_id, __ATOMIC_RELAXED), what);
}

bool vgpu_sched_vm_peer(int32_t pid, uint32_t *client_pid)
{
    uint32_t vm;

    if (!sh || self < 0 || pid <= 0)
        return false;
    vm = __atomic_load_n(&sh->pol.p.id[self].vm_id, __ATOMIC_RELAXED);
    for (int i = 0; i < VGPU_SCHED_MAX_SESSIONS; i++)
        if (__atomic_load_n(&sh->pol.p.id[i].pid, __ATOMIC_SEQ_CST) == pid &&
            __atomic_load_n(&sh->pol.p.id[i].vm_id, __ATOMIC_RELAXED) == vm &&
            __atomic_load_n(&sh->page[i].s.admitted, __ATOMIC_ACQUIRE)) {
            *client_pid = __atomic_load_n(&sh->page[i].s.client_pid, __ATOMIC_RELAXED);
            return true;
        }
    return false;
}

/*
 * Publish first, then count: two sessions of one VM charging at once both
 * see both charges, so the limit is never exceeded (both may be refused
 * when together they would pass it).  Only sessions of the same VM count,
 * by the identities in the policy area, so what a session claims to hold
 * can refuse only its own VM's allocations.
 */
int vgpu_sched_charge(enum vgpu_held what, int64_t delta, uint64_t limit)
{
    uint64_t mine, next;

    if (!sh || self < 0 || (unsigned)what >= VGPU_HELD_KINDS)
        return 0;
    mine = me->held[what];
    if (delta <= 0) {
        uint64_t d = delta == INT64_MIN ? (uint64_t)INT64_MAX + 1 : (uint64_t)-delta;

        __atomic_store_n(&me->held[what], d > mine ? 0 : mine - d, __ATOMIC_RELEASE);
        return 0;
    }
    next = mine + (uint64_t)delta < mine ? UINT64_MAX : mine + (uint64_t)delta;
    __atomic_store_n(&me->held[what], next, __ATOMIC_SEQ_CST);
    if (limit && vm_total(sh->pol.p.id[self].vm_id, what) > limit) {
        __atomic_store_n(&me->held[what], mine, __ATOMIC_SEQ_CST);
        return -ENOMEM;
    }
    return 0;
}

/* ---- CUDA IPC handles among the sessions of a VM ---- */

int vgpu_sched_ipc_publish(enum vgpu_ipc_kind kind, const uint8_t *handle)
{
    int free_at = -1;

    if (!sh || self < 0 || !me)
        return -ENODEV;
    for (int i = 0; i < VGPU_IPC_MAX; i++) {
        uint32_t k = __atomic_load_n(&me->ipc[i].kind, __ATOMIC_RELAXED);

        if (k == (uint32_t)kind && !memcmp(me->ipc[i].handle, handle, VGPU_IPC_HANDLE_SIZE))
            return i;          /* published already (the same allocation exported again) */
        if (!k && free_at < 0)
            free_at = i;
    }
    if (free_at < 0)
        return -ENOSPC;
    memcpy(me->ipc[free_at].handle, handle, VGPU_IPC_HANDLE_SIZE);
    __atomic_store_n(&me->ipc[free_at].kind, (uint32_t)kind, __ATOMIC_RELEASE);
    return free_at;
}

void vgpu_sched_ipc_unpublish(int index)
{
    if (sh && self >= 0 && me && index >= 0 && index < VGPU_IPC_MAX)
        __atomic_store_n(&me->ipc[index].kind, VGPU_IPC_NONE, __ATOMIC_RELEASE);
}

/*
 * Reads other sessions' pages as published (kind, then the bytes it
 * guards); a session that scribbles its own page can only make its own
 * VM's handles look exported, which its process could open anyway.
 */
/* One scan: 1 found, 0 not, -1 a slot changed hands during it (scan again). */
static int ipc_scan(enum vgpu_ipc_kind kind, const uint8_t *handle, uint32_t vm)
{
    for (int i = 0; i < VGPU_SCHED_MAX_SESSIONS; i++) {
        if (!__atomic_load_n(&sh->pol.p.id[i].pid, __ATOMIC_SEQ_CST) ||
            __atomic_load_n(&sh->pol.p.id[i].vm_id, __ATOMIC_RELAXED) != vm)
            continue;
        uint32_t gen = __atomic_load_n(&sh->pol.p.gen, __ATOMIC_ACQUIRE);

        for (int k = 0; k < VGPU_IPC_MAX; k++) {
            const struct vgpu_sched_ipc *e = &sh->page[i].s.ipc[k];
            uint8_t copy[VGPU_IPC_HANDLE_SIZE];

            if (__atomic_load_n(&e->kind, __ATOMIC_ACQUIRE) != (uint32_t)kind)
                continue;
            memcpy(copy, e->handle, sizeof(copy));
            if (memcmp(copy, handle, sizeof(copy)))
                continue;
            /* the slot must still be that VM's session: claims and frees bump gen */
            if (__atomic_load_n(&sh->pol.p.gen, __ATOMIC_ACQUIRE) != gen)
                return -1;
            return __atomic_load_n(&sh->pol.p.id[i].vm_id, __ATOMIC_RELAXED) == vm;
        }
    }
    return 0;
}

bool vgpu_sched_ipc_published(enum vgpu_ipc_kind kind, const uint8_t *handle)
{
    uint32_t vm;
    int found = -1;

    if (!sh || self < 0 || kind == VGPU_IPC_NONE)
        return false;
    vm = __atomic_load_n(&sh->pol.p.id[self].vm_id, __ATOMIC_RELAXED);
    for (int tries = 0; found < 0 && tries < 8; tries++)
        found = ipc_scan(kind, handle, vm);
    return found > 0;
}
