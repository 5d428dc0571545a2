/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A stand-in for a vgpu-server one protocol version newer than this build,
 * answering every Hello as docs/protocol.md §1 says a server of another
 * version must: a HelloReply {ok: false} carrying its own version, under a
 * header with the client's version so the client can read it.  Used by
 * run_other_version.sh to check what the shim does with such an answer.
 *   newer_server SOCKET_PATH   (serves until killed)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "vgpu/fdio.h"
#include "vgpu/wire.h"

#define NEWER (VGPU_PROTOCOL_VERSION + 1)

static void answer(int fd)
{
    Vgpu__Wire__Envelope env = VGPU__WIRE__ENVELOPE__INIT;
    Vgpu__Wire__HelloReply r;
    struct vgpu_frame f = { 0 };
    struct vgpu_frame_header h = { .flags = VGPU_FRAME_F_REPLY };
    char why[200];
    uint8_t *buf;
    size_t len;

    if (vgpu_fd_read_frame(fd, NULL, &buf, &len))
        return;
    if (vgpu_frame_decode(buf, len, NULL, NULL, NULL, &f) == 0 &&
        f.env->body_case == VGPU__WIRE__ENVELOPE__BODY_HELLO) {
        vgpu_wire_version_message(f.env->hello->protocol_version, NEWER, why, sizeof(why));
        vgpu_hello_reply_init(&r, VGPU_WIRE_E_BAD_VERSION, 0, "newer_server", why);
        r.protocol_version = NEWER;
        env.body_case = VGPU__WIRE__ENVELOPE__BODY_HELLO_REPLY;
        env.hello_reply = &r;
        h.seq = f.hdr.seq;
        vgpu_fd_send_frame(fd, &h, &env, NULL, 0);
    }
    vgpu_frame_release(&f);
    free(buf);
}

int main(int argc, char **argv)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (argc != 2 || strlen(argv[1]) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "usage: newer_server SOCKET_PATH\n");
        return 2;
    }
    strcpy(sa.sun_path, argv[1]);
    unlink(argv[1]);
    if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) || listen(l, 8)) {
        perror("newer_server");
        return 1;
    }
    for (;;) {
        int fd = accept(l, NULL, NULL);

        if (fd < 0)
            continue;
        answer(fd);
        close(fd);
    }
}
