"""The fetch examples, run as their usage says, against the harness's servers:
an HTTP page fetched by a name only the proxies know (so a pass shows that the
name went to the proxy), through dante, and through microsocks then dante for
the chain of fetch_callback.

Run under tests/harness/with_servers.py: fetch_example_test.py KIND BINARY,
KIND one of coroutine (and beast: the same arguments) or callback.
"""
import os
import subprocess
import sys


def main(kind, binary):
    env = os.environ
    name, port, body = env["LP_WEB_NAME"], env["LP_WEB_PORT"], env["LP_WEB_BODY"]
    dante = "socks5h://" + env["LP_DANTE"]
    if kind == "callback":
        args = [name, port, "/", "socks5h://" + env["LP_MICROSOCKS"], dante]
    else:
        args = [dante, name, port, "/"]
    run = subprocess.run([binary] + args, capture_output=True, text=True, timeout=60)
    if run.returncode != 0 or body not in run.stdout or " 200 " not in run.stdout:
        print(f"FAIL: {os.path.basename(binary)} {' '.join(args)}: exit {run.returncode}",
              f"stdout: {run.stdout[:400]!r}", f"stderr: {run.stderr[:400]!r}",
              sep="\n", file=sys.stderr)
        return 1
    # A name the proxy cannot resolve: a clear error and a failing exit, nothing printed.
    bad = [a.replace(name, "nowhere.invalid") for a in args]
    run = subprocess.run([binary] + bad, capture_output=True, text=True, timeout=60)
    if run.returncode == 0 or not run.stderr.strip() or run.stdout:
        print(f"FAIL: {' '.join(bad)} gave exit {run.returncode}, stderr {run.stderr!r}",
              file=sys.stderr)
        return 1
    print(f"{os.path.basename(binary)}: fetched http://{name}:{port}/ through the proxy;"
          f" nowhere.invalid: {run.stderr.strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
