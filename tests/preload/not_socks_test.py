#!/usr/bin/env python3
"""The wrapper pointed at a real server that is not a SOCKS proxy names it.

python3 not_socks_test.py CASE WRAPPER [LEAKPROOF-CONNECT], CASE one of ssh,
tls, http (leakproof-connect's error line is checked in the ssh case). The test
runs itself again in a new network namespace (`unshare -n`, loopback only):
gnutls-serv cannot be told to listen on loopback alone, and nothing a test
starts may be reachable from outside. There it starts the real server and
runs curl (and, for ssh, a blocking Python client, the seccomp supervisor and
a chain whose second hop is the sshd) under `leakproof -p URL`, and checks:

  * the program's connect fails, and the log says in one line what answered:
    "proxy 127.0.0.1:PORT answered like an SSH server, not SOCKS" — the hop
    that answered, also when it is the second of a chain;
  * the destination (an HTTP server on loopback, with --proxy-loopback) got
    no request and the test's logging DNS server no query: failed closed.

What the real servers do with a SOCKS client's first bytes (measured, and
pinned here):
  * OpenSSH's sshd sends its banner "SSH-2.0-..." on accept: every form.
  * GnuTLS (gnutls-serv) answers a record it cannot parse with a fatal alert
    (15 03 03 00 02 02 0a) once it has a record header (5 bytes): SOCKS4a and
    pipelined SOCKS5 get it; a plain SOCKS5 greeting (3 bytes) gets nothing,
    and the connect times out.
  * OpenSSL (openssl s_server) sends no alert to bytes that do not look like
    TLS ("wrong version number") and closes: the log says the proxy closed
    the connection during the handshake.
  * node's http module answers any byte that cannot begin a request with
    "HTTP/1.1 400 Bad Request" at once: every form.
  * Python's http.server waits for the end of a request line, which no SOCKS
    message has: the connect times out.
"""
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "harness"))
import netns  # noqa: E402  (no side effect: the harness proper is imported inside)
TIMEOUT = "3"  # --timeout for the cases where the server never answers


def fail(msg):
    print(f"FAIL: {msg}")
    sys.exit(1)


class Checks:
    """Runs programs under the wrapper and checks the one line it logs."""

    def __init__(self, wrapper, connect_tool):
        import pltest  # after the namespace exists: its servers start in it

        self.pltest = pltest
        self.wrapper = wrapper
        self.connect_tool = connect_tool
        self.dns = pltest.Dns()
        self.web = pltest.HttpServer()
        self.url = f"http://127.0.0.1:{self.web.port}/"
        self.runs = 0

    def expect(self, proxies, said, extra=(), program=None):
        """`leakproof -p P... --proxy-loopback extra -- program`: fails, and
        `said` is in exactly one line of its log."""
        argv = program or ["curl", "-sS", "--max-time", "20", self.url]
        flags = [a for p in proxies for a in ("-p", p)] + ["--proxy-loopback", *extra]
        r = self.pltest.run_wrapped(self.wrapper, argv, self.dns, extra=flags, timeout=60)
        self.runs += 1
        if r.returncode == 0 or self.pltest.BODY in r.stdout:
            fail(f"{argv[0]} through {proxies} succeeded")
        lines = [l for l in r.stderr.splitlines() if said in l]
        if len(lines) != 1 or not lines[0].startswith("leakproof: "):
            fail(f"expected one log line saying {said!r}, got:\n{r.stderr}")
        print("  ok:", lines[0])

    def finish(self):
        self.pltest.no_dns(self.dns)
        if self.web.requests != 0:
            fail(f"the destination got {self.web.requests} requests: a direct connection")
        print(f"PASS ({self.runs} runs, 0 DNS queries, 0 requests at the destination)")


def named(port, what):
    return f"proxy 127.0.0.1:{port} answered like {what}, not SOCKS"


BLOCKING_CLIENT = ("import socket, sys\n"
                   "try:\n"
                   "    socket.create_connection(('127.0.0.1', int(sys.argv[1])))\n"
                   "except OSError as e:\n"
                   "    print('connect failed:', e, file=sys.stderr); sys.exit(1)\n")


def ssh_case(c):
    import lptest
    ssh = lptest.ssh_socks()
    port = ssh.sshd_port
    said = named(port, "an SSH server")
    at = f"127.0.0.1:{port}"
    # (The wrapper takes no socks4:// proxy: it could not carry names.)
    for url in (f"socks5h://{at}", f"socks5h://{at}?pipeline=1", f"socks4a://{at}",
                f"socks5h://u:p@{at}"):
        c.expect([url], said)
    # A blocking socket (no timeout: the synchronous path), and the supervisor.
    c.expect([f"socks5h://{at}"], said,
             program=[sys.executable, "-c", BLOCKING_CLIENT, str(c.web.port)])
    c.expect([f"socks5h://{at}"], said, extra=["--supervise"])
    # A chain: the first hop (a real SOCKS server) is fine, the second is
    # the sshd, and the line names the second.
    micro = c.pltest.microsocks()
    c.expect([micro, f"socks5h://{at}"], said)
    if c.connect_tool:  # the library's front end: leakproof-connect's error line
        r = subprocess.run([c.connect_tool, "-p", f"socks5h://{at}", "web.only-proxy.test", "80"],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
        print("$ leakproof-connect ->", r.returncode, r.stderr.strip())
        if r.returncode != 1 or r.stderr != f"leakproof-connect: web.only-proxy.test:80: {said}\n":
            fail("leakproof-connect does not name the SSH server in one line")
        c.runs += 1


def cert(tmp):
    d = os.path.join(tmp, "tls")
    os.makedirs(d, exist_ok=True)
    key, crt = os.path.join(d, "key.pem"), os.path.join(d, "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", crt, "-days", "1", "-subj", "/CN=localhost"], check=True,
                   capture_output=True)
    return key, crt


def tls_case(c):
    import lptest
    key, crt = cert(c.pltest.TMP)
    port = lptest.free_port()
    proc = lptest.spawn(["gnutls-serv", "--port", str(port), "--x509certfile", crt,
                         "--x509keyfile", key], "gnutls-serv.log")
    lptest.wait_port(port, proc=proc)
    at = f"127.0.0.1:{port}"
    said = named(port, "a TLS server")
    c.expect([f"socks4a://{at}"], said)
    c.expect([f"socks5h://{at}?pipeline=1"], said)
    c.expect([f"socks5h://u:p@{at}?pipeline=1"], said)
    # Three greeting bytes are not a record header: gnutls-serv waits.
    c.expect([f"socks5h://{at}"], f"via socks5h://{at}: Connection timed out",
             extra=["--timeout", TIMEOUT])

    ossl = lptest.free_port()
    proc = lptest.spawn(["openssl", "s_server", "-quiet", "-accept", f"127.0.0.1:{ossl}",
                         "-cert", crt, "-key", key], "openssl-s_server.log")
    lptest.wait_port(ossl, proc=proc)
    c.expect([f"socks5h://127.0.0.1:{ossl}?pipeline=1"],
             "closed the connection during the SOCKS handshake")


NODE_HTTP = ("require('http').createServer((q, r) => r.end('not socks\\n'))"
             ".listen(+process.argv[1], '127.0.0.1')")


def http_case(c):
    import lptest
    port = lptest.free_port()
    proc = lptest.spawn(["node", "-e", NODE_HTTP, str(port)], "node-http.log")
    lptest.wait_port(port, proc=proc)
    at = f"127.0.0.1:{port}"
    said = named(port, "an HTTP server")
    for url in (f"socks5h://{at}", f"socks5h://{at}?pipeline=1", f"socks4a://{at}"):
        c.expect([url], said)

    py = lptest.free_port()
    proc = lptest.spawn([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(py)],
                        "python-http.log")
    lptest.wait_port(py, proc=proc)
    c.expect([f"socks5h://127.0.0.1:{py}?pipeline=1"],
             f"via socks5h://127.0.0.1:{py}: Connection timed out", extra=["--timeout", TIMEOUT])


CASES = {"ssh": ssh_case, "tls": tls_case, "http": http_case}


def inside(case, wrapper, connect_tool=None):
    netns.loopback_up()
    sys.path.insert(0, HERE)
    c = Checks(wrapper, connect_tool)
    CASES[case](c)
    c.finish()
    return 0


def main():
    if len(sys.argv) in (4, 5) and sys.argv[1] == "--inside":
        started = time.monotonic()
        rc = inside(sys.argv[2], *sys.argv[3:])
        print(f"({time.monotonic() - started:.1f} s)")
        return rc
    if len(sys.argv) not in (3, 4) or sys.argv[1] not in CASES:
        print(__doc__, file=sys.stderr)
        return 2
    return netns.rerun_isolated(__file__, [sys.argv[1], *map(os.path.abspath, sys.argv[2:])],
                                240)


if __name__ == "__main__":
    sys.exit(main())
