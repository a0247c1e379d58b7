#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Hostile input for test_security.sh.

  hostile.py record FILE [key=value...]   a heartbeat record (record.h),
      whole or spoiled: size version state seq interval timeout deadline
      nvms omitted host storage (text, or hex:BYTES) badcrc=1 garbage=1
      addrs=TEXT (an rbd object: the record, then its address block)
  hostile.py send SOCK                    stdin's bytes to the daemon's
      socket as they are, the sending side shut down after them; prints
      every line the daemon sent (greeting first), until it closes
"""
import os
import socket
import struct
import sys
import threading
import zlib


def text(v):
    return bytes.fromhex(v[4:]) if v.startswith("hex:") else v.encode()


def record(path, kv):
    size = int(kv.get("size", 4096))
    if kv.get("garbage"):
        data = os.urandom(size)
    else:
        b = bytearray(size)
        b[0:4] = b"IOFR"
        struct.pack_into("<HHI", b, 4, int(kv.get("version", 1)),
                         int(kv.get("state", 1)), size)
        struct.pack_into("<QQQ", b, 16, int(kv.get("seq", 7)),
                         1700000000 * 10**9, 12345, )
        struct.pack_into("<IIIHH", b, 56, int(kv.get("interval", 200)),
                         int(kv.get("timeout", 1000)),
                         int(kv.get("deadline", 0)), int(kv.get("nvms", 0)),
                         int(kv.get("omitted", 0)))
        host, stor = text(kv.get("host", "")), text(kv.get("storage", ""))
        b[72:72 + len(host)] = host
        b[136:136 + len(stor)] = stor
        crc = zlib.crc32(bytes(b)) ^ (1 if kv.get("badcrc") else 0)
        struct.pack_into("<I", b, 12, crc)
        data = bytes(b)
    if "addrs" in kv:
        a = bytearray(512)
        t = kv["addrs"].encode()
        a[0:4] = b"IOFA"
        struct.pack_into("<HH", a, 4, 1, len(t))
        a[12:12 + len(t)] = t
        struct.pack_into("<I", a, 8, zlib.crc32(bytes(a)))
        data += bytes(a)
    with open(path, "wb") as f:
        f.write(data)


def send(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(20)
    s.connect(path)
    data = sys.stdin.buffer.read()

    def writer():
        # The daemon may close mid-way (a line too long): its error is
        # still to be read, so a failed send is no failure here.
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    t = threading.Thread(target=writer)
    t.start()
    got = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    except ConnectionResetError:
        pass  # closed with our bytes unread: what it sent is all here
    except OSError as e:
        got += b'{"client_error":"%s"}\n' % str(e).encode()
    t.join()
    sys.stdout.buffer.write(got)


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "record":
        record(sys.argv[2], dict(a.split("=", 1) for a in sys.argv[3:]))
    elif len(sys.argv) == 3 and sys.argv[1] == "send":
        send(sys.argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
