/* SPDX-License-Identifier: Apache-2.0 */
/*
 * LaunchArgs (proto/manual.proto) read straight from its protobuf wire
 * form: every kernel launch carries one, and protobuf-c's general unpacker
 * cost about half a microsecond of each launch on the server.  It gives the
 * verdict and values vgpu__manual__launch_args__unpack() gives, quirks
 * included (tests/unit/launch_args_test.c compares the two on hundreds of
 * thousands of mutated messages), without allocating.
 */
#ifndef VGPU_LAUNCH_ARGS_H
#define VGPU_LAUNCH_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vgpu_dim3 {
    bool present;                 /* the field was in the message */
    uint32_t x, y, z;
};

struct vgpu_launch_args {
    uint64_t host, shared_mem, stream;
    struct vgpu_dim3 grid, block;
    bool ptsz, cooperative;
};

/* 0, or -1 when protobuf-c would refuse the message too. */
int vgpu_launch_args_read(const uint8_t *p, size_t n, struct vgpu_launch_args *out);

#endif
