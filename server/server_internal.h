/* SPDX-License-Identifier: Apache-2.0 */
/* vgpu-server internals shared between its files. */
#ifndef VGPU_SERVER_INTERNAL_H
#define VGPU_SERVER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "config.h"
#include "scheduler.h"
#include "vgpu/callgen.h"
#include "vgpu/qp.h"
#include "vgpu/version.h"

/*
 * Replays one generated call on fn (the real function).  r must be zeroed
 * with ctx, ops and the input segments set; on return *status is the
 * function's own status and r->ret/r->seg_out hold the encoded outputs.
 * Returns 0, or a negative errno when the call could not be replayed
 * (malformed arguments, a handle or address the session does not own, a
 * count over VGPU_CALL_MAX_BYTES); the function is not called then unless
 * the failure came from encoding.  r is released with vgpu_replay_release().
 */
int vgpu_replay_call(const struct vgpu_dispatch_entry *e, void (*fn)(void),
                     struct vgpu_replay *r, const uint8_t *args, size_t len, int *status);
void vgpu_replay_release(struct vgpu_replay *r);

/* ---- logging (log.c): to stderr, one line each ---- */
enum vgpu_log_level { VGPU_LOG_ERROR, VGPU_LOG_WARN, VGPU_LOG_INFO, VGPU_LOG_DEBUG };
extern int vgpu_log_level;
extern int vgpu_log_fd;     /* where vgpu_log() writes: the server's stderr */
void vgpu_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int vgpu_log_parse(const char *name);
/* The server at start, before it forks: whether log lines carry journald priorities. */
void vgpu_log_init(void);

/* ---- per-session tables (tables.c) ---- */
struct vgpu_range {
    uint64_t base, size;
    bool freeable;             /* from a malloc; symbols are not */
    bool graph;                /* a graph allocation node's: charged with its executable graph */
};

/* A graph allocation node's memory (manual/graph.c): its graph's while either lives. */
struct vgpu_graph_mem {
    uint64_t graph;            /* the graph of the node (0: destroyed) */
    uint64_t exec;             /* the executable graph instantiated from it (0: none) */
    uint64_t dptr, size;
    bool freed_in_graph;       /* the graph has a free node for it (known when it is destroyed) */
    bool charged;              /* left allocated by a launch past its executable graph: charged */
};

/* What an executable graph's allocation nodes may hold at once, charged to the VM's limit. */
struct vgpu_exec_mem {
    uint64_t exec, bytes;
};

struct vgpu_module {
    void **handle;             /* the real runtime's registration handle */
    uint8_t **images;          /* kept alive: the runtime points into them */
    void **prelinked;          /* version 2: NULL-terminated list for the wrapper */
    bool ended;                /* __cudaRegisterFatBinaryEnd done */
};

struct vgpu_hostfn {           /* a kernel or a variable the guest registered */
    uint64_t guest;            /* the guest's host-side address */
    char *fake;                /* our unique stand-in passed to the runtime */
    int module;
    bool is_var;
    bool managed;              /* a __managed__ variable: fake holds the runtime's pointer to it */
    uint64_t var_size;
    int nparams;
    uint32_t *off, *size;      /* kernel parameter layout, once known */
    bool layout_known;
};

/* Contexts one session may create besides the primary ones (each holds GPU memory of its own). */
#define VGPU_MAX_CONTEXTS 16

#define VGPU_WORK_RING 64          /* events tracking a session's work (one per run of items) */
#define VGPU_WORK_SOLO_NS 2000000u /* a session alone on its GPU queues up to this much work */
#define VGPU_WORK_SOLO_MAX 1024u   /* ... and at most this many items */

struct vgpu_carrier_ops;
struct vgpu_loop;

struct vgpu_agreement;

struct vgpu_session {
    int fd;                    /* the client's socket (or the link's socketpair) */
    const struct vgpu_carrier_ops *carrier;  /* how requests come and replies go (carrier.h) */
    struct vgpu_loop *loop;    /* what the session waits on: the socket, a guest's doorbell */
    short sock_revents;        /* what the loop last saw on the socket */
    const char *cache_dir;
    int device;                /* the runtime's current device in this process */
    uint64_t context;          /* the driver context the guest made current (0: the device's primary) */
    uint64_t contexts[VGPU_MAX_CONTEXTS]; /* contexts the guest created (cuCtxCreate), 0: a free slot */
    uint64_t devices_used;     /* bit d: device d was current at some point */
    int init_status;
    struct vgpu_range *ranges;
    int nranges, cap_ranges;
    struct { int kind; uint64_t value; } *handles;
    int nhandles, cap_handles;
    struct vgpu_vmm *vmm;      /* reservations, cuMemCreate allocations, mappings (vmm.h) */
    struct vgpu_module *modules;
    int nmodules;
    struct vgpu_hostfn *fns;
    int nfns;
    uint64_t image_bytes;      /* fatbin images held for the runtime (VGPU_IMAGES_MAX_BYTES) */
    uint64_t var_bytes;        /* host stand-ins of registered variables (VGPU_VARS_MAX_BYTES) */
    uint64_t calls;
    struct vgpu_identity who;
    const char *refuse;        /* set: refuse the handshake with this sentence */
    char client[48];           /* the program's name, from its Hello */
    uint32_t client_pid;       /* its pid in its own system, from its Hello: told back, never trusted */
    uint32_t client_features;  /* VGPU_FEATURE_* its Hello announced */
    /* the calls served, when the guest's call tables are another release's (NULL: all) */
    struct vgpu_agreement *agree;
    char client_version[32];   /* the guest's vgpu release, as its Hello said (for messages) */
    int nvml_inits;            /* the guest's nvmlInit references not yet shut down (manual/nvml.c) */
    /* GPU work granted by the scheduler and not yet seen finished (work.c) */
    void *work_ev[VGPU_WORK_RING];  /* cudaEvent_t, created on first use */
    uint32_t work_count[VGPU_WORK_RING]; /* items each event covers */
    uint64_t work_rec_ns[VGPU_WORK_RING]; /* when each was recorded */
    uint64_t work_retired_ns;  /* when the last one was seen finished */
    uint64_t work_item_ns;     /* GPU time per item, estimated (0: not yet) */
    int work_head, work_ev_n;  /* the ring's entries */
    int work_n;                /* items granted and not seen finished (covered or not) */
    uint32_t work_open;        /* items submitted but not yet covered by an event */
    void *work_open_stream;    /* the stream they were submitted on */
    bool capture_seen;         /* a stream capture was begun (graph.c asks the driver then) */
    struct vgpu_graph_mem *graph_mem;   /* graph allocation nodes' memory (manual/graph.c) */
    int ngraph_mem;
    struct vgpu_exec_mem *exec_mem;     /* executable graphs with allocation nodes */
    int nexec_mem;
    /* conditional nodes' body graphs, which go with their node (manual/graph.c) */
    struct vgpu_cond_body { uint64_t node, graph, handle; } *cond_bodies;
    int ncond_bodies;
    int pools_created;         /* memory pools the guest created and has not destroyed (manual/vmm.c) */
    /* host memory shared by the client (memfds, pinned here) */
    int pending_fd;            /* passed with the frame being served, or -1 */
    /* shared host regions; a mapped one is session memory for kernels at devptr */
    struct vgpu_region {
        uint32_t id;
        uint8_t *base;
        uint64_t size;
        bool in_bar;            /* base lies in vgpu_link_bar's mapping (not unmapped alone) */
        uint64_t devptr;        /* mapped for kernels: their address of it (0: not) */
        uint64_t bar_offset;    /* where it is in the shared BAR (UINT64_MAX: a memfd's) */
    } *regions;
    int nregions;
    /* regions the guest unregistered after a capture: a graph may still copy from or to them,
       so they stay mapped and pinned until the session ends */
    struct vgpu_region *retired;
    int nretired;
    /* the queue pair (include/vgpu/qp.h, carrier_qp.c), when qp_mem is set */
    struct vgpu_qp qp;
    void *qp_mem;              /* a memfd mapped here, or inside the VM's shared BAR */
    uint64_t qp_len;
    bool qp_in_bar;
    int qp_bell;               /* in a guest: the eventfd of the slot's doorbell (link.c's), in loop */
    bool via_qp;               /* the frame being served came through it */
    uint64_t frames_qp, frames_path;  /* frames served from each carrier */
    uint32_t socket_seen;      /* the client's count of socket frames, last looked at */
    bool socket_look;          /* look at the socket whatever the count says */
    bool closing;              /* the client sent Close: the session ends after the reply */
    struct vgpu_hostcb *hostcb;  /* host callbacks (manual/hostfn.c), made on the first one */
    struct notify *notify;       /* its async notification registrations (manual/hostfn.c) */
    /* what the program's kernels print (devout.c): memfds at fds 1 and 2, read up to off */
    int devout_fd[2];
    uint64_t devout_off[2];
    bool devout_armed;         /* work went to the GPU since the files were last seen empty ... */
    bool devout_synced;        /* ... and a device-wide synchronize came since */
    bool devout_flush;         /* this batch ran a call at which the driver writes them */
    bool devout_said;          /* the server wrote to the program's stderr itself */
    struct vgpu_drvlog *drvlog;    /* the driver's log messages for the client (devout.c) */
};

/*
 * What a session's registrations may make the server hold: modules and the
 * fatbin images kept for them, registered kernels and variables, and the
 * host stand-ins of those variables.  Far above what real programs
 * register (a framework's few thousand kernels in a few hundred modules).
 */
#define VGPU_MAX_MODULES 16384
#define VGPU_IMAGES_MAX_BYTES ((uint64_t)8 << 30)
#define VGPU_MAX_FNS (1 << 20)
#define VGPU_VARS_MAX_BYTES ((uint64_t)4 << 30)


#define VGPU_MAX_REGIONS 1024
#define VGPU_REGIONS_MAX_BYTES ((uint64_t)64 << 30)  /* host memory one session may share (pinned) */

/*
 * Is fd a file of at least size bytes that can no longer shrink (a sealed
 * memfd)?  Only such memory from a client or QEMU is mapped: a mapping of
 * it can never fault.
 */
bool vgpu_sealed_memfd(int fd, uint64_t size);
/* The region id of this session, or NULL. */
struct vgpu_region *vgpu_region_find(struct vgpu_session *s, uint32_t id);
/* Unmaps every region (the session ends). */
void vgpu_regions_release(struct vgpu_session *s);

int vgpu_range_add(struct vgpu_session *s, uint64_t base, uint64_t size, bool freeable);
/* Room for n more ranges, so the next n vgpu_range_add() cannot fail: 0 or -ENOMEM. */
int vgpu_range_reserve(struct vgpu_session *s, int n);
int vgpu_range_remove(struct vgpu_session *s, uint64_t base);
/* Drops a range that is not the guest's to free (a mapped host region's): 0 or -EFAULT. */
int vgpu_range_drop(struct vgpu_session *s, uint64_t base);
/* The size of the allocation that starts at base, or 0. */
uint64_t vgpu_range_size(const struct vgpu_session *s, uint64_t base);
int vgpu_handle_remove(struct vgpu_session *s, int kind, uint64_t value);
/* True when base starts a graph allocation node's memory (manual/graph.c). */
bool vgpu_range_graph(const struct vgpu_session *s, uint64_t base);
/* Drops that range (its graph and executable graph are gone): 0 or -EFAULT. */
int vgpu_range_remove_graph(struct vgpu_session *s, uint64_t base);
/* True when base starts an allocation of this session (what cudaFree takes). */
bool vgpu_range_owned(const struct vgpu_session *s, uint64_t base);
/*
 * True when [addr, addr+len) lies inside one range the session owns.  An
 * empty range (len 0) is checked as such: it may start anywhere from a
 * range's base up to and including its end, as CUDA accepts a zero-byte
 * memset or copy at an allocation's end.
 */
bool vgpu_range_check(const struct vgpu_session *s, uint64_t addr, uint64_t len);
/* True when the byte at addr belongs to a range the session owns (a bare address). */
bool vgpu_addr_check(const struct vgpu_session *s, uint64_t addr);
int vgpu_handle_add(struct vgpu_session *s, int kind, uint64_t value);
bool vgpu_handle_known(const struct vgpu_session *s, int kind, uint64_t value);
struct vgpu_hostfn *vgpu_hostfn_find(struct vgpu_session *s, uint64_t guest);
void vgpu_session_reset_tables(struct vgpu_session *s);

extern const struct vgpu_replay_ops vgpu_session_ops;
/* The driver API's (handle kinds mapped onto the runtime's: vgpu_cuda_kind()). */
extern const struct vgpu_replay_ops vgpu_session_cuda_ops;
/* The session-table kind of a driver handle kind (cuda_calltable.h), or -1. */
int vgpu_cuda_kind(int kind);

/*
 * ---- GPU work (work.c) ----
 * Around every call that puts work on the GPU: vgpu_work_begin() waits until
 * the session has fewer than its class's max_queued items unfinished and the
 * scheduler grants it; vgpu_work_end() records an event on the call's
 * stream (or gives the grant back when nothing was submitted).
 * vgpu_work_poll() notices finished items and tells the scheduler.
 */
void vgpu_work_begin(struct vgpu_session *s);
void vgpu_work_end(struct vgpu_session *s, void *stream, int submitted);
void vgpu_work_poll(struct vgpu_session *s);
/* Covers the items submitted since the last event with one (end of a batch). */
void vgpu_work_cover(struct vgpu_session *s);
/* A synchronizing call returned: the work it waited for is finished (stream, or all). */
void vgpu_work_synced(struct vgpu_session *s, void *stream, int all);
/* The current device changes to dev: waits for the work on the old one. */
void vgpu_work_switch_device(struct vgpu_session *s, int dev);
/* cudaDeviceReset destroyed every event: forget them (all work is gone). */
void vgpu_work_forget(struct vgpu_session *s);

/*
 * ---- What kernels print (devout.c) ----
 * vgpu_devout_start() points fds 1 and 2 at the session's files (before
 * confinement); work.c arms and disarms the look; vgpu_devout_pending()
 * says, after a batch, whether the reply tells the client to fetch
 * (flushed: the batch ran a call at which the driver writes, and the
 * client waits for its reply);
 * vgpu_devout_fetch() answers FetchDeviceOutput.
 */
int vgpu_devout_start(struct vgpu_session *s);
void vgpu_devout_arm(struct vgpu_session *s);
/* One line for the program's stderr, from the server itself (printf-like; ends in a newline). */
void vgpu_devout_say(struct vgpu_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void vgpu_devout_synced_all(struct vgpu_session *s);
bool vgpu_devout_pending(struct vgpu_session *s, bool flushed);
struct Vgpu__Wire__ControlReply;
int vgpu_devout_fetch(struct vgpu_session *s, struct vgpu_arena *arena,
                      struct Vgpu__Wire__ControlReply *r);
/*
 * The client's driver log callbacks (cuLogsRegisterCallback): on (its
 * first) registers the session's own callback with the driver, which keeps
 * the messages for vgpu_devout_fetch(); off (its last gone) unregisters it.
 * A CUresult.
 */
int vgpu_devout_log_watch(struct vgpu_session *s, bool on);
/* The driver's log no longer watched, and what was kept of it freed (the session ends). */
void vgpu_devout_log_end(struct vgpu_session *s);
/* Device memory held counts against the VM's limit; 0 or -ENOMEM (logged). */
int vgpu_memory_charge(struct vgpu_session *s, int64_t delta);
/* The same for memory that exists already: counted whatever the limit says. */
void vgpu_memory_charge_force(struct vgpu_session *s, int64_t delta);

/* ---- sockets (listen.c) ---- */
/* ---- process titles (proctitle.c) ---- */

/* main, first thing: the memory of argv (and environ, copied away) becomes the title's. */
void vgpu_proctitle_init(int argc, char **argv);
/* The title ps shows for this process (and its first 15 bytes after "vgpu-server: " as comm). */
void vgpu_proctitle_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- TLS on tcp: listeners (tls.c) ---- */

/*
 * The parent, once at start, when a listener speaks TLS: checks that
 * [tls]'s credentials load (in a child: the key never enters this
 * process).  0 or -1 (logged).
 */
int vgpu_tls_server_init(const struct vgpu_config *cfg);
/*
 * In a connection's process, on a TLS listener (where names it in logs),
 * still with the server's privileges: starts the TLS relay on fd (it
 * becomes the relay's; closed here) and returns the fd to serve the
 * connection on (a socketpair to the relay), or -1 (logged).
 */
int vgpu_tls_relay_start(int fd, const char *where);
/*
 * Then, with the session's privileges: waits (within the handshake's
 * deadline) for the relay to say whose certificate the client presented,
 * and puts its [cert] identity into *who.  0, or -1 when the handshake
 * failed (the relay logged why) and the connection is to be closed.  When
 * the certificate is trusted but no [cert] names it, refuse says so (else
 * "") and *who is untouched.
 */
int vgpu_tls_identify(int inner, const char *where, struct vgpu_identity *who, char *refuse,
                      size_t refuselen);
/* vgpu-server --tls-relay ...: the relay process's main (tls.c); its exit status. */
int vgpu_tls_relay_main(int argc, char **argv);

/*
 * Before any socket opens (and for --check): the unix listeners' owners and
 * groups and the admin_group exist, and none is the sessions' user or one
 * of its groups.  0 or -1 (logged).
 */
int vgpu_listen_check(const struct vgpu_config *cfg);
/* A listening socket for l's unix:PATH (its file given mode, owner, group) or tcp:HOST:PORT; or -1 (logged). */
int vgpu_listen_open(const struct vgpu_listen_cfg *l);
/* The admin socket of cfg (mode 0600, or 0660 for admin_group), or -1 (logged). */
int vgpu_listen_admin(const struct vgpu_config *cfg);

/* ---- one client (session.c), one device link (link.c) ---- */

/* The VM's shared BAR (link.c), mapped before its sessions are forked; NULL if none. */
extern uint8_t *vgpu_link_bar;
extern uint64_t vgpu_link_bar_size;
/* Its memfd (-1: none): mapped host memory in the BAR is mapped again at the guest's address. */
extern int vgpu_link_bar_fd;
/* Its doorbells: the eventfd QEMU signals when the guest rings slot k's (-1: none). */
extern int vgpu_link_bells[VGPU_STUB_MAX_DOORBELLS];
extern int vgpu_link_nbells;
/*
 * Serves one client on fd until it goes.  With refuse set, its handshake is
 * answered with that sentence and nothing else happens (a bound was hit).
 * The caller set an alarm(2) for the handshake; it is cleared once past it.
 */
void vgpu_session_run(int fd, const char *cache_dir, const struct vgpu_identity *who,
                      const char *refuse);
/*
 * One request frame from the client (buf, len: as the carrier received it):
 * decoded, served and answered through s->carrier.  0, or a negative errno
 * or wire error after which the session must end.
 */
int vgpu_session_serve(struct vgpu_session *s, const uint8_t *buf, size_t len);
/* Serves one device link (a QEMU's chardev) on fd; l is its listener. */
void vgpu_link_run(int fd, const char *cache_dir, const struct vgpu_listen_cfg *l);

/* ---- hand-written calls (manual/) ---- */
struct vgpu_manual_call {
    const uint8_t *args;
    size_t args_len;
    const struct vgpu_seg *seg;
    int nseg;
    /* outputs, owned by the call's arena */
    struct vgpu_arena *arena;
    const uint8_t *ret;
    size_t ret_len;
    struct iovec out[4];
    int nout;
    size_t out_budget;         /* output bytes the handler may still produce */
};

typedef int (*vgpu_manual_fn)(struct vgpu_session *s, struct vgpu_manual_call *c);
/* The handler of a manual call id, or NULL: the runtime's, and the driver's (driver.c). */
vgpu_manual_fn vgpu_manual_find(uint32_t id);
vgpu_manual_fn vgpu_driver_manual_find(uint32_t id);
/* Virtual memory management and memory pools of the driver API (manual/vmm.c). */
vgpu_manual_fn vgpu_vmm_manual_find(uint32_t id);
/*
 * A launch's parameters from the guest's buffer laid out by the driver's
 * parameter info (driver.c): ptrs (room for 1024) point into buf, *n of
 * them; *func is what to launch (a CUkernel's function in the current
 * context).  A CUresult; the function handle must be checked before.
 */
int vgpu_driver_lay_out(struct vgpu_session *s, uint64_t fn, const uint8_t *buf, size_t len,
                        void **ptrs, int *n, void **func);
/* The layout itself: *n parameters at off[i] of size[i] bytes (kept by driver.c). */
int vgpu_driver_layout(struct vgpu_session *s, uint64_t fn, int *n, const uint32_t **off,
                       const uint32_t **size);
/* Stream capture and graphs (manual/graph.c): their handlers, and whether stream captures. */
vgpu_manual_fn vgpu_graph_manual_find(uint32_t id);
bool vgpu_graph_capturing(struct vgpu_session *s, void *stream);
/* An async copy to or from host memory that a graph could not replay: refused (logged). */
bool vgpu_graph_copy_refused(struct vgpu_session *s, void *stream, uint32_t region);
bool vgpu_graph_alloc_refused(struct vgpu_session *s, void *stream, const char *what,
                              const char *why);
/* The graph stream captures into (0: none). */
uint64_t vgpu_graph_capture_graph(struct vgpu_session *s, void *stream);
/*
 * Memory an allocation node of graph made (by hand or captured) becomes
 * session memory, charged with the graph's executable graph: 0 or -ENOMEM.
 */
int vgpu_graph_mem_add(struct vgpu_session *s, uint64_t graph, uint64_t dptr, uint64_t size);
/* A new allocation took [base, base + size): allocation nodes' entries there are stale. */
void vgpu_graph_mem_stale(struct vgpu_session *s, uint64_t base, uint64_t size);
/* The program freed graph allocation ptr (not into a capture): its count is redone. */
void vgpu_graph_mem_freed(struct vgpu_session *s, uint64_t ptr);
/* Room for one more allocation node's entry and range: 0 or -ENOMEM (logged). */
int vgpu_graph_mem_reserve(struct vgpu_session *s);
/* A node call's handles are the session's (graph only when adding); a node the driver made is. */
bool vgpu_graph_node_handles_ok(struct vgpu_session *s, uint64_t graph, const uint64_t *deps,
                                size_t ndeps, uint64_t node, uint64_t exec, bool add);
int vgpu_graph_node_made(struct vgpu_session *s, uint64_t node);
/*
 * Around the server's own CUDA calls on the session's thread: relaxed
 * capture mode once the session has captured (the mode to put back, or -1).
 */
int vgpu_graph_relax(struct vgpu_session *s);
void vgpu_graph_unrelax(int mode);
/*
 * Host callbacks (manual/hostfn.c): the handler of a callback call id, or
 * NULL; and the session's end, after which no trampoline touches the queue
 * pair (those still on streams return at once).
 */
vgpu_manual_fn vgpu_hostcb_find(uint32_t id);
/* A graph destroyed: the references it held to user objects are gone (manual/hostfn.c). */
void vgpu_user_objects_graph_gone(uint64_t graph);
/* CUDA IPC among the sessions of a VM (manual/ipc.c); an exported allocation or event gone. */
vgpu_manual_fn vgpu_ipc_manual_find(uint32_t id);
void vgpu_ipc_forget(uint64_t what);
void vgpu_hostcb_end(struct vgpu_session *s);
/* Kernel layouts kept for launches are forgotten (a module or library was unloaded; driver.c). */
void vgpu_driver_forget_layouts(void);
/* The server's own answer for a runtime or driver function whose guest view differs (view.c), or NULL. */
void (*vgpu_view_sym(const char *name))(void);
/* The session the view answers for (its VM's limits): one per process. */
void vgpu_view_enter(const struct vgpu_session *s);
/* A function of the CUDA driver (libcuda.so.1) by name, or NULL (driver.c). */
void (*vgpu_driver_sym(const char *name))(void);
/* var: driver function name (declared by cuda.h) with its own type, or NULL */
#define VGPU_DRIVER_SYM(var, name) \
    __typeof__(&name) var = (__typeof__(&name))(void *)vgpu_driver_sym(#name)
/* Makes the session's context ctx (0: none) current here: a CUresult (driver.c). */
int vgpu_driver_make_current(struct vgpu_session *s, uint64_t ctx);
/*
 * NVML (manual/nvml.c): the function a generated call reaches by name (the
 * server's own answer where the session's view differs from the real NVML's,
 * else the real one, or NULL without an NVML here); the handler of a manual
 * call; the session the next generated call runs for; its handle checks.
 */
void (*vgpu_nvml_sym(const char *name))(void);
vgpu_manual_fn vgpu_nvml_manual_find(uint32_t id);
void vgpu_nvml_enter(struct vgpu_session *s);
/* A negative errno as NVML's nvmlReturn_t (manual/nvml.c). */
int vgpu_errno_to_nvml(int neg);
extern const struct vgpu_replay_ops vgpu_session_nvml_ops;
/* A negative errno as the driver API's CUresult (session.c). */
int vgpu_errno_to_cu(int neg);

/*
 * ---- the control plane (control.c) ----
 * vgpu_control_handle() runs one Control operation for session s.  fd is
 * the descriptor passed with the frame, or -1; it is the handler's, closed
 * in every case.  r is filled (status, message, error table) with memory
 * from arena, which must outlive the reply.  Returns 0 or the negative errno
 * that vgpu_control_status() turned into r->status.
 */
struct Vgpu__Wire__Control;
struct Vgpu__Wire__ControlReply;
struct vgpu_frame;
int vgpu_control_handle(struct vgpu_session *s, const struct Vgpu__Wire__Control *c, int fd,
                        struct vgpu_arena *arena, struct Vgpu__Wire__ControlReply *r);
/* The ControlStatus of an operation's result (the table: docs/protocol.md, "The two planes"). */
int vgpu_control_status(int err);
/* Serves a frame whose body is a Control and sends the reply on the frame path: 0 or -errno. */
int vgpu_control_serve(struct vgpu_session *s, const struct vgpu_frame *f);

/* ---- the handshake (handshake.c) ---- */
#define VGPU_SERVER_VERSION "vgpu-server " VGPU_VERSION
/*
 * Reads the client's Hello and answers it: 0 when the session may go on.
 * A peer of another protocol version gets a HelloReply it can read, naming
 * both versions, and the server logs the same sentence.
 */
int vgpu_session_handshake(struct vgpu_session *s);

/* Negative errno from a check to the CUDA status the guest sees. */
int vgpu_errno_to_cuda(int neg);

#endif
