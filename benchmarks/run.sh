#!/usr/bin/env bash
# Builds the benchmarks and runs the whole JMH suite on the CPU (GPU cases: benchmarks/gpu/, skipped with one
# line when there is no NVIDIA GPU), writes JMH JSON into benchmarks/out/ (ignored by git), then runs
# benchmarks/report.sh: the generated section of benchmarks/RESULTS.md and the PNG charts in benchmarks/charts/.
#
#   benchmarks/run.sh [--quick] [--only NAME[,NAME...]] [--no-build] [--no-report]
#
#   --quick      few, short iterations and fewer sizes: checks the pipeline end to end in ~5 minutes; the
#                numbers are not for publishing
#   --only       run only these groups: gemm, memory, attention, linear, training, sampling, gpu (the JSON of
#                the other groups already in benchmarks/out/ stays and is reported too)
#   --no-build   use the jar already built (benchmarks/target${D4J_TARGET_SUFFIX}/benchmarks.jar)
#   --no-report  do not regenerate RESULTS.md and the charts
#
# Environment: JAVA_HOME (a JDK 25; default /usr/lib/jvm/temurin-25-jdk-amd64 when it exists), D4J_THREADS
# (threads of the library's pool, default: the number of cores), D4J_TARGET_SUFFIX (Maven output folder suffix,
# as -Dd4j.target.suffix), D4J_MVN_ARGS (more Maven arguments, e.g. "-o -Dd4j.native=off").
#
# Thread discipline (issue 7): the library's pool runs D4J_THREADS threads (the calling thread + D4J_THREADS-1
# workers) and calls OpenBLAS with min(D4J_THREADS, cores) threads only while its own workers are idle, so at most
# D4J_THREADS threads compute at any time. OPENBLAS_NUM_THREADS caps OpenBLAS's own pool at the same number and
# OMP_NUM_THREADS=1 keeps any OpenMP runtime from adding threads. JMH runs one benchmark thread (the caller) and
# forks one JVM at a time. Run on an otherwise idle machine: on 2 cores any other busy process halves the numbers.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
quick=0; only=""; build=1; report=1
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --only) only="${2:?--only needs a list}"; shift ;;
    --only=*) only="${1#--only=}" ;;
    --no-build) build=0 ;;
    --no-report) report=0 ;;
    -h|--help) sed -n "2,24p" "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

if [ -z "${JAVA_HOME:-}" ] && [ -d /usr/lib/jvm/temurin-25-jdk-amd64 ]; then
  export JAVA_HOME=/usr/lib/jvm/temurin-25-jdk-amd64
fi
java="${JAVA_HOME:+$JAVA_HOME/bin/}java"
suffix="${D4J_TARGET_SUFFIX:-}"
jar="$here/target$suffix/benchmarks.jar"
out="$here/out"

cores="$(nproc)"
threads="${D4J_THREADS:-$cores}"
export D4J_THREADS="$threads" OPENBLAS_NUM_THREADS="$threads" OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

if [ "$build" = 1 ]; then
  echo "== building (mvnw package -pl benchmarks -am)"
  # shellcheck disable=SC2086
  (cd "$root" && ./mvnw -q -DskipTests -Dd4j.target.suffix="$suffix" ${D4J_MVN_ARGS:-} -pl benchmarks -am package)
fi
[ -f "$jar" ] || { echo "run.sh: no $jar (build first, or drop --no-build)" >&2; exit 1; }

# Cache sizes (bytes) for the scaling sizes of the memory-bound ops.
cache_bytes() {   # $1 = level
  local d s
  for d in /sys/devices/system/cpu/cpu0/cache/index*; do
    [ "$(cat "$d/level" 2>/dev/null)" = "$1" ] || continue
    s="$(cat "$d/size")"
    case "$s" in *K) echo $(( ${s%K} * 1024 )) ;; *M) echo $(( ${s%M} * 1048576 )) ;; *) echo "$s" ;; esac
    return
  done
  echo 0
}
l2="$(cache_bytes 2)"; l3="$(cache_bytes 3)"
[ "$l2" -gt 0 ] || l2=$((1 << 20)); [ "$l3" -gt 0 ] || l3=$((32 << 20))
round() { echo $(( ( ($1 + 4095) / 4096 ) * 4096 )); }   # a multiple of B·D = 2048 and of the batch 8
s1="$(round $((l2 / 32)))"    # 4 operands in half of L2
s2="$(round $((l2 / 4)))"     # one L2 per operand: L3-resident
s3="$(round $((l3 / 16)))"    # footprint 1/2-1 x L3
s4="$(round $((l3 / 2)))"     # 2 x L3 per operand: every op's footprint >= 4 x L3

if [ "$quick" = 1 ]; then
  jmh=(-f 1 -wi 1 -w 1500ms -i 2 -r 500ms)   # C2 needs ~1 s; 300 ms measured up to 2x low
  sizes="$s1,$s4"; seqs="49,256,1024"; models="mlp,ditA"; minimal_models="ditA"; gemm_n="256,1024"
  single=(-f 1 -wi 0 -i 1)
else
  jmh=(-f 2 -wi 1 -w 700ms -i 3 -r 500ms)
  sizes="$s1,$s2,$s3,$s4"; seqs="49,256,1024,4096"; models="mlp,ditA,ditB"; minimal_models="mlp,ditA"
  gemm_n="64,256,1024"
  single=(-f 2 -wi 1 -i 2)
fi

mkdir -p "$out"
if [ -z "$only" ]; then   # a new suite run: drop the old JMH JSON (compare.json of compare/run.sh stays)
  find "$out" -maxdepth 1 \( -name "*.json" -o -name "*.log" \) ! -name compare.json -delete
fi
want() { [ -z "$only" ] || [[ ",$only," == *",$1,"* ]]; }

load() { cut -d' ' -f1-3 /proc/loadavg; }
start_load="$(load)"; start="$(date -u +%Y-%m-%dT%H:%MZ)"; t0=$SECONDS
echo "== $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $cores cores, L2 $((l2 >> 10)) KiB, L3 $((l3 >> 20)) MiB"
echo "== threads: D4J_THREADS=$threads OPENBLAS_NUM_THREADS=$threads OMP_NUM_THREADS=1; load average $start_load"
# Other work on the machine steals the cores the benchmarks time: say so before the numbers are trusted.
if awk -v l="${start_load%% *}" -v c="$cores" 'BEGIN { exit !(l > 0.5 * c) }'; then
  echo "== WARNING: the 1-minute load average ($start_load) is above half the $cores cores: other work is running, and" \
       "the numbers will be low and noisy; rerun on an idle machine before publishing them"
fi

failed=()
run_jmh() {   # $1 = group name, $2 = JSON/log file name, $3 = class regex, rest = JMH options
  local name="$1" file="$2" regex="$3"; shift 3
  want "$name" || return 0
  echo "== $name ($file)"
  if ! "$java" --enable-native-access=ALL-UNNAMED -jar "$jar" "^org\.diffusion4j\.bench\.($regex)(\.|$)" \
      -jvmArgsAppend "-Dd4j.threads=$threads" "$@" -rf json -rff "$out/$file.json" > "$out/$file.log" 2>&1; then
    echo "   FAILED (see $out/$file.log)"; failed+=("$file"); tail -5 "$out/$file.log" | sed 's/^/   /'
  else
    grep -E '^(Benchmark|[A-Za-z]+Bench\.)' "$out/$file.log" | sed 's/^/   /' | tail -n 60
  fi
}

run_jmh gemm gemm 'GemmBench' "${jmh[@]}" -p n="$gemm_n"
run_jmh memory memory 'DiffusionOpsBench|NnOpsBench' "${jmh[@]}" -p numel="$sizes"
run_jmh attention attention 'AttentionBench' "${jmh[@]}" -p seqLen="$seqs"
run_jmh linear linear 'LinearGeluBench' "${jmh[@]}"
run_jmh training training-trainer 'TrainingBench' "${jmh[@]}" -p model="$models" -p impl=trainer
run_jmh training training-minimal 'TrainingBench' "${jmh[@]}" -p model="$minimal_models" -p impl=minimal
run_jmh sampling sampling-step 'SamplingBench\.step' "${jmh[@]}"
run_jmh sampling sampling-sample50 'SamplingBench\.sample50' "${single[@]}"

if want gpu; then
  if command -v nvidia-smi > /dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then
    echo "== gpu (GpuBench; the full GPU check with its CUDA tests is benchmarks/gpu/check.sh)"
    mkdir -p "$out/gpu"
    "$java" --enable-native-access=ALL-UNNAMED -Dd4j.bench.out="$out/gpu" -cp "$jar" \
      org.diffusion4j.bench.gpu.GpuBench || failed+=(gpu)
  else
    echo "== gpu: skipped (no NVIDIA GPU: nvidia-smi is missing or lists no device)"
  fi
fi

echo "== done in $((SECONDS - t0)) s; load average at the end $(load)"
# versions: the code measured, its BLAS (as the backend names it in the JMH logs) and the harness
commit="$(cd "$root" && git describe --always --dirty 2>/dev/null || echo unknown)"
blas="$(grep -ho 'OpenBLAS [0-9][0-9.]*' "$out"/*.log 2>/dev/null | head -n1)"
jmh_version="$(sed -n 's:.*<jmh.version>\(.*\)</jmh.version>.*:\1:p' "$root/pom.xml" | head -n1)"
desc="$start, $( [ "$quick" = 1 ] && echo "QUICK run (--quick: few short iterations, not for publishing)" || echo "full run" ), diffusion4j ${commit}, ${blas:-OpenBLAS ?}, JMH ${jmh_version:-?}; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $cores cores, L2 $((l2 >> 10)) KiB/core, L3 $((l3 >> 20)) MiB; D4J_THREADS=$threads, OPENBLAS_NUM_THREADS=$threads, OMP_NUM_THREADS=1; JMH ${jmh[*]}; load average $start_load at the start, $(load) at the end; $((SECONDS - t0)) s"
if [ -n "$only" ] && [ -f "$out/run.txt" ]; then
  # keep the description of the run whose other groups are still in out/
  printf '%s; then groups %s rerun: %s\n' "$(head -n1 "$out/run.txt")" "$only" "$desc" > "$out/run.txt.new"
  mv -f "$out/run.txt.new" "$out/run.txt"
else
  echo "$desc" > "$out/run.txt"
fi
if [ "$report" = 1 ]; then
  "$here/report.sh" --no-build
fi
if [ ${#failed[@]} -gt 0 ]; then
  echo "run.sh: failed groups: ${failed[*]}" >&2
  exit 1
fi
