#!/usr/bin/env bash
# Starts a throwaway PostgreSQL (wal_level=logical) and a single-node Apache Kafka broker
# (KRaft) on free loopback ports, under DIR. Writes DIR/env.sh with what clients need.
#   integration-tests/env/up.sh DIR [--no-kafka]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

dir=${1:?usage: up.sh DIR [--no-kafka]}
with_kafka=1
[ "${2:-}" = "--no-kafka" ] && with_kafka=0

if [ -f "$dir/env.sh" ]; then
  "$here/down.sh" "$dir" || true
fi
rm -rf "$dir"
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

# --- PostgreSQL -----------------------------------------------------------------------
bindir=$(pg_bindir)
pgdata="$dir/pgdata"
pgport=$(free_port)
mkdir -p "$pgdata" "$dir/pgsock"
if [ "$(id -u)" = 0 ]; then
  chown -R postgres:postgres "$dir/pgdata" "$dir/pgsock"
  chmod 755 "$dir"
  if ! runuser -u postgres -- test -w "$dir/pgdata"; then
    echo "the postgres user cannot reach $dir (a parent folder is not searchable); choose a folder under /tmp" >&2
    exit 1
  fi
fi
as_pg "$bindir/initdb" -D "$pgdata" -U postgres -A trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 \
  || { cat "$dir/initdb.log" >&2; exit 1; }
cat >>"$pgdata/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $pgport
unix_socket_directories = '$dir/pgsock'
wal_level = logical
max_wal_senders = 20
max_replication_slots = 20
fsync = off
synchronous_commit = on
full_page_writes = off
shared_buffers = 256MB
max_wal_size = 4GB
wal_sender_timeout = 60s
log_min_messages = warning
CONF
touch "$dir/postgres.log"
[ "$(id -u)" = 0 ] && chown postgres:postgres "$dir/postgres.log"
as_pg "$bindir/pg_ctl" -D "$pgdata" -l "$dir/postgres.log" -w -t 60 start >/dev/null \
  || { cat "$dir/postgres.log" >&2; exit 1; }

cat >"$dir/env.sh" <<ENV
export OUTBOXD_IT_DIR='$dir'
export OUTBOXD_IT_PG_BINDIR='$bindir'
export OUTBOXD_IT_PGDATA='$pgdata'
export OUTBOXD_IT_PG_PORT=$pgport
export OUTBOXD_IT_PG_DSN='host=127.0.0.1 port=$pgport user=postgres dbname=postgres'
ENV

# --- Kafka ----------------------------------------------------------------------------
if [ "$with_kafka" = 1 ]; then
  cache=$(fetch_kafka)
  kport=$(free_port)
  cport=$(free_port)
  while [ "$cport" = "$kport" ]; do cport=$(free_port); done
  kdir="$dir/kafka"
  mkdir -p "$kdir/data"
  cat >"$kdir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$kport,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$kport
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$kdir/data
num.partitions=3
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
log.flush.interval.messages=9223372036854775807
PROPS
  java=${JAVA_HOME:+$JAVA_HOME/bin/}java
  cid=$($java -cp "$cache/libs/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)
  $java -cp "$cache/libs/*" kafka.tools.StorageTool format -t "$cid" -c "$kdir/server.properties" \
    >"$kdir/format.log" 2>&1 || { cat "$kdir/format.log" >&2; exit 1; }
  nohup $java -Xms256m -Xmx768m -XX:+UseSerialGC -cp "$cache/libs/*" kafka.Kafka "$kdir/server.properties" \
    >"$kdir/broker.log" 2>&1 </dev/null &
  echo $! >"$kdir/pid"
  ok=0
  for _ in $(seq 1 120); do
    if (exec 3<>/dev/tcp/127.0.0.1/"$kport") 2>/dev/null; then ok=1; break; fi
    if ! kill -0 "$(cat "$kdir/pid")" 2>/dev/null; then break; fi
    sleep 0.5
  done
  if [ "$ok" != 1 ]; then
    echo "Kafka broker did not start; its log:" >&2
    tail -n 50 "$kdir/broker.log" >&2
    exit 1
  fi
  cat >>"$dir/env.sh" <<ENV
export OUTBOXD_IT_KAFKA_BROKERS='127.0.0.1:$kport'
export OUTBOXD_IT_KAFKA_DIR='$kdir'
export OUTBOXD_IT_KAFKA_LIBS='$cache/libs'
ENV
fi
echo "services up: $(tr '\n' ' ' <"$dir/env.sh" | sed 's/export //g')"
