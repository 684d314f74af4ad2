#!/usr/bin/env python3
"""The supervisor against its own programs, and the tree without it.

flood:   a gcc -static program sends the largest datagrams and sendmmsg
         batches the kernel takes (floodclient.c), the wrapper (and so the
         supervisor, which starts in its memory) under RLIMIT_AS of 64 MiB;
         the supervisor copies each into fixed buffers (notification.cpp),
         so it still answers the refusals that follow the flood.
killed_static: the supervisor is SIGKILLed while a static program
         (floodclient probe) runs; its next connect() and sendto() to a
         loopback listener fail (the filter's calls have nobody to answer
         them), and the listener sees no connection and no datagram after
         the kill.
killed_dynamic: the same under a dynamic program (Python, with the
         interposer). The calls the interposer judged carry its mark, which
         the filter lets through without the supervisor
         (runtime/marker.hpp): they go on as the policy says (the loopback
         listener is allowed directly). A static program it starts after
         the kill fails every call, and nothing of it reaches the listener.

usage: survive_test.py CASE WRAPPER CACHE_DIR
"""
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pltest
import supervise_test

WRAPPER, CACHE, HERE = supervise_test.WRAPPER, supervise_test.CACHE, supervise_test.HERE
fail = pltest.fail
LIMIT_MIB = 64
NO_PROXY = "socks5h://127.0.0.1:9"  # nothing here goes through a proxy


def flood_client():
    src = os.path.join(HERE, "static", "floodclient.c")

    def build(out):
        subprocess.run(["cc", "-static", "-O2", "-o", out, src], check=True, timeout=120)
    return supervise_test.cached_build(src, "floodclient", build)


class UdpCounter:
    """Counts the datagrams and bytes that reach 127.0.0.1:port."""

    def __init__(self, port=0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.bind(("127.0.0.1", port))
        self.port = self.sock.getsockname()[1]
        self.count = self.bytes = 0
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        while True:
            data = self.sock.recv(70000)
            self.count += 1
            self.bytes += len(data)


def flood_case():
    client = flood_client()
    udp = UdpCounter()
    rounds = 3
    argv = ["prlimit", f"--as={LIMIT_MIB << 20}", WRAPPER, "-p", NO_PROXY, "--", client, "flood",
            "127.0.0.1", str(udp.port), str(rounds)]
    t0 = time.time()
    r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    print("$", " ".join(argv), f"-> rc={r.returncode} ({time.time() - t0:.1f} s)")
    print("stdout:", r.stdout[-1500:])
    print("stderr:", r.stderr[-1500:])
    time.sleep(0.5)
    expected = rounds * (2 + 1024)
    print(f"under RLIMIT_AS {LIMIT_MIB} MiB: sent {expected} datagrams of 65507 bytes "
          f"(sendmmsg batches of 1024); the receiver got {udp.count} ({udp.bytes} bytes)")
    if f"flood: sent {expected} datagrams" not in r.stdout:
        fail("not every datagram was sent: the supervisor failed or died under the limit")
    # Answered after the flood: the supervisor is still there (a dead one
    # leaves ENOSYS), and says why in a log line.
    for line in ("refused sendto 1 MiB: EMSGSIZE", "refused sendmsg 1025 pieces: EMSGSIZE",
                 "refused sendmsg 64 KiB + 1 of control: ENOBUFS"):
        if line not in r.stdout:
            fail(f"missing {line!r}")
    for line in ("datagram larger than the supervisor copies",
                 "more ancillary data than the supervisor copies"):
        if line not in r.stderr:
            fail(f"no log line {line!r}")
    if udp.count == 0:
        fail("no datagram arrived: the check is blind")


def killed_case(argv_for, judged=False):
    """argv_for(ip, port) runs a probe that prints 'pid N map PATH' and,
    per stdin line, 'tcp: RESULT udp: RESULT'; with `judged`, the dynamic
    probe's own results (which stay OK) followed by ' static tcp: RESULT
    udp: RESULT', a static child's."""
    listener = pltest.Listener()
    udp = UdpCounter(listener.port)
    argv = [WRAPPER, "-p", NO_PROXY, "--", *argv_for("127.0.0.1", listener.port)]
    print("$", " ".join(argv))
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        first = p.stdout.readline().split()
        print("probe:", first)
        if len(first) != 4 or not first[3].startswith("/proc/"):
            fail(f"the probe did not start: {first}")
        supervisor = int(first[3].split("/")[2])

        def attempt():
            p.stdin.write("go\n")
            p.stdin.flush()
            line = p.stdout.readline().strip()
            time.sleep(0.3)
            print(f"  {line}  (listener: {listener.count} connections, {udp.count} datagrams)")
            return line

        ok = "tcp: OK udp: OK static tcp: OK udp: OK" if judged else "tcp: OK udp: OK"
        per_attempt = 2 if judged else 1
        if attempt() != ok or listener.count != per_attempt or udp.count != per_attempt:
            fail("with the supervisor, the direct loopback connect and send should work")
        os.kill(supervisor, signal.SIGKILL)
        end = time.time() + 10
        while os.path.exists(f"/proc/{supervisor}") and time.time() < end:
            try:
                with open(f"/proc/{supervisor}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                        break
            except OSError:
                break
            time.sleep(0.05)
        print(f"supervisor {supervisor} killed")
        attempts = 3
        for _ in range(attempts):
            line = attempt()
            own, _, static = line.partition(" static ") if judged else ("", "", line)
            if judged and own != "tcp: OK udp: OK":
                fail(f"the interposer's judged calls need no supervisor: {line!r}")
            if "tcp: OK" in static or "udp: OK" in static or not static.startswith("tcp: "):
                fail(f"a call succeeded without the supervisor: {line!r}")
        expected = per_attempt + (attempts if judged else 0)  # the interposer's own, if any
        if listener.count != expected or udp.count != expected:
            fail(f"something reached the listener after the kill: {listener.count} connections, "
                 f"{udp.count} datagrams ({expected} expected)")
        print("without the supervisor: every call it would have answered failed, nothing of "
              "them reached the listener")
    finally:
        p.stdin.close()
        p.wait(timeout=30)
        print("stderr:", p.stderr.read()[-800:])


def killed_static_case():
    client = flood_client()
    killed_case(lambda ip, port: [client, "probe", ip, str(port)])


PY_PROBE = r"""
import errno, os, socket, subprocess, sys
print("pid", os.getpid(), "map", os.environ.get("LEAKPROOF_MAP", "-"), flush=True)
def name(f):
    try:
        f()
        return "OK"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
to = (sys.argv[1], int(sys.argv[2]))
for line in sys.stdin:
    t = socket.socket()
    tcp = name(lambda: t.connect(to))
    t.close()
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp = name(lambda: u.sendto(b"x", to))
    u.close()
    child = subprocess.run([sys.argv[3], "probe", *sys.argv[1:3]], input="go\n",
                           capture_output=True, text=True, timeout=30)
    static = (child.stdout.splitlines()[1:] or ["no answer: " + child.stderr.strip()])[0]
    print("tcp:", tcp, "udp:", udp, "static", static, flush=True)
"""


def killed_dynamic_case():
    client = flood_client()
    killed_case(lambda ip, port: ["python3", "-c", PY_PROBE, ip, str(port), client], judged=True)


CASES = {"flood": flood_case, "killed_static": killed_static_case,
         "killed_dynamic": killed_dynamic_case}

if __name__ == "__main__":
    CASES[sys.argv[1]]()
    print("PASS", sys.argv[1])
