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

/* Who a session serves: from the device's HELLO, or the socket's defaults. */
struct vgpu_identity {
    uint32_t vm_id;
    char pool;
    uint8_t priority;
    bool from_device;
};

struct vgpu_listen_cfg {
    char address[256];                /* unix:PATH or tcp:HOST:PORT */
    struct vgpu_identity who;         /* what host-direct clients get here */
};

struct vgpu_pool_cfg {
    int ngpus;                        /* 0: the pool is not configured */
    int gpus[VGPU_SCHED_MAX_GPUS];    /* host GPU indices */
    char gpus_text[64];               /* "0,1", for CUDA_VISIBLE_DEVICES */
};

struct vgpu_vm_limits {
    uint32_t vm_id;
    uint64_t memory;                  /* device memory bytes, 0: no limit */
    uint32_t streams;                 /* streams held at once, 0: no limit */
};

struct vgpu_config {
    char cache_dir[256];              /* "" : /tmp/vgpu-cache-UID */
    int log_level;                    /* -1: not set */
    char admin[108];                  /* admin socket path, "" : derived */
    char admin_group[64];             /* "" : owner only (0600) */
    bool no_contain;                  /* contain = off / --no-contain: sessions unconfined (debugging) */
    struct vgpu_sched_params sched;
    struct vgpu_listen_cfg listen[VGPU_CONFIG_MAX_LISTEN];
    int nlisten;
    struct vgpu_pool_cfg pools[VGPU_SCHED_MAX_POOLS];
    int npools;                       /* 0: any pool letter means every GPU */
    struct vgpu_vm_limits vms[VGPU_CONFIG_MAX_VMS];
    int nvms;
};

void vgpu_config_init(struct vgpu_config *c);

/*
 * Reads an INI file into c (keys not in it keep their values).  Returns 0,
 * or -1 with a message naming the file, line and problem in err.
 */
int vgpu_config_load(struct vgpu_config *c, const char *path, char *err, size_t errlen);

/*
 * Adds one listening socket from a flag: ADDRESS[,vm_id=N][,pool=P]
 * [,priority=low|medium|high].  0, or -1 with a message in err.
 */
int vgpu_config_add_listen(struct vgpu_config *c, const char *arg, char *err, size_t errlen);

/* The limits of vm, or NULL when it has none. */
const struct vgpu_vm_limits *vgpu_config_vm(const struct vgpu_config *c, uint32_t vm);

/* The pool named pool, or NULL when pools are configured and it is not one. */
const struct vgpu_pool_cfg *vgpu_config_pool(const struct vgpu_config *c, char pool);

/* "64M", "8G", "1024" -> bytes; -1 on a malformed size. */
int vgpu_config_size(const char *s, uint64_t *out);

/* The configuration this server runs with (set once by main, read by sessions). */
extern const struct vgpu_config *vgpu_cfg;

#endif
