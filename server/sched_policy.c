/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The scheduling policy: a pure function from a snapshot of one domain's
 * queues to the sessions that may put work on the GPU now.  The rules are
 * listed in scheduler.h; docs/server.md explains the choice of defaults.
 */
#include <stdlib.h>
#include <string.h>

#include "scheduler.h"

void vgpu_sched_params_default(struct vgpu_sched_params *p)
{
    p->hold_ns = 2000000;             /* 2 ms: covers a client's gap between requests */
    p->starve_ns = 50000000;          /* 50 ms */
    p->max_queued[VGPU_PRIO_HIGH] = 32;
    p->max_queued[VGPU_PRIO_MEDIUM] = 8;
    p->max_queued[VGPU_PRIO_LOW] = 2;
}

int vgpu_prio_parse(const char *s)
{
    static const char *const names[] = { "low", "medium", "high" };

    for (int i = 0; i < VGPU_PRIO_CLASSES; i++)
        if (!strcmp(s, names[i]) || (s[0] == '0' + i && !s[1]))
            return i;
    return -1;
}

const char *vgpu_prio_name(int prio)
{
    return prio == VGPU_PRIO_HIGH ? "high" : prio == VGPU_PRIO_MEDIUM ? "medium" : "low";
}

static bool busy(const struct vgpu_sched_params *p, const struct vgpu_sched_view *v, int c)
{
    const struct vgpu_sched_class *k = &v->cls[c];

    return k->nw > 0 || k->queued > 0 ||
           (k->last_active_ns && v->now_ns - k->last_active_ns < p->hold_ns);
}

/* Index of the oldest (lowest ticket) waiter of k not yet taken, or -1. */
static int oldest(const struct vgpu_sched_class *k, const bool *taken)
{
    int best = -1;

    for (int i = 0; i < k->nw; i++)
        if (!taken[i] && (best < 0 || k->w[i].ticket < k->w[best].ticket))
            best = i;
    return best;
}

static void at_least(uint64_t *t, uint64_t when)
{
    if (when < *t)
        *t = when;
}

int vgpu_sched_decide(const struct vgpu_sched_params *p, const struct vgpu_sched_view *v,
                      uint32_t *out, int max, uint64_t *recheck_ns)
{
    bool higher_busy = false;
    uint64_t higher_free_at = 0;     /* when every higher class's hold runs out */
    bool higher_held_only = true;    /* higher classes busy only by their hold */
    int n = 0;

    *recheck_ns = UINT64_MAX;
    for (int c = VGPU_PRIO_HIGH; c >= VGPU_PRIO_LOW; c--) {
        const struct vgpu_sched_class *k = &v->cls[c];
        bool taken[VGPU_SCHED_MAX_SESSIONS] = { false };
        int nw = k->nw < VGPU_SCHED_MAX_SESSIONS ? k->nw : VGPU_SCHED_MAX_SESSIONS;
        int i;

        if (nw > 0 && !higher_busy) {
            /* rule 2: the whole class, oldest first */
            while (n < max && (i = oldest(k, taken)) >= 0) {
                taken[i] = true;
                out[n++] = k->w[i].slot;
            }
        } else if (nw > 0) {
            /*
             * rule 3: each waiter that has waited long enough, oldest first.
             * Not only the oldest: the order comes from what sessions
             * publish, and one that claimed to be oldest without ever
             * taking its grant would otherwise hold up its whole class.
             */
            while ((i = oldest(k, taken)) >= 0) {
                uint64_t due = k->w[i].since_ns + p->starve_ns;

                taken[i] = true;
                if (due < k->w[i].since_ns)
                    due = UINT64_MAX;
                if (v->now_ns >= due && n < max)
                    out[n++] = k->w[i].slot;
                else if (v->now_ns < due)
                    at_least(recheck_ns, due);
            }
            /* or sooner, if the classes above are only holding */
            if (higher_held_only && higher_free_at > v->now_ns)
                at_least(recheck_ns, higher_free_at);
        }
        if (busy(p, v, c)) {
            higher_busy = true;
            if (k->nw > 0 || k->queued > 0)
                higher_held_only = false;
            else if (k->last_active_ns + p->hold_ns > higher_free_at)
                higher_free_at = k->last_active_ns + p->hold_ns;
        }
    }
    return n;
}
