/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Hostile and mistaken clients against a real vgpu-server: every check here
 * happens before CUDA is reached, so it runs without a GPU.  The server must
 * answer with a CUDA error or close that one connection, and keep serving
 * everyone else.  The second group runs the server on the fake runtime
 * (tests/fakecuda) set to abort on any value it has to refuse, so what is
 * refused there was refused by the server itself.
 *   server_input_test PATH-TO-vgpu-server FAKE-RUNTIME-DIR
 */
#include <cuda.h>
#include <cuda_runtime_api.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/futex.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "cuda.pb-c.h"
#include "cudart.pb-c.h"
#include "cudart_calltable.h"
#include "vgpu/apis.h"
#include "manual.pb-c.h"
#include "vgpu/callgen.h"
#include "rawclient.h"
#include "vgpu/fdio.h"
#include "vgpu/qp.h"
#include "vgpu/sha256.h"
#include "vgpu/wire.h"

static const char *server_bin;
static const char *fake_dir;    /* the fake libcudart.so.13's directory */
static bool on_fake;            /* the server of this group runs on it */
static char dir[64], sock_path[108], cache_dir[128], log_path[128];
static pid_t server_pid;
static uint64_t seq;
static int pass_next = -1;      /* an fd the next frame passes (SCM_RIGHTS) */

static int dial(void)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);

    strcpy(sa.sun_path, sock_path);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

/* A raw client on connection fd (sequence numbers and a passed fd are shared). */
static struct vgpu_rawclient raw(int fd)
{
    struct vgpu_rawclient c = { .fd = fd, .seq = seq, .pass_fd = pass_next };

    pass_next = -1;
    return c;
}

/* Sends env, returns the decoded reply (caller releases) or a negative error. */
static int exchange(int fd, Vgpu__Wire__Envelope *env, const struct iovec *payload, int n,
                    struct vgpu_frame *f, uint8_t **buf)
{
    struct vgpu_rawclient c = raw(fd);
    int rc = vgpu_raw_exchange(&c, env, payload, n, f, buf);

    seq = c.seq;
    return rc;
}

static int hello(int fd, uint64_t hash, char *why, size_t whylen)
{
    struct vgpu_rawclient c = raw(fd);
    int rc = vgpu_raw_hello(&c, "server_input_test", hash, why, whylen);

    seq = c.seq;
    return rc;
}

static int connect_ok(void)
{
    char why[256];
    int fd = dial();

    assert_int_equal(hello(fd, VGPU_CALL_TABLES_HASH, why, sizeof(why)), 0);
    return fd;
}

/* One call; returns its status, or a negative error when the connection failed. */
static int call(int fd, uint32_t id, const ProtobufCMessage *args, const void *seg, size_t seglen)
{
    struct vgpu_rawclient c = raw(fd);
    int rc = vgpu_raw_call(&c, id, args, seg, seglen, NULL, NULL);

    seq = c.seq;
    return rc;
}

static void server_alive(void)
{
    int fd;

    assert_int_equal(kill(server_pid, 0), 0);
    fd = connect_ok();
    close(fd);
}

/* Is the server up: alive, and its socket taking connections? */
static bool server_ready(void)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool up;

    strcpy(sa.sun_path, sock_path);
    up = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    if (fd >= 0)
        close(fd);
    return up;
}

/*
 * Each group's server gets a directory of its own (mkdtemp), so nothing a
 * run before left in /tmp under a reused pid can stand in for its socket.
 */
static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/vgpu-input-test-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(sock_path, sizeof(sock_path), "%s/server.sock", dir);
    snprintf(cache_dir, sizeof(cache_dir), "%s/cache", dir);
    snprintf(log_path, sizeof(log_path), "%s/server.log", dir);
    server_pid = fork();
    if (server_pid < 0)
        return -1;
    if (server_pid == 0) {
        char listen[128];

        int log = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

        if (log >= 0)
            dup2(log, STDERR_FILENO);
        snprintf(listen, sizeof(listen), "unix:%s", sock_path);
        if (on_fake && (setenv("LD_LIBRARY_PATH", fake_dir, 1) ||
                        setenv("VGPU_FAKE_ABORT_ON_REFUSE", "1", 1)))
            _exit(127);
        execl(server_bin, server_bin, "--listen", listen, "--cache-dir", cache_dir,
              "--log-level", "warn", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 200; i++) {
        if (server_ready())
            return 0;
        if (waitpid(server_pid, NULL, WNOHANG) == server_pid) {
            fprintf(stderr, "vgpu-server ended at start; its log is %s\n", log_path);
            return -1;
        }
        usleep(25000);
    }
    fprintf(stderr, "vgpu-server did not listen on %s within 5 s\n", sock_path);
    return -1;
}

static int setup_fake(void **state)
{
    on_fake = true;
    return setup(state);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static int teardown(void **state)
{
    int status = -1;
    bool clean;

    (void)state;
    kill(server_pid, SIGTERM);
    waitpid(server_pid, &status, 0);
    /* a clean shutdown: exit 0 and the socket removed */
    clean = WIFEXITED(status) && WEXITSTATUS(status) == 0 && access(sock_path, F_OK);
    if (!clean)
        fprintf(stderr, "vgpu-server did not shut down cleanly (status 0x%x); see %s\n",
                status, log_path);
    if (clean)
        nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
    return !clean;
}

static void test_wrong_call_table(void **state)
{
    char why[256] = "";
    int fd = dial();

    (void)state;
    assert_int_equal(hello(fd, VGPU_CALL_TABLES_HASH ^ 1, why, sizeof(why)),
                     VGPU_WIRE_E_CALL_TABLE);
    assert_non_null(strstr(why, "rebuild"));
    close(fd);
    server_alive();
}

/* Does the server's log have a line with both strings? */
static bool logged(const char *a, const char *b)
{
    char line[1024];
    bool found = false;
    FILE *f = fopen(log_path, "r");

    while (f && !found && fgets(line, sizeof(line), f))
        found = strstr(line, a) && strstr(line, b);
    if (f)
        fclose(f);
    return found;
}

/*
 * A client of another protocol version (older or newer) gets a HelloReply
 * it can read: the header carries its own version, the body says ok ==
 * false and names both versions; the server logs the same.  (Before the
 * control plane the server reset such a connection without a word.)
 */
static void test_other_versions(void **state)
{
    static const uint16_t peers[] = { VGPU_PROTOCOL_VERSION - 1, VGPU_PROTOCOL_VERSION + 1 };

    (void)state;
    for (size_t i = 0; i < sizeof(peers) / sizeof(peers[0]); i++) {
        Vgpu__Wire__Envelope env = VGPU__WIRE__ENVELOPE__INIT;
        Vgpu__Wire__Hello h = VGPU__WIRE__HELLO__INIT;
        struct vgpu_frame_header hdr = { .seq = 7 };
        struct vgpu_frame f = { 0 };
        uint8_t *req, head[VGPU_FRAME_HEADER_SIZE], *ans;
        size_t len, total;
        char want[200], peer[32], ours[32];
        int fd = dial();

        vgpu_hello_init(&h, VGPU_CALL_TABLES_HASH, VGPU_CALL_TABLES_API, "old-or-new", 1, "test");
        h.protocol_version = peers[i];
        env.body_case = VGPU__WIRE__ENVELOPE__BODY_HELLO;
        env.hello = &h;
        assert_int_equal(vgpu_frame_encode(&hdr, &env, NULL, 0, NULL, &req, &len), 0);
        req[4] = (uint8_t)peers[i];            /* as that peer's encoder writes it */
        req[5] = (uint8_t)(peers[i] >> 8);
        assert_int_equal(write(fd, req, len), (ssize_t)len);
        free(req);
        /* the answer's header: magic and the peer's own version at their fixed offsets */
        assert_int_equal(vgpu_fd_read_full(fd, head, sizeof(head)), 0);
        assert_int_equal(head[4] | head[5] << 8, peers[i]);
        total = sizeof(head) + (head[8] | head[9] << 8 | head[10] << 16 | (size_t)head[11] << 24);
        assert_true(total < 4096);
        ans = malloc(total);
        assert_non_null(ans);
        memcpy(ans, head, sizeof(head));
        assert_int_equal(vgpu_fd_read_full(fd, ans + sizeof(head), total - sizeof(head)), 0);
        /* decoded as that peer would: its version is the one it accepts */
        ans[4] = VGPU_PROTOCOL_VERSION;
        ans[5] = 0;
        assert_int_equal(vgpu_frame_decode(ans, total, NULL, NULL, NULL, &f), 0);
        assert_int_equal(f.hdr.seq, 7);
        assert_int_equal(f.env->body_case, VGPU__WIRE__ENVELOPE__BODY_HELLO_REPLY);
        assert_false(f.env->hello_reply->ok);
        assert_int_equal(f.env->hello_reply->protocol_version, VGPU_PROTOCOL_VERSION);
        vgpu_wire_version_message(peers[i], VGPU_PROTOCOL_VERSION, want, sizeof(want));
        assert_string_equal(f.env->hello_reply->message, want);
        vgpu_frame_release(&f);
        free(ans);
        close(fd);
        snprintf(peer, sizeof(peer), "protocol %u", peers[i]);
        snprintf(ours, sizeof(ours), "speaks %u", VGPU_PROTOCOL_VERSION);
        for (int t = 0; t < 50 && !logged(peer, ours); t++)
            usleep(20000);
        assert_true(logged(peer, ours));
    }
    server_alive();
}

static void test_garbage_and_unknown_ids(void **state)
{
    static const char junk[] = "GET / HTTP/1.0\r\n\r\n this is not a vgpu frame at all.....";
    int fd = dial();
    char c;

    (void)state;
    assert_int_equal(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
    /* the server closes this connection and nothing else */
    assert_true(read(fd, &c, 1) <= 0);   /* EOF, or a reset: unread junk was dropped */
    close(fd);
    server_alive();

    fd = connect_ok();
    assert_true(call(fd, VGPU_CUDART_MAX_ID + 100, NULL, NULL, 0) < 0);
    close(fd);
    server_alive();
}

static void test_foreign_handles_and_addresses(void **state)
{
    Vgpu__Cudart__CudaStreamDestroyArgs sd = VGPU__CUDART__CUDA_STREAM_DESTROY_ARGS__INIT;
    Vgpu__Cudart__CudaEventQueryArgs eq = VGPU__CUDART__CUDA_EVENT_QUERY_ARGS__INIT;
    Vgpu__Cudart__CudaMemsetArgs ms = VGPU__CUDART__CUDA_MEMSET_ARGS__INIT;
    Vgpu__Manual__CopyArgs cp = VGPU__MANUAL__COPY_ARGS__INIT;
    Vgpu__Manual__FreeArgs fr = VGPU__MANUAL__FREE_ARGS__INIT;
    static const char data[64];
    int fd = connect_ok();

    (void)state;
    /* handles and device memory this session never got */
    sd.stream = 0x7f0000001000ull;
    assert_int_equal(call(fd, VGPU_CUDART_ID_cudaStreamDestroy, &sd.base, NULL, 0),
                     cudaErrorInvalidResourceHandle);
    eq.event = 0xdeadbeef;
    assert_int_equal(call(fd, VGPU_CUDART_ID_cudaEventQuery, &eq.base, NULL, 0),
                     cudaErrorInvalidResourceHandle);
    ms.devptr = 0x7f0000200000ull;
    ms.count = 16;
    assert_int_equal(call(fd, VGPU_CUDART_ID_cudaMemset, &ms.base, NULL, 0), cudaErrorInvalidValue);
    cp.dir = VGPU__MANUAL__DIRECTION__DIR_H2D;
    cp.dst = 0x7f0000300000ull;
    cp.count = sizeof(data);
    assert_int_equal(call(fd, VGPU_CUDART_ID_cudaMemcpy, &cp.base, data, sizeof(data)),
                     cudaErrorInvalidValue);
    cp.dir = VGPU__MANUAL__DIRECTION__DIR_D2H;
    cp.src = 0x7f0000300000ull;
    assert_int_equal(call(fd, VGPU_CUDART_ID_cudaMemcpy, &cp.base, NULL, 0), cudaErrorInvalidValue);
    /* a segment that does not match its length */
    cp.dir = VGPU__MANUAL__DIRECTION__DIR_H2D;
    cp.count = 1 << 20;
    assert_int_equal(call(fd, VGPU_CUDART_ID_cudaMemcpy, &cp.base, data, sizeof(data)),
                     cudaErrorInvalidValue);
    fr.ptr = 0x7f0000400000ull;
    assert_int_equal(call(fd, VGPU_CUDART_ID_cudaFree, &fr.base, NULL, 0), cudaErrorInvalidValue);
    close(fd);
    server_alive();
}

static void test_bad_registration_and_launch(void **state)
{
    Vgpu__Manual__FatbinArgs fa = VGPU__MANUAL__FATBIN_ARGS__INIT;
    Vgpu__Manual__RegisterArgs ra = VGPU__MANUAL__REGISTER_ARGS__INIT;
    Vgpu__Manual__LaunchArgs la = VGPU__MANUAL__LAUNCH_ARGS__INIT;
    Vgpu__Manual__SymbolArgs sa = VGPU__MANUAL__SYMBOL_ARGS__INIT;
    uint8_t sha[32] = { 1 }, image[64] = { 0x50, 0xed, 0x55, 0xba };
    ProtobufCBinaryData h = { sizeof(sha), sha };
    uint64_t size = sizeof(image);
    int fd = connect_ok();

    (void)state;
    /* an image whose hash is not its content: refused, nothing cached */
    fa.n_sha256 = fa.n_size = 1;
    fa.sha256 = &h;
    fa.size = &size;
    fa.version = 1;
    fa.with_image = 1;
    assert_int_equal(call(fd, VGPU_CUDART_ID___cudaRegisterFatBinary, &fa.base, image, sizeof(image)),
                     cudaErrorInvalidValue);
    fa.version = 7;
    fa.with_image = 0;
    assert_int_equal(call(fd, VGPU_CUDART_ID___cudaRegisterFatBinary, &fa.base, NULL, 0),
                     cudaErrorInvalidValue);
    /* entries of a module that does not exist */
    ra.module = 42;
    ra.host = 0x1234;
    ra.name = "kernel";
    assert_int_equal(call(fd, VGPU_CUDART_ID___cudaRegisterFunction, &ra.base, NULL, 0),
                     cudaErrorInvalidValue);
    /* a kernel and a symbol never registered */
    la.host = 0x1234;
    assert_int_equal(call(fd, VGPU_CUDART_ID___cudaLaunchKernel, &la.base, image, 8),
                     cudaErrorInvalidDeviceFunction);
    sa.host = 0x5678;
    assert_int_equal(call(fd, VGPU_CUDART_ID_cudaGetSymbolAddress, &sa.base, NULL, 0),
                     cudaErrorInvalidSymbol);
    close(fd);
    server_alive();
}

static void test_truncated_args(void **state)
{
    static const uint8_t bad[] = { 0x0a, 0xff, 0xff, 0xff, 0x0f };
    Vgpu__Wire__Envelope env = VGPU__WIRE__ENVELOPE__INIT;
    Vgpu__Wire__CallBatch b = VGPU__WIRE__CALL_BATCH__INIT;
    Vgpu__Wire__Call c = VGPU__WIRE__CALL__INIT, *cp = &c;
    struct vgpu_frame f = { 0 };
    uint8_t *buf = NULL;
    int fd = connect_ok();
    uint32_t ids[] = { VGPU_CUDART_ID_cudaStreamCreate, VGPU_CUDART_ID_cudaMemcpy,
                       VGPU_CUDART_ID___cudaRegisterFatBinary, VGPU_CUDART_ID___cudaLaunchKernel,
                       VGPU_CUDART_ID_cudaGetDeviceProperties };

    (void)state;
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        c.call_id = ids[i];
        c.args.data = (uint8_t *)bad;
        c.args.len = sizeof(bad);
        b.n_calls = 1;
        b.calls = &cp;
        env.body_case = VGPU__WIRE__ENVELOPE__BODY_CALLS;
        env.calls = &b;
        assert_int_equal(exchange(fd, &env, NULL, 0, &f, &buf), 0);
        assert_int_equal(f.env->results->results[0]->status, cudaErrorInvalidValue);
        vgpu_frame_release(&f);
        free(buf);
        buf = NULL;
    }
    close(fd);
    server_alive();
}

/* A memfd of size bytes, sealed against shrinking or not. */
static int memfd_of(size_t size, bool seal)
{
    int m = memfd_create("vgpu-input-test", MFD_CLOEXEC | MFD_ALLOW_SEALING);

    assert_true(m >= 0);
    assert_int_equal(ftruncate(m, (off_t)size), 0);
    if (seal)
        assert_int_equal(fcntl(m, F_ADD_SEALS, F_SEAL_SHRINK), 0);
    return m;
}

/* A control operation on connection fd: the reply's ControlStatus, or a negative error. */
static int control(int fd, Vgpu__Wire__Control *c)
{
    struct vgpu_rawclient rc = raw(fd);
    struct vgpu_frame f = { 0 };
    uint8_t *buf;
    int st = vgpu_raw_control(&rc, c, &f, &buf);

    seq = rc.seq;
    if (st == 0) {
        st = f.env->control_reply->status;
        /* every failure says what went wrong */
        if (st)
            assert_true(f.env->control_reply->message && f.env->control_reply->message[0]);
        vgpu_frame_release(&f);
        free(buf);
    }
    return st;
}

/* Registers memfd as region id (control: attaches it as the queue pair); closes memfd. */
static int region(int fd, uint32_t id, uint64_t size, bool qp, int memfd)
{
    Vgpu__Wire__Control c = VGPU__WIRE__CONTROL__INIT;
    Vgpu__Wire__RegisterMemfdRegion r = VGPU__WIRE__REGISTER_MEMFD_REGION__INIT;
    Vgpu__Wire__AttachQueuePair a = VGPU__WIRE__ATTACH_QUEUE_PAIR__INIT;
    int rc;

    r.id = id;
    r.size = a.size = size;
    if (qp) {
        c.op_case = VGPU__WIRE__CONTROL__OP_ATTACH_QUEUE_PAIR;
        c.attach_queue_pair = &a;
    } else {
        c.op_case = VGPU__WIRE__CONTROL__OP_REGISTER_MEMFD_REGION;
        c.register_memfd_region = &r;
    }
    pass_next = memfd;
    rc = control(fd, &c);
    if (memfd >= 0)
        close(memfd);
    return rc;
}

/*
 * Shared memory from a client: no fd, an fd that could shrink under the
 * server, one too small, a queue pair whose header does not match its
 * size, a copy naming a region that does not exist; then a real queue pair
 * whose submission record lies about its length, which ends that session
 * and nothing else.
 */
#define QP_RING (64u << 10)
#define OK VGPU__WIRE__CONTROL_STATUS__CONTROL_OK
#define INVALID VGPU__WIRE__CONTROL_STATUS__CONTROL_INVALID
#define NO_FD VGPU__WIRE__CONTROL_STATUS__CONTROL_NO_FD
#define BUSY VGPU__WIRE__CONTROL_STATUS__CONTROL_BUSY

static void test_shared_memory(void **state)
{
    Vgpu__Manual__CopyArgs cp = VGPU__MANUAL__COPY_ARGS__INIT;
    uint64_t n = vgpu_qp_bytes(QP_RING, QP_RING);
    struct vgpu_qp q;
    struct pollfd p;
    uint8_t *mem, *w;
    char c;
    int fd = connect_ok(), fd2, m, err;

    (void)state;
    assert_int_equal(region(fd, 5, 4096, false, -1), NO_FD);
    assert_int_equal(region(fd, 5, 4096, false, memfd_of(4096, false)), NO_FD);
    assert_int_equal(region(fd, 5, 8192, false, memfd_of(4096, true)), NO_FD);
    assert_int_equal(region(fd, 5, 0, false, memfd_of(4096, true)), INVALID);
    /* a queue pair with no header at all */
    assert_int_equal(region(fd, VGPU_QP_REGION, n, true, memfd_of(n, true)), INVALID);
    cp.dir = VGPU__MANUAL__DIRECTION__DIR_H2D;
    cp.dst = 0x1000;
    cp.count = 4096;
    cp.region = 77;
    assert_int_equal(call(fd, VGPU_CUDART_ID_cudaMemcpy, &cp.base, NULL, 0), cudaErrorInvalidValue);
    m = memfd_of(n, true);
    mem = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED, m, 0);
    assert_true(mem != MAP_FAILED);
    assert_int_equal(vgpu_qp_create(&q, mem, n, QP_RING, QP_RING), 0);
    /* sizes in the header that do not add up to the region's */
    assert_int_equal(region(fd, VGPU_QP_REGION, n - 4096, true, dup(m)), INVALID);
    /* one the server accepts; another session may not take the same pair */
    assert_int_equal(region(fd, VGPU_QP_REGION, n, true, dup(m)), OK);
    fd2 = connect_ok();
    assert_int_equal(region(fd2, VGPU_QP_REGION, n, true, dup(m)), BUSY);
    close(fd2);
    close(m);
    /* then a record whose length runs past the ring */
    w = vgpu_qring_reserve(&q.sub, 64, &err);
    assert_non_null(w);
    vgpu_qring_publish(&q.sub, 64, VGPU_QP_FRAME);
    /* its header (length, kind, position) now claims more than the ring holds */
    memcpy(q.sub.data, &(uint64_t){ (uint64_t)VGPU_QP_FRAME << 24 | (QP_RING - 8) }, 8);
    __atomic_add_fetch(&q.hdr->doorbell, 1, __ATOMIC_SEQ_CST);
    syscall(SYS_futex, &q.hdr->doorbell, FUTEX_WAKE, 1, NULL, NULL, 0);
    p.fd = fd;
    p.events = POLLIN;
    assert_int_equal(poll(&p, 1, 5000), 1);
    assert_int_equal(read(fd, &c, 1), 0);          /* that session closed */
    /* and said so in the queue pair's header */
    assert_int_equal(__atomic_load_n(&q.hdr->server_state, __ATOMIC_ACQUIRE) & 1, 1);
    munmap(mem, n);
    close(fd);
    server_alive();
}

/* The function name of module mod, by the generated cuModuleGetFunction: its handle. */
static uint64_t cu_function(int fd, uint64_t mod, const char *name)
{
    Vgpu__Cuda__CuModuleGetFunctionArgs a = VGPU__CUDA__CU_MODULE_GET_FUNCTION_ARGS__INIT;
    Vgpu__Cuda__CuModuleGetFunctionRet *r;
    struct vgpu_rawclient c = raw(fd);
    uint8_t *ret = NULL;
    size_t len = 0;
    uint64_t fn;

    a.hmod = mod;
    a.name = (char *)name;
    assert_int_equal(vgpu_raw_call(&c, VGPU_CUDA_ID_cuModuleGetFunction, &a.base, NULL, 0, &ret,
                                   &len), CUDA_SUCCESS);
    seq = c.seq;
    assert_non_null(r = vgpu__cuda__cu_module_get_function_ret__unpack(NULL, len, ret));
    fn = r->hfunc;
    vgpu__cuda__cu_module_get_function_ret__free_unpacked(r, NULL);
    free(ret);
    assert_true(fn != 0);
    return fn;
}

/* A device allocation of size bytes from this session: its address. */
static uint64_t dev_alloc(int fd, uint64_t size)
{
    Vgpu__Manual__MallocArgs a = VGPU__MANUAL__MALLOC_ARGS__INIT;
    Vgpu__Manual__MallocRet *r;
    struct vgpu_rawclient c = raw(fd);
    uint8_t *ret = NULL;
    size_t len = 0;
    uint64_t ptr;

    a.size = size;
    assert_int_equal(vgpu_raw_call(&c, VGPU_CUDART_ID_cudaMalloc, &a.base, NULL, 0, &ret, &len),
                     cudaSuccess);
    seq = c.seq;
    r = vgpu__manual__malloc_ret__unpack(NULL, len, ret);
    assert_non_null(r);
    ptr = r->ptr;
    assert_true(ptr != 0);
    vgpu__manual__malloc_ret__free_unpacked(r, NULL);
    free(ret);
    return ptr;
}

/* Every id of a 1D memset (synchronous, asynchronous, per-thread stream variants). */
static const uint32_t memset_ids[] = {
    VGPU_CUDART_ID_cudaMemset, VGPU_CUDART_ID_cudaMemset_ptds,
    VGPU_CUDART_ID_cudaMemsetAsync, VGPU_CUDART_ID_cudaMemsetAsync_ptsz,
};
static const uint32_t memset2d_ids[] = {
    VGPU_CUDART_ID_cudaMemset2D, VGPU_CUDART_ID_cudaMemset2D_ptds,
    VGPU_CUDART_ID_cudaMemset2DAsync, VGPU_CUDART_ID_cudaMemset2DAsync_ptsz,
};

/* A 1D memset under every id: its status, the same for all of them. */
static int memset1(int fd, uint64_t ptr, uint64_t count)
{
    Vgpu__Cudart__CudaMemsetArgs a = VGPU__CUDART__CUDA_MEMSET_ARGS__INIT;
    int first = 0;

    /* the asynchronous forms add a stream (field 4), here the default one */
    a.devptr = ptr;
    a.value = 0x5a;
    a.count = count;
    for (size_t i = 0; i < sizeof(memset_ids) / sizeof(memset_ids[0]); i++) {
        int rc = call(fd, memset_ids[i], &a.base, NULL, 0);

        if (i == 0)
            first = rc;
        assert_int_equal(rc, first);
    }
    return first;
}

static int memset2(int fd, uint64_t ptr, uint64_t pitch, uint64_t width, uint64_t height)
{
    Vgpu__Cudart__CudaMemset2DArgs a = VGPU__CUDART__CUDA_MEMSET2_D_ARGS__INIT;
    int first = 0;

    a.devptr = ptr;
    a.pitch = pitch;
    a.value = 0x5a;
    a.width = width;
    a.height = height;
    for (size_t i = 0; i < sizeof(memset2d_ids) / sizeof(memset2d_ids[0]); i++) {
        int rc = call(fd, memset2d_ids[i], &a.base, NULL, 0);

        if (i == 0)
            first = rc;
        assert_int_equal(rc, first);
    }
    return first;
}

/*
 * Memsets that start inside the session's memory and run past it, on a
 * runtime that aborts if it sees one: the server must refuse each itself
 * (issue 11; de8f9d8 checked only the start address).  A refused call
 * leaves the session serving.
 */
static void test_extents_server_side(void **state)
{
    int fd = connect_ok();
    uint64_t p, q;

    (void)state;
    p = dev_alloc(fd, 1000);
    q = dev_alloc(fd, 1000);
    assert_int_equal(memset1(fd, p, 1000), cudaSuccess);
    assert_int_equal(memset1(fd, p + 992, 16), cudaErrorInvalidValue);
    assert_int_equal(memset1(fd, p + 999, 2), cudaErrorInvalidValue);
    assert_int_equal(memset1(fd, p, UINT64_MAX), cudaErrorInvalidValue);
    /* an empty span at the end is what CUDA accepts; one byte there is not */
    assert_int_equal(memset1(fd, p + 1000, 0), cudaSuccess);
    assert_int_equal(memset1(fd, p + 1000, 1), cudaErrorInvalidValue);
    /* a span may not run from one allocation into another */
    if (q > p)
        assert_int_equal(memset1(fd, p, q - p + 1), cudaErrorInvalidValue);
    else
        assert_int_equal(memset1(fd, q, p - q + 1), cudaErrorInvalidValue);

    /* 2D: (height - 1) * pitch + width bytes */
    assert_int_equal(memset2(fd, p, 100, 100, 10), cudaSuccess);
    assert_int_equal(memset2(fd, p, 100, 100, 11), cudaErrorInvalidValue);
    assert_int_equal(memset2(fd, p + 10, 100, 90, 10), cudaSuccess);
    assert_int_equal(memset2(fd, p + 10, 100, 91, 10), cudaErrorInvalidValue);
    assert_int_equal(memset2(fd, p, 100, 0, 1u << 30), cudaSuccess);          /* empty */
    assert_int_equal(memset2(fd, p, 100, 101, 2), cudaErrorInvalidValue);     /* width > pitch */
    /* spans whose size overflows 64 bits, multiplication and addition */
    assert_int_equal(memset2(fd, p, 1ull << 32, 1, (1ull << 32) + 2), cudaErrorInvalidValue);
    assert_int_equal(memset2(fd, p, UINT64_MAX, UINT64_MAX, 2), cudaErrorInvalidValue);
    assert_int_equal(memset2(fd, p + 999, UINT64_MAX - 998, 1, 2), cudaErrorInvalidValue);

    /* the session is still there and still works */
    assert_int_equal(memset1(fd, p, 1000), cudaSuccess);
    close(fd);
    server_alive();
}

/* 2D copies (all copies travel as cudaMemcpy): both pitched spans checked whole. */
static void test_copy_spans_server_side(void **state)
{
    Vgpu__Manual__CopyArgs cp = VGPU__MANUAL__COPY_ARGS__INIT;
    static char data[1100];
    int fd = connect_ok();
    uint64_t p, q;

    (void)state;
    p = dev_alloc(fd, 1000);
    q = dev_alloc(fd, 1000);
    cp.is_2d = true;
    cp.dir = VGPU__MANUAL__DIRECTION__DIR_H2D;
    cp.dst = p;
    cp.dpitch = 100;
    cp.spitch = 100;            /* the client's own pitch: it packs the rows */
    cp.count = 100;
    cp.height = 10;
    assert_int_equal(call(fd, VGPU_CUDART_ID_cudaMemcpy, &cp.base, data, 1000), cudaSuccess);
    cp.height = 11;
    assert_int_equal(call(fd, VGPU_CUDART_ID_cudaMemcpy, &cp.base, data, 1100),
                     cudaErrorInvalidValue);
    cp.dpitch = UINT64_MAX;
    cp.count = 1;
    cp.height = 2;
    assert_int_equal(call(fd, VGPU_CUDART_ID_cudaMemcpy, &cp.base, data, 2), cudaErrorInvalidValue);
    /* device to device: each side's own pitch */
    cp.dir = VGPU__MANUAL__DIRECTION__DIR_D2D;
    cp.dst = q;
    cp.src = p;
    cp.count = 50;
    cp.height = 10;
    cp.dpitch = 100;
    cp.spitch = 100;
    assert_int_equal(call(fd, VGPU_CUDART_ID_cudaMemcpy, &cp.base, NULL, 0), cudaSuccess);
    cp.spitch = 106;
    assert_int_equal(call(fd, VGPU_CUDART_ID_cudaMemcpy, &cp.base, NULL, 0), cudaErrorInvalidValue);
    cp.spitch = 100;
    cp.dpitch = 106;
    assert_int_equal(call(fd, VGPU_CUDART_ID_cudaMemcpy, &cp.base, NULL, 0), cudaErrorInvalidValue);
    cp.dpitch = 40;                                         /* width beyond the pitch */
    assert_int_equal(call(fd, VGPU_CUDART_ID_cudaMemcpy, &cp.base, NULL, 0), cudaErrorInvalidValue);
    close(fd);
    server_alive();
}

/* A module of one image (the fake runtime does not read it) holding a variable of size bytes at host. */
static int register_var_sized(int fd, uint64_t host, uint64_t var_size)
{
    Vgpu__Manual__FatbinArgs fa = VGPU__MANUAL__FATBIN_ARGS__INIT;
    Vgpu__Manual__RegisterArgs ra = VGPU__MANUAL__REGISTER_ARGS__INIT;
    Vgpu__Manual__FatbinRet *fr;
    uint8_t image[64], sha[VGPU_SHA256_LEN], *ret = NULL;
    ProtobufCBinaryData h = { sizeof(sha), sha };
    uint64_t size = sizeof(image);
    struct vgpu_rawclient c = raw(fd);
    char path[256];
    size_t len = 0;
    int rc;

    for (size_t i = 0; i < sizeof(image); i++)
        image[i] = (uint8_t)(i * 7 + host);
    vgpu_sha256(image, sizeof(image), sha);
    fa.n_sha256 = fa.n_size = 1;
    fa.sha256 = &h;
    fa.size = &size;
    fa.version = 1;
    fa.with_image = 1;
    assert_int_equal(vgpu_raw_call(&c, VGPU_CUDART_ID___cudaRegisterFatBinary, &fa.base, image,
                                   sizeof(image), &ret, &len), cudaSuccess);
    seq = c.seq;
    fr = vgpu__manual__fatbin_ret__unpack(NULL, len, ret);
    assert_non_null(fr);
    assert_true(fr->module != 0);
    ra.module = fr->module;
    ra.host = host;
    ra.name = "extent_var";
    ra.size = var_size;
    ra.is_var = true;
    rc = call(fd, VGPU_CUDART_ID___cudaRegisterVar, &ra.base, NULL, 0);
    vgpu__manual__fatbin_ret__free_unpacked(fr, NULL);
    free(ret);
    /* the server cached the image under its hash: leave the cache directory empty */
    snprintf(path, sizeof(path), "%s/", cache_dir);
    for (size_t i = 0; i < sizeof(sha); i++)
        snprintf(path + strlen(path), sizeof(path) - strlen(path), "%02x", sha[i]);
    snprintf(path + strlen(path), sizeof(path) - strlen(path), ".fatbin");
    assert_int_equal(unlink(path), 0);
    return rc;
}

static void register_var(int fd, uint64_t host)
{
    assert_int_equal(register_var_sized(fd, host, 64), cudaSuccess);
}

/*
 * What registrations make the server hold is bounded: host stand-ins of
 * variables at most 4 GiB a session (each at most 1 GiB), refused with
 * cudaErrorMemoryAllocation beyond, by the server itself.
 */
static void test_registration_bounds(void **state)
{
    int fd = connect_ok();

    (void)state;
    for (uint64_t i = 0; i < 4; i++)
        assert_int_equal(register_var_sized(fd, 0xa000 + 64 * i, 1ull << 30), cudaSuccess);
    assert_int_equal(register_var_sized(fd, 0xb000, 1ull << 30), cudaErrorMemoryAllocation);
    assert_int_equal(register_var_sized(fd, 0xb040, 64), cudaErrorMemoryAllocation);
    assert_true(logged("refused", "a session may register"));
    close(fd);
    server_alive();
}

static int symbol_copy(int fd, uint32_t id, Vgpu__Manual__SymbolArgs *a, const void *seg)
{
    return call(fd, id, &a->base, seg, seg ? a->count : 0);
}

/* Copies to and from a variable: offset + count within its size, checked by the server. */
static void test_symbol_spans_server_side(void **state)
{
    Vgpu__Manual__SymbolArgs sa = VGPU__MANUAL__SYMBOL_ARGS__INIT;
    static const char data[128];
    const uint32_t to = VGPU_CUDART_ID_cudaMemcpyToSymbol, from = VGPU_CUDART_ID_cudaMemcpyFromSymbol;
    int fd = connect_ok();
    uint64_t p;

    (void)state;
    register_var(fd, 0x9000);
    p = dev_alloc(fd, 1000);
    sa.host = 0x9000;
    sa.dir = VGPU__MANUAL__DIRECTION__DIR_H2D;
    sa.to_symbol = true;
    sa.count = 64;
    assert_int_equal(symbol_copy(fd, to, &sa, data), cudaSuccess);
    sa.offset = 8;
    assert_int_equal(symbol_copy(fd, to, &sa, data), cudaErrorInvalidValue);
    sa.offset = UINT64_MAX;
    sa.count = 2;
    assert_int_equal(symbol_copy(fd, to, &sa, data), cudaErrorInvalidValue);
    sa.dir = VGPU__MANUAL__DIRECTION__DIR_D2D;
    sa.devptr = p;
    sa.offset = 0;
    sa.count = 64;
    assert_int_equal(symbol_copy(fd, to, &sa, NULL), cudaSuccess);
    sa.offset = 1;
    assert_int_equal(symbol_copy(fd, to, &sa, NULL), cudaErrorInvalidValue);
    sa.to_symbol = false;
    assert_int_equal(symbol_copy(fd, from, &sa, NULL), cudaErrorInvalidValue);
    sa.dir = VGPU__MANUAL__DIRECTION__DIR_D2H;
    sa.offset = 60;
    sa.count = 8;
    assert_int_equal(symbol_copy(fd, from, &sa, NULL), cudaErrorInvalidValue);
    sa.offset = 56;
    assert_int_equal(symbol_copy(fd, from, &sa, NULL), cudaSuccess);
    close(fd);
    server_alive();
}

/*
 * The driver API's hand-written handlers against hostile arguments (fake
 * driver): modules whose hash is not their content or that are not
 * images, launches of functions, streams and contexts that are not the
 * session's, a parameter buffer shorter than the kernel's layout, launch
 * attributes that hold handles, pointer attributes of memory not the
 * session's, and a batch naming a context that is not the session's.  Each
 * is a clear CUresult; the server stays up.
 */
static void test_driver_handlers(void **state)
{
    Vgpu__Manual__ModuleLoadArgs ml = VGPU__MANUAL__MODULE_LOAD_ARGS__INIT;
    Vgpu__Manual__DrvLaunchArgs dl = VGPU__MANUAL__DRV_LAUNCH_ARGS__INIT;
    Vgpu__Manual__Dim3 one = VGPU__MANUAL__DIM3__INIT;
    Vgpu__Manual__PointerAttrArgs pa = VGPU__MANUAL__POINTER_ATTR_ARGS__INIT;
    Vgpu__Manual__GlobalArgs ga = VGPU__MANUAL__GLOBAL_ARGS__INIT;
    Vgpu__Manual__CtxArgs ca = VGPU__MANUAL__CTX_ARGS__INIT;
    static const char ptx[] = ".version 8.0\n.target sm_75\n.entry fake_fill(.param .u64 a, "
                              ".param .u32 b, .param .u64 c) { ret; }";
    uint8_t sha[32] = { 1 }, buf[64] = { 0 }, attr_val[64] = { 0 };
    ProtobufCBinaryData h = { sizeof(sha), sha }, av = { sizeof(attr_val), attr_val };
    int32_t attrs[] = { CU_POINTER_ATTRIBUTE_MEMORY_TYPE };
    uint32_t attr_id = CU_LAUNCH_ATTRIBUTE_LAUNCH_COMPLETION_EVENT;
    int fd = connect_ok();

    (void)state;
    {
        Vgpu__Cuda__CuInitArgs ia = VGPU__CUDA__CU_INIT_ARGS__INIT;

        assert_int_equal(call(fd, VGPU_CUDA_ID_cuInit, &ia.base, NULL, 0), CUDA_SUCCESS);
        /* a context of its own, current on the server from now on */
        assert_int_equal(call(fd, VGPU_CUDA_ID_cuCtxCreate_v2, &ca.base, NULL, 0), CUDA_SUCCESS);
    }
    /* an image whose hash is not its content */
    ml.sha256 = h;
    ml.size = sizeof(ptx);
    ml.with_image = true;
    assert_int_equal(call(fd, VGPU_CUDA_ID_cuModuleLoadData, &ml.base, ptx, sizeof(ptx)),
                     CUDA_ERROR_INVALID_VALUE);
    /* a size that does not match the bytes sent, and one far too large */
    vgpu_sha256((const uint8_t *)ptx, sizeof(ptx), sha);
    ml.size = sizeof(ptx) + 1;
    assert_int_equal(call(fd, VGPU_CUDA_ID_cuModuleLoadData, &ml.base, ptx, sizeof(ptx)),
                     CUDA_ERROR_INVALID_VALUE);
    ml.size = (uint64_t)1 << 40;
    ml.with_image = false;
    assert_int_equal(call(fd, VGPU_CUDA_ID_cuModuleLoadData, &ml.base, NULL, 0),
                     CUDA_ERROR_INVALID_VALUE);
    /* launches: a function that is not the session's, then one whose parameters were not sent */
    dl.grid = dl.block = &one;
    one.x = one.y = one.z = 1;
    dl.function = 0x1234;
    assert_int_equal(call(fd, VGPU_CUDA_ID_cuLaunchKernel, &dl.base, buf, 24),
                     CUDA_ERROR_INVALID_HANDLE);
    {
        Vgpu__Manual__ModuleLoadRet *r;
        struct vgpu_rawclient c = raw(fd);
        uint8_t *ret = NULL;
        size_t len = 0;
        uint64_t mod, fn = 0;

        ml.size = sizeof(ptx);
        ml.with_image = true;
        assert_int_equal(vgpu_raw_call(&c, VGPU_CUDA_ID_cuModuleLoadData, &ml.base, ptx,
                                       sizeof(ptx), &ret, &len), CUDA_SUCCESS);
        seq = c.seq;
        assert_non_null(r = vgpu__manual__module_load_ret__unpack(NULL, len, ret));
        mod = r->handle;
        vgpu__manual__module_load_ret__free_unpacked(r, NULL);
        free(ret);
        fn = cu_function(fd, mod, "fake_fill");
        dl.function = fn;
        /* 8 bytes where the layout needs 24 */
        assert_int_equal(call(fd, VGPU_CUDA_ID_cuLaunchKernel, &dl.base, buf, 8),
                         CUDA_ERROR_INVALID_VALUE);
        /* a stream that is not the session's */
        dl.stream = 0xdead0;
        assert_int_equal(call(fd, VGPU_CUDA_ID_cuLaunchKernel, &dl.base, buf, 24),
                         CUDA_ERROR_INVALID_HANDLE);
        dl.stream = 0;
        /* an attribute whose value holds an event */
        dl.ex = true;
        dl.attr_id = &attr_id;
        dl.n_attr_id = 1;
        dl.attr_value = &av;
        dl.n_attr_value = 1;
        assert_int_equal(call(fd, VGPU_CUDA_ID_cuLaunchKernelEx, &dl.base, buf, 24),
                         CUDA_ERROR_NOT_SUPPORTED);
        /* a global of a module that is not the session's */
        ga.handle = mod + 16;
        ga.name = "counter";
        assert_int_equal(call(fd, VGPU_CUDA_ID_cuModuleGetGlobal_v2, &ga.base, NULL, 0),
                         CUDA_ERROR_INVALID_HANDLE);
    }
    /* pointer attributes of memory that is not the session's */
    pa.ptr = 0x7000;
    pa.attr = attrs;
    pa.n_attr = 1;
    assert_int_equal(call(fd, VGPU_CUDA_ID_cuPointerGetAttribute, &pa.base, NULL, 0),
                     CUDA_ERROR_INVALID_VALUE);
    /* destroying a context that is not the session's */
    ca.ctx = 0xc0ffee0;
    assert_int_equal(call(fd, VGPU_CUDA_ID_cuCtxDestroy_v2, &ca.base, NULL, 0),
                     CUDA_ERROR_INVALID_CONTEXT);
    close(fd);
    server_alive();
}

/* A generated driver call with one handle output: its status, the handle in *out. */
static int cu_out_handle(int fd, uint32_t id, const ProtobufCMessage *args, uint64_t *out)
{
    struct vgpu_rawclient c = raw(fd);
    uint8_t *ret = NULL;
    size_t len = 0;
    int st = vgpu_raw_call(&c, id, args, NULL, 0, &ret, &len);

    seq = c.seq;
    *out = 0;
    if (st == CUDA_SUCCESS && id == VGPU_CUDA_ID_cuGraphCreate) {
        Vgpu__Cuda__CuGraphCreateRet *r = vgpu__cuda__cu_graph_create_ret__unpack(NULL, len, ret);

        assert_non_null(r);
        *out = r->phgraph;
        vgpu__cuda__cu_graph_create_ret__free_unpacked(r, NULL);
    } else if (st == CUDA_SUCCESS && id == VGPU_CUDA_ID_cuGraphChildGraphNodeGetGraph) {
        Vgpu__Cuda__CuGraphChildGraphNodeGetGraphRet *r =
            vgpu__cuda__cu_graph_child_graph_node_get_graph_ret__unpack(NULL, len, ret);

        assert_non_null(r);
        *out = r->phgraph;
        vgpu__cuda__cu_graph_child_graph_node_get_graph_ret__free_unpacked(r, NULL);
    } else if (st == CUDA_SUCCESS) {
        Vgpu__Cuda__CuGraphAddEmptyNodeRet *r =
            vgpu__cuda__cu_graph_add_empty_node_ret__unpack(NULL, len, ret);

        assert_non_null(r);
        *out = r->phgraphnode;
        vgpu__cuda__cu_graph_add_empty_node_ret__free_unpacked(r, NULL);
    }
    free(ret);
    return st;
}

/*
 * Graph handles (server/manual/graph.c and the generated graph calls):
 * graphs, nodes and executable graphs that are not the session's, nodes of
 * a graph that was destroyed, a dependency naming a foreign node, capture
 * info of a foreign stream, an upload stream that is not the session's.
 * The fake aborts on any value it must refuse, so each refusal is the
 * server's; the server stays up.
 */
/* How many lines of the server's log have a? */
static int times_logged(const char *a)
{
    char line[1024];
    int n = 0;
    FILE *f = fopen(log_path, "r");

    while (f && fgets(line, sizeof(line), f))
        n += strstr(line, a) != NULL;
    if (f)
        fclose(f);
    return n;
}

/* Memcpy nodes whose extents wrap 64 bits, or leave a slice's rows, are refused by the
 * server itself (it logs so; the fake driver would refuse depth > 1 too). */
static void test_memcpy_node_extents(int fd, uint64_t g)
{
    Vgpu__Manual__NodeArgs na = VGPU__MANUAL__NODE_ARGS__INIT;
    Vgpu__Manual__Copy3D c = VGPU__MANUAL__COPY3_D__INIT;
    uint64_t p = dev_alloc(fd, 4096), q = dev_alloc(fd, 4096), n;

    na.graph = g;
    na.copy = &c;
    c.src_type = c.dst_type = CU_MEMORYTYPE_DEVICE;
    c.src = p;
    c.dst = q;
    c.src_pitch = c.dst_pitch = 64;
    c.src_height = c.dst_height = 4;
    c.width = 64;
    c.height = 4;
    c.depth = 1;
    assert_int_equal(cu_out_handle(fd, VGPU_CUDA_ID_cuGraphAddMemcpyNode, &na.base, &n),
                     CUDA_SUCCESS);
    assert_int_equal(times_logged("memcpy node refused"), 0);
    /* z * pitch * rows wraps 64 bits back into the allocation */
    c.src_pitch = c.src_height = 0x80000000u;
    c.src_z = 4;
    c.height = 1;
    assert_int_equal(cu_out_handle(fd, VGPU_CUDA_ID_cuGraphAddMemcpyNode, &na.base, &n),
                     CUDA_ERROR_INVALID_VALUE);
    assert_int_equal(times_logged("memcpy node refused"), 1);
    /* (depth - 1) * pitch * rows wraps */
    c.src_z = 0;
    c.depth = 5;
    assert_int_equal(cu_out_handle(fd, VGPU_CUDA_ID_cuGraphAddMemcpyNode, &na.base, &n),
                     CUDA_ERROR_INVALID_VALUE);
    assert_int_equal(times_logged("memcpy node refused"), 2);
    /* rows of a slice overrun by y + height */
    c.src_pitch = 64;
    c.src_height = 4;
    c.height = 4;
    c.src_y = 2;
    c.depth = 2;
    assert_int_equal(cu_out_handle(fd, VGPU_CUDA_ID_cuGraphAddMemcpyNode, &na.base, &n),
                     CUDA_ERROR_INVALID_VALUE);
    assert_int_equal(times_logged("memcpy node refused"), 3);
    server_alive();
}

/* The graph a child graph node embeds is the node's: cuGraphDestroy refuses it, and the
 * parent's destruction frees it (its handle leaves the table then). */
static void test_embedded_graph(int fd, uint64_t g)
{
    Vgpu__Cuda__CuGraphCreateArgs gc = VGPU__CUDA__CU_GRAPH_CREATE_ARGS__INIT;
    Vgpu__Cuda__CuGraphAddChildGraphNodeArgs cn = VGPU__CUDA__CU_GRAPH_ADD_CHILD_GRAPH_NODE_ARGS__INIT;
    Vgpu__Cuda__CuGraphChildGraphNodeGetGraphArgs cg =
        VGPU__CUDA__CU_GRAPH_CHILD_GRAPH_NODE_GET_GRAPH_ARGS__INIT;
    Vgpu__Manual__GraphArgs ga = VGPU__MANUAL__GRAPH_ARGS__INIT;
    uint64_t child, node, embedded;

    assert_int_equal(cu_out_handle(fd, VGPU_CUDA_ID_cuGraphCreate, &gc.base, &child),
                     CUDA_SUCCESS);
    cn.hgraph = g;
    cn.childgraph = child;
    assert_int_equal(cu_out_handle(fd, VGPU_CUDA_ID_cuGraphAddChildGraphNode, &cn.base, &node),
                     CUDA_SUCCESS);
    cg.hnode = node;
    assert_int_equal(cu_out_handle(fd, VGPU_CUDA_ID_cuGraphChildGraphNodeGetGraph, &cg.base,
                                   &embedded), CUDA_SUCCESS);
    assert_true(embedded && embedded != child);
    ga.graph = embedded;
    assert_int_equal(call(fd, VGPU_CUDA_ID_cuGraphDestroy, &ga.base, NULL, 0),
                     CUDA_ERROR_INVALID_VALUE);
    /* the graph it was cloned from is the guest's own */
    ga.graph = child;
    assert_int_equal(call(fd, VGPU_CUDA_ID_cuGraphDestroy, &ga.base, NULL, 0), CUDA_SUCCESS);
}

/* A call whose reply is wanted: its status, the reply (caller frees) in *ret. */
static int call_ret(int fd, uint32_t id, const ProtobufCMessage *args, uint8_t **ret, size_t *len)
{
    struct vgpu_rawclient c = raw(fd);
    int st = vgpu_raw_call(&c, id, args, NULL, 0, ret, len);

    seq = c.seq;
    return st;
}

/*
 * Graph memory, conditional nodes and the driver's log (server/manual/
 * graph.c, driver.c): foreign graphs, dependencies, nodes, handles and
 * executable graphs; an allocation node of 0 bytes, without pool
 * properties or in host memory; a conditional node of an unknown type or
 * with more bodies than its type allows; a body graph destroyed alone; a
 * log read with a size past what the server reads.  The fake aborts on
 * anything it must refuse, so each refusal is the server's.
 */
static void test_graph_memory_and_cond(int fd, uint64_t g, uint64_t ctx)
{
    Vgpu__Manual__MemAllocNodeArgs ma = VGPU__MANUAL__MEM_ALLOC_NODE_ARGS__INIT;
    Vgpu__Manual__MemProp prop = VGPU__MANUAL__MEM_PROP__INIT;
    Vgpu__Manual__MemLocation loc = VGPU__MANUAL__MEM_LOCATION__INIT;
    Vgpu__Manual__NodeArgs na = VGPU__MANUAL__NODE_ARGS__INIT;
    Vgpu__Manual__CondNodeArgs cn = VGPU__MANUAL__COND_NODE_ARGS__INIT;
    Vgpu__Cuda__CuGraphConditionalHandleCreateArgs hc =
        VGPU__CUDA__CU_GRAPH_CONDITIONAL_HANDLE_CREATE_ARGS__INIT;
    Vgpu__Cuda__CuGraphConditionalHandleCreateRet *hr;
    Vgpu__Manual__CondNodeRet *cr;
    Vgpu__Manual__LogsDumpRet *lr;
    Vgpu__Manual__GraphArgs ga = VGPU__MANUAL__GRAPH_ARGS__INIT;
    Vgpu__Manual__LogsDumpArgs la = VGPU__MANUAL__LOGS_DUMP_ARGS__INIT;
    uint64_t foreign[1] = { 0x5150 }, handle, body;
    uint8_t *ret = NULL;
    size_t len = 0;

    loc.type = CU_MEM_LOCATION_TYPE_DEVICE;
    prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location = &loc;
    ma.graph = g + 8;
    ma.prop = &prop;
    ma.bytesize = 4096;
    assert_int_equal(call(fd, VGPU_CUDA_ID_cuGraphAddMemAllocNode, &ma.base, NULL, 0),
                     CUDA_ERROR_INVALID_HANDLE);
    ma.graph = g;
    ma.deps = foreign;
    ma.n_deps = 1;
    assert_int_equal(call(fd, VGPU_CUDA_ID_cuGraphAddMemAllocNode, &ma.base, NULL, 0),
                     CUDA_ERROR_INVALID_HANDLE);
    ma.n_deps = 0;
    ma.bytesize = 0;
    assert_int_equal(call(fd, VGPU_CUDA_ID_cuGraphAddMemAllocNode, &ma.base, NULL, 0),
                     CUDA_ERROR_INVALID_VALUE);
    ma.bytesize = 4096;
    ma.prop = NULL;
    assert_int_equal(call(fd, VGPU_CUDA_ID_cuGraphAddMemAllocNode, &ma.base, NULL, 0),
                     CUDA_ERROR_INVALID_VALUE);
    ma.prop = &prop;
    loc.type = CU_MEM_LOCATION_TYPE_HOST;
    assert_int_equal(call(fd, VGPU_CUDA_ID_cuGraphAddMemAllocNode, &ma.base, NULL, 0),
                     CUDA_ERROR_NOT_SUPPORTED);
    loc.type = CU_MEM_LOCATION_TYPE_DEVICE;
    assert_int_equal(call(fd, VGPU_CUDA_ID_cuGraphAddMemAllocNode, &ma.base, NULL, 0),
                     CUDA_SUCCESS);
    na.node = 0x5150;
    assert_int_equal(call(fd, VGPU_CUDA_ID_cuGraphMemAllocNodeGetParams, &na.base, NULL, 0),
                     CUDA_ERROR_INVALID_HANDLE);

    /* conditional nodes: the handle must be the session's, the bodies what the type allows */
    hc.hgraph = g;
    hc.ctx = ctx;           /* the driver needs it named (the fake as the real one) */
    assert_int_equal(call_ret(fd, VGPU_CUDA_ID_cuGraphConditionalHandleCreate, &hc.base, &ret,
                              &len), CUDA_SUCCESS);
    hr = vgpu__cuda__cu_graph_conditional_handle_create_ret__unpack(NULL, len, ret);
    assert_non_null(hr);
    handle = hr->phandle_out;
    vgpu__cuda__cu_graph_conditional_handle_create_ret__free_unpacked(hr, NULL);
    free(ret);
    cn.graph = g;
    cn.handle = 0x77;
    cn.type = CU_GRAPH_COND_TYPE_IF;
    cn.size = 1;
    assert_int_equal(call(fd, VGPU_CUDA_ID_cuGraphAddNode_v2, &cn.base, NULL, 0),
                     CUDA_ERROR_INVALID_HANDLE);
    cn.handle = handle;
    cn.size = 3;
    assert_int_equal(call(fd, VGPU_CUDA_ID_cuGraphAddNode_v2, &cn.base, NULL, 0),
                     CUDA_ERROR_INVALID_VALUE);
    cn.type = 7;
    cn.size = 1;
    assert_int_equal(call(fd, VGPU_CUDA_ID_cuGraphAddNode_v2, &cn.base, NULL, 0),
                     CUDA_ERROR_INVALID_VALUE);
    cn.type = CU_GRAPH_COND_TYPE_WHILE;
    cn.size = 2;
    assert_int_equal(call(fd, VGPU_CUDA_ID_cuGraphAddNode, &cn.base, NULL, 0),
                     CUDA_ERROR_INVALID_VALUE);
    cn.size = 1;
    cn.ctx = 0xc7c7;
    assert_int_equal(call(fd, VGPU_CUDA_ID_cuGraphAddNode_v2, &cn.base, NULL, 0),
                     CUDA_ERROR_INVALID_HANDLE);
    cn.ctx = 0;
    ret = NULL;
    assert_int_equal(call_ret(fd, VGPU_CUDA_ID_cuGraphAddNode_v2, &cn.base, &ret, &len),
                     CUDA_SUCCESS);
    cr = vgpu__manual__cond_node_ret__unpack(NULL, len, ret);
    assert_non_null(cr);
    assert_int_equal(cr->n_bodies, 1);
    body = cr->bodies[0];
    vgpu__manual__cond_node_ret__free_unpacked(cr, NULL);
    free(ret);
    /* a body goes with its node, never alone */
    ga.graph = body;
    assert_int_equal(call(fd, VGPU_CUDA_ID_cuGraphDestroy, &ga.base, NULL, 0),
                     CUDA_ERROR_INVALID_VALUE);
    ga.graph = 0xe7ec0;
    assert_int_equal(call(fd, VGPU_CUDA_ID_cuGraphExecDestroy, &ga.base, NULL, 0),
                     CUDA_ERROR_INVALID_HANDLE);

    /* the driver's log: a size past what the server reads is what it reads */
    la.size = (uint64_t)1 << 40;
    ret = NULL;
    assert_int_equal(call_ret(fd, VGPU_CUDA_ID_cuLogsDumpToMemory, &la.base, &ret, &len),
                     CUDA_SUCCESS);
    lr = vgpu__manual__logs_dump_ret__unpack(NULL, len, ret);
    assert_non_null(lr);
    assert_true(lr->text.len <= 32768);
    vgpu__manual__logs_dump_ret__free_unpacked(lr, NULL);
    free(ret);
}

static void test_graph_handlers(void **state)
{
    Vgpu__Cuda__CuInitArgs ia = VGPU__CUDA__CU_INIT_ARGS__INIT;
    Vgpu__Manual__CtxArgs ca = VGPU__MANUAL__CTX_ARGS__INIT;
    Vgpu__Cuda__CuGraphCreateArgs gc = VGPU__CUDA__CU_GRAPH_CREATE_ARGS__INIT;
    Vgpu__Cuda__CuGraphAddEmptyNodeArgs en = VGPU__CUDA__CU_GRAPH_ADD_EMPTY_NODE_ARGS__INIT;
    Vgpu__Cuda__CuGraphNodeGetTypeArgs nt = VGPU__CUDA__CU_GRAPH_NODE_GET_TYPE_ARGS__INIT;
    Vgpu__Cuda__CuGraphExecGetFlagsArgs xf = VGPU__CUDA__CU_GRAPH_EXEC_GET_FLAGS_ARGS__INIT;
    Vgpu__Cuda__CuGraphLaunchArgs gl = VGPU__CUDA__CU_GRAPH_LAUNCH_ARGS__INIT;
    Vgpu__Manual__GraphArgs ga = VGPU__MANUAL__GRAPH_ARGS__INIT;
    Vgpu__Manual__InstantiateArgs in = VGPU__MANUAL__INSTANTIATE_ARGS__INIT;
    Vgpu__Manual__CaptureInfoArgs ci = VGPU__MANUAL__CAPTURE_INFO_ARGS__INIT;
    uint64_t g, n0, n1, ctx, foreign[1] = { 0x5150 };
    Vgpu__Manual__CtxRet *cx;
    uint8_t *cret = NULL;
    size_t clen = 0;
    int fd = connect_ok();

    (void)state;
    assert_int_equal(call(fd, VGPU_CUDA_ID_cuInit, &ia.base, NULL, 0), CUDA_SUCCESS);
    assert_int_equal(call_ret(fd, VGPU_CUDA_ID_cuCtxCreate_v2, &ca.base, &cret, &clen), CUDA_SUCCESS);
    cx = vgpu__manual__ctx_ret__unpack(NULL, clen, cret);
    assert_non_null(cx);
    ctx = cx->ctx;
    vgpu__manual__ctx_ret__free_unpacked(cx, NULL);
    free(cret);
    assert_int_equal(cu_out_handle(fd, VGPU_CUDA_ID_cuGraphCreate, &gc.base, &g), CUDA_SUCCESS);
    en.hgraph = g;
    assert_int_equal(cu_out_handle(fd, VGPU_CUDA_ID_cuGraphAddEmptyNode, &en.base, &n0),
                     CUDA_SUCCESS);
    /* a dependency that is not the session's node */
    en.dependencies = foreign;
    en.n_dependencies = en.numdependencies = 1;
    assert_int_equal(cu_out_handle(fd, VGPU_CUDA_ID_cuGraphAddEmptyNode, &en.base, &n1),
                     CUDA_ERROR_INVALID_HANDLE);
    en.dependencies = &n0;
    assert_int_equal(cu_out_handle(fd, VGPU_CUDA_ID_cuGraphAddEmptyNode, &en.base, &n1),
                     CUDA_SUCCESS);
    /* graphs and executable graphs that are not the session's */
    ga.graph = g + 8;
    assert_int_equal(call(fd, VGPU_CUDA_ID_cuGraphDestroy, &ga.base, NULL, 0),
                     CUDA_ERROR_INVALID_HANDLE);
    assert_int_equal(call(fd, VGPU_CUDA_ID_cuGraphDebugDotPrint, &ga.base, NULL, 0),
                     CUDA_ERROR_INVALID_HANDLE);
    in.graph = g + 8;
    assert_int_equal(call(fd, VGPU_CUDA_ID_cuGraphInstantiateWithParams, &in.base, NULL, 0),
                     CUDA_ERROR_INVALID_HANDLE);
    in.graph = g;
    in.upload_stream = 0xdead0;
    in.flags = CUDA_GRAPH_INSTANTIATE_FLAG_UPLOAD;
    assert_int_equal(call(fd, VGPU_CUDA_ID_cuGraphInstantiateWithParams, &in.base, NULL, 0),
                     CUDA_ERROR_INVALID_HANDLE);
    xf.hgraphexec = 0xe7ec0;
    assert_int_equal(call(fd, VGPU_CUDA_ID_cuGraphExecGetFlags, &xf.base, NULL, 0),
                     CUDA_ERROR_INVALID_HANDLE);
    gl.hgraphexec = 0xe7ec0;
    assert_int_equal(call(fd, VGPU_CUDA_ID_cuGraphLaunch, &gl.base, NULL, 0),
                     CUDA_ERROR_INVALID_HANDLE);
    ci.stream = 0xdead0;
    ci.want_deps = ci.want_count = true;
    assert_int_equal(call(fd, VGPU_CUDA_ID_cuStreamGetCaptureInfo_v3, &ci.base, NULL, 0),
                     CUDA_ERROR_INVALID_HANDLE);
    test_memcpy_node_extents(fd, g);
    test_embedded_graph(fd, g);
    test_graph_memory_and_cond(fd, g, ctx);
    /* the graph goes, and its nodes' handles with it */
    nt.hnode = n1;
    assert_int_equal(call(fd, VGPU_CUDA_ID_cuGraphNodeGetType, &nt.base, NULL, 0), CUDA_SUCCESS);
    ga.graph = g;
    assert_int_equal(call(fd, VGPU_CUDA_ID_cuGraphDestroy, &ga.base, NULL, 0), CUDA_SUCCESS);
    assert_int_equal(call(fd, VGPU_CUDA_ID_cuGraphNodeGetType, &nt.base, NULL, 0),
                     CUDA_ERROR_INVALID_HANDLE);
    assert_int_equal(call(fd, VGPU_CUDA_ID_cuGraphDestroy, &ga.base, NULL, 0),
                     CUDA_ERROR_INVALID_HANDLE);
    close(fd);
    server_alive();
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wrong_call_table),
        cmocka_unit_test(test_other_versions),
        cmocka_unit_test(test_garbage_and_unknown_ids),
        cmocka_unit_test(test_foreign_handles_and_addresses),
        cmocka_unit_test(test_bad_registration_and_launch),
        cmocka_unit_test(test_truncated_args),
        cmocka_unit_test(test_shared_memory),
    };

    const struct CMUnitTest on_fake_runtime[] = {
        cmocka_unit_test(test_extents_server_side),
        cmocka_unit_test(test_copy_spans_server_side),
        cmocka_unit_test(test_symbol_spans_server_side),
        cmocka_unit_test(test_registration_bounds),
        cmocka_unit_test(test_driver_handlers),
        cmocka_unit_test(test_graph_handlers),
    };
    int failed;

    if (argc != 3) {
        fprintf(stderr, "usage: %s PATH-TO-vgpu-server FAKE-RUNTIME-DIR\n", argv[0]);
        return 2;
    }
    server_bin = argv[1];
    fake_dir = argv[2];
    signal(SIGPIPE, SIG_IGN);
    failed = cmocka_run_group_tests(tests, setup, teardown);
    return failed + cmocka_run_group_tests(on_fake_runtime, setup_fake, teardown);
}
