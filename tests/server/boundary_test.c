/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The tenant boundary at vgpu-server's sockets, against a real server (no
 * GPU needed): typed listeners (a device-link HELLO on a client socket is
 * refused, a program on a device socket too, a device socket with an
 * identity takes only that identity), link records that are not what their
 * header says end their channel and leave no process behind, and the
 * bounds on sessions per socket, per VM and on connections not yet past
 * their handshake answer with a sentence.
 *   boundary_test PATH-TO-vgpu-server
 */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "cuda_calltable.h"
#include "cudart_calltable.h"
#include "nvml_calltable.h"
#include "vgpu/apis.h"
#include "vgpu/qp.h"
#include "rawclient.h"
#include "vgpu/fdio.h"
#include "vgpu/wire.h"

#define LINK_MAGIC 0x4c445056u
enum { HELLO = 1, FRAME = 2, CLOSE = 3, FAIL = 4 };

static const char *server_bin;
static char dir[64], log_path[96];
static pid_t server_pid;

static void path_of(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", dir, name);
}

static int dial(const char *name)
{
    struct vgpu_rawclient c;
    char p[108];

    path_of(p, sizeof(p), name);
    assert_int_equal(vgpu_raw_dial(&c, p), 0);
    return c.fd;
}

/* Processes below the server (sessions, links), from /proc. */
static int descendants(void)
{
    int ppid_of[1 << 16] = { 0 }, n = 0;
    DIR *d = opendir("/proc");
    struct dirent *e;

    assert_non_null(d);
    while ((e = readdir(d))) {
        char p[300], buf[512], *rp;
        int pid = atoi(e->d_name), ppid;
        FILE *f;

        if (pid <= 0 || pid >= (1 << 16))
            continue;
        snprintf(p, sizeof(p), "/proc/%d/stat", pid);
        if (!(f = fopen(p, "r")))
            continue;
        if (fgets(buf, sizeof(buf), f) && (rp = strrchr(buf, ')')) &&
            sscanf(rp + 2, "%*c %d", &ppid) == 1)
            ppid_of[pid] = ppid;
        fclose(f);
    }
    closedir(d);
    for (int pid = 1; pid < (1 << 16); pid++)
        for (int up = ppid_of[pid], hops = 0; up > 1 && hops < 64; up = ppid_of[up], hops++)
            if (up == server_pid) {
                n++;
                break;
            }
    return n;
}

/* Waits up to ms for exactly n processes below the server; returns the last count. */
static int settle(int n, int ms)
{
    int got = descendants();

    for (int t = 0; got != n && t < ms; t += 20) {
        usleep(20000);
        got = descendants();
    }
    return got;
}

static bool log_has(const char *needle)
{
    char buf[1 << 16];
    FILE *f = fopen(log_path, "r");
    size_t n;

    if (!f)
        return false;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, needle) != NULL;
}

/* The peer closed within ms (EOF or reset, whatever it sent before). */
static bool closed_within(int fd, int ms)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    char buf[4096];

    while (poll(&p, 1, ms) == 1) {
        ssize_t n = read(fd, buf, sizeof(buf));

        if (n <= 0)
            return true;
    }
    return false;
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void send_record(int fd, uint16_t type, uint32_t channel, const void *payload, uint32_t len)
{
    uint8_t h[16] = { 0 };
    struct iovec iov[2] = { { h, 16 }, { (void *)payload, len } };

    put32(h, LINK_MAGIC);
    h[4] = (uint8_t)type;
    put32(h + 8, channel);
    put32(h + 12, len);
    assert_int_equal(vgpu_fd_writev_all(fd, iov, len ? 2 : 1), 0);
}

static void send_hello(int fd, uint32_t vm, char pool, uint8_t prio)
{
    uint8_t hello[12] = { 0 };

    put32(hello, vm);
    hello[4] = (uint8_t)pool;
    hello[5] = prio;
    put32(hello + 8, 1);
    send_record(fd, HELLO, 0, hello, sizeof(hello));
}

/* The next record's type (its payload dropped) and channel; -1 when none came within 5 s. */
static int next_record(int fd, uint32_t *channel)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    uint8_t h[16], *payload;
    uint32_t len;

    if (poll(&p, 1, 5000) != 1 || vgpu_fd_read_full(fd, h, 16) || get32(h) != LINK_MAGIC)
        return -1;
    len = get32(h + 12);
    payload = malloc(len ? len : 1);
    assert_non_null(payload);
    assert_int_equal(vgpu_fd_read_full(fd, payload, len), 0);
    free(payload);
    *channel = get32(h + 8);
    return h[4] | h[5] << 8;
}

/* A whole Hello frame, as a guest's shim would send it through the device. */
static uint8_t *hello_frame(size_t *len)
{
    Vgpu__Wire__Envelope env = VGPU__WIRE__ENVELOPE__INIT;
    Vgpu__Wire__Hello hello = VGPU__WIRE__HELLO__INIT;
    struct vgpu_frame_header h = { .seq = 1 };
    uint8_t *out;

    vgpu_hello_init(&hello, VGPU_CALL_TABLES_HASH, VGPU_CALL_TABLES_API, "boundary_test", 1, "guest");
    env.body_case = VGPU__WIRE__ENVELOPE__BODY_HELLO;
    env.hello = &hello;
    assert_int_equal(vgpu_frame_encode(&h, &env, NULL, 0, NULL, &out, len), 0);
    return out;
}

/* The Control a guest process sends to attach its queue pair at bar_offset. */
static uint8_t *attach_frame(uint64_t bar_offset, uint64_t size, size_t *len)
{
    Vgpu__Wire__Envelope env = VGPU__WIRE__ENVELOPE__INIT;
    Vgpu__Wire__Control m = VGPU__WIRE__CONTROL__INIT;
    Vgpu__Wire__AttachQueuePair a = VGPU__WIRE__ATTACH_QUEUE_PAIR__INIT;
    struct vgpu_frame_header h = { .seq = 2 };
    uint8_t *out;

    a.size = size;
    a.in_bar = true;
    a.bar_offset = bar_offset;
    m.op_case = VGPU__WIRE__CONTROL__OP_ATTACH_QUEUE_PAIR;
    m.attach_queue_pair = &a;
    env.body_case = VGPU__WIRE__ENVELOPE__BODY_CONTROL;
    env.control = &m;
    assert_int_equal(vgpu_frame_encode(&h, &env, NULL, 0, NULL, &out, len), 0);
    return out;
}

static int admin_answer_says(const char *req, const char *needle)
{
    char p[108], buf[16384];
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    size_t got = 0;
    ssize_t n;

    path_of(p, sizeof(p), "admin");
    strcpy(sa.sun_path, p);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
    while (got < sizeof(buf) - 1 && (n = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
        got += (size_t)n;
    buf[got] = '\0';
    close(fd);
    return strstr(buf, needle) != NULL;
}

static int admin_says(const char *needle)
{
    return admin_answer_says("status json\n", needle);
}

/* The admin answer, or the log, says needle within 3 s (another process writes it). */
static bool admin_says_soon(const char *needle)
{
    for (int t = 0; t < 150 && !admin_says(needle); t++)
        usleep(20000);
    return admin_says(needle);
}

static bool log_has_soon(const char *needle)
{
    for (int t = 0; t < 150 && !log_has(needle); t++)
        usleep(20000);
    return log_has(needle);
}

static int hello_on(int fd, char *why, size_t whylen)
{
    struct vgpu_rawclient c = { .fd = fd, .pass_fd = -1 };

    return vgpu_raw_hello(&c, "boundary_test", VGPU_CALL_TABLES_HASH, why, whylen);
}

static int setup(void **state)
{
    char conf[96];
    FILE *f;

    (void)state;
    /* a directory of its own, never one a run before left under a reused pid */
    snprintf(dir, sizeof(dir), "/tmp/vgpu-boundary-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(log_path, sizeof(log_path), "%s/server.log", dir);
    snprintf(conf, sizeof(conf), "%s/vgpu.conf", dir);
    f = fopen(conf, "w");
    if (!f)
        return -1;
    fprintf(f, "[server]\nadmin = %s/admin\ncache_dir = %s/cache\nmax_pending = 4\nlog_level = info\n"
               "[listen programs]\naddress = unix:%s/client.sock\nvm_id = 100\npriority = low\n"
               "[listen few]\naddress = unix:%s/few.sock\nvm_id = 101\nsessions = 1\n"
               "[listen devices]\naddress = unix:%s/dev.sock\ntype = device\n"
               "[listen vm7]\naddress = unix:%s/vm7.sock\ntype = device\nvm_id = 7\npool = A\n"
               "priority = high\n"
               "[vm 100]\nsessions = 2\n", dir, dir, dir, dir, dir, dir);
    fclose(f);
    server_pid = fork();
    if (server_pid == 0) {
        int lfd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

        dup2(lfd, 2);
        execl(server_bin, server_bin, "--config", conf, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 100; i++) {
        char p[108];

        path_of(p, sizeof(p), "admin");
        if (!access(p, F_OK))
            return 0;
        usleep(50000);
    }
    return -1;
}

static int teardown(void **state)
{
    char cmd[128];
    int status = -1;

    (void)state;
    kill(server_pid, SIGTERM);
    waitpid(server_pid, &status, 0);
    if (getenv("VGPU_TEST_KEEP"))
        return 0;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) || !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* A program that says "I am vgpu-stub, vm 200, high" on a client socket is refused. */
static void test_link_hello_on_client_socket(void **state)
{
    char why[256];
    int fd = dial("client.sock"), ok;

    (void)state;
    send_hello(fd, 200, 'A', 2);
    assert_true(closed_within(fd, 5000));
    close(fd);
    assert_int_equal(settle(0, 3000), 0);
    assert_true(log_has("device-link HELLO there was refused"));
    /* the socket's own identity still works, and nobody became vm 200 */
    ok = dial("client.sock");
    assert_int_equal(hello_on(ok, why, sizeof(why)), 0);
    assert_true(admin_says("\"vm_id\":100"));
    assert_false(admin_says("\"vm_id\":200"));
    close(ok);
    assert_int_equal(settle(0, 3000), 0);
}

/* A program on a device socket is closed without a session. */
static void test_program_on_device_socket(void **state)
{
    char why[256];
    int fd = dial("dev.sock");

    (void)state;
    assert_true(hello_on(fd, why, sizeof(why)) < 0);
    close(fd);
    assert_int_equal(settle(0, 3000), 0);
    assert_true(log_has("is a device socket"));
}

/* A device socket configured for vm 7 takes vm 7's HELLO only. */
static void test_pinned_device_socket(void **state)
{
    size_t flen;
    uint8_t *frame = hello_frame(&flen);
    uint32_t ch = 0;
    int fd = dial("vm7.sock");

    (void)state;
    send_hello(fd, 8, 'A', 2);
    assert_true(closed_within(fd, 5000));
    close(fd);
    assert_true(log_has("its HELLO says vm 8"));

    fd = dial("vm7.sock");
    send_hello(fd, 7, 'A', 2);
    send_record(fd, FRAME, 5, frame, (uint32_t)flen);
    assert_int_equal(next_record(fd, &ch), FRAME);
    assert_int_equal(ch, 5);
    assert_true(admin_says("\"vm_id\":7"));
    close(fd);
    assert_int_equal(settle(0, 3000), 0);
    free(frame);
}

/*
 * FRAME records that are not one whole frame (too short for a header, or a
 * header announcing more than the record holds) end their channel with a
 * FAIL, the link goes on serving, and closing it leaves no process.  (The
 * old link waited for the session's answer for ever, and both processes
 * outlived the device.)
 */
static void test_malformed_frame_records(void **state)
{
    uint8_t shortrec[10] = { 0 }, liar[40] = { 0 };
    struct vgpu_frame_header h = { .magic = VGPU_FRAME_MAGIC, .version = VGPU_PROTOCOL_VERSION,
                                   .env_len = 100 };
    size_t flen;
    uint8_t *frame = hello_frame(&flen);
    uint32_t ch = 0;
    int fd = dial("dev.sock");

    (void)state;
    send_hello(fd, 9, 'A', 1);
    send_record(fd, FRAME, 1, shortrec, sizeof(shortrec));
    assert_int_equal(next_record(fd, &ch), FAIL);
    assert_int_equal(ch, 1);
    vgpu_frame_header_encode(&h, liar);
    send_record(fd, FRAME, 2, liar, sizeof(liar));
    assert_int_equal(next_record(fd, &ch), FAIL);
    assert_int_equal(ch, 2);
    /* a channel with a session, then a malformed record on it: the session ends */
    send_record(fd, FRAME, 3, frame, (uint32_t)flen);
    assert_int_equal(next_record(fd, &ch), FRAME);
    assert_int_equal(settle(2, 3000), 2);      /* the link and channel 3's session */
    send_record(fd, FRAME, 3, shortrec, 0);
    assert_int_equal(next_record(fd, &ch), FAIL);
    assert_int_equal(settle(1, 3000), 1);
    assert_true(log_has("is not one whole frame"));
    close(fd);
    assert_int_equal(settle(0, 3000), 0);
    free(frame);
}

/*
 * Device links are listed (vgpuctl), with their channels; two that say one
 * vm_id are warned about, in the log when the second comes and in every
 * format of the report while both are up.
 */
static void test_duplicate_vm_links(void **state)
{
    size_t flen;
    uint8_t *frame = hello_frame(&flen);
    uint32_t ch = 0;
    int a = dial("dev.sock"), b;

    (void)state;
    send_hello(a, 11, 'A', 2);
    send_record(a, FRAME, 4, frame, (uint32_t)flen);
    assert_int_equal(next_record(a, &ch), FRAME);
    assert_true(admin_says("\"links\":[{\"pid\":"));
    assert_true(admin_says("\"vm_id\":11,\"pool\":\"A\",\"priority\":\"high\",\"channels\":1,"
                           "\"channels_opened\":1,"));
    assert_true(admin_says("\"warnings\":[]"));
    assert_false(log_has("says vm_id 11 too"));
    b = dial("dev.sock");
    send_hello(b, 11, 'B', 0);
    assert_int_equal(settle(3, 3000), 3);      /* two links and channel 4's session */
    assert_true(log_has_soon("says vm_id 11 too"));
    assert_true(admin_says_soon("\"warnings\":[\"vm 11 has 2 device links\"]"));
    assert_true(admin_answer_says("status\n", "warning: vm 11 has 2 device links"));
    assert_true(admin_answer_says("status\n", "LINK-PID"));
    assert_true(admin_answer_says("status prometheus\n", "vgpu_vm_device_links{vm=\"11\"} 2"));
    assert_true(admin_answer_says("status prometheus\n", "vgpu_link_channels{pid="));
    close(a);
    assert_int_equal(settle(1, 3000), 1);
    assert_true(admin_says_soon("\"warnings\":[]"));
    assert_true(admin_says("\"vm_id\":11,\"pool\":\"B\",\"priority\":\"low\",\"channels\":0,"));
    close(b);
    assert_int_equal(settle(0, 3000), 0);
    assert_true(admin_says_soon("\"links\":[]"));
    free(frame);
}

/* A Hello of another release: its tables' hash differs, with shapes or none. */
static int other_hello(struct vgpu_rawclient *c, uint32_t *cudart, size_t ncudart, char *why,
                       size_t whylen)
{
    Vgpu__Wire__Envelope env = VGPU__WIRE__ENVELOPE__INIT;
    Vgpu__Wire__Hello hello;
    struct vgpu_frame f = { 0 };
    uint8_t *buf = NULL;
    int rc;

    vgpu_hello_init(&hello, VGPU_CALL_TABLES_HASH ^ 1, VGPU_CALL_TABLES_API, "older_guest", 1, "vm");
    hello.client_version = (char *)"0.0.9";
    hello.shapes_cudart = cudart;
    hello.n_shapes_cudart = ncudart;
    if (cudart) {
        /* the driver's and NVML's tables as a shim one release older has them: a prefix */
        hello.shapes_cuda = (uint32_t *)vgpu_cuda_shapes;
        hello.n_shapes_cuda = VGPU_CUDA_NSHAPES / 2;
        hello.shapes_nvml = (uint32_t *)vgpu_nvml_shapes;
        hello.n_shapes_nvml = VGPU_NVML_NSHAPES;
    }
    env.body_case = VGPU__WIRE__ENVELOPE__BODY_HELLO;
    env.hello = &hello;
    rc = vgpu_raw_exchange(c, &env, NULL, 0, &f, &buf);
    if (!rc && f.env->body_case != VGPU__WIRE__ENVELOPE__BODY_HELLO_REPLY)
        rc = -EPROTO;
    if (!rc) {
        snprintf(why, whylen, "%s", f.env->hello_reply->message);
        rc = f.env->hello_reply->ok ? 0 : -EACCES;
        /* the server's shapes come back, for the client to refuse what differs itself */
        assert_int_equal(f.env->hello_reply->n_shapes_cudart, VGPU_CUDART_NSHAPES);
        assert_memory_equal(f.env->hello_reply->shapes_cudart, vgpu_cudart_shapes,
                            sizeof(vgpu_cudart_shapes));
    }
    vgpu_frame_release(&f);
    free(buf);
    return rc;
}

/*
 * A guest of another release: without per-call shapes it is refused with
 * both releases named; with them it is served the calls whose shapes agree
 * (an older guest's tables are a prefix of ours), and a call whose shape
 * differs is refused as not supported, once in the log, the session going on.
 */
static void test_other_release(void **state)
{
    static uint32_t older[VGPU_CUDART_NSHAPES + 4];
    struct vgpu_rawclient c = { .pass_fd = -1 };
    char why[512] = "";

    (void)state;
    c.fd = dial("client.sock");
    assert_int_equal(other_hello(&c, NULL, 0, why, sizeof(why)), -EACCES);
    assert_non_null(strstr(why, "the guest's vgpu libraries (vgpu 0.0.9) were built from other "
                                "call tables than vgpu-server"));
    assert_non_null(strstr(why, "install the guest libraries of the server's release"));
    close(c.fd);

    memcpy(older, vgpu_cudart_shapes, sizeof(vgpu_cudart_shapes));
    older[VGPU_CUDART_ID_cudaGetDeviceCount - VGPU_CUDART_ID_BASE] ^= 0x10;  /* its shape changed */
    older[VGPU_CUDART_NSHAPES + 2] = 0x1234;                               /* a call we lack */
    c = (struct vgpu_rawclient){ .pass_fd = -1 };
    c.fd = dial("client.sock");
    assert_int_equal(other_hello(&c, older, VGPU_CUDART_NSHAPES + 4, why, sizeof(why)), 0);
    assert_int_equal(vgpu_raw_call_bytes(&c, VGPU_CUDART_ID_cudaGetDeviceCount, (const uint8_t *)"",
                                         0, NULL, 0, NULL, NULL), 801 /* cudaErrorNotSupported */);
    assert_int_equal(vgpu_raw_call_bytes(&c, VGPU_CUDART_ID_cudaDriverGetVersion, (const uint8_t *)"",
                                         0, NULL, 0, NULL, NULL), 0);
    assert_int_equal(vgpu_raw_call_bytes(&c, VGPU_CUDART_ID_cudaGetDeviceCount, (const uint8_t *)"",
                                         0, NULL, 0, NULL, NULL), 801);
    assert_int_equal(vgpu_raw_call_bytes(&c, VGPU_CUDART_ID_cudaRuntimeGetVersion, (const uint8_t *)"",
                                         0, NULL, 0, NULL, NULL), 0);
    close(c.fd);
    assert_true(log_has("older_guest's vgpu libraries are vgpu 0.0.9, this is vgpu-server"));
    assert_true(log_has("cudaGetDeviceCount refused: the guest's vgpu 0.0.9 does not make this "
                        "call as vgpu-server"));
    assert_int_equal(settle(0, 3000), 0);
}

/* The link goes while a session is open: every process of it ends. */
static void test_link_gone_ends_sessions(void **state)
{
    size_t flen;
    uint8_t *frame = hello_frame(&flen);
    uint32_t ch = 0;
    int fd = dial("dev.sock");

    (void)state;
    send_hello(fd, 9, 'A', 1);
    for (uint32_t c = 1; c <= 3; c++) {
        send_record(fd, FRAME, c, frame, (uint32_t)flen);
        assert_int_equal(next_record(fd, &ch), FRAME);
    }
    assert_int_equal(settle(4, 3000), 4);
    /* half a record, then the device dies */
    assert_int_equal(write(fd, "VPDL", 4), 4);
    close(fd);
    assert_int_equal(settle(0, 3000), 0);
    free(frame);
}

/* The link's HELLO with a shared BAR (a sealed memfd) and two doorbells, passed with it. */
static void send_bar_hello(int fd, uint32_t vm, int bar, int bell0, int bell1, uint64_t size)
{
    uint8_t rec[16 + 24] = { 0 }, *hello = rec + 16;
    int fds[3] = { bar, bell0, bell1 };
    char ctl[CMSG_SPACE(sizeof(fds))] = { 0 };
    struct iovec iov = { rec, sizeof(rec) };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
                        .msg_controllen = sizeof(ctl) };
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);

    put32(rec, LINK_MAGIC);
    rec[4] = HELLO;
    put32(rec + 12, 24);
    put32(hello, vm);
    hello[4] = 'A';
    hello[5] = 1;
    put32(hello + 8, 1);
    put32(hello + 12, (uint32_t)size);
    put32(hello + 16, (uint32_t)(size >> 32));
    put32(hello + 20, 2);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(fds));
    memcpy(CMSG_DATA(c), fds, sizeof(fds));
    assert_int_equal(sendmsg(fd, &m, 0), (ssize_t)sizeof(rec));
}

/*
 * A guest process killed, and its BAR slot taken by a new one that lays
 * out the pair again (which clears the header's server_state): the link
 * ends the old session before the new one gets the slot, so two sessions
 * never read one slot's rings.  (The old server let both run.)
 */
static void test_bar_slot_reuse(void **state)
{
    const uint64_t bar_size = 16u << 20, ring = 512u << 10;
    uint64_t qp_len = vgpu_qp_bytes(ring, ring);
    size_t hlen, alen;
    uint8_t *hello = hello_frame(&hlen), *attach = attach_frame(0, qp_len, &alen), *bar;
    int mfd = memfd_create("bar", MFD_ALLOW_SEALING), fd = dial("dev.sock");
    int bell0 = eventfd(0, 0), bell1 = eventfd(0, 0);
    struct vgpu_qp q;
    uint64_t first;
    uint32_t ch = 0;

    (void)state;
    assert_int_equal(ftruncate(mfd, (off_t)bar_size), 0);
    assert_int_equal(fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK), 0);
    bar = mmap(NULL, bar_size, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
    assert_true(bar != MAP_FAILED);
    send_bar_hello(fd, 11, mfd, bell0, bell1, bar_size);
    /* process one: channel 1 takes slot 0 */
    assert_int_equal(vgpu_qp_create(&q, bar, qp_len, ring, ring), 0);
    send_record(fd, FRAME, 1, hello, (uint32_t)hlen);
    assert_int_equal(next_record(fd, &ch), FRAME);
    send_record(fd, FRAME, 1, attach, (uint32_t)alen);
    assert_int_equal(next_record(fd, &ch), FRAME);
    first = __atomic_load_n(&q.hdr->server_state, __ATOMIC_SEQ_CST);
    assert_true(first >> 32);                    /* a session took the pair */
    assert_int_equal(settle(2, 3000), 2);
    /* process one is killed (no CLOSE came); process two lays the pair out again in slot 0 */
    assert_int_equal(vgpu_qp_create(&q, bar, qp_len, ring, ring), 0);
    send_record(fd, FRAME, 2, hello, (uint32_t)hlen);
    assert_int_equal(next_record(fd, &ch), FRAME);
    assert_int_equal(settle(3, 3000), 3);
    send_record(fd, FRAME, 2, attach, (uint32_t)alen);
    assert_int_equal(next_record(fd, &ch), FRAME);
    assert_int_equal(ch, 2);
    /* channel 1's session is gone, and the pair is channel 2's session's */
    assert_int_equal(settle(2, 3000), 2);
    assert_true(log_has("takes BAR slot 0 from channel 1"));
    assert_true(__atomic_load_n(&q.hdr->server_state, __ATOMIC_SEQ_CST) >> 32 != first >> 32);
    close(fd);
    assert_int_equal(settle(0, 3000), 0);
    munmap(bar, bar_size);
    close(mfd);
    close(bell0);
    close(bell1);
    free(hello);
    free(attach);
}

/* sessions= of a socket and of a VM: the next program hears why it was refused. */
static void test_session_bounds(void **state)
{
    char why[256];
    int a, b, c;

    (void)state;
    a = dial("few.sock");
    assert_int_equal(hello_on(a, why, sizeof(why)), 0);
    b = dial("few.sock");
    assert_int_equal(hello_on(b, why, sizeof(why)), VGPU_WIRE_E_REFUSED);
    assert_non_null(strstr(why, "its limit"));
    close(a);
    close(b);

    a = dial("client.sock");
    b = dial("client.sock");
    assert_int_equal(hello_on(a, why, sizeof(why)), 0);
    assert_int_equal(hello_on(b, why, sizeof(why)), 0);
    c = dial("client.sock");
    assert_int_equal(hello_on(c, why, sizeof(why)), VGPU_WIRE_E_REFUSED);
    assert_non_null(strstr(why, "vm 100 has 2 sessions"));
    close(a);
    close(b);
    close(c);
    assert_int_equal(settle(0, 3000), 0);
}

/*
 * Connections that never finish a handshake: at most max_pending (4) at
 * once, the next is closed at once, and each is closed by its deadline.
 */
static void test_pending_bound_and_deadline(void **state)
{
    int fd[5];

    (void)state;
    for (int i = 0; i < 4; i++)
        fd[i] = dial(i % 2 ? "dev.sock" : "client.sock");
    assert_int_equal(settle(4, 3000), 4);
    fd[4] = dial("client.sock");
    assert_true(closed_within(fd[4], 3000));
    assert_true(log_has("not past their handshake"));
    /* the deadline (10 s) closes the idle ones */
    for (int i = 0; i < 4; i++)
        assert_true(closed_within(fd[i], 15000));
    assert_int_equal(settle(0, 3000), 0);
    for (int i = 0; i < 5; i++)
        close(fd[i]);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_link_hello_on_client_socket),
        cmocka_unit_test(test_duplicate_vm_links),
        cmocka_unit_test(test_other_release),
        cmocka_unit_test(test_program_on_device_socket),
        cmocka_unit_test(test_pinned_device_socket),
        cmocka_unit_test(test_malformed_frame_records),
        cmocka_unit_test(test_link_gone_ends_sessions),
        cmocka_unit_test(test_bar_slot_reuse),
        cmocka_unit_test(test_session_bounds),
        cmocka_unit_test(test_pending_bound_and_deadline),
    };

    if (argc != 2) {
        fprintf(stderr, "usage: %s PATH-TO-vgpu-server\n", argv[0]);
        return 2;
    }
    server_bin = argv[1];
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, setup, teardown);
}
