#!/usr/bin/env python3
"""A private, offline Tor test network inside a Linux network namespace.

Topology (all on loopback, inside namespace ``lp-tor-<pid>``, or
``lp-tor-cli-<pid>`` from the CLI; the namespace has only ``lo``, so no process
in it can reach any non-loopback address):

    127.0.0.10-12  three directory authorities (ORPort 5000, DirPort 7000)
    127.0.0.20-24  five exit relays            (ORPort 5000)
    (no address)   onion service tor: listens nowhere; HS port 80 -> web
    127.0.0.40     test client: SocksPort 9050, ControlPort 9051 (cookie auth);
                   also SocksPort 127.0.0.1:9050, where `leakproof --tor` looks
    127.0.0.53     dnsmasq: the only resolver the exits use; knows the test
                   names and one PTR record (PTR_ADDR -> PTR_NAME)
    127.0.0.54     dnsmasq for programs run with run_program(): knows nothing,
                   logs every query (proof that a program asked nobody)
    127.0.0.80:80  tiny HTTP server serving WEB_BODY

Each node listens on its own address. Outgoing loopback connections and DNS
queries all come from 127.0.0.1 (tor does not apply OutboundBindAddress* to
loopback destinations), but each exit's resolver keeps one UDP socket, so
dnsmasq's logged source port plus `ss -uanp` in the namespace tell which
process asked (see dns_queries/udp_port_owners).

Usage:
    python3 tests/tor/tornet.py up    --dir DIR   # prints a JSON summary
    python3 tests/tor/tornet.py check --dir DIR
    python3 tests/tor/tornet.py down  --dir DIR
or, from Python:
    with TorNetwork(dir) as net: ...   # always torn down, even on Ctrl-C

Bring-up is bounded by UP_TIMEOUT; each readiness step polls until it holds
(a fresh network fails its first circuits now and then), so a slow machine
only makes it slower, not flaky.

Requires root (netns), Debian packages: tor, dnsmasq-base, curl, iproute2.
"""
from __future__ import annotations

import argparse
import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

# ---- fixed layout ---------------------------------------------------------
AUTH_ADDRS = [f"127.0.0.{10 + i}" for i in range(3)]
EXIT_ADDRS = [f"127.0.0.{20 + i}" for i in range(5)]
CLIENT_ADDR = "127.0.0.40"
DNS_ADDR = "127.0.0.53"
PROGRAM_DNS_ADDR = "127.0.0.54"
WEB_ADDR, WEB_PORT = "127.0.0.80", 80
OR_PORT, DIR_PORT = 5000, 7000
SOCKS_PORT, CONTROL_PORT = 9050, 9051
WEB_NAME = "web.only-exit.test"
TEST_NAMES = {WEB_NAME: WEB_ADDR}
# A PTR record only the exits' DNS has. Not internal (RFC 5737 TEST-NET-1):
# Tor refuses reverse lookups of private and loopback addresses.
PTR_ADDR, PTR_NAME = "192.0.2.7", "ptr.only-exit.test"
WEB_BODY = b"leakproof tornet: hello through tor\n"
NS_PREFIX = "lp-tor-"
# Seconds for the whole `up`, including onion reachability. 15-30 s on an
# idle 2-core machine, ~50 s under a parallel ctest; generous on purpose.
UP_TIMEOUT = 200.0
# Seconds the onion service gets to upload its descriptor before it is
# restarted, once (see _wait_onion_published).
ONION_STALL = 45.0

# Voting: Tor rejects V3AuthVoteDelay+V3AuthDistDelay >= V3AuthVotingInterval/2,
# and its testing minimum delay is 2 s, so 10 s is the shortest steady-state
# interval; the first (bootstrap) round may be shorter because its delays only
# need to be below the interval itself.
AUTH_VOTING = """\
TestingV3AuthInitialVotingInterval 5
TestingV3AuthInitialVoteDelay 2
TestingV3AuthInitialDistDelay 2
TestingV3AuthVotingStartOffset 0
V3AuthVotingInterval 10
V3AuthVoteDelay 2
V3AuthDistDelay 2
V3AuthNIntervalsValid 2
"""


class TorNetError(RuntimeError):
    pass


# ---- small helpers --------------------------------------------------------
def run(argv, *, input=None, timeout=30, check=True):
    """Run a short command, bounded; return CompletedProcess (text)."""
    return subprocess.run([str(a) for a in argv], input=input, timeout=timeout,
                          check=check, capture_output=True, text=True)


def wait_for(predicate, timeout, what, interval=0.5, on_poll=None):
    """Poll predicate() until truthy or timeout (raises TorNetError)."""
    deadline = time.monotonic() + timeout
    while True:
        if on_poll:
            on_poll()
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TorNetError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is dead for our purposes (its parent simply hasn't reaped it).
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


def tail(path, lines=15):
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# ---- network namespace ----------------------------------------------------
class Namespace:
    """A named netns (``ip netns``) with only loopback up."""

    def __init__(self, name):
        self.name = name

    def create(self):
        run(["ip", "netns", "add", self.name])
        run(["ip", "netns", "exec", self.name, "ip", "link", "set", "lo", "up"])

    def exists(self):
        return Path("/run/netns", self.name).exists()

    def argv(self, argv):
        # `ip netns exec` execs in place, so the Popen pid is the real process.
        return ["ip", "netns", "exec", self.name, *map(str, argv)]

    def run(self, argv, **kw):
        return run(self.argv(argv), **kw)

    def pids(self):
        if not self.exists():
            return []
        out = run(["ip", "netns", "pids", self.name], check=False).stdout
        return [int(p) for p in out.split()]

    def destroy(self, grace=5.0):
        """Stop every process left in the namespace, then delete it.

        Every process in an lp-tor-* namespace was started by this module, so
        this only ever ends our own processes."""
        if not self.exists():
            return
        stop_pids(self.pids(), grace)
        run(["ip", "netns", "del", self.name], check=False)


def stop_pids(pids, grace=5.0, popens=()):
    """SIGTERM, wait (bounded), then SIGKILL whatever is left."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            for p in popens:
                p.poll()  # reap our own children so they stop being zombies
            if not any(pid_alive(p) for p in pids):
                return
            time.sleep(0.1)


def reap_stale_namespaces():
    """Delete lp-tor-<pid> namespaces whose owner died (e.g. SIGKILLed by a
    ctest timeout) so that a crashed run never poisons the next one."""
    out = run(["ip", "netns", "list"], check=False).stdout
    for m in re.finditer(rf"^({NS_PREFIX}(\d+))\b", out, re.M):
        if not pid_alive(int(m.group(2))):
            Namespace(m.group(1)).destroy(grace=2.0)


# ---- key material ---------------------------------------------------------
def make_authority_keys(node_dir, addr):
    """Create v3 authority keys; return (v3ident, relay fingerprint)."""
    keys = node_dir / "keys"
    keys.mkdir(parents=True, mode=0o700)
    # tor-gencert reads the identity-key passphrase from fd 0; empty is fine
    # because only the signing key + certificate are used at run time.
    run(["tor-gencert", "--create-identity-key", "-m", "12",
         "-a", f"{addr}:{DIR_PORT}",
         "-i", keys / "authority_identity_key",
         "-s", keys / "authority_signing_key",
         "-c", keys / "authority_certificate",
         "--passphrase-fd", "0"], input="\n")
    cert = (keys / "authority_certificate").read_text()
    v3ident = re.search(r"^fingerprint ([0-9A-F]{40})$", cert, re.M).group(1)
    return v3ident, relay_fingerprint(node_dir, node_dir.name)


def relay_fingerprint(node_dir, nick):
    """Let tor create the relay identity key and report its fingerprint.

    --list-fingerprint never touches the network; the placeholder --dirserver
    just keeps tor from loading the public authorities' list."""
    run(["tor", "--list-fingerprint", "--orport", "1", "--nickname", nick,
         "--dirserver", "x 127.0.0.1:1 " + "f" * 40,
         "--datadirectory", node_dir, "--log", "err stderr"])
    return (node_dir / "fingerprint").read_text().split()[1]


# ---- torrc builders -------------------------------------------------------
def common_torrc(node_dir, nick, dirauth_lines, owner_pid):
    lines = [
        "TestingTorNetwork 1",
        f"DataDirectory {node_dir}",
        f"Nickname {nick}",
        f"Log notice file {node_dir}/notice.log",
        # info logs are what explain a slow or failed onion-service publish
        *([f"Log info file {node_dir}/info.log"] if os.environ.get("TORNET_DEBUG") else []),
        "SafeLogging 0",
        "LogTimeGranularity 1",
        "ShutdownWaitLength 0",          # make `down` fast
        "AssumeReachable 1",             # skip self-reachability tests
        "PathsNeededToBuildCircuits 0.67",
        "ConnLimit 64",
        # Authorities vote these flags for everyone: a tiny network never
        # satisfies the normal bandwidth/uptime thresholds.
        "TestingDirAuthVoteExit *",
        "TestingDirAuthVoteHSDir *",
        "TestingDirAuthVoteGuard *",
        "TestingMinExitFlagThreshold 0",
        "DirAuthorityFallbackRate 1",
        # Vanguards-lite picks an onion circuit's second hop from a set chosen
        # out of the first consensus it sees; in a network this young that
        # consensus may list a single relay, and then every onion circuit
        # fails ("Could not find a node that matches the configured
        # _HSLayer2Nodes set") until the set rotates, days later.
        "VanguardsLiteEnabled 0",
    ]
    if owner_pid:
        # Safety net: tor exits by itself if the test process vanishes.
        lines.append(f"__OwningControllerProcess {owner_pid}")
    return "\n".join(lines + dirauth_lines) + "\n"


def relay_torrc(addr):
    return f"Address {addr}\nORPort {addr}:{OR_PORT}\nSocksPort 0\n"


def authority_torrc(addr):
    return (relay_torrc(addr) + f"DirPort {addr}:{DIR_PORT}\n"
            "AuthoritativeDirectory 1\nV3AuthoritativeDirectory 1\n"
            "ContactInfo auth@tornet.invalid\n"
            "ExitRelay 0\nExitPolicy reject *:*\n" + AUTH_VOTING)


def exit_torrc(addr, resolv_conf):
    return relay_torrc(addr) + f"""\
ExitRelay 1
ExitPolicyRejectPrivate 0
ExitPolicyRejectLocalInterfaces 0
ExitPolicy accept 127.0.0.0/8:*
# Microdescriptor policy summaries only list ports open to *all* addresses, so
# without this clients think no exit serves hostnames. Harmless: the namespace
# has no route anywhere but loopback.
ExitPolicy accept *:*
ServerDNSResolvConfFile {resolv_conf}
ServerDNSAllowNonRFC953Hostnames 1
ServerDNSDetectHijacking 0
ServerDNSTestAddresses {WEB_NAME}
ServerDNSSearchDomains 0
ServerDNSRandomizeCase 0
"""


def onion_torrc(node_dir):
    return f"""\
SocksPort 0
HiddenServiceDir {node_dir}/hs
# Descriptor uploads are only logged at info level; keep just that domain so
# `up` can wait for the upload instead of racing it (see _onion_published).
Log [rend]info file {node_dir}/hs.log
HiddenServicePort 80 {WEB_ADDR}:{WEB_PORT}
"""


def client_torrc():
    # 127.0.0.1:9050 is the usual Tor address (`leakproof --tor`'s default);
    # nothing else in the namespace can have taken it.
    return f"""\
SocksPort {CLIENT_ADDR}:{SOCKS_PORT} ExtendedErrors IsolateSOCKSAuth
SocksPort 127.0.0.1:{SOCKS_PORT} ExtendedErrors IsolateSOCKSAuth
ControlPort {CLIENT_ADDR}:{CONTROL_PORT}
CookieAuthentication 1
"""


# ---- tiny HTTP server (run inside the namespace via `_serve`) -------------
def serve_http(addr, port, body_file):
    body = Path(body_file).read_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    http.server.ThreadingHTTPServer((addr, port), Handler).serve_forever()


# ---- control port (run inside the namespace via `_control`) ---------------
def control_query(addr, port, cookie_file, command):
    import socket
    with socket.create_connection((addr, port), timeout=10) as s:
        f = s.makefile("rwb")
        cookie = Path(cookie_file).read_bytes().hex()
        for line in (f"AUTHENTICATE {cookie}", command, "QUIT"):
            f.write(line.encode() + b"\r\n")
        f.flush()
        return f.read().decode(errors="replace")


def watch_events(addr, port, cookie_file, events, out_file):
    """Subscribe to control-port events and append them to out_file until
    killed; the first line written is SETEVENTS' own "250 OK"."""
    import socket
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with socket.create_connection((addr, port), timeout=10) as s, \
            open(out_file, "a", buffering=1) as out:
        s.settimeout(None)
        f = s.makefile("rwb")
        cookie = Path(cookie_file).read_bytes().hex()
        for line in (f"AUTHENTICATE {cookie}", f"SETEVENTS {events}"):
            f.write(line.encode() + b"\r\n")
        f.flush()
        f.readline()  # AUTHENTICATE's 250 OK
        for line in f:
            out.write(line.decode(errors="replace").rstrip("\r\n") + "\n")


# ---- the network ----------------------------------------------------------
class TorNetwork:
    """Build, start, check and stop the test network rooted at ``dir``."""

    def __init__(self, directory, owner_pid=None, detached=False):
        self.dir = Path(directory).resolve()
        self.state_file = self.dir / "state.json"
        # lp-tor-<pid> namespaces are reaped once <pid> is gone; a detached
        # network (CLI `up`) must outlive its creator, so it is named apart.
        tag = "cli-" if detached else ""
        self.ns = Namespace(f"{NS_PREFIX}{tag}{os.getpid()}")
        self.owner_pid = owner_pid
        self.popens = []
        self.procs = {}  # name -> pid
        self.programs = []  # start_program()'s, stopped with the namespace
        self.onion = None

    # -- context manager: always clean up ----------------------------------
    def __enter__(self):
        if self.owner_pid is None:
            self.owner_pid = os.getpid()
        # SIGTERM (e.g. from a test runner) must unwind through __exit__ like
        # Ctrl-C does; only the main thread may install handlers.
        self._old_term = None
        if threading.current_thread() is threading.main_thread():
            self._old_term = signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            self.up()  # cleans up after itself if it fails
        except BaseException:
            self._restore_sigterm()
            raise
        return self

    def __exit__(self, *exc):
        try:
            self.down()
        finally:
            self._restore_sigterm()
        return False

    def _restore_sigterm(self):
        if self._old_term is not None:
            signal.signal(signal.SIGTERM, self._old_term)
            self._old_term = None

    # -- lifecycle -----------------------------------------------------------
    def up(self, timeout=UP_TIMEOUT):
        """Start everything and wait until both paths work; on any failure
        (or Ctrl-C) stop what was started before re-raising."""
        t0 = time.monotonic()
        reap_stale_namespaces()
        self._prepare_dir()  # refuses a dir with a running network: nothing started yet
        try:
            self.ns.create()
            self._save_state()
            dirauth_lines = self._make_authorities()
            self._start_dns()
            self._start_program_dns()
            self._start_web()
            self._start_tors(dirauth_lines)
            self._wait_ready(timeout - (time.monotonic() - t0))
        except BaseException:
            self.down()
            raise
        self.up_seconds = round(time.monotonic() - t0, 1)
        self._save_state()
        return self.summary()

    def down(self):
        state = self._load_state()
        if state:
            self.ns = Namespace(state["namespace"])
            pids = list(state.get("pids", {}).values())
        else:
            pids = list(self.procs.values())
        stop_pids(pids, popens=self.popens)
        self.ns.destroy()  # anything else that slipped into the namespace
        for p in self.popens + self.programs:
            p.poll()
        if self.state_file.exists():
            self.state_file.unlink()

    # -- building blocks -------------------------------------------------------
    def _prepare_dir(self):
        if self.state_file.exists():
            raise TorNetError(f"{self.dir} holds a running network; run `down` first")
        self.dir.mkdir(parents=True, exist_ok=True)
        # Fresh keys and data every time: a stale consensus would confuse tor.
        shutil.rmtree(self.dir / "nodes", ignore_errors=True)
        (self.dir / "nodes").mkdir(mode=0o700)
        (self.dir / "web-body").write_bytes(WEB_BODY)
        # dnsmasq answers PTR queries from its hosts files too.
        (self.dir / "hosts").write_text(
            "".join(f"{a} {n}\n" for n, a in [*TEST_NAMES.items(), (PTR_NAME, PTR_ADDR)]))
        (self.dir / "resolv.conf").write_text(f"nameserver {DNS_ADDR}\n")
        (self.dir / "dns.log").write_text("")
        # What programs started by run_program() see as /etc/resolv.conf and
        # /etc/hosts: one quick try at a resolver that knows nothing.
        (self.dir / "program-resolv.conf").write_text(
            f"nameserver {PROGRAM_DNS_ADDR}\noptions timeout:1 attempts:1\n")
        (self.dir / "program-hosts").write_text("127.0.0.1 localhost\n::1 localhost\n")
        (self.dir / "program-dns.log").write_text("")

    def _node_dir(self, nick):
        d = self.dir / "nodes" / nick
        d.mkdir(mode=0o700, exist_ok=True)
        return d

    def _make_authorities(self):
        lines = []
        for i, addr in enumerate(AUTH_ADDRS):
            nick = f"auth{i}"
            v3ident, fp = make_authority_keys(self._node_dir(nick), addr)
            lines.append(f"DirAuthority {nick} orport={OR_PORT} no-v2 "
                         f"v3ident={v3ident} {addr}:{DIR_PORT} {fp}")
        return lines

    def _spawn(self, name, argv, log_name=None):
        log = open(self.dir / f"{log_name or name}.out", "wb")
        # New session: a Ctrl-C in the terminal reaches only us, and we stop
        # the children in order (see down()).
        p = subprocess.Popen(self.ns.argv(argv), stdout=log, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        self.popens.append(p)
        self.procs[name] = p.pid
        self._save_state()
        return p

    def _start_dns(self):
        # --local=/#/: names not in the hosts file get NXDOMAIN. Without it
        # dnsmasq (no upstream) answers REFUSED, which an exit's resolver
        # (libevent evdns) takes for a broken server: it stops using it and
        # probes it with "google.com" queries, failing later lookups.
        self._spawn("dnsmasq", [
            "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
            "--no-resolv", "--no-hosts", f"--addn-hosts={self.dir}/hosts", "--local=/#/",
            f"--listen-address={DNS_ADDR}", "--bind-interfaces",
            "--pid-file=", "--user=root", "--log-queries=extra",
            f"--log-facility={self.dir}/dns.log"])

    def _start_program_dns(self):
        # Nothing to serve: every query gets NXDOMAIN at once, and is logged.
        self._spawn("program-dns", [
            "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
            "--no-resolv", "--no-hosts", "--local=/#/", f"--listen-address={PROGRAM_DNS_ADDR}",
            "--bind-interfaces", "--pid-file=", "--user=root", "--log-queries",
            f"--log-facility={self.dir}/program-dns.log"])

    def _start_web(self):
        self._spawn("web", [sys.executable, Path(__file__).resolve(), "_serve",
                            WEB_ADDR, WEB_PORT, self.dir / "web-body"])

    def _start_tors(self, dirauth_lines):
        nodes = [(f"auth{i}", authority_torrc(a)) for i, a in enumerate(AUTH_ADDRS)]
        nodes += [(f"exit{i}", exit_torrc(a, self.dir / "resolv.conf"))
                  for i, a in enumerate(EXIT_ADDRS)]
        nodes += [("client", client_torrc())]
        for nick, extra in nodes:
            self._start_tor(nick, extra, dirauth_lines)
        self._dirauth_lines = dirauth_lines  # for the onion service, started later

    def _start_tor(self, nick, extra, dirauth_lines):
        d = self._node_dir(nick)
        torrc = d / "torrc"
        torrc.write_text(common_torrc(d, nick, dirauth_lines, self.owner_pid) + extra)
        self._spawn(nick, ["tor", "-f", torrc, "--RunAsDaemon", "0"], f"nodes/{nick}/tor")

    def _start_onion(self):
        """The onion service starts once the client has a working exit path,
        i.e. once the consensus lists the whole network: a service that
        starts with a partial one fails its first introduction circuits and
        then waits out Tor's 5-minute retry period."""
        self._start_tor("onion", onion_torrc(self._node_dir("onion")), self._dirauth_lines)

    def _restart_onion(self):
        pid = self.procs.pop("onion")
        old = [p for p in self.popens if p.pid == pid]
        stop_pids([pid], popens=old)
        self.popens = [p for p in self.popens if p.pid != pid]
        (self.dir / "nodes" / "onion" / "hs.log").write_text("")  # count uploads afresh
        self._start_onion()  # same HiddenServiceDir: same keys, same address

    # -- readiness -------------------------------------------------------------
    def _assert_running(self):
        for p in self.popens:
            if p.poll() is not None:
                name = next(n for n, pid in self.procs.items() if pid == p.pid)
                log = self.dir / "nodes" / name / "notice.log"
                if not log.exists():
                    log = self.dir / f"{name}.out"
                raise TorNetError(f"{name} exited with {p.returncode}:\n{tail(log)}")

    def _client_bootstrapped(self):
        log = self.dir / "nodes" / "client" / "notice.log"
        return log.exists() and "Bootstrapped 100%" in log.read_text(errors="replace")

    def _onion_hostname(self):
        f = self.dir / "nodes" / "onion" / "hs" / "hostname"
        return f.exists() and f.read_text().strip()

    def _onion_published(self):
        """True once the service's descriptor is stored on the HSDirs.

        A client that asks before then gets 404 from every responsible HSDir
        and then will not ask those again for 15 minutes, so we must not race
        the upload. Done = every upload of the current descriptor answered 200,
        or at least one did and 10 s passed (an HSDir with an older consensus
        may refuse it; the rest suffice)."""
        log = self.dir / "nodes" / "onion" / "hs.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        stored = text.count("Uploaded hidden service descriptor (status 200")
        started = len(re.findall(r"current descriptor of revision \d+ initiated upload", text))
        if stored == 0:
            return False
        if self._first_upload_seen is None:
            self._first_upload_seen = time.monotonic()
        return stored >= started or time.monotonic() - self._first_upload_seen > 10

    def _fetch_onion_or_reset(self):
        """One bounded onion fetch; on failure clear the client's cached
        onion-service state (NEWNYM) so the next try asks the HSDirs again."""
        if self.fetch(self.onion, max_time=10)[0] == 0:
            return True
        self.control("SIGNAL NEWNYM")
        return False

    def _wait_ready(self, budget):
        deadline = time.monotonic() + budget
        left = lambda: max(1.0, deadline - time.monotonic())
        wait_for(self._client_bootstrapped, left(), "client bootstrap 100%",
                 on_poll=self._assert_running)
        phase = self.control("GETINFO status/bootstrap-phase")
        if "PROGRESS=100" not in phase:
            raise TorNetError(f"control port disagrees: {phase!r}")
        # Prove both paths end to end before declaring the network up.
        wait_for(lambda: self.fetch(WEB_NAME, max_time=10)[0] == 0, left(),
                 f"{WEB_NAME} reachable through an exit", interval=1,
                 on_poll=self._assert_running)
        self._start_onion()
        self.onion = wait_for(self._onion_hostname, left(), "onion hostname file")
        self._wait_onion_published(left)
        wait_for(self._fetch_onion_or_reset, left(), "onion service reachable",
                 interval=1, on_poll=self._assert_running)

    def _wait_onion_published(self, left):
        """Wait for the descriptor upload; if the service has not managed it
        within ONION_STALL seconds, restart it once and wait again (bounded
        by the rest of the budget). A stalled service is one whose first
        introduction circuits all failed: it retries only after a 5-minute
        period, a fresh process at once."""
        for attempt in (1, 2):
            self._first_upload_seen = None
            budget = min(ONION_STALL, left()) if attempt == 1 else left()
            try:
                return wait_for(self._onion_published, budget, "onion descriptor upload",
                                on_poll=self._assert_running)
            except TorNetError:
                if attempt == 2 or left() <= 1.0:
                    raise
                print(f"tornet: no onion descriptor upload after {ONION_STALL:.0f}s; "
                      "restarting the onion service once", file=sys.stderr, flush=True)
                self._restart_onion()

    # -- operations usable by tests --------------------------------------------
    def socks(self):
        return f"{CLIENT_ADDR}:{SOCKS_PORT}"

    def fetch(self, host, path="/", max_time=20, verbose=False, user=None):
        """curl through the client's SocksPort, inside the namespace.
        Returns (curl exit code, body, stderr)."""
        argv = ["curl", "-sS", "--max-time", max_time,
                "--socks5-hostname", self.socks(), f"http://{host}{path}"]
        if verbose:
            argv.insert(1, "-v")
        if user:
            argv[1:1] = ["--proxy-user", user]
        r = self.ns.run(argv, check=False, timeout=max_time + 10)
        return r.returncode, r.stdout, r.stderr

    def resolve(self, name):
        """RESOLVE through Tor (tor-resolve, SOCKS5 RESOLVE extension)."""
        r = self.ns.run(["tor-resolve", "-5", name, self.socks()], check=False)
        return r.returncode, r.stdout.strip(), r.stderr

    def program_argv(self, argv):
        """argv inside the namespace, in a private mount namespace whose
        /etc/resolv.conf and /etc/hosts point at the logging program DNS
        (see program_dns_queries): whatever the program looks up is seen."""
        binds = {"/etc/resolv.conf": self.dir / "program-resolv.conf",
                 "/etc/hosts": self.dir / "program-hosts"}
        script = " && ".join(f"mount --bind '{src}' '{dst}'" for dst, src in binds.items())
        return self.ns.argv(["unshare", "-m", "--propagation", "private",
                             "sh", "-c", script + ' && exec "$@"', "sh", *argv])

    def run_program(self, argv, *, env=None, input=None, timeout=60):
        """Run argv as program_argv() does, bounded; returns CompletedProcess
        (text) whatever its exit status. `env` is added to our environment."""
        return subprocess.run(self.program_argv(argv), input=input, timeout=timeout,
                              capture_output=True, text=True,
                              env={**os.environ, **(env or {})})

    def start_program(self, argv, *, env=None):
        """Like run_program but in the background; returns the Popen. Its pid
        is the program's (every step execs in place) and leads a new process
        group, so os.killpg() stops the program with all its children.
        Anything still running at teardown is stopped with the namespace."""
        p = subprocess.Popen(self.program_argv(argv), stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True,
                             env={**os.environ, **(env or {})}, start_new_session=True)
        self.programs.append(p)
        return p

    def program_dns_queries(self):
        """Every "query[TYPE] NAME" line the program DNS logged, as (type, name)."""
        time.sleep(0.3)  # dnsmasq writes its log asynchronously
        text = (self.dir / "program-dns.log").read_text(errors="replace")
        return re.findall(r" query\[(\w+)\] (\S+) from ", text)

    def watch_streams(self):
        """Start logging the client's STREAM control events (one process,
        stopped with the network); returns the log's path."""
        out = self.dir / "stream-events.log"
        cookie = self.dir / "nodes" / "client" / "control_auth_cookie"
        self._spawn("stream-events", [sys.executable, Path(__file__).resolve(), "_events",
                                      CLIENT_ADDR, CONTROL_PORT, cookie, "STREAM", out])
        wait_for(lambda: out.exists() and "250 OK" in out.read_text(), 15,
                 "SETEVENTS STREAM accepted")
        return out

    def control(self, command):
        """One control-port command (cookie auth), run inside the namespace."""
        cookie = self.dir / "nodes" / "client" / "control_auth_cookie"
        r = self.ns.run([sys.executable, Path(__file__).resolve(), "_control",
                         CLIENT_ADDR, CONTROL_PORT, cookie, command])
        return r.stdout

    def dns_queries(self):
        """[(name, source address, source port)] for every query dnsmasq
        logged (``--log-queries=extra`` adds the source port)."""
        text = (self.dir / "dns.log").read_text(errors="replace")
        return [(n, a, int(p)) for a, p, n in
                re.findall(r" (\S+)/(\d+) query\[\w+\] (\S+) from ", text)]

    def udp_port_owners(self):
        """{local UDP port: pid} inside the namespace. Tor's resolver keeps one
        long-lived UDP socket per nameserver, so this attributes DNS queries
        to the process that made them."""
        out = self.ns.run(["ss", "-uanpH"]).stdout
        return {int(port): int(pid) for port, pid in
                re.findall(r':(\d+)\s+\S+\s+users:\(\("[^"]*",pid=(\d+)', out)}

    def check(self):
        """The `check` command: the known body by test name and by onion."""
        results = {}
        for target in (WEB_NAME, self.onion):
            rc, body, err = self.fetch(target)
            results[target] = {"ok": rc == 0 and body == WEB_BODY.decode(),
                               "curl_rc": rc, "stderr": err.strip()}
        return results

    # -- state -----------------------------------------------------------------
    def summary(self):
        return {
            "namespace": self.ns.name,
            "socks": self.socks(),
            "control": f"{CLIENT_ADDR}:{CONTROL_PORT}",
            "control_cookie": str(self.dir / "nodes/client/control_auth_cookie"),
            "onion": self.onion,
            "test_names": TEST_NAMES,
            "web": f"{WEB_ADDR}:{WEB_PORT}",
            "web_body": WEB_BODY.decode(),
            "dns": DNS_ADDR,
            "dns_log": str(self.dir / "dns.log"),
            "exit_addresses": EXIT_ADDRS,
            "up_seconds": getattr(self, "up_seconds", None),
            "pids": self.procs,
        }

    def _save_state(self):
        self.state_file.write_text(json.dumps(self.summary(), indent=2))

    def _load_state(self):
        try:
            return json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return None

    @classmethod
    def attach(cls, directory):
        """A handle on a network that `up` left running in ``directory``."""
        net = cls(directory)
        state = net._load_state()
        if not state:
            raise TorNetError(f"no running network in {directory}")
        net.ns = Namespace(state["namespace"])
        net.onion = state["onion"]
        net.procs = state["pids"]
        return net


def _raise_interrupt(*_):
    raise KeyboardInterrupt("SIGTERM")


def namespaces_supported():
    """True if we may create network namespaces here (root + kernel support)."""
    if os.geteuid() != 0:
        return False
    probe = Namespace(f"{NS_PREFIX}probe-{os.getpid()}")
    try:
        probe.create()
        return True
    except (subprocess.SubprocessError, OSError):
        return False
    finally:
        run(["ip", "netns", "del", probe.name], check=False)


# ---- CLI -------------------------------------------------------------------
def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_serve":
        return serve_http(argv[1], int(argv[2]), argv[3])
    if argv and argv[0] == "_control":
        print(control_query(argv[1], int(argv[2]), argv[3], argv[4]), end="")
        return 0
    if argv and argv[0] == "_events":
        return watch_events(argv[1], int(argv[2]), argv[3], argv[4], argv[5])
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("command", choices=["up", "check", "down"])
    ap.add_argument("--dir", required=True)
    args = ap.parse_args(argv)
    if args.command == "up":
        print(json.dumps(TorNetwork(args.dir, detached=True).up(), indent=2))
        return 0
    if args.command == "check":
        results = TorNetwork.attach(args.dir).check()
        print(json.dumps(results, indent=2))
        return 0 if all(r["ok"] for r in results.values()) else 1
    TorNetwork(args.dir).down()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except TorNetError as e:
        sys.exit(f"tornet: {e}")
