/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the owner of the isolation test publishes for the intruders: the
 * values its CUDA calls returned (device pointer, stream, event) and the
 * host addresses it named its kernel and variable by.  One "key 0xvalue"
 * line each in WORK/owner.vals, written whole (rename) so a reader never
 * sees half a file.  Used by the CUDA programs (C++) and the raw client (C).
 */
#ifndef VGPU_ISO_VALS_H
#define VGPU_ISO_VALS_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct iso_vals {
    uint64_t buf, size, stream, event, kernel, symbol;
};

#define ISO_VALS_FIELDS(F) F(buf) F(size) F(stream) F(event) F(kernel) F(symbol)

static inline int iso_vals_write(const char *dir, const struct iso_vals *v)
{
    char path[4096], tmp[4200];
    FILE *f;

    snprintf(path, sizeof(path), "%s/owner.vals", dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if (!(f = fopen(tmp, "w")))
        return -1;
#define ISO_PUT(k) fprintf(f, #k " 0x%" PRIx64 "\n", v->k);
    ISO_VALS_FIELDS(ISO_PUT)
#undef ISO_PUT
    if (fclose(f) != 0)
        return -1;
    return rename(tmp, path);
}

static inline int iso_vals_read(const char *dir, struct iso_vals *v)
{
    char path[4096], key[32];
    uint64_t val;
    int n = 0;
    FILE *f;

    snprintf(path, sizeof(path), "%s/owner.vals", dir);
    if (!(f = fopen(path, "r")))
        return -1;
    memset(v, 0, sizeof(*v));
    while (fscanf(f, "%31s %" SCNx64, key, &val) == 2) {
#define ISO_GET(k) if (!strcmp(key, #k)) { v->k = val; n++; }
        ISO_VALS_FIELDS(ISO_GET)
#undef ISO_GET
    }
    fclose(f);
    return n == 6 ? 0 : -1;
}

/* Waits up to seconds for dir/name to exist: 0, or -1 on timeout. */
static inline int iso_wait_file(const char *dir, const char *name, int seconds)
{
    char path[4096];
    struct timespec tick = { 0, 20 * 1000 * 1000 };

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    for (int i = 0; i < seconds * 50; i++) {
        if (access(path, F_OK) == 0)
            return 0;
        nanosleep(&tick, NULL);
    }
    return -1;
}

/* Creates dir/name (empty): a signal for another process. */
static inline int iso_touch(const char *dir, const char *name)
{
    char path[4096];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (!(f = fopen(path, "w")))
        return -1;
    return fclose(f);
}

#endif
