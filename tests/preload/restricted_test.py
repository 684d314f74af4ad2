"""leakproof where users run it, reproduced on this kernel (which has no
Yama): python3 restricted_test.py RESTRICTION CASE WRAPPER LEAK_PROBE CACHE_DIR.

restrict/restrict.c (built here with cc, kept in CACHE_DIR) runs the wrapper under a seccomp filter of
its own that makes the kernel refuse what Yama, a container's profile or
an old kernel refuses:
  getfd        pidfd_getfd and process_vm_readv/writev fail with EPERM (a
               container's profile without CAP_SYS_PTRACE; Yama refuses
               the same for a non-ancestor): the supervisor cannot take a
               socket; it puts a socket of its own in its place
               (SECCOMP_IOCTL_NOTIF_ADDFD) and reads addresses through
               /proc/PID/mem, which the kernel allows here as Yama would
               not (supervise_test.py's copy_refused makes that case);
  nolistener   seccomp's new-listener filter fails with EINVAL;
  noseccomp    seccomp() fails with ENOSYS.
Under each: real programs (curl through microsocks by name, curl to a
loopback server directly), the leak probe, the static clients and the
fail-closed checks. Every program works or fails with a sentence; dnsmasq
sees zero queries; nothing connects directly where it should not.
"""
import os
import subprocess
import sys
import time

import pltest
from pltest import BODY, WEB_NAME

RESTRICTION, CASE = sys.argv[1], sys.argv[2]
WRAPPER = os.path.abspath(sys.argv[3])
LEAK_PROBE = os.path.abspath(sys.argv[4])
sys.argv = [sys.argv[0], "-", WRAPPER, sys.argv[5]]  # what supervise_test reads
import supervise_test  # noqa: E402  (the static clients, built once into CACHE_DIR)


def restrict_launcher():
    src = os.path.join(supervise_test.HERE, "restrict", "restrict.c")

    def build(out):
        subprocess.run(["cc", "-O2", "-Wall", "-Wextra", "-Werror", "-o", out, src], check=True,
                       timeout=120)
    return supervise_test.cached_build(src, "restrict", build)


RESTRICT = restrict_launcher()

MODE = {"getfd": "getfd-eperm", "nolistener": "no-listener", "noseccomp": "no-seccomp"}[RESTRICTION]
SUPERVISED = RESTRICTION == "getfd"  # the supervisor runs, without pidfd_getfd

fail, no_dns = pltest.fail, pltest.no_dns


def run(argv, dns, proxy=None, extra=(), timeout=60):
    """RESTRICT MODE -- WRAPPER [-p proxy] extra -- argv, in dns's namespace."""
    lp = ([RESTRICT, MODE, "--", WRAPPER] + (["-p", proxy] if proxy else []) + list(extra)
          + ["--"] + list(argv))
    t0 = time.time()
    r = subprocess.run(dns.wrap(lp), capture_output=True, text=True, timeout=timeout,
                       cwd=pltest.TMP)
    print("$", " ".join(lp), f"-> rc={r.returncode} ({time.time() - t0:.1f}s)")
    print("stdout:", r.stdout[-500:])
    print("stderr:", r.stderr[-1500:])
    return r


WARNING = "leakproof: warning: cannot install the seccomp supervisor: "


def no_supervisor_refusals(r):
    """A dynamic program never needs the supervisor to take its socket; with
    no supervisor at all, the wrapper says so in exactly one line."""
    if "does not let the supervisor" in r.stderr or "cannot take this process" in r.stderr:
        fail("a call of a dynamic program was refused for want of the socket copy")
    warnings = r.stderr.count(WARNING)
    if warnings != (0 if SUPERVISED else 1):
        fail(f"{warnings} warning lines about the missing supervisor")
    if not SUPERVISED and "static and setuid programs below are refused" not in r.stderr:
        fail("the warning does not say what is not covered")


def curl_name_case():
    """curl by name through microsocks: the name goes to the proxy."""
    dns, web, proxy = pltest.Dns(), pltest.HttpServer(), pltest.microsocks()
    r = run(["curl", "-sS", "-m", "20", f"http://{WEB_NAME}:{web.port}/"], dns, proxy, ["-v"])
    if r.returncode != 0 or BODY.strip() not in r.stdout:
        fail("the body did not arrive")
    if f"connect {WEB_NAME}:{web.port} via {proxy}: ok" not in r.stderr:
        fail("no log line for the proxied connect")
    no_supervisor_refusals(r)
    no_dns(dns)


def curl_direct_case():
    """curl to a loopback server: direct, as the policy says, with no refusal."""
    dns, web = pltest.Dns(), pltest.HttpServer()
    r = run(["curl", "-sS", "-m", "20", f"http://127.0.0.1:{web.port}/"], dns,
            "socks5h://127.0.0.1:9")
    if r.returncode != 0 or BODY.strip() not in r.stdout or web.requests != 1:
        fail("the direct fetch from loopback did not work")
    no_supervisor_refusals(r)
    no_dns(dns)


def exclude_case():
    """An --exclude'd network is connected directly (here 127.0.0.0/8 with
    --proxy-loopback, so that only the exclusion lets it through)."""
    dns, web = pltest.Dns(), pltest.HttpServer()
    r = run(["curl", "-sS", "-m", "20", f"http://127.0.0.1:{web.port}/"], dns,
            "socks5h://127.0.0.1:9", ["--proxy-loopback", "--exclude", "127.0.0.0/8"])
    if r.returncode != 0 or BODY.strip() not in r.stdout:
        fail("the excluded destination was not connected directly")
    no_supervisor_refusals(r)
    no_dns(dns)


def proxy_down_case():
    """A dead proxy: the connect fails with a sentence, nothing goes direct."""
    dns, target = pltest.Dns(), pltest.Listener()
    dead = f"socks5h://127.0.0.1:{pltest.free_port()}"
    r = run(["curl", "-sS", "-m", "20", f"http://127.0.0.1:{target.port}/"], dns, dead,
            ["--proxy-loopback"])
    if r.returncode == 0 or f"via {dead}: Connection refused" not in r.stderr:
        fail("expected the connect to fail with a log line naming the proxy")
    if target.count != 0:
        fail("the target saw a direct connection")
    no_dns(dns)


def leak_probe_case():
    """Every leak path of the interposer: refused or answered locally, no query."""
    dns = pltest.Dns()
    r = run([LEAK_PROBE, "wrapped", dns.addr], dns)
    if r.returncode != 0:
        fail("leak probe failed")
    pltest.expect_leak_probe_refusals(r.stderr, dns.addr, responder=SUPERVISED)
    no_supervisor_refusals(r)
    no_dns(dns)


def static_refused(r, target):
    """Without a supervisor a static program cannot be covered: the wrapper
    refuses it with a sentence, and nothing it tried reached anywhere."""
    if r.returncode != 126 or "statically linked" not in r.stderr:
        fail("expected the wrapper to refuse the static program (exit 126) with a sentence")
    if target is not None and target.count != 0:
        fail("the static program connected directly")


def stood_in(r):
    """Under the supervisor without pidfd_getfd: no call was refused for want
    of the program's socket."""
    if "does not let the supervisor" in r.stderr or "neither take" in r.stderr:
        fail("a call was refused for want of the program's socket")


def static_ip_case():
    """gcc -static connecting to loopback (direct by policy)."""
    client = supervise_test.raw_client()
    dns, web = pltest.Dns(), pltest.HttpServer()
    target = pltest.Listener()
    if SUPERVISED:
        r = run([client, "ip", "127.0.0.1", str(web.port)], dns, "socks5h://127.0.0.1:9")
        if r.returncode != 0 or BODY.strip() not in r.stdout or web.requests != 1:
            fail("the static program's direct fetch from loopback did not work")
        stood_in(r)
    else:
        r = run([client, "ip", "127.0.0.1", str(target.port)], dns, "socks5h://127.0.0.1:9")
        static_refused(r, target)
    no_dns(dns)


def static_dns_case():
    """gcc -static doing its own DNS (UDP connected, sendto on fresh sockets
    and on one kept socket, TCP): answered with placeholders by the
    supervisor, the name sent to the proxy; no query leaves."""
    client = supervise_test.raw_client()
    dns, web, proxy = pltest.Dns(), pltest.HttpServer(), pltest.microsocks()
    for how in ("connect", "sendto", "kept", "tcp"):
        r = run([client, "dns", how, WEB_NAME, str(web.port)], dns, proxy, ["-v"])
        if not SUPERVISED:
            static_refused(r, None)
            continue
        if "resolved 240." not in r.stdout or f"ptr {WEB_NAME}" not in r.stdout:
            fail(f"dns {how}: not answered with a placeholder and its name")
        if r.returncode != 0 or BODY.strip() not in r.stdout:
            fail(f"dns {how}: the body did not arrive")
        if f"connect {WEB_NAME}:{web.port} via {proxy}: ok" not in r.stderr:
            fail(f"dns {how}: the name did not go to the proxy")
        stood_in(r)
    no_dns(dns)


def go_fetch_case():
    """Go (CGO_ENABLED=0, raw system calls) by name through microsocks."""
    client = supervise_test.go_client()
    dns, web, proxy = pltest.Dns(), pltest.HttpServer(), pltest.microsocks()
    r = run([client, f"http://{WEB_NAME}:{web.port}/"], dns, proxy)
    if SUPERVISED:
        if r.returncode != 0 or BODY.strip() not in r.stdout or web.requests != 1:
            fail("the Go client's fetch by name did not work")
        stood_in(r)
    else:
        static_refused(r, None)
        if web.requests != 0:
            fail("the Go client fetched unchecked")
    no_dns(dns)


def keep_case():
    """What a socket the supervisor stands in for keeps (README, "Static
    programs"): O_NONBLOCK and FD_CLOEXEC, not an option set before
    connect() nor a dup() made before it. The control, unrestricted, keeps
    all four."""
    client = supervise_test.raw_client()
    dns, web = pltest.Dns(), pltest.HttpServer()
    argv = [client, "keep", "127.0.0.1", str(web.port)]
    if not SUPERVISED:
        static_refused(run(argv, dns, "socks5h://127.0.0.1:9"), None)
        return
    control = subprocess.run(dns.wrap([WRAPPER, "-p", "socks5h://127.0.0.1:9", "--"] + argv),
                             capture_output=True, text=True, timeout=60)
    print("control:", control.stdout, control.stderr)
    r = run(argv, dns, "socks5h://127.0.0.1:9")
    expected = [(control.stdout, "nonblock 1\ncloexec 1\nkeepalive 1\ndup peer yes\n"),
                (r.stdout, "nonblock 1\ncloexec 1\nkeepalive 0\ndup peer no\n")]
    for out, lines in expected:
        if not out.startswith(lines) or "fetched 0" in out or "fetched" not in out:
            fail(f"expected {lines!r} and a fetch, got {out!r}")
    stood_in(r)
    no_dns(dns)


def static_below_case():
    """A static program started by a dynamic shell: covered by the
    supervisor, or (without one) refused at its exec with one log line and
    EACCES; either way nothing it tries reaches anywhere unchecked."""
    client = supervise_test.raw_client()
    dns, web, target = pltest.Dns(), pltest.HttpServer(), pltest.Listener()
    port = web.port if SUPERVISED else target.port
    r = run(["/bin/sh", "-c", f"{client} ip 127.0.0.1 {port}; echo exit=$?"], dns,
            "socks5h://127.0.0.1:9")
    if target.count != 0:
        fail("the static program connected directly")
    if SUPERVISED:
        if "exit=0" not in r.stdout or BODY.strip() not in r.stdout:
            fail("the static program below the shell did not fetch")
        stood_in(r)
    else:
        if f"execve {client}: refused: it is statically linked" not in r.stderr:
            fail("no log line for the refused exec")
        if "Permission denied" not in r.stderr or "exit=126" not in r.stdout:
            fail("the shell did not see EACCES")
    no_dns(dns)


def require_supervisor_case():
    """--require-supervisor: where there is no supervisor, nothing runs."""
    dns, web = pltest.Dns(), pltest.HttpServer()
    r = run(["curl", "-sS", "-m", "20", f"http://127.0.0.1:{web.port}/"], dns,
            "socks5h://127.0.0.1:9", ["--require-supervisor"])
    if SUPERVISED:
        if r.returncode != 0 or BODY.strip() not in r.stdout:
            fail("with a supervisor, --require-supervisor changed nothing: the fetch failed")
    elif r.returncode != 126 or "(--require-supervisor)" not in r.stderr or web.requests:
        fail("expected exit 126 and a sentence naming --require-supervisor")
    no_dns(dns)


CHECK_LINES = {
    "getfd": ["pidfd_getfd of a process that is no descendant: no (Operation not permitted)",
              "pidfd_getfd of one that named us its ptracer: no (Operation not permitted)",
              "reading the memory of a process that is no descendant: yes",
              "static command: supervised: covered (without pidfd_getfd: sockets of the "
              "supervisor's own stand in for the program's",
              "dynamic command: interposer + supervisor: covered"],
    "nolistener": ["seccomp user notification: no (Invalid argument)",
                   "dynamic command: interposer alone", "static command: refused (exit 126)"],
    "noseccomp": ["seccomp user notification: no (Function not implemented)",
                  "dynamic command: interposer alone", "static command: refused (exit 126)"],
}


def check_case():
    """leakproof --check: what the machine allows, each proxy asked; exit 0
    only when everything would be covered (the control: unrestricted, with
    a live proxy), 1 under the restriction or with a proxy that is down."""
    proxy = pltest.microsocks()
    dead = f"socks5h://127.0.0.1:{pltest.free_port()}"

    def check(argv):
        r = subprocess.run(argv + ["--check"], capture_output=True, text=True, timeout=60)
        print("$", " ".join(argv), "--check ->", r.returncode, "\n" + r.stdout + r.stderr)
        return r
    r = check([WRAPPER, "-p", proxy])
    for line in ("seccomp user notification: yes", "static command: supervised: covered",
                 "pidfd_getfd of one that named us its ptracer: yes",
                 f"proxy {proxy}: answers SOCKS; no RESOLVE (not Tor)"):
        if line not in r.stdout:
            fail(f"control: no line {line!r}")
    if r.returncode != 0:
        fail("control: --check did not exit 0 on an unrestricted machine with a live proxy")
    r = check([WRAPPER, "-p", proxy, "-p", dead])
    if r.returncode != 1 or f"proxy {dead}: cannot be reached through the hops before it: " \
            "proxy: connection refused by the destination" not in r.stdout:
        fail("a proxy that is down was not reported (exit 1)")
    r = check([WRAPPER, "-p", dead])
    if r.returncode != 1 or f"proxy {dead}: does not answer: Connection refused" not in r.stdout:
        fail("a first proxy that is down was not reported (exit 1)")
    r = check([RESTRICT, MODE, "--", WRAPPER, "-p", proxy])
    for line in CHECK_LINES[RESTRICTION]:
        if line not in r.stdout:
            fail(f"no line {line!r}")
    if r.returncode != (0 if SUPERVISED else 1):
        fail("--check's exit status does not say whether everything is covered")


CASES = {
    "check": check_case,
    "static_below": static_below_case,
    "require_supervisor": require_supervisor_case,
    "curl_name": curl_name_case,
    "curl_direct": curl_direct_case,
    "exclude": exclude_case,
    "proxy_down": proxy_down_case,
    "leak_probe": leak_probe_case,
    "static_ip": static_ip_case,
    "static_dns": static_dns_case,
    "go_fetch": go_fetch_case,
    "keep": keep_case,
}

if __name__ == "__main__":
    CASES[CASE]()
    print("PASS")
