#!/usr/bin/python3
"""PyTorch side of the diffusion4j peer comparison (benchmarks/compare/run.sh runs it; users may too).

Does the same work with the same shapes as org.diffusion4j.bench.compare.Ours and prints one JSON line per case:
    {"case": ..., "impl": ..., "ms": [time of each timed call in ms], "note": ...}
followed by a line {"setup": ...} with the versions and thread settings.

Cases (shapes are fixed so that both sides agree; see benchmarks/README.md, "Peer comparison"):
  noise      forward noising of x0 [8, 524288] F32 (4 Mi floats, 16 MiB per operand) at per-sample flow times t:
             eager = randn_like, lerp, subtract (x_t = lerp(x0, eps, t), target = eps - x0)
  step       one mid-run DPM-Solver++(2M) step (Lu et al. 2022b, Alg. 2) of a v-prediction model with classifier-free
             guidance w = 7.5 on [8, 524288]: eager (new tensors per op, as written in k-diffusion style code) and
             inplace (preallocated buffers, out= / in-place ops)
  attn-fwd   attention forward q, k, v [2, 4, T, 64], T = 256 and 1024: matmul-softmax-matmul (torch 1.13 on the
             CPU has no fused scaled_dot_product_attention; with torch >= 2.0 it is used instead and the note says so)
  attn-fwdbwd the same, forward + backward through autograd
  train-ditA / train-ditB  one training step of a reference-style DiT (Peebles & Xie 2023; the layout of
             facebookresearch/DiT models.py, written here from the paper's description) at batch 128 on 28x28x1:
             A = patch 4 / hidden 128 / depth 4 / 4 heads, B = patch 2 / hidden 192 / depth 6 / 6 heads, 10 classes,
             cosine VP forward noising with a v target, MSE, backward, AdamW(lr 1e-4, betas (0.9, 0.999), eps 1e-8,
             weight decay 0.01 on every parameter)

Threads: the driver sets OMP_NUM_THREADS = MKL_NUM_THREADS = the thread count before Python starts, and this
script calls torch.set_num_threads(n) and torch.set_num_interop_threads(1), so PyTorch's OpenMP pool and its BLAS
do not oversubscribe the cores.
"""
import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 8
N = 524288
ATTN = (2, 4, 64)


WARMUP_SECONDS = 2.0   # the same minimum warm-up as the Java side (which needs it for the JIT)


def timed(fn, warmup, calls):
    w0 = time.perf_counter()
    i = 0
    while i < warmup or time.perf_counter() - w0 < WARMUP_SECONDS:
        fn()
        i += 1
    out = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def emit(case, impl, ms, note=""):
    print(json.dumps({"case": case, "impl": impl, "ms": ms, "note": note}), flush=True)


# ---------------------------------------------------------------------------------------------- noising

def bench_noise(warmup, calls):
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(BATCH, N, generator=g)
    t = ((torch.arange(BATCH, dtype=torch.float32) + 0.5) / BATCH).view(BATCH, 1)

    def eager():
        eps = torch.randn_like(x0)
        xt = torch.lerp(x0, eps, t)
        target = eps - x0
        return xt, target

    emit("noise", "torch-eager", timed(eager, warmup, calls))


# ---------------------------------------------------------------------------------------------- sampler step

def dpm_coefficients():
    """The same step as DiffusionOpsBench.dpmSolverPp2mStep(): VP levels (0.8, 0.6) -> (0.85, sqrt(1-0.85^2)),
    r = 1, v-prediction converted to x0: D = alpha_t * x - sigma_t * v."""
    alpha_t, sigma_t = 0.8, 0.6
    alpha_s = 0.85
    sigma_s = math.sqrt(1 - alpha_s * alpha_s)
    h = math.log(alpha_s / sigma_s) - math.log(alpha_t / sigma_t)
    phi = -math.expm1(-h)
    k = 0.5
    decay = sigma_s / sigma_t
    pred = alpha_s * phi * (1 + k)
    hist = -alpha_s * phi * k
    return decay, pred, hist, alpha_t, -sigma_t


def bench_step(warmup, calls):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(BATCH, N, generator=g)
    cond = torch.randn(BATCH, N, generator=g)
    uncond = torch.randn(BATCH, N, generator=g)
    hist = [torch.randn(BATCH, N, generator=g)]
    decay, pred, histc, ca, cb = dpm_coefficients()
    w = 7.5
    state = [x]

    def eager():
        x = state[0]
        v = uncond + w * (cond - uncond)
        d = ca * x + cb * v
        state[0] = decay * x + pred * d + histc * hist[0]
        hist[0] = d

    emit("step", "torch-eager", timed(eager, warmup, calls))

    xb = x.clone()
    hb = hist[0].clone()
    vb = torch.empty_like(x)
    db = torch.empty_like(x)

    def inplace():
        torch.lerp(uncond, cond, w, out=vb)          # uncond + w (cond - uncond)
        torch.mul(xb, ca, out=db)
        db.add_(vb, alpha=cb)                        # D = a x + b v
        xb.mul_(decay).add_(db, alpha=pred).add_(hb, alpha=histc)
        hb.copy_(db)

    emit("step", "torch-inplace", timed(inplace, warmup, calls))


# ---------------------------------------------------------------------------------------------- attention

def attention(q, k, v, scale):
    if hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v)
    p = torch.softmax(torch.matmul(q, k.transpose(-1, -2)) * scale, dim=-1)
    return torch.matmul(p, v)


def bench_attention(seqs, warmup, calls):
    b, h, dh = ATTN
    note = ("torch.nn.functional.scaled_dot_product_attention" if hasattr(F, "scaled_dot_product_attention")
            else "matmul-softmax-matmul (no fused SDPA in this PyTorch)")
    for t in seqs:
        g = torch.Generator().manual_seed(2)
        q = torch.randn(b, h, t, dh, generator=g)
        k = torch.randn(b, h, t, dh, generator=g)
        v = torch.randn(b, h, t, dh, generator=g)
        d_out = torch.randn(b, h, t, dh, generator=g)
        scale = dh ** -0.5
        with torch.no_grad():
            emit("attn-fwd-T%d" % t, "torch", timed(lambda: attention(q, k, v, scale), warmup, calls), note)
        qg, kg, vg = (z.clone().requires_grad_(True) for z in (q, k, v))

        def fwdbwd():
            o = attention(qg, kg, vg, scale)
            o.backward(d_out)
            qg.grad = None
            kg.grad = None
            vg.grad = None

        emit("attn-fwdbwd-T%d" % t, "torch", timed(fwdbwd, warmup, calls), note)


# ---------------------------------------------------------------------------------------------- DiT

def sincos_2d(dim, grid):
    """Fixed 2-D sin-cos position embedding [grid*grid, dim] (MAE / DiT convention: half the width per axis)."""
    def one_d(d, pos):
        omega = 1.0 / 10000 ** (torch.arange(d // 2, dtype=torch.float64) / (d / 2.0))
        out = pos.reshape(-1, 1).double() * omega.reshape(1, -1)
        return torch.cat([torch.sin(out), torch.cos(out)], dim=1)
    ys, xs = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    emb = torch.cat([one_d(dim // 2, xs), one_d(dim // 2, ys)], dim=1)
    return emb.float()


def modulate(x, shift, scale):
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class TimestepEmbedder(nn.Module):
    def __init__(self, hidden, freq=256):
        super().__init__()
        self.freq = freq
        self.mlp = nn.Sequential(nn.Linear(freq, hidden), nn.SiLU(), nn.Linear(hidden, hidden))

    def forward(self, t):
        half = self.freq // 2
        f = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)
        a = t[:, None].float() * f[None]
        return self.mlp(torch.cat([torch.cos(a), torch.sin(a)], dim=-1))


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, t, d = x.shape
        qkv = self.qkv(x).reshape(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        o = attention(qkv[0], qkv[1], qkv[2], (d // self.heads) ** -0.5)
        return self.proj(o.transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    def __init__(self, dim, heads, mlp_ratio=4.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, dim))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))

    def forward(self, x, c):
        sm, cm, gm, s2, c2, g2 = self.adaLN_modulation(c).chunk(6, dim=1)
        x = x + gm.unsqueeze(1) * self.attn(modulate(self.norm1(x), sm, cm))
        return x + g2.unsqueeze(1) * self.mlp(modulate(self.norm2(x), s2, c2))


class FinalLayer(nn.Module):
    def __init__(self, dim, patch, channels):
        super().__init__()
        self.norm_final = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(dim, patch * patch * channels)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))

    def forward(self, x, c):
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)
        return self.linear(modulate(self.norm_final(x), shift, scale))


class DiT(nn.Module):
    def __init__(self, image=28, channels=1, patch=4, hidden=128, depth=4, heads=4, classes=10):
        super().__init__()
        self.patch, self.channels, self.grid = patch, channels, image // patch
        self.x_embedder = nn.Conv2d(channels, hidden, patch, stride=patch)
        self.t_embedder = TimestepEmbedder(hidden)
        self.y_embedder = nn.Embedding(classes + 1, hidden)
        self.register_buffer("pos_embed", sincos_2d(hidden, self.grid).unsqueeze(0))
        self.blocks = nn.ModuleList([Block(hidden, heads) for _ in range(depth)])
        self.final_layer = FinalLayer(hidden, patch, channels)

    def forward(self, x, t, y):
        h = self.x_embedder(x).flatten(2).transpose(1, 2) + self.pos_embed
        c = self.t_embedder(1000 * t) + self.y_embedder(y)
        for blk in self.blocks:
            h = blk(h, c)
        h = self.final_layer(h, c)
        b, p, g, ch = h.shape[0], self.patch, self.grid, self.channels
        h = h.reshape(b, g, g, p, p, ch).permute(0, 5, 1, 3, 2, 4)
        return h.reshape(b, ch, g * p, g * p)


DIT = {"ditA": dict(patch=4, hidden=128, depth=4, heads=4), "ditB": dict(patch=2, hidden=192, depth=6, heads=6)}


def bench_dit(name, warmup, calls):
    torch.manual_seed(7)
    model = DiT(**DIT[name])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    b = 128
    x0 = torch.randn(b, 1, 28, 28)
    y = torch.arange(b) % 10
    step = [0]

    def train_step():
        u = ((torch.arange(b, dtype=torch.float64) + 0.5) / b + step[0] * 0.6180339887498949) % 1.0
        t = 0.001 + 0.998 * u
        s = 0.008   # Nichol & Dhariwal's cosine schedule
        f = torch.cos((t + s) / (1 + s) * math.pi / 2) / math.cos(s / (1 + s) * math.pi / 2)
        alpha = f.float().view(b, 1, 1, 1)
        sigma = torch.sqrt(1 - alpha * alpha)
        eps = torch.randn_like(x0)
        xt = alpha * x0 + sigma * eps
        target = alpha * eps - sigma * x0
        loss = F.mse_loss(model(xt, t.float(), y), target)
        opt.zero_grad(set_to_none=False)
        loss.backward()
        opt.step()
        step[0] += 1

    emit("train-" + name, "torch", timed(train_step, warmup, calls))


def bench_attention_cuda(calls):
    """GPU peer for issue 7's GPU target (attention forward in bf16 >= 0.5 x PyTorch SDPA at head dim 64 and 128,
    T = 1024 ... 4096): PyTorch's scaled_dot_product_attention on CUDA in bf16, [B, H, T, Dh] with B*H*Dh = 2048
    (B = 4; H = 8 at Dh 64, 4 at Dh 128). Prints the median ms and TFLOP/s (4*B*H*T^2*Dh FLOPs, non-causal);
    compare with the attention rows of org.diffusion4j.bench.gpu.GpuBench (benchmarks/gpu/check.sh)."""
    if not torch.cuda.is_available():
        print(json.dumps({"case": "attn-cuda", "impl": "torch-sdpa", "skipped": "no CUDA device"}), flush=True)
        return
    if not hasattr(F, "scaled_dot_product_attention"):
        print(json.dumps({"case": "attn-cuda", "impl": "torch-sdpa", "skipped": "PyTorch %s has no SDPA"
                          % torch.__version__}), flush=True)
        return
    for dh in (64, 128):
        for t in (1024, 2048, 4096):
            b, h = 4, (8 if dh == 64 else 4)
            q, k, v = (torch.randn(b, h, t, dh, device="cuda", dtype=torch.bfloat16) for _ in range(3))

            def call():
                F.scaled_dot_product_attention(q, k, v)

            for _ in range(3):
                call()
            torch.cuda.synchronize()
            ms = []
            for _ in range(calls):
                t0 = time.perf_counter()
                for _ in range(10):
                    call()
                torch.cuda.synchronize()
                ms.append((time.perf_counter() - t0) * 1e3 / 10)
            flops = 4.0 * b * h * t * t * dh
            med = sorted(ms)[len(ms) // 2]
            emit("attn-cuda-bf16-Dh%d-T%d" % (dh, t), "torch-sdpa", ms,
                 "%.1f TFLOP/s, [%d, %d, %d, %d], %s" % (flops / med / 1e9, b, h, t, dh, torch.cuda.get_device_name()))


def blas_info():
    """Which BLAS this PyTorch calls (Debian's build has BLAS_INFO=generic: whatever libblas.so.3 the alternatives
    system points to). The reference netlib BLAS (package libblas3) is unoptimised and single-threaded: a comparison
    against it is not fair; install libopenblas0-openmp (it shares PyTorch's OpenMP runtime, so nested BLAS calls
    inside PyTorch's parallel regions run single-threaded instead of oversubscribing)."""
    libs = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1]
                if "blas" in os.path.basename(path).lower() or "mkl" in os.path.basename(path).lower():
                    libs.add(os.path.realpath(path))
    except OSError:
        return "BLAS unknown"
    if not libs:
        return "BLAS: none loaded"
    desc = []
    for lib in sorted(libs):
        if "openblas" in lib:
            desc.append("OpenBLAS (" + lib + ")")
        elif "mkl" in lib:
            desc.append("MKL (" + lib + ")")
        elif "/blas/libblas.so" in lib:
            desc.append("reference netlib BLAS (" + lib + "): UNOPTIMISED, single-threaded - not a fair peer; "
                        "apt install libopenblas0-openmp")
        else:
            desc.append(lib)
    return "BLAS: " + "; ".join(desc)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=int(os.environ.get("D4J_THREADS", os.cpu_count())))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--cases", default="noise,step,attn,ditA,ditB",
                    help="comma-separated: noise, step, attn, ditA, ditB, and attn-cuda (GPU peer, SDPA bf16)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    q = a.quick
    cases = a.cases.split(",")
    if "noise" in cases:
        bench_noise(2, 5 if q else 15)
    if "step" in cases:
        bench_step(2, 5 if q else 15)
    if "attn" in cases:
        bench_attention([256, 1024], 1 if q else 2, 3 if q else 8)
    if "ditA" in cases:
        bench_dit("ditA", 1 if q else 2, 3 if q else 6)
    if "ditB" in cases:
        bench_dit("ditB", 1, 1 if q else 3)
    if "attn-cuda" in cases:
        bench_attention_cuda(5 if q else 20)
    blas = blas_info()
    if "UNOPTIMISED" in blas:
        print("torch_peer.py: WARNING: PyTorch calls the " + blas, file=sys.stderr)
    print(json.dumps({"setup": "PyTorch %s (Python %s), torch.get_num_threads() = %d, interop threads %d, "
                               "OMP_NUM_THREADS=%s, MKL_NUM_THREADS=%s, OPENBLAS_NUM_THREADS=%s, %s, %s"
                      % (torch.__version__, sys.version.split()[0], torch.get_num_threads(),
                         torch.get_num_interop_threads(), os.environ.get("OMP_NUM_THREADS", "unset"),
                         os.environ.get("MKL_NUM_THREADS", "unset"), os.environ.get("OPENBLAS_NUM_THREADS", "unset"),
                         blas,
                         "ATen parallel backend: " + torch.__config__.parallel_info().split("ATen parallel backend: ")[-1].strip())}),
          flush=True)


if __name__ == "__main__":
    main()
