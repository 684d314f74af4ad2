#!/usr/bin/env python3
"""A SOCKS proxy for the cases no real server covers: Tor extensions and faults.

Real proxies (dante, microsocks, ssh -D) prove interoperability; this one lets
tests reach the error paths. Everything is chosen by the request itself so a
single port serves every test concurrently:

  * SOCKS4, SOCKS4a, SOCKS5 (no auth and RFC 1929; the user "baduser" fails).
  * CONNECT relays to the real destination. Names come from a private table
    (NAMES below); anything else is "host unreachable", so the proxy never
    asks the system resolver and never leaves loopback.
  * Tor RESOLVE (0xF0, SOCKS4a and SOCKS5) and RESOLVE_PTR (0xF1, SOCKS5).
  * A destination name ending in ".fault" selects a misbehaviour (FAULTS), or
    "repN.fault" a refusal with reply code N (SOCKS5 REP, SOCKS4 CD). With
    "late-" in front (late-refuse.fault, late-rep4.fault) the proxy first
    waits for a byte the client sends behind its request (optimistic data),
    so that the refusal arrives after the client wrote. "echo.fault" succeeds
    and echoes the client's bytes; as late-echo.fault its reply waits for the
    client's first byte (which is echoed too): only a client that sends
    optimistic data ever gets an answer.

Two more ports: "mute" accepts and never answers, "close" accepts and closes.
With --first-bytes FILE, each connection on the SOCKS port appends to FILE
the hex of what the client had sent before the proxy answered anything: the
whole handshake when the client pipelines it, the greeting alone otherwise.
Stdlib only; nothing is printed on stdout unless --verbose.
"""
import argparse
import asyncio
import ipaddress
import json
import os
import resource
import signal
import socket
import sys

NAMES = {
    "web.only-proxy.test": "127.0.0.1",
    "v6.only-proxy.test": "::1",
}
# Reverse table for RESOLVE_PTR.
PTR = {"127.0.0.1": "web.only-proxy.test"}

FAULTS = {"refuse", "close", "garbage", "slow", "silent", "badatyp",
          "domainreply", "tor-f2", "sink", "echo"}

# SOCKS5 reply codes (RFC 1928) and the Tor extension used by tor-f2.
REP_OK, REP_FAIL, REP_NOT_ALLOWED, REP_HOST_UNREACH, REP_REFUSED = 0, 1, 2, 4, 5
REP_CMD_UNSUPPORTED, REP_ATYP_UNSUPPORTED = 7, 8
CMD_CONNECT, CMD_RESOLVE, CMD_RESOLVE_PTR = 0x01, 0xF0, 0xF1
# SOCKS4 reply codes.
CD_OK, CD_REJECT = 90, 91

# Long enough that a client reading a full 10-byte SOCKS5 or 8-byte SOCKS4
# reply gets all of it, and starts with 'G' as if an HTTP server answered.
GARBAGE = b"GARBAGE-NOT-SOCKS\r\n"

VERBOSE = False
COUNT_FILE = None
FIRST_BYTES_FILE = None
connects = 0


def log(*a):
    if VERBOSE:
        print(*a, file=sys.stderr, flush=True)


def write_count():
    # Rewritten atomically on every accept so a reader never sees a torn value.
    tmp = COUNT_FILE + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{connects}\n")
    os.replace(tmp, COUNT_FILE)


def record_first_bytes(data):
    # Nothing has been answered yet, so what the reader holds is all the
    # client sent unasked (one line per connection, appended in one write).
    with open(FIRST_BYTES_FILE, "a") as f:
        f.write(data.hex() + "\n")


class Request:
    """One parsed request, protocol-neutral, so faults are written once."""

    def __init__(self, version, cmd, host, port, is_name):
        self.version, self.cmd, self.host, self.port = version, cmd, host, port
        self.is_name = is_name  # host came as a domain name, not an address

    @property
    def _fault_name(self):
        host = self.host.lower()
        if not (self.is_name and host.endswith(".fault")):
            return None
        return host[:-len(".fault")]

    @property
    def late(self):
        name = self._fault_name
        return name is not None and name.startswith("late-")

    @property
    def fault(self):
        name = self._fault_name
        if name is None:
            return None
        name = name.removeprefix("late-")
        if name in FAULTS or (name.startswith("rep") and name[3:].isdigit()):
            return name
        return None


def reply4(cd, addr="0.0.0.0", port=0):
    return bytes([0, cd]) + port.to_bytes(2, "big") + socket.inet_aton(addr)


def reply5(rep, addr="0.0.0.0", port=0, atyp=None):
    if atyp == 3:
        a = addr.encode()
        body = bytes([3, len(a)]) + a
    elif atyp is not None:
        body = bytes([atyp]) + b"\0" * 4  # deliberately bogus ATYP, 4 address bytes
    elif ":" in addr:
        body = b"\x04" + socket.inet_pton(socket.AF_INET6, addr)
    else:
        body = b"\x01" + socket.inet_aton(addr)
    return bytes([5, rep, 0]) + body + port.to_bytes(2, "big")


def reply(req, ok, code5=REP_OK, addr="0.0.0.0", port=0):
    """A reply in the request's protocol; SOCKS4 only knows granted/rejected."""
    if req.version == 4:
        if ":" in addr:  # SOCKS4 cannot carry an IPv6 address
            return reply4(CD_REJECT)
        return reply4(CD_OK if ok else CD_REJECT, addr, port)
    return reply5(code5, addr, port)


async def read_cstr(reader, limit=1024):
    data = await reader.readuntil(b"\0")
    if len(data) > limit:
        raise ValueError("string too long")
    return data[:-1]


async def socks4(reader, writer):
    cmd, = await reader.readexactly(1)
    port = int.from_bytes(await reader.readexactly(2), "big")
    ip = await reader.readexactly(4)
    await read_cstr(reader)  # USERID, ignored
    if ip[:3] == b"\0\0\0" and ip[3] != 0:  # SOCKS4a: name follows
        return Request(4, cmd, (await read_cstr(reader)).decode("latin-1"), port, True)
    return Request(4, cmd, socket.inet_ntoa(ip), port, False)


async def socks5(reader, writer):
    nmethods, = await reader.readexactly(1)
    methods = await reader.readexactly(nmethods)
    # Prefer user/pass when offered: a client only offers it when it has
    # credentials, and the tests want that path exercised.
    if 2 in methods:
        writer.write(b"\x05\x02")
        ver, = await reader.readexactly(1)
        if ver != 1:
            return None
        user = await reader.readexactly((await reader.readexactly(1))[0])
        await reader.readexactly((await reader.readexactly(1))[0])  # password
        if user == b"baduser":
            writer.write(b"\x01\x01")
            await writer.drain()
            return None
        writer.write(b"\x01\x00")
    elif 0 in methods:
        writer.write(b"\x05\x00")
    else:
        writer.write(b"\x05\xff")
        await writer.drain()
        return None
    ver, cmd, _rsv, atyp = await reader.readexactly(4)
    if ver != 5:
        return None
    if atyp == 1:
        host, is_name = socket.inet_ntoa(await reader.readexactly(4)), False
    elif atyp == 4:
        host, is_name = socket.inet_ntop(socket.AF_INET6, await reader.readexactly(16)), False
    elif atyp == 3:
        n, = await reader.readexactly(1)
        host, is_name = (await reader.readexactly(n)).decode("latin-1"), True
    else:
        writer.write(reply5(REP_ATYP_UNSUPPORTED))
        await writer.drain()
        return None
    port = int.from_bytes(await reader.readexactly(2), "big")
    return Request(5, cmd, host, port, is_name)


async def relay(reader, writer, dreader, dwriter):
    async def pump(src, dst):
        try:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            try:
                if dst.can_write_eof():
                    dst.write_eof()
            except (ConnectionError, OSError):
                pass
    # Bytes the client pipelined after its request are already in `reader`'s
    # buffer; pump() forwards them first.
    try:
        await asyncio.gather(pump(reader, dwriter), pump(dreader, writer))
    finally:
        dwriter.close()


async def open_dest(host, port):
    """Only loopback destinations: tests must never leave the machine."""
    if not ipaddress.ip_address(host).is_loopback:
        return None, REP_NOT_ALLOWED
    try:
        r, w = await asyncio.wait_for(asyncio.open_connection(host, port), 5)
        return (r, w), REP_OK
    except ConnectionRefusedError:
        return None, REP_REFUSED
    except (OSError, asyncio.TimeoutError):
        return None, REP_HOST_UNREACH


async def drain_until_eof(reader):
    while await reader.read(65536):
        pass


async def fault(req, reader, writer):
    f = req.fault
    ok = reply(req, True, addr="127.0.0.1", port=req.port)
    early = await reader.readexactly(1) if req.late else b""  # the client's early data
    if f == "echo":
        writer.write(ok + early)
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    elif f.startswith("rep") and f[3:].isdigit():
        code = int(f[3:]) & 0xFF
        writer.write(reply5(code) if req.version == 5 else reply4(code))
    elif f == "refuse":
        writer.write(reply(req, False, REP_REFUSED))
    elif f == "tor-f2":
        writer.write(reply(req, False, 0xF2) if req.version == 5 else reply4(CD_REJECT))
    elif f == "close":
        writer.write(ok[:2])
    elif f == "garbage":
        writer.write(GARBAGE)
    elif f == "badatyp":
        # SOCKS4 has no ATYP; an undefined reply code is the closest analogue.
        writer.write(reply5(REP_OK, port=req.port, atyp=9) if req.version == 5
                     else reply4(0x09))
    elif f == "silent":
        await drain_until_eof(reader)
    elif f == "sink":
        # Success without a destination: load tests measure the client, and
        # need no second socket per connection in this process.
        writer.write(ok)
        await writer.drain()
        await drain_until_eof(reader)
    elif f in ("slow", "domainreply"):
        # Relay to the requested port on loopback, so a test can aim these at
        # the web server and see real data after the odd reply.
        dest, _ = await open_dest("127.0.0.1", req.port)
        if f == "slow":
            for i in range(len(ok)):
                writer.write(ok[i:i + 1])
                await writer.drain()
                await asyncio.sleep(0.2)
        else:
            # One write: a client that over-reads the reply would eat "HELLO".
            rep = (reply5(REP_OK, "bound.example", 4242, atyp=3) if req.version == 5
                   else reply4(CD_OK, "127.0.0.1", 4242))
            writer.write(rep + b"HELLO")
        await writer.drain()
        if dest:
            await relay(reader, writer, *dest)
        else:
            await drain_until_eof(reader)
    await writer.drain()


async def resolve(req, writer):
    if req.cmd == CMD_RESOLVE:
        addr = NAMES.get(req.host.lower()) if req.is_name else req.host
        if addr is None:
            writer.write(reply(req, False, REP_HOST_UNREACH))
        else:
            writer.write(reply(req, True, addr=addr))
    else:  # RESOLVE_PTR
        name = PTR.get(req.host) if not req.is_name else None
        if name is None or req.version != 5:
            writer.write(reply(req, False, REP_HOST_UNREACH))
        else:
            writer.write(reply5(REP_OK, name, 0, atyp=3))


async def connect(req, reader, writer):
    host = NAMES.get(req.host.lower()) if req.is_name else req.host
    if host is None:
        writer.write(reply(req, False, REP_HOST_UNREACH))
        return
    dest, rep = await open_dest(host, req.port)
    if dest is None:
        writer.write(reply(req, False, rep))
        return
    sock = dest[1].get_extra_info("sockname")
    writer.write(reply(req, True, addr=sock[0], port=sock[1]))
    await writer.drain()
    await relay(reader, writer, *dest)


async def handle(reader, writer):
    global connects
    connects += 1
    if COUNT_FILE:
        write_count()
    try:
        ver, = await reader.readexactly(1)
        if FIRST_BYTES_FILE:
            record_first_bytes(bytes([ver]) + bytes(reader._buffer))
        if ver == 4:
            req = await socks4(reader, writer)
        elif ver == 5:
            req = await socks5(reader, writer)
        else:
            req = None
        if req is None:
            return
        log("request", req.version, hex(req.cmd), req.host, req.port)
        if req.fault:
            await fault(req, reader, writer)
        elif req.cmd in (CMD_RESOLVE, CMD_RESOLVE_PTR):
            await resolve(req, writer)
        elif req.cmd == CMD_CONNECT:
            await connect(req, reader, writer)
        else:
            writer.write(reply(req, False, REP_CMD_UNSUPPORTED))
        await writer.drain()
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError,
            OSError, ValueError) as e:
        log("client error:", repr(e))
    finally:
        writer.close()


async def handle_mute(reader, writer):
    # Never answers. Reading (and discarding) is only so the socket gets
    # closed when the client gives up; otherwise load tests would leak fds.
    try:
        await drain_until_eof(reader)
    except (ConnectionError, OSError):
        pass
    writer.close()


async def handle_close(reader, writer):
    writer.close()


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for want in (max(hard, 65536), hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
            return
        except (ValueError, OSError):
            continue


async def main(args):
    kw = dict(host=args.host, backlog=4096, reuse_address=True)
    servers = {
        "fault": await asyncio.start_server(handle, port=args.port, **kw),
        "mute": await asyncio.start_server(handle_mute, port=args.mute_port, **kw),
        "close": await asyncio.start_server(handle_close, port=args.close_port, **kw),
    }
    ports = {k: "%s:%d" % s.sockets[0].getsockname()[:2] for k, s in servers.items()}
    if args.ports_file:
        # Written only after every port is bound: the harness waits for it.
        tmp = args.ports_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(ports, f)
        os.replace(tmp, args.ports_file)
    log("listening", ports)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="SOCKS port (0: any free)")
    ap.add_argument("--mute-port", type=int, default=0)
    ap.add_argument("--close-port", type=int, default=0)
    ap.add_argument("--ports-file", help="write {fault,mute,close: host:port} JSON here once listening")
    ap.add_argument("--count-file", default=os.environ.get("LP_FAULT_CONNECTS"),
                    help="keep the number of connections accepted on the SOCKS port here "
                         "(default: $LP_FAULT_CONNECTS)")
    ap.add_argument("--first-bytes", help="append the hex of each connection's unasked bytes here")
    ap.add_argument("-v", "--verbose", action="store_true", help="log requests to stderr")
    a = ap.parse_args()
    VERBOSE, COUNT_FILE, FIRST_BYTES_FILE = a.verbose, a.count_file, a.first_bytes
    if COUNT_FILE:
        write_count()
    raise_nofile()
    try:
        asyncio.run(main(a))
    except KeyboardInterrupt:
        pass
