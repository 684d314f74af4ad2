"""DNS clients in dynamic programs under the wrapper: python3 dns_clients_test.py CASE WRAPPER

Programs that send their own DNS queries (dig and host from bind9, Node's
dns.resolve4 through c-ares, a Python client that checks who answered)
get placeholders from the supervisor's responder, like static programs:
the logging dnsmasq they were told to ask sees nothing, the answer comes
from the address they asked (c-ares and bind drop any other), and a
connect to the answer sends the name to the proxy. Without a supervisor
(--env) every query is refused with one log line.
"""
import os
import re
import shutil
import subprocess
import sys

import pltest
from pltest import BODY, WEB_NAME

WRAPPER = os.path.abspath(sys.argv[2])
SKIP = 77
fail, no_dns = pltest.fail, pltest.no_dns
PLACEHOLDER = re.compile(r"^240\.\d+\.\d+\.\d+$", re.M)


def run(argv, dns, proxy=None, extra=(), timeout=60):
    return pltest.run_wrapped(WRAPPER, argv, dns, proxy or pltest.microsocks(), extra,
                              timeout=timeout)


def need(program):
    if shutil.which(program) is None:
        print(f"SKIP: no {program}")
        sys.exit(SKIP)


def placeholder_of(stdout, what):
    found = PLACEHOLDER.findall(stdout)
    if not found:
        fail(f"{what}: no placeholder address in the answer")
    return found[0]


def dig_case():
    """dig over UDP and over TCP, A then PTR of the answer: the placeholder
    and its name, and not one query at the server dig was told to ask."""
    need("dig")
    dns = pltest.Dns()
    for transport in ("+notcp", "+tcp"):
        dig = f"dig +short +time=3 +tries=1 {transport} @{dns.addr}"
        # One tree: the placeholder map lives as long as it does.
        r = run(["sh", "-c", f"a=$({dig} {WEB_NAME}) && echo \"$a\" && {dig} -x \"$a\""], dns)
        placeholder_of(r.stdout, f"dig {transport}")
        if r.stdout.split("\n")[1:2] != [WEB_NAME + "."]:
            fail(f"dig {transport} -x: expected {WEB_NAME}.")
    no_dns(dns)


def host_case():
    """host (resolv.conf's server): the same answers, reported as from it."""
    need("host")
    dns = pltest.Dns()
    r = run(["host", "-W", "3", "-t", "A", WEB_NAME], dns)
    if r.returncode != 0 or not re.search(rf"{re.escape(WEB_NAME)} has address 240\.", r.stdout):
        fail("host did not print the placeholder")
    no_dns(dns)


NODE = r"""
const dns = require('dns'), http = require('http');
const [name, port] = process.argv.slice(2);
dns.resolve4(name, (err, addrs) => {
  if (err) { console.log('error', err.code); process.exit(1); }
  console.log('resolved', addrs[0]);
  http.get({host: addrs[0], port: +port, path: '/', headers: {Host: name}}, res => {
    let body = '';
    res.on('data', d => body += d);
    res.on('end', () => { console.log(body); });
  }).on('error', e => { console.log('error', e.code); process.exit(1); });
});
"""


def node_case():
    """Node's dns.resolve4 (c-ares, its own UDP client), then http.get to
    the answer: the name reaches the proxy, the body comes back."""
    need("node")
    dns, web, proxy = pltest.Dns(), pltest.HttpServer(), pltest.microsocks()
    script = pltest.write(os.path.join(pltest.TMP, "resolve4.js"), NODE)
    r = run(["node", script, WEB_NAME, str(web.port)], dns, proxy, ["-v"])
    placeholder_of(r.stdout.replace("resolved ", ""), "node")
    if r.returncode != 0 or BODY.strip() not in r.stdout:
        fail("the body did not arrive")
    if f"connect {WEB_NAME}:{web.port} via {proxy}: ok" not in r.stderr:
        fail("the name did not go to the proxy")
    no_dns(dns)


PYTHON = r"""
import socket, struct, sys
server = sys.argv[1]
def query(name, qtype=1):
    q = struct.pack(">HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return q + struct.pack(">HH", qtype, 1)
def first_a(r):
    return socket.inet_ntoa(r[-4:]) if struct.unpack(">H", r[6:8])[0] else None
def show(kind, s, r, src):
    print(kind, "from", src[0], src[1], "answer", first_a(r), "id", hex(struct.unpack(">H", r[:2])[0]))
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.settimeout(5)
u.sendto(query(sys.argv[2]), (server, 53))
r, src = u.recvfrom(512)
show("sendto", u, r, src)
u.sendto(query(sys.argv[2]), (server, 53))
n, anc, fl, src = u.recvmsg(512)
show("recvmsg", u, n, src)
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
c.settimeout(5)
c.connect((server, 53))
print("peer", *c.getpeername())
c.send(query(sys.argv[2]))
r, src = c.recvfrom(512)
show("connected", c, r, src)
t = socket.create_connection((server, 53), timeout=5)
print("tcp peer", *t.getpeername())
q = query(sys.argv[2])
t.sendall(struct.pack(">H", len(q)) + q)
size = struct.unpack(">H", t.recv(2))[0]
r = b""
while len(r) < size:
    r += t.recv(size - len(r))
print("tcp answer", first_a(r))
v6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
v6.settimeout(5)
v6.sendto(query(sys.argv[2]), ("::1", 53))
r, src = v6.recvfrom(512)
show("v6", v6, r, src)
"""


def sources_case():
    """What a client sees of who answered: sendto/recvfrom, recvmsg, a
    connected socket's getpeername and recvfrom, TCP's getpeername, an
    IPv6 socket asking ::1 — all the server it asked, never the responder
    on 127.0.0.1."""
    dns = pltest.Dns()
    script = pltest.write(os.path.join(pltest.TMP, "dns_sources.py"), PYTHON)
    r = run(["python3", script, dns.addr, WEB_NAME], dns)
    if r.returncode != 0:
        fail("the client failed")
    for line in (f"sendto from {dns.addr} 53 answer 240.", f"recvmsg from {dns.addr} 53 answer 240.",
                 f"peer {dns.addr} 53", f"connected from {dns.addr} 53 answer 240.",
                 f"tcp peer {dns.addr} 53", "tcp answer 240.", "v6 from ::1 53 answer 240."):
        if line not in r.stdout:
            fail(f"no line {line!r}")
    no_dns(dns)


def env_refused_case():
    """--env (the interposer alone, no supervisor): nobody can answer, so
    dig's queries are refused with a log line; none reaches the server."""
    need("dig")
    dns = pltest.Dns()
    out = subprocess.run([WRAPPER, "-p", "socks5h://127.0.0.1:9", "--env"], capture_output=True,
                         text=True, timeout=30, check=True).stdout
    script = pltest.write(os.path.join(pltest.TMP, "env_dig.sh"),
                          out + f"\nexec dig +short +time=2 +tries=1 @{dns.addr} {WEB_NAME}\n")
    r = subprocess.run(dns.wrap(["sh", script]), capture_output=True, text=True, timeout=60)
    print("stdout:", r.stdout, "\nstderr:", r.stderr[-1500:])
    if PLACEHOLDER.search(r.stdout):
        fail("an answer arrived without a supervisor")
    if "DNS over UDP refused" not in r.stderr:
        fail("no log line for the refused query")
    no_dns(dns)


CASES = {
    "dig": dig_case,
    "host": host_case,
    "node": node_case,
    "sources": sources_case,
    "env_refused": env_refused_case,
}

if __name__ == "__main__":
    CASES[sys.argv[1]]()
    print("PASS")
