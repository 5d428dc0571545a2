/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A hostile server for the shim's side (tests/hostile/run_evil_server.sh):
 * preloaded into vgpu-server, it wraps sendmsg and writev so that each
 * session process, past its first VGPU_EVIL_SKIP messages (the handshake),
 * corrupts one message in VGPU_EVIL_EVERY: one to four bytes of it set to
 * random values, anywhere in the frame (its header, its envelope, its
 * payload, an error table's entries).  The randomness comes from
 * VGPU_EVIL_SEED and the session's place among the server's forks, so with
 * programs run one after another a run is repeated by its seed.  Only the
 * socket path (VGPU_SHM=0 in the client) goes through here.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

static pid_t owner;
static unsigned long sent, forks;
static uint64_t state;

/* in the parent, after each fork: the child keeps the count from before, its place */
static void forked(void)
{
    forks++;
}

__attribute__((constructor)) static void init(void)
{
    pthread_atfork(NULL, forked, NULL);
}

static uint64_t next(void)
{
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

static unsigned long env_num(const char *name, unsigned long dflt)
{
    const char *v = getenv(name);

    return v && *v ? strtoul(v, NULL, 0) : dflt;
}

/* Whether this message is to be corrupted (per process: a fork starts its own count). */
static int pick(void)
{
    pid_t me = getpid();

    if (me != owner) {
        owner = me;
        sent = 0;
        state = (env_num("VGPU_EVIL_SEED", 1) * 0x9e3779b97f4a7c15ull) ^ (forks << 32) ^ 1;
    }
    if (sent++ < env_num("VGPU_EVIL_SKIP", 4))
        return 0;
    unsigned long every = env_num("VGPU_EVIL_EVERY", 8);

    return next() % (every ? every : 1) == 0;
}

/* A copy of iov's bytes with up to four of them changed, in one buffer; NULL when empty. */
static void *corrupt(const struct iovec *iov, int n, size_t *len)
{
    size_t total = 0, at = 0;
    unsigned char *b;

    for (int i = 0; i < n; i++)
        total += iov[i].iov_len;
    if (!total || !(b = malloc(total)))
        return NULL;
    for (int i = 0; i < n; i++) {
        memcpy(b + at, iov[i].iov_base, iov[i].iov_len);
        at += iov[i].iov_len;
    }
    for (uint64_t k = 1 + next() % 4; k; k--) {
        /* half the time in the first 64 bytes: the header and the envelope */
        size_t where = next() % 2 ? next() % (total < 64 ? total : 64) : next() % total;

        b[where] = (unsigned char)next();
    }
    *len = total;
    return b;
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
    static ssize_t (*real)(int, const struct msghdr *, int);
    struct msghdr m;
    struct iovec one;
    void *b;
    ssize_t r;

    if (!real)
        real = (ssize_t (*)(int, const struct msghdr *, int))dlsym(RTLD_NEXT, "sendmsg");
    if (!pick() || !(b = corrupt(msg->msg_iov, (int)msg->msg_iovlen, &one.iov_len)))
        return real(fd, msg, flags);
    one.iov_base = b;
    m = *msg;
    m.msg_iov = &one;
    m.msg_iovlen = 1;
    r = real(fd, &m, flags);
    free(b);
    return r;
}

ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
    static ssize_t (*real)(int, const struct iovec *, int);
    struct iovec one;
    void *b;
    ssize_t r;

    if (!real)
        real = (ssize_t (*)(int, const struct iovec *, int))dlsym(RTLD_NEXT, "writev");
    if (!pick() || !(b = corrupt(iov, iovcnt, &one.iov_len)))
        return real(fd, iov, iovcnt);
    one.iov_base = b;
    r = real(fd, &one, 1);
    free(b);
    return r;
}
