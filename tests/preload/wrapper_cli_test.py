"""The wrapper's command line and configuration, with curl through microsocks.

python3 wrapper_cli_test.py CASE WRAPPER. Cases: help, proxy_env, config_file,
config_bad_key, env_export, shell. Each fetches (or fails) by a name only the
proxy knows, so a case that passes proves the setting reached the interposer.
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


CASES = {
    "help": help_case,
    "proxy_env": proxy_env_case,
    "config_file": config_file_case,
    "config_bad_key": config_bad_key_case,
    "env_export": env_export_case,
    "shell": shell_case,
}

if __name__ == "__main__":
    CASES[sys.argv[1]]()
    print("PASS")
