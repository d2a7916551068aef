#!/usr/bin/python3
"""A PyTorch DiT with the structure, parameter names and math of the reference implementation
(facebookresearch/DiT, models.py; Peebles & Xie 2023, "Scalable Diffusion Models with Transformers"), written for
diffusion4j's cross-checks (tools/make_torch_nn_fixtures.py, tools/torch_check_checkpoint.py), plus a minimal
safetensors reader/writer (Debian's python3-torch 1.13 has no safetensors package).

Same state-dict names and layouts as the reference: x_embedder.proj.{weight [D, C, p, p], bias}, pos_embed [1, T, D],
t_embedder.mlp.{0,2}.*, y_embedder.embedding_table.weight [K+1, D], blocks.N.{attn.qkv, attn.proj, mlp.fc1, mlp.fc2,
adaLN_modulation.1}.*, final_layer.{linear, adaLN_modulation.1}.*. Differences, all matching diffusion4j's
org.diffusion4j.nn.DiT (see its Javadoc): no learn_sigma (out channels = in channels); the model takes t in [0, 1]
and embeds time_scale * t; a conditional model always has the null-class row; an unconditional one (num_classes = 0)
has no y_embedder; labels are used as given (no dropout inside the model); pos_embed is a buffer. The code runs in
whatever dtype the module is converted to (the fixtures use float64).
"""
import json
import math
import struct

import numpy as np
import torch
from torch import nn


# ---------------------------------------------------------------------------------------------- position embedding

def sincos_1d(dim, pos):
    """MAE/DiT 1-D sin-cos embedding of positions `pos` (any shape): [N, dim], sin half then cos half, float64."""
    assert dim % 2 == 0
    omega = np.arange(dim // 2, dtype=np.float64) / (dim / 2.0)
    omega = 1.0 / 10000 ** omega
    out = np.einsum("m,d->md", pos.reshape(-1).astype(np.float64), omega)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)


def sincos_2d(dim, grid_size):
    """get_2d_sincos_pos_embed of the reference: the grid comes from np.meshgrid(grid_w, grid_h) (w first), so the
    first half of the dims embeds grid[0], the column coordinate, and the second half grid[1], the row. [T, dim]."""
    assert dim % 2 == 0
    grid_h = np.arange(grid_size, dtype=np.float32)
    grid_w = np.arange(grid_size, dtype=np.float32)
    grid = np.stack(np.meshgrid(grid_w, grid_h), axis=0).reshape(2, 1, grid_size, grid_size)
    return np.concatenate([sincos_1d(dim // 2, grid[0]), sincos_1d(dim // 2, grid[1])], axis=1)


# ---------------------------------------------------------------------------------------------- modules

def modulate(x, shift, scale):
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class PatchEmbed(nn.Module):
    """timm PatchEmbed as DiT uses it: Conv2d(C, D, p, stride=p), flatten, transpose -> [B, T, D]."""

    def __init__(self, channels, patch, dim):
        super().__init__()
        self.proj = nn.Conv2d(channels, dim, kernel_size=patch, stride=patch, bias=True)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class TimestepEmbedder(nn.Module):
    def __init__(self, dim, frequency_dim=256):
        super().__init__()
        self.frequency_dim = frequency_dim
        self.mlp = nn.Sequential(nn.Linear(frequency_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    @staticmethod
    def features(t, dim, max_period=10000):
        half = dim // 2
        freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=t.dtype) / half)
        args = t[:, None] * freqs[None]
        emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
        if dim % 2:
            emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
        return emb

    def forward(self, t):
        return self.mlp(self.features(t, self.frequency_dim).to(self.mlp[0].weight.dtype))


class LabelEmbedder(nn.Module):
    def __init__(self, num_classes, dim):
        super().__init__()
        self.embedding_table = nn.Embedding(num_classes + 1, dim)   # last row: the null class

    def forward(self, labels):
        return self.embedding_table(labels)


class Attention(nn.Module):
    """timm Attention (qkv_bias=True, no q/k norm, no dropout)."""

    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        att = ((q * (d // self.heads) ** -0.5) @ k.transpose(-2, -1)).softmax(dim=-1)
        return self.proj((att @ v).transpose(1, 2).reshape(b, n, d))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU(approximate="tanh")
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class DiTBlock(nn.Module):
    def __init__(self, dim, heads, mlp_ratio=4.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))

    def forward(self, x, c):
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.adaLN_modulation(c).chunk(6, dim=1)
        x = x + gate_msa.unsqueeze(1) * self.attn(modulate(self.norm1(x), shift_msa, scale_msa))
        return x + gate_mlp.unsqueeze(1) * self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))


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
    """cfg: the keys of diffusion4j's DiT.Config (imageSize, channels, patch, hidden, depth, heads, mlpRatio,
    numClasses, frequencyDim, timeScale; classDropProb is not used by the forward)."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = dict(cfg)
        d, p, c = cfg["hidden"], cfg["patch"], cfg["channels"]
        grid = cfg["imageSize"] // p
        self.x_embedder = PatchEmbed(c, p, d)
        self.t_embedder = TimestepEmbedder(d, cfg["frequencyDim"])
        if cfg["numClasses"] > 0:
            self.y_embedder = LabelEmbedder(cfg["numClasses"], d)
        self.register_buffer("pos_embed", torch.from_numpy(sincos_2d(d, grid)).float().unsqueeze(0))
        self.blocks = nn.ModuleList([DiTBlock(d, cfg["heads"], cfg["mlpRatio"]) for _ in range(cfg["depth"])])
        self.final_layer = FinalLayer(d, p, c)

    def unpatchify(self, x):
        c, p = self.cfg["channels"], self.cfg["patch"]
        h = w = self.cfg["imageSize"] // p
        x = x.reshape(x.shape[0], h, w, p, p, c)
        x = torch.einsum("nhwpqc->nchpwq", x)
        return x.reshape(x.shape[0], c, h * p, w * p)

    def forward(self, x, t, y=None):
        """x [B, C, H, W], t [B] model times in [0, 1], y [B] int64 labels (numClasses = null) or None."""
        h = self.x_embedder(x) + self.pos_embed
        c = self.t_embedder(self.cfg["timeScale"] * t)
        if self.cfg["numClasses"] > 0:
            c = c + self.y_embedder(y)
        for block in self.blocks:
            h = block(h, c)
        return self.unpatchify(self.final_layer(h, c))


# ---------------------------------------------------------------------------------------------- safetensors

_DTYPES = {"F32": (np.float32, 4), "F64": (np.float64, 8), "I32": (np.int32, 4), "I64": (np.int64, 8),
           "F16": (np.float16, 2), "BF16": (None, 2)}


def read_safetensors(path):
    """Returns ({name: torch tensor}, metadata dict). Checks that every tensor lies inside the file."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError("%s: too short for a safetensors file" % path)
    (n,) = struct.unpack("<Q", data[:8])
    if 8 + n > len(data):
        raise ValueError("%s: header length %d runs past the end of the file (%d bytes)" % (path, n, len(data)))
    header = json.loads(data[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {}) or {}
    body = data[8 + n:]
    out = {}
    for name, info in header.items():
        dt, shape, (a, b) = info["dtype"], info["shape"], info["data_offsets"]
        if dt not in _DTYPES:
            raise ValueError("%s: tensor %s has unsupported dtype %s" % (path, name, dt))
        if not 0 <= a <= b <= len(body) or b - a != _DTYPES[dt][1] * int(np.prod(shape, dtype=np.int64)):
            raise ValueError("%s: tensor %s has bad offsets %s for %s %s" % (path, name, [a, b], dt, shape))
        raw = body[a:b]
        if dt == "BF16":
            u = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            arr = u.view(np.float32)
        else:
            arr = np.frombuffer(raw, dtype=np.dtype(_DTYPES[dt][0]).newbyteorder("<"))
        out[name] = torch.from_numpy(np.array(arr).reshape(shape))
    return out, meta


def write_safetensors(path, tensors, metadata):
    """F32 tensors (any float input is rounded once to float32), sorted by name, header padded to 8 bytes."""
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().to(torch.float32).contiguous()
        b = t.numpy().astype("<f4").tobytes()
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
