#!/usr/bin/env python3
"""Run a command with every test server up: with_servers.py [-v] -- CMD ARGS...

Starts the servers of lptest.py on loopback, exports where they are as LP_*
environment variables, runs CMD and exits with its status. The servers are
stopped however this ends (normal exit, exception, SIGINT/SIGTERM/SIGHUP).

Variables: LP_WEB_PORT LP_WEB_NAME LP_WEB_BODY, LP_DANTE, LP_DANTE_AUTH
LP_DANTE_USER LP_DANTE_PASS, LP_MICROSOCKS, LP_MICROSOCKS_AUTH
LP_MICROSOCKS_USER LP_MICROSOCKS_PASS, LP_SSH_SOCKS, LP_SHADOWSOCKS, LP_FAULT LP_FAULT_MUTE
LP_FAULT_CLOSE LP_FAULT_CONNECTS. Addresses are host:port. A server whose
binary is missing is reported on stderr and its variables are left out.
"""
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lptest  # noqa: E402

child = None


def on_signal(sig, frame):
    # Pass the signal on, then leave through SystemExit so atexit stops the
    # servers. (A terminal's SIGINT reaches the child directly as well.)
    if child is not None and child.poll() is None:
        try:
            child.send_signal(sig)
            child.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            child.kill()
    sys.exit(128 + sig)


def main(argv):
    global child
    verbose = False
    while argv and argv[0] != "--":
        if argv[0] in ("-v", "--verbose"):
            verbose = True
            argv = argv[1:]
        else:
            break
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv or argv[0].startswith("-"):
        print(__doc__, file=sys.stderr)
        return 2
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)

    env = lptest.start_all()
    if verbose:
        for k in sorted(env):
            print(f"{k}={env[k]}", file=sys.stderr)
    try:
        # Same process group as us, so a terminal's ^C reaches it; and it dies
        # with us if we are SIGKILLed (a test without its servers is useless).
        child = subprocess.Popen(argv, env={**os.environ, **env},
                                 preexec_fn=lptest._die_with_parent)
    except OSError as e:
        print(f"with_servers: {argv[0]}: {e}", file=sys.stderr)
        return 127
    rc = child.wait()
    # Shell convention for a child killed by a signal.
    return 128 - rc if rc < 0 else rc


if __name__ == "__main__":
    try:
        status = main(sys.argv[1:])
    finally:
        lptest.stop_all()
    sys.exit(status)
