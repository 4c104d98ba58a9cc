#!/usr/bin/env bash
# Runs a command with the environment written by up.sh: run-with-env.sh DIR COMMAND...
set -euo pipefail
dir=$1
shift
if [ ! -f "$dir/env.sh" ]; then
  echo "no $dir/env.sh: the services fixture (it_services_up) did not run or failed" >&2
  exit 1
fi
. "$dir/env.sh"
exec "$@"
