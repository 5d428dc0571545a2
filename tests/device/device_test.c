/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The vgpu-stub device (docs/specs/vgpu-stub.md) driven through a real QEMU
 * running the qtest accelerator.  This program speaks QEMU's qtest line
 * protocol itself: PCI configuration cycles through 0xcf8/0xcfc, MMIO reads
 * and writes of BAR0, and a guest reset through the ICH9 reset register
 * 0xcf9.  Every expectation below is a line of the spec; a failure names the
 * register or the error code that disagrees.
 *
 * Two groups, each with a QEMU of its own:
 *   server  the device's chardev goes to a real vgpu-server.  Frames travel
 *           there and back in chunks (a Hello, a call whose answer spans many
 *           response windows, a 3 KB call), every guest mistake of the error
 *           table ends in ERROR and is followed by a working exchange, the
 *           server is killed and restarted, the machine is reset.
 *   link    the chardev goes to a socket this program serves itself, so the
 *           link records can be checked byte for byte and a server's rare
 *           behaviour produced on purpose: an answer held back (BUSY), a
 *           server that dies with a frame in flight, FAIL records, malformed
 *           answers, an answer that arrives after a reset.
 *
 *   device_test PATH-TO-vgpu-server PATH-TO-qemu-system-x86_64 [FIRMWARE-DIR[:DIR...]]
 */
#include <cuda_runtime_api.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cudart_calltable.h"
#include "vgpu/apis.h"
#include "manual.pb-c.h"
#include "vgpu/callgen.h"
#include "vgpu/stub_abi.h"
#include "vgpu/wire.h"

/* ---- the device: include/vgpu/stub_abi.h gives its registers and records ---- */

#define BAR_ADDR         0xe0000000u /* free on q35 (libqos puts BARs there too) */

/* What the test gives the device on QEMU's command line. */
#define VM_ID    42u
#define POOL_ID  'B'
#define PRIORITY 2u

#define PING_CH  1u
/* The lowest header flag the frame format does not define. */
#define UNKNOWN_FLAG ((uint16_t)(~VGPU_FRAME_F_KNOWN & (VGPU_FRAME_F_KNOWN + 1)))
#define WAIT_MS  10000

/* ---- process state ---- */

static const char *server_bin, *qemu_bin, *fw_dirs;
static char dir[64], server_sock[108], link_sock[108], qtest_sock[108];
static char cache_dir[128], qemu_log[128];
static pid_t server_pid = -1, qemu_pid = -1;
static int qt_fd = -1, link_lfd = -1, link_fd = -1;
static int pci_slot = -1;
static uint32_t bar_probe;      /* BAR0 read back after writing all ones */
static uint64_t seq;
static off_t log_mark;
static uint32_t ping_epoch;     /* LINK_EPOCH when PING_CH last said Hello */

static void msleep(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;

    while (n) {
        ssize_t w = write(fd, c, n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads exactly n bytes within timeout_ms: 0, -ETIMEDOUT, or -ECONNRESET on EOF/error. */
static int read_full(int fd, void *p, size_t n, int timeout_ms)
{
    char *c = p;

    while (n) {
        struct pollfd pf = { .fd = fd, .events = POLLIN };
        ssize_t r;

        if (poll(&pf, 1, timeout_ms) == 0)
            return -ETIMEDOUT;
        r = read(fd, c, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -ECONNRESET;
        c += r;
        n -= (size_t)r;
    }
    return 0;
}

static int listen_on(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    strcpy(sa.sun_path, path);
    unlink(path);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 4)) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* Whether QEMU still runs; says once how it ended when it does not. */
static int qemu_alive(void)
{
    static pid_t reported;
    int st;

    if (qemu_pid <= 0)
        return 0;
    if (waitpid(qemu_pid, &st, WNOHANG) == 0)
        return 1;
    if (reported != qemu_pid) {
        reported = qemu_pid;
        if (WIFSIGNALED(st))
            fprintf(stderr, "device_test: QEMU died of signal %d\n", WTERMSIG(st));
        else if (WIFEXITED(st))
            fprintf(stderr, "device_test: QEMU exited with status %d\n", WEXITSTATUS(st));
    }
    return 0;
}

/* Accepts one connection on lfd within timeout_ms; -1 (and why on stderr) if none. */
static int accept_within(int lfd, int timeout_ms, const char *what)
{
    for (int t = 0; t < timeout_ms; t += 100) {
        struct pollfd pf = { .fd = lfd, .events = POLLIN };

        if (poll(&pf, 1, 100) > 0)
            return accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (!qemu_alive()) {
            fprintf(stderr, "device_test: QEMU exited before %s connected\n", what);
            return -1;
        }
    }
    fprintf(stderr, "device_test: %s did not connect within %d ms\n", what, timeout_ms);
    return -1;
}

static pid_t spawn(char *const argv[], int deathsig)
{
    pid_t pid = fork();

    if (pid == 0) {
        int nul = open("/dev/null", O_RDONLY);

        /* Nothing outlives a test run that crashed. */
        prctl(PR_SET_PDEATHSIG, deathsig);
        if (nul >= 0)
            dup2(nul, 0);
        execv(argv[0], argv);
        fprintf(stderr, "device_test: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    return pid;
}

static int start_server(void)
{
    char listen[128];
    char *argv[] = { (char *)server_bin, "--listen", listen, "--cache-dir", cache_dir,
                     "--log-level", "error", NULL };

    snprintf(listen, sizeof(listen), "unix:%s,type=device", server_sock);
    server_pid = spawn(argv, SIGTERM);
    for (int i = 0; i < 100 && access(server_sock, F_OK); i++)
        msleep(50);
    return server_pid > 0 && access(server_sock, F_OK) == 0 ? 0 : -1;
}

/* SIGTERM, and the server must shut down cleanly (exit 0, socket removed). */
static int stop_server(void)
{
    int st = -1;

    if (server_pid <= 0)
        return 0;
    kill(server_pid, SIGTERM);
    waitpid(server_pid, &st, 0);
    server_pid = -1;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 && access(server_sock, F_OK) ? 0 : -1;
}

/* Starts QEMU with the device's chardev connecting to chardev_path. */
static int start_qemu(const char *chardev_path)
{
    char chardev[200], device[160], qtest[128], *argv[64], *fw = strdup(fw_dirs ? fw_dirs : "");
    int n = 0, lfd = listen_on(qtest_sock);

    if (lfd < 0 || !fw)
        return -1;
    snprintf(qtest, sizeof(qtest), "unix:%s", qtest_sock);
    snprintf(chardev, sizeof(chardev), "socket,id=v,path=%s,reconnect=1", chardev_path);
    snprintf(device, sizeof(device), "vgpu-stub,chardev=v,vm_id=%u,pool_id=%c,priority=%u",
             VM_ID, POOL_ID, PRIORITY);
    argv[n++] = (char *)qemu_bin;
    argv[n++] = "-M";
    argv[n++] = "q35";
    argv[n++] = "-accel";
    argv[n++] = "qtest";
    argv[n++] = "-display";
    argv[n++] = "none";
    argv[n++] = "-nodefaults";
    for (char *save = NULL, *d = strtok_r(fw, ":", &save); d && n < 40;
         d = strtok_r(NULL, ":", &save)) {
        argv[n++] = "-L";
        argv[n++] = d;
    }
    /* QEMU connects to our listening socket for qtest (it is the client). */
    argv[n++] = "-qtest";
    argv[n++] = qtest;
    argv[n++] = "-qtest-log";
    argv[n++] = "/dev/null";
    argv[n++] = "-chardev";
    argv[n++] = chardev;
    argv[n++] = "-device";
    argv[n++] = device;
    argv[n++] = "-d";
    argv[n++] = "guest_errors";
    argv[n++] = "-D";
    argv[n++] = qemu_log;
    argv[n] = NULL;
    qemu_pid = spawn(argv, SIGKILL);
    free(fw);
    qt_fd = accept_within(lfd, 20000, "QEMU's qtest socket");
    close(lfd);
    unlink(qtest_sock);
    return qt_fd >= 0 ? 0 : -1;
}

/* QEMU must still be running and exit on SIGTERM, not by a crash. */
static int stop_qemu(void)
{
    int st = -1, alive;

    if (qemu_pid <= 0)
        return 0;
    /* QEMU goes first, as libqtest does it: QEMU 7.2 complains (a GLib
     * critical) when its qtest peer hangs up before it exits */
    alive = qemu_alive();
    if (alive) {
        kill(qemu_pid, SIGTERM);
        waitpid(qemu_pid, &st, 0);
    }
    qemu_pid = -1;
    if (qt_fd >= 0)
        close(qt_fd);
    qt_fd = -1;
    if (!alive)
        return -1; /* qemu_alive() said how it died */
    return (WIFEXITED(st) && WEXITSTATUS(st) == 0) ||
           (WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM) ? 0 : -1;
}

/* ---- the qtest protocol ---- */

static char qt_in[1 << 16], qt_line[1 << 16];
static size_t qt_have;

static const char *qt_getline(const char *cmd)
{
    for (;;) {
        char *nl = memchr(qt_in, '\n', qt_have);
        struct pollfd pf = { .fd = qt_fd, .events = POLLIN };
        ssize_t r;

        if (nl) {
            size_t n = (size_t)(nl - qt_in);

            memcpy(qt_line, qt_in, n);
            qt_line[n] = '\0';
            memmove(qt_in, nl + 1, qt_have - n - 1);
            qt_have -= n + 1;
            return qt_line;
        }
        if (qt_have == sizeof(qt_in))
            fail_msg("qtest: answer line too long");
        if (poll(&pf, 1, 15000) == 0)
            fail_msg("qtest: no answer to '%.60s' in 15 s (an MMIO handler that blocks?)", cmd);
        r = read(qt_fd, qt_in + qt_have, sizeof(qt_in) - qt_have);
        if (r <= 0)
            fail_msg("qtest: QEMU closed the connection after '%.60s' (crashed? alive: %d)",
                     cmd, qemu_alive());
        qt_have += (size_t)r;
    }
}

/* Sends one command and returns what follows "OK" in its answer. */
static const char *qt_cmd(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static const char *qt_cmd(const char *fmt, ...)
{
    static char out[8192];
    const char *line;
    va_list ap;
    int n;

    if (qt_fd < 0)
        fail_msg("qtest: no QEMU");
    va_start(ap, fmt);
    n = vsnprintf(out, sizeof(out) - 1, fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < sizeof(out) - 1);
    out[n] = '\n';
    if (write_all(qt_fd, out, (size_t)n + 1))
        fail_msg("qtest: cannot send '%.60s': QEMU gone? (alive: %d)", out, qemu_alive());
    out[n] = '\0';
    do
        line = qt_getline(out);
    while (!strncmp(line, "IRQ ", 4)); /* asynchronous, not an answer */
    if (strncmp(line, "OK", 2))
        fail_msg("qtest: '%.60s' answered '%.200s'", out, line);
    return line[2] == ' ' ? line + 3 : line + 2;
}

static uint64_t qt_val(const char *s)
{
    return strtoull(s, NULL, 0);
}

static uint32_t rd(uint32_t off)
{
    return (uint32_t)qt_val(qt_cmd("readl 0x%" PRIx32, BAR_ADDR + off));
}

static void wr(uint32_t off, uint32_t v)
{
    qt_cmd("writel 0x%" PRIx32 " 0x%" PRIx32, BAR_ADDR + off, v);
}

#define EXPECT_REG(off, want)                                                          \
    do {                                                                               \
        uint32_t got_ = rd(off), want_ = (uint32_t)(want);                             \
        if (got_ != want_)                                                             \
            fail_msg("%s reads 0x%" PRIx32 " (%" PRIu32 "), expected 0x%" PRIx32      \
                     " (%" PRIu32 ")", #off, got_, got_, want_, want_);                \
    } while (0)

/* Bulk MMIO through qtest's read/write: QEMU splits it into 4-byte accesses
 * (and 2/1-byte ones for an unaligned tail). */
static void mem_write(uint32_t addr, const uint8_t *p, size_t n)
{
    static char hex[2 * VGPU_STUB_BUF_SIZE + 1];

    assert_true(n > 0 && n <= VGPU_STUB_BUF_SIZE);
    for (size_t i = 0; i < n; i++)
        sprintf(hex + 2 * i, "%02x", p[i]);
    qt_cmd("write 0x%" PRIx32 " %zu 0x%s", addr, n, hex);
}

static void mem_read(uint32_t addr, uint8_t *p, size_t n)
{
    const char *s;

    assert_true(n > 0 && n <= VGPU_STUB_BUF_SIZE);
    s = qt_cmd("read 0x%" PRIx32 " %zu", addr, n);
    if (strncmp(s, "0x", 2) || strlen(s) != 2 + 2 * n)
        fail_msg("qtest read: unexpected answer '%.40s'", s);
    for (size_t i = 0; i < n; i++) {
        char b[3] = { s[2 + 2 * i], s[3 + 2 * i], 0 };

        p[i] = (uint8_t)strtoul(b, NULL, 16);
    }
}

/* ---- PCI ---- */

static uint32_t cfg_rd(int slot, int reg)
{
    qt_cmd("outl 0xcf8 0x%" PRIx32, 0x80000000u | (uint32_t)slot << 11 | (uint32_t)(reg & 0xfc));
    return (uint32_t)qt_val(qt_cmd("inl 0xcfc"));
}

static void cfg_wr(int slot, int reg, uint32_t v)
{
    qt_cmd("outl 0xcf8 0x%" PRIx32, 0x80000000u | (uint32_t)slot << 11 | (uint32_t)(reg & 0xfc));
    qt_cmd("outl 0xcfc 0x%" PRIx32, v);
}

#define PCI_COMMAND_MEMORY     0x0002u
#define PCI_STATUS_INTERRUPT   0x0008u /* bit 3 of STATUS, the high half of dword 0x04 */

/* Finds the device on bus 0, sizes BAR0, maps it at BAR_ADDR, enables memory decoding. */
static int pci_setup(void)
{
    pci_slot = -1;
    for (int slot = 0; slot < 32; slot++)
        if (cfg_rd(slot, 0) == (VGPU_STUB_PCI_DEVICE << 16 | VGPU_STUB_PCI_VENDOR)) {
            pci_slot = slot;
            break;
        }
    if (pci_slot < 0)
        return -1;
    cfg_wr(pci_slot, 0x10, 0xffffffffu);
    bar_probe = cfg_rd(pci_slot, 0x10);
    cfg_wr(pci_slot, 0x10, BAR_ADDR);
    cfg_wr(pci_slot, 0x04, PCI_COMMAND_MEMORY);
    return cfg_rd(pci_slot, 0x10) == BAR_ADDR ? 0 : -1;
}

static int intx_asserted(void)
{
    return !!((cfg_rd(pci_slot, 0x04) >> 16) & PCI_STATUS_INTERRUPT);
}

/* A guest reset through the ICH9 reset control register; QEMU performs it at
 * the end of the main-loop iteration that ran the outb, before our next
 * command.  PCI configuration is reset too, so BAR0 is programmed again. */
static void machine_reset(void)
{
    qt_cmd("outb 0xcf9 0x06");
    for (int i = 0; i < 1000 && (cfg_rd(pci_slot, 0x04) & 0xffff) != 0; i++)
        msleep(1);
    assert_int_equal(cfg_rd(pci_slot, 0x04) & 0xffff, 0);
    assert_int_equal(pci_setup(), 0);
}

/* ---- frames ---- */

static uint8_t *frame_of(Vgpu__Wire__Envelope *env, const struct iovec *pl, int npl,
                         size_t *len, uint64_t *sq)
{
    struct vgpu_frame_header h = { .seq = ++seq };
    uint8_t *out = NULL;

    assert_int_equal(vgpu_frame_encode(&h, env, pl, npl, NULL, &out, len), 0);
    if (sq)
        *sq = h.seq;
    return out;
}

static uint8_t *hello_frame(size_t *len, uint64_t *sq)
{
    Vgpu__Wire__Envelope env = VGPU__WIRE__ENVELOPE__INIT;
    Vgpu__Wire__Hello h = VGPU__WIRE__HELLO__INIT;

    vgpu_hello_init(&h, VGPU_CALL_TABLES_HASH, VGPU_CALL_TABLES_API, "device_test", (uint32_t)getpid(),
                    "qtest-guest");
    env.body_case = VGPU__WIRE__ENVELOPE__BODY_HELLO;
    env.hello = &h;
    return frame_of(&env, NULL, 0, len, sq);
}

/* A CallBatch of one call, seg (if any) its only input segment. */
static uint8_t *call_frame(uint32_t id, const ProtobufCMessage *args, const void *seg,
                           size_t seglen, size_t *len, uint64_t *sq)
{
    Vgpu__Wire__Envelope env = VGPU__WIRE__ENVELOPE__INIT;
    Vgpu__Wire__CallBatch b = VGPU__WIRE__CALL_BATCH__INIT;
    Vgpu__Wire__Call c = VGPU__WIRE__CALL__INIT, *cp = &c;
    Vgpu__Wire__Segment s = VGPU__WIRE__SEGMENT__INIT, *sp = &s;
    struct iovec iov = { (void *)seg, seglen };
    struct vgpu_arena ar = { 0 };
    const uint8_t *packed = NULL;
    size_t plen = 0;
    uint8_t *f;

    if (args)
        assert_int_equal(vgpu_call_pack(&ar, args, &packed, &plen), 0);
    c.call_id = id;
    c.args.data = (uint8_t *)packed;
    c.args.len = plen;
    if (seg) {
        s.length = seglen;
        c.n_segments = 1;
        c.segments = &sp;
    }
    b.n_calls = 1;
    b.calls = &cp;
    env.body_case = VGPU__WIRE__ENVELOPE__BODY_CALLS;
    env.calls = &b;
    f = frame_of(&env, seg ? &iov : NULL, seg ? 1 : 0, len, sq);
    vgpu_arena_free(&ar);
    return f;
}

/* cudaMemcpy H2D of n bytes to an address no session owns: the server answers
 * cudaErrorInvalidValue without a GPU. */
static uint8_t *memcpy_frame(size_t n, size_t *len, uint64_t *sq)
{
    Vgpu__Manual__CopyArgs cp = VGPU__MANUAL__COPY_ARGS__INIT;
    uint8_t *data = malloc(n), *f;

    assert_non_null(data);
    for (size_t i = 0; i < n; i++)
        data[i] = (uint8_t)(i * 7 + 3);
    cp.dir = VGPU__MANUAL__DIRECTION__DIR_H2D;
    cp.dst = 0x7f0000300000ull;
    cp.count = n;
    f = call_frame(VGPU_CUDART_ID_cudaMemcpy, &cp.base, data, n, len, sq);
    free(data);
    return f;
}

/* A control-plane request for the runtime's error table (a large answer, no GPU needed). */
static uint8_t *error_table_frame(size_t *len, uint64_t *sq)
{
    Vgpu__Wire__Envelope env = VGPU__WIRE__ENVELOPE__INIT;
    Vgpu__Wire__Control c = VGPU__WIRE__CONTROL__INIT;
    Vgpu__Wire__FetchErrorTable t = VGPU__WIRE__FETCH_ERROR_TABLE__INIT;

    c.op_case = VGPU__WIRE__CONTROL__OP_FETCH_ERROR_TABLE;
    c.fetch_error_table = &t;
    env.body_case = VGPU__WIRE__ENVELOPE__BODY_CONTROL;
    env.control = &c;
    return frame_of(&env, NULL, 0, len, sq);
}

/* A frame the device accepts but never interprets: header and raw payload. */
static uint8_t *raw_frame(uint16_t flags, uint64_t sq, uint32_t payload_len, uint8_t fill,
                          size_t *len)
{
    struct vgpu_frame_header h = { .magic = VGPU_FRAME_MAGIC, .version = VGPU_PROTOCOL_VERSION,
                                   .flags = flags, .payload_len = payload_len, .seq = sq };
    uint8_t *f = malloc(VGPU_FRAME_HEADER_SIZE + payload_len);

    assert_non_null(f);
    vgpu_frame_header_encode(&h, f);
    for (uint32_t i = 0; i < payload_len; i++)
        f[VGPU_FRAME_HEADER_SIZE + i] = (uint8_t)(fill + i * 13);
    *len = VGPU_FRAME_HEADER_SIZE + payload_len;
    return f;
}

/* ---- the guest side of the protocol ---- */

/* Writes one chunk into REQUEST: one bulk write, or (mixed) by 1, 2 and
 * 4-byte accesses, which the buffers must all accept. */
static void put_request(const uint8_t *p, size_t n, int mixed)
{
    size_t i = 0;

    if (!n)
        return;
    if (!mixed) {
        mem_write(BAR_ADDR + VGPU_STUB_R_REQUEST, p, n);
        return;
    }
    for (; i < n && i < 8; i++)
        qt_cmd("writeb 0x%" PRIx32 " 0x%x", BAR_ADDR + VGPU_STUB_R_REQUEST + (uint32_t)i, p[i]);
    for (; i + 2 <= n && i < 24; i += 2)
        qt_cmd("writew 0x%" PRIx32 " 0x%x", BAR_ADDR + VGPU_STUB_R_REQUEST + (uint32_t)i,
               p[i] | p[i + 1] << 8);
    for (; i + 4 <= n; i += 4)
        wr(VGPU_STUB_R_REQUEST + (uint32_t)i, (uint32_t)p[i] | (uint32_t)p[i + 1] << 8 |
                                    (uint32_t)p[i + 2] << 16 | (uint32_t)p[i + 3] << 24);
    for (; i < n; i++)
        qt_cmd("writeb 0x%" PRIx32 " 0x%x", BAR_ADDR + VGPU_STUB_R_REQUEST + (uint32_t)i, p[i]);
}

/*
 * Pushes a frame through REQUEST in chunks of `chunk` bytes (the last may be
 * shorter, or empty when it divides the frame and empty_last is set) on
 * channel ch.  Returns 0 once the last chunk was taken, or the ERROR_CODE
 * of the chunk that moved the device to ERROR (left in ERROR).
 */
static uint32_t submit_ex(uint32_t ch, const uint8_t *f, size_t len, size_t chunk, int mixed,
                          int empty_last)
{
    size_t off = 0;

    wr(VGPU_STUB_R_CHANNEL, ch);
    for (;;) {
        size_t n = len - off < chunk ? len - off : chunk;
        int last = off + n == len && !(empty_last && n);
        uint32_t st;

        put_request(f + off, n, mixed);
        wr(VGPU_STUB_R_REQUEST_LEN, (uint32_t)n);
        wr(VGPU_STUB_R_CHUNK_CTRL, last ? 0 : 1);
        wr(VGPU_STUB_R_DOORBELL, VGPU_STUB_CMD_SUBMIT);
        off += n;
        st = rd(VGPU_STUB_R_STATUS);
        if (st == VGPU_STUB_STATUS_ERROR)
            return rd(VGPU_STUB_R_ERROR_CODE);
        if (last) {
            if (st != VGPU_STUB_STATUS_BUSY && st != VGPU_STUB_STATUS_DONE)
                fail_msg("STATUS %" PRIu32 " after the last chunk, expected BUSY or DONE", st);
            return 0;
        }
        if (st != VGPU_STUB_STATUS_IDLE)
            fail_msg("STATUS %" PRIu32 " after a chunk with MORE, expected IDLE", st);
        EXPECT_REG(VGPU_STUB_R_REQUEST_TOTAL, off);
    }
}

static uint32_t submit(uint32_t ch, const uint8_t *f, size_t len)
{
    return submit_ex(ch, f, len, VGPU_STUB_BUF_SIZE, 0, 0);
}

/* Polls STATUS while BUSY, at most ms; returns the status it settled on. */
static uint32_t poll_not_busy(int ms)
{
    uint32_t st = VGPU_STUB_STATUS_BUSY;

    for (int t = 0; t < ms && (st = rd(VGPU_STUB_R_STATUS)) == VGPU_STUB_STATUS_BUSY; t++)
        msleep(1);
    return st;
}

static uint32_t wait_not_busy(void)
{
    uint32_t st = poll_not_busy(WAIT_MS);

    if (st == VGPU_STUB_STATUS_BUSY)
        fail_msg("STATUS still BUSY after %d ms", WAIT_MS);
    return st;
}

/* Reads the whole answer of a DONE device through RESPONSE_OFFSET windows.
 * mixed: also read the first window by bytes and words and compare. */
static uint8_t *read_answer(size_t *len, int mixed)
{
    uint32_t total = rd(VGPU_STUB_R_RESPONSE_TOTAL);
    uint8_t *buf;

    if (total < VGPU_FRAME_HEADER_SIZE || total > VGPU_STUB_MAX_FRAME)
        fail_msg("RESPONSE_TOTAL %" PRIu32 " at DONE", total);
    buf = malloc(total);
    assert_non_null(buf);
    for (uint32_t off = 0; off < total; off += VGPU_STUB_BUF_SIZE) {
        uint32_t want = total - off < VGPU_STUB_BUF_SIZE ? total - off : VGPU_STUB_BUF_SIZE, n;
        uint8_t win[VGPU_STUB_BUF_SIZE];

        wr(VGPU_STUB_R_RESPONSE_OFFSET, off);
        EXPECT_REG(VGPU_STUB_R_STATUS, VGPU_STUB_STATUS_DONE);
        EXPECT_REG(VGPU_STUB_R_RESPONSE_OFFSET, off);
        n = rd(VGPU_STUB_R_RESPONSE_LEN);
        if (n != want)
            fail_msg("RESPONSE_LEN %" PRIu32 " at offset %" PRIu32 " of %" PRIu32
                     ", expected %" PRIu32, n, off, total, want);
        /* reading up to RESPONSE_LEN rounded up to 4 is allowed */
        mem_read(BAR_ADDR + VGPU_STUB_R_RESPONSE, win, (n + 3) & ~3u);
        if (mixed && off == 0) {
            const uint32_t at = BAR_ADDR + VGPU_STUB_R_RESPONSE;

            for (uint32_t i = 0; i < 6; i++)
                assert_int_equal(qt_val(qt_cmd("readb 0x%" PRIx32, at + i)), win[i]);
            for (uint32_t i = 6; i + 2 <= 20 && i + 2 <= n; i += 2)
                assert_int_equal(qt_val(qt_cmd("readw 0x%" PRIx32, at + i)),
                                 win[i] | win[i + 1] << 8);
        }
        memcpy(buf + off, win, n);
        EXPECT_REG(VGPU_STUB_R_STATUS, VGPU_STUB_STATUS_DONE);
    }
    *len = total;
    return buf;
}

static void ack_idle(void)
{
    wr(VGPU_STUB_R_DOORBELL, VGPU_STUB_CMD_ACK);
    EXPECT_REG(VGPU_STUB_R_STATUS, VGPU_STUB_STATUS_IDLE);
    EXPECT_REG(VGPU_STUB_R_ERROR_CODE, VGPU_STUB_ERR_NONE);
}

/*
 * One exchange: submit, wait, read the answer, ACK.  Returns 0 with the
 * answer in *ans (caller frees), or the error code the device showed (then
 * already ACKed, *ans NULL).
 */
static uint32_t exchange_ex(uint32_t ch, const uint8_t *f, size_t len, size_t chunk, int mixed,
                            uint8_t **ans, size_t *anslen)
{
    uint32_t code = submit_ex(ch, f, len, chunk, mixed, 0);

    *ans = NULL;
    if (!code && wait_not_busy() == VGPU_STUB_STATUS_DONE) {
        *ans = read_answer(anslen, mixed);
        ack_idle();
        return 0;
    }
    if (!code)
        code = rd(VGPU_STUB_R_ERROR_CODE);
    EXPECT_REG(VGPU_STUB_R_STATUS, VGPU_STUB_STATUS_ERROR);
    ack_idle();
    return code;
}

static uint32_t exchange(uint32_t ch, const uint8_t *f, size_t len, uint8_t **ans, size_t *anslen)
{
    return exchange_ex(ch, f, len, VGPU_STUB_BUF_SIZE, 0, ans, anslen);
}

/* Decodes an answer and checks that it replies to request sq. */
static void decode_reply(const uint8_t *buf, size_t len, uint64_t sq, struct vgpu_frame *f)
{
    int rc = vgpu_frame_decode(buf, len, NULL, NULL, NULL, f);

    if (rc)
        fail_msg("the answer (%zu bytes) does not decode: %s", len, vgpu_wire_strerror(rc));
    assert_true(f->hdr.flags & VGPU_FRAME_F_REPLY);
    assert_int_equal(f->hdr.seq, sq);
}

/* Hello on channel ch through the device; the server must accept it. */
static void say_hello(uint32_t ch)
{
    struct vgpu_frame f = { 0 };
    uint8_t *req, *ans;
    size_t len, anslen;
    uint64_t sq;
    uint32_t code;
    char why[256] = "";

    req = hello_frame(&len, &sq);
    code = exchange(ch, req, len, &ans, &anslen);
    if (code)
        fail_msg("Hello on channel %" PRIu32 ": ERROR_CODE %" PRIu32, ch, code);
    decode_reply(ans, anslen, sq, &f);
    assert_int_equal(f.env->body_case, VGPU__WIRE__ENVELOPE__BODY_HELLO_REPLY);
    if (vgpu_hello_reply_check(f.env->hello_reply, VGPU_CALL_TABLES_HASH, why, sizeof(why)))
        fail_msg("HelloReply refused: %s", why);
    vgpu_frame_release(&f);
    free(ans);
    free(req);
}

/* Status of the only call in the answer. */
static int32_t call_status(const uint8_t *ans, size_t anslen, uint64_t sq)
{
    struct vgpu_frame f = { 0 };
    int32_t st;

    decode_reply(ans, anslen, sq, &f);
    assert_int_equal(f.env->body_case, VGPU__WIRE__ENVELOPE__BODY_RESULTS);
    assert_int_equal(f.env->results->n_results, 1);
    st = f.env->results->results[0]->status;
    vgpu_frame_release(&f);
    return st;
}

/* A working exchange on PING_CH (saying Hello first on a new link). */
static void ping(void)
{
    uint32_t epoch = rd(VGPU_STUB_R_LINK_EPOCH), code;
    uint8_t *req, *ans;
    size_t len, anslen;
    uint64_t sq;

    if (epoch != ping_epoch) {
        say_hello(PING_CH);
        ping_epoch = epoch;
    }
    req = memcpy_frame(64, &len, &sq);
    code = exchange(PING_CH, req, len, &ans, &anslen);
    if (code)
        fail_msg("ping: ERROR_CODE %" PRIu32, code);
    assert_int_equal(call_status(ans, anslen, sq), cudaErrorInvalidValue);
    free(ans);
    free(req);
}

static off_t log_size(void)
{
    struct stat st;

    return stat(qemu_log, &st) ? 0 : st.st_size;
}

/* Call before a guest mistake. */
static void mark(void)
{
    log_mark = log_size();
}

/* After a guest mistake: ERROR with its code, logged as a guest error, ACK
 * returns to IDLE, QEMU alive. */
static void expect_mistake_(uint32_t code, int line)
{
    uint32_t st = rd(VGPU_STUB_R_STATUS), got = rd(VGPU_STUB_R_ERROR_CODE);

    if (st != VGPU_STUB_STATUS_ERROR || got != code)
        fail_msg("line %d: STATUS %" PRIu32 " ERROR_CODE %" PRIu32 ", expected ERROR (3) with %"
                 PRIu32, line, st, got, code);
    if (log_size() <= log_mark)
        fail_msg("line %d: error %" PRIu32 " was not logged (-d guest_errors)", line, code);
    ack_idle();
    assert_true(qemu_alive());
}
#define expect_mistake(code) expect_mistake_((code), __LINE__)

/* Before each test: a device that a failed test left in the middle of
 * something is reset, so that one failure does not cascade. */
static int recover(void **state)
{
    (void)state;
    if (qt_fd < 0 || !qemu_alive())
        return -1;
    if (rd(VGPU_STUB_R_STATUS) != VGPU_STUB_STATUS_IDLE || rd(VGPU_STUB_R_REQUEST_TOTAL) != 0)
        machine_reset();
    return 0;
}

/* ====================== group "server": a real vgpu-server ================ */

static int server_setup(void **state)
{
    (void)state;
    ping_epoch = 0;
    if (start_server()) {
        fprintf(stderr, "device_test: vgpu-server did not start\n");
        return -1;
    }
    if (start_qemu(server_sock))
        return -1;
    if (pci_setup()) {
        fprintf(stderr, "device_test: no %04x:%04x on bus 0 or BAR0 not programmable\n",
                VGPU_STUB_PCI_VENDOR, VGPU_STUB_PCI_DEVICE);
        return -1;
    }
    return 0;
}

static int server_teardown(void **state)
{
    int rc = 0;

    (void)state;
    if (stop_qemu()) {
        fprintf(stderr, "device_test: QEMU did not survive the server group\n");
        rc = -1;
    }
    if (stop_server()) {
        fprintf(stderr, "device_test: vgpu-server did not shut down cleanly\n");
        rc = -1;
    }
    return rc;
}

static void test_pci_config(void **state)
{
    uint32_t classrev = cfg_rd(pci_slot, 0x08);

    (void)state;
    assert_int_equal(cfg_rd(pci_slot, 0x00), VGPU_STUB_PCI_DEVICE << 16 | VGPU_STUB_PCI_VENDOR);
    assert_int_equal(classrev >> 16, VGPU_STUB_PCI_CLASS);
    assert_int_equal(classrev & 0xff, VGPU_STUB_PCI_REVISION);
    /* 4 KB, memory, 32-bit, non-prefetchable */
    assert_int_equal(bar_probe & 0xf, 0);
    assert_int_equal(~(bar_probe & ~0xfu) + 1, VGPU_STUB_BAR0_SIZE);
    assert_int_equal((cfg_rd(pci_slot, 0x3c) >> 8) & 0xff, 1); /* INTx pin A */
    assert_int_equal(cfg_rd(pci_slot, 0x10), BAR_ADDR);
}

static void test_reset_values(void **state)
{
    uint8_t req[VGPU_STUB_BUF_SIZE], zero[VGPU_STUB_BUF_SIZE] = { 0 };
    uint32_t epoch = 0;

    (void)state;
    EXPECT_REG(VGPU_STUB_R_DOORBELL, 0);
    EXPECT_REG(VGPU_STUB_R_STATUS, VGPU_STUB_STATUS_IDLE);
    EXPECT_REG(VGPU_STUB_R_POOL_ID, POOL_ID);
    EXPECT_REG(VGPU_STUB_R_PRIORITY, PRIORITY);
    EXPECT_REG(VGPU_STUB_R_VM_ID, VM_ID);
    EXPECT_REG(VGPU_STUB_R_ERROR_CODE, VGPU_STUB_ERR_NONE);
    EXPECT_REG(VGPU_STUB_R_REQUEST_LEN, 0);
    EXPECT_REG(VGPU_STUB_R_RESPONSE_LEN, 0);
    EXPECT_REG(VGPU_STUB_R_PROTOCOL_VER, VGPU_STUB_REG_VERSION);
    EXPECT_REG(VGPU_STUB_R_CAPABILITIES, VGPU_STUB_CAP_BASE);
    EXPECT_REG(VGPU_STUB_R_IRQ_CTRL, 0);
    EXPECT_REG(VGPU_STUB_R_IRQ_STATUS, 0);
    EXPECT_REG(VGPU_STUB_R_REQUEST_ID, 0);
    EXPECT_REG(VGPU_STUB_R_CHUNK_CTRL, 0);
    EXPECT_REG(VGPU_STUB_R_CHANNEL, 0);
    EXPECT_REG(VGPU_STUB_R_RESPONSE_TOTAL, 0);
    EXPECT_REG(VGPU_STUB_R_RESPONSE_OFFSET, 0);
    EXPECT_REG(VGPU_STUB_R_REQUEST_TOTAL, 0);
    EXPECT_REG(VGPU_STUB_R_MAX_FRAME, VGPU_STUB_MAX_FRAME);
    mem_read(BAR_ADDR + VGPU_STUB_R_REQUEST, req, sizeof(req));
    assert_memory_equal(req, zero, sizeof(req));
    /* 1 after the first connection; reconnect=1 connects within a second or so */
    for (int t = 0; t < WAIT_MS && (epoch = rd(VGPU_STUB_R_LINK_EPOCH)) == 0; t += 10)
        msleep(10);
    if (epoch < 1)
        fail_msg("LINK_EPOCH still 0 after %d ms: the device never connected to vgpu-server",
                 WAIT_MS);
    EXPECT_REG(VGPU_STUB_R_LINK_STATE, 1);
    /* a link that keeps dropping (a server that refuses the records) counts up */
    msleep(1500);
    EXPECT_REG(VGPU_STUB_R_LINK_EPOCH, epoch);
    EXPECT_REG(VGPU_STUB_R_STATUS, VGPU_STUB_STATUS_IDLE);
    /* the RW registers hold what is written */
    wr(VGPU_STUB_R_REQUEST_ID, 0xdeadbeef);
    EXPECT_REG(VGPU_STUB_R_REQUEST_ID, 0xdeadbeef);
    wr(VGPU_STUB_R_REQUEST_ID, 0);
    wr(VGPU_STUB_R_CHANNEL, 0x12345678);
    EXPECT_REG(VGPU_STUB_R_CHANNEL, 0x12345678);
    wr(VGPU_STUB_R_CHANNEL, 0);
    wr(VGPU_STUB_R_REQUEST_LEN, 1024);
    EXPECT_REG(VGPU_STUB_R_REQUEST_LEN, 1024);
    wr(VGPU_STUB_R_REQUEST_LEN, 0);
    wr(VGPU_STUB_R_CHUNK_CTRL, 1);
    EXPECT_REG(VGPU_STUB_R_CHUNK_CTRL, 1);
    wr(VGPU_STUB_R_CHUNK_CTRL, 0);
    EXPECT_REG(VGPU_STUB_R_STATUS, VGPU_STUB_STATUS_IDLE);
}

static void test_hello_and_calls(void **state)
{
    const Vgpu__Wire__ErrorTable *tab;
    struct vgpu_frame f = { 0 };
    uint8_t *req, *ans;
    size_t len, anslen;
    uint64_t sq;
    int found = 0;

    (void)state;
    say_hello(PING_CH);
    ping_epoch = rd(VGPU_STUB_R_LINK_EPOCH);

    /* an answer of many windows: the runtime's error table (no GPU needed) */
    wr(VGPU_STUB_R_REQUEST_ID, 0x5eed);
    req = error_table_frame(&len, &sq);
    assert_int_equal(exchange_ex(PING_CH, req, len, VGPU_STUB_BUF_SIZE, 1, &ans, &anslen), 0);
    if (anslen <= 2 * VGPU_STUB_BUF_SIZE)
        fail_msg("the error table answer is only %zu bytes; the test wants several windows",
                 anslen);
    decode_reply(ans, anslen, sq, &f);
    assert_int_equal(f.env->body_case, VGPU__WIRE__ENVELOPE__BODY_CONTROL_REPLY);
    assert_int_equal(f.env->control_reply->status, VGPU__WIRE__CONTROL_STATUS__CONTROL_OK);
    tab = f.env->control_reply->error_table;
    assert_non_null(tab);
    assert_true(tab->n_name > 50 && tab->n_name == tab->n_code);
    for (size_t i = 0; i < tab->n_code; i++)
        if (tab->code[i] == cudaErrorInvalidValue)
            found = !strcmp(tab->name[i], "cudaErrorInvalidValue");
    assert_true(found);
    vgpu_frame_release(&f);
    free(ans);
    free(req);
    EXPECT_REG(VGPU_STUB_R_REQUEST_ID, 0x5eed); /* kept across requests */

    /* a request of three chunks: 3000 bytes of copy data to an address the
     * session does not own */
    req = memcpy_frame(3000, &len, &sq);
    assert_true(len > 2 * VGPU_STUB_BUF_SIZE && len < 3 * VGPU_STUB_BUF_SIZE);
    assert_int_equal(exchange_ex(PING_CH, req, len, VGPU_STUB_BUF_SIZE, 1, &ans, &anslen), 0);
    assert_int_equal(call_status(ans, anslen, sq), cudaErrorInvalidValue);
    free(ans);
    free(req);

    /* the same in 100-byte chunks, with the bulk writes */
    req = memcpy_frame(3000, &len, &sq);
    assert_int_equal(exchange_ex(PING_CH, req, len, 100, 0, &ans, &anslen), 0);
    assert_int_equal(call_status(ans, anslen, sq), cudaErrorInvalidValue);
    free(ans);
    free(req);
    EXPECT_REG(VGPU_STUB_R_STATUS, VGPU_STUB_STATUS_IDLE);
    EXPECT_REG(VGPU_STUB_R_REQUEST_TOTAL, 0);
}

static void test_err_offset_width_readonly(void **state)
{
    (void)state;
    ping();

    /* offsets that are not registers read 0 and set ERROR */
    mark();
    assert_int_equal(rd(0x850), 0);
    expect_mistake(VGPU_STUB_ERR_BAD_OFFSET);
    mark();
    wr(0xffc, 0x1234);
    expect_mistake(VGPU_STUB_ERR_BAD_OFFSET);
    mark();
    assert_int_equal(rd(0xffc), 0);
    expect_mistake(VGPU_STUB_ERR_BAD_OFFSET);
    ping();

    /* registers take 4-byte accesses only */
    mark();
    qt_cmd("readb 0x%" PRIx32, BAR_ADDR + VGPU_STUB_R_STATUS);
    expect_mistake(VGPU_STUB_ERR_BAD_WIDTH);
    mark();
    qt_cmd("readw 0x%" PRIx32, BAR_ADDR + VGPU_STUB_R_VM_ID);
    expect_mistake(VGPU_STUB_ERR_BAD_WIDTH);
    mark();
    qt_cmd("writeb 0x%" PRIx32 " 0x7", BAR_ADDR + VGPU_STUB_R_REQUEST_ID);
    expect_mistake(VGPU_STUB_ERR_BAD_WIDTH);
    ping();

    /* writes to read-only registers change nothing */
    mark();
    wr(VGPU_STUB_R_VM_ID, 7);
    expect_mistake(VGPU_STUB_ERR_READ_ONLY);
    EXPECT_REG(VGPU_STUB_R_VM_ID, VM_ID);
    mark();
    wr(VGPU_STUB_R_STATUS, VGPU_STUB_STATUS_DONE);
    expect_mistake(VGPU_STUB_ERR_READ_ONLY);
    mark();
    wr(VGPU_STUB_R_LINK_EPOCH, 0);
    expect_mistake(VGPU_STUB_ERR_READ_ONLY);
    assert_true(rd(VGPU_STUB_R_LINK_EPOCH) >= 1);
    mark();
    wr(VGPU_STUB_R_MAX_FRAME, 1);
    expect_mistake(VGPU_STUB_ERR_READ_ONLY);
    EXPECT_REG(VGPU_STUB_R_MAX_FRAME, VGPU_STUB_MAX_FRAME);
    mark();
    wr(VGPU_STUB_R_LINK_STATE, 0);
    expect_mistake(VGPU_STUB_ERR_READ_ONLY);
    EXPECT_REG(VGPU_STUB_R_LINK_STATE, 1);
    mark();
    wr(VGPU_STUB_R_RESPONSE_TOTAL, 4096);
    expect_mistake(VGPU_STUB_ERR_READ_ONLY);
    EXPECT_REG(VGPU_STUB_R_RESPONSE_TOTAL, 0);
    ping();
}

static void test_err_submit(void **state)
{
    uint8_t *req, bad[64];
    size_t len;
    uint64_t sq;
    struct vgpu_frame_header h;

    (void)state;
    ping();
    req = memcpy_frame(64, &len, &sq);

    /* REQUEST_LEN above 1024 */
    mark();
    put_request(req, len, 0);
    wr(VGPU_STUB_R_CHANNEL, PING_CH);
    wr(VGPU_STUB_R_REQUEST_LEN, 1025);
    wr(VGPU_STUB_R_CHUNK_CTRL, 0);
    wr(VGPU_STUB_R_DOORBELL, VGPU_STUB_CMD_SUBMIT);
    expect_mistake(VGPU_STUB_ERR_BAD_LENGTH);
    mark();
    wr(VGPU_STUB_R_REQUEST_LEN, 0xffffffffu);
    wr(VGPU_STUB_R_DOORBELL, VGPU_STUB_CMD_SUBMIT);
    expect_mistake(VGPU_STUB_ERR_BAD_LENGTH);
    ping();

    /* CHANNEL 0 */
    mark();
    assert_int_equal(submit(0, req, len), VGPU_STUB_ERR_NO_CHANNEL);
    expect_mistake(VGPU_STUB_ERR_NO_CHANNEL);
    ping();

    /* garbage: bad magic */
    memset(bad, 'x', sizeof(bad));
    mark();
    assert_int_equal(submit(PING_CH, bad, sizeof(bad)), VGPU_STUB_ERR_BAD_FRAME);
    expect_mistake(VGPU_STUB_ERR_BAD_FRAME);
    /* a header cut short */
    mark();
    assert_int_equal(submit(PING_CH, req, 20), VGPU_STUB_ERR_BAD_FRAME);
    expect_mistake(VGPU_STUB_ERR_BAD_FRAME);
    /* a frame longer than its header says */
    {
        uint8_t *longer = malloc(len + 4);

        assert_non_null(longer);
        memcpy(longer, req, len);
        memset(longer + len, 0, 4);
        mark();
        assert_int_equal(submit(PING_CH, longer, len + 4), VGPU_STUB_ERR_BAD_FRAME);
        expect_mistake(VGPU_STUB_ERR_BAD_FRAME);
        free(longer);
    }
    /* and shorter */
    mark();
    assert_int_equal(submit(PING_CH, req, len - 1), VGPU_STUB_ERR_BAD_FRAME);
    expect_mistake(VGPU_STUB_ERR_BAD_FRAME);
    /* flags the frame format does not define, the reserved field (another
     * protocol version is the server's to judge: test_link_frame_header) */
    assert_int_equal(vgpu_frame_header_decode(req, len, NULL, &h), 0);
    for (int i = 0; i < 3; i++) {
        struct vgpu_frame_header b = h;
        uint8_t *copy = malloc(len);

        assert_non_null(copy);
        memcpy(copy, req, len);
        if (i == 0)
            b.flags = UNKNOWN_FLAG | VGPU_FRAME_F_REPLY;
        else if (i == 1)
            b.flags = 0x8000;
        else
            b.reserved = 1;
        vgpu_frame_header_encode(&b, copy);
        mark();
        assert_int_equal(submit(PING_CH, copy, len), VGPU_STUB_ERR_BAD_FRAME);
        expect_mistake(VGPU_STUB_ERR_BAD_FRAME);
        free(copy);
    }
    ping();
    free(req);
}

static void test_err_states(void **state)
{
    static const uint32_t unknown[] = { 0, 4, 0x80000001u, 0xffffffffu };
    uint8_t *req;
    size_t len;
    uint64_t sq;

    (void)state;
    ping();
    req = memcpy_frame(64, &len, &sq);

    /* ACK while IDLE; commands that do not exist */
    mark();
    wr(VGPU_STUB_R_DOORBELL, VGPU_STUB_CMD_ACK);
    expect_mistake(VGPU_STUB_ERR_BAD_COMMAND);
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        mark();
        wr(VGPU_STUB_R_DOORBELL, unknown[i]);
        if (rd(VGPU_STUB_R_STATUS) != VGPU_STUB_STATUS_ERROR)
            fail_msg("DOORBELL <- 0x%" PRIx32 " did not set ERROR", unknown[i]);
        expect_mistake(VGPU_STUB_ERR_BAD_COMMAND);
    }
    ping();

    /* SUBMIT and CLOSE while DONE */
    assert_int_equal(submit(PING_CH, req, len), 0);
    assert_int_equal(wait_not_busy(), VGPU_STUB_STATUS_DONE);
    mark();
    wr(VGPU_STUB_R_DOORBELL, VGPU_STUB_CMD_SUBMIT);
    expect_mistake(VGPU_STUB_ERR_BUSY);
    ping();
    assert_int_equal(submit(PING_CH, req, len), 0);
    assert_int_equal(wait_not_busy(), VGPU_STUB_STATUS_DONE);
    mark();
    wr(VGPU_STUB_R_DOORBELL, VGPU_STUB_CMD_CLOSE);
    expect_mistake(VGPU_STUB_ERR_BUSY);
    ping();

    /* SUBMIT while BUSY, if we catch the device BUSY (the server is fast;
     * the link group checks this deterministically) */
    assert_int_equal(submit(PING_CH, req, len), 0);
    mark();
    wr(VGPU_STUB_R_DOORBELL, VGPU_STUB_CMD_SUBMIT);
    expect_mistake(VGPU_STUB_ERR_BUSY);
    msleep(100);
    /* a late answer does not revive the exchange */
    EXPECT_REG(VGPU_STUB_R_STATUS, VGPU_STUB_STATUS_IDLE);
    ping();
    free(req);
}

static void test_err_response(void **state)
{
    uint8_t *req, *big, b[4];
    size_t len, biglen;
    uint64_t sq;
    uint32_t n, total;

    (void)state;
    ping();
    req = memcpy_frame(64, &len, &sq);
    big = error_table_frame(&biglen, &sq);

    /* RESPONSE while IDLE */
    mark();
    rd(VGPU_STUB_R_RESPONSE);
    expect_mistake(VGPU_STUB_ERR_READ_PAST_END);

    /* past RESPONSE_LEN rounded up to 4: a small answer */
    assert_int_equal(submit(PING_CH, req, len), 0);
    assert_int_equal(wait_not_busy(), VGPU_STUB_STATUS_DONE);
    n = rd(VGPU_STUB_R_RESPONSE_LEN);
    assert_true(n > 0 && n < VGPU_STUB_BUF_SIZE);
    assert_int_equal(rd(VGPU_STUB_R_RESPONSE_TOTAL), n);
    mem_read(BAR_ADDR + VGPU_STUB_R_RESPONSE, b, 4);
    EXPECT_REG(VGPU_STUB_R_STATUS, VGPU_STUB_STATUS_DONE);
    rd(VGPU_STUB_R_RESPONSE + (((n + 3) & ~3u) - 4)); /* the last allowed word */
    EXPECT_REG(VGPU_STUB_R_STATUS, VGPU_STUB_STATUS_DONE);
    mark();
    rd(VGPU_STUB_R_RESPONSE + ((n + 3) & ~3u));
    expect_mistake(VGPU_STUB_ERR_READ_PAST_END);

    assert_int_equal(submit(PING_CH, req, len), 0);
    assert_int_equal(wait_not_busy(), VGPU_STUB_STATUS_DONE);
    mark();
    qt_cmd("readb 0x%" PRIx32, BAR_ADDR + VGPU_STUB_R_RESPONSE + 1020);
    expect_mistake(VGPU_STUB_ERR_READ_PAST_END);

    /* RESPONSE_OFFSET not below RESPONSE_TOTAL, or not a multiple of 1024 */
    assert_int_equal(submit(PING_CH, req, len), 0);
    assert_int_equal(wait_not_busy(), VGPU_STUB_STATUS_DONE);
    mark();
    wr(VGPU_STUB_R_RESPONSE_OFFSET, 1024);
    expect_mistake(VGPU_STUB_ERR_BAD_RESPONSE_OFFSET);
    assert_int_equal(submit(PING_CH, big, biglen), 0);
    assert_int_equal(wait_not_busy(), VGPU_STUB_STATUS_DONE);
    total = rd(VGPU_STUB_R_RESPONSE_TOTAL);
    assert_true(total > 2 * VGPU_STUB_BUF_SIZE);
    mark();
    wr(VGPU_STUB_R_RESPONSE_OFFSET, 512);
    expect_mistake(VGPU_STUB_ERR_BAD_RESPONSE_OFFSET);
    assert_int_equal(submit(PING_CH, big, biglen), 0);
    assert_int_equal(wait_not_busy(), VGPU_STUB_STATUS_DONE);
    wr(VGPU_STUB_R_RESPONSE_OFFSET, VGPU_STUB_BUF_SIZE);
    EXPECT_REG(VGPU_STUB_R_STATUS, VGPU_STUB_STATUS_DONE);
    mark();
    wr(VGPU_STUB_R_RESPONSE_OFFSET, (total + VGPU_STUB_BUF_SIZE - 1) & ~(VGPU_STUB_BUF_SIZE - 1));
    expect_mistake(VGPU_STUB_ERR_BAD_RESPONSE_OFFSET);

    /* the response window is read-only */
    assert_int_equal(submit(PING_CH, req, len), 0);
    assert_int_equal(wait_not_busy(), VGPU_STUB_STATUS_DONE);
    mark();
    wr(VGPU_STUB_R_RESPONSE, 0);
    expect_mistake(VGPU_STUB_ERR_READ_ONLY);
    ping();
    free(big);
    free(req);
}

/* CLOSE ends a channel's session; the channel can say Hello again. */
static void test_close(void **state)
{
    (void)state;
    ping();
    wr(VGPU_STUB_R_CHANNEL, PING_CH);
    wr(VGPU_STUB_R_DOORBELL, VGPU_STUB_CMD_CLOSE);
    EXPECT_REG(VGPU_STUB_R_STATUS, VGPU_STUB_STATUS_IDLE);
    EXPECT_REG(VGPU_STUB_R_ERROR_CODE, VGPU_STUB_ERR_NONE);
    mark();
    wr(VGPU_STUB_R_CHANNEL, 0);
    wr(VGPU_STUB_R_DOORBELL, VGPU_STUB_CMD_CLOSE);
    expect_mistake(VGPU_STUB_ERR_NO_CHANNEL);
    ping_epoch = 0;
    ping();
}

/* A channel whose first frame is not a Hello: the server ends that session
 * (a FAIL record), the device shows SERVER_GONE, other channels go on. */
static void test_session_fail(void **state)
{
    uint8_t *req, *ans = NULL;
    size_t len, anslen;
    uint64_t sq;

    (void)state;
    ping();
    req = memcpy_frame(64, &len, &sq);
    assert_int_equal(exchange(77, req, len, &ans, &anslen), VGPU_STUB_ERR_SERVER_GONE);
    assert_null(ans);
    ping();
    free(req);
}

static void test_server_gone(void **state)
{
    uint8_t *req, *ans = NULL;
    size_t len, anslen;
    uint64_t sq;
    uint32_t epoch, now = 0, code;

    (void)state;
    ping();
    epoch = rd(VGPU_STUB_R_LINK_EPOCH);
    assert_int_equal(stop_server(), 0);
    msleep(500); /* QEMU sees the hang-up */
    req = memcpy_frame(64, &len, &sq);
    code = exchange(PING_CH, req, len, &ans, &anslen);
    /* SERVER_GONE if QEMU was slow to see the server go */
    if (code != VGPU_STUB_ERR_NO_SERVER && code != VGPU_STUB_ERR_SERVER_GONE)
        fail_msg("a frame without a server: ERROR_CODE %" PRIu32 ", expected NO_SERVER (7)", code);
    assert_true(qemu_alive());
    EXPECT_REG(VGPU_STUB_R_LINK_EPOCH, epoch);
    EXPECT_REG(VGPU_STUB_R_LINK_STATE, 0);     /* what a client waiting on its queue pair reads */
    assert_int_equal(exchange(PING_CH, req, len, &ans, &anslen), VGPU_STUB_ERR_NO_SERVER);

    /* a new server on the same socket: the chardev reconnects within ~1 s */
    assert_int_equal(start_server(), 0);
    for (int t = 0; t < WAIT_MS && (now = rd(VGPU_STUB_R_LINK_EPOCH)) == epoch; t += 20)
        msleep(20);
    if (now != epoch + 1)
        fail_msg("LINK_EPOCH %" PRIu32 " after the server came back, expected %" PRIu32, now,
                 epoch + 1);
    EXPECT_REG(VGPU_STUB_R_LINK_STATE, 1);
    ping(); /* says Hello again: the epoch changed */
    free(req);
}

static void test_device_reset(void **state)
{
    uint8_t junk[VGPU_STUB_BUF_SIZE], req[VGPU_STUB_BUF_SIZE], zero[VGPU_STUB_BUF_SIZE] = { 0 }, *f;
    uint32_t epoch;
    size_t len;
    uint64_t sq;

    (void)state;
    ping();
    epoch = rd(VGPU_STUB_R_LINK_EPOCH);

    /* reset in the middle of assembling a frame, everything written */
    memset(junk, 0xa5, sizeof(junk));
    wr(VGPU_STUB_R_REQUEST_ID, 0x1234);
    wr(VGPU_STUB_R_IRQ_CTRL, 1);
    wr(VGPU_STUB_R_CHANNEL, 9);
    put_request(junk, sizeof(junk), 0);
    wr(VGPU_STUB_R_REQUEST_LEN, 1000);
    wr(VGPU_STUB_R_CHUNK_CTRL, 1);
    wr(VGPU_STUB_R_DOORBELL, VGPU_STUB_CMD_SUBMIT);
    EXPECT_REG(VGPU_STUB_R_STATUS, VGPU_STUB_STATUS_IDLE);
    EXPECT_REG(VGPU_STUB_R_REQUEST_TOTAL, 1000);
    machine_reset();
    EXPECT_REG(VGPU_STUB_R_STATUS, VGPU_STUB_STATUS_IDLE);
    EXPECT_REG(VGPU_STUB_R_ERROR_CODE, 0);
    EXPECT_REG(VGPU_STUB_R_REQUEST_LEN, 0);
    EXPECT_REG(VGPU_STUB_R_RESPONSE_LEN, 0);
    EXPECT_REG(VGPU_STUB_R_IRQ_CTRL, 0);
    EXPECT_REG(VGPU_STUB_R_IRQ_STATUS, 0);
    EXPECT_REG(VGPU_STUB_R_REQUEST_ID, 0);
    EXPECT_REG(VGPU_STUB_R_CHUNK_CTRL, 0);
    EXPECT_REG(VGPU_STUB_R_CHANNEL, 0);
    EXPECT_REG(VGPU_STUB_R_RESPONSE_TOTAL, 0);
    EXPECT_REG(VGPU_STUB_R_RESPONSE_OFFSET, 0);
    EXPECT_REG(VGPU_STUB_R_REQUEST_TOTAL, 0);
    EXPECT_REG(VGPU_STUB_R_POOL_ID, POOL_ID);
    EXPECT_REG(VGPU_STUB_R_PRIORITY, PRIORITY);
    EXPECT_REG(VGPU_STUB_R_VM_ID, VM_ID);
    EXPECT_REG(VGPU_STUB_R_PROTOCOL_VER, VGPU_STUB_REG_VERSION);
    EXPECT_REG(VGPU_STUB_R_CAPABILITIES, VGPU_STUB_CAP_BASE);
    EXPECT_REG(VGPU_STUB_R_MAX_FRAME, VGPU_STUB_MAX_FRAME);
    EXPECT_REG(VGPU_STUB_R_LINK_EPOCH, epoch); /* a reset leaves it */
    mem_read(BAR_ADDR + VGPU_STUB_R_REQUEST, req, sizeof(req));
    assert_memory_equal(req, zero, sizeof(req));
    assert_false(intx_asserted());
    ping(); /* the half-assembled frame is gone: a fresh one goes through */

    /* reset with an answer waiting (DONE) and with an error showing */
    f = memcpy_frame(64, &len, &sq);
    assert_int_equal(submit(PING_CH, f, len), 0);
    assert_int_equal(wait_not_busy(), VGPU_STUB_STATUS_DONE);
    machine_reset();
    EXPECT_REG(VGPU_STUB_R_STATUS, VGPU_STUB_STATUS_IDLE);
    EXPECT_REG(VGPU_STUB_R_RESPONSE_TOTAL, 0);
    EXPECT_REG(VGPU_STUB_R_RESPONSE_LEN, 0);
    wr(VGPU_STUB_R_DOORBELL, VGPU_STUB_CMD_ACK); /* a mistake: nothing to acknowledge */
    EXPECT_REG(VGPU_STUB_R_STATUS, VGPU_STUB_STATUS_ERROR);
    machine_reset();
    EXPECT_REG(VGPU_STUB_R_STATUS, VGPU_STUB_STATUS_IDLE);
    EXPECT_REG(VGPU_STUB_R_ERROR_CODE, 0);
    EXPECT_REG(VGPU_STUB_R_LINK_EPOCH, epoch);
    ping();
    free(f);
}

/* ====================== group "link": this program is the server ========== */

struct rec {
    uint16_t type, flags;
    uint32_t channel, len;
    uint8_t *data;
};

/* One record from the device: 0, -ETIMEDOUT or -ECONNRESET. */
static int rec_read(struct rec *r, int timeout_ms)
{
    uint8_t h[VGPU_LINK_HEADER_SIZE];
    struct vgpu_link_header lh;
    int rc;

    memset(r, 0, sizeof(*r));
    rc = read_full(link_fd, h, sizeof(h), timeout_ms);
    if (rc)
        return rc;
    vgpu_link_header_unpack(h, &lh);
    if (lh.magic != VGPU_LINK_MAGIC)
        fail_msg("a link record with magic 0x%08" PRIx32 ", expected 0x%08x", lh.magic,
                 VGPU_LINK_MAGIC);
    r->type = lh.type;
    r->flags = lh.flags;
    r->channel = lh.channel;
    r->len = lh.length;
    if (r->len > VGPU_LINK_MAX_PAYLOAD)
        fail_msg("a link record of %" PRIu32 " bytes", r->len);
    r->data = malloc(r->len ? r->len : 1);
    assert_non_null(r->data);
    rc = read_full(link_fd, r->data, r->len, 5000);
    if (rc)
        fail_msg("a link record cut short (%d)", rc);
    return 0;
}

static void rec_write(uint32_t magic, uint16_t type, uint32_t ch, const void *p, uint32_t len,
                      uint32_t claimed_len)
{
    uint8_t h[VGPU_LINK_HEADER_SIZE] = { 0 };

    vgpu_link_header_pack(h, type, ch, claimed_len);
    vgpu_abi_put_le32(h + VGPU_LINK_OFF_MAGIC, magic); /* perhaps a wrong one */
    assert_int_equal(write_all(link_fd, h, sizeof(h)), 0);
    if (len)
        assert_int_equal(write_all(link_fd, p, len), 0);
}

static void rec_send(uint16_t type, uint32_t ch, const void *p, uint32_t len)
{
    rec_write(VGPU_LINK_MAGIC, type, ch, p, len, len);
}

/* The device must send nothing within ms. */
static void expect_no_record(int ms)
{
    struct rec r;
    int rc = rec_read(&r, ms);

    if (rc == 0)
        fail_msg("unexpected link record: type %u channel %" PRIu32 " len %" PRIu32, r.type,
                 r.channel, r.len);
    free(r.data);
    assert_int_equal(rc, -ETIMEDOUT);
}

/* Reads the next record and checks it is FRAME ch carrying exactly f. */
static void expect_frame_record(uint32_t ch, const uint8_t *f, size_t len)
{
    struct rec r;
    int rc = rec_read(&r, WAIT_MS);

    if (rc)
        fail_msg("no FRAME record from the device (%s)", rc == -ETIMEDOUT ? "timeout" : "EOF");
    assert_int_equal(r.type, VGPU_LINK_FRAME);
    assert_int_equal(r.flags, 0);
    assert_int_equal(r.channel, ch);
    assert_int_equal(r.len, len);
    assert_memory_equal(r.data, f, len);
    free(r.data);
}

static struct rec first_hello;

/* Waits for the device to (re)connect and checks its HELLO record. */
static int link_accept(struct rec *hello)
{
    if (link_fd >= 0)
        close(link_fd);
    link_fd = accept_within(link_lfd, WAIT_MS, "the device's chardev");
    if (link_fd < 0)
        return -1;
    if (rec_read(hello, 5000)) {
        fprintf(stderr, "device_test: no HELLO record after the device connected\n");
        return -1;
    }
    return 0;
}

static void check_hello(const struct rec *r)
{
    assert_int_equal(r->type, VGPU_LINK_HELLO);
    assert_int_equal(r->flags, 0);
    assert_int_equal(r->len, VGPU_LINK_HELLO_SIZE);
    assert_int_equal(vgpu_abi_get_le32(r->data + VGPU_LINK_HELLO_OFF_VM_ID), VM_ID);
    assert_int_equal(r->data[VGPU_LINK_HELLO_OFF_POOL_ID], POOL_ID);
    assert_int_equal(r->data[VGPU_LINK_HELLO_OFF_PRIORITY], PRIORITY);
    assert_int_equal(r->data[VGPU_LINK_HELLO_OFF_ZERO], 0);
    assert_int_equal(r->data[VGPU_LINK_HELLO_OFF_ZERO + 1], 0);
    /* the register interface's version, whatever the frames' */
    assert_int_equal(vgpu_abi_get_le32(r->data + VGPU_LINK_HELLO_OFF_VERSION),
                     VGPU_STUB_REG_VERSION);
}

/* After an error that may have made the device drop the link (a broken
 * record stream): takes the reconnection if one comes, and then checks the
 * epoch.  Returns 1 when the link was re-established. */
static int link_settle(uint32_t epoch_before)
{
    struct pollfd pf = { .fd = link_fd, .events = POLLIN };
    struct rec h;
    char c;

    if (poll(&pf, 1, 300) <= 0)
        return 0;
    if (read(link_fd, &c, 1) > 0)
        fail_msg("unexpected bytes from the device after an error");
    assert_int_equal(link_accept(&h), 0);
    check_hello(&h);
    free(h.data);
    for (int t = 0; t < 2000 && rd(VGPU_STUB_R_LINK_EPOCH) == epoch_before; t += 10)
        msleep(10);
    EXPECT_REG(VGPU_STUB_R_LINK_EPOCH, epoch_before + 1);
    return 1;
}

/* One exchange through the fake server: the device must deliver req as one
 * FRAME record on ch, and present ans as the answer. */
static void link_roundtrip_ex(uint32_t ch, const uint8_t *req, size_t len, size_t chunk, int mixed,
                              const uint8_t *ans, size_t anslen)
{
    uint8_t *got;
    size_t gotlen;

    assert_int_equal(submit_ex(ch, req, len, chunk, mixed, 0), 0);
    expect_frame_record(ch, req, len);
    EXPECT_REG(VGPU_STUB_R_STATUS, VGPU_STUB_STATUS_BUSY);
    rec_send(VGPU_LINK_FRAME, ch, ans, (uint32_t)anslen);
    assert_int_equal(wait_not_busy(), VGPU_STUB_STATUS_DONE);
    got = read_answer(&gotlen, mixed);
    assert_int_equal(gotlen, anslen);
    assert_memory_equal(got, ans, anslen);
    free(got);
    ack_idle();
}

static void link_roundtrip(uint32_t ch)
{
    uint8_t *req, *ans;
    size_t len, anslen;

    req = raw_frame(0, ++seq, 40, 0x11, &len);
    ans = raw_frame(VGPU_FRAME_F_REPLY, seq, 24, 0x22, &anslen);
    link_roundtrip_ex(ch, req, len, VGPU_STUB_BUF_SIZE, 0, ans, anslen);
    free(ans);
    free(req);
}

static int link_setup(void **state)
{
    (void)state;
    link_lfd = listen_on(link_sock);
    if (link_lfd < 0 || start_qemu(link_sock))
        return -1;
    if (link_accept(&first_hello))
        return -1;
    if (pci_setup()) {
        fprintf(stderr, "device_test: no %04x:%04x on bus 0 or BAR0 not programmable\n",
                VGPU_STUB_PCI_VENDOR, VGPU_STUB_PCI_DEVICE);
        return -1;
    }
    return 0;
}

static int link_teardown(void **state)
{
    int rc;

    (void)state;
    rc = stop_qemu();
    if (rc)
        fprintf(stderr, "device_test: QEMU did not survive the link group\n");
    if (link_fd >= 0)
        close(link_fd);
    if (link_lfd >= 0)
        close(link_lfd);
    link_fd = link_lfd = -1;
    unlink(link_sock);
    free(first_hello.data);
    return rc;
}

/* recover(), and records a failed test left unread are dropped. */
static int link_recover(void **state)
{
    struct rec r;
    int rc;

    if (recover(state))
        return -1;
    rc = -ECONNRESET;
    if (link_fd >= 0)
        while ((rc = rec_read(&r, 50)) == 0)
            free(r.data);
    if (rc == -ECONNRESET) {
        if (link_accept(&r))
            return -1;
        free(r.data);
    }
    return 0;
}

static void test_link_hello(void **state)
{
    uint32_t epoch = 0;

    (void)state;
    check_hello(&first_hello);
    for (int t = 0; t < 2000 && (epoch = rd(VGPU_STUB_R_LINK_EPOCH)) == 0; t += 10)
        msleep(10);
    assert_int_equal(epoch, 1);
    expect_no_record(200);
}

/* What the guest writes arrives byte for byte as one record; what the
 * server answers is read back byte for byte, whatever the chunk sizes. */
static void test_link_frames(void **state)
{
    static const size_t sizes[] = { 2600, 2601, 2602, 2603, 1024, 1025, 32, 33, 35 };
    uint8_t *req, *ans;
    size_t len, anslen;

    (void)state;
    wr(VGPU_STUB_R_REQUEST_ID, 0xabcd);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        /* answers of 2600..2603 bytes: the last window is 552..555 bytes */
        req = raw_frame(0, ++seq, 2500 + (uint32_t)i, (uint8_t)i, &len);
        ans = raw_frame(VGPU_FRAME_F_REPLY, seq, (uint32_t)(sizes[i] - VGPU_FRAME_HEADER_SIZE),
                        (uint8_t)(0x40 + i), &anslen);
        link_roundtrip_ex(7, req, len, i % 2 ? 100 : VGPU_STUB_BUF_SIZE, (int)(i % 2), ans, anslen);
        free(ans);
        free(req);
    }
    EXPECT_REG(VGPU_STUB_R_REQUEST_ID, 0xabcd);

    /* a frame of exactly 1024 bytes followed by an empty last chunk */
    req = raw_frame(0, ++seq, VGPU_STUB_BUF_SIZE - VGPU_FRAME_HEADER_SIZE, 0x5a, &len);
    ans = raw_frame(VGPU_FRAME_F_REPLY, seq, 0, 0, &anslen);
    assert_int_equal(submit_ex(8, req, len, VGPU_STUB_BUF_SIZE, 0, 1), 0);
    expect_frame_record(8, req, len);
    rec_send(VGPU_LINK_FRAME, 8, ans, (uint32_t)anslen);
    assert_int_equal(wait_not_busy(), VGPU_STUB_STATUS_DONE);
    EXPECT_REG(VGPU_STUB_R_RESPONSE_TOTAL, anslen);
    ack_idle();
    free(ans);
    free(req);

    /* the rounding of RESPONSE_LEN: 553 bytes may be read as 556 */
    req = raw_frame(0, ++seq, 8, 1, &len);
    ans = raw_frame(VGPU_FRAME_F_REPLY, seq, 2601 - VGPU_FRAME_HEADER_SIZE, 2, &anslen);
    assert_int_equal(submit(7, req, len), 0);
    expect_frame_record(7, req, len);
    rec_send(VGPU_LINK_FRAME, 7, ans, (uint32_t)anslen);
    assert_int_equal(wait_not_busy(), VGPU_STUB_STATUS_DONE);
    wr(VGPU_STUB_R_RESPONSE_OFFSET, 2048);
    EXPECT_REG(VGPU_STUB_R_RESPONSE_LEN, 553);
    rd(VGPU_STUB_R_RESPONSE + 552);
    EXPECT_REG(VGPU_STUB_R_STATUS, VGPU_STUB_STATUS_DONE);
    mark();
    rd(VGPU_STUB_R_RESPONSE + 556);
    expect_mistake(VGPU_STUB_ERR_READ_PAST_END);
    free(ans);
    free(req);
    link_roundtrip(7);
}

/*
 * The device passes on every frame whose flags the frame format defines
 * (COMPACT included), whatever its version: the server judges the version
 * and answers a client of another one with the versions each side speaks
 * (docs/protocol.md, section 1).  Answers, too, go to the guest whatever
 * their version.  A flag the format does not define stops at the device.
 */
static void test_link_frame_header(void **state)
{
    static const struct {
        uint16_t version, flags;
    } pass[] = {
        { VGPU_PROTOCOL_VERSION, VGPU_FRAME_F_COMPACT },
        { VGPU_PROTOCOL_VERSION, VGPU_FRAME_F_REPLY | VGPU_FRAME_F_COMPACT },
        { VGPU_PROTOCOL_VERSION + 1, 0 },
        { 0, VGPU_FRAME_F_REPLY },
        { 0xffff, VGPU_FRAME_F_COMPACT },
    };
    uint8_t *req, *ans;
    size_t len, anslen;

    (void)state;
    for (size_t i = 0; i < sizeof(pass) / sizeof(pass[0]); i++) {
        req = raw_frame(pass[i].flags, ++seq, 16 + (uint32_t)i, (uint8_t)i, &len);
        vgpu_abi_put_le16(req + VGPU_FRAME_OFF_VERSION, pass[i].version);
        ans = raw_frame(VGPU_FRAME_F_REPLY | VGPU_FRAME_F_COMPACT, seq, 8, 0x70, &anslen);
        vgpu_abi_put_le16(ans + VGPU_FRAME_OFF_VERSION, pass[i].version);
        link_roundtrip_ex(5, req, len, VGPU_STUB_BUF_SIZE, 0, ans, anslen);
        free(ans);
        free(req);
    }
    /* an undefined flag: BAD_FRAME, and nothing reaches the server */
    req = raw_frame(0, ++seq, 16, 0x33, &len);
    vgpu_abi_put_le16(req + VGPU_FRAME_OFF_FLAGS, UNKNOWN_FLAG);
    mark();
    assert_int_equal(submit(5, req, len), VGPU_STUB_ERR_BAD_FRAME);
    expect_mistake(VGPU_STUB_ERR_BAD_FRAME);
    expect_no_record(200);
    free(req);
    link_roundtrip(5);
}

/* SUBMIT and CLOSE while BUSY; an answer that arrives while ERROR shows, or
 * after the ACK, is dropped. */
static void test_link_busy(void **state)
{
    uint8_t *a, *b, *ans_a, *ans_b, *got;
    size_t alen, blen, ans_alen, ans_blen, gotlen;

    (void)state;
    a = raw_frame(0, ++seq, 100, 0xa0, &alen);
    ans_a = raw_frame(VGPU_FRAME_F_REPLY, seq, 100, 0xaa, &ans_alen);
    b = raw_frame(0, ++seq, 100, 0xb0, &blen);
    ans_b = raw_frame(VGPU_FRAME_F_REPLY, seq, 100, 0xbb, &ans_blen);

    assert_int_equal(submit(5, a, alen), 0);
    expect_frame_record(5, a, alen);
    EXPECT_REG(VGPU_STUB_R_STATUS, VGPU_STUB_STATUS_BUSY);
    mark();
    wr(VGPU_STUB_R_DOORBELL, VGPU_STUB_CMD_SUBMIT);
    EXPECT_REG(VGPU_STUB_R_STATUS, VGPU_STUB_STATUS_ERROR);
    EXPECT_REG(VGPU_STUB_R_ERROR_CODE, VGPU_STUB_ERR_BUSY);
    expect_no_record(200);
    rec_send(VGPU_LINK_FRAME, 5, ans_a, (uint32_t)ans_alen);
    msleep(200);
    EXPECT_REG(VGPU_STUB_R_STATUS, VGPU_STUB_STATUS_ERROR); /* kept until ACK */
    expect_mistake(VGPU_STUB_ERR_BUSY);
    msleep(100);
    EXPECT_REG(VGPU_STUB_R_STATUS, VGPU_STUB_STATUS_IDLE);

    /* the next exchange gets its own answer, not the stale one */
    assert_int_equal(submit(5, b, blen), 0);
    expect_frame_record(5, b, blen);
    rec_send(VGPU_LINK_FRAME, 5, ans_b, (uint32_t)ans_blen);
    assert_int_equal(wait_not_busy(), VGPU_STUB_STATUS_DONE);
    got = read_answer(&gotlen, 0);
    assert_int_equal(gotlen, ans_blen);
    assert_memory_equal(got, ans_b, ans_blen);
    free(got);
    ack_idle();

    /* CLOSE while BUSY: nothing sent */
    assert_int_equal(submit(5, a, alen), 0);
    expect_frame_record(5, a, alen);
    mark();
    wr(VGPU_STUB_R_DOORBELL, VGPU_STUB_CMD_CLOSE);
    expect_no_record(200);
    rec_send(VGPU_LINK_FRAME, 5, ans_a, (uint32_t)ans_alen);
    msleep(100);
    expect_mistake(VGPU_STUB_ERR_BUSY);
    link_roundtrip(5);
    free(a);
    free(b);
    free(ans_a);
    free(ans_b);
}

static void test_link_close(void **state)
{
    struct rec r;

    (void)state;
    wr(VGPU_STUB_R_CHANNEL, 9);
    wr(VGPU_STUB_R_DOORBELL, VGPU_STUB_CMD_CLOSE);
    EXPECT_REG(VGPU_STUB_R_STATUS, VGPU_STUB_STATUS_IDLE);
    assert_int_equal(rec_read(&r, WAIT_MS), 0);
    assert_int_equal(r.type, VGPU_LINK_CLOSE);
    assert_int_equal(r.flags, 0);
    assert_int_equal(r.channel, 9);
    assert_int_equal(r.len, 0);
    free(r.data);
    mark();
    wr(VGPU_STUB_R_CHANNEL, 0);
    wr(VGPU_STUB_R_DOORBELL, VGPU_STUB_CMD_CLOSE);
    expect_mistake(VGPU_STUB_ERR_NO_CHANNEL);
    expect_no_record(200);
    link_roundtrip(9);
}

static void test_link_fail(void **state)
{
    uint8_t *req;
    size_t len;

    (void)state;
    req = raw_frame(0, ++seq, 10, 3, &len);
    assert_int_equal(submit(5, req, len), 0);
    expect_frame_record(5, req, len);
    rec_send(VGPU_LINK_FAIL, 5, NULL, 0);
    assert_int_equal(wait_not_busy(), VGPU_STUB_STATUS_ERROR);
    EXPECT_REG(VGPU_STUB_R_ERROR_CODE, VGPU_STUB_ERR_SERVER_GONE);
    ack_idle();
    link_roundtrip(5);
    free(req);
}

/*
 * Malformed answers end in BAD_ANSWER; the device never waits for or
 * allocates what a hostile length claims.  Not checked here, because the
 * spec leaves room: records of a type the device does not know (the server
 * ignores those it does not know), and answers whose header has another
 * protocol version or flags (docs/protocol.md wants the guest to see a
 * foreign version's header so that it can explain the mismatch).
 */
static void test_link_bad_answer(void **state)
{
    static const char *const what[] = {
        "a FRAME record holding no vgpu frame",
        "a vgpu frame whose header claims more than its record holds",
        "an empty FRAME record",
        "a record claiming 2 GiB",
        "a record with a bad magic",
    };
    const int ncases = (int)(sizeof(what) / sizeof(what[0]));
    char failures[2048] = "";
    uint8_t *req, *ans, junk[40];
    size_t len, anslen, used = 0;
    uint32_t st, code;
    uint64_t rs = ++seq;

    (void)state;
    req = raw_frame(0, rs, 10, 3, &len);
    for (int i = 0; i < ncases; i++) {
        uint32_t epoch = rd(VGPU_STUB_R_LINK_EPOCH);

        assert_int_equal(submit(6, req, len), 0);
        expect_frame_record(6, req, len);
        switch (i) {
        case 0:
            memset(junk, 'z', sizeof(junk));
            rec_send(VGPU_LINK_FRAME, 6, junk, sizeof(junk));
            break;
        case 1:
            ans = raw_frame(VGPU_FRAME_F_REPLY, rs, 64, 0, &anslen);
            rec_send(VGPU_LINK_FRAME, 6, ans, (uint32_t)anslen - 16);
            free(ans);
            break;
        case 2:
            rec_send(VGPU_LINK_FRAME, 6, NULL, 0);
            break;
        case 3:
            rec_write(VGPU_LINK_MAGIC, VGPU_LINK_FRAME, 6, NULL, 0, 0x7fffffffu);
            break;
        case 4:
            rec_write(0x12345678u, VGPU_LINK_FRAME, 6, NULL, 0, 0);
            break;
        }
        st = poll_not_busy(2000);
        code = rd(VGPU_STUB_R_ERROR_CODE);
        if (st != VGPU_STUB_STATUS_ERROR || code != VGPU_STUB_ERR_BAD_ANSWER) {
            int n = snprintf(failures + used, sizeof(failures) - used,
                             "\n  answered with %s: STATUS %" PRIu32 " ERROR_CODE %" PRIu32,
                             what[i], st, code);

            if (n > 0 && (size_t)n < sizeof(failures) - used)
                used += (size_t)n;
            if (st == VGPU_STUB_STATUS_BUSY)
                machine_reset(); /* the only way out for the guest */
        }
        if (rd(VGPU_STUB_R_STATUS) != VGPU_STUB_STATUS_IDLE)
            ack_idle();
        assert_true(qemu_alive());
        link_settle(epoch);
        link_roundtrip(6);
    }
    free(req);
    if (used)
        fail_msg("expected ERROR (3) with BAD_ANSWER (12):%s", failures);
}

/*
 * The answer to a frame the guest gave up on (a reset, or a mistake while
 * BUSY) is dropped, even when the next frame happens to be on the same
 * channel with the same seq (seq is the requester's, opaque to everyone
 * else; a client restarted after a reboot counts from 1 again).  The server
 * answers frames in order, one at a time.
 */
static void test_link_stale_answer(void **state)
{
    uint8_t *req1, *req2, *old, *cur, *got;
    size_t len1, len2, oldlen, curlen, gotlen;
    uint64_t s = ++seq;
    int bad[2] = { 0, 0 };

    (void)state;
    req1 = raw_frame(0, s, 10, 0x31, &len1);
    req2 = raw_frame(0, s, 12, 0x32, &len2);
    old = raw_frame(VGPU_FRAME_F_REPLY, s, 10, 0x41, &oldlen);
    cur = raw_frame(VGPU_FRAME_F_REPLY, s, 12, 0x42, &curlen);
    for (int how = 0; how < 2; how++) {
        assert_int_equal(submit(2, req1, len1), 0);
        expect_frame_record(2, req1, len1);
        if (how == 0) {
            machine_reset();
        } else {
            rd(VGPU_STUB_R_QP_DOORBELL); /* no doorbells without BAR2: a mistake while BUSY */
            EXPECT_REG(VGPU_STUB_R_STATUS, VGPU_STUB_STATUS_ERROR);
            ack_idle();
        }
        assert_int_equal(submit(2, req2, len2), 0);
        expect_frame_record(2, req2, len2);
        rec_send(VGPU_LINK_FRAME, 2, old, (uint32_t)oldlen);
        rec_send(VGPU_LINK_FRAME, 2, cur, (uint32_t)curlen);
        assert_int_equal(wait_not_busy(), VGPU_STUB_STATUS_DONE);
        got = read_answer(&gotlen, 0);
        bad[how] = gotlen != curlen || memcmp(got, cur, curlen);
        free(got);
        ack_idle();
        expect_no_record(50);
    }
    free(cur);
    free(old);
    free(req2);
    free(req1);
    if (bad[0] || bad[1])
        fail_msg("the answer to an abandoned frame was presented as the answer to the next frame "
                 "(same channel, same seq) after%s%s",
                 bad[0] ? " a reset with a frame in flight;" : "",
                 bad[1] ? " a mistake while BUSY and its ACK" : "");
}

static void test_link_gone_in_flight(void **state)
{
    uint8_t *req;
    size_t len;
    uint32_t epoch = rd(VGPU_STUB_R_LINK_EPOCH);
    struct rec h;

    (void)state;
    req = raw_frame(0, ++seq, 10, 3, &len);
    assert_int_equal(submit(4, req, len), 0);
    expect_frame_record(4, req, len);
    close(link_fd);
    link_fd = -1;
    assert_int_equal(wait_not_busy(), VGPU_STUB_STATUS_ERROR);
    EXPECT_REG(VGPU_STUB_R_ERROR_CODE, VGPU_STUB_ERR_SERVER_GONE);
    ack_idle();
    /* reconnect=1: the chardev comes back within about a second */
    assert_int_equal(link_accept(&h), 0);
    check_hello(&h);
    free(h.data);
    for (int t = 0; t < 2000 && rd(VGPU_STUB_R_LINK_EPOCH) == epoch; t += 10)
        msleep(10);
    EXPECT_REG(VGPU_STUB_R_LINK_EPOCH, epoch + 1);
    link_roundtrip(4);
    free(req);
}

static void test_link_irq(void **state)
{
    uint8_t *req, *ans;
    size_t len, anslen;

    (void)state;
    assert_false(intx_asserted());
    /* whether IRQ_STATUS latches while IRQ_CTRL is clear is not specified:
     * start from a clear one */
    wr(VGPU_STUB_R_IRQ_STATUS, 1);
    EXPECT_REG(VGPU_STUB_R_IRQ_STATUS, 0);
    wr(VGPU_STUB_R_IRQ_CTRL, 1);
    EXPECT_REG(VGPU_STUB_R_IRQ_CTRL, 1);
    req = raw_frame(0, ++seq, 10, 3, &len);
    ans = raw_frame(VGPU_FRAME_F_REPLY, seq, 10, 4, &anslen);
    assert_int_equal(submit(3, req, len), 0);
    expect_frame_record(3, req, len);
    EXPECT_REG(VGPU_STUB_R_IRQ_STATUS, 0);
    assert_false(intx_asserted());
    rec_send(VGPU_LINK_FRAME, 3, ans, (uint32_t)anslen);
    assert_int_equal(wait_not_busy(), VGPU_STUB_STATUS_DONE);
    EXPECT_REG(VGPU_STUB_R_IRQ_STATUS, 1);
    assert_true(intx_asserted());
    wr(VGPU_STUB_R_IRQ_STATUS, 1); /* write 1 to clear */
    EXPECT_REG(VGPU_STUB_R_IRQ_STATUS, 0);
    assert_false(intx_asserted());
    ack_idle();

    /* ERROR raises it too */
    wr(VGPU_STUB_R_DOORBELL, VGPU_STUB_CMD_ACK);
    EXPECT_REG(VGPU_STUB_R_STATUS, VGPU_STUB_STATUS_ERROR);
    EXPECT_REG(VGPU_STUB_R_IRQ_STATUS, 1);
    assert_true(intx_asserted());
    wr(VGPU_STUB_R_IRQ_STATUS, 1);
    assert_false(intx_asserted());
    ack_idle();

    /* and with IRQ_CTRL clear, nothing is raised */
    wr(VGPU_STUB_R_IRQ_CTRL, 0);
    link_roundtrip(3);
    assert_false(intx_asserted());
    wr(VGPU_STUB_R_DOORBELL, VGPU_STUB_CMD_ACK);
    assert_false(intx_asserted());
    ack_idle();
    free(ans);
    free(req);
}

/* A frame in flight at reset is answered by the server; the answer is dropped
 * and the reset raises no interrupt. */
static void test_link_reset_in_flight(void **state)
{
    uint8_t *req, *ans;
    size_t len, anslen;
    uint32_t epoch = rd(VGPU_STUB_R_LINK_EPOCH);

    (void)state;
    req = raw_frame(0, ++seq, 10, 3, &len);
    ans = raw_frame(VGPU_FRAME_F_REPLY, seq, 10, 4, &anslen);
    wr(VGPU_STUB_R_IRQ_CTRL, 1);
    assert_int_equal(submit(2, req, len), 0);
    expect_frame_record(2, req, len);
    machine_reset();
    EXPECT_REG(VGPU_STUB_R_STATUS, VGPU_STUB_STATUS_IDLE);
    EXPECT_REG(VGPU_STUB_R_IRQ_CTRL, 0);
    rec_send(VGPU_LINK_FRAME, 2, ans, (uint32_t)anslen);
    msleep(200);
    EXPECT_REG(VGPU_STUB_R_STATUS, VGPU_STUB_STATUS_IDLE);
    EXPECT_REG(VGPU_STUB_R_RESPONSE_TOTAL, 0);
    EXPECT_REG(VGPU_STUB_R_IRQ_STATUS, 0);
    assert_false(intx_asserted());
    EXPECT_REG(VGPU_STUB_R_LINK_EPOCH, epoch);
    expect_no_record(100);
    link_roundtrip(2);
    free(ans);
    free(req);
}

/* A frame that outgrows VGPU_STUB_MAX_FRAME is refused (TOO_LARGE) by the chunk that
 * crosses it at the latest, and nothing reaches the server. */
static void test_link_too_large(void **state)
{
    struct vgpu_frame_header h = { .magic = VGPU_FRAME_MAGIC, .version = VGPU_PROTOCOL_VERSION,
                                   .payload_len = VGPU_STUB_MAX_FRAME, .seq = ++seq };
    uint8_t chunk[VGPU_STUB_BUF_SIZE] = { 0 };
    uint32_t code = 0, st = VGPU_STUB_STATUS_IDLE, n;

    (void)state;
    /* a valid header of a frame 32 bytes over VGPU_STUB_MAX_FRAME */
    vgpu_frame_header_encode(&h, chunk);
    put_request(chunk, sizeof(chunk), 0);
    wr(VGPU_STUB_R_CHANNEL, 3);
    wr(VGPU_STUB_R_REQUEST_LEN, VGPU_STUB_BUF_SIZE);
    wr(VGPU_STUB_R_CHUNK_CTRL, 1);
    mark();
    /* the buffer is appended as it is, again and again */
    for (n = 1; n <= VGPU_STUB_MAX_FRAME / VGPU_STUB_BUF_SIZE + 1; n++) {
        wr(VGPU_STUB_R_DOORBELL, VGPU_STUB_CMD_SUBMIT);
        st = rd(VGPU_STUB_R_STATUS);
        if (st != VGPU_STUB_STATUS_IDLE)
            break;
    }
    if (st != VGPU_STUB_STATUS_ERROR)
        fail_msg("STATUS %" PRIu32 " after %" PRIu32 " chunks of 1 KB (MAX_FRAME is 64 MiB)",
                 st, n);
    code = rd(VGPU_STUB_R_ERROR_CODE);
    if (code != VGPU_STUB_ERR_TOO_LARGE)
        fail_msg("ERROR_CODE %" PRIu32 " at chunk %" PRIu32 ", expected TOO_LARGE", code, n);
    expect_mistake(VGPU_STUB_ERR_TOO_LARGE);
    expect_no_record(200);
    EXPECT_REG(VGPU_STUB_R_REQUEST_TOTAL, 0);
    link_roundtrip(3);
}

/* ====================== main ====================== */

int main(int argc, char **argv)
{
    const struct CMUnitTest server_tests[] = {
        cmocka_unit_test_setup(test_pci_config, recover),
        cmocka_unit_test_setup(test_reset_values, recover),
        cmocka_unit_test_setup(test_hello_and_calls, recover),
        cmocka_unit_test_setup(test_err_offset_width_readonly, recover),
        cmocka_unit_test_setup(test_err_submit, recover),
        cmocka_unit_test_setup(test_err_states, recover),
        cmocka_unit_test_setup(test_err_response, recover),
        cmocka_unit_test_setup(test_close, recover),
        cmocka_unit_test_setup(test_session_fail, recover),
        cmocka_unit_test_setup(test_server_gone, recover),
        cmocka_unit_test_setup(test_device_reset, recover),
    };
    const struct CMUnitTest link_tests[] = {
        cmocka_unit_test_setup(test_link_hello, link_recover),
        cmocka_unit_test_setup(test_link_frames, link_recover),
        cmocka_unit_test_setup(test_link_frame_header, link_recover),
        cmocka_unit_test_setup(test_link_busy, link_recover),
        cmocka_unit_test_setup(test_link_close, link_recover),
        cmocka_unit_test_setup(test_link_fail, link_recover),
        cmocka_unit_test_setup(test_link_bad_answer, link_recover),
        cmocka_unit_test_setup(test_link_gone_in_flight, link_recover),
        cmocka_unit_test_setup(test_link_irq, link_recover),
        cmocka_unit_test_setup(test_link_reset_in_flight, link_recover),
        cmocka_unit_test_setup(test_link_stale_answer, link_recover),
        cmocka_unit_test_setup(test_link_too_large, link_recover),
    };
    int failed;

    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: %s PATH-TO-vgpu-server PATH-TO-qemu-system-x86_64 "
                        "[FIRMWARE-DIR[:DIR...]]\n", argv[0]);
        return 2;
    }
    server_bin = argv[1];
    qemu_bin = argv[2];
    fw_dirs = argc == 4 ? argv[3] : NULL;
    if (access(qemu_bin, X_OK)) {
        fprintf(stderr, "device_test: %s: %s\n", qemu_bin, strerror(errno));
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    snprintf(dir, sizeof(dir), "/tmp/vgpu-devtest-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("device_test: mkdtemp");
        return 1;
    }
    snprintf(server_sock, sizeof(server_sock), "%s/vgpu.sock", dir);
    snprintf(link_sock, sizeof(link_sock), "%s/link.sock", dir);
    snprintf(qtest_sock, sizeof(qtest_sock), "%s/qtest.sock", dir);
    snprintf(cache_dir, sizeof(cache_dir), "%s/cache", dir);
    snprintf(qemu_log, sizeof(qemu_log), "%s/qemu.log", dir);

    failed = cmocka_run_group_tests_name("server", server_tests, server_setup, server_teardown);
    failed += cmocka_run_group_tests_name("link", link_tests, link_setup, link_teardown);

    if (failed) {
        fprintf(stderr, "device_test: QEMU's guest-error log is kept in %s\n", qemu_log);
        return 1;
    }
    unlink(qemu_log);
    rmdir(cache_dir);
    rmdir(dir);
    return 0;
}
