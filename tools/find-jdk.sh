# Sourced by ./diffusion4j, ./mvnw and .ci/run (POSIX sh): makes JAVA_HOME point at a JDK 25 or newer.
# Order: $JAVA_HOME, `java` on the PATH, then the usual install folders. Fails with a clear message.
d4j_java_major() { "$1" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = //p' | head -n1; }
d4j_find_jdk() {
  local cand major
  for cand in ${JAVA_HOME:+"$JAVA_HOME/bin/java"} "$(command -v java 2>/dev/null || true)" \
              /usr/lib/jvm/*/bin/java /opt/java/*/bin/java /opt/*jdk*/bin/java \
              /Library/Java/JavaVirtualMachines/*/Contents/Home/bin/java; do
    [ -n "$cand" ] && [ -x "$cand" ] || continue
    major=$(d4j_java_major "$cand")
    case "$major" in ''|1.*) continue ;; esac
    if [ "${major%%.*}" -ge 25 ] 2>/dev/null; then
      cand=$(readlink -f "$cand")
      export JAVA_HOME="${cand%/bin/java}"
      return 0
    fi
  done
  echo "diffusion4j: no JDK 25 found. Install one (e.g. Temurin 25) and set JAVA_HOME to it." >&2
  return 1
}
