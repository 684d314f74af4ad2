"""The Debian package (scripts/package), used the way users get it.

python3 package_test.py CASE SOURCE_DIR BUILD_DIR. Cases:
  build    scripts/package --from-build BUILD_DIR into BUILD_DIR/package-test/
           (a fixture of the other two): control fields, version, file list
  extract  dpkg-deb -x into a scratch directory; SCRATCH/usr/bin/leakproof
           fetches a page by a name only microsocks can resolve, with the
           interposer found from that prefix
  install  dpkg -i; /usr/bin/leakproof fetches the same way, dpkg -V is clean,
           man, bash-completion and zsh find their files; dpkg -r, then dpkg -P,
           leave no file or directory of the package behind. Skipped (77)
           when a leakproof package is already installed or one of its files
           already exists: the test never replaces what it did not put there.
LEAKPROOF_DEB=FILE makes extract and install use FILE (e.g. the .deb that
scripts/package builds from scratch, with the multiarch libdir) instead.
"""
import os
import hashlib
import re
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "preload"))
import pltest  # noqa: E402

SKIP = 77
CASE, SOURCE, BUILD = sys.argv[1], os.path.abspath(sys.argv[2]), os.path.abspath(sys.argv[3])
OUT = os.path.join(BUILD, "package-test")
fail = pltest.fail


def run(argv, timeout=120, **kw):
    t0 = time.time()
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    print("$", " ".join(argv), f"-> rc={r.returncode} ({time.time() - t0:.1f}s)")
    if r.stdout.strip():
        print("stdout:", r.stdout[-1200:])
    if r.stderr.strip():
        print("stderr:", r.stderr[-1200:])
    return r


def project_version():
    with open(os.path.join(SOURCE, "CMakeLists.txt")) as f:
        return re.search(r"project\(leakproof VERSION ([0-9.]+)", f.read()).group(1)


def deb_path():
    if os.environ.get("LEAKPROOF_DEB"):
        return os.path.abspath(os.environ["LEAKPROOF_DEB"])
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                          check=True).stdout.strip()
    return os.path.join(OUT, f"leakproof_{project_version()}_{arch}.deb")


def package_paths(deb):
    """Every path in the archive, without the leading './', directories with a '/'."""
    r = run(["dpkg-deb", "-c", deb])
    paths = []
    for line in r.stdout.splitlines():
        name = line.split(None, 5)[5].split(" -> ")[0]
        name = name[2:] if name.startswith("./") else name
        if name and name != "/":
            paths.append(name)
    return paths


def libdir_of(paths):
    """usr/<libdir>, where the package put the interposer."""
    for p in paths:
        m = re.fullmatch(r"(usr/lib(?:/[^/]+)?)/leakproof/libleakproof\.so", p)
        if m:
            return m.group(1)
    fail("no <libdir>/leakproof/libleakproof.so in the package")


def fetch_through_proxy(wrapper):
    """curl under `wrapper` by a name only the proxy knows; the interposer's path as the
    wrapped command sees it in LD_PRELOAD."""
    web = pltest.HttpServer()
    proxy = pltest.microsocks()
    url = f"http://{pltest.WEB_NAME}:{web.port}/"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEAKPROOF_")}
    env.pop("LD_PRELOAD", None)
    r = run([wrapper, "-p", proxy, "--", "curl", "-sS", url], timeout=60, env=env,
            cwd=pltest.TMP)
    if r.returncode != 0 or pltest.BODY.strip() not in r.stdout:
        fail(f"{wrapper} did not fetch the page through microsocks")
    if web.requests < 1:
        fail("the web server saw no request")
    r = run([wrapper, "-p", proxy, "--", "sh", "-c", 'printf %s "$LD_PRELOAD"'], env=env,
            cwd=pltest.TMP)
    if r.returncode != 0:
        fail("the wrapper did not run sh")
    return r.stdout.split(":")[0]


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def build_case():
    debs = []
    for out in (OUT + "-again", OUT):  # the fixture's last
        r = run([os.path.join(SOURCE, "scripts", "package"), "--from-build", BUILD,
                 "--output", out], timeout=300)
        if r.returncode != 0:
            fail("scripts/package failed")
        debs.append(os.path.join(out, os.path.basename(deb_path())))
    deb = deb_path()
    if not os.path.isfile(deb):
        fail(f"no {deb}")
    if sha256(debs[0]) != sha256(debs[1]):
        fail("the same tree packaged twice gave different bytes")
    fields = {}
    for line in run(["dpkg-deb", "-f", deb]).stdout.splitlines():
        if ":" in line and not line.startswith(" "):
            key, value = line.split(":", 1)
            fields[key] = value.strip()
    if fields.get("Package") != "leakproof" or fields.get("Version") != project_version():
        fail(f"control says {fields.get('Package')} {fields.get('Version')}")
    if not re.search(r"\blibc6 \(>= [0-9.]+\)", fields.get("Depends", "")):
        fail("Depends has no versioned libc6")
    if "glibc (= " not in fields.get("Built-Using", ""):
        fail("Built-Using does not name the static glibc")
    paths = package_paths(deb)
    files = [p for p in paths if not p.endswith("/")]
    libdir = libdir_of(paths)
    expected = ["usr/bin/leakproof", "usr/bin/leakproof-connect",
                f"{libdir}/leakproof/libleakproof.so", "usr/include/leakproof/asio.hpp",
                "usr/include/leakproof/handshake.hpp", f"{libdir}/cmake/leakproof/leakproofConfig.cmake",
                f"{libdir}/pkgconfig/leakproof.pc", "usr/share/man/man1/leakproof.1.gz",
                "usr/share/man/man1/leakproof-connect.1.gz",
                "usr/share/bash-completion/completions/leakproof",
                "usr/share/bash-completion/completions/leakproof-connect",
                "usr/share/zsh/vendor-completions/_leakproof",
                "usr/share/doc/leakproof/copyright", "usr/share/doc/leakproof/changelog.gz"]
    missing = [p for p in expected if p not in files]
    if missing:
        fail(f"missing from the package: {missing}")
    # dpkg-gencontrol's count: KiB per file rounded up, one per directory or link.
    listing = run(["dpkg-deb", "-c", deb]).stdout.splitlines()
    want_kib = sum((int(l.split()[2]) + 1023) // 1024 if l.startswith("-") else 1
                   for l in listing if not l.endswith(" ./"))
    kib = int(fields.get("Installed-Size", "0"))
    if kib != want_kib:
        fail(f"Installed-Size {kib} KiB, the files take {want_kib}")
    print(f"ok: {len(files)} files, {kib} KiB installed, Depends: {fields['Depends']}")


def extract_case():
    deb = deb_path()
    scratch = tempfile.mkdtemp(prefix="lp-deb-", dir=pltest.TMP)
    if run(["dpkg-deb", "-x", deb, scratch]).returncode != 0:
        fail("dpkg-deb -x failed")
    libdir = libdir_of(package_paths(deb))
    interposer = fetch_through_proxy(os.path.join(scratch, "usr", "bin", "leakproof"))
    want = os.path.realpath(os.path.join(scratch, libdir, "leakproof", "libleakproof.so"))
    if interposer != want:
        fail(f"the wrapper preloaded {interposer!r}, not the package's {want}")
    print(f"ok: the extracted wrapper preloads {interposer}")


def dpkg(*args):
    """dpkg, waiting (bounded) while apt or another dpkg holds the lock."""
    for _ in range(30):
        r = run(["dpkg", *args], timeout=300)
        if r.returncode == 0 or "lock" not in r.stderr:
            return r
        time.sleep(2)
    return r


def package_state():
    r = subprocess.run(["dpkg-query", "-W", "-f=${db:Status-Abbrev}", "leakproof"],
                       capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else ""


def left_behind(paths, existed):
    return ["/" + p for p in paths if p.rstrip("/") not in existed
            and os.path.lexists("/" + p.rstrip("/"))]


CONSUMER = """#include <leakproof/leakproof.hpp>
int main() {
    leakproof::proxy p;
    return leakproof::parse_proxy_url("socks5h://127.0.0.1:9050", p) ? 1 : 0;
}
"""


def check_library():
    """The headers, libleakproof.a and the .pc file where the compiler and pkg-config look."""
    r = run(["pkg-config", "--modversion", "leakproof"])
    if r.stdout.strip() != project_version():
        fail("pkg-config does not find the package's leakproof.pc")
    src = os.path.join(pltest.TMP, "consumer.cpp")
    pltest.write(src, CONSUMER)
    flags = run(["pkg-config", "--cflags", "--libs", "leakproof"]).stdout.split()
    exe = os.path.join(pltest.TMP, "consumer")
    if run(["c++", src, "-o", exe, *flags]).returncode != 0 or run([exe]).returncode != 0:
        fail("a program built with pkg-config's flags against the package does not work")


def check_installed(libdir):
    interposer = fetch_through_proxy("/usr/bin/leakproof")
    want = os.path.realpath(f"/{libdir}/leakproof/libleakproof.so")
    if interposer != want:
        fail(f"the installed wrapper preloaded {interposer!r}, not {want}")
    if run(["dpkg", "-V", "leakproof"]).stdout.strip():
        fail("dpkg -V: installed files differ from the package's md5sums")
    check_library()
    for page in ("leakproof", "leakproof-connect"):
        if f"/usr/share/man/man1/{page}.1.gz" not in run(["man", "-aw", page]).stdout.split():
            fail(f"man does not find {page}(1) in the package")
    r = run(["bash", "--norc", "--noprofile", "-c",
             ". /usr/share/bash-completion/bash_completion; for c in leakproof leakproof-connect;"
             " do _completion_loader $c; complete -p $c; done"])
    if "-F _leakproof leakproof" not in r.stdout or "_leakproof_connect" not in r.stdout:
        fail("bash-completion does not load the package's completions")
    if subprocess.run(["which", "zsh"], capture_output=True).returncode == 0:
        r = run(["zsh", "-f", "-c",
                 "autoload -Uz compinit; compinit -u -D; print -r -- $_comps[leakproof] "
                 "$_comps[leakproof-connect]"], env={**os.environ, "HOME": pltest.TMP})
        if r.stdout.split() != ["_leakproof", "_leakproof"]:
            fail("zsh's compinit does not find _leakproof")


def install_case():
    if os.geteuid() != 0:
        print("SKIP: dpkg -i needs root")
        sys.exit(SKIP)
    if package_state() not in ("", "un"):
        print(f"SKIP: a leakproof package is already known to dpkg ({package_state()});"
              " if an interrupted run of this test left it, dpkg -P leakproof")
        sys.exit(SKIP)
    deb = deb_path()
    paths = package_paths(deb)
    existed = {p.rstrip("/") for p in paths if os.path.lexists("/" + p.rstrip("/"))}
    clash = [p for p in existed if not os.path.isdir("/" + p)]
    if clash:
        print(f"SKIP: files of the package already exist outside dpkg: {clash[:5]}")
        sys.exit(SKIP)
    libdir = libdir_of(paths)
    try:
        r = dpkg("-i", deb)
        if r.returncode != 0:
            fail("dpkg -i failed")
        check_installed(libdir)
        if dpkg("-r", "leakproof").returncode != 0:
            fail("dpkg -r failed")
        left = left_behind(paths, existed)
        if left:
            fail(f"dpkg -r left files of the package behind: {left}")
        if dpkg("-P", "leakproof").returncode != 0:
            fail("dpkg -P failed")
        left = left_behind(paths, existed)
        if left or package_state() not in ("", "un"):
            fail(f"after dpkg -P: {left}, state {package_state()!r}")
        print(f"ok: installed, used and removed; none of {len(paths)} paths left behind")
    finally:
        if package_state() not in ("", "un"):
            dpkg("-P", "leakproof")


# ctest's timeout and ^C: still through install_case's finally (dpkg -P).
signal.signal(signal.SIGTERM, lambda *_: sys.exit("FAIL: terminated"))
signal.signal(signal.SIGINT, lambda *_: sys.exit("FAIL: interrupted"))
{"build": build_case, "extract": extract_case, "install": install_case}[CASE]()
