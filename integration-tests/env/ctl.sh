#!/usr/bin/env bash
# Faults for the integration tests, on the services up.sh started under DIR:
#   ctl.sh DIR kafka-stop | kafka-start | pg-restart | pg-stop | pg-start
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
  *) echo "unknown action $2" >&2; exit 2 ;;
esac
