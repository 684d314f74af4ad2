"""The bash and zsh completions of leakproof and leakproof-connect (completions/).

python3 completion_test.py CASE COMPLETIONS_DIR WRAPPER CONNECT. Cases:
  bash_wrapper, bash_connect  bash-completion's own bash_completion sourced in a
        non-interactive bash, COMP_WORDS split the way readline splits them
        (at ':' and '='), the completion function called, COMPREPLY checked
  zsh_wrapper, zsh_connect    `zsh -n`, then a real interactive zsh on a
        pseudo-terminal (compinit, TAB bound to complete-word) completes the line;
        compadd is wrapped to print every match it is given

Every option the built program's --help names must be offered; after the
options (or "--") the command's own completion takes over.
"""
import os
import pty
import re
import select
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SKIP = 77
CASE, COMPDIR, WRAPPER, CONNECT = sys.argv[1], *map(os.path.abspath, sys.argv[2:5])
BASH_COMPLETION = "/usr/share/bash-completion/bash_completion"
TMP = tempfile.mkdtemp(prefix="lp-completion-")


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def help_options(program):
    """The options the program's --help (or usage line) names."""
    r = subprocess.run([program, "--help"], capture_output=True, text=True, timeout=10)
    opts = set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", r.stdout + r.stderr))
    opts.discard("-" + os.path.basename(program))
    if len(opts) < 2:
        fail(f"{program} --help names too few options: {sorted(opts)}")
    return opts


def bash_complete(script, function, line):
    """COMPREPLY of `function` for the line typed so far (cursor at its end)."""
    words = re.findall(r"[:=]|[^\s:=]+", line)
    if line.endswith(" "):
        words.append("")
    cword = len(words) - 1
    prog = f"""
        . {BASH_COMPLETION}
        . {shlex.quote(script)}
        compopt() {{ :; }}  # only valid while readline completes
        COMP_LINE={shlex.quote(line)}
        COMP_POINT=${{#COMP_LINE}}
        COMP_WORDS=({' '.join(shlex.quote(w) for w in words)})
        COMP_CWORD={cword}
        {function} {shlex.quote(words[0])} {shlex.quote(words[cword])} {shlex.quote(words[cword - 1])}
        printf '%s\\n' "${{COMPREPLY[@]}}"
    """
    r = subprocess.run(["bash", "--norc", "--noprofile", "-c", prog], capture_output=True,
                       text=True, timeout=30, cwd=TMP)
    got = [w for w in r.stdout.splitlines() if w]
    print(f"bash: {line!r} -> {got[:12]}{' ...' if len(got) > 12 else ''}")
    if r.returncode != 0:
        fail(f"bash exited {r.returncode}: {r.stderr[-500:]}")
    return got


ZSH_SETUP = r"""
PROMPT='' RPROMPT='' PS2=''
fpath=(%s $fpath)
autoload -Uz compinit && compinit -u -D
bindkey '^I' complete-word
zstyle ':completion:*' insert-tab false
_lp_mark() { print -r -- '@@LP-MARK@@' }
compprefuncs=(_lp_mark)
comppostfuncs=(_lp_mark exit)
compadd() {
  if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then
    builtin compadd "$@"
    return
  fi
  local -a lp_hits
  builtin compadd -A lp_hits "$@"
  (( $#lp_hits )) && print -rl -- '@@LP-HIT@@'${^lp_hits}
  builtin compadd "$@"
}
print -r -- '@@LP-READY@@'
"""


def zsh_complete(line, timeout=20):
    """The matches an interactive zsh offers when TAB is pressed after `line`."""
    setup = os.path.join(TMP, "setup.zsh")
    with open(setup, "w") as f:
        f.write(ZSH_SETUP % shlex.quote(COMPDIR))
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(TMP)
        os.environ.update(TERM="dumb", HOME=TMP)
        os.execvp("zsh", ["zsh", "-f", "-i"])
    out = b""
    end = time.time() + timeout

    def read_until(done):
        nonlocal out
        while not done() and time.time() < end:
            if select.select([fd], [], [], 0.2)[0]:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:  # the shell exited (comppostfuncs)
                    return
                if not chunk:
                    return
                out += chunk

    try:
        os.write(fd, f"source {shlex.quote(setup)}\n".encode())
        read_until(lambda: b"@@LP-READY@@\r\n" in out)
        start = len(out)
        os.write(fd, line.encode() + b"\t")
        read_until(lambda: out.count(b"@@LP-MARK@@", start) >= 2)
        if out.count(b"@@LP-MARK@@", start) < 2:
            fail(f"zsh did not complete {line!r} within {timeout}s: {out[-300:]!r}")
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(fd)
    text = out[start:].decode(errors="replace")
    got = [l.split("@@LP-HIT@@", 1)[1].strip("\r") for l in text.split("\n") if "@@LP-HIT@@" in l]
    print(f"zsh: {line!r} -> {got[:12]}{' ...' if len(got) > 12 else ''}")
    return got


def expect(got, want, line):
    missing = sorted(set(want) - set(got))
    if missing:
        fail(f"{line!r}: {missing} not offered")


def expect_none(got, line):
    if got:
        fail(f"{line!r}: expected no completion, got {got[:10]}")


def need(*programs):
    for p in programs:
        if not shutil.which(p) and not os.path.exists(p):
            print(f"SKIP: {p} is not installed")
            sys.exit(SKIP)


def wrapper_lines(complete):
    """Checks shared by bash and zsh for leakproof; `complete(line)` gives the matches."""
    logf = os.path.join(TMP, "leakproof-log.txt")
    open(logf, "w").close()
    offered = complete("leakproof -") + complete("leakproof --")
    expect(offered, help_options(WRAPPER) | {"--pipeline"}, "leakproof -")
    expect(complete("leakproof --isolate="), ["invocation", "process"], "--isolate=")
    for line in ("leakproof -p ", "leakproof --tor --proxy "):
        got = complete(line)
        expect(got, ["socks5h://127.0.0.1:9050"], line)
        if any(not g.startswith("socks") for g in got):
            fail(f"{line!r}: offered something that is not a proxy URL")
    expect(complete("leakproof --log-file leakproof-lo"), ["leakproof-log.txt"], "--log-file")
    expect_none(complete("leakproof --timeout "), "--timeout")
    # The command and its own completion, after options with URLs (split at
    # ':' by readline) and after "--".
    expect(complete("leakproof -p socks5h://127.0.0.1:1080 -v cur"), ["curl"], "command name")
    expect(complete("leakproof cur"), ["curl"], "command name first")
    for line in ("leakproof -p socks5h://127.0.0.1:1080 -i ls --col",
                 "leakproof -- ls --col", "leakproof -q -- ls --col"):
        expect(complete(line), ["--color"], line)
    got = complete("leakproof -p socks5h://127.0.0.1:1080 ls --")
    if "--proxy" in got:
        fail("leakproof's options offered to the wrapped command")


def connect_lines(complete):
    want = help_options(CONNECT) | {"-u", "-l", "-w"}
    expect(complete("leakproof-connect -"), want, "leakproof-connect -")
    expect(complete("leakproof-connect -p "), ["socks5h://127.0.0.1:9050"], "-p")
    expect_none(complete("leakproof-connect -t "), "-t")
    expect_none(complete("leakproof-connect -u -w "), "-w")
    expect(complete("leakproof-connect -p socks5h://127.0.0.1:1080 -t 5 localh"), ["localhost"],
           "HOST")
    expect(complete("leakproof-connect -p socks5h://127.0.0.1:1080 -u localhost 10"), ["1080"],
           "PORT")
    # No third argument (zsh still offers the options, which may come anywhere).
    after = [w for w in complete("leakproof-connect -l localhost 1080 ") if not w.startswith("-")]
    expect_none(after, "after PORT")


def bash_case(which):
    need(BASH_COMPLETION, "bash")
    if which == "wrapper":
        wrapper_lines(lambda l: bash_complete(os.path.join(COMPDIR, "leakproof.bash"),
                                              "_leakproof", l))
    else:
        connect_lines(lambda l: bash_complete(os.path.join(COMPDIR, "leakproof-connect.bash"),
                                              "_leakproof_connect", l))
    print("ok")


def zsh_case(which):
    need("zsh")
    r = subprocess.run(["zsh", "-n", os.path.join(COMPDIR, "_leakproof")], capture_output=True,
                       text=True, timeout=10)
    if r.returncode != 0:
        fail(f"zsh -n: {r.stderr}")
    (wrapper_lines if which == "wrapper" else connect_lines)(zsh_complete)
    print("ok")


try:
    {"bash_wrapper": lambda: bash_case("wrapper"), "bash_connect": lambda: bash_case("connect"),
     "zsh_wrapper": lambda: zsh_case("wrapper"), "zsh_connect": lambda: zsh_case("connect")}[CASE]()
finally:
    shutil.rmtree(TMP, ignore_errors=True)
