#!/usr/bin/python3
"""Writes the PyTorch cross-check fixtures of org.diffusion4j.nn (issue 5): inputs, weights, a random upstream
gradient, and PyTorch's outputs and gradients for the layers, one safetensors file per case.

Rerun with Debian's python3 (python3-torch; generated with torch 1.13.0a0, CPU), from anywhere:

    /usr/bin/python3 tools/make_torch_nn_fixtures.py

and commit the files it rewrites under java/src/test/resources/torch/. The output is deterministic for a given
torch version (fixed seed per case, CPU only); the Java tests (TorchCrossCheckTest,
TorchAttentionCrossCheckTest) read the files and need no Python.

Precision. Every input, weight and upstream gradient is drawn in float32 (torch.randn), then the whole forward and
backward runs in float64 on those exact float32 values (autograd, torch.autograd.grad), and every result is rounded
once to float32 for storage. All tensors in the files are F32, so each stored result is the exact answer for the
stored inputs to within half a float32 ulp; a float32 implementation fed the same inputs is compared with it.

Format. Debian (bookworm) has no python3-safetensors; save() below serialises the format of
github.com/huggingface/safetensors itself, as tools/make_safetensors_fixture.py does (8-byte little-endian header
length, UTF-8 JSON header with dtype/shape/data_offsets and __metadata__, header padded with spaces to a multiple
of 8, then the data; tensors sorted by name, all F32).

Names follow PyTorch state dicts: module parameters under their state-dict names (qkv.weight, fc1.bias,
norm.weight, ...), their gradients under the same name plus ".grad"; free tensors are x, q, k, v, shift, scale,
dout (the upstream gradient of `out`), out, and d<input> for input gradients (dx, dq, dshift, ...).

Cases (all small: the directory stays under 1 MB):
  attention_d32_t11.safetensors, attention_d64_t7.safetensors
        softmax(q·kᵀ/√Dh)·v written out in torch (1.13 has no F.scaled_dot_product_attention), q, k, v
        [B=2, H=3, T, Dh]; also lse = logsumexp(q·kᵀ/√Dh) [B, H, T]. Inputs: q, k, v, dout.
        Results: out, lse, dq, dk, dv.
  mhsa_d48_h3_t5.safetensors
        timm's Attention as the reference DiT uses it (qkv_bias=True): qkv = Linear(48, 144), reshape
        (B, N, 3, H, D/H).permute(2, 0, 3, 1, 4), attention, transpose(1, 2).reshape(B, N, D), proj = Linear(48, 48);
        x [2, 5, 48]. Results: out, dx, qkv.weight.grad, qkv.bias.grad, proj.weight.grad, proj.bias.grad.
  linear_gelu.safetensors
        fc1 = nn.Linear(24, 40) then nn.GELU(approximate='tanh') (timm Mlp's first half in DiT); x [2, 5, 24].
        Results: pre (fc1's output), out, dpre (gradient at pre), dx, fc1.weight.grad, fc1.bias.grad.
  layernorm_modulate_affine.safetensors, layernorm_modulate_plain.safetensors
        norm = nn.LayerNorm(48, eps=1e-6, elementwise_affine=True / False), then DiT's modulate
        y = norm(x)·(1 + scale.unsqueeze(1)) + shift.unsqueeze(1); x [2, 7, 48], shift, scale [2, 48]; the affine
        weight and bias are random (not 1 and 0). Results: out, dx, dshift, dscale (+ norm.weight.grad,
        norm.bias.grad when affine).
  silu.safetensors
        nn.SiLU on x [3, 37] (values spread over [-12, 12]). Results: out, dx.
  dit_block_d32_h2_t6.safetensors
        One DiT block (tools/torch_dit.py DiTBlock: adaLN-Zero, Peebles & Xie 2023 Fig. 3, names of
        facebookresearch/DiT models.py) with width 32, 2 heads, mlp_ratio 4; x [2, 6, 32], c [2, 32]; every weight
        random (not the zero adaLN init, which would make the block the identity). Results: out, dx, dc, and
        <param>.grad for every parameter.
  dit_small.safetensors
        A whole DiT (tools/torch_dit.py DiT): image 8, channels 2, patch 2, hidden 32, depth 2, heads 2, 3 classes,
        mlp_ratio 4, frequency dim 256, time scale 1000; every parameter random; x [3, 2, 8, 8], t [3] model times
        in [0, 1], y [3] labels (F32 holding integers; 3 = the null class). The state dict (pos_embed included) is
        stored under its names; metadata "config" (JSON of DiT.Config) and "state_dict" (JSON list of
        [name, shape] in torch's state_dict order). Results: out, and <param>.grad for every parameter for the
        upstream gradient dout.
  pos_embed_d128_g7.safetensors
        get_2d_sincos_pos_embed(128, 7) of the reference (numpy, float64, rounded to float32): pos_embed [49, 128]
        (the patch-4 Fashion-MNIST DiT's grid).
"""
import json
import math
import os
import struct
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_dit  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "java", "src", "test", "resources", "torch")


def save(path, tensors, metadata):
    """Writes F32 tensors in the safetensors layout (see the module comment)."""
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().to(torch.float32).contiguous()
        b = t.numpy().tobytes()  # little-endian on the hosts this runs on
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def f32_randn(*shape, std=1.0):
    """float32 normal draws, returned as float64 leaf tensors holding exactly those float32 values."""
    return (torch.randn(*shape, dtype=torch.float32) * std).to(torch.float64).requires_grad_(True)


def grads(out, dout, inputs):
    return torch.autograd.grad(out, inputs, grad_outputs=dout)


def metadata(case, **extra):
    m = {"writer": "tools/make_torch_nn_fixtures.py", "torch": torch.__version__, "case": case,
         "precision": "computed in float64 from float32 inputs, stored as float32"}
    m.update({k: str(v) for k, v in extra.items()})
    return m


def attention(q, k, v):
    """softmax(q·kᵀ/√Dh)·v over the last two dims (Vaswani et al. 2017, eq. 1), and the row log-sum-exp."""
    s = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    return torch.softmax(s, dim=-1) @ v, torch.logsumexp(s, dim=-1)


def attention_case(seed, b, h, t, dh):
    torch.manual_seed(seed)
    q, k, v = f32_randn(b, h, t, dh, std=1.5), f32_randn(b, h, t, dh, std=1.5), f32_randn(b, h, t, dh)
    dout = f32_randn(b, h, t, dh).detach()
    out, lse = attention(q, k, v)
    dq, dk, dv = grads(out, dout, (q, k, v))
    name = "attention_d%d_t%d" % (dh, t)
    save(os.path.join(OUT, name + ".safetensors"),
         {"q": q, "k": k, "v": v, "dout": dout, "out": out, "lse": lse, "dq": dq, "dk": dk, "dv": dv},
         metadata(name, scale="1/sqrt(Dh)"))


class TimmAttention(torch.nn.Module):
    """timm.models.vision_transformer.Attention (qkv_bias=True, no q/k norm, no dropout), as DiT uses it."""

    def __init__(self, dim, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.qkv = torch.nn.Linear(dim, dim * 3, bias=True)
        self.proj = torch.nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        attn = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(b, n, c)
        return self.proj(x)


def randomize(module, std):
    """Replaces every parameter by float32 normal draws (as float64), so no value depends on torch's init."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, dtype=torch.float32) * std)


def mhsa_case(seed, b, t, d, h):
    torch.manual_seed(seed)
    m = TimmAttention(d, h).to(torch.float64)
    randomize(m, 0.25)
    x = f32_randn(b, t, d)
    dout = f32_randn(b, t, d).detach()
    out = m(x)
    params = dict(m.named_parameters())
    g = grads(out, dout, [x] + list(params.values()))
    tensors = {"x": x, "dout": dout, "out": out, "dx": g[0]}
    for (n, p), gp in zip(params.items(), g[1:]):
        tensors[n] = p
        tensors[n + ".grad"] = gp
    name = "mhsa_d%d_h%d_t%d" % (d, h, t)
    save(os.path.join(OUT, name + ".safetensors"), tensors, metadata(name, dim=d, heads=h, qkv_bias=True))


def linear_gelu_case(seed):
    torch.manual_seed(seed)
    fc1 = torch.nn.Linear(24, 40).to(torch.float64)
    randomize(fc1, 0.4)
    x = f32_randn(2, 5, 24, std=1.5)
    dout = f32_randn(2, 5, 40).detach()
    pre = fc1(x)
    out = torch.nn.GELU(approximate="tanh")(pre)
    dx, dw, db, dpre = grads(out, dout, (x, fc1.weight, fc1.bias, pre))
    save(os.path.join(OUT, "linear_gelu.safetensors"),
         {"x": x, "fc1.weight": fc1.weight, "fc1.bias": fc1.bias, "dout": dout, "pre": pre, "out": out,
          "dpre": dpre, "dx": dx, "fc1.weight.grad": dw, "fc1.bias.grad": db},
         metadata("linear_gelu", activation="GELU(approximate='tanh')"))


def modulate(x, shift, scale):
    """DiT's modulate (models.py of facebookresearch/DiT)."""
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


def layernorm_case(seed, affine):
    torch.manual_seed(seed)
    b, t, d = 2, 7, 48
    norm = torch.nn.LayerNorm(d, eps=1e-6, elementwise_affine=affine).to(torch.float64)
    if affine:
        with torch.no_grad():
            norm.weight.copy_(1 + 0.5 * torch.randn(d, dtype=torch.float32))
            norm.bias.copy_(0.5 * torch.randn(d, dtype=torch.float32))
    # rows with a non-zero mean and different spreads, as activations have
    x = (torch.randn(b, t, d, dtype=torch.float32) * (0.5 + torch.rand(b, t, 1, dtype=torch.float32) * 3)
         + torch.randn(b, t, 1, dtype=torch.float32) * 2).to(torch.float64).requires_grad_(True)
    shift, scale = f32_randn(b, d, std=0.5), f32_randn(b, d, std=0.5)
    dout = f32_randn(b, t, d).detach()
    out = modulate(norm(x), shift, scale)
    inputs = [x, shift, scale] + ([norm.weight, norm.bias] if affine else [])
    g = grads(out, dout, inputs)
    tensors = {"x": x, "shift": shift, "scale": scale, "dout": dout, "out": out, "dx": g[0], "dshift": g[1],
               "dscale": g[2]}
    if affine:
        tensors.update({"norm.weight": norm.weight, "norm.bias": norm.bias, "norm.weight.grad": g[3],
                        "norm.bias.grad": g[4]})
    name = "layernorm_modulate_" + ("affine" if affine else "plain")
    save(os.path.join(OUT, name + ".safetensors"), tensors,
         metadata(name, eps="1e-6", elementwise_affine=affine))


def silu_case(seed):
    torch.manual_seed(seed)
    x = ((torch.rand(3, 37, dtype=torch.float32) * 24 - 12)).to(torch.float64).requires_grad_(True)
    dout = f32_randn(3, 37).detach()
    out = torch.nn.SiLU()(x)
    (dx,) = grads(out, dout, (x,))
    save(os.path.join(OUT, "silu.safetensors"), {"x": x, "dout": dout, "out": out, "dx": dx}, metadata("silu"))


def randomize_fanin(module, bias_std=0.2):
    """Weights N(0, 1/fan_in) (biases N(0, bias_std²), embedding rows N(0, 1)), drawn in float32: activations stay of
    order 1, and every adaLN gate, shift and scale is far from 0."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("bias"):
                std = bias_std
            elif "embedding_table" in name:
                std = 1.0
            else:
                std = 1.0 / math.sqrt(p[0].numel())
            p.copy_(torch.randn(p.shape, dtype=torch.float32) * std)


def dit_block_case(seed, b, t, d, h):
    torch.manual_seed(seed)
    m = torch_dit.DiTBlock(d, h, 4.0).to(torch.float64)
    randomize_fanin(m)
    x = f32_randn(b, t, d)
    c = f32_randn(b, d)
    dout = f32_randn(b, t, d).detach()
    out = m(x, c)
    params = dict(m.named_parameters())
    g = grads(out, dout, [x, c] + list(params.values()))
    tensors = {"x": x, "c": c, "dout": dout, "out": out, "dx": g[0], "dc": g[1]}
    for (n, p), gp in zip(params.items(), g[2:]):
        tensors[n] = p
        tensors[n + ".grad"] = gp
    name = "dit_block_d%d_h%d_t%d" % (d, h, t)
    save(os.path.join(OUT, name + ".safetensors"), tensors,
         metadata(name, dim=d, heads=h, mlp_ratio=4.0,
                  state_dict=json.dumps([[k, list(v.shape)] for k, v in m.state_dict().items()])))


def dit_small_case(seed):
    torch.manual_seed(seed)
    cfg = {"imageSize": 8, "channels": 2, "patch": 2, "hidden": 32, "depth": 2, "heads": 2, "mlpRatio": 4.0,
           "numClasses": 3, "classDropProb": 0.1, "frequencyDim": 256, "timeScale": 1000.0}
    m = torch_dit.DiT(cfg).to(torch.float64)
    randomize_fanin(m)
    x = f32_randn(3, 2, 8, 8).detach()
    t = torch.tensor([0.0, 0.37, 0.93], dtype=torch.float32).to(torch.float64)
    y = torch.tensor([2, 0, 3])
    dout = f32_randn(3, 2, 8, 8).detach()
    out = m(x, t, y)
    params = dict(m.named_parameters())
    g = grads(out, dout, list(params.values()))
    tensors = dict(m.state_dict())
    tensors.update({"x": x, "t": t, "y": y.to(torch.float64), "dout": dout, "out": out})
    for n, gp in zip(params, g):
        tensors[n + ".grad"] = gp
    save(os.path.join(OUT, "dit_small.safetensors"), tensors,
         metadata("dit_small", config=json.dumps(cfg),
                  state_dict=json.dumps([[k, list(v.shape)] for k, v in m.state_dict().items()])))


def pos_embed_case(dim, grid):
    name = "pos_embed_d%d_g%d" % (dim, grid)
    save(os.path.join(OUT, name + ".safetensors"),
         {"pos_embed": torch.from_numpy(torch_dit.sincos_2d(dim, grid))},
         metadata(name, dim=dim, grid=grid, source="get_2d_sincos_pos_embed of facebookresearch/DiT models.py"))


def main():
    os.makedirs(OUT, exist_ok=True)
    attention_case(5001, 2, 3, 11, 32)
    attention_case(5002, 2, 3, 7, 64)
    mhsa_case(5003, 2, 5, 48, 3)
    linear_gelu_case(5004)
    layernorm_case(5005, affine=True)
    layernorm_case(5006, affine=False)
    silu_case(5007)
    dit_block_case(5008, 2, 6, 32, 2)
    dit_small_case(5009)
    pos_embed_case(128, 7)


if __name__ == "__main__":
    main()
