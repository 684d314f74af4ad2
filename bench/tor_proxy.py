#!/usr/bin/env python3
"""tests/harness/fault_proxy.py as a stand-in for Tor in the benchmarks.

torsocks resolves a name with Tor's RESOLVE (0xF0), then CONNECTs to the
address it got. The fault proxy answers RESOLVE for web.only-proxy.test with
127.0.0.1, and torsocks connects to a loopback address directly, never
through the proxy (AllowOutboundLocalhost 1), or refuses it (the default):
either way its CONNECT round trips would not be measured. So here the name
resolves to STAND_IN (TEST-NET-1, never routed) and a CONNECT to STAND_IN
(as an address or, as torsocks sends it, as a name) goes to 127.0.0.1, same
port: every contender pays for the proxy's CONNECT.

Same options as fault_proxy.py (--port, --ports-file, ...)."""
import asyncio
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "harness"))
import fault_proxy  # noqa: E402

STAND_IN = "192.0.2.1"
_open_dest = fault_proxy.open_dest


async def open_dest(host, port):
    return await _open_dest("127.0.0.1" if host == STAND_IN else host, port)


fault_proxy.NAMES = {name: STAND_IN if addr == "127.0.0.1" else addr
                     for name, addr in fault_proxy.NAMES.items()}
# torsocks sends the address it resolved as a name (ATYP 3, "192.0.2.1").
fault_proxy.NAMES[STAND_IN] = STAND_IN
fault_proxy.open_dest = open_dest

if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--mute-port", type=int, default=0)
    ap.add_argument("--close-port", type=int, default=0)
    ap.add_argument("--ports-file")
    ap.add_argument("--count-file")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()
    fault_proxy.VERBOSE, fault_proxy.COUNT_FILE = a.verbose, a.count_file
    if a.count_file:
        fault_proxy.write_count()
    fault_proxy.raise_nofile()
    try:
        asyncio.run(fault_proxy.main(a))
    except KeyboardInterrupt:
        pass
