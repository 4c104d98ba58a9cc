#!/usr/bin/env bash
# Captures golden pgoutput messages from a throwaway PostgreSQL cluster.
#
# Starts a private cluster in a temp dir (as the `postgres` user when run as root), runs a
# fixed SQL scenario, reads the decoded changes back through
# pg_logical_slot_peek_binary_changes() with the pgoutput plugin and writes one hex file per
# pgoutput message under tests/data/pgoutput/. Re-running rewrites the files; LSNs, xids and
# timestamps change from run to run, the structure does not.
#
# From PostgreSQL 16 on it also reads the streamed transactions with protocol 4 and streaming
# 'parallel' (Stream Abort then carries the abort LSN and time) and checks that protocol 4
# without streaming sends the same bytes as protocol 1.
#
# Usage: tests/data/capture-golden.sh [PG_BINDIR | MAJOR]
#   default /usr/lib/postgresql/15/bin, written to tests/data/pgoutput/; MAJOR (14..18) takes the
#   server integration-tests/env/lib.sh starts for OUTBOXD_PG_VERSION=MAJOR (fetched once).
#   Servers other than 15 are written to tests/data/pgoutput/pgMAJOR/.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PG_BINDIR=${1:-/usr/lib/postgresql/15/bin}
if [[ "$PG_BINDIR" =~ ^[0-9]+$ ]]; then
    . "$HERE/../../integration-tests/env/lib.sh"
    PG_BINDIR=$(OUTBOXD_PG_VERSION=$PG_BINDIR pg_bindir)
fi
MAJOR=$("$PG_BINDIR/postgres" --version | sed -E 's/.* ([0-9]+)[.].*/\1/')
if [ "$MAJOR" = 15 ]; then OUT="$HERE/pgoutput"; else OUT="$HERE/pgoutput/pg$MAJOR"; fi
# The builds fetched from Maven Central have no psql: Debian's 15 speaks to newer servers.
PSQL="$PG_BINDIR/psql"
[ -x "$PSQL" ] || PSQL=/usr/lib/postgresql/15/bin/psql

as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

free_port() {
    local p
    for p in $(seq 54320 54400); do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    echo "no free port found" >&2
    return 1
}

TMP=$(mktemp -d /tmp/outboxd-golden.XXXXXX)
if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$TMP"
fi
PORT=$(free_port)
cd "$TMP"

cleanup() {
    as_pg "$PG_BINDIR/pg_ctl" -D "$TMP/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$TMP"
}
trap cleanup EXIT

as_pg "$PG_BINDIR/initdb" -D "$TMP/data" -U postgres --auth=trust -E UTF8 --no-locale >"$TMP/initdb.log"
cat >>"$TMP/data/postgresql.conf" <<EOF
port = $PORT
listen_addresses = ''
unix_socket_directories = '$TMP'
wal_level = logical
max_replication_slots = 10
max_wal_senders = 10
max_prepared_transactions = 10
logical_decoding_work_mem = 64kB
fsync = off
EOF
as_pg "$PG_BINDIR/pg_ctl" -D "$TMP/data" -l "$TMP/server.log" -w start >/dev/null

psql_() {
    as_pg "$PSQL" -X -q -v ON_ERROR_STOP=1 -h "$TMP" -p "$PORT" -U postgres -d postgres "$@"
}

# --- scenario -----------------------------------------------------------------------------
psql_ <<'SQL'
CREATE TABLE outbox (
    id uuid PRIMARY KEY,
    aggregatetype text NOT NULL,
    aggregateid text NOT NULL,
    type text NOT NULL,
    payload jsonb
);
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE person (id int PRIMARY KEY, name text, current_mood mood, notes text);
ALTER TABLE person REPLICA IDENTITY FULL;
ALTER TABLE person ALTER COLUMN notes SET STORAGE EXTERNAL;
CREATE TABLE bulk (id int PRIMARY KEY, filler text);
CREATE PUBLICATION pub FOR ALL TABLES;

SELECT 'init' FROM pg_create_logical_replication_slot('slot', 'pgoutput');
SELECT 'init' FROM pg_replication_origin_create('upstream');
SQL

psql_ <<'SQL'
BEGIN;
INSERT INTO outbox VALUES
  ('3f2504e0-4f89-11d3-9a0c-0305e82c3301', 'order', '42', 'OrderCreated', '{"total": 12.5, "items": [1, 2]}');
INSERT INTO outbox VALUES
  ('3f2504e0-4f89-11d3-9a0c-0305e82c3302', 'order', '43', 'OrderNoted', NULL);
COMMIT;

UPDATE outbox SET type = 'OrderUpdated' WHERE id = '3f2504e0-4f89-11d3-9a0c-0305e82c3301';
UPDATE outbox SET id = '3f2504e0-4f89-11d3-9a0c-0305e82c3303' WHERE id = '3f2504e0-4f89-11d3-9a0c-0305e82c3302';
DELETE FROM outbox WHERE id = '3f2504e0-4f89-11d3-9a0c-0305e82c3301';
TRUNCATE outbox;

BEGIN;
SELECT 'msg' FROM pg_logical_emit_message(true, 'outboxd', 'transactional hello');
INSERT INTO outbox VALUES ('3f2504e0-4f89-11d3-9a0c-0305e82c3304', 'order', '44', 'WithMessage', '{}');
COMMIT;
SELECT 'msg' FROM pg_logical_emit_message(false, 'outboxd', 'non-transactional hello');

ALTER TABLE outbox ADD COLUMN tenant text;
INSERT INTO outbox VALUES ('3f2504e0-4f89-11d3-9a0c-0305e82c3305', 'order', '45', 'AfterAlter', '{"a": 1}', 'acme');

INSERT INTO person VALUES (1, 'ann', 'happy', repeat('0123456789abcdef', 500));
UPDATE person SET name = 'anna' WHERE id = 1;
DELETE FROM person WHERE id = 1;

SELECT pg_replication_origin_session_setup('upstream');
BEGIN;
SELECT pg_replication_origin_xact_setup('0/1234ABCD', now());
INSERT INTO outbox VALUES ('3f2504e0-4f89-11d3-9a0c-0305e82c3306', 'order', '46', 'FromOrigin', NULL, NULL);
COMMIT;
SELECT pg_replication_origin_session_reset();
SQL
MAIN_END=$(psql_ -A -t -c "SELECT pg_current_wal_lsn()")
psql_ -c "SELECT 'init' FROM pg_create_logical_replication_slot('slot_stream', 'pgoutput')" >/dev/null
if [ "$MAJOR" -ge 16 ]; then
    psql_ -c "SELECT 'init' FROM pg_create_logical_replication_slot('slot_parallel', 'pgoutput')" >/dev/null
fi

# Large transactions, streamed once they pass logical_decoding_work_mem (64kB).
psql_ <<'SQL'
BEGIN;
INSERT INTO bulk SELECT g, repeat('x', 200) FROM generate_series(1, 2000) g;
COMMIT;
BEGIN;
INSERT INTO bulk SELECT g, repeat('y', 200) FROM generate_series(10001, 12000) g;
ROLLBACK;
BEGIN;
INSERT INTO bulk SELECT g, repeat('z', 200) FROM generate_series(20001, 22000) g;
SAVEPOINT sp;
INSERT INTO bulk SELECT g, repeat('w', 200) FROM generate_series(30001, 30010) g;
ROLLBACK TO SAVEPOINT sp;
COMMIT;
BEGIN;
INSERT INTO bulk SELECT g, repeat('s', 200) FROM generate_series(50001, 50010) g;
SAVEPOINT big;
INSERT INTO bulk SELECT g, repeat('t', 200) FROM generate_series(60001, 62000) g;
ROLLBACK TO SAVEPOINT big;
INSERT INTO bulk VALUES (70001, 'after the savepoint');
COMMIT;
SQL
STREAM_END=$(psql_ -A -t -c "SELECT pg_current_wal_lsn()")
if [ "$MAJOR" -ge 15 ]; then
    psql_ -c "SELECT 'init' FROM pg_create_logical_replication_slot('slot_2pc', 'pgoutput', false, true)" >/dev/null
fi

# Two-phase commit: one small prepared transaction committed, one rolled back, one large one
# (streamed, then prepared).
psql_ <<'SQL'
BEGIN;
INSERT INTO outbox VALUES ('3f2504e0-4f89-11d3-9a0c-0305e82c3307', 'order', '47', 'Prepared', NULL, NULL);
PREPARE TRANSACTION 'gid-commit';
COMMIT PREPARED 'gid-commit';
BEGIN;
INSERT INTO outbox VALUES ('3f2504e0-4f89-11d3-9a0c-0305e82c3308', 'order', '48', 'RolledBack', NULL, NULL);
PREPARE TRANSACTION 'gid-rollback';
ROLLBACK PREPARED 'gid-rollback';
BEGIN;
INSERT INTO bulk SELECT g, repeat('p', 200) FROM generate_series(40001, 42000) g;
PREPARE TRANSACTION 'gid-stream';
COMMIT PREPARED 'gid-stream';
SQL

# Raw CopyData frames, straight from a walsender (START_REPLICATION over libpq).
psql_ -c "SELECT 'init' FROM pg_create_logical_replication_slot('slot_frames', 'pgoutput')" >/dev/null
psql_ <<'SQL'
INSERT INTO outbox VALUES ('3f2504e0-4f89-11d3-9a0c-0305e82c3309', 'order', '49', 'OverTheWire', '{"wire": true}', 'acme');
SQL

# --- read back ----------------------------------------------------------------------------
peek() {
    local slot=$1
    local upto=$2
    shift 2
    local opts=""
    for o in "$@"; do
        opts+=", '$o'"
    done
    psql_ -A -t -F ' ' -c \
        "SELECT lsn, xid, encode(data, 'hex') FROM pg_logical_slot_peek_binary_changes('$slot', $upto, NULL$opts)"
}

mkdir -p "$OUT"
rm -f "$OUT"/*.hex "$OUT/MANIFEST.txt"

peek slot "'$MAIN_END'" proto_version 1 publication_names pub messages true >"$TMP/v1.txt"
peek slot "'$MAIN_END'" proto_version 1 publication_names pub messages true binary true >"$TMP/v1-binary.txt"
peek slot "'$MAIN_END'" proto_version 2 publication_names pub messages true >"$TMP/v2.txt"
peek slot_stream "'$STREAM_END'" proto_version 2 publication_names pub messages true streaming on >"$TMP/v2-stream.txt"
# Two-phase decoding through pgoutput needs protocol 3 (PostgreSQL 15+).
if [ "$MAJOR" -ge 15 ]; then
    peek slot_2pc NULL proto_version 3 publication_names pub messages true two_phase on streaming on >"$TMP/v3-2pc.txt"
fi
: >"$TMP/v4.txt"
: >"$TMP/v4-parallel.txt"
if [ "$MAJOR" -ge 16 ]; then
    peek slot "'$MAIN_END'" proto_version 4 publication_names pub messages true >"$TMP/v4.txt"
    peek slot_parallel "'$STREAM_END'" proto_version 4 publication_names pub messages true streaming parallel \
        >"$TMP/v4-parallel.txt"
fi

python3 - "$TMP" "$OUT" "$MAJOR" <<'PY'
import sys, os, collections

tmp, out, major = sys.argv[1], sys.argv[2], int(sys.argv[3])

def rows(name):
    with open(os.path.join(tmp, name)) as f:
        for line in f:
            line = line.strip()
            if line:
                lsn, xid, hexdata = line.split(' ')
                yield lsn, xid, hexdata

manifest = []

# PostgreSQL 14 sends Begin and Commit for a transaction without published changes (15 skips
# them): set them apart, so that the main scenario's sequence is the same on every server.
empty_pairs = []
def main_rows(name):
    data = list(rows(name))
    out, i = [], 0
    while i < len(data):
        if (i + 1 < len(data) and data[i][2].startswith('42') and data[i + 1][2].startswith('43')):
            empty_pairs.append((data[i], data[i + 1]))
            i += 2
            continue
        out.append(data[i])
        i += 1
    return out

def save(fname, lsn, xid, hexdata, what):
    with open(os.path.join(out, fname), 'w') as f:
        f.write(hexdata + '\n')
    manifest.append((fname, lsn, xid, what))

# Version 1 and 2: name each message by its order within the scenario.
def capture_main(src, prefix, names):
    data = main_rows(src)
    if len(data) != len(names):
        raise SystemExit(f"{src}: expected {len(names)} messages, got {len(data)}: "
                         + ' '.join(chr(int(h[:2], 16)) for _, _, h in data))
    for (lsn, xid, h), n in zip(data, names):
        if n is None:
            continue
        save(f"{prefix}-{n}.hex", lsn, xid, h, n)
    return data

main_names = [
    # BEGIN; INSERT x2; COMMIT
    'begin', 'relation-outbox', 'insert', 'insert-null', 'commit',
    # UPDATE (non-key)
    None, 'update', None,
    # UPDATE (key changes -> old key tuple 'K')
    None, 'update-key', None,
    # DELETE
    None, 'delete', None,
    # TRUNCATE (new relfilenode: the relation is sent again)
    None, 'relation-outbox-before-truncate', 'truncate', None,
    # transactional message + insert (relation sent again after the truncate)
    None, 'message-transactional', None, 'insert-after-message', None,
    # non-transactional message
    'message-non-transactional',
    # ALTER TABLE ADD COLUMN; INSERT -> relation re-sent
    None, 'relation-outbox-altered', 'insert-altered', None,
    # person: INSERT (type + relation), UPDATE with unchanged toast, DELETE with old row
    None, 'type-mood', 'relation-person', 'insert-person', None,
    None, 'update-person-unchanged-toast', None,
    None, 'delete-person-full', None,
    # transaction with a replication origin
    'begin-origin', 'origin', 'insert-origin', 'commit-origin',
]

def check_kinds(data, expected, src):
    got = ''.join(chr(int(h[:2], 16)) for _, _, h in data)
    if got != expected:
        raise SystemExit(f"{src}: unexpected message sequence {got}, expected {expected}")

seq_main = 'BRIICBUCBUCBDCBRTCBMRICMBRICBYRICBUCBDCBOIC'
v1 = main_rows('v1.txt')
check_kinds(v1, seq_main, 'v1')
empty_pairs.clear()
capture_main('v1.txt', 'v1', main_names)
if empty_pairs:
    if major >= 15:
        raise SystemExit(f'v1: {len(empty_pairs)} empty transactions sent; PostgreSQL 15+ skips them')
    (b_lsn, b_xid, b_h), (c_lsn, c_xid, c_h) = empty_pairs[0]
    save('v1-begin-empty.hex', b_lsn, b_xid, b_h, 'begin of a transaction without published changes')
    save('v1-commit-empty.hex', c_lsn, c_xid, c_h, 'commit of a transaction without published changes')
    print(f'v1: {len(empty_pairs)} empty transactions (PostgreSQL {major} sends them)', file=sys.stderr)

v1b = main_rows('v1-binary.txt')
check_kinds(v1b, seq_main, 'v1-binary')
save('v1-binary-insert.hex', *v1b[2], 'insert, binary values')
save('v1-binary-insert-null.hex', *v1b[3], 'insert with NULL, binary values')
save('v1-binary-insert-person.hex', *v1b[31], 'insert person (int, text, enum, external text), binary values')

v2 = main_rows('v2.txt')
check_kinds(v2, seq_main, 'v2')
if [h for _, _, h in v2] != [h for _, _, h in v1]:
    raise SystemExit('v2 without streaming differs from v1; capture it')
if major >= 16:
    v4 = main_rows('v4.txt')
    if [h for _, _, h in v4] != [h for _, _, h in v1]:
        raise SystemExit('v4 without streaming differs from v1; capture it')

# Stream Abort of the whole transaction (xid = subxid) or of one subtransaction (a savepoint).
def abort_kind(h):
    return 'txn' if h[2:10] == h[10:18] else 'subxact'

# Streaming: keep the first messages of each stream block and the stream ends.
st = list(rows('v2-stream.txt'))
kinds = [chr(int(h[:2], 16)) for _, _, h in st]
firsts = collections.Counter()
for (lsn, xid, h), k in zip(st, kinds):
    firsts[k] += 1
    n = firsts[k]
    if k == 'S' and n <= 2:
        save(f"v2-stream-start-{n}.hex", lsn, xid, h, 'stream start')
    elif k == 'R' and n == 1:
        save("v2-stream-relation.hex", lsn, xid, h, 'relation inside a stream (leading xid)')
    elif k == 'I' and n == 1:
        save("v2-stream-insert.hex", lsn, xid, h, 'insert inside a stream (leading xid)')
    elif k == 'E' and n == 1:
        save("v2-stream-stop.hex", lsn, xid, h, 'stream stop')
    elif k == 'c':
        save(f"v2-stream-commit-{n}.hex", lsn, xid, h, 'stream commit')
    elif k == 'A':
        save(f"v2-stream-abort-{abort_kind(h)}.hex", lsn, xid, h, 'stream abort')
    elif k == 'M':
        save(f"v2-stream-message-{n}.hex", lsn, xid, h, 'message')
    elif k in 'BC':
        save(f"v2-stream-{'begin' if k == 'B' else 'commit'}-{n}.hex", lsn, xid, h, 'unstreamed txn')
print('v2-stream kinds:', ''.join(k for k in kinds if k not in 'I'), file=sys.stderr)

tp = list(rows('v3-2pc.txt')) if major >= 15 else []
kinds = [chr(int(h[:2], 16)) for _, _, h in tp]
names = {'b': 'begin-prepare', 'P': 'prepare', 'K': 'commit-prepared', 'r': 'rollback-prepared',
         'p': 'stream-prepare', 'S': 'stream-start', 'E': 'stream-stop'}
counts = collections.Counter()
for (lsn, xid, h), k in zip(tp, kinds):
    if k in names:
        counts[k] += 1
        if counts[k] <= 2:
            save(f"v3-{names[k]}-{counts[k]}.hex", lsn, xid, h, names[k])
if major >= 15: print('v3-2pc kinds:', ''.join(k for k in kinds if k not in 'I'), file=sys.stderr)

# Protocol 4, streaming 'parallel' (PostgreSQL 16+): Stream Abort carries the abort LSN and time.
if major >= 16:
    par = list(rows('v4-parallel.txt'))
    kinds = [chr(int(h[:2], 16)) for _, _, h in par]
    counts = collections.Counter()
    for (lsn, xid, h), k in zip(par, kinds):
        counts[k] += 1
        n = counts[k]
        if k == 'A':
            save(f"v4-stream-abort-{abort_kind(h)}.hex", lsn, xid, h, 'stream abort, streaming parallel')
        elif k == 'c':
            save(f"v4-stream-commit-{n}.hex", lsn, xid, h, 'stream commit, streaming parallel')
        elif k == 'S' and n == 1:
            save("v4-stream-start-1.hex", lsn, xid, h, 'stream start, streaming parallel')
    print('v4-parallel kinds:', ''.join(k for k in kinds if k not in 'I'), file=sys.stderr)
    if not os.path.exists(os.path.join(out, 'v4-stream-abort-subxact.hex')):
        raise SystemExit('v4-parallel: expected a Stream Abort for the rolled-back savepoint')

with open(os.path.join(out, 'MANIFEST.txt'), 'w') as f:
    f.write('# file  lsn  xid  what (lsn and xid as returned by pg_logical_slot_peek_binary_changes)\n')
    for fname, lsn, xid, what in manifest:
        f.write(f"{fname} {lsn} {xid} {what}\n")
PY

cc -O1 -o "$TMP/dump_copydata" "$HERE/tools/dump_copydata.c" $(pkg-config --cflags --libs libpq)
mkdir -p "$TMP/frames"
chown postgres: "$TMP/frames" 2>/dev/null || true
as_pg "$TMP/dump_copydata" "host=$TMP port=$PORT user=postgres dbname=postgres replication=database" \
    slot_frames "$TMP/frames" 4
cp "$TMP"/frames/*.hex "$OUT/"

as_pg "$PG_BINDIR/postgres" --version >"$OUT/SERVER_VERSION.txt"
echo "wrote $(ls "$OUT" | wc -l) files to $OUT"
