"""Servers for the preload tests, all on loopback, all stopped at exit.

The proxies (microsocks, dante), free ports, files and mount namespaces come
from tests/harness/lptest.py; this module adds what only the preload tests
need: an HTTP server (in-process thread, counts requests), a dnsmasq that
logs every query, a counting TCP listener, a delayed proxy, and the way
these tests run a command under the wrapper.
"""
import atexit
import http.server
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
import lptest  # noqa: E402

WEB_NAME = lptest.WEB_NAME
BODY = "leakproof-known-body-7f3a\n"

TMP = tempfile.mkdtemp(prefix="lp-preload-")
atexit.register(shutil.rmtree, TMP, ignore_errors=True)

free_port, wait_port, write, in_mount_ns = (lptest.free_port, lptest.wait_port, lptest.write,
                                            lptest.in_mount_ns)


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def no_dns(dns):
    q = dns.queries()
    if q:
        fail("DNS queries leaked:\n" + "".join(q))


def expect_leak_probe_refusals(stderr, dns_addr, responder=True):
    """The leak probe's resolver calls each left one refusal line (the other
    paths are answered locally), and so did its port-53 calls when no
    supervisor's responder answers them (`responder` False)."""
    lines = ["res_query p10.leak.test: refused:", "res_nsend: refused:"]
    port53 = [f"sendto {dns_addr}:53: refused:", f"sendmmsg {dns_addr}:53: refused:",
              f"connect {dns_addr}:53: refused:"]
    for line in lines + ([] if responder else port53):
        if line not in stderr:
            fail(f"no log line {line!r}")


def probe_values(stdout):
    """The C probes' "key value key value" lines, as numbers."""
    vals = {}
    for line in stdout.splitlines():
        parts = line.split()
        for k, v in zip(parts[::2], parts[1::2]):
            vals[k] = float(v)
    return vals


def run_wrapped(wrapper, argv, dns, proxy=None, extra=(), input=None, timeout=60, wrapped=True):
    """`wrapper [-p proxy] extra -- argv` (or argv alone) in dns's namespace;
    prints the command line, exit status and the tails of its output."""
    lp = ([wrapper] + (["-p", proxy] if proxy else []) + list(extra) + ["--"]
          if wrapped else []) + list(argv)
    t0 = time.time()
    r = subprocess.run(dns.wrap(lp), capture_output=True, text=True, input=input,
                       timeout=timeout, cwd=TMP)
    print("$", " ".join(lp), f"-> rc={r.returncode} ({time.time() - t0:.1f}s)")
    print("stdout:", r.stdout[-500:])
    print("stderr:", r.stderr[-1500:])
    return r


class HttpServer:
    """Serves TMP/www: index.html is BODY; counts requests."""

    def __init__(self):
        self.root = os.path.join(TMP, "www")
        os.makedirs(self.root, exist_ok=True)
        write(os.path.join(self.root, "index.html"), BODY)
        self.requests = 0
        outer = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *a, **k):
                super().__init__(*a, directory=outer.root, **k)

            def log_message(self, *a):
                outer.requests += 1

        class Server(http.server.ThreadingHTTPServer):
            request_queue_size = 128  # 20 connections at once must not overflow the backlog

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class Listener:
    """Accepts and counts connections; never answers (a black hole when `accept` is False)."""

    def __init__(self, accept=True):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.count = 0
        if accept:
            threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.count += 1
            c.close()


def microsocks():
    return f"socks5h://127.0.0.1:{lptest.microsocks().port}"


def microsocks6():
    return f"socks5h://[::1]:{lptest.microsocks(host='::1').port}"


def dante():
    return f"socks5h://127.0.0.1:{lptest.dante().port}"


def delayed(proxy_url, delay_ms=10):
    """proxy_url behind bench/delay_relay.py: each direction delayed by delay_ms,
    a proxy 2*delay_ms away."""
    relay = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench",
                         "delay_relay.py")
    port = free_port()
    target = proxy_url.rsplit(":", 1)[1]
    lptest.spawn(["python3", relay, str(port), target, str(delay_ms)], f"delay-relay-{port}.log")
    wait_port(port)
    return f"socks5h://127.0.0.1:{port}"


class Dns:
    """A dnsmasq on a random loopback address that logs every query it gets."""

    def __init__(self):
        self.addr = f"127.53.{random.randint(1, 254)}.{random.randint(1, 254)}"
        self.log = os.path.join(TMP, f"dnsmasq-{self.addr}.log")
        write(self.log, "")
        lptest.spawn(["dnsmasq", "--keep-in-foreground", "--no-daemon", "--log-queries",
               f"--log-facility={self.log}", "--no-resolv", "--no-hosts",
               f"--listen-address={self.addr}", "--bind-interfaces", "--port=53",
               "--pid-file=", "--user=root"], f"dnsmasq-{self.addr}.out")
        self.resolv = write(os.path.join(TMP, "resolv.conf"),
                            f"nameserver {self.addr}\noptions timeout:1 attempts:1\n")
        self.hosts = write(os.path.join(TMP, "client-hosts"),
                           "127.0.0.1 localhost\n::1 localhost\n")
        end = time.time() + 5
        while time.time() < end:
            with open(self.log) as f:
                if "started" in f.read():
                    return
            time.sleep(0.05)

    def queries(self):
        time.sleep(0.3)  # dnsmasq writes its log asynchronously
        with open(self.log) as f:
            return [l for l in f if "query[" in l]

    def wrap(self, argv):
        """argv in a namespace whose only resolver is this dnsmasq."""
        return in_mount_ns({"/etc/resolv.conf": self.resolv, "/etc/hosts": self.hosts}, argv)
