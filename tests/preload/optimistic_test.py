"""Optimistic data under the wrapper: python3 optimistic_test.py CASE WRAPPER ASYNC_PROBE

With ?optimistic=1 on the last hop the interposer reports a socket connected
once the whole request is written: the program's first bytes go out behind
it, its reads wait until the reply has been consumed, and a refusal that
arrives after it wrote becomes the errno of its next read (or SO_ERROR).

The test proxy's late- names make that observable without a clock:
late-echo.fault answers only once the client's first byte has arrived (then
echoes it), and late-repN.fault refuses only then. A client that waited for
the reply before writing would get nothing but the timeout. dante (reads
early data) carries the real-program cases.
"""
import os
import sys

import pltest
from pltest import BODY, WEB_NAME

lptest = pltest.lptest

WRAPPER = os.path.abspath(sys.argv[2])
ASYNC_PROBE = os.path.abspath(sys.argv[3])
fail, no_dns, probe_values = pltest.fail, pltest.no_dns, pltest.probe_values

# Blocking sockets (no timeout: Python's timeouts make a socket non-blocking).
BLOCKING = r"""
import errno, select, socket, sys
def errname(e):
    return errno.errorcode.get(e.errno, str(e.errno)) if isinstance(e, OSError) else repr(e)
def connect(host):
    s = socket.socket()
    s.connect((host, 80))
    return s
mode, names = sys.argv[1], sys.argv[2:]
if mode == "echo":
    s = connect(names[0])
    print("so_error", s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))
    print("peer", s.getpeername()[1])
    s.sendall(b"ping")
    got = b""
    while len(got) < 4:
        d = s.recv(4 - len(got))
        if not d: break
        got += d
    print("echoed", got.decode())
    try:
        s.connect(s.getpeername())
        print("connect_again 0")
    except OSError as e:
        print("connect_again", errname(e))
elif mode == "plain":
    for n in names:
        try:
            connect(n + ".fault")
            print(n, "connected")
        except OSError as e:
            print(n, errname(e))
elif mode == "late":
    for n in names:
        try:
            s = connect("late-" + n + ".fault")
        except OSError as e:
            print(n, "connect", errname(e)); continue
        s.send(b"x")
        try:
            print(n, "read", repr(s.recv(16)))
        except OSError as e:
            print(n, errname(e))
elif mode == "so_error":
    s = connect("late-" + names[0] + ".fault")
    s.send(b"x")
    ready = select.select([s], [], [], 10)[0]
    err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    print("readable", len(ready), "so_error", errno.errorcode.get(err, err),
          "then", s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))
"""

ASYNCIO = r"""
import asyncio, errno, sys
async def exchange(host):
    r, w = await asyncio.open_connection(host, 80)
    w.write(b"ping")
    await w.drain()
    try:
        return (await r.readexactly(4)).decode()
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
async def main(names):
    for n, got in zip(names, await asyncio.gather(*[exchange(n) for n in names])):
        print(n, got)
asyncio.run(main(sys.argv[1:]))
"""

NODE = r"""
const net = require('net');
let got = '';
const s = net.connect({host: process.argv[1], port: 80}, () => s.write('ping'));
s.on('data', d => { got += d; if (got.length >= 4) { console.log('echoed', got); s.destroy(); } });
s.on('error', e => { console.log('error', e.code); });
"""


def run(argv, dns, proxy, extra=(), timeout=60):
    return pltest.run_wrapped(WRAPPER, argv, dns, proxy, ["-v"] + list(extra), timeout=timeout)


def fault_url(scheme="socks5h", options="optimistic=1"):
    return f"{scheme}://127.0.0.1:{lptest.fault_proxy().port}?{options}"


def rows(stdout):
    out = {}
    for line in stdout.splitlines():
        parts = line.split(None, 1)
        if len(parts) == 2:
            out[parts[0]] = parts[1]
    return out


def blocking_case():
    """A blocking connect returns 0 with the request out; the write goes
    behind it, the read gets the echo and never a reply byte."""
    dns = pltest.Dns()
    r = run(["python3", "-c", BLOCKING, "echo", "late-echo.fault"], dns, fault_url())
    v = rows(r.stdout)
    if r.returncode != 0 or v.get("echoed") != "ping":
        fail("the early bytes were not carried (late-echo never answers without them)")
    if v.get("so_error") != "0" or v.get("connect_again") != "EISCONN":
        fail("SO_ERROR or a second connect() did not answer like a connected socket")
    if "connect late-echo.fault:80 via" not in r.stderr or ": ok" not in r.stderr:
        fail("no -v line for the connect")
    # The same exchange without optimistic data waits for a reply that never
    # comes: the proof that the test proxy tells the two apart.
    r = run(["python3", "-c", BLOCKING, "echo", "late-echo.fault"], dns,
            fault_url(options="pipeline=1"), ["--timeout", "1"])
    if r.returncode == 0 or "timed out" not in r.stderr.lower():
        fail("without optimistic data late-echo.fault answered")
    no_dns(dns)


SOCKS5_FAULTS = ["rep1", "rep2", "rep3", "rep4", "rep5", "rep6", "rep7", "rep8", "rep9",
                 "rep240", "rep242", "rep246", "rep247", "refuse", "tor-f2", "close", "garbage",
                 "badatyp"]
SOCKS4_FAULTS = ["rep91", "rep92", "rep93", "rep94", "refuse", "close", "garbage"]


def refusals(scheme, faults):
    """Each refusal arriving after the program wrote fails its read with the
    errno the same refusal gives a connect() without optimistic data."""
    dns = pltest.Dns()
    plain = rows(run(["python3", "-c", BLOCKING, "plain"] + faults, dns,
                     fault_url(scheme, "pipeline=1")).stdout)
    r = run(["python3", "-c", BLOCKING, "late"] + faults, dns, fault_url(scheme))
    late = rows(r.stdout)
    for f in faults:
        expected = plain.get(f)
        if expected is None or expected == "connected":
            fail(f"{f}: the plain connect was not refused ({expected})")
        if late.get(f) != expected:
            fail(f"{f}: the read after the early write said {late.get(f)}, not {expected}")
        if f"connect late-{f}.fault:80 via" not in r.stderr:
            fail(f"{f}: the refusal was not logged")
    no_dns(dns)


def so_error_case():
    """A program that waits for readability learns the refusal from SO_ERROR, once."""
    dns = pltest.Dns()
    r = run(["python3", "-c", BLOCKING, "so_error", "rep5"], dns, fault_url())
    if "readable 1 so_error ECONNREFUSED then 0" not in r.stdout:
        fail("SO_ERROR did not report the late refusal once")
    no_dns(dns)


def asyncio_case():
    """asyncio (non-blocking, epoll): the echo, and a late refusal failing the read."""
    dns = pltest.Dns()
    r = run(["python3", "-c", ASYNCIO, "late-echo.fault", "late-rep5.fault", "late-rep4.fault"],
            dns, fault_url())
    v = rows(r.stdout)
    if v.get("late-echo.fault") != "ping":
        fail("asyncio: the early bytes were not carried")
    if v.get("late-rep5.fault") != "ECONNREFUSED" or v.get("late-rep4.fault") != "EHOSTUNREACH":
        fail("asyncio: a late refusal did not fail the read with its errno")
    no_dns(dns)


def node_case():
    """Node's event loop: connect callback, early write, the echo."""
    dns = pltest.Dns()
    r = run(["node", "-e", NODE, "late-echo.fault"], dns, fault_url())
    if "echoed ping" not in r.stdout:
        fail("node: the early bytes were not carried")
    r = run(["node", "-e", NODE, "late-rep5.fault"], dns, fault_url())
    if "error ECONNREFUSED" not in r.stdout:
        fail("node: a late refusal did not reach the program as ECONNREFUSED")
    no_dns(dns)


def curl_dante_case():
    """curl through dante, which reads early data: the page, HTTP and a
    second fetch on the same connection (keep-alive)."""
    dns = pltest.Dns()
    web = pltest.HttpServer()
    url = f"http://{WEB_NAME}:{web.port}/"
    r = run(["curl", "-sS", url, url], dns, pltest.dante() + "?optimistic=1")
    if r.returncode != 0 or r.stdout.count(BODY.strip()) != 2:
        fail("curl through dante with optimistic data did not get both pages")
    no_dns(dns)



def c_readiness_case():
    """The C event loops (every epoll flavour, poll, select) through dante 100 ms
    away: writable long before the reply could be there, the response (and
    never a reply byte) read once it has been consumed."""
    dns = pltest.Dns()
    web = pltest.HttpServer()
    proxy = pltest.delayed(pltest.dante(), delay_ms=50) + "?optimistic=1"
    for mode in ("epoll lt before", "epoll et after", "epoll oneshot before", "poll", "select"):
        r = run([ASYNC_PROBE] + mode.split() + ["10", WEB_NAME, str(web.port)], dns, proxy)
        v = probe_values(r.stdout)
        if r.returncode != 0 or v.get("fetched") != 10:
            fail(f"{mode}: not all 10 fetched")
        # The reply takes a 100 ms round trip; optimistic data is writable before.
        if v["first_ready_ms"] >= 80:
            fail(f"{mode}: first writable after {v['first_ready_ms']} ms, not before the reply")
    no_dns(dns)


CASES = {
    "blocking": blocking_case,
    "refusals_socks5": lambda: refusals("socks5h", SOCKS5_FAULTS),
    "refusals_socks4": lambda: refusals("socks4a", SOCKS4_FAULTS),
    "so_error": so_error_case,
    "asyncio": asyncio_case,
    "node": node_case,
    "curl_dante": curl_dante_case,
    "c_readiness": c_readiness_case,
}

if __name__ == "__main__":
    CASES[sys.argv[1]]()
    print("PASS")
