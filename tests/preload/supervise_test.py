"""Static programs under the seccomp supervisor:
python3 supervise_test.py CASE WRAPPER CACHE_DIR.

A Go client built with CGO_ENABLED=0 (its own resolver, raw system calls)
and a gcc -static C client run under the wrapper: everything goes through
microsocks, the logging dnsmasq sees no query, and nothing connects
directly. The same binaries without the wrapper do leak (the control).
The built binaries are kept in CACHE_DIR, keyed by their source's hash, so
the Go build (~10 s on two cores) runs once, not once per case.
"""
import errno
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time

import pltest
from pltest import BODY, WEB_NAME

WRAPPER = os.path.abspath(sys.argv[2])
CACHE = os.path.abspath(sys.argv[3])
HERE = os.path.dirname(os.path.abspath(__file__))
SKIP = 77  # ctest SKIP_RETURN_CODE: the toolchain is missing


fail, no_dns = pltest.fail, pltest.no_dns


def cached_build(src, name, build):
    """The binary built from src by build(out), reused while src is unchanged."""
    os.makedirs(CACHE, exist_ok=True)
    with open(src, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    out = os.path.join(CACHE, f"{name}-{digest}")
    with open(os.path.join(CACHE, f"{name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel cases: one builds, the others wait
        if not os.path.exists(out):
            build(out + ".tmp")
            os.rename(out + ".tmp", out)
    return out


def go_client():
    if shutil.which("go") is None:
        print("SKIP: no go toolchain (apt-get install golang-go)")
        sys.exit(SKIP)

    def build(out):
        env = dict(os.environ, CGO_ENABLED="0", GOCACHE=os.path.join(CACHE, "gocache"),
                   GOPATH=os.path.join(CACHE, "gopath"), GOFLAGS="", GO111MODULE="off")
        subprocess.run(["go", "build", "-o", out, os.path.join(HERE, "static", "goclient.go")],
                       check=True, env=env, timeout=300)
    return cached_build(os.path.join(HERE, "static", "goclient.go"), "goclient", build)


def raw_client():
    def build(out):
        subprocess.run(["cc", "-static", "-O2", "-o", out,
                        os.path.join(HERE, "static", "rawclient.c")], check=True, timeout=120)
    return cached_build(os.path.join(HERE, "static", "rawclient.c"), "rawclient", build)


def raw_client_dynamic():
    """The same client linked dynamically: the interposer's enforcement point."""
    def build(out):
        subprocess.run(["cc", "-O2", "-o", out, os.path.join(HERE, "static", "rawclient.c")],
                       check=True, timeout=120)
    return cached_build(os.path.join(HERE, "static", "rawclient.c"), "rawclient-dynamic", build)


def run(argv, dns, proxy=None, extra=(), wrapped=True, timeout=80):
    return pltest.run_wrapped(WRAPPER, argv, dns, proxy, extra, timeout=timeout, wrapped=wrapped)


def expect_body(r, needles=("via socks5h://", "supervised")):
    if r.returncode != 0 or BODY.strip() not in r.stdout:
        fail("the body did not arrive")
    for n in needles:
        if n not in r.stderr:
            fail(f"log line {n!r} missing")


def go_fetch_case():
    """By name: Go's own resolver gets a placeholder, the proxy the name."""
    client = go_client()
    dns, web, proxy = pltest.Dns(), pltest.HttpServer(), pltest.microsocks()
    r = run([client, f"http://{WEB_NAME}:{web.port}/"], dns, proxy, ["-v"])
    expect_body(r, ("supervised", f"connect {WEB_NAME}:{web.port} via socks5h://",
                    "DNS answered by the supervisor"))
    no_dns(dns)


def go_bare_leaks_case():
    """The control: the same binary without the wrapper asks dnsmasq."""
    client = go_client()
    dns, web = pltest.Dns(), pltest.HttpServer()
    r = run([client, f"http://{WEB_NAME}:{web.port}/"], dns, wrapped=False)
    if r.returncode == 0:
        fail("the bare client fetched a name only the proxy knows")
    if not dns.queries():
        fail("the bare client sent no DNS query: the control proves nothing")


def go_under_shell_case():
    """A dynamic shell script that runs the static Go client: sh runs under
    the interposer, the Go client below it under the supervisor, and the log
    names each with its mode."""
    client = go_client()
    dns, web, proxy = pltest.Dns(), pltest.HttpServer(), pltest.microsocks()
    script = pltest.write(os.path.join(pltest.TMP, "fetch.sh"),
                          f"#!/bin/sh\necho starting >&2\nexec_it() {{ \"$@\"; }}\n"
                          f"exec_it {client} \"$1\"\n", 0o755)
    r = run([script, f"http://{WEB_NAME}:{web.port}/"], dns, proxy, ["-v"])
    expect_body(r, ("interposer (LD_PRELOAD), supervised (seccomp) below",
                    f"connect {WEB_NAME}:{web.port} via socks5h://"))
    if "goclient" not in r.stderr or "(supervised): connect" not in r.stderr:
        fail("the Go client's log lines do not say it runs supervised")
    no_dns(dns)


def go_many_case():
    """200 connections at once, each its own handshake on a worker."""
    client = go_client()
    dns, web, proxy = pltest.Dns(), pltest.HttpServer(), pltest.microsocks()
    t0 = time.time()
    r = run([client, f"http://{WEB_NAME}:{web.port}/", "200"], dns, proxy)
    print(f"200 fetches in {time.time() - t0:.1f}s")
    if r.returncode != 0 or "fetched 200" not in r.stdout:
        fail("not all 200 fetches succeeded")
    no_dns(dns)


def go_proxy_down_case():
    """A dead proxy: the fetch fails, nothing is connected directly."""
    client = go_client()
    dns, target = pltest.Dns(), pltest.Listener()
    dead = f"socks5h://127.0.0.1:{pltest.free_port()}"
    for url in (f"http://127.0.0.1:{target.port}/", f"http://{WEB_NAME}:{target.port}/"):
        r = run([client, url], dns, dead, ["--proxy-loopback"])
        if r.returncode == 0:
            fail("the fetch succeeded without a proxy")
        if f"via {dead}" not in r.stderr:
            fail("no log line for the failed proxied connect")
    if target.count != 0:
        fail(f"the target saw {target.count} direct connection(s)")
    no_dns(dns)


def c_ip_case():
    """gcc -static, connect() to an IP: through the proxy."""
    client = raw_client()
    dns, web, proxy = pltest.Dns(), pltest.HttpServer(), pltest.microsocks()
    r = run([client, "ip", "127.0.0.1", str(web.port)], dns, proxy, ["-v", "--proxy-loopback"])
    expect_body(r, ("supervised", f"connect 127.0.0.1:{web.port} via socks5h://"))
    no_dns(dns)


def c_script_case():
    """A script whose interpreter is a static program: supervised (not refused),
    and its connect goes through the proxy."""
    client = raw_client()
    dns, web, proxy = pltest.Dns(), pltest.HttpServer(), pltest.microsocks()
    script = pltest.write(os.path.join(pltest.TMP, "fetch.raw"), f"#!{client}\n", 0o755)
    r = run([script, "ip", "127.0.0.1", str(web.port)], dns, proxy, ["-v", "--proxy-loopback"])
    expect_body(r, (f"runs with {client}, which is statically linked",
                    f"connect 127.0.0.1:{web.port} via socks5h://"))
    no_dns(dns)


def c_dns_case(how):
    """gcc -static doing its own DNS: UDP (connected or sendto) or TCP; A, then PTR."""
    client = raw_client()
    dns, web, proxy = pltest.Dns(), pltest.HttpServer(), pltest.microsocks()
    r = run([client, "dns", how, WEB_NAME, str(web.port)], dns, proxy, ["-v"])
    if "resolved 240." not in r.stdout:
        fail("the query was not answered with a placeholder")
    if f"ptr {WEB_NAME}" not in r.stdout:
        fail("the placeholder's PTR query was not answered with its name")
    expect_body(r, ("supervised", f"connect {WEB_NAME}:{web.port} via socks5h://"))
    no_dns(dns)


def c_bare_leaks_case():
    client = raw_client()
    dns = pltest.Dns()
    run([client, "dns", "connect", WEB_NAME, "80"], dns, wrapped=False)
    if not dns.queries():
        fail("the bare client sent no DNS query: the control proves nothing")


def c_packet_case():
    """Packet sockets (root only) would send frames past every address check:
    the filter refuses to create them; without the wrapper they open (the
    control: these tests run as root)."""
    client = raw_client()
    dns = pltest.Dns()
    bare = run([client, "packet"], dns, wrapped=False)
    if bare.stdout.count("packet: opened") != 2:
        fail("the control could not open packet sockets: the test proves nothing")
    r = run([client, "packet"], dns, "socks5h://127.0.0.1:9")
    if r.stdout.count("packet: EPERM") != 2:
        fail("a packet socket was opened under the supervisor")


def marked_env():
    """An environment with a mark of this run: the supervisor is a detached
    process of its own, found by the mark in the environment it inherits."""
    mark = f"{os.getpid()}-{time.time()}"
    return dict(os.environ, LP_TEST_MARK=mark), f"LP_TEST_MARK={mark}"


def supervisor_pids(mark, program_pid):
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if mark.encode() + b"\0" in f.read() and int(pid) != program_pid:
                    pids.append(pid)
        except OSError:
            pass
    return pids


def fd_targets(pid):
    """{fd: what it points to} of a process."""
    out = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            out[int(fd)] = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            pass
    return out


def responder_private_case():
    """The supervisor's DNS responder listens on 127.0.0.1: it must not tell
    another local process which names the program looked up (PTR of a
    placeholder), nor hand out placeholders to it."""
    import re
    import socket
    import struct
    client = raw_client()
    dns, web, proxy = pltest.Dns(), pltest.HttpServer(), pltest.microsocks()
    # A supervised lookup fills the map (web.only-proxy.test -> a placeholder
    # it writes down), then the program idles while we probe the responder
    # from outside for that placeholder's name.
    looked_up = os.path.join(pltest.TMP, "looked-up.txt")
    script = pltest.write(os.path.join(pltest.TMP, "lookup-then-wait.sh"),
                          f"#!/bin/sh\n{client} dns connect {WEB_NAME} {web.port} >{looked_up}\n"
                          "sleep 4\n", 0o755)
    argv = dns.wrap([WRAPPER, "-p", proxy, "--", script])
    env, mark = marked_env()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        port = None
        for _ in range(40):
            time.sleep(0.1)
            ss = subprocess.run(["ss", "-lunpH"], capture_output=True, text=True).stdout
            for pid in supervisor_pids(mark, p.pid):
                for line in ss.splitlines():
                    if f"pid={pid}," in line:
                        port = int(re.search(r"127\.0\.0\.1:(\d+)", line).group(1))
            if port:
                break
        if not port:
            fail("could not find the supervisor's responder with ss")
        time.sleep(1)  # the lookup is done
        with open(looked_up) as f:
            found = re.search(r"resolved (240\.\d+\.\d+\.\d+)", f.read())
        if not found:
            fail("the supervised lookup did not get a placeholder")
        labels = b"".join(bytes([len(o)]) + o.encode() for o in reversed(found.group(1).split(".")))
        ptr = (struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
               + labels + b"\x07in-addr\x04arpa\x00" + struct.pack(">HH", 12, 1))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.settimeout(1.0)
            u.sendto(ptr, ("127.0.0.1", port))
            try:
                data = u.recv(4096)
                fail(f"the responder answered an outside query ({len(data)} bytes, "
                     f"{WEB_NAME.encode() in data and 'with the name' or 'without the name'})")
            except socket.timeout:
                print("UDP: no answer to an outside PTR query")
        with socket.create_connection(("127.0.0.1", port), timeout=2) as t:
            t.sendall(struct.pack(">H", len(ptr)) + ptr)
            t.settimeout(2.0)
            try:
                if t.recv(4096):
                    fail("the responder answered an outside TCP query")
            except (socket.timeout, ConnectionResetError):
                pass
            print("TCP: closed without an answer")
    finally:
        out, err = p.communicate(timeout=30)
    print("stderr:", err[-800:])
    if p.returncode != 0:
        fail(f"the supervised script failed (exit {p.returncode})")
    no_dns(dns)


def nested_refused_case():
    """No supervisor under a supervisor (the kernel allows one listener per
    filter tree): the inner wrapper refuses the static program, exit 126."""
    client = raw_client()
    dns, target = pltest.Dns(), pltest.Listener()
    r = run([WRAPPER, "-p", "socks5h://127.0.0.1:9", "--proxy-loopback", "--", client, "ip",
             "127.0.0.1", str(target.port)], dns, "socks5h://127.0.0.1:9", ["--supervise"])
    if r.returncode != 126 or "cannot install the seccomp supervisor" not in r.stderr:
        fail("expected the inner wrapper to refuse with exit 126")
    if target.count != 0:
        fail("the static program connected")


MARK = 0x1eac9a55  # runtime/marker.hpp: the upper half of a length the interposer judged


def filter_marker_case():
    """The filter lets a connect() through without the supervisor only with
    the interposer's mark in the upper half of the address length, which
    the kernel reads as a 32-bit int (runtime/marker.hpp). A program passing
    it on purpose is not stopped (leakproof keeps unmodified programs from
    leaking, it is not a sandbox: README); every other length is checked:
    127 (the old marker), its neighbours, an IPv4 address in a
    sockaddr_storage, another upper half."""
    client = raw_client()
    dns, target = pltest.Dns(), pltest.Listener()
    dead = f"socks5h://127.0.0.1:{pltest.free_port()}"
    for n in ("16", "28", "126", "127", "128", hex((MARK + 1) << 32 | 16), hex(1 << 32 | 16)):
        r = run([client, "len", n, "127.0.0.1", str(target.port)], dns, dead, ["--proxy-loopback"])
        if f"len {n}: Connection refused" not in r.stdout or f"via {dead}" not in r.stderr:
            fail(f"a connect with length {n} was not sent to the (dead) proxy: {r.stdout!r}")
    if target.count != 0:
        fail(f"the target saw {target.count} direct connection(s)")
    marked = hex(MARK << 32 | 16)
    r = run([client, "len", marked, "127.0.0.1", str(target.port)], dns, dead, ["--proxy-loopback"])
    if f"len {marked}: connected" not in r.stdout or target.count != 1:
        fail(f"the marked length did not pass the filter: {r.stdout!r}")


def unspec_address_case():
    """A datagram to an AF_UNSPEC address on an AF_INET socket, which the
    kernel sends as AF_INET: both enforcement points judge it as that IPv4
    address (policy::decide_send), so the supervisor (static client) and the
    interposer (the same client linked dynamically) answer alike — loopback
    is sent, anything else refused with EPERM and a log line."""
    import socket
    dns = pltest.Dns()
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.settimeout(10)
    port = sink.getsockname()[1]
    try:
        for client in (raw_client(), raw_client_dynamic()):
            r = run([client, "unspec", "127.0.0.1", str(port)], dns)
            if "unspec: sent" not in r.stdout:
                fail(f"{client}: the loopback datagram was not sent: {r.stdout!r} {r.stderr!r}")
            if sink.recv(64) != b"unspec":
                fail(f"{client}: the datagram did not arrive")
            r = run([client, "unspec", "192.0.2.1", "9"], dns)
            if "unspec: Operation not permitted" not in r.stdout:
                fail(f"{client}: expected EPERM for 192.0.2.1:9, got {r.stdout!r}")
            if "sendto 192.0.2.1:9: refused: non-TCP socket refused" not in r.stderr:
                fail(f"{client}: no refusal line: {r.stderr!r}")
    finally:
        sink.close()
    no_dns(dns)


def supervise_flag_case():
    """--supervise on a dynamic program: interposer and supervisor together."""
    dns, web, proxy = pltest.Dns(), pltest.HttpServer(), pltest.microsocks()
    r = run(["curl", "-sS", f"http://{WEB_NAME}:{web.port}/"], dns, proxy, ["-v", "--supervise"])
    expect_body(r)
    no_dns(dns)


def descriptors_case():
    """The supervisor starts in the wrapper's memory and descriptor table
    (supervisor/supervisor.cpp) and keeps of that table only the filter's listener and
    stderr: the caller reads EOF on the command's stdout when the command is
    done, although a child it left behind keeps the tree (and so the
    supervisor) alive. The program itself never sees the listener."""
    env, mark = marked_env()
    listing = os.path.join(pltest.TMP, "program-fds.txt")
    script = (f"ls -l /proc/$$/fd >{listing}; "
              "sleep 4 </dev/null >/dev/null 2>&1 & echo started")
    start = time.monotonic()
    p = subprocess.Popen([WRAPPER, "-p", "socks5h://127.0.0.1:9", "--", "/bin/sh", "-c", script],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    try:
        out = p.stdout.read()  # to EOF
        took = time.monotonic() - start
        p.wait(timeout=10)
        if out != b"started\n" or p.returncode != 0:
            fail(f"the command did not run: exit {p.returncode}, stdout {out!r}")
        if took > 2.5:
            fail(f"stdout stayed open {took:.1f} s, while the child left behind ran: "
                 "the supervisor holds the caller's pipe")
        print(f"stdout closed after {took:.2f} s; the child left behind runs 4 s")
        with open(listing) as f:
            program_fds = f.read()
        if "seccomp" in program_fds:
            fail(f"the program inherited the listener:\n{program_fds}")
        pids = supervisor_pids(mark, p.pid)
        supervisor = [pid for pid in pids
                      if any("seccomp" in t for t in fd_targets(pid).values())]
        if len(supervisor) != 1:
            fail(f"expected one supervisor holding the listener, found {supervisor} among {pids}")
        fds = fd_targets(supervisor[0])
        print(f"supervisor {supervisor[0]}: {fds}")
        if fds.get(0) != "/dev/null" or fds.get(1) != "/dev/null":
            fail("the supervisor's stdin and stdout are not /dev/null")
        # Its own: the listener, the responder's sockets, pidfds of the
        # program's threads it keeps (supervisor/notification.cpp), the
        # placeholder map it holds for the tree (runtime/placeholder.hpp).
        own = ("anon_inode:seccomp notify", "socket:", "anon_inode:[pidfd]",
               "/memfd:leakproof-map")
        others = {fd: t for fd, t in fds.items() if fd > 2 and not t.startswith(own)}
        if others:
            fail(f"the supervisor holds descriptors it has no use for: {others}")
        deadline = time.monotonic() + 15
        while supervisor_pids(mark, p.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if supervisor_pids(mark, p.pid):
            fail("the supervisor outlived the tree")
    finally:
        if p.poll() is None:
            p.kill()


NOT_DUMPABLE = """import ctypes, socket, sys
if sys.argv[2] == "not-dumpable":
    ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0
host = sys.argv[3] if len(sys.argv) > 3 else "127.0.0.1"
try:
    s = socket.create_connection((host, int(sys.argv[1])), timeout=20)
    print("connected")
except OSError as e:
    print("error", e.errno)
"""


def copy_refused_case():
    """When the kernel will not let the supervisor take a process's socket
    (pidfd_getfd), nothing runs unchecked and the log says why in one line:
    the program's call fails with the kernel's EPERM. The case made here: a
    wrapper run as nobody (no CAP_SYS_PTRACE) and a static program that
    makes itself non-dumpable (restricted_test.py makes the others). A
    dynamic program never needs that copy: the interposer's own connects
    pass the filter (runtime/marker.hpp), so a non-dumpable one connects
    directly to loopback as a dumpable one does. The control is the static
    program left dumpable."""
    import pwd
    import tempfile
    if shutil.which("runuser") is None or not os.path.exists("/usr/bin/python3"):
        print("SKIP: no runuser or no /usr/bin/python3")
        sys.exit(SKIP)
    nobody = pwd.getpwnam("nobody")
    client = raw_client()
    web = pltest.HttpServer()
    target = pltest.Listener()
    # Somewhere nobody can read: the build tree may be under /root.
    home = tempfile.mkdtemp(prefix="lp-nobody-", dir="/tmp")
    try:
        os.chmod(home, 0o755)
        for f in (WRAPPER, os.path.join(os.path.dirname(WRAPPER), "libleakproof.so"), client):
            shutil.copy(f, home)
        script = pltest.write(os.path.join(home, "not_dumpable.py"), NOT_DUMPABLE, 0o644)
        static = os.path.join(home, os.path.basename(client))

        def as_nobody(argv, proxy="socks5h://127.0.0.1:9"):
            argv = ["runuser", "-u", nobody.pw_name, "--", os.path.join(home, "leakproof"),
                    "-p", proxy, "--"] + argv
            r = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=home)
            print("$", " ".join(argv), "->", r.returncode, r.stdout.strip(), r.stderr.strip())
            return r

        for mode in ("dumpable", "not-dumpable"):
            r = as_nobody(["/usr/bin/python3", script, str(target.port), mode])
            if r.stdout.strip() != "connected" or "refused" in r.stderr:
                fail(f"a {mode} dynamic program's direct connect did not go through")
        if target.count != 2:
            fail(f"the target saw {target.count} connections, not 2")
        # By name through a real proxy: the interposer's own connect, no copy either.
        r = as_nobody(["/usr/bin/python3", script, str(web.port), "not-dumpable", WEB_NAME],
                      proxy=pltest.microsocks())
        if r.stdout.strip() != "connected" or "refused" in r.stderr:
            fail("a non-dumpable dynamic program's connect by name did not go through the proxy")
        r = as_nobody([static, "ip", "127.0.0.1", str(web.port)])
        if r.returncode != 0 or BODY.strip() not in r.stdout:
            fail("control: the dumpable static program did not fetch through the supervisor")
        requests = web.requests
        r = as_nobody([static, "nodump", "ip", "127.0.0.1", str(target.port)])
        if "connect: Operation not permitted" not in r.stderr:
            fail(f"expected the static connect to fail with EPERM")
        if "connect: refused: the kernel does not let the supervisor take this process's " \
           "socket: the process made itself non-dumpable" not in r.stderr:
            fail("no log line saying why")
        if target.count != 2 or web.requests != requests:
            fail("the unchecked connect reached its destination")
    finally:
        shutil.rmtree(home, ignore_errors=True)


def ptracer_case():
    """For Yama's ptrace_scope 1 (interposer/ptracer.hpp): every process
    that execs a static program has named the supervisor its ptracer
    (prctl PR_SET_PTRACER) before the exec — the command itself, one a
    dynamic shell starts, one python's subprocess starts — and the pid it
    names is the supervisor's (a process the wrapper's start cloned). This
    kernel has no Yama (the call fails with EINVAL and changes nothing), so
    what is checked is that the declaration is made, in the right order."""
    import re
    if shutil.which("strace") is None:
        print("SKIP: no strace")
        sys.exit(SKIP)
    client = raw_client()
    target = pltest.Listener()
    trace = os.path.join(pltest.TMP, "trace.txt")
    run_static = f"{client} len 16 127.0.0.1 {target.port}"
    spawn = pltest.write(os.path.join(pltest.TMP, "spawn.py"),
                         f"import subprocess\nsubprocess.run({run_static.split()!r})\n")
    script = f"{run_static}; python3 {spawn}"
    for argv in (run_static.split(), ["/bin/sh", "-c", script]):
        r = subprocess.run(["strace", "-f", "-qq", "-o", trace, "-e",
                            "trace=prctl,execve,clone,clone3,vfork,fork", WRAPPER,
                            "-p", "socks5h://127.0.0.1:9", "--"] + argv,
                           capture_output=True, text=True, timeout=60, cwd=pltest.TMP)
        print(r.stdout, r.stderr[-800:])
        with open(trace) as f:
            lines = f.read().splitlines()
        named, declared, execs = set(), set(), 0
        for line in lines:
            pid = line.split(" ", 1)[0]
            m = re.search(r"prctl\(PR_SET_PTRACER, (\d+)\)", line)
            if m:
                named.add(m.group(1))
                declared.add(pid)
            elif f'execve("{client}"' in line:
                execs += 1
                if pid not in declared:
                    fail(f"process {pid} exec'd the static program without naming its ptracer")
        if execs != (1 if len(argv) > 3 else 2):
            fail(f"expected the static program to be exec'd, saw {execs} execs")
        if len(named) != 1:
            fail(f"expected one ptracer named by every process, got {named}")
        supervisor = named.pop()
        if not any(re.search(r"(clone3?\(|resumed>).* = " + supervisor + "$", l) for l in lines):
            fail(f"the ptracer named, {supervisor}, is no process the wrapper started")
    if target.count != 3:
        fail(f"the static program did not run each time ({target.count} connections)")


CASES = {
    "ptracer": ptracer_case,
    "go_fetch": go_fetch_case,
    "go_bare_leaks": go_bare_leaks_case,
    "go_under_shell": go_under_shell_case,
    "go_many": go_many_case,
    "go_proxy_down": go_proxy_down_case,
    "c_ip": c_ip_case,
    "c_script": c_script_case,
    "c_dns_connect": lambda: c_dns_case("connect"),
    "c_dns_sendto": lambda: c_dns_case("sendto"),
    "c_dns_tcp": lambda: c_dns_case("tcp"),
    "c_packet": c_packet_case,
    "responder_private": responder_private_case,
    "nested_refused": nested_refused_case,
    "c_bare_leaks": c_bare_leaks_case,
    "supervise_flag": supervise_flag_case,
    "unspec_address": unspec_address_case,
    "filter_marker": filter_marker_case,
    "descriptors": descriptors_case,
    "copy_refused": copy_refused_case,
}

if __name__ == "__main__":
    CASES[sys.argv[1]]()
    print("PASS")
