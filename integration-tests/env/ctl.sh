#!/usr/bin/env bash
# Faults for the integration tests, on the services up.sh started under DIR:
#   ctl.sh DIR kafka-stop | kafka-start | pg-restart | pg-stop | pg-start
#   ctl.sh DIR other-pg-start PORT | other-pg-stop   a second, unrelated PostgreSQL cluster (another
#                                                    system identifier) on 127.0.0.1:PORT
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
dir=${1:?usage: ctl.sh DIR ACTION}
. "$dir/env.sh"
case "${2:?usage: ctl.sh DIR ACTION}" in
  kafka-stop) stop_broker "$OUTBOXD_IT_KAFKA_DIR" ;;
  kafka-start) "$OUTBOXD_IT_KAFKA_DIR/start.sh" ;;
  pg-restart) as_pg "$OUTBOXD_IT_PG_BINDIR/pg_ctl" -D "$OUTBOXD_IT_PGDATA" -m fast -w -t 60 restart >/dev/null ;;
  pg-stop) as_pg "$OUTBOXD_IT_PG_BINDIR/pg_ctl" -D "$OUTBOXD_IT_PGDATA" -m fast -w -t 60 stop >/dev/null ;;
  pg-start) as_pg "$OUTBOXD_IT_PG_BINDIR/pg_ctl" -D "$OUTBOXD_IT_PGDATA" -l "$OUTBOXD_IT_DIR/postgres.log" -w -t 60 start >/dev/null ;;
  other-pg-start)
    other="$OUTBOXD_IT_DIR/other-pg"
    rm -rf "$other"
    mkdir -p "$other/data" "$other/sock"
    [ "$(id -u)" = 0 ] && chown -R postgres:postgres "$other"
    as_pg "$OUTBOXD_IT_PG_BINDIR/initdb" -D "$other/data" -U postgres -A trust -E UTF8 --no-sync >"$other/initdb.log" 2>&1 \
      || { cat "$other/initdb.log" >&2; exit 1; }
    cat >>"$other/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = ${3:?other-pg-start needs a port}
unix_socket_directories = '$other/sock'
wal_level = logical
max_wal_senders = 10
max_replication_slots = 10
fsync = off
CONF
    as_pg "$OUTBOXD_IT_PG_BINDIR/pg_ctl" -D "$other/data" -l "$other/data/postgres.log" -w -t 60 start >/dev/null ;;
  other-pg-stop)
    other="$OUTBOXD_IT_DIR/other-pg"
    [ -d "$other/data" ] && as_pg "$OUTBOXD_IT_PG_BINDIR/pg_ctl" -D "$other/data" -m immediate -w -t 60 stop >/dev/null || true
    rm -rf "$other" ;;
  *) echo "unknown action $2" >&2; exit 2 ;;
esac
