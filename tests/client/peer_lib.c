/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A stand-in for an interposed library (libcudart.so.13, libcuda.so.1):
 * built twice, as libpeer_a.so and libpeer_b.so, each with its own hidden
 * copy of the client library, exporting only these few functions for
 * two_libs_test.c.  PEER names the copy.
 */
#include <stddef.h>

#include "client_internal.h"

#define EXPORT __attribute__((visibility("default")))
#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define FN(name) CAT(CAT(peer_, PEER), CAT(_, name))

/* The client this library's calls go to. */
EXPORT void *FN(client)(void)
{
    return vgpu_client_get();
}

/* This copy's own table of operations (where a client it made points). */
EXPORT const void *FN(local_ops)(void)
{
    return &vgpu_client_local_ops;
}

/* The table of operations of the client it uses. */
EXPORT const void *FN(ops)(void)
{
    return vgpu_client_get()->ops;
}

EXPORT int FN(connect)(void)
{
    return vgpu_client_connect(vgpu_client_get());
}

EXPORT void FN(set_device)(int device)
{
    vgpu_client_set_device(vgpu_client_get(), device);
}

EXPORT int FN(device)(void)
{
    return vgpu_client_device(vgpu_client_get());
}
