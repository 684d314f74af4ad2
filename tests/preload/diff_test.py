"""A socket under the wrapper answers as the kernel's own: the differential suite.

    diff_test.py CASE WRAPPER DIFF_PROBE

diff_probe runs the same scripted calls twice, on a direct connection to
the gate server below and under `leakproof --proxy-loopback` through a
proxy to the same server; every printed row must be equal, or be one of
the differences pinned in PINNED (each with its reason, listed in the
README's "Differences from a direct connection"). CASE names the proxy
and the mode: dante (a real server, keeps half-closed streams), fault
(tests/harness/fault_proxy.py, the Tor-like test proxy), each also with
`--supervise` (the probe is dynamic: the supervisor then drops the
interposer and answers connect() itself).

"While pending" must mean the same on both sides: a direct loopback
connect completes at once, so the gate keeps its accept queue full (one
"plug" connection, listen backlog 0) when the probe asks. The SYN of the
probe's connect -- or of the proxy's connect to the gate -- is dropped
until the probe says "@release" and the plug is accepted; the kernel's SYN
retransmission (1 s) then completes it. Both sides are pending for the same
reason, for about a second.
"""
import os
import select
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pltest  # noqa: E402
import lptest  # noqa: E402

BYE = b"BYE\n"


class Gate:
    """Echoes, answers EOF with BYE; can hold connects pending."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0)  # one queued connection fills the queue
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.open = True
        self.plug = None
        self.generation = 0
        threading.Thread(target=self._loop, daemon=True).start()

    def _serve(self, c):
        c.setblocking(True)
        c.settimeout(20)
        try:
            while True:
                d = c.recv(4096)
                if not d:
                    c.sendall(BYE)
                    break
                c.sendall(d)
        except OSError:
            pass
        finally:
            c.close()

    def _accept_all(self):
        """Under lock: serves everything queued."""
        while True:
            try:
                c, _ = self.sock.accept()
            except BlockingIOError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _loop(self):
        while True:
            select.select([self.sock], [], [], 0.02)
            with self.lock:
                if self.open:
                    self._accept_all()

    def plug_queue(self):
        with self.lock:
            self.open = False
            self.plug = self._plug()
            self.generation += 1
            gen = self.generation
        time.sleep(0.05)  # the plug's last ACK is in the queue
        # Under --supervise the probe's connect() blocks until the proxy
        # answers, so it cannot ask for the release: the gate gives it anyway.
        threading.Timer(2.5, self.release, args=(gen,)).start()

    def _plug(self):
        """Under lock: fills the accept queue with a connection of our own.
        A proxy's connect from an earlier script may land in the queue first
        (with optimistic data the probe goes on before the proxy has reached
        the gate): it is served and the plug tried again."""
        for _ in range(20):
            self._accept_all()
            try:
                return socket.create_connection(("127.0.0.1", self.port), timeout=0.5)
            except TimeoutError:
                continue
        raise RuntimeError("the gate's accept queue never had room for the plug")

    def release(self, gen=None):
        with self.lock:
            if self.open or (gen is not None and gen != self.generation):
                return
            try:
                self.sock.settimeout(1)
                c, _ = self.sock.accept()  # the plug, first in the queue
                c.close()
            finally:
                self.sock.setblocking(False)
            self.plug.close()
            self.plug = None
            self.open = True


def run_probe(argv, gate, timeout=90):
    """Runs the probe, answering its gate requests; returns (rows, stderr)."""
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, bufsize=1,
                         errors="backslashreplace")
    killer = threading.Timer(timeout, p.kill)
    killer.start()
    rows, order, ended = {}, [], False
    try:
        for line in p.stdout:
            line = line.rstrip("\n")
            if line == "@end":
                ended = True
            elif line == "@plug":
                gate.plug_queue()
            elif line == "@release":
                gate.release()
            elif line == "@release_later":
                threading.Timer(0.3, gate.release).start()
            elif " = " in line:
                k, v = line.split(" = ", 1)
                rows[k] = v
                order.append(k)
            if line.startswith("@") and line != "@end":
                p.stdin.write("ok\n")
                p.stdin.flush()
        p.wait(timeout=10)
    finally:
        killer.cancel()
    err = p.stderr.read()
    print("$", " ".join(argv), "-> rc", p.returncode)
    if not ended:
        print(err[-3000:])
        pltest.fail("the probe did not finish its script")
    return rows, order, err


# ---------------------------------------------------------------- pins
#
# Where the wrapper cannot answer as the kernel does: (direct, wrapped) for
# each row, with the reason. README "Differences from a direct connection"
# lists the same.

# Shut down while pending: the kernel drops the connect (the socket is
# unconnected again); under the wrapper the stream to the proxy is shut and
# the handshake fails, which later calls report as a failed connect.
SHUTDOWN_PENDING = {
    "shutdown_rdwr_pending.so_error": ("0", "0"),
}

PINNED_COMMON = {
    # A refused connect leaves the kernel's socket "done": recv() says end of
    # file. Ours is made unconnected again by connect(AF_UNSPEC), which clears
    # that mark: ENOTCONN. Every other answer after a refusal is the kernel's.
    "refused_nb.recv": ("0", "-1 ENOTCONN"),
}

# The supervisor answers a non-blocking connect() only when the handshake
# is over (its tracee waits in the trapped call): never EINPROGRESS, so
# nothing is ever pending, and getpeername() shows the proxy (nothing in the
# process remembers the program's address).
PINNED_SUPERVISE = {
    "blocking.getpeername": ("127.0.0.1:PORT len 16", "127.0.0.1:PROXY len 16"),
    "v4mapped.getpeername": ("::ffff:127.0.0.1:PORT len 28", "::ffff:127.0.0.1:PROXY len 28"),
    # Refused at once (like a kernel whose refusal is known before connect()
    # returns): the error is connect()'s, SO_ERROR has none left, and a
    # second connect() is a new attempt, refused again.
    "refused_nb.poll": ("1 OUT|ERR|HUP", "1 OUT|HUP"),
    "refused_nb.so_error": ("ECONNREFUSED", "0"),
    "refused_nb.connect_again": ("-1 ECONNABORTED", "-1 ECONNREFUSED"),
    "refused_recvmmsg.poll": ("1 OUT|ERR|HUP", "1 OUT|HUP"),
    "refused_recvmmsg.recvmmsg": ("-1 ECONNREFUSED", "-1 ENOTCONN"),
}
# Optimistic data: the socket is reported connected once the request is out,
# before the proxy has reached the destination, and a refusal arrives after
# that, as the errno of the next read or write (README "Optimistic data").
PINNED_OPTIMISTIC = {
    "refused_blocking.connect": ("-1 ECONNREFUSED", "0"),
    "refused_blocking.connect_again": ("-1 ECONNREFUSED", "-1 EISCONN"),
    "refused_blocking.connect_working": ("0", "-1 EISCONN"),
    "refused_blocking.peek": ("HEL", "-1 ECONNREFUSED"),
    "refused_blocking.greeting": ("'HELLO/'", "-1 ENOTCONN"),
    "refused_recvmmsg.poll": ("1 OUT|ERR|HUP", "1 OUT"),
    "refused_recvmmsg.recvmmsg": ("-1 ECONNREFUSED", "-1 EAGAIN"),
    # Non-blocking: writable at once, SO_ERROR 0 and the peer known; the
    # probe's send goes to the proxy (which drops it with the refusal).
    "refused_nb.poll": ("1 OUT|ERR|HUP", "1 OUT"),
    "refused_nb.so_error": ("ECONNREFUSED", "0"),
    "refused_nb.getpeername": ("-1 ENOTCONN", "127.0.0.1:CLOSED len 16"),
    "refused_nb.recv": ("0", "-1 EAGAIN"),
    "refused_nb.send": ("-1 EPIPE", "2"),
    "refused_nb.connect_again": ("-1 ECONNABORTED", "0"),
}
# A refusal races the early "connected": when it is back before the program's
# next call (a loaded machine, a fast proxy), that call gets the kernel's
# answer instead of the pinned one, and the script's later rows follow from
# that. In these scripts a row is right when it is pinned or the kernel's,
# and once one went the kernel's way the rest of its script is not compared.
RACED_OPTIMISTIC = ("refused_blocking", "refused_recvmmsg", "refused_nb")

# The scripts built around a pending window: under --supervise their first
# row is pinned (connect() said 0 when the handshake was done, where the
# kernel says EINPROGRESS) and the rows after it, which the probe ran on a
# connected socket, are not compared.
PENDING_SCRIPTS = ("nb", "shutdown_rdwr_pending", "shutdown_wr_pending", "close_pending",
                   "dup_pending", "toggle", "toggle_recvmmsg")

PINNED = {
    "dante": PINNED_COMMON,
    "fault": PINNED_COMMON,
    "dante_supervise": {**PINNED_COMMON, **PINNED_SUPERVISE},
    "fault_supervise": {**PINNED_COMMON, **PINNED_SUPERVISE},
    "dante_optimistic": {**PINNED_COMMON, **PINNED_OPTIMISTIC},
    "fault_optimistic": {**PINNED_COMMON, **PINNED_OPTIMISTIC},
}


def proxy_for(case):
    url = (pltest.dante() if case.startswith("dante") else
           f"socks5h://127.0.0.1:{lptest.fault_proxy().port}")
    return url + "?optimistic=1" if case.endswith("_optimistic") else url


def compare(case, direct, wrapped, order):
    pins = dict(PINNED[case])
    supervised = case.endswith("_supervise")
    if supervised:
        for script in PENDING_SCRIPTS:
            pins[f"{script}.connect"] = ("-1 EINPROGRESS", "0")
    # With optimistic data the pending window ends when the request is out,
    # not when the destination answers: only the connect() that opens it
    # (EINPROGRESS on both sides) is comparable.
    no_window = supervised or case.endswith("_optimistic")
    raced = set()  # scripts where a refusal came back before the early "connected" was used
    bad, skipped = [], 0
    print(f"{'row':44} {'direct':30} {'wrapped':30} verdict")
    for k in order:
        d, w = direct.get(k), wrapped.get(k)
        script = k.split(".")[0]
        racy = case.endswith("_optimistic") and script in RACED_OPTIMISTIC
        if racy and script in raced:
            verdict = "after the race"
            skipped += 1
        elif racy and k in pins and d == w:
            verdict = "refusal first"
            raced.add(script)
        elif (no_window and k.split(".")[0] in PENDING_SCRIPTS and k not in pins and
                not (k.endswith(".connect") and not supervised)):
            verdict = "no pending window"
            skipped += 1
        elif k in pins:
            verdict = "pinned" if (d, w) == pins[k] else "PIN BROKEN"
        else:
            verdict = "equal" if d == w else "MISMATCH"
        if verdict not in ("equal", "pinned", "no pending window", "after the race",
                           "refusal first"):
            bad.append(k)
        print(f"{k:44} {str(d):30} {str(w):30} {verdict}")
    missing = [k for k in wrapped if k not in direct]
    if missing:
        bad += missing
        print("rows only under the wrapper:", missing)
    equal = len(order) - skipped - len(bad) - sum(1 for k in order if k in pins)
    if raced:
        print("the refusal came back before the early connect was used in:", sorted(raced))
    print(f"{len(order)} rows: {equal} equal, {sum(1 for k in order if k in pins)} pinned, "
          f"{skipped} not comparable (no pending window), {len(bad)} wrong")
    if bad:
        pltest.fail(f"{len(bad)} rows differ from the kernel's answers: {bad}")


def main():
    case, wrapper, probe = sys.argv[1:4]
    gate = Gate()
    closed = socket.socket()  # bound, never listening: nobody takes the port
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    argv = [probe, str(gate.port), str(closed_port)]
    direct, order, _ = run_probe(argv, gate)
    extra = ["--supervise"] if case.endswith("_supervise") else []
    proxy = proxy_for(case)
    lp = [wrapper, "-p", proxy, "--proxy-loopback", "--timeout", "10"] + extra + ["--"]
    os.environ["LP_DIFF_PROXY_PORT"] = proxy.rsplit(":", 1)[1].split("?")[0]
    wrapped, _, err = run_probe(lp + argv, gate)
    if err.strip():
        print("stderr under the wrapper:", err[-2000:])
    compare(case, direct, wrapped, order)


if __name__ == "__main__":
    main()
    print("PASS")
