/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vgpu-server's configuration: an INI file (read with inih) and command-line
 * flags that override it.  docs/server.md describes every key.
 */
#ifndef VGPU_CONFIG_H
#define VGPU_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scheduler.h"

#define VGPU_CONFIG_MAX_LISTEN 16
#define VGPU_CONFIG_MAX_VMS 256
#define VGPU_VM_MAX_SESSIONS 64          /* default bound of one VM's sessions at once */

/* Who a session serves: from the device's HELLO, or the socket's defaults. */
struct vgpu_identity {
    uint32_t vm_id;
    char pool;
    uint8_t priority;
    bool from_device;
};

/*
 * Listeners are typed.  A client socket serves host-direct programs, which
 * get exactly the identity configured for it; a device socket serves the
 * vgpu-stub devices of QEMU processes (their chardevs), which say the VM's
 * identity in their link HELLO.  Neither accepts the other's protocol.
 */
enum vgpu_listen_type { VGPU_LISTEN_CLIENT, VGPU_LISTEN_DEVICE };

#define VGPU_LISTEN_MAX_CONNS 64          /* default bound of connections per socket */
#define VGPU_DEFAULT_MAX_PENDING 32       /* connections not yet past their handshake */
#define VGPU_HANDSHAKE_TIMEOUT_MS 10000   /* ... and how long one may take */

/*
 * A tcp: socket speaks TLS unless it says tls = insecure; a unix socket
 * never does.  On a TLS socket the client's certificate is the identity:
 * a [cert] section gives it (programs get it, a device's HELLO must say it).
 */
enum vgpu_listen_tls { VGPU_TLS_DEFAULT, VGPU_TLS_ON, VGPU_TLS_INSECURE };

struct vgpu_listen_cfg {
    char address[256];                /* unix:PATH or tcp:HOST:PORT */
    enum vgpu_listen_type type;
    struct vgpu_identity who;         /* clients: theirs; devices: what a HELLO must say */
    bool pinned;                      /* vm_id/pool/priority set (a device's HELLO must match) */
    uint32_t max_conns;               /* clients or device links at once (0: the default) */
    enum vgpu_listen_tls tls;         /* as written; vgpu_listen_uses_tls() decides */
    /* a unix socket's file: mode (default 0660), owner and group ("": the server's) */
    uint32_t mode;
    char owner[64], group[64];
    /* where it was written, for messages: "FILE:LINE: [listen NAME]" or "--listen ADDRESS" */
    char where[400];
};

/*
 * The server's TLS credentials ([tls]): files in the layout of QEMU's
 * tls-creds-x509 objects (dir/ca-cert.pem, server-cert.pem, server-key.pem,
 * and ca-crl.pem when it exists), or each named on its own.
 */
struct vgpu_tls_cfg {
    char dir[256];
    char ca[256], cert[256], key[256], crl[256];
};

/* [cert NAME]: the identity a client certificate stands for. */
#define VGPU_CONFIG_MAX_CERTS 256
struct vgpu_cert_cfg {
    char name[64];
    char cn[128];                     /* its subject's common name ("" : any) */
    uint8_t sha256[32];               /* its SHA-256 fingerprint, when has_sha256 */
    bool has_sha256;
    bool has_vm_id;
    struct vgpu_identity who;
    char where[400];                  /* "FILE:LINE: [cert NAME]", for messages */
};

struct vgpu_pool_cfg {
    int ngpus;                        /* 0: the pool is not configured */
    int gpus[VGPU_SCHED_MAX_GPUS];    /* host GPU indices */
    char gpus_text[64];               /* "0,1", for CUDA_VISIBLE_DEVICES */
};

struct vgpu_vm_limits {
    uint32_t vm_id;
    uint32_t sessions;                /* sessions at once (0: VGPU_VM_MAX_SESSIONS) */
    uint64_t memory;                  /* device memory bytes, 0: no limit */
    uint32_t streams;                 /* streams held at once, 0: no limit */
};

struct vgpu_config {
    char cache_dir[256];              /* "" : /tmp/vgpu-cache-UID */
    int log_level;                    /* -1: not set */
    char admin[108];                  /* admin socket path, "" : derived */
    char admin_group[64];             /* "" : owner only (0600) */
    uint32_t max_pending;             /* connections not past their handshake (0: default) */
    bool no_contain;                  /* contain = off / --no-contain: sessions unconfined (debugging) */
    char user[64];                    /* sessions run as this user (root only; "" : as the server) */
    struct vgpu_sched_params sched;
    struct vgpu_listen_cfg listen[VGPU_CONFIG_MAX_LISTEN];
    int nlisten;
    struct vgpu_pool_cfg pools[VGPU_SCHED_MAX_POOLS];
    int npools;                       /* 0: any pool letter means every GPU */
    struct vgpu_vm_limits vms[VGPU_CONFIG_MAX_VMS];
    int nvms;
    struct vgpu_tls_cfg tls;
    struct vgpu_cert_cfg certs[VGPU_CONFIG_MAX_CERTS];
    int ncerts;
};

void vgpu_config_init(struct vgpu_config *c);

/*
 * Reads an INI file into c (keys not in it keep their values).  Returns 0,
 * or -1 with a message naming the file, line and problem in err.
 */
int vgpu_config_load(struct vgpu_config *c, const char *path, char *err, size_t errlen);

/*
 * Adds one listening socket from a flag: ADDRESS[,type=client|device]
 * [,vm_id=N][,pool=P][,priority=low|medium|high][,sessions=N]
 * [,tls=on|insecure][,mode=0660][,owner=USER][,group=GROUP].  0, or -1
 * with a message in err.
 */
int vgpu_config_add_listen(struct vgpu_config *c, const char *arg, char *err, size_t errlen);

/*
 * After the file and the flags: the checks that span sections (TLS
 * listeners need credentials and [cert] sections and take no identity of
 * their own; tls on a unix socket; a [cert] names a certificate and a
 * vm_id), and the credentials' paths resolved from [tls] dir.  0, or -1
 * with a message in err.
 */
int vgpu_config_finish(struct vgpu_config *c, char *err, size_t errlen);

/* Does listener l speak TLS?  (tcp: unless tls = insecure.) */
bool vgpu_listen_uses_tls(const struct vgpu_listen_cfg *l);

/*
 * The [cert] section for a client certificate with common name cn (may be
 * NULL) and SHA-256 fingerprint sha256: the first whose cn and sha256, where
 * set, both match.  NULL when none does.
 */
const struct vgpu_cert_cfg *vgpu_config_cert(const struct vgpu_config *c, const char *cn,
                                             const uint8_t sha256[32]);

/*
 * SIGHUP: a configuration read again (fresh, finished) into the running one
 * (live).  Taken for connections from now on: [vm] limits, [pool] GPUs,
 * [cert] identities and [tls] files, log_level, max_pending, and each
 * listener's identity and sessions (matched by address).  What needs a
 * restart (sockets added, removed or changed; cache, admin socket, user,
 * containment, the scheduler's parameters) is kept as it was and named in
 * msg ("" when nothing was).  Sessions running keep what they started with.
 */
void vgpu_config_apply_reload(struct vgpu_config *live, const struct vgpu_config *fresh,
                              char *msg, size_t msglen);

/* The limits of vm, or NULL when it has none. */
const struct vgpu_vm_limits *vgpu_config_vm(const struct vgpu_config *c, uint32_t vm);
/* How many sessions vm may have at once (its [vm N] sessions, or the default). */
uint32_t vgpu_config_vm_sessions(const struct vgpu_config *c, uint32_t vm);

/* The pool named pool, or NULL when pools are configured and it is not one. */
const struct vgpu_pool_cfg *vgpu_config_pool(const struct vgpu_config *c, char pool);

/* "64M", "8G", "1024" -> bytes; -1 on a malformed size. */
int vgpu_config_size(const char *s, uint64_t *out);

/* The configuration this server runs with (set once by main, read by sessions). */
extern const struct vgpu_config *vgpu_cfg;

#endif
