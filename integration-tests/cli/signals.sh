#!/usr/bin/env bash
# SIGHUP is logged and ignored (the process keeps running); SIGTERM then stops it with exit 0.
# A SIGTERM that comes before the configuration is read is a stop request too: exit 0, not death
# by the signal's default action (a supervisor stopping a relay it has just started).
# --version names the commit and the libraries. No services: the database is unreachable.
set -uo pipefail
bin=$1
dir=$2
fail() { echo "FAIL: $*"; [ -f "$log" ] && cat "$log"; exit 1; }
log=$(mktemp)
fifo_dir=$(mktemp -d)
trap 'rm -f "$log"; rm -rf "$fifo_dir"' EXIT
version=$("$bin" --version) || fail "--version exited $?"
echo "$version"
echo "$version" | grep -Eq "^outboxd [0-9]+\.[0-9]+\.[0-9]+ .*\(commit ([0-9a-f]+|unknown)\)" || fail "--version names no commit"
echo "$version" | grep -q "^librdkafka [0-9]" || fail "--version names no librdkafka"
echo "$version" | grep -q "^libpq [0-9]" || fail "--version names no libpq"

"$bin" --config "$dir/signals.yaml" 2>"$log" &
pid=$!
for _ in $(seq 50); do grep -q "starting" "$log" && break; sleep 0.1; done
grep -q "starting" "$log" || fail "outboxd did not start"
kill -HUP "$pid"
sleep 1
kill -0 "$pid" 2>/dev/null || fail "SIGHUP ended the process"
grep -q "SIGHUP received: only payload.protobuf.descriptor_set is reloaded" "$log" || fail "no log line for SIGHUP"
grep '"level":"info"' "$log" | grep -q '"slot":"outboxd"' || fail "JSON lines carry no slot field"
kill -TERM "$pid"
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; fail "SIGTERM did not stop the process within 10 s"; fi
wait "$pid"
code=$?
[ "$code" = 0 ] || fail "exit code $code after SIGTERM, expected 0"

# The configuration on a named pipe that nobody writes: outboxd waits in open(2) for a writer.
mkfifo "$fifo_dir/config.yaml"
"$bin" --config "$fifo_dir/config.yaml" 2>"$log" &
pid=$!
exe=$(readlink -f "$bin")
waiting=0
started=0
for _ in $(seq 200); do
  if [ "$(readlink -f "/proc/$pid/exe" 2>/dev/null)" = "$exe" ]; then
    started=1
    # Blocked opening the pipe (the kernel's FIFO open waits in wait_for_partner); the dynamic
    # loader's own opens never wait there.
    case "$(cat "/proc/$pid/wchan" 2>/dev/null)" in
      wait_for_partner|fifo_open) waiting=1; break ;;
    esac
  fi
  sleep 0.05
done
# A kernel that does not tell wchan: by now (10 s) the process waits on the pipe.
[ "$waiting" = 1 ] || [ "$started" = 0 ] || waiting=1
[ "$waiting" = 1 ] || { kill -KILL "$pid" 2>/dev/null; fail "outboxd did not come to wait for its configuration"; }
kill -TERM "$pid"
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; fail "SIGTERM while the configuration was read did not stop the process within 10 s"; fi
wait "$pid"
code=$?
[ "$code" = 0 ] || fail "exit code $code after a SIGTERM while the configuration was read, expected 0"
grep -q "stop requested while the configuration was read" "$log" || fail "no message for the stop during start-up"
echo "ok"
