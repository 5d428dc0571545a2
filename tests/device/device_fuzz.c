/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A fuzzer for the vgpu-stub device (docs/reliability.md, "The device"):
 * a real QEMU under the qtest accelerator, the device with a shared BAR,
 * its chardev to a real vgpu-server, and sequences of guest accesses made
 * from a seed: reads and writes of every width at BAR0's registers and
 * anywhere else in it, the doorbell's commands with lengths, channels and
 * chunk flags set before them, frames in the request buffer (a real Hello,
 * a mutated one, random bytes), the response window, the shared BAR's
 * slots and doorbells, PCI configuration (BARs moved or disabled, memory
 * decoding off) and machine resets.  Every few hundred sequences the server
 * is killed with SIGKILL and, some sequences later, started again, so the
 * device also meets a server going away mid-frame and coming back.
 *
 * After every sequence QEMU must answer a register read within the
 * timeout: a crash, an abort or a hang of QEMU fails the run with the seed
 * and the sequence's number (the sequences before it are made again from
 * the same seed; the log names the last one's accesses).  At the end QEMU
 * must exit on SIGTERM and the server must still serve.
 *
 *   device_fuzz SERVER QEMU FIRMWARE-DIRS SEED SEQUENCES [WORKDIR]
 * Environment: DEVICE_FUZZ_RESTART_EVERY (sequences between server kills,
 * default 500; 0: never).  A progress line every 50,000 sequences; SIGTERM
 * or SIGINT ends the run after the current sequence, with the same checks
 * and summary.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
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

#include "cudart_calltable.h"
#include "vgpu/apis.h"
#include "vgpu/stub_abi.h"
#include "vgpu/wire.h"

#define BAR0_ADDR   0xe0000000u
#define BAR2_ADDR   0xe1000000u          /* 16 MiB, aligned to its size */
#define BAR2_SIZE   (16u << 20)
#define TIMEOUT_MS  15000

static const char *server_bin, *qemu_bin, *fw_dirs;
static char dir[256], server_sock[108], qtest_sock[108], qemu_log[300], seq_log[300];
static pid_t server_pid = -1, qemu_pid = -1;
static int qt_fd = -1, pci_slot = -1;
static uint64_t rng, seq_no;
static FILE *trace;                      /* the current sequence's accesses */
static volatile sig_atomic_t interrupted; /* SIGTERM/SIGINT: stop after this sequence, report */
static struct { uint64_t ops, sequences, resets, kills, restarts; } count;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "device_fuzz: sequence %" PRIu64 ": ", seq_no);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\ndevice_fuzz: its accesses are in %s; QEMU's log is %s\n", seq_log, qemu_log);
    if (qemu_pid > 0)
        kill(qemu_pid, SIGKILL);
    if (server_pid > 0)
        kill(server_pid, SIGKILL);
    exit(1);
}

/* ---- randomness: splitmix64, so that a seed makes the same run ---- */

static uint64_t next(void)
{
    uint64_t z = (rng += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint32_t below(uint32_t n)
{
    return n ? (uint32_t)(next() % n) : 0;
}

static bool chance(uint32_t one_in)
{
    return below(one_in) == 0;
}

/* ---- processes ---- */

static void msleep(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

static pid_t spawn(char *const argv[], const char *err_path)
{
    pid_t pid = fork();

    if (pid == 0) {
        int nul = open("/dev/null", O_RDWR);
        int err = err_path ? open(err_path, O_WRONLY | O_CREAT | O_APPEND, 0644) : nul;

        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(nul, 0);
        dup2(nul, 1);
        dup2(err, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

static void start_server(void)
{
    char listen[160], cache[300], log[300];
    char *argv[] = { (char *)server_bin, "--listen", listen, "--cache-dir", cache,
                     "--log-level", "warn", NULL };

    snprintf(listen, sizeof(listen), "unix:%s,type=device", server_sock);
    snprintf(cache, sizeof(cache), "%s/cache", dir);
    snprintf(log, sizeof(log), "%s/server.log", dir);
    unlink(server_sock);
    server_pid = spawn(argv, log);
    for (int i = 0; i < 200 && access(server_sock, F_OK); i++)
        msleep(25);
    if (access(server_sock, F_OK))
        die("vgpu-server did not start (see %s)", log);
    count.restarts++;
}

static void kill_server(void)
{
    kill(server_pid, SIGKILL);
    waitpid(server_pid, NULL, 0);
    server_pid = -1;
    count.kills++;
}

static int listen_on(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    unlink(path);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1) < 0)
        die("cannot listen on %s: %s", path, strerror(errno));
    return fd;
}

static void start_qemu(void)
{
    char chardev[200], device[200], qtest[128], mem[64], *argv[64], *fw = strdup(fw_dirs);
    struct pollfd p;
    int n = 0, lfd = listen_on(qtest_sock);

    snprintf(qtest, sizeof(qtest), "unix:%s", qtest_sock);
    snprintf(chardev, sizeof(chardev), "socket,id=v,path=%s,reconnect=1", server_sock);
    snprintf(mem, sizeof(mem), "memory-backend-memfd,id=m,size=%u,share=on", BAR2_SIZE);
    snprintf(device, sizeof(device), "vgpu-stub,chardev=v,vm_id=9,pool_id=A,priority=1,memdev=m");
    argv[n++] = (char *)qemu_bin;
    argv[n++] = "-M";
    argv[n++] = "q35";
    argv[n++] = "-accel";
    argv[n++] = "qtest";
    argv[n++] = "-display";
    argv[n++] = "none";
    argv[n++] = "-nodefaults";
    for (char *save = NULL, *d = strtok_r(fw, ":", &save); d && n < 40; d = strtok_r(NULL, ":", &save)) {
        argv[n++] = "-L";
        argv[n++] = d;
    }
    argv[n++] = "-qtest";
    argv[n++] = qtest;
    argv[n++] = "-object";
    argv[n++] = mem;
    argv[n++] = "-chardev";
    argv[n++] = chardev;
    argv[n++] = "-device";
    argv[n++] = device;
    argv[n++] = "-d";
    argv[n++] = "guest_errors";
    argv[n++] = "-D";
    argv[n++] = "/dev/null";     /* thousands of guest errors a second: counted, not kept */
    argv[n] = NULL;
    qemu_pid = spawn(argv, qemu_log);
    free(fw);
    p = (struct pollfd){ .fd = lfd, .events = POLLIN };
    if (poll(&p, 1, 20000) != 1)
        die("QEMU did not connect to its qtest socket (see %s)", qemu_log);
    qt_fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    close(lfd);
    unlink(qtest_sock);
    if (qt_fd < 0)
        die("accept: %s", strerror(errno));
}

/* How QEMU ended, if it has: "" while it runs. */
static const char *qemu_end(void)
{
    static char why[64];
    int st;

    if (waitpid(qemu_pid, &st, WNOHANG) != qemu_pid)
        return "";
    qemu_pid = -1;
    if (WIFSIGNALED(st))
        snprintf(why, sizeof(why), "killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
    else
        snprintf(why, sizeof(why), "exited with status %d", WEXITSTATUS(st));
    return why;
}

static const char *qemu_state(void)
{
    const char *why = qemu_end();

    return *why ? why : "it still runs";
}

/* ---- qtest ---- */

static char qt_in[1 << 16];
static size_t qt_have;

static const char *qt_cmd(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* One command and its answer (after "OK"); a missing answer ends the run. */
static const char *qt_cmd(const char *fmt, ...)
{
    static char out[4200], line[4200];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(out, sizeof(out) - 1, fmt, ap);
    va_end(ap);
    if (trace)
        fprintf(trace, "%s\n", out);
    out[n] = '\n';
    for (size_t off = 0; off < (size_t)n + 1;) {
        ssize_t w = write(qt_fd, out + off, (size_t)n + 1 - off);

        if (w <= 0)
            die("QEMU is gone (%s) before '%.80s'", qemu_state(), out);
        off += (size_t)w;
    }
    out[n] = '\0';
    count.ops++;
    for (;;) {
        char *nl = memchr(qt_in, '\n', qt_have);
        struct pollfd p = { .fd = qt_fd, .events = POLLIN };
        ssize_t r;

        if (nl) {
            size_t len = (size_t)(nl - qt_in);

            if (len >= sizeof(line))
                die("qtest answer too long");
            memcpy(line, qt_in, len);
            line[len] = '\0';
            memmove(qt_in, nl + 1, qt_have - len - 1);
            qt_have -= len + 1;
            if (!strncmp(line, "IRQ ", 4))
                continue;        /* an interrupt line changed: not an answer */
            if (strncmp(line, "OK", 2))
                die("qtest answered '%.100s' to '%.80s'", line, out);
            return line[2] == ' ' ? line + 3 : line + 2;
        }
        if (qt_have == sizeof(qt_in))
            die("qtest answer too long");
        if (poll(&p, 1, TIMEOUT_MS) != 1)
            die("QEMU did not answer '%.80s' within %d s: a hang (%s)", out, TIMEOUT_MS / 1000,
                qemu_state());
        r = read(qt_fd, qt_in + qt_have, sizeof(qt_in) - qt_have);
        if (r <= 0) {
            msleep(200);
            die("QEMU closed qtest after '%.80s': %s", out, qemu_state());
        }
        qt_have += (size_t)r;
    }
}

static uint32_t cfg_rd(int slot, int reg)
{
    qt_cmd("outl 0xcf8 0x%" PRIx32, 0x80000000u | (uint32_t)slot << 11 | (uint32_t)(reg & 0xfc));
    return (uint32_t)strtoul(qt_cmd("inl 0xcfc"), NULL, 0);
}

static void cfg_wr(int slot, int reg, uint32_t v)
{
    qt_cmd("outl 0xcf8 0x%" PRIx32, 0x80000000u | (uint32_t)slot << 11 | (uint32_t)(reg & 0xfc));
    qt_cmd("outl 0xcfc 0x%" PRIx32, v);
}

/* The device found, its BARs placed, memory decoding on. */
static void pci_setup(void)
{
    if (pci_slot < 0)
        for (int slot = 0; slot < 32 && pci_slot < 0; slot++)
            if (cfg_rd(slot, 0) == (VGPU_STUB_PCI_DEVICE << 16 | VGPU_STUB_PCI_VENDOR))
                pci_slot = slot;
    if (pci_slot < 0)
        die("no vgpu-stub device on bus 0");
    cfg_wr(pci_slot, 0x10, BAR0_ADDR);
    cfg_wr(pci_slot, 0x18, BAR2_ADDR);
    cfg_wr(pci_slot, 0x1c, 0);
    cfg_wr(pci_slot, 0x04, 0x0002);
}

/* ---- the accesses ---- */

static const uint32_t regs[] = {
    VGPU_STUB_R_DOORBELL, VGPU_STUB_R_STATUS, VGPU_STUB_R_POOL_ID, VGPU_STUB_R_PRIORITY,
    VGPU_STUB_R_VM_ID, VGPU_STUB_R_ERROR_CODE, VGPU_STUB_R_REQUEST_LEN, VGPU_STUB_R_RESPONSE_LEN,
    VGPU_STUB_R_PROTOCOL_VER, VGPU_STUB_R_CAPABILITIES, VGPU_STUB_R_IRQ_CTRL,
    VGPU_STUB_R_IRQ_STATUS, VGPU_STUB_R_REQUEST_ID, VGPU_STUB_R_CHUNK_CTRL, VGPU_STUB_R_CHANNEL,
    VGPU_STUB_R_LINK_EPOCH, VGPU_STUB_R_REQUEST, VGPU_STUB_R_RESPONSE, VGPU_STUB_R_RESPONSE_TOTAL,
    VGPU_STUB_R_RESPONSE_OFFSET, VGPU_STUB_R_REQUEST_TOTAL, VGPU_STUB_R_MAX_FRAME,
    VGPU_STUB_R_LINK_STATE, VGPU_STUB_R_QP_DOORBELL, VGPU_STUB_R_QP_DOORBELL_K(1),
    VGPU_STUB_R_QP_DOORBELL_K(2), VGPU_STUB_R_QP_DOORBELL_K(63),
};

static uint32_t value(void)
{
    static const uint32_t edge[] = {
        0, 1, 2, 3, 4, 0x7f, 0x80, 0xff, 0x100, VGPU_STUB_BUF_SIZE - 1, VGPU_STUB_BUF_SIZE,
        VGPU_STUB_BUF_SIZE + 1, 2 * VGPU_STUB_BUF_SIZE, VGPU_FRAME_HEADER_SIZE,
        VGPU_STUB_MAX_FRAME - 1, VGPU_STUB_MAX_FRAME, VGPU_STUB_MAX_FRAME + 1, 0x7fffffffu,
        0x80000000u, 0xfffffffeu, 0xffffffffu,
    };

    switch (below(4)) {
    case 0: return edge[below(sizeof(edge) / sizeof(edge[0]))];
    case 1: return below(8);
    case 2: return (uint32_t)next();
    default: return below(4096);
    }
}

static uint32_t bar0_offset(void)
{
    if (chance(4))
        return below(VGPU_STUB_BAR0_SIZE + 8) & ~(chance(4) ? 0u : 3u);   /* anywhere, past the end too */
    return regs[below(sizeof(regs) / sizeof(regs[0]))] + (chance(8) ? below(4) : 0);
}

static void access_bar0(void)
{
    static const char *const w[] = { "writeb", "writew", "writel", "writeq" };
    static const char *const r[] = { "readb", "readw", "readl", "readq" };
    uint32_t off = bar0_offset();
    int width = chance(3) ? (int)below(4) : 2;

    if (chance(2))
        qt_cmd("%s 0x%" PRIx32 " 0x%" PRIx64, w[width], BAR0_ADDR + off,
               (uint64_t)value() | (width == 3 ? (uint64_t)value() << 32 : 0));
    else
        qt_cmd("%s 0x%" PRIx32, r[width], BAR0_ADDR + off);
}

/* Some bytes for the request buffer, most often under a valid frame header (magic, lengths). */
static size_t frame_bytes(uint8_t *b, size_t cap)
{
    size_t n = 1 + below((uint32_t)cap);
    uint32_t env_len;

    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)next();
    if (n < VGPU_FRAME_HEADER_SIZE || chance(4))
        return n;
    env_len = (uint32_t)(n - VGPU_FRAME_HEADER_SIZE);
    memset(b, 0, VGPU_FRAME_HEADER_SIZE);
    b[VGPU_FRAME_OFF_MAGIC] = 'V', b[VGPU_FRAME_OFF_MAGIC + 1] = 'G';
    b[VGPU_FRAME_OFF_MAGIC + 2] = 'P', b[VGPU_FRAME_OFF_MAGIC + 3] = 'U';
    b[VGPU_FRAME_OFF_VERSION] = chance(4) ? (uint8_t)below(8) : (uint8_t)VGPU_PROTOCOL_VERSION;
    b[VGPU_FRAME_OFF_ENV_LEN] = (uint8_t)env_len;
    b[VGPU_FRAME_OFF_ENV_LEN + 1] = (uint8_t)(env_len >> 8);
    if (chance(8))
        b[below(VGPU_FRAME_HEADER_SIZE)] ^= (uint8_t)(1u << below(8));
    return n;
}

/* Real frames, so that channels get sessions and answers come: a Hello, and a call. */
static uint8_t *hello, *call;
static size_t hello_len, call_len;

static void real_frames(void)
{
    Vgpu__Wire__Envelope env = VGPU__WIRE__ENVELOPE__INIT;
    Vgpu__Wire__Hello h = VGPU__WIRE__HELLO__INIT;
    Vgpu__Wire__CallBatch b = VGPU__WIRE__CALL_BATCH__INIT;
    Vgpu__Wire__Call c = VGPU__WIRE__CALL__INIT, *cp = &c;
    struct vgpu_frame_header fh = { .seq = 1 };

    vgpu_hello_init(&h, VGPU_CALL_TABLES_HASH, VGPU_CALL_TABLES_API, "device_fuzz",
                    (uint32_t)getpid(), "qtest-guest");
    env.body_case = VGPU__WIRE__ENVELOPE__BODY_HELLO;
    env.hello = &h;
    if (vgpu_frame_encode(&fh, &env, NULL, 0, NULL, &hello, &hello_len))
        die("cannot encode a Hello");
    c.call_id = VGPU_CUDART_ID_cudaGetDeviceCount;
    b.n_calls = 1;
    b.calls = &cp;
    env.body_case = VGPU__WIRE__ENVELOPE__BODY_CALLS;
    env.calls = &b;
    fh.seq = 2;
    if (vgpu_frame_encode(&fh, &env, NULL, 0, NULL, &call, &call_len))
        die("cannot encode a call");
    if (hello_len > VGPU_STUB_BUF_SIZE || call_len > VGPU_STUB_BUF_SIZE)
        die("the real frames do not fit one chunk");
}

/* A frame (or some bytes) into the request buffer, then SUBMIT with its length. */
static void submit(void)
{
    static char hex[2 * VGPU_STUB_BUF_SIZE + 1];
    uint8_t b[VGPU_STUB_BUF_SIZE];
    size_t n;

    if (chance(2)) {             /* a real frame, now and then with a bit flipped */
        bool h = chance(3);

        n = h ? hello_len : call_len;
        memcpy(b, h ? hello : call, n);
        if (chance(4))
            b[below((uint32_t)n)] ^= (uint8_t)(1u << below(8));
    } else {
        n = frame_bytes(b, sizeof(b));
    }

    for (size_t i = 0; i < n; i++)
        sprintf(hex + 2 * i, "%02x", b[i]);
    qt_cmd("writel 0x%" PRIx32 " 0x%" PRIx32, BAR0_ADDR + VGPU_STUB_R_CHANNEL,
           chance(8) ? value() : 1 + below(3));
    qt_cmd("write 0x%" PRIx32 " %zu 0x%s", BAR0_ADDR + VGPU_STUB_R_REQUEST, n, hex);
    qt_cmd("writel 0x%" PRIx32 " 0x%" PRIx32, BAR0_ADDR + VGPU_STUB_R_REQUEST_LEN,
           chance(6) ? value() : (uint32_t)n);
    qt_cmd("writel 0x%" PRIx32 " 0x%" PRIx32, BAR0_ADDR + VGPU_STUB_R_CHUNK_CTRL,
           chance(4) ? VGPU_STUB_CHUNK_MORE : chance(8) ? value() : 0);
    qt_cmd("writel 0x%" PRIx32 " 0x%" PRIx32, BAR0_ADDR + VGPU_STUB_R_DOORBELL,
           chance(6) ? value() : VGPU_STUB_CMD_SUBMIT);
}

static void read_response(void)
{
    uint32_t len = 1 + below(VGPU_STUB_BUF_SIZE + 64);

    if (chance(3))
        qt_cmd("writel 0x%" PRIx32 " 0x%" PRIx32, BAR0_ADDR + VGPU_STUB_R_RESPONSE_OFFSET,
               chance(2) ? below(4) * VGPU_STUB_BUF_SIZE : value());
    qt_cmd("read 0x%" PRIx32 " %" PRIu32, BAR0_ADDR + VGPU_STUB_R_RESPONSE, len);
    if (chance(2))
        qt_cmd("writel 0x%" PRIx32 " 0x%x", BAR0_ADDR + VGPU_STUB_R_DOORBELL,
               chance(3) ? VGPU_STUB_CMD_CLOSE : VGPU_STUB_CMD_ACK);
}

static void access_bar2(void)
{
    /* anywhere, or at a slot's start (its queue pair's header), a little past the end too */
    uint32_t off = chance(2) ? below(BAR2_SIZE) & ~7u
                             : below(BAR2_SIZE / VGPU_STUB_SLOT_SIZE + 1) * VGPU_STUB_SLOT_SIZE + below(64);
    if (chance(2))
        qt_cmd("writeq 0x%" PRIx64 " 0x%" PRIx64, (uint64_t)BAR2_ADDR + off, next());
    else
        qt_cmd("readq 0x%" PRIx64, (uint64_t)BAR2_ADDR + off);
}

static void doorbells(void)
{
    uint32_t k = chance(4) ? below(VGPU_STUB_MAX_DOORBELLS + 4) : below(3);

    qt_cmd("writel 0x%" PRIx32 " 0x%" PRIx32, BAR0_ADDR + VGPU_STUB_R_QP_DOORBELL_K(k), value());
}

/* Configuration space: BARs moved or probed, decoding off; pci_setup() puts it back. */
static bool pci_chaos(void)
{
    static const int reg[] = { 0x04, 0x10, 0x14, 0x18, 0x1c, 0x3c, 0x30 };

    cfg_wr(pci_slot, reg[below(sizeof(reg) / sizeof(reg[0]))], value());
    return true;
}

static void machine_reset(void)
{
    qt_cmd("outb 0xcf9 0x06");
    for (int i = 0; i < 1000 && (cfg_rd(pci_slot, 0x04) & 0xffff) != 0; i++)
        msleep(1);
    count.resets++;
}

static void sequence(void)
{
    uint32_t n = 1 + below(24);
    bool disturbed = false;

    for (uint32_t i = 0; i < n; i++) {
        switch (below(20)) {
        case 0: case 1: case 2: case 3: case 4: case 5: access_bar0(); break;
        case 6: case 7: case 8: case 9: submit(); break;
        case 10: case 11: case 12: read_response(); break;
        case 13: case 14: access_bar2(); break;
        case 15: case 16: doorbells(); break;
        case 17: if (chance(4)) disturbed = pci_chaos(); else access_bar0(); break;
        case 18: if (chance(16)) { machine_reset(); disturbed = true; } break;
        default: msleep((int)below(3)); break;   /* let answers arrive mid-sequence */
        }
    }
    if (disturbed)
        pci_setup();
    /* QEMU alive and answering, the device readable */
    qt_cmd("readl 0x%" PRIx32, BAR0_ADDR + VGPU_STUB_R_STATUS);
}

static void on_stop(int sig)
{
    (void)sig;
    interrupted = 1;
}

int main(int argc, char **argv)
{
    const char *env = getenv("DEVICE_FUZZ_RESTART_EVERY");
    uint64_t seed, sequences, restart_every = env ? strtoull(env, NULL, 10) : 500, down_until = 0;
    struct timespec t0, t1;
    int st;

    if (argc < 6) {
        fprintf(stderr, "usage: device_fuzz SERVER QEMU FIRMWARE-DIRS SEED SEQUENCES [WORKDIR]\n");
        return 2;
    }
    server_bin = argv[1], qemu_bin = argv[2], fw_dirs = argv[3];
    seed = strtoull(argv[4], NULL, 0), sequences = strtoull(argv[5], NULL, 0);
    if (argc > 6)
        snprintf(dir, sizeof(dir), "%s", argv[6]);
    else
        snprintf(dir, sizeof(dir), "/tmp/device-fuzz-%d", (int)getpid());
    for (char *p = strchr(dir + 1, '/');; p = strchr(p + 1, '/')) {   /* mkdir -p */
        if (p)
            *p = '\0';
        mkdir(dir, 0700);
        if (!p)
            break;
        *p = '/';
    }
    snprintf(server_sock, sizeof(server_sock), "/tmp/vgpu-dfz-%d.sock", (int)getpid());
    snprintf(qtest_sock, sizeof(qtest_sock), "/tmp/vgpu-dfz-%d.qtest", (int)getpid());
    snprintf(qemu_log, sizeof(qemu_log), "%s/qemu.log", dir);
    snprintf(seq_log, sizeof(seq_log), "%s/sequence.txt", dir);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_stop);
    signal(SIGINT, on_stop);
    rng = seed;
    real_frames();
    clock_gettime(CLOCK_MONOTONIC, &t0);
    start_server();
    start_qemu();
    pci_setup();
    for (seq_no = 0; seq_no < sequences && !interrupted; seq_no++) {
        trace = fopen(seq_log, "w");
        if (restart_every && server_pid > 0 && seq_no && seq_no % restart_every == 0) {
            kill_server();
            down_until = seq_no + 1 + below(50);
        }
        if (server_pid < 0 && seq_no >= down_until)
            start_server();
        sequence();
        count.sequences++;
        if (trace)
            fclose(trace);
        trace = NULL;
        if (count.sequences % 50000 == 0) {       /* progress for long runs */
            clock_gettime(CLOCK_MONOTONIC, &t1);
            printf("device_fuzz: seed %" PRIu64 ": %" PRIu64 " sequences, %" PRIu64 " accesses, "
                   "%.0f s\n", seed, count.sequences, count.ops,
                   (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
            fflush(stdout);
        }
    }
    /* The end: QEMU exits on SIGTERM, not by a crash; the server is still there. */
    if (server_pid < 0)
        start_server();
    kill(qemu_pid, SIGTERM);
    if (waitpid(qemu_pid, &st, 0) != qemu_pid ||
        !((WIFEXITED(st) && WEXITSTATUS(st) == 0) || (WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM)))
        die("QEMU did not end cleanly on SIGTERM (status 0x%x)", st);
    qemu_pid = -1;
    if (waitpid(server_pid, &st, WNOHANG) != 0)
        die("vgpu-server ended during the run (see %s/server.log)", dir);
    kill(server_pid, SIGTERM);
    waitpid(server_pid, &st, 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    unlink(server_sock);
    printf("device_fuzz: seed %" PRIu64 ": %" PRIu64 " sequences, %" PRIu64 " accesses, %" PRIu64
           " machine resets, server killed %" PRIu64 " times and started %" PRIu64 " times, "
           "%.1f s; QEMU and the server survived%s\n", seed, count.sequences, count.ops,
           count.resets, count.kills, count.restarts,
           (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
           interrupted ? " (stopped early by a signal)" : "");
    return 0;
}
