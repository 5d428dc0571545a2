/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The server's control plane (server/control.c) on a session built here,
 * against the fake runtime (tests/fakecuda): every operation's success and
 * each of its refusals with the ControlStatus that docs/protocol.md ("The
 * two planes") promises, fds closed whatever happens, the shared BAR's
 * checks on a BAR made here, and one Control served over a socket pair.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "../../server/control.c"
#include "../../server/devout.c"
#include "loop.h"

int vgpu_log_level;
int vgpu_log_fd = 2;
void vgpu_log(int level, const char *fmt, ...)
{
    (void)level;
    (void)fmt;
}

/* driver.c's: the fake driver linked in, by name. */
void (*vgpu_driver_sym(const char *name))(void)
{
    return (void (*)(void))dlsym(RTLD_DEFAULT, name);
}

/* work.c's: a session here has no work on the GPU. */
void vgpu_work_poll(struct vgpu_session *s)
{
    (void)s;
}

/* tables.c's session memory, as mapped regions add and drop it */
static uint64_t range_base, range_size;
static int nranges;

int vgpu_range_add(struct vgpu_session *s, uint64_t base, uint64_t size, bool freeable)
{
    (void)s;
    assert_false(freeable);
    range_base = base;
    range_size = size;
    nranges++;
    return 0;
}

int vgpu_range_drop(struct vgpu_session *s, uint64_t base)
{
    (void)s;
    assert_int_not_equal(base, 0);
    nranges--;
    return 0;
}

/* What link.c owns in a real server: the VM's shared BAR and its doorbells. */
uint8_t *vgpu_link_bar;
uint64_t vgpu_link_bar_size;
int vgpu_link_bar_fd = -1;
int vgpu_link_bells[VGPU_STUB_MAX_DOORBELLS];
int vgpu_link_nbells;

#define OK VGPU__WIRE__CONTROL_STATUS__CONTROL_OK
#define INVALID VGPU__WIRE__CONTROL_STATUS__CONTROL_INVALID
#define NO_FD VGPU__WIRE__CONTROL_STATUS__CONTROL_NO_FD
#define BUSY VGPU__WIRE__CONTROL_STATUS__CONTROL_BUSY
#define NOT_FOUND VGPU__WIRE__CONTROL_STATUS__CONTROL_NOT_FOUND
#define UNSUPPORTED VGPU__WIRE__CONTROL_STATUS__CONTROL_UNSUPPORTED

#define BAR_SIZE ((uint64_t)32 << 20)   /* four 8 MiB slots */
#define RING (64u << 10)

static struct vgpu_session new_session(void)
{
    return (struct vgpu_session){ .fd = -1, .pending_fd = -1, .qp_bell = -1 };
}

static int memfd_of(size_t size, bool seal)
{
    int m = memfd_create("control-test", MFD_CLOEXEC | MFD_ALLOW_SEALING);

    assert_true(m >= 0);
    assert_int_equal(ftruncate(m, (off_t)size), 0);
    if (seal)
        assert_int_equal(fcntl(m, F_ADD_SEALS, F_SEAL_SHRINK), 0);
    return m;
}

static bool fd_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0;
}

/* Runs c on s with fd; checks that a failure says something; returns the status. */
static int run(struct vgpu_session *s, Vgpu__Wire__Control *c, int fd)
{
    Vgpu__Wire__ControlReply r;
    struct vgpu_arena arena = { 0 };
    int rc = vgpu_control_handle(s, c, fd, &arena, &r);
    int st = r.status;

    assert_int_equal(st, vgpu_control_status(rc));
    if (st != OK)
        assert_true(r.message && r.message[0]);
    if (fd >= 0)
        assert_false(fd_open(fd));     /* the handler's, closed in every case */
    vgpu_arena_free(&arena);
    return st;
}

static int memfd_region(struct vgpu_session *s, uint32_t id, uint64_t size, int fd)
{
    Vgpu__Wire__Control c = VGPU__WIRE__CONTROL__INIT;
    Vgpu__Wire__RegisterMemfdRegion a = VGPU__WIRE__REGISTER_MEMFD_REGION__INIT;

    a.id = id;
    a.size = size;
    c.op_case = VGPU__WIRE__CONTROL__OP_REGISTER_MEMFD_REGION;
    c.register_memfd_region = &a;
    return run(s, &c, fd);
}

static int bar_region(struct vgpu_session *s, uint32_t id, uint64_t off, uint64_t size, int fd)
{
    Vgpu__Wire__Control c = VGPU__WIRE__CONTROL__INIT;
    Vgpu__Wire__RegisterBarRegion a = VGPU__WIRE__REGISTER_BAR_REGION__INIT;

    a.id = id;
    a.bar_offset = off;
    a.size = size;
    c.op_case = VGPU__WIRE__CONTROL__OP_REGISTER_BAR_REGION;
    c.register_bar_region = &a;
    return run(s, &c, fd);
}

/* Mapped host memory in the BAR at address; the status. */
static int bar_mapped(struct vgpu_session *s, uint32_t id, uint64_t off, uint64_t size,
                      uint64_t address)
{
    Vgpu__Wire__Control c = VGPU__WIRE__CONTROL__INIT;
    Vgpu__Wire__RegisterBarRegion a = VGPU__WIRE__REGISTER_BAR_REGION__INIT;

    a.id = id;
    a.bar_offset = off;
    a.size = size;
    a.mapped = true;
    a.address = address;
    c.op_case = VGPU__WIRE__CONTROL__OP_REGISTER_BAR_REGION;
    c.register_bar_region = &a;
    return run(s, &c, -1);
}

/* An address with size bytes free after it in this process (as a guest's would be). */
static uint64_t free_address(size_t size)
{
    void *p = mmap(NULL, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    assert_true(p != MAP_FAILED);
    munmap(p, size);
    return (uint64_t)(uintptr_t)p;
}

static int unregister_region(struct vgpu_session *s, uint32_t id)
{
    Vgpu__Wire__Control c = VGPU__WIRE__CONTROL__INIT;
    Vgpu__Wire__UnregisterRegion a = VGPU__WIRE__UNREGISTER_REGION__INIT;

    a.id = id;
    c.op_case = VGPU__WIRE__CONTROL__OP_UNREGISTER_REGION;
    c.unregister_region = &a;
    return run(s, &c, -1);
}

static int attach(struct vgpu_session *s, uint64_t size, bool in_bar, uint64_t off, int fd)
{
    Vgpu__Wire__Control c = VGPU__WIRE__CONTROL__INIT;
    Vgpu__Wire__AttachQueuePair a = VGPU__WIRE__ATTACH_QUEUE_PAIR__INIT;

    a.size = size;
    a.in_bar = in_bar;
    a.bar_offset = off;
    c.op_case = VGPU__WIRE__CONTROL__OP_ATTACH_QUEUE_PAIR;
    c.attach_queue_pair = &a;
    return run(s, &c, fd);
}

static void test_status_table(void **state)
{
    (void)state;
    assert_int_equal(vgpu_control_status(0), OK);
    assert_int_equal(vgpu_control_status(-EINVAL), INVALID);
    assert_int_equal(vgpu_control_status(-EBADF), NO_FD);
    assert_int_equal(vgpu_control_status(-EBUSY), BUSY);
    assert_int_equal(vgpu_control_status(-ENOSPC), VGPU__WIRE__CONTROL_STATUS__CONTROL_LIMIT);
    assert_int_equal(vgpu_control_status(-ENOMEM), VGPU__WIRE__CONTROL_STATUS__CONTROL_NO_MEMORY);
    assert_int_equal(vgpu_control_status(-ENOENT), NOT_FOUND);
    assert_int_equal(vgpu_control_status(-EIO), VGPU__WIRE__CONTROL_STATUS__CONTROL_CUDA);
    assert_int_equal(vgpu_control_status(-EOPNOTSUPP), UNSUPPORTED);
    assert_int_equal(vgpu_control_status(-EPERM), INVALID);   /* anything else */
}

static void test_memfd_regions(void **state)
{
    struct vgpu_session s = new_session();

    (void)state;
    assert_int_equal(memfd_region(&s, 5, 4096, -1), NO_FD);
    assert_int_equal(memfd_region(&s, 5, 4096, memfd_of(4096, false)), NO_FD);   /* could shrink */
    assert_int_equal(memfd_region(&s, 5, 8192, memfd_of(4096, true)), NO_FD);    /* too small */
    assert_int_equal(memfd_region(&s, 5, 0, memfd_of(4096, true)), INVALID);
    assert_int_equal(memfd_region(&s, 0, 4096, memfd_of(4096, true)), INVALID);
    assert_int_equal(memfd_region(&s, 5, (uint64_t)65 << 30, memfd_of(4096, true)), NO_FD);
    assert_int_equal(s.nregions, 0);
    assert_int_equal(memfd_region(&s, 5, 4096, memfd_of(8192, true)), OK);
    assert_non_null(vgpu_region_find(&s, 5));
    assert_int_equal(vgpu_region_find(&s, 5)->size, 4096);
    assert_int_equal(memfd_region(&s, 5, 4096, memfd_of(4096, true)), BUSY);
    assert_int_equal(memfd_region(&s, 6, 4096, memfd_of(4096, true)), OK);
    assert_int_equal(unregister_region(&s, 7), NOT_FOUND);
    assert_int_equal(unregister_region(&s, 5), OK);
    assert_null(vgpu_region_find(&s, 5));
    assert_non_null(vgpu_region_find(&s, 6));
    assert_int_equal(unregister_region(&s, 5), NOT_FOUND);
    vgpu_regions_release(&s);
    assert_int_equal(s.nregions, 0);
}

/* An fd with an operation that takes none is refused, and closed. */
/*
 * A mapped region: pinned for kernels at the client's own address when
 * that is free here (then device pointer == client pointer), its device
 * range session memory until it is unregistered or the session ends.
 */
static void test_mapped_region(void **state)
{
    struct vgpu_session s = new_session();
    Vgpu__Wire__Control c = VGPU__WIRE__CONTROL__INIT;
    Vgpu__Wire__RegisterMemfdRegion a = VGPU__WIRE__REGISTER_MEMFD_REGION__INIT;
    struct vgpu_arena arena = { 0 };
    Vgpu__Wire__ControlReply r;
    int fd = memfd_of(1 << 16, true);
    /* an address free in this process: reserved, then released */
    void *want = mmap(NULL, 1 << 16, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    (void)state;
    assert_ptr_not_equal(want, MAP_FAILED);
    munmap(want, 1 << 16);
    a.id = 9;
    a.size = 1 << 16;
    a.mapped = true;
    a.address = (uint64_t)(uintptr_t)want;
    c.op_case = VGPU__WIRE__CONTROL__OP_REGISTER_MEMFD_REGION;
    c.register_memfd_region = &a;

    assert_int_equal(vgpu_control_handle(&s, &c, fd, &arena, &r), 0);
    assert_int_equal(r.status, OK);
    assert_int_equal(r.device_pointer, (uint64_t)(uintptr_t)want);
    assert_int_equal(nranges, 1);
    assert_int_equal(range_base, r.device_pointer);
    assert_int_equal(range_size, 1 << 16);
    vgpu_arena_free(&arena);

    /* the address taken: mapped elsewhere, the device pointer says where */
    a.id = 10;
    fd = memfd_of(1 << 16, true);

    assert_int_equal(vgpu_control_handle(&s, &c, fd, &arena, &r), 0);
    assert_int_equal(r.status, OK);
    assert_int_not_equal(r.device_pointer, 0);
    assert_int_not_equal(r.device_pointer, (uint64_t)(uintptr_t)want);
    assert_int_equal(nranges, 2);
    vgpu_arena_free(&arena);

    assert_int_equal(unregister_region(&s, 10), OK);
    assert_int_equal(nranges, 1);
    vgpu_regions_release(&s);
    assert_int_equal(nranges, 0);
}

/*
 * After a stream capture, a graph may copy from or to a region at every
 * launch: unregistering takes its id away but keeps it mapped and pinned
 * (and counted) until the session ends.
 */
static void test_region_retired_after_capture(void **state)
{
    struct vgpu_session s = new_session();

    (void)state;
    s.capture_seen = true;
    assert_int_equal(memfd_region(&s, 3, 1 << 16, memfd_of(1 << 16, true)), OK);
    assert_int_equal(unregister_region(&s, 3), OK);
    assert_int_equal(s.nregions, 0);
    assert_int_equal(s.nretired, 1);
    assert_int_equal(unregister_region(&s, 3), NOT_FOUND);
    /* its id is free again; its bytes still count */
    assert_int_equal(memfd_region(&s, 3, 1 << 16, memfd_of(1 << 16, true)), OK);
    assert_int_equal(regions_bytes(&s), 2 << 16);
    vgpu_regions_release(&s);
    assert_int_equal(s.nretired, 0);
    assert_null(s.retired);
}

static void test_stray_fd(void **state)
{
    struct vgpu_session s = new_session();
    Vgpu__Wire__Control c = VGPU__WIRE__CONTROL__INIT;
    Vgpu__Wire__FetchErrorTable t = VGPU__WIRE__FETCH_ERROR_TABLE__INIT;

    (void)state;
    c.op_case = VGPU__WIRE__CONTROL__OP_FETCH_ERROR_TABLE;
    c.fetch_error_table = &t;
    assert_int_equal(run(&s, &c, memfd_of(4096, true)), NO_FD);
    assert_int_equal(unregister_region(&s, 1), NOT_FOUND);
    assert_int_equal(bar_region(&s, 1, 0, 4096, memfd_of(4096, true)), NO_FD);
    /* an operation this server does not know */
    c.op_case = VGPU__WIRE__CONTROL__OP__NOT_SET;
    assert_int_equal(run(&s, &c, -1), INVALID);
}

/* The BAR as link.c holds it: a memfd mapped shared, its fd kept. */
static void bar_up(int bells)
{
    vgpu_link_bar_fd = memfd_of(BAR_SIZE, true);
    vgpu_link_bar = mmap(NULL, BAR_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, vgpu_link_bar_fd, 0);
    assert_true(vgpu_link_bar != MAP_FAILED);
    vgpu_link_bar_size = BAR_SIZE;
    vgpu_link_nbells = bells;
    for (int i = 0; i < (int)VGPU_STUB_MAX_DOORBELLS; i++)
        vgpu_link_bells[i] = i < bells ? eventfd(0, EFD_CLOEXEC) : -1;
}

static void bar_down(void)
{
    for (int i = 0; i < vgpu_link_nbells; i++)
        close(vgpu_link_bells[i]);
    munmap(vgpu_link_bar, BAR_SIZE);
    close(vgpu_link_bar_fd);
    vgpu_link_bar_fd = -1;
    vgpu_link_bar = NULL;
    vgpu_link_bar_size = 0;
    vgpu_link_nbells = 0;
}

static void test_bar_regions(void **state)
{
    struct vgpu_session s = new_session();

    (void)state;
    assert_int_equal(bar_region(&s, 1, 0, 4096, -1), UNSUPPORTED);   /* no BAR: not a VM */
    bar_up(1);
    assert_int_equal(bar_region(&s, 1, 100, 4096, -1), INVALID);     /* not page-aligned */
    assert_int_equal(bar_region(&s, 1, 0, 100, -1), INVALID);
    assert_int_equal(bar_region(&s, 1, 0, 0, -1), INVALID);
    assert_int_equal(bar_region(&s, 1, BAR_SIZE, 4096, -1), INVALID); /* past the end */
    assert_int_equal(bar_region(&s, 1, BAR_SIZE - 4096, 8192, -1), INVALID);
    assert_int_equal(bar_region(&s, 1, 4096, UINT64_MAX & ~4095ull, -1), INVALID);
    assert_int_equal(bar_region(&s, 1, 8u << 20, 4u << 20, -1), OK);
    assert_ptr_equal(vgpu_region_find(&s, 1)->base, vgpu_link_bar + (8u << 20));
    assert_int_equal(bar_region(&s, 1, 0, 4096, -1), BUSY);
    assert_int_equal(unregister_region(&s, 1), OK);
    vgpu_regions_release(&s);
    bar_down();
}

/*
 * A guest's mapped host memory: pages of other slots of the BAR, mapped
 * again at the guest process's address where that is free here (the
 * device pointer is then that address), and the same pages as the BAR's.
 */
static void test_bar_mapped(void **state)
{
    struct vgpu_session s = new_session();
    uint64_t slot = (uint64_t)1 << VGPU_STUB_SLOT_SHIFT, want = free_address(3 * 4096);
    struct vgpu_region *r;
    int fd;

    (void)state;
    assert_int_equal(bar_mapped(&s, 1, 2 * slot, 8192, want), UNSUPPORTED);   /* no BAR */
    bar_up(1);
    assert_int_equal(bar_mapped(&s, 1, 2 * slot + 100, 8192, want), INVALID);
    assert_int_equal(bar_mapped(&s, 1, BAR_SIZE - 4096, 8192, want), INVALID);
    assert_int_equal(bar_mapped(&s, 1, 2 * slot, 8192, want), OK);
    r = vgpu_region_find(&s, 1);
    assert_non_null(r);
    assert_int_equal((uint64_t)(uintptr_t)r->base, want);
    assert_int_equal(r->devptr, want);
    assert_false(r->in_bar);
    /* the guest's pages, not a copy: what the BAR holds is what kernels see */
    vgpu_link_bar[2 * slot + 4097] = 0x5a;
    assert_int_equal(((volatile uint8_t *)r->base)[4097], 0x5a);
    /* the same pages twice, or across them: refused */
    assert_int_equal(bar_mapped(&s, 2, 2 * slot + 4096, 8192, 0), INVALID);
    /* an address taken here (or none): mapped elsewhere, kernels told where */
    assert_int_equal(bar_mapped(&s, 2, 2 * slot + 8192, 4096, want), OK);
    r = vgpu_region_find(&s, 2);
    assert_true((uint64_t)(uintptr_t)r->base != want);
    assert_int_equal(r->devptr, (uint64_t)(uintptr_t)r->base);
    assert_int_equal(bar_mapped(&s, 3, 3 * slot, 4096, 0), OK);
    assert_int_equal(unregister_region(&s, 1), OK);
    assert_int_equal(unregister_region(&s, 2), OK);
    assert_int_equal(bar_mapped(&s, 1, 2 * slot, 8192, want), OK);   /* pages free again */
    vgpu_regions_release(&s);
    assert_int_equal(s.nregions, 0);
    /* a BAR whose memfd the link did not keep: nothing to map again */
    fd = vgpu_link_bar_fd;
    vgpu_link_bar_fd = -1;
    assert_int_equal(bar_mapped(&s, 4, 3 * slot, 4096, 0), UNSUPPORTED);
    vgpu_link_bar_fd = fd;
    bar_down();
}

/* A queue pair laid out in mem; its size. */
static uint64_t lay_qp(void *mem)
{
    struct vgpu_qp q;

    assert_int_equal(vgpu_qp_create(&q, mem, vgpu_qp_bytes(RING, RING), RING, RING), 0);
    return vgpu_qp_bytes(RING, RING);
}

static void test_queue_pair_memfd(void **state)
{
    struct vgpu_session s = new_session(), s2 = new_session();
    uint64_t n = vgpu_qp_bytes(RING, RING);
    int m = memfd_of(n, true);
    void *mem = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED, m, 0);

    (void)state;
    assert_true(mem != MAP_FAILED);
    assert_int_equal(attach(&s, n, false, 0, -1), NO_FD);
    assert_int_equal(attach(&s, 0, false, 0, dup(m)), INVALID);
    assert_int_equal(attach(&s, n, false, 0, dup(m)), INVALID);       /* no header yet */
    lay_qp(mem);
    assert_int_equal(attach(&s, n - 4096, false, 0, dup(m)), INVALID);
    assert_int_equal(attach(&s, (uint64_t)65 << 20, false, 0, dup(m)),
                     VGPU__WIRE__CONTROL_STATUS__CONTROL_LIMIT);
    assert_ptr_equal(s.carrier, NULL);                            /* refusals leave it */
    assert_int_equal(attach(&s, n, false, 0, dup(m)), OK);
    assert_non_null(s.qp_mem);
    assert_false(s.qp_in_bar);
    assert_ptr_equal(s.carrier, &vgpu_carrier_qp_memfd);
    assert_int_equal(attach(&s, n, false, 0, dup(m)), BUSY);          /* one per session */
    assert_int_equal(attach(&s2, n, false, 0, dup(m)), BUSY);         /* taken by s */
    vgpu_regions_release(&s);
    assert_ptr_equal(s.carrier, &vgpu_carrier_sock);              /* back to the socket */
    /* the pair says its session ended: another may take it */
    assert_int_equal(attach(&s2, n, false, 0, dup(m)), OK);
    vgpu_regions_release(&s2);
    munmap(mem, n);
    close(m);
}

static void test_queue_pair_bar(void **state)
{
    struct vgpu_session s = new_session();
    uint64_t slot = (uint64_t)1 << VGPU_STUB_SLOT_SHIFT, n;

    (void)state;
    assert_int_equal(attach(&s, 4096, true, 0, -1), UNSUPPORTED);     /* no BAR */
    bar_up(2);
    n = lay_qp(vgpu_link_bar + slot);
    assert_int_equal(attach(&s, n, true, slot, memfd_of(4096, true)), NO_FD);
    assert_int_equal(attach(&s, n, true, slot + 4096, -1), INVALID);  /* not a slot's start */
    assert_int_equal(attach(&s, n, true, BAR_SIZE, -1), INVALID);
    assert_int_equal(attach(&s, slot + 4096, true, slot, -1), INVALID);  /* larger than a slot */
    assert_int_equal(attach(&s, n, true, 2 * slot, -1), UNSUPPORTED);  /* slot 2 has no doorbell */
    /* a guest's pair needs the session's loop for its doorbell */
    assert_int_equal(attach(&s, n, true, slot, -1), VGPU__WIRE__CONTROL_STATUS__CONTROL_NO_MEMORY);
    assert_null(s.qp_mem);
    s.loop = vgpu_loop_new();
    assert_non_null(s.loop);
    assert_int_equal(attach(&s, n, true, slot, -1), OK);
    assert_true(s.qp_in_bar);
    assert_int_equal(s.qp_bell, vgpu_link_bells[1]);
    assert_ptr_equal(s.carrier, &vgpu_carrier_qp_bar);
    assert_int_equal(vgpu_loop_count(s.loop), 1);
    /* the session's own slot holds its pair and staging memory, never mapped memory */
    assert_int_equal(bar_mapped(&s, 1, slot + (1u << 20), 4096, 0), INVALID);
    assert_int_equal(bar_mapped(&s, 1, slot - 4096, 8192, 0), INVALID);
    assert_int_equal(bar_mapped(&s, 1, 0, 4096, 0), OK);
    vgpu_regions_release(&s);
    assert_int_equal(vgpu_loop_count(s.loop), 0);
    assert_int_equal(s.qp_bell, -1);
    vgpu_carrier_end(&s);
    bar_down();
}

static void test_error_table_and_close(void **state)
{
    struct vgpu_session s = new_session();
    Vgpu__Wire__Control c = VGPU__WIRE__CONTROL__INIT;
    Vgpu__Wire__FetchErrorTable t = VGPU__WIRE__FETCH_ERROR_TABLE__INIT;
    Vgpu__Wire__Close cl = VGPU__WIRE__CLOSE__INIT;
    Vgpu__Wire__ControlReply r;
    struct vgpu_arena arena = { 0 };
    const Vgpu__Wire__ErrorTable *e;
    bool invalid_value = false;

    (void)state;
    s.init_status = cudaErrorInsufficientDriver;
    c.op_case = VGPU__WIRE__CONTROL__OP_FETCH_ERROR_TABLE;
    c.fetch_error_table = &t;
    assert_int_equal(vgpu_control_handle(&s, &c, -1, &arena, &r), 0);
    e = r.error_table;
    assert_non_null(e);
    assert_true(e->n_code > 50 && e->n_code == e->n_name && e->n_code == e->n_text);
    assert_int_equal(e->code[e->n_code - 1], -1);        /* the text for unknown codes, last */
    assert_int_equal(e->init_status, cudaErrorInsufficientDriver);
    for (size_t i = 0; i < e->n_code; i++)
        invalid_value |= e->code[i] == cudaErrorInvalidValue &&
                         !strcmp(e->name[i], "cudaErrorInvalidValue");
    assert_true(invalid_value);
    vgpu_arena_free(&arena);

    assert_false(s.closing);
    c.op_case = VGPU__WIRE__CONTROL__OP_CLOSE;
    c.close = &cl;
    assert_int_equal(run(&s, &c, -1), OK);
    assert_true(s.closing);
}

/* One FetchDeviceOutput: its reply's stdout and stderr bytes, or -1. */
static int fetch_out(struct vgpu_session *s, struct vgpu_arena *arena, Vgpu__Wire__ControlReply *r)
{
    Vgpu__Wire__Control c = VGPU__WIRE__CONTROL__INIT;
    Vgpu__Wire__FetchDeviceOutput d = VGPU__WIRE__FETCH_DEVICE_OUTPUT__INIT;

    c.op_case = VGPU__WIRE__CONTROL__OP_FETCH_DEVICE_OUTPUT;
    c.fetch_device_output = &d;
    if (vgpu_control_handle(s, &c, -1, arena, r) || r->status != OK)
        return -1;
    return (int)(r->stdout_data.len + r->stderr_data.len);
}

/*
 * devout.c in a process of its own (its fds 1 and 2 are taken): what is
 * written to stdout (stdio, buffered) and stderr is looked at only once
 * armed and after a call at which the driver writes (or a line of the
 * server's own), handed over in order, in replies of at most 512 KiB, the
 * files emptied after; a device-wide synchronize that finds nothing disarms.
 * The exit status says which step failed.
 */
static int devout_child(void)
{
    static char big[600 << 10];
    struct vgpu_session s = new_session();
    struct vgpu_arena arena = { 0 };
    Vgpu__Wire__ControlReply r;
    const char *env;
    size_t total = 0;

    if (vgpu_devout_start(&s) || vgpu_log_fd <= 2)
        return 10;
    env = getenv("VGPU_SERVER_LOG_FD");
    if (!env || atoi(env) != vgpu_log_fd)
        return 11;
    printf("kernel 1: hello\n");
    if (write(2, "an assert\n", 10) != 10)
        return 12;
    if (vgpu_devout_pending(&s, true))
        return 13;                       /* no work went to the GPU: no look */
    vgpu_devout_arm(&s);
    if (vgpu_devout_pending(&s, true))
        return 22;                       /* a client that did not announce it is never told */
    s.client_features = VGPU_FEATURE_DEVICE_OUTPUT;
    if (vgpu_devout_pending(&s, false))
        return 23;                       /* no call at which the driver writes: no look */
    if (!vgpu_devout_pending(&s, true))
        return 14;
    if (fetch_out(&s, &arena, &r) != 26 || r.more ||
        memcmp(r.stdout_data.data, "kernel 1: hello\n", 16) ||
        memcmp(r.stderr_data.data, "an assert\n", 10))
        return 15;
    vgpu_arena_free(&arena);
    if (vgpu_devout_pending(&s, true) || !s.devout_armed)
        return 16;                       /* emptied, and still armed: no synchronize yet */
    memset(big, 'x', sizeof(big));
    if (write(1, big, sizeof(big)) != (ssize_t)sizeof(big) || !vgpu_devout_pending(&s, true))
        return 17;
    if (fetch_out(&s, &arena, &r) != 512 << 10 || !r.more)
        return 18;
    total += r.stdout_data.len;
    vgpu_arena_free(&arena);
    if (write(1, "y", 1) != 1 || fetch_out(&s, &arena, &r) != (int)(sizeof(big) - total + 1) ||
        r.more || r.stdout_data.data[r.stdout_data.len - 1] != 'y' || r.stdout_data.data[0] != 'x')
        return 19;
    vgpu_arena_free(&arena);
    /* the server's own line is looked for after any call */
    vgpu_devout_say(&s, "vgpu: a line of the server's own\n");
    if (!vgpu_devout_pending(&s, false) || vgpu_devout_pending(&s, false))
        return 24;
    if (fetch_out(&s, &arena, &r) != 33 || memcmp(r.stderr_data.data, "vgpu: a line", 12))
        return 25;
    vgpu_arena_free(&arena);
    vgpu_devout_synced_all(&s);
    if (vgpu_devout_pending(&s, true) || s.devout_armed)
        return 20;                       /* synchronized and empty: disarmed */
    if (fetch_out(&s, &arena, &r) != 0 || r.more)
        return 21;
    vgpu_arena_free(&arena);
    return 0;
}

static void test_device_output(void **state)
{
    pid_t pid;
    int st;

    (void)state;
    fflush(stdout);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(devout_child());
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

/*
 * The driver's log messages for a client with a log callback: kept only
 * while it watches, a reply says they wait even with nothing printed and
 * no work armed, handed over in order with the level, cut at 2 KiB, at most
 * 64 kept between fetches (the rest counted as dropped); unwatching twice
 * is refused.
 */
static void test_driver_log(void **state)
{
    struct vgpu_session s = new_session();
    struct vgpu_arena arena = { 0 };
    Vgpu__Wire__ControlReply r;
    static char longer[3000];

    (void)state;
    s.devout_fd[0] = s.devout_fd[1] = -1;
    s.client_features = VGPU_FEATURE_DEVICE_OUTPUT;
    assert_int_equal(vgpu_devout_log_watch(&s, false), CUDA_ERROR_INVALID_VALUE);
    assert_int_equal(vgpu_devout_log_watch(&s, true), CUDA_SUCCESS);
    assert_true(s.drvlog && s.drvlog->watching);
    assert_false(vgpu_devout_pending(&s, true));
    on_log(s.drvlog, CU_LOG_LEVEL_ERROR, "first", 5);
    on_log(s.drvlog, CU_LOG_LEVEL_WARNING, "second", 6);
    assert_true(vgpu_devout_pending(&s, true));
    assert_int_equal(fetch_out(&s, &arena, &r), 0);
    assert_int_equal(r.n_driver_log, 2);
    assert_int_equal(r.driver_log_dropped, 0);
    assert_int_equal(r.driver_log[0]->level, CU_LOG_LEVEL_ERROR);
    assert_int_equal(r.driver_log[0]->text.len, 5);
    assert_memory_equal(r.driver_log[0]->text.data, "first", 5);
    assert_int_equal(r.driver_log[1]->level, CU_LOG_LEVEL_WARNING);
    assert_memory_equal(r.driver_log[1]->text.data, "second", 6);
    vgpu_arena_free(&arena);
    assert_false(vgpu_devout_pending(&s, true));

    memset(longer, 'z', sizeof(longer));
    for (int i = 0; i < 70; i++)
        on_log(s.drvlog, CU_LOG_LEVEL_ERROR, longer, sizeof(longer));
    assert_true(vgpu_devout_pending(&s, true));
    assert_int_equal(fetch_out(&s, &arena, &r), 0);
    assert_int_equal(r.n_driver_log, DRVLOG_KEPT);
    assert_int_equal(r.driver_log_dropped, 70 - DRVLOG_KEPT);
    assert_int_equal(r.driver_log[0]->text.len, DRVLOG_TEXT);
    vgpu_arena_free(&arena);
    assert_false(vgpu_devout_pending(&s, true));

    assert_int_equal(vgpu_devout_log_watch(&s, false), CUDA_SUCCESS);
    on_log(s.drvlog, CU_LOG_LEVEL_ERROR, "after", 5);
    assert_false(vgpu_devout_pending(&s, true));
    assert_int_equal(vgpu_devout_log_watch(&s, false), CUDA_ERROR_INVALID_VALUE);
}

/* One Control frame served: the reply on the frame path, the passed fd taken. */
static void test_serve(void **state)
{
    struct vgpu_session s = new_session();
    Vgpu__Wire__Envelope env = VGPU__WIRE__ENVELOPE__INIT;
    Vgpu__Wire__Control c = VGPU__WIRE__CONTROL__INIT;
    Vgpu__Wire__UnregisterRegion u = VGPU__WIRE__UNREGISTER_REGION__INIT;
    struct vgpu_frame_header h = { .seq = 9 };
    struct vgpu_frame f = { 0 }, rf = { 0 };
    uint8_t *req, *ans;
    size_t len, anslen;
    int sv[2];

    (void)state;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    s.fd = sv[0];
    u.id = 3;
    c.op_case = VGPU__WIRE__CONTROL__OP_UNREGISTER_REGION;
    c.unregister_region = &u;
    env.body_case = VGPU__WIRE__ENVELOPE__BODY_CONTROL;
    env.control = &c;
    assert_int_equal(vgpu_frame_encode(&h, &env, NULL, 0, NULL, &req, &len), 0);
    assert_int_equal(vgpu_frame_decode(req, len, NULL, NULL, NULL, &f), 0);
    s.pending_fd = memfd_of(4096, true);
    assert_int_equal(vgpu_control_serve(&s, &f), 0);
    assert_int_equal(s.pending_fd, -1);
    assert_int_equal(vgpu_fd_read_frame(sv[1], NULL, &ans, &anslen), 0);
    assert_int_equal(vgpu_frame_decode(ans, anslen, NULL, NULL, NULL, &rf), 0);
    assert_int_equal(rf.hdr.seq, 9);
    assert_true(rf.hdr.flags & VGPU_FRAME_F_REPLY);
    assert_int_equal(rf.env->body_case, VGPU__WIRE__ENVELOPE__BODY_CONTROL_REPLY);
    assert_int_equal(rf.env->control_reply->status, NO_FD);   /* an fd came with it */
    vgpu_frame_release(&rf);
    vgpu_frame_release(&f);
    free(ans);
    free(req);
    close(sv[0]);
    close(sv[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_table),
        cmocka_unit_test(test_memfd_regions),
        cmocka_unit_test(test_mapped_region),
        cmocka_unit_test(test_region_retired_after_capture),
        cmocka_unit_test(test_stray_fd),
        cmocka_unit_test(test_bar_regions),
        cmocka_unit_test(test_bar_mapped),
        cmocka_unit_test(test_queue_pair_memfd),
        cmocka_unit_test(test_queue_pair_bar),
        cmocka_unit_test(test_error_table_and_close),
        cmocka_unit_test(test_serve),
        cmocka_unit_test(test_device_output),
        cmocka_unit_test(test_driver_log),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
