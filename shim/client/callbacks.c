/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Host callbacks (cuLaunchHostFunc, cuStreamAddCallback and the runtime's
 * two): the program's function runs in this process, on a thread of the
 * client's own, when the server says it is due.
 *
 * The program's call registers (kind, function, data, stream) here under an
 * id of ours (a counter, never a pointer) and sends the id; the server puts
 * a trampoline of its own on the real stream.  When the stream reaches it,
 * the trampoline writes the id into the server's callback line of the
 * queue pair's header page and bumps cb_due; the thread here sees that
 * (a futex host-direct; naps in a guest, which has nothing to wake it),
 * runs the function, and stores that cb_due value in cb_done, which lets
 * the trampoline return and the stream go on (docs/specs/shared-memory.md,
 * "Host callbacks").  The thread never takes the client's lock and never
 * sends a frame, so it works while the program spins on a flag the
 * callback sets, or waits in a synchronizing call for the very stream whose
 * callback is due.
 *
 * A callback must not call CUDA.  If it does, every call that would reach
 * the server (or take the client's lock) fails at once with -EDEADLK
 * (instance.c), which the libraries report as "not permitted": waiting
 * there could deadlock the whole client.
 *
 * Locks: the client's lock, then callbacks->lock; the thread takes only
 * the latter.  The header page is read and written only with that lock
 * held and the thread not stopped (the futex wait aside, which only reads
 * the word and tolerates an unmapped page), so stopping before the pair is
 * unmapped is enough.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client_internal.h"
#include "vgpu/futex.h"

#define CB_MAX 65536                   /* callbacks registered and not yet run (the server's limit too) */
#define CB_SLEEP_NS 50000000u          /* host-direct: a futex wait, then a look at stop */
#define CB_NAP_MIN_NS 10000
#define CB_NAP_MAX_NS 200000           /* a guest naps while a callback may become due */
#define CB_NAP_KEPT_MAX_NS 1000000     /* ... and with only host nodes' registered */
#define CB_IDLE_NS 10000000            /* ... and with none registered */

static __thread bool on_callback_thread;

bool vgpu_callbacks_on_thread(void)
{
    return on_callback_thread;
}

int vgpu_callbacks_init(struct vgpu_callbacks *cb)
{
    int rc;

    memset(cb, 0, sizeof(*cb));
    cb->next_id = 1;
    rc = -pthread_mutex_init(&cb->lock, NULL);
    if (rc)
        return rc;
    rc = -pthread_cond_init(&cb->cond, NULL);
    if (rc)
        pthread_mutex_destroy(&cb->lock);
    return rc;
}

void vgpu_callbacks_destroy(struct vgpu_callbacks *cb)
{
    free(cb->e);
    cb->e = NULL;
    cb->n = cb->cap = cb->kept = 0;
    pthread_cond_destroy(&cb->cond);
    pthread_mutex_destroy(&cb->lock);
}

/* The entry of id, or NULL. */
static struct vgpu_cb_entry *find_entry(struct vgpu_callbacks *cb, uint64_t id)
{
    for (int i = 0; i < cb->n; i++)
        if (cb->e[i].id == id)
            return &cb->e[i];
    return NULL;
}

/*
 * The entry of id into *out: true when there was one.  It leaves the table
 * unless it is kept and !drop (a host node's, run again at the next launch).
 */
static bool take_entry(struct vgpu_callbacks *cb, uint64_t id, struct vgpu_callback *out, bool drop)
{
    struct vgpu_cb_entry *e = find_entry(cb, id);

    if (!e)
        return false;
    *out = e->cb;
    if (e->how == VGPU_CB_KEEP && !drop) {
        e->ran = true;
        return true;
    }
    if (e->how != VGPU_CB_AS_IS)
        cb->kept--;
    *e = cb->e[--cb->n];
    return true;
}

static void run(const struct vgpu_callback *f, int status, uint64_t arg)
{
    if (f->kind == VGPU_CB_STREAM)
        ((void (*)(void *, int, void *))f->fn)(f->stream, status, f->data);
    else if (f->kind == VGPU_CB_NOTIFY)
        ((void (*)(void *, int, uint64_t))f->fn)(f->data, status, arg);
    else
        ((void (*)(void *))f->fn)(f->data);
}

/* The callback due (cb_due moved to due): run it, then say it returned.  Lock held, dropped inside. */
static void serve_due(struct vgpu_callbacks *cb, uint32_t due)
{
    struct vgpu_qp_hdr *h = cb->hdr;
    uint64_t id = __atomic_load_n(&h->cb_id, __ATOMIC_RELAXED);
    int status = __atomic_load_n(&h->cb_status, __ATOMIC_RELAXED);
    uint64_t arg = __atomic_load_n(&h->cb_arg, __ATOMIC_RELAXED);
    struct vgpu_callback f;
    bool known = take_entry(cb, id, &f, false);

    cb->in_run += known;
    pthread_mutex_unlock(&cb->lock);
    if (known)
        run(&f, status, arg);
    else
        vgpu_shim_log(VGPU_LOG_WARN, "vgpu-server made host callback %llu due, which this "
                      "process never registered or already ran; answered without running anything",
                      (unsigned long long)id);
    pthread_mutex_lock(&cb->lock);
    cb->in_run -= known;
    cb->handled = due;
    if (!cb->stop) {
        __atomic_store_n(&h->cb_done, due, __ATOMIC_RELEASE);
        if (cb->futex)
            vgpu_futex_wake(&h->cb_done);
    }
}

/* A guest with nothing registered: a long nap, cut short by a registration or stop. */
static void idle_wait(struct vgpu_callbacks *cb)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += CB_IDLE_NS;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(&cb->cond, &cb->lock, &ts);
}

/*
 * Once started it watches cb_due until stopped, registered callbacks or
 * not, so that whatever the server makes due is answered (an id not in the
 * table without running anything).  Host-direct it sleeps on the futex;
 * in a guest it naps, briefly while callbacks are registered.
 */
static void *callback_thread(void *arg)
{
    struct vgpu_callbacks *cb = arg;
    long nap = CB_NAP_MIN_NS;

    on_callback_thread = true;
    pthread_mutex_lock(&cb->lock);
    while (!cb->stop) {
        uint32_t due = __atomic_load_n(&cb->hdr->cb_due, __ATOMIC_ACQUIRE);

        if (due != cb->handled) {
            serve_due(cb, due);
            nap = CB_NAP_MIN_NS;
        } else if (cb->futex) {
            pthread_mutex_unlock(&cb->lock);
            vgpu_futex_wait(&cb->hdr->cb_due, due, CB_SLEEP_NS);
            pthread_mutex_lock(&cb->lock);
        } else if (!cb->n) {
            idle_wait(cb);
            nap = CB_NAP_MIN_NS;
        } else {
            struct timespec ts = { 0, nap };
            /* only host nodes and destructors: due when a graph runs or goes, maybe long from now */
            long max = cb->n > cb->kept ? CB_NAP_MAX_NS : CB_NAP_KEPT_MAX_NS;

            pthread_mutex_unlock(&cb->lock);
            nanosleep(&ts, NULL);
            nap = nap * 2 < max ? nap * 2 : max;
            pthread_mutex_lock(&cb->lock);
        }
    }
    cb->running = false;
    pthread_mutex_unlock(&cb->lock);
    return NULL;
}

/*
 * The thread, with every signal blocked (the program's handlers run on its
 * own threads) but the ones a fault of its own raises: blocked, those kill
 * the process without a word (managed memory's handler must see them).
 */
static int start_thread(struct vgpu_callbacks *cb)
{
    sigset_t all, old;
    pthread_attr_t attr;
    pthread_t th;
    int rc;

    if (pthread_attr_init(&attr))
        return -ENOMEM;
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    sigfillset(&all);
    sigdelset(&all, SIGSEGV);
    sigdelset(&all, SIGBUS);
    sigdelset(&all, SIGFPE);
    sigdelset(&all, SIGILL);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = -pthread_create(&th, &attr, callback_thread, cb);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    return rc;
}

/* Room for one more entry: 0, or -ENOSPC / -ENOMEM. */
static int grow(struct vgpu_callbacks *cb)
{
    struct vgpu_cb_entry *e;
    int cap;

    if (cb->n < cb->cap)
        return 0;
    if (cb->n >= CB_MAX)
        return -ENOSPC;
    cap = cb->cap ? cb->cap * 2 : 16;
    e = realloc(cb->e, (size_t)cap * sizeof(*e));
    if (!e)
        return -ENOMEM;
    cb->e = e;
    cb->cap = cap;
    return 0;
}

int vgpu_callbacks_add_locked(struct vgpu_client *c, const struct vgpu_callback *f, uint64_t *id)
{
    struct vgpu_transport *t = &c->conn.transport;
    struct vgpu_callbacks *cb = &c->callbacks;
    int rc;

    if (!t->qp_mem || !t->qp.hdr) {
        if (!cb->told_no_qp)
            vgpu_shim_log(VGPU_LOG_ERROR, "host callbacks (cuLaunchHostFunc, cudaLaunchHostFunc, "
                          "cu/cudaStreamAddCallback, host nodes, user objects, async notifications) "
                          "need the queue pair in shared memory: connect "
                          "through a unix socket without VGPU_SHM=0, or in a VM through a vgpu-stub "
                          "device with a shared BAR; they fail with 'not supported' here");
        cb->told_no_qp = true;
        return -EOPNOTSUPP;
    }
    pthread_mutex_lock(&cb->lock);
    rc = cb->stop ? -ENOTCONN : grow(cb);
    if (!rc && !cb->running) {
        cb->hdr = t->qp.hdr;
        cb->futex = t->ops->qp_futex;
        cb->handled = __atomic_load_n(&cb->hdr->cb_due, __ATOMIC_ACQUIRE);
        rc = start_thread(cb);
        cb->running = rc == 0;
        if (rc)
            vgpu_shim_log(VGPU_LOG_ERROR, "cannot start the host-callback thread (%s)", strerror(-rc));
    }
    if (!rc) {
        *id = cb->next_id++;
        cb->e[cb->n++] = (struct vgpu_cb_entry){ .id = *id, .cb = *f };
        pthread_cond_signal(&cb->cond);
    }
    pthread_mutex_unlock(&cb->lock);
    return rc;
}

void vgpu_callbacks_cancel(struct vgpu_client *c, uint64_t id)
{
    struct vgpu_callbacks *cb = &c->callbacks;
    struct vgpu_callback f;

    pthread_mutex_lock(&cb->lock);
    take_entry(cb, id, &f, true);
    pthread_mutex_unlock(&cb->lock);
}

/*
 * Whether a callback registered to run once has not returned yet (kept
 * ones, host nodes, count only while they run).
 */
bool vgpu_callbacks_due(struct vgpu_client *c)
{
    struct vgpu_callbacks *cb = &c->callbacks;
    bool due;

    pthread_mutex_lock(&cb->lock);
    due = cb->n > cb->kept || cb->in_run > 0;
    pthread_mutex_unlock(&cb->lock);
    return due;
}

int vgpu_callbacks_keep(struct vgpu_client *c, uint64_t id, int how, struct vgpu_callback *out)
{
    struct vgpu_callbacks *cb = &c->callbacks;
    struct vgpu_cb_entry *e;

    pthread_mutex_lock(&cb->lock);
    e = find_entry(cb, id);
    if (e && out)
        *out = e->cb;
    if (e && how == VGPU_CB_ONCE) {
        if (e->how != VGPU_CB_AS_IS)
            cb->kept--;
        if (e->ran)
            *e = cb->e[--cb->n];   /* it ran while kept: its one run is done */
        else
            e->how = VGPU_CB_AS_IS;
    } else if (e && how != VGPU_CB_AS_IS && e->how != how) {
        if (e->how == VGPU_CB_AS_IS)
            cb->kept++;
        e->how = how;
    }
    pthread_mutex_unlock(&cb->lock);
    return e ? 0 : -ENOENT;
}

void vgpu_callbacks_stop_locked(struct vgpu_client *c)
{
    struct vgpu_callbacks *cb = &c->callbacks;

    pthread_mutex_lock(&cb->lock);
    if (cb->running && !cb->stop) {
        if (cb->n > cb->kept)
            vgpu_shim_log(VGPU_LOG_WARN, "%d host callbacks never ran: the session ended first",
                          cb->n - cb->kept);
        cb->stop = true;
        pthread_cond_signal(&cb->cond);
        if (cb->futex)
            vgpu_futex_wake(&cb->hdr->cb_due);
    }
    cb->stop = true;
    pthread_mutex_unlock(&cb->lock);
}

void vgpu_callbacks_forked(struct vgpu_client *c)
{
    /* the thread is not in the child, and the parent's session is not the child's */
    free(c->callbacks.e);
    vgpu_callbacks_init(&c->callbacks);
}
