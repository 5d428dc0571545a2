/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Error state.  Each thread has a current device and a last error (thread
 * locals: they are the thread's, whichever client it calls).  A queued call
 * that fails is answered later, maybe on another thread: its status is
 * owed to the thread that made it, kept in the client until that thread
 * next calls (or exits, when it is dropped).  An owed status is also kept
 * apart from the last error: the driver library returns it from the
 * thread's next call that waits, and must not take a runtime call's own
 * failure (which only cudaGetLastError reports) for one.  And the server's table of
 * error names and texts, fetched once right after the handshake.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client_internal.h"

static __thread int tls_device;
static __thread uint64_t tls_context;     /* the driver context current on this thread */
static __thread int tls_last_error;      /* the runtime's (cudaGetLastError): every failure */
static __thread int tls_owed;            /* a queued call's failure not yet told (the driver's next call) */

int vgpu_errors_device(void)
{
    return tls_device;
}

void vgpu_errors_set_device(int device)
{
    tls_device = device;
}

uint64_t vgpu_errors_context(void)
{
    return tls_context;
}

void vgpu_errors_set_context(uint64_t ctx)
{
    tls_context = ctx;
}

int vgpu_errors_last(bool clear)
{
    int e = tls_last_error;

    if (clear)
        tls_last_error = tls_owed = 0;
    return e;
}

void vgpu_errors_owe_here(int status)
{
    tls_owed = status;
}

int vgpu_errors_take_owed(void)
{
    int e = tls_owed;

    tls_owed = 0;
    return e;
}

void vgpu_errors_set(int st)
{
    if (st != 0)
        tls_last_error = st;
}

void vgpu_owe_error_locked(struct vgpu_client *c, pthread_t thread, int status)
{
    struct vgpu_owed *o = &c->owed;

    if (pthread_equal(thread, pthread_self())) {
        tls_last_error = tls_owed = status;
        return;
    }
    for (int i = 0; i < VGPU_OWED_MAX; i++)
        if (o->slot[i].used && pthread_equal(o->slot[i].thread, thread)) {
            o->slot[i].status = status;
            return;
        }
    for (int i = 0; i < VGPU_OWED_MAX; i++)
        if (!o->slot[i].used) {
            o->slot[i].thread = thread;
            o->slot[i].status = status;
            o->slot[i].used = true;
            o->n++;
            return;
        }
    vgpu_shim_log(VGPU_LOG_WARN, "an asynchronous error (%d) of another thread could not be "
                  "kept for it", status);
}

void vgpu_owed_collect_locked(struct vgpu_client *c)
{
    struct vgpu_owed *o = &c->owed;

    for (int i = 0; o->n && i < VGPU_OWED_MAX; i++)
        if (o->slot[i].used && pthread_equal(o->slot[i].thread, pthread_self())) {
            tls_last_error = tls_owed = o->slot[i].status;
            o->slot[i].used = false;
            o->n--;
        }
}

/*
 * A thread that queued calls exits: its pthread_t may be reused by a new
 * thread, which must not inherit errors owed to the old one.  (The key's
 * value is the client.)
 */
static void thread_exits(void *arg)
{
    struct vgpu_client *c = arg;
    pthread_t self = pthread_self();

    pthread_mutex_lock(&c->lock);
    for (int i = 0; i < c->queue.n; i++)
        if (pthread_equal(c->queue.calls[i].thread, self))
            c->queue.calls[i].orphan = true;
    for (int i = 0; i < c->flights.n; i++) {
        struct vgpu_flight *fl = &c->flights.ring[(c->flights.first + i) % VGPU_FLIGHTS_MAX];

        for (int j = 0; j < fl->n; j++)
            if (pthread_equal(fl->calls[j].thread, self))
                fl->calls[j].orphan = true;
    }
    for (int i = 0; i < VGPU_OWED_MAX; i++)
        if (c->owed.slot[i].used && pthread_equal(c->owed.slot[i].thread, self)) {
            c->owed.slot[i].used = false;
            c->owed.n--;
        }
    pthread_mutex_unlock(&c->lock);
}

void vgpu_owed_watch_thread(struct vgpu_client *c)
{
    struct vgpu_owed *o = &c->owed;

    if (!pthread_getspecific(o->exit_key))
        pthread_setspecific(o->exit_key, c);
}

int vgpu_owed_init(struct vgpu_owed *o)
{
    memset(o->slot, 0, sizeof(o->slot));
    o->n = 0;
    return -pthread_key_create(&o->exit_key, thread_exits);
}

/* The server's table of error names and texts, right after the handshake. */
int vgpu_fetch_error_table_locked(struct vgpu_client *c)
{
    struct vgpu_errtab t = { 0 };

    if (vgpu_ctl_error_table_locked(c, &t))
        return c->conn.state == VGPU_CONN_UP ? 0 : -ENOTCONN;
    c->errtab = t;
    return 0;
}

/* The entry for code, else the table's catch-all (code -1), else NULL. */
const char *vgpu_errtab_lookup(const struct vgpu_errtab *t, int code, bool text)
{
    char **col = text ? t->text : t->name;

    for (int i = 0; i < t->n; i++)
        if (t->code[i] == code && col[i])
            return col[i];
    for (int i = 0; i < t->n; i++)
        if (t->code[i] == -1 && col[i])
            return col[i];
    return NULL;
}

void vgpu_errtab_free(struct vgpu_errtab *t)
{
    for (int i = 0; i < t->n; i++) {
        free(t->name[i]);
        free(t->text[i]);
    }
    free(t->code);
    free(t->name);
    free(t->text);
    memset(t, 0, sizeof(*t));
}
