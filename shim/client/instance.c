/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The process's client, and how every copy of this library finds it.
 *
 * Each interposed library (libcudart.so.13, libcuda.so.1) links its own
 * copy of this static library, hidden, so a process that loads both has
 * two copies of the code.  It must still have one connection, one queue
 * and one order of calls.  So each copy carries an ELF note (section
 * .note.vgpu.client, name "vgpu") whose descriptor is the offset from
 * itself to the copy's vgpu_client_peer(), which answers the client that
 * copy uses.  When a copy is loaded, its constructor walks the notes of
 * every object in the process (dl_iterate_phdr: libraries opened with
 * RTLD_LOCAL too, which a dlsym(RTLD_DEFAULT) would miss) and adopts the
 * first client it finds whose table of operations has our ABI; if there is
 * none, it makes its own.  Constructors run one at a time under the dynamic
 * loader's lock, so the first copy initialised wins; the object that owns
 * the client is then pinned (RTLD_NODELETE).  Nothing is exported: the
 * libraries' dynamic symbol tables hold the CUDA names only.
 * dl_iterate_phdr lists the caller's link-map namespace only, so a copy
 * loaded with dlmopen() into another namespace (another libc) keeps a
 * client of its own.
 *
 * A client is reached only through its ops (the functions of client.h as
 * the copy that made it implements them), so copies from different builds
 * never read each other's struct layout or thread-locals.
 */
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_internal.h"
#include "manual.pb-c.h"

/* ---- the operations of a client made by this copy ---- */

/*
 * On the host-callback thread (callbacks.c) nothing may wait for the lock
 * or the server: the program's other thread may hold the lock while it
 * waits for a stream that waits for this very callback.  CUDA forbids
 * CUDA calls in a callback; here they fail at once.
 */
static int refused_in_callback(const char *what)
{
    static bool told;

    if (!__atomic_exchange_n(&told, true, __ATOMIC_RELAXED))
        vgpu_shim_log(VGPU_LOG_ERROR, "a host callback called %s: CUDA calls are not permitted in "
                      "host callbacks (cuLaunchHostFunc, cudaStreamAddCallback...), and fail; "
                      "do the work after the stream synchronizes instead", what);
    return -EDEADLK;
}

/*
 * The driver's log messages fetched with a call's reply (control.c), handed
 * to the sink on the calling thread once the call has left the client, in
 * order; not again from inside the sink (a call it makes delivers nothing:
 * its messages wait for the next call), nor from one of vgpu's own calls
 * made with a lock of vgpu's held (managed memory's moves, a staged copy's
 * parts, a log callback's registration: vgpu_client_quiet()), nor on one of
 * vgpu's threads: a callback there could call CUDA and wait for that lock.
 */
static __thread int quiet_depth;    /* vgpu_client_quiet(): no delivery on this thread now */

static void deliver_logs(struct vgpu_client *c)
{
    static __thread bool delivering;
    struct vgpu_drvlog *l, *next;
    vgpu_log_sink sink;
    int owed, last;

    if (!__atomic_load_n(&c->logs, __ATOMIC_RELAXED) || delivering || quiet_depth ||
        vgpu_managed_local_busy())
        return;
    pthread_mutex_lock(&c->lock);
    l = c->logs;
    sink = c->log_sink;
    c->logs = NULL;
    c->logs_tail = &c->logs;
    c->nlogs = 0;
    pthread_mutex_unlock(&c->lock);
    /* the call's owed status and last error are its own: the callbacks' calls must not take them */
    owed = vgpu_errors_take_owed();
    last = vgpu_errors_last(false);
    delivering = true;
    for (; l; l = next) {
        next = l->next;
        if (sink)
            sink(l->level, l->text, l->len);
        free(l);
    }
    delivering = false;
    vgpu_errors_last(true);
    vgpu_errors_set(last);
    if (owed)
        vgpu_errors_owe_here(owed);
}

/*
 * A copy to the host whose bytes came back (VGPU_REQ_DRAINS) left its
 * stream with nothing to do on the server: a synchronize of that stream,
 * by the same device and context, with no call sent since, has nothing to
 * wait for, and is answered here.  The stream is matched by the arguments
 * the generated cuStreamSynchronize and cudaStreamSynchronize pack (field
 * 1, a varint, absent for 0): any other form is sent as usual.  Not while
 * a queued call's failure is owed to a thread: the call sent tells it.
 * Lock held, connection up and agreed.
 */
static void note_drained(struct vgpu_client *c, const struct vgpu_call_req *req, int device)
{
    Vgpu__Manual__CopyArgs *a = vgpu__manual__copy_args__unpack(NULL, req->args_len, req->args);

    c->drained.valid = a != NULL;
    if (a) {
        c->drained.sent = c->sent;
        c->drained.stream = a->stream;
        c->drained.device = device;
        c->drained.context = vgpu_errors_context();
        vgpu__manual__copy_args__free_unpacked(a, NULL);
    }
}

static bool drained_sync(const struct vgpu_client *c, const struct vgpu_call_req *req, int device)
{
    uint8_t want[11];
    size_t n = 0;
    uint64_t v = c->drained.stream;

    /* a queued call's failure owed to some thread is told by the next call sent (errors.c) */
    if (!c->drained.valid || c->drained.sent != c->sent || c->drained.device != device ||
        c->drained.context != vgpu_errors_context() || req->nseg || req->nout ||
        c->conn.state != VGPU_CONN_UP || c->owed.n ||
        (strcmp(req->name, "cuStreamSynchronize") && strcmp(req->name, "cudaStreamSynchronize")))
        return false;
    if (v) {
        want[n++] = 0x08;               /* field 1, varint */
        for (; v >= 0x80; v >>= 7)
            want[n++] = (uint8_t)(v | 0x80);
        want[n++] = (uint8_t)v;
    }
    return req->args_len == n && (n == 0 || !memcmp(req->args, want, n));
}

static int local_invoke(struct vgpu_client *c, struct vgpu_call_req *req, struct vgpu_call_rep *rep)
{
    bool cacheable = (req->flags & (VGPU_FN_CACHED | VGPU_FN_CACHE_CTX)) && req->nout == 0 &&
                     req->nseg == 0;
    int device = vgpu_errors_device();
    uint64_t context = req->flags & VGPU_FN_CACHE_CTX ? vgpu_errors_context() : 0;
    const struct vgpu_cache_entry *hit;
    int st;

    rep->ret = NULL;
    rep->ret_len = 0;
    rep->priv = NULL;
    if (vgpu_callbacks_on_thread())
        return refused_in_callback(req->name);
    /* work may read and write managed memory: its host side goes first (not under the lock) */
    if ((req->flags & VGPU_FN_WORK) && __atomic_load_n(&c->before_work, __ATOMIC_ACQUIRE))
        __atomic_load_n(&c->before_work, __ATOMIC_ACQUIRE)();
    /* in a call from here (managed.c's fault handler): a fault is the call writing its outputs */
    vgpu_client_in_call++;
    pthread_mutex_lock(&c->lock);
    if (cacheable && (hit = vgpu_cache_find(c, req, device, context)) &&
        vgpu_cache_answer(hit, rep) == 0) {
        pthread_mutex_unlock(&c->lock);
        vgpu_client_in_call--;
        vgpu_shim_log(VGPU_LOG_DEBUG, "%s -> 0 (cached)", req->name);
        return 0;
    }
    if (vgpu_conn_ensure_locked(c)) {
        st = -ENOTCONN;
    } else if (!vgpu_conn_agreed(c, req)) {
        st = -EOPNOTSUPP;       /* a server of another release that serves this call otherwise */
    } else if (drained_sync(c, req, device)) {
        pthread_mutex_unlock(&c->lock);
        vgpu_client_in_call--;
        vgpu_shim_log(VGPU_LOG_DEBUG, "%s -> 0 (drained)", req->name);
        return 0;
    } else if ((req->flags & VGPU_FN_ASYNC) && req->nout == 0 &&
               vgpu_queue_enqueue_locked(c, req) == 0) {
        c->sent++;
        pthread_mutex_unlock(&c->lock);
        vgpu_client_in_call--;
        vgpu_shim_log(VGPU_LOG_DEBUG, "%s queued", req->name);
        return 0;
    } else {
        /* a batch runs on one device: queued calls of another go first, alone */
        if (c->queue.n && (c->queue.device != device || c->queue.context != vgpu_errors_context()))
            vgpu_queue_flush_locked(c);
        st = c->conn.state == VGPU_CONN_UP ? vgpu_queue_invoke_locked(c, req, rep) : -ENOTCONN;
        c->sent++;
        if (st == 0 && (req->flags & VGPU_REQ_DRAINS))
            note_drained(c, req, device);
    }
    vgpu_owed_collect_locked(c);
    /* whatever it answered, a call that changes contexts may have changed them */
    if (req->flags & VGPU_FN_CTX_CHANGE)
        vgpu_cache_drop_contexts(c);
    if (cacheable && st == 0)
        vgpu_cache_add(c, req, rep, device, context);
    pthread_mutex_unlock(&c->lock);
    vgpu_client_in_call--;
    vgpu_shim_log(VGPU_LOG_DEBUG, "%s -> %d", req->name, st);
    vgpu_errors_set(st);
    deliver_logs(c);
    return st;
}

static void local_rep_release(struct vgpu_client *c, struct vgpu_call_rep *rep)
{
    (void)c;
    vgpu_reply_buf_free(rep->priv);
    rep->priv = NULL;
    rep->ret = NULL;
    rep->ret_len = 0;
}

static int local_connect(struct vgpu_client *c)
{
    int rc;

    if (vgpu_callbacks_on_thread())
        return -EDEADLK;
    pthread_mutex_lock(&c->lock);
    rc = vgpu_conn_ensure_locked(c);
    pthread_mutex_unlock(&c->lock);
    return rc;
}

static void local_settle(struct vgpu_client *c)
{
    if (vgpu_callbacks_on_thread())
        return;
    pthread_mutex_lock(&c->lock);
    vgpu_queue_settle_locked(c);
    vgpu_owed_collect_locked(c);
    pthread_mutex_unlock(&c->lock);
}

static int local_device(struct vgpu_client *c)
{
    (void)c;
    return vgpu_errors_device();
}

static void local_set_device(struct vgpu_client *c, int device)
{
    (void)c;
    vgpu_errors_set_device(device);
}

static uint64_t local_context(struct vgpu_client *c)
{
    (void)c;
    return vgpu_errors_context();
}

static void local_set_context(struct vgpu_client *c, uint64_t ctx)
{
    (void)c;
    vgpu_errors_set_context(ctx);
}

static int local_last_error(struct vgpu_client *c, bool clear)
{
    (void)c;
    return vgpu_errors_last(clear);
}

static void local_quiet(struct vgpu_client *c, int delta)
{
    (void)c;
    quiet_depth += delta;
}

static int local_server_version(struct vgpu_client *c, char *buf, size_t len)
{
    int rc;

    if (vgpu_callbacks_on_thread())
        return -EDEADLK;       /* the client's lock may be held by the call that waits for it */
    pthread_mutex_lock(&c->lock);
    rc = vgpu_conn_ensure_locked(c) ? -ENOTCONN : 0;
    if (!rc)
        snprintf(buf, len, "%s", c->conn.server_version);
    pthread_mutex_unlock(&c->lock);
    return rc;
}

static int local_take_owed(struct vgpu_client *c)
{
    (void)c;
    return vgpu_errors_take_owed();
}

static void local_set_error(struct vgpu_client *c, int st)
{
    (void)c;
    vgpu_errors_set(st);
}

static int local_init_status(struct vgpu_client *c)
{
    return c->errtab.init_status;      /* written once, at connection */
}

static const char *local_error_string(struct vgpu_client *c, int code, bool text, bool connect)
{
    if (connect)
        local_connect(c);
    return vgpu_errtab_lookup(&c->errtab, code, text);
}

static void *local_region_new(struct vgpu_client *c, uint32_t id, size_t size)
{
    return vgpu_callbacks_on_thread() ? NULL : vgpu_client_local_region_new(c, id, size);
}

static void *local_bar_region(struct vgpu_client *c, uint32_t id, size_t *size)
{
    return vgpu_callbacks_on_thread() ? NULL : vgpu_client_local_bar_region(c, id, size);
}

static void local_region_free(struct vgpu_client *c, uint32_t id, void *base, size_t size)
{
    if (!vgpu_callbacks_on_thread())
        vgpu_client_local_region_free(c, id, base, size);
}

static void local_set_before_work(struct vgpu_client *c, void (*fn)(void))
{
    __atomic_store_n(&c->before_work, fn, __ATOMIC_RELEASE);
}

static void local_set_log_sink(struct vgpu_client *c, vgpu_log_sink fn)
{
    struct vgpu_drvlog *l;

    pthread_mutex_lock(&c->lock);
    c->log_sink = fn;
    if (!fn) {
        while ((l = c->logs)) {
            c->logs = l->next;
            free(l);
        }
        c->logs_tail = &c->logs;
        c->nlogs = 0;
    }
    pthread_mutex_unlock(&c->lock);
}

static void *local_region_new_mapped(struct vgpu_client *c, uint32_t id, size_t size,
                                     uint64_t *devptr)
{
    return vgpu_callbacks_on_thread() ? NULL : vgpu_client_local_region_new_mapped(c, id, size, devptr);
}

static int local_callback_add(struct vgpu_client *c, const struct vgpu_callback *cb, uint64_t *id)
{
    int rc;

    if (vgpu_callbacks_on_thread())
        return refused_in_callback("cuLaunchHostFunc or cudaLaunchHostFunc");
    pthread_mutex_lock(&c->lock);
    rc = vgpu_conn_ensure_locked(c);
    if (!rc)
        rc = vgpu_callbacks_add_locked(c, cb, id);
    pthread_mutex_unlock(&c->lock);
    return rc;
}

const struct vgpu_client_ops vgpu_client_local_ops = {
    .abi = VGPU_CLIENT_ABI,
    .size = sizeof(struct vgpu_client_ops),
    .invoke = local_invoke,
    .rep_release = local_rep_release,
    .connect = local_connect,
    .settle = local_settle,
    .device = local_device,
    .set_device = local_set_device,
    .last_error = local_last_error,
    .set_error = local_set_error,
    .init_status = local_init_status,
    .error_string = local_error_string,
    .can_share = vgpu_client_local_can_share,
    .region_new = local_region_new,
    .bar_region = local_bar_region,
    .region_free = local_region_free,
    .context = local_context,
    .set_context = local_set_context,
    .region_new_mapped = local_region_new_mapped,
    .callback_add = local_callback_add,
    .callback_cancel = vgpu_callbacks_cancel,
    .set_before_work = local_set_before_work,
    .callback_keep = vgpu_callbacks_keep,
    .callbacks_due = vgpu_callbacks_due,
    .set_log_sink = local_set_log_sink,
    .managed_add = vgpu_managed_local_add,
    .managed_remove = vgpu_managed_local_remove,
    .managed_device_side = vgpu_managed_local_device_side,
    .managed_holds = vgpu_managed_local_holds,
    .managed_advise = vgpu_managed_local_advise,
    .managed_prefetched = vgpu_managed_local_prefetched,
    .managed_range_attrs = vgpu_managed_local_range_attrs,
    .take_owed = local_take_owed,
    .quiet = local_quiet,
    .server_version = local_server_version,
};

/* ---- client.h: whichever copy made c ---- */

int vgpu_client_invoke(struct vgpu_client *c, struct vgpu_call_req *req, struct vgpu_call_rep *rep)
{
    return c->ops->invoke(c, req, rep);
}

void vgpu_client_rep_release(struct vgpu_client *c, struct vgpu_call_rep *rep)
{
    c->ops->rep_release(c, rep);
}

int vgpu_client_connect(struct vgpu_client *c)
{
    return c->ops->connect(c);
}

void vgpu_client_settle(struct vgpu_client *c)
{
    c->ops->settle(c);
}

/* An older copy's client has no contexts: every thread is on the primary one. */
static bool has_contexts(const struct vgpu_client *c)
{
    return c->ops->size >= offsetof(struct vgpu_client_ops, set_context) + sizeof(c->ops->set_context);
}

uint64_t vgpu_client_context(struct vgpu_client *c)
{
    return has_contexts(c) ? c->ops->context(c) : 0;
}

void vgpu_client_set_context(struct vgpu_client *c, uint64_t ctx)
{
    if (has_contexts(c))
        c->ops->set_context(c, ctx);
}

int vgpu_client_device(struct vgpu_client *c)
{
    return c->ops->device(c);
}

void vgpu_client_set_device(struct vgpu_client *c, int device)
{
    c->ops->set_device(c, device);
}

int vgpu_client_last_error(struct vgpu_client *c, bool clear)
{
    return c->ops->last_error(c, clear);
}

void vgpu_client_set_error(struct vgpu_client *c, int st)
{
    c->ops->set_error(c, st);
}

int vgpu_client_init_status(struct vgpu_client *c)
{
    return c->ops->init_status(c);
}

const char *vgpu_client_error_string(struct vgpu_client *c, int code, bool text, bool connect)
{
    return c->ops->error_string(c, code, text, connect);
}

bool vgpu_client_can_share(struct vgpu_client *c)
{
    return c->ops->can_share(c);
}

void *vgpu_client_region_new(struct vgpu_client *c, uint32_t id, size_t size)
{
    return c->ops->region_new(c, id, size);
}

void *vgpu_client_region_new_mapped(struct vgpu_client *c, uint32_t id, size_t size,
                                    uint64_t *devptr)
{
    if (c->ops->size < offsetof(struct vgpu_client_ops, region_new_mapped) + sizeof(void *))
        return NULL;
    return c->ops->region_new_mapped(c, id, size, devptr);
}

void *vgpu_client_bar_region(struct vgpu_client *c, uint32_t id, size_t *size)
{
    return c->ops->bar_region(c, id, size);
}

void vgpu_client_region_free(struct vgpu_client *c, uint32_t id, void *base, size_t size)
{
    c->ops->region_free(c, id, base, size);
}

/* An older copy's client has no host callbacks. */
static bool has_callbacks(const struct vgpu_client *c)
{
    return c->ops->size >= offsetof(struct vgpu_client_ops, callback_cancel) +
                           sizeof(c->ops->callback_cancel);
}

int vgpu_client_callback_add(struct vgpu_client *c, const struct vgpu_callback *cb, uint64_t *id)
{
    return has_callbacks(c) ? c->ops->callback_add(c, cb, id) : -EOPNOTSUPP;
}

void vgpu_client_callback_cancel(struct vgpu_client *c, uint64_t id)
{
    if (has_callbacks(c))
        c->ops->callback_cancel(c, id);
}

bool vgpu_client_callbacks_due(struct vgpu_client *c)
{
    if (c->ops->size < offsetof(struct vgpu_client_ops, callbacks_due) + sizeof(c->ops->callbacks_due))
        return false;              /* an older copy's client */
    return c->ops->callbacks_due(c);
}

int vgpu_client_callback_keep(struct vgpu_client *c, uint64_t id, int how,
                              struct vgpu_callback *out)
{
    if (c->ops->size < offsetof(struct vgpu_client_ops, callback_keep) +
                       sizeof(c->ops->callback_keep))
        return -EOPNOTSUPP;        /* an older copy's client */
    return c->ops->callback_keep(c, id, how, out);
}

int vgpu_client_set_before_work(struct vgpu_client *c, void (*fn)(void))
{
    if (c->ops->size < offsetof(struct vgpu_client_ops, set_before_work) +
                       sizeof(c->ops->set_before_work))
        return -EOPNOTSUPP;        /* an older copy's client */
    c->ops->set_before_work(c, fn);
    return 0;
}

int vgpu_client_take_owed(struct vgpu_client *c)
{
    if (c->ops->size < offsetof(struct vgpu_client_ops, take_owed) + sizeof(c->ops->take_owed))
        return c->ops->last_error(c, true);     /* an older copy's client */
    return c->ops->take_owed(c);
}

bool vgpu_client_runs_notify(struct vgpu_client *c)
{
    /* VGPU_CB_NOTIFY came with the ops up to quiet */
    return c->ops->size >= offsetof(struct vgpu_client_ops, quiet) + sizeof(c->ops->quiet);
}

int vgpu_client_server_version(struct vgpu_client *c, char *buf, size_t len)
{
    if (c->ops->size < offsetof(struct vgpu_client_ops, server_version) +
                       sizeof(c->ops->server_version))
        return -EOPNOTSUPP;        /* an older copy's client */
    return c->ops->server_version(c, buf, len);
}

void vgpu_client_quiet(struct vgpu_client *c, int delta)
{
    if (c->ops->size >= offsetof(struct vgpu_client_ops, quiet) + sizeof(c->ops->quiet))
        c->ops->quiet(c, delta);
}

int vgpu_client_set_log_sink(struct vgpu_client *c, vgpu_log_sink fn)
{
    if (c->ops->size < offsetof(struct vgpu_client_ops, set_log_sink) +
                       sizeof(c->ops->set_log_sink))
        return -EOPNOTSUPP;        /* an older copy's client */
    c->ops->set_log_sink(c, fn);
    return 0;
}

/* ---- making and unmaking one ---- */

int vgpu_client_init(struct vgpu_client *c)
{
    int rc;

    memset(c, 0, sizeof(*c));
    c->ops = &vgpu_client_local_ops;
    c->conn.transport.fd = -1;
    c->conn.transport.pass_fd = -1;
    c->logs_tail = &c->logs;
    rc = -pthread_mutex_init(&c->lock, NULL);
    if (rc)
        return rc;
    rc = vgpu_queue_init(&c->queue);
    if (rc)
        goto fail_lock;
    rc = vgpu_owed_init(&c->owed);
    if (rc)
        goto fail_queue;
    rc = vgpu_callbacks_init(&c->callbacks);
    if (rc)
        goto fail_owed;
    return 0;
fail_owed:
    pthread_key_delete(c->owed.exit_key);
fail_queue:
fail_lock:
    pthread_mutex_destroy(&c->lock);
    return rc;
}

void vgpu_client_destroy(struct vgpu_client *c)
{
    struct vgpu_transport *t = &c->conn.transport;

    if (c->conn.state == VGPU_CONN_UP && t->ops)
        t->ops->close(t);
    vgpu_queue_clear(&c->queue);
    vgpu_flights_clear(&c->flights);
    vgpu_cache_free(c);
    free(c->conn.agree);
    c->conn.agree = NULL;
    vgpu_errtab_free(&c->errtab);
    vgpu_callbacks_destroy(&c->callbacks);
    for (struct vgpu_drvlog *l = c->logs, *next; l; l = next) {
        next = l->next;
        free(l);
    }
    pthread_key_delete(c->owed.exit_key);
    pthread_mutex_destroy(&c->lock);
}

/* ---- the process's client ---- */

static struct vgpu_client own;                  /* used when this copy made it */
static struct vgpu_client *process_client;      /* the one every call uses, once elected */
static pthread_once_t elect_once = PTHREAD_ONCE_INIT;

/* Named by this copy's note (below); NULL before this copy has elected. */
__attribute__((used, visibility("hidden"))) struct vgpu_client *vgpu_client_peer(void)
{
    return __atomic_load_n(&process_client, __ATOMIC_ACQUIRE);
}

#define NOTE_NAME "vgpu"
#define NOTE_TYPE 0x76677031u        /* "vgp1" */

/* namesz, descsz, type, name padded to 8, then the descriptor: vgpu_client_peer - . */
__asm__(".pushsection .note.vgpu.client,\"a\",@note\n"
        "    .balign 4\n"
        "    .long 5\n"
        "    .long 8\n"
        "    .long 0x76677031\n"
        "    .asciz \"vgpu\"\n"
        "    .balign 4\n"
        "1:  .quad vgpu_client_peer - 1b\n"
        "    .popsection\n");

struct note_search {
    struct vgpu_client *found;
    int skipped;                     /* clients of another ABI */
};

/* The copies' peer functions named by the notes of one object's PT_NOTE segment. */
static void search_segment(struct note_search *s, const uint8_t *p, size_t len)
{
    while (!s->found && len >= 12) {
        uint32_t nsz, dsz, type;
        size_t at, step;

        memcpy(&nsz, p, 4);
        memcpy(&dsz, p + 4, 4);
        memcpy(&type, p + 8, 4);
        at = 12 + ((nsz + 3u) & ~3u);
        step = at + ((dsz + 3u) & ~3u);
        if (step > len || step < at)
            return;
        if (type == NOTE_TYPE && nsz == sizeof(NOTE_NAME) && dsz == 8 &&
            !memcmp(p + 12, NOTE_NAME, sizeof(NOTE_NAME))) {
            int64_t off;
            struct vgpu_client *(*peer)(void);
            struct vgpu_client *c;

            memcpy(&off, p + at, 8);
            peer = (struct vgpu_client * (*)(void))(uintptr_t)((intptr_t)(p + at) + off);
            c = peer != vgpu_client_peer ? peer() : NULL;
            if (c && c->ops->abi == VGPU_CLIENT_ABI && c->ops->size >= sizeof(*c->ops))
                s->found = c;
            else if (c)
                s->skipped++;
        }
        p += step;
        len -= step;
    }
}

static int search_object(struct dl_phdr_info *info, size_t size, void *arg)
{
    struct note_search *s = arg;

    (void)size;
    for (int i = 0; !s->found && i < info->dlpi_phnum; i++)
        if (info->dlpi_phdr[i].p_type == PT_NOTE)
            search_segment(s, (const uint8_t *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr),
                           info->dlpi_phdr[i].p_memsz);
    return s->found != NULL;
}

void vgpu_client_pin(const void *addr)
{
    Dl_info di;
    void *h;

    if (dladdr(addr, &di) && di.dli_fname &&
        (h = dlopen(di.dli_fname, RTLD_LAZY | RTLD_NOLOAD | RTLD_NODELETE)))
        dlclose(h);
}

static void own_atfork_prepare(void)
{
    vgpu_conn_atfork_prepare(&own);
}

static void own_atfork_parent(void)
{
    vgpu_conn_atfork_parent(&own);
}

static void own_atfork_child(void)
{
    vgpu_conn_atfork_child(&own);
}

static void elect(void)
{
    struct note_search s = { 0 };
    int rc;

    dl_iterate_phdr(search_object, &s);
    if (s.found) {
        vgpu_client_pin((const void *)(uintptr_t)s.found->ops->invoke);
        __atomic_store_n(&process_client, s.found, __ATOMIC_RELEASE);
        return;
    }
    if (s.skipped)
        vgpu_shim_log(VGPU_LOG_WARN, "another vgpu library of a different build is loaded in "
                      "this process; its calls and ours are not ordered with each other");
    rc = vgpu_client_init(&own);
    if (rc)
        vgpu_shim_log(VGPU_LOG_ERROR, "cannot set up the vgpu client (%s)", strerror(-rc));
    pthread_atfork(own_atfork_prepare, own_atfork_parent, own_atfork_child);
    __atomic_store_n(&process_client, &own, __ATOMIC_RELEASE);
}

struct vgpu_client *vgpu_client_get(void)
{
    struct vgpu_client *c = __atomic_load_n(&process_client, __ATOMIC_ACQUIRE);

    if (!c) {
        pthread_once(&elect_once, elect);
        c = __atomic_load_n(&process_client, __ATOMIC_ACQUIRE);
    }
    return c;
}

/*
 * Before the library's other constructors (priority 101 runs before the
 * default), so the client's fork handlers are registered first and its
 * prepare runs last: a library's own prepare (manual/copy.c takes the
 * staging lock) must not wait for a thread that holds it and waits for the
 * client's lock, which this prepare would already hold.
 */
__attribute__((constructor(101))) static void client_load(void)
{
    pthread_once(&elect_once, elect);
}

/* At exit: the client this copy made settles and ends its session. */
__attribute__((destructor)) static void client_unload(void)
{
    if (__atomic_load_n(&process_client, __ATOMIC_ACQUIRE) == &own)
        vgpu_conn_fini(&own);
}
