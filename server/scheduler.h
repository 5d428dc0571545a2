/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The scheduler: who may put work on a GPU next.
 *
 * Sessions are separate processes (one CUDA context each), so the state the
 * scheduler decides on lives in one shared mapping the server creates before
 * its first fork (sched.c, layout in sched_internal.h).  Each session writes
 * only its own page of it and decides its own grant from what the others
 * publish: a session taken over can lie about itself, and so lose its own
 * place, but cannot write another's entry, identity or limits.  A session
 * asks for a grant before every call that puts work on the GPU (launches,
 * copies, memsets), and reports when that work has finished.  The decision
 * itself is vgpu_sched_decide(), a pure function over a snapshot of one
 * domain's queues (sched_policy.c), unit-tested without a GPU.
 *
 * A domain is one GPU of one pool: classes high > medium > low, waiters in
 * the order they came (by ticket) within a class.  Rules, in order:
 *   1. A class is busy while it has waiters, has work on the GPU, or had
 *      either less than hold_ns ago (so a client between two requests does
 *      not lose its place to a lower class).
 *   2. The waiters of a class are granted, oldest first, when no higher
 *      class is busy.
 *   3. Starvation: when a higher class is busy, each waiter of a class that
 *      has waited starve_ns or more is granted anyway (one work item; it
 *      waits again for its next).  Each waiter's own wait decides, never its
 *      place behind others, so no session can hold its class's turn.
 * How much work a session may have on the GPU at once (max_queued, per
 * class) is enforced by the session before it asks, so a flood of
 * low-priority launches is never more than max_queued[LOW] deep.
 */
#ifndef VGPU_SCHEDULER_H
#define VGPU_SCHEDULER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { VGPU_PRIO_LOW = 0, VGPU_PRIO_MEDIUM = 1, VGPU_PRIO_HIGH = 2, VGPU_PRIO_CLASSES = 3 };

#define VGPU_SCHED_MAX_SESSIONS 256   /* live sessions a server holds */
#define VGPU_SCHED_MAX_POOLS 26       /* pools 'A'..'Z' */
#define VGPU_SCHED_MAX_GPUS 16        /* GPUs one pool may hold */
#define VGPU_SCHED_MAX_LINKS 64       /* device links (VMs' QEMUs) vgpuctl lists */

struct vgpu_sched_params {
    uint64_t hold_ns;                 /* rule 1 */
    uint64_t starve_ns;               /* rule 3 */
    uint32_t max_queued[VGPU_PRIO_CLASSES];
};

struct vgpu_sched_waiter {
    uint32_t slot;                    /* the session */
    uint64_t ticket;                  /* FIFO order: lower came first */
    uint64_t since_ns;                /* when it started waiting */
};

struct vgpu_sched_class {
    const struct vgpu_sched_waiter *w; /* in any order */
    int nw;
    uint32_t queued;                  /* work items of this class on the GPU */
    uint64_t last_active_ns;          /* last time it had work or waiters (0: never) */
};

struct vgpu_sched_view {
    uint64_t now_ns;
    struct vgpu_sched_class cls[VGPU_PRIO_CLASSES];
};

/*
 * Which waiters of view v to grant now: their slots, at most max, in grant
 * order, into out; returns how many.  *recheck_ns is the earliest time the
 * answer can change without any event (a hold running out, a waiter
 * reaching starve_ns), or UINT64_MAX.  Pure: reads only its arguments.
 */
int vgpu_sched_decide(const struct vgpu_sched_params *p, const struct vgpu_sched_view *v,
                      uint32_t *out, int max, uint64_t *recheck_ns);

/* Defaults: hold 2 ms, starvation 50 ms, queued 32 / 8 / 2. */
void vgpu_sched_params_default(struct vgpu_sched_params *p);

/* "low", "medium", "high" or 0..2 -> class; -1 when neither. */
int vgpu_prio_parse(const char *s);
const char *vgpu_prio_name(int prio);

/* ---- the shared state (sched.c) ---- */

/*
 * Creates the shared state (a sealed memfd, sched_internal.h); called once
 * by the server before any fork.  Returns 0 or a negative errno.  Without
 * it every call below is a no-op that grants at once (unit tests of other
 * parts, tools).
 */
int vgpu_sched_init(const struct vgpu_sched_params *p);

struct vgpu_sched_join {
    uint32_t vm_id;
    char pool;
    uint8_t priority;
    const char *client;               /* program name, for vgpuctl */
    uint32_t client_pid;              /* its pid in its own system (Hello): told back to its VM only */
    uint32_t max_vm;                  /* sessions the VM may have at once (0: no bound) */
};

/*
 * The calling process (a session, before it confines itself) claims a slot
 * with j's identity unless it holds one.  Returns its slot, -ENOSPC when
 * all are taken, or -EUSERS when j->vm_id has j->max_vm slots already.
 */
int vgpu_sched_claim(const struct vgpu_sched_join *j);

/*
 * The calling process becomes a session past its handshake: it claims a
 * slot with j's identity (vm_id, pool, priority: from the listener or the
 * device, never from the client) unless it already holds one, publishes
 * j->client and marks itself admitted.  Returns its slot, or the error of
 * vgpu_sched_claim() (the one of the earlier claim, for a confined session,
 * which can no longer claim: it can only publish into the slot it claimed
 * before confining itself).
 */
int vgpu_sched_join(const struct vgpu_sched_join *j);
/* Has process pid joined (a session past its handshake)?  For the server's bounds. */
bool vgpu_sched_admitted(int pid);
/*
 * The session gives up write access to everything but its own slot's page:
 * the rest is mapped again from a read-only view that cannot be made
 * writable (the memfd is sealed against new writable mappings).  Call after
 * vgpu_sched_join() (or without a slot: then nothing stays writable).
 * Returns 0, or -EOPNOTSUPP when the kernel could not seal the state.
 */
int vgpu_sched_confine(void);
/* This session's writable page and its length (NULL when it holds none). */
void *vgpu_sched_own_page(size_t *len);
/*
 * The session (this process) ends: its queued work, wait and held memory
 * are withdrawn; an unconfined process also frees its slot (a confined
 * one's is freed when it has exited and is reaped).  Safe to call twice.
 */
void vgpu_sched_leave(void);
/* A process reaped child pid: frees its slot and link entry (trusted processes only). */
void vgpu_sched_reap(int pid);

/*
 * Device links, for vgpuctl: the link process (trusted) enters its VM's
 * identity once the HELLO is taken, keeps its channel count, and leaves.
 * vgpu_sched_link_up returns the entry's index, -ENOSPC when the table is
 * full, or -ENODEV without shared state; *dup is the pid of another live
 * link that says the same vm_id (0: none), which the caller warns about.
 */
int vgpu_sched_link_up(uint32_t vm_id, char pool, uint8_t priority, const char *from, int32_t *dup);
/* The link's channels now, and one more opened when opened is true. */
void vgpu_sched_link_channels(int index, uint32_t now, bool opened);
void vgpu_sched_link_down(int index);

/* Switches this session's domain to GPU gpu of its pool (0-based). */
void vgpu_sched_set_gpu(int gpu);
/* Waits for a grant for one work item; it counts as queued from then on. */
void vgpu_sched_acquire(void);
/* n work items of this session have left the GPU (or were never submitted). */
void vgpu_sched_release(uint32_t n);
/* How many work items this session may have queued (its class's bound). */
uint32_t vgpu_sched_max_queued(void);
/* Is this session the only one on its GPU (nobody to be fair to)? */
bool vgpu_sched_alone(void);
/* Counters vgpuctl shows. */
void vgpu_sched_count_call(void);

/*
 * Device memory and streams held by this session, checked against limits
 * of its VM (0 = none) over all the VM's sessions.  Returns 0, or -ENOMEM
 * when delta would take the VM over the limit (nothing is changed then).
 * Negative deltas always succeed.
 */
enum vgpu_held { VGPU_HELD_MEMORY, VGPU_HELD_STREAMS, VGPU_HELD_KINDS };
int vgpu_sched_charge(enum vgpu_held what, int64_t delta, uint64_t limit);
/* What all sessions of this session's VM hold of one kind (0 without shared state). */
uint64_t vgpu_sched_vm_held(enum vgpu_held what);
/*
 * Is process pid a session of this session's VM (past its handshake)?  Then
 * *client_pid is its program's pid as its Hello said (NVML's process list).
 */
bool vgpu_sched_vm_peer(int32_t pid, uint32_t *client_pid);

/*
 * CUDA IPC handles between the sessions of one VM: a session publishes
 * what it exported in its own page; another opens a handle only when a
 * live session of its own VM (by the identities in the policy area)
 * published it, so a handle from another VM, or made up, opens nothing.
 * publish: the entry's index, or -ENOSPC (VGPU_IPC_MAX published) or
 * -ENODEV (no shared state).  published: the same VM's sessions have it.
 */
#define VGPU_IPC_HANDLE_SIZE 64
#define VGPU_IPC_MAX 40
enum vgpu_ipc_kind { VGPU_IPC_NONE = 0, VGPU_IPC_MEM = 1, VGPU_IPC_EVENT = 2 };
int vgpu_sched_ipc_publish(enum vgpu_ipc_kind kind, const uint8_t *handle);
void vgpu_sched_ipc_unpublish(int index);
bool vgpu_sched_ipc_published(enum vgpu_ipc_kind kind, const uint8_t *handle);

struct vgpu_config;

/* What vgpuctl asks for: a table, JSON, or Prometheus's text exposition format. */
enum vgpu_report_format { VGPU_REPORT_TEXT, VGPU_REPORT_JSON, VGPU_REPORT_PROMETHEUS };

/* What the report says besides the scheduler's state (the server's, read only). */
struct vgpu_report_ctx {
    const char *version;                          /* "vgpu-server 0.1.0" */
    uint64_t started_ns;                          /* vgpu_mono_ns() at start: the uptime */
    const struct vgpu_config *cfg;                /* pools' GPUs and [vm] limits (may be NULL) */
};

/*
 * Writes the state to fd (the admin socket) in format fmt: the server's
 * version and uptime, every session, the device links, each VM's use
 * against its limits, the pools' queues, and warnings (two links that say
 * one vm_id).  0 or -errno.
 */
int vgpu_sched_report(int fd, enum vgpu_report_format fmt, const struct vgpu_report_ctx *ctx);

#endif
