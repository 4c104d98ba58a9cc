#!/usr/bin/env python3
"""Writes the fuzzers' seed corpora under fuzz/corpus/ from the golden pgoutput captures in
tests/data/pgoutput/ and from config/example.yaml. Run once after the captures change."""
import glob
import os
import shutil
import struct

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
data = f"{root}/tests/data/pgoutput"
STREAM_CONTROL = ("stream-start", "stream-stop", "stream-commit", "stream-abort", "stream-prepare")


def read(name):
    with open(f"{data}/{name}.hex") as f:
        return bytes.fromhex(f.read().replace("\n", "").replace(" ", ""))


def xlog(start, payload):
    return b"w" + struct.pack(">QQq", start, start, 0) + payload


def framed(frames):
    return bytes([0]) + b"".join(struct.pack(">H", len(f)) + f for f in frames)


def write(target, name, content):
    os.makedirs(f"{root}/fuzz/corpus/{target}", exist_ok=True)
    with open(f"{root}/fuzz/corpus/{target}/{name}", "wb") as f:
        f.write(content)


for path in sorted(glob.glob(f"{data}/*.hex")):
    name = os.path.basename(path)[:-4]
    if name.startswith("frame-"):
        write("copydata", name, framed([read(name)]))
        continue
    selector = {"v1": 0, "v2": 1, "v3": 2, "v4": 3}[name[:2]]
    if "stream" in name and not any(c in name for c in STREAM_CONTROL):
        selector |= 4
    write("pgoutput", name, bytes([selector]) + read(name))

write("copydata", "first-transaction", framed([
    xlog(0x1000, read("v1-begin")), xlog(0, read("v1-relation-outbox")), xlog(0x1010, read("v1-insert")),
    xlog(0x1020, read("v1-insert-null")), xlog(0x2000, read("v1-commit")),
    b"k" + struct.pack(">Qq", 0x3000, 0) + b"\x01"]))
write("copydata", "altered", framed([
    xlog(0x1000, read("v1-begin")), xlog(0, read("v1-relation-outbox-altered")),
    xlog(0x1010, read("v1-insert-altered")), xlog(0x2000, read("v1-commit"))]))
write("copydata", "skips-and-messages", framed([
    xlog(0x1000, read("v1-begin")), xlog(0x1008, read("v1-message-transactional")), xlog(0x1010, read("v1-update")),
    xlog(0x1018, read("v1-delete")), xlog(0x2000, read("v1-commit")),
    xlog(0x2008, read("v1-message-non-transactional"))]))

os.makedirs(f"{root}/fuzz/corpus/config", exist_ok=True)
shutil.copy(f"{root}/config/example.yaml", f"{root}/fuzz/corpus/config/example.yaml")
write("config", "minimal.yaml",
      b'source:\n  postgres:\n    dsn: "host=x dbname=${SET}"\nsink:\n  kafka:\n    brokers: "k:9092"\n')
write("config", "errors.yaml",
      b'source:\n  postgres:\n    slott: x\n  outbox:\n    tables: [a.b, c]\nrouting:\n  topic: "x.{{a}}.{b"\n'
      b"log: {level: loud}\n")
