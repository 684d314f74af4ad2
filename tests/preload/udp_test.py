"""UDP through the proxy's relay under the wrapper (--udp):
python3 udp_test.py CASE WRAPPER RAWCLIENT_CACHE_DIR

A UDP echo server on loopback (--proxy-loopback sends loopback datagrams
through the relay too) records the source of every datagram it gets: under
--udp that is only ever the relay (dante's or ss-server's socket, never the
client's own port), and without --udp nothing arrives at all. The clients
are real programs: Python (sendto/recvfrom, recvmsg, sendmsg, connect with
send/recv, os.write/os.read, an AF_INET6 socket, a name through its
placeholder) and socat.
"""
import os
import socket
import subprocess
import sys
import threading

import pltest
from pltest import WEB_NAME

lptest = pltest.lptest
CASE = sys.argv[1]
WRAPPER = os.path.abspath(sys.argv[2])
fail = pltest.fail


class UdpEcho:
    """Answers each datagram with "echo:" + it, and remembers who sent it."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.sources = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            data, src = self.sock.recvfrom(65535)
            self.sources.append(src)
            self.sock.sendto(b"echo:" + data, src)


CLIENT = r"""
import os, select, socket, sys
port, name = int(sys.argv[1]), sys.argv[2]
def show(*a):
    print(*a, flush=True)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
s.sendto(b"one", ("127.0.0.1", port))
data, src = s.recvfrom(100)
show("sendto", data.decode(), src[0], src[1] == port, "local", s.getsockname()[1])
s.sendmsg([b"tw", b"o"], [], 0, ("127.0.0.1", port))
data, anc, flags, src = s.recvmsg(100)
show("sendmsg", data.decode(), src[1] == port)
big = b"x" * 1200  # under shadowsocks-libev's packet size
s.sendto(big, ("127.0.0.1", port))
data, src = s.recvfrom(65535)
show("big", len(data))
s.sendto(big, ("127.0.0.1", port))
data, anc, flags, src = s.recvmsg(10)
show("truncated", len(data), bool(flags & socket.MSG_TRUNC))
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
c.settimeout(5)
c.connect(("127.0.0.1", port))
show("peer", c.getpeername()[1] == port)
c.send(b"three")
show("connected", c.recv(100).decode())
os.write(c.fileno(), b"four")
select.select([c], [], [], 5)
show("write", os.read(c.fileno(), 100).decode())
c.close()
six = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
six.settimeout(5)
six.sendto(b"five", ("::ffff:127.0.0.1", port))
data, src = six.recvfrom(100)
show("v6", data.decode(), src[0], src[1] == port)
addr = socket.getaddrinfo(name, port, socket.AF_INET, socket.SOCK_DGRAM)[0][4]
n = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
n.settimeout(5)
n.connect(addr)
n.send(b"six")
data, src = n.recvfrom(100)
show("by name", data.decode(), src == addr, addr[0].startswith("240."))
"""

EXPECTED = ["sendto echo:one 127.0.0.1 True", "sendmsg echo:two True", "big 1205",
            "truncated 10 True", "peer True", "connected echo:three", "write echo:four",
            "v6 echo:five ::ffff:127.0.0.1 True", "by name echo:six True True"]


def run_client(proxy, echo, extra=("--udp", "--proxy-loopback", "-v"), timeout=60):
    dns = pltest.Dns()
    script = pltest.write(os.path.join(pltest.TMP, "udp_client.py"), CLIENT)
    r = pltest.run_wrapped(WRAPPER, ["python3", script, str(echo.port), WEB_NAME], dns, proxy,
                           extra, timeout=timeout)
    pltest.no_dns(dns)
    return r


def only_relay(echo, r):
    """The echo heard the relay, never the client's own socket."""
    local = [l for l in r.stdout.splitlines() if l.startswith("sendto ")]
    client_port = int(local[0].split()[-1]) if local else None
    print("echo saw", echo.sources)
    if not echo.sources:
        fail("nothing reached the echo")
    if any(p == client_port for _, p in echo.sources):
        fail("the echo heard the client's own port: a datagram left directly")


def relay_case(proxy):
    echo = UdpEcho()
    r = run_client(proxy, echo)
    for line in EXPECTED:
        if line not in r.stdout:
            fail(f"no line {line!r}")
    if "(UDP ASSOCIATE): relay ready" not in r.stderr:
        fail("no log line for the association")
    only_relay(echo, r)


def dante_case():
    """Every send and receive family through dante's relay."""
    relay_case(pltest.dante())


def shadowsocks_case():
    """The same through shadowsocks-libev (ss-local -u in front of ss-server -u)."""
    relay_case(f"socks5h://127.0.0.1:{lptest.shadowsocks().port}")


def socat_case():
    """socat's UDP client (connect, then write and read) through dante and
    through shadowsocks-libev."""
    for proxy in (pltest.dante(), f"socks5h://127.0.0.1:{lptest.shadowsocks().port}"):
        echo = UdpEcho()
        r = pltest.run_wrapped(WRAPPER, ["socat", "-T", "3", "-", f"UDP:127.0.0.1:{echo.port}"],
                               pltest.Dns(), proxy, ["--udp", "--proxy-loopback"],
                               input="hello\n")
        if "echo:hello" not in r.stdout:
            fail(f"socat did not get the echo through {proxy}")
        if not echo.sources:
            fail("nothing reached the echo")


def refused_case():
    """Without --udp: refused with a log line (to 192.0.2.1, TEST-NET: a
    loopback destination is sent directly without --udp). With it but a
    proxy without UDP ASSOCIATE (microsocks): the send fails with a log line
    naming the proxy's refusal, nothing reaches the echo."""
    echo = UdpEcho()
    send = ("import socket, sys\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            "try:\n    s.sendto(b'x', (sys.argv[2], int(sys.argv[1])))\n    print('sent')\n"
            "except OSError as e:\n    print('error', e.errno)\n")
    dns = pltest.Dns()
    r = pltest.run_wrapped(WRAPPER, ["python3", "-c", send, "9", "192.0.2.1"], dns,
                           pltest.dante())
    if "sent" in r.stdout or "non-TCP socket refused" not in r.stderr:
        fail("without --udp the datagram was not refused with a log line")
    r = pltest.run_wrapped(WRAPPER, ["python3", "-c", send, str(echo.port), "127.0.0.1"], dns,
                           pltest.microsocks(), ["--udp", "--proxy-loopback"])
    if "sent" in r.stdout or "(UDP ASSOCIATE):" not in r.stderr:
        fail("a proxy refusing UDP ASSOCIATE did not fail the send with a log line")
    raw = ("import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)\n"
           "try:\n    s.sendto(b'12345678x', ('192.0.2.1', 9))\n    print('sent')\n"
           "except OSError as e:\n    print('error', e.errno)\n")
    r = pltest.run_wrapped(WRAPPER, ["python3", "-c", raw], dns, pltest.dante(), ["--udp"])
    if "sent" in r.stdout or "non-TCP socket refused" not in r.stderr:
        fail("--udp let a raw socket's datagram out, or refused it without a log line")
    if echo.sources:
        fail(f"the echo got datagrams: {echo.sources}")
    pltest.no_dns(dns)


def usage_case():
    """--udp where UDP ASSOCIATE cannot serve: exit 2 and a sentence."""
    for extra, needle in ((["--tor"], "--udp cannot be used with --tor"),
                          (["-p", "socks5h://127.0.0.1:9", "-p", "socks5h://127.0.0.1:10"],
                           "--udp needs a single proxy"),
                          (["-p", "socks4a://127.0.0.1:9"], "--udp needs a SOCKS5 proxy")):
        r = subprocess.run([WRAPPER, "--udp"] + extra + ["--", "true"], capture_output=True,
                           text=True, timeout=30)
        print(extra, r.returncode, r.stderr)
        if r.returncode != 2 or needle not in r.stderr:
            fail(f"expected exit 2 and {needle!r}")


def static_case():
    """A static program's datagram under --udp: the supervisor does not relay
    it; refused with a log line that says so, nothing reaches the echo."""
    sys.argv = [sys.argv[0], "-", WRAPPER, sys.argv[3]]
    import supervise_test
    echo = UdpEcho()
    r = pltest.run_wrapped(WRAPPER, [supervise_test.raw_client(), "unspec", "127.0.0.1",
                                     str(echo.port)], pltest.Dns(), pltest.dante(),
                           ["--udp", "--proxy-loopback"])
    if "is not done under the supervisor" not in r.stderr or "unspec: sent" in r.stdout:
        fail("the static program's datagram was not refused with a sentence")
    if echo.sources:
        fail("the echo got a datagram")


CASES = {
    "dante": dante_case,
    "shadowsocks": shadowsocks_case,
    "socat": socat_case,
    "refused": refused_case,
    "usage": usage_case,
    "static": static_case,
}

if __name__ == "__main__":
    CASES[CASE]()
    print("PASS")
