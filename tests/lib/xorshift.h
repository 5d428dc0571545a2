/* SPDX-License-Identifier: Apache-2.0 */
/* A deterministic PRNG (xorshift64*) for tests, so that a failure reproduces. */
#ifndef VGPU_TEST_XORSHIFT_H
#define VGPU_TEST_XORSHIFT_H

#include <stdint.h>

static uint64_t xorshift_state = 0x9E3779B97F4A7C15ull;

static inline uint64_t xorshift(void)
{
    xorshift_state ^= xorshift_state >> 12;
    xorshift_state ^= xorshift_state << 25;
    xorshift_state ^= xorshift_state >> 27;
    return xorshift_state * 0x2545F4914F6CDD1Dull;
}

#endif
