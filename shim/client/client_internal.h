/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The client library's internals: struct vgpu_client and its parts, one per
 * file of shim/client/, and the functions the files call across.  Every
 * function here whose name ends in _locked, and every field below the lock,
 * is used with c->lock held; the per-thread state (errors.c) is the calling
 * thread's.  A unit test may build a struct vgpu_client of its own with
 * vgpu_client_init() and reach any part.
 */
#ifndef VGPU_CLIENT_INTERNAL_H
#define VGPU_CLIENT_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client.h"
#include "managed.h"
#include "transport.h"

/*
 * How another copy of this library reaches a client: the functions of
 * client.h, as the copy that made the client implements them.  Only ever
 * appended to; abi says which version of it a client has.
 */
#define VGPU_CLIENT_ABI 1

struct vgpu_client_ops {
    uint32_t abi;
    uint32_t size;              /* sizeof(struct vgpu_client_ops) */
    int (*invoke)(struct vgpu_client *c, struct vgpu_call_req *req, struct vgpu_call_rep *rep);
    void (*rep_release)(struct vgpu_client *c, struct vgpu_call_rep *rep);
    int (*connect)(struct vgpu_client *c);
    void (*settle)(struct vgpu_client *c);
    int (*device)(struct vgpu_client *c);
    void (*set_device)(struct vgpu_client *c, int device);
    int (*last_error)(struct vgpu_client *c, bool clear);
    void (*set_error)(struct vgpu_client *c, int st);
    int (*init_status)(struct vgpu_client *c);
    const char *(*error_string)(struct vgpu_client *c, int code, bool text, bool connect);
    bool (*can_share)(struct vgpu_client *c);
    void *(*region_new)(struct vgpu_client *c, uint32_t id, size_t size);
    void *(*bar_region)(struct vgpu_client *c, uint32_t id, size_t *size);
    void (*region_free)(struct vgpu_client *c, uint32_t id, void *base, size_t size);
    /* appended with the driver API: a client whose ops are smaller has no contexts */
    uint64_t (*context)(struct vgpu_client *c);
    void (*set_context)(struct vgpu_client *c, uint64_t ctx);
    /* appended with mapped memory: a client whose ops are smaller maps none */
    void *(*region_new_mapped)(struct vgpu_client *c, uint32_t id, size_t size, uint64_t *devptr);
    /* appended with host callbacks: a client whose ops are smaller has none */
    int (*callback_add)(struct vgpu_client *c, const struct vgpu_callback *cb, uint64_t *id);
    void (*callback_cancel)(struct vgpu_client *c, uint64_t id);
    /* appended with managed memory: a client whose ops are smaller calls no hook */
    void (*set_before_work)(struct vgpu_client *c, void (*fn)(void));
    /* appended with host nodes: a client whose ops are smaller keeps no callback */
    int (*callback_keep)(struct vgpu_client *c, uint64_t id, int how, struct vgpu_callback *out);
    /* appended with the copies behind callbacks: a client whose ops are smaller says none */
    bool (*callbacks_due)(struct vgpu_client *c);
    /* appended with driver log callbacks: a client whose ops are smaller fetches no messages */
    void (*set_log_sink)(struct vgpu_client *c, vgpu_log_sink fn);
    /* appended with managed memory in the client (managed.h): a client whose ops are smaller keeps none */
    int (*managed_add)(struct vgpu_client *c, void *p, size_t size, vgpu_managed_move move);
    bool (*managed_remove)(struct vgpu_client *c, void *p, size_t *size);
    void (*managed_device_side)(struct vgpu_client *c, const void *p, size_t n, bool write);
    bool (*managed_holds)(struct vgpu_client *c, const void *p, size_t n);
    int (*managed_advise)(struct vgpu_client *c, const void *p, size_t n, int advice,
                          struct vgpu_mem_loc loc);
    int (*managed_prefetched)(struct vgpu_client *c, const void *p, size_t n,
                              struct vgpu_mem_loc loc);
    int (*managed_range_attrs)(struct vgpu_client *c, void **data, const size_t *sizes,
                               const int *attrs, size_t n, const void *p, size_t count);
    /* appended with owed errors kept apart: a client whose ops are smaller has the last error */
    int (*take_owed)(struct vgpu_client *c);
    /* appended with driver log callbacks' delivery points: a client whose ops are smaller has none */
    void (*quiet)(struct vgpu_client *c, int delta);
    /* appended with vgpu-smi's server line: a client whose ops are smaller does not say */
    int (*server_version)(struct vgpu_client *c, char *buf, size_t len);
};

/* ---- the connection (conn.c) ---- */
enum vgpu_conn_state { VGPU_CONN_UNTRIED = 0, VGPU_CONN_UP = 1, VGPU_CONN_FAILED = -1 };

struct vgpu_agreement;

struct vgpu_conn {
    struct vgpu_transport transport;
    int state;                          /* enum vgpu_conn_state; FAILED is for good */
    uint64_t seq;                       /* of the last request sent */
    const char *server_addr;            /* from VGPU_SERVER (the environment's) or a default */
    char server_version[64];            /* what its HelloReply said, for the log */
    /* the calls the server serves, when its call tables are another release's (NULL: all) */
    struct vgpu_agreement *agree;
};

/* ---- the queue of asynchronous calls (queue.c) ---- */
#define VGPU_QUEUE_MAX_CALLS 256
#define VGPU_QUEUE_EAGER_CALLS 1            /* sent at once when the server is idle (docs/shim.md) */
#define VGPU_QUEUE_MAX_BYTES (1u << 20)     /* arguments and data held */
#define VGPU_QUEUE_MAX_SEG_BYTES (64u << 10) /* a call with more data is sent at once */

struct vgpu_queued {
    uint32_t call_id;
    const char *name;
    uint8_t *args;                      /* owned copy */
    size_t args_len;
    int nseg;
    uint8_t *seg[VGPU_CALL_MAX_SEG];    /* owned copies */
    size_t seg_len[VGPU_CALL_MAX_SEG];
    pthread_t thread;                   /* whose last error a failure becomes */
    bool orphan;                        /* that thread has exited: a failure goes nowhere */
};

struct vgpu_queue {
    struct vgpu_queued calls[VGPU_QUEUE_MAX_CALLS];
    int n, device;                      /* the batch runs on one device */
    uint64_t context;                   /* ... and in one driver context (0: the device's primary) */
    size_t bytes;
    uint64_t since_ns;                  /* when the oldest entered (the flusher reads it too) */
    /*
     * The flusher reads these without the lock: waiting_since is since_ns
     * while calls wait (0: none); flusher_idle is 1 while it sleeps until
     * woken (the futex word).
     */
    uint64_t waiting_since;
    uint32_t flusher_idle;
    bool flusher_started;
    uint64_t batch_ns;                  /* VGPU_BATCH_US */
    int eager_calls;                    /* VGPU_EAGER_CALLS: sent at this many when the server is idle */
};

/* ---- batches in flight through the queue pair (flight.c) ---- */
#define VGPU_FLIGHTS_MAX 8

struct vgpu_flight_call {
    uint32_t call_id;
    const char *name;
    pthread_t thread;                   /* whose last error a failure becomes */
    bool orphan;                        /* that thread has exited */
};

struct vgpu_flight {
    uint64_t seq;
    int n;
    struct vgpu_flight_call *calls;     /* owned */
};

struct vgpu_flights {
    struct vgpu_flight ring[VGPU_FLIGHTS_MAX];
    int first, n;
    max_align_t scratch[16384 / sizeof(max_align_t)];   /* a flight's reply, unpacked */
};

/* ---- failures owed to threads, and the server's error table (errors.c) ---- */
#define VGPU_OWED_MAX 64

struct vgpu_owed {
    struct { pthread_t thread; int status; bool used; } slot[VGPU_OWED_MAX];
    int n;                              /* slots in use */
    pthread_key_t exit_key;             /* notices a thread that queued calls exit (errors.c) */
};

struct vgpu_errtab {
    int init_status;                    /* the server's runtime's start status */
    int n;
    int *code;                          /* owned, n each */
    char **name, **text;
};

/* ---- shared memory (regions.c) ---- */
struct vgpu_slot {
    uint8_t *base;                      /* this guest process's slot of the shared BAR, or NULL */
    size_t size, used;
    uint64_t off;                       /* its offset in the BAR */
};

/*
 * A run of slots of the shared BAR this guest process claimed for mapped
 * host memory (regions.c): allocations take whole pages of it, each its
 * own region; the run goes back when its last page is freed.
 */
struct vgpu_bar_run {
    struct vgpu_bar_run *next;
    uint8_t *base;                      /* mapped here */
    uint64_t off;                       /* in the BAR */
    size_t nslots, pages, nused;
    uint8_t *used;                      /* per page: 1 when allocated */
};

/* ---- host callbacks (callbacks.c) ---- */
struct vgpu_cb_entry {
    uint64_t id;
    struct vgpu_callback cb;
    int how;                            /* VGPU_CB_KEEP: a host node's, runs at every launch, stays;
                                           VGPU_CB_LATER: once, whenever (a user object's) */
    bool ran;                           /* a kept one ran at least once */
};

struct vgpu_callbacks {                 /* under its own lock, taken after the client's */
    pthread_mutex_t lock;
    pthread_cond_t cond;                /* the thread's: an entry came, or stop */
    struct vgpu_cb_entry *e;            /* registered, not yet run; owned */
    int n, cap;
    int kept;                           /* of the n, those not due soon (KEEP or LATER) */
    int in_run;                         /* taken by the thread, not yet returned */
    uint64_t next_id;
    struct vgpu_qp_hdr *hdr;            /* the queue pair's header page, once the thread runs */
    uint32_t handled;                   /* the cb_due value last answered */
    bool futex;                         /* host-direct: the server wakes the thread on cb_due */
    bool running, stop, told_no_qp;
};

/* ---- answers of cached calls (cache.c) ---- */
struct vgpu_cache_entry;
#define VGPU_CACHE_BUCKETS 256          /* a training step asks hundreds of cached facts */

struct vgpu_client {
    const struct vgpu_client_ops *ops;  /* first: the one field another copy reads */
    pthread_mutex_t lock;
    struct vgpu_conn conn;
    struct vgpu_queue queue;
    struct vgpu_flights flights;
    struct vgpu_owed owed;
    struct vgpu_errtab errtab;
    struct vgpu_slot slot;
    struct vgpu_bar_run *bar_runs;      /* slots of the shared BAR holding mapped host memory */
    struct vgpu_cache_entry *cache[VGPU_CACHE_BUCKETS];
    uint64_t sent;                      /* calls sent or queued for the server (instance.c) */
    /* the stream the last of them waited for on the server, done (VGPU_REQ_DRAINS) */
    struct {
        bool valid;
        uint64_t sent, stream, context;
        int device;
    } drained;
    struct vgpu_callbacks callbacks;
    bool devout_pending;                /* a reply said the session holds what kernels printed */
    /* called before a call flagged VGPU_FN_WORK, from whichever library (managed.c's) */
    void (*before_work)(void);
    /* the driver's log messages fetched and not yet handed to log_sink (control.c, instance.c) */
    vgpu_log_sink log_sink;
    struct vgpu_drvlog *logs, **logs_tail;
    int nlogs;
};

/* One message of the server driver's log, waiting for the program's thread. */
struct vgpu_drvlog {
    struct vgpu_drvlog *next;
    int level;
    size_t len;
    char text[];                        /* NUL-terminated */
};

/* A decoded reply and the buffer it points into: what vgpu_call_rep.priv holds. */
struct vgpu_reply_buf {
    struct vgpu_frame f;
    uint8_t *buf;
    max_align_t scratch[1024 / sizeof(max_align_t)];   /* the reply's envelope, unpacked */
};

/* instance.c */
/* Makes c ready (no connection yet): 0 or -errno.  Undone by vgpu_client_destroy(). */
int vgpu_client_init(struct vgpu_client *c);
/* Closes the connection and frees what c holds, without settling.  Not for the process's. */
void vgpu_client_destroy(struct vgpu_client *c);
extern const struct vgpu_client_ops vgpu_client_local_ops;
/* This copy's answer to another copy that found its note: the client it uses, or NULL. */
struct vgpu_client *vgpu_client_peer(void);

/* conn.c */
int vgpu_conn_ensure_locked(struct vgpu_client *c);
void vgpu_conn_drop_locked(struct vgpu_client *c, const char *why);
/* May req go to this server (one of another release serves only the calls that agree)?  Lock held. */
bool vgpu_conn_agreed(struct vgpu_client *c, const struct vgpu_call_req *req);
int vgpu_conn_send_locked(struct vgpu_client *c, Vgpu__Wire__Envelope *env,
                          const struct iovec *payload, int npayload, size_t reply_hint,
                          bool qp_only, bool *via_qp, uint64_t *sent_seq);
int vgpu_conn_take_reply_locked(struct vgpu_client *c, bool qp, uint8_t **buf, size_t *len,
                                struct vgpu_frame *f);
int vgpu_conn_roundtrip_locked(struct vgpu_client *c, Vgpu__Wire__Envelope *env,
                               const struct iovec *payload, int npayload, size_t reply_hint,
                               uint8_t **buf, size_t *len, struct vgpu_frame *f);
/* At exit: settles and closes, unless a thread is inside a call. */
void vgpu_conn_fini(struct vgpu_client *c);
/* fork(): prepare settles with the lock held; the child starts with no connection. */
void vgpu_conn_atfork_prepare(struct vgpu_client *c);
void vgpu_conn_atfork_parent(struct vgpu_client *c);
void vgpu_conn_atfork_child(struct vgpu_client *c);

/* queue.c */
int vgpu_queue_init(struct vgpu_queue *q);
void vgpu_queue_clear(struct vgpu_queue *q);
int vgpu_queue_invoke_locked(struct vgpu_client *c, struct vgpu_call_req *req,
                             struct vgpu_call_rep *rep);
int vgpu_queue_enqueue_locked(struct vgpu_client *c, const struct vgpu_call_req *req);
void vgpu_queue_flush_locked(struct vgpu_client *c);
void vgpu_queue_settle_locked(struct vgpu_client *c);
struct vgpu_reply_buf *vgpu_reply_buf_new(void);
void vgpu_reply_buf_free(struct vgpu_reply_buf *rb);

/* flight.c */
void vgpu_flights_clear(struct vgpu_flights *fl);
int vgpu_flight_fly_locked(struct vgpu_client *c, Vgpu__Wire__Envelope *env,
                           const struct iovec *payload, int npayload);
int vgpu_flight_land_one_locked(struct vgpu_client *c);
int vgpu_flight_land_all_locked(struct vgpu_client *c);
/* The oldest flight's reply (f, or NULL: it could not come): its failures are owed. */
void vgpu_flight_settle_locked(struct vgpu_client *c, const struct vgpu_frame *f);

/* errors.c */
int vgpu_errors_device(void);
void vgpu_errors_set_device(int device);
uint64_t vgpu_errors_context(void);
void vgpu_errors_set_context(uint64_t ctx);
int vgpu_errors_last(bool clear);
/* The thread's owed status of a queued call (0: none), cleared. */
int vgpu_errors_take_owed(void);
/* Puts status back as the thread's owed one (taken aside while log callbacks ran). */
void vgpu_errors_owe_here(int status);
void vgpu_errors_set(int st);
/* A queued call of thread failed with status: it becomes that thread's last error. */
void vgpu_owe_error_locked(struct vgpu_client *c, pthread_t thread, int status);
/* The calling thread's owed errors become its last error. */
void vgpu_owed_collect_locked(struct vgpu_client *c);
/* The calling thread queued a call: its exit will be noticed. */
void vgpu_owed_watch_thread(struct vgpu_client *c);
int vgpu_owed_init(struct vgpu_owed *o);
int vgpu_fetch_error_table_locked(struct vgpu_client *c);
const char *vgpu_errtab_lookup(const struct vgpu_errtab *t, int code, bool text);
void vgpu_errtab_free(struct vgpu_errtab *t);

/* regions.c: the region ops of a client made by this copy of the library */
bool vgpu_client_local_can_share(struct vgpu_client *c);
void *vgpu_client_local_region_new(struct vgpu_client *c, uint32_t id, size_t size);
void *vgpu_client_local_region_new_mapped(struct vgpu_client *c, uint32_t id, size_t size,
                                          uint64_t *devptr);
void *vgpu_client_local_bar_region(struct vgpu_client *c, uint32_t id, size_t *size);
void vgpu_client_local_region_free(struct vgpu_client *c, uint32_t id, void *base, size_t size);
void vgpu_qp_setup_locked(struct vgpu_client *c);

/*
 * control.c: vgpu's own operations, each one Control message on the frame
 * path (docs/protocol.md, "The two planes").  Lock held, connection up;
 * each returns 0 or a negative errno (the server's ControlStatus mapped
 * back, -ENOTCONN when the connection failed, -EPROTO for a reply that
 * does not answer).  fd, where there is one, is passed with the message
 * and stays the caller's.
 */
int vgpu_ctl_attach_qp_locked(struct vgpu_client *c, uint64_t size, bool in_bar,
                              uint64_t bar_offset, int fd);
int vgpu_ctl_region_register_locked(struct vgpu_client *c, uint32_t id, uint64_t size, int fd);
/* The same for mapped memory at the caller's address; *devptr: where kernels reach it. */
int vgpu_ctl_region_register_mapped_locked(struct vgpu_client *c, uint32_t id, uint64_t size,
                                           int fd, uint64_t address, uint64_t *devptr);
int vgpu_ctl_region_register_bar_locked(struct vgpu_client *c, uint32_t id, uint64_t bar_offset,
                                        uint64_t size);
/* Mapped host memory in the shared BAR at the guest's address: 0 (devptr set) or -errno. */
int vgpu_ctl_region_register_bar_mapped_locked(struct vgpu_client *c, uint32_t id,
                                               uint64_t bar_offset, uint64_t size,
                                               uint64_t address, uint64_t *devptr);
int vgpu_ctl_region_unregister_locked(struct vgpu_client *c, uint32_t id);
/* The same, *kept told whether the server keeps the region until the session ends. */
int vgpu_ctl_region_unregister_kept_locked(struct vgpu_client *c, uint32_t id, bool *kept);
int vgpu_ctl_close_locked(struct vgpu_client *c);
/*
 * What the program's kernels printed, fetched from the session and written
 * to this process's stdout and stderr.  Clears c->devout_pending.
 */
int vgpu_ctl_device_output_locked(struct vgpu_client *c);
/* The server runtime's error table into *t (which must be empty; freed with vgpu_errtab_free). */
int vgpu_ctl_error_table_locked(struct vgpu_client *c, struct vgpu_errtab *t);
/* conn.c: one Control and its reply (queued calls are sent first); 0 or -errno. */
int vgpu_conn_control_locked(struct vgpu_client *c, Vgpu__Wire__Envelope *env, int fd,
                             struct vgpu_frame *f, uint8_t **buf);

/* callbacks.c */
int vgpu_callbacks_init(struct vgpu_callbacks *cb);
void vgpu_callbacks_destroy(struct vgpu_callbacks *cb);
/* Is the calling thread the callback thread (where CUDA calls are refused)? */
bool vgpu_callbacks_on_thread(void);
int vgpu_callbacks_add_locked(struct vgpu_client *c, const struct vgpu_callback *f, uint64_t *id);
void vgpu_callbacks_cancel(struct vgpu_client *c, uint64_t id);
int vgpu_callbacks_keep(struct vgpu_client *c, uint64_t id, int how, struct vgpu_callback *out);
bool vgpu_callbacks_due(struct vgpu_client *c);
/* The connection ends: the thread stops looking at the queue pair (before it is unmapped). */
void vgpu_callbacks_stop_locked(struct vgpu_client *c);
/* In a forked child: no thread, no entries. */
void vgpu_callbacks_forked(struct vgpu_client *c);

/*
 * cache.c: answers keyed by call id, the thread's device, its current
 * context (0 for calls not cached per context: VGPU_FN_CACHE_CTX) and the
 * packed arguments.  vgpu_cache_drop_contexts forgets the per-context ones.
 */
const struct vgpu_cache_entry *vgpu_cache_find(const struct vgpu_client *c,
                                               const struct vgpu_call_req *req, int device,
                                               uint64_t context);
int vgpu_cache_answer(const struct vgpu_cache_entry *e, struct vgpu_call_rep *rep);
void vgpu_cache_add(struct vgpu_client *c, const struct vgpu_call_req *req,
                    const struct vgpu_call_rep *rep, int device, uint64_t context);
void vgpu_cache_drop_contexts(struct vgpu_client *c);
void vgpu_cache_free(struct vgpu_client *c);

#endif
