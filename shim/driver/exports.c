/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cuGetExportTable: the driver's private tables that NVIDIA's runtime
 * (libcudart.so.13, libcudart_static.a in programs and libraries) asks for
 * before it works.  Each table and slot here, and how its meaning was
 * established, is in docs/driver.md ("Export tables"); they are answered in
 * the guest, from what this library knows and through its public calls.
 * A table not known here is refused with CUDA_ERROR_NOT_FOUND and its UUID
 * logged once, so the next CUDA version says what it needs.
 *
 * The integrity table's answer is an HMAC-MD2 (nettle) over what the
 * calling process sees: its pid and thread, the addresses of the tables
 * handed to it, the driver version and devices this library reported; the
 * runtime computes the same and compares, so it is made here, never on the
 * server.
 */
#include <cuda.h>
#include <nettle/hmac.h>
#include <nettle/md2.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "driver_internal.h"

typedef unsigned char uuid_t16[16];

/* ---- CUDART_INTERFACE (6bd5fb6c-...): modules from fatbins, the primary context ---- */

static CUresult rt_module_from_fatbin(CUmodule *mod, const void *fatbin)
{
    if (!mod || !fatbin)
        return CUDA_ERROR_INVALID_VALUE;
    return cuModuleLoadFatBinary(mod, fatbin);
}

/* The device's primary context, as a handle (retained: the session keeps it). */
static CUresult rt_primary_ctx(CUcontext *pctx, CUdevice dev)
{
    if (!pctx)
        return CUDA_ERROR_INVALID_VALUE;
    return cuDevicePrimaryCtxRetain(pctx, dev);
}

static CUresult rt_module_from_fatbin_relocs(CUmodule *mod, const void *fatbin, const char **names,
                                             void **addrs, unsigned count)
{
    if (names || addrs || count) {
        vgpu_shim_log(VGPU_LOG_ERROR, "fatbins with host relocations are not supported by vgpu");
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    return rt_module_from_fatbin(mod, fatbin);
}

static void rt_fatbin_destroyed(const void *fatbin)
{
    (void)fatbin;
}

static CUresult rt_module_hidden(const void *image, CUmodule *mod, CUjit_option *opts, void **vals,
                                 unsigned n)
{
    if (!mod || !image)
        return CUDA_ERROR_INVALID_VALUE;
    return cuModuleLoadDataEx(mod, image, n, opts, vals);
}

static CUresult rt_load_compilers(void)
{
    return CUDA_SUCCESS;          /* the JIT is the server driver's */
}

static void *const cudart_interface[13] = {
    (void *)(sizeof(void *) * 13),
    (void *)rt_module_from_fatbin,
    (void *)rt_primary_ctx,
    NULL, NULL, NULL,             /* primary-context parameters, init, reset: not asked for */
    (void *)rt_module_from_fatbin_relocs,
    (void *)rt_fatbin_destroyed,
    (void *)rt_module_hidden,
    NULL, NULL, NULL,
    (void *)rt_load_compilers,
};

/* ---- TOOLS_TLS (42d85a81-...): the current context, as the tools see it ---- */

static CUresult tls_set_current(CUcontext ctx)
{
    return cuCtxSetCurrent(ctx);
}

static CUresult tls_get_current(CUcontext *pctx)
{
    return cuCtxGetCurrent(pctx);
}

static void *const tools_tls[4] = {
    (void *)(sizeof(void *) * 4), (void *)tls_set_current, (void *)tls_get_current, NULL,
};

/* ---- TOOLS_RUNTIME_CALLBACK_HOOKS (a094798c-...): every callback disabled ---- */

static uint32_t api_callbacks[1024];
static uint32_t internal_callbacks[14];

static void hooks_enable_buffer(volatile uint32_t **flags, size_t *count)
{
    if (flags)
        *flags = api_callbacks;
    if (count)
        *count = sizeof(api_callbacks) / sizeof(api_callbacks[0]);
}

static void hooks_internal_enable_buffer(volatile uint32_t **flags, size_t *count)
{
    if (flags)
        *flags = internal_callbacks;
    if (count)
        *count = sizeof(internal_callbacks) / sizeof(internal_callbacks[0]);
}

static void *const callback_hooks[7] = {
    (void *)(sizeof(void *) * 7), NULL, (void *)hooks_enable_buffer, NULL, NULL, NULL,
    (void *)hooks_internal_enable_buffer,
};

/* ---- CONTEXT_LOCAL_STORAGE (c693336e-...): a value per (context, key) ---- */

typedef void (*cls_dtor)(CUcontext ctx, void *key, void *data);

struct cls_entry {
    uint64_t ctx;
    void *key, *data;
    cls_dtor dtor;
    struct cls_entry *next;
};

static pthread_mutex_t cls_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cls_entry *cls;

static CUresult cls_ctx(CUcontext ctx, uint64_t *out)
{
    *out = ctx ? (uint64_t)(uintptr_t)ctx : vgpu_drv_context();
    return *out ? CUDA_SUCCESS : CUDA_ERROR_INVALID_CONTEXT;
}

static CUresult cls_put(CUcontext ctx, void *key, void *data, cls_dtor dtor)
{
    struct cls_entry *e;
    uint64_t c;
    CUresult st = cls_ctx(ctx, &c);

    if (st != CUDA_SUCCESS)
        return st;
    pthread_mutex_lock(&cls_lock);
    for (e = cls; e; e = e->next)
        if (e->ctx == c && e->key == key)
            break;
    if (!e && (e = calloc(1, sizeof(*e)))) {
        e->next = cls;
        cls = e;
    }
    if (e) {
        e->ctx = c;
        e->key = key;
        e->data = data;
        e->dtor = dtor;
    }
    pthread_mutex_unlock(&cls_lock);
    return e ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}

static CUresult cls_delete(CUcontext ctx, void *key)
{
    struct cls_entry **p, *e = NULL;
    uint64_t c;
    CUresult st = cls_ctx(ctx, &c);

    if (st != CUDA_SUCCESS)
        return st;
    pthread_mutex_lock(&cls_lock);
    for (p = &cls; *p; p = &(*p)->next)
        if ((*p)->ctx == c && (*p)->key == key) {
            e = *p;
            *p = e->next;
            break;
        }
    pthread_mutex_unlock(&cls_lock);
    free(e);
    return e ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

static CUresult cls_get(void **data, CUcontext ctx, void *key)
{
    struct cls_entry *e;
    uint64_t c;
    CUresult st;

    if (!data)
        return CUDA_ERROR_INVALID_VALUE;
    if ((st = cls_ctx(ctx, &c)) != CUDA_SUCCESS)
        return st;
    pthread_mutex_lock(&cls_lock);
    for (e = cls; e; e = e->next)
        if (e->ctx == c && e->key == key) {
            *data = e->data;
            break;
        }
    pthread_mutex_unlock(&cls_lock);
    return e ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

/* No size slot in this one: the functions start at 0, a NULL ends them. */
static void *const context_local_storage[4] = {
    (void *)cls_put, (void *)cls_delete, (void *)cls_get, NULL,
};

VGPU_HIDDEN void vgpu_drv_context_destroyed(uint64_t ctx)
{
    struct cls_entry **p = &cls, *dead = NULL;

    pthread_mutex_lock(&cls_lock);
    while (*p) {
        struct cls_entry *e = *p;

        if (e->ctx == ctx) {
            *p = e->next;
            e->next = dead;
            dead = e;
        } else {
            p = &e->next;
        }
    }
    pthread_mutex_unlock(&cls_lock);
    while (dead) {
        struct cls_entry *e = dead;

        dead = e->next;
        if (e->dtor)
            e->dtor((CUcontext)(uintptr_t)ctx, e->key, e->data);
        free(e);
    }
}

/* ---- GREEN_CONTEXT (263e8860-...): every context is an ordinary one ---- */

static CUresult green_ctx_type(CUcontext ctx, int *type, CUcontext *primary)
{
    (void)ctx;
    (void)primary;
    if (type)
        *type = 0;
    return CUDA_SUCCESS;
}

static int green_supported(void)
{
    return 0;
}

static void *const green_context[4] = {
    (void *)(sizeof(void *) * 4), NULL, (void *)green_ctx_type, (void *)green_supported,
};

/* ---- INTEGRITY_CHECK (d4082055-...): an HMAC-MD2 over what this process sees ---- */

static const uint8_t integrity_key[16] = {
    0x14, 0x6a, 0xdd, 0xae, 0x53, 0xa9, 0xa7, 0x52, 0xaa, 0x08, 0x41, 0x36, 0x0b, 0xf5, 0x5a, 0x9f,
};

static CUresult integrity_check(uint32_t version, uint64_t seconds, uint64_t result[2]);
static void *const integrity[3] = { (void *)(sizeof(void *) * 3), (void *)integrity_check, NULL };

static void put32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

static void put64(uint8_t *p, uint64_t v)
{
    memcpy(p, &v, 8);
}

static CUresult integrity_check(uint32_t version, uint64_t seconds, uint64_t result[2])
{
    struct {
        struct md2_ctx outer, inner, state;
    } h;
    uint8_t head[48], dev[28], digest[MD2_DIGEST_SIZE];
    int driver = 0, count = 0;
    CUresult st;

    if (!result)
        return CUDA_ERROR_INVALID_VALUE;
    if (version % 10 == 0 || version % 10 == 1) {
        result[0] = version % 10 ? 0x1841181C03CB675Cull : 0x3341181C03CB675Cull;
        result[1] = 0x8ED383AA1F4CD1E8ull;
        return CUDA_SUCCESS;
    }
    if ((st = cuDriverGetVersion(&driver)) != CUDA_SUCCESS ||
        (st = cuDeviceGetCount(&count)) != CUDA_SUCCESS)
        return st;
    put32(head, (uint32_t)driver);
    put32(head + 4, version);
    put32(head + 8, (uint32_t)getpid());
    put32(head + 12, (uint32_t)(uintptr_t)pthread_self());
    put64(head + 16, (uint64_t)(uintptr_t)cudart_interface);
    put64(head + 24, (uint64_t)(uintptr_t)integrity);
    put64(head + 32, (uint64_t)(uintptr_t)integrity_check);
    put64(head + 40, seconds);
    hmac_set_key(&h.outer, &h.inner, &h.state, &nettle_md2, sizeof(integrity_key), integrity_key);
    hmac_update(&h.state, &nettle_md2, sizeof(head), head);
    for (int d = 0; d < count; d++) {
        CUuuid uuid;
        int domain = 0, bus = 0, slot = 0;

        if ((st = cuDeviceGetUuid_v2(&uuid, d)) != CUDA_SUCCESS ||
            (st = cuDeviceGetAttribute(&domain, CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID, d)) ||
            (st = cuDeviceGetAttribute(&bus, CU_DEVICE_ATTRIBUTE_PCI_BUS_ID, d)) ||
            (st = cuDeviceGetAttribute(&slot, CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID, d)))
            return st;
        memcpy(dev, uuid.bytes, 16);
        put32(dev + 16, (uint32_t)domain);
        put32(dev + 20, (uint32_t)bus);
        put32(dev + 24, (uint32_t)slot);
        hmac_update(&h.state, &nettle_md2, sizeof(dev), dev);
    }
    hmac_digest(&h.outer, &h.inner, &h.state, &nettle_md2, sizeof(digest), digest);
    memcpy(result, digest, sizeof(digest));
    return CUDA_SUCCESS;
}

/* ---- the directory ---- */

static const struct {
    uuid_t16 id;
    const void *table;
    const char *name;
} tables[] = {
    { { 0x6b, 0xd5, 0xfb, 0x6c, 0x5b, 0xf4, 0xe7, 0x4a, 0x89, 0x87, 0xd9, 0x39, 0x12, 0xfd, 0x9d, 0xf9 },
      cudart_interface, "cudart interface" },
    { { 0x42, 0xd8, 0x5a, 0x81, 0x23, 0xf6, 0xcb, 0x47, 0x82, 0x98, 0xf6, 0xe7, 0x8a, 0x3a, 0xec, 0xdc },
      tools_tls, "tools TLS" },
    { { 0xa0, 0x94, 0x79, 0x8c, 0x2e, 0x74, 0x2e, 0x74, 0x93, 0xf2, 0x08, 0x00, 0x20, 0x0c, 0x0a, 0x66 },
      callback_hooks, "tools runtime callback hooks" },
    { { 0xc6, 0x93, 0x33, 0x6e, 0x11, 0x21, 0xdf, 0x11, 0xa8, 0xc3, 0x68, 0xf3, 0x55, 0xd8, 0x95, 0x93 },
      context_local_storage, "context-local storage" },
    { { 0x26, 0x3e, 0x88, 0x60, 0x7c, 0xd2, 0x61, 0x43, 0x92, 0xf6, 0xbb, 0xd5, 0x00, 0x6d, 0xfa, 0x7e },
      green_context, "green context" },
    { { 0xd4, 0x08, 0x20, 0x55, 0xbd, 0xe6, 0x70, 0x4b, 0x8d, 0x34, 0xba, 0x12, 0x3c, 0x66, 0xe1, 0xf2 },
      integrity, "integrity check" },
    { { 0x21, 0x31, 0x8c, 0x60, 0x97, 0x14, 0x32, 0x48, 0x8c, 0xa6, 0x41, 0xff, 0x73, 0x24, 0xc8, 0xf2 },
      vgpu_drv_tools_context, "tools context" },
    { { 0x6e, 0x16, 0x3f, 0xbe, 0xb9, 0x58, 0x44, 0x4d, 0x83, 0x5c, 0xe1, 0x82, 0xaf, 0xf1, 0x99, 0x1e },
      vgpu_drv_tools_module, "tools module" },
    { { 0x17, 0x34, 0xdc, 0x26, 0x80, 0x0d, 0x47, 0x45, 0x87, 0x26, 0xc0, 0xf1, 0xe7, 0xdd, 0x8b, 0xca },
      vgpu_drv_cluster_prototype, "cluster prototype" },
};

/* Asked for first by the CUDA 13.0 runtime and refused on purpose (docs/driver.md). */
static const uuid_t16 refused_quietly = {
    0xf8, 0xcf, 0xf9, 0x51, 0x21, 0x46, 0x8b, 0x4e, 0xb9, 0xe2, 0xfb, 0x46, 0x9e, 0x7c, 0x0d, 0xd9,
};

#define UNKNOWN_SAID_MAX 32

VGPU_EXPORT CUresult cuGetExportTable(const void **table, const CUuuid *id)
{
    static pthread_mutex_t said_lock = PTHREAD_MUTEX_INITIALIZER;
    static uuid_t16 said[UNKNOWN_SAID_MAX];
    static int nsaid;
    bool known = false;
    char hex[33];

    if (!table || !id)
        return CUDA_ERROR_INVALID_VALUE;
    for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++)
        if (!memcmp(tables[i].id, id->bytes, 16)) {
            *table = tables[i].table;
            return CUDA_SUCCESS;
        }
    *table = NULL;
    if (!memcmp(refused_quietly, id->bytes, 16))
        return CUDA_ERROR_NOT_FOUND;
    pthread_mutex_lock(&said_lock);
    for (int i = 0; i < nsaid; i++)
        known |= !memcmp(said[i], id->bytes, 16);
    if (!known && nsaid < UNKNOWN_SAID_MAX)
        memcpy(said[nsaid++], id->bytes, 16);
    pthread_mutex_unlock(&said_lock);
    if (!known) {
        for (int i = 0; i < 16; i++)
            snprintf(hex + 2 * i, 3, "%02x", (unsigned char)id->bytes[i]);
        vgpu_shim_log(VGPU_LOG_WARN, "cuGetExportTable: private table %s is not known to vgpu; "
                      "refused (CUDA_ERROR_NOT_FOUND)", hex);
    }
    return CUDA_ERROR_NOT_FOUND;
}
