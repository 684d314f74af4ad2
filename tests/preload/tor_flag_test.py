#!/usr/bin/env python3
"""`leakproof --tor`: no -p, the proxy is socks5h://127.0.0.1:9050, pipelined.

127.0.0.1:9050 may be taken on this machine (a real Tor), so the test runs
itself again inside a new network namespace (`unshare -n`, loopback brought
up), where the port is private. There it starts the test proxy
(tests/harness/fault_proxy.py --port 9050, which reads pipelined input) and
an HTTP server, then checks that

  * `leakproof --tor curl http://web.only-proxy.test:PORT/` gets the body
    (the name exists only in the proxy's table), even with LEAKPROOF_PROXY
    naming another proxy: --tor wins over it;
  * the handshake was pipelined: greeting and CONNECT in one write (seen with
    strace when installed; the wrapper's --env output says ?pipeline=1);
  * without --tor, the same default proxy is used without pipelining.

Usage: tor_flag_test.py LEAKPROOF_WRAPPER"""
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "harness"))
import netns  # noqa: E402  (no side effect: the harness proper is imported inside)

TOR_PORT = 9050
# Greeting (VER 5, one method: no auth) right before the request (VER 5,
# CONNECT, RSV, ATYP name, length 19 = len("web.only-proxy.test")), as strace -xx
# prints the bytes of one write.
PIPELINED = r"\x05\x01\x00\x05\x01\x00\x03\x13"


def fail(msg):
    print(f"FAIL: {msg}")
    sys.exit(1)


def inside(wrapper):
    netns.loopback_up()
    import lptest  # after the namespace exists: its servers start in it

    web = lptest.web_server()
    proc = lptest.spawn([sys.executable, os.path.join(lptest.HERE, "fault_proxy.py"),
                         "--port", str(TOR_PORT), "--verbose"], "tor_fault_proxy.log")
    lptest.wait_port(TOR_PORT, proc=proc)
    url = f"http://{lptest.WEB_NAME}:{web.port}/"
    # A proxy that does not exist: --tor must not take it.
    env = dict(os.environ, LEAKPROOF_PROXY="socks5h://127.0.0.1:9")
    env.pop("LD_PRELOAD", None)

    out = subprocess.run([wrapper, "--tor", "--env"], env=env, capture_output=True, text=True)
    if f"socks5h://127.0.0.1:{TOR_PORT}?pipeline=1&optimistic=1'" not in out.stdout:
        fail(f"--tor --env does not name the pipelined, optimistic default proxy:\n{out.stdout}{out.stderr}")
    out = subprocess.run([wrapper, "--tor", "--no-optimistic", "--env"], env=env, capture_output=True,
                         text=True)
    if f"socks5h://127.0.0.1:{TOR_PORT}?pipeline=1'" not in out.stdout:
        fail(f"--tor --no-optimistic --env does not name the pipelined proxy alone:\n{out.stdout}{out.stderr}")
    out = subprocess.run([wrapper, "-p", "socks5h://127.0.0.1:1080", "--optimistic", "--env"], env=env,
                         capture_output=True, text=True)
    if "socks5h://127.0.0.1:1080?optimistic=1'" not in out.stdout:
        fail(f"--optimistic --env does not name an optimistic proxy:\n{out.stdout}{out.stderr}")

    trace = os.path.join(lptest.TMP, "strace.out")
    strace = ["strace", "-f", "-qq", "-xx", "-s", "64", "-e", "trace=write,sendto,sendmsg", "-o", trace] \
        if shutil.which("strace") else []
    cmd = [wrapper, "--tor", "-v", "--", "curl", "-sS", "--max-time", "20", url]
    r = subprocess.run(strace + cmd, env=env, capture_output=True, text=True, timeout=60)
    if r.returncode != 0 or r.stdout != web.body:
        fail(f"leakproof --tor curl: status {r.returncode}, body {r.stdout!r}\n{r.stderr}")
    if strace:
        with open(trace) as f:
            text = f.read()
        if PIPELINED not in text:
            fail("greeting and CONNECT were not sent in one write:\n" +
                 "\n".join(l for l in text.splitlines() if r"\x05" in l)[:2000])
        print("pipelined handshake seen on the wire")

    # Without --tor (and without LEAKPROOF_PROXY) the same default proxy
    # answers, with the two-round-trip handshake.
    env.pop("LEAKPROOF_PROXY")
    env["XDG_CONFIG_HOME"] = lptest.TMP  # no user config file in the way
    r = subprocess.run(strace + [wrapper, "--", "curl", "-sS", "--max-time", "20", url],
                       env=env, capture_output=True, text=True, timeout=60)
    if r.returncode != 0 or r.stdout != web.body:
        fail(f"leakproof curl (no --tor): status {r.returncode}, body {r.stdout!r}\n{r.stderr}")
    if strace:
        with open(trace) as f:
            if PIPELINED in f.read():
                fail("the handshake was pipelined without --tor")
    if web.httpd.requests != 2:
        fail(f"the web server answered {web.httpd.requests} requests, expected 2")
    print("PASS")
    return 0


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--inside":
        started = time.monotonic()
        rc = inside(os.path.abspath(sys.argv[2]))
        print(f"({time.monotonic() - started:.1f} s)")
        return rc
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    return netns.rerun_isolated(__file__, [os.path.abspath(sys.argv[1])], 120)


if __name__ == "__main__":
    sys.exit(main())
