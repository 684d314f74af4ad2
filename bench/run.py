#!/usr/bin/env python3
"""leakproof against its peers, side by side, in one run.

  bench/run.py [--build DIR] [--quick] [--markdown FILE] [--only SECTION]

Starts on loopback (tests/harness/lptest.py; all stopped at exit): an echo
server, a bulk HTTP sender, dante-server and microsocks (which alone resolve
web.only-proxy.test: private /etc/hosts in a mount namespace), the test
proxy (tests/harness/fault_proxy.py) and bench/tor_proxy.py, a Tor stand-in
that answers RESOLVE, plus relays (bench/delay_relay.py) that put a proxy
20 ms away (10 ms each direction). Then:

  1. latency   sequential connects by name + one echoed byte
               (bench/connect_loop.c) through dante and through the Tor
               stand-in, both 20 ms away; time to connected (the goals) and
               to the echo; vs proxychains4 and torsocks
  2. CPU       user+sys per connect through microsocks on loopback (the same
               command run with no connect is subtracted: start-up is 3.)
  3. start-up  `leakproof true` vs `true` (hyperfine), and the peers
  4. async     bench/async_load: 10,000 concurrent async_connects to the
               test proxy's sink.fault; connects/s, heap bytes per pending
               connect
  5. data path 200 MB through microsocks: curl's own SOCKS vs plain curl
               under leakproof
  6. event loop  Node, 20 concurrent net.connect by name vs 1, through the
               Tor stand-in 20 ms away
  7. core      instructions per handshake (bench/core_cost.sh, valgrind)
  8. supervisor  the seccomp supervisor: a gcc -static connect_loop (also
               with pidfd_getfd refused, through stand-in sockets), the
               default (interposer + supervisor) and --supervise against
               the interposer alone, per connect on loopback; start-up of
               a supervised static `true`
  10. first-byte  time to the first byte back (connect by name, write one
               byte, read it back) through the Tor stand-in 20 ms away: the
               library (bench/first_byte) plain, pipelined and optimistic
               (leakproof::optimistic_stream), the wrapped connect_loop
               (leakproof default, pipelined and optimistic: ?optimistic=1,
               what --tor does), proxychains4 and torsocks
  9. udp       UDP round trips (bench/udp_rtt) to an echo server on
               loopback: through dante with leakproof::udp_association,
               through dante with a plain socket under socksify and under
               leakproof --udp, and direct; medians, CPU per datagram (the client's own), heap
               bytes per open association; and a DNS client's queries
               under the wrapper (sendto, connected), which the
               supervisor's responder answers

Contenders alternate round by round; every figure is the median over rounds
and is printed as a ratio to its comparator, with the goal beside it where
there is one. A peer that is not installed is left out. --quick is a smoke
run for CI (a few iterations, under two minutes).

Exits non-zero only when it cannot run (missing build, a leakproof figure
that could not be measured), never on a slow figure."""
import argparse
import contextlib
import ctypes
import json
import os
import re
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "harness"))
import lptest  # noqa: E402

NAME = lptest.WEB_NAME
KIB = 1024

# Problems that mean the benchmark did not run (exit status 1); peers'
# failures are only reported.
FAILED = []


def note(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- servers

def start_on_free_port(kind, argv_for, attempts=3):
    """A helper server (lptest.spawn: own process group, stopped at exit)."""
    err = None
    for _ in range(attempts):
        port = lptest.free_port()
        proc = lptest.spawn(argv_for(port), f"{kind}.log")
        try:
            lptest.wait_port(port, proc=proc)
            return port
        except RuntimeError as e:
            err = e
            proc.kill()
    raise RuntimeError(f"{kind} did not start: {err}")


def echo_server():
    return start_on_free_port("echo", lambda p: [sys.executable, os.path.join(HERE, "echo_server.py"), str(p)])


def bulk_server():
    return start_on_free_port("bulk", lambda p: [sys.executable, os.path.join(HERE, "bulk_server.py"), str(p)])


def relay(target_port, delay_ms):
    script = os.path.join(HERE, "delay_relay.py")
    return start_on_free_port(f"relay-{target_port}",
                              lambda p: [sys.executable, script, str(p), str(target_port), str(delay_ms)])


def tor_stand_in(timeout=10.0):
    """bench/tor_proxy.py (the fault proxy resolving to a non-loopback address)."""
    ports_file = os.path.join(lptest.TMP, "tor-ports.json")
    proc = lptest.spawn([sys.executable, os.path.join(HERE, "tor_proxy.py"), "--ports-file", ports_file],
                        "tor_proxy.log")
    end = time.time() + timeout
    while not os.path.exists(ports_file):
        if proc.poll() is not None or time.time() > end:
            raise RuntimeError("bench/tor_proxy.py did not start")
        time.sleep(0.02)
    with open(ports_file) as f:
        return int(json.load(f)["fault"].rsplit(":", 1)[1])


# ---------------------------------------------------------------- contenders

class Wrap:
    """A way to run a command through a SOCKS proxy at a port: a prefix and
    environment variables (empty prefix: the command does SOCKS itself)."""

    def __init__(self, name, prefix_for, env_for=None, needs_resolve=False, ours=False):
        self.name, self.prefix_for, self.env_for = name, prefix_for, env_for
        self.needs_resolve = needs_resolve  # torsocks: the proxy must answer Tor's RESOLVE
        self.ours = ours                    # a failure here means the bench did not run

    def argv(self, port, command):
        return self.prefix_for(port) + command

    def env(self, port):
        return dict(os.environ, **(self.env_for(port) if self.env_for else {}))


def wrappers(workdir, build):
    """leakproof and the installed peers."""
    def proxychains(port):
        conf = lptest.write(os.path.join(workdir, f"proxychains-{port}.conf"),
                            f"strict_chain\nproxy_dns\nremote_dns_subnet 224\nquiet_mode\n"
                            f"tcp_read_time_out 15000\ntcp_connect_time_out 8000\n"
                            f"[ProxyList]\nsocks5 127.0.0.1 {port}\n")
        return ["proxychains4", "-q", "-f", conf]

    def socksify_env(port):
        conf = lptest.write(os.path.join(workdir, f"socks-{port}.conf"),
                            f"resolveprotocol: fake\nroute {{\n from: 0.0.0.0/0 to: 0.0.0.0/0 "
                            f"via: 127.0.0.1 port = {port}\n proxyprotocol: socks_v5\n method: none\n}}\n")
        return {"SOCKS_CONF": conf}

    def torsocks_env(port):
        # The stand-in resolves to a non-loopback address, so torsocks's
        # CONNECT goes through the proxy (AllowOutboundLocalhost not needed).
        conf = lptest.write(os.path.join(workdir, f"torsocks-{port}.conf"),
                            f"TorAddress 127.0.0.1\nTorPort {port}\n")
        return {"TORSOCKS_CONF_FILE": conf}

    wrapper = os.path.join(build, "preload", "leakproof")
    found = [
        Wrap("leakproof", lambda p: [wrapper, "-q", "-p", f"socks5h://127.0.0.1:{p}", "--"], ours=True),
        Wrap("leakproof pipelined", lambda p: [wrapper, "-q", "-p", f"socks5h://127.0.0.1:{p}?pipeline=1", "--"],
             ours=True),
    ]
    for name, make in (("proxychains4", lambda: Wrap("proxychains4", proxychains)),
                       ("socksify", lambda: Wrap("socksify", lambda p: ["socksify"], socksify_env)),
                       ("torsocks", lambda: Wrap("torsocks", lambda p: ["torsocks"], torsocks_env,
                                                 needs_resolve=True))):
        if shutil.which(name):
            found.append(make())
        else:
            note(f"bench: {name} is not installed; left out")
    return found


def by_name(ws, *names):
    return [w for w in ws if w.name in names]


# ---------------------------------------------------------------- measuring

PR_SET_CHILD_SUBREAPER = 36


def become_subreaper():
    """leakproof's supervisor is a detached grandchild of the command: as the
    subreaper we adopt it, wait for it and so count its CPU too."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        note("bench: cannot become a subreaper: the supervisor's CPU is not counted")


def our_children():
    me, kids = str(os.getpid()), set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                ppid = f.read().rsplit(")", 1)[1].split()[1]
        except (OSError, IndexError):
            continue
        if ppid == me:
            kids.add(int(pid))
    return kids


def reap_adopted(known):
    """Waits for the processes adopted since `known` (e.g. a supervisor
    finishing after its command), adding their CPU to RUSAGE_CHILDREN."""
    for pid in our_children() - known:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass


def run(argv, env=None, timeout=600):
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError((out.stderr.strip() or out.stdout.strip() or f"exit {out.returncode}")[-300:])
    return out.stdout


def alternate(entries, rounds, what):
    """entries: [(name, fn, ours)]; fn() -> sample. Round-robin over rounds;
    returns {name: [samples]}, leaving out what never succeeded."""
    samples = {name: [] for name, _, _ in entries}
    for _ in range(rounds):
        for name, fn, ours in entries:
            try:
                samples[name].append(fn())
            except (RuntimeError, OSError, ValueError, subprocess.SubprocessError) as e:
                note(f"  {what}: {name}: failed: {str(e)[:300]}")
                if ours:
                    FAILED.append(f"{what}: {name}")
    return {n: s for n, s in samples.items() if s}


def med(xs):
    return statistics.median(xs)


class Loop:
    """connect_loop (or the floor client) through a proxy:
    (median µs per round, median µs up to connect() returning, CPU s per connect)."""

    def __init__(self, build, echo_port):
        self.loop = os.path.join(build, "bench", "connect_loop")
        self.floor = os.path.join(build, "bench", "floor_client")
        self.echo_port = echo_port

    def _timed(self, argv, env, connects):
        known = our_children()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        out = run(argv, env)
        reap_adopted(known)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return out, cpu / connects

    def _sample(self, argv_for, env, connects, marginal):
        """(median µs per round, median µs to connected, CPU s per connect).
        `marginal`: the CPU of the same command making no connect (start-up
        and exit, which section 3 measures) is subtracted, so that the
        figure is what each connect costs."""
        out, cpu = self._timed(argv_for(connects), env, connects)
        if marginal:
            _, idle = self._timed(argv_for(0), env, 1)
            cpu -= idle / connects
        median, _p90, connect = map(float, out.split()[-3:])
        return median, connect, cpu

    def wrapped(self, w, port, connects, marginal=False):
        argv_for = lambda n: w.argv(port, [self.loop, str(n), NAME, str(self.echo_port)])  # noqa: E731
        return lambda: self._sample(argv_for, w.env(port), connects, marginal)

    def command(self, prefix, args_after_n, env, connects, marginal=False):
        """connect_loop (or a static build of it, prefix[-1]) under `prefix`."""
        argv_for = lambda n: prefix + [str(n)] + args_after_n  # noqa: E731
        return lambda: self._sample(argv_for, env, connects, marginal)

    def floor_client(self, port, connects, pipeline, marginal=False, deadline=False):
        argv_for = lambda n: ([self.floor, str(n), str(port), NAME, str(self.echo_port)]  # noqa: E731
                              + (["pipeline"] if pipeline else []) + (["deadline"] if deadline else []))
        return lambda: self._sample(argv_for, None, connects, marginal)


def table(title, header, rows):
    print(f"\n{title}")
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    for r in [header] + rows:
        print("  " + "  ".join(str(c).ljust(widths[0]) if i == 0 else str(c).rjust(widths[i])
                               for i, c in enumerate(r)))


def ratio(a, b):
    return f"{a / b:.2f}x" if a is not None and b else "-"


def goal(value, limit, fmt="{:.2f}"):
    if value is None:
        return "not measured"
    return (fmt.format(value)) + (" (met)" if value <= limit else " (NOT met)")


# ---------------------------------------------------------------- figures

def latency(args, build, ws, svc, summary):
    loop = Loop(build, svc["echo"])
    r, n_lat = args.rounds, args.latency_n
    floors = [("floor: in-process SOCKS5", False), ("floor: in-process SOCKS5 pipelined", True)]

    lat, lat_echo = {}, {}
    for server, port, with_resolve in (("dante", svc["far_dante"], False), ("Tor stand-in", svc["far_tor"], True)):
        entries = [(f, loop.floor_client(port, n_lat, p), False) for f, p in floors]
        entries += [(w.name, loop.wrapped(w, port, n_lat), w.ours) for w in ws
                    if with_resolve or not w.needs_resolve]
        print(f"\nbench: latency, {n_lat} sequential connects by name x {r} rounds, "
              f"{server} 20 ms away (relay, 10 ms each way)", flush=True)
        got = alternate(entries, r, f"latency/{server}")
        ms = {n: med([s[1] for s in v]) / 1000 for n, v in got.items()}
        echo = {n: med([s[0] for s in v]) / 1000 for n, v in got.items()}
        lat[server], lat_echo[server] = ms, echo
        pc, ts = ms.get("proxychains4"), ms.get("torsocks")
        epc, ets = echo.get("proxychains4"), echo.get("torsocks")
        rows = [[n, f"{v:.1f}", ratio(v, pc), ratio(v, ts) if with_resolve else "",
                 f"{echo[n]:.1f}", ratio(echo[n], epc), ratio(echo[n], ets) if with_resolve else ""]
                for n, v in ms.items()]
        vs_ts = "vs torsocks" if with_resolve else ""
        table(f"1. latency through {server} 20 ms away: median time to connected (lookup + connect), "
              f"and to the first echoed byte",
              ["contender", "connect ms", "vs proxychains4", vs_ts, "+echo ms", "vs proxychains4", vs_ts], rows)
    print("  goals apply to the connect time (with the echo's round trip added, even the pipelined\n"
          "  floor is 2/3 of a two-round-trip handshake)")
    for server, ms in lat.items():
        pc, ts = ms.get("proxychains4"), ms.get("torsocks")
        lp, lpp = ms.get("leakproof"), ms.get("leakproof pipelined")
        print(f"  goals ({server}): pipelined/proxychains4 <= 0.65: "
              f"{goal(lpp / pc if lpp and pc else None, 0.65)}; default/proxychains4 <= 1.00: "
              f"{goal(lp / pc if lp and pc else None, 1.0)}"
              + (f"; pipelined/torsocks <= 0.35: {goal(lpp / ts if lpp and ts else None, 0.35)}"
                 if server == "Tor stand-in" else ""))
    summary["latency"], summary["latency_echo"] = lat, lat_echo


@contextlib.contextmanager
def on_one_cpu(cpu=1):
    """Pins this process and the servers it started (every thread; what
    they start inherits it) to one CPU, and unpins them after."""
    everyone = os.sched_getaffinity(0)
    tasks = []
    for pid in our_children() | {os.getpid()}:
        with contextlib.suppress(OSError):
            tasks += [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    for t in tasks:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(t, {cpu})
    try:
        yield
    finally:
        for t in tasks:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(t, everyone)


# The floor client bounding its waits as leakproof does (--timeout): a
# non-blocking connect and a poll per answer. Shown beside the floor, which
# stays the goal's comparator.
FLOOR_DEADLINE = "floor with a deadline (non-blocking + poll)"


def cpu(args, build, ws, svc, summary):
    """2. CPU per connect, twice: as the scheduler places the client, the
    proxy and the supervisor on two CPUs, and with all of them on one CPU
    (where a wake-up of another process is a context switch, and which
    varies much less from run to run)."""
    loop = Loop(build, svc["echo"])
    n, floor = args.cpu_n, "floor: in-process SOCKS5"
    entries = [(floor, loop.floor_client(svc["microsocks"], n, False, marginal=True), False),
               (FLOOR_DEADLINE, loop.floor_client(svc["microsocks"], n, False, marginal=True, deadline=True),
                False)]
    entries += [(w.name, loop.wrapped(w, svc["microsocks"], n, marginal=True), w.ours) for w in ws
                if not w.needs_resolve and "pipelined" not in w.name]
    us = {}
    for where in ("two CPUs", "one CPU"):
        print(f"\nbench: CPU, {n} sequential connects on loopback through microsocks x {args.rounds} rounds, "
              f"{where} (each run's start-up and exit subtracted: a run of the same command with no connect)",
              flush=True)
        with on_one_cpu() if where == "one CPU" else contextlib.nullcontext():
            got = alternate(entries, args.rounds, f"cpu/{where}")
        us[where] = {name: med([s[2] for s in v]) * 1e6 for name, v in got.items()}
    rows = []
    for name in us["two CPUs"]:
        row = [name]
        for where in us:
            v, fl, pc = us[where].get(name), us[where].get(floor), us[where].get("proxychains4")
            row += [f"{v:.1f}" if v else "-", ratio(v, fl), ratio(v, pc)]
        rows.append(row)
    table("2. CPU per connect, client process and leakproof's supervisor (µs user+sys)",
          ["contender", "µs, 2 CPUs", "vs floor", "vs proxychains4", "µs, 1 CPU", "vs floor", "vs proxychains4"],
          rows)
    for where, fig in us.items():
        lp, fl, pc = fig.get("leakproof"), fig.get(floor), fig.get("proxychains4")
        print(f"  goals ({where}): leakproof/floor <= 1.10: {goal(lp / fl if lp and fl else None, 1.10)}; "
              f"leakproof/proxychains4 <= 0.65: {goal(lp / pc if lp and pc else None, 0.65)}; "
              f"for reference, leakproof/{FLOOR_DEADLINE}: {ratio(lp, fig.get(FLOOR_DEADLINE))}")
    summary["cpu"] = us


ENV_MODE = "env + leakproof --env variables true"
MINIMAL = "a minimal static program (one exec)"
LAUNCHER = "static launcher: seccomp filter + exec true"
FILTER_EXEC_C = r"""
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(int argc, char** argv) {
    struct sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    struct sock_fprog prog = {1, &allow};
    if (argc < 2 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0)
        return 1;
    execv(argv[1], argv + 1);
    return 127;
}
"""


def startup(args, build, ws, svc, summary):
    if not shutil.which("hyperfine"):
        note("bench: hyperfine is not installed; start-up left out")
        return
    true = shutil.which("true")
    port = svc["microsocks"]
    commands = [("true", [true], {})]
    env = {}
    for w in ws:
        if w.name == "leakproof pipelined":
            continue
        prefix = [p for p in w.prefix_for(port) if p != "--"]
        commands.append((f"{w.name} true", prefix + [true], {}))
        if w.env_for:
            env.update(w.env_for(port))
    # The interposer alone, as after `eval "$(leakproof --env)"` (no
    # supervisor): `env` sets its variables, and plain `env true` is that
    # row's baseline.
    exports = run([os.path.join(build, "preload", "leakproof"), "--env", "-p",
                   f"socks5h://127.0.0.1:{port}"])
    assignments = [shlex.split(line[len("export "):])[0] for line in exports.splitlines()
                   if line.startswith("export ")]
    commands.append(("env true", ["env", true], {}))
    commands.append((ENV_MODE, ["env"] + assignments + [true], {}))
    # What the design costs at the least: a wrapper adds its own exec, and
    # leakproof's a seccomp filter too. A static program that only installs
    # an allow-all filter and execs the command bounds leakproof's row from
    # below; a static program that only exits is the price of one exec.
    launcher = static_build(lptest.TMP, "filter_exec", code=FILTER_EXEC_C)
    if launcher:
        commands.append((LAUNCHER, [launcher, true], {}))
    minimal = static_build(lptest.TMP, "minimal_static", code="int main(void) { return 0; }\n")
    if minimal:
        commands.append((MINIMAL, [minimal], {}))
    # Every peer's variable is set for every command; each is read only by
    # its own tool.
    hf_env = dict(os.environ, **env)
    out_json = os.path.join(lptest.TMP, "hyperfine.json")
    medians = {n: [] for n, _, _ in commands}
    print(f"\nbench: start-up, hyperfine {args.hf_runs} runs x {args.hf_rounds} rounds", flush=True)
    for _ in range(args.hf_rounds):
        argv = ["hyperfine", "-N", "--style", "none", "--warmup", str(args.hf_warmup), "--runs",
                str(args.hf_runs), "--export-json", out_json]
        for name, cmd, _ in commands:
            argv += ["-n", name, " ".join(shlex.quote(c) for c in cmd)]
        try:
            run(argv, hf_env)
        except (RuntimeError, subprocess.SubprocessError) as e:
            note(f"  start-up: hyperfine failed: {str(e)[:300]}")
            FAILED.append("start-up")
            return
        with open(out_json) as f:
            for res in json.load(f)["results"]:
                medians[res["command"]].append(res["median"] * 1000)
    ms = {n: med(v) for n, v in medians.items() if v}
    base = {n: ms["env true" if n.startswith("env") else "true"] for n in ms}
    rows = [[n, f"{v:.2f}", f"{v - base[n]:+.2f}" if n != MINIMAL else "", ratio(v, base[n]) if n != MINIMAL else ""]
            for n, v in ms.items()]
    table("3. start-up: median wall time (hyperfine -N)", ["command", "ms", "added ms", "vs its baseline"],
          rows)
    print("  (the env rows are measured against `env true`; the static launcher is the least a wrapper\n"
          "  with a seccomp filter adds, and the minimal static program what one exec takes here)")
    added = ms["leakproof true"] - base["leakproof true"] if "leakproof true" in ms else None
    print(f"  goal: leakproof adds <= 0.3 ms: {goal(added, 0.3, '{:.2f} ms')}")
    summary["startup"] = {n: v - base[n] for n, v in ms.items() if n not in ("env true", MINIMAL, LAUNCHER)}
    if LAUNCHER in ms:
        summary["startup_launcher"] = ms[LAUNCHER] - base[LAUNCHER]
    if MINIMAL in ms:
        summary["startup_exec"] = ms[MINIMAL]


def async_api(args, build, svc, summary):
    binary = os.path.join(build, "bench", "async_load")
    url = f"socks5h://127.0.0.1:{svc['fault']}"
    n = args.async_n
    print(f"\nbench: async API, {n} concurrent async_connects to sink.fault x {args.async_rounds} rounds",
          flush=True)

    def go():
        out = run([binary, url, "sink.fault", "80", str(n)])
        rate = float(re.search(r"= (\d+) connects/s", out).group(1))
        m = re.search(r"(\d+) heap bytes per pending connect \(leakproof state: (\d+) bytes\)", out)
        return rate, int(m.group(1)), int(m.group(2))

    got = alternate([("async_load", go, True)], args.async_rounds, "async").get("async_load")
    if not got:
        return
    rate, per, state = med([g[0] for g in got]), med([g[1] for g in got]), got[0][2]
    table(f"4. async API: {n} concurrent leakproof::async_connect, one io_context thread",
          ["figure", "value", "vs goal"],
          [["connects/s", f"{rate:.0f}", ""],
           ["heap bytes per pending connect", f"{per:.0f}", f"{per / KIB:.2f}x of 1 KiB"],
           ["sizeof(detail::socks_state)", f"{state}", f"{state / KIB:.2f}x of 1 KiB"]])
    print(f"  goal: <= 1 KiB per pending connect: {goal(per / KIB, 1.0, '{:.2f} KiB')}")
    summary["async"] = {"rate": rate, "per": per, "state": state}


def data_path(args, build, ws, svc, summary):
    if not shutil.which("curl"):
        note("bench: curl is not installed; data path left out")
        return
    size = args.bulk_mb * 1000 * 1000
    port = svc["microsocks"]
    url = f"http://{NAME}:{svc['bulk']}/{size}"
    curl = ["curl", "-s", "-S", "-o", "/dev/null", "-w", "%{size_download} %{time_total}"]

    def download(argv, env):
        def go():
            got, seconds = run(argv, env).split()
            if int(got) != size:
                raise RuntimeError(f"downloaded {got} bytes of {size}")
            return float(seconds)
        return go

    entries = [("curl --socks5-hostname (no wrapper)",
                download(curl + ["--socks5-hostname", f"127.0.0.1:{port}", url], None), False)]
    for w in ws:
        if w.needs_resolve or "pipelined" in w.name:
            continue
        entries.append((f"{w.name} curl", download(w.argv(port, curl + [url]), w.env(port)), w.ours))
    print(f"\nbench: data path, {args.bulk_mb} MB through microsocks x {args.rounds} rounds", flush=True)
    got = alternate(entries, args.rounds, "data path")
    secs = {n: med(v) for n, v in got.items()}
    base = secs.get(entries[0][0])
    table(f"5. data path: {args.bulk_mb} MB download through microsocks (curl's time_total)",
          ["client", "MB/s", "time vs curl's own SOCKS"],
          [[n, f"{args.bulk_mb / v:.0f}", ratio(v, base)] for n, v in secs.items()])
    lp = secs.get("leakproof curl")
    print(f"  goal: leakproof ~ 1.00x: {goal(lp / base if lp and base else None, 1.05)}")
    summary["data"] = {n: v / base for n, v in secs.items()} if base else {}


def event_loop(args, build, ws, svc, summary):
    if not shutil.which("node"):
        note("bench: node is not installed; event loops left out")
        return
    script = os.path.join(HERE, "node_connects.js")
    port = svc["far_tor"]

    def go(w, n):
        return lambda: float(run(w.argv(port, ["node", script, str(n), NAME, str(svc["echo"])]), w.env(port)))

    chosen = by_name(ws, "leakproof", "leakproof pipelined", "proxychains4", "torsocks")
    entries = []
    for w in chosen:
        entries += [(f"{w.name}/1", go(w, 1), w.ours), (f"{w.name}/{args.node_n}", go(w, args.node_n), w.ours)]
    print(f"\nbench: event loop, node {args.node_n} concurrent net.connect vs 1, Tor stand-in 20 ms away "
          f"x {args.node_rounds} rounds", flush=True)
    got = alternate(entries, args.node_rounds, "event loop")
    rows, res = [], {}
    for w in chosen:
        one, many = got.get(f"{w.name}/1"), got.get(f"{w.name}/{args.node_n}")
        if one and many:
            res[w.name] = med(many) / med(one)
            rows.append([w.name, f"{med(one):.0f}", f"{med(many):.0f}", ratio(med(many), med(one))])
    table(f"6. event loop: Node, {args.node_n} concurrent connects by name vs 1 (1.0x = fully overlapped, "
          f"{args.node_n}x = serialized)", ["wrapper", "1 (ms)", f"{args.node_n} (ms)", f"{args.node_n} vs 1"], rows)
    summary["node"] = res


def core(build, summary):
    if not shutil.which("valgrind"):
        note("bench: valgrind is not installed; core cost left out")
        return
    out = subprocess.run([os.path.join(HERE, "core_cost.sh"), build], capture_output=True, text=True)
    line = out.stdout.strip() or out.stderr.strip()
    print("\n7. " + line)
    m = re.search(r"(\d+) instructions per SOCKS5 handshake.*allocations per handshake: (\d+)", line)
    if m:
        summary["core"] = (int(m.group(1)), int(m.group(2)))
    else:
        FAILED.append("core cost")


def udp(args, build, svc, summary):
    binary = os.path.join(build, "bench", "udp_rtt")
    if not os.access(binary, os.X_OK):
        FAILED.append("udp: bench/udp_rtt is not built")
        return
    # The echo runs in a process of its own (not a thread here, under the GIL).
    echo_port = lptest.free_port()
    echo = lptest.spawn([binary, "echo", str(echo_port)], "udp-echo.log")
    time.sleep(0.2)
    try:
        udp_measure(args, binary, echo_port, svc, summary)
    finally:
        lptest.stop(echo)  # not left to reap_adopted, which would wait for it forever


def udp_measure(args, binary, echo_port, svc, summary):
    dante = f"socks5h://127.0.0.1:{svc['dante']}"
    n = args.udp_n

    def rtt(argv, env=None):
        def go():
            median, p90, cpu_us = map(float, run(argv, env).split()[-3:])
            return median, p90, cpu_us
        return go

    entries = [("direct (no proxy)", rtt([binary, "direct", "127.0.0.1", str(echo_port), str(n)]), False),
               ("direct, Asio's event loop (no proxy)",
                rtt([binary, "asio-direct", "127.0.0.1", str(echo_port), str(n)]), False),
               ("leakproof udp_association via dante",
                rtt([binary, "library", dante, "127.0.0.1", str(echo_port), str(n)]), True)]
    if shutil.which("socksify"):
        conf = lptest.write(os.path.join(lptest.TMP, "socks-udp.conf"),
                            f"route {{\n from: 0.0.0.0/0 to: 0.0.0.0/0 via: 127.0.0.1 port = {svc['dante']}\n"
                            f" proxyprotocol: socks_v5\n command: udpassociate\n method: none\n}}\n")
        entries.append(("socksify (dante-client) via dante",
                        rtt(["socksify", binary, "direct", "127.0.0.1", str(echo_port), str(n)],
                            dict(os.environ, SOCKS_CONF=conf)), False))
    else:
        note("bench: socksify is not installed; left out of udp")
    # A DNS client's queries under the wrapper, answered by the supervisor's
    # responder (a sendto is stopped by the filter each time; a connected
    # socket's send is not), against the echo round trip above.
    wrapper = [os.path.join(os.path.dirname(os.path.dirname(binary)), "preload", "leakproof"),
               "-q", "-p", dante, "--"]
    entries.insert(3, ("leakproof --udp via dante (the interposer relays a plain socket)",
                       rtt(wrapper[:-1] + ["--udp", "--proxy-loopback", "--", binary, "direct",
                                           "127.0.0.1", str(echo_port), str(n)]), False))
    for how in ("sendto", "connected"):
        entries.append((f"DNS query ({how}) under the wrapper: the responder",
                        rtt(wrapper + [binary, "dns", "127.0.0.1", str(n), how]), False))
    print(f"\nbench: udp, {n} sequential round trips x {args.rounds} rounds", flush=True)
    got = alternate(entries, args.rounds, "udp")
    figures = {name: (med([g[0] for g in v]), med([g[1] for g in v]), med([g[2] for g in v]))
               for name, v in got.items()}
    lib = figures.get("leakproof udp_association via dante")
    sock = figures.get("socksify (dante-client) via dante")
    table(f"9. udp: {n} round trips of a 17-byte datagram, one at a time, echo on loopback",
          ["client", "median µs", "p90 µs", "CPU µs/datagram", "median vs leakproof"],
          [[name, f"{f[0]:.1f}", f"{f[1]:.1f}", f"{f[2]:.1f}", ratio(f[0], lib[0] if lib else None)]
           for name, f in figures.items()])
    heap = None
    try:
        out = run([binary, "heap", dante, str(args.udp_k)])
        heap = int(re.search(r"(\d+) heap bytes per open association", out).group(1))
        print(f"  heap bytes per open association ({args.udp_k} open at once): {heap}")
    except (RuntimeError, AttributeError) as e:
        note(f"  udp heap: failed: {e}")
        FAILED.append("udp: heap")
    summary["udp"] = {"figures": figures, "heap": heap, "socksify": sock is not None}


def first_byte(args, build, ws, svc, summary):
    port, n = svc["far_tor"], args.latency_n
    client = os.path.join(build, "bench", "first_byte")
    url = f"socks5h://127.0.0.1:{port}"

    def library(option, mode):
        return lambda: float(run([client, url + option, NAME, str(svc["echo"]), str(n), mode]))

    entries = [("library", library("", "plain"), True),
               ("library pipelined", library("?pipeline=1", "plain"), True),
               ("library optimistic", library("?optimistic=1", "optimistic"), True)]
    loop = Loop(build, svc["echo"])
    wrapper = os.path.join(build, "preload", "leakproof")
    optimistic = Wrap("leakproof optimistic",
                      lambda p: [wrapper, "-q", "-p", f"socks5h://127.0.0.1:{p}?optimistic=1", "--"],
                      ours=True)
    wrapped = [w for w in ws if w.name in ("leakproof", "leakproof pipelined", "proxychains4", "torsocks")]
    entries += [(w.name, (lambda f: lambda: f()[0] / 1000)(loop.wrapped(w, port, n)), w.ours)
                for w in wrapped + [optimistic]]
    print(f"\nbench: first byte back, {n} sequential exchanges x {args.rounds} rounds, "
          f"Tor stand-in 20 ms away", flush=True)
    got = alternate(entries, args.rounds, "first-byte")
    ms = {name: med(v) for name, v in got.items()}
    pc, ts = ms.get("proxychains4"), ms.get("torsocks")
    table("10. first byte back through the Tor stand-in 20 ms away (median ms)",
          ["contender", "ms", "vs proxychains4", "vs torsocks"],
          [[name, f"{v:.1f}", ratio(v, pc), ratio(v, ts)] for name, v in ms.items()])
    for name in ("library optimistic", "leakproof optimistic"):
        opt = ms.get(name)
        print(f"  goals ({name}): /proxychains4 <= 0.50: "
              f"{goal(opt / pc if opt and pc else None, 0.5)}; "
              f"/torsocks <= 0.30: {goal(opt / ts if opt and ts else None, 0.3)}")
    summary["first_byte"] = ms


def static_build(workdir, name, source=None, code=None):
    """A gcc -static binary (None if the toolchain cannot make one)."""
    out = os.path.join(workdir, name)
    if code is not None:
        source = lptest.write(out + ".c", code)
    r = subprocess.run(["cc", "-static", "-O2", "-w", "-o", out, source], capture_output=True, text=True)
    if r.returncode != 0:
        note(f"bench: cc -static {os.path.basename(source)} failed: {r.stderr.strip()[-200:]}")
        return None
    return out


def interposer_alone_env(build, port, extra):
    """The environment `leakproof --env` prints: the interposer without the
    supervisor (the baseline the supervisor is measured against)."""
    wrapper = os.path.join(build, "preload", "leakproof")
    out = run([wrapper, "-q", "-p", f"socks5h://127.0.0.1:{port}"] + extra + ["--env"])
    env = dict(os.environ)
    for line in out.splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        env[key] = shlex.split(value)[0] if value else ""
    return env


def supervisor(args, build, svc, summary):
    """8. The seccomp supervisor: per-connect cost of a supervised
    static program, of --supervise and of the default (interposer with the
    supervisor below) against the interposer alone; start-up of a
    supervised static `true`."""
    workdir = lptest.TMP
    wrapper = os.path.join(build, "preload", "leakproof")
    port = svc["microsocks"]
    loop = Loop(build, svc["echo"])
    static_loop = static_build(workdir, "connect_loop_static", os.path.join(HERE, "connect_loop.c"))
    prefix = [wrapper, "-q", "-p", f"socks5h://127.0.0.1:{port}"]
    n = args.cpu_n
    restrict = os.path.join(workdir, "restrict")
    if subprocess.run(["cc", "-O2", "-o", restrict, os.path.join(HERE, "..", "tests", "preload", "restrict",
                                                                 "restrict.c")]).returncode != 0:
        note("bench: cannot build tests/preload/restrict/restrict.c: no stand-in row")
        restrict = None

    def go(prefix, args_after_n, env=None):
        return loop.command(prefix, args_after_n, env or dict(os.environ), n, marginal=True)

    summary["supervisor"] = {}
    # By IP: the connect alone (through the proxy: --proxy-loopback). By
    # name: plus the lookup, which a static libc makes as DNS traffic (to
    # the supervisor's responder) where the interposer answers in-process.
    for what, host, extra in (("by IP", "127.0.0.1", ["--proxy-loopback"]), ("by name", NAME, [])):
        after_n = [host, str(svc["echo"])]
        env = interposer_alone_env(build, port, extra)
        entries = [("interposer alone (--env)", go([loop.loop], after_n, env), True),
                   ("interposer + supervisor (default)", go(prefix + extra + ["--", loop.loop], after_n), True),
                   ("supervisor alone (--supervise)",
                    go(prefix + extra + ["--supervise", "--", loop.loop], after_n), True)]
        if static_loop:
            entries.append(("static program, supervised", go(prefix + extra + ["--", static_loop], after_n), True))
        if static_loop and restrict:
            # pidfd_getfd refused as in a container: sockets of the supervisor's own stand in.
            entries.append(("static program, stand-in sockets (no pidfd_getfd)",
                            go([restrict, "getfd-eperm", "--"] + prefix + extra + ["--", static_loop],
                               after_n), True))
        print(f"\nbench: supervisor, {n} sequential connects {what} on loopback through microsocks "
              f"x {args.rounds} rounds", flush=True)
        got = alternate(entries, args.rounds, f"supervisor {what}")
        fig = {name: (med([s[0] for s in v]), med([s[1] for s in v]), med([s[2] for s in v]) * 1e6)
               for name, v in got.items()}
        base = fig.get("interposer alone (--env)")
        rows = [[name, f"{r:.0f}", f"{c:.0f}", f"{cpu:.0f}", ratio(r, base[0] if base else None),
                 ratio(cpu, base[2] if base else None)] for name, (r, c, cpu) in fig.items()]
        table(f"8. supervisor: per connect {what} (+ 1-byte echo), loopback",
              ["contender", "round µs", "connect µs", "CPU µs", "round vs interposer", "CPU vs interposer"],
              rows)
        st = fig.get("static program, supervised")
        print(f"  goal: static supervised / interposer alone <= 1.5x (round, {what}): "
              f"{goal(st[0] / base[0] if st and base else None, 1.5)}")
        summary["supervisor"][what] = fig

    static_true = static_build(workdir, "true_static", code="int main(void) { return 0; }\n")
    if not shutil.which("hyperfine") or not static_true:
        return
    true = shutil.which("true")
    commands = [("static true", [static_true]), ("leakproof static true (supervised)", prefix + ["--", static_true]),
                ("leakproof true (default)", prefix + ["--", true])]
    out_json = os.path.join(workdir, "hyperfine-supervisor.json")
    hf = ["hyperfine", "-N", "--style", "none", "--warmup", str(args.hf_warmup), "--runs",
          str(args.hf_runs * args.hf_rounds), "--export-json", out_json]
    for name, cmd in commands:
        hf += ["-n", name, " ".join(shlex.quote(c) for c in cmd)]
    try:
        run(hf)
    except (RuntimeError, subprocess.SubprocessError) as e:
        note(f"  supervisor start-up: hyperfine failed: {str(e)[:300]}")
        FAILED.append("supervisor start-up")
        return
    with open(out_json) as f:
        ms = {res["command"]: res["median"] * 1000 for res in json.load(f)["results"]}
    table("8b. start-up of a supervised static `true`: median wall time (hyperfine -N)",
          ["command", "ms", "added ms"], [[k, f"{v:.2f}", f"{v - ms['static true']:+.2f}"] for k, v in ms.items()])
    summary["supervisor_startup"] = ms["leakproof static true (supervised)"] - ms["static true"]


# ---------------------------------------------------------------- summary

def markdown(summary, args):
    lines = ["| figure | leakproof | comparator | goal |", "|---|---|---|---|"]

    def row(*c):
        lines.append("| " + " | ".join(c) + " |")

    for server in ("dante", "Tor stand-in"):
        for key, what in (("latency", "connect"), ("latency_echo", "connect + 1-byte echo")):
            ms = summary.get(key, {}).get(server, {})
            pc, ts = ms.get("proxychains4"), ms.get("torsocks")
            for n, g in (("leakproof", "<= 1.00x proxychains4"),
                         ("leakproof pipelined", "<= 0.65x proxychains4" + (", <= 0.35x torsocks" if ts else ""))):
                if n in ms:
                    comp = f"{ratio(ms[n], pc)} proxychains4 ({pc:.1f} ms)" if pc else "-"
                    if ts:
                        comp += f", {ratio(ms[n], ts)} torsocks ({ts:.1f} ms)"
                    row(f"{what}, {server} 20 ms away, {n}", f"{ms[n]:.1f} ms", comp,
                        g if key == "latency" else "")
    for where, us in summary.get("cpu", {}).items():
        if "leakproof" in us:
            fl, pc = us.get("floor: in-process SOCKS5"), us.get("proxychains4")
            fd = us.get(FLOOR_DEADLINE)
            row(f"CPU per connect (microsocks, loopback, {where}; start-up subtracted)", f"{us['leakproof']:.0f} µs",
                f"{ratio(us['leakproof'], fl)} floor, {ratio(us['leakproof'], pc)} proxychains4, "
                f"{ratio(us['leakproof'], fd)} the floor with a deadline",
                "<= 1.10x floor, <= 0.65x proxychains4")
    st = summary.get("startup", {})
    if "leakproof true" in st:
        peers = ", ".join(f"{n.replace(' true', '')} {v:+.2f} ms" for n, v in st.items()
                          if n not in ("true", "leakproof true", ENV_MODE))
        if ENV_MODE in st:
            peers = f"interposer alone (--env mode) {st[ENV_MODE]:+.2f} ms; " + peers
        if "startup_launcher" in summary:
            peers += f"; a static launcher that only installs a seccomp filter and execs adds " \
                     f"{summary['startup_launcher']:+.2f} ms"
        if "startup_exec" in summary:
            peers += f"; one exec of a minimal static program takes {summary['startup_exec']:.2f} ms"
        row("start-up added to `true`", f"{st['leakproof true']:+.2f} ms", peers, "<= 0.3 ms")
    a = summary.get("async")
    if a:
        row(f"async: {args.async_n} concurrent connects", f"{a['rate']:.0f} connects/s", "", "")
        row("async: heap bytes per pending connect", f"{a['per']:.0f} B",
            f"{a['per'] / KIB:.2f}x of 1 KiB (socks_state {a['state']} B)", "<= 1 KiB")
    d = summary.get("data", {})
    if "leakproof curl" in d:
        peers = ", ".join(f"{n.replace(' curl', '')} {v:.2f}x" for n, v in d.items()
                          if n.endswith(" curl") and n != "leakproof curl")
        row(f"data path, {args.bulk_mb} MB via microsocks, time vs curl's own SOCKS",
            f"{d['leakproof curl']:.2f}x", peers, "~1.00x")
    nd = summary.get("node", {})
    if nd:
        row(f"Node, {args.node_n} concurrent connects vs 1 (20 ms away)",
            ", ".join(f"{n} {v:.1f}x" for n, v in nd.items() if n.startswith("leakproof")),
            ", ".join(f"{n} {v:.1f}x" for n, v in nd.items() if not n.startswith("leakproof")),
            "1.0x = overlapped")
    for what, sv in summary.get("supervisor", {}).items():
        base, st = sv.get("interposer alone (--env)"), sv.get("static program, supervised")
        if base and st:
            row(f"supervisor: static program, per connect {what} (loopback)", f"{st[0]:.0f} µs",
                f"{ratio(st[0], base[0])} interposer alone ({base[0]:.0f} µs)", "<= 1.5x")
        dflt = sv.get("interposer + supervisor (default)")
        if base and dflt:
            row(f"supervisor: dynamic program (default), per connect {what}", f"{dflt[0]:.0f} µs",
                f"{ratio(dflt[0], base[0])} interposer alone", "")
    if "supervisor_startup" in summary:
        row("supervisor: start-up added to a static `true`", f"{summary['supervisor_startup']:+.2f} ms", "", "")
    u = summary.get("udp")
    if u and "leakproof udp_association via dante" in u["figures"]:
        f = u["figures"]
        lib, direct = f["leakproof udp_association via dante"], f.get("direct (no proxy)")
        sock = f.get("socksify (dante-client) via dante")
        comp = f"direct {direct[0]:.1f} µs ({ratio(lib[0], direct[0])})" if direct else ""
        if sock:
            comp += f", socksify {sock[0]:.1f} µs ({ratio(lib[0], sock[0])})"
        row("UDP round trip through dante (loopback), median", f"{lib[0]:.1f} µs", comp, "")
        cpu_comp = f"direct {direct[2]:.1f} µs" if direct else ""
        if sock:
            cpu_comp += f", socksify {sock[2]:.1f} µs ({ratio(lib[2], sock[2])})"
        row("UDP: client CPU per datagram round trip", f"{lib[2]:.1f} µs", cpu_comp, "")
        if u["heap"]:
            row("UDP: heap bytes per open association", f"{u['heap']} B",
                "of which the 64 KiB receive buffer", "")
    c = summary.get("core")
    if c:
        row("core: instructions per SOCKS5 handshake", f"{c[0]}", f"{c[1]} heap allocations", "<= 2000")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--quick", action="store_true", help="a short smoke run (CI)")
    ap.add_argument("--markdown", help="also write the summary table (markdown) here")
    ap.add_argument("--only", help="run one section: latency, cpu, startup, async, data, event-loop, "
                                   "supervisor, core, udp, first-byte")
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    for need in ("bench/connect_loop", "bench/floor_client", "bench/async_load", "preload/leakproof"):
        if not os.access(os.path.join(build, need), os.X_OK):
            sys.exit(f"bench: build first: {os.path.join(build, need)} is missing")
    if args.quick:
        args.rounds, args.latency_n, args.cpu_n = 2, 5, 50
        args.hf_rounds, args.hf_runs, args.hf_warmup = 1, 10, 2
        args.async_n, args.async_rounds, args.bulk_mb = 2000, 1, 20
        args.node_n, args.node_rounds = 20, 1
        args.udp_n, args.udp_k = 200, 10
    else:
        args.rounds, args.latency_n, args.cpu_n = 7, 20, 1000
        args.hf_rounds, args.hf_runs, args.hf_warmup = 5, 40, 5
        args.async_n, args.async_rounds, args.bulk_mb = 10000, 3, 200
        args.node_n, args.node_rounds = 20, 5
        args.udp_n, args.udp_k = 2000, 50

    started = time.monotonic()
    become_subreaper()
    workdir = lptest.TMP
    try:
        svc = {"echo": echo_server(), "bulk": bulk_server()}
        svc["dante"] = lptest.dante().port
        svc["microsocks"] = lptest.microsocks().port
        svc["fault"] = lptest.fault_proxy().port
        svc["tor"] = tor_stand_in()
        svc["far_dante"] = relay(svc["dante"], 10)
        svc["far_tor"] = relay(svc["tor"], 10)
    except (lptest.Missing, RuntimeError, OSError) as e:
        sys.exit(f"bench: cannot start the servers: {e}")
    ws = wrappers(workdir, build)
    summary = {}
    sections = {"latency": lambda: latency(args, build, ws, svc, summary),
                "cpu": lambda: cpu(args, build, ws, svc, summary),
                "startup": lambda: startup(args, build, ws, svc, summary),
                "async": lambda: async_api(args, build, svc, summary),
                "data": lambda: data_path(args, build, ws, svc, summary),
                "event-loop": lambda: event_loop(args, build, ws, svc, summary),
                "supervisor": lambda: supervisor(args, build, svc, summary),
                "core": lambda: core(build, summary),
                "udp": lambda: udp(args, build, svc, summary),
                "first-byte": lambda: first_byte(args, build, ws, svc, summary)}
    if args.only and args.only not in sections:
        sys.exit(f"bench: --only: no section {args.only!r} ({', '.join(sections)})")
    servers = our_children()
    for name, section in sections.items():
        if not args.only or name == args.only:
            section()
            reap_adopted(servers)  # supervisors of the runs hyperfine and others made

    md = markdown(summary, args)
    print(f"\nsummary ({'quick' if args.quick else 'full'} run, {time.monotonic() - started:.0f} s):\n\n{md}")
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(md + "\n")
    if FAILED:
        print(f"\nbench: could not measure: {', '.join(FAILED)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
