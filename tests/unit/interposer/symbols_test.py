"""What libleakproof.so's own objects may call, checked on the built objects:

python3 symbols_test.py EXPORTS_MAP LIBRARY OBJECT...

1. No object calls a name the library exports: those names are its own
   hooks (exports.map), so a plain write() or close() inside the library
   goes through the write or close hook (and, from the real-function
   table's pthread_once, would wait for itself). They call libc through
   runtime/real.hpp's table. A relocation against such a name is the call.
2. getenv() is called by runtime/config alone: every LEAKPROOF_* variable
   is read there (runtime/environment.hpp).
3. pthread_atfork() is called by interposer/fork alone: fork handling in
   one place.
4. The finished library refers to exported names only where the static
   C++ runtime does, for the reasons listed in LIBSTDCXX below: anything
   new there is a call into our own hooks from code we did not write.
"""
import os
import re
import subprocess
import sys

# Relocations the C++ runtime (linked in statically) brings, and why they
# are harmless: each lands in a hook that passes straight to libc.
LIBSTDCXX = {
    # guard.o: a function-local static under contention waits with
    # syscall(SYS_futex); the syscall hook forwards every number it does
    # not route to the real syscall().
    "syscall",
    # random.o (std::random_device), linked as part of cow-string-inst.o
    # and never called.
    "read", "close",
}

ONLY_IN = {
    "getenv": "config.cpp.o",
    "secure_getenv": "config.cpp.o",
    "pthread_atfork": "fork.cpp.o",
}


def exported(path):
    text = open(path).read()
    body = re.search(r"global:(.*?)local:", text, re.S).group(1)
    body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
    return {n.strip() for n in body.split(";") if n.strip()}


def relocated(path):
    """The symbol names relocations in `path` refer to."""
    out = subprocess.run(["readelf", "-rW", path], capture_output=True, text=True,
                         check=True).stdout
    names = set()
    for line in out.splitlines():
        f = line.split()
        # Offset Info Type Value Name [+ addend]
        if len(f) >= 5 and f[2].startswith("R_"):
            names.add(f[4].split("@")[0])
    return names


def main():
    exports, library, objects = exported(sys.argv[1]), sys.argv[2], sys.argv[3:]
    if len(exports) < 50 or not objects:
        print(f"FAIL: read {len(exports)} exports and {len(objects)} objects")
        return 1
    errors = []
    for obj in objects:
        name = os.path.basename(obj)
        names = relocated(obj)
        for sym in sorted(names & exports):
            errors.append(f"{name} calls {sym}(), the library's own hook: use real::fn().{sym}")
        for sym, owner in ONLY_IN.items():
            if sym in names and name != owner:
                errors.append(f"{name} calls {sym}(), which only {owner} may")
    for sym, owner in ONLY_IN.items():
        if sym != "secure_getenv" and not any(
                os.path.basename(o) == owner and sym in relocated(o) for o in objects):
            errors.append(f"{owner} no longer calls {sym}(): is the check still looking?")
    extra = (relocated(library) & exports) - LIBSTDCXX
    for sym in sorted(extra):
        errors.append(f"{os.path.basename(library)} refers to {sym}, one of its own hooks")
    for e in errors:
        print("FAIL:", e)
    print(f"{len(objects)} objects, {len(exports)} exported names, {len(errors)} problems")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
