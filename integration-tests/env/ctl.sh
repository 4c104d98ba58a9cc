#!/usr/bin/env bash
# Faults for the integration tests, on the services up.sh started under DIR:
#   ctl.sh DIR kafka-stop | kafka-start | pg-restart | pg-stop | pg-start
#   ctl.sh DIR other-pg-start PORT | other-pg-stop   a second, unrelated PostgreSQL cluster (another
#                                                    system identifier) on 127.0.0.1:PORT
#   ctl.sh DIR standby-start PORT [--no-slot-sync]
#                                   a physical standby of the test primary on 127.0.0.1:PORT (PostgreSQL
#                                   17+): a cold copy of the cleanly stopped primary with standby.signal,
#                                   primary_conninfo (with dbname), its own physical slot on the primary
#                                   (primary_slot_name), hot_standby_feedback and sync_replication_slots on,
#                                   and the primary's synchronized_standby_slots naming that physical slot;
#                                   --no-slot-sync leaves sync_replication_slots off (no slot is synchronized)
#   ctl.sh DIR primary-kill         the primary stopped with -m immediate (as a crash: no shutdown checkpoint)
#   ctl.sh DIR standby-promote      pg_ctl promote on the standby, waiting until it accepts writes
#   ctl.sh DIR standby-stop         the standby stopped and removed; on the primary (when it runs) its
#                                   physical slot dropped and synchronized_standby_slots reset
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
dir=${1:?usage: ctl.sh DIR ACTION}
. "$dir/env.sh"
standby="$OUTBOXD_IT_DIR/standby"
standby_slot=outboxd_it_standby
# SQL on the primary, one value a line.
primary_sql() { "$(pg_psql)" "$OUTBOXD_IT_PG_DSN" -X -Atq -v ON_ERROR_STOP=1 -c "$1"; }
primary_running() { as_pg "$OUTBOXD_IT_PG_BINDIR/pg_ctl" -D "$OUTBOXD_IT_PGDATA" status >/dev/null 2>&1; }
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
  standby-start)
    sport=${3:?standby-start needs a port}
    slot_sync=on
    [ "${4:-}" = --no-slot-sync ] && slot_sync=off
    major=$("$OUTBOXD_IT_PG_BINDIR/postgres" --version | sed -E 's/^[^0-9]*([0-9]+).*/\1/')
    if [ "$major" -lt 17 ]; then
      echo "standby-start: slot synchronization (sync_replication_slots) needs PostgreSQL 17 or later, this is $major" >&2
      exit 2
    fi
    primary_sql "SELECT pg_create_physical_replication_slot('$standby_slot') WHERE NOT EXISTS (SELECT 1 FROM
                 pg_replication_slots WHERE slot_name = '$standby_slot')" >/dev/null
    # A cold copy: the zonky builds have no pg_basebackup. The primary's slots stay behind (a
    # logical slot of the same name on the standby would stop the slot sync worker).
    as_pg "$OUTBOXD_IT_PG_BINDIR/pg_ctl" -D "$OUTBOXD_IT_PGDATA" -m fast -w -t 60 stop >/dev/null
    rm -rf "$standby"
    mkdir -p "$standby/sock"
    [ "$(id -u)" = 0 ] && chown -R postgres:postgres "$standby"
    copied=0
    as_pg cp -a "$OUTBOXD_IT_PGDATA" "$standby/data" && copied=1
    as_pg "$OUTBOXD_IT_PG_BINDIR/pg_ctl" -D "$OUTBOXD_IT_PGDATA" -l "$OUTBOXD_IT_DIR/postgres.log" -w -t 60 start >/dev/null
    [ "$copied" = 1 ] || { echo "standby-start: could not copy $OUTBOXD_IT_PGDATA" >&2; exit 1; }
    as_pg find "$standby/data/pg_replslot" -mindepth 1 -delete
    as_pg rm -f "$standby/data/postmaster.pid" "$standby/data/postmaster.opts"
    as_pg touch "$standby/data/standby.signal"
    as_pg tee -a "$standby/data/postgresql.conf" >/dev/null <<CONF
port = $sport
unix_socket_directories = '$standby/sock'
primary_conninfo = 'host=127.0.0.1 port=$OUTBOXD_IT_PG_PORT user=postgres dbname=postgres application_name=outboxd_it_standby'
primary_slot_name = '$standby_slot'
hot_standby = on
hot_standby_feedback = on
sync_replication_slots = $slot_sync
synchronized_standby_slots = ''
CONF
    as_pg "$OUTBOXD_IT_PG_BINDIR/pg_ctl" -D "$standby/data" -l "$standby/postgres.log" -w -t 120 start >/dev/null \
      || { tail -n 30 "$standby/postgres.log" >&2; exit 1; }
    # Set after the copy, so that the standby (a primary once promoted) does not wait for a slot it lacks.
    primary_sql "ALTER SYSTEM SET synchronized_standby_slots = '$standby_slot'" >/dev/null
    primary_sql "SELECT pg_reload_conf()" >/dev/null
    for _ in $(seq 1 240); do
      [ "$(primary_sql "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'outboxd_it_standby' AND
                        state = 'streaming'")" = 1 ] && exit 0
      sleep 0.5
    done
    echo "standby-start: the standby does not stream from the primary; its log:" >&2
    tail -n 30 "$standby/postgres.log" >&2
    exit 1 ;;
  primary-kill) as_pg "$OUTBOXD_IT_PG_BINDIR/pg_ctl" -D "$OUTBOXD_IT_PGDATA" -m immediate -w -t 60 stop >/dev/null ;;
  standby-promote) as_pg "$OUTBOXD_IT_PG_BINDIR/pg_ctl" -D "$standby/data" -w -t 120 promote >/dev/null ;;
  standby-stop)
    if [ -d "$standby/data" ]; then
      as_pg "$OUTBOXD_IT_PG_BINDIR/pg_ctl" -D "$standby/data" -m immediate -w -t 60 stop >/dev/null 2>&1 || true
    fi
    rm -rf "$standby"
    if primary_running; then
      primary_sql "ALTER SYSTEM RESET synchronized_standby_slots" >/dev/null
      primary_sql "SELECT pg_reload_conf()" >/dev/null
      primary_sql "SELECT pg_drop_replication_slot('$standby_slot') FROM pg_replication_slots WHERE slot_name =
                   '$standby_slot'" >/dev/null
    fi ;;
  *) echo "unknown action $2" >&2; exit 2 ;;
esac
