#!/usr/bin/env bash
# Builds the container image with podman and runs outboxd's integration scenario through it:
# the image streams outbox rows from a real PostgreSQL into a real Kafka broker, answers
# /healthz and /readyz, runs as a non-root user, declares a HEALTHCHECK, and on SIGTERM
# (podman stop) confirms what Kafka acknowledged to the slot and exits 0.
#
#   scripts/container-test.sh
#
# Needs root (or sudo) for apt-get, debootstrap and rootful podman. No Docker engine and no
# registry: when podman has no docker.io/library/debian:bookworm-slim, the script makes it with
# debootstrap from the Debian mirror apt already uses and caches the root filesystem as a
# tarball under ~/.cache/outboxd, so later runs skip that step.
# Environment: OUTBOXD_IMAGE (default outboxd:test), OUTBOXD_PODMAN_STORAGE_DRIVER (default:
# podman's own, overlay; set vfs where overlay does not mount), BUILD_DIR (for outboxd-consume),
# OUTBOXD_CACHE_DIR.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
cache=${OUTBOXD_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/outboxd}
image=${OUTBOXD_IMAGE:-outboxd:test}
base_image=docker.io/library/debian:bookworm-slim
events=5
started=$(date +%s)

sudo=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null; then sudo="sudo"; else echo "container-test: needs root or sudo" >&2; exit 1; fi
fi

# Storage: podman's default (overlay, in /var/lib/containers/storage) works on this project's
# machines. OUTBOXD_PODMAN_STORAGE_DRIVER=vfs is the fallback where overlay cannot mount; it
# gets a store of its own, because one store cannot change its driver.
podman_global=()
if [ -n "${OUTBOXD_PODMAN_STORAGE_DRIVER:-}" ]; then
  podman_global+=(--storage-driver "$OUTBOXD_PODMAN_STORAGE_DRIVER"
                  --root "/var/lib/containers/storage-$OUTBOXD_PODMAN_STORAGE_DRIVER"
                  --runroot "/run/containers/storage-$OUTBOXD_PODMAN_STORAGE_DRIVER")
fi
# DISABLE_HC_SYSTEMD: podman schedules a container's periodic health checks with systemd timers,
# and without systemd (as here) it logs an error on every run and stop; the check is run once
# below with `podman healthcheck run` instead.
pm() { $sudo env DISABLE_HC_SYSTEMD=true podman "${podman_global[@]}" "$@"; }

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

results=()
failed=0
pass() { results+=("PASS  $*"); echo "ok: $*"; }
fail() { results+=("FAIL  $*"); failed=1; echo "FAILED: $*" >&2; }

work=""
rootfs=""
container=""
summary() {
  local code=$1
  echo
  echo "== container test summary ($(( $(date +%s) - started ))s)"
  for r in "${results[@]}"; do echo "  $r"; done
  if [ "$code" = 0 ]; then echo "container test: PASS"; else echo "container test: FAIL"; fi
}
cleanup() {
  local code=$?
  [ "$code" != 0 ] && [ "$failed" = 0 ] && results+=("FAIL  stopped early (exit $code); see the output above")
  [ "$failed" != 0 ] && code=1
  if [ -n "$container" ]; then
    if [ "$code" != 0 ]; then
      echo "--- container log ($container), last 40 lines" >&2
      pm logs "$container" 2>&1 | tail -n 40 >&2 || true
    fi
    pm rm -f -t 5 "$container" >/dev/null 2>&1 || true
  fi
  if [ -n "$work" ]; then
    "$root/integration-tests/env/down.sh" "$work/services" >/dev/null 2>&1 || true
    rm -rf "$work"
  fi
  [ -n "$rootfs" ] && $sudo rm -rf "$rootfs" "$rootfs.log"
  summary "$code"
  exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- tools ------------------------------------------------------------------------------
step "podman, buildah, debootstrap and runc"
missing=()
for p in podman buildah debootstrap runc; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
pm --version
echo "storage driver: $(pm info --format '{{.Store.GraphDriverName}}'), runtime: runc, cgroups $(pm info --format '{{.Host.CgroupsVersion}}')"
# PostgreSQL, Java and Maven for the services; the compiler for outboxd-consume.
"$root/scripts/install-deps.sh" --test
if [ ! -x "$build/outboxd-consume" ]; then
  "$root/scripts/build.sh" --target outboxd-consume
fi

# --- base image -------------------------------------------------------------------------
# Prints the URI of the Debian archive that apt uses for bookworm (suite SUITE), from
# /etc/apt/sources.list (one-line format) or /etc/apt/sources.list.d/*.sources (deb822).
apt_uri() {
  local suite=$1 uri=""
  if [ -f /etc/apt/sources.list ]; then
    uri=$(awk -v s="$suite" '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
                              if ($(i + 1) == s) { print $i; exit } }' /etc/apt/sources.list)
  fi
  if [ -z "$uri" ]; then
    for f in /etc/apt/sources.list.d/*.sources; do
      [ -f "$f" ] || continue
      uri=$(awk -v s="$suite" '
        function flush() { if (types ~ /(^| )deb( |$)/ && enabled != "no" && (" " suites " ") ~ (" " s " ") && uris != "") { split(uris, u, " "); print u[1]; found = 1; exit } types = ""; suites = ""; uris = ""; enabled = "" }
        /^[ \t]*$/ { flush(); next }
        /^#/ { next }
        tolower($1) == "types:" { $1 = ""; types = $0 }
        tolower($1) == "suites:" { $1 = ""; suites = $0 }
        tolower($1) == "uris:" { $1 = ""; uris = $0 }
        tolower($1) == "enabled:" { enabled = tolower($2) }
        END { if (!found) flush() }' "$f")
      [ -n "$uri" ] && break
    done
  fi
  echo "${uri%/}"
}

step "base image $base_image"
if pm image exists "$base_image"; then
  echo "podman already has $base_image"
else
  tarball="$cache/debian-bookworm-minbase-rootfs.tar.gz"
  if [ ! -f "$tarball" ]; then
    mirror=$(apt_uri bookworm)
    mirror=${mirror:-http://deb.debian.org/debian}
    security=$(apt_uri bookworm-security)
    echo "making a bookworm minbase root filesystem with debootstrap from $mirror"
    rootfs=$(mktemp -d /tmp/outboxd-rootfs.XXXXXX)
    $sudo debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1 \
      || { tail -n 30 "$rootfs.log" >&2; rm -f "$rootfs.log"; exit 1; }
    rm -f "$rootfs.log"
    # The same archives as the host inside the image, and no package files kept in layers.
    {
      echo "deb $mirror bookworm main"
      echo "deb $mirror bookworm-updates main"
      [ -n "$security" ] && echo "deb $security bookworm-security main"
    } | $sudo tee "$rootfs/etc/apt/sources.list" >/dev/null
    $sudo tee "$rootfs/etc/apt/apt.conf.d/docker-clean" >/dev/null <<'APT'
// Image builds: delete downloaded .deb files after each dpkg run and keep no package caches,
// so that every RUN layer holds only what was installed.
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT
    $sudo tee "$rootfs/etc/apt/apt.conf.d/docker-no-recommends" >/dev/null <<'APT'
APT::Install-Recommends "false";
APT
    # Slim, like the registry's image: no documentation, manual pages or translations.
    $sudo tee "$rootfs/etc/dpkg/dpkg.cfg.d/slim-image" >/dev/null <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
DPKG
    $sudo find "$rootfs/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete
    $sudo find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
    $sudo rm -rf "$rootfs/usr/share/man/"* "$rootfs/usr/share/info/"* "$rootfs/usr/share/groff/"* \
      "$rootfs/usr/share/lintian/"* "$rootfs/usr/share/locale/"*
    $sudo find "$rootfs/var/lib/apt/lists" "$rootfs/var/cache/apt" -type f -delete
    $sudo rm -rf "$rootfs/var/log/"*.log "$rootfs/var/log/apt/"* "$rootfs/tmp/"*
    mkdir -p "$cache"
    $sudo tar --numeric-owner -C "$rootfs" -czf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    $sudo rm -rf "$rootfs"
    rootfs=""
  else
    echo "using the cached root filesystem $tarball"
  fi
  pm import --change 'CMD ["bash"]' "$tarball" "$base_image" >/dev/null
  echo "imported $base_image"
fi

# --- image ------------------------------------------------------------------------------
step "building $image from the Dockerfile"
# --format docker: the OCI image format has no HEALTHCHECK, and buildah drops it with a warning.
# The build stage gets a tag of its own so that the prune below keeps it as the next run's cache
# and removes only the untagged outboxd images that earlier builds left behind.
build_args=(--pull=never --runtime runc --network host --format docker)
build_start=$(date +%s)
(cd "$root" && pm build "${build_args[@]}" --target build -t "$image-build" . \
  && pm build "${build_args[@]}" -t "$image" .)
# (Removing an image can leave its parent dangling, hence a few passes.)
for _ in 1 2 3 4 5; do
  [ -n "$(pm image prune -f --filter label=org.opencontainers.image.title=outboxd 2>/dev/null)" ] || break
done
pass "image $image built ($(( $(date +%s) - build_start ))s)"
# The image must run the librdkafka this checkout builds and tests with, not Debian 12's.
want=$(PKG_CONFIG_LIBDIR="${OUTBOXD_DEPS_PREFIX:-/opt/outboxd/deps}/lib/pkgconfig" pkg-config --modversion rdkafka \
       2>/dev/null || echo "?")
got=$(pm run --rm --runtime runc --network none --ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" \
       --ulimit nproc=32768:32768 "$image" --version 2>&1 || true)
if [[ "$got" == *"(librdkafka $want)"* ]]; then
  pass "the image's outboxd runs with librdkafka $want: $got"
else
  fail "the image's outboxd --version says '$got', expected librdkafka $want"
fi

# --- services ---------------------------------------------------------------------------
step "starting PostgreSQL (wal_level=logical) and a single-node Kafka broker"
work=$(mktemp -d /tmp/outboxd-container-test.XXXXXX)
chmod 755 "$work"
OUTBOXD_IT_SASL=0 "$root/integration-tests/env/up.sh" "$work/services"
. "$work/services/env.sh"
sql() { psql -X -q -v ON_ERROR_STOP=1 "host=127.0.0.1 port=$OUTBOXD_IT_PG_PORT user=postgres dbname=${DB:-shop}" "$@"; }
DB=postgres sql -c "CREATE DATABASE shop"
sql <<'SQL'
CREATE TABLE outbox (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  aggregatetype varchar(255) NOT NULL,
  aggregateid varchar(255) NOT NULL,
  type varchar(255) NOT NULL,
  payload jsonb NOT NULL
);
SQL

# --- outboxd in the container -----------------------------------------------------------
step "running outboxd in the container"
metrics_port=$(. "$root/integration-tests/env/lib.sh"; free_port)
cat >"$work/config.yaml" <<YAML
source:
  postgres:
    dsn: "host=127.0.0.1 port=$OUTBOXD_IT_PG_PORT dbname=shop user=postgres"
sink:
  kafka:
    brokers: "$OUTBOXD_IT_KAFKA_BROKERS"
metrics:
  listen: "127.0.0.1:$metrics_port"
YAML
chmod 644 "$work/config.yaml"
nofile=$(ulimit -Hn)
container=outboxd-container-test-$$
# runc, not crun (crun fails on this host's hybrid cgroups); explicit ulimits because podman's
# defaults exceed what root may set here. OUTBOXD_HEALTHZ_URL points the image's HEALTHCHECK at
# the port configured below.
pm run -d --name "$container" --runtime runc --network host \
  --ulimit "nofile=$nofile:$nofile" --ulimit nproc=32768:32768 \
  -e "OUTBOXD_HEALTHZ_URL=http://127.0.0.1:$metrics_port/healthz" \
  -v "$work/config.yaml:/etc/outboxd/config.yaml:ro" "$image" >/dev/null
echo "container $container started; metrics on 127.0.0.1:$metrics_port"

ready=0
for _ in $(seq 1 150); do
  if curl -fsS -o /dev/null "http://127.0.0.1:$metrics_port/readyz" 2>/dev/null; then ready=1; break; fi
  [ "$(pm inspect --format '{{.State.Running}}' "$container")" = true ] || break
  sleep 0.2
done
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$metrics_port/healthz" || true)
[ "$code" = 200 ] && pass "GET /healthz answers 200" || fail "GET /healthz answered '$code', not 200"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$metrics_port/readyz" || true)
[ "$ready" = 1 ] && [ "$code" = 200 ] && pass "GET /readyz answers 200 (streaming)" \
  || fail "GET /readyz answered '$code', not 200 (not streaming within 30s)"

uid=$(pm exec "$container" id -u 2>/dev/null || echo "?")
user=$(pm inspect --format '{{.Config.User}}' "$container" 2>/dev/null || echo "?")
if [ "$uid" != "?" ] && [ "$uid" != 0 ]; then
  pass "runs as a non-root user (uid $uid, image USER '$user')"
else
  fail "the container's user is '$uid' (image USER '$user'), expected non-root"
fi

hc=$(pm image inspect --format '{{if .HealthCheck}}{{range .HealthCheck.Test}}{{.}} {{end}}{{end}}' "$image" 2>/dev/null || true)
if [[ "$hc" == *healthz* ]]; then
  pass "HEALTHCHECK declared: ${hc% }"
else
  fail "no HEALTHCHECK on /healthz in the image (inspect: $hc)"
fi
if out=$(pm healthcheck run "$container" 2>&1); then
  pass "podman healthcheck run: ${out:-healthy}"
else
  fail "podman healthcheck run failed: $out"
fi

step "inserting $events outbox rows and reading them back from Kafka"
ids=()
for i in $(seq 1 "$events"); do
  id=$(cat /proc/sys/kernel/random/uuid)
  ids+=("$id")
  sql -c "INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload)
          VALUES ('$id', 'user', 'user-$i', 'UserRegistered', '{\"n\": $i}')"
done
if "$build/outboxd-consume" --brokers "$OUTBOXD_IT_KAFKA_BROKERS" --topic outbox.event.user \
     --count "$events" --timeout-ms 60000 >"$work/consumed.txt"; then
  sed 's/^/  /' "$work/consumed.txt"
  missing_ids=0
  for id in "${ids[@]}"; do grep -q "id=$id " "$work/consumed.txt" || missing_ids=$((missing_ids + 1)); done
  if [ "$missing_ids" = 0 ]; then
    pass "$events events streamed to Kafka topic outbox.event.user, every inserted id present"
  else
    fail "$missing_ids of $events inserted ids missing from Kafka"
  fi
else
  cat "$work/consumed.txt"
  fail "fewer than $events events arrived in Kafka within 60s"
fi
published=$(curl -fsS "http://127.0.0.1:$metrics_port/metrics" 2>/dev/null \
  | awk '$1 == "outboxd_events_published_total" { print int($2) }')
[ "${published:-0}" -ge "$events" ] && pass "metrics: outboxd_events_published_total $published" \
  || fail "metrics: outboxd_events_published_total is '${published:-}', expected >= $events"

step "podman stop (SIGTERM)"
stop_start=$(date +%s)
pm stop -t 30 "$container" >/dev/null
stop_secs=$(( $(date +%s) - stop_start ))
exit_code=$(pm inspect --format '{{.State.ExitCode}}' "$container")
[ "$exit_code" = 0 ] && pass "exit code 0 after SIGTERM (stopped in ${stop_secs}s)" \
  || fail "exit code $exit_code after SIGTERM (stopped in ${stop_secs}s)"
pm logs "$container" >"$work/outboxd.log" 2>&1 || true
tail -n 4 "$work/outboxd.log" | sed 's/^/  outboxd: /'
line=$(grep -E 'confirmed [0-9A-F]+/[0-9A-F]+ to slot' "$work/outboxd.log" | tail -n 1 || true)
if [ -n "$line" ]; then
  lsn=$(sed -E 's/.*confirmed ([0-9A-F]+\/[0-9A-F]+) to slot.*/\1/' <<<"$line")
  slot_lsn=$(sql -At -c "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'outboxd'")
  if [ "$slot_lsn" = "$lsn" ]; then
    pass "final log line 'confirmed $lsn to slot outboxd' matches the slot's confirmed_flush_lsn"
  else
    fail "log says confirmed $lsn, but the slot's confirmed_flush_lsn is '$slot_lsn'"
  fi
else
  fail "no 'confirmed ... to slot' line in the container's log"
fi
