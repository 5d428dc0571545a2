# SPDX-License-Identifier: Apache-2.0
#
# Which calls a training step makes through vgpu: warms up, then runs STEPS
# steps of the small MLP and of the small CNN (batch 8, as in
# bench_frameworks.py), and STEPS tokens of the small transformer's eager
# greedy decoding, each between marker lines on stderr.  With VGPU_LOG=debug
# the shim logs every call between them; count_calls.sh counts them per step.
#   python3 step_calls.py STEPS
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests", "gpu", "frameworks"))
from torch_decode import Tiny, generate  # noqa: E402


def run(name, model, shape, steps):
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(8, *shape, device="cuda")
    y = torch.randint(0, 10, (8,), device="cuda")

    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()
    for _ in range(10):
        step()
    torch.cuda.synchronize()
    print(f"=== begin {name}", file=sys.stderr, flush=True)
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    print(f"=== end {name}", file=sys.stderr, flush=True)


def main():
    steps = int(sys.argv[1])
    torch.manual_seed(0)
    torch.backends.cudnn.benchmark = True
    run("mlp", nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512),
                             nn.ReLU(), nn.Linear(512, 10)).cuda(), (1, 28, 28), steps)
    run("cnn", nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Flatten(), nn.Linear(64 * 8 * 8, 128), nn.ReLU(),
                             nn.Linear(128, 10)).cuda(), (3, 32, 32), steps)
    model = Tiny().cuda().eval()
    with torch.no_grad():
        generate(model, 8, False)
        torch.cuda.synchronize()
        print("=== begin decode", file=sys.stderr, flush=True)
        generate(model, steps, False)
        torch.cuda.synchronize()
        print("=== end decode", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
