"""One preload test case: python3 preload_test.py CASE WRAPPER [PROBE].

Every wrapped program runs in a mount namespace whose /etc/resolv.conf points
at a logging dnsmasq; each client case asserts that no query reached it.
"""
import os
import shutil
import subprocess
import sys
import time

import pltest
from pltest import BODY, WEB_NAME

WRAPPER = os.path.abspath(sys.argv[2])
PROBE = os.path.abspath(sys.argv[3]) if len(sys.argv) > 3 else None
LEAK_PROBE = os.path.abspath(sys.argv[4]) if len(sys.argv) > 4 else None
TIMEOUT = 60


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def run(argv, dns, proxy=None, extra=(), input=None, timeout=TIMEOUT):
    lp = [WRAPPER] + (["-p", proxy] if proxy else []) + list(extra) + ["--"] + list(argv)
    t0 = time.time()
    r = subprocess.run(dns.wrap(lp), capture_output=True, text=True, input=input,
                       timeout=timeout, cwd=pltest.TMP)
    print("$", " ".join(lp), f"-> rc={r.returncode} ({time.time() - t0:.1f}s)")
    print("stdout:", r.stdout[-500:])
    print("stderr:", r.stderr[-1500:])
    return r


def no_dns(dns):
    q = dns.queries()
    if q:
        fail("DNS queries leaked:\n" + "".join(q))


def fetch_case(argv_of, proxy_kind="microsocks", input_of=None):
    dns = pltest.Dns()
    web = pltest.HttpServer()
    proxy = pltest.dante() if proxy_kind == "dante" else pltest.microsocks()
    url = f"http://{WEB_NAME}:{web.port}/"
    r = run(argv_of(url, web.port), dns, proxy, ["-v"],
            input=input_of(web.port) if input_of else None)
    if r.returncode != 0 or BODY.strip() not in r.stdout:
        fail("the body did not arrive")
    if "via socks5h://" not in r.stderr:
        fail("no -v log line for the proxied connection")
    no_dns(dns)


def http_request(port):
    return f"GET / HTTP/1.0\r\nHost: {WEB_NAME}:{port}\r\n\r\n"


JAVA = """
public class Fetch { public static void main(String[] a) throws Exception {
  try (var in = new java.net.URL(a[0]).openStream()) {
    System.out.print(new String(in.readAllBytes())); } } }
"""

ASYNCIO = """
import asyncio, sys
async def main(host, port):
    r, w = await asyncio.open_connection(host, port)
    w.write(f"GET / HTTP/1.0\\r\\nHost: {host}\\r\\n\\r\\n".encode())
    await w.drain()
    print((await r.read()).decode())
asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""

PERL = """
use IO::Socket::INET;
my $s = IO::Socket::INET->new(PeerAddr => $ARGV[0], PeerPort => $ARGV[1], Proto => 'tcp')
  or die "connect: $!";
print $s "GET / HTTP/1.0\\r\\nHost: $ARGV[0]\\r\\n\\r\\n";
print while <$s>;
"""

NODE = """
require('http').get(process.argv[1], r => { r.setEncoding('utf8');
  r.on('data', d => process.stdout.write(d)); }).on('error', e => { console.error(e); process.exit(1); });
"""


def git_case():
    web = pltest.HttpServer()
    src = os.path.join(pltest.TMP, "src")
    bare = os.path.join(web.root, "repo.git")
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@t")
    for cmd in (["git", "init", "-q", src],
                ["sh", "-c", f"printf '{BODY}' > {src}/body.txt"],
                ["git", "-C", src, "add", "body.txt"],
                ["git", "-C", src, "commit", "-qm", "x"],
                ["git", "clone", "-q", "--bare", src, bare],
                ["git", "-C", bare, "update-server-info"]):
        subprocess.run(cmd, check=True, env=env)
    dns = pltest.Dns()
    proxy = pltest.microsocks()
    dest = os.path.join(pltest.TMP, "clone")
    r = run(["git", "-c", "http.proxy=", "clone", "-q",
             f"http://{WEB_NAME}:{web.port}/repo.git", dest], dns, proxy, ["-v"])
    if r.returncode != 0:
        fail("git clone failed")
    with open(os.path.join(dest, "body.txt")) as f:
        if f.read() != BODY:
            fail("wrong body")
    no_dns(dns)


def java_case():
    src = pltest.write(os.path.join(pltest.TMP, "Fetch.java"), JAVA)
    fetch_case(lambda url, port: ["java", "-Xshare:auto", src, url])


def leak_detector_case():
    dns = pltest.Dns()
    r = subprocess.run(dns.wrap(["getent", "hosts", "leak-check.test"]), capture_output=True,
                       timeout=20)
    print("unwrapped getent rc", r.returncode)
    if not any("leak-check.test" in q for q in dns.queries()):
        fail("the dnsmasq log did not see an unwrapped lookup: the leak check is blind")


def shared_map_case():
    """A name resolved in one process, connected to from another (fork + exec)."""
    dns = pltest.Dns()
    web = pltest.HttpServer()
    proxy = pltest.microsocks()
    script = (f"a=$(getent hosts {WEB_NAME} | cut -d' ' -f1); echo addr=$a; "
              f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc $a {web.port}")
    r = run(["sh", "-c", script], dns, proxy)
    if BODY.strip() not in r.stdout or "addr=100::" not in r.stdout:
        fail("the placeholder from getent did not reach the web server via nc")
    no_dns(dns)


def resolver_probe_case():
    dns = pltest.Dns()
    r = run([PROBE], dns, None)
    if r.returncode != 0:
        fail("resolver probe failed")
    no_dns(dns)


def leak_probe_case():
    """Every leak path under the wrapper: each call refused or answered locally, no query."""
    dns = pltest.Dns()
    r = run([LEAK_PROBE, "wrapped", dns.addr], dns, None)
    if r.returncode != 0:
        fail("leak probe failed")
    for line in ("res_query p10.leak.test: refused:", "res_nsend: refused:",
                 f"sendto {dns.addr}:53: refused:", f"sendmmsg {dns.addr}:53: refused:",
                 f"connect {dns.addr}:53: refused:"):
        if line not in r.stderr:
            fail(f"no log line {line!r}")
    no_dns(dns)


def leak_probe_bare_case():
    """The same paths without the wrapper: dnsmasq must see each one (the check is not blind)."""
    dns = pltest.Dns()
    r = subprocess.run(dns.wrap([LEAK_PROBE, "bare", dns.addr]), capture_output=True, text=True,
                       timeout=TIMEOUT)
    print(r.stdout[-3000:], r.stderr[-500:])
    needles = [l.split(" ", 1)[1] for l in r.stdout.splitlines() if l.startswith("needle ")]
    if len(needles) < 25:
        fail("the probe announced too few paths")
    log = "".join(dns.queries())
    missed = [n for n in needles if n not in log]
    if missed:
        fail("dnsmasq did not see: " + ", ".join(missed))


def fd_lifecycle_case():
    dns = pltest.Dns()
    web = pltest.HttpServer()
    proxy = pltest.microsocks()
    r = run([LEAK_PROBE, "fd", WEB_NAME, str(web.port)], dns, proxy)
    if r.returncode != 0:
        fail("fd lifecycle probe failed")
    no_dns(dns)


def getent_placeholder_case():
    dns = pltest.Dns()
    r = run(["getent", "hosts", "p1.leak.test"], dns, None)
    if r.returncode != 0 or "p1.leak.test" not in r.stdout:
        fail("getent got no placeholder")
    addr = r.stdout.split()[0]
    if not (addr.startswith("100::") or addr.split(".")[0] in [str(x) for x in range(240, 256)]):
        fail(f"{addr} is not a placeholder")
    no_dns(dns)


def python_gethostbyaddr_case():
    dns = pltest.Dns()
    script = ("import socket\n"
              "try: print('answer', socket.gethostbyaddr('127.0.0.1'))\n"
              "except socket.herror as e: print('herror', e)\n")
    r = run(["python3", "-c", script], dns, None)
    if r.returncode != 0 or not ("answer" in r.stdout or "herror" in r.stdout):
        fail("python's gethostbyaddr did not return")
    if "herror" in r.stdout and "Unknown host" not in r.stdout:
        fail("expected HOST_NOT_FOUND (Unknown host)")
    no_dns(dns)


def node_resolve4_case():
    """c-ares speaks DNS over UDP itself: refused, an error code, no query."""
    dns = pltest.Dns()
    script = ("require('dns').resolve4('p9.leak.test', (e, a) => "
              "{ console.log(e ? 'code ' + e.code : 'answer ' + a); });")
    r = run(["node", "-e", script], dns, None)
    if "code " not in r.stdout:
        fail("node's resolve4 did not fail")
    if "refused" not in r.stderr:
        fail("no refusal logged")
    no_dns(dns)


def dig_host_case():
    tools = [t for t in ("dig", "host") if shutil.which(t)]
    if not tools:
        print("dig and host not installed: skipped")
        return
    dns = pltest.Dns()
    for t in tools:
        r = run([t, "p7.leak.test"], dns, None)
        if r.returncode == 0:
            fail(f"{t} got an answer")
    no_dns(dns)


def expect_failure(r, listener, *needles):
    if r.returncode == 0:
        fail("the command succeeded")
    for n in needles:
        if n.lower() not in r.stderr.lower():
            fail(f"message {n!r} missing")
    if listener is not None and listener.count != 0:
        fail("the target saw a direct connection")


def curl_target(port):
    return ["curl", "-sS", "-m", "20", f"http://127.0.0.1:{port}/"]


def proxy_down_case():
    dns = pltest.Dns()
    target = pltest.Listener()
    dead = f"socks5h://127.0.0.1:{pltest.free_port()}"
    r = run(curl_target(target.port), dns, dead, ["--proxy-loopback"])
    expect_failure(r, target, "leakproof: curl[", "via " + dead, "connection refused")
    no_dns(dns)


def proxy_refuses_case():
    dns = pltest.Dns()
    proxy = pltest.microsocks()
    closed = pltest.free_port()
    r = run(["curl", "-sS", f"http://{WEB_NAME}:{closed}/"], dns, proxy)
    expect_failure(r, None, f"connect {WEB_NAME}:{closed} via {proxy}:")
    no_dns(dns)


def proxy_timeout_case():
    dns = pltest.Dns()
    hole = pltest.Listener(accept=False)
    target = pltest.Listener()
    t0 = time.time()
    r = run(curl_target(target.port), dns, f"socks5h://127.0.0.1:{hole.port}",
            ["--proxy-loopback", "--timeout", "1"])
    expect_failure(r, target, "timed out")
    if time.time() - t0 > 15:
        fail("the timeout was not applied")


def refused_binary(prepare, needle):
    dns = pltest.Dns()
    target = pltest.Listener()
    path = prepare(target.port)
    r = run([path], dns, "socks5h://127.0.0.1:9", ["--proxy-loopback"])
    if r.returncode not in (126, 127):
        fail("expected exit 126")
    expect_failure(r, target, "refusing to run", needle)


def build_connector(static):
    def prepare(port):
        src = pltest.write(os.path.join(pltest.TMP, "c.c"), f"""
#include <arpa/inet.h>
#include <sys/socket.h>
int main(void) {{
    struct sockaddr_in a = {{.sin_family = AF_INET, .sin_port = htons({port})}};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    return connect(s, (struct sockaddr*)&a, sizeof a) == 0 ? 0 : 1;
}}
""")
        out = os.path.join(pltest.TMP, "static-conn" if static else "conn")
        subprocess.run(["cc"] + (["-static"] if static else []) + ["-o", out, src], check=True)
        return out
    return prepare


def setuid_case():
    def prepare(port):
        path = build_connector(False)(port)
        os.chmod(path, 0o4755)
        return path
    refused_binary(prepare, "setuid")


def caps_case():
    def prepare(port):
        path = build_connector(False)(port)
        subprocess.run(["setcap", "cap_net_raw+ep", path], check=True)
        return path
    refused_binary(prepare, "capabilities")


def bad_url_case():
    r = subprocess.run([WRAPPER, "-p", "socks9://u:secret@h", "true"], capture_output=True,
                       text=True)
    print(r.returncode, r.stderr)
    if r.returncode != 2 or "bad proxy URL 'socks9://u:***@h':" not in r.stderr:
        fail("expected a one-line usage error, exit 2")
    if "secret" in r.stderr:
        fail("the password was printed")


def chain_case():
    dns = pltest.Dns()
    web = pltest.HttpServer()
    first, second = pltest.microsocks(), pltest.microsocks()
    lp_args = ["-v", "-p", second]
    r = run(["curl", "-sS", f"http://{WEB_NAME}:{web.port}/"], dns, first, lp_args)
    if BODY.strip() not in r.stdout or f"via {first} -> {second}" not in r.stderr:
        fail("the chain did not carry the request")
    no_dns(dns)


CASES = {
    "curl": lambda: fetch_case(lambda url, port: ["curl", "-sS", url]),
    "wget": lambda: fetch_case(lambda url, port: ["wget", "-q", "-O", "-", url]),
    "python_urllib": lambda: fetch_case(lambda url, port: [
        "python3", "-c", "import sys,urllib.request;"
        "print(urllib.request.urlopen(sys.argv[1]).read().decode())", url]),
    "python_asyncio": lambda: fetch_case(lambda url, port: [
        "python3", "-c", ASYNCIO, WEB_NAME, str(port)]),
    "node": lambda: fetch_case(lambda url, port: ["node", "-e", NODE, url]),
    "java": java_case,
    "perl": lambda: fetch_case(lambda url, port: ["perl", "-e", PERL, WEB_NAME, str(port)]),
    "git": git_case,
    "netcat": lambda: fetch_case(lambda url, port: ["nc", WEB_NAME, str(port)],
                                 input_of=http_request),
    "dante_curl": lambda: fetch_case(lambda url, port: ["curl", "-sS", url], "dante"),
    "dante_python": lambda: fetch_case(lambda url, port: [
        "python3", "-c", ASYNCIO, WEB_NAME, str(port)], "dante"),
    "dns_leak_detector": leak_detector_case,
    "shared_map": shared_map_case,
    "resolver_probe": resolver_probe_case,
    "chain": chain_case,
    "proxy_down": proxy_down_case,
    "proxy_refuses": proxy_refuses_case,
    "proxy_timeout": proxy_timeout_case,
    "static_binary": lambda: refused_binary(build_connector(True), "statically linked"),
    "setuid_binary": setuid_case,
    "capabilities_binary": caps_case,
    "bad_url": bad_url_case,
    "leak_probe": leak_probe_case,
    "leak_probe_bare": leak_probe_bare_case,
    "fd_lifecycle": fd_lifecycle_case,
    "getent_placeholder": getent_placeholder_case,
    "python_gethostbyaddr": python_gethostbyaddr_case,
    "node_resolve4": node_resolve4_case,
    "dig_host": dig_host_case,
}

if __name__ == "__main__":
    CASES[sys.argv[1]]()
    print("PASS")
