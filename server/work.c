/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A session's GPU work as the scheduler sees it.  Each granted work item
 * (a launch, a copy, a memset) counts as queued on the GPU until a CUDA
 * event recorded after it on its stream completes; consecutive items on one
 * stream share one event, recorded when the stream changes, at the end of
 * each batch, or when the session reaches its bound.  The events live in a
 * ring of VGPU_WORK_RING.  A session sharing its GPU never has more than its
 * class's max_queued items outstanding, so a flood of low-priority launches
 * stays max_queued deep on the GPU and a higher class never waits behind
 * more than that; a session alone on its GPU may queue more (bound()).
 */
#include <cuda_runtime_api.h>
#include <errno.h>
#include <stdbool.h>

#include "server_internal.h"
#include "vgpu/futex.h"

/*
 * How many items the session may have queued: its class's bound, or, when
 * it is alone on its GPU (nobody to be fair to), up to about
 * VGPU_WORK_SOLO_NS of work by its own recent items' GPU time, so a stream
 * of short launches keeps the GPU as busy as it would natively, while a
 * session joining later waits behind at most that much.
 */
static uint32_t bound(const struct vgpu_session *s)
{
    uint32_t max = vgpu_sched_max_queued();

    if (s->work_item_ns && vgpu_sched_alone()) {
        uint64_t solo = VGPU_WORK_SOLO_NS / s->work_item_ns;

        if (solo > VGPU_WORK_SOLO_MAX)
            solo = VGPU_WORK_SOLO_MAX;
        if (solo > max)
            max = (uint32_t)solo;
    }
    return max;
}

/* Retires the oldest event and the items it covers; wait says whether to block. */
static uint32_t retire_oldest(struct vgpu_session *s, int wait)
{
    cudaEvent_t ev = s->work_ev[s->work_head];
    int mode = vgpu_graph_relax(s);
    cudaError_t st = wait ? cudaEventSynchronize(ev) : cudaEventQuery(ev);
    uint32_t n = s->work_count[s->work_head];

    vgpu_graph_unrelax(mode);

    if (st == cudaErrorNotReady)
        return 0;
    if (n) {
        /*
         * Items per time since the later of its recording and the previous
         * retirement: the items' GPU time while the queue stays busy, more
         * (so a smaller bound) when it did not.
         */
        uint64_t now = vgpu_mono_ns(), from = s->work_rec_ns[s->work_head];
        uint64_t per;

        if (s->work_retired_ns > from)
            from = s->work_retired_ns;
        per = (now - from) / n + 1;
        s->work_item_ns = s->work_item_ns ? (3 * s->work_item_ns + per) / 4 : per;
        s->work_retired_ns = now;
    }
    /* done, or failed (a faulted context): either way it is off the GPU */
    s->work_head = (s->work_head + 1) % VGPU_WORK_RING;
    s->work_ev_n--;
    s->work_n -= (int)n;
    return n;
}

static void cover(struct vgpu_session *s);

/* The session's own events must not disturb a capture the program has under way. */
void vgpu_work_cover(struct vgpu_session *s)
{
    int mode;

    if (!s->work_open)
        return;
    mode = vgpu_graph_relax(s);
    cover(s);
    vgpu_graph_unrelax(mode);
}

/*
 * Records one event after the open items (consecutive items on one stream
 * share it: one event per run of launches, not per launch).  Items whose
 * event cannot be recorded are counted finished, as nothing could track them.
 */
static void cover(struct vgpu_session *s)
{
    int i = (s->work_head + s->work_ev_n) % VGPU_WORK_RING;
    cudaEvent_t ev = s->work_ev[i];
    uint32_t n = s->work_open;

    if (!n)
        return;
    s->work_open = 0;
    if (s->work_ev_n == VGPU_WORK_RING ||
        (!ev && cudaEventCreateWithFlags(&ev, cudaEventDisableTiming) != cudaSuccess)) {
        s->work_n -= (int)n;
        vgpu_sched_release(n);
        return;
    }
    s->work_ev[i] = ev;
    /* a capturing stream would take the record into the program's graph */
    if (vgpu_graph_capturing(s, s->work_open_stream) ||
        cudaEventRecord(ev, (cudaStream_t)s->work_open_stream) != cudaSuccess) {
        s->work_n -= (int)n;
        vgpu_sched_release(n);
        return;
    }
    s->work_count[i] = n;
    s->work_rec_ns[i] = vgpu_mono_ns();
    s->work_ev_n++;
}

void vgpu_work_poll(struct vgpu_session *s)
{
    uint32_t done = 0, n;

    vgpu_work_cover(s);
    while (s->work_ev_n && (n = retire_oldest(s, 0)))
        done += n;
    vgpu_sched_release(done);
}

/*
 * Room for two more events (the cover a stream change makes and the one at
 * the end of the batch): without it an item could not be tracked, and an
 * untracked item would not count against the bound.
 */
static bool events_short(const struct vgpu_session *s)
{
    return s->work_ev_n > VGPU_WORK_RING - 2;
}

void vgpu_work_begin(struct vgpu_session *s)
{
    uint32_t done = 0, n;

    /* at the bound: the oldest work must finish first (cheap checks before blocking) */
    if ((uint32_t)s->work_n >= bound(s) || events_short(s)) {
        while (s->work_ev_n && (n = retire_oldest(s, 0)))
            done += n;
        while (events_short(s))
            done += retire_oldest(s, 1);
        vgpu_work_cover(s);
        while ((uint32_t)s->work_n >= bound(s) && s->work_ev_n)
            done += retire_oldest(s, 1);
        vgpu_sched_release(done);
    }
    vgpu_sched_acquire();
    s->work_n++;
    s->devout_flush = true;     /* a launch or a blocking copy: the driver writes what kernels printed */
}

void vgpu_work_end(struct vgpu_session *s, void *stream, int submitted)
{
    /* work captured into a graph runs when the graph is launched, not now */
    if (!submitted || vgpu_graph_capturing(s, stream)) {
        s->work_n--;
        vgpu_sched_release(1);
        return;
    }
    vgpu_devout_arm(s);
    if (s->work_open && stream != s->work_open_stream)
        vgpu_work_cover(s);
    s->work_open++;
    s->work_open_stream = stream;
}

/*
 * A synchronizing call returned: the work it waited for is finished, and
 * needs no event to say so.  stream: the open items on it (cudaStreamSynchronize);
 * all: everything (cudaDeviceSynchronize).
 */
void vgpu_work_synced(struct vgpu_session *s, void *stream, int all)
{
    uint32_t done = 0;

    if (s->work_open && (all || stream == s->work_open_stream)) {
        done += s->work_open;
        s->work_n -= (int)s->work_open;
        s->work_open = 0;
    }
    if (all) {
        vgpu_devout_synced_all(s);
        while (s->work_ev_n)
            done += retire_oldest(s, 1);
    }
    vgpu_sched_release(done);
}

void vgpu_work_switch_device(struct vgpu_session *s, int dev)
{
    uint32_t done = 0;

    if (dev == s->device)
        return;
    /* events belong to the device they were made on: finish with them first */
    vgpu_work_cover(s);
    while (s->work_ev_n)
        done += retire_oldest(s, 1);
    vgpu_sched_release(done);
    for (int i = 0; i < VGPU_WORK_RING; i++)
        if (s->work_ev[i]) {
            cudaEventDestroy((cudaEvent_t)s->work_ev[i]);
            s->work_ev[i] = NULL;
        }
    s->work_head = 0;
    s->device = dev;
    s->devices_used |= 1ull << (dev & 63);
    vgpu_sched_set_gpu(dev);
}

void vgpu_work_forget(struct vgpu_session *s)
{
    vgpu_sched_release((uint32_t)s->work_n);
    for (int i = 0; i < VGPU_WORK_RING; i++)
        s->work_ev[i] = NULL;
    s->work_head = s->work_ev_n = s->work_n = 0;
    s->work_open = 0;
}

void vgpu_memory_charge_force(struct vgpu_session *s, int64_t delta)
{
    (void)s;
    vgpu_sched_charge(VGPU_HELD_MEMORY, delta, 0);
}

int vgpu_memory_charge(struct vgpu_session *s, int64_t delta)
{
    const struct vgpu_vm_limits *lim = vgpu_config_vm(vgpu_cfg, s->who.vm_id);

    if (vgpu_sched_charge(VGPU_HELD_MEMORY, delta, lim ? lim->memory : 0) == 0)
        return 0;
    vgpu_log(VGPU_LOG_WARN, "vm %u: device memory limit of %llu bytes reached; an allocation "
             "of %lld bytes refused (raise memory in [vm %u] of the server's configuration)",
             s->who.vm_id, (unsigned long long)lim->memory, (long long)delta, s->who.vm_id);
    /* the program hears it too: its stderr, with what its kernels print (devout.c) */
    vgpu_devout_say(s, "vgpu: an allocation of %lld bytes of GPU memory was refused: this VM may "
                    "hold %llu bytes and its programs hold %llu (the GPU server's [vm %u] memory)\n",
                    (long long)delta, (unsigned long long)lim->memory,
                    (unsigned long long)vgpu_sched_vm_held(VGPU_HELD_MEMORY), s->who.vm_id);
    return -ENOMEM;
}
