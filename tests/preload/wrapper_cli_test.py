"""The wrapper's command line and configuration, with curl through microsocks.

python3 wrapper_cli_test.py CASE WRAPPER. Cases: help, proxy_env, config_file,
config_bad_key, env_export, shell, pipeline, config_pipeline. Each fetches (or
fails) by a name only the proxy knows, so a case that passes proves the setting
reached the interposer. The pipeline cases go through the project's test proxy
(microsocks drops pipelined bytes), which records what each connection's client
sent before it answered anything: the whole handshake, in one write, when it
is pipelined.
"""
import os
import subprocess
import sys

import pltest
from pltest import BODY, WEB_NAME

WRAPPER = os.path.abspath(sys.argv[2])


fail = pltest.fail


def run(argv, env_extra=None, input=None):
    env = dict(os.environ)
    for key in ("LEAKPROOF_PROXY", "XDG_CONFIG_HOME"):
        env.pop(key, None)
    env.update(env_extra or {})
    r = subprocess.run(argv, capture_output=True, text=True, env=env, input=input, timeout=60,
                       cwd=pltest.TMP)
    print("$", " ".join(argv), f"-> rc={r.returncode}")
    print("stdout:", r.stdout[-400:])
    print("stderr:", r.stderr[-800:])
    return r


def setup():
    web = pltest.HttpServer()
    return pltest.microsocks(), f"http://{WEB_NAME}:{web.port}/"


def expect_body(r):
    if r.returncode != 0 or BODY.strip() not in r.stdout:
        fail("the page did not arrive through the proxy")


def help_case():
    r = run([WRAPPER, "--help"])
    if r.returncode != 0 or "usage: leakproof" not in r.stdout:
        fail("--help does not print the usage")
    r = run([WRAPPER, "--version"])
    if r.returncode != 0 or "leakproof" not in r.stdout:
        fail("--version")
    r = run([WRAPPER, "--no-such-option", "true"])
    if r.returncode != 2 or len(r.stderr.strip().splitlines()) != 1:
        fail("an unknown option must give exit 2 and one line")


def proxy_env_case():
    proxy, url = setup()
    expect_body(run([WRAPPER, "--", "curl", "-sS", url], {"LEAKPROOF_PROXY": proxy}))


def write_config(text):
    home = os.path.join(pltest.TMP, "xdg")
    os.makedirs(os.path.join(home, "leakproof"), exist_ok=True)
    pltest.write(os.path.join(home, "leakproof", "config"), text)
    return {"XDG_CONFIG_HOME": home}


def config_file_case():
    proxy, url = setup()
    env = write_config(f"# the test's proxy\nproxy = {proxy}\ntimeout = 20\n")
    expect_body(run([WRAPPER, "--", "curl", "-sS", url], env))


def config_bad_key_case():
    env = write_config("proxy = socks5h://127.0.0.1:1\nno_such_key = 1\n")
    r = run([WRAPPER, "--", "true"], env)
    if r.returncode != 2 or "no_such_key" not in r.stderr:
        fail("an unknown configuration key must be named, exit 2")


def env_export_case():
    """Exported into a shell: the interposer alone, which covers curl and,
    in the programs below (not in that shell itself, which it does not
    reach), refuses to exec a static program: no supervisor watches."""
    proxy, url = setup()
    r = run([WRAPPER, "-p", proxy, "--env"])
    if r.returncode != 0 or "export LD_PRELOAD=" not in r.stdout:
        fail("--env prints no export lines")
    expect_body(run(["sh", "-c", f'eval "$1" && curl -sS {url}', "sh", r.stdout]))
    static = os.path.join(pltest.TMP, "static-true")
    src = pltest.write(static + ".c", "int main(void) { return 0; }\n")
    subprocess.run(["cc", "-static", "-o", static, src], check=True, timeout=120)
    # The shell that evaluates the lines is not interposed itself: a shell below it is.
    ran = run(["sh", "-c", f'eval "$1" && sh -c "{static}; echo exit=\\$?"', "sh", r.stdout])
    if "exit=126" not in ran.stdout or \
       f"execve {static}: refused: it is statically linked" not in ran.stderr:
        fail("a static program ran unprotected under --env")


def shell_case():
    proxy, url = setup()
    r = run([WRAPPER, "-p", proxy, "--shell"], {"SHELL": "/bin/sh"},
            input=f"curl -sS {url}\n")
    expect_body(r)


def pipelined_proxy():
    """The test proxy, recording each connection's unasked bytes; a function
    returning the lines recorded since the last call."""
    record = os.path.join(pltest.TMP, "first-bytes")
    proxy = pltest.lptest.fault_proxy(first_bytes=record)
    seen = []

    def new_lines():
        try:
            with open(record) as f:
                lines = f.read().split()
        except FileNotFoundError:
            lines = []
        fresh = lines[len(seen):]
        seen.extend(fresh)
        return fresh

    return proxy.port, new_lines


def hexs(*parts):
    return b"".join(parts).hex()


def socks5_connect(host, port, by_name=True):
    addr = (bytes([3, len(host)]) + host.encode()) if by_name else bytes([1]) + bytes(
        int(b) for b in host.split("."))
    return bytes([5, 1, 0]) + addr + port.to_bytes(2, "big")


def expect_recorded(new_lines, expected, what):
    got = new_lines()
    print("recorded:", got)
    if got != expected:
        fail(f"{what}: the proxy got {got}, expected {expected}")


def pipeline_case():
    port, new_lines = pipelined_proxy()
    web = pltest.HttpServer()
    url = f"http://{WEB_NAME}:{web.port}/"
    proxy = f"socks5h://127.0.0.1:{port}"
    request = socks5_connect(WEB_NAME, web.port)
    # Greeting (one method: username/password), RFC 1929 and the request:
    # all there before the proxy said a word.
    expect_body(run([WRAPPER, "--pipeline", "-u", "lpuser", "--pass", "lp-pass", "-p", proxy,
                     "--", "curl", "-sS", url]))
    expect_recorded(new_lines, [hexs(bytes([5, 1, 2]), bytes([1, 6]) + b"lpuser" + bytes([7]) +
                                     b"lp-pass", request)],
                    "--pipeline with credentials")
    # Every SOCKS5 hop: a chain of two (the proxy reaches itself by address).
    expect_body(run([WRAPPER, "--pipeline", "-p", proxy, "-p", proxy, "--", "curl", "-sS", url]))
    expect_recorded(new_lines, [hexs(bytes([5, 1, 0]),
                                     socks5_connect("127.0.0.1", port, by_name=False)),
                                hexs(bytes([5, 1, 0]), request)],
                    "--pipeline, a chain of two")
    # --env carries it to the interposer in the URLs.
    r = run([WRAPPER, "--pipeline", "-p", proxy, "-p", proxy, "--env"])
    if r.returncode != 0 or r.stdout.count("?pipeline=1") != 2:
        fail("--pipeline --env does not mark both hops ?pipeline=1")
    # Without it: the greeting alone, then the proxy's answer.
    expect_body(run([WRAPPER, "-p", proxy, "--", "curl", "-sS", url]))
    expect_recorded(new_lines, [hexs(bytes([5, 1, 0]))], "without --pipeline")
    if web.requests != 3:
        fail(f"the web server answered {web.requests} requests, expected 3")


def config_pipeline_case():
    port, new_lines = pipelined_proxy()
    web = pltest.HttpServer()
    url = f"http://{WEB_NAME}:{web.port}/"
    proxy = f"socks5h://127.0.0.1:{port}"
    env = write_config(f"proxy = {proxy}\npipeline = on\n")
    expect_body(run([WRAPPER, "--", "curl", "-sS", url], env))
    expect_recorded(new_lines, [hexs(bytes([5, 1, 0]), socks5_connect(WEB_NAME, web.port))],
                    "pipeline = on")
    env = write_config(f"proxy = {proxy}\npipeline = off\n")
    expect_body(run([WRAPPER, "--", "curl", "-sS", url], env))
    expect_recorded(new_lines, [hexs(bytes([5, 1, 0]))], "pipeline = off")
    # The command line wins over the file's "off".
    expect_body(run([WRAPPER, "--pipeline", "--", "curl", "-sS", url], env))
    expect_recorded(new_lines, [hexs(bytes([5, 1, 0]), socks5_connect(WEB_NAME, web.port))],
                    "--pipeline over pipeline = off")


def config_optimistic_case():
    # Where the choice ends up: the URLs --env prints for the interposer.
    proxy = "socks5h://127.0.0.1:1080"

    def urls(argv, env):
        r = run([WRAPPER, *argv, "--env"], env)
        if r.returncode != 0:
            fail(f"{argv}: --env failed: {r.stderr}")
        line = next(l for l in r.stdout.splitlines() if "LEAKPROOF_PROXIES=" in l)
        return line.split("=", 1)[1].strip("'")

    def expect(argv, env, want):
        got = urls(argv, env)
        if got != want:
            fail(f"{argv} with {env}: LEAKPROOF_PROXIES={got!r}, expected {want!r}")

    env = write_config(f"proxy = {proxy}\noptimistic = on\n")
    expect([], env, proxy + "?optimistic=1")
    expect(["--no-optimistic"], env, proxy)
    env = write_config(f"proxy = {proxy}\noptimistic = off\n")
    expect([], env, proxy)
    expect(["--optimistic"], env, proxy + "?optimistic=1")
    # --tor turns it on, unless the file says off.
    expect(["--tor", "-p", proxy], env, proxy + "?pipeline=1")
    env = write_config(f"proxy = {proxy}\n")
    expect(["--tor", "-p", proxy], env, proxy + "?pipeline=1&optimistic=1")
    # A URL asks for it itself; --no-optimistic keeps its one round trip.
    expect(["-p", proxy + "?optimistic=1"], env, proxy + "?optimistic=1")
    expect(["--no-optimistic", "-p", proxy + "?optimistic=1"], env, proxy + "?pipeline=1")
    expect(["--optimistic", "-p", proxy, "-p", "socks4a://p.test"], env,
           proxy + "?optimistic=1 socks4a://p.test:1080?optimistic=1")
    # --print-config writes the choice back in the file's words.
    for argv, line in ((["--optimistic"], "optimistic = on"), (["--no-optimistic"], "optimistic = off")):
        r = run([WRAPPER, *argv, "-p", proxy, "--print-config"], env)
        if r.returncode != 0 or line not in r.stdout.splitlines():
            fail(f"{argv} --print-config does not say '{line}':\n{r.stdout}{r.stderr}")
    r = run([WRAPPER, "-p", proxy, "--print-config"], env)
    if "optimistic" in r.stdout:
        fail(f"--print-config names optimistic though nothing chose it:\n{r.stdout}")


CASES = {
    "help": help_case,
    "proxy_env": proxy_env_case,
    "config_file": config_file_case,
    "config_bad_key": config_bad_key_case,
    "env_export": env_export_case,
    "shell": shell_case,
    "pipeline": pipeline_case,
    "config_pipeline": config_pipeline_case,
    "config_optimistic": config_optimistic_case,
}

if __name__ == "__main__":
    CASES[sys.argv[1]]()
    print("PASS")
