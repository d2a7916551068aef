#!/usr/bin/env bash
# Builds the self-contained bundle that benchmarks/gpu/check.sh runs on a GPU machine that has a driver
# and CUDA libraries but no JDK and no network (DESIGN.md §7).
#
#   benchmarks/gpu/prepare.sh            # on the build machine (needs JDK 25, nvcc, cmake, Maven access)
#
# Output (git-ignored): .gpu/bundle/d4j-gpu-bundle.tar.xz, ~40 MiB, holding
#   jre/      a jlinked Java runtime (modules from jdeps + what JUnit's console launcher needs)
#   lib/      diffusion4j.jar (with libdiffusion4j.so + its JNI library), its runtime jars,
#             diffusion4j-tests.jar (the test classes), diffusion4j-gpubench.jar (the GPU benchmarks,
#             org.diffusion4j.bench.gpu) and junit-platform-console-standalone.jar
#   BUILD     what was built, when, from which commit
# plus a copy of check.sh next to it. Maven output goes to java/target-gpu (-Dd4j.target.suffix=-gpu) so
# the build does not disturb other builds in the same tree; override with D4J_TARGET_SUFFIX (and the output
# folder with D4J_BUNDLE_DIR, e.g. to try the script without replacing .gpu/bundle).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
. tools/find-jdk.sh
d4j_find_jdk

suffix="${D4J_TARGET_SUFFIX:--gpu}"
target="$root/java/target$suffix"
out="${D4J_BUNDLE_DIR:-$root/.gpu/bundle}"
out="${out%/}"
stage="$out.stage"
junit_platform_version="${D4J_JUNIT_PLATFORM_VERSION:-1.14.1}"

echo "== building diffusion4j with the CUDA library (java/target$suffix)"
if ! command -v nvcc >/dev/null 2>&1 && [[ ! -x "${CUDA_HOME:-/nonexistent}/bin/nvcc" && ! -x /usr/local/cuda/bin/nvcc ]]; then
  echo "prepare.sh: nvcc not found; the GPU bundle needs the native CUDA library" >&2
  exit 1
fi
./mvnw -q -B -pl java -am -Dd4j.target.suffix="$suffix" -DskipTests package
jar_lib="org/diffusion4j/cuda/linux-x86_64"
for so in libdiffusion4j.so libjniNativeLib.so; do
  if ! "$JAVA_HOME/bin/jar" tf "$target/diffusion4j.jar" | grep -q "^$jar_lib/$so\$"; then
    echo "prepare.sh: $target/diffusion4j.jar lacks $jar_lib/$so (was the native build skipped?)" >&2
    exit 1
  fi
done

echo "== staging"
rm -rf "$stage"
mkdir -p "$stage/lib" "$out"
cp "$target/diffusion4j.jar" "$stage/lib/"
cp "$target"/lib/*.jar "$stage/lib/"
"$JAVA_HOME/bin/jar" --create --file "$stage/lib/diffusion4j-tests.jar" -C "$target/test-classes" .
# The GPU benchmarks (benchmarks/src/main/java/org/diffusion4j/bench/gpu): compiled here against the jars
# just built rather than through the benchmarks module, whose shaded JMH jar the bundle does not need.
bench_classes="$target/gpubench-classes"
rm -rf "$bench_classes"
"$JAVA_HOME/bin/javac" --release 25 -Xlint:all,-processing,-serial,-this-escape,-path -d "$bench_classes" \
  -cp "$target/diffusion4j.jar:$target/lib/*" benchmarks/src/main/java/org/diffusion4j/bench/gpu/*.java \
  benchmarks/src/main/java/org/diffusion4j/bench/Workloads.java
"$JAVA_HOME/bin/jar" --create --file "$stage/lib/diffusion4j-gpubench.jar" -C "$bench_classes" .
console="junit-platform-console-standalone-$junit_platform_version.jar"
./mvnw -q -B -N dependency:copy -Dartifact="org.junit.platform:junit-platform-console-standalone:$junit_platform_version" \
  -DoutputDirectory="$stage/lib" -Dmdep.stripVersion=true
[[ -f "$stage/lib/junit-platform-console-standalone.jar" ]] || { echo "prepare.sh: $console not fetched" >&2; exit 1; }

echo "== jlink"
# Modules the jars need (jdeps) plus what the console launcher uses at run time: java.xml (XML reports),
# jdk.zipfs (class-path scanning), java.management/jdk.management.
# progressbar is a named module that requires org.jline.terminal, which jdeps cannot resolve from the class
# path: leave both out of the analysis (they need only java.base and jdk.unsupported, added below).
analysed=()
for jar in "$stage"/lib/*.jar; do
  case "$(basename "$jar")" in progressbar-*|jline-*) ;; *) analysed+=("$jar") ;; esac
done
deps="$("$JAVA_HOME/bin/jdeps" --multi-release 25 --ignore-missing-deps --print-module-deps \
  --class-path "$stage/lib/*" "${analysed[@]}" 2>/dev/null | tail -n1)"
modules="$deps,java.logging,java.xml,jdk.zipfs,jdk.unsupported,java.management,jdk.management"
# Incubator modules must also be named at run time (check.sh reads this from BUILD).
add_modules=""
case ",$deps," in *,jdk.incubator.vector,*) add_modules="jdk.incubator.vector" ;; esac
modules="$(echo "$modules" | tr ',' '\n' | sed '/^$/d' | sort -u | paste -sd, -)"
echo "   modules: $modules"
"$JAVA_HOME/bin/jlink" --add-modules "$modules" --output "$stage/jre" --strip-debug --no-header-files \
  --no-man-pages --compress=zip-0

{
  echo "diffusion4j GPU bundle"
  echo "built:   $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname)"
  echo "commit:  $(git rev-parse --short HEAD 2>/dev/null || echo none)$(git diff --quiet 2>/dev/null || echo ' (+local changes)')"
  echo "jdk:     $("$JAVA_HOME/bin/java" -version 2>&1 | head -n1)"
  echo "nvcc:    $(nvcc --version 2>/dev/null | tail -n1 || echo unknown)"
  echo "modules: $modules"
  echo "add-modules: $add_modules"
} >"$stage/BUILD"

echo "== packing"
# Jars arrive deflated, which xz cannot compress further; stored (uncompressed) entries, in the same order,
# let xz take the whole bundle from ~58 MiB to ~40 MiB, which leaves room under the device tool's 64 MiB
# limit for the working tree that travels with it.
python3 - "$stage"/lib/*.jar <<'PY'
import os, sys, zipfile
for path in sys.argv[1:]:
    tmp = path + ".stored"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            data = src.read(info)
            info.compress_type = zipfile.ZIP_STORED
            dst.writestr(info, data)
    os.replace(tmp, path)
PY
bundle="$out/d4j-gpu-bundle.tar.xz"
tar -C "$stage" -cf - BUILD jre lib | xz -T0 -9 >"$bundle.tmp"
mv "$bundle.tmp" "$bundle"
cp "$root/benchmarks/gpu/check.sh" "$out/check.sh"
rm -rf "$stage"
size=$(stat -c %s "$bundle")
awk -v s="$size" -v f="${bundle#"$root"/}" 'BEGIN { printf "== %s: %.1f MiB\n", f, s / 1048576 }'
if (( size > 50 * 1048576 )); then
  echo "prepare.sh: the bundle is larger than 50 MiB (the device tool carries 64 MiB with the working tree)" >&2
  exit 1
fi
echo "   on the GPU machine: bash benchmarks/gpu/check.sh   (or bash .gpu/bundle/check.sh)"
