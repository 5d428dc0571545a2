// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target for the server's control plane (server/control.c): the
 * operations a guest or host client asks of vgpu-server outside the CUDA
 * calls.  Each input is a sequence of Control messages (format in
 * control_fuzz.h) run on one fresh session against the fake runtime
 * (tests/fakecuda, compiled in), with or without a shared BAR and doorbells,
 * with memfds of any size, sealed or not, passed along.
 *
 * After every operation: the reply's status is the documented mapping of
 * what the handler returned, a failure carries a sentence, the fd was
 * closed, the reply passes the envelope checks and packs; the session's
 * regions stay within their bounds, inside their memory.  At the end the
 * session is released.  A violation aborts, which libFuzzer reports.
 * CONTROL_FUZZ_TRACE=1 prints each operation and its status.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "control_fuzz.h"
#include "server_internal.h"
#include "vgpu/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What link.c owns in a real server. */
uint8_t *vgpu_link_bar;
uint64_t vgpu_link_bar_size;
int vgpu_link_bar_fd = -1;
int vgpu_link_bells[VGPU_STUB_MAX_DOORBELLS];
int vgpu_link_nbells;

/*
 * driver.c's: no driver here.  The driver's log reaches a session only
 * through cuLogsRegisterCallback, a call, never a control operation, so
 * what FetchDeviceOutput answers is fuzzed without it.
 */
void (*vgpu_driver_sym(const char *name))(void)
{
    (void)name;
    return NULL;
}

/* work.c's: a session here has no work on the GPU. */
void vgpu_work_poll(struct vgpu_session *s)
{
    (void)s;
}

/*
 * tables.c's session memory: a mapped region's device range is added and
 * dropped in pairs; a count that must end at zero with the session.
 */
static int mapped_ranges;

int vgpu_range_add(struct vgpu_session *s, uint64_t base, uint64_t size, bool freeable)
{
    (void)s;
    (void)base;
    (void)size;
    (void)freeable;
    mapped_ranges++;
    return 0;
}

int vgpu_range_drop(struct vgpu_session *s, uint64_t base)
{
    (void)s;
    (void)base;
    if (--mapped_ranges < 0)
        abort();
    return 0;
}

int vgpu_log_level;
int vgpu_log_fd = 2;
void vgpu_log(int level, const char *fmt, ...)
{
    (void)level;
    (void)fmt;
}

static uint8_t *bar;           /* mapped once; its slots' heads cleared per input */
static int bar_fd = -1;         /* its memfd */
static int bells[8];

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "control_fuzz: %s\n", what);
        abort();
    }
}

static void setup(uint8_t flags)
{
    int n = (flags >> CF_BELLS_SHIFT) & 7;

    if (!bar) {
        /* a memfd as QEMU's: mapped host memory maps parts of it again (control.c) */
        bar_fd = memfd_create("control-fuzz-bar", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        check(bar_fd >= 0 && ftruncate(bar_fd, CF_BAR_SIZE) == 0, "no memfd for the BAR");
        bar = mmap(NULL, CF_BAR_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, bar_fd,
                   0);
        check(bar != MAP_FAILED, "no memory for the BAR");
        for (int i = 0; i < 8; i++)
            bells[i] = eventfd(0, EFD_CLOEXEC);
    }
    for (uint64_t off = 0; off < CF_BAR_SIZE; off += (uint64_t)1 << VGPU_STUB_SLOT_SHIFT)
        memset(bar + off, 0, 4096);
    if (flags & CF_BAR_QP) {
        struct vgpu_qp q;

        for (int k = 0; k < 2; k++)
            vgpu_qp_create(&q, bar + ((uint64_t)k << VGPU_STUB_SLOT_SHIFT),
                           vgpu_qp_bytes(CF_RING, CF_RING), CF_RING, CF_RING);
    }
    vgpu_link_bar = flags & CF_BAR ? bar : NULL;
    vgpu_link_bar_size = flags & CF_BAR ? CF_BAR_SIZE : 0;
    vgpu_link_bar_fd = flags & CF_BAR ? bar_fd : -1;
    vgpu_link_nbells = flags & CF_BAR ? n : 0;
    for (int i = 0; i < (int)VGPU_STUB_MAX_DOORBELLS; i++)
        vgpu_link_bells[i] = i < vgpu_link_nbells ? bells[i] : -1;
}

/* The memfd a record asks for, or -1. */
static int make_fd(uint8_t spec)
{
    size_t len = (size_t)(spec & CF_PAGES) * CF_UNIT;
    int fd;

    if (!(spec & CF_FD))
        return -1;
    fd = memfd_create("control-fuzz", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    check(fd >= 0, "memfd_create");
    check(ftruncate(fd, (off_t)len) == 0, "ftruncate");
    if ((spec & CF_FD_QP) && len >= vgpu_qp_bytes(CF_RING, CF_RING)) {
        void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        struct vgpu_qp q;

        check(p != MAP_FAILED, "mmap");
        vgpu_qp_create(&q, p, vgpu_qp_bytes(CF_RING, CF_RING), CF_RING, CF_RING);
        munmap(p, len);
    }
    if (spec & CF_SEAL)
        check(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK) == 0, "seal");
    return fd;
}

/* One operation and every promise about its reply. */
static void run(struct vgpu_session *s, const Vgpu__Wire__Control *c, int fd)
{
    Vgpu__Wire__Envelope env = VGPU__WIRE__ENVELOPE__INIT;
    Vgpu__Wire__ControlReply r;
    struct vgpu_arena arena = { 0 };
    int rc = vgpu_control_handle(s, c, fd, &arena, &r);
    size_t n;
    uint8_t *packed;

    if (getenv("CONTROL_FUZZ_TRACE"))
        fprintf(stderr, "op %d fd %d -> %d (%s)\n", (int)c->op_case, fd, (int)r.status, r.message);
    check(rc <= 0, "a handler returned a positive value");
    check((int)r.status == vgpu_control_status(rc), "the status is not the mapping of the result");
    check(rc == 0 || (r.message && r.message[0]), "a failure without a sentence");
    check(fd < 0 || fcntl(fd, F_GETFD) < 0, "the passed fd is still open");
    check(r.status != VGPU__WIRE__CONTROL_STATUS__CONTROL_CUDA || r.cuda_status != 0,
          "a CUDA refusal without the runtime's status");
    env.body_case = VGPU__WIRE__ENVELOPE__BODY_CONTROL_REPLY;
    env.control_reply = &r;
    check(vgpu_envelope_check(&env, 0, NULL, NULL, NULL) == 0,
          "the reply fails the envelope checks");
    n = vgpu__wire__envelope__get_packed_size(&env);
    packed = malloc(n ? n : 1);
    check(packed && vgpu__wire__envelope__pack(&env, packed) == n, "the reply does not pack");
    free(packed);
    vgpu_arena_free(&arena);
    check(s->nregions >= 0 && s->nregions <= VGPU_MAX_REGIONS, "regions out of bounds");
    for (int i = 0; i < s->nregions; i++) {
        const struct vgpu_region *g = &s->regions[i];

        check(g->id != 0 && g->size != 0, "an empty region or region 0");
        if (g->in_bar)
            check(vgpu_link_bar && g->base >= vgpu_link_bar &&
                  g->size <= vgpu_link_bar_size - (uint64_t)(g->base - vgpu_link_bar),
                  "a BAR region outside the BAR");
        if (!g->in_bar && g->bar_offset != UINT64_MAX)
            check(vgpu_link_bar && g->bar_offset <= vgpu_link_bar_size &&
                  g->size <= vgpu_link_bar_size - g->bar_offset && g->devptr,
                  "mapped memory of the BAR outside the BAR, or without a device pointer");
        for (int j = 0; j < i; j++)
            check(s->regions[j].id != g->id, "two regions with one id");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vgpu_session s = { .fd = -1, .pending_fd = -1, .qp_bell = -1 };
    size_t off = 1;

    if (size < 1)
        return 0;
    setup(data[0]);
    while (size - off >= 3) {
        uint8_t spec = data[off];
        size_t len = (size_t)data[off + 1] | (size_t)data[off + 2] << 8;
        Vgpu__Wire__Control *c;

        off += 3;
        if (len > size - off)
            break;
        c = vgpu__wire__control__unpack(NULL, len, data + off);
        off += len;
        if (!c)
            continue;
        /* the server sees only what passed the envelope checks */
        {
            Vgpu__Wire__Envelope env = VGPU__WIRE__ENVELOPE__INIT;

            env.body_case = VGPU__WIRE__ENVELOPE__BODY_CONTROL;
            env.control = c;
            if (vgpu_envelope_check(&env, 0, NULL, NULL, NULL) == 0)
                run(&s, c, make_fd(spec));
        }
        vgpu__wire__control__free_unpacked(c, NULL);
    }
    vgpu_regions_release(&s);
    check(!s.regions && !s.nregions && !s.qp_mem, "the session was not released");
    check(mapped_ranges == 0, "a mapped region's device range outlived the session");
    return 0;
}
