/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Two libraries that each link the client library, loaded into one process
 * (as libcudart.so.13 and libcuda.so.1 will be), share one client: the
 * same instance, one connection to the server, one thread state.  Both are
 * opened RTLD_LOCAL, so neither can see the other's symbols; the first one
 * initialised serves, and stays loaded after the program closes it.
 *
 *   two_libs_test DIR ORDER    DIR holds libpeer_a.so and libpeer_b.so;
 *                              ORDER "ab" or "ba" says which opens first.
 *   two_libs_test DIR shim LIBCUDART
 *                              the real shim first, then libpeer_a.so: the
 *                              peer uses the shim's client.
 * A fake server on a unix socket counts connections and closes each.
 */
#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "two_libs_test: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
            exit(1);                                                        \
        }                                                                   \
    } while (0)

static int listen_fd;
static int accepted;
static volatile int stop;

static void *fake_server(void *arg)
{
    (void)arg;
    while (!stop) {
        struct pollfd p = { .fd = listen_fd, .events = POLLIN };

        if (poll(&p, 1, 50) == 1) {
            int fd = accept(listen_fd, NULL, NULL);

            if (fd >= 0) {
                __atomic_add_fetch(&accepted, 1, __ATOMIC_SEQ_CST);
                close(fd);       /* no handshake: the client gives up for good */
            }
        }
    }
    return NULL;
}

struct peer {
    void *h;
    void *(*client)(void);
    const void *(*local_ops)(void);
    const void *(*ops)(void);
    int (*connect)(void);
    void (*set_device)(int);
    int (*device)(void);
};

static void *sym(void *h, char which, const char *name)
{
    char full[64];
    void *p;

    snprintf(full, sizeof(full), "peer_%c_%s", which, name);
    p = dlsym(h, full);
    CHECK(p != NULL);
    return p;
}

static void open_peer(struct peer *p, const char *dir, char which)
{
    char path[4096];

    snprintf(path, sizeof(path), "%s/libpeer_%c.so", dir, which);
    p->h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!p->h)
        fprintf(stderr, "two_libs_test: %s\n", dlerror());
    CHECK(p->h != NULL);
    *(void **)&p->client = sym(p->h, which, "client");
    *(void **)&p->local_ops = sym(p->h, which, "local_ops");
    *(void **)&p->ops = sym(p->h, which, "ops");
    *(void **)&p->connect = sym(p->h, which, "connect");
    *(void **)&p->set_device = sym(p->h, which, "set_device");
    *(void **)&p->device = sym(p->h, which, "device");
}

/* The shim (libcudart.so.13) first: its client serves the peer loaded after it. */
static void with_shim(const char *dir, const char *shim)
{
    int (*count)(int *);
    struct peer a;
    void *h = dlopen(shim, RTLD_NOW | RTLD_LOCAL);
    int n = -1;

    if (!h)
        fprintf(stderr, "two_libs_test: %s\n", dlerror());
    CHECK(h != NULL);
    *(void **)&count = dlsym(h, "cudaGetDeviceCount");
    CHECK(count != NULL);
    open_peer(&a, dir, 'a');
    CHECK(a.ops() != a.local_ops());
    /* the runtime's call connects (and fails: no handshake); the peer's finds that */
    CHECK(count(&n) == 100 /* cudaErrorNoDevice */);
    CHECK(a.connect() == -ENOTCONN);
}

int main(int argc, char **argv)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    char dir[] = "/tmp/vgpu-twolibs-XXXXXX", addr[200];
    struct peer first, second;
    pthread_t t;

    CHECK((argc == 3 && strlen(argv[2]) == 2) || (argc == 4 && !strcmp(argv[2], "shim")));
    CHECK(mkdtemp(dir) != NULL);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/s", dir);
    listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(listen_fd >= 0);
    CHECK(bind(listen_fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    CHECK(listen(listen_fd, 8) == 0);
    CHECK(pthread_create(&t, NULL, fake_server, NULL) == 0);
    snprintf(addr, sizeof(addr), "unix:%s", sa.sun_path);
    setenv("VGPU_SERVER", addr, 1);
    setenv("VGPU_LOG", "error", 1);

    if (argc == 4) {
        with_shim(argv[1], argv[3]);
        goto done;
    }
    open_peer(&first, argv[1], argv[2][0]);
    open_peer(&second, argv[1], argv[2][1]);

    /* two copies of the code, one client: the first one's */
    CHECK(first.local_ops() != second.local_ops());
    CHECK(first.client() == second.client());
    CHECK(first.ops() == first.local_ops());
    CHECK(second.ops() == first.local_ops());

    /* one connection: the second library's attempt finds the first's outcome */
    CHECK(first.connect() < 0);
    CHECK(second.connect() == -ENOTCONN);
    /* one thread state */
    first.set_device(3);
    CHECK(second.device() == 3);

    /* the first library closed: the client stays, the second goes on using it */
    dlclose(first.h);
    second.set_device(5);
    CHECK(second.device() == 5);
    CHECK(second.connect() == -ENOTCONN);

done:
    stop = 1;
    pthread_join(t, NULL);
    CHECK(accepted == 1);
    unlink(sa.sun_path);
    rmdir(dir);
    printf("two_libs_test %s: one client, one connection\n", argv[2]);
    return 0;
}
