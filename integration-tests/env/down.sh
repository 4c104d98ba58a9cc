#!/usr/bin/env bash
# Stops what up.sh started under DIR and removes DIR.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
dir=${1:?usage: down.sh DIR}
[ -d "$dir" ] || exit 0
stop_broker "$dir/kafka"
stop_broker "$dir/kafka-sasl"
if [ -f "$dir/pgdata/postmaster.pid" ]; then
  bindir=$( (. "$dir/env.sh" 2>/dev/null; echo "${OUTBOXD_IT_PG_BINDIR:-}") )
  [ -n "$bindir" ] || bindir=$(pg_bindir)
  as_pg "$bindir/pg_ctl" -D "$dir/pgdata" -m immediate -w stop >/dev/null 2>&1
fi
[ "${OUTBOXD_KEEP_IT_DIR:-0}" = 1 ] || rm -rf "$dir"
exit 0
