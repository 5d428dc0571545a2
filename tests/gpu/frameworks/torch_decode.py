# SPDX-License-Identifier: Apache-2.0
#
# A small transformer written in plain PyTorch generating tokens greedily,
# without and with CUDA graphs (the decode step captured once, replayed per
# token), and torch.compile of a small function (Triton kernels loaded with
# cuModuleLoadData). Tokens and hashes are printed for the comparison with
# the native run; with "bench" it times the decode loops instead.
import hashlib
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ff = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))
        self.n1 = nn.LayerNorm(d)
        self.n2 = nn.LayerNorm(d)

    def forward(self, x, kc, vc, pos):
        b, t, d = x.shape
        q, k, v = self.qkv(self.n1(x)).view(b, t, 3, self.heads, d // self.heads).unbind(2)
        kc[:, pos] = k[:, 0]
        vc[:, pos] = v[:, 0]
        keys, vals = kc[:, : pos + 1], vc[:, : pos + 1]
        att = torch.einsum("bhd,bshd->bhs", q[:, 0], keys) / (d // self.heads) ** 0.5
        out = torch.einsum("bhs,bshd->bhd", att.softmax(-1), vals).reshape(b, 1, d)
        x = x + self.proj(out)
        return x + self.ff(self.n2(x))


class Tiny(nn.Module):
    def __init__(self, vocab=512, d=256, heads=4, layers=4, ctx=160):
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(ctx, d)
        self.blocks = nn.ModuleList(Block(d, heads) for _ in range(layers))
        self.head = nn.Linear(d, vocab)
        self.shape = (layers, 1, ctx, heads, d // heads)

    def step(self, tok, pos, kcs, vcs):
        x = self.emb(tok) + self.pos(pos)
        for i, blk in enumerate(self.blocks):
            x = blk(x, kcs[i], vcs[i], pos)
        return self.head(x[:, -1]).argmax(-1)


def generate(model, n, graphs):
    dev = "cuda"
    kcs = torch.zeros(model.shape, device=dev)
    vcs = torch.zeros(model.shape, device=dev)
    tok = torch.tensor([[1]], device=dev)
    out = []
    if not graphs:
        for p in range(n):
            tok = model.step(tok, torch.tensor(p, device=dev), kcs, vcs).view(1, 1)
            out.append(tok)
        return torch.cat(out).view(-1).tolist()
    # the position is a tensor the graph reads; the caches are indexed with it
    pos = torch.zeros((), dtype=torch.long, device=dev)
    static_tok = tok.clone()

    def body():
        x = model.emb(static_tok) + model.pos(pos)
        for i, blk in enumerate(model.blocks):
            b, t, d = x.shape
            q, k, v = blk.qkv(blk.n1(x)).view(b, t, 3, blk.heads, d // blk.heads).unbind(2)
            kcs[i].index_copy_(1, pos.view(1), k)
            vcs[i].index_copy_(1, pos.view(1), v)
            mask = torch.arange(kcs.shape[2], device=dev) <= pos
            att = torch.einsum("bhd,bshd->bhs", q[:, 0], kcs[i]) / (d // blk.heads) ** 0.5
            att = att.masked_fill(~mask, float("-inf"))
            o = torch.einsum("bhs,bshd->bhd", att.softmax(-1), vcs[i]).reshape(b, 1, d)
            x = x + blk.proj(o)
            x = x + blk.ff(blk.n2(x))
        return model.head(x[:, -1]).argmax(-1)

    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(2):
            body()
    torch.cuda.current_stream().wait_stream(s)
    kcs.zero_()
    vcs.zero_()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        result = body()
    for p in range(n):
        pos.fill_(p)
        graph.replay()
        static_tok.copy_(result.view(1, 1))
        out.append(static_tok.clone())
    return torch.cat(out).view(-1).tolist()


def main():
    torch.manual_seed(0)
    model = Tiny().cuda().eval()
    bench = len(sys.argv) > 1 and sys.argv[1] == "bench"
    with torch.no_grad():
        for graphs in (False, True):
            n = 128
            toks = generate(model, n, graphs)
            if bench:
                torch.cuda.synchronize()
                t = time.perf_counter()
                for _ in range(3):
                    generate(model, n, graphs)
                torch.cuda.synchronize()
                print(f"decode {'graphs' if graphs else 'eager'} {(time.perf_counter() - t) / (3 * n) * 1e6:.1f} us/token")
            else:
                print("tokens", "graphs" if graphs else "eager", hashlib.sha256(str(toks).encode()).hexdigest()[:16], toks[:12])
    if not bench:
        f = torch.compile(lambda a, b: torch.relu(a * b + 1).sum(-1))
        a = torch.arange(4096.0, device="cuda").view(64, 64) / 1000
        print("compile", f(a, a.t()).sum().item())


if __name__ == "__main__":
    main()
