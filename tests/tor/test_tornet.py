#!/usr/bin/env python3
"""Smoke test for the private Tor test network (tests/tor/tornet.py).

Brings the network up, checks it end to end through the client's SocksPort,
tears it down and checks that nothing was left behind. Exit 0 = pass; the last
line is "N passed, M failed". Skips (exit 0, "SKIP: ...") only when network
namespaces cannot be created (not root, or no netns support).
"""
import os
import re
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tornet  # noqa: E402

BAD_ONION = "not-a-valid-v3-address.onion"
RESULTS = []


def check(name, fn):
    """Run one named check; record and print pass/fail, never raise."""
    try:
        fn()
        RESULTS.append((name, True))
        print(f"PASS: {name}", flush=True)
    except Exception as e:  # noqa: BLE001 - a failed check must not stop the rest
        RESULTS.append((name, False))
        print(f"FAIL: {name}: {e}", flush=True)
        if not isinstance(e, AssertionError):
            traceback.print_exc()


def expect(cond, msg):
    if not cond:
        raise AssertionError(msg)


# ---- individual checks -----------------------------------------------------
def fetch_body(net, host):
    rc, body, err = net.fetch(host)
    expect(rc == 0, f"curl exit {rc}: {err.strip()}")
    expect(body == tornet.WEB_BODY.decode(), f"unexpected body {body!r}")


def bootstrap_via_control(net):
    out = net.control("GETINFO status/bootstrap-phase")
    expect("PROGRESS=100" in out and "TAG=done" in out, f"control says {out!r}")


def isolated_auth_fetch(net):
    # Distinct SOCKS credentials must be accepted (IsolateSOCKSAuth) and work.
    for user in ("alice:x", "bob:y"):
        rc, body, err = net.fetch(tornet.WEB_NAME, user=user)
        expect(rc == 0 and body == tornet.WEB_BODY.decode(),
               f"user {user}: curl exit {rc}: {err.strip()}")


def tor_resolve(net):
    rc, out, err = net.resolve(tornet.WEB_NAME)
    expect(rc == 0, f"tor-resolve exit {rc}: {err.strip()}")
    expect(out == tornet.WEB_ADDR, f"resolved to {out!r}, want {tornet.WEB_ADDR}")


def bad_onion_extended_error(net):
    rc, _, err = net.fetch(BAD_ONION, verbose=True)
    # curl 97 = CURLE_PROXY; it prints the raw SOCKS5 reply code in decimal:
    # 246 = X'F6' "Onion Service Invalid Address" (needs ExtendedErrors).
    expect(rc == 97, f"curl exit {rc}, want 97; stderr: {err.strip()[-300:]}")
    expect(re.search(r"\(246\)", err), f"no SOCKS reply F6 (246) in: {err.strip()[-300:]}")


def dns_only_from_exits(net):
    queries = net.dns_queries()
    names = {q[0] for q in queries}
    expect(tornet.WEB_NAME in names, f"exit never asked for {tornet.WEB_NAME}: {queries}")
    # Onion names must never reach DNS, and nothing outside the test names may.
    expect(names <= set(tornet.TEST_NAMES), f"unexpected names queried: {names}")
    owners = net.udp_port_owners()
    exit_pids = {net.procs[f"exit{i}"] for i in range(len(tornet.EXIT_ADDRS))}
    for name, addr, port in queries:
        pid = owners.get(port)
        expect(pid in exit_pids,
               f"query {name} from {addr}/{port} owned by pid {pid}, not an exit "
               f"(exits {sorted(exit_pids)}, test pid {os.getpid()})")
        expect(pid != os.getpid(), "the test process itself did a DNS query")


def torn_down(ns_name, pids):
    expect(not Path("/run/netns", ns_name).exists(), f"namespace {ns_name} still exists")
    alive = [p for p in pids if tornet.pid_alive(p)]
    expect(not alive, f"processes still alive: {alive}")


# ---- driver ----------------------------------------------------------------
def run_all(workdir):
    t0 = time.monotonic()
    with tornet.TorNetwork(workdir) as net:
        print(f"network up in {time.monotonic() - t0:.1f}s: namespace {net.ns.name}, "
              f"socks {net.socks()}, onion {net.onion}", flush=True)
        check("bootstrap 100% via ControlPort", lambda: bootstrap_via_control(net))
        check(f"fetch http://{tornet.WEB_NAME}/ via exit", lambda: fetch_body(net, tornet.WEB_NAME))
        check("fetch via onion service", lambda: fetch_body(net, net.onion))
        check("IsolateSOCKSAuth credentials accepted", lambda: isolated_auth_fetch(net))
        check("tor-resolve RESOLVE through client", lambda: tor_resolve(net))
        check("malformed .onion -> curl 97, SOCKS F6", lambda: bad_onion_extended_error(net))
        check("DNS queries come only from exits", lambda: dns_only_from_exits(net))
        ns_name, pids = net.ns.name, list(net.procs.values())
    check("down removes namespace and processes", lambda: torn_down(ns_name, pids))


def main():
    if not tornet.namespaces_supported():
        print("SKIP: cannot create network namespaces (need root and netns support)")
        return 0
    keep = os.environ.get("TORNET_KEEP_DIR")  # keep logs for debugging
    with tempfile.TemporaryDirectory(prefix="tornet-") as tmp:
        workdir = keep or tmp
        try:
            run_all(workdir)
        except KeyboardInterrupt:
            print("interrupted; network torn down")
            return 130
        except Exception as e:  # noqa: BLE001 - report bring-up failure as a failed check
            RESULTS.append(("network up", False))
            print(f"FAIL: network up: {e}", flush=True)
    passed = sum(ok for _, ok in RESULTS)
    failed = len(RESULTS) - passed
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
