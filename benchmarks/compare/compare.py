#!/usr/bin/python3
"""Aggregates the JSON lines of benchmarks/compare/run.sh (ours-<round>.jsonl from org.diffusion4j.bench.compare.Ours,
torch-<round>.jsonl from torch_peer.py), prints speed-ups (PyTorch time / our time) with their spread over rounds,
and writes compare.json for benchmarks/report.sh.

    compare.py <folder with the .jsonl files> <compare.json to write> <setup text>
"""
import glob
import json
import os
import statistics
import sys

# case -> (label, [(peer impl, target speed-up or None)])
CASES = [
    ("noise", "forward noising [8, 524288] (fused, Philox noise)", [("torch-eager", 5.0)]),
    ("step", "DPM-Solver++(2M) step + CFG 7.5, [8, 524288]", [("torch-eager", 5.0), ("torch-inplace", 1.0)]),
    ("attn-fwd-T256", "attention forward [2, 4, 256, 64]", [("torch", 1.5)]),
    ("attn-fwd-T1024", "attention forward [2, 4, 1024, 64]", [("torch", 1.5)]),
    ("attn-fwdbwd-T256", "attention forward + backward [2, 4, 256, 64]", [("torch", None)]),
    ("attn-fwdbwd-T1024", "attention forward + backward [2, 4, 1024, 64]", [("torch", None)]),
    ("train-ditA", "DiT A training step, batch 128", [("torch", 1.0)]),
    ("train-ditB", "DiT B training step, batch 128", [("torch", 1.0)]),
]


def load(folder):
    """{round: {(case, impl): [ms...]}}, setups, notes."""
    rounds, setups, notes = {}, [], {}
    for path in sorted(glob.glob(os.path.join(folder, "*.jsonl"))):
        r = os.path.basename(path).rsplit("-", 1)[1].split(".")[0]
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line.startswith("{"):
                    continue
                d = json.loads(line)
                if "setup" in d:
                    if d["setup"] not in setups:
                        setups.append(d["setup"])
                    continue
                if "ms" not in d:        # e.g. {"case": "attn-cuda", "skipped": "no CUDA device"}
                    continue
                rounds.setdefault(r, {})[(d["case"], d["impl"])] = d["ms"]
                if d.get("note"):
                    notes[(d["case"], d["impl"])] = d["note"]
    return rounds, setups, notes


def fmt(ms):
    return "%.1f (%.1f–%.1f)" % (statistics.median(ms), min(ms), max(ms)) if ms[0] >= 10 else \
        "%.2f (%.2f–%.2f)" % (statistics.median(ms), min(ms), max(ms))


def main():
    folder, out, setup = sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else ""
    rounds, setups, notes = load(folder)
    rows = []
    print("%-52s %-14s %24s %24s %8s  %s" % ("case", "PyTorch", "ours ms (med, min-max)", "PyTorch ms", "speed-up",
                                          "spread over rounds"))
    for case, label, peers in CASES:
        ours_all = [ms for r in rounds.values() for (c, i), ms in r.items() if c == case and i == "diffusion4j"]
        if not ours_all:
            continue
        for impl, target in peers:
            per_round = []
            ours_ms, theirs_ms = [], []
            for r in sorted(rounds):
                o = rounds[r].get((case, "diffusion4j"))
                t = rounds[r].get((case, impl))
                if o and t:
                    per_round.append(statistics.median(t) / statistics.median(o))
                    ours_ms += o
                    theirs_ms += t
            if not per_round:
                continue
            speedup = statistics.median(theirs_ms) / statistics.median(ours_ms)
            if len(per_round) > 1:
                spread = "%.2f–%.2f over %d rounds" % (min(per_round), max(per_round), len(per_round))
            else:
                spread = "%.2f–%.2f (1 round: slowest vs fastest calls)" % (min(theirs_ms) / max(ours_ms),
                                                                          max(theirs_ms) / min(ours_ms))
            note = notes.get((case, impl), "")
            row = {"case": label, "key": case, "peer": impl, "ours": fmt(ours_ms), "theirs": fmt(theirs_ms),
                   "speedup": round(speedup, 4), "per_round": [round(x, 4) for x in per_round], "spread": spread,
                   "target": ("≥ %g ×" % target) if target else "", "note": note}
            if target:
                row["target_ratio"] = target
            rows.append(row)
            print("%-52s %-14s %24s %24s %8.2f  %s%s" % (label, impl, fmt(ours_ms), fmt(theirs_ms), speedup, spread,
                                                         ("   target >= %g: %s" % (target, "met" if speedup >= target
                                                                                   else "NOT met")) if target else ""))
    text = setup + (" Sides: " + "; ".join(setups) if setups else "")
    notes_all = sorted(set(notes.values()))
    if notes_all:
        text += ". PyTorch attention: " + "; ".join(notes_all)
    with open(out, "w") as f:
        json.dump({"setup": text, "rows": rows}, f, indent=1, ensure_ascii=False)
    print("\n" + text)
    print("wrote " + out + " (benchmarks/report.sh puts it into RESULTS.md)")


if __name__ == "__main__":
    main()
