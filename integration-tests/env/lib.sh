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
