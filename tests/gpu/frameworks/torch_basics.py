# SPDX-License-Identifier: Apache-2.0
#
# PyTorch through vgpu, compared with the same script run natively
# (tests/gpu/frameworks/run.sh): elementwise, reductions, fp32/bf16/fp16
# matmul (cuBLAS/cuBLASLt), conv2d (cuDNN), autocast, random numbers
# (cuRAND-style Philox), and a small CNN trained on synthetic data whose
# losses are printed. Everything printed is exact bytes of results (hashes)
# or values rounded where the same GPU gives the same bits anyway.
import hashlib
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F


def h(t):
    return hashlib.sha256(t.detach().float().cpu().numpy().tobytes()).hexdigest()[:16]


def main():
    torch.manual_seed(0)
    dev = "cuda"
    print("device", torch.cuda.get_device_name(0), "count", torch.cuda.device_count())
    x = torch.arange(1 << 20, device=dev, dtype=torch.float32)
    print("elementwise", h(torch.sin(x) * 2 + 1))
    print("sum", x.sum().item(), "max", x.max().item(), "mean", round(x.mean().item(), 3))
    g = torch.Generator(device=dev).manual_seed(1)
    a = torch.randn(512, 512, device=dev, generator=g)
    b = torch.randn(512, 512, device=dev, generator=g)
    print("randn", h(a))
    print("matmul fp32", h(a @ b))
    print("matmul bf16", h(a.bfloat16() @ b.bfloat16()))
    print("matmul fp16", h(a.half() @ b.half()))
    with torch.autocast("cuda", dtype=torch.bfloat16):
        print("autocast", h(a @ b))
    img = torch.randn(8, 3, 32, 32, device=dev, generator=g)
    w = torch.randn(16, 3, 3, 3, device=dev, generator=g)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    print("conv2d", h(F.conv2d(img, w, padding=1)))

    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(), nn.Linear(32, 10)).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    data = torch.randn(64, 3, 32, 32, device=dev, generator=g)
    labels = torch.randint(0, 10, (64,), device=dev, generator=g)
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    for step in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(data), labels)
        loss.backward()
        opt.step()
        if step % 50 == 0 or step == steps - 1:
            print("cnn step", step, "loss", f"{loss.item():.6f}")
    print("cnn weights", h(model[0].weight))
    torch.cuda.synchronize()
    print("memory allocated", torch.cuda.memory_allocated() > 0)


if __name__ == "__main__":
    main()
