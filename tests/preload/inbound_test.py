"""Listening through the proxy (--inbound, SOCKS BIND) under the wrapper:
python3 inbound_test.py CASE WRAPPER

Active-mode FTP against a real FTP server (pyftpdlib, tests/preload/ftp_server.py)
on loopback, through dante (--proxy-loopback: the control connection is
proxied). The server notes who listens on each data address a client gives
(PORT/EPRT): under --inbound that is dante, never the client, so the
client's own address never goes to the server; without --inbound it is the
client (the control).
"""
import os
import shutil
import subprocess
import sys
import time

import pltest

lptest = pltest.lptest
CASE = sys.argv[1]
WRAPPER = os.path.abspath(sys.argv[2])
HERE = os.path.dirname(os.path.abspath(__file__))
SKIP = 77
fail = pltest.fail
FILE_BODY = "leakproof-ftp-body-2718\n"


class FtpServer:
    def __init__(self):
        try:
            subprocess.run(["/usr/bin/python3", "-c", "import pyftpdlib"], check=True,
                           capture_output=True)
        except (OSError, subprocess.CalledProcessError):
            print("SKIP: no python3-pyftpdlib")
            sys.exit(SKIP)
        self.root = os.path.join(pltest.TMP, "ftp-root")
        os.makedirs(self.root, exist_ok=True)
        pltest.write(os.path.join(self.root, "file.txt"), FILE_BODY)
        self.log = os.path.join(pltest.TMP, "ftp-ports.log")
        pltest.write(self.log, "")
        self.port = lptest.free_port()
        lptest.spawn(["/usr/bin/python3", os.path.join(HERE, "ftp_server.py"), str(self.port),
                      self.root, self.log], f"ftp-{self.port}.out")
        lptest.wait_port(self.port)

    def owners(self):
        time.sleep(0.2)
        with open(self.log) as f:
            return [line.split()[2] for line in f if line.startswith("PORT ")]


def run(argv, proxy, extra, timeout=60):
    return pltest.run_wrapped(WRAPPER, argv, pltest.Dns(), proxy, list(extra), timeout=timeout)


def expect_through_proxy(ftp, r, what):
    if FILE_BODY.strip() not in r.stdout:
        fail(f"{what}: the file did not arrive")
    owners = ftp.owners()
    print("data addresses listened on by:", owners)
    if not owners:
        fail(f"{what}: no active-mode data address reached the server")
    if any(o != "sockd" and o != "danted" for o in owners):
        fail(f"{what}: a data address was not the proxy's: the client's own address went out")
    if "(BIND): the proxy listens" not in r.stderr:
        fail(f"{what}: no log line for the BIND")


def curl_case():
    """curl --ftp-port - (EPRT, then PORT) through dante."""
    ftp = FtpServer()
    r = run(["curl", "-sS", "-m", "20", "--ftp-port", "-", f"ftp://127.0.0.1:{ftp.port}/file.txt"],
            pltest.dante(), ["--inbound", "--proxy-loopback", "-v"])
    expect_through_proxy(ftp, r, "curl")


def lftp_case():
    """lftp with passive mode off."""
    if shutil.which("lftp") is None:
        print("SKIP: no lftp")
        sys.exit(SKIP)
    ftp = FtpServer()
    script = ("set ftp:passive-mode off; set net:max-retries 1; set net:timeout 10; "
              "cat file.txt; bye")
    r = run(["lftp", "-e", script, f"ftp://127.0.0.1:{ftp.port}"], pltest.dante(),
            ["--inbound", "--proxy-loopback", "-v"])
    expect_through_proxy(ftp, r, "lftp")


def control_case():
    """Without --inbound, the client listens itself (what --inbound prevents)."""
    ftp = FtpServer()
    r = run(["curl", "-sS", "-m", "20", "--ftp-port", "-", f"ftp://127.0.0.1:{ftp.port}/file.txt"],
            pltest.dante(), ["--proxy-loopback"])
    owners = ftp.owners()
    print("data addresses listened on by:", owners)
    if FILE_BODY.strip() not in r.stdout or not owners or owners[0] != "curl":
        fail("the control (no --inbound) did not show curl's own data address")


def no_bind_case():
    """A proxy without BIND (microsocks): listen() fails with a log line, the
    server never gets a data address."""
    ftp = FtpServer()
    r = run(["curl", "-sS", "-m", "20", "--ftp-port", "-", f"ftp://127.0.0.1:{ftp.port}/file.txt"],
            pltest.microsocks(), ["--inbound", "--proxy-loopback"])
    if r.returncode == 0 or "(BIND): refused" not in r.stderr:
        fail("expected the transfer to fail with a log line naming the refused BIND")
    if ftp.owners():
        fail("a data address reached the server")


def usage_case():
    """--inbound where BIND cannot serve: exit 2 and a sentence."""
    for extra, needle in ((["--tor"], "--inbound cannot be used with --tor"),
                          (["-p", "socks5h://127.0.0.1:9", "-p", "socks5h://127.0.0.1:10"],
                           "--inbound needs a single proxy")):
        r = subprocess.run([WRAPPER, "--inbound"] + extra + ["--", "true"], capture_output=True,
                           text=True, timeout=30)
        print(extra, r.returncode, r.stderr)
        if r.returncode != 2 or needle not in r.stderr:
            fail(f"expected exit 2 and {needle!r}")


CASES = {
    "curl": curl_case,
    "lftp": lftp_case,
    "control": control_case,
    "no_bind": no_bind_case,
    "usage": usage_case,
}

if __name__ == "__main__":
    CASES[CASE]()
    print("PASS")
