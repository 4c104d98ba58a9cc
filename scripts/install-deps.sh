#!/usr/bin/env bash
# Installs what outboxd needs from Debian's packages. One script for the README, CI and the
# Dockerfile, so that what CI proves is what the image runs.
#   scripts/install-deps.sh --build     compiler, CMake and the libraries' headers
#   scripts/install-deps.sh --runtime   the shared libraries the binary links (container image)
#   scripts/install-deps.sh --test      --build plus PostgreSQL, Java and Maven for the test services
#
# librdkafka is the one exception to "a bookworm package": bookworm's 2.0.2 cannot complete SCRAM
# with Kafka 4 brokers, so --build and --test also build Debian 13 (trixie)'s librdkafka source
# package (with Debian's patches) against bookworm's libraries into OUTBOXD_DEPS_PREFIX (default
# /opt/outboxd/deps), once: a second run finds that version there and skips it. CMake looks in
# that prefix first. docs/dependencies.md says why, and how to drop this for Debian 13.
set -euo pipefail

mode=${1:---test}

rdkafka_version=2.8.0
deps_prefix=${OUTBOXD_DEPS_PREFIX:-/opt/outboxd/deps}

# librdkafka's build needs dpkg-dev (apt-get source), make and the headers of what it links:
# OpenSSL (TLS, SCRAM), Cyrus SASL (GSSAPI), zlib, zstd, lz4 and curl (OIDC).
rdkafka_build_pkgs=(dpkg-dev make xz-utils libssl-dev libsasl2-dev zlib1g-dev libzstd-dev liblz4-dev
                    libcurl4-openssl-dev)
build_pkgs=(g++ cmake ninja-build pkg-config libpq-dev libyaml-cpp-dev libprotobuf-dev
            protobuf-compiler libfmt-dev libspdlog-dev prometheus-cpp-dev libcpp-httplib-dev libmicrohttpd-dev catch2
            libsimdjson-dev libpcre2-dev
            "${rdkafka_build_pkgs[@]}")
# The runtime image copies librdkafka from the build stage; these are the libraries it links.
runtime_pkgs=(libpq5 libssl3 libsasl2-2 zlib1g libzstd1 liblz4-1 libcurl4 libyaml-cpp0.7 libprotobuf32
              libfmt9 libspdlog1.10 libprometheus-cpp-core1.0 libmicrohttpd12 libsimdjson14 libpcre2-8-0 ca-certificates curl)
test_pkgs=(postgresql postgresql-contrib maven default-jdk-headless curl procps bc openssl unzip xz-utils clang-19 libclang-rt-19-dev
           python3)

case "$mode" in
  --build) pkgs=("${build_pkgs[@]}") ;;
  --runtime) pkgs=("${runtime_pkgs[@]}") ;;
  --test) pkgs=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
  *) echo "usage: $0 --build|--runtime|--test" >&2; exit 2 ;;
esac

sudo=""
need_root() {
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null; then sudo="sudo"; else
      echo "install-deps: need root (or sudo) to $1" >&2; exit 1
    fi
  fi
}
export DEBIAN_FRONTEND=noninteractive

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#pkgs[@]} packages for $mode are installed"
else
  need_root "install: ${missing[*]}"
  echo "install-deps: installing ${missing[*]}"
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "install-deps: packages done"
fi
[ "$mode" = --runtime ] && exit 0

# --- librdkafka from Debian 13's source package -----------------------------------------------
installed=$(PKG_CONFIG_LIBDIR="$deps_prefix/lib/pkgconfig" pkg-config --modversion rdkafka 2>/dev/null || true)
if [ "$installed" = "$rdkafka_version" ] && [ -e "$deps_prefix/lib/librdkafka.so.1" ]; then
  echo "install-deps: librdkafka $rdkafka_version is installed in $deps_prefix"
  exit 0
fi

# The URI of the archive apt uses for bookworm (one-line sources.list or deb822 .sources), so
# that trixie's source comes from the same mirror.
debian_uri() {
  local uri=""
  if [ -f /etc/apt/sources.list ]; then
    uri=$(awk '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
                if ($(i + 1) == "bookworm") { print $i; exit } }' /etc/apt/sources.list)
  fi
  if [ -z "$uri" ]; then
    uri=$(awk '/^[ \t]*$/ { if (s ~ / bookworm( |$)/ && u != "") { print u; exit } s = ""; u = "" }
               tolower($1) == "suites:" { $1 = ""; s = $0 " " } tolower($1) == "uris:" { u = $2 }
               END { if (s ~ / bookworm( |$)/ && u != "") print u }' /etc/apt/sources.list.d/*.sources 2>/dev/null \
          | head -n 1)
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

need_root "add trixie's deb-src line and install librdkafka into $deps_prefix"
# Source packages only: "Types: deb-src", so apt can never install a binary package from trixie.
src_list=/etc/apt/sources.list.d/outboxd-trixie-src.sources
if [ ! -f "$src_list" ]; then
  echo "install-deps: adding $src_list (deb-src only)"
  printf 'Types: deb-src\nURIs: %s\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$(debian_uri)" | $sudo tee "$src_list" >/dev/null
  $sudo apt-get update -qq
fi
work=$(mktemp -d /tmp/outboxd-librdkafka.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "install-deps: building librdkafka $rdkafka_version (trixie's source package) into $deps_prefix"
(cd "$work" && apt-get source -qq "librdkafka/trixie" >apt-source.log 2>&1) \
  || { cat "$work/apt-source.log" >&2; echo "install-deps: apt-get source librdkafka/trixie failed" >&2; exit 1; }
srcdir=$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'librdkafka-*' | head -n 1)
version=$(cd "$srcdir" && dpkg-parsechangelog -S Version)
case "$version" in
  "$rdkafka_version"-*) ;;
  *) echo "install-deps: trixie's librdkafka is $version, expected $rdkafka_version: update rdkafka_version here and in docs/dependencies.md" >&2; exit 1 ;;
esac
(cd "$srcdir" \
  && ./configure --prefix="$deps_prefix" --disable-debug-symbols >"$work/configure.log" 2>&1 \
  && make -j "$(nproc)" libs >"$work/make.log" 2>&1 \
  && $sudo make -C src install >>"$work/make.log" 2>&1 \
  && $sudo make -C src-cpp install >>"$work/make.log" 2>&1) \
  || { tail -n 40 "$work"/configure.log "$work"/make.log >&2; echo "install-deps: building librdkafka failed" >&2; exit 1; }
echo "install-deps: librdkafka $version installed in $deps_prefix"
