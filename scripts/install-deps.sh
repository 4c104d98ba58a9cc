#!/usr/bin/env bash
# Installs what outboxd needs from Debian's packages. One script for the README, CI and the
# Dockerfile, so that what CI proves is what the image runs.
#   scripts/install-deps.sh --build     compiler, CMake and the libraries' headers
#   scripts/install-deps.sh --runtime   the shared libraries the binary links (container image)
#   scripts/install-deps.sh --test      --build plus PostgreSQL, Java and Maven for the test services
set -euo pipefail

mode=${1:---test}

build_pkgs=(g++ cmake ninja-build pkg-config libpq-dev librdkafka-dev libyaml-cpp-dev libprotobuf-dev
            protobuf-compiler libfmt-dev libspdlog-dev prometheus-cpp-dev libcpp-httplib-dev catch2)
runtime_pkgs=(libpq5 librdkafka1 libyaml-cpp0.7 libprotobuf32 libfmt9 libspdlog1.10 libprometheus-cpp-core1.0
              libcpp-httplib0.11 ca-certificates curl)
test_pkgs=(postgresql postgresql-contrib maven default-jdk-headless curl procps bc openssl unzip xz-utils clang-19 libclang-rt-19-dev)

case "$mode" in
  --build) pkgs=("${build_pkgs[@]}") ;;
  --runtime) pkgs=("${runtime_pkgs[@]}") ;;
  --test) pkgs=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
  *) echo "usage: $0 --build|--runtime|--test" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#pkgs[@]} packages for $mode are installed"
  exit 0
fi

sudo=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null; then sudo="sudo"; else
    echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1
  fi
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
