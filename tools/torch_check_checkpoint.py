#!/usr/bin/python3
"""Runs a DiT checkpoint written by diffusion4j in PyTorch and compares the output with the one Java stored.

    /usr/bin/python3 tools/torch_check_checkpoint.py CHECKPOINT.safetensors [--inputs FILE] [--tol 1e-4]

The checkpoint is a safetensors file whose model weights are plain tensors under their state-dict names
(x_embedder.proj.weight, blocks.0.attn.qkv.weight, pos_embed, ...) with metadata "d4j.model.kind" = "dit" and
"d4j.model.config" = the JSON of org.diffusion4j.nn.DiT.Config. Other tensors (training state under prefixes such as
"optim." or "ema.", the check batch) are ignored: only names in the torch model's state_dict are loaded, and the
script reports any state-dict name the file lacks. The model is tools/torch_dit.py's DiT (the structure and names of
facebookresearch/DiT models.py), loaded with load_state_dict(strict=True) and run in float64 on the stored values.

With --ema the parameters are taken from the EMA entries ema.NAME that org.diffusion4j.training.Checkpoint
writes beside the weights (buffers such as pos_embed from NAME).

The check batch is read from the same file, or from --inputs: check.x [B, C, H, W] F32, check.t [B] F32 model times
in [0, 1], check.labels [B] I32 (conditional models only), check.out [B, C, H, W] F32 (Java's prediction). A test
writes such files: D4J_DIT_CHECK_DIR=DIR mvn ... -Dtest=DiTCheckpointExportTest.

Prints the maximum absolute and the relative error ||java - torch|| / ||torch||; exits 0 when the relative error is at
most --tol, 1 on a mismatch, 2 when the file cannot be used (missing weights, wrong kind, no check batch).
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_dit  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--inputs", help="safetensors file with check.x, check.t, check.labels, check.out")
    ap.add_argument("--tol", type=float, default=1e-4, help="largest allowed relative error (default 1e-4)")
    ap.add_argument("--ema", action="store_true",
                    help="load the EMA weights ema.NAME of a training checkpoint for every parameter NAME (buffers "
                         "from NAME); the check batch must then hold the output of the EMA model")
    a = ap.parse_args()

    tensors, meta = torch_dit.read_safetensors(a.checkpoint)
    kind = meta.get("d4j.model.kind")
    if kind != "dit":
        print("%s: d4j.model.kind is %r, expected 'dit'" % (a.checkpoint, kind))
        return 2
    cfg = json.loads(meta["d4j.model.config"])
    model = torch_dit.DiT(cfg).to(torch.float64).eval()
    own = model.state_dict()
    if a.ema:
        params = dict(model.named_parameters())
        tensors = dict(tensors)
        for k in own:
            if k in params:
                if "ema." + k not in tensors:
                    print("%s: --ema but no ema.%s" % (a.checkpoint, k))
                    return 2
                tensors[k] = tensors["ema." + k]
    missing = [k for k in own if k not in tensors]
    if missing:
        print("%s: %d state-dict entries missing: %s" % (a.checkpoint, len(missing), ", ".join(missing)))
        return 2
    bad = [k for k in own if tuple(tensors[k].shape) != tuple(own[k].shape)]
    if bad:
        for k in bad:
            print("%s: %s is %s in the file, %s in the model" % (a.checkpoint, k, list(tensors[k].shape),
                                                              list(own[k].shape)))
        return 2
    model.load_state_dict({k: tensors[k].to(torch.float64) for k in own}, strict=True)
    ignored = sorted(k for k in tensors if k not in own)
    prefixes = sorted({k.split(".")[0] + "." if "." in k else k for k in ignored})
    print("loaded %d state-dict tensors (%d parameters) into the torch DiT %s; ignored %d other tensors (%s)"
          % (len(own), sum(p.numel() for p in model.parameters()), json.dumps(cfg), len(ignored),
             ", ".join(prefixes) or "none"))

    inputs = tensors
    if a.inputs:
        inputs, _ = torch_dit.read_safetensors(a.inputs)
    for k in ("check.x", "check.t", "check.out"):
        if k not in inputs:
            print("%s: no %s tensor to check with" % (a.inputs or a.checkpoint, k))
            return 2
    x = inputs["check.x"].to(torch.float64)
    t = inputs["check.t"].to(torch.float64)
    y = inputs["check.labels"].to(torch.int64) if cfg["numClasses"] > 0 else None
    if cfg["numClasses"] > 0 and "check.labels" not in inputs:
        print("conditional model but no check.labels")
        return 2
    java = inputs["check.out"].to(torch.float64)
    with torch.no_grad():
        ref = model(x, t, y)
    if ref.shape != java.shape:
        print("output shapes differ: torch %s, java %s" % (list(ref.shape), list(java.shape)))
        return 1
    diff = java - ref
    max_abs = diff.abs().max().item()
    rel = (diff.norm() / ref.norm().clamp_min(1e-300)).item()
    ok = rel <= a.tol and torch.isfinite(java).all().item()
    print("batch %d, output %s: max abs error %.3e, relative error %.3e (tol %.1e): %s"
          % (x.shape[0], list(ref.shape), max_abs, rel, a.tol, "OK" if ok else "MISMATCH"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
