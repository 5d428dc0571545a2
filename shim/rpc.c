/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The shim's call path: one connection per process to the vgpu-server named
 * by VGPU_SERVER (mmio, unix:PATH, tcp:HOST:PORT; default: mmio when a
 * vgpu-stub device is present, else unix:/tmp/vgpu.sock),
 * opened at the first CUDA call, then Hello/HelloReply, then CallBatches
 * under a lock, so any number of program threads can call at once.
 *
 * Calls marked async (launches, async copies to the device, memsets, event
 * records, stream waits) are not sent on their own: they wait in a queue
 * and go in one batch with the next call that needs an answer, when the
 * queue is full, or at the latest VGPU_BATCH_US (default 200) microseconds
 * after the first of them (a flusher thread).  Their statuses come back
 * with that batch; a failure becomes the last error of the thread that made
 * the call, where cudaGetLastError/cudaPeekAtLastError (which flush first)
 * find it: asynchronous errors surface where CUDA reports them.
 *
 * Failures map to CUDA statuses at this one place (docs/shim.md):
 *   server unreachable, handshake refused, connection lost -> cudaErrorNoDevice,
 *   with one line on stderr saying what happened and what to do;
 *   a reply that does not decode -> cudaErrorUnknown.
 */
#include <cuda_runtime_api.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "cudart_calltable.h"
#include "shim_internal.h"
#include "vgpu/futex.h"

#define DEFAULT_SERVER "unix:/tmp/vgpu.sock"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct vgpu_transport transport = { .fd = -1, .pass_fd = -1 };
static int conn_state;            /* 0 untried, 1 up, -1 failed for good */
static uint64_t seq;
static const char *server_addr;
static int log_level = -1;

static uint8_t *slot;                        /* this guest process's slot of the shared BAR */
static size_t slot_size, slot_used;
static uint64_t slot_off;

static int init_status;
static int table_n;
static int *table_code;
static char **table_name, **table_text;

static __thread int tls_device;
static __thread int tls_last_error;

/* ---- the queue of async calls (guarded by lock) ---- */
#define QUEUE_MAX_CALLS 256
#define QUEUE_EAGER_CALLS 16             /* sent early when the server is idle (enqueue_locked) */
#define QUEUE_MAX_BYTES (1u << 20)   /* arguments and data held */
#define QUEUE_MAX_SEG_BYTES (64u << 10)  /* a call with more data is sent at once */

struct queued {
    uint32_t call_id;
    const char *name;
    uint8_t *args;                   /* owned copy */
    size_t args_len;
    int nseg;
    uint8_t *seg[VGPU_CALL_MAX_SEG]; /* owned copies */
    size_t seg_len[VGPU_CALL_MAX_SEG];
    pthread_t thread;                /* whose last error a failure becomes */
    bool orphan;                     /* that thread has exited: a failure goes nowhere */
};

static struct queued queue[QUEUE_MAX_CALLS];
static int queue_n, queue_device;
static size_t queue_bytes;
static uint64_t queue_since_ns;      /* when the oldest entered */
static pthread_cond_t queue_cond;
static bool flusher_started;
static uint64_t batch_ns = 200000;

/* Failures of queued calls owed to threads other than the one that flushed. */
#define DEFERRED_MAX 64
static struct { pthread_t thread; int status; bool used; } deferred[DEFERRED_MAX];
static int deferred_n;               /* entries in use */

void vgpu_shim_log(int level, const char *fmt, ...)
{
    va_list ap;

    if (log_level < 0) {
        const char *v = getenv("VGPU_LOG");

        log_level = VGPU_LOG_WARN;
        if (v && !strcmp(v, "error"))
            log_level = VGPU_LOG_ERROR;
        else if (v && !strcmp(v, "info"))
            log_level = VGPU_LOG_INFO;
        else if (v && !strcmp(v, "debug"))
            log_level = VGPU_LOG_DEBUG;
    }
    if (level > log_level)
        return;
    fputs("vgpu: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int vgpu_shim_device(void)
{
    return tls_device;
}

void vgpu_shim_set_device(int device)
{
    tls_device = device;
}

int vgpu_shim_status(int st)
{
    if (st != cudaSuccess)
        tls_last_error = st;
    return st;
}

int vgpu_shim_init_status(void)
{
    return init_status;
}

static void flush_queue_public(void);
static void flush_locked(void);
static void settle_locked(void);
static void qp_setup_locked(void);
static void queue_cond_init(void);

int vgpu_shim_take_last_error(bool clear)
{
    int e;

    /* the calls still queued may hold this thread's error: send them first */
    flush_queue_public();
    e = tls_last_error;

    /* A runtime that could not start keeps reporting it, as natively. */
    if (init_status != cudaSuccess)
        return init_status;
    if (clear)
        tls_last_error = cudaSuccess;
    return e;
}

/* ---- requests in flight (guarded by lock) ----
 * A batch of queued asynchronous calls that goes through the queue pair is
 * not waited for: it is a flight, settled when its reply comes, which is at
 * the latest when the next call that needs an answer waits for its own
 * (replies come in order).  Only queue-pair requests fly; a frame on the
 * frame path waits until nothing is in flight, so the server sees the
 * requests in the order they were made.
 */
#define FLIGHTS_MAX 8

struct flight_call {
    uint32_t call_id;
    const char *name;
    pthread_t thread;                /* whose last error a failure becomes */
    bool orphan;                     /* that thread has exited */
};

static struct flight {
    uint64_t seq;
    int n;
    struct flight_call *calls;
} flights[FLIGHTS_MAX];
static int flight_first, flight_n;

static void flights_clear(void)
{
    for (int i = 0; i < flight_n; i++)
        free(flights[(flight_first + i) % FLIGHTS_MAX].calls);
    flight_first = flight_n = 0;
}

static void drop_connection(const char *why)
{
    if (conn_state == 1)
        vgpu_shim_log(VGPU_LOG_ERROR, "lost the connection to vgpu-server at %s (%s); "
                      "CUDA calls now fail with cudaErrorNoDevice", server_addr, why);
    if (transport.ops)
        transport.ops->close(&transport);
    conn_state = -1;
    flights_clear();
}

/*
 * Sends one request: through the queue pair when it is up and the frame
 * and a reply of up to reply_hint bytes fit it, else on the frame path
 * (after whatever is in flight has landed), or, with qp_only, -EAGAIN
 * instead.  Sets *via_qp and *sent_seq.  Lock held.
 */
static int land_all(void);

static int send_request(Vgpu__Wire__Envelope *env, const struct iovec *payload, int npayload,
                        size_t reply_hint, bool qp_only, bool *via_qp, uint64_t *sent_seq)
{
    struct vgpu_frame_header h = { 0 };
    size_t len = 0;
    bool qp = false;
    int rc;

    /* through the queue pair, the envelope goes in its compact form */
    if (transport.qp_mem && transport.pass_fd < 0 &&
        vgpu_frame_head_size_flags(env, VGPU_FRAME_F_COMPACT, &len) == 0) {
        for (int i = 0; i < npayload; i++)
            len += payload[i].iov_len;
        qp = len <= vgpu_qring_max(&transport.qp.sub) &&
             reply_hint + 4096 <= vgpu_qring_max(&transport.qp.comp);
    }
    if (!qp && qp_only)
        return -EAGAIN;
    if (!qp && flight_n && land_all())
        return -ENOTCONN;
    h.seq = ++seq;
    h.flags = qp ? VGPU_FRAME_F_COMPACT : 0;
    *sent_seq = h.seq;
    *via_qp = qp;
    rc = qp ? vgpu_shim_qp_send(&transport, &h, env, payload, npayload, len)
            : transport.ops->send(&transport, &h, env, payload, npayload);
    if (rc && rc != -E2BIG)
        drop_connection(rc < -1000 ? vgpu_wire_strerror(rc) : strerror(-rc));
    return rc;
}

/*
 * The next reply (to the oldest request not answered yet), decoded into f.
 * -EMSGSIZE: the server could not send it (the connection is fine).
 */
static int take_reply(bool qp, uint8_t **buf, size_t *len, struct vgpu_frame *f)
{
    int rc = qp ? vgpu_shim_qp_recv(&transport, buf, len) : transport.ops->recv(&transport, buf, len);

    if (rc == -EMSGSIZE)
        return rc;
    if (rc == VGPU_WIRE_E_BAD_VERSION) {
        char why[160];

        snprintf(why, sizeof(why), "its frames carry another protocol version than this "
                 "shim's %u: rebuild the shim and server from the same vgpu release",
                 VGPU_PROTOCOL_VERSION);
        drop_connection(why);
        return rc;
    }
    if (rc) {
        drop_connection(rc < -1000 ? vgpu_wire_strerror(rc) : strerror(-rc));
        return rc;
    }
    /* the scratch the caller lent in f (if any) */
    rc = vgpu_frame_decode_scratch(*buf, *len, NULL, NULL, NULL, f->scratch, f->scratch_size, f);
    if (rc || !(f->hdr.flags & VGPU_FRAME_F_REPLY)) {
        drop_connection(rc ? vgpu_wire_strerror(rc) : "not a reply");
        vgpu_frame_release(f);
        free(*buf);
        *buf = NULL;
        return rc ? rc : -EPROTO;
    }
    return 0;
}

static void owe_error(pthread_t thread, int status);

/* The oldest flight's reply has come (f, or NULL: it could not): its failures are owed. */
static void flight_failed(const struct flight_call *c, int st)
{
    vgpu_shim_log(VGPU_LOG_DEBUG, "%s (queued) -> %d", c->name, st);
    if (!c->orphan)
        owe_error(c->thread, st);
}

static void settle_flight(const struct vgpu_frame *f)
{
    struct flight *fl = &flights[flight_first];
    const Vgpu__Wire__ResultBatch *rb = f && f->env->body_case == VGPU__WIRE__ENVELOPE__BODY_RESULTS ?
                                        f->env->results : NULL;
    bool ok = rb && rb->failures_only && rb->n_results <= (size_t)fl->n;

    /* the failures, each at its place in the batch, in order */
    for (size_t i = 0; ok && i < rb->n_results; i++)
        ok = rb->results[i]->index < (uint32_t)fl->n &&
             (i == 0 || rb->results[i]->index > rb->results[i - 1]->index) &&
             rb->results[i]->call_id == fl->calls[rb->results[i]->index].call_id &&
             rb->results[i]->status != cudaSuccess;
    if (!ok) {
        vgpu_shim_log(VGPU_LOG_ERROR, "a batch of asynchronous calls: the server's reply does "
                      "not answer it");
        for (int i = 0; i < fl->n; i++)
            flight_failed(&fl->calls[i], cudaErrorUnknown);
    } else {
        for (size_t i = 0; i < rb->n_results; i++)
            flight_failed(&fl->calls[rb->results[i]->index], rb->results[i]->status);
    }
    free(fl->calls);
    flight_first = (flight_first + 1) % FLIGHTS_MAX;
    flight_n--;
}

/* Waits for the oldest flight's reply and settles it.  0, or -errno (connection gone). */
static int land_one(void)
{
    static max_align_t scratch[16384 / sizeof(max_align_t)];   /* lock held */
    struct vgpu_frame f = { .scratch = scratch, .scratch_size = sizeof(scratch) };
    uint8_t *buf = NULL;
    size_t len;
    int rc = take_reply(true, &buf, &len, &f);

    if (rc == -EMSGSIZE) {
        settle_flight(NULL);
        return 0;
    }
    if (rc)
        return rc;
    if (f.hdr.seq != flights[flight_first].seq) {
        drop_connection("reply out of sequence");
        rc = -EPROTO;
    } else {
        settle_flight(&f);
    }
    vgpu_frame_release(&f);
    free(buf);
    return rc;
}

static int land_all(void)
{
    while (flight_n)
        if (land_one())
            return -1;
    return 0;
}

/* One request and its reply (flights before it land first).  Called with the lock held. */
static int roundtrip(Vgpu__Wire__Envelope *env, const struct iovec *payload, int npayload,
                     size_t reply_hint, uint8_t **buf, size_t *len, struct vgpu_frame *f)
{
    uint64_t mine;
    bool qp;
    int rc = send_request(env, payload, npayload, reply_hint, false, &qp, &mine);

    if (rc)
        return rc;
    while (qp && flight_n)
        if (land_one())
            return -ENOTCONN;
    rc = take_reply(qp, buf, len, f);
    if (rc)
        return rc;
    if (f->hdr.seq != mine) {
        drop_connection("reply out of sequence");
        vgpu_frame_release(f);
        free(*buf);
        *buf = NULL;
        return -EPROTO;
    }
    return 0;
}

int vgpu_shim_control_exchange_locked(Vgpu__Wire__Envelope *env, int fd, struct vgpu_frame *f,
                                      uint8_t **buf)
{
    size_t len;
    int rc;

    if (queue_n)
        flush_locked();         /* queued calls go first: they may use what this changes */
    if (conn_state != 1)
        return -ENOTCONN;
    transport.pass_fd = fd;
    rc = roundtrip(env, NULL, 0, 0, buf, &len, f);
    transport.pass_fd = -1;
    return rc;
}

static int handshake(void)
{
    Vgpu__Wire__Envelope env = VGPU__WIRE__ENVELOPE__INIT;
    Vgpu__Wire__Hello hello = VGPU__WIRE__HELLO__INIT;
    struct vgpu_frame f = { 0 };
    char host[256] = "", name[256] = "", why[512];
    uint8_t *buf = NULL;
    size_t len;
    int rc;

    gethostname(host, sizeof(host) - 1);
    snprintf(name, sizeof(name), "%s", program_invocation_short_name);
    vgpu_hello_init(&hello, VGPU_CUDART_CALL_TABLE_HASH, "cudart", name, (uint32_t)getpid(), host);
    env.body_case = VGPU__WIRE__ENVELOPE__BODY_HELLO;
    env.hello = &hello;
    rc = roundtrip(&env, NULL, 0, 4096, &buf, &len, &f);
    if (rc)
        return rc;
    if (f.env->body_case != VGPU__WIRE__ENVELOPE__BODY_HELLO_REPLY)
        rc = -EPROTO;
    else
        rc = vgpu_hello_reply_check(f.env->hello_reply, VGPU_CUDART_CALL_TABLE_HASH, why, sizeof(why));
    if (rc)
        vgpu_shim_log(VGPU_LOG_ERROR, "vgpu-server at %s refused this program: %s", server_addr,
                      rc == -EPROTO ? "it did not answer the handshake" : why);
    vgpu_frame_release(&f);
    free(buf);
    return rc;
}

static int fetch_error_table(void);

/*
 * At exit, end this client's session at once (the mmio link shares one
 * device).  A thread still inside a call keeps the lock: then the session
 * ends when the server sees the client gone, and exit does not wait.
 */
__attribute__((destructor)) static void vgpu_shim_fini(void)
{
    if (pthread_mutex_trylock(&lock))
        return;
    /* work the program queued still runs, as it would natively before exit */
    settle_locked();
    if (conn_state == 1 && transport.ops && vgpu_ctl_close() == 0)
        transport.ops->close(&transport);
    conn_state = -1;
    pthread_mutex_unlock(&lock);
}

/*
 * fork(): the child shares the parent's connection (socket or channel) but
 * not its session.  It starts over with no connection, and the parent's is
 * left alone; the lock is held across fork so it is consistent in both.
 */
static void atfork_prepare(void)
{
    pthread_mutex_lock(&lock);
    settle_locked();
}

static void atfork_parent(void)
{
    pthread_mutex_unlock(&lock);
}

static void atfork_child(void)
{
    if (transport.ops == &vgpu_transport_mmio)
        vgpu_mmio_forget();
    else if (transport.fd >= 0)
        close(transport.fd);
    if (transport.qp_mem && transport.ops != &vgpu_transport_mmio)
        munmap(transport.qp_mem, transport.qp_len);
    transport.qp_mem = NULL;
    flights_clear();            /* none: they landed before the fork */
    if (slot)
        munmap(slot, slot_size);    /* the parent's; the child takes a slot of its own */
    slot = NULL;
    slot_used = 0;
    transport.ops = NULL;
    transport.fd = -1;
    transport.pass_fd = -1;
    conn_state = 0;
    queue_n = 0;                /* flushed before the fork */
    flusher_started = false;    /* the flusher thread is not in the child */
    queue_cond_init();
    pthread_mutex_unlock(&lock);
}

/* The flusher's condition runs on CLOCK_MONOTONIC (made anew in a forked child). */
static void queue_cond_init(void)
{
    pthread_condattr_t ca;

    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&queue_cond, &ca);
    pthread_condattr_destroy(&ca);
}

__attribute__((constructor)) static void vgpu_shim_init(void)
{
    queue_cond_init();
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

/* Called with the lock held. */
static int ensure_connected(void)
{
    const char *addr;
    int rc;

    if (conn_state == 1)
        return 0;
    if (conn_state < 0)
        return -ENOTCONN;
    conn_state = -1;
    addr = getenv("VGPU_SERVER");
    /* In a VM with the device, the device is the way out unless told otherwise. */
    server_addr = addr && *addr ? addr : vgpu_mmio_present() ? "mmio" : DEFAULT_SERVER;
    if (!strcmp(server_addr, "mmio")) {
        transport.ops = &vgpu_transport_mmio;
        addr = server_addr;
    } else if (!strncmp(server_addr, "unix:", 5)) {
        transport.ops = &vgpu_transport_unix;
        addr = server_addr + 5;
    } else if (!strncmp(server_addr, "tcp:", 4)) {
        transport.ops = &vgpu_transport_tcp;
        addr = server_addr + 4;
    } else {
        vgpu_shim_log(VGPU_LOG_ERROR, "VGPU_SERVER=%s is not understood: use mmio, unix:PATH "
                      "or tcp:HOST:PORT", server_addr);
        transport.ops = NULL;
        return -EINVAL;
    }
    rc = transport.ops->connect(&transport, addr);
    if (rc && transport.ops == &vgpu_transport_mmio) {
        transport.ops = NULL;           /* the transport said what is wrong */
        return rc;
    }
    if (rc) {
        vgpu_shim_log(VGPU_LOG_ERROR, "cannot reach vgpu-server at %s (%s): start it with "
                      "'vgpu-server --listen %s', or set VGPU_SERVER to a running one; "
                      "CUDA calls fail with cudaErrorNoDevice", server_addr, strerror(-rc), server_addr);
        transport.ops = NULL;
        return rc;
    }
    conn_state = 1;
    rc = handshake();
    if (rc == 0)
        rc = fetch_error_table();
    if (rc) {
        drop_connection("handshake failed");
        return rc;
    }
    qp_setup_locked();
    vgpu_shim_log(VGPU_LOG_INFO, "connected to vgpu-server at %s%s", server_addr,
                  transport.qp_mem ? " (shared-memory queue pair)" : "");
    return 0;
}

/* A decoded reply and the buffer it points into: what vgpu_call_rep.priv holds. */
struct reply_buf {
    struct vgpu_frame f;
    uint8_t *buf;
    max_align_t scratch[1024 / sizeof(max_align_t)];   /* the reply's envelope, unpacked */
};

/* A reply_buf with nothing in it yet (not zeroed whole: its scratch is 1 KiB). */
static struct reply_buf *reply_buf_new(void)
{
    struct reply_buf *rb = malloc(sizeof(*rb));

    if (rb) {
        memset(&rb->f, 0, sizeof(rb->f));
        rb->buf = NULL;
        rb->f.scratch = rb->scratch;
        rb->f.scratch_size = sizeof(rb->scratch);
    }
    return rb;
}

static void queue_clear(void)
{
    for (int i = 0; i < queue_n; i++) {
        free(queue[i].args);
        for (int j = 0; j < queue[i].nseg; j++)
            free(queue[i].seg[j]);
    }
    queue_n = 0;
    queue_bytes = 0;
}

/*
 * A thread that queued calls exits: its pthread_t may be reused by a new
 * thread, which must not inherit errors owed to the old one.
 */
static pthread_key_t exit_key;
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;

static void thread_exits(void *unused)
{
    (void)unused;
    pthread_mutex_lock(&lock);
    for (int i = 0; i < queue_n; i++)
        if (pthread_equal(queue[i].thread, pthread_self()))
            queue[i].orphan = true;
    for (int i = 0; i < flight_n; i++) {
        struct flight *fl = &flights[(flight_first + i) % FLIGHTS_MAX];

        for (int j = 0; j < fl->n; j++)
            if (pthread_equal(fl->calls[j].thread, pthread_self()))
                fl->calls[j].orphan = true;
    }
    for (int i = 0; i < DEFERRED_MAX; i++)
        if (deferred[i].used && pthread_equal(deferred[i].thread, pthread_self())) {
            deferred[i].used = false;
            deferred_n--;
        }
    pthread_mutex_unlock(&lock);
}

static void exit_key_init(void)
{
    pthread_key_create(&exit_key, thread_exits);
}

/* A queued call failed: its status becomes its thread's last error. */
static void owe_error(pthread_t thread, int status)
{
    if (pthread_equal(thread, pthread_self())) {
        tls_last_error = status;
        return;
    }
    for (int i = 0; i < DEFERRED_MAX; i++)
        if (deferred[i].used && pthread_equal(deferred[i].thread, thread)) {
            deferred[i].status = status;
            return;
        }
    for (int i = 0; i < DEFERRED_MAX; i++)
        if (!deferred[i].used) {
            deferred[i].thread = thread;
            deferred[i].status = status;
            deferred[i].used = true;
            deferred_n++;
            return;
        }
    vgpu_shim_log(VGPU_LOG_WARN, "an asynchronous error (%d) of another thread could not be "
                  "kept for it", status);
}

/* This thread's errors owed by a flush another thread made.  Lock held. */
static void collect_deferred(void)
{
    for (int i = 0; deferred_n && i < DEFERRED_MAX; i++)
        if (deferred[i].used && pthread_equal(deferred[i].thread, pthread_self())) {
            tls_last_error = deferred[i].status;
            deferred[i].used = false;
            deferred_n--;
        }
}

/*
 * Sends the queued calls as a flight through the queue pair, without
 * waiting: 0, -EAGAIN when they cannot fly (no queue pair, too large: the
 * caller sends them the usual way), or -ENOTCONN.  Lock held.
 */
static int fly_locked(Vgpu__Wire__Envelope *env, const struct iovec *payload, int npayload)
{
    struct flight *fl;
    bool qp;
    int rc;

    if (!transport.qp_mem)
        return -EAGAIN;
    if (flight_n == FLIGHTS_MAX && land_one())
        return -ENOTCONN;
    fl = &flights[(flight_first + flight_n) % FLIGHTS_MAX];
    fl->calls = malloc((size_t)queue_n * sizeof(*fl->calls));
    if (!fl->calls)
        return -EAGAIN;
    env->calls->flight = true;
    /* only through the queue pair: send_request says -EAGAIN when it cannot go there */
    rc = send_request(env, payload, npayload, 0, true, &qp, &fl->seq);
    env->calls->flight = false;
    if (rc) {
        free(fl->calls);
        return rc == -E2BIG || rc == -EAGAIN ? -EAGAIN : -ENOTCONN;
    }
    fl->n = queue_n;
    for (int i = 0; i < queue_n; i++)
        fl->calls[i] = (struct flight_call){ queue[i].call_id, queue[i].name, queue[i].thread,
                                             queue[i].orphan };
    flight_n++;
    vgpu_shim_log(VGPU_LOG_DEBUG, "a batch of %d calls in flight (%d)", queue_n, flight_n);
    queue_clear();
    return 0;
}

/*
 * Sends the queued calls and then req (NULL: the queue alone) in one batch
 * and waits for the answer.  Returns req's status (cudaSuccess without req).
 * Called with the lock held and a connection up.
 */
static int invoke_locked(struct vgpu_call_req *req, struct vgpu_call_rep *rep)
{
    Vgpu__Wire__Envelope env = VGPU__WIRE__ENVELOPE__INIT;
    Vgpu__Wire__CallBatch batch = VGPU__WIRE__CALL_BATCH__INIT;
    int ncalls = queue_n + (req ? 1 : 0), nsegs = 0;
    /* a few calls (the common case) build their batch on the stack */
    enum { FEW = 4 };
    Vgpu__Wire__Call calls1[FEW], *callp1[FEW];
    Vgpu__Wire__Segment segs1[FEW * VGPU_CALL_MAX_SEG], *segp1[FEW * VGPU_CALL_MAX_SEG];
    struct iovec iov1[FEW * VGPU_CALL_MAX_SEG];
    bool heap = ncalls > FEW, retry_alone = false;
    Vgpu__Wire__Call *calls = heap ? calloc((size_t)ncalls, sizeof(*calls)) : calls1;
    Vgpu__Wire__Call **callp = heap ? calloc((size_t)ncalls, sizeof(*callp)) : callp1;
    Vgpu__Wire__Segment *segs = heap ? calloc((size_t)ncalls * VGPU_CALL_MAX_SEG, sizeof(*segs)) : segs1;
    Vgpu__Wire__Segment **segp = heap ? calloc((size_t)ncalls * VGPU_CALL_MAX_SEG, sizeof(*segp)) : segp1;
    struct iovec *iov = heap ? calloc((size_t)ncalls * VGPU_CALL_MAX_SEG, sizeof(*iov)) : iov1;
    struct reply_buf *rb = reply_buf_new();
    struct vgpu_frame *f = rb ? &rb->f : NULL;
    const Vgpu__Wire__Result *res;
    const char *name = req ? req->name : "a batch of asynchronous calls";
    uint64_t off = 0;
    uint8_t *buf = NULL;
    size_t len, reply_hint = 256;
    int rc, st = cudaSuccess;

    if (!calls || !callp || !segs || !segp || !iov || !rb) {
        st = cudaErrorMemoryAllocation;
        goto out;
    }
    for (int i = 0; i < ncalls; i++) {
        bool mine = req && i == queue_n;
        int n = mine ? req->nseg : queue[i].nseg;

        vgpu__wire__call__init(&calls[i]);
        calls[i].call_id = mine ? req->call_id : queue[i].call_id;
        calls[i].args.data = (uint8_t *)(mine ? req->args : queue[i].args);
        calls[i].args.len = mine ? req->args_len : queue[i].args_len;
        calls[i].segments = &segp[nsegs];
        calls[i].n_segments = (size_t)n;
        for (int j = 0; j < n; j++) {
            size_t l = mine ? req->seg[j].len : queue[i].seg_len[j];

            vgpu__wire__segment__init(&segs[nsegs]);
            segs[nsegs].offset = off;
            segs[nsegs].length = l;
            segp[nsegs] = &segs[nsegs];
            iov[nsegs].iov_base = mine ? (void *)req->seg[j].data : queue[i].seg[j];
            iov[nsegs].iov_len = l;
            off += l;
            nsegs++;
        }
        callp[i] = &calls[i];
    }
    batch.n_calls = (size_t)ncalls;
    batch.calls = callp;
    batch.device = queue_n ? queue_device : tls_device;
    env.body_case = VGPU__WIRE__ENVELOPE__BODY_CALLS;
    env.calls = &batch;
    if (!req) {
        /* queued calls alone: through the queue pair they fly, and land later */
        rc = fly_locked(&env, iov, nsegs);
        if (rc == 0)
            goto out;
        if (rc != -EAGAIN) {
            queue_clear();
            st = cudaErrorNoDevice;
            goto out;
        }
    }
    for (int i = 0; req && i < req->nout; i++)
        reply_hint += req->out[i].len;
    rc = roundtrip(&env, iov, nsegs, reply_hint, &buf, &len, f);
    if (rc == -EMSGSIZE) {
        vgpu_shim_log(VGPU_LOG_ERROR, "%s: the server's reply was too large for the shared "
                      "BAR's ring and had no other way back", name);
        queue_clear();
        st = cudaErrorUnknown;
        goto out;
    }
    if (rc == -E2BIG && req && queue_n) {
        /* together too big for the link: the queue alone first, then the call alone */
        retry_alone = true;
        goto out;
    }
    if (rc) {
        queue_clear();
        free(rb);
        rb = NULL;
        if (rc == -E2BIG) {
            vgpu_shim_log(VGPU_LOG_ERROR, "%s: the call is too large for the link to vgpu-server",
                          name);
            st = cudaErrorInvalidValue;
        } else {
            st = cudaErrorNoDevice;
        }
        goto out;
    }
    if (f->env->body_case != VGPU__WIRE__ENVELOPE__BODY_RESULTS ||
        f->env->results->n_results != (size_t)ncalls) {
        vgpu_shim_log(VGPU_LOG_ERROR, "%s: the server's reply does not answer it", name);
        queue_clear();
        st = cudaErrorUnknown;
        goto fail;
    }
    for (int i = 0; i < queue_n; i++) {
        res = f->env->results->results[i];
        if (res->call_id != queue[i].call_id)
            res = NULL;
        if (!res || res->status != cudaSuccess) {
            vgpu_shim_log(VGPU_LOG_DEBUG, "%s (queued) -> %d", queue[i].name,
                          res ? res->status : cudaErrorUnknown);
            if (!queue[i].orphan)
                owe_error(queue[i].thread, res ? res->status : cudaErrorUnknown);
        }
    }
    queue_clear();
    if (!req)
        goto fail;              /* nothing to hand back: release the reply */
    res = f->env->results->results[ncalls - 1];
    if (res->call_id != req->call_id) {
        vgpu_shim_log(VGPU_LOG_ERROR, "%s: the server's reply does not answer it", name);
        st = cudaErrorUnknown;
        goto fail;
    }
    st = res->status;
    if (st == cudaSuccess) {
        if (res->n_segments != (size_t)req->nout) {
            vgpu_shim_log(VGPU_LOG_ERROR, "%s: the server returned %zu data segments, expected %d",
                          name, res->n_segments, req->nout);
            st = cudaErrorUnknown;
            goto fail;
        }
        for (int i = 0; i < req->nout; i++) {
            if (res->segments[i]->length != req->out[i].len) {
                vgpu_shim_log(VGPU_LOG_ERROR, "%s: the server returned %llu bytes, expected %zu",
                              name, (unsigned long long)res->segments[i]->length, req->out[i].len);
                st = cudaErrorUnknown;
                goto fail;
            }
            if (req->out[i].len)
                memcpy(req->out[i].dst, vgpu_frame_segment(f, res->segments[i]), req->out[i].len);
        }
    }
    rep->ret = res->ret.data;
    rep->ret_len = res->ret.len;
    /* keep frame and buffer: rep->ret points into them */
    rb->buf = buf;
    rep->priv = rb;
    rb = NULL;
    goto out;
fail:
    vgpu_frame_release(f);
    free(buf);
out:
    free(rb);
    if (heap) {
        free(calls);
        free(callp);
        free(segs);
        free(segp);
        free(iov);
    }
    if (retry_alone) {
        invoke_locked(NULL, NULL);
        return conn_state == 1 ? invoke_locked(req, rep) : cudaErrorNoDevice;
    }
    return st;
}

/* Sends whatever is queued (it may still be in flight after).  Lock held. */
static void flush_locked(void)
{
    if (queue_n && conn_state == 1)
        invoke_locked(NULL, NULL);
}

/* Sends whatever is queued and waits until every reply is in.  Lock held. */
static void settle_locked(void)
{
    flush_locked();
    if (conn_state == 1)
        land_all();
}

static void flush_queue_public(void)
{
    pthread_mutex_lock(&lock);
    settle_locked();
    collect_deferred();
    pthread_mutex_unlock(&lock);
}

/* Sends queued calls that waited batch_ns, so a program that stops calling still runs them. */
static void *flusher(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&lock);
    for (;;) {
        uint64_t due;
        struct timespec ts;

        while (!queue_n)
            pthread_cond_wait(&queue_cond, &lock);
        if (conn_state != 1) {
            /* nowhere to send them: the program's next call reports the lost connection */
            queue_clear();
            continue;
        }
        due = queue_since_ns + batch_ns;
        if (vgpu_mono_ns() >= due) {
            flush_locked();
            continue;
        }
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec = (time_t)(due / 1000000000u);
        ts.tv_nsec = (long)(due % 1000000000u);
        pthread_cond_timedwait(&queue_cond, &lock, &ts);
    }
    return NULL;
}

static void start_flusher(void)
{
    pthread_attr_t a;
    pthread_t t;
    const char *v = getenv("VGPU_BATCH_US");
    sigset_t all, old;

    if (v && *v)
        batch_ns = strtoull(v, NULL, 10) * 1000;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    /* the program's signals are not ours to take */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    if (pthread_create(&t, &a, flusher, NULL) == 0)
        flusher_started = true;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&a);
}

/*
 * Queues an async call (copies of its arguments and data).  Returns 0, or
 * -1 when it must be sent now instead.  Lock held, connection up.
 */
static int enqueue_locked(const struct vgpu_call_req *req)
{
    size_t bytes = req->args_len;
    struct queued *q;

    for (int i = 0; i < req->nseg; i++)
        bytes += req->seg[i].len;
    if (bytes > QUEUE_MAX_SEG_BYTES || batch_ns == 0)
        return -1;
    if (queue_n && (queue_n == QUEUE_MAX_CALLS || queue_bytes + bytes > QUEUE_MAX_BYTES ||
                    queue_device != tls_device))
        flush_locked();
    if (conn_state != 1)
        return -1;              /* the flush lost the connection: the call fails now */
    if (!flusher_started)
        start_flusher();
    if (!flusher_started)
        return -1;
    q = &queue[queue_n];
    memset(q, 0, sizeof(*q));
    q->args = malloc(req->args_len ? req->args_len : 1);
    if (!q->args)
        return -1;
    memcpy(q->args, req->args, req->args_len);
    for (int i = 0; i < req->nseg; i++) {
        q->seg[i] = malloc(req->seg[i].len ? req->seg[i].len : 1);
        if (!q->seg[i]) {
            for (int j = 0; j < i; j++)
                free(q->seg[j]);
            free(q->args);
            return -1;
        }
        memcpy(q->seg[i], req->seg[i].data, req->seg[i].len);
        q->seg_len[i] = req->seg[i].len;
    }
    q->nseg = req->nseg;
    q->call_id = req->call_id;
    q->name = req->name;
    q->args_len = req->args_len;
    q->thread = pthread_self();
    /* the thread's exit is noticed (thread_exits) once it has queued something */
    pthread_once(&exit_once, exit_key_init);
    if (!pthread_getspecific(exit_key))
        pthread_setspecific(exit_key, (void *)1);
    if (!queue_n) {
        queue_device = tls_device;
        queue_since_ns = vgpu_mono_ns();
        pthread_cond_signal(&queue_cond);
    }
    queue_n++;
    queue_bytes += bytes;
    /*
     * Through the queue pair, a server that has taken everything sent so
     * far gets the queue as soon as it is worth a frame, not when it is
     * full: it works on one batch while the program queues the next.
     */
    if (queue_n >= QUEUE_EAGER_CALLS && transport.qp_mem &&
        __atomic_load_n(transport.qp.sub.head, __ATOMIC_ACQUIRE) == transport.qp.sub.pos)
        flush_locked();
    return 0;
}

/*
 * Answers of calls the spec marks cached (pure queries of fixed facts), by
 * call id, the thread's device and the packed arguments.  Only successes are
 * kept; the lock guards it.
 */
struct cache_entry {
    uint32_t id;
    int device;
    uint8_t *args, *ret;
    size_t args_len, ret_len;
    struct cache_entry *next;
};

static struct cache_entry *cache;

static struct cache_entry *cache_find(const struct vgpu_call_req *req)
{
    for (struct cache_entry *c = cache; c; c = c->next)
        if (c->id == req->call_id && c->device == tls_device && c->args_len == req->args_len &&
            !memcmp(c->args, req->args, req->args_len))
            return c;
    return NULL;
}

static int cache_answer(const struct cache_entry *c, struct vgpu_call_rep *rep)
{
    struct reply_buf *rb = reply_buf_new();

    if (!rb || !(rb->buf = malloc(c->ret_len ? c->ret_len : 1))) {
        free(rb);
        return -1;
    }
    memcpy(rb->buf, c->ret, c->ret_len);
    rep->ret = rb->buf;
    rep->ret_len = c->ret_len;
    rep->priv = rb;
    return 0;
}

static void cache_add(const struct vgpu_call_req *req, const struct vgpu_call_rep *rep)
{
    struct cache_entry *c = calloc(1, sizeof(*c));

    if (!c)
        return;
    c->args = malloc(req->args_len ? req->args_len : 1);
    c->ret = malloc(rep->ret_len ? rep->ret_len : 1);
    if (!c->args || !c->ret) {
        free(c->args);
        free(c->ret);
        free(c);
        return;
    }
    c->id = req->call_id;
    c->device = tls_device;
    memcpy(c->args, req->args, req->args_len);
    memcpy(c->ret, rep->ret, rep->ret_len);
    c->args_len = req->args_len;
    c->ret_len = rep->ret_len;
    c->next = cache;
    cache = c;
}

int vgpu_shim_invoke(struct vgpu_call_req *req, struct vgpu_call_rep *rep)
{
    bool cacheable = (req->flags & VGPU_FN_CACHED) && req->nout == 0 && req->nseg == 0;
    const struct cache_entry *hit;
    int st;

    rep->ret = NULL;
    rep->ret_len = 0;
    rep->priv = NULL;
    pthread_mutex_lock(&lock);
    if (cacheable && (hit = cache_find(req)) && cache_answer(hit, rep) == 0) {
        pthread_mutex_unlock(&lock);
        vgpu_shim_log(VGPU_LOG_DEBUG, "%s -> 0 (cached)", req->name);
        return cudaSuccess;
    }
    if (ensure_connected()) {
        st = cudaErrorNoDevice;
    } else if ((req->flags & VGPU_FN_ASYNC) && req->nout == 0 && enqueue_locked(req) == 0) {
        pthread_mutex_unlock(&lock);
        vgpu_shim_log(VGPU_LOG_DEBUG, "%s queued", req->name);
        return cudaSuccess;
    } else {
        /* a batch runs on one device: queued calls of another go first, alone */
        if (queue_n && queue_device != tls_device)
            flush_locked();
        st = conn_state == 1 ? invoke_locked(req, rep) : cudaErrorNoDevice;
    }
    collect_deferred();
    if (cacheable && st == cudaSuccess)
        cache_add(req, rep);
    pthread_mutex_unlock(&lock);
    vgpu_shim_log(VGPU_LOG_DEBUG, "%s -> %d", req->name, st);
    return vgpu_shim_status(st);
}

void vgpu_shim_rep_release(struct vgpu_call_rep *rep)
{
    struct reply_buf *rb = rep->priv;

    if (rb) {
        vgpu_frame_release(&rb->f);
        free(rb->buf);
        free(rb);
    }
    rep->priv = NULL;
    rep->ret = NULL;
    rep->ret_len = 0;
}

int vgpu_shim_call(uint32_t id, const char *name, const ProtobufCMessage *msg,
                   struct vgpu_call_req *req, struct vgpu_call_rep *rep)
{
    struct vgpu_arena ar = { 0 };
    int st;

    req->call_id = id;
    req->name = name;
    if (vgpu_call_pack(&ar, msg, &req->args, &req->args_len))
        return vgpu_shim_status(cudaErrorMemoryAllocation);
    st = vgpu_shim_invoke(req, rep);
    vgpu_arena_free(&ar);
    req->args = NULL;
    return st;
}

int vgpu_shim_unsupported(uint32_t call_id, const char *name, const char *reason)
{
    static uint8_t said[VGPU_CUDART_MAX_ID + 1];

    if (call_id <= VGPU_CUDART_MAX_ID && !__atomic_exchange_n(&said[call_id], 1, __ATOMIC_RELAXED))
        vgpu_shim_log(VGPU_LOG_ERROR, "%s is not supported by vgpu yet (%s); it returns "
                      "cudaErrorNotSupported", name, reason);
    return vgpu_shim_status(cudaErrorNotSupported);
}

int vgpu_shim_bad_reply(const struct vgpu_call_req *req)
{
    vgpu_shim_log(VGPU_LOG_ERROR, "%s: the server's reply did not decode", req->name);
    return vgpu_shim_status(cudaErrorUnknown);
}

int vgpu_shim_local_error(const struct vgpu_call_req *req, int neg_errno)
{
    vgpu_shim_log(VGPU_LOG_INFO, "%s: %s", req->name, strerror(-neg_errno));
    return vgpu_shim_status(neg_errno == -ENOMEM ? cudaErrorMemoryAllocation : cudaErrorInvalidValue);
}

/* Called with the lock held, right after the handshake. */
static int fetch_error_table(void)
{
    struct vgpu_ctl_error_table t;
    int rc = vgpu_ctl_error_table(&t);

    if (rc)
        return conn_state == 1 ? 0 : -ENOTCONN;
    table_code = t.code;
    table_name = t.name;
    table_text = t.text;
    table_n = t.n;
    init_status = t.init_status;
    return 0;
}

bool vgpu_shim_can_share(void)
{
    bool yes;
    const char *v = getenv("VGPU_SHM");

    if (v && !strcmp(v, "0"))
        return false;
    pthread_mutex_lock(&lock);
    yes = ensure_connected() == 0 && transport.ops == &vgpu_transport_unix;
    pthread_mutex_unlock(&lock);
    return yes;
}

/* Registers (unregister: drops) a memfd host region, passing fd: 0 or -errno. */
static int region_call(uint32_t id, uint64_t size, bool unregister, int fd)
{
    int rc = -ENOTCONN;

    pthread_mutex_lock(&lock);
    if (ensure_connected() == 0 && transport.ops == &vgpu_transport_unix)
        rc = unregister ? vgpu_ctl_region_unregister(id) : vgpu_ctl_region_register(id, size, fd);
    pthread_mutex_unlock(&lock);
    return rc;
}

/* A sealed memfd of size bytes mapped here, or NULL; *fd stays open for passing. */
static void *memfd_map(size_t size, int *fd)
{
    void *p = MAP_FAILED;

    *fd = memfd_create("vgpu-region", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (*fd < 0)
        return NULL;
    /* sealed against shrinking: the server's mapping can never fault */
    if (ftruncate(*fd, (off_t)size) == 0 && fcntl(*fd, F_ADD_SEALS, F_SEAL_SHRINK) == 0)
        p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
    if (p == MAP_FAILED) {
        close(*fd);
        *fd = -1;
        return NULL;
    }
    return p;
}

/*
 * The queue pair (include/vgpu/qp.h), offered to the server right after
 * the handshake; a server that says no leaves the frame path as the only
 * carrier.  Host-direct it is a memfd of its own; in a guest, the head of
 * this process's slot of the shared BAR (the rest of the slot is the
 * staging region), when the device has doorbells for the server.
 * VGPU_SHM=0 turns it off.  Lock held.
 */
#define HOST_RING (1u << 20)
#define GUEST_RING (512u << 10)
#define SLOT_QP_SPAN ((size_t)2 << 20)       /* the queue pair's part of a BAR slot */


static void qp_setup_locked(void)
{
    const char *v = getenv("VGPU_SHM");
    uint64_t n;
    void *p = NULL;
    int fd = -1, rc;

    if (v && !strcmp(v, "0"))
        return;
    if (transport.ops == &vgpu_transport_unix) {
        n = vgpu_qp_bytes(HOST_RING, HOST_RING);
        p = memfd_map(n, &fd);
        if (!p || vgpu_qp_create(&transport.qp, p, n, HOST_RING, HOST_RING)) {
            if (p)
                munmap(p, n);
            if (fd >= 0)
                close(fd);
            return;
        }
        rc = vgpu_ctl_attach_qp(n, false, 0, fd);
        close(fd);
        if (rc) {
            munmap(p, n);
            return;
        }
    } else if (transport.ops == &vgpu_transport_mmio && vgpu_mmio_doorbells()) {
        n = vgpu_qp_bytes(GUEST_RING, GUEST_RING);
        if (!slot)
            slot = vgpu_mmio_shared_slot(&slot_size, &slot_off);
        if (!slot || slot_size < 2 * SLOT_QP_SPAN ||
            vgpu_qp_create(&transport.qp, slot, n, GUEST_RING, GUEST_RING))
            return;
        if (vgpu_ctl_attach_qp(n, true, slot_off, -1))
            return;
        p = slot;
        slot_used = SLOT_QP_SPAN;
    } else {
        return;
    }
    /* a server that took the memory as a queue pair says so in its header */
    if (!(__atomic_load_n(&transport.qp.hdr->server_state, __ATOMIC_ACQUIRE) >> 32)) {
        vgpu_shim_log(VGPU_LOG_INFO, "vgpu-server did not take the queue pair; frames use the %s",
                      transport.ops == &vgpu_transport_mmio ? "1 KB window" : "socket");
        if (transport.ops == &vgpu_transport_unix)
            munmap(p, n);
        else
            slot_used = 0;
        return;
    }
    transport.qp_mem = p;
    transport.qp_len = n;
}

void *vgpu_shim_region_new(uint32_t id, size_t size)
{
    int fd, rc;
    void *p = memfd_map(size, &fd);

    if (!p)
        return NULL;
    rc = region_call(id, size, false, fd);
    close(fd);
    if (rc) {
        vgpu_shim_log(VGPU_LOG_INFO, "the server did not take a shared region of %zu bytes (%s); "
                      "copies carry their bytes instead", size, strerror(-rc));
        munmap(p, size);
        return NULL;
    }
    return p;
}

void *vgpu_shim_bar_region(uint32_t id, size_t *size)
{
    const char *v = getenv("VGPU_SHM");
    uint8_t *p = NULL;

    if (v && !strcmp(v, "0"))
        return NULL;
    pthread_mutex_lock(&lock);
    if (ensure_connected() == 0 && transport.ops == &vgpu_transport_mmio && !slot)
        slot = vgpu_mmio_shared_slot(&slot_size, &slot_off);
    if (slot && slot_size > slot_used) {
        p = slot + slot_used;
        *size = slot_size - slot_used;
        if (vgpu_ctl_region_register_bar(id, slot_off + slot_used, *size)) {
            vgpu_shim_log(VGPU_LOG_INFO, "the server did not take the shared BAR's slot at %#llx; "
                          "copies use the 1 KB window", (unsigned long long)(slot_off + slot_used));
            p = NULL;
        } else {
            slot_used = slot_size;
        }
    }
    pthread_mutex_unlock(&lock);
    if (p)
        vgpu_shim_log(VGPU_LOG_INFO, "staging through the shared BAR, %zu KiB at %#llx",
                      *size >> 10, (unsigned long long)(slot_off + slot_size - *size));
    return p;
}

void vgpu_shim_region_free(uint32_t id, void *base, size_t size)
{
    region_call(id, 0, true, -1);
    munmap(base, size);
}

void vgpu_shim_connect(void)
{
    pthread_mutex_lock(&lock);
    ensure_connected();
    pthread_mutex_unlock(&lock);
}

/* which: 0 for names, 1 for texts (the table exists only after connecting) */
static const char *lookup(int code, int which, const char *fallback)
{
    char **col;

    vgpu_shim_connect();
    col = which ? table_text : table_name;
    for (int i = 0; i < table_n; i++)
        if (table_code[i] == code && col[i])
            return col[i];
    for (int i = 0; i < table_n; i++)
        if (table_code[i] == -1 && col[i])
            return col[i];
    return fallback;
}

const char *vgpu_shim_error_name(int code)
{
    if (code == cudaErrorNoDevice && !table_n)
        return "cudaErrorNoDevice";
    return lookup(code, 0, "vgpu: unknown error (no vgpu-server to name it)");
}

const char *vgpu_shim_error_text(int code)
{
    if (code == cudaErrorNoDevice && !table_n)
        return "no CUDA-capable device is detected (vgpu-server unreachable)";
    return lookup(code, 1, "unknown error (vgpu-server unreachable)");
}
