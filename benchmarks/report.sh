#!/usr/bin/env bash
# Turns the JSON in benchmarks/out/ (JMH results of benchmarks/run.sh, compare.json of benchmarks/compare/run.sh)
# into the generated section of benchmarks/RESULTS.md (between the BEGIN/END GENERATED markers; the hand-written
# parts stay) and the PNG charts in benchmarks/charts/.
#
#   benchmarks/report.sh [--no-build]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
if [ -z "${JAVA_HOME:-}" ] && [ -d /usr/lib/jvm/temurin-25-jdk-amd64 ]; then
  export JAVA_HOME=/usr/lib/jvm/temurin-25-jdk-amd64
fi
java="${JAVA_HOME:+$JAVA_HOME/bin/}java"
jar="$here/target${D4J_TARGET_SUFFIX:-}/benchmarks.jar"
if [ "${1:-}" != "--no-build" ] && [ ! -f "$jar" ]; then
  # shellcheck disable=SC2086
  (cd "$root" && ./mvnw -q -DskipTests -Dd4j.target.suffix="${D4J_TARGET_SUFFIX:-}" ${D4J_MVN_ARGS:-} -pl benchmarks -am package)
fi
desc=""
[ -f "$here/out/run.txt" ] && desc="$(cat "$here/out/run.txt")"
"$java" -Djava.awt.headless=true -cp "$jar" org.diffusion4j.bench.report.Report \
  "$here/out" "$here/RESULTS.md" "$here/charts" "$desc"
