#!/usr/bin/env bash
# diffusion4j vs PyTorch on the CPU, the same work with the same shapes in one run (issue 7, "Peer comparison"):
# org.diffusion4j.bench.compare.Ours (our library) and torch_peer.py (PyTorch), alternating, a few rounds; prints
# the speed-ups (PyTorch time / our time, > 1 = we are faster) with their spread over rounds and writes
# benchmarks/out/compare.json, which benchmarks/report.sh turns into a table and a chart of RESULTS.md.
#
#   benchmarks/compare/run.sh [--quick] [--rounds N] [--cases noise,step,attn,ditA,ditB] [--no-build] [--report]
#
# Threads (both sides get the same number, default: the number of cores, or D4J_THREADS): PyTorch runs with
# OMP_NUM_THREADS = MKL_NUM_THREADS = N, torch.set_num_threads(N) and one inter-op thread; our side with
# D4J_THREADS = N (pool), OPENBLAS_NUM_THREADS = N (OpenBLAS runs only while the pool is idle), OMP_NUM_THREADS = 1.
# The two sides never run at the same time. PYTHON (default /usr/bin/python3, Debian's python3-torch) picks the
# interpreter; on a GPU machine the script still compares the CPU paths.
#
# PyTorch's BLAS: Debian's python3-torch calls whatever libblas.so.3 the alternatives system selects. With only
# libblas3 installed that is the reference netlib BLAS (unoptimised, single-threaded), and every matmul of the
# PyTorch side is 10-50x slower than it should be. torch_peer.py names the BLAS it loaded in its setup line (and
# warns). For a fair comparison install OpenBLAS first: apt-get install libopenblas0-openmp (the OpenMP build shares
# PyTorch's OpenMP runtime, so BLAS calls inside PyTorch's parallel regions do not oversubscribe the cores).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bench="$(cd "$here/.." && pwd)"
root="$(cd "$bench/.." && pwd)"
quick=0; rounds=""; cases="noise,step,attn,ditA,ditB"; build=1; report=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --rounds) rounds="$2"; shift ;;
    --cases) cases="$2"; shift ;;
    --no-build) build=0 ;;
    --report) report=1 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "compare/run.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done
[ -n "$rounds" ] || rounds=$([ "$quick" = 1 ] && echo 1 || echo 3)
if [ -z "${JAVA_HOME:-}" ] && [ -d /usr/lib/jvm/temurin-25-jdk-amd64 ]; then
  export JAVA_HOME=/usr/lib/jvm/temurin-25-jdk-amd64
fi
java="${JAVA_HOME:+$JAVA_HOME/bin/}java"
python="${PYTHON:-/usr/bin/python3}"
jar="$bench/target${D4J_TARGET_SUFFIX:-}/benchmarks.jar"
threads="${D4J_THREADS:-$(nproc)}"
if [ "$build" = 1 ]; then
  # shellcheck disable=SC2086
  (cd "$root" && ./mvnw -q -DskipTests -Dd4j.target.suffix="${D4J_TARGET_SUFFIX:-}" ${D4J_MVN_ARGS:-} -pl benchmarks -am package)
fi
[ -f "$jar" ] || { echo "compare/run.sh: no $jar" >&2; exit 1; }
"$python" -c 'import torch' 2>/dev/null || { echo "compare/run.sh: $python has no torch (apt install python3-torch)" >&2; exit 1; }

out="$bench/out/compare"
rm -rf "$out"; mkdir -p "$out"
q=(); [ "$quick" = 1 ] && q=(--quick)
ours() {
  env D4J_THREADS="$threads" OPENBLAS_NUM_THREADS="$threads" OMP_NUM_THREADS=1 \
    "$java" --enable-native-access=ALL-UNNAMED -Dd4j.threads="$threads" -cp "$jar" \
    org.diffusion4j.bench.compare.Ours "${q[@]}" --cases "$cases" > "$out/ours-$1.jsonl"
}
theirs() {
  env OMP_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads" OPENBLAS_NUM_THREADS="$threads" D4J_THREADS="$threads" \
    "$python" "$here/torch_peer.py" "${q[@]}" --threads "$threads" --cases "$cases" > "$out/torch-$1.jsonl"
}
t0=$SECONDS; load0="$(cut -d' ' -f1-3 /proc/loadavg)"; start="$(date -u +%Y-%m-%dT%H:%MZ)"
for r in $(seq 1 "$rounds"); do
  echo "== round $r/$rounds"
  if [ $((r % 2)) = 1 ]; then ours "$r"; theirs "$r"; else theirs "$r"; ours "$r"; fi
done
setup="$start, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores, $threads threads per side, $rounds round(s)$([ "$quick" = 1 ] && echo ', QUICK (--quick: not for publishing)'), load average $load0 at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end, $((SECONDS - t0)) s."
"$python" "$here/compare.py" "$out" "$bench/out/compare.json" "$setup"
if [ "$report" = 1 ]; then "$bench/report.sh" --no-build; fi
