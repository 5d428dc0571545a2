# SPDX-License-Identifier: Apache-2.0
#
# Runs a script (argv[1:]) and, at exit, checks that nothing but vgpu
# reached the GPU from this process: no /dev/nvidia* file open, and no
# NVIDIA driver library mapped but the ones in VGPU_ISOLATION_LIBDIR.
# Writes "vgpu isolation: ok" or what it found to stderr. PyTorch reads
# CUDA_VISIBLE_DEVICES itself (an empty one means no GPUs), so the
# frameworks run is checked this way instead of hiding the GPU with it.
import atexit
import os
import runpy
import sys


def check():
    allowed = os.path.realpath(os.environ.get("VGPU_ISOLATION_LIBDIR", "/nonexistent"))
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("/dev/nvidia"):
            found.append(target)
    with open("/proc/self/maps") as maps:
        for line in maps:
            path = line.split()[-1] if len(line.split()) >= 6 else ""
            base = os.path.basename(path)
            if base.startswith(("libcuda.so", "libnvidia-ml.so")) and \
                    os.path.dirname(os.path.realpath(path)) != allowed:
                found.append(path)
            if path.startswith("/dev/nvidia"):
                found.append(path)
    msg = "ok" if not found else "REACHED THE GPU: " + ", ".join(sorted(set(found)))
    print("vgpu isolation:", msg, file=sys.stderr, flush=True)


atexit.register(check)
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
