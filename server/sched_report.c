/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The scheduler's state as vgpuctl shows it: a snapshot of every slot's
 * identity (the policy area) and published page, written as text or JSON
 * to the admin socket.  The server runs this, never a session; client names
 * come from sessions' pages, so they are printed sanitized.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "sched_internal.h"
#include "vgpu/fdio.h"
#include "vgpu/futex.h"

struct slot {
    int32_t pid;
    uint32_t vm_id;
    char pool;
    uint8_t priority;
    uint16_t gpu;
    char client[48];
    uint64_t calls, held[VGPU_HELD_KINDS];
    uint32_t queued, waiting;
    uint64_t grants, wait_ns, active_ns;
};

/* Copies the state once, bounding what sessions wrote; frees the slots of the dead first. */
static int snapshot(struct slot *snap)
{
    struct vgpu_sched_shared *rw = vgpu_sched_writable();
    const struct vgpu_sched_shared *sh = vgpu_sched_view();

    if (!sh)
        return -ENODEV;
    if (rw) {
        vgpu_sched_lock();
        for (int i = 0; i < VGPU_SCHED_MAX_SESSIONS; i++)
            if (rw->pol.p.id[i].pid && !vgpu_sched_alive(rw->pol.p.id[i].pid))
                vgpu_sched_drop(i);
        vgpu_sched_unlock();
    }
    for (int i = 0; i < VGPU_SCHED_MAX_SESSIONS; i++) {
        const struct vgpu_sched_ident *id = &sh->pol.p.id[i];
        const struct vgpu_sched_page *pg = &sh->page[i].s;
        struct slot *s = &snap[i];

        s->pid = id->pid;
        s->vm_id = id->vm_id;
        s->pool = id->pool >= 'A' && id->pool <= 'Z' ? id->pool : '?';
        s->priority = id->priority % VGPU_PRIO_CLASSES;
        s->gpu = pg->gpu % VGPU_SCHED_MAX_GPUS;
        memcpy(s->client, pg->client, sizeof(s->client));
        s->client[sizeof(s->client) - 1] = 0;
        s->calls = pg->calls;
        memcpy(s->held, pg->held, sizeof(s->held));
        s->queued = pg->queued;
        s->waiting = pg->waiting != 0;
        s->grants = pg->grants;
        s->wait_ns = pg->wait_ns;
        s->active_ns = pg->active_ns;
    }
    return 0;
}
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
    static struct slot snap[VGPU_SCHED_MAX_SESSIONS];
    uint64_t now;
    bool first = true;
    int n = 0, rc = snapshot(snap);

    if (rc)
        return rc;
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
        uint64_t act[VGPU_SCHED_MAX_GPUS][VGPU_PRIO_CLASSES] = { { 0 } };
        bool used[VGPU_SCHED_MAX_GPUS] = { false };

        for (int i = 0; i < VGPU_SCHED_MAX_SESSIONS; i++) {
            const struct slot *s = &snap[i];

            if (!s->pid || s->pool != 'A' + p)
                continue;
            used[s->gpu] = true;
            q[s->gpu][s->priority] += s->queued;
            w[s->gpu][s->priority] += s->waiting;
            if (s->active_ns > act[s->gpu][s->priority] && s->active_ns <= now)
                act[s->gpu][s->priority] = s->active_ns;
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
                    act[g][2] ? (now - act[g][2]) / 1000000 : 0,
                    act[g][1] ? (now - act[g][1]) / 1000000 : 0,
                    act[g][0] ? (now - act[g][0]) / 1000000 : 0);
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
