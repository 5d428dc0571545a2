/* SPDX-License-Identifier: Apache-2.0 */
/*
 * iso_intruder_raw: a client of the isolation test that speaks the wire
 * protocol itself, as a hostile guest can.  The shim refuses a kernel or a
 * variable its program never registered before anything is sent, and it
 * hides module numbers; this client sends client A's values to the server
 * anyway: A's module number while it holds no module, A's buffer, stream
 * and event while it holds nothing, and A's kernel and variable host
 * addresses once it holds a module, kernel and variable of its own (from
 * FATBIN, registered under host addresses of its choosing, which cannot be
 * A's), so a lookup that ignored the address would be caught.  Every
 * intrusion must be refused by the server's checks; the control calls on
 * its own kernel and variable must succeed.
 *
 *   iso_intruder_raw SOCKET WORK FATBIN   the intrusions (A's values in WORK/owner.vals;
 *                                         FATBIN from raw_kernel.cu)
 *   iso_intruder_raw SOCKET --missing     a generated call the server's runtime
 *                                         lacks (run against the fake runtime,
 *                                         which leaves cudaCtxResetPersistingL2Cache
 *                                         out on purpose): it must get
 *                                         cudaErrorNotSupported, and the session
 *                                         must go on serving
 *
 * Prints "CALL -> cudaErrorXxx" per call, names from the server's own error
 * table (the one the shim gets); exit 0 unless the connection or a file failed.
 */
#include <cuda_runtime_api.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cudart.pb-c.h"
#include "cudart_calltable.h"
#include "vgpu/apis.h"
#include "iso_vals.h"
#include "manual.pb-c.h"
#include "rawclient.h"
#include "vgpu/callgen.h"
#include "vgpu/sha256.h"
#include "vgpu/wire.h"

static struct vgpu_rawclient conn = { .fd = -1, .pass_fd = -1 };
static const Vgpu__Wire__ErrorTable *errors;
static struct vgpu_frame errors_frame;   /* errors points into it */
static uint8_t *errors_buf;

static void die(const char *what, int rc)
{
    fprintf(stderr, "iso_intruder_raw: %s: %s\n", what,
            rc < -1000 ? vgpu_wire_strerror(rc) : strerror(rc < 0 ? -rc : rc));
    exit(1);
}

static void dial(const char *sock)
{
    char why[256] = "";
    int rc = vgpu_raw_dial(&conn, sock);

    if (rc)
        die(sock, rc);
    rc = vgpu_raw_hello(&conn, "iso_intruder_raw", VGPU_CALL_TABLES_HASH, why, sizeof(why));
    if (rc)
        die(*why ? why : "handshake", rc);
}

/*
 * One call with at most one input segment; returns its status.  With ret,
 * *ret gets a copy of the result message (the caller frees it).
 */
static int call(uint32_t id, const ProtobufCMessage *args, const void *seg, size_t seglen,
                uint8_t **ret, size_t *ret_len)
{
    int rc = vgpu_raw_call(&conn, id, args, seg, seglen, ret, ret_len);

    if (rc < 0)
        die("the server did not answer with one result", rc);
    return rc;
}

static const char *name_of(int code)
{
    for (size_t i = 0; errors && i < errors->n_code; i++)
        if (errors->code[i] == code)
            return errors->name[i];
    return "(not in the server's error table)";
}

static void fetch_error_table(void)
{
    Vgpu__Wire__Control c = VGPU__WIRE__CONTROL__INIT;
    Vgpu__Wire__FetchErrorTable t = VGPU__WIRE__FETCH_ERROR_TABLE__INIT;
    int rc;

    c.op_case = VGPU__WIRE__CONTROL__OP_FETCH_ERROR_TABLE;
    c.fetch_error_table = &t;
    rc = vgpu_raw_control(&conn, &c, &errors_frame, &errors_buf);
    if (rc == 0)
        errors = errors_frame.env->control_reply->error_table;
    if (!errors) {
        fprintf(stderr, "iso_intruder_raw: no error table from the server (%d)\n", rc);
        exit(1);
    }
}

static void show(const char *what, int status)
{
    printf("%s -> %s\n", what, name_of(status));
}

static int func_call(uint32_t id, uint64_t host)
{
    Vgpu__Manual__FuncArgs a = VGPU__MANUAL__FUNC_ARGS__INIT;

    a.host = host;
    a.block_size = 256;
    a.attr = cudaFuncAttributeMaxDynamicSharedMemorySize;
    a.value = 1024;
    return call(id, &a.base, NULL, 0, NULL, NULL);
}

static int symbol_call(uint32_t id, uint64_t host, Vgpu__Manual__Direction dir, const void *seg)
{
    Vgpu__Manual__SymbolArgs a = VGPU__MANUAL__SYMBOL_ARGS__INIT;

    a.host = host;
    a.count = 16;
    a.dir = dir;
    a.to_symbol = id == VGPU_CUDART_ID_cudaMemcpyToSymbol;
    return call(id, &a.base, seg, seg ? 16 : 0, NULL, NULL);
}

/* Registers raw_kernel.cu's kernel or variable under host in module. */
static int register_call(uint32_t id, uint64_t module, uint64_t host, bool is_var)
{
    Vgpu__Manual__RegisterArgs a = VGPU__MANUAL__REGISTER_ARGS__INIT;

    a.module = module;
    a.host = host;
    a.name = (char *)(is_var ? "raw_var" : "_Z9fake_fillPhjm");
    a.is_var = is_var;
    a.size = is_var ? 16 : 0;
    return call(id, &a.base, NULL, 0, NULL, NULL);
}

static int copy_call(Vgpu__Manual__Direction dir, uint64_t dst, uint64_t src, const void *seg)
{
    Vgpu__Manual__CopyArgs a = VGPU__MANUAL__COPY_ARGS__INIT;

    a.dir = dir;
    a.dst = dst;
    a.src = src;
    a.count = 256;
    return call(VGPU_CUDART_ID_cudaMemcpy, &a.base, seg, seg ? 256 : 0, NULL, NULL);
}

/* B's own host addresses for its kernel and variable: never a program's. */
#define OWN_KERNEL 0x1000u
#define OWN_VAR 0x2000u

/* Uploads the image and registers B's kernel and variable: the first failing status. */
static int own_module(const uint8_t *img, size_t size)
{
    Vgpu__Manual__FatbinArgs fa = VGPU__MANUAL__FATBIN_ARGS__INIT;
    Vgpu__Manual__FatbinRet end = VGPU__MANUAL__FATBIN_RET__INIT, *r;
    uint8_t sha[VGPU_SHA256_LEN], *ret;
    ProtobufCBinaryData hash = { VGPU_SHA256_LEN, sha };
    uint64_t sz = size;
    size_t len;
    int st;

    vgpu_sha256(img, size, sha);
    fa.n_sha256 = fa.n_size = 1;
    fa.sha256 = &hash;
    fa.size = &sz;
    fa.with_image = true;
    fa.version = 1;
    st = call(VGPU_CUDART_ID___cudaRegisterFatBinary, &fa.base, img, size, &ret, &len);
    r = st == cudaSuccess ? vgpu__manual__fatbin_ret__unpack(NULL, len, ret) : NULL;
    free(ret);
    if (st != cudaSuccess || !r || !r->module) {
        if (r)
            vgpu__manual__fatbin_ret__free_unpacked(r, NULL);
        return st != cudaSuccess ? st : cudaErrorUnknown;
    }
    end.module = r->module;
    vgpu__manual__fatbin_ret__free_unpacked(r, NULL);
    if ((st = register_call(VGPU_CUDART_ID___cudaRegisterFunction, end.module, OWN_KERNEL, false)) ||
        (st = register_call(VGPU_CUDART_ID___cudaRegisterVar, end.module, OWN_VAR, true)))
        return st;
    return call(VGPU_CUDART_ID___cudaRegisterFatBinaryEnd, &end.base, NULL, 0, NULL, NULL);
}

static int launch(uint64_t host)
{
    static const uint8_t params[24];    /* fake_fill(NULL, 0, 0): writes nothing */
    Vgpu__Manual__LaunchArgs la = VGPU__MANUAL__LAUNCH_ARGS__INIT;
    Vgpu__Manual__Dim3 one = VGPU__MANUAL__DIM3__INIT;

    one.x = one.y = one.z = 1;
    la.host = host;
    la.grid = &one;
    la.block = &one;
    return call(VGPU_CUDART_ID___cudaLaunchKernel, &la.base, params, sizeof(params), NULL, NULL);
}

static void intrude(const struct iso_vals *v, const uint8_t *img, size_t size)
{
    static const uint8_t junk[256];
    Vgpu__Manual__RegisterArgs pi = VGPU__MANUAL__REGISTER_ARGS__INIT;
    Vgpu__Manual__FatbinRet end = VGPU__MANUAL__FATBIN_RET__INIT;
    Vgpu__Manual__FreeArgs fr = VGPU__MANUAL__FREE_ARGS__INIT;
    Vgpu__Cudart__CudaStreamSynchronizeArgs ss = VGPU__CUDART__CUDA_STREAM_SYNCHRONIZE_ARGS__INIT;
    Vgpu__Cudart__CudaEventSynchronizeArgs es = VGPU__CUDART__CUDA_EVENT_SYNCHRONIZE_ARGS__INIT;

    /* module numbers count from 1 in each session: A's first module is 1 */
    printf("# raw frames, B holds no module: A's module number\n");
    show("__cudaRegisterFunction into module 1 (A's number)",
         register_call(VGPU_CUDART_ID___cudaRegisterFunction, 1, OWN_KERNEL, false));
    show("__cudaRegisterVar into module 1 (A's number)",
         register_call(VGPU_CUDART_ID___cudaRegisterVar, 1, OWN_VAR, true));
    end.module = 1;
    show("__cudaRegisterFatBinaryEnd of module 1 (A's number)",
         call(VGPU_CUDART_ID___cudaRegisterFatBinaryEnd, &end.base, NULL, 0, NULL, NULL));

    printf("# raw frames, B holds nothing: A's memory, stream and event past the shim\n");
    show("cudaMemcpy D2H from A's buffer",
         copy_call(VGPU__MANUAL__DIRECTION__DIR_D2H, 0, v->buf, NULL));
    show("cudaMemcpy H2D into A's buffer",
         copy_call(VGPU__MANUAL__DIRECTION__DIR_H2D, v->buf, 0, junk));
    show("cudaMemcpy D2D within A's buffer",
         copy_call(VGPU__MANUAL__DIRECTION__DIR_D2D, v->buf, v->buf + 1024, NULL));
    fr.ptr = v->buf;
    show("cudaFree of A's buffer", call(VGPU_CUDART_ID_cudaFree, &fr.base, NULL, 0, NULL, NULL));
    ss.stream = v->stream;
    show("cudaStreamSynchronize on A's stream",
         call(VGPU_CUDART_ID_cudaStreamSynchronize, &ss.base, NULL, 0, NULL, NULL));
    es.event = v->event;
    show("cudaEventSynchronize on A's event",
         call(VGPU_CUDART_ID_cudaEventSynchronize, &es.base, NULL, 0, NULL, NULL));

    printf("# raw frames, B holds its own module, kernel and variable: A's kernel and variable\n");
    show("B registers its own module, kernel and variable", own_module(img, size));
    show("__cudaLaunchKernel of B's own kernel (control)", launch(OWN_KERNEL));
    show("cudaGetSymbolSize of B's own variable (control)",
         symbol_call(VGPU_CUDART_ID_cudaGetSymbolSize, OWN_VAR, VGPU__MANUAL__DIRECTION__DIR_NONE, NULL));
    show("__cudaLaunchKernel of A's kernel", launch(v->kernel));
    pi.host = v->kernel;
    show("cudaFuncGetParamInfo of A's kernel",
         call(VGPU_CUDART_ID_cudaFuncGetParamInfo, &pi.base, NULL, 0, NULL, NULL));
    show("cudaFuncGetAttributes of A's kernel", func_call(VGPU_CUDART_ID_cudaFuncGetAttributes, v->kernel));
    show("cudaFuncGetName of A's kernel", func_call(VGPU_CUDART_ID_cudaFuncGetName, v->kernel));
    show("cudaFuncSetAttribute of A's kernel", func_call(VGPU_CUDART_ID_cudaFuncSetAttribute, v->kernel));
    show("cudaFuncSetCacheConfig of A's kernel",
         func_call(VGPU_CUDART_ID_cudaFuncSetCacheConfig, v->kernel));
    show("cudaOccupancyMaxActiveBlocksPerMultiprocessor of A's kernel",
         func_call(VGPU_CUDART_ID_cudaOccupancyMaxActiveBlocksPerMultiprocessor, v->kernel));
    show("cudaGetSymbolAddress of A's variable",
         symbol_call(VGPU_CUDART_ID_cudaGetSymbolAddress, v->symbol, VGPU__MANUAL__DIRECTION__DIR_NONE, NULL));
    show("cudaGetSymbolSize of A's variable",
         symbol_call(VGPU_CUDART_ID_cudaGetSymbolSize, v->symbol, VGPU__MANUAL__DIRECTION__DIR_NONE, NULL));
    show("cudaMemcpyFromSymbol of A's variable",
         symbol_call(VGPU_CUDART_ID_cudaMemcpyFromSymbol, v->symbol, VGPU__MANUAL__DIRECTION__DIR_D2H, NULL));
    show("cudaMemcpyToSymbol of A's variable",
         symbol_call(VGPU_CUDART_ID_cudaMemcpyToSymbol, v->symbol, VGPU__MANUAL__DIRECTION__DIR_H2D, junk));
    show("__cudaLaunchKernel of A's variable as a kernel", launch(v->symbol));
    show("cudaGetSymbolSize of A's kernel as a variable",
         symbol_call(VGPU_CUDART_ID_cudaGetSymbolSize, v->kernel, VGPU__MANUAL__DIRECTION__DIR_NONE, NULL));
}

/* The whole file, or exits. */
static uint8_t *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    long n;

    if (!f || fseek(f, 0, SEEK_END) || (n = ftell(f)) <= 0 || fseek(f, 0, SEEK_SET) ||
        !(buf = malloc((size_t)n)) || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "iso_intruder_raw: cannot read %s\n", path);
        exit(1);
    }
    fclose(f);
    *size = (size_t)n;
    return buf;
}

static void missing(void)
{
    Vgpu__Cudart__CudaCtxResetPersistingL2CacheArgs r =
        VGPU__CUDART__CUDA_CTX_RESET_PERSISTING_L2_CACHE_ARGS__INIT;
    Vgpu__Cudart__CudaGetDeviceCountArgs n = VGPU__CUDART__CUDA_GET_DEVICE_COUNT_ARGS__INIT;

    printf("# a generated call whose function the server's runtime lacks\n");
    show("cudaCtxResetPersistingL2Cache",
         call(VGPU_CUDART_ID_cudaCtxResetPersistingL2Cache, &r.base, NULL, 0, NULL, NULL));
    show("cudaCtxResetPersistingL2Cache again",
         call(VGPU_CUDART_ID_cudaCtxResetPersistingL2Cache, &r.base, NULL, 0, NULL, NULL));
    show("cudaGetDeviceCount in the same session",
         call(VGPU_CUDART_ID_cudaGetDeviceCount, &n.base, NULL, 0, NULL, NULL));
}

int main(int argc, char **argv)
{
    struct iso_vals v;
    uint8_t *img = NULL;
    size_t size = 0;
    bool probe = argc == 3 && !strcmp(argv[2], "--missing");

    if (!probe && argc != 4) {
        fprintf(stderr, "usage: iso_intruder_raw SOCKET WORK FATBIN | SOCKET --missing\n");
        return 2;
    }
    if (!probe) {
        if (iso_vals_read(argv[2], &v)) {
            fprintf(stderr, "iso_intruder_raw: cannot read %s/owner.vals\n", argv[2]);
            return 1;
        }
        img = read_file(argv[3], &size);
    }
    dial(argv[1]);
    fetch_error_table();
    if (probe)
        missing();
    else
        intrude(&v, img, size);
    vgpu_frame_release(&errors_frame);
    free(errors_buf);
    free(img);
    close(conn.fd);
    return 0;
}
