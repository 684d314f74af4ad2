"""Chain modes, failover and routes through real proxies, one of them down:
python3 routes_test.py CASE WRAPPER.

Every wrapped program runs in a mount namespace whose /etc/resolv.conf points
at a logging dnsmasq; each case asserts that no query reached it. A dead
proxy is a free loopback port (connection refused); a proxy that must see
nothing is a pltest.Listener, which counts the connections it gets.
"""
import os
import subprocess
import sys

import pltest
from pltest import BODY, WEB_NAME

WRAPPER = os.path.abspath(sys.argv[2])
ALLOC_PROBE = os.path.abspath(sys.argv[3]) if len(sys.argv) > 3 else None
fail, no_dns = pltest.fail, pltest.no_dns

# Opens `n` connections one after the other (blocking sockets: the
# interposer's synchronous path) and prints each body.
PY_FETCH = """
import sys, urllib.request
host, port, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
for _ in range(n):
    print(urllib.request.urlopen(f"http://{host}:{port}/", timeout=20).read().decode().strip())
"""


def run(argv, dns, extra=(), timeout=60):
    return pltest.run_wrapped(WRAPPER, argv, dns, None, extra, timeout=timeout)


def dead_proxy():
    return f"socks5h://127.0.0.1:{pltest.free_port()}"


def curl(url):
    return ["curl", "-sS", "-m", "20", url]


def expect_body(r, what):
    if r.returncode != 0 or BODY.strip() not in r.stdout:
        fail(f"{what}: the body did not arrive")


def expect_in(text, *needles):
    for n in needles:
        if n not in text:
            fail(f"{n!r} missing")


def dynamic_case(how):
    """A dead first proxy is skipped: curl (non-blocking connect, the helper
    thread), python (blocking, the tunnel), curl supervised (the supervisor)."""
    dns = pltest.Dns()
    web = pltest.HttpServer()
    dead, alive = dead_proxy(), pltest.microsocks()
    url = f"http://{WEB_NAME}:{web.port}/"
    argv = (["python3", "-c", PY_FETCH, WEB_NAME, str(web.port), "2"] if how == "blocking"
            else curl(url))
    extra = ["-v", "--chain", "dynamic", "-p", dead, "-p", alive]
    if how == "supervised":
        extra.append("--supervise")
    r = run(argv, dns, extra)
    expect_body(r, "dynamic chain")
    expect_in(r.stderr, f"proxy {dead} is down", f"via {alive}: ok")
    if f"via {dead}" in r.stderr:
        fail("the dead proxy is named as a carrier")
    no_dns(dns)


def dynamic_next_hop_refused_case():
    """The first proxy answers "connection refused" for the second (dead):
    the second is skipped, the third carries the connection."""
    dns = pltest.Dns()
    web = pltest.HttpServer()
    first, dead, third = pltest.microsocks(), dead_proxy(), pltest.dante()
    r = run(curl(f"http://{WEB_NAME}:{web.port}/"), dns,
            ["-v", "--chain", "dynamic", "-p", first, "-p", dead, "-p", third])
    expect_body(r, "dynamic chain")
    expect_in(r.stderr, f"proxy {dead} is down", f"via {first} -> {third}: ok")
    no_dns(dns)


def dynamic_timeout_case():
    """A first proxy that never answers (a full-backlog black hole) counts as
    down after --hop-timeout, on both connect paths."""
    dns = pltest.Dns()
    web = pltest.HttpServer()
    hole, alive = pltest.Listener(accept=False), pltest.microsocks()
    silent = f"socks5h://127.0.0.1:{hole.port}"
    for argv in (curl(f"http://{WEB_NAME}:{web.port}/"),
                 ["python3", "-c", PY_FETCH, WEB_NAME, str(web.port), "1"]):
        r = run(argv, dns, ["-v", "--chain", "dynamic", "--hop-timeout", "1", "-p", silent,
                            "-p", alive])
        expect_body(r, "dynamic chain past a silent proxy")
        expect_in(r.stderr, f"proxy {silent} is down (", "timed out", f"via {alive}: ok")
    no_dns(dns)


def dynamic_all_down_case():
    """No hop left: the connect fails, and nothing goes direct."""
    dns = pltest.Dns()
    target = pltest.Listener()
    for how in ("async", "blocking"):
        argv = (curl(f"http://127.0.0.1:{target.port}/") if how == "async" else
                ["python3", "-c", PY_FETCH, "127.0.0.1", str(target.port), "1"])
        r = run(argv, dns, ["--proxy-loopback", "--chain", "dynamic", "-p", dead_proxy(),
                            "-p", dead_proxy()])
        if r.returncode == 0:
            fail(f"{how}: the command succeeded with every proxy down")
        expect_in(r.stderr.lower(), "connection refused")
    if target.count != 0:
        fail("the target saw a direct connection")
    no_dns(dns)


def round_robin_case():
    """round-robin:1 over two proxies: consecutive connections alternate;
    random:1 over a dead and a live one: every connection gets through."""
    dns = pltest.Dns()
    web = pltest.HttpServer()
    a, b = pltest.microsocks(), pltest.dante()
    fetch = ["python3", "-c", PY_FETCH, WEB_NAME, str(web.port), "4"]
    r = run(fetch, dns, ["-v", "--chain", "round-robin:1", "-p", a, "-p", b])
    if r.returncode != 0 or r.stdout.count(BODY.strip()) != 4:
        fail("round-robin: not every body arrived")
    if r.stderr.count(f"via {a}: ok") != 2 or r.stderr.count(f"via {b}: ok") != 2:
        fail("round-robin: the connections did not alternate")
    dead = dead_proxy()
    r = run(fetch, dns, ["-v", "--chain", "random:1", "-p", dead, "-p", a])
    if r.returncode != 0 or r.stdout.count(BODY.strip()) != 4:
        fail("random: a connection did not get past the dead proxy")
    if r.stderr.count(f"via {a}: ok") != 4:
        fail("random: every connection must be carried by the live proxy")
    no_dns(dns)


def route_refuse_case():
    for supervised in (False, True):
        dns = pltest.Dns()
        web = pltest.HttpServer()
        proxy = pltest.microsocks()
        extra = ["-p", proxy, "--route", f"{WEB_NAME}=refuse"] + (["--supervise"] if supervised
                                                                  else [])
        r = run(curl(f"http://{WEB_NAME}:{web.port}/"), dns, extra)
        if r.returncode == 0:
            fail("a refused route let the request through")
        expect_in(r.stderr, f"connect {WEB_NAME}:{web.port}: refused: refused by a route "
                            f"(route {WEB_NAME})")
        if web.requests != 0:
            fail("the web server saw the request")
        no_dns(dns)


def route_direct_case():
    """--proxy-loopback with a dead proxy, and a route sending one loopback
    server direct: that server answers, another loopback port does not."""
    dns = pltest.Dns()
    web = pltest.HttpServer()
    other = pltest.Listener()
    extra = ["-v", "--proxy-loopback", "-p", dead_proxy(), "--route",
             f"127.0.0.1:{web.port}=direct"]
    r = run(curl(f"http://127.0.0.1:{web.port}/"), dns, extra)
    expect_body(r, "direct route")
    expect_in(r.stderr, f"connect 127.0.0.1:{web.port}: direct (route 127.0.0.1:{web.port})")
    r = run(curl(f"http://127.0.0.1:{other.port}/"), dns, extra)
    if r.returncode == 0 or other.count != 0:
        fail("a loopback destination without the route went direct")
    no_dns(dns)


def route_suffix_case():
    """*.only-proxy.test to microsocks; the default "proxy" is a listener that
    counts: it must see only the connection to a name outside the suffix."""
    dns = pltest.Dns()
    web = pltest.HttpServer()
    lab = pltest.microsocks()
    default = pltest.Listener()
    extra = ["-v", "-p", f"socks5h://127.0.0.1:{default.port}",
             "--route", f"*.only-proxy.test={lab}"]
    r = run(curl(f"http://{WEB_NAME}:{web.port}/"), dns, extra)
    expect_body(r, "suffix route")
    expect_in(r.stderr, f"via {lab} (route *.only-proxy.test): ok")
    if default.count != 0:
        fail("the default proxy saw a connection the route takes elsewhere")
    r = run(curl(f"http://elsewhere.test:{web.port}/"), dns, extra)
    if r.returncode == 0 or default.count != 1:
        fail("a name outside the suffix did not go to the default proxy")
    no_dns(dns)


def route_onion_case():
    dns = pltest.Dns()
    proxy = pltest.microsocks()
    r = run(curl("http://expyuzz4wqqyqhjn.onion/"), dns, ["-p", proxy, "--route", f"*={proxy}"])
    if r.returncode == 0:
        fail("a .onion name went to a proxy that is not Tor")
    expect_in(r.stderr, "a .onion name routed to a proxy not marked as Tor")
    r = pltest.run_wrapped(WRAPPER, ["true"], dns, None,
                           ["--route", f"*.onion={proxy}"])
    if r.returncode != 2 or "tor:" not in r.stderr:
        fail("the wrapper took a .onion route to a proxy not marked as Tor")
    no_dns(dns)


def route_credentials_case():
    """A route's proxy with a user or password is refused (exit 2, nothing
    runs): the routes travel in the environment, where no secret may go.
    From --route, from a tsocks path with default_user, and under --env."""
    dns = pltest.Dns()
    marker = os.path.join(pltest.TMP, "ran")
    conf = pltest.write(os.path.join(pltest.TMP, "tsocks-login.conf"),
                        "server = 127.0.0.1\nserver_type = 5\npath {\n"
                        "  reaches = 10.0.0.0/255.0.0.0\n  server = 127.0.0.1\n"
                        "  server_port = 1081\n  server_type = 5\n  default_user = alice\n"
                        "  default_pass = s3cret\n}\n")
    for extra in (["--route", "*.lab=socks5h://alice:s3cret@127.0.0.1:1081"],
                  ["--config", conf]):
        r = run(["touch", marker], dns, extra)
        if r.returncode != 2 or os.path.exists(marker):
            fail(f"{extra}: a route with credentials was not refused")
        expect_in(r.stderr, "route", "credentials")
        if "s3cret" in r.stderr:
            fail("the refusal shows the password")
    env = subprocess.run([WRAPPER, "--route", "*.lab=socks5h://alice@127.0.0.1:1081", "--env"],
                         capture_output=True, text=True)
    if env.returncode != 2 or "alice" in env.stdout:
        fail("--env printed a route's user")
    no_dns(dns)


def peer_proxychains_case():
    """A proxychains4 file, dynamic_chain with a dead first proxy."""
    dns = pltest.Dns()
    web = pltest.HttpServer()
    dead, alive = pltest.free_port(), pltest.microsocks().rsplit(":", 1)[1]
    conf = pltest.write(os.path.join(pltest.TMP, "proxychains.conf"),
                        f"dynamic_chain\nproxy_dns\nremote_dns_subnet 224\n"
                        f"tcp_connect_time_out 2000\n[ProxyList]\n"
                        f"socks5 127.0.0.1 {dead}\nsocks5 127.0.0.1 {alive}\n")
    r = run(curl(f"http://{WEB_NAME}:{web.port}/"), dns, ["-v", "--config", conf])
    expect_body(r, "proxychains file")
    expect_in(r.stderr, "proxychains.conf:3: warning: remote_dns_subnet",
              f"proxy socks5h://127.0.0.1:{dead} is down",
              f"via socks5h://127.0.0.1:{alive}: ok")
    no_dns(dns)


def peer_tsocks_case():
    """A tsocks file: the default server is dead, a path reaches the web
    server through microsocks."""
    dns = pltest.Dns()
    web = pltest.HttpServer()
    alive = pltest.microsocks().rsplit(":", 1)[1]
    conf = pltest.write(os.path.join(pltest.TMP, "tsocks.conf"),
                        f"server = 127.0.0.1\nserver_port = {pltest.free_port()}\n"
                        f"server_type = 5\npath {{\n"
                        f"  reaches = 127.0.0.1:{web.port}/255.255.255.255\n"
                        f"  server = 127.0.0.1\n  server_port = {alive}\n  server_type = 5\n}}\n")
    r = run(curl(f"http://127.0.0.1:{web.port}/"), dns, ["-v", "--config", conf])
    expect_body(r, "tsocks path")
    expect_in(r.stderr, f"via socks5h://127.0.0.1:{alive} (route 127.0.0.1/32:{web.port}): ok")
    no_dns(dns)


def peer_torsocks_case():
    """A torsocks file naming dante as its "Tor" (TorAddress/TorPort; tor = on
    pipelines the handshake, which dante reads), AllowOutboundLocalhost 0
    refusing loopback like torsocks, OnionAddrRange warned about."""
    dns = pltest.Dns()
    web = pltest.HttpServer()
    local = pltest.Listener()
    port = pltest.dante().rsplit(":", 1)[1]
    conf = pltest.write(os.path.join(pltest.TMP, "torsocks.conf"),
                        f"TorAddress 127.0.0.1\nTorPort {port}\nOnionAddrRange 127.42.42.0/24\n"
                        f"AllowOutboundLocalhost 0\n")
    r = run(curl(f"http://{WEB_NAME}:{web.port}/"), dns, ["-v", "--config", conf])
    expect_body(r, "torsocks file")
    expect_in(r.stderr, "torsocks.conf:3: warning: OnionAddrRange",
              f"via socks5h://127.0.0.1:{port}: ok")
    env = subprocess.run([WRAPPER, "--config", conf, "--env"], capture_output=True, text=True)
    if env.returncode != 0:
        fail("--env refused a torsocks file without credentials")
    expect_in(env.stdout, "export LEAKPROOF_TOR='1'",
              f"export LEAKPROOF_PROXIES='socks5h://127.0.0.1:{port}?pipeline=1&optimistic=1'")
    r = run(curl(f"http://127.0.0.1:{local.port}/"), dns, ["--config", conf])
    if r.returncode == 0 or local.count != 0:
        fail("AllowOutboundLocalhost 0 let a loopback connection through")
    expect_in(r.stderr, "refused by a route (route 127.0.0.0/8)")
    no_dns(dns)


def peer_never_local_case():
    """What a peer's file would do locally stays remote: a proxychains file
    without proxy_dns still sends the name to the proxy (no DNS query), and
    a tsocks file asking for a direct fallback, its proxy down, gets none."""
    dns = pltest.Dns()
    web = pltest.HttpServer()
    port = pltest.microsocks().rsplit(":", 1)[1]
    conf = pltest.write(os.path.join(pltest.TMP, "no-proxy-dns.conf"),
                        f"strict_chain\n[ProxyList]\nsocks5 127.0.0.1 {port}\n")
    r = run(curl(f"http://{WEB_NAME}:{web.port}/"), dns, ["-v", "--config", conf])
    expect_body(r, "proxychains file without proxy_dns")
    expect_in(r.stderr, "no-proxy-dns.conf: warning: proxy_dns is off",
              f"via socks5h://127.0.0.1:{port}: ok")
    target = pltest.Listener()
    conf = pltest.write(os.path.join(pltest.TMP, "fallback.conf"),
                        f"fallback = yes\nserver = 127.0.0.1\nserver_port = {pltest.free_port()}\n"
                        "server_type = 5\n")
    r = run(curl(f"http://127.0.0.1:{target.port}/"), dns,
            ["--proxy-loopback", "--config", conf])
    expect_in(r.stderr, "fallback.conf:1: warning: fallback")
    if r.returncode == 0 or target.count != 0:
        fail("fallback = yes let a connection go direct with the proxy down")
    no_dns(dns)


def print_config_case():
    """--print-config shows a peer's file in leakproof's format; a refused
    directive names its line and exits 2."""
    conf = pltest.write(os.path.join(pltest.TMP, "pc.conf"),
                        "round_robin_chain\nchain_len = 2\nproxy_dns\n[ProxyList]\n"
                        "socks5 127.0.0.1 1081 u p\nsocks5 127.0.0.1 1082\n")
    r = subprocess.run([WRAPPER, "--config", conf, "--print-config"], capture_output=True,
                       text=True)
    print(r.stdout, r.stderr)
    expect_in(r.stdout, "chain = round-robin:2\n", "proxy = socks5h://u:p@127.0.0.1:1081\n",
              "proxy = socks5h://127.0.0.1:1082\n")
    own = pltest.write(os.path.join(pltest.TMP, "own.conf"), r.stdout)
    again = subprocess.run([WRAPPER, "--config", own, "--print-config"], capture_output=True,
                           text=True)
    if again.stdout.splitlines()[1:] != r.stdout.splitlines()[1:]:
        fail("the printed config does not read back the same")
    bad = pltest.write(os.path.join(pltest.TMP, "http.conf"),
                       "strict_chain\n[ProxyList]\nhttp 127.0.0.1 3128\n")
    r = subprocess.run([WRAPPER, "--config", bad, "true"], capture_output=True, text=True)
    print(r.returncode, r.stderr)
    if r.returncode != 2 or "http.conf:3: http proxy" not in r.stderr:
        fail("an http entry was not refused with its line")


def allocates_nothing_case():
    """A route to a dynamic chain whose first hop is dead: matching the route,
    skipping the hop and trying again allocate nothing per connect, blocking
    and non-blocking (alloc_probe counts malloc calls per round)."""
    dns, web, alive = pltest.Dns(), pltest.HttpServer(), pltest.microsocks()
    route = f"*.only-proxy.test={dead_proxy()},{alive}"
    for mode in ("blocking", "nonblocking"):
        r = run([ALLOC_PROBE, WEB_NAME, str(web.port), mode, "5"], dns,
                ["-v", "--chain", "dynamic", "-p", dead_proxy(), "--route", route])
        counts = [int(l.split()[2]) for l in r.stdout.splitlines() if l.startswith("round ")]
        if r.returncode != 0 or len(counts) != 5:
            fail(f"{mode}: the probe did not connect 5 times")
        if r.stderr.count("is down") < 5 or r.stderr.count(f"via {alive} (route ") < 5:
            fail(f"{mode}: the connects did not take the route past the dead hop")
        if any(counts[1:]):
            fail(f"{mode}: allocations per connect {counts} (after the first: none expected)")
        print(f"{mode}: allocations per connect {counts}")
    no_dns(dns)


CASES = {
    "dynamic_async": lambda: dynamic_case("async"),
    "dynamic_blocking": lambda: dynamic_case("blocking"),
    "dynamic_supervised": lambda: dynamic_case("supervised"),
    "dynamic_next_hop_refused": dynamic_next_hop_refused_case,
    "dynamic_all_down": dynamic_all_down_case,
    "dynamic_timeout": dynamic_timeout_case,
    "round_robin": round_robin_case,
    "route_refuse": route_refuse_case,
    "route_direct": route_direct_case,
    "route_suffix": route_suffix_case,
    "route_onion": route_onion_case,
    "route_credentials": route_credentials_case,
    "peer_proxychains": peer_proxychains_case,
    "peer_tsocks": peer_tsocks_case,
    "peer_torsocks": peer_torsocks_case,
    "peer_never_local": peer_never_local_case,
    "print_config": print_config_case,
    "allocates_nothing": allocates_nothing_case,
}

if __name__ == "__main__":
    CASES[sys.argv[1]]()
    print("PASS")
