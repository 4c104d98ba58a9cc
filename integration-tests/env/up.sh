#!/usr/bin/env bash
# Starts a throwaway PostgreSQL (wal_level=logical) and a single-node Apache Kafka broker (KRaft)
# on free loopback ports, under DIR. Writes DIR/env.sh with what clients need.
# OUTBOXD_PG_VERSION=14..18 picks PostgreSQL's major version: 15 (the default) is Debian's, the
# others are fetched from Maven Central into the cache once (lib.sh: fetch_postgres).
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
# TLS: a throwaway CA and a server certificate for localhost/127.0.0.1 (sslmode=verify-full
# tests), and an unrelated CA that must be refused. OUTBOXD_IT_TLS=0 leaves TLS off (benchmarks).
tls="$dir/tls"
mkdir -p "$tls"
if [ "${OUTBOXD_IT_TLS:-1}" = 1 ]; then
(
  cd "$tls"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3 -subj "/CN=outboxd test CA" -keyout ca.key -out ca.crt
  openssl req -x509 -newkey rsa:2048 -nodes -days 3 -subj "/CN=unrelated CA" -keyout other-ca.key -out other-ca.crt
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server.key -out server.csr
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >san.ext
  openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3 -extfile san.ext -out server.crt
  chmod 600 server.key
) >"$dir/tls.log" 2>&1 || { cat "$dir/tls.log" >&2; exit 1; }
[ "$(id -u)" = 0 ] && chown postgres:postgres "$tls/server.key" "$tls/server.crt"
cat >>"$pgdata/postgresql.conf" <<CONF
ssl = on
ssl_cert_file = '$tls/server.crt'
ssl_key_file = '$tls/server.key'
CONF
fi
cat >>"$pgdata/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $pgport
unix_socket_directories = '$dir/pgsock'
wal_level = logical
max_wal_senders = 40
max_replication_slots = 100
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
export OUTBOXD_IT_PG_VERSION='$("$bindir/postgres" --version | sed -E 's/^[^0-9]*([0-9][0-9.]*).*/\1/')'
export OUTBOXD_IT_PGDATA='$pgdata'
export OUTBOXD_IT_PG_PORT=$pgport
export OUTBOXD_IT_PG_DSN='host=127.0.0.1 port=$pgport user=postgres dbname=postgres'
export OUTBOXD_IT_PG_CA='$tls/ca.crt'
export OUTBOXD_IT_PG_OTHER_CA='$tls/other-ca.crt'
ENV

# --- Kafka ----------------------------------------------------------------------------
if [ "$with_kafka" = 1 ]; then
  libs="$(fetch_kafka "$(kafka_version)")/libs"
  kport=$(free_port); cport=$(free_port)
  while [ "$cport" = "$kport" ]; do cport=$(free_port); done
  prepare_broker "$dir/kafka" "$libs" PLAINTEXT "$kport" "$cport"
  "$dir/kafka/start.sh"
  cat >>"$dir/env.sh" <<ENV
export OUTBOXD_IT_KAFKA_BROKERS='127.0.0.1:$kport'
export OUTBOXD_IT_KAFKA_DIR='$dir/kafka'
export OUTBOXD_IT_KAFKA_LIBS='$libs'
ENV
  if [ "${OUTBOXD_IT_SASL:-1}" = 1 ]; then
    # The same Kafka as the plain broker: librdkafka 2.8.0 completes SCRAM with Kafka 4 (2.0.2,
    # Debian 12's, could not, and the test used a 3.9.1 broker then).
    sasl_libs=$libs
    sport=$(free_port); scport=$(free_port)
    while [ "$scport" = "$sport" ]; do scport=$(free_port); done
    prepare_broker "$dir/kafka-sasl" "$sasl_libs" SASL_PLAINTEXT "$sport" "$scport"
    "$dir/kafka-sasl/start.sh"
    cat >>"$dir/env.sh" <<ENV
export OUTBOXD_IT_KAFKA_SASL_BROKERS='127.0.0.1:$sport'
export OUTBOXD_IT_KAFKA_SASL_DIR='$dir/kafka-sasl'
ENV
  fi
fi
echo "services up: $(tr '\n' ' ' <"$dir/env.sh" | sed 's/export //g')"
