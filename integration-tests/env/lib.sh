# Shared helpers for the scripts that start and stop the test services.
# Sourced, not run.

# Prints a free TCP port on 127.0.0.1.
free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$(( (RANDOM << 1 | RANDOM & 1) % 30000 + 20000 ))
    if ! (exec 3<>/dev/tcp/127.0.0.1/"$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  echo "no free port found" >&2
  return 1
}

pg_bindir() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$d" ]; then
    echo "PostgreSQL server binaries not found under /usr/lib/postgresql: run scripts/install-deps.sh --test" >&2
    return 1
  fi
  echo "$d"
}

# Runs a command as the postgres user when we are root (initdb refuses root).
as_pg() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

kafka_version() { echo "4.1.1"; }

kafka_cache_dir() {
  echo "${OUTBOXD_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/outboxd}/kafka-$(kafka_version)"
}

# Fetches the Kafka broker jars from Maven Central into the cache, once.
fetch_kafka() {
  local here cache
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  cache=$(kafka_cache_dir)
  if [ -f "$cache/.complete" ]; then
    echo "$cache"
    return 0
  fi
  mkdir -p "$cache"
  echo "fetching Apache Kafka $(kafka_version) jars with Maven into $cache" >&2
  if ! mvn -q -B -f "$here/kafka/pom.xml" dependency:copy-dependencies \
        -DoutputDirectory="$cache/libs" >"$cache/mvn.log" 2>&1; then
    cat "$cache/mvn.log" >&2
    echo "could not fetch Kafka with Maven (see above)" >&2
    return 1
  fi
  touch "$cache/.complete"
  echo "$cache"
}
