"""Real SOCKS servers on loopback for leakproof's integration tests.

Every server listens on 127.0.0.1 at a port picked at run time and is stopped
at interpreter exit: atexit kills whole process groups (danted and sshd
fork), and a watchdog process does the same if this process is SIGKILLed.

The destination name tests use, web.only-proxy.test, resolves only inside
the proxies: each real proxy runs in its own mount namespace (`unshare -m`)
with a private /etc/hosts bind-mounted over the real one (and `hosts: files`
so unknown names never become DNS queries). A client that resolved the name
itself would therefore fail, which is the point.

    import lptest
    web = lptest.web_server()          # .host .port .name .body .requests
    d = lptest.dante(auth=True)        # .host .port .addr .user .password
    env = lptest.start_all()           # every server, as LP_* variables

A server whose binary is missing raises lptest.Missing. Server output goes
to lptest.TMP/<kind>.log; set LPTEST_KEEP=1 to keep that directory.
"""
import atexit
import ctypes
import http.server
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

WEB_NAME = "web.only-proxy.test"
WEB_BODY = "leakproof-known-body-7f3a"
HERE = os.path.dirname(os.path.abspath(__file__))

TMP = tempfile.mkdtemp(prefix="lptest-")
_procs = []  # Popen objects; each leads its own process group


class Missing(RuntimeError):
    """A server's binary is not installed."""


class Server:
    """Where a server listens and how to log in; `env()` gives its LP_* variables."""

    def __init__(self, kind, host, port, user=None, password=None, proc=None, **extra):
        self.kind, self.host, self.port = kind, host, port
        self.user, self.password, self.proc = user, password, proc
        self.__dict__.update(extra)

    @property
    def addr(self):
        return f"{self.host}:{self.port}"

    def __repr__(self):
        cred = f" {self.user}:{self.password}" if self.user else ""
        return f"<{self.kind} {self.addr}{cred}>"


# ---------------------------------------------------------------- processes

# Kills the process groups of our servers if this process dies without
# running atexit (SIGKILL, crash). It learns the groups through a pipe and
# acts on EOF, which the kernel delivers however we die. PDEATHSIG alone is
# not enough: danted changes its uid, which clears it.
_WATCHDOG_CODE = r"""
import os, signal, sys
groups = set()
for line in sys.stdin:
    g = int(line)
    if g > 0:
        groups.add(g)
    else:
        groups.discard(-g)
for g in groups:
    try:
        os.killpg(g, signal.SIGKILL)
    except OSError:
        pass
"""
_watchdog = None


def _watch(pgid):
    """Tell the watchdog about a process group (negative: forget it)."""
    global _watchdog
    if _watchdog is None:
        _watchdog = subprocess.Popen([sys.executable, "-c", _WATCHDOG_CODE],
                                     stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     start_new_session=True, text=True)
    try:
        _watchdog.stdin.write(f"{pgid}\n")
        _watchdog.stdin.flush()
    except (OSError, ValueError):
        pass


def stop_all():
    """Stop every server started so far. Safe to call more than once."""
    while _procs:
        p = _procs.pop()
        _killpg(p.pid, signal.SIGTERM)
        try:
            p.wait(timeout=3)
        except subprocess.TimeoutExpired:
            pass
        # The leader may be gone while forked children (danted, sshd) live on.
        _killpg(p.pid, signal.SIGKILL)
        try:
            p.wait(timeout=3)
        except subprocess.TimeoutExpired:
            pass
        _reap_group(p.pid)
        _watch(-p.pid)


def _reap_group(pgid):
    # Killed grandchildren were re-parented to us (we are a subreaper, see
    # spawn()); reap them so no <defunct> server lingers after the tests.
    while True:
        try:
            pid, _ = os.waitpid(-pgid, 0)
        except ChildProcessError:
            return
        except InterruptedError:
            continue


def _cleanup():
    stop_all()
    if _watchdog is not None:
        _watchdog.stdin.close()
        _watchdog.wait()
    if os.environ.get("LPTEST_KEEP"):
        print(f"lptest: logs kept in {TMP}", file=sys.stderr)
    else:
        shutil.rmtree(TMP, ignore_errors=True)


atexit.register(_cleanup)


def _killpg(pgid, sig):
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


try:
    # Looked up here, not in the forked child, where as little as possible should run.
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):
    _prctl = None


def _die_with_parent():
    # preexec_fn: the child gets SIGKILL when its parent dies. A cheap first
    # line behind the watchdog (it does not reach forked grandchildren and is
    # cleared when a daemon changes uid).
    if _prctl is not None:
        _prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def spawn(argv, log_name):
    """Start argv in its own process group; stdout+stderr go to TMP/log_name."""
    if _prctl is not None:
        _prctl(36, 1)  # PR_SET_CHILD_SUBREAPER: orphaned daemon children come to us
    log = open(os.path.join(TMP, log_name), "ab")
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                         start_new_session=True, preexec_fn=_die_with_parent)
    log.close()
    _procs.append(p)
    _watch(p.pid)
    return p


def _log_tail(log_name, n=15):
    try:
        with open(os.path.join(TMP, log_name), errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def stop(p):
    """Stop one process started by spawn(), before the others."""
    _stop(p)


def _stop(p):
    if p in _procs:
        _procs.remove(p)
    _killpg(p.pid, signal.SIGKILL)
    p.wait()
    _reap_group(p.pid)
    _watch(-p.pid)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, host="127.0.0.1", timeout=5.0, proc=None):
    end = time.time() + timeout
    while time.time() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"exited with status {proc.returncode}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {host}:{port}")


def _start(kind, make_argv, ready, attempts=3):
    """Start a server on a fresh free port, retrying if another process took
    the port between free_port() and the server's bind()."""
    log_name = f"{kind}.log"
    err = None
    for _ in range(attempts):
        port = free_port()
        p = spawn(make_argv(port), log_name)
        try:
            ready(port, p)
            return port, p
        except (RuntimeError, OSError) as e:
            err = e
            _stop(p)
    raise RuntimeError(f"{kind} did not start: {err}\n{_log_tail(log_name)}")


def write(path, text, mode=0o644):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def need(*names):
    """Absolute path of the first installed binary among names, else Missing."""
    for n in names:
        path = shutil.which(n) or next(
            (f"{d}/{n}" for d in ("/usr/sbin", "/sbin") if os.access(f"{d}/{n}", os.X_OK)), None)
        if path:
            return path
    raise Missing(f"{names[0]} not installed")


def in_mount_ns(binds, argv):
    """argv inside a private mount namespace with files bind-mounted: {target: source}.

    util-linux unshare makes the new namespace's mounts private, so the
    binds never show up on the host.
    """
    script = " && ".join(f"mount --bind '{src}' '{dst}'" for dst, src in binds.items())
    return ["unshare", "-m", "sh", "-c", script + ' && exec "$@"', "sh"] + list(argv)


def proxy_binds():
    """Files the proxies see, as {target: private copy}.

    /etc/hosts is the only place web.only-proxy.test exists. nsswitch.conf
    says `hosts: files`, so a name the tests did not plan for fails at once
    instead of becoming a DNS query that leaves the machine.
    """
    hosts = write(os.path.join(TMP, "proxy-hosts"),
                  f"127.0.0.1 localhost\n::1 localhost ip6-localhost\n127.0.0.1 {WEB_NAME}\n")
    try:
        with open("/etc/nsswitch.conf") as f:
            lines = [l for l in f if not l.startswith("hosts:")]
    except OSError:
        lines = []
    nss = write(os.path.join(TMP, "proxy-nsswitch.conf"), "".join(lines) + "hosts: files\n")
    return {"/etc/hosts": hosts, "/etc/nsswitch.conf": nss}


def private_accounts(user, password):
    """Copies of /etc/passwd and /etc/shadow with `user` added; returns {target: copy}.

    For servers that check the system password database: they get these
    bind-mounted in their namespace, the real files stay untouched.
    """
    try:
        hashed = subprocess.run(["openssl", "passwd", "-6", password], check=True,
                                capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt  # removed in Python 3.13, hence only a fallback
        hashed = crypt.crypt(password, crypt.mksalt(crypt.METHOD_SHA512))
    binds = {}
    for name, line in (("passwd", f"{user}:x:4242:4242:leakproof test:/nonexistent:/usr/sbin/nologin\n"),
                       ("shadow", f"{user}:{hashed}:19000:0:99999:7:::\n")):
        with open(f"/etc/{name}") as f:
            text = "".join(l for l in f if not l.startswith(user + ":"))
        binds[f"/etc/{name}"] = write(os.path.join(TMP, f"{name}-{user}"),
                                      text + line, 0o644 if name == "passwd" else 0o600)
    return binds


# ---------------------------------------------------------------- SOCKS probe

def recv_exact(s, n):
    """Exactly n bytes from socket s; OSError if the peer closes first."""
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise OSError("the peer closed the connection")
        buf += chunk
    return buf


def socks5_connect(proxy_port, host, port, user=None, password=None, timeout=5.0):
    """A SOCKS5 CONNECT by name through 127.0.0.1:proxy_port; returns the socket."""
    s = socket.create_connection(("127.0.0.1", proxy_port), timeout=timeout)
    try:
        s.sendall(b"\x05\x01" + (b"\x02" if user else b"\x00"))
        ver, method = recv_exact(s, 2)
        if method == 2:
            u, p = user.encode(), password.encode()
            s.sendall(bytes([1, len(u)]) + u + bytes([len(p)]) + p)
            if recv_exact(s, 2)[1] != 0:
                raise OSError("authentication refused")
        elif method != 0:
            raise OSError(f"no acceptable method ({method})")
        h = host.encode()
        s.sendall(b"\x05\x01\x00\x03" + bytes([len(h)]) + h + struct.pack(">H", port))
        ver, rep, _, atyp = recv_exact(s, 4)
        if rep != 0:
            raise OSError(f"SOCKS5 reply {rep}")
        recv_exact(s, {1: 4, 4: 16}.get(atyp) or recv_exact(s, 1)[0])
        recv_exact(s, 2)
        return s
    except BaseException:
        s.close()
        raise


def probe_banner(proxy_port, target_port, prefix, **cred):
    """Ready check: reach target_port by WEB_NAME through the proxy and read a banner."""
    with socks5_connect(proxy_port, WEB_NAME, target_port, **cred) as s:
        data = s.recv(64)
    if not data.startswith(prefix):
        raise RuntimeError(f"unexpected banner {data!r}")


# ---------------------------------------------------------------- servers

class _WebHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive for 1.1 clients, close for 1.0

    def do_GET(self):
        body = self.server.body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.server.requests += 1

    def log_message(self, *a):
        pass


class _WebServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024


def web_server(body=WEB_BODY):
    """HTTP on 127.0.0.1 in a thread of this process; every GET returns `body`.

    `.requests` counts answered GETs. Reach it as http://web.only-proxy.test:PORT/
    through a proxy.
    """
    srv = _WebServer(("127.0.0.1", 0), _WebHandler)
    srv.body, srv.requests = body, 0
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    atexit.register(srv.shutdown)
    port = srv.server_address[1]
    return Server("web", "127.0.0.1", port, name=WEB_NAME, body=body, httpd=srv,
                  env=lambda: {"LP_WEB_PORT": str(port), "LP_WEB_NAME": WEB_NAME,
                               "LP_WEB_BODY": body})


def dante(auth=False, user="lpuser", password="lppass-3141"):
    """dante-server: SOCKS4 and SOCKS5 (no SOCKS4a), optionally RFC 1929 auth.

    CONNECT, BIND and UDP ASSOCIATE, all on loopback (bindreply and udpreply
    are the rules for what comes back from the peer or through the relay).

    With auth, danted checks the password database, so it runs with private
    /etc/passwd and /etc/shadow that contain `user`.
    """
    sockd = need("danted", "sockd")
    binds = proxy_binds()
    if auth:
        binds.update(private_accounts(user, password))
    kind = "dante-auth" if auth else "dante"

    def argv(port):
        conf = write(os.path.join(TMP, f"{kind}-{port}.conf"), f"""
logoutput: stderr
internal: 127.0.0.1 port = {port}
external: 127.0.0.1
clientmethod: none
socksmethod: {"username" if auth else "none"}
user.privileged: root
user.unprivileged: nobody
client pass {{ from: 127.0.0.0/8 to: 0.0.0.0/0 }}
socks pass {{ from: 127.0.0.0/8 to: 0.0.0.0/0
              command: bind connect udpassociate bindreply udpreply }}
""")
        return in_mount_ns(binds, [sockd, "-f", conf, "-N", "1"])

    port, p = _start(kind, argv, lambda port, p: wait_port(port, proc=p))
    if not auth:
        return Server(kind, "127.0.0.1", port, proc=p, env=lambda: {"LP_DANTE": f"127.0.0.1:{port}"})
    return Server(kind, "127.0.0.1", port, user, password, proc=p,
                  env=lambda: {"LP_DANTE_AUTH": f"127.0.0.1:{port}",
                               "LP_DANTE_USER": user, "LP_DANTE_PASS": password})


def microsocks(auth=False, user="lpms", password="lpms-pass-2718", host="127.0.0.1"):
    """microsocks: SOCKS5 only; with auth, RFC 1929 against -u/-P. `host`:
    the address it listens on (::1 for a proxy reached over IPv6)."""
    bin_ = need("microsocks")
    kind = ("microsocks-auth" if auth else "microsocks") + ("6" if ":" in host else "")
    extra = ["-u", user, "-P", password] if auth else []
    port, p = _start(kind,
                     lambda port: in_mount_ns(proxy_binds(),
                                              [bin_, "-i", host, "-p", str(port)] + extra),
                     lambda port, p: wait_port(port, host=host, proc=p))
    addr = f"[{host}]" if ":" in host else host
    if not auth:
        return Server(kind, addr, port, proc=p,
                      env=lambda: {"LP_MICROSOCKS": f"{addr}:{port}"})
    return Server(kind, addr, port, user, password, proc=p,
                  env=lambda: {"LP_MICROSOCKS_AUTH": f"{addr}:{port}",
                               "LP_MICROSOCKS_USER": user, "LP_MICROSOCKS_PASS": password})


def ssh_socks(timeout=15.0):
    """OpenSSH dynamic forwarding (ssh -D): SOCKS4 and SOCKS5, no auth.

    A private sshd (own config, host key and authorized_keys; key auth only)
    resolves forwarded names, so it is the one in the namespace with the
    private /etc/hosts; the ssh client never resolves them.
    """
    sshd, ssh, keygen = need("sshd"), need("ssh"), need("ssh-keygen")
    d = os.path.join(TMP, "ssh")
    os.makedirs(d, exist_ok=True)
    for key in ("host_key", "client_key"):
        if not os.path.exists(os.path.join(d, key)):
            subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-C", "lptest",
                            "-f", os.path.join(d, key)], check=True)
    shutil.copy(os.path.join(d, "client_key.pub"), os.path.join(d, "authorized_keys"))
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation dir

    def sshd_argv(port):
        conf = write(os.path.join(d, f"sshd-{port}.conf"), f"""
ListenAddress 127.0.0.1:{port}
HostKey {d}/host_key
PidFile none
AuthorizedKeysFile {d}/authorized_keys
AuthenticationMethods publickey
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
AllowTcpForwarding yes
UseDNS no
LogLevel ERROR
""")
        # -e: log to stderr (our log file), not syslog.
        return in_mount_ns(proxy_binds(), [sshd, "-D", "-e", "-f", conf])

    sshd_port, _ = _start("sshd", sshd_argv, lambda port, p: wait_port(port, timeout=timeout, proc=p))

    def ssh_argv(port):
        return [ssh, "-N", "-F", "/dev/null", "-D", f"127.0.0.1:{port}",
                "-i", os.path.join(d, "client_key"), "-o", "IdentitiesOnly=yes",
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "BatchMode=yes", "-o", "ExitOnForwardFailure=yes",
                "-o", "ServerAliveInterval=30", "-o", "LogLevel=ERROR",
                "-p", str(sshd_port), "root@127.0.0.1"]

    def ready(port, p):
        # The -D port opens before the session is authenticated; only a
        # forwarded connection proves the whole chain (and the private hosts).
        wait_port(port, timeout=timeout, proc=p)
        end = time.time() + timeout
        while True:
            try:
                return probe_banner(port, sshd_port, b"SSH-")
            except (OSError, RuntimeError):
                if p.poll() is not None or time.time() > end:
                    raise
                time.sleep(0.2)

    port, p = _start("ssh-D", ssh_argv, ready)
    return Server("ssh-socks", "127.0.0.1", port, proc=p, sshd_port=sshd_port,
                  env=lambda: {"LP_SSH_SOCKS": f"127.0.0.1:{port}",
                               "LP_SSHD": f"127.0.0.1:{sshd_port}"})


def shadowsocks(password="lp-ss-pass-1618", method="chacha20-ietf-poly1305"):
    """shadowsocks-libev with UDP: ss-local (a SOCKS5 server, no auth, CONNECT
    and UDP ASSOCIATE) in front of ss-server, both on loopback with -u.

    ss-server resolves destination names, so it runs with the private hosts.
    `.port` is ss-local's SOCKS port.
    """
    server_bin, local_bin = need("ss-server"), need("ss-local")
    common = ["-k", password, "-m", method, "-u", "-t", "60"]

    def server_argv(port):
        return in_mount_ns(proxy_binds(),
                           [server_bin, "-s", "127.0.0.1", "-p", str(port)] + common)

    server_port, _ = _start("ss-server", server_argv, lambda port, p: wait_port(port, proc=p))

    def local_argv(port):
        return [local_bin, "-s", "127.0.0.1", "-p", str(server_port), "-b", "127.0.0.1",
                "-l", str(port)] + common

    port, p = _start("ss-local", local_argv, lambda port, p: wait_port(port, proc=p))
    return Server("shadowsocks", "127.0.0.1", port, proc=p, server_port=server_port,
                  env=lambda: {"LP_SHADOWSOCKS": f"127.0.0.1:{port}"})


def fault_proxy(count_file=None, timeout=5.0, first_bytes=None):
    """tests/harness/fault_proxy.py: Tor extensions and injected faults.

    `.port` is the SOCKS port; `.mute` and `.close` the never-answering and
    closing ports. With count_file, the number of connections accepted on the
    SOCKS port is kept in that file (`.connects()` reads it). With
    first_bytes, each connection appends there (hex, one line) what the
    client sent before the proxy answered: a pipelined handshake whole.
    """
    ports_file = os.path.join(TMP, "fault-ports.json")
    argv = [sys.executable, os.path.join(HERE, "fault_proxy.py"), "--ports-file", ports_file]
    if count_file:
        argv += ["--count-file", count_file]
    if first_bytes:
        argv += ["--first-bytes", first_bytes]
    p = spawn(argv, "fault_proxy.log")
    end = time.time() + timeout
    while not os.path.exists(ports_file):
        if p.poll() is not None or time.time() > end:
            _stop(p)
            raise RuntimeError(f"fault_proxy did not start\n{_log_tail('fault_proxy.log')}")
        time.sleep(0.02)
    with open(ports_file) as f:
        ports = json.load(f)
    os.unlink(ports_file)

    def split(a):
        h, port = a.rsplit(":", 1)
        return h, int(port)

    host, port = split(ports["fault"])

    def env():
        e = {"LP_FAULT": ports["fault"], "LP_FAULT_MUTE": ports["mute"],
             "LP_FAULT_CLOSE": ports["close"]}
        if count_file:
            e["LP_FAULT_CONNECTS"] = count_file
        return e

    def connects():
        with open(count_file) as f:
            return int(f.read())

    return Server("fault", host, port, proc=p, mute=split(ports["mute"]),
                  close=split(ports["close"]), count_file=count_file,
                  connects=connects, env=env)


# ---------------------------------------------------------------- everything

def start_all(skip_missing=True, warn=sys.stderr):
    """Start every server; returns the LP_* environment for them.

    A missing binary leaves its variables out (one line on `warn`) so the
    tests can skip those cases; any other failure raises.
    """
    env, missing = {}, set()
    starters = [
        web_server,
        lambda: dante(auth=False),
        lambda: dante(auth=True),
        lambda: microsocks(auth=False),
        lambda: microsocks(auth=True),
        ssh_socks,
        shadowsocks,
        lambda: fault_proxy(count_file=os.path.join(TMP, "fault-connects")),
    ]
    for start in starters:
        try:
            env.update(start().env())
        except Missing as e:
            if not skip_missing:
                raise
            if str(e) not in missing:  # one line per binary, not per server
                missing.add(str(e))
                print(f"lptest: {e}; its servers are not started", file=warn)
    return env
