/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The layout of the scheduler's shared state, for sched.c (claims and the
 * sessions' side), sched_report.c (the admin report), contain.c and tests.
 *
 * One memfd, mapped writable by the server before its first fork and then
 * sealed against any new writable mapping (F_SEAL_FUTURE_WRITE).  It holds
 * two kinds of thing:
 *   - the policy area: parameters, and each slot's identity (pid, vm_id,
 *     pool, priority).  Written only by trusted processes (the server, a
 *     VM's link process, a session before it confines itself), under `lock`;
 *   - one page per slot: what that session publishes (its GPU, work queued,
 *     whether it waits and since when, device memory held, counters).
 *     Written by that session alone (and zeroed by a trusted process when the
 *     slot is claimed or freed); every other session reads it.
 * A confined session (vgpu_sched_confine) keeps only its own page writable
 * and maps the rest from a read-only view it cannot upgrade.  Readers copy
 * what they read from another session's page and bound it before use.
 */
#ifndef VGPU_SCHED_INTERNAL_H
#define VGPU_SCHED_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "scheduler.h"

/* A slot's page: a multiple of every page size Linux uses (4 KiB, 16 KiB, 64 KiB). */
#define VGPU_SCHED_STRIDE 65536u

struct vgpu_sched_ident {
    int32_t pid;                      /* 0: free */
    uint32_t vm_id;
    char pool;
    uint8_t priority;                 /* always < VGPU_PRIO_CLASSES */
};

/* A CUDA IPC handle a session exported (its kind written last, 0: free). */
struct vgpu_sched_ipc {
    uint32_t kind;                    /* enum vgpu_ipc_kind */
    uint8_t handle[VGPU_IPC_HANDLE_SIZE];
};

struct vgpu_sched_page {
    /* read by every session of the pool at each grant: one cache line */
    uint32_t bell;                    /* futex word its owner sleeps on; others only wake it */
    uint16_t gpu;                     /* index in the pool */
    uint32_t queued;                  /* granted work items not yet finished */
    uint32_t waiting;                 /* 1 while it waits for a grant */
    uint64_t since_ns;                /* when it started waiting (also its FIFO order) */
    uint64_t active_ns;               /* last time it had work or waited (0: never) */
    /* read by the admin report and by limits */
    _Alignas(64) uint64_t calls, grants, wait_ns;
    uint64_t held[VGPU_HELD_KINDS];   /* device memory bytes, streams: counted against VM limits */
    char client[48];
    uint32_t client_pid;              /* the program's pid in its own system (its Hello) */
    uint32_t admitted;                /* 1 once past its handshake (the server's pending bound) */
    /* read by sessions of the same VM opening a CUDA IPC handle */
    struct vgpu_sched_ipc ipc[VGPU_IPC_MAX];
};

/* A vgpu-stub device's link (a VM's QEMU), written by its link process. */
struct vgpu_sched_link {
    int32_t pid;                      /* the link process; 0: free */
    uint32_t vm_id;
    char pool;
    uint8_t priority;
    uint16_t channels;                /* guest processes with a session now */
    uint64_t up_ns;                   /* vgpu_mono_ns() when its HELLO was taken */
    uint64_t channels_total;          /* channels opened since */
    char from[64];                    /* the listener's address */
};

struct vgpu_sched_policy {
    pthread_mutex_t lock;             /* trusted writers only (claim, free); robust */
    struct vgpu_sched_params params;
    uint32_t gen;                     /* bumped after each claim and free */
    struct vgpu_sched_ident id[VGPU_SCHED_MAX_SESSIONS];
    struct vgpu_sched_link link[VGPU_SCHED_MAX_LINKS];
};

struct vgpu_sched_shared {
    union {
        struct vgpu_sched_policy p;
        char pad[VGPU_SCHED_STRIDE];
    } pol;
    union {
        struct vgpu_sched_page s;
        char pad[VGPU_SCHED_STRIDE];
    } page[VGPU_SCHED_MAX_SESSIONS];
};

_Static_assert(sizeof(struct vgpu_sched_policy) <= VGPU_SCHED_STRIDE, "policy area too large");
_Static_assert(sizeof(struct vgpu_sched_page) <= 4096, "a session's page must fit one 4 KiB page");

/* The state as this process may read it (NULL before vgpu_sched_init). */
const struct vgpu_sched_shared *vgpu_sched_view(void);
/*
 * The state writable, or NULL in a confined session: the server and the
 * link processes use it (claims, reaping, the report's sweep of the dead).
 */
struct vgpu_sched_shared *vgpu_sched_writable(void);
/* Locks and unlocks the policy area's mutex (trusted processes only). */
void vgpu_sched_lock(void);
void vgpu_sched_unlock(void);
/* Does the process of an identity still exist (a zombie counts)? */
int vgpu_sched_alive(int32_t pid);
/* Frees slot i (its process is gone); lock held, writable state. */
void vgpu_sched_drop(int i);

#endif
