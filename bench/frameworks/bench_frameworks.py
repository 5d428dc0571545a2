# SPDX-License-Identifier: Apache-2.0
#
# Framework workloads timed where frameworks spend time: a CNN and an MLP
# training step (forward, backward, SGD) at a batch size where launch
# overhead dominates and one where the GPU does, greedy decoding of a small
# plain-PyTorch transformer eagerly and with the step captured in a CUDA
# graph, a cuBLAS SGEMM/HGEMM sweep and a batched cuFFT. Prints one line per
# figure: "<name> <value> <unit>". bench/frameworks/run.sh runs it natively
# and through vgpu and tabulates both.
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests", "gpu", "frameworks"))
from torch_decode import Tiny, generate  # noqa: E402


def timed(fn, iters, warmup=5):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(iters):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t) / iters


def train_step(model, batch, shape, iters):
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, *shape, device="cuda")
    y = torch.randint(0, 10, (batch,), device="cuda")

    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return timed(step, iters)


def main():
    # bench_frameworks.py [PART...]: only the parts named (cnn, mlp, decode, gemm, fft)
    parts = set(sys.argv[1:]) or {"cnn", "mlp", "decode", "gemm", "fft"}
    torch.manual_seed(0)
    torch.backends.cudnn.benchmark = True
    cnn = lambda: nn.Sequential(  # noqa: E731
        nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 8 * 8, 128), nn.ReLU(), nn.Linear(128, 10)).cuda()
    mlp = lambda: nn.Sequential(  # noqa: E731
        nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
        nn.Linear(512, 10)).cuda()
    for batch, iters in ((8, 200), (512, 50)) if "cnn" in parts else ():
        print(f"cnn_train_b{batch} {train_step(cnn(), batch, (3, 32, 32), iters) * 1e6:.1f} us")
    for batch, iters in ((8, 300), (4096, 100)) if "mlp" in parts else ():
        print(f"mlp_train_b{batch} {train_step(mlp(), batch, (1, 28, 28), iters) * 1e6:.1f} us")

    model = Tiny().cuda().eval()
    with torch.no_grad():
        for graphs in (False, True) if "decode" in parts else ():
            n = 128
            generate(model, 8, graphs)
            torch.cuda.synchronize()
            t = time.perf_counter()
            for _ in range(3):
                generate(model, n, graphs)
            torch.cuda.synchronize()
            print(f"decode_{'graphs' if graphs else 'eager'} {(time.perf_counter() - t) / (3 * n) * 1e6:.1f} us/token")

    for dtype, name in ((torch.float32, "sgemm"), (torch.float16, "hgemm")) if "gemm" in parts else ():
        for n in (256, 1024, 4096, 8192):
            a = torch.randn(n, n, device="cuda", dtype=dtype)
            b = torch.randn(n, n, device="cuda", dtype=dtype)
            s = timed(lambda: torch.mm(a, b), max(5, min(200, int(2e11 / n ** 3))))
            print(f"{name}_{n} {2 * n ** 3 / s / 1e12:.2f} TFLOP/s")
    if "fft" in parts:
        x = torch.randn(256, 4096, device="cuda", dtype=torch.complex64)
        s = timed(lambda: torch.fft.fft(x), 200)
        print(f"fft_c2c_4096x256 {s * 1e6:.1f} us")


if __name__ == "__main__":
    main()
