#!/usr/bin/python3
"""Writes the committed test fixtures of org.diffusion4j.io from PyTorch and NumPy values.

Run with Debian's python3 (python3-torch, python3-numpy):   /usr/bin/python3 tools/make_safetensors_fixture.py

Debian (bookworm) has no python3-safetensors, so the files are serialised here by a few lines that follow the
format of github.com/huggingface/safetensors (8-byte little-endian header length, UTF-8 JSON header with
dtype/shape/data_offsets, then the byte buffer), with the reference writer's choices: tensors sorted by
descending dtype, then by name, and the header padded with spaces to a multiple of 8. All tensor values and
their BF16/F16 roundings are PyTorch's own (torch.Tensor.to), which is what the Java test cross-checks.

Outputs (java/src/test/resources/io/):
  torch_fixture.safetensors            aligned, as the reference writer lays it out
  torch_fixture_unaligned.safetensors  the same tensors with a header of odd length: data not aligned
  numpy_f4_v1.npy, numpy_f8_v2.npy, numpy_u1.npy, numpy_f4_fortran.npy, numpy_f4_bigendian.npy
                                       written by numpy.save / numpy.lib.format.write_array
"""
import json
import os
import struct

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "java", "src", "test", "resources", "io")

# The reference implementation's dtype order (safetensors/src/tensor.rs, enum Dtype); the writer sorts descending.
ORDER = ["BOOL", "F4", "F6_E2M3", "F6_E3M2", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0", "I16", "U16", "F16",
         "BF16", "I32", "U32", "F32", "C64", "F64", "I64", "U64"]
NAMES = {torch.float32: "F32", torch.float64: "F64", torch.float16: "F16", torch.bfloat16: "BF16",
         torch.int32: "I32", torch.int64: "I64", torch.uint8: "U8", torch.int16: "I16", torch.int8: "I8",
         torch.bool: "BOOL"}


def raw_bytes(t):
    t = t.contiguous()
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16: reinterpret the bits
        t = t.view(torch.int16)
    return t.numpy().tobytes()  # little-endian on the hosts this runs on


def save(path, tensors, metadata, aligned=True):
    items = sorted(tensors.items(), key=lambda kv: (-ORDER.index(NAMES[kv[1].dtype]), kv[0])) if aligned \
        else sorted(tensors.items())
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, t in items:
        b = raw_bytes(t)
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    if aligned:
        text += b" " * ((8 - len(text) % 8) % 8)
    elif (8 + len(text)) % 2 == 0:
        text += b" "  # odd data start: no 2- or 4-byte type can be aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def main():
    torch.manual_seed(20251130)
    x = torch.randn(3, 7) * 3
    special = torch.tensor([0.0, -0.0, float("inf"), float("-inf"), 1e-40, -3e-39, 65504.0, 65520.0, 1e5,
                            1.00390625, 1.01171875, 3.0e38, 5.96e-8, 2.98e-8, 1 / 3], dtype=torch.float32)
    labels = torch.randint(-1000, 1000, (6,), dtype=torch.int64)
    tensors = {
        "x.f32": x,
        "x.f64": x.double(),
        "x.bf16": x.to(torch.bfloat16),
        "x.f16": x.to(torch.float16),
        "special.f32": special,
        "special.bf16": special.to(torch.bfloat16),
        "special.f16": special.to(torch.float16),
        "labels.i64": labels,
        "index.i32": torch.arange(-3, 9, dtype=torch.int32).reshape(3, 4),
        "pixels.u8": torch.tensor([[0, 1, 127], [128, 254, 255]], dtype=torch.uint8),
        "scalar.f32": torch.tensor(2.5),
        "empty.f32": torch.zeros(0, 4),
    }
    metadata = {"writer": "tools/make_safetensors_fixture.py", "torch": torch.__version__,
                "labels": ",".join(str(int(v)) for v in labels)}
    os.makedirs(OUT, exist_ok=True)
    save(os.path.join(OUT, "torch_fixture.safetensors"), tensors, metadata, aligned=True)
    save(os.path.join(OUT, "torch_fixture_unaligned.safetensors"), tensors, metadata, aligned=False)

    rng = np.random.default_rng(20251130)
    a = rng.standard_normal((5, 3)).astype("<f4")
    np.save(os.path.join(OUT, "numpy_f4_v1.npy"), a)
    with open(os.path.join(OUT, "numpy_f8_v2.npy"), "wb") as f:
        np.lib.format.write_array(f, rng.standard_normal((4, 2)).astype("<f8"), version=(2, 0))
    np.save(os.path.join(OUT, "numpy_u1.npy"), np.arange(12, dtype="|u1").reshape(3, 4) * 21)
    np.save(os.path.join(OUT, "numpy_f4_fortran.npy"), np.asfortranarray(a))
    np.save(os.path.join(OUT, "numpy_f4_bigendian.npy"), a.astype(">f4"))
    # the values, as text, for the Java test to compare against
    with open(os.path.join(OUT, "numpy_values.txt"), "w") as f:
        for name in ["numpy_f4_v1.npy", "numpy_f8_v2.npy", "numpy_u1.npy"]:
            arr = np.load(os.path.join(OUT, name))
            f.write(name + " " + " ".join(str(d) for d in arr.shape) + " : "
                    + " ".join(repr(float(v)) for v in arr.ravel()) + "\n")


if __name__ == "__main__":
    main()
