#!/usr/bin/env python3
"""Makes tests/fuzz/dns_corpus/: real DNS queries, as dig and glibc send them.

Runs in a private network and mount namespace (root): a UDP and TCP socket on
127.0.0.1:53 records every message it gets (and answers nothing, so each
client asks once per its own timeout), /etc/resolv.conf points there. Each
message is written as one file named after its SHA-1, like libFuzzer's
corpus. usage: capture_dns_queries.py OUTDIR   (re-executes itself under unshare)
"""
import hashlib
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

NAMES = ["example.org", "www.debian.org", "xn--bcher-kva.example", "a.b.c.d.e.f.g.example",
         "localhost", "UPPER.Example.COM", "1.2.0.192.in-addr.arpa"]


def record(out, data):
    with open(os.path.join(out, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)


def serve_udp(s, out):
    while True:
        data, _ = s.recvfrom(65535)
        record(out, data)


def serve_tcp(s, out):
    while True:
        c, _ = s.accept()
        c.settimeout(2)
        try:
            n = int.from_bytes(c.recv(2), "big")
            data = b""
            while len(data) < n:
                chunk = c.recv(n - len(data))
                if not chunk:
                    break
                data += chunk
            record(out, data)
        except OSError:
            pass
        c.close()


def inside(out):
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    resolv = tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False)
    resolv.write("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
    resolv.close()
    subprocess.run(["mount", "--bind", resolv.name, "/etc/resolv.conf"], check=True)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 53))
    t = socket.socket()
    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    t.bind(("127.0.0.1", 53))
    t.listen(8)
    threading.Thread(target=serve_udp, args=(u, out), daemon=True).start()
    threading.Thread(target=serve_tcp, args=(t, out), daemon=True).start()
    clients = []
    for name in NAMES:
        for qtype in ("A", "AAAA", "PTR", "MX", "TXT", "ANY"):
            clients.append(["dig", "@127.0.0.1", name, qtype, "+tries=1", "+time=1"])
        clients.append(["dig", "@127.0.0.1", name, "+tcp", "+tries=1", "+time=1"])
        clients.append(["dig", "@127.0.0.1", name, "+nocookie", "+noedns", "+tries=1",
                        "+time=1"])
        clients.append(["getent", "ahosts", name])
        clients.append(["getent", "hosts", name])
    clients.append(["dig", "@127.0.0.1", "-x", "240.0.0.7", "+tries=1", "+time=1"])
    clients.append(["dig", "@127.0.0.1", "-x", "100::5", "+tries=1", "+time=1"])
    clients.append(["getent", "hosts", "240.0.0.9"])
    clients.append(["getent", "hosts", "100::9"])
    procs = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for c in clients]
    for p in procs:
        p.wait(timeout=30)
    time.sleep(0.5)


if __name__ == "__main__":
    out = os.path.abspath(sys.argv[1])
    os.makedirs(out, exist_ok=True)
    if len(sys.argv) == 2:
        sys.exit(subprocess.call(["unshare", "-n", "-m", sys.executable, __file__, out, "in"]))
    inside(out)
    print(len(os.listdir(out)), "queries in", out)
