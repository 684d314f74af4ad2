"""leakproof where users run it, reproduced on this kernel (which has no
Yama): python3 restricted_test.py RESTRICTION CASE WRAPPER LEAK_PROBE CACHE_DIR.

restrict/restrict.c (built here with cc, kept in CACHE_DIR) runs the wrapper under a seccomp filter of
its own that makes the kernel refuse what Yama, a container's profile or
an old kernel refuses:
  getfd        pidfd_getfd and process_vm_readv fail with EPERM (Yama's
               ptrace_scope 1 for a non-ancestor; a container without
               CAP_SYS_PTRACE): the supervisor can neither take a socket
               nor read an address;
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
    pltest.expect_leak_probe_refusals(r.stderr, dns.addr)
    no_supervisor_refusals(r)
    no_dns(dns)


def static_refused(r, target, web=None):
    """A static program that cannot be covered: fails with a sentence that
    names the restriction, and nothing it tried reached anywhere."""
    if SUPERVISED:
        if "refused: the kernel does not let the supervisor take this process's socket: " \
           "a seccomp profile forbids pidfd_getfd" not in r.stderr:
            fail("no log line naming the restriction")
    elif r.returncode != 126 or "statically linked" not in r.stderr:
        fail("expected the wrapper to refuse the static program (exit 126) with a sentence")
    if target is not None and target.count != 0:
        fail("the static program connected directly")


def static_ip_case():
    """gcc -static connecting to loopback (direct by policy)."""
    client = supervise_test.raw_client()
    dns, target = pltest.Dns(), pltest.Listener()
    r = run([client, "ip", "127.0.0.1", str(target.port)], dns, "socks5h://127.0.0.1:9")
    if r.returncode == 0:
        fail("the static program ran unchecked")
    static_refused(r, target)
    no_dns(dns)


def static_dns_case():
    """gcc -static doing its own DNS, UDP then TCP: no query leaves."""
    client = supervise_test.raw_client()
    dns, proxy = pltest.Dns(), pltest.microsocks()
    for how in ("sendto", "tcp"):
        r = run([client, "dns", how, WEB_NAME, "80"], dns, proxy)
        if r.returncode == 0 or "resolved" in r.stdout:
            fail("the static program resolved a name")
        static_refused(r, None)
    no_dns(dns)


def go_fetch_case():
    """Go (CGO_ENABLED=0, raw system calls): refused with a sentence, no query."""
    client = supervise_test.go_client()
    dns, web, proxy = pltest.Dns(), pltest.HttpServer(), pltest.microsocks()
    r = run([client, f"http://{WEB_NAME}:{web.port}/"], dns, proxy)
    if r.returncode == 0 or web.requests != 0:
        fail("the Go client fetched unchecked")
    static_refused(r, None)
    no_dns(dns)


def static_below_case():
    """A static program started by a dynamic shell: covered by the
    supervisor, or (without one) refused at its exec with one log line and
    EACCES; either way nothing it tries reaches anywhere unchecked."""
    client = supervise_test.raw_client()
    dns, target = pltest.Dns(), pltest.Listener()
    r = run(["/bin/sh", "-c", f"{client} ip 127.0.0.1 {target.port}; echo exit=$?"], dns,
            "socks5h://127.0.0.1:9")
    if target.count != 0:
        fail("the static program connected directly")
    if SUPERVISED:
        static_refused(r, target)
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
              "static command: supervised, but its connects and DNS queries fail: pidfd_getfd is "
              "refused (Operation not permitted): in a container, give it CAP_SYS_PTRACE",
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
    if r.returncode != 1:
        fail("--check exited 0 although something is not covered")


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
}

if __name__ == "__main__":
    CASES[CASE]()
    print("PASS")
