"""A test that runs itself again inside a private network namespace.

Some tests need ports or servers that must not be reachable from outside
(a fixed port such as Tor's 9050, a server that cannot be told to listen on
loopback alone). Such a script calls `rerun_isolated(...)` from its outer
run: it re-executes the script under `unshare -n` with "--inside" in front
of its arguments. The inner run calls `loopback_up()` first, then imports
the harness (whose servers then start inside the namespace).

This module imports nothing of the harness: importing it has no effect.
"""
import os
import shutil
import subprocess
import sys


def rerun_isolated(script, args, timeout):
    """The exit status of `script --inside ARGS...` run in a new network
    namespace; 1 with a reason when no namespace can be made (the test
    cannot check anything then, which is a failure, not a pass)."""
    missing = [tool for tool in ("unshare", "ip") if shutil.which(tool) is None]
    if missing:
        print(f"FAIL: {' and '.join(missing)} not installed: no network namespace")
        return 1
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        print(f"FAIL: cannot create a network namespace ({probe.stderr.strip()})")
        return 1
    argv = ["unshare", "-n", sys.executable, os.path.abspath(script), "--inside", *args]
    return subprocess.run(argv, timeout=timeout).returncode


def loopback_up():
    """A new namespace's loopback is down: the inner run brings it up."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
