#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""TCP ends of test_netfence, each bounded in time (LIFE seconds).

recv DIR            listens on 127.0.0.1 (its port in DIR/port) and on ::1
                    where there is one (DIR/port6), and counts
                    what each sender sends, by the name on its first line,
                    in DIR/c.NAME: "BYTES LAST_NS" (CLOCK_MONOTONIC of the
                    last byte); while DIR/pause.NAME exists it reads
                    nothing from that sender.
send PORT NAME DIR  connects (to ::1 with V6=1 in its environment), writes
                    its local port to DIR/lport.NAME, then sends without
                    end (4 KiB a millisecond; as fast as it can with
                    FULL=1). With FORK=1 it forks once connected: the
                    child sends (its pid in DIR/pid.NAME), the parent
                    holds the socket and sends nothing.
probe PORT DIR      makes a socket, says DIR/probe.ready, waits for
                    DIR/probe.go, then connects that socket and makes
                    another: DIR/probe.out gets "connect=E socket=E", each
                    E an errno name or ok.
"""
import errno
import os
import socket
import sys
import threading
import time

LIFE = 120
BUF = 64 * 1024


def put(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.rename(path + ".tmp", path)


def recv(d):
    counts = {}
    lock = threading.Lock()

    def listener(family, addr, name):
        ls = socket.socket(family)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, BUF)
        ls.bind((addr, 0))
        ls.listen(16)
        put(os.path.join(d, name), "%d\n" % ls.getsockname()[1])
        return ls

    def conn(c):
        name = b""
        while not name.endswith(b"\n"):
            b = c.recv(1)
            if not b:
                return
            name += b
        name = name.strip().decode()
        pause = os.path.join(d, "pause." + name)
        with lock:
            counts[name] = [0, time.monotonic_ns()]
        while True:
            if os.path.exists(pause):
                time.sleep(0.02)
                continue
            b = c.recv(BUF)
            if not b:
                return
            with lock:
                counts[name][0] += len(b)
                counts[name][1] = time.monotonic_ns()

    def dump():
        while True:
            with lock:
                snap = dict((k, list(v)) for k, v in counts.items())
            for k, v in snap.items():
                put(os.path.join(d, "c." + k), "%d %d\n" % (v[0], v[1]))
            time.sleep(0.02)

    def serve(ls):
        ls.settimeout(1)
        end = time.monotonic() + LIFE
        while time.monotonic() < end:
            try:
                c, _ = ls.accept()
            except socket.timeout:
                continue
            threading.Thread(target=conn, args=(c,), daemon=True).start()

    threading.Thread(target=dump, daemon=True).start()
    try:
        ls6 = listener(socket.AF_INET6, "::1", "port6")
        threading.Thread(target=serve, args=(ls6,), daemon=True).start()
    except OSError:
        pass
    serve(listener(socket.AF_INET, "127.0.0.1", "port"))


def send(port, name, d):
    v6 = os.environ.get("V6") == "1"
    s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, BUF)
    s.connect(("::1" if v6 else "127.0.0.1", port))
    put(os.path.join(d, "lport." + name), "%d\n" % s.getsockname()[1])
    s.sendall(name.encode() + b"\n")
    if os.environ.get("FORK") == "1":
        if os.fork():
            time.sleep(LIFE)
            return
        put(os.path.join(d, "pid." + name), "%d\n" % os.getpid())
    full = os.environ.get("FULL") == "1"
    chunk = b"x" * (BUF if full else 4096)
    end = time.monotonic() + LIFE
    while time.monotonic() < end:
        s.sendall(chunk)
        if not full:
            time.sleep(0.001)


def probe(port, d):
    def err(f):
        try:
            f()
            return "ok"
        except OSError as e:
            return errno.errorcode.get(e.errno, str(e.errno))

    s = socket.socket()
    s.settimeout(5)
    put(os.path.join(d, "probe.ready"), "\n")
    end = time.monotonic() + LIFE
    while not os.path.exists(os.path.join(d, "probe.go")):
        if time.monotonic() > end:
            return
        time.sleep(0.02)
    c = err(lambda: s.connect(("127.0.0.1", port)))
    n = err(lambda: socket.socket().close())
    put(os.path.join(d, "probe.out"), "connect=%s socket=%s\n" % (c, n))


if __name__ == "__main__":
    a = sys.argv[1:]
    if a[:1] == ["recv"] and len(a) == 2:
        recv(a[1])
    elif a[:1] == ["send"] and len(a) == 4:
        send(int(a[1]), a[2], a[3])
    elif a[:1] == ["probe"] and len(a) == 3:
        probe(int(a[1]), a[2])
    else:
        sys.exit(__doc__)
