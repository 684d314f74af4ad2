"""Threads, fork, fd leaks and per-process isolation:
python3 stress_test.py CASE WRAPPER STRESS_PROBE.

The tsan_* cases run the same probe in the ThreadSanitizer build
(-DLEAKPROOF_TSAN=ON), where libleakproof.so and the probe are both
instrumented, and fail on any ThreadSanitizer report.
"""
import collections
import errno
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import pltest
from pltest import WEB_NAME

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
import lptest  # noqa: E402  (tests/harness: the fault proxy)

WRAPPER = os.path.abspath(sys.argv[2])
PROBE = os.path.abspath(sys.argv[3])
TSAN_REPORT = "WARNING: ThreadSanitizer"


fail = pltest.fail


def run(argv, proxy, extra=(), dns=None, env=None, timeout=240):
    lp = [WRAPPER, "-p", proxy] + list(extra) + ["--"] + list(argv)
    t0 = time.time()
    # Its own session, so that a hang kills the probe too, not just the wrapper.
    p = subprocess.Popen(dns.wrap(lp) if dns else lp, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, cwd=pltest.TMP, env=env,
                         start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        print(f"$ {' '.join(lp)}\nstdout: {out[-1500:]}\nstderr: {err[-3000:]}")
        fail(f"timed out after {timeout} s")
    r = subprocess.CompletedProcess(p.args, p.returncode, out, err)
    print("$", " ".join(lp), f"-> rc={r.returncode} ({time.time() - t0:.1f}s)")
    print("stdout:", r.stdout[-1500:])
    print("stderr:", r.stderr[-3000:])
    return r


def values(stdout):
    vals = {}
    for line in stdout.splitlines():
        parts = line.split()
        for k, v in zip(parts[::2], parts[1::2]):
            vals[k] = int(v) if re.fullmatch(r"-?\d+", v) else v
    return vals


no_dns = pltest.no_dns


# ---- threads and fork -------------------------------------------------------

def tsan_env(**extra):
    opts = {"halt_on_error": "1", "exitcode": "66", "second_deadlock_stack": "1"}
    opts.update(extra)
    return dict(os.environ, TSAN_OPTIONS=":".join(f"{k}={v}" for k, v in opts.items()))


def stress_case(mode, threads, rounds, tsan):
    """T threads x N echo round trips by a name only the proxy knows, plus
    lookups; in fork mode the main thread forks children meanwhile."""
    dns = pltest.Dns()
    proxy = pltest.microsocks()
    # A forked child of a multi-threaded process starts its own helper thread
    # for its non-blocking connect: that is the case under test, so TSan must
    # not stop at it (die_after_fork); races are still reported.
    env = tsan_env(die_after_fork="0") if tsan else None
    if tsan:
        r = run([PROBE, "race"], proxy, ["-q"], dns, env)
        if r.returncode != 66 or TSAN_REPORT not in r.stderr:
            fail("ThreadSanitizer missed the probe's deliberate race: the check is blind")
    r = run([PROBE, mode, str(threads), str(rounds), WEB_NAME], proxy, ["-q"], dns, env)
    if tsan and TSAN_REPORT in r.stderr:
        print("report:", r.stderr[r.stderr.find(TSAN_REPORT):][:20000])
        fail("ThreadSanitizer reported a problem")
    v = values(r.stdout)
    if r.returncode != 0:
        fail(f"the probe failed (exit {r.returncode})")
    if v.get("connects", 0) < threads * rounds or v.get("ok") != v.get("connects"):
        fail("not every round trip succeeded")
    # Each thread looks up 25 names of its own (fewer if it made fewer rounds).
    if v.get("names", 0) < threads * min(rounds, 25):
        fail("not every name was looked up")
    if v.get("distinct") != v.get("names"):
        fail("lookups of distinct names did not get distinct placeholders")
    if mode == "fork":
        if v.get("forks") != 8 or v.get("child_failures") != 0:
            fail("a forked child failed")
        if v.get("busy_forks", 0) < 4:
            fail("too few forks happened while a worker was mid-connect")
    no_dns(dns)


# ---- 10,000 failing connects ------------------------------------------------

FAILS = 10000


def log_lines(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return f.read().splitlines()


def fail_fds_case():
    """Failing connects (proxy refuses, hangs up, answers garbage, is down)
    return the mapped errno, leave no fd or thread behind, log once each."""
    fault = lptest.fault_proxy()
    targets = [f"refuse.fault:{errno.ECONNREFUSED}", f"close.fault:{errno.ECONNRESET}",
               f"garbage.fault:{errno.EPROTO}"]
    log = os.path.join(pltest.TMP, "faults.log")
    r = run([PROBE, "fail", str(FAILS), "80"] + targets, f"socks5h://{fault.host}:{fault.port}",
            ["--log-file", log])
    check_fail_run(r, log, len(targets), ["refuse.fault:80 via", "close.fault:80 via",
                                          "garbage.fault:80 via"])

    # The proxy itself is down: bound but not listening, and kept, so that
    # nobody else takes the port meanwhile.
    hold = socket.socket()
    hold.bind(("127.0.0.1", 0))
    dead = f"socks5h://127.0.0.1:{hold.getsockname()[1]}"
    log = os.path.join(pltest.TMP, "down.log")
    r = run([PROBE, "fail", str(FAILS), "80", f"{WEB_NAME}:{errno.ECONNREFUSED}"], dead,
            ["--log-file", log])
    check_fail_run(r, log, 1, [f"{WEB_NAME}:80 via {dead}: Connection refused"])
    hold.close()


def check_fail_run(r, log, ntargets, needles):
    v = values(r.stdout)
    if v.get("attempts") != FAILS + 2 * ntargets:
        fail("the probe did not make every attempt")
    if v["fds_before"] != v["fds_after"]:
        fail(f"fds leaked: {v['fds_before']} before, {v['fds_after']} after")
    if v["threads_before"] != v["threads_after"]:
        fail("threads leaked")
    if r.returncode != 0 or v.get("problems") != 0:
        fail("a connect did not fail with its errno")
    lines = log_lines(log)
    if len(lines) != v["attempts"]:
        fail(f"{len(lines)} log lines for {v['attempts']} failures (one each expected)")
    print("log:", lines[:ntargets])
    for k, n in enumerate(needles):
        # The probe cycles through the targets: 2 warm-up attempts each, then
        # FAILS attempts round-robin.
        want = 2 + FAILS // ntargets + (k < FAILS % ntargets)
        count = sum(n in line for line in lines)
        if count != want:
            fail(f"{count} log lines with {n!r}, expected {want}")


# ---- --isolate ---------------------------------------------------------------

class Recorder:
    """A SOCKS5 server that records the RFC 1929 user names it is given
    (any password is accepted), grants every CONNECT and relays nothing."""

    def __init__(self):
        self.users = []
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            c, _ = self.sock.accept()
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        with c:
            try:
                _ver, n = lptest.recv_exact(c, 2)
                methods = lptest.recv_exact(c, n)
                user = None
                if 2 in methods:
                    c.sendall(b"\x05\x02")
                    _v, ulen = lptest.recv_exact(c, 2)
                    user = lptest.recv_exact(c, ulen).decode()
                    lptest.recv_exact(c, lptest.recv_exact(c, 1)[0])  # the password
                    c.sendall(b"\x01\x00")
                else:
                    c.sendall(b"\x05\x00")
                _v, _cmd, _rsv, atyp = lptest.recv_exact(c, 4)
                lptest.recv_exact(c, {1: 4, 4: 16}.get(atyp) or lptest.recv_exact(c, 1)[0])
                lptest.recv_exact(c, 2)  # port
                with self.lock:
                    self.users.append(user)
                c.sendall(b"\x05\x00\x00\x01" + bytes(6))
                while c.recv(4096):
                    pass
            except (ConnectionError, OSError):
                pass


# Parent and forked child each connect blocking and non-blocking; an exec'd
# child connects once. Every process prints its pid.
ISOLATE_PROG = """
import os, select, socket, subprocess, sys
HOST = "rec.only-proxy.test"
def blocking():
    socket.create_connection((HOST, 80)).close()
def nonblocking():
    fam, kind, _, _, addr = socket.getaddrinfo(HOST, 80, type=socket.SOCK_STREAM)[0]
    s = socket.socket(fam, kind)
    s.setblocking(False)
    s.connect_ex(addr)
    select.select([], [s], [], 10)
    assert s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
    s.close()
print("parent", os.getpid(), flush=True)
blocking()
pid = os.fork()
if pid == 0:
    print("child", os.getpid(), flush=True)
    blocking()
    nonblocking()
    os._exit(0)
_, st = os.waitpid(pid, 0)
nonblocking()
subprocess.run([sys.executable, "-c", "import os, socket; print('exec', os.getpid()); "
                "socket.create_connection((%r, 80)).close()" % HOST], check=True)
sys.exit(st)
"""


def isolate_case(flag):
    rec = Recorder()
    r = run([sys.executable, "-c", ISOLATE_PROG], f"socks5h://127.0.0.1:{rec.port}", [flag])
    if r.returncode != 0:
        fail("the program failed")
    pids = {k: v for k, v in values(r.stdout).items() if k in ("parent", "child", "exec")}
    if len(pids) != 3:
        fail("the program did not report its three processes")
    time.sleep(0.2)  # the recorder's threads append after their reply is sent
    with rec.lock:
        seen = collections.Counter(rec.users)
    print("users seen:", dict(seen))
    if sum(seen.values()) != 5 or None in seen:
        fail("expected 5 connections, each with a user name")
    if flag == "-i":
        if len(seen) != 1:
            fail("one invocation used several users")
        user = next(iter(seen))
        if not re.fullmatch(r"leakproof-[0-9a-f]{16}", user):
            fail(f"unexpected per-invocation user {user!r}")
        return
    base = {u.rsplit("-", 1)[0] for u in seen}
    if len(base) != 1 or not re.fullmatch(r"leakproof-[0-9a-f]{16}", base.pop()):
        fail("per-process users do not share one random base")
    want = {"parent": 2, "child": 2, "exec": 1}
    for who, pid in pids.items():
        got = sum(n for u, n in seen.items() if u.endswith(f"-{pid}"))
        if got != want[who]:
            fail(f"{who} (pid {pid}) used its own user {got} times, expected {want[who]}")


CASES = {
    "threads": lambda: stress_case("threads", 64, 100, False),
    "fork": lambda: stress_case("fork", 16, 20, False),
    "tsan_threads": lambda: stress_case("threads", 64, 100, True),
    "tsan_fork": lambda: stress_case("fork", 16, 20, True),
    "fail_fds": fail_fds_case,
    "isolate_invocation": lambda: isolate_case("-i"),
    "isolate_process": lambda: isolate_case("--isolate=process"),
}

if __name__ == "__main__":
    CASES[sys.argv[1]]()
    print("PASS")
