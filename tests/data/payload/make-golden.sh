#!/usr/bin/env bash
# Writes cases/NAME.bin for each cases/NAME.txtpb with protoc --encode: the bytes that the
# typed-payload conversion of cases/NAME.json must produce (tests/payload_test.cpp).
#   tests/data/payload/make-golden.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
declare -A type=([user_registered]=outboxd.test.v1.UserRegistered)
for txt in cases/*.txtpb; do
  name=$(basename "$txt" .txtpb)
  protoc -I. -I/usr/include --encode="${type[$name]:-outboxd.test.v1.Everything}" events_test.proto \
    <"$txt" >"cases/$name.bin"
  echo "cases/$name.bin: $(wc -c <"cases/$name.bin") bytes"
done
