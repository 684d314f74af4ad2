#!/usr/bin/env python3
"""What a wrapped run leaves behind and what it exposes.

The placeholder map is a memory file with no name (placeholder.hpp): the
tree opens it as /proc/<supervisor>/fd/<n>. Each case finds the map's inode
while the tree runs, ends the tree one way, then checks that no process
holds or maps that inode any more (the kernel has freed it) and that no
leakproof file was left in /dev/shm or /tmp. The child cases prove that a
process which closed every inherited descriptor still reaches the SAME map:
it looks a name up, and another process that never did connects to the
placeholder it got. The credential cases check that a proxy password is in
no process's environment or command line, nor in -v log lines, and that
--env refuses to print one.

usage: lifetime_test.py CASE WRAPPER
"""
import glob
import os
import signal
import subprocess
import sys
import time

import pltest
from pltest import BODY, WEB_NAME

CASE, WRAPPER = sys.argv[1], os.path.abspath(sys.argv[2])
fail = pltest.fail
SECRET = "s3cret-pass-6021"


# The tree's /dev/shm, private to this test (others' runs share the real one).
SHM = os.path.join(pltest.TMP, "shm")
os.makedirs(SHM, exist_ok=True)


def leftover_files():
    return sorted(os.listdir(SHM))


def wrap(dns, argv):
    """argv with dns as its only resolver and SHM as its /dev/shm."""
    return pltest.in_mount_ns({"/etc/resolv.conf": dns.resolv, "/etc/hosts": dns.hosts,
                               "/dev/shm": SHM}, argv)


def holders(inode):
    """Processes that still have the map (inode) open or mapped."""
    found = []
    for pid_dir in glob.glob("/proc/[0-9]*"):
        try:
            with open(pid_dir + "/maps") as f:
                if any(l.split()[4:5] == [str(inode)] and "leakproof-map" in l for l in f):
                    found.append(pid_dir)
                    continue
            for fd in os.listdir(pid_dir + "/fd"):
                try:
                    link = os.readlink(f"{pid_dir}/fd/{fd}")
                    held = "leakproof-map" in link and os.stat(f"{pid_dir}/fd/{fd}").st_ino == inode
                except OSError:
                    continue  # closed meanwhile (the supervisor closes what it does not keep)
                if held:
                    found.append(pid_dir)
                    break
        except OSError:
            continue  # gone meanwhile, or a kernel thread
    return found


def wait_for(pred, seconds, what):
    end = time.time() + seconds
    while time.time() < end:
        if pred():
            return
        time.sleep(0.1)
    fail(what)


class Tree:
    """`sh -c SCRIPT` under the wrapper; the script's first line is
    $LEAKPROOF_MAP and $LEAKPROOF_SUPERVISOR_PID: the map, held by the
    supervisor, and its inode."""

    def __init__(self, script, proxy, dns, extra=()):
        argv = wrap(dns, [WRAPPER, "-p", proxy, *extra, "--", "sh", "-c",
                         'echo "map=$LEAKPROOF_MAP $LEAKPROOF_SUPERVISOR_PID"; read go; ' +
                         script])
        # The script waits for a line: the tree must still run when its
        # holders are looked for.
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, cwd=pltest.TMP,
                                  start_new_session=True)
        line = self.p.stdout.readline().strip()
        print("first line:", line)
        if not line.startswith("map=/proc/"):
            self.p.kill()
            fail(f"LEAKPROOF_MAP is not a /proc path: {line!r} ({self.p.stderr.read()[-500:]})")
        self.map, pid = line[4:].split()
        self.supervisor = int(pid)
        if self.map.split("/")[2] != pid:
            fail(f"the map {self.map} is not held by the supervisor {pid}")
        self.inode = os.stat(self.map).st_ino
        print(f"map {self.map}: inode {self.inode}, supervisor {self.supervisor}")
        if not holders(self.inode):  # the check after the tree ends is not blind
            fail("no holder of the map found while the tree runs")
        try:
            self.p.stdin.write("go\n")
            self.p.stdin.close()
        except BrokenPipeError:
            pass  # the tree ended meanwhile: the checks that follow say how
        self.p.stdin = None  # closed: communicate() has nothing to send

    def command_pid(self):
        # in_mount_ns runs unshare, which execs the wrapper: the same pid.
        return self.p.pid

    def tree_pids(self):
        """Every process of the session (the command and its children)."""
        pids = []
        for d in glob.glob("/proc/[0-9]*"):
            try:
                with open(d + "/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[3]) == self.p.pid:  # session id
                    pids.append(int(d[6:]))
            except (OSError, IndexError, ValueError):
                continue
        return pids

    def finish(self, timeout=30):
        out, err = self.p.communicate(timeout=timeout)
        print("rc:", self.p.returncode)
        print("stdout:", out[-600:])
        print("stderr:", err[-1200:])
        return out, err

    def check_gone(self):
        def supervisor_gone():
            try:
                with open(f"/proc/{self.supervisor}/stat") as f:
                    return f.read().rsplit(")", 1)[1].split()[0] == "Z"
            except OSError:
                return True
        wait_for(supervisor_gone, 10, f"supervisor {self.supervisor} still runs")
        wait_for(lambda: not holders(self.inode), 10,
                 f"the map (inode {self.inode}) is still held: {holders(self.inode)}")
        if os.path.exists(self.map):
            fail(f"{self.map} still opens")
        if leftover_files():
            fail(f"files left behind: {leftover_files()}")
        print(f"map inode {self.inode}: no holder, no file left")


def servers():
    return pltest.Dns(), pltest.HttpServer(), pltest.microsocks()


def fetch_script(web):
    """Looks WEB_NAME up here and fetches it: the map works."""
    return (f"a=$(getent hosts {WEB_NAME} | cut -d' ' -f1); "
            f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc $a {web.port}; ")


def expect_body(out):
    if BODY.strip() not in out:
        fail("the page did not come through the map and the proxy")


# --- exit paths -----------------------------------------------------------

def normal_exit_case():
    dns, web, proxy = servers()
    t = Tree(fetch_script(web), proxy, dns)
    out, _ = t.finish()
    expect_body(out)
    t.check_gone()
    pltest.no_dns(dns)


def kill_command_case():
    dns, web, proxy = servers()
    t = Tree(fetch_script(web) + "echo fetched; exec sleep 60", proxy, dns)
    for _ in range(200):
        if "fetched" in t.p.stdout.readline():
            break
    os.kill(t.command_pid(), signal.SIGKILL)
    t.finish()
    t.check_gone()


def kill_supervisor_case():
    dns, web, proxy = servers()
    t = Tree("getent hosts " + WEB_NAME + "; echo resolved; sleep 2; "
             "getent hosts other.example; echo after=$?", proxy, dns)
    for _ in range(200):
        if "resolved" in t.p.stdout.readline():
            break
    os.kill(t.supervisor, signal.SIGKILL)
    out, _ = t.finish()
    t.check_gone()


def kill_all_case():
    dns, web, proxy = servers()
    t = Tree(fetch_script(web) + "echo fetched; sleep 60 & sleep 60 & wait", proxy, dns)
    for _ in range(200):
        if "fetched" in t.p.stdout.readline():
            break
    time.sleep(0.3)
    pids = t.tree_pids() + [t.supervisor]
    print("killing at once:", pids)
    for pid in pids:  # each SIGKILL is final; none of them can react to another
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    t.finish()
    t.check_gone()


# --- children that close every inherited descriptor -----------------------

def child_case(resolver):
    """`resolver` (a shell command) prints WEB_NAME's placeholder after
    closing every descriptor it inherited; nc, a process that never looked
    the name up, then connects to it: only the same map knows the name."""
    dns, web, proxy = servers()
    script = (f"a=$({resolver} | cut -d' ' -f1); echo addr=$a; "
              f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc $a {web.port}; "
              "ls -l /proc/self/fd")
    t = Tree(script, proxy, dns)
    out, _ = t.finish()
    if "addr=100::" not in out and "addr=240." not in out:
        fail("the child got no placeholder")
    if "memfd" in out:
        fail("a program of the tree holds the map's descriptor (it needs none)")
    expect_body(out)
    t.check_gone()
    pltest.no_dns(dns)


def child_close_fds_case():
    child_case("python3 -c 'import subprocess; subprocess.run([\"getent\", \"hosts\", \"" +
               WEB_NAME + "\"], close_fds=True)'")


def child_closefrom_case():
    child_case("python3 -c 'import os; os.closerange(3, 1 << 16); "
               "os.execvp(\"getent\", [\"getent\", \"hosts\", \"" + WEB_NAME + "\"])'")


def child_daemon_case():
    """A daemon: forks twice, setsid, closes everything, re-execs itself,
    then looks the name up; the shell reads its answer from a file."""
    out_file = os.path.join(pltest.TMP, "daemon.out")
    daemon = os.path.join(pltest.TMP, "daemon.py")
    pltest.write(daemon, f"""import os, subprocess, sys
if len(sys.argv) == 1:
    if os.fork(): sys.exit(0)
    os.setsid()
    if os.fork(): os._exit(0)
    os.closerange(0, 1 << 16)
    os.execv(sys.executable, [sys.executable, __file__, "again"])
r = subprocess.run(["getent", "hosts", "{WEB_NAME}"], capture_output=True, text=True)
with open("{out_file}.tmp", "w") as f: f.write(r.stdout)
os.rename("{out_file}.tmp", "{out_file}")
""")
    child_case(f"python3 {daemon}; for i in $(seq 100); do [ -e {out_file} ] && break; "
               f"sleep 0.1; done; cat {out_file}")


# --- credentials -----------------------------------------------------------

def env_of(pid):
    with open(f"/proc/{pid}/environ", "rb") as f:
        return f.read().decode(errors="replace")


def credentials_case():
    """-p socks5h://user:pass@: works, and the password is nowhere to see."""
    dns, web = pltest.Dns(), pltest.HttpServer()
    ms = pltest.lptest.microsocks(auth=True, password=SECRET)
    proxy = f"socks5h://{ms.user}:{SECRET}@127.0.0.1:{ms.port}"
    t = Tree(fetch_script(web) + "env; echo cmdline; cat /proc/$$/cmdline | tr '\\0' ' '; echo; "
             "sleep 1", proxy, dns, extra=["-v"])
    sup_env, sup_cmdline = env_of(t.supervisor), open(f"/proc/{t.supervisor}/cmdline").read()
    out, err = t.finish()
    expect_body(out)
    for where, text in (("a child's environment", out), ("the log", err),
                        ("the supervisor's environment", sup_env),
                        ("the supervisor's command line", sup_cmdline)):
        if SECRET in text:
            fail(f"the password is in {where}")
    if "LEAKPROOF_CREDENTIALS=0" not in out:
        fail("LEAKPROOF_CREDENTIALS does not name the first hop")
    if ms.user + ":***@" not in err:
        fail("no redacted proxy in the -v log")
    print("password in: no environment, no command line, no log line")
    t.check_gone()


def credentials_options_case():
    """-u/--pass: the same (and --pass's value is overwritten in argv)."""
    dns, web = pltest.Dns(), pltest.HttpServer()
    ms = pltest.lptest.microsocks(auth=True, password=SECRET)
    proxy = f"socks5h://127.0.0.1:{ms.port}"
    t = Tree(fetch_script(web) + "env", proxy, dns, extra=["-u", ms.user, "--pass", SECRET])
    out, err = t.finish()
    expect_body(out)
    if SECRET in out or SECRET in err:
        fail("the password is in the environment or the log")
    t.check_gone()


def credentials_static_case():
    """A gcc -static program: the supervisor, which does its handshake,
    reads the credentials from the map too (and without them the proxy
    refuses: the control)."""
    client = os.path.join(pltest.TMP, "rawclient")
    subprocess.run(["cc", "-static", "-O2", "-o", client,
                    os.path.join(os.path.dirname(os.path.abspath(__file__)), "static",
                                 "rawclient.c")], check=True, timeout=120)
    dns, web = pltest.Dns(), pltest.HttpServer()
    ms = pltest.lptest.microsocks(auth=True, password=SECRET)
    argv = [client, "ip", "127.0.0.1", str(web.port)]
    for proxy, works in ((f"socks5h://{ms.user}:{SECRET}@127.0.0.1:{ms.port}", True),
                         (f"socks5h://127.0.0.1:{ms.port}", False)):
        r = pltest.run_wrapped(WRAPPER, argv, dns, proxy, ["--proxy-loopback", "-v"])
        if (BODY.strip() in r.stdout) != works:
            fail("the static client " + ("did not get" if works else "got") + " the page")
        if SECRET in r.stderr:
            fail("the password is in the log")
        if works and "(supervised)" not in r.stderr:
            fail("the static client did not run supervised")


def env_mode_case():
    """--env refuses URL and option credentials with a sentence, prints no
    map, and keeps -i's (not secrets)."""
    dns = pltest.Dns()
    for extra in (["-p", f"socks5h://u:{SECRET}@127.0.0.1:1080"],
                  ["-p", "socks5h://127.0.0.1:1080", "-u", "u", "--pass", SECRET]):
        r = subprocess.run(wrap(dns, [WRAPPER, *extra, "--env"]), capture_output=True, text=True,
                           timeout=30)
        print(r.returncode, r.stdout, r.stderr)
        if r.returncode != 2 or SECRET in r.stdout + r.stderr or "--env would print" not in r.stderr:
            fail("--env did not refuse the credentials with a sentence")
    r = subprocess.run(wrap(dns, [WRAPPER, "-p", "socks5h://127.0.0.1:1080", "-i", "--env"]),
                       capture_output=True, text=True, timeout=30)
    print(r.stdout)
    if r.returncode != 0 or "export LEAKPROOF_MAP=''" not in r.stdout or \
            "leakproof-" not in r.stdout:
        fail("--env -i should print the isolation credentials and no map")
    if leftover_files():
        fail(f"--env left files: {leftover_files()}")


CASES = {name[:-5]: f for name, f in dict(globals()).items() if name.endswith("_case")}

if __name__ == "__main__":
    CASES[CASE]()
    print("PASS", CASE)
