#!/usr/bin/env python3
"""leakproof against its peers, side by side, in one run.

Starts (on loopback, stopped at the end): an echo server, microsocks and
dante-server that alone resolve `bench.only-proxy.test` (private /etc/hosts in
a mount namespace), and relays that put each proxy 20 ms away (10 ms each
direction). Every contender runs the same C program (bench/connect_loop.c):
sequential connects by name, one echoed byte each. Contenders alternate
round by round; each figure is the median over rounds of per-round medians.

  bench/run.py [--build DIR] [--quick]

Exits non-zero only when it cannot run, never on a slow figure."""
import argparse
import contextlib
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

NAME = "bench.only-proxy.test"
HERE = os.path.dirname(os.path.abspath(__file__))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, seconds=10):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


class Services(contextlib.ExitStack):
    """The servers every contender shares; all stopped on exit."""

    def __init__(self, workdir):
        super().__init__()
        self.workdir = workdir
        self.hosts = os.path.join(workdir, "hosts")
        with open(self.hosts, "w") as f:
            f.write(f"127.0.0.1 localhost\n127.0.0.1 {NAME}\n")

    def spawn(self, argv, port):
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.callback(lambda: (proc.kill(), proc.wait()))
        wait_port(port)
        return port

    def in_private_hosts(self, command):
        return ["unshare", "-m", "sh", "-c", f"mount --bind {self.hosts} /etc/hosts && exec {command}"]

    def echo(self):
        port = free_port()
        return self.spawn([sys.executable, os.path.join(HERE, "echo_server.py"), str(port)], port)

    def microsocks(self):
        port = free_port()
        return self.spawn(self.in_private_hosts(f"microsocks -i 127.0.0.1 -p {port}"), port)

    def dante(self):
        port = free_port()
        conf = os.path.join(self.workdir, f"danted-{port}.conf")
        with open(conf, "w") as f:
            f.write(f"""logoutput: /dev/null
internal: 127.0.0.1 port = {port}
external: 127.0.0.1
socksmethod: none
clientmethod: none
user.privileged: root
user.unprivileged: nobody
client pass {{ from: 127.0.0.0/8 to: 0.0.0.0/0 }}
socks pass {{ from: 127.0.0.0/8 to: 0.0.0.0/0 }}
""")
        return self.spawn(self.in_private_hosts(f"danted -f {conf} -N 2"), port)

    def relay(self, target_port, delay_ms):
        port = free_port()
        script = os.path.join(HERE, "delay_relay.py")
        return self.spawn([sys.executable, script, str(port), str(target_port), str(delay_ms)], port)


class Contender:
    """A way to run connect_loop through a proxy at `port`."""

    def __init__(self, name, argv_for, env_for=None):
        self.name, self.argv_for, self.env_for = name, argv_for, env_for

    def run(self, port, connects, echo_port, loop_binary):
        argv = self.argv_for(port) + [loop_binary, str(connects), NAME, str(echo_port)]
        env = dict(os.environ, **(self.env_for(port) if self.env_for else {}))
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if out.returncode != 0:
            raise RuntimeError(f"{self.name}: {out.stderr.strip() or out.stdout.strip()}")
        median_us = float(out.stdout.split()[-2])
        cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return median_us, cpu_s / connects


def peers(workdir, build):
    def proxychains(port):
        conf = os.path.join(workdir, f"proxychains-{port}.conf")
        with open(conf, "w") as f:
            f.write(f"strict_chain\nproxy_dns\nremote_dns_subnet 224\nquiet_mode\n"
                    f"tcp_read_time_out 15000\ntcp_connect_time_out 8000\n"
                    f"[ProxyList]\nsocks5 127.0.0.1 {port}\n")
        return ["proxychains4", "-q", "-f", conf]

    def socksify_env(port):
        conf = os.path.join(workdir, f"socks-{port}.conf")
        with open(conf, "w") as f:
            f.write(f"resolveprotocol: fake\nroute {{\n from: 0.0.0.0/0 to: 0.0.0.0/0 "
                    f"via: 127.0.0.1 port = {port}\n proxyprotocol: socks_v5\n method: none\n}}\n")
        return {"SOCKS_CONF": conf}

    wrapper = os.path.join(build, "preload", "leakproof")
    found = []
    if os.access(wrapper, os.X_OK):
        found.append(Contender("leakproof", lambda p: [wrapper, "-q", "-p", f"socks5h://127.0.0.1:{p}", "--"]))
        found.append(Contender("leakproof --pipeline", lambda p: [
            wrapper, "-q", "-p", f"socks5h://127.0.0.1:{p}?pipeline=1", "--"]))
    if shutil.which("proxychains4"):
        found.append(Contender("proxychains4", proxychains))
    if shutil.which("socksify"):
        found.append(Contender("socksify (dante-client)", lambda p: ["socksify"], socksify_env))
    return found


def floor(build, pipeline=False):
    binary = os.path.join(build, "bench", "floor_client")

    class Floor(Contender):
        def run(self, port, connects, echo_port, _loop):
            argv = [binary, str(connects), str(port), NAME, str(echo_port)] + (["pipeline"] if pipeline else [])
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            out = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=True)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            return float(out.stdout.split()[0]), cpu_s / connects

    return Floor("floor: in-process SOCKS5" + (" pipelined" if pipeline else ""), None)


def measure(contenders, port, connects, rounds, echo_port, loop_binary):
    """Median over rounds of (median latency, CPU per connect), contenders alternating."""
    samples = {c.name: [] for c in contenders}
    for _ in range(rounds):
        for c in contenders:
            try:
                samples[c.name].append(c.run(port, connects, echo_port, loop_binary))
            except (RuntimeError, subprocess.SubprocessError) as e:
                print(f"  {c.name}: failed: {str(e)[:200]}", file=sys.stderr)
    return {name: (statistics.median(s[0] for s in got), statistics.median(s[1] for s in got))
            for name, got in samples.items() if got}


def print_table(title, results, comparators, unit):
    print(f"\n{title}")
    names = [c for c in comparators if c in results]
    header = f"  {'contender':32} {unit:>14}" + "".join(f"  {'vs ' + n:>20}" for n in names)
    print(header)
    for name, value in results.items():
        row = f"  {name:32} {value:14.3f}"
        for n in names:
            row += f"  {value / results[n]:20.2f}" if results[n] else f"  {'-':>20}"
        print(row)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--quick", action="store_true", help="a short smoke run (CI)")
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    loop_binary = os.path.join(build, "bench", "connect_loop")
    if not os.access(loop_binary, os.X_OK):
        sys.exit(f"bench: build first: {loop_binary} is missing")
    rounds, latency_n, cpu_n = (2, 5, 50) if args.quick else (7, 20, 1000)

    with tempfile.TemporaryDirectory() as workdir, Services(workdir) as svc:
        echo_port = svc.echo()
        dante = svc.dante()
        far_dante = svc.relay(dante, 10)
        micro = svc.microsocks()
        everyone = [floor(build), floor(build, pipeline=True)] + peers(workdir, build)

        print(f"bench: latency, {latency_n} sequential connects by name x {rounds} rounds, "
              f"dante-server 20 ms away (relay, 10 ms each way)")
        latency = measure(everyone, far_dante, latency_n, rounds, echo_port, loop_binary)
        print_table("1. latency: median time per connect (ms)",
                    {n: v[0] / 1000 for n, v in latency.items()}, ["proxychains4"], "ms")

        print(f"\nbench: CPU, {cpu_n} sequential connects on loopback through microsocks x {rounds} rounds")
        no_pipeline = [c for c in everyone if "pipeline" not in c.name]
        cpu = measure(no_pipeline, micro, cpu_n, rounds, echo_port, loop_binary)
        print_table("2. CPU per connect, client process (µs user+sys)",
                    {n: v[1] * 1e6 for n, v in cpu.items()},
                    ["floor: in-process SOCKS5", "proxychains4"], "µs")
    core = subprocess.run([os.path.join(HERE, "core_cost.sh"), build], capture_output=True, text=True)
    print("\n4. " + (core.stdout.strip() or core.stderr.strip()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
