/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Registration and launches.  nvcc's static initialisers register each
 * fatbin with its kernels and variables before main(); the shim only records
 * them, and uploads a module on its first use: the image's SHA-256 first,
 * the image itself only when the server's cache lacks it.  Kernels are known
 * to the server by the guest's host-stub address; their parameter layout
 * comes from the server (cudaFuncGetParamInfo on the real runtime) and is
 * cached here.
 */
#include <cuda_runtime_api.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../shim_internal.h"
#include "cudart_calltable.h"
#include "manual.pb-c.h"
#include "vgpu/sha256.h"

#define FATBIN_WRAPPER_MAGIC 0x466243B1u
#define FATBIN_HEADER_MAGIC 0xBA55ED50u

#define MAX_IMAGES 64

struct module {
    int version;
    int nimg;
    const uint8_t *image[MAX_IMAGES];   /* version 2: linked image, then prelinked ones */
    size_t size[MAX_IMAGES];
    uint64_t server_id;          /* 0 until uploaded */
    int status;                  /* why the upload failed, sticky */
    struct module *next;
};

struct entry {                   /* a kernel or a variable */
    struct module *mod;
    const void *host;
    char *name;
    size_t size;
    bool is_var, constant, managed;
    bool registered;             /* sent to the server */
    bool layout_known;
    uint64_t function;           /* its cudaFunction_t on the server (cudaGetFuncBySymbol), or 0 */
    int nparams;
    uint32_t *off, *psize;
    size_t param_bytes;
    struct entry *next;
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;

/* reg_lock is held across calls to the server (uploads): no log callback runs inside them. */
static void reg_enter(void)
{
    pthread_mutex_lock(&reg_lock);
    vgpu_client_quiet(vgpu_client_get(), 1);
}

static void reg_leave(void)
{
    vgpu_client_quiet(vgpu_client_get(), -1);
    pthread_mutex_unlock(&reg_lock);
}

static struct module *modules;
static struct entry *entries;

struct launch_config {
    dim3 grid, block;
    size_t shmem;
    void *stream;
};

#define CONFIG_DEPTH 16
static __thread struct launch_config config_stack[CONFIG_DEPTH];
static __thread int config_top;

/* The fatbin's size from its header: header_size + fat_size. */
static size_t fatbin_size(const uint8_t *p)
{
    uint32_t magic;
    uint16_t hsize;
    uint64_t fsize;

    memcpy(&magic, p, 4);
    memcpy(&hsize, p + 6, 2);
    memcpy(&fsize, p + 8, 8);
    return magic == FATBIN_HEADER_MAGIC ? (size_t)hsize + (size_t)fsize : 0;
}

VGPU_EXPORT void **__cudaRegisterFatBinary(void *fatCubin)
{
    const struct { int magic, version; const void *data; void *const *extra; } *w = fatCubin;
    struct module *m = calloc(1, sizeof(*m));

    if (!m)
        return NULL;
    if (w && (uint32_t)w->magic == FATBIN_WRAPPER_MAGIC && w->data &&
        (w->version == 1 || w->version == 2)) {
        m->version = w->version;
        m->image[0] = w->data;
        m->size[0] = fatbin_size(w->data);
        m->nimg = m->size[0] ? 1 : 0;
        /* -rdc: the prelinked images, a NULL-terminated list */
        for (void *const *l = w->version == 2 ? w->extra : NULL; m->nimg && l && *l; l++) {
            if (m->nimg == MAX_IMAGES || !(m->size[m->nimg] = fatbin_size(*l))) {
                m->nimg = 0;
                break;
            }
            m->image[m->nimg++] = *l;
        }
    }
    if (!m->nimg) {
        vgpu_shim_log(VGPU_LOG_ERROR, "a fatbin in this program has a format vgpu does not "
                      "support (wrapper version %d); its kernels fail with "
                      "cudaErrorInvalidKernelImage", w ? w->version : -1);
        m->status = cudaErrorInvalidKernelImage;
    }
    reg_enter();
    m->next = modules;
    modules = m;
    reg_leave();
    return (void **)m;
}

VGPU_EXPORT void __cudaRegisterFatBinaryEnd(void **handle)
{
    (void)handle;
}

VGPU_EXPORT void __cudaUnregisterFatBinary(void **handle)
{
    /* The process is exiting; the server's session ends with it. */
    (void)handle;
}

static int upload(struct module *m);
static struct entry *find_entry(const void *host, bool is_var);

/* Tells the program's code no managed variable can be reached: it must not go on to touch NULL. */
static void managed_vars_failed(const char *why, int st)
{
    vgpu_shim_log(VGPU_LOG_ERROR, "this program's __managed__ variables could not be set up: %s "
                  "(%s); it cannot run", why, vgpu_shim_error_name(st));
    fprintf(stderr, "vgpu: this program's __managed__ variables could not be set up: %s (%s)\n",
            why, vgpu_shim_error_name(st));
    exit(EXIT_FAILURE);
}

/*
 * Called by the program's code before its first access to a __managed__
 * variable of module handle (nvcc's __nv_init_managed_rt): the module goes
 * to the server, whose runtime sets its managed variables up; each one's
 * shadow is mapped at the address the server reports (managed.c) and the
 * program's pointer to the variable set to it.  Returns 1, or does not
 * return: a variable left unset would be a NULL dereference in the
 * program's own code.
 */
VGPU_EXPORT char __cudaInitModule(void **handle)
{
    struct module *m = (struct module *)handle;
    Vgpu__Manual__FatbinEndArgs a = VGPU__MANUAL__FATBIN_END_ARGS__INIT;
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    Vgpu__Manual__ManagedVarsRet *r = NULL;
    int st;

    reg_enter();
    st = upload(m);
    reg_leave();
    if (st != cudaSuccess)
        managed_vars_failed("the module did not reach the GPU server", st);
    a.module = m->server_id;
    st = vgpu_shim_call(VGPU_CUDART_ID___cudaInitModule, "__cudaInitModule", &a.base, &req, &rep);
    if (st == cudaSuccess && !(r = vgpu__manual__managed_vars_ret__unpack(NULL, rep.ret_len, rep.ret)))
        st = cudaErrorUnknown;
    vgpu_shim_rep_release(&rep);
    if (st != cudaSuccess)
        managed_vars_failed("the GPU server's runtime did not initialize them", st);
    if (r->n_host != r->n_address || r->n_host != r->n_size)
        managed_vars_failed("the GPU server's answer does not describe them", cudaErrorUnknown);
    for (size_t i = 0; i < r->n_host; i++) {
        struct entry *e = find_entry((const void *)(uintptr_t)r->host[i], true);
        void *p = (void *)(uintptr_t)r->address[i];
        int rc;

        if (!e || !e->managed || e->mod != m || r->size[i] != e->size)
            managed_vars_failed("the GPU server named a variable the program did not register",
                                cudaErrorUnknown);
        rc = vgpu_managed_add(p, e->size);
        if (rc != 0 && !vgpu_managed_holds(p, e->size)) {
            char why[160];

            snprintf(why, sizeof(why), "'%s' lives at %p on the GPU server, which is taken in this "
                     "process (%s)", e->name, p, strerror(-rc));
            managed_vars_failed(why, cudaErrorMemoryAllocation);
        }
        *(void **)e->host = p;
    }
    vgpu__manual__managed_vars_ret__free_unpacked(r, NULL);
    return 1;
}

static void add_entry(void **handle, const void *host, const char *name, size_t size,
                      bool is_var, bool constant, bool managed)
{
    struct entry *e = calloc(1, sizeof(*e));

    if (!e || !(e->name = strdup(name ? name : ""))) {
        free(e);
        return;
    }
    e->mod = (struct module *)handle;
    e->host = host;
    e->size = size;
    e->is_var = is_var;
    e->constant = constant;
    e->managed = managed;
    reg_enter();
    e->next = entries;
    entries = e;
    reg_leave();
}

VGPU_EXPORT void __cudaRegisterFunction(void **handle, const char *hostFun, char *deviceFun,
                                        const char *deviceName, int thread_limit, uint3 *tid,
                                        uint3 *bid, dim3 *bDim, dim3 *gDim, int *wSize)
{
    (void)deviceFun; (void)thread_limit; (void)tid; (void)bid; (void)bDim; (void)gDim; (void)wSize;
    add_entry(handle, hostFun, deviceName, 0, false, false, false);
}

VGPU_EXPORT void __cudaRegisterVar(void **handle, char *hostVar, char *deviceAddress,
                                   const char *deviceName, int ext, size_t size, int constant,
                                   int global)
{
    (void)deviceAddress; (void)ext; (void)global;
    add_entry(handle, hostVar, deviceName, size, true, constant != 0, false);
}

VGPU_EXPORT void __cudaRegisterManagedVar(void **handle, void **hostVarPtrAddress,
                                          char *deviceAddress, const char *deviceName, int ext,
                                          size_t size, int constant, int global)
{
    (void)deviceAddress; (void)ext; (void)global;
    add_entry(handle, hostVarPtrAddress, deviceName, size, true, constant != 0, true);
}

/* Internal registration hooks of newer toolchains: accepted, not used. */
VGPU_EXPORT void __cudaRegisterHostVar(void **handle, const char *deviceName, char *hostVar,
                                       size_t size)
{
    (void)handle; (void)deviceName; (void)hostVar; (void)size;
}

VGPU_EXPORT void __cudaRegisterUnifiedTable(void *table)
{
    (void)table;
}

VGPU_EXPORT cudaError_t __cudaGetProcAddress(const char *symbol, void **funcPtr, int version,
                                             unsigned long long flags)
{
    (void)version; (void)flags;
    if (funcPtr)
        *funcPtr = NULL;
    return vgpu_shim_unsupported(VGPU_CUDART_ID___cudaGetProcAddress,
                                 symbol ? symbol : "__cudaGetProcAddress",
                                 "runtime entry points by name are not remoted yet");
}

static struct entry *find_entry(const void *host, bool is_var)
{
    struct entry *e;

    reg_enter();
    for (e = entries; e; e = e->next)
        if (e->host == host && e->is_var == is_var)
            break;
    reg_leave();
    return e;
}

/* Upload m and register all its entries, once.  Called with reg_lock held. */
static int upload(struct module *m)
{
    Vgpu__Manual__FatbinArgs a = VGPU__MANUAL__FATBIN_ARGS__INIT;
    uint8_t sha[MAX_IMAGES][VGPU_SHA256_LEN];
    ProtobufCBinaryData hashes[MAX_IMAGES];
    uint64_t sizes[MAX_IMAGES];
    int st;

    if (m->server_id || m->status)
        return m->status;
    if (m->nimg > VGPU_CALL_MAX_SEG) {
        vgpu_shim_log(VGPU_LOG_ERROR, "a -rdc fatbin with %d images is more than vgpu sends (%d)",
                      m->nimg, VGPU_CALL_MAX_SEG);
        return m->status = cudaErrorInvalidKernelImage;
    }
    for (int i = 0; i < m->nimg; i++) {
        vgpu_sha256(m->image[i], m->size[i], sha[i]);
        hashes[i].data = sha[i];
        hashes[i].len = VGPU_SHA256_LEN;
        sizes[i] = m->size[i];
    }
    a.n_sha256 = a.n_size = (size_t)m->nimg;
    a.sha256 = hashes;
    a.size = sizes;
    a.version = m->version;
    for (int pass = 0; pass < 2 && !m->server_id; pass++) {
        struct vgpu_call_req req = { 0 };
        struct vgpu_call_rep rep = { 0 };
        Vgpu__Manual__FatbinRet *r;

        a.with_image = pass == 1;
        for (int i = 0; a.with_image && i < m->nimg; i++) {
            req.seg[i].data = m->image[i];
            req.seg[i].len = m->size[i];
            req.nseg = i + 1;
        }
        st = vgpu_shim_call(VGPU_CUDART_ID___cudaRegisterFatBinary, "__cudaRegisterFatBinary",
                            &a.base, &req, &rep);
        if (st == cudaSuccess) {
            r = vgpu__manual__fatbin_ret__unpack(NULL, rep.ret_len, rep.ret);
            if (r) {
                m->server_id = r->module;
                vgpu__manual__fatbin_ret__free_unpacked(r, NULL);
            } else {
                st = cudaErrorUnknown;
            }
        }
        vgpu_shim_rep_release(&rep);
        if (st != cudaSuccess)
            return st;          /* transient: a later use tries again */
    }
    if (!m->server_id)
        return cudaErrorUnknown;
    for (struct entry *e = entries; e; e = e->next) {
        Vgpu__Manual__RegisterArgs ra = VGPU__MANUAL__REGISTER_ARGS__INIT;
        struct vgpu_call_req req = { 0 };
        struct vgpu_call_rep rep = { 0 };

        if (e->mod != m || e->registered)
            continue;
        ra.module = m->server_id;
        ra.host = (uint64_t)(uintptr_t)e->host;
        ra.name = e->name;
        ra.size = e->size;
        ra.constant = e->constant;
        ra.is_var = e->is_var;
        ra.managed = e->managed;
        st = e->managed ? vgpu_shim_call(VGPU_CUDART_ID___cudaRegisterManagedVar,
                                         "__cudaRegisterManagedVar", &ra.base, &req, &rep)
           : e->is_var ? vgpu_shim_call(VGPU_CUDART_ID___cudaRegisterVar, "__cudaRegisterVar",
                                        &ra.base, &req, &rep)
                       : vgpu_shim_call(VGPU_CUDART_ID___cudaRegisterFunction,
                                        "__cudaRegisterFunction", &ra.base, &req, &rep);
        vgpu_shim_rep_release(&rep);
        if (st != cudaSuccess)
            return m->status = st;
        e->registered = true;
    }
    {
        Vgpu__Manual__FatbinEndArgs end = VGPU__MANUAL__FATBIN_END_ARGS__INIT;
        struct vgpu_call_req req = { 0 };
        struct vgpu_call_rep rep = { 0 };

        end.module = m->server_id;
        st = vgpu_shim_call(VGPU_CUDART_ID___cudaRegisterFatBinaryEnd, "__cudaRegisterFatBinaryEnd",
                            &end.base, &req, &rep);
        vgpu_shim_rep_release(&rep);
        if (st != cudaSuccess)
            return m->status = st;
    }
    return cudaSuccess;
}

/* Makes sure e's module is on the server and, for a kernel, its layout is known. */
static int prepare(struct entry *e)
{
    int st;

    reg_enter();
    st = upload(e->mod);
    if (st == cudaSuccess && !e->is_var && !e->layout_known) {
        Vgpu__Manual__RegisterArgs a = VGPU__MANUAL__REGISTER_ARGS__INIT;
        struct vgpu_call_req req = { 0 };
        struct vgpu_call_rep rep = { 0 };
        Vgpu__Manual__RegisterRet *r;

        a.host = (uint64_t)(uintptr_t)e->host;
        st = vgpu_shim_call(VGPU_CUDART_ID_cudaFuncGetParamInfo, "cudaFuncGetParamInfo", &a.base,
                            &req, &rep);
        if (st == cudaSuccess) {
            r = vgpu__manual__register_ret__unpack(NULL, rep.ret_len, rep.ret);
            if (!r || r->n_param_offset != r->n_param_size || r->n_param_size > 4096) {
                st = cudaErrorUnknown;
            } else {
                e->off = calloc(r->n_param_offset + 1, sizeof(*e->off));
                e->psize = calloc(r->n_param_offset + 1, sizeof(*e->psize));
                if (!e->off || !e->psize) {
                    st = cudaErrorMemoryAllocation;
                } else {
                    e->nparams = (int)r->n_param_offset;
                    for (int i = 0; i < e->nparams; i++) {
                        e->off[i] = r->param_offset[i];
                        e->psize[i] = r->param_size[i];
                        if ((size_t)e->off[i] + e->psize[i] > e->param_bytes)
                            e->param_bytes = (size_t)e->off[i] + e->psize[i];
                    }
                    e->layout_known = true;
                }
            }
            if (r)
                vgpu__manual__register_ret__free_unpacked(r, NULL);
        }
        vgpu_shim_rep_release(&rep);
    }
    reg_leave();
    return st;
}

/* Module upload for a variable; used by the symbol calls. */
VGPU_HIDDEN int vgpu_shim_symbol(const void *symbol, uint64_t *key)
{
    struct entry *e = find_entry(symbol, true);
    int st;

    if (!e)
        return cudaErrorInvalidSymbol;
    if (e->managed) {
        vgpu_shim_log(VGPU_LOG_ERROR, "__managed__ variable %s is not supported by vgpu yet "
                      "(managed memory needs page faults across the VM boundary)", e->name);
        return cudaErrorNotSupported;
    }
    st = prepare(e);
    *key = (uint64_t)(uintptr_t)e->host;
    return st;
}

/* A kernel named by its host stub, with module and layout ready. */
/*
 * The kernel's cudaFunction_t: its module goes to the server, whose runtime
 * answers for the server's stand-in stub; the handle is the session's from
 * then on (driver calls take it: graph kernel nodes, graph.c).
 */
VGPU_EXPORT cudaError_t cudaGetFuncBySymbol(cudaFunction_t *functionPtr, const void *symbolPtr)
{
    struct entry *e = find_entry(symbolPtr, false);
    Vgpu__Manual__RegisterArgs a = VGPU__MANUAL__REGISTER_ARGS__INIT;
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    Vgpu__Manual__FuncBySymbolRet *r;
    int st;

    if (!functionPtr)
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    if (!e)
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidDeviceFunction);
    if (e->function) {
        *functionPtr = (cudaFunction_t)(uintptr_t)e->function;
        return cudaSuccess;
    }
    reg_enter();
    st = upload(e->mod);
    reg_leave();
    if (st != cudaSuccess)
        return (cudaError_t)vgpu_shim_status(st);
    a.host = (uint64_t)(uintptr_t)e->host;
    st = vgpu_shim_call(VGPU_CUDART_ID_cudaGetFuncBySymbol, "cudaGetFuncBySymbol", &a.base, &req, &rep);
    if (st == cudaSuccess) {
        r = vgpu__manual__func_by_symbol_ret__unpack(NULL, rep.ret_len, rep.ret);
        if (r && r->function) {
            e->function = r->function;
            *functionPtr = (cudaFunction_t)(uintptr_t)r->function;
        } else {
            st = vgpu_shim_status(cudaErrorUnknown);
        }
        if (r)
            vgpu__manual__func_by_symbol_ret__free_unpacked(r, NULL);
    }
    vgpu_shim_rep_release(&rep);
    return (cudaError_t)st;
}

bool vgpu_shim_is_stub(const void *p)
{
    return find_entry(p, false) != NULL;
}

bool vgpu_shim_is_function(const void *p)
{
    return vgpu_shim_stub_of_function((uint64_t)(uintptr_t)p) != NULL;
}

const void *vgpu_shim_stub_of_function(uint64_t function)
{
    const void *stub = NULL;

    reg_enter();
    for (struct entry *e = entries; e && !stub; e = e->next)
        if (!e->is_var && function && e->function == function)
            stub = e->host;
    reg_leave();
    return stub;
}

VGPU_HIDDEN int vgpu_shim_kernel(const void *func, uint64_t *key)
{
    struct entry *e = find_entry(func, false);

    if (!e)
        return cudaErrorInvalidDeviceFunction;
    *key = (uint64_t)(uintptr_t)e->host;
    return prepare(e);
}

VGPU_HIDDEN int vgpu_shim_param_info(const void *func, size_t index, size_t *off, size_t *size)
{
    struct entry *e = find_entry(func, false);
    int st;

    if (!e)
        return cudaErrorInvalidDeviceFunction;
    st = prepare(e);
    if (st != cudaSuccess)
        return st;
    if (index >= (size_t)e->nparams)
        return cudaErrorInvalidValue;
    if (off)
        *off = e->off[index];
    if (size)
        *size = e->psize[index];
    return cudaSuccess;
}

static int launch(struct entry *e, dim3 grid, dim3 block, void **args, size_t shmem,
                  cudaStream_t stream, bool ptsz, bool coop)
{
    Vgpu__Manual__LaunchArgs a = VGPU__MANUAL__LAUNCH_ARGS__INIT;
    Vgpu__Manual__Dim3 g = VGPU__MANUAL__DIM3__INIT, b = VGPU__MANUAL__DIM3__INIT;
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    uint8_t stackbuf[4096], *params = stackbuf;
    int st;

    if (!e)
        return vgpu_shim_status(cudaErrorInvalidDeviceFunction);
    st = prepare(e);
    if (st != cudaSuccess)
        return vgpu_shim_status(st);
    if (e->param_bytes > sizeof(stackbuf) && !(params = malloc(e->param_bytes)))
        return vgpu_shim_status(cudaErrorMemoryAllocation);
    memset(params, 0, e->param_bytes);
    for (int i = 0; i < e->nparams; i++)
        if (args && args[i])
            memcpy(params + e->off[i], args[i], e->psize[i]);
    g.x = grid.x; g.y = grid.y; g.z = grid.z;
    b.x = block.x; b.y = block.y; b.z = block.z;
    a.host = (uint64_t)(uintptr_t)e->host;
    a.grid = &g;
    a.block = &b;
    a.shared_mem = shmem;
    a.stream = (uint64_t)(uintptr_t)stream;
    a.ptsz = ptsz;
    a.cooperative = coop;
    req.seg[0].data = params;
    req.seg[0].len = e->param_bytes;
    req.nseg = 1;
    req.flags = VGPU_FN_ASYNC | VGPU_FN_WORK;   /* managed memory's host side goes first */
    st = vgpu_shim_call(VGPU_CUDART_ID___cudaLaunchKernel, "cudaLaunchKernel", &a.base, &req, &rep);
    vgpu_shim_rep_release(&rep);
    if (params != stackbuf)
        free(params);
    return st;
}

VGPU_EXPORT unsigned __cudaPushCallConfiguration(dim3 gridDim, dim3 blockDim, size_t sharedMem,
                                                 void *stream)
{
    if (config_top == CONFIG_DEPTH)
        return 1;
    config_stack[config_top].grid = gridDim;
    config_stack[config_top].block = blockDim;
    config_stack[config_top].shmem = sharedMem;
    config_stack[config_top].stream = stream;
    config_top++;
    return 0;
}

VGPU_EXPORT cudaError_t __cudaPopCallConfiguration(dim3 *gridDim, dim3 *blockDim, size_t *sharedMem,
                                                   void *stream)
{
    if (config_top == 0)
        return cudaErrorInvalidConfiguration;
    config_top--;
    *gridDim = config_stack[config_top].grid;
    *blockDim = config_stack[config_top].block;
    *sharedMem = config_stack[config_top].shmem;
    *(void **)stream = config_stack[config_top].stream;
    return cudaSuccess;
}

/* cudaKernel_t in the guest is the shim's record of the kernel. */
VGPU_EXPORT cudaError_t __cudaGetKernel(cudaKernel_t *kernel, const void *func)
{
    struct entry *e = find_entry(func, false);

    if (!e)
        return vgpu_shim_status(cudaErrorInvalidDeviceFunction);
    *kernel = (cudaKernel_t)(void *)e;
    return cudaSuccess;
}

static struct entry *entry_of_kernel(cudaKernel_t k)
{
    struct entry *e;

    reg_enter();
    for (e = entries; e; e = e->next)
        if ((void *)e == (void *)k && !e->is_var)
            break;
    reg_leave();
    return e;
}

VGPU_EXPORT cudaError_t __cudaLaunchKernel(cudaKernel_t kernel, dim3 gridDim, dim3 blockDim,
                                           void **args, size_t sharedMem, cudaStream_t stream)
{
    return (cudaError_t)launch(entry_of_kernel(kernel), gridDim, blockDim, args, sharedMem, stream,
                               false, false);
}

VGPU_EXPORT cudaError_t __cudaLaunchKernel_ptsz(cudaKernel_t kernel, dim3 gridDim, dim3 blockDim,
                                                void **args, size_t sharedMem, cudaStream_t stream)
{
    return (cudaError_t)launch(entry_of_kernel(kernel), gridDim, blockDim, args, sharedMem, stream,
                               true, false);
}

VGPU_EXPORT cudaError_t cudaLaunchKernel(const void *func, dim3 gridDim, dim3 blockDim, void **args,
                                         size_t sharedMem, cudaStream_t stream)
{
    struct entry *e = find_entry(func, false);

    /* a library's cudaKernel_t, which the runtime launches too (library.c) */
    if (!e && vgpu_shim_library_kernel(func))
        return vgpu_shim_launch_library_kernel(func, gridDim, blockDim, args, sharedMem, stream,
                                               false);
    return (cudaError_t)launch(e, gridDim, blockDim, args, sharedMem, stream, false, false);
}

VGPU_EXPORT cudaError_t cudaLaunchKernel_ptsz(const void *func, dim3 gridDim, dim3 blockDim,
                                              void **args, size_t sharedMem, cudaStream_t stream)
{
    struct entry *e = find_entry(func, false);

    if (!e && vgpu_shim_library_kernel(func))
        return vgpu_shim_launch_library_kernel(func, gridDim, blockDim, args, sharedMem, stream,
                                               true);
    return (cudaError_t)launch(e, gridDim, blockDim, args, sharedMem, stream, true, false);
}

VGPU_EXPORT cudaError_t cudaLaunchCooperativeKernel(const void *func, dim3 gridDim, dim3 blockDim,
                                                    void **args, size_t sharedMem, cudaStream_t stream)
{
    return (cudaError_t)launch(find_entry(func, false), gridDim, blockDim, args, sharedMem, stream,
                               false, true);
}

VGPU_EXPORT cudaError_t cudaLaunchCooperativeKernel_ptsz(const void *func, dim3 gridDim,
                                                         dim3 blockDim, void **args,
                                                         size_t sharedMem, cudaStream_t stream)
{
    return (cudaError_t)launch(find_entry(func, false), gridDim, blockDim, args, sharedMem, stream,
                               true, true);
}

VGPU_EXPORT cudaError_t cudaGetKernel(cudaKernel_t *kernelPtr, const void *entryFuncAddr)
{
    return __cudaGetKernel(kernelPtr, entryFuncAddr);
}
