# Helpers shared by bench/debezium/fetch.sh, run.sh and bench/catchup.sh. Sourced, not run.

debezium_version() { echo "3.6.1.Final"; }

# Where the unpacked Debezium Server distribution lives (next to the Kafka jars of the tests).
debezium_cache_dir() {
  echo "${OUTBOXD_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/outboxd}/debezium-server-$(debezium_version)"
}

# Debezium Server 3.6's own classes are Java 21 bytecode (class file version 65): Java 17 cannot
# run it. Prints a java binary of version 21 or later: $DEBEZIUM_JAVA_HOME, then $JAVA_HOME, then
# the JDKs under /usr/lib/jvm, newest first.
debezium_java() {
  local home v
  for home in "${DEBEZIUM_JAVA_HOME:-}" "${JAVA_HOME:-}" $(ls -d /usr/lib/jvm/*/ 2>/dev/null | sort -Vr); do
    [ -n "$home" ] && [ -x "$home/bin/java" ] || continue
    v=$("$home/bin/java" -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/{print $2}')
    if [ -n "$v" ] && [ "${v%%.*}" -ge 21 ] 2>/dev/null; then
      echo "${home%/}/bin/java"
      return 0
    fi
  done
  echo "no Java 21 or later found (Debezium Server $(debezium_version) needs it): set DEBEZIUM_JAVA_HOME" >&2
  return 1
}
