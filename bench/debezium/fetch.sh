#!/usr/bin/env bash
# Fetches the Debezium Server distribution (io.debezium:debezium-server-dist, a tar.gz of about
# 780 MB on Maven Central) with Maven and unpacks it into the cache, once. Prints the folder that
# holds run.sh, the runner jar and lib/.
#   bench/debezium/fetch.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
cache=$(debezium_cache_dir)
if [ -f "$cache/.complete" ]; then
  echo "$cache/debezium-server"
  exit 0
fi
rm -rf "$cache"
mkdir -p "$cache"
echo "fetching Debezium Server $(debezium_version) with Maven into $cache" >&2
if ! mvn -q -B -f "$here/pom.xml" dependency:unpack@debezium-server -Ddbz.outputDirectory="$cache" \
      >"$cache/mvn.log" 2>&1; then
  cat "$cache/mvn.log" >&2
  echo "could not fetch Debezium Server with Maven (see above)" >&2
  exit 1
fi
if ! ls "$cache"/debezium-server/debezium-server-dist-*-runner.jar >/dev/null 2>&1; then
  echo "the Debezium Server archive did not hold debezium-server/*-runner.jar; see $cache" >&2
  exit 1
fi
touch "$cache/.complete"
echo "$cache/debezium-server"
