/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The scheduler's state as vgpuctl shows it: a snapshot of every slot's
 * identity (the policy area) and published page and of the device links,
 * with the server's version and uptime, each VM's use against its [vm]
 * limits and a warning for two links that say one vm_id, written as a table,
 * JSON or Prometheus's text exposition format to the admin socket.  The
 * server runs this, never a session; client names come from sessions'
 * pages, so they are printed sanitized.  JSON is built with json-c; the
 * table and Prometheus's text format are written here, as Debian packages
 * no C library for the latter (only Go's client).  What sessions publish is
 * bounded but not trusted: a session can overstate its own use.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <time.h>

#include <json-c/json.h>

#include "config.h"
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

struct link_snap {
    int32_t pid;
    uint32_t vm_id;
    char pool;
    uint8_t priority;
    uint16_t channels;
    uint64_t up_ns, opened;
    char from[64];
    int dups;                  /* other live links that say the same vm_id */
};

/* The device links, each with how many others say its vm_id (the dead swept first). */
static void snapshot_links(struct link_snap *ls)
{
    struct vgpu_sched_shared *rw = vgpu_sched_writable();
    const struct vgpu_sched_shared *sh = vgpu_sched_view();

    if (rw) {
        vgpu_sched_lock();
        for (int i = 0; i < VGPU_SCHED_MAX_LINKS; i++)
            if (rw->pol.p.link[i].pid && !vgpu_sched_alive(rw->pol.p.link[i].pid))
                memset(&rw->pol.p.link[i], 0, sizeof(rw->pol.p.link[i]));
    }
    /* read under the lock (when this process may take it): no entry half reused */
    for (int i = 0; i < VGPU_SCHED_MAX_LINKS; i++) {
        const struct vgpu_sched_link *l = &sh->pol.p.link[i];
        struct link_snap *s = &ls[i];

        s->pid = __atomic_load_n(&l->pid, __ATOMIC_ACQUIRE);
        s->vm_id = l->vm_id;
        s->pool = l->pool >= 'A' && l->pool <= 'Z' ? l->pool : '?';
        s->priority = l->priority % VGPU_PRIO_CLASSES;
        s->channels = l->channels;
        s->up_ns = l->up_ns;
        s->opened = l->channels_total;
        memcpy(s->from, l->from, sizeof(s->from));
        s->from[sizeof(s->from) - 1] = 0;
    }
    if (rw)
        vgpu_sched_unlock();
    for (int i = 0; i < VGPU_SCHED_MAX_LINKS; i++) {
        ls[i].dups = 0;
        for (int j = 0; j < VGPU_SCHED_MAX_LINKS && ls[i].pid; j++)
            ls[i].dups += j != i && ls[j].pid && ls[j].vm_id == ls[i].vm_id;
    }
}

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

/* A client name (from an untrusted Hello): printable ASCII only. */
static void put_name(struct out *o, const char *s)
{
    for (; *s; s++)
        put(o, "%c", *s >= 0x20 && *s < 0x7f ? *s : '?');
}

/* One VM's sessions summed, and its limits. */
struct vm_use {
    uint32_t vm_id, sessions;
    uint64_t memory, streams, calls;
    const struct vgpu_vm_limits *lim;
};

/* The VMs with sessions, a device link or a [vm] section, in vm_id order. */
static size_t vms_of(const struct slot *snap, const struct link_snap *ls,
                     const struct vgpu_config *cfg, struct vm_use *vms, size_t cap)
{
    size_t n = 0;

    for (int i = 0; i < (cfg ? cfg->nvms : 0) && n < cap; i++)
        vms[n++] = (struct vm_use){ .vm_id = cfg->vms[i].vm_id, .lim = &cfg->vms[i] };
    for (int i = 0; i < VGPU_SCHED_MAX_LINKS; i++) {
        size_t k = 0;

        while (ls[i].pid && k < n && vms[k].vm_id != ls[i].vm_id)
            k++;
        if (ls[i].pid && k == n && n < cap)
            vms[n++] = (struct vm_use){ .vm_id = ls[i].vm_id, .lim = vgpu_config_vm(cfg, ls[i].vm_id) };
    }
    for (int i = 0; i < VGPU_SCHED_MAX_SESSIONS; i++) {
        const struct slot *s = &snap[i];
        size_t k = 0;

        if (!s->pid)
            continue;
        while (k < n && vms[k].vm_id != s->vm_id)
            k++;
        if (k == n) {
            if (n == cap)
                continue;
            vms[n++] = (struct vm_use){ .vm_id = s->vm_id, .lim = vgpu_config_vm(cfg, s->vm_id) };
        }
        vms[k].sessions++;
        vms[k].memory += s->held[VGPU_HELD_MEMORY];
        vms[k].streams += s->held[VGPU_HELD_STREAMS];
        vms[k].calls += s->calls;
    }
    for (size_t a = 1; a < n; a++)           /* insertion sort: a few hundred at most */
        for (size_t b = a; b > 0 && vms[b - 1].vm_id > vms[b].vm_id; b--) {
            struct vm_use t = vms[b];

            vms[b] = vms[b - 1];
            vms[b - 1] = t;
        }
    return n;
}

static void put_mib(struct out *o, uint64_t bytes)
{
    put(o, "%.1f", (double)bytes / (1 << 20));
}

/* "1d 02:03:04" */
static void put_uptime(struct out *o, uint64_t s)
{
    if (s >= 86400)
        put(o, "%" PRIu64 "d ", s / 86400);
    put(o, "%02" PRIu64 ":%02" PRIu64 ":%02" PRIu64, s / 3600 % 24, s / 60 % 60, s % 60);
}

/* Per pool and GPU: work queued and sessions waiting per class, when each class last ran. */
struct pool_use {
    int ngpu;
    bool used[VGPU_SCHED_MAX_GPUS];
    uint32_t q[VGPU_SCHED_MAX_GPUS][VGPU_PRIO_CLASSES], w[VGPU_SCHED_MAX_GPUS][VGPU_PRIO_CLASSES];
    uint64_t act[VGPU_SCHED_MAX_GPUS][VGPU_PRIO_CLASSES];
};

static void pool_of(const struct slot *snap, int p, uint64_t now, struct pool_use *u)
{
    memset(u, 0, sizeof(*u));
    for (int i = 0; i < VGPU_SCHED_MAX_SESSIONS; i++) {
        const struct slot *s = &snap[i];

        if (!s->pid || s->pool != 'A' + p)
            continue;
        u->used[s->gpu] = true;
        u->q[s->gpu][s->priority] += s->queued;
        u->w[s->gpu][s->priority] += s->waiting;
        if (s->active_ns > u->act[s->gpu][s->priority] && s->active_ns <= now)
            u->act[s->gpu][s->priority] = s->active_ns;
    }
    for (int g = 0; g < VGPU_SCHED_MAX_GPUS; g++)
        u->ngpu += u->used[g];
}

static const char *pool_gpus(const struct vgpu_report_ctx *ctx, int p)
{
    return ctx->cfg && ctx->cfg->pools[p].ngpus ? ctx->cfg->pools[p].gpus_text : NULL;
}

/* Is link i the first of several that say its vm_id (one warning per vm_id)? */
static bool first_dup(const struct link_snap *ls, int i)
{
    if (!ls[i].pid || !ls[i].dups)
        return false;
    for (int j = 0; j < i; j++)
        if (ls[j].pid && ls[j].vm_id == ls[i].vm_id)
            return false;
    return true;
}

static void report_text(struct out *o, const struct slot *snap, const struct link_snap *ls,
                        const struct vm_use *vms, size_t nvms, const struct vgpu_report_ctx *ctx,
                        uint64_t now)
{
    int n = 0;

    put(o, "%s, up ", ctx->version);
    put_uptime(o, (now - ctx->started_ns) / 1000000000u);
    put(o, "\n\n%-8s %-4s %-8s %-8s %10s %7s %7s %12s %7s  %s\n", "PID", "POOL", "PRIORITY", "VM",
        "CALLS", "QUEUED", "WAITING", "MEM-MiB", "STREAMS", "CLIENT");
    for (int i = 0; i < VGPU_SCHED_MAX_SESSIONS; i++) {
        const struct slot *s = &snap[i];

        if (!s->pid)
            continue;
        n++;
        put(o, "%-8d %-4c %-8s %-8u %10" PRIu64 " %7u %7u %12.1f %7" PRIu64 "  ", s->pid,
            s->pool, vgpu_prio_name(s->priority), s->vm_id, s->calls, s->queued, s->waiting,
            (double)s->held[VGPU_HELD_MEMORY] / (1 << 20), s->held[VGPU_HELD_STREAMS]);
        put_name(o, s->client);
        put(o, "\n");
    }
    put(o, "%s\n%-8s %-8s %-4s %-8s %8s %8s %-12s %s\n", n ? "" : "(no sessions)\n", "LINK-PID",
        "VM", "POOL", "PRIORITY", "CHANNELS", "OPENED", "UP", "FROM");
    n = 0;
    for (int i = 0; i < VGPU_SCHED_MAX_LINKS; i++) {
        const struct link_snap *l = &ls[i];

        if (!l->pid)
            continue;
        n++;
        put(o, "%-8d %-8u %-4c %-8s %8u %8" PRIu64 " ", l->pid, l->vm_id, l->pool,
            vgpu_prio_name(l->priority), l->channels, l->opened);
        put_uptime(o, now > l->up_ns ? (now - l->up_ns) / 1000000000u : 0);
        put(o, "%*s", now - l->up_ns >= 86400000000000ull ? 1 : 4, "");
        put_name(o, l->from);
        put(o, "\n");
    }
    put(o, "%s\n%-8s %-10s %-22s %-16s\n", n ? "" : "(no device links)\n", "VM", "SESSIONS",
        "MEMORY MiB (LIMIT)", "STREAMS (LIMIT)");
    for (size_t k = 0; k < nvms; k++) {
        const struct vm_use *v = &vms[k];
        char lim[32] = "-", slim[16] = "-";

        if (v->lim && v->lim->memory)
            snprintf(lim, sizeof(lim), "%" PRIu64, v->lim->memory >> 20);
        if (v->lim && v->lim->streams)
            snprintf(slim, sizeof(slim), "%u", v->lim->streams);
        put(o, "%-8u %4u / %-3u  ", v->vm_id, v->sessions,
            ctx->cfg ? vgpu_config_vm_sessions(ctx->cfg, v->vm_id) : VGPU_VM_MAX_SESSIONS);
        put_mib(o, v->memory);
        put(o, " (%s)%*s%" PRIu64 " (%s)\n", lim, (int)(12 - strlen(lim)), "", v->streams, slim);
    }
    if (!nvms)
        put(o, "(none)\n");
    put(o, "\n%-4s %-6s %8s %8s %8s %8s %8s %8s\n", "POOL", "GPU", "Q-HIGH", "Q-MED", "Q-LOW",
        "W-HIGH", "W-MED", "W-LOW");
    for (int p = 0; p < VGPU_SCHED_MAX_POOLS; p++) {
        struct pool_use u;

        pool_of(snap, p, now, &u);
        if (!pool_gpus(ctx, p) && !u.ngpu)
            continue;
        for (int g = 0; g < VGPU_SCHED_MAX_GPUS; g++)
            if (u.used[g] || (g == 0 && !u.ngpu))
                put(o, "%-4c %-6d %8u %8u %8u %8u %8u %8u\n", 'A' + p, g, u.q[g][2], u.q[g][1],
                    u.q[g][0], u.w[g][2], u.w[g][1], u.w[g][0]);
        if (pool_gpus(ctx, p))
            put(o, "     pool %c: host GPUs %s\n", 'A' + p, pool_gpus(ctx, p));
    }
    for (int i = 0; i < VGPU_SCHED_MAX_LINKS; i++)
        if (first_dup(ls, i))
            put(o, "\nwarning: vm %u has %d device links: two VMs with one vm-id share its memory "
                "limit, its sessions and its CUDA IPC handles; give each VM a vm-id of its own\n",
                ls[i].vm_id, ls[i].dups + 1);
}

/* A name from an untrusted source as a JSON string: printable ASCII only (json-c escapes). */
static struct json_object *json_name(const char *s)
{
    char clean[80];
    size_t n = 0;

    for (; *s && n < sizeof(clean) - 1; s++)
        if (*s >= 0x20 && *s < 0x7f)
            clean[n++] = *s;
    clean[n] = '\0';
    return json_object_new_string(clean);
}

static void add(struct json_object *o, const char *key, struct json_object *v)
{
    json_object_object_add(o, key, v);
}

static struct json_object *per_class(uint64_t high, uint64_t medium, uint64_t low)
{
    struct json_object *o = json_object_new_object();

    add(o, "high", json_object_new_uint64(high));
    add(o, "medium", json_object_new_uint64(medium));
    add(o, "low", json_object_new_uint64(low));
    return o;
}

/* json-c builds it (escaping, numbers), so the output is JSON whatever names sessions publish. */
static void report_json(struct out *o, const struct slot *snap, const struct link_snap *ls,
                        const struct vm_use *vms, size_t nvms, const struct vgpu_report_ctx *ctx,
                        uint64_t now)
{
    struct json_object *root = json_object_new_object(), *a;
    static const int cls[] = { 2, 1, 0 };

    add(root, "version", json_object_new_string(ctx->version));
    add(root, "timestamp", json_object_new_int64((int64_t)time(NULL)));
    add(root, "uptime_s", json_object_new_uint64((now - ctx->started_ns) / 1000000000u));
    a = json_object_new_array();
    for (int i = 0; i < VGPU_SCHED_MAX_SESSIONS; i++) {
        const struct slot *s = &snap[i];
        struct json_object *e;

        if (!s->pid)
            continue;
        e = json_object_new_object();
        add(e, "pid", json_object_new_int(s->pid));
        add(e, "vm_id", json_object_new_uint64(s->vm_id));
        add(e, "pool", json_object_new_string_len(&s->pool, 1));
        add(e, "gpu", json_object_new_uint64(s->gpu));
        add(e, "priority", json_object_new_string(vgpu_prio_name(s->priority)));
        add(e, "calls", json_object_new_uint64(s->calls));
        add(e, "queued", json_object_new_uint64(s->queued));
        add(e, "waiting", json_object_new_uint64(s->waiting));
        add(e, "grants", json_object_new_uint64(s->grants));
        add(e, "wait_us", json_object_new_uint64(s->wait_ns / 1000));
        add(e, "device_memory", json_object_new_uint64(s->held[VGPU_HELD_MEMORY]));
        add(e, "streams", json_object_new_uint64(s->held[VGPU_HELD_STREAMS]));
        add(e, "client", json_name(s->client));
        json_object_array_add(a, e);
    }
    add(root, "sessions", a);
    a = json_object_new_array();
    for (int i = 0; i < VGPU_SCHED_MAX_LINKS; i++) {
        const struct link_snap *l = &ls[i];
        struct json_object *e;

        if (!l->pid)
            continue;
        e = json_object_new_object();
        add(e, "pid", json_object_new_int(l->pid));
        add(e, "vm_id", json_object_new_uint64(l->vm_id));
        add(e, "pool", json_object_new_string_len(&l->pool, 1));
        add(e, "priority", json_object_new_string(vgpu_prio_name(l->priority)));
        add(e, "channels", json_object_new_uint64(l->channels));
        add(e, "channels_opened", json_object_new_uint64(l->opened));
        add(e, "uptime_s", json_object_new_uint64(now > l->up_ns ? (now - l->up_ns) / 1000000000u : 0));
        add(e, "from", json_name(l->from));
        json_object_array_add(a, e);
    }
    add(root, "links", a);
    a = json_object_new_array();
    for (int i = 0; i < VGPU_SCHED_MAX_LINKS; i++)
        if (first_dup(ls, i)) {
            char w[64];

            snprintf(w, sizeof(w), "vm %u has %d device links", ls[i].vm_id, ls[i].dups + 1);
            json_object_array_add(a, json_object_new_string(w));
        }
    add(root, "warnings", a);
    a = json_object_new_array();
    for (size_t k = 0; k < nvms; k++) {
        const struct vm_use *v = &vms[k];
        struct json_object *e = json_object_new_object(), *lim = json_object_new_object();

        add(e, "vm_id", json_object_new_uint64(v->vm_id));
        add(e, "sessions", json_object_new_uint64(v->sessions));
        add(e, "device_memory", json_object_new_uint64(v->memory));
        add(e, "streams", json_object_new_uint64(v->streams));
        add(e, "calls", json_object_new_uint64(v->calls));
        add(lim, "sessions", json_object_new_uint64(ctx->cfg ? vgpu_config_vm_sessions(ctx->cfg, v->vm_id)
                                                             : VGPU_VM_MAX_SESSIONS));
        add(lim, "device_memory", json_object_new_uint64(v->lim ? v->lim->memory : 0));
        add(lim, "streams", json_object_new_uint64(v->lim ? v->lim->streams : 0));
        add(e, "limits", lim);
        json_object_array_add(a, e);
    }
    add(root, "vms", a);
    a = json_object_new_array();
    for (int p = 0; p < VGPU_SCHED_MAX_POOLS; p++) {
        struct pool_use u;
        struct json_object *e, *queues;
        char name = (char)('A' + p);

        pool_of(snap, p, now, &u);
        if (!pool_gpus(ctx, p) && !u.ngpu)
            continue;
        e = json_object_new_object();
        queues = json_object_new_array();
        add(e, "pool", json_object_new_string_len(&name, 1));
        add(e, "gpus", json_object_new_string(pool_gpus(ctx, p) ? pool_gpus(ctx, p) : "all"));
        for (int g = 0; g < VGPU_SCHED_MAX_GPUS; g++) {
            struct json_object *q;
            uint64_t ago[3];

            if (!u.used[g] && !(g == 0 && !u.ngpu))
                continue;
            for (int c = 0; c < 3; c++)
                ago[c] = u.act[g][cls[c]] ? (now - u.act[g][cls[c]]) / 1000000 : 0;
            q = json_object_new_object();
            add(q, "gpu", json_object_new_int(g));
            add(q, "queued", per_class(u.q[g][2], u.q[g][1], u.q[g][0]));
            add(q, "waiting", per_class(u.w[g][2], u.w[g][1], u.w[g][0]));
            add(q, "busy_ms_ago", per_class(ago[0], ago[1], ago[2]));
            json_object_array_add(queues, q);
        }
        add(e, "queues", queues);
        json_object_array_add(a, e);
    }
    add(root, "pools", a);
    put(o, "%s\n", json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN));
    json_object_put(root);
}

/* Prometheus's text format 0.0.4: each metric's HELP and TYPE once, then its series. */
static void metric(struct out *o, const char *name, const char *type, const char *help)
{
    put(o, "# HELP vgpu_%s %s\n# TYPE vgpu_%s %s\n", name, help, name, type);
}

/* One series per pool, GPU in use and class: the work queued, or the sessions waiting. */
static void put_pool_series(struct out *o, const char *name, const struct pool_use *pools,
                            bool waiting)
{
    static const char *const cls[] = { "low", "medium", "high" };

    for (int p = 0; p < VGPU_SCHED_MAX_POOLS; p++)
        for (int g = 0; g < VGPU_SCHED_MAX_GPUS; g++)
            for (int c = 0; c < VGPU_PRIO_CLASSES && pools[p].used[g]; c++)
                put(o, "vgpu_%s{pool=\"%c\",gpu=\"%d\",priority=\"%s\"} %u\n", name, 'A' + p, g,
                    cls[c], waiting ? pools[p].w[g][c] : pools[p].q[g][c]);
}

static void report_prometheus(struct out *o, const struct slot *snap, const struct link_snap *ls,
                              const struct vm_use *vms, size_t nvms,
                              const struct vgpu_report_ctx *ctx, uint64_t now)
{
    static struct pool_use pools[VGPU_SCHED_MAX_POOLS];

    metric(o, "build_info", "gauge", "The server's version (always 1).");
    put(o, "vgpu_build_info{version=\"%s\"} 1\n", ctx->version);
    metric(o, "uptime_seconds", "gauge", "Seconds since the server started.");
    put(o, "vgpu_uptime_seconds %" PRIu64 "\n", (now - ctx->started_ns) / 1000000000u);
    metric(o, "vm_sessions", "gauge", "Sessions of the VM now.");
    for (size_t k = 0; k < nvms; k++)
        put(o, "vgpu_vm_sessions{vm=\"%u\"} %u\n", vms[k].vm_id, vms[k].sessions);
    metric(o, "vm_device_links", "gauge", "vgpu-stub devices linked with the VM's vm_id (more than 1: a clash).");
    for (int i = 0; i < VGPU_SCHED_MAX_LINKS; i++) {
        bool seen = false;

        for (int j = 0; j < i && ls[i].pid; j++)
            seen |= ls[j].pid && ls[j].vm_id == ls[i].vm_id;
        if (ls[i].pid && !seen)
            put(o, "vgpu_vm_device_links{vm=\"%u\"} %d\n", ls[i].vm_id, ls[i].dups + 1);
    }
    metric(o, "link_channels", "gauge", "Guest processes with a session through the link now.");
    for (int i = 0; i < VGPU_SCHED_MAX_LINKS; i++)
        if (ls[i].pid)
            put(o, "vgpu_link_channels{pid=\"%d\",vm=\"%u\"} %u\n", ls[i].pid, ls[i].vm_id,
                ls[i].channels);
    metric(o, "vm_device_memory_bytes", "gauge", "Device memory the VM's sessions hold.");
    for (size_t k = 0; k < nvms; k++)
        put(o, "vgpu_vm_device_memory_bytes{vm=\"%u\"} %" PRIu64 "\n", vms[k].vm_id, vms[k].memory);
    metric(o, "vm_device_memory_limit_bytes", "gauge", "The VM's device memory limit ([vm] memory).");
    for (size_t k = 0; k < nvms; k++)
        if (vms[k].lim && vms[k].lim->memory)
            put(o, "vgpu_vm_device_memory_limit_bytes{vm=\"%u\"} %" PRIu64 "\n", vms[k].vm_id,
                vms[k].lim->memory);
    metric(o, "vm_streams", "gauge", "Streams the VM's sessions hold.");
    for (size_t k = 0; k < nvms; k++)
        put(o, "vgpu_vm_streams{vm=\"%u\"} %" PRIu64 "\n", vms[k].vm_id, vms[k].streams);
    metric(o, "session_calls_total", "counter", "Calls a session has made.");
    for (int i = 0; i < VGPU_SCHED_MAX_SESSIONS; i++)
        if (snap[i].pid)
            put(o, "vgpu_session_calls_total{pid=\"%d\",vm=\"%u\",pool=\"%c\",priority=\"%s\"} %"
                PRIu64 "\n", snap[i].pid, snap[i].vm_id, snap[i].pool,
                vgpu_prio_name(snap[i].priority), snap[i].calls);
    metric(o, "session_wait_seconds_total", "counter", "Time a session waited for the GPU.");
    for (int i = 0; i < VGPU_SCHED_MAX_SESSIONS; i++)
        if (snap[i].pid)
            put(o, "vgpu_session_wait_seconds_total{pid=\"%d\",vm=\"%u\"} %.6f\n", snap[i].pid,
                snap[i].vm_id, (double)snap[i].wait_ns / 1e9);
    for (int p = 0; p < VGPU_SCHED_MAX_POOLS; p++)      /* each pool's sums once, for both */
        pool_of(snap, p, now, &pools[p]);
    metric(o, "pool_queued", "gauge", "Work items queued, by pool, GPU and priority class.");
    put_pool_series(o, "pool_queued", pools, false);
    metric(o, "pool_waiting", "gauge", "Sessions waiting for the GPU, by pool, GPU and class.");
    put_pool_series(o, "pool_waiting", pools, true);
}

int vgpu_sched_report(int fd, enum vgpu_report_format fmt, const struct vgpu_report_ctx *ctx)
{
    static char buf[512 * 1024];
    static struct slot snap[VGPU_SCHED_MAX_SESSIONS];
    static struct vm_use vms[VGPU_CONFIG_MAX_VMS + VGPU_SCHED_MAX_SESSIONS + VGPU_SCHED_MAX_LINKS];
    static struct link_snap ls[VGPU_SCHED_MAX_LINKS];
    struct out o = { buf, 0, sizeof(buf) };
    struct iovec iov;
    uint64_t now;
    size_t nvms;
    int rc = snapshot(snap);

    if (rc)
        return rc;
    snapshot_links(ls);
    now = vgpu_mono_ns();
    nvms = vms_of(snap, ls, ctx->cfg, vms, sizeof(vms) / sizeof(vms[0]));
    if (fmt == VGPU_REPORT_JSON)
        report_json(&o, snap, ls, vms, nvms, ctx, now);
    else if (fmt == VGPU_REPORT_PROMETHEUS)
        report_prometheus(&o, snap, ls, vms, nvms, ctx, now);
    else
        report_text(&o, snap, ls, vms, nvms, ctx, now);
    iov = (struct iovec){ .iov_base = buf, .iov_len = o.len };
    return vgpu_fd_writev_all(fd, &iov, 1);
}
