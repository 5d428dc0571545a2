/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The input format of control_fuzz, shared with control_seeds, which writes
 * its seed corpus.  An input is a setup byte and then records, each one
 * Control operation for the same session:
 *
 *   setup:  bit 0  the session has a shared BAR (32 MiB, four 8 MiB slots)
 *           bits 1-3  doorbells of that BAR (slots 0..n-1)
 *           bit 4  slots 0 and 1 start with a laid-out queue pair
 *   record: fd byte, 16-bit little-endian length, a packed vgpu.wire.Control
 *   fd:     bit 7  a memfd travels with the operation
 *           bit 6  sealed against shrinking
 *           bit 5  it starts with a laid-out queue pair (rings of CF_RING)
 *           bits 0-4  its size in units of CF_UNIT
 */
#ifndef VGPU_CONTROL_FUZZ_H
#define VGPU_CONTROL_FUZZ_H

#define CF_BAR 0x01u
#define CF_BELLS_SHIFT 1
#define CF_BAR_QP 0x10u

#define CF_FD 0x80u
#define CF_SEAL 0x40u
#define CF_FD_QP 0x20u
#define CF_PAGES 0x1fu

#define CF_UNIT 8192u          /* a memfd's size is counted in these */
#define CF_RING 65536u         /* ring sizes of the queue pairs laid out (the smallest allowed) */
#define CF_BAR_SIZE ((uint64_t)32 << 20)

#endif
