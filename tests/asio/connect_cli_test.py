"""leakproof-connect's UDP (-u) and BIND (-l) modes, the real binary against
real servers: dante (both), shadowsocks-libev (UDP), microsocks and ssh -D
(neither: exit 1 and a line naming what is missing).

python3 connect_cli_test.py CASE LEAKPROOF_CONNECT. Cases: udp_dante,
udp_shadowsocks, bind_socks5, bind_socks4, unsupported.
"""
import os
import select
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
import lptest  # noqa: E402

BINARY = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else None


def fail(why):
    print(f"FAIL: {why}", file=sys.stderr)
    sys.exit(1)


def check(ok, why):
    if not ok:
        fail(why)


class UdpEcho:
    """Answers every datagram on 127.0.0.1 with b"echo:" + it."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.seen = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            data, peer = self.sock.recvfrom(65535)
            self.seen.append(data)
            self.sock.sendto(b"echo:" + data, peer)


def run_udp(url, host, port, lines, wait=None):
    argv = [BINARY, "-p", url, "-u", host, str(port)]
    if wait is not None:
        argv[1:1] = ["-w", str(wait)]
    start = time.monotonic()
    r = subprocess.run(argv, input=lines, capture_output=True, timeout=60)
    elapsed = time.monotonic() - start
    print("$", " ".join(argv), f"-> rc={r.returncode} in {elapsed:.2f} s")
    print("stdout:", r.stdout[-400:])
    print("stderr:", r.stderr[-400:])
    return r, elapsed


def udp_case(url):
    echo = UdpEcho()
    for host in ("127.0.0.1", lptest.WEB_NAME):
        echo.seen.clear()
        # The last line has no newline: it is a datagram all the same.
        r, elapsed = run_udp(url, host, echo.port, b"one\ntwo\n\nthree")
        check(r.returncode == 0, f"-u to {host} exited {r.returncode}")
        check(sorted(r.stdout.split(b"\n")) == sorted([b"echo:one", b"echo:two", b"echo:", b"echo:three", b""]),
              f"answers to {host}: {r.stdout!r}")
        check(sorted(echo.seen) == sorted([b"one", b"two", b"", b"three"]),
              f"the destination saw {echo.seen!r}")
        check(elapsed >= 0.9, "did not wait -w (default 1 s) after the end of stdin")
    r, elapsed = run_udp(url, "127.0.0.1", echo.port, b"quick\n", wait=0)
    check(r.returncode == 0 and r.stdout in (b"", b"echo:quick\n"), "-w 0")
    check(elapsed < 5, "-w 0 still waited")


def read_line(pipe, deadline):
    line = b""
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        check(left > 0, f"timed out waiting for a line (so far {line!r})")
        ready, _, _ = select.select([pipe], [], [], left)
        if ready:
            b = os.read(pipe.fileno(), 1)
            check(b != b"", f"end of stream waiting for a line (so far {line!r})")
            line += b
    return line.decode()


def bind_case(url):
    p = subprocess.Popen([BINARY, "-p", url, "-l", "127.0.0.1", "0"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    try:
        bound = read_line(p.stderr, deadline)
        print("stderr:", bound.strip())
        prefix = "leakproof-connect: bound "
        check(bound.startswith(prefix), f"first line {bound!r}")
        host, port = bound[len(prefix):].strip().rsplit(":", 1)
        peer = socket.create_connection((host, int(port)), timeout=10)
        peer.sendall(b"from the peer\n")  # before the accept: must not be eaten
        accepted = read_line(p.stderr, deadline)
        print("stderr:", accepted.strip())
        expected = f"leakproof-connect: accepted 127.0.0.1:{peer.getsockname()[1]}\n"
        check(accepted == expected, f"second line {accepted!r}, expected {expected!r}")
        check(read_line(p.stdout, deadline) == "from the peer\n", "the peer's bytes")
        p.stdin.write(b"back\n")
        p.stdin.close()  # end of stdin half-closes toward the peer
        got = b""
        while not got.endswith(b"back\n") or len(got) < 5:
            chunk = peer.recv(100)
            if not chunk:
                break
            got += chunk
        check(got == b"back\n", f"the peer got {got!r}")
        check(peer.recv(100) == b"", "the peer did not see the end of stdin")
        peer.close()
        rc = p.wait(timeout=10)
        check(rc == 0, f"exit status {rc}")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def unsupported_case():
    ms, ssh = lptest.microsocks(), lptest.ssh_socks()
    for server in (ms, ssh):
        url = f"socks5h://{server.addr}"
        for argv, missing in ((["-u", "127.0.0.1", "9"], "proxy does not support UDP ASSOCIATE"),
                              (["-l", "127.0.0.1", "0"], "proxy does not support BIND")):
            r = subprocess.run([BINARY, "-p", url] + argv, stdin=subprocess.DEVNULL,
                               capture_output=True, text=True, timeout=60)
            print("$", url, " ".join(argv), f"-> rc={r.returncode}", r.stderr.strip())
            check(r.returncode == 1, f"{server.kind} {argv[0]}: exit {r.returncode}")
            lines = r.stderr.strip().splitlines()
            check(len(lines) == 1 and lines[0].endswith(missing),
                  f"{server.kind} {argv[0]}: {r.stderr!r}")


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    case = sys.argv[1]
    if case == "udp_dante":
        udp_case(f"socks5h://{lptest.dante().addr}")
    elif case == "udp_shadowsocks":
        udp_case(f"socks5h://{lptest.shadowsocks().addr}")
    elif case == "bind_socks5":
        bind_case(f"socks5h://{lptest.dante().addr}")
    elif case == "bind_socks4":
        bind_case(f"socks4://{lptest.dante().addr}")
    elif case == "unsupported":
        unsupported_case()
    else:
        print(f"unknown case {case}", file=sys.stderr)
        return 2
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
