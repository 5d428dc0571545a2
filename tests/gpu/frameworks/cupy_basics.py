# SPDX-License-Identifier: Apache-2.0
#
# CuPy through vgpu, compared with the native run: an elementwise kernel
# (compiled with NVRTC and loaded with cuModuleLoadData), a reduction, a
# cuBLAS matmul and a cuFFT transform.
import hashlib

import cupy as cp


def h(a):
    return hashlib.sha256(cp.asnumpy(a).tobytes()).hexdigest()[:16]


x = cp.arange(1 << 16, dtype=cp.float32)
print("elementwise", h(cp.sin(x) * 3 + 1))
print("sum", float(x.sum()))
k = cp.ElementwiseKernel("float32 a, float32 b", "float32 c", "c = a * b + 2", "vgpu_fma")
print("custom kernel", h(k(x, x)))
a = cp.random.default_rng(0).standard_normal((256, 256), dtype=cp.float32)
print("matmul", h(a @ a))
print("fft", h(cp.fft.fft(x[:4096])))
