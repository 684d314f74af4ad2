#!/usr/bin/env python3
"""Chaos, bounded: 20,000 connects from 8 threads of one program (chaos_probe)
through the wrapper, while this harness cycles the proxy every 2 s — up
(microsocks), killed (SIGKILL: refused), a black hole on its port (accepts,
never answers) — and the program sends a burst of DNS queries at the
supervisor's responder. Stops by itself (the probe's deadline is 100 s,
this script's 120 s).

Afterwards: the program's and the supervisor's descriptor counts are back
to their baseline, their own memory grew by less than 1 MiB, no connection reached
the target directly (microsocks connects from 127.0.0.2, -b; anything else
came from the program), and the test's dnsmasq got no query. The RSS is
printed whole, with the placeholder map's pages in it apart: the DNS
burst's 3,000 new names fill nearly every page of that fixed 1.1 MiB map
(entries are placed by hash), which is the tree's memory, allocated once
and bounded by the map's size; the check is that the rest, each process's
own memory, grew by less than 1 MiB, and that the map's share stays within
its size.

usage: chaos_test.py WRAPPER CHAOS_PROBE
"""
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pltest
from pltest import WEB_NAME

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
import lptest  # noqa: E402

WRAPPER, PROBE = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
CONNECTS, THREADS, DNS_QUERIES = 20000, 8, 3000
PROXY_SOURCE = "127.0.0.2"  # microsocks -b: where its own connections come from
BOUND_SECONDS = 120
MAP_KIB = 1100  # runtime/placeholder.cpp: 4096 entries of 272 bytes, and a header
fail = pltest.fail


class Target:
    """The destination: accepts, closes, sorts connections by their source."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.port = self.sock.getsockname()[1]
        self.proxied = self.direct = 0
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        while True:
            try:
                c, (host, _) = self.sock.accept()
            except OSError:
                return
            if host == PROXY_SOURCE:
                self.proxied += 1
            else:
                self.direct += 1
            c.close()


class ProxyCycle:
    """Every 2 s: microsocks up 2 s, then SIGKILLed and its port refusing
    for 0.5 s, then a black hole there for 1.5 s, then microsocks again,
    until stopped."""

    def __init__(self):
        self.port = pltest.free_port()
        self.binary = lptest.need("microsocks")
        self.binds = lptest.proxy_binds()
        self.stop = threading.Event()
        self.proc = None
        self.kills = self.starts = self.holes = 0
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _start(self):
        argv = lptest.in_mount_ns(self.binds, [self.binary, "-i", "127.0.0.1", "-p",
                                               str(self.port), "-b", PROXY_SOURCE])
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        lptest.wait_port(self.port, proc=self.proc)
        self.starts += 1

    def _kill(self):
        if self.proc is not None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            self.proc = None
            self.kills += 1

    def _black_hole(self, seconds):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        end = time.time() + 2
        while True:
            try:
                s.bind(("127.0.0.1", self.port))
                break
            except OSError:
                if time.time() > end:
                    return
                time.sleep(0.05)
        s.listen(1024)  # never accepted: handshakes wait, then time out
        self.holes += 1
        self.stop.wait(seconds)
        s.close()

    def _loop(self):
        while not self.stop.is_set():
            self._start()
            if self.stop.wait(2):
                break
            self._kill()
            if self.stop.wait(0.5):
                break
            self._black_hole(1.5)
        self._kill()

    def url(self):
        return f"socks5h://127.0.0.1:{self.port}"


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


MAP_NAME = "/memfd:leakproof-map"  # runtime/placeholder.cpp's memfd_create name


def rss_kib(pid):
    """VmRSS, and of it the pages of the placeholder map's mapping (found by
    its name in smaps: no other memory is set apart)."""
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    in_map, map_rss = False, 0
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            first = line.split()[0]
            if "-" in first and not first.endswith(":"):  # a mapping's header line
                in_map = MAP_NAME in line
            elif in_map and first == "Rss:":
                map_rss += int(line.split()[1])
    return rss, map_rss


def figures(pid):
    """Descriptors, the whole RSS, the map's pages in it."""
    rss, map_rss = rss_kib(pid)
    return fd_count(pid), rss, map_rss


def main():
    dns = pltest.Dns()
    target = Target()
    cycle = ProxyCycle()
    cycle._start()  # up for the warm-up
    argv = dns.wrap([WRAPPER, "-p", cycle.url(), "--proxy-loopback", "--timeout", "1", "-q", "--",
                     PROBE, str(CONNECTS), str(THREADS), WEB_NAME, str(target.port),
                     str(DNS_QUERIES)])
    print("$", " ".join(argv))
    t0 = time.time()
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)
    killer = threading.Timer(BOUND_SECONDS, lambda: os.killpg(p.pid, signal.SIGKILL))
    killer.start()
    try:
        if p.stdout.readline().strip() != "baseline":
            fail(f"the probe did not start: {p.stderr.read()[-1000:]}")
        program = p.pid  # unshare execs the wrapper, which execs the probe
        with open(f"/proc/{program}/environ", "rb") as f:
            env = dict(kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv)
        supervisor = int(env[b"LEAKPROOF_SUPERVISOR_PID"])
        before = {"program": figures(program), "supervisor": figures(supervisor)}
        print(f"baseline: program {program} fds/RSS KiB {before['program']}, "
              f"supervisor {supervisor} {before['supervisor']}")
        direct_before = target.direct
        cycle._kill()
        cycle.thread.start()
        p.stdin.write("go\n")
        p.stdin.flush()
        done = p.stdout.readline().strip()
        cycle.stop.set()
        cycle.thread.join(timeout=10)
        took = time.time() - t0
        print(done)
        if not done.startswith("done "):
            fail(f"the probe did not finish: {p.stderr.read()[-1000:]}")
        time.sleep(1)  # connects the interposer's helper still closes
        after = {"program": figures(program), "supervisor": figures(supervisor)}
        p.stdin.write("exit\n")
        p.stdin.flush()
        p.wait(timeout=30)
    finally:
        killer.cancel()
        cycle.stop.set()
        cycle._kill()
    vals = done.split()
    counts = dict(zip(vals[1:9:2], map(int, vals[2:10:2])))
    queries = dns.queries()
    print(f"proxy: {cycle.starts} starts, {cycle.kills} kills, {cycle.holes} black holes")
    print(f"connects: {counts['ok']} ok, {counts['failed']} failed, of {CONNECTS}; "
          f"target: {target.proxied} via the proxy, {target.direct - direct_before} direct")
    print(f"DNS burst: {counts['answered']} answered by the responder, "
          f"{counts['unanswered']} unanswered, of {DNS_QUERIES}; "
          f"dnsmasq got {len(queries)} queries")
    for who in ("program", "supervisor"):
        (fd0, rss0, map0), (fd1, rss1, map1) = before[who], after[who]
        print(f"{who}: fds {fd0} -> {fd1}; RSS {rss0} -> {rss1} KiB ({rss1 - rss0:+d} KiB), "
              f"of which the placeholder map's pages {map0} -> {map1} KiB ({map1 - map0:+d} KiB) "
              f"and its own memory {rss1 - rss0 - (map1 - map0):+d} KiB")
    print(f"finished in {took:.1f} s (bound {BOUND_SECONDS} s)")
    if counts["ok"] + counts["failed"] != CONNECTS:
        fail("the probe stopped at its deadline before making every connect")
    if counts["ok"] == 0 or counts["failed"] == 0 or cycle.kills < 2 or cycle.holes < 1:
        fail("no chaos: the proxy was never down, or never up")
    if "ETIMEDOUT:" not in done:
        fail("no connect timed out in the black hole")
    if target.direct != direct_before:
        fail(f"{target.direct - direct_before} connections reached the target directly")
    if queries:
        fail("DNS queries reached dnsmasq:\n" + "".join(queries[:5]))
    if counts["answered"] < DNS_QUERIES // 2:
        fail("the responder answered fewer than half of the burst")
    for who in ("program", "supervisor"):
        (fd0, rss0, map0), (fd1, rss1, map1) = before[who], after[who]
        if fd1 != fd0:
            fail(f"the {who} holds {fd1} descriptors, {fd0} before")
        # The map is the tree's, of a fixed size: a burst of new names fills
        # its pages once (README: the chaos figures), and they can grow no
        # further. Its own memory is what must not grow.
        if map1 > MAP_KIB:
            fail(f"the {who} maps {map1} KiB of the placeholder map, more than its size")
        own = rss1 - rss0 - (map1 - map0)
        if own >= 1024:
            fail(f"the {who}'s own memory grew by {own} KiB")
    if took > BOUND_SECONDS:
        fail("over the time bound")


if __name__ == "__main__":
    main()
    print("PASS chaos")
