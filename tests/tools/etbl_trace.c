// SPDX-License-Identifier: Apache-2.0
//
// etbl_trace: a libcuda.so.1 that forwards every driver function to the
// real driver and logs what programs do with its private export tables.
//
// It is how docs/driver.md establishes which slots of a table NVIDIA's
// libraries call, with which arguments and what the real driver answers:
// run a program natively with this library first on LD_LIBRARY_PATH and
// VGPU_TRACE_REAL naming the real driver. Every exported driver name is a
// jump through a pointer resolved from the real driver
// (etbl_trace_names.S, generated from codegen/spec/cuda.ids); the
// cuGetProcAddress family and cuGetExportTable are answered here so that a
// table handed out is a copy whose function slots log each call.
//
// A slot is called through a wrapper taking six integer arguments: on
// x86-64 these are the six argument registers, so any slot with up to six
// integer or pointer arguments is forwarded unchanged (the export tables
// have no floating-point arguments). Before and after the call the first
// 16 bytes behind each argument that points to readable memory are
// logged, which shows inputs and outputs without knowing the signature.
// The log goes to VGPU_TRACE_FILE (default stderr); with VGPU_TRACE_CALLS
// set, every driver function called is logged by name too.
#define __CUDA_API_VERSION_INTERNAL 1
#include <cuda.h>
#include <dlfcn.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_TABLES 16
#define MAX_SLOTS 130

typedef uint64_t (*slot_fn)(uint64_t, uint64_t, uint64_t, uint64_t,
                            uint64_t, uint64_t);

struct table {
    CUuuid id;
    const void *real;
    int slots;
    slot_fn fn[MAX_SLOTS];
    uint64_t copy[MAX_SLOTS];
};

static struct table tables[MAX_TABLES];
static int ntables;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static FILE *out;
static void *real;

// Pointers the generated trampolines jump through, in cuda.ids order.
extern const char *const vgpu_trace_names[];
extern const unsigned vgpu_trace_count;
__attribute__((visibility("hidden"))) void *vgpu_trace_targets[1024];

static int trace_calls;

// Called by each generated entry point before it jumps to the real driver,
// with the argument registers saved (the driver API passes no floating
// point by value): with VGPU_TRACE_CALLS set, the function's name.
__attribute__((visibility("hidden"))) void vgpu_trace_note(unsigned i)
{
    if (!trace_calls || i >= vgpu_trace_count) {
        return;
    }
    pthread_mutex_lock(&lock);
    fprintf(out, "fn %s\n", vgpu_trace_names[i]);
    fflush(out);
    pthread_mutex_unlock(&lock);
}

static CUresult (*real_get_export_table)(const void **, const CUuuid *);
static CUresult (*real_get_proc)(const char *, void **, int, cuuint64_t,
                                 CUdriverProcAddressQueryResult *);

static void uuid_str(const CUuuid *id, char *buf)
{
    for (int i = 0; i < 16; i++) {
        sprintf(buf + 2 * i, "%02x", (unsigned char)id->bytes[i]);
    }
}

// 16 bytes at p when the process can read them (process_vm_readv reports
// EFAULT instead of faulting).
static int peek(uint64_t p, unsigned char b[16])
{
    if (p < 0x10000) {
        return -1;
    }
    struct iovec l = { b, 16 }, r = { (void *)(uintptr_t)p, 16 };
    return process_vm_readv(getpid(), &l, 1, &r, 1, 0) == 16 ? 0 : -1;
}

static void log_args(const char *when, const uint64_t a[6])
{
    for (int i = 0; i < 6; i++) {
        unsigned char b[16];
        if (peek(a[i], b) == 0) {
            fprintf(out, "    %s *a%d:", when, i);
            for (int k = 0; k < 16; k++) {
                fprintf(out, "%s%02x", k % 8 ? "" : " ", b[k]);
            }
            fputc('\n', out);
        }
    }
}

static uint64_t call(int t, int s, uint64_t a0, uint64_t a1, uint64_t a2,
                     uint64_t a3, uint64_t a4, uint64_t a5)
{
    uint64_t a[6] = { a0, a1, a2, a3, a4, a5 };
    char u[33];
    uuid_str(&tables[t].id, u);
    pthread_mutex_lock(&lock);
    fprintf(out, "call %s[%d] tid %ld args %" PRIx64 " %" PRIx64 " %" PRIx64
            " %" PRIx64 " %" PRIx64 " %" PRIx64 "\n", u, s, (long)gettid(),
            a0, a1, a2, a3, a4, a5);
    log_args("in ", a);
    fflush(out);
    pthread_mutex_unlock(&lock);
    uint64_t r = tables[t].fn[s](a0, a1, a2, a3, a4, a5);
    pthread_mutex_lock(&lock);
    fprintf(out, "ret  %s[%d] -> %" PRIx64 "\n", u, s, r);
    log_args("out", a);
    fflush(out);
    pthread_mutex_unlock(&lock);
    return r;
}

#define W(t, s)                                                          \
    static uint64_t w_##t##_##s(uint64_t a, uint64_t b, uint64_t c,      \
                                uint64_t d, uint64_t e, uint64_t f)      \
    {                                                                    \
        return call(t, s, a, b, c, d, e, f);                             \
    }
#define W10(t, d) W(t, d##0) W(t, d##1) W(t, d##2) W(t, d##3) W(t, d##4) \
    W(t, d##5) W(t, d##6) W(t, d##7) W(t, d##8) W(t, d##9)
#define WALL(t) W(t, 0) W(t, 1) W(t, 2) W(t, 3) W(t, 4) W(t, 5) W(t, 6) \
    W(t, 7) W(t, 8) W(t, 9) W10(t, 1) W10(t, 2) W10(t, 3) W10(t, 4) \
    W10(t, 5) W10(t, 6) W10(t, 7) W10(t, 8) W10(t, 9) W10(t, 10) \
    W10(t, 11) W10(t, 12)
#define P(t, s) w_##t##_##s,
#define P10(t, d) P(t, d##0) P(t, d##1) P(t, d##2) P(t, d##3) P(t, d##4) \
    P(t, d##5) P(t, d##6) P(t, d##7) P(t, d##8) P(t, d##9)
#define PALL(t) { P(t, 0) P(t, 1) P(t, 2) P(t, 3) P(t, 4) P(t, 5) P(t, 6) \
    P(t, 7) P(t, 8) P(t, 9) P10(t, 1) P10(t, 2) P10(t, 3) P10(t, 4) \
    P10(t, 5) P10(t, 6) P10(t, 7) P10(t, 8) P10(t, 9) P10(t, 10) \
    P10(t, 11) P10(t, 12) },

// Wrappers for slots 0..129 of 16 tables, named and numbered in decimal so
// that wrappers[t][s] forwards to slot s.
WALL(0) WALL(1) WALL(2) WALL(3) WALL(4) WALL(5) WALL(6) WALL(7)
WALL(8) WALL(9) WALL(10) WALL(11) WALL(12) WALL(13) WALL(14) WALL(15)

static const slot_fn wrappers[MAX_TABLES][MAX_SLOTS] = {
    PALL(0) PALL(1) PALL(2) PALL(3) PALL(4) PALL(5) PALL(6) PALL(7)
    PALL(8) PALL(9) PALL(10) PALL(11) PALL(12) PALL(13) PALL(14) PALL(15)
};

// A copy of a real table with each function slot logged. Tables with a
// size word in slot 0 have size / 8 slots; one whose first word is a code
// address has functions until a NULL (the context-local-storage table).
static const void *wrap_table(const CUuuid *id, const void *tbl)
{
    const uint64_t *w = tbl;
    char u[33];
    uuid_str(id, u);
    for (int i = 0; i < ntables; i++) {
        if (memcmp(&tables[i].id, id, sizeof(*id)) == 0 && tables[i].real == tbl) {
            return tables[i].copy;
        }
    }
    if (ntables == MAX_TABLES) {
        fprintf(out, "etbl %s: too many tables, not traced\n", u);
        return tbl;
    }
    struct table *t = &tables[ntables];
    int sized = w[0] < 0x10000;
    int n = sized ? (int)(w[0] / 8) : 0;
    if (!sized) {
        while (n < MAX_SLOTS && w[n]) {
            n++;
        }
    }
    if (n > MAX_SLOTS) {
        fprintf(out, "etbl %s: %d slots, only %d traced\n", u, n, MAX_SLOTS);
        n = MAX_SLOTS;
    }
    t->id = *id;
    t->real = tbl;
    t->slots = n;
    for (int s = 0; s < n; s++) {
        t->copy[s] = w[s];
        if ((sized && s == 0) || !w[s]) {
            continue;
        }
        t->fn[s] = (slot_fn)(uintptr_t)w[s];
        t->copy[s] = (uint64_t)(uintptr_t)wrappers[ntables][s];
    }
    fprintf(out, "etbl %s: %s, %d slots\n", u,
            sized ? "size word" : "no size word", n);
    ntables++;
    return t->copy;
}

// The runtime's integrity check hashes the addresses of the cudart
// interface table and of the integrity table itself (docs/driver.md): a
// copy of either would fail it, so those two are handed out unwrapped.
static int in_integrity_hash(const CUuuid *id)
{
    static const unsigned char cudart[16] = {
        0x6b, 0xd5, 0xfb, 0x6c, 0x5b, 0xf4, 0xe7, 0x4a,
        0x89, 0x87, 0xd9, 0x39, 0x12, 0xfd, 0x9d, 0xf9 };
    static const unsigned char integrity[16] = {
        0xd4, 0x08, 0x20, 0x55, 0xbd, 0xe6, 0x70, 0x4b,
        0x8d, 0x34, 0xba, 0x12, 0x3c, 0x66, 0xe1, 0xf2 };
    return memcmp(id, cudart, 16) == 0 || memcmp(id, integrity, 16) == 0;
}

CUresult cuGetExportTable(const void **pp, const CUuuid *id)
{
    CUresult r = real_get_export_table(pp, id);
    char u[33] = "(null)";
    if (id) {
        uuid_str(id, u);
    }
    pthread_mutex_lock(&lock);
    fprintf(out, "cuGetExportTable %s -> %d\n", u, (int)r);
    if (r == CUDA_SUCCESS && pp && *pp && id && !in_integrity_hash(id)) {
        *pp = wrap_table(id, *pp);
    }
    fflush(out);
    pthread_mutex_unlock(&lock);
    return r;
}

static void substitute(const char *sym, void **pfn)
{
    if (!pfn || !*pfn || !sym) {
        return;
    }
    if (strcmp(sym, "cuGetExportTable") == 0) {
        *pfn = (void *)cuGetExportTable;
    } else if (strcmp(sym, "cuGetProcAddress") == 0) {
        *pfn = *pfn == (void *)(uintptr_t)real_get_proc
               ? (void *)cuGetProcAddress_v2 : (void *)cuGetProcAddress;
    } else if (trace_calls) {
        // the real variant handed out, as this library's entry point of the same name
        for (unsigned i = 0; i < vgpu_trace_count; i++) {
            if (vgpu_trace_targets[i] == *pfn) {
                Dl_info di;
                void *self = NULL;
                if (dladdr((void *)substitute, &di) && di.dli_fname) {
                    self = dlopen(di.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
                }
                void *mine = self ? dlsym(self, vgpu_trace_names[i]) : NULL;
                if (mine) {
                    *pfn = mine;
                }
                break;
            }
        }
    }
}

CUresult cuGetProcAddress_v2(const char *sym, void **pfn, int ver,
                             cuuint64_t flags,
                             CUdriverProcAddressQueryResult *st)
{
    CUresult r = real_get_proc(sym, pfn, ver, flags, st);
    if (r == CUDA_SUCCESS) {
        substitute(sym, pfn);
    }
    return r;
}

CUresult cuGetProcAddress(const char *sym, void **pfn, int ver,
                          cuuint64_t flags)
{
    CUdriverProcAddressQueryResult st;
    return cuGetProcAddress_v2(sym, pfn, ver, flags, &st);
}

__attribute__((constructor)) static void trace_init(void)
{
    const char *path = getenv("VGPU_TRACE_REAL");
    const char *file = getenv("VGPU_TRACE_FILE");
    trace_calls = getenv("VGPU_TRACE_CALLS") != NULL;
    out = file ? fopen(file, "a") : NULL;
    if (!out) {
        out = stderr;
    }
    real = dlopen(path ? path : "/usr/lib/x86_64-linux-gnu/libcuda.so.1",
                  RTLD_NOW | RTLD_LOCAL);
    if (!real) {
        fprintf(out, "etbl_trace: cannot open the real driver (%s); set "
                "VGPU_TRACE_REAL to its path\n", dlerror());
        return;
    }
    for (unsigned i = 0; i < vgpu_trace_count; i++) {
        vgpu_trace_targets[i] = dlsym(real, vgpu_trace_names[i]);
    }
    real_get_export_table = (CUresult (*)(const void **, const CUuuid *))
        dlsym(real, "cuGetExportTable");
    real_get_proc = (CUresult (*)(const char *, void **, int, cuuint64_t,
                                  CUdriverProcAddressQueryResult *))
        dlsym(real, "cuGetProcAddress_v2");
}
