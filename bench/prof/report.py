#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Sums bench/prof/sampler.c's samples by library and by function.

    report.py PROFILE... [--symbols NAME=FILE]...

PROFILE: /tmp/vgpu-prof.PID files.  For a library named NAME (its file
name, e.g. vgpu-server or libcuda.so.1) whose FILE is given, the samples in
it are named by function with addr2line (binutils), the FILE being the same
build that ran.
"""
import collections
import os
import subprocess
import sys


def load(path):
    """(address, maps) per sample; the maps written with its chunk."""
    out = []
    for chunk in open(path).read().split("MAPS\n")[1:]:
        head, _, tail = chunk.partition("PCS\n")
        maps = []
        for line in head.splitlines():
            f = line.split()
            lo, hi = (int(x, 16) for x in f[0].split("-"))
            maps.append((lo, hi, int(f[2], 16), f[5] if len(f) >= 6 else "[anon]"))
        out += [(int(x, 16), maps) for x in tail.split()]
    return out


def main(argv):
    files, symbols = [], {}
    it = iter(argv)
    for a in it:
        if a == "--symbols":
            name, _, f = next(it).partition("=")
            symbols[name] = f
        else:
            files.append(a)
    if not files:
        sys.exit(__doc__)
    for path in files:
        samples = load(path)
        by_lib, offs = collections.Counter(), collections.defaultdict(collections.Counter)
        for pc, maps in samples:
            lib = "?"
            for lo, hi, off, name in maps:
                if lo <= pc < hi:
                    lib = os.path.basename(name)
                    offs[lib][pc - lo + off] += 1
                    break
            by_lib[lib] += 1
        total = max(1, len(samples))
        print(f"{path}: {len(samples)} samples")
        for lib, n in by_lib.most_common(12):
            print(f"  {100 * n / total:5.1f}%  {lib}")
        for lib, f in symbols.items():
            if lib not in offs:
                continue
            addrs = list(offs[lib])
            names = subprocess.run(["addr2line", "-f", "-e", f] + [hex(a) for a in addrs],
                                   capture_output=True, text=True, check=False).stdout.split("\n")
            fn = collections.Counter()
            for i, a in enumerate(addrs):
                fn[names[2 * i] if 2 * i < len(names) else "?"] += offs[lib][a]
            print(f"  {lib} by function:")
            for name, n in fn.most_common(15):
                print(f"    {100 * n / total:5.1f}%  {name}")


if __name__ == "__main__":
    main(sys.argv[1:])
